/*
 * sinatra-lambda: the Lambda functions sinatra-orchestrator and
 * sinatra-worker, as a custom runtime. `sinatra-lambda orchestrator` or
 * `sinatra-lambda worker` picks the handler; without an argument the
 * function's handler setting (_HANDLER) does. The program checks its
 * configuration, opens the backends, then handles one event at a time
 * from the Runtime API until the environment ends it.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include "lambda/events.h"
#include "lambda/handlers.h"
#include "lambda/runtime.h"
#include "util/error.h"
#include "util/log.h"

typedef int (*handler_fn)(struct sn_lambda_app *app,
                          const struct sn_invocation *inv, char **response,
                          char *err, size_t err_size);

static const struct {
    const char *name;
    handler_fn fn;
} handlers[] = {
    {"orchestrator", sn_lambda_orchestrator},
    {"sinatra-orchestrator", sn_lambda_orchestrator},
    {"worker", sn_lambda_worker},
    {"sinatra-worker", sn_lambda_worker},
};

static handler_fn find_handler(const char *name)
{
    for (size_t i = 0; name && i < sizeof(handlers) / sizeof(handlers[0]);
         i++) {
        if (strcmp(handlers[i].name, name) == 0)
            return handlers[i].fn;
    }
    return NULL;
}

/*
 * FFmpeg and x264 write their own lines to stderr, which would break the
 * one JSON object per line that CloudWatch Logs Insights reads. Their
 * errors come back through the pipeline, which logs each failure once, so
 * only FFmpeg's fatal lines are kept, and they go through sn_log(). A line
 * may arrive in pieces; each thread keeps its own unfinished line.
 */
