/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore: registration entries (create, duplicates, batches, lists, update,
 * delete) on real SQLite files; main() runs every group of this module. */
#define _GNU_SOURCE
#include "test_ds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "ds.h"
#include "ds_internal.h"
#include "testlib.h"

#define AGENT1 "spiffe://" TD "/warden/agent/join_token/n1"
#define AGENT2 "spiffe://" TD "/warden/agent/join_token/n2"

int test_ds_setup(void **state) {
        DsFixture *f = calloc(1, sizeof(DsFixture));

        assert_non_null(f);
        f->dir = test_tmpdir();
        assert_non_null(f->dir);
        assert_true(asprintf(&f->path, "%s/warden.db", f->dir) > 0);
        assert_ok(ds_open_sqlite(f->path, &f->ds));
        *state = f;
        return 0;
}

int test_ds_teardown(void **state) {
        DsFixture *f = *state;

        ds_close(f->ds);
        free(f->path);
        test_rmdir_free(f->dir);
        free(f);
        return 0;
}

void test_ds_reopen(DsFixture *f) {
        f->ds = ds_close(f->ds);
        assert_ok(ds_open_sqlite(f->path, &f->ds));
}

uint64_t test_ds_seq(Datastore *ds) {
        uint64_t seq = UINT64_MAX;

        assert_ok(ds_change_sequence(ds, &seq));
        return seq;
}

static int64_t count(Datastore *ds) {
        int64_t n = -1;

        assert_ok(ds_count_entries(ds, &n));
        return n;
}

