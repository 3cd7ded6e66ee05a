/*
 * The object store: named byte objects under keys such as
 * "stream/clip.mp4" or "3fa2b9c1d0e4/1/720p/seg_00001.m4s". Two stores
 * exist at run time: uploads (sources and job records) and hls (what
 * players fetch). The pipeline uses only this interface; the local backend
 * keeps objects as files under a folder, the AWS backend in S3.
 *
 * Every write is atomic: a reader sees the old object or the whole new
 * one, never a part. Keys are checked with sn_store_key_valid() before any
 * backend gets them.
 */
#ifndef SN_STORE_STORE_H
#define SN_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Maximum key length in bytes (S3's limit). */
#define SN_STORE_MAX_KEY 1024

/* Random access to the bytes of one object, for demuxers. */
struct sn_reader {
    int64_t size;
    /* Reads up to n bytes at offset into buf. Returns the number of bytes
     * read (0 only at the end), or a negative SN_ERR_* code or -errno. */
    int64_t (*read)(struct sn_reader *r, int64_t offset, void *buf,
                    size_t n);
    void (*close)(struct sn_reader *r);
};

/* Object metadata from head(). */
struct sn_object_info {
    int64_t size;
    /* Changes whenever the object is replaced: an ETag, or the local
     * file's device, inode, size and modification time. */
    char tag[80];
};

struct sn_store;

struct sn_store_ops {
    /* Opens key for reading. SN_ERR_NOT_FOUND when it does not exist,
     * SN_ERR_INPUT when it is not a plain object (a folder, a FIFO). */
    int (*open)(struct sn_store *s, const char *key, struct sn_reader **out,
                char *err, size_t err_size);
    /* Reads a whole object of at most max bytes into a malloc'd buffer
     * with a NUL after the last byte. SN_ERR_NOT_FOUND, SN_ERR_LIMIT. */
    int (*get)(struct sn_store *s, const char *key, size_t max,
               uint8_t **data, size_t *size, char *err, size_t err_size);
    /* Writes data under key, replacing what was there. */
    int (*put)(struct sn_store *s, const char *key, const void *data,
               size_t size, char *err, size_t err_size);
    /* Moves the local file at path under key (the file is gone or stale
     * afterwards). The local backend renames it, so path must be on the
     * same file system as the store: see scratch(). */
    int (*put_file)(struct sn_store *s, const char *key, const char *path,
                    char *err, size_t err_size);
    /* 0 and *info, or SN_ERR_NOT_FOUND. */
    int (*head)(struct sn_store *s, const char *key,
                struct sn_object_info *info, char *err, size_t err_size);
    /* Calls each() for every object whose key starts with prefix, in no
     * particular order; a non-zero return from each() stops the listing
     * and is returned. */
    int (*list)(struct sn_store *s, const char *prefix,
                int (*each)(void *opaque, const char *key, int64_t size),
                void *opaque, char *err, size_t err_size);
    /* Removes key; removing a missing key succeeds. */
    int (*remove)(struct sn_store *s, const char *key, char *err,
                  size_t err_size);
    /* Writes a folder on local disk where a job can build files before
     * put_file(); the caller removes it. */
    int (*scratch)(struct sn_store *s, char *path, size_t path_size,
                   char *err, size_t err_size);
    void (*close)(struct sn_store *s);
};

struct sn_store {
    const struct sn_store_ops *ops;
    char name[64];            /* for messages: a folder or "s3://bucket" */
};

/*
 * Returns 1 when key is usable: 1 to SN_STORE_MAX_KEY bytes of valid
 * UTF-8, no control characters, no leading '/', no empty, "." or ".."
 * component, no backslash. Else 0.
 */
int sn_store_key_valid(const char *key);

/*
 * Checks key like sn_store_key_valid(). Returns 0 when it is usable. Else
 * writes one line into err, naming the store, the key and the rule it
 * breaks, and returns SN_ERR_INPUT. Control characters and bytes that are
 * not UTF-8 are escaped, so the line stays printable. Backends call it at
 * the top of every operation.
 */
int sn_store_key_check(const struct sn_store *s, const char *key, char *err,
                       size_t err_size);

/*
 * Opens the local backend over the folder root, creating it if needed.
 * Keys map to paths below root; a key's components become folders.
 * Temporary files live in root/.tmp, which list() skips; opening removes
 * those of processes that no longer exist. Returns 0 and *out, or
 * SN_ERR_BACKEND with the cause in err.
 */
int sn_store_fs_open(const char *root, struct sn_store **out, char *err,
                     size_t err_size);

/* Returns the folder a store from sn_store_fs_open() keeps objects in. */
const char *sn_store_fs_root(const struct sn_store *s);

/* Shorthands that check the key, then call the backend. */
int sn_store_get(struct sn_store *s, const char *key, size_t max,
                 uint8_t **data, size_t *size, char *err, size_t err_size);
int sn_store_put(struct sn_store *s, const char *key, const void *data,
                 size_t size, char *err, size_t err_size);
void sn_store_close(struct sn_store *s);

#endif
