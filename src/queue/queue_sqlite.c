/*
 * The SQLite backend of the job queue. queue.h describes the delivery
 * model.
 *
 * Concurrency: any number of processes and threads may open the same
 * database file, each with its own handle from sn_queue_sqlite_open(). A
 * handle is opened without SQLite's mutexes, so it must be used by one
 * thread at a time, and it must not be used across fork(): the child opens
 * its own. Every change that reads before it writes runs in a
 * BEGIN IMMEDIATE transaction, which takes the database's write lock
 * first, so two receivers can never take the same message. Waiting for
 * that lock is bounded by the busy timeout, after which a call fails with
 * SN_ERR_BACKEND ("database is locked").
 *
 * Times are Unix milliseconds from CLOCK_REALTIME because the deadlines
 * are stored in the file and compared by other processes, and a monotonic
 * clock would not survive a reboot. A step of the wall clock therefore
 * shortens or stretches the visibility timeouts in flight.
 *
 * The tables are named queue_* so that the state backend can share the
 * file. Each database file contains one queue.
 */
#include "queue/queue.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/error.h"
#include "util/utf8.h"
#include "util/sqlite.h"

#define POLL_INTERVAL_MS 50

/* The ranges that SQS accepts, so that both backends reject the same
 * requests: visibility timeout and ChangeMessageVisibility up to 12 hours,
 * DelaySeconds up to 15 minutes. */
#define MAX_VISIBILITY_S 43200
#define MAX_SEND_DELAY_S 900

/* Maximum length in bytes of the last error kept with a message; longer
 * text is cut. */
#define MAX_LAST_ERROR 2048

/* Random bytes in a message id and in the random part of a receipt. */
#define RANDOM_BYTES 16

static const char schema_sql[] =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS queue_messages ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  body TEXT NOT NULL,"
    "  sent_ms INTEGER NOT NULL,"
    "  visible_ms INTEGER NOT NULL,"
    "  receive_count INTEGER NOT NULL DEFAULT 0,"
    "  receipt TEXT UNIQUE,"
    "  last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS queue_messages_by_visible"
    "  ON queue_messages (visible_ms);"
    "CREATE TABLE IF NOT EXISTS queue_dead ("
    "  id TEXT PRIMARY KEY,"
    "  body TEXT NOT NULL,"
    "  receive_count INTEGER NOT NULL,"
    "  last_error TEXT NOT NULL,"
    "  sent_ms INTEGER NOT NULL,"
    "  dead_ms INTEGER NOT NULL);"
    "COMMIT;";

struct sqlite_queue {
    struct sn_queue pub;
    sqlite3 *db;
};

/* A message as read by receive() before it is delivered or moved. */
struct row {
    int64_t seq;
    char id[64];
    char *body;
    int receive_count;
    char *last_error;
};

static const struct sn_queue_ops sqlite_queue_ops;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        continue;
}

/* Writes 2 * RANDOM_BYTES hex digits and a NUL to out. */
static int random_hex(char *out)
{
    unsigned char raw[RANDOM_BYTES];
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
    return 0;
}

static char *dup_text(const unsigned char *text)
{
    return strdup(text ? (const char *)text : "");
}

/* Formats the SQLite error of the handle. Call it before any rollback,
 * because a rollback replaces the message. */
static int db_error(struct sqlite_queue *q, const char *op, char *err,
                    size_t err_size)
{
    snprintf(err, err_size, "queue %s: %s failed: %s", q->pub.name, op,
             sqlite3_errmsg(q->db));
    return SN_ERR_BACKEND;
}

static int exec_sql(struct sqlite_queue *q, const char *sql, const char *op,
                    char *err, size_t err_size)
{
    if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(q, op, err, err_size);
    return 0;
}

static void rollback(struct sqlite_queue *q)
{
    if (q->db != NULL && !sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int prepare(struct sqlite_queue *q, const char *sql,
                   sqlite3_stmt **st, const char *op, char *err,
                   size_t err_size)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_error(q, op, err, err_size);
    return 0;
}

/* Runs a prepared statement that returns no rows. */
static int step_done(struct sqlite_queue *q, sqlite3_stmt *st,
                     const char *op, char *err, size_t err_size)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return db_error(q, op, err, err_size);
    return 0;
}

