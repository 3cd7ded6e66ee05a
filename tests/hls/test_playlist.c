#include "hls/playlist.h"

#include <math.h>
#include <stdlib.h>

#include "test.h"

/* Renders, compares with the expected text, frees. */
#define CHECK_MEDIA(model, expected)                                        \
    do {                                                                    \
        char *text_ = sn_hls_render_media(model);                           \
        CHECK_STR(text_, expected);                                         \
        free(text_);                                                        \
    } while (0)

#define CHECK_MASTER(model, expected)                                       \
    do {                                                                    \
        char *text_ = sn_hls_render_master(model);                          \
        CHECK_STR(text_, expected);                                         \
        free(text_);                                                        \
    } while (0)

static const struct sn_hls_segment vod_segments[] = {
    {.uri = "seg_00000.m4s", .duration = 6.006},
    {.uri = "seg_00001.m4s", .duration = 6.006},
    {.uri = "seg_00002.m4s", .duration = 3.503},
};

static void vod_fmp4_playlist_matches_expected_text(void)
{
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .map_uri = "init.mp4",
        .segments = vod_segments,
        .n_segments = 3,
    };

    CHECK_MEDIA(&p,
                "#EXTM3U\n"
                "#EXT-X-VERSION:7\n"
                "#EXT-X-TARGETDURATION:6\n"
                "#EXT-X-MEDIA-SEQUENCE:0\n"
                "#EXT-X-PLAYLIST-TYPE:VOD\n"
                "#EXT-X-INDEPENDENT-SEGMENTS\n"
                "#EXT-X-MAP:URI=\"init.mp4\"\n"
                "#EXTINF:6.006000,\n"
                "seg_00000.m4s\n"
                "#EXTINF:6.006000,\n"
                "seg_00001.m4s\n"
                "#EXTINF:3.503000,\n"
                "seg_00002.m4s\n"
                "#EXT-X-ENDLIST\n");
}

static void media_playlist_vod_ends_with_endlist(void)
{
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .segments = vod_segments,
        .n_segments = 1,
    };
    char *text = sn_hls_render_media(&p);
    const char *tail = "\n#EXT-X-ENDLIST\n";

    CHECK(text != NULL);
    if (text != NULL) {
        size_t n = strlen(text);

        CHECK(n > strlen(tail) &&
              strcmp(text + n - strlen(tail), tail) == 0);
    }
    free(text);
}

static void event_playlist_has_no_endlist(void)
{
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_EVENT,
        .version = 7,
        .target_duration = 6,
        .map_uri = "init.mp4",
        .segments = vod_segments,
        .n_segments = 2,
    };

    CHECK_MEDIA(&p,
                "#EXTM3U\n"
                "#EXT-X-VERSION:7\n"
                "#EXT-X-TARGETDURATION:6\n"
                "#EXT-X-MEDIA-SEQUENCE:0\n"
                "#EXT-X-PLAYLIST-TYPE:EVENT\n"
                "#EXT-X-INDEPENDENT-SEGMENTS\n"
                "#EXT-X-MAP:URI=\"init.mp4\"\n"
                "#EXTINF:6.006000,\n"
                "seg_00000.m4s\n"
                "#EXTINF:6.006000,\n"
                "seg_00001.m4s\n");
}

static void iframe_playlist_writes_byte_ranges(void)
{
    static const struct sn_hls_segment iframes[] = {
        {.uri = "seg_00000.m4s", .duration = 2.002,
         .byte_offset = 0, .byte_length = 48213},
        {.uri = "seg_00000.m4s", .duration = 2.002,
         .byte_offset = 401234, .byte_length = 39876},
        {.uri = "seg_00001.m4s", .duration = 1.5015,
         .byte_offset = 1024, .byte_length = 51000},
    };
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .map_uri = "init.mp4",
        .iframes_only = 1,
        .segments = iframes,
        .n_segments = 3,
    };

    CHECK_MEDIA(&p,
                "#EXTM3U\n"
                "#EXT-X-VERSION:7\n"
                "#EXT-X-TARGETDURATION:2\n"
                "#EXT-X-MEDIA-SEQUENCE:0\n"
                "#EXT-X-PLAYLIST-TYPE:VOD\n"
                "#EXT-X-INDEPENDENT-SEGMENTS\n"
                "#EXT-X-I-FRAMES-ONLY\n"
                "#EXT-X-MAP:URI=\"init.mp4\"\n"
                "#EXTINF:2.002000,\n"
                "#EXT-X-BYTERANGE:48213@0\n"
                "seg_00000.m4s\n"
                "#EXTINF:2.002000,\n"
                "#EXT-X-BYTERANGE:39876@401234\n"
                "seg_00000.m4s\n"
                "#EXTINF:1.501500,\n"
                "#EXT-X-BYTERANGE:51000@1024\n"
                "seg_00001.m4s\n"
                "#EXT-X-ENDLIST\n");
}

