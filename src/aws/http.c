#include "aws/http.h"

#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A byte buffer that grows up to max and rejects appends past it. */
struct bytes {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

struct sn_http_client {
    CURL *curl;
    struct sn_http_config cfg;
    uint32_t random_state;      /* xorshift32 state when cfg.random is NULL */
    char curl_error[CURL_ERROR_SIZE];
};

/* The CA bundle of clients created with default settings, or "". */
static char default_ca_file[4096];

/* The state of one request, kept across its attempts. */
struct transfer {
    struct sn_http_client *client;
    const struct sn_http_request *req;
    struct bytes body;          /* 2xx body when not streamed */
    struct bytes error_body;    /* non-2xx body, for the error parser */
    struct bytes headers;       /* header lines of the latest response */
    uint64_t delivered;         /* bytes handed to req->write so far */
    int sink_rc;                /* why a callback aborted, or 0 */
};

/* Appends n bytes. Returns 0, -E2BIG past the maximum, or -ENOMEM. */
static int bytes_append(struct bytes *b, const void *data, size_t n)
{
    size_t cap = b->cap ? b->cap : 1024;

    if (n > b->max - b->len)
        return -E2BIG;
    while (cap < b->len + n + 1)
        cap *= 2;
    if (cap != b->cap) {
        char *p = realloc(b->data, cap);

        if (!p)
            return -ENOMEM;
        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static void bytes_clear(struct bytes *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sn_http_config_default(struct sn_http_config *cfg)
{
    const struct sn_http_retry retry = SN_HTTP_RETRY_DEFAULT;

    memset(cfg, 0, sizeof(*cfg));
    cfg->connect_timeout_ms = 5000;
    cfg->low_speed_bytes = 1024;
    cfg->low_speed_time_s = 30;
    cfg->retry = retry;
    cfg->ca_file = default_ca_file[0] != '\0' ? default_ca_file : NULL;
}

int sn_http_set_default_ca_file(const char *path)
{
    if (path == NULL) {
        default_ca_file[0] = '\0';
        return 0;
    }
    if (path[0] == '\0' || strlen(path) >= sizeof(default_ca_file))
        return SN_ERR_INPUT;
    memcpy(default_ca_file, path, strlen(path) + 1);
    return 0;
}

void sn_http_request_init(struct sn_http_request *req, const char *method,
                          const char *url)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->url = url;
    req->range_first = -1;
    req->range_last = -1;
}

void sn_http_response_release(struct sn_http_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof(*resp));
}

int sn_http_header(const struct sn_http_response *resp, const char *name,
                   char *out, size_t out_size)
{
    size_t name_len = strlen(name);
    const char *line = resp->headers;
    const char *end = line ? line + resp->headers_size : NULL;

    while (line && line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *stop = eol ? eol : end;

        if ((size_t)(stop - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;

            while (v < stop && (*v == ' ' || *v == '\t'))
                v++;
            while (stop > v && isspace((unsigned char)stop[-1]))
                stop--;
            if ((size_t)(stop - v) >= out_size)
                return -1;
            memcpy(out, v, (size_t)(stop - v));
            out[stop - v] = '\0';
            return (int)(stop - v);
        }
        line = eol ? eol + 1 : end;
    }
    return -1;
}

/* ---- Retry policy ---------------------------------------------------- */

/*
 * Codes AWS services return for throttling or a request the server did
 * not finish, with status 400 as often as 429 or 503. RequestTimeout is
 * S3's 400 for a body that arrived too slowly.
 */
static const char *const transient_codes[] = {
    "Throttling", "ThrottlingException", "ThrottledException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "SlowDown", "RequestThrottled", "RequestThrottledException",
    "TooManyRequestsException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "InternalFailure", "ServiceUnavailable",
};

static int code_in(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; code && i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return 1;
    return 0;
}

#define CODE_IN(code, list) code_in(code, list, sizeof(list) / sizeof(*list))

/*
 * 501 Not Implemented is a 5xx that repeating cannot fix, so it is the
 * one server status not treated as transient.
 */
static int status_is_transient(long status)
{
    return status == 429 || (status >= 500 && status <= 599 && status != 501);
}

int sn_http_should_retry(CURLcode curl_code, long status,
                         const char *aws_code)
{
    switch (curl_code) {
    case CURLE_OK:
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:          /* includes a reset while sending */
    case CURLE_RECV_ERROR:          /* includes a reset while receiving */
    case CURLE_GOT_NOTHING:         /* closed without a reply */
    case CURLE_PARTIAL_FILE:        /* closed before Content-Length bytes */
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }

    if (CODE_IN(aws_code, transient_codes))
        return 1;
    return status_is_transient(status);
}

long sn_http_backoff_ms(const struct sn_http_retry *policy, int retry,
                        sn_http_random_fn rand_fn, void *rand_opaque)
{
    uint64_t ceiling = policy->base_ms > 0 ? (uint64_t)policy->base_ms : 0;
    uint64_t cap = policy->cap_ms > 0 ? (uint64_t)policy->cap_ms : 0;

    for (int i = 0; i < retry && ceiling < cap; i++)
        ceiling *= 2;
    if (ceiling > cap)
        ceiling = cap;

    /* Full jitter: any wait from zero to the ceiling, equally likely. */
    return (long)(rand_fn(rand_opaque) % (ceiling + 1));
}

static uint32_t xorshift32(void *opaque)
{
    uint32_t *state = opaque;
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void sleep_ms(void *opaque, long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    (void)opaque;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- Error responses ------------------------------------------------- */

/* Copies n bytes of s into out, cut to out_size - 1. */
static void copy_cut(char *out, size_t out_size, const char *s, size_t n)
{
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/*
 * Copies an error type name without its namespace or suffix:
 * "com.amazonaws.sqs#QueueDoesNotExist" and "QueueDoesNotExist:http://..."
 * both become "QueueDoesNotExist" (the Smithy awsJson rule: the name is
 * what follows the first '#', and ends at the first ':').
 */
static void copy_type_name(char *out, size_t out_size, const char *s,
                           size_t n)
{
    const char *hash = memchr(s, '#', n);
    const char *colon;

    if (hash) {
        n -= (size_t)(hash + 1 - s);
        s = hash + 1;
    }
    colon = memchr(s, ':', n);
    if (colon)
        n = (size_t)(colon - s);
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    copy_cut(out, out_size, s, n);
}

/* Copies XML text, decoding the five predefined entities. */
static void copy_xml_text(char *out, size_t out_size, const char *s,
                          size_t n)
{
    static const struct { const char *entity; char c; } entities[] = {
        {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'},
        {"&quot;", '"'}, {"&apos;", '\''},
    };
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < out_size; i++) {
        char c = s[i];

        for (size_t e = 0; c == '&' && e < 5; e++) {
            size_t len = strlen(entities[e].entity);

            if (n - i >= len && memcmp(s + i, entities[e].entity, len) == 0) {
                c = entities[e].c;
                i += len - 1;
                break;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

/* memmem() without _GNU_SOURCE: the first needle in haystack, or NULL. */
static const char *find_bytes(const char *haystack, size_t size,
                              const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; n <= size && i <= size - n; i++)
        if (haystack[i] == needle[0] && memcmp(haystack + i, needle, n) == 0)
            return haystack + i;
    return NULL;
}

/*
 * Finds the text of the first <tag>...</tag> in the body. No XML parser
 * is needed: error documents are flat, and the tags searched for do not
 * nest. Returns the text and sets *len, or NULL.
 */
static const char *xml_element(const char *body, size_t size,
                               const char *tag, size_t *len)
{
    char open[32], close[32];
    const char *start, *end;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    start = find_bytes(body, size, open);
    if (!start)
        return NULL;
    start += strlen(open);
    end = find_bytes(start, size - (size_t)(start - body), close);
    if (!end)
        return NULL;
    *len = (size_t)(end - start);
    return start;
}

static void parse_json_error(const char *body, size_t size,
                             struct sn_aws_error *out)
{
    json_t *root = json_loadb(body, size, 0, NULL);
    const char *type, *message;

    if (!json_is_object(root))
        goto out;

    type = json_string_value(json_object_get(root, "__type"));
    if (!type)
        type = json_string_value(json_object_get(root, "code"));
    if (type && !out->code[0])
        copy_type_name(out->code, sizeof(out->code), type, strlen(type));

    message = json_string_value(json_object_get(root, "message"));
    if (!message)
        message = json_string_value(json_object_get(root, "Message"));
    if (message)
        copy_cut(out->message, sizeof(out->message), message,
                 strlen(message));

out:
    json_decref(root);
}

static void parse_xml_error(const char *body, size_t size,
                            struct sn_aws_error *out)
{
    const char *text;
    size_t len;

    text = xml_element(body, size, "Code", &len);
    if (text && !out->code[0])
        copy_xml_text(out->code, sizeof(out->code), text, len);
    text = xml_element(body, size, "Message", &len);
    if (text)
        copy_xml_text(out->message, sizeof(out->message), text, len);
}

/* Finds "name:" in raw header lines; see sn_http_header(). */
static int raw_header(const char *headers, size_t size, const char *name,
                      char *out, size_t out_size)
{
    struct sn_http_response view = {0};

    view.headers = (char *)headers;
    view.headers_size = size;
    return sn_http_header(&view, name, out, out_size);
}

void sn_aws_error_parse(const char *headers, size_t headers_size,
                        const char *body, size_t body_size,
                        struct sn_aws_error *out)
{
    char value[256];
    size_t i = 0;

    memset(out, 0, sizeof(*out));

    /* SQS JSON keeps the query protocol's code here: "Code;Sender". */
    if (headers && raw_header(headers, headers_size, "x-amzn-query-error",
                              value, sizeof(value)) > 0)
        copy_cut(out->code, sizeof(out->code), value, strcspn(value, ";"));

    while (body && i < body_size && isspace((unsigned char)body[i]))
        i++;
    if (body && i < body_size && body[i] == '{')
        parse_json_error(body + i, body_size - i, out);
    else if (body && i < body_size && body[i] == '<')
        parse_xml_error(body + i, body_size - i, out);

    if (!out->code[0] && headers &&
        raw_header(headers, headers_size, "x-amzn-ErrorType", value,
                   sizeof(value)) > 0)
        copy_type_name(out->code, sizeof(out->code), value, strlen(value));
}

static const char *const not_found_codes[] = {
    "NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound",
    "ResourceNotFoundException", "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
};

static const char *const conflict_codes[] = {
    "ConditionalCheckFailedException", "PreconditionFailed",
    "ReceiptHandleIsInvalid",
};

/* Credentials or permissions: retrying or changing input cannot help. */
static const char *const auth_codes[] = {
    "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken",
    "InvalidClientTokenId", "InvalidSignatureException",
    "UnrecognizedClientException", "AccessDenied",
    "AccessDeniedException", "ExpiredToken", "ExpiredTokenException",
    "MissingAuthenticationToken", "AuthFailure",
};

static const char *const input_codes[] = {
    "ValidationException", "InvalidArgument", "InvalidParameterValue",
};

int sn_aws_error_map(long status, const char *aws_code)
{
    if (CODE_IN(aws_code, not_found_codes))
        return SN_ERR_NOT_FOUND;
    if (CODE_IN(aws_code, conflict_codes))
        return SN_ERR_CONFLICT;
    if (CODE_IN(aws_code, transient_codes))
        return SN_ERR_AGAIN;
    if (CODE_IN(aws_code, auth_codes))
        return SN_ERR_BACKEND;
    if (CODE_IN(aws_code, input_codes))
        return SN_ERR_INPUT;
    if (aws_code && strcmp(aws_code, "EntityTooLarge") == 0)
        return SN_ERR_LIMIT;

    /* No code or an unknown one: HEAD errors carry only the status. */
    if (status == 404)
        return SN_ERR_NOT_FOUND;
    if (status == 412)
        return SN_ERR_CONFLICT;
    if (status == 413)
        return SN_ERR_LIMIT;
    if (status_is_transient(status))
        return SN_ERR_AGAIN;
    return SN_ERR_BACKEND;
}

/* ---- Endpoints and URLs ---------------------------------------------- */

static int has_http_scheme(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static int region_is_valid(const char *region)
{
    size_t n = strlen(region);

    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)region[i]) &&
            !isdigit((unsigned char)region[i]) && region[i] != '-')
            return 0;
    return 1;
}

/* Returns the endpoint variable that applies to service, or NULL. */
static const char *endpoint_from_env(const char *service)
{
    const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    char name[64];
    const char *url;
    size_t i;

    if (ignore && strcasecmp(ignore, "true") == 0)
        return NULL;

    i = (size_t)snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_");
    for (const char *s = service; *s && i + 1 < sizeof(name); s++)
        name[i++] = (char)toupper((unsigned char)*s);
    name[i] = '\0';

    url = getenv(name);
    if (url && *url)
        return url;
    url = getenv("AWS_ENDPOINT_URL");
    return url && *url ? url : NULL;
}

int sn_aws_endpoint(const char *service, const char *region, char *out,
                    size_t out_size, char *err, size_t err_size)
{
    const char *url;
    int n;

    if (strcmp(service, "s3") != 0 && strcmp(service, "sqs") != 0 &&
        strcmp(service, "dynamodb") != 0) {
        snprintf(err, err_size, "endpoint: unknown service \"%s\" "
                 "(expected s3, sqs or dynamodb)", service);
        return SN_ERR_INPUT;
    }

    url = endpoint_from_env(service);
    if (url && !has_http_scheme(url)) {
        snprintf(err, err_size, "endpoint for %s: \"%s\" is not an "
                 "http:// or https:// URL", service, url);
        return SN_ERR_INPUT;
    }
    if (!url && (!region || !region_is_valid(region))) {
        snprintf(err, err_size, "endpoint for %s: invalid region \"%s\" "
                 "(set AWS_REGION, e.g. us-east-1)", service,
                 region ? region : "");
        return SN_ERR_INPUT;
    }

    if (url)
        n = snprintf(out, out_size, "%s", url);
    else
        n = snprintf(out, out_size, "https://%s.%s.amazonaws.com", service,
                     region);
    if (n < 0 || (size_t)n >= out_size) {
        snprintf(err, err_size, "endpoint for %s: URL longer than the "
                 "maximum of %zu bytes", service, out_size - 1);
        return SN_ERR_LIMIT;
    }

    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

static int is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int sn_aws_uri_encode(const char *s, int keep_slash, char *out,
                      size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* isalnum() is locale-dependent; only ASCII letters are kept. */
        int keep = (*p < 0x80 && is_unreserved(*p)) ||
                   (keep_slash && *p == '/');

        if (o + (keep ? 1 : 3) >= out_size)
            return -1;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }

    if (o >= out_size)
        return -1;
    out[o] = '\0';
    return (int)o;
}

/*
 * Accepts the characters of current and legacy (us-east-1, uppercase
 * and '_') bucket names; the service checks the rest.
 */
static int bucket_is_valid(const char *bucket)
{
    size_t n = strlen(bucket);

    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)bucket[i]) && bucket[i] != '-' &&
            bucket[i] != '.' && bucket[i] != '_')
            return 0;
    return 1;
}

int sn_s3_url(const char *endpoint, const char *bucket, const char *key,
              char *out, size_t out_size, char *err, size_t err_size)
{
    int n;

    if (!bucket_is_valid(bucket)) {
        snprintf(err, err_size, "s3 URL: invalid bucket name \"%s\"", bucket);
        return SN_ERR_INPUT;
    }

    n = snprintf(out, out_size, "%s/%s%s", endpoint, bucket,
                 key && *key ? "/" : "");
    if (n < 0 || (size_t)n >= out_size ||
        (key && *key && sn_aws_uri_encode(key, 1, out + n,
                                          out_size - (size_t)n) < 0)) {
        snprintf(err, err_size, "s3 URL for s3://%s/%s: longer than the "
                 "maximum of %zu bytes", bucket, key ? key : "",
                 out_size - 1);
        return SN_ERR_LIMIT;
    }
    return 0;
}

/* ---- The client ------------------------------------------------------ */

struct sn_http_client *sn_http_client_new(const struct sn_http_config *cfg)
{
    struct sn_http_client *client = calloc(1, sizeof(*client));

    if (!client)
        return NULL;
    if (cfg)
        client->cfg = *cfg;
    else
        sn_http_config_default(&client->cfg);
    if (client->cfg.retry.max_attempts < 1)
        client->cfg.retry.max_attempts = 1;

    /* The seed only spreads retries of different clients apart. */
    client->random_state = (uint32_t)time(NULL) ^ (uint32_t)getpid() ^
                           (uint32_t)(uintptr_t)client;
    if (client->random_state == 0)
        client->random_state = 1;

    client->curl = curl_easy_init();
    if (!client->curl) {
        free(client);
        return NULL;
    }
    return client;
}

void sn_http_client_free(struct sn_http_client *client)
{
    if (!client)
        return;
    curl_easy_cleanup(client->curl);
    free(client);
}

static int status_is_success(long status)
{
    return status >= 200 && status <= 299;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct transfer *t = opaque;
    size_t n = size * nmemb;
    long status = 0;
    int rc;

    curl_easy_getinfo(t->client->curl, CURLINFO_RESPONSE_CODE, &status);

    /* Error bodies past the maximum are cut; the code comes first. */
    if (!status_is_success(status)) {
        size_t room = t->error_body.max - t->error_body.len;

        if (bytes_append(&t->error_body, data, n < room ? n : room) != 0)
            t->sink_rc = -ENOMEM;
        return t->sink_rc ? 0 : n;
    }

    if (t->req->write) {
        rc = t->req->write(t->req->write_opaque, data, n);
        if (rc != 0) {
            t->sink_rc = rc < 0 ? rc : SN_ERR_BACKEND;
            return 0;
        }
        t->delivered += n;
        return n;
    }

    rc = bytes_append(&t->body, data, n);
    if (rc != 0) {
        t->sink_rc = rc == -E2BIG ? SN_ERR_LIMIT : rc;
        return 0;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct transfer *t = opaque;
    size_t n = size * nmemb;

    /* A status line starts a new response (after a 100 Continue). */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        bytes_clear(&t->headers);

    /* NOTE: header lines past SN_HTTP_HEADERS_MAX are dropped unseen. */
    if (bytes_append(&t->headers, data, n) == -ENOMEM) {
        t->sink_rc = -ENOMEM;
        return 0;
    }
    return n;
}

static int header_present(const struct curl_slist *list, const char *name)
{
    size_t n = strlen(name);

    for (; list; list = list->next)
        if (strncasecmp(list->data, name, n) == 0 && list->data[n] == ':')
            return 1;
    return 0;
}

/*
 * Builds the header list of one attempt: the caller's headers, the
 * Range (moved past bytes already streamed), then the signature.
 */
static int build_headers(struct transfer *t, struct curl_slist **out,
                         char *err, size_t err_size)
{
    const struct sn_http_request *req = t->req;
    struct curl_slist *list = NULL, *next;
    char range[64];
    int rc = -ENOMEM;

    for (const struct curl_slist *h = req->headers; h; h = h->next) {
        next = curl_slist_append(list, h->data);
        if (!next)
            goto fail;
        list = next;
    }

    if (req->range_first >= 0) {
        long long first = req->range_first + (long long)t->delivered;

        if (req->range_last >= 0)
            snprintf(range, sizeof(range), "Range: bytes=%lld-%lld", first,
                     (long long)req->range_last);
        else
            snprintf(range, sizeof(range), "Range: bytes=%lld-", first);
        next = curl_slist_append(list, range);
        if (!next)
            goto fail;
        list = next;
    }

    if (req->sign) {
        rc = req->sign(req->sign_opaque, req->method, req->url, &list,
                       req->body, req->body_size, err, err_size);
        if (rc != 0)
            goto fail_signed;
    }

    /*
     * Lines added after signing, so they are not signed: an empty value
     * stops libcurl from adding its own header. Expect: 100-continue
     * would cost a round trip, and the form Content-Type libcurl sets
     * for a body is wrong for AWS.
     */
    next = curl_slist_append(list, "Expect:");
    if (!next)
        goto fail;
    list = next;
    if (req->body_size > 0 && !header_present(list, "Content-Type")) {
        next = curl_slist_append(list, "Content-Type:");
        if (!next)
            goto fail;
        list = next;
    }

    *out = list;
    return 0;

fail:
    snprintf(err, err_size, "%s %s: out of memory building headers",
             req->method, req->resource ? req->resource : req->url);
    rc = -ENOMEM;
fail_signed:
    curl_slist_free_all(list);
    return rc;
}

static void set_method(CURL *curl, const struct sn_http_request *req)
{
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") == 0 && req->body_size == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
        /* PUT and POST always send a Content-Length, 0 included. */
        if (req->body_size > 0 || strcmp(req->method, "PUT") == 0 ||
            strcmp(req->method, "POST") == 0) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)req->body_size);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
                             req->body ? req->body : "");
        }
    }
}

