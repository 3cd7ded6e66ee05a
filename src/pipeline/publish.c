#include "pipeline/publish.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hls/playlist.h"
#include "util/error.h"
#include "util/fsutil.h"

#define URI_SIZE 32

int sn_rendition_reserve(struct sn_rendition *r, int n)
{
    struct sn_segment_info *segments;
    unsigned char *done;

    if (n <= r->n_segments)
        return 0;
    segments = realloc(r->segments, (size_t)n * sizeof(*segments));
    if (segments == NULL)
        return -ENOMEM;
    r->segments = segments;
    memset(segments + r->n_segments, 0,
           (size_t)(n - r->n_segments) * sizeof(*segments));
    done = realloc(r->done, (size_t)n);
    if (done == NULL)
        return -ENOMEM;
    memset(done + r->n_segments, 0, (size_t)(n - r->n_segments));
    r->done = done;
    r->n_segments = n;
    return 0;
}

void sn_rendition_release(struct sn_rendition *r)
{
    free(r->segments);
    free(r->done);
    r->segments = NULL;
    r->done = NULL;
    r->n_segments = 0;
}

int sn_rendition_add(struct sn_rendition *r, const struct sn_segment_info *s)
{
    if (s->index < 0 || s->index >= r->n_segments)
        return -EINVAL;
    r->segments[s->index] = *s;
    r->done[s->index] = 1;
    return 0;
}

static int finished_prefix(const struct sn_rendition *r)
{
    int n = 0;

    while (n < r->n_segments && r->done[n])
        n++;
    return n;
}

int sn_output_started(const struct sn_output *out)
{
    for (int i = 0; i < out->n_rungs; i++) {
        if (finished_prefix(&out->video[i]) == 0)
            return 0;
    }
    return !out->has_audio || finished_prefix(&out->audio) > 0;
}

static double seconds(const struct sn_rendition *r, int64_t ticks)
{
    return (double)ticks / r->timescale;
}

static int write_text(const struct sn_publish_sink *sink, const char *name,
                      char *text, char *err, size_t err_size)
{
    int rc;

    if (text == NULL) {
        snprintf(err, err_size, "cannot render %s", name);
        return SN_ERR_OUTPUT;
    }
    rc = sink->write(sink->opaque, name, text, strlen(text), err, err_size);
    free(text);
    return rc;
}

static int write_to_folder(void *opaque, const char *name, const char *text,
                           size_t size, char *err, size_t err_size)
{
    char path[PATH_MAX];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", (const char *)opaque, name);
    rc = sn_write_file_atomic(path, text, size);
    if (rc < 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(-rc));
        return SN_ERR_OUTPUT;
    }
    return 0;
}

static int write_media(const struct sn_publish_sink *sink, const struct sn_output *out,
                       const struct sn_rendition *r, int final, char *err,
                       size_t err_size)
{
    int n = final ? r->n_segments : finished_prefix(r);
    const char *ext = sn_segment_extension(out->format);
    struct sn_hls_segment *segs = calloc(n > 0 ? (size_t)n : 1,
                                         sizeof(*segs));
    char (*uris)[URI_SIZE] = calloc(n > 0 ? (size_t)n : 1, URI_SIZE);
    struct sn_media_playlist p = {
        .type = final ? SN_PLAYLIST_VOD : SN_PLAYLIST_EVENT,
        .version = out->format == SN_SEGMENT_FMP4 ? 7 : 4,
        .map_uri = out->format == SN_SEGMENT_FMP4 ? "init.mp4" : NULL,
        .segments = segs,
        .n_segments = (size_t)n,
    };
    char name[64];
    int rc;

    if (segs == NULL || uris == NULL) {
        free(segs);
        free(uris);
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        const struct sn_segment_info *s = &r->segments[i];

        snprintf(uris[i], URI_SIZE, "seg_%05d.%s", i, ext);
        segs[i].uri = uris[i];
        segs[i].duration = seconds(r, s->end_pts - s->first_pts);
    }

    snprintf(name, sizeof(name), "%s/index.m3u8", r->name);
    rc = write_text(sink, name, sn_hls_render_media(&p), err, err_size);
    free(segs);
    free(uris);
    return rc;
}

/* Counts the I-frames of a rendition. */
static int count_iframes(const struct sn_rendition *r)
{
    int n = 0;

    for (int i = 0; i < r->n_segments; i++)
        n += r->segments[i].n_iframes;
    return n;
}

/*
 * Writes the I-frame playlist: each I-frame lasts until the next one (or
 * the end of its segment) and is addressed by its byte range. Returns the
 * peak I-frame bit rate in *peak.
 */
