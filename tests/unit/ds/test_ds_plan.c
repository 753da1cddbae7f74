/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore at scale: the query plan of every cached statement (no full scan of a
 * table where an index answers, no sort), paging with every filter, the migration
 * that adds the indexes to an existing database, and the memory settings. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ds.h"
#include "ds_sqlite.h"
#include "test_ds.h"
#include "testlib.h"

#define NODE1 "spiffe://" TD "/warden/agent/join_token/n1"
#define NODE2 "spiffe://" TD "/warden/agent/join_token/n2"
#define N_ENTRIES 60

/* Entries below two agents and one node alias; every third one holds unix:gid:7,
 * every tenth is a node alias, every fifth has a task. */
static void store_entries(Datastore *ds) {
        Entry *v[N_ENTRIES];
        char id[64], uid[32];

        for (size_t i = 0; i < N_ENTRIES; i++) {
                snprintf(id, sizeof(id), "spiffe://" TD "/w/%zu", i % 7);
                snprintf(uid, sizeof(uid), "unix:uid:%zu", i);
                v[i] = test_entry_new(id, i % 2 ? NODE1 : NODE2, uid,
                                      i % 3 == 0 ? "unix:gid:7" : NULL, NULL);
                if (i % 10 == 0) {
                        selector_set_done(&v[i]->selectors);
                        assert_ok(selector_set_add_string(&v[i]->selectors,
                                                          "warden:agent_id:" NODE1, NULL));
                        assert_ok(selector_set_add_string(&v[i]->selectors, uid, NULL));
                        v[i]->node = true;
                }
                if (i % 5 == 0)
                        v[i]->task = strdup("batch");
        }
        assert_ok(ds_create_entries(ds, v, N_ENTRIES, NULL));
        for (size_t i = 0; i < N_ENTRIES; i++)
                entry_free(v[i]);
}

static AttestedAgent *agent_new(const char *id) {
        AttestedAgent *a = NULL;

        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup(id);
        a->attestation_type = strdup("join_token");
        a->serial = strdup("0a");
        assert_ok(selector_set_add_string(&a->selectors, "warden:agent_id:x", NULL));
        return a;
}

/* Filter combination `mask` (bits as in ds_sqlite_entries.c: spiffe_id, parent_id,
 * task, node, after, selector). */
static EntryFilter filter_for(unsigned mask, const SelectorSet *sel, const char *after) {
        return (EntryFilter){
                .by_spiffe_id = mask & 1 ? "spiffe://" TD "/w/3" : NULL,
                .by_parent_id = mask & 2 ? NODE1 : NULL,
                .by_task = mask & 4 ? "batch" : NULL,
                .only_node_aliases = mask & 8,
                .after_id = mask & 16 ? after : NULL,
                .by_selectors = mask & 32 ? sel : NULL,
        };
}

/* Every entry of the list of f, paged by `limit`, must be the same as the unpaged list. */
static size_t check_paging(Datastore *ds, EntryFilter f, size_t limit) {
        Entry **all = NULL, **page = NULL;
        size_t n_all = 0, n = 0, seen = 0;
        _cleanup_free_ char *after = NULL;

        f.after_id = NULL;
        f.limit = 0;
        assert_ok(ds_list_entries(ds, &f, &all, &n_all));
        for (;;) {
                f.after_id = after;
                f.limit = limit;
                assert_ok(ds_list_entries(ds, &f, &page, &n));
                assert_true(n <= limit);
                for (size_t i = 0; i < n; i++) {
                        assert_true(seen < n_all);
                        assert_string_equal(page[i]->id, all[seen]->id);
                        seen++;
                }
                free(after);
                after = n > 0 ? strdup(page[n - 1]->id) : NULL;
                entry_array_free(page, n);
                if (n < limit)
                        break;
        }
        assert_int_equal(seen, n_all);
        entry_array_free(all, n_all);
        return n_all;
}

