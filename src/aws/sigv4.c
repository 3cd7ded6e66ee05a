#include "aws/sigv4.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/hex.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

/* Seven days, the longest SigV4 presigned URL AWS accepts (604800 s, the
 * maximum of --expires-in in the AWS CLI reference for "aws s3 presign"). */
#define MAX_EXPIRES_S (7 * 24 * 3600)

/* A query parameter or header of the canonical request. */
struct entry {
    char *name;
    char *value;
    size_t order;             /* position in the input, to keep sorts stable */
};

struct entries {
    struct entry *items;
    size_t n;
    size_t cap;
};

static void entries_free(struct entries *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].name);
        free(list->items[i].value);
    }
    free(list->items);
    list->items = NULL;
    list->n = 0;
    list->cap = 0;
}

/* Appends an entry that takes ownership of name and value, or frees them
 * on failure. */
static int entries_push(struct entries *list, char *name, char *value)
{
    if (name == NULL || value == NULL)
        goto fail;

    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct entry *items = realloc(list->items, cap * sizeof(*items));

        if (items == NULL)
            goto fail;
        list->items = items;
        list->cap = cap;
    }

    list->items[list->n] = (struct entry){name, value, list->n};
    list->n++;
    return 0;

fail:
    free(name);
    free(value);
    return -ENOMEM;
}

/* Orders by name, then value, then input position. */
static int compare_entries(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c == 0)
        c = strcmp(x->value, y->value);
    if (c == 0)
        c = x->order < y->order ? -1 : x->order > y->order;
    return c;
}

/* Orders by name, then input position: duplicate headers keep their order
 * when joined. */
static int compare_names(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c == 0)
        c = x->order < y->order ? -1 : x->order > y->order;
    return c;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* Converts a buffer or allocation failure into the project's codes. */
static int buf_error(int rc, const char *text_name, char *err,
                     size_t err_size)
{
    if (rc == -E2BIG) {
        set_err(err, err_size, "sigv4: %s exceeds the maximum of %d bytes",
                text_name, SN_SIGV4_MAX_TEXT);
        return SN_ERR_LIMIT;
    }
    set_err(err, err_size, "sigv4: out of memory building the %s",
            text_name);
    return -ENOMEM;
}

static void hex_encode(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];

    SHA256(data, n, digest);
    hex_encode(digest, sizeof(digest), out);
}

/* HMAC-SHA256 of msg under key into out. Returns 0 or SN_ERR_INPUT. */
static int hmac(const void *key, size_t key_size, const char *msg,
                unsigned char out[SHA256_DIGEST_LENGTH])
{
    unsigned int len = 0;

    if (key_size > 0x7fffffff)
        return SN_ERR_INPUT;
    if (HMAC(EVP_sha256(), key, (int)key_size, (const unsigned char *)msg,
             strlen(msg), out, &len) == NULL || len != SHA256_DIGEST_LENGTH)
        return SN_ERR_INPUT;
    return 0;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '~';
}

int sn_sigv4_uri_encode(struct sn_buf *out, const char *s, size_t size,
                        int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";

    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)s[i];
        char escape[3] = {'%', digits[c >> 4], digits[c & 15]};
        int rc;

        if (is_unreserved(c) || (keep_slash && c == '/'))
            rc = sn_buf_append(out, &s[i], 1);
        else
            rc = sn_buf_append(out, escape, 3);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * Decodes %XX escapes in size bytes of s and encodes the result again, so
 * that raw and already-encoded query text give the same canonical form.
 * Sets *out to a malloc'd string. Returns 0, SN_ERR_INPUT on a malformed
 * escape, or a buffer error.
 */
