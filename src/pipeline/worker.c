#include "pipeline/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "media/audio_job.h"
#include "media/poster.h"
#include "media/video_job.h"
#include "pipeline/jobplan.h"
#include "pipeline/publish.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"

/* Largest plan or job result read back from the store. */
#define MAX_PLAN_BYTES (16 << 20)
#define MAX_RESULT_BYTES (16 << 20)

/* One message being handled. */
struct work {
    const struct sn_backends *b;
    const struct sn_pipeline_config *c;
    const struct sn_job_hooks *hooks;
    char id[SN_VIDEO_ID_LEN + 1];
    int64_t generation;
    int job;
    char job_name[64];        /* for logs: "chunk 3 (720p)" */
    char prefix[96];          /* "ID/GEN" in the hls store */
    char source[SN_STORE_MAX_KEY + 1];
    struct sn_job_plan plan;
    int have_plan;
};

static int move_outputs(struct work *w, const char *dir, const char *rel,
                        int depth, char *err, size_t err_size);
static int refresh(struct work *w, char *err, size_t err_size);

static int parse_body(const char *body, struct work *w, char *err,
                      size_t err_size)
{
    json_t *root = json_loads(body, 0, NULL);
    const char *id = NULL;
    json_int_t generation = 0;
    int job = -1, rc = 0;

    if (root == NULL ||
        json_unpack(root, "{s:s,s:I,s:i}", "video", &id, "generation",
                    &generation, "job", &job) < 0 ||
        strlen(id) != SN_VIDEO_ID_LEN ||
        strspn(id, "0123456789abcdef") != SN_VIDEO_ID_LEN ||
        generation < 1 || job < 0 || job >= SN_STATE_MAX_JOBS) {
        snprintf(err, err_size, "job message: not a Sinatra job: %.80s",
                 body);
        rc = SN_ERR_INPUT;
    } else {
        memcpy(w->id, id, sizeof(w->id));
        w->generation = generation;
        w->job = job;
        sn_video_prefix(w->id, w->generation, w->prefix, sizeof(w->prefix));
        snprintf(w->job_name, sizeof(w->job_name), "job %d", job);
    }
    json_decref(root);
    return rc;
}

static void key_for(const struct work *w, const char *name, char *key,
                    size_t key_size)
{
    snprintf(key, key_size, "jobs/%s/%lld/%s", w->id,
             (long long)w->generation, name);
}

static int load_plan(struct work *w, char *err, size_t err_size)
{
    char key[SN_STORE_MAX_KEY + 1];
    uint8_t *text = NULL;
    size_t size;
    int rc;

    key_for(w, "plan.json", key, sizeof(key));
    rc = sn_store_get(w->b->uploads, key, MAX_PLAN_BYTES, &text, &size, err,
                      err_size);
    if (rc < 0)
        return rc;
    rc = sn_job_plan_from_json((const char *)text, &w->plan, err, err_size);
    free(text);
    if (rc < 0)
        return rc;
    w->have_plan = 1;
    if (w->job >= w->plan.n_jobs) {
        snprintf(err, err_size, "video %s: job %d is not in its plan of %d",
                 w->id, w->job, w->plan.n_jobs);
        return SN_ERR_INPUT;
    }
    sn_job_describe(&w->plan, w->job, w->job_name, sizeof(w->job_name));
    return 0;
}

/* ---- running the job --------------------------------------------------- */

static json_t *video_result_json(const struct sn_job *job,
                                 const struct sn_video_result *res)
{
    json_t *rungs = json_array();

    for (int i = 0; i < res->n_rungs; i++)
        json_array_append_new(
            rungs, json_pack("{s:s,s:o}", "codecs", res->rungs[i].codecs,
                             "segments",
                             sn_segments_to_json(res->rungs[i].segments,
                                                 res->rungs[i].n_segments)));
    return json_pack("{s:i,s:o}", "first_rung", job->first_rung, "rungs",
                     rungs);
}

/*
 * The audio job encodes the whole track, which takes a while for a long
 * video, and players need its first segment before they can start. So
 * while it runs, its finished segments go to the store at once, and the
 * segments so far are saved as a partial result that the EVENT playlists
 * use until the job is done: on the first segment, then every 2 s.
 */