/* Copies at most MAX_LAST_ERROR bytes of text, cut before a UTF-8
 * continuation byte so that no character is split. */
static char *dup_last_error(const char *text)
{
    size_t len;
    char *copy;

    if (text == NULL)
        text = "";
    len = sn_utf8_cut(text, strlen(text), MAX_LAST_ERROR);
    copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    return copy;
}

/* ---- send --------------------------------------------------------------- */

static int check_batch(struct sqlite_queue *q, const char *const *bodies,
                       int n, int delay_s, char *err, size_t err_size)
{
    if (n < 1 || n > SN_QUEUE_MAX_BATCH) {
        snprintf(err, err_size,
                 "queue %s: batch of %d messages is out of range "
                 "(1 to %d)", q->pub.name, n, SN_QUEUE_MAX_BATCH);
        return SN_ERR_LIMIT;
    }
    if (delay_s < 0 || delay_s > MAX_SEND_DELAY_S) {
        snprintf(err, err_size,
                 "queue %s: delay of %d s is out of range (0 to %d s)",
                 q->pub.name, delay_s, MAX_SEND_DELAY_S);
        return SN_ERR_LIMIT;
    }
    for (int i = 0; i < n; i++) {
        size_t len = bodies[i] ? strlen(bodies[i]) : 0;

        if (bodies[i] == NULL || len > SN_QUEUE_MAX_BODY) {
            snprintf(err, err_size,
                     "queue %s: body of message %d has %zu bytes, "
                     "expected 0 to %d", q->pub.name, i, len,
                     SN_QUEUE_MAX_BODY);
            return SN_ERR_LIMIT;
        }
    }
    return 0;
}

static int sqlite_send(struct sn_queue *base, const char *const *bodies,
                       int n, int delay_s, char *err, size_t err_size)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;
    sqlite3_stmt *st = NULL;
    int64_t sent, visible;
    char id[2 * RANDOM_BYTES + 1];
    int rc;

    rc = check_batch(q, bodies, n, delay_s, err, err_size);
    if (rc < 0)
        return rc;

    rc = exec_sql(q, "BEGIN IMMEDIATE", "send", err, err_size);
    if (rc < 0)
        return rc;
    rc = prepare(q,
                 "INSERT INTO queue_messages (id, body, sent_ms, visible_ms)"
                 " VALUES (?1, ?2, ?3, ?4)", &st, "send", err, err_size);
    if (rc < 0)
        goto out;

    sent = now_ms();
    visible = sent + (int64_t)delay_s * 1000;
    for (int i = 0; i < n; i++) {
        rc = random_hex(id);
        if (rc < 0) {
            snprintf(err, err_size, "queue %s: send failed: getrandom: %s",
                     q->pub.name, strerror(-rc));
            rc = SN_ERR_BACKEND;
            goto out;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, bodies[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, sent);
        sqlite3_bind_int64(st, 4, visible);
        rc = step_done(q, st, "send", err, err_size);
        if (rc < 0)
            goto out;
    }
    rc = exec_sql(q, "COMMIT", "send", err, err_size);

out:
    sqlite3_finalize(st);
    if (rc < 0)
        rollback(q);
    return rc;
}

/* ---- receive ------------------------------------------------------------ */

static void row_release(struct row *r)
{
    free(r->body);
    free(r->last_error);
    memset(r, 0, sizeof(*r));
}

/* Reads the oldest visible message into *r, or returns SN_ERR_AGAIN when
 * no message is visible. */
static int select_oldest(struct sqlite_queue *q, int64_t now, struct row *r,
                         char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    rc = prepare(q,
                 "SELECT seq, id, body, receive_count, last_error"
                 " FROM queue_messages WHERE visible_ms <= ?1"
                 " ORDER BY seq LIMIT 1", &st, "receive", err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);

    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = SN_ERR_AGAIN;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_error(q, "receive", err, err_size);
        goto out;
    }

    r->seq = sqlite3_column_int64(st, 0);
    snprintf(r->id, sizeof(r->id), "%s",
             (const char *)sqlite3_column_text(st, 1));
    r->body = dup_text(sqlite3_column_text(st, 2));
    r->receive_count = sqlite3_column_int(st, 3);
    r->last_error = dup_text(sqlite3_column_text(st, 4));
    if (r->body == NULL || r->last_error == NULL) {
        snprintf(err, err_size, "queue %s: receive failed: out of memory",
                 q->pub.name);
        rc = SN_ERR_BACKEND;
    }

