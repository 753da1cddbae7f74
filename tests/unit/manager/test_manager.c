/* SPDX-License-Identifier: Apache-2.0 */
/* The manager's entry set, SVID signing, rotation and retries, driven with an injected
 * clock and a real in-process signer. JWT tests are in test_manager_jwt.c. */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "manager_fixture.h"
#include "ossl_cleanup.h"
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
void test_manager_metrics(void **state);
void test_manager_key_type(void **state);
void test_manager_cap(void **state);
void test_manager_cap_default(void **state);
void test_manager_sharing(void **state);

static bool signed_at_least(Fixture *fx, const void *arg) {
        return fx_signed(fx) >= *(const size_t *) arg;
}

static char *serial_of(Fixture *fx, const char *entry_id, const char *spiffe_id) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx->m);

        return fx_check_svid(fx, fx_find(s, entry_id), spiffe_id);
}

typedef struct SerialChange {
        const char *entry_id;
        const char *old_serial;
} SerialChange;

static bool serial_changed(Fixture *fx, const void *arg) {
        const SerialChange *sc = arg;
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx->m);
        const CachedSvid *c = fx_find(s, sc->entry_id);
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *serial = NULL;

        if (!c || !c->chain_der)
                return false;
        assert_ok(warden_x509_chain_from_der(c->chain_der, c->chain_len, &chain));
        assert_ok(warden_x509_serial_hex(sk_X509_value(chain, 0), &serial));
        return !streq(serial, sc->old_serial);
}

static void test_renew_time(void **state) {
        /* lifetime 110 s: half-life 55 s, jitter +-5.5 s */
        assert_int_equal(manager_renew_time(1000, 1110, 0.5), 1055);
        assert_int_equal(manager_renew_time(1000, 1110, 0.0), 1050);
        assert_int_equal(manager_renew_time(1000, 1110, 1.0), 1060);
        assert_int_equal(manager_renew_time(1000, 1110, 7.0), 1060);
        assert_int_equal(manager_renew_time(1000, 1000, 0.5), 1000);
        /* 1 h SVID (backdated 10 s): between 27:00 and 33:00 after notBefore */
        for (double u = 0; u <= 1.0; u += 0.125) {
                int64_t t = manager_renew_time(0, 3610, u);
                assert_true(t >= 3610 / 2 - 181 && t <= 3610 / 2 + 181);
        }
}

static void test_retry_delay(void **state) {
        assert_int_equal(manager_retry_delay(1), 1);
        assert_int_equal(manager_retry_delay(2), 2);
        assert_int_equal(manager_retry_delay(4), 8);
        assert_int_equal(manager_retry_delay(7), MANAGER_RETRY_MAX_SEC);
        assert_int_equal(manager_retry_delay(100), MANAGER_RETRY_MAX_SEC);
}

/* Only entries a workload can match get an SVID: one without selectors and a node alias
 * are dropped; signed SVIDs chain to the CA and carry the entry's ID. */
static void test_sync_and_sign(void **state) {
        static const char *const entries[] = {
                "e1 /w1 unix:uid:1000",
                "e2 /w2 unix:uid:1001,unix:gid:5",
                "e3 /w3 -",
        };
        Fixture fx;
        size_t want = 2;
        Warden__Node__V1__SyncResponse *resp;

        fx_init(&fx, 0);
        assert_null(manager_snapshot(fx.m)); /* nothing before the first sync */
        resp = fx_sync(&fx, true, entries, 3);
        /* plus a node alias */
        resp->entries = realloc(resp->entries, 4 * sizeof(*resp->entries));
        resp->entries[3] = calloc(1, sizeof(Warden__Types__V1__Entry));
        warden__types__v1__entry__init(resp->entries[3]);
        resp->entries[3]->id = strdup("e4");
        resp->entries[3]->spiffe_id = strdup("spiffe://" FX_TD "/alias");
        resp->entries[3]->node = true;
        resp->n_entries = 4;
        assert_ok(manager_apply_sync(fx.m, resp));
        pb_free(resp);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_non_null(s);
                assert_int_equal(s->n_svids, 2); /* pending, published at once */
                assert_null(s->svids[0]->chain_der);
                assert_string_equal(s->svids[0]->entry_id, "e1");
                assert_true(warden_bundle_equal(s->bundle, fx.bundle));
        }
        fx_run_until(&fx, signed_at_least, &want);
        free(serial_of(&fx, "e1", "spiffe://" FX_TD "/w1"));
        free(serial_of(&fx, "e2", "spiffe://" FX_TD "/w2"));
        /* both CSRs went in one batch */
        assert_int_equal(__atomic_load_n(&fx.sign_calls, __ATOMIC_SEQ_CST), 1);
        size_t n_entries, n_svids;
        manager_get_counts(fx.m, &n_entries, &n_svids);
        assert_int_equal(n_entries, 2);
        assert_int_equal(n_svids, 2);
        assert_true(fx.snapshots >= 2);
        fx_done(&fx);
}

