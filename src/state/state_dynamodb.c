/*
 * The DynamoDB backend of the video state; state.h describes the record and
 * the rules of every update.
 *
 * One item per video, keyed by "id". The string attributes are source,
 * upload_tag, status, summary and error, the last two absent when empty.
 * The numbers are generation, n_jobs, duration_us, created_ms, updated_ms
 * and upload_seq. done is a number set of the finished jobs, absent when
 * there are none, because DynamoDB sets cannot be empty. finished_by is
 * the token of the finish() call that won.
 *
 * NOTE: DynamoDB items are limited to 400 KB. A done set of all
 * SN_STATE_MAX_JOBS jobs is near that limit (estimated from the number
 * encoding, not measured on AWS), so plans near the maximum may fail in
 * mark_done() with a ValidationException.
 *
 * Every update is one UpdateItem or PutItem whose ConditionExpression
 * checks the generation and the status, so racing callers cannot both
 * change a record. When the condition fails, the call reads the item with
 * ConsistentRead and explains the failure: a repeated set_plan(), a job
 * already done, a video already ready or failed are accepted, everything
 * else is SN_ERR_CONFLICT with the reason in err.
 *
 * list() sorts by upload_seq, taken from a counter item (COUNTER_ID) that
 * begin() raises with an atomic ADD. That item has no generation attribute
 * and is skipped by list(). The id is reserved, so begin() rejects it.
 *
 * References: docs.aws.amazon.com/amazondynamodb/latest/APIReference/
 * API_UpdateItem.html and Expressions.ConditionExpressions.html.
 */
#include "state/state_dynamodb.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "util/error.h"
#include "util/utf8.h"

#define COUNTER_ID "#upload_seq"

/* begin() re-reads and retries when a racing upload changed the item
 * between its read and its write. Each lost race means another caller's
 * write went through, so this bounds the number of racing uploads. */
#define BEGIN_ATTEMPTS 16

/*
 * Maximum response size kept. A GetItem of a video with SN_STATE_MAX_JOBS
 * done jobs is an estimated 0.8 MB of JSON, and a Scan page has up to
 * 1 MB of items before JSON encoding.
 */
#define RESPONSE_MAX (8 * 1024 * 1024)

/* Returned by call() when the service replied with the accepted code. */
#define CODE_MATCHED 1

static const char *const status_names[] = {
    [SN_VIDEO_QUEUED] = "queued",
    [SN_VIDEO_PROCESSING] = "processing",
    [SN_VIDEO_READY] = "ready",
    [SN_VIDEO_FAILED] = "failed",
};

#define N_STATUSES ((int)(sizeof(status_names) / sizeof(status_names[0])))

struct dynamodb_state {
    struct sn_state pub;
    struct sn_aws_provider *provider;
    struct sn_aws_signer signer;
    struct sn_http_client *client;
    char url[SN_HTTP_URL_MAX + 2];
    char resource[300];         /* "dynamodb table NAME" for messages */
    char token_prefix[64];      /* unique per handle, see finish_token() */
    unsigned token_count;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int status_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < N_STATUSES; i++) {
        if (strcmp(name, status_names[i]) == 0)
            return i;
    }
    return -1;
}

/* ---- attribute values --------------------------------------------------- */

static json_t *attr_s(const char *text)
{
    return json_pack("{s:s}", "S", text);
}

static json_t *attr_n(int64_t n)
{
    char text[24];

    snprintf(text, sizeof(text), "%" PRId64, n);
    return json_pack("{s:s}", "N", text);
}

/* The string of attribute name in item, or "" if absent. */
static const char *item_s(json_t *item, const char *name)
{
    const char *text = json_string_value(
        json_object_get(json_object_get(item, name), "S"));

    return text != NULL ? text : "";
}

/* The number of attribute name in item, or 0 if absent. */
static int64_t item_n(json_t *item, const char *name)
{
    const char *text = json_string_value(
        json_object_get(json_object_get(item, name), "N"));

    return text != NULL ? strtoll(text, NULL, 10) : 0;
}

static json_t *done_set(json_t *item)
{
    return json_object_get(json_object_get(item, "done"), "NS");
}

/*
 * Adds to names an entry "#word": "word" for every #word in expr, because
 * DynamoDB rejects names that no expression uses, and reserved words such
 * as status, size and source must go through ExpressionAttributeNames.
 */
static void add_names(json_t *names, const char *expr)
{
    char key[64];

    while (expr != NULL && (expr = strchr(expr, '#')) != NULL) {
        size_t len = strspn(expr + 1, "abcdefghijklmnopqrstuvwxyz_");

        if (len > 0 && len < sizeof(key) - 1) {
            snprintf(key, sizeof(key), "%.*s", (int)len + 1, expr);
            json_object_set_new(names, key, json_string(key + 1));
        }
        expr += 1 + len;
    }
}

