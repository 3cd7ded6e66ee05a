#include "queue/queue.h"
#include "state/state.h"
#include "test.h"
#include "util/error.h"

#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_PROCESSES 4
#define ID "clip"

/* A fresh database path in its own temporary folder. */
struct scratch {
    char dir[PATH_MAX];
    char path[PATH_MAX];
};

static int scratch_init(struct scratch *s)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(s->dir, sizeof(s->dir), "%s/sn-state-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(s->path, sizeof(s->path), "%s/state.db", s->dir);
    return 0;
}

static void scratch_release(struct scratch *s)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[PATH_MAX + 16];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(file, sizeof(file), "%s%s", s->path, suffixes[i]);
        unlink(file);
    }
    rmdir(s->dir);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static int64_t unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sn_state *open_state(const char *path)
{
    char err[SN_ERR_SIZE] = "";
    struct sn_state *st = NULL;
    int rc = sn_state_sqlite_open(path, &st, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "open %s: %s\n", path, err);
    CHECK_INT(rc, 0);
    return rc == 0 ? st : NULL;
}

/* Calls begin() and returns the generation, or the error code. */
static int64_t begin(struct sn_state *st, const char *id, const char *tag)
{
    char err[SN_ERR_SIZE], source[128];
    int64_t generation = -1;
    int rc;

    snprintf(source, sizeof(source), "stream/%s.mp4", id);
    rc = st->ops->begin(st, id, source, tag, &generation, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "begin %s: %s\n", id, err);
    return rc == 0 ? generation : rc;
}

static int set_plan(struct sn_state *st, const char *id, int64_t generation,
                    int n_jobs)
{
    char err[SN_ERR_SIZE];

    return st->ops->set_plan(st, id, generation, n_jobs, 60000000,
                             "{\"renditions\":3}", err, sizeof(err));
}

static int mark_done(struct sn_state *st, const char *id,
                     int64_t generation, int job, int *n_done)
{
    char err[SN_ERR_SIZE];

    return st->ops->mark_done(st, id, generation, job, n_done, err,
                              sizeof(err));
}

static int finish(struct sn_state *st, const char *id, int64_t generation,
                  int *won)
{
    char err[SN_ERR_SIZE];

    return st->ops->finish(st, id, generation, won, err, sizeof(err));
}

static int fail(struct sn_state *st, const char *id, int64_t generation,
                const char *reason)
{
    char err[SN_ERR_SIZE];

    return st->ops->fail(st, id, generation, reason, err, sizeof(err));
}

static int get(struct sn_state *st, const char *id, struct sn_video *v)
{
    char err[SN_ERR_SIZE];

    return st->ops->get(st, id, v, err, sizeof(err));
}

/* ---- begin -------------------------------------------------------------- */

static void state_begin_counts_generations(void)
{
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    int64_t before = unix_ms(), created;
    int n_done = -1;

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_STR(v.id, ID);
    CHECK_STR(v.source, "stream/" ID ".mp4");
    CHECK_STR(v.upload_tag, "etag-1");
    CHECK_INT(v.generation, 1);
    CHECK_INT(v.status, SN_VIDEO_QUEUED);
    CHECK_INT(v.n_jobs, 0);
    CHECK_INT(v.n_done, 0);
    CHECK(v.done == NULL);
    CHECK(v.summary == NULL);
    CHECK_STR(v.error, "");
    CHECK(v.created_ms >= before);
    CHECK(v.created_ms <= unix_ms());
    CHECK_INT(v.updated_ms, v.created_ms);
    created = v.created_ms;
    sn_video_release(&v);

    /* A repeated event for the same upload changes nothing. */
    sleep_ms(5);
    CHECK_INT(set_plan(st, ID, 1, 3), 0);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), 0);
    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_PROCESSING);
    CHECK_INT(v.n_jobs, 3);
    CHECK_INT(v.n_done, 1);
    sn_video_release(&v);

    /* A new upload starts over. */
    CHECK_INT(fail(st, ID, 1, "decoder error"), 0);
    sleep_ms(5);
    CHECK_INT(begin(st, ID, "etag-2"), 2);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.generation, 2);
    CHECK_STR(v.upload_tag, "etag-2");
    CHECK_INT(v.status, SN_VIDEO_QUEUED);
    CHECK_INT(v.n_jobs, 0);
    CHECK_INT(v.n_done, 0);
    CHECK_INT(v.duration_us, 0);
    CHECK(v.done == NULL);
    CHECK(v.summary == NULL);
    CHECK_STR(v.error, "");
    CHECK_INT(v.created_ms, created);
    CHECK(v.updated_ms > created);
    sn_video_release(&v);

    /* The done set of the old generation does not carry over. */
    CHECK_INT(set_plan(st, ID, 2, 3), 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK(v.done != NULL);
    if (v.done != NULL)
        CHECK_INT(v.done[0], 0);
    CHECK_INT(v.n_done, 0);
    sn_video_release(&v);

    /* Only the current tag counts as a repeat: the first tag again is a
     * new upload. */
    CHECK_INT(begin(st, ID, "etag-1"), 3);

    sn_state_close(st);
    scratch_release(&s);
}

