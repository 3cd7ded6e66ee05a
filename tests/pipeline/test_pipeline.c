/*
 * The durable pipeline over the local backends, driven message by message:
 * orchestrate an upload from the media corpus, hand the queued jobs to the
 * worker in chosen orders, and compare the HLS output bytes and state.
 * Needs SN_MEDIA_DIR; exits with 77 (skipped) without it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "pipeline/pipeline.h"
#include "test.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"

#define CLIP "packager-bear-640x360-trailing-moov.mp4"
#define KEY "stream/bear clip (1).mp4"
#define MAX_MESSAGES 64

struct env {
    char dir[PATH_MAX];
    struct sn_backends b;
    struct sn_pipeline_config c;
};

static void read_corpus(const char *name, uint8_t **data, size_t *size)
{
    const char *dir = getenv("SN_MEDIA_DIR");
    char path[PATH_MAX];

    if (dir == NULL || *dir == '\0') {
        fprintf(stderr, "SN_MEDIA_DIR is not set: skipped\n");
        exit(77);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (sn_read_file(path, 64 << 20, data, size) < 0) {
        fprintf(stderr, "%s: not readable: skipped\n", path);
        exit(77);
    }
}

static void env_open(struct env *e)
{
    char path[PATH_MAX], err[SN_ERR_SIZE] = "";

    av_log_set_level(AV_LOG_QUIET);
    sn_log_set_level(SN_LOG_WARN);
    snprintf(e->dir, sizeof(e->dir), "/tmp/sn-test-pipeline-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
    snprintf(path, sizeof(path), "%s/videos", e->dir);
    CHECK_INT(sn_store_fs_open(path, &e->b.uploads, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/hls", e->dir);
    CHECK_INT(sn_store_fs_open(path, &e->b.hls, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/sinatra.db", e->dir);
    CHECK_INT(sn_queue_sqlite_open(path, 3, &e->b.jobs, err, sizeof(err)), 0);
    CHECK_INT(sn_state_sqlite_open(path, &e->b.state, err, sizeof(err)), 0);
    sn_pipeline_config_init(&e->c);
    snprintf(e->c.encode.preset, sizeof(e->c.encode.preset), "ultrafast");
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);
}

static void env_close(struct env *e)
{
    sn_queue_close(e->b.jobs);
    sn_state_close(e->b.state);
    sn_store_close(e->b.uploads);
    sn_store_close(e->b.hls);
    sn_remove_tree(e->dir);
}

static void upload(struct env *e, const char *key, const char *corpus_name)
{
    char err[SN_ERR_SIZE] = "";
    uint8_t *data;
    size_t size;

    read_corpus(corpus_name, &data, &size);
    CHECK_INT(sn_store_put(e->b.uploads, key, data, size, err, sizeof(err)),
              0);
    free(data);
}

/* Takes every queued message; returns how many, bodies in order sent. */
static int drain(struct env *e, char **bodies)
{
    char err[SN_ERR_SIZE];
    int n = 0;

    for (;;) {
        struct sn_message m = {0};

        if (e->b.jobs->ops->receive(e->b.jobs, 600, 0, &m, err,
                                    sizeof(err)) < 0)
            break;
        CHECK(n < MAX_MESSAGES);
        if (n < MAX_MESSAGES)
            bodies[n++] = strdup(m.body);
        e->b.jobs->ops->remove(e->b.jobs, m.receipt, err, sizeof(err));
        sn_message_release(&m);
    }
    return n;
}

static void run(struct env *e, const char *body)
{
    char err[SN_ERR_SIZE] = "";
    int rc = sn_worker_handle(&e->b, &e->c, body, NULL, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "job %s: %s\n", body, err);
    CHECK_INT(rc, 0);
}

static void release_bodies(char **bodies, int n)
{
    for (int i = 0; i < n; i++)
        free(bodies[i]);
}

/* ---- snapshots of the hls folder --------------------------------------- */

struct file {
    char name[256];
    uint8_t *data;
    size_t size;
};