static bool is_hex_id(const char *id) {
        if (!id || strlen(id) != 32)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static void test_create_get_roundtrip(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e = test_entry_new(
                "spiffe://" TD "/web", AGENT1, "unix:uid:1000", "unix:path:/usr/bin/web", NULL);
        _cleanup_(entry_freep) Entry *got = NULL;
        int64_t before = (int64_t) time(NULL);
        size_t bad = 99;

        assert_ok(entry_add_dns_name(e, "web.example.org"));
        assert_ok(entry_add_dns_name(e, "a.example.org")); /* order is kept */
        assert_ok(entry_add_federates_with(e, "partner.example"));
        assert_ok(entry_add_federates_with(e, "other.example"));
        assert_ok(entry_add_scope(e, "write"));
        assert_ok(entry_add_scope(e, "read"));
        e->x509_svid_ttl = 600;
        e->jwt_svid_ttl = 60;
        e->hint = strdup("frontend");
        e->admin = true;
        e->node = false;
        e->downstream = true;
        e->expires_at = 1900000000;
        e->env = strdup("test");
        e->task = strdup("t1");
        e->state = strdup("active");
        e->created_by = strdup("alice");
        e->approved_by = strdup("bob");

        assert_ok(ds_create_entries(f->ds, &e, 1, &bad));
        assert_int_equal(bad, 99); /* untouched on success */
        assert_true(is_hex_id(e->id));
        assert_int_equal(e->revision, 1);
        assert_true(e->created_at >= before && e->created_at <= (int64_t) time(NULL));

        assert_ok(ds_get_entry(f->ds, e->id, &got));
        test_assert_entries_equal(e, got);
        assert_int_equal(count(f->ds), 1);

        entry_free(got);
        got = NULL;
        assert_errno(ds_get_entry(f->ds, "0123456789abcdef0123456789abcdef", &got), ENOENT);
        assert_errno(ds_get_entry(f->ds, "not an id", &got), ENOENT);
        assert_null(got);
        assert_errno(ds_get_entry(NULL, e->id, &got), EINVAL);
}

static void test_ids_are_unique_and_caller_ids(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/a", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *b =
                test_entry_new("spiffe://" TD "/b", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *c =
                test_entry_new("spiffe://" TD "/c", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *d =
                test_entry_new("spiffe://" TD "/d", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *got = NULL;
        size_t bad;

        assert_ok(ds_create_entries(f->ds, (Entry *[]){a, b}, 2, NULL));
        assert_string_not_equal(a->id, b->id);

        c->id = strdup("my-entry_1");
        assert_ok(ds_create_entries(f->ds, &c, 1, NULL));
        assert_string_equal(c->id, "my-entry_1");
        assert_ok(ds_get_entry(f->ds, "my-entry_1", &got));
        assert_string_equal(got->spiffe_id, "spiffe://" TD "/c");

        d->id = strdup("my-entry_1"); /* same id, different entry */
        assert_errno(ds_create_entries(f->ds, &d, 1, &bad), EEXIST);
        assert_int_equal(bad, 0);
        free(d->id);
        d->id = strdup("bad id");
        assert_errno(ds_create_entries(f->ds, &d, 1, &bad), EINVAL);
        assert_int_equal(bad, 0);
        assert_int_equal(count(f->ds), 3);
}

static void test_duplicate_refused(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/web", AGENT1, "unix:uid:1000", "unix:gid:5", NULL);
        /* Same ID, parent and selector set (given in another order), other fields differ. */
        _cleanup_(entry_freep) Entry *dup =
                test_entry_new("spiffe://" TD "/web", AGENT1, "unix:gid:5", "unix:uid:1000", NULL);
        _cleanup_(entry_freep) Entry *subset =
                test_entry_new("spiffe://" TD "/web", AGENT1, "unix:uid:1000", NULL);
        _cleanup_(entry_freep) Entry *other_parent =
                test_entry_new("spiffe://" TD "/web", AGENT2, "unix:uid:1000", "unix:gid:5", NULL);
        uint64_t seq;
        size_t bad = 99;

        assert_ok(ds_create_entries(f->ds, &a, 1, NULL));
        seq = test_ds_seq(f->ds);
        dup->x509_svid_ttl = 5;
        dup->hint = strdup("different");
        assert_errno(ds_create_entries(f->ds, &dup, 1, &bad), EEXIST);
        assert_int_equal(bad, 0);
        assert_null(dup->id);
        assert_int_equal(dup->revision, 0);
        assert_int_equal(test_ds_seq(f->ds), seq);

        /* A different selector set or parent is a different entry. */
        assert_ok(ds_create_entries(f->ds, (Entry *[]){subset, other_parent}, 2, NULL));
        assert_int_equal(count(f->ds), 3);
}

static void test_batch_all_or_nothing(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/a", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *b =
                test_entry_new("spiffe://" TD "/b", AGENT1, "unix:uid:2", NULL);
        _cleanup_(entry_freep) Entry *a2 =
                test_entry_new("spiffe://" TD "/a", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *empty = test_entry_new("spiffe://" TD "/e", AGENT1, NULL);
        _cleanup_(entry_freep) Entry *stored =
                test_entry_new("spiffe://" TD "/s", AGENT1, "unix:uid:9", NULL);
        _cleanup_(entry_freep) Entry *s2 =
                test_entry_new("spiffe://" TD "/s", AGENT1, "unix:uid:9", NULL);
        uint64_t seq = test_ds_seq(f->ds);
        size_t bad = 99;

        /* A duplicate inside the batch: index 2 fails, nothing is stored. */
        assert_errno(ds_create_entries(f->ds, (Entry *[]){a, b, a2}, 3, &bad), EEXIST);
        assert_int_equal(bad, 2);
        assert_int_equal(count(f->ds), 0);
        assert_null(a->id);
        assert_null(b->id);
        assert_int_equal(test_ds_seq(f->ds), seq);

        /* An entry the datastore cannot store (no selectors). */
        assert_errno(ds_create_entries(f->ds, (Entry *[]){a, empty, b}, 3, &bad), EINVAL);
        assert_int_equal(bad, 1);
        assert_int_equal(count(f->ds), 0);

        /* A duplicate of an entry stored earlier. */
        assert_ok(ds_create_entries(f->ds, &stored, 1, NULL));
        assert_errno(ds_create_entries(f->ds, (Entry *[]){a, b, s2}, 3, &bad), EEXIST);
        assert_int_equal(bad, 2);
        assert_int_equal(count(f->ds), 1);
        assert_null(a->id);

        assert_ok(ds_create_entries(f->ds, (Entry *[]){a, b}, 2, NULL));
        assert_int_equal(count(f->ds), 3);
        assert_int_equal(test_ds_seq(f->ds), seq + 2);

        assert_errno(ds_create_entries(f->ds, (Entry *[]){a}, 0, &bad), EINVAL);
        assert_errno(ds_create_entries(f->ds, NULL, 1, &bad), EINVAL);
}

static void test_batch_cap(void **state) {
        DsFixture *f = *state;
        Entry **batch = calloc(DS_BATCH_MAX + 1, sizeof(Entry *));
        char id[64];
        size_t bad = 0;

        assert_non_null(batch);
        for (size_t i = 0; i <= DS_BATCH_MAX; i++) {
                snprintf(id, sizeof(id), "spiffe://" TD "/w/%zu", i);
                batch[i] = test_entry_new(id, AGENT1, "unix:uid:1", NULL);
        }
        assert_errno(ds_create_entries(f->ds, batch, DS_BATCH_MAX + 1, &bad), E2BIG);
        assert_int_equal(bad, DS_BATCH_MAX + 1);
        assert_int_equal(count(f->ds), 0);
        assert_ok(ds_create_entries(f->ds, batch, DS_BATCH_MAX, NULL));
        assert_int_equal(count(f->ds), DS_BATCH_MAX);
        entry_array_free(batch, DS_BATCH_MAX + 1);
}

/* Stores a small tree of entries used by the list tests. */
static void store_fixture_entries(Datastore *ds) {
        Entry *e[6];

        e[0] = test_entry_new("spiffe://" TD "/web", AGENT1, "unix:uid:1000", "unix:gid:10", NULL);
        e[1] = test_entry_new("spiffe://" TD "/web", AGENT2, "unix:uid:1000", NULL);
        e[2] = test_entry_new("spiffe://" TD "/db", AGENT1, "unix:uid:1001", "unix:gid:10", NULL);
        e[3] = test_entry_new("spiffe://" TD "/node-alias", AGENT1, "x509pop:subject:cn:n1", NULL);
        e[3]->node = true;
        e[4] = test_entry_new("spiffe://" TD "/child", "spiffe://" TD "/node-alias", "unix:uid:7",
                              NULL);
        e[4]->task = strdup("build-42");
        e[5] = test_entry_new("spiffe://" TD "/grandchild", "spiffe://" TD "/child", "unix:uid:8",
                              NULL);
        e[5]->task = strdup("build-42");
        assert_ok(ds_create_entries(ds, e, ELEMENTSOF(e), NULL));
        for (size_t i = 0; i < ELEMENTSOF(e); i++)
                entry_free(e[i]);
}

/* Lists with f and checks the result holds exactly the given SPIFFE IDs (in id order). */
static size_t list_count(Datastore *ds, const EntryFilter *f, const char *spiffe_id) {
        Entry **list = NULL;
        size_t n = 0;

        assert_ok(ds_list_entries(ds, f, &list, &n));
        for (size_t i = 0; i < n; i++) {
                if (spiffe_id)
                        assert_string_equal(list[i]->spiffe_id, spiffe_id);
                if (i > 0)
                        assert_true(strcmp(list[i - 1]->id, list[i]->id) < 0);
        }
        entry_array_free(list, n);
        return n;
}

static void test_list_filters(void **state) {
        DsFixture *f = *state;
        SelectorSet sel = {}, sel2 = {}, none = {};
        Entry **list = NULL;
        size_t n = 0;

        store_fixture_entries(f->ds);
        assert_int_equal(list_count(f->ds, NULL, NULL), 6);
        assert_int_equal(list_count(f->ds, &(EntryFilter){}, NULL), 6);
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_spiffe_id = "spiffe://" TD "/web"},
                                    "spiffe://" TD "/web"),
                         2);
        assert_int_equal(
                list_count(f->ds, &(EntryFilter){.by_parent_id = AGENT2}, "spiffe://" TD "/web"),
                1);
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_parent_id = AGENT1}, NULL), 3);
        assert_int_equal(list_count(f->ds,
                                    &(EntryFilter){.by_spiffe_id = "spiffe://" TD "/web",
                                                   .by_parent_id = AGENT1},
                                    "spiffe://" TD "/web"),
                         1);
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_task = "build-42"}, NULL), 2);
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_task = "nope"}, NULL), 0);
        assert_int_equal(list_count(f->ds, &(EntryFilter){.only_node_aliases = true},
                                    "spiffe://" TD "/node-alias"),
                         1);

        /* Selector superset match: entries holding all the given selectors. */
        assert_ok(selector_set_add_string(&sel, "unix:uid:1000", NULL));
        assert_int_equal(
                list_count(f->ds, &(EntryFilter){.by_selectors = &sel}, "spiffe://" TD "/web"), 2);
        assert_ok(selector_set_add_string(&sel, "unix:gid:10", NULL));
        assert_ok(ds_list_entries(f->ds, &(EntryFilter){.by_selectors = &sel}, &list, &n));
        assert_int_equal(n, 1);
        assert_string_equal(list[0]->parent_id, AGENT1);
        assert_string_equal(list[0]->spiffe_id, "spiffe://" TD "/web");
        entry_array_free(list, n);
        assert_ok(selector_set_add_string(&sel2, "unix:gid:10", NULL));
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_selectors = &sel2}, NULL), 2);
        assert_ok(selector_set_add_string(&sel2, "unix:uid:1", NULL));
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_selectors = &sel2}, NULL), 0);
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_selectors = &none}, NULL), 6);
        assert_int_equal(list_count(f->ds,
                                    &(EntryFilter){.by_selectors = &sel, .by_parent_id = AGENT2},
                                    NULL),
                         0);
        selector_set_done(&sel);
        selector_set_done(&sel2);
        assert_errno(ds_list_entries(f->ds, NULL, NULL, &n), EINVAL);
}