/* ---- set_plan, mark_done, finish, fail ---------------------------------- */

static void state_set_plan_is_idempotent(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(st->ops->set_plan(st, ID, 1, 4, 1000, NULL, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, ID) != NULL);
    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(set_plan(st, ID, 1, 4), 0);
    CHECK_INT(set_plan(st, ID, 1, 4), 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_PROCESSING);
    CHECK_INT(v.n_jobs, 4);
    CHECK_INT(v.duration_us, 60000000);
    CHECK_STR(v.summary, "{\"renditions\":3}");
    CHECK(v.done != NULL);
    for (int i = 0; v.done && i < 4; i++)
        CHECK_INT(v.done[i], 0);
    sn_video_release(&v);

    /* A different plan for the same generation is rejected. */
    CHECK_INT(set_plan(st, ID, 1, 5), SN_ERR_CONFLICT);
    CHECK_INT(st->ops->set_plan(st, ID, 1, 4, 60000000, "{}", err,
                                sizeof(err)), SN_ERR_CONFLICT);
    CHECK_INT(st->ops->set_plan(st, ID, 1, 4, 60000000, NULL, err,
                                sizeof(err)), SN_ERR_CONFLICT);
    CHECK_INT(st->ops->set_plan(st, ID, 1, 4, 1, "{\"renditions\":3}", err,
                                sizeof(err)), SN_ERR_CONFLICT);
    CHECK_INT(set_plan(st, ID, 0, 4), SN_ERR_CONFLICT);
    CHECK_INT(set_plan(st, ID, 2, 4), SN_ERR_CONFLICT);
    CHECK(strstr(err, s.path) != NULL);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.n_jobs, 4);
    sn_video_release(&v);

    /* A finished or failed video keeps its plan. */
    for (int job = 0; job < 4; job++)
        CHECK_INT(mark_done(st, ID, 1, job, NULL), 0);
    CHECK_INT(finish(st, ID, 1, NULL), 0);
    CHECK_INT(set_plan(st, ID, 1, 4), SN_ERR_CONFLICT);
    CHECK_INT(begin(st, ID, "etag-2"), 2);
    CHECK_INT(fail(st, ID, 2, "probe failed"), 0);
    CHECK_INT(set_plan(st, ID, 2, 4), SN_ERR_CONFLICT);

    sn_state_close(st);
    scratch_release(&s);
}

static void state_mark_done_counts_each_job_once(void)
{
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    int n_done = -1;

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), SN_ERR_CONFLICT);
    CHECK_INT(set_plan(st, ID, 1, 3), 0);

    CHECK_INT(mark_done(st, ID, 1, 1, &n_done), 0);
    CHECK_INT(n_done, 1);
    CHECK_INT(mark_done(st, ID, 1, 1, &n_done), 0);
    CHECK_INT(n_done, 1);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), 0);
    CHECK_INT(n_done, 2);
    CHECK_INT(mark_done(st, ID, 1, 3, &n_done), SN_ERR_CONFLICT);
    CHECK_INT(mark_done(st, ID, 1, -1, &n_done), SN_ERR_CONFLICT);
    CHECK_INT(mark_done(st, "other", 1, 0, &n_done), SN_ERR_NOT_FOUND);

    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.n_done, 2);
    CHECK(v.done != NULL);
    if (v.done) {
        CHECK_INT(v.done[0], 1);
        CHECK_INT(v.done[1], 1);
        CHECK_INT(v.done[2], 0);
    }
    sn_video_release(&v);

    sn_state_close(st);
    scratch_release(&s);
}

