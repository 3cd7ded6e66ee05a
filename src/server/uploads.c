/*
 * Uploads: PUT /stream/NAME with the file as the body, and POST
 * /api/uploads with multipart/form-data from the web page (field "file").
 *
 * The body streams into a file in a scratch folder of the uploads store.
 * Only a complete upload is flushed and moved under stream/NAME, and only
 * then does the server's uploaded() callback run. Every other ending (a
 * rejection, a client gone mid-body, a timeout, the server stopping)
 * removes the scratch folder when libmicrohttpd completes the request, so
 * nothing is left behind and nothing appears under stream/. A process
 * that crashes mid-upload leaves its scratch folder in the store's .tmp.
 *
 * libmicrohttpd cannot send a response while the body is still arriving,
 * so a rejection made mid-body (over the limit, a bad part, a failed
 * write) reads and drops the rest before responding. A body without
 * Content-Length (chunked) is dropped for at most DISCARD_MAX_BYTES, and
 * past that the connection is closed without a response.
 */
#include "server/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/pipeline.h"
#include "server/http.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"

/* Room a multipart body may take beyond the file itself (boundaries,
 * part headers, other fields) when its Content-Length is checked against
 * max_upload_bytes before reading. */
#define FORM_OVERHEAD_BYTES (64 * 1024)

/* Buffer of libmicrohttpd's multipart parser. */
#define FORM_BUFFER_BYTES (64 * 1024)

/* Body bytes of a rejected chunked upload read and dropped before the
 * connection is closed without a response. */
#define DISCARD_MAX_BYTES (1 << 20)

struct upload {
    struct sn_server *server;
    struct sn_request request; /* copy for the thread that places the file */
    struct MHD_PostProcessor *form; /* NULL for PUT */
    char name[SN_UPLOAD_MAX_NAME + 1];
    char key[sizeof(SN_UPLOAD_PREFIX) + SN_UPLOAD_MAX_NAME];
    char id[SN_VIDEO_ID_LEN + 1];
    char scratch[PATH_MAX];   /* "" until created */
    char path[PATH_MAX + 16];
    int fd;
    int has_length;           /* the request carries Content-Length */
    int has_file;             /* form: the file part has begun */
    int placed;               /* moved under key */
    int completing;           /* complete() has started */
    int64_t bytes;            /* file bytes written */
    int64_t discarded;        /* body bytes dropped after a rejection */
    unsigned int status;      /* 0, or the status to reject with */
    char err[SN_ERR_SIZE];
};

static struct upload *upload_new(const struct sn_request *rq)
{
    struct upload *up = calloc(1, sizeof(*up));

    if (up == NULL)
        return NULL;
    up->server = rq->server;
    up->fd = -1;
    up->has_length = sn_server_header(rq, "Content-Length") != NULL;
    return up;
}

/* Removes the scratch folder and whatever is in it. */
static void drop_file(struct upload *up)
{
    if (up->fd >= 0)
        close(up->fd);
    up->fd = -1;
    if (up->scratch[0] != '\0')
        sn_remove_tree(up->scratch);
    up->scratch[0] = '\0';
}

/* Records the rejection to send once the body is in, and drops the file
 * at once. The first rejection wins. */
