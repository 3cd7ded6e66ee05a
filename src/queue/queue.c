#include "queue/queue.h"

#include <stdlib.h>
#include <string.h>

void sn_message_release(struct sn_message *m)
{
    if (m == NULL)
        return;
    free(m->body);
    memset(m, 0, sizeof(*m));
}

void sn_queue_close(struct sn_queue *q)
{
    if (q != NULL)
        q->ops->close(q);
}
