/* SPDX-License-Identifier: Apache-2.0 */
/* The Sync stream (docs/sync.md): a full snapshot when it opens, then deltas.
 *
 * Each stream remembers what its agent holds (entry id + revision, federated bundles
 * by hash). When a change may affect it (node_sync_fanout.c marks it dirty), its
 * authorized set is recomputed from the in-memory index and compared with what the
 * agent holds: only the difference is sent. One message is in flight per stream: while
 * one is, further changes only keep the stream dirty, and the rpc layer's sent
 * callback brings it back here, so a burst of changes reaches a slow agent as one
 * merged delta and nothing is ever replaced unsent. A difference larger than
 * NODE_SYNC_MESSAGE_BYTES goes out in parts (`more` set on all but the last). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "cleanup.h"
#include "entry_pb.h"
#include "greedy_realloc.h"
#include "log.h"
#include "node_sync_internal.h"
#include "rpc_status.h"

static NodeStream *stream_free(NodeStream *st) {
        if (!st)
                return NULL;
        rpc_call_unref(st->call);
        free(st->agent_id);
        selector_set_done(&st->selectors);
        sync_state_done(&st->state);
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
        node_sync_table_remove(n, st);
        if (st->on_dirty_list) {
                NodeStream **p = &n->dirty;

                while (*p && *p != st)
                        p = &(*p)->dirty_next;
                if (*p)
                        *p = st->dirty_next;
                st->on_dirty_list = false;
        }
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

/* ---- federated bundles ---- */

/* The stored bundle of td, cached: read from the datastore once, until it changes. */
static int bundle_lookup(void *userdata,
                         const char *td,
                         const uint8_t **ret_data,
                         size_t *ret_len,
                         uint64_t *ret_hash) {
        NodeApi *n = userdata;
        SyncBundleCache *c = NULL;
        int r;

        for (size_t i = 0; i < n->n_bundles && !c; i++)
                if (streq(n->bundles[i].trust_domain, td))
                        c = &n->bundles[i];
        if (!c) {
                r = GREEDY_REALLOC(n->bundles, n->allocated_bundles, n->n_bundles + 1);
                if (r < 0)
                        return r;
                c = &n->bundles[n->n_bundles];
                *c = (SyncBundleCache){.trust_domain = strdup(td)};
                if (!c->trust_domain)
                        return -ENOMEM;
                r = ds_get_bundle(n->server->ds, td, &c->data, &c->len);
                if (r < 0) {
                        /* Not stored (or not readable): not cached either, so a bundle
                         * stored later is found by the next lookup. */
                        free(c->trust_domain);
                        if (r != -ENOENT)
                                return r;
                        *ret_data = NULL;
                        *ret_len = 0;
                        *ret_hash = 0;
                        return 0;
                }
                c->hash = sync_hash(c->data, c->len);
                n->n_bundles++;
        }
        *ret_data = c->data;
        *ret_len = c->len;
        *ret_hash = c->hash;
        return 0;
}

void node_api_federated_changed(NodeApi *n, const char *td) {
        if (!n || !td)
                return;
        for (size_t i = 0; i < n->n_bundles; i++)
                if (streq(n->bundles[i].trust_domain, td)) {
                        free(n->bundles[i].trust_domain);
                        free(n->bundles[i].data);
                        n->bundles[i] = n->bundles[--n->n_bundles];
                        break;
                }
        /* Every stream checks (federation changes are rare); only those that hold the
         * bundle or whose entries name it send anything. */
        for (NodeStream *st = n->streams; st; st = st->next) {
                st->dirty = true;
                node_sync_mark(n, st);
        }
}

static bool message_empty(const Warden__Node__V1__SyncResponse *m) {
        return !m->full_snapshot && m->n_entries == 0 && m->n_deleted_entry_ids == 0 &&
               !m->bundle && m->n_federated_bundles == 0 && m->n_removed_trust_domains == 0;
}

