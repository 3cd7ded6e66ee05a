/*
 * Tests of the AWS credentials chain. Network sources are tested against
 * fake servers on 127.0.0.1 that run on a thread of this process. Every
 * case starts from a cleared environment with AWS_EC2_METADATA_DISABLED
 * set, and installs a connect hook that blocks and counts any connection
 * to an address other than 127.0.0.1, so no case can reach a real
 * metadata service.
 */
#include "aws/credentials.h"
#include "util/error.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Environment and files ---- */

static char tmp_dir[64];

static const char *const aws_variables[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_V1_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN", "http_proxy", "HTTP_PROXY", "https_proxy", "no_proxy"};

static const char *tmp_path(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof(path[0]), "%s/%s", tmp_dir, name);
    return p;
}

static void remove_tmp_dir(void)
{
    unlink(tmp_path("credentials"));
    unlink(tmp_path("config"));
    unlink(tmp_path("token"));
    rmdir(tmp_dir);
}

/*
 * Clears every variable the chain reads, points HOME and both shared files
 * into an empty temporary folder, and turns IMDS off.
 */
static void reset_environment(void)
{
    for (size_t i = 0; i < sizeof(aws_variables) / sizeof(*aws_variables);
         i++)
        unsetenv(aws_variables[i]);

    if (tmp_dir[0] == '\0') {
        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/sn-cred-XXXXXX");
        if (mkdtemp(tmp_dir) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(remove_tmp_dir);
    }
    unlink(tmp_path("credentials"));
    unlink(tmp_path("config"));
    unlink(tmp_path("token"));
    setenv("HOME", tmp_dir, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

/* ---- Connect hook ---- */

struct connects {
    atomic_int total;
    atomic_int blocked;       /* attempts to anything but 127.0.0.1 */
};

static int count_connect(void *opaque, const struct sockaddr *addr)
{
    struct connects *c = opaque;
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;

    atomic_fetch_add(&c->total, 1);
    if (addr->sa_family == AF_INET &&
        in->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
        return 0;
    atomic_fetch_add(&c->blocked, 1);
    return 1;
}

static struct sn_aws_provider *new_provider(struct connects *c)
{
    struct sn_aws_provider *p = NULL;

    CHECK_INT(sn_aws_provider_new(&p), 0);
    if (p == NULL)
        exit(1);
    sn_aws_provider_set_connect_hook(p, count_connect, c);
    return p;
}

/* ---- Fake HTTP server on 127.0.0.1 ---- */

#define MAX_RECORDED 16

struct request {
    char method[8];
    char path[256];
    char authorization[256];
    char imds_token[256];
    char imds_ttl[32];
};

struct fake_server;

/* Fills status and body for one request. */
typedef void (*handler_fn)(struct fake_server *s, const struct request *rq,
                           int *status, char *body, size_t body_size);

struct fake_server {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    handler_fn handler;
    int expires_in;           /* seconds from now for Expiration, 0: none */
    int token_status;         /* IMDS token reply status (200 by default) */
    atomic_int n_requests;
    struct request requests[MAX_RECORDED];
};

/* Copies the value of header name (case-insensitive) from head into out. */
static void header_value(const char *head, const char *name, char *out,
                         size_t out_size)
{
    size_t n = strlen(name);

    out[0] = '\0';
    for (const char *line = strstr(head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *v = line + 2, *end;

        if (strncasecmp(v, name, n) != 0 || v[n] != ':')
            continue;
        v += n + 1;
        while (*v == ' ')
            v++;
        end = strstr(v, "\r\n");
        snprintf(out, out_size, "%.*s", (int)(end ? end - v : (long)strlen(v)),
                 v);
        return;
    }
}

static void serve_one(struct fake_server *s, int fd)
{
    char head[8192], body[4096], reply[8192];
    struct request rq;
    size_t len = 0;
    int status = 500, n;

    while (len < sizeof(head) - 1) {
        ssize_t got = recv(fd, head + len, sizeof(head) - 1 - len, 0);

        if (got <= 0)
            return;
        len += (size_t)got;
        head[len] = '\0';
        if (strstr(head, "\r\n\r\n") != NULL)
            break;
    }

    memset(&rq, 0, sizeof(rq));
    sscanf(head, "%7s %255s", rq.method, rq.path);
    header_value(head, "Authorization", rq.authorization,
                 sizeof(rq.authorization));
    header_value(head, "X-aws-ec2-metadata-token", rq.imds_token,
                 sizeof(rq.imds_token));
    header_value(head, "X-aws-ec2-metadata-token-ttl-seconds", rq.imds_ttl,
                 sizeof(rq.imds_ttl));
    n = atomic_fetch_add(&s->n_requests, 1);
    if (n < MAX_RECORDED)
        s->requests[n] = rq;

    body[0] = '\0';
    s->handler(s, &rq, &status, body, sizeof(body));
    n = snprintf(reply, sizeof(reply),
                 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 status, strlen(body), body);
    if (send(fd, reply, (size_t)n, MSG_NOSIGNAL) < 0)
        perror("fake server send");
}

static void *serve(void *opaque)
{
    struct fake_server *s = opaque;

    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        int fd;

        if (poll(&pfd, 1, 50) <= 0)
            continue;
        fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(s, fd);
        close(fd);
    }
    return NULL;
}

static void server_start(struct fake_server *s, handler_fn handler)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);

    memset(s, 0, sizeof(*s));
    s->handler = handler;
    s->token_status = 200;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(s->fd, 16) < 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) < 0 ||
        pthread_create(&s->thread, NULL, serve, s) != 0) {
        perror("fake server");
        exit(1);
    }
    s->port = ntohs(a.sin_port);
}

