/*
 * Tests of the Lambda event parsing: S3 key decoding, S3 events direct
 * and through SQS, SQS batches and the partial batch response. The events
 * are the fixture files in tests/lambda/events/.
 */
#include "lambda/events.h"
#include "util/error.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>

#ifndef SN_LAMBDA_EVENTS_DIR
#error "SN_LAMBDA_EVENTS_DIR must name tests/lambda/events"
#endif

#define BUCKET "sinatra-videos"

/* Reads a fixture into a string the caller frees; NULL on failure. */
static char *read_fixture(const char *name, size_t *size)
{
    char path[512];
    FILE *f;
    char *text;
    long n;

    snprintf(path, sizeof(path), "%s/%s", SN_LAMBDA_EVENTS_DIR, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = malloc((size_t)n + 1);
    if (text != NULL && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    if (text != NULL) {
        text[n] = '\0';
        *size = (size_t)n;
    }
    return text;
}

/* Parses a fixture as the orchestrator does; returns the parse code. */
static int parse_fixture(const char *name, struct sn_upload_event *e)
{
    char err[SN_ERR_SIZE] = "";
    size_t size = 0;
    char *text = read_fixture(name, &size);
    int rc;

    memset(e, 0, sizeof(*e));
    if (text == NULL)
        return -1;
    rc = sn_upload_event_parse(text, size, BUCKET, e, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", name, err);
    free(text);
    return rc;
}

static int decode(const char *in, char *out, size_t out_size, char *err)
{
    return sn_s3_key_decode(in, out, out_size, err, SN_ERR_SIZE);
}

/* ---- key decoding ------------------------------------------------------ */

static void key_plus_is_space_and_escapes_decode(void)
{
    char out[64], err[SN_ERR_SIZE];

    CHECK_INT(decode("my+clip+%281%29.mov", out, sizeof(out), err), 0);
    CHECK_STR(out, "my clip (1).mov");
}

static void key_escaped_plus_stays_plus(void)
{
    char out[64], err[SN_ERR_SIZE];

    CHECK_INT(decode("a%2Bb.mp4", out, sizeof(out), err), 0);
    CHECK_STR(out, "a+b.mp4");
    CHECK_INT(decode("a+b.mp4", out, sizeof(out), err), 0);
    CHECK_STR(out, "a b.mp4");
    /* Decoding is one pass, so an escaped '%' does not start another
     * escape: "%252B" is the three bytes "%2B". */
    CHECK_INT(decode("%252B", out, sizeof(out), err), 0);
    CHECK_STR(out, "%2B");
}

static void key_utf8_escapes_decode_to_bytes(void)
{
    char out[64], err[SN_ERR_SIZE];

    CHECK_INT(decode("n%C3%A9e.mp4", out, sizeof(out), err), 0);
    CHECK_STR(out, "n\xc3\xa9" "e.mp4");
    CHECK_INT(decode("n%c3%a9e.mp4", out, sizeof(out), err), 0);
    CHECK_STR(out, "n\xc3\xa9" "e.mp4");
    CHECK_INT(decode("stream%2Fa.mp4", out, sizeof(out), err), 0);
    CHECK_STR(out, "stream/a.mp4");
}

static void key_malformed_escapes_are_rejected(void)
{
    static const char *const bad[] = {"a%", "a%2", "a%zz.mp4", "a%2g.mp4",
                                      "%%41", "a%+1"};
    char out[64], err[SN_ERR_SIZE];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(decode(bad[i], out, sizeof(out), err), SN_ERR_INPUT);
        CHECK(strstr(err, "invalid escape") != NULL);
        CHECK(strstr(err, bad[i]) != NULL);
    }
}

static void key_nul_escape_is_rejected(void)
{
    char out[64], err[SN_ERR_SIZE] = "";

    CHECK_INT(decode("a%00b.mp4", out, sizeof(out), err), SN_ERR_INPUT);
    CHECK(strstr(err, "NUL") != NULL);
}

static void key_invalid_utf8_is_rejected(void)
{
    char out[64], err[SN_ERR_SIZE] = "";

    CHECK_INT(decode("stream/%FF.mp4", out, sizeof(out), err), SN_ERR_INPUT);
    CHECK(strstr(err, "invalid UTF-8") != NULL);
    CHECK(strstr(err, "stream/%FF.mp4") != NULL);
    /* A character cut short by the end of the key. */
    CHECK_INT(decode("n%C3", out, sizeof(out), err), SN_ERR_INPUT);
}

static void key_longer_than_buffer_is_rejected(void)
{
    char out[8], err[SN_ERR_SIZE] = "";

    CHECK_INT(decode("1234567", out, sizeof(out), err), 0);
    CHECK_INT(decode("12345678", out, sizeof(out), err), SN_ERR_LIMIT);
    CHECK(strstr(err, "longer than 7 bytes") != NULL);
    /* Escapes count once decoded: eight escapes are seven bytes plus one. */
    CHECK_INT(decode("%41%41%41%41%41%41%41", out, sizeof(out), err), 0);
    CHECK_STR(out, "AAAAAAA");
}

/* ---- S3 events --------------------------------------------------------- */

static void s3_fixtures_decode_to_upload_keys(void)
{
    static const struct {
        const char *file;
        const char *key;
    } cases[] = {
        {"s3-put-my-clip.json", "stream/my clip (1).mov"},
        {"s3-put-a-plus-b.json", "stream/a+b.mp4"},
        {"s3-put-a-space-b.json", "stream/a b.mp4"},
        {"s3-put-nee.json", "stream/n\xc3\xa9" "e.mp4"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_upload_event e;

        CHECK_INT(parse_fixture(cases[i].file, &e), 0);
        CHECK_INT(e.n, 1);
        if (e.n == 1) {
            CHECK_INT(e.records[0].ignored, 0);
            CHECK_STR(e.records[0].bucket, BUCKET);
            CHECK_STR(e.records[0].key, cases[i].key);
        }
        sn_upload_event_release(&e);
    }
}

static void s3_test_event_is_skipped(void)
{
    struct sn_upload_event e;

    CHECK_INT(parse_fixture("s3-test-event.json", &e), 0);
    CHECK_INT(e.n, 0);
    CHECK_INT(e.test_events, 1);
    sn_upload_event_release(&e);
}

static void s3_mixed_records_keep_uploads_only(void)
{
    static const struct {
        int ignored;
        const char *key;
        const char *reason;
    } expected[] = {
        {0, "stream/first.mp4", ""},
        {0, "stream/second.mov", ""},
        {0, "stream/third.mkv", ""},
        {1, "stream/removed.mp4", "is not an upload"},
        {1, "stream/elsewhere.mp4", "is not the uploads bucket"},
        {1, "jobs/0123456789abcdef/1/plan.json", "outside stream/"},
        {1, "stream/future.mp4", "eventVersion \"3.0\" is not 2.x"},
        {1, "stream/bad%zzscape.mp4", "invalid escape"},
        {1, "stream/nested/name.mp4", "not an upload name"},
    };
    size_t n = sizeof(expected) / sizeof(expected[0]);
    struct sn_upload_event e;

    CHECK_INT(parse_fixture("s3-mixed-records.json", &e), 0);
    CHECK_INT(e.n, n);
    for (size_t i = 0; i < n && i < e.n; i++) {
        CHECK_INT(e.records[i].ignored, expected[i].ignored);
        CHECK_STR(e.records[i].key, expected[i].key);
        if (strstr(e.records[i].reason, expected[i].reason) == NULL)
            fprintf(stderr, "record %zu: reason \"%s\"\n", i,
                    e.records[i].reason);
        CHECK(strstr(e.records[i].reason, expected[i].reason) != NULL);
    }
    sn_upload_event_release(&e);
}

static void s3_event_through_sqs_is_parsed_twice(void)
{
    struct sn_upload_event e;

    CHECK_INT(parse_fixture("sqs-s3-put-my-clip.json", &e), 0);
    CHECK_INT(e.test_events, 1);
    CHECK_INT(e.n, 2);
    if (e.n == 2) {
        CHECK_INT(e.records[0].ignored, 0);
        CHECK_STR(e.records[0].key, "stream/my clip (1).mov");
        CHECK_INT(e.records[1].ignored, 1);
        CHECK(strstr(e.records[1].reason,
                     "d9c8b7a6-5f4e-4d3c-8b2a-190817263544") != NULL);
    }
    sn_upload_event_release(&e);
}

static void s3_event_versions_2x_only(void)
{
    static const struct {
        const char *version;
        int ignored;
    } cases[] = {{"2.0", 0}, {"2.1", 0}, {"2.2", 0}, {"2.10", 0},
                 {"1.0", 1}, {"2", 1}, {"2.", 1}, {"2.1a", 1}, {"3.0", 1}};
    char event[1024], err[SN_ERR_SIZE];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_upload_event e = {0};

        snprintf(event, sizeof(event),
                 "{\"Records\":[{\"eventVersion\":\"%s\",\"eventSource\":"
                 "\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
                 "\"bucket\":{\"name\":\"" BUCKET "\"},\"object\":{\"key\":"
                 "\"stream/v.mp4\"}}}]}", cases[i].version);
        CHECK_INT(sn_upload_event_parse(event, strlen(event), BUCKET, &e,
                                        err, sizeof(err)), 0);
        CHECK_INT(e.n, 1);
        if (e.n == 1 && e.records[0].ignored != cases[i].ignored)
            fprintf(stderr, "eventVersion %s\n", cases[i].version);
        if (e.n == 1)
            CHECK_INT(e.records[0].ignored, cases[i].ignored);
        sn_upload_event_release(&e);
    }
}

static void event_without_records_is_rejected(void)
{
    static const char *const bad[] = {"", "[]", "{\"Records\":{}}",
                                      "{\"Event\":\"s3:Other\"}", "{"};
    char err[SN_ERR_SIZE];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sn_upload_event e = {0};

        err[0] = '\0';
        CHECK_INT(sn_upload_event_parse(bad[i], strlen(bad[i]), BUCKET, &e,
                                        err, sizeof(err)), SN_ERR_INPUT);
        CHECK(strncmp(err, "event: ", 7) == 0);
        sn_upload_event_release(&e);
    }
}

static void s3_invalid_utf8_key_is_ignored_alone(void)
{
    struct sn_upload_event e;

    CHECK_INT(parse_fixture("s3-put-invalid-utf8-key.json", &e), 0);
    CHECK_INT(e.n, 2);
    if (e.n == 2) {
        CHECK_INT(e.records[0].ignored, 1);
        CHECK_STR(e.records[0].key, "stream/%FF.mp4");
        CHECK(strstr(e.records[0].reason, "invalid UTF-8") != NULL);
        CHECK_INT(e.records[1].ignored, 0);
        CHECK_STR(e.records[1].key, "stream/t5-mkv.mkv");
    }
    sn_upload_event_release(&e);
}

static void s3_event_version_number_is_named(void)
{
    const char *event =
        "{\"Records\":[{\"eventVersion\":2.1,\"eventSource\":\"aws:s3\","
        "\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":"
        "\"" BUCKET "\"},\"object\":{\"key\":\"stream/v.mp4\"}}}]}";
    struct sn_upload_event e = {0};
    char err[SN_ERR_SIZE];

    CHECK_INT(sn_upload_event_parse(event, strlen(event), BUCKET, &e, err,
                                    sizeof(err)), 0);
    CHECK_INT(e.n, 1);
    if (e.n == 1) {
        CHECK_INT(e.records[0].ignored, 1);
        CHECK(strstr(e.records[0].reason, "a number (2.1)") != NULL);
        CHECK(strstr(e.records[0].reason, "missing") == NULL);
    }
    sn_upload_event_release(&e);
}

static void s3_sqs_body_without_records_is_ignored(void)
{
    const char *event =
        "{\"Records\":[{\"messageId\":\"m1\",\"eventSource\":\"aws:sqs\","
        "\"body\":\"{\\\"Event\\\":\\\"s3:Other\\\"}\"}]}";
    struct sn_upload_event e = {0};
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(sn_upload_event_parse(event, strlen(event), BUCKET, &e, err,
                                    sizeof(err)), 0);
    CHECK_INT(e.n, 1);
    if (e.n == 1) {
        CHECK_INT(e.records[0].ignored, 1);
        CHECK(strstr(e.records[0].reason, "m1") != NULL);
    }
    sn_upload_event_release(&e);
}

/* Writes count '[' into a new string; the caller frees it. */
static char *nested_arrays(size_t count)
{
    char *text = malloc(count + 1);

    if (text != NULL) {
        memset(text, '[', count);
        text[count] = '\0';
    }
    return text;
}

/* "null" is valid JSON, so the error names its type instead. */
static void null_event_is_not_an_object(void)
{
    struct sn_upload_event e = {0};
    struct sn_sqs_batch b;
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(sn_upload_event_parse("null", 4, BUCKET, &e, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK_STR(err, "event: null, not a JSON object");
    sn_upload_event_release(&e);
    CHECK_INT(sn_sqs_batch_parse("null", 4, &b, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "not a JSON object") != NULL);
    sn_sqs_batch_release(&b);
}

static void invalid_events_are_rejected_by_both(void)
{
    static const char *const bad[] = {
        "{", "{}", "[]", "null", "\"hello\"", "", "{\"Records\":{}}",
        "{\"Records\":\"x\"}", "{\"Records\":null}", "\xff\xff\xff",
    };
    size_t n = sizeof(bad) / sizeof(bad[0]);
    char *deep = nested_arrays(200000);
    char err[SN_ERR_SIZE];

    CHECK(deep != NULL);
    for (size_t i = 0; i <= n; i++) {
        const char *event = i < n ? bad[i] : deep;
        struct sn_upload_event e = {0};
        struct sn_sqs_batch b;

        if (event == NULL)
            continue;
        err[0] = '\0';
        CHECK_INT(sn_upload_event_parse(event, strlen(event), BUCKET, &e,
                                        err, sizeof(err)), SN_ERR_INPUT);
        CHECK(strncmp(err, "event: ", 7) == 0);
        sn_upload_event_release(&e);
        err[0] = '\0';
        CHECK_INT(sn_sqs_batch_parse(event, strlen(event), &b, err,
                                     sizeof(err)), SN_ERR_INPUT);
        CHECK(strncmp(err, "event: ", 7) == 0);
        sn_sqs_batch_release(&b);
    }
    free(deep);
}

static void excerpt_cuts_at_character_and_marks(void)
{
    char text[300], out[SN_EXCERPT_MAX + SN_EXCERPT_MARK_MAX], small[8];

    CHECK_STR(sn_excerpt("short", SN_EXCERPT_MAX, out, sizeof(out)),
              "short");
    /* 127 bytes of 'a', then a two-byte character across byte 128. */
    memset(text, 'a', 127);
    strcpy(text + 127, "\xc3\xa9tail");
    CHECK_STR(sn_excerpt(text, SN_EXCERPT_MAX, out, sizeof(out)) + 127,
              "...(cut from 133 bytes)");
    CHECK_STR(sn_excerpt("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, small,
                         sizeof(small)), "\xc3\xa9\xc3\xa9\xc3\xa9");
}

static void utf8_repair_replaces_bad_bytes(void)
{
    char text[] = "ok \xff n\xc3\xa9" "e \xc3";

    sn_utf8_repair(text);
    CHECK_STR(text, "ok ? n\xc3\xa9" "e ?");
}

/* ---- SQS batches ------------------------------------------------------- */

static void sqs_batch_reads_ids_bodies_and_counts(void)
{
    struct sn_sqs_batch b;
    char err[SN_ERR_SIZE] = "";
    size_t size = 0;
    char *text = read_fixture("sqs-jobs-batch.json", &size);

    CHECK(text != NULL);
    if (text == NULL)
        return;
    CHECK_INT(sn_sqs_batch_parse(text, size, &b, err, sizeof(err)), 0);
    CHECK_INT(b.n, 2);
    CHECK_INT(b.fifo, 0);
    if (b.n == 2) {
        CHECK_STR(b.records[0].message_id,
                  "5a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b");
        CHECK_INT(b.records[0].receive_count, 1);
        CHECK(strstr(b.records[0].body, "\"job\": 0") != NULL);
        CHECK_INT(b.records[1].receive_count, 5);
    }
    sn_sqs_batch_release(&b);
    free(text);
}

static void sqs_batch_problems_are_named(void)
{
    static const struct {
        const char *event;
        const char *cause;
    } cases[] = {
        {"{}", "no Records array"},
        {"{\"Records\":[{\"body\":\"x\"}]}", "record 0: messageId is "
                                             "missing"},
        {"{\"Records\":[{\"messageId\":\"m1\"},7]}", "record 1 is a number"},
        {"{\"Records\":[{\"messageId\":42}]}", "messageId is a number (42)"},
        {"{\"Records\":[{\"messageId\":\"\"}]}", "messageId is \"\""},
        {"{\"Records\":[{\"messageId\":\"m\\udc80\"}]}", "not JSON"},
        {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"s3\":{}}]}",
         "messageId is missing"},
    };
    char err[SN_ERR_SIZE];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_sqs_batch b;

        err[0] = '\0';
        CHECK_INT(sn_sqs_batch_parse(cases[i].event, strlen(cases[i].event),
                                     &b, err, sizeof(err)), SN_ERR_INPUT);
        CHECK(strstr(err, cases[i].cause) != NULL);
        sn_sqs_batch_release(&b);
    }
}

static void sqs_overlong_message_id_fails_batch(void)
{
    char event[300000], err[SN_ERR_SIZE] = "";
    struct sn_sqs_batch b;
    int n;

    n = snprintf(event, sizeof(event), "{\"Records\":[{\"messageId\":\"");
    memset(event + n, 'x', 200000);
    strcpy(event + n + 200000, "\"}]}");
    CHECK_INT(sn_sqs_batch_parse(event, strlen(event), &b, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "longer than SQS's 100 characters") != NULL);
    CHECK(strstr(err, "...(cut from 200000 bytes)") != NULL);
    sn_sqs_batch_release(&b);
}

static void sqs_malformed_record_keeps_its_id(void)
{
    const char *event =
        "{\"Records\":["
        "{\"messageId\":\"m1\",\"body\":\"{}\"},"
        "{\"messageId\":\"m2\",\"attributes\":{"
        "\"ApproximateReceiveCount\":\"abc\"}},"
        "{\"messageId\":\"m3\",\"attributes\":{"
        "\"ApproximateReceiveCount\":3}},"
        "{\"messageId\":\"m4\",\"attributes\":{"
        "\"ApproximateReceiveCount\":\"zero\"}}]}";
    struct sn_sqs_batch b;
    char err[SN_ERR_SIZE] = "";

    CHECK_INT(sn_sqs_batch_parse(event, strlen(event), &b, err, sizeof(err)),
              0);
    CHECK_INT(b.n, 4);
    if (b.n == 4) {
        CHECK_STR(b.records[0].invalid, "");
        CHECK_STR(b.records[1].message_id, "m2");
        CHECK(strstr(b.records[1].invalid, "\"abc\"") != NULL);
        CHECK(strstr(b.records[2].invalid, "a number (3)") != NULL);
        CHECK(strstr(b.records[3].invalid, "ApproximateReceiveCount") !=
              NULL);
    }
    sn_sqs_batch_release(&b);
}

static void sqs_fifo_queue_is_detected(void)
{
    const char *event =
        "{\"Records\":[{\"messageId\":\"m1\",\"body\":\"{}\","
        "\"eventSourceARN\":\"arn:aws:sqs:us-east-1:1:jobs.fifo\"}]}";
    struct sn_sqs_batch b;
    char err[SN_ERR_SIZE];

    CHECK_INT(sn_sqs_batch_parse(event, strlen(event), &b, err, sizeof(err)),
              0);
    CHECK_INT(b.fifo, 1);
    CHECK_INT(b.n, 1);
    if (b.n == 1)
        CHECK_INT(b.records[0].receive_count, 1);
    sn_sqs_batch_release(&b);
}

static void batch_response_lists_failed_ids(void)
{
    const char *failed[] = {"m-1", "m\"2"};
    char *empty = sn_batch_response(NULL, 0);
    char *two = sn_batch_response(failed, 2);

    CHECK_STR(empty, "{\"batchItemFailures\":[]}");
    CHECK_STR(two, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m-1\"},"
                   "{\"itemIdentifier\":\"m\\\"2\"}]}");
    free(empty);
    free(two);
}

SN_TEST_MAIN(
    TEST_CASE(key_plus_is_space_and_escapes_decode),
    TEST_CASE(key_escaped_plus_stays_plus),
    TEST_CASE(key_utf8_escapes_decode_to_bytes),
    TEST_CASE(key_malformed_escapes_are_rejected),
    TEST_CASE(key_nul_escape_is_rejected),
    TEST_CASE(key_invalid_utf8_is_rejected),
    TEST_CASE(key_longer_than_buffer_is_rejected),
    TEST_CASE(s3_fixtures_decode_to_upload_keys),
    TEST_CASE(s3_test_event_is_skipped),
    TEST_CASE(s3_mixed_records_keep_uploads_only),
    TEST_CASE(s3_event_through_sqs_is_parsed_twice),
    TEST_CASE(s3_event_versions_2x_only),
    TEST_CASE(event_without_records_is_rejected),
    TEST_CASE(s3_invalid_utf8_key_is_ignored_alone),
    TEST_CASE(s3_event_version_number_is_named),
    TEST_CASE(s3_sqs_body_without_records_is_ignored),
    TEST_CASE(invalid_events_are_rejected_by_both),
    TEST_CASE(null_event_is_not_an_object),
    TEST_CASE(excerpt_cuts_at_character_and_marks),
    TEST_CASE(utf8_repair_replaces_bad_bytes),
    TEST_CASE(sqs_batch_reads_ids_bodies_and_counts),
    TEST_CASE(sqs_batch_problems_are_named),
    TEST_CASE(sqs_overlong_message_id_fails_batch),
    TEST_CASE(sqs_malformed_record_keeps_its_id),
    TEST_CASE(sqs_fifo_queue_is_detected),
    TEST_CASE(batch_response_lists_failed_ids))
