#include "pipeline/process.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "media/audio_job.h"
#include "media/input.h"
#include "media/poster.h"
#include "media/video_job.h"
#include "pipeline/pool.h"
#include "pipeline/publish.h"
#include "util/error.h"
#include "util/fsutil.h"

/* Largest job result file read back; a chunk of a few segments is ~10 kB. */
#define MAX_RESULT_BYTES (64 << 20)

/* Maximum input or output path length, leaving room for derived names. */
#define MAX_OUTPUT_PATH (PATH_MAX - 256)

enum job_kind { JOB_VIDEO, JOB_AUDIO, JOB_POSTER };

/*
 * A video job encodes one chunk for a group of rungs: the top rung alone,
 * or all the others. Two groups halve what one worker keeps in memory
 * (each x264 encoder keeps its lookahead frames) and let two workers share
 * the first chunk, for the price of decoding every chunk twice.
 */
struct job {
    enum job_kind kind;
    int chunk;
    int first_rung;
    int n_rungs;
};

struct run {
    const struct sn_process_options *o;
    struct sn_source source;  /* the input, shared read-only by all jobs */
    struct sn_probe probe;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n_rungs;
    struct sn_plan plan;
    struct job *jobs;
    int n_jobs;
    char output[PATH_MAX];    /* the output folder, without trailing '/' */
    char work[PATH_MAX];      /* working folder, renamed to output at the end */
    char results[PATH_MAX];   /* work/.jobs */
    struct sn_output out;
    int64_t *frames_done;     /* shared with worker processes */
    double started;
    int announced;            /* first_segments reported */
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sn_process_options_init(struct sn_process_options *o)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    memset(o, 0, sizeof(*o));
    sn_limits_init(&o->limits);
    sn_ladder_config_init(&o->ladder);
    sn_chunk_config_init(&o->chunks);
    o->encode.format = SN_SEGMENT_FMP4;
    snprintf(o->encode.preset, sizeof(o->encode.preset), "veryfast");
    o->encode.encoder_threads = 1;
    o->encode.keyframe_us = o->chunks.keyframe_us;
    o->workers = cores > 0 ? (int)cores : 1;
    o->worker_mode = SN_WORKER_THREAD;
    o->split_rungs = 1;
}

/* ---- job results as JSON files ---------------------------------------- */

static json_t *segments_to_json(const struct sn_segment_info *s, int n)
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

static int segment_from_json(json_t *j, struct sn_segment_info *s)
{
    json_t *iframes = NULL;
    json_int_t index, grid, first, end, bytes, frames;
    size_t k;
    json_t *v;

    memset(s, 0, sizeof(*s));
    if (json_unpack(j, "{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "index", &index,
                    "grid", &grid, "first", &first, "end", &end, "bytes",
                    &bytes, "frames", &frames, "iframes", &iframes) < 0)
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

static int save_result(struct run *r, int job, json_t *result, char *err,
                       size_t err_size)
{
    char path[PATH_MAX];
    char *text = json_dumps(result, JSON_COMPACT);
    int rc;

    json_decref(result);
    if (text == NULL) {
        snprintf(err, err_size, "job %d: out of memory", job);
        return -ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/job_%05d.json", r->results, job);
    rc = sn_write_file_atomic(path, text, strlen(text));
    free(text);
    if (rc < 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(-rc));
        return SN_ERR_OUTPUT;
    }
    return 0;
}

static json_t *load_result(struct run *r, int job)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/job_%05d.json", r->results, job);
    return json_load_file(path, 0, NULL);
}

/* ---- running jobs (on a worker) --------------------------------------- */

static void count_frames(void *opaque, int64_t frames)
{
    __atomic_add_fetch((int64_t *)opaque, frames, __ATOMIC_RELAXED);
}

