/*
 * Tests of the Runtime API client against a fake API on 127.0.0.1, run on
 * a thread of this process. The fake replies to each request with the next
 * canned response and records what it received, so a case checks both
 * what the client parsed and the exact request it sent. Also tests the
 * worker's deadline handling, which needs no backend when the deadline
 * is already near.
 */
#define _GNU_SOURCE           /* strcasestr() */
#include "lambda/handlers.h"
#include "lambda/runtime.h"
#include "state/state.h"
#include "store/store.h"
#include "util/error.h"
#include "test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXCHANGES 4

struct exchange {
    /* canned */
    int status;
    const char *headers;      /* extra header lines, each ending "\r\n" */
    const char *body;
    size_t body_size;         /* 0: strlen(body) */
    /* recorded */
    char request[8192];       /* request line and headers */
    char *request_body;
};

struct fake_api {
    int listen_fd;
    int port;
    pthread_t thread;
    struct exchange ex[MAX_EXCHANGES];
    int n;
};

static size_t content_length(const char *head)
{
    const char *p = strcasestr(head, "\r\nContent-Length:");

    return p ? (size_t)strtoul(p + 17, NULL, 10) : 0;
}

/* Reads one request into e, then writes e's canned response. */
static void serve_one(int fd, struct exchange *e)
{
    char buf[16384], head[512];
    size_t got = 0, need, body_size;
    char *end = NULL;
    ssize_t r;

    while (end == NULL && got < sizeof(buf) - 1) {
        r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    snprintf(e->request, sizeof(e->request), "%.*s", (int)(end - buf + 2),
             buf);
    need = content_length(e->request);
    e->request_body = calloc(1, need + 1);
    got -= (size_t)(end + 4 - buf);
    memcpy(e->request_body, end + 4, got < need ? got : need);
    while (got < need && (r = read(fd, e->request_body + got,
                                   need - got)) > 0)
        got += (size_t)r;

    body_size = e->body_size ? e->body_size : strlen(e->body);
    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n", e->status,
             e->headers ? e->headers : "", body_size);
    if (write(fd, head, strlen(head)) < 0 ||
        write(fd, e->body, body_size) < 0)
        return;
}

static void *fake_main(void *arg)
{
    struct fake_api *f = arg;

    for (int i = 0; i < f->n; i++) {
        int fd = accept(f->listen_fd, NULL, NULL);

        if (fd < 0)
            break;
        serve_one(fd, &f->ex[i]);
        close(fd);
    }
    return NULL;
}

/* Starts the fake, which serves the first n exchanges of f->ex. */
static void fake_start(struct fake_api *f, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    f->n = n;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(f->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(f->listen_fd, 8) == 0);
    getsockname(f->listen_fd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    CHECK(pthread_create(&f->thread, NULL, fake_main, f) == 0);
}

/* Waits until the fake has served its exchanges, and the recorded requests stay
 * readable until fake_release(). */
static void fake_stop(struct fake_api *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

static void fake_release(struct fake_api *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->ex[i].request_body);
}

static struct sn_runtime *client_for(const struct fake_api *f)
{
    struct sn_runtime *rt = NULL;
    char api[64], err[SN_ERR_SIZE];

    static int curl_ready;

    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    snprintf(api, sizeof(api), "127.0.0.1:%d", f->port);
    CHECK_INT(sn_runtime_new(api, &rt, err, sizeof(err)), 0);
    return rt;
}

/* ---- next, response, error --------------------------------------------- */

static void next_reads_event_and_headers(void)
{
    struct fake_api f = {0};
    struct sn_invocation inv;
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE];

    f.ex[0] = (struct exchange){
        .status = 200,
        .headers = "Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8\r\n"
                   "lambda-runtime-deadline-ms: 1700000000123\r\n"
                   "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:"
                   "us-east-1:123456789012:function:sinatra-worker\r\n"
                   "Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c"
                   "87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n",
        .body = "{\"Records\":[]}",
    };
    fake_start(&f, 1);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_next(rt, &inv, err, sizeof(err)), 0);
    CHECK_STR(inv.request_id, "8476a536-e9f4-11e8");
    CHECK_INT(inv.deadline_ms, 1700000000123LL);
    CHECK_STR(inv.function_arn, "arn:aws:lambda:us-east-1:123456789012:"
                                "function:sinatra-worker");
    CHECK_STR(inv.trace_id, "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;"
                            "Parent=9a9197af755a6419;Sampled=1");
    CHECK_STR(inv.event, "{\"Records\":[]}");
    CHECK_INT(inv.event_size, 14);
    sn_invocation_release(&inv);
    sn_runtime_free(rt);
    fake_stop(&f);
    CHECK(strncmp(f.ex[0].request,
                  "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n",
                  50) == 0);
    fake_release(&f);
}

