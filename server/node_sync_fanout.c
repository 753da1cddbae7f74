/* SPDX-License-Identifier: Apache-2.0 */
/* Which Sync streams a change affects (docs/sync.md "Fan-out").
 *
 * A changed entry can enter or leave the set of agent A only if A reaches its parent:
 * the parent is A's own ID, the ID of a node alias A matches, or the SPIFFE ID of an
 * entry A holds. entry_index_walk_up() follows that chain upward from the old and the
 * new parent; the streams of the agents named on the way, and of the agents matching
 * the node aliases named on the way, are marked dirty. A changed node alias affects
 * the agents its old or its new selectors match. Everything else is left alone: the
 * cost of a change depends on the agents it affects, not on the agents connected. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "node_sync_internal.h"

#define AGENT_ID_SELECTOR_TYPE "warden"
#define AGENT_ID_SELECTOR_PREFIX "agent_id:"

static size_t bucket_of(const NodeApi *n, const char *agent_id) {
        return sync_hash(agent_id, strlen(agent_id)) & (n->n_buckets - 1);
}

static int table_grow(NodeApi *n) {
        size_t nb = n->n_buckets ? n->n_buckets * 2 : 64;
        NodeStream **b = calloc(nb, sizeof(NodeStream *));

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n->n_buckets; i++)
                while (n->by_agent[i]) {
                        NodeStream *st = n->by_agent[i];
                        size_t k;

                        n->by_agent[i] = st->by_agent_next;
                        k = sync_hash(st->agent_id, strlen(st->agent_id)) & (nb - 1);
                        st->by_agent_next = b[k];
                        b[k] = st;
                }
        free(n->by_agent);
        n->by_agent = b;
        n->n_buckets = nb;
        return 0;
}

int node_sync_table_add(NodeApi *n, NodeStream *st) {
        size_t k;
        int r;

        if (n->n_table + 1 > n->n_buckets) {
                r = table_grow(n);
                if (r < 0)
                        return r;
        }
        k = bucket_of(n, st->agent_id);
        st->by_agent_next = n->by_agent[k];
        n->by_agent[k] = st;
        n->n_table++;
        return 0;
}

void node_sync_table_remove(NodeApi *n, NodeStream *st) {
        NodeStream **p;

        if (n->n_buckets == 0)
                return;
        for (p = &n->by_agent[bucket_of(n, st->agent_id)]; *p; p = &(*p)->by_agent_next)
                if (*p == st) {
                        *p = st->by_agent_next;
                        st->by_agent_next = NULL;
                        n->n_table--;
                        return;
                }
}

NodeStream *node_sync_table_first(NodeApi *n, const char *agent_id) {
        return n->n_buckets > 0 ? n->by_agent[bucket_of(n, agent_id)] : NULL;
}

void node_sync_mark(NodeApi *n, NodeStream *st) {
        if (st->finished || st->on_dirty_list)
                return;
        st->on_dirty_list = true;
        st->dirty_next = n->dirty;
        n->dirty = st;
}

static void mark_agent(NodeApi *n, const char *agent_id) {
        for (NodeStream *st = node_sync_table_first(n, agent_id); st; st = st->by_agent_next)
                if (streq(st->agent_id, agent_id)) {
                        st->dirty = true;
                        node_sync_mark(n, st);
                }
}

/* The agents whose selectors include all of an alias's selectors. An alias naming
 * warden:agent_id:<ID> (join-token aliases do) can only match that agent: a table
 * lookup. Otherwise every stream is checked (a subset test each). */
static void mark_alias_matches(NodeApi *n, const SelectorSet *sel) {
        FOREACH_SELECTOR(s, sel)
                if (streq(s->type, AGENT_ID_SELECTOR_TYPE) &&
                    strncmp(s->value, AGENT_ID_SELECTOR_PREFIX, strlen(AGENT_ID_SELECTOR_PREFIX)) ==
                            0) {
                        const char *id = s->value + strlen(AGENT_ID_SELECTOR_PREFIX);

                        for (NodeStream *st = node_sync_table_first(n, id); st;
                             st = st->by_agent_next)
                                if (streq(st->agent_id, id) &&
                                    selector_set_is_subset(sel, &st->selectors)) {
                                        st->dirty = true;
                                        node_sync_mark(n, st);
                                }
                        return;
                }
        for (NodeStream *st = n->streams; st; st = st->next)
                if (selector_set_is_subset(sel, &st->selectors)) {
                        st->dirty = true;
                        node_sync_mark(n, st);
                }
}

static int on_root(const char *id, void *userdata) {
        NodeApi *n = userdata;
        _cleanup_(authz_view_done) AuthzView aliases = {};
        int r;

        mark_agent(n, id);
        r = entry_index_aliases_named(n->server->index, id, &aliases);
        if (r < 0)
                return r;
        for (size_t i = 0; i < aliases.n; i++)
                mark_alias_matches(n, &aliases.entries[i]->selectors);
        return 0;
}

static int mark_reaching(NodeApi *n, const char *parent_id) {
        return entry_index_walk_up(n->server->index, parent_id, time(NULL), true, on_root, n);
}

void node_api_entry_changed(NodeApi *n, const Entry *old, const Entry *new) {
        int r = 0;

        if (!n || n->closing || !n->streams || (!old && !new))
                return;
        if ((old && old->node) || (new &&new->node)) {
                /* A node alias: the agents it matched or matches now. */
                if (old && old->node)
                        mark_alias_matches(n, &old->selectors);
                if (new &&new->node)
                        mark_alias_matches(n, &new->selectors);
        }
        if (old && !old->node)
                r = mark_reaching(n, old->parent_id);
        if (r >= 0 && new && !new->node && (!old || !streq(old->parent_id, new->parent_id)))
                r = mark_reaching(n, new->parent_id);
        if (r < 0) {
                /* Out of memory: rather too many updates than a missed one. */
                log_warning_errno(r,
                                  "Failed to find the agents a change affects, updating all: %m");
                node_api_all_changed(n);
        }
}
