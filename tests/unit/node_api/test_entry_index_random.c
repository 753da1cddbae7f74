/* SPDX-License-Identifier: Apache-2.0 */
/* entry_index under random operation sequences: entries (workloads, node aliases with
 * selectors from a small pool, chains deeper than the level cap, cycles, expired,
 * pending and revoked ones, reserved IDs) created, updated and deleted in the datastore
 * and the index alike. After every operation, for agents with different selectors:
 * the index's authorized set equals authz_set_build(); every agent whose set changed is
 * one the walk up names; matching aliases, aliases by name and the next expiry equal
 * brute force. Now and then a fresh entry_index_load() equals the index kept up to
 * date. The seed is printed; WARDEN_TEST_SEED=<n> replays a run. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "cleanup.h"
#include "entry_index_test.h"
#include "testlib.h"

#define N_AGENTS 5
#define N_POOL 6     /* alias selectors node:k0..k5 */
#define N_CLUSTERS 3 /* alias spiffe_ids */
#define N_WORKLOADS 6
#define N_CHAIN 12 /* /ch0 <- /ch1 <- ... deeper than AUTHZ_LEVELS_MAX */
#define N_ENTRIES_MAX 160

typedef struct Agent {
        char id[64];
        SelectorSet sel;
        char **set; /* the ids authz_set_build() gave last time */
        size_t n;
} Agent;

typedef struct Run {
        Fx *fx;
        uint64_t seed, rng;
        unsigned op, uid;
        bool small_caps;
        Agent agents[N_AGENTS];
        char **ids; /* every stored entry */
        size_t n_ids;
} Run;

static uint64_t rnd(Run *run) {
        /* xorshift64* */
        run->rng ^= run->rng >> 12;
        run->rng ^= run->rng << 25;
        run->rng ^= run->rng >> 27;
        return run->rng * 0x2545f4914f6cdd1dULL;
}

static size_t pick(Run *run, size_t n) {
        return (size_t) (rnd(run) >> 11) % n;
}

static void set_str(char **p, const char *s) {
        free(*p);
        *p = s ? strdup(s) : NULL;
        assert_true(!s || *p);
}

/* A random ID: an agent's, an alias's, a workload's or a chain link's. */
static void random_name(Run *run, char *buf, size_t size, bool agents) {
        switch (pick(run, agents ? 4 : 3)) {
        case 0:
                snprintf(buf, size, TD "/cluster/c%zu", pick(run, N_CLUSTERS));
                break;
        case 1:
                snprintf(buf, size, TD "/w%zu", pick(run, N_WORKLOADS));
                break;
        case 2:
                snprintf(buf, size, TD "/ch%zu", pick(run, N_CHAIN));
                break;
        default:
                snprintf(buf, size, TD "/warden/agent/a%zu", pick(run, N_AGENTS));
                break;
        }
}

static void random_selectors(Run *run, Entry *e) {
        char s[32];

        selector_set_done(&e->selectors);
        if (!e->node) {
                snprintf(s, sizeof(s), "unix:uid:%u", run->uid++);
                assert_ok(selector_set_add_string(&e->selectors, s, NULL));
                return;
        }
        for (size_t i = 0, n = 1 + pick(run, 3); i < n; i++) {
                snprintf(s, sizeof(s), "node:k%zu", pick(run, N_POOL));
                assert_ok(selector_set_add_string(&e->selectors, s, NULL));
        }
}

static void random_expiry(Run *run, Entry *e) {
        size_t k = pick(run, 10);

        e->expires_at = 0;
        if (k == 0)
                e->expires_at = run->fx->now - 1 - (int64_t) pick(run, 100);
        else if (k == 1)
                e->expires_at = run->fx->now + 1 + (int64_t) pick(run, 1000);
}

static void random_state(Run *run, Entry *e) {
        static const char *const states[] = {"pending_approval", "revoked", "active"};
        size_t k = pick(run, 12);

        set_str(&e->state, k < ELEMENTSOF(states) ? states[k] : NULL);
}