/* Deleted entries leave the very next snapshot (full snapshot and delta). */
static void test_delete(void **state) {
        static const char *const three[] = {
                "e1 /w1 unix:uid:1",
                "e2 /w2 unix:uid:2",
                "e3 /w3 unix:uid:3",
        };
        Fixture fx;
        size_t want = 3;
        Warden__Node__V1__SyncResponse *resp;

        fx_init(&fx, 0);
        fx_apply(&fx, true, three, 3);
        fx_run_until(&fx, signed_at_least, &want);
        fx_apply(&fx, true, three, 2); /* e3 gone */
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_int_equal(s->n_svids, 2);
                assert_null(fx_find(s, "e3"));
                assert_non_null(fx_find(s, "e1")->chain_der); /* kept, not re-signed */
        }
        resp = fx_sync(&fx, false, NULL, 0);
        resp->deleted_entry_ids = calloc(1, sizeof(char *));
        resp->deleted_entry_ids[0] = strdup("e1");
        resp->n_deleted_entry_ids = 1;
        assert_ok(manager_apply_sync(fx.m, resp));
        pb_free(resp);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_int_equal(s->n_svids, 1);
                assert_string_equal(s->svids[0]->entry_id, "e2");
        }
        assert_int_equal(__atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST), 3);
        fx_done(&fx);
}

/* A snapshot in parts (docs/sync.md): nothing is dropped or published before the last
 * part; then exactly the entries of all parts are held, the old SVIDs kept. */
static void test_snapshot_parts(void **state) {
        static const char *const three[] = {
                "e1 /w1 unix:uid:1",
                "e2 /w2 unix:uid:2",
                "e3 /w3 unix:uid:3",
        };
        static const char *const part2[] = {"e4 /w4 unix:uid:4"};
        Fixture fx;
        size_t want = 3;
        Warden__Node__V1__SyncResponse *resp;
        uint64_t version;

        (void) state;
        fx_init(&fx, 0);
        fx_apply(&fx, true, three, 3);
        fx_run_until(&fx, signed_at_least, &want);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                version = s->version;
        }
        resp = fx_sync(&fx, true, three, 2); /* part 1: e1, e2 */
        resp->more = true;
        assert_ok(manager_apply_sync(fx.m, resp));
        pb_free(resp);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_non_null(fx_find(s, "e3"));     /* not dropped before the last part */
                assert_int_equal(s->version, version); /* nothing published yet */
        }
        resp = fx_sync(&fx, false, part2, 1); /* part 2: e4, the last */
        assert_ok(manager_apply_sync(fx.m, resp));
        pb_free(resp);
        want = 3;
        fx_run_until(&fx, signed_at_least, &want);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_int_equal(s->n_svids, 3);
                assert_null(fx_find(s, "e3"));
                assert_non_null(fx_find(s, "e1")->chain_der); /* kept */
                assert_non_null(fx_find(s, "e4"));
        }
        fx_done(&fx);
}

