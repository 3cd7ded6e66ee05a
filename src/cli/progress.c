#include "cli/progress.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void emit(json_t *event)
{
    char *text = json_dumps(event, JSON_COMPACT);

    if (text != NULL) {
        printf("%s\n", text);
        fflush(stdout);
    }
    free(text);
    json_decref(event);
}

static void on_probed(void *opaque, const struct sn_probe *probe,
                      const struct sn_rung *rungs, int n_rungs)
{
    struct sn_progress *p = opaque;
    json_t *ladder;

    if (p->mode != SN_OUTPUT_JSON)
        return;
    ladder = json_array();
    for (int i = 0; i < n_rungs; i++)
        json_array_append_new(
            ladder, json_pack("{s:s,s:i,s:i,s:i,s:f}", "name", rungs[i].name,
                              "width", rungs[i].width, "height",
                              rungs[i].height, "maxrate", rungs[i].maxrate,
                              "frame_rate", rungs[i].frame_rate));
    emit(json_pack("{s:s,s:s,s:f,s:I,s:b,s:b,s:o}", "event", "probe",
                   "input", p->input, "duration_s", probe->duration_us / 1e6,
                   "frames", (json_int_t)probe->n_frames, "video",
                   probe->video_index >= 0, "audio", probe->audio_index >= 0,
                   "ladder", ladder));
}

static void on_planned(void *opaque, const struct sn_plan *plan, int n_jobs)
{
    struct sn_progress *p = opaque;

    if (p->mode == SN_OUTPUT_JSON)
        emit(json_pack("{s:s,s:i,s:i,s:i}", "event", "plan", "segments",
                       plan->n_segments, "chunks", plan->n_chunks, "jobs",
                       n_jobs));
}

static void draw_bar(double fraction, double fps,
                     double eta)
{
    char bar[31];
    int filled = (int)(fraction * 30);

    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  %6.1f fps  ETA %4.0f s ", bar,
            fraction * 100, fps, eta);
    fflush(stderr);
}

static void on_progress(void *opaque, int64_t done, int64_t total,
                        double elapsed)
{
    struct sn_progress *p = opaque;
    double fraction = total > 0 ? (double)done / (double)total : 0;
    double fps = elapsed > 0 ? (double)done / elapsed : 0;
    double eta = fps > 0 ? (double)(total - done) / fps : 0;

    if (fraction > 1)
        fraction = 1;
    if (elapsed - p->last_draw < 0.5)
        return;
    p->last_draw = elapsed;

    if (p->mode == SN_OUTPUT_JSON)
        emit(json_pack("{s:s,s:f,s:f,s:f,s:I}", "event", "progress",
                       "percent", fraction * 100, "fps", fps, "eta_s", eta,
                       "frames", (json_int_t)done));
    else if (p->mode == SN_OUTPUT_BAR && p->tty)
        draw_bar(fraction, fps, eta);
}

static void on_first_segments(void *opaque, const char *master,
                              double elapsed)
{
    struct sn_progress *p = opaque;

    if (p->mode == SN_OUTPUT_JSON)
        emit(json_pack("{s:s,s:s,s:f}", "event", "first_segments", "master",
                       master, "elapsed_s", elapsed));
}

void sn_progress_attach(struct sn_progress *p, struct sn_process_events *ev)
{
    p->tty = isatty(STDERR_FILENO);
    p->last_draw = -1;
    ev->probed = on_probed;
    ev->planned = on_planned;
    ev->progress = on_progress;
    ev->first_segments = on_first_segments;
    ev->opaque = p;
}

void sn_progress_done(struct sn_progress *p, int rc, const char *output,
                      const char *err, double elapsed)
{
    if (p->mode == SN_OUTPUT_BAR && p->tty)
        fprintf(stderr, "\r%70s\r", "");
    if (p->mode == SN_OUTPUT_JSON) {
        if (rc == 0)
            emit(json_pack("{s:s,s:s,s:f}", "event", "done", "output",
                           output, "elapsed_s", elapsed));
        else
            emit(json_pack("{s:s,s:i,s:s}", "event", "error", "code", rc,
                           "message", err));
    }
    if (rc != 0)
        fprintf(stderr, "sinatra: %s\n", err);
    else if (p->mode == SN_OUTPUT_BAR)
        printf("done in %.1f s: %s/master.m3u8\n", elapsed, output);
}
