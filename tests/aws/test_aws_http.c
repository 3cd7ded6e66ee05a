#include "aws/http.h"
#include "test.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- Pure functions -------------------------------------------------- */

static void retry_decisions_follow_table(void)
{
    static const struct {
        CURLcode curl_code;
        long status;
        const char *code;
        int retry;
    } cases[] = {
        {CURLE_COULDNT_CONNECT, 0, NULL, 1},
        {CURLE_OPERATION_TIMEDOUT, 0, NULL, 1},
        {CURLE_RECV_ERROR, 0, NULL, 1},
        {CURLE_SEND_ERROR, 0, NULL, 1},
        {CURLE_GOT_NOTHING, 0, NULL, 1},
        {CURLE_PARTIAL_FILE, 200, NULL, 1},
        {CURLE_COULDNT_RESOLVE_HOST, 0, NULL, 0},
        {CURLE_URL_MALFORMAT, 0, NULL, 0},
        {CURLE_WRITE_ERROR, 200, NULL, 0},
        {CURLE_OK, 500, "InternalError", 1},
        {CURLE_OK, 502, NULL, 1},
        {CURLE_OK, 503, "SlowDown", 1},
        {CURLE_OK, 504, NULL, 1},
        {CURLE_OK, 501, "NotImplemented", 0},
        {CURLE_OK, 429, NULL, 1},
        {CURLE_OK, 400, "Throttling", 1},
        {CURLE_OK, 400, "ThrottlingException", 1},
        {CURLE_OK, 400, "ProvisionedThroughputExceededException", 1},
        {CURLE_OK, 400, "RequestLimitExceeded", 1},
        {CURLE_OK, 400, "RequestThrottled", 1},
        {CURLE_OK, 400, "TooManyRequestsException", 1},
        {CURLE_OK, 400, "RequestTimeout", 1},
        {CURLE_OK, 400, "ValidationException", 0},
        {CURLE_OK, 400, "ConditionalCheckFailedException", 0},
        {CURLE_OK, 400, NULL, 0},
        {CURLE_OK, 403, "SignatureDoesNotMatch", 0},
        {CURLE_OK, 403, NULL, 0},
        {CURLE_OK, 404, "NoSuchKey", 0},
        {CURLE_OK, 412, "PreconditionFailed", 0},
        {CURLE_OK, 413, "EntityTooLarge", 0},
        {CURLE_OK, 200, NULL, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = sn_http_should_retry(cases[i].curl_code, cases[i].status,
                                       cases[i].code);

        if (got != cases[i].retry)
            fprintf(stderr, "case %zu: curl %d, status %ld, code %s\n", i,
                    (int)cases[i].curl_code, cases[i].status,
                    cases[i].code ? cases[i].code : "(none)");
        CHECK_INT(got, cases[i].retry);
    }
}

static uint32_t fixed_random(void *opaque)
{
    return *(uint32_t *)opaque;
}

static void backoff_stays_within_bounds(void)
{
    const struct sn_http_retry policy = SN_HTTP_RETRY_DEFAULT;
    uint32_t zero = 0, max = UINT32_MAX, mid = 1000;

    /* The ceiling doubles from 100 ms and stops at the 20 s cap. */
    CHECK_INT(sn_http_backoff_ms(&policy, 0, fixed_random, &max),
              UINT32_MAX % 101);
    CHECK_INT(sn_http_backoff_ms(&policy, 0, fixed_random, &mid), 1000 % 101);
    CHECK_INT(sn_http_backoff_ms(&policy, 3, fixed_random, &mid), 1000 % 801);
    CHECK_INT(sn_http_backoff_ms(&policy, 20, fixed_random, &max),
              UINT32_MAX % 20001);
    CHECK_INT(sn_http_backoff_ms(&policy, 1000, fixed_random, &max),
              UINT32_MAX % 20001);

    for (int retry = 0; retry < 40; retry++) {
        long ceiling = 100L << (retry < 10 ? retry : 10);

        if (ceiling > 20000)
            ceiling = 20000;
        CHECK_INT(sn_http_backoff_ms(&policy, retry, fixed_random, &zero), 0);
        CHECK(sn_http_backoff_ms(&policy, retry, fixed_random, &max) <=
              ceiling);
        mid = (uint32_t)ceiling;
        CHECK_INT(sn_http_backoff_ms(&policy, retry, fixed_random, &mid),
                  ceiling);
    }
}

static void error_parse_s3_xml(void)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Error><Code>NoSuchKey</Code>"
        "<Message>The specified key does not exist.</Message>"
        "<Key>in/a &amp; b.mp4</Key><RequestId>4442587FB7D0A2F9</RequestId>"
        "</Error>";
    static const char sig[] =
        "<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
        "signature we calculated does not match &lt;the one&gt; you "
        "provided.</Message><StringToSign>AWS4-HMAC-SHA256</StringToSign>"
        "</Error>";
    struct sn_aws_error e;

    sn_aws_error_parse(NULL, 0, body, strlen(body), &e);
    CHECK_STR(e.code, "NoSuchKey");
    CHECK_STR(e.message, "The specified key does not exist.");

    sn_aws_error_parse(NULL, 0, sig, strlen(sig), &e);
    CHECK_STR(e.code, "SignatureDoesNotMatch");
    CHECK_STR(e.message, "The request signature we calculated does not "
                         "match <the one> you provided.");

    /* A cut-off body yields what it has; an empty one yields nothing. */
    sn_aws_error_parse(NULL, 0, body, 60, &e);
    CHECK_STR(e.code, "");
    sn_aws_error_parse(NULL, 0, "", 0, &e);
    CHECK_STR(e.code, "");
    CHECK_STR(e.message, "");
}

