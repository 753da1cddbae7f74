/* SPDX-License-Identifier: Apache-2.0 */
/* sync_delta: the Sync messages that bring an agent from what it holds to its current
 * authorized set. Random sequences of changes (entries added, updated, removed;
 * federated bundles added, changed, dropped), each followed by the messages
 * sync_delta_next() builds, applied to a model of the agent that follows the rules of
 * docs/sync.md: after every round the agent holds exactly the authorized set, with the
 * current revisions and bundles — the same as a fresh full snapshot gives. Small
 * message sizes force snapshots and deltas to come in parts. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "entry.h"
#include "pb_util.h"
#include "sync_delta.h"
#include "testlib.h"

#define N_POOL 60
#define N_TDS 5

/* ---- the server side: entries and bundles ---- */

typedef struct World {
        Entry *pool[N_POOL];
        bool authorized[N_POOL];
        uint8_t *bundle[N_TDS]; /* packed Bundle, NULL = none stored */
        size_t bundle_len[N_TDS];
        unsigned bundle_version[N_TDS];
} World;

static const char *td_name(size_t i) {
        static const char *names[N_TDS] = {"a.example", "b.example", "c.example", "d.example",
                                           "e.example"};
        return names[i];
}

static void world_set_bundle(World *w, size_t i, bool present) {
        Warden__Types__V1__Bundle b = WARDEN__TYPES__V1__BUNDLE__INIT;

        free(w->bundle[i]);
        w->bundle[i] = NULL;
        w->bundle_len[i] = 0;
        if (!present)
                return;
        b.trust_domain = (char *) td_name(i);
        b.sequence_number = ++w->bundle_version[i];
        assert_ok(pb_pack(&b, &w->bundle[i], &w->bundle_len[i]));
}

static int world_lookup(
        void *userdata, const char *td, const uint8_t **data, size_t *len, uint64_t *hash) {
        World *w = userdata;

        for (size_t i = 0; i < N_TDS; i++)
                if (streq(td, td_name(i))) {
                        *data = w->bundle[i];
                        *len = w->bundle_len[i];
                        *hash = w->bundle[i] ? sync_hash(w->bundle[i], w->bundle_len[i]) : 0;
                        return 0;
                }
        *data = NULL, *len = 0, *hash = 0;
        return 0;
}

static void world_init(World *w) {
        *w = (World){};
        for (size_t i = 0; i < N_POOL; i++) {
                Entry *e;

                assert_ok(entry_new(&e));
                assert_true(asprintf(&e->id, "%08zx-entry", i * 7919 % 1000) > 0);
                assert_true(asprintf(&e->spiffe_id, "spiffe://example.org/w/%zu", i) > 0);
                e->parent_id = strdup("spiffe://example.org/warden/agent/x");
                e->revision = 1;
                /* A hint long enough that parts hold a handful of entries. */
                assert_true(asprintf(&e->hint, "hint-%zu-%0*d", i, (int) (i % 40), 0) > 0);
                if (i % 4 == 0)
                        assert_ok(entry_add_federates_with(e, td_name(i % N_TDS)));
                w->pool[i] = e;
        }
        for (size_t i = 0; i < N_TDS; i++)
                world_set_bundle(w, i, i != 3); /* d.example: no bundle stored at first */
}

static void world_done(World *w) {
        for (size_t i = 0; i < N_POOL; i++)
                entry_free(w->pool[i]);
        for (size_t i = 0; i < N_TDS; i++)
                free(w->bundle[i]);
}

static int cmp_entry(const void *a, const void *b) {
        return strcmp((*(const Entry *const *) a)->id, (*(const Entry *const *) b)->id);
}

/* The authorized set as the index would give it: sorted by id. */
static void world_view(World *w, AuthzView *v) {
        v->n = 0;
        v->entries = reallocarray(v->entries, N_POOL, sizeof(Entry *));
        assert_non_null(v->entries);
        for (size_t i = 0; i < N_POOL; i++)
                if (w->authorized[i])
                        v->entries[v->n++] = w->pool[i];
        qsort(v->entries, v->n, sizeof(Entry *), cmp_entry);
}

static void world_mutate(World *w) {
        size_t i = (size_t) rand() % N_POOL;

        switch (rand() % 7) {
        case 0:
        case 1: /* authorize or revoke one entry */
                w->authorized[i] = !w->authorized[i];
                break;
        case 2: /* update an entry: a new revision with other content */
                w->pool[i]->revision++;
                free(w->pool[i]->hint);
                assert_true(asprintf(&w->pool[i]->hint, "rev-%" PRId64 "-%0*d",
                                     w->pool[i]->revision, rand() % 50, 0) > 0);
                break;
        case 6: /* deleted and created again under the same id: revision 1 again */
                w->pool[i]->revision = 1;
                w->pool[i]->created_at++;
                free(w->pool[i]->hint);
                assert_true(asprintf(&w->pool[i]->hint, "again-%d", rand()) > 0);
                break;
        case 3: /* an entry starts or stops federating */
                if (w->pool[i]->n_federates_with > 0) {
                        free(w->pool[i]->federates_with[0]);
                        free(w->pool[i]->federates_with);
                        w->pool[i]->federates_with = NULL;
                        w->pool[i]->n_federates_with = 0;
                } else
                        assert_ok(entry_add_federates_with(w->pool[i], td_name(i % N_TDS)));
                w->pool[i]->revision++;
                break;
        case 4: /* a federated bundle changes, appears or goes */
                world_set_bundle(w, i % N_TDS, rand() % 4 != 0);
                break;
        default: /* many at once: a bulk change */
                for (size_t k = 0; k < 20; k++)
                        w->authorized[(size_t) rand() % N_POOL] = rand() % 2;
                break;
        }
}

