#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/sha.h>

#include "util/utf8.h"

int sn_upload_name_valid(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t len = strlen(name);

    if (len == 0 || len > SN_UPLOAD_MAX_NAME || name[0] == '.')
        return 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = sn_utf8_decode(s + i, len - i, &cp);

        if (n == 0 || sn_utf8_is_control(cp) || cp == '/' || cp == '\\')
            return 0;
        i += n;
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
