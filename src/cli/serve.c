#include "cli/serve.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/settings.h"
#include "pipeline/pipeline.h"
#include "queue/queue_sqs.h"
#include "state/state_dynamodb.h"
#include "store/store_s3.h"
#include "server/server.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"

enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,           /* worker: a start-up check or the queue */
    EXIT_USAGE = 2,
    EXIT_INPUT = 3,           /* process s3://: the source was rejected */
    EXIT_FAILED = 4,
};

/* Uploads that stay unchanged this long in videos/stream/ are picked up;
 * a file still being copied in changes between two looks. */
#define DEFAULT_SCAN_S 2

struct options {
    const char *data;
    const char *host;
    int port;
    int workers;
    int http_threads;
    int64_t max_upload;
    int max_receives;
    int max_receives_set;     /* 1 when --max-receives was given */
    int scan_s;
    const char *web_root;
    const char *hls_js;
    int aws;                  /* worker --backend aws */
    const char *videos_bucket;
    const char *hls_bucket;
    const char *queue_url;
    const char *state_table;
    struct sn_pipeline_config pipeline;
};

/* One worker thread, with database handles of its own. */
struct worker {
    pthread_t thread;
    struct sn_backends b;
    const struct options *o;
    const volatile sig_atomic_t *stop;
    atomic_int *failed;       /* set when its loop ends on an error */
    int started;
};

/* The state of the process: stores, database handles, worker threads. */
struct app {
    struct options o;
    char db_path[PATH_MAX];
    struct sn_store *uploads;
    struct sn_store *hls;
    struct sn_backends main;  /* for the HTTP threads and the scanner */
    pthread_mutex_t main_lock;
    struct worker *workers;
    const volatile sig_atomic_t *stop;        /* set by SIGINT or SIGTERM */
    volatile sig_atomic_t stop_workers;       /* what the workers watch */
    atomic_int workers_failed;  /* a worker loop ended on an error */
};

/* ---- options ----------------------------------------------------------- */

static const char serve_usage[] =
    "usage: sinatra serve [options]\n"
    "\n"
    "Serves uploads, HLS output, the status API and the web page, and runs\n"
    "worker threads, over a data folder (videos/, hls/, sinatra.db).\n"
    "\n"
    "  --data DIR            data folder (env SINATRA_DATA; default\n"
    "                        ./sinatra-data)\n"
    "  --host ADDRESS        address to listen on (env SINATRA_HOST;\n"
    "                        default 127.0.0.1)\n"
    "  --port N              port, 0 for any free one (env SINATRA_PORT;\n"
    "                        default 8080)\n"
    "  --workers N           worker threads, 0 when `sinatra worker`\n"
    "                        processes do the work (default: one per core)\n"
    "  --http-threads N      HTTP threads (default 4)\n"
    "  --max-upload-size N   largest upload in bytes; K, M, G suffixes\n"
    "                        (default 8G)\n"
    "  --max-receives N      deliveries of a job before it is dead-lettered\n"
    "                        and its video failed (default 5)\n"
    "  --visibility-timeout SECONDS\n"
    "                        how long a job stays hidden without a\n"
    "                        heartbeat (default 60)\n"
    "  --scan-interval SECONDS\n"
    "                        look for files put in videos/stream/ by other\n"
    "                        means this often (default 2)\n"
    "  --preset NAME         x264 preset, ultrafast to placebo (default\n"
    "                        veryfast)\n"
    "  --segment-format fmp4|ts\n"
    "                        segment container: fMP4/CMAF (default) or\n"
    "                        MPEG-TS\n"
    "  --conceal-errors      publish video with damaged frames, hidden as\n"
    "                        players hide them, instead of failing it\n"
    "  --log-format text|json\n"
    "                        log lines as text (default) or one JSON\n"
    "                        object per line\n"
    "  --web-root DIR        folder of the web page (index.html, app.js,\n"
    "                        style.css; default: web/ of the source tree)\n"
    "  --hls-js FILE         hls.min.js to serve as /vendor/hls.min.js\n"
    "                        (default: node_modules/hls.js/dist/ of the\n"
    "                        source tree)\n"
    "  -h, --help\n";

static const char worker_usage[] =
    "usage: sinatra worker [options]\n"
    "\n"
    "Runs jobs from the data folder's queue until stopped.\n"
    "\n"
    "  --data DIR            data folder (env SINATRA_DATA; default\n"
    "                        ./sinatra-data)\n"
    "  --workers N           worker threads (default 1)\n"
    "  --max-receives N      deliveries of a job before it is dead-lettered\n"
    "                        and its video failed (default 5; with\n"
    "                        --backend aws, the maxReceiveCount of the\n"
    "                        queue's redrive policy when it has one)\n"
    "  --visibility-timeout SECONDS\n"
    "                        how long a job stays hidden without a\n"
    "                        heartbeat (default 60)\n"
    "  --log-format text|json\n"
    "                        log lines as text (default) or one JSON\n"
    "                        object per line\n"
    "  --backend local|aws   the data folder (default), or S3, SQS and\n"
    "                        DynamoDB; AWS credentials, region and\n"
    "                        AWS_ENDPOINT_URL come from the environment\n"
    "  --videos-bucket NAME  uploads bucket (env SINATRA_VIDEOS_BUCKET;\n"
    "                        default sinatra-videos)\n"
    "  --hls-bucket NAME     output bucket (env SINATRA_HLS_BUCKET;\n"
    "                        default sinatra-hls)\n"
    "  --queue-url URL       job queue (env SINATRA_JOB_QUEUE_URL;\n"
    "                        required with --backend aws)\n"
    "  --state-table NAME    state table (env SINATRA_STATE_TABLE;\n"
    "                        default sinatra-video-state)\n"
    "  -h, --help\n"
    "\n"
    "With --backend aws, the worker first checks the queue, the table and\n"
    "both buckets, one request each, and exits with 1 on a line naming\n"
    "what failed. It also exits with 1 when SQS rejects the credentials or\n"
    "the queue is gone while it runs; other errors are retried.\n"
    "exit codes: 0 stopped by SIGINT or SIGTERM, 1 an AWS check or the\n"
    "queue failed, 2 usage error, 4 the data folder could not be opened\n";

