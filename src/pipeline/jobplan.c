#include "pipeline/jobplan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* ---- building ---------------------------------------------------------- */

static int plan_segments(struct sn_job_plan *p,
                         const struct sn_chunk_config *chunks,
                         const char *source, char *err, size_t err_size)
{
    const struct sn_probe *probe = &p->probe;
    const int64_t *times = probe->frame_us;
    size_t n_times = probe->n_frames;
    int64_t audio_start[1];
    int rc;

    /* Audio only: plan the grid over the audio so chunks stay meaningful. */
    if (probe->video_index < 0) {
        audio_start[0] = probe->audio_start_us;
        times = audio_start;
        n_times = 1;
    }
    rc = sn_plan_chunks(chunks, times, n_times, &p->plan);
    if (rc < 0) {
        snprintf(err, err_size, "%s: cannot plan segments (%s)", source,
                 strerror(-rc));
        return rc == -ENOMEM ? rc : SN_ERR_INPUT;
    }
    return 0;
}

static int plan_jobs(struct sn_job_plan *p, int split_rungs)
{
    const struct sn_probe *probe = &p->probe;
    int k = 0;

    p->jobs = calloc((size_t)p->plan.n_chunks * 2 + 2, sizeof(*p->jobs));
    if (p->jobs == NULL)
        return -ENOMEM;

    for (int c = 0; probe->video_index >= 0 && c < p->plan.n_chunks; c++) {
        int top = p->n_rungs - 1;

        if (top > 0 && split_rungs) {
            p->jobs[k++] = (struct sn_job){SN_JOB_VIDEO, c, top, 1};
            p->jobs[k++] = (struct sn_job){SN_JOB_VIDEO, c, 0, top};
        } else {
            p->jobs[k++] = (struct sn_job){SN_JOB_VIDEO, c, 0, p->n_rungs};
        }
        if (c == 0 && probe->audio_index >= 0)
            p->jobs[k++] = (struct sn_job){SN_JOB_AUDIO, 0, 0, 0};
    }
    if (probe->video_index < 0 && probe->audio_index >= 0)
        p->jobs[k++] = (struct sn_job){SN_JOB_AUDIO, 0, 0, 0};
    if (probe->video_index >= 0)
        p->jobs[k++] = (struct sn_job){SN_JOB_POSTER, 0, 0, 0};
    p->n_jobs = k;
    return 0;
}

int sn_job_plan_build(struct sn_probe *probe,
                      const struct sn_ladder_config *ladder,
                      const struct sn_chunk_config *chunks,
                      const struct sn_encode_settings *encode,
                      int split_rungs, const char *source,
                      struct sn_job_plan *out, char *err, size_t err_size)
{
    int rc;

    memset(out, 0, sizeof(*out));
    out->probe = *probe;
    memset(probe, 0, sizeof(*probe));
    out->encode = *encode;

    if (out->probe.video_index >= 0) {
        rc = sn_ladder_choose(&out->probe.geometry, ladder, out->rungs,
                              &out->n_rungs);
        if (rc < 0 || out->n_rungs == 0) {
            snprintf(err, err_size, "%s: cannot choose a ladder for %dx%d",
                     source, out->probe.geometry.coded_width,
                     out->probe.geometry.coded_height);
            sn_job_plan_release(out);
            return SN_ERR_INPUT;
        }
    }
    rc = plan_segments(out, chunks, source, err, err_size);
    if (rc == 0 && plan_jobs(out, split_rungs) < 0) {
        snprintf(err, err_size, "%s: out of memory", source);
        rc = -ENOMEM;
    }
    if (rc < 0)
        sn_job_plan_release(out);
    return rc;
}

void sn_job_plan_release(struct sn_job_plan *p)
{
    sn_probe_release(&p->probe);
    sn_plan_release(&p->plan);
    free(p->jobs);
    memset(p, 0, sizeof(*p));
}

/* ---- to JSON ----------------------------------------------------------- */

/* Frame times as the first one and the gaps after it: sorted times make
 * small, repetitive numbers, about 6 bytes a frame. */