/* ---- requests ----------------------------------------------------------- */

static int fail_text(struct dynamodb_state *s, const char *id,
                     const char *op, int rc, char *err, size_t err_size,
                     const char *cause)
{
    if (id != NULL)
        snprintf(err, err_size, "state %s: video %s: %s failed: %s",
                 s->pub.name, id, op, cause);
    else
        snprintf(err, err_size, "state %s: %s failed: %s", s->pub.name, op,
                 cause);
    return rc;
}

static struct curl_slist *json_headers(const char *action)
{
    char target[96];
    struct curl_slist *list, *next;

    snprintf(target, sizeof(target), "X-Amz-Target: DynamoDB_20120810.%s",
             action);
    list = curl_slist_append(NULL,
                             "Content-Type: application/x-amz-json-1.0");
    if (list == NULL)
        return NULL;
    next = curl_slist_append(list, target);
    if (next == NULL)
        curl_slist_free_all(list);
    return next;
}

/*
 * Sends action with body (taken over, NULL when building it failed), the
 * table name added. Returns 0 and the parsed response in *reply (when
 * reply is not NULL; free with json_decref()), CODE_MATCHED when the
 * service failed with accept_code (err untouched), or a negative code
 * with one line in err.
 */
static int call(struct dynamodb_state *s, const char *id, const char *op,
                const char *action, json_t *body, const char *accept_code,
                json_t **reply, char *err, size_t err_size)
{
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    struct curl_slist *headers = NULL;
    char *text = NULL, cause[SN_ERR_SIZE];
    int rc;

    if (body == NULL ||
        json_object_set_new(body, "TableName",
                            json_string(s->pub.name)) < 0 ||
        (text = json_dumps(body, JSON_COMPACT)) == NULL) {
        rc = fail_text(s, id, op, SN_ERR_INPUT, err, err_size,
                       "a value is not valid UTF-8 or memory ran out");
        goto out;
    }
    headers = json_headers(action);
    if (headers == NULL) {
        rc = fail_text(s, id, op, SN_ERR_BACKEND, err, err_size,
                       "out of memory");
        goto out;
    }

    sn_http_request_init(&req, "POST", s->url);
    req.headers = headers;
    req.body = text;
    req.body_size = strlen(text);
    req.max_body = RESPONSE_MAX;
    req.sign = sn_aws_sign;
    req.sign_opaque = &s->signer;
    req.resource = s->resource;
    rc = sn_http_send(s->client, &req, &resp, cause, sizeof(cause));
    if (rc < 0 && accept_code != NULL &&
        strcmp(resp.aws_code, accept_code) == 0) {
        rc = CODE_MATCHED;
        goto out;
    }
    if (rc < 0) {
        fail_text(s, id, op, rc, err, err_size, cause);
        goto out;
    }

    if (reply != NULL) {
        *reply = json_loadb(resp.body ? resp.body : "", resp.body_size, 0,
                            NULL);
        if (*reply == NULL)
            rc = fail_text(s, id, op, SN_ERR_BACKEND, err, err_size,
                           "the response is not JSON");
    }

out:
    json_decref(body);
    free(text);
    curl_slist_free_all(headers);
    sn_http_response_release(&resp);
    return rc;
}

/*
 * Updates the item of id with the update expression and the condition,
 * whose #names are filled in from the expressions. values is taken over.
 * With attributes not NULL, *attributes gets the updated attributes
 * (ReturnValues UPDATED_NEW); free with json_decref(). Returns 0,
 * CODE_MATCHED when the condition failed, or a negative code.
 */
static int update_item(struct dynamodb_state *s, const char *id,
                       const char *op, const char *update,
                       const char *condition, json_t *values,
                       json_t **attributes, char *err, size_t err_size)
{
    json_t *body, *names = json_object(), *reply = NULL;
    int rc;

    add_names(names, update);
    add_names(names, condition);
    body = json_pack("{s:{s:o}, s:s, s:s, s:o, s:o, s:s}",
                     "Key", "id", attr_s(id),
                     "UpdateExpression", update,
                     "ConditionExpression", condition,
                     "ExpressionAttributeNames", names,
                     "ExpressionAttributeValues", values,
                     "ReturnValues", attributes ? "UPDATED_NEW" : "NONE");
    rc = call(s, id, op, "UpdateItem", body,
              "ConditionalCheckFailedException",
              attributes ? &reply : NULL, err, err_size);
    if (rc == 0 && attributes != NULL) {
        *attributes = json_incref(json_object_get(reply, "Attributes"));
        json_decref(reply);
    }
    return rc;
}

