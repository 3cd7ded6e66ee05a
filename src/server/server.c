/*
 * The server's life cycle and its routing: binds the listening socket,
 * starts libmicrohttpd with a pool of threads, sends each request to the
 * handler of its route, and stops after the requests in progress finish.
 */
#include "server/routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"
#include "util/error.h"
#include "util/log.h"

/* Maximum number of open connections, over all threads. Each has a
 * memory pool of libmicrohttpd's default size (32 KiB). */
#define CONNECTION_LIMIT 1024

/* Maximum number of open connections from one client address. It keeps
 * one remote client from taking all CONNECTION_LIMIT connections, and
 * leaves room for a browser (6 per host), wrk with 50 connections, and
 * the tests. Every client of a server on 127.0.0.1 shares one address, so
 * there it bounds all local clients together. */
#define PER_IP_CONNECTION_LIMIT 128

/*
 * Seconds a connection may stay idle, including between two parts of an
 * upload, before it is closed.
 *
 * NOTE: libmicrohttpd 0.9.75 has no deadline for the whole request
 * header: each byte received restarts this timeout, so a client sending
 * one header byte every 29 s holds its connection open for as long as it
 * likes. PER_IP_CONNECTION_LIMIT bounds how many such connections one
 * address can hold.
 */
#define CONNECTION_TIMEOUT_S 30

/* How long sn_server_stop() waits for requests in progress. */
#define STOP_GRACE_MS 10000

#define LISTEN_BACKLOG 512

typedef enum MHD_Result (*route_handler)(const struct sn_request *rq,
                                         const char *path, void **state);

struct route {
    const char *path;
    enum { EXACT, PREFIX, TOP_LEVEL } match;
    const char *allow;        /* methods, for Allow and 405 */
    int cors;
    int upload;               /* the handler reads the body */
    route_handler handler;
};

/* TOP_LEVEL matches "/" and any "/NAME" without a further '/': the page
 * and its files. Routes are tried in order. */
static const struct route routes[] = {
    {"/hls/", PREFIX, "GET, HEAD, OPTIONS", 1, 0, sn_server_serve_hls},
    {"/api/videos", EXACT, "GET, HEAD, OPTIONS", 1, 0,
     sn_server_list_videos},
    {"/api/videos/", PREFIX, "GET, HEAD, OPTIONS", 1, 0,
     sn_server_get_video},
    {"/api/uploads", EXACT, "POST, OPTIONS", 0, 1, sn_server_begin_form},
    {"/stream/", PREFIX, "PUT, OPTIONS", 0, 1, sn_server_begin_put},
    {"/vendor/hls.min.js", EXACT, "GET, HEAD, OPTIONS", 0, 0,
     sn_server_serve_hls_js},
    {"/", TOP_LEVEL, "GET, HEAD, OPTIONS", 0, 0, sn_server_serve_web},
};

/* The state of every request that is not an upload in progress. */
static char no_state;

void sn_server_config_init(struct sn_server_config *c)
{
    memset(c, 0, sizeof(*c));
    c->host = "127.0.0.1";
    c->threads = 4;
    c->max_upload_bytes = (int64_t)8 << 30;
}

static const struct route *find_route(const char *url, const char **rest)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);

        if (r->match == EXACT && strcmp(url, r->path) == 0) {
            *rest = url + n;
            return r;
        }
        if (r->match == PREFIX && strncmp(url, r->path, n) == 0) {
            *rest = url + n;
            return r;
        }
        if (r->match == TOP_LEVEL && url[0] == '/' &&
            strchr(url + 1, '/') == NULL) {
            *rest = url + 1;
            return r;
        }
    }
    return NULL;
}

/* Returns 1 when method is one of the comma-separated names in allow. */
static int method_allowed(const char *allow, const char *method)
{
    size_t n = strlen(method);

    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n) {
        int starts = p == allow || p[-1] == ' ';
        int ends = p[n] == ',' || p[n] == '\0';

        if (starts && ends)
            return 1;
    }
    return 0;
}

/*
 * Responds to a CORS preflight (or a plain OPTIONS) with 204 and the
 * methods of the route. Only the read-only routes admit other origins.
 * Under a prefix the file is not looked up, because a player may send
 * the preflight before a playlist exists. A name in the web folder's
 * place must exist, else every path would get 204.
 */
