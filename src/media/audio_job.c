#include "media/audio_job.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>

#include "hls/codecs.h"
#include "media/filters.h"
#include "media/input.h"
#include "util/error.h"
#include "util/fsutil.h"

struct audio_run {
    const struct sn_audio_job *job;
    struct sn_audio_result *result;
    AVFormatContext *fmt;
    AVStream *st;
    AVCodecContext *dec;
    AVCodecContext *enc;
    struct sn_audio_filter filter;
    struct sn_seg_writer *writer;
    int filter_ready;
    int64_t origin_out;       /* origin minus the offset, in samples */
    int64_t open_grid;        /* grid index of the open segment, or -1 */
    int64_t next_pts;         /* expected pts of the next decoded frame */
    int cap_segments;
    AVFrame *frame;
    AVPacket *pkt;
    char *err;
    size_t err_size;
};

static int failf(struct audio_run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct audio_run *r, int code, const char *fmt, ...)
{
    char cause[SN_ERR_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    snprintf(r->err, r->err_size, "%s: audio: %s", r->job->source->name,
             cause);
    return code;
}

static int write_output(struct audio_run *r, const char *file,
                        const void *data, size_t size)
{
    char path[PATH_MAX];
    int rc;

    if (snprintf(path, sizeof(path), "%s/audio/%s", r->job->out_dir, file) >=
        (int)sizeof(path))
        return failf(r, SN_ERR_OUTPUT, "output path too long");
    rc = sn_write_file_atomic(path, data, size);
    if (rc < 0)
        return failf(r, SN_ERR_OUTPUT, "cannot write %s: %s", path,
                     strerror(-rc));
    return 0;
}

static int open_encoder(struct audio_run *r)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("aac");
    int channels = r->job->probe->channels == 1 ? 1 : 2;
    int rc;

    if (codec == NULL)
        return failf(r, SN_ERR_MEDIA, "the AAC encoder is not available");
    r->enc = avcodec_alloc_context3(codec);
    if (r->enc == NULL)
        return failf(r, -ENOMEM, "out of memory");

    r->enc->sample_rate = SN_AUDIO_RATE;
    r->enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&r->enc->ch_layout, channels);
    r->enc->bit_rate = SN_AUDIO_BITRATE;
    r->enc->profile = FF_PROFILE_AAC_LOW;
    r->enc->time_base = (AVRational){1, SN_AUDIO_RATE};
    r->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER | AV_CODEC_FLAG_BITEXACT;
    r->enc->thread_count = 1;

    rc = avcodec_open2(r->enc, codec, NULL);
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "cannot open the AAC encoder: %s",
                     av_err2str(rc));
    r->result->channels = channels;
    if (sn_codecs_aac(r->enc->extradata, (size_t)r->enc->extradata_size,
                      r->result->codecs, sizeof(r->result->codecs)) < 0)
        return failf(r, SN_ERR_MEDIA, "no AudioSpecificConfig from AAC");
    return 0;
}

static int open_decoder(struct audio_run *r)
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

static struct sn_segment_info *add_segment(struct audio_run *r)
{
    struct sn_audio_result *res = r->result;