static void state_finish_needs_every_job(void)
{
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    int won = -1, n_done = -1;

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(finish(st, ID, 1, &won), SN_ERR_CONFLICT);
    CHECK_INT(set_plan(st, ID, 1, 2), 0);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), 0);
    CHECK_INT(finish(st, ID, 1, &won), SN_ERR_CONFLICT);
    CHECK_INT(mark_done(st, ID, 1, 1, &n_done), 0);
    CHECK_INT(n_done, 2);

    CHECK_INT(finish(st, ID, 1, &won), 0);
    CHECK_INT(won, 1);
    CHECK_INT(finish(st, ID, 1, &won), 0);
    CHECK_INT(won, 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_READY);
    sn_video_release(&v);

    /* A late duplicate job still counts once, and the video stays ready. */
    CHECK_INT(mark_done(st, ID, 1, 1, &n_done), 0);
    CHECK_INT(n_done, 2);
    CHECK_INT(fail(st, ID, 1, "late failure"), SN_ERR_CONFLICT);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_READY);
    CHECK_STR(v.error, "");
    sn_video_release(&v);

    sn_state_close(st);
    scratch_release(&s);
}

static void state_fail_keeps_first_reason(void)
{
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    char long_reason[1024];
    int won = -1;

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(fail(st, ID, 1, "not a video file"), 0);
    CHECK_INT(fail(st, ID, 1, "second reason"), 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_FAILED);
    CHECK_STR(v.error, "not a video file");
    sn_video_release(&v);
    CHECK_INT(set_plan(st, ID, 1, 2), SN_ERR_CONFLICT);
    CHECK_INT(finish(st, ID, 1, &won), SN_ERR_CONFLICT);

    /* A failed planned video rejects further jobs. */
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    CHECK_INT(begin(st, ID, "etag-2"), 2);
    CHECK_INT(set_plan(st, ID, 2, 2), 0);
    CHECK_INT(fail(st, ID, 2, long_reason), 0);
    CHECK_INT(mark_done(st, ID, 2, 0, NULL), SN_ERR_CONFLICT);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_FAILED);
    CHECK_INT(strlen(v.error), sizeof(v.error) - 1);
    CHECK_INT(v.n_jobs, 2);
    CHECK(v.done != NULL);
    sn_video_release(&v);

    sn_state_close(st);
    scratch_release(&s);
}

static void state_stale_generation_changes_nothing(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    int won = -1, n_done = -1;

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(set_plan(st, ID, 1, 2), 0);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), 0);
    CHECK_INT(mark_done(st, ID, 1, 1, &n_done), 0);
    CHECK_INT(begin(st, ID, "etag-2"), 2);
    CHECK_INT(set_plan(st, ID, 2, 3), 0);

    CHECK_INT(set_plan(st, ID, 1, 2), SN_ERR_CONFLICT);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), SN_ERR_CONFLICT);
    CHECK_INT(st->ops->finish(st, ID, 1, &won, err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK(strstr(err, "generation 1 is stale") != NULL);
    CHECK(strstr(err, ID) != NULL);
    CHECK(strstr(err, s.path) != NULL);
    CHECK_INT(fail(st, ID, 1, "old job failed"), SN_ERR_CONFLICT);
    CHECK_INT(mark_done(st, ID, 3, 0, &n_done), SN_ERR_CONFLICT);

    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.generation, 2);
    CHECK_INT(v.status, SN_VIDEO_PROCESSING);
    CHECK_INT(v.n_jobs, 3);
    CHECK_INT(v.n_done, 0);
    CHECK_STR(v.error, "");
    sn_video_release(&v);

    sn_state_close(st);
    scratch_release(&s);
}

/* ---- get, list, limits -------------------------------------------------- */

struct listing {
    int n;
    char ids[8][64];
    int with_flags;
    int stop_after;
};

