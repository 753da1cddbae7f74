/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore change events: which writes append which events, none for failed writes
 * or writes that serve nothing new, batches, paging, pruning, ids across reopen and
 * pruning, the migration that adds the table, argument checks, timing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "ds.h"
#include "ds_sqlite.h"
#include "metrics.h"
#include "test_ds.h"
#include "testlib.h"

#define NODE1 "spiffe://" TD "/warden/agent/join_token/n1"
#define NODE2 "spiffe://" TD "/warden/agent/join_token/n2"
#define PARTNER "partner.example"

typedef struct Want {
        DsEventKind kind;
        const char *key;
} Want;

static uint64_t last_id(Datastore *ds) {
        uint64_t id = UINT64_MAX;

        assert_ok(ds_last_event_id(ds, &id));
        return id;
}

/* The events after after_id must be exactly want[0..n), with consecutive ids from
 * after_id + 1 and times in [t0, now]. */
static void assert_events(Datastore *ds, uint64_t after_id, const Want *want, size_t n, time_t t0) {
        DsEvent *ev = NULL;
        size_t got = SIZE_MAX;

        assert_ok(ds_list_events(ds, after_id, DS_EVENTS_PAGE_MAX, &ev, &got));
        for (size_t i = 0; i < got && i < n; i++) {
                if (ev[i].kind != want[i].kind || !streq(ev[i].key, want[i].key))
                        print_message("event %zu: got %d %s, want %d %s\n", i, (int) ev[i].kind,
                                      ev[i].key, (int) want[i].kind, want[i].key);
                assert_int_equal(ev[i].id, after_id + 1 + i);
                assert_int_equal(ev[i].kind, want[i].kind);
                assert_string_equal(ev[i].key, want[i].key);
                assert_true(ev[i].at >= (int64_t) t0 && ev[i].at <= (int64_t) time(NULL));
        }
        assert_int_equal(got, n);
        ds_event_array_free(ev, got);
}

static AttestedAgent *agent_new(const char *id, const char *serial) {
        AttestedAgent *a = NULL;

        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup(id);
        a->attestation_type = strdup("join_token");
        a->serial = strdup(serial);
        assert_ok(selector_set_add_string(&a->selectors, "warden:agent_id:x", NULL));
        return a;
}

static void test_fresh_database(void **state) {
        DsFixture *f = *state;
        DsEvent *ev = (DsEvent *) 1;
        size_t n = 1;

        assert_int_equal(last_id(f->ds), 0);
        assert_ok(ds_list_events(f->ds, 0, 1, &ev, &n));
        assert_null(ev);
        assert_int_equal(n, 0);
        assert_int_equal(ds_prune_events(f->ds, INT64_MAX), 0);
        assert_int_equal(last_id(f->ds), 0);
        ds_event_array_free(NULL, 0);
}

