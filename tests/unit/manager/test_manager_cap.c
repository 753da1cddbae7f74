/* SPDX-License-Identifier: Apache-2.0 */
/* The entry cap (ManagerConfig.max_entries: entries beyond it ignored and counted), and
 * how entries are stored: what the snapshots hold is shared with the manager and between
 * snapshots, not copied, and is made anew only when the entry or its SVID changed. */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "manager_fixture.h"
#include "pb_util.h"
#include "testlib.h"

void test_manager_cap(void **state);
void test_manager_cap_default(void **state);
void test_manager_sharing(void **state);

static double over_cap(Fixture *fx) {
        MetricSeries *s = NULL;

        assert_ok(metrics_series_get(
                metrics_registry_find(fx->registry, METRIC_AGENT_ENTRIES_OVER_CAP), NULL, &s));
        return s ? metrics_series_value(s) : 0;
}

static bool signed_at_least(Fixture *fx, const void *arg) {
        return fx_signed(fx) >= *(const size_t *) arg;
}

static size_t n_svids(Fixture *fx) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx->m);

        assert_non_null(s);
        return s->n_svids;
}

/* A cap of 3: the first three entries of a message are kept, two more are ignored (and
 * counted); a deletion makes room for one; updates of kept entries are not refused. */
void test_manager_cap(void **state) {
        static const char *const five[] = {"e1 /w1 unix:uid:1", "e2 /w2 unix:uid:2",
                                           "e3 /w3 unix:uid:3", "e4 /w4 unix:uid:4",
                                           "e5 /w5 unix:uid:5"};
        static const char *const e6[] = {"e6 /w6 unix:uid:6", "e7 /w7 unix:uid:7"};
        static const char *const e2_again[] = {"e2 /w2 unix:uid:2,unix:gid:9 2"};
        size_t want = 3, n_entries = 0, n_signed = 0;
        Fixture fx;

        (void) state;
        fx_init_max(&fx, 0, 3);
        assert_int_equal(fx.m->max_entries, 3);
        fx_apply(&fx, true, five, 5);
        assert_int_equal(n_svids(&fx), 3);
        assert_true(over_cap(&fx) == 2);
        fx_run_until(&fx, signed_at_least, &want);
        manager_get_counts(fx.m, &n_entries, &n_signed);
        assert_int_equal(n_entries, 3);
        assert_int_equal(n_signed, 3);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_non_null(fx_find(s, "e1"));
                assert_non_null(fx_find(s, "e3"));
                assert_null(fx_find(s, "e4"));
                assert_null(fx_find(s, "e5"));
        }

        /* full: all at the cap; an update of a kept entry passes */
        fx_apply(&fx, false, e2_again, 1);
        assert_int_equal(n_svids(&fx), 3);
        assert_true(over_cap(&fx) == 2);

        /* a delta deleting e1 and adding e6, e7: room for e6 only */
        Warden__Node__V1__SyncResponse *resp = fx_sync(&fx, false, e6, 2);
        resp->deleted_entry_ids = calloc(1, sizeof(char *));
        assert_non_null(resp->deleted_entry_ids);
        resp->deleted_entry_ids[0] = strdup("e1");
        resp->n_deleted_entry_ids = 1;
        assert_ok(manager_apply_sync(fx.m, resp));
        pb_free(resp);
        assert_true(over_cap(&fx) == 3);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_int_equal(s->n_svids, 3);
                assert_null(fx_find(s, "e1"));
                assert_non_null(fx_find(s, "e2"));
                assert_non_null(fx_find(s, "e3"));
                /* deletions go first: e6 took e1's place, e7 found none */
                assert_non_null(fx_find(s, "e6"));
                assert_null(fx_find(s, "e7"));
        }

        /* a full snapshot replacing all three with three others: the cap counts what
         * stays, not the entries about to go */
        static const char *const other[] = {"f1 /x1 unix:uid:11", "f2 /x2 unix:uid:12",
                                            "f3 /x3 unix:uid:13", "f4 /x4 unix:uid:14"};
        fx_apply(&fx, true, other, 4);
        assert_true(over_cap(&fx) == 4);
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_int_equal(s->n_svids, 3);
                assert_non_null(fx_find(s, "f1"));
                assert_non_null(fx_find(s, "f3"));
                assert_null(fx_find(s, "f4"));
                assert_null(fx_find(s, "e2"));
        }
        fx_done(&fx);
}

