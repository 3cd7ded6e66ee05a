/*
 * Chunk planning: cutting a timeline into HLS segments and segments into
 * chunk jobs.
 *
 * Times are microseconds relative to the source's origin (the earliest
 * start of the streams Sinatra uses). With F the first segment's duration
 * and S the others', grid interval 0 is [0, F) and interval k > 0 is
 * [F + (k - 1) * S, F + k * S): a short first segment lets playback start
 * sooner. A frame belongs to the segment
 * whose interval contains its presentation time, so it belongs to exactly
 * one segment and one chunk. Grid intervals that contain no frame (a gap in
 * the source) get no segment. Pure C: no I/O, no FFmpeg types.
 */
#ifndef SN_PLAN_CHUNKS_H
#define SN_PLAN_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

/* sn_plan_chunks() refuses plans with more segments (about 70 days at 6 s). */
#define SN_PLAN_MAX_SEGMENTS 1000000

struct sn_chunk_config {
    int64_t segment_us;       /* target segment duration, default 6 s */
    int64_t keyframe_us;      /* keyframe interval, default 2 s; divides segment_us */
    int chunk_segments;       /* segments per chunk job, default 2 */
    int first_chunk_segments; /* segments in the first chunk, default 1 */
    int64_t first_segment_us; /* first segment: a multiple of keyframe_us,
                                 at most segment_us; 0 means segment_us */
};

struct sn_segment {
    int64_t grid_index;       /* k: the segment covers the grid interval k */
    int64_t start_us;         /* start of grid interval k */
    int64_t end_us;           /* end of grid interval k */
};

struct sn_chunk {
    int first_segment;        /* index into sn_plan.segments */
    int n_segments;
    int64_t start_us;         /* start of its first segment */
    int64_t end_us;           /* end of its last segment */
};

struct sn_plan {
    struct sn_chunk_config config;
    struct sn_segment *segments;
    int n_segments;
    struct sn_chunk *chunks;
    int n_chunks;
};

void sn_chunk_config_init(struct sn_chunk_config *cfg);

/*
 * Checks a chunk config: positive durations, keyframe_us dividing
 * segment_us and first_segment_us, a first segment no longer than the
 * others, at least one segment per chunk. Returns 0 or -EINVAL with a
 * one-line reason in err.
 */
int sn_chunk_config_check(const struct sn_chunk_config *cfg, char *err,
                          size_t err_size);

/*
 * Returns the grid index of the segment that holds time t_us; a negative
 * time counts as 0. Returns -1 when cfg->segment_us is not positive.
 */
int64_t sn_segment_grid_index(const struct sn_chunk_config *cfg, int64_t t_us);

/* Returns the start of grid interval k (k >= 0) for a checked config. */
int64_t sn_segment_grid_start(const struct sn_chunk_config *cfg, int64_t k);

/*
 * Plans segments and chunks from the presentation times of every frame
 * (microseconds from the origin, any order, negative times count as 0).
 * For audio, pass the start of each AAC frame instead.
 *
 * On success fills *plan, which the caller releases with
 * sn_plan_release(), and returns 0. Returns -EINVAL for an invalid config,
 * no frames, or a frame so late that its segment's end_us overflows
 * int64_t; -E2BIG when the frames span more than SN_PLAN_MAX_SEGMENTS
 * segments; -ENOMEM when allocation fails; *plan is then zeroed.
 */
int sn_plan_chunks(const struct sn_chunk_config *cfg, const int64_t *frame_us,
                   size_t n_frames, struct sn_plan *plan);

/* Frees what sn_plan_chunks() allocated; accepts a zeroed plan. */
void sn_plan_release(struct sn_plan *plan);

/*
 * Returns the index in plan->segments of the segment holding time t_us
 * (a negative time counts as 0, as in planning), or -1 when t_us falls in
 * no planned segment. Binary search: O(log n_segments).
 */
int sn_plan_find_segment(const struct sn_plan *plan, int64_t t_us);

#endif
