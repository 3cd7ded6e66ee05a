#include "lambda/handlers.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/http.h"
#include "lambda/events.h"
#include "queue/queue_sqs.h"
#include "state/state_dynamodb.h"
#include "store/store_s3.h"
#include "util/error.h"
#include "util/log.h"

/* ---- backends ---------------------------------------------------------- */

int sn_lambda_app_open(struct sn_lambda_app *app, char *err,
                       size_t err_size)
{
    const struct sn_lambda_config *c = &app->config;
    struct sn_backends *b = &app->b;
    char cause[SN_ERR_SIZE];
    const char *var = NULL;
    int rc;

    memset(b, 0, sizeof(*b));
    rc = sn_http_set_default_ca_file(c->ca_bundle[0] ? c->ca_bundle : NULL);
    if (rc < 0) {
        snprintf(err, err_size, "SINATRA_CA_BUNDLE: invalid path");
        return rc;
    }

    rc = sn_store_s3_open(c->videos_bucket, &b->uploads, cause,
                          sizeof(cause));
    var = "SINATRA_VIDEOS_BUCKET";
    if (rc == 0) {
        rc = sn_store_s3_open(c->hls_bucket, &b->hls, cause, sizeof(cause));
        var = "SINATRA_HLS_BUCKET";
    }
    if (rc == 0) {
        rc = sn_queue_sqs_open(c->queue_url, c->max_receives, &b->jobs,
                               cause, sizeof(cause));
        var = "SINATRA_JOB_QUEUE_URL";
    }
    if (rc == 0) {
        rc = sn_state_dynamodb_open(c->state_table, &b->state, cause,
                                    sizeof(cause));
        var = "SINATRA_STATE_TABLE";
    }
    if (rc < 0) {
        snprintf(err, err_size, "%s: %s", var, cause);
        sn_lambda_app_close(app);
    }
    return rc;
}

void sn_lambda_app_close(struct sn_lambda_app *app)
{
    struct sn_backends *b = &app->b;

    sn_queue_close(b->jobs);
    sn_state_close(b->state);
    sn_store_close(b->uploads);
    sn_store_close(b->hls);
    memset(b, 0, sizeof(*b));
}

const char *sn_lambda_error_type(int rc)
{
    if (rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT)
        return SN_LAMBDA_ERROR_EVENT;
    if (rc == SN_ERR_AGAIN || rc == SN_ERR_BACKEND ||
        rc == SN_ERR_CONFLICT || rc == SN_ERR_OUTPUT)
        return SN_LAMBDA_ERROR_TRANSIENT;
    return SN_LAMBDA_ERROR_INTERNAL;
}

/* ---- orchestrator ------------------------------------------------------ */

/* Errors of the source itself: sn_orchestrate() recorded the video as
 * failed, and another attempt would fail the same way. */
static int is_permanent(int rc)
{
    return rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT || rc == SN_ERR_MEDIA;
}

static int append(json_t *list, json_t *item)
{
    return item != NULL ? json_array_append_new(list, item) : -1;
}

/* Adds {"key","video","reason"} to the failed list. */
static int append_failed(json_t *doc, const char *key, const char *id,
                         const char *reason)
{
    return append(json_object_get(doc, "failed"),
                  json_pack("{s:s,s:s,s:s}", "key", key, "video", id,
                            "reason", reason));
}

/*
 * Files an upload that the orchestration accepted under planned or
 * failed. A repeated event also succeeds, whatever became of the video,
 * so the status after the call decides: an earlier event may have failed
 * it. Returns 0, or -ENOMEM with one line in err.
 */
