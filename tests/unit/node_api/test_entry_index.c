/* SPDX-License-Identifier: Apache-2.0 */
/* entry_index: the server's in-memory index of registration entries, on a real SQLite
 * datastore: put/remove/get, the authorized walk against authz_set_build() (levels,
 * aliases, cycles, unusable entries, the cap and its order), the walk up, alias
 * matching, the next expiry, loading (paged) against incremental upkeep. The random
 * operation sequences are in test_entry_index_random.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "cleanup.h"
#include "entry_index_test.h"
#include "log.h"
#include "testlib.h"

#define AGENT TD "/warden/agent/join_token/t1"

int eit_setup(void **state) {
        Fx *fx = calloc(1, sizeof(Fx));
        _cleanup_free_ char *path = NULL;

        assert_non_null(fx);
        fx->dir = test_tmpdir();
        assert_true(asprintf(&path, "%s/ds.sqlite3", fx->dir) > 0);
        assert_ok(ds_open_sqlite(path, &fx->ds));
        assert_ok(entry_index_new(&fx->idx));
        fx->now = time(NULL);
        *state = fx;
        return 0;
}

int eit_teardown(void **state) {
        Fx *fx = *state;

        entry_index_free(fx->idx);
        ds_close(fx->ds);
        test_rmdir_free(fx->dir);
        free(fx);
        return 0;
}

Entry *eit_mk(const char *spiffe_id, const char *parent_id, const char *selector) {
        Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_non_null(e->spiffe_id);
        assert_non_null(e->parent_id);
        assert_ok(selector_set_add_string(&e->selectors, selector, NULL));
        return e;
}

int eit_create(Fx *fx, Entry *e, char *ret_id) {
        Entry *stored = NULL;
        int r;

        r = ds_create_entries(fx->ds, &e, 1, NULL);
        if (r == -EEXIST) {
                entry_free(e);
                return r;
        }
        assert_ok(r);
        assert_ok(ds_get_entry(fx->ds, e->id, &stored));
        if (ret_id)
                snprintf(ret_id, ENTRY_ID_MAX + 1, "%s", e->id);
        entry_free(e);
        assert_ok(entry_index_put(fx->idx, stored));
        return 0;
}

AuthzSet *eit_check_authorized(
        Fx *fx, const char *agent_id, const SelectorSet *sel, int64_t now, size_t max) {
        AuthzSet *want = NULL;
        _cleanup_(authz_view_done) AuthzView got = {};

        assert_ok(authz_set_build_max(fx->ds, agent_id, sel, now, max, &want));
        assert_ok(entry_index_authorized(fx->idx, agent_id, sel, now, max, &got));
        if (got.n != want->n || got.truncated != want->truncated)
                fail_msg("%s (max %zu): index gives %zu entries (truncated %d), authz %zu (%d)",
                         agent_id, max, got.n, got.truncated, want->n, want->truncated);
        for (size_t i = 0; i < got.n; i++)
                if (!streq(got.entries[i]->id, want->entries[i]->id))
                        fail_msg("%s (max %zu): entry %zu is %s in the index, %s in authz",
                                 agent_id, max, i, got.entries[i]->id, want->entries[i]->id);
        return want;
}

static const char *create(Fx *fx, Entry *e) {
        static char ids[16][ENTRY_ID_MAX + 1];
        static unsigned k;
        char *id = ids[k++ % 16];

        assert_ok(eit_create(fx, e, id));
        return id;
}

static Entry *mk_alias(const char *spiffe_id, const char *selector) {
        Entry *e = eit_mk(spiffe_id, TD "/warden/server", selector);

        e->node = true;
        return e;
}

static void test_put_remove_errors(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_view_done) AuthzView v = {};
        SelectorSet sel = {};
        Entry *e, *e2;
        size_t mem0 = entry_index_memory(fx->idx);

        e = eit_mk(TD "/a", AGENT, "unix:uid:1");
        e->id = strdup("id1");
        assert_ok(entry_index_put(fx->idx, e));
        assert_int_equal(entry_index_count(fx->idx), 1);
        assert_string_equal(entry_index_get(fx->idx, "id1")->spiffe_id, TD "/a");
        assert_true(entry_index_memory(fx->idx) > mem0);

        /* Same id: replaced, in every map. */
        e2 = mk_alias(TD "/b", "unix:uid:1");
        e2->id = strdup("id1");
        assert_ok(entry_index_put(fx->idx, e2));
        assert_int_equal(entry_index_count(fx->idx), 1);
        assert_string_equal(entry_index_get(fx->idx, "id1")->spiffe_id, TD "/b");
        assert_ok(entry_index_aliases_named(fx->idx, TD "/b", &v));
        assert_int_equal(v.n, 1);
        assert_ok(entry_index_aliases_named(fx->idx, TD "/a", &v));
        assert_int_equal(v.n, 0);
        assert_ok(entry_index_authorized(fx->idx, AGENT, &sel, fx->now, 0, &v));
        assert_int_equal(v.n, 0);

        assert_errno(entry_index_remove(fx->idx, "nosuch"), ENOENT);
        assert_ok(entry_index_remove(fx->idx, "id1"));
        assert_errno(entry_index_remove(fx->idx, "id1"), ENOENT);
        assert_null(entry_index_get(fx->idx, "id1"));
        assert_int_equal(entry_index_count(fx->idx), 0);
        assert_int_equal(entry_index_memory(fx->idx) > 0, true);

        /* An entry without id is refused (and freed: the sanitizer build sees a leak). */
        assert_errno(entry_index_put(fx->idx, eit_mk(TD "/a", AGENT, "unix:uid:1")), EINVAL);
        assert_errno(entry_index_put(NULL, NULL), EINVAL);
        assert_errno(entry_index_put(fx->idx, NULL), EINVAL);
        assert_errno(entry_index_remove(NULL, "x"), EINVAL);
        assert_errno(entry_index_remove(fx->idx, NULL), EINVAL);
        assert_null(entry_index_get(NULL, "x"));
        assert_null(entry_index_get(fx->idx, NULL));
        assert_int_equal(entry_index_count(NULL), 0);
        assert_errno(entry_index_new(NULL), EINVAL);
        assert_errno(entry_index_load(NULL, fx->ds), EINVAL);
        assert_errno(entry_index_load(fx->idx, NULL), EINVAL);
        assert_errno(entry_index_authorized(NULL, AGENT, &sel, 0, 0, &v), EINVAL);
        assert_errno(entry_index_authorized(fx->idx, NULL, &sel, 0, 0, &v), EINVAL);
        assert_errno(entry_index_authorized(fx->idx, AGENT, NULL, 0, 0, &v), EINVAL);
        assert_errno(entry_index_authorized(fx->idx, AGENT, &sel, 0, 0, NULL), EINVAL);
        assert_errno(entry_index_matching_aliases(NULL, &sel, 0, &v), EINVAL);
        assert_errno(entry_index_matching_aliases(fx->idx, NULL, 0, &v), EINVAL);
        assert_errno(entry_index_aliases_named(fx->idx, NULL, &v), EINVAL);
        assert_errno(entry_index_walk_up(fx->idx, NULL, 0, true, NULL, NULL), EINVAL);
        assert_int_equal(entry_index_next_expiry(NULL, 0), 0);
        assert_null(entry_index_free(NULL));
        authz_view_done(NULL);
}

