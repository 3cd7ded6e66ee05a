#include "pipeline/pipeline.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/jobplan.h"
#include "util/error.h"
#include "util/log.h"

/* Largest plan.json written; a 6 hour video's plan is about 200 kB. */
#define MAX_PLAN_BYTES (16 << 20)

void sn_pipeline_config_init(struct sn_pipeline_config *c)
{
    memset(c, 0, sizeof(*c));
    sn_limits_init(&c->limits);
    sn_ladder_config_init(&c->ladder);
    sn_chunk_config_init(&c->chunks);
    /* A short first segment, as `sinatra process` makes by default. */
    c->chunks.first_segment_us = c->chunks.keyframe_us;
    c->encode.format = SN_SEGMENT_FMP4;
    snprintf(c->encode.preset, sizeof(c->encode.preset), "veryfast");
    c->encode.encoder_threads = 1;
    c->encode.keyframe_us = c->chunks.keyframe_us;
    c->split_rungs = 1;
    c->visibility_s = 60;
    c->heartbeat_s = 20;
    c->retry_delay_s = 2;
}

/* ---- reading sources from a store -------------------------------------- */

static int open_from_store(void *opaque, struct sn_reader **out, char *err,
                           size_t err_size)
{
    struct sn_store_source *s = opaque;

    return s->store->ops->open(s->store, s->key, out, err, err_size);
}

void sn_store_source_init(struct sn_store_source *s, struct sn_store *store,
                          const char *key)
{
    s->store = store;
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->source.name = s->key;
    s->source.open = open_from_store;
    s->source.opaque = s;
}

/* ---- the summary the status API shows ---------------------------------- */

