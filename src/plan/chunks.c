#include "plan/chunks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sn_chunk_config_init(struct sn_chunk_config *cfg)
{
    cfg->segment_us = 6000000;
    cfg->keyframe_us = 2000000;
    cfg->chunk_segments = 2;
    cfg->first_chunk_segments = 1;
    cfg->first_segment_us = 0;
}

/* The first segment's duration, with 0 standing for segment_us. */
static int64_t first_segment(const struct sn_chunk_config *cfg)
{
    return cfg->first_segment_us > 0 ? cfg->first_segment_us : cfg->segment_us;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (!err || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

int sn_chunk_config_check(const struct sn_chunk_config *cfg, char *err,
                          size_t err_size)
{
    if (err && err_size > 0)
        err[0] = '\0';
    if (!cfg) {
        set_err(err, err_size, "no chunk config");
        return -EINVAL;
    }
    if (cfg->segment_us <= 0) {
        set_err(err, err_size, "segment duration %lld us is not positive",
                (long long)cfg->segment_us);
        return -EINVAL;
    }
    if (cfg->keyframe_us <= 0) {
        set_err(err, err_size, "keyframe interval %lld us is not positive",
                (long long)cfg->keyframe_us);
        return -EINVAL;
    }
    if (cfg->segment_us % cfg->keyframe_us != 0) {
        set_err(err, err_size,
                "keyframe interval %lld us does not divide segment duration "
                "%lld us",
                (long long)cfg->keyframe_us, (long long)cfg->segment_us);
        return -EINVAL;
    }
    if (cfg->first_segment_us < 0 || first_segment(cfg) > cfg->segment_us ||
        first_segment(cfg) % cfg->keyframe_us != 0) {
        set_err(err, err_size,
                "first segment duration %lld us must be a multiple of the "
                "keyframe interval %lld us and at most the segment duration "
                "%lld us",
                (long long)cfg->first_segment_us, (long long)cfg->keyframe_us,
                (long long)cfg->segment_us);
        return -EINVAL;
    }
    if (cfg->chunk_segments < 1) {
        set_err(err, err_size, "chunks need at least 1 segment, not %d",
                cfg->chunk_segments);
        return -EINVAL;
    }
    if (cfg->first_chunk_segments < 1) {
        set_err(err, err_size, "the first chunk needs at least 1 segment, not %d",
                cfg->first_chunk_segments);
        return -EINVAL;
    }
    return 0;
}

int64_t sn_segment_grid_index(const struct sn_chunk_config *cfg, int64_t t_us)
{
    if (!cfg || cfg->segment_us <= 0)
        return -1;
    if (t_us < first_segment(cfg))
        return 0;
    return 1 + (t_us - first_segment(cfg)) / cfg->segment_us;
}

int64_t sn_segment_grid_start(const struct sn_chunk_config *cfg, int64_t k)
{
    if (k <= 0)
        return 0;
    return first_segment(cfg) + (k - 1) * cfg->segment_us;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

int sn_plan_chunks(const struct sn_chunk_config *cfg, const int64_t *frame_us,
                   size_t n_frames, struct sn_plan *plan)
{
    int64_t *keys = NULL;
    size_t n_keys = 0;
    int64_t last_k;
    int n_chunks, seg;

    if (!plan)
        return -EINVAL;
    memset(plan, 0, sizeof(*plan));
    if (sn_chunk_config_check(cfg, NULL, 0) != 0 || !frame_us || n_frames == 0)
        return -EINVAL;
    if (n_frames > SIZE_MAX / sizeof(*keys))
        return -ENOMEM;

    /* The end of segment k, first + k * segment_us, must fit in int64_t. */
    last_k = (INT64_MAX - first_segment(cfg)) / cfg->segment_us;

    /* Grid index of every frame, sorted and made unique. */
    keys = malloc(n_frames * sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < n_frames; i++) {
        keys[i] = sn_segment_grid_index(cfg, frame_us[i]);
        if (keys[i] > last_k) {
            free(keys);
            return -EINVAL;
        }
    }
    qsort(keys, n_frames, sizeof(*keys), cmp_i64);
    for (size_t i = 0; i < n_frames; i++)
        if (n_keys == 0 || keys[i] != keys[n_keys - 1])
            keys[n_keys++] = keys[i];
    if (n_keys > SN_PLAN_MAX_SEGMENTS) {
        free(keys);
        return -E2BIG;
    }

    /* Every chunk has at least one segment: n_keys chunks at most. */
    plan->segments = malloc(n_keys * sizeof(*plan->segments));
    plan->chunks = malloc(n_keys * sizeof(*plan->chunks));
    if (!plan->segments || !plan->chunks) {
        free(keys);
        sn_plan_release(plan);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n_keys; i++) {
        plan->segments[i].grid_index = keys[i];
        plan->segments[i].start_us = sn_segment_grid_start(cfg, keys[i]);
        plan->segments[i].end_us = sn_segment_grid_start(cfg, keys[i] + 1);
    }
    free(keys);
    plan->n_segments = (int)n_keys;

    /* Runs of consecutive planned segments; a run may span a gap. */
    n_chunks = 0;
    for (seg = 0; seg < plan->n_segments;) {
        int want = n_chunks == 0 ? cfg->first_chunk_segments
                                 : cfg->chunk_segments;
        int n = plan->n_segments - seg < want ? plan->n_segments - seg : want;
        struct sn_chunk *c = &plan->chunks[n_chunks++];

        c->first_segment = seg;
        c->n_segments = n;
        c->start_us = plan->segments[seg].start_us;
        c->end_us = plan->segments[seg + n - 1].end_us;
        seg += n;
    }
    plan->n_chunks = n_chunks;
    plan->config = *cfg;
    return 0;
}

void sn_plan_release(struct sn_plan *plan)
{
    if (!plan)
        return;
    free(plan->segments);
    free(plan->chunks);
    memset(plan, 0, sizeof(*plan));
}

int sn_plan_find_segment(const struct sn_plan *plan, int64_t t_us)
{
    int lo = 0, hi;

    if (!plan || !plan->segments || plan->n_segments <= 0)
        return -1;
    if (t_us < 0)
        t_us = 0;

    /* The first segment that ends after t_us, by binary search. */
    hi = plan->n_segments;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;

        if (plan->segments[mid].end_us <= t_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < plan->n_segments && plan->segments[lo].start_us <= t_us)
        return lo;
    return -1;
}
