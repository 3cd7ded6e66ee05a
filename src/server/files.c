/*
 * File delivery: HLS output under /hls/, the web page, and hls.js.
 * Bodies go out with sendfile() through libmicrohttpd's fd responses; only
 * a playlist that is gzip-compressed is read into memory.
 */
#include "server/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include "server/http.h"

/* Playlists above this size go out uncompressed, so that one request
 * cannot make the server hold more than this in memory. A 6 hour video at
 * 6 s segments has a media playlist of about 300 KiB. */
#define GZIP_MAX_BYTES (16 << 20)

/* How much of a playlist's end is read to look for #EXT-X-ENDLIST, which
 * the writer puts on the last line. */
#define PLAYLIST_TAIL_BYTES 64

/*
 * Files up to this size are read and sent from memory. libmicrohttpd
 * 0.9.75 sends the header of an fd response as a TCP segment of its own,
 * but a body in memory goes out with the header in one sendmsg(). For a
 * small file, saving a segment and a wake-up of the client is worth more
 * than the copy.
 */
#define SMALL_FILE_BYTES (32 * 1024)

/*
 * Final playlists never change, because a new upload of the same name
 * writes under a new generation. They are still kept short (60 s) rather
 * than immutable, so that a cache keeps one for at most a minute if the
 * HLS folder is wiped and the same generation is written again.
 */
#define CACHE_IMMUTABLE "public, max-age=31536000, immutable"
#define CACHE_FINAL_PLAYLIST "public, max-age=60"
#define CACHE_REVALIDATE "no-cache"

/* A file being sent. */
struct file {
    int fd;                   /* owned until handed to a response */
    struct stat st;
    const struct sn_http_type *type;
    enum sn_http_cache cache;
    const char *cache_control;
    char etag[96];            /* quoted; "...-gz" for the gzip body */
    char modified[32];        /* Last-Modified */
    char *data;               /* the whole file when small, or NULL */
    const char *cache_key;    /* path to cache a 200 fd response under */
    unsigned char *gzip;      /* compressed body, or NULL */
    size_t gzip_size;
};

/*
 * Opens path below the folder root like open_below(), one component at a
 * time with O_NOFOLLOW, for kernels without openat2().
 */
static int walk_below(int root, const char *path)
{
    char part[NAME_MAX + 1];
    int dir = root, fd, error;

    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);

        if (n > NAME_MAX) {
            fd = -1;
            errno = ENAMETOOLONG;
        } else if (slash == NULL) {
            fd = openat(dir, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                    O_CLOEXEC);
        } else {
            memcpy(part, p, n);
            part[n] = '\0';
            fd = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                       O_CLOEXEC);
        }
        error = errno;
        if (dir != root)
            close(dir);
        if (fd < 0)
            return -error;
        if (slash == NULL)
            return fd;

        dir = fd;
        p = slash + 1;
    }
}

/* Cleared when the kernel has no openat2() (before Linux 5.6) or a
 * seccomp filter hides it; open_below() then walks the path itself. */
static atomic_int have_openat2 = 1;

/*
 * Opens path below the folder root without following any symbolic link,
 * so neither a link nor ".." can lead out of root. One openat2() call
 * does it where the kernel has one. Returns the file descriptor, or
 * -errno.
 */
static int open_below(int root, const char *path)
{
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                   RESOLVE_NO_MAGICLINKS,
    };
    long fd;

    if (atomic_load_explicit(&have_openat2, memory_order_relaxed)) {
        fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != ENOSYS && errno != EPERM)
            return -errno;
        atomic_store(&have_openat2, 0);
    }
    return walk_below(root, path);
}

/* Responds to a failed open() of what. A missing file, a symbolic link,
 * a folder on the way that is not one, or an unreadable file is 404. */
static enum MHD_Result open_failed(const struct sn_request *rq,
                                   const char *what, int error)
{
    switch (error) {
    case -ENOENT:
    case -ENOTDIR:
    case -ELOOP:
    case -EACCES:
    case -ENAMETOOLONG:
    case -ENXIO:
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND, "%s not found",
                              what);
    case -EMFILE:
    case -ENFILE:
        return sn_server_fail(rq, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "open %s: %s; retry later", what,
                              strerror(-error));
    default:
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "open %s: %s", what, strerror(-error));
    }
}

