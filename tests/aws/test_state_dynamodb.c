/*
 * The DynamoDB video state against moto's server, run through
 * tests/aws/with_moto.sh: generations, plans, the done set, the single
 * winner of finish() across processes, failures, stale generations and
 * listing order. Each case uses its own table. Exits with 77 (skipped)
 * when AWS_ENDPOINT_URL is not set.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state/state.h"
#include "state/state_dynamodb.h"
#include "test.h"
#include "util/error.h"

#define ID "clip"
#define N_PROCESSES 4
#define N_RACE_JOBS 12

static void release(struct sn_video *v)
{
    free(v->done);
    free(v->summary);
    v->done = NULL;
    v->summary = NULL;
}

static void close_state(struct sn_state *st)
{
    if (st != NULL)
        st->ops->close(st);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static struct sn_state *open_table(const char *table)
{
    char err[SN_ERR_SIZE] = "";
    struct sn_state *st = NULL;
    int rc = sn_state_dynamodb_open(table, &st, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "open %s: %s\n", table, err);
    CHECK_INT(rc, 0);
    return rc == 0 ? st : NULL;
}

/* Opens a new table for one case, named after it. */
static struct sn_state *create_table(const char *name)
{
    char err[SN_ERR_SIZE] = "";
    struct sn_state *st = open_table(name);
    int rc;

    if (st == NULL)
        return NULL;
    rc = sn_state_dynamodb_create_table(st, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "create %s: %s\n", name, err);
    CHECK_INT(rc, 0);
    return st;
}

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

static void skip_without_endpoint(void)
{
    if (getenv("AWS_ENDPOINT_URL") == NULL) {
        fprintf(stderr, "AWS_ENDPOINT_URL is not set (run through "
                        "tests/aws/with_moto.sh): skipped\n");
        exit(77);
    }
}

/* ---- single caller ------------------------------------------------------ */

static void dynamodb_begin_counts_generations(void)
{
    struct sn_state *st = create_table("sn-begin");
    struct sn_video v = {0};
    int64_t created;
    int n_done = -1;

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
    CHECK(v.created_ms > 0);
    CHECK_INT(v.updated_ms, v.created_ms);
    created = v.created_ms;
    release(&v);

    /* A repeated event for the same upload changes nothing. */
    sleep_ms(5);
    CHECK_INT(set_plan(st, ID, 1, 3), 0);
    CHECK_INT(mark_done(st, ID, 1, 0, &n_done), 0);
    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_PROCESSING);
    CHECK_INT(v.n_jobs, 3);
    CHECK_INT(v.n_done, 1);
    release(&v);

    /* A new upload starts over, without the old done set. */
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
    release(&v);
    CHECK_INT(set_plan(st, ID, 2, 3), 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK(v.done != NULL);
    if (v.done != NULL)
        CHECK_INT(v.done[0], 0);
    CHECK_INT(v.n_done, 0);
    release(&v);

    /* Only the current tag counts as a repeat. */
    CHECK_INT(begin(st, ID, "etag-1"), 3);
    close_state(st);
}

static void dynamodb_set_plan_is_idempotent(void)
{
    char err[SN_ERR_SIZE];
    struct sn_state *st = create_table("sn-plan");
    struct sn_video v = {0};

    if (st == NULL)
        return;

    CHECK_INT(st->ops->set_plan(st, ID, 1, 4, 1000, NULL, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, ID) != NULL);
    CHECK(strstr(err, "sn-plan") != NULL);
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
    release(&v);

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

    /* A finished or failed video keeps its plan. */
    for (int job = 0; job < 4; job++)
        CHECK_INT(mark_done(st, ID, 1, job, NULL), 0);
    CHECK_INT(finish(st, ID, 1, NULL), 0);
    CHECK_INT(set_plan(st, ID, 1, 4), SN_ERR_CONFLICT);
    CHECK_INT(begin(st, ID, "etag-2"), 2);
    CHECK_INT(fail(st, ID, 2, "probe failed"), 0);
    CHECK_INT(set_plan(st, ID, 2, 4), SN_ERR_CONFLICT);
    close_state(st);
}

static void dynamodb_mark_done_counts_jobs_once(void)
{
    struct sn_state *st = create_table("sn-done");
    struct sn_video v = {0};
    int n_done = -1;

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
    release(&v);
    close_state(st);
}

static void dynamodb_finish_needs_every_job(void)
{
    struct sn_state *st = create_table("sn-finish");
    struct sn_video v = {0};
    int won = -1, n_done = -1;

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
    release(&v);

    /* A late duplicate job still counts once, and the video stays ready. */
    CHECK_INT(mark_done(st, ID, 1, 1, &n_done), 0);
    CHECK_INT(n_done, 2);
    CHECK_INT(fail(st, ID, 1, "late failure"), SN_ERR_CONFLICT);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_READY);
    CHECK_STR(v.error, "");
    release(&v);
    close_state(st);
}

