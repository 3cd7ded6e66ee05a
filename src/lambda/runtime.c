#include "lambda/runtime.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

#define API_VERSION "2018-06-01"

/* The Runtime API is on loopback: a connection that takes longer than
 * this to open will not open. */
#define CONNECT_TIMEOUT_MS 5000

/* Request ids go into URL paths, so only these characters are accepted;
 * Lambda's ids are UUIDs. */
#define REQUEST_ID_CHARS "0123456789abcdefghijklmnopqrstuvwxyz" \
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_."

struct sn_runtime {
    CURL *curl;
    char base[512];           /* http://host:port/2018-06-01 */
    char curl_error[CURL_ERROR_SIZE];
};

/* A response: its headers and its body, each up to a maximum. */
struct reply {
    char *body;
    size_t body_size;
    size_t body_max;
    int body_too_large;
    char headers[SN_RUNTIME_HEADERS_MAX];
    size_t headers_size;
};

void sn_invocation_release(struct sn_invocation *inv)
{
    free(inv->event);
    memset(inv, 0, sizeof(*inv));
}

int sn_runtime_new(const char *api, struct sn_runtime **out, char *err,
                   size_t err_size)
{
    struct sn_runtime *rt;

    if (api == NULL || api[0] == '\0' || strlen(api) > 255) {
        snprintf(err, err_size, "AWS_LAMBDA_RUNTIME_API: expected host:port "
                 "of the Runtime API, got \"%.40s\"", api ? api : "");
        return SN_ERR_INPUT;
    }
    rt = calloc(1, sizeof(*rt));
    if (rt == NULL || (rt->curl = curl_easy_init()) == NULL) {
        free(rt);
        snprintf(err, err_size, "Runtime API client: out of memory");
        return -ENOMEM;
    }
    snprintf(rt->base, sizeof(rt->base), "http://%s/%s", api, API_VERSION);
    *out = rt;
    return 0;
}

void sn_runtime_free(struct sn_runtime *rt)
{
    if (rt == NULL)
        return;
    curl_easy_cleanup(rt->curl);
    free(rt);
}

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
    struct reply *r = opaque;
    size_t len = size * n;
    char *p;

    if (r->body_size + len > r->body_max) {
        r->body_too_large = 1;
        return 0;             /* aborts the transfer */
    }
    p = realloc(r->body, r->body_size + len + 1);
    if (p == NULL)
        return 0;
    memcpy(p + r->body_size, data, len);
    r->body = p;
    r->body_size += len;
    r->body[r->body_size] = '\0';
    return len;
}

/* Keeps the header lines of the last response (after redirects and
 * 100 Continue, curl starts again with a status line). */
static size_t on_header(char *data, size_t size, size_t n, void *opaque)
{
    struct reply *r = opaque;
    size_t len = size * n;

    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        r->headers_size = 0;
    if (r->headers_size + len < sizeof(r->headers)) {
        memcpy(r->headers + r->headers_size, data, len);
        r->headers_size += len;
        r->headers[r->headers_size] = '\0';
    }
    return len;
}

/* Copies the value of header name (case-insensitive, blanks trimmed)
 * into out; returns 0, or -1 when absent or longer than out_size - 1. */
static int header_value(const struct reply *r, const char *name, char *out,
                        size_t out_size)
{
    size_t name_len = strlen(name);
    const char *line = r->headers;

    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);

        if (len > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *v = line + name_len + 1;
            size_t vlen = len - name_len - 1;

            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= out_size)
                return -1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

/*
 * Sends one request to path under the base URL: a GET when body is NULL,
 * else a POST. Fills *status (0 when no response came). Returns 0, or
 * SN_ERR_BACKEND when the transfer failed, with one line in err.
 */