/* The scenarios of test_authz.c, index against datastore walk. */
static void test_authorized_rules(void **state) {
        Fx *fx = *state;
        _cleanup_(selector_set_done) SelectorSet sel = {};
        char id[64], parent[64];
        Entry *e;

        assert_ok(selector_set_add(&sel, "x509pop", "subject:cn:node-1"));
        assert_ok(selector_set_add(&sel, "k8s", "cluster:a"));
        create(fx, eit_mk(TD "/other", TD "/warden/agent/t2", "unix:uid:3"));
        create(fx, mk_alias(TD "/cluster/a", "x509pop:subject:cn:node-1"));
        e = mk_alias(TD "/cluster/b", "x509pop:subject:cn:node-1");
        assert_ok(selector_set_add(&e->selectors, "x509pop", "subject:cn:node-2"));
        create(fx, e);
        e = mk_alias(TD "/cluster/c", "k8s:cluster:a");
        e->expires_at = fx->now - 1;
        create(fx, e);
        e = mk_alias(TD "/cluster/d", "k8s:cluster:a");
        assert_ok(selector_set_add(&e->selectors, "x509pop", "subject:cn:node-1"));
        create(fx, e);
        for (const char *c = "abcd"; *c; c++) {
                snprintf(id, sizeof(id), TD "/wl-%c", *c);
                snprintf(parent, sizeof(parent), TD "/cluster/%c", *c);
                create(fx, eit_mk(id, parent, "unix:uid:1"));
        }
        /* A chain longer than the level cap, a cycle, unusable links. */
        snprintf(parent, sizeof(parent), "%s", AGENT);
        for (int i = 0; i < AUTHZ_LEVELS_MAX + 2; i++) {
                snprintf(id, sizeof(id), TD "/l%d", i + 1);
                create(fx, eit_mk(id, parent, "unix:uid:1"));
                snprintf(parent, sizeof(parent), "%s", id);
        }
        create(fx, eit_mk(TD "/x", AGENT, "unix:uid:1"));
        create(fx, eit_mk(TD "/y", TD "/x", "unix:uid:2"));
        create(fx, eit_mk(TD "/x", TD "/y", "unix:uid:3"));
        e = eit_mk(TD "/pending", AGENT, "unix:uid:1");
        e->state = strdup("pending_approval");
        create(fx, e);
        create(fx, eit_mk(TD "/below-pending", TD "/pending", "unix:uid:1"));
        e = eit_mk(TD "/expired", TD "/cluster/d", "unix:uid:1");
        e->expires_at = fx->now;
        create(fx, e);
        create(fx, eit_mk(TD "/warden/server", AGENT, "unix:uid:1"));

        authz_set_free(eit_check_authorized(fx, AGENT, &sel, fx->now, 0));
        authz_set_free(eit_check_authorized(fx, AGENT, &(SelectorSet){}, fx->now, 0));
        authz_set_free(eit_check_authorized(fx, TD "/warden/agent/t2", &sel, fx->now, 0));
        authz_set_free(eit_check_authorized(fx, AGENT, &sel, fx->now - 100, 0));
        /* Every cap: which entries fit follows the datastore walk's order. */
        for (size_t max = 1; max < 20; max++)
                authz_set_free(eit_check_authorized(fx, AGENT, &sel, fx->now, max));
}

