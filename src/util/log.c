#include "util/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static enum sn_log_level min_level = SN_LOG_INFO;
static int json_lines;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sn_log_set_level(enum sn_log_level level)
{
    min_level = level;
}

void sn_log_set_json(int json)
{
    json_lines = json;
}

static void write_json(enum sn_log_level level, const char *video,
                       const char *job, const char *message)
{
    json_t *line = json_pack("{s:s, s:s}", "level", level_names[level],
                             "message", message);
    char *text;

    if (line == NULL)
        return;
    if (video != NULL)
        json_object_set_new(line, "video", json_string(video));
    if (job != NULL)
        json_object_set_new(line, "job", json_string(job));

    text = json_dumps(line, JSON_COMPACT);
    if (text != NULL)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(line);
}

void sn_log(enum sn_log_level level, const char *video, const char *job,
            const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    if (level < min_level)
        return;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&lock);
    if (json_lines) {
        write_json(level, video, job, message);
    } else if (video != NULL || job != NULL) {
        fprintf(stderr, "sinatra: %s: [%s %s] %s\n", level_names[level],
                video ? video : "-", job ? job : "-", message);
    } else {
        fprintf(stderr, "sinatra: %s: %s\n", level_names[level], message);
    }
    pthread_mutex_unlock(&lock);
}
