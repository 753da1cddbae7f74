/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* Per source address connection counts and token buckets (see rpc_source.h). A
 * chained hash table keyed by the 16 address bytes, hashed with a per-table random
 * seed so that a peer cannot pick addresses that share a chain. */

#include "rpc_source.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RPC_SOURCE_BUCKETS 4096u

typedef struct RpcSource {
        struct RpcSource *next;
        RpcSourceAddr addr;
        unsigned n_conns;
        double budget; /* events it may start now */
        uint64_t last_ms;
} RpcSource;

struct RpcSourceTable {
        pthread_mutex_t lock;
        unsigned max_conns;
        double rate, burst;
        uint64_t seed;
        size_t n;
        RpcSource *buckets[RPC_SOURCE_BUCKETS];
};

int rpc_source_addr_from_sockaddr(const struct sockaddr *sa, RpcSourceAddr *ret) {
        RpcSourceAddr a = {};

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

                a.b[10] = a.b[11] = 0xff;
                memcpy(&a.b[12], &in->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6)
                memcpy(a.b, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
        else
                return -EAFNOSUPPORT;
        *ret = a;
        return 0;
}

int rpc_source_addr_from_string(const char *s, RpcSourceAddr *ret) {
        RpcSourceAddr a = {};

        if (!s)
                return -EINVAL;
        if (inet_pton(AF_INET, s, &a.b[12]) == 1) {
                a.b[10] = a.b[11] = 0xff;
        } else if (inet_pton(AF_INET6, s, a.b) != 1)
                return -EINVAL;
        *ret = a;
        return 0;
}

static bool addr_is_v4(const RpcSourceAddr *a) {
        static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

        return memcmp(a->b, prefix, sizeof(prefix)) == 0;
}

void rpc_source_addr_to_string(const RpcSourceAddr *a, char buf[static INET6_ADDRSTRLEN]) {
        if (addr_is_v4(a))
                (void) inet_ntop(AF_INET, &a->b[12], buf, INET6_ADDRSTRLEN);
        else
                (void) inet_ntop(AF_INET6, a->b, buf, INET6_ADDRSTRLEN);
}

int rpc_source_table_new(unsigned max_conns, double rate, double burst, RpcSourceTable **ret) {
        RpcSourceTable *t;

        if (rate < 0 || burst < 0)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        t->max_conns = max_conns;
        t->rate = rate;
        t->burst = burst < 1 ? 1 : burst;
        if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
                t->seed = (uint64_t) (uintptr_t) t ^ 0x9e3779b97f4a7c15ull;
        *ret = t;
        return 0;
}

RpcSourceTable *rpc_source_table_free(RpcSourceTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < RPC_SOURCE_BUCKETS; i++)
                while (t->buckets[i]) {
                        RpcSource *e = t->buckets[i];

                        t->buckets[i] = e->next;
                        free(e);
                }
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
}

/* FNV-1a over the seed and the address. */
static RpcSource **chain(RpcSourceTable *t, const RpcSourceAddr *a) {
        uint64_t h = 0xcbf29ce484222325ull ^ t->seed;

        for (size_t i = 0; i < sizeof(a->b); i++) {
                h ^= a->b[i];
                h *= 0x100000001b3ull;
        }
        return &t->buckets[(h ^ (h >> 32)) % RPC_SOURCE_BUCKETS];
}

/* The budget of e at now_ms, refilled at the rate, at most the burst. */
static double refilled(const RpcSourceTable *t, const RpcSource *e, uint64_t now_ms) {
        double b;

        if (t->rate <= 0)
                return t->burst;
        if (now_ms <= e->last_ms)
                return e->budget;
        b = e->budget + (double) (now_ms - e->last_ms) / 1000.0 * t->rate;
        return b > t->burst ? t->burst : b;
}

static bool source_unused(const RpcSourceTable *t, const RpcSource *e, uint64_t now_ms) {
        return e->n_conns == 0 && refilled(t, e, now_ms) >= t->burst;
}

