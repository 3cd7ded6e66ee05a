#include "hls/codecs.h"

#include <errno.h>

#include "test.h"

/*
 * The H.264 parameter sets below are the extradata libx264 (core 164)
 * wrote for `ffmpeg -f lavfi -i testsrc2=... -c:v libx264 -profile:v P
 * -level L`, copied byte for byte; the AAC one is what FFmpeg's native
 * encoder stores in the esds box. Other sequences are assembled by hand
 * from the bit fields named in their comments.
 */

/* High profile (100 = 0x64), no constraint flags, level 4.0 (40 = 0x28),
 * 1920x1080: SPS then PPS, four-byte start codes. */
static const uint8_t high_40_annexb[] = {
    0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78,
    0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00,
    0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
    0x00, 0x00, 0x00, 0x01, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
};

/* avcC record from an MP4 (High, level 3.1, 640x360): version 1,
 * profile 0x64, compatibility 0x00, level 0x1f, length size 4, one SPS of
 * 26 bytes, one PPS of 6 bytes, then the High-profile chroma/bit-depth
 * extension. */
static const uint8_t high_31_avcc[] = {
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f,
    0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x18, 0x31, 0x96, 0x01, 0x00,
    0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
};

/* Main profile (77 = 0x4d) with constraint_set1_flag (0x40), level 3.1,
 * 1280x720. */
static const uint8_t main_31_annexb[] = {
    0x00, 0x00, 0x00, 0x01, 0x67, 0x4d, 0x40, 0x1f, 0xec, 0xa0, 0x28, 0x02,
    0xdd, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x01,
    0xe0, 0x78, 0xc1, 0x8c, 0xb0,
    0x00, 0x00, 0x00, 0x01, 0x68, 0xeb, 0xe3, 0xcb, 0x20,
};

/* Constrained Baseline: profile 66 (0x42) with constraint_set0 and
 * constraint_set1 (0xc0), level 3.0 (0x1e). Here with three-byte start
 * codes (the leading zero of libx264's four-byte ones dropped) and an
 * access unit delimiter (type 9) in front of the SPS. */
static const uint8_t baseline_30_annexb[] = {
    0x00, 0x00, 0x01, 0x09, 0xf0,
    0x00, 0x00, 0x01, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9,
    0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c,
    0x0f, 0x16, 0x2e, 0x48,
    0x00, 0x00, 0x01, 0x68, 0xcb, 0x83, 0xcb, 0x20,
};

static void annexb_high_profile_sps_gives_avc1_640028(void)
{
    char out[32];

    CHECK_INT(sn_codecs_avc(high_40_annexb, sizeof(high_40_annexb), out,
                            sizeof(out)), 0);
    CHECK_STR(out, "avc1.640028");
}

static void avcc_record_gives_its_profile_and_level(void)
{
    char out[32];

    CHECK_INT(sn_codecs_avc(high_31_avcc, sizeof(high_31_avcc), out,
                            sizeof(out)), 0);
    CHECK_STR(out, "avc1.64001f");
}

static void main_profile_keeps_constraint_flags(void)
{
    char out[32];

    CHECK_INT(sn_codecs_avc(main_31_annexb, sizeof(main_31_annexb), out,
                            sizeof(out)), 0);
    CHECK_STR(out, "avc1.4d401f");
}

static void sps_is_found_after_a_delimiter_with_short_start_codes(void)
{
    char out[32];

    CHECK_INT(sn_codecs_avc(baseline_30_annexb, sizeof(baseline_30_annexb),
                            out, sizeof(out)), 0);
    CHECK_STR(out, "avc1.42c01e");
}

static void pps_before_sps_is_skipped(void)
{
    static const uint8_t pps_first[] = {
        0x00, 0x00, 0x00, 0x01, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
        0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9,
    };
    char out[32];

    CHECK_INT(sn_codecs_avc(pps_first, sizeof(pps_first), out,
                            sizeof(out)), 0);
    CHECK_STR(out, "avc1.640028");
}

static void emulation_prevention_byte_before_level_is_skipped(void)
{
    /*
     * profile_idc 0 and a zero constraint byte put two zero bytes right
     * before level_idc; level_idc 3 would complete a start-code-like
     * 00 00 03 pattern, so the encoder must insert an emulation-prevention
     * 0x03 first. The second 0x03 is the level. (No real profile_idc is 0:
     * the values are chosen only to place the escape here, since with any
     * real profile the first byte is non-zero.)
     */
    static const uint8_t escaped[] = {
        0x00, 0x00, 0x00, 0x01, 0x67, 0x00, 0x00, 0x03, 0x03, 0xe0, 0x80,
    };
    char out[32];

    CHECK_INT(sn_codecs_avc(escaped, sizeof(escaped), out, sizeof(out)), 0);
    CHECK_STR(out, "avc1.000003");
}