static int reencode(const char *s, size_t size, char **out)
{
    struct sn_buf decoded, encoded;
    int rc = 0;

    sn_buf_init(&decoded, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&encoded, SN_SIGV4_MAX_TEXT);

    for (size_t i = 0; i < size && rc == 0; i++) {
        char c = s[i];

        if (c == '%') {
            int hi = i + 2 < size ? sn_hex_value(s[i + 1]) : -1;
            int lo = i + 2 < size ? sn_hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                rc = SN_ERR_INPUT;
                goto out;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        rc = sn_buf_append(&decoded, &c, 1);
    }
    if (rc < 0)
        goto out;

    rc = sn_sigv4_uri_encode(&encoded, decoded.data ? decoded.data : "",
                             decoded.len, 0);
    if (rc < 0)
        goto out;
    *out = sn_buf_steal(&encoded);
    if (*out == NULL)
        rc = -ENOMEM;

out:
    sn_buf_release(&decoded);
    sn_buf_release(&encoded);
    return rc;
}

/*
 * Removes "." and ".." segments and empty segments from size bytes of
 * path, as RFC 3986 section 5.2.4 does for dot segments, and writes the
 * result with a leading '/' onto out. A trailing '/', or a final "." or
 * "..", leaves a trailing '/'.
 */
static int normalize_path(struct sn_buf *out, const char *path, size_t size)
{
    size_t *starts = NULL;    /* offset in out of each kept segment's '/' */
    size_t n_kept = 0, i = 0;
    int trailing_slash = 0;
    int rc = 0;

    starts = malloc((size / 2 + 1) * sizeof(*starts));
    if (starts == NULL)
        return -ENOMEM;

    while (i < size) {
        size_t start, len;

        while (i < size && path[i] == '/')
            i++;
        start = i;
        while (i < size && path[i] != '/')
            i++;
        len = i - start;
        trailing_slash = i < size || len == 0 ||
                         (len == 1 && path[start] == '.') ||
                         (len == 2 && memcmp(&path[start], "..", 2) == 0);

        if (len == 0 || (len == 1 && path[start] == '.'))
            continue;
        if (len == 2 && memcmp(&path[start], "..", 2) == 0) {
            if (n_kept > 0)
                out->len = starts[--n_kept];
            continue;
        }

        starts[n_kept++] = out->len;
        rc = sn_buf_append(out, "/", 1);
        if (rc == 0)
            rc = sn_buf_append(out, &path[start], len);
        if (rc < 0)
            goto out;
    }

    if (n_kept == 0 || trailing_slash)
        rc = sn_buf_append(out, "/", 1);

out:
    free(starts);
    return rc;
}

/* Writes the canonical URI (the second line of the canonical request). */
static int canonical_path(struct sn_buf *out, const char *path,
                          const struct sn_sigv4_options *opts)
{
    struct sn_buf normalized;
    const char *p = path;
    size_t size = strlen(path);
    int rc = 0;

    sn_buf_init(&normalized, SN_SIGV4_MAX_TEXT);

    if (opts->normalize_path) {
        rc = normalize_path(&normalized, path, size);
        if (rc < 0)
            goto out;
        p = normalized.data;
        size = normalized.len;
    }

    if (size == 0)
        rc = sn_buf_append(out, "/", 1);
    else if (opts->double_uri_encode)
        rc = sn_sigv4_uri_encode(out, p, size, 1);
    else
        rc = sn_buf_append(out, p, size);

out:
    sn_buf_release(&normalized);
    return rc;
}

/*
 * Splits query at '&' and '=' into list, each name and value encoded
 * again. A parameter without '=' gets an empty value ("?lifecycle" signs
 * as "lifecycle="), and empty parameters ("a=1&&b=2") are skipped.
 */
static int parse_query(struct entries *list, const char *query, char *err,
                       size_t err_size)
{
    const char *p = query ? query : "";

    while (*p != '\0') {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        char *name = NULL, *value = NULL;
        int rc;

        if (len == 0) {
            p++;
            continue;
        }

        rc = reencode(p, name_len, &name);
        if (rc == 0 && eq)
            rc = reencode(eq + 1, len - name_len - 1, &value);
        else if (rc == 0)
            value = strdup("");
        if (rc == 0)
            rc = entries_push(list, name, value);
        else {
            free(name);
            free(value);
        }
        if (rc == SN_ERR_INPUT) {
            set_err(err, err_size,
                    "sigv4: invalid percent escape in query parameter "
                    "\"%.*s\"", (int)(len > 200 ? 200 : len), p);
            return rc;
        }
        if (rc < 0)
            return buf_error(rc, "canonical query", err, err_size);

        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* Writes the sorted parameters as name=value joined by '&'. */
static int join_params(struct sn_buf *out, struct entries *list)
{
    int rc = 0;

    if (list->n > 1)
        qsort(list->items, list->n, sizeof(*list->items), compare_entries);
    for (size_t i = 0; i < list->n && rc == 0; i++)
        rc = sn_buf_printf(out, "%s%s=%s", i ? "&" : "", list->items[i].name,
                           list->items[i].value);
    return rc;
}

/*
 * Returns a malloc'd copy of a header value with leading and trailing
 * whitespace removed and every inner run of whitespace, line breaks of
 * folded values included, replaced by one space.
 */
static char *trim_value(const char *value)
{
    size_t n = strlen(value), j = 0;
    char *out = malloc(n + 1);
    int pending_space = 0;

    if (out == NULL)
        return NULL;

    for (size_t i = 0; i < n; i++) {
        if (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' ||
            value[i] == '\n') {
            pending_space = j > 0;
            continue;
        }
        if (pending_space)
            out[j++] = ' ';
        pending_space = 0;
        out[j++] = value[i];
    }
    out[j] = '\0';
    return out;
}

static char *lowercase_dup(const char *s)
{
    char *out = strdup(s);

    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* Checks a header name: not empty, no whitespace or ':', and not one the
 * signer adds itself. */
static int check_header_name(const char *name, int adds_content_sha256,
                             char *err, size_t err_size)
{
    static const char *const reserved[] = {
        "authorization", "x-amz-date", "x-amz-security-token"};

    if (name == NULL || name[0] == '\0' || strlen(name) > 256 ||
        strcspn(name, " \t\r\n:") != strlen(name)) {
        set_err(err, err_size, "sigv4: invalid header name \"%.64s\"",
                name ? name : "(null)");
        return SN_ERR_INPUT;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            set_err(err, err_size,
                    "sigv4: request must not contain header %s, "
                    "because the signer adds it", name);
            return SN_ERR_INPUT;
        }
    }
    if (adds_content_sha256 && strcasecmp(name, "x-amz-content-sha256") == 0) {
        set_err(err, err_size,
                "sigv4: request contains x-amz-content-sha256 while "
                "add_content_sha256_header is set");
        return SN_ERR_INPUT;
    }
    return 0;
}

/* Collects the request's headers into list, names lowercased and values
 * trimmed. */
static int collect_headers(struct entries *list,
                           const struct sn_sigv4_request *req,
                           const struct sn_sigv4_options *opts, int presign,
                           char *err, size_t err_size)
{
    int has_host = 0;

    for (size_t i = 0; i < req->n_headers; i++) {
        const struct sn_sigv4_header *h = &req->headers[i];
        int rc = check_header_name(h->name, !presign &&
                                   opts->add_content_sha256_header,
                                   err, err_size);

        if (rc < 0)
            return rc;
        if (h->value == NULL) {
            set_err(err, err_size, "sigv4: header %s has no value", h->name);
            return SN_ERR_INPUT;
        }
        if (strlen(h->value) > SN_SIGV4_MAX_TEXT) {
            set_err(err, err_size,
                    "sigv4: header %s value exceeds the maximum of %d bytes",
                    h->name, SN_SIGV4_MAX_TEXT);
            return SN_ERR_LIMIT;
        }

        has_host |= strcasecmp(h->name, "host") == 0;
        rc = entries_push(list, lowercase_dup(h->name), trim_value(h->value));
        if (rc < 0)
            return buf_error(rc, "canonical headers", err, err_size);
    }

    if (!has_host) {
        set_err(err, err_size, "sigv4: request has no host header");
        return SN_ERR_INPUT;
    }
    return 0;
}

/*
 * Sorts the headers and writes the canonical headers ("name:v1,v2\n" per
 * name, duplicates joined with commas in input order) and the signed
 * header list ("a;b;c").
 */
static int join_headers(struct sn_buf *canonical, struct sn_buf *signed_names,
                        struct entries *list)
{
    int rc = 0;

    if (list->n > 1)
        qsort(list->items, list->n, sizeof(*list->items), compare_names);
    for (size_t i = 0; i < list->n && rc == 0; i++) {
        const struct entry *e = &list->items[i];
        int same = i > 0 && strcmp(list->items[i - 1].name, e->name) == 0;

        if (same) {
            rc = sn_buf_printf(canonical, ",%s", e->value);
            continue;
        }
        rc = sn_buf_printf(canonical, "%s%s:%s", i ? "\n" : "", e->name,
                           e->value);
        if (rc == 0)
            rc = sn_buf_printf(signed_names, "%s%s", i ? ";" : "", e->name);
    }
    if (rc == 0 && list->n > 0)
        rc = sn_buf_append(canonical, "\n", 1);
    return rc;
}

static int is_hex_digest(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++)
        if (sn_hex_value(s[i]) < 0 || isupper((unsigned char)s[i]))
            return 0;
    return 1;
}


/* Everything one signature needs, built step by step by sign(). */
struct signing {
    const struct sn_sigv4_credentials *creds;
    const struct sn_sigv4_request *req;
    const struct sn_sigv4_options *opts;
    int presign;
    int has_token;            /* a session token is sent */
    int signs_token;          /* the token is sent and signed */
    char date[9];             /* "20150830" */
    char payload_hash[65];    /* hex digest, or UNSIGNED-PAYLOAD */
    struct sn_buf scope;      /* "20150830/us-east-1/s3/aws4_request" */
    struct sn_buf credential; /* "AKID/" and the scope */
    struct sn_buf canonical_headers;
    struct sn_buf signed_names;
    struct sn_buf sent_params; /* presign: X-Amz-* parameters as sent */
    struct entries params;
    struct entries headers;
};

static void signing_release(struct signing *s)
{
    sn_buf_release(&s->scope);
    sn_buf_release(&s->credential);
    sn_buf_release(&s->canonical_headers);
    sn_buf_release(&s->signed_names);
    sn_buf_release(&s->sent_params);
    entries_free(&s->params);
    entries_free(&s->headers);
}

static int check_inputs(const struct sn_sigv4_credentials *creds,
                        const struct sn_sigv4_request *req,
                        const struct sn_sigv4_options *opts, int presign,
                        char *err, size_t err_size)
{
    if (creds == NULL || creds->access_key_id == NULL ||
        creds->access_key_id[0] == '\0' || creds->secret_access_key == NULL ||
        creds->secret_access_key[0] == '\0') {
        set_err(err, err_size, "sigv4: missing access key id or secret");
        return SN_ERR_INPUT;
    }
    if (req == NULL || req->method == NULL || req->method[0] == '\0' ||
        req->path == NULL || (req->n_headers > 0 && req->headers == NULL)) {
        set_err(err, err_size, "sigv4: request has no method or path");
        return SN_ERR_INPUT;
    }
    if (opts == NULL || opts->region == NULL || opts->region[0] == '\0' ||
        opts->service == NULL || opts->service[0] == '\0' ||
        strchr(opts->region, '/') || strchr(opts->service, '/')) {
        set_err(err, err_size, "sigv4: missing or invalid region or service");
        return SN_ERR_INPUT;
    }
    if (presign && (opts->expires_s < 1 || opts->expires_s > MAX_EXPIRES_S)) {
        set_err(err, err_size,
                "sigv4: presign expiry %lld s is outside 1 to %d s",
                (long long)opts->expires_s, MAX_EXPIRES_S);
        return SN_ERR_INPUT;
    }
    if (req->payload_hash && !is_hex_digest(req->payload_hash) &&
        strcmp(req->payload_hash, SN_SIGV4_UNSIGNED_PAYLOAD) != 0) {
        set_err(err, err_size,
                "sigv4: payload hash \"%.80s\" is neither 64 lowercase hex "
                "digits nor UNSIGNED-PAYLOAD", req->payload_hash);
        return SN_ERR_INPUT;
    }
    if (!req->payload_hash && req->payload_size > 0 && req->payload == NULL) {
        set_err(err, err_size, "sigv4: payload size without payload");
        return SN_ERR_INPUT;
    }
    return 0;
}

/* Fills the dates, payload hash, scope and credential. */
static int prepare(struct signing *s, struct sn_sigv4_result *out,
                   char *err, size_t err_size)
{
    const struct sn_sigv4_options *opts = s->opts;
    const char *token = s->creds->session_token;
    time_t t = (time_t)opts->time;
    struct tm tm;
    int rc;

    if ((int64_t)t != opts->time || gmtime_r(&t, &tm) == NULL ||
        tm.tm_year < 70 || tm.tm_year + 1900 > 9999) {
        set_err(err, err_size, "sigv4: signing time %lld is out of range",
                (long long)opts->time);
        return SN_ERR_INPUT;
    }
    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(s->date, out->amz_date, 8);
    s->date[8] = '\0';

    if (s->req->payload_hash)
        snprintf(s->payload_hash, sizeof(s->payload_hash), "%s",
                 s->req->payload_hash);
    else
        sha256_hex(s->req->payload ? s->req->payload : "",
                   s->req->payload_size, s->payload_hash);

    s->has_token = token != NULL && token[0] != '\0';
    s->signs_token = s->has_token && !opts->omit_session_token;

    rc = sn_buf_printf(&s->scope, "%s/%s/%s/aws4_request", s->date,
                       opts->region, opts->service);
    if (rc == 0)
        rc = sn_buf_printf(&s->credential, "%s/%s", s->creds->access_key_id,
                           s->scope.data);
    if (rc < 0)
        return buf_error(rc, "credential scope", err, err_size);
    return 0;
}

/* Adds the headers the header variant signs: x-amz-date, the session
 * token and x-amz-content-sha256. */
static int add_signer_headers(struct signing *s,
                              const struct sn_sigv4_result *out)
{
    int rc;

    rc = entries_push(&s->headers, strdup("x-amz-date"),
                      strdup(out->amz_date));
    if (rc == 0 && s->signs_token)
        rc = entries_push(&s->headers, strdup("x-amz-security-token"),
                          trim_value(s->creds->session_token));
    if (rc == 0 && s->opts->add_content_sha256_header)
        rc = entries_push(&s->headers, strdup("x-amz-content-sha256"),
                          strdup(s->payload_hash));
    return rc;
}

/*
 * Adds the X-Amz-* query parameters of a presigned URL, to the canonical
 * list and, in the order aws-c-auth sends them, to s->sent_params. The
 * session token is sent even when omit_session_token keeps it out of the
 * signature.
 */
static int add_presign_params(struct signing *s,
                              const struct sn_sigv4_result *out)
{
    char expires[24];
    const struct {
        const char *name;
        const char *value;
        int is_signed;
    } params[] = {
        {"X-Amz-Algorithm", ALGORITHM, 1},
        {"X-Amz-Credential", s->credential.data, 1},
        {"X-Amz-Date", out->amz_date, 1},
        {"X-Amz-SignedHeaders", s->signed_names.data, 1},
        {"X-Amz-Expires", expires, 1},
        {"X-Amz-Security-Token", s->creds->session_token, s->signs_token},
    };
    size_t n = s->has_token ? 6 : 5;
    int rc = 0;

    snprintf(expires, sizeof(expires), "%lld", (long long)s->opts->expires_s);

    for (size_t i = 0; i < n && rc == 0; i++) {
        struct sn_buf value;

        sn_buf_init(&value, SN_SIGV4_MAX_TEXT);
        rc = sn_sigv4_uri_encode(&value, params[i].value,
                                 strlen(params[i].value), 0);
        if (rc == 0)
            rc = sn_buf_printf(&s->sent_params, "%s%s=%s", i ? "&" : "",
                               params[i].name, value.data ? value.data : "");
        if (rc == 0 && params[i].is_signed)
            rc = entries_push(&s->params, strdup(params[i].name),
                              sn_buf_steal(&value));
        sn_buf_release(&value);
    }
    return rc;
}

/* Builds the canonical request into *canonical. */
static int build_canonical(struct signing *s, struct sn_sigv4_result *out,
                           struct sn_buf *canonical, char *err,
                           size_t err_size)
{
    struct sn_buf query;
    int rc;

    sn_buf_init(&query, SN_SIGV4_MAX_TEXT);

    rc = collect_headers(&s->headers, s->req, s->opts, s->presign, err,
                         err_size);
    if (rc < 0)
        goto out;
    rc = s->presign ? 0 : add_signer_headers(s, out);
    if (rc == 0)
        rc = join_headers(&s->canonical_headers, &s->signed_names,
                          &s->headers);
    if (rc < 0) {
        rc = buf_error(rc, "canonical headers", err, err_size);
        goto out;
    }

    rc = parse_query(&s->params, s->req->query, err, err_size);
    if (rc < 0)
        goto out;
    rc = s->presign ? add_presign_params(s, out) : 0;
    if (rc == 0)
        rc = join_params(&query, &s->params);
    if (rc < 0) {
        rc = buf_error(rc, "canonical query", err, err_size);
        goto out;
    }

    rc = sn_buf_printf(canonical, "%s\n", s->req->method);
    if (rc == 0)
        rc = canonical_path(canonical, s->req->path, s->opts);
    if (rc == 0)
        rc = sn_buf_printf(canonical, "\n%s\n%s\n%s\n%s",
                           query.data ? query.data : "",
                           s->canonical_headers.data, s->signed_names.data,
                           s->payload_hash);
    if (rc < 0)
        rc = buf_error(rc, "canonical request", err, err_size);

out:
    sn_buf_release(&query);
    return rc;
}

/*
 * Derives the signing key (HMAC chain over date, region, service and
 * "aws4_request", keyed first by "AWS4" and the secret) and signs the
 * string to sign with it.
 */
static int compute_signature(struct signing *s, struct sn_sigv4_result *out,
                             char *err, size_t err_size)
{
    const char *steps[] = {s->date, s->opts->region, s->opts->service,
                           "aws4_request", out->string_to_sign};
    unsigned char key[SHA256_DIGEST_LENGTH], next[SHA256_DIGEST_LENGTH];
    struct sn_buf secret;
    int rc;

    sn_buf_init(&secret, SN_SIGV4_MAX_TEXT);
    rc = sn_buf_printf(&secret, "AWS4%s", s->creds->secret_access_key);
    if (rc < 0) {
        rc = buf_error(rc, "signing key", err, err_size);
        goto out;
    }

    rc = hmac(secret.data, secret.len, steps[0], key);
    for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]) && rc == 0; i++) {
        rc = hmac(key, sizeof(key), steps[i], next);
        memcpy(key, next, sizeof(key));
    }
    if (rc < 0) {
        set_err(err, err_size, "sigv4: HMAC-SHA256 failed in libcrypto");
        goto out;
    }
    hex_encode(key, sizeof(key), out->signature);

