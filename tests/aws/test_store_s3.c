/*
 * The S3 store against moto's server, run through tests/aws/with_moto.sh
 * (moto checks the signatures) and tests/aws/with_verified_moto.py
 * (botocore checks them). Exits with 77 (skipped) when AWS_ENDPOINT_URL
 * is not set.
 *
 * Keys with '(', '+', '%' or non-ASCII letters are tested only when
 * SN_TEST_S3_EXACT_PATHS=1, which the with_verified_moto.py run sets.
 * moto 5.2.1 cannot check those requests itself: it verifies the
 * signature over werkzeug's request.url, rebuilt from the decoded path,
 * which keeps "!$&'()*+,:;=@%" unencoded and turns %XX of UTF-8 back into
 * text. The path S3 signs is the key with every byte except A-Za-z0-9-._~
 * and '/' encoded once, as Sinatra and boto3 send it, so moto rejects
 * both with SignatureDoesNotMatch. The query is rebuilt the same way
 * ("prefix=odd%2F" becomes "prefix=odd/").
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "media/input.h"
#include "store/store.h"
#include "store/store_s3.h"
#include "test.h"
#include "util/error.h"

#define BUCKET "sinatra-test-store"
#define MEDIA_FILE "axm-sample_edit_list.mp4"

/* Creates the bucket with a signed PUT /bucket, once per process. */
static void create_bucket(void)
{
    static int created;
    struct sn_aws_provider *provider = NULL;
    struct sn_aws_signer signer = {.service = "s3"};
    struct sn_http_client *client;
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    char endpoint[SN_HTTP_URL_MAX], url[SN_HTTP_URL_MAX];
    char err[SN_ERR_SIZE] = "";
    int rc;

    if (created)
        return;
    CHECK_INT(sn_aws_provider_new(&provider), 0);
    signer.provider = provider;
    CHECK_INT(sn_aws_region(signer.region, sizeof(signer.region), err,
                            sizeof(err)), 0);
    CHECK_INT(sn_aws_endpoint("s3", signer.region, endpoint,
                              sizeof(endpoint), err, sizeof(err)), 0);
    CHECK_INT(sn_s3_url(endpoint, BUCKET, NULL, url, sizeof(url), err,
                        sizeof(err)), 0);
    client = sn_http_client_new(NULL);
    CHECK(client != NULL);

    sn_http_request_init(&req, "PUT", url);
    req.sign = sn_aws_sign;
    req.sign_opaque = &signer;
    req.resource = url;
    rc = sn_http_send(client, &req, &resp, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "create bucket: %s\n", err);
    CHECK(rc == 0 || rc == SN_ERR_CONFLICT);
    sn_http_response_release(&resp);
    sn_http_client_free(client);
    sn_aws_provider_free(provider);
    created = 1;
}

static struct sn_store *store_open(void)
{
    struct sn_store *s = NULL;
    char err[SN_ERR_SIZE] = "";

    if (getenv("AWS_ENDPOINT_URL") == NULL) {
        fprintf(stderr, "AWS_ENDPOINT_URL is not set (run through "
                        "tests/aws/with_moto.sh): skipped\n");
        exit(77);
    }
    create_bucket();
    CHECK_INT(sn_store_s3_open(BUCKET, &s, err, sizeof(err)), 0);
    if (s == NULL) {
        fprintf(stderr, "sn_store_s3_open: %s\n", err);
        exit(1);
    }
    CHECK_STR(s->name, "s3://" BUCKET);
    return s;
}

/* Puts data under key and checks that get() returns the same bytes. */
static void check_round_trip(struct sn_store *s, const char *key,
                             const char *data)
{
    char err[SN_ERR_SIZE] = "";
    uint8_t *got = NULL;
    size_t size = 0;
    struct sn_object_info info;
    int rc;

    rc = s->ops->put(s, key, data, strlen(data), err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "put %s: %s\n", key, err);
    CHECK_INT(rc, 0);
    rc = s->ops->get(s, key, 1024, &got, &size, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "get %s: %s\n", key, err);
    CHECK_INT(rc, 0);
    CHECK_INT(size, strlen(data));
    CHECK(got != NULL);
    if (got != NULL) {
        CHECK(memcmp(got, data, size) == 0);
        CHECK(got[size] == '\0');
    }
    free(got);
    CHECK_INT(s->ops->head(s, key, &info, err, sizeof(err)), 0);
    CHECK_INT(info.size, strlen(data));
}

