/*
 * What the transcoding jobs share: encoder settings, the output timeline
 * and the per-segment results a job reports for the playlists.
 */
#ifndef SN_MEDIA_JOB_H
#define SN_MEDIA_JOB_H

#include <signal.h>
#include <stdint.h>

#include "media/fmp4.h"
#include "media/probe.h"
#include "plan/chunks.h"
#include "plan/ladder.h"

/*
 * Every output timeline starts 10 s after the source's origin, because
 * B-frame reordering puts the first DTS before the first PTS and neither
 * fMP4 tfdt nor MPEG-TS timestamps may be negative.
 */
#define SN_TIMELINE_OFFSET_US INT64_C(10000000)

#define SN_VIDEO_TIMESCALE 90000
#define SN_AUDIO_RATE 48000
#define SN_AUDIO_BITRATE 128000
#define SN_AAC_FRAME 1024

struct sn_encode_settings {
    enum sn_segment_format format;
    char preset[32];          /* x264 preset, default "veryfast" */
    int encoder_threads;      /* x264 threads per rung, default 1 */
    int64_t keyframe_us;      /* forced keyframe interval */
    int conceal_errors;       /* publish damaged frames instead of failing */
};

/* One finished segment of one rendition. */
struct sn_segment_info {
    int index;                /* position in the rendition's playlist */
    int64_t grid_index;       /* the segment's grid interval */
    int64_t first_pts;        /* output time base: 90 kHz video, 48 kHz audio */
    int64_t end_pts;          /* first_pts of the next segment, or the end */
    int64_t bytes;
    int frames;               /* video frames or AAC packets */
    int n_iframes;
    struct sn_iframe iframes[SN_MAX_IFRAMES];
};

/* Hooks a running job calls; all may be NULL. */
struct sn_job_hooks {
    /* Called after every source frame a job finishes, from its thread; the
     * audio job calls it with 0 for every packet it reads, as a sign of
     * life. */
    void (*frames_done)(void *opaque, int64_t frames);
    void *opaque;
    /* Non-zero requests the job to stop; it then returns SN_ERR_INTERRUPTED. */
    const volatile sig_atomic_t *cancel;
};

/* Returns 1 when name is one of x264's presets, ultrafast to placebo. */
int sn_x264_preset_valid(const char *name);

/* Extension of segment files for a format: "m4s" or "ts". */
const char *sn_segment_extension(enum sn_segment_format format);

/* Microseconds from the origin to the output time base, offset included. */
int64_t sn_output_pts(int64_t us_from_origin, int timescale);

#endif
