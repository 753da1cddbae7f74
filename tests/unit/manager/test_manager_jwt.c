/* SPDX-License-Identifier: Apache-2.0 */
/* The JWT-SVID cache: keys, LRU cap, reuse until half-life, fallback to an unexpired
 * token when minting fails, one mint for concurrent requests. */
#define _GNU_SOURCE

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <warden/jwtsvid.h>

#include "manager_fixture.h"
#include "pb_util.h"
#include "testlib.h"

void test_jwt_cache_key(void **state);
void test_jwt_cache_lru(void **state);
void test_jwt_fetch_cached(void **state);
void test_jwt_fetch_fallback(void **state);
void test_jwt_fetch_coalesced(void **state);
void test_jwt_fetch_bad_args(void **state);
void test_jwt_cache_partition(void **state);
void test_jwt_fetch_rate(void **state);

void test_jwt_cache_key(void **state) {
        const char *ab[] = {"a", "b"}, *ba[] = {"b", "a"}, *a_bc[] = {"a", "bc"},
                   *ab_c[] = {"ab", "c"}, *a[] = {"a"};
        uint8_t k1[32], k2[32], k3[32], k4[32], k5[32], k6[32];

        assert_ok(jwt_cache_key(1000, "spiffe://x/y", ab, 2, k1));
        assert_ok(jwt_cache_key(1000, "spiffe://x/y", ba, 2, k2));
        assert_memory_equal(k1, k2, 32); /* audience order does not matter */
        assert_ok(jwt_cache_key(1000, "spiffe://x/y", a_bc, 2, k3));
        assert_ok(jwt_cache_key(1000, "spiffe://x/y", ab_c, 2, k4));
        assert_memory_not_equal(k3, k4, 32); /* NUL separators */
        assert_ok(jwt_cache_key(1000, "spiffe://x/z", ab, 2, k5));
        assert_memory_not_equal(k1, k5, 32);
        assert_ok(jwt_cache_key(1000, "spiffe://x/y", a, 1, k6));
        assert_memory_not_equal(k1, k6, 32);
}

static void key_n(uint8_t key[32], int n) {
        char aud[16];
        const char *auds[] = {aud};

        snprintf(aud, sizeof(aud), "aud%d", n);
        assert_ok(jwt_cache_key(1000, "spiffe://x/y", auds, 1, key));
}

void test_jwt_cache_lru(void **state) {
        JwtCache *c = NULL;
        uint8_t k[5][32];
        char *tok = NULL;

        for (int i = 0; i < 5; i++)
                key_n(k[i], i);
        assert_ok(jwt_cache_new(3, 0, 0, &c));
        assert_ok(jwt_cache_store(c, 1000, k[0], "t0", 1000, 1100));
        assert_ok(jwt_cache_store(c, 1000, k[1], "t1", 1000, 1100));
        assert_ok(jwt_cache_store(c, 1000, k[2], "t2", 1000, 1100));
        /* using k0 makes k1 the least recently used */
        assert_int_equal(jwt_cache_lookup(c, k[0], 1010, true, &tok), 1);
        assert_string_equal(tok, "t0");
        free(tok);
        assert_ok(jwt_cache_store(c, 1000, k[3], "t3", 1000, 1100));
        assert_int_equal(jwt_cache_size(c), 3);
        assert_int_equal(jwt_cache_lookup(c, k[1], 1010, false, &tok), 0);
        assert_int_equal(jwt_cache_lookup(c, k[0], 1010, true, &tok), 1);
        free(tok);
        /* fresh while more than half the lifetime is left (until 1050) */
        assert_int_equal(jwt_cache_lookup(c, k[2], 1049, true, &tok), 1);
        free(tok);
        assert_int_equal(jwt_cache_lookup(c, k[2], 1050, true, &tok), 0);
        assert_int_equal(jwt_cache_lookup(c, k[2], 1099, false, &tok), 1);
        free(tok);
        /* expired tokens are dropped */
        assert_int_equal(jwt_cache_lookup(c, k[2], 1100, false, &tok), 0);
        assert_int_equal(jwt_cache_size(c), 2);
        /* replacing keeps one item */
        assert_ok(jwt_cache_store(c, 1000, k[3], "t3b", 1000, 1200));
        assert_int_equal(jwt_cache_lookup(c, k[3], 1010, true, &tok), 1);
        assert_string_equal(tok, "t3b");
        free(tok);
        assert_int_equal(jwt_cache_size(c), 2);
        jwt_cache_free(c);
}