static void put_get_round_trip(void)
{
    struct sn_store *s = store_open();
    char err[SN_ERR_SIZE] = "";
    uint8_t *got = NULL;
    size_t size = 1;

    check_round_trip(s, "stream/my clip.mp4", "hello, S3");
    check_round_trip(s, "a/b/c~d_e-f.g.json", "{\"ok\":true}");

    /* Empty objects and the size limit. */
    CHECK_INT(s->ops->put(s, "empty.bin", "", 0, err, sizeof(err)), 0);
    CHECK_INT(s->ops->get(s, "empty.bin", 10, &got, &size, err,
                          sizeof(err)), 0);
    CHECK_INT(size, 0);
    CHECK(got != NULL);
    if (got != NULL)
        CHECK(got[0] == '\0');
    free(got);
    got = NULL;
    CHECK_INT(s->ops->get(s, "stream/my clip.mp4", 4, &got, &size, err,
                          sizeof(err)), SN_ERR_LIMIT);
    CHECK(got == NULL);
    CHECK(strstr(err, "maximum of 4 bytes") != NULL);
    sn_store_close(s);
}

static void put_file_uploads_and_removes(void)
{
    struct sn_store *s = store_open();
    char dir[512], path[600], err[SN_ERR_SIZE] = "";
    static const char data[] = "a segment's bytes";
    uint8_t *got = NULL;
    size_t size = 0;
    FILE *f;

    CHECK_INT(s->ops->scratch(s, dir, sizeof(dir), err, sizeof(err)), 0);
    CHECK(strstr(dir, "sinatra-scratch-") != NULL);
    snprintf(path, sizeof(path), "%s/seg.m4s", dir);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fwrite(data, 1, strlen(data), f);
    fclose(f);

    CHECK_INT(s->ops->put_file(s, "out/seg_00001.m4s", path, err,
                               sizeof(err)), 0);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(s->ops->get(s, "out/seg_00001.m4s", 1024, &got, &size, err,
                          sizeof(err)), 0);
    CHECK_INT(size, strlen(data));
    CHECK(got != NULL);
    if (got != NULL)
        CHECK(memcmp(got, data, size) == 0);
    free(got);

    CHECK_INT(s->ops->put_file(s, "out/x.m4s", path, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    rmdir(dir);
    sn_store_close(s);
}

static void head_tag_changes_on_replace(void)
{
    struct sn_store *s = store_open();
    struct sn_object_info first, second, again;
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(s->ops->put(s, "tag/obj.bin", "one", 3, err, sizeof(err)), 0);
    CHECK_INT(s->ops->head(s, "tag/obj.bin", &first, err, sizeof(err)), 0);
    CHECK_INT(s->ops->head(s, "tag/obj.bin", &again, err, sizeof(err)), 0);
    CHECK_STR(again.tag, first.tag);
    CHECK(first.tag[0] != '\0');
    CHECK(first.tag[0] != '"');

    CHECK_INT(s->ops->put(s, "tag/obj.bin", "three", 5, err, sizeof(err)),
              0);
    CHECK_INT(s->ops->head(s, "tag/obj.bin", &second, err, sizeof(err)), 0);
    CHECK_INT(second.size, 5);
    CHECK(strcmp(first.tag, second.tag) != 0);
    sn_store_close(s);
}

struct listed {
    int count;
    int outside;
    int64_t bytes;
    int stop_after;
};

static int count_key(void *opaque, const char *key, int64_t size)
{
    struct listed *l = opaque;

    l->count++;
    l->bytes += size;
    if (strncmp(key, "many/", 5) != 0)
        l->outside++;
    if (l->stop_after > 0 && l->count == l->stop_after)
        return 42;
    return 0;
}

/*
 * 1,100 objects: moto and S3 return at most 1,000 keys per page. The
 * prefix has no '/' because moto 5.2.1 also verifies the signature over a
 * query with %2F decoded, so "prefix=many%2F" fails there (boto3's
 * list_objects_v2(Prefix="many/") too); a '/' prefix is listed in
 * reserved_character_keys_round_trip.
 */
#define MANY 1100

static void list_spans_pages_and_remove(void)
{
    struct sn_store *s = store_open();
    struct listed l = {0};
    char key[64], err[SN_ERR_SIZE] = "";
    int failed = 0, rc;

    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "many/%05d.json", i);
        failed += s->ops->put(s, key, "{}", 2, err, sizeof(err)) != 0;
    }
    CHECK_INT(failed, 0);
    CHECK_INT(s->ops->put(s, "mani.json", "{}", 2, err, sizeof(err)),
              0);

    rc = s->ops->list(s, "many", count_key, &l, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "list: %s\n", err);
    CHECK_INT(rc, 0);
    CHECK_INT(l.count, MANY);
    CHECK_INT(l.outside, 0);
    CHECK_INT(l.bytes, 2 * MANY);

    /* A non-zero return from the callback stops the listing. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 3;
    CHECK_INT(s->ops->list(s, "many", count_key, &l, err, sizeof(err)), 42);
    CHECK_INT(l.count, 3);

    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "many/%05d.json", i);
        failed += s->ops->remove(s, key, err, sizeof(err)) != 0;
    }
    CHECK_INT(failed, 0);
    memset(&l, 0, sizeof(l));
    CHECK_INT(s->ops->list(s, "many", count_key, &l, err, sizeof(err)), 0);
    CHECK_INT(l.count, 0);
    sn_store_close(s);
}

#define BIG_SIZE (3 * 1024 * 1024)
#define SMALL_READ (64 * 1024)

static uint8_t pattern_byte(int64_t i)
{
    return (uint8_t)((i * 7 + i / 251) & 0xff);
}

static void reader_reads_ahead(void)
{
    struct sn_store *s = store_open();
    struct sn_reader *r = NULL;
    char err[SN_ERR_SIZE] = "";
    uint8_t *data = malloc(BIG_SIZE), buf[SMALL_READ];
    int64_t offset, n;
    long gets;
    int mismatches = 0;

    CHECK(data != NULL);
    for (int64_t i = 0; i < BIG_SIZE; i++)
        data[i] = pattern_byte(i);
    CHECK_INT(s->ops->put(s, "big/source.mp4", data, BIG_SIZE, err,
                          sizeof(err)), 0);
    CHECK_INT(s->ops->open(s, "big/source.mp4", &r, err, sizeof(err)), 0);
    if (r == NULL) {
        fprintf(stderr, "open: %s\n", err);
        free(data);
        sn_store_close(s);
        return;
    }
    CHECK_INT(r->size, BIG_SIZE);

    gets = sn_store_s3_get_count(s);
    for (offset = 0; offset < BIG_SIZE; offset += n) {
        n = r->read(r, offset, buf, sizeof(buf));
        if (n <= 0)
            break;
        mismatches += memcmp(buf, data + offset, (size_t)n) != 0;
    }
    CHECK_INT(offset, BIG_SIZE);
    CHECK_INT(mismatches, 0);
    CHECK(sn_store_s3_get_count(s) - gets <= 4);

    /* Reads at scattered offsets, and across the end. */
    CHECK_INT(r->read(r, 12345, buf, 100), 100);
    CHECK(memcmp(buf, data + 12345, 100) == 0);
    CHECK_INT(r->read(r, BIG_SIZE - 10, buf, 100), 10);
    CHECK(memcmp(buf, data + BIG_SIZE - 10, 10) == 0);
    CHECK_INT(r->read(r, 2 * 1024 * 1024 + 7, buf, 1), 1);
    CHECK_INT(buf[0], pattern_byte(2 * 1024 * 1024 + 7));
    CHECK_INT(r->read(r, BIG_SIZE, buf, 100), 0);
    CHECK_INT(r->read(r, BIG_SIZE + 5, buf, 100), 0);

    r->close(r);
    free(data);
    sn_store_close(s);
}