enum {
    OPT_DATA = 256, OPT_HOST, OPT_PORT, OPT_WORKERS, OPT_HTTP_THREADS,
    OPT_MAX_UPLOAD, OPT_MAX_RECEIVES, OPT_VISIBILITY, OPT_SCAN, OPT_PRESET,
    OPT_FORMAT, OPT_LOG_FORMAT, OPT_WEB_ROOT, OPT_HLS_JS, OPT_CONCEAL,
    OPT_BACKEND, OPT_VIDEOS_BUCKET, OPT_HLS_BUCKET, OPT_QUEUE_URL,
    OPT_STATE_TABLE,
};

static const struct option long_options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
    {"max-upload-size", required_argument, NULL, OPT_MAX_UPLOAD},
    {"max-receives", required_argument, NULL, OPT_MAX_RECEIVES},
    {"visibility-timeout", required_argument, NULL, OPT_VISIBILITY},
    {"scan-interval", required_argument, NULL, OPT_SCAN},
    {"preset", required_argument, NULL, OPT_PRESET},
    {"segment-format", required_argument, NULL, OPT_FORMAT},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"web-root", required_argument, NULL, OPT_WEB_ROOT},
    {"hls-js", required_argument, NULL, OPT_HLS_JS},
    {"conceal-errors", no_argument, NULL, OPT_CONCEAL},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"videos-bucket", required_argument, NULL, OPT_VIDEOS_BUCKET},
    {"hls-bucket", required_argument, NULL, OPT_HLS_BUCKET},
    {"queue-url", required_argument, NULL, OPT_QUEUE_URL},
    {"state-table", required_argument, NULL, OPT_STATE_TABLE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_int(const char *name, const char *text, long min, long max,
                     int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "sinatra: --%s: expected a whole number from %ld "
                        "to %ld, got '%s'\n", name, min, max, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_bytes(const char *text, int64_t *out)
{
    char *end;
    double v;
    double scale = 1;

    errno = 0;
    v = strtod(text, &end);
    if (end != text && end[0] != '\0' && end[1] == '\0') {
        switch (end[0]) {
        case 'K': case 'k': scale = 1024.0; end++; break;
        case 'M': case 'm': scale = 1024.0 * 1024; end++; break;
        case 'G': case 'g': scale = 1024.0 * 1024 * 1024; end++; break;
        }
    }
    if (errno != 0 || end == text || *end != '\0' || v < 1 ||
        v * scale > 1e15) {
        fprintf(stderr, "sinatra: --max-upload-size: expected a size such "
                        "as 500M or 8G, got '%s'\n", text);
        return -1;
    }
    *out = (int64_t)(v * scale);
    return 0;
}

static void options_init(struct options *o, int serve)
{
    const char *env;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    memset(o, 0, sizeof(*o));
    o->data = (env = getenv("SINATRA_DATA")) && *env ? env : "sinatra-data";
    o->host = (env = getenv("SINATRA_HOST")) && *env ? env : "127.0.0.1";
    o->port = 8080;
    o->workers = 1;
    if (serve && cores > 0)
        o->workers = (int)cores;
    o->http_threads = 4;
    o->max_upload = INT64_C(8) << 30;
    o->max_receives = 5;
    o->scan_s = DEFAULT_SCAN_S;
    o->videos_bucket = (env = getenv("SINATRA_VIDEOS_BUCKET")) && *env
                           ? env : "sinatra-videos";
    o->hls_bucket = (env = getenv("SINATRA_HLS_BUCKET")) && *env
                        ? env : "sinatra-hls";
    o->queue_url = getenv("SINATRA_JOB_QUEUE_URL");
    o->state_table = (env = getenv("SINATRA_STATE_TABLE")) && *env
                         ? env : "sinatra-video-state";
    o->web_root = SN_DEFAULT_WEB_ROOT;
    o->hls_js = SN_DEFAULT_HLS_JS;
    sn_pipeline_config_init(&o->pipeline);
}

/* Returns 0, 1 after --help, or -1 after a usage error. */
static int parse_options(struct options *o, int argc, char **argv, int serve)
{
    const char *usage = serve ? serve_usage : worker_usage;
    const char *env = getenv("SINATRA_PORT");
    int c;

    options_init(o, serve);
    if (serve && env != NULL && *env != '\0' &&
        parse_int("port (SINATRA_PORT)", env, 0, 65535, &o->port) < 0)
        return -1;

    optind = 0;
    /* argv[0] is the first argument; getopt skips argv[0]. */
    while ((c = getopt_long(argc + 1, argv - 1, "h", long_options, NULL)) !=
           -1) {
        int rc = 0;

        if (!serve && (c == OPT_HOST || c == OPT_PORT ||
                       c == OPT_HTTP_THREADS || c == OPT_MAX_UPLOAD ||
                       c == OPT_SCAN || c == OPT_WEB_ROOT ||
                       c == OPT_HLS_JS || c == OPT_PRESET ||
                       c == OPT_FORMAT || c == OPT_CONCEAL)) {
            fprintf(stderr, "sinatra worker: --%s is an option of "
                            "`sinatra serve`\n",
                    long_options[c - OPT_DATA].name);
            return -1;
        }
        if (serve && (c == OPT_BACKEND || c == OPT_VIDEOS_BUCKET ||
                      c == OPT_HLS_BUCKET || c == OPT_QUEUE_URL ||
                      c == OPT_STATE_TABLE)) {
            fprintf(stderr, "sinatra serve: --%s is an option of `sinatra "
                            "worker`\n",
                    long_options[c - OPT_DATA].name);
            return -1;
        }
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 1;
        case OPT_DATA: o->data = optarg; break;
        case OPT_HOST: o->host = optarg; break;
        case OPT_PORT: rc = parse_int("port", optarg, 0, 65535, &o->port);
            break;
        case OPT_WORKERS:
            rc = parse_int("workers", optarg, serve ? 0 : 1, 256,
                           &o->workers);
            break;
        case OPT_HTTP_THREADS:
            rc = parse_int("http-threads", optarg, 1, 256, &o->http_threads);
            break;
        case OPT_MAX_UPLOAD: rc = parse_bytes(optarg, &o->max_upload); break;
        case OPT_MAX_RECEIVES:
            rc = parse_int("max-receives", optarg, 1, 1000, &o->max_receives);
            o->max_receives_set = 1;
            break;
        case OPT_VISIBILITY:
            rc = parse_int("visibility-timeout", optarg, 5, 43200,
                           &o->pipeline.visibility_s);
            o->pipeline.heartbeat_s = o->pipeline.visibility_s / 3;
            break;
        case OPT_SCAN: rc = parse_int("scan-interval", optarg, 1, 3600,
                                      &o->scan_s);
            break;
        case OPT_PRESET:
            if (!sn_x264_preset_valid(optarg)) {
                fprintf(stderr, "sinatra: --preset: expected an x264 preset "
                                "(ultrafast, superfast, veryfast, faster, "
                                "fast, medium, slow, slower, veryslow, "
                                "placebo), got '%s'\n", optarg);
                rc = -1;
                break;
            }
            snprintf(o->pipeline.encode.preset,
                     sizeof(o->pipeline.encode.preset), "%s", optarg);
            break;
        case OPT_CONCEAL:
            o->pipeline.encode.conceal_errors = 1;
            break;
        case OPT_BACKEND:
            if (strcmp(optarg, "aws") == 0) {
                o->aws = 1;
            } else if (strcmp(optarg, "local") != 0) {
                fprintf(stderr, "sinatra: --backend: expected local or aws, "
                                "got '%s'\n", optarg);
                rc = -1;
            }
            break;
        case OPT_VIDEOS_BUCKET: o->videos_bucket = optarg; break;
        case OPT_HLS_BUCKET: o->hls_bucket = optarg; break;
        case OPT_QUEUE_URL: o->queue_url = optarg; break;
        case OPT_STATE_TABLE: o->state_table = optarg; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "fmp4") == 0) {
                o->pipeline.encode.format = SN_SEGMENT_FMP4;
            } else if (strcmp(optarg, "ts") == 0) {
                o->pipeline.encode.format = SN_SEGMENT_TS;
            } else {
                fprintf(stderr, "sinatra: --segment-format: expected fmp4 "
                                "or ts, got '%s'\n", optarg);
                rc = -1;
            }
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "json") == 0) {
                sn_log_set_json(1);
            } else if (strcmp(optarg, "text") != 0) {
                fprintf(stderr, "sinatra: --log-format: expected text or "
                                "json, got '%s'\n", optarg);
                rc = -1;
            }
            break;
        case OPT_WEB_ROOT: o->web_root = optarg; break;
        case OPT_HLS_JS: o->hls_js = optarg; break;
        default:
            rc = -1;
            break;
        }
        if (rc < 0) {
            fputs(usage, stderr);
            return -1;
        }
    }
    if (o->aws && (o->queue_url == NULL || o->queue_url[0] == '\0')) {
        fprintf(stderr, "sinatra worker: --backend aws needs the job queue: "
                        "--queue-url or SINATRA_JOB_QUEUE_URL\n");
        return -1;
    }
    if (optind < argc + 1) {
        fprintf(stderr, "sinatra: unexpected argument '%s'\n",
                argv[optind - 1]);
        fputs(usage, stderr);
        return -1;
    }
    return 0;
}