/* Runs every datastore operation once, so that every statement is prepared and cached. */
static void exercise(Datastore *ds, bool store) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = agent_new(NODE1);
        _cleanup_(attested_agent_freep) AttestedAgent *got_agent = NULL;
        _cleanup_(entry_freep) Entry *got = NULL;
        _cleanup_(entry_freep) Entry *unknown =
                test_entry_new("spiffe://" TD "/u", NODE1, "unix:uid:1", NULL);
        SelectorSet sel = {};
        Entry **list = NULL;
        AttestedAgent **agents = NULL;
        const char *parents[] = {NODE1, NODE2};
        uint8_t *data = NULL;
        size_t n = 0, len = 0;
        int64_t v;
        uint64_t seq;

        if (store)
                store_entries(ds);
        else
                assert_ok(ds_create_entries(ds, &unknown, 1, NULL));
        assert_ok(selector_set_add_string(&sel, "unix:gid:7", NULL));
        for (unsigned mask = 0; mask < DS_LIST_STMT_VARIANTS; mask++) {
                EntryFilter f = filter_for(mask, &sel, "0");
                assert_ok(ds_list_entries(ds, &f, &list, &n));
                entry_array_free(list, n);
        }
        selector_set_done(&sel);
        assert_ok(ds_list_entries_by_parent_ids(ds, parents, 2, &list, &n));
        assert_true(n >= 2);
        assert_ok(ds_get_entry(ds, list[0]->id, &got));
        free(got->hint);
        got->hint = strdup("h");
        assert_ok(entry_add_dns_name(got, "a.example.org"));
        assert_ok(ds_update_entry(ds, got, NULL));
        assert_ok(ds_delete_entry(ds, list[1]->id));
        /* A failed write rolls back. */
        free(unknown->id);
        unknown->id = strdup("ffffffffffffffffffffffffffffffff");
        assert_errno(ds_update_entry(ds, unknown, NULL), ENOENT);
        entry_array_free(list, n);
        assert_ok(ds_count_entries(ds, &v));
        assert_ok(ds_change_sequence(ds, &seq));

        assert_ok(ds_upsert_agent(ds, a));
        assert_ok(ds_get_agent(ds, NODE1, &got_agent));
        assert_ok(ds_list_agents(ds, &agents, &n));
        attested_agent_array_free(agents, n);
        assert_ok(ds_set_agent_banned(ds, NODE1, false));
        assert_ok(ds_update_agent_svid(ds, NODE1, "0b", 99));
        assert_ok(ds_touch_agent(ds, NODE1, 100));
        assert_ok(ds_delete_agent(ds, NODE1));

        assert_ok(ds_create_join_token(ds, "tok", 1000, NULL));
        assert_ok(ds_consume_join_token(ds, "tok", 10, NULL));
        assert_ok(ds_prune_join_tokens(ds, 2000));
        assert_ok(ds_set_bundle(ds, "partner.example", (const uint8_t *) "x", 1));
        assert_ok(ds_get_bundle(ds, "partner.example", &data, &len));
        free(data);
        BundleRow **rows = NULL;
        assert_ok(ds_list_bundles(ds, &rows, &n));
        bundle_row_array_free(rows, n);
        assert_ok(ds_delete_bundle(ds, "partner.example"));
        assert_ok(ds_set_meta(ds, "k", 1));
        assert_ok(ds_get_meta(ds, "k", &v));

        DsEvent *events = NULL;
        uint64_t last = 0;
        assert_ok(ds_last_event_id(ds, &last));
        assert_true(last > 0);
        assert_ok(ds_list_events(ds, last - 1, 10, &events, &n));
        assert_int_equal(n, 1);
        ds_event_array_free(events, n);
        assert_true(ds_prune_events(ds, 0) >= 0);

        DsAuditRecord *recs = NULL;
        assert_ok(ds_audit_list(ds, &(DsAuditFilter){.subject = "x", .kind = "y"}, &recs, &n));
        ds_audit_record_array_free(recs, n);
        assert_ok(ds_audit_verify(ds, NULL, NULL, NULL));
}