/*
 * Runs one attempt. curl_easy_reset() keeps the handle's connection
 * cache, so the connection of the previous request is reused.
 */
static CURLcode perform_once(struct transfer *t, struct curl_slist *headers,
                             long *status)
{
    struct sn_http_client *client = t->client;
    const struct sn_http_config *cfg = &client->cfg;
    CURL *curl = client->curl;
    CURLcode rc;

    curl_easy_reset(curl);
    client->curl_error[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, t->req->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, client->curl_error);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, cfg->low_speed_bytes);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, cfg->low_speed_time_s);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, cfg->total_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (cfg->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->ca_file);
    set_method(curl, t->req);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);

    bytes_clear(&t->body);
    bytes_clear(&t->error_body);
    bytes_clear(&t->headers);
    *status = 0;

    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* Moves what the last attempt collected into resp. */
static void fill_response(struct transfer *t, struct sn_http_response *resp,
                          long status, int attempts)
{
    resp->status = status;
    resp->attempts = attempts;
    resp->body = t->body.data;
    resp->body_size = t->body.len;
    resp->headers = t->headers.data;
    resp->headers_size = t->headers.len;
    t->body.data = NULL;
    t->headers.data = NULL;
}

/* Codes of a signature or key the service did not accept, as opposed to
 * a known key without permission. */
