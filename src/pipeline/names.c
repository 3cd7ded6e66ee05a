#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/sha.h>

#include "util/utf8.h"

/*
 * Returns 1 for invisible formatting characters (Unicode category Cf) that
 * can make a name look like another one: the soft hyphen, zero-width
 * spaces and joiners, bidirectional marks, embeddings, overrides and
 * isolates, and the byte order mark.
 */
static int is_format_character(uint32_t cp)
{
    return cp == 0xad || cp == 0x61c || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
           cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

int sn_upload_name_valid(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t len = strlen(name);
    int visible = 0;

    if (len == 0 || len > SN_UPLOAD_MAX_NAME || name[0] == '.')
        return 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = sn_utf8_decode(s + i, len - i, &cp);

        if (n == 0 || sn_utf8_is_control(cp) || is_format_character(cp) ||
            cp == '/' || cp == '\\')
            return 0;
        if (cp != ' ' && cp != 0xa0 && cp != 0x3000)
            visible = 1;
        i += n;
    }
    return visible;
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
