#include "queue/queue_sqs.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "util/error.h"

/* Limits from the SQS API reference (SendMessageBatch, ReceiveMessage,
 * ChangeMessageVisibility). */
#define SQS_BATCH_BYTES (256 * 1024)    /* sum of the bodies of one batch */
#define SQS_MAX_WAIT_S 20
#define SQS_MAX_DELAY_S 900
#define SQS_MAX_VISIBILITY_S 43200

struct sqs_queue {
    struct sn_queue pub;        /* pub.name is the queue URL */
    struct sn_aws_provider *provider;
    struct sn_aws_signer signer;
    struct sn_http_client *client;
    char endpoint[SN_HTTP_URL_MAX + 1];     /* with a trailing '/' */
    char dead_url[SN_HTTP_URL_MAX];         /* "" until count() finds it */
};

static const struct sn_queue_ops sqs_queue_ops;

static const char *string_or(json_t *value, const char *fallback)
{
    const char *text = json_string_value(value);

    return text != NULL ? text : fallback;
}

/* ---- Requests ----------------------------------------------------------- */

/*
 * Sends action with body as its JSON input and stores the decoded reply
 * in *reply (when reply is not NULL) and the service's error code in code
 * (when code is not NULL). Takes the reference to body, which may be NULL
 * when building it ran out of memory.
 */
static int call(struct sqs_queue *q, const char *action, json_t *body,
                json_t **reply, char *code, size_t code_size, char *err,
                size_t err_size)
{
    struct curl_slist *headers = NULL, *list;
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    char target[64], resource[sizeof(q->pub.name) + 64];
    char *text = NULL;
    json_error_t json_err;
    int rc = SN_ERR_BACKEND;

    if (code != NULL && code_size > 0)
        code[0] = '\0';
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text == NULL) {
        snprintf(err, err_size, "queue %s: %s failed: out of memory",
                 q->pub.name, action);
        goto out;
    }

    snprintf(target, sizeof(target), "X-Amz-Target: AmazonSQS.%s", action);
    list = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
    headers = list;
    if (list != NULL)
        list = curl_slist_append(headers, target);
    if (list == NULL) {
        snprintf(err, err_size, "queue %s: %s failed: out of memory",
                 q->pub.name, action);
        goto out;
    }

    snprintf(resource, sizeof(resource), "queue %s (%s)", q->pub.name,
             action);
    sn_http_request_init(&req, "POST", q->endpoint);
    req.headers = headers;
    req.body = text;
    req.body_size = strlen(text);
    req.sign = sn_aws_sign;
    req.sign_opaque = &q->signer;
    req.resource = resource;
    rc = sn_http_send(q->client, &req, &resp, err, err_size);
    if (code != NULL && code_size > 0)
        snprintf(code, code_size, "%s", resp.aws_code);
    if (rc < 0 || reply == NULL)
        goto out;

    *reply = json_loadb(resp.body ? resp.body : "", resp.body_size, 0,
                        &json_err);
    if (*reply == NULL || !json_is_object(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        snprintf(err, err_size, "queue %s: %s returned invalid JSON: %s",
                 q->pub.name, action, json_err.text);
        rc = SN_ERR_BACKEND;
    }

out:
    sn_http_response_release(&resp);
    curl_slist_free_all(headers);
    free(text);
    json_decref(body);
    return rc;
}

/*
 * Sends an action on a receipt. A rejected receipt becomes
 * SN_ERR_CONFLICT: SQS returns ReceiptHandleIsInvalid, MessageNotInflight
 * (the visibility timeout ran out), or InvalidParameterValue naming the
 * receipt handle (the message was deleted or delivered again).
 */
static int receipt_call(struct sqs_queue *q, const char *action,
                        json_t *body, char *err, size_t err_size)
{
    char code[128];
    int rc = call(q, action, body, NULL, code, sizeof(code), err, err_size);

    if (rc >= 0 || rc == SN_ERR_CONFLICT)
        return rc;
    if (strstr(code, "MessageNotInflight") != NULL)
        return SN_ERR_CONFLICT;
    if (strcmp(code, "InvalidParameterValue") == 0 &&
        (strstr(err, "ReceiptHandle") != NULL ||
         strstr(err, "receipt handle") != NULL))
        return SN_ERR_CONFLICT;
    return rc;
}

