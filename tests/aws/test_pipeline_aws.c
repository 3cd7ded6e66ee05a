/*
 * The durable pipeline over the AWS backends, on moto with signature
 * checking on (run through tests/aws/with_moto.sh): an upload in S3 is
 * orchestrated, its jobs go through SQS, state lives in DynamoDB, and the
 * same worker code as on one machine writes a ready HLS ladder to the
 * output bucket. Exits with 77 (skipped) without AWS_ENDPOINT_URL or the
 * media corpus.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "pipeline/pipeline.h"
#include "queue/queue_sqs.h"
#include "state/state_dynamodb.h"
#include "store/store_s3.h"
#include "test.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"

#define CLIP "packager-bear-640x360-trailing-moov.mp4"
#define KEY "stream/bear clip.mp4"

/* Signed calls that create the test's bucket, queue and table. */
struct admin {
    struct sn_aws_provider *provider;
    struct sn_http_client *client;
    char region[64];
};

static int call(struct admin *a, const char *service, const char *method,
                const char *url, const char *target, const char *body,
                struct sn_http_response *resp, char *err, size_t err_size)
{
    struct sn_aws_signer signer = {.provider = a->provider};
    struct curl_slist *headers = NULL;
    struct sn_http_request req;
    char line[128];
    int rc;

    snprintf(signer.region, sizeof(signer.region), "%s", a->region);
    snprintf(signer.service, sizeof(signer.service), "%s", service);
    if (target != NULL) {
        snprintf(line, sizeof(line), "X-Amz-Target: %s", target);
        headers = curl_slist_append(headers,
                                    "Content-Type: application/x-amz-json-1.0");
        headers = curl_slist_append(headers, line);
    }
    sn_http_request_init(&req, method, url);
    req.headers = headers;
    req.body = body;
    req.body_size = body != NULL ? strlen(body) : 0;
    req.sign = sn_aws_sign;
    req.sign_opaque = &signer;
    req.resource = url;
    memset(resp, 0, sizeof(*resp));
    rc = sn_http_send(a->client, &req, resp, err, err_size);
    curl_slist_free_all(headers);
    return rc;
}

static void create_bucket(struct admin *a, const char *bucket)
{
    char endpoint[SN_HTTP_URL_MAX], url[SN_HTTP_URL_MAX];
    char err[SN_ERR_SIZE] = "";
    struct sn_http_response resp;

    CHECK_INT(sn_aws_endpoint("s3", a->region, endpoint, sizeof(endpoint),
                              err, sizeof(err)), 0);
    CHECK_INT(sn_s3_url(endpoint, bucket, NULL, url, sizeof(url), err,
                        sizeof(err)), 0);
    CHECK_INT(call(a, "s3", "PUT", url, NULL, NULL, &resp, err, sizeof(err)),
              0);
    sn_http_response_release(&resp);
}

/* Creates the queue and writes its URL into url. */
static void create_queue(struct admin *a, const char *name, char *url,
                         size_t url_size)
{
    char endpoint[SN_HTTP_URL_MAX + 2], body[256], err[SN_ERR_SIZE] = "";
    struct sn_http_response resp;
    json_t *reply;

    CHECK_INT(sn_aws_endpoint("sqs", a->region, endpoint, sizeof(endpoint),
                              err, sizeof(err)), 0);
    strcat(endpoint, "/");
    snprintf(body, sizeof(body), "{\"QueueName\":\"%s\"}", name);
    CHECK_INT(call(a, "sqs", "POST", endpoint, "AmazonSQS.CreateQueue", body,
                   &resp, err, sizeof(err)), 0);
    reply = resp.body != NULL ? json_loads(resp.body, 0, NULL) : NULL;
    snprintf(url, url_size, "%s",
             json_string_value(json_object_get(reply, "QueueUrl"))
                 ? json_string_value(json_object_get(reply, "QueueUrl"))
                 : "");
    CHECK(url[0] != '\0');
    json_decref(reply);
    sn_http_response_release(&resp);
}