static int run_video(struct run *r, int n, const struct job *job, char *err,
                     size_t err_size)
{
    struct sn_video_job vj = {
        .source = &r->source,
        .probe = &r->probe,
        .plan = &r->plan,
        .chunk = job->chunk,
        .rungs = r->rungs + job->first_rung,
        .n_rungs = job->n_rungs,
        .settings = &r->o->encode,
        .out_dir = r->work,
        /* Frames count once per chunk: in the group with the top rung. */
        .hooks = {job->first_rung + job->n_rungs == r->n_rungs ? count_frames
                                                               : NULL,
                  r->frames_done, r->o->cancel},
    };
    struct sn_video_result res;
    json_t *rungs;
    int rc = sn_video_job_run(&vj, &res, err, err_size);

    if (rc < 0)
        return rc;
    rungs = json_array();
    for (int i = 0; i < res.n_rungs; i++)
        json_array_append_new(
            rungs, json_pack("{s:s,s:o}", "codecs", res.rungs[i].codecs,
                             "segments",
                             segments_to_json(res.rungs[i].segments,
                                              res.rungs[i].n_segments)));
    sn_video_result_release(&res);
    return save_result(r, n, json_pack("{s:i,s:o}", "first_rung",
                                       job->first_rung, "rungs", rungs),
                       err, err_size);
}

static int run_audio(struct run *r, int job, char *err, size_t err_size)
{
    struct sn_audio_job aj = {
        .source = &r->source,
        .probe = &r->probe,
        .grid = &r->plan.config,
        .settings = &r->o->encode,
        .out_dir = r->work,
        .hooks = {NULL, NULL, r->o->cancel},
    };
    struct sn_audio_result res;
    json_t *result;
    int rc = sn_audio_job_run(&aj, &res, err, err_size);

    if (rc < 0)
        return rc;
    result = json_pack("{s:s,s:i,s:o}", "codecs", res.codecs, "channels",
                       res.channels, "segments",
                       segments_to_json(res.segments, res.n_segments));
    sn_audio_result_release(&res);
    return save_result(r, job, result, err, err_size);
}

/* The poster uses the largest rung up to 720 lines. */
static const struct sn_rung *poster_rung(const struct run *r)
{
    const struct sn_rung *best = &r->rungs[0];

    for (int i = 1; i < r->n_rungs; i++) {
        int s = r->rungs[i].width < r->rungs[i].height ? r->rungs[i].width
                                                        : r->rungs[i].height;
        if (s <= 720)
            best = &r->rungs[i];
    }
    return best;
}

static int run_job(void *ctx, int n, char *err, size_t err_size)
{
    struct run *r = ctx;
    const struct job *job = &r->jobs[n];
    char path[PATH_MAX];

    switch (job->kind) {
    case JOB_VIDEO:
        return run_video(r, n, job, err, err_size);
    case JOB_AUDIO:
        return run_audio(r, n, err, err_size);
    case JOB_POSTER:
        snprintf(path, sizeof(path), "%s/poster.jpg", r->work);
        return sn_poster_run(&r->source, &r->probe, poster_rung(r), path,
                             err, err_size);
    }
    return -EINVAL;
}

/* ---- collecting results (on the caller's thread) ----------------------- */

static int collect_segments(struct sn_rendition *rend, json_t *segments,
                            int grow)
{
    size_t k;
    json_t *v;

    if (grow && sn_rendition_reserve(rend, (int)json_array_size(segments)))
        return -ENOMEM;
    json_array_foreach(segments, k, v) {
        struct sn_segment_info s;

        if (segment_from_json(v, &s) < 0 || sn_rendition_add(rend, &s) < 0)
            return -EINVAL;
    }
    return 0;
}

static int collect(struct run *r, int n)
{
    const struct job *job = &r->jobs[n];
    json_t *result, *rungs, *v;
    const char *codecs = NULL;
    int channels = 0, rc = 0;
    size_t i;

    if (job->kind == JOB_POSTER)
        return 0;
    result = load_result(r, n);
    if (result == NULL)
        return -EINVAL;

    if (job->kind == JOB_AUDIO) {
        json_unpack(result, "{s:s,s:i}", "codecs", &codecs, "channels",
                    &channels);
        snprintf(r->out.audio.codecs, sizeof(r->out.audio.codecs), "%s",
                 codecs ? codecs : "");
        r->out.audio_channels = channels;
        rc = collect_segments(&r->out.audio,
                              json_object_get(result, "segments"), 1);
    } else {
        int first = (int)json_integer_value(
            json_object_get(result, "first_rung"));

        rungs = json_object_get(result, "rungs");
        json_array_foreach(rungs, i, v) {
            struct sn_rendition *rend = &r->out.video[first + (int)i];

            if (first < 0 || first + (int)i >= r->n_rungs)
                break;
            snprintf(rend->codecs, sizeof(rend->codecs), "%s",
                     json_string_value(json_object_get(v, "codecs")));
            rc = collect_segments(rend, json_object_get(v, "segments"), 0);
            if (rc < 0)
                break;
        }
    }
    json_decref(result);
    return rc;
}