/* Our bundle into m, unless the agent holds it in this version already. */
static int add_bundle(NodeStream *st, bool full, Warden__Node__V1__SyncResponse *m) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t hash;
        size_t len;
        int r;

        r = pb_from_bundle(ca_bundle(st->node->server->ca), &m->bundle);
        if (r >= 0)
                r = pb_pack(m->bundle, &buf, &len);
        if (r < 0)
                return r;
        hash = sync_hash(buf, len);
        if (!full && hash == st->bundle_hash) {
                pb_free(m->bundle);
                m->bundle = NULL;
        }
        st->bundle_hash = hash;
        return 0;
}

/* Re-reads the agent: -EPERM when it is gone or banned. */
static int stream_reload_agent(NodeStream *st) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        SelectorSet sel = {};
        int r;

        r = ds_get_agent(st->node->server->ds, st->agent_id, &a);
        if (r == -ENOENT || (r >= 0 && a->banned))
                return -EPERM;
        if (r < 0)
                return r;
        r = selector_set_copy(&a->selectors, &sel);
        if (r < 0)
                return r;
        selector_set_done(&st->selectors);
        st->selectors = sel;
        st->agent_dirty = false;
        st->dirty = true;
        return 0;
}

/* Builds and sends the next message, if the agent lacks anything. */
static int stream_send_next(NodeStream *st) {
        NodeApi *n = st->node;
        _cleanup_(node_pb_freep) Warden__Node__V1__SyncResponse *m = NULL;
        _cleanup_(authz_view_done) AuthzView view = {};
        _cleanup_free_ uint8_t *buf = NULL;
        bool full = st->n_messages == 0;
        size_t len;
        int r;

        if (st->agent_dirty) {
                r = stream_reload_agent(st);
                if (r < 0)
                        return r;
        }
        if (!st->dirty && !st->bundle_dirty)
                return 0;
        r = entry_index_authorized(n->server->index, st->agent_id, &st->selectors, time(NULL),
                                   n->max_entries, &view);
        if (r < 0)
                return r;
        if (view.truncated && !st->truncated_logged) {
                log_warning("Agent %s is authorized for more than %zu entries, serving the "
                            "first %zu (-maxEntriesPerAgent)",
                            st->agent_id, n->max_entries, n->max_entries);
                st->truncated_logged = true;
        }
        m = malloc(sizeof(*m));
        if (!m)
                return -ENOMEM;
        warden__node__v1__sync_response__init(m);
        r = sync_delta_next(&st->state, &view, full, NODE_SYNC_MESSAGE_BYTES, bundle_lookup, n, m);
        if (r >= 0 && (full || st->bundle_dirty))
                r = add_bundle(st, full, m);
        if (r < 0)
                return r;
        /* Whatever did not fit keeps the stream dirty: the sent callback continues. */
        st->dirty = m->more;
        st->bundle_dirty = false;
        if (message_empty(m))
                return 0;
        m->sequence = n->server->applied_event;
        m->base_sequence = st->last_sequence;
        r = pb_pack(m, &buf, &len);
        if (r < 0)
                return r;
        r = rpc_call_send(st->call, buf, len);
        if (r < 0)
                return r;
        st->last_sequence = m->sequence;
        st->n_messages++;
        (void) metrics_counter_add(n->server->metrics.sync_messages,
                                   METRICS_LABELS(full ? "snapshot" : "delta"), 1);
        (void) metrics_counter_add(n->server->metrics.sync_bytes, NULL, len);
        log_debug("Sync: %s to %s: %zu entries, %zu removed, %zu bytes, sequence %llu%s",
                  full ? "snapshot" : "delta", st->agent_id, m->n_entries, m->n_deleted_entry_ids,
                  len, (unsigned long long) m->sequence, m->more ? " (more follows)" : "");
        return 0;
}

/* Sends what is pending unless a message is still on its way (the sent callback
 * comes back then); ends the stream on failure. */
