#include "store/store.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/input.h"
#include "media/probe.h"
#include "util/error.h"
#include "util/fsutil.h"

/* A store in a fresh folder: base/store, with base/outside next to it. */
struct fixture {
    char base[PATH_MAX];
    char root[PATH_MAX];
    char outside[PATH_MAX];
    struct sn_store *s;
    char err[SN_ERR_SIZE];
};

static int fixture_open(struct fixture *f)
{
    const char *tmp = getenv("TMPDIR");

    memset(f, 0, sizeof(*f));
    snprintf(f->base, sizeof(f->base), "%s/sn-store-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(f->base) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", f->base, strerror(errno));
        return -1;
    }
    snprintf(f->root, sizeof(f->root), "%s/store", f->base);
    snprintf(f->outside, sizeof(f->outside), "%s/outside", f->base);
    if (mkdir(f->outside, 0755) < 0)
        return -1;
    if (sn_store_fs_open(f->root, &f->s, f->err, sizeof(f->err)) < 0) {
        fprintf(stderr, "sn_store_fs_open: %s\n", f->err);
        return -1;
    }
    return 0;
}

static void fixture_close(struct fixture *f)
{
    sn_store_close(f->s);
    sn_remove_tree(f->base);
}

/* Writes a file at dir/name, for setting up what the store finds. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    CHECK_INT(sn_write_file_atomic(path, text, strlen(text)), 0);
}

static int put_text(struct fixture *f, const char *key, const char *text)
{
    return sn_store_put(f->s, key, text, strlen(text), f->err,
                        sizeof(f->err));
}

/* Returns the object's text, or NULL; the caller frees it. */
static char *get_text(struct fixture *f, const char *key)
{
    uint8_t *data = NULL;
    size_t size;

    if (sn_store_get(f->s, key, 1 << 20, &data, &size, f->err,
                     sizeof(f->err)) < 0)
        return NULL;
    return (char *)data;
}

/* ---- key validation ----------------------------------------------------- */

static void key_valid_rejects_traversal_and_empty_parts(void)
{
    CHECK(!sn_store_key_valid("../x"));
    CHECK(!sn_store_key_valid("a/../b"));
    CHECK(!sn_store_key_valid("a/.."));
    CHECK(!sn_store_key_valid("./a"));
    CHECK(!sn_store_key_valid("a/./b"));
    CHECK(!sn_store_key_valid("."));
    CHECK(!sn_store_key_valid(".."));
    CHECK(!sn_store_key_valid("/abs"));
    CHECK(!sn_store_key_valid("a//b"));
    CHECK(!sn_store_key_valid("a/"));
    CHECK(!sn_store_key_valid(""));
    CHECK(!sn_store_key_valid(NULL));
    CHECK(!sn_store_key_valid("a\\b"));
    CHECK(!sn_store_key_valid("..\\x"));
}

static void key_valid_rejects_controls_and_bad_utf8(void)
{
    CHECK(!sn_store_key_valid("a\nb"));
    CHECK(!sn_store_key_valid("a\tb"));
    CHECK(!sn_store_key_valid("\x1b[31m"));
    CHECK(!sn_store_key_valid("a\x7f"));
    CHECK(!sn_store_key_valid("next\xc2\x85line"));     /* U+0085 NEL */
    CHECK(!sn_store_key_valid("a\xff"));
    CHECK(!sn_store_key_valid("caf\xc3"));              /* cut short */
    CHECK(!sn_store_key_valid("\xc0\xaf"));             /* overlong '/' */
    CHECK(!sn_store_key_valid("\xe0\x80\xaf"));         /* overlong '/' */
    CHECK(!sn_store_key_valid("\xed\xa0\x80"));         /* surrogate */
    CHECK(!sn_store_key_valid("\xf4\x90\x80\x80"));     /* past U+10FFFF */
    CHECK(!sn_store_key_valid("\x80"));                 /* lone continuation */
}

static void key_valid_accepts_spaces_dots_and_letters(void)
{
    CHECK(sn_store_key_valid("stream/clip.mp4"));
    CHECK(sn_store_key_valid("my holiday video.mov"));
    CHECK(sn_store_key_valid("vid\xc3\xa9os/\xc3\xa9t\xc3\xa9.mp4"));
    CHECK(sn_store_key_valid("\xe6\x97\xa5\xe6\x9c\xac/\xe5\x8b\x95\xe7"
                             "\x94\xbb.mp4"));
    CHECK(sn_store_key_valid("emoji \xf0\x9f\x8e\xac.mp4"));
    CHECK(sn_store_key_valid(".hidden"));
    CHECK(sn_store_key_valid("a/..b"));
    CHECK(sn_store_key_valid("a/b.."));
    CHECK(sn_store_key_valid("..."));
    CHECK(sn_store_key_valid("3fa2b9c1d0e4/1/720p/seg_00001.m4s"));
}

static void key_valid_limits_length_to_1024_bytes(void)
{
    char key[SN_STORE_MAX_KEY + 2];

    memset(key, 'a', sizeof(key) - 1);
    key[SN_STORE_MAX_KEY] = '\0';
    CHECK(sn_store_key_valid(key));

    key[SN_STORE_MAX_KEY] = 'a';
    key[SN_STORE_MAX_KEY + 1] = '\0';
    CHECK(!sn_store_key_valid(key));
}

