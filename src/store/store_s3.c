/*
 * The S3 store: each operation is one or a few S3 REST requests
 * (GetObject, HeadObject, PutObject, DeleteObject, ListObjectsV2) sent
 * through sn_http_send(), which retries transient failures and maps S3
 * errors to SN_ERR_* codes. A PutObject replaces the object atomically,
 * which is the store's write guarantee.
 *
 * HTTP clients are pooled: a request borrows an idle client under the
 * pool's mutex and returns it afterwards, so threads never share a client
 * while each keeps its connections alive.
 */
#include "store/store_s3.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "util/error.h"

/* An idle client in the pool. */
struct pooled_client {
    struct sn_http_client *client;
    struct pooled_client *next;
};

struct s3_store {
    struct sn_store store;
    char bucket[64];
    char endpoint[SN_HTTP_URL_MAX];
    struct sn_aws_provider *provider;
    struct sn_aws_signer signer;
    pthread_mutex_t pool_lock;
    struct pooled_client *idle;          /* guarded by pool_lock */
    atomic_long gets;                    /* GET requests sent */
};

/* One request's URL and the name used for it in messages. */
struct target {
    char url[SN_HTTP_URL_MAX];
    char resource[SN_STORE_MAX_KEY + 96];
};

static const struct sn_store_ops s3_ops;

/* ---- the client pool ---------------------------------------------------- */

/* Takes an idle client or creates one; NULL when out of memory. */
static struct pooled_client *client_take(struct s3_store *st)
{
    struct pooled_client *pc;

    pthread_mutex_lock(&st->pool_lock);
    pc = st->idle;
    if (pc != NULL)
        st->idle = pc->next;
    pthread_mutex_unlock(&st->pool_lock);
    if (pc != NULL)
        return pc;

    pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        return NULL;
    pc->client = sn_http_client_new(NULL);
    if (pc->client == NULL) {
        free(pc);
        return NULL;
    }
    return pc;
}

static void client_give_back(struct s3_store *st, struct pooled_client *pc)
{
    pthread_mutex_lock(&st->pool_lock);
    pc->next = st->idle;
    st->idle = pc;
    pthread_mutex_unlock(&st->pool_lock);
}

/*
 * Sends req signed for S3 on a pooled client. resp is zeroed first, and
 * the caller releases it. Returns the sn_http_send() code.
 */
static int send_request(struct s3_store *st, struct sn_http_request *req,
                        struct sn_http_response *resp, char *err,
                        size_t err_size)
{
    struct pooled_client *pc;
    int rc;

    memset(resp, 0, sizeof(*resp));
    pc = client_take(st);
    if (pc == NULL) {
        snprintf(err, err_size, "%s %s: out of memory for an HTTP client",
                 req->method, req->resource);
        return -ENOMEM;
    }

    req->sign = sn_aws_sign;
    req->sign_opaque = &st->signer;
    if (strcmp(req->method, "GET") == 0)
        atomic_fetch_add(&st->gets, 1);
    rc = sn_http_send(pc->client, req, resp, err, err_size);

    client_give_back(st, pc);
    return rc;
}

/* Fills t for key (NULL for the bucket itself). */
static int target_init(const struct s3_store *st, const char *key,
                       struct target *t, char *err, size_t err_size)
{
    snprintf(t->resource, sizeof(t->resource), "s3://%s/%s", st->bucket,
             key != NULL ? key : "");
    return sn_s3_url(st->endpoint, st->bucket, key, t->url, sizeof(t->url),
                     err, err_size);
}

/* ---- content types ------------------------------------------------------ */

struct object_type {
    const char *extension;
    const char *content_type;
    const char *cache_control;
};

/*
 * Segments, init segments and posters are written once under their final
 * names, so caches may keep them for a year. Playlists of a video in
 * progress are rewritten as segments finish, so a cache may keep one for
 * a second at most. The store cannot tell a final playlist from a live
 * one.
 */
#define CACHE_IMMUTABLE "public, max-age=31536000, immutable"
#define CACHE_PLAYLIST "public, max-age=1"
#define CACHE_REVALIDATE "no-cache"

static const struct object_type object_types[] = {
    {".m3u8", "application/vnd.apple.mpegurl", CACHE_PLAYLIST},
    {".m4s", "video/iso.segment", CACHE_IMMUTABLE},
    {".mp4", "video/mp4", CACHE_IMMUTABLE},
    {".ts", "video/mp2t", CACHE_IMMUTABLE},
    {".aac", "audio/aac", CACHE_IMMUTABLE},
    {".jpg", "image/jpeg", CACHE_IMMUTABLE},
    {".json", "application/json", CACHE_REVALIDATE},
};