static int collect_id(const char *id, void *userdata) {
        char ***list = userdata;
        size_t n = 0;

        while ((*list)[n])
                n++;
        *list = realloc(*list, (n + 2) * sizeof(char *));
        assert_non_null(*list);
        (*list)[n] = strdup(id);
        (*list)[n + 1] = NULL;
        return 0;
}

static int stop_at_two(const char *id, void *userdata) {
        unsigned *calls = userdata;

        (void) id;
        return ++*calls == 2 ? -ECANCELED : 0;
}

static size_t strv_length_free(char **l, const char *must_have, const char *must_not) {
        size_t n = 0;
        bool found = !must_have;

        for (; l[n]; n++) {
                if (must_have && streq(l[n], must_have))
                        found = true;
                if (must_not && streq(l[n], must_not))
                        fail_msg("%s is in the walk", must_not);
                free(l[n]);
        }
        free(l);
        if (!found)
                fail_msg("%s is not in the walk", must_have);
        return n;
}

static void test_walk_up(void **state) {
        Fx *fx = *state;
        char id[64], parent[64];
        char **l;
        unsigned calls = 0;
        Entry *e;

        /* AGENT <- c1 <- c2 ... <- c12: an entry below c11 can only be reached from
         * AUTHZ_LEVELS_MAX IDs: c11 ... c4 (c4's entry is at level 4 + 4 = 8). */
        snprintf(parent, sizeof(parent), "%s", AGENT);
        for (int i = 1; i <= 12; i++) {
                snprintf(id, sizeof(id), TD "/c%d", i);
                create(fx, eit_mk(id, parent, "unix:uid:1"));
                snprintf(parent, sizeof(parent), "%s", id);
        }
        l = calloc(1, sizeof(char *));
        assert_ok(entry_index_walk_up(fx->idx, TD "/c11", fx->now, false, collect_id, &l));
        assert_int_equal(strv_length_free(l, TD "/c4", TD "/c3"), AUTHZ_LEVELS_MAX);
        l = calloc(1, sizeof(char *));
        assert_ok(entry_index_walk_up(fx->idx, TD "/c7", fx->now, false, collect_id, &l));
        assert_int_equal(strv_length_free(l, AGENT, NULL), AUTHZ_LEVELS_MAX);

        /* A revoked link stops the walk unless unusable entries are followed; an alias
         * with the same spiffe_id is never followed; a cycle ends. */
        e = eit_mk(TD "/c3", TD "/elsewhere", "unix:uid:2");
        e->state = strdup("revoked");
        create(fx, e);
        create(fx, mk_alias(TD "/c2", "unix:uid:2"));
        create(fx, eit_mk(TD "/c1", TD "/c5", "unix:uid:2"));
        l = calloc(1, sizeof(char *));
        assert_ok(entry_index_walk_up(fx->idx, TD "/c3", fx->now, false, collect_id, &l));
        /* c3 c2 c1, then A and c5 (from the second c1), then c4 (c5's parent). */
        assert_int_equal(strv_length_free(l, AGENT, TD "/elsewhere"), 6);
        l = calloc(1, sizeof(char *));
        assert_ok(entry_index_walk_up(fx->idx, TD "/c3", fx->now, true, collect_id, &l));
        assert_int_equal(strv_length_free(l, TD "/elsewhere", TD "/warden/server"), 7);
        l = calloc(1, sizeof(char *));
        assert_ok(entry_index_walk_up(fx->idx, TD "/nothing", fx->now, true, collect_id, &l));
        assert_int_equal(strv_length_free(l, TD "/nothing", NULL), 1);

        assert_errno(entry_index_walk_up(fx->idx, TD "/c9", fx->now, true, stop_at_two, &calls),
                     ECANCELED);
        assert_int_equal(calls, 2);
}