static int check_receipt(struct sqs_queue *q, const char *receipt,
                         const char *op, char *err, size_t err_size)
{
    if (receipt == NULL || receipt[0] == '\0') {
        snprintf(err, err_size, "queue %s: %s failed: missing receipt",
                 q->pub.name, op);
        return SN_ERR_INPUT;
    }
    return 0;
}

static int check_seconds(struct sqs_queue *q, const char *what, int value,
                         int max, char *err, size_t err_size)
{
    if (value < 0 || value > max) {
        snprintf(err, err_size, "queue %s: %s of %d s is out of range "
                 "(0 to %d s)", q->pub.name, what, value, max);
        return SN_ERR_LIMIT;
    }
    return 0;
}

/* ---- send --------------------------------------------------------------- */

/* Turns the Failed list of a SendMessageBatch reply into an error: AGAIN
 * when every failure is the service's fault, BACKEND otherwise. */
static int batch_failures(struct sqs_queue *q, json_t *reply, int n,
                          char *err, size_t err_size)
{
    json_t *failed = json_object_get(reply, "Failed");
    json_t *first, *entry;
    size_t i, count = json_array_size(failed);
    int sender_fault = 0;

    if (count == 0)
        return 0;

    json_array_foreach(failed, i, entry)
        if (json_is_true(json_object_get(entry, "SenderFault")))
            sender_fault = 1;
    first = json_array_get(failed, 0);
    snprintf(err, err_size, "queue %s: SendMessageBatch failed for %zu of "
             "%d messages; entry %s: %s: %s", q->pub.name, count, n,
             string_or(json_object_get(first, "Id"), "?"),
             string_or(json_object_get(first, "Code"), "?"),
             string_or(json_object_get(first, "Message"), ""));
    return sender_fault ? SN_ERR_BACKEND : SN_ERR_AGAIN;
}

/* Sends bodies[first] to bodies[last - 1] in one SendMessageBatch. */
static int send_batch(struct sqs_queue *q, const char *const *bodies,
                      int first, int last, int delay_s, char *err,
                      size_t err_size)
{
    json_t *entries = json_array(), *reply = NULL;
    char id[16];
    int rc;

    if (entries == NULL) {
        snprintf(err, err_size, "queue %s: send failed: out of memory",
                 q->pub.name);
        return SN_ERR_BACKEND;
    }
    for (int i = first; i < last; i++) {
        json_t *text = json_string(bodies[i]);

        if (text == NULL) {
            json_decref(entries);
            snprintf(err, err_size, "queue %s: send failed: message %d is "
                     "not valid UTF-8", q->pub.name, i);
            return SN_ERR_INPUT;
        }
        snprintf(id, sizeof(id), "%d", i);
        json_array_append_new(entries,
                              json_pack("{s:s, s:o, s:i}", "Id", id,
                                        "MessageBody", text,
                                        "DelaySeconds", delay_s));
    }

    rc = call(q, "SendMessageBatch",
              json_pack("{s:s, s:o}", "QueueUrl", q->pub.name, "Entries",
                        entries),
              &reply, NULL, 0, err, err_size);
    if (rc == 0)
        rc = batch_failures(q, reply, last - first, err, err_size);
    json_decref(reply);
    return rc;
}

/*
 * SendMessageBatch takes at most 256 KiB of bodies per request, so the
 * messages go in as many batches as needed. A failure after the first
 * batch leaves the earlier batches sent.
 */
