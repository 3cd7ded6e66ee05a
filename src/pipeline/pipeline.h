/*
 * The durable pipeline, written once against the store, queue and state
 * interfaces: the orchestrator turns an upload into a plan and jobs, the
 * worker runs one job and publishes what it made. Neither knows which
 * backend it runs on.
 *
 * Keys:
 *   uploads  stream/NAME                      the source
 *            jobs/ID/GEN/plan.json            probe facts, ladder, chunks
 *            jobs/ID/GEN/NNNNN.json           one finished job's segments
 *   hls      ID/GEN/master.m3u8, ID/GEN/720p/..., ID/GEN/poster.jpg
 *
 * ID is derived from the upload key (sn_video_id()), GEN is the upload
 * generation from state, so a stale job of an older upload writes only
 * under its own generation and can never touch the newer one's output.
 */
#ifndef SN_PIPELINE_PIPELINE_H
#define SN_PIPELINE_PIPELINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "media/input.h"
#include "media/job.h"
#include "media/probe.h"
#include "plan/chunks.h"
#include "plan/ladder.h"
#include "queue/queue.h"
#include "state/state.h"
#include "store/store.h"

/* Uploads the orchestrator picks up live under this prefix. */
#define SN_UPLOAD_PREFIX "stream/"

/* Maximum upload name length (the part after "stream/"), in bytes. */
#define SN_UPLOAD_MAX_NAME 255

/* Video ids are this many lowercase hex digits. */
#define SN_VIDEO_ID_LEN 16

struct sn_backends {
    struct sn_store *uploads;
    struct sn_store *hls;
    struct sn_queue *jobs;
    struct sn_state *state;
};

/* Pipeline settings that shape the output; every orchestrator and worker
 * of a deployment must use the same values. */
struct sn_pipeline_config {
    struct sn_limits limits;
    struct sn_ladder_config ladder;
    struct sn_chunk_config chunks;
    struct sn_encode_settings encode;
    int split_rungs;
    int visibility_s;         /* queue visibility timeout, default 60 */
    int heartbeat_s;          /* extend it this often while a job runs, 20 */
    int retry_delay_s;        /* a failed job comes back after this, 2 */
};

void sn_pipeline_config_init(struct sn_pipeline_config *c);

/*
 * Returns 1 when name may be an upload name: 1 to SN_UPLOAD_MAX_NAME bytes
 * of valid UTF-8 with no '/', backslash, control character or invisible
 * formatting character (zero-width, bidirectional override), not starting
 * with '.', and not made of spaces alone. Spaces and non-ASCII letters
 * are fine.
 */
int sn_upload_name_valid(const char *name);

/* Writes the id of the video uploaded under key (SN_VIDEO_ID_LEN hex
 * digits of its SHA-256) into id, which has room for SN_VIDEO_ID_LEN + 1 bytes.
 * Returns 0, or -ENOMEM. */
int sn_video_id(const char *key, char *id);

/* Writes "ID/GEN", the hls prefix of one generation, into out. */
void sn_video_prefix(const char *id, int64_t generation, char *out,
                     size_t out_size);

/* A media source that reads one object of a store. */
struct sn_store_source {
    struct sn_source source;  /* what the media code opens */
    struct sn_store *store;
    char key[SN_STORE_MAX_KEY + 1];
};

/* Makes s read key from store; the store must outlive s. */
void sn_store_source_init(struct sn_store_source *s, struct sn_store *store,
                          const char *key);

/*
 * Orchestrates the upload under key: records it in state, probes it
 * through the uploads store, plans the ladder and chunks, writes the plan
 * and enqueues one message per job. Safe to repeat for the same upload.
 * A source that is not usable media ends as a failed video with the
 * reason, and the call returns its SN_ERR_* code with the same line in
 * err; video_id (SN_VIDEO_ID_LEN + 1 bytes, may be NULL) gets the id.
 * Repeating it for an upload already planned sends nothing.
 */
int sn_orchestrate(const struct sn_backends *b,
                   const struct sn_pipeline_config *c, const char *key,
                   char *video_id, char *err, size_t err_size);

/* The outcome of one sn_orchestrate_upload() call. */
struct sn_orchestration_result {
    char video_id[SN_VIDEO_ID_LEN + 1];
    int64_t generation;       /* the upload's current one, 0 if unknown */
    enum sn_video_status status;      /* of the video after the call */
    int planned;              /* 1 when this call planned the upload */
    int n_jobs;               /* jobs in the plan, 0 before planning */
    int n_done;               /* jobs done before the call */
    int n_sent;               /* job messages this call sent */
    char error[512];          /* the reason, when status is failed */
};

/*
 * Orchestrates the upload under key as sn_orchestrate() does, and fills
 * *result, which is zeroed first and also filled on failure as far as
 * the call got. When the upload's current generation was planned before
 * and the video is still processing, resend makes the call send a message
 * for each job not done yet. Workers skip jobs already done, so
 * duplicates are harmless. A video that is ready or failed gets nothing.
 */
int sn_orchestrate_upload(const struct sn_backends *b,
                          const struct sn_pipeline_config *c,
                          const char *key, int resend,
                          struct sn_orchestration_result *result, char *err,
                          size_t err_size);

/*
 * Runs the job a message body names: encodes into a scratch folder, moves
 * the files into the hls store, records the result, marks the job done,
 * and rewrites the playlists. The call that completes the set writes the
 * final playlists and marks the video ready. A message of a stale
 * generation, or of a video that failed, is done at once with nothing
 * written. Returns 0 when the message can be deleted.
 */
int sn_worker_handle(const struct sn_backends *b,
                     const struct sn_pipeline_config *c, const char *body,
                     const struct sn_job_hooks *hooks, char *err,
                     size_t err_size);

/*
 * Marks the video of a message body failed with reason; for the queue's
 * dead-letter hook and for a job's last delivery.
 */
int sn_worker_fail(const struct sn_backends *b, const char *body,
                   const char *reason, char *err, size_t err_size);

/*
 * Receives and handles messages until *stop becomes non-zero: extends the
 * visibility every heartbeat_s while a job runs, deletes the message on
 * success, gives it back with its error on failure, and marks the video
 * failed when the last allowed delivery fails. Returns 0 when stopped,
 * or the receive's code when waiting cannot help: -EACCES (the queue
 * rejected the credentials or denied access) or SN_ERR_NOT_FOUND (no such
 * queue). Other receive errors are logged and retried after 1 s.
 */
int sn_worker_loop(const struct sn_backends *b,
                   const struct sn_pipeline_config *c,
                   const volatile sig_atomic_t *stop);

#endif