static void error_parse_json_type_forms(void)
{
    static const struct {
        const char *body;
        const char *code;
        const char *message;
    } cases[] = {
        {"{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
         "ConditionalCheckFailedException\",\"message\":\"The conditional "
         "request failed\"}",
         "ConditionalCheckFailedException", "The conditional request failed"},
        {"{\"__type\":\"com.amazon.coral.validate#ValidationException\","
         "\"Message\":\"1 validation error detected\"}",
         "ValidationException", "1 validation error detected"},
        {"{\"__type\":\"#ResourceNotFoundException\",\"message\":\"x\"}",
         "ResourceNotFoundException", "x"},
        {"  {\"__type\":\"ThrottlingException\"}", "ThrottlingException", ""},
        {"{\"__type\":\"ValidationException:http://internal.amazon.com/\"}",
         "ValidationException", ""},
        {"{\"message\":\"no type\"}", "", "no type"},
        {"{not json", "", ""},
    };
    struct sn_aws_error e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sn_aws_error_parse(NULL, 0, cases[i].body, strlen(cases[i].body), &e);
        CHECK_STR(e.code, cases[i].code);
        CHECK_STR(e.message, cases[i].message);
    }
}

static void error_parse_query_error_header(void)
{
    static const char headers[] =
        "HTTP/1.1 400 Bad Request\r\n"
        "x-amzn-RequestId: 1b5b8f3c\r\n"
        "X-Amzn-Query-Error: AWS.SimpleQueueService.NonExistentQueue;Sender\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n\r\n";
    static const char body[] =
        "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
        "\"message\":\"The specified queue does not exist.\"}";
    struct sn_aws_error e;

    sn_aws_error_parse(headers, strlen(headers), body, strlen(body), &e);
    CHECK_STR(e.code, "AWS.SimpleQueueService.NonExistentQueue");
    CHECK_STR(e.message, "The specified queue does not exist.");
    CHECK_INT(sn_aws_error_map(400, e.code), SN_ERR_NOT_FOUND);

    /* Without the header the body's type is the code. */
    sn_aws_error_parse(NULL, 0, body, strlen(body), &e);
    CHECK_STR(e.code, "QueueDoesNotExist");
    CHECK_INT(sn_aws_error_map(400, e.code), SN_ERR_NOT_FOUND);
}

