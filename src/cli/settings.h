/*
 * Command-line settings of `sinatra process`, kept as one table (name,
 * kind, default, limits, help) from which parsing, validation and --help
 * are all derived.
 */
#ifndef SN_CLI_SETTINGS_H
#define SN_CLI_SETTINGS_H

#include <stdint.h>
#include <stdio.h>

#include "pipeline/process.h"

enum sn_output_mode {
    SN_OUTPUT_BAR,            /* progress bar on a terminal */
    SN_OUTPUT_QUIET,
    SN_OUTPUT_JSON,
};

struct sn_cli {
    struct sn_process_options process;
    enum sn_output_mode mode;
    char default_output[4096];
    int64_t first_segment_us; /* given with --first-segment-duration, or 0 */
};

/*
 * Parses `process` arguments (argv[0] is the first argument after the
 * subcommand). Returns 0, 1 when --help was printed, or -EINVAL with one
 * line in err.
 */
int sn_cli_parse(struct sn_cli *cli, int argc, char **argv, char *err,
                 size_t err_size);

/* Prints the option table. */
void sn_cli_usage(FILE *out);

#endif
