/*
 * The HTTP server of `sinatra serve`, on libmicrohttpd:
 *
 *   PUT  /stream/NAME          upload, body streamed to disk
 *   POST /api/uploads          multipart upload from the web page
 *   GET  /hls/...              HLS playlists, segments and posters
 *   GET  /api/videos           status of every video (JSON)
 *   GET  /api/videos/ID        status of one video (JSON)
 *   GET  /                     the web page, and its scripts
 *   GET  /vendor/hls.min.js    hls.js, from npm
 *
 * Uploads go to a temporary file in the uploads store's scratch folder and
 * are moved under stream/NAME only when complete, then uploaded() runs.
 * See docs/SERVER.md for the API.
 */
#ifndef SN_SERVER_SERVER_H
#define SN_SERVER_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "state/state.h"
#include "store/store.h"

struct sn_server_config {
    const char *host;         /* default "127.0.0.1" */
    int port;                 /* 0 picks a free port; see sn_server_port() */
    int threads;              /* HTTP threads, default 4 */
    const char *hls_root;     /* folder served under /hls/ */
    const char *web_root;     /* index.html, app.js, style.css */
    const char *hls_js;       /* hls.min.js from npm, served as
                                 /vendor/hls.min.js */
    struct sn_store *uploads;
    struct sn_state *state;
    /* Held around every call on state, because HTTP threads share it; may
     * be NULL. Never held while uploaded() runs (it takes the lock too). */
    pthread_mutex_t *state_lock;
    int64_t max_upload_bytes; /* default 8 GiB */
    /* Called on a thread of its own (the HTTP thread when none can start)
     * once an upload is in place under key ("stream/NAME"). Returns 0, or
     * a negative SN_ERR_* code with one line in err, which the client gets
     * with a 4xx or 5xx. Sets video_id (SN_VIDEO_ID_LEN + 1 bytes) for the
     * response. */
    int (*uploaded)(void *opaque, const char *key, char *video_id,
                    char *err, size_t err_size);
    void *opaque;
};

void sn_server_config_init(struct sn_server_config *c);

struct sn_server;

/* Binds and starts serving on threads of its own. Returns 0 and *out, or
 * SN_ERR_BACKEND with the cause (say, the port in use) in err. */
int sn_server_start(const struct sn_server_config *c, struct sn_server **out,
                    char *err, size_t err_size);

/* The port the server listens on. */
int sn_server_port(const struct sn_server *s);

/* Stops accepting, finishes the requests in progress, and frees s. */
void sn_server_stop(struct sn_server *s);

#endif