static int job_done(void *ctx, int n, int rc, const char *job_err,
                    char *err, size_t err_size)
{
    struct run *r = ctx;

    if (rc < 0) {
        snprintf(err, err_size, "%s", job_err);
        return rc;
    }
    if (collect(r, n) < 0) {
        snprintf(err, err_size, "job %d: unreadable result in %s", n,
                 r->results);
        return SN_ERR_MEDIA;
    }

    /* Keep the working folder playable while the rest is encoded. */
    rc = sn_publish(r->work, &r->out, 0, err, err_size);
    if (rc < 0)
        return rc;
    if (!r->announced && sn_output_started(&r->out)) {
        char master[PATH_MAX];

        r->announced = 1;
        snprintf(master, sizeof(master), "%s/master.m3u8", r->work);
        if (r->o->events.first_segments)
            r->o->events.first_segments(r->o->events.opaque, master,
                                        now() - r->started);
    }
    return 0;
}

static void tick(void *ctx)
{
    struct run *r = ctx;
    int64_t done = __atomic_load_n(r->frames_done, __ATOMIC_RELAXED);

    if (r->o->events.progress)
        r->o->events.progress(r->o->events.opaque, done,
                              (int64_t)r->probe.n_frames,
                              now() - r->started);
}

/* ---- planning ---------------------------------------------------------- */

static int plan_jobs(struct run *r, char *err, size_t err_size)
{
    const struct sn_probe *p = &r->probe;
    int64_t *times = p->frame_us;
    size_t n_times = p->n_frames;
    int64_t audio_end[1];
    int rc, k = 0;

    /* Audio-only: plan the grid over the audio so chunks stay meaningful. */
    if (p->video_index < 0) {
        audio_end[0] = p->audio_start_us;
        times = audio_end;
        n_times = 1;
    }
    rc = sn_plan_chunks(&r->o->chunks, times, n_times, &r->plan);
    if (rc < 0) {
        snprintf(err, err_size, "%s: cannot plan segments (%s)",
                 r->o->input, strerror(-rc));
        return SN_ERR_INPUT;
    }

    r->jobs = calloc((size_t)r->plan.n_chunks * 2 + 2, sizeof(*r->jobs));
    if (r->jobs == NULL)
        return -ENOMEM;

    /* The first chunk goes first so the start is playable soonest; audio
     * next, because every player needs its first segment too. */
    for (int c = 0; p->video_index >= 0 && c < r->plan.n_chunks; c++) {
        int top = r->n_rungs - 1;

        if (top > 0 && r->o->split_rungs) {
            r->jobs[k++] = (struct job){JOB_VIDEO, c, top, 1};
            r->jobs[k++] = (struct job){JOB_VIDEO, c, 0, top};
        } else {
            r->jobs[k++] = (struct job){JOB_VIDEO, c, 0, r->n_rungs};
        }
        if (c == 0 && p->audio_index >= 0)
            r->jobs[k++] = (struct job){JOB_AUDIO, 0, 0, 0};
    }
    if (p->video_index < 0 && p->audio_index >= 0)
        r->jobs[k++] = (struct job){JOB_AUDIO, 0, 0, 0};
    if (p->video_index >= 0)
        r->jobs[k++] = (struct job){JOB_POSTER, 0, 0, 0};
    r->n_jobs = k;
    return 0;
}

static int choose_ladder(struct run *r, char *err, size_t err_size)
{
    int rc;

    if (r->probe.video_index < 0)
        return 0;
    rc = sn_ladder_choose(&r->probe.geometry, &r->o->ladder, r->rungs,
                          &r->n_rungs);
    if (rc < 0 || r->n_rungs == 0) {
        snprintf(err, err_size, "%s: cannot choose a ladder for %dx%d",
                 r->o->input, r->probe.geometry.coded_width,
                 r->probe.geometry.coded_height);
        return SN_ERR_INPUT;
    }
    return 0;
}

