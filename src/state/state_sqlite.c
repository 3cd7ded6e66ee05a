/*
 * The SQLite backend of the video state; state.h describes the record and
 * the rules of every update.
 *
 * Concurrency: any number of processes and threads may open the same
 * database file, each with its own handle from sn_state_sqlite_open(). A
 * handle is opened without SQLite's mutexes, so it must be used by one
 * thread at a time, and it must not be used across fork(): the child opens
 * its own. Every update reads the record, checks its generation and status
 * and writes in one BEGIN IMMEDIATE transaction, which takes the
 * database's write lock first. Two racing callers therefore run one after
 * the other, and the second reads the record as the first left it. Waiting
 * for that lock is bounded by the busy timeout, after which a call fails
 * with SN_ERR_BACKEND ("database is locked").
 *
 * The done set of a video is a table of (video id, generation, job) rows
 * with that triple as primary key, so adding a job twice keeps one row.
 * videos.n_done counts the rows of the current generation and grows in the
 * same transaction as the insert. Timestamps are Unix milliseconds from
 * CLOCK_REALTIME.
 *
 * The tables are named videos and video_jobs_done so that the queue
 * backend can share the file.
 */
#include "state/state.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/utf8.h"
#include "util/sqlite.h"

static const char schema_sql[] =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS videos ("
    "  id TEXT PRIMARY KEY,"
    "  source TEXT NOT NULL,"
    "  upload_tag TEXT NOT NULL,"
    "  generation INTEGER NOT NULL,"
    "  status TEXT NOT NULL"
    "    CHECK (status IN ('queued', 'processing', 'ready', 'failed')),"
    "  n_jobs INTEGER NOT NULL DEFAULT 0,"
    "  n_done INTEGER NOT NULL DEFAULT 0,"
    "  duration_us INTEGER NOT NULL DEFAULT 0,"
    "  summary TEXT,"
    "  error TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    /* Upload order across all videos, raised by every new upload. list()
     * sorts by it. */
    "  upload_seq INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS videos_by_upload ON videos (upload_seq);"
    "CREATE TABLE IF NOT EXISTS video_jobs_done ("
    "  video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,"
    "  generation INTEGER NOT NULL,"
    "  job INTEGER NOT NULL,"
    "  PRIMARY KEY (video_id, generation, job)) WITHOUT ROWID;"
    "COMMIT;";

#define VIDEO_COLUMNS                                                      \
    "id, source, upload_tag, generation, status, n_jobs, n_done,"         \
    " duration_us, summary, error, created_ms, updated_ms"

static const char *const status_names[] = {
    [SN_VIDEO_QUEUED] = "queued",
    [SN_VIDEO_PROCESSING] = "processing",
    [SN_VIDEO_READY] = "ready",
    [SN_VIDEO_FAILED] = "failed",
};

#define N_STATUSES ((int)(sizeof(status_names) / sizeof(status_names[0])))

struct sqlite_state {
    struct sn_state pub;
    sqlite3 *db;
};

/* The fields of a record that the updates check. */
struct record {
    int64_t generation;
    int status;
    int n_jobs;
    int n_done;
    char upload_tag[80];
};

static const struct sn_state_ops sqlite_state_ops;

static int status_from_name(const unsigned char *name)
{
    for (int i = 0; name != NULL && i < N_STATUSES; i++) {
        if (strcmp((const char *)name, status_names[i]) == 0)
            return i;
    }
    return -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- SQLite helpers ----------------------------------------------------- */

/* Formats the SQLite error of the handle. Call it before any rollback,
 * because a rollback replaces the message. */
static int db_error(struct sqlite_state *s, const char *id, const char *op,
                    char *err, size_t err_size)
{
    if (id != NULL)
        snprintf(err, err_size, "state %s: video %s: %s failed: %s",
                 s->pub.name, id, op, sqlite3_errmsg(s->db));
    else
        snprintf(err, err_size, "state %s: %s failed: %s", s->pub.name, op,
                 sqlite3_errmsg(s->db));
    return SN_ERR_BACKEND;
}

static int exec_sql(struct sqlite_state *s, const char *id, const char *sql,
                    const char *op, char *err, size_t err_size)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, id, op, err, err_size);
    return 0;
}

