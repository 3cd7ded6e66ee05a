/*
 * The project's error space: 0 is success, negative is failure. Library
 * errors (errno, AVERROR, SQLite codes) are converted at the edge of the
 * module that calls the library; the classes below are what callers branch
 * on. The human-readable cause always travels separately, in an error
 * buffer the caller passes in.
 */
#ifndef SN_UTIL_ERROR_H
#define SN_UTIL_ERROR_H

#define SN_ERR_BASE 10000

enum {
    SN_ERR_INPUT = -(SN_ERR_BASE + 1),       /* input unreadable, not media, unsupported */
    SN_ERR_LIMIT = -(SN_ERR_BASE + 2),       /* input over a configured limit */
    SN_ERR_MEDIA = -(SN_ERR_BASE + 3),       /* decoding, filtering or encoding failed */
    SN_ERR_OUTPUT = -(SN_ERR_BASE + 4),      /* output could not be written */
    SN_ERR_AGAIN = -(SN_ERR_BASE + 5),       /* transient; retrying may succeed */
    SN_ERR_INTERRUPTED = -(SN_ERR_BASE + 6), /* stopped by a signal or deadline */
    SN_ERR_NOT_FOUND = -(SN_ERR_BASE + 7),   /* no such object, message or video */
    SN_ERR_CONFLICT = -(SN_ERR_BASE + 8),    /* a conditional update lost: stale
                                                generation or receipt */
    SN_ERR_BACKEND = -(SN_ERR_BASE + 9),     /* the store, queue or state failed */
};

/* Size of the error buffers passed through the engine. */
#define SN_ERR_SIZE 512

#endif