static int read_at(int fd, void *buf, size_t n, off_t offset)
{
    size_t done = 0;

    while (done < n) {
        ssize_t got = pread(fd, (char *)buf + done, n - done,
                            offset + (off_t)done);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        done += (size_t)got;
    }
    return 0;
}

/* Compresses n bytes into a gzip member. Returns 0 and a malloc'd *out,
 * or -1. */
static int gzip_bytes(const void *in, size_t n, unsigned char **out,
                      size_t *out_size)
{
    z_stream z = {0};
    unsigned char *buf = NULL;
    uLong bound;
    int rc = -1;

    /* windowBits 15 + 16 makes zlib write a gzip header and trailer. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    bound = deflateBound(&z, (uLong)n);
    buf = malloc(bound);
    if (buf == NULL)
        goto out;

    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        goto out;

    *out = buf;
    *out_size = z.total_out;
    buf = NULL;
    rc = 0;

out:
    free(buf);
    deflateEnd(&z);
    return rc;
}

/*
 * Reads a playlist's end to pick its Cache-Control, and compresses the
 * whole playlist when the client accepts gzip and asked for no range. A
 * playlist that cannot be compressed goes out as it is.
 */
static void prepare_playlist(const struct sn_request *rq, struct file *f)
{
    const char *accept = sn_server_header(rq, "Accept-Encoding");
    size_t size = (size_t)f->st.st_size;
    char tail[PLAYLIST_TAIL_BYTES];
    size_t tail_size = size < sizeof(tail) ? size : sizeof(tail);
    char *text = f->data;
    int final = 0;
    int compress = accept != NULL && sn_http_accepts_gzip(accept) &&
                   sn_server_header(rq, "Range") == NULL && size > 0 &&
                   size <= GZIP_MAX_BYTES;

    if (text == NULL && compress && (text = malloc(size)) != NULL &&
        read_at(f->fd, text, size, 0) < 0) {
        free(text);
        text = NULL;
    }

    if (text != NULL)
        final = sn_http_playlist_final(text + size - tail_size, tail_size);
    else if (read_at(f->fd, tail, tail_size, (off_t)(size - tail_size)) == 0)
        final = sn_http_playlist_final(tail, tail_size);
    f->cache_control = final ? CACHE_FINAL_PLAYLIST : CACHE_REVALIDATE;

    if (compress && text != NULL &&
        gzip_bytes(text, size, &f->gzip, &f->gzip_size) == 0) {
        /* The compressed body is another representation: its own tag. */
        f->etag[strlen(f->etag) - 1] = '\0';
        strcat(f->etag, "-gz\"");
    }
    if (text != f->data)
        free(text);
}

static void add_file_headers(struct MHD_Response *r, const struct file *f)
{
    MHD_add_response_header(r, "Cache-Control", f->cache_control);
    MHD_add_response_header(r, "ETag", f->etag);
    MHD_add_response_header(r, "Last-Modified", f->modified);
    if (f->cache == SN_CACHE_PLAYLIST)
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
}

/* Returns 1 when the client's copy is current (RFC 9110 §13.2.2:
 * If-None-Match wins over If-Modified-Since). */
static int not_modified(const struct sn_request *rq, const struct file *f)
{
    const char *tags = sn_server_header(rq, "If-None-Match");
    const char *since = sn_server_header(rq, "If-Modified-Since");
    int64_t since_s;

    if (tags != NULL)
        return sn_http_etag_matches(tags, f->etag);
    if (since != NULL && sn_http_parse_date(since, &since_s) == 0)
        return (int64_t)f->st.st_mtim.tv_sec <= since_s;
    return 0;
}

/* Returns 1 when Range applies: no If-Range, or an If-Range that names
 * the current file by its strong tag or its exact Last-Modified date. */
static int range_applies(const struct sn_request *rq, const struct file *f)
{
    const char *if_range = sn_server_header(rq, "If-Range");

    if (if_range == NULL)
        return 1;
    if (if_range[0] == '"')
        return strcmp(if_range, f->etag) == 0;
    return strcmp(if_range, f->modified) == 0;
}

/* NOTE: libmicrohttpd 0.9.75 sends "Content-Length: 0" with a 304 and
 * offers no way to leave it out. RFC 9111 §3.2 excepts Content-Length
 * from the fields a cache updates from a 304, so the stored copy stays
 * whole. */
static enum MHD_Result respond_not_modified(const struct sn_request *rq,
                                            struct file *f)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);

    if (r != NULL)
        add_file_headers(r, f);
    return sn_server_queue(rq, MHD_HTTP_NOT_MODIFIED, r);
}

