/* ladder.h uses size_t without including <stddef.h>. */
#include <stddef.h>

#include "plan/ladder.h"
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <math.h>

struct expect {
    const char *name;
    int width;
    int height;
    int maxrate;
};

static struct sn_video_geometry geometry(int w, int h, int sar_num,
                                         int sar_den, int transposed,
                                         double fps)
{
    struct sn_video_geometry g = {w, h, sar_num, sar_den, transposed, fps};

    return g;
}

/* Runs the default ladder on g and compares the rungs with want. */
static void check_ladder(const struct sn_video_geometry *g,
                         const struct sn_ladder_config *cfg,
                         const struct expect *want, int n_want)
{
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = -1;

    CHECK_INT(sn_ladder_choose(g, cfg, rungs, &n), 0);
    CHECK_INT(n, n_want);
    for (int i = 0; i < n && i < n_want; i++) {
        CHECK_STR(rungs[i].name, want[i].name);
        CHECK_INT(rungs[i].width, want[i].width);
        CHECK_INT(rungs[i].height, want[i].height);
        if (want[i].maxrate > 0) {
            CHECK_INT(rungs[i].maxrate, want[i].maxrate);
            CHECK_INT(rungs[i].bufsize, 2 * want[i].maxrate);
        }
    }
}

static void ladder_config_defaults_follow_the_apple_ladder(void)
{
    /* Apple's short sides, with 234 moved to 236, a multiple of 4. */
    static const int want[] = {236, 360, 432, 540, 720, 1080};
    struct sn_ladder_config cfg;

    sn_ladder_config_init(&cfg);
    CHECK_INT(cfg.n_short_sides, 6);
    for (int i = 0; i < 6; i++)
        CHECK_INT(cfg.short_sides[i], want[i]);
    CHECK_INT(cfg.enable_2160p, 0);
    CHECK_INT(cfg.crf, 21);
    CHECK(cfg.max_frame_rate == 60.0);
}

static void ladder_display_size_applies_sar_to_the_width(void)
{
    struct sn_video_geometry g = geometry(720, 360, 8, 9, 0, 25);
    int w = 0, h = 0;

    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 640);
    CHECK_INT(h, 360);

    g = geometry(800, 640, 1137, 800, 0, 25);
    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 1137);
    CHECK_INT(h, 640);

    /* Anamorphic widescreen DVD: 720x576 at 64:45 shows as 1024x576. */
    g = geometry(720, 576, 64, 45, 0, 25);
    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 1024);
    CHECK_INT(h, 576);
}

static void ladder_display_size_is_square_when_sar_is_unset(void)
{
    static const int sars[][2] = {{0, 0}, {0, 1}, {1, 0}, {-4, 3}, {1, 1}};
    int w = 0, h = 0;

    for (size_t i = 0; i < sizeof(sars) / sizeof(sars[0]); i++) {
        struct sn_video_geometry g =
            geometry(1920, 1080, sars[i][0], sars[i][1], 0, 30);

        sn_display_size(&g, &w, &h);
        CHECK_INT(w, 1920);
        CHECK_INT(h, 1080);
    }
}

static void ladder_display_size_swaps_axes_when_transposed(void)
{
    struct sn_video_geometry g = geometry(1080, 720, 0, 1, 1, 30);
    int w = 0, h = 0;

    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 720);
    CHECK_INT(h, 1080);

    /* The SAR stretches the coded width before the swap. */
    g = geometry(720, 360, 8, 9, 1, 30);
    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 360);
    CHECK_INT(h, 640);
}

static void ladder_display_size_is_at_least_two_and_never_overflows(void)
{
    struct sn_video_geometry g = geometry(1, 1, 0, 0, 0, 0);
    int w = 0, h = 0;

    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 2);
    CHECK_INT(h, 2);

    g = geometry(100, 100, 1, 1000, 0, 0);
    sn_display_size(&g, &w, &h);
    CHECK_INT(w, 2);
    CHECK_INT(h, 100);

    g = geometry(INT_MAX, 100, INT_MAX, 1, 0, 0);
    sn_display_size(&g, &w, &h);
    CHECK_INT(w, INT_MAX);
    CHECK_INT(h, 100);
}

