/* SPDX-License-Identifier: Apache-2.0 */
/* The Sync stream: each open stream receives its agent's authorized entries, the
 * trust bundle and the bundles of the trust domains those entries federate with, as a
 * full snapshot at once and again after every change that alters it.
 *
 * Every message is a complete snapshot (full_snapshot = true): rpc_call_send()
 * replaces a message that has not gone out yet by the newer one, so deltas could be
 * lost on a slow agent, while a snapshot never is. A snapshot is sent only when its
 * bytes (sequence aside) differ from the previous one on that stream. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "cleanup.h"
#include "entry_pb.h"
#include "log.h"
#include "node_api_internal.h"
#include "rpc_status.h"

struct NodeStream {
        NodeApi *node;
        RpcCall *call; /* a reference */
        char *agent_id;
        uint8_t *last; /* the last snapshot sent, packed with sequence 0 */
        size_t last_len;
        bool finished; /* we ended it; waiting for the close callback */
        NodeStream *prev, *next;
};

static NodeStream *stream_free(NodeStream *st) {
        if (!st)
                return NULL;
        rpc_call_unref(st->call);
        free(st->agent_id);
        free(st->last);
        free(st);
        return NULL;
}

static void stream_unlink(NodeStream *st) {
        NodeApi *n = st->node;

        if (st->prev)
                st->prev->next = st->next;
        else if (n->streams == st)
                n->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        st->prev = st->next = NULL;
        (void) metrics_gauge_add(n->server->metrics.agent_streams, NULL, -1);
}

static void stream_finish(NodeStream *st, grpc_status_code status, const char *message) {
        int r;

        if (st->finished)
                return;
        st->finished = true;
        r = rpc_call_finish(st->call, status, message);
        if (r < 0 && r != -ENOTCONN && r != -EALREADY)
                log_warning_errno(r, "Failed to end the Sync stream of %s, ignoring: %m",
                                  st->agent_id);
}

/* Bundles of the trust domains the entries federate with (stored ones only). */
static int add_federated(NodeApi *n, const AuthzSet *set, Warden__Node__V1__SyncResponse *m) {
        for (size_t i = 0; i < set->n; i++)
                for (size_t j = 0; j < set->entries[i]->n_federates_with; j++) {
                        const char *td = set->entries[i]->federates_with[j];
                        _cleanup_free_ uint8_t *data = NULL;
                        Warden__Types__V1__Bundle *b;
                        bool have = false;
                        size_t len;
                        int r;

                        for (size_t k = 0; k < m->n_federated_bundles && !have; k++)
                                have = streq(m->federated_bundles[k]->trust_domain, td);
                        if (have || m->n_federated_bundles >= NODE_FEDERATED_BUNDLES_MAX)
                                continue;
                        r = ds_get_bundle(n->server->ds, td, &data, &len);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                return r;
                        b = warden__types__v1__bundle__unpack(NULL, len, data);
                        if (!b) {
                                log_warning("Stored bundle of %s is corrupt, skipping", td);
                                continue;
                        }
                        m->federated_bundles[m->n_federated_bundles++] = b;
                }
        return 0;
}

