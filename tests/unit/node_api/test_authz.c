/* SPDX-License-Identifier: Apache-2.0 */
/* authz: the entries an agent is authorized for, on a real SQLite datastore:
 * direct children, node aliases matched by selectors, descendants (level cap,
 * cycles), unusable entries and what hangs below them, and the entry cap. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "cleanup.h"
#include "ds.h"
#include "testlib.h"

#define TD "spiffe://example.org"
#define AGENT TD "/warden/agent/join_token/t1"

typedef struct Fx {
        char *dir;
        Datastore *ds;
        SelectorSet agent_sel;
        int64_t now;
} Fx;

static int setup(void **state) {
        Fx *fx = calloc(1, sizeof(Fx));
        _cleanup_free_ char *path = NULL;

        assert_non_null(fx);
        fx->dir = test_tmpdir();
        assert_true(asprintf(&path, "%s/ds.sqlite3", fx->dir) > 0);
        assert_ok(ds_open_sqlite(path, &fx->ds));
        assert_ok(selector_set_add(&fx->agent_sel, "warden", "agent_id:" AGENT));
        assert_ok(selector_set_add(&fx->agent_sel, "x509pop", "subject:cn:node-1"));
        fx->now = time(NULL);
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fx *fx = *state;

        ds_close(fx->ds);
        selector_set_done(&fx->agent_sel);
        test_rmdir_free(fx->dir);
        free(fx);
        return 0;
}

static Entry *mk(const char *spiffe_id, const char *parent_id, const char *selector) {
        Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_non_null(e->spiffe_id);
        assert_non_null(e->parent_id);
        assert_ok(selector_set_add_string(&e->selectors, selector, NULL));
        return e;
}

/* Stores e (taking it); returns its new id (borrowed from a static ring: valid for the
 * next 15 calls). */
static const char *put(Fx *fx, Entry *e) {
        static char ids[16][ENTRY_ID_MAX + 1];
        static unsigned k;
        char *id = ids[k++ % 16];

        assert_ok(ds_create_entries(fx->ds, &e, 1, NULL));
        snprintf(id, ENTRY_ID_MAX + 1, "%s", e->id);
        entry_free(e);
        return id;
}

static AuthzSet *build(Fx *fx) {
        AuthzSet *set = NULL;

        assert_ok(authz_set_build(fx->ds, AGENT, &fx->agent_sel, fx->now, &set));
        return set;
}

/* The set holds exactly the entries with these (distinct) IDs, sorted by ID. */
static void assert_members(const AuthzSet *set, const char *const *ids, size_t n) {
        if (set->n != n)
                fail_msg("the set holds %zu entries, expected %zu", set->n, n);
        for (size_t i = 1; i < set->n; i++)
                assert_true(strcmp(set->entries[i - 1]->id, set->entries[i]->id) < 0);
        for (size_t i = 0; i < n; i++)
                if (!authz_set_find(set, ids[i]))
                        fail_msg("entry %s is not in the set", ids[i]);
}

static void test_direct_children(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        const char *a, *b, *other;

        a = put(fx, mk(TD "/a", AGENT, "unix:uid:1"));
        b = put(fx, mk(TD "/b", AGENT, "unix:uid:2"));
        other = put(fx, mk(TD "/other", TD "/warden/agent/join_token/t2", "unix:uid:3"));
        set = build(fx);
        assert_members(set, (const char *[]){a, b}, 2);
        assert_false(set->truncated);
        assert_null(authz_set_find(set, other));
        assert_null(authz_set_find(set, "nosuchid"));
        assert_null(authz_set_find(set, ""));

        /* An agent with no entries gets an empty set. */
        authz_set_free(TAKE_PTR(set));
        assert_ok(authz_set_build(fx->ds, TD "/warden/agent/x", &fx->agent_sel, fx->now, &set));
        assert_int_equal(set->n, 0);
        assert_errno(authz_set_build(NULL, AGENT, &fx->agent_sel, fx->now, &set), EINVAL);
}

static void test_node_aliases(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        Entry *alias, *alias2, *expired_alias;
        const char *wl_a;

        /* Matches: all its selectors are the agent's. */
        alias = mk(TD "/cluster/a", TD "/warden/server", "x509pop:subject:cn:node-1");
        alias->node = true;
        put(fx, alias);
        /* Does not match: one selector the agent lacks. */
        alias2 = mk(TD "/cluster/b", TD "/warden/server", "x509pop:subject:cn:node-1");
        alias2->node = true;
        assert_ok(selector_set_add(&alias2->selectors, "x509pop", "subject:cn:node-2"));
        put(fx, alias2);
        /* Matches by selectors but has expired. */
        expired_alias = mk(TD "/cluster/c", TD "/warden/server", "warden:agent_id:" AGENT);
        expired_alias->node = true;
        expired_alias->expires_at = fx->now - 1;
        put(fx, expired_alias);

        wl_a = put(fx, mk(TD "/wl-a", TD "/cluster/a", "unix:uid:1"));
        put(fx, mk(TD "/wl-b", TD "/cluster/b", "unix:uid:1"));
        put(fx, mk(TD "/wl-c", TD "/cluster/c", "unix:uid:1"));
        /* Node alias entries themselves are never served. */
        set = build(fx);
        assert_members(set, &wl_a, 1);
}