static Warden__Node__V1__SyncResponse *msg_new(void) {
        Warden__Node__V1__SyncResponse *m = malloc(sizeof(*m));

        assert_non_null(m);
        warden__node__v1__sync_response__init(m);
        return m;
}

/* ---- the agent side: a model of agent/manager.c ---- */

typedef struct Held {
        char *id;
        int64_t revision;
        int64_t created_at;
        bool seen;
} Held;

typedef struct Agent {
        Held held[N_POOL * 2];
        size_t n;
        uint64_t bundle_seq[N_TDS]; /* 0 = not held */
        bool in_snapshot;
        uint64_t applied;
        bool have;
} Agent;

static Held *agent_find(Agent *a, const char *id) {
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->held[i].id, id))
                        return &a->held[i];
        return NULL;
}

static void agent_remove_at(Agent *a, size_t i) {
        free(a->held[i].id);
        a->held[i] = a->held[--a->n];
}

static size_t td_index(const char *td) {
        for (size_t i = 0; i < N_TDS; i++)
                if (streq(td, td_name(i)))
                        return i;
        fail_msg("unknown trust domain %s", td);
        return 0;
}

static void agent_apply(Agent *a, const Warden__Node__V1__SyncResponse *m) {
        if (!m->full_snapshot) /* the gap check of agent/link.c */
                assert_true(a->have && m->base_sequence == a->applied);
        a->applied = m->sequence;
        a->have = true;
        if (m->full_snapshot) {
                for (size_t i = 0; i < a->n; i++)
                        a->held[i].seen = false;
                for (size_t i = 0; i < N_TDS; i++)
                        a->bundle_seq[i] = 0;
                a->in_snapshot = true;
        }
        for (size_t i = 0; i < m->n_entries; i++) {
                Held *h = agent_find(a, m->entries[i]->id);

                if (!h) {
                        assert_true(a->n < N_POOL * 2);
                        h = &a->held[a->n++];
                        h->id = strdup(m->entries[i]->id);
                }
                h->revision = m->entries[i]->revision;
                h->created_at = m->entries[i]->created_at;
                h->seen = true;
        }
        for (size_t i = 0; i < m->n_deleted_entry_ids; i++)
                for (size_t k = 0; k < a->n; k++)
                        if (streq(a->held[k].id, m->deleted_entry_ids[i])) {
                                agent_remove_at(a, k);
                                break;
                        }
        if (a->in_snapshot && !m->more) {
                for (size_t k = a->n; k > 0; k--)
                        if (!a->held[k - 1].seen)
                                agent_remove_at(a, k - 1);
                a->in_snapshot = false;
        }
        for (size_t i = 0; i < m->n_federated_bundles; i++)
                a->bundle_seq[td_index(m->federated_bundles[i]->trust_domain)] =
                        m->federated_bundles[i]->sequence_number;
        for (size_t i = 0; i < m->n_removed_trust_domains; i++)
                a->bundle_seq[td_index(m->removed_trust_domains[i])] = 0;
}

static void agent_done(Agent *a) {
        for (size_t i = 0; i < a->n; i++)
                free(a->held[i].id);
        a->n = 0;
}

/* The agent holds exactly the view, with current revisions and bundles. */
static void assert_agent_matches(Agent *a, World *w, const AuthzView *v) {
        bool wanted[N_TDS] = {};

        assert_false(a->in_snapshot);
        assert_int_equal(a->n, v->n);
        for (size_t i = 0; i < v->n; i++) {
                Held *h = agent_find(a, v->entries[i]->id);

                assert_non_null(h);
                assert_int_equal(h->revision, v->entries[i]->revision);
                assert_int_equal(h->created_at, v->entries[i]->created_at);
                for (size_t k = 0; k < v->entries[i]->n_federates_with; k++)
                        wanted[td_index(v->entries[i]->federates_with[k])] = true;
        }
        for (size_t i = 0; i < N_TDS; i++)
                assert_int_equal(a->bundle_seq[i],
                                 wanted[i] && w->bundle[i] ? w->bundle_version[i] : 0);
}