static void playlist_without_map_has_no_map_tag(void)
{
    static const struct sn_hls_segment ts[] = {
        {.uri = "a.ts", .duration = 4.0},
    };
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 3,
        .target_duration = 4,
        .segments = ts,
        .n_segments = 1,
    };

    CHECK_MEDIA(&p,
                "#EXTM3U\n"
                "#EXT-X-VERSION:3\n"
                "#EXT-X-TARGETDURATION:4\n"
                "#EXT-X-MEDIA-SEQUENCE:0\n"
                "#EXT-X-PLAYLIST-TYPE:VOD\n"
                "#EXT-X-INDEPENDENT-SEGMENTS\n"
                "#EXTINF:4.000000,\n"
                "a.ts\n"
                "#EXT-X-ENDLIST\n");
}

static void target_duration_rounds_to_nearest(void)
{
    struct sn_hls_segment s[2] = {
        {.uri = "a.m4s", .duration = 6.006},
        {.uri = "b.m4s", .duration = 2.0},
    };

    CHECK_INT(sn_hls_target_duration(s, 2), 6);
    s[1].duration = 6.5;
    CHECK_INT(sn_hls_target_duration(s, 2), 7);
    s[1].duration = 6.49;
    CHECK_INT(sn_hls_target_duration(s, 2), 6);
    s[0].duration = 10.0;
    CHECK_INT(sn_hls_target_duration(s, 2), 10);
}

static void target_duration_is_at_least_one(void)
{
    const struct sn_hls_segment s[1] = {{.uri = "a.m4s", .duration = 0.3}};

    CHECK_INT(sn_hls_target_duration(s, 1), 1);
    CHECK_INT(sn_hls_target_duration(NULL, 0), 1);
}

static void given_target_duration_below_longest_segment_is_raised(void)
{
    const struct sn_hls_segment s[1] = {{.uri = "a.m4s", .duration = 6.5}};
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .target_duration = 4,
        .segments = s,
        .n_segments = 1,
    };
    char *text = sn_hls_render_media(&p);

    CHECK(text != NULL && strstr(text, "#EXT-X-TARGETDURATION:7\n") != NULL);
    free(text);

    p.target_duration = 10;
    text = sn_hls_render_media(&p);
    CHECK(text != NULL && strstr(text, "#EXT-X-TARGETDURATION:10\n") != NULL);
    free(text);
}

static void media_playlist_rejects_bad_uris(void)
{
    struct sn_hls_segment s[1] = {{.uri = "a.m4s", .duration = 6.0}};
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .map_uri = "init.mp4",
        .segments = s,
        .n_segments = 1,
    };
    char *text = sn_hls_render_media(&p);

    CHECK(text != NULL);
    free(text);

    p.map_uri = "in\"it.mp4";
    CHECK(sn_hls_render_media(&p) == NULL);
    p.map_uri = "init.mp4\r";
    CHECK(sn_hls_render_media(&p) == NULL);
    p.map_uri = "init.mp4";

    s[0].uri = "a.m4s\n#EXT-X-ENDLIST";
    CHECK(sn_hls_render_media(&p) == NULL);
    s[0].uri = "a\rb.m4s";
    CHECK(sn_hls_render_media(&p) == NULL);
    s[0].uri = "a\".m4s";
    CHECK(sn_hls_render_media(&p) == NULL);
    s[0].uri = NULL;
    CHECK(sn_hls_render_media(&p) == NULL);
    s[0].uri = "";
    CHECK(sn_hls_render_media(&p) == NULL);
}

static void media_playlist_rejects_bad_durations(void)
{
    struct sn_hls_segment s[2] = {
        {.uri = "a.m4s", .duration = 6.0},
        {.uri = "b.m4s", .duration = -0.5},
    };
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .segments = s,
        .n_segments = 2,
    };

    CHECK(sn_hls_render_media(&p) == NULL);
    s[1].duration = NAN;
    CHECK(sn_hls_render_media(&p) == NULL);
    s[1].duration = INFINITY;
    CHECK(sn_hls_render_media(&p) == NULL);
}