typedef struct Result {
        pthread_mutex_t lock;
        int calls;
        int r;
        char *token;
} Result;

static void on_jwt(int r, const char *token, void *ud) {
        Result *res = ud;

        pthread_mutex_lock(&res->lock);
        res->calls++;
        res->r = r;
        free(res->token);
        res->token = token ? strdup(token) : NULL;
        pthread_mutex_unlock(&res->lock);
}

static int result_calls(Result *res) {
        int n;

        pthread_mutex_lock(&res->lock);
        n = res->calls;
        pthread_mutex_unlock(&res->lock);
        return n;
}

/* Waits (outside any event loop: mints run on the worker) for `calls` callbacks. */
static void wait_calls(Result *res, int calls) {
        for (int i = 0; i < 1000 && result_calls(res) < calls; i++)
                usleep(10000);
        assert_int_equal(result_calls(res), calls);
}

static void setup_entry(Fixture *fx, const AgentSnapshot **ret_s, const CachedSvid **ret_c) {
        static const char *const one[] = {"e1 /w1 unix:uid:1"};
        Warden__Node__V1__SyncResponse *resp = fx_sync(fx, true, one, 1);
        const AgentSnapshot *s;

        assert_ok(manager_apply_sync(fx->m, resp));
        pb_free(resp);
        s = manager_snapshot(fx->m);
        *ret_s = s;
        *ret_c = fx_find(s, "e1");
        assert_non_null(*ret_c);
}

static void check_token(const char *token, const char *aud0) {
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *claims = NULL;

        assert_non_null(token);
        assert_ok(warden_jwtsvid_parse_unverified(token, &claims, NULL));
        assert_string_equal(claims->spiffe_id, "spiffe://" FX_TD "/w1");
        assert_string_equal(claims->aud[0], aud0);
}

void test_jwt_fetch_cached(void **state) {
        const char *ab[] = {"a", "b"}, *ba[] = {"b", "a"}, *c1[] = {"c"};
        Result res = {.lock = PTHREAD_MUTEX_INITIALIZER};
        const AgentSnapshot *s;
        const CachedSvid *c;
        _cleanup_free_ char *first = NULL;
        Fixture fx;

        fx_init(&fx, 0);
        setup_entry(&fx, &s, &c);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, ab, 2, on_jwt, &res));
        wait_calls(&res, 1);
        assert_int_equal(res.r, 0);
        check_token(res.token, "a");
        first = strdup(res.token);
        /* the same audience set in another order: from the cache, synchronously */
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, ba, 2, on_jwt, &res));
        assert_int_equal(result_calls(&res), 2);
        assert_string_equal(res.token, first);
        assert_int_equal(__atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST), 1);
        /* another audience: minted */
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, c1, 1, on_jwt, &res));
        wait_calls(&res, 3);
        check_token(res.token, "c");
        assert_int_equal(__atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST), 2);
        /* TTL 60: reused for 29 s, re-minted at half-life */
        fx_advance(&fx, 29);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, ab, 2, on_jwt, &res));
        assert_int_equal(result_calls(&res), 4);
        assert_string_equal(res.token, first);
        fx_advance(&fx, 1);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, ab, 2, on_jwt, &res));
        wait_calls(&res, 5);
        assert_string_not_equal(res.token, first);
        assert_int_equal(__atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST), 3);
        free(res.token);
        agent_snapshot_unref((AgentSnapshot *) s);
        fx_done(&fx);
}