/* Sends messages until nothing is left; returns how many. */
static unsigned round_trip(
        SyncState *st, World *w, Agent *a, bool full, size_t max_bytes, uint64_t *seq) {
        AuthzView v = {};
        unsigned n = 0;

        world_view(w, &v);
        for (;;) {
                Warden__Node__V1__SyncResponse *m = msg_new();
                Warden__Node__V1__SyncResponse *copy;
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len;
                bool more, empty;

                assert_ok(sync_delta_next(st, &v, full && n == 0, max_bytes, world_lookup, w, m));
                more = m->more;
                empty = !m->full_snapshot && m->n_entries == 0 && m->n_deleted_entry_ids == 0 &&
                        m->n_federated_bundles == 0 && m->n_removed_trust_domains == 0;
                if (!empty) {
                        m->base_sequence = *seq;
                        m->sequence = ++*seq;
                        /* Over the wire and back, as the agent gets it. */
                        assert_ok(pb_pack(m, &buf, &len));
                        assert_true(len <= max_bytes + 4096);
                        copy = warden__node__v1__sync_response__unpack(NULL, len, buf);
                        assert_non_null(copy);
                        agent_apply(a, copy);
                        pb_free(copy);
                        n++;
                }
                pb_free(m);
                if (!more)
                        break;
                assert_true(n < 1000);
        }
        free(v.entries);
        return n;
}

static void run_sequence(unsigned seed, size_t max_bytes) {
        SyncState st = {};
        Agent a = {};
        World w;
        uint64_t seq = 0;

        srand(seed);
        world_init(&w);
        for (size_t i = 0; i < N_POOL; i++)
                w.authorized[i] = rand() % 2;
        (void) round_trip(&st, &w, &a, true, max_bytes, &seq);
        {
                AuthzView v = {};

                world_view(&w, &v);
                assert_agent_matches(&a, &w, &v);
                free(v.entries);
        }
        for (unsigned step = 0; step < 400; step++) {
                AuthzView v = {};
                unsigned changes = 1 + (unsigned) rand() % 3;

                for (unsigned k = 0; k < changes; k++)
                        world_mutate(&w);
                /* Now and then the stream starts over: a full snapshot again. */
                (void) round_trip(&st, &w, &a, rand() % 25 == 0, max_bytes, &seq);
                world_view(&w, &v);
                assert_agent_matches(&a, &w, &v);
                /* Nothing changed: nothing to send. */
                assert_int_equal(round_trip(&st, &w, &a, false, max_bytes, &seq), 0);
                free(v.entries);
        }
        sync_state_done(&st);
        agent_done(&a);
        world_done(&w);
}

static void test_random_sequences(void **state) {
        unsigned seed = (unsigned) time(NULL);

        (void) state;
        printf("seed %u\n", seed);
        for (unsigned i = 0; i < 8; i++) {
                run_sequence(seed + i, 1024 * 1024); /* everything in one message */
                run_sequence(seed + i, 400);         /* a few entries per part */
        }
}

/* An unchanged entry is not sent again; a new revision is; a removed one is named. */
static void test_minimal_delta(void **state) {
        Warden__Node__V1__SyncResponse *m = msg_new();
        SyncState st = {};
        AuthzView v = {};
        World w;

        (void) state;
        world_init(&w);
        for (size_t i = 0; i < 10; i++)
                w.authorized[i] = true;
        world_view(&w, &v);
        assert_ok(sync_delta_next(&st, &v, true, 1 << 20, world_lookup, &w, m));
        assert_true(m->full_snapshot);
        assert_int_equal(m->n_entries, 10);
        assert_int_equal(st.n_sent, 10);
        pb_free(m);

        w.pool[3]->revision++;
        w.authorized[5] = false;
        world_view(&w, &v);
        m = msg_new();
        assert_ok(sync_delta_next(&st, &v, false, 1 << 20, world_lookup, &w, m));
        assert_false(m->full_snapshot);
        assert_int_equal(m->n_entries, 1);
        assert_string_equal(m->entries[0]->id, w.pool[3]->id);
        assert_int_equal(m->n_deleted_entry_ids, 1);
        assert_string_equal(m->deleted_entry_ids[0], w.pool[5]->id);
        assert_int_equal(m->n_federated_bundles, 0);
        pb_free(m);

        /* A changed federated bundle that entries 0 and 8 (a.example) use. */
        world_set_bundle(&w, 0, true);
        m = msg_new();
        assert_ok(sync_delta_next(&st, &v, false, 1 << 20, world_lookup, &w, m));
        assert_int_equal(m->n_entries, 0);
        assert_int_equal(m->n_federated_bundles, 1);
        assert_string_equal(m->federated_bundles[0]->trust_domain, "a.example");
        pb_free(m);

        /* Deleted from the datastore: the agent must drop it. */
        world_set_bundle(&w, 0, false);
        m = msg_new();
        assert_ok(sync_delta_next(&st, &v, false, 1 << 20, world_lookup, &w, m));
        assert_int_equal(m->n_removed_trust_domains, 1);
        assert_string_equal(m->removed_trust_domains[0], "a.example");
        pb_free(m);

        m = msg_new();
        assert_errno(sync_delta_next(&st, &v, false, 0, world_lookup, &w, m), EINVAL);
        pb_free(m);
        free(v.entries);
        sync_state_done(&st);
        world_done(&w);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal_delta),
                cmocka_unit_test(test_random_sequences),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