static const char *const credential_codes[] = {
    "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId",
    "InvalidSignatureException", "UnrecognizedClientException",
};

int sn_aws_error_is_auth(long status, const char *aws_code)
{
    if (aws_code == NULL || aws_code[0] == '\0')
        return status == 401 || status == 403;
    return CODE_IN(aws_code, auth_codes);
}

/*
 * Writes what ends every error line: a hint when the service rejected the
 * credentials, and the attempt count when the request was retried.
 */
static void append_remedy(char *err, size_t err_size, long status,
                          const char *aws_code, int attempts)
{
    size_t len = strlen(err);

    if (aws_code != NULL && CODE_IN(aws_code, credential_codes) &&
        len < err_size)
        len += (size_t)snprintf(err + len, err_size - len,
                                " (check AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)");
    else if (status == 403 && (aws_code == NULL || aws_code[0] == '\0') &&
             len < err_size)
        len += (size_t)snprintf(err + len, err_size - len,
                                " (a HEAD response has no error code; "
                                "check AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
                                "and the permissions)");
    if (attempts > 1 && len < err_size)
        snprintf(err + len, err_size - len, " (gave up after %d attempts)",
                 attempts);
}

/*
 * Writes the error line of a failed request and returns its code:
 * "GET s3://b/k: HTTP 503 SlowDown: Please reduce your request rate.
 * (gave up after 5 attempts)".
 */
