#include "media/filters.h"

#include <stdio.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "util/buf.h"
#include "util/error.h"

static const char *transform_filter(enum sn_transform t)
{
    switch (t) {
    case SN_TRANSFORM_HFLIP:
        return "hflip";
    case SN_TRANSFORM_VFLIP:
        return "vflip";
    case SN_TRANSFORM_ROTATE_180:
        return "hflip,vflip";
    case SN_TRANSFORM_ROTATE_CW:
        return "transpose=clock";
    case SN_TRANSFORM_ROTATE_CCW:
        return "transpose=cclock";
    case SN_TRANSFORM_TRANSPOSE:
        return "transpose=cclock_flip";
    case SN_TRANSFORM_ANTI_TRANSPOSE:
        return "transpose=clock_flip";
    case SN_TRANSFORM_NONE:
        break;
    }
    return NULL;
}

/* Writes the filter chain description: "[in]...split=N[s0]...;[s0]...[out0]". */
static int describe_video_graph(struct sn_buf *b, enum sn_transform transform,
                                int deinterlace, const struct sn_rung *rungs,
                                int n_rungs, enum AVPixelFormat pix_fmt)
{
    const char *orient = transform_filter(transform);
    const char *fmt_name = av_get_pix_fmt_name(pix_fmt);
    int rc = sn_buf_printf(b, "[in]");

    /* bwdif keeps one frame per frame (mode 0), so timestamps are kept. */
    if (rc == 0 && deinterlace)
        rc = sn_buf_printf(b, "bwdif=mode=send_frame:deint=all,");
    if (rc == 0 && orient != NULL)
        rc = sn_buf_printf(b, "%s,", orient);
    if (rc == 0)
        rc = sn_buf_printf(b, "split=%d", n_rungs);
    for (int i = 0; rc == 0 && i < n_rungs; i++)
        rc = sn_buf_printf(b, "[s%d]", i);
    for (int i = 0; rc == 0 && i < n_rungs; i++) {
        rc = sn_buf_printf(b,
                           ";[s%d]scale=w=%d:h=%d:flags=bicubic"
                           ":out_range=%s,format=%s,setsar=1[out%d]",
                           i, rungs[i].width, rungs[i].height,
                           pix_fmt == AV_PIX_FMT_YUVJ420P ? "pc" : "tv",
                           fmt_name, i);
    }
    return rc;
}

static int link_graph(AVFilterGraph *graph, const char *description,
                      AVFilterContext *source, AVFilterContext **sinks,
                      int n_sinks)
{
    AVFilterInOut *inputs = NULL, *outputs = avfilter_inout_alloc();
    int rc;

    if (outputs == NULL)
        return AVERROR(ENOMEM);
    outputs->name = av_strdup("in");
    outputs->filter_ctx = source;

    for (int i = n_sinks - 1; i >= 0; i--) {
        AVFilterInOut *in = avfilter_inout_alloc();
        char name[16];

        if (in == NULL) {
            rc = AVERROR(ENOMEM);
            goto out;
        }
        snprintf(name, sizeof(name), "out%d", i);
        in->name = av_strdup(name);
        in->filter_ctx = sinks[i];
        in->next = inputs;
        inputs = in;
    }

    rc = avfilter_graph_parse_ptr(graph, description, &inputs, &outputs,
                                  NULL);
    if (rc >= 0)
        rc = avfilter_graph_config(graph, NULL);

out:
    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);
    return rc;
}

static int create_video_source(struct sn_video_filter *f,
                               const AVCodecContext *dec, AVRational tb)
{
    AVBufferSrcParameters *par = av_buffersrc_parameters_alloc();
    int rc;

    f->source = avfilter_graph_alloc_filter(
        f->graph, avfilter_get_by_name("buffer"), "in");
    if (par == NULL || f->source == NULL) {
        av_free(par);
        return AVERROR(ENOMEM);
    }

    par->format = dec->pix_fmt;
    par->width = dec->width;
    par->height = dec->height;
    par->time_base = tb;
    par->sample_aspect_ratio = (AVRational){1, 1};
    rc = av_buffersrc_parameters_set(f->source, par);
    av_free(par);
    if (rc >= 0)
        rc = avfilter_init_str(f->source, NULL);
    return rc;
}