static void reject(struct upload *up, unsigned int status, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

static void reject(struct upload *up, unsigned int status, const char *fmt,
                   ...)
{
    va_list ap;

    if (up->status != 0)
        return;
    up->status = status;
    va_start(ap, fmt);
    vsnprintf(up->err, sizeof(up->err), fmt, ap);
    va_end(ap);
    drop_file(up);
}

/* Checks name and sets the upload's name, key and video id. */
static int set_name(struct upload *up, const char *name)
{
    char quoted[SN_HTTP_QUOTE_MAX + 4];

    if (!sn_upload_name_valid(name)) {
        reject(up, MHD_HTTP_BAD_REQUEST,
               "invalid upload name \"%s\"%s: a name is 1 to %d bytes of "
               "UTF-8 without '/', '\\' or control characters and does "
               "not start with '.'",
               sn_http_quote(name, quoted),
               strchr(name, SN_HTTP_NUL_STAND_IN) != NULL
                   ? " (the server decodes %00, a NUL byte, to U+0001)"
                   : "",
               SN_UPLOAD_MAX_NAME);
        return -1;
    }
    snprintf(up->name, sizeof(up->name), "%s", name);
    snprintf(up->key, sizeof(up->key), "%s%s", SN_UPLOAD_PREFIX, name);
    if (sn_video_id(up->key, up->id) < 0) {
        reject(up, MHD_HTTP_INTERNAL_SERVER_ERROR,
               "upload %s: out of memory", up->key);
        return -1;
    }
    return 0;
}

/* Creates the scratch folder and the file the body goes to. */
static int open_file(struct upload *up)
{
    struct sn_store *store = up->server->config.uploads;
    char err[SN_ERR_SIZE] = "";

    if (store->ops->scratch(store, up->scratch, sizeof(up->scratch), err,
                            sizeof(err)) < 0) {
        up->scratch[0] = '\0';
        reject(up, MHD_HTTP_INTERNAL_SERVER_ERROR,
               "store upload %s: %s", up->key, err);
        return -1;
    }

    snprintf(up->path, sizeof(up->path), "%s/upload", up->scratch);
    up->fd = open(up->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (up->fd < 0) {
        reject(up, MHD_HTTP_INTERNAL_SERVER_ERROR, "create %s: %s",
               up->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Appends n bytes of the file, or drops them after a rejection. */
static void write_bytes(struct upload *up, const char *data, size_t n)
{
    int64_t max = up->server->config.max_upload_bytes;

    if (up->status != 0) {
        up->discarded += (int64_t)n;
        return;
    }
    if ((int64_t)n > max - up->bytes) {
        reject(up, MHD_HTTP_CONTENT_TOO_LARGE,
               "upload %s is over the limit of %" PRId64
               " bytes (max_upload_bytes)",
               up->key, max);
        up->discarded += (int64_t)n;
        return;
    }

    for (size_t done = 0; done < n;) {
        ssize_t wrote = write(up->fd, data + done, n - done);

        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote < 0) {
            reject(up, MHD_HTTP_INTERNAL_SERVER_ERROR, "write %s: %s",
                   up->path, strerror(errno));
            up->discarded += (int64_t)(n - done);
            return;
        }
        done += (size_t)wrote;
    }
    up->bytes += (int64_t)n;
}

/*
 * Checks what can be checked before the body is read: the Origin (a web
 * page of another site must not upload through the visitor's browser) and
 * the Content-Length against max_upload_bytes plus allowance.
 */
static int check_headers(const struct sn_request *rq, struct upload *up,
                         int64_t allowance)
{
    const char *origin = sn_server_header(rq, "Origin");
    const char *length = sn_server_header(rq, "Content-Length");
    int64_t max = rq->server->config.max_upload_bytes;
    int64_t bytes;

    if (!sn_http_same_origin(origin, sn_server_header(rq, "Host"))) {
        reject(up, MHD_HTTP_FORBIDDEN,
               "upload from origin %s rejected: only the server's own page "
               "may upload",
               origin);
        return -1;
    }
    if (length == NULL)
        return 0;
    if (sn_http_parse_length(length, &bytes) < 0) {
        reject(up, MHD_HTTP_BAD_REQUEST, "invalid Content-Length \"%s\"",
               length);
        return -1;
    }
    if (bytes == 0) {
        reject(up, MHD_HTTP_BAD_REQUEST, "upload %s has an empty body",
               up->key[0] ? up->key : "to /api/uploads");
        return -1;
    }
    if (bytes > max + allowance) {
        reject(up, MHD_HTTP_CONTENT_TOO_LARGE,
               "upload %s of %" PRId64 " bytes is over the limit of %" PRId64
               " bytes (max_upload_bytes)",
               up->key[0] ? up->key : "to /api/uploads", bytes, max);
        return -1;
    }
    return 0;
}

static void log_rejection(const struct upload *up)
{
    sn_log(SN_LOG_WARN, up->id[0] ? up->id : NULL, NULL,
           "http: upload rejected with %u: %s", up->status, up->err);
}

/* Responds to a rejected upload with its status and error. */
static enum MHD_Result respond_rejected(const struct sn_request *rq,
                                        struct upload *up)
{
    log_rejection(up);
    return sn_server_fail(rq, up->status, "%s", up->err);
}

/* Responds on the first call, before any of the body is read. The upload
 * is freed here because no state was handed to the server. */
static enum MHD_Result reject_now(const struct sn_request *rq,
                                  struct upload *up)
{
    enum MHD_Result result = respond_rejected(rq, up);

    drop_file(up);
    free(up);
    return result;
}

enum MHD_Result sn_server_begin_put(const struct sn_request *rq,
                                    const char *name, void **state)
{
    struct upload *up;

    if (rq->server->config.uploads == NULL)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "uploads are not accepted: no uploads store "
                              "is configured");

    up = upload_new(rq);
    if (up == NULL)
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "upload: out of memory");
    if (set_name(up, name) < 0 || check_headers(rq, up, 0) < 0 ||
        open_file(up) < 0)
        return reject_now(rq, up);

    *state = up;
    return MHD_YES;
}

/* Takes each piece of the multipart body; only the "file" field is kept,
 * other fields are ignored. */
static enum MHD_Result take_form_field(void *cls, enum MHD_ValueKind kind,
                                       const char *key, const char *filename,
                                       const char *content_type,
                                       const char *transfer_encoding,
                                       const char *data, uint64_t off,
                                       size_t size)
{
    struct upload *up = cls;

    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    if (up->status != 0)
        return MHD_NO;
    if (key == NULL || strcmp(key, "file") != 0)
        return MHD_YES;

    if (up->has_file && off == 0 && up->bytes > 0) {
        reject(up, MHD_HTTP_BAD_REQUEST,
               "multipart upload has more than one \"file\" field");
        return MHD_NO;
    }
    if (!up->has_file) {
        up->has_file = 1;
        if (filename == NULL) {
            reject(up, MHD_HTTP_BAD_REQUEST,
                   "multipart field \"file\" has no filename");
            return MHD_NO;
        }
        if (set_name(up, filename) < 0 || open_file(up) < 0)
            return MHD_NO;
    }

    write_bytes(up, data, size);
    return up->status == 0 ? MHD_YES : MHD_NO;
}

enum MHD_Result sn_server_begin_form(const struct sn_request *rq,
                                     const char *path, void **state)
{
    const char *type = sn_server_header(rq, "Content-Type");
    struct upload *up;

    (void)path;
    if (rq->server->config.uploads == NULL)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "uploads are not accepted: no uploads store "
                              "is configured");

    up = upload_new(rq);
    if (up == NULL)
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "upload: out of memory");
    if (check_headers(rq, up, FORM_OVERHEAD_BYTES) < 0)
        return reject_now(rq, up);

    if (type == NULL || strncasecmp(type, "multipart/form-data", 19) != 0) {
        reject(up, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
               "upload to /api/uploads: expected Content-Type "
               "multipart/form-data, got %s",
               type ? type : "none");
        return reject_now(rq, up);
    }

    up->form = MHD_create_post_processor(rq->conn, FORM_BUFFER_BYTES,
                                         take_form_field, up);
    if (up->form == NULL) {
        reject(up, MHD_HTTP_BAD_REQUEST,
               "upload to /api/uploads: invalid multipart Content-Type %s",
               type);
        return reject_now(rq, up);
    }

    *state = up;
    return MHD_YES;
}