/* Rotation at half-life: nothing happens before, a new SVID after. */
static void test_rotation(void **state) {
        static const char *const one[] = {"e1 /w1 unix:uid:1"};
        Fixture fx;
        size_t want = 1;
        _cleanup_free_ char *serial = NULL;

        fx_init(&fx, 0);
        fx_apply(&fx, true, one, 1);
        fx_run_until(&fx, signed_at_least, &want);
        serial = serial_of(&fx, "e1", "spiffe://" FX_TD "/w1");
        /* notBefore = t0 - 10, lifetime 110 s: renewal between t0 + 39.5 and t0 + 50.5 */
        fx_advance(&fx, 39);
        manager_tick(fx.m);
        for (int i = 0; i < 8; i++)
                (void) sd_event_run(fx.event, 25000);
        assert_int_equal(__atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST), 1);
        fx_advance(&fx, 12);
        manager_tick(fx.m);
        SerialChange sc = {"e1", serial};
        fx_run_until(&fx, serial_changed, &sc);
        assert_int_equal(__atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST), 2);
        free(serial_of(&fx, "e1", "spiffe://" FX_TD "/w1"));
        fx_done(&fx);
}

/* A changed entry is signed again; a new SPIFFE ID drops the old SVID at once. */
static void test_entry_change(void **state) {
        static const char *const v1[] = {"e1 /w1 unix:uid:1 1", "e2 /w2 unix:uid:2 1"};
        static const char *const v2[] = {"e1 /w1 unix:uid:1 2", "e2 /w2 unix:uid:2 1"};
        static const char *const v3[] = {"e1 /w1 unix:uid:1 2", "e2 /moved unix:uid:2 2"};
        Fixture fx;
        size_t want = 2;
        _cleanup_free_ char *s1 = NULL;

        fx_init(&fx, 0);
        fx_apply(&fx, true, v1, 2);
        fx_run_until(&fx, signed_at_least, &want);
        s1 = serial_of(&fx, "e1", "spiffe://" FX_TD "/w1");
        fx_apply(&fx, true, v2, 2); /* revision bump of e1 only */
        SerialChange sc = {"e1", s1};
        fx_run_until(&fx, serial_changed, &sc);
        assert_int_equal(__atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST), 3);
        fx_apply(&fx, true, v3, 2);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_string_equal(fx_find(s, "e2")->spiffe_id, "spiffe://" FX_TD "/moved");
                assert_null(fx_find(s, "e2")->chain_der);
        }
        fx_run_until(&fx, signed_at_least, &want);
        free(serial_of(&fx, "e2", "spiffe://" FX_TD "/moved"));
        fx_done(&fx);
}

static bool sign_calls_at_least(Fixture *fx, const void *arg) {
        return __atomic_load_n(&fx->sign_calls, __ATOMIC_SEQ_CST) >= *(const unsigned *) arg;
}

static bool nothing_in_flight(Fixture *fx, const void *arg) {
        for (size_t i = 0; i < fx->m->n_entries; i++)
                if (fx->m->entries[i]->in_flight)
                        return false;
        return true;
}

/* Server unreachable: retries with back-off; the cached SVID is served until it
 * expires and then leaves the snapshot; a Sync message makes it retry at once. */
static void test_failures(void **state) {
        static const char *const one[] = {"e1 /w1 unix:uid:1"};
        Fixture fx;
        size_t want = 1;
        unsigned calls;

        fx_init(&fx, 0);
        fx_apply(&fx, true, one, 1);
        fx_run_until(&fx, signed_at_least, &want);
        __atomic_store_n(&fx.fail, 1, __ATOMIC_SEQ_CST);
        fx_advance(&fx, 61); /* past renewal */
        manager_tick(fx.m);
        calls = 2;
        fx_run_until(&fx, sign_calls_at_least, &calls);
        fx_run_until(&fx, nothing_in_flight, NULL);
        assert_int_equal(fx.m->entries[0]->failures, 1);
        assert_int_equal(fx.m->entries[0]->retry_at, fx_now(&fx) + 1);
        assert_int_equal(fx_signed(&fx), 1); /* still served */
        manager_tick(fx.m);                  /* retry not due yet */
        for (int i = 0; i < 8; i++)
                (void) sd_event_run(fx.event, 25000);
        assert_int_equal(__atomic_load_n(&fx.sign_calls, __ATOMIC_SEQ_CST), 2);
        fx_advance(&fx, 1);
        manager_tick(fx.m);
        calls = 3;
        fx_run_until(&fx, sign_calls_at_least, &calls);
        fx_run_until(&fx, nothing_in_flight, NULL);
        assert_int_equal(fx.m->entries[0]->failures, 2);
        assert_int_equal(fx.m->entries[0]->retry_at, fx_now(&fx) + 2);
        /* expiry (notAfter = t0 + 100) */
        fx_advance(&fx, 40);
        fx.m->entries[0]->retry_at = fx_now(&fx) + 1000; /* keep it from retrying */
        manager_tick(fx.m);
        assert_int_equal(fx_signed(&fx), 0);
        /* the server is back: a Sync message resets the back-off */
        __atomic_store_n(&fx.fail, 0, __ATOMIC_SEQ_CST);
        fx_apply(&fx, true, one, 1);
        fx_run_until(&fx, signed_at_least, &want);
        free(serial_of(&fx, "e1", "spiffe://" FX_TD "/w1"));
        fx_done(&fx);
}

