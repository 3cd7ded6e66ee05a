#include "plan/chunks.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

#define SEC 1000000LL

static int plan_is_zeroed(const struct sn_plan *p)
{
    return p->segments == NULL && p->chunks == NULL && p->n_segments == 0 &&
           p->n_chunks == 0;
}

/* Frame i of a rate num/den, as a demuxer would give it: floor to 1 us. */
static int64_t *frame_times(int n, int64_t num, int64_t den)
{
    int64_t *t = malloc((size_t)n * sizeof(*t));

    for (int i = 0; t && i < n; i++)
        t[i] = (int64_t)i * den * SEC / num;
    return t;
}

/*
 * Checks the invariants of any plan: segments strictly ascending on the
 * grid, chunks tiling the segments in order with the configured sizes, and
 * every frame in exactly one segment and one chunk, the one that
 * sn_plan_find_segment() names.
 */
static void check_plan(const struct sn_plan *p, const int64_t *frames,
                       size_t n_frames)
{
    const struct sn_chunk_config *cfg = &p->config;
    int next = 0;
    int *used = calloc((size_t)p->n_segments, sizeof(*used));

    CHECK(used != NULL);
    if (!used)
        return;
    for (int s = 0; s < p->n_segments; s++) {
        const struct sn_segment *sg = &p->segments[s];

        CHECK_INT(sg->start_us, sg->grid_index * cfg->segment_us);
        CHECK_INT(sg->end_us, (sg->grid_index + 1) * cfg->segment_us);
        if (s > 0)
            CHECK(sg->grid_index > p->segments[s - 1].grid_index);
    }
    for (int c = 0; c < p->n_chunks; c++) {
        const struct sn_chunk *ch = &p->chunks[c];
        int want = c == 0 ? cfg->first_chunk_segments : cfg->chunk_segments;

        CHECK_INT(ch->first_segment, next);
        if (c < p->n_chunks - 1)
            CHECK_INT(ch->n_segments, want);
        else
            CHECK(ch->n_segments >= 1 && ch->n_segments <= want);
        CHECK_INT(ch->start_us, p->segments[ch->first_segment].start_us);
        CHECK_INT(ch->end_us,
                  p->segments[ch->first_segment + ch->n_segments - 1].end_us);
        next += ch->n_segments;
    }
    CHECK_INT(next, p->n_segments);

    for (size_t f = 0; f < n_frames; f++) {
        int64_t t = frames[f] < 0 ? 0 : frames[f];
        int in_seg = 0, seg = -1, in_chunk = 0, chunk = -1;

        for (int s = 0; s < p->n_segments; s++) {
            if (p->segments[s].start_us <= t && t < p->segments[s].end_us) {
                in_seg++;
                seg = s;
            }
        }
        for (int c = 0; c < p->n_chunks; c++) {
            if (p->chunks[c].start_us <= t && t < p->chunks[c].end_us) {
                in_chunk++;
                chunk = c;
            }
        }
        CHECK_INT(in_seg, 1);
        CHECK_INT(in_chunk, 1);
        CHECK_INT(sn_plan_find_segment(p, frames[f]), seg);
        if (chunk >= 0 && seg >= 0) {
            CHECK(seg >= p->chunks[chunk].first_segment);
            CHECK(seg < p->chunks[chunk].first_segment +
                            p->chunks[chunk].n_segments);
            used[seg] = 1;
        }
    }
    /* No segment without a frame. */
    for (int s = 0; s < p->n_segments; s++)
        CHECK_INT(used[s], 1);
    free(used);
}