struct snapshot {
    struct file files[256];
    int n;
};

static void walk(struct snapshot *s, const char *root, const char *rel)
{
    char path[PATH_MAX], sub[PATH_MAX];
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    dir = opendir(path);
    if (dir == NULL)
        return;
    while ((d = readdir(dir)) != NULL) {
        struct stat st;

        if (d->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
                 d->d_name);
        snprintf(path, sizeof(path), "%s/%s", root, sub);
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk(s, root, sub);
        } else if (s->n < 256) {
            struct file *f = &s->files[s->n++];

            snprintf(f->name, sizeof(f->name), "%s", sub);
            CHECK_INT(sn_read_file(path, 64 << 20, &f->data, &f->size), 0);
        }
    }
    closedir(dir);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct file *)a)->name,
                  ((const struct file *)b)->name);
}

static void take_snapshot(struct env *e, const char *prefix,
                          struct snapshot *s)
{
    char root[PATH_MAX];

    memset(s, 0, sizeof(*s));
    snprintf(root, sizeof(root), "%s/hls/%s", e->dir, prefix);
    walk(s, root, "");
    qsort(s->files, (size_t)s->n, sizeof(s->files[0]), by_name);
}

static void release_snapshot(struct snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->files[i].data);
    s->n = 0;
}

static int same_snapshot(const struct snapshot *a, const struct snapshot *b)
{
    if (a->n != b->n) {
        fprintf(stderr, "%d files against %d\n", a->n, b->n);
        return 0;
    }
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->files[i].name, b->files[i].name) != 0 ||
            a->files[i].size != b->files[i].size ||
            memcmp(a->files[i].data, b->files[i].data, a->files[i].size)) {
            fprintf(stderr, "%s differs\n", a->files[i].name);
            return 0;
        }
    }
    return 1;
}

static const struct file *find_file(const struct snapshot *s,
                                    const char *name)
{
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->files[i].name, name) == 0)
            return &s->files[i];
    }
    return NULL;
}

static int has_text(const struct file *f, const char *text)
{
    size_t n = strlen(text);

    for (size_t i = 0; f != NULL && i + n <= f->size; i++) {
        if (memcmp(f->data + i, text, n) == 0)
            return 1;
    }
    return 0;
}

static void check_state(struct env *e, const char *id, int64_t generation,
                        enum sn_video_status status, int n_jobs)
{
    struct sn_video v = {0};
    char err[SN_ERR_SIZE];

    CHECK_INT(e->b.state->ops->get(e->b.state, id, &v, err, sizeof(err)), 0);
    CHECK_INT(v.generation, generation);
    CHECK_STR(sn_video_status_name(v.status), sn_video_status_name(status));
    CHECK_INT(v.n_jobs, n_jobs);
    if (status == SN_VIDEO_READY)
        CHECK_INT(v.n_done, n_jobs);
    sn_video_release(&v);
}

/* ---- cases ------------------------------------------------------------- */

/* Runs a whole upload in the order sent; returns the number of jobs. */
static int process_in_order(struct env *e, char *id, char **bodies)
{
    char err[SN_ERR_SIZE] = "";
    int n;

    upload(e, KEY, CLIP);
    CHECK_INT(sn_orchestrate(&e->b, &e->c, KEY, id, err, sizeof(err)), 0);
    n = drain(e, bodies);
    CHECK(n >= 3);
    for (int i = 0; i < n; i++)
        run(e, bodies[i]);
    return n;
}