static void rollback(struct sqlite_state *s)
{
    if (s->db != NULL && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * Prepares sql and binds the arguments that follow, one per letter of
 * types: 't' a const char * (NULL binds NULL), 'i' an int64_t. The text
 * must outlive the statement.
 */
static int prepare_args(struct sqlite_state *s, const char *id,
                        const char *op, sqlite3_stmt **st, const char *sql,
                        const char *types, va_list ap, char *err,
                        size_t err_size)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_error(s, id, op, err, err_size);

    for (int i = 0; types[i] != '\0'; i++) {
        if (types[i] == 't')
            sqlite3_bind_text(*st, i + 1, va_arg(ap, const char *), -1,
                              SQLITE_STATIC);
        else
            sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
    }
    return 0;
}

/* Prepares sql with its arguments bound; see prepare_args(). */
static int prepare_sql(struct sqlite_state *s, const char *id,
                       const char *op, sqlite3_stmt **st, char *err,
                       size_t err_size, const char *sql, const char *types,
                       ...)
{
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = prepare_args(s, id, op, st, sql, types, ap, err, err_size);
    va_end(ap);
    return rc;
}

/* Runs one statement that returns no rows; see prepare_args(). */
static int run_sql(struct sqlite_state *s, const char *id, const char *op,
                   char *err, size_t err_size, const char *sql,
                   const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = prepare_args(s, id, op, &st, sql, types, ap, err, err_size);
    va_end(ap);
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
        rc = db_error(s, id, op, err, err_size);
    sqlite3_finalize(st);
    return rc;
}

/* Runs a query whose first row's first column is an integer. A query with
 * no rows gives 0. */
static int query_int(struct sqlite_state *s, const char *id, const char *op,
                     int64_t *value, char *err, size_t err_size,
                     const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc, step;

    va_start(ap, types);
    rc = prepare_args(s, id, op, &st, sql, types, ap, err, err_size);
    va_end(ap);
    if (rc < 0)
        goto out;

    *value = 0;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *value = sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE)
        rc = db_error(s, id, op, err, err_size);

out:
    sqlite3_finalize(st);
    return rc;
}

/* ---- checks ------------------------------------------------------------- */

/* Rejects text that is empty or does not fit a field of size bytes. */
static int check_text(struct sqlite_state *s, const char *what,
                      const char *text, size_t size, char *err,
                      size_t err_size)
{
    size_t len = text ? strlen(text) : 0;

    if (len == 0 || len >= size) {
        snprintf(err, err_size,
                 "state %s: %s has %zu bytes, expected 1 to %zu",
                 s->pub.name, what, len, size - 1);
        return SN_ERR_LIMIT;
    }
    return 0;
}

static int check_id(struct sqlite_state *s, const char *id, char *err,
                    size_t err_size)
{
    return check_text(s, "video id", id, sizeof(((struct sn_video *)0)->id),
                      err, err_size);
}

/* Reads the checked fields of the record, or returns SN_ERR_NOT_FOUND
 * when there is none. */
static int load_record(struct sqlite_state *s, const char *id,
                       const char *op, struct record *rec, char *err,
                       size_t err_size)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    rc = prepare_sql(s, id, op, &st, err, err_size,
                     "SELECT generation, status, n_jobs, n_done, upload_tag"
                     " FROM videos WHERE id = ?1", "t", id);
    if (rc < 0)
        return rc;

    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        snprintf(err, err_size, "state %s: video %s: %s failed: not found",
                 s->pub.name, id, op);
        rc = SN_ERR_NOT_FOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_error(s, id, op, err, err_size);
        goto out;
    }

    rec->generation = sqlite3_column_int64(st, 0);
    rec->status = status_from_name(sqlite3_column_text(st, 1));
    rec->n_jobs = sqlite3_column_int(st, 2);
    rec->n_done = sqlite3_column_int(st, 3);
    snprintf(rec->upload_tag, sizeof(rec->upload_tag), "%s",
             (const char *)sqlite3_column_text(st, 4));
    if (rec->status < 0) {
        snprintf(err, err_size,
                 "state %s: video %s: %s failed: unknown status in the "
                 "database", s->pub.name, id, op);
        rc = SN_ERR_BACKEND;
    }

out:
    sqlite3_finalize(st);
    return rc;
}

/* Loads the record and checks that generation is its current one. */
static int load_current(struct sqlite_state *s, const char *id,
                        int64_t generation, const char *op,
                        struct record *rec, char *err, size_t err_size)
{
    int rc = load_record(s, id, op, rec, err, err_size);