static void chunks_config_defaults_are_6_s_segments_and_2_s_keyframes(void)
{
    struct sn_chunk_config cfg;
    char err[128] = "x";

    sn_chunk_config_init(&cfg);
    CHECK_INT(cfg.segment_us, 6 * SEC);
    CHECK_INT(cfg.keyframe_us, 2 * SEC);
    CHECK_INT(cfg.chunk_segments, 2);
    CHECK_INT(cfg.first_chunk_segments, 1);
    CHECK_INT(sn_chunk_config_check(&cfg, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(sn_chunk_config_check(&cfg, NULL, 0), 0);
}

static void chunks_config_check_rejects_bad_values_with_a_reason(void)
{
    char err[128];

    for (int c = 0; c < 8; c++) {
        struct sn_chunk_config cfg;

        sn_chunk_config_init(&cfg);
        switch (c) {
        case 0: cfg.segment_us = 0; break;
        case 1: cfg.segment_us = -6 * SEC; break;
        case 2: cfg.keyframe_us = 0; break;
        case 3: cfg.keyframe_us = -2 * SEC; break;
        case 4: cfg.keyframe_us = 4 * SEC; break;   /* does not divide 6 s */
        case 5: cfg.keyframe_us = 12 * SEC; break;
        case 6: cfg.chunk_segments = 0; break;
        case 7: cfg.first_chunk_segments = 0; break;
        }
        err[0] = '\0';
        CHECK_INT(sn_chunk_config_check(&cfg, err, sizeof(err)), -EINVAL);
        CHECK(err[0] != '\0');
        CHECK(strchr(err, '\n') == NULL);
        CHECK_INT(sn_chunk_config_check(&cfg, NULL, 0), -EINVAL);
    }
    CHECK_INT(sn_chunk_config_check(NULL, err, sizeof(err)), -EINVAL);

    /* Keyframes every segment, or every 1 s of a 4 s segment, are fine. */
    struct sn_chunk_config ok;
    sn_chunk_config_init(&ok);
    ok.keyframe_us = ok.segment_us;
    CHECK_INT(sn_chunk_config_check(&ok, err, sizeof(err)), 0);
    ok.segment_us = 4 * SEC;
    ok.keyframe_us = 1 * SEC;
    CHECK_INT(sn_chunk_config_check(&ok, err, sizeof(err)), 0);
}

static void chunks_grid_interval_is_half_open_and_negative_counts_as_zero(void)
{
    struct sn_chunk_config cfg, bad;

    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_segment_grid_index(&cfg, 0), 0);
    CHECK_INT(sn_segment_grid_index(&cfg, 6 * SEC - 1), 0);
    CHECK_INT(sn_segment_grid_index(&cfg, 6 * SEC), 1);
    CHECK_INT(sn_segment_grid_index(&cfg, 600 * SEC), 100);
    CHECK_INT(sn_segment_grid_index(&cfg, -1), 0);
    CHECK_INT(sn_segment_grid_index(&cfg, -7 * SEC), 0);
    bad = cfg;
    bad.segment_us = 0;
    CHECK_INT(sn_segment_grid_index(&bad, 5), -1);
    CHECK_INT(sn_segment_grid_index(NULL, 5), -1);
}

/* Ten minutes at num/den fps: 100 contiguous 6 s segments, 51 chunks. */
static void check_ten_minutes(int64_t num, int64_t den)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int n = (int)(600 * num / den);   /* the last frame is just before 600 s */
    int64_t *t = frame_times(n, num, den);

    CHECK(t != NULL);
    if (!t)
        return;
    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, t, (size_t)n, &plan), 0);
    CHECK_INT(plan.n_segments, 100);
    CHECK_INT(plan.segments[99].grid_index, 99);
    CHECK_INT(plan.segments[99].end_us, 600 * SEC);
    CHECK_INT(plan.n_chunks, 51);
    CHECK_INT(plan.chunks[0].n_segments, 1);
    CHECK_INT(plan.chunks[1].n_segments, 2);
    CHECK_INT(plan.chunks[50].n_segments, 1);
    check_plan(&plan, t, (size_t)n);
    sn_plan_release(&plan);
    free(t);
}

static void chunks_23976_fps_frames_land_in_one_segment_and_one_chunk(void)
{
    check_ten_minutes(24000, 1001);
}

static void chunks_2997_fps_frames_land_in_one_segment_and_one_chunk(void)
{
    check_ten_minutes(30000, 1001);
}

