/*
 * Rendition ladder: which output sizes and bit rates to make from a source.
 *
 * The default table is modelled on Apple's HLS authoring specification
 * ladder for 16:9 H.264 (420x236 at 145 kbit/s up to 1920x1080 at
 * 7.8 Mbit/s, 3840x2160 when enabled). A rung is named by its short side
 * ("720p"), so portrait sources get portrait rungs of the same pixel count.
 * Pure C: no I/O, no FFmpeg types.
 */
#ifndef SN_PLAN_LADDER_H
#define SN_PLAN_LADDER_H

#include <stddef.h>

#define SN_LADDER_MAX 10

/* Frame rates up to this much above the maximum are kept, not capped. */
#define SN_FRAME_RATE_TOLERANCE 0.5

/* What the ladder needs to know about the source video. */
struct sn_video_geometry {
    int coded_width;          /* decoded frame size in pixels */
    int coded_height;
    int sar_num;              /* sample aspect ratio; 0/0 or 0/1 = square */
    int sar_den;
    int transposed;           /* 1 when the display matrix swaps the axes */
    double frame_rate;        /* average frames per second, 0 if unknown */
};

/* One output rendition. */
struct sn_rung {
    char name[16];            /* short side and "p", e.g. "720p" */
    int width;                /* a multiple of 4, square pixels */
    int height;               /* a multiple of 4 */
    int maxrate;              /* VBV maximum rate, bits per second */
    int bufsize;              /* VBV buffer size, bits */
    int crf;                  /* x264 constant rate factor */
    double frame_rate;        /* output frames per second: the source's,
                                 capped at the maximum when more than
                                 SN_FRAME_RATE_TOLERANCE above it */
};

/* Ladder settings; sn_ladder_config_init() fills the defaults. */
struct sn_ladder_config {
    int short_sides[SN_LADDER_MAX];   /* rung short sides, ascending */
    int n_short_sides;
    int enable_2160p;         /* add the 2160p rung when the source has it */
    int crf;                  /* default 21 */
    double max_frame_rate;    /* default 60 */
};

void sn_ladder_config_init(struct sn_ladder_config *cfg);

/*
 * Computes the display size of the source in square pixels: the coded size
 * stretched by the sample aspect ratio (the width grows or shrinks, the
 * height stays), then swapped when transposed. Sizes are at least 2.
 */
void sn_display_size(const struct sn_video_geometry *g, int *width,
                     int *height);

/*
 * Chooses the rungs for a source: every configured short side not larger
 * than the source's display short side (never upscale), each with the
 * source's display aspect and sides that are multiples of 4. A source
 * smaller than the smallest rung gets one rung at its own display size,
 * rounded down to multiples of 4. Bit rates scale with the rung's area against the 16:9 table entry
 * and by 1.5 above 30 fps.
 *
 * Writes at most SN_LADDER_MAX rungs, ascending, to rungs and their count
 * to *n_rungs. Returns 0, or -EINVAL for a geometry with a zero or
 * negative size or a config with no short sides.
 */
int sn_ladder_choose(const struct sn_video_geometry *g,
                     const struct sn_ladder_config *cfg,
                     struct sn_rung *rungs, int *n_rungs);

/*
 * Parses a comma-separated list of short sides ("360,720,1080") into cfg.
 * Returns 0, or -EINVAL with a one-line reason in err for an empty list,
 * a value outside 64..4320 or not a multiple of 4, a list that is not
 * strictly ascending, or more than SN_LADDER_MAX values.
 */
int sn_ladder_parse_short_sides(const char *text, struct sn_ladder_config *cfg,
                                char *err, size_t err_size);

#endif