static void test_list_paging(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *after = NULL;
        size_t total = 0, pages = 0;

        store_fixture_entries(f->ds);
        for (;;) {
                Entry **list = NULL;
                size_t n = 0;

                assert_ok(ds_list_entries(f->ds, &(EntryFilter){.after_id = after, .limit = 4},
                                          &list, &n));
                if (n == 0)
                        break;
                assert_true(n <= 4);
                if (after)
                        assert_true(strcmp(list[0]->id, after) > 0);
                free(after);
                after = strdup(list[n - 1]->id);
                total += n;
                pages++;
                entry_array_free(list, n);
        }
        assert_int_equal(total, 6);
        assert_int_equal(pages, 2);
        /* limit with a filter checked outside SQL (two selectors). */
        SelectorSet sel = {};
        assert_ok(selector_set_add_string(&sel, "unix:uid:1000", NULL));
        assert_ok(selector_set_add_string(&sel, "unix:gid:10", NULL));
        assert_int_equal(list_count(f->ds, &(EntryFilter){.by_selectors = &sel, .limit = 1}, NULL),
                         1);
        selector_set_done(&sel);
}

static void test_list_by_parent_ids(void **state) {
        DsFixture *f = *state;
        Entry **list = NULL;
        size_t n = 0;

        store_fixture_entries(f->ds);
        /* Agent 2 and the node alias; the alias appears twice in the input. */
        const char *const parents[] = {AGENT2, "spiffe://" TD "/node-alias", AGENT2,
                                       "spiffe://" TD "/unknown"};
        assert_ok(ds_list_entries_by_parent_ids(f->ds, parents, ELEMENTSOF(parents), &list, &n));
        assert_int_equal(n, 2);
        assert_string_equal(list[0]->parent_id, AGENT2); /* grouped in input order */
        assert_string_equal(list[1]->spiffe_id, "spiffe://" TD "/child");
        assert_string_equal(list[1]->task, "build-42");
        assert_int_equal(list[1]->selectors.n, 1);
        entry_array_free(list, n);

        /* Next level of the walk: descendants of child. */
        const char *const level2[] = {"spiffe://" TD "/child"};
        assert_ok(ds_list_entries_by_parent_ids(f->ds, level2, 1, &list, &n));
        assert_int_equal(n, 1);
        assert_string_equal(list[0]->spiffe_id, "spiffe://" TD "/grandchild");
        entry_array_free(list, n);

        assert_ok(ds_list_entries_by_parent_ids(f->ds, NULL, 0, &list, &n));
        assert_int_equal(n, 0);
        free(list);
        assert_errno(ds_list_entries_by_parent_ids(f->ds, (const char *[]){NULL}, 1, &list, &n),
                     EINVAL);
}