static json_t *frames_to_json(const struct sn_probe *p)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < p->n_frames; i++)
        json_array_append_new(
            list, json_integer(i == 0 ? p->frame_us[0]
                                      : p->frame_us[i] - p->frame_us[i - 1]));
    return list;
}

static json_t *probe_to_json(const struct sn_probe *p)
{
    const struct sn_video_geometry *g = &p->geometry;

    return json_pack(
        "{s:i,s:i,s:{s:i,s:i,s:i,s:i,s:i,s:f},s:i,s:i,s:s,s:I,s:I,s:I,"
        "s:i,s:i,s:s,s:I,s:I,s:I,s:I,s:I,s:o}",
        "video_index", p->video_index, "audio_index", p->audio_index,
        "geometry", "coded_width", g->coded_width, "coded_height",
        g->coded_height, "sar_num", g->sar_num, "sar_den", g->sar_den,
        "transposed", g->transposed, "frame_rate", g->frame_rate,
        "transform", (int)p->transform, "interlaced", p->interlaced,
        "video_codec", p->video_codec, "n_frames", (json_int_t)p->n_frames,
        "video_start_us", p->video_start_us, "video_end_us",
        p->video_end_us, "sample_rate", p->sample_rate, "channels",
        p->channels, "audio_codec", p->audio_codec, "audio_start_us",
        p->audio_start_us, "audio_end_us", p->audio_end_us, "origin_us",
        p->origin_us, "duration_us", p->duration_us, "file_size",
        p->file_size, "frames", frames_to_json(p));
}

static json_t *plan_to_json(const struct sn_plan *plan)
{
    const struct sn_chunk_config *c = &plan->config;
    json_t *segments = json_array(), *chunks = json_array();

    for (int i = 0; i < plan->n_segments; i++) {
        const struct sn_segment *s = &plan->segments[i];

        json_array_append_new(segments, json_pack("[I,I,I]", s->grid_index,
                                                  s->start_us, s->end_us));
    }
    for (int i = 0; i < plan->n_chunks; i++) {
        const struct sn_chunk *ch = &plan->chunks[i];

        json_array_append_new(chunks,
                              json_pack("[i,i,I,I]", ch->first_segment,
                                        ch->n_segments, ch->start_us,
                                        ch->end_us));
    }
    return json_pack("{s:{s:I,s:I,s:i,s:i,s:I},s:o,s:o}", "config",
                     "segment_us", c->segment_us, "keyframe_us",
                     c->keyframe_us, "chunk_segments", c->chunk_segments,
                     "first_chunk_segments", c->first_chunk_segments,
                     "first_segment_us", c->first_segment_us, "segments",
                     segments, "chunks", chunks);
}

char *sn_job_plan_to_json(const struct sn_job_plan *p)
{
    const struct sn_encode_settings *e = &p->encode;
    json_t *rungs = json_array(), *jobs = json_array(), *root;
    char *text;

    for (int i = 0; i < p->n_rungs; i++) {
        const struct sn_rung *r = &p->rungs[i];

        json_array_append_new(
            rungs, json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:f}", "name",
                             r->name, "width", r->width, "height",
                             r->height, "maxrate", r->maxrate, "bufsize",
                             r->bufsize, "crf", r->crf, "frame_rate",
                             r->frame_rate));
    }
    for (int i = 0; i < p->n_jobs; i++) {
        const struct sn_job *j = &p->jobs[i];

        json_array_append_new(jobs, json_pack("[i,i,i,i]", (int)j->kind,
                                              j->chunk, j->first_rung,
                                              j->n_rungs));
    }
    root = json_pack("{s:i,s:o,s:o,s:o,s:{s:i,s:s,s:i,s:I,s:i},s:o}",
                     "version", 1, "probe", probe_to_json(&p->probe),
                     "rungs", rungs, "plan", plan_to_json(&p->plan),
                     "encode", "format", (int)e->format, "preset",
                     e->preset, "encoder_threads", e->encoder_threads,
                     "keyframe_us", e->keyframe_us, "conceal_errors",
                     e->conceal_errors, "jobs", jobs);
    if (root == NULL)
        return NULL;
    text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