static void dynamodb_fail_keeps_first_reason(void)
{
    struct sn_state *st = create_table("sn-fail");
    struct sn_video v = {0};
    char long_reason[1024];
    int won = -1;

    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(fail(st, ID, 1, "not a video file"), 0);
    CHECK_INT(fail(st, ID, 1, "second reason"), 0);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_FAILED);
    CHECK_STR(v.error, "not a video file");
    release(&v);
    CHECK_INT(set_plan(st, ID, 1, 2), SN_ERR_CONFLICT);
    CHECK_INT(finish(st, ID, 1, &won), SN_ERR_CONFLICT);

    /* A failed planned video rejects further jobs; a long reason is cut. */
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    CHECK_INT(begin(st, ID, "etag-2"), 2);
    CHECK_INT(set_plan(st, ID, 2, 2), 0);
    CHECK_INT(fail(st, ID, 2, long_reason), 0);
    CHECK_INT(mark_done(st, ID, 2, 0, NULL), SN_ERR_CONFLICT);
    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_FAILED);
    CHECK_INT(strlen(v.error), sizeof(v.error) - 1);
    release(&v);
    close_state(st);
}

static void dynamodb_stale_generation_changes_nothing(void)
{
    char err[SN_ERR_SIZE];
    struct sn_state *st = create_table("sn-stale");
    struct sn_video v = {0};
    int won = -1;

    if (st == NULL)
        return;

    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(set_plan(st, ID, 1, 2), 0);
    CHECK_INT(begin(st, ID, "etag-2"), 2);

    CHECK_INT(set_plan(st, ID, 1, 2), SN_ERR_CONFLICT);
    CHECK_INT(mark_done(st, ID, 1, 0, NULL), SN_ERR_CONFLICT);
    CHECK_INT(finish(st, ID, 1, &won), SN_ERR_CONFLICT);
    CHECK_INT(st->ops->fail(st, ID, 1, "old job failed", err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK(strstr(err, "stale") != NULL);
    CHECK(strstr(err, ID) != NULL);
    CHECK(strstr(err, "sn-stale") != NULL);

    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.generation, 2);
    CHECK_INT(v.status, SN_VIDEO_QUEUED);
    CHECK_STR(v.error, "");
    CHECK_INT(v.n_jobs, 0);
    release(&v);
    close_state(st);
}

struct collected {
    char ids[8][64];
    int n;
    int stop_after;
    int with_done;
};

static int collect_video(void *opaque, const struct sn_video *v)
{
    struct collected *l = opaque;

    if (l->n < 8)
        snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", v->id);
    l->with_done += v->done != NULL;
    l->n++;
    return l->stop_after != 0 && l->n >= l->stop_after ? 7 : 0;
}

static void dynamodb_list_puts_newest_first(void)
{
    char err[SN_ERR_SIZE];
    struct sn_state *st = create_table("sn-list");
    struct collected l;

    if (st == NULL)
        return;

    memset(&l, 0, sizeof(l));
    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 0);
    CHECK_INT(l.n, 0);

    CHECK_INT(begin(st, "a", "t1"), 1);
    CHECK_INT(begin(st, "b", "t1"), 1);
    CHECK_INT(set_plan(st, "b", 1, 2), 0);
    CHECK_INT(mark_done(st, "b", 1, 0, NULL), 0);
    CHECK_INT(begin(st, "c", "t1"), 1);
    CHECK_INT(begin(st, "a", "t2"), 2);
    /* A repeated event is not a new upload. */
    CHECK_INT(begin(st, "b", "t1"), 1);

    memset(&l, 0, sizeof(l));
    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 0);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.ids[0], "a");
    CHECK_STR(l.ids[1], "c");
    CHECK_STR(l.ids[2], "b");
    CHECK_INT(l.with_done, 0);

    /* A non-zero return stops the listing and comes back. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 2;
    CHECK_INT(st->ops->list(st, collect_video, &l, err, sizeof(err)), 7);
    CHECK_INT(l.n, 2);
    close_state(st);
}

static void dynamodb_rejects_values_out_of_range(void)
{
    char err[SN_ERR_SIZE], long_id[65], long_tag[81];
    struct sn_state *st = create_table("sn-limits");
    struct sn_video v = {0};
    char *summary = malloc(SN_STATE_MAX_SUMMARY + 2);
    int64_t generation = -1;

    CHECK(summary != NULL);
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
    CHECK_INT(st->ops->begin(st, "#upload_seq", "stream/x", "t", &generation,
                             err, sizeof(err)), SN_ERR_INPUT);
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
    release(&v);
    free(summary);
    close_state(st);
}

static void dynamodb_open_checks_table(void)
{
    char err[SN_ERR_SIZE];
    struct sn_state *st = NULL;
    struct sn_video v = {0};

    CHECK_INT(sn_state_dynamodb_open("ab", &st, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK_INT(sn_state_dynamodb_open("bad name", &st, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(st == NULL);

    st = open_table("sn-no-such-table");
    if (st == NULL)
        return;
    CHECK_INT(st->ops->get(st, ID, &v, err, sizeof(err)), SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "sn-no-such-table") != NULL);
    close_state(st);
}

/* ---- several processes -------------------------------------------------- */

struct race_results {
    int at_barrier;
    int64_t generation[N_PROCESSES];
    int won[N_PROCESSES];
};

