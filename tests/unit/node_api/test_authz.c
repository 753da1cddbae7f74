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

/* Stores e (taking it); returns its new id (borrowed from a static ring). */
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

/* true when the set holds an entry with this SPIFFE ID. */
static bool has(const AuthzSet *set, const char *spiffe_id) {
        for (size_t i = 0; i < set->n; i++)
                if (streq(set->entries[i]->spiffe_id, spiffe_id))
                        return true;
        return false;
}

static void test_direct_children(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        const char *a, *b, *other;

        a = put(fx, mk(TD "/a", AGENT, "unix:uid:1"));
        b = put(fx, mk(TD "/b", AGENT, "unix:uid:2"));
        other = put(fx, mk(TD "/other", TD "/warden/agent/join_token/t2", "unix:uid:3"));
        set = build(fx);
        assert_int_equal(set->n, 2);
        assert_false(set->truncated);
        assert_true(strcmp(set->entries[0]->id, set->entries[1]->id) < 0);
        assert_non_null(authz_set_find(set, a));
        assert_non_null(authz_set_find(set, b));
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

        put(fx, mk(TD "/wl-a", TD "/cluster/a", "unix:uid:1"));
        put(fx, mk(TD "/wl-b", TD "/cluster/b", "unix:uid:1"));
        put(fx, mk(TD "/wl-c", TD "/cluster/c", "unix:uid:1"));
        set = build(fx);
        assert_int_equal(set->n, 1);
        assert_true(has(set, TD "/wl-a"));
        /* Node alias entries themselves are never served. */
        assert_false(has(set, TD "/cluster/a"));
}

static void test_descendants_levels(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        char id[64], parent[64];

        /* A chain of AUTHZ_LEVELS_MAX + 2 levels below the agent. */
        snprintf(parent, sizeof(parent), "%s", AGENT);
        for (int i = 1; i <= AUTHZ_LEVELS_MAX + 2; i++) {
                snprintf(id, sizeof(id), TD "/l%d", i);
                put(fx, mk(id, parent, "unix:uid:1"));
                snprintf(parent, sizeof(parent), "%s", id);
        }
        set = build(fx);
        assert_int_equal(set->n, AUTHZ_LEVELS_MAX);
        snprintf(id, sizeof(id), TD "/l%d", AUTHZ_LEVELS_MAX);
        assert_true(has(set, id));
        snprintf(id, sizeof(id), TD "/l%d", AUTHZ_LEVELS_MAX + 1);
        assert_false(has(set, id));
}

static void test_cycle(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;

        /* x under the agent, y under x, and x again under y: each parent is looked up
         * once, so the walk ends and nothing appears twice. */
        put(fx, mk(TD "/x", AGENT, "unix:uid:1"));
        put(fx, mk(TD "/y", TD "/x", "unix:uid:2"));
        put(fx, mk(TD "/x", TD "/y", "unix:uid:3"));
        put(fx, mk(TD "/x", AGENT, "unix:uid:4"));
        set = build(fx);
        assert_int_equal(set->n, 4);
}

static void test_unusable(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
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
        put(fx, e);
        set = build(fx);
        assert_int_equal(set->n, 1);
        assert_true(has(set, TD "/active"));

        assert_false(authz_entry_usable(NULL, fx->now));
}

/* An entry naming the server or an agent (the datastore takes it; entry_validate() would
 * not) is never served, and does not lend its children to the agent either. */
static void test_reserved_ids(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        _cleanup_(entry_freep) Entry *e = NULL;

        put(fx, mk(TD "/warden/server", AGENT, "unix:uid:1"));
        put(fx, mk(TD "/warden/agent/join_token/t2", AGENT, "unix:uid:1"));
        put(fx, mk(TD "/of-t2", TD "/warden/agent/join_token/t2", "unix:uid:1"));
        put(fx, mk(TD "/ok", AGENT, "unix:uid:1"));
        set = build(fx);
        assert_int_equal(set->n, 1);
        assert_true(has(set, TD "/ok"));

        e = mk(TD "/warden/server", AGENT, "unix:uid:1");
        assert_false(authz_entry_usable(e, fx->now));
        free(e->spiffe_id);
        e->spiffe_id = strdup(TD "/ok");
        assert_true(authz_entry_usable(e, fx->now));
}

static void test_entry_cap(void **state) {
        Fx *fx = *state;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        size_t total = AUTHZ_ENTRIES_MAX + 1, done = 0;

        while (done < total) {
                Entry *batch[DS_BATCH_MAX];
                size_t n = total - done < DS_BATCH_MAX ? total - done : DS_BATCH_MAX;
                char sel[32];

                for (size_t i = 0; i < n; i++) {
                        snprintf(sel, sizeof(sel), "unix:uid:%zu", done + i);
                        batch[i] = mk(TD "/many", AGENT, sel);
                }
                assert_ok(ds_create_entries(fx->ds, batch, n, NULL));
                for (size_t i = 0; i < n; i++)
                        entry_free(batch[i]);
                done += n;
        }
        set = build(fx);
        assert_int_equal(set->n, AUTHZ_ENTRIES_MAX);
        assert_true(set->truncated);
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
