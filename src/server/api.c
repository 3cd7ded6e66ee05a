/*
 * The status API: GET /api/videos and GET /api/videos/ID, JSON built from
 * the state records (see docs/SERVER.md for the fields).
 */
#include "server/routes.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/pipeline.h"
#include "server/http.h"
#include "util/error.h"
#include "util/log.h"

/* Maximum number of videos in GET /api/videos, newest upload first, so
 * the response stays within a few hundred KiB. */
#define LIST_MAX 1000

struct listing {
    const struct sn_server *server;
    json_t *videos;
};

static void lock_state(const struct sn_server *s)
{
    if (s->config.state_lock != NULL)
        pthread_mutex_lock(s->config.state_lock);
}

static void unlock_state(const struct sn_server *s)
{
    if (s->config.state_lock != NULL)
        pthread_mutex_unlock(s->config.state_lock);
}

static int video_id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n != SN_VIDEO_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    }
    return 1;
}

static json_t *time_json(int64_t unix_ms)
{
    char text[32];

    if (unix_ms <= 0)
        return json_null();
    sn_http_format_iso8601(unix_ms, text, sizeof(text));
    return json_string(text);
}

/* Share of the plan's jobs done, 0 to 1; 1 once ready. */
static double progress_of(const struct sn_video *v)
{
    if (v->status == SN_VIDEO_READY)
        return 1.0;
    if (v->n_jobs <= 0)
        return 0.0;
    return (double)v->n_done / (double)v->n_jobs;
}

/* Returns "/hls/ID/GEN/NAME" when the server has that file under its HLS
 * folder, else JSON null. */
static json_t *published_file(const struct sn_server *s, const char *prefix,
                              const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", prefix, name);
    if (s->hls_dir < 0 ||
        fstatat(s->hls_dir, path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode))
        return json_null();

    snprintf(path, sizeof(path), "/hls/%s/%s", prefix, name);
    return json_string(path);
}

/* Adds "summary" (the pipeline's JSON object, or null) and lifts its
 * "ladder" to the top level. */
static void add_summary(json_t *o, const char *text)
{
    json_t *summary = text ? json_loads(text, 0, NULL) : NULL;
    json_t *ladder = NULL;

    if (summary != NULL && !json_is_object(summary)) {
        json_decref(summary);
        summary = NULL;
    }
    if (summary != NULL)
        ladder = json_object_get(summary, "ladder");

    json_object_set(o, "ladder", ladder ? ladder : json_null());
    json_object_set_new(o, "summary", summary ? summary : json_null());
}

static json_t *video_json(const struct sn_server *s, const struct sn_video *v)
{
    json_t *o = json_object();
    const char *name = v->source;
    int published = v->status == SN_VIDEO_PROCESSING ||
                    v->status == SN_VIDEO_READY;
    char prefix[128];

    if (o == NULL)
        return NULL;
    if (strncmp(name, SN_UPLOAD_PREFIX, strlen(SN_UPLOAD_PREFIX)) == 0)
        name += strlen(SN_UPLOAD_PREFIX);
    sn_video_prefix(v->id, v->generation, prefix, sizeof(prefix));

    json_object_set_new(o, "id", json_string(v->id));
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "status",
                        json_string(sn_video_status_name(v->status)));
    json_object_set_new(o, "progress", json_real(progress_of(v)));
    json_object_set_new(o, "duration",
                        v->n_jobs > 0
                            ? json_real((double)v->duration_us / 1e6)
                            : json_null());
    json_object_set_new(o, "jobs", json_integer(v->n_jobs));
    json_object_set_new(o, "jobs_done", json_integer(v->n_done));
    json_object_set_new(o, "error",
                        v->status == SN_VIDEO_FAILED
                            ? json_string(v->error)
                            : json_null());
    /* The master playlist appears once every rendition has its first
     * segment; until then a player would get 404. */
    json_object_set_new(o, "playlist",
                        published ? published_file(s, prefix, "master.m3u8")
                                  : json_null());
    json_object_set_new(o, "poster",
                        published ? published_file(s, prefix, "poster.jpg")
                                  : json_null());
    json_object_set_new(o, "generation", json_integer(v->generation));
    json_object_set_new(o, "created", time_json(v->created_ms));
    json_object_set_new(o, "updated", time_json(v->updated_ms));
    add_summary(o, v->summary);
    return o;
}

static int add_listed_video(void *opaque, const struct sn_video *v)
{
    struct listing *l = opaque;

    if (json_array_size(l->videos) >= LIST_MAX)
        return 1;
    json_array_append_new(l->videos, video_json(l->server, v));
    return 0;
}

enum MHD_Result sn_server_list_videos(const struct sn_request *rq,
                                      const char *path, void **state)
{
    struct sn_state *st = rq->server->config.state;
    struct listing l = {rq->server, json_array()};
    char err[SN_ERR_SIZE] = "";
    int rc;

    (void)path;
    (void)state;
    if (st == NULL || l.videos == NULL) {
        json_decref(l.videos);
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "list videos: no state is configured");
    }

    lock_state(rq->server);
    rc = st->ops->list(st, add_listed_video, &l, err, sizeof(err));
    unlock_state(rq->server);
    if (rc < 0) {
        json_decref(l.videos);
        sn_log(SN_LOG_ERROR, NULL, NULL, "http: list videos: %s", err);
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "list videos: %s", err);
    }
    return sn_server_queue(
        rq, MHD_HTTP_OK,
        sn_server_json_response(json_pack("{s:o}", "videos", l.videos)));
}

enum MHD_Result sn_server_get_video(const struct sn_request *rq,
                                    const char *id, void **state)
{
    struct sn_state *st = rq->server->config.state;
    struct sn_video v = {0};
    char err[SN_ERR_SIZE] = "";
    char quoted[SN_HTTP_QUOTE_MAX + 4];
    enum MHD_Result result;
    int rc;

    (void)state;
    if (!video_id_valid(id))
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "video \"%s\" not found: an id is %d "
                              "lowercase hex digits",
                              sn_http_quote(id, quoted), SN_VIDEO_ID_LEN);
    if (st == NULL)
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "get video %s: no state is configured", id);

    lock_state(rq->server);
    rc = st->ops->get(st, id, &v, err, sizeof(err));
    unlock_state(rq->server);
    if (rc == SN_ERR_NOT_FOUND)
        return sn_server_fail(rq, MHD_HTTP_NOT_FOUND,
                              "video %s not found", id);
    if (rc < 0) {
        sn_log(SN_LOG_ERROR, id, NULL, "http: get video: %s", err);
        return sn_server_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "get video %s: %s", id, err);
    }

    result = sn_server_queue(rq, MHD_HTTP_OK,
                             sn_server_json_response(video_json(rq->server,
                                                                &v)));
    sn_video_release(&v);
    return result;
}