static void ladder_1080p_source_gets_the_full_default_ladder(void)
{
    /*
     * 236 * 1920 / 1080 = 419.6 rounds to 420. The other rungs are table
     * entries and get the table's rate. 420x236 has 99120 pixels, a little
     * more than the 16:9 area 16 * 236^2 / 9 = 99015.1 that ladder.c scales
     * the table's 145 kbit/s by, so its rate is 145000 * 99120 / 99015.1.
     */
    static const struct expect want[] = {
        {"236p", 420, 236, 145154},    {"360p", 640, 360, 365000},
        {"432p", 768, 432, 1100000},   {"540p", 960, 540, 2000000},
        {"720p", 1280, 720, 4500000},  {"1080p", 1920, 1080, 7800000},
    };
    struct sn_video_geometry g = geometry(1920, 1080, 1, 1, 0, 30);
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    check_ladder(&g, &cfg, want, 6);

    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    for (int i = 0; i < n; i++) {
        CHECK_INT(rungs[i].crf, 21);
        CHECK(rungs[i].frame_rate == 30.0);
    }
}

static void ladder_2160p_rung_only_when_enabled(void)
{
    struct sn_video_geometry uhd = geometry(3840, 2160, 0, 0, 0, 30);
    struct sn_video_geometry fhd = geometry(1920, 1080, 0, 0, 0, 30);
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    CHECK_INT(sn_ladder_choose(&uhd, &cfg, rungs, &n), 0);
    CHECK_INT(n, 6);
    CHECK_STR(rungs[n - 1].name, "1080p");

    cfg.enable_2160p = 1;
    CHECK_INT(sn_ladder_choose(&uhd, &cfg, rungs, &n), 0);
    CHECK_INT(n, 7);
    CHECK_STR(rungs[n - 1].name, "2160p");
    CHECK_INT(rungs[n - 1].width, 3840);
    CHECK_INT(rungs[n - 1].height, 2160);
    CHECK_INT(rungs[n - 1].maxrate, 16800000);
    CHECK_INT(rungs[n - 1].bufsize, 33600000);

    /* Enabled, but a 1080p source still does not get upscaled to it. */
    CHECK_INT(sn_ladder_choose(&fhd, &cfg, rungs, &n), 0);
    CHECK_INT(n, 6);
    CHECK_STR(rungs[n - 1].name, "1080p");
}

static void ladder_2160p_is_inserted_in_order_into_a_custom_list(void)
{
    struct sn_video_geometry g = geometry(7680, 4320, 0, 0, 0, 30);
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    cfg.short_sides[0] = 360;
    cfg.short_sides[1] = 2880;
    cfg.n_short_sides = 2;
    cfg.enable_2160p = 1;
    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    CHECK_INT(n, 3);
    CHECK_STR(rungs[0].name, "360p");
    CHECK_STR(rungs[1].name, "2160p");
    CHECK_STR(rungs[2].name, "2880p");
    CHECK_INT(rungs[2].width, 5120);

    /* Already listed: not added twice. */
    cfg.short_sides[1] = 2160;
    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    CHECK_INT(n, 2);
}

static void ladder_2160p_on_a_full_list_keeps_the_largest_rungs(void)
{
    struct sn_video_geometry g = geometry(3840, 2160, 0, 0, 0, 30);
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    for (int i = 0; i < SN_LADDER_MAX; i++)
        cfg.short_sides[i] = 100 * (i + 1);
    cfg.n_short_sides = SN_LADDER_MAX;
    cfg.enable_2160p = 1;
    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    CHECK_INT(n, SN_LADDER_MAX);
    CHECK_STR(rungs[0].name, "200p");
    CHECK_STR(rungs[SN_LADDER_MAX - 1].name, "2160p");
}

static void ladder_never_upscales_720p_source(void)
{
    static const struct expect want[] = {
        {"236p", 420, 236, 145154},   {"360p", 640, 360, 365000},
        {"432p", 768, 432, 1100000},  {"540p", 960, 540, 2000000},
        {"720p", 1280, 720, 4500000},
    };
    struct sn_video_geometry g = geometry(1280, 720, 1, 1, 0, 25);
    struct sn_ladder_config cfg;

    sn_ladder_config_init(&cfg);
    cfg.enable_2160p = 1;
    check_ladder(&g, &cfg, want, 5);
}