/* ---- backends ---------------------------------------------------------- */

/* The queue gave up on a job: its video fails with the job's last error. */
static void on_dead_letter(void *opaque, const char *body, int receive_count,
                           const char *last_error)
{
    struct sn_backends *b = opaque;
    char reason[SN_ERR_SIZE], err[SN_ERR_SIZE];

    if (last_error != NULL && last_error[0] != '\0')
        snprintf(reason, sizeof(reason), "%s", last_error);
    else
        snprintf(reason, sizeof(reason),
                 "a job was given up after %d deliveries without finishing",
                 receive_count);
    if (sn_worker_fail(b, body, reason, err, sizeof(err)) < 0)
        sn_log(SN_LOG_ERROR, NULL, NULL, "%s", err);
}

static int open_databases(struct app *a, struct sn_backends *b, char *err,
                          size_t err_size)
{
    int rc;

    b->uploads = a->uploads;
    b->hls = a->hls;
    if (a->o.aws) {
        rc = sn_queue_sqs_open(a->o.queue_url, a->o.max_receives, &b->jobs,
                               err, err_size);
        if (rc == 0)
            rc = sn_state_dynamodb_open(a->o.state_table, &b->state, err,
                                        err_size);
    } else {
        rc = sn_queue_sqlite_open(a->db_path, a->o.max_receives, &b->jobs,
                                  err, err_size);
        if (rc == 0)
            rc = sn_state_sqlite_open(a->db_path, &b->state, err, err_size);
    }
    if (rc < 0) {
        sn_queue_close(b->jobs);
        b->jobs = NULL;
        return rc;
    }
    b->jobs->dead_letter = on_dead_letter;
    b->jobs->dead_letter_opaque = b;
    return 0;
}