static int collect_video(void *opaque, const struct sn_video *v)
{
    struct listing *l = opaque;

    if (l->n < 8)
        snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", v->id);
    l->n++;
    l->with_flags += v->done != NULL;
    return l->stop_after && l->n == l->stop_after ? 7 : 0;
}

static void state_list_puts_newest_upload_first(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    struct listing l = {0};

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    if (st == NULL)
        return;

    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 0);
    CHECK_INT(l.n, 0);
    CHECK_INT(get(st, "nothing", &v), SN_ERR_NOT_FOUND);

    CHECK_INT(begin(st, "a", "t1"), 1);
    CHECK_INT(begin(st, "b", "t1"), 1);
    CHECK_INT(begin(st, "c", "t1"), 1);
    CHECK_INT(set_plan(st, "b", 1, 2), 0);
    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 0);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.ids[0], "c");
    CHECK_STR(l.ids[1], "b");
    CHECK_STR(l.ids[2], "a");
    CHECK_INT(l.with_flags, 0);

    /* A new upload moves a video to the front; a repeated one does not. */
    CHECK_INT(begin(st, "a", "t2"), 2);
    CHECK_INT(begin(st, "b", "t1"), 1);
    memset(&l, 0, sizeof(l));
    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 0);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.ids[0], "a");
    CHECK_STR(l.ids[1], "c");
    CHECK_STR(l.ids[2], "b");

    /* A non-zero return stops the listing and comes back. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 2;
    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 7);
    CHECK_INT(l.n, 2);

    sn_state_close(st);
    scratch_release(&s);
}

static void state_rejects_values_out_of_range(void)
{
    char err[SN_ERR_SIZE], long_id[65], long_tag[81];
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    char *summary = malloc(SN_STATE_MAX_SUMMARY + 2);
    int64_t generation = -1;

    CHECK_INT(scratch_init(&s), 0);
    CHECK(summary != NULL);
    st = open_state(s.path);
    if (st == NULL || summary == NULL)
        goto out;

    memset(long_id, 'i', 64);
    long_id[64] = '\0';
    memset(long_tag, 't', 80);
    long_tag[80] = '\0';
    CHECK_INT(st->ops->begin(st, long_id, "stream/x", "t", &generation, err,
                             sizeof(err)), SN_ERR_LIMIT);
    CHECK_INT(st->ops->begin(st, "", "stream/x", "t", &generation, err,
                             sizeof(err)), SN_ERR_LIMIT);
    CHECK_INT(st->ops->begin(st, ID, "stream/x", long_tag, &generation, err,
                             sizeof(err)), SN_ERR_LIMIT);
    CHECK_INT(st->ops->begin(st, ID, "", "t", &generation, err,
                             sizeof(err)), SN_ERR_LIMIT);
    CHECK_INT(get(st, long_id, &v), SN_ERR_LIMIT);
    CHECK_INT(generation, -1);

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(set_plan(st, ID, 1, 0), SN_ERR_LIMIT);
    CHECK_INT(set_plan(st, ID, 1, SN_STATE_MAX_JOBS + 1), SN_ERR_LIMIT);
    CHECK_INT(st->ops->set_plan(st, ID, 1, 2, -1, NULL, err, sizeof(err)),
              SN_ERR_LIMIT);
    memset(summary, ' ', SN_STATE_MAX_SUMMARY + 1);
    summary[SN_STATE_MAX_SUMMARY + 1] = '\0';
    CHECK_INT(st->ops->set_plan(st, ID, 1, 2, 0, summary, err, sizeof(err)),
              SN_ERR_LIMIT);
    CHECK(strstr(err, ID) != NULL);
    CHECK(strstr(err, s.path) != NULL);
    CHECK(strstr(err, "32768") != NULL);

    /* The limits themselves are accepted. */
    summary[SN_STATE_MAX_SUMMARY] = '\0';
    CHECK_INT(st->ops->set_plan(st, ID, 1, SN_STATE_MAX_JOBS, 0, summary,
                                err, sizeof(err)), 0);
    CHECK_INT(mark_done(st, ID, 1, SN_STATE_MAX_JOBS - 1, NULL), 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.n_jobs, SN_STATE_MAX_JOBS);
    CHECK(v.summary != NULL);
    if (v.summary != NULL)
        CHECK_INT(strlen(v.summary), SN_STATE_MAX_SUMMARY);
    CHECK(v.done != NULL);
    if (v.done != NULL) {
        CHECK_INT(v.done[SN_STATE_MAX_JOBS - 1], 1);
        CHECK_INT(v.done[0], 0);
    }

