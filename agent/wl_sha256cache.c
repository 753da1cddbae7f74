/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_sha256cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ossl_cleanup.h"

#define READ_CHUNK (64U * 1024)

typedef struct CacheEntry {
        WlFileKey key;
        uint64_t last_used; /* 0 = free slot */
        char hex[WL_SHA256_HEX_SIZE];
} CacheEntry;

struct WlSha256Cache {
        CacheEntry *entries;
        size_t capacity;
        size_t n;
        uint64_t tick;
};

void wl_file_key_from_stat(const struct stat *st, WlFileKey *ret) {
        *ret = (WlFileKey){
                .dev = st->st_dev,
                .ino = st->st_ino,
                .size = st->st_size,
                .mtime_ns = (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                .ctime_ns = (int64_t) st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
        };
}

bool wl_file_key_equal(const WlFileKey *a, const WlFileKey *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static void to_hex(const unsigned char *md, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[md[i] >> 4];
                out[2 * i + 1] = digits[md[i] & 0xf];
        }
        out[2 * n] = 0;
}

int wl_sha256_fd(int fd, uint64_t max_size, char ret_hex[static WL_SHA256_HEX_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ unsigned char *buf = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        uint64_t off = 0;

        buf = malloc(READ_CHUNK);
        ctx = EVP_MD_CTX_new();
        if (!buf || !ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return ossl_to_errno(-EIO);
        for (;;) {
                ssize_t k = pread(fd, buf, READ_CHUNK, (off_t) off);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                off += (uint64_t) k;
                if (off > max_size)
                        return -EFBIG;
                if (EVP_DigestUpdate(ctx, buf, (size_t) k) != 1)
                        return ossl_to_errno(-EIO);
        }
        if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
                return ossl_to_errno(-EIO);
        to_hex(md, mdlen, ret_hex);
        return 0;
}

int wl_sha256cache_new(size_t capacity, WlSha256Cache **ret) {
        _cleanup_free_ WlSha256Cache *c = NULL;

        if (capacity < 1 || capacity > 65536)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->entries = calloc(capacity, sizeof(CacheEntry));
        if (!c->entries)
                return -ENOMEM;
        c->capacity = capacity;
        *ret = TAKE_PTR(c);
        return 0;
}

WlSha256Cache *wl_sha256cache_free(WlSha256Cache *c) {
        if (!c)
                return NULL;
        free(c->entries);
        free(c);
        return NULL;
}

bool wl_sha256cache_get(WlSha256Cache *c,
                        const WlFileKey *key,
                        char ret_hex[static WL_SHA256_HEX_SIZE]) {
        for (size_t i = 0; i < c->capacity; i++) {
                CacheEntry *e = &c->entries[i];

                if (e->last_used != 0 && wl_file_key_equal(&e->key, key)) {
                        e->last_used = ++c->tick;
                        memcpy(ret_hex, e->hex, WL_SHA256_HEX_SIZE);
                        return true;
                }
        }
        return false;
}

void wl_sha256cache_put(WlSha256Cache *c, const WlFileKey *key, const char *hex) {
        CacheEntry *slot = NULL;

        for (size_t i = 0; i < c->capacity; i++) {
                CacheEntry *e = &c->entries[i];

                if (e->last_used == 0) {
                        if (!slot || slot->last_used != 0)
                                slot = e;
                        continue;
                }
                if (e->key.dev == key->dev && e->key.ino == key->ino) {
                        slot = e; /* same file, new contents: replace */
                        break;
                }
                if (!slot || (slot->last_used != 0 && e->last_used < slot->last_used))
                        slot = e;
        }
        if (slot->last_used == 0)
                c->n++;
        slot->key = *key;
        slot->last_used = ++c->tick;
        memcpy(slot->hex, hex, WL_SHA256_HEX_SIZE - 1);
        slot->hex[WL_SHA256_HEX_SIZE - 1] = 0;
}

size_t wl_sha256cache_size(const WlSha256Cache *c) {
        return c->n;
}