static bool index_is_partial(sqlite3 *db, const char *name) {
        sqlite3_stmt *st = NULL;
        bool partial = false;

        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT sql FROM sqlite_master WHERE type = 'index' "
                                            "AND name = ?1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
                partial = strstr((const char *) sqlite3_column_text(st, 0), " WHERE ") != NULL;
        sqlite3_finalize(st);
        return partial;
}

/* A plan line that reads a whole table or a whole index ("SCAN t", "SCAN t USING
 * [COVERING] INDEX i" for a non-partial i) or sorts. */
static bool line_is_full_read(sqlite3 *db, const char *line) {
        const char *idx;
        char name[128];

        if (strstr(line, "USE TEMP B-TREE"))
                return true;
        if (strncmp(line, "SCAN ", 5) != 0)
                return false;
        /* One row per AUTOINCREMENT table (events, audit). */
        if (streq(line, "SCAN sqlite_sequence"))
                return false;
        idx = strstr(line, " INDEX ");
        if (!idx || sscanf(idx + 7, "%127s", name) != 1)
                return true;
        return !index_is_partial(db, name);
}

/* Number of full reads in the plan of st; the plan is printed when verbose. */
static int full_reads(sqlite3 *db, sqlite3_stmt *st, bool verbose) {
        _cleanup_free_ char *sql = NULL;
        sqlite3_stmt *eqp = NULL;
        int k = 0;

        assert_true(asprintf(&sql, "EXPLAIN QUERY PLAN %s", sqlite3_sql(st)) > 0);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &eqp, NULL), SQLITE_OK);
        while (sqlite3_step(eqp) == SQLITE_ROW) {
                const char *line = (const char *) sqlite3_column_text(eqp, 3);
                bool full = line_is_full_read(db, line);
                if (verbose || full)
                        print_message("  %s%s: %s\n", full ? "FULL " : "", line, sqlite3_sql(st));
                k += full;
        }
        sqlite3_finalize(eqp);
        return k;
}

/* The statements that may read everything: they answer "everything". */
static bool may_read_all(DsSqlite *s, sqlite3_stmt *st) {
        return st == s->stmts[STMT_ENTRY_COUNT] || st == s->stmts[STMT_BUNDLE_LIST] ||
               st == s->list_stmts[0];
}

static void check_plans(DsSqlite *s, bool verbose) {
        size_t checked = 0;
        int bad = 0;

        for (size_t i = 0; i < _STMT_MAX; i++) {
                if (!s->stmts[i]) {
                        print_message("statement %zu was never prepared\n", i);
                        continue;
                }
                checked++;
                if (!may_read_all(s, s->stmts[i]))
                        bad += full_reads(s->db, s->stmts[i], verbose);
        }
        for (size_t i = 0; i < DS_LIST_STMT_VARIANTS; i++) {
                assert_non_null(s->list_stmts[i]);
                checked++;
                if (!may_read_all(s, s->list_stmts[i]))
                        bad += full_reads(s->db, s->list_stmts[i], verbose);
        }
        /* Every statement of the cache was prepared by exercise(). */
        assert_int_equal(checked, _STMT_MAX + DS_LIST_STMT_VARIANTS);
        assert_int_equal(bad, 0);
}