/* Takes one part of the body. Returns MHD_NO (close the connection) once
 * a rejected chunked body has gone on for too long. */
static enum MHD_Result take_body(struct upload *up, const char *data,
                                 size_t size)
{
    if (up->form != NULL && up->status == 0 &&
        MHD_post_process(up->form, data, size) != MHD_YES)
        reject(up, MHD_HTTP_BAD_REQUEST,
               "upload to /api/uploads: malformed multipart body");
    else if (up->form == NULL || up->status != 0)
        write_bytes(up, data, size);

    if (up->status != 0 && !up->has_length &&
        up->discarded > DISCARD_MAX_BYTES) {
        log_rejection(up);
        return MHD_NO;
    }
    return MHD_YES;
}

/* Flushes the file and moves it under stream/NAME. Sets *replaced when
 * an earlier upload of the same name was there. */
static int place_file(struct upload *up, int *replaced)
{
    struct sn_store *store = up->server->config.uploads;
    struct sn_object_info info;
    char err[SN_ERR_SIZE] = "";

    if (fsync(up->fd) < 0 || close(up->fd) < 0) {
        up->fd = -1;
        reject(up, MHD_HTTP_INTERNAL_SERVER_ERROR, "flush %s: %s", up->path,
               strerror(errno));
        return -1;
    }
    up->fd = -1;

    *replaced = store->ops->head(store, up->key, &info, err,
                                 sizeof(err)) == 0;
    if (store->ops->put_file(store, up->key, up->path, err,
                             sizeof(err)) < 0) {
        reject(up, MHD_HTTP_INTERNAL_SERVER_ERROR, "store upload %s: %s",
               up->key, err);
        return -1;
    }
    up->placed = 1;
    return 0;
}