out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(next, sizeof(next));
    if (secret.data)
        OPENSSL_cleanse(secret.data, secret.len);
    sn_buf_release(&secret);
    return rc;
}

/* Hands the caller the headers to add: token, date, content hash and
 * Authorization. */
static int fill_headers(struct signing *s, struct sn_sigv4_result *out)
{
    struct sn_buf auth;
    int rc;

    sn_buf_init(&auth, SN_SIGV4_MAX_TEXT);
    rc = sn_buf_printf(&auth,
                       ALGORITHM " Credential=%s, SignedHeaders=%s, "
                       "Signature=%s",
                       s->credential.data, s->signed_names.data,
                       out->signature);
    if (rc < 0) {
        sn_buf_release(&auth);
        return rc;
    }

    if (s->has_token)
        out->headers[out->n_headers++] = (struct sn_sigv4_header){
            "X-Amz-Security-Token", strdup(s->creds->session_token)};
    out->headers[out->n_headers++] =
        (struct sn_sigv4_header){"X-Amz-Date", strdup(out->amz_date)};
    if (s->opts->add_content_sha256_header)
        out->headers[out->n_headers++] = (struct sn_sigv4_header){
            "x-amz-content-sha256", strdup(s->payload_hash)};
    out->headers[out->n_headers++] =
        (struct sn_sigv4_header){"Authorization", sn_buf_steal(&auth)};

    for (size_t i = 0; i < out->n_headers; i++)
        if (out->headers[i].value == NULL)
            return -ENOMEM;
    return 0;
}

