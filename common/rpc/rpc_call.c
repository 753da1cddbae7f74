/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_front.h"
#include "rpc_internal.h"
#include "rpc_status.h"

/* Request metadata entries we copy per call; gRPC caps their total size too. */
#define RPC_MAX_METADATA 128

static void call_free(RpcCall *c) {
        for (size_t i = 0; i < c->n_md; i++) {
                free(c->md[i].key);
                free(c->md[i].value);
        }
        free(c->md);
        free(c->request);
        free(c->method_path);
        free(c->status_message);
        free(c->peer.spiffe_id);
        free(c->peer.cert_serial);
        rpc_conn_unref(c->conn);
        if (c->queued_msg)
                grpc_byte_buffer_destroy(c->queued_msg);
        if (c->inflight_msg)
                grpc_byte_buffer_destroy(c->inflight_msg);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

RpcCall *rpc_call_ref(RpcCall *c) {
        if (c)
                __atomic_add_fetch(&c->n_ref, 1, __ATOMIC_RELAXED);
        return c;
}

RpcCall *rpc_call_unref(RpcCall *c) {
        if (c && __atomic_sub_fetch(&c->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                call_free(c);
        return NULL;
}

static char *slice_dup(grpc_slice s) {
        size_t n = GRPC_SLICE_LENGTH(s);
        char *p = malloc(n + 1);

        if (!p)
                return NULL;
        memcpy(p, GRPC_SLICE_START_PTR(s), n);
        p[n] = 0;
        return p;
}

static int call_copy_metadata(RpcCall *c, const grpc_metadata_array *md) {
        if (md->count == 0)
                return 0;
        if (md->count > RPC_MAX_METADATA)
                return -E2BIG;
        c->md = calloc(md->count, sizeof(*c->md));
        if (!c->md)
                return -ENOMEM;
        for (size_t i = 0; i < md->count; i++) {
                c->md[i].key = slice_dup(md->metadata[i].key);
                c->md[i].value = slice_dup(md->metadata[i].value);
                c->md[i].value_len = GRPC_SLICE_LENGTH(md->metadata[i].value);
                c->n_md++;
                if (!c->md[i].key || !c->md[i].value)
                        return -ENOMEM;
        }
        return 0;
}

/* Unix socket calls have the peer "fd:N" (chttp2 names fd-added channels so);
 * the connection, and so fd N, stays ours while we hold the call. */
static int call_fill_peer(RpcServer *s, RpcCall *c) {
        char *peer = grpc_call_get_peer(c->call);
        int fd, n = 0, r = 0;

        if (peer && sscanf(peer, "fd:%d%n", &fd, &n) == 1 && peer[n] == 0) {
                r = rpc_acceptor_call_begin(s->acceptor, fd, &c->conn);
                if (r >= 0)
                        rpc_conn_fill_peer(c->conn, &c->peer);
                c->over_uid_cap = r == -EDQUOT;
                c->peer_unknown = r < 0 && r != -EDQUOT;
                r = 0;
        } else {
                r = rpc_tls_peer_spiffe_id(c->call, &c->peer.spiffe_id);
                if (r >= 0 && c->peer.spiffe_id)
                        r = rpc_tls_peer_serial(c->call, s->serial_cache, &c->peer.cert_serial);
                /* TCP peers come through the relay (rpc_front.c) from an autobound
                 * address, which names the connection and so the client's address. */
                if (peer && strncmp(peer, "unix-abstract:", 14) == 0)
                        rpc_front_call_peer(s->front, peer + 14, c->peer.spiffe_id != NULL,
                                            c->peer.source);
        }
        gpr_free(peer);
        return r;
}

static int call_init(RpcServer *s, RpcCall *c, RpcRequestSlot *slot) {
        int r;

        if (!slot->method) {
                c->method_path = slice_dup(slot->details.method);
                if (!c->method_path)
                        return -ENOMEM;
        }
        r = call_copy_metadata(c, &slot->md);
        if (r < 0)
                return r;
        if (slot->payload) {
                void *p;

                r = rpc_byte_buffer_copy(slot->payload, &p, &c->request_len);
                if (r < 0)
                        return r;
                c->request = p;
        } else {
                c->request = calloc(1, 1);
                if (!c->request)
                        return -ENOMEM;
                c->no_request = slot->method != NULL;
        }
        return call_fill_peer(s, c);
}

int rpc_call_new_from_slot(RpcServer *s, RpcRequestSlot *slot, RpcCall **ret) {
        grpc_call *gc = TAKE_PTR(slot->call);
        grpc_op op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
        grpc_call_error e = GRPC_CALL_ERROR;
        RpcCall *c;
        int r = -ENOMEM;

        c = calloc(1, sizeof(*c));
        if (!c)
                goto fail;
        /* One reference for the live grpc_call (dropped once it is closed and idle),
         * one for the caller. */
        c->n_ref = 2;
        c->server = s;
        c->call = gc;
        c->method = slot->method;
        c->peer = (RpcPeer){.uid = (uid_t) -1, .gid = (gid_t) -1, .pidfd = -EBADF};
        c->close_tag = (RpcTag){RPC_TAG_CLOSE, c};
        c->send_tag = (RpcTag){RPC_TAG_SEND, c};
        pthread_mutex_init(&c->lock, NULL);

        r = call_init(s, c, slot);
        if (r < 0)
                goto fail;

        op.data.recv_close_on_server.cancelled = &c->recv_cancelled;
        c->pending_ops = 1;
        if (rpc_server_batch_begin(s))
                e = grpc_call_start_batch(gc, &op, 1, &c->close_tag, NULL);
        rpc_server_batch_end(s);
        if (e != GRPC_CALL_OK) {
                r = -EIO;
                goto fail;
        }
        __atomic_add_fetch(&s->calls_started, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&s->calls_active, 1, __ATOMIC_RELAXED);
        *ret = c;
        return 0;

fail:
        log_debug_errno(r, "rpc: dropping incoming call: %m");
        if (c && c->conn)
                rpc_acceptor_call_end(s->acceptor, c->conn);
        grpc_call_cancel_with_status(gc,
                                     r == -E2BIG || r == -EMSGSIZE || r == -ENOMEM
                                             ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                             : GRPC_STATUS_INTERNAL,
                                     "call setup failed", NULL);
        grpc_call_unref(gc);
        if (c)
                call_free(c);
        return r;
}

/* Releases the grpc_call once it is closed and no batch is pending. */
static void call_release(RpcCall *c) {
        grpc_call *gc;

        pthread_mutex_lock(&c->lock);
        gc = TAKE_PTR(c->call);
        pthread_mutex_unlock(&c->lock);
        if (gc)
                grpc_call_unref(gc);
        if (c->conn)
                rpc_acceptor_call_end(c->server->acceptor, c->conn);
        __atomic_sub_fetch(&c->server->calls_active, 1, __ATOMIC_RELAXED);
        rpc_call_unref(c);
}

/* Starts one batch with whatever is waiting: initial metadata if not sent yet,
 * the queued message, the queued status. Caller holds rpc_server_batch_begin()
 * (true) and c->lock, and no send is in flight. Returns 1 if a batch started. */
static int call_flush_locked(RpcCall *c) {
        bool with_status = c->status_queued && !c->status_sent;
        grpc_op ops[3] = {};
        grpc_slice details;
        grpc_call_error e;
        size_t n = 0;

        if (!c->queued_msg && !with_status)
                return 0;
        /* A status without initial metadata never goes out (trailers-only needs it). */
        if (!c->initial_md_sent)
                ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (c->queued_msg) {
                ops[n].op = GRPC_OP_SEND_MESSAGE;
                ops[n++].data.send_message.send_message = c->queued_msg;
        }
        if (with_status) {
                details = grpc_slice_from_copied_string(strempty(c->status_message));
                ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
                ops[n].data.send_status_from_server.status = c->status;
                ops[n++].data.send_status_from_server.status_details = &details;
        }
        e = grpc_call_start_batch(c->call, ops, n, &c->send_tag, NULL);
        if (with_status)
                grpc_slice_unref(details); /* core took its own reference */
        if (e != GRPC_CALL_OK) {
                log_debug("rpc: grpc_call_start_batch() failed: %d", (int) e);
                return -EIO;
        }
        c->initial_md_sent = true;
        if (c->queued_msg) {
                c->inflight_msg = TAKE_PTR(c->queued_msg);
                __atomic_add_fetch(&c->server->messages_sent, 1, __ATOMIC_RELAXED);
        }
        c->status_sent = c->status_sent || with_status;
        c->send_in_flight = true;
        c->pending_ops++;
        return 1;
}

/* Queues a message (may be NULL) and/or a status, then flushes if idle.
 * *bb is taken; a replaced older message is handed back in *bb for destruction. */
static int call_queue(
        RpcCall *c, grpc_byte_buffer **bb, bool status, grpc_status_code code, char **msg) {
        RpcServer *s = c->server;
        int r = 0;

        if (!rpc_server_batch_begin(s)) {
                rpc_server_batch_end(s);
                return -ENOTCONN;
        }
        pthread_mutex_lock(&c->lock);
        if (c->status_queued)
                r = -EALREADY;
        else if (c->closed)
                r = -ENOTCONN;
        else {
                if (*bb) {
                        grpc_byte_buffer *old = c->queued_msg;

                        c->queued_msg = TAKE_PTR(*bb);
                        *bb = old;
                        if (old)
                                __atomic_add_fetch(&s->messages_coalesced, 1, __ATOMIC_RELAXED);
                }
                if (status) {
                        c->status_queued = true;
                        c->status = code;
                        c->status_message = TAKE_PTR(*msg);
                }
                if (!c->send_in_flight && call_flush_locked(c) < 0)
                        r = -EIO;
        }
        pthread_mutex_unlock(&c->lock);
        rpc_server_batch_end(s);
        return r;
}

int rpc_call_reply(RpcCall *c, const void *msg, size_t len) {
        grpc_byte_buffer *bb = NULL;
        _cleanup_free_ char *m = NULL;
        int r;

        if (!c || (!msg && len > 0))
                return -EINVAL;
        if (len > RPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        bb = rpc_byte_buffer_new(msg, len);
        m = strdup("");
        if (!bb || !m) {
                if (bb)
                        grpc_byte_buffer_destroy(bb);
                return -ENOMEM;
        }
        r = call_queue(c, &bb, true, GRPC_STATUS_OK, &m);
        if (bb)
                grpc_byte_buffer_destroy(bb);
        return r;
}

int rpc_call_finish(RpcCall *c, grpc_status_code status, const char *message) {
        grpc_byte_buffer *bb = NULL;
        _cleanup_free_ char *m = NULL;

        if (!c)
                return -EINVAL;
        m = strdup(strempty(message));
        if (!m)
                return -ENOMEM;
        return call_queue(c, &bb, true, status, &m);
}

int rpc_call_finish_errno(RpcCall *c, int r, const char *message) {
        return rpc_call_finish(c, errno_to_grpc_status(r), message);
}

int rpc_call_send(RpcCall *c, const void *msg, size_t len) {
        grpc_byte_buffer *bb;
        int r;

        if (!c || (!msg && len > 0) || !c->method || c->method->kind != RPC_SERVER_STREAM)
                return -EINVAL;
        if (len > RPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        bb = rpc_byte_buffer_new(msg, len);
        if (!bb)
                return -ENOMEM;
        r = call_queue(c, &bb, false, GRPC_STATUS_OK, NULL);
        if (bb)
                grpc_byte_buffer_destroy(bb);
        return r;
}

void rpc_call_on_send_done(RpcCall *c, bool ok) {
        grpc_byte_buffer *done;
        bool release, idle = false;

        (void) rpc_server_batch_begin(c->server);
        pthread_mutex_lock(&c->lock);
        done = TAKE_PTR(c->inflight_msg);
        c->send_in_flight = false;
        c->pending_ops--;
        /* !ok: the call is broken; RECV_CLOSE tells the rest. */
        if (ok && !c->closed && !c->server->cq_closed)
                (void) call_flush_locked(c);
        /* A message went out and nothing else is waiting: tell the producer. */
        idle = ok && done && c->sent_cb && !c->closed && !c->send_in_flight && !c->status_queued;
        if (idle)
                rpc_call_ref(c); /* for the queue below, outside the lock */
        release = c->closed && c->pending_ops == 0;
        pthread_mutex_unlock(&c->lock);
        rpc_server_batch_end(c->server);

        if (done)
                grpc_byte_buffer_destroy(done);
        if (idle) {
                if (rpc_server_queue_sent(c->server, c) < 0)
                        log_debug("rpc: out of memory queueing a sent callback, dropping it");
                rpc_call_unref(c);
        }
        if (release)
                call_release(c);
}

void rpc_call_set_sent_callback(RpcCall *c, RpcCloseCallback cb, void *userdata) {
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        c->sent_cb = cb;
        c->sent_userdata = userdata;
        pthread_mutex_unlock(&c->lock);
}

bool rpc_call_send_busy(RpcCall *c) {
        bool r;

        if (!c)
                return false;
        pthread_mutex_lock(&c->lock);
        r = c->send_in_flight || c->queued_msg;
        pthread_mutex_unlock(&c->lock);
        return r;
}

void rpc_call_on_close(RpcCall *c, bool ok) {
        RpcCloseCallback cb;
        void *ud;
        bool fire, release;

        pthread_mutex_lock(&c->lock);
        c->closed = true;
        c->pending_ops--;
        cb = c->close_cb;
        ud = c->close_userdata;
        fire = cb && !c->close_fired;
        c->close_fired = c->close_fired || fire;
        release = c->pending_ops == 0;
        pthread_mutex_unlock(&c->lock);

        if (fire) {
                if (c->method && (c->method->flags & RPC_METHOD_INLINE))
                        cb(c, ud);
                else if (rpc_server_queue_close(c->server, c) < 0)
                        log_debug("rpc: out of memory queueing a close callback, dropping it");
        }
        if (release)
                call_release(c);
}

void rpc_call_set_close_callback(RpcCall *c, RpcCloseCallback cb, void *userdata) {
        bool fire;

        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        c->close_cb = cb;
        c->close_userdata = userdata;
        fire = cb && c->closed && !c->close_fired;
        c->close_fired = c->close_fired || fire;
        pthread_mutex_unlock(&c->lock);

        if (fire && rpc_server_queue_close(c->server, c) < 0)
                log_debug("rpc: out of memory queueing a close callback, dropping it");
}

bool rpc_call_is_closed(RpcCall *c) {
        bool r;

        pthread_mutex_lock(&c->lock);
        r = c->closed;
        pthread_mutex_unlock(&c->lock);
        return r;
}

bool rpc_call_was_cancelled(RpcCall *c) {
        bool r;

        pthread_mutex_lock(&c->lock);
        r = c->closed && c->recv_cancelled;
        pthread_mutex_unlock(&c->lock);
        return r;
}

const char *rpc_call_method(RpcCall *c) {
        return c->method ? c->method->path : strempty(c->method_path);
}

const void *rpc_call_request(RpcCall *c, size_t *ret_len) {
        if (ret_len)
                *ret_len = c->request_len;
        return c->request;
}

const RpcPeer *rpc_call_peer(RpcCall *c) {
        return &c->peer;
}

const char *rpc_call_metadata(RpcCall *c, const char *key) {
        if (!c || !key)
                return NULL;
        for (size_t i = 0; i < c->n_md; i++)
                if (streq(c->md[i].key, key))
                        return c->md[i].value;
        return NULL;
}

void rpc_call_set_userdata(RpcCall *c, void *userdata) {
        c->userdata = userdata;
}

void *rpc_call_get_userdata(RpcCall *c) {
        return c->userdata;
}