static enum MHD_Result respond_gzip(const struct sn_request *rq,
                                    struct file *f)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        f->gzip_size, f->gzip, MHD_RESPMEM_MUST_FREE);

    if (r == NULL)
        return MHD_NO;
    f->gzip = NULL;
    MHD_add_response_header(r, "Content-Type", f->type->content_type);
    MHD_add_response_header(r, "Content-Encoding", "gzip");
    add_file_headers(r, f);
    return sn_server_queue(rq, MHD_HTTP_OK, r);
}

static enum MHD_Result respond_unsatisfiable(const struct sn_request *rq,
                                             const struct file *f,
                                             const char *range)
{
    struct MHD_Response *r = sn_server_error_response(
        "range \"%s\" is not satisfiable for %s (%jd bytes)", range,
        rq->url, (intmax_t)f->st.st_size);
    char content_range[48];

    snprintf(content_range, sizeof(content_range), "bytes */%jd",
             (intmax_t)f->st.st_size);
    if (r != NULL)
        MHD_add_response_header(r, "Content-Range", content_range);
    return sn_server_queue(rq, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
}

/* Sends [first, last] of the file, or all of it with 200 when partial is
 * 0: from memory when the file was read, else with sendfile(), in which
 * case the response takes the file descriptor. */
static enum MHD_Result respond_body(const struct sn_request *rq,
                                    struct file *f, int partial,
                                    int64_t first, int64_t last)
{
    size_t length = (size_t)(last - first + 1);
    struct MHD_Response *r;
    char content_range[80];

    if (f->data != NULL) {
        r = MHD_create_response_from_buffer(length, f->data + first,
                                            MHD_RESPMEM_MUST_COPY);
    } else {
        r = MHD_create_response_from_fd_at_offset64(length, f->fd,
                                                    (uint64_t)first);
        if (r != NULL)
            f->fd = -1;
    }
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", f->type->content_type);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    add_file_headers(r, f);
    if (!partial && f->data == NULL && f->cache_key != NULL) {
        sn_server_add_headers(rq, r);
        return sn_response_cache_put(&rq->server->responses, f->cache_key,
                                     &f->st, rq->conn, r);
    }
    if (!partial)
        return sn_server_queue(rq, MHD_HTTP_OK, r);

    snprintf(content_range, sizeof(content_range), "bytes %jd-%jd/%jd",
             (intmax_t)first, (intmax_t)last, (intmax_t)f->st.st_size);
    MHD_add_response_header(r, "Content-Range", content_range);
    return sn_server_queue(rq, MHD_HTTP_PARTIAL_CONTENT, r);
}

static enum MHD_Result respond_file(const struct sn_request *rq,
                                    struct file *f)
{
    const char *range = sn_server_header(rq, "Range");
    int64_t first = 0, last = (int64_t)f->st.st_size - 1;
    enum sn_http_range kind = SN_RANGE_NONE;

    if (not_modified(rq, f))
        return respond_not_modified(rq, f);
    if (f->gzip != NULL)
        return respond_gzip(rq, f);

    if (range != NULL && range_applies(rq, f))
        kind = sn_http_parse_range(range, f->st.st_size, &first, &last);
    if (kind == SN_RANGE_UNSATISFIABLE)
        return respond_unsatisfiable(rq, f, range);
    return respond_body(rq, f, kind == SN_RANGE_PARTIAL, first, last);
}

/*
 * Responds to GET or HEAD with the open file fd (which it takes) of the
 * given type, with the Cache-Control of cache: 200, 206, 304 or 416. A
 * 200 sent with sendfile() is kept in the response cache under cache_key
 * unless that is NULL.
 */
static enum MHD_Result serve_fd(const struct sn_request *rq, int fd,
                                const struct sn_http_type *type,
                                enum sn_http_cache cache,
                                const char *cache_key)
{
    struct file f = {.fd = fd, .type = type, .cache = cache,
                     .cache_key = cache_key};
    enum MHD_Result result;
    uintmax_t mtime_ns;

    if (fstat(fd, &f.st) < 0 || !S_ISREG(f.st.st_mode)) {
        close(fd);
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND, "%s not found",
                              rq->url);
    }

    /* The tag changes whenever the file is replaced or rewritten. */
    mtime_ns = (uintmax_t)f.st.st_mtim.tv_sec * 1000000000u +
               (uintmax_t)f.st.st_mtim.tv_nsec;
    snprintf(f.etag, sizeof(f.etag), "\"%jx-%jx-%jx\"",
             (uintmax_t)f.st.st_ino, (uintmax_t)f.st.st_size, mtime_ns);
    sn_http_format_date((int64_t)f.st.st_mtim.tv_sec, f.modified,
                        sizeof(f.modified));

    if (f.st.st_size <= SMALL_FILE_BYTES &&
        (f.data = malloc((size_t)f.st.st_size + 1)) != NULL &&
        read_at(fd, f.data, (size_t)f.st.st_size, 0) < 0) {
        free(f.data);
        f.data = NULL;
    }

    if (cache == SN_CACHE_IMMUTABLE)
        f.cache_control = CACHE_IMMUTABLE;
    else if (cache == SN_CACHE_PLAYLIST)
        prepare_playlist(rq, &f);
    else
        f.cache_control = CACHE_REVALIDATE;

    result = respond_file(rq, &f);
    if (f.fd >= 0)
        close(f.fd);
    free(f.data);
    free(f.gzip);
    return result;
}

