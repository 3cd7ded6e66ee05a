/*
 * Tests of the Lambda functions' configuration from the environment:
 * required variables, the `sinatra process` options under SINATRA_*
 * names, and the CA bundle. Every case starts from an environment with
 * all the variables below removed.
 */
#include "lambda/config.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const variables[] = {
    "AWS_REGION", "SINATRA_VIDEOS_BUCKET", "SINATRA_HLS_BUCKET",
    "SINATRA_JOB_QUEUE_URL", "SINATRA_STATE_TABLE", "SINATRA_RUNGS",
    "SINATRA_SEGMENT_FORMAT", "SINATRA_SEGMENT_DURATION",
    "SINATRA_KEYFRAME_INTERVAL", "SINATRA_CHUNK_SEGMENTS",
    "SINATRA_FIRST_CHUNK_SEGMENTS", "SINATRA_PRESET", "SINATRA_CRF",
    "SINATRA_MAX_RECEIVES", "SINATRA_CA_BUNDLE", "LAMBDA_TASK_ROOT"};

/* Sets the required variables to valid values and clears the rest. */
static void reset_env(void)
{
    for (size_t i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
        unsetenv(variables[i]);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("SINATRA_VIDEOS_BUCKET", "sinatra-videos", 1);
    setenv("SINATRA_HLS_BUCKET", "sinatra-hls", 1);
    setenv("SINATRA_JOB_QUEUE_URL",
           "https://sqs.us-east-1.amazonaws.com/123456789012/sinatra-jobs",
           1);
    setenv("SINATRA_STATE_TABLE", "sinatra-video-state", 1);
}

static int load(struct sn_lambda_config *c, char *err, size_t err_size)
{
    err[0] = '\0';
    return sn_lambda_config_from_env(c, err, err_size);
}

static void defaults_match_sinatra_process(void)
{
    struct sn_lambda_config c;
    struct sn_pipeline_config d;
    char err[512];

    reset_env();
    sn_pipeline_config_init(&d);
    CHECK_INT(load(&c, err, sizeof(err)), 0);
    CHECK_STR(c.videos_bucket, "sinatra-videos");
    CHECK_STR(c.hls_bucket, "sinatra-hls");
    CHECK_STR(c.state_table, "sinatra-video-state");
    CHECK_INT(c.max_receives, 5);
    CHECK_STR(c.ca_bundle, "");
    CHECK_INT(c.pipeline.chunks.segment_us, d.chunks.segment_us);
    CHECK_INT(c.pipeline.chunks.keyframe_us, d.chunks.keyframe_us);
    CHECK_INT(c.pipeline.chunks.first_segment_us, d.chunks.first_segment_us);
    CHECK_INT(c.pipeline.chunks.chunk_segments, d.chunks.chunk_segments);
    CHECK_INT(c.pipeline.encode.format, d.encode.format);
    CHECK_STR(c.pipeline.encode.preset, d.encode.preset);
    CHECK_INT(c.pipeline.ladder.crf, d.ladder.crf);
    CHECK_INT(c.pipeline.split_rungs, d.split_rungs);
}

static void missing_required_variable_is_named(void)
{
    static const char *const required[] = {
        "AWS_REGION", "SINATRA_VIDEOS_BUCKET", "SINATRA_HLS_BUCKET",
        "SINATRA_JOB_QUEUE_URL", "SINATRA_STATE_TABLE"};
    struct sn_lambda_config c;
    char err[512];

    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        reset_env();
        unsetenv(required[i]);
        CHECK_INT(load(&c, err, sizeof(err)), -EINVAL);
        CHECK(strncmp(err, required[i], strlen(required[i])) == 0);
        CHECK(strstr(err, "not set") != NULL);

        reset_env();
        setenv(required[i], "", 1);
        CHECK_INT(load(&c, err, sizeof(err)), -EINVAL);
        CHECK(strncmp(err, required[i], strlen(required[i])) == 0);
    }
}

static void ladder_and_segment_settings_apply(void)
{
    struct sn_lambda_config c;
    char err[512];

    reset_env();
    setenv("SINATRA_SEGMENT_FORMAT", "ts", 1);
    setenv("SINATRA_SEGMENT_DURATION", "4", 1);
    setenv("SINATRA_KEYFRAME_INTERVAL", "1", 1);
    setenv("SINATRA_CHUNK_SEGMENTS", "3", 1);
    setenv("SINATRA_FIRST_CHUNK_SEGMENTS", "2", 1);
    setenv("SINATRA_PRESET", "ultrafast", 1);
    setenv("SINATRA_CRF", "30", 1);
    setenv("SINATRA_RUNGS", "360,720", 1);
    setenv("SINATRA_MAX_RECEIVES", "3", 1);
    CHECK_INT(load(&c, err, sizeof(err)), 0);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);
    CHECK_INT(c.pipeline.encode.format, SN_SEGMENT_TS);
    CHECK_INT(c.pipeline.chunks.segment_us, 4000000);
    CHECK_INT(c.pipeline.chunks.keyframe_us, 1000000);
    CHECK_INT(c.pipeline.encode.keyframe_us, 1000000);
    CHECK_INT(c.pipeline.chunks.first_segment_us, 1000000);
    CHECK_INT(c.pipeline.chunks.chunk_segments, 3);
    CHECK_INT(c.pipeline.chunks.first_chunk_segments, 2);
    CHECK_STR(c.pipeline.encode.preset, "ultrafast");
    CHECK_INT(c.pipeline.ladder.crf, 30);
    CHECK_INT(c.max_receives, 3);
}