static void close_databases(struct sn_backends *b)
{
    sn_queue_close(b->jobs);
    sn_state_close(b->state);
    b->jobs = NULL;
    b->state = NULL;
}

static int open_app(struct app *a, char *err, size_t err_size)
{
    char path[PATH_MAX];
    int rc;

    if (a->o.aws) {
        pthread_mutex_init(&a->main_lock, NULL);
        rc = sn_store_s3_open(a->o.videos_bucket, &a->uploads, err,
                              err_size);
        if (rc == 0)
            rc = sn_store_s3_open(a->o.hls_bucket, &a->hls, err, err_size);
        if (rc == 0)
            rc = open_databases(a, &a->main, err, err_size);
        return rc;
    }

    rc = sn_mkdirs(a->o.data);
    if (rc < 0) {
        snprintf(err, err_size, "%s: cannot create: %s", a->o.data,
                 strerror(-rc));
        return SN_ERR_BACKEND;
    }
    snprintf(a->db_path, sizeof(a->db_path), "%s/sinatra.db", a->o.data);
    snprintf(path, sizeof(path), "%s/videos", a->o.data);
    rc = sn_store_fs_open(path, &a->uploads, err, err_size);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/hls", a->o.data);
        rc = sn_store_fs_open(path, &a->hls, err, err_size);
    }
    if (rc == 0)
        rc = open_databases(a, &a->main, err, err_size);
    pthread_mutex_init(&a->main_lock, NULL);
    return rc;
}

static void close_app(struct app *a)
{
    close_databases(&a->main);
    sn_store_close(a->uploads);
    sn_store_close(a->hls);
    pthread_mutex_destroy(&a->main_lock);
}

/* ---- start-up checks on AWS -------------------------------------------- */

/*
 * Makes the queue's redrive policy decide the deliveries: SQS moves a
 * message to the dead-letter queue after maxReceiveCount deliveries, and
 * the worker must fail the video on the last of them, or it stays
 * processing forever. Without a policy SQS never moves a message, so the
 * flag or its default applies. Returns 0, -EINVAL when --max-receives
 * disagrees with the policy, or the request's code, with one line in err.
 */
static int adopt_redrive_policy(struct app *a, char *err, size_t err_size)
{
    int policy_max, rc;

    rc = sn_queue_sqs_redrive_max(a->main.jobs, &policy_max, err, err_size);
    if (rc < 0 || policy_max == 0)
        return rc;
    if (a->o.max_receives_set && a->o.max_receives != policy_max) {
        snprintf(err, err_size, "--max-receives %d differs from the "
                 "maxReceiveCount %d of the redrive policy of queue %s; "
                 "leave --max-receives out or make them equal",
                 a->o.max_receives, policy_max, a->o.queue_url);
        return -EINVAL;
    }
    a->o.max_receives = policy_max;
    a->main.jobs->max_receives = policy_max;
    return 0;
}

/*
 * Sends one request to each AWS resource the command uses, so that a
 * wrong name, a missing resource or rejected credentials stop it at once
 * with one line instead of failing every job. The requests are
 * GetQueueAttributes on the queue, GetItem on the table, and
 * ListObjectsV2 on the HLS bucket and, with check_uploads, the uploads
 * bucket; the worker role in infra/sinatra.yaml allows each of them.
 * Returns 0, or the failing request's code with one line in err.
 */
static int check_aws(struct app *a, int check_uploads, char *err,
                     size_t err_size)
{
    int rc;

    rc = adopt_redrive_policy(a, err, err_size);
    if (rc == 0)
        rc = sn_state_dynamodb_check(a->main.state, err, err_size);
    if (rc == 0)
        rc = sn_store_s3_check(a->hls, err, err_size);
    if (rc == 0 && check_uploads)
        rc = sn_store_s3_check(a->uploads, err, err_size);
    return rc;
}

/* ---- workers ----------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    if (sn_worker_loop(&w->b, &w->o->pipeline, w->stop) < 0)
        atomic_store(w->failed, 1);
    return NULL;
}

static int start_workers(struct app *a, char *err, size_t err_size)
{
    a->workers = calloc(a->o.workers > 0 ? (size_t)a->o.workers : 1,
                        sizeof(*a->workers));
    if (a->workers == NULL) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < a->o.workers; i++) {
        struct worker *w = &a->workers[i];
        int rc;

        w->o = &a->o;
        w->stop = &a->stop_workers;
        w->failed = &a->workers_failed;
        rc = open_databases(a, &w->b, err, err_size);
        if (rc < 0)
            return rc;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            close_databases(&w->b);
            snprintf(err, err_size, "cannot start worker thread %d", i);
            return SN_ERR_BACKEND;
        }
        w->started = 1;
    }
    return 0;
}

static void join_workers(struct app *a)
{
    for (int i = 0; a->workers != NULL && i < a->o.workers; i++) {
        struct worker *w = &a->workers[i];

        if (w->started)
            pthread_join(w->thread, NULL);
        close_databases(&w->b);
    }
    free(a->workers);
    a->workers = NULL;
}

/* ---- triggering the orchestrator --------------------------------------- */