    if (res->n_segments == r->cap_segments) {
        int cap = r->cap_segments ? r->cap_segments * 2 : 64;
        struct sn_segment_info *v =
            realloc(res->segments, (size_t)cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        res->segments = v;
        r->cap_segments = cap;
    }
    memset(&res->segments[res->n_segments], 0, sizeof(res->segments[0]));
    return &res->segments[res->n_segments++];
}

static int end_segment(struct audio_run *r, int64_t end_pts)
{
    struct sn_segment_info *info =
        &r->result->segments[r->result->n_segments - 1];
    struct sn_segment_bytes bytes;
    char name[64];
    int rc;

    rc = sn_seg_writer_end(r->writer, &bytes, r->err, r->err_size);
    if (rc < 0)
        return rc;
    snprintf(name, sizeof(name), "seg_%05d.%s", info->index,
             sn_segment_extension(r->job->settings->format));
    rc = write_output(r, name, bytes.data, bytes.size);
    info->bytes = (int64_t)bytes.size;
    info->end_pts = end_pts;
    sn_segment_bytes_release(&bytes);
    r->open_grid = -1;
    if (rc == 0 && r->job->segment_written != NULL)
        rc = r->job->segment_written(r->job->segment_opaque, r->result,
                                     r->err, r->err_size);
    return rc;
}

/*
 * Each packet goes to the segment that holds the middle of the audio it
 * carries; the encoder's priming shifts packet times 1024 samples early,
 * so the packet covers [pts + 1024, pts + 2048) of the input timeline.
 */
static int write_packet(struct audio_run *r, AVPacket *pkt)
{
    int64_t mid = pkt->pts + SN_AAC_FRAME + SN_AAC_FRAME / 2;
    int64_t from_origin = av_rescale(mid, 1000000, SN_AUDIO_RATE) -
                          SN_TIMELINE_OFFSET_US;
    int64_t grid = sn_segment_grid_index(r->job->grid,
                                         from_origin < 0 ? 0 : from_origin);
    struct sn_segment_info *info;
    int rc;

    if (grid != r->open_grid) {
        if (r->open_grid >= 0 && grid < r->open_grid)
            grid = r->open_grid;  /* never go back a segment */
    }
    if (grid != r->open_grid) {
        if (r->open_grid >= 0) {
            rc = end_segment(r, pkt->pts);
            if (rc < 0)
                return rc;
        }
        info = add_segment(r);
        if (info == NULL)
            return failf(r, -ENOMEM, "out of memory");
        info->index = r->result->n_segments - 1;
        info->grid_index = grid;
        info->first_pts = pkt->pts;
        rc = sn_seg_writer_begin(r->writer, grid * 64 + 1, r->err,
                                 r->err_size);
        if (rc < 0)
            return rc;
        r->open_grid = grid;
    }

    /* Every AAC frame decodes to 1024 samples, the last one included; the
     * container's sample durations must say so or segments overlap. */
    pkt->duration = SN_AAC_FRAME;
    info = &r->result->segments[r->result->n_segments - 1];
    info->frames++;
    info->end_pts = pkt->pts + pkt->duration;
    return sn_seg_writer_write(r->writer, pkt, r->err, r->err_size);
}

static int encode(struct audio_run *r, AVFrame *frame)
{
    int rc = avcodec_send_frame(r->enc, frame);

    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "encoding failed: %s", av_err2str(rc));
    for (;;) {
        rc = avcodec_receive_packet(r->enc, r->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return failf(r, SN_ERR_MEDIA, "encoding failed: %s",
                         av_err2str(rc));
        rc = write_packet(r, r->pkt);
        av_packet_unref(r->pkt);
        if (rc < 0)
            return rc;
    }
}

static int pull_filtered(struct audio_run *r)
{
    int rc;

    for (;;) {
        rc = av_buffersink_get_frame(r->filter.sink, r->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return failf(r, SN_ERR_MEDIA, "filtering failed: %s",
                         av_err2str(rc));
        r->frame->pts -= r->origin_out;
        rc = encode(r, r->frame);
        av_frame_unref(r->frame);
        if (rc < 0)
            return rc;
    }
}

static int filter_frame(struct audio_run *r, AVFrame *frame)
{
    int rc;

    if (!r->filter_ready) {
        rc = sn_audio_filter_init(&r->filter, r->dec, r->st->time_base,
                                  SN_AUDIO_RATE, r->result->channels,
                                  r->enc->frame_size, r->err, r->err_size);
        if (rc < 0)
            return rc;
        r->filter_ready = 1;
    }
    rc = av_buffersrc_add_frame_flags(r->filter.source, frame, 0);
    if (rc < 0)
        return failf(r, SN_ERR_MEDIA, "filtering failed: %s", av_err2str(rc));
    return pull_filtered(r);
}

/* Gives frames without a timestamp (some ASF and AVI audio) the time
 * right after the previous frame, or the stream's start for the first. */
static void fill_pts(struct audio_run *r, AVFrame *frame)
{
    AVRational tb = r->st->time_base;

    if (frame->pts == AV_NOPTS_VALUE)
        frame->pts = frame->best_effort_timestamp;
    if (frame->pts == AV_NOPTS_VALUE)
        frame->pts = r->next_pts != AV_NOPTS_VALUE
                         ? r->next_pts
                         : av_rescale_q(r->job->probe->origin_us +
                                            r->job->probe->audio_start_us,
                                        AV_TIME_BASE_Q, tb);
    r->next_pts = frame->pts +
                  av_rescale_q(frame->nb_samples,
                               (AVRational){1, frame->sample_rate}, tb);
}

/* Demuxers end a stream at a failed read as at the end of the file. */
static int check_reads(struct audio_run *r)
{
    char cause[SN_ERR_SIZE];
    int rc = sn_input_read_error(r->fmt, cause, sizeof(cause));

    return rc < 0 ? failf(r, rc, "%s", cause) : 0;
}

static int decode_all(struct audio_run *r)
{
    AVFrame *frame = av_frame_alloc();
    int rc = 0, eof = 0;

    if (frame == NULL)
        return failf(r, -ENOMEM, "out of memory");

    while (!eof) {
        const volatile sig_atomic_t *cancel = r->job->hooks.cancel;

        if (cancel != NULL && *cancel) {
            rc = failf(r, SN_ERR_INTERRUPTED, "interrupted");
            break;
        }
        /* No video frames here, but a tick lets the caller know the job
         * is alive (the worker extends its lease on it). */
        if (r->job->hooks.frames_done != NULL)
            r->job->hooks.frames_done(r->job->hooks.opaque, 0);
        rc = av_read_frame(r->fmt, r->pkt);
        if (rc < 0) {
            eof = 1;
            rc = avcodec_send_packet(r->dec, NULL);
        } else if (r->pkt->stream_index == r->st->index) {
            rc = avcodec_send_packet(r->dec, r->pkt);
            av_packet_unref(r->pkt);
        } else {
            av_packet_unref(r->pkt);
            continue;
        }
        /* A damaged packet is skipped; aresample fills the gap in time. */
        if (rc == AVERROR_INVALIDDATA)
            rc = 0;
        while (rc >= 0 && (rc = avcodec_receive_frame(r->dec, frame)) >= 0) {
            fill_pts(r, frame);
            rc = filter_frame(r, frame);
            av_frame_unref(frame);
        }
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            rc = 0;
        if (rc < 0)
            break;
    }
    av_frame_free(&frame);
    if (rc < 0 && rc > -SN_ERR_BASE)
        rc = failf(r, SN_ERR_MEDIA, "decoding failed: %s", av_err2str(rc));
    if (rc >= 0)
        rc = check_reads(r);
    return rc;
}

static int finish(struct audio_run *r)
{
    int rc = 0;

    if (!r->filter_ready)
        return failf(r, SN_ERR_MEDIA, "no audio frame could be decoded");
    rc = av_buffersrc_add_frame(r->filter.source, NULL);
    if (rc >= 0)
        rc = pull_filtered(r);
    if (rc >= 0)
        rc = encode(r, NULL);
    if (rc >= 0 && r->open_grid >= 0)
        rc = end_segment(r, r->result->segments[r->result->n_segments - 1]
                                .end_pts);
    return rc;
}

static int start(struct audio_run *r)
{
    const struct sn_audio_job *job = r->job;
    char path[PATH_MAX];
    const uint8_t *init;
    size_t init_size;
    int rc;

    r->frame = av_frame_alloc();
    r->pkt = av_packet_alloc();
    if (r->frame == NULL || r->pkt == NULL)
        return failf(r, -ENOMEM, "out of memory");

    rc = sn_input_open_source(job->source, &r->fmt, r->err, r->err_size);
    if (rc < 0)
        return rc;
    if (job->probe->audio_index >= (int)r->fmt->nb_streams)
        return failf(r, SN_ERR_INPUT, "the audio stream is missing");
    r->st = r->fmt->streams[job->probe->audio_index];
    for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
        if ((int)i != r->st->index)
            r->fmt->streams[i]->discard = AVDISCARD_ALL;
    }

    rc = open_decoder(r);
    if (rc == 0)
        rc = open_encoder(r);
    if (rc == 0)
        rc = sn_seg_writer_new(&r->writer, job->settings->format, r->enc,
                               r->enc->time_base, r->err, r->err_size);
    if (rc < 0)
        return rc;

    snprintf(path, sizeof(path), "%s/audio", job->out_dir);
    rc = sn_mkdirs(path);
    if (rc < 0)
        return failf(r, SN_ERR_OUTPUT, "cannot create %s: %s", path,
                     strerror(-rc));
    init = sn_seg_writer_init(r->writer, &init_size);
    return init != NULL ? write_output(r, "init.mp4", init, init_size) : 0;
}

int sn_audio_job_run(const struct sn_audio_job *job,
                     struct sn_audio_result *result, char *err,
                     size_t err_size)
{
    struct audio_run r = {
        .job = job,
        .result = result,
        .origin_out = av_rescale(job->probe->origin_us -
                                     SN_TIMELINE_OFFSET_US,
                                 SN_AUDIO_RATE, 1000000),
        .open_grid = -1,
        .next_pts = AV_NOPTS_VALUE,
        .err = err,
        .err_size = err_size,
    };
    int rc;

    memset(result, 0, sizeof(*result));
    rc = start(&r);
    if (rc == 0)
        rc = decode_all(&r);
    if (rc == 0)
        rc = finish(&r);

    sn_seg_writer_free(&r.writer);
    sn_audio_filter_release(&r.filter);
    avcodec_free_context(&r.enc);
    avcodec_free_context(&r.dec);
    sn_input_close(&r.fmt);
    av_frame_free(&r.frame);
    av_packet_free(&r.pkt);
    if (rc < 0)
        sn_audio_result_release(result);
    return rc;
}

void sn_audio_result_release(struct sn_audio_result *result)
{
    free(result->segments);
    result->segments = NULL;
    result->n_segments = 0;
}