/* The shape moto 5 gives authentication errors on its JSON services. */
static void error_parse_moto_xml_auth(void)
{
    static const char headers[] =
        "HTTP/1.1 403 Forbidden\r\n"
        "X-Amzn-ErrorType: InvalidClientTokenId\r\n"
        "Content-Type: application/xml\r\n\r\n";
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code>"
        "<Message>The request signature we calculated does not match the "
        "signature you provided.</Message><Type>Sender</Type></Error>"
        "</Errors></ErrorResponse>";
    struct sn_aws_error e;

    sn_aws_error_parse(NULL, 0, body, strlen(body), &e);
    CHECK_STR(e.code, "SignatureDoesNotMatch");
    CHECK_STR(e.message, "The request signature we calculated does not "
                         "match the signature you provided.");
    CHECK_INT(sn_aws_error_map(403, e.code), SN_ERR_BACKEND);

    /* With no body, the X-Amzn-ErrorType header supplies the code. */
    sn_aws_error_parse(headers, strlen(headers), NULL, 0, &e);
    CHECK_STR(e.code, "InvalidClientTokenId");
}

static void error_map_codes_and_statuses(void)
{
    static const struct {
        long status;
        const char *code;
        int expected;
    } cases[] = {
        {404, "NoSuchKey", SN_ERR_NOT_FOUND},
        {404, "NoSuchBucket", SN_ERR_NOT_FOUND},
        {400, "ResourceNotFoundException", SN_ERR_NOT_FOUND},
        {400, "QueueDoesNotExist", SN_ERR_NOT_FOUND},
        {400, "AWS.SimpleQueueService.NonExistentQueue", SN_ERR_NOT_FOUND},
        {400, "ConditionalCheckFailedException", SN_ERR_CONFLICT},
        {412, "PreconditionFailed", SN_ERR_CONFLICT},
        {400, "ReceiptHandleIsInvalid", SN_ERR_CONFLICT},
        {400, "ThrottlingException", SN_ERR_AGAIN},
        {503, "SlowDown", SN_ERR_AGAIN},
        {500, "InternalError", SN_ERR_AGAIN},
        {503, "", SN_ERR_AGAIN},
        {403, "SignatureDoesNotMatch", SN_ERR_BACKEND},
        {403, "InvalidAccessKeyId", SN_ERR_BACKEND},
        {400, "InvalidSignatureException", SN_ERR_BACKEND},
        {400, "InvalidToken", SN_ERR_BACKEND},
        {403, "AccessDenied", SN_ERR_BACKEND},
        {400, "ExpiredToken", SN_ERR_BACKEND},
        {400, "ValidationException", SN_ERR_INPUT},
        {400, "InvalidArgument", SN_ERR_INPUT},
        {400, "EntityTooLarge", SN_ERR_LIMIT},
        /* HEAD errors: the status alone decides. */
        {404, NULL, SN_ERR_NOT_FOUND},
        {412, NULL, SN_ERR_CONFLICT},
        {403, NULL, SN_ERR_BACKEND},
        {413, NULL, SN_ERR_LIMIT},
        {429, NULL, SN_ERR_AGAIN},
        {501, NULL, SN_ERR_BACKEND},
        {400, "SomethingNew", SN_ERR_BACKEND},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = sn_aws_error_map(cases[i].status, cases[i].code);

        if (got != cases[i].expected)
            fprintf(stderr, "case %zu: %ld %s\n", i, cases[i].status,
                    cases[i].code ? cases[i].code : "(none)");
        CHECK_INT(got, cases[i].expected);
    }
}

static void error_is_auth_codes_and_statuses(void)
{
    CHECK_INT(sn_aws_error_is_auth(403, "SignatureDoesNotMatch"), 1);
    CHECK_INT(sn_aws_error_is_auth(400, "UnrecognizedClientException"), 1);
    CHECK_INT(sn_aws_error_is_auth(400, "AccessDeniedException"), 1);
    CHECK_INT(sn_aws_error_is_auth(403, ""), 1);
    CHECK_INT(sn_aws_error_is_auth(403, NULL), 1);
    CHECK_INT(sn_aws_error_is_auth(404, "NoSuchBucket"), 0);
    CHECK_INT(sn_aws_error_is_auth(400, "ThrottlingException"), 0);
    CHECK_INT(sn_aws_error_is_auth(500, ""), 0);
}