static void ladder_rung_is_never_longer_than_the_source(void)
{
    /*
     * 720 * 1283 / 720 = 1283 rounds to 1284, one pixel longer than the
     * source, so the 720p rung is capped at 1280, the source's 1283
     * rounded down to a multiple of 4. 540 * 1283 / 720 = 962.25 rounds
     * to 964, which fits.
     */
    static const struct expect want[] = {
        {"236p", 420, 236, 0},  {"360p", 640, 360, 0},
        {"432p", 768, 432, 0},  {"540p", 964, 540, 0},
        {"720p", 1280, 720, 0},
    };
    static const struct expect portrait[] = {
        {"236p", 236, 420, 0},  {"360p", 360, 640, 0},
        {"432p", 432, 768, 0},  {"540p", 540, 964, 0},
        {"720p", 720, 1280, 0},
    };
    struct sn_video_geometry g = geometry(1283, 720, 0, 0, 0, 25);
    struct sn_ladder_config cfg;

    sn_ladder_config_init(&cfg);
    check_ladder(&g, &cfg, want, 5);

    /* The cap applies to the height of a portrait source too. */
    g = geometry(1283, 720, 0, 0, 1, 25);
    check_ladder(&g, &cfg, portrait, 5);
}

static void ladder_tiny_source_gets_one_rung_rounded_down_to_4(void)
{
    /*
     * Below the table the rate per pixel of the 16:9 area of 236 is kept:
     * 145000 * 19200 / 99015.1 for 160x120.
     */
    static const struct expect want[] = {{"120p", 160, 120, 28117}};
    struct sn_video_geometry g = geometry(161, 121, 0, 0, 0, 25);
    struct sn_ladder_config cfg;

    sn_ladder_config_init(&cfg);
    check_ladder(&g, &cfg, want, 1);

    /* Portrait stays portrait. */
    static const struct expect portrait[] = {{"120p", 120, 160, 28117}};
    g = geometry(161, 121, 0, 0, 1, 25);
    check_ladder(&g, &cfg, portrait, 1);

    /* 230x130 is even but goes down to 228x128: 145000 * 29184 / 99015.1. */
    static const struct expect even[] = {{"128p", 228, 128, 42738}};
    g = geometry(230, 130, 0, 0, 0, 25);
    check_ladder(&g, &cfg, even, 1);

    /*
     * Sides below 4 become 4: a 3x2 source and a 1x1 one (displayed as
     * 2x2) both get 4x4, at 145000 * 16 / 99015.1.
     */
    static const struct expect minimum[] = {{"4p", 4, 4, 23}};
    g = geometry(3, 2, 0, 0, 0, 25);
    check_ladder(&g, &cfg, minimum, 1);
    g = geometry(1, 1, 0, 0, 0, 25);
    check_ladder(&g, &cfg, minimum, 1);

    /* Below a custom smallest rung too. 639x359 goes down to 636x356. */
    static const struct expect custom[] = {{"360p", 640, 360, 365000}};
    static const struct expect custom_odd[] = {{"356p", 636, 356, 0}};
    cfg.short_sides[0] = 720;
    cfg.short_sides[1] = 1080;
    cfg.n_short_sides = 2;
    g = geometry(640, 360, 0, 0, 0, 25);
    check_ladder(&g, &cfg, custom, 1);
    g = geometry(639, 359, 0, 0, 0, 25);
    check_ladder(&g, &cfg, custom_odd, 1);
}