int sn_video_filter_init(struct sn_video_filter *f, const AVCodecContext *dec,
                         AVRational tb, enum sn_transform transform,
                         int deinterlace, const struct sn_rung *rungs,
                         int n_rungs, enum AVPixelFormat pix_fmt, char *err,
                         size_t err_size)
{
    struct sn_buf description;
    int rc;

    memset(f, 0, sizeof(*f));
    sn_buf_init(&description, 64 * 1024);
    f->graph = avfilter_graph_alloc();
    if (f->graph == NULL) {
        rc = AVERROR(ENOMEM);
        goto out;
    }
    f->graph->nb_threads = 1;

    rc = create_video_source(f, dec, tb);
    for (int i = 0; rc >= 0 && i < n_rungs; i++) {
        char name[16];

        snprintf(name, sizeof(name), "out%d", i);
        rc = avfilter_graph_create_filter(&f->sinks[i],
                                          avfilter_get_by_name("buffersink"),
                                          name, NULL, NULL, f->graph);
        f->n_sinks = i + 1;
    }
    if (rc >= 0 && describe_video_graph(&description, transform, deinterlace,
                                        rungs, n_rungs, pix_fmt) < 0)
        rc = AVERROR(ENOMEM);
    if (rc >= 0)
        rc = link_graph(f->graph, description.data, f->source, f->sinks,
                        n_rungs);

out:
    sn_buf_release(&description);
    if (rc < 0) {
        snprintf(err, err_size, "cannot build the video filter graph: %s",
                 av_err2str(rc));
        sn_video_filter_release(f);
        return SN_ERR_MEDIA;
    }
    return 0;
}

void sn_video_filter_release(struct sn_video_filter *f)
{
    avfilter_graph_free(&f->graph);
    memset(f, 0, sizeof(*f));
}

static int create_audio_source(struct sn_audio_filter *f,
                               const AVCodecContext *dec, AVRational tb)
{
    AVChannelLayout layout = {0};
    char layout_name[128];
    char args[512];
    int rc;

    /* Decoders of raw PCM may leave the order unspecified. */
    if (dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&layout, dec->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&layout, &dec->ch_layout) < 0)
        return AVERROR(ENOMEM);
    rc = av_channel_layout_describe(&layout, layout_name,
                                    sizeof(layout_name));
    av_channel_layout_uninit(&layout);
    if (rc < 0)
        return rc;

    snprintf(args, sizeof(args),
             "time_base=%d/%d:sample_rate=%d:sample_fmt=%s:"
             "channel_layout=%s",
             tb.num, tb.den, dec->sample_rate,
             av_get_sample_fmt_name(dec->sample_fmt), layout_name);
    return avfilter_graph_create_filter(&f->source,
                                        avfilter_get_by_name("abuffer"), "in",
                                        args, NULL, f->graph);
}

int sn_audio_filter_init(struct sn_audio_filter *f, const AVCodecContext *dec,
                         AVRational tb, int sample_rate, int channels,
                         int frame_size, char *err, size_t err_size)
{
    char description[256];
    int rc;

    memset(f, 0, sizeof(*f));
    f->graph = avfilter_graph_alloc();
    if (f->graph == NULL) {
        rc = AVERROR(ENOMEM);
        goto out;
    }
    f->graph->nb_threads = 1;

    rc = create_audio_source(f, dec, tb);
    if (rc >= 0)
        rc = avfilter_graph_create_filter(&f->sink,
                                          avfilter_get_by_name("abuffersink"),
                                          "out0", NULL, NULL, f->graph);
    if (rc < 0)
        goto out;

    /* async=1 fills timestamp gaps with silence and trims overlaps, so the
     * output stays in sync with the source clock. */
    snprintf(description, sizeof(description),
             "[in]aresample=%d:async=1,aformat=sample_fmts=fltp:"
             "sample_rates=%d:channel_layouts=%s[out0]",
             sample_rate, sample_rate, channels == 1 ? "mono" : "stereo");
    rc = link_graph(f->graph, description, f->source, &f->sink, 1);
    if (rc >= 0)
        av_buffersink_set_frame_size(f->sink, (unsigned)frame_size);

out:
    if (rc < 0) {
        snprintf(err, err_size, "cannot build the audio filter graph: %s",
                 av_err2str(rc));
        sn_audio_filter_release(f);
        return SN_ERR_MEDIA;
    }
    return 0;
}

void sn_audio_filter_release(struct sn_audio_filter *f)
{
    avfilter_graph_free(&f->graph);
    memset(f, 0, sizeof(*f));
}