/* Returns the type for key's extension, or NULL for none known. */
static const struct object_type *type_of(const char *key)
{
    const char *dot = strrchr(key, '.');

    if (dot == NULL || strchr(dot, '/') != NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(object_types) / sizeof(object_types[0]);
         i++) {
        if (strcmp(dot, object_types[i].extension) == 0)
            return &object_types[i];
    }
    return NULL;
}

/* Returns the Content-Type and Cache-Control headers for key, or NULL. */
static struct curl_slist *type_headers(const char *key, int *oom)
{
    const struct object_type *type = type_of(key);
    struct curl_slist *list = NULL, *next;
    char line[128];

    *oom = 0;
    snprintf(line, sizeof(line), "Content-Type: %s",
             type ? type->content_type : "application/octet-stream");
    list = curl_slist_append(NULL, line);
    if (list == NULL || type == NULL) {
        *oom = list == NULL;
        return list;
    }

    snprintf(line, sizeof(line), "Cache-Control: %s", type->cache_control);
    next = curl_slist_append(list, line);
    if (next == NULL) {
        curl_slist_free_all(list);
        *oom = 1;
    }
    return next;
}

/* ---- head --------------------------------------------------------------- */

/* Sends HeadObject for key and fills *info. */
static int head_object(struct s3_store *st, const char *key,
                       struct sn_object_info *info, char *err,
                       size_t err_size)
{
    struct target t;
    struct sn_http_request req;
    struct sn_http_response resp;
    char length[32], *end;
    int rc;

    rc = target_init(st, key, &t, err, err_size);
    if (rc < 0)
        return rc;

    sn_http_request_init(&req, "HEAD", t.url);
    req.resource = t.resource;
    rc = send_request(st, &req, &resp, err, err_size);
    if (rc < 0)
        goto out;

    memset(info, 0, sizeof(*info));
    if (sn_http_header(&resp, "Content-Length", length, sizeof(length)) < 0)
        length[0] = '\0';
    errno = 0;
    info->size = strtoll(length, &end, 10);
    if (length[0] == '\0' || *end != '\0' || errno != 0 || info->size < 0) {
        snprintf(err, err_size, "HEAD %s: missing or invalid "
                 "Content-Length \"%s\"", t.resource, length);
        rc = SN_ERR_BACKEND;
        goto out;
    }

    /* The ETag comes in double quotes; the tag keeps what is inside. */
    if (sn_http_header(&resp, "ETag", info->tag, sizeof(info->tag)) < 0) {
        snprintf(err, err_size, "HEAD %s: missing ETag, or longer than "
                 "%zu bytes", t.resource, sizeof(info->tag) - 1);
        rc = SN_ERR_BACKEND;
        goto out;
    }
    size_t n = strlen(info->tag);
    if (n >= 2 && info->tag[0] == '"' && info->tag[n - 1] == '"') {
        memmove(info->tag, info->tag + 1, n - 2);
        info->tag[n - 2] = '\0';
    }

out:
    sn_http_response_release(&resp);
    return rc;
}

static int s3_head(struct sn_store *s, const char *key,
                   struct sn_object_info *info, char *err, size_t err_size)
{
    int rc = sn_store_key_check(s, key, err, err_size);

    if (rc < 0)
        return rc;
    return head_object((struct s3_store *)s, key, info, err, err_size);
}

/* ---- the reader --------------------------------------------------------- */

struct s3_reader {
    struct sn_reader reader;
    struct s3_store *st;
    struct target target;
    uint8_t *buf;             /* bytes [buf_offset, buf_offset + buf_len) */
    size_t buf_cap;
    size_t buf_len;
    int64_t buf_offset;
    size_t window;            /* bytes the next GET fetches at least */
};

/* Collects a ranged GET's body into a reader's buffer. */
static int fill_buffer(void *opaque, const void *data, size_t n)
{
    struct s3_reader *r = opaque;

    if (n > r->buf_cap - r->buf_len)
        return SN_ERR_BACKEND;
    memcpy(r->buf + r->buf_len, data, n);
    r->buf_len += n;
    return 0;
}