struct audio_progress {
    struct work *w;
    const char *dir;
    struct timespec published;
    int n_published;
};

static int publish_audio_so_far(void *opaque,
                                const struct sn_audio_result *so_far,
                                char *err, size_t err_size)
{
    struct audio_progress *p = opaque;
    struct work *w = p->w;
    char key[SN_STORE_MAX_KEY + 1], name[40];
    struct timespec now;
    json_t *partial;
    char *text;
    int rc;

    rc = move_outputs(w, p->dir, "audio", 1, err, err_size);
    if (rc < 0)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (p->n_published > 0 && now.tv_sec - p->published.tv_sec < 2)
        return 0;

    partial = json_pack("{s:s,s:i,s:o}", "codecs", so_far->codecs,
                        "channels", so_far->channels, "segments",
                        sn_segments_to_json(so_far->segments,
                                            so_far->n_segments));
    text = partial != NULL ? json_dumps(partial, JSON_COMPACT) : NULL;
    json_decref(partial);
    if (text == NULL) {
        snprintf(err, err_size, "video %s audio: out of memory", w->id);
        return -ENOMEM;
    }
    snprintf(name, sizeof(name), "%05d.partial.json", w->job);
    key_for(w, name, key, sizeof(key));
    rc = sn_store_put(w->b->uploads, key, text, strlen(text), err, err_size);
    free(text);
    if (rc < 0)
        return rc;
    p->published = now;
    p->n_published++;

    /* Playlists lagging behind are not worth failing the job for. */
    if (refresh(w, err, err_size) < 0)
        sn_log(SN_LOG_WARN, w->id, w->job_name, "%s", err);
    err[0] = '\0';
    return 0;
}

/* Runs the job into dir; *result gets what the playlists need. */
static int run_job(struct work *w, const char *dir, json_t **result,
                   char *err, size_t err_size)
{
    const struct sn_job_plan *p = &w->plan;
    const struct sn_job *job = &p->jobs[w->job];
    struct sn_store_source src;
    char path[PATH_MAX];
    int rc = 0;

    sn_store_source_init(&src, w->b->uploads, w->source);
    *result = NULL;
    switch (job->kind) {
    case SN_JOB_VIDEO: {
        struct sn_video_job vj = {
            .source = &src.source,
            .probe = &p->probe,
            .plan = &p->plan,
            .chunk = job->chunk,
            .rungs = p->rungs + job->first_rung,
            .n_rungs = job->n_rungs,
            .settings = &p->encode,
            .out_dir = dir,
            .hooks = *w->hooks,
        };
        struct sn_video_result res;

        for (int i = 0; rc == 0 && i < job->n_rungs; i++) {
            snprintf(path, sizeof(path), "%s/%s", dir,
                     p->rungs[job->first_rung + i].name);
            rc = sn_mkdirs(path);
        }
        if (rc < 0) {
            snprintf(err, err_size, "cannot create %s: %s", path,
                     strerror(-rc));
            return SN_ERR_OUTPUT;
        }
        rc = sn_video_job_run(&vj, &res, err, err_size);
        if (rc < 0)
            return rc;
        *result = video_result_json(job, &res);
        sn_video_result_release(&res);
        break;
    }
    case SN_JOB_AUDIO: {
        struct audio_progress progress = {.w = w, .dir = dir};
        struct sn_audio_job aj = {
            .source = &src.source,
            .probe = &p->probe,
            .grid = &p->plan.config,
            .settings = &p->encode,
            .out_dir = dir,
            .hooks = *w->hooks,
            .segment_written = publish_audio_so_far,
            .segment_opaque = &progress,
        };
        struct sn_audio_result res;

        snprintf(path, sizeof(path), "%s/audio", dir);
        rc = sn_mkdirs(path);
        if (rc < 0) {
            snprintf(err, err_size, "cannot create %s: %s", path,
                     strerror(-rc));
            return SN_ERR_OUTPUT;
        }
        rc = sn_audio_job_run(&aj, &res, err, err_size);
        if (rc < 0)
            return rc;
        *result = json_pack("{s:s,s:i,s:o}", "codecs", res.codecs,
                            "channels", res.channels, "segments",
                            sn_segments_to_json(res.segments,
                                                res.n_segments));
        sn_audio_result_release(&res);
        break;
    }
    case SN_JOB_POSTER:
        snprintf(path, sizeof(path), "%s/poster.jpg", dir);
        rc = sn_poster_run(&src.source, &p->probe, sn_poster_rung(p), path,
                           err, err_size);
        if (rc < 0)
            return rc;
        *result = json_object();
        break;
    }
    if (*result == NULL) {
        snprintf(err, err_size, "video %s %s: out of memory", w->id,
                 w->job_name);
        return -ENOMEM;
    }
    return 0;
}

