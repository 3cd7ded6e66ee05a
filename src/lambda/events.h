/*
 * The events the Lambda functions receive, and the responses they send.
 *
 * The orchestrator gets S3 event notifications ({"Records":[...]} with
 * eventSource "aws:s3"), either directly or through an SQS queue, where
 * each SQS record's body is the S3 event serialised as a JSON string. S3
 * sends {"Event":"s3:TestEvent",...} with no Records when a notification
 * configuration is saved; it is skipped. Object keys arrive URL-encoded
 * in form style: '+' is a space and other bytes are %XX.
 *
 * The worker gets SQS batches and returns a partial batch response
 * that lists only the failed messages.
 *
 * Nothing here logs or touches a backend: it is parsing only, so the unit
 * tests can feed it fixture files.
 */
#ifndef SN_LAMBDA_EVENTS_H
#define SN_LAMBDA_EVENTS_H

#include <jansson.h>
#include <stddef.h>

#include "store/store.h"
#include "util/utf8.h"

/* Maximum bytes of an S3 bucket name (S3's own limit is 63). */
#define SN_S3_BUCKET_MAX 63

/* Maximum bytes of the reason a record was ignored. */
#define SN_EVENT_REASON_MAX 200

/* Maximum bytes of an SQS message id: SQS's ids have at most 100
 * characters, all ASCII. */
#define SN_SQS_MESSAGE_ID_MAX 100

/* Maximum bytes of an id or key copied into a log line or a message;
 * the excerpt adds at most SN_EXCERPT_MARK_MAX bytes of marker. */
#define SN_EXCERPT_MAX 128
#define SN_EXCERPT_MARK_MAX 48

/*
 * Copies text into out for a log line or a message: whole when it has at
 * most max bytes, else its first max bytes, cut at a UTF-8 character
 * boundary and followed by "...(cut from N bytes)". out_size should be
 * at least max + SN_EXCERPT_MARK_MAX + 1; a smaller out truncates the
 * excerpt, again at a character boundary. Returns out.
 */
const char *sn_excerpt(const char *text, size_t max, char *out,
                       size_t out_size);

/*
 * Decodes an S3 event's object key into out: '+' becomes a space, then
 * each %XX (hex digits of either case) becomes its byte, so "a%2Bb" is
 * "a+b" and "a+b" is "a b". Returns 0, or with one line in err naming the
 * key: SN_ERR_INPUT for '%' not followed by two hex digits or an escape
 * that decodes to a NUL byte, SN_ERR_LIMIT when the decoded key does not
 * fit in out_size - 1 bytes. out is undefined after a failure.
 */
int sn_s3_key_decode(const char *in, char *out, size_t out_size, char *err,
                     size_t err_size);

/* One S3 record of an event: an upload to orchestrate, or a record the
 * orchestrator ignores, with the reason. */
struct sn_upload_record {
    int ignored;
    char bucket[SN_S3_BUCKET_MAX + 1];  /* "" when the record has none */
    char key[SN_STORE_MAX_KEY + 1];     /* decoded; as sent if undecodable,
                                           cut if longer */
    char reason[SN_EVENT_REASON_MAX];   /* why it is ignored, else "" */
};

struct sn_upload_event {
    struct sn_upload_record *records;
    size_t n;
    size_t cap;
    int test_events;          /* s3:TestEvent messages skipped */
};

/*
 * Parses an S3 event, or an SQS event whose bodies are S3 events, into
 * out, which the caller zeroes first and frees with
 * sn_upload_event_release() whatever the result.
 *
 * A record is an upload when its eventSource is "aws:s3", its eventVersion
 * is 2.x, its eventName starts with "ObjectCreated:", its bucket is
 * videos_bucket, and its decoded key is "stream/" followed by a valid
 * upload name (sn_upload_name_valid()). Every other record is kept with
 * ignored set and the reason. An SQS body that is not an S3 event is an
 * ignored record too: retrying it cannot help. Every bucket, key and
 * reason is valid UTF-8.
 *
 * Returns 0, or SN_ERR_INPUT when the event itself is not a JSON object
 * or has neither a Records array nor the test event's shape, or -ENOMEM,
 * with one line in err.
 */
int sn_upload_event_parse(const char *event, size_t size,
                          const char *videos_bucket,
                          struct sn_upload_event *out, char *err,
                          size_t err_size);

/* Frees the records; out is zeroed and reusable. */
void sn_upload_event_release(struct sn_upload_event *out);

/* One SQS message of a batch; the strings point into the batch's JSON. */
struct sn_sqs_record {
    const char *message_id;
    const char *body;         /* "" when the record has none */
    int receive_count;        /* ApproximateReceiveCount; 1 when absent */
    char invalid[SN_EVENT_REASON_MAX];  /* why the record cannot be run,
                                           or "" */
};

struct sn_sqs_batch {
    json_t *root;
    struct sn_sqs_record *records;
    size_t n;
    int fifo;                 /* eventSourceARN names a .fifo queue */
};

/*
 * Parses an SQS event into out, which the caller frees with
 * sn_sqs_batch_release() whatever the result.
 *
 * Lambda reads a partial batch response by message id, and fails the
 * whole batch when an itemIdentifier is not one of its messages. So
 * every record needs a usable messageId: a string of 1 to
 * SN_SQS_MESSAGE_ID_MAX bytes. A record that has one but is otherwise
 * malformed (an ApproximateReceiveCount that is not a whole number from
 * 1) is kept with the reason in invalid, so that the caller can report
 * that message alone as failed.
 *
 * Returns 0, or SN_ERR_INPUT (not a JSON object, no Records array, a
 * record that is not an object or has no usable messageId) or -ENOMEM,
 * with one line in err.
 */
int sn_sqs_batch_parse(const char *event, size_t size,
                       struct sn_sqs_batch *out, char *err, size_t err_size);

/* Frees the batch; out is zeroed and reusable. */
void sn_sqs_batch_release(struct sn_sqs_batch *out);

/*
 * Builds the partial batch response {"batchItemFailures":[
 * {"itemIdentifier":ID},...]} with the n message ids in failed (an empty
 * list when n is 0, which Lambda reads as "all succeeded"). Returns a
 * string the caller frees with free(), or NULL when out of memory.
 */
char *sn_batch_response(const char *const *failed, size_t n);

#endif