static int write_iframes(const struct sn_publish_sink *sink, const struct sn_output *out,
                         const struct sn_rendition *r, int64_t *peak,
                         char *err, size_t err_size)
{
    int total = count_iframes(r), k = 0;
    const char *ext = sn_segment_extension(out->format);
    struct sn_hls_segment *segs = calloc(total ? (size_t)total : 1,
                                         sizeof(*segs));
    char (*uris)[URI_SIZE] = calloc((size_t)r->n_segments + 1, URI_SIZE);
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = out->format == SN_SEGMENT_FMP4 ? 7 : 4,
        .map_uri = out->format == SN_SEGMENT_FMP4 ? "init.mp4" : NULL,
        .iframes_only = 1,
        .segments = segs,
    };
    char name[64];
    int rc;

    *peak = 0;
    if (segs == NULL || uris == NULL) {
        free(segs);
        free(uris);
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < r->n_segments; i++) {
        const struct sn_segment_info *s = &r->segments[i];

        snprintf(uris[i], URI_SIZE, "seg_%05d.%s", i, ext);
        for (int j = 0; j < s->n_iframes; j++) {
            int64_t next = j + 1 < s->n_iframes ? s->iframes[j + 1].pts
                                                : s->end_pts;
            double d = seconds(r, next - s->iframes[j].pts);
            int64_t rate = d > 0 ? (int64_t)(s->iframes[j].length * 8 / d)
                                 : 0;

            segs[k].uri = uris[i];
            segs[k].duration = d;
            segs[k].byte_offset = s->iframes[j].offset;
            segs[k].byte_length = s->iframes[j].length;
            if (rate > *peak)
                *peak = rate;
            k++;
        }
    }
    p.n_segments = (size_t)k;

    snprintf(name, sizeof(name), "%s/iframes.m3u8", r->name);
    rc = write_text(sink, name, sn_hls_render_media(&p), err, err_size);
    free(segs);
    free(uris);
    return rc;
}

/* Peak segment bit rate and average bit rate of a rendition. */
static void measure(const struct sn_rendition *r, int64_t *peak,
                    int64_t *average)
{
    int64_t bits = 0, ticks = 0;

    *peak = 0;
    for (int i = 0; i < r->n_segments; i++) {
        const struct sn_segment_info *s = &r->segments[i];
        int64_t d = s->end_pts - s->first_pts;

        if (d <= 0)
            continue;
        bits += s->bytes * 8;
        ticks += d;
        if (s->bytes * 8 * r->timescale / d > *peak)
            *peak = s->bytes * 8 * r->timescale / d + 1;
    }
    *average = ticks > 0 ? bits * r->timescale / ticks + 1 : 0;
}

static int write_master(const struct sn_publish_sink *sink, const struct sn_output *out,
                        const int64_t *iframe_peaks, int final, char *err,
                        size_t err_size)
{
    struct sn_hls_variant variants[SN_LADDER_MAX + 1] = {{0}};
    char codecs[SN_LADDER_MAX + 1][80];
    char uris[SN_LADDER_MAX + 1][2][48];
    struct sn_hls_audio audio = {
        .group_id = "audio", .name = "Audio", .uri = "audio/index.m3u8",
        .channels = out->audio_channels,
    };
    struct sn_master_playlist m = {
        .version = out->format == SN_SEGMENT_FMP4 ? 7 : 4,
        .audio = out->has_audio && out->n_rungs > 0 ? &audio : NULL,
        .variants = variants,
    };
    int64_t audio_peak = 0, audio_avg = 0;

    if (out->has_audio)
        measure(&out->audio, &audio_peak, &audio_avg);
    if (out->has_audio && !final)
        audio_peak = audio_avg = SN_AUDIO_BITRATE;

    for (int i = 0; i < out->n_rungs; i++) {
        const struct sn_rendition *r = &out->video[i];
        struct sn_hls_variant *v = &variants[i];
        int64_t peak, avg;

        measure(r, &peak, &avg);
        if (!final)
            peak = avg = out->rungs[i].maxrate;
        snprintf(codecs[i], sizeof(codecs[i]), "%s%s%s", r->codecs,
                 out->has_audio ? "," : "",
                 out->has_audio ? out->audio.codecs : "");
        snprintf(uris[i][0], sizeof(uris[i][0]), "%s/index.m3u8", r->name);
        snprintf(uris[i][1], sizeof(uris[i][1]), "%s/iframes.m3u8", r->name);
        v->uri = uris[i][0];
        v->iframe_uri = final ? uris[i][1] : NULL;
        v->iframe_bandwidth = iframe_peaks[i];
        v->bandwidth = peak + audio_peak;
        v->average_bandwidth = avg + audio_avg;
        v->codecs = codecs[i];
        v->video_codec = r->codecs;
        v->width = out->rungs[i].width;
        v->height = out->rungs[i].height;
        v->frame_rate = out->rungs[i].frame_rate;
        v->audio_group = out->has_audio ? "audio" : NULL;
    }
    m.n_variants = (size_t)out->n_rungs;
    if (out->n_rungs == 0 && out->has_audio) {
        variants[0] = (struct sn_hls_variant){
            .uri = "audio/index.m3u8",
            .bandwidth = audio_peak,
            .average_bandwidth = audio_avg,
            .codecs = out->audio.codecs,
        };
        m.n_variants = 1;
    }
    return write_text(sink, "master.m3u8", sn_hls_render_master(&m), err,
                      err_size);
}

int sn_publish_to(const struct sn_publish_sink *sink,
                  const struct sn_output *out, int final, char *err,
                  size_t err_size)
{
    int64_t iframe_peaks[SN_LADDER_MAX] = {0};
    int rc = 0;

    for (int i = 0; rc == 0 && i < out->n_rungs; i++) {
        rc = write_media(sink, out, &out->video[i], final, err, err_size);
        if (rc == 0 && final)
            rc = write_iframes(sink, out, &out->video[i], &iframe_peaks[i],
                               err, err_size);
    }
    if (rc == 0 && out->has_audio && out->audio.n_segments > 0)
        rc = write_media(sink, out, &out->audio, final, err, err_size);
    if (rc == 0 && (final || sn_output_started(out)))
        rc = write_master(sink, out, iframe_peaks, final, err, err_size);
    return rc;
}

int sn_publish(const char *dir, const struct sn_output *out, int final,
               char *err, size_t err_size)
{
    struct sn_publish_sink sink = {write_to_folder, (void *)dir};

    return sn_publish_to(&sink, out, final, err, err_size);
}
