#include "cli/settings.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum kind { FLAG, INT, SECONDS, BYTES, TEXT };

struct setting {
    const char *name;
    enum kind kind;
    const char *arg;          /* placeholder in --help */
    double min, max;
    const char *help;
};

static const struct setting settings[] = {
    {"output", TEXT, "DIR", 0, 0,
     "output folder (default: INPUT's name without extension, plus -hls)"},
    {"segment-format", TEXT, "fmp4|ts", 0, 0,
     "segment container: fMP4/CMAF (default) or MPEG-TS"},
    {"segment-duration", SECONDS, "SECONDS", 0.1, 60,
     "target segment duration (default 6)"},
    {"keyframe-interval", SECONDS, "SECONDS", 0.05, 60,
     "keyframe interval; must divide the segment duration (default 2)"},
    {"first-segment-duration", SECONDS, "SECONDS", 0.05, 60,
     "duration of the first segment, so playback starts sooner "
     "(default: the keyframe interval)"},
    {"chunk-segments", INT, "N", 1, 1000,
     "segments per chunk job (default 2)"},
    {"first-chunk-segments", INT, "N", 1, 1000,
     "segments in the first chunk, so the start is ready first (default 1)"},
    {"workers", INT, "N", 1, 256, "parallel workers (default: one per core)"},
    {"worker-mode", TEXT, "thread|process", 0, 0,
     "run workers as threads (default) or forked processes"},
    {"one-job-per-chunk", FLAG, NULL, 0, 0,
     "encode all rungs of a chunk in one job (one decode per chunk, but "
     "more memory per worker); by default the top rung has its own jobs"},
    {"rungs", TEXT, "LIST", 0, 0,
     "short sides of the rungs (default 236,360,432,540,720,1080)"},
    {"enable-2160p", FLAG, NULL, 0, 0, "add a 2160p rung when the source has it"},
    {"preset", TEXT, "NAME", 0, 0,
     "x264 preset, ultrafast to placebo (default veryfast)"},
    {"crf", INT, "N", 0, 51, "x264 constant rate factor (default 21)"},
    {"max-width", INT, "PIXELS", 16, 16384,
     "reject inputs wider than this (default 8192)"},
    {"max-height", INT, "PIXELS", 16, 16384,
     "reject inputs taller than this (default 8192)"},
    {"max-duration", SECONDS, "SECONDS", 0.1, 1e7,
     "reject inputs longer than this (default 21600)"},
    {"max-frames", INT, "N", 1, 1e9,
     "reject inputs with more video frames (default 2000000)"},
    {"max-file-size", BYTES, "BYTES", 1, 1e15,
     "reject larger input files (default 68719476736)"},
    {"conceal-errors", FLAG, NULL, 0, 0,
     "publish video with damaged frames, hidden as players hide them, "
     "instead of rejecting it"},
    {"overwrite", FLAG, NULL, 0, 0, "replace an existing output folder"},
    {"quiet", FLAG, NULL, 0, 0, "print nothing but errors"},
    {"json", FLAG, NULL, 0, 0, "print one JSON object per event on stdout"},
    {"help", FLAG, NULL, 0, 0, "show this help"},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting *find(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    }
    return NULL;
}

int sn_cli_takes_value(const char *name)
{
    const struct setting *s = find(name);

    if (s == NULL)
        return -1;
    return s->kind != FLAG;
}

void sn_cli_print_option(FILE *out, const char *name)
{
    const struct setting *s = find(name);
    char left[64];

    if (s == NULL)
        return;
    snprintf(left, sizeof(left), "--%s%s%s", s->name, s->arg ? " " : "",
             s->arg ? s->arg : "");
    fprintf(out, "  %-34s %s\n", left, s->help);
}

void sn_cli_usage(FILE *out)
{
    fprintf(out, "usage: sinatra process INPUT [-o DIR] [options]\n\n"
                 "Transcodes INPUT into an adaptive HLS ladder.\n\n");
    for (size_t i = 0; i < N_SETTINGS; i++)
        sn_cli_print_option(out, settings[i].name);
    fprintf(out, "\nAn s3://BUCKET/stream/NAME input is planned for workers "
                 "on AWS instead;\nsee `sinatra process s3:// --help`.\n");
    fprintf(out, "\nexit codes: 0 done, 2 usage error, 3 input rejected, "
                 "4 processing failed,\n5 output error, 130 interrupted\n");
}

