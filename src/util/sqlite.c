#include "util/sqlite.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

/* Pause between two attempts to switch a new database to WAL. */
#define WAL_RETRY_MS 20

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

/* Formats the SQLite error of the handle as an open failure. */
static int open_error(sqlite3 *db, const char *path, const char *what,
                      char *err, size_t err_size)
{
    snprintf(err, err_size, "%s %s: open failed: %s", what, path,
             sqlite3_errmsg(db));
    return SN_ERR_BACKEND;
}

/* Tries once to switch the database to WAL. Returns SN_ERR_AGAIN when
 * another connection held a lock that the switch needs. */
static int try_enable_wal(sqlite3 *db, const char *path, const char *what,
                          char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;
    int rc = 0, step;

    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st,
                           NULL) != SQLITE_OK)
        return open_error(db, path, what, err, err_size);

    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = open_error(db, path, what, err, err_size);
        if ((step & 0xff) == SQLITE_BUSY)
            rc = SN_ERR_AGAIN;
        goto out;
    }

    /* SQLite returns the old mode when it could not change it. */
    mode = sqlite3_column_text(st, 0);
    if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
        snprintf(err, err_size,
                 "%s %s: open failed: journal mode is %s, expected wal",
                 what, path, mode ? (const char *)mode : "unknown");
        rc = SN_ERR_AGAIN;
    }

out:
    sqlite3_finalize(st);
    return rc;
}

/*
 * Switches the database to WAL. The mode is stored in the file, so only the
 * first open of a new file changes anything. While several processes open
 * a new file at once, the switch can fail with SQLITE_BUSY without waiting
 * in the busy handler (seen with SQLite 3.40), so it is retried until the
 * busy timeout has passed.
 */
static int enable_wal(sqlite3 *db, const char *path, const char *what,
                      char *err, size_t err_size)
{
    int64_t deadline = monotonic_ms() + SN_SQLITE_BUSY_TIMEOUT_MS;
    int rc;

    while ((rc = try_enable_wal(db, path, what, err, err_size)) ==
           SN_ERR_AGAIN) {
        if (monotonic_ms() >= deadline)
            return SN_ERR_BACKEND;
        sleep_ms(WAL_RETRY_MS);
    }
    return rc;
}

int sn_sqlite_open(const char *path, const char *what, sqlite3 **out,
                   char *err, size_t err_size)
{
    sqlite3 *db = NULL;
    int rc;

    /* A failed sqlite3_open_v2() still returns a handle, which contains the
     * message and must be closed. It is NULL only when memory ran out, and
     * sqlite3_errmsg(NULL) then returns "out of memory". */
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = open_error(db, path, what, err, err_size);
        goto out;
    }

    sqlite3_busy_timeout(db, SN_SQLITE_BUSY_TIMEOUT_MS);
    rc = enable_wal(db, path, what, err, err_size);

out:
    if (rc < 0) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}
