/*
 * The folder store: each object is a regular file at root/key, and each
 * component of a key before the last is a folder.
 *
 * Symbolic links are never followed below root. Every operation walks the
 * key one component at a time with openat(O_NOFOLLOW), from a descriptor
 * of root opened once, so a link placed inside root cannot lead a read or
 * a write outside it, and no path is resolved twice.
 *
 * Writes go to a new file in root/.tmp, are flushed with fsync() and are
 * renamed over the final name, so readers see the old object or the whole
 * new one. The folder holding the new name is not flushed, so after a
 * power loss the old object may come back, but never a partial one.
 *
 * The store keeps no mutable state besides an atomic counter for
 * temporary names, so any number of threads and processes may share one
 * folder.
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fsutil.h"

/* Names starting with this are the store's own: never listed, never keys. */
#define TMP_PREFIX ".tmp"
#define TMP_PREFIX_LEN 4

/* How often a write walks its key again after a concurrent remove()
 * deleted a folder that the write had just created. */
#define MAX_PLACE_TRIES 8

#define COPY_BUFFER_SIZE (256 * 1024)

struct fs_store {
    struct sn_store store;
    char root[PATH_MAX];      /* absolute, without a trailing '/' */
    int root_fd;
    int tmp_fd;               /* root/.tmp */
    unsigned long next_temp;  /* atomic: numbers temporary file names */
};

static const struct sn_store_ops fs_ops;

/* Writes "root/key: cause" into err and returns code. */
static int failf(const struct fs_store *fs, const char *key, int code,
                 char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int failf(const struct fs_store *fs, const char *key, int code,
                 char *err, size_t err_size, const char *fmt, ...)
{
    char cause[SN_ERR_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    snprintf(err, err_size, "%s/%s: %s", fs->root, key, cause);
    return code;
}

/* Converts an errno from reading key into an SN_ERR_* code and a message. */
static int read_failed(const struct fs_store *fs, const char *key, int e,
                       char *err, size_t err_size)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return failf(fs, key, SN_ERR_NOT_FOUND, err, err_size, "not found");
    case ELOOP:
        return failf(fs, key, SN_ERR_INPUT, err, err_size,
                     "a symbolic link is in the way, and the folder store "
                     "does not follow links");
    case ENAMETOOLONG:
        return failf(fs, key, SN_ERR_INPUT, err, err_size,
                     "a component is longer than the file system allows");
    case ENOMEM:
        return failf(fs, key, -ENOMEM, err, err_size, "out of memory");
    default:
        return failf(fs, key, SN_ERR_BACKEND, err, err_size,
                     "cannot open: %s", strerror(e));
    }
}

/* Converts an errno from writing key into an SN_ERR_* code and a message. */
static int write_failed(const struct fs_store *fs, const char *key, int e,
                        char *err, size_t err_size)
{
    switch (e) {
    case ENOTDIR:
        return failf(fs, key, SN_ERR_INPUT, err, err_size,
                     "cannot write: a shorter key names an object, and "
                     "the folder store needs a folder there");
    case EISDIR:
        return failf(fs, key, SN_ERR_INPUT, err, err_size,
                     "cannot write: a folder has that name, because "
                     "longer keys start with this one");
    case ELOOP:
    case ENAMETOOLONG:
    case ENOMEM:
        return read_failed(fs, key, e, err, err_size);
    default:
        return failf(fs, key, SN_ERR_BACKEND, err, err_size,
                     "cannot write: %s", strerror(e));
    }
}

static int has_reserved_component(const char *key)
{
    for (const char *p = key; p != NULL; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (strncmp(p, TMP_PREFIX, TMP_PREFIX_LEN) == 0)
            return 1;
    }
    return 0;
}

/* Checks key like every backend, and rejects the names the store uses
 * for its temporary files. */
