/*
 * RFC 6381 codec strings from encoder extradata.
 *
 * H.264: ISO/IEC 14496-10 section 7.3.2.1.1 (the SPS starts with
 * profile_idc, the six constraint_set flags plus two reserved bits, and
 * level_idc), Annex B for start codes, and ISO/IEC 14496-15 section
 * 5.3.3.1 for the avcC record (configurationVersion 1, then copies of the
 * same three bytes).
 *
 * AAC: ISO/IEC 14496-3 section 1.6.2.1, GetAudioObjectType().
 */
#include "hls/codecs.h"

#include <errno.h>
#include <stdio.h>

#define NAL_TYPE_SPS 7

/*
 * End of the NAL unit whose bytes start at p: the first 00 00 00, 00 00 01
 * or 00 00 02 (a start code, or zero bytes trailing the unit), or end.
 * Inside a NAL unit those patterns are always escaped.
 */
static const uint8_t *nal_end(const uint8_t *p, const uint8_t *end)
{
    for (; end - p >= 3; p++)
        if (p[0] == 0x00 && p[1] == 0x00 && p[2] <= 0x02)
            return p;
    return end;
}

/*
 * Reads the first three RBSP bytes from NAL payload bytes [p, end),
 * removing emulation-prevention bytes (0x03 after two zero bytes).
 * Returns 0, or -1 when the payload holds fewer than three bytes.
 */
static int read_rbsp3(const uint8_t *p, const uint8_t *end, uint8_t out[3])
{
    int zeros = 0;
    int got = 0;

    while (got < 3 && p < end) {
        uint8_t c = *p++;

        if (zeros >= 2 && c == 0x03) {
            zeros = 0;              /* emulation prevention: drop it */
            continue;
        }
        zeros = c == 0x00 ? zeros + 1 : 0;
        out[got++] = c;
    }
    return got == 3 ? 0 : -1;
}

/* Finds the first SPS in Annex B data and reads its first three bytes. */
static int annexb_sps(const uint8_t *data, size_t size, uint8_t out[3])
{
    const uint8_t *end = data + size;

    for (size_t i = 0; i + 3 < size; i++) {
        const uint8_t *nal;

        if (data[i] != 0x00 || data[i + 1] != 0x00 || data[i + 2] != 0x01)
            continue;
        nal = data + i + 3;     /* header byte; i + 3 < size */
        if ((nal[0] & 0x80) == 0 && (nal[0] & 0x1f) == NAL_TYPE_SPS &&
            read_rbsp3(nal + 1, nal_end(nal + 1, end), out) == 0)
            return 0;
        i += 2;                 /* the loop adds one: resume at the header */
    }
    return -1;
}

int sn_codecs_avc(const uint8_t *extradata, size_t size, char *out,
                  size_t out_size)
{
    uint8_t sps[3];
    int n;

    if (extradata == NULL || out == NULL || out_size == 0)
        return -EINVAL;

    if (size >= 4 && extradata[0] == 1) {
        /* avcC: configurationVersion, profile, compatibility, level. */
        sps[0] = extradata[1];
        sps[1] = extradata[2];
        sps[2] = extradata[3];
    } else if (size >= 4 && extradata[0] == 0) {
        if (annexb_sps(extradata, size, sps) != 0)
            return -EINVAL;
    } else {
        return -EINVAL;
    }

    n = snprintf(out, out_size, "avc1.%02x%02x%02x", sps[0], sps[1], sps[2]);
    if (n < 0 || (size_t)n >= out_size)
        return -EINVAL;
    return 0;
}

int sn_codecs_aac(const uint8_t *extradata, size_t size, char *out,
                  size_t out_size)
{
    int aot;
    int n;

    if (extradata == NULL || out == NULL || out_size == 0 || size < 1)
        return -EINVAL;

    aot = extradata[0] >> 3;
    if (aot == 31) {
        /* Escape: the next six bits, bits 2..0 of byte 0, 7..5 of byte 1. */
        if (size < 2)
            return -EINVAL;
        aot = 32 + (((extradata[0] & 0x07) << 3) | (extradata[1] >> 5));
    }
    if (aot == 0)
        return -EINVAL;         /* "NULL" object type: no audio */

    n = snprintf(out, out_size, "mp4a.40.%d", aot);
    if (n < 0 || (size_t)n >= out_size)
        return -EINVAL;
    return 0;
}