/* Without a cap configured the default holds, well above the old 10,000. */
void test_manager_cap_default(void **state) {
        Fixture fx;

        (void) state;
        fx_init(&fx, 0);
        assert_int_equal(fx.m->max_entries, MANAGER_ENTRIES_MAX);
        assert_int_equal(MANAGER_ENTRIES_MAX, 100000);
        fx_done(&fx);
}

/* Unchanged entries are the very same objects in the manager and in consecutive
 * snapshots; a re-sent identical entry keeps them; a changed entry gets a new
 * CachedSvid but shares its SVID until re-signed. */
void test_manager_sharing(void **state) {
        static const char *const v1[] = {"e1 /w1 unix:uid:1 1", "e2 /w2 unix:uid:2 1"};
        static const char *const v2[] = {"e1 /w1 unix:uid:1 1", "e2 /w2 unix:uid:2,unix:gid:3 2"};
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s1 = NULL, *s2 = NULL, *s3 = NULL;
        size_t want = 2;
        Fixture fx;

        (void) state;
        fx_init(&fx, 0);
        fx_apply(&fx, true, v1, 2);
        fx_run_until(&fx, signed_at_least, &want);
        s1 = manager_snapshot(fx.m);
        assert_non_null(fx_find(s1, "e1")->chain_der);
        assert_ptr_equal(fx_find(s1, "e1"), fx.m->entries[0]->pub);
        assert_ptr_equal(fx_find(s1, "e1")->info, fx.m->entries[0]->info);
        assert_ptr_equal(fx_find(s1, "e1")->svid, fx.m->entries[0]->svid);
        assert_ptr_equal(fx_find(s1, "e1")->chain_der, fx.m->entries[0]->svid->bytes);
        assert_ptr_equal(fx_find(s1, "e1")->key_pkcs8, svid_data_key(fx.m->entries[0]->svid));
        /* one allocation per entry, selectors at their size (not GREEDY_REALLOC's 8) */
        assert_true(fx.m->entries[0]->info->packed);
        assert_int_equal(fx.m->entries[0]->info->selectors.allocated, 1);

        /* the same entries again (a reconnect's full snapshot): nothing new, no signing */
        unsigned signed_before = __atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST);
        fx_apply(&fx, true, v1, 2);
        s2 = manager_snapshot(fx.m);
        assert_true(s2->version > s1->version);
        assert_ptr_equal(fx_find(s1, "e1"), fx_find(s2, "e1"));
        assert_ptr_equal(fx_find(s1, "e2"), fx_find(s2, "e2"));
        for (int i = 0; i < 10; i++)
                (void) sd_event_run(fx.event, 20000);
        assert_int_equal(__atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST), signed_before);

        /* e2 changed: a new CachedSvid with the old SVID until re-signed; e1 untouched */
        fx_apply(&fx, true, v2, 2);
        s3 = manager_snapshot(fx.m);
        assert_ptr_equal(fx_find(s3, "e1"), fx_find(s1, "e1"));
        assert_ptr_not_equal(fx_find(s3, "e2"), fx_find(s1, "e2"));
        assert_ptr_equal(fx_find(s3, "e2")->svid, fx_find(s1, "e2")->svid);
        assert_int_equal(fx_find(s3, "e2")->selectors.n, 2);
        assert_int_equal(fx_find(s1, "e2")->selectors.n, 1); /* the old one is intact */
        want = signed_before + 1;
        while (__atomic_load_n(&fx.signed_n, __ATOMIC_SEQ_CST) < want)
                assert_true(sd_event_run(fx.event, 25000) >= 0);
        for (int i = 0; i < 400; i++) {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                if (fx_find(s, "e2")->svid != fx_find(s1, "e2")->svid)
                        break;
                assert_true(sd_event_run(fx.event, 25000) >= 0);
        }
        {
                _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx.m);
                assert_ptr_not_equal(fx_find(s, "e2")->svid, fx_find(s1, "e2")->svid);
                assert_ptr_equal(fx_find(s, "e1"), fx_find(s1, "e1"));
                /* the old snapshots still hold what they had */
                assert_non_null(fx_find(s1, "e2")->chain_der);
                assert_true(fx_find(s1, "e2")->chain_len > 0);
        }
        fx_done(&fx);
}