/* Replaces the buffer with bytes from offset on: n or the read-ahead
 * window, whichever is more, and never past the end of the object. The
 * window doubles while the reads are sequential and starts again from
 * SN_STORE_S3_READ_AHEAD after a seek. */
static int fetch(struct s3_reader *r, int64_t offset, size_t n, char *err,
                 size_t err_size)
{
    struct sn_http_request req;
    struct sn_http_response resp;
    size_t want;
    int rc;

    if (r->buf_len > 0 && offset == r->buf_offset + (int64_t)r->buf_len &&
        r->window < SN_STORE_S3_READ_AHEAD_MAX)
        r->window *= 2;
    else if (offset != r->buf_offset + (int64_t)r->buf_len)
        r->window = SN_STORE_S3_READ_AHEAD;
    want = n > r->window ? n : r->window;

    if ((int64_t)want > r->reader.size - offset)
        want = (size_t)(r->reader.size - offset);
    if (want > r->buf_cap) {
        uint8_t *bigger = realloc(r->buf, want);

        if (bigger == NULL)
            return -ENOMEM;
        r->buf = bigger;
        r->buf_cap = want;
    }
    r->buf_offset = offset;
    r->buf_len = 0;

    sn_http_request_init(&req, "GET", r->target.url);
    req.resource = r->target.resource;
    req.range_first = offset;
    req.range_last = offset + (int64_t)want - 1;
    req.write = fill_buffer;
    req.write_opaque = r;
    rc = send_request(r->st, &req, &resp, err, err_size);
    sn_http_response_release(&resp);
    if (rc < 0)
        r->buf_len = 0;
    return rc;
}

static int64_t reader_read(struct sn_reader *reader, int64_t offset,
                           void *buf, size_t n)
{
    struct s3_reader *r = (struct s3_reader *)reader;
    char err[SN_ERR_SIZE];
    int64_t skip;
    size_t have;
    int rc;

    if (offset < 0)
        return -EINVAL;
    if (offset >= reader->size || n == 0)
        return 0;

    if (offset < r->buf_offset ||
        offset >= r->buf_offset + (int64_t)r->buf_len) {
        /* NOTE: the reader interface has no error buffer, so the cause
         * from sn_http_send() is dropped and only the code is returned. */
        rc = fetch(r, offset, n, err, sizeof(err));
        if (rc < 0)
            return rc;
    }

    skip = offset - r->buf_offset;
    have = r->buf_len - (size_t)skip;
    if (n > have)
        n = have;
    memcpy(buf, r->buf + skip, n);
    return (int64_t)n;
}

static void reader_close(struct sn_reader *reader)
{
    struct s3_reader *r = (struct s3_reader *)reader;

    if (r == NULL)
        return;
    free(r->buf);
    free(r);
}

static int s3_open(struct sn_store *s, const char *key,
                   struct sn_reader **out, char *err, size_t err_size)
{
    struct s3_store *st = (struct s3_store *)s;
    struct sn_object_info info;
    struct s3_reader *r;
    int rc;

    rc = sn_store_key_check(s, key, err, err_size);
    if (rc < 0)
        return rc;
    rc = head_object(st, key, &info, err, err_size);
    if (rc < 0)
        return rc;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, err_size, "s3://%s/%s: out of memory for a reader",
                 st->bucket, key);
        return -ENOMEM;
    }
    rc = target_init(st, key, &r->target, err, err_size);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->st = st;
    r->window = SN_STORE_S3_READ_AHEAD;
    r->reader.size = info.size;
    r->reader.read = reader_read;
    r->reader.close = reader_close;
    *out = &r->reader;
    return 0;
}

/* ---- get ---------------------------------------------------------------- */

struct body_sink {
    uint8_t *data;
    size_t size;
    size_t cap;
    size_t max;
};