static void chunks_frame_on_a_boundary_starts_the_next_segment(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t *t = frame_times(181, 30, 1);   /* frame 180 is at 6 s exactly */

    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_INT(t[180], 6 * SEC);
    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, t, 181, &plan), 0);
    CHECK_INT(plan.n_segments, 2);
    CHECK_INT(sn_plan_find_segment(&plan, t[179]), 0);
    CHECK_INT(sn_plan_find_segment(&plan, t[180]), 1);
    CHECK_INT(plan.n_chunks, 2);
    check_plan(&plan, t, 181);
    sn_plan_release(&plan);

    /* Without frame 180 the source is a single segment. */
    CHECK_INT(sn_plan_chunks(&cfg, t, 180, &plan), 0);
    CHECK_INT(plan.n_segments, 1);
    sn_plan_release(&plan);
    free(t);
}

static void chunks_first_chunk_is_shorter_than_the_rest(void)
{
    static const int sizes[] = {1, 2, 2, 2, 2, 1};
    static const int64_t starts[] = {0, 6, 18, 30, 42, 54};
    static const int64_t ends[] = {6, 18, 30, 42, 54, 60};
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t *t = frame_times(60 * 30, 30, 1);   /* one minute at 30 fps */

    CHECK(t != NULL);
    if (!t)
        return;
    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, t, 60 * 30, &plan), 0);
    CHECK_INT(plan.n_segments, 10);
    CHECK_INT(plan.n_chunks, 6);
    for (int c = 0; c < plan.n_chunks && c < 6; c++) {
        CHECK_INT(plan.chunks[c].n_segments, sizes[c]);
        CHECK_INT(plan.chunks[c].start_us, starts[c] * SEC);
        CHECK_INT(plan.chunks[c].end_us, ends[c] * SEC);
    }
    check_plan(&plan, t, 60 * 30);
    sn_plan_release(&plan);
    free(t);
}

static void chunks_follow_a_custom_config(void)
{
    static const int sizes[] = {2, 3, 3, 2};
    struct sn_chunk_config cfg = {4 * SEC, 1 * SEC, 3, 2, 0};
    struct sn_plan plan;
    int64_t *t = frame_times(40 * 25, 25, 1);   /* 40 s at 25 fps */

    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_INT(sn_plan_chunks(&cfg, t, 40 * 25, &plan), 0);
    CHECK_INT(plan.n_segments, 10);
    CHECK_INT(plan.n_chunks, 4);
    for (int c = 0; c < plan.n_chunks && c < 4; c++)
        CHECK_INT(plan.chunks[c].n_segments, sizes[c]);
    CHECK_INT(plan.chunks[1].start_us, 8 * SEC);
    CHECK_INT(plan.chunks[3].end_us, 40 * SEC);
    CHECK_INT(plan.config.segment_us, 4 * SEC);
    check_plan(&plan, t, 40 * 25);
    sn_plan_release(&plan);

    /* A first chunk longer than the others is allowed too. */
    cfg.first_chunk_segments = 4;
    cfg.chunk_segments = 1;
    CHECK_INT(sn_plan_chunks(&cfg, t, 40 * 25, &plan), 0);
    CHECK_INT(plan.n_chunks, 7);
    CHECK_INT(plan.chunks[0].n_segments, 4);
    CHECK_INT(plan.chunks[0].end_us, 16 * SEC);
    check_plan(&plan, t, 40 * 25);
    sn_plan_release(&plan);

    /* Chunks larger than the whole source: one chunk. */
    cfg.first_chunk_segments = 100;
    CHECK_INT(sn_plan_chunks(&cfg, t, 40 * 25, &plan), 0);
    CHECK_INT(plan.n_chunks, 1);
    CHECK_INT(plan.chunks[0].n_segments, 10);
    sn_plan_release(&plan);
    free(t);
}

