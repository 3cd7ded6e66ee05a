/*
 * sinatra: turns a video into an adaptive-bitrate HLS ladder.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include "cli/progress.h"
#include "cli/serve.h"
#include "cli/settings.h"
#include "util/error.h"

enum {
    EXIT_DONE = 0,
    EXIT_USAGE = 2,
    EXIT_INPUT = 3,
    EXIT_FAILED = 4,
    EXIT_OUTPUT = 5,
    EXIT_INTERRUPTED = 130,
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int exit_code(int rc)
{
    switch (rc) {
    case 0:
        return EXIT_DONE;
    case SN_ERR_INPUT:
    case SN_ERR_LIMIT:
        return EXIT_INPUT;
    case SN_ERR_OUTPUT:
        return EXIT_OUTPUT;
    case SN_ERR_INTERRUPTED:
        return EXIT_INTERRUPTED;
    default:
        return EXIT_FAILED;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: sinatra process INPUT [-o DIR] [options]\n"
                 "       sinatra process s3://BUCKET/stream/NAME [options]\n"
                 "       sinatra serve [options]\n"
                 "       sinatra worker [options]\n"
                 "       sinatra COMMAND --help\n");
}

static double seconds_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_process(int argc, char **argv)
{
    struct sn_cli cli;
    struct sn_progress progress = {0};
    struct sigaction sa = {.sa_handler = on_signal};
    char err[SN_ERR_SIZE] = "";
    double started = seconds_now();
    int rc;

    rc = sn_cli_parse(&cli, argc, argv, err, sizeof(err));
    if (rc == 1)
        return EXIT_DONE;
    if (rc < 0) {
        fprintf(stderr, "sinatra: %s\n", err);
        usage(stderr);
        return EXIT_USAGE;
    }

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* FFmpeg's own warnings would break the one-line error contract; the
     * pipeline reports every failure itself. */
    av_log_set_level(AV_LOG_ERROR - 8);

    progress.mode = cli.mode;
    progress.input = cli.process.input;
    sn_progress_attach(&progress, &cli.process.events);
    cli.process.cancel = &interrupted;

    rc = sn_process_run(&cli.process, err, sizeof(err));
    sn_progress_done(&progress, rc, cli.process.output, err,
                     seconds_now() - started);
    return exit_code(rc);
}

/* serve and worker run until SIGINT or SIGTERM. */
static int cmd_service(int (*run)(int, char **, const volatile sig_atomic_t *),
                       int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    av_log_set_level(AV_LOG_ERROR - 8);
    return run(argc, argv, &interrupted);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "process") == 0 &&
        sn_process_input_is_s3(argc - 2, argv + 2)) {
        av_log_set_level(AV_LOG_ERROR - 8);
        return sn_cmd_process_s3(argc - 2, argv + 2);
    }
    if (argc >= 2 && strcmp(argv[1], "process") == 0)
        return cmd_process(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return cmd_service(sn_cmd_serve, argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "worker") == 0)
        return cmd_service(sn_cmd_worker, argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return EXIT_DONE;
    }
    usage(stderr);
    return EXIT_USAGE;
}
