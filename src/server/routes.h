/*
 * Internals shared by the server's files: the server object, the request
 * being handled, the response helpers (respond.c) and the route handlers
 * (files.c, uploads.c, api.c). Not part of the public API in server.h.
 *
 * Every handler runs on one of libmicrohttpd's pool threads and queues
 * exactly one response, or returns MHD_NO to close the connection.
 */
#ifndef SN_SERVER_ROUTES_H
#define SN_SERVER_ROUTES_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>
#include <microhttpd.h>

#include "server/http.h"
#include "server/server.h"

/* Responses kept by the cache (cache.c); each keeps its file open. */
#define SN_RESPONSE_CACHE_SLOTS 64

/* One cached 200 response and the file it was built from. */
struct sn_cached_response {
    char path[SN_HTTP_MAX_PATH + 1]; /* below the HLS folder; "" if empty */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct MHD_Response *response; /* the cache's reference, or NULL */
};

/* A direct-mapped table: a path has one slot, and a new path in a taken
 * slot replaces the response there. */
struct sn_response_cache {
    pthread_mutex_t lock;
    struct sn_cached_response slots[SN_RESPONSE_CACHE_SLOTS];
};

void sn_response_cache_init(struct sn_response_cache *c);

/* Drops every cached response; call after the daemon has stopped. */
void sn_response_cache_release(struct sn_response_cache *c);

/* Queues the cached 200 response for path on conn when it was built from
 * the file st describes, and returns 1 with MHD_queue_response()'s result
 * in *result. Returns 0 on a miss, dropping a response that is stale. */
int sn_response_cache_queue(struct sn_response_cache *c, const char *path,
                            const struct stat *st,
                            struct MHD_Connection *conn,
                            enum MHD_Result *result);

/* Keeps r (the caller's reference passes to the cache) as the 200
 * response of path, built from the file st describes, and queues it on
 * conn. Returns MHD_queue_response()'s result. */
enum MHD_Result sn_response_cache_put(struct sn_response_cache *c,
                                      const char *path,
                                      const struct stat *st,
                                      struct MHD_Connection *conn,
                                      struct MHD_Response *r);

struct sn_server {
    struct MHD_Daemon *daemon;
    struct sn_server_config config; /* strings point at the copies below */
    char *host;
    char *hls_root;
    char *web_root;
    char *hls_js;
    int hls_dir;              /* open folder fds, -1 when not configured */
    int web_dir;
    int port;
    int loopback;             /* 1 when listening on a loopback address */
    atomic_int requests;      /* requests between first call and completion */
    atomic_int stopping;      /* set by sn_server_stop(): new requests get 503 */
    pthread_mutex_t lock;     /* guards finishing */
    pthread_cond_t finished;  /* signalled when finishing drops */
    int finishing;            /* uploads being placed on threads of their own */
    struct sn_response_cache responses; /* of segments under hls_root */
};

/* The request a handler responds to. */
struct sn_request {
    struct sn_server *server;
    struct MHD_Connection *conn;
    const char *method;
    /* The percent-decoded path without the query, for messages only: it
     * is cut after SN_HTTP_QUOTE_MAX bytes (see sn_http_quote()). */
    const char *url;
    int cors;                 /* adds Access-Control-Allow-Origin: * */
};

/* Returns the value of a request header, or NULL. */
const char *sn_server_header(const struct sn_request *rq, const char *name);

/* Adds the headers every response of rq carries (CORS) to r. */
void sn_server_add_headers(const struct sn_request *rq,
                           struct MHD_Response *r);

/*
 * Adds the headers every response of rq carries, queues r with status and
 * drops the caller's reference to r. Returns what
 * MHD_queue_response() returns; r may be NULL (out of memory), which
 * closes the connection.
 */
enum MHD_Result sn_server_queue(const struct sn_request *rq,
                                unsigned int status, struct MHD_Response *r);

/* Creates a response whose body is the compact JSON text of body (which
 * it takes), with Content-Type application/json and Cache-Control
 * no-store. Returns NULL when out of memory. */
struct MHD_Response *sn_server_json_response(json_t *body);

/* Creates {"error": "<message>"} as sn_server_json_response() does. */
struct MHD_Response *sn_server_error_response(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Creates and queues an error response with status (4xx or 5xx). */
enum MHD_Result sn_server_fail(const struct sn_request *rq,
                               unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Route handlers. path is the part of the URL after the route's prefix.
 * The upload handlers may keep per-request state in *state, which the
 * server hands back to sn_server_upload_continue() for each part of the
 * body and to sn_server_upload_end() when the request completes.
 */
enum MHD_Result sn_server_serve_hls(const struct sn_request *rq,
                                    const char *path, void **state);
enum MHD_Result sn_server_serve_web(const struct sn_request *rq,
                                    const char *path, void **state);
enum MHD_Result sn_server_serve_hls_js(const struct sn_request *rq,
                                       const char *path, void **state);
enum MHD_Result sn_server_list_videos(const struct sn_request *rq,
                                      const char *path, void **state);
enum MHD_Result sn_server_get_video(const struct sn_request *rq,
                                    const char *path, void **state);
enum MHD_Result sn_server_begin_put(const struct sn_request *rq,
                                    const char *path, void **state);
enum MHD_Result sn_server_begin_form(const struct sn_request *rq,
                                     const char *path, void **state);

/* Returns 1 when path (after "/", "" for the page) names a file that
 * sn_server_serve_web() would serve, else 0. */
int sn_server_web_file_found(const struct sn_server *s, const char *path);

/* Takes the next part of an upload's body (*size bytes at data), or
 * responds to the request when *size is 0 (the body is complete). */
enum MHD_Result sn_server_upload_continue(const struct sn_request *rq,
                                          void *state, const char *data,
                                          size_t *size);

/* Releases an upload's state; an upload that was not moved under stream/
 * leaves nothing behind. toe is libmicrohttpd's termination code. */
void sn_server_upload_end(void *state, enum MHD_RequestTerminationCode toe);

/* Waits until no upload is being placed, so that no connection is left
 * suspended when the daemon stops. */
void sn_server_wait_uploads(struct sn_server *s);

#endif
