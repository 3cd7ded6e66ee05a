/*
 * The video chunk job: decodes one chunk of the source from the keyframe at
 * or before its start, keeps exactly the frames whose presentation time
 * falls inside the chunk, scales once per rung, encodes every rung with an
 * IDR at each segment start and a keyframe every keyframe interval, and
 * writes the chunk's segments (and each rung's init segment) under their
 * final names in out_dir.
 */
#ifndef SN_MEDIA_VIDEO_JOB_H
#define SN_MEDIA_VIDEO_JOB_H

#include "media/job.h"

struct sn_video_job {
    const struct sn_source *source;  /* shared read-only with other jobs */
    const struct sn_probe *probe;
    const struct sn_plan *plan;
    int chunk;                /* index into plan->chunks */
    const struct sn_rung *rungs;
    int n_rungs;
    const struct sn_encode_settings *settings;
    const char *out_dir;      /* contains one folder per rung, named rung.name */
    struct sn_job_hooks hooks;
};

struct sn_rung_result {
    char codecs[32];          /* "avc1.64001f" from the encoder's SPS */
    int n_segments;
    struct sn_segment_info *segments;
};

struct sn_video_result {
    int n_rungs;
    struct sn_rung_result rungs[SN_LADDER_MAX];
};

/*
 * Runs the job. Returns 0 and fills *result (release with
 * sn_video_result_release()), or a negative SN_ERR_* code with one line in
 * err naming the chunk and the cause. Segments already written by a failed
 * job stay in out_dir: their names and bytes are what a successful retry
 * writes, so they never hold anything wrong.
 * Thread-safe: jobs share nothing but the read-only inputs.
 */
int sn_video_job_run(const struct sn_video_job *job,
                     struct sn_video_result *result, char *err,
                     size_t err_size);

void sn_video_result_release(struct sn_video_result *result);

#endif
