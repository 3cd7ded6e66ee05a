#include "aws/credentials.h"

#include "util/error.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

/* Timeouts of every container and IMDS request. They are short, so that
 * the chain fails fast on a machine that has neither endpoint. */
#define CONNECT_TIMEOUT_MS 1000L
#define TOTAL_TIMEOUT_MS 2000L

/* Maximum sizes of what is read from endpoints and files. */
#define MAX_REPLY (64 * 1024)
#define MAX_INI_FILE (1024 * 1024)
#define MAX_TOKEN_FILE (16 * 1024)
#define MAX_IMDS_TOKEN 1024

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_HOST_V4 "http://169.254.169.254"
#define IMDS_HOST_V6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL "21600"
#define IMDS_ROLES_PATH "/latest/meta-data/iam/security-credentials/"

struct sn_aws_provider {
    pthread_mutex_t lock;
    int cached_valid;
    struct sn_aws_credentials cached;
    int refresh_failure_logged;  /* for the cached keys */
    sn_aws_connect_hook hook;
    void *hook_opaque;
};

/* A reply body of at most MAX_REPLY bytes. Overflow is recorded, and the
 * transfer stops. */
struct reply {
    char *data;
    size_t len;
    int overflow;
};

/* Values of one profile section that this provider reads. */
struct profile {
    int found;                /* the section exists */
    char key_id[SN_AWS_KEY_ID_SIZE];
    char secret[SN_AWS_SECRET_SIZE];
    char token[SN_AWS_TOKEN_SIZE];
    char region[SN_AWS_REGION_SIZE];
    char unsupported[32];     /* first key naming an unsupported source */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Returns 1 when the variable is "true" in any case, as the SDKs read it. */
static int env_true(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && strcasecmp(v, "true") == 0;
}

/* Returns the variable's value, or NULL when it is unset or empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *b = p;

    while (n--)
        *b++ = 0;
}

/*
 * Copies a key, secret or token into dst. These values end up in HTTP
 * headers, so anything but printable ASCII without spaces is rejected.
 */
static int copy_secret(char *dst, size_t size, const char *value,
                       const char *what, char *msg, size_t msg_size)
{
    size_t n = strlen(value);

    if (n >= size) {
        snprintf(msg, msg_size, "%s is %zu bytes, over the maximum of %zu",
                 what, n, size - 1);
        return SN_ERR_LIMIT;
    }
    for (size_t i = 0; i < n; i++) {
        if (value[i] < 0x21 || value[i] > 0x7e) {
            snprintf(msg, msg_size,
                     "%s contains a space, control or non-ASCII byte", what);
            return SN_ERR_INPUT;
        }
    }

    memcpy(dst, value, n + 1);
    return 0;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_since_epoch(int y, int m, int d)
{
    static const int before_month[] = {0,   31,  59,  90,  120, 151,
                                       181, 212, 243, 273, 304, 334};
    int64_t leaps = (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400 -
                    (1969 / 4 - 1969 / 100 + 1969 / 400);
    int64_t days = (int64_t)(y - 1970) * 365 + leaps +
                   before_month[m - 1] + d - 1;

    if (m > 2 && is_leap(y))
        days++;
    return days;
}

/*
 * Parses an RFC 3339 time such as "2026-12-05T01:02:03Z", with optional
 * fractional seconds (dropped) and a "Z" or "+hh:mm" offset, into Unix
 * seconds. Returns 0, or -1 when s is not in that form.
 */
static int parse_iso8601(const char *s, int64_t *out)
{
    static const int month_days[] = {31, 29, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    const char *p = s;

    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
        *p++ != '-' || digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
        *p++ != ':' || digits(&p, 2, &sec))
        return -1;

    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return -1;
    } else {
        return -1;
    }

    if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > month_days[mo - 1] || (mo == 2 && d == 29 && !is_leap(y)) ||
        h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
        return -1;

    *out = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
           sign * (oh * 3600 + om * 60);
    return 0;
}

/*
 * Reads the credentials JSON that container endpoints and IMDS return:
 * AccessKeyId, SecretAccessKey, and optionally Token and Expiration.
 */
static int parse_credentials_json(const char *text, const char *where,
                                  struct sn_aws_credentials *c, char *msg,
                                  size_t msg_size)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    const char *id, *secret, *token, *expiration, *code;
    char what[160];
    int rc = SN_ERR_INPUT;

    if (root == NULL || !json_is_object(root)) {
        snprintf(msg, msg_size, "%s: reply is not a JSON object", where);
        goto out;
    }

    code = json_string_value(json_object_get(root, "Code"));
    id = json_string_value(json_object_get(root, "AccessKeyId"));
    secret = json_string_value(json_object_get(root, "SecretAccessKey"));
    token = json_string_value(json_object_get(root, "Token"));
    expiration = json_string_value(json_object_get(root, "Expiration"));
    if (code != NULL && strcmp(code, "Success") != 0) {
        snprintf(msg, msg_size, "%s: reply Code is \"%.40s\", not Success",
                 where, code);
        goto out;
    }
    if (id == NULL || id[0] == '\0' || secret == NULL || secret[0] == '\0') {
        snprintf(msg, msg_size,
                 "%s: reply lacks AccessKeyId or SecretAccessKey", where);
        goto out;
    }

    snprintf(what, sizeof(what), "%s: AccessKeyId", where);
    rc = copy_secret(c->access_key_id, sizeof(c->access_key_id), id, what,
                     msg, msg_size);
    if (rc < 0)
        goto out;
    snprintf(what, sizeof(what), "%s: SecretAccessKey", where);
    rc = copy_secret(c->secret_access_key, sizeof(c->secret_access_key),
                     secret, what, msg, msg_size);
    if (rc < 0)
        goto out;
    if (token != NULL && token[0] != '\0') {
        snprintf(what, sizeof(what), "%s: Token", where);
        rc = copy_secret(c->session_token, sizeof(c->session_token), token,
                         what, msg, msg_size);
        if (rc < 0)
            goto out;
    }

    c->expires = 0;
    if (expiration != NULL && parse_iso8601(expiration, &c->expires) < 0) {
        snprintf(msg, msg_size,
                 "%s: Expiration \"%.40s\" is not an ISO 8601 UTC time",
                 where, expiration);
        rc = SN_ERR_INPUT;
        goto out;
    }
    rc = 0;

out:
    json_decref(root);
    return rc;
}

/* ---- Source 1: the environment ---- */

static int from_environment(struct sn_aws_provider *p,
                            struct sn_aws_credentials *c, char *msg,
                            size_t msg_size)
{
    const char *id = env_value("AWS_ACCESS_KEY_ID");
    const char *secret = env_value("AWS_SECRET_ACCESS_KEY");
    const char *token = env_value("AWS_SESSION_TOKEN");
    int rc;

    (void)p;
    if (id == NULL && secret == NULL) {
        snprintf(msg, msg_size, "environment: AWS_ACCESS_KEY_ID not set");
        return SN_ERR_NOT_FOUND;
    }
    if (id == NULL || secret == NULL) {
        snprintf(msg, msg_size, "environment: %s is set but %s is not",
                 id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                 id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return SN_ERR_NOT_FOUND;
    }

    rc = copy_secret(c->access_key_id, sizeof(c->access_key_id), id,
                     "AWS_ACCESS_KEY_ID", msg, msg_size);
    if (rc == 0)
        rc = copy_secret(c->secret_access_key, sizeof(c->secret_access_key),
                         secret, "AWS_SECRET_ACCESS_KEY", msg, msg_size);
    if (rc == 0 && token != NULL)
        rc = copy_secret(c->session_token, sizeof(c->session_token), token,
                         "AWS_SESSION_TOKEN", msg, msg_size);
    return rc;
}

/* ---- Source 2: the shared credentials and config files ---- */

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/*
 * Returns 1 when the header text between the brackets names profile. The
 * credentials file uses [NAME]. The config file uses [profile NAME], and
 * [default] for the default profile.
 */
static int section_matches(char *header, int is_config, const char *profile)
{
    char *name = trim(header);

    if (!is_config)
        return strcmp(name, profile) == 0;
    if (strcmp(name, "default") == 0)
        return strcmp(profile, "default") == 0;
    if (strncmp(name, "profile", 7) != 0 || (name[7] != ' ' && name[7] != '\t'))
        return 0;
    return strcmp(trim(name + 8), profile) == 0;
}

static int store_profile_value(struct profile *pr, const char *key,
                               const char *value, const char *path,
                               char *msg, size_t msg_size)
{
    static const char *const unsupported[] = {
        "role_arn", "credential_process", "sso_session", "sso_start_url",
        "web_identity_token_file"};
    char what[300];

    snprintf(what, sizeof(what), "%s in %s", key, path);
    if (strcmp(key, "aws_access_key_id") == 0)
        return copy_secret(pr->key_id, sizeof(pr->key_id), value, what, msg,
                           msg_size);
    if (strcmp(key, "aws_secret_access_key") == 0)
        return copy_secret(pr->secret, sizeof(pr->secret), value, what, msg,
                           msg_size);
    if (strcmp(key, "aws_session_token") == 0)
        return copy_secret(pr->token, sizeof(pr->token), value, what, msg,
                           msg_size);
    if (strcmp(key, "region") == 0)
        return copy_secret(pr->region, sizeof(pr->region), value, what, msg,
                           msg_size);

    for (size_t i = 0; i < sizeof(unsupported) / sizeof(*unsupported); i++) {
        if (strcmp(key, unsupported[i]) == 0 && pr->unsupported[0] == '\0')
            snprintf(pr->unsupported, sizeof(pr->unsupported), "%s", key);
    }
    return 0;
}

/*
 * Reads the section for profile from an INI file. Full-line comments start
 * with '#' or ';'. An indented line right after a key continues that
 * key's value (nested settings such as "s3 =") and is skipped. A repeated section adds to the
 * first. Returns 0 with pr->found set or not, SN_ERR_NOT_FOUND when the
 * file does not exist, SN_ERR_INPUT or SN_ERR_LIMIT with msg set.
 */
static int read_profile(const char *path, int is_config, const char *profile,
                        struct profile *pr, char *msg, size_t msg_size)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t line_cap = 0;
    struct stat st;
    int in_section = 0, after_key = 0, rc = 0;

    memset(pr, 0, sizeof(*pr));
    if (f == NULL && errno == ENOENT)
        return SN_ERR_NOT_FOUND;
    if (f == NULL || fstat(fileno(f), &st) < 0) {
        snprintf(msg, msg_size, "cannot read %s: %s", path, strerror(errno));
        rc = SN_ERR_INPUT;
        goto out;
    }
    if (st.st_size > MAX_INI_FILE) {
        snprintf(msg, msg_size, "%s is over the maximum of %d bytes", path,
                 MAX_INI_FILE);
        rc = SN_ERR_LIMIT;
        goto out;
    }

    while (getline(&line, &line_cap, f) >= 0) {
        char *s = trim(line), *eq, *close;

        /* An indented line right after a key continues that key's value. */
        if (s != line && after_key && s[0] != '\0')
            continue;
        after_key = 0;
        if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
            continue;

        if (s[0] == '[') {
            close = strchr(s, ']');
            in_section = 0;
            if (close != NULL) {
                *close = '\0';
                in_section = section_matches(s + 1, is_config, profile);
                pr->found |= in_section;
            }
            continue;
        }

        eq = strchr(s, '=');
        after_key = eq != NULL;
        if (!in_section || eq == NULL)
            continue;
        *eq = '\0';
        rc = store_profile_value(pr, trim(s), trim(eq + 1), path, msg,
                                 msg_size);
        if (rc < 0)
            goto out;
    }

out:
    free(line);
    if (f != NULL)
        fclose(f);
    if (rc < 0)
        wipe(pr, sizeof(*pr));
    return rc;
}

/* Writes the file's path: the variable's value, or ~/.aws/default_name. */
static int shared_file_path(const char *variable, const char *default_name,
                            char *path, size_t path_size)
{
    const char *v = env_value(variable), *home = env_value("HOME");
    int n;

    if (v != NULL)
        n = snprintf(path, path_size, "%s", v);
    else if (home != NULL)
        n = snprintf(path, path_size, "%s/.aws/%s", home, default_name);
    else
        return -1;
    return n < 0 || (size_t)n >= path_size ? -1 : 0;
}

static const char *profile_name(void)
{
    const char *v = env_value("AWS_PROFILE");

    return v != NULL ? v : "default";
}

/* Copies a complete key pair from pr, or notes why pr has none. */
static int take_profile_keys(const struct profile *pr, const char *path,
                             const char *profile,
                             struct sn_aws_credentials *c, char *note,
                             size_t note_size)
{
    if (pr->key_id[0] != '\0' && pr->secret[0] != '\0') {
        memcpy(c->access_key_id, pr->key_id, sizeof(pr->key_id));
        memcpy(c->secret_access_key, pr->secret, sizeof(pr->secret));
        memcpy(c->session_token, pr->token, sizeof(pr->token));
        return 0;
    }

    if (pr->key_id[0] != '\0' || pr->secret[0] != '\0')
        snprintf(note, note_size, "profile %s in %s has %s but no %s",
                 profile, path,
                 pr->key_id[0] ? "aws_access_key_id" : "aws_secret_access_key",
                 pr->key_id[0] ? "aws_secret_access_key" : "aws_access_key_id");
    else if (pr->unsupported[0] != '\0')
        snprintf(note, note_size,
                 "profile %s in %s uses %s, which is not supported", profile,
                 path, pr->unsupported);
    else if (pr->found)
        snprintf(note, note_size, "profile %s in %s has no keys", profile,
                 path);
    else
        snprintf(note, note_size, "no profile %s in %s", profile, path);
    return SN_ERR_NOT_FOUND;
}

static int from_shared_files(struct sn_aws_provider *p,
                             struct sn_aws_credentials *c, char *msg,
                             size_t msg_size)
{
    static const struct {
        const char *variable, *default_name;
        int is_config;
    } files[] = {
        {"AWS_SHARED_CREDENTIALS_FILE", "credentials", 0},
        {"AWS_CONFIG_FILE", "config", 1},
    };
    const char *profile = profile_name();
    struct profile *pr = malloc(sizeof(*pr));
    char path[4096], notes[2][400];
    int rc = SN_ERR_NOT_FOUND;

    (void)p;
    if (pr == NULL) {
        snprintf(msg, msg_size, "shared files: out of memory");
        return -ENOMEM;
    }

    for (size_t i = 0; i < 2 && rc == SN_ERR_NOT_FOUND; i++) {
        snprintf(notes[i], sizeof(notes[i]), "%s unset and no HOME",
                 files[i].variable);
        if (shared_file_path(files[i].variable, files[i].default_name, path,
                             sizeof(path)) < 0)
            continue;

        rc = read_profile(path, files[i].is_config, profile, pr, msg,
                          msg_size);
        if (rc == SN_ERR_NOT_FOUND) {
            snprintf(notes[i], sizeof(notes[i]), "no file %s", path);
            continue;
        }
        if (rc == 0)
            rc = take_profile_keys(pr, path, profile, c, notes[i],
                                   sizeof(notes[i]));
    }

    if (rc == SN_ERR_NOT_FOUND)
        snprintf(msg, msg_size, "shared files: %s; %s", notes[0], notes[1]);
    wipe(pr, sizeof(*pr));
    free(pr);
    return rc;
}

/* ---- HTTP for the container and IMDS sources ---- */

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
    struct reply *r = opaque;
    size_t len = size * n;