static void server_stop(struct fake_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void format_expiration(int expires_in, char *out, size_t out_size)
{
    time_t t = time(NULL) + expires_in;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void credentials_json(struct fake_server *s, char *body,
                             size_t body_size, const char *extra)
{
    char expiration[64] = "";

    if (s->expires_in != 0)
        format_expiration(s->expires_in, expiration, sizeof(expiration));
    snprintf(body, body_size,
             "{%s\"AccessKeyId\":\"ASIAFAKE%d\","
             "\"SecretAccessKey\":\"fake/secret+%d\","
             "\"Token\":\"fake-session-token\"%s%s%s}",
             extra, atomic_load(&s->n_requests),
             atomic_load(&s->n_requests),
             expiration[0] ? ",\"Expiration\":\"" : "", expiration,
             expiration[0] ? "\"" : "");
}

static void container_handler(struct fake_server *s, const struct request *rq,
                              int *status, char *body, size_t body_size)
{
    if (strcmp(rq->method, "GET") != 0 || strcmp(rq->path, "/creds") != 0) {
        *status = 404;
        return;
    }
    *status = 200;
    credentials_json(s, body, body_size, "");
}

#define IMDS_ROLES "/latest/meta-data/iam/security-credentials/"

static void imds_handler(struct fake_server *s, const struct request *rq,
                         int *status, char *body, size_t body_size)
{
    int v2 = s->token_status == 200;

    *status = 404;
    if (strcmp(rq->path, "/latest/api/token") == 0) {
        *status = strcmp(rq->method, "PUT") == 0 && rq->imds_ttl[0]
                      ? s->token_status : 400;
        if (*status == 200)
            snprintf(body, body_size, "fake-imds-token");
        return;
    }

    if (v2 && strcmp(rq->imds_token, "fake-imds-token") != 0) {
        *status = 401;
        return;
    }
    if (strcmp(rq->path, IMDS_ROLES) == 0) {
        *status = 200;
        snprintf(body, body_size, "fake-role\n");
    } else if (strcmp(rq->path, IMDS_ROLES "fake-role") == 0) {
        *status = 200;
        credentials_json(s, body, body_size,
                         "\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",");
    }
}

static void set_full_uri(const struct fake_server *s, const char *host,
                         const char *path)
{
    char uri[128];

    snprintf(uri, sizeof(uri), "http://%s:%d%s", host, s->port, path);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- Environment source ---- */

static void env_keys_are_used_first(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env/secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    write_file(tmp_path("credentials"),
               "[default]\naws_access_key_id = AKIAFILE\n"
               "aws_secret_access_key = file-secret\n");
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIAENV");
    CHECK_STR(cred.secret_access_key, "env/secret");
    CHECK_STR(cred.session_token, "env-token");
    CHECK_INT(cred.expires, 0);
    CHECK_STR(cred.source, "environment");
    CHECK_INT(atomic_load(&c.total), 0);

    sn_aws_provider_free(p);
}

static void env_key_without_secret_falls_through(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    p = new_provider(&c);

    /* Nothing else is configured: the error names the missing secret. */
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY "
                      "is not") != NULL);
    CHECK_STR(cred.access_key_id, "");
    sn_aws_provider_free(p);

    /* With a credentials file, the chain goes on to it. */
    write_file(tmp_path("credentials"),
               "[default]\naws_access_key_id = AKIAFILE\n"
               "aws_secret_access_key = file-secret\n");
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIAFILE");
    CHECK_STR(cred.source, "profile");
    CHECK_INT(atomic_load(&c.total), 0);
    sn_aws_provider_free(p);
}

static void env_key_with_a_newline_is_rejected(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV\r\nX-Injected: 1", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env/secret", 1);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "AWS_ACCESS_KEY_ID") != NULL);
    sn_aws_provider_free(p);
}

