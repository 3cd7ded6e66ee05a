#include "media/probe.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>

#include "media/input.h"
#include "util/error.h"

/* Packets fed to a decoder to prove a stream decodes before giving up. */
#define TEST_DECODE_PACKETS 256

void sn_limits_init(struct sn_limits *limits)
{
    limits->max_width = 8192;
    limits->max_height = 8192;
    limits->max_duration_us = INT64_C(6) * 3600 * 1000000;
    limits->max_frames = 2000000;
    limits->max_file_size = INT64_C(64) << 30;
}

static int sign_of(int32_t v)
{
    /* Display matrix entries are 16.16 fixed point; ignore rounding noise. */
    if (v > 0x8000)
        return 1;
    if (v < -0x8000)
        return -1;
    return 0;
}

/*
 * FFmpeg's display matrix maps a source pixel (x, y) to (a*x + c*y,
 * b*x + d*y), with a, b, c, d at indexes 0, 1, 3, 4 (libavutil/display.h).
 * Only the eight axis-aligned transforms occur in real files; anything else
 * is treated as no transform.
 */
enum sn_transform sn_transform_from_matrix(const int32_t matrix[9])
{
    int a = sign_of(matrix[0]), b = sign_of(matrix[1]);
    int c = sign_of(matrix[3]), d = sign_of(matrix[4]);

    if (b == 0 && c == 0) {
        if (a > 0 && d > 0)
            return SN_TRANSFORM_NONE;
        if (a < 0 && d > 0)
            return SN_TRANSFORM_HFLIP;
        if (a > 0 && d < 0)
            return SN_TRANSFORM_VFLIP;
        if (a < 0 && d < 0)
            return SN_TRANSFORM_ROTATE_180;
    }
    if (a == 0 && d == 0) {
        if (b > 0 && c < 0)
            return SN_TRANSFORM_ROTATE_CW;
        if (b < 0 && c > 0)
            return SN_TRANSFORM_ROTATE_CCW;
        if (b > 0 && c > 0)
            return SN_TRANSFORM_TRANSPOSE;
        if (b < 0 && c < 0)
            return SN_TRANSFORM_ANTI_TRANSPOSE;
    }
    return SN_TRANSFORM_NONE;
}

int sn_transform_swaps_axes(enum sn_transform t)
{
    return t == SN_TRANSFORM_ROTATE_CW || t == SN_TRANSFORM_ROTATE_CCW ||
           t == SN_TRANSFORM_TRANSPOSE || t == SN_TRANSFORM_ANTI_TRANSPOSE;
}

void sn_probe_release(struct sn_probe *probe)
{
    free(probe->frame_us);
    memset(probe, 0, sizeof(*probe));
    probe->video_index = -1;
    probe->audio_index = -1;
}

struct decoder {
    AVCodecContext *ctx;
    int packets;
    int decoded;              /* 1 once a frame came out */
};

/* Feeds a packet to a test decoder until one frame comes out. */
static void test_decode(struct decoder *dec, const AVPacket *pkt,
                        AVFrame *frame)
{
    if (dec->ctx == NULL || dec->decoded ||
        dec->packets >= TEST_DECODE_PACKETS)
        return;

    dec->packets++;
    if (avcodec_send_packet(dec->ctx, pkt) < 0)
        return;
    if (avcodec_receive_frame(dec->ctx, frame) == 0) {
        dec->decoded = 1;
        av_frame_unref(frame);
    }
}

/* Drains a test decoder at end of file, for streams shorter than its delay. */
static void drain_decoder(struct decoder *dec, AVFrame *frame)
{
    if (dec->ctx == NULL || dec->decoded)
        return;
    avcodec_send_packet(dec->ctx, NULL);
    if (avcodec_receive_frame(dec->ctx, frame) == 0) {
        dec->decoded = 1;
        av_frame_unref(frame);
    }
}

static int pick_video(AVFormatContext *fmt)
{
    int best = -1;

    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVStream *st = fmt->streams[i];

        if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO ||
            (st->disposition & AV_DISPOSITION_ATTACHED_PIC) ||
            avcodec_find_decoder(st->codecpar->codec_id) == NULL ||
            st->codecpar->width <= 0 || st->codecpar->height <= 0)
            continue;
        if (best < 0)
            best = (int)i;
    }
    if (best < 0)
        return -1;
    /* Prefer what the container marks as default. */
    return av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, best, -1, NULL, 0) ==
                   best
               ? best
               : best;
}