/* Waits until every child has arrived, for at most 10 s. */
static void wait_at_barrier(struct race_results *results)
{
    time_t start = time(NULL);

    __atomic_fetch_add(&results->at_barrier, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&results->at_barrier, __ATOMIC_SEQ_CST) <
               N_PROCESSES &&
           time(NULL) - start <= 10)
        sched_yield();
}

/* Marks every job done, from a different first job in each process, then
 * tries to finish. */
static int finish_in_child(const char *table, int index,
                           struct race_results *results)
{
    char err[SN_ERR_SIZE];
    struct sn_state *st = NULL;
    int won = -1, status = 0;

    if (sn_state_dynamodb_open(table, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    for (int i = 0; i < N_RACE_JOBS && status == 0; i++) {
        int job = (i + index * 3) % N_RACE_JOBS;

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
    close_state(st);
    return status;
}

static int begin_in_child(const char *table, int index,
                          struct race_results *results)
{
    char err[SN_ERR_SIZE], tag[32];
    struct sn_state *st = NULL;
    int rc;

    if (sn_state_dynamodb_open(table, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    snprintf(tag, sizeof(tag), "etag-child-%d", index);
    wait_at_barrier(results);
    rc = st->ops->begin(st, "raced", "stream/raced.mp4", tag,
                        &results->generation[index], err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "child: %s\n", err);
    close_state(st);
    return rc == 0 ? 0 : 3;
}

static void run_children(const char *table, struct race_results *results,
                         int (*fn)(const char *, int, struct race_results *))
{
    pid_t pids[N_PROCESSES];
    int n_started = 0;

    for (int i = 0; i < N_PROCESSES; i++) {
        pid_t pid = fork();

        if (pid == 0)
            _exit(fn(table, i, results));
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

static struct race_results *shared_results(void)
{
    struct race_results *results = mmap(NULL, sizeof(*results),
                                        PROT_READ | PROT_WRITE,
                                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    CHECK(results != MAP_FAILED);
    if (results == MAP_FAILED)
        return NULL;
    memset(results, 0, sizeof(*results));
    return results;
}

static void dynamodb_finish_race_has_one_winner(void)
{
    struct sn_state *st = create_table("sn-race-finish");
    struct race_results *results = shared_results();
    struct sn_video v = {0};
    int winners = 0;

    if (st == NULL || results == NULL)
        goto out;
    CHECK_INT(begin(st, ID, "etag-1"), 1);
    CHECK_INT(set_plan(st, ID, 1, N_RACE_JOBS), 0);

    run_children("sn-race-finish", results, finish_in_child);
    for (int i = 0; i < N_PROCESSES; i++) {
        CHECK(results->won[i] == 0 || results->won[i] == 1);
        winners += results->won[i] == 1;
    }
    CHECK_INT(winners, 1);

    CHECK_INT(get(st, ID, &v), 0);
    CHECK_INT(v.status, SN_VIDEO_READY);
    CHECK_INT(v.n_done, N_RACE_JOBS);
    for (int job = 0; v.done && job < N_RACE_JOBS; job++)
        CHECK_INT(v.done[job], 1);
    release(&v);

out:
    close_state(st);
    if (results != NULL)
        munmap(results, sizeof(*results));
}

static void dynamodb_begin_race_distinct_generations(void)
{
    struct sn_state *st = create_table("sn-race-begin");
    struct race_results *results = shared_results();
    struct sn_video v = {0};
    int seen[N_PROCESSES + 1] = {0};

    if (st == NULL || results == NULL)
        goto out;

    run_children("sn-race-begin", results, begin_in_child);
    for (int i = 0; i < N_PROCESSES; i++) {
        int64_t g = results->generation[i];

        CHECK(g >= 1);
        CHECK(g <= N_PROCESSES);
        if (g >= 1 && g <= N_PROCESSES)
            seen[g]++;
    }
    for (int g = 1; g <= N_PROCESSES; g++)
        CHECK_INT(seen[g], 1);

    CHECK_INT(get(st, "raced", &v), 0);
    CHECK_INT(v.generation, N_PROCESSES);
    release(&v);

out:
    close_state(st);
    if (results != NULL)
        munmap(results, sizeof(*results));
}

static void dynamodb_requires_endpoint(void)
{
    skip_without_endpoint();
}

SN_TEST_MAIN(TEST_CASE(dynamodb_requires_endpoint),
             TEST_CASE(dynamodb_open_checks_table),
             TEST_CASE(dynamodb_begin_counts_generations),
             TEST_CASE(dynamodb_set_plan_is_idempotent),
             TEST_CASE(dynamodb_mark_done_counts_jobs_once),
             TEST_CASE(dynamodb_finish_needs_every_job),
             TEST_CASE(dynamodb_fail_keeps_first_reason),
             TEST_CASE(dynamodb_stale_generation_changes_nothing),
             TEST_CASE(dynamodb_list_puts_newest_first),
             TEST_CASE(dynamodb_rejects_values_out_of_range),
             TEST_CASE(dynamodb_finish_race_has_one_winner),
             TEST_CASE(dynamodb_begin_race_distinct_generations))