/* The source of sn_input_open_source(): one reader per open(). */
struct s3_source {
    struct sn_store *store;
    const char *key;
};

static int open_s3_source(void *opaque, struct sn_reader **out, char *err,
                          size_t err_size)
{
    struct s3_source *src = opaque;

    return src->store->ops->open(src->store, src->key, out, err, err_size);
}

static const char *media_dir(void)
{
    const char *dir = getenv("SN_MEDIA_DIR");

    return dir != NULL ? dir : SN_MEDIA_DEFAULT_DIR;
}

static void media_probes_through_reader(void)
{
    struct sn_store *s = store_open();
    char path[1024], err[SN_ERR_SIZE] = "";
    struct s3_source from_s3 = {s, "in/" MEDIA_FILE};
    struct sn_source src = {"in/" MEDIA_FILE, open_s3_source, &from_s3};
    AVFormatContext *local = NULL, *remote = NULL;
    struct stat sb;
    long gets;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", media_dir(), MEDIA_FILE);
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "%s is missing: media case skipped\n", path);
        sn_store_close(s);
        return;
    }
    CHECK_INT(sn_input_open(path, &local, err, sizeof(err)), 0);

    /* put_file() removes its file, so upload a copy. */
    {
        char dir[512], copy[600], cmd[1400];

        CHECK_INT(s->ops->scratch(s, dir, sizeof(dir), err, sizeof(err)), 0);
        snprintf(copy, sizeof(copy), "%s/copy.mp4", dir);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
        CHECK_INT(system(cmd), 0);
        CHECK_INT(s->ops->put_file(s, from_s3.key, copy, err, sizeof(err)),
                  0);
        rmdir(dir);
    }

    gets = sn_store_s3_get_count(s);
    rc = sn_input_open_source(&src, &remote, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "open over S3: %s\n", err);
    CHECK_INT(rc, 0);
    if (local != NULL && remote != NULL) {
        CHECK(local->duration > 0);
        CHECK_INT(remote->duration, local->duration);
        CHECK_INT(remote->nb_streams, local->nb_streams);
        CHECK_INT(sn_input_size(remote), sb.st_size);
    }
    /* With 1 MiB of read-ahead the probe of this 3.2 MB file takes a few
     * GETs at most (one with moto 5.2.1, as its index is at the start). */
    printf("probe of %lld bytes took %ld GETs\n", (long long)sb.st_size,
           sn_store_s3_get_count(s) - gets);
    CHECK(sn_store_s3_get_count(s) - gets <= 8);
    sn_input_close(&local);
    sn_input_close(&remote);
    sn_store_close(s);
}

