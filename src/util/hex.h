/* Hexadecimal digits, for percent-decoding and parsing. */
#ifndef SN_UTIL_HEX_H
#define SN_UTIL_HEX_H

/* Returns the value of the hexadecimal digit c (either case), or -1. */
static inline int sn_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