/*
 * Moves every file under dir into the hls store under prefix/, keeping
 * the relative path: "720p/seg_00003.m4s" becomes "ID/GEN/720p/...".
 * Segments keep their final names, so a second run of the same job
 * replaces them with the same bytes.
 */
static int move_outputs(struct work *w, const char *dir, const char *rel,
                        int depth, char *err, size_t err_size)
{
    char path[PATH_MAX], sub[PATH_MAX], key[SN_STORE_MAX_KEY + 1];
    struct dirent *e;
    DIR *d;
    int rc = 0;

    snprintf(path, sizeof(path), "%s%s%s", dir, rel[0] ? "/" : "", rel);
    d = opendir(path);
    if (d == NULL) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return SN_ERR_OUTPUT;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
                 e->d_name);
        snprintf(path, sizeof(path), "%s/%s", dir, sub);
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 2) {
            rc = move_outputs(w, dir, sub, depth + 1, err, err_size);
        } else if (S_ISREG(st.st_mode)) {
            snprintf(key, sizeof(key), "%s/%s", w->prefix, sub);
            rc = w->b->hls->ops->put_file(w->b->hls, key, path, err,
                                          err_size);
        }
    }
    closedir(d);
    return rc;
}

static int save_result(struct work *w, json_t *result, char *err,
                       size_t err_size)
{
    char key[SN_STORE_MAX_KEY + 1], name[32];
    char *text = json_dumps(result, JSON_COMPACT);
    int rc;

    if (text == NULL) {
        snprintf(err, err_size, "video %s %s: out of memory", w->id,
                 w->job_name);
        return -ENOMEM;
    }
    snprintf(name, sizeof(name), "%05d.json", w->job);
    key_for(w, name, key, sizeof(key));
    rc = sn_store_put(w->b->uploads, key, text, strlen(text), err, err_size);
    free(text);
    return rc;
}

static int encode(struct work *w, char *err, size_t err_size)
{
    struct sn_store *hls = w->b->hls;
    char scratch[PATH_MAX];
    json_t *result = NULL;
    int rc;

    rc = hls->ops->scratch(hls, scratch, sizeof(scratch), err, err_size);
    if (rc < 0)
        return rc;
    rc = run_job(w, scratch, &result, err, err_size);
    if (rc == 0)
        rc = move_outputs(w, scratch, "", 0, err, err_size);
    if (rc == 0)
        rc = save_result(w, result, err, err_size);
    json_decref(result);
    sn_remove_tree(scratch);
    return rc;
}

/* ---- publishing playlists ---------------------------------------------- */

static int write_to_store(void *opaque, const char *name, const char *text,
                          size_t size, char *err, size_t err_size)
{
    struct work *w = opaque;
    char key[SN_STORE_MAX_KEY + 1];

    snprintf(key, sizeof(key), "%s/%s", w->prefix, name);
    return sn_store_put(w->b->hls, key, text, size, err, err_size);
}

static int collect_segments(struct sn_rendition *r, json_t *segments,
                            int grow)
{
    size_t k;
    json_t *v;

    if (!json_is_array(segments))
        return -EINVAL;
    if (grow && sn_rendition_reserve(r, (int)json_array_size(segments)))
        return -ENOMEM;
    json_array_foreach(segments, k, v) {
        struct sn_segment_info s;

        if (sn_segment_from_json(v, &s) < 0 || sn_rendition_add(r, &s) < 0)
            return -EINVAL;
    }
    return 0;
}