static int orchestrate(struct app *a, const char *key, char *video_id,
                       char *err, size_t err_size)
{
    int rc;

    pthread_mutex_lock(&a->main_lock);
    rc = sn_orchestrate(&a->main, &a->o.pipeline, key, video_id, err,
                        err_size);
    pthread_mutex_unlock(&a->main_lock);
    return rc;
}

/*
 * Orchestrates an upload that came over HTTP. An upload that is not usable
 * media is removed again: the client gets the reason in the response and
 * the failed video keeps it in state, so nothing is left in the store.
 */
static int on_upload(void *opaque, const char *key, char *video_id,
                     char *err, size_t err_size)
{
    struct app *a = opaque;
    char remove_err[SN_ERR_SIZE];
    int rc = orchestrate(a, key, video_id, err, err_size);

    if ((rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT || rc == SN_ERR_MEDIA) &&
        a->uploads->ops->remove(a->uploads, key, remove_err,
                                sizeof(remove_err)) < 0)
        sn_log(SN_LOG_WARN, video_id, NULL, "%s", remove_err);
    return rc;
}

/* A file seen in videos/stream/, with its tag at that look. */
struct seen {
    char key[SN_STORE_MAX_KEY + 1];
    char tag[80];
};

struct scan {
    struct app *a;
    struct seen *previous, *current;
    size_t n_previous, n_current;
    size_t cap_previous, cap_current;
};

static const char *previous_tag(const struct scan *s, const char *key)
{
    for (size_t i = 0; i < s->n_previous; i++) {
        if (strcmp(s->previous[i].key, key) == 0)
            return s->previous[i].tag;
    }
    return NULL;
}

/*
 * Orchestrates a file found in videos/stream/ in two cases. Its version
 * is not in state yet and has not changed since the last look. Or state
 * has it, but it was never planned (a crash between upload and plan) and
 * its record has not changed for 30 s.
 */
static int consider(void *opaque, const char *key, int64_t size)
{
    struct scan *s = opaque;
    struct app *a = s->a;
    const char *name = key + strlen(SN_UPLOAD_PREFIX);
    struct sn_object_info info;
    struct sn_video v = {0};
    char id[SN_VIDEO_ID_LEN + 1], err[SN_ERR_SIZE];
    const char *before;
    int rc, known;

    (void)size;
    if (strchr(name, '/') != NULL || !sn_upload_name_valid(name))
        return 0;
    if (a->uploads->ops->head(a->uploads, key, &info, err, sizeof(err)) < 0)
        return 0;
    if (s->n_current == s->cap_current) {
        size_t cap = s->cap_current ? s->cap_current * 2 : 64;
        struct seen *p = realloc(s->current, cap * sizeof(*p));

        if (p == NULL)
            return 0;
        s->current = p;
        s->cap_current = cap;
    }
    snprintf(s->current[s->n_current].key, sizeof(s->current->key), "%s",
             key);
    snprintf(s->current[s->n_current].tag, sizeof(s->current->tag), "%s",
             info.tag);
    s->n_current++;

    if (sn_video_id(key, id) < 0)
        return 0;
    pthread_mutex_lock(&a->main_lock);
    rc = a->main.state->ops->get(a->main.state, id, &v, err, sizeof(err));
    pthread_mutex_unlock(&a->main_lock);
    known = rc == 0 && strcmp(v.upload_tag, info.tag) == 0;
    if (known && (v.status != SN_VIDEO_QUEUED ||
                  (int64_t)time(NULL) * 1000 - v.updated_ms < 30000)) {
        sn_video_release(&v);
        return 0;
    }
    sn_video_release(&v);
    before = previous_tag(s, key);
    if (!known && (before == NULL || strcmp(before, info.tag) != 0))
        return 0;             /* new or changed: look again next time */

    rc = orchestrate(a, key, id, err, sizeof(err));
    if (rc < 0)
        sn_log(SN_LOG_WARN, id, NULL, "%s", err);
    return 0;
}

static void scan_uploads(struct scan *s)
{
    struct app *a = s->a;
    char err[SN_ERR_SIZE];
    struct seen *t;
    size_t cap;

    s->n_current = 0;
    if (a->uploads->ops->list(a->uploads, SN_UPLOAD_PREFIX, consider, s, err,
                              sizeof(err)) < 0)
        sn_log(SN_LOG_WARN, NULL, NULL, "%s", err);
    t = s->previous;
    s->previous = s->current;
    s->current = t;
    cap = s->cap_previous;
    s->cap_previous = s->cap_current;
    s->cap_current = cap;
    s->n_previous = s->n_current;
}

