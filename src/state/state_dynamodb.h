/*
 * The DynamoDB backend of the video state (state.h), on the project's own
 * HTTP and SigV4 layer and DynamoDB's JSON protocol (X-Amz-Target
 * DynamoDB_20120810.<Action>).
 *
 * The table has the partition key "id" (string) and one item per video.
 * Credentials and the region come from the standard chain
 * (aws/credentials.h), and the endpoint from sn_aws_endpoint("dynamodb").
 */
#ifndef SN_STATE_STATE_DYNAMODB_H
#define SN_STATE_STATE_DYNAMODB_H

#include <stddef.h>

#include "state/state.h"

/*
 * Opens the state in the existing DynamoDB table named table (3 to 255
 * characters of A-Z a-z 0-9 _ . -). Nothing is sent until the first call.
 * Returns 0 and *out (close with sn_state_close()), or with one line in
 * err: SN_ERR_INPUT (invalid table name or endpoint), the code of
 * sn_aws_region() (no region set) or SN_ERR_BACKEND (out of memory).
 *
 * Threads: a handle is used by one thread at a time, and a child process
 * after fork() opens its own. Any number of handles, in any number of
 * processes, may share one table: every update is a conditional write.
 */
int sn_state_dynamodb_open(const char *table, struct sn_state **out,
                           char *err, size_t err_size);

/*
 * Checks that the table of st (from sn_state_dynamodb_open()) exists and
 * may be read, with one GetItem of a key no video has, which needs only
 * the dynamodb:GetItem permission. Returns 0, or the request's code
 * (SN_ERR_NOT_FOUND for a missing table) with one line in err.
 */
int sn_state_dynamodb_check(struct sn_state *st, char *err,
                            size_t err_size);

/*
 * Creates the table of st (on-demand capacity, key "id") unless it
 * exists, and waits up to 60 s for it to become ACTIVE. For tests and
 * local setups; production tables belong to the deployment. Returns 0 or
 * a negative SN_ERR_* code with one line in err.
 */
int sn_state_dynamodb_create_table(struct sn_state *st, char *err,
                                   size_t err_size);

#endif