static void test_update(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/a", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *upd = NULL, *got = NULL, *again = NULL;
        uint64_t seq;

        assert_ok(entry_add_dns_name(a, "a.example.org"));
        assert_ok(ds_create_entries(f->ds, &a, 1, NULL));
        seq = test_ds_seq(f->ds);

        assert_ok(entry_copy(a, &upd));
        selector_set_done(&upd->selectors);
        assert_ok(selector_set_add_string(&upd->selectors, "unix:uid:3", NULL));
        assert_ok(selector_set_add_string(&upd->selectors, "unix:gid:3", NULL));
        free(upd->dns_names[0]);
        upd->dns_names[0] = strdup("new.example.org");
        assert_ok(entry_add_scope(upd, "admin"));
        upd->x509_svid_ttl = 120;
        upd->state = strdup("revoked");
        upd->created_at = 5; /* ignored: creation time is kept */
        assert_ok(ds_update_entry(f->ds, upd, &got));
        assert_int_equal(got->revision, 2);
        assert_int_equal(got->created_at, a->created_at);
        assert_int_equal(got->selectors.n, 2);
        assert_int_equal(got->n_dns_names, 1);
        assert_string_equal(got->dns_names[0], "new.example.org");
        assert_string_equal(got->scopes[0], "admin");
        assert_string_equal(got->state, "revoked");
        assert_int_equal(test_ds_seq(f->ds), seq + 1);
        upd->revision = 2;
        upd->created_at = a->created_at;
        test_assert_entries_equal(upd, got);

        /* Updating without a result pointer, then reading back. */
        upd->x509_svid_ttl = 240;
        assert_ok(ds_update_entry(f->ds, upd, NULL));
        assert_ok(ds_get_entry(f->ds, a->id, &again));
        assert_int_equal(again->revision, 3);
        assert_int_equal(again->x509_svid_ttl, 240);
}