static void endpoint_env_overrides(void)
{
    char url[SN_HTTP_URL_MAX], err[SN_ERR_SIZE];

    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL_SQS");
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");

    /* The regional defaults are only formatted here, never contacted. */
    CHECK_INT(sn_aws_endpoint("s3", "eu-west-1", url, sizeof(url), err,
                              sizeof(err)), 0);
    CHECK_STR(url, "https://s3.eu-west-1.amazonaws.com");
    CHECK_INT(sn_aws_endpoint("sqs", "us-east-1", url, sizeof(url), err,
                              sizeof(err)), 0);
    CHECK_STR(url, "https://sqs.us-east-1.amazonaws.com");
    CHECK_INT(sn_aws_endpoint("dynamodb", "ap-south-2", url, sizeof(url),
                              err, sizeof(err)), 0);
    CHECK_STR(url, "https://dynamodb.ap-south-2.amazonaws.com");

    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/", 1);
    setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5001", 1);
    CHECK_INT(sn_aws_endpoint("s3", "eu-west-1", url, sizeof(url), err,
                              sizeof(err)), 0);
    CHECK_STR(url, "http://127.0.0.1:5000");
    CHECK_INT(sn_aws_endpoint("sqs", "eu-west-1", url, sizeof(url), err,
                              sizeof(err)), 0);
    CHECK_STR(url, "http://127.0.0.1:5001");

    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    CHECK_INT(sn_aws_endpoint("sqs", "eu-west-1", url, sizeof(url), err,
                              sizeof(err)), 0);
    CHECK_STR(url, "https://sqs.eu-west-1.amazonaws.com");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");

    setenv("AWS_ENDPOINT_URL_DYNAMODB", "127.0.0.1:5002", 1);
    CHECK_INT(sn_aws_endpoint("dynamodb", "eu-west-1", url, sizeof(url), err,
                              sizeof(err)), SN_ERR_INPUT);
    CHECK(strstr(err, "127.0.0.1:5002") != NULL);

    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_SQS");
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    CHECK_INT(sn_aws_endpoint("s3", "EU West", url, sizeof(url), err,
                              sizeof(err)), SN_ERR_INPUT);
    CHECK(strstr(err, "EU West") != NULL);
    CHECK_INT(sn_aws_endpoint("lambda", "eu-west-1", url, sizeof(url), err,
                              sizeof(err)), SN_ERR_INPUT);
    CHECK_INT(sn_aws_endpoint("s3", "eu-west-1", url, 20, err, sizeof(err)),
              SN_ERR_LIMIT);
}