void test_jwt_fetch_fallback(void **state) {
        const char *a[] = {"a"};
        unsigned calls;
        Result res = {.lock = PTHREAD_MUTEX_INITIALIZER};
        const AgentSnapshot *s;
        const CachedSvid *c;
        _cleanup_free_ char *first = NULL;
        Fixture fx;

        fx_init(&fx, 0);
        setup_entry(&fx, &s, &c);
        /* no token yet and the server is down: -EAGAIN */
        __atomic_store_n(&fx.fail, 1, __ATOMIC_SEQ_CST);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        wait_calls(&res, 1);
        assert_int_equal(res.r, -EAGAIN);
        assert_null(res.token);
        __atomic_store_n(&fx.fail, 0, __ATOMIC_SEQ_CST);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        wait_calls(&res, 2);
        first = strdup(res.token);
        /* past half-life, the server is down: the unexpired token is served */
        __atomic_store_n(&fx.fail, 1, __ATOMIC_SEQ_CST);
        fx_advance(&fx, 45);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        wait_calls(&res, 3);
        assert_int_equal(res.r, 0);
        assert_string_equal(res.token, first);
        /* for a few seconds it is served without asking the server again */
        calls = __atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST);
        fx_advance(&fx, 4);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        assert_int_equal(result_calls(&res), 4); /* synchronously, from the cache */
        assert_string_equal(res.token, first);
        assert_int_equal(__atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST), calls);
        fx_advance(&fx, 1);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        wait_calls(&res, 5);
        assert_int_equal(res.r, 0);
        assert_int_equal(__atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST), calls + 1);
        /* expired: nothing to serve */
        fx_advance(&fx, 15);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        wait_calls(&res, 6);
        assert_int_equal(res.r, -EAGAIN);
        free(res.token);
        agent_snapshot_unref((AgentSnapshot *) s);
        fx_done(&fx);
}

/* Ten callers at once while a mint is slow: one mint, ten answers. */
void test_jwt_fetch_coalesced(void **state) {
        const char *a[] = {"a"};
        Result res = {.lock = PTHREAD_MUTEX_INITIALIZER};
        const AgentSnapshot *s;
        const CachedSvid *c;
        Fixture fx;

        fx_init(&fx, 0);
        setup_entry(&fx, &s, &c);
        fx.mint_delay_ms = 300;
        for (int i = 0; i < 10; i++)
                assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, a, 1, on_jwt, &res));
        wait_calls(&res, 10);
        assert_int_equal(res.r, 0);
        assert_int_equal(__atomic_load_n(&fx.mint_calls, __ATOMIC_SEQ_CST), 1);
        free(res.token);
        /* a pending request at shutdown is answered */
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, (const char *[]){"z"}, 1, on_jwt, &res));
        agent_snapshot_unref((AgentSnapshot *) s);
        res.token = NULL;
        fx_done(&fx);
        assert_int_equal(result_calls(&res), 11);
        free(res.token);
}

void test_jwt_fetch_bad_args(void **state) {
        const char *empty[] = {""};
        const char *many[WARDEN_JWT_AUDIENCES_MAX + 1];
        Result res = {.lock = PTHREAD_MUTEX_INITIALIZER};
        const AgentSnapshot *s;
        const CachedSvid *c;
        Fixture fx;

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "x";
        fx_init(&fx, 0);
        setup_entry(&fx, &s, &c);
        assert_errno(manager_fetch_jwt_svid(fx.m, 1000, c, NULL, 0, on_jwt, &res), EINVAL);
        assert_errno(manager_fetch_jwt_svid(fx.m, 1000, c, empty, 1, on_jwt, &res), EINVAL);
        assert_errno(manager_fetch_jwt_svid(fx.m, 1000, c, many, ELEMENTSOF(many), on_jwt, &res),
                     EINVAL);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, many, WARDEN_JWT_AUDIENCES_MAX, on_jwt,
                                         &res));
        wait_calls(&res, 1);
        assert_int_equal(res.r, 0);
        free(res.token);
        agent_snapshot_unref((AgentSnapshot *) s);
        fx_done(&fx);
}