/* Reads the item of id with a consistent read into *item (free with
 * json_decref()), or returns SN_ERR_NOT_FOUND. */
static int load_item(struct dynamodb_state *s, const char *id,
                     const char *op, json_t **item, char *err,
                     size_t err_size)
{
    json_t *reply = NULL;
    int rc;

    rc = call(s, id, op, "GetItem",
              json_pack("{s:{s:o}, s:b}", "Key", "id", attr_s(id),
                        "ConsistentRead", 1),
              NULL, &reply, err, err_size);
    if (rc < 0)
        return rc;

    *item = json_incref(json_object_get(reply, "Item"));
    json_decref(reply);
    if (*item == NULL)
        return fail_text(s, id, op, SN_ERR_NOT_FOUND, err, err_size,
                         "not found");
    return 0;
}

/* ---- records ------------------------------------------------------------ */

/* Fills *v from item, the done flags included when with_done is set.
 * Returns 0 or SN_ERR_BACKEND (unknown status, out of memory). */
static int video_from_item(json_t *item, int with_done, struct sn_video *v)
{
    json_t *done = done_set(item), *job;
    const char *summary = json_string_value(
        json_object_get(json_object_get(item, "summary"), "S"));
    size_t i;

    memset(v, 0, sizeof(*v));
    snprintf(v->id, sizeof(v->id), "%s", item_s(item, "id"));
    snprintf(v->source, sizeof(v->source), "%s", item_s(item, "source"));
    snprintf(v->upload_tag, sizeof(v->upload_tag), "%s",
             item_s(item, "upload_tag"));
    snprintf(v->error, sizeof(v->error), "%s", item_s(item, "error"));
    v->generation = item_n(item, "generation");
    v->status = (enum sn_video_status)status_from_name(
        item_s(item, "status"));
    v->n_jobs = (int)item_n(item, "n_jobs");
    v->n_done = (int)json_array_size(done);
    v->duration_us = item_n(item, "duration_us");
    v->created_ms = item_n(item, "created_ms");
    v->updated_ms = item_n(item, "updated_ms");
    if ((int)v->status < 0 || v->n_jobs < 0 ||
        v->n_jobs > SN_STATE_MAX_JOBS)
        return SN_ERR_BACKEND;

    if (summary != NULL && (v->summary = strdup(summary)) == NULL)
        return SN_ERR_BACKEND;
    if (!with_done || v->n_jobs == 0)
        return 0;
    v->done = calloc((size_t)v->n_jobs, 1);
    if (v->done == NULL)
        return SN_ERR_BACKEND;
    json_array_foreach(done, i, job) {
        const char *text = json_string_value(job);
        long n = text != NULL ? strtol(text, NULL, 10) : -1;

        if (n >= 0 && n < v->n_jobs)
            v->done[n] = 1;
    }
    return 0;
}

/* Reads the video of id with its done flags; on success *item (when not
 * NULL) keeps the raw item, freed with json_decref(). */
static int load_video(struct dynamodb_state *s, const char *id,
                      const char *op, struct sn_video *v, json_t **item,
                      char *err, size_t err_size)
{
    json_t *raw = NULL;
    int rc;

    memset(v, 0, sizeof(*v));
    rc = load_item(s, id, op, &raw, err, err_size);
    if (rc < 0)
        return rc;
    if (video_from_item(raw, 1, v) < 0) {
        sn_video_release(v);
        json_decref(raw);
        return fail_text(s, id, op, SN_ERR_BACKEND, err, err_size,
                         "the item has an unknown status or job count, or "
                         "memory ran out");
    }
    if (item != NULL)
        *item = raw;
    else
        json_decref(raw);
    return 0;
}

/* Loads the video and checks that generation is its current one. */
static int load_current(struct dynamodb_state *s, const char *id,
                        int64_t generation, const char *op,
                        struct sn_video *v, json_t **item, char *err,
                        size_t err_size)
{
    char cause[128];
    int rc = load_video(s, id, op, v, item, err, err_size);

    if (rc < 0 || v->generation == generation)
        return rc;
    snprintf(cause, sizeof(cause),
             "generation %lld is stale (current is %lld)",
             (long long)generation, (long long)v->generation);
    sn_video_release(v);
    if (item != NULL) {
        json_decref(*item);
        *item = NULL;
    }
    return fail_text(s, id, op, SN_ERR_CONFLICT, err, err_size, cause);
}

static int status_conflict(struct dynamodb_state *s, const char *id,
                           const char *op, const struct sn_video *v,
                           char *err, size_t err_size)
{
    char cause[64];

    snprintf(cause, sizeof(cause), "video is %s",
             status_names[v->status]);
    return fail_text(s, id, op, SN_ERR_CONFLICT, err, err_size, cause);
}

