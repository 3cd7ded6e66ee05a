/*
 * Opening the SQLite databases of the local queue and state backends, so
 * that both open their files the same way.
 */
#ifndef SN_UTIL_SQLITE_H
#define SN_UTIL_SQLITE_H

#include <sqlite3.h>
#include <stddef.h>

/* How long a connection waits for a lock held by another one before a call
 * fails with "database is locked". */
#define SN_SQLITE_BUSY_TIMEOUT_MS 10000

/*
 * Opens the database at path, creating the file when it is missing, sets
 * the busy timeout and switches the database to WAL journal mode. The
 * handle is opened without SQLite's mutexes (SQLITE_OPEN_NOMUTEX), so one
 * thread at a time may use it, and it must not be used across fork().
 *
 * Returns 0 and sets *out to a handle that the caller closes with
 * sqlite3_close(). On failure returns SN_ERR_BACKEND, writes
 * "<what> <path>: open failed: <cause>" into err, leaves no handle open
 * and leaves *out unchanged. what names the caller ("queue", "state").
 * Any thread may call it.
 */
int sn_sqlite_open(const char *path, const char *what, sqlite3 **out,
                   char *err, size_t err_size);

#endif
