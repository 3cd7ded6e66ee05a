#include "server/http.h"
#include "test.h"

#include <string.h>

static enum sn_http_range range(const char *value, int64_t size,
                                int64_t *first, int64_t *last)
{
    *first = -1;
    *last = -1;
    return sn_http_parse_range(value, size, first, last);
}

static void range_first_and_last_are_inclusive(void)
{
    int64_t a, b;

    CHECK_INT(range("bytes=0-99", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 0);
    CHECK_INT(b, 99);

    CHECK_INT(range("bytes=999-999", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 999);
    CHECK_INT(b, 999);
}

static void range_last_past_end_is_clamped(void)
{
    int64_t a, b;

    CHECK_INT(range("bytes=500-5000", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 500);
    CHECK_INT(b, 999);

    CHECK_INT(range("bytes=10-99999999999999999999999", 1000, &a, &b),
              SN_RANGE_PARTIAL);
    CHECK_INT(b, 999);
}

static void range_open_end_runs_to_last_byte(void)
{
    int64_t a, b;

    CHECK_INT(range("bytes=100-", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 100);
    CHECK_INT(b, 999);
}

static void range_suffix_counts_from_end(void)
{
    int64_t a, b;

    CHECK_INT(range("bytes=-10", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 990);
    CHECK_INT(b, 999);

    /* A suffix longer than the file is the whole file. */
    CHECK_INT(range("bytes=-5000", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 0);
    CHECK_INT(b, 999);
}

static void range_unsatisfiable_cases(void)
{
    int64_t a, b;

    CHECK_INT(range("bytes=1000-", 1000, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=1000-2000", 1000, &a, &b),
              SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=-0", 1000, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=0-", 0, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=-5", 0, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=9-5", 1000, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=abc", 1000, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=5", 1000, &a, &b), SN_RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=1-2x", 1000, &a, &b), SN_RANGE_UNSATISFIABLE);
    /* Nothing is set unless the range is usable. */
    CHECK_INT(a, -1);
    CHECK_INT(b, -1);
}

static void range_ignored_cases_send_whole_file(void)
{
    int64_t a, b;

    CHECK_INT(range("bytes=0-1,5-6", 1000, &a, &b), SN_RANGE_NONE);
    CHECK_INT(range("items=0-1", 1000, &a, &b), SN_RANGE_NONE);
    CHECK_INT(range("", 1000, &a, &b), SN_RANGE_NONE);
}

static void range_unit_is_case_insensitive_and_spaces_allowed(void)
{
    int64_t a, b;

    CHECK_INT(range("Bytes= 5-9 ", 1000, &a, &b), SN_RANGE_PARTIAL);
    CHECK_INT(a, 5);
    CHECK_INT(b, 9);
}

static void etag_matches_weak_strong_and_lists(void)
{
    const char *tag = "\"a1-2f-1234\"";

    CHECK(sn_http_etag_matches("\"a1-2f-1234\"", tag));
    CHECK(sn_http_etag_matches("W/\"a1-2f-1234\"", tag));
    CHECK(sn_http_etag_matches("\"x\", \"a1-2f-1234\"", tag));
    CHECK(sn_http_etag_matches("\"x\",W/\"a1-2f-1234\"", tag));
    CHECK(sn_http_etag_matches("*", tag));
}

static void etag_rejects_other_and_malformed(void)
{
    const char *tag = "\"a1-2f-1234\"";

    CHECK(!sn_http_etag_matches("\"a1-2f-12345\"", tag));
    CHECK(!sn_http_etag_matches("\"a1-2f\"", tag));
    CHECK(!sn_http_etag_matches("a1-2f-1234", tag));
    CHECK(!sn_http_etag_matches("\"unterminated", tag));
    CHECK(!sn_http_etag_matches("\"x\" junk \"a1-2f-1234\"", tag));
    CHECK(!sn_http_etag_matches("", tag));
}

static void gzip_accepted_unless_q_zero(void)
{
    CHECK(sn_http_accepts_gzip("gzip"));
    CHECK(sn_http_accepts_gzip("gzip, deflate, br"));
    CHECK(sn_http_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    CHECK(sn_http_accepts_gzip("x-gzip"));
    CHECK(sn_http_accepts_gzip("*"));
    CHECK(sn_http_accepts_gzip("gzip;q=0.001"));

    CHECK(!sn_http_accepts_gzip(""));
    CHECK(!sn_http_accepts_gzip("identity"));
    CHECK(!sn_http_accepts_gzip("deflate, br"));
    CHECK(!sn_http_accepts_gzip("gzip;q=0"));
    CHECK(!sn_http_accepts_gzip("gzip; q=0.000"));
    CHECK(!sn_http_accepts_gzip("*;q=0"));
    /* An explicit gzip entry wins over the wildcard. */
    CHECK(!sn_http_accepts_gzip("*, gzip;q=0"));
    CHECK(!sn_http_accepts_gzip("gzipper"));
}

static void path_valid_accepts_plain_paths(void)
{
    CHECK(sn_http_path_valid("3fa2b9c1d0e4a5b6/1/master.m3u8"));
    CHECK(sn_http_path_valid("id/1/720p/seg_00001.m4s"));
    CHECK(sn_http_path_valid("a"));
    CHECK(sn_http_path_valid("name with spaces/\xc3\xa9.jpg"));
}

static void path_valid_rejects_traversal_and_hidden(void)
{
    char long_path[SN_HTTP_MAX_PATH + 2];

    CHECK(!sn_http_path_valid(""));
    CHECK(!sn_http_path_valid(".."));
    CHECK(!sn_http_path_valid("../x"));
    CHECK(!sn_http_path_valid("a/../b"));
    CHECK(!sn_http_path_valid("a/./b"));
    CHECK(!sn_http_path_valid(".tmp/x"));
    CHECK(!sn_http_path_valid("a/.hidden"));
    CHECK(!sn_http_path_valid("/etc/passwd"));
    CHECK(!sn_http_path_valid("a//b"));
    CHECK(!sn_http_path_valid("a/"));
    CHECK(!sn_http_path_valid("a\\b"));
    CHECK(!sn_http_path_valid("a\x01" "b"));
    CHECK(!sn_http_path_valid("a\nb"));
    CHECK(!sn_http_path_valid("a\x7f"));
    CHECK(!sn_http_path_valid("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17"));

    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    CHECK(!sn_http_path_valid(long_path));
}

static void unescape_decodes_and_guards_nul(void)
{
    char s1[] = "/stream/my%20clip%C3%A9.mp4";
    char s2[] = "/hls/a.m3u8%00.jpg";
    char s3[] = "100%-bad%zz%4";
    char s4[] = "a+b%2B";

    CHECK_INT(sn_http_unescape(s1), strlen("/stream/my clip\xc3\xa9.mp4"));
    CHECK_STR(s1, "/stream/my clip\xc3\xa9.mp4");

    sn_http_unescape(s2);
    CHECK_STR(s2, "/hls/a.m3u8\x01.jpg");
    CHECK(!sn_http_path_valid(s2 + 5));

    sn_http_unescape(s3);
    CHECK_STR(s3, "100%-bad%zz%4");

    sn_http_unescape(s4);
    CHECK_STR(s4, "a+b+");
}

static void type_of_maps_extensions(void)
{
    CHECK_STR(sn_http_type_of("master.m3u8")->content_type,
              "application/vnd.apple.mpegurl");
    CHECK_STR(sn_http_type_of("seg_00001.m4s")->content_type,
              "video/iso.segment");
    CHECK_STR(sn_http_type_of("init.mp4")->content_type, "video/mp4");
    CHECK_STR(sn_http_type_of("seg_00001.ts")->content_type, "video/mp2t");
    CHECK_STR(sn_http_type_of("seg.aac")->content_type, "audio/aac");
    CHECK_STR(sn_http_type_of("poster.jpg")->content_type, "image/jpeg");
    CHECK_STR(sn_http_type_of("x.json")->content_type, "application/json");
    CHECK_INT(sn_http_type_of("seg_00001.m4s")->cache, SN_CACHE_IMMUTABLE);
    CHECK_INT(sn_http_type_of("index.m3u8")->cache, SN_CACHE_PLAYLIST);
    CHECK_INT(sn_http_type_of("index.html")->hls, 0);

    CHECK(sn_http_type_of("README") == NULL);
    CHECK(sn_http_type_of("a.exe") == NULL);
    CHECK(sn_http_type_of("a.M3U8") == NULL);
    CHECK(sn_http_type_of("dir.m3u8/file") == NULL);
}

static void same_origin_compares_host(void)
{
    CHECK(sn_http_same_origin(NULL, "127.0.0.1:8080"));
    CHECK(sn_http_same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
    CHECK(sn_http_same_origin("HTTP://LOCALHOST:8080", "localhost:8080"));
    CHECK(sn_http_same_origin("https://example.org", "example.org"));

    CHECK(!sn_http_same_origin("http://evil.example", "127.0.0.1:8080"));
    CHECK(!sn_http_same_origin("http://127.0.0.1:9", "127.0.0.1:8080"));
    CHECK(!sn_http_same_origin("null", "127.0.0.1:8080"));
    CHECK(!sn_http_same_origin("http://127.0.0.1:8080", NULL));
}

static void length_parses_digits_only(void)
{
    int64_t n = -1;

    CHECK_INT(sn_http_parse_length("0", &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(sn_http_parse_length("8589934592", &n), 0);
    CHECK_INT(n, 8589934592LL);

    CHECK_INT(sn_http_parse_length("", &n), -1);
    CHECK_INT(sn_http_parse_length("-1", &n), -1);
    CHECK_INT(sn_http_parse_length("+1", &n), -1);
    CHECK_INT(sn_http_parse_length("12 ", &n), -1);
    CHECK_INT(sn_http_parse_length("1e9", &n), -1);
    CHECK_INT(sn_http_parse_length("99999999999999999999", &n), -1);
}

static void lengths_agree_only_on_equal_values(void)
{
    CHECK(sn_http_lengths_agree("42", "42"));
    CHECK(sn_http_lengths_agree("42", "042"));

    CHECK(!sn_http_lengths_agree("3", "5"));
    CHECK(!sn_http_lengths_agree("3", "abc"));
    CHECK(!sn_http_lengths_agree("", ""));
}

static void host_name_drops_port_and_brackets(void)
{
    char name[64];

    CHECK_INT(sn_http_host_name("127.0.0.1:8080", name, sizeof(name)), 0);
    CHECK_STR(name, "127.0.0.1");
    CHECK_INT(sn_http_host_name("localhost", name, sizeof(name)), 0);
    CHECK_STR(name, "localhost");
    CHECK_INT(sn_http_host_name("[::1]:80", name, sizeof(name)), 0);
    CHECK_STR(name, "::1");
    CHECK_INT(sn_http_host_name("[::1]", name, sizeof(name)), 0);
    CHECK_STR(name, "::1");
    CHECK_INT(sn_http_host_name("example.org:", name, sizeof(name)), 0);
    CHECK_STR(name, "example.org");

    CHECK_INT(sn_http_host_name("", name, sizeof(name)), -1);
    CHECK_INT(sn_http_host_name(":80", name, sizeof(name)), -1);
    CHECK_INT(sn_http_host_name("::1", name, sizeof(name)), -1);
    CHECK_INT(sn_http_host_name("[::1", name, sizeof(name)), -1);
    CHECK_INT(sn_http_host_name("[::1]x", name, sizeof(name)), -1);
    CHECK_INT(sn_http_host_name("a:8080x", name, sizeof(name)), -1);
    CHECK_INT(sn_http_host_name("a-long-host-name", name, 8), -1);
}

static void host_allowed_on_loopback_server(void)
{
    CHECK(sn_http_host_allowed("127.0.0.1:8080", "127.0.0.1"));
    CHECK(sn_http_host_allowed("127.1.2.3", "127.0.0.1"));
    CHECK(sn_http_host_allowed("LOCALHOST:8080", "127.0.0.1"));
    CHECK(sn_http_host_allowed("[::1]:8080", "127.0.0.1"));
    CHECK(sn_http_host_allowed("myhost:8080", "MyHost"));
    CHECK(sn_http_host_allowed("[::1]:8080", "[::1]"));

    CHECK(!sn_http_host_allowed("attacker.example:8080", "127.0.0.1"));
    CHECK(!sn_http_host_allowed("localhost.attacker.example", "localhost"));
    CHECK(!sn_http_host_allowed("128.0.0.1", "127.0.0.1"));
    CHECK(!sn_http_host_allowed("[::2]", "::1"));
    CHECK(!sn_http_host_allowed("", "127.0.0.1"));
    CHECK(!sn_http_host_allowed("127.0.0.1:80:80", "127.0.0.1"));
}

static void quote_cuts_long_text_at_character(void)
{
    char out[SN_HTTP_QUOTE_MAX + 4];
    char long_text[SN_HTTP_QUOTE_MAX + 50];

    CHECK_STR(sn_http_quote("short", out), "short");

    memset(long_text, 'a', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    sn_http_quote(long_text, out);
    CHECK_INT(strlen(out), SN_HTTP_QUOTE_MAX + 3);
    CHECK_STR(out + SN_HTTP_QUOTE_MAX, "...");

    /* A two-byte character across the cut is left out whole. */
    long_text[SN_HTTP_QUOTE_MAX - 1] = '\xc3';
    long_text[SN_HTTP_QUOTE_MAX] = '\xa9';
    sn_http_quote(long_text, out);
    CHECK_INT(strlen(out), SN_HTTP_QUOTE_MAX + 2);
    CHECK_STR(out + SN_HTTP_QUOTE_MAX - 1, "...");
}

static void dates_round_trip(void)
{
    char text[32];
    int64_t t = -1;

    sn_http_format_date(784111777, text, sizeof(text));
    CHECK_STR(text, "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK_INT(sn_http_parse_date(text, &t), 0);
    CHECK_INT(t, 784111777);

    CHECK_INT(sn_http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), -1);
    CHECK_INT(sn_http_parse_date("Sun Nov  6 08:49:37 1994", &t), -1);
    CHECK_INT(sn_http_parse_date("Sun, 06 Foo 1994 08:49:37 GMT", &t), -1);
    CHECK_INT(sn_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT x", &t),
              -1);
}

static void iso8601_has_milliseconds_and_z(void)
{
    char text[32];

    sn_http_format_iso8601(784111777250LL, text, sizeof(text));
    CHECK_STR(text, "1994-11-06T08:49:37.250Z");
}

static void playlist_final_needs_endlist(void)
{
    const char *final = "#EXTINF:6.0,\nseg_00009.m4s\n#EXT-X-ENDLIST\n";
    const char *open = "#EXTINF:6.0,\nseg_00009.m4s\n";

    CHECK(sn_http_playlist_final(final, strlen(final)));
    CHECK(!sn_http_playlist_final(open, strlen(open)));
    CHECK(!sn_http_playlist_final("#EXT-X-ENDLIS", 13));
}

SN_TEST_MAIN(
    TEST_CASE(range_first_and_last_are_inclusive),
    TEST_CASE(range_last_past_end_is_clamped),
    TEST_CASE(range_open_end_runs_to_last_byte),
    TEST_CASE(range_suffix_counts_from_end),
    TEST_CASE(range_unsatisfiable_cases),
    TEST_CASE(range_ignored_cases_send_whole_file),
    TEST_CASE(range_unit_is_case_insensitive_and_spaces_allowed),
    TEST_CASE(etag_matches_weak_strong_and_lists),
    TEST_CASE(etag_rejects_other_and_malformed),
    TEST_CASE(gzip_accepted_unless_q_zero),
    TEST_CASE(path_valid_accepts_plain_paths),
    TEST_CASE(path_valid_rejects_traversal_and_hidden),
    TEST_CASE(unescape_decodes_and_guards_nul),
    TEST_CASE(type_of_maps_extensions),
    TEST_CASE(same_origin_compares_host),
    TEST_CASE(length_parses_digits_only),
    TEST_CASE(lengths_agree_only_on_equal_values),
    TEST_CASE(host_name_drops_port_and_brackets),
    TEST_CASE(host_allowed_on_loopback_server),
    TEST_CASE(quote_cuts_long_text_at_character),
    TEST_CASE(dates_round_trip),
    TEST_CASE(iso8601_has_milliseconds_and_z),
    TEST_CASE(playlist_final_needs_endlist))