static void ladder_keeps_portrait_sources_portrait(void)
{
    /*
     * 236 * 1080 / 720 = 354 and 540 * 1080 / 720 = 810 lie halfway
     * between two multiples of 4, and llround() in ladder.c rounds them
     * up to 356 and 812.
     */
    static const struct expect phone[] = {
        {"236p", 236, 356, 0}, {"360p", 360, 540, 0}, {"432p", 432, 648, 0},
        {"540p", 540, 812, 0}, {"720p", 720, 1080, 0},
    };
    static const struct expect uhd[] = {
        {"236p", 236, 420, 145154},   {"360p", 360, 640, 365000},
        {"432p", 432, 768, 1100000},  {"540p", 540, 960, 2000000},
        {"720p", 720, 1280, 4500000}, {"1080p", 1080, 1920, 7800000},
        {"2160p", 2160, 3840, 16800000},
    };
    struct sn_ladder_config cfg;
    struct sn_video_geometry g = geometry(1080, 720, 0, 1, 1, 30);

    sn_ladder_config_init(&cfg);
    check_ladder(&g, &cfg, phone, 5);

    g = geometry(3840, 2160, 0, 1, 1, 30);
    check_ladder(&g, &cfg, uhd, 6);
    cfg.enable_2160p = 1;
    check_ladder(&g, &cfg, uhd, 7);
}

static void ladder_corpus_shapes_get_the_expected_rungs(void)
{
    static const struct expect anamorphic[] = {
        {"236p", 420, 236, 0}, {"360p", 640, 360, 0},
    };
    /* 1137x640: 236 * 1137 / 640 = 419.3 and 540 * 1137 / 640 = 959.3. */
    static const struct expect sar_1137[] = {
        {"236p", 420, 236, 0}, {"360p", 640, 360, 0},
        {"432p", 768, 432, 0}, {"540p", 960, 540, 0},
    };
    /* 1024x436: 554.3 rounds to 556, 845.5 to 844 and 1014.6 to 1016. */
    static const struct expect scope[] = {
        {"236p", 556, 236, 0}, {"360p", 844, 360, 0}, {"432p", 1016, 432, 0},
    };
    static const struct expect small[] = {{"236p", 420, 236, 0}};
    struct sn_ladder_config cfg;
    struct sn_video_geometry g;

    sn_ladder_config_init(&cfg);
    g = geometry(720, 360, 8, 9, 0, 25);
    check_ladder(&g, &cfg, anamorphic, 2);
    g = geometry(800, 640, 1137, 800, 0, 25);
    check_ladder(&g, &cfg, sar_1137, 4);
    g = geometry(1024, 436, 0, 0, 0, 24);
    check_ladder(&g, &cfg, scope, 3);
    g = geometry(426, 240, 1, 1, 0, 30);
    check_ladder(&g, &cfg, small, 1);
}

/*
 * Frame shapes of the media test corpus: 161x121 VP9, anamorphic 720x360
 * and 800x640, 1024x436 scope, two rotated phone videos, 1080p and 240p.
 */
static const struct sn_video_geometry corpus_shapes[] = {
    {161, 121, 0, 0, 0, 25},     {720, 360, 8, 9, 0, 25},
    {800, 640, 1137, 800, 0, 25}, {1024, 436, 0, 0, 0, 24},
    {1080, 720, 0, 1, 1, 30},    {3840, 2160, 0, 1, 1, 60},
    {1920, 1080, 1, 1, 0, 30},   {426, 240, 0, 0, 0, 30},
};

#define N_CORPUS_SHAPES (sizeof(corpus_shapes) / sizeof(corpus_shapes[0]))

/*
 * Sides that are multiples of 4 give the 4:2:0 chroma planes even sizes.
 * With an odd chroma height libx264 gave different bytes from run to run.
 * Rounding to multiples of 4 must still keep the display aspect within 1%.
 */
static void ladder_corpus_rung_sides_are_multiples_of_4(void)
{
    struct sn_ladder_config cfg;

    sn_ladder_config_init(&cfg);
    for (int e = 0; e < 2; e++) {
        cfg.enable_2160p = e;
        for (size_t s = 0; s < N_CORPUS_SHAPES; s++) {
            const struct sn_video_geometry *g = &corpus_shapes[s];
            struct sn_rung rungs[SN_LADDER_MAX];
            int n = 0, dw = 0, dh = 0;
            double aspect;

            sn_display_size(g, &dw, &dh);
            aspect = (double)dw / dh;
            CHECK_INT(sn_ladder_choose(g, &cfg, rungs, &n), 0);
            CHECK(n >= 1);
            for (int i = 0; i < n; i++) {
                const struct sn_rung *r = &rungs[i];
                double ra = (double)r->width / r->height;

                if (r->width % 4 != 0 || r->height % 4 != 0 ||
                    fabs(ra / aspect - 1.0) > 0.01)
                    fprintf(stderr, "shape %zu rung %s: %dx%d, source "
                            "displays at %dx%d\n", s, r->name, r->width,
                            r->height, dw, dh);
                CHECK_INT(r->width % 4, 0);
                CHECK_INT(r->height % 4, 0);
                CHECK(fabs(ra / aspect - 1.0) <= 0.01);
            }
        }
    }
}