static int report_failure(struct transfer *t, CURLcode curl_code,
                          long status, int attempt,
                          struct sn_http_response *resp, char *err,
                          size_t err_size)
{
    const struct sn_http_request *req = t->req;
    const char *what = req->resource ? req->resource : req->url;
    struct sn_aws_error e;

    if (curl_code != CURLE_OK) {
        const char *detail = t->client->curl_error[0] ?
                             t->client->curl_error :
                             curl_easy_strerror(curl_code);

        snprintf(err, err_size, "%s %s: request failed: %s", req->method,
                 what, detail);
        append_remedy(err, err_size, 0, NULL, attempt);
        return sn_http_should_retry(curl_code, 0, NULL) ? SN_ERR_AGAIN :
                                                          SN_ERR_BACKEND;
    }

    sn_aws_error_parse(t->headers.data, t->headers.len, t->error_body.data,
                       t->error_body.len, &e);
    snprintf(resp->aws_code, sizeof(resp->aws_code), "%s", e.code);
    snprintf(err, err_size, "%s %s: HTTP %ld%s%s%s%s", req->method, what,
             status, e.code[0] ? " " : "", e.code, e.message[0] ? ": " : "",
             e.message);
    append_remedy(err, err_size, status, e.code, attempt);
    return sn_aws_error_map(status, e.code);
}