static void test_update_refused(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/a", AGENT1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *b =
                test_entry_new("spiffe://" TD "/b", AGENT1, "unix:uid:2", NULL);
        _cleanup_(entry_freep) Entry *upd = NULL, *got = NULL, *again = NULL;
        uint64_t seq;

        assert_ok(entry_add_dns_name(a, "a.example.org"));
        assert_ok(ds_create_entries(f->ds, (Entry *[]){a, b}, 2, NULL));
        seq = test_ds_seq(f->ds);

        /* Turning a into a duplicate of b fails and changes nothing. */
        assert_ok(entry_copy(a, &upd));
        free(upd->spiffe_id);
        upd->spiffe_id = strdup("spiffe://" TD "/b");
        selector_set_done(&upd->selectors);
        assert_ok(selector_set_add_string(&upd->selectors, "unix:uid:2", NULL));
        free(upd->dns_names[0]);
        upd->dns_names[0] = strdup("changed.example.org");
        assert_errno(ds_update_entry(f->ds, upd, &got), EEXIST);
        assert_null(got);
        assert_ok(ds_get_entry(f->ds, a->id, &again));
        test_assert_entries_equal(a, again);
        assert_int_equal(test_ds_seq(f->ds), seq);

        /* Unknown id, no id, an entry the datastore cannot store. */
        free(upd->id);
        upd->id = strdup("ffffffffffffffffffffffffffffffff");
        assert_errno(ds_update_entry(f->ds, upd, &got), ENOENT);
        free(upd->id);
        upd->id = NULL;
        assert_errno(ds_update_entry(f->ds, upd, &got), EINVAL);
        upd->id = strdup(a->id);
        selector_set_done(&upd->selectors);
        assert_errno(ds_update_entry(f->ds, upd, &got), EINVAL);
        assert_int_equal(count(f->ds), 2);
        assert_int_equal(test_ds_seq(f->ds), seq);
}