static void ladder_corpus_rungs_fit_the_source_and_ascend(void)
{
    struct sn_ladder_config cfg;

    sn_ladder_config_init(&cfg);
    for (int e = 0; e < 2; e++) {
        cfg.enable_2160p = e;
        for (size_t s = 0; s < N_CORPUS_SHAPES; s++) {
            const struct sn_video_geometry *g = &corpus_shapes[s];
            struct sn_rung rungs[SN_LADDER_MAX];
            int n = 0, dw = 0, dh = 0;

            sn_display_size(g, &dw, &dh);
            CHECK_INT(sn_ladder_choose(g, &cfg, rungs, &n), 0);
            CHECK(n >= 1);
            for (int i = 0; i < n; i++) {
                const struct sn_rung *r = &rungs[i];
                int rshort = r->width < r->height ? r->width : r->height;
                char name[16];

                CHECK(r->width <= dw);
                CHECK(r->height <= dh);
                CHECK((r->width > r->height) == (dw > dh));
                snprintf(name, sizeof(name), "%dp", rshort);
                CHECK_STR(r->name, name);
                if (i > 0) {
                    CHECK(r->width > rungs[i - 1].width);
                    CHECK(r->maxrate > rungs[i - 1].maxrate);
                }
            }
        }
    }
}

static void ladder_maxrate_scales_with_area_against_the_16_9_entry(void)
{
    /*
     * 4:3 has three quarters of the 16:9 area at the same short side.
     * 236 * 4 / 3 = 314.7 rounds to 316, and 316x236 (74576 pixels) gets
     * 145000 * 74576 / 99015.1, the 16:9 area of 236 being 99015.1.
     */
    static const struct expect four_three[] = {
        {"236p", 316, 236, 109211},   {"360p", 480, 360, 273750},
        {"432p", 576, 432, 825000},   {"540p", 720, 540, 1500000},
        {"720p", 960, 720, 3375000},  {"1080p", 1440, 1080, 5850000},
    };
    /*
     * 556x236 is 131216 pixels against 99015.1, 844x360 is 303840 against
     * 640x360's 230400, and 1016x432 is 438912 against 768x432's 331776.
     */
    static const struct expect scope[] = {
        {"236p", 556, 236, 192156},
        {"360p", 844, 360, 481344},
        {"432p", 1016, 432, 1455208},
    };
    struct sn_ladder_config cfg;
    struct sn_video_geometry g = geometry(1440, 1080, 0, 0, 0, 25);

    sn_ladder_config_init(&cfg);
    check_ladder(&g, &cfg, four_three, 6);
    g = geometry(1024, 436, 0, 0, 0, 24);
    check_ladder(&g, &cfg, scope, 3);
}

static void ladder_maxrate_is_one_and_a_half_times_above_30_fps(void)
{
    static const double fast[] = {30.0001, 50.0, 59.94, 60.0, 120.0};
    static const double slow[] = {0.0, 23.976, 25.0, 29.97, 30.0};
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    for (size_t i = 0; i < sizeof(fast) / sizeof(fast[0]); i++) {
        struct sn_video_geometry g = geometry(1920, 1080, 0, 0, 0, fast[i]);

        CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
        CHECK_INT(n, 6);
        /* 1.5 * 145153.6 for 420x236, rounded once, after the factor. */
        CHECK_INT(rungs[0].maxrate, 217730);
        CHECK_INT(rungs[5].maxrate, 11700000);
        CHECK_INT(rungs[5].bufsize, 23400000);
    }
    for (size_t i = 0; i < sizeof(slow) / sizeof(slow[0]); i++) {
        struct sn_video_geometry g = geometry(1920, 1080, 0, 0, 0, slow[i]);

        CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
        CHECK_INT(rungs[0].maxrate, 145154);
        CHECK_INT(rungs[5].maxrate, 7800000);
    }

    /* The output rate decides: 60 fps capped to 30 is not above 30. */
    struct sn_video_geometry g = geometry(1920, 1080, 0, 0, 0, 60);
    cfg.max_frame_rate = 30;
    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    CHECK_INT(rungs[5].maxrate, 7800000);
    CHECK(rungs[5].frame_rate == 30.0);
}

