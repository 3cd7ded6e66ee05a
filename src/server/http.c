#include "server/http.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/hex.h"
#include "util/utf8.h"

static const struct sn_http_type types[] = {
    {".m3u8", "application/vnd.apple.mpegurl", SN_CACHE_PLAYLIST, 1},
    {".m4s", "video/iso.segment", SN_CACHE_IMMUTABLE, 1},
    {".mp4", "video/mp4", SN_CACHE_IMMUTABLE, 1},
    {".ts", "video/mp2t", SN_CACHE_IMMUTABLE, 1},
    {".aac", "audio/aac", SN_CACHE_IMMUTABLE, 1},
    {".jpg", "image/jpeg", SN_CACHE_IMMUTABLE, 1},
    {".json", "application/json", SN_CACHE_REVALIDATE, 1},
    {".html", "text/html; charset=utf-8", SN_CACHE_REVALIDATE, 0},
    {".js", "text/javascript; charset=utf-8", SN_CACHE_REVALIDATE, 0},
    {".css", "text/css; charset=utf-8", SN_CACHE_REVALIDATE, 0},
    {".svg", "image/svg+xml", SN_CACHE_REVALIDATE, 0},
    {".png", "image/png", SN_CACHE_REVALIDATE, 0},
    {".ico", "image/x-icon", SN_CACHE_REVALIDATE, 0},
    {".txt", "text/plain; charset=utf-8", SN_CACHE_REVALIDATE, 0},
};

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed",
                                        "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};

const struct sn_http_type *sn_http_type_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot == NULL || strchr(dot, '/') != NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(dot, types[i].extension) == 0)
            return &types[i];
    }
    return NULL;
}

static int component_valid(const char *start, size_t len)
{
    if (len == 0 || start[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)start[i];

        if (c < 0x20 || c == 0x7f || c == '\\')
            return 0;
    }
    return 1;
}

int sn_http_path_valid(const char *path)
{
    size_t len = strlen(path);
    int depth = 0;

    if (len == 0 || len > SN_HTTP_MAX_PATH)
        return 0;

    for (const char *p = path;; depth++) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);

        if (depth == SN_HTTP_MAX_DEPTH || !component_valid(p, n))
            return 0;
        if (slash == NULL)
            return 1;
        p = slash + 1;
    }
}

size_t sn_http_unescape(char *s)
{
    char *out = s;

    for (const char *in = s; *in; out++) {
        int high = in[0] == '%' ? sn_hex_value(in[1]) : -1;
        int low = high >= 0 ? sn_hex_value(in[2]) : -1;

        if (low < 0) {
            *out = *in++;
            continue;
        }
        *out = (char)(high * 16 + low);
        if (*out == '\0')
            *out = SN_HTTP_NUL_STAND_IN;
        in += 3;
    }
    *out = '\0';
    return (size_t)(out - s);
}

/* Parses decimal digits at *p, saturating at INT64_MAX. Returns 0 and
 * advances *p, or -1 when no digit is there. */
static int parse_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        int digit = *s - '0';

        v = v > (INT64_MAX - digit) / 10 ? INT64_MAX : v * 10 + digit;
    }
    *p = s;
    *out = v;
    return 0;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

enum sn_http_range sn_http_parse_range(const char *value, int64_t size,
                                       int64_t *first, int64_t *last)
{
    const char *p = value;
    int64_t a = 0, b = INT64_MAX;
    int suffix = 0;

    if (strncasecmp(p, "bytes=", 6) != 0 || strchr(p, ',') != NULL)
        return SN_RANGE_NONE;
    p = skip_space(p + 6);

    if (*p == '-') {
        suffix = 1;
        p++;
        if (parse_digits(&p, &b) < 0)
            return SN_RANGE_UNSATISFIABLE;
    } else {
        if (parse_digits(&p, &a) < 0 || *p++ != '-')
            return SN_RANGE_UNSATISFIABLE;
        if (*p >= '0' && *p <= '9')
            parse_digits(&p, &b);
    }
    if (*skip_space(p) != '\0')
        return SN_RANGE_UNSATISFIABLE;

    if (suffix) {
        /* The last b bytes; a suffix longer than the file is all of it. */
        if (b == 0 || size == 0)
            return SN_RANGE_UNSATISFIABLE;
        a = b >= size ? 0 : size - b;
        b = size - 1;
    } else if (b < a || a >= size) {
        return SN_RANGE_UNSATISFIABLE;
    }

    *first = a;
    *last = b >= size ? size - 1 : b;
    return SN_RANGE_PARTIAL;
}

int sn_http_etag_matches(const char *if_none_match, const char *etag)
{
    const char *p = skip_space(if_none_match);
    size_t etag_len = strlen(etag);

    if (strcmp(p, "*") == 0)
        return 1;

    while (*p != '\0') {
        const char *end;

        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            return 0;
        end = strchr(p + 1, '"');
        if (end == NULL)
            return 0;
        if ((size_t)(end + 1 - p) == etag_len &&
            memcmp(p, etag, etag_len) == 0)
            return 1;

        p = skip_space(end + 1);
        if (*p != ',' && *p != '\0')
            return 0;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
    }
    return 0;
}

/* Returns 0 when the parameters of one Accept-Encoding entry carry q=0
 * (any of "0", "0.", "0.000"), else 1. */