/* ---- from JSON --------------------------------------------------------- */

static int copy_string(char *dst, size_t size, const char *src)
{
    if (src == NULL || strlen(src) >= size)
        return -EINVAL;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int frames_from_json(json_t *list, struct sn_probe *p)
{
    size_t i;
    json_t *v;

    if (!json_is_array(list) || json_array_size(list) != p->n_frames)
        return -EINVAL;
    if (p->n_frames == 0)
        return 0;
    p->frame_us = malloc(p->n_frames * sizeof(*p->frame_us));
    if (p->frame_us == NULL)
        return -ENOMEM;
    json_array_foreach(list, i, v) {
        json_int_t d = json_integer_value(v);

        if (!json_is_integer(v) || (i > 0 && d < 0))
            return -EINVAL;
        p->frame_us[i] = i == 0 ? d : p->frame_us[i - 1] + d;
    }
    return 0;
}

static int probe_from_json(json_t *j, struct sn_probe *p)
{
    struct sn_video_geometry *g = &p->geometry;
    const char *vcodec = NULL, *acodec = NULL;
    json_t *frames = NULL;
    json_int_t n_frames;
    int transform;

    if (json_unpack(j,
                    "{s:i,s:i,s:{s:i,s:i,s:i,s:i,s:i,s:F},s:i,s:i,s:s,s:I,"
                    "s:I,s:I,s:i,s:i,s:s,s:I,s:I,s:I,s:I,s:I,s:o}",
                    "video_index", &p->video_index, "audio_index",
                    &p->audio_index, "geometry", "coded_width",
                    &g->coded_width, "coded_height", &g->coded_height,
                    "sar_num", &g->sar_num, "sar_den", &g->sar_den,
                    "transposed", &g->transposed, "frame_rate",
                    &g->frame_rate, "transform", &transform, "interlaced",
                    &p->interlaced, "video_codec", &vcodec, "n_frames",
                    &n_frames, "video_start_us", &p->video_start_us,
                    "video_end_us", &p->video_end_us, "sample_rate",
                    &p->sample_rate, "channels", &p->channels,
                    "audio_codec", &acodec, "audio_start_us",
                    &p->audio_start_us, "audio_end_us", &p->audio_end_us,
                    "origin_us", &p->origin_us, "duration_us",
                    &p->duration_us, "file_size", &p->file_size, "frames",
                    &frames) < 0)
        return -EINVAL;
    if (transform < SN_TRANSFORM_NONE ||
        transform > SN_TRANSFORM_ANTI_TRANSPOSE || n_frames < 0 ||
        copy_string(p->video_codec, sizeof(p->video_codec), vcodec) < 0 ||
        copy_string(p->audio_codec, sizeof(p->audio_codec), acodec) < 0)
        return -EINVAL;
    p->transform = (enum sn_transform)transform;
    p->n_frames = (size_t)n_frames;
    return frames_from_json(frames, p);
}

static int rungs_from_json(json_t *list, struct sn_job_plan *p)
{
    size_t i;
    json_t *v;

    if (!json_is_array(list) || json_array_size(list) > SN_LADDER_MAX)
        return -EINVAL;
    json_array_foreach(list, i, v) {
        struct sn_rung *r = &p->rungs[i];
        const char *name = NULL;

        if (json_unpack(v, "{s:s,s:i,s:i,s:i,s:i,s:i,s:F}", "name", &name,
                        "width", &r->width, "height", &r->height, "maxrate",
                        &r->maxrate, "bufsize", &r->bufsize, "crf", &r->crf,
                        "frame_rate", &r->frame_rate) < 0 ||
            copy_string(r->name, sizeof(r->name), name) < 0 ||
            r->width <= 0 || r->height <= 0)
            return -EINVAL;
    }
    p->n_rungs = (int)json_array_size(list);
    return 0;
}

static int plan_from_json(json_t *j, struct sn_plan *plan)
{
    struct sn_chunk_config *c = &plan->config;
    json_t *segments = NULL, *chunks = NULL, *v;
    size_t n_seg, n_chunks, i;

    if (json_unpack(j, "{s:{s:I,s:I,s:i,s:i,s:I},s:o,s:o}", "config",
                    "segment_us", &c->segment_us, "keyframe_us",
                    &c->keyframe_us, "chunk_segments", &c->chunk_segments,
                    "first_chunk_segments", &c->first_chunk_segments,
                    "first_segment_us", &c->first_segment_us, "segments",
                    &segments, "chunks", &chunks) < 0 ||
        !json_is_array(segments) || !json_is_array(chunks))
        return -EINVAL;
    n_seg = json_array_size(segments);
    n_chunks = json_array_size(chunks);
    if (n_seg == 0 || n_seg > SN_PLAN_MAX_SEGMENTS || n_chunks == 0 ||
        n_chunks > n_seg)
        return -EINVAL;
    plan->segments = calloc(n_seg, sizeof(*plan->segments));
    plan->chunks = calloc(n_chunks, sizeof(*plan->chunks));
    if (plan->segments == NULL || plan->chunks == NULL)
        return -ENOMEM;
    plan->n_segments = (int)n_seg;
    plan->n_chunks = (int)n_chunks;

    json_array_foreach(segments, i, v) {
        struct sn_segment *s = &plan->segments[i];

        if (json_unpack(v, "[I,I,I]", &s->grid_index, &s->start_us,
                        &s->end_us) < 0)
            return -EINVAL;
    }
    json_array_foreach(chunks, i, v) {
        struct sn_chunk *ch = &plan->chunks[i];

        if (json_unpack(v, "[i,i,I,I]", &ch->first_segment, &ch->n_segments,
                        &ch->start_us, &ch->end_us) < 0 ||
            ch->first_segment < 0 || ch->n_segments < 1 ||
            ch->first_segment + ch->n_segments > plan->n_segments)
            return -EINVAL;
    }
    return 0;
}

static int jobs_from_json(json_t *list, struct sn_job_plan *p)
{
    size_t i;
    json_t *v;

    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > (size_t)p->plan.n_chunks * 2 + 2)
        return -EINVAL;
    p->jobs = calloc(json_array_size(list), sizeof(*p->jobs));
    if (p->jobs == NULL)
        return -ENOMEM;
    json_array_foreach(list, i, v) {
        struct sn_job *job = &p->jobs[i];
        int kind;

        if (json_unpack(v, "[i,i,i,i]", &kind, &job->chunk, &job->first_rung,
                        &job->n_rungs) < 0 ||
            kind < SN_JOB_VIDEO || kind > SN_JOB_POSTER)
            return -EINVAL;
        job->kind = (enum sn_job_kind)kind;
        if (job->kind == SN_JOB_VIDEO &&
            (job->chunk < 0 || job->chunk >= p->plan.n_chunks ||
             job->first_rung < 0 || job->n_rungs < 1 ||
             job->first_rung + job->n_rungs > p->n_rungs))
            return -EINVAL;
    }
    p->n_jobs = (int)json_array_size(list);
    return 0;
}