static void jobs_in_order_give_vod(void)
{
    struct env e;
    struct snapshot s;
    char id[SN_VIDEO_ID_LEN + 1], prefix[96], *bodies[MAX_MESSAGES];
    int n;

    env_open(&e);
    n = process_in_order(&e, id, bodies);
    check_state(&e, id, 1, SN_VIDEO_READY, n);
    sn_video_prefix(id, 1, prefix, sizeof(prefix));
    take_snapshot(&e, prefix, &s);
    CHECK(has_text(find_file(&s, "master.m3u8"), "#EXT-X-STREAM-INF"));
    CHECK(has_text(find_file(&s, "360p/index.m3u8"), "#EXT-X-ENDLIST"));
    CHECK(has_text(find_file(&s, "360p/index.m3u8"),
                   "#EXT-X-PLAYLIST-TYPE:VOD"));
    CHECK(has_text(find_file(&s, "audio/index.m3u8"), "#EXT-X-ENDLIST"));
    CHECK(find_file(&s, "360p/init.mp4") != NULL);
    CHECK(find_file(&s, "360p/seg_00000.m4s") != NULL);
    CHECK(find_file(&s, "poster.jpg") != NULL);
    release_snapshot(&s);
    release_bodies(bodies, n);
    env_close(&e);
}

static void redelivery_changes_nothing(void)
{
    struct env e;
    struct snapshot before, after;
    struct sn_video v1 = {0}, v2 = {0};
    char id[SN_VIDEO_ID_LEN + 1], prefix[96], err[SN_ERR_SIZE];
    char *bodies[MAX_MESSAGES];
    int n;

    env_open(&e);
    n = process_in_order(&e, id, bodies);
    sn_video_prefix(id, 1, prefix, sizeof(prefix));
    take_snapshot(&e, prefix, &before);
    CHECK_INT(e.b.state->ops->get(e.b.state, id, &v1, err, sizeof(err)), 0);

    /* Every job again, backwards, then every other one a third time. */
    for (int i = n - 1; i >= 0; i--)
        run(&e, bodies[i]);
    for (int i = 0; i < n; i += 2)
        run(&e, bodies[i]);

    take_snapshot(&e, prefix, &after);
    CHECK(same_snapshot(&before, &after));
    CHECK_INT(e.b.state->ops->get(e.b.state, id, &v2, err, sizeof(err)), 0);
    CHECK_INT(v2.status, v1.status);
    CHECK_INT(v2.n_done, v1.n_done);
    CHECK_INT(v2.generation, v1.generation);
    CHECK_INT(v2.updated_ms, v1.updated_ms);
    sn_video_release(&v1);
    sn_video_release(&v2);
    release_snapshot(&before);
    release_snapshot(&after);
    release_bodies(bodies, n);
    env_close(&e);
}

static void reverse_order_gives_same_bytes(void)
{
    struct env a, b;
    struct snapshot sa, sb;
    char id[SN_VIDEO_ID_LEN + 1], prefix[96], err[SN_ERR_SIZE] = "";
    char *bodies_a[MAX_MESSAGES], *bodies_b[MAX_MESSAGES];
    int na, nb;

    env_open(&a);
    na = process_in_order(&a, id, bodies_a);

    env_open(&b);
    upload(&b, KEY, CLIP);
    CHECK_INT(sn_orchestrate(&b.b, &b.c, KEY, id, err, sizeof(err)), 0);
    nb = drain(&b, bodies_b);
    CHECK_INT(nb, na);
    for (int i = nb - 1; i >= 0; i--) {
        run(&b, bodies_b[i]);
        if (i > 0)
            check_state(&b, id, 1, SN_VIDEO_PROCESSING, nb);
    }
    check_state(&b, id, 1, SN_VIDEO_READY, nb);

    sn_video_prefix(id, 1, prefix, sizeof(prefix));
    take_snapshot(&a, prefix, &sa);
    take_snapshot(&b, prefix, &sb);
    CHECK(same_snapshot(&sa, &sb));
    release_snapshot(&sa);
    release_snapshot(&sb);
    release_bodies(bodies_a, na);
    release_bodies(bodies_b, nb);
    env_close(&a);
    env_close(&b);
}

