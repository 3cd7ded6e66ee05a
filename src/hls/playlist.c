/*
 * HLS playlist writer (RFC 8216, Apple HLS authoring specification).
 *
 * Numbers with a fraction (EXTINF, FRAME-RATE) are written from an integer
 * count of micro- or milliseconds rather than with "%f", so the text does
 * not depend on the process locale and is byte-for-byte repeatable.
 */
#include "hls/playlist.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Upper bound for one rendered playlist. */
#define SN_HLS_MAX_TEXT ((size_t)16 << 20)

/* Durations beyond this (about 31 years) are treated as invalid input. */
#define SN_HLS_MAX_DURATION 1e9

/*
 * A value that may be written inside a quoted-string attribute or on a URI
 * line: present, non-empty, and free of the characters RFC 8216 section
 * 4.2 excludes from quoted-strings (double quote, CR, LF).
 */
static int text_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strpbrk(s, "\"\r\n") == NULL;
}

/* NULL is allowed (attribute omitted); anything else must be text_ok(). */
static int optional_text_ok(const char *s)
{
    return s == NULL || text_ok(s);
}

static int duration_ok(double d)
{
    return isfinite(d) && d >= 0.0 && d <= SN_HLS_MAX_DURATION;
}

/* Appends v with exactly `decimals` fraction digits (v >= 0, bounded). */
static int put_fixed(struct sn_buf *b, double v, int decimals)
{
    long long scale = 1;
    long long units;

    for (int i = 0; i < decimals; i++)
        scale *= 10;
    units = llround(v * (double)scale);
    return sn_buf_printf(b, "%lld.%0*lld", units / scale, decimals,
                         units % scale);
}

int sn_hls_target_duration(const struct sn_hls_segment *segments, size_t n)
{
    double longest = 0.0;

    for (size_t i = 0; i < n; i++) {
        double d = segments[i].duration;

        if (isfinite(d) && d > longest)
            longest = d;
    }
    /* Round half up: 6.5 s gives 7, 6.006 s gives 6. */
    longest = floor(longest + 0.5);
    if (longest > (double)INT_MAX)
        return INT_MAX;
    if (longest < 1.0)
        return 1;
    return (int)longest;
}

static int media_ok(const struct sn_media_playlist *p)
{
    if (p->type != SN_PLAYLIST_VOD && p->type != SN_PLAYLIST_EVENT)
        return 0;
    if (p->n_segments > 0 && p->segments == NULL)
        return 0;
    if (!optional_text_ok(p->map_uri))
        return 0;
    for (size_t i = 0; i < p->n_segments; i++) {
        const struct sn_hls_segment *s = &p->segments[i];

        if (!text_ok(s->uri) || !duration_ok(s->duration))
            return 0;
        if (s->byte_length > 0 && s->byte_offset < 0)
            return 0;
    }
    return 1;
}

static int write_media(struct sn_buf *b, const struct sn_media_playlist *p)
{
    int target = sn_hls_target_duration(p->segments, p->n_segments);
    int rc;

    if (p->target_duration > target)
        target = p->target_duration;

    rc = sn_buf_printf(b,
                       "#EXTM3U\n"
                       "#EXT-X-VERSION:%d\n"
                       "#EXT-X-TARGETDURATION:%d\n"
                       "#EXT-X-MEDIA-SEQUENCE:0\n"
                       "#EXT-X-PLAYLIST-TYPE:%s\n"
                       "#EXT-X-INDEPENDENT-SEGMENTS\n",
                       p->version, target,
                       p->type == SN_PLAYLIST_VOD ? "VOD" : "EVENT");
    if (rc == 0 && p->iframes_only)
        rc = sn_buf_printf(b, "#EXT-X-I-FRAMES-ONLY\n");
    if (rc == 0 && p->map_uri != NULL)
        rc = sn_buf_printf(b, "#EXT-X-MAP:URI=\"%s\"\n", p->map_uri);

    for (size_t i = 0; rc == 0 && i < p->n_segments; i++) {
        const struct sn_hls_segment *s = &p->segments[i];

        rc = sn_buf_printf(b, "#EXTINF:");
        if (rc == 0)
            rc = put_fixed(b, s->duration, 6);
        if (rc == 0)
            rc = sn_buf_printf(b, ",\n");
        if (rc == 0 && s->byte_length > 0)
            rc = sn_buf_printf(b, "#EXT-X-BYTERANGE:%lld@%lld\n",
                               (long long)s->byte_length,
                               (long long)s->byte_offset);
        if (rc == 0)
            rc = sn_buf_printf(b, "%s\n", s->uri);
    }

    if (rc == 0 && p->type == SN_PLAYLIST_VOD)
        rc = sn_buf_printf(b, "#EXT-X-ENDLIST\n");
    return rc;
}

char *sn_hls_render_media(const struct sn_media_playlist *p)
{
    struct sn_buf b;

    if (p == NULL || !media_ok(p))
        return NULL;

    sn_buf_init(&b, SN_HLS_MAX_TEXT);
    if (write_media(&b, p) != 0) {
        sn_buf_release(&b);
        return NULL;
    }
    return sn_buf_steal(&b);
}

