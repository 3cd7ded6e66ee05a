#include "queue/queue.h"
#include "test.h"
#include "util/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_WORKERS 4
#define N_MESSAGES 400

/* A fresh database path in its own temporary folder. */
struct scratch {
    char dir[PATH_MAX];
    char path[PATH_MAX];
};

static int scratch_init(struct scratch *s)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(s->dir, sizeof(s->dir), "%s/sn-queue-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(s->path, sizeof(s->path), "%s/queue.db", s->dir);
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

static int64_t elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - start->tv_sec) * 1000 +
           (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static struct sn_queue *open_queue(const char *path, int max_receives)
{
    char err[SN_ERR_SIZE] = "";
    struct sn_queue *q = NULL;
    int rc = sn_queue_sqlite_open(path, max_receives, &q, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "open %s: %s\n", path, err);
    CHECK_INT(rc, 0);
    return rc == 0 ? q : NULL;
}

static int send_one(struct sn_queue *q, const char *body, int delay_s)
{
    char err[SN_ERR_SIZE];
    const char *bodies[] = {body};

    return q->ops->send(q, bodies, 1, delay_s, err, sizeof(err));
}

static int receive(struct sn_queue *q, int visibility_s, int wait_ms,
                   struct sn_message *m)
{
    char err[SN_ERR_SIZE];

    return q->ops->receive(q, visibility_s, wait_ms, m, err, sizeof(err));
}

static void check_counts(struct sn_queue *q, int64_t visible,
                         int64_t in_flight, int64_t dead)
{
    char err[SN_ERR_SIZE];
    int64_t v = -1, f = -1, d = -1;

    CHECK_INT(q->ops->count(q, &v, &f, &d, err, sizeof(err)), 0);
    CHECK_INT(v, visible);
    CHECK_INT(f, in_flight);
    CHECK_INT(d, dead);
}

/* ---- delivery ----------------------------------------------------------- */

static void queue_redelivers_after_visibility_timeout(void)
{
    struct scratch s;
    struct sn_queue *q;
    struct sn_message first = {0}, again = {0}, none = {0};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    CHECK_INT(send_one(q, "chunk 7", 0), 0);
    check_counts(q, 1, 0, 0);
    CHECK_INT(receive(q, 1, 0, &first), 0);
    CHECK_STR(first.body, "chunk 7");
    CHECK_INT(first.receive_count, 1);
    CHECK(strncmp(first.receipt, first.id, strlen(first.id)) == 0);

    /* Hidden while the timeout runs. */
    CHECK_INT(receive(q, 1, 0, &none), SN_ERR_AGAIN);
    CHECK(none.body == NULL);
    check_counts(q, 0, 1, 0);

    sleep_ms(1100);
    check_counts(q, 1, 0, 0);
    CHECK_INT(receive(q, 30, 0, &again), 0);
    CHECK_STR(again.body, "chunk 7");
    CHECK_STR(again.id, first.id);
    CHECK_INT(again.receive_count, 2);
    CHECK(strcmp(again.receipt, first.receipt) != 0);
    check_counts(q, 0, 1, 0);

    sn_message_release(&first);
    sn_message_release(&again);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_stale_receipt_conflicts(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message old = {0}, cur = {0};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    CHECK_INT(send_one(q, "job", 0), 0);
    /* A zero visibility timeout makes the message visible at once. */
    CHECK_INT(receive(q, 0, 0, &old), 0);
    CHECK_INT(receive(q, 30, 0, &cur), 0);
    CHECK_INT(cur.receive_count, 2);
    CHECK_STR(cur.id, old.id);

    CHECK_INT(q->ops->extend(q, old.receipt, 30, err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK(strstr(err, s.path) != NULL);
    CHECK(strstr(err, old.receipt) != NULL);
    CHECK_INT(q->ops->remove(q, old.receipt, err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK_INT(q->ops->release(q, old.receipt, 0, "late", err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK_INT(q->ops->remove(q, "", err, sizeof(err)), SN_ERR_CONFLICT);
    check_counts(q, 0, 1, 0);

    /* The current receipt still works, once. */
    CHECK_INT(q->ops->extend(q, cur.receipt, 60, err, sizeof(err)), 0);
    CHECK_INT(q->ops->remove(q, cur.receipt, err, sizeof(err)), 0);
    CHECK_INT(q->ops->remove(q, cur.receipt, err, sizeof(err)),
              SN_ERR_CONFLICT);
    CHECK_INT(q->ops->extend(q, cur.receipt, 60, err, sizeof(err)),
              SN_ERR_CONFLICT);
    check_counts(q, 0, 0, 0);

    sn_message_release(&old);
    sn_message_release(&cur);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_extend_keeps_message_hidden(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0}, none = {0};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    CHECK_INT(send_one(q, "long job", 0), 0);
    CHECK_INT(receive(q, 0, 0, &m), 0);
    CHECK_INT(q->ops->extend(q, m.receipt, 30, err, sizeof(err)), 0);
    CHECK_INT(receive(q, 30, 0, &none), SN_ERR_AGAIN);
    check_counts(q, 0, 1, 0);
    CHECK_INT(q->ops->extend(q, m.receipt, -1, err, sizeof(err)),
              SN_ERR_LIMIT);
    CHECK_INT(q->ops->extend(q, m.receipt, 43201, err, sizeof(err)),
              SN_ERR_LIMIT);

    sn_message_release(&m);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_release_delays_redelivery(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0}, again = {0}, none = {0};
    struct timespec start;

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    CHECK_INT(send_one(q, "flaky", 0), 0);
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK_INT(q->ops->release(q, m.receipt, 1, "encoder crashed", err,
                              sizeof(err)), 0);
    CHECK_INT(receive(q, 30, 0, &none), SN_ERR_AGAIN);
    check_counts(q, 0, 1, 0);

    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK_INT(receive(q, 30, 3000, &again), 0);
    CHECK(elapsed_ms(&start) >= 700);
    CHECK(elapsed_ms(&start) < 2500);
    CHECK_STR(again.body, "flaky");
    CHECK_INT(again.receive_count, 2);

    /* Released with no delay, it comes back at once. */
    CHECK_INT(q->ops->release(q, again.receipt, 0, NULL, err, sizeof(err)),
              0);
    sn_message_release(&again);
    CHECK_INT(receive(q, 30, 0, &again), 0);
    CHECK_INT(again.receive_count, 3);

    sn_message_release(&m);
    sn_message_release(&again);
    sn_queue_close(q);
    scratch_release(&s);
}

/* ---- dead letters ------------------------------------------------------- */

struct dead_log {
    int calls;
    char body[64];
    int receive_count;
    char last_error[256];
};

static void record_dead_letter(void *opaque, const char *body,
                               int receive_count, const char *last_error)
{
    struct dead_log *log = opaque;

    log->calls++;
    snprintf(log->body, sizeof(log->body), "%s", body);
    log->receive_count = receive_count;
    snprintf(log->last_error, sizeof(log->last_error), "%s", last_error);
}

static void queue_dead_letters_after_max_receives(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0};
    struct dead_log log = {0};
    const char *bodies[] = {"poison", "healthy"};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 2);
    if (q == NULL)
        return;
    q->dead_letter = record_dead_letter;
    q->dead_letter_opaque = &log;

    CHECK_INT(q->ops->send(q, bodies, 2, 0, err, sizeof(err)), 0);
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK_STR(m.body, "poison");
    CHECK_INT(q->ops->release(q, m.receipt, 0, "first failure", err,
                              sizeof(err)), 0);
    sn_message_release(&m);
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK_STR(m.body, "poison");
    CHECK_INT(m.receive_count, 2);
    CHECK_INT(q->ops->release(q, m.receipt, 0, "second failure", err,
                              sizeof(err)), 0);
    CHECK_INT(log.calls, 0);
    sn_message_release(&m);

    /* The third delivery of "poison" would exceed max_receives, so receive
     * moves it and goes on to the next message. */
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK_STR(m.body, "healthy");
    CHECK_INT(log.calls, 1);
    CHECK_STR(log.body, "poison");
    CHECK_INT(log.receive_count, 2);
    CHECK_STR(log.last_error, "second failure");
    check_counts(q, 0, 1, 1);

    sn_message_release(&m);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_dead_letter_error_defaults_empty(void)
{
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0};
    struct dead_log log = {0};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 1);
    if (q == NULL)
        return;
    q->dead_letter = record_dead_letter;
    q->dead_letter_opaque = &log;
    snprintf(log.last_error, sizeof(log.last_error), "unset");

    CHECK_INT(send_one(q, "abandoned", 0), 0);
    CHECK_INT(receive(q, 0, 0, &m), 0);
    sn_message_release(&m);
    CHECK_INT(receive(q, 0, 0, &m), SN_ERR_AGAIN);
    CHECK_INT(log.calls, 1);
    CHECK_STR(log.body, "abandoned");
    CHECK_INT(log.receive_count, 1);
    CHECK_STR(log.last_error, "");
    check_counts(q, 0, 0, 1);

    sn_queue_close(q);
    scratch_release(&s);
}

/* ---- send and wait ------------------------------------------------------ */

static void queue_send_batch_delivers_in_order(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m[3] = {{.body = NULL}}, none = {0};
    const char *bodies[] = {"one", "two", "three"};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    CHECK_INT(q->ops->send(q, bodies, 3, 0, err, sizeof(err)), 0);
    check_counts(q, 3, 0, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(receive(q, 30, 0, &m[i]), 0);
        CHECK_STR(m[i].body, bodies[i]);
        CHECK_INT(m[i].receive_count, 1);
    }
    CHECK(strcmp(m[0].id, m[1].id) != 0);
    CHECK(strcmp(m[1].id, m[2].id) != 0);
    CHECK(strcmp(m[0].id, m[2].id) != 0);
    CHECK_INT(receive(q, 30, 0, &none), SN_ERR_AGAIN);

    for (int i = 0; i < 3; i++)
        sn_message_release(&m[i]);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_send_rejects_bad_batches(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0};
    const char *eleven[11];
    char *big = malloc(SN_QUEUE_MAX_BODY + 2);
    const char *batch[2];

    CHECK_INT(scratch_init(&s), 0);
    CHECK(big != NULL);
    q = open_queue(s.path, 5);
    if (q == NULL || big == NULL)
        goto out;

    for (int i = 0; i < 11; i++)
        eleven[i] = "x";
    CHECK_INT(q->ops->send(q, eleven, 0, 0, err, sizeof(err)), SN_ERR_LIMIT);
    CHECK_INT(q->ops->send(q, eleven, 11, 0, err, sizeof(err)),
              SN_ERR_LIMIT);
    CHECK_INT(q->ops->send(q, eleven, 10, -1, err, sizeof(err)),
              SN_ERR_LIMIT);
    CHECK_INT(q->ops->send(q, eleven, 10, 901, err, sizeof(err)),
              SN_ERR_LIMIT);

    /* One body over the limit rejects the whole batch. */
    memset(big, 'b', SN_QUEUE_MAX_BODY + 1);
    big[SN_QUEUE_MAX_BODY + 1] = '\0';
    batch[0] = "fine";
    batch[1] = big;
    CHECK_INT(q->ops->send(q, batch, 2, 0, err, sizeof(err)), SN_ERR_LIMIT);
    CHECK(strstr(err, s.path) != NULL);
    check_counts(q, 0, 0, 0);

    /* A body of exactly the limit goes through whole. */
    big[SN_QUEUE_MAX_BODY] = '\0';
    CHECK_INT(send_one(q, big, 0), 0);
    CHECK_INT(receive(q, 30, 0, &m), 0);
    CHECK(m.body != NULL);
    if (m.body != NULL)
        CHECK(strcmp(m.body, big) == 0);
    CHECK_INT(receive(q, -1, 0, &m), SN_ERR_LIMIT);

out:
    sn_message_release(&m);
    free(big);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_send_with_delay_hides_message(void)
{
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0};

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    CHECK_INT(send_one(q, "later", 1), 0);
    CHECK_INT(receive(q, 30, 0, &m), SN_ERR_AGAIN);
    check_counts(q, 0, 1, 0);
    CHECK_INT(receive(q, 30, 3000, &m), 0);
    CHECK_STR(m.body, "later");

    sn_message_release(&m);
    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_receive_wait_times_out(void)
{
    char err[SN_ERR_SIZE];
    struct scratch s;
    struct sn_queue *q;
    struct sn_message m = {0};
    struct timespec start;
    int64_t waited;

    CHECK_INT(scratch_init(&s), 0);
    q = open_queue(s.path, 5);
    if (q == NULL)
        return;

    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK_INT(q->ops->receive(q, 30, 300, &m, err, sizeof(err)),
              SN_ERR_AGAIN);
    waited = elapsed_ms(&start);
    /* Both clocks round down to whole milliseconds. */
    CHECK(waited >= 298);
    CHECK(waited < 2000);
    CHECK(m.body == NULL);

    sn_queue_close(q);
    scratch_release(&s);
}

static void queue_open_rejects_bad_arguments(void)
{
    char err[SN_ERR_SIZE] = "";
    struct scratch s;
    struct sn_queue *q = NULL;
    char missing[PATH_MAX + 32];

    CHECK_INT(scratch_init(&s), 0);
    CHECK_INT(sn_queue_sqlite_open(s.path, 0, &q, err, sizeof(err)),
              SN_ERR_BACKEND);
    CHECK(q == NULL);
    CHECK(strstr(err, "max_receives") != NULL);

    snprintf(missing, sizeof(missing), "%s/no/such/folder/q.db", s.dir);
    CHECK_INT(sn_queue_sqlite_open(missing, 3, &q, err, sizeof(err)),
              SN_ERR_BACKEND);
    CHECK(q == NULL);
    CHECK(strstr(err, missing) != NULL);

    sn_queue_close(NULL);
    sn_message_release(NULL);
    scratch_release(&s);
}

/* ---- several processes -------------------------------------------------- */

struct shared_tally {
    int sending_done;
    int handled[N_MESSAGES];
};

/* Receives and removes messages until the parent has sent them all and
 * none is left. Returns the exit status of the child. */
static int drain_in_child(const char *path, struct shared_tally *tally)
{
    char err[SN_ERR_SIZE];
    struct sn_queue *q = NULL;
    int status = 0;

    if (sn_queue_sqlite_open(path, 3, &q, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    for (;;) {
        /* Read the flag before receiving: an empty queue after the last
         * send means that the work is over. */
        int done = __atomic_load_n(&tally->sending_done, __ATOMIC_SEQ_CST);
        struct sn_message m = {0};
        int rc = q->ops->receive(q, 30, 100, &m, err, sizeof(err));
        int index;

        if (rc == SN_ERR_AGAIN && done)
            break;
        if (rc == SN_ERR_AGAIN)
            continue;
        if (rc != 0 || sscanf(m.body, "message %d", &index) != 1 ||
            index < 0 || index >= N_MESSAGES || m.receive_count != 1) {
            fprintf(stderr, "child: receive: %d %s\n", rc, err);
            status = 3;
            sn_message_release(&m);
            break;
        }
        __atomic_fetch_add(&tally->handled[index], 1, __ATOMIC_SEQ_CST);
        rc = q->ops->remove(q, m.receipt, err, sizeof(err));
        sn_message_release(&m);
        if (rc != 0) {
            fprintf(stderr, "child: remove: %s\n", err);
            status = 4;
            break;
        }
    }
    sn_queue_close(q);
    return status;
}

/* Sends N_MESSAGES bodies "message <i>" in batches of SN_QUEUE_MAX_BATCH. */
static void send_all(const char *path)
{
    char err[SN_ERR_SIZE];
    char text[SN_QUEUE_MAX_BATCH][32];
    const char *bodies[SN_QUEUE_MAX_BATCH];
    struct sn_queue *q = open_queue(path, 3);

    if (q == NULL)
        return;
    for (int i = 0; i < N_MESSAGES; i += SN_QUEUE_MAX_BATCH) {
        for (int j = 0; j < SN_QUEUE_MAX_BATCH; j++) {
            snprintf(text[j], sizeof(text[j]), "message %d", i + j);
            bodies[j] = text[j];
        }
        CHECK_INT(q->ops->send(q, bodies, SN_QUEUE_MAX_BATCH, 0, err,
                               sizeof(err)), 0);
    }
    sn_queue_close(q);
}

static void queue_workers_handle_each_message_once(void)
{
    struct scratch s;
    struct shared_tally *tally;
    struct sn_queue *q;
    pid_t pids[N_WORKERS];
    int n_started = 0;

    CHECK_INT(scratch_init(&s), 0);
    tally = mmap(NULL, sizeof(*tally), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(tally != MAP_FAILED);
    if (tally == MAP_FAILED)
        return;
    memset(tally, 0, sizeof(*tally));

    /* Create the file, then close it: no handle may cross fork(). */
    q = open_queue(s.path, 3);
    sn_queue_close(q);

    for (int w = 0; w < N_WORKERS; w++) {
        pid_t pid = fork();

        if (pid == 0)
            _exit(drain_in_child(s.path, tally));
        CHECK(pid > 0);
        if (pid > 0)
            pids[n_started++] = pid;
    }
    send_all(s.path);
    __atomic_store_n(&tally->sending_done, 1, __ATOMIC_SEQ_CST);

    for (int w = 0; w < n_started; w++) {
        int status = -1;

        CHECK_INT(waitpid(pids[w], &status, 0), pids[w]);
        CHECK(WIFEXITED(status));
        CHECK_INT(WEXITSTATUS(status), 0);
    }
    for (int i = 0; i < N_MESSAGES; i++) {
        if (tally->handled[i] != 1)
            fprintf(stderr, "message %d handled %d times\n", i,
                    tally->handled[i]);
        CHECK_INT(tally->handled[i], 1);
    }

    q = open_queue(s.path, 3);
    if (q != NULL)
        check_counts(q, 0, 0, 0);
    sn_queue_close(q);
    munmap(tally, sizeof(*tally));
    scratch_release(&s);
}

/* Processes that open a new file at the same moment all succeed. */
static void queue_concurrent_first_opens_succeed(void)
{
    struct scratch s;
    struct sn_queue *q;
    pid_t pids[N_WORKERS];
    int n_started = 0;

    CHECK_INT(scratch_init(&s), 0);
    for (int w = 0; w < N_WORKERS; w++) {
        pid_t pid = fork();

        if (pid == 0) {
            char err[SN_ERR_SIZE];
            struct sn_queue *child = NULL;
            int rc = sn_queue_sqlite_open(s.path, 3, &child, err,
                                          sizeof(err));

            if (rc == 0)
                rc = send_one(child, "hello", 0);
            if (rc != 0)
                fprintf(stderr, "child: %s\n", err);
            sn_queue_close(child);
            _exit(rc == 0 ? 0 : 1);
        }
        CHECK(pid > 0);
        if (pid > 0)
            pids[n_started++] = pid;
    }
    for (int w = 0; w < n_started; w++) {
        int status = -1;

        CHECK_INT(waitpid(pids[w], &status, 0), pids[w]);
        CHECK(WIFEXITED(status));
        CHECK_INT(WEXITSTATUS(status), 0);
    }

    q = open_queue(s.path, 3);
    if (q != NULL)
        check_counts(q, N_WORKERS, 0, 0);
    sn_queue_close(q);
    scratch_release(&s);
}

SN_TEST_MAIN(TEST_CASE(queue_redelivers_after_visibility_timeout),
             TEST_CASE(queue_stale_receipt_conflicts),
             TEST_CASE(queue_extend_keeps_message_hidden),
             TEST_CASE(queue_release_delays_redelivery),
             TEST_CASE(queue_dead_letters_after_max_receives),
             TEST_CASE(queue_dead_letter_error_defaults_empty),
             TEST_CASE(queue_send_batch_delivers_in_order),
             TEST_CASE(queue_send_rejects_bad_batches),
             TEST_CASE(queue_send_with_delay_hides_message),
             TEST_CASE(queue_receive_wait_times_out),
             TEST_CASE(queue_open_rejects_bad_arguments),
             TEST_CASE(queue_workers_handle_each_message_once),
             TEST_CASE(queue_concurrent_first_opens_succeed))
