/*
 * The SQS queue backend against moto's server, run through
 * tests/aws/with_moto.sh. Each case creates its own queues with signed
 * CreateQueue calls. Exits with 77 (skipped) when AWS_ENDPOINT_URL is not
 * set.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "queue/queue_sqs.h"
#include "test.h"
#include "util/error.h"

/* A signed SQS client for the calls the backend does not make. */
struct sqs_admin {
    struct sn_aws_provider *provider;
    struct sn_aws_signer signer;
    struct sn_http_client *client;
    char url[SN_HTTP_URL_MAX + 2];
};

static void admin_open(struct sqs_admin *a)
{
    char err[SN_ERR_SIZE] = "", endpoint[SN_HTTP_URL_MAX];

    if (getenv("AWS_ENDPOINT_URL") == NULL) {
        fprintf(stderr, "AWS_ENDPOINT_URL is not set (run through "
                        "tests/aws/with_moto.sh): skipped\n");
        exit(77);
    }
    memset(a, 0, sizeof(*a));
    CHECK_INT(sn_aws_provider_new(&a->provider), 0);
    a->signer.provider = a->provider;
    CHECK_INT(sn_aws_region(a->signer.region, sizeof(a->signer.region), err,
                            sizeof(err)), 0);
    snprintf(a->signer.service, sizeof(a->signer.service), "sqs");
    a->client = sn_http_client_new(NULL);
    CHECK(a->client != NULL);
    CHECK_INT(sn_aws_endpoint("sqs", a->signer.region, endpoint,
                              sizeof(endpoint), err, sizeof(err)), 0);
    snprintf(a->url, sizeof(a->url), "%s/", endpoint);
}

static void admin_close(struct sqs_admin *a)
{
    sn_http_client_free(a->client);
    sn_aws_provider_free(a->provider);
}

/* Sends one SQS JSON action and returns its decoded reply, or NULL. */
static json_t *admin_call(struct sqs_admin *a, const char *action,
                          json_t *input)
{
    struct curl_slist *headers = NULL;
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    char target[64], err[SN_ERR_SIZE] = "";
    char *body = json_dumps(input, JSON_COMPACT);
    json_t *reply = NULL;

    snprintf(target, sizeof(target), "X-Amz-Target: AmazonSQS.%s", action);
    headers = curl_slist_append(headers,
                                "Content-Type: application/x-amz-json-1.0");
    headers = curl_slist_append(headers, target);
    sn_http_request_init(&req, "POST", a->url);
    req.headers = headers;
    req.body = body;
    req.body_size = strlen(body);
    req.sign = sn_aws_sign;
    req.sign_opaque = &a->signer;
    req.resource = action;
    if (sn_http_send(a->client, &req, &resp, err, sizeof(err)) == 0)
        reply = json_loadb(resp.body, resp.body_size, 0, NULL);
    else
        fprintf(stderr, "%s\n", err);
    CHECK(reply != NULL);

    sn_http_response_release(&resp);
    curl_slist_free_all(headers);
    free(body);
    json_decref(input);
    return reply;
}

/* Creates the queue name (attributes may be NULL) and copies its URL. */
static void create_queue(struct sqs_admin *a, const char *name,
                         json_t *attributes, char *url, size_t url_size)
{
    json_t *input = json_pack("{s:s}", "QueueName", name);
    json_t *reply;

    if (attributes != NULL)
        json_object_set_new(input, "Attributes", attributes);
    reply = admin_call(a, "CreateQueue", input);
    snprintf(url, url_size, "%s",
             json_string_value(json_object_get(reply, "QueueUrl")));
    json_decref(reply);
}

static void queue_arn(struct sqs_admin *a, const char *url, char *arn,
                      size_t arn_size)
{
    json_t *reply = admin_call(a, "GetQueueAttributes",
                               json_pack("{s:s, s:[s]}", "QueueUrl", url,
                                         "AttributeNames", "QueueArn"));

    snprintf(arn, arn_size, "%s", json_string_value(json_object_get(
             json_object_get(reply, "Attributes"), "QueueArn")));
    json_decref(reply);
}

/* Creates a queue and opens the backend on it, with max_receives 5. */
static struct sn_queue *open_new_queue(struct sqs_admin *a, const char *name)
{
    char url[512], err[SN_ERR_SIZE] = "";
    struct sn_queue *q = NULL;

    create_queue(a, name, NULL, url, sizeof(url));
    CHECK_INT(sn_queue_sqs_open(url, 5, &q, err, sizeof(err)), 0);
    if (q == NULL)
        fprintf(stderr, "%s\n", err);
    return q;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double seconds)
{
    struct timespec ts = {(time_t)seconds,
                          (long)((seconds - (time_t)seconds) * 1e9)};

    nanosleep(&ts, NULL);
}