static void chunks_single_frame_source_gets_one_segment_and_one_chunk(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t at_zero = 0, later = 7500000;

    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, &at_zero, 1, &plan), 0);
    CHECK_INT(plan.n_segments, 1);
    CHECK_INT(plan.segments[0].start_us, 0);
    CHECK_INT(plan.segments[0].end_us, 6 * SEC);
    CHECK_INT(plan.n_chunks, 1);
    CHECK_INT(plan.chunks[0].first_segment, 0);
    CHECK_INT(plan.chunks[0].n_segments, 1);
    check_plan(&plan, &at_zero, 1);
    sn_plan_release(&plan);

    CHECK_INT(sn_plan_chunks(&cfg, &later, 1, &plan), 0);
    CHECK_INT(plan.n_segments, 1);
    CHECK_INT(plan.segments[0].grid_index, 1);
    CHECK_INT(plan.chunks[0].start_us, 6 * SEC);
    CHECK_INT(plan.chunks[0].end_us, 12 * SEC);
    CHECK_INT(sn_plan_find_segment(&plan, 0), -1);
    check_plan(&plan, &later, 1);
    sn_plan_release(&plan);
}

static void chunks_skip_empty_grid_intervals(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t t[30 * 8 + 30];
    size_t n = 0;

    /* 0..8 s, then nothing until 30 s: grid intervals 2, 3 and 4 are empty. */
    for (int i = 0; i < 30 * 8; i++)
        t[n++] = (int64_t)i * SEC / 30;
    for (int i = 0; i < 30; i++)
        t[n++] = 30 * SEC + (int64_t)i * SEC / 30;

    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, t, n, &plan), 0);
    CHECK_INT(plan.n_segments, 3);
    CHECK_INT(plan.segments[0].grid_index, 0);
    CHECK_INT(plan.segments[1].grid_index, 1);
    CHECK_INT(plan.segments[2].grid_index, 5);
    CHECK_INT(plan.segments[2].start_us, 30 * SEC);
    check_plan(&plan, t, n);

    /* No segment, so nothing is found in the gap. */
    CHECK_INT(sn_plan_find_segment(&plan, 12 * SEC), -1);
    CHECK_INT(sn_plan_find_segment(&plan, 20 * SEC), -1);
    CHECK_INT(sn_plan_find_segment(&plan, 30 * SEC - 1), -1);
    CHECK_INT(sn_plan_find_segment(&plan, 30 * SEC), 2);
    sn_plan_release(&plan);
}

static void chunks_may_span_a_gap_longer_than_one_segment(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t t[] = {0, 1 * SEC, 7 * SEC, 8 * SEC, 31 * SEC, 43 * SEC};

    /* Segments at grid 0, 1, 5 and 7: the second chunk is 1 and 5. */
    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, t, 6, &plan), 0);
    CHECK_INT(plan.n_segments, 4);
    CHECK_INT(plan.n_chunks, 3);
    CHECK_INT(plan.chunks[1].first_segment, 1);
    CHECK_INT(plan.chunks[1].n_segments, 2);
    CHECK_INT(plan.chunks[1].start_us, 6 * SEC);
    CHECK_INT(plan.chunks[1].end_us, 36 * SEC);
    CHECK_INT(plan.chunks[2].start_us, 42 * SEC);
    CHECK_INT(plan.chunks[2].end_us, 48 * SEC);
    check_plan(&plan, t, 6);
    sn_plan_release(&plan);
}

static void chunks_accept_frames_in_any_order_and_repeated(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan, sorted;
    int64_t shuffled[] = {13 * SEC, 1 * SEC, 13 * SEC, 7 * SEC, 1 * SEC,
                          25 * SEC, 7 * SEC, 0, 25 * SEC};
    int64_t in_order[] = {0, 1 * SEC, 7 * SEC, 13 * SEC, 25 * SEC};

    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, shuffled, 9, &plan), 0);
    CHECK_INT(sn_plan_chunks(&cfg, in_order, 5, &sorted), 0);
    CHECK_INT(plan.n_segments, 4);
    CHECK_INT(plan.n_segments, sorted.n_segments);
    CHECK_INT(plan.n_chunks, sorted.n_chunks);
    for (int s = 0; s < plan.n_segments && s < sorted.n_segments; s++)
        CHECK_INT(plan.segments[s].grid_index, sorted.segments[s].grid_index);
    for (int c = 0; c < plan.n_chunks && c < sorted.n_chunks; c++) {
        CHECK_INT(plan.chunks[c].start_us, sorted.chunks[c].start_us);
        CHECK_INT(plan.chunks[c].end_us, sorted.chunks[c].end_us);
    }
    check_plan(&plan, shuffled, 9);
    sn_plan_release(&plan);
    sn_plan_release(&sorted);
}

