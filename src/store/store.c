#include "store/store.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"
#include "util/utf8.h"

/* How many bytes of an invalid key a message shows. */
#define SHOWN_KEY_BYTES 100

/* Returns why key is not usable, or NULL when it is. */
static const char *key_problem(const char *key)
{
    const unsigned char *s = (const unsigned char *)key;
    size_t len, i, n, start;
    uint32_t cp;

    if (key == NULL)
        return "missing";
    len = strnlen(key, SN_STORE_MAX_KEY + 1);
    if (len == 0)
        return "empty";
    if (len > SN_STORE_MAX_KEY)
        return "longer than 1024 bytes";
    if (key[0] == '/')
        return "starts with '/'";

    for (i = 0; i < len; i += n) {
        n = sn_utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return "not valid UTF-8";
        if (sn_utf8_is_control(cp))
            return "contains a control character";
        if (cp == '\\')
            return "contains a backslash";
    }

    for (start = 0; start <= len; start = i + 1) {
        for (i = start; i < len && key[i] != '/'; i++)
            ;
        if (i == start)
            return "has an empty component";
        if ((i - start == 1 && key[start] == '.') ||
            (i - start == 2 && key[start] == '.' && key[start + 1] == '.'))
            return "has a \".\" or \"..\" component";
    }
    return NULL;
}

int sn_store_key_valid(const char *key)
{
    return key_problem(key) == NULL;
}

/* Appends one byte as a C escape ("\n", "\x1b") to out at *pos. */
static void put_escape(char *out, size_t out_size, size_t *pos,
                       unsigned char c)
{
    const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : c == '"' ? "\\\""
                        : c == '\\' ? "\\\\" : NULL;
    int n;

    if (named != NULL)
        n = snprintf(out + *pos, out_size - *pos, "%s", named);
    else
        n = snprintf(out + *pos, out_size - *pos, "\\x%02x", c);
    if (n > 0)
        *pos += (size_t)n;
}

/*
 * Writes key for a message: its first SHOWN_KEY_BYTES bytes in double
 * quotes, with control characters, quotes, backslashes and bytes that are
 * not UTF-8 escaped, so the message stays one line of valid UTF-8.
 */
static void quote_key(const char *key, char *out, size_t out_size)
{
    const unsigned char *s = (const unsigned char *)key;
    size_t len = strnlen(key, SN_STORE_MAX_KEY + 1);
    size_t shown = len < SHOWN_KEY_BYTES ? len : SHOWN_KEY_BYTES;
    size_t pos = 0, i = 0;

    out[pos++] = '"';
    /* Room for one escaped 4-byte sequence and the closing '"...'. */
    while (i < shown && pos + 24 < out_size) {
        uint32_t cp;
        size_t n = sn_utf8_decode(s + i, len - i, &cp);

        if (n == 0 || sn_utf8_is_control(cp) || cp == '"' || cp == '\\') {
            /* An invalid byte is escaped alone; a control character
             * encoded in several bytes, byte by byte. */
            n = n == 0 ? 1 : n;
            for (size_t k = 0; k < n; k++)
                put_escape(out, out_size, &pos, s[i + k]);
        } else {
            memcpy(out + pos, s + i, n);
            pos += n;
        }
        i += n;
    }
    snprintf(out + pos, out_size - pos, "\"%s", i < len ? "..." : "");
}

int sn_store_key_check(const struct sn_store *s, const char *key, char *err,
                       size_t err_size)
{
    const char *problem = key_problem(key);
    char shown[SHOWN_KEY_BYTES * 4 + 8];

    if (problem == NULL)
        return 0;

    if (key == NULL)
        snprintf(shown, sizeof(shown), "(null)");
    else
        quote_key(key, shown, sizeof(shown));
    snprintf(err, err_size, "%s: invalid key %s: %s", s->name, shown,
             problem);
    return SN_ERR_INPUT;
}

int sn_store_get(struct sn_store *s, const char *key, size_t max,
                 uint8_t **data, size_t *size, char *err, size_t err_size)
{
    int rc = sn_store_key_check(s, key, err, err_size);

    if (rc < 0)
        return rc;
    return s->ops->get(s, key, max, data, size, err, err_size);
}

int sn_store_put(struct sn_store *s, const char *key, const void *data,
                 size_t size, char *err, size_t err_size)
{
    int rc = sn_store_key_check(s, key, err, err_size);

    if (rc < 0)
        return rc;
    return s->ops->put(s, key, data, size, err, err_size);
}

void sn_store_close(struct sn_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}
