/*
 * The HTTP layer under the S3, SQS and DynamoDB clients. Each client owns
 * one libcurl easy handle, so connections are kept alive between
 * requests. The layer sets timeouts, retries with exponential backoff and
 * full jitter, and converts AWS error responses (S3 XML, the JSON
 * protocols, XML auth errors) to the project's SN_ERR_* codes.
 *
 * Signing is not done here: the caller passes a callback that adds the
 * SigV4 headers, and it is called once per attempt, so every retry carries
 * a fresh X-Amz-Date.
 *
 * Threads: a client is used by one thread at a time. Give each worker
 * thread its own client; the connection cache lives in the client.
 */
#ifndef SN_AWS_HTTP_H
#define SN_AWS_HTTP_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* Maximum bytes of an error response body that are read and parsed. */
#define SN_HTTP_ERROR_BODY_MAX (64 * 1024)

/* Default maximum of a response body kept in memory. */
#define SN_HTTP_BODY_MAX (1024 * 1024)

/* Maximum bytes of response headers kept for sn_http_header(). */
#define SN_HTTP_HEADERS_MAX (16 * 1024)

/* Maximum length of a URL built by sn_aws_endpoint() or sn_s3_url(). */
#define SN_HTTP_URL_MAX 4096

/* When and how long to wait between attempts. */
struct sn_http_retry {
    int max_attempts;           /* attempts in all, first one included */
    long base_ms;               /* backoff before the first retry, at most */
    long cap_ms;                /* no single wait exceeds this */
};

/* Defaults: 5 attempts, 100 ms base, 20 s cap. */
#define SN_HTTP_RETRY_DEFAULT {5, 100, 20000}

/* A source of uniform random 32-bit values; tests pass a fixed one. */
typedef uint32_t (*sn_http_random_fn)(void *opaque);

/* Waits ms milliseconds; tests pass one that records and returns. */
typedef void (*sn_http_sleep_fn)(void *opaque, long ms);

struct sn_http_config {
    long connect_timeout_ms;    /* TCP and TLS setup; default 5000 */
    /*
     * A transfer slower than low_speed_bytes per second for
     * low_speed_time_s seconds is aborted and retried. This replaces a
     * total timeout, which a large ranged GET would hit while healthy.
     * low_speed_time_s must exceed the longest server-side wait, such as
     * the 20 s of an SQS long poll, during which no byte arrives.
     */
    long low_speed_bytes;       /* default 1024 */
    long low_speed_time_s;      /* default 30 */
    long total_timeout_ms;      /* 0 (default) for none */
    struct sn_http_retry retry;
    const char *ca_file;        /* CA bundle (CURLOPT_CAINFO), or NULL
                                   for libcurl's built-in path */
    sn_http_random_fn random;   /* NULL for xorshift32 seeded per client */
    void *random_opaque;
    sn_http_sleep_fn sleep;     /* NULL: nanosleep() */
    void *sleep_opaque;
};

/* Fills cfg with the defaults above, and ca_file with the path of
 * sn_http_set_default_ca_file() when one is set. */
void sn_http_config_default(struct sn_http_config *cfg);

/*
 * Makes every client created afterwards with default settings (the S3,
 * SQS and DynamoDB backends) verify TLS peers against the CA bundle at
 * path, which is copied; NULL goes back to libcurl's built-in path. A
 * bundle shipped next to the program is how a binary carried to another
 * system (a Lambda bundle) finds its CAs. Call it at start-up, before
 * any client exists: it is not synchronised with sn_http_client_new().
 * Returns 0, or SN_ERR_INPUT when path is empty or 4096 bytes or longer.
 */
int sn_http_set_default_ca_file(const char *path);

/*
 * Adds the authentication headers to *headers for one attempt of a
 * request. It may append to the list (the layer frees it after the
 * attempt). Returns 0, or a negative SN_ERR_* code with a line in err;
 * a failure stops the request without a retry.
 */
typedef int (*sn_http_sign_fn)(void *opaque, const char *method,
                               const char *url, struct curl_slist **headers,
                               const void *body, size_t body_size,
                               char *err, size_t err_size);

/*
 * Receives n bytes of a successful (2xx) response body. Returns 0 to go
 * on, or a negative SN_ERR_* code to abort the request with that code.
 */
typedef int (*sn_http_write_fn)(void *opaque, const void *data, size_t n);

struct sn_http_request {
    const char *method;         /* "GET", "HEAD", "PUT", "POST", "DELETE" */
    const char *url;            /* already encoded (see sn_s3_url()) */
    /* Extra headers, "Name: value" each; copied, not modified. */
    const struct curl_slist *headers;
    const void *body;           /* NULL when body_size is 0 */
    size_t body_size;
    /*
     * A byte range: range_first < 0 for none, range_last < 0 for "to the
     * end". Both are inclusive byte offsets, as in an HTTP Range header.
     */
    int64_t range_first;
    int64_t range_last;
    /*
     * The destination of a 2xx body: write if set, else into the response,
     * up to max_body bytes (0 for SN_HTTP_BODY_MAX). A longer body fails
     * with SN_ERR_LIMIT.
     * A streamed ranged GET that breaks after delivering bytes is
     * resumed from the next byte. A streamed GET without a range is not
     * retried once bytes have been delivered.
     */
    sn_http_write_fn write;
    void *write_opaque;
    size_t max_body;
    sn_http_sign_fn sign;       /* NULL to send unsigned */
    void *sign_opaque;
    /* Names the object in error messages, e.g. "s3://bucket/key". */
    const char *resource;
};

/* Sets the method and URL and clears every other field. */
void sn_http_request_init(struct sn_http_request *req, const char *method,
                          const char *url);