static int audio_ok(const struct sn_hls_audio *a)
{
    return text_ok(a->group_id) && text_ok(a->name) &&
           optional_text_ok(a->uri);
}

static int variant_ok(const struct sn_hls_variant *v,
                      const struct sn_hls_audio *audio)
{
    if (!text_ok(v->uri) || !optional_text_ok(v->iframe_uri) ||
        !optional_text_ok(v->codecs) || !optional_text_ok(v->video_codec) ||
        !optional_text_ok(v->audio_group))
        return 0;
    if (v->bandwidth < 0 || v->average_bandwidth < 0 ||
        v->iframe_bandwidth < 0 || v->width < 0 || v->height < 0)
        return 0;
    if (!isfinite(v->frame_rate) || v->frame_rate < 0.0 ||
        v->frame_rate > 1e6)
        return 0;
    /* RFC 8216 4.3.4.2: AUDIO must name the GROUP-ID of an EXT-X-MEDIA. */
    if (v->audio_group != NULL &&
        (audio == NULL || strcmp(v->audio_group, audio->group_id) != 0))
        return 0;
    return 1;
}

static int master_ok(const struct sn_master_playlist *p)
{
    if (p->audio != NULL && !audio_ok(p->audio))
        return 0;
    if (p->n_variants > 0 && p->variants == NULL)
        return 0;
    for (size_t i = 0; i < p->n_variants; i++)
        if (!variant_ok(&p->variants[i], p->audio))
            return 0;
    return 1;
}

static int write_audio(struct sn_buf *b, const struct sn_hls_audio *a)
{
    int rc = sn_buf_printf(b,
                           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"%s\","
                           "NAME=\"%s\",DEFAULT=YES,AUTOSELECT=YES",
                           a->group_id, a->name);

    if (rc == 0 && a->channels > 0)
        rc = sn_buf_printf(b, ",CHANNELS=\"%d\"", a->channels);
    if (rc == 0 && a->uri != NULL)
        rc = sn_buf_printf(b, ",URI=\"%s\"", a->uri);
    if (rc == 0)
        rc = sn_buf_printf(b, "\n");
    return rc;
}

static int write_variant(struct sn_buf *b, const struct sn_hls_variant *v)
{
    int rc = sn_buf_printf(b, "#EXT-X-STREAM-INF:BANDWIDTH=%lld",
                           (long long)v->bandwidth);

    if (rc == 0 && v->average_bandwidth > 0)
        rc = sn_buf_printf(b, ",AVERAGE-BANDWIDTH=%lld",
                           (long long)v->average_bandwidth);
    if (rc == 0 && v->codecs != NULL)
        rc = sn_buf_printf(b, ",CODECS=\"%s\"", v->codecs);
    if (rc == 0 && v->width > 0 && v->height > 0)
        rc = sn_buf_printf(b, ",RESOLUTION=%dx%d", v->width, v->height);
    if (rc == 0 && v->frame_rate > 0.0) {
        rc = sn_buf_printf(b, ",FRAME-RATE=");
        if (rc == 0)
            rc = put_fixed(b, v->frame_rate, 3);
    }
    if (rc == 0 && v->audio_group != NULL)
        rc = sn_buf_printf(b, ",AUDIO=\"%s\"", v->audio_group);
    if (rc == 0)
        rc = sn_buf_printf(b, "\n%s\n", v->uri);
    return rc;
}

static int write_iframe_variant(struct sn_buf *b,
                                const struct sn_hls_variant *v)
{
    int rc = sn_buf_printf(b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%lld",
                           (long long)v->iframe_bandwidth);

    if (rc == 0 && v->video_codec != NULL)
        rc = sn_buf_printf(b, ",CODECS=\"%s\"", v->video_codec);
    if (rc == 0 && v->width > 0 && v->height > 0)
        rc = sn_buf_printf(b, ",RESOLUTION=%dx%d", v->width, v->height);
    if (rc == 0)
        rc = sn_buf_printf(b, ",URI=\"%s\"\n", v->iframe_uri);
    return rc;
}

static int write_master(struct sn_buf *b, const struct sn_master_playlist *p)
{
    int rc = sn_buf_printf(b,
                           "#EXTM3U\n"
                           "#EXT-X-VERSION:%d\n"
                           "#EXT-X-INDEPENDENT-SEGMENTS\n",
                           p->version);

    if (rc == 0 && p->audio != NULL)
        rc = write_audio(b, p->audio);
    for (size_t i = 0; rc == 0 && i < p->n_variants; i++)
        rc = write_variant(b, &p->variants[i]);
    for (size_t i = 0; rc == 0 && i < p->n_variants; i++)
        if (p->variants[i].iframe_uri != NULL)
            rc = write_iframe_variant(b, &p->variants[i]);
    return rc;
}

char *sn_hls_render_master(const struct sn_master_playlist *p)
{
    struct sn_buf b;

    if (p == NULL || !master_ok(p))
        return NULL;

    sn_buf_init(&b, SN_HLS_MAX_TEXT);
    if (write_master(&b, p) != 0) {
        sn_buf_release(&b);
        return NULL;
    }
    return sn_buf_steal(&b);
}