/* Drops every entry that holds nothing any more. Under lock. */
static void gc_locked(RpcSourceTable *t, uint64_t now_ms) {
        for (size_t i = 0; i < RPC_SOURCE_BUCKETS; i++)
                for (RpcSource **p = &t->buckets[i]; *p;) {
                        RpcSource *e = *p;

                        if (source_unused(t, e, now_ms)) {
                                *p = e->next;
                                free(e);
                                t->n--;
                        } else
                                p = &e->next;
                }
}

/* Finds a's entry; with create, makes it (full bucket) when missing. Under lock. */
static int get_locked(
        RpcSourceTable *t, const RpcSourceAddr *a, bool create, uint64_t now_ms, RpcSource **ret) {
        RpcSource **c = chain(t, a), *e;

        for (e = *c; e; e = e->next)
                if (memcmp(e->addr.b, a->b, sizeof(a->b)) == 0) {
                        *ret = e;
                        return 0;
                }
        if (!create)
                return -ENOENT;
        if (t->n >= RPC_SOURCE_MAX)
                gc_locked(t, now_ms);
        if (t->n >= RPC_SOURCE_MAX)
                return -ENOSPC;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->addr = *a;
        e->budget = t->burst;
        e->last_ms = now_ms;
        e->next = *c;
        *c = e;
        t->n++;
        *ret = e;
        return 0;
}

/* Frees e when it holds nothing. Under lock. */
static void maybe_free_locked(RpcSourceTable *t, RpcSource *e, uint64_t now_ms) {
        if (!source_unused(t, e, now_ms))
                return;
        for (RpcSource **p = chain(t, &e->addr); *p; p = &(*p)->next)
                if (*p == e) {
                        *p = e->next;
                        free(e);
                        t->n--;
                        return;
                }
}

/* Connection counting does not need the clock: entries it makes start with a full
 * bucket stamped 0, and "refilled" only grows with time. */
int rpc_source_conn_admit(RpcSourceTable *t, const RpcSourceAddr *a) {
        RpcSource *e;
        int r;

        pthread_mutex_lock(&t->lock);
        r = get_locked(t, a, true, 0, &e);
        if (r >= 0 && t->max_conns > 0 && e->n_conns >= t->max_conns)
                r = -EDQUOT;
        if (r >= 0)
                e->n_conns++;
        pthread_mutex_unlock(&t->lock);
        return r;
}

void rpc_source_conn_release(RpcSourceTable *t, const RpcSourceAddr *a) {
        RpcSource *e;

        pthread_mutex_lock(&t->lock);
        if (get_locked(t, a, false, 0, &e) >= 0 && e->n_conns > 0) {
                e->n_conns--;
                if (e->n_conns == 0 && t->rate <= 0)
                        maybe_free_locked(t, e, 0);
        }
        pthread_mutex_unlock(&t->lock);
}

unsigned rpc_source_conns(RpcSourceTable *t, const RpcSourceAddr *a) {
        RpcSource *e;
        unsigned n = 0;

        pthread_mutex_lock(&t->lock);
        if (get_locked(t, a, false, 0, &e) >= 0)
                n = e->n_conns;
        pthread_mutex_unlock(&t->lock);
        return n;
}

int rpc_source_rate_take(RpcSourceTable *t, const RpcSourceAddr *a, uint64_t now_ms) {
        RpcSource *e;
        int r;

        if (t->rate <= 0)
                return 0;
        pthread_mutex_lock(&t->lock);
        r = get_locked(t, a, true, now_ms, &e);
        if (r >= 0) {
                double b = refilled(t, e, now_ms);

                if (now_ms > e->last_ms)
                        e->last_ms = now_ms;
                e->budget = b;
                if (b >= 1)
                        e->budget -= 1;
                else
                        r = -EDQUOT;
        }
        pthread_mutex_unlock(&t->lock);
        return r;
}

size_t rpc_source_table_size(RpcSourceTable *t) {
        size_t n;

        pthread_mutex_lock(&t->lock);
        n = t->n;
        pthread_mutex_unlock(&t->lock);
        return n;
}
