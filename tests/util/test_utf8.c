#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

#include "test.h"

static void decode_rejects_overlong_and_surrogates(void)
{
    uint32_t cp = 0;

    CHECK_INT((int)sn_utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp),
              2);
    CHECK_INT((int)cp, 0xe9);
    /* "/" written in two bytes, an overlong form. */
    CHECK_INT((int)sn_utf8_decode((const unsigned char *)"\xc0\xaf", 2, &cp),
              0);
    /* U+D800, a surrogate. */
    CHECK_INT((int)sn_utf8_decode((const unsigned char *)"\xed\xa0\x80", 3,
                                  &cp), 0);
    /* A three-byte character with only two bytes available. */
    CHECK_INT((int)sn_utf8_decode((const unsigned char *)"\xe2\x82", 2, &cp),
              0);
}

static void cut_keeps_whole_characters(void)
{
    const char *s = "n\xc3\xa9" "e";    /* "née": 4 bytes */

    CHECK_INT((int)sn_utf8_cut(s, 4, 10), 4);
    CHECK_INT((int)sn_utf8_cut(s, 4, 3), 3);
    /* Byte 2 is inside "é", so the cut moves back to its start. */
    CHECK_INT((int)sn_utf8_cut(s, 4, 2), 1);
}

static void repair_replaces_invalid_bytes(void)
{
    char valid[] = "stream/n\xc3\xa9" "e.mp4";
    char stray[] = "stream/\xff.mp4";
    char cut[] = "caf\xc3";           /* "é" cut after its first byte */
    char overlong[] = "a\xc0\xaf" "b";

    CHECK_INT((int)sn_utf8_repair(valid), 0);
    CHECK_STR(valid, "stream/n\xc3\xa9" "e.mp4");
    CHECK_INT((int)sn_utf8_repair(stray), 1);
    CHECK_STR(stray, "stream/?.mp4");
    CHECK_INT((int)sn_utf8_repair(cut), 1);
    CHECK_STR(cut, "caf?");
    CHECK_INT((int)sn_utf8_repair(overlong), 2);
    CHECK_STR(overlong, "a??b");
}

SN_TEST_MAIN(TEST_CASE(decode_rejects_overlong_and_surrogates),
             TEST_CASE(cut_keeps_whole_characters),
             TEST_CASE(repair_replaces_invalid_bytes))