static void chunks_count_negative_times_as_zero(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t t[] = {-2002, -41708, 0, 41708, 6 * SEC};

    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, t, 5, &plan), 0);
    CHECK_INT(plan.n_segments, 2);
    CHECK_INT(plan.segments[0].start_us, 0);
    CHECK_INT(sn_plan_find_segment(&plan, -2002), 0);
    check_plan(&plan, t, 5);
    sn_plan_release(&plan);

    /* Only negative times: one segment at the origin. */
    CHECK_INT(sn_plan_chunks(&cfg, t, 2, &plan), 0);
    CHECK_INT(plan.n_segments, 1);
    CHECK_INT(plan.segments[0].grid_index, 0);
    sn_plan_release(&plan);
}

static void chunks_find_segment_matches_a_linear_search(void)
{
    struct sn_chunk_config cfg = {1000, 500, 3, 1, 0};
    struct sn_plan plan;
    int64_t t[200];

    /* Every third grid interval, with a long gap in the middle. */
    for (int i = 0; i < 200; i++)
        t[i] = (int64_t)(i < 100 ? i : i + 400) * 3000 + 17;
    CHECK_INT(sn_plan_chunks(&cfg, t, 200, &plan), 0);
    CHECK_INT(plan.n_segments, 200);
    for (int64_t q = -1000; q < 620 * 3000; q += 250) {
        int want = -1, got = sn_plan_find_segment(&plan, q);
        int64_t tq = q < 0 ? 0 : q;

        for (int s = 0; s < plan.n_segments; s++)
            if (plan.segments[s].start_us <= tq && tq < plan.segments[s].end_us)
                want = s;
        if (got != want)
            fprintf(stderr, "t=%lld: %d, expected %d\n", (long long)q, got,
                    want);
        CHECK_INT(got, want);
    }
    sn_plan_release(&plan);

    struct sn_plan empty = {0};
    CHECK_INT(sn_plan_find_segment(&empty, 0), -1);
    CHECK_INT(sn_plan_find_segment(NULL, 0), -1);
}

static void chunks_reject_bad_config_and_no_frames(void)
{
    struct sn_chunk_config good, bad;
    struct sn_plan plan;
    int64_t t[] = {0, 40000};

    sn_chunk_config_init(&good);
    for (int c = 0; c < 4; c++) {
        bad = good;
        switch (c) {
        case 0: bad.segment_us = 0; break;
        case 1: bad.keyframe_us = 4 * SEC; break;
        case 2: bad.chunk_segments = 0; break;
        case 3: bad.first_chunk_segments = -1; break;
        }
        memset(&plan, 0xff, sizeof(plan));
        CHECK_INT(sn_plan_chunks(&bad, t, 2, &plan), -EINVAL);
        CHECK(plan_is_zeroed(&plan));
    }
    memset(&plan, 0xff, sizeof(plan));
    CHECK_INT(sn_plan_chunks(&good, t, 0, &plan), -EINVAL);
    CHECK(plan_is_zeroed(&plan));
    memset(&plan, 0xff, sizeof(plan));
    CHECK_INT(sn_plan_chunks(&good, NULL, 2, &plan), -EINVAL);
    CHECK(plan_is_zeroed(&plan));
    memset(&plan, 0xff, sizeof(plan));
    CHECK_INT(sn_plan_chunks(NULL, t, 2, &plan), -EINVAL);
    CHECK(plan_is_zeroed(&plan));
    CHECK_INT(sn_plan_chunks(&good, t, 2, NULL), -EINVAL);
}

