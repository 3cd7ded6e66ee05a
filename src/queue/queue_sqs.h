/*
 * The job queue on Amazon SQS, spoken over the SQS JSON protocol
 * (X-Amz-Target: AmazonSQS.<Action>) through the project's HTTP layer and
 * SigV4 signer. Requests go to the SQS endpoint of sn_aws_endpoint(), which
 * honours AWS_ENDPOINT_URL; the queue URL travels in each request body, so
 * an AWS-style URL (https://sqs.<region>.amazonaws.com/<account>/<name>)
 * works against a local endpoint too.
 *
 * How the SQS backend differs from the SQLite one:
 *
 *   - Dead-lettering is done by SQS itself, through the queue's redrive
 *     policy. Its maxReceiveCount must equal max_receives, which
 *     sn_queue_sqs_redrive_max() reads. SQS does not tell the backend
 *     when it moves a message, so the backend never calls the queue's
 *     dead_letter callback. The worker marks the video failed on the
 *     delivery whose receive_count reaches max_receives instead.
 *   - SQS cannot store an error text with a message, so the error that
 *     release() is given is dropped.
 *   - Counts are SQS's approximate numbers. dead counts the visible
 *     messages of the redrive policy's dead-letter queue, or 0 when the
 *     queue has no redrive policy.
 *   - A stale receipt gives SN_ERR_CONFLICT only when SQS rejects it. Real
 *     SQS and moto 5.2.1 both accept DeleteMessage for a message that is
 *     already gone, and moto accepts every receipt a message ever had.
 *
 *   - receive() returns -EACCES when SQS rejects the credentials or
 *     denies access, and SN_ERR_NOT_FOUND when the queue does not exist,
 *     so a worker can stop on what waiting cannot fix.
 *
 * Threads: a queue handle owns one HTTP client, so one thread uses it at a
 * time. Open one handle per worker thread.
 */
#ifndef SN_QUEUE_QUEUE_SQS_H
#define SN_QUEUE_QUEUE_SQS_H

#include <stddef.h>

#include "queue/queue.h"

/*
 * Opens the SQS queue at queue_url. No request is sent: a missing queue or
 * missing credentials show on the first operation. The region comes from
 * sn_aws_region(), else from the URL's host (sqs.<region>.amazonaws.com).
 * max_receives must be at least 1. Returns 0 and *out, to be closed with
 * sn_queue_close(), or SN_ERR_INPUT (bad URL, no region, bad
 * max_receives) or SN_ERR_BACKEND (out of memory) with one line in err.
 */
int sn_queue_sqs_open(const char *queue_url, int max_receives,
                      struct sn_queue **out, char *err, size_t err_size);

/*
 * Reads the redrive policy of q, which must come from sn_queue_sqs_open(),
 * with one GetQueueAttributes request: *max_receives gets its
 * maxReceiveCount, or 0 when the queue has no redrive policy. The request
 * also shows whether the queue exists and the credentials are accepted,
 * so workers call it at start-up. Returns 0, or the request's code
 * (SN_ERR_NOT_FOUND for a missing queue) with one line in err.
 */
int sn_queue_sqs_redrive_max(struct sn_queue *q, int *max_receives,
                             char *err, size_t err_size);

#endif
