/*
 * Video state: one record per video id, holding the status, the job count
 * of the current plan, the set of finished job numbers, the error of a
 * failed video and timestamps. Every update is conditional on the upload
 * generation, so a job from an older upload of the same name can never
 * change the record of the newer one; marking a job done adds to a set, so
 * a job that runs twice counts once.
 *
 * The local backend is SQLite (WAL), shared by any number of processes;
 * the AWS backend is DynamoDB.
 */
#ifndef SN_STATE_STATE_H
#define SN_STATE_STATE_H

#include <stddef.h>
#include <stdint.h>

/* Most jobs one plan may have (a 6 hour video at 6 s segments has ~7500
 * chunk jobs). */
#define SN_STATE_MAX_JOBS 100000

/* Maximum size of the summary JSON kept in a record, in bytes. */
#define SN_STATE_MAX_SUMMARY (32 * 1024)

enum sn_video_status {
    SN_VIDEO_QUEUED,          /* uploaded, not yet planned */
    SN_VIDEO_PROCESSING,      /* planned; jobs are running */
    SN_VIDEO_READY,           /* every job done, final playlists written */
    SN_VIDEO_FAILED,          /* error contains the reason */
};

/* "queued", "processing", "ready" or "failed". */
const char *sn_video_status_name(enum sn_video_status status);

/* Returns the status named name, or -1 for any other text. */
int sn_video_status_parse(const char *name);



struct sn_video {
    char id[64];
    char source[1100];        /* upload key, "stream/NAME" */
    char upload_tag[80];      /* sn_object_info.tag of the upload */
    int64_t generation;       /* 1 for the first upload, +1 per new upload */
    enum sn_video_status status;
    int n_jobs;               /* 0 until planned */
    int n_done;
    unsigned char *done;      /* n_jobs flags, malloc'd; NULL until planned */
    int64_t duration_us;      /* 0 until planned */
    char *summary;            /* JSON object text from set_plan(), or NULL */
    char error[512];          /* for SN_VIDEO_FAILED */
    int64_t created_ms;       /* Unix time of the first upload */
    int64_t updated_ms;       /* Unix time of the last change */
};

void sn_video_release(struct sn_video *v);

struct sn_state;

struct sn_state_ops {
    /*
     * Records an upload of source under id. A new tag starts a new
     * generation: status queued, plan, done set and error cleared. The
     * same tag as the current generation's (a repeated upload event)
     * changes nothing. Sets *generation to the current one.
     */
    int (*begin)(struct sn_state *st, const char *id, const char *source,
                 const char *tag, int64_t *generation, char *err,
                 size_t err_size);
    /*
     * Records the plan of a generation: n_jobs (1 to SN_STATE_MAX_JOBS),
     * the duration and a summary (JSON object text for the status API);
     * status becomes processing. Repeating it with the same values changes
     * nothing. SN_ERR_CONFLICT when generation is not the current one or
     * the video is already ready or failed.
     */
    int (*set_plan)(struct sn_state *st, const char *id, int64_t generation,
                    int n_jobs, int64_t duration_us, const char *summary,
                    char *err, size_t err_size);
    /*
     * Adds job (0 to n_jobs-1) to the done set and sets *n_done to the
     * size of the set afterwards. SN_ERR_CONFLICT for a stale generation,
     * a video not processing or ready, or a job out of range.
     */
    int (*mark_done)(struct sn_state *st, const char *id,
                     int64_t generation, int job, int *n_done, char *err,
                     size_t err_size);
    /*
     * Marks the generation ready once every job is done. *won is 1 for the
     * one caller that made the change and 0 for every other (already
     * ready). SN_ERR_CONFLICT when stale, failed or not every job is done.
     */
    int (*finish)(struct sn_state *st, const char *id, int64_t generation,
                  int *won, char *err, size_t err_size);
    /*
     * Marks the generation failed with a one-line reason, unless it is
     * already ready. SN_ERR_CONFLICT when stale or ready.
     */
    int (*fail)(struct sn_state *st, const char *id, int64_t generation,
                const char *reason, char *err, size_t err_size);
    /* Fills *v (release with sn_video_release()); SN_ERR_NOT_FOUND. */
    int (*get)(struct sn_state *st, const char *id, struct sn_video *v,
               char *err, size_t err_size);
    /* Calls each() for every video, newest upload first, without the done
     * flags; a non-zero return stops the listing and is returned. */
    int (*list)(struct sn_state *st,
                int (*each)(void *opaque, const struct sn_video *v),
                void *opaque, char *err, size_t err_size);
    void (*close)(struct sn_state *st);
};

struct sn_state {
    const struct sn_state_ops *ops;
    char name[256];           /* for messages: a database path or table */
};

/*
 * Opens (creating if needed) the SQLite state in the database file at
 * path, in WAL mode with a busy timeout; the file may be the queue's.
 * Returns 0 and *out, or SN_ERR_BACKEND with the cause in err.
 */
int sn_state_sqlite_open(const char *path, struct sn_state **out, char *err,
                         size_t err_size);

void sn_state_close(struct sn_state *st);

/*
 * Checks the arguments of set_plan() for backends: n_jobs from 1 to
 * SN_STATE_MAX_JOBS, a duration not negative, a summary of at most
 * SN_STATE_MAX_SUMMARY bytes. Returns 0, or SN_ERR_LIMIT with one line
 * naming st and id in err.
 */
int sn_state_check_plan(const struct sn_state *st, const char *id,
                        int n_jobs, int64_t duration_us, const char *summary,
                        char *err, size_t err_size);

#endif