static int sqs_send(struct sn_queue *base, const char *const *bodies, int n,
                    int delay_s, char *err, size_t err_size)
{
    struct sqs_queue *q = (struct sqs_queue *)base;
    size_t sizes[SN_QUEUE_MAX_BATCH];
    int first, last, rc;

    if (n < 1 || n > SN_QUEUE_MAX_BATCH) {
        snprintf(err, err_size, "queue %s: send of %d messages: expected 1 "
                 "to %d", q->pub.name, n, SN_QUEUE_MAX_BATCH);
        return SN_ERR_INPUT;
    }
    if (delay_s < 0)
        delay_s = 0;
    rc = check_seconds(q, "delay", delay_s, SQS_MAX_DELAY_S, err, err_size);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        sizes[i] = bodies[i] != NULL ? strlen(bodies[i]) : 0;
        if (sizes[i] == 0 || sizes[i] > SN_QUEUE_MAX_BODY) {
            snprintf(err, err_size, "queue %s: send failed: message %d is "
                     "%zu bytes (1 to %d allowed)", q->pub.name, i,
                     sizes[i], SN_QUEUE_MAX_BODY);
            return SN_ERR_LIMIT;
        }
    }

    for (first = 0; first < n; first = last) {
        size_t bytes = 0;

        for (last = first; last < n && bytes + sizes[last] <= SQS_BATCH_BYTES;
             last++)
            bytes += sizes[last];
        rc = send_batch(q, bodies, first, last, delay_s, err, err_size);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- receive ------------------------------------------------------------ */

/* Fills out from one element of a ReceiveMessage reply's Messages. */
static int take_message(struct sqs_queue *q, json_t *message,
                        struct sn_message *out, char *err, size_t err_size)
{
    json_t *body = json_object_get(message, "Body");
    const char *id = json_string_value(json_object_get(message, "MessageId"));
    const char *receipt =
        json_string_value(json_object_get(message, "ReceiptHandle"));
    const char *count = json_string_value(json_object_get(
        json_object_get(message, "Attributes"), "ApproximateReceiveCount"));

    if (id == NULL || receipt == NULL || !json_is_string(body) ||
        count == NULL || atoi(count) < 1) {
        snprintf(err, err_size, "queue %s: ReceiveMessage returned a message "
                 "without MessageId, ReceiptHandle, Body or "
                 "ApproximateReceiveCount", q->pub.name);
        return SN_ERR_BACKEND;
    }
    if (strlen(id) >= sizeof(out->id) ||
        strlen(receipt) >= sizeof(out->receipt)) {
        snprintf(err, err_size, "queue %s: message %.64s: id or receipt "
                 "handle (%zu bytes) exceeds the maximum of %zu bytes",
                 q->pub.name, id, strlen(receipt), sizeof(out->receipt) - 1);
        return SN_ERR_LIMIT;
    }

    memset(out, 0, sizeof(*out));
    out->body = strdup(json_string_value(body));
    if (out->body == NULL) {
        snprintf(err, err_size, "queue %s: receive failed: out of memory",
                 q->pub.name);
        return SN_ERR_BACKEND;
    }
    snprintf(out->id, sizeof(out->id), "%s", id);
    snprintf(out->receipt, sizeof(out->receipt), "%s", receipt);
    out->receive_count = atoi(count);
    return 0;
}

/*
 * One ReceiveMessage. wait_ms is rounded up to whole seconds for
 * WaitTimeSeconds and capped at SQS's 20 s, so a longer wait returns
 * SN_ERR_AGAIN after 20 s.
 */
static int sqs_receive(struct sn_queue *base, int visibility_s, int wait_ms,
                       struct sn_message *out, char *err, size_t err_size)
{
    struct sqs_queue *q = (struct sqs_queue *)base;
    json_t *reply = NULL, *messages;
    int wait_s = wait_ms > 0 ? (wait_ms + 999) / 1000 : 0;
    char code[128];
    int rc;

    rc = check_seconds(q, "visibility timeout", visibility_s,
                       SQS_MAX_VISIBILITY_S, err, err_size);
    if (rc < 0)
        return rc;
    if (wait_s > SQS_MAX_WAIT_S)
        wait_s = SQS_MAX_WAIT_S;

    /* AttributeNames is the older name of MessageSystemAttributeNames;
     * sending both serves services of either age. */
    rc = call(q, "ReceiveMessage",
              json_pack("{s:s, s:i, s:i, s:i, s:[s], s:[s]}",
                        "QueueUrl", q->pub.name, "MaxNumberOfMessages", 1,
                        "VisibilityTimeout", visibility_s,
                        "WaitTimeSeconds", wait_s,
                        "AttributeNames", "ApproximateReceiveCount",
                        "MessageSystemAttributeNames",
                        "ApproximateReceiveCount"),
              &reply, code, sizeof(code), err, err_size);
    if (rc < 0 && code[0] != '\0' && sn_aws_error_is_auth(0, code))
        return -EACCES;
    /* Callers read SN_ERR_AGAIN from a receive as "no message" and receive
     * again at once. Throttling that outlasted the retries, or credentials
     * that could not be fetched, must not look like that. */
    if (rc == SN_ERR_AGAIN)
        rc = SN_ERR_BACKEND;
    if (rc < 0)
        return rc;

    messages = json_object_get(reply, "Messages");
    if (json_array_size(messages) == 0) {
        snprintf(err, err_size, "queue %s: no message came within %d s",
                 q->pub.name, wait_s);
        rc = SN_ERR_AGAIN;
    } else {
        rc = take_message(q, json_array_get(messages, 0), out, err,
                          err_size);
    }
    json_decref(reply);
    return rc;
}

/* ---- extend, remove, release -------------------------------------------- */

static int change_visibility(struct sqs_queue *q, const char *receipt,
                             int seconds, const char *op, char *err,
                             size_t err_size)
{
    int rc = check_receipt(q, receipt, op, err, err_size);

    if (rc == 0)
        rc = check_seconds(q, "visibility timeout", seconds,
                           SQS_MAX_VISIBILITY_S, err, err_size);
    if (rc < 0)
        return rc;
    return receipt_call(q, "ChangeMessageVisibility",
                        json_pack("{s:s, s:s, s:i}", "QueueUrl", q->pub.name,
                                  "ReceiptHandle", receipt,
                                  "VisibilityTimeout", seconds),
                        err, err_size);
}

static int sqs_extend(struct sn_queue *base, const char *receipt,
                      int visibility_s, char *err, size_t err_size)
{
    return change_visibility((struct sqs_queue *)base, receipt, visibility_s,
                             "extend", err, err_size);
}

static int sqs_remove(struct sn_queue *base, const char *receipt, char *err,
                      size_t err_size)
{
    struct sqs_queue *q = (struct sqs_queue *)base;
    int rc = check_receipt(q, receipt, "remove", err, err_size);

    if (rc < 0)
        return rc;
    return receipt_call(q, "DeleteMessage",
                        json_pack("{s:s, s:s}", "QueueUrl", q->pub.name,
                                  "ReceiptHandle", receipt),
                        err, err_size);
}

/* SQS keeps no text with a message, so error is not stored. Nothing reads
 * it back either, because SQS moves dead messages without telling the
 * backend. */
static int sqs_release(struct sn_queue *base, const char *receipt,
                       int delay_s, const char *error, char *err,
                       size_t err_size)
{
    (void)error;
    return change_visibility((struct sqs_queue *)base, receipt,
                             delay_s > 0 ? delay_s : 0, "release", err,
                             err_size);
}

/* ---- count -------------------------------------------------------------- */

/* Reads the attributes named in names (a JSON array, reference taken) of
 * the queue at url into *attributes, a new reference. */
static int get_attributes(struct sqs_queue *q, const char *url, json_t *names,
                          json_t **attributes, char *err, size_t err_size)
{
    json_t *reply = NULL;
    int rc;

    rc = call(q, "GetQueueAttributes",
              json_pack("{s:s, s:o}", "QueueUrl", url, "AttributeNames",
                        names),
              &reply, NULL, 0, err, err_size);
    if (rc < 0)
        return rc;
    *attributes = json_incref(json_object_get(reply, "Attributes"));
    json_decref(reply);
    if (*attributes == NULL)
        *attributes = json_object();
    return 0;
}

static int64_t attribute_number(json_t *attributes, const char *name)
{
    const char *text = json_string_value(json_object_get(attributes, name));

    return text != NULL ? strtoll(text, NULL, 10) : 0;
}

/* Finds the URL of the dead-letter queue named by a RedrivePolicy (a JSON
 * string) from the ARN arn:aws:sqs:<region>:<account>:<name> in it. */
static int find_dead_url(struct sqs_queue *q, const char *policy, char *err,
                         size_t err_size)
{
    json_t *parsed = json_loads(policy, 0, NULL), *reply = NULL;
    const char *arn, *fields[6] = {NULL};
    char account[64];
    int n = 0, rc;

    arn = json_string_value(json_object_get(parsed, "deadLetterTargetArn"));
    for (const char *p = arn; p != NULL && n < 6; n++) {
        fields[n] = p;
        p = strchr(p, ':');
        if (p != NULL)
            p++;
    }
    if (n < 6 || fields[5] - fields[4] - 1 >= (long)sizeof(account)) {
        snprintf(err, err_size, "queue %s: count failed: RedrivePolicy has "
                 "no valid deadLetterTargetArn: %s", q->pub.name, policy);
        json_decref(parsed);
        return SN_ERR_BACKEND;
    }
    snprintf(account, sizeof(account), "%.*s",
             (int)(fields[5] - fields[4] - 1), fields[4]);

    rc = call(q, "GetQueueUrl",
              json_pack("{s:s, s:s}", "QueueName", fields[5],
                        "QueueOwnerAWSAccountId", account),
              &reply, NULL, 0, err, err_size);
    json_decref(parsed);
    if (rc < 0)
        return rc;
    snprintf(q->dead_url, sizeof(q->dead_url), "%s",
             string_or(json_object_get(reply, "QueueUrl"), ""));
    json_decref(reply);
    return 0;
}

/* Counts the messages of the dead-letter queue, visible or not. */
static int count_dead(struct sqs_queue *q, json_t *attributes, int64_t *dead,
                      char *err, size_t err_size)
{
    const char *policy =
        json_string_value(json_object_get(attributes, "RedrivePolicy"));
    json_t *dead_attributes = NULL;
    int rc;

    *dead = 0;
    if (policy == NULL)
        return 0;
    if (q->dead_url[0] == '\0') {
        rc = find_dead_url(q, policy, err, err_size);
        if (rc < 0)
            return rc;
    }

    rc = get_attributes(q, q->dead_url,
                        json_pack("[s, s]", "ApproximateNumberOfMessages",
                                  "ApproximateNumberOfMessagesNotVisible"),
                        &dead_attributes, err, err_size);
    if (rc < 0)
        return rc;
    *dead = attribute_number(dead_attributes, "ApproximateNumberOfMessages") +
            attribute_number(dead_attributes,
                             "ApproximateNumberOfMessagesNotVisible");
    json_decref(dead_attributes);
    return 0;
}

/* in_flight is SQS's NotVisible count: received messages only. Messages
 * sent with a delay are counted by neither visible nor in_flight. */
static int sqs_count(struct sn_queue *base, int64_t *visible,
                     int64_t *in_flight, int64_t *dead, char *err,
                     size_t err_size)
{
    struct sqs_queue *q = (struct sqs_queue *)base;
    json_t *attributes = NULL;
    int64_t dead_count = 0;
    int rc;

    rc = get_attributes(q, q->pub.name,
                        json_pack("[s, s, s]", "ApproximateNumberOfMessages",
                                  "ApproximateNumberOfMessagesNotVisible",
                                  "RedrivePolicy"),
                        &attributes, err, err_size);
    if (rc < 0)
        return rc;
    if (dead != NULL)
        rc = count_dead(q, attributes, &dead_count, err, err_size);

    if (rc == 0 && visible != NULL)
        *visible = attribute_number(attributes, "ApproximateNumberOfMessages");
    if (rc == 0 && in_flight != NULL)
        *in_flight = attribute_number(attributes,
                                      "ApproximateNumberOfMessagesNotVisible");
    if (rc == 0 && dead != NULL)
        *dead = dead_count;
    json_decref(attributes);
    return rc;
}

/* Reads maxReceiveCount from a RedrivePolicy, a JSON string in which the
 * count may be a number or a string of digits. Returns it, or -1. */
static int policy_max_receives(const char *policy)
{
    json_t *parsed = json_loads(policy, 0, NULL);
    json_t *value = json_object_get(parsed, "maxReceiveCount");
    long count = -1;

    if (json_is_integer(value))
        count = (long)json_integer_value(value);
    else if (json_is_string(value))
        count = strtol(json_string_value(value), NULL, 10);
    json_decref(parsed);
    return count >= 1 && count <= 1000 ? (int)count : -1;
}

int sn_queue_sqs_redrive_max(struct sn_queue *base, int *max_receives,
                             char *err, size_t err_size)
{
    struct sqs_queue *q = (struct sqs_queue *)base;
    json_t *attributes = NULL;
    const char *policy;
    int rc;

    rc = get_attributes(q, q->pub.name, json_pack("[s]", "RedrivePolicy"),
                        &attributes, err, err_size);
    if (rc < 0)
        return rc;

    *max_receives = 0;
    policy = json_string_value(json_object_get(attributes, "RedrivePolicy"));
    if (policy != NULL) {
        *max_receives = policy_max_receives(policy);
        if (*max_receives < 0) {
            snprintf(err, err_size, "queue %s: RedrivePolicy has no "
                     "maxReceiveCount from 1 to 1000: %s", q->pub.name,
                     policy);
            rc = SN_ERR_BACKEND;
        }
    }
    json_decref(attributes);
    return rc;
}

/* ---- open, close -------------------------------------------------------- */

static void sqs_close(struct sn_queue *base)
{
    struct sqs_queue *q = (struct sqs_queue *)base;

    sn_http_client_free(q->client);
    sn_aws_provider_free(q->provider);
    free(q);
}

/* Copies the region out of a host of the form sqs.<region>.amazonaws.com
 * at the start of url's authority, or returns -1. */
static int region_from_url(const char *url, char *out, size_t out_size)
{
    const char *host = strstr(url, "://"), *end;

    if (host == NULL || strncmp(host + 3, "sqs.", 4) != 0)
        return -1;
    host += 7;
    end = strchr(host, '.');
    if (end == NULL || end == host || strncmp(end, ".amazonaws.com", 14) != 0 ||
        (size_t)(end - host) >= out_size)
        return -1;
    snprintf(out, out_size, "%.*s", (int)(end - host), host);
    return 0;
}

static int set_region(struct sqs_queue *q, const char *queue_url, char *err,
                      size_t err_size)
{
    char region_err[SN_ERR_SIZE];

    if (sn_aws_region(q->signer.region, sizeof(q->signer.region), region_err,
                      sizeof(region_err)) == 0)
        return 0;
    if (region_from_url(queue_url, q->signer.region,
                        sizeof(q->signer.region)) == 0)
        return 0;
    snprintf(err, err_size, "queue %s: no region: %s, and the URL's host "
             "is not sqs.<region>.amazonaws.com", queue_url, region_err);
    return SN_ERR_INPUT;
}

int sn_queue_sqs_open(const char *queue_url, int max_receives,
                      struct sn_queue **out, char *err, size_t err_size)
{
    struct sqs_queue *q = NULL;
    char endpoint[SN_HTTP_URL_MAX];
    int rc = SN_ERR_INPUT;

    if (queue_url == NULL || (strncmp(queue_url, "https://", 8) != 0 &&
                              strncmp(queue_url, "http://", 7) != 0) ||
        strlen(queue_url) >= sizeof(q->pub.name)) {
        snprintf(err, err_size, "SQS queue URL \"%s\" is invalid: expected "
                 "http:// or https:// and at most %zu bytes",
                 queue_url ? queue_url : "", sizeof(q->pub.name) - 1);
        return SN_ERR_INPUT;
    }
    if (max_receives < 1) {
        snprintf(err, err_size, "queue %s: max_receives is %d, expected at "
                 "least 1", queue_url, max_receives);
        return SN_ERR_INPUT;
    }

    q = calloc(1, sizeof(*q));
    if (q == NULL || sn_aws_provider_new(&q->provider) != 0 ||
        (q->client = sn_http_client_new(NULL)) == NULL) {
        snprintf(err, err_size, "queue %s: open failed: out of memory",
                 queue_url);
        rc = SN_ERR_BACKEND;
        goto out;
    }
    rc = set_region(q, queue_url, err, err_size);
    if (rc < 0)
        goto out;
    rc = sn_aws_endpoint("sqs", q->signer.region, endpoint, sizeof(endpoint),
                         err, err_size);
    if (rc < 0)
        goto out;

    snprintf(q->endpoint, sizeof(q->endpoint), "%s/", endpoint);
    q->signer.provider = q->provider;
    snprintf(q->signer.service, sizeof(q->signer.service), "sqs");
    q->pub.ops = &sqs_queue_ops;
    snprintf(q->pub.name, sizeof(q->pub.name), "%s", queue_url);
    q->pub.max_receives = max_receives;
    *out = &q->pub;
    q = NULL;

out:
    if (q != NULL)
        sqs_close(&q->pub);
    return rc;
}

static const struct sn_queue_ops sqs_queue_ops = {
    .send = sqs_send,
    .receive = sqs_receive,
    .extend = sqs_extend,
    .remove = sqs_remove,
    .release = sqs_release,
    .count = sqs_count,
    .close = sqs_close,
};