/* Every kind of write, in order; the writes that change nothing served add nothing. */
static void test_every_write_kind(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *upd = NULL;
        _cleanup_(attested_agent_freep) AttestedAgent *a = agent_new(NODE1, "0a");
        _cleanup_(attested_agent_freep) AttestedAgent *re = agent_new(NODE1, "0b");
        const uint8_t bundle[] = {1, 2, 3};
        time_t t0 = time(NULL);
        uint64_t seq = test_ds_seq(f->ds);

        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        assert_ok(entry_copy(e, &upd));
        upd->x509_svid_ttl = 99;
        assert_ok(ds_update_entry(f->ds, upd, NULL));
        assert_ok(ds_upsert_agent(f->ds, a));  /* attest */
        assert_ok(ds_upsert_agent(f->ds, re)); /* re-attest */
        assert_ok(ds_set_agent_banned(f->ds, NODE1, true));
        assert_ok(ds_set_agent_banned(f->ds, NODE1, false));
        /* Not changes: SVID renewal, last seen, join tokens, metadata. */
        assert_ok(ds_update_agent_svid(f->ds, NODE1, "0c", 1234));
        assert_ok(ds_touch_agent(f->ds, NODE1, 5678));
        assert_ok(ds_create_join_token(f->ds, "tok", INT64_MAX, NODE1));
        assert_ok(ds_consume_join_token(f->ds, "tok", 1, NULL));
        assert_int_equal(ds_prune_join_tokens(f->ds, INT64_MAX), 1);
        assert_ok(ds_set_meta(f->ds, "k", 1));
        assert_ok(ds_set_bundle(f->ds, PARTNER, bundle, sizeof(bundle)));
        assert_ok(ds_delete_bundle(f->ds, PARTNER));
        assert_ok(ds_delete_entry(f->ds, e->id));
        assert_ok(ds_delete_agent(f->ds, NODE1));

        const Want want[] = {
                {DS_EVENT_ENTRY, e->id},    /* create */
                {DS_EVENT_ENTRY, e->id},    /* update */
                {DS_EVENT_AGENT, NODE1},    /* attest */
                {DS_EVENT_AGENT, NODE1},    /* re-attest */
                {DS_EVENT_AGENT, NODE1},    /* ban */
                {DS_EVENT_AGENT, NODE1},    /* unban */
                {DS_EVENT_BUNDLE, PARTNER}, /* set */
                {DS_EVENT_BUNDLE, PARTNER}, /* delete */
                {DS_EVENT_ENTRY, e->id},    /* delete */
                {DS_EVENT_AGENT, NODE1},    /* delete */
        };
        assert_events(f->ds, 0, want, ELEMENTSOF(want), t0);
        assert_int_equal(last_id(f->ds), ELEMENTSOF(want));
        /* One change sequence step per event here (no batch). */
        assert_int_equal(test_ds_seq(f->ds), seq + ELEMENTSOF(want));
        /* A tail from the middle. */
        assert_events(f->ds, 6, want + 6, ELEMENTSOF(want) - 6, t0);
}

/* A failed write rolls its event back with everything else. */
static void test_failed_writes_add_nothing(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *b =
                test_entry_new("spiffe://" TD "/b", NODE1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *dup = NULL, *fresh = NULL, *clash = NULL;
        _cleanup_(entry_freep) Entry *unknown =
                test_entry_new("spiffe://" TD "/u", NODE1, "unix:uid:9", NULL);
        Entry *batch[2];
        size_t bad = SIZE_MAX;
        uint64_t last, seq;

        batch[0] = a;
        batch[1] = b;
        assert_ok(ds_create_entries(f->ds, batch, 2, NULL));
        last = last_id(f->ds);
        assert_int_equal(last, 2);
        seq = test_ds_seq(f->ds);

        /* A batch whose second entry duplicates a stored one: the first is not kept. */
        assert_ok(entry_copy(a, &dup));
        free(dup->id);
        dup->id = NULL;
        fresh = test_entry_new("spiffe://" TD "/c", NODE1, "unix:uid:1", NULL);
        batch[0] = fresh;
        batch[1] = dup;
        assert_errno(ds_create_entries(f->ds, batch, 2, &bad), EEXIST);
        assert_int_equal(bad, 1);
        /* The same id as a stored entry. */
        free(fresh->id);
        fresh->id = strdup(a->id);
        assert_errno(ds_create_entries(f->ds, &fresh, 1, NULL), EEXIST);
        /* An update that would duplicate another entry; unknown ids. */
        assert_ok(entry_copy(b, &clash));
        free(clash->spiffe_id);
        clash->spiffe_id = strdup(a->spiffe_id);
        assert_errno(ds_update_entry(f->ds, clash, NULL), EEXIST);
        unknown->id = strdup("ffffffffffffffffffffffffffffffff");
        assert_errno(ds_update_entry(f->ds, unknown, NULL), ENOENT);
        assert_errno(ds_delete_entry(f->ds, unknown->id), ENOENT);
        assert_errno(ds_set_agent_banned(f->ds, NODE2, true), ENOENT);
        assert_errno(ds_delete_agent(f->ds, NODE2), ENOENT);
        assert_errno(ds_delete_bundle(f->ds, PARTNER), ENOENT);

        assert_int_equal(last_id(f->ds), last);
        assert_events(f->ds, last, NULL, 0, 0);
        assert_int_equal(test_ds_seq(f->ds), seq);
        /* The next write takes the next id: nothing was used up. */
        assert_ok(ds_delete_entry(f->ds, a->id));
        assert_events(f->ds, last, &(Want){DS_EVENT_ENTRY, a->id}, 1, 0);
}

/* N entries of a batch: N events in batch order, one change sequence step. */
static void test_batch(void **state) {
        DsFixture *f = *state;
        enum { N = 25 };
        Entry *v[N];
        Want want[N];
        char id[64];
        time_t t0 = time(NULL);
        uint64_t seq = test_ds_seq(f->ds);

        for (size_t i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "spiffe://" TD "/w/%zu", i);
                v[i] = test_entry_new(id, NODE1, "unix:uid:1", NULL);
        }
        /* A caller-chosen id that sorts before the random ones: order is the batch's. */
        v[N - 1]->id = strdup("00000000000000000000000000000000");
        assert_ok(ds_create_entries(f->ds, v, N, NULL));
        for (size_t i = 0; i < N; i++)
                want[i] = (Want){DS_EVENT_ENTRY, v[i]->id};
        assert_events(f->ds, 0, want, N, t0);
        assert_int_equal(last_id(f->ds), N);
        assert_int_equal(test_ds_seq(f->ds), seq + 1);
        for (size_t i = 0; i < N; i++)
                entry_free(v[i]);
}