static void ladder_frame_rate_is_capped_and_unknown_stays_zero(void)
{
    static const double in[] = {0.0, 23.976, 29.97, 60.0, 120.0, 240.0, -5.0,
                                 NAN};
    static const double out[] = {0.0, 23.976, 29.97, 60.0, 60.0, 60.0, 0.0,
                                 0.0};
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct sn_video_geometry g = geometry(1280, 720, 0, 0, 0, in[i]);

        CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
        for (int r = 0; r < n; r++)
            CHECK(rungs[r].frame_rate == out[i]);
    }
}

static void ladder_custom_crf_reaches_every_rung(void)
{
    struct sn_video_geometry g = geometry(1920, 1080, 0, 0, 0, 30);
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    cfg.crf = 18;
    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    for (int i = 0; i < n; i++)
        CHECK_INT(rungs[i].crf, 18);
}

static void ladder_custom_short_side_interpolates_bitrate_by_area(void)
{
    /*
     * 852x480 (480 * 16 / 9 = 853.3 rounded to a multiple of 4, 16:9 area
     * 409600): 1.1 M + 0.9 M * (409600 - 331776) / (518400 - 331776),
     * times 408960 / 409600 for the rounded width.
     * 2560x1440: 7.8 M + 9 M * (3686400 - 2073600) / (8294400 - 2073600).
     * 64 is below the table: 113.8 rounds to 112, and 112x64 gets 145 k
     * per 99015.1 pixels (the 16:9 area of 236) times 7168 pixels.
     */
    static const struct expect want[] = {
        {"64p", 112, 64, 10497},
        {"480p", 852, 480, 1473003},
        {"1440p", 2560, 1440, 10133333},
    };
    struct sn_video_geometry g = geometry(3840, 2160, 0, 0, 0, 30);
    struct sn_ladder_config cfg;
    char err[128];

    sn_ladder_config_init(&cfg);
    CHECK_INT(sn_ladder_parse_short_sides("64,480,1440", &cfg, err,
                                          sizeof(err)), 0);
    check_ladder(&g, &cfg, want, 3);
}

