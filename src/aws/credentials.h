/*
 * AWS credentials and region, found the way the AWS SDKs find them. The
 * provider tries these sources in order and stops at the first that yields
 * a key pair:
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *      AWS_SESSION_TOKEN;
 *   2. shared files: the profile AWS_PROFILE (default "default") in the
 *      credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), then in the config file (AWS_CONFIG_FILE,
 *      default ~/.aws/config);
 *   3. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI appended to
 *      http://169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI;
 *   4. EC2 instance metadata (IMDSv2, with an IMDSv1 fallback), unless
 *      AWS_EC2_METADATA_DISABLED is "true" in any case.
 *
 * Only static keys in the shared files are read. Profiles that name
 * role_arn, credential_process or SSO settings, and web identity
 * (AWS_WEB_IDENTITY_TOKEN_FILE), are not supported: the final error names
 * them when they are the only source present.
 *
 * Reference: docs.aws.amazon.com/sdkref/latest/guide/
 * standardized-credentials.html and the pages it links.
 */
#ifndef SN_AWS_CREDENTIALS_H
#define SN_AWS_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Buffer sizes, terminating NUL included. Longer values are rejected. */
#define SN_AWS_KEY_ID_SIZE 129       /* IAM allows 16 to 128 characters */
#define SN_AWS_SECRET_SIZE 257
/* NOTE: STS documents no maximum token size, so 4096 is a guess. Longer
 * tokens are rejected with SN_ERR_LIMIT. */
#define SN_AWS_TOKEN_SIZE 4096
#define SN_AWS_REGION_SIZE 64

/* Refresh temporary credentials this many seconds before they expire. */
#define SN_AWS_REFRESH_AHEAD 300

struct sn_aws_credentials {
    char access_key_id[SN_AWS_KEY_ID_SIZE];
    char secret_access_key[SN_AWS_SECRET_SIZE];
    char session_token[SN_AWS_TOKEN_SIZE];  /* empty for long-term keys */
    int64_t expires;          /* Unix seconds; 0 means the keys never expire */
    char source[32];          /* "environment", "profile", "container", "imds" */
};

struct sn_aws_provider;

/*
 * Allocates a provider with an empty cache. Nothing is read until the
 * first sn_aws_credentials_get(). Also calls curl_global_init() once per
 * process. Returns 0 and *out, or -ENOMEM. Free with sn_aws_provider_free().
 */
int sn_aws_provider_new(struct sn_aws_provider **out);

/* Frees the provider and wipes its cached keys. Accepts NULL. */
void sn_aws_provider_free(struct sn_aws_provider *p);

/*
 * Copies the current credentials into *out. The first call walks the
 * chain. Later calls return the cached keys, walking the chain again only
 * when the cached keys expire within SN_AWS_REFRESH_AHEAD seconds. When
 * that refresh fails and the cached keys have not expired yet, they are
 * returned anyway. Keys that carry no expiry time are cached for the
 * provider's lifetime.
 *
 * Returns 0, or:
 *   SN_ERR_NOT_FOUND  no source has credentials; err lists what each
 *                     source lacked;
 *   SN_ERR_INPUT      a source is configured but invalid (a half-written
 *                     profile is not this: it is skipped and reported);
 *   SN_ERR_LIMIT      a value is longer than its buffer;
 *   SN_ERR_AGAIN      the configured container endpoint failed.
 * On failure *out is zeroed and err contains one line naming the source and
 * the cause. Safe to call from any thread: a mutex serializes refreshes,
 * so a caller may wait up to about 2 s per network source.
 */
int sn_aws_credentials_get(struct sn_aws_provider *p,
                           struct sn_aws_credentials *out, char *err,
                           size_t err_size);

/*
 * Writes the region into out: AWS_REGION, else AWS_DEFAULT_REGION, else
 * "region" in the config file's section for AWS_PROFILE. Returns 0,
 * SN_ERR_NOT_FOUND when none is set, or SN_ERR_LIMIT when the value does
 * not fit in out_size bytes, with the cause in err. Reads the environment and
 * files on every call; any thread may call it.
 */
int sn_aws_region(char *out, size_t out_size, char *err, size_t err_size);

/*
 * Test hook: the provider calls hook with each address before it opens a
 * socket (container and IMDS requests). A non-zero return blocks that
 * connection. Set it before the first sn_aws_credentials_get().
 */
typedef int (*sn_aws_connect_hook)(void *opaque, const struct sockaddr *addr);
void sn_aws_provider_set_connect_hook(struct sn_aws_provider *p,
                                      sn_aws_connect_hook hook, void *opaque);

#endif