static int send_one(struct sn_queue *q, const char *body, int delay_s)
{
    char err[SN_ERR_SIZE] = "";
    int rc = q->ops->send(q, &body, 1, delay_s, err, sizeof(err));

    if (rc < 0)
        fprintf(stderr, "%s\n", err);
    return rc;
}

static int receive(struct sn_queue *q, int visibility_s, int wait_ms,
                   struct sn_message *m)
{
    char err[SN_ERR_SIZE] = "";
    int rc = q->ops->receive(q, visibility_s, wait_ms, m, err, sizeof(err));

    if (rc < 0 && rc != SN_ERR_AGAIN)
        fprintf(stderr, "%s\n", err);
    return rc;
}

static void sqs_batch_send_delivers_each_once(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    char text[25][16], err[SN_ERR_SIZE] = "";
    const char *bodies[25];
    int seen[25] = {0}, received = 0;
    struct sn_message m = {0};
    int64_t visible = -1;

    admin_open(&a);
    q = open_new_queue(&a, "sn-batch");
    for (int i = 0; i < 25; i++) {
        snprintf(text[i], sizeof(text[i]), "job-%d", i);
        bodies[i] = text[i];
    }
    for (int i = 0; i < 25; i += 10)
        CHECK_INT(q->ops->send(q, bodies + i, i + 10 <= 25 ? 10 : 25 - i, 0,
                               err, sizeof(err)), 0);
    CHECK_INT(q->ops->count(q, &visible, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(visible, 25);

    while (receive(q, 30, 0, &m) == 0) {
        int i = atoi(m.body + 4);

        CHECK(i >= 0);
        CHECK(i < 25);
        if (i >= 0 && i < 25)
            seen[i]++;
        CHECK_INT(m.receive_count, 1);
        received++;
        sn_message_release(&m);
    }
    CHECK_INT(received, 25);
    for (int i = 0; i < 25; i++)
        CHECK_INT(seen[i], 1);
    sn_queue_close(q);
    admin_close(&a);
}

/* Ten 60 KiB bodies exceed SendMessageBatch's 256 KiB, so the send is
 * split into three requests; all ten must arrive intact. */
static void sqs_large_batch_is_split(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    char *text[10], err[SN_ERR_SIZE] = "";
    const char *bodies[10];
    struct sn_message m = {0};
    int received = 0;

    admin_open(&a);
    q = open_new_queue(&a, "sn-large");
    for (int i = 0; i < 10; i++) {
        text[i] = malloc(60 * 1024 + 1);
        memset(text[i], 'a' + i, 60 * 1024);
        text[i][60 * 1024] = '\0';
        bodies[i] = text[i];
    }
    CHECK_INT(q->ops->send(q, bodies, 10, 0, err, sizeof(err)), 0);

    while (receive(q, 30, 0, &m) == 0) {
        CHECK_INT(strlen(m.body), 60 * 1024);
        received++;
        sn_message_release(&m);
    }
    CHECK_INT(received, 10);
    for (int i = 0; i < 10; i++)
        free(text[i]);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_oversized_body_is_rejected(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    char *big = malloc(SN_QUEUE_MAX_BODY + 2), err[SN_ERR_SIZE] = "";
    const char *body = big;

    admin_open(&a);
    q = open_new_queue(&a, "sn-oversized");
    memset(big, 'x', SN_QUEUE_MAX_BODY + 1);
    big[SN_QUEUE_MAX_BODY + 1] = '\0';
    CHECK_INT(q->ops->send(q, &body, 1, 0, err, sizeof(err)), SN_ERR_LIMIT);
    CHECK(strstr(err, "bytes") != NULL);
    free(big);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_expired_visibility_redelivers(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message first = {0}, second = {0};

    admin_open(&a);
    q = open_new_queue(&a, "sn-expiry");
    CHECK_INT(send_one(q, "redeliver me", 0), 0);
    CHECK_INT(receive(q, 1, 0, &first), 0);
    CHECK_INT(first.receive_count, 1);
    CHECK_INT(receive(q, 1, 3000, &second), 0);

    CHECK_STR(second.body, "redeliver me");
    CHECK_STR(second.id, first.id);
    CHECK_INT(second.receive_count, 2);
    CHECK(strcmp(second.receipt, first.receipt) != 0);
    sn_message_release(&first);
    sn_message_release(&second);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_extend_keeps_message_hidden(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message m = {0}, again = {0};
    char err[SN_ERR_SIZE] = "";

    admin_open(&a);
    q = open_new_queue(&a, "sn-extend");
    CHECK_INT(send_one(q, "keep hidden", 0), 0);
    CHECK_INT(receive(q, 1, 0, &m), 0);
    CHECK_INT(q->ops->extend(q, m.receipt, 4, err, sizeof(err)), 0);
    sleep_s(1.5);

    CHECK_INT(receive(q, 1, 0, &again), SN_ERR_AGAIN);
    CHECK_INT(q->ops->remove(q, m.receipt, err, sizeof(err)), 0);
    sn_message_release(&m);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_remove_deletes_message(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message m = {0};
    char err[SN_ERR_SIZE] = "";
    int64_t visible = -1, in_flight = -1, dead = -1;

    admin_open(&a);
    q = open_new_queue(&a, "sn-remove");
    CHECK_INT(send_one(q, "done soon", 0), 0);
    CHECK_INT(receive(q, 1, 0, &m), 0);
    CHECK_INT(q->ops->count(q, &visible, &in_flight, &dead, err,
                            sizeof(err)), 0);
    CHECK_INT(visible, 0);
    CHECK_INT(in_flight, 1);
    CHECK_INT(dead, 0);
    CHECK_INT(q->ops->remove(q, m.receipt, err, sizeof(err)), 0);
    sleep_s(1.5);

    CHECK_INT(receive(q, 1, 0, &m), SN_ERR_AGAIN);
    CHECK_INT(q->ops->count(q, &visible, &in_flight, NULL, err,
                            sizeof(err)), 0);
    CHECK_INT(visible, 0);
    CHECK_INT(in_flight, 0);
    /* The receipt of a deleted message cannot change its visibility. */
    CHECK_INT(q->ops->extend(q, m.receipt, 5, err, sizeof(err)),
              SN_ERR_CONFLICT);
    sn_message_release(&m);
    sn_queue_close(q);
    admin_close(&a);
}

/*
 * moto 5.2.1 accepts every receipt a message ever had (its
 * change_message_visibility looks a message up through all its receipt
 * handles), so an old receipt still extends a redelivered message there.
 * A receipt that never existed, or one of a deleted message, is rejected
 * with SN_ERR_CONFLICT.
 */
static void sqs_stale_receipts_on_moto(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message first = {0}, second = {0};
    char err[SN_ERR_SIZE] = "";

    admin_open(&a);
    q = open_new_queue(&a, "sn-stale");
    CHECK_INT(send_one(q, "stale", 0), 0);
    CHECK_INT(receive(q, 1, 0, &first), 0);
    CHECK_INT(receive(q, 5, 3000, &second), 0);
    CHECK_INT(second.receive_count, 2);

    CHECK_INT(q->ops->extend(q, first.receipt, 5, err, sizeof(err)), 0);
    CHECK_INT(q->ops->extend(q, "no-such-receipt", 5, err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK_INT(q->ops->release(q, "no-such-receipt", 0, "failed", err,
                              sizeof(err)), SN_ERR_CONFLICT);
    CHECK_INT(q->ops->remove(q, "no-such-receipt", err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK_INT(q->ops->remove(q, second.receipt, err, sizeof(err)), 0);
    CHECK_INT(q->ops->release(q, second.receipt, 0, "failed", err,
                              sizeof(err)), SN_ERR_CONFLICT);
    sn_message_release(&first);
    sn_message_release(&second);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_release_delays_redelivery(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message m = {0}, again = {0};
    char err[SN_ERR_SIZE] = "";

    admin_open(&a);
    q = open_new_queue(&a, "sn-release");
    CHECK_INT(send_one(q, "retry later", 0), 0);
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK_INT(q->ops->release(q, m.receipt, 2, "transient failure", err,
                              sizeof(err)), 0);

    CHECK_INT(receive(q, 30, 0, &again), SN_ERR_AGAIN);
    CHECK_INT(receive(q, 30, 4000, &again), 0);
    CHECK_STR(again.body, "retry later");
    CHECK_INT(again.receive_count, 2);
    sn_message_release(&m);
    sn_message_release(&again);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_send_delay_hides_message(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message m = {0};

    admin_open(&a);
    q = open_new_queue(&a, "sn-delay");
    CHECK_INT(send_one(q, "later", 1), 0);
    CHECK_INT(receive(q, 30, 0, &m), SN_ERR_AGAIN);
    CHECK_INT(receive(q, 30, 3000, &m), 0);
    CHECK_STR(m.body, "later");
    sn_message_release(&m);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_long_poll_times_out_empty(void)
{
    struct sqs_admin a;
    struct sn_queue *q;
    struct sn_message m = {0};
    double start, elapsed;

    admin_open(&a);
    q = open_new_queue(&a, "sn-empty");
    start = now_s();
    CHECK_INT(receive(q, 30, 1000, &m), SN_ERR_AGAIN);
    elapsed = now_s() - start;

    CHECK(elapsed >= 0.9);
    CHECK(elapsed < 3.0);
    sn_queue_close(q);
    admin_close(&a);
}

/*
 * A receive whose credentials cannot be fetched fails with an error, not
 * with SN_ERR_AGAIN, which a worker reads as an empty queue and would ask
 * again at once, forever and without a log line.
 */
static void sqs_receive_without_credentials_fails(void)
{
    struct sqs_admin a;
    struct sn_queue *q = NULL;
    struct sn_message m = {0};
    char url[512], err[SN_ERR_SIZE] = "";
    char *key_id, *secret;
    int rc;

    admin_open(&a);
    create_queue(&a, "sn-no-credentials", NULL, url, sizeof(url));
    key_id = strdup(getenv("AWS_ACCESS_KEY_ID"));
    secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    /* Port 1 on loopback refuses the connection. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds",
           1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);

    CHECK_INT(sn_queue_sqs_open(url, 5, &q, err, sizeof(err)), 0);
    rc = q != NULL ? q->ops->receive(q, 30, 0, &m, err, sizeof(err)) : 0;
    CHECK(rc < 0);
    CHECK(rc != SN_ERR_AGAIN);
    CHECK(strstr(err, "credentials") != NULL);

    sn_queue_close(q);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    setenv("AWS_ACCESS_KEY_ID", key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    free(key_id);
    free(secret);
    admin_close(&a);
}

/* A queue whose redrive policy allows 2 receives: the third receive finds
 * nothing, because SQS moved the message to the dead-letter queue. */
static void sqs_redrive_moves_to_dead_letter(void)
{
    struct sqs_admin a;
    struct sn_queue *q = NULL, *dlq = NULL;
    struct sn_message m = {0};
    char dlq_url[512], url[512], arn[256], policy[512];
    char err[SN_ERR_SIZE] = "";
    int64_t visible = -1, in_flight = -1, dead = -1;

    admin_open(&a);
    create_queue(&a, "sn-redrive-dlq", NULL, dlq_url, sizeof(dlq_url));
    queue_arn(&a, dlq_url, arn, sizeof(arn));
    snprintf(policy, sizeof(policy),
             "{\"deadLetterTargetArn\":\"%s\",\"maxReceiveCount\":\"2\"}",
             arn);
    create_queue(&a, "sn-redrive", json_pack("{s:s}", "RedrivePolicy",
                                             policy), url, sizeof(url));
    CHECK_INT(sn_queue_sqs_open(url, 2, &q, err, sizeof(err)), 0);
    CHECK_INT(sn_queue_sqs_open(dlq_url, 2, &dlq, err, sizeof(err)), 0);

    CHECK_INT(send_one(q, "poison", 0), 0);
    for (int delivery = 1; delivery <= 2; delivery++) {
        CHECK_INT(receive(q, 1, 3000, &m), 0);
        CHECK_INT(m.receive_count, delivery);
        sn_message_release(&m);
    }
    CHECK_INT(receive(q, 1, 2000, &m), SN_ERR_AGAIN);

    CHECK_INT(q->ops->count(q, &visible, &in_flight, &dead, err,
                            sizeof(err)), 0);
    CHECK_INT(visible, 0);
    CHECK_INT(in_flight, 0);
    CHECK_INT(dead, 1);
    CHECK_INT(receive(dlq, 30, 0, &m), 0);
    CHECK_STR(m.body, "poison");
    sn_message_release(&m);
    sn_queue_close(q);
    sn_queue_close(dlq);
    admin_close(&a);
}

/* Workers take their delivery limit from the redrive policy, so it must
 * be read as SQS stores it (a string) and be 0 without a policy. */
static void sqs_redrive_max_reads_policy(void)
{
    struct sqs_admin a;
    struct sn_queue *q = NULL, *plain = NULL;
    char dlq_url[512], url[512], arn[256], policy[512];
    char err[SN_ERR_SIZE] = "";
    int max_receives = -1;

    admin_open(&a);
    create_queue(&a, "sn-max-dlq", NULL, dlq_url, sizeof(dlq_url));
    queue_arn(&a, dlq_url, arn, sizeof(arn));
    snprintf(policy, sizeof(policy),
             "{\"deadLetterTargetArn\":\"%s\",\"maxReceiveCount\":\"3\"}",
             arn);
    create_queue(&a, "sn-max", json_pack("{s:s}", "RedrivePolicy", policy),
                 url, sizeof(url));
    CHECK_INT(sn_queue_sqs_open(url, 5, &q, err, sizeof(err)), 0);
    CHECK_INT(sn_queue_sqs_redrive_max(q, &max_receives, err, sizeof(err)),
              0);
    CHECK_INT(max_receives, 3);

    plain = open_new_queue(&a, "sn-max-none");
    CHECK_INT(sn_queue_sqs_redrive_max(plain, &max_receives, err,
                                       sizeof(err)), 0);
    CHECK_INT(max_receives, 0);
    sn_queue_close(q);
    sn_queue_close(plain);
    admin_close(&a);
}

/* A worker stops on these two codes instead of retrying forever. */
static void sqs_receive_reports_missing_queue_and_bad_secret(void)
{
    struct sqs_admin a;
    struct sn_queue *q = NULL, *wrong = NULL;
    struct sn_message m = {0};
    char url[512], gone[600], err[SN_ERR_SIZE] = "";
    char *secret;
    int max_receives = -1;

    admin_open(&a);
    create_queue(&a, "sn-present", NULL, url, sizeof(url));
    snprintf(gone, sizeof(gone), "%.*s/sn-never-created",
             (int)(strrchr(url, '/') - url), url);
    CHECK_INT(sn_queue_sqs_open(gone, 5, &q, err, sizeof(err)), 0);
    CHECK_INT(q->ops->receive(q, 30, 0, &m, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "sn-never-created") != NULL);
    CHECK(strstr(err, "attempt") == NULL);
    CHECK_INT(sn_queue_sqs_redrive_max(q, &max_receives, err, sizeof(err)),
              SN_ERR_NOT_FOUND);

    secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret", 1);
    CHECK_INT(sn_queue_sqs_open(url, 5, &wrong, err, sizeof(err)), 0);
    CHECK_INT(wrong->ops->receive(wrong, 30, 0, &m, err, sizeof(err)),
              -EACCES);
    CHECK(strstr(err, "AWS_ACCESS_KEY_ID") != NULL);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    free(secret);
    sn_queue_close(q);
    sn_queue_close(wrong);
    admin_close(&a);
}

/* CloudFormation outputs AWS-style queue URLs. Requests still go to
 * AWS_ENDPOINT_URL, with the URL in the body. */
static void sqs_aws_style_url_uses_endpoint(void)
{
    struct sqs_admin a;
    struct sn_queue *q = NULL;
    struct sn_message m = {0};
    char local[512], err[SN_ERR_SIZE] = "";
    const char *url =
        "https://sqs.us-east-1.amazonaws.com/123456789012/sn-aws-style";

    admin_open(&a);
    create_queue(&a, "sn-aws-style", NULL, local, sizeof(local));
    CHECK_INT(sn_queue_sqs_open(url, 3, &q, err, sizeof(err)), 0);
    CHECK_INT(send_one(q, "through the endpoint", 0), 0);
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK_STR(m.body, "through the endpoint");
    sn_message_release(&m);
    sn_queue_close(q);
    admin_close(&a);
}

static void sqs_open_rejects_bad_arguments(void)
{
    struct sn_queue *q = NULL;
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(sn_queue_sqs_open("sqs://queue", 3, &q, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "invalid") != NULL);
    CHECK_INT(sn_queue_sqs_open("http://127.0.0.1:1/1/q", 0, &q, err,
                                sizeof(err)), SN_ERR_INPUT);
    CHECK(q == NULL);
}

SN_TEST_MAIN(
    TEST_CASE(sqs_batch_send_delivers_each_once),
    TEST_CASE(sqs_large_batch_is_split),
    TEST_CASE(sqs_oversized_body_is_rejected),
    TEST_CASE(sqs_expired_visibility_redelivers),
    TEST_CASE(sqs_extend_keeps_message_hidden),
    TEST_CASE(sqs_remove_deletes_message),
    TEST_CASE(sqs_stale_receipts_on_moto),
    TEST_CASE(sqs_release_delays_redelivery),
    TEST_CASE(sqs_send_delay_hides_message),
    TEST_CASE(sqs_long_poll_times_out_empty),
    TEST_CASE(sqs_receive_without_credentials_fails),
    TEST_CASE(sqs_redrive_moves_to_dead_letter),
    TEST_CASE(sqs_redrive_max_reads_policy),
    TEST_CASE(sqs_receive_reports_missing_queue_and_bad_secret),
    TEST_CASE(sqs_aws_style_url_uses_endpoint),
    TEST_CASE(sqs_open_rejects_bad_arguments))