static void test_query_plans(void **state) {
        DsFixture *f = *state;
        DsSqlite *s = ds_sqlite(f->ds);

        exercise(f->ds, true);
        check_plans(s, getenv("WARDEN_TEST_VERBOSE") != NULL);
        /* The same under statistics (PRAGMA optimize, run at every close, may store
         * them): a new connection prepares every statement again after ANALYZE. */
        test_ds_reopen(f);
        s = ds_sqlite(f->ds);
        assert_int_equal(sqlite3_exec(s->db, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
        test_ds_reopen(f);
        exercise(f->ds, false);
        check_plans(ds_sqlite(f->ds), false);
}

static void test_paging_every_filter(void **state) {
        DsFixture *f = *state;
        SelectorSet sel = {}, two = {};

        store_entries(f->ds);
        assert_ok(selector_set_add_string(&sel, "unix:gid:7", NULL));
        for (unsigned mask = 0; mask < DS_LIST_STMT_VARIANTS; mask++) {
                if (mask & 16)
                        continue; /* after_id is what paging sets */
                EntryFilter flt = filter_for(mask, &sel, NULL);
                size_t n = check_paging(f->ds, flt, 1);
                assert_int_equal(check_paging(f->ds, flt, 7), n);
                assert_int_equal(check_paging(f->ds, flt, 1000), n);
        }
        assert_int_equal(check_paging(f->ds, (EntryFilter){}, 7), N_ENTRIES);
        assert_int_equal(check_paging(f->ds, (EntryFilter){.only_node_aliases = true}, 2),
                         N_ENTRIES / 10);
        /* unix:gid:7: every third entry, but the node aliases 0 and 30. */
        assert_int_equal(check_paging(f->ds, (EntryFilter){.by_selectors = &sel}, 3),
                         N_ENTRIES / 3 - 2);
        /* Two selectors: the second is checked outside SQL; pages still line up. */
        assert_ok(selector_set_add_string(&two, "unix:gid:7", NULL));
        assert_ok(selector_set_add_string(&two, "unix:uid:3", NULL));
        assert_int_equal(check_paging(f->ds, (EntryFilter){.by_selectors = &two}, 1), 1);
        selector_set_done(&sel);
        selector_set_done(&two);
}

static void test_agent_pages(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *after = NULL;
        AttestedAgent **list = NULL;
        size_t n = 0, total = 0;
        char id[96];

        for (int i = 0; i < 25; i++) {
                _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
                snprintf(id, sizeof(id), "spiffe://" TD "/warden/agent/join_token/a%02d", i);
                a = agent_new(id);
                assert_ok(ds_upsert_agent(f->ds, a));
        }
        for (;;) {
                assert_ok(ds_list_agents_page(f->ds, after, 10, &list, &n));
                for (size_t i = 0; i < n; i++) {
                        snprintf(id, sizeof(id), "spiffe://" TD "/warden/agent/join_token/a%02zu",
                                 total + i);
                        assert_string_equal(list[i]->spiffe_id, id);
                        assert_int_equal(list[i]->selectors.n, 1);
                }
                total += n;
                free(after);
                after = n > 0 ? strdup(list[n - 1]->spiffe_id) : NULL;
                attested_agent_array_free(list, n);
                if (n < 10)
                        break;
        }
        assert_int_equal(total, 25);
        assert_ok(ds_list_agents_page(f->ds, "spiffe://" TD "/zzz", 10, &list, &n));
        assert_int_equal(n, 0);
        free(list);
        assert_ok(ds_list_agents_page(f->ds, NULL, 0, &list, &n));
        assert_int_equal(n, 25);
        attested_agent_array_free(list, n);
        assert_errno(ds_list_agents_page(NULL, NULL, 0, &list, &n), EINVAL);
}

static bool has_index(sqlite3 *db, const char *name) {
        sqlite3_stmt *st = NULL;
        bool found;

        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT 1 FROM sqlite_master WHERE type = 'index' "
                                            "AND name = ?1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        return found;
}

/* A schema version 2 database with entries gets the indexes of version 3 (and the
 * later migrations) and keeps every row. */
static void test_migration_from_v2(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *path = NULL;
        _cleanup_(ds_closep) Datastore *ds = NULL;
        Entry **list = NULL;
        sqlite3 *db = NULL;
        size_t n = 0;
        int v = 0;

        assert_true(asprintf(&path, "%s/v2.db", f->dir) > 0);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_ok(ds_migrate(db, 2));
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO entries (id, spiffe_id, parent_id, "
                                      "selectors_key, node, revision, created_at, task) VALUES "
                                      "('b', 'spiffe://" TD "/n', '" NODE1 "', 'k1', 1, 1, 1, "
                                      "NULL), ('a', 'spiffe://" TD "/w', '" NODE1 "', 'k2', 0, "
                                      "1, 1, 't');"
                                      "INSERT INTO entry_selectors VALUES ('a', 'unix', 'uid:1'),"
                                      " ('b', 'warden', 'agent_id:x');",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_true(has_index(db, "entries_parent_id"));
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_ok(ds_open_sqlite(path, &ds));
        assert_int_equal(ds_schema_version(ds), DS_SCHEMA_VERSION);
        db = ds_sqlite(ds)->db;
        assert_false(has_index(db, "entries_parent_id"));
        assert_false(has_index(db, "entries_spiffe_id"));
        assert_false(has_index(db, "entries_task"));
        assert_true(has_index(db, "entries_parent_id_id"));
        assert_true(has_index(db, "entries_spiffe_id_id"));
        assert_true(has_index(db, "entries_task_id"));
        assert_true(has_index(db, "entries_node_id"));
        assert_ok(ds_list_entries(ds, &(EntryFilter){.only_node_aliases = true}, &list, &n));
        assert_int_equal(n, 1);
        assert_string_equal(list[0]->id, "b");
        entry_array_free(list, n);
        assert_ok(ds_list_entries(ds, &(EntryFilter){.by_parent_id = NODE1, .after_id = "a"}, &list,
                                  &n));
        assert_int_equal(n, 1);
        assert_string_equal(list[0]->id, "b");
        entry_array_free(list, n);
        assert_ok(ds_list_entries(ds, &(EntryFilter){.by_task = "t"}, &list, &n));
        assert_int_equal(n, 1);
        assert_string_equal(list[0]->id, "a");
        entry_array_free(list, n);
        ds = ds_close(ds);
        assert_ok(ds_sqlite_file_schema_version(path, &v));
        assert_int_equal(v, DS_SCHEMA_VERSION);
}

static int64_t pragma_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        int64_t v;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static void test_memory_options(void **state) {
        DsFixture *f = *state;
        _cleanup_(ds_closep) Datastore *ds = NULL;
        _cleanup_free_ char *path = NULL;

        /* The defaults: 64 MiB of page cache (KiB when negative), no mmap. */
        assert_int_equal(pragma_int(ds_sqlite(f->ds)->db, "PRAGMA cache_size"), -64 * 1024);
        assert_int_equal(pragma_int(ds_sqlite(f->ds)->db, "PRAGMA mmap_size"), 0);

        assert_true(asprintf(&path, "%s/m.db", f->dir) > 0);
        assert_ok(ds_open_sqlite_with(
                path, &(DsSqliteOptions){.cache_bytes = 8 << 20, .mmap_bytes = 16 << 20}, &ds));
        assert_int_equal(pragma_int(ds_sqlite(ds)->db, "PRAGMA cache_size"), -8 * 1024);
        assert_int_equal(pragma_int(ds_sqlite(ds)->db, "PRAGMA mmap_size"), 16 << 20);
        ds = ds_close(ds);

        assert_errno(ds_open_sqlite_with(path, &(DsSqliteOptions){.cache_bytes = 0}, &ds), EINVAL);
        assert_errno(ds_open_sqlite_with(
                             path, &(DsSqliteOptions){.cache_bytes = DS_CACHE_BYTES_MAX + 1}, &ds),
                     EINVAL);
        assert_errno(
                ds_open_sqlite_with(
                        path, &(DsSqliteOptions){.cache_bytes = 8 << 20, .mmap_bytes = -1}, &ds),
                EINVAL);
        assert_errno(ds_open_sqlite_with(path,
                                         &(DsSqliteOptions){.cache_bytes = 8 << 20,
                                                            .mmap_bytes = DS_MMAP_BYTES_MAX + 1},
                                         &ds),
                     EINVAL);
        assert_null(ds);
}

int test_ds_plan_run(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_query_plans, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_paging_every_filter, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_agent_pages, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_migration_from_v2, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_memory_options, test_ds_setup,
                                                test_ds_teardown),
        };
        return cmocka_run_group_tests_name("ds_plan", tests, NULL, NULL);
}