/* Appends to a growing buffer of at most max bytes plus a NUL. */
static int append_body(void *opaque, const void *data, size_t n)
{
    struct body_sink *b = opaque;

    if (n > b->max - b->size)
        return SN_ERR_LIMIT;
    if (b->size + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        uint8_t *bigger;

        while (cap < b->size + n + 1)
            cap *= 2;
        bigger = realloc(b->data, cap);
        if (bigger == NULL)
            return -ENOMEM;
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
    return 0;
}

static int s3_get(struct sn_store *s, const char *key, size_t max,
                  uint8_t **data, size_t *size, char *err, size_t err_size)
{
    struct s3_store *st = (struct s3_store *)s;
    struct body_sink body = {.max = max};
    struct sn_http_request req;
    struct sn_http_response resp;
    struct target t;
    int rc;

    rc = sn_store_key_check(s, key, err, err_size);
    if (rc < 0)
        return rc;
    rc = target_init(st, key, &t, err, err_size);
    if (rc < 0)
        return rc;

    sn_http_request_init(&req, "GET", t.url);
    req.resource = t.resource;
    req.write = append_body;
    req.write_opaque = &body;
    rc = send_request(st, &req, &resp, err, err_size);
    sn_http_response_release(&resp);
    if (rc == SN_ERR_LIMIT)
        snprintf(err, err_size, "GET %s: object larger than the maximum "
                 "of %zu bytes", t.resource, max);
    if (rc < 0)
        goto out;

    /* An empty object delivers no bytes, so nothing was allocated. */
    if (body.data == NULL && append_body(&body, "", 0) < 0) {
        snprintf(err, err_size, "GET %s: out of memory", t.resource);
        rc = -ENOMEM;
        goto out;
    }
    body.data[body.size] = '\0';
    *data = body.data;
    *size = body.size;
    body.data = NULL;

out:
    free(body.data);
    return rc;
}

/* ---- put ---------------------------------------------------------------- */

/* Sends PutObject with data as the body. */
static int put_object(struct s3_store *st, const char *key, const void *data,
                      size_t size, char *err, size_t err_size)
{
    struct sn_http_request req;
    struct sn_http_response resp;
    struct curl_slist *headers;
    struct target t;
    int rc, oom;

    rc = target_init(st, key, &t, err, err_size);
    if (rc < 0)
        return rc;
    headers = type_headers(key, &oom);
    if (oom) {
        snprintf(err, err_size, "PUT %s: out of memory", t.resource);
        return -ENOMEM;
    }

    sn_http_request_init(&req, "PUT", t.url);
    req.resource = t.resource;
    req.headers = headers;
    req.body = size > 0 ? data : NULL;
    req.body_size = size;
    rc = send_request(st, &req, &resp, err, err_size);
    sn_http_response_release(&resp);
    curl_slist_free_all(headers);
    return rc;
}

static int s3_put(struct sn_store *s, const char *key, const void *data,
                  size_t size, char *err, size_t err_size)
{
    int rc = sn_store_key_check(s, key, err, err_size);

    if (rc < 0)
        return rc;
    return put_object((struct s3_store *)s, key, data, size, err, err_size);
}

/*
 * Uploads the file at path in one PutObject. The file is mapped rather
 * than read, so a large file is paged in from disk as the signer hashes
 * it and libcurl sends it, instead of being copied into the heap.
 */
static int s3_put_file(struct sn_store *s, const char *key, const char *path,
                       char *err, size_t err_size)
{
    struct s3_store *st = (struct s3_store *)s;
    void *map = MAP_FAILED;
    struct stat sb;
    int fd = -1, rc;

    rc = sn_store_key_check(s, key, err, err_size);
    if (rc < 0)
        return rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        int e = errno;

        snprintf(err, err_size, "%s: cannot open for upload to s3://%s/%s: "
                 "%s", path, st->bucket, key, strerror(e));
        rc = e == ENOENT ? SN_ERR_NOT_FOUND : SN_ERR_BACKEND;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        rc = SN_ERR_INPUT;
        goto out;
    }
    if (sb.st_size > SN_STORE_S3_MAX_PUT) {
        snprintf(err, err_size, "%s: %lld bytes is over the maximum of one "
                 "S3 PutObject (%lld bytes)", path, (long long)sb.st_size,
                 (long long)SN_STORE_S3_MAX_PUT);
        rc = SN_ERR_LIMIT;
        goto out;
    }

    if (sb.st_size > 0) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(err, err_size, "%s: cannot map for upload: %s", path,
                     strerror(errno));
            rc = SN_ERR_BACKEND;
            goto out;
        }
    }
    rc = put_object(st, key, map == MAP_FAILED ? NULL : map,
                    (size_t)sb.st_size, err, err_size);
    if (rc == 0)
        unlink(path);

out:
    if (map != MAP_FAILED)
        munmap(map, (size_t)sb.st_size);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- list --------------------------------------------------------------- */