static int64_t raw_count(const char *path, const char *sql, const char *id) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t n;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static void test_delete(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *a =
                test_entry_new("spiffe://" TD "/a", AGENT1, "unix:uid:1", "unix:gid:1", NULL);
        _cleanup_(entry_freep) Entry *got = NULL;
        uint64_t seq;

        assert_ok(entry_add_dns_name(a, "a.example.org"));
        assert_ok(entry_add_scope(a, "x"));
        assert_ok(ds_create_entries(f->ds, &a, 1, NULL));
        assert_int_equal(raw_count(f->path,
                                   "SELECT COUNT(*) FROM entry_selectors WHERE entry_id = ?1",
                                   a->id),
                         2);
        seq = test_ds_seq(f->ds);
        assert_ok(ds_delete_entry(f->ds, a->id));
        assert_int_equal(test_ds_seq(f->ds), seq + 1);
        assert_errno(ds_get_entry(f->ds, a->id, &got), ENOENT);
        assert_errno(ds_delete_entry(f->ds, a->id), ENOENT);
        assert_int_equal(test_ds_seq(f->ds), seq + 1);
        assert_int_equal(count(f->ds), 0);
        /* Child rows went with the entry (foreign keys with ON DELETE CASCADE). */
        assert_int_equal(raw_count(f->path,
                                   "SELECT COUNT(*) FROM entry_selectors WHERE entry_id = ?1",
                                   a->id),
                         0);
        assert_int_equal(
                raw_count(f->path, "SELECT COUNT(*) FROM entry_dns WHERE entry_id = ?1", a->id), 0);
        assert_int_equal(
                raw_count(f->path, "SELECT COUNT(*) FROM entry_scopes WHERE entry_id = ?1", a->id),
                0);
        /* The same entry can be created again. */
        free(a->id);
        a->id = NULL;
        assert_ok(ds_create_entries(f->ds, &a, 1, NULL));
        assert_errno(ds_delete_entry(f->ds, "x'; DELETE FROM entries; --"), ENOENT);
        assert_int_equal(count(f->ds), 1);
}

static void test_selectors_key(void **state) {
        SelectorSet a = {}, b = {}, c = {}, d = {};
        _cleanup_free_ char *ka = NULL, *kb = NULL, *kc = NULL, *kd = NULL;
        (void) state;

        assert_ok(selector_set_add_string(&a, "unix:uid:1", NULL));
        assert_ok(selector_set_add_string(&a, "unix:gid:2", NULL));
        assert_ok(selector_set_add_string(&b, "unix:gid:2", NULL));
        assert_ok(selector_set_add_string(&b, "unix:uid:1", NULL));
        assert_ok(ds_selectors_key(&a, &ka));
        assert_ok(ds_selectors_key(&b, &kb));
        assert_string_equal(ka, kb);
        /* Sets whose naive "type:value" joins could collide give distinct keys. */
        assert_ok(selector_set_add_string(&c, "k8s:a:b", NULL));
        assert_ok(selector_set_add_string(&d, "k8s:a", NULL));
        assert_ok(selector_set_add_string(&d, "k8s:b", NULL));
        assert_ok(ds_selectors_key(&c, &kc));
        assert_ok(ds_selectors_key(&d, &kd));
        assert_string_not_equal(kc, kd);
        assert_string_equal(kc, "3:k8s3:a:b");
        assert_errno(ds_selectors_key(&(SelectorSet){}, &kd), EINVAL);
        selector_set_done(&a);
        selector_set_done(&b);
        selector_set_done(&c);
        selector_set_done(&d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_create_get_roundtrip, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_ids_are_unique_and_caller_ids, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_duplicate_refused, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_batch_cap, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_list_filters, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_list_paging, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_list_by_parent_ids, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_update, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_update_refused, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_delete, test_ds_setup, test_ds_teardown),
                cmocka_unit_test(test_selectors_key),
        };
        int r = 0;

        r |= test_entry_run();
        r |= cmocka_run_group_tests_name("ds_entries", tests, NULL, NULL);
        r |= test_ds_agents_run();
        r |= test_ds_files_run();
        r |= test_ds_plan_run();
        r |= test_ds_events_run();
        r |= test_ds_audit_run();
        return r;
}