int sn_job_plan_from_json(const char *text, struct sn_job_plan *p,
                          char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    json_t *probe = NULL, *rungs = NULL, *plan = NULL, *jobs = NULL;
    struct sn_encode_settings *e = &p->encode;
    const char *preset = NULL;
    int version = 0, format = 0, rc = -EINVAL;

    memset(p, 0, sizeof(*p));
    p->probe.video_index = p->probe.audio_index = -1;
    if (root != NULL &&
        json_unpack(root, "{s:i,s:o,s:o,s:o,s:{s:i,s:s,s:i,s:I,s:i},s:o}",
                    "version", &version, "probe", &probe, "rungs", &rungs,
                    "plan", &plan, "encode", "format", &format, "preset",
                    &preset, "encoder_threads", &e->encoder_threads,
                    "keyframe_us", &e->keyframe_us, "conceal_errors",
                    &e->conceal_errors, "jobs", &jobs) == 0 &&
        version == 1 && (format == SN_SEGMENT_FMP4 || format == SN_SEGMENT_TS) &&
        copy_string(e->preset, sizeof(e->preset), preset) == 0) {
        e->format = (enum sn_segment_format)format;
        rc = probe_from_json(probe, &p->probe);
        if (rc == 0)
            rc = rungs_from_json(rungs, p);
        if (rc == 0)
            rc = plan_from_json(plan, &p->plan);
        if (rc == 0)
            rc = jobs_from_json(jobs, p);
    }
    json_decref(root);
    if (rc < 0) {
        sn_job_plan_release(p);
        if (rc == -ENOMEM) {
            snprintf(err, err_size, "job plan: out of memory");
            return rc;
        }
        snprintf(err, err_size, "job plan: not a valid plan%s%s",
                 root == NULL ? ": " : "", root == NULL ? jerr.text : "");
        return SN_ERR_INPUT;
    }
    return 0;
}