/* Writes the error line of a request stopped while taking the body. */
static int report_sink_failure(struct transfer *t, char *err,
                               size_t err_size)
{
    const struct sn_http_request *req = t->req;
    const char *what = req->resource ? req->resource : req->url;

    if (t->sink_rc == SN_ERR_LIMIT && !req->write)
        snprintf(err, err_size, "%s %s: response body over the maximum of "
                 "%zu bytes", req->method, what, t->body.max);
    else if (t->sink_rc == -ENOMEM)
        snprintf(err, err_size, "%s %s: out of memory reading the response",
                 req->method, what);
    else
        snprintf(err, err_size, "%s %s: the response body callback failed "
                 "with code %d", req->method, what, t->sink_rc);
    return t->sink_rc;
}

/* Whether a failed attempt may be repeated, given what was streamed. */
static int may_retry(struct transfer *t, CURLcode curl_code, long status,
                     int attempt)
{
    struct sn_aws_error e;

    if (attempt >= t->client->cfg.retry.max_attempts || t->sink_rc)
        return 0;
    if (t->delivered > 0 && t->req->range_first < 0)
        return 0;

    if (curl_code != CURLE_OK)
        return sn_http_should_retry(curl_code, 0, NULL);
    sn_aws_error_parse(t->headers.data, t->headers.len, t->error_body.data,
                       t->error_body.len, &e);
    return sn_http_should_retry(CURLE_OK, status, e.code);
}