/* Bundles set n times: n events with consecutive ids from 1. */
static void write_bundles(Datastore *ds, size_t n) {
        for (size_t i = 0; i < n; i++)
                assert_ok(ds_set_bundle(ds, PARTNER, (const uint8_t *) "b", 1));
}

static void test_paging(void **state) {
        DsFixture *f = *state;
        const size_t limits[] = {1, 7, 25, DS_EVENTS_PAGE_MAX};
        DsEvent *ev = NULL;
        size_t n = 0;

        write_bundles(f->ds, 25);
        for (size_t k = 0; k < ELEMENTSOF(limits); k++) {
                uint64_t after = 0, pages = 0;
                for (;;) {
                        assert_ok(ds_list_events(f->ds, after, limits[k], &ev, &n));
                        assert_true(n <= limits[k]);
                        for (size_t i = 0; i < n; i++)
                                assert_int_equal(ev[i].id, after + 1 + i);
                        if (n > 0)
                                after = ev[n - 1].id;
                        ds_event_array_free(ev, n);
                        pages++;
                        if (n < limits[k])
                                break;
                }
                assert_int_equal(after, 25);
                assert_int_equal(pages, 25 / limits[k] + 1);
        }
        assert_ok(ds_list_events(f->ds, 25, 10, &ev, &n));
        assert_int_equal(n, 0);
        assert_ok(ds_list_events(f->ds, UINT64_MAX, 10, &ev, &n));
        assert_int_equal(n, 0);
        assert_ok(ds_list_events(f->ds, (uint64_t) INT64_MAX + 1, 10, &ev, &n));
        assert_int_equal(n, 0);

        /* Limits and arguments. */
        assert_errno(ds_list_events(f->ds, 0, 0, &ev, &n), EINVAL);
        assert_errno(ds_list_events(f->ds, 0, DS_EVENTS_PAGE_MAX + 1, &ev, &n), EINVAL);
        assert_errno(ds_list_events(f->ds, 0, SIZE_MAX, &ev, &n), EINVAL);
        assert_errno(ds_list_events(NULL, 0, 1, &ev, &n), EINVAL);
        assert_errno(ds_list_events(f->ds, 0, 1, NULL, &n), EINVAL);
        assert_errno(ds_list_events(f->ds, 0, 1, &ev, NULL), EINVAL);
        assert_errno(ds_last_event_id(NULL, &(uint64_t){0}), EINVAL);
        assert_errno(ds_last_event_id(f->ds, NULL), EINVAL);
        assert_errno(ds_prune_events(NULL, 0), EINVAL);
}

