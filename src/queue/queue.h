/*
 * The job queue, with the delivery model of SQS: a received message stays
 * in the queue but is invisible for a visibility timeout; the receiver
 * deletes it when the job is done, extends the timeout while it works
 * (heartbeat), or lets it come back. Every receive counts; a message that
 * has been received max_receives times and comes back once more moves to
 * the dead-letter store instead of being delivered. A message can
 * therefore be delivered more than once, and jobs must be idempotent.
 *
 * The local backend keeps messages in SQLite (WAL); several processes and
 * threads can share one database file. The AWS backend is SQS.
 */
#ifndef SN_QUEUE_QUEUE_H
#define SN_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

/* Largest message body accepted, in bytes (SQS allows 256 KiB). */
#define SN_QUEUE_MAX_BODY (64 * 1024)

/* Largest batch for send(). */
#define SN_QUEUE_MAX_BATCH 10

/*
 * Size of a receipt buffer, terminating NUL included. SQS receipt handles
 * run to several hundred bytes.
 * NOTE: the SQS API reference gives no maximum receipt handle length, so
 * 2048 is a guess; the SQS backend rejects a longer handle with
 * SN_ERR_LIMIT.
 */
#define SN_QUEUE_RECEIPT_SIZE 2048

struct sn_message {
    char id[64];              /* stable across deliveries */
    char receipt[SN_QUEUE_RECEIPT_SIZE]; /* this delivery; stale after the
                                            next one */
    char *body;               /* NUL-terminated, malloc'd */
    int receive_count;        /* 1 on the first delivery */
};

void sn_message_release(struct sn_message *m);

struct sn_queue;

/* Called by the backend when it moves a message to the dead-letter store,
 * with the error its last receiver reported (or "" when none did). */
typedef void (*sn_dead_letter_fn)(void *opaque, const char *body,
                                  int receive_count, const char *last_error);

struct sn_queue_ops {
    /* Sends n (1 to SN_QUEUE_MAX_BATCH) messages. All are visible at once
     * (after delay_s seconds when positive). */
    int (*send)(struct sn_queue *q, const char *const *bodies, int n,
                int delay_s, char *err, size_t err_size);
    /* Receives one message, waiting up to wait_ms for one to become
     * visible, and hides it for visibility_s seconds. Returns 0 and fills
     * *out, or SN_ERR_AGAIN when none came. */
    int (*receive)(struct sn_queue *q, int visibility_s, int wait_ms,
                   struct sn_message *out, char *err, size_t err_size);
    /* Hides the message for visibility_s more seconds from now.
     * SN_ERR_CONFLICT when the receipt is stale (the message was
     * delivered again or deleted). */
    int (*extend)(struct sn_queue *q, const char *receipt, int visibility_s,
                  char *err, size_t err_size);
    /* Deletes the message; a stale receipt gives SN_ERR_CONFLICT and the
     * message stays. */
    int (*remove)(struct sn_queue *q, const char *receipt, char *err,
                  size_t err_size);
    /* Gives a failed message back: visible again after delay_s seconds,
     * with error kept as its last error. SN_ERR_CONFLICT when stale. */
    int (*release)(struct sn_queue *q, const char *receipt, int delay_s,
                   const char *error, char *err, size_t err_size);
    /* Counts messages: visible, in flight and dead; any may be NULL. */
    int (*count)(struct sn_queue *q, int64_t *visible, int64_t *in_flight,
                 int64_t *dead, char *err, size_t err_size);
    void (*close)(struct sn_queue *q);
};

struct sn_queue {
    const struct sn_queue_ops *ops;
    char name[256];           /* for messages: a database path or queue URL */
    int max_receives;         /* deliveries before dead-lettering, >= 1 */
    sn_dead_letter_fn dead_letter;    /* may be NULL */
    void *dead_letter_opaque;
};

/*
 * Opens (creating if needed) the SQLite queue in the database file at
 * path, in WAL mode with a busy timeout, so that any number of processes
 * can open the same file. max_receives must be at least 1. Returns 0 and
 * *out, or SN_ERR_BACKEND with the cause in err.
 */
int sn_queue_sqlite_open(const char *path, int max_receives,
                         struct sn_queue **out, char *err, size_t err_size);

void sn_queue_close(struct sn_queue *q);

#endif
