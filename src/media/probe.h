/*
 * Probing: the facts about a source that planning and transcoding need,
 * read by demuxing every packet (no full decode), so that a header that
 * lies about the duration or frame count cannot mislead the plan.
 */
#ifndef SN_MEDIA_PROBE_H
#define SN_MEDIA_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "plan/ladder.h"

struct sn_source;

/* Limits on what an input may contain; sn_limits_init() sets defaults. */
struct sn_limits {
    int max_width;            /* coded pixels, default 8192 */
    int max_height;           /* default 8192 */
    int64_t max_duration_us;  /* default 6 hours */
    int64_t max_frames;       /* video packets, default 2,000,000 */
    int64_t max_file_size;    /* bytes, default 64 GiB */
};

void sn_limits_init(struct sn_limits *limits);

/* Pixel transform the display matrix requests, applied before scaling. */
enum sn_transform {
    SN_TRANSFORM_NONE,
    SN_TRANSFORM_HFLIP,
    SN_TRANSFORM_VFLIP,
    SN_TRANSFORM_ROTATE_180,
    SN_TRANSFORM_ROTATE_CW,         /* 90 degrees clockwise */
    SN_TRANSFORM_ROTATE_CCW,        /* 90 degrees counter-clockwise */
    SN_TRANSFORM_TRANSPOSE,         /* mirror across the main diagonal */
    SN_TRANSFORM_ANTI_TRANSPOSE,    /* mirror across the other diagonal */
};

struct sn_probe {
    int video_index;          /* stream index, or -1 */
    int audio_index;          /* stream index, or -1 */

    /* Video facts, meaningful when video_index >= 0. */
    struct sn_video_geometry geometry;
    enum sn_transform transform;
    int interlaced;
    char video_codec[32];
    int64_t *frame_us;        /* every frame's time from the origin, sorted */
    size_t n_frames;
    int64_t video_start_us;   /* first frame, from the origin */
    int64_t video_end_us;     /* end of the last frame, from the origin */

    /* Audio facts, meaningful when audio_index >= 0. */
    int sample_rate;
    int channels;
    char audio_codec[32];
    int64_t audio_start_us;   /* from the origin */
    int64_t audio_end_us;

    int64_t origin_us;        /* earliest start of the two streams, absolute */
    int64_t duration_us;      /* from the origin to the later end */
    int64_t file_size;
};

/*
 * Probes an input: opens it with sn_input_open_source(), picks the best
 * video and audio streams that decode (an attached picture is not video),
 * decodes the first frame of each to prove it decodes, reads the display
 * matrix, and scans all packets for timing.
 *
 * Returns 0 and fills *probe (release with sn_probe_release()), or
 * SN_ERR_INPUT when the input is not usable media, SN_ERR_LIMIT when it is
 * over a limit, -ENOMEM, or the code of a failed read of the source. err
 * then contains one line naming source->name and the cause, and *probe is
 * zeroed.
 */
int sn_probe_source(const struct sn_source *source,
                    const struct sn_limits *limits, struct sn_probe *probe,
                    char *err, size_t err_size);

/* Probes the file at path like sn_probe_source() with sn_source_file(). */
int sn_probe_file(const char *path, const struct sn_limits *limits,
                  struct sn_probe *probe, char *err, size_t err_size);

void sn_probe_release(struct sn_probe *probe);

/* Returns the transform for a display matrix in FFmpeg's layout. */
enum sn_transform sn_transform_from_matrix(const int32_t matrix[9]);

/* Returns 1 when the transform swaps width and height. */
int sn_transform_swaps_axes(enum sn_transform t);

#endif
