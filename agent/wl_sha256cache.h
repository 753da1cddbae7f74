/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* SHA-256 of executables for the unix:sha256 selector: a streaming hash of an open fd and a
 * small LRU cache keyed by the file's identity and change times. Not locked: the Attestor
 * holds the lock around cache calls (attest_wl.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cleanup.h"

#define WL_SHA256_HEX_SIZE 65 /* 64 hex digits + NUL */

/* A file changed when any of these changed (writes move mtime and ctime; utimensat can set
 * mtime back but always moves ctime). */
typedef struct WlFileKey {
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_ns;
        int64_t ctime_ns;
} WlFileKey;

typedef struct WlSha256Cache WlSha256Cache;

void wl_file_key_from_stat(const struct stat *st, WlFileKey *ret);
bool wl_file_key_equal(const WlFileKey *a, const WlFileKey *b);

/* Hashes up to max_size bytes of the file at fd from offset 0 (pread). Returns 0 and the
 * lowercase hex digest, -EFBIG if the file holds more than max_size bytes. */
int wl_sha256_fd(int fd, uint64_t max_size, char ret_hex[static WL_SHA256_HEX_SIZE]);

/* capacity: 1 .. 65536 entries. */
int wl_sha256cache_new(size_t capacity, WlSha256Cache **ret);
WlSha256Cache *wl_sha256cache_free(WlSha256Cache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(WlSha256Cache *, wl_sha256cache_free)

/* Copies the cached digest for key into ret_hex and marks it recently used. Returns false on
 * a miss. */
bool wl_sha256cache_get(WlSha256Cache *c,
                        const WlFileKey *key,
                        char ret_hex[static WL_SHA256_HEX_SIZE]);

/* Stores a digest, replacing an entry with the same device/inode, else the least recently
 * used one when full. */
void wl_sha256cache_put(WlSha256Cache *c, const WlFileKey *key, const char *hex);

/* Number of entries held. */
size_t wl_sha256cache_size(const WlSha256Cache *c);