static int has_text(struct sn_store *s, const char *key, const char *text)
{
    char err[SN_ERR_SIZE];
    uint8_t *data = NULL;
    size_t size;
    int found;

    if (sn_store_get(s, key, 1 << 20, &data, &size, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 0;
    }
    found = strstr((const char *)data, text) != NULL;
    free(data);
    return found;
}

static void pipeline_runs_on_s3_sqs_and_dynamodb(void)
{
    const char *media = getenv("SN_MEDIA_DIR");
    struct admin a = {0};
    struct sn_backends b = {0};
    struct sn_pipeline_config c;
    struct sn_video v = {0};
    struct sn_object_info info;
    char queue_url[1024], path[4096], id[SN_VIDEO_ID_LEN + 1];
    char key[SN_STORE_MAX_KEY + 1], err[SN_ERR_SIZE] = "";
    uint8_t *clip = NULL;
    size_t clip_size = 0;
    int handled = 0, empty = 0;

    if (getenv("AWS_ENDPOINT_URL") == NULL || media == NULL) {
        fprintf(stderr, "AWS_ENDPOINT_URL or SN_MEDIA_DIR not set: skipped\n");
        exit(77);
    }
    snprintf(path, sizeof(path), "%s/%s", media, CLIP);
    if (sn_read_file(path, 64 << 20, &clip, &clip_size) < 0) {
        fprintf(stderr, "%s: not readable: skipped\n", path);
        exit(77);
    }
    av_log_set_level(AV_LOG_QUIET);
    sn_log_set_level(SN_LOG_WARN);

    CHECK_INT(sn_aws_provider_new(&a.provider), 0);
    a.client = sn_http_client_new(NULL);
    CHECK_INT(sn_aws_region(a.region, sizeof(a.region), err, sizeof(err)), 0);
    create_bucket(&a, "sinatra-videos");
    create_bucket(&a, "sinatra-hls");
    create_queue(&a, "sinatra-jobs", queue_url, sizeof(queue_url));

    CHECK_INT(sn_store_s3_open("sinatra-videos", &b.uploads, err,
                               sizeof(err)), 0);
    CHECK_INT(sn_store_s3_open("sinatra-hls", &b.hls, err, sizeof(err)), 0);
    CHECK_INT(sn_queue_sqs_open(queue_url, 3, &b.jobs, err, sizeof(err)), 0);
    CHECK_INT(sn_state_dynamodb_open("sinatra-video-state", &b.state, err,
                                     sizeof(err)), 0);
    CHECK_INT(sn_state_dynamodb_create_table(b.state, err, sizeof(err)), 0);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);

    sn_pipeline_config_init(&c);
    snprintf(c.encode.preset, sizeof(c.encode.preset), "ultrafast");
    CHECK_INT(sn_store_put(b.uploads, KEY, clip, clip_size, err,
                           sizeof(err)), 0);
    CHECK_INT(sn_orchestrate(&b, &c, KEY, id, err, sizeof(err)), 0);

    /* The worker's loop, by hand: every message once, in queue order. */
    while (empty < 2 && handled < 64) {
        struct sn_message m = {0};
        int rc = b.jobs->ops->receive(b.jobs, 60, 1000, &m, err,
                                      sizeof(err));

        if (rc == SN_ERR_AGAIN) {
            empty++;
            continue;
        }
        CHECK_INT(rc, 0);
        if (rc < 0)
            break;
        rc = sn_worker_handle(&b, &c, m.body, NULL, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "job %s: %s\n", m.body, err);
        CHECK_INT(rc, 0);
        CHECK_INT(b.jobs->ops->remove(b.jobs, m.receipt, err, sizeof(err)),
                  0);
        sn_message_release(&m);
        handled++;
    }

    CHECK_INT(b.state->ops->get(b.state, id, &v, err, sizeof(err)), 0);
    CHECK_STR(sn_video_status_name(v.status), "ready");
    CHECK_INT(v.n_done, v.n_jobs);
    CHECK_INT(handled, v.n_jobs);
    sn_video_release(&v);

    snprintf(key, sizeof(key), "%s/1/master.m3u8", id);
    CHECK(has_text(b.hls, key, "#EXT-X-STREAM-INF"));
    snprintf(key, sizeof(key), "%s/1/360p/index.m3u8", id);
    CHECK(has_text(b.hls, key, "#EXT-X-ENDLIST"));
    snprintf(key, sizeof(key), "%s/1/audio/index.m3u8", id);
    CHECK(has_text(b.hls, key, "#EXT-X-ENDLIST"));
    snprintf(key, sizeof(key), "%s/1/360p/seg_00000.m4s", id);
    CHECK_INT(b.hls->ops->head(b.hls, key, &info, err, sizeof(err)), 0);
    CHECK(info.size > 0);
    snprintf(key, sizeof(key), "%s/1/poster.jpg", id);
    CHECK_INT(b.hls->ops->head(b.hls, key, &info, err, sizeof(err)), 0);

    sn_queue_close(b.jobs);
    sn_state_close(b.state);
    sn_store_close(b.uploads);
    sn_store_close(b.hls);
    sn_http_client_free(a.client);
    sn_aws_provider_free(a.provider);
    free(clip);
}

SN_TEST_MAIN(TEST_CASE(pipeline_runs_on_s3_sqs_and_dynamodb))