    if (rc < 0)
        return rc;
    if (rec->generation != generation) {
        snprintf(err, err_size,
                 "state %s: video %s: %s failed: generation %lld is stale "
                 "(current is %lld)", s->pub.name, id, op,
                 (long long)generation, (long long)rec->generation);
        return SN_ERR_CONFLICT;
    }
    return 0;
}

static int status_conflict(struct sqlite_state *s, const char *id,
                           const char *op, const struct record *rec,
                           char *err, size_t err_size)
{
    snprintf(err, err_size, "state %s: video %s: %s failed: video is %s",
             s->pub.name, id, op, status_names[rec->status]);
    return SN_ERR_CONFLICT;
}

/* Copies text into a field of size bytes, cut before a UTF-8
 * continuation byte so that no character is split. */
static void copy_cut(char *field, size_t size, const char *text)
{
    size_t len = sn_utf8_cut(text, strlen(text), size - 1);

    memcpy(field, text, len);
    field[len] = '\0';
}

/* ---- updates ------------------------------------------------------------ */

static int insert_video(struct sqlite_state *s, const char *id,
                        const char *source, const char *tag, int64_t now,
                        char *err, size_t err_size)
{
    return run_sql(s, id, "begin", err, err_size,
                   "INSERT INTO videos (id, source, upload_tag, generation,"
                   " status, created_ms, updated_ms, upload_seq)"
                   " VALUES (?1, ?2, ?3, 1, 'queued', ?4, ?4,"
                   " (SELECT coalesce(max(upload_seq), 0) + 1 FROM videos))",
                   "ttti", id, source, tag, now);
}

/* Starts the next generation: plan, done set and error cleared. */
static int restart_video(struct sqlite_state *s, const char *id,
                         const char *source, const char *tag, int64_t now,
                         char *err, size_t err_size)
{
    int rc;

    rc = run_sql(s, id, "begin", err, err_size,
                 "UPDATE videos SET source = ?2, upload_tag = ?3,"
                 " generation = generation + 1, status = 'queued',"
                 " n_jobs = 0, n_done = 0, duration_us = 0, summary = NULL,"
                 " error = '', updated_ms = ?4,"
                 " upload_seq = (SELECT max(upload_seq) + 1 FROM videos)"
                 " WHERE id = ?1", "ttti", id, source, tag, now);
    if (rc < 0)
        return rc;
    return run_sql(s, id, "begin", err, err_size,
                   "DELETE FROM video_jobs_done WHERE video_id = ?1", "t",
                   id);
}

static int sqlite_begin(struct sn_state *base, const char *id,
                        const char *source, const char *tag,
                        int64_t *generation, char *err, size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    struct record rec;
    int64_t current = 0;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc == 0)
        rc = check_text(s, "source", source,
                        sizeof(((struct sn_video *)0)->source), err,
                        err_size);
    if (rc == 0)
        rc = check_text(s, "upload tag", tag, sizeof(rec.upload_tag), err,
                        err_size);
    if (rc < 0)
        return rc;

    rc = exec_sql(s, id, "BEGIN IMMEDIATE", "begin", err, err_size);
    if (rc < 0)
        return rc;
    rc = load_record(s, id, "begin", &rec, err, err_size);
    if (rc == SN_ERR_NOT_FOUND) {
        current = 1;
        rc = insert_video(s, id, source, tag, now_ms(), err, err_size);
    } else if (rc == 0 && strcmp(rec.upload_tag, tag) == 0) {
        /* A repeated event for the upload this generation began with. */
        current = rec.generation;
    } else if (rc == 0) {
        current = rec.generation + 1;
        rc = restart_video(s, id, source, tag, now_ms(), err, err_size);
    }
    if (rc == 0)
        rc = exec_sql(s, id, "COMMIT", "begin", err, err_size);
    if (rc < 0) {
        rollback(s);
        return rc;
    }

    if (generation)
        *generation = current;
    return 0;
}

/*
 * Accepts a plan that repeats the recorded one (a redelivered orchestrator
 * job) and rejects a different one with SN_ERR_CONFLICT, because the done
 * set may already count jobs of the recorded plan.
 */
