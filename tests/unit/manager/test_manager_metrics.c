/* SPDX-License-Identifier: Apache-2.0 */
/* The manager's metrics (SVIDs issued and rotated, cache gauges) through signing,
 * rotation, JWT mints, deletion and expiry; and a run-time change of the workload key
 * type. */
#define _GNU_SOURCE

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <warden/x509.h>

#include "manager_fixture.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "testlib.h"

void test_manager_metrics(void **state);
void test_manager_key_type(void **state);

/* The value of a family without labels. */
static double value(Fixture *fx, const char *name) {
        MetricSeries *s = NULL;

        assert_ok(metrics_series_get(metrics_registry_find(fx->registry, name), NULL, &s));
        assert_non_null(s);
        return metrics_series_value(s);
}

static void apply(Fixture *fx, const char *const *entries, size_t n) {
        Warden__Node__V1__SyncResponse *resp = fx_sync(fx, true, entries, n);

        assert_ok(manager_apply_sync(fx->m, resp));
        pb_free(resp);
}

static bool issued_at_least(Fixture *fx, const void *arg) {
        return value(fx, METRIC_AGENT_SVIDS_ISSUED) >= *(const double *) arg;
}

static bool cache_is(Fixture *fx, const void *arg) {
        return value(fx, METRIC_AGENT_SVID_CACHE_ENTRIES) == *(const double *) arg;
}

static unsigned jwt_done_calls; /* atomic */

static void on_jwt(int r, const char *token, void *ud) {
        (void) token;
        (void) ud;
        assert_int_equal(r, 0);
        __atomic_add_fetch(&jwt_done_calls, 1, __ATOMIC_SEQ_CST);
}

static void fetch_jwt(Fixture *fx, const char *aud, unsigned calls_after) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx->m);
        const char *auds[] = {aud};

        assert_ok(manager_fetch_jwt_svid(fx->m, 0, fx_find(s, "e1"), auds, 1, on_jwt, NULL));
        for (int i = 0;
             i < 1000 && __atomic_load_n(&jwt_done_calls, __ATOMIC_SEQ_CST) < calls_after; i++)
                usleep(10000);
        assert_int_equal(__atomic_load_n(&jwt_done_calls, __ATOMIC_SEQ_CST), calls_after);
}

void test_manager_metrics(void **state) {
        static const char *const two[] = {"e1 /w1 unix:uid:1", "e2 /w2 unix:uid:2"};
        static const char *const one[] = {"e1 /w1 unix:uid:1"};
        double want;
        Fixture fx;

        (void) state;
        fx_init(&fx, 0);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ISSUED) == 0);
        apply(&fx, two, 2);
        want = 2;
        fx_run_until(&fx, issued_at_least, &want);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ISSUED) == 2);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ROTATED) == 0);
        assert_true(value(&fx, METRIC_AGENT_SVID_CACHE_ENTRIES) == 2);
        assert_true(value(&fx, METRIC_AGENT_JWT_CACHE_ENTRIES) == 0);

        /* Past half-life both are renewed: rotations, not new identities. */
        fx_advance(&fx, 51);
        manager_tick(fx.m);
        want = 4;
        fx_run_until(&fx, issued_at_least, &want);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ROTATED) == 2);
        assert_true(value(&fx, METRIC_AGENT_SVID_CACHE_ENTRIES) == 2);

        /* A minted JWT-SVID is issued once; the cached one is not counted again. */
        fetch_jwt(&fx, "a", 1);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ISSUED) == 5);
        assert_true(value(&fx, METRIC_AGENT_JWT_CACHE_ENTRIES) == 1);
        fetch_jwt(&fx, "a", 2);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ISSUED) == 5);
        fetch_jwt(&fx, "b", 3);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ISSUED) == 6);
        assert_true(value(&fx, METRIC_AGENT_JWT_CACHE_ENTRIES) == 2);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ROTATED) == 2);

        /* A deleted entry leaves the cache; an expired SVID too. */
        apply(&fx, one, 1);
        assert_true(value(&fx, METRIC_AGENT_SVID_CACHE_ENTRIES) == 1);
        __atomic_store_n(&fx.fail, 1, __ATOMIC_SEQ_CST);
        fx_advance(&fx, 200);
        manager_tick(fx.m);
        want = 0;
        fx_run_until(&fx, cache_is, &want);
        assert_true(value(&fx, METRIC_AGENT_SVIDS_ISSUED) == 6);
        fx_done(&fx);
}

static int leaf_bits(const CachedSvid *c) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;

        assert_non_null(c);
        assert_non_null(c->chain_der);
        assert_ok(warden_x509_chain_from_der(c->chain_der, c->chain_len, &chain));
        return EVP_PKEY_get_bits(X509_get0_pubkey(sk_X509_value(chain, 0)));
}

void test_manager_key_type(void **state) {
        static const char *const one[] = {"e1 /w1 unix:uid:1"};
        static const char *const two[] = {"e1 /w1 unix:uid:1", "e2 /w2 unix:uid:2"};
        double want;
        Fixture fx;

        (void) state;
        fx_init(&fx, 0);
        apply(&fx, one, 1);
        want = 1;
        fx_run_until(&fx, issued_at_least, &want);
        assert_errno(manager_set_key_type(fx.m, _WARDEN_KEY_TYPE_MAX), EINVAL);
        assert_errno(manager_set_key_type(fx.m, (WardenKeyType) -1), EINVAL);
        assert_ok(manager_set_key_type(fx.m, WARDEN_KEY_EC_P384));
        /* A new entry gets the new key type; the cached SVID keeps its key. */
        apply(&fx, two, 2);
        want = 2;
        fx_run_until(&fx, issued_at_least, &want);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);

                assert_int_equal(leaf_bits(fx_find(s, "e1")), 256);
                assert_int_equal(leaf_bits(fx_find(s, "e2")), 384);
        }
        /* ... until its renewal. */
        fx_advance(&fx, 51);
        manager_tick(fx.m);
        want = 4;
        fx_run_until(&fx, issued_at_least, &want);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);

                assert_int_equal(leaf_bits(fx_find(s, "e1")), 384);
        }
        fx_done(&fx);
}
