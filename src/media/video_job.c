#include "media/video_job.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

#include "hls/codecs.h"
#include "media/filters.h"
#include "media/input.h"
#include "util/error.h"
#include "util/fsutil.h"

/* Seek margins tried in turn when a seek lands after the chunk's start. */
static const int64_t seek_margins_us[] = {0, 1000000, 5000000, 30000000, -1};
#define N_SEEK_MARGINS (sizeof(seek_margins_us) / sizeof(seek_margins_us[0]))

/* Positive returns of the decode steps, next to the negative errors. */
#define CHUNK_COMPLETE 1
#define RETRY_SEEK 2

/* The decode side's decision about one frame pushed into the filters. */
struct frame_info {
    int64_t out_pts;          /* 90 kHz output time */
    int kept;                 /* inside the chunk and not decimated */
    int force_key;
    int segment;              /* index into plan->segments */
};

struct rung_state {
    const struct sn_rung *rung;
    AVCodecContext *enc;
    struct sn_seg_writer *writer;
    AVPacket *pending;        /* held until the next DTS gives its duration */
    size_t cursor;            /* next frame_info for this rung's filter output */
    int open_segment;         /* plan segment open in the writer, or -1 */
    struct sn_rung_result *result;
};

struct chunk_run {
    const struct sn_video_job *job;
    const struct sn_chunk *chunk;
    AVFormatContext *fmt;
    AVStream *st;
    AVCodecContext *dec;
    struct sn_video_filter filter;
    struct rung_state rungs[SN_LADDER_MAX];
    struct frame_info *frames;
    size_t n_frames;
    size_t cap_frames;
    int64_t origin_out;       /* origin in 90 kHz, subtracted from every pts */
    int64_t prev_rel_us;      /* previous decoded frame, INT64_MIN if none */
    int64_t prev_kept_rel_us;
    int prev_kept_segment;
    int64_t end_out_pts;      /* end of the chunk's last frame */
    int64_t expected_first_us; /* the chunk's first frame, from the probe */
    int reached_start;        /* a frame at or after the start was decoded */
    int accept_late;          /* this attempt may start after that frame */
    int clean_seen;           /* a frame without damage was decoded */
    int decimate;
    double max_rate;
    AVFrame *held;            /* last frame before the chunk, for bwdif */
    AVFrame *filtered;
    AVPacket *pkt;
    char *err;
    size_t err_size;
};

