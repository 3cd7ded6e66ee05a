/* ladder.h does not include <stddef.h> itself but uses size_t. */
#include <stddef.h>

#include "plan/ladder.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* Accepted short sides, for the parser and for sn_ladder_choose(). */
#define SHORT_SIDE_MIN 64
#define SHORT_SIDE_MAX 4320

/*
 * Apple's HLS authoring ladder for 16:9 H.264, by short side, with its
 * 416x234 entry moved to 420x236 because every side here is a multiple of
 * 4 (see nearest_multiple_of_4()). Areas are taken as 16 * short^2 / 9. The 2160 entry is
 * part of the bit rate table even when the 2160p rung is off, so that
 * user-given short sides between 1080 and 2160 interpolate towards it.
 */
static const struct {
    int short_side;
    int width;
    int bitrate;              /* bits per second */
} table[] = {
    {236, 420, 145000},
    {360, 640, 365000},
    {432, 768, 1100000},
    {540, 960, 2000000},
    {720, 1280, 4500000},
    {1080, 1920, 7800000},
    {2160, 3840, 16800000},
};

#define TABLE_SIZE ((int)(sizeof(table) / sizeof(table[0])))
#define SHORT_SIDE_2160 2160

static const int default_short_sides[] = {236, 360, 432, 540, 720, 1080};

void sn_ladder_config_init(struct sn_ladder_config *cfg)
{
    int n = (int)(sizeof(default_short_sides) / sizeof(default_short_sides[0]));

    for (int i = 0; i < SN_LADDER_MAX; i++)
        cfg->short_sides[i] = i < n ? default_short_sides[i] : 0;
    cfg->n_short_sides = n;
    cfg->enable_2160p = 0;
    cfg->crf = 21;
    cfg->max_frame_rate = 60.0;
}

static int clamp_size(double v)
{
    if (!(v >= 2.0))          /* also catches NaN */
        return 2;
    if (v >= (double)INT_MAX)
        return INT_MAX;
    return (int)llround(v);
}

void sn_display_size(const struct sn_video_geometry *g, int *width,
                     int *height)
{
    double w = g->coded_width;
    int h = g->coded_height < 2 ? 2 : g->coded_height;
    int dw;

    /* 0/0, 0/1 and any other non-positive ratio mean square pixels. */
    if (g->sar_num > 0 && g->sar_den > 0)
        w = w * g->sar_num / g->sar_den;
    dw = clamp_size(w);
    if (g->transposed) {
        *width = h;
        *height = dw;
    } else {
        *width = dw;
        *height = h;
    }
}

/* Area of the 16:9 frame with this short side; exact for table entries. */
static double ref_area(int short_side)
{
    return 16.0 * short_side * short_side / 9.0;
}

/*
 * Bit rate of a 16:9 frame of this area. Between two table entries the
 * rate is interpolated linearly by area, so a short side not in the table
 * (say 480 or 1440) gets a rate between its neighbours. Outside the table
 * the nearest entry's bits per pixel are kept (the rate is proportional
 * to the area).
 */
static double rate_for_area(double area)
{
    double a0 = ref_area(table[0].short_side);
    double an = ref_area(table[TABLE_SIZE - 1].short_side);

    if (area <= a0)
        return table[0].bitrate * area / a0;
    for (int i = 0; i + 1 < TABLE_SIZE; i++) {
        double lo = ref_area(table[i].short_side);
        double hi = ref_area(table[i + 1].short_side);

        if (area <= hi)
            return table[i].bitrate +
                   (table[i + 1].bitrate - table[i].bitrate) * (area - lo) /
                       (hi - lo);
    }
    return table[TABLE_SIZE - 1].bitrate * area / an;
}

/*
 * Nearest multiple of 4 to v, at least 4 and at most limit rounded down to
 * a multiple of 4. Sides are multiples of 4, not just even, so that 4:2:0
 * chroma planes have even sizes too: with an odd chroma height (416x234,
 * 117 chroma rows) libx264 0.164 in Debian 12 reads rows it never wrote,
 * and the same input gave different output bytes from run to run.
 */
static int nearest_multiple_of_4(double v, int limit)
{
    long long e = 4 * llround(v / 4.0);
    long long cap = limit & ~3;

    if (cap < 4)
        cap = 4;
    if (e > cap)
        e = cap;
    if (e < 4)
        e = 4;
    return (int)e;
}

static void fill_rung(struct sn_rung *r, int short_side, int long_side,
                      int portrait, const struct sn_video_geometry *g,
                      const struct sn_ladder_config *cfg)
{
    double fps = g->frame_rate;
    double area, maxrate;

    if (!(fps > 0.0))         /* unknown, negative or NaN */
        fps = 0.0;
    /* A phone's "60 fps" is often 60.06: that stays as it is, because
     * dropping a frame every few seconds would judder, and the encoder must
     * know the true rate to pick a level that covers it. */
    if (fps > cfg->max_frame_rate + SN_FRAME_RATE_TOLERANCE)
        fps = cfg->max_frame_rate;

    snprintf(r->name, sizeof(r->name), "%dp", short_side);
    r->width = portrait ? short_side : long_side;
    r->height = portrait ? long_side : short_side;

    /* The 16:9 entry's rate, scaled by how much larger this frame is. */
    area = (double)r->width * r->height;
    maxrate = rate_for_area(ref_area(short_side)) * area / ref_area(short_side);
    if (fps > 30.0)
        maxrate *= 1.5;
    if (maxrate > INT_MAX / 2)
        maxrate = INT_MAX / 2;
    if (maxrate < 1.0)
        maxrate = 1.0;
    r->maxrate = (int)llround(maxrate);
    r->bufsize = 2 * r->maxrate;
    r->crf = cfg->crf;
    r->frame_rate = fps;
}