static int compare_plan(struct sqlite_state *s, const char *id, int n_jobs,
                        int64_t duration_us, const char *summary,
                        char *err, size_t err_size)
{
    int64_t same;
    int rc;

    rc = query_int(s, id, "set plan", &same, err, err_size,
                   "SELECT count(*) FROM videos WHERE id = ?1"
                   " AND n_jobs = ?2 AND duration_us = ?3"
                   " AND summary IS ?4", "tiit", id, (int64_t)n_jobs,
                   duration_us, summary);
    if (rc < 0 || same)
        return rc;
    snprintf(err, err_size,
             "state %s: video %s: set plan failed: the generation is "
             "already planned with other values", s->pub.name, id);
    return SN_ERR_CONFLICT;
}

static int sqlite_set_plan(struct sn_state *base, const char *id,
                           int64_t generation, int n_jobs,
                           int64_t duration_us, const char *summary,
                           char *err, size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    struct record rec;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc == 0)
        rc = sn_state_check_plan(&s->pub, id, n_jobs, duration_us, summary,
                                 err, err_size);
    if (rc < 0)
        return rc;

    rc = exec_sql(s, id, "BEGIN IMMEDIATE", "set plan", err, err_size);
    if (rc < 0)
        return rc;
    rc = load_current(s, id, generation, "set plan", &rec, err, err_size);
    if (rc < 0)
        goto out;

    if (rec.status == SN_VIDEO_PROCESSING)
        rc = compare_plan(s, id, n_jobs, duration_us, summary, err,
                          err_size);
    else if (rec.status != SN_VIDEO_QUEUED)
        rc = status_conflict(s, id, "set plan", &rec, err, err_size);
    else
        rc = run_sql(s, id, "set plan", err, err_size,
                     "UPDATE videos SET status = 'processing', n_jobs = ?2,"
                     " duration_us = ?3, summary = ?4, updated_ms = ?5"
                     " WHERE id = ?1", "tiiti", id, (int64_t)n_jobs,
                     duration_us, summary, now_ms());
    if (rc == 0)
        rc = exec_sql(s, id, "COMMIT", "set plan", err, err_size);

out:
    if (rc < 0)
        rollback(s);
    return rc;
}

static int sqlite_mark_done(struct sn_state *base, const char *id,
                            int64_t generation, int job, int *n_done,
                            char *err, size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    struct record rec;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;

    rc = exec_sql(s, id, "BEGIN IMMEDIATE", "mark done", err, err_size);
    if (rc < 0)
        return rc;
    rc = load_current(s, id, generation, "mark done", &rec, err, err_size);
    if (rc < 0)
        goto out;
    if (rec.status != SN_VIDEO_PROCESSING && rec.status != SN_VIDEO_READY) {
        rc = status_conflict(s, id, "mark done", &rec, err, err_size);
        goto out;
    }
    if (job < 0 || job >= rec.n_jobs) {
        snprintf(err, err_size,
                 "state %s: video %s: mark done failed: job %d is out of "
                 "range (the plan has %d jobs)", s->pub.name, id, job,
                 rec.n_jobs);
        rc = SN_ERR_CONFLICT;
        goto out;
    }

    rc = run_sql(s, id, "mark done", err, err_size,
                 "INSERT OR IGNORE INTO video_jobs_done"
                 " (video_id, generation, job) VALUES (?1, ?2, ?3)", "tii",
                 id, generation, (int64_t)job);
    if (rc == 0 && sqlite3_changes(s->db) == 1) {
        rec.n_done++;
        rc = run_sql(s, id, "mark done", err, err_size,
                     "UPDATE videos SET n_done = n_done + 1, updated_ms = ?2"
                     " WHERE id = ?1", "ti", id, now_ms());
    }
    if (rc == 0)
        rc = exec_sql(s, id, "COMMIT", "mark done", err, err_size);

out:
    if (rc < 0) {
        rollback(s);
        return rc;
    }
    if (n_done)
        *n_done = rec.n_done;
    return 0;
}

