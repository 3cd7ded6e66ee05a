/*
 * Signed requests against moto's server with signature checking on, run
 * through tests/aws/with_moto.sh: S3 objects with awkward keys, SQS and
 * DynamoDB JSON calls, and a wrong secret rejected by the service. Exits
 * with 77 (skipped) when AWS_ENDPOINT_URL is not set.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/signer.h"
#include "test.h"
#include "util/error.h"

#define BUCKET "sinatra-test-videos"
/*
 * NOTE: a plain key. With signature checking on, moto 5.2.1 rejected some
 * requests on keys with '(', '+', '%' or non-ASCII letters, boto3's own
 * PutObject included. It also listed such keys inconsistently. The S3
 * backend must find out why before it claims such keys round-trip.
 */
#define KEY "stream/my clip.mp4"

struct service {
    struct sn_aws_provider *provider;
    struct sn_aws_signer signer;
    struct sn_http_client *client;
    char endpoint[SN_HTTP_URL_MAX];
};

static void service_open(struct service *s, const char *name)
{
    char err[SN_ERR_SIZE] = "";

    if (getenv("AWS_ENDPOINT_URL") == NULL) {
        fprintf(stderr, "AWS_ENDPOINT_URL is not set (run through "
                        "tests/aws/with_moto.sh): skipped\n");
        exit(77);
    }
    memset(s, 0, sizeof(*s));
    CHECK_INT(sn_aws_provider_new(&s->provider), 0);
    s->signer.provider = s->provider;
    CHECK_INT(sn_aws_region(s->signer.region, sizeof(s->signer.region), err,
                            sizeof(err)), 0);
    snprintf(s->signer.service, sizeof(s->signer.service), "%s", name);
    s->client = sn_http_client_new(NULL);
    CHECK(s->client != NULL);
    CHECK_INT(sn_aws_endpoint(name, s->signer.region, s->endpoint,
                              sizeof(s->endpoint), err, sizeof(err)), 0);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);
}

static void service_close(struct service *s)
{
    sn_http_client_free(s->client);
    sn_aws_provider_free(s->provider);
}

/* Sends one signed request; returns the sn_http_send() code. */
static int send_signed(struct service *s, const char *method, const char *url,
                struct curl_slist *headers, const char *body,
                struct sn_http_response *resp, char *err, size_t err_size)
{
    struct sn_http_request req;

    sn_http_request_init(&req, method, url);
    req.headers = headers;
    req.body = body;
    req.body_size = body != NULL ? strlen(body) : 0;
    req.sign = sn_aws_sign;
    req.sign_opaque = &s->signer;
    req.resource = url;
    memset(resp, 0, sizeof(*resp));
    return sn_http_send(s->client, &req, resp, err, err_size);
}

static void s3_object_round_trips(void)
{
    struct service s;
    struct sn_http_response resp;
    char bucket_url[SN_HTTP_URL_MAX], url[SN_HTTP_URL_MAX];
    char err[SN_ERR_SIZE] = "";
    static const char body[] = "0123456789abcdefghij";
    struct sn_http_request req;

    service_open(&s, "s3");
    CHECK_INT(sn_s3_url(s.endpoint, BUCKET, NULL, bucket_url,
                        sizeof(bucket_url), err, sizeof(err)), 0);
    CHECK_INT(sn_s3_url(s.endpoint, BUCKET, KEY, url, sizeof(url), err,
                        sizeof(err)), 0);

    CHECK_INT(send_signed(&s, "PUT", bucket_url, NULL, NULL, &resp, err,
                   sizeof(err)), 0);
    sn_http_response_release(&resp);
    CHECK_INT(send_signed(&s, "PUT", url, NULL, body, &resp, err, sizeof(err)), 0);
    sn_http_response_release(&resp);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);

    CHECK_INT(send_signed(&s, "GET", url, NULL, NULL, &resp, err, sizeof(err)), 0);
    CHECK_INT((long long)resp.body_size, (long long)strlen(body));
    CHECK(resp.body != NULL);
    CHECK_STR(resp.body, body);
    sn_http_response_release(&resp);

    /* A ranged GET, as the S3 reader of a demuxer makes. */
    sn_http_request_init(&req, "GET", url);
    req.range_first = 5;
    req.range_last = 9;
    req.sign = sn_aws_sign;
    req.sign_opaque = &s.signer;
    req.resource = url;
    memset(&resp, 0, sizeof(resp));
    CHECK_INT(sn_http_send(s.client, &req, &resp, err, sizeof(err)), 0);
    CHECK_INT(resp.status, 206);
    CHECK(resp.body != NULL);
    CHECK_STR(resp.body, "56789");
    sn_http_response_release(&resp);

    {
        char list_url[SN_HTTP_URL_MAX + 32];

        snprintf(list_url, sizeof(list_url), "%s?list-type=2", bucket_url);
        CHECK_INT(send_signed(&s, "GET", list_url, NULL, NULL, &resp, err,
                              sizeof(err)), 0);
        CHECK(resp.body != NULL &&
              strstr(resp.body, "<Key>" KEY "</Key>") != NULL);
        sn_http_response_release(&resp);
    }
    CHECK_INT(send_signed(&s, "DELETE", url, NULL, NULL, &resp, err,
                          sizeof(err)), 0);
    sn_http_response_release(&resp);
    CHECK_INT(send_signed(&s, "GET", url, NULL, NULL, &resp, err,
                          sizeof(err)), SN_ERR_NOT_FOUND);
    CHECK(strstr(err, "NoSuchKey") != NULL);
    sn_http_response_release(&resp);
    service_close(&s);
}