static void chunks_reject_a_time_whose_segment_end_overflows(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t last_k, t[2];

    sn_chunk_config_init(&cfg);
    last_k = INT64_MAX / cfg.segment_us - 1;

    t[0] = 0;
    t[1] = last_k * cfg.segment_us;   /* the last segment that fits */
    CHECK_INT(sn_plan_chunks(&cfg, t, 2, &plan), 0);
    CHECK_INT(plan.n_segments, 2);
    CHECK_INT(plan.segments[1].grid_index, last_k);
    CHECK(plan.segments[1].end_us > plan.segments[1].start_us);
    CHECK_INT(sn_plan_find_segment(&plan, INT64_MAX), -1);
    sn_plan_release(&plan);

    t[1] = INT64_MAX;
    memset(&plan, 0xff, sizeof(plan));
    CHECK_INT(sn_plan_chunks(&cfg, t, 2, &plan), -EINVAL);
    CHECK(plan_is_zeroed(&plan));
}

static void chunks_refuse_more_than_a_million_segments(void)
{
    struct sn_chunk_config cfg = {1, 1, 2, 1, 0};
    struct sn_plan plan;
    size_t n = SN_PLAN_MAX_SEGMENTS + 1;
    int64_t *t = malloc(n * sizeof(*t));

    CHECK_INT(SN_PLAN_MAX_SEGMENTS, 1000000);
    CHECK(t != NULL);
    if (!t)
        return;
    /* Descending, so the limit holds whatever order the frames come in. */
    for (size_t i = 0; i < n; i++)
        t[i] = (int64_t)(n - 1 - i);

    memset(&plan, 0xff, sizeof(plan));
    CHECK_INT(sn_plan_chunks(&cfg, t, n, &plan), -E2BIG);
    CHECK(plan_is_zeroed(&plan));

    /* Exactly the limit is fine: t[1..n-1] hold 0 .. 999999. */
    CHECK_INT(sn_plan_chunks(&cfg, t + 1, n - 1, &plan), 0);
    CHECK_INT(plan.n_segments, SN_PLAN_MAX_SEGMENTS);
    CHECK_INT(plan.n_chunks, 500001);
    CHECK_INT(sn_plan_find_segment(&plan, 999999), 999999);
    sn_plan_release(&plan);

    /* The limit counts segments, not frames: many frames in one segment. */
    for (size_t i = 0; i < n; i++)
        t[i] = (int64_t)(i % 7);
    cfg.segment_us = 10;
    cfg.keyframe_us = 5;
    CHECK_INT(sn_plan_chunks(&cfg, t, n, &plan), 0);
    CHECK_INT(plan.n_segments, 1);
    sn_plan_release(&plan);
    free(t);
}

static void chunks_release_accepts_a_zeroed_plan_and_runs_twice(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan = {0};
    int64_t t = 0;

    sn_plan_release(&plan);
    sn_plan_release(NULL);
    CHECK(plan_is_zeroed(&plan));

    sn_chunk_config_init(&cfg);
    CHECK_INT(sn_plan_chunks(&cfg, &t, 1, &plan), 0);
    sn_plan_release(&plan);
    CHECK(plan_is_zeroed(&plan));
    sn_plan_release(&plan);
}

static void grid_with_short_first_segment(void)
{
    struct sn_chunk_config cfg;

    sn_chunk_config_init(&cfg);
    cfg.first_segment_us = 2 * SEC;

    CHECK_INT(sn_segment_grid_index(&cfg, 0), 0);
    CHECK_INT(sn_segment_grid_index(&cfg, 2 * SEC - 1), 0);
    CHECK_INT(sn_segment_grid_index(&cfg, 2 * SEC), 1);
    CHECK_INT(sn_segment_grid_index(&cfg, 8 * SEC - 1), 1);
    CHECK_INT(sn_segment_grid_index(&cfg, 8 * SEC), 2);
    CHECK_INT(sn_segment_grid_start(&cfg, 0), 0);
    CHECK_INT(sn_segment_grid_start(&cfg, 1), 2 * SEC);
    CHECK_INT(sn_segment_grid_start(&cfg, 3), 14 * SEC);
}