static enum MHD_Result respond_options(const struct sn_request *rq,
                                       const struct route *route,
                                       const char *rest)
{
    struct MHD_Response *r;

    if (route->match == TOP_LEVEL &&
        !sn_server_web_file_found(rq->server, rest))
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND, "%s not found",
                              rq->url);

    r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Allow", route->allow);
    if (route->cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods",
                                route->allow);
        MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                "Range, If-None-Match, If-Modified-Since");
        MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    }
    return sn_server_queue(rq, MHD_HTTP_NO_CONTENT, r);
}

static enum MHD_Result reject_method(const struct sn_request *rq,
                                     const struct route *route)
{
    struct MHD_Response *r = sn_server_error_response(
        "method %s is not allowed on %s; allowed: %s", rq->method, rq->url,
        route->allow);

    if (r != NULL)
        MHD_add_response_header(r, "Allow", route->allow);
    return sn_server_queue(rq, MHD_HTTP_METHOD_NOT_ALLOWED, r);
}

/* Returns 1 when the request announces a body. */
static int has_body(struct MHD_Connection *conn)
{
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     "Content-Length");

    return (length != NULL && strcmp(length, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       "Transfer-Encoding") != NULL;
}

/* Finds a second Content-Length whose value differs from the first. */
struct length_scan {
    const char *first;
    int conflict;
};

static enum MHD_Result scan_length(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    struct length_scan *scan = cls;

    (void)kind;
    if (strcasecmp(key, "Content-Length") != 0 || value == NULL)
        return MHD_YES;
    if (scan->first == NULL)
        scan->first = value;
    else if (!sn_http_lengths_agree(scan->first, value))
        scan->conflict = 1;
    return MHD_YES;
}

/*
 * Rejects a request whose body length is ambiguous (RFC 9112 §6.3): two
 * Content-Length fields that differ, or Content-Length together with
 * Transfer-Encoding. A proxy in front might read the other length, and
 * the bytes after the body would then be a request it never checked.
 * Returns 1 with the response queued in *result, else 0.
 */
static int reject_framing(const struct sn_request *rq,
                          enum MHD_Result *result)
{
    struct length_scan scan = {NULL, 0};

    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, scan_length,
                              &scan);
    if (scan.conflict) {
        *result = sn_server_fail(rq, MHD_HTTP_BAD_REQUEST,
                                 "request rejected: it has several "
                                 "Content-Length headers with different "
                                 "values");
        return 1;
    }
    if (scan.first != NULL && sn_server_header(rq, "Transfer-Encoding")) {
        *result = sn_server_fail(rq, MHD_HTTP_BAD_REQUEST,
                                 "request rejected: it has both "
                                 "Content-Length and Transfer-Encoding");
        return 1;
    }
    return 0;
}

/*
 * Rejects an HTTP/1.1 request without Host (RFC 9112 §3.2) and, on a
 * loopback server, a request for any host other than a loopback name or
 * the configured host. A web page on a name that its owner points at
 * 127.0.0.1 (DNS rebinding) is the same origin as the server in the
 * browser's eyes, so only the Host header shows it.
 * Returns 1 with the response queued in *result, else 0.
 */
static int reject_host(const struct sn_request *rq, const char *version,
                       enum MHD_Result *result)
{
    const char *host = sn_server_header(rq, "Host");
    char quoted[SN_HTTP_QUOTE_MAX + 4];

    if (host == NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0) {
        *result = sn_server_fail(rq, MHD_HTTP_BAD_REQUEST,
                                 "HTTP/1.1 request without a Host header");
        return 1;
    }
    if (host == NULL || !rq->server->loopback ||
        sn_http_host_allowed(host, rq->server->host))
        return 0;

    *result = sn_server_fail(
        rq, MHD_HTTP_MISDIRECTED_REQUEST,
        "request for host \"%s\" rejected: this server listens on a "
        "loopback address and serves only loopback hosts (127.x.x.x, "
        "localhost, [::1]) and %s",
        sn_http_quote(host, quoted), rq->server->host);
    return 1;
}

