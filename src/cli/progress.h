/*
 * What `sinatra process` shows while it runs: a progress bar on a terminal
 * (percent, encoded frames per second, time left), one JSON object per
 * event with --json, or nothing with --quiet.
 */
#ifndef SN_CLI_PROGRESS_H
#define SN_CLI_PROGRESS_H

#include "cli/settings.h"

struct sn_progress {
    enum sn_output_mode mode;
    int tty;                  /* stderr is a terminal */
    const char *input;
    double last_draw;
};

/* Fills the pipeline's event callbacks so they report through p. */
void sn_progress_attach(struct sn_progress *p, struct sn_process_events *ev);

/* Reports the end of the run: the output path, or the error. */
void sn_progress_done(struct sn_progress *p, int rc, const char *output,
                      const char *err, double elapsed_s);

#endif