static void event_playlists_before_master(
    void)
{
    struct env e;
    struct snapshot s;
    char id[SN_VIDEO_ID_LEN + 1], prefix[96], err[SN_ERR_SIZE] = "";
    char *bodies[MAX_MESSAGES];
    int n;

    env_open(&e);
    upload(&e, KEY, CLIP);
    CHECK_INT(sn_orchestrate(&e.b, &e.c, KEY, id, err, sizeof(err)), 0);
    n = drain(&e, bodies);
    check_state(&e, id, 1, SN_VIDEO_PROCESSING, n);
    sn_video_prefix(id, 1, prefix, sizeof(prefix));

    /* Job 0 is the first chunk of the top rung: no master yet. */
    run(&e, bodies[0]);
    take_snapshot(&e, prefix, &s);
    CHECK(find_file(&s, "master.m3u8") == NULL);
    CHECK(has_text(find_file(&s, "360p/index.m3u8"),
                   "#EXT-X-PLAYLIST-TYPE:EVENT"));
    CHECK(!has_text(find_file(&s, "360p/index.m3u8"), "#EXT-X-ENDLIST"));
    release_snapshot(&s);

    /* Then the other rungs of the first chunk and the audio, which saved
     * its segments as a partial result while it ran. */
    for (int i = 1; i < n && i < 3; i++)
        run(&e, bodies[i]);
    {
        char key[256];
        struct sn_object_info info;

        snprintf(key, sizeof(key), "jobs/%s/1/00002.partial.json", id);
        CHECK_INT(e.b.uploads->ops->head(e.b.uploads, key, &info, err,
                                         sizeof(err)), 0);
    }
    take_snapshot(&e, prefix, &s);
    CHECK(has_text(find_file(&s, "master.m3u8"), "#EXT-X-STREAM-INF"));
    CHECK(!has_text(find_file(&s, "360p/index.m3u8"), "#EXT-X-ENDLIST"));
    release_snapshot(&s);
    check_state(&e, id, 1, SN_VIDEO_PROCESSING, n);

    for (int i = 3; i < n; i++)
        run(&e, bodies[i]);
    check_state(&e, id, 1, SN_VIDEO_READY, n);
    release_bodies(bodies, n);
    env_close(&e);
}

static void stale_generation_is_dropped(void)
{
    struct env e;
    struct snapshot s1, s2;
    char id[SN_VIDEO_ID_LEN + 1], p1[96], p2[96], err[SN_ERR_SIZE] = "";
    char *old[MAX_MESSAGES], *fresh[MAX_MESSAGES];
    int n_old, n_fresh;

    env_open(&e);
    upload(&e, KEY, CLIP);
    CHECK_INT(sn_orchestrate(&e.b, &e.c, KEY, id, err, sizeof(err)), 0);
    n_old = drain(&e, old);
    run(&e, old[0]);

    /* A new upload under the same name starts generation 2. */
    upload(&e, KEY, "axm-sample_rotate_and_reflect.mp4");
    CHECK_INT(sn_orchestrate(&e.b, &e.c, KEY, id, err, sizeof(err)), 0);
    n_fresh = drain(&e, fresh);
    check_state(&e, id, 2, SN_VIDEO_PROCESSING, n_fresh);

    for (int i = 0; i < n_fresh; i++)
        run(&e, fresh[i]);
    sn_video_prefix(id, 2, p2, sizeof(p2));
    take_snapshot(&e, p2, &s1);
    /* Every old job now arrives late: each is dropped. */
    for (int i = 0; i < n_old; i++)
        run(&e, old[i]);
    take_snapshot(&e, p2, &s2);
    CHECK(same_snapshot(&s1, &s2));
    check_state(&e, id, 2, SN_VIDEO_READY, n_fresh);
    release_snapshot(&s2);

    /* And they wrote nothing more under their own generation either. */
    sn_video_prefix(id, 1, p1, sizeof(p1));
    take_snapshot(&e, p1, &s2);
    CHECK(find_file(&s2, "master.m3u8") == NULL);
    release_snapshot(&s1);
    release_snapshot(&s2);
    release_bodies(old, n_old);
    release_bodies(fresh, n_fresh);
    env_close(&e);
}