/* Batches hold at most MANAGER_BATCH_MAX CSRs. */
static void test_batches(void **state) {
        const size_t n = MANAGER_BATCH_MAX + 5;
        char **specs = calloc(n, sizeof(char *));
        Fixture fx;

        fx_init(&fx, 0);
        for (size_t i = 0; i < n; i++)
                assert_true(asprintf(&specs[i], "e%zu /w%zu unix:uid:%zu", i, i, i) > 0);
        fx_apply(&fx, true, (const char *const *) specs, n);
        fx_run_until(&fx, signed_at_least, &n);
        assert_int_equal(__atomic_load_n(&fx.sign_calls, __ATOMIC_SEQ_CST), 2);
        for (size_t i = 0; i < n; i++)
                free(specs[i]);
        free(specs);
        fx_done(&fx);
}

static void test_bad_input(void **state) {
        static const char *const one[] = {"e1 /w1 unix:uid:1"};
        Fixture fx;
        Warden__Node__V1__SyncResponse *resp;
        _cleanup_(warden_bundle_unrefp) WardenBundle *other = NULL;

        fx_init(&fx, 0);
        /* a bundle of another trust domain: nothing applied */
        resp = fx_sync(&fx, true, one, 1);
        pb_free(resp->bundle);
        assert_ok(warden_bundle_new("other.org", &other));
        assert_ok(pb_from_bundle(other, &resp->bundle));
        assert_errno(manager_apply_sync(fx.m, resp), EINVAL);
        assert_null(manager_snapshot(fx.m));
        /* an entry of another trust domain is skipped, the rest applies */
        pb_free(resp->bundle);
        resp->bundle = NULL;
        free(resp->entries[0]->spiffe_id);
        resp->entries[0]->spiffe_id = strdup("spiffe://other.org/w1");
        assert_ok(manager_apply_sync(fx.m, resp));
        pb_free(resp);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_non_null(s);
                assert_int_equal(s->n_svids, 0);
        }
        fx_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_renew_time),
                cmocka_unit_test(test_retry_delay),
                cmocka_unit_test(test_sync_and_sign),
                cmocka_unit_test(test_delete),
                cmocka_unit_test(test_snapshot_parts),
                cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_entry_change),
                cmocka_unit_test(test_failures),
                cmocka_unit_test(test_batches),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_jwt_cache_key),
                cmocka_unit_test(test_jwt_cache_lru),
                cmocka_unit_test(test_jwt_fetch_cached),
                cmocka_unit_test(test_jwt_fetch_fallback),
                cmocka_unit_test(test_jwt_fetch_coalesced),
                cmocka_unit_test(test_jwt_fetch_bad_args),
                cmocka_unit_test(test_jwt_cache_partition),
                cmocka_unit_test(test_jwt_fetch_rate),
                cmocka_unit_test(test_manager_metrics),
                cmocka_unit_test(test_manager_key_type),
                cmocka_unit_test(test_manager_cap),
                cmocka_unit_test(test_manager_cap_default),
                cmocka_unit_test(test_manager_sharing),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