/* Builds the query to send: the request's own, the X-Amz-* parameters
 * and the signature. */
static int fill_query(struct signing *s, struct sn_sigv4_result *out)
{
    const char *own = s->req->query ? s->req->query : "";
    struct sn_buf query;
    int rc;

    sn_buf_init(&query, SN_SIGV4_MAX_TEXT);
    rc = sn_buf_printf(&query, "%s%s%s&X-Amz-Signature=%s", own,
                       own[0] ? "&" : "", s->sent_params.data,
                       out->signature);
    if (rc < 0) {
        sn_buf_release(&query);
        return rc;
    }
    out->query = sn_buf_steal(&query);
    return out->query ? 0 : -ENOMEM;
}

static int sign(const struct sn_sigv4_credentials *creds,
                const struct sn_sigv4_request *req,
                const struct sn_sigv4_options *opts, int presign,
                struct sn_sigv4_result *out, char *err, size_t err_size)
{
    struct signing s = {.creds = creds, .req = req, .opts = opts,
                        .presign = presign};
    struct sn_buf canonical, to_sign;
    char digest[65];
    int rc;

    memset(out, 0, sizeof(*out));
    sn_buf_init(&canonical, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&to_sign, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&s.scope, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&s.credential, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&s.canonical_headers, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&s.signed_names, SN_SIGV4_MAX_TEXT);
    sn_buf_init(&s.sent_params, SN_SIGV4_MAX_TEXT);