/* ---- the commands ------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int sn_cmd_serve(int argc, char **argv, const volatile sig_atomic_t *stop)
{
    struct app a = {.stop = stop};
    struct sn_server_config sc;
    struct sn_server *server = NULL;
    struct scan scan = {.a = &a};
    char hls_root[PATH_MAX], err[SN_ERR_SIZE];
    int rc;

    rc = parse_options(&a.o, argc, argv, 1);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;

    rc = open_app(&a, err, sizeof(err));
    if (rc == 0)
        rc = start_workers(&a, err, sizeof(err));
    if (rc == 0) {
        sn_server_config_init(&sc);
        snprintf(hls_root, sizeof(hls_root), "%s/hls", a.o.data);
        sc.host = a.o.host;
        sc.port = a.o.port;
        sc.threads = a.o.http_threads;
        sc.hls_root = hls_root;
        sc.web_root = a.o.web_root;
        sc.hls_js = a.o.hls_js;
        sc.uploads = a.uploads;
        sc.state = a.main.state;
        sc.state_lock = &a.main_lock;
        sc.max_upload_bytes = a.o.max_upload;
        sc.uploaded = on_upload;
        sc.opaque = &a;
        rc = sn_server_start(&sc, &server, err, sizeof(err));
    }
    if (rc < 0) {
        fprintf(stderr, "sinatra serve: %s\n", err);
        a.stop_workers = 1;
        join_workers(&a);
        close_app(&a);
        return EXIT_FAILED;
    }
    if (access(a.o.hls_js, R_OK) != 0)
        sn_log(SN_LOG_WARN, NULL, NULL,
               "%s: not readable, so the web page has no player; run "
               "scripts/npm-install.sh or pass --hls-js", a.o.hls_js);
    /* An IPv6 address needs brackets in a URL. */
    sn_log(SN_LOG_INFO, NULL, NULL,
           "serving http://%s%s%s:%d/ from %s with %d worker threads",
           strchr(a.o.host, ':') ? "[" : "", a.o.host,
           strchr(a.o.host, ':') ? "]" : "", sn_server_port(server),
           a.o.data, a.o.workers);

    while (!*stop && !atomic_load(&a.workers_failed)) {
        scan_uploads(&scan);
        for (int i = 0; i < a.o.scan_s * 10 && !*stop; i++)
            sleep_ms(100);
    }

    rc = atomic_load(&a.workers_failed) ? EXIT_FAILED : EXIT_OK;
    sn_log(SN_LOG_INFO, NULL, NULL, "stopping");
    sn_server_stop(server);
    a.stop_workers = 1;
    join_workers(&a);
    close_app(&a);
    free(scan.previous);
    free(scan.current);
    return rc;
}

/* Exit code of a worker on AWS that could not open its backends or pass
 * the checks: bad names or URLs in the settings are usage errors. */
static int startup_exit_code(int rc)
{
    if (rc == SN_ERR_INPUT || rc == -EINVAL)
        return EXIT_USAGE;
    return EXIT_ERROR;
}

int sn_cmd_worker(int argc, char **argv, const volatile sig_atomic_t *stop)
{
    struct app a = {.stop = stop};
    char err[SN_ERR_SIZE];
    int rc, code = EXIT_OK;

    rc = parse_options(&a.o, argc, argv, 0);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    rc = open_app(&a, err, sizeof(err));
    if (rc == 0 && a.o.aws)
        rc = check_aws(&a, 1, err, sizeof(err));
    if (rc == 0)
        rc = start_workers(&a, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sinatra worker: %s\n", err);
        a.stop_workers = 1;
        join_workers(&a);
        close_app(&a);
        return a.o.aws ? startup_exit_code(rc) : EXIT_FAILED;
    }
    if (a.o.aws)
        sn_log(SN_LOG_INFO, NULL, NULL, "working on %s with %d threads, "
               "%d deliveries per job", a.o.queue_url, a.o.workers,
               a.o.max_receives);
    else
        sn_log(SN_LOG_INFO, NULL, NULL, "working on %s with %d threads",
               a.o.data, a.o.workers);

    while (!*stop && !atomic_load(&a.workers_failed))
        sleep_ms(100);
    if (atomic_load(&a.workers_failed)) {
        sn_log(SN_LOG_ERROR, NULL, NULL, "stopping: a worker thread could "
               "not receive from the queue");
        code = EXIT_ERROR;
    } else {
        sn_log(SN_LOG_INFO, NULL, NULL,
               "stopping; running jobs go back to the queue");
    }
    a.stop_workers = 1;
    join_workers(&a);
    close_app(&a);
    return code;
}

/* ---- sinatra process s3:// --------------------------------------------- */

static const char process_s3_usage_head[] =
    "usage: sinatra process s3://BUCKET/stream/NAME [options]\n"
    "\n"
    "Plans an upload in S3 for workers on AWS, as the orchestrator function\n"
    "does for an S3 event: probes the object through ranged reads, records\n"
    "the plan in the DynamoDB state table and sends the jobs to the SQS\n"
    "queue, where `sinatra worker --backend aws` runs them. BUCKET is the\n"
    "uploads bucket. Options may come before or after the URL. Run again\n"
    "on a video that is still processing, it sends the jobs not done yet\n"
    "once more; for a video that is ready or failed it sends nothing.\n"
    "\n"
    "  --queue-url URL       job queue (env SINATRA_JOB_QUEUE_URL; required)\n"
    "  --state-table NAME    state table (env SINATRA_STATE_TABLE;\n"
    "                        default sinatra-video-state)\n"
    "  --hls-bucket NAME     the workers' output bucket, checked before\n"
    "                        planning (env SINATRA_HLS_BUCKET; default\n"
    "                        sinatra-hls)\n"
    "  --log-format text|json\n"
    "                        log lines as text (default) or one JSON\n"
    "                        object per line\n"
    "\n"
    "Settings of the plan, which every worker follows:\n";

static const char process_s3_usage_tail[] =
    "  -h, --help\n"
    "\n"
    "exit codes: 0 planned, sent again or nothing to do, 2 usage error,\n"
    "3 source missing or rejected, 4 an AWS request or the planning failed\n";

/* Settings of `sinatra process` that shape a plan. The others (output
 * folder, workers, worker mode, overwrite) concern a local run only. */
static const char *const plan_settings[] = {
    "rungs", "enable-2160p", "segment-format", "segment-duration",
    "keyframe-interval", "first-segment-duration", "chunk-segments",
    "first-chunk-segments", "one-job-per-chunk", "preset", "crf",
    "max-width", "max-height", "max-duration", "max-frames",
    "max-file-size", "conceal-errors", "quiet", "json",
};

/* Options of the s3:// form that are not settings of `sinatra process`;
 * each takes a value. */
static const char *const aws_settings[] = {
    "queue-url", "state-table", "hls-bucket", "log-format",
};