static void response_is_posted_to_request_path(void)
{
    struct fake_api f = {0};
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE];
    const char *body = "{\"batchItemFailures\":[]}";

    f.ex[0] = (struct exchange){.status = 202, .body = "{}"};
    fake_start(&f, 1);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_respond(rt, "abc-123", body, strlen(body), err,
                                 sizeof(err)), 0);
    sn_runtime_free(rt);
    fake_stop(&f);
    CHECK(strncmp(f.ex[0].request,
                  "POST /2018-06-01/runtime/invocation/abc-123/response "
                  "HTTP/1.1\r\n", 63) == 0);
    CHECK_STR(f.ex[0].request_body, body);
    fake_release(&f);
}

static void error_has_standard_body_and_headers(void)
{
    struct fake_api f = {0};
    struct sn_runtime *rt;
    json_t *doc;
    char err[SN_ERR_SIZE];

    f.ex[0] = (struct exchange){.status = 202, .body = ""};
    f.ex[1] = (struct exchange){.status = 202, .body = ""};
    fake_start(&f, 2);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_error(rt, "abc-123", "Sinatra.TransientError",
                               "s3://b/k: \"slow down\"", err, sizeof(err)),
              0);
    CHECK_INT(sn_runtime_error(rt, NULL, "Sinatra.ConfigError",
                               "SINATRA_HLS_BUCKET: not set", err,
                               sizeof(err)), 0);
    sn_runtime_free(rt);
    fake_stop(&f);

    CHECK(strncmp(f.ex[0].request, "POST /2018-06-01/runtime/invocation/"
                                   "abc-123/error HTTP/1.1\r\n", 59) == 0);
    CHECK(strcasestr(f.ex[0].request, "\r\nContent-Type: application/"
                                      "vnd.aws.lambda.error+json\r\n"));
    CHECK(strcasestr(f.ex[0].request, "\r\nLambda-Runtime-Function-Error-"
                                      "Type: Sinatra.TransientError\r\n"));
    doc = json_loads(f.ex[0].request_body, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(doc, "errorMessage")),
              "s3://b/k: \"slow down\"");
    CHECK_STR(json_string_value(json_object_get(doc, "errorType")),
              "Sinatra.TransientError");
    CHECK(json_is_array(json_object_get(doc, "stackTrace")));
    CHECK_INT(json_array_size(json_object_get(doc, "stackTrace")), 0);
    json_decref(doc);

    CHECK(strncmp(f.ex[1].request, "POST /2018-06-01/runtime/init/error "
                                   "HTTP/1.1\r\n", 46) == 0);
    CHECK(strstr(f.ex[1].request_body, "SINATRA_HLS_BUCKET: not set"));
    fake_release(&f);
}

/* ---- failures ---------------------------------------------------------- */

static void server_error_means_exit(void)
{
    struct fake_api f = {0};
    struct sn_invocation inv;
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE] = "";

    f.ex[0] = (struct exchange){.status = 500, .body = "{}"};
    f.ex[1] = (struct exchange){.status = 500, .body = "{}"};
    fake_start(&f, 2);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_next(rt, &inv, err, sizeof(err)), SN_ERR_BACKEND);
    CHECK(strstr(err, "HTTP 500") != NULL);
    CHECK(inv.event == NULL);
    CHECK_INT(sn_runtime_respond(rt, "abc", "{}", 2, err, sizeof(err)),
              SN_ERR_BACKEND);
    sn_runtime_free(rt);
    fake_stop(&f);
    fake_release(&f);
}

static void next_without_request_id_means_exit(void)
{
    struct fake_api f = {0};
    struct sn_invocation inv;
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE] = "";

    f.ex[0] = (struct exchange){.status = 200, .body = "{}"};
    f.ex[1] = (struct exchange){
        .status = 200,
        .headers = "Lambda-Runtime-Aws-Request-Id: ../../init/error\r\n",
        .body = "{}"};
    fake_start(&f, 2);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_next(rt, &inv, err, sizeof(err)), SN_ERR_BACKEND);
    CHECK(strstr(err, "request id") != NULL);
    CHECK_INT(sn_runtime_next(rt, &inv, err, sizeof(err)), SN_ERR_BACKEND);
    sn_runtime_free(rt);
    fake_stop(&f);
    fake_release(&f);
}

