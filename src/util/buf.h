/*
 * Growable byte buffer with a hard maximum, for text built in memory
 * (playlists, JSON lines). Appending past the maximum fails instead of
 * growing without bound.
 */
#ifndef SN_UTIL_BUF_H
#define SN_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct sn_buf {
    char *data;               /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
    size_t max;               /* appends that would pass this fail */
};

/* Initialises an empty buffer that may grow up to max bytes. */
void sn_buf_init(struct sn_buf *b, size_t max);

/* Frees the contents; the buffer is empty and reusable afterwards. */
void sn_buf_release(struct sn_buf *b);

/* Appends n bytes. Returns 0, -ENOMEM, or -E2BIG past the maximum. */
int sn_buf_append(struct sn_buf *b, const void *data, size_t n);

/* Appends formatted text; same returns as sn_buf_append(). */
int sn_buf_printf(struct sn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int sn_buf_vprintf(struct sn_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Hands the contents to the caller (who frees them) and empties b. */
char *sn_buf_steal(struct sn_buf *b);

#endif