/* ---- Shared files ---- */

static void credentials_file_profile_from_aws_profile(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    write_file(tmp_path("credentials"),
               "# leading comment\n"
               "[default]\n"
               "aws_access_key_id = AKIADEFAULT\n"
               "aws_secret_access_key = default-secret\n"
               "\n"
               "  [work]  \r\n"
               "; another comment\r\n"
               "aws_access_key_id=AKIAWORK\r\n"
               "   aws_secret_access_key = indented-is-a-continuation\r\n"
               "aws_secret_access_key\t=\twork/secret+1 \r\n"
               "aws_session_token = work-token\r\n"
               "[later]\n"
               "aws_access_key_id = AKIALATER\n");
    setenv("AWS_PROFILE", "work", 1);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIAWORK");
    CHECK_STR(cred.secret_access_key, "work/secret+1");
    CHECK_STR(cred.session_token, "work-token");
    CHECK_STR(cred.source, "profile");
    CHECK_INT(cred.expires, 0);
    sn_aws_provider_free(p);
}

static void config_file_profile_sections(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    write_file(tmp_path("config"),
               "[default]\n"
               "aws_access_key_id = AKIACONFIGDEFAULT\n"
               "aws_secret_access_key = config-default\n"
               "[work]\n"
               "aws_access_key_id = AKIANOTAPROFILE\n"
               "aws_secret_access_key = wrong\n"
               "[profile work]\n"
               "region = eu-west-3\n"
               "s3 =\n"
               "  max_concurrent_requests = 4\n"
               "  aws_access_key_id = AKIANESTED\n"
               "aws_access_key_id = AKIACONFIGWORK\n"
               "aws_secret_access_key = config-work\n");

    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIACONFIGDEFAULT");
    sn_aws_provider_free(p);

    setenv("AWS_PROFILE", "work", 1);
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIACONFIGWORK");
    CHECK_STR(cred.secret_access_key, "config-work");
    CHECK_STR(cred.session_token, "");
    sn_aws_provider_free(p);

    /* The credentials file wins over the config file. */
    write_file(tmp_path("credentials"),
               "[work]\naws_access_key_id = AKIACREDWORK\n"
               "aws_secret_access_key = cred-work\n");
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIACREDWORK");
    sn_aws_provider_free(p);
    CHECK_INT(atomic_load(&c.total), 0);
}