static int failf(struct chunk_run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct chunk_run *r, int code, const char *fmt, ...)
{
    char cause[SN_ERR_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    snprintf(r->err, r->err_size, "%s: chunk %d: %s", r->job->source->name,
             r->job->chunk, cause);
    return code;
}

const char *sn_segment_extension(enum sn_segment_format format)
{
    return format == SN_SEGMENT_TS ? "ts" : "m4s";
}

int64_t sn_output_pts(int64_t us_from_origin, int timescale)
{
    return av_rescale(us_from_origin + SN_TIMELINE_OFFSET_US, timescale,
                      1000000);
}

static int64_t frame_rel_us(const struct chunk_run *r, int64_t ts)
{
    return av_rescale_q(ts, r->st->time_base, AV_TIME_BASE_Q) -
           r->job->probe->origin_us;
}

static int64_t frame_out_pts(const struct chunk_run *r, int64_t ts)
{
    return av_rescale_q(ts, r->st->time_base,
                        (AVRational){1, SN_VIDEO_TIMESCALE}) -
           r->origin_out;
}

/* ---- encoders ---------------------------------------------------------- */

static int open_encoder(struct chunk_run *r, struct rung_state *s)
{
    const struct sn_encode_settings *set = r->job->settings;
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    AVDictionary *opts = NULL;
    AVCodecContext *enc;
    double fps = s->rung->frame_rate > 0 ? s->rung->frame_rate : 30.0;
    char params[128];
    int rc;

    if (codec == NULL)
        return failf(r, SN_ERR_MEDIA, "the libx264 encoder is not available");
    enc = s->enc = avcodec_alloc_context3(codec);
    if (enc == NULL)
        return failf(r, -ENOMEM, "out of memory");

    enc->width = s->rung->width;
    enc->height = s->rung->height;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->sample_aspect_ratio = (AVRational){1, 1};
    enc->time_base = (AVRational){1, SN_VIDEO_TIMESCALE};
    enc->framerate = av_d2q(fps, 60000);
    enc->color_range = AVCOL_RANGE_MPEG;
    enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    enc->thread_count = set->encoder_threads;
    enc->rc_max_rate = s->rung->maxrate;
    enc->rc_buffer_size = s->rung->bufsize;
    /* Keyframes are forced on the keyframe grid; this is only a backstop. */
    enc->gop_size = (int)ceil(fps * (double)set->keyframe_us / 1e6) * 2 + 1;

    /*
     * mbtree=0: with macroblock-tree rate control, libx264 0.164 (Debian
     * 12) gave different bytes for the same chunk from run to run, in one
     * thread or many, which breaks byte-identical redelivery.
     * vbv-init=0.5: every chunk starts a new VBV buffer; x264's default
     * of 90% full let each chunk's first segment spend up to 1.8 s of
     * maxrate extra, so a 1080p ladder averaged 112% of its cap.
     */
    snprintf(params, sizeof(params),
             "scenecut=0:open-gop=0:mbtree=0:vbv-init=0.5");
    av_dict_set(&opts, "preset", set->preset, 0);
    av_dict_set_int(&opts, "crf", s->rung->crf, 0);
    av_dict_set(&opts, "profile", "high", 0);
    av_dict_set(&opts, "x264-params", params, 0);
    rc = avcodec_open2(enc, codec, &opts);
    av_dict_free(&opts);
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "cannot open libx264 for %s: %s",
                     s->rung->name, av_err2str(rc));

    rc = sn_codecs_avc(enc->extradata, (size_t)enc->extradata_size,
                       s->result->codecs, sizeof(s->result->codecs));
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "no SPS in the %s encoder's headers",
                     s->rung->name);
    return 0;
}

static int rung_path(struct chunk_run *r, const struct rung_state *s,
                     const char *file, char *path, size_t size)
{
    int n = snprintf(path, size, "%s/%s/%s", r->job->out_dir, s->rung->name,
                     file);

    if (n < 0 || (size_t)n >= size)
        return failf(r, SN_ERR_OUTPUT, "output path too long");
    return 0;
}

static int write_output(struct chunk_run *r, const char *path,
                        const void *data, size_t size)
{
    int rc = sn_write_file_atomic(path, data, size);

    if (rc < 0)
        return failf(r, SN_ERR_OUTPUT, "cannot write %s: %s", path,
                     strerror(-rc));
    return 0;
}

static int open_rung(struct chunk_run *r, struct rung_state *s)
{
    const struct sn_encode_settings *set = r->job->settings;
    char path[PATH_MAX];
    const uint8_t *init;
    size_t init_size;
    int rc;

    s->open_segment = -1;
    rc = open_encoder(r, s);
    if (rc < 0)
        return rc;
    rc = sn_seg_writer_new(&s->writer, set->format, s->enc, s->enc->time_base,
                           r->err, r->err_size);
    if (rc < 0)
        return rc;
    s->pending = av_packet_alloc();
    s->result->segments = calloc((size_t)r->chunk->n_segments,
                                 sizeof(*s->result->segments));
    if (s->pending == NULL || s->result->segments == NULL)
        return failf(r, -ENOMEM, "out of memory");

    rc = rung_path(r, s, "", path, sizeof(path));
    if (rc < 0)
        return rc;
    rc = sn_mkdirs(path);
    if (rc < 0)
        return failf(r, SN_ERR_OUTPUT, "cannot create %s: %s", path,
                     strerror(-rc));

    /* Every job makes identical init bytes; the first one to finish wins. */
    init = sn_seg_writer_init(s->writer, &init_size);
    if (init == NULL)
        return 0;
    rc = rung_path(r, s, "init.mp4", path, sizeof(path));
    if (rc == 0 && !sn_path_exists(path))
        rc = write_output(r, path, init, init_size);
    return rc;
}