static void wait_before_retry(struct sn_http_client *client, int retry)
{
    const struct sn_http_config *cfg = &client->cfg;
    sn_http_random_fn rand_fn = cfg->random ? cfg->random : xorshift32;
    void *opaque = cfg->random ? cfg->random_opaque : &client->random_state;
    long ms = sn_http_backoff_ms(&cfg->retry, retry, rand_fn, opaque);

    if (cfg->sleep)
        cfg->sleep(cfg->sleep_opaque, ms);
    else
        sleep_ms(NULL, ms);
}

int sn_http_send(struct sn_http_client *client,
                 const struct sn_http_request *req,
                 struct sn_http_response *resp, char *err, size_t err_size)
{
    struct transfer t = {.client = client, .req = req};
    struct curl_slist *headers = NULL;
    CURLcode curl_code = CURLE_OK;
    long status = 0;
    int attempt = 0, rc;

    memset(resp, 0, sizeof(*resp));
    t.body.max = req->max_body ? req->max_body : SN_HTTP_BODY_MAX;
    t.error_body.max = SN_HTTP_ERROR_BODY_MAX;
    t.headers.max = SN_HTTP_HEADERS_MAX;

    for (;;) {
        attempt++;
        rc = build_headers(&t, &headers, err, err_size);
        if (rc != 0)
            goto out;

        curl_code = perform_once(&t, headers, &status);
        curl_slist_free_all(headers);
        headers = NULL;
        if (curl_code == CURLE_OK && status_is_success(status))
            break;
        if (!may_retry(&t, curl_code, status, attempt))
            break;
        wait_before_retry(client, attempt - 1);
    }

    if (t.sink_rc) {
        rc = report_sink_failure(&t, err, err_size);
    } else if (curl_code != CURLE_OK || !status_is_success(status)) {
        rc = report_failure(&t, curl_code, status, attempt, resp, err,
                            err_size);
    } else {
        rc = 0;
    }
    fill_response(&t, resp, status, attempt);

out:
    resp->attempts = attempt;
    free(t.body.data);
    free(t.error_body.data);
    free(t.headers.data);
    return rc;
}