static void test_matching_aliases(void **state) {
        Fx *fx = *state;
        _cleanup_(selector_set_done) SelectorSet sel = {};
        _cleanup_(authz_view_done) AuthzView v = {};
        const char *want[2];
        Entry *e;

        assert_ok(selector_set_add(&sel, "a", "1"));
        assert_ok(selector_set_add(&sel, "b", "2"));
        assert_ok(selector_set_add(&sel, "c", "3"));
        want[0] = create(fx, mk_alias(TD "/n1", "b:2"));
        e = mk_alias(TD "/n2", "a:1");
        assert_ok(selector_set_add(&e->selectors, "c", "3"));
        want[1] = create(fx, e);
        e = mk_alias(TD "/n3", "a:1");
        assert_ok(selector_set_add(&e->selectors, "d", "4"));
        create(fx, e); /* d:4 missing */
        e = mk_alias(TD "/n4", "a:1");
        e->state = strdup("pending_approval");
        create(fx, e);
        create(fx, eit_mk(TD "/n5", AGENT, "a:1")); /* not an alias */

        assert_ok(entry_index_matching_aliases(fx->idx, &sel, fx->now, &v));
        assert_int_equal(v.n, 2);
        for (size_t i = 0; i < 2; i++)
                assert_true(streq(v.entries[i]->id, want[0]) || streq(v.entries[i]->id, want[1]));
        assert_false(streq(v.entries[0]->id, v.entries[1]->id));
        assert_ok(entry_index_matching_aliases(fx->idx, &(SelectorSet){}, fx->now, &v));
        assert_int_equal(v.n, 0);
        assert_ok(entry_index_aliases_named(fx->idx, TD "/n4", &v));
        assert_int_equal(v.n, 1);
        assert_ok(entry_index_aliases_named(fx->idx, TD "/n5", &v));
        assert_int_equal(v.n, 0);
}

static void test_next_expiry(void **state) {
        Fx *fx = *state;
        int64_t at[400];
        Entry *e;
        char id[32];
        unsigned seed = (unsigned) time(NULL);

        assert_int_equal(entry_index_next_expiry(fx->idx, fx->now), 0);
        print_message("next_expiry seed %u\n", seed);
        srand(seed);
        for (size_t i = 0; i < ELEMENTSOF(at); i++) {
                at[i] = rand() % 3 == 0 ? 0 : 1000 + rand() % 500;
                e = eit_mk(TD "/e", AGENT, "unix:uid:1");
                e->expires_at = at[i];
                snprintf(id, sizeof(id), "e%zu", i);
                e->id = strdup(id);
                assert_ok(entry_index_put(fx->idx, e));
        }
        for (size_t round = 0; round < 600; round++) {
                int64_t now = 990 + rand() % 520, want = 0;
                size_t i = (size_t) rand() % ELEMENTSOF(at);

                for (size_t j = 0; j < ELEMENTSOF(at); j++)
                        if (at[j] > now && (want == 0 || at[j] < want))
                                want = at[j];
                if (entry_index_next_expiry(fx->idx, now) != want)
                        fail_msg("round %zu: next expiry after %" PRIi64 " is %" PRIi64
                                 ", expected %" PRIi64 " (seed %u)",
                                 round, now, entry_index_next_expiry(fx->idx, now), want, seed);
                /* Change one: remove it, or put it back with a new time. */
                snprintf(id, sizeof(id), "e%zu", i);
                if (rand() % 2 && at[i] >= 0) {
                        (void) entry_index_remove(fx->idx, id);
                        at[i] = -1;
                        continue;
                }
                at[i] = rand() % 4 == 0 ? 0 : 1000 + rand() % 500;
                e = eit_mk(TD "/e", AGENT, "unix:uid:1");
                e->expires_at = at[i];
                e->id = strdup(id);
                assert_ok(entry_index_put(fx->idx, e));
        }
}