void node_sync_update(NodeStream *st) {
        int r;

        if (st->finished || rpc_call_send_busy(st->call))
                return;
        r = stream_send_next(st);
        if (r == -EPERM) {
                log_info("node API: ending the Sync stream: agent is banned or evicted "
                         "agent_id=%s status=PERMISSION_DENIED",
                         st->agent_id);
                stream_finish(st, GRPC_STATUS_PERMISSION_DENIED, NODE_NOT_ATTESTED);
        } else if (r == -ENOTCONN || r == -EALREADY) {
                st->finished = true; /* closing already; the close callback follows */
        } else if (r < 0) {
                log_error_errno(r, "Failed to update the Sync stream of %s: %m", st->agent_id);
                stream_finish(st, errno_to_grpc_status(r), "internal error");
        }
}

static void on_stream_sent(RpcCall *c, void *userdata) {
        NodeStream *st = userdata;

        (void) c;
        if (st->dirty || st->agent_dirty || st->bundle_dirty)
                node_sync_update(st);
}

static void on_stream_close(RpcCall *c, void *userdata) {
        NodeStream *st = userdata;

        log_debug("Sync stream closed agent_id=%s", st->agent_id);
        rpc_call_set_sent_callback(c, NULL, NULL);
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
        /* The request (last_sequence) is informational: every stream starts with a
         * full snapshot (docs/sync.md). */
        st = calloc(1, sizeof(NodeStream));
        if (!st)
                return -ENOMEM;
        st->node = n;
        st->agent_id = TAKE_PTR(a->spiffe_id);
        st->selectors = a->selectors;
        a->selectors = (SelectorSet){};
        st->dirty = st->bundle_dirty = true;
        r = node_sync_table_add(n, st);
        if (r < 0) {
                stream_free(st);
                return r;
        }
        st->call = rpc_call_ref(c);
        st->next = n->streams;
        if (n->streams)
                n->streams->prev = st;
        n->streams = st;
        (void) metrics_gauge_add(n->server->metrics.agent_streams, NULL, 1);
        rpc_call_set_sent_callback(c, on_stream_sent, st);
        rpc_call_set_close_callback(c, on_stream_close, st);
        log_info("Sync stream opened agent_id=%s", st->agent_id);
        node_sync_update(st);
        return 0;
}

void node_api_flush(NodeApi *n) {
        NodeStream *st;

        if (!n)
                return;
        while ((st = n->dirty)) {
                n->dirty = st->dirty_next;
                st->dirty_next = NULL;
                st->on_dirty_list = false;
                node_sync_update(st);
        }
}

void node_api_bundle_changed(NodeApi *n) {
        if (!n)
                return;
        for (NodeStream *st = n->streams; st; st = st->next) {
                st->bundle_dirty = true;
                node_sync_mark(n, st);
        }
}

void node_api_all_changed(NodeApi *n) {
        if (!n)
                return;
        for (NodeStream *st = n->streams; st; st = st->next) {
                st->dirty = true;
                node_sync_mark(n, st);
        }
}

void node_api_agent_changed(NodeApi *n, const char *agent_id) {
        if (!n || !agent_id)
                return;
        for (NodeStream *st = node_sync_table_first(n, agent_id); st; st = st->by_agent_next)
                if (streq(st->agent_id, agent_id)) {
                        st->agent_dirty = true;
                        node_sync_mark(n, st);
                }
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
                rpc_call_set_sent_callback(st->call, NULL, NULL);
                rpc_call_set_close_callback(st->call, NULL, NULL);
                stream_free(st);
        }
        for (size_t i = 0; i < n->n_bundles; i++) {
                free(n->bundles[i].trust_domain);
                free(n->bundles[i].data);
        }
        free(n->bundles);
        n->bundles = NULL;
        n->n_bundles = n->allocated_bundles = 0;
        free(n->by_agent);
        n->by_agent = NULL;
        n->n_buckets = n->n_table = 0;
}