/* ---- segments ---------------------------------------------------------- */

static struct sn_segment_info *segment_result(struct rung_state *s,
                                              const struct chunk_run *r,
                                              int segment)
{
    return &s->result->segments[segment - r->chunk->first_segment];
}

static int end_segment(struct chunk_run *r, struct rung_state *s)
{
    struct sn_segment_bytes bytes;
    struct sn_segment_info *info = segment_result(s, r, s->open_segment);
    char name[64], path[PATH_MAX];
    int rc;

    rc = sn_seg_writer_end(s->writer, &bytes, r->err, r->err_size);
    if (rc < 0)
        return rc;

    snprintf(name, sizeof(name), "seg_%05d.%s", s->open_segment,
             sn_segment_extension(r->job->settings->format));
    rc = rung_path(r, s, name, path, sizeof(path));
    if (rc == 0)
        rc = write_output(r, path, bytes.data, bytes.size);

    info->bytes = (int64_t)bytes.size;
    info->n_iframes = bytes.n_iframes;
    memcpy(info->iframes, bytes.iframes,
           (size_t)bytes.n_iframes * sizeof(bytes.iframes[0]));
    sn_segment_bytes_release(&bytes);
    s->open_segment = -1;
    return rc;
}

static const struct frame_info *find_frame(const struct chunk_run *r,
                                           int64_t out_pts)
{
    size_t lo = 0, hi = r->n_frames;

    /* frames[] rises with out_pts: the decoder returns presentation order. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (r->frames[mid].out_pts < out_pts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->n_frames && r->frames[lo].out_pts == out_pts)
        return &r->frames[lo];
    return NULL;
}

static int write_packet(struct chunk_run *r, struct rung_state *s,
                        AVPacket *pkt)
{
    const struct frame_info *f = find_frame(r, pkt->pts);
    int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
    int rc;

    if (f == NULL)
        return failf(r, SN_ERR_MEDIA, "%s: packet with unknown pts %lld",
                     s->rung->name, (long long)pkt->pts);

    if (key && f->segment != s->open_segment) {
        const struct sn_segment *seg = &r->job->plan->segments[f->segment];

        if (s->open_segment >= 0) {
            rc = end_segment(r, s);
            if (rc < 0)
                return rc;
        }
        rc = sn_seg_writer_begin(s->writer, seg->grid_index * 64 + 1,
                                 r->err, r->err_size);
        if (rc < 0)
            return rc;
        s->open_segment = f->segment;
    }
    if (s->open_segment < 0)
        return failf(r, SN_ERR_MEDIA, "%s: first packet is not a keyframe",
                     s->rung->name);

    segment_result(s, r, s->open_segment)->frames++;
    return sn_seg_writer_write(s->writer, pkt, r->err, r->err_size);
}

/*
 * Packets wait for their successor so that each gets its DTS delta as
 * duration: fMP4 sample durations must add up to the next fragment's tfdt.
 */
static int queue_packet(struct chunk_run *r, struct rung_state *s,
                        AVPacket *pkt)
{
    int rc = 0;

    if (s->pending->data != NULL) {
        s->pending->duration = pkt->dts - s->pending->dts;
        rc = write_packet(r, s, s->pending);
        av_packet_unref(s->pending);
    }
    av_packet_move_ref(s->pending, pkt);
    return rc;
}

static int drain_encoder(struct chunk_run *r, struct rung_state *s)
{
    int rc;

    for (;;) {
        rc = avcodec_receive_packet(s->enc, r->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return failf(r, SN_ERR_MEDIA, "%s: encoding failed: %s",
                         s->rung->name, av_err2str(rc));
        rc = queue_packet(r, s, r->pkt);
        av_packet_unref(r->pkt);
        if (rc < 0)
            return rc;
    }
}

static int encode_frame(struct chunk_run *r, struct rung_state *s,
                        AVFrame *frame)
{
    int rc = avcodec_send_frame(s->enc, frame);

    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "%s: encoding failed: %s",
                     s->rung->name, av_err2str(rc));
    return drain_encoder(r, s);
}

/* Flushes the encoder and closes the rung's last segment. */
static int finish_rung(struct chunk_run *r, struct rung_state *s)
{
    int64_t last_pts = r->n_frames ? INT64_MIN : 0;
    int rc = encode_frame(r, s, NULL);

    if (rc < 0)
        return rc;

    for (size_t i = 0; i < r->n_frames; i++) {
        if (r->frames[i].kept && r->frames[i].out_pts > last_pts)
            last_pts = r->frames[i].out_pts;
    }
    if (s->pending->data != NULL) {
        /* The last packet lasts as long as the last frame is shown. */
        s->pending->duration = r->end_out_pts - last_pts;
        rc = write_packet(r, s, s->pending);
        av_packet_unref(s->pending);
        if (rc < 0)
            return rc;
    }
    return s->open_segment >= 0 ? end_segment(r, s) : 0;
}

/* ---- filtering --------------------------------------------------------- */

static int pull_filtered(struct chunk_run *r, int rung_index)
{
    struct rung_state *s = &r->rungs[rung_index];
    AVFilterContext *sink = r->filter.sinks[rung_index];
    int rc;

    for (;;) {
        const struct frame_info *f;

        rc = av_buffersink_get_frame(sink, r->filtered);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return failf(r, SN_ERR_MEDIA, "filtering failed: %s",
                         av_err2str(rc));

        /* The graph keeps one output per input, in order. */
        if (s->cursor >= r->n_frames) {
            av_frame_unref(r->filtered);
            return failf(r, SN_ERR_MEDIA, "filter produced extra frames");
        }
        f = &r->frames[s->cursor++];
        if (f->kept) {
            r->filtered->pts = f->out_pts;
            r->filtered->pict_type =
                f->force_key ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
            rc = encode_frame(r, s, r->filtered);
        }
        av_frame_unref(r->filtered);
        if (rc < 0)
            return rc;
    }
}

static int pull_all(struct chunk_run *r)
{
    for (int i = 0; i < r->job->n_rungs; i++) {
        int rc = pull_filtered(r, i);

        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_frame_info(struct chunk_run *r, const struct frame_info *f)
{
    if (r->n_frames == r->cap_frames) {
        size_t cap = r->cap_frames ? r->cap_frames * 2 : 512;
        struct frame_info *v = realloc(r->frames, cap * sizeof(*v));

        if (v == NULL)
            return failf(r, -ENOMEM, "out of memory");
        r->frames = v;
        r->cap_frames = cap;
    }
    r->frames[r->n_frames++] = *f;
    return 0;
}

static int push_frame(struct chunk_run *r, AVFrame *frame,
                      const struct frame_info *f)
{
    int rc = add_frame_info(r, f);

    if (rc < 0)
        return rc;
    rc = av_buffersrc_add_frame_flags(r->filter.source, frame,
                                      AV_BUFFERSRC_FLAG_KEEP_REF);
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "filtering failed: %s",
                     av_err2str(rc));
    return pull_all(r);
}

/* ---- decoding ---------------------------------------------------------- */

/* Applies the frame-rate cap: keep the first frame of each 1/max_rate tick. */
static int passes_decimation(const struct chunk_run *r, int64_t rel_us)
{
    if (!r->decimate || r->prev_rel_us == INT64_MIN)
        return 1;
    return floor((double)rel_us * r->max_rate / 1e6) >
           floor((double)r->prev_rel_us * r->max_rate / 1e6);
}

static int is_new_gop(const struct chunk_run *r, int64_t rel_us, int segment)
{
    int64_t k = r->job->settings->keyframe_us;

    if (segment != r->prev_kept_segment)
        return 1;
    return rel_us / k > r->prev_kept_rel_us / k;
}

/* Decides what one decoded frame is for, then feeds it on. Returns
 * CHUNK_COMPLETE after the chunk's last frame, or RETRY_SEEK. */
static int handle_decoded(struct chunk_run *r, AVFrame *frame)
{
    const struct sn_plan *plan = r->job->plan;
    int64_t ts = frame->best_effort_timestamp;
    int64_t rel, clamped;
    struct frame_info f = {0};
    int rc;

    if (ts == AV_NOPTS_VALUE)
        return 0;
    rel = frame_rel_us(r, ts);
    clamped = rel < 0 ? 0 : rel;
    f.out_pts = frame_out_pts(r, ts);

    if (clamped >= r->chunk->start_us && !r->reached_start) {
        r->reached_start = 1;
        if (!r->accept_late && rel > r->expected_first_us)
            return RETRY_SEEK;
    }
    if (clamped < r->chunk->start_us) {
        /* Before the chunk: keep the latest one as bwdif's left neighbour. */
        av_frame_unref(r->held);
        av_frame_move_ref(r->held, frame);
        r->prev_rel_us = rel;
        return 0;
    }
    if (r->held->buf[0] != NULL && r->n_frames == 0) {
        struct frame_info before = {.out_pts = frame_out_pts(
                                        r, r->held->best_effort_timestamp)};

        if (before.out_pts < f.out_pts) {
            rc = push_frame(r, r->held, &before);
            if (rc < 0)
                return rc;
        }
        av_frame_unref(r->held);
    }
    if (clamped >= r->chunk->end_us) {
        /* The next chunk's first frame: it ends this chunk's last frame. */
        r->end_out_pts = f.out_pts;
        if (r->n_frames > 0 && f.out_pts > r->frames[r->n_frames - 1].out_pts)
            rc = push_frame(r, frame, &f);
        else
            rc = 0;
        return rc < 0 ? rc : CHUNK_COMPLETE;
    }
    if (r->n_frames > 0 && f.out_pts <= r->frames[r->n_frames - 1].out_pts)
        return 0;             /* a repeated timestamp: keep the first */

    f.segment = sn_plan_find_segment(plan, clamped);
    f.kept = f.segment >= 0 && passes_decimation(r, rel);
    if (f.kept) {
        f.force_key = is_new_gop(r, clamped, f.segment);
        r->prev_kept_rel_us = clamped;
        r->prev_kept_segment = f.segment;
    }
    r->prev_rel_us = rel;

    rc = push_frame(r, frame, &f);
    if (rc == 0 && f.kept && r->job->hooks.frames_done)
        r->job->hooks.frames_done(r->job->hooks.opaque, 1);
    return rc;
}

/*
 * Damaged input is rejected, not published with concealed pictures: a
 * packet the decoder refuses, or a frame it flags as damaged, inside this
 * chunk ends the job with the time of the damage. Damage before the
 * chunk's start (in frames decoded only to reach it) belongs to the
 * previous chunk, which checks it. The last two frames are exempt: a file
 * cut short (an upload that ended early, a segment cut from a stream)
 * damages its final packet, and the rest of the video is still whole.
 */
static int reject_if_damaged(struct chunk_run *r, int64_t ts)
{
    const struct sn_probe *p = r->job->probe;
    int64_t rel;

    if (ts == AV_NOPTS_VALUE || r->job->settings->conceal_errors)
        return 0;
    rel = frame_rel_us(r, ts);
    if (rel < r->chunk->start_us || rel >= r->chunk->end_us)
        return 0;
    if (p->n_frames >= 2 && rel >= p->frame_us[p->n_frames - 2])
        return 0;
    return failf(r, SN_ERR_INPUT,
                 "corrupt video data at %.3f s (--conceal-errors publishes "
                 "it with the damage hidden)", (double)rel / 1e6);
}

static int receive_frames(struct chunk_run *r, AVFrame *frame)
{
    const struct sn_job_hooks *hooks = &r->job->hooks;
    int rc;

    for (;;) {
        rc = avcodec_receive_frame(r->dec, frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return failf(r, SN_ERR_MEDIA, "decoding failed: %s",
                         av_err2str(rc));
        if (hooks->cancel != NULL && *hooks->cancel) {
            av_frame_unref(frame);
            return failf(r, SN_ERR_INTERRUPTED, "interrupted");
        }
        if (frame->decode_error_flags ||
            (frame->flags & AV_FRAME_FLAG_CORRUPT)) {
            /* Damage before any whole frame means the seek landed on a
             * picture that needs references from before it. */
            if (!r->clean_seen && !r->accept_late) {
                av_frame_unref(frame);
                return RETRY_SEEK;
            }
            rc = reject_if_damaged(r, frame->best_effort_timestamp);
            if (rc < 0) {
                av_frame_unref(frame);
                return rc;
            }
        } else {
            r->clean_seen = 1;
        }
        rc = handle_decoded(r, frame);
        av_frame_unref(frame);
        if (rc != 0)
            return rc;
    }
}

/* Time of the chunk's first planned frame, to check where a seek landed. */
static int64_t first_frame_us(const struct chunk_run *r)
{
    const struct sn_probe *p = r->job->probe;
    size_t lo = 0, hi = p->n_frames;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (p->frame_us[mid] < r->chunk->start_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_frames ? p->frame_us[lo] : r->chunk->start_us;
}

/* Seeks to the very beginning: by byte where the demuxer allows it (the
 * MPEG-TS timestamp search can land late), else by timestamp. */
static int seek_to_start(struct chunk_run *r)
{
    if (av_seek_frame(r->fmt, -1, 0, AVSEEK_FLAG_BYTE) >= 0)
        return 0;
    if (avformat_seek_file(r->fmt, -1, INT64_MIN, INT64_MIN, INT64_MIN, 0) >=
        0)
        return 0;
    return av_seek_frame(r->fmt, r->st->index, INT64_MIN / 2,
                         AVSEEK_FLAG_BACKWARD);
}

static int seek_to_chunk(struct chunk_run *r, size_t attempt)
{
    int64_t margin = seek_margins_us[attempt];
    int64_t target_us, ts;
    int rc;

    if (r->chunk->start_us == 0 && attempt == 0)
        return 0;

    if (margin >= 0) {
        target_us = r->job->probe->origin_us + r->chunk->start_us - margin;
        ts = av_rescale_q(target_us, AV_TIME_BASE_Q, r->st->time_base);
        rc = av_seek_frame(r->fmt, r->st->index, ts, AVSEEK_FLAG_BACKWARD);
    } else {
        rc = -1;
    }
    if (rc < 0 && seek_to_start(r) < 0)
        return failf(r, SN_ERR_MEDIA, "cannot seek to the chunk start");
    avcodec_flush_buffers(r->dec);
    return 0;
}

/* Sends the packet in r->pkt, draining frames when the decoder is full. */
static int send_packet(struct chunk_run *r, AVFrame *frame)
{
    int64_t ts = r->pkt->pts != AV_NOPTS_VALUE ? r->pkt->pts : r->pkt->dts;
    int rc;

    for (;;) {
        rc = avcodec_send_packet(r->dec, r->pkt);
        if (rc != AVERROR(EAGAIN))
            break;
        rc = receive_frames(r, frame);
        if (rc != 0) {
            av_packet_unref(r->pkt);
            return rc;
        }
    }
    av_packet_unref(r->pkt);
    /* A seek can land inside a packet; until a whole frame has come out,
     * a refused packet is that partial one and is skipped. */
    if (rc == AVERROR_INVALIDDATA)
        return r->clean_seen ? reject_if_damaged(r, ts) : 0;
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "decoding failed: %s", av_err2str(rc));
    return rc;
}

/* Demuxers end a stream at a failed read as at the end of the file. */
static int check_reads(struct chunk_run *r)
{
    char cause[SN_ERR_SIZE];
    int rc = sn_input_read_error(r->fmt, cause, sizeof(cause));

    return rc < 0 ? failf(r, rc, "%s", cause) : 0;
}

/*
 * Decodes from the seek point to the end of the chunk. Returns RETRY_SEEK
 * when the seek landed after the chunk's first frame (some demuxers seek
 * only roughly) and must be retried from earlier.
 */
static int decode_chunk(struct chunk_run *r, AVFrame *frame)
{
    int rc = 0;

    while ((rc = av_read_frame(r->fmt, r->pkt)) >= 0) {
        if (r->pkt->stream_index != r->st->index) {
            av_packet_unref(r->pkt);
            continue;
        }
        rc = send_packet(r, frame);
        if (rc != 0)
            return rc == CHUNK_COMPLETE ? 0 : rc;
        rc = receive_frames(r, frame);
        if (rc != 0)
            return rc == CHUNK_COMPLETE ? 0 : rc;
    }

    rc = check_reads(r);
    if (rc < 0)
        return rc;

    /* End of file: drain the decoder; the chunk ends with the video. */
    avcodec_send_packet(r->dec, NULL);
    rc = receive_frames(r, frame);
    if (rc < 0 || rc == RETRY_SEEK)
        return rc;
    if (!r->reached_start && !r->accept_late)
        return RETRY_SEEK;
    r->end_out_pts = sn_output_pts(r->job->probe->video_end_us,
                                   SN_VIDEO_TIMESCALE);
    return 0;
}

static int open_decoder(struct chunk_run *r)
{
    int rc = sn_decoder_open(r->st, &r->dec);

    if (rc == AVERROR_DECODER_NOT_FOUND)
        return failf(r, SN_ERR_INPUT, "no decoder for %s",
                     avcodec_get_name(r->st->codecpar->codec_id));
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "cannot open the decoder: %s",
                     av_err2str(rc));
    return 0;
}

/* The filter graph needs the decoded size and format, so it starts late. */
static int start_filters(struct chunk_run *r)
{
    const struct sn_probe *p = r->job->probe;

    return sn_video_filter_init(&r->filter, r->dec, r->st->time_base,
                                p->transform, p->interlaced, r->job->rungs,
                                r->job->n_rungs, AV_PIX_FMT_YUV420P, r->err,
                                r->err_size);
}

static int run_chunk(struct chunk_run *r)
{
    AVFrame *frame = av_frame_alloc();
    int rc = 0;

    if (frame == NULL)
        return failf(r, -ENOMEM, "out of memory");

    r->expected_first_us = first_frame_us(r);
    for (size_t attempt = 0; attempt < N_SEEK_MARGINS; attempt++) {
        r->n_frames = 0;
        r->prev_rel_us = INT64_MIN;
        r->reached_start = 0;
        r->clean_seen = 0;
        /* Leading frames the decoder cannot show (no keyframe before
         * them) make the probe's first frame unreachable: accept what
         * decoding from the very start gives. */
        r->accept_late = r->chunk->start_us == 0 ||
                         seek_margins_us[attempt] < 0;
        av_frame_unref(r->held);
        rc = seek_to_chunk(r, attempt);
        if (rc < 0)
            break;
        rc = decode_chunk(r, frame);
        if (rc != RETRY_SEEK)
            break;
    }
    if (rc == 0)
        rc = av_buffersrc_add_frame(r->filter.source, NULL);
    if (rc == 0)
        rc = pull_all(r);
    for (int i = 0; rc == 0 && i < r->job->n_rungs; i++)
        rc = finish_rung(r, &r->rungs[i]);

    av_frame_free(&frame);
    return rc;
}

/*
 * Sets each segment's index, first frame and end from the frames the chunk
 * kept: a segment ends where the next one's first frame starts, the last
 * one where the chunk ends. These are the same for every rung.
 */
static int fill_segment_times(struct chunk_run *r,
                              struct sn_video_result *result)
{
    int n = r->chunk->n_segments;
    int64_t first[n > 0 ? n : 1];

    for (int i = 0; i < n; i++)
        first[i] = INT64_MIN;
    for (size_t i = 0; i < r->n_frames; i++) {
        const struct frame_info *f = &r->frames[i];
        int k = f->segment - r->chunk->first_segment;

        if (f->kept && k >= 0 && k < n && first[k] == INT64_MIN)
            first[k] = f->out_pts;
    }

    for (int k = 0; k < n; k++) {
        if (first[k] == INT64_MIN)
            return failf(r, SN_ERR_MEDIA,
                         "segment %d has no decodable frame",
                         r->chunk->first_segment + k);
    }
    for (int i = 0; i < result->n_rungs; i++) {
        struct sn_rung_result *rr = &result->rungs[i];

        rr->n_segments = n;
        for (int k = 0; k < n; k++) {
            struct sn_segment_info *info = &rr->segments[k];

            info->index = r->chunk->first_segment + k;
            info->grid_index =
                r->job->plan->segments[info->index].grid_index;
            info->first_pts = first[k];
            info->end_pts = k + 1 < n ? first[k + 1] : r->end_out_pts;
        }
    }
    return 0;
}

static void release_run(struct chunk_run *r)
{
    for (int i = 0; i < r->job->n_rungs; i++) {
        struct rung_state *s = &r->rungs[i];

        sn_seg_writer_free(&s->writer);
        avcodec_free_context(&s->enc);
        av_packet_free(&s->pending);
    }
    sn_video_filter_release(&r->filter);
    avcodec_free_context(&r->dec);
    sn_input_close(&r->fmt);
    av_frame_free(&r->held);
    av_frame_free(&r->filtered);
    av_packet_free(&r->pkt);
    free(r->frames);
}

static int start_run(struct chunk_run *r, struct sn_video_result *result)
{
    const struct sn_video_job *job = r->job;
    int rc;

    r->held = av_frame_alloc();
    r->filtered = av_frame_alloc();
    r->pkt = av_packet_alloc();
    if (r->held == NULL || r->filtered == NULL || r->pkt == NULL)
        return failf(r, -ENOMEM, "out of memory");

    rc = sn_input_open_source(job->source, &r->fmt, r->err, r->err_size);
    if (rc < 0)
        return rc;
    if (job->probe->video_index >= (int)r->fmt->nb_streams)
        return failf(r, SN_ERR_INPUT, "the video stream is missing");
    r->st = r->fmt->streams[job->probe->video_index];
    for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
        if ((int)i != r->st->index)
            r->fmt->streams[i]->discard = AVDISCARD_ALL;
    }

    rc = open_decoder(r);
    if (rc == 0)
        rc = start_filters(r);
    for (int i = 0; rc == 0 && i < job->n_rungs; i++) {
        r->rungs[i].rung = &job->rungs[i];
        r->rungs[i].result = &result->rungs[i];
        rc = open_rung(r, &r->rungs[i]);
    }
    return rc;
}

int sn_video_job_run(const struct sn_video_job *job,
                     struct sn_video_result *result, char *err,
                     size_t err_size)
{
    struct chunk_run r = {
        .job = job,
        .chunk = &job->plan->chunks[job->chunk],
        .origin_out = av_rescale(job->probe->origin_us, SN_VIDEO_TIMESCALE,
                                 1000000) -
                      av_rescale(SN_TIMELINE_OFFSET_US, SN_VIDEO_TIMESCALE,
                                 1000000),
        .prev_rel_us = INT64_MIN,
        .prev_kept_segment = -1,
        .err = err,
        .err_size = err_size,
    };
    int rc;

    memset(result, 0, sizeof(*result));
    result->n_rungs = job->n_rungs;
    r.max_rate = job->rungs[0].frame_rate > 0 ? job->rungs[0].frame_rate : 60;
    r.decimate = job->probe->geometry.frame_rate >
                 r.max_rate + SN_FRAME_RATE_TOLERANCE;

    rc = start_run(&r, result);
    if (rc == 0)
        rc = run_chunk(&r);
    if (rc == 0)
        rc = fill_segment_times(&r, result);

    release_run(&r);
    if (rc < 0)
        sn_video_result_release(result);
    return rc;
}

void sn_video_result_release(struct sn_video_result *result)
{
    for (int i = 0; i < result->n_rungs; i++) {
        free(result->rungs[i].segments);
        result->rungs[i].segments = NULL;
        result->rungs[i].n_segments = 0;
    }
}

int sn_x264_preset_valid(const char *name)
{
    /* Fastest first, as x264 --fullhelp lists them. */
    static const char *const presets[] = {
        "ultrafast", "superfast", "veryfast", "faster", "fast",
        "medium", "slow", "slower", "veryslow", "placebo",
    };

    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        if (strcmp(name, presets[i]) == 0)
            return 1;
    }
    return 0;
}
