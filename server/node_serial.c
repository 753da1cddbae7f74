/* SPDX-License-Identifier: Apache-2.0 */
/* Node SVID serial check: a call is accepted only with the agent's current node SVID
 * (the serial recorded at attestation or renewal), or with the one it replaced after a
 * renewal: that one stays valid until the new one is first seen on a call, and at most
 * until it expires.
 *
 * Why: the agent renews on a connection of its own, and a renewal whose answer was lost
 * (the agent retries with the old SVID) still carries the old one. Above all, the agent
 * puts a renewed SVID in use only once it has saved it on disk (write, fsync, rename):
 * when it cannot (disk full, read-only file system), it keeps using the old one, and a
 * restart finds the old one on disk. Retiring the old serial at the renewal would lock
 * such an agent out (a join token is single use). Presenting the new serial proves the
 * agent holds it, and ends the old one. SPIRE keeps the same pair (current serial, new
 * serial). The previous serials live in memory only: after a server restart only
 * current serials are accepted; an agent still on its old SVID is refused once and then
 * uses the renewed one it holds in memory (agent/link.c). A Sync stream authenticates
 * once, when it opens: a renewal never ends it, eviction and bans do (node_sync.c). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "node_api_internal.h"

static void renewal_done(NodeRenewal *r) {
        free(r->agent_id);
        free(r->prev_serial);
        *r = (NodeRenewal){};
}

static NodeRenewal *renewal_find(NodeApi *n, const char *agent_id) {
        for (size_t i = 0; i < n->n_renewals; i++)
                if (streq(n->renewals[i].agent_id, agent_id))
                        return &n->renewals[i];
        return NULL;
}

static void renewal_remove(NodeApi *n, NodeRenewal *r) {
        renewal_done(r);
        *r = n->renewals[--n->n_renewals];
        n->renewals[n->n_renewals] = (NodeRenewal){};
}

/* Drops every record whose grace is over. */
static void renewals_prune(NodeApi *n, int64_t now) {
        for (size_t i = 0; i < n->n_renewals;)
                if (n->renewals[i].until < now)
                        renewal_remove(n, &n->renewals[i]);
                else
                        i++;
}

/* A free record: pruned first; when all NODE_RENEWALS_MAX are in their grace, the
 * one ending soonest goes (that agent's old SVID is refused a little early). */
static NodeRenewal *renewal_slot(NodeApi *n, int64_t now) {
        size_t oldest = 0;

        renewals_prune(n, now);
        if (n->n_renewals < NODE_RENEWALS_MAX) {
                if (!n->renewals) {
                        n->renewals = calloc(NODE_RENEWALS_MAX, sizeof(NodeRenewal));
                        if (!n->renewals)
                                return NULL;
                }
                return &n->renewals[n->n_renewals++];
        }
        for (size_t i = 1; i < n->n_renewals; i++)
                if (n->renewals[i].until < n->renewals[oldest].until)
                        oldest = i;
        renewal_done(&n->renewals[oldest]);
        return &n->renewals[oldest];
}

int64_t node_serial_expires_at(NodeApi *n, const AttestedAgent *a, const char *serial) {
        NodeRenewal *r;

        if (!serial || !a->serial)
                return 0;
        if (streq(serial, a->serial))
                return a->svid_expires_at;
        r = renewal_find(n, a->spiffe_id);
        return r && streq(serial, r->prev_serial) ? r->until : 0;
}

void node_serial_renewed(NodeApi *n,
                         const char *agent_id,
                         const char *prev_serial,
                         int64_t prev_expires_at,
                         int64_t now) {
        _cleanup_free_ char *id = NULL, *serial = NULL;
        NodeRenewal *r;

        node_serial_forget(n, agent_id);
        if (!prev_serial || prev_expires_at < now)
                return;
        id = strdup(agent_id);
        serial = strdup(prev_serial);
        r = id && serial ? renewal_slot(n, now) : NULL;
        if (!r) {
                log_warning("Out of memory: the previous node SVID of %s is refused at once",
                            agent_id);
                return;
        }
        *r = (NodeRenewal){
                .agent_id = TAKE_PTR(id),
                .prev_serial = TAKE_PTR(serial),
                .until = prev_expires_at,
        };
}

void node_serial_forget(NodeApi *n, const char *agent_id) {
        NodeRenewal *r = renewal_find(n, agent_id);

        if (r)
                renewal_remove(n, r);
}

int node_serial_check(NodeApi *n, const AttestedAgent *a, const char *serial, int64_t now) {
        NodeRenewal *r;

        if (!serial || !a->serial)
                return -EPERM;
        r = renewal_find(n, a->spiffe_id);
        if (r && r->until < now) {
                renewal_remove(n, r);
                r = NULL;
        }
        if (streq(serial, a->serial)) {
                /* The new SVID is in use: the old one's grace ends here. */
                if (r)
                        renewal_remove(n, r);
                return 0;
        }
        if (r && streq(serial, r->prev_serial))
                return 0;
        return -EPERM;
}

void node_serial_free_all(NodeApi *n) {
        for (size_t i = 0; i < n->n_renewals; i++)
                renewal_done(&n->renewals[i]);
        free(n->renewals);
        n->renewals = NULL;
        n->n_renewals = 0;
}
