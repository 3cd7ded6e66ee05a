/*
 * One logging call for the whole program. Lines go to stderr as text
 * ("2026-12-05T00:40:12.345Z sinatra: warn: [video job] message") or,
 * after sn_log_set_json(), as one JSON object per line with the keys
 * time, level, message, and video, job, request_id and trace_id when
 * given. Library-like modules (media/, hls/, plan/) do not
 * log; they return errors and the caller logs each failure once.
 */
#ifndef SN_UTIL_LOG_H
#define SN_UTIL_LOG_H

enum sn_log_level {
    SN_LOG_DEBUG,
    SN_LOG_INFO,
    SN_LOG_WARN,
    SN_LOG_ERROR,
};

/* Sets the lowest level written; the default is SN_LOG_INFO. */
void sn_log_set_level(enum sn_log_level level);

/* Writes JSON lines instead of text when json is non-zero. */
void sn_log_set_json(int json);

/*
 * Sets the Lambda request id and X-Ray trace header that every JSON line
 * carries until the next call; NULL or "" leaves the key out. Values are
 * copied (at most 127 and 511 bytes). Any thread may call it.
 */
void sn_log_set_request(const char *request_id, const char *trace_id);

/*
 * Writes one line. video and job may be NULL. Safe to call from any
 * thread; a line is never interleaved with another.
 */
void sn_log(enum sn_log_level level, const char *video, const char *job,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