#define N_OF(list) (sizeof(list) / sizeof((list)[0]))

struct process_s3 {
    struct app a;
    struct sn_cli cli;
    const char *url;
    char bucket[64];
    const char *key;
};

static int name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, list[i]) == 0)
            return 1;
    }
    return 0;
}

/* Returns 1 when name (without "--") is an option of the s3:// form that
 * takes a value, 0 for one of its flags, or -1 for any other name. */
static int s3_option_kind(const char *name)
{
    if (name_in(name, aws_settings, N_OF(aws_settings)))
        return 1;
    if (name_in(name, plan_settings, N_OF(plan_settings)))
        return sn_cli_takes_value(name);
    return -1;
}

int sn_process_input_is_s3(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int kind;

        if (strcmp(arg, "-o") == 0) {
            i++;
            continue;
        }
        if (strcmp(arg, "-h") == 0)
            continue;
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return strncmp(arg, "s3://", 5) == 0;
        kind = sn_cli_takes_value(arg + 2);
        if (kind < 0)
            kind = s3_option_kind(arg + 2);
        if (kind > 0)
            i++;
    }
    return 0;
}

static void process_s3_usage(FILE *out)
{
    fputs(process_s3_usage_head, out);
    for (size_t i = 0; i < N_OF(plan_settings); i++)
        sn_cli_print_option(out, plan_settings[i]);
    fputs(process_s3_usage_tail, out);
}

static int set_aws_option(struct process_s3 *p, const char *name,
                          const char *value, char *err, size_t err_size)
{
    struct options *o = &p->a.o;

    if (strcmp(name, "queue-url") == 0) {
        o->queue_url = value;
    } else if (strcmp(name, "state-table") == 0) {
        o->state_table = value;
    } else if (strcmp(name, "hls-bucket") == 0) {
        o->hls_bucket = value;
    } else if (strcmp(value, "json") == 0) {
        sn_log_set_json(1);   /* name is "log-format" */
    } else if (strcmp(value, "text") != 0) {
        snprintf(err, err_size, "--log-format: expected text or json, got "
                 "'%s'", value);
        return -EINVAL;
    }
    return 0;
}

/* Applies one option at argv[*i], and its value, which it steps over. */
static int apply_s3_option(struct process_s3 *p, int argc, char **argv,
                           int *i, char *err, size_t err_size)
{
    const char *name = argv[*i] + 2;
    const char *value = NULL;
    int kind = s3_option_kind(name);

    if (kind < 0 && sn_cli_takes_value(name) >= 0) {
        snprintf(err, err_size, "--%s does not apply to an s3:// input",
                 name);
        return -EINVAL;
    }
    if (kind < 0) {
        snprintf(err, err_size, "unknown option \"%s\"", argv[*i]);
        return -EINVAL;
    }
    if (kind > 0) {
        if (*i + 1 >= argc) {
            snprintf(err, err_size, "--%s needs a value", name);
            return -EINVAL;
        }
        value = argv[++*i];
    }
    if (name_in(name, aws_settings, N_OF(aws_settings)))
        return set_aws_option(p, name, value, err, err_size);
    return sn_cli_set(&p->cli, name, value, err, err_size);
}

/* Returns 1 when name follows S3's rules for bucket names: 3 to 63
 * lower-case letters, digits, dots and hyphens, starting and ending with
 * a letter or digit. */
