#include "util/log.h"
#include "util/utf8.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static enum sn_log_level min_level = SN_LOG_INFO;
static int json_lines;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The invocation being handled, on Lambda; "" when none. Under lock. */
static char request_id[128];
static char trace_id[512];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sn_log_set_level(enum sn_log_level level)
{
    min_level = level;
}

void sn_log_set_json(int json)
{
    json_lines = json;
}

void sn_log_set_request(const char *request, const char *trace)
{
    pthread_mutex_lock(&lock);
    snprintf(request_id, sizeof(request_id), "%s", request ? request : "");
    snprintf(trace_id, sizeof(trace_id), "%s", trace ? trace : "");
    pthread_mutex_unlock(&lock);
}

/* Writes the current UTC time as "2026-12-05T00:40:12.345Z" into out. */
static void format_time(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void write_json(enum sn_log_level level, const char *time,
                       const char *video, const char *job,
                       const char *message)
{
    json_t *line = json_pack("{s:s, s:s, s:s}", "time", time, "level",
                             level_names[level], "message", message);
    char *text;

    if (line == NULL)
        return;
    if (video != NULL)
        json_object_set_new(line, "video", json_string(video));
    if (job != NULL)
        json_object_set_new(line, "job", json_string(job));
    if (request_id[0] != '\0')
        json_object_set_new(line, "request_id", json_string(request_id));
    if (trace_id[0] != '\0')
        json_object_set_new(line, "trace_id", json_string(trace_id));

    text = json_dumps(line, JSON_COMPACT);
    if (text != NULL)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(line);
}

/* Copies an id into out as valid UTF-8, or returns NULL for NULL. */
static const char *clean_id(const char *id, char *out, size_t out_size)
{
    if (id == NULL)
        return NULL;
    snprintf(out, out_size, "%s", id);
    sn_utf8_repair(out);
    return out;
}

void sn_log(enum sn_log_level level, const char *video, const char *job,
            const char *fmt, ...)
{
    char message[1024], time[32], video_text[128], job_text[128];
    va_list ap;

    if (level < min_level)
        return;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* Text from outside (names, keys, service messages) or a cut at the
     * buffer's end can leave invalid UTF-8, which JSON cannot carry. */
    sn_utf8_repair(message);
    video = clean_id(video, video_text, sizeof(video_text));
    job = clean_id(job, job_text, sizeof(job_text));

    format_time(time, sizeof(time));
    pthread_mutex_lock(&lock);
    if (json_lines) {
        write_json(level, time, video, job, message);
    } else if (video != NULL || job != NULL) {
        fprintf(stderr, "%s sinatra: %s: [%s %s] %s\n", time,
                level_names[level], video ? video : "-", job ? job : "-",
                message);
    } else {
        fprintf(stderr, "%s sinatra: %s: %s\n", time, level_names[level],
                message);
    }
    pthread_mutex_unlock(&lock);
}