/* ---- descriptions ------------------------------------------------------ */

void sn_job_describe(const struct sn_job_plan *p, int job, char *out,
                     size_t out_size)
{
    const struct sn_job *j = &p->jobs[job];

    switch (j->kind) {
    case SN_JOB_VIDEO:
        if (j->n_rungs == 1)
            snprintf(out, out_size, "chunk %d (%s)", j->chunk,
                     p->rungs[j->first_rung].name);
        else
            snprintf(out, out_size, "chunk %d (%s-%s)", j->chunk,
                     p->rungs[j->first_rung].name,
                     p->rungs[j->first_rung + j->n_rungs - 1].name);
        return;
    case SN_JOB_AUDIO:
        snprintf(out, out_size, "audio");
        return;
    case SN_JOB_POSTER:
        snprintf(out, out_size, "poster");
        return;
    }
    snprintf(out, out_size, "job %d", job);
}

const struct sn_rung *sn_poster_rung(const struct sn_job_plan *p)
{
    const struct sn_rung *best = &p->rungs[0];

    for (int i = 1; i < p->n_rungs; i++) {
        const struct sn_rung *r = &p->rungs[i];

        if ((r->width < r->height ? r->width : r->height) <= 720)
            best = r;
    }
    return best;
}

/* ---- segments ---------------------------------------------------------- */

json_t *sn_segments_to_json(const struct sn_segment_info *s, int n)
{
    json_t *list = json_array();

    for (int i = 0; i < n; i++) {
        json_t *iframes = json_array();

        for (int j = 0; j < s[i].n_iframes; j++)
            json_array_append_new(iframes,
                                  json_pack("[I,I,I]", s[i].iframes[j].pts,
                                            s[i].iframes[j].offset,
                                            s[i].iframes[j].length));
        json_array_append_new(
            list, json_pack("{s:i,s:I,s:I,s:I,s:I,s:i,s:o}", "index",
                            s[i].index, "grid", s[i].grid_index, "first",
                            s[i].first_pts, "end", s[i].end_pts, "bytes",
                            s[i].bytes, "frames", s[i].frames, "iframes",
                            iframes));
    }
    return list;
}

int sn_segment_from_json(json_t *j, struct sn_segment_info *s)
{
    json_t *iframes = NULL;
    json_int_t index, grid, first, end, bytes, frames;
    size_t k;
    json_t *v;

    memset(s, 0, sizeof(*s));
    if (json_unpack(j, "{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "index", &index,
                    "grid", &grid, "first", &first, "end", &end, "bytes",
                    &bytes, "frames", &frames, "iframes", &iframes) < 0 ||
        !json_is_array(iframes) || index < 0 || index > SN_PLAN_MAX_SEGMENTS)
        return -EINVAL;
    s->index = (int)index;
    s->grid_index = grid;
    s->first_pts = first;
    s->end_pts = end;
    s->bytes = bytes;
    s->frames = (int)frames;
    json_array_foreach(iframes, k, v) {
        json_int_t pts, offset, length;

        if (k >= SN_MAX_IFRAMES ||
            json_unpack(v, "[I,I,I]", &pts, &offset, &length) < 0)
            return -EINVAL;
        s->iframes[k] = (struct sn_iframe){pts, offset, length};
        s->n_iframes = (int)k + 1;
    }
    return 0;
}
