#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static const char *const status_names[] = {
    [SN_VIDEO_QUEUED] = "queued",
    [SN_VIDEO_PROCESSING] = "processing",
    [SN_VIDEO_READY] = "ready",
    [SN_VIDEO_FAILED] = "failed",
};

#define N_STATUSES ((int)(sizeof(status_names) / sizeof(status_names[0])))

const char *sn_video_status_name(enum sn_video_status status)
{
    if ((int)status < 0 || (int)status >= N_STATUSES)
        return "unknown";
    return status_names[status];
}

int sn_video_status_parse(const char *name)
{
    for (int i = 0; name != NULL && i < N_STATUSES; i++) {
        if (strcmp(name, status_names[i]) == 0)
            return i;
    }
    return -1;
}

void sn_video_release(struct sn_video *v)
{
    if (v == NULL)
        return;
    free(v->done);
    free(v->summary);
    v->done = NULL;
    v->summary = NULL;
}

void sn_state_close(struct sn_state *st)
{
    if (st != NULL)
        st->ops->close(st);
}

int sn_state_check_plan(const struct sn_state *st, const char *id,
                        int n_jobs, int64_t duration_us, const char *summary,
                        char *err, size_t err_size)
{
    size_t summary_len = summary ? strlen(summary) : 0;

    if (n_jobs < 1 || n_jobs > SN_STATE_MAX_JOBS) {
        snprintf(err, err_size,
                 "state %s: video %s: plan of %d jobs is out of range "
                 "(1 to %d)", st->name, id, n_jobs, SN_STATE_MAX_JOBS);
        return SN_ERR_LIMIT;
    }
    if (duration_us < 0) {
        snprintf(err, err_size,
                 "state %s: video %s: negative duration %lld us", st->name,
                 id, (long long)duration_us);
        return SN_ERR_LIMIT;
    }
    if (summary_len > SN_STATE_MAX_SUMMARY) {
        snprintf(err, err_size,
                 "state %s: video %s: summary of %zu bytes is over the "
                 "limit of %d bytes", st->name, id, summary_len,
                 SN_STATE_MAX_SUMMARY);
        return SN_ERR_LIMIT;
    }
    return 0;
}
