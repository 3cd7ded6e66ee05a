/*
 * The two Lambda functions: sinatra-orchestrator turns upload events into
 * plans and jobs with sn_orchestrate(), and sinatra-worker runs the jobs
 * of an SQS batch with sn_worker_handle(). Both run over S3, SQS and
 * DynamoDB, one invocation at a time.
 */
#ifndef SN_LAMBDA_HANDLERS_H
#define SN_LAMBDA_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "lambda/config.h"
#include "lambda/runtime.h"
#include "pipeline/pipeline.h"

/* Error types sent to the Runtime API with a failed invocation. */
#define SN_LAMBDA_ERROR_EVENT "Sinatra.InvalidEvent"
#define SN_LAMBDA_ERROR_TRANSIENT "Sinatra.TransientError"
#define SN_LAMBDA_ERROR_INTERNAL "Sinatra.InternalError"

struct sn_lambda_app {
    struct sn_lambda_config config;
    struct sn_backends b;
};

/*
 * Opens the S3 stores, the SQS queue and the DynamoDB state that
 * app->config names (already filled by sn_lambda_config_from_env()), and
 * makes their HTTP clients use config.ca_bundle. Sends no request.
 * Returns 0, or a negative SN_ERR_* code with one line in err that names
 * the variable at fault; what was opened is closed again.
 */
int sn_lambda_app_open(struct sn_lambda_app *app, char *err,
                       size_t err_size);

/* Closes the backends; safe on a zeroed or closed app. */
void sn_lambda_app_close(struct sn_lambda_app *app);

/*
 * Orchestrates every upload in an S3 event, or an SQS event whose bodies
 * are S3 events. Sets *response to a JSON object the caller frees:
 * {"planned":[{"key","video"}], "failed":[{"key","video","reason"}],
 *  "ignored":[{"bucket","key","reason"}], "test_events":N}. "failed"
 * lists sources that are not usable media: sn_orchestrate() has recorded
 * those videos as failed, and another attempt would fail the same way.
 * A repeated event for an upload whose video failed earlier is listed
 * there too, with the reason stored in the state. Records that are not
 * uploads, including keys that are not valid UTF-8 once decoded, are
 * listed under "ignored".
 *
 * Returns 0, or with one line in err and *response NULL: SN_ERR_INPUT
 * when the event is neither kind, or the code of the first upload that
 * failed for a reason a retry may cure (the backends). In that case the
 * other uploads were still orchestrated, which is safe to repeat, and
 * the invocation error makes Lambda deliver the event again.
 */
int sn_lambda_orchestrator(struct sn_lambda_app *app,
                           const struct sn_invocation *inv, char **response,
                           char *err, size_t err_size);

/*
 * Runs the job of every message of an SQS batch in order, and sets
 * *response to the partial batch response that lists the messages to
 * deliver again. A job that fails on the message's last allowed delivery
 * (ApproximateReceiveCount >= SINATRA_MAX_RECEIVES) marks its video
 * failed with the reason, since SQS then moves the message to the
 * dead-letter queue. A source that is not usable media fails its video
 * at once and its message is not returned.
 *
 * When the invocation's deadline comes within sn_lambda_deadline_margin_ms()
 * a timer thread sets the running job's cancel flag: the job stops before
 * anything of it is published, and its message and every message not yet
 * started are returned. For a FIFO queue, every message after the first
 * failure is returned too, unstarted, to keep the order.
 *
 * A record that has a usable messageId but is otherwise malformed is
 * reported failed without running, so Lambda delivers it again until SQS
 * dead-letters it.
 *
 * Returns 0, or with one line in err and *response NULL: SN_ERR_INPUT
 * when the event is not an SQS batch or a record has no usable
 * messageId (Lambda then returns the whole batch), or -ENOMEM.
 */
int sn_lambda_worker(struct sn_lambda_app *app,
                     const struct sn_invocation *inv, char **response,
                     char *err, size_t err_size);

/*
 * Returns how long before the deadline a job is stopped, for an
 * invocation with budget_ms milliseconds left: a twentieth of the budget,
 * at least 1 s and at most 10 s. The margin leaves time for the job to
 * unwind, its scratch folder to go, and the response to be posted.
 */
int64_t sn_lambda_deadline_margin_ms(int64_t budget_ms);

/* Returns the error type for an SN_ERR_* code, for sn_runtime_error(). */
const char *sn_lambda_error_type(int rc);

#endif