static int sqlite_finish(struct sn_state *base, const char *id,
                         int64_t generation, int *won, char *err,
                         size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    struct record rec;
    int rc, changed = 0;

    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;

    rc = exec_sql(s, id, "BEGIN IMMEDIATE", "finish", err, err_size);
    if (rc < 0)
        return rc;
    rc = load_current(s, id, generation, "finish", &rec, err, err_size);
    if (rc < 0)
        goto out;

    if (rec.status == SN_VIDEO_READY) {
        /* Another caller has already won, so nothing changes. */
    } else if (rec.status != SN_VIDEO_PROCESSING) {
        rc = status_conflict(s, id, "finish", &rec, err, err_size);
    } else if (rec.n_done < rec.n_jobs) {
        snprintf(err, err_size,
                 "state %s: video %s: finish failed: %d of %d jobs are "
                 "done", s->pub.name, id, rec.n_done, rec.n_jobs);
        rc = SN_ERR_CONFLICT;
    } else {
        changed = 1;
        rc = run_sql(s, id, "finish", err, err_size,
                     "UPDATE videos SET status = 'ready', updated_ms = ?2"
                     " WHERE id = ?1", "ti", id, now_ms());
    }
    if (rc == 0)
        rc = exec_sql(s, id, "COMMIT", "finish", err, err_size);

out:
    if (rc < 0) {
        rollback(s);
        return rc;
    }
    if (won)
        *won = changed;
    return 0;
}

/*
 * A video that has already failed keeps its first reason, which names the
 * original cause. A reason longer than sn_video.error is cut to fit.
 */