    if (r->len + len > MAX_REPLY) {
        r->overflow = 1;
        return 0;
    }
    memcpy(r->data + r->len, data, len);
    r->len += len;
    r->data[r->len] = '\0';
    return len;
}

static curl_socket_t on_open_socket(void *opaque, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct sn_aws_provider *p = opaque;

    (void)purpose;
    if (p->hook != NULL && p->hook(p->hook_opaque, &a->addr) != 0)
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

/*
 * Sends one request with the short metadata timeouts, through no proxy
 * and following no redirect. put sends an empty PUT body, else a GET.
 * Returns 0 with *status and r filled, or SN_ERR_AGAIN (no reply) or
 * SN_ERR_LIMIT (reply over MAX_REPLY) with the cause in msg.
 */
static int http_call(struct sn_aws_provider *p, int put, const char *url,
                     struct curl_slist *headers, long *status,
                     struct reply *r, char *msg, size_t msg_size)
{
    CURL *curl = curl_easy_init();
    char curl_err[CURL_ERROR_SIZE] = "";
    CURLcode cc;

    r->len = 0;
    r->overflow = 0;
    r->data[0] = '\0';
    if (curl == NULL) {
        snprintf(msg, msg_size, "curl_easy_init failed");
        return SN_ERR_AGAIN;
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, p);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (put) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    }

    cc = curl_easy_perform(curl);
    if (cc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(curl);

    if (r->overflow) {
        snprintf(msg, msg_size, "reply from %s is over the maximum of %d bytes",
                 url, MAX_REPLY);
        return SN_ERR_LIMIT;
    }
    if (cc != CURLE_OK) {
        snprintf(msg, msg_size, "request to %s failed: %s", url,
                 curl_err[0] ? curl_err : curl_easy_strerror(cc));
        return SN_ERR_AGAIN;
    }
    return 0;
}

/* ---- Source 3: the container credentials endpoint ---- */

/*
 * Returns 1 when an http FULL_URI host is allowed: loopback, or the ECS
 * and EKS agent addresses 169.254.170.2, 169.254.170.23 and fd00:ec2::23.
 * NOTE: host names other than "localhost" are rejected without a DNS
 * lookup, where the SDKs resolve them and accept loopback results.
 */
static int container_host_allowed(const char *host)
{
    unsigned char a4[4], a6[16], eks6[16];
    char bare[64];
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, a4) == 1)
        return a4[0] == 127 || strcmp(host, "169.254.170.2") == 0 ||
               strcmp(host, "169.254.170.23") == 0;

    if (n < 3 || n - 2 >= sizeof(bare) || host[0] != '[' || host[n - 1] != ']')
        return 0;
    memcpy(bare, host + 1, n - 2);
    bare[n - 2] = '\0';
    if (inet_pton(AF_INET6, bare, a6) != 1)
        return 0;
    inet_pton(AF_INET6, "fd00:ec2::23", eks6);
    return memcmp(a6, &in6addr_loopback, 16) == 0 ||
           memcmp(a6, eks6, 16) == 0;
}

