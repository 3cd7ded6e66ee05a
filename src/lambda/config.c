#include "lambda/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/settings.h"
#include "lambda/events.h"
#include "media/job.h"

/* Environment variables that carry a `sinatra process` option. */
static const struct {
    const char *env;
    const char *option;
} option_vars[] = {
    {"SINATRA_RUNGS", "rungs"},
    {"SINATRA_SEGMENT_FORMAT", "segment-format"},
    {"SINATRA_SEGMENT_DURATION", "segment-duration"},
    {"SINATRA_KEYFRAME_INTERVAL", "keyframe-interval"},
    {"SINATRA_CHUNK_SEGMENTS", "chunk-segments"},
    {"SINATRA_FIRST_CHUNK_SEGMENTS", "first-chunk-segments"},
    {"SINATRA_PRESET", "preset"},
    {"SINATRA_CRF", "crf"},
};

#define N_OPTION_VARS (sizeof(option_vars) / sizeof(option_vars[0]))

/* Returns the value of name, or NULL when it is unset or empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int require(const char *name, const char *what, const char **out,
                   char *err, size_t err_size)
{
    *out = env_value(name);
    if (*out == NULL) {
        snprintf(err, err_size, "%s: not set; the function's environment "
                 "must name %s", name, what);
        return -EINVAL;
    }
    return 0;
}

static int read_max_receives(struct sn_lambda_config *c, char *err,
                             size_t err_size)
{
    const char *text = env_value("SINATRA_MAX_RECEIVES");
    char *end;
    long v;

    c->max_receives = 5;
    if (text == NULL)
        return 0;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > 1000) {
        snprintf(err, err_size, "SINATRA_MAX_RECEIVES: expected a whole "
                 "number from 1 to 1000 (the queue's maxReceiveCount), got "
                 "\"%.40s\"", text);
        return -EINVAL;
    }
    c->max_receives = (int)v;
    return 0;
}

/*
 * Checks SINATRA_PRESET before the option table does, because the
 * table's message ends in "(expected NAME)" and a reader of a failed
 * init needs the list of presets.
 */
static int check_preset(const char *v, char *err, size_t err_size)
{
    char shown[40 + SN_EXCERPT_MARK_MAX];

    if (sn_x264_preset_valid(v))
        return 0;
    snprintf(err, err_size, "SINATRA_PRESET: invalid value \"%s\" "
             "(expected an x264 preset: ultrafast, superfast, veryfast, "
             "faster, fast, medium, slow, slower, veryslow or placebo)",
             sn_excerpt(v, 40, shown, sizeof(shown)));
    return -EINVAL;
}

/*
 * Applies the ladder and segment variables through the option table. A
 * variable that is set but empty goes through the same checks as an
 * empty option value of `sinatra process`, which rejects it.
 */
static int read_options(struct sn_lambda_config *c, char *err,
                        size_t err_size)
{
    struct sn_cli cli;
    char cause[256];

    sn_cli_init(&cli);
    for (size_t i = 0; i < N_OPTION_VARS; i++) {
        const char *v = getenv(option_vars[i].env);

        if (v == NULL)
            continue;
        if (strcmp(option_vars[i].env, "SINATRA_PRESET") == 0 &&
            check_preset(v, err, err_size) < 0)
            return -EINVAL;
        if (sn_cli_set(&cli, option_vars[i].option, v, cause,
                       sizeof(cause)) < 0) {
            snprintf(err, err_size, "%s: %s", option_vars[i].env, cause);
            return -EINVAL;
        }
    }
    if (sn_cli_check(&cli, cause, sizeof(cause)) < 0) {
        snprintf(err, err_size, "SINATRA_SEGMENT_DURATION, "
                 "SINATRA_KEYFRAME_INTERVAL, SINATRA_CHUNK_SEGMENTS: %s",
                 cause);
        return -EINVAL;
    }

    sn_pipeline_config_init(&c->pipeline);
    c->pipeline.limits = cli.process.limits;
    c->pipeline.ladder = cli.process.ladder;
    c->pipeline.chunks = cli.process.chunks;
    c->pipeline.encode = cli.process.encode;
    c->pipeline.split_rungs = cli.process.split_rungs;
    return 0;
}

static int read_ca_bundle(struct sn_lambda_config *c, char *err,
                          size_t err_size)
{
    const char *path = env_value("SINATRA_CA_BUNDLE");
    const char *root = env_value("LAMBDA_TASK_ROOT");
    int n;

    c->ca_bundle[0] = '\0';
    if (path != NULL) {
        if (strlen(path) >= sizeof(c->ca_bundle) || access(path, R_OK) != 0) {
            snprintf(err, err_size, "SINATRA_CA_BUNDLE: %.200s: %s", path,
                     strlen(path) >= sizeof(c->ca_bundle)
                         ? "path too long" : strerror(errno));
            return -EINVAL;
        }
        snprintf(c->ca_bundle, sizeof(c->ca_bundle), "%s", path);
        return 0;
    }
    if (root == NULL)
        return 0;
    n = snprintf(c->ca_bundle, sizeof(c->ca_bundle), "%s/%s", root,
                 SN_LAMBDA_CA_PATH);
    if (n < 0 || (size_t)n >= sizeof(c->ca_bundle) ||
        access(c->ca_bundle, R_OK) != 0)
        c->ca_bundle[0] = '\0';
    return 0;
}

int sn_lambda_config_from_env(struct sn_lambda_config *c, char *err,
                              size_t err_size)
{
    const char *region;

    memset(c, 0, sizeof(*c));
    if (require("AWS_REGION", "the AWS region", &region, err, err_size) < 0 ||
        require("SINATRA_VIDEOS_BUCKET", "the uploads bucket",
                &c->videos_bucket, err, err_size) < 0 ||
        require("SINATRA_HLS_BUCKET", "the HLS output bucket",
                &c->hls_bucket, err, err_size) < 0 ||
        require("SINATRA_JOB_QUEUE_URL", "the job queue URL", &c->queue_url,
                err, err_size) < 0 ||
        require("SINATRA_STATE_TABLE", "the DynamoDB state table",
                &c->state_table, err, err_size) < 0)
        return -EINVAL;

    if (read_max_receives(c, err, err_size) < 0 ||
        read_options(c, err, err_size) < 0 ||
        read_ca_bundle(c, err, err_size) < 0)
        return -EINVAL;
    return 0;
}