/* ---- checks ------------------------------------------------------------- */

/* Rejects text that is empty or does not fit a field of size bytes. */
static int check_text(struct dynamodb_state *s, const char *what,
                      const char *text, size_t size, char *err,
                      size_t err_size)
{
    size_t len = text ? strlen(text) : 0;

    if (len == 0 || len >= size) {
        snprintf(err, err_size,
                 "state %s: %s has %zu bytes, expected 1 to %zu",
                 s->pub.name, what, len, size - 1);
        return SN_ERR_LIMIT;
    }
    return 0;
}

static int check_id(struct dynamodb_state *s, const char *id, char *err,
                    size_t err_size)
{
    int rc = check_text(s, "video id", id,
                        sizeof(((struct sn_video *)0)->id), err, err_size);

    if (rc == 0 && strcmp(id, COUNTER_ID) == 0) {
        snprintf(err, err_size, "state %s: video id %s is reserved for the "
                 "upload counter", s->pub.name, id);
        return SN_ERR_INPUT;
    }
    return rc;
}

/* Copies text into a field of size bytes, cut before a UTF-8
 * continuation byte so that no character is split. */
static void copy_cut(char *field, size_t size, const char *text)
{
    size_t len = sn_utf8_cut(text, strlen(text), size - 1);

    memcpy(field, text, len);
    field[len] = '\0';
}

/* ---- begin -------------------------------------------------------------- */

/* Raises the upload counter and returns its new value in *seq. */
static int next_upload_seq(struct dynamodb_state *s, const char *id,
                           int64_t *seq, char *err, size_t err_size)
{
    json_t *body, *reply = NULL;
    int rc;

    body = json_pack("{s:{s:o}, s:s, s:{s:o}, s:s}",
                     "Key", "id", attr_s(COUNTER_ID),
                     "UpdateExpression", "ADD upload_seq :one",
                     "ExpressionAttributeValues", ":one", attr_n(1),
                     "ReturnValues", "UPDATED_NEW");
    rc = call(s, id, "begin", "UpdateItem", body, NULL, &reply, err,
              err_size);
    if (rc < 0)
        return rc;
    *seq = item_n(json_object_get(reply, "Attributes"), "upload_seq");
    json_decref(reply);
    return 0;
}

/* Writes generation 1 unless an item exists; CODE_MATCHED if one does. */
static int put_first(struct dynamodb_state *s, const char *id,
                     const char *source, const char *tag, char *err,
                     size_t err_size)
{
    int64_t seq, now = now_ms();
    json_t *item;
    int rc;

    rc = next_upload_seq(s, id, &seq, err, err_size);
    if (rc < 0)
        return rc;
    item = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "id", attr_s(id), "source", attr_s(source),
                     "upload_tag", attr_s(tag), "generation", attr_n(1),
                     "status", attr_s("queued"), "n_jobs", attr_n(0),
                     "duration_us", attr_n(0), "created_ms", attr_n(now),
                     "updated_ms", attr_n(now), "upload_seq", attr_n(seq));
    return call(s, id, "begin", "PutItem",
                json_pack("{s:o, s:s, s:{s:s}}", "Item", item,
                          "ConditionExpression", "attribute_not_exists(#id)",
                          "ExpressionAttributeNames", "#id", "id"),
                "ConditionalCheckFailedException", NULL, err, err_size);
}

/* Starts generation old + 1 if old is still current; CODE_MATCHED if
 * another upload got there first. */
static int restart(struct dynamodb_state *s, const char *id,
                   const char *source, const char *tag, int64_t old,
                   char *err, size_t err_size)
{
    int64_t seq;
    int rc;

    rc = next_upload_seq(s, id, &seq, err, err_size);
    if (rc < 0)
        return rc;
    return update_item(
        s, id, "begin",
        "SET #source = :source, #upload_tag = :tag, #generation = :new,"
        " #status = :queued, #n_jobs = :zero, #duration_us = :zero,"
        " #updated_ms = :now, #upload_seq = :seq"
        " REMOVE #done, #summary, #error, #finished_by",
        "#generation = :old",
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                  ":source", attr_s(source), ":tag", attr_s(tag),
                  ":new", attr_n(old + 1), ":old", attr_n(old),
                  ":queued", attr_s("queued"), ":zero", attr_n(0),
                  ":now", attr_n(now_ms()), ":seq", attr_n(seq)),
        NULL, err, err_size);
}