/* Accepts a FULL_URI that is https, or http to an allowed host. */
static int check_full_uri(const char *uri, char *msg, size_t msg_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = SN_ERR_INPUT;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(msg, msg_size,
                 "container: AWS_CONTAINER_CREDENTIALS_FULL_URI \"%.200s\" "
                 "is not a valid URL", uri);
        goto out;
    }

    if (strcmp(scheme, "https") == 0 ||
        (strcmp(scheme, "http") == 0 && container_host_allowed(host)))
        rc = 0;
    else
        snprintf(msg, msg_size,
                 "container: AWS_CONTAINER_CREDENTIALS_FULL_URI %.200s is "
                 "rejected: use https, or http to a loopback host or "
                 "169.254.170.2/.23", uri);

out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/*
 * Reads the Authorization value: the file named by
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE wins over
 * AWS_CONTAINER_AUTHORIZATION_TOKEN. Writes "" when neither is set.
 */
static int container_auth(char *auth, size_t auth_size, char *msg,
                          size_t msg_size)
{
    const char *file = env_value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *value = env_value("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    FILE *f;
    size_t n;

    auth[0] = '\0';
    if (file == NULL) {
        if (value != NULL && strlen(value) >= auth_size) {
            snprintf(msg, msg_size, "container: "
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN is over the maximum "
                     "of %zu bytes", auth_size - 1);
            return SN_ERR_LIMIT;
        }
        snprintf(auth, auth_size, "%s", value ? value : "");
    } else {
        f = fopen(file, "r");
        if (f == NULL) {
            snprintf(msg, msg_size, "container: cannot read "
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", file,
                     strerror(errno));
            return SN_ERR_INPUT;
        }
        n = fread(auth, 1, auth_size - 1, f);
        auth[n] = '\0';
        if (n == auth_size - 1 && fgetc(f) != EOF) {
            fclose(f);
            snprintf(msg, msg_size, "container: "
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s is over the "
                     "maximum of %zu bytes", file, auth_size - 1);
            return SN_ERR_LIMIT;
        }
        fclose(f);

        /* Files written by tools often end with a newline. */
        while (n > 0 && (auth[n - 1] == '\n' || auth[n - 1] == '\r'))
            auth[--n] = '\0';
    }

    /* A CR or LF would split the header and inject another one. */
    if (strpbrk(auth, "\r\n") != NULL) {
        snprintf(msg, msg_size,
                 "container: the authorization token contains a line break");
        return SN_ERR_INPUT;
    }
    return 0;
}

static int from_container(struct sn_aws_provider *p,
                          struct sn_aws_credentials *c, char *msg,
                          size_t msg_size)
{
    const char *relative = env_value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_value("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    struct reply r = {malloc(MAX_REPLY + 1), 0, 0};
    struct curl_slist *headers = NULL, *more;
    char url[2048], where[2100], cause[2200];
    char *auth = malloc(MAX_TOKEN_FILE + 32);
    long status = 0;
    int rc;

    if (r.data == NULL || auth == NULL) {
        snprintf(msg, msg_size, "container: out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (relative == NULL && full == NULL) {
        snprintf(msg, msg_size, "container: AWS_CONTAINER_CREDENTIALS_"
                 "RELATIVE_URI and _FULL_URI not set");
        rc = SN_ERR_NOT_FOUND;
        goto out;
    }

    /* RELATIVE_URI wins when both are set, as in the aws-config (Rust
     * SDK) ecs module. */
    if (relative != NULL) {
        rc = snprintf(url, sizeof(url), "%s%s%s", CONTAINER_HOST,
                      relative[0] == '/' ? "" : "/", relative);
        rc = rc < 0 || (size_t)rc >= sizeof(url) ? SN_ERR_LIMIT : 0;
    } else {
        rc = strlen(full) >= sizeof(url) ? SN_ERR_LIMIT
                                         : check_full_uri(full, msg, msg_size);
        snprintf(url, sizeof(url), "%s", full);
    }
    if (rc == SN_ERR_LIMIT)
        snprintf(msg, msg_size, "container: the credentials URI is over the "
                 "maximum of %zu bytes", sizeof(url) - 1);
    if (rc < 0)
        goto out;

    rc = container_auth(auth + 15, MAX_TOKEN_FILE + 1, msg, msg_size);
    if (rc < 0)
        goto out;
    if (auth[15] != '\0') {
        memcpy(auth, "Authorization: ", 15);
        more = curl_slist_append(headers, auth);
        if (more == NULL) {
            rc = -ENOMEM;
            snprintf(msg, msg_size, "container: out of memory");
            goto out;
        }
        headers = more;
    }

    snprintf(where, sizeof(where), "container credentials at %s", url);
    rc = http_call(p, 0, url, headers, &status, &r, cause, sizeof(cause));
    if (rc < 0) {
        snprintf(msg, msg_size, "container: %s", cause);
        goto out;
    }
    if (status != 200) {
        snprintf(msg, msg_size, "%s: HTTP %ld", where, status);
        rc = status >= 500 ? SN_ERR_AGAIN : SN_ERR_INPUT;
        goto out;
    }
    rc = parse_credentials_json(r.data, where, c, msg, msg_size);

out:
    curl_slist_free_all(headers);
    if (auth != NULL)
        wipe(auth, MAX_TOKEN_FILE + 32);
    if (r.data != NULL)
        wipe(r.data, MAX_REPLY + 1);
    free(auth);
    free(r.data);
    return rc;
}

/* ---- Source 4: EC2 instance metadata ---- */

/* Writes the IMDS base URL, without a trailing '/'. */
static void imds_base(char *base, size_t base_size)
{
    const char *endpoint = env_value("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = env_value("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    size_t n;

    if (endpoint == NULL)
        endpoint = mode != NULL && strcasecmp(mode, "IPv6") == 0
                       ? IMDS_HOST_V6 : IMDS_HOST_V4;
    snprintf(base, base_size, "%s", endpoint);
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
}

/*
 * Gets an IMDSv2 session token into header ("X-aws-ec2-metadata-token:
 * ..."). Leaves header empty for the IMDSv1 fallback, which is taken when
 * the token request returns 403, 404 or 405, unless
 * AWS_EC2_METADATA_V1_DISABLED is true. Returns SN_ERR_NOT_FOUND when
 * IMDS is unreachable or refuses a token.
 */
static int imds_token(struct sn_aws_provider *p, const char *base,
                      struct reply *r, char *header, size_t header_size,
                      char *msg, size_t msg_size)
{
    struct curl_slist ttl = {"X-aws-ec2-metadata-token-ttl-seconds: "
                             IMDS_TOKEN_TTL, NULL};
    char url[600], cause[600];
    long status = 0;
    int rc;

    header[0] = '\0';
    snprintf(url, sizeof(url), "%s/latest/api/token", base);
    rc = http_call(p, 1, url, &ttl, &status, r, cause, sizeof(cause));
    if (rc < 0) {
        snprintf(msg, msg_size, "IMDS: %s", cause);
        return SN_ERR_NOT_FOUND;
    }

    if (status == 200 && r->len > 0 && r->len <= MAX_IMDS_TOKEN &&
        strpbrk(r->data, "\r\n") == NULL) {
        snprintf(header, header_size, "X-aws-ec2-metadata-token: %s",
                 r->data);
        return 0;
    }
    if ((status == 403 || status == 404 || status == 405) &&
        !env_true("AWS_EC2_METADATA_V1_DISABLED"))
        return 0;

    snprintf(msg, msg_size, "IMDS: token request to %s returned HTTP %ld%s",
             url, status, status == 200 ? " with an invalid token" : "");
    return SN_ERR_NOT_FOUND;
}

/* Role names are IAM names: 1 to 64 of [A-Za-z0-9+=,.@_-]. */
static int role_name_valid(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789+=,.@_-");

    return n > 0 && n <= 64 && s[n] == '\0';
}

static int imds_get(struct sn_aws_provider *p, const char *url,
                    struct curl_slist *headers, struct reply *r, char *msg,
                    size_t msg_size)
{
    char cause[700];
    long status = 0;
    int rc = http_call(p, 0, url, headers, &status, r, cause, sizeof(cause));

    if (rc < 0) {
        snprintf(msg, msg_size, "IMDS: %s", cause);
        return rc;
    }
    if (status == 404) {
        snprintf(msg, msg_size, "IMDS: no IAM role attached (HTTP 404 for "
                 "%s)", url);
        return SN_ERR_NOT_FOUND;
    }
    if (status != 200) {
        snprintf(msg, msg_size, "IMDS: GET %s returned HTTP %ld", url,
                 status);
        return SN_ERR_AGAIN;
    }
    return 0;
}

static int from_imds(struct sn_aws_provider *p, struct sn_aws_credentials *c,
                     char *msg, size_t msg_size)
{
    struct reply r = {malloc(MAX_REPLY + 1), 0, 0};
    struct curl_slist header = {NULL, NULL};
    char base[512], url[700], role[80], token[MAX_IMDS_TOKEN + 40];
    int rc;

    /* Checked before anything else, so that no request is ever sent. */
    if (env_true("AWS_EC2_METADATA_DISABLED")) {
        snprintf(msg, msg_size, "IMDS: off (AWS_EC2_METADATA_DISABLED)");
        rc = SN_ERR_NOT_FOUND;
        goto out;
    }
    if (r.data == NULL) {
        snprintf(msg, msg_size, "IMDS: out of memory");
        rc = -ENOMEM;
        goto out;
    }

    imds_base(base, sizeof(base));
    rc = imds_token(p, base, &r, token, sizeof(token), msg, msg_size);
    if (rc < 0)
        goto out;
    header.data = token;

    /* The listing has one role per line. An instance profile contains one
     * role, so the first line is used. */
    snprintf(url, sizeof(url), "%s%s", base, IMDS_ROLES_PATH);
    rc = imds_get(p, url, token[0] ? &header : NULL, &r, msg, msg_size);
    if (rc < 0)
        goto out;
    r.data[strcspn(r.data, "\r\n")] = '\0';
    if (!role_name_valid(r.data)) {
        snprintf(msg, msg_size, "IMDS: %s did not return a valid role name",
                 url);
        rc = SN_ERR_INPUT;
        goto out;
    }
    snprintf(role, sizeof(role), "%s", r.data);

    snprintf(url, sizeof(url), "%s%s%s", base, IMDS_ROLES_PATH, role);
    rc = imds_get(p, url, token[0] ? &header : NULL, &r, msg, msg_size);
    if (rc == 0)
        rc = parse_credentials_json(r.data, "IMDS role credentials", c, msg,
                                    msg_size);

out:
    wipe(token, sizeof(token));
    if (r.data != NULL)
        wipe(r.data, MAX_REPLY + 1);
    free(r.data);
    return rc;
}

/* ---- Web identity: recognised only to name it in the error ---- */

static int from_web_identity(struct sn_aws_provider *p,
                             struct sn_aws_credentials *c, char *msg,
                             size_t msg_size)
{
    (void)p;
    (void)c;
    msg[0] = '\0';
    if (env_value("AWS_WEB_IDENTITY_TOKEN_FILE") != NULL)
        snprintf(msg, msg_size, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE "
                 "is set but not supported");
    return SN_ERR_NOT_FOUND;
}

/* ---- The chain ---- */

typedef int (*source_fn)(struct sn_aws_provider *p,
                         struct sn_aws_credentials *c, char *msg,
                         size_t msg_size);

/*
 * Tries each source in order. A source returns 0 with keys, or
 * SN_ERR_NOT_FOUND with a note on what it lacked, and then the walk goes
 * on. Any other failure ends the walk with that source's message.
 */
static int resolve(struct sn_aws_provider *p, struct sn_aws_credentials *c,
                   char *err, size_t err_size)
{
    static const struct {
        const char *name;
        source_fn fn;
    } sources[] = {
        {"environment", from_environment},
        {"web-identity", from_web_identity},
        {"profile", from_shared_files},
        {"container", from_container},
        {"imds", from_imds},
    };
    char notes[2048] = "", msg[1024];
    size_t used = 0;
    int rc;

    for (size_t i = 0; i < sizeof(sources) / sizeof(*sources); i++) {
        memset(c, 0, sizeof(*c));
        msg[0] = '\0';
        rc = sources[i].fn(p, c, msg, sizeof(msg));
        if (rc == 0) {
            snprintf(c->source, sizeof(c->source), "%s", sources[i].name);
            return 0;
        }
        if (rc != SN_ERR_NOT_FOUND) {
            snprintf(err, err_size, "AWS credentials: %s", msg);
            return rc;
        }
        if (msg[0] != '\0' && used < sizeof(notes))
            used += (size_t)snprintf(notes + used, sizeof(notes) - used,
                                     "%s%s", used ? "; " : "", msg);
    }

    memset(c, 0, sizeof(*c));
    snprintf(err, err_size, "no AWS credentials found: %s", notes);
    return SN_ERR_NOT_FOUND;
}

int sn_aws_provider_new(struct sn_aws_provider **out)
{
    struct sn_aws_provider *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return -ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return -ENOMEM;
    }

    pthread_once(&curl_once, init_curl);
    *out = p;
    return 0;
}

void sn_aws_provider_free(struct sn_aws_provider *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->lock);
    wipe(&p->cached, sizeof(p->cached));
    free(p);
}

void sn_aws_provider_set_connect_hook(struct sn_aws_provider *p,
                                      sn_aws_connect_hook hook, void *opaque)
{
    pthread_mutex_lock(&p->lock);
    p->hook = hook;
    p->hook_opaque = opaque;
    pthread_mutex_unlock(&p->lock);
}

static int fresh_enough(const struct sn_aws_credentials *c, int64_t now)
{
    return c->expires == 0 || now < c->expires - SN_AWS_REFRESH_AHEAD;
}

int sn_aws_credentials_get(struct sn_aws_provider *p,
                           struct sn_aws_credentials *out, char *err,
                           size_t err_size)
{
    struct sn_aws_credentials *fresh = malloc(sizeof(*fresh));
    int64_t now = (int64_t)time(NULL);
    int rc;

    pthread_mutex_lock(&p->lock);
    if (p->cached_valid && fresh_enough(&p->cached, now)) {
        *out = p->cached;
        rc = 0;
        goto out;
    }
    if (fresh == NULL) {
        snprintf(err, err_size, "AWS credentials: out of memory");
        rc = -ENOMEM;
        goto fail;
    }

    rc = resolve(p, fresh, err, err_size);
    if (rc == 0 && fresh->expires != 0 && fresh->expires <= now) {
        snprintf(err, err_size, "AWS credentials from %s expired %lld s ago",
                 fresh->source, (long long)(now - fresh->expires));
        rc = SN_ERR_AGAIN;
    }
    if (rc == 0) {
        p->cached = *fresh;
        p->cached_valid = 1;
        p->refresh_failure_logged = 0;
        *out = *fresh;
        goto out;
    }

    /* A failed refresh keeps using keys that have not expired yet. It is
     * tried again on every call, but logged once per set of keys. */
    if (p->cached_valid && now < p->cached.expires) {
        if (!p->refresh_failure_logged)
            sn_log(SN_LOG_WARN, NULL, NULL, "refreshing AWS credentials "
                   "failed: %s; the keys from %s stay in use until they "
                   "expire in %lld s", err, p->cached.source,
                   (long long)(p->cached.expires - now));
        p->refresh_failure_logged = 1;
        *out = p->cached;
        rc = 0;
        goto out;
    }

fail:
    memset(out, 0, sizeof(*out));
out:
    pthread_mutex_unlock(&p->lock);
    if (fresh != NULL)
        wipe(fresh, sizeof(*fresh));
    free(fresh);
    return rc;
}

int sn_aws_region(char *out, size_t out_size, char *err, size_t err_size)
{
    const char *value = env_value("AWS_REGION"), *from = "AWS_REGION";
    const char *profile = profile_name();
    struct profile *pr = NULL;
    char path[4096];
    int rc = 0;

    if (value == NULL) {
        value = env_value("AWS_DEFAULT_REGION");
        from = "AWS_DEFAULT_REGION";
    }
    if (value == NULL &&
        shared_file_path("AWS_CONFIG_FILE", "config", path, sizeof(path)) == 0) {
        pr = malloc(sizeof(*pr));
        if (pr == NULL) {
            snprintf(err, err_size, "AWS region: out of memory");
            return -ENOMEM;
        }
        rc = read_profile(path, 1, profile, pr, err, err_size);
        if (rc < 0 && rc != SN_ERR_NOT_FOUND)
            goto out;
        value = rc == 0 && pr->region[0] ? pr->region : NULL;
        from = path;
    }

    if (value == NULL) {
        snprintf(err, err_size, "no AWS region: AWS_REGION and "
                 "AWS_DEFAULT_REGION not set, no region for profile %s in "
                 "the config file", profile);
        rc = SN_ERR_NOT_FOUND;
    } else if (strlen(value) >= out_size) {
        snprintf(err, err_size, "AWS region from %s is over the maximum of "
                 "%zu bytes", from, out_size - 1);
        rc = SN_ERR_LIMIT;
    } else {
        snprintf(out, out_size, "%s", value);
        rc = 0;
    }

out:
    free(pr);
    return rc;
}
