/*
 * The job plan of one video: the probe facts, ladder, segment plan and
 * encoder settings every job of the video needs, and the list of jobs. The
 * orchestrator builds it once and stores it as JSON; each worker reads it
 * back, so all jobs of a video work from the same numbers. Also the JSON
 * form of a finished job's segments, from which playlists are built.
 */
#ifndef SN_PIPELINE_JOBPLAN_H
#define SN_PIPELINE_JOBPLAN_H

#include <jansson.h>

#include "media/job.h"
#include "media/probe.h"
#include "plan/chunks.h"
#include "plan/ladder.h"

enum sn_job_kind {
    SN_JOB_VIDEO,             /* one chunk for a group of rungs */
    SN_JOB_AUDIO,             /* the whole audio track */
    SN_JOB_POSTER,            /* poster.jpg */
};

/*
 * A video job encodes one chunk for a group of rungs: the top rung alone,
 * or all the others. Two groups halve what one worker keeps in memory
 * (each x264 encoder keeps its lookahead frames) and let two workers share
 * the first chunk, for the price of decoding every chunk twice.
 */
struct sn_job {
    enum sn_job_kind kind;
    int chunk;
    int first_rung;
    int n_rungs;
};

struct sn_job_plan {
    struct sn_probe probe;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n_rungs;
    struct sn_plan plan;
    struct sn_encode_settings encode;
    struct sn_job *jobs;
    int n_jobs;
};

/*
 * Builds the plan for a probed source: the ladder, the segment plan and
 * the jobs, the first chunk first so the start is playable soonest, audio
 * right after it. Takes the probe (the caller's copy is zeroed). Returns 0,
 * or SN_ERR_INPUT or -ENOMEM with one line naming source in err.
 */
int sn_job_plan_build(struct sn_probe *probe,
                      const struct sn_ladder_config *ladder,
                      const struct sn_chunk_config *chunks,
                      const struct sn_encode_settings *encode,
                      int split_rungs, const char *source,
                      struct sn_job_plan *out, char *err, size_t err_size);

void sn_job_plan_release(struct sn_job_plan *p);

/* Returns the plan as JSON text (malloc'd), or NULL without memory. */
char *sn_job_plan_to_json(const struct sn_job_plan *p);

/* Reads a plan back from sn_job_plan_to_json()'s text. Returns 0, or
 * SN_ERR_INPUT when the text is not such a plan. */
int sn_job_plan_from_json(const char *text, struct sn_job_plan *p,
                          char *err, size_t err_size);

/* A job's name for logs: "chunk 3 (720p)", "chunk 3 (240p-540p)",
 * "audio" or "poster". */
void sn_job_describe(const struct sn_job_plan *p, int job, char *out,
                     size_t out_size);

/* The rung the poster is made at: the largest up to 720 lines. */
const struct sn_rung *sn_poster_rung(const struct sn_job_plan *p);

/* Segments as JSON and back. from_json returns 0 or -EINVAL. */
json_t *sn_segments_to_json(const struct sn_segment_info *s, int n);
int sn_segment_from_json(json_t *j, struct sn_segment_info *s);

#endif
