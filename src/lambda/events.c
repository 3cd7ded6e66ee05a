#include "lambda/events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "util/error.h"
#include "util/hex.h"
#include "util/utf8.h"

const char *sn_excerpt(const char *text, size_t max, char *out,
                       size_t out_size)
{
    size_t len = strlen(text);
    size_t keep = sn_utf8_cut(text, len, max);
    size_t mark_len, room;
    char mark[SN_EXCERPT_MARK_MAX];

    if (out_size == 0)
        return out;
    mark[0] = '\0';
    if (keep < len)
        snprintf(mark, sizeof(mark), "...(cut from %zu bytes)", len);
    mark_len = strlen(mark);
    room = out_size - 1;
    if (keep + mark_len > room)
        keep = sn_utf8_cut(text, len, room > mark_len ? room - mark_len : 0);
    snprintf(out, out_size, "%.*s%s", (int)keep, text, mark);
    return out;
}

static int utf8_valid(const char *s)
{
    size_t len = strlen(s);
    uint32_t cp;

    for (size_t i = 0; i < len;) {
        size_t n = sn_utf8_decode((const unsigned char *)s + i, len - i, &cp);

        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* Copies src into dst, cut at a UTF-8 character boundary to fit. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t keep = sn_utf8_cut(src, strlen(src), size - 1);

    snprintf(dst, size, "%.*s", (int)keep, src);
}

int sn_s3_key_decode(const char *in, char *out, size_t out_size, char *err,
                     size_t err_size)
{
    char shown[SN_EXCERPT_MAX + SN_EXCERPT_MARK_MAX];
    size_t n = 0;

    sn_excerpt(in, SN_EXCERPT_MAX, shown, sizeof(shown));
    if (out_size == 0) {
        snprintf(err, err_size, "object key: no room to decode it");
        return SN_ERR_LIMIT;
    }
    for (size_t i = 0; in[i] != '\0'; i++) {
        int c = (unsigned char)in[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = sn_hex_value(in[i + 1]);
            int lo = hi < 0 ? -1 : sn_hex_value(in[i + 2]);

            if (hi < 0 || lo < 0) {
                snprintf(err, err_size, "object key \"%s\": invalid "
                         "escape at byte %zu (expected %% and two hex "
                         "digits)", shown, i);
                return SN_ERR_INPUT;
            }
            c = hi * 16 + lo;
            i += 2;
            if (c == 0) {
                snprintf(err, err_size, "object key \"%s\": %%00 at "
                         "byte %zu decodes to a NUL byte", shown, i - 2);
                return SN_ERR_INPUT;
            }
        }
        if (n + 1 >= out_size) {
            snprintf(err, err_size, "object key \"%s\": longer than "
                     "%zu bytes once decoded", shown, out_size - 1);
            return SN_ERR_LIMIT;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';

    /* S3 keys are UTF-8, and so is every JSON string the key goes into. */
    if (!utf8_valid(out)) {
        snprintf(err, err_size, "object key \"%s\": invalid UTF-8 once "
                 "decoded", shown);
        return SN_ERR_INPUT;
    }
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
    /* A long reason may have been cut inside a character. */
    sn_utf8_repair(r->reason);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/*
 * Describes a field's value for a reason: "\"3.0\"" for a string,
 * "a number (2.1)" for another value, "missing" when v is NULL.
 */
static const char *describe(const json_t *v, char *out, size_t out_size)
{
    char shown[40 + SN_EXCERPT_MARK_MAX];
    char *text;

    if (v == NULL)
        return "missing";
    if (json_is_string(v)) {
        sn_excerpt(json_string_value(v), 40, shown, sizeof(shown));
        snprintf(out, out_size, "\"%s\"", shown);
        return out;
    }
    /* 15 significant digits print 2.1 as 2.1, not 2.1000000000000001. */
    text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
                             JSON_REAL_PRECISION(15));
    sn_excerpt(text != NULL ? text : "", 40, shown, sizeof(shown));
    snprintf(out, out_size, "%s (%s)", json_type_name(v), shown);
    free(text);
    return out;
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
    json_t *version_json = json_object_get(rec, "eventVersion");
    json_t *name_json = json_object_get(rec, "eventName");
    const char *version = json_string_value(version_json);
    const char *name = json_string_value(name_json);
    json_t *s3 = json_object_get(rec, "s3");
    const char *bucket = json_string_value(
        json_object_get(json_object_get(s3, "bucket"), "name"));
    const char *key = json_string_value(
        json_object_get(json_object_get(s3, "object"), "key"));
    char key_err[SN_ERR_SIZE], value[128];

    if (bucket != NULL)
        copy_text(r->bucket, sizeof(r->bucket), bucket);
    if (key != NULL)
        copy_text(r->key, sizeof(r->key), key);

    if (version == NULL) {
        ignore(r, "eventVersion is %s, not a string \"2.x\"",
               describe(version_json, value, sizeof(value)));
    } else if (!version_2x(version)) {
        ignore(r, "eventVersion %s is not 2.x",
               describe(version_json, value, sizeof(value)));
    } else if (name == NULL || strncmp(name, "ObjectCreated:", 14) != 0) {
        ignore(r, "eventName %s is not an upload (ObjectCreated:*)",
               describe(name_json, value, sizeof(value)));
    } else if (bucket == NULL || key == NULL) {
        ignore(r, "record has no s3.bucket.name or s3.object.key");
    } else if (strlen(bucket) > SN_S3_BUCKET_MAX) {
        ignore(r, "bucket name longer than %d bytes", SN_S3_BUCKET_MAX);
    } else if (strcmp(bucket, videos_bucket) != 0) {
        ignore(r, "bucket %s is not the uploads bucket %s", bucket,
               videos_bucket);
    } else if (sn_s3_key_decode(key, r->key, sizeof(r->key), key_err,
                                sizeof(key_err)) < 0) {
        copy_text(r->key, sizeof(r->key), key);
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

/*
 * Reads the S3 event in the body of one SQS record. A body that is not
 * an S3 event becomes an ignored record, so it cannot hold back the
 * other uploads of the batch.
 */
static int read_sqs_record(json_t *rec, const char *videos_bucket,
                           struct sn_upload_event *out, char *err,
                           size_t err_size)
{
    const char *id = json_string_value(json_object_get(rec, "messageId"));
    const char *body = json_string_value(json_object_get(rec, "body"));
    char shown[SN_EXCERPT_MAX + SN_EXCERPT_MARK_MAX];
    char cause[SN_ERR_SIZE] = "";
    struct sn_upload_record *r;
    json_error_t jerr;
    json_t *inner;
    int rc = SN_ERR_INPUT;

    inner = body != NULL ? json_loads(body, 0, &jerr) : NULL;
    if (json_is_object(inner))
        rc = read_records(inner, videos_bucket, 0, out, cause,
                          sizeof(cause));
    json_decref(inner);
    if (rc != SN_ERR_INPUT) {
        if (rc < 0)
            snprintf(err, err_size, "%s", cause);
        return rc;
    }

    r = add_record(out);
    if (r == NULL) {
        snprintf(err, err_size, "event: out of memory");
        return -ENOMEM;
    }
    ignore(r, "SQS message %s: body is not an S3 event",
           id != NULL ? sn_excerpt(id, SN_EXCERPT_MAX, shown, sizeof(shown))
                      : "(no messageId)");
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
        json_t *source_json = json_object_get(rec, "eventSource");
        const char *source = json_string_value(source_json);
        struct sn_upload_record *r;
        char value[128];
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
        if (!json_is_object(rec))
            ignore(r, "record %zu is %s, not an object", i,
                   json_type_name(rec));
        else if (source != NULL && strcmp(source, "aws:s3") == 0)
            read_s3_record(rec, videos_bucket, r);
        else
            ignore(r, "record %zu: eventSource %s is not aws:s3", i,
                   describe(source_json, value, sizeof(value)));
    }
    return 0;
}

int sn_upload_event_parse(const char *event, size_t size,
                          const char *videos_bucket,
                          struct sn_upload_event *out, char *err,
                          size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(event, size, JSON_DECODE_ANY, &jerr);
    int rc;

    if (root == NULL) {
        snprintf(err, err_size, "event: not JSON: %s at byte %d", jerr.text,
                 jerr.position);
        return SN_ERR_INPUT;
    }
    if (!json_is_object(root)) {
        snprintf(err, err_size, "event: %s, not a JSON object",
                 json_type_name(root));
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
    json_t *count = json_object_get(attributes, "ApproximateReceiveCount");
    const char *text = json_string_value(count);
    char *end;
    long v;

    *out = 1;
    if (count == NULL)
        return 0;
    if (text == NULL)
        return -1;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > 1000000)
        return -1;
    *out = (int)v;
    return 0;
}

/*
 * Points r->message_id at the record's messageId. Returns 0, or
 * SN_ERR_INPUT with one line in err when the record has no usable one.
 */
static int read_message_id(json_t *rec, size_t i, struct sn_sqs_record *r,
                           char *err, size_t err_size)
{
    json_t *id = json_object_get(rec, "messageId");
    char shown[SN_EXCERPT_MAX + SN_EXCERPT_MARK_MAX], value[128];

    if (!json_is_object(rec)) {
        snprintf(err, err_size, "event: record %zu is %s, not an object, "
                 "so not an SQS message", i, json_type_name(rec));
        return SN_ERR_INPUT;
    }
    r->message_id = json_string_value(id);
    if (r->message_id == NULL || r->message_id[0] == '\0') {
        snprintf(err, err_size, "event: record %zu: messageId is %s, so "
                 "its failure could not be reported", i,
                 id != NULL ? describe(id, value, sizeof(value)) : "missing");
        return SN_ERR_INPUT;
    }
    if (strlen(r->message_id) > SN_SQS_MESSAGE_ID_MAX) {
        snprintf(err, err_size, "event: record %zu: messageId \"%s\" is "
                 "longer than SQS's %d characters", i,
                 sn_excerpt(r->message_id, SN_EXCERPT_MAX, shown,
                            sizeof(shown)),
                 SN_SQS_MESSAGE_ID_MAX);
        return SN_ERR_INPUT;
    }
    return 0;
}

int sn_sqs_batch_parse(const char *event, size_t size,
                       struct sn_sqs_batch *out, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *records, *rec;
    const char *arn;
    char value[128];
    size_t i;

    memset(out, 0, sizeof(*out));
    out->root = json_loadb(event, size, JSON_DECODE_ANY, &jerr);
    if (out->root == NULL) {
        snprintf(err, err_size, "event: not JSON: %s at byte %d", jerr.text,
                 jerr.position);
        return SN_ERR_INPUT;
    }
    records = json_object_get(out->root, "Records");
    if (!json_is_array(records)) {
        snprintf(err, err_size, "event: %s, so not an SQS event",
                 !json_is_object(out->root)
                     ? "not a JSON object"
                     : records == NULL ? "no Records array"
                                       : "Records is not an array");
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
        json_t *body = json_object_get(rec, "body");

        if (read_message_id(rec, i, r, err, err_size) < 0)
            return SN_ERR_INPUT;
        if (receive_count(rec, &r->receive_count) < 0)
            snprintf(r->invalid, sizeof(r->invalid), "attributes."
                     "ApproximateReceiveCount is %s, not a whole number "
                     "from 1", describe(json_object_get(json_object_get(
                         rec, "attributes"), "ApproximateReceiveCount"),
                         value, sizeof(value)));
        r->body = json_is_string(body) ? json_string_value(body) : "";
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
