/*
 * Configuration of the Lambda functions, read from the environment that
 * the deployment sets. The ladder and segment settings use the names and
 * checks of the `sinatra process` options: SINATRA_SEGMENT_DURATION is
 * --segment-duration, and so on.
 */
#ifndef SN_LAMBDA_CONFIG_H
#define SN_LAMBDA_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "pipeline/pipeline.h"

/* Path of the CA bundle shipped in a Lambda bundle, under LAMBDA_TASK_ROOT. */
#define SN_LAMBDA_CA_PATH "certs/ca-certificates.crt"

struct sn_lambda_config {
    /* These point into the environment. */
    const char *videos_bucket;
    const char *hls_bucket;
    const char *queue_url;
    const char *state_table;
    char ca_bundle[PATH_MAX];  /* "" for libcurl's built-in path */
    int max_receives;          /* the queue's redrive maxReceiveCount */
    struct sn_pipeline_config pipeline;
};

/*
 * Fills c from the environment: AWS_REGION, SINATRA_VIDEOS_BUCKET,
 * SINATRA_HLS_BUCKET, SINATRA_JOB_QUEUE_URL and SINATRA_STATE_TABLE must
 * be set and not empty; SINATRA_RUNGS, SINATRA_SEGMENT_FORMAT,
 * SINATRA_SEGMENT_DURATION, SINATRA_KEYFRAME_INTERVAL,
 * SINATRA_CHUNK_SEGMENTS, SINATRA_FIRST_CHUNK_SEGMENTS, SINATRA_PRESET,
 * SINATRA_CRF, SINATRA_MAX_RECEIVES (1 to 1000, default 5) and
 * SINATRA_CA_BUNDLE are optional. Without SINATRA_CA_BUNDLE the bundle's
 * $LAMBDA_TASK_ROOT/certs/ca-certificates.crt is used when it exists.
 *
 * Returns 0, or -EINVAL with one line in err that names the variable and
 * the cause. Reads the environment, so call it before any thread that
 * changes it starts.
 */
int sn_lambda_config_from_env(struct sn_lambda_config *c, char *err,
                              size_t err_size);

#endif
