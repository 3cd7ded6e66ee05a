/*
 * The glue between the HTTP layer and SigV4: a signer contains a
 * credentials provider, a region and a service name, and sn_aws_sign() matches
 * sn_http_sign_fn, so every attempt of a request is signed anew with
 * current credentials and a fresh X-Amz-Date.
 */
#ifndef SN_AWS_SIGNER_H
#define SN_AWS_SIGNER_H

#include <curl/curl.h>
#include <stddef.h>

#include "aws/credentials.h"

struct sn_aws_signer {
    struct sn_aws_provider *provider;   /* shared; not owned */
    char region[64];
    char service[32];         /* "s3", "sqs", "dynamodb" */
};

/*
 * Signs one attempt: parses url into host, path and query, signs the
 * method, the host, every header already in *headers and the body, and
 * appends X-Amz-Date, X-Amz-Security-Token (with temporary credentials),
 * x-amz-content-sha256 (S3 only) and Authorization to *headers. S3 paths
 * are signed as sent (single encoding, no normalisation), other services'
 * paths encoded once more, as SigV4 defines. opaque is a struct
 * sn_aws_signer. Returns 0 or a negative SN_ERR_* code with one line in
 * err.
 */
int sn_aws_sign(void *opaque, const char *method, const char *url,
                struct curl_slist **headers, const void *body,
                size_t body_size, char *err, size_t err_size);

#endif