static int check_key(const struct fs_store *fs, const char *key, char *err,
                     size_t err_size)
{
    int rc = sn_store_key_check(&fs->store, key, err, err_size);

    if (rc < 0)
        return rc;
    if (has_reserved_component(key))
        return failf(fs, key, SN_ERR_INPUT, err, err_size,
                     "invalid key: names starting with \"" TMP_PREFIX
                     "\" are reserved for the store's temporary files");
    return 0;
}

/* ---- walking keys ------------------------------------------------------- */

/*
 * Opens the folder name inside dir without following a link, creating it
 * first when create is set. Returns a descriptor or -errno: -ELOOP when
 * name is a symbolic link, -ENOTDIR when it is another kind of file.
 */
static int open_folder(int dir, const char *name, int create)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    struct stat st;
    int fd = openat(dir, name, flags);

    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
            return -errno;
        fd = openat(dir, name, flags);
    }
    if (fd >= 0)
        return fd;

    /* Linux reports a link met with O_DIRECTORY | O_NOFOLLOW as ENOTDIR. */
    if (errno == ENOTDIR &&
        fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        return -ELOOP;
    return -errno;
}

/*
 * Opens the folder that contains the last component of key, walking from
 * root one component at a time (see the top of the file), and creating
 * missing folders when create is set. Returns the descriptor, which the
 * caller closes, and points *last at the last component; or -errno.
 */