static int collect_result(struct work *w, struct sn_output *out, int job,
                          json_t *result)
{
    const struct sn_job *j = &w->plan.jobs[job];
    const char *codecs = NULL;
    json_t *rungs, *v;
    size_t i;

    if (j->kind == SN_JOB_POSTER)
        return 0;
    if (j->kind == SN_JOB_AUDIO) {
        if (json_unpack(result, "{s:s,s:i}", "codecs", &codecs, "channels",
                        &out->audio_channels) < 0)
            return -EINVAL;
        snprintf(out->audio.codecs, sizeof(out->audio.codecs), "%s", codecs);
        return collect_segments(&out->audio,
                                json_object_get(result, "segments"), 1);
    }
    rungs = json_object_get(result, "rungs");
    if (!json_is_array(rungs) || (int)json_array_size(rungs) != j->n_rungs)
        return -EINVAL;
    json_array_foreach(rungs, i, v) {
        struct sn_rendition *r = &out->video[j->first_rung + (int)i];
        int rc;

        codecs = json_string_value(json_object_get(v, "codecs"));
        if (codecs == NULL)
            return -EINVAL;
        snprintf(r->codecs, sizeof(r->codecs), "%s", codecs);
        rc = collect_segments(r, json_object_get(v, "segments"), 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void release_output(struct sn_output *out)
{
    for (int i = 0; i < SN_LADDER_MAX; i++)
        sn_rendition_release(&out->video[i]);
    sn_rendition_release(&out->audio);
}

/* Builds the output from the results of the jobs marked done in v. */
static int build_output(struct work *w, const struct sn_video *v,
                        struct sn_output *out, char *err, size_t err_size)
{
    const struct sn_job_plan *p = &w->plan;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->format = p->encode.format;
    out->rungs = p->rungs;
    out->n_rungs = p->n_rungs;
    out->has_audio = p->probe.audio_index >= 0;
    snprintf(out->audio.name, sizeof(out->audio.name), "audio");
    out->audio.timescale = SN_AUDIO_RATE;
    for (int i = 0; rc == 0 && i < p->n_rungs; i++) {
        snprintf(out->video[i].name, sizeof(out->video[i].name), "%s",
                 p->rungs[i].name);
        out->video[i].timescale = SN_VIDEO_TIMESCALE;
        rc = sn_rendition_reserve(&out->video[i], p->plan.n_segments);
    }
    for (int job = 0; rc == 0 && job < p->n_jobs && job < v->n_jobs; job++) {
        char key[SN_STORE_MAX_KEY + 1], name[32];
        uint8_t *text = NULL;
        size_t size;
        json_t *result;

        if (p->jobs[job].kind == SN_JOB_POSTER ||
            (!v->done[job] && p->jobs[job].kind != SN_JOB_AUDIO))
            continue;
        snprintf(name, sizeof(name), v->done[job] ? "%05d.json"
                                                  : "%05d.partial.json",
                 job);
        key_for(w, name, key, sizeof(key));
        rc = sn_store_get(w->b->uploads, key, MAX_RESULT_BYTES, &text,
                          &size, err, err_size);
        if (rc == SN_ERR_NOT_FOUND && !v->done[job]) {
            rc = 0;           /* the audio job has no segment yet */
            continue;
        }
        if (rc < 0)
            break;
        result = json_loads((const char *)text, 0, NULL);
        free(text);
        rc = result != NULL ? collect_result(w, out, job, result) : -EINVAL;
        json_decref(result);
        if (rc < 0)
            snprintf(err, err_size, "%s: not a valid job result", key);
    }
    if (rc == -EINVAL)
        rc = SN_ERR_BACKEND;
    if (rc < 0)
        release_output(out);
    return rc;
}

static int publish(struct work *w, const struct sn_video *v, int final,
                   char *err, size_t err_size)
{
    struct sn_publish_sink sink = {write_to_store, w};
    struct sn_output out;
    int rc;

    rc = build_output(w, v, &out, err, err_size);
    if (rc < 0)
        return rc;
    rc = sn_publish_to(&sink, &out, final, err, err_size);
    release_output(&out);
    return rc;
}

/* Removes every key under prefix except those under keep (may be NULL). */
struct sweep {
    struct sn_store *store;
    const char *keep;
};

static int remove_unless_kept(void *opaque, const char *key, int64_t size)
{
    struct sweep *s = opaque;
    char err[SN_ERR_SIZE];

    (void)size;
    if (s->keep != NULL && strncmp(key, s->keep, strlen(s->keep)) == 0)
        return 0;
    if (s->store->ops->remove(s->store, key, err, sizeof(err)) < 0)
        sn_log(SN_LOG_WARN, NULL, NULL, "%s", err);
    return 0;
}

static void remove_under(struct sn_store *store, const char *prefix,
                         const char *keep)
{
    struct sweep sweep = {store, keep};
    char err[SN_ERR_SIZE];

    if (store->ops->list(store, prefix, remove_unless_kept, &sweep, err,
                         sizeof(err)) < 0)
        sn_log(SN_LOG_WARN, NULL, NULL, "%s", err);
}

/* Removes what older generations of the video left in both stores. */
static void sweep_older_generations(struct work *w)
{
    char prefix[96], keep[128];

    snprintf(prefix, sizeof(prefix), "%s/", w->id);
    snprintf(keep, sizeof(keep), "%s/", w->prefix);
    remove_under(w->b->hls, prefix, keep);
    snprintf(prefix, sizeof(prefix), "jobs/%s/", w->id);
    snprintf(keep, sizeof(keep), "jobs/%s/", w->prefix);
    remove_under(w->b->uploads, prefix, keep);
}

static int stale(const struct work *w, const struct sn_video *v)
{
    return v->generation != w->generation || v->status == SN_VIDEO_FAILED;
}

/*
 * Rewrites the playlists after a job is marked done. While jobs remain,
 * the EVENT playlists list the longest finished run of each rendition.
 * The worker that finds every job done writes the final playlists, then
 * marks the video ready. An EVENT write can land after another worker's
 * final write, so the writer checks the state again afterwards and writes
 * the final playlists itself when everything was done by then. So the
 * last write is always the final one.
 */
static int refresh(struct work *w, char *err, size_t err_size)
{
    struct sn_state *st = w->b->state;
    struct sn_video v = {0};
    int rc, won = 0;

    rc = st->ops->get(st, w->id, &v, err, err_size);
    if (rc == 0 && !stale(w, &v) && v.n_done < v.n_jobs) {
        rc = publish(w, &v, 0, err, err_size);
        sn_video_release(&v);
        if (rc == 0)
            rc = st->ops->get(st, w->id, &v, err, err_size);
        if (rc == 0 && v.n_done < v.n_jobs) {
            sn_video_release(&v);
            return 0;
        }
    }
    if (rc == 0 && !stale(w, &v))
        rc = publish(w, &v, 1, err, err_size);
    if (rc == 0 && !stale(w, &v))
        rc = st->ops->finish(st, w->id, w->generation, &won, err, err_size);
    sn_video_release(&v);
    if (rc == SN_ERR_CONFLICT)
        return 0;             /* a newer upload or a failure came first */
    if (rc == 0 && won) {
        sn_log(SN_LOG_INFO, w->id, w->job_name, "video ready");
        /* Players of an older generation may still be fetching its
         * segments; they have had at least this whole run to move on. */
        sweep_older_generations(w);
    }
    return rc;
}

/* ---- handling a message ------------------------------------------------ */

static int handle(struct work *w, char *err, size_t err_size)
{
    struct sn_state *st = w->b->state;
    struct sn_video v = {0};
    int rc, n_done = 0, done;

    rc = st->ops->get(st, w->id, &v, err, err_size);
    if (rc == SN_ERR_NOT_FOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (stale(w, &v) || v.status == SN_VIDEO_READY) {
        sn_video_release(&v);
        sn_log(SN_LOG_INFO, w->id, w->job_name,
               "skipped: generation %lld is %s", (long long)w->generation,
               v.generation != w->generation ? "stale"
                                              : sn_video_status_name(v.status));
        return 0;
    }
    if (v.status == SN_VIDEO_QUEUED) {
        sn_video_release(&v);
        snprintf(err, err_size, "video %s: plan not recorded yet", w->id);
        return SN_ERR_AGAIN;
    }
    if (w->job >= v.n_jobs) {
        sn_video_release(&v);
        snprintf(err, err_size, "video %s: job %d is not in its plan of %d",
                 w->id, w->job, v.n_jobs);
        return SN_ERR_INPUT;
    }
    done = v.done[w->job];
    snprintf(w->source, sizeof(w->source), "%s", v.source);
    sn_video_release(&v);

    rc = load_plan(w, err, err_size);
    if (rc < 0)
        return rc;
    if (!done) {
        struct timespec t0, t1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = encode(w, err, err_size);
        if (rc < 0)
            return rc;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        rc = st->ops->mark_done(st, w->id, w->generation, w->job, &n_done,
                                err, err_size);
        if (rc == SN_ERR_CONFLICT)
            return 0;
        if (rc < 0)
            return rc;
        sn_log(SN_LOG_INFO, w->id, w->job_name, "done in %.2f s (%d of %d)",
               (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
               n_done, w->plan.n_jobs);
    }
    return refresh(w, err, err_size);
}

int sn_worker_handle(const struct sn_backends *b,
                     const struct sn_pipeline_config *c, const char *body,
                     const struct sn_job_hooks *hooks, char *err,
                     size_t err_size)
{
    static const struct sn_job_hooks no_hooks;
    struct work w = {.b = b, .c = c, .hooks = hooks ? hooks : &no_hooks};
    int rc;

    rc = parse_body(body, &w, err, err_size);
    if (rc == 0)
        rc = handle(&w, err, err_size);
    if (w.have_plan)
        sn_job_plan_release(&w.plan);
    return rc;
}

int sn_worker_fail(const struct sn_backends *b, const char *body,
                   const char *reason, char *err, size_t err_size)
{
    struct work w = {.b = b};
    int rc;

    rc = parse_body(body, &w, err, err_size);
    if (rc < 0)
        return rc;
    rc = b->state->ops->fail(b->state, w.id, w.generation, reason, err,
                             err_size);
    if (rc == 0) {
        char prefix[SN_STORE_MAX_KEY + 1];

        sn_log(SN_LOG_WARN, w.id, w.job_name, "video failed: %s", reason);
        /* A failed video publishes nothing: players that found its EVENT
         * playlists get 404 instead of waiting for segments forever.
         * NOTE: a job of the video still running elsewhere can put its
         * segments back afterwards; they are orphans no playlist lists. */
        snprintf(prefix, sizeof(prefix), "%s/", w.prefix);
        remove_under(b->hls, prefix, NULL);
        snprintf(prefix, sizeof(prefix), "jobs/%s/", w.prefix);
        remove_under(b->uploads, prefix, NULL);
    }
    return rc == SN_ERR_CONFLICT ? 0 : rc;
}

/* ---- the receive loop -------------------------------------------------- */

struct lease {
    struct sn_queue *queue;
    const struct sn_message *message;
    const struct sn_pipeline_config *c;
    const volatile sig_atomic_t *stop;
    volatile sig_atomic_t cancel;     /* what the running job watches */
    struct timespec extended;
    char id[SN_VIDEO_ID_LEN + 1];
};

/*
 * Called by the running job after every frame: passes a stop request on
 * to the job, and extends the message's visibility every heartbeat_s. A
 * stale receipt means the message was delivered to another worker after
 * this one was too slow, so the job stops: the other delivery finishes it.
 */
static void heartbeat(void *opaque, int64_t frames)
{
    struct lease *l = opaque;
    struct timespec now;
    char err[SN_ERR_SIZE];

    (void)frames;
    if (l->stop != NULL && *l->stop)
        l->cancel = 1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - l->extended.tv_sec < l->c->heartbeat_s)
        return;
    l->extended = now;
    if (l->queue->ops->extend(l->queue, l->message->receipt,
                              l->c->visibility_s, err, sizeof(err)) < 0) {
        sn_log(SN_LOG_WARN, l->id, NULL, "lost the job's lease: %s", err);
        l->cancel = 1;
    }
}

/* Copies the video id of a message body into id, or "" for logs. */
static void video_of(const char *body, char *id)
{
    json_t *root = json_loads(body, 0, NULL);
    const char *v = json_string_value(json_object_get(root, "video"));

    snprintf(id, SN_VIDEO_ID_LEN + 1, "%s", v != NULL ? v : "");
    json_decref(root);
}

static void handle_message(const struct sn_backends *b,
                           const struct sn_pipeline_config *c,
                           const struct sn_message *m,
                           const volatile sig_atomic_t *stop)
{
    struct sn_queue *q = b->jobs;
    struct lease l = {.queue = q, .message = m, .c = c, .stop = stop};
    struct sn_job_hooks hooks = {heartbeat, &l, &l.cancel};
    char err[SN_ERR_SIZE] = "", qerr[SN_ERR_SIZE];
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &l.extended);
    video_of(m->body, l.id);
    rc = sn_worker_handle(b, c, m->body, &hooks, err, sizeof(err));
    if (rc == 0) {
        if (q->ops->remove(q, m->receipt, qerr, sizeof(qerr)) < 0)
            sn_log(SN_LOG_WARN, l.id, m->id, "%s", qerr);
        return;
    }
    if (rc == SN_ERR_INTERRUPTED) {
        /* Stopped, not failed: let another worker take it soon. */
        q->ops->release(q, m->receipt, 0, "worker stopped", qerr,
                        sizeof(qerr));
        return;
    }
    if (rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT || rc == SN_ERR_MEDIA) {
        /* The source itself is the problem: another delivery would fail
         * the same way, so the video fails now and the message goes. */
        if (sn_worker_fail(b, m->body, err, qerr, sizeof(qerr)) < 0)
            sn_log(SN_LOG_ERROR, l.id, m->id, "%s", qerr);
        if (q->ops->remove(q, m->receipt, qerr, sizeof(qerr)) < 0)
            sn_log(SN_LOG_WARN, l.id, m->id, "%s", qerr);
        return;
    }
    if (rc == SN_ERR_AGAIN)
        sn_log(SN_LOG_INFO, l.id, m->id, "delivery %d of %d: %s; retrying "
               "in %d s", m->receive_count, q->max_receives, err,
               c->retry_delay_s);
    else
        sn_log(SN_LOG_WARN, l.id, m->id, "delivery %d of %d failed: %s",
               m->receive_count, q->max_receives, err);
    if (m->receive_count >= q->max_receives && rc != SN_ERR_AGAIN &&
        sn_worker_fail(b, m->body, err, qerr, sizeof(qerr)) < 0)
        sn_log(SN_LOG_ERROR, l.id, m->id, "%s", qerr);
    if (q->ops->release(q, m->receipt, c->retry_delay_s, err, qerr,
                        sizeof(qerr)) < 0)
        sn_log(SN_LOG_WARN, l.id, m->id, "%s", qerr);
}

int sn_worker_loop(const struct sn_backends *b,
                   const struct sn_pipeline_config *c,
                   const volatile sig_atomic_t *stop)
{
    struct sn_queue *q = b->jobs;
    char err[SN_ERR_SIZE];

    while (!*stop) {
        struct sn_message m = {0};
        int rc = q->ops->receive(q, c->visibility_s, 500, &m, err,
                                 sizeof(err));

        if (rc == SN_ERR_AGAIN)
            continue;
        if (rc == -EACCES || rc == SN_ERR_NOT_FOUND) {
            /* Rejected credentials or a missing queue: no wait helps. */
            sn_log(SN_LOG_ERROR, NULL, NULL, "cannot receive jobs: %s",
                   err);
            return rc;
        }
        if (rc < 0) {
            sn_log(SN_LOG_ERROR, NULL, NULL, "%s; retrying in 1 s", err);
            sleep(1);
            continue;
        }
        handle_message(b, c, &m, stop);
        sn_message_release(&m);
    }
    return 0;
}
