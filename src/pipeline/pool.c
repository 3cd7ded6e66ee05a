#include "pipeline/pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

#define TICK_MS 200
#define MAX_WORKERS 256

/* What a worker reports when a job ends; small enough for one atomic pipe
 * write (PIPE_BUF is at least 512 bytes by POSIX, 4096 on Linux). */
struct completion {
    int job;
    int rc;
    char err[SN_ERR_SIZE];
};

/* ---- threads ----------------------------------------------------------- */

struct thread_pool {
    const struct sn_pool_ops *ops;
    int n_jobs;
    int next_job;
    int stop;
    struct completion *finished;  /* queue of ended jobs */
    int n_finished;
    int n_taken;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static void *thread_main(void *arg)
{
    struct thread_pool *p = arg;
    struct completion c;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->stop || p->next_job >= p->n_jobs) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        c.job = p->next_job++;
        pthread_mutex_unlock(&p->lock);

        c.err[0] = '\0';
        c.rc = p->ops->run(p->ops->ctx, c.job, c.err, sizeof(c.err));

        pthread_mutex_lock(&p->lock);
        p->finished[p->n_finished++] = c;
        pthread_cond_signal(&p->changed);
        pthread_mutex_unlock(&p->lock);
    }
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static int run_threads(int workers, int n_jobs, const struct sn_pool_ops *ops,
                       const volatile sig_atomic_t *cancel, char *err,
                       size_t err_size)
{
    struct thread_pool p = {.ops = ops, .n_jobs = n_jobs};
    pthread_t threads[MAX_WORKERS];
    int started = 0, handled = 0, rc = 0;

    p.finished = calloc((size_t)n_jobs, sizeof(*p.finished));
    if (p.finished == NULL)
        return -ENOMEM;
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.changed, NULL);

    for (; started < workers; started++) {
        if (pthread_create(&threads[started], NULL, thread_main, &p) != 0)
            break;
    }
    if (started == 0) {
        snprintf(err, err_size, "cannot start worker threads");
        rc = SN_ERR_MEDIA;
    }

    pthread_mutex_lock(&p.lock);
    while (rc == 0 && handled < n_jobs) {
        struct timespec ts;

        if (cancel != NULL && *cancel) {
            snprintf(err, err_size, "interrupted");
            rc = SN_ERR_INTERRUPTED;
            break;
        }
        while (handled < p.n_finished && rc == 0) {
            struct completion c = p.finished[handled++];

            pthread_mutex_unlock(&p.lock);
            rc = ops->done(ops->ctx, c.job, c.rc, c.err, err, err_size);
            pthread_mutex_lock(&p.lock);
        }
        if (rc != 0 || handled == n_jobs)
            break;
        deadline_in(&ts, TICK_MS);
        pthread_cond_timedwait(&p.changed, &p.lock, &ts);
        pthread_mutex_unlock(&p.lock);
        if (ops->tick)
            ops->tick(ops->ctx);
        pthread_mutex_lock(&p.lock);
    }
    p.stop = 1;
    pthread_mutex_unlock(&p.lock);

    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.changed);
    free(p.finished);
    return rc;
}

/* ---- processes --------------------------------------------------------- */

static int read_full(int fd, void *buf, size_t size)
{
    size_t got = 0;

    while (got < size) {
        ssize_t n = read(fd, (char *)buf + got, size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Job numbers handed out to worker processes, in shared memory. */
struct shared_queue {
    int next;
    int n_jobs;
};

static void child_main(struct shared_queue *queue, int done_fd,
                       const struct sn_pool_ops *ops)
{
    struct completion c;
    ssize_t n;

    signal(SIGINT, SIG_IGN);   /* the parent decides when to stop */
    for (;;) {
        c.job = __atomic_fetch_add(&queue->next, 1, __ATOMIC_RELAXED);
        if (c.job >= queue->n_jobs)
            break;
        c.err[0] = '\0';
        c.rc = ops->run(ops->ctx, c.job, c.err, sizeof(c.err));
        do {
            n = write(done_fd, &c, sizeof(c));
        } while (n < 0 && errno == EINTR);
        if (c.rc < 0)
            break;
    }
    _exit(0);
}

/* Notices a worker process that died without reporting its job. */
static int check_children(pid_t *pids, int n, char *err, size_t err_size)
{
    for (int i = 0; i < n; i++) {
        int status;

        if (pids[i] <= 0 || waitpid(pids[i], &status, WNOHANG) != pids[i])
            continue;
        pids[i] = 0;
        if (WIFSIGNALED(status)) {
            snprintf(err, err_size, "worker process died of signal %d",
                     WTERMSIG(status));
            return SN_ERR_MEDIA;
        }
    }
    return 0;
}

static int run_processes(int workers, int n_jobs,
                         const struct sn_pool_ops *ops,
                         const volatile sig_atomic_t *cancel, char *err,
                         size_t err_size)
{
    pid_t pids[MAX_WORKERS] = {0};
    int done[2] = {-1, -1};
    struct shared_queue *queue;
    int handled = 0, rc = 0;

    queue = mmap(NULL, sizeof(*queue), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (queue == MAP_FAILED) {
        snprintf(err, err_size, "cannot share the job queue: %s",
                 strerror(errno));
        return SN_ERR_MEDIA;
    }
    queue->next = 0;
    queue->n_jobs = n_jobs;
    if (pipe(done) < 0) {
        snprintf(err, err_size, "cannot create a pipe: %s", strerror(errno));
        rc = SN_ERR_MEDIA;
        goto out;
    }

    for (int i = 0; i < workers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(done[0]);
            /* Workers die with the parent, so a killed run stops encoding. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(0);
            child_main(queue, done[1], ops);
        }
    }
    close(done[1]);
    done[1] = -1;

    while (rc == 0 && handled < n_jobs) {
        struct pollfd pfd = {.fd = done[0], .events = POLLIN};
        struct completion c;

        if (cancel != NULL && *cancel) {
            snprintf(err, err_size, "interrupted");
            rc = SN_ERR_INTERRUPTED;
            break;
        }
        if (poll(&pfd, 1, TICK_MS) > 0) {
            if (read_full(done[0], &c, sizeof(c)) < 0) {
                rc = check_children(pids, workers, err, err_size);
                if (rc == 0) {
                    snprintf(err, err_size, "worker processes ended early");
                    rc = SN_ERR_MEDIA;
                }
                break;
            }
            handled++;
            rc = ops->done(ops->ctx, c.job, c.rc, c.err, err, err_size);
        } else {
            rc = check_children(pids, workers, err, err_size);
        }
        if (ops->tick)
            ops->tick(ops->ctx);
    }

out:
    /* Stop handing out jobs, then stop the workers still running one. */
    __atomic_store_n(&queue->next, n_jobs, __ATOMIC_RELAXED);
    for (int i = 0; i < workers; i++) {
        if (pids[i] > 0 && rc != 0)
            kill(pids[i], SIGTERM);
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (done[i] >= 0)
            close(done[i]);
    }
    munmap(queue, sizeof(*queue));
    return rc;
}

int sn_pool_run(enum sn_worker_mode mode, int workers, int n_jobs,
                const struct sn_pool_ops *ops,
                const volatile sig_atomic_t *cancel, char *err,
                size_t err_size)
{
    if (workers < 1)
        workers = 1;
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    if (workers > n_jobs)
        workers = n_jobs;
    if (n_jobs == 0)
        return 0;

    if (mode == SN_WORKER_PROCESS)
        return run_processes(workers, n_jobs, ops, cancel, err, err_size);
    return run_threads(workers, n_jobs, ops, cancel, err, err_size);
}