/* The first decodable audio stream marked default, else the first
 * decodable one: the container's order is what players follow. */
static int pick_audio(AVFormatContext *fmt)
{
    int first = -1;

    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVCodecParameters *par = fmt->streams[i]->codecpar;

        if (par->codec_type != AVMEDIA_TYPE_AUDIO || par->sample_rate <= 0 ||
            avcodec_find_decoder(par->codec_id) == NULL)
            continue;
        if (fmt->streams[i]->disposition & AV_DISPOSITION_DEFAULT)
            return (int)i;
        if (first < 0)
            first = (int)i;
    }
    return first;
}

static void read_video_facts(AVFormatContext *fmt, struct sn_probe *p)
{
    AVStream *st = fmt->streams[p->video_index];
    AVCodecParameters *par = st->codecpar;
    const int32_t *matrix;
    AVRational sar = av_guess_sample_aspect_ratio(fmt, st, NULL);
    AVRational rate = st->avg_frame_rate;

    p->geometry.coded_width = par->width;
    p->geometry.coded_height = par->height;
    p->geometry.sar_num = sar.num;
    p->geometry.sar_den = sar.den;
    if (rate.num <= 0 || rate.den <= 0)
        rate = st->r_frame_rate;
    p->geometry.frame_rate =
        rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;

    matrix = (const int32_t *)av_stream_get_side_data(
        st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    p->transform = matrix ? sn_transform_from_matrix(matrix)
                          : SN_TRANSFORM_NONE;
    p->geometry.transposed = sn_transform_swaps_axes(p->transform);

    p->interlaced = par->field_order != AV_FIELD_PROGRESSIVE &&
                    par->field_order != AV_FIELD_UNKNOWN;
    snprintf(p->video_codec, sizeof(p->video_codec), "%s",
             avcodec_get_name(par->codec_id));
}

static int check_limits(const char *name, const struct sn_limits *limits,
                        const struct sn_probe *p, char *err, size_t err_size)
{
    if (p->file_size > limits->max_file_size) {
        snprintf(err, err_size,
                 "%s: file size %lld bytes is over the limit of %lld "
                 "(--max-file-size)", name, (long long)p->file_size,
                 (long long)limits->max_file_size);
        return SN_ERR_LIMIT;
    }
    if (p->video_index >= 0 &&
        (p->geometry.coded_width > limits->max_width ||
         p->geometry.coded_height > limits->max_height)) {
        snprintf(err, err_size,
                 "%s: resolution %dx%d is over the limit of %dx%d "
                 "(--max-width, --max-height)", name,
                 p->geometry.coded_width, p->geometry.coded_height,
                 limits->max_width, limits->max_height);
        return SN_ERR_LIMIT;
    }
    return 0;
}

struct scan {
    int64_t *video_us;        /* absolute microseconds */
    size_t n_video;
    size_t cap_video;
    int64_t video_last_duration_us;
    int64_t audio_first_us;
    int64_t audio_end_us;
};

static int add_video_time(struct scan *s, int64_t us)
{
    if (s->n_video == s->cap_video) {
        size_t cap = s->cap_video ? s->cap_video * 2 : 1024;
        int64_t *v = realloc(s->video_us, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        s->video_us = v;
        s->cap_video = cap;
    }
    s->video_us[s->n_video++] = us;
    return 0;
}

static int64_t packet_time_us(const AVPacket *pkt, AVRational tb)
{
    int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;

    if (ts == AV_NOPTS_VALUE)
        return AV_NOPTS_VALUE;
    return av_rescale_q(ts, tb, AV_TIME_BASE_Q);
}

static int scan_packet(AVFormatContext *fmt, const AVPacket *pkt,
                       const struct sn_limits *limits, struct sn_probe *p,
                       struct scan *s)
{
    AVStream *st = fmt->streams[pkt->stream_index];
    int64_t us = packet_time_us(pkt, st->time_base);
    int64_t dur = pkt->duration > 0
                      ? av_rescale_q(pkt->duration, st->time_base,
                                     AV_TIME_BASE_Q)
                      : 0;

    if (us == AV_NOPTS_VALUE || (pkt->flags & AV_PKT_FLAG_DISCARD))
        return 0;

    if (pkt->stream_index == p->video_index) {
        if ((int64_t)s->n_video >= limits->max_frames)
            return SN_ERR_LIMIT;
        if (s->n_video == 0 || us >= s->video_us[s->n_video - 1])
            s->video_last_duration_us = dur;
        return add_video_time(s, us);
    }

    if (s->audio_first_us == AV_NOPTS_VALUE || us < s->audio_first_us)
        s->audio_first_us = us;
    if (s->audio_end_us == AV_NOPTS_VALUE || us + dur > s->audio_end_us)
        s->audio_end_us = us + dur;
    return 0;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Replaces the container's average frame rate with the one the frames
 * show (from the median interval between them) when the two differ by
 * more than 5%: some FLV, MKV and ASF files declare 60 fps for 30 fps
 * video, which would raise the rungs' bit rates and H.264 levels.
 */
static void correct_frame_rate(struct sn_probe *p, const int64_t *us,
                               size_t n)
{
    int64_t *gaps;
    size_t k = 0;
    double measured;

    if (n < 3)
        return;
    gaps = malloc((n - 1) * sizeof(*gaps));
    if (gaps == NULL)
        return;
    for (size_t i = 1; i < n; i++) {
        if (us[i] > us[i - 1])
            gaps[k++] = us[i] - us[i - 1];
    }
    if (k > 0) {
        qsort(gaps, k, sizeof(*gaps), compare_int64);
        measured = 1e6 / (double)gaps[k / 2];
        if (p->geometry.frame_rate <= 0 ||
            fabs(measured - p->geometry.frame_rate) >
                0.05 * p->geometry.frame_rate)
            p->geometry.frame_rate = measured;
    }
    free(gaps);
}

/* Turns absolute packet times into the probe's timing facts. */
static void finish_timing(struct sn_probe *p, struct scan *s)
{
    int64_t origin = INT64_MAX, end = 0;

    if (s->n_video > 0) {
        int64_t last, frame_us;

        qsort(s->video_us, s->n_video, sizeof(int64_t), compare_int64);
        correct_frame_rate(p, s->video_us, s->n_video);
        origin = s->video_us[0];
        last = s->video_us[s->n_video - 1];
        frame_us = p->geometry.frame_rate > 0
                       ? (int64_t)(1e6 / p->geometry.frame_rate + 0.5)
                       : 40000;
        if (s->video_last_duration_us <= 0)
            s->video_last_duration_us = frame_us;
        p->video_end_us = last + s->video_last_duration_us;
    }
    if (s->audio_first_us != AV_NOPTS_VALUE && s->audio_first_us < origin)
        origin = s->audio_first_us;

    p->origin_us = origin;
    for (size_t i = 0; i < s->n_video; i++)
        s->video_us[i] -= origin;
    if (s->n_video > 0) {
        p->video_start_us = s->video_us[0];
        p->video_end_us -= origin;
        end = p->video_end_us;
    }
    if (p->audio_index >= 0) {
        p->audio_start_us = s->audio_first_us - origin;
        p->audio_end_us = s->audio_end_us - origin;
        if (p->audio_end_us > end)
            end = p->audio_end_us;
    }
    p->duration_us = end;
    p->frame_us = s->video_us;
    p->n_frames = s->n_video;
    s->video_us = NULL;
}

static int scan_packets(const char *name, AVFormatContext *fmt,
                        const struct sn_limits *limits, struct sn_probe *p,
                        char *err, size_t err_size)
{
    struct decoder vdec = {0}, adec = {0};
    struct scan s = {.audio_first_us = AV_NOPTS_VALUE,
                     .audio_end_us = AV_NOPTS_VALUE};
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    char cause[SN_ERR_SIZE];
    int rc = 0;

    if (pkt == NULL || frame == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (p->video_index >= 0)
        sn_decoder_open(fmt->streams[p->video_index], &vdec.ctx);
    if (p->audio_index >= 0)
        sn_decoder_open(fmt->streams[p->audio_index], &adec.ctx);

    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        if ((int)i != p->video_index && (int)i != p->audio_index)
            fmt->streams[i]->discard = AVDISCARD_ALL;
    }

    while ((rc = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == p->video_index ||
            pkt->stream_index == p->audio_index) {
            struct decoder *d =
                pkt->stream_index == p->video_index ? &vdec : &adec;

            test_decode(d, pkt, frame);
            rc = scan_packet(fmt, pkt, limits, p, &s);
        } else {
            rc = 0;
        }
        av_packet_unref(pkt);
        if (rc < 0)
            break;
    }
    if (rc == SN_ERR_LIMIT) {
        snprintf(err, err_size,
                 "%s: more than %lld video frames, the limit (--max-frames)",
                 name, (long long)limits->max_frames);
        goto out;
    }
    if (rc == -ENOMEM) {
        snprintf(err, err_size, "%s: out of memory while probing", name);
        goto out;
    }

    /* A failed read ends the loop like the end of the file would, and
     * would leave the probe with a truncated timeline. */
    rc = sn_input_read_error(fmt, cause, sizeof(cause));
    if (rc < 0) {
        snprintf(err, err_size, "%s: %s", name, cause);
        goto out;
    }

    drain_decoder(&vdec, frame);
    drain_decoder(&adec, frame);
    if (p->video_index >= 0 && (!vdec.decoded || s.n_video == 0))
        p->video_index = -1;
    if (p->audio_index >= 0 &&
        (!adec.decoded || s.audio_first_us == AV_NOPTS_VALUE))
        p->audio_index = -1;
    if (p->video_index < 0) {
        s.n_video = 0;
    }
    finish_timing(p, &s);

out:
    free(s.video_us);
    avcodec_free_context(&vdec.ctx);
    avcodec_free_context(&adec.ctx);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    return rc;
}

int sn_probe_source(const struct sn_source *source,
                    const struct sn_limits *limits, struct sn_probe *p,
                    char *err, size_t err_size)
{
    const char *name = source->name;
    AVFormatContext *fmt = NULL;
    int rc;

    memset(p, 0, sizeof(*p));
    p->video_index = -1;
    p->audio_index = -1;

    rc = sn_input_open_source(source, &fmt, err, err_size);
    if (rc < 0)
        return rc;

    p->file_size = sn_input_size(fmt);
    p->video_index = pick_video(fmt);
    p->audio_index = pick_audio(fmt);
    if (p->video_index < 0 && p->audio_index < 0) {
        snprintf(err, err_size, "%s: no decodable video or audio stream",
                 name);
        rc = SN_ERR_INPUT;
        goto out;
    }
    if (p->video_index >= 0)
        read_video_facts(fmt, p);
    if (p->audio_index >= 0) {
        AVCodecParameters *par = fmt->streams[p->audio_index]->codecpar;

        p->sample_rate = par->sample_rate;
        p->channels = par->ch_layout.nb_channels;
        snprintf(p->audio_codec, sizeof(p->audio_codec), "%s",
                 avcodec_get_name(par->codec_id));
    }

    rc = check_limits(name, limits, p, err, err_size);
    if (rc < 0)
        goto out;
    rc = scan_packets(name, fmt, limits, p, err, err_size);
    if (rc < 0)
        goto out;

    if (p->video_index < 0 && p->audio_index < 0) {
        snprintf(err, err_size,
                 "%s: no video or audio frame could be decoded", name);
        rc = SN_ERR_INPUT;
        goto out;
    }
    if (p->duration_us > limits->max_duration_us) {
        snprintf(err, err_size,
                 "%s: duration %.3f s is over the limit of %.3f s "
                 "(--max-duration)", name, p->duration_us / 1e6,
                 limits->max_duration_us / 1e6);
        rc = SN_ERR_LIMIT;
        goto out;
    }

out:
    sn_input_close(&fmt);
    if (rc < 0)
        sn_probe_release(p);
    return rc;
}

int sn_probe_file(const char *path, const struct sn_limits *limits,
                  struct sn_probe *p, char *err, size_t err_size)
{
    struct sn_source source;

    sn_source_file(&source, path);
    return sn_probe_source(&source, limits, p, err, err_size);
}