static bool same_entry(const Entry *a, const Entry *b) {
        if (!streq(a->id, b->id) || !streq(a->spiffe_id, b->spiffe_id) ||
            !streq(a->parent_id, b->parent_id) || a->node != b->node ||
            a->expires_at != b->expires_at || a->revision != b->revision ||
            !streq_ptr(a->state, b->state) || a->selectors.n != b->selectors.n)
                return false;
        for (size_t i = 0; i < a->selectors.n; i++)
                if (selector_compare(&a->selectors.items[i], &b->selectors.items[i]) != 0)
                        return false;
        return true;
}

/* More than two pages: loading equals putting every entry, and replaces what was there. */
static void test_load(void **state) {
        Fx *fx = *state;
        _cleanup_(entry_index_freep) EntryIndex *loaded = NULL;
        Entry **all = NULL, *junk;
        size_t total = 11500, n = 0;

        for (size_t done = 0; done < total;) {
                Entry *batch[DS_BATCH_MAX];
                size_t k = total - done < DS_BATCH_MAX ? total - done : DS_BATCH_MAX;
                char sel[32], sid[64];

                for (size_t i = 0; i < k; i++) {
                        snprintf(sel, sizeof(sel), "unix:uid:%zu", done + i);
                        snprintf(sid, sizeof(sid), TD "/w%zu", (done + i) % 97);
                        batch[i] = eit_mk(sid, (done + i) % 5 ? AGENT : TD "/w3", sel);
                        batch[i]->node = (done + i) % 13 == 0;
                        batch[i]->expires_at = (done + i) % 7 ? 0 : fx->now + (int64_t) i;
                }
                assert_ok(ds_create_entries(fx->ds, batch, k, NULL));
                for (size_t i = 0; i < k; i++) {
                        Entry *stored = NULL;

                        assert_ok(ds_get_entry(fx->ds, batch[i]->id, &stored));
                        assert_ok(entry_index_put(fx->idx, stored));
                        entry_free(batch[i]);
                }
                done += k;
        }
        assert_ok(entry_index_new(&loaded));
        junk = eit_mk(TD "/junk", AGENT, "unix:uid:1");
        junk->id = strdup("junk");
        assert_ok(entry_index_put(loaded, junk));
        assert_ok(entry_index_load(loaded, fx->ds));
        assert_null(entry_index_get(loaded, "junk"));
        assert_int_equal(entry_index_count(loaded), total);
        assert_int_equal(entry_index_count(fx->idx), total);
        assert_ok(ds_list_entries(fx->ds, NULL, &all, &n));
        assert_int_equal(n, total);
        for (size_t i = 0; i < n; i++) {
                const Entry *a = entry_index_get(loaded, all[i]->id),
                            *b = entry_index_get(fx->idx, all[i]->id);

                assert_non_null(a);
                assert_non_null(b);
                assert_true(same_entry(a, all[i]));
                assert_true(same_entry(b, all[i]));
        }
        entry_array_free(all, n);
        assert_int_equal(entry_index_next_expiry(loaded, fx->now),
                         entry_index_next_expiry(fx->idx, fx->now));
        assert_int_equal(entry_index_memory(loaded), entry_index_memory(fx->idx));
        entry_index_free(fx->idx);
        fx->idx = TAKE_PTR(loaded);
        authz_set_free(eit_check_authorized(fx, AGENT, &(SelectorSet){}, fx->now, 0));
        authz_set_free(eit_check_authorized(fx, AGENT, &(SelectorSet){}, fx->now, 777));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_put_remove_errors, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_authorized_rules, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_walk_up, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_matching_aliases, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_next_expiry, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_load, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_random_ops, eit_setup, eit_teardown),
                cmocka_unit_test_setup_teardown(test_random_small_cap, eit_setup, eit_teardown),
        };

        /* The small caps truncate sets on purpose: no warning per walk. */
        log_set_max_level(LOG_ERR);
        (void) log_parse_environment();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