out:
    sqlite3_finalize(st);
    return rc;
}

/* Hides the message and gives it a new receipt, within the transaction. */
static int deliver(struct sqlite_queue *q, const struct row *r, int64_t now,
                   int visibility_s, char *receipt, size_t receipt_size,
                   char *err, size_t err_size)
{
    char random[2 * RANDOM_BYTES + 1];
    sqlite3_stmt *st = NULL;
    int rc;

    rc = random_hex(random);
    if (rc < 0) {
        snprintf(err, err_size, "queue %s: receive failed: getrandom: %s",
                 q->pub.name, strerror(-rc));
        return SN_ERR_BACKEND;
    }
    snprintf(receipt, receipt_size, "%s:%s", r->id, random);

    rc = prepare(q,
                 "UPDATE queue_messages SET receive_count = receive_count + 1,"
                 " receipt = ?2, visible_ms = ?3 WHERE seq = ?1", &st,
                 "receive", err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_text(st, 2, receipt, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now + (int64_t)visibility_s * 1000);
    rc = step_done(q, st, "receive", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

/* Moves the message to queue_dead, within the transaction. */
static int move_to_dead(struct sqlite_queue *q, const struct row *r,
                        int64_t now, char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = prepare(q,
                 "INSERT OR REPLACE INTO queue_dead (id, body, receive_count,"
                 " last_error, sent_ms, dead_ms) SELECT id, body,"
                 " receive_count, last_error, sent_ms, ?2"
                 " FROM queue_messages WHERE seq = ?1", &st, "dead-letter",
                 err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_int64(st, 2, now);
    rc = step_done(q, st, "dead-letter", err, err_size);
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;

    rc = prepare(q, "DELETE FROM queue_messages WHERE seq = ?1", &st,
                 "dead-letter", err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, r->seq);
    rc = step_done(q, st, "dead-letter", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

/*
 * Takes the oldest visible message in one transaction. Returns 0 and fills
 * *out when it delivered one; 1 when the message had used up its
 * receives and was moved to the dead-letter table instead, with *dead
 * filled for the callback; SN_ERR_AGAIN when no message is visible.
 */
static int take_oldest(struct sqlite_queue *q, int visibility_s,
                       struct sn_message *out, struct row *dead, char *err,
                       size_t err_size)
{
    struct row r = {0};
    char receipt[sizeof(out->receipt)];
    int64_t now;
    int rc, moved = 0;

    rc = exec_sql(q, "BEGIN IMMEDIATE", "receive", err, err_size);
    if (rc < 0)
        return rc;

    now = now_ms();
    rc = select_oldest(q, now, &r, err, err_size);
    if (rc < 0)
        goto out;

    if (r.receive_count >= q->pub.max_receives) {
        rc = move_to_dead(q, &r, now, err, err_size);
        moved = 1;
    } else {
        rc = deliver(q, &r, now, visibility_s, receipt, sizeof(receipt),
                     err, err_size);
    }
    if (rc < 0)
        goto out;
    rc = exec_sql(q, "COMMIT", "receive", err, err_size);
    if (rc < 0)
        goto out;

    if (moved) {
        *dead = r;
        memset(&r, 0, sizeof(r));
        rc = 1;
    } else {
        memset(out, 0, sizeof(*out));
        snprintf(out->id, sizeof(out->id), "%s", r.id);
        snprintf(out->receipt, sizeof(out->receipt), "%s", receipt);
        out->body = r.body;
        out->receive_count = r.receive_count + 1;
        r.body = NULL;
    }

out:
    if (rc < 0)
        rollback(q);
    row_release(&r);
    return rc;
}

static int sqlite_receive(struct sn_queue *base, int visibility_s,
                          int wait_ms, struct sn_message *out, char *err,
                          size_t err_size)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;
    int64_t deadline = monotonic_ms() + (wait_ms > 0 ? wait_ms : 0);

    if (visibility_s < 0 || visibility_s > MAX_VISIBILITY_S) {
        snprintf(err, err_size,
                 "queue %s: visibility timeout of %d s is out of range "
                 "(0 to %d s)", q->pub.name, visibility_s, MAX_VISIBILITY_S);
        return SN_ERR_LIMIT;
    }

    for (;;) {
        struct row dead = {0};
        int64_t left;
        int rc = take_oldest(q, visibility_s, out, &dead, err, err_size);

        /* The callback runs after the commit, so that it never reports a
         * move that was rolled back. */
        if (rc == 1) {
            if (q->pub.dead_letter != NULL)
                q->pub.dead_letter(q->pub.dead_letter_opaque, dead.body,
                                   dead.receive_count, dead.last_error);
            row_release(&dead);
            continue;
        }
        if (rc != SN_ERR_AGAIN)
            return rc;

        left = deadline - monotonic_ms();
        if (left <= 0) {
            snprintf(err, err_size, "queue %s: no message came within %d ms",
                     q->pub.name, wait_ms);
            return SN_ERR_AGAIN;
        }
        sleep_ms(left < POLL_INTERVAL_MS ? left : POLL_INTERVAL_MS);
    }
}

/* ---- extend, remove, release -------------------------------------------- */

/*
 * Runs one statement that changes the message with the receipt bound as ?1
 * and returns SN_ERR_CONFLICT when no message has that receipt any more.
 */
static int change_by_receipt(struct sqlite_queue *q, sqlite3_stmt *st,
                             const char *receipt, const char *op, char *err,
                             size_t err_size)
{
    int rc = step_done(q, st, op, err, err_size);

    if (rc < 0)
        return rc;
    if (sqlite3_changes(q->db) == 0) {
        snprintf(err, err_size,
                 "queue %s: %s failed: receipt %s is stale (the message "
                 "was delivered again or deleted)", q->pub.name, op,
                 receipt);
        return SN_ERR_CONFLICT;
    }
    return 0;
}

static int check_receipt(struct sqlite_queue *q, const char *receipt,
                         const char *op, char *err, size_t err_size)
{
    if (receipt == NULL || receipt[0] == '\0') {
        snprintf(err, err_size, "queue %s: %s failed: missing receipt",
                 q->pub.name, op);
        return SN_ERR_CONFLICT;
    }
    return 0;
}

static int check_visibility(struct sqlite_queue *q, int seconds,
                            const char *op, char *err, size_t err_size)
{
    if (seconds < 0 || seconds > MAX_VISIBILITY_S) {
        snprintf(err, err_size,
                 "queue %s: %s failed: %d s is out of range (0 to %d s)",
                 q->pub.name, op, seconds, MAX_VISIBILITY_S);
        return SN_ERR_LIMIT;
    }
    return 0;
}

static int sqlite_extend(struct sn_queue *base, const char *receipt,
                         int visibility_s, char *err, size_t err_size)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;
    sqlite3_stmt *st = NULL;
    int rc;

    rc = check_receipt(q, receipt, "extend", err, err_size);
    if (rc == 0)
        rc = check_visibility(q, visibility_s, "extend", err, err_size);
    if (rc < 0)
        return rc;

    rc = prepare(q,
                 "UPDATE queue_messages SET visible_ms = ?2"
                 " WHERE receipt = ?1", &st, "extend", err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, receipt, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms() + (int64_t)visibility_s * 1000);
    rc = change_by_receipt(q, st, receipt, "extend", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_remove(struct sn_queue *base, const char *receipt,
                         char *err, size_t err_size)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;
    sqlite3_stmt *st = NULL;
    int rc;

    rc = check_receipt(q, receipt, "remove", err, err_size);
    if (rc < 0)
        return rc;

    rc = prepare(q, "DELETE FROM queue_messages WHERE receipt = ?1", &st,
                 "remove", err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, receipt, -1, SQLITE_STATIC);
    rc = change_by_receipt(q, st, receipt, "remove", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_release(struct sn_queue *base, const char *receipt,
                          int delay_s, const char *error, char *err,
                          size_t err_size)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;
    sqlite3_stmt *st = NULL;
    char *last_error = NULL;
    int rc;

    rc = check_receipt(q, receipt, "release", err, err_size);
    if (rc == 0)
        rc = check_visibility(q, delay_s, "release", err, err_size);
    if (rc < 0)
        return rc;

    last_error = dup_last_error(error);
    if (last_error == NULL) {
        snprintf(err, err_size, "queue %s: release failed: out of memory",
                 q->pub.name);
        return SN_ERR_BACKEND;
    }
    rc = prepare(q,
                 "UPDATE queue_messages SET visible_ms = ?2, last_error = ?3"
                 " WHERE receipt = ?1", &st, "release", err, err_size);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, receipt, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms() + (int64_t)delay_s * 1000);
    sqlite3_bind_text(st, 3, last_error, -1, SQLITE_STATIC);
    rc = change_by_receipt(q, st, receipt, "release", err, err_size);

out:
    sqlite3_finalize(st);
    free(last_error);
    return rc;
}

/* ---- count, open, close ------------------------------------------------- */

/* Runs a query that returns one row and stores its integer columns. */
static int query_counts(struct sqlite_queue *q, const char *sql, int64_t now,
                        int64_t *values, int n_values, char *err,
                        size_t err_size)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = prepare(q, sql, &st, "count", err, err_size);
    if (rc < 0)
        return rc;
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, now);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(q, "count", err, err_size);
        goto out;
    }
    for (int i = 0; i < n_values; i++)
        values[i] = sqlite3_column_int64(st, i);

out:
    sqlite3_finalize(st);
    return rc;
}

/* in_flight counts every hidden message: received ones, released ones
 * waiting for their delay, and ones sent with a delay. */
static int sqlite_count(struct sn_queue *base, int64_t *visible,
                        int64_t *in_flight, int64_t *dead, char *err,
                        size_t err_size)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;
    int64_t live[2] = {0, 0}, dead_count = 0, now = now_ms();
    int rc;

    /* One read transaction, so that both counts come from one snapshot. */
    rc = exec_sql(q, "BEGIN", "count", err, err_size);
    if (rc < 0)
        return rc;
    rc = query_counts(q,
                      "SELECT coalesce(sum(visible_ms <= ?1), 0),"
                      " coalesce(sum(visible_ms > ?1), 0)"
                      " FROM queue_messages", now, live, 2, err, err_size);
    if (rc == 0)
        rc = query_counts(q, "SELECT count(*) FROM queue_dead", now,
                          &dead_count, 1, err, err_size);
    if (rc == 0)
        rc = exec_sql(q, "COMMIT", "count", err, err_size);
    if (rc < 0) {
        rollback(q);
        return rc;
    }

    if (visible)
        *visible = live[0];
    if (in_flight)
        *in_flight = live[1];
    if (dead)
        *dead = dead_count;
    return 0;
}

static void sqlite_close(struct sn_queue *base)
{
    struct sqlite_queue *q = (struct sqlite_queue *)base;

    sqlite3_close(q->db);
    free(q);
}

static const struct sn_queue_ops sqlite_queue_ops = {
    .send = sqlite_send,
    .receive = sqlite_receive,
    .extend = sqlite_extend,
    .remove = sqlite_remove,
    .release = sqlite_release,
    .count = sqlite_count,
    .close = sqlite_close,
};

int sn_queue_sqlite_open(const char *path, int max_receives,
                         struct sn_queue **out, char *err, size_t err_size)
{
    struct sqlite_queue *q;
    int rc;

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        snprintf(err, err_size, "queue %s: open failed: out of memory",
                 path);
        return SN_ERR_BACKEND;
    }
    q->pub.ops = &sqlite_queue_ops;
    snprintf(q->pub.name, sizeof(q->pub.name), "%s", path);
    q->pub.max_receives = max_receives;
    if (max_receives < 1) {
        snprintf(err, err_size,
                 "queue %s: open failed: max_receives is %d, expected at "
                 "least 1", path, max_receives);
        rc = SN_ERR_BACKEND;
        goto out;
    }

    rc = sn_sqlite_open(path, "queue", &q->db, err, err_size);
    if (rc == 0)
        rc = exec_sql(q, schema_sql, "open", err, err_size);

out:
    if (rc < 0) {
        rollback(q);
        sqlite_close(&q->pub);
        return rc;
    }
    *out = &q->pub;
    return 0;
}