static void repeated_event_sends_nothing(void)
{
    struct env e;
    char id[SN_VIDEO_ID_LEN + 1], err[SN_ERR_SIZE] = "";
    char *bodies[MAX_MESSAGES], *again[MAX_MESSAGES];
    int n;

    env_open(&e);
    upload(&e, KEY, CLIP);
    CHECK_INT(sn_orchestrate(&e.b, &e.c, KEY, id, err, sizeof(err)), 0);
    n = drain(&e, bodies);
    CHECK_INT(sn_orchestrate(&e.b, &e.c, KEY, id, err, sizeof(err)), 0);
    CHECK_INT(drain(&e, again), 0);
    check_state(&e, id, 1, SN_VIDEO_PROCESSING, n);
    release_bodies(bodies, n);
    env_close(&e);
}

/*
 * An uploads store that, the first time the upload is opened (the probe),
 * lets another orchestration with other rungs plan the same upload first,
 * as a second `sinatra process s3://` started a moment earlier would.
 */
struct racing_store {
    struct sn_store store;
    struct sn_store *inner;
    struct env *env;
    struct sn_pipeline_config other;
    int raced;
};

static int racing_open(struct sn_store *s, const char *key,
                       struct sn_reader **out, char *err, size_t err_size)
{
    struct racing_store *r = (struct racing_store *)s;
    struct sn_backends b = r->env->b;
    char other_err[SN_ERR_SIZE] = "";

    if (!r->raced) {
        r->raced = 1;
        b.uploads = r->inner;
        CHECK_INT(sn_orchestrate(&b, &r->other, key, NULL, other_err,
                                 sizeof(other_err)), 0);
    }
    return r->inner->ops->open(r->inner, key, out, err, err_size);
}

static int racing_get(struct sn_store *s, const char *key, size_t max,
                      uint8_t **data, size_t *size, char *err,
                      size_t err_size)
{
    struct sn_store *in = ((struct racing_store *)s)->inner;

    return in->ops->get(in, key, max, data, size, err, err_size);
}

static int racing_put(struct sn_store *s, const char *key, const void *data,
                      size_t size, char *err, size_t err_size)
{
    struct sn_store *in = ((struct racing_store *)s)->inner;

    return in->ops->put(in, key, data, size, err, err_size);
}

static int racing_head(struct sn_store *s, const char *key,
                       struct sn_object_info *info, char *err,
                       size_t err_size)
{
    struct sn_store *in = ((struct racing_store *)s)->inner;

    return in->ops->head(in, key, info, err, err_size);
}

static const struct sn_store_ops racing_ops = {
    .open = racing_open,
    .get = racing_get,
    .put = racing_put,
    .head = racing_head,
};

/* The orchestration that finishes its probe second keeps the first plan,
 * so it writes no plan.json over it and sends no jobs. */
static void plan_made_during_probe_stands(void)
{
    struct env e;
    struct racing_store racing = {.store = {.ops = &racing_ops}};
    struct sn_backends b;
    char id[SN_VIDEO_ID_LEN + 1], key[128], err[SN_ERR_SIZE] = "";
    char *bodies[MAX_MESSAGES];
    uint8_t *plan = NULL;
    size_t size;
    int n;

    env_open(&e);
    upload(&e, KEY, CLIP);
    racing.inner = e.b.uploads;
    racing.env = &e;
    racing.other = e.c;
    racing.other.ladder.n_short_sides = 1;
    racing.other.ladder.short_sides[0] = 236;
    b = e.b;
    b.uploads = &racing.store;

    CHECK_INT(sn_orchestrate(&b, &e.c, KEY, id, err, sizeof(err)), 0);
    CHECK_INT(racing.raced, 1);
    n = drain(&e, bodies);
    snprintf(key, sizeof(key), "jobs/%s/1/plan.json", id);
    CHECK_INT(sn_store_get(e.b.uploads, key, 1 << 20, &plan, &size, err,
                           sizeof(err)), 0);
    /* Only the first plan's rung and jobs: one rung, no 360p. */
    CHECK(plan != NULL);
    if (plan != NULL) {
        CHECK(strstr((const char *)plan, "\"236p\"") != NULL);
        CHECK(strstr((const char *)plan, "\"360p\"") == NULL);
    }
    check_state(&e, id, 1, SN_VIDEO_PROCESSING, n);
    free(plan);
    release_bodies(bodies, n);
    env_close(&e);
}