static int q_positive(const char *params, size_t len)
{
    for (size_t i = 0; i + 2 <= len; i++) {
        const char *q = params + i;

        if ((q[0] != 'q' && q[0] != 'Q') || q[1] != '=')
            continue;
        q += 2;
        if (*q != '0')
            return 1;
        for (q++; *q == '.' || *q == '0'; q++)
            ;
        return (*q >= '1' && *q <= '9');
    }
    return 1;
}

int sn_http_accepts_gzip(const char *accept_encoding)
{
    const char *p = accept_encoding;
    int wildcard = 0;

    while (*p != '\0') {
        size_t entry, token;

        p = skip_space(p);
        entry = strcspn(p, ",");
        token = strcspn(p, " \t;,");

        if ((token == 4 && strncasecmp(p, "gzip", 4) == 0) ||
            (token == 6 && strncasecmp(p, "x-gzip", 6) == 0))
            return q_positive(p + token, entry - token);
        if (token == 1 && p[0] == '*')
            wildcard = q_positive(p + token, entry - token);

        p += entry;
        if (*p == ',')
            p++;
    }
    return wildcard;
}

int sn_http_same_origin(const char *origin, const char *host)
{
    const char *rest;

    if (origin == NULL)
        return 1;
    if (host == NULL)
        return 0;

    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return 0;
    return strcasecmp(rest, host) == 0;
}

int sn_http_parse_length(const char *value, int64_t *out)
{
    const char *p = value;
    int64_t v;

    if (parse_digits(&p, &v) < 0 || *p != '\0' || v == INT64_MAX)
        return -1;
    *out = v;
    return 0;
}

int sn_http_lengths_agree(const char *a, const char *b)
{
    int64_t x, y;

    return sn_http_parse_length(a, &x) == 0 &&
           sn_http_parse_length(b, &y) == 0 && x == y;
}

/* Returns 1 when s is empty or decimal digits only: the port of a Host
 * value (RFC 9110 §4.2.1 allows an empty one). */
static int port_valid(const char *s)
{
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    return 1;
}

int sn_http_host_name(const char *value, char *name, size_t name_size)
{
    const char *start = value, *end, *port;
    size_t n;

    if (value[0] == '[') {
        start = value + 1;
        end = strchr(start, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -1;
        port = end[1] == ':' ? end + 2 : end + 1;
    } else {
        end = strchr(value, ':');
        port = end != NULL ? end + 1 : "";
        if (end == NULL)
            end = value + strlen(value);
    }

    n = (size_t)(end - start);
    if (n == 0 || n >= name_size || !port_valid(port) ||
        memchr(start, '[', n) != NULL)
        return -1;
    memcpy(name, start, n);
    name[n] = '\0';
    return 0;
}

int sn_http_loopback_name(const char *name)
{
    struct in_addr v4;
    struct in6_addr v6;

    if (strcasecmp(name, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, name, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, name, &v6) == 1 &&
           memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
}

int sn_http_host_allowed(const char *value, const char *configured)
{
    char name[256], own[256];

    if (sn_http_host_name(value, name, sizeof(name)) < 0)
        return 0;
    if (sn_http_loopback_name(name))
        return 1;

    /* The configured host may come bracketed, as in "--host [::1]". */
    if (configured == NULL ||
        sn_http_host_name(configured, own, sizeof(own)) < 0)
        snprintf(own, sizeof(own), "%s", configured ? configured : "");
    return strcasecmp(name, own) == 0;
}

const char *sn_http_quote(const char *s, char *out)
{
    size_t n = strlen(s);

    if (n <= SN_HTTP_QUOTE_MAX) {
        memcpy(out, s, n + 1);
        return out;
    }

    /* No character is cut in half, so jansson still takes the message. */
    n = sn_utf8_cut(s, n, SN_HTTP_QUOTE_MAX);
    memcpy(out, s, n);
    memcpy(out + n, "...", 4);
    return out;
}

void sn_http_format_date(int64_t unix_s, char *out, size_t out_size)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, out_size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             day_names[tm.tm_wday], tm.tm_mday, month_names[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int sn_http_parse_date(const char *value, int64_t *unix_s)
{
    char day[4], month[4];
    struct tm tm = {0};
    int consumed = 0;
    int mon = -1;

    if (sscanf(value, "%3s, %d %3s %d %d:%d:%d GMT%n", day, &tm.tm_mday,
               month, &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &consumed) != 7 || consumed == 0 || value[consumed] != '\0')
        return -1;
    for (int i = 0; i < 12; i++) {
        if (strcmp(month, month_names[i]) == 0)
            mon = i;
    }
    if (mon < 0 || tm.tm_year < 1970 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return -1;

    tm.tm_mon = mon;
    tm.tm_year -= 1900;
    *unix_s = (int64_t)timegm(&tm);
    return 0;
}

void sn_http_format_iso8601(int64_t unix_ms, char *out, size_t out_size)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
}

int sn_http_playlist_final(const char *tail, size_t size)
{
    static const char tag[] = "#EXT-X-ENDLIST";
    size_t n = sizeof(tag) - 1;

    for (size_t i = 0; i + n <= size; i++) {
        if (memcmp(tail + i, tag, n) == 0)
            return 1;
    }
    return 0;
}