static void extradata_without_a_whole_sps_is_rejected(void)
{
    static const uint8_t pps_only[] = {
        0x00, 0x00, 0x00, 0x01, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
    };
    static const uint8_t truncated_sps[] = {
        0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00,
    };
    /* The SPS ends (next start code) before level_idc. */
    static const uint8_t cut_sps[] = {
        0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x00, 0x01, 0x68, 0xeb, 0xe3,
    };
    static const uint8_t short_avcc[] = {0x01, 0x64, 0x00};
    static const uint8_t neither[] = {0x02, 0x64, 0x00, 0x28, 0xff};
    char out[32];

    CHECK_INT(sn_codecs_avc(pps_only, sizeof(pps_only), out, sizeof(out)),
              -EINVAL);
    CHECK_INT(sn_codecs_avc(truncated_sps, sizeof(truncated_sps), out,
                            sizeof(out)), -EINVAL);
    CHECK_INT(sn_codecs_avc(cut_sps, sizeof(cut_sps), out, sizeof(out)),
              -EINVAL);
    CHECK_INT(sn_codecs_avc(short_avcc, sizeof(short_avcc), out,
                            sizeof(out)), -EINVAL);
    CHECK_INT(sn_codecs_avc(neither, sizeof(neither), out, sizeof(out)),
              -EINVAL);
    CHECK_INT(sn_codecs_avc(NULL, 0, out, sizeof(out)), -EINVAL);
}

static void too_small_output_buffer_is_rejected(void)
{
    char out[11];   /* "avc1.640028" needs 12 bytes with the NUL */

    CHECK_INT(sn_codecs_avc(high_31_avcc, sizeof(high_31_avcc), out,
                            sizeof(out)), -EINVAL);
}

static void aac_lc_gives_object_type_2(void)
{
    /* 00010 (AAC-LC) 0011 (48 kHz) 0010 (stereo) 000 */
    static const uint8_t asc[] = {0x11, 0x90};
    /* FFmpeg's native encoder adds the SBR sync extension 0x2b7 with
     * sbrPresentFlag 0; the object type is still 2. */
    static const uint8_t ffmpeg_asc[] = {0x11, 0x90, 0x56, 0xe5, 0x00};
    char out[32];

    CHECK_INT(sn_codecs_aac(asc, sizeof(asc), out, sizeof(out)), 0);
    CHECK_STR(out, "mp4a.40.2");
    CHECK_INT(sn_codecs_aac(ffmpeg_asc, sizeof(ffmpeg_asc), out,
                            sizeof(out)), 0);
    CHECK_STR(out, "mp4a.40.2");
}

static void he_aac_gives_object_type_5(void)
{
    /* Explicit hierarchical SBR signalling: 00101 (SBR) 0110 (24 kHz
     * core) 0010 (stereo) 0011 (48 kHz output) 00010 (AAC-LC core) 000. */
    static const uint8_t asc[] = {0x2b, 0x11, 0x88, 0x00};
    char out[32];

    CHECK_INT(sn_codecs_aac(asc, sizeof(asc), out, sizeof(out)), 0);
    CHECK_STR(out, "mp4a.40.5");
}

static void escaped_object_type_adds_32(void)
{
    /* 11111 (escape) 001010 (32 + 10 = 42, USAC / xHE-AAC) 0011 (48 kHz)
     * 0 ... */
    static const uint8_t usac[] = {0xf9, 0x46, 0x00};
    /* 11111 000000: the smallest escaped type, 32 (Layer-1). */
    static const uint8_t layer1[] = {0xf8, 0x00};
    char out[32];

    CHECK_INT(sn_codecs_aac(usac, sizeof(usac), out, sizeof(out)), 0);
    CHECK_STR(out, "mp4a.40.42");
    CHECK_INT(sn_codecs_aac(layer1, sizeof(layer1), out, sizeof(out)), 0);
    CHECK_STR(out, "mp4a.40.32");
}

static void asc_without_an_object_type_is_rejected(void)
{
    static const uint8_t escape_cut[] = {0xf9};
    static const uint8_t null_type[] = {0x00, 0x00};
    char out[32];

    CHECK_INT(sn_codecs_aac(escape_cut, sizeof(escape_cut), out,
                            sizeof(out)), -EINVAL);
    CHECK_INT(sn_codecs_aac(null_type, sizeof(null_type), out, sizeof(out)),
              -EINVAL);
    CHECK_INT(sn_codecs_aac(NULL, 0, out, sizeof(out)), -EINVAL);
}

SN_TEST_MAIN(
    TEST_CASE(annexb_high_profile_sps_gives_avc1_640028),
    TEST_CASE(avcc_record_gives_its_profile_and_level),
    TEST_CASE(main_profile_keeps_constraint_flags),
    TEST_CASE(sps_is_found_after_a_delimiter_with_short_start_codes),
    TEST_CASE(pps_before_sps_is_skipped),
    TEST_CASE(emulation_prevention_byte_before_level_is_skipped),
    TEST_CASE(extradata_without_a_whole_sps_is_rejected),
    TEST_CASE(too_small_output_buffer_is_rejected),
    TEST_CASE(aac_lc_gives_object_type_2),
    TEST_CASE(he_aac_gives_object_type_5),
    TEST_CASE(escaped_object_type_adds_32),
    TEST_CASE(asc_without_an_object_type_is_rejected))