/* Sets the time of every event to id * 100, through the backend's connection. */
static void age_events(Datastore *ds) {
        assert_int_equal(sqlite3_exec(ds_sqlite(ds)->db, "UPDATE events SET at = id * 100", NULL,
                                      NULL, NULL),
                         SQLITE_OK);
}

static void test_prune(void **state) {
        DsFixture *f = *state;
        DsEvent *ev = NULL;
        size_t n = 0;

        write_bundles(f->ds, 10);
        age_events(f->ds);
        /* at < 350: ids 1, 2, 3. */
        assert_int_equal(ds_prune_events(f->ds, 350), 3);
        assert_int_equal(ds_prune_events(f->ds, 350), 0);
        assert_ok(ds_list_events(f->ds, 0, 100, &ev, &n));
        assert_int_equal(n, 7);
        assert_int_equal(ev[0].id, 4);
        assert_int_equal(ev[0].at, 400);
        ds_event_array_free(ev, n);
        assert_int_equal(last_id(f->ds), 10);

        /* Everything is old: all but the newest go. */
        assert_int_equal(ds_prune_events(f->ds, INT64_MAX), 6);
        assert_int_equal(ds_prune_events(f->ds, INT64_MAX), 0);
        assert_ok(ds_list_events(f->ds, 0, 100, &ev, &n));
        assert_int_equal(n, 1);
        assert_int_equal(ev[0].id, 10);
        ds_event_array_free(ev, n);
        assert_int_equal(last_id(f->ds), 10);

        /* Ids go on after pruning, and across a reopen. */
        write_bundles(f->ds, 1);
        assert_int_equal(last_id(f->ds), 11);
        test_ds_reopen(f);
        assert_int_equal(last_id(f->ds), 11);
        assert_int_equal(ds_prune_events(f->ds, INT64_MAX), 1);
        test_ds_reopen(f);
        assert_int_equal(last_id(f->ds), 11);
        write_bundles(f->ds, 1);
        assert_events(f->ds, 11, &(Want){DS_EVENT_BUNDLE, PARTNER}, 1, 0);

        /* Even with the table emptied behind our back, no id is handed out twice. */
        assert_int_equal(sqlite3_exec(ds_sqlite(f->ds)->db, "DELETE FROM events", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(last_id(f->ds), 12);
        test_ds_reopen(f);
        assert_int_equal(last_id(f->ds), 12);
        write_bundles(f->ds, 1);
        assert_events(f->ds, 12, &(Want){DS_EVENT_BUNDLE, PARTNER}, 1, 0);
        /* A reader at 0 sees the gap: its first event is not 1. */
        assert_ok(ds_list_events(f->ds, 0, 100, &ev, &n));
        assert_int_equal(n, 1);
        assert_int_equal(ev[0].id, 13);
        ds_event_array_free(ev, n);
}

static void test_ids_across_reopen(void **state) {
        DsFixture *f = *state;
        _cleanup_(attested_agent_freep) AttestedAgent *a = agent_new(NODE2, "01");

        write_bundles(f->ds, 3);
        test_ds_reopen(f);
        assert_int_equal(last_id(f->ds), 3);
        assert_ok(ds_upsert_agent(f->ds, a));
        assert_events(f->ds, 3, &(Want){DS_EVENT_AGENT, NODE2}, 1, 0);
        test_ds_reopen(f);
        assert_int_equal(last_id(f->ds), 4);
        assert_ok(ds_delete_agent(f->ds, NODE2));
        assert_int_equal(last_id(f->ds), 5);
}

static bool has_object(sqlite3 *db, const char *type, const char *name) {
        sqlite3_stmt *st = NULL;
        bool found;

        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT 1 FROM sqlite_master WHERE type = ?1 "
                                            "AND name = ?2",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, type, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        return found;
}

/* A schema version 3 database keeps its rows, gets an empty events table, and its
 * next write is event 1. */
static void test_migration_from_v3(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *path = NULL;
        _cleanup_(ds_closep) Datastore *ds = NULL;
        _cleanup_(entry_freep) Entry *got = NULL;
        _cleanup_(attested_agent_freep) AttestedAgent *agent = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        sqlite3 *db = NULL;
        size_t len = 0;
        int v = 0;

        assert_true(asprintf(&path, "%s/v3.db", f->dir) > 0);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_ok(ds_migrate(db, 3));
        assert_ok(ds_migrate_read_version(db, &v));
        assert_int_equal(v, 3);
        assert_false(has_object(db, "table", "events"));
        assert_int_equal(
                sqlite3_exec(db,
                             "INSERT INTO entries (id, spiffe_id, parent_id, selectors_key, "
                             "revision, created_at) VALUES ('old1', 'spiffe://" TD "/old', "
                             "'" NODE1 "', '4:unix5:uid:1', 3, 77);"
                             "INSERT INTO entry_selectors VALUES ('old1', 'unix', 'uid:1');"
                             "INSERT INTO agents (spiffe_id, attestation_type, created_at) "
                             "VALUES ('" NODE1 "', 'join_token', 5);"
                             "INSERT INTO bundles VALUES ('" PARTNER "', x'0102', 6);"
                             "UPDATE meta SET value = 12 WHERE key = 'change_seq';",
                             NULL, NULL, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_ok(ds_open_sqlite(path, &ds));
        assert_int_equal(ds_schema_version(ds), DS_SCHEMA_VERSION);
        db = ds_sqlite(ds)->db;
        assert_true(has_object(db, "table", "events"));
        assert_true(has_object(db, "index", "events_at"));
        assert_ok(ds_get_entry(ds, "old1", &got));
        assert_string_equal(got->spiffe_id, "spiffe://" TD "/old");
        assert_int_equal(got->revision, 3);
        assert_ok(ds_get_agent(ds, NODE1, &agent));
        assert_int_equal(agent->created_at, 5);
        assert_ok(ds_get_bundle(ds, PARTNER, &data, &len));
        assert_int_equal(len, 2);
        assert_int_equal(test_ds_seq(ds), 12);
        assert_int_equal(last_id(ds), 0);
        assert_events(ds, 0, NULL, 0, 0);

        assert_ok(ds_delete_entry(ds, "old1"));
        assert_events(ds, 0, &(Want){DS_EVENT_ENTRY, "old1"}, 1, 0);
        assert_int_equal(test_ds_seq(ds), 13);
        ds = ds_close(ds);
        assert_ok(ds_sqlite_file_schema_version(path, &v));
        assert_int_equal(v, DS_SCHEMA_VERSION);
}

/* The new operations are timed under their names, like the others. */
static void test_timing(void **state) {
        DsFixture *f = *state;
        MetricsRegistry *reg = NULL;
        MetricSeries *series = NULL;
        Metric *seconds = NULL;
        DsEvent *ev = NULL;
        size_t n = 0;
        uint64_t id;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_histogram_new(reg, "ds_seconds", "help", METRICS_LABELS("op"), NULL, 0,
                                        &seconds));
        ds_set_metrics(f->ds, seconds);
        assert_ok(ds_list_events(f->ds, 0, 1, &ev, &n));
        assert_ok(ds_last_event_id(f->ds, &id));
        assert_ok(ds_prune_events(f->ds, 0));
        ds_set_metrics(f->ds, NULL);
        const char *const ops[] = {"list_events", "last_event_id", "prune_events"};
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                assert_ok(metrics_series_get(seconds, METRICS_LABELS(ops[i]), &series));
                assert_int_equal(metrics_series_value(series), 1);
        }
        metrics_registry_free(reg);
}

int test_ds_events_run(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fresh_database, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_every_write_kind, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_failed_writes_add_nothing, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_batch, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_paging, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_prune, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_ids_across_reopen, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_migration_from_v3, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_timing, test_ds_setup, test_ds_teardown),
        };
        return cmocka_run_group_tests_name("ds_events", tests, NULL, NULL);
}
