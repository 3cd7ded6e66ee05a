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
#include "pipeline/jobplan.h"
#include "pipeline/pool.h"
#include "pipeline/publish.h"
#include "util/error.h"
#include "util/fsutil.h"

/* Largest job result file read back; a chunk of a few segments is ~10 kB. */
#define MAX_RESULT_BYTES (64 << 20)

/* Maximum input or output path length, leaving room for derived names. */
#define MAX_OUTPUT_PATH (PATH_MAX - 256)

struct run {
    const struct sn_process_options *o;
    struct sn_source source;  /* the input, shared read-only by all jobs */
    struct sn_job_plan jp;    /* probe, ladder, segments and jobs */
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

static int run_video(struct run *r, int n, const struct sn_job *job, char *err,
                     size_t err_size)
{
    struct sn_video_job vj = {
        .source = &r->source,
        .probe = &r->jp.probe,
        .plan = &r->jp.plan,
        .chunk = job->chunk,
        .rungs = r->jp.rungs + job->first_rung,
        .n_rungs = job->n_rungs,
        .settings = &r->o->encode,
        .out_dir = r->work,
        /* Frames count once per chunk: in the group with the top rung. */
        .hooks = {job->first_rung + job->n_rungs == r->jp.n_rungs ? count_frames
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
                             sn_segments_to_json(res.rungs[i].segments,
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
        .probe = &r->jp.probe,
        .grid = &r->jp.plan.config,
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
                       sn_segments_to_json(res.segments, res.n_segments));
    sn_audio_result_release(&res);
    return save_result(r, job, result, err, err_size);
}

static int run_job(void *ctx, int n, char *err, size_t err_size)
{
    struct run *r = ctx;
    const struct sn_job *job = &r->jp.jobs[n];
    char path[PATH_MAX];

    switch (job->kind) {
    case SN_JOB_VIDEO:
        return run_video(r, n, job, err, err_size);
    case SN_JOB_AUDIO:
        return run_audio(r, n, err, err_size);
    case SN_JOB_POSTER:
        snprintf(path, sizeof(path), "%s/poster.jpg", r->work);
        return sn_poster_run(&r->source, &r->jp.probe, sn_poster_rung(&r->jp), path,
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

        if (sn_segment_from_json(v, &s) < 0 || sn_rendition_add(rend, &s) < 0)
            return -EINVAL;
    }
    return 0;
}

static int collect(struct run *r, int n)
{
    const struct sn_job *job = &r->jp.jobs[n];
    json_t *result, *rungs, *v;
    const char *codecs = NULL;
    int channels = 0, rc = 0;
    size_t i;

    if (job->kind == SN_JOB_POSTER)
        return 0;
    result = load_result(r, n);
    if (result == NULL)
        return -EINVAL;

    if (job->kind == SN_JOB_AUDIO) {
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

            if (first < 0 || first + (int)i >= r->jp.n_rungs)
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
                              (int64_t)r->jp.probe.n_frames,
                              now() - r->started);
}

/* ---- planning ---------------------------------------------------------- */

static int prepare_output(struct run *r, char *err, size_t err_size)
{
    struct sn_output *out = &r->out;
    int rc = 0;

    out->format = r->o->encode.format;
    out->rungs = r->jp.rungs;
    out->n_rungs = r->jp.n_rungs;
    for (int i = 0; rc == 0 && i < r->jp.n_rungs; i++) {
        snprintf(out->video[i].name, sizeof(out->video[i].name), "%s",
                 r->jp.rungs[i].name);
        out->video[i].timescale = SN_VIDEO_TIMESCALE;
        rc = sn_rendition_reserve(&out->video[i], r->jp.plan.n_segments);
    }
    out->has_audio = r->jp.probe.audio_index >= 0;
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
    for (int i = 0; rc == 0 && i <= r->jp.n_rungs; i++) {
        char path[PATH_MAX];

        if (i == r->jp.n_rungs && r->jp.probe.audio_index < 0)
            break;
        snprintf(path, sizeof(path), "%s/%s", r->work,
                 i < r->jp.n_rungs ? r->jp.rungs[i].name : "audio");
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
    sn_job_plan_release(&r->jp);
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
    struct sn_probe probe;
    int rc;

    rc = sn_probe_source(&r->source, &o->limits, &probe, err, err_size);
    if (rc == 0)
        rc = sn_job_plan_build(&probe, &o->ladder, &o->chunks, &o->encode,
                               o->split_rungs, o->input, &r->jp, err,
                               err_size);
    if (rc < 0)
        return rc;
    if (o->events.probed)
        o->events.probed(o->events.opaque, &r->jp.probe, r->jp.rungs,
                         r->jp.n_rungs);

    rc = prepare_output(r, err, err_size);
    if (rc < 0)
        return rc;
    if (o->events.planned)
        o->events.planned(o->events.opaque, &r->jp.plan, r->jp.n_jobs);

    rc = make_work_folder(r, err, err_size);
    if (rc < 0)
        return rc;
    rc = sn_pool_run(o->worker_mode, o->workers, r->jp.n_jobs, &ops, o->cancel,
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

    sn_probe_release(&r.jp.probe);
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