static void every_operation_rejects_invalid_keys(void)
{
    struct fixture f;
    struct sn_object_info info;
    struct sn_reader *r = NULL;
    uint8_t *data = NULL;
    size_t size;
    const char *keys[] = {"../x", "a/../b", "/abs", "a//b", "a\nb"};
    char path[PATH_MAX];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    write_file(f.base, "local", "bytes");
    snprintf(path, sizeof(path), "%s/local", f.base);

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct sn_store_ops *ops = f.s->ops;
        char *e = f.err;
        size_t n = sizeof(f.err);

        CHECK_INT(sn_store_put(f.s, keys[i], "x", 1, e, n), SN_ERR_INPUT);
        CHECK_INT(sn_store_get(f.s, keys[i], 10, &data, &size, e, n),
                  SN_ERR_INPUT);
        CHECK_INT(ops->put(f.s, keys[i], "x", 1, e, n), SN_ERR_INPUT);
        CHECK_INT(ops->get(f.s, keys[i], 10, &data, &size, e, n),
                  SN_ERR_INPUT);
        CHECK_INT(ops->open(f.s, keys[i], &r, e, n), SN_ERR_INPUT);
        CHECK_INT(ops->head(f.s, keys[i], &info, e, n), SN_ERR_INPUT);
        CHECK_INT(ops->remove(f.s, keys[i], e, n), SN_ERR_INPUT);
        CHECK_INT(ops->put_file(f.s, keys[i], path, e, n), SN_ERR_INPUT);
    }
    CHECK(data == NULL);
    CHECK(r == NULL);
    CHECK(sn_path_exists(path));
    snprintf(path, sizeof(path), "%s/x", f.base);
    CHECK(!sn_path_exists(path));
    fixture_close(&f);
}

static void invalid_key_message_escapes_the_key(void)
{
    struct fixture f;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "bad\nkey\x1b", "x"), SN_ERR_INPUT);
    CHECK(strstr(f.err, "\"bad\\nkey\\x1b\"") != NULL);
    CHECK(strchr(f.err, '\n') == NULL);
    CHECK(strstr(f.err, "control character") != NULL);

    CHECK_INT(put_text(&f, "caf\xc3/\xc3\xa9t\xc3\xa9", "x"), SN_ERR_INPUT);
    CHECK(strstr(f.err, "\"caf\\xc3/\xc3\xa9t\xc3\xa9\"") != NULL);
    CHECK(strstr(f.err, "UTF-8") != NULL);

    CHECK_INT(put_text(&f, "a/../b", "x"), SN_ERR_INPUT);
    CHECK(strstr(f.err, "\"a/../b\"") != NULL);
    fixture_close(&f);
}

static void invalid_key_message_shortens_long_keys(void)
{
    struct fixture f;
    char key[SN_STORE_MAX_KEY + 100];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    CHECK_INT(put_text(&f, key, "x"), SN_ERR_INPUT);
    CHECK(strstr(f.err, "...") != NULL);
    CHECK(strstr(f.err, "longer than 1024 bytes") != NULL);
    fixture_close(&f);
}

static void names_starting_with_tmp_are_reserved(void)
{
    struct fixture f;
    struct sn_reader *r = NULL;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, ".tmp/x", "x"), SN_ERR_INPUT);
    CHECK_INT(put_text(&f, "a/.tmp-1", "x"), SN_ERR_INPUT);
    CHECK(strstr(f.err, "reserved") != NULL);
    CHECK_INT(f.s->ops->open(f.s, ".tmp/x", &r, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK_INT(put_text(&f, "a/tmp/.tm", "x"), 0);
    fixture_close(&f);
}

/* ---- reading and writing ------------------------------------------------ */

static void put_and_get_round_trip(void)
{
    struct fixture f;
    uint8_t *data = NULL;
    size_t size = 99;
    char path[PATH_MAX];
    char *text;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "a/b/c.txt", "hello"), 0);
    text = get_text(&f, "a/b/c.txt");
    CHECK_STR(text, "hello");
    free(text);

    /* The object is a plain file under the key's folders. */
    snprintf(path, sizeof(path), "%s/a/b/c.txt", f.root);
    CHECK(sn_path_exists(path));

    CHECK_INT(put_text(&f, "a/b/c.txt", "replaced"), 0);
    text = get_text(&f, "a/b/c.txt");
    CHECK_STR(text, "replaced");
    free(text);

    CHECK_INT(sn_store_put(f.s, "empty", "", 0, f.err, sizeof(f.err)), 0);
    CHECK_INT(sn_store_get(f.s, "empty", 0, &data, &size, f.err,
                           sizeof(f.err)), 0);
    CHECK_INT(size, 0);
    CHECK(data != NULL);
    CHECK(data == NULL || data[0] == '\0');
    free(data);

    CHECK_INT(put_text(&f, "vid\xc3\xa9os/my clip.mp4", "x"), 0);
    text = get_text(&f, "vid\xc3\xa9os/my clip.mp4");
    CHECK_STR(text, "x");
    free(text);
    fixture_close(&f);
}