static int bucket_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len < 3 || len > 63 || !isalnum((unsigned char)name[0]) ||
        !isalnum((unsigned char)name[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!(islower(c) || isdigit(c) || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Splits p->url into the bucket and the key, and checks both. */
static int split_url(struct process_s3 *p, char *err, size_t err_size)
{
    const char *bucket = p->url + strlen("s3://");
    const char *slash = strchr(bucket, '/');

    for (const char *c = p->url; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(err, err_size, "s3:// URL contains a control "
                     "character (byte 0x%02x at offset %d)",
                     (unsigned char)*c, (int)(c - p->url));
            return -EINVAL;
        }
    }
    if (slash == NULL || slash == bucket ||
        (size_t)(slash - bucket) >= sizeof(p->bucket) || slash[1] == '\0') {
        snprintf(err, err_size, "%s: expected s3://BUCKET/stream/NAME",
                 p->url);
        return -EINVAL;
    }
    snprintf(p->bucket, sizeof(p->bucket), "%.*s", (int)(slash - bucket),
             bucket);
    p->key = slash + 1;
    if (!bucket_name_valid(p->bucket)) {
        snprintf(err, err_size, "%s: invalid bucket name \"%s\": expected 3 "
                 "to 63 lower-case letters, digits, dots and hyphens, "
                 "starting and ending with a letter or digit", p->url,
                 p->bucket);
        return -EINVAL;
    }
    if (strncmp(p->key, SN_UPLOAD_PREFIX, strlen(SN_UPLOAD_PREFIX)) != 0 ||
        !sn_upload_name_valid(p->key + strlen(SN_UPLOAD_PREFIX))) {
        snprintf(err, err_size, "%s: not an upload key: expected "
                 "stream/NAME, where NAME is a file name without '/' or "
                 "control characters", p->url);
        return -EINVAL;
    }
    return 0;
}

/* Makes the plan settings from the command line the pipeline's. */
static void take_plan_settings(struct process_s3 *p)
{
    struct sn_pipeline_config *c = &p->a.o.pipeline;
    const struct sn_process_options *o = &p->cli.process;

    c->limits = o->limits;
    c->ladder = o->ladder;
    c->chunks = o->chunks;
    c->encode = o->encode;
    c->split_rungs = o->split_rungs;
}

/* Returns 0, 1 after --help, or -1 after a usage error. */
static int parse_s3_arguments(struct process_s3 *p, int argc, char **argv)
{
    char err[SN_ERR_SIZE] = "";
    int rc = 0;

    options_init(&p->a.o, 0);
    sn_cli_init(&p->cli);
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            process_s3_usage(stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
            rc = apply_s3_option(p, argc, argv, &i, err, sizeof(err));
        } else if (p->url != NULL) {
            snprintf(err, sizeof(err), "unexpected argument \"%s\"", arg);
            rc = -EINVAL;
        } else {
            p->url = arg;
        }
    }
    if (rc == 0 && p->url == NULL) {
        snprintf(err, sizeof(err), "no s3://BUCKET/stream/NAME given");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = split_url(p, err, sizeof(err));
    if (rc == 0)
        rc = sn_cli_check(&p->cli, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sinatra process: %s\n", err);
        process_s3_usage(stderr);
        return -1;
    }
    take_plan_settings(p);
    if (p->cli.mode == SN_OUTPUT_QUIET)
        sn_log_set_level(SN_LOG_WARN);
    return 0;
}

/* Prints what the orchestration did, as the output mode asks. */
static void report(const struct process_s3 *p,
                   const struct sn_orchestration_result *r)
{
    char prefix[SN_VIDEO_ID_LEN + 32], master[SN_VIDEO_ID_LEN + 48];
    const char *hls = p->a.o.hls_bucket;
    json_t *event;
    char *text;

    sn_video_prefix(r->video_id, r->generation, prefix, sizeof(prefix));
    snprintf(master, sizeof(master), "%s/master.m3u8", prefix);
    if (p->cli.mode == SN_OUTPUT_QUIET)
        return;
    if (p->cli.mode == SN_OUTPUT_JSON) {
        event = json_pack("{s:s, s:s, s:s, s:I, s:s, s:b, s:i, s:i, s:i, "
                          "s:s, s:s, s:s}", "event", "orchestrated",
                          "input", p->url, "video", r->video_id,
                          "generation", (json_int_t)r->generation,
                          "status", sn_video_status_name(r->status),
                          "planned", r->planned, "jobs", r->n_jobs,
                          "done", r->n_done, "sent", r->n_sent,
                          "master_key", master, "hls_bucket", hls,
                          "error", r->error);
        text = event != NULL ? json_dumps(event, JSON_COMPACT) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(event);
        return;
    }

    if (r->planned)
        printf("%s: video %s planned and queued: %d jobs sent\n", p->url,
               r->video_id, r->n_sent);
    else if (r->status == SN_VIDEO_PROCESSING)
        printf("%s: video %s is still processing (%d of %d jobs done): "
               "sent the %d jobs not done yet once more\n", p->url, r->video_id,
               r->n_done, r->n_jobs, r->n_sent);
    else if (r->status == SN_VIDEO_READY)
        printf("%s: video %s is already ready; nothing sent\n", p->url,
               r->video_id);
    else
        printf("%s: video %s has failed: %s; nothing sent\n", p->url,
               r->video_id, r->error);
    if (r->status != SN_VIDEO_FAILED)
        printf("workers write %s in their HLS bucket (s3://%s with this "
               "command's settings)\n", master, hls);
}

/* Exit code of a failed orchestration: the source's fault or not. */
static int orchestrate_exit_code(int rc)
{
    if (rc == SN_ERR_INPUT || rc == SN_ERR_LIMIT || rc == SN_ERR_NOT_FOUND)
        return EXIT_INPUT;
    return EXIT_FAILED;
}

/*
 * `sinatra process s3://BUCKET/stream/NAME`: orchestrates an upload on
 * AWS, as the orchestrator function does for an S3 event. The source is
 * looked up first, then the queue, table and HLS bucket are checked, so
 * a wrong setting fails before anything is recorded.
 */
int sn_cmd_process_s3(int argc, char **argv)
{
    static const volatile sig_atomic_t never;
    struct process_s3 p = {.a = {.stop = &never}};
    struct sn_orchestration_result result;
    struct sn_object_info info;
    char err[SN_ERR_SIZE] = "";
    int rc;

    rc = parse_s3_arguments(&p, argc, argv);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    p.a.o.aws = 1;
    p.a.o.videos_bucket = p.bucket;
    if (p.a.o.queue_url == NULL || p.a.o.queue_url[0] == '\0') {
        fprintf(stderr, "sinatra process: %s: the job queue is not set: "
                        "--queue-url or SINATRA_JOB_QUEUE_URL\n", p.url);
        return EXIT_USAGE;
    }

    rc = open_app(&p.a, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sinatra process: %s\n", err);
        close_app(&p.a);
        return rc == SN_ERR_INPUT ? EXIT_USAGE : EXIT_FAILED;
    }
    rc = p.a.uploads->ops->head(p.a.uploads, p.key, &info, err, sizeof(err));
    if (rc == SN_ERR_NOT_FOUND) {
        fprintf(stderr, "sinatra process: %s: no such object or bucket "
                        "(%s)\n", p.url, err);
        close_app(&p.a);
        return EXIT_INPUT;
    }
    if (rc == 0)
        rc = check_aws(&p.a, 0, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sinatra process: %s\n", err);
        close_app(&p.a);
        return EXIT_FAILED;
    }
    rc = sn_orchestrate_upload(&p.a.main, &p.a.o.pipeline, p.key, 1,
                               &result, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sinatra process: %s\n", err);
        close_app(&p.a);
        return orchestrate_exit_code(rc);
    }
    report(&p, &result);
    close_app(&p.a);
    return EXIT_OK;
}