static void unreachable_api_means_exit(void)
{
    struct fake_api f = {0};
    struct sn_invocation inv;
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE] = "";

    /* A port that was free a moment ago: nothing listens there. */
    fake_start(&f, 0);
    fake_stop(&f);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_next(rt, &inv, err, sizeof(err)), SN_ERR_BACKEND);
    CHECK(strstr(err, "/runtime/invocation/next") != NULL);
    sn_runtime_free(rt);
}

static void oversized_event_keeps_request_id(void)
{
    struct fake_api f = {0};
    struct sn_invocation inv;
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE] = "";
    size_t size = SN_RUNTIME_EVENT_MAX + 1;
    char *big = malloc(size);

    CHECK(big != NULL);
    if (big == NULL)
        return;
    memset(big, ' ', size);
    f.ex[0] = (struct exchange){
        .status = 200,
        .headers = "Lambda-Runtime-Aws-Request-Id: big-1\r\n",
        .body = big, .body_size = size};
    fake_start(&f, 1);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_next(rt, &inv, err, sizeof(err)), SN_ERR_LIMIT);
    CHECK_STR(inv.request_id, "big-1");
    CHECK(inv.event == NULL);
    CHECK(strstr(err, "larger than") != NULL);
    sn_invocation_release(&inv);
    sn_runtime_free(rt);
    fake_stop(&f);
    free(big);
    fake_release(&f);
}

static void too_large_response_is_reported(void)
{
    struct fake_api f = {0};
    struct sn_runtime *rt;
    char err[SN_ERR_SIZE] = "";

    f.ex[0] = (struct exchange){.status = 413, .body = "{}"};
    fake_start(&f, 1);
    rt = client_for(&f);
    CHECK_INT(sn_runtime_respond(rt, "abc", "{}", 2, err, sizeof(err)),
              SN_ERR_LIMIT);
    CHECK(strstr(err, "413") != NULL);
    sn_runtime_free(rt);
    fake_stop(&f);
    fake_release(&f);
}

/* ---- the worker's deadline --------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_margin_scales_with_budget(void)
{
    CHECK_INT(sn_lambda_deadline_margin_ms(3000), 1000);
    CHECK_INT(sn_lambda_deadline_margin_ms(60000), 3000);
    CHECK_INT(sn_lambda_deadline_margin_ms(900000), 10000);
}

/*
 * With less time left than the margin, no job starts and every message
 * is reported failed. The backends are never touched, so they are NULL.
 */
static void worker_near_deadline_starts_nothing(void)
{
    struct sn_lambda_app app;
    struct sn_invocation inv = {0};
    const char *event =
        "{\"Records\":["
        "{\"messageId\":\"m1\",\"body\":\"{}\"},"
        "{\"messageId\":\"m2\",\"body\":\"{}\"}]}";
    char *response = NULL, err[SN_ERR_SIZE];

    memset(&app, 0, sizeof(app));
    app.config.max_receives = 5;
    sn_pipeline_config_init(&app.config.pipeline);
    inv.event = (char *)event;
    inv.event_size = strlen(event);
    inv.deadline_ms = now_ms() + 500;
    CHECK_INT(sn_lambda_worker(&app, &inv, &response, err, sizeof(err)), 0);
    CHECK_STR(response, "{\"batchItemFailures\":[{\"itemIdentifier\":"
                        "\"m1\"},{\"itemIdentifier\":\"m2\"}]}");
    free(response);
}

static void worker_rejects_batch_without_ids(void)
{
    struct sn_lambda_app app;
    struct sn_invocation inv = {0};
    const char *event = "{\"Records\":[{\"body\":\"{}\"}]}";
    char *response = NULL, err[SN_ERR_SIZE] = "";
    int rc;

    memset(&app, 0, sizeof(app));
    inv.event = (char *)event;
    inv.event_size = strlen(event);
    rc = sn_lambda_worker(&app, &inv, &response, err, sizeof(err));
    CHECK_INT(rc, SN_ERR_INPUT);
    CHECK(response == NULL);
    CHECK_STR(sn_lambda_error_type(rc), SN_LAMBDA_ERROR_EVENT);
}