static void profile_problems_are_named_in_the_error(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    write_file(tmp_path("credentials"),
               "[default]\naws_access_key_id = AKIAHALF\n");
    write_file(tmp_path("config"),
               "[default]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = base\n");
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "has aws_access_key_id but no aws_secret_access_key")
          != NULL);
    CHECK(strstr(err, "uses role_arn, which is not supported") != NULL);
    CHECK(strstr(err, "IMDS: off") != NULL);
    sn_aws_provider_free(p);

    /* A profile that exists nowhere is named too. */
    setenv("AWS_PROFILE", "missing", 1);
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "no profile missing in") != NULL);
    sn_aws_provider_free(p);
}

static void default_files_live_under_home(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";
    char dir[256];

    reset_environment();
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    snprintf(dir, sizeof(dir), "%s/.aws", tmp_dir);
    mkdir(dir, 0700);
    write_file(tmp_path(".aws/credentials"),
               "[default]\naws_access_key_id = AKIAHOME\n"
               "aws_secret_access_key = home-secret\n");
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "AKIAHOME");
    sn_aws_provider_free(p);
    unlink(tmp_path(".aws/credentials"));
    rmdir(dir);
}

/* ---- Container source ---- */

static void container_sends_authorization_header(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";
    int64_t now = (int64_t)time(NULL);

    reset_environment();
    server_start(&s, container_handler);
    s.expires_in = 3600;
    set_full_uri(&s, "127.0.0.1", "/creds");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer env-token", 1);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "ASIAFAKE1");
    CHECK_STR(cred.secret_access_key, "fake/secret+1");
    CHECK_STR(cred.session_token, "fake-session-token");
    CHECK_STR(cred.source, "container");
    CHECK(cred.expires >= now + 3599);
    CHECK(cred.expires <= now + 3602);
    CHECK_INT(atomic_load(&s.n_requests), 1);
    CHECK_STR(s.requests[0].method, "GET");
    CHECK_STR(s.requests[0].authorization, "Bearer env-token");
    CHECK_INT(atomic_load(&c.blocked), 0);

    sn_aws_provider_free(p);
    server_stop(&s);
}

static void container_token_file_wins_over_token(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    server_start(&s, container_handler);
    set_full_uri(&s, "127.0.0.1", "/creds");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-env", 1);
    write_file(tmp_path("token"), "from-file\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tmp_path("token"), 1);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(s.requests[0].authorization, "from-file");
    CHECK_INT(cred.expires, 0);
    sn_aws_provider_free(p);

    /* A token that would inject a header is rejected before any request. */
    write_file(tmp_path("token"), "a\r\nX-Injected: 1\n");
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "line break") != NULL);
    CHECK_INT(atomic_load(&s.n_requests), 1);
    sn_aws_provider_free(p);
    server_stop(&s);
}

static void container_refreshes_near_expiry(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    server_start(&s, container_handler);
    set_full_uri(&s, "127.0.0.1", "/creds");

    /* Inside the refresh window: every call fetches again. */
    s.expires_in = 120;
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "ASIAFAKE1");
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "ASIAFAKE2");
    CHECK_INT(atomic_load(&s.n_requests), 2);

    /* The refresh fails: the keys have not expired, so they are kept. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/", 1);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "ASIAFAKE2");
    sn_aws_provider_free(p);

    /* Far from expiry: the cached keys are returned. */
    set_full_uri(&s, "127.0.0.1", "/creds");
    s.expires_in = 3600;
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.access_key_id, "ASIAFAKE3");
    CHECK_INT(atomic_load(&s.n_requests), 3);
    sn_aws_provider_free(p);

    /* Keys that have already expired are an error, not a success. */
    s.expires_in = -10;
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_AGAIN);
    CHECK(strstr(err, "expired") != NULL);
    sn_aws_provider_free(p);
    server_stop(&s);
}