/* The cache is partitioned by uid: a uid storing many tokens evicts its own. */
void test_jwt_cache_partition(void **state) {
        const char *root_aud[] = {"root"};
        uint8_t root_key[32], k[32];
        JwtCache *c = NULL;
        char *tok = NULL;

        (void) state;
        assert_ok(jwt_cache_new(4, 0, 0, &c));
        assert_ok(jwt_cache_key(0, "spiffe://x/root", root_aud, 1, root_key));
        /* the same SPIFFE ID and audiences for another uid is another key */
        assert_ok(jwt_cache_key(1, "spiffe://x/root", root_aud, 1, k));
        assert_memory_not_equal(root_key, k, 32);
        assert_ok(jwt_cache_store(c, 0, root_key, "root-token", 1000, 1100));
        for (int i = 0; i < 50; i++) {
                char aud[16];
                const char *auds[] = {aud};

                snprintf(aud, sizeof(aud), "flood%d", i);
                assert_ok(jwt_cache_key(65534, "spiffe://x/nobody", auds, 1, k));
                assert_ok(jwt_cache_store(c, 65534, k, "nobody-token", 1000, 1100));
                assert_true(jwt_cache_size(c) <= 4);
        }
        assert_int_equal(jwt_cache_size(c), 4);
        assert_int_equal(jwt_cache_lookup(c, root_key, 1010, true, &tok), 1);
        assert_string_equal(tok, "root-token");
        free(tok);
        /* the flooding uid kept its most recent tokens */
        assert_int_equal(jwt_cache_lookup(c, k, 1010, true, &tok), 1);
        free(tok);
        jwt_cache_free(c);
        assert_errno(jwt_cache_new(0, 0, 0, &c), EINVAL);
        assert_errno(jwt_cache_new(4, 1, 0.5, &c), EINVAL);
        assert_errno(jwt_cache_new(4, -1, 1, &c), EINVAL);
}

/* Mints that miss the cache are limited per uid (default 10/s, bursts of 50); the
 * limit is per uid, cached tokens are never limited. */
void test_jwt_fetch_rate(void **state) {
        Result res = {.lock = PTHREAD_MUTEX_INITIALIZER};
        const char *first[] = {"aud0"};
        const AgentSnapshot *s;
        const CachedSvid *c;
        Fixture fx;
        int calls = 0;

        (void) state;
        fx_init(&fx, 0);
        setup_entry(&fx, &s, &c);
        /* the whole burst at once (waiting between mints would let the budget refill) */
        for (int i = 0; i < (int) MANAGER_JWT_MINT_BURST_DEFAULT; i++) {
                char aud[16];
                const char *auds[] = {aud};

                snprintf(aud, sizeof(aud), "aud%d", i);
                assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, auds, 1, on_jwt, &res));
        }
        /* the burst is spent: a new audience is refused without calling back ... */
        assert_errno(manager_fetch_jwt_svid(fx.m, 1000, c, (const char *[]){"one-more"}, 1, on_jwt,
                                            &res),
                     EDQUOT);
        calls = (int) MANAGER_JWT_MINT_BURST_DEFAULT;
        wait_calls(&res, calls);
        assert_int_equal(res.r, 0);
        /* ... a cached one is still served, at once ... */
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, first, 1, on_jwt, &res));
        assert_int_equal(result_calls(&res), ++calls);
        assert_int_equal(res.r, 0);
        /* ... and another uid has its own budget. */
        assert_ok(manager_fetch_jwt_svid(fx.m, 1001, c, (const char *[]){"one-more"}, 1, on_jwt,
                                         &res));
        wait_calls(&res, ++calls);
        assert_int_equal(res.r, 0);
        /* the budget refills at the rate: one more after 1/rate seconds */
        usleep((useconds_t) (1e6 / MANAGER_JWT_MINT_RATE_DEFAULT) + 20000);
        assert_ok(manager_fetch_jwt_svid(fx.m, 1000, c, (const char *[]){"one-more"}, 1, on_jwt,
                                         &res));
        wait_calls(&res, ++calls);
        assert_int_equal(res.r, 0);
        free(res.token);
        agent_snapshot_unref((AgentSnapshot *) s);
        fx_done(&fx);
}