/* Responds to a failure of the uploaded() callback. The upload stays
 * under stream/NAME because the state names it as the source of the
 * failed video. */
static enum MHD_Result respond_not_started(const struct sn_request *rq,
                                           struct upload *up, int rc,
                                           const char *err)
{
    unsigned int status = rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT
                              ? MHD_HTTP_UNPROCESSABLE_CONTENT
                              : MHD_HTTP_INTERNAL_SERVER_ERROR;

    sn_log(SN_LOG_WARN, up->id, NULL, "http: upload %s not processed: %s",
           up->key, err);
    return sn_server_queue(
        rq, status,
        sn_server_json_response(json_pack("{s:s, s:s, s:s}", "error", err,
                                          "id", up->id, "name", up->name)));
}

static enum MHD_Result respond_accepted(const struct sn_request *rq,
                                        struct upload *up, int replaced)
{
    char status_url[64];

    snprintf(status_url, sizeof(status_url), "/api/videos/%s", up->id);
    sn_log(SN_LOG_INFO, up->id, NULL,
           "http: upload %s accepted: %" PRId64 " bytes%s", up->key,
           up->bytes, replaced ? ", replacing the earlier upload" : "");
    return sn_server_queue(
        rq, replaced ? MHD_HTTP_OK : MHD_HTTP_CREATED,
        sn_server_json_response(json_pack("{s:s, s:s, s:s}", "id", up->id,
                                          "name", up->name, "status_url",
                                          status_url)));
}

/* Places the file, starts the video through uploaded() and queues the
 * response. */
static enum MHD_Result complete(const struct sn_request *rq,
                                struct upload *up)
{
    const struct sn_server_config *c = &up->server->config;
    char err[SN_ERR_SIZE] = "";
    int replaced = 0, rc = 0;

    if (place_file(up, &replaced) < 0)
        return respond_rejected(rq, up);

    if (c->uploaded != NULL)
        rc = c->uploaded(c->opaque, up->key, up->id, err, sizeof(err));
    if (rc < 0)
        return respond_not_started(rq, up, rc, err);
    return respond_accepted(rq, up, replaced);
}

/*
 * Runs complete() for a suspended connection, then resumes it. The upload
 * belongs to the request, which libmicrohttpd may complete (and free) as
 * soon as the connection resumes, so up is not touched after that.
 */