static void media_playlist_is_deterministic(void)
{
    struct sn_media_playlist p = {
        .type = SN_PLAYLIST_VOD,
        .version = 7,
        .map_uri = "init.mp4",
        .segments = vod_segments,
        .n_segments = 3,
    };
    char *a = sn_hls_render_media(&p);
    char *b = sn_hls_render_media(&p);

    CHECK(a != NULL && b != NULL && strcmp(a, b) == 0);
    free(a);
    free(b);
}

static const struct sn_hls_audio stereo = {
    .group_id = "aac",
    .name = "English",
    .uri = "audio/index.m3u8",
    .channels = 2,
};

static const struct sn_hls_variant ladder[] = {
    {
        .uri = "1080p/index.m3u8",
        .iframe_uri = "1080p/iframes.m3u8",
        .bandwidth = 6500000,
        .average_bandwidth = 5000000,
        .iframe_bandwidth = 900000,
        .codecs = "avc1.640028,mp4a.40.2",
        .video_codec = "avc1.640028",
        .width = 1920,
        .height = 1080,
        .frame_rate = 29.97,
        .audio_group = "aac",
    },
    {
        .uri = "360p/index.m3u8",
        .iframe_uri = "360p/iframes.m3u8",
        .bandwidth = 1000000,
        .average_bandwidth = 800000,
        .iframe_bandwidth = 150000,
        .codecs = "avc1.4d401e,mp4a.40.2",
        .video_codec = "avc1.4d401e",
        .width = 640,
        .height = 360,
        .frame_rate = 30.0,
        .audio_group = "aac",
    },
};

static void master_with_audio_matches_expected_text(void)
{
    struct sn_master_playlist p = {
        .version = 7,
        .audio = &stereo,
        .variants = ladder,
        .n_variants = 2,
    };

    CHECK_MASTER(&p,
                 "#EXTM3U\n"
                 "#EXT-X-VERSION:7\n"
                 "#EXT-X-INDEPENDENT-SEGMENTS\n"
                 "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\","
                 "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\","
                 "URI=\"audio/index.m3u8\"\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=6500000,"
                 "AVERAGE-BANDWIDTH=5000000,CODECS=\"avc1.640028,mp4a.40.2\","
                 "RESOLUTION=1920x1080,FRAME-RATE=29.970,AUDIO=\"aac\"\n"
                 "1080p/index.m3u8\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=1000000,"
                 "AVERAGE-BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\","
                 "RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"aac\"\n"
                 "360p/index.m3u8\n"
                 "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=900000,"
                 "CODECS=\"avc1.640028\",RESOLUTION=1920x1080,"
                 "URI=\"1080p/iframes.m3u8\"\n"
                 "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=150000,"
                 "CODECS=\"avc1.4d401e\",RESOLUTION=640x360,"
                 "URI=\"360p/iframes.m3u8\"\n");
}

static void master_without_audio_matches_expected_text(void)
{
    const struct sn_hls_variant variants[] = {
        {
            .uri = "720p/index.m3u8",
            .bandwidth = 3000000,
            .average_bandwidth = 2500000,
            .codecs = "avc1.64001f",
            .video_codec = "avc1.64001f",
            .width = 1280,
            .height = 720,
            .frame_rate = 23.976,
        },
        {
            .uri = "480p/index.m3u8",
            .iframe_uri = "480p/iframes.m3u8",
            .bandwidth = 1500000,
            .average_bandwidth = 1200000,
            .iframe_bandwidth = 200000,
            .codecs = "avc1.64001e",
            .video_codec = "avc1.64001e",
            .width = 854,
            .height = 480,
        },
    };
    struct sn_master_playlist p = {
        .version = 7,
        .variants = variants,
        .n_variants = 2,
    };

    CHECK_MASTER(&p,
                 "#EXTM3U\n"
                 "#EXT-X-VERSION:7\n"
                 "#EXT-X-INDEPENDENT-SEGMENTS\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=3000000,"
                 "AVERAGE-BANDWIDTH=2500000,CODECS=\"avc1.64001f\","
                 "RESOLUTION=1280x720,FRAME-RATE=23.976\n"
                 "720p/index.m3u8\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=1500000,"
                 "AVERAGE-BANDWIDTH=1200000,CODECS=\"avc1.64001e\","
                 "RESOLUTION=854x480\n"
                 "480p/index.m3u8\n"
                 "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,"
                 "CODECS=\"avc1.64001e\",RESOLUTION=854x480,"
                 "URI=\"480p/iframes.m3u8\"\n");
}