static void get_of_missing_key_is_not_found(void)
{
    struct fixture f;
    uint8_t *data = NULL;
    size_t size;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(sn_store_get(f.s, "nothing", 10, &data, &size, f.err,
                           sizeof(f.err)), SN_ERR_NOT_FOUND);
    CHECK(strstr(f.err, "nothing: not found") != NULL);

    /* A key below an object, which cannot be a folder. */
    CHECK_INT(put_text(&f, "file", "x"), 0);
    CHECK_INT(sn_store_get(f.s, "file/below", 10, &data, &size, f.err,
                           sizeof(f.err)), SN_ERR_NOT_FOUND);
    CHECK(data == NULL);
    fixture_close(&f);
}

static void get_enforces_the_size_limit(void)
{
    struct fixture f;
    uint8_t *data = NULL;
    size_t size = 0;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "ten", "0123456789"), 0);
    CHECK_INT(sn_store_get(f.s, "ten", 9, &data, &size, f.err,
                           sizeof(f.err)), SN_ERR_LIMIT);
    CHECK(data == NULL);
    CHECK(strstr(f.err, "limit of 9 bytes") != NULL);

    CHECK_INT(sn_store_get(f.s, "ten", 10, &data, &size, f.err,
                           sizeof(f.err)), 0);
    CHECK_INT(size, 10);
    CHECK(data != NULL);
    CHECK(data == NULL || memcmp(data, "0123456789", 11) == 0);
    free(data);
    fixture_close(&f);
}

static void store_accepts_1024_byte_key(void)
{
    struct fixture f;
    char key[SN_STORE_MAX_KEY + 1];
    char *text;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    /* Components of 99 bytes, because file systems limit names to 255. */
    memset(key, 'k', SN_STORE_MAX_KEY);
    for (int i = 99; i < SN_STORE_MAX_KEY; i += 100)
        key[i] = '/';
    key[SN_STORE_MAX_KEY] = '\0';
    CHECK(sn_store_key_valid(key));

    CHECK_INT(put_text(&f, key, "long"), 0);
    text = get_text(&f, key);
    CHECK_STR(text, "long");
    free(text);
    fixture_close(&f);
}

static void put_rejects_key_below_an_object(void)
{
    struct fixture f;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "a", "object"), 0);
    CHECK_INT(put_text(&f, "a/b", "x"), SN_ERR_INPUT);
    CHECK_INT(put_text(&f, "c/d", "x"), 0);
    CHECK_INT(put_text(&f, "c", "x"), SN_ERR_INPUT);
    CHECK(strstr(f.err, "folder") != NULL);
    fixture_close(&f);
}

/* Counts the entries of a folder other than "." and "..", or -1. */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

#define BIG_A (3 << 20)
#define BIG_B (2 << 20)

struct replace_race {
    struct fixture *f;
    int stop;
    int reads;
    int torn;                 /* reads that were neither whole object */
    int errors;
};

static int object_is_whole(const uint8_t *data, size_t size)
{
    uint8_t fill;

    if (size != BIG_A && size != BIG_B)
        return 0;
    fill = size == BIG_A ? 'A' : 'B';
    for (size_t i = 0; i < size; i++) {
        if (data[i] != fill)
            return 0;
    }
    return 1;
}

static void *read_while_replaced(void *opaque)
{
    struct replace_race *race = opaque;
    char err[SN_ERR_SIZE];

    while (!__atomic_load_n(&race->stop, __ATOMIC_ACQUIRE)) {
        uint8_t *data = NULL;
        size_t size = 0;
        int rc = sn_store_get(race->f->s, "big/object", BIG_A, &data, &size,
                              err, sizeof(err));

        if (rc < 0) {
            fprintf(stderr, "get: %s\n", err);
            race->errors++;
        } else if (!object_is_whole(data, size)) {
            race->torn++;
        }
        race->reads++;
        free(data);
    }
    return NULL;
}

static void put_replaces_objects_atomically(void)
{
    struct fixture f;
    struct replace_race race = {.f = &f};
    uint8_t *a = malloc(BIG_A), *b = malloc(BIG_B);
    char tmp[PATH_MAX];
    pthread_t reader;

    if (a == NULL || b == NULL || fixture_open(&f) < 0) {
        CHECK(0);
        free(a);
        free(b);
        return;
    }
    memset(a, 'A', BIG_A);
    memset(b, 'B', BIG_B);
    CHECK_INT(sn_store_put(f.s, "big/object", a, BIG_A, f.err,
                           sizeof(f.err)), 0);

    CHECK_INT(pthread_create(&reader, NULL, read_while_replaced, &race), 0);
    for (int i = 0; i < 60; i++) {
        int rc = sn_store_put(f.s, "big/object", i % 2 ? a : b,
                              i % 2 ? BIG_A : BIG_B, f.err, sizeof(f.err));

        CHECK_INT(rc, 0);
    }
    __atomic_store_n(&race.stop, 1, __ATOMIC_RELEASE);
    pthread_join(reader, NULL);

    CHECK(race.reads > 0);
    CHECK_INT(race.torn, 0);
    CHECK_INT(race.errors, 0);

    /* Every temporary file was renamed away. */
    snprintf(tmp, sizeof(tmp), "%s/.tmp", f.root);
    CHECK_INT(count_entries(tmp), 0);
    free(a);
    free(b);
    fixture_close(&f);
}