    rc = check_inputs(creds, req, opts, presign, err, err_size);
    if (rc == 0)
        rc = prepare(&s, out, err, err_size);
    if (rc == 0)
        rc = build_canonical(&s, out, &canonical, err, err_size);
    if (rc < 0)
        goto out;

    sha256_hex(canonical.data, canonical.len, digest);
    rc = sn_buf_printf(&to_sign, ALGORITHM "\n%s\n%s\n%s", out->amz_date,
                       s.scope.data, digest);
    if (rc < 0) {
        rc = buf_error(rc, "string to sign", err, err_size);
        goto out;
    }
    out->canonical_request = sn_buf_steal(&canonical);
    out->string_to_sign = sn_buf_steal(&to_sign);
    if (out->canonical_request == NULL || out->string_to_sign == NULL) {
        rc = buf_error(-ENOMEM, "string to sign", err, err_size);
        goto out;
    }

    rc = compute_signature(&s, out, err, err_size);
    if (rc < 0)
        goto out;
    rc = presign ? fill_query(&s, out) : fill_headers(&s, out);
    if (rc < 0)
        rc = buf_error(rc, presign ? "presigned query" : "Authorization",
                       err, err_size);

out:
    if (rc < 0)
        sn_sigv4_result_release(out);
    sn_buf_release(&canonical);
    sn_buf_release(&to_sign);
    signing_release(&s);
    return rc;
}

int sn_sigv4_sign(const struct sn_sigv4_credentials *creds,
                  const struct sn_sigv4_request *req,
                  const struct sn_sigv4_options *opts,
                  struct sn_sigv4_result *out, char *err, size_t err_size)
{
    return sign(creds, req, opts, 0, out, err, err_size);
}

int sn_sigv4_presign(const struct sn_sigv4_credentials *creds,
                     const struct sn_sigv4_request *req,
                     const struct sn_sigv4_options *opts,
                     struct sn_sigv4_result *out, char *err,
                     size_t err_size)
{
    return sign(creds, req, opts, 1, out, err, err_size);
}

void sn_sigv4_result_release(struct sn_sigv4_result *r)
{
    if (r == NULL)
        return;

    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->query);
    for (size_t i = 0; i < r->n_headers; i++)
        free((char *)r->headers[i].value);
    memset(r, 0, sizeof(*r));
}
