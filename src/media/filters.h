/*
 * libavfilter graphs for the three kinds of jobs: the video chunk graph
 * (deinterlace, orient, then one scale per rung), the audio graph (resample
 * to 48 kHz, down-mix, cut into AAC-sized frames) and the poster graph.
 * Every graph runs single-threaded, because the worker pool provides the
 * parallelism and a fixed thread count keeps the output deterministic.
 */
#ifndef SN_MEDIA_FILTERS_H
#define SN_MEDIA_FILTERS_H

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>

#include "media/probe.h"
#include "plan/ladder.h"

struct sn_video_filter {
    AVFilterGraph *graph;
    AVFilterContext *source;
    AVFilterContext *sinks[SN_LADDER_MAX];
    int n_sinks;
};

/*
 * Builds the video graph for frames from dec (time base tb): bwdif when
 * deinterlace is set, the transform, then per rung a scale to the rung's
 * size, square pixels and limited-range pix_fmt. Returns 0, or
 * SN_ERR_MEDIA with the cause in err; f is then released.
 */
int sn_video_filter_init(struct sn_video_filter *f, const AVCodecContext *dec,
                         AVRational tb, enum sn_transform transform,
                         int deinterlace, const struct sn_rung *rungs,
                         int n_rungs, enum AVPixelFormat pix_fmt, char *err,
                         size_t err_size);

void sn_video_filter_release(struct sn_video_filter *f);

struct sn_audio_filter {
    AVFilterGraph *graph;
    AVFilterContext *source;
    AVFilterContext *sink;
};

/*
 * Builds the audio graph: resample to sample_rate with gaps filled
 * (aresample async), convert to fltp with `channels` channels (1 or 2,
 * down-mixing anything wider), and hand out frames of exactly frame_size
 * samples. Returns 0 or SN_ERR_MEDIA with the cause in err.
 */
int sn_audio_filter_init(struct sn_audio_filter *f, const AVCodecContext *dec,
                         AVRational tb, int sample_rate, int channels,
                         int frame_size, char *err, size_t err_size);

void sn_audio_filter_release(struct sn_audio_filter *f);

#endif