static int prepare_output(struct run *r, char *err, size_t err_size)
{
    struct sn_output *out = &r->out;
    int rc = 0;

    out->format = r->o->encode.format;
    out->rungs = r->rungs;
    out->n_rungs = r->n_rungs;
    for (int i = 0; rc == 0 && i < r->n_rungs; i++) {
        snprintf(out->video[i].name, sizeof(out->video[i].name), "%s",
                 r->rungs[i].name);
        out->video[i].timescale = SN_VIDEO_TIMESCALE;
        rc = sn_rendition_reserve(&out->video[i], r->plan.n_segments);
    }
    out->has_audio = r->probe.audio_index >= 0;
    snprintf(out->audio.name, sizeof(out->audio.name), "audio");
    out->audio.timescale = SN_AUDIO_RATE;
    if (rc < 0) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* The working folder sits next to the output so the final rename is
 * atomic (same file system). */
static int make_work_folder(struct run *r, char *err, size_t err_size)
{
    const char *out = r->output;
    const char *slash = strrchr(out, '/');
    int rc;

    if (slash != NULL)
        snprintf(r->work, sizeof(r->work), "%.*s/.%s.partial-%ld",
                 (int)(slash - out), out, slash + 1, (long)getpid());
    else
        snprintf(r->work, sizeof(r->work), ".%s.partial-%ld", out,
                 (long)getpid());
    snprintf(r->results, sizeof(r->results), "%s/.jobs", r->work);

    sn_remove_tree(r->work);
    rc = sn_mkdirs(r->results);
    for (int i = 0; rc == 0 && i <= r->n_rungs; i++) {
        char path[PATH_MAX];

        if (i == r->n_rungs && r->probe.audio_index < 0)
            break;
        snprintf(path, sizeof(path), "%s/%s", r->work,
                 i < r->n_rungs ? r->rungs[i].name : "audio");
        rc = sn_mkdirs(path);
    }
    if (rc < 0) {
        snprintf(err, err_size, "cannot create %s: %s", r->work,
                 strerror(-rc));
        return SN_ERR_OUTPUT;
    }
    return 0;
}

/*
 * Checks that an existing output may be replaced: --overwrite was given,
 * it is a folder that contains a master playlist (an earlier Sinatra output),
 * and the input is not inside it. Anything else could be a user's files.
 */
static int check_replaceable(const struct sn_process_options *o,
                             const char *out, char *err, size_t err_size)
{
    char out_real[PATH_MAX], in_real[PATH_MAX], master[PATH_MAX];
    struct stat st;
    size_t n;

    if (!o->overwrite) {
        snprintf(err, err_size,
                 "%s: already exists (use --overwrite to replace it)", out);
        return SN_ERR_OUTPUT;
    }
    snprintf(master, sizeof(master), "%s/master.m3u8", out);
    if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode) ||
        !sn_path_exists(master)) {
        snprintf(err, err_size,
                 "%s: exists and is not a Sinatra output folder (no "
                 "master.m3u8), so --overwrite does not replace it", out);
        return SN_ERR_OUTPUT;
    }
    if (realpath(out, out_real) != NULL && realpath(o->input, in_real)) {
        n = strlen(out_real);
        if (strncmp(in_real, out_real, n) == 0 && in_real[n] == '/') {
            snprintf(err, err_size,
                     "%s: the input %s is inside the output folder", out,
                     o->input);
            return SN_ERR_OUTPUT;
        }
    }
    return 0;
}

static int move_into_place(struct run *r, char *err, size_t err_size)
{
    const char *out = r->output;
    char old[PATH_MAX];

    sn_remove_tree(r->results);
    if (sn_path_exists(out)) {
        /* Checked again: something may have appeared while encoding. */
        int rc = check_replaceable(r->o, out, err, err_size);

        if (rc < 0)
            return rc;
        snprintf(old, sizeof(old), "%s.old-%ld", r->work, (long)getpid());
        if (rename(out, old) < 0) {
            snprintf(err, err_size, "cannot move %s aside: %s", out,
                     strerror(errno));
            return SN_ERR_OUTPUT;
        }
        sn_remove_tree(old);
    }
    if (rename(r->work, out) < 0) {
        snprintf(err, err_size, "cannot rename %s to %s: %s", r->work, out,
                 strerror(errno));
        return SN_ERR_OUTPUT;
    }
    return 0;
}