/* Returns 1 when the request is for the plain 200 response, which
 * the response cache can serve: no range and no condition. */
static int plain_request(const struct sn_request *rq)
{
    return sn_server_header(rq, "Range") == NULL &&
           sn_server_header(rq, "If-None-Match") == NULL &&
           sn_server_header(rq, "If-Modified-Since") == NULL;
}

enum MHD_Result sn_server_serve_hls(const struct sn_request *rq,
                                    const char *path, void **state)
{
    const struct sn_http_type *type = sn_http_type_of(path);
    const char *cache_key = NULL;
    enum MHD_Result result;
    struct stat st;
    int fd;

    (void)state;
    if (rq->server->hls_dir < 0)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "%s not found: no HLS folder is served",
                              rq->url);
    if (!sn_http_path_valid(path))
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "%s not found: invalid path", rq->url);
    if (type == NULL || !type->hls)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "%s not found: not an HLS file type",
                              rq->url);

    /* The cached response names an inode opened without following links;
     * fstatat() may follow one, but then finds another inode and misses. */
    if (type->cache == SN_CACHE_IMMUTABLE && plain_request(rq)) {
        cache_key = path;
        if (fstatat(rq->server->hls_dir, path, &st, AT_SYMLINK_NOFOLLOW) ==
                0 &&
            sn_response_cache_queue(&rq->server->responses, path, &st,
                                    rq->conn, &result))
            return result;
    }

    fd = open_below(rq->server->hls_dir, path);
    if (fd < 0)
        return open_failed(rq, rq->url, fd);
    return serve_fd(rq, fd, type, type->cache, cache_key);
}

/* The type of a web file without a known extension. */
static const struct sn_http_type octet_stream = {
    "", "application/octet-stream", SN_CACHE_REVALIDATE, 0};

enum MHD_Result sn_server_serve_web(const struct sn_request *rq,
                                    const char *path, void **state)
{
    const char *name = path[0] == '\0' ? "index.html" : path;
    const struct sn_http_type *type = sn_http_type_of(name);
    int fd;

    (void)state;
    if (rq->server->web_dir < 0)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "%s not found: no web folder is served",
                              rq->url);
    if (!sn_http_path_valid(name))
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "%s not found: invalid path", rq->url);

    fd = open_below(rq->server->web_dir, name);
    if (fd < 0)
        return open_failed(rq, rq->url, fd);
    return serve_fd(rq, fd, type ? type : &octet_stream,
                    SN_CACHE_REVALIDATE, NULL);
}

int sn_server_web_file_found(const struct sn_server *s, const char *path)
{
    const char *name = path[0] == '\0' ? "index.html" : path;
    struct stat st;

    return s->web_dir >= 0 && sn_http_path_valid(name) &&
           fstatat(s->web_dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(st.st_mode);
}

enum MHD_Result sn_server_serve_hls_js(const struct sn_request *rq,
                                       const char *path, void **state)
{
    const char *file = rq->server->hls_js;
    int fd;

    (void)path;
    (void)state;
    if (file == NULL)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "%s not found: no hls.js file is configured",
                              rq->url);

    /* The operator chose this path, so it may be a link (npm makes
     * some). */
    fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return open_failed(rq, file, -errno);
    return serve_fd(rq, fd, sn_http_type_of(".js"), SN_CACHE_REVALIDATE,
                    NULL);
}