static void s3_url_encodes_key_once(void)
{
    char url[SN_HTTP_URL_MAX], err[SN_ERR_SIZE], small[8], encoded[10];
    const char *base = "http://127.0.0.1:9000";

    CHECK_INT(sn_s3_url(base, "media", "in/My Movie (final)+1%.mp4", url,
                        sizeof(url), err, sizeof(err)), 0);
    CHECK_STR(url, "http://127.0.0.1:9000/media/"
                   "in/My%20Movie%20%28final%29%2B1%25.mp4");

    /* UTF-8 bytes are encoded one by one, upper-case hex. */
    CHECK_INT(sn_s3_url(base, "media", "caf\xc3\xa9/~a_b-c.d", url,
                        sizeof(url), err, sizeof(err)), 0);
    CHECK_STR(url, "http://127.0.0.1:9000/media/caf%C3%A9/~a_b-c.d");

    CHECK_INT(sn_s3_url(base, "media", NULL, url, sizeof(url), err,
                        sizeof(err)), 0);
    CHECK_STR(url, "http://127.0.0.1:9000/media");

    CHECK_INT(sn_s3_url(base, "", "k", url, sizeof(url), err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK_INT(sn_s3_url(base, "a/b", "k", url, sizeof(url), err,
                        sizeof(err)), SN_ERR_INPUT);
    CHECK_INT(sn_s3_url(base, "media", "k", small, sizeof(small), err,
                        sizeof(err)), SN_ERR_LIMIT);

    CHECK_INT(sn_aws_uri_encode("a/b c", 0, encoded, sizeof(encoded)), 9);
    CHECK_STR(encoded, "a%2Fb%20c");
    CHECK_INT(sn_aws_uri_encode("a/b c d", 0, encoded, sizeof(encoded)), -1);
}

/* ---- A loopback HTTP server that plays a script ---------------------- */

#define MAX_STEPS 8

/*
 * Each request gets the next scripted reply, sent verbatim; a NULL reply
 * closes the connection without replying, and close_after closes it
 * once the reply is sent, so a reply shorter than its Content-Length
 * arrives cut. Requests past the script get
 * a 500. The server keeps connections open, as S3 does.
 */
struct fake_server {
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    const char *replies[MAX_STEPS];
    int close_after[MAX_STEPS];         /* close once reply i is sent */
    int n_replies;
    int n_requests;
    int n_connections;
    char requests[MAX_STEPS][2048];     /* request line and headers */
};

/* Reads one request; returns 1, or 0 when the peer closed or stop. */
static int read_request(struct fake_server *s, int fd, char *head,
                        size_t head_size)
{
    char buf[16384];
    size_t len = 0;
    char *end = NULL;
    long content_length = 0;

    while (!end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (s->stop || len + 1 >= sizeof(buf))
            return 0;
        if (poll(&p, 1, 50) <= 0)
            continue;
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }

    snprintf(head, head_size, "%.*s", (int)(end - buf), buf);
    for (char *h = strchr(buf, '\n'); h && h < end; h = strchr(h + 1, '\n'))
        if (strncasecmp(h + 1, "Content-Length:", 15) == 0)
            content_length = atol(h + 16);

    /* Drain the body; its content is not checked here. */
    for (size_t have = len - (size_t)(end + 4 - buf);
         (long)have < content_length;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n <= 0)
            return 0;
        have += (size_t)n;
    }
    return 1;
}

static void serve_connection(struct fake_server *s, int fd)
{
    char head[2048];

    while (read_request(s, fd, head, sizeof(head))) {
        int i = s->n_requests++;
        const char *reply = i < s->n_replies ? s->replies[i] :
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";

        if (i < MAX_STEPS)
            snprintf(s->requests[i], sizeof(s->requests[i]), "%s", head);
        if (!reply)
            return;
        if (write(fd, reply, strlen(reply)) < 0 ||
            (i < MAX_STEPS && s->close_after[i]))
            return;
    }
}

static void *server_main(void *opaque)
{
    struct fake_server *s = opaque;

    while (!s->stop) {
        struct pollfd p = {s->listen_fd, POLLIN, 0};
        int fd;

        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        s->n_connections++;
        serve_connection(s, fd);
        close(fd);
    }
    return NULL;
}

/* Starts the server on 127.0.0.1 and a free port; returns 0 or -1. */
static int server_start(struct fake_server *s)
{
    struct sockaddr_in addr = {0};
    socklen_t addr_len = sizeof(addr);

    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0 ||
        bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(s->listen_fd, 8) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&addr, &addr_len) != 0)
        return -1;
    s->port = ntohs(addr.sin_port);
    return pthread_create(&s->thread, NULL, server_main, s) == 0 ? 0 : -1;
}