static int sqlite_fail(struct sn_state *base, const char *id,
                       int64_t generation, const char *reason, char *err,
                       size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    char text[sizeof(((struct sn_video *)0)->error)];
    struct record rec;
    int rc;

    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;
    copy_cut(text, sizeof(text), reason ? reason : "");

    rc = exec_sql(s, id, "BEGIN IMMEDIATE", "fail", err, err_size);
    if (rc < 0)
        return rc;
    rc = load_current(s, id, generation, "fail", &rec, err, err_size);
    if (rc < 0)
        goto out;

    if (rec.status == SN_VIDEO_READY)
        rc = status_conflict(s, id, "fail", &rec, err, err_size);
    else if (rec.status != SN_VIDEO_FAILED)
        rc = run_sql(s, id, "fail", err, err_size,
                     "UPDATE videos SET status = 'failed', error = ?2,"
                     " updated_ms = ?3 WHERE id = ?1", "tti", id, text,
                     now_ms());
    if (rc == 0)
        rc = exec_sql(s, id, "COMMIT", "fail", err, err_size);

out:
    if (rc < 0)
        rollback(s);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

/* Fills *v from a row of VIDEO_COLUMNS, without the done flags. */
static int read_video(sqlite3_stmt *st, struct sn_video *v)
{
    const unsigned char *summary = sqlite3_column_text(st, 8);

    memset(v, 0, sizeof(*v));
    snprintf(v->id, sizeof(v->id), "%s",
             (const char *)sqlite3_column_text(st, 0));
    snprintf(v->source, sizeof(v->source), "%s",
             (const char *)sqlite3_column_text(st, 1));
    snprintf(v->upload_tag, sizeof(v->upload_tag), "%s",
             (const char *)sqlite3_column_text(st, 2));
    v->generation = sqlite3_column_int64(st, 3);
    v->status = (enum sn_video_status)status_from_name(
        sqlite3_column_text(st, 4));
    v->n_jobs = sqlite3_column_int(st, 5);
    v->n_done = sqlite3_column_int(st, 6);
    v->duration_us = sqlite3_column_int64(st, 7);
    snprintf(v->error, sizeof(v->error), "%s",
             (const char *)sqlite3_column_text(st, 9));
    v->created_ms = sqlite3_column_int64(st, 10);
    v->updated_ms = sqlite3_column_int64(st, 11);

    if ((int)v->status < 0)
        return SN_ERR_BACKEND;
    if (summary != NULL) {
        v->summary = strdup((const char *)summary);
        if (v->summary == NULL)
            return SN_ERR_BACKEND;
    }
    return 0;
}

/* Sets v->done from the done set of v's generation. */
static int read_done_flags(struct sqlite_state *s, struct sn_video *v,
                           char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    v->done = calloc((size_t)v->n_jobs, 1);
    if (v->done == NULL) {
        snprintf(err, err_size, "state %s: video %s: get failed: out of "
                 "memory for %d done flags", s->pub.name, v->id, v->n_jobs);
        return SN_ERR_BACKEND;
    }
    rc = prepare_sql(s, v->id, "get", &st, err, err_size,
                     "SELECT job FROM video_jobs_done"
                     " WHERE video_id = ?1 AND generation = ?2", "ti",
                     v->id, v->generation);
    if (rc < 0)
        return rc;

    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int job = sqlite3_column_int(st, 0);

        if (job >= 0 && job < v->n_jobs)
            v->done[job] = 1;
    }
    if (step != SQLITE_DONE)
        rc = db_error(s, v->id, "get", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_get(struct sn_state *base, const char *id,
                      struct sn_video *v, char *err, size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    sqlite3_stmt *st = NULL;
    int rc, step;

    memset(v, 0, sizeof(*v));
    rc = check_id(s, id, err, err_size);
    if (rc < 0)
        return rc;

    /* One read transaction, so that the record and its done set come
     * from one snapshot. */
    rc = exec_sql(s, id, "BEGIN", "get", err, err_size);
    if (rc < 0)
        return rc;
    rc = prepare_sql(s, id, "get", &st, err, err_size,
                     "SELECT " VIDEO_COLUMNS " FROM videos WHERE id = ?1",
                     "t", id);
    if (rc < 0)
        goto out;

    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        snprintf(err, err_size, "state %s: video %s: get failed: not found",
                 s->pub.name, id);
        rc = SN_ERR_NOT_FOUND;
    } else if (step != SQLITE_ROW) {
        rc = db_error(s, id, "get", err, err_size);
    } else if (read_video(st, v) < 0) {
        snprintf(err, err_size, "state %s: video %s: get failed: unknown "
                 "status or out of memory", s->pub.name, id);
        rc = SN_ERR_BACKEND;
    }
    sqlite3_finalize(st);
    if (rc == 0 && v->n_jobs > 0)
        rc = read_done_flags(s, v, err, err_size);
    if (rc == 0)
        rc = exec_sql(s, id, "COMMIT", "get", err, err_size);

out:
    if (rc < 0) {
        rollback(s);
        sn_video_release(v);
    }
    return rc;
}

/* each() must not use this handle: the listing's statement is still open
 * while it runs. */
static int sqlite_list(struct sn_state *base,
                       int (*each)(void *opaque, const struct sn_video *v),
                       void *opaque, char *err, size_t err_size)
{
    struct sqlite_state *s = (struct sqlite_state *)base;
    sqlite3_stmt *st = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare_sql(s, NULL, "list", &st, err, err_size,
                     "SELECT " VIDEO_COLUMNS " FROM videos"
                     " ORDER BY upload_seq DESC", "");
    if (rc < 0)
        return rc;

    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct sn_video v;

        if (read_video(st, &v) < 0) {
            snprintf(err, err_size, "state %s: video %s: list failed: "
                     "unknown status or out of memory", s->pub.name, v.id);
            rc = SN_ERR_BACKEND;
        } else {
            rc = each(opaque, &v);
        }
        sn_video_release(&v);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(s, NULL, "list", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

/* ---- open, close -------------------------------------------------------- */

static void sqlite_close(struct sn_state *base)
{
    struct sqlite_state *s = (struct sqlite_state *)base;

    sqlite3_close(s->db);
    free(s);
}

static const struct sn_state_ops sqlite_state_ops = {
    .begin = sqlite_begin,
    .set_plan = sqlite_set_plan,
    .mark_done = sqlite_mark_done,
    .finish = sqlite_finish,
    .fail = sqlite_fail,
    .get = sqlite_get,
    .list = sqlite_list,
    .close = sqlite_close,
};

int sn_state_sqlite_open(const char *path, struct sn_state **out, char *err,
                         size_t err_size)
{
    struct sqlite_state *s;
    int rc;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, err_size, "state %s: open failed: out of memory",
                 path);
        return SN_ERR_BACKEND;
    }
    s->pub.ops = &sqlite_state_ops;
    snprintf(s->pub.name, sizeof(s->pub.name), "%s", path);

    rc = sn_sqlite_open(path, "state", &s->db, err, err_size);
    if (rc == 0)
        rc = exec_sql(s, NULL, "PRAGMA foreign_keys = ON", "open", err,
                      err_size);
    if (rc == 0)
        rc = exec_sql(s, NULL, schema_sql, "open", err, err_size);
    if (rc < 0) {
        rollback(s);
        sqlite_close(&s->pub);
        return rc;
    }
    *out = &s->pub;
    return 0;
}