out:
    sn_video_release(&v);
    free(summary);
    sn_state_close(st);
    scratch_release(&s);
}

static void state_status_names(void)
{
    CHECK_STR(sn_video_status_name(SN_VIDEO_QUEUED), "queued");
    CHECK_STR(sn_video_status_name(SN_VIDEO_PROCESSING), "processing");
    CHECK_STR(sn_video_status_name(SN_VIDEO_READY), "ready");
    CHECK_STR(sn_video_status_name(SN_VIDEO_FAILED), "failed");
    CHECK_STR(sn_video_status_name((enum sn_video_status)9), "unknown");
    sn_video_release(NULL);
    sn_state_close(NULL);
}

/* The queue and the state can live in one database file. */
static void state_shares_file_with_queue(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_state *st;
    struct sn_queue *q = NULL;
    struct sn_message m = {0};
    const char *bodies[] = {"job 0"};

    CHECK_INT(scratch_init(&s), 0);
    st = open_state(s.path);
    CHECK_INT(sn_queue_sqlite_open(s.path, 3, &q, err, sizeof(err)), 0);
    if (st == NULL || q == NULL)
        goto out;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(q->ops->send(q, bodies, 1, 0, err, sizeof(err)), 0);
    CHECK_INT(set_plan(st, ID, 1, 1), 0);
    CHECK_INT(q->ops->receive(q, 30, 0, &m, err, sizeof(err)), 0);
    CHECK_STR(m.body, "job 0");
    CHECK_INT(mark_done(st, ID, 1, 0, NULL), 0);
    CHECK_INT(q->ops->remove(q, m.receipt, err, sizeof(err)), 0);

out:
    sn_message_release(&m);
    sn_queue_close(q);
    sn_state_close(st);
    scratch_release(&s);
}

/* ---- several processes -------------------------------------------------- */

#define N_RACE_JOBS 20

struct race_results {
    int at_barrier;
    int64_t generation[N_PROCESSES];
    int won[N_PROCESSES];
};

/* Waits until every child has arrived, so that their next calls race. A
 * child that never arrives delays the others by at most 10 s. */
static void wait_at_barrier(struct race_results *results)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    __atomic_fetch_add(&results->at_barrier, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&results->at_barrier, __ATOMIC_SEQ_CST) <
           N_PROCESSES) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 10)
            break;
        sched_yield();
    }
}

/* Marks every job done, starting at a different job in each process, then
 * tries to finish. Returns the exit status of the child. */
static int finish_in_child(const char *path, int index,
                           struct race_results *results)
{
    char err[SN_ERR_SIZE];
    struct sn_state *st = NULL;
    int won = -1, status = 0;