static int snapshot_build(NodeApi *n,
                          const AttestedAgent *a,
                          Warden__Node__V1__SyncResponse **ret) {
        _cleanup_(node_pb_freep) Warden__Node__V1__SyncResponse *m = NULL;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        int r;

        r = authz_set_build(n->server->ds, a->spiffe_id, &a->selectors, time(NULL), &set);
        if (r < 0)
                return r;
        m = malloc(sizeof(*m));
        if (!m)
                return -ENOMEM;
        warden__node__v1__sync_response__init(m);
        m->full_snapshot = true;
        if (set->n > 0) {
                m->entries = calloc(set->n, sizeof(Warden__Types__V1__Entry *));
                if (!m->entries)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < set->n; i++) {
                r = entry_to_pb(set->entries[i], &m->entries[i]);
                if (r < 0)
                        return r;
                m->n_entries++;
        }
        r = pb_from_bundle(ca_bundle(n->server->ca), &m->bundle);
        if (r < 0)
                return r;
        m->federated_bundles = calloc(NODE_FEDERATED_BUNDLES_MAX, sizeof(void *));
        if (!m->federated_bundles)
                return -ENOMEM;
        r = add_federated(n, set, m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* Builds the agent's snapshot and sends it when it differs from the last one.
 * -EPERM when the agent is no longer attested or is banned. */
static int stream_update(NodeStream *st) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        _cleanup_(node_pb_freep) Warden__Node__V1__SyncResponse *m = NULL;
        _cleanup_free_ uint8_t *key = NULL, *buf = NULL;
        size_t key_len, len;
        uint64_t seq = 0;
        int r;

        r = ds_get_agent(st->node->server->ds, st->agent_id, &a);
        if (r == -ENOENT || (r >= 0 && a->banned))
                return -EPERM;
        if (r < 0)
                return r;
        r = snapshot_build(st->node, a, &m);
        if (r >= 0)
                r = pb_pack(m, &key, &key_len);
        if (r < 0)
                return r;
        if (st->last && st->last_len == key_len && memcmp(st->last, key, key_len) == 0)
                return 0;
        r = ds_change_sequence(st->node->server->ds, &seq);
        if (r < 0)
                return r;
        m->sequence = seq;
        r = pb_pack(m, &buf, &len);
        if (r < 0)
                return r;
        r = rpc_call_send(st->call, buf, len);
        if (r < 0)
                return r;
        free(st->last);
        st->last = TAKE_PTR(key);
        st->last_len = key_len;
        log_debug("Sync: sent %zu entries to %s (sequence %llu)", m->n_entries, st->agent_id,
                  (unsigned long long) seq);
        return 0;
}

/* stream_update(), ending the stream on failure. */
static void stream_refresh(NodeStream *st) {
        int r;

        if (st->finished)
                return;
        r = stream_update(st);
        if (r == -EPERM) {
                log_info("node API: ending the Sync stream: agent is banned or evicted "
                         "agent_id=%s status=PERMISSION_DENIED",
                         st->agent_id);
                stream_finish(st, GRPC_STATUS_PERMISSION_DENIED, NODE_NOT_ATTESTED);
        } else if (r == -ENOTCONN || r == -EALREADY) {
                st->finished = true; /* closing already; the close callback follows */
        } else if (r < 0) {
                log_error_errno(r, "Failed to update the Sync stream of %s: %m", st->agent_id);
                stream_finish(st, errno_to_grpc_status(r),
                              r == -EMSGSIZE ? "snapshot too large" : "internal error");
        }
}

static void on_stream_close(RpcCall *c, void *userdata) {
        NodeStream *st = userdata;

        log_debug("Sync stream closed agent_id=%s", st->agent_id);
        stream_unlink(st);
        stream_free(st);
}

int node_sync(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        NodeStream *st;
        int r;

        if (n->closing) {
                *reterr_message = "server is shutting down";
                return -ESHUTDOWN;
        }
        r = node_authenticate(n, c, &a);
        if (r == -EPERM)
                *reterr_message = NODE_NOT_ATTESTED;
        if (r < 0)
                return r;
        /* The request (last_sequence) is not needed: every message is a full snapshot. */
        st = calloc(1, sizeof(NodeStream));
        if (!st)
                return -ENOMEM;
        st->node = n;
        st->call = rpc_call_ref(c);
        st->agent_id = TAKE_PTR(a->spiffe_id);
        st->next = n->streams;
        if (n->streams)
                n->streams->prev = st;
        n->streams = st;
        (void) metrics_gauge_add(n->server->metrics.agent_streams, NULL, 1);
        rpc_call_set_close_callback(c, on_stream_close, st);
        log_info("Sync stream opened agent_id=%s", st->agent_id);
        stream_refresh(st);
        return 0;
}

void node_api_entries_changed(NodeApi *n) {
        if (!n)
                return;
        for (NodeStream *st = n->streams; st; st = st->next)
                stream_refresh(st);
}

void node_api_bundle_changed(NodeApi *n) {
        node_api_entries_changed(n);
}

void node_api_agent_changed(NodeApi *n, const char *agent_id) {
        if (!n || !agent_id)
                return;
        /* Re-checks the agent: a banned or evicted one loses its streams. */
        for (NodeStream *st = n->streams; st; st = st->next)
                if (streq(st->agent_id, agent_id))
                        stream_refresh(st);
}

void node_api_close_all(NodeApi *n) {
        if (!n)
                return;
        n->closing = true;
        for (NodeStream *st = n->streams; st; st = st->next)
                stream_finish(st, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
}

void node_sync_free_all(NodeApi *n) {
        while (n->streams) {
                NodeStream *st = n->streams;

                stream_unlink(st);
                rpc_call_set_close_callback(st->call, NULL, NULL);
                stream_free(st);
        }
}
