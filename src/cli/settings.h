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

/* Fills cli with the defaults of `sinatra process`. */
void sn_cli_init(struct sn_cli *cli);

/*
 * Applies the setting name (an option without its "--") with value, which
 * is NULL for a flag, as the command line would. value must outlive cli.
 * Other programs use it to read the same settings from elsewhere, such as
 * the Lambda functions from their environment. Returns 0, or -EINVAL
 * with one line in err that names the option.
 */
int sn_cli_set(struct sn_cli *cli, const char *name, const char *value,
               char *err, size_t err_size);

/*
 * Completes the settings after the last sn_cli_set(): a first segment as
 * long as the keyframe interval unless one was given, then the segment
 * and chunk checks. Returns 0, or -EINVAL with one line in err.
 */
int sn_cli_check(struct sn_cli *cli, char *err, size_t err_size);

/* Prints the option table. */
void sn_cli_usage(FILE *out);

/* Prints the --help line of the setting name (without its "--"), or
 * nothing when there is no such setting. */
void sn_cli_print_option(FILE *out, const char *name);

/* Returns 1 when the setting name (without its "--") takes a value, 0 for
 * a flag, or -1 when there is no such setting. */
int sn_cli_takes_value(const char *name);

#endif
