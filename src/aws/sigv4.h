/*
 * AWS Signature Version 4 (HMAC-SHA256) for requests to S3, SQS and
 * DynamoDB, in both forms: the Authorization header and the presigned URL
 * (query parameters). The rules are those of the AWS IAM User Guide page
 * "Create a signed AWS API request" and, for S3, the S3 API Reference page
 * "Authenticating Requests (AWS Signature Version 4)".
 *
 * The signer does no I/O and keeps no state: every call is a pure function
 * of its arguments, so any thread may call it.
 */
#ifndef SN_AWS_SIGV4_H
#define SN_AWS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

/* Maximum size in bytes of the canonical request, and of every other text
 * the signer builds (canonical query, presigned query, header value). */
#define SN_SIGV4_MAX_TEXT (256 * 1024)

/* The payload hash S3 accepts in place of a SHA-256 of the body. */
#define SN_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

struct sn_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;     /* NULL for long-term credentials */
};

struct sn_sigv4_header {
    const char *name;
    const char *value;
};

struct sn_sigv4_request {
    const char *method;            /* "GET" */
    /* The path exactly as on the request line, for example
     * "/bucket/my%20clip.mp4"; "" is taken as "/". */
    const char *path;
    /* The query exactly as sent, without '?'; NULL or "" for none. Names
     * and values are percent-decoded and encoded again for signing, so
     * raw and encoded forms both work. A '+' is taken literally. */
    const char *query;
    /* Every header to sign, host included. Names are matched without
     * regard to case. Authorization, X-Amz-Date and X-Amz-Security-Token
     * are rejected, because the signer adds them. */
    const struct sn_sigv4_header *headers;
    size_t n_headers;
    const void *payload;           /* hashed when payload_hash is NULL */
    size_t payload_size;
    /* Lowercase hex SHA-256 of the payload, or "UNSIGNED-PAYLOAD". */
    const char *payload_hash;
};

struct sn_sigv4_options {
    const char *region;            /* "us-east-1" */
    const char *service;           /* "s3", "sqs", "dynamodb" */
    int64_t time;                  /* signing time, Unix seconds UTC */
    /* 1 for every service but S3: percent-encode the path once more for
     * the canonical request. 0 for S3, which signs the path as sent. */
    int double_uri_encode;
    /* Remove "." and ".." segments and repeated '/' before signing.
     * Off for S3, where "a//b" and "a/../b" are distinct keys. */
    int normalize_path;
    /* Leave the session token out of the signature and add it after
     * signing, as some services (for example IoT) require. */
    int omit_session_token;
    /* Sign and add x-amz-content-sha256 with the payload hash, as S3
     * requires. Header variant only; the request must not have it. */
    int add_content_sha256_header;
    /* Presigned URL lifetime in seconds, 1 to 604800 (S3's maximum of
     * seven days). Query variant only. */
    int64_t expires_s;
};

/*
 * The products of signing. Each intermediate text is kept so tests can
 * compare it with published vectors.
 */
struct sn_sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char signature[65];            /* lowercase hex */
    char amz_date[17];             /* "20150830T123600Z" */
    /* Header variant: the headers to add to the request, in this order
     * when present: X-Amz-Security-Token, X-Amz-Date,
     * x-amz-content-sha256, Authorization. Names are static strings,
     * values are owned by the result. */
    struct sn_sigv4_header headers[4];
    size_t n_headers;
    /* Query variant: the whole query to send in place of the request's,
     * its own parameters first and then X-Amz-Algorithm,
     * X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires,
     * X-Amz-Security-Token and X-Amz-Signature. NULL for the header
     * variant. */
    char *query;
};

/*
 * Signs req for the Authorization header. Returns 0 and fills *out, which
 * the caller frees with sn_sigv4_result_release(). On failure returns
 * SN_ERR_INPUT (invalid request or options) or SN_ERR_LIMIT (a text over
 * SN_SIGV4_MAX_TEXT) or -ENOMEM, writes the cause into err and leaves
 * *out empty.
 */
int sn_sigv4_sign(const struct sn_sigv4_credentials *creds,
                  const struct sn_sigv4_request *req,
                  const struct sn_sigv4_options *opts,
                  struct sn_sigv4_result *out, char *err, size_t err_size);

/*
 * Signs req as a presigned URL valid for opts->expires_s seconds. The
 * signature goes in out->query, and out->headers stays empty. Returns and
 * failure state as sn_sigv4_sign().
 */
int sn_sigv4_presign(const struct sn_sigv4_credentials *creds,
                     const struct sn_sigv4_request *req,
                     const struct sn_sigv4_options *opts,
                     struct sn_sigv4_result *out, char *err,
                     size_t err_size);

/* Frees what a result owns and empties it. Accepts an empty result. */
void sn_sigv4_result_release(struct sn_sigv4_result *r);

/*
 * Percent-encodes size bytes of s onto *out (a struct sn_buf from
 * util/buf.h): every byte except A-Z a-z 0-9 - _ . ~ becomes %XX with
 * uppercase hex, and '/' too unless keep_slash is set. This is the
 * encoding S3 expects for object keys in the path (keep_slash 1) and AWS
 * expects for every query name and value (keep_slash 0). Returns 0,
 * -ENOMEM or -E2BIG past the buffer's maximum.
 */
struct sn_buf;
int sn_sigv4_uri_encode(struct sn_buf *out, const char *s, size_t size,
                        int keep_slash);

#endif