static enum MHD_Result dispatch(const struct sn_request *rq,
                                const struct route *route, const char *rest,
                                void **state)
{
    if (route == NULL)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND, "%s not found",
                              rq->url);
    if (strcmp(rq->method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return respond_options(rq, route, rest);
    if (!method_allowed(route->allow, rq->method))
        return reject_method(rq, route);
    return route->handler(rq, rest, state);
}

/*
 * libmicrohttpd calls this once the headers are in, once per part of the
 * body, and once more when the request is complete. It closes the
 * connection after a response queued before the request is complete.
 * So requests without a body get their response on the last call, which
 * keeps the connection alive. Uploads get one on the first call only when
 * they are rejected before their body is read.
 */
static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version, const char *data,
                                      size_t *size, void **state)
{
    struct sn_server *s = cls;
    char quoted_url[SN_HTTP_QUOTE_MAX + 4];
    struct sn_request rq = {s, conn, method, NULL, 0};
    const struct route *route;
    const char *rest = NULL;
    enum MHD_Result result;
    int upload;

    rq.url = sn_http_quote(url, quoted_url);
    route = find_route(url, &rest);
    rq.cors = route != NULL && route->cors;
    upload = route != NULL && route->upload &&
             method_allowed(route->allow, method) &&
             strcmp(method, MHD_HTTP_METHOD_OPTIONS) != 0;

    if (*state == NULL) {
        atomic_fetch_add(&s->requests, 1);
        *state = &no_state;
        if (atomic_load(&s->stopping))
            return sn_server_fail(&rq, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "the server is stopping");
        if (reject_host(&rq, version, &result) ||
            reject_framing(&rq, &result))
            return result;
        if (upload || has_body(conn))
            return dispatch(&rq, route, rest, state);
        return MHD_YES;
    }
    if (*state != &no_state)
        return sn_server_upload_continue(&rq, *state, data, size);
    if (*size != 0)
        return MHD_NO;
    return dispatch(&rq, route, rest, state);
}

static void request_completed(void *cls, struct MHD_Connection *conn,
                              void **state,
                              enum MHD_RequestTerminationCode toe)
{
    struct sn_server *s = cls;

    (void)conn;
    if (*state == NULL)
        return;
    if (*state != &no_state)
        sn_server_upload_end(*state, toe);
    *state = NULL;
    atomic_fetch_sub(&s->requests, 1);
}

static size_t unescape_url(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return sn_http_unescape(s);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    sn_log(SN_LOG_WARN, NULL, NULL, "http: %s", line);
}

/* Returns 1 for an address in 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104. */
static int address_is_loopback(const struct sockaddr_storage *a)
{
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;

    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >>
                24) == 127;
    return IN6_IS_ADDR_LOOPBACK(v6) ||
           (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
}

/* Creates, binds and listens on a socket for host:port, and sets
 * s->port to the port bound. Returns the socket or -1 with err set. */
static int listen_on(struct sn_server *s, const char *host, int port,
                     int *ipv6, char *err, size_t err_size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    char service[16];
    int fd = -1, one = 1, rc;

    snprintf(service, sizeof(service), "%d", port);
    rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, err_size, "resolve server host %s: %s", host,
                 gai_strerror(rc));
        goto fail;
    }

    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
        snprintf(err, err_size, "listen on %s port %d: %s", host, port,
                 strerror(errno));
        goto fail;
    }

    *ipv6 = bound.ss_family == AF_INET6;
    s->loopback = address_is_loopback(&bound);
    s->port = ntohs(*ipv6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                          : ((struct sockaddr_in *)&bound)->sin_port);
    freeaddrinfo(ai);
    return fd;

fail:
    if (fd >= 0)
        close(fd);
    if (ai != NULL)
        freeaddrinfo(ai);
    return -1;
}

/* Opens a served folder once, so requests resolve paths below it with
 * openat() and can never climb out of it. */
static int open_folder(const char *path, const char *what, int *out,
                       char *err, size_t err_size)
{
    *out = -1;
    if (path == NULL)
        return 0;

    *out = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*out < 0) {
        snprintf(err, err_size, "open %s folder %s: %s", what, path,
                 strerror(errno));
        return SN_ERR_BACKEND;
    }
    return 0;
}

static void server_free(struct sn_server *s)
{
    if (s == NULL)
        return;
    if (s->hls_dir >= 0)
        close(s->hls_dir);
    if (s->web_dir >= 0)
        close(s->web_dir);
    free(s->host);
    free(s->hls_root);
    free(s->web_root);
    free(s->hls_js);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->finished);
    sn_response_cache_release(&s->responses);
    free(s);
}