static void wrong_secret_is_rejected_by_the_service(void)
{
    struct service s;
    struct sn_http_response resp;
    char url[SN_HTTP_URL_MAX], err[SN_ERR_SIZE] = "";
    char *secret = strdup(getenv("AWS_SECRET_ACCESS_KEY") ?
                          getenv("AWS_SECRET_ACCESS_KEY") : "");

    setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
    service_open(&s, "s3");
    CHECK_INT(sn_s3_url(s.endpoint, "sinatra-wrong-secret", NULL, url,
                        sizeof(url), err, sizeof(err)), 0);
    CHECK_INT(send_signed(&s, "PUT", url, NULL, NULL, &resp, err, sizeof(err)),
              SN_ERR_BACKEND);
    CHECK(strstr(err, "SignatureDoesNotMatch") != NULL);
    CHECK_INT(resp.status, 403);
    sn_http_response_release(&resp);
    service_close(&s);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    free(secret);
}

static struct curl_slist *json_headers(const char *target)
{
    char line[128];
    struct curl_slist *list = NULL;

    snprintf(line, sizeof(line), "X-Amz-Target: %s", target);
    list = curl_slist_append(list, "Content-Type: application/x-amz-json-1.0");
    list = curl_slist_append(list, line);
    return list;
}

static void sqs_json_protocol_creates_a_queue(void)
{
    struct service s;
    struct sn_http_response resp;
    struct curl_slist *headers = json_headers("AmazonSQS.CreateQueue");
    char url[SN_HTTP_URL_MAX + 2], err[SN_ERR_SIZE] = "";

    service_open(&s, "sqs");
    snprintf(url, sizeof(url), "%s/", s.endpoint);
    CHECK_INT(send_signed(&s, "POST", url, headers,
                   "{\"QueueName\":\"sinatra-jobs\"}", &resp, err,
                   sizeof(err)), 0);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);
    CHECK(resp.body != NULL);
    CHECK(resp.body == NULL || strstr(resp.body, "sinatra-jobs") != NULL);
    sn_http_response_release(&resp);
    curl_slist_free_all(headers);
    service_close(&s);
}

static void dynamodb_lists_tables(void)
{
    struct service s;
    struct sn_http_response resp;
    struct curl_slist *headers =
        json_headers("DynamoDB_20120810.ListTables");
    char url[SN_HTTP_URL_MAX + 2], err[SN_ERR_SIZE] = "";

    service_open(&s, "dynamodb");
    snprintf(url, sizeof(url), "%s/", s.endpoint);
    CHECK_INT(send_signed(&s, "POST", url, headers, "{}", &resp, err, sizeof(err)),
              0);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);
    CHECK(resp.body != NULL);
    CHECK(resp.body == NULL || strstr(resp.body, "TableNames") != NULL);
    sn_http_response_release(&resp);
    curl_slist_free_all(headers);
    service_close(&s);
}

SN_TEST_MAIN(
    TEST_CASE(s3_object_round_trips),
    TEST_CASE(wrong_secret_is_rejected_by_the_service),
    TEST_CASE(sqs_json_protocol_creates_a_queue),
    TEST_CASE(dynamodb_lists_tables))