/* Runs the worker on event with no backends: only events whose jobs
 * fail before touching a backend. Returns the handler's code. */
static int run_worker(const char *event, char **response, char *err)
{
    struct sn_lambda_app app;
    struct sn_invocation inv = {0};

    memset(&app, 0, sizeof(app));
    app.config.max_receives = 5;
    sn_pipeline_config_init(&app.config.pipeline);
    inv.event = (char *)event;
    inv.event_size = strlen(event);
    return sn_lambda_worker(&app, &inv, response, err, SN_ERR_SIZE);
}

/*
 * m1 has an invalid receive count, so it alone is reported failed. The
 * body of m2 is not a job, which no delivery can cure, so it is dropped.
 */
static void worker_reports_malformed_record_alone(void)
{
    const char *event =
        "{\"Records\":["
        "{\"messageId\":\"m1\",\"body\":\"{}\",\"attributes\":{"
        "\"ApproximateReceiveCount\":\"abc\"}},"
        "{\"messageId\":\"m2\",\"body\":\"{}\"}]}";
    char *response = NULL, err[SN_ERR_SIZE] = "";

    CHECK_INT(run_worker(event, &response, err), 0);
    CHECK_STR(response, "{\"batchItemFailures\":[{\"itemIdentifier\":"
                        "\"m1\"}]}");
    free(response);
}

/* In a FIFO batch every message after a failed one comes back too. */
static void worker_fifo_returns_rest_after_malformed(void)
{
    const char *event =
        "{\"Records\":["
        "{\"messageId\":\"m1\",\"body\":\"{}\",\"attributes\":{"
        "\"ApproximateReceiveCount\":\"abc\"},\"eventSourceARN\":"
        "\"arn:aws:sqs:us-east-1:1:jobs.fifo\"},"
        "{\"messageId\":\"m2\",\"body\":\"{}\",\"eventSourceARN\":"
        "\"arn:aws:sqs:us-east-1:1:jobs.fifo\"}]}";
    char *response = NULL, err[SN_ERR_SIZE] = "";

    CHECK_INT(run_worker(event, &response, err), 0);
    CHECK_STR(response, "{\"batchItemFailures\":[{\"itemIdentifier\":"
                        "\"m1\"},{\"itemIdentifier\":\"m2\"}]}");
    free(response);
}