static int config_ok(const struct sn_ladder_config *cfg)
{
    if (cfg->n_short_sides < 1 || cfg->n_short_sides > SN_LADDER_MAX)
        return 0;
    for (int i = 0; i < cfg->n_short_sides; i++) {
        int s = cfg->short_sides[i];

        if (s < SHORT_SIDE_MIN || s > SHORT_SIDE_MAX || s % 4 != 0)
            return 0;
        if (i > 0 && s <= cfg->short_sides[i - 1])
            return 0;
    }
    if (cfg->crf < 0 || cfg->crf > 51)
        return 0;
    if (!(cfg->max_frame_rate > 0.0))
        return 0;
    return 1;
}

int sn_ladder_choose(const struct sn_video_geometry *g,
                     const struct sn_ladder_config *cfg,
                     struct sn_rung *rungs, int *n_rungs)
{
    int sides[SN_LADDER_MAX + 1];
    int n_sides = 0, first, n = 0;
    int dw, dh, dshort, dlong, portrait;

    if (n_rungs)
        *n_rungs = 0;
    if (!g || !cfg || !rungs || !n_rungs)
        return -EINVAL;
    if (g->coded_width <= 0 || g->coded_height <= 0 || !config_ok(cfg))
        return -EINVAL;

    /*
     * The configured sides, with 2160 inserted when enable_2160p is set
     * and the list lacks it. A side listed explicitly is always used.
     */
    for (int i = 0; i < cfg->n_short_sides; i++) {
        int s = cfg->short_sides[i];

        if (cfg->enable_2160p && s > SHORT_SIDE_2160 &&
            (n_sides == 0 || sides[n_sides - 1] < SHORT_SIDE_2160))
            sides[n_sides++] = SHORT_SIDE_2160;
        sides[n_sides++] = s;
    }
    if (cfg->enable_2160p && sides[n_sides - 1] < SHORT_SIDE_2160)
        sides[n_sides++] = SHORT_SIDE_2160;

    sn_display_size(g, &dw, &dh);
    portrait = dh > dw;
    dshort = portrait ? dw : dh;
    dlong = portrait ? dh : dw;

    /* Never upscale: drop sides above the source's. */
    while (n_sides > 0 && sides[n_sides - 1] > dshort)
        n_sides--;

    if (n_sides == 0) {
        /* Smaller than every rung: one rung at the source's own size. */
        fill_rung(&rungs[0], dshort < 4 ? 4 : dshort & ~3,
                  dlong < 4 ? 4 : dlong & ~3, portrait, g, cfg);
        *n_rungs = 1;
        return 0;
    }

    /* With 2160 added to a full list, keep the largest SN_LADDER_MAX. */
    first = n_sides > SN_LADDER_MAX ? n_sides - SN_LADDER_MAX : 0;
    for (int i = first; i < n_sides; i++) {
        int s = sides[i];
        int l = nearest_multiple_of_4((double)s * dlong / dshort, dlong);

        fill_rung(&rungs[n++], s, l, portrait, g, cfg);
    }
    *n_rungs = n;
    return 0;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (!err || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

int sn_ladder_parse_short_sides(const char *text, struct sn_ladder_config *cfg,
                                char *err, size_t err_size)
{
    int sides[SN_LADDER_MAX];
    int n = 0;
    const char *p = text;

    if (err && err_size > 0)
        err[0] = '\0';
    if (!cfg) {
        set_err(err, err_size, "no config to fill");
        return -EINVAL;
    }
    if (!text) {
        set_err(err, err_size, "empty list of short sides");
        return -EINVAL;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0') {
        set_err(err, err_size, "empty list of short sides");
        return -EINVAL;
    }

    for (;;) {
        long v = 0;
        int digits = 0;

        while (*p == ' ' || *p == '\t')
            p++;
        while (*p >= '0' && *p <= '9') {
            if (v <= SHORT_SIDE_MAX)
                v = v * 10 + (*p - '0');
            digits++;
            p++;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (digits == 0 || (*p != ',' && *p != '\0')) {
            set_err(err, err_size,
                    "item %d of the short sides is not a whole number",
                    n + 1);
            return -EINVAL;
        }
        if (n == SN_LADDER_MAX) {
            set_err(err, err_size, "more than %d short sides", SN_LADDER_MAX);
            return -EINVAL;
        }
        if (v < SHORT_SIDE_MIN || v > SHORT_SIDE_MAX) {
            if (v > SHORT_SIDE_MAX)
                set_err(err, err_size, "short side %d of the list is above %d",
                        n + 1, SHORT_SIDE_MAX);
            else
                set_err(err, err_size, "short side %ld is below %d", v,
                        SHORT_SIDE_MIN);
            return -EINVAL;
        }
        if (v % 4 != 0) {
            set_err(err, err_size,
                    "short side %ld is not a multiple of 4, which every "
                    "rung side must be", v);
            return -EINVAL;
        }
        if (n > 0 && v <= sides[n - 1]) {
            set_err(err, err_size,
                    "short side %ld does not ascend; list them smallest first",
                    v);
            return -EINVAL;
        }
        sides[n++] = (int)v;
        if (*p == '\0')
            break;
        p++;                  /* the comma */
    }

    for (int i = 0; i < SN_LADDER_MAX; i++)
        cfg->short_sides[i] = i < n ? sides[i] : 0;
    cfg->n_short_sides = n;
    return 0;
}