static void test_descendants_levels(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        const char *levels[AUTHZ_LEVELS_MAX + 2];
        char id[64], parent[64];

        /* A chain of AUTHZ_LEVELS_MAX + 2 levels below the agent: the first
         * AUTHZ_LEVELS_MAX are served. */
        snprintf(parent, sizeof(parent), "%s", AGENT);
        for (int i = 0; i < AUTHZ_LEVELS_MAX + 2; i++) {
                snprintf(id, sizeof(id), TD "/l%d", i + 1);
                levels[i] = put(fx, mk(id, parent, "unix:uid:1"));
                snprintf(parent, sizeof(parent), "%s", id);
        }
        set = build(fx);
        assert_members(set, levels, AUTHZ_LEVELS_MAX);
}

static void test_cycle(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        const char *ids[4];

        /* x under the agent, y under x, and x again under y: each parent is looked up
         * once, so the walk ends and nothing appears twice. */
        ids[0] = put(fx, mk(TD "/x", AGENT, "unix:uid:1"));
        ids[1] = put(fx, mk(TD "/y", TD "/x", "unix:uid:2"));
        ids[2] = put(fx, mk(TD "/x", TD "/y", "unix:uid:3"));
        ids[3] = put(fx, mk(TD "/x", AGENT, "unix:uid:4"));
        set = build(fx);
        assert_members(set, ids, ELEMENTSOF(ids));
}

static void test_unusable(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        const char *active;
        Entry *e;

        e = mk(TD "/expired", AGENT, "unix:uid:1");
        e->expires_at = fx->now;
        put(fx, e);
        put(fx, mk(TD "/below-expired", TD "/expired", "unix:uid:1"));
        e = mk(TD "/pending", AGENT, "unix:uid:1");
        e->state = strdup("pending_approval");
        put(fx, e);
        e = mk(TD "/revoked", AGENT, "unix:uid:1");
        e->state = strdup("revoked");
        put(fx, e);
        e = mk(TD "/active", AGENT, "unix:uid:1");
        e->state = strdup("active");
        e->expires_at = fx->now + 60;
        active = put(fx, e);
        set = build(fx);
        assert_members(set, &active, 1);

        assert_false(authz_entry_usable(NULL, fx->now));
}

/* An entry naming the server or an agent (the datastore takes it; entry_validate() would
 * not) is never served, and does not lend its children to the agent either. */
static void test_reserved_ids(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        _cleanup_(entry_freep) Entry *e = NULL;
        const char *ok;

        put(fx, mk(TD "/warden/server", AGENT, "unix:uid:1"));
        put(fx, mk(TD "/warden/agent/join_token/t2", AGENT, "unix:uid:1"));
        put(fx, mk(TD "/of-t2", TD "/warden/agent/join_token/t2", "unix:uid:1"));
        ok = put(fx, mk(TD "/ok", AGENT, "unix:uid:1"));
        set = build(fx);
        assert_members(set, &ok, 1);

        e = mk(TD "/warden/server", AGENT, "unix:uid:1");
        assert_false(authz_entry_usable(e, fx->now));
        free(e->spiffe_id);
        e->spiffe_id = strdup(TD "/ok");
        assert_true(authz_entry_usable(e, fx->now));
}

static int cmp_id(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* One entry past the cap: the walk reads children in ID order and keeps the first
 * AUTHZ_ENTRIES_MAX, so the one with the greatest ID is left out. */
static void test_entry_cap(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        size_t total = AUTHZ_ENTRIES_MAX + 1, done = 0;
        _cleanup_free_ char **ids = calloc(total, sizeof(char *));

        assert_non_null(ids);
        while (done < total) {
                Entry *batch[DS_BATCH_MAX];
                size_t n = total - done < DS_BATCH_MAX ? total - done : DS_BATCH_MAX;
                char sel[32];

                for (size_t i = 0; i < n; i++) {
                        snprintf(sel, sizeof(sel), "unix:uid:%zu", done + i);
                        batch[i] = mk(TD "/many", AGENT, sel);
                }
                assert_ok(ds_create_entries(fx->ds, batch, n, NULL));
                for (size_t i = 0; i < n; i++) {
                        ids[done + i] = TAKE_PTR(batch[i]->id);
                        entry_free(batch[i]);
                }
                done += n;
        }
        qsort(ids, total, sizeof(char *), cmp_id);
        set = build(fx);
        assert_true(set->truncated);
        assert_members(set, (const char *const *) ids, AUTHZ_ENTRIES_MAX);
        assert_null(authz_set_find(set, ids[total - 1]));
        for (size_t i = 0; i < total; i++)
                free(ids[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_direct_children, setup, teardown),
                cmocka_unit_test_setup_teardown(test_node_aliases, setup, teardown),
                cmocka_unit_test_setup_teardown(test_descendants_levels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unusable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reserved_ids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_entry_cap, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