static int parse_number(const struct setting *s, const char *text,
                        double *value, char *err, size_t err_size)
{
    char *end;
    double v = strtod(text, &end);

    if (end == text || *end != '\0' || !isfinite(v) ||
        (s->kind != SECONDS && v != floor(v))) {
        snprintf(err, err_size, "--%s: invalid number \"%s\"", s->name,
                 text);
        return -EINVAL;
    }
    if (v < s->min || v > s->max) {
        snprintf(err, err_size, "--%s: %s is outside %g..%g", s->name, text,
                 s->min, s->max);
        return -EINVAL;
    }
    *value = v;
    return 0;
}

static int apply_text(struct sn_cli *cli, const struct setting *s,
                      const char *v, char *err, size_t err_size)
{
    struct sn_process_options *o = &cli->process;

    if (strcmp(s->name, "output") == 0) {
        if (v[0] == '\0') {
            snprintf(err, err_size, "--output: empty folder name");
            return -EINVAL;
        }
        o->output = v;
    } else if (strcmp(s->name, "segment-format") == 0) {
        if (strcmp(v, "fmp4") == 0)
            o->encode.format = SN_SEGMENT_FMP4;
        else if (strcmp(v, "ts") == 0)
            o->encode.format = SN_SEGMENT_TS;
        else
            goto bad_choice;
    } else if (strcmp(s->name, "worker-mode") == 0) {
        if (strcmp(v, "thread") == 0)
            o->worker_mode = SN_WORKER_THREAD;
        else if (strcmp(v, "process") == 0)
            o->worker_mode = SN_WORKER_PROCESS;
        else
            goto bad_choice;
    } else if (strcmp(s->name, "rungs") == 0) {
        return sn_ladder_parse_short_sides(v, &o->ladder, err, err_size);
    } else if (strcmp(s->name, "preset") == 0) {
        if (!sn_x264_preset_valid(v))
            goto bad_choice;
        snprintf(o->encode.preset, sizeof(o->encode.preset), "%s", v);
    }
    return 0;

bad_choice:
    snprintf(err, err_size, "--%s: invalid value \"%s\" (expected %s)",
             s->name, v, s->arg);
    return -EINVAL;
}

static void apply_number(struct sn_cli *cli, const struct setting *s,
                         double v)
{
    struct sn_process_options *o = &cli->process;
    int64_t us = (int64_t)llround(v * 1e6);
    const char *n = s->name;

    if (strcmp(n, "segment-duration") == 0)
        o->chunks.segment_us = us;
    else if (strcmp(n, "keyframe-interval") == 0)
        o->chunks.keyframe_us = o->encode.keyframe_us = us;
    else if (strcmp(n, "first-segment-duration") == 0)
        o->chunks.first_segment_us = cli->first_segment_us = us;
    else if (strcmp(n, "chunk-segments") == 0)
        o->chunks.chunk_segments = (int)v;
    else if (strcmp(n, "first-chunk-segments") == 0)
        o->chunks.first_chunk_segments = (int)v;
    else if (strcmp(n, "workers") == 0)
        o->workers = (int)v;
    else if (strcmp(n, "crf") == 0)
        o->ladder.crf = (int)v;
    else if (strcmp(n, "max-width") == 0)
        o->limits.max_width = (int)v;
    else if (strcmp(n, "max-height") == 0)
        o->limits.max_height = (int)v;
    else if (strcmp(n, "max-duration") == 0)
        o->limits.max_duration_us = us;
    else if (strcmp(n, "max-frames") == 0)
        o->limits.max_frames = (int64_t)v;
    else if (strcmp(n, "max-file-size") == 0)
        o->limits.max_file_size = (int64_t)v;
}

