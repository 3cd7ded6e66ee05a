/*
 * HTTP helpers of the server that need no socket and no libmicrohttpd:
 * header parsing (Range, If-None-Match, Accept-Encoding, dates), path
 * checks and the table of served file types. Pure functions, safe from
 * any thread, tested in tests/server/test_http_unit.c.
 */
#ifndef SN_SERVER_HTTP_H
#define SN_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Maximum number of components of a path under a served folder. */
#define SN_HTTP_MAX_DEPTH 16

/* Maximum length of a path under a served folder, in bytes. */
#define SN_HTTP_MAX_PATH 1024

/*
 * The byte that percent-decoding writes for "%00". A NUL would end the C
 * string early ("a.mp4%00.jpg" would name "a.mp4"), so the decoder writes
 * a control character instead, which every path and name check rejects.
 * A decoded name holding it came from "%00" or "%01": error messages say
 * so, because JSON shows the byte as \u0001.
 */
#define SN_HTTP_NUL_STAND_IN '\x01'

/* How long clients and caches may keep a file. */
enum sn_http_cache {
    SN_CACHE_IMMUTABLE,       /* segments, init segments, posters */
    SN_CACHE_PLAYLIST,        /* depends on #EXT-X-ENDLIST */
    SN_CACHE_REVALIDATE,      /* "no-cache": revalidate with the ETag */
};

/* One served file type, looked up by the name's extension. */
struct sn_http_type {
    const char *extension;    /* with the dot: ".m3u8" */
    const char *content_type;
    enum sn_http_cache cache;
    int hls;                  /* 1 when served under /hls/ */
};

/* Returns the type of a file name by its extension (case-sensitive), or
 * NULL for an extension not in the table. */
const struct sn_http_type *sn_http_type_of(const char *name);

/*
 * Returns 1 when path is a safe relative path below a served folder, else
 * 0. A safe path has 1 to SN_HTTP_MAX_PATH bytes and at most
 * SN_HTTP_MAX_DEPTH components separated by single '/'. No component is
 * empty or starts with '.' (so no "." or ".."), and no byte is a
 * backslash or a control character.
 */
int sn_http_path_valid(const char *path);

/*
 * Percent-decodes s in place and returns the new length. "%41" becomes
 * "A", an invalid escape stays as it is, and '+' stays '+' because it is
 * not a space in a path. A decoded NUL becomes SN_HTTP_NUL_STAND_IN.
 */
size_t sn_http_unescape(char *s);

enum sn_http_range {
    SN_RANGE_NONE,            /* no usable Range: send the whole file */
    SN_RANGE_PARTIAL,         /* send [*first, *last] with 206 */
    SN_RANGE_UNSATISFIABLE,   /* send 416 */
};

/*
 * Parses a Range header value against a file of size bytes (RFC 9110
 * §14.1.2): "bytes=a-b", "bytes=a-" and "bytes=-n". A last position past
 * the end is clamped. A list of several ranges, or a unit other than
 * bytes, yields SN_RANGE_NONE, so the whole file goes out (RFC 9110 lets
 * a server ignore Range). A malformed byte range, a first position at or
 * past the end, and "-0" yield SN_RANGE_UNSATISFIABLE. Sets *first and
 * *last only for SN_RANGE_PARTIAL.
 */
enum sn_http_range sn_http_parse_range(const char *value, int64_t size,
                                       int64_t *first, int64_t *last);

/*
 * Returns 1 when an If-None-Match value matches etag (a quoted strong
 * entity tag) by weak comparison: "*", or a list entry equal to etag with
 * or without a "W/" prefix. A malformed list matches nothing.
 */
int sn_http_etag_matches(const char *if_none_match, const char *etag);

/* Returns 1 when an Accept-Encoding value accepts gzip (as "gzip",
 * "x-gzip" or "*", with a q-value above 0). */
int sn_http_accepts_gzip(const char *accept_encoding);

/*
 * Returns 1 when an Origin header value names the same origin as the Host
 * header ("http://" or "https://" followed by host, compared without
 * case). A NULL origin (not a browser) counts as the same origin.
 */
int sn_http_same_origin(const char *origin, const char *host);

/* Parses a Content-Length value: decimal digits only, at most INT64_MAX.
 * Returns 0 and *out, or -1. */
int sn_http_parse_length(const char *value, int64_t *out);

/*
 * Returns 1 when two Content-Length values of one request state the same
 * length ("42" and "042"), else 0, also when either is invalid. RFC 9112
 * §6.3 requires rejecting a request whose Content-Length fields differ.
 */
int sn_http_lengths_agree(const char *a, const char *b);

/*
 * Copies the host of a Host header value ("example.org:8080", "[::1]:80",
 * "127.0.0.1") into name, without the port and the brackets. Returns 0,
 * or -1 for an empty or malformed value or a host of name_size bytes or
 * more.
 */
int sn_http_host_name(const char *value, char *name, size_t name_size);

/* Returns 1 when name (a host without brackets or port) is a loopback
 * host: "localhost" in any case, an IPv4 address in 127.0.0.0/8, or
 * "::1". */
int sn_http_loopback_name(const char *name);

/*
 * Returns 1 when a Host header value may reach a server that listens on a
 * loopback address and was configured with the host name configured: the
 * value names a loopback host or configured (compared without case), with
 * or without a port. Any other host is a DNS rebinding attempt: a web
 * page whose name resolves to 127.0.0.1 would otherwise count as the
 * server's own origin.
 */
int sn_http_host_allowed(const char *value, const char *configured);

/* Maximum bytes of a client's path or name quoted in an error message,
 * so that the cause after it still fits in the message. */
#define SN_HTTP_QUOTE_MAX 200

/*
 * Copies s into out (at least SN_HTTP_QUOTE_MAX + 4 bytes) and returns
 * out. A string over SN_HTTP_QUOTE_MAX bytes is cut there, before an
 * incomplete UTF-8 sequence, and "..." is appended.
 */
const char *sn_http_quote(const char *s, char *out);

/* Formats a Unix time as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")
 * into out, which has room for at least 30 bytes. */
void sn_http_format_date(int64_t unix_s, char *out, size_t out_size);

/* Parses an IMF-fixdate. Returns 0 and *unix_s, or -1 for any other form
 * (RFC 9110 lets a server ignore a date it cannot parse). */
int sn_http_parse_date(const char *value, int64_t *unix_s);

/* Formats Unix milliseconds as ISO 8601 UTC ("2024-05-01T12:00:00.250Z")
 * into out, which has room for at least 32 bytes. */
void sn_http_format_iso8601(int64_t unix_ms, char *out, size_t out_size);

/* Returns 1 when the last tail bytes of a playlist contain
 * "#EXT-X-ENDLIST", which marks it final (RFC 8216 §4.3.3.4). */
int sn_http_playlist_final(const char *tail, size_t size);

#endif