static void audio_only_master_has_no_resolution(void)
{
    const struct sn_hls_variant variants[] = {
        {
            .uri = "audio/index.m3u8",
            .bandwidth = 132000,
            .average_bandwidth = 128000,
            .codecs = "mp4a.40.2",
        },
    };
    struct sn_master_playlist p = {
        .version = 7,
        .variants = variants,
        .n_variants = 1,
    };

    CHECK_MASTER(&p,
                 "#EXTM3U\n"
                 "#EXT-X-VERSION:7\n"
                 "#EXT-X-INDEPENDENT-SEGMENTS\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=132000,"
                 "AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\n"
                 "audio/index.m3u8\n");
}

static void master_keeps_variants_in_given_order(void)
{
    const struct sn_hls_variant variants[] = {ladder[1], ladder[0]};
    struct sn_master_playlist p = {
        .version = 7,
        .audio = &stereo,
        .variants = variants,
        .n_variants = 2,
    };
    char *text = sn_hls_render_master(&p);
    const char *low, *high;

    CHECK(text != NULL);
    if (text != NULL) {
        low = strstr(text, "\n360p/index.m3u8\n");
        high = strstr(text, "\n1080p/index.m3u8\n");
        CHECK(low != NULL && high != NULL && low < high);
        low = strstr(text, "URI=\"360p/iframes.m3u8\"");
        high = strstr(text, "URI=\"1080p/iframes.m3u8\"");
        CHECK(low != NULL && high != NULL && low < high);
    }
    free(text);
}

static void master_rejects_bad_uris_and_attributes(void)
{
    struct sn_hls_audio audio = stereo;
    struct sn_hls_variant v = ladder[0];
    struct sn_master_playlist p = {
        .version = 7,
        .audio = &audio,
        .variants = &v,
        .n_variants = 1,
    };
    char *text = sn_hls_render_master(&p);

    CHECK(text != NULL);
    free(text);

    v.uri = "1080p/index.m3u8\n#EXT-X-ENDLIST";
    CHECK(sn_hls_render_master(&p) == NULL);
    v.uri = NULL;
    CHECK(sn_hls_render_master(&p) == NULL);
    v.uri = ladder[0].uri;

    v.iframe_uri = "1080p/\"iframes.m3u8";
    CHECK(sn_hls_render_master(&p) == NULL);
    v.iframe_uri = ladder[0].iframe_uri;

    v.codecs = "avc1.640028\",mp4a.40.2";
    CHECK(sn_hls_render_master(&p) == NULL);
    v.codecs = ladder[0].codecs;

    audio.uri = "audio/index.m3u8\r";
    CHECK(sn_hls_render_master(&p) == NULL);
    audio.uri = stereo.uri;

    audio.name = "Eng\"lish";
    CHECK(sn_hls_render_master(&p) == NULL);
    audio.name = stereo.name;

    /* AUDIO must name the GROUP-ID of the rendition. */
    v.audio_group = "other";
    CHECK(sn_hls_render_master(&p) == NULL);
    p.audio = NULL;
    v.audio_group = "aac";
    CHECK(sn_hls_render_master(&p) == NULL);
}

SN_TEST_MAIN(
    TEST_CASE(vod_fmp4_playlist_matches_expected_text),
    TEST_CASE(media_playlist_vod_ends_with_endlist),
    TEST_CASE(event_playlist_has_no_endlist),
    TEST_CASE(iframe_playlist_writes_byte_ranges),
    TEST_CASE(playlist_without_map_has_no_map_tag),
    TEST_CASE(target_duration_rounds_to_nearest),
    TEST_CASE(target_duration_is_at_least_one),
    TEST_CASE(given_target_duration_below_longest_segment_is_raised),
    TEST_CASE(media_playlist_rejects_bad_uris),
    TEST_CASE(media_playlist_rejects_bad_durations),
    TEST_CASE(media_playlist_is_deterministic),
    TEST_CASE(master_with_audio_matches_expected_text),
    TEST_CASE(master_without_audio_matches_expected_text),
    TEST_CASE(audio_only_master_has_no_resolution),
    TEST_CASE(master_keeps_variants_in_given_order),
    TEST_CASE(master_rejects_bad_uris_and_attributes))