static void ffmpeg_log(void *avcl, int level, const char *fmt, va_list vl)
{
    static _Thread_local char line[1024];
    static _Thread_local int print_prefix = 1;
    size_t used = strlen(line);

    if (level > av_log_get_level())
        return;
    av_log_format_line2(avcl, level, fmt, vl, line + used,
                        (int)(sizeof(line) - used), &print_prefix);
    used = strlen(line);
    if (used == 0 || (line[used - 1] != '\n' && used < sizeof(line) - 1))
        return;
    while (used > 0 && (line[used - 1] == '\n' || line[used - 1] == '\r'))
        line[--used] = '\0';
    if (used > 0)
        sn_log(SN_LOG_ERROR, NULL, NULL, "FFmpeg: %s", line);
    line[0] = '\0';
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Reports a start-up failure to the Runtime API and to the log. */
static void init_failed(struct sn_runtime *rt, const char *type,
                        const char *message)
{
    char err[SN_ERR_SIZE], text[SN_ERR_SIZE + 64];

    /* A variable's value may have been cut inside a character. */
    snprintf(text, sizeof(text), "%s", message);
    sn_utf8_repair(text);
    sn_log(SN_LOG_ERROR, NULL, NULL, "start-up failed: %s", text);
    if (sn_runtime_error(rt, NULL, type, text, err, sizeof(err)) < 0)
        sn_log(SN_LOG_ERROR, NULL, NULL, "%s", err);
}

/*
 * Handles one invocation and sends its result: the response, or an
 * invocation error when the handler failed or the response is too large.
 * Returns 0 to go on, or SN_ERR_BACKEND when the Runtime API failed and
 * the process must exit.
 */
static int invoke(struct sn_runtime *rt, struct sn_lambda_app *app,
                  handler_fn handler, const struct sn_invocation *inv)
{
    char err[SN_ERR_SIZE] = "", api_err[SN_ERR_SIZE] = "";
    char *response = NULL;
    const char *type;
    int rc;

    rc = handler(app, inv, &response, err, sizeof(err));
    if (rc == 0) {
        rc = sn_runtime_respond(rt, inv->request_id, response,
                                strlen(response), api_err, sizeof(api_err));
        if (rc != SN_ERR_LIMIT)
            goto sent;
        snprintf(err, sizeof(err), "response of %zu bytes is larger than "
                 "the Runtime API accepts", strlen(response));
        type = SN_LAMBDA_ERROR_INTERNAL;
    } else {
        type = sn_lambda_error_type(rc);
    }

    /* The message goes into JSON, and a fixed-size buffer may have cut a
     * character of it. */
    sn_utf8_repair(err);
    sn_log(SN_LOG_ERROR, NULL, NULL, "invocation failed: %s", err);
    rc = sn_runtime_error(rt, inv->request_id, type, err, api_err,
                          sizeof(api_err));

sent:
    if (rc < 0)
        sn_log(SN_LOG_ERROR, NULL, NULL, "Runtime API: %s", api_err);
    free(response);
    return rc == SN_ERR_BACKEND ? rc : 0;
}

static int serve_events(struct sn_runtime *rt, struct sn_lambda_app *app,
                        handler_fn handler)
{
    char err[SN_ERR_SIZE], api_err[SN_ERR_SIZE];

    for (;;) {
        struct sn_invocation inv;
        int rc = sn_runtime_next(rt, &inv, err, sizeof(err));

        if (rc == SN_ERR_LIMIT) {
            sn_log_set_request(inv.request_id, inv.trace_id);
            sn_log(SN_LOG_ERROR, NULL, NULL, "%s", err);
            if (sn_runtime_error(rt, inv.request_id, SN_LAMBDA_ERROR_EVENT,
                                 err, api_err, sizeof(api_err)) ==
                SN_ERR_BACKEND)
                return SN_ERR_BACKEND;
            continue;
        }
        if (rc < 0) {
            sn_log(SN_LOG_ERROR, NULL, NULL, "Runtime API: %s; exiting",
                   err);
            return rc;
        }

        sn_log_set_request(inv.request_id, inv.trace_id);
        if (inv.trace_id[0] != '\0')
            setenv("_X_AMZN_TRACE_ID", inv.trace_id, 1);
        else
            unsetenv("_X_AMZN_TRACE_ID");
        rc = invoke(rt, app, handler, &inv);
        sn_log_set_request(NULL, NULL);
        sn_invocation_release(&inv);
        if (rc < 0)
            return rc;
    }
}

int main(int argc, char **argv)
{
    struct timespec started;
    struct sn_runtime *rt = NULL;
    struct sn_lambda_app app;
    const char *name = argc > 1 ? argv[1] : getenv("_HANDLER");
    handler_fn handler = find_handler(name);
    char err[SN_ERR_SIZE], message[SN_ERR_SIZE + 64];

    clock_gettime(CLOCK_MONOTONIC, &started);
    memset(&app, 0, sizeof(app));
    sn_log_set_json(1);
    av_log_set_level(AV_LOG_FATAL);
    av_log_set_callback(ffmpeg_log);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sn_log(SN_LOG_ERROR, NULL, NULL, "libcurl initialisation failed");
        return 1;
    }
    if (sn_runtime_new(getenv("AWS_LAMBDA_RUNTIME_API"), &rt, err,
                       sizeof(err)) < 0) {
        sn_log(SN_LOG_ERROR, NULL, NULL, "%s; sinatra-lambda runs as a "
               "Lambda function's bootstrap", err);
        return 1;
    }

    if (handler == NULL) {
        snprintf(message, sizeof(message), "handler \"%.100s\": expected "
                 "orchestrator or worker (argument 1, or _HANDLER)",
                 name ? name : "");
        init_failed(rt, "Sinatra.ConfigError", message);
        goto fail;
    }
    if (sn_lambda_config_from_env(&app.config, err, sizeof(err)) < 0) {
        init_failed(rt, "Sinatra.ConfigError", err);
        goto fail;
    }
    if (sn_lambda_app_open(&app, err, sizeof(err)) < 0) {
        init_failed(rt, "Sinatra.ConfigError", err);
        goto fail;
    }
    sn_log(SN_LOG_INFO, NULL, NULL, "%s ready in %.3f s: uploads s3://%s, "
           "output s3://%s, queue %s, table %s, CA bundle %s", name,
           seconds_since(&started), app.config.videos_bucket,
           app.config.hls_bucket, app.config.queue_url,
           app.config.state_table,
           app.config.ca_bundle[0] ? app.config.ca_bundle : "(libcurl's)");

    serve_events(rt, &app, handler);

fail:
    sn_lambda_app_close(&app);
    sn_runtime_free(rt);
    curl_global_cleanup();
    return 1;
}
