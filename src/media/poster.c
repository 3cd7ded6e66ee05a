#include "media/poster.h"

#include <errno.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>

#include "media/filters.h"
#include "media/input.h"
#include "util/error.h"
#include "util/fsutil.h"

struct poster_run {
    AVFormatContext *fmt;
    AVStream *st;
    AVCodecContext *dec;
    AVCodecContext *enc;
    struct sn_video_filter filter;
    AVFrame *frame;
    AVFrame *last;            /* latest frame before the target */
    AVPacket *pkt;
};

static int open_encoder(struct poster_run *r, const struct sn_rung *rung)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);

    if (codec == NULL)
        return AVERROR_ENCODER_NOT_FOUND;
    r->enc = avcodec_alloc_context3(codec);
    if (r->enc == NULL)
        return AVERROR(ENOMEM);
    r->enc->width = rung->width;
    r->enc->height = rung->height;
    r->enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    r->enc->time_base = (AVRational){1, 25};
    r->enc->flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT;
    r->enc->global_quality = FF_QP2LAMBDA * 3;
    return avcodec_open2(r->enc, codec, NULL);
}

/* Decodes until the first frame at or after target_us (from the origin). */
static int decode_target(struct poster_run *r, const struct sn_probe *probe,
                         int64_t target_us, AVFrame *last)
{
    int rc;

    while ((rc = av_read_frame(r->fmt, r->pkt)) >= 0) {
        if (r->pkt->stream_index != r->st->index) {
            av_packet_unref(r->pkt);
            continue;
        }
        rc = avcodec_send_packet(r->dec, r->pkt);
        av_packet_unref(r->pkt);
        if (rc < 0 && rc != AVERROR_INVALIDDATA)
            return rc;
        while (avcodec_receive_frame(r->dec, r->frame) >= 0) {
            int64_t us = av_rescale_q(r->frame->best_effort_timestamp,
                                      r->st->time_base, AV_TIME_BASE_Q) -
                         probe->origin_us;

            if (us >= target_us)
                return 0;
            av_frame_unref(last);
            av_frame_move_ref(last, r->frame);
        }
    }
    /* A failed read ends the loop too, and must not pass for the end. */
    if (sn_input_read_error(r->fmt, NULL, 0) < 0)
        return AVERROR(EIO);

    /* Shorter than expected: take the last frame the decoder gives. */
    avcodec_send_packet(r->dec, NULL);
    while (avcodec_receive_frame(r->dec, r->frame) >= 0) {
        av_frame_unref(last);
        av_frame_move_ref(last, r->frame);
    }
    if (last->buf[0] == NULL)
        return AVERROR_EOF;
    av_frame_move_ref(r->frame, last);
    return 0;
}

static int encode_poster(struct poster_run *r, const char *path)
{
    AVFrame *scaled = av_frame_alloc();
    int rc;

    if (scaled == NULL)
        return AVERROR(ENOMEM);
    rc = av_buffersrc_add_frame(r->filter.source, r->frame);
    if (rc >= 0)
        rc = av_buffersrc_add_frame(r->filter.source, NULL);
    if (rc >= 0)
        rc = av_buffersink_get_frame(r->filter.sinks[0], scaled);
    if (rc >= 0) {
        scaled->pts = 0;
        rc = avcodec_send_frame(r->enc, scaled);
    }
    if (rc >= 0)
        rc = avcodec_receive_packet(r->enc, r->pkt);
    if (rc >= 0) {
        rc = sn_write_file_atomic(path, r->pkt->data, (size_t)r->pkt->size);
        rc = rc < 0 ? AVERROR(-rc) : 0;
    }
    av_frame_free(&scaled);
    return rc;
}

/* Writes the cause of a failed poster into err; returns the code. */
static int poster_failed(const struct poster_run *r, const char *name,
                         int averror, char *err, size_t err_size)
{
    char cause[SN_ERR_SIZE];
    int rc = sn_input_read_error(r->fmt, cause, sizeof(cause));

    if (rc < 0) {
        snprintf(err, err_size, "%s: poster: %s", name, cause);
        return rc;
    }
    snprintf(err, err_size, "%s: poster: %s", name, av_err2str(averror));
    return SN_ERR_MEDIA;
}

int sn_poster_run(const struct sn_source *source, const struct sn_probe *probe,
                  const struct sn_rung *rung, const char *path, char *err,
                  size_t err_size)
{
    struct poster_run r = {0};
    int64_t target_us = probe->video_start_us +
                        (probe->video_end_us - probe->video_start_us) / 10;
    int rc;

    rc = sn_input_open_source(source, &r.fmt, err, err_size);
    if (rc < 0)
        return rc;
    r.st = r.fmt->streams[probe->video_index];
    r.frame = av_frame_alloc();
    r.last = av_frame_alloc();
    r.pkt = av_packet_alloc();
    rc = r.frame && r.last && r.pkt ? sn_decoder_open(r.st, &r.dec)
                                    : AVERROR(ENOMEM);
    if (rc >= 0)
        rc = open_encoder(&r, rung);
    if (rc >= 0)
        av_seek_frame(r.fmt, r.st->index,
                      av_rescale_q(probe->origin_us + target_us,
                                   AV_TIME_BASE_Q, r.st->time_base),
                      AVSEEK_FLAG_BACKWARD);
    if (rc >= 0)
        rc = decode_target(&r, probe, target_us, r.last);
    if (rc < 0 && rc != AVERROR(ENOMEM)) {
        /* The seek may land past the only keyframe, or at the end of a file
         * without an index: open it again and decode from the start. */
        sn_input_close(&r.fmt);
        rc = sn_input_open_source(source, &r.fmt, err, err_size);
        if (rc < 0)
            goto out;
        r.st = r.fmt->streams[probe->video_index];
        avcodec_flush_buffers(r.dec);
        rc = decode_target(&r, probe, target_us, r.last);
    }
    if (rc >= 0) {
        char cause[SN_ERR_SIZE];

        rc = sn_video_filter_init(&r.filter, r.dec, r.st->time_base,
                                  probe->transform, probe->interlaced, rung, 1,
                                  AV_PIX_FMT_YUVJ420P, cause, sizeof(cause));
        rc = rc < 0 ? AVERROR(EINVAL) : 0;
    }
    if (rc >= 0)
        rc = encode_poster(&r, path);
    if (rc < 0)
        rc = poster_failed(&r, source->name, rc, err, err_size);

out:
    sn_video_filter_release(&r.filter);
    avcodec_free_context(&r.enc);
    avcodec_free_context(&r.dec);
    sn_input_close(&r.fmt);
    av_frame_free(&r.frame);
    av_frame_free(&r.last);
    av_packet_free(&r.pkt);
    return rc < 0 ? rc : 0;
}
