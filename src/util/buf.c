#include "util/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sn_buf_init(struct sn_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sn_buf_release(struct sn_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static int reserve(struct sn_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap = b->cap ? b->cap : 256;
    char *data;

    if (extra > b->max || b->len + extra > b->max)
        return -E2BIG;
    if (need <= b->cap)
        return 0;

    while (cap < need)
        cap *= 2;
    data = realloc(b->data, cap);
    if (data == NULL)
        return -ENOMEM;

    b->data = data;
    b->cap = cap;
    return 0;
}

int sn_buf_append(struct sn_buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);

    if (rc < 0)
        return rc;

    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sn_buf_vprintf(struct sn_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    int n, rc;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return -EINVAL;

    rc = reserve(b, (size_t)n);
    if (rc < 0)
        return rc;

    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sn_buf_printf(struct sn_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = sn_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *sn_buf_steal(struct sn_buf *b)
{
    char *data = b->data;

    if (data == NULL)
        data = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return data;
}
