/*
 * `sinatra serve` and `sinatra worker`: the durable pipeline on one
 * machine, over a data folder (uploads, HLS output, SQLite database).
 */
#ifndef SN_CLI_SERVE_H
#define SN_CLI_SERVE_H

#include <signal.h>

/* Each returns the process exit code; argv[0] is the first argument after
 * the subcommand. They stop cleanly when *stop becomes non-zero. */
int sn_cmd_serve(int argc, char **argv, const volatile sig_atomic_t *stop);
int sn_cmd_worker(int argc, char **argv, const volatile sig_atomic_t *stop);

/* `sinatra process s3://BUCKET/stream/NAME [options]`, the options before
 * or after the URL: orchestrates the upload on AWS. argv contains every
 * argument after "process". Returns the exit code. */
int sn_cmd_process_s3(int argc, char **argv);

/* Returns 1 when the input of `sinatra process` arguments (argv[0] is the
 * first argument after "process") is an s3:// URL, skipping options and
 * their values, or 0. */
int sn_process_input_is_s3(int argc, char **argv);

#endif