static char *summary_json(const struct sn_job_plan *p)
{
    const struct sn_probe *probe = &p->probe;
    json_t *ladder = json_array(), *root;
    char *text;

    for (int i = 0; i < p->n_rungs; i++)
        json_array_append_new(
            ladder, json_pack("{s:s,s:i,s:i,s:i,s:f}", "name",
                              p->rungs[i].name, "width", p->rungs[i].width,
                              "height", p->rungs[i].height, "maxrate",
                              p->rungs[i].maxrate, "frame_rate",
                              p->rungs[i].frame_rate));
    root = json_pack("{s:o,s:f,s:i,s:i,s:I}", "ladder", ladder, "duration",
                     (double)probe->duration_us / 1e6, "segments",
                     p->plan.n_segments, "jobs", p->n_jobs, "size",
                     probe->file_size);
    if (root == NULL)
        return NULL;
    if (probe->video_index >= 0)
        json_object_set_new(
            root, "video",
            json_pack("{s:s,s:i,s:i,s:f}", "codec", probe->video_codec,
                      "width", probe->geometry.coded_width, "height",
                      probe->geometry.coded_height, "frame_rate",
                      probe->geometry.frame_rate));
    if (probe->audio_index >= 0)
        json_object_set_new(
            root, "audio",
            json_pack("{s:s,s:i,s:i}", "codec", probe->audio_codec,
                      "sample_rate", probe->sample_rate, "channels",
                      probe->channels));
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

/* ---- orchestration ----------------------------------------------------- */

struct orchestration {
    const struct sn_backends *b;
    const struct sn_pipeline_config *c;
    const char *key;
    char id[SN_VIDEO_ID_LEN + 1];
    int64_t generation;
    struct sn_job_plan plan;
    int n_sent;
};

/*
 * Sends one message for each of the n_jobs jobs whose done flag is not
 * set (done may be NULL when none is), in batches, and counts them in
 * *n_sent. A failure leaves the earlier batches sent.
 */
static int enqueue_jobs(struct orchestration *o, int n_jobs,
                        const unsigned char *done, int *n_sent, char *err,
                        size_t err_size)
{
    char bodies[SN_QUEUE_MAX_BATCH][160];
    const char *batch[SN_QUEUE_MAX_BATCH];
    int n = 0, rc;

    *n_sent = 0;
    for (int job = 0; job < n_jobs; job++) {
        if (done == NULL || !done[job]) {
            snprintf(bodies[n], sizeof(bodies[n]),
                     "{\"video\":\"%s\",\"generation\":%lld,\"job\":%d}",
                     o->id, (long long)o->generation, job);
            batch[n] = bodies[n];
            n++;
        }
        if (n > 0 && (n == SN_QUEUE_MAX_BATCH || job == n_jobs - 1)) {
            rc = o->b->jobs->ops->send(o->b->jobs, batch, n, 0, err,
                                       err_size);
            if (rc < 0)
                return rc;
            *n_sent += n;
            n = 0;
        }
    }
    return 0;
}

static int save_plan(struct orchestration *o, char *err, size_t err_size)
{
    char key[SN_STORE_MAX_KEY + 1];
    char *text = sn_job_plan_to_json(&o->plan);
    int rc;

    if (text == NULL) {
        snprintf(err, err_size, "%s: out of memory", o->key);
        return -ENOMEM;
    }
    if (strlen(text) > MAX_PLAN_BYTES) {
        free(text);
        snprintf(err, err_size, "%s: plan larger than %d bytes", o->key,
                 MAX_PLAN_BYTES);
        return SN_ERR_LIMIT;
    }
    snprintf(key, sizeof(key), "jobs/%s/%lld/plan.json", o->id,
             (long long)o->generation);
    rc = sn_store_put(o->b->uploads, key, text, strlen(text), err, err_size);
    free(text);
    return rc;
}

/*
 * Probes and plans the source, then writes the plan, sends the jobs and
 * records the plan in state, in that order. A worker that receives a job
 * before the plan is recorded gives it back for later. A crash before the
 * last step leaves the video queued, so orchestrating again (as the
 * server's scan does) completes it. Jobs sent twice are harmless.
 */
/* Return value of plan_and_enqueue() when another orchestration planned
 * the upload first. */
#define PLANNED_ELSEWHERE 1

static int plan_and_enqueue(struct orchestration *o, char *err,
                            size_t err_size)
{
    const struct sn_pipeline_config *c = o->c;
    struct sn_state *st = o->b->state;
    struct sn_store_source src;
    struct sn_probe probe;
    struct sn_video v = {0};
    char *summary;
    int rc, planned_meanwhile;

    sn_store_source_init(&src, o->b->uploads, o->key);
    rc = sn_probe_source(&src.source, &c->limits, &probe, err, err_size);
    if (rc < 0)
        return rc;
    rc = sn_job_plan_build(&probe, &c->ladder, &c->chunks, &c->encode,
                           c->split_rungs, o->key, &o->plan, err, err_size);
    if (rc < 0)
        return rc;
    if (o->plan.n_jobs > SN_STATE_MAX_JOBS) {
        snprintf(err, err_size, "%s: %d jobs, more than the limit of %d",
                 o->key, o->plan.n_jobs, SN_STATE_MAX_JOBS);
        return SN_ERR_LIMIT;
    }

    /* Another orchestration of the same upload may have planned it while
     * this one probed, which takes seconds on a large file. Its plan is
     * kept, because writing this plan.json over it would give the workers
     * a plan that the state does not record. */
    rc = st->ops->get(st, o->id, &v, err, err_size);
    if (rc < 0)
        return rc;
    planned_meanwhile = v.generation != o->generation ||
                        v.status != SN_VIDEO_QUEUED;
    sn_video_release(&v);
    if (planned_meanwhile)
        return PLANNED_ELSEWHERE;

    rc = save_plan(o, err, err_size);
    if (rc == 0)
        rc = enqueue_jobs(o, o->plan.n_jobs, NULL, &o->n_sent, err,
                          err_size);
    if (rc < 0)
        return rc;
    summary = summary_json(&o->plan);
    if (summary == NULL) {
        snprintf(err, err_size, "%s: out of memory", o->key);
        return -ENOMEM;
    }
    rc = st->ops->set_plan(st, o->id, o->generation, o->plan.n_jobs,
                           o->plan.probe.duration_us, summary, err,
                           err_size);
    free(summary);
    return rc;
}

/* Backend failures are worth retrying; everything else is the source's. */
static int is_permanent(int rc)
{
    return rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT || rc == SN_ERR_MEDIA;
}

/*
 * Handles a repeat for an upload whose current generation is no longer
 * queued. With resend, a video still processing gets a message for each
 * job not done yet, because the first messages may have been lost or
 * dead-lettered. Workers skip a job that is done, so a duplicate costs
 * one receive.
 */
static int repeat(struct orchestration *o, const struct sn_video *v,
                  int resend, struct sn_orchestration_result *result,
                  char *err, size_t err_size)
{
    int rc;

    result->n_jobs = v->n_jobs;
    result->n_done = v->n_done;
    snprintf(result->error, sizeof(result->error), "%s", v->error);
    if (!resend || v->status != SN_VIDEO_PROCESSING || v->done == NULL)
        return 0;

    rc = enqueue_jobs(o, v->n_jobs, v->done, &result->n_sent, err,
                      err_size);
    if (rc < 0) {
        sn_log(SN_LOG_ERROR, o->id, NULL, "%s", err);
        return rc;
    }
    sn_log(SN_LOG_INFO, o->id, NULL, "sent %d jobs not done yet again "
           "(generation %lld, %d of %d done)", result->n_sent,
           (long long)o->generation, v->n_done, v->n_jobs);
    return 0;
}

/* Probes, plans and enqueues a queued upload, and logs the outcome. */
static int plan_upload(struct orchestration *o,
                       struct sn_orchestration_result *result, char *err,
                       size_t err_size)
{
    struct sn_state *st = o->b->state;
    char state_err[SN_ERR_SIZE];
    int rc;

    sn_log(SN_LOG_INFO, o->id, NULL, "orchestrating %s (generation %lld)",
           o->key, (long long)o->generation);
    rc = plan_and_enqueue(o, err, err_size);
    result->n_sent = o->n_sent;
    if (rc == PLANNED_ELSEWHERE) {
        sn_log(SN_LOG_INFO, o->id, NULL, "planned by another orchestration "
               "while this one probed; keeping its plan");
    } else if (rc < 0 && is_permanent(rc)) {
        result->status = SN_VIDEO_FAILED;
        snprintf(result->error, sizeof(result->error), "%s", err);
        if (st->ops->fail(st, o->id, o->generation, err, state_err,
                          sizeof(state_err)) < 0)
            sn_log(SN_LOG_ERROR, o->id, NULL, "%s", state_err);
        sn_log(SN_LOG_WARN, o->id, NULL, "failed: %s", err);
    } else if (rc < 0) {
        sn_log(SN_LOG_ERROR, o->id, NULL, "%s", err);
    } else {
        result->status = SN_VIDEO_PROCESSING;
        result->planned = 1;
        result->n_jobs = o->plan.n_jobs;
        sn_log(SN_LOG_INFO, o->id, NULL,
               "planned %d jobs: %d rungs, %d segments, %.3f s", o->plan.n_jobs,
               o->plan.n_rungs, o->plan.plan.n_segments,
               (double)o->plan.probe.duration_us / 1e6);
    }
    sn_job_plan_release(&o->plan);
    return rc;
}

int sn_orchestrate_upload(const struct sn_backends *b,
                          const struct sn_pipeline_config *c,
                          const char *key, int resend,
                          struct sn_orchestration_result *result, char *err,
                          size_t err_size)
{
    struct orchestration o = {.b = b, .c = c, .key = key};
    struct sn_state *st = b->state;
    struct sn_object_info info;
    struct sn_video v = {0};
    const char *name = key + strlen(SN_UPLOAD_PREFIX);
    int rc;

    memset(result, 0, sizeof(*result));
    if (strncmp(key, SN_UPLOAD_PREFIX, strlen(SN_UPLOAD_PREFIX)) != 0 ||
        !sn_upload_name_valid(name)) {
        snprintf(err, err_size, "%s: not an upload key (stream/NAME)", key);
        return SN_ERR_INPUT;
    }
    if (sn_video_id(key, o.id) < 0) {
        snprintf(err, err_size, "%s: out of memory", key);
        return -ENOMEM;
    }
    memcpy(result->video_id, o.id, sizeof(o.id));

    rc = b->uploads->ops->head(b->uploads, key, &info, err, err_size);
    if (rc < 0)
        return rc;
    rc = st->ops->begin(st, o.id, key, info.tag, &o.generation, err,
                        err_size);
    if (rc == 0)
        rc = st->ops->get(st, o.id, &v, err, err_size);
    if (rc < 0)
        return rc;
    result->generation = o.generation;
    result->status = v.status;
    if (v.generation != o.generation || v.status != SN_VIDEO_QUEUED) {
        /* A repeated event for an upload already planned. */
        rc = repeat(&o, &v, resend, result, err, err_size);
        sn_video_release(&v);
        return rc;
    }
    sn_video_release(&v);
    rc = plan_upload(&o, result, err, err_size);
    if (rc != PLANNED_ELSEWHERE)
        return rc;
    rc = st->ops->get(st, o.id, &v, err, err_size);
    if (rc < 0)
        return rc;
    result->status = v.status;
    rc = repeat(&o, &v, resend, result, err, err_size);
    sn_video_release(&v);
    return rc;
}

int sn_orchestrate(const struct sn_backends *b,
                   const struct sn_pipeline_config *c, const char *key,
                   char *video_id, char *err, size_t err_size)
{
    struct sn_orchestration_result result;
    int rc;

    rc = sn_orchestrate_upload(b, c, key, 0, &result, err, err_size);
    if (video_id != NULL && result.video_id[0] != '\0')
        memcpy(video_id, result.video_id, sizeof(result.video_id));
    return rc;
}