/* Counts the lines of path that contain text. */
static int count_lines(const char *path, const char *text)
{
    char line[4096];
    FILE *f = fopen(path, "r");
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

static void worker_logs_bad_message_once(void)
{
    const char *event =
        "{\"Records\":[{\"messageId\":\"m-not-a-job\",\"body\":\"{}\"}]}";
    char path[] = "/tmp/sn-test-lambda-log-XXXXXX";
    char *response = NULL, err[SN_ERR_SIZE] = "";
    int fd = mkstemp(path), saved = dup(2);

    CHECK(fd >= 0);
    CHECK(saved >= 0);
    if (fd < 0 || saved < 0)
        return;
    fflush(stderr);
    dup2(fd, 2);
    CHECK_INT(run_worker(event, &response, err), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    CHECK_STR(response, "{\"batchItemFailures\":[]}");
    CHECK_INT(count_lines(path, "m-not-a-job"), 1);
    CHECK_INT(count_lines(path, "not a Sinatra job"), 1);
    unlink(path);
    free(response);
}

/* Runs the orchestrator on event with the given backends. */
static int run_orchestrator(struct sn_backends *b, const char *event,
                            char **response, char *err)
{
    struct sn_lambda_app app;
    struct sn_invocation inv = {0};

    memset(&app, 0, sizeof(app));
    if (b != NULL)
        app.b = *b;
    app.config.videos_bucket = "sinatra-videos";
    sn_pipeline_config_init(&app.config.pipeline);
    inv.event = (char *)event;
    inv.event_size = strlen(event);
    return sn_lambda_orchestrator(&app, &inv, response, err, SN_ERR_SIZE);
}

#define S3_RECORD(key)                                                     \
    "{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"eventName\":" \
    "\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":"               \
    "\"sinatra-videos\"},\"object\":{\"key\":\"" key "\"}}}"

static void orchestrator_ignores_undecodable_key(void)
{
    const char *event = "{\"Records\":[" S3_RECORD("stream/%FF.mp4") "]}";
    char *response = NULL, err[SN_ERR_SIZE] = "";
    json_t *doc, *item;

    CHECK_INT(run_orchestrator(NULL, event, &response, err), 0);
    CHECK(strstr(err, "out of memory") == NULL);
    doc = json_loads(response ? response : "", 0, NULL);
    item = json_array_get(json_object_get(doc, "ignored"), 0);
    CHECK_STR(json_string_value(json_object_get(item, "key")),
              "stream/%FF.mp4");
    CHECK(strstr(json_string_value(json_object_get(item, "reason"))
                     ? json_string_value(json_object_get(item, "reason"))
                     : "", "invalid UTF-8") != NULL);
    json_decref(doc);
    free(response);
}

/* ---- fakes of an upload that an earlier event already failed ----------- */

static int fake_head(struct sn_store *s, const char *key,
                     struct sn_object_info *info, char *err, size_t err_size)
{
    (void)s, (void)key, (void)err, (void)err_size;
    info->size = 11;
    snprintf(info->tag, sizeof(info->tag), "\"etag-1\"");
    return 0;
}

static int fake_begin(struct sn_state *st, const char *id,
                      const char *source, const char *tag,
                      int64_t *generation, char *err, size_t err_size)
{
    (void)st, (void)id, (void)source, (void)tag, (void)err, (void)err_size;
    *generation = 1;
    return 0;
}

static int fake_get_failed(struct sn_state *st, const char *id,
                           struct sn_video *v, char *err, size_t err_size)
{
    (void)st, (void)err, (void)err_size;
    memset(v, 0, sizeof(*v));
    snprintf(v->id, sizeof(v->id), "%s", id);
    snprintf(v->source, sizeof(v->source), "stream/notes.mp4");
    v->generation = 1;
    v->status = SN_VIDEO_FAILED;
    snprintf(v->error, sizeof(v->error), "stream/notes.mp4: not media");
    return 0;
}

static void orchestrator_repeat_of_failed_upload_is_failed(void)
{
    static const struct sn_store_ops store_ops = {.head = fake_head};
    static const struct sn_state_ops state_ops = {
        .begin = fake_begin, .get = fake_get_failed};
    struct sn_store uploads = {.ops = &store_ops, .name = "fake"};
    struct sn_state state = {.ops = &state_ops, .name = "fake"};
    struct sn_backends b = {.uploads = &uploads, .state = &state};
    const char *event = "{\"Records\":[" S3_RECORD("stream/notes.mp4") "]}";
    char *response = NULL, err[SN_ERR_SIZE] = "";
    json_t *doc, *item;

    CHECK_INT(run_orchestrator(&b, event, &response, err), 0);
    doc = json_loads(response ? response : "", 0, NULL);
    CHECK_INT(json_array_size(json_object_get(doc, "planned")), 0);
    CHECK_INT(json_array_size(json_object_get(doc, "failed")), 1);
    item = json_array_get(json_object_get(doc, "failed"), 0);
    CHECK_STR(json_string_value(json_object_get(item, "key")),
              "stream/notes.mp4");
    CHECK_STR(json_string_value(json_object_get(item, "reason")),
              "stream/notes.mp4: not media");
    json_decref(doc);
    free(response);
}

SN_TEST_MAIN(
    TEST_CASE(next_reads_event_and_headers),
    TEST_CASE(response_is_posted_to_request_path),
    TEST_CASE(error_has_standard_body_and_headers),
    TEST_CASE(server_error_means_exit),
    TEST_CASE(next_without_request_id_means_exit),
    TEST_CASE(unreachable_api_means_exit),
    TEST_CASE(oversized_event_keeps_request_id),
    TEST_CASE(too_large_response_is_reported),
    TEST_CASE(deadline_margin_scales_with_budget),
    TEST_CASE(worker_near_deadline_starts_nothing),
    TEST_CASE(worker_rejects_batch_without_ids),
    TEST_CASE(worker_reports_malformed_record_alone),
    TEST_CASE(worker_fifo_returns_rest_after_malformed),
    TEST_CASE(worker_logs_bad_message_once),
    TEST_CASE(orchestrator_ignores_undecodable_key),
    TEST_CASE(orchestrator_repeat_of_failed_upload_is_failed))
