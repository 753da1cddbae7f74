/* SPDX-License-Identifier: Apache-2.0 */
/* The serial number of a TLS client's certificate, for RpcPeer.cert_serial.
 *
 * gRPC hands the peer certificate to a call only as PEM text (the auth context's
 * x509_pem_cert property), and parsing that with OpenSSL costs ~200 µs of CPU per call
 * (GRPC-CORE-NOTES.md). A client makes many calls with the same certificate, so the
 * serial is cached by the certificate's exact PEM bytes: a direct-mapped table of
 * RPC_SERIAL_CACHE_SLOTS slots, indexed by a hash of the PEM and confirmed by comparing
 * the whole PEM, so a hit can never answer for another certificate. Memory is bounded
 * by the slot count times RPC_SERIAL_PEM_MAX. */
#define _GNU_SOURCE

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "rpc_internal.h"

typedef struct RpcSerialSlot {
        uint64_t hash;
        char *pem; /* NULL: empty slot */
        size_t pem_len;
        char *serial;
} RpcSerialSlot;

struct RpcSerialCache {
        pthread_mutex_t lock;
        RpcSerialSlot slots[RPC_SERIAL_CACHE_SLOTS];
        uint64_t hits, misses;
};

int rpc_serial_cache_new(RpcSerialCache **ret) {
        RpcSerialCache *c = calloc(1, sizeof(RpcSerialCache));

        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        *ret = c;
        return 0;
}

RpcSerialCache *rpc_serial_cache_free(RpcSerialCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < RPC_SERIAL_CACHE_SLOTS; i++) {
                free(c->slots[i].pem);
                free(c->slots[i].serial);
        }
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

/* FNV-1a: only picks the slot; a hit is confirmed by comparing the whole PEM. */
static uint64_t pem_hash(const char *pem, size_t len) {
        uint64_t h = UINT64_C(14695981039346656037);

        for (size_t i = 0; i < len; i++) {
                h ^= (uint8_t) pem[i];
                h *= UINT64_C(1099511628211);
        }
        return h;
}

/* The serial of the first certificate in pem, parsed with OpenSSL. */
static int serial_parse(const char *pem, size_t len, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;

        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!cert)
                return ossl_to_errno(-EBADMSG);
        return warden_x509_serial_hex(cert, ret);
}

/* Copies the cached serial of slot into *ret when it holds exactly this PEM. */
static int slot_lookup(
        const RpcSerialSlot *slot, uint64_t h, const char *pem, size_t len, char **ret) {
        if (!slot->pem || slot->hash != h || slot->pem_len != len ||
            memcmp(slot->pem, pem, len) != 0)
                return -ENOENT;
        *ret = strdup(slot->serial);
        return *ret ? 0 : -ENOMEM;
}

static void slot_store(
        RpcSerialSlot *slot, uint64_t h, const char *pem, size_t len, const char *serial) {
        char *p = malloc(len), *s = strdup(serial);

        if (!p || !s) {
                free(p);
                free(s);
                return; /* not cached: the next call parses again */
        }
        memcpy(p, pem, len);
        free(slot->pem);
        free(slot->serial);
        *slot = (RpcSerialSlot){.hash = h, .pem = p, .pem_len = len, .serial = s};
}

int rpc_serial_cache_get(RpcSerialCache *c, const char *pem, size_t len, char **ret) {
        _cleanup_free_ char *serial = NULL;
        uint64_t h;
        RpcSerialSlot *slot;
        int r;

        if (!c || !pem || len == 0)
                return -EINVAL;
        if (len > RPC_SERIAL_PEM_MAX)
                return -EMSGSIZE;
        h = pem_hash(pem, len);
        slot = &c->slots[h % RPC_SERIAL_CACHE_SLOTS];
        pthread_mutex_lock(&c->lock);
        r = slot_lookup(slot, h, pem, len, ret);
        if (r != -ENOENT) {
                c->hits += r >= 0;
                pthread_mutex_unlock(&c->lock);
                return r;
        }
        c->misses++;
        pthread_mutex_unlock(&c->lock);

        /* Parse outside the lock: it is the slow part. */
        r = serial_parse(pem, len, &serial);
        if (r < 0)
                return r;
        pthread_mutex_lock(&c->lock);
        slot_store(slot, h, pem, len, serial);
        pthread_mutex_unlock(&c->lock);
        *ret = TAKE_PTR(serial);
        return 0;
}

void rpc_serial_cache_stats(RpcSerialCache *c, uint64_t *ret_hits, uint64_t *ret_misses) {
        pthread_mutex_lock(&c->lock);
        *ret_hits = c->hits;
        *ret_misses = c->misses;
        pthread_mutex_unlock(&c->lock);
}

int rpc_tls_peer_serial(grpc_call *call, RpcSerialCache *cache, char **ret) {
        grpc_auth_context *ctx = grpc_call_auth_context(call);
        grpc_auth_property_iterator it;
        const grpc_auth_property *p, *extra;
        int r = 0;

        *ret = NULL;
        if (!ctx)
                return 0;
        it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME);
        p = grpc_auth_property_iterator_next(&it);
        extra = grpc_auth_property_iterator_next(&it);
        if (p && !extra && p->value && p->value_length > 0)
                r = rpc_serial_cache_get(cache, p->value, p->value_length, ret);
        grpc_auth_context_release(ctx);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_debug_errno(r, "rpc: no serial for the client certificate (%m), ignoring");
        return 0;
}
