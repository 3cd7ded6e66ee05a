/*
 * Response helpers shared by the route handlers: JSON bodies, error
 * bodies, and the headers every response carries.
 */
#include "server/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maximum length of an error message sent, in bytes: room for a store's
 * error line (SN_ERR_SIZE) and the request's own words around it. */
#define MESSAGE_MAX 1024

const char *sn_server_header(const struct sn_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

void sn_server_add_headers(const struct sn_request *rq,
                           struct MHD_Response *r)
{
    if (rq->cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(r, "Access-Control-Expose-Headers",
                                "Content-Length, Content-Range, ETag");
    }
}

enum MHD_Result sn_server_queue(const struct sn_request *rq,
                                unsigned int status, struct MHD_Response *r)
{
    enum MHD_Result result;

    if (r == NULL)
        return MHD_NO;
    sn_server_add_headers(rq, r);

    result = MHD_queue_response(rq->conn, status, r);
    MHD_destroy_response(r);
    return result;
}

struct MHD_Response *sn_server_json_response(json_t *body)
{
    struct MHD_Response *r = NULL;
    char *text = NULL;

    if (body != NULL)
        text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return NULL;

    r = MHD_create_response_from_buffer(strlen(text), text,
                                        MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    return r;
}

/* Makes message valid for a JSON string. jansson rejects invalid UTF-8,
 * and an error may quote a name a client sent, so when jansson rejects
 * the text, every byte outside printable ASCII becomes '?'. */
static json_t *message_string(char *message)
{
    json_t *s = json_string(message);

    if (s != NULL)
        return s;
    for (char *p = message; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    }
    return json_string(message);
}

static struct MHD_Response *error_response(const char *fmt, va_list ap)
{
    char message[MESSAGE_MAX];

    vsnprintf(message, sizeof(message), fmt, ap);
    return sn_server_json_response(
        json_pack("{s:o}", "error", message_string(message)));
}

struct MHD_Response *sn_server_error_response(const char *fmt, ...)
{
    struct MHD_Response *r;
    va_list ap;

    va_start(ap, fmt);
    r = error_response(fmt, ap);
    va_end(ap);
    return r;
}

enum MHD_Result sn_server_fail(const struct sn_request *rq,
                               unsigned int status, const char *fmt, ...)
{
    struct MHD_Response *r;
    va_list ap;

    va_start(ap, fmt);
    r = error_response(fmt, ap);
    va_end(ap);
    return sn_server_queue(rq, status, r);
}