struct get_thread {
    struct sn_aws_provider *p;
    int rc;
    char key_id[SN_AWS_KEY_ID_SIZE];
};

static void *get_in_thread(void *opaque)
{
    struct get_thread *t = opaque;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE];

    t->rc = sn_aws_credentials_get(t->p, &cred, err, sizeof(err));
    memcpy(t->key_id, cred.access_key_id, sizeof(t->key_id));
    return NULL;
}

static void concurrent_gets_fetch_once(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct get_thread t[8];
    pthread_t threads[8];

    reset_environment();
    server_start(&s, container_handler);
    set_full_uri(&s, "127.0.0.1", "/creds");
    s.expires_in = 3600;

    t[0].p = new_provider(&c);
    for (int i = 0; i < 8; i++) {
        t[i].p = t[0].p;
        CHECK_INT(pthread_create(&threads[i], NULL, get_in_thread, &t[i]),
                  0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(t[i].rc, 0);
        CHECK_STR(t[i].key_id, "ASIAFAKE1");
    }
    CHECK_INT(atomic_load(&s.n_requests), 1);

    sn_aws_provider_free(t[0].p);
    server_stop(&s);
}

static void container_expiration_offsets_and_fractions(void)
{
    static const struct {
        const char *expiration;
        int64_t expected;     /* 0: rejected */
    } cases[] = {
        {"2030-01-02T03:04:05Z", 1893553445},
        {"2030-01-02T03:04:05.123Z", 1893553445},
        {"2030-01-02T04:04:05+01:00", 1893553445},
        {"2030-01-01T22:04:05-05:00", 1893553445},
        {"2032-02-29T00:00:00Z", 1961625600},
        {"2031-02-29T00:00:00Z", 0},
        {"2030-01-02 03:04:05Z", 0},
        {"2030-01-02T03:04:05", 0},
        {"tomorrow", 0},
    };
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "", uri[160];
    int fd, port;
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);

    /* One-shot servers built by hand: each case needs its own body. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char reply[512], body[256];
        int conn, n;
        pthread_t th;
        struct get_thread t;

        reset_environment();
        fd = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        CHECK(listen(fd, 1) == 0);
        getsockname(fd, (struct sockaddr *)&a, &alen);
        port = ntohs(a.sin_port);
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/creds", port);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);

        p = new_provider(&c);
        t.p = p;
        pthread_create(&th, NULL, get_in_thread, &t);
        conn = accept(fd, NULL, NULL);
        n = (int)recv(conn, reply, sizeof(reply), 0);
        (void)n;
        snprintf(body, sizeof(body),
                 "{\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":\"s\","
                 "\"Expiration\":\"%s\"}", cases[i].expiration);
        n = snprintf(reply, sizeof(reply),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", strlen(body), body);
        send(conn, reply, (size_t)n, MSG_NOSIGNAL);
        close(conn);
        pthread_join(th, NULL);

        if (cases[i].expected == 0) {
            CHECK_INT(t.rc, SN_ERR_INPUT);
        } else {
            CHECK_INT(t.rc, 0);
            CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
            CHECK_INT(cred.expires, cases[i].expected);
        }
        if (t.rc != (cases[i].expected ? 0 : SN_ERR_INPUT))
            fprintf(stderr, "  case %s\n", cases[i].expiration);
        sn_aws_provider_free(p);
        close(fd);
    }
}

static void container_full_uri_rejects_remote_http(void)
{
    static const char *const rejected[] = {
        "http://192.0.2.1/creds", "http://169.254.169.254/creds",
        "http://example.com/creds", "http://127.0.0.1.example.com/creds",
        "ftp://127.0.0.1/creds", "not a url"};
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";
    double start = now_seconds();

    for (size_t i = 0; i < sizeof(rejected) / sizeof(*rejected); i++) {
        reset_environment();
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", rejected[i], 1);
        p = new_provider(&c);
        CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
                  SN_ERR_INPUT);
        CHECK(strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI") != NULL);
        sn_aws_provider_free(p);
    }
    CHECK_INT(atomic_load(&c.total), 0);
    CHECK(now_seconds() - start < 0.5);
}

static void container_full_uri_accepts_loopback_names(void)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost",
                                        "LOCALHOST"};
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    server_start(&s, container_handler);
    for (size_t i = 0; i < sizeof(hosts) / sizeof(*hosts); i++) {
        reset_environment();
        set_full_uri(&s, hosts[i], "/creds");
        p = new_provider(&c);
        CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
        CHECK_STR(cred.source, "container");
        sn_aws_provider_free(p);
    }
    CHECK_INT(atomic_load(&s.n_requests), 3);
    server_stop(&s);
}

static void container_http_error_stops_the_chain(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    server_start(&s, container_handler);
    set_full_uri(&s, "127.0.0.1", "/wrong-path");
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_INPUT);
    CHECK(strstr(err, "HTTP 404") != NULL);
    CHECK(strstr(err, "/wrong-path") != NULL);
    sn_aws_provider_free(p);
    server_stop(&s);
}

/* ---- IMDS source ---- */

static void set_imds_endpoint(const struct fake_server *s)
{
    char uri[64];

    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/", s->port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", uri, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
}

static void imds_v2_token_role_and_credentials(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    server_start(&s, imds_handler);
    s.expires_in = 6 * 3600;
    set_imds_endpoint(&s);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.source, "imds");
    CHECK_STR(cred.access_key_id, "ASIAFAKE3");
    CHECK_STR(cred.session_token, "fake-session-token");
    CHECK(cred.expires > (int64_t)time(NULL) + 5 * 3600);
    CHECK_INT(atomic_load(&s.n_requests), 3);
    CHECK_STR(s.requests[0].method, "PUT");
    CHECK_STR(s.requests[0].path, "/latest/api/token");
    CHECK_STR(s.requests[0].imds_ttl, "21600");
    CHECK_STR(s.requests[1].method, "GET");
    CHECK_STR(s.requests[1].path, IMDS_ROLES);
    CHECK_STR(s.requests[1].imds_token, "fake-imds-token");
    CHECK_STR(s.requests[2].path, IMDS_ROLES "fake-role");
    CHECK_STR(s.requests[2].imds_token, "fake-imds-token");
    CHECK_INT(atomic_load(&c.blocked), 0);

    sn_aws_provider_free(p);
    server_stop(&s);
}

