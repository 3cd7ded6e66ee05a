#include "lambda/events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "util/error.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sn_s3_key_decode(const char *in, char *out, size_t out_size, char *err,
                     size_t err_size)
{
    size_t n = 0;

    if (out_size == 0) {
        snprintf(err, err_size, "object key: no room to decode it");
        return SN_ERR_LIMIT;
    }
    for (size_t i = 0; in[i] != '\0'; i++) {
        int c = (unsigned char)in[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = hex_value(in[i + 1]);
            int lo = hi < 0 ? -1 : hex_value(in[i + 2]);

            if (hi < 0 || lo < 0) {
                snprintf(err, err_size, "object key \"%.200s\": invalid "
                         "escape at byte %zu (expected %% and two hex "
                         "digits)", in, i);
                return SN_ERR_INPUT;
            }
            c = hi * 16 + lo;
            i += 2;
            if (c == 0) {
                snprintf(err, err_size, "object key \"%.200s\": %%00 at "
                         "byte %zu decodes to a NUL byte", in, i - 2);
                return SN_ERR_INPUT;
            }
        }
        if (n + 1 >= out_size) {
            snprintf(err, err_size, "object key \"%.200s\": longer than "
                     "%zu bytes once decoded", in, out_size - 1);
            return SN_ERR_LIMIT;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* ---- upload events ----------------------------------------------------- */

/* Appends a record; returns it zeroed, or NULL when out of memory. */
static struct sn_upload_record *add_record(struct sn_upload_event *e)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        struct sn_upload_record *p = realloc(e->records, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        e->records = p;
        e->cap = cap;
    }
    memset(&e->records[e->n], 0, sizeof(e->records[0]));
    return &e->records[e->n++];
}

static void ignore(struct sn_upload_record *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ignore(struct sn_upload_record *r, const char *fmt, ...)
{
    va_list ap;

    r->ignored = 1;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

/* Returns 1 for "2." followed by one or more digits. */
static int version_2x(const char *v)
{
    size_t digits;

    if (v == NULL || strncmp(v, "2.", 2) != 0)
        return 0;
    digits = strspn(v + 2, "0123456789");
    return digits > 0 && v[2 + digits] == '\0';
}

/* Fills r from one record with eventSource "aws:s3". */
static void read_s3_record(json_t *rec, const char *videos_bucket,
                           struct sn_upload_record *r)
{
    const char *version = json_string_value(json_object_get(rec,
                                                            "eventVersion"));
    const char *name = json_string_value(json_object_get(rec, "eventName"));
    json_t *s3 = json_object_get(rec, "s3");
    const char *bucket = json_string_value(
        json_object_get(json_object_get(s3, "bucket"), "name"));
    const char *key = json_string_value(
        json_object_get(json_object_get(s3, "object"), "key"));
    char key_err[SN_ERR_SIZE];

    if (bucket != NULL)
        snprintf(r->bucket, sizeof(r->bucket), "%s", bucket);
    if (key != NULL)
        snprintf(r->key, sizeof(r->key), "%s", key);

    if (!version_2x(version)) {
        ignore(r, "eventVersion \"%.20s\" is not 2.x",
               version ? version : "(missing)");
    } else if (name == NULL || strncmp(name, "ObjectCreated:", 14) != 0) {
        ignore(r, "event %.60s is not an upload (ObjectCreated:*)",
               name ? name : "(missing eventName)");
    } else if (bucket == NULL || key == NULL) {
        ignore(r, "record has no s3.bucket.name or s3.object.key");
    } else if (strlen(bucket) > SN_S3_BUCKET_MAX) {
        ignore(r, "bucket name longer than %d bytes", SN_S3_BUCKET_MAX);
    } else if (strcmp(bucket, videos_bucket) != 0) {
        ignore(r, "bucket %s is not the uploads bucket %s", bucket,
               videos_bucket);
    } else if (sn_s3_key_decode(key, r->key, sizeof(r->key), key_err,
                                sizeof(key_err)) < 0) {
        snprintf(r->key, sizeof(r->key), "%s", key);
        ignore(r, "%s", key_err);
    } else if (strncmp(r->key, SN_UPLOAD_PREFIX,
                       strlen(SN_UPLOAD_PREFIX)) != 0) {
        ignore(r, "key is outside %s", SN_UPLOAD_PREFIX);
    } else if (!sn_upload_name_valid(r->key + strlen(SN_UPLOAD_PREFIX))) {
        ignore(r, "not an upload name: a file name after %s, 1 to %d "
               "bytes of UTF-8 with no '/' or control characters",
               SN_UPLOAD_PREFIX, SN_UPLOAD_MAX_NAME);
    }
}

static int read_records(json_t *root, const char *videos_bucket,
                        int allow_sqs, struct sn_upload_event *out,
                        char *err, size_t err_size);

/* Reads the S3 event in the body of one SQS record. */
static int read_sqs_record(json_t *rec, const char *videos_bucket,
                           struct sn_upload_event *out, char *err,
                           size_t err_size)
{
    const char *id = json_string_value(json_object_get(rec, "messageId"));
    const char *body = json_string_value(json_object_get(rec, "body"));
    struct sn_upload_record *r;
    json_error_t jerr;
    json_t *inner;
    int rc;

    inner = body != NULL ? json_loads(body, 0, &jerr) : NULL;
    if (json_is_object(inner) &&
        (json_is_array(json_object_get(inner, "Records")) ||
         json_is_string(json_object_get(inner, "Event")))) {
        rc = read_records(inner, videos_bucket, 0, out, err, err_size);
        json_decref(inner);
        return rc;
    }
    json_decref(inner);

    r = add_record(out);
    if (r == NULL) {
        snprintf(err, err_size, "event: out of memory");
        return -ENOMEM;
    }
    ignore(r, "SQS message %.100s: body is not an S3 event",
           id ? id : "(no messageId)");
    return 0;
}

/*
 * Reads the Records of an S3 event, or of an SQS event when allow_sqs is
 * set (an SQS body contains an S3 event, never another SQS event).
 */
static int read_records(json_t *root, const char *videos_bucket,
                        int allow_sqs, struct sn_upload_event *out,
                        char *err, size_t err_size)
{
    const char *test = json_string_value(json_object_get(root, "Event"));
    json_t *records = json_object_get(root, "Records");
    json_t *rec;
    size_t i;

    if (test != NULL && strcmp(test, "s3:TestEvent") == 0 &&
        records == NULL) {
        out->test_events++;
        return 0;
    }
    if (!json_is_array(records)) {
        snprintf(err, err_size, "event: no Records array, so neither an S3 "
                 "nor an SQS event");
        return SN_ERR_INPUT;
    }

    json_array_foreach(records, i, rec) {
        const char *source = json_string_value(json_object_get(rec,
                                                               "eventSource"));
        struct sn_upload_record *r;
        int rc;

        if (allow_sqs && source != NULL && strcmp(source, "aws:sqs") == 0) {
            rc = read_sqs_record(rec, videos_bucket, out, err, err_size);
            if (rc < 0)
                return rc;
            continue;
        }

        r = add_record(out);
        if (r == NULL) {
            snprintf(err, err_size, "event: out of memory");
            return -ENOMEM;
        }
        if (source != NULL && strcmp(source, "aws:s3") == 0)
            read_s3_record(rec, videos_bucket, r);
        else
            ignore(r, "record %zu: eventSource \"%.40s\" is not aws:s3", i,
                   source ? source : "(missing)");
    }
    return 0;
}

int sn_upload_event_parse(const char *event, size_t size,
                          const char *videos_bucket,
                          struct sn_upload_event *out, char *err,
                          size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(event, size, 0, &jerr);
    int rc;

    if (!json_is_object(root)) {
        snprintf(err, err_size, "event: not a JSON object (%s at line %d)",
                 root ? "valid JSON" : jerr.text, jerr.line);
        json_decref(root);
        return SN_ERR_INPUT;
    }
    rc = read_records(root, videos_bucket, 1, out, err, err_size);
    json_decref(root);
    return rc;
}

void sn_upload_event_release(struct sn_upload_event *out)
{
    free(out->records);
    memset(out, 0, sizeof(*out));
}

/* ---- SQS batches ------------------------------------------------------- */

/* Reads ApproximateReceiveCount, a decimal string; 1 when absent. */
static int receive_count(json_t *rec, int *out)
{
    json_t *attributes = json_object_get(rec, "attributes");
    const char *text = json_string_value(
        json_object_get(attributes, "ApproximateReceiveCount"));
    char *end;
    long v;

    *out = 1;
    if (text == NULL)
        return 0;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > 1000000)
        return -1;
    *out = (int)v;
    return 0;
}

int sn_sqs_batch_parse(const char *event, size_t size,
                       struct sn_sqs_batch *out, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *records, *rec;
    const char *arn;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->root = json_loadb(event, size, 0, &jerr);
    records = json_object_get(out->root, "Records");
    if (!json_is_array(records)) {
        snprintf(err, err_size, "event: %s", out->root == NULL ? jerr.text
                 : "no Records array, so not an SQS event");
        return SN_ERR_INPUT;
    }
    out->records = calloc(json_array_size(records) + 1,
                          sizeof(*out->records));
    if (out->records == NULL) {
        snprintf(err, err_size, "event: out of memory");
        return -ENOMEM;
    }

    json_array_foreach(records, i, rec) {
        struct sn_sqs_record *r = &out->records[i];
        const char *body = json_string_value(json_object_get(rec, "body"));

        r->message_id = json_string_value(json_object_get(rec, "messageId"));
        if (r->message_id == NULL || r->message_id[0] == '\0') {
            snprintf(err, err_size, "event: record %zu has no messageId, so "
                     "its failure could not be reported", i);
            return SN_ERR_INPUT;
        }
        if (receive_count(rec, &r->receive_count) < 0) {
            snprintf(err, err_size, "event: message %.100s: "
                     "ApproximateReceiveCount is not a whole number from 1",
                     r->message_id);
            return SN_ERR_INPUT;
        }
        r->body = body != NULL ? body : "";
        arn = json_string_value(json_object_get(rec, "eventSourceARN"));
        if (arn != NULL && strlen(arn) > 5 &&
            strcmp(arn + strlen(arn) - 5, ".fifo") == 0)
            out->fifo = 1;
        out->n++;
    }
    return 0;
}

void sn_sqs_batch_release(struct sn_sqs_batch *out)
{
    json_decref(out->root);
    free(out->records);
    memset(out, 0, sizeof(*out));
}

char *sn_batch_response(const char *const *failed, size_t n)
{
    json_t *list = json_array();
    json_t *root = json_pack("{s:o}", "batchItemFailures", list);
    char *text = NULL;

    if (root == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, json_pack("{s:s}", "itemIdentifier",
                                                  failed[i])) < 0)
            goto out;
    }
    text = json_dumps(root, JSON_COMPACT);

out:
    json_decref(root);
    return text;
}