static int send_request(struct sn_runtime *rt, const char *path,
                        const char *body, size_t body_size,
                        struct curl_slist *headers, struct reply *r,
                        long *status, char *err, size_t err_size)
{
    char url[1024];
    CURLcode code;

    *status = 0;
    snprintf(url, sizeof(url), "%s%s", rt->base, path);
    /* Reset clears the options but keeps the open connection. */
    curl_easy_reset(rt->curl);
    curl_easy_setopt(rt->curl, CURLOPT_URL, url);
    curl_easy_setopt(rt->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(rt->curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(rt->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(rt->curl, CURLOPT_ERRORBUFFER, rt->curl_error);
    curl_easy_setopt(rt->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(rt->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(rt->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(rt->curl, CURLOPT_HEADERDATA, r);
    if (body != NULL) {
        curl_easy_setopt(rt->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(rt->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(rt->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_size);
    }
    if (headers != NULL)
        curl_easy_setopt(rt->curl, CURLOPT_HTTPHEADER, headers);

    rt->curl_error[0] = '\0';
    code = curl_easy_perform(rt->curl);
    curl_easy_getinfo(rt->curl, CURLINFO_RESPONSE_CODE, status);
    if (code != CURLE_OK && !r->body_too_large) {
        snprintf(err, err_size, "%s %s: %s", body ? "POST" : "GET", url,
                 rt->curl_error[0] ? rt->curl_error
                                   : curl_easy_strerror(code));
        return SN_ERR_BACKEND;
    }
    return 0;
}

static int64_t parse_deadline(const char *text)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0)
        return 0;
    return (int64_t)v;
}

int sn_runtime_next(struct sn_runtime *rt, struct sn_invocation *inv,
                    char *err, size_t err_size)
{
    struct reply *r = calloc(1, sizeof(*r));
    char deadline[32];
    long status;
    int rc;

    memset(inv, 0, sizeof(*inv));
    if (r == NULL) {
        snprintf(err, err_size, "Runtime API next: out of memory");
        return -ENOMEM;
    }
    r->body_max = SN_RUNTIME_EVENT_MAX;
    rc = send_request(rt, "/runtime/invocation/next", NULL, 0, NULL, r,
                      &status, err, err_size);
    if (rc < 0)
        goto out;
    if (status != 200 ||
        header_value(r, "Lambda-Runtime-Aws-Request-Id", inv->request_id,
                     sizeof(inv->request_id)) < 0 ||
        inv->request_id[0] == '\0' ||
        inv->request_id[strspn(inv->request_id, REQUEST_ID_CHARS)] != '\0') {
        snprintf(err, err_size, "GET %s/runtime/invocation/next: HTTP %ld%s",
                 rt->base, status, status == 200 ? " without a valid "
                                                   "request id" : "");
        rc = SN_ERR_BACKEND;
        goto out;
    }
    if (header_value(r, "Lambda-Runtime-Deadline-Ms", deadline,
                     sizeof(deadline)) == 0)
        inv->deadline_ms = parse_deadline(deadline);
    header_value(r, "Lambda-Runtime-Invoked-Function-Arn",
                 inv->function_arn, sizeof(inv->function_arn));
    header_value(r, "Lambda-Runtime-Trace-Id", inv->trace_id,
                 sizeof(inv->trace_id));
    if (r->body_too_large) {
        snprintf(err, err_size, "invocation %s: event larger than %d bytes",
                 inv->request_id, SN_RUNTIME_EVENT_MAX);
        rc = SN_ERR_LIMIT;
        goto out;
    }

    inv->event = r->body != NULL ? r->body : strdup("");
    inv->event_size = r->body_size;
    r->body = NULL;
    if (inv->event == NULL) {
        snprintf(err, err_size, "invocation %s: out of memory",
                 inv->request_id);
        rc = -ENOMEM;
    }

out:
    free(r->body);
    free(r);
    if (rc < 0 && rc != SN_ERR_LIMIT)
        memset(inv, 0, sizeof(*inv));
    return rc;
}

/* Turns the status of a POST into the return code of respond and error. */
static int post_result(const char *what, long status, char *err,
                       size_t err_size)
{
    if (status == 202 || status == 200)
        return 0;
    snprintf(err, err_size, "POST %s: HTTP %ld%s", what, status,
             status == 413 ? " (payload too large)" : "");
    if (status == 413)
        return SN_ERR_LIMIT;
    if (status >= 400 && status < 500)
        return SN_ERR_INPUT;
    return SN_ERR_BACKEND;
}

int sn_runtime_respond(struct sn_runtime *rt, const char *request_id,
                       const char *body, size_t size, char *err,
                       size_t err_size)
{
    struct reply *r = calloc(1, sizeof(*r));
    struct curl_slist *headers;
    char path[256];
    long status;
    int rc;

    if (r == NULL) {
        snprintf(err, err_size, "Runtime API response: out of memory");
        return -ENOMEM;
    }
    r->body_max = 64 * 1024;
    snprintf(path, sizeof(path), "/runtime/invocation/%s/response",
             request_id);
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    rc = send_request(rt, path, body, size, headers, r, &status, err,
                      err_size);
    if (rc == 0)
        rc = post_result(path, status, err, err_size);
    curl_slist_free_all(headers);
    free(r->body);
    free(r);
    return rc;
}

int sn_runtime_error(struct sn_runtime *rt, const char *request_id,
                     const char *type, const char *message, char *err,
                     size_t err_size)
{
    struct reply *r = calloc(1, sizeof(*r));
    struct curl_slist *headers = NULL;
    json_t *doc = json_pack("{s:s,s:s,s:[]}", "errorMessage", message,
                            "errorType", type, "stackTrace");
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    char path[256], type_header[160];
    long status;
    int rc = -ENOMEM;

    if (r == NULL || text == NULL) {
        snprintf(err, err_size, "Runtime API error: out of memory");
        goto out;
    }
    r->body_max = 64 * 1024;
    if (request_id != NULL)
        snprintf(path, sizeof(path), "/runtime/invocation/%s/error",
                 request_id);
    else
        snprintf(path, sizeof(path), "/runtime/init/error");
    snprintf(type_header, sizeof(type_header),
             "Lambda-Runtime-Function-Error-Type: %s", type);
    headers = curl_slist_append(headers,
                                "Content-Type: "
                                "application/vnd.aws.lambda.error+json");
    headers = curl_slist_append(headers, type_header);

    rc = send_request(rt, path, text, strlen(text), headers, r, &status, err,
                      err_size);
    if (rc == 0)
        rc = post_result(path, status, err, err_size);

out:
    curl_slist_free_all(headers);
    if (r != NULL)
        free(r->body);
    free(r);
    free(text);
    json_decref(doc);
    return rc;
}
