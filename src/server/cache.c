/*
 * Ready 200 responses of large immutable files (segments), kept so that a
 * repeated request costs one fstatat() and a lookup instead of opening
 * the file and building the response with its headers again. A
 * libmicrohttpd response may be queued on any number of connections at
 * once, and libmicrohttpd 0.9.75 reads an fd response with sendfile() or
 * pread() at each connection's own offset, so they share the descriptor.
 */
#include "server/routes.h"

#include <string.h>

/* FNV-1a: spreads the paths of one folder's segments over the slots. */
static size_t slot_of(const char *path)
{
    uint32_t hash = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        hash ^= *p;
        hash *= 16777619u;
    }
    return hash % SN_RESPONSE_CACHE_SLOTS;
}

/* Returns 1 when the cached response was built from the file st
 * describes: same inode, size and modification time. */
static int same_file(const struct sn_cached_response *e,
                     const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino &&
           e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec &&
           e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void clear(struct sn_cached_response *e)
{
    if (e->response != NULL)
        MHD_destroy_response(e->response);
    e->response = NULL;
    e->path[0] = '\0';
}

void sn_response_cache_init(struct sn_response_cache *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
}

void sn_response_cache_release(struct sn_response_cache *c)
{
    for (size_t i = 0; i < SN_RESPONSE_CACHE_SLOTS; i++)
        clear(&c->slots[i]);
    pthread_mutex_destroy(&c->lock);
}

int sn_response_cache_queue(struct sn_response_cache *c, const char *path,
                            const struct stat *st,
                            struct MHD_Connection *conn,
                            enum MHD_Result *result)
{
    struct sn_cached_response *e = &c->slots[slot_of(path)];
    int hit = 0;

    /* Queueing under the lock keeps a concurrent eviction from freeing
     * the response before libmicrohttpd has taken its reference. */
    pthread_mutex_lock(&c->lock);
    if (e->response != NULL && strcmp(e->path, path) == 0) {
        if (same_file(e, st)) {
            *result = MHD_queue_response(conn, MHD_HTTP_OK, e->response);
            hit = 1;
        } else {
            clear(e);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

enum MHD_Result sn_response_cache_put(struct sn_response_cache *c,
                                      const char *path,
                                      const struct stat *st,
                                      struct MHD_Connection *conn,
                                      struct MHD_Response *r)
{
    struct sn_cached_response *e = &c->slots[slot_of(path)];
    enum MHD_Result result;

    if (strlen(path) >= sizeof(e->path)) {
        result = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return result;
    }

    pthread_mutex_lock(&c->lock);
    clear(e);
    memcpy(e->path, path, strlen(path) + 1);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->response = r;
    result = MHD_queue_response(conn, MHD_HTTP_OK, r);
    pthread_mutex_unlock(&c->lock);
    return result;
}
