#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/sha.h>

/*
 * Returns the length of the UTF-8 sequence at s (1 to 4), or 0 when it is
 * not a valid, shortest-form encoding of a scalar value.
 */
static int utf8_length(const unsigned char *s)
{
    unsigned c = s[0];
    int n;
    unsigned min, cp;

    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int sn_upload_name_valid(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t len = strlen(name);

    if (len == 0 || len > SN_UPLOAD_MAX_NAME || name[0] == '.')
        return 0;
    while (*s != '\0') {
        int n = utf8_length(s);

        /* C0 controls, DEL and C1 controls (U+0080 to U+009F). */
        if (n == 0 || *s < 0x20 || *s == 0x7f || *s == '/' || *s == '\\' ||
            (n == 2 && s[0] == 0xc2 && s[1] < 0xa0))
            return 0;
        s += n;
    }
    return 1;
}

int sn_video_id(const char *key, char *id)
{
    struct AVSHA *sha = av_sha_alloc();
    uint8_t digest[32];

    if (sha == NULL)
        return -ENOMEM;
    av_sha_init(sha, 256);
    av_sha_update(sha, (const uint8_t *)key, strlen(key));
    av_sha_final(sha, digest);
    av_free(sha);
    for (int i = 0; i < SN_VIDEO_ID_LEN / 2; i++)
        snprintf(id + 2 * i, 3, "%02x", digest[i]);
    id[SN_VIDEO_ID_LEN] = '\0';
    return 0;
}

void sn_video_prefix(const char *id, int64_t generation, char *out,
                     size_t out_size)
{
    snprintf(out, out_size, "%s/%lld", id, (long long)generation);
}