static void server_stop(struct fake_server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

/* Counts the attempts signed and tags each with its number. */
struct signer {
    int calls;
};

static int sign_attempt(void *opaque, const char *method, const char *url,
                        struct curl_slist **headers, const void *body,
                        size_t body_size, char *err, size_t err_size)
{
    struct signer *signer = opaque;
    char line[64];
    struct curl_slist *next;

    (void)method, (void)url, (void)body, (void)body_size;
    snprintf(line, sizeof(line), "X-Test-Attempt: %d", ++signer->calls);
    next = curl_slist_append(*headers, line);
    if (!next) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    *headers = next;
    return 0;
}

/* Records the waits instead of sleeping. */
struct waits {
    long ms[MAX_STEPS];
    int n;
};

static void record_wait(void *opaque, long ms)
{
    struct waits *w = opaque;

    if (w->n < MAX_STEPS)
        w->ms[w->n] = ms;
    w->n++;
}

static uint32_t random_value = 1234;

static struct sn_http_client *test_client(struct waits *waits)
{
    struct sn_http_config cfg;

    sn_http_config_default(&cfg);
    cfg.random = fixed_random;
    cfg.random_opaque = &random_value;
    cfg.sleep = record_wait;
    cfg.sleep_opaque = waits;
    return sn_http_client_new(&cfg);
}

#define OK_HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
#define UNAVAILABLE \
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n" \
    "Content-Length: 87\r\n\r\n<Error><Code>SlowDown</Code>" \
    "<Message>Please reduce your request rate.</Message></Error>"

/* Sends GET / to s with signer; resp is released by the caller. */
static int get(struct sn_http_client *client, struct fake_server *s,
               struct signer *signer, struct sn_http_response *resp,
               char *err, size_t err_size)
{
    char url[64];
    struct sn_http_request req;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/media/k", s->port);
    sn_http_request_init(&req, "GET", url);
    req.resource = "s3://media/k";
    req.sign = sign_attempt;
    req.sign_opaque = signer;
    return sn_http_send(client, &req, resp, err, err_size);
}

static void send_reuses_one_connection(void)
{
    struct fake_server s = {.replies = {OK_HELLO, OK_HELLO, OK_HELLO},
                            .n_replies = 3};
    struct waits waits = {0};
    struct signer signer = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK(client != NULL);
    CHECK_INT(server_start(&s), 0);
    for (int i = 0; client && i < 3; i++) {
        CHECK_INT(get(client, &s, &signer, &resp, err, sizeof(err)), 0);
        CHECK_INT(resp.status, 200);
        CHECK_INT(resp.body_size, 5);
        CHECK_STR(resp.body, "hello");
        CHECK_INT(resp.attempts, 1);
        sn_http_response_release(&resp);
    }
    server_stop(&s);
    CHECK_INT(s.n_requests, 3);
    CHECK_INT(s.n_connections, 1);
    CHECK_INT(signer.calls, 3);
    sn_http_client_free(client);
}

static void send_retries_503_then_succeeds(void)
{
    struct fake_server s = {.replies = {UNAVAILABLE, OK_HELLO},
                            .n_replies = 2};
    struct waits waits = {0};
    struct signer signer = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(server_start(&s), 0);
    CHECK_INT(get(client, &s, &signer, &resp, err, sizeof(err)), 0);
    server_stop(&s);

    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.body, "hello");
    CHECK_INT(resp.attempts, 2);
    CHECK_INT(s.n_requests, 2);
    CHECK_INT(waits.n, 1);
    CHECK_INT(waits.ms[0], 1234 % 101);

    /* Every attempt is signed anew. */
    CHECK_INT(signer.calls, 2);
    CHECK(strstr(s.requests[0], "X-Test-Attempt: 1") != NULL);
    CHECK(strstr(s.requests[1], "X-Test-Attempt: 2") != NULL);
    CHECK(strstr(s.requests[1], "X-Test-Attempt: 1") == NULL);
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

static void send_retries_400_throttling(void)
{
    static const char throttled[] =
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: application/x-amz-json-1.0\r\nContent-Length: 91\r\n"
        "\r\n{\"__type\":\"com.amazonaws.dynamodb.v20120810#ThrottlingExcepti"
        "on\",\"message\":\"Rate exceeded\"}";
    struct fake_server s = {.replies = {throttled, throttled, OK_HELLO},
                            .n_replies = 3};
    struct waits waits = {0};
    struct signer signer = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(strlen(strstr(throttled, "\r\n\r\n") + 4), 91);
    CHECK_INT(server_start(&s), 0);
    CHECK_INT(get(client, &s, &signer, &resp, err, sizeof(err)), 0);
    server_stop(&s);

    CHECK_INT(resp.attempts, 3);
    CHECK_INT(signer.calls, 3);
    CHECK_INT(waits.n, 2);
    CHECK_INT(waits.ms[0], 1234 % 101);
    CHECK_INT(waits.ms[1], 1234 % 201);
    CHECK_INT(s.n_connections, 1);
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

static void send_does_not_retry_403(void)
{
    static const char denied[] =
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
        "Content-Length: 88\r\n\r\n<Error><Code>InvalidAccessKeyId</Code>"
        "<Message>The key does not exist.</Message></Error>";
    struct fake_server s = {.replies = {denied, OK_HELLO}, .n_replies = 2};
    struct waits waits = {0};
    struct signer signer = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(strlen(strstr(denied, "\r\n\r\n") + 4), 88);
    CHECK_INT(server_start(&s), 0);
    CHECK_INT(get(client, &s, &signer, &resp, err, sizeof(err)),
              SN_ERR_BACKEND);
    server_stop(&s);

    CHECK_INT(resp.status, 403);
    CHECK_STR(resp.aws_code, "InvalidAccessKeyId");
    CHECK_INT(resp.attempts, 1);
    CHECK_INT(s.n_requests, 1);
    CHECK_INT(waits.n, 0);
    CHECK_STR(err, "GET s3://media/k: HTTP 403 InvalidAccessKeyId: The key "
                   "does not exist. (check AWS_ACCESS_KEY_ID and "
                   "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)");
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

static void send_retries_dropped_connection(void)
{
    struct fake_server s = {.replies = {NULL, OK_HELLO}, .n_replies = 2};
    struct waits waits = {0};
    struct signer signer = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(server_start(&s), 0);
    CHECK_INT(get(client, &s, &signer, &resp, err, sizeof(err)), 0);
    server_stop(&s);

    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.body, "hello");
    CHECK_INT(resp.attempts, 2);
    CHECK_INT(s.n_connections, 2);
    CHECK_INT(signer.calls, 2);
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

static void send_gives_up_after_max_attempts(void)
{
    struct fake_server s = {.replies = {UNAVAILABLE, UNAVAILABLE, UNAVAILABLE,
                                        UNAVAILABLE, UNAVAILABLE, OK_HELLO},
                            .n_replies = 6};
    struct waits waits = {0};
    struct signer signer = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(server_start(&s), 0);
    CHECK_INT(get(client, &s, &signer, &resp, err, sizeof(err)),
              SN_ERR_AGAIN);
    server_stop(&s);

    CHECK_INT(resp.status, 503);
    CHECK_STR(resp.aws_code, "SlowDown");
    CHECK_INT(resp.attempts, 5);
    CHECK_INT(s.n_requests, 5);
    CHECK_INT(waits.n, 4);
    CHECK_INT(waits.ms[3], 1234 % 801);
    CHECK_STR(err, "GET s3://media/k: HTTP 503 SlowDown: Please reduce your "
                   "request rate. (gave up after 5 attempts)");
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

struct sink {
    char data[64];
    size_t len;
};

static int collect(void *opaque, const void *data, size_t n)
{
    struct sink *sink = opaque;

    if (n > sizeof(sink->data) - sink->len)
        return SN_ERR_LIMIT;
    memcpy(sink->data + sink->len, data, n);
    sink->len += n;
    return 0;
}

/* A ranged GET cut short is resumed from the first byte not received. */
static void send_resumes_streamed_range(void)
{
    static const char cut[] =
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-109/500\r\n"
        "Content-Length: 10\r\n\r\n0123";
    static const char rest[] =
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 104-109/500\r\n"
        "Content-Length: 6\r\n\r\n456789";
    struct fake_server s = {.replies = {cut, rest}, .n_replies = 2,
                            .close_after = {1}};
    struct waits waits = {0};
    struct sink sink = {{0}, 0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    struct sn_http_request req;
    char url[64], err[SN_ERR_SIZE] = "";

    CHECK_INT(server_start(&s), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/media/k", s.port);
    sn_http_request_init(&req, "GET", url);
    req.range_first = 100;
    req.range_last = 109;
    req.write = collect;
    req.write_opaque = &sink;
    CHECK_INT(sn_http_send(client, &req, &resp, err, sizeof(err)), 0);
    server_stop(&s);

    CHECK_INT(resp.status, 206);
    CHECK_INT(sink.len, 10);
    CHECK(memcmp(sink.data, "0123456789", 10) == 0);
    CHECK(strstr(s.requests[0], "Range: bytes=100-109") != NULL);
    CHECK(strstr(s.requests[1], "Range: bytes=104-109") != NULL);
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

static void send_limits_body_in_memory(void)
{
    struct fake_server s = {.replies = {OK_HELLO}, .n_replies = 1};
    struct waits waits = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    struct sn_http_request req;
    char url[64], err[SN_ERR_SIZE] = "";

    CHECK_INT(server_start(&s), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/queue", s.port);
    sn_http_request_init(&req, "POST", url);
    req.body = "{}";
    req.body_size = 2;
    req.max_body = 4;
    CHECK_INT(sn_http_send(client, &req, &resp, err, sizeof(err)),
              SN_ERR_LIMIT);
    server_stop(&s);

    CHECK_INT(resp.attempts, 1);
    CHECK(strstr(err, "maximum of 4 bytes") != NULL);
    CHECK(strstr(s.requests[0], "POST /queue HTTP/1.1") != NULL);
    CHECK(strstr(s.requests[0], "Content-Length: 2") != NULL);
    CHECK(strstr(s.requests[0], "Content-Type: application/x-www") ==
          NULL);
    CHECK(strstr(s.requests[0], "Expect:") == NULL);
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

/* HEAD errors have no body, so the status alone names the cause. */
static void send_maps_head_404(void)
{
    struct fake_server s = {
        .replies = {"HTTP/1.1 404 Not Found\r\nx-amz-request-id: 7F1A\r\n"
                    "Content-Type: application/xml\r\n\r\n"},
        .n_replies = 1};
    struct waits waits = {0};
    struct sn_http_client *client = test_client(&waits);
    struct sn_http_response resp = {0};
    struct sn_http_request req;
    char url[64], err[SN_ERR_SIZE] = "", id[16];

    CHECK_INT(server_start(&s), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/media/gone", s.port);
    sn_http_request_init(&req, "HEAD", url);
    req.resource = "s3://media/gone";
    CHECK_INT(sn_http_send(client, &req, &resp, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    server_stop(&s);

    CHECK_INT(resp.status, 404);
    CHECK_INT(resp.attempts, 1);
    CHECK_STR(resp.aws_code, "");
    CHECK_INT(sn_http_header(&resp, "X-Amz-Request-Id", id, sizeof(id)), 4);
    CHECK_STR(id, "7F1A");
    CHECK_INT(sn_http_header(&resp, "ETag", id, sizeof(id)), -1);
    CHECK_STR(err, "HEAD s3://media/gone: HTTP 404");
    sn_http_response_release(&resp);
    sn_http_client_free(client);
}

SN_TEST_MAIN(TEST_CASE(retry_decisions_follow_table),
             TEST_CASE(backoff_stays_within_bounds),
             TEST_CASE(error_parse_s3_xml),
             TEST_CASE(error_parse_json_type_forms),
             TEST_CASE(error_parse_query_error_header),
             TEST_CASE(error_parse_moto_xml_auth),
             TEST_CASE(error_map_codes_and_statuses),
             TEST_CASE(error_is_auth_codes_and_statuses),
             TEST_CASE(endpoint_env_overrides),
             TEST_CASE(s3_url_encodes_key_once),
             TEST_CASE(send_reuses_one_connection),
             TEST_CASE(send_retries_503_then_succeeds),
             TEST_CASE(send_retries_400_throttling),
             TEST_CASE(send_does_not_retry_403),
             TEST_CASE(send_retries_dropped_connection),
             TEST_CASE(send_gives_up_after_max_attempts),
             TEST_CASE(send_resumes_streamed_range),
             TEST_CASE(send_limits_body_in_memory),
             TEST_CASE(send_maps_head_404))