static Entry *random_entry(Run *run) {
        char sid[64], pid[64];
        size_t kind = pick(run, 10), k;
        Entry *e = NULL;

        assert_ok(entry_new(&e));
        if (kind < 2) { /* node alias */
                snprintf(sid, sizeof(sid), TD "/cluster/c%zu", pick(run, N_CLUSTERS));
                snprintf(pid, sizeof(pid), TD "/warden/server");
                e->node = true;
        } else if (kind < 5) { /* a chain link, the first one under an agent or alias */
                k = pick(run, N_CHAIN);
                snprintf(sid, sizeof(sid), TD "/ch%zu", k);
                if (k > 0)
                        snprintf(pid, sizeof(pid), TD "/ch%zu", k - 1);
                else
                        random_name(run, pid, sizeof(pid), true);
        } else {
                random_name(run, sid, sizeof(sid), pick(run, 20) == 0);
                random_name(run, pid, sizeof(pid), true);
        }
        set_str(&e->spiffe_id, sid);
        set_str(&e->parent_id, pid);
        random_selectors(run, e);
        random_expiry(run, e);
        random_state(run, e);
        return e;
}

static void mutate(Run *run, Entry *e) {
        char name[64];

        for (size_t i = 0, n = 1 + pick(run, 2); i < n; i++)
                switch (pick(run, 6)) {
                case 0:
                        random_name(run, name, sizeof(name), true);
                        set_str(&e->parent_id, name);
                        break;
                case 1:
                        random_name(run, name, sizeof(name), false);
                        set_str(&e->spiffe_id, name);
                        break;
                case 2:
                        e->node = !e->node;
                        random_selectors(run, e);
                        break;
                case 3:
                        random_expiry(run, e);
                        break;
                case 4:
                        random_state(run, e);
                        break;
                default:
                        random_selectors(run, e);
                        break;
                }
}

static Entry *copy_of(Run *run, const char *id) {
        const Entry *e = entry_index_get(run->fx->idx, id);
        Entry *c = NULL;

        if (!e)
                fail_msg("op %u: %s is not in the index (seed %" PRIu64 ")", run->op, id,
                         run->seed);
        assert_ok(entry_copy(e, &c));
        return c;
}

/* One random create, update or delete; *ret_old and *ret_new are copies of the versions
 * before and after (NULL: none). */
static void random_op(Run *run, Entry **ret_old, Entry **ret_new) {
        Fx *fx = run->fx;
        size_t k = pick(run, 10), i;
        char id[ENTRY_ID_MAX + 1];
        Entry *e, *stored = NULL;
        int r;

        *ret_old = *ret_new = NULL;
        if (run->n_ids == 0 || (k < 5 && run->n_ids < N_ENTRIES_MAX)) {
                if (eit_create(fx, random_entry(run), id) == -EEXIST)
                        return;
                run->ids = realloc(run->ids, (run->n_ids + 1) * sizeof(char *));
                assert_non_null(run->ids);
                run->ids[run->n_ids] = strdup(id);
                assert_non_null(run->ids[run->n_ids]);
                *ret_new = copy_of(run, run->ids[run->n_ids++]);
                return;
        }
        i = pick(run, run->n_ids);
        *ret_old = copy_of(run, run->ids[i]);
        if (k < 8) {
                e = copy_of(run, run->ids[i]);
                mutate(run, e);
                r = ds_update_entry(fx->ds, e, &stored);
                entry_free(e);
                if (r == -EEXIST)
                        return;
                assert_ok(r);
                assert_ok(entry_index_put(fx->idx, stored));
                *ret_new = copy_of(run, run->ids[i]);
                return;
        }
        assert_ok(ds_delete_entry(fx->ds, run->ids[i]));
        assert_ok(entry_index_remove(fx->idx, run->ids[i]));
        assert_errno(entry_index_remove(fx->idx, run->ids[i]), ENOENT);
        free(run->ids[i]);
        run->ids[i] = run->ids[--run->n_ids];
}

static int walk_collect(const char *id, void *userdata) {
        char ***l = userdata;
        size_t n = 0;

        while (*l && (*l)[n])
                n++;
        *l = realloc(*l, (n + 2) * sizeof(char *));
        assert_non_null(*l);
        (*l)[n] = strdup(id);
        (*l)[n + 1] = NULL;
        return 0;
}

static void strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}

static bool alias_covers(const Entry *e, const Agent *a) {
        return e && e->node && selector_set_is_subset(&e->selectors, &a->sel);
}

/* An agent whose set changed must be one the server would update: its ID is in the walk
 * up from the old or new parent, or it matches an alias named there, or the changed
 * entry is an alias it matches (before or after). */
