/*
 * The S3 backend of the object store: one bucket, path-style URLs on the
 * endpoint from sn_aws_endpoint() (AWS_ENDPOINT_URL for tests), requests
 * signed with SigV4 by the project's own HTTP layer.
 *
 * Keys travel in the URL path percent-encoded once, every byte outside
 * A-Z a-z 0-9 - . _ ~ and '/' as %XX, and are signed as sent, which is
 * what the S3 SigV4 documentation defines.
 */
#ifndef SN_STORE_STORE_S3_H
#define SN_STORE_STORE_S3_H

#include <stddef.h>

#include "store/store.h"

/* The bytes a reader fetches per ranged GET after a seek. Following reads
 * are served from that buffer, so a demuxer's small reads cost few
 * requests. While reads go on where the last GET ended, each GET fetches
 * twice as much as the one before, up to SN_STORE_S3_READ_AHEAD_MAX. */
#define SN_STORE_S3_READ_AHEAD (1024 * 1024)
#define SN_STORE_S3_READ_AHEAD_MAX (8 * 1024 * 1024)

/* Maximum size of one PutObject (S3's single-request limit, 5 GiB). */
#define SN_STORE_S3_MAX_PUT ((int64_t)5 * 1024 * 1024 * 1024)

/* Maximum bytes of one ListObjectsV2 response page kept in memory. */
#define SN_STORE_S3_LIST_PAGE_MAX (8 * 1024 * 1024)

/*
 * Opens the S3 store over bucket. Reads the region (sn_aws_region()) and
 * the endpoint now, and credentials on the first request; sends nothing,
 * so a missing bucket shows up on the first operation.
 *
 * Returns 0 and *out, which the caller closes with sn_store_close().
 * On failure returns SN_ERR_INPUT (invalid bucket name, endpoint),
 * SN_ERR_NOT_FOUND (no region set) or -ENOMEM with one line in err, and
 * *out is untouched.
 *
 * Threads: every operation may be called from any number of threads at
 * once. The store keeps a pool of HTTP clients behind a mutex; a request
 * takes an idle client (or creates one) and puts it back when done, so
 * each client is used by one thread at a time and keeps its connections
 * alive across requests. Readers from open() must be closed before the
 * store, and each reader is used by one thread at a time.
 */
int sn_store_s3_open(const char *bucket, struct sn_store **out, char *err,
                     size_t err_size);

/*
 * Checks that the bucket of s (from sn_store_s3_open()) exists and may be
 * listed, with one ListObjectsV2 request for at most one key, which needs
 * the s3:ListBucket permission. Returns 0, or the request's code
 * (SN_ERR_NOT_FOUND for a missing bucket, SN_ERR_BACKEND for rejected
 * credentials) with one line in err. Any thread may call it.
 */
int sn_store_s3_check(struct sn_store *s, char *err, size_t err_size);

/*
 * Returns the number of GET requests (whole and ranged) the store has sent
 * since it was opened, for tests of the readers' read-ahead. s must come
 * from sn_store_s3_open(). Any thread may call it.
 */
long sn_store_s3_get_count(const struct sn_store *s);

#endif