static void non_media_upload_fails(void)
{
    struct env e;
    struct sn_video v = {0};
    char id[SN_VIDEO_ID_LEN + 1], err[SN_ERR_SIZE] = "";
    char *bodies[MAX_MESSAGES];
    static const char junk[] = "this is a text file, not a video\n";

    env_open(&e);
    CHECK_INT(sn_store_put(e.b.uploads, "stream/notes.mp4", junk,
                           sizeof(junk) - 1, err, sizeof(err)), 0);
    CHECK_INT(sn_orchestrate(&e.b, &e.c, "stream/notes.mp4", id, err,
                             sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "stream/notes.mp4") != NULL);
    CHECK_INT(drain(&e, bodies), 0);
    CHECK_INT(e.b.state->ops->get(e.b.state, id, &v, err, sizeof(err)), 0);
    CHECK_STR(sn_video_status_name(v.status), "failed");
    CHECK(strstr(v.error, "notes.mp4") != NULL);
    sn_video_release(&v);
    env_close(&e);
}

static void upload_names_are_checked(void)
{
    char id[SN_VIDEO_ID_LEN + 1];

    CHECK(sn_upload_name_valid("my clip (1).mov"));
    CHECK(sn_upload_name_valid("n\xc3\xa9" "e.mp4"));
    CHECK(sn_upload_name_valid("a+b.mp4"));
    CHECK(!sn_upload_name_valid(""));
    CHECK(!sn_upload_name_valid("../x.mp4"));
    CHECK(!sn_upload_name_valid("a/b.mp4"));
    CHECK(!sn_upload_name_valid("/etc/passwd"));
    CHECK(!sn_upload_name_valid(".hidden.mp4"));
    CHECK(!sn_upload_name_valid(".."));
    CHECK(!sn_upload_name_valid("a\nb.mp4"));
    CHECK(!sn_upload_name_valid("a\\b.mp4"));
    CHECK(!sn_upload_name_valid("a\x7f.mp4"));
    CHECK(!sn_upload_name_valid("a\xc2\x85.mp4"));   /* U+0085, NEL */
    CHECK(!sn_upload_name_valid("bad\xff.mp4"));
    CHECK(!sn_upload_name_valid("over\xc0\xaf.mp4")); /* overlong '/' */
    CHECK(!sn_upload_name_valid(" "));
    CHECK(!sn_upload_name_valid("   "));
    CHECK(!sn_upload_name_valid("evil\xe2\x80\xaegnp.mp4")); /* U+202E */
    CHECK(!sn_upload_name_valid("a\xe2\x80\x8b.mp4"));       /* U+200B */
    CHECK(!sn_upload_name_valid("\xef\xbb\xbf" "bom.mp4"));      /* U+FEFF */
    CHECK(sn_upload_name_valid(" leading space.mp4"));
    CHECK(sn_upload_name_valid("\xe6\x97\xa5\xe6\x9c\xac.mp4"));

    CHECK_INT(sn_video_id("stream/a b.mp4", id), 0);
    CHECK_INT((long long)strlen(id), SN_VIDEO_ID_LEN);
    {
        char other[SN_VIDEO_ID_LEN + 1];

        CHECK_INT(sn_video_id("stream/a+b.mp4", other), 0);
        CHECK(strcmp(id, other) != 0);
    }
}

SN_TEST_MAIN(
    TEST_CASE(upload_names_are_checked),
    TEST_CASE(jobs_in_order_give_vod),
    TEST_CASE(redelivery_changes_nothing),
    TEST_CASE(reverse_order_gives_same_bytes),
    TEST_CASE(event_playlists_before_master),
    TEST_CASE(stale_generation_is_dropped),
    TEST_CASE(repeated_event_sends_nothing),
    TEST_CASE(plan_made_during_probe_stands),
    TEST_CASE(non_media_upload_fails))
