#include "aws/signer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "util/error.h"

/* Most headers one request may carry into the signature. */
#define MAX_SIGNED_HEADERS 32

/* The parts of an absolute URL that SigV4 signs. */
struct url_parts {
    char host[256];           /* "127.0.0.1:5000" or "sqs.us-east-1.amazonaws.com" */
    char *path;               /* "/bucket/key", malloc'd */
    char *query;              /* without '?', malloc'd, "" for none */
};

static int split_url(const char *url, struct url_parts *u, char *err,
                     size_t err_size)
{
    const char *authority = strstr(url, "://");
    const char *path, *query;
    size_t host_len;

    memset(u, 0, sizeof(*u));
    if (authority == NULL) {
        snprintf(err, err_size, "cannot sign %.200s: not an absolute URL",
                 url);
        return SN_ERR_INPUT;
    }
    authority += 3;
    path = authority + strcspn(authority, "/?");
    host_len = (size_t)(path - authority);
    if (host_len == 0 || host_len >= sizeof(u->host)) {
        snprintf(err, err_size, "cannot sign %.200s: invalid host", url);
        return SN_ERR_INPUT;
    }
    memcpy(u->host, authority, host_len);
    u->host[host_len] = '\0';

    query = strchr(path, '?');
    u->path = query != NULL ? strndup(path, (size_t)(query - path))
                            : strdup(path);
    u->query = strdup(query != NULL ? query + 1 : "");
    if (u->path == NULL || u->query == NULL) {
        free(u->path);
        free(u->query);
        snprintf(err, err_size, "cannot sign %.200s: out of memory", url);
        return -ENOMEM;
    }
    return 0;
}

/*
 * Splits the "Name: value" lines of list into headers, names and values
 * copied into store. Returns the count, or -1 when there are too many.
 */
static int collect_headers(const struct curl_slist *list,
                           struct sn_sigv4_header *headers, int max,
                           char **store)
{
    int n = 0;

    for (; list != NULL; list = list->next) {
        char *line, *colon, *value;

        if (n == max)
            return -1;
        line = strdup(list->data);
        if (line == NULL)
            return -1;
        store[n] = line;
        colon = strchr(line, ':');
        if (colon == NULL) {
            free(line);
            store[n] = NULL;
            continue;
        }
        *colon = '\0';
        value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        headers[n].name = line;
        headers[n].value = value;
        n++;
    }
    return n;
}

static int append_header(struct curl_slist **list, const char *name,
                         const char *value)
{
    size_t size = strlen(name) + strlen(value) + 3;
    char *line = malloc(size);
    struct curl_slist *next;

    if (line == NULL)
        return -ENOMEM;
    snprintf(line, size, "%s: %s", name, value);
    next = curl_slist_append(*list, line);
    free(line);
    if (next == NULL)
        return -ENOMEM;
    *list = next;
    return 0;
}

int sn_aws_sign(void *opaque, const char *method, const char *url,
                struct curl_slist **headers, const void *body,
                size_t body_size, char *err, size_t err_size)
{
    const struct sn_aws_signer *signer = opaque;
    struct sn_sigv4_header signed_headers[MAX_SIGNED_HEADERS + 1];
    char *copies[MAX_SIGNED_HEADERS] = {0};
    struct sn_aws_credentials creds;
    struct sn_sigv4_result result = {0};
    struct url_parts u;
    int s3 = strcmp(signer->service, "s3") == 0;
    int n, rc;

    rc = sn_aws_credentials_get(signer->provider, &creds, err, err_size);
    if (rc < 0)
        return rc;
    rc = split_url(url, &u, err, err_size);
    if (rc < 0)
        return rc;

    n = collect_headers(*headers, signed_headers, MAX_SIGNED_HEADERS,
                        copies);
    if (n < 0) {
        snprintf(err, err_size, "cannot sign %.200s: more than %d headers",
                 url, MAX_SIGNED_HEADERS);
        rc = SN_ERR_LIMIT;
        goto out;
    }
    signed_headers[n++] = (struct sn_sigv4_header){"host", u.host};

    {
        struct sn_sigv4_credentials keys = {
            creds.access_key_id, creds.secret_access_key,
            creds.session_token[0] != '\0' ? creds.session_token : NULL,
        };
        struct sn_sigv4_request req = {
            .method = method,
            .path = u.path,
            .query = u.query,
            .headers = signed_headers,
            .n_headers = (size_t)n,
            .payload = body,
            .payload_size = body_size,
        };
        struct sn_sigv4_options opts = {
            .region = signer->region,
            .service = signer->service,
            .time = (int64_t)time(NULL),
            .double_uri_encode = !s3,
            .normalize_path = !s3,
            .add_content_sha256_header = s3,
        };

        rc = sn_sigv4_sign(&keys, &req, &opts, &result, err, err_size);
    }
    for (size_t i = 0; rc == 0 && i < result.n_headers; i++)
        rc = append_header(headers, result.headers[i].name,
                           result.headers[i].value);
    if (rc == -ENOMEM)
        snprintf(err, err_size, "cannot sign %.200s: out of memory", url);

out:
    sn_sigv4_result_release(&result);
    for (int i = 0; i < MAX_SIGNED_HEADERS; i++)
        free(copies[i]);
    free(u.path);
    free(u.query);
    memset(&creds, 0, sizeof(creds));
    return rc;
}