static int dynamodb_begin(struct sn_state *base, const char *id,
                          const char *source, const char *tag,
                          int64_t *generation, char *err, size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc == 0)
        rc = check_text(s, "source", source,
                        sizeof(((struct sn_video *)0)->source), err,
                        err_size);
    if (rc == 0)
        rc = check_text(s, "upload tag", tag,
                        sizeof(((struct sn_video *)0)->upload_tag), err,
                        err_size);
    if (rc < 0)
        return rc;

    for (int attempt = 0; attempt < BEGIN_ATTEMPTS; attempt++) {
        json_t *item = NULL;
        const char *current_tag;
        int64_t current;

        rc = load_item(s, id, "begin", &item, err, err_size);
        if (rc == SN_ERR_NOT_FOUND) {
            rc = put_first(s, id, source, tag, err, err_size);
            current = 0;
        } else if (rc == 0) {
            current = item_n(item, "generation");
            current_tag = item_s(item, "upload_tag");
            if (strcmp(current_tag, tag) == 0) {
                /* A repeated event for the current upload. */
                json_decref(item);
                *generation = current;
                return 0;
            }
            rc = restart(s, id, source, tag, current, err, err_size);
        }
        json_decref(item);
        if (rc == 0)
            *generation = current + 1;
        if (rc != CODE_MATCHED)
            return rc;
    }
    snprintf(err, err_size, "state %s: video %s: begin failed: lost %d "
             "races with other uploads of the video", s->pub.name, id,
             BEGIN_ATTEMPTS);
    return SN_ERR_AGAIN;
}

/* ---- set_plan, mark_done, finish, fail ---------------------------------- */

/*
 * Explains a failed set_plan() condition. A plan that repeats the recorded
 * one (a redelivered orchestrator job) is accepted. A different one is
 * rejected, because the done set may already count jobs of the first.
 */
static int explain_set_plan(struct dynamodb_state *s, const char *id,
                            int64_t generation, int n_jobs,
                            int64_t duration_us, const char *summary,
                            char *err, size_t err_size)
{
    struct sn_video v;
    int rc, same;

    rc = load_current(s, id, generation, "set plan", &v, NULL, err,
                      err_size);
    if (rc < 0)
        return rc;

    same = v.n_jobs == n_jobs && v.duration_us == duration_us &&
           ((summary == NULL && v.summary == NULL) ||
            (summary != NULL && v.summary != NULL &&
             strcmp(summary, v.summary) == 0));
    if (v.status != SN_VIDEO_PROCESSING)
        rc = status_conflict(s, id, "set plan", &v, err, err_size);
    else if (!same)
        rc = fail_text(s, id, "set plan", SN_ERR_CONFLICT, err, err_size,
                       "the generation is already planned with other "
                       "values");
    sn_video_release(&v);
    return rc;
}

static int dynamodb_set_plan(struct sn_state *base, const char *id,
                             int64_t generation, int n_jobs,
                             int64_t duration_us, const char *summary,
                             char *err, size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    json_t *values;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc == 0)
        rc = sn_state_check_plan(&s->pub, id, n_jobs, duration_us, summary,
                                 err, err_size);
    if (rc < 0)
        return rc;

    /* A queued item has no summary: begin() removes it. */
    values = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
                       ":g", attr_n(generation), ":queued", attr_s("queued"),
                       ":processing", attr_s("processing"),
                       ":n", attr_n(n_jobs), ":d", attr_n(duration_us),
                       ":now", attr_n(now_ms()));
    if (values != NULL && summary != NULL)
        json_object_set_new(values, ":summary", attr_s(summary));
    rc = update_item(s, id, "set plan",
                     summary != NULL ?
                     "SET #status = :processing, #n_jobs = :n,"
                     " #duration_us = :d, #updated_ms = :now,"
                     " #summary = :summary" :
                     "SET #status = :processing, #n_jobs = :n,"
                     " #duration_us = :d, #updated_ms = :now",
                     "#generation = :g AND #status = :queued", values, NULL,
                     err, err_size);
    if (rc == CODE_MATCHED)
        rc = explain_set_plan(s, id, generation, n_jobs, duration_us,
                              summary, err, err_size);
    return rc;
}

/* Explains a failed mark_done() condition; a job already in the done set
 * is accepted and *n_done set. */
