/*
 * File-system helpers. Every write that others may read is atomic: the
 * bytes go to a temporary name in the same folder, are flushed, and are
 * renamed over the final name, so a reader sees the old file or the whole
 * new one, never a part.
 */
#ifndef SN_UTIL_FSUTIL_H
#define SN_UTIL_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a folder and its missing parents (mode 0755). Returns 0 or -errno. */
int sn_mkdirs(const char *path);

/*
 * Writes size bytes to path atomically (see above). Returns 0 or -errno;
 * on failure the old file, if any, is untouched and no temporary file is
 * left behind.
 */
int sn_write_file_atomic(const char *path, const void *data, size_t size);

/* Reads a whole file of at most max bytes into a malloc'd buffer. */
int sn_read_file(const char *path, size_t max, uint8_t **data, size_t *size);

/* Removes a folder and everything under it. Returns 0 or -errno. */
int sn_remove_tree(const char *path);

/* Returns 1 when path exists (any type), else 0. */
int sn_path_exists(const char *path);

#endif