    if (sn_state_sqlite_open(path, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    for (int i = 0; i < N_RACE_JOBS && status == 0; i++) {
        int job = (i + index * 5) % N_RACE_JOBS;

        if (st->ops->mark_done(st, ID, 1, job, NULL, err, sizeof(err))) {
            fprintf(stderr, "child: %s\n", err);
            status = 3;
        }
    }
    wait_at_barrier(results);
    if (status == 0 && st->ops->finish(st, ID, 1, &won, err, sizeof(err))) {
        fprintf(stderr, "child: %s\n", err);
        status = 4;
    }
    results->won[index] = won;
    sn_state_close(st);
    return status;
}

/* Each process uploads the video under its own tag. */
static int begin_in_child(const char *path, int index,
                          struct race_results *results)
{
    char err[SN_ERR_SIZE], tag[32];
    struct sn_state *st = NULL;
    int rc;

    if (sn_state_sqlite_open(path, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    snprintf(tag, sizeof(tag), "etag-child-%d", index);
    wait_at_barrier(results);
    rc = st->ops->begin(st, "raced", "stream/raced.mp4", tag,
                        &results->generation[index], err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "child: %s\n", err);
    sn_state_close(st);
    return rc == 0 ? 0 : 3;
}

/* Runs fn in N_PROCESSES children and checks that each exited with 0. */
static void run_children(const char *path, struct race_results *results,
                         int (*fn)(const char *, int, struct race_results *))
{
    pid_t pids[N_PROCESSES];
    int n_started = 0;

    for (int i = 0; i < N_PROCESSES; i++) {
        pid_t pid = fork();

        if (pid == 0)
            _exit(fn(path, i, results));
        CHECK(pid > 0);
        if (pid > 0)
            pids[n_started++] = pid;
    }
    for (int i = 0; i < n_started; i++) {
        int status = -1;

        CHECK_INT(waitpid(pids[i], &status, 0), pids[i]);
        CHECK(WIFEXITED(status));
        CHECK_INT(WEXITSTATUS(status), 0);
    }
}

static void state_finish_race_has_one_winner(void)
{
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    struct race_results *results;
    int winners = 0;

    CHECK_INT(scratch_init(&s), 0);
    results = mmap(NULL, sizeof(*results), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(results != MAP_FAILED);
    if (results == MAP_FAILED)
        return;
    memset(results, 0, sizeof(*results));

    /* Set up, then close: no handle may cross fork(). */
    st = open_state(s.path);
    if (st == NULL)
        goto out;
    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(set_plan(st, ID, 1, N_RACE_JOBS), 0);
    sn_state_close(st);

    run_children(s.path, results, finish_in_child);
    for (int i = 0; i < N_PROCESSES; i++) {
        CHECK(results->won[i] == 0 || results->won[i] == 1);
        winners += results->won[i] == 1;
    }
    CHECK_INT(winners, 1);

    st = open_state(s.path);
    if (st != NULL && get(st, ID, &v) == 0) {
        CHECK_INT(v.status, SN_VIDEO_READY);
        CHECK_INT(v.n_done, N_RACE_JOBS);
        for (int job = 0; v.done && job < N_RACE_JOBS; job++)
            CHECK_INT(v.done[job], 1);
    }
    sn_video_release(&v);
    sn_state_close(st);

out:
    munmap(results, sizeof(*results));
    scratch_release(&s);
}

static void state_begin_race_distinct_generations(void)
{
    struct scratch s;
    struct sn_state *st;
    struct sn_video v = {0};
    struct race_results *results;
    int seen[N_PROCESSES + 1] = {0};

    CHECK_INT(scratch_init(&s), 0);
    results = mmap(NULL, sizeof(*results), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(results != MAP_FAILED);
    if (results == MAP_FAILED)
        return;
    memset(results, 0, sizeof(*results));

    run_children(s.path, results, begin_in_child);
    for (int i = 0; i < N_PROCESSES; i++) {
        int64_t g = results->generation[i];

        CHECK(g >= 1);
        CHECK(g <= N_PROCESSES);
        if (g >= 1 && g <= N_PROCESSES)
            seen[g]++;
    }
    for (int g = 1; g <= N_PROCESSES; g++)
        CHECK_INT(seen[g], 1);

    st = open_state(s.path);
    if (st != NULL && get(st, "raced", &v) == 0)
        CHECK_INT(v.generation, N_PROCESSES);
    sn_video_release(&v);
    sn_state_close(st);
    munmap(results, sizeof(*results));
    scratch_release(&s);
}

SN_TEST_MAIN(TEST_CASE(state_begin_counts_generations),
             TEST_CASE(state_set_plan_is_idempotent),
             TEST_CASE(state_mark_done_counts_each_job_once),
             TEST_CASE(state_finish_needs_every_job),
             TEST_CASE(state_fail_keeps_first_reason),
             TEST_CASE(state_stale_generation_changes_nothing),
             TEST_CASE(state_list_puts_newest_upload_first),
             TEST_CASE(state_rejects_values_out_of_range),
             TEST_CASE(state_status_names),
             TEST_CASE(state_shares_file_with_queue),
             TEST_CASE(state_finish_race_has_one_winner),
             TEST_CASE(state_begin_race_distinct_generations))
