#include "state/state.h"

#include <stdlib.h>
#include <string.h>

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
