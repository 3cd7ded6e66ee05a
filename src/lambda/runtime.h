/*
 * A client of the Lambda Runtime API (version 2018-06-01), which a custom
 * runtime polls for events: GET /runtime/invocation/next blocks until an
 * event arrives, and the result goes back with POST
 * /runtime/invocation/{id}/response or /error. Start-up failures go to
 * POST /runtime/init/error, after which the process exits.
 *
 * The client uses one libcurl handle, so the connection to the API is
 * kept alive. It never retries: a second `next` after a lost answer would
 * skip an event, and the API is a loopback server that either works or
 * means the environment is broken. `next` has no timeout, because the
 * environment may be frozen for any time between events.
 *
 * Threads: one thread uses a client.
 */
#ifndef SN_LAMBDA_RUNTIME_H
#define SN_LAMBDA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

/* Maximum event size read from `next`. Lambda's payload limit is 6 MB
 * for synchronous invocations and less for the others. */
#define SN_RUNTIME_EVENT_MAX (8 * 1024 * 1024)

/* Maximum bytes of the response headers of one request. */
#define SN_RUNTIME_HEADERS_MAX (16 * 1024)

/* One event, as `next` delivered it. */
struct sn_invocation {
    char request_id[128];     /* Lambda-Runtime-Aws-Request-Id */
    int64_t deadline_ms;      /* Lambda-Runtime-Deadline-Ms, Unix epoch ms;
                                 0 when absent */
    char function_arn[256];   /* Lambda-Runtime-Invoked-Function-Arn */
    char trace_id[512];       /* Lambda-Runtime-Trace-Id, or "" */
    char *event;              /* body, NUL-terminated; owned */
    size_t event_size;
};

/* Frees the event; inv is zeroed and reusable. */
void sn_invocation_release(struct sn_invocation *inv);

struct sn_runtime;

/*
 * Creates a client of the API at api ("host:port", the value of
 * AWS_LAMBDA_RUNTIME_API). Sends nothing. Returns 0 and *out, freed with
 * sn_runtime_free(), or SN_ERR_INPUT (empty or overlong api) or -ENOMEM
 * with one line in err. libcurl's global init must have run.
 */
int sn_runtime_new(const char *api, struct sn_runtime **out, char *err,
                   size_t err_size);

/* Closes the connection and frees rt; NULL is fine. */
void sn_runtime_free(struct sn_runtime *rt);

/*
 * Waits for the next event and fills inv, which must not hold an event.
 * Returns 0, or with one line in err:
 *   SN_ERR_LIMIT     the event is larger than SN_RUNTIME_EVENT_MAX; the
 *                    request id is filled, so the caller can report the
 *                    error for that invocation and go on;
 *   SN_ERR_BACKEND   the API is unreachable, returned 500 or anything
 *                    but 200, or sent no request id: the runtime exits.
 * inv holds nothing to free after a failure.
 */
int sn_runtime_next(struct sn_runtime *rt, struct sn_invocation *inv,
                    char *err, size_t err_size);

/*
 * Posts body (size bytes) as the result of invocation request_id.
 * Returns 0 when the API accepts it (202), SN_ERR_LIMIT on 413 (response
 * too large, so the caller reports an error instead), SN_ERR_INPUT on
 * other 4xx (the invocation is no longer open), or SN_ERR_BACKEND when
 * the API is unreachable or returns 5xx, with one line in err.
 */
int sn_runtime_respond(struct sn_runtime *rt, const char *request_id,
                       const char *body, size_t size, char *err,
                       size_t err_size);

/*
 * Posts an error for invocation request_id, or for the start-up when
 * request_id is NULL, with the standard body {"errorMessage":message,
 * "errorType":type,"stackTrace":[]}, content type
 * application/vnd.aws.lambda.error+json, and type in the
 * Lambda-Runtime-Function-Error-Type header. type must be printable
 * ASCII such as "Sinatra.ConfigError". Returns as sn_runtime_respond().
 */
int sn_runtime_error(struct sn_runtime *rt, const char *request_id,
                     const char *type, const char *message, char *err,
                     size_t err_size);

#endif