static bool covered(Run *run, char **walk, const Agent *a, const Entry *old, const Entry *new) {
        _cleanup_(authz_view_done) AuthzView v = {};

        if (alias_covers(old, a) || alias_covers(new, a))
                return true;
        for (size_t i = 0; walk && walk[i]; i++) {
                if (streq(walk[i], a->id))
                        return true;
                assert_ok(entry_index_aliases_named(run->fx->idx, walk[i], &v));
                for (size_t j = 0; j < v.n; j++)
                        if (authz_entry_usable(v.entries[j], run->fx->now) &&
                            selector_set_is_subset(&v.entries[j]->selectors, &a->sel))
                                return true;
        }
        return false;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Matching aliases and aliases by name against a scan of every entry. */
static void check_aliases(Run *run, const Agent *a) {
        _cleanup_(authz_view_done) AuthzView v = {};
        _cleanup_free_ const char **got = NULL, **want = NULL;
        size_t n_want = 0, n_named = 0;
        char name[64];

        assert_ok(entry_index_matching_aliases(run->fx->idx, &a->sel, run->fx->now, &v));
        got = calloc(v.n + 1, sizeof(char *));
        want = calloc(run->n_ids + 1, sizeof(char *));
        assert_true(got && want);
        for (size_t i = 0; i < v.n; i++)
                got[i] = v.entries[i]->id;
        random_name(run, name, sizeof(name), false);
        for (size_t i = 0; i < run->n_ids; i++) {
                const Entry *e = entry_index_get(run->fx->idx, run->ids[i]);

                if (e->node && authz_entry_usable(e, run->fx->now) &&
                    selector_set_is_subset(&e->selectors, &a->sel))
                        want[n_want++] = e->id;
                n_named += e->node && streq(e->spiffe_id, name);
        }
        qsort(got, v.n, sizeof(char *), cmp_str);
        qsort(want, n_want, sizeof(char *), cmp_str);
        if (v.n != n_want)
                fail_msg("op %u: %s matches %zu aliases, brute force %zu (seed %" PRIu64 ")",
                         run->op, a->id, v.n, n_want, run->seed);
        for (size_t i = 0; i < n_want; i++)
                assert_string_equal(got[i], want[i]);
        assert_ok(entry_index_aliases_named(run->fx->idx, name, &v));
        assert_int_equal(v.n, n_named);
}

static void check_expiry(Run *run) {
        int64_t at[] = {run->fx->now, run->fx->now - 50, run->fx->now + 500};

        for (size_t k = 0; k < ELEMENTSOF(at); k++) {
                int64_t want = 0;

                for (size_t i = 0; i < run->n_ids; i++) {
                        int64_t t = entry_index_get(run->fx->idx, run->ids[i])->expires_at;

                        if (t > at[k] && (want == 0 || t < want))
                                want = t;
                }
                if (entry_index_next_expiry(run->fx->idx, at[k]) != want)
                        fail_msg("op %u: next expiry %" PRIi64 ", brute force %" PRIi64
                                 " (seed %" PRIu64 ")",
                                 run->op, entry_index_next_expiry(run->fx->idx, at[k]), want,
                                 run->seed);
        }
}

/* The agent's set from the datastore, compared with the index's; then whether it
 * changed, and if so that the walk up covers the agent. */
static void check_agent(Run *run, Agent *a, char **walk, const Entry *old, const Entry *new) {
        _cleanup_(authz_set_freep) AuthzSet *want = NULL;
        bool changed;

        if (run->small_caps)
                authz_set_free(eit_check_authorized(run->fx, a->id, &a->sel, run->fx->now,
                                                    1 + pick(run, 12)));
        want = eit_check_authorized(run->fx, a->id, &a->sel, run->fx->now, 0);
        assert_false(want->truncated);
        changed = want->n != a->n;
        for (size_t i = 0; i < want->n && !changed; i++)
                changed = !streq(want->entries[i]->id, a->set[i]);
        if (changed && !covered(run, walk, a, old, new))
                fail_msg("op %u: %s's set changed (%zu -> %zu entries) by entry %s, but the "
                         "walk up does not name it (seed %" PRIu64 ")",
                         run->op, a->id, a->n, want->n, (old ? old : new)->id, run->seed);
        for (size_t i = 0; i < a->n; i++)
                free(a->set[i]);
        a->set = realloc(a->set, (want->n + 1) * sizeof(char *));
        assert_non_null(a->set);
        for (size_t i = 0; i < want->n; i++)
                assert_non_null(a->set[i] = strdup(want->entries[i]->id));
        a->n = want->n;
}

/* A fresh load equals the index kept up to date. */
static void check_load(Run *run) {
        _cleanup_(entry_index_freep) EntryIndex *fresh = NULL;
        EntryIndex *kept = run->fx->idx;

        assert_ok(entry_index_new(&fresh));
        assert_ok(entry_index_load(fresh, run->fx->ds));
        assert_int_equal(entry_index_count(fresh), entry_index_count(kept));
        assert_int_equal(entry_index_count(fresh), run->n_ids);
        for (size_t i = 0; i < run->n_ids; i++) {
                const Entry *a = entry_index_get(fresh, run->ids[i]),
                            *b = entry_index_get(kept, run->ids[i]);

                assert_non_null(a);
                assert_non_null(b);
                assert_string_equal(a->spiffe_id, b->spiffe_id);
                assert_string_equal(a->parent_id, b->parent_id);
                assert_int_equal(a->revision, b->revision);
                assert_int_equal(a->node, b->node);
        }
        assert_int_equal(entry_index_next_expiry(fresh, run->fx->now),
                         entry_index_next_expiry(kept, run->fx->now));
        for (size_t k = 0; k < N_AGENTS; k++) {
                _cleanup_(authz_view_done) AuthzView x = {}, y = {};
                const Agent *a = &run->agents[k];

                assert_ok(entry_index_authorized(fresh, a->id, &a->sel, run->fx->now, 0, &x));
                assert_ok(entry_index_authorized(kept, a->id, &a->sel, run->fx->now, 0, &y));
                assert_int_equal(x.n, y.n);
                for (size_t i = 0; i < x.n; i++)
                        assert_string_equal(x.entries[i]->id, y.entries[i]->id);
        }
}

static void run_init(Run *run, Fx *fx, bool small_caps) {
        const char *env = getenv("WARDEN_TEST_SEED");
        char s[32];

        *run = (Run){.fx = fx, .small_caps = small_caps};
        run->seed = env ? strtoull(env, NULL, 10)
                        : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 20) ^ small_caps;
        run->rng = run->seed * 0x9e3779b97f4a7c15ULL + 1;
        print_message("entry_index random ops: seed %" PRIu64 " (WARDEN_TEST_SEED)\n", run->seed);
        for (size_t k = 0; k < N_AGENTS; k++) {
                Agent *a = &run->agents[k];

                snprintf(a->id, sizeof(a->id), TD "/warden/agent/a%zu", k);
                /* a0 has every pool selector, the last one none, the others some. */
                for (size_t j = 0; j < N_POOL; j++)
                        if (k == 0 || (k + 1 < N_AGENTS && pick(run, 2))) {
                                snprintf(s, sizeof(s), "node:k%zu", j);
                                assert_ok(selector_set_add_string(&a->sel, s, NULL));
                        }
                assert_ok(selector_set_add(&a->sel, "x509pop", "subject:cn:other"));
        }
}