static void apply_flag(struct sn_cli *cli, const struct setting *s)
{
    if (strcmp(s->name, "enable-2160p") == 0)
        cli->process.ladder.enable_2160p = 1;
    else if (strcmp(s->name, "one-job-per-chunk") == 0)
        cli->process.split_rungs = 0;
    else if (strcmp(s->name, "conceal-errors") == 0)
        cli->process.encode.conceal_errors = 1;
    else if (strcmp(s->name, "overwrite") == 0)
        cli->process.overwrite = 1;
    else if (strcmp(s->name, "quiet") == 0)
        cli->mode = SN_OUTPUT_QUIET;
    else if (strcmp(s->name, "json") == 0)
        cli->mode = SN_OUTPUT_JSON;
}

static int apply(struct sn_cli *cli, const struct setting *s,
                 const char *value, char *err, size_t err_size)
{
    double v;

    if (s->kind == FLAG) {
        apply_flag(cli, s);
        return 0;
    }
    if (s->kind == TEXT)
        return apply_text(cli, s, value, err, err_size);
    if (parse_number(s, value, &v, err, err_size) < 0)
        return -EINVAL;
    apply_number(cli, s, v);
    return 0;
}

/* "clip.final.mov" -> "clip.final-hls", in the current folder. */
static void default_output(struct sn_cli *cli)
{
    const char *input = cli->process.input;
    const char *base = strrchr(input, '/');
    const char *dot;
    size_t len;

    base = base ? base + 1 : input;
    dot = strrchr(base, '.');
    len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(cli->default_output, sizeof(cli->default_output), "%.*s-hls",
             (int)len, base);
    cli->process.output = cli->default_output;
}

void sn_cli_init(struct sn_cli *cli)
{
    sn_process_options_init(&cli->process);
    cli->mode = SN_OUTPUT_BAR;
    cli->default_output[0] = '\0';
    cli->first_segment_us = 0;
}

int sn_cli_set(struct sn_cli *cli, const char *name, const char *value,
               char *err, size_t err_size)
{
    const struct setting *s = find(name);

    if (s == NULL || strcmp(s->name, "help") == 0) {
        snprintf(err, err_size, "unknown option \"--%s\"", name);
        return -EINVAL;
    }
    if (s->kind == FLAG && value != NULL) {
        snprintf(err, err_size, "--%s takes no value", s->name);
        return -EINVAL;
    }
    if (s->kind != FLAG && value == NULL) {
        snprintf(err, err_size, "--%s needs a value (%s)", s->name, s->arg);
        return -EINVAL;
    }
    return apply(cli, s, value, err, err_size) < 0 ? -EINVAL : 0;
}

int sn_cli_check(struct sn_cli *cli, char *err, size_t err_size)
{
    struct sn_process_options *o = &cli->process;

    if (cli->first_segment_us == 0)
        o->chunks.first_segment_us = o->chunks.keyframe_us;
    return sn_chunk_config_check(&o->chunks, err, err_size) < 0 ? -EINVAL : 0;
}

int sn_cli_parse(struct sn_cli *cli, int argc, char **argv, char *err,
                 size_t err_size)
{
    struct sn_process_options *o = &cli->process;

    sn_cli_init(cli);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const struct setting *s;

        if (strcmp(arg, "-o") == 0)
            arg = "--output";
        if (strcmp(arg, "-h") == 0)
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (o->input != NULL) {
                snprintf(err, err_size, "unexpected argument \"%s\"", arg);
                return -EINVAL;
            }
            o->input = arg;
            continue;
        }
        s = find(arg + 2);
        if (s == NULL) {
            snprintf(err, err_size, "unknown option \"%s\"", arg);
            return -EINVAL;
        }
        if (strcmp(s->name, "help") == 0) {
            sn_cli_usage(stdout);
            return 1;
        }
        if (s->kind != FLAG && i + 1 >= argc) {
            snprintf(err, err_size, "--%s needs a value (%s)", s->name,
                     s->arg);
            return -EINVAL;
        }
        if (apply(cli, s, s->kind == FLAG ? NULL : argv[++i], err,
                  err_size) < 0)
            return -EINVAL;
    }

    if (o->input == NULL) {
        snprintf(err, err_size, "no input file given");
        return -EINVAL;
    }
    if (o->output == NULL)
        default_output(cli);
    return sn_cli_check(cli, err, err_size);
}
