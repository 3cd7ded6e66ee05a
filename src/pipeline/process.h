/*
 * `sinatra process`: the whole pipeline on one machine. Probes the input,
 * chooses the ladder, plans chunks, runs the chunk, audio and poster jobs
 * on a pool of workers, keeps playable EVENT playlists up to date in a
 * working folder while it runs, and renames the finished folder into
 * place.
 */
#ifndef SN_PIPELINE_PROCESS_H
#define SN_PIPELINE_PROCESS_H

#include <signal.h>

#include "media/job.h"
#include "media/probe.h"
#include "plan/chunks.h"
#include "plan/ladder.h"

enum sn_worker_mode {
    SN_WORKER_THREAD,
    SN_WORKER_PROCESS,
};

/* Callbacks for progress display; each may be NULL. Called on the caller's
 * thread. */
struct sn_process_events {
    void (*probed)(void *opaque, const struct sn_probe *probe,
                   const struct sn_rung *rungs, int n_rungs);
    void (*planned)(void *opaque, const struct sn_plan *plan, int n_jobs);
    void (*progress)(void *opaque, int64_t frames_done, int64_t frames_total,
                     double elapsed_s);
    void (*first_segments)(void *opaque, const char *master_path,
                           double elapsed_s);
    void *opaque;
};

struct sn_process_options {
    const char *input;
    const char *output;
    struct sn_limits limits;
    struct sn_ladder_config ladder;
    struct sn_chunk_config chunks;
    struct sn_encode_settings encode;
    int workers;
    enum sn_worker_mode worker_mode;
    int overwrite;
    int split_rungs;          /* encode the top rung in its own jobs */
    struct sn_process_events events;
    const volatile sig_atomic_t *cancel;
};

/* Fills the defaults: veryfast, one worker per core, threads, fMP4. */
void sn_process_options_init(struct sn_process_options *o);

/*
 * Runs the pipeline. Returns 0 once output is complete and in place, or a
 * negative SN_ERR_* code with one line in err; the working folder is then
 * removed and nothing is left at the output path.
 */
int sn_process_run(const struct sn_process_options *o, char *err,
                   size_t err_size);

#endif