/* Copies the configuration, strings included, so the caller's may go. */
static int copy_config(struct sn_server *s, const struct sn_server_config *c)
{
    s->config = *c;
    s->host = strdup(c->host ? c->host : "127.0.0.1");
    s->hls_root = c->hls_root ? strdup(c->hls_root) : NULL;
    s->web_root = c->web_root ? strdup(c->web_root) : NULL;
    s->hls_js = c->hls_js ? strdup(c->hls_js) : NULL;
    if (s->host == NULL || (c->hls_root && !s->hls_root) ||
        (c->web_root && !s->web_root) || (c->hls_js && !s->hls_js))
        return -ENOMEM;

    s->config.host = s->host;
    s->config.hls_root = s->hls_root;
    s->config.web_root = s->web_root;
    s->config.hls_js = s->hls_js;
    if (s->config.threads < 1)
        s->config.threads = 1;
    return 0;
}

static struct MHD_Daemon *start_daemon(struct sn_server *s, int listen_fd,
                                       int ipv6)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
                         MHD_ALLOW_SUSPEND_RESUME;

    if (ipv6)
        flags |= MHD_USE_IPv6;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, handle_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
        MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->config.threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)PER_IP_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
        MHD_OPTION_END);
}

int sn_server_start(const struct sn_server_config *c, struct sn_server **out,
                    char *err, size_t err_size)
{
    struct sn_server *s = calloc(1, sizeof(*s));
    int listen_fd = -1, ipv6 = 0;

    if (s == NULL) {
        snprintf(err, err_size, "start server: out of memory");
        return SN_ERR_BACKEND;
    }
    s->hls_dir = -1;
    s->web_dir = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->finished, NULL);
    sn_response_cache_init(&s->responses);
    if (copy_config(s, c) < 0) {
        snprintf(err, err_size, "start server: out of memory");
        goto fail;
    }
    if (open_folder(s->hls_root, "HLS", &s->hls_dir, err, err_size) < 0 ||
        open_folder(s->web_root, "web page", &s->web_dir, err,
                    err_size) < 0)
        goto fail;

    listen_fd = listen_on(s, s->host, c->port, &ipv6, err, err_size);
    if (listen_fd < 0)
        goto fail;

    s->daemon = start_daemon(s, listen_fd, ipv6);
    if (s->daemon == NULL) {
        snprintf(err, err_size,
                 "start HTTP server on %s port %d: libmicrohttpd failed "
                 "(see the log above)", s->host, s->port);
        goto fail;
    }

    /* An IPv6 address goes in brackets, as in a URL: [::1]:8080. */
    sn_log(SN_LOG_INFO, NULL, NULL, "http: listening on %s%s%s:%d, %d threads",
           strchr(s->host, ':') && s->host[0] != '[' ? "[" : "", s->host,
           strchr(s->host, ':') && s->host[0] != '[' ? "]" : "", s->port,
           s->config.threads);
    *out = s;
    return 0;

fail:
    /* A failed MHD_start_daemon() may have closed the socket already. */
    if (listen_fd >= 0 && fcntl(listen_fd, F_GETFD) >= 0)
        close(listen_fd);
    server_free(s);
    return SN_ERR_BACKEND;
}

int sn_server_port(const struct sn_server *s)
{
    return s->port;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

void sn_server_stop(struct sn_server *s)
{
    int waited = 0;

    if (s == NULL)
        return;

    /* Answer new requests with 503, then let the requests in progress
     * finish, up to STOP_GRACE_MS; MHD_stop_daemon() cuts whatever is
     * left, and an upload cut there leaves nothing behind.
     * MHD_quiesce_daemon() would stop accepting instead, but with epoll
     * and a thread pool libmicrohttpd 0.9.75 sometimes aborts the process
     * in it ("Failed to remove listen FD from epoll set"). */
    atomic_store(&s->stopping, 1);
    while (atomic_load(&s->requests) > 0 && waited < STOP_GRACE_MS) {
        sleep_ms(20);
        waited += 20;
    }
    if (atomic_load(&s->requests) > 0)
        sn_log(SN_LOG_WARN, NULL, NULL,
               "http: stopping with %d requests still in progress",
               atomic_load(&s->requests));

    /* The connection of an upload being placed stays suspended until
     * uploaded() returns, and libmicrohttpd must not stop with a
     * suspended connection. */
    sn_server_wait_uploads(s);
    MHD_stop_daemon(s->daemon);
    sn_log(SN_LOG_INFO, NULL, NULL, "http: stopped");
    server_free(s);
}