static void run_done(Run *run) {
        for (size_t k = 0; k < N_AGENTS; k++) {
                for (size_t i = 0; i < run->agents[k].n; i++)
                        free(run->agents[k].set[i]);
                free(run->agents[k].set);
                selector_set_done(&run->agents[k].sel);
        }
        for (size_t i = 0; i < run->n_ids; i++)
                free(run->ids[i]);
        free(run->ids);
}

static void random_ops(Fx *fx, unsigned n_ops, bool small_caps) {
        Run run;

        run_init(&run, fx, small_caps);
        for (run.op = 0; run.op < n_ops; run.op++) {
                _cleanup_(entry_freep) Entry *old = NULL, *new = NULL;
                char **walk = NULL;

                random_op(&run, &old, &new);
                if (!old && !new)
                        continue;
                if (old)
                        assert_ok(entry_index_walk_up(fx->idx, old->parent_id, fx->now, true,
                                                      walk_collect, &walk));
                if (new)
                        assert_ok(entry_index_walk_up(fx->idx, new->parent_id, fx->now, true,
                                                      walk_collect, &walk));
                for (size_t k = 0; k < N_AGENTS; k++) {
                        check_agent(&run, &run.agents[k], walk, old, new);
                        check_aliases(&run, &run.agents[k]);
                }
                strv_free(walk);
                check_expiry(&run);
                if (run.op % 100 == 99)
                        check_load(&run);
        }
        check_load(&run);
        run_done(&run);
}

void test_random_ops(void **state) {
        random_ops(*state, 2000, false);
}

/* Small caps: which entries fit follows authz_set_build()'s order exactly. */
void test_random_small_cap(void **state) {
        random_ops(*state, 600, true);
}
