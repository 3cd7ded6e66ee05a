/*
 * Playlists from job results: media playlists per rendition (EVENT while
 * segments are still coming, VOD when complete), I-frame playlists, and the
 * master playlist with measured bandwidths and the encoders' codec strings.
 */
#ifndef SN_PIPELINE_PUBLISH_H
#define SN_PIPELINE_PUBLISH_H

#include "media/job.h"
#include "plan/ladder.h"

/* Finished segments of one rendition, by playlist index. */
struct sn_rendition {
    char name[16];            /* folder name: "720p" or "audio" */
    char codecs[32];
    int timescale;
    int n_segments;           /* planned; audio learns it when done */
    struct sn_segment_info *segments;
    unsigned char *done;      /* done[i] once segment i is written */
};

struct sn_output {
    enum sn_segment_format format;
    const struct sn_rung *rungs;
    int n_rungs;
    struct sn_rendition video[SN_LADDER_MAX];
    int has_audio;
    int audio_channels;
    struct sn_rendition audio;
};

/* Allocates room for n segments. Returns 0 or -ENOMEM. */
int sn_rendition_reserve(struct sn_rendition *r, int n);

void sn_rendition_release(struct sn_rendition *r);

/* Records a finished segment. Returns 0, or -EINVAL for a bad index. */
int sn_rendition_add(struct sn_rendition *r, const struct sn_segment_info *s);

/* Returns 1 when every rendition has its first segment. */
int sn_output_started(const struct sn_output *out);

/* Where playlists go: write() stores text under name ("master.m3u8",
 * "720p/index.m3u8") atomically, returning 0 or SN_ERR_OUTPUT with the
 * cause in err. */
struct sn_publish_sink {
    int (*write)(void *opaque, const char *name, const char *text,
                 size_t size, char *err, size_t err_size);
    void *opaque;
};

/*
 * Writes every rendition's media playlist into dir: the longest run of
 * finished segments from the start as an EVENT playlist, or, when final,
 * the whole list as VOD with I-frame playlists. Writes master.m3u8 once
 * every rendition has started: with bandwidths measured from the written
 * segments when final, else with each rung's maximum rate as an estimate.
 * Every file is replaced atomically. Returns 0 or SN_ERR_OUTPUT with the
 * cause in err.
 */
int sn_publish(const char *dir, const struct sn_output *out, int final,
               char *err, size_t err_size);

/* Like sn_publish(), but hands every playlist to sink. */
int sn_publish_to(const struct sn_publish_sink *sink,
                  const struct sn_output *out, int final, char *err,
                  size_t err_size);

#endif