struct sn_http_response {
    long status;                /* last HTTP status, 0 if none arrived */
    char *body;                 /* 2xx body when no write callback was
                                   given, NUL-terminated; owned */
    size_t body_size;
    char *headers;              /* header lines of the last response */
    size_t headers_size;
    int attempts;               /* attempts made */
    char aws_code[128];         /* service error code, "" if none */
};

/* Frees the body and headers; the struct is zeroed and reusable. */
void sn_http_response_release(struct sn_http_response *resp);

/*
 * Copies the value of the response header name (case-insensitive, first
 * occurrence, surrounding blanks trimmed) into out. Returns its length,
 * or -1 if the header is absent or longer than out_size - 1.
 */
int sn_http_header(const struct sn_http_response *resp, const char *name,
                   char *out, size_t out_size);

struct sn_http_client;

/*
 * Creates a client with a copy of cfg (NULL for the defaults). Pointers
 * in cfg (ca_file, opaques) must outlive the client. Returns NULL when
 * memory or libcurl initialisation fails. libcurl's global init must have
 * run (curl_global_init()) before the first client is created.
 */
struct sn_http_client *sn_http_client_new(const struct sn_http_config *cfg);

/* Closes the kept-alive connections and frees the client; NULL is fine. */
void sn_http_client_free(struct sn_http_client *client);

/*
 * Sends req, retrying as sn_http_should_retry() decides, and waits
 * sn_http_backoff_ms() between attempts. resp must not hold a previous
 * response, because it is overwritten. It is filled on success and on
 * failure, so the caller can read the status and aws_code either way,
 * and releases it afterwards.
 *
 * Returns 0 for a 2xx response. Otherwise returns the code from
 * sn_aws_error_map() (SN_ERR_AGAIN when retries ran out on a transient
 * failure) and writes one line into err: method, resource, status, the
 * service's code and message, a hint to check the credentials when the
 * service rejected the key or signature, and the attempt count when the
 * request was retried.
 */
int sn_http_send(struct sn_http_client *client,
                 const struct sn_http_request *req,
                 struct sn_http_response *resp, char *err, size_t err_size);

/*
 * Decides whether an attempt that ended with curl_code, HTTP status and
 * service error code aws_code (NULL or "" if none) is worth retrying:
 * connection failures, timeouts, 5xx other than 501, 429, and throttling
 * codes whatever the status. Other 4xx are not retried. Returns 1 or 0.
 */
int sn_http_should_retry(CURLcode curl_code, long status,
                         const char *aws_code);

/*
 * Returns the wait before retry number retry (0 for the wait after the
 * first attempt): uniform in [0, min(cap_ms, base_ms * 2^retry)], drawn
 * from rand_fn.
 */
long sn_http_backoff_ms(const struct sn_http_retry *policy, int retry,
                        sn_http_random_fn rand_fn, void *rand_opaque);

/* An AWS error response, decoded. */
struct sn_aws_error {
    char code[128];             /* e.g. "NoSuchKey", "" if not found */
    char message[512];          /* the service's message, "" if none */
};

/*
 * Extracts the error code and message from an error response: the code
 * from the x-amzn-query-error header (SQS JSON, "Code;Sender"), else the
 * JSON "__type" (after any "...#"), else the XML <Code> (S3, and the
 * XML auth errors some JSON services return), else the X-Amzn-ErrorType
 * header. The message comes from JSON "message"/"Message" or XML
 * <Message>. headers may be NULL; body need not be NUL-terminated.
 * Fields not found are left empty; there is no failure return.
 */
void sn_aws_error_parse(const char *headers, size_t headers_size,
                        const char *body, size_t body_size,
                        struct sn_aws_error *out);

/*
 * Maps a final HTTP status and service error code to an SN_ERR_* code:
 * NOT_FOUND, CONFLICT, AGAIN (throttling, 5xx but 501), BACKEND (authentication,
 * access, anything unknown), INPUT (validation) or LIMIT (entity too
 * large). With no code (HEAD responses have no body) the status decides.
 */
int sn_aws_error_map(long status, const char *aws_code);

/*
 * Returns 1 when a final status and service error code (NULL or "" if
 * none) mean the credentials or permissions were rejected: an unknown
 * key, a bad signature, an expired token, access denied, or 401 or 403
 * without a code. Returns 0 otherwise.
 */
int sn_aws_error_is_auth(long status, const char *aws_code);

/*
 * Writes the endpoint for service ("s3", "sqs" or "dynamodb") in region
 * into out: AWS_ENDPOINT_URL_<SERVICE> if set, else AWS_ENDPOINT_URL,
 * else https://<service>.<region>.amazonaws.com. Setting
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips both variables. A
 * trailing '/' is removed. Returns 0, or SN_ERR_INPUT (bad service or
 * region, URL without http:// or https://) or SN_ERR_LIMIT (longer than
 * out_size - 1) with a line in err.
 */
int sn_aws_endpoint(const char *service, const char *region, char *out,
                    size_t out_size, char *err, size_t err_size);

/*
 * Percent-encodes s into out: every byte except the unreserved set
 * (A-Z a-z 0-9 - . _ ~) and, when keep_slash is set, '/'. Returns the
 * encoded length, or -1 if it does not fit in out_size - 1.
 */
int sn_aws_uri_encode(const char *s, int keep_slash, char *out,
                      size_t out_size);

/*
 * Writes the path-style URL endpoint/bucket/key into out, with the key
 * encoded once by sn_aws_uri_encode() keeping '/'. key may be NULL or ""
 * for the bucket itself. Returns 0, or SN_ERR_INPUT (empty or invalid
 * bucket name) or SN_ERR_LIMIT (too long) with a line in err.
 */
int sn_s3_url(const char *endpoint, const char *bucket, const char *key,
              char *out, size_t out_size, char *err, size_t err_size);

#endif