static void ladder_extreme_aspect_does_not_overflow_the_bit_rate(void)
{
    struct sn_video_geometry g = geometry(100, 100, 1000000, 1, 0, 60);
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n = 0;

    sn_ladder_config_init(&cfg);
    CHECK_INT(sn_ladder_choose(&g, &cfg, rungs, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(rungs[0].width, 100000000);
    CHECK_INT(rungs[0].height, 100);
    CHECK(rungs[0].maxrate > 0);
    CHECK(rungs[0].bufsize == 2 * rungs[0].maxrate);
}

static void ladder_rejects_bad_geometry_and_config(void)
{
    struct sn_video_geometry good = geometry(1920, 1080, 0, 0, 0, 30);
    struct sn_video_geometry bad[] = {
        geometry(0, 1080, 0, 0, 0, 30),
        geometry(1920, 0, 0, 0, 0, 30),
        geometry(-1920, 1080, 0, 0, 0, 30),
        geometry(1920, -2, 0, 0, 0, 30),
    };
    struct sn_ladder_config cfg;
    struct sn_rung rungs[SN_LADDER_MAX];
    int n;

    sn_ladder_config_init(&cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 5;
        CHECK_INT(sn_ladder_choose(&bad[i], &cfg, rungs, &n), -EINVAL);
        CHECK_INT(n, 0);
    }
    CHECK_INT(sn_ladder_choose(NULL, &cfg, rungs, &n), -EINVAL);
    CHECK_INT(sn_ladder_choose(&good, NULL, rungs, &n), -EINVAL);
    CHECK_INT(sn_ladder_choose(&good, &cfg, NULL, &n), -EINVAL);
    CHECK_INT(sn_ladder_choose(&good, &cfg, rungs, NULL), -EINVAL);

    for (int c = 0; c < 11; c++) {
        sn_ladder_config_init(&cfg);
        switch (c) {
        case 0: cfg.n_short_sides = 0; break;
        case 1: cfg.n_short_sides = SN_LADDER_MAX + 1; break;
        case 2: cfg.short_sides[1] = cfg.short_sides[0]; break;
        case 3: cfg.short_sides[1] = 100; break;
        case 4: cfg.short_sides[0] = 235; break;
        case 5: cfg.short_sides[0] = 0; break;
        case 6: cfg.crf = 52; break;
        case 7: cfg.crf = -1; break;
        case 8: cfg.max_frame_rate = 0; break;
        /* Even sides that are not multiples of 4. */
        case 9: cfg.short_sides[0] = 234; break;
        case 10: cfg.short_sides[5] = 1078; break;
        }
        n = 5;
        CHECK_INT(sn_ladder_choose(&good, &cfg, rungs, &n), -EINVAL);
        CHECK_INT(n, 0);
    }
    sn_ladder_config_init(&cfg);
    cfg.max_frame_rate = NAN;
    CHECK_INT(sn_ladder_choose(&good, &cfg, rungs, &n), -EINVAL);
}

static void ladder_parse_short_sides_accepts_an_ascending_list(void)
{
    struct sn_ladder_config cfg;
    char err[128];

    sn_ladder_config_init(&cfg);
    CHECK_INT(sn_ladder_parse_short_sides("360,720,1080", &cfg, err,
                                          sizeof(err)), 0);
    CHECK_INT(cfg.n_short_sides, 3);
    CHECK_INT(cfg.short_sides[0], 360);
    CHECK_INT(cfg.short_sides[1], 720);
    CHECK_INT(cfg.short_sides[2], 1080);
    CHECK_INT(cfg.short_sides[3], 0);
    CHECK_INT(cfg.crf, 21);

    CHECK_INT(sn_ladder_parse_short_sides(" 64 , 4320 ", &cfg, NULL, 0), 0);
    CHECK_INT(cfg.n_short_sides, 2);
    CHECK_INT(cfg.short_sides[0], 64);
    CHECK_INT(cfg.short_sides[1], 4320);

    CHECK_INT(sn_ladder_parse_short_sides("720", &cfg, err, sizeof(err)), 0);
    CHECK_INT(cfg.n_short_sides, 1);

    CHECK_INT(sn_ladder_parse_short_sides(
                  "100,200,300,400,500,600,700,800,900,1000", &cfg, err,
                  sizeof(err)), 0);
    CHECK_INT(cfg.n_short_sides, SN_LADDER_MAX);
    CHECK_INT(cfg.short_sides[9], 1000);
}

static void ladder_parse_short_sides_rejects_bad_lists(void)
{
    static const char *const bad[] = {
        "", "   ", ",", "360,", ",360", "360,,720", "abc", "360x", "-360",
        "+360", "360 720", "62", "4322", "99999999999999999999", "720,360",
        "360,360", "361", "362", "234",
        "100,200,300,400,500,600,700,800,900,1000,1100",
    };
    struct sn_ladder_config cfg, before;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sn_ladder_config_init(&cfg);
        before = cfg;
        err[0] = '\0';
        CHECK_INT(sn_ladder_parse_short_sides(bad[i], &cfg, err, sizeof(err)),
                  -EINVAL);
        if (err[0] == '\0')
            fprintf(stderr, "no reason for \"%s\"\n", bad[i]);
        CHECK(err[0] != '\0');
        CHECK(strchr(err, '\n') == NULL);
        CHECK(memcmp(&cfg, &before, sizeof(cfg)) == 0);
    }
    CHECK_INT(sn_ladder_parse_short_sides(NULL, &cfg, err, sizeof(err)),
              -EINVAL);
    CHECK_INT(sn_ladder_parse_short_sides("360", NULL, err, sizeof(err)),
              -EINVAL);

    /* A short error buffer is truncated, not overrun. */
    char tiny[8];
    CHECK_INT(sn_ladder_parse_short_sides("720,360", &cfg, tiny, sizeof(tiny)),
              -EINVAL);
    CHECK_INT(strlen(tiny), sizeof(tiny) - 1);
    CHECK_INT(sn_ladder_parse_short_sides("720,360", &cfg, NULL, 0), -EINVAL);
}

static void ladder_parse_short_sides_rejects_sides_not_multiple_of_4(void)
{
    static const struct {
        const char *list;
        const char *value;    /* the side the error must name */
    } bad[] = {
        {"361", "361"},       /* odd */
        {"234", "234"},       /* even: Apple's smallest short side */
        {"362", "362"},
        {"236,358,720", "358"},
        {"236,4318", "4318"},
    };
    struct sn_ladder_config cfg, before;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sn_ladder_config_init(&cfg);
        before = cfg;
        err[0] = '\0';
        CHECK_INT(sn_ladder_parse_short_sides(bad[i].list, &cfg, err,
                                              sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].value) || !strstr(err, "multiple of 4"))
            fprintf(stderr, "\"%s\" gave \"%s\"\n", bad[i].list, err);
        CHECK(strstr(err, bad[i].value) != NULL);
        CHECK(strstr(err, "multiple of 4") != NULL);
        CHECK(memcmp(&cfg, &before, sizeof(cfg)) == 0);
    }

    /* A list of multiples of 4 is accepted. */
    CHECK_INT(sn_ladder_parse_short_sides("64,236,4316", &cfg, err,
                                          sizeof(err)), 0);
    CHECK_INT(cfg.n_short_sides, 3);
    CHECK_INT(cfg.short_sides[1], 236);
    CHECK_INT(cfg.short_sides[2], 4316);
}

