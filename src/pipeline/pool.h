/*
 * A pool of workers running numbered jobs: threads of this process, or
 * forked worker processes. Jobs run in the order of their numbers; each
 * job's outcome reaches the caller's thread through done(), and tick() runs
 * there at least every 200 ms for progress display.
 */
#ifndef SN_PIPELINE_POOL_H
#define SN_PIPELINE_POOL_H

#include <signal.h>
#include <stddef.h>

#include "pipeline/process.h"

struct sn_pool_ops {
    /* Runs job n on a worker. Whatever it produces must reach done()
     * through storage both sides can see (files), because in process mode
     * it runs in another process. */
    int (*run)(void *ctx, int job, char *err, size_t err_size);
    /* Called on the caller's thread once job n has ended with rc and the
     * job's message job_err. Returning a negative code, with one line in
     * err, stops the pool. */
    int (*done)(void *ctx, int job, int rc, const char *job_err, char *err,
                size_t err_size);
    void (*tick)(void *ctx);
    void *ctx;
};

/*
 * Runs jobs 0..n_jobs-1 on `workers` workers. Stops early at the first
 * failure (the jobs already running finish first) or when *cancel becomes
 * non-zero. Returns 0, the first failing job's code (its message in err),
 * or SN_ERR_INTERRUPTED.
 */
int sn_pool_run(enum sn_worker_mode mode, int workers, int n_jobs,
                const struct sn_pool_ops *ops,
                const volatile sig_atomic_t *cancel, char *err,
                size_t err_size);

#endif