static int explain_mark_done(struct dynamodb_state *s, const char *id,
                             int64_t generation, int job, int *n_done,
                             char *err, size_t err_size)
{
    struct sn_video v;
    char cause[96];
    int rc;

    rc = load_current(s, id, generation, "mark done", &v, NULL, err,
                      err_size);
    if (rc < 0)
        return rc;

    if (v.status != SN_VIDEO_PROCESSING && v.status != SN_VIDEO_READY) {
        rc = status_conflict(s, id, "mark done", &v, err, err_size);
    } else if (job < 0 || job >= v.n_jobs) {
        snprintf(cause, sizeof(cause),
                 "job %d is out of range (the plan has %d jobs)", job,
                 v.n_jobs);
        rc = fail_text(s, id, "mark done", SN_ERR_CONFLICT, err, err_size,
                       cause);
    } else if (!v.done[job]) {
        /* Every part of the condition is true now, so the item changed
         * between the write and this read. */
        rc = fail_text(s, id, "mark done", SN_ERR_AGAIN, err, err_size,
                       "the video changed during the update; retry");
    } else if (n_done != NULL) {
        *n_done = v.n_done;
    }
    sn_video_release(&v);
    return rc;
}

/*
 * A repeated job fails the condition "NOT contains(done, job)", so
 * updated_ms changes only when the set grows. explain_mark_done() then
 * reads the size of the set.
 */
static int dynamodb_mark_done(struct sn_state *base, const char *id,
                              int64_t generation, int job, int *n_done,
                              char *err, size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    json_t *attributes = NULL;
    char job_text[16];
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;
    if (job < 0)
        return explain_mark_done(s, id, generation, job, n_done, err,
                                 err_size);

    snprintf(job_text, sizeof(job_text), "%d", job);
    rc = update_item(
        s, id, "mark done", "ADD #done :jobs SET #updated_ms = :now",
        "#generation = :g AND #status IN (:processing, :ready)"
        " AND #n_jobs > :job AND NOT contains(#done, :job)",
        json_pack("{s:o, s:o, s:o, s:{s:[s]}, s:o, s:o}",
                  ":g", attr_n(generation),
                  ":processing", attr_s("processing"),
                  ":ready", attr_s("ready"),
                  ":jobs", "NS", job_text, ":job", attr_n(job),
                  ":now", attr_n(now_ms())),
        &attributes, err, err_size);
    if (rc == CODE_MATCHED)
        return explain_mark_done(s, id, generation, job, n_done, err,
                                 err_size);
    if (rc == 0 && n_done != NULL)
        *n_done = (int)json_array_size(done_set(attributes));
    json_decref(attributes);
    return rc;
}

/*
 * A token unique to one finish() call, stored in the item by the winner.
 * If the HTTP layer retries an UpdateItem whose first attempt succeeded
 * but whose response was lost, the retry fails the condition, and the
 * token in the item still shows that this call won.
 */
static void finish_token(struct dynamodb_state *s, char *out, size_t size)
{
    snprintf(out, size, "%s-%u", s->token_prefix, ++s->token_count);
}

static int dynamodb_finish(struct sn_state *base, const char *id,
                           int64_t generation, int *won, char *err,
                           size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    struct sn_video v;
    json_t *item = NULL;
    char token[96], cause[64];
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;

    finish_token(s, token, sizeof(token));
    rc = update_item(
        s, id, "finish",
        "SET #status = :ready, #updated_ms = :now, #finished_by = :token",
        "#generation = :g AND #status = :processing"
        " AND size(#done) = #n_jobs",
        json_pack("{s:o, s:o, s:o, s:o, s:o}",
                  ":g", attr_n(generation),
                  ":processing", attr_s("processing"),
                  ":ready", attr_s("ready"), ":now", attr_n(now_ms()),
                  ":token", attr_s(token)),
        NULL, err, err_size);
    if (rc != CODE_MATCHED) {
        if (rc == 0 && won != NULL)
            *won = 1;
        return rc;
    }

    rc = load_current(s, id, generation, "finish", &v, &item, err,
                      err_size);
    if (rc < 0)
        return rc;
    if (v.status == SN_VIDEO_READY) {
        if (won != NULL)
            *won = strcmp(item_s(item, "finished_by"), token) == 0;
    } else if (v.status != SN_VIDEO_PROCESSING) {
        rc = status_conflict(s, id, "finish", &v, err, err_size);
    } else {
        snprintf(cause, sizeof(cause), "%d of %d jobs are done", v.n_done,
                 v.n_jobs);
        rc = fail_text(s, id, "finish", SN_ERR_CONFLICT, err, err_size,
                       cause);
    }
    sn_video_release(&v);
    json_decref(item);
    return rc;
}

/*
 * A video that has already failed keeps its first reason, which names the
 * original cause. A reason longer than sn_video.error is cut to fit.
 */