static void missing_key_is_not_found(void)
{
    struct sn_store *s = store_open();
    struct sn_reader *r = NULL;
    struct sn_object_info info;
    char err[SN_ERR_SIZE] = "";
    uint8_t *data = NULL;
    size_t size;

    CHECK_INT(s->ops->open(s, "no/such.mp4", &r, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(r == NULL);
    CHECK_INT(s->ops->get(s, "no/such.json", 100, &data, &size, err,
                          sizeof(err)), SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "no/such.json") != NULL);
    CHECK_INT(s->ops->head(s, "no/such.json", &info, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK_INT(s->ops->remove(s, "no/such.json", err, sizeof(err)), 0);
    sn_store_close(s);
}

static int never_called(void *opaque, const char *key, int64_t size)
{
    (void)opaque;
    (void)key;
    (void)size;
    return 1;
}

static void invalid_keys_rejected(void)
{
    static const char *const keys[] = {"", "/abs", "a//b", "a/../b", "./a",
                                       "back\\slash", "tab\there",
                                       "bad\xff utf8"};
    struct sn_store *s = store_open();
    struct sn_reader *r = NULL;
    struct sn_object_info info;
    char err[SN_ERR_SIZE];
    uint8_t *data = NULL;
    size_t size;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *k = keys[i];

        CHECK_INT(s->ops->open(s, k, &r, err, sizeof(err)), SN_ERR_INPUT);
        CHECK_INT(s->ops->get(s, k, 10, &data, &size, err, sizeof(err)),
                  SN_ERR_INPUT);
        CHECK_INT(s->ops->put(s, k, "x", 1, err, sizeof(err)),
                  SN_ERR_INPUT);
        CHECK_INT(s->ops->put_file(s, k, "/nonexistent", err, sizeof(err)),
                  SN_ERR_INPUT);
        CHECK_INT(s->ops->head(s, k, &info, err, sizeof(err)),
                  SN_ERR_INPUT);
        CHECK_INT(s->ops->remove(s, k, err, sizeof(err)), SN_ERR_INPUT);
    }
    CHECK_INT(s->ops->list(s, "/abs", never_called, NULL, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK_INT(s->ops->list(s, "a//", never_called, NULL, err, sizeof(err)),
              SN_ERR_INPUT);
    sn_store_close(s);
}

/* Sends a signed HEAD for key and copies one response header into out. */
static void head_header(const char *key, const char *name, char *out,
                        size_t out_size)
{
    struct sn_aws_provider *provider = NULL;
    struct sn_aws_signer signer = {.service = "s3"};
    struct sn_http_client *client = sn_http_client_new(NULL);
    struct sn_http_request req;
    struct sn_http_response resp = {0};
    char endpoint[SN_HTTP_URL_MAX], url[SN_HTTP_URL_MAX];
    char err[SN_ERR_SIZE] = "";

    out[0] = '\0';
    CHECK_INT(sn_aws_provider_new(&provider), 0);
    signer.provider = provider;
    CHECK_INT(sn_aws_region(signer.region, sizeof(signer.region), err,
                            sizeof(err)), 0);
    CHECK_INT(sn_aws_endpoint("s3", signer.region, endpoint,
                              sizeof(endpoint), err, sizeof(err)), 0);
    CHECK_INT(sn_s3_url(endpoint, BUCKET, key, url, sizeof(url), err,
                        sizeof(err)), 0);
    sn_http_request_init(&req, "HEAD", url);
    req.sign = sn_aws_sign;
    req.sign_opaque = &signer;
    req.resource = url;
    CHECK_INT(sn_http_send(client, &req, &resp, err, sizeof(err)), 0);
    if (sn_http_header(&resp, name, out, out_size) < 0)
        out[0] = '\0';
    sn_http_response_release(&resp);
    sn_http_client_free(client);
    sn_aws_provider_free(provider);
}

static void content_types_set(void)
{
    static const struct {
        const char *key, *type, *cache;
    } cases[] = {
        {"t/master.m3u8", "application/vnd.apple.mpegurl",
         "public, max-age=1"},
        {"t/seg_00001.m4s", "video/iso.segment",
         "public, max-age=31536000, immutable"},
        {"t/init.mp4", "video/mp4", "public, max-age=31536000, immutable"},
        {"t/seg_00001.ts", "video/mp2t",
         "public, max-age=31536000, immutable"},
        {"t/poster.jpg", "image/jpeg", "public, max-age=31536000, immutable"},
        {"t/status.json", "application/json", "no-cache"},
        {"t/blob", "application/octet-stream", ""},
    };
    struct sn_store *s = store_open();
    char err[SN_ERR_SIZE] = "", value[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(s->ops->put(s, cases[i].key, "x", 1, err, sizeof(err)), 0);
        head_header(cases[i].key, "Content-Type", value, sizeof(value));
        CHECK_STR(value, cases[i].type);
        head_header(cases[i].key, "Cache-Control", value, sizeof(value));
        CHECK_STR(value, cases[i].cache);
    }
    sn_store_close(s);
}

static int find_key(void *opaque, const char *key, int64_t size)
{
    (void)size;
    return strcmp(key, (const char *)opaque) == 0 ? 1 : 0;
}

/* Returns 1 when list() under prefix reports key, 0 when not. */
static int listed(struct sn_store *s, const char *prefix, const char *key)
{
    char err[SN_ERR_SIZE] = "";
    int rc = s->ops->list(s, prefix, find_key, (void *)key, err,
                          sizeof(err));

    if (rc < 0)
        fprintf(stderr, "list %s: %s\n", prefix, err);
    return rc;
}

/* Reads key through a ranged reader and compares it with data. */
static void check_reader(struct sn_store *s, const char *key,
                         const char *data)
{
    struct sn_reader *r = NULL;
    char err[SN_ERR_SIZE] = "", buf[64] = "";
    int rc;

    rc = s->ops->open(s, key, &r, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "open %s: %s\n", key, err);
        CHECK_INT(rc, 0);
        return;
    }
    CHECK_INT(r->size, strlen(data));
    CHECK_INT(r->read(r, 1, buf, sizeof(buf) - 1), strlen(data) - 1);
    CHECK_STR(buf, data + 1);
    r->close(r);
}

/*
 * Every key goes through put, get, head, a ranged read, list (under its
 * folder and under the whole key as prefix, so the query carries the
 * same bytes) and remove, and is then gone. Pairs of keys that a server
 * decoding '+' as a space, or decoding twice, would mix up are written
 * first, each with its own bytes.
 */
static void reserved_character_keys_round_trip(void)
{
    static const char *const keys[] = {
        "odd/My Movie (final)+1 100%.mp4",
        "odd/a+b.mp4",
        "odd/a b.mp4",
        "odd/%2B%20%25 looks encoded.json",
        "odd/+ %.json",
        "odd/n\xc3\xa9" "e (1).mp4",
        "odd/caf\xc3\xa9 \xc3\xbc" "ber & <x> \"q\" 'a'.json",
        "odd/\xe6\x97\xa5\xe6\x9c\xac ~tilde.ts",
        "odd/a=b;c,d@e$f!g*h:i[j]{k}|l^m`n.ts",
        "odd/(dir)+1/seg_00000.m4s",
    };
    const size_t n = sizeof(keys) / sizeof(keys[0]);
    struct sn_store *s;
    struct sn_object_info info;
    const char *exact = getenv("SN_TEST_S3_EXACT_PATHS");
    char err[SN_ERR_SIZE] = "";

    if (exact == NULL || strcmp(exact, "1") != 0) {
        printf("reserved_character_keys_round_trip: skipped: moto 5.2.1 "
               "checks signatures over a decoded path; run it through "
               "with_verified_moto.py with SN_TEST_S3_EXACT_PATHS=1\n");
        return;
    }
    s = store_open();

    /* Each object contains its own key, so a mix-up shows in the bytes. */
    for (size_t i = 0; i < n; i++)
        CHECK_INT(s->ops->put(s, keys[i], keys[i], strlen(keys[i]), err,
                              sizeof(err)), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t *got = NULL;
        size_t size = 0;

        CHECK_INT(s->ops->get(s, keys[i], 1024, &got, &size, err,
                              sizeof(err)), 0);
        CHECK_INT(size, strlen(keys[i]));
        if (got != NULL)
            CHECK_STR((const char *)got, keys[i]);
        free(got);
        check_reader(s, keys[i], keys[i]);
        CHECK_INT(listed(s, "odd/", keys[i]), 1);
        CHECK_INT(listed(s, keys[i], keys[i]), 1);
    }

    for (size_t i = 0; i < n; i++) {
        check_round_trip(s, keys[i], "odd");
        CHECK_INT(s->ops->remove(s, keys[i], err, sizeof(err)), 0);
        CHECK_INT(s->ops->head(s, keys[i], &info, err, sizeof(err)),
                  SN_ERR_NOT_FOUND);
        CHECK_INT(listed(s, "odd/", keys[i]), 0);
    }
    sn_store_close(s);
}

SN_TEST_MAIN(
    TEST_CASE(put_get_round_trip),
    TEST_CASE(put_file_uploads_and_removes),
    TEST_CASE(head_tag_changes_on_replace),
    TEST_CASE(list_spans_pages_and_remove),
    TEST_CASE(reader_reads_ahead),
    TEST_CASE(media_probes_through_reader),
    TEST_CASE(missing_key_is_not_found),
    TEST_CASE(invalid_keys_rejected),
    TEST_CASE(content_types_set),
    TEST_CASE(reserved_character_keys_round_trip))