SN_TEST_MAIN(
    TEST_CASE(ladder_config_defaults_follow_the_apple_ladder),
    TEST_CASE(ladder_display_size_applies_sar_to_the_width),
    TEST_CASE(ladder_display_size_is_square_when_sar_is_unset),
    TEST_CASE(ladder_display_size_swaps_axes_when_transposed),
    TEST_CASE(ladder_display_size_is_at_least_two_and_never_overflows),
    TEST_CASE(ladder_1080p_source_gets_the_full_default_ladder),
    TEST_CASE(ladder_2160p_rung_only_when_enabled),
    TEST_CASE(ladder_2160p_is_inserted_in_order_into_a_custom_list),
    TEST_CASE(ladder_2160p_on_a_full_list_keeps_the_largest_rungs),
    TEST_CASE(ladder_never_upscales_720p_source),
    TEST_CASE(ladder_rung_is_never_longer_than_the_source),
    TEST_CASE(ladder_tiny_source_gets_one_rung_rounded_down_to_4),
    TEST_CASE(ladder_keeps_portrait_sources_portrait),
    TEST_CASE(ladder_corpus_shapes_get_the_expected_rungs),
    TEST_CASE(ladder_corpus_rung_sides_are_multiples_of_4),
    TEST_CASE(ladder_corpus_rungs_fit_the_source_and_ascend),
    TEST_CASE(ladder_maxrate_scales_with_area_against_the_16_9_entry),
    TEST_CASE(ladder_maxrate_is_one_and_a_half_times_above_30_fps),
    TEST_CASE(ladder_frame_rate_is_capped_and_unknown_stays_zero),
    TEST_CASE(ladder_custom_crf_reaches_every_rung),
    TEST_CASE(ladder_custom_short_side_interpolates_bitrate_by_area),
    TEST_CASE(ladder_extreme_aspect_does_not_overflow_the_bit_rate),
    TEST_CASE(ladder_rejects_bad_geometry_and_config),
    TEST_CASE(ladder_parse_short_sides_accepts_an_ascending_list),
    TEST_CASE(ladder_parse_short_sides_rejects_bad_lists),
    TEST_CASE(ladder_parse_short_sides_rejects_sides_not_multiple_of_4))