static void imds_falls_back_to_v1_on_405(void)
{
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    reset_environment();
    server_start(&s, imds_handler);
    s.token_status = 405;
    set_imds_endpoint(&s);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)), 0);
    CHECK_STR(cred.source, "imds");
    CHECK_INT(atomic_load(&s.n_requests), 3);
    CHECK_STR(s.requests[1].imds_token, "");
    sn_aws_provider_free(p);

    /* With v1 off, the token failure ends the IMDS source. */
    setenv("AWS_EC2_METADATA_V1_DISABLED", "TRUE", 1);
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "HTTP 405") != NULL);
    CHECK_INT(atomic_load(&s.n_requests), 4);
    sn_aws_provider_free(p);
    server_stop(&s);
}

static void imds_unreachable_means_no_credentials(void)
{
    struct connects c = {0};
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";

    /* Port 1 on loopback refuses the connection at once. */
    reset_environment();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    p = new_provider(&c);

    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "IMDS: request to http://127.0.0.1:1/latest/api/token"
                      " failed") != NULL);
    CHECK_INT(atomic_load(&c.blocked), 0);
    sn_aws_provider_free(p);
}

static void imds_disabled_sends_nothing(void)
{
    static const char *const values[] = {"true", "TRUE", "True"};
    struct connects c = {0};
    struct fake_server s;
    struct sn_aws_provider *p;
    struct sn_aws_credentials cred;
    char err[SN_ERR_SIZE] = "";
    double start;

    /* No endpoint override: the default would be 169.254.169.254. */
    for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++) {
        reset_environment();
        setenv("AWS_EC2_METADATA_DISABLED", values[i], 1);
        p = new_provider(&c);
        start = now_seconds();
        CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
                  SN_ERR_NOT_FOUND);
        CHECK(now_seconds() - start < 0.2);
        CHECK(strstr(err, "IMDS: off (AWS_EC2_METADATA_DISABLED)") != NULL);
        sn_aws_provider_free(p);
    }
    CHECK_INT(atomic_load(&c.total), 0);

    /* With an endpoint set as well, the fake IMDS receives no request. */
    server_start(&s, imds_handler);
    set_imds_endpoint(&s);
    setenv("AWS_EC2_METADATA_DISABLED", "tRuE", 1);
    p = new_provider(&c);
    CHECK_INT(sn_aws_credentials_get(p, &cred, err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK_INT(atomic_load(&s.n_requests), 0);
    CHECK_INT(atomic_load(&c.total), 0);
    sn_aws_provider_free(p);
    server_stop(&s);
}

/* ---- Region ---- */

static void region_env_then_config(void)
{
    char region[SN_AWS_REGION_SIZE], err[SN_ERR_SIZE] = "";

    reset_environment();
    CHECK_INT(sn_aws_region(region, sizeof(region), err, sizeof(err)),
              SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "AWS_REGION") != NULL);

    write_file(tmp_path("config"),
               "[default]\nregion = us-east-2\n"
               "[profile work]\nregion = eu-west-3\n");
    CHECK_INT(sn_aws_region(region, sizeof(region), err, sizeof(err)), 0);
    CHECK_STR(region, "us-east-2");

    setenv("AWS_PROFILE", "work", 1);
    CHECK_INT(sn_aws_region(region, sizeof(region), err, sizeof(err)), 0);
    CHECK_STR(region, "eu-west-3");

    setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
    CHECK_INT(sn_aws_region(region, sizeof(region), err, sizeof(err)), 0);
    CHECK_STR(region, "ap-south-1");

    setenv("AWS_REGION", "sa-east-1", 1);
    CHECK_INT(sn_aws_region(region, sizeof(region), err, sizeof(err)), 0);
    CHECK_STR(region, "sa-east-1");

    CHECK_INT(sn_aws_region(region, 4, err, sizeof(err)), SN_ERR_LIMIT);
    CHECK(strstr(err, "AWS_REGION") != NULL);
}

SN_TEST_MAIN(
    TEST_CASE(env_keys_are_used_first),
    TEST_CASE(env_key_without_secret_falls_through),
    TEST_CASE(env_key_with_a_newline_is_rejected),
    TEST_CASE(credentials_file_profile_from_aws_profile),
    TEST_CASE(config_file_profile_sections),
    TEST_CASE(profile_problems_are_named_in_the_error),
    TEST_CASE(default_files_live_under_home),
    TEST_CASE(container_sends_authorization_header),
    TEST_CASE(container_token_file_wins_over_token),
    TEST_CASE(container_refreshes_near_expiry),
    TEST_CASE(concurrent_gets_fetch_once),
    TEST_CASE(container_expiration_offsets_and_fractions),
    TEST_CASE(container_full_uri_rejects_remote_http),
    TEST_CASE(container_full_uri_accepts_loopback_names),
    TEST_CASE(container_http_error_stops_the_chain),
    TEST_CASE(imds_v2_token_role_and_credentials),
    TEST_CASE(imds_falls_back_to_v1_on_405),
    TEST_CASE(imds_unreachable_means_no_credentials),
    TEST_CASE(imds_disabled_sends_nothing),
    TEST_CASE(region_env_then_config))