static int dynamodb_fail(struct sn_state *base, const char *id,
                         int64_t generation, const char *reason, char *err,
                         size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    char text[sizeof(((struct sn_video *)0)->error)];
    struct sn_video v;
    json_t *values;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;
    copy_cut(text, sizeof(text), reason ? reason : "");

    values = json_pack("{s:o, s:o, s:o, s:o, s:o}",
                       ":g", attr_n(generation), ":queued", attr_s("queued"),
                       ":processing", attr_s("processing"),
                       ":failed", attr_s("failed"), ":now", attr_n(now_ms()));
    /* An empty reason is stored as no error attribute, like every other
     * empty error. */
    if (values != NULL && text[0] != '\0')
        json_object_set_new(values, ":reason", attr_s(text));
    rc = update_item(s, id, "fail",
                     text[0] != '\0' ?
                     "SET #status = :failed, #error = :reason,"
                     " #updated_ms = :now" :
                     "SET #status = :failed, #updated_ms = :now",
                     "#generation = :g AND #status IN (:queued, :processing)",
                     values, NULL, err, err_size);
    if (rc != CODE_MATCHED)
        return rc;

    rc = load_current(s, id, generation, "fail", &v, NULL, err, err_size);
    if (rc == 0 && v.status != SN_VIDEO_FAILED)
        rc = status_conflict(s, id, "fail", &v, err, err_size);
    sn_video_release(&v);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

static int dynamodb_get(struct sn_state *base, const char *id,
                        struct sn_video *v, char *err, size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    int rc;

    memset(v, 0, sizeof(*v));
    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;
    return load_video(s, id, "get", v, NULL, err, err_size);
}

int sn_state_dynamodb_check(struct sn_state *st, char *err,
                            size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)st;
    json_t *reply = NULL;
    int rc;

    /* Video ids are hex digits, so no item has this key. */
    rc = call(s, NULL, "start-up check", "GetItem",
              json_pack("{s:{s:o}}", "Key", "id", attr_s("-")), NULL,
              &reply, err, err_size);
    json_decref(reply);
    return rc;
}

struct listed {
    int64_t upload_seq;
    struct sn_video video;
};

struct listing {
    struct listed *entries;
    size_t n, cap;
};

static int newest_first(const void *a, const void *b)
{
    int64_t x = ((const struct listed *)a)->upload_seq;
    int64_t y = ((const struct listed *)b)->upload_seq;

    if (x < y)
        return 1;
    if (x > y)
        return -1;
    return 0;
}

/* Adds the videos of one Scan page; the counter item is skipped. */
static int add_page(struct listing *l, json_t *items)
{
    size_t i;
    json_t *item;

    json_array_foreach(items, i, item) {
        struct listed *e;

        if (json_object_get(item, "generation") == NULL)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            struct listed *grown = realloc(l->entries, cap * sizeof(*grown));

            if (grown == NULL)
                return SN_ERR_BACKEND;
            l->entries = grown;
            l->cap = cap;
        }
        e = &l->entries[l->n++];
        e->upload_seq = item_n(item, "upload_seq");
        if (video_from_item(item, 0, &e->video) < 0)
            return SN_ERR_BACKEND;
    }
    return 0;
}

/* Reads every page of a consistent Scan into l. */
static int scan_all(struct dynamodb_state *s, struct listing *l, char *err,
                    size_t err_size)
{
    json_t *start = NULL;
    int rc;

    do {
        json_t *body = json_pack("{s:b}", "ConsistentRead", 1), *reply = NULL;

        if (body != NULL && start != NULL)
            json_object_set_new(body, "ExclusiveStartKey", start);
        rc = call(s, NULL, "list", "Scan", body, NULL, &reply, err,
                  err_size);
        if (rc < 0)
            return rc;

        rc = add_page(l, json_object_get(reply, "Items"));
        start = json_incref(json_object_get(reply, "LastEvaluatedKey"));
        json_decref(reply);
        if (rc < 0) {
            json_decref(start);
            return fail_text(s, NULL, "list", rc, err, err_size,
                             "an item has an unknown status or job count, "
                             "or memory ran out");
        }
    } while (start != NULL);
    return 0;
}

/*
 * NOTE: list() keeps every video of the table in memory and sorts there,
 * because a Scan returns items in hash order. A table of many thousands
 * of videos needs a global secondary index on upload_seq instead.
 */
static int dynamodb_list(struct sn_state *base,
                         int (*each)(void *opaque, const struct sn_video *v),
                         void *opaque, char *err, size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;
    struct listing l = {0};
    int rc;

    rc = scan_all(s, &l, err, err_size);
    if (rc == 0 && l.n > 0) {
        qsort(l.entries, l.n, sizeof(*l.entries), newest_first);
        for (size_t i = 0; i < l.n && rc == 0; i++)
            rc = each(opaque, &l.entries[i].video);
    }

    for (size_t i = 0; i < l.n; i++)
        sn_video_release(&l.entries[i].video);
    free(l.entries);
    return rc;
}

/* ---- open, close, create ------------------------------------------------ */