/* Returns the value of a numeric character reference, or -1. */
static long parse_char_ref(const char *s, size_t len)
{
    char digits[16], *end;
    int base = 10;
    long v;

    if (len > 0 && (s[0] == 'x' || s[0] == 'X')) {
        base = 16;
        s++;
        len--;
    }
    if (len == 0 || len >= sizeof(digits))
        return -1;
    memcpy(digits, s, len);
    digits[len] = '\0';
    v = strtol(digits, &end, base);
    if (*end != '\0' || v <= 0 || v > 0x10ffff ||
        (v >= 0xd800 && v <= 0xdfff))
        return -1;
    return v;
}

/* Writes code point cp as UTF-8 to out and returns the byte count. */
static size_t put_utf8(char *out, long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decodes XML text of len bytes into out (out_size bytes, NUL included):
 * the five predefined entities and numeric references. Returns 0, or -1
 * on an unknown entity or when the text does not fit.
 */
static int xml_unescape(const char *s, size_t len, char *out,
                        size_t out_size)
{
    static const struct {
        const char *name;
        char c;
    } entities[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'},
                    {"quot", '"'}, {"apos", '\''}};
    size_t i = 0, o = 0;

    while (i < len) {
        char utf8[4];
        size_t n = 1;
        const char *piece = s + i, *semi;

        if (s[i] == '&') {
            semi = memchr(s + i, ';', len - i);
            if (semi == NULL)
                return -1;
            size_t name_len = (size_t)(semi - s - i - 1);
            const char *name = s + i + 1;
            size_t k;

            for (k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
                if (strlen(entities[k].name) == name_len &&
                    memcmp(entities[k].name, name, name_len) == 0)
                    break;
            }
            if (k < sizeof(entities) / sizeof(entities[0])) {
                utf8[0] = entities[k].c;
                n = 1;
            } else if (name_len > 1 && name[0] == '#') {
                long cp = parse_char_ref(name + 1, name_len - 1);

                if (cp < 0)
                    return -1;
                n = put_utf8(utf8, cp);
            } else {
                return -1;
            }
            piece = utf8;
            i += name_len + 2;
        } else {
            i++;
        }
        if (o + n >= out_size)
            return -1;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

/* Returns the first needle in [p, end), or NULL. */
static const char *find_text(const char *p, const char *end,
                             const char *needle)
{
    size_t n = strlen(needle);

    for (; (size_t)(end - p) >= n; p++) {
        if (memcmp(p, needle, n) == 0)
            return p;
    }
    return NULL;
}

/* Finds <tag>text</tag> in [p, end) and sets *text and *len. Returns the
 * position after the closing tag, or NULL when the element is absent. */
static const char *xml_element(const char *p, const char *end,
                               const char *tag, const char **text,
                               size_t *len)
{
    char open[64], close[64];
    const char *start, *stop;
    size_t open_len;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    open_len = strlen(open);
    start = find_text(p, end, open);
    if (start == NULL)
        return NULL;
    start += open_len;
    stop = find_text(start, end, close);
    if (stop == NULL)
        return NULL;
    *text = start;
    *len = (size_t)(stop - start);
    return stop + strlen(close);
}

/*
 * Calls each() for every <Contents> of one ListObjectsV2 page. Returns 0,
 * each()'s non-zero value, or SN_ERR_BACKEND on a malformed entry.
 */
static int list_page_entries(const char *body, size_t size,
                             const char *resource,
                             int (*each)(void *, const char *, int64_t),
                             void *opaque, char *err, size_t err_size)
{
    const char *p = body, *end = body + size, *text, *next;
    char key[SN_STORE_MAX_KEY + 1], number[32], *stop;
    size_t len;
    int rc;

    while ((next = xml_element(p, end, "Contents", &text, &len)) != NULL) {
        const char *entry = text, *entry_end = text + len, *v;
        size_t v_len;
        long long object_size;

        if (xml_element(entry, entry_end, "Key", &v, &v_len) == NULL ||
            xml_unescape(v, v_len, key, sizeof(key)) < 0 ||
            xml_element(entry, entry_end, "Size", &v, &v_len) == NULL ||
            v_len == 0 || v_len >= sizeof(number))
            goto malformed;
        memcpy(number, v, v_len);
        number[v_len] = '\0';
        object_size = strtoll(number, &stop, 10);
        if (*stop != '\0' || object_size < 0)
            goto malformed;

        rc = each(opaque, key, object_size);
        if (rc != 0)
            return rc;
        p = next;
    }
    return 0;

malformed:
    snprintf(err, err_size, "GET %s: malformed <Contents> entry in the "
             "ListObjectsV2 response (a key over %d bytes, or an invalid "
             "<Key> or <Size>)", resource, SN_STORE_MAX_KEY);
    return SN_ERR_BACKEND;
}

/*
 * Reads <NextContinuationToken> when <IsTruncated> is true into token
 * (encoded for a query). Returns 1 when there is a next page, 0 when not,
 * or SN_ERR_BACKEND.
 */
static int next_page_token(const char *body, size_t size, char *token,
                           size_t token_size, const char *resource,
                           char *err, size_t err_size)
{
    const char *end = body + size, *text;
    char raw[2048];
    size_t len;

    if (xml_element(body, end, "IsTruncated", &text, &len) == NULL ||
        len != 4 || memcmp(text, "true", 4) != 0)
        return 0;
    if (xml_element(body, end, "NextContinuationToken", &text, &len) ==
            NULL ||
        xml_unescape(text, len, raw, sizeof(raw)) < 0 ||
        sn_aws_uri_encode(raw, 0, token, token_size) < 0) {
        snprintf(err, err_size, "GET %s: truncated ListObjectsV2 response "
                 "without a usable <NextContinuationToken> (at most %zu "
                 "bytes)", resource, sizeof(raw) - 1);
        return SN_ERR_BACKEND;
    }
    return 1;
}

static int s3_list(struct sn_store *s, const char *prefix,
                   int (*each)(void *opaque, const char *key, int64_t size),
                   void *opaque, char *err, size_t err_size)
{
    struct s3_store *st = (struct s3_store *)s;
    char prefix_q[SN_STORE_MAX_KEY * 3 + 1], token[6 * 1024] = "";
    char url[SN_HTTP_URL_MAX * 3];
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    struct target t;
    int rc, more;

    /* A prefix is checked as the start of a key: "stream/" is a usable
     * prefix though not a usable key. The empty prefix lists everything. */
    if (prefix == NULL)
        prefix = "";
    if (prefix[0] != '\0') {
        snprintf(url, sizeof(url), "%.*sx", SN_STORE_MAX_KEY - 1, prefix);
        rc = strlen(prefix) < SN_STORE_MAX_KEY
             ? sn_store_key_check(s, url, err, err_size)
             : sn_store_key_check(s, prefix, err, err_size);
        if (rc < 0)
            return rc;
    }
    rc = target_init(st, NULL, &t, err, err_size);
    if (rc < 0)
        return rc;
    snprintf(t.resource, sizeof(t.resource), "s3://%s/%s*", st->bucket,
             prefix);
    if (sn_aws_uri_encode(prefix, 0, prefix_q, sizeof(prefix_q)) < 0) {
        snprintf(err, err_size, "list %s: prefix too long", t.resource);
        return SN_ERR_INPUT;
    }

    do {
        snprintf(url, sizeof(url), "%s?list-type=2&prefix=%s%s%s", t.url,
                 prefix_q, token[0] ? "&continuation-token=" : "", token);
        sn_http_request_init(&req, "GET", url);
        req.resource = t.resource;
        req.max_body = SN_STORE_S3_LIST_PAGE_MAX;
        rc = send_request(st, &req, &resp, err, err_size);
        if (rc < 0)
            goto out;

        rc = list_page_entries(resp.body, resp.body_size, t.resource, each,
                               opaque, err, err_size);
        if (rc != 0)
            goto out;
        more = next_page_token(resp.body, resp.body_size, token,
                               sizeof(token), t.resource, err, err_size);
        if (more < 0) {
            rc = more;
            goto out;
        }
        sn_http_response_release(&resp);
    } while (more);

out:
    sn_http_response_release(&resp);
    return rc;
}

int sn_store_s3_check(struct sn_store *s, char *err, size_t err_size)
{
    struct s3_store *st = (struct s3_store *)s;
    char url[SN_HTTP_URL_MAX * 3];
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    struct target t;
    int rc;

    rc = target_init(st, NULL, &t, err, err_size);
    if (rc < 0)
        return rc;
    snprintf(url, sizeof(url), "%s?list-type=2&max-keys=1", t.url);
    sn_http_request_init(&req, "GET", url);
    req.resource = t.resource;
    req.max_body = SN_STORE_S3_LIST_PAGE_MAX;
    rc = send_request(st, &req, &resp, err, err_size);
    sn_http_response_release(&resp);
    return rc;
}

/* ---- remove, scratch, close --------------------------------------------- */

static int s3_remove(struct sn_store *s, const char *key, char *err,
                     size_t err_size)
{
    struct s3_store *st = (struct s3_store *)s;
    struct sn_http_request req;
    struct sn_http_response resp;
    struct target t;
    int rc;

    rc = sn_store_key_check(s, key, err, err_size);
    if (rc < 0)
        return rc;
    rc = target_init(st, key, &t, err, err_size);
    if (rc < 0)
        return rc;

    sn_http_request_init(&req, "DELETE", t.url);
    req.resource = t.resource;
    rc = send_request(st, &req, &resp, err, err_size);
    sn_http_response_release(&resp);

    /* S3 returns 204 for a missing key. A 404 from another server means
     * the same, and removing a missing key succeeds. */
    if (rc == SN_ERR_NOT_FOUND) {
        err[0] = '\0';
        rc = 0;
    }
    return rc;
}

static int s3_scratch(struct sn_store *s, char *path, size_t path_size,
                      char *err, size_t err_size)
{
    const char *tmp = getenv("TMPDIR");
    int n;

    (void)s;
    if (tmp == NULL || tmp[0] != '/')
        tmp = "/tmp";
    n = snprintf(path, path_size, "%s/sinatra-scratch-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= path_size) {
        snprintf(err, err_size, "%s: no room for a scratch folder path in "
                 "%zu bytes", tmp, path_size);
        return SN_ERR_BACKEND;
    }
    if (mkdtemp(path) == NULL) {
        snprintf(err, err_size, "%s: cannot create a scratch folder: %s",
                 tmp, strerror(errno));
        return SN_ERR_BACKEND;
    }
    return 0;
}

static void s3_close(struct sn_store *s)
{
    struct s3_store *st = (struct s3_store *)s;
    struct pooled_client *pc, *next;

    if (st == NULL)
        return;
    for (pc = st->idle; pc != NULL; pc = next) {
        next = pc->next;
        sn_http_client_free(pc->client);
        free(pc);
    }
    pthread_mutex_destroy(&st->pool_lock);
    sn_aws_provider_free(st->provider);
    free(st);
}

static const struct sn_store_ops s3_ops = {
    .open = s3_open,
    .get = s3_get,
    .put = s3_put,
    .put_file = s3_put_file,
    .head = s3_head,
    .list = s3_list,
    .remove = s3_remove,
    .scratch = s3_scratch,
    .close = s3_close,
};

int sn_store_s3_open(const char *bucket, struct sn_store **out, char *err,
                     size_t err_size)
{
    struct s3_store *st;
    char probe[SN_HTTP_URL_MAX];
    int rc;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, err_size, "s3://%s: out of memory", bucket);
        return -ENOMEM;
    }
    st->store.ops = &s3_ops;
    pthread_mutex_init(&st->pool_lock, NULL);
    atomic_init(&st->gets, 0);
    snprintf(st->store.name, sizeof(st->store.name), "s3://%s", bucket);

    if (strlen(bucket) >= sizeof(st->bucket)) {
        snprintf(err, err_size, "s3://%s: invalid bucket name: longer than "
                 "63 bytes", bucket);
        rc = SN_ERR_INPUT;
        goto fail;
    }
    snprintf(st->bucket, sizeof(st->bucket), "%s", bucket);
    rc = sn_aws_region(st->signer.region, sizeof(st->signer.region), err,
                       err_size);
    if (rc < 0)
        goto fail;
    rc = sn_aws_endpoint("s3", st->signer.region, st->endpoint,
                         sizeof(st->endpoint), err, err_size);
    if (rc < 0)
        goto fail;
    /* sn_s3_url() checks the bucket name. */
    rc = sn_s3_url(st->endpoint, bucket, NULL, probe, sizeof(probe), err,
                   err_size);
    if (rc < 0)
        goto fail;

    rc = sn_aws_provider_new(&st->provider);
    if (rc < 0) {
        snprintf(err, err_size, "s3://%s: out of memory", bucket);
        goto fail;
    }
    st->signer.provider = st->provider;
    snprintf(st->signer.service, sizeof(st->signer.service), "s3");
    *out = &st->store;
    return 0;

fail:
    s3_close(&st->store);
    return rc;
}

long sn_store_s3_get_count(const struct sn_store *s)
{
    const struct s3_store *st = (const struct s3_store *)s;

    return atomic_load(&((struct s3_store *)st)->gets);
}