static int open_parent(const struct fs_store *fs, const char *key,
                       int create, const char **last)
{
    char name[SN_STORE_MAX_KEY + 1];
    const char *p = key, *slash;
    /* A new open file description, not a dup(): a listing reads the
     * folder through it, and a shared offset would break other readers. */
    int fd = openat(fs->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -errno;

    while ((slash = strchr(p, '/')) != NULL) {
        size_t n = (size_t)(slash - p);
        int next;

        memcpy(name, p, n);
        name[n] = '\0';
        next = open_folder(fd, name, create);
        close(fd);
        if (next < 0)
            return next;
        fd = next;
        p = slash + 1;
    }

    *last = p;
    return fd;
}

/*
 * Opens the object at key for reading and checks that it is a regular
 * file. Returns 0 with *fd_out and *st, or an SN_ERR_* code with err set.
 */
static int open_object(const struct fs_store *fs, const char *key,
                       int *fd_out, struct stat *st, char *err,
                       size_t err_size)
{
    const char *last;
    int dir, fd, e;

    dir = open_parent(fs, key, 0, &last);
    if (dir < 0)
        return read_failed(fs, key, -dir, err, err_size);

    /* O_NONBLOCK so that opening a FIFO cannot block; it is rejected
     * below like every other file that is not a regular one. */
    fd = openat(dir, last,
                O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
    e = errno;
    close(dir);
    if (fd < 0)
        return read_failed(fs, key, e, err, err_size);

    if (fstat(fd, st) < 0) {
        e = errno;
        close(fd);
        return failf(fs, key, SN_ERR_BACKEND, err, err_size,
                     "cannot read its status: %s", strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return failf(fs, key, SN_ERR_INPUT, err, err_size, "%s",
                     S_ISDIR(st->st_mode) ? "a folder, not an object"
                                          : "not a regular file");
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

    *fd_out = fd;
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

struct fs_reader {
    struct sn_reader reader;
    int fd;
};

static int64_t pread_some(int fd, int64_t offset, void *buf, size_t n)
{
    ssize_t got;

    if (offset < 0)
        return -EINVAL;
    if (n > INT_MAX)
        n = INT_MAX;

    do {
        got = pread(fd, buf, n, (off_t)offset);
    } while (got < 0 && errno == EINTR);
    return got < 0 ? -errno : (int64_t)got;
}

static int64_t reader_read(struct sn_reader *r, int64_t offset, void *buf,
                           size_t n)
{
    return pread_some(((struct fs_reader *)r)->fd, offset, buf, n);
}

static void reader_close(struct sn_reader *r)
{
    struct fs_reader *f = (struct fs_reader *)r;

    if (f == NULL)
        return;
    close(f->fd);
    free(f);
}

static int fs_open(struct sn_store *s, const char *key,
                   struct sn_reader **out, char *err, size_t err_size)
{
    const struct fs_store *fs = (const struct fs_store *)s;
    struct fs_reader *f;
    struct stat st;
    int fd, rc;

    rc = check_key(fs, key, err, err_size);
    if (rc == 0)
        rc = open_object(fs, key, &fd, &st, err, err_size);
    if (rc < 0)
        return rc;

    f = malloc(sizeof(*f));
    if (f == NULL) {
        close(fd);
        return failf(fs, key, -ENOMEM, err, err_size, "out of memory");
    }
    f->reader = (struct sn_reader){
        .size = (int64_t)st.st_size,
        .read = reader_read,
        .close = reader_close,
    };
    f->fd = fd;
    *out = &f->reader;
    return 0;
}

static int fs_get(struct sn_store *s, const char *key, size_t max,
                  uint8_t **data, size_t *size, char *err, size_t err_size)
{
    const struct fs_store *fs = (const struct fs_store *)s;
    uint8_t *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd = -1, rc;

    rc = check_key(fs, key, err, err_size);
    if (rc == 0)
        rc = open_object(fs, key, &fd, &st, err, err_size);
    if (rc < 0)
        return rc;

    if ((uint64_t)st.st_size > max) {
        rc = failf(fs, key, SN_ERR_LIMIT, err, err_size,
                   "%lld bytes, over the limit of %zu bytes",
                   (long long)st.st_size, max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = failf(fs, key, -ENOMEM, err, err_size, "out of memory");
        goto out;
    }

    /* Objects are replaced by rename, never rewritten, so the open file
     * keeps the size read above. */
    while (got < (size_t)st.st_size) {
        int64_t n = pread_some(fd, (int64_t)got, buf + got,
                               (size_t)st.st_size - got);

        if (n < 0) {
            rc = failf(fs, key, SN_ERR_BACKEND, err, err_size,
                       "read failed: %s", strerror((int)-n));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *size = got;
    buf = NULL;

out:
    free(buf);
    close(fd);
    return rc;
}

static int fs_head(struct sn_store *s, const char *key,
                   struct sn_object_info *info, char *err, size_t err_size)
{
    const struct fs_store *fs = (const struct fs_store *)s;
    const char *last;
    struct stat st;
    int dir, rc, e;

    rc = check_key(fs, key, err, err_size);
    if (rc < 0)
        return rc;

    dir = open_parent(fs, key, 0, &last);
    if (dir < 0)
        return read_failed(fs, key, -dir, err, err_size);
    rc = fstatat(dir, last, &st, AT_SYMLINK_NOFOLLOW);
    e = errno;
    close(dir);
    if (rc < 0)
        return read_failed(fs, key, e, err, err_size);
    if (S_ISLNK(st.st_mode))
        return read_failed(fs, key, ELOOP, err, err_size);
    if (!S_ISREG(st.st_mode))
        return failf(fs, key, SN_ERR_INPUT, err, err_size, "%s",
                     S_ISDIR(st.st_mode) ? "a folder, not an object"
                                         : "not a regular file");

    /* A replaced object is a new file: a new inode and modification time
     * even when an inode number is reused. */
    info->size = (int64_t)st.st_size;
    snprintf(info->tag, sizeof(info->tag), "%llx-%llx-%llx-%llx",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

/*
 * Creates a new empty file in root/.tmp, named from the process id and a
 * counter. Returns its descriptor and writes its name into name, or
 * -errno. A process that dies before the rename leaves its file behind
 * until the next sn_store_fs_open() of the folder removes it.
 */
static int create_temp(struct fs_store *fs, char *name, size_t name_size)
{
    for (int tries = 0; tries < 100; tries++) {
        unsigned long n = __atomic_fetch_add(&fs->next_temp, 1,
                                             __ATOMIC_RELAXED);
        int fd;

        snprintf(name, name_size, "put-%ld-%lu", (long)getpid(), n);
        fd = openat(fs->tmp_fd, name,
                    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    0644);
        /* EEXIST: left behind by a dead process that had the same id. */
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

static int write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/*
 * Renames from_dir/from_name to key, creating the key's folders. A
 * concurrent remove() may delete a folder between its creation and the
 * rename, so the walk is retried on ENOENT. Returns 0 or -errno.
 */
static int place(const struct fs_store *fs, const char *key, int from_dir,
                 const char *from_name)
{
    const char *last;
    int dir, rc = -ENOENT;

    for (int tries = 0; rc == -ENOENT && tries < MAX_PLACE_TRIES; tries++) {
        dir = open_parent(fs, key, 1, &last);
        if (dir < 0) {
            rc = dir;
            continue;
        }
        rc = renameat(from_dir, from_name, dir, last) < 0 ? -errno : 0;
        close(dir);
    }
    return rc;
}

/* Moves the temporary file name into place under key, or removes it. */
static int commit_temp(struct fs_store *fs, const char *key, int fd,
                       const char *name, char *err, size_t err_size)
{
    int rc = 0;

    if (fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        rc = place(fs, key, fs->tmp_fd, name);

    if (rc < 0) {
        unlinkat(fs->tmp_fd, name, 0);
        return write_failed(fs, key, -rc, err, err_size);
    }
    return 0;
}

static int fs_put(struct sn_store *s, const char *key, const void *data,
                  size_t size, char *err, size_t err_size)
{
    struct fs_store *fs = (struct fs_store *)s;
    char name[64];
    int fd, rc;

    rc = check_key(fs, key, err, err_size);
    if (rc < 0)
        return rc;

    fd = create_temp(fs, name, sizeof(name));
    if (fd < 0)
        return failf(fs, key, SN_ERR_BACKEND, err, err_size,
                     "cannot create a temporary file in %s/" TMP_PREFIX
                     ": %s", fs->root, strerror(-fd));
    rc = write_all(fd, data, size);
    if (rc < 0) {
        close(fd);
        unlinkat(fs->tmp_fd, name, 0);
        return write_failed(fs, key, -rc, err, err_size);
    }
    return commit_temp(fs, key, fd, name, err, err_size);
}

/* Copies the open file src into a new temporary file, for a put_file()
 * from another file system. */
static int copy_to_temp(struct fs_store *fs, int src, char *name,
                        size_t name_size, int *out)
{
    uint8_t *buf = malloc(COPY_BUFFER_SIZE);
    int64_t offset = 0, n;
    int fd, rc = 0;

    if (buf == NULL)
        return -ENOMEM;
    fd = create_temp(fs, name, name_size);
    if (fd < 0) {
        free(buf);
        return fd;
    }

    while ((n = pread_some(src, offset, buf, COPY_BUFFER_SIZE)) > 0) {
        rc = write_all(fd, buf, (size_t)n);
        if (rc < 0)
            break;
        offset += n;
    }
    if (n < 0)
        rc = (int)n;
    free(buf);

    if (rc < 0) {
        close(fd);
        unlinkat(fs->tmp_fd, name, 0);
        return rc;
    }
    *out = fd;
    return 0;
}

static int fs_put_file(struct sn_store *s, const char *key, const char *path,
                       char *err, size_t err_size)
{
    struct fs_store *fs = (struct fs_store *)s;
    char name[64];
    struct stat st;
    int fd = -1, copy = -1, rc;

    rc = check_key(fs, key, err, err_size);
    if (rc < 0)
        return rc;

    /* Opened to flush it before the rename, and to check that path is a
     * regular file, not a link that would be moved into the store. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = failf(fs, key, SN_ERR_INPUT, err, err_size,
                   "cannot store %s: %s", path,
                   fd < 0 ? strerror(errno) : "not a regular file");
        goto out;
    }
    if (fsync(fd) < 0) {
        rc = write_failed(fs, key, errno, err, err_size);
        goto out;
    }

    rc = place(fs, key, AT_FDCWD, path);
    if (rc == -EXDEV) {
        rc = copy_to_temp(fs, fd, name, sizeof(name), &copy);
        if (rc == 0) {
            rc = commit_temp(fs, key, copy, name, err, err_size);
            if (rc == 0)
                unlink(path);
            goto out;
        }
    }
    if (rc < 0)
        rc = write_failed(fs, key, -rc, err, err_size);

out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- listing ------------------------------------------------------------ */

struct listing {
    const struct fs_store *fs;
    int (*each)(void *opaque, const char *key, int64_t size);
    void *opaque;
    int stopped;              /* each() returned non-zero */
    char key[SN_STORE_MAX_KEY + 2];   /* the key being built */
};

static int list_folder(struct listing *l, int fd, size_t key_len,
                       const char *match);

/* Lists one entry of a folder whose key prefix is l->key[0..key_len). */
static int list_entry(struct listing *l, int dir, size_t key_len,
                      const char *name)
{
    size_t n = strlen(name);
    struct stat st;
    int sub;

    /* Longer names cannot be keys; a folder needs room for one more. */
    if (key_len + n > SN_STORE_MAX_KEY)
        return 0;
    memcpy(l->key + key_len, name, n + 1);

    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;

    if (S_ISREG(st.st_mode)) {
        int rc;

        if (!sn_store_key_valid(l->key))
            return 0;
        rc = l->each(l->opaque, l->key, (int64_t)st.st_size);
        l->stopped = rc != 0;
        return rc;
    }
    if (!S_ISDIR(st.st_mode) || key_len + n + 2 > SN_STORE_MAX_KEY)
        return 0;

    /* ENOENT and ENOTDIR: removed or replaced since the fstatat(). */
    sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    l->key[key_len + n] = '/';
    l->key[key_len + n + 1] = '\0';
    return list_folder(l, sub, key_len + n + 1, NULL);
}

/*
 * Calls l->each() for every object below the folder fd (which this
 * closes) whose name starts with match, when match is not NULL. Returns
 * 0, the first non-zero return of each(), or -errno of a failed read of a
 * folder. Each level of recursion keeps one descriptor open, and keys of
 * at most 1024 bytes bound the depth to 512.
 */
static int list_folder(struct listing *l, int fd, size_t key_len,
                       const char *match)
{
    size_t match_len = match != NULL ? strlen(match) : 0;
    struct dirent *e;
    DIR *d = fdopendir(fd);
    int rc = 0;

    if (d == NULL) {
        rc = -errno;
        close(fd);
        return rc;
    }

    for (;;) {
        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            rc = -errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, TMP_PREFIX, TMP_PREFIX_LEN) == 0 ||
            strncmp(e->d_name, match ? match : "", match_len) != 0)
            continue;
        rc = list_entry(l, dirfd(d), key_len, e->d_name);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

static int fs_list(struct sn_store *s, const char *prefix,
                   int (*each)(void *opaque, const char *key, int64_t size),
                   void *opaque, char *err, size_t err_size)
{
    struct listing l = {.fs = (const struct fs_store *)s, .each = each,
                        .opaque = opaque};
    const struct fs_store *fs = l.fs;
    char folder[SN_STORE_MAX_KEY + 1] = "";
    const char *last, *slash, *match;
    size_t dir_len;
    int fd, rc;

    if (prefix == NULL)
        prefix = "";
    if (strlen(prefix) > SN_STORE_MAX_KEY) {
        snprintf(err, err_size, "%s: invalid list prefix: longer than %d "
                 "bytes", fs->root, SN_STORE_MAX_KEY);
        return SN_ERR_INPUT;
    }
    slash = strrchr(prefix, '/');
    match = slash != NULL ? slash + 1 : prefix;
    dir_len = (size_t)(match - prefix);

    /* The part before the last '/' names a folder, so it must be a valid
     * key. The rest is only compared with names and needs no check. */
    if (dir_len > 0) {
        memcpy(folder, prefix, dir_len - 1);
        folder[dir_len - 1] = '\0';
        rc = check_key(fs, folder, err, err_size);
        if (rc < 0)
            return rc;
    }
    memcpy(l.key, prefix, dir_len);
    l.key[dir_len] = '\0';

    fd = open_parent(fs, l.key, 0, &last);
    if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
        return 0;
    if (fd < 0)
        return failf(fs, folder, SN_ERR_BACKEND, err, err_size,
                     "cannot list: %s", strerror(-fd));

    rc = list_folder(&l, fd, dir_len, match);
    if (rc < 0 && !l.stopped)
        return failf(fs, folder, SN_ERR_BACKEND, err, err_size,
                     "cannot list: %s", strerror(-rc));
    return rc;
}

/* ---- removing ----------------------------------------------------------- */

/* Removes the folders of key that are empty now, deepest first, up to
 * root. Best effort: a folder that is not empty ends the climb. */
static void remove_empty_folders(const struct fs_store *fs, const char *key)
{
    char folder[SN_STORE_MAX_KEY + 1];
    const char *last;
    char *slash;

    snprintf(folder, sizeof(folder), "%s", key);
    while ((slash = strrchr(folder, '/')) != NULL) {
        int dir, rc;

        *slash = '\0';
        dir = open_parent(fs, folder, 0, &last);
        if (dir < 0)
            return;
        rc = unlinkat(dir, last, AT_REMOVEDIR);
        close(dir);
        if (rc < 0)
            return;
    }
}

static int fs_remove(struct sn_store *s, const char *key, char *err,
                     size_t err_size)
{
    const struct fs_store *fs = (const struct fs_store *)s;
    const char *last;
    int dir, rc, e;

    rc = check_key(fs, key, err, err_size);
    if (rc < 0)
        return rc;

    dir = open_parent(fs, key, 0, &last);
    if (dir == -ENOENT || dir == -ENOTDIR)
        return 0;
    if (dir < 0)
        return read_failed(fs, key, -dir, err, err_size);
    rc = unlinkat(dir, last, 0);
    e = errno;
    close(dir);

    if (rc < 0 && e == EISDIR)
        return failf(fs, key, SN_ERR_INPUT, err, err_size,
                     "cannot remove: a folder, not an object");
    if (rc < 0 && e != ENOENT)
        return failf(fs, key, SN_ERR_BACKEND, err, err_size,
                     "cannot remove: %s", strerror(e));
    remove_empty_folders(fs, key);
    return 0;
}

/* ---- scratch folders and the store itself ------------------------------- */

static int fs_scratch(struct sn_store *s, char *path, size_t path_size,
                      char *err, size_t err_size)
{
    const struct fs_store *fs = (const struct fs_store *)s;
    int n;

    /* The process id in the name tells a later sn_store_fs_open() whether
     * the folder's owner is still alive. */
    n = snprintf(path, path_size, "%s/" TMP_PREFIX "/scratch-%ld-XXXXXX",
                 fs->root, (long)getpid());
    if (n < 0 || (size_t)n >= path_size) {
        snprintf(err, err_size,
                 "%s: no room for a scratch folder path in %zu bytes",
                 fs->root, path_size);
        return SN_ERR_BACKEND;
    }
    if (mkdtemp(path) == NULL) {
        snprintf(err, err_size,
                 "%s/" TMP_PREFIX ": cannot create a scratch folder: %s",
                 fs->root, strerror(errno));
        return SN_ERR_BACKEND;
    }
    return 0;
}

static void fs_close(struct sn_store *s)
{
    struct fs_store *fs = (struct fs_store *)s;

    if (fs == NULL)
        return;
    if (fs->tmp_fd >= 0)
        close(fs->tmp_fd);
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    free(fs);
}

static const struct sn_store_ops fs_ops = {
    .open = fs_open,
    .get = fs_get,
    .put = fs_put,
    .put_file = fs_put_file,
    .head = fs_head,
    .list = fs_list,
    .remove = fs_remove,
    .scratch = fs_scratch,
    .close = fs_close,
};

/* Makes root, resolves it to an absolute path and opens it and root/.tmp. */
static int open_root(struct fs_store *fs, const char *root, char *err,
                     size_t err_size)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    int rc = sn_mkdirs(root);

    if (rc < 0) {
        snprintf(err, err_size, "%s: cannot create the store folder: %s",
                 root, strerror(-rc));
        return SN_ERR_BACKEND;
    }
    if (realpath(root, fs->root) == NULL) {
        snprintf(err, err_size, "%s: cannot resolve the store folder: %s",
                 root, strerror(errno));
        return SN_ERR_BACKEND;
    }
    /* Room for root/key in any PATH_MAX buffer. */
    if (strlen(fs->root) > PATH_MAX - SN_STORE_MAX_KEY - 2) {
        snprintf(err, err_size, "%s: store folder path longer than %d bytes",
                 root, PATH_MAX - SN_STORE_MAX_KEY - 2);
        return SN_ERR_BACKEND;
    }

    fs->root_fd = open(fs->root, flags);
    if (fs->root_fd >= 0 && mkdirat(fs->root_fd, TMP_PREFIX, 0755) < 0 &&
        errno != EEXIST) {
        snprintf(err, err_size, "%s/" TMP_PREFIX ": cannot create: %s",
                 fs->root, strerror(errno));
        return SN_ERR_BACKEND;
    }
    if (fs->root_fd >= 0)
        fs->tmp_fd = openat(fs->root_fd, TMP_PREFIX, flags | O_NOFOLLOW);
    if (fs->root_fd < 0 || fs->tmp_fd < 0) {
        snprintf(err, err_size, "%s%s: cannot open: %s", fs->root,
                 fs->root_fd < 0 ? "" : "/" TMP_PREFIX, strerror(errno));
        return SN_ERR_BACKEND;
    }
    return 0;
}

/*
 * Removes what dead processes left in root/.tmp: temporary files
 * ("put-PID-N") and scratch folders ("scratch-PID-XXXXXX") whose process
 * no longer exists. Only processes of this machine use a folder store, so
 * the process id is enough to tell; a reused id only delays the removal.
 */
static void remove_leftovers(struct fs_store *fs)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d;
    int fd = openat(fs->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        long pid = 0;

        if (sscanf(e->d_name, "put-%ld-", &pid) != 1 &&
            sscanf(e->d_name, "scratch-%ld-", &pid) != 1)
            continue;
        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/" TMP_PREFIX "/%s", fs->root,
                 e->d_name);
        sn_remove_tree(path);
    }
    closedir(d);
}

int sn_store_fs_open(const char *root, struct sn_store **out, char *err,
                     size_t err_size)
{
    struct fs_store *fs;
    int rc;

    if (root == NULL || root[0] == '\0') {
        snprintf(err, err_size, "no folder given for the store");
        return SN_ERR_BACKEND;
    }
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        snprintf(err, err_size, "%s: out of memory", root);
        return -ENOMEM;
    }
    fs->root_fd = -1;
    fs->tmp_fd = -1;

    rc = open_root(fs, root, err, err_size);
    if (rc < 0) {
        fs_close(&fs->store);
        return rc;
    }
    remove_leftovers(fs);
    fs->store.ops = &fs_ops;
    snprintf(fs->store.name, sizeof(fs->store.name), "%s", fs->root);
    *out = &fs->store;
    return 0;
}

/* Returns NULL for a store of another backend. */
const char *sn_store_fs_root(const struct sn_store *s)
{
    if (s == NULL || s->ops != &fs_ops)
        return NULL;
    return ((const struct fs_store *)s)->root;
}