static int file_accepted(const char *key,
                         struct sn_orchestration_result *result, json_t *doc,
                         char *err, size_t err_size)
{
    const char *id = result->video_id;
    int rc;

    if (result->status == SN_VIDEO_FAILED) {
        sn_utf8_repair(result->error);
        rc = append_failed(doc, key, id, result->error);
    } else {
        rc = append(json_object_get(doc, "planned"),
                    json_pack("{s:s,s:s}", "key", key, "video", id));
    }
    if (rc < 0) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/*
 * Orchestrates one upload and files it under planned, failed or ignored.
 * Returns 0, or with one line in err -ENOMEM or the code of a failure
 * that a retry may cure.
 */
static int orchestrate_one(struct sn_lambda_app *app,
                           const struct sn_upload_record *r, json_t *doc,
                           char *err, size_t err_size)
{
    struct sn_orchestration_result result;
    const char *id = result.video_id;
    char cause[SN_ERR_SIZE] = "";
    char shown[SN_EXCERPT_MAX + SN_EXCERPT_MARK_MAX];
    json_t *item;
    int rc;

    rc = sn_orchestrate_upload(&app->b, &app->config.pipeline, r->key, 0,
                               &result, cause, sizeof(cause));
    /* The cause goes into JSON, and may end in a character that a
     * fixed-size buffer cut. */
    sn_utf8_repair(cause);
    if (rc == 0) {
        rc = file_accepted(r->key, &result, doc, err, err_size);
    } else if (is_permanent(rc)) {
        rc = append_failed(doc, r->key, id, cause) < 0 ? -ENOMEM : 0;
    } else if (rc == SN_ERR_NOT_FOUND) {
        /* Deleted after the event was sent: there is nothing to do, now
         * or on a retry. */
        sn_log(SN_LOG_WARN, id, NULL, "ignored s3://%s/%s: %s", r->bucket,
               sn_excerpt(r->key, SN_EXCERPT_MAX, shown, sizeof(shown)),
               cause);
        item = json_pack("{s:s,s:s,s:s}", "bucket", r->bucket, "key", r->key,
                         "reason", cause);
        rc = append(json_object_get(doc, "ignored"), item) < 0 ? -ENOMEM : 0;
    } else {
        snprintf(err, err_size, "%s", cause);
        return rc;
    }
    if (rc == -ENOMEM)
        snprintf(err, err_size, "out of memory");
    return rc;
}

int sn_lambda_orchestrator(struct sn_lambda_app *app,
                           const struct sn_invocation *inv, char **response,
                           char *err, size_t err_size)
{
    struct sn_upload_event event = {0};
    json_t *doc = json_pack("{s:[],s:[],s:[]}", "planned", "failed",
                            "ignored");
    char first_err[SN_ERR_SIZE] = "";
    char shown[SN_EXCERPT_MAX + SN_EXCERPT_MARK_MAX];
    int rc = -ENOMEM, first_rc = 0, n_retry = 0, n_uploads = 0;

    *response = NULL;
    if (doc == NULL) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    rc = sn_upload_event_parse(inv->event, inv->event_size,
                               app->config.videos_bucket, &event, err,
                               err_size);
    if (rc < 0)
        goto out;
    if (event.test_events > 0)
        sn_log(SN_LOG_INFO, NULL, NULL, "skipped %d s3:TestEvent message(s)",
               event.test_events);

    for (size_t i = 0; i < event.n; i++) {
        const struct sn_upload_record *r = &event.records[i];

        if (r->ignored) {
            sn_log(SN_LOG_INFO, NULL, NULL, "ignored s3://%s/%s: %s",
                   r->bucket,
                   sn_excerpt(r->key, SN_EXCERPT_MAX, shown, sizeof(shown)),
                   r->reason);
            rc = append(json_object_get(doc, "ignored"),
                        json_pack("{s:s,s:s,s:s}", "bucket", r->bucket,
                                  "key", r->key, "reason", r->reason));
            if (rc < 0) {
                snprintf(err, err_size, "out of memory");
                rc = -ENOMEM;
                goto out;
            }
            continue;
        }
        n_uploads++;
        rc = orchestrate_one(app, r, doc, err, err_size);
        if (rc == -ENOMEM)
            goto out;
        if (rc < 0 && n_retry++ == 0) {
            first_rc = rc;
            snprintf(first_err, sizeof(first_err), "%s", err);
        }
    }

    if (n_retry > 0) {
        snprintf(err, err_size, "%d of %d uploads not orchestrated, so the "
                 "event must come again; first: %s", n_retry, n_uploads,
                 first_err);
        rc = first_rc;
        goto out;
    }
    json_object_set_new(doc, "test_events", json_integer(event.test_events));
    *response = json_dumps(doc, JSON_COMPACT);
    rc = 0;
    if (*response == NULL) {
        snprintf(err, err_size, "out of memory");
        rc = -ENOMEM;
    }

out:
    sn_upload_event_release(&event);
    json_decref(doc);
    return rc;
}

/* ---- the deadline timer ------------------------------------------------ */

int64_t sn_lambda_deadline_margin_ms(int64_t budget_ms)
{
    int64_t margin = budget_ms / 20;

    if (margin < 1000)
        margin = 1000;
    if (margin > 10000)
        margin = 10000;
    return margin;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sets cancel when the wall clock reaches cancel_at_ms. The deadline is
 * Unix epoch time, so the wait uses CLOCK_REALTIME, the default clock of
 * a condition variable.
 */
struct deadline_timer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int running;
    int stop;
    int64_t cancel_at_ms;
    volatile sig_atomic_t cancel;
};

static void *timer_main(void *arg)
{
    struct deadline_timer *t = arg;

    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec until = {
            .tv_sec = (time_t)(t->cancel_at_ms / 1000),
            .tv_nsec = (long)(t->cancel_at_ms % 1000) * 1000000L,
        };

        if (now_ms() >= t->cancel_at_ms) {
            t->cancel = 1;
            sn_log(SN_LOG_WARN, NULL, NULL, "deadline near: stopping the "
                   "running job so its message comes back");
            break;
        }
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Starts the timer for a deadline (Unix epoch ms, 0 for none). */
static void timer_start(struct deadline_timer *t, int64_t deadline_ms)
{
    int64_t budget = deadline_ms - now_ms();

    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (deadline_ms <= 0)
        return;
    t->cancel_at_ms = deadline_ms - sn_lambda_deadline_margin_ms(budget);
    if (budget <= sn_lambda_deadline_margin_ms(budget)) {
        t->cancel = 1;
        return;
    }
    if (pthread_create(&t->thread, NULL, timer_main, t) == 0) {
        t->running = 1;
    } else {
        /* NOTE: without the thread the job runs until Lambda ends it, and
         * its message comes back after the visibility timeout. */
        sn_log(SN_LOG_ERROR, NULL, NULL, "cannot start the deadline timer "
               "thread; jobs will not stop before the deadline");
    }
}

static void timer_stop(struct deadline_timer *t)
{
    if (t->running) {
        pthread_mutex_lock(&t->lock);
        t->stop = 1;
        pthread_cond_signal(&t->wake);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->thread, NULL);
    }
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
}

/* ---- worker ------------------------------------------------------------ */

/* Copies the video id of a job message into id, or "" for logs. */
static void video_of(const char *body, char *id)
{
    json_t *root = json_loads(body, 0, NULL);
    const char *v = json_string_value(json_object_get(root, "video"));

    snprintf(id, SN_VIDEO_ID_LEN + 1, "%s", v != NULL ? v : "");
    sn_utf8_repair(id);
    json_decref(root);
}

/* Fails the video of a message; returns 0 when that is recorded.
 * sn_worker_fail() logs the failed video itself. */
static int fail_video(struct sn_lambda_app *app,
                      const struct sn_sqs_record *m, const char *id,
                      const char *reason)
{
    char err[SN_ERR_SIZE];
    int rc = sn_worker_fail(&app->b, m->body, reason, err, sizeof(err));

    if (rc < 0)
        sn_log(SN_LOG_ERROR, id, m->message_id, "marking the video failed "
               "(%s) failed: %s", reason, err);
    return rc;
}

/*
 * Handles a job that failed because of its source: the video fails now,
 * since another delivery would fail the same way. A body that is not a
 * job cannot fail a video, so it is dropped. Logs one line: here, or in
 * sn_worker_fail() for a failed video. Nothing is logged when a newer
 * upload has replaced the video. Returns 1 when the message must come
 * back.
 */
static int fail_permanently(struct sn_lambda_app *app,
                            const struct sn_sqs_record *m, const char *id,
                            const char *reason)
{
    char err[SN_ERR_SIZE];
    int rc = sn_worker_fail(&app->b, m->body, reason, err, sizeof(err));

    if (rc == SN_ERR_INPUT) {
        sn_log(SN_LOG_WARN, id, m->message_id, "message dropped: %s",
               reason);
        return 0;
    }
    if (rc < 0) {
        sn_log(SN_LOG_ERROR, id, m->message_id, "job failed (%s), and "
               "marking the video failed failed: %s", reason, err);
        return 1;
    }
    return 0;
}

/*
 * Runs the job of one message. Returns 1 when the message must come back
 * (Lambda delivers it again, or SQS dead-letters it), 0 when it is done.
 */
static int work_one(struct sn_lambda_app *app, const struct sn_sqs_record *m,
                    struct deadline_timer *timer)
{
    const struct sn_job_hooks hooks = {.cancel = &timer->cancel};
    int max = app->config.max_receives;
    int last = m->receive_count >= max;
    char id[SN_VIDEO_ID_LEN + 1], err[SN_ERR_SIZE] = "";
    const char *video;
    int rc;

    video_of(m->body, id);
    video = id[0] != '\0' ? id : NULL;
    rc = sn_worker_handle(&app->b, &app->config.pipeline, m->body, &hooks,
                          err, sizeof(err));
    if (rc == 0)
        return 0;
    /* A log line or a state item with a character cut by a fixed-size
     * buffer would not be valid JSON. */
    sn_utf8_repair(err);
    if (is_permanent(rc))
        return fail_permanently(app, m, video, err);

    if (rc == SN_ERR_INTERRUPTED)
        snprintf(err, sizeof(err), "job stopped before the function's "
                 "deadline on delivery %d of %d; raise the function's "
                 "timeout or lower SINATRA_CHUNK_SEGMENTS",
                 m->receive_count, max);
    sn_log(rc == SN_ERR_INTERRUPTED || rc == SN_ERR_AGAIN ? SN_LOG_INFO
                                                          : SN_LOG_WARN,
           video, m->message_id, "delivery %d of %d failed: %s",
           m->receive_count, max, err);
    if (last)
        fail_video(app, m, video, err);
    return 1;
}

int sn_lambda_worker(struct sn_lambda_app *app,
                     const struct sn_invocation *inv, char **response,
                     char *err, size_t err_size)
{
    struct sn_sqs_batch batch;
    struct deadline_timer timer;
    const char **failed = NULL;
    size_t n_failed = 0;
    int rc;

    *response = NULL;
    rc = sn_sqs_batch_parse(inv->event, inv->event_size, &batch, err,
                            err_size);
    if (rc < 0)
        goto out;
    failed = calloc(batch.n + 1, sizeof(*failed));
    if (failed == NULL) {
        snprintf(err, err_size, "out of memory");
        rc = -ENOMEM;
        goto out;
    }

    timer_start(&timer, inv->deadline_ms);
    for (size_t i = 0; i < batch.n; i++) {
        const struct sn_sqs_record *m = &batch.records[i];
        int stopped = timer.cancel || (batch.fifo && n_failed > 0);

        if (stopped) {
            sn_log(SN_LOG_INFO, NULL, m->message_id, "not started: %s",
                   timer.cancel ? "the deadline is near"
                                : "an earlier message of the FIFO batch "
                                  "failed");
            failed[n_failed++] = m->message_id;
        } else if (m->invalid[0] != '\0') {
            /* Lambda delivers it again until SQS dead-letters it. */
            sn_log(SN_LOG_WARN, NULL, m->message_id, "malformed record, "
                   "reported failed: %s", m->invalid);
            failed[n_failed++] = m->message_id;
        } else if (work_one(app, m, &timer)) {
            failed[n_failed++] = m->message_id;
        }
    }
    timer_stop(&timer);

    *response = sn_batch_response(failed, n_failed);
    if (*response == NULL) {
        snprintf(err, err_size, "out of memory");
        rc = -ENOMEM;
    }

out:
    free(failed);
    sn_sqs_batch_release(&batch);
    return rc;
}