static void release_run(struct run *r)
{
    for (int i = 0; i < SN_LADDER_MAX; i++)
        sn_rendition_release(&r->out.video[i]);
    sn_rendition_release(&r->out.audio);
    sn_plan_release(&r->plan);
    sn_probe_release(&r->probe);
    free(r->jobs);
    if (r->frames_done != NULL)
        munmap(r->frames_done, sizeof(int64_t));
}

static int check_options(struct run *r, char *err, size_t err_size)
{
    const struct sn_process_options *o = r->o;
    size_t len;

    if (sn_chunk_config_check(&o->chunks, err, err_size) < 0)
        return SN_ERR_INPUT;
    if (o->output == NULL || o->output[0] == '\0') {
        snprintf(err, err_size, "no output folder given");
        return SN_ERR_OUTPUT;
    }
    /* Room for the working folder's prefix and the longest file name. */
    if (strlen(o->output) > MAX_OUTPUT_PATH ||
        strlen(o->input) > MAX_OUTPUT_PATH) {
        snprintf(err, err_size, "%s path longer than %d bytes",
                 strlen(o->input) > MAX_OUTPUT_PATH ? "input" : "output",
                 MAX_OUTPUT_PATH);
        return SN_ERR_OUTPUT;
    }

    /* "out/" names the folder "out": the working folder goes next to it. */
    snprintf(r->output, sizeof(r->output), "%s", o->output);
    len = strlen(r->output);
    while (len > 1 && r->output[len - 1] == '/')
        r->output[--len] = '\0';
    if (strcmp(r->output, ".") == 0 || strcmp(r->output, "..") == 0 ||
        strcmp(r->output, "/") == 0) {
        snprintf(err, err_size, "%s: not usable as an output folder",
                 o->output);
        return SN_ERR_OUTPUT;
    }
    if (sn_path_exists(r->output))
        return check_replaceable(o, r->output, err, err_size);
    return 0;
}

static int run_pipeline(struct run *r, char *err, size_t err_size)
{
    const struct sn_process_options *o = r->o;
    struct sn_pool_ops ops = {run_job, job_done, tick, r};
    int rc;

    rc = sn_probe_source(&r->source, &o->limits, &r->probe, err, err_size);
    if (rc == 0)
        rc = choose_ladder(r, err, err_size);
    if (rc < 0)
        return rc;
    if (o->events.probed)
        o->events.probed(o->events.opaque, &r->probe, r->rungs, r->n_rungs);

    rc = plan_jobs(r, err, err_size);
    if (rc == 0)
        rc = prepare_output(r, err, err_size);
    if (rc < 0)
        return rc;
    if (o->events.planned)
        o->events.planned(o->events.opaque, &r->plan, r->n_jobs);

    rc = make_work_folder(r, err, err_size);
    if (rc < 0)
        return rc;
    rc = sn_pool_run(o->worker_mode, o->workers, r->n_jobs, &ops, o->cancel,
                     err, err_size);
    if (rc == 0)
        rc = sn_publish(r->work, &r->out, 1, err, err_size);
    if (rc == 0)
        rc = move_into_place(r, err, err_size);
    return rc;
}

int sn_process_run(const struct sn_process_options *o, char *err,
                   size_t err_size)
{
    struct run r = {.o = o};
    int rc;

    sn_probe_release(&r.probe);
    rc = check_options(&r, err, err_size);
    if (rc < 0)
        return rc;

    sn_source_file(&r.source, o->input);
    r.started = now();
    r.frames_done = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r.frames_done == MAP_FAILED) {
        r.frames_done = NULL;
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    *r.frames_done = 0;

    rc = run_pipeline(&r, err, err_size);
    if (rc < 0 && r.work[0] != '\0')
        sn_remove_tree(r.work);
    release_run(&r);
    return rc;
}