static void invalid_settings_name_variable_and_cause(void)
{
    static const struct {
        const char *name;
        const char *value;
        const char *cause;
    } cases[] = {
        {"SINATRA_SEGMENT_FORMAT", "mkv", "invalid value \"mkv\""},
        {"SINATRA_SEGMENT_DURATION", "0", "outside"},
        {"SINATRA_SEGMENT_DURATION", "six", "invalid number"},
        {"SINATRA_CHUNK_SEGMENTS", "1.5", "invalid number"},
        {"SINATRA_PRESET", "fastest", "invalid value"},
        {"SINATRA_CRF", "52", "outside 0..51"},
        {"SINATRA_RUNGS", "abc", ""},
        {"SINATRA_MAX_RECEIVES", "0", "1 to 1000"},
        {"SINATRA_MAX_RECEIVES", "5x", "1 to 1000"},
        /* A keyframe interval of 4 s does not divide 6 s segments. */
        {"SINATRA_KEYFRAME_INTERVAL", "4", "SINATRA_KEYFRAME_INTERVAL"},
    };
    struct sn_lambda_config c;
    char err[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reset_env();
        setenv(cases[i].name, cases[i].value, 1);
        CHECK_INT(load(&c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, cases[i].name) != NULL);
        CHECK(strstr(err, cases[i].cause) != NULL);
        if (strstr(err, cases[i].cause) == NULL)
            fprintf(stderr, "%s=%s: %s\n", cases[i].name, cases[i].value,
                    err);
    }
}

/* `sinatra process --rungs ''` is an error, so an empty variable is one
 * too, for every option variable. */
static void empty_option_variable_is_rejected(void)
{
    static const struct {
        const char *name;
        const char *cause;
    } cases[] = {
        {"SINATRA_RUNGS", "empty list of short sides"},
        {"SINATRA_CRF", "invalid number \"\""},
        {"SINATRA_SEGMENT_FORMAT", "invalid value \"\""},
        {"SINATRA_PRESET", "invalid value \"\""},
    };
    struct sn_lambda_config c;
    char err[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reset_env();
        setenv(cases[i].name, "", 1);
        CHECK_INT(load(&c, err, sizeof(err)), -EINVAL);
        CHECK(strncmp(err, cases[i].name, strlen(cases[i].name)) == 0);
        CHECK(strstr(err, cases[i].cause) != NULL);
        if (strstr(err, cases[i].cause) == NULL)
            fprintf(stderr, "%s='': %s\n", cases[i].name, err);
    }
}

static void invalid_preset_lists_presets(void)
{
    struct sn_lambda_config c;
    char err[512];

    reset_env();
    setenv("SINATRA_PRESET", "fastest", 1);
    CHECK_INT(load(&c, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "SINATRA_PRESET: invalid value \"fastest\" (expected an "
                   "x264 preset: ultrafast, superfast, veryfast, faster, "
                   "fast, medium, slow, slower, veryslow or placebo)");
}

static void ca_bundle_from_variable_or_task_root(void)
{
    char dir[] = "/tmp/sn-lambda-config-XXXXXX";
    char certs[128], path[160];
    struct sn_lambda_config c;
    char err[512];
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(certs, sizeof(certs), "%s/certs", dir);
    snprintf(path, sizeof(path), "%s/ca-certificates.crt", certs);

    /* No file under the task root: libcurl's own path. */
    reset_env();
    setenv("LAMBDA_TASK_ROOT", dir, 1);
    CHECK_INT(load(&c, err, sizeof(err)), 0);
    CHECK_STR(c.ca_bundle, "");

    CHECK_INT(mkdir(certs, 0700), 0);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    CHECK_INT(load(&c, err, sizeof(err)), 0);
    CHECK_STR(c.ca_bundle, path);

    setenv("SINATRA_CA_BUNDLE", "/nonexistent/ca.pem", 1);
    CHECK_INT(load(&c, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "SINATRA_CA_BUNDLE: /nonexistent/ca.pem") != NULL);
    CHECK(strstr(err, "No such file") != NULL);

    setenv("SINATRA_CA_BUNDLE", path, 1);
    unsetenv("LAMBDA_TASK_ROOT");
    CHECK_INT(load(&c, err, sizeof(err)), 0);
    CHECK_STR(c.ca_bundle, path);

    unlink(path);
    rmdir(certs);
    rmdir(dir);
}

SN_TEST_MAIN(
    TEST_CASE(defaults_match_sinatra_process),
    TEST_CASE(missing_required_variable_is_named),
    TEST_CASE(ladder_and_segment_settings_apply),
    TEST_CASE(invalid_settings_name_variable_and_cause),
    TEST_CASE(empty_option_variable_is_rejected),
    TEST_CASE(invalid_preset_lists_presets),
    TEST_CASE(ca_bundle_from_variable_or_task_root))
