/*
 * UTF-8 decoding for checks on names that come from outside: upload names
 * and object keys.
 */
#ifndef SN_UTIL_UTF8_H
#define SN_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the UTF-8 sequence at s, of which n bytes are available, into
 * *cp. Returns its length in bytes, or 0 when it is not valid UTF-8:
 * overlong forms, surrogates and code points past U+10FFFF are invalid
 * (RFC 3629 section 3).
 */
size_t sn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Returns 1 for C0 and C1 control characters and DEL (Unicode general
 * category Cc), else 0. */
int sn_utf8_is_control(uint32_t cp);

/*
 * Returns how many of the len bytes of s fit in max bytes without
 * splitting a UTF-8 character: len when len <= max, else max moved back
 * to the start of the character it falls in.
 */
size_t sn_utf8_cut(const char *s, size_t len, size_t max);

/*
 * Replaces, in place, each byte of the NUL-terminated s that does not
 * start a valid UTF-8 character with '?', so that s can go into JSON.
 * Returns the number of bytes replaced.
 */
size_t sn_utf8_repair(char *s);

#endif