static void *complete_in_background(void *arg)
{
    struct upload *up = arg;
    struct sn_server *s = up->server;
    struct MHD_Connection *conn = up->request.conn;

    if (complete(&up->request, up) != MHD_YES)
        sn_log(SN_LOG_ERROR, up->id, NULL,
               "http: upload %s: queueing the response failed", up->key);
    MHD_resume_connection(conn);

    pthread_mutex_lock(&s->lock);
    s->finishing--;
    pthread_cond_broadcast(&s->finished);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * Moves the rest of the work to a thread of its own and suspends the
 * connection meanwhile: fsync() of a large file and uploaded() (which
 * probes the upload) can take seconds, and the HTTP thread serves many
 * other connections. Runs complete() here when no thread can start.
 */
static enum MHD_Result complete_later(const struct sn_request *rq,
                                      struct upload *up)
{
    struct sn_server *s = up->server;
    pthread_attr_t attr;
    pthread_t thread;
    enum MHD_Result result;
    int rc;

    up->request = *rq;
    up->completing = 1;
    pthread_mutex_lock(&s->lock);
    s->finishing++;
    pthread_mutex_unlock(&s->lock);

    MHD_suspend_connection(rq->conn);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, complete_in_background, up);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return MHD_YES;

    /* A suspended connection accepts a response, so the order is the
     * same as on the thread: respond, then resume. */
    sn_log(SN_LOG_WARN, up->id, NULL,
           "http: upload %s: no thread to place it (%s); placing it on the "
           "HTTP thread", up->key, strerror(rc));
    result = complete(rq, up);
    MHD_resume_connection(rq->conn);

    pthread_mutex_lock(&s->lock);
    s->finishing--;
    pthread_cond_broadcast(&s->finished);
    pthread_mutex_unlock(&s->lock);
    return result;
}

void sn_server_wait_uploads(struct sn_server *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->finishing > 0)
        pthread_cond_wait(&s->finished, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

/* Responds once the whole body is in: rejects it, or places it and
 * starts the video on a thread of its own. */
static enum MHD_Result finish(const struct sn_request *rq,
                              struct upload *up)
{
    /* Called again only when complete() could not queue a response (out
     * of memory): close the connection. */
    if (up->completing)
        return MHD_NO;

    if (up->form != NULL) {
        /* Destroying the parser hands over the last buffered bytes. */
        if (MHD_destroy_post_processor(up->form) != MHD_YES)
            reject(up, MHD_HTTP_BAD_REQUEST,
                   "upload to /api/uploads: incomplete multipart body");
        up->form = NULL;
        if (!up->has_file)
            reject(up, MHD_HTTP_BAD_REQUEST,
                   "upload to /api/uploads: no \"file\" field in the body");
    }
    if (up->status == 0 && up->bytes == 0)
        reject(up, MHD_HTTP_BAD_REQUEST, "upload %s has an empty body",
               up->key);
    if (up->status != 0)
        return respond_rejected(rq, up);
    return complete_later(rq, up);
}

enum MHD_Result sn_server_upload_continue(const struct sn_request *rq,
                                          void *state, const char *data,
                                          size_t *size)
{
    struct upload *up = state;
    size_t n = *size;

    if (n == 0)
        return finish(rq, up);
    *size = 0;
    return take_body(up, data, n);
}

void sn_server_upload_end(void *state, enum MHD_RequestTerminationCode toe)
{
    struct upload *up = state;

    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !up->placed &&
        up->status == 0)
        sn_log(SN_LOG_WARN, up->id[0] ? up->id : NULL, NULL,
               "http: upload %s aborted after %" PRId64 " bytes (%s)",
               up->key[0] ? up->key : "to /api/uploads", up->bytes,
               toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                   ? "timed out"
                   : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN
                         ? "server stopping"
                         : "client disconnected");
    if (up->form != NULL)
        MHD_destroy_post_processor(up->form);
    drop_file(up);
    free(up);
}