static void chunks_with_short_first_segment(void)
{
    struct sn_chunk_config cfg;
    struct sn_plan plan;
    int64_t *t = frame_times(20 * 30, 30000, 1001);  /* 20 s at 29.97 */

    CHECK(t != NULL);
    if (!t)
        return;
    sn_chunk_config_init(&cfg);
    cfg.first_segment_us = 2 * SEC;

    CHECK_INT(sn_plan_chunks(&cfg, t, 20 * 30, &plan), 0);
    /* The last frame is at 19.987 s: [0,2) [2,8) [8,14) [14,20). */
    CHECK_INT(plan.n_segments, 4);
    if (plan.n_segments != 4 || plan.n_chunks < 2) {
        sn_plan_release(&plan);
        free(t);
        return;
    }
    CHECK_INT(plan.segments[0].end_us, 2 * SEC);
    CHECK_INT(plan.segments[1].start_us, 2 * SEC);
    CHECK_INT(plan.segments[1].end_us, 8 * SEC);
    CHECK_INT(plan.segments[3].start_us, 14 * SEC);
    CHECK_INT(plan.segments[3].end_us, 20 * SEC);
    CHECK_INT(plan.chunks[0].n_segments, 1);
    CHECK_INT(plan.chunks[0].end_us, 2 * SEC);
    CHECK_INT(plan.chunks[1].start_us, 2 * SEC);
    sn_plan_release(&plan);
    free(t);
}

static void config_rejects_bad_first_segment(void)
{
    struct sn_chunk_config cfg;
    char err[256];

    sn_chunk_config_init(&cfg);
    cfg.first_segment_us = 3 * SEC;     /* not a multiple of 2 s */
    CHECK_INT(sn_chunk_config_check(&cfg, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "first segment") != NULL);

    cfg.first_segment_us = 8 * SEC;     /* longer than the 6 s segments */
    CHECK_INT(sn_chunk_config_check(&cfg, err, sizeof(err)), -EINVAL);

    cfg.first_segment_us = 6 * SEC;
    CHECK_INT(sn_chunk_config_check(&cfg, err, sizeof(err)), 0);
}

SN_TEST_MAIN(
    TEST_CASE(chunks_config_defaults_are_6_s_segments_and_2_s_keyframes),
    TEST_CASE(chunks_config_check_rejects_bad_values_with_a_reason),
    TEST_CASE(chunks_grid_interval_is_half_open_and_negative_counts_as_zero),
    TEST_CASE(chunks_23976_fps_frames_land_in_one_segment_and_one_chunk),
    TEST_CASE(chunks_2997_fps_frames_land_in_one_segment_and_one_chunk),
    TEST_CASE(chunks_frame_on_a_boundary_starts_the_next_segment),
    TEST_CASE(chunks_first_chunk_is_shorter_than_the_rest),
    TEST_CASE(chunks_follow_a_custom_config),
    TEST_CASE(chunks_single_frame_source_gets_one_segment_and_one_chunk),
    TEST_CASE(chunks_skip_empty_grid_intervals),
    TEST_CASE(chunks_may_span_a_gap_longer_than_one_segment),
    TEST_CASE(chunks_accept_frames_in_any_order_and_repeated),
    TEST_CASE(chunks_count_negative_times_as_zero),
    TEST_CASE(chunks_find_segment_matches_a_linear_search),
    TEST_CASE(chunks_reject_bad_config_and_no_frames),
    TEST_CASE(chunks_reject_a_time_whose_segment_end_overflows),
    TEST_CASE(chunks_refuse_more_than_a_million_segments),
    TEST_CASE(chunks_release_accepts_a_zeroed_plan_and_runs_twice),
    TEST_CASE(grid_with_short_first_segment),
    TEST_CASE(chunks_with_short_first_segment),
    TEST_CASE(config_rejects_bad_first_segment))
