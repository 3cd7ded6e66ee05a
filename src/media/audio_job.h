/*
 * The audio job: encodes the whole audio track once, as one continuous AAC
 * stream (AAC-LC, 48 kHz, 128 kbit/s, stereo or mono), so chunk joints never
 * carry encoder priming or clicks, and cuts it into segments on the video's
 * segment grid, each boundary moved to the nearest AAC frame.
 */
#ifndef SN_MEDIA_AUDIO_JOB_H
#define SN_MEDIA_AUDIO_JOB_H

#include "media/job.h"

struct sn_audio_result {
    char codecs[32];          /* "mp4a.40.2" from the encoder's config */
    int channels;
    int n_segments;
    struct sn_segment_info *segments;
};

struct sn_audio_job {
    const struct sn_source *source;  /* shared read-only with other jobs */
    const struct sn_probe *probe;
    const struct sn_chunk_config *grid;   /* segment_us defines the grid */
    const struct sn_encode_settings *settings;
    const char *out_dir;      /* segments go to out_dir/audio/ */
    struct sn_job_hooks hooks;
    /* Called, when not NULL, after each segment file is complete in
     * out_dir/audio/, with the result so far: the codec string, the
     * channels and every segment up to that one. The caller may move the
     * files written so far (init.mp4 and the segments) elsewhere. */
    int (*segment_written)(void *opaque,
                           const struct sn_audio_result *so_far, char *err,
                           size_t err_size);
    void *segment_opaque;
};

/*
 * Runs the job. Returns 0 and fills *result (release with
 * sn_audio_result_release()), or a negative SN_ERR_* code with one line in
 * err. Thread-safe like the video job.
 */
int sn_audio_job_run(const struct sn_audio_job *job,
                     struct sn_audio_result *result, char *err,
                     size_t err_size);

void sn_audio_result_release(struct sn_audio_result *result);

#endif