static void dynamodb_close(struct sn_state *base)
{
    struct dynamodb_state *s = (struct dynamodb_state *)base;

    sn_http_client_free(s->client);
    sn_aws_provider_free(s->provider);
    free(s);
}

static const struct sn_state_ops dynamodb_state_ops = {
    .begin = dynamodb_begin,
    .set_plan = dynamodb_set_plan,
    .mark_done = dynamodb_mark_done,
    .finish = dynamodb_finish,
    .fail = dynamodb_fail,
    .get = dynamodb_get,
    .list = dynamodb_list,
    .close = dynamodb_close,
};

/* Table names: 3 to 255 of A-Z a-z 0-9 _ . - (DynamoDB naming rules). */
static int valid_table_name(const char *table)
{
    size_t len = table ? strlen(table) : 0;

    return len >= 3 && len <= 255 &&
           strspn(table, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

static int setup(struct dynamodb_state *s, char *err, size_t err_size)
{
    char endpoint[SN_HTTP_URL_MAX];
    struct timespec ts;
    int rc;

    rc = sn_aws_provider_new(&s->provider);
    if (rc < 0)
        return fail_text(s, NULL, "open", SN_ERR_BACKEND, err, err_size,
                         "out of memory");
    s->signer.provider = s->provider;
    snprintf(s->signer.service, sizeof(s->signer.service), "dynamodb");
    rc = sn_aws_region(s->signer.region, sizeof(s->signer.region), err,
                       err_size);
    if (rc == 0)
        rc = sn_aws_endpoint("dynamodb", s->signer.region, endpoint,
                             sizeof(endpoint), err, err_size);
    if (rc < 0)
        return rc;
    snprintf(s->url, sizeof(s->url), "%s/", endpoint);

    s->client = sn_http_client_new(NULL);
    if (s->client == NULL)
        return fail_text(s, NULL, "open", SN_ERR_BACKEND, err, err_size,
                         "creating the HTTP client failed");

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(s->token_prefix, sizeof(s->token_prefix), "%ld-%lld-%ld",
             (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    return 0;
}

int sn_state_dynamodb_open(const char *table, struct sn_state **out,
                           char *err, size_t err_size)
{
    struct dynamodb_state *s;
    int rc;

    if (!valid_table_name(table)) {
        snprintf(err, err_size, "state dynamodb: table name \"%s\" is "
                 "invalid: expected 3 to 255 of A-Z a-z 0-9 _ . -",
                 table ? table : "");
        return SN_ERR_INPUT;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, err_size, "state %s: open failed: out of memory",
                 table);
        return SN_ERR_BACKEND;
    }
    s->pub.ops = &dynamodb_state_ops;
    snprintf(s->pub.name, sizeof(s->pub.name), "%s", table);
    snprintf(s->resource, sizeof(s->resource), "dynamodb table %s", table);

    rc = setup(s, err, err_size);
    if (rc < 0) {
        dynamodb_close(&s->pub);
        return rc;
    }
    *out = &s->pub;
    return 0;
}

/* Waits for the table to become ACTIVE, polling DescribeTable each 0.5 s
 * for up to 60 s (a new on-demand table is usually ACTIVE in seconds). */
static int wait_active(struct dynamodb_state *s, char *err, size_t err_size)
{
    struct timespec half = {0, 500000000};

    for (int i = 0; i < 120; i++) {
        json_t *reply = NULL;
        const char *status;
        int rc, active;

        rc = call(s, NULL, "create table", "DescribeTable",
                  json_object(), NULL, &reply, err, err_size);
        if (rc < 0)
            return rc;
        status = json_string_value(json_object_get(
            json_object_get(reply, "Table"), "TableStatus"));
        active = status != NULL && strcmp(status, "ACTIVE") == 0;
        json_decref(reply);
        if (active)
            return 0;
        nanosleep(&half, NULL);
    }
    return fail_text(s, NULL, "create table", SN_ERR_AGAIN, err, err_size,
                     "the table is not ACTIVE after 60 s");
}

int sn_state_dynamodb_create_table(struct sn_state *st, char *err,
                                   size_t err_size)
{
    struct dynamodb_state *s = (struct dynamodb_state *)st;
    json_t *body;
    int rc;

    body = json_pack("{s:[{s:s, s:s}], s:[{s:s, s:s}], s:s}",
                     "AttributeDefinitions",
                     "AttributeName", "id", "AttributeType", "S",
                     "KeySchema", "AttributeName", "id", "KeyType", "HASH",
                     "BillingMode", "PAY_PER_REQUEST");
    rc = call(s, NULL, "create table", "CreateTable", body,
              "ResourceInUseException", NULL, err, err_size);
    if (rc < 0)
        return rc;
    return wait_active(s, err, err_size);
}