struct writer {
    struct fixture *f;
    int id;
    int failures;
};

static void *put_many(void *opaque)
{
    struct writer *w = opaque;
    char key[64], text[64], err[SN_ERR_SIZE];

    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "shared/w%d/k%d", w->id, i % 7);
        snprintf(text, sizeof(text), "%d-%d", w->id, i);
        if (sn_store_put(w->f->s, key, text, strlen(text), err,
                         sizeof(err)) < 0 ||
            w->f->s->ops->remove(w->f->s, key, err, sizeof(err)) < 0) {
            fprintf(stderr, "writer %d: %s\n", w->id, err);
            w->failures++;
        }
    }
    return NULL;
}

static void store_is_usable_from_many_threads(void)
{
    struct fixture f;
    struct writer w[4];
    pthread_t t[4];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    /* Removing a key removes its empty folders while other threads
     * create keys in them. */
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){&f, i % 2, 0};
        CHECK_INT(pthread_create(&t[i], NULL, put_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(w[i].failures, 0);
    }
    fixture_close(&f);
}

static void put_file_moves_file_into_place(void)
{
    struct fixture f;
    char scratch[PATH_MAX], path[PATH_MAX];
    char *text;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(f.s->ops->scratch(f.s, scratch, sizeof(scratch), f.err,
                                sizeof(f.err)), 0);
    write_file(scratch, "seg.m4s", "segment");
    snprintf(path, sizeof(path), "%s/seg.m4s", scratch);

    CHECK_INT(f.s->ops->put_file(f.s, "v/1/720p/seg_00001.m4s", path, f.err,
                                 sizeof(f.err)), 0);
    CHECK(!sn_path_exists(path));
    text = get_text(&f, "v/1/720p/seg_00001.m4s");
    CHECK_STR(text, "segment");
    free(text);

    /* A missing file, a folder and a link are not stored. */
    CHECK_INT(f.s->ops->put_file(f.s, "x", path, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK_INT(f.s->ops->put_file(f.s, "x", scratch, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    write_file(f.outside, "secret", "secret");
    snprintf(path, sizeof(path), "%s/link", scratch);
    CHECK_INT(symlink("../../../outside/secret", path), 0);
    CHECK_INT(f.s->ops->put_file(f.s, "x", path, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    sn_remove_tree(scratch);
    fixture_close(&f);
}

static void put_file_copies_across_file_systems(void)
{
    struct fixture f;
    struct stat shm, root;
    char path[PATH_MAX];
    char *text;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    if (stat("/dev/shm", &shm) < 0 || stat(f.root, &root) < 0 ||
        shm.st_dev == root.st_dev) {
        printf("skipped: /dev/shm is missing or on the store's file "
               "system\n");
        fixture_close(&f);
        return;
    }
    snprintf(path, sizeof(path), "/dev/shm/sn-store-test-%ld",
             (long)getpid());
    CHECK_INT(sn_write_file_atomic(path, "elsewhere", 9), 0);

    CHECK_INT(f.s->ops->put_file(f.s, "copied/file", path, f.err,
                                 sizeof(f.err)), 0);
    CHECK(!sn_path_exists(path));
    text = get_text(&f, "copied/file");
    CHECK_STR(text, "elsewhere");
    free(text);
    unlink(path);
    fixture_close(&f);
}

static void head_tag_changes_when_replaced(void)
{
    struct fixture f;
    struct sn_object_info first, second;
    const struct sn_store_ops *ops;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    ops = f.s->ops;
    CHECK_INT(put_text(&f, "h/obj", "12345"), 0);
    CHECK_INT(ops->head(f.s, "h/obj", &first, f.err, sizeof(f.err)), 0);
    CHECK_INT(first.size, 5);
    CHECK(first.tag[0] != '\0');

    CHECK_INT(ops->head(f.s, "h/obj", &second, f.err, sizeof(f.err)), 0);
    CHECK_STR(second.tag, first.tag);

    /* The same bytes again are still a new object. */
    CHECK_INT(put_text(&f, "h/obj", "12345"), 0);
    CHECK_INT(ops->head(f.s, "h/obj", &second, f.err, sizeof(f.err)), 0);
    CHECK_INT(second.size, 5);
    CHECK(strcmp(second.tag, first.tag) != 0);

    CHECK_INT(ops->head(f.s, "h/none", &second, f.err, sizeof(f.err)),
              SN_ERR_NOT_FOUND);
    CHECK_INT(ops->head(f.s, "h", &second, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    fixture_close(&f);
}

/* ---- listing and removing ----------------------------------------------- */

struct listed {
    int n;
    char keys[16][64];
    int64_t sizes[16];
    int stop_after;           /* return 7 from the callback after this many */
};

static int collect_key(void *opaque, const char *key, int64_t size)
{
    struct listed *l = opaque;

    if (l->n < 16) {
        snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_after > 0 && l->n >= l->stop_after ? 7 : 0;
}

/* Returns the size listed for key, or -1 when it was not listed. */
static int64_t listed_size(const struct listed *l, const char *key)
{
    for (int i = 0; i < l->n && i < 16; i++) {
        if (strcmp(l->keys[i], key) == 0)
            return l->sizes[i];
    }
    return -1;
}

static int list(struct fixture *f, const char *prefix, struct listed *l)
{
    int stop_after = l->stop_after;

    memset(l, 0, sizeof(*l));
    l->stop_after = stop_after;
    return f->s->ops->list(f->s, prefix, collect_key, l, f->err,
                           sizeof(f->err));
}

static void list_matches_prefixes_mid_name(void)
{
    struct fixture f;
    struct listed l = {0};
    char path[PATH_MAX], scratch[PATH_MAX];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "jobs/abc/x", "1"), 0);
    CHECK_INT(put_text(&f, "jobs/abd", "22"), 0);
    CHECK_INT(put_text(&f, "jobs/b", "333"), 0);
    CHECK_INT(put_text(&f, "other", "4444"), 0);

    /* What the store keeps for itself, and links, are never listed. */
    CHECK_INT(f.s->ops->scratch(f.s, scratch, sizeof(scratch), f.err,
                                sizeof(f.err)), 0);
    write_file(scratch, "partial", "x");
    snprintf(path, sizeof(path), "%s/jobs", f.root);
    write_file(path, ".tmp-left-over", "x");
    snprintf(path, sizeof(path), "%s/jobs/abz", f.root);
    CHECK_INT(symlink("abd", path), 0);

    CHECK_INT(list(&f, "jobs/ab", &l), 0);
    CHECK_INT(l.n, 2);
    CHECK_INT(listed_size(&l, "jobs/abc/x"), 1);
    CHECK_INT(listed_size(&l, "jobs/abd"), 2);

    CHECK_INT(list(&f, "", &l), 0);
    CHECK_INT(l.n, 4);
    CHECK_INT(listed_size(&l, "other"), 4);

    CHECK_INT(list(&f, "jobs/", &l), 0);
    CHECK_INT(l.n, 3);
    CHECK_INT(listed_size(&l, "jobs/b"), 3);

    CHECK_INT(list(&f, "jobs", &l), 0);
    CHECK_INT(l.n, 3);
    CHECK_INT(list(&f, "jobs/abc/x", &l), 0);
    CHECK_INT(l.n, 1);
    CHECK_INT(list(&f, "none/", &l), 0);
    CHECK_INT(l.n, 0);
    CHECK_INT(list(&f, "other/", &l), 0);
    CHECK_INT(l.n, 0);
    CHECK_INT(list(&f, "a//", &l), SN_ERR_INPUT);
    CHECK_INT(list(&f, ".tmp/", &l), SN_ERR_INPUT);
    fixture_close(&f);
}

static void list_stops_when_callback_returns_nonzero(void)
{
    struct fixture f;
    struct listed l = {.stop_after = 2};

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "s/1", "x"), 0);
    CHECK_INT(put_text(&f, "s/2", "x"), 0);
    CHECK_INT(put_text(&f, "s/3", "x"), 0);
    CHECK_INT(list(&f, "s/", &l), 7);
    CHECK_INT(l.n, 2);
    fixture_close(&f);
}

static void remove_deletes_empty_parent_folders(void)
{
    struct fixture f;
    char path[PATH_MAX];
    char *text;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(put_text(&f, "r/s/t", "x"), 0);
    CHECK_INT(put_text(&f, "r/u", "y"), 0);
    CHECK_INT(f.s->ops->remove(f.s, "r/s/t", f.err, sizeof(f.err)), 0);
    CHECK(get_text(&f, "r/s/t") == NULL);

    /* r/s was empty and is gone, but r still contains u. */
    snprintf(path, sizeof(path), "%s/r/s", f.root);
    CHECK(!sn_path_exists(path));
    text = get_text(&f, "r/u");
    CHECK_STR(text, "y");
    free(text);

    CHECK_INT(f.s->ops->remove(f.s, "r/u", f.err, sizeof(f.err)), 0);
    snprintf(path, sizeof(path), "%s/r", f.root);
    CHECK(!sn_path_exists(path));
    CHECK(sn_path_exists(f.root));

    /* A missing key, or one below a missing folder, is removed already. */
    CHECK_INT(f.s->ops->remove(f.s, "r/u", f.err, sizeof(f.err)), 0);
    CHECK_INT(f.s->ops->remove(f.s, "no/such/key", f.err, sizeof(f.err)), 0);

    CHECK_INT(put_text(&f, "d/e", "x"), 0);
    CHECK_INT(f.s->ops->remove(f.s, "d", f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    fixture_close(&f);
}

/* ---- readers, and what the store will not open -------------------------- */

static void reader_reads_at_offsets_and_end(void)
{
    struct fixture f;
    struct sn_reader *r = NULL;
    uint8_t data[1000], buf[64];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    for (int i = 0; i < 1000; i++)
        data[i] = (uint8_t)(i * 7);
    CHECK_INT(sn_store_put(f.s, "r/bytes", data, sizeof(data), f.err,
                           sizeof(f.err)), 0);
    CHECK_INT(f.s->ops->open(f.s, "r/bytes", &r, f.err, sizeof(f.err)), 0);
    if (r == NULL) {
        fixture_close(&f);
        return;
    }
    CHECK_INT(r->size, 1000);

    CHECK_INT(r->read(r, 0, buf, 10), 10);
    CHECK(memcmp(buf, data, 10) == 0);
    CHECK_INT(r->read(r, 500, buf, 64), 64);
    CHECK(memcmp(buf, data + 500, 64) == 0);
    CHECK_INT(r->read(r, 995, buf, 64), 5);
    CHECK(memcmp(buf, data + 995, 5) == 0);
    CHECK_INT(r->read(r, 1000, buf, 64), 0);
    CHECK_INT(r->read(r, 5000, buf, 64), 0);
    CHECK(r->read(r, -1, buf, 64) < 0);

    /* The reader keeps the object it opened while it is replaced. */
    CHECK_INT(put_text(&f, "r/bytes", "new"), 0);
    CHECK_INT(r->read(r, 995, buf, 64), 5);
    r->close(r);
    fixture_close(&f);
}

static void open_rejects_fifos_and_folders(void)
{
    struct fixture f;
    struct sn_reader *r = NULL;
    struct sn_object_info info;
    uint8_t *data = NULL;
    size_t size;
    char path[PATH_MAX];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/fifo", f.root);
    CHECK_INT(mkfifo(path, 0644), 0);

    /* Without O_NONBLOCK these would wait for a writer forever. */
    CHECK_INT(f.s->ops->open(f.s, "fifo", &r, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK(strstr(f.err, "not a regular file") != NULL);
    CHECK_INT(sn_store_get(f.s, "fifo", 10, &data, &size, f.err,
                           sizeof(f.err)), SN_ERR_INPUT);
    CHECK_INT(f.s->ops->head(f.s, "fifo", &info, f.err, sizeof(f.err)),
              SN_ERR_INPUT);

    CHECK_INT(put_text(&f, "dir/x", "x"), 0);
    CHECK_INT(f.s->ops->open(f.s, "dir", &r, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK(strstr(f.err, "folder") != NULL);
    CHECK(r == NULL);
    CHECK(data == NULL);
    fixture_close(&f);
}

static void links_out_of_root_are_not_followed(void)
{
    struct fixture f;
    struct sn_reader *r = NULL;
    struct sn_object_info info;
    uint8_t *data = NULL;
    size_t size;
    char path[PATH_MAX];
    const struct sn_store_ops *ops;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    ops = f.s->ops;
    write_file(f.outside, "secret", "secret");

    /* A link as the last component. */
    snprintf(path, sizeof(path), "%s/link", f.root);
    CHECK_INT(symlink("../outside/secret", path), 0);
    CHECK_INT(ops->open(f.s, "link", &r, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK(strstr(f.err, "symbolic link") != NULL);
    CHECK_INT(sn_store_get(f.s, "link", 100, &data, &size, f.err,
                           sizeof(f.err)), SN_ERR_INPUT);
    CHECK_INT(ops->head(f.s, "link", &info, f.err, sizeof(f.err)),
              SN_ERR_INPUT);

    /* A link as a folder, for reads and for writes. */
    snprintf(path, sizeof(path), "%s/dirlink", f.root);
    CHECK_INT(symlink(f.outside, path), 0);
    CHECK_INT(ops->open(f.s, "dirlink/secret", &r, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK_INT(sn_store_get(f.s, "dirlink/secret", 100, &data, &size, f.err,
                           sizeof(f.err)), SN_ERR_INPUT);
    CHECK_INT(put_text(&f, "dirlink/planted", "x"), SN_ERR_INPUT);
    snprintf(path, sizeof(path), "%s/planted", f.outside);
    CHECK(!sn_path_exists(path));
    CHECK_INT(ops->remove(f.s, "dirlink/secret", f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    snprintf(path, sizeof(path), "%s/secret", f.outside);
    CHECK(sn_path_exists(path));

    /* Removing the link itself is fine: it is inside root. */
    CHECK_INT(ops->remove(f.s, "link", f.err, sizeof(f.err)), 0);
    CHECK(sn_path_exists(path));
    CHECK(r == NULL);
    CHECK(data == NULL);
    fixture_close(&f);
}

static void scratch_folders_are_unique_inside_root(void)
{
    struct fixture f;
    char a[PATH_MAX], b[PATH_MAX], small[8];
    struct stat st;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(f.s->ops->scratch(f.s, a, sizeof(a), f.err, sizeof(f.err)), 0);
    CHECK_INT(f.s->ops->scratch(f.s, b, sizeof(b), f.err, sizeof(f.err)), 0);
    CHECK(strcmp(a, b) != 0);
    CHECK(strncmp(a, sn_store_fs_root(f.s), strlen(sn_store_fs_root(f.s))) ==
          0);
    CHECK_INT(stat(a, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_INT(f.s->ops->scratch(f.s, small, sizeof(small), f.err,
                                sizeof(f.err)), SN_ERR_BACKEND);
    fixture_close(&f);
}

static void root_is_made_absolute(void)
{
    struct fixture f;
    char cwd[PATH_MAX], err[SN_ERR_SIZE];
    struct sn_store *s = NULL;
    char *text;

    if (fixture_open(&f) < 0 || getcwd(cwd, sizeof(cwd)) == NULL) {
        CHECK(0);
        return;
    }
    CHECK_INT(chdir(f.base), 0);
    CHECK_INT(sn_store_fs_open("relative/store", &s, err, sizeof(err)), 0);
    CHECK_INT(chdir(cwd), 0);
    if (s == NULL) {
        fixture_close(&f);
        return;
    }
    CHECK(sn_store_fs_root(s)[0] == '/');
    CHECK(strstr(sn_store_fs_root(s), "/relative/store") != NULL);

    /* Still the same folder after the working folder changed. */
    CHECK_INT(sn_store_put(s, "k", "v", 1, err, sizeof(err)), 0);
    sn_store_close(s);
    CHECK_INT(chdir(f.base), 0);
    CHECK_INT(sn_store_fs_open("relative/store", &s, err, sizeof(err)), 0);
    CHECK_INT(chdir(cwd), 0);
    text = NULL;
    if (s != NULL) {
        uint8_t *data = NULL;
        size_t size;

        CHECK_INT(sn_store_get(s, "k", 10, &data, &size, err, sizeof(err)),
                  0);
        text = (char *)data;
    }
    CHECK_STR(text, "v");
    free(text);
    sn_store_close(s);
    sn_store_close(NULL);
    fixture_close(&f);
}

/* ---- media input over a store ------------------------------------------- */

struct store_source {
    struct sn_store *store;
    const char *key;
    int64_t fail_at;          /* reads at or past this offset fail, or -1 */
};

struct failing_reader {
    struct sn_reader reader;
    struct sn_reader *inner;
    int64_t fail_at;
};

static int64_t failing_read(struct sn_reader *r, int64_t offset, void *buf,
                            size_t n)
{
    struct failing_reader *f = (struct failing_reader *)r;

    if (f->fail_at >= 0 && offset + (int64_t)n > f->fail_at)
        return SN_ERR_AGAIN;
    return f->inner->read(f->inner, offset, buf, n);
}

static void failing_close(struct sn_reader *r)
{
    struct failing_reader *f = (struct failing_reader *)r;

    f->inner->close(f->inner);
    free(f);
}

static int open_store_source(void *opaque, struct sn_reader **out, char *err,
                             size_t err_size)
{
    const struct store_source *src = opaque;
    struct failing_reader *f;
    struct sn_reader *inner;
    int rc;

    rc = src->store->ops->open(src->store, src->key, &inner, err, err_size);
    if (rc < 0)
        return rc;
    f = malloc(sizeof(*f));
    if (f == NULL) {
        inner->close(inner);
        return -ENOMEM;
    }
    f->reader = (struct sn_reader){inner->size, failing_read, failing_close};
    f->inner = inner;
    f->fail_at = src->fail_at;
    *out = &f->reader;
    return 0;
}

/* Copies a file of the media corpus into the store; 0 when the corpus
 * is not there. */
static int put_corpus_file(struct fixture *f, const char *name,
                           const char *key)
{
    const char *dir = getenv("SN_MEDIA_DIR");
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t size;
    int rc;

    if (dir == NULL || dir[0] == '\0')
        return 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (sn_read_file(path, 64 << 20, &data, &size) < 0)
        return 0;
    rc = sn_store_put(f->s, key, data, size, f->err, sizeof(f->err));
    free(data);
    return rc == 0;
}

/* The moov atom comes last, so demuxing has to seek to the end. */
#define CORPUS_FILE "packager-bear-640x360-trailing-moov.mp4"

static void input_opens_store_object_like_file(void)
{
    struct fixture f;
    struct store_source opaque = {NULL, "stream/bear.mp4", -1};
    struct sn_source source = {"stream/bear.mp4", open_store_source,
                               &opaque};
    struct sn_probe from_store, from_file;
    struct sn_limits limits;
    char path[PATH_MAX];
    struct stat st;
    AVFormatContext *ctx = NULL;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    if (!put_corpus_file(&f, CORPUS_FILE, "stream/bear.mp4")) {
        printf("skipped: set SN_MEDIA_DIR to the media corpus\n");
        fixture_close(&f);
        return;
    }
    opaque.store = f.s;
    snprintf(path, sizeof(path), "%s/%s", getenv("SN_MEDIA_DIR"),
             CORPUS_FILE);

    CHECK_INT(sn_input_open_source(&source, &ctx, f.err, sizeof(f.err)), 0);
    if (ctx != NULL) {
        CHECK(ctx->nb_streams >= 1);
        CHECK_INT(stat(path, &st), 0);
        CHECK_INT(sn_input_size(ctx), st.st_size);
        CHECK_INT(sn_input_read_error(ctx, f.err, sizeof(f.err)), 0);
    }
    sn_input_close(&ctx);

    /* The probe finds the same facts through either source. */
    sn_limits_init(&limits);
    CHECK_INT(sn_probe_source(&source, &limits, &from_store, f.err,
                              sizeof(f.err)), 0);
    CHECK_INT(sn_probe_file(path, &limits, &from_file, f.err, sizeof(f.err)),
              0);
    CHECK_INT(from_store.n_frames, from_file.n_frames);
    CHECK(from_store.n_frames > 0);
    CHECK_INT(from_store.duration_us, from_file.duration_us);
    CHECK_INT(from_store.file_size, from_file.file_size);
    if (from_store.n_frames == from_file.n_frames)
        CHECK(memcmp(from_store.frame_us, from_file.frame_us,
                     from_store.n_frames * sizeof(int64_t)) == 0);
    sn_probe_release(&from_store);
    sn_probe_release(&from_file);
    fixture_close(&f);
}

static void input_reports_failed_read_code(void)
{
    struct fixture f;
    struct store_source opaque = {NULL, "stream/bear.mp4", 0};
    struct sn_source source = {"stream/bear.mp4", open_store_source,
                               &opaque};
    struct sn_probe probe;
    struct sn_limits limits;
    AVFormatContext *ctx = NULL;

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    if (!put_corpus_file(&f, CORPUS_FILE, "stream/bear.mp4")) {
        printf("skipped: set SN_MEDIA_DIR to the media corpus\n");
        fixture_close(&f);
        return;
    }
    opaque.store = f.s;

    /* Failing from the first byte, and near the end where the moov is. */
    CHECK_INT(sn_input_open_source(&source, &ctx, f.err, sizeof(f.err)),
              SN_ERR_AGAIN);
    CHECK(strstr(f.err, "stream/bear.mp4: read failed at byte 0") != NULL);
    CHECK(ctx == NULL);

    opaque.fail_at = 300000;
    sn_limits_init(&limits);
    CHECK_INT(sn_probe_source(&source, &limits, &probe, f.err,
                              sizeof(f.err)), SN_ERR_AGAIN);
    CHECK(strstr(f.err, "read failed") != NULL);
    fixture_close(&f);
}

static void file_source_rejects_fifos_and_non_media(void)
{
    struct fixture f;
    struct sn_source source;
    AVFormatContext *ctx = NULL;
    char path[PATH_MAX];

    if (fixture_open(&f) < 0) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/fifo", f.outside);
    CHECK_INT(mkfifo(path, 0644), 0);
    sn_source_file(&source, path);
    CHECK_INT(sn_input_open_source(&source, &ctx, f.err, sizeof(f.err)),
              SN_ERR_INPUT);
    CHECK(strstr(f.err, "not a regular file") != NULL);

    write_file(f.outside, "text.mp4", "not a video at all");
    snprintf(path, sizeof(path), "%s/text.mp4", f.outside);
    CHECK_INT(sn_input_open(path, &ctx, f.err, sizeof(f.err)), SN_ERR_INPUT);
    CHECK(strstr(f.err, "text.mp4: not a supported media file") != NULL);

    snprintf(path, sizeof(path), "%s/missing.mp4", f.outside);
    CHECK_INT(sn_input_open(path, &ctx, f.err, sizeof(f.err)), SN_ERR_INPUT);
    CHECK(strstr(f.err, "cannot open") != NULL);
    CHECK(ctx == NULL);
    fixture_close(&f);
}

SN_TEST_MAIN(
    TEST_CASE(key_valid_rejects_traversal_and_empty_parts),
    TEST_CASE(key_valid_rejects_controls_and_bad_utf8),
    TEST_CASE(key_valid_accepts_spaces_dots_and_letters),
    TEST_CASE(key_valid_limits_length_to_1024_bytes),
    TEST_CASE(every_operation_rejects_invalid_keys),
    TEST_CASE(invalid_key_message_escapes_the_key),
    TEST_CASE(invalid_key_message_shortens_long_keys),
    TEST_CASE(names_starting_with_tmp_are_reserved),
    TEST_CASE(put_and_get_round_trip),
    TEST_CASE(get_of_missing_key_is_not_found),
    TEST_CASE(get_enforces_the_size_limit),
    TEST_CASE(store_accepts_1024_byte_key),
    TEST_CASE(put_rejects_key_below_an_object),
    TEST_CASE(put_replaces_objects_atomically),
    TEST_CASE(store_is_usable_from_many_threads),
    TEST_CASE(put_file_moves_file_into_place),
    TEST_CASE(put_file_copies_across_file_systems),
    TEST_CASE(head_tag_changes_when_replaced),
    TEST_CASE(list_matches_prefixes_mid_name),
    TEST_CASE(list_stops_when_callback_returns_nonzero),
    TEST_CASE(remove_deletes_empty_parent_folders),
    TEST_CASE(reader_reads_at_offsets_and_end),
    TEST_CASE(open_rejects_fifos_and_folders),
    TEST_CASE(links_out_of_root_are_not_followed),
    TEST_CASE(scratch_folders_are_unique_inside_root),
    TEST_CASE(root_is_made_absolute),
    TEST_CASE(input_opens_store_object_like_file),
    TEST_CASE(input_reports_failed_read_code),
    TEST_CASE(file_source_rejects_fifos_and_non_media))
