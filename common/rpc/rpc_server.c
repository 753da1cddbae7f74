/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_front.h"
#include "rpc_internal.h"

typedef enum RpcDispatchKind {
        RPC_DISPATCH_HANDLER,
        RPC_DISPATCH_CLOSE,
        RPC_DISPATCH_SENT,
} RpcDispatchKind;

DEFINE_TRIVIAL_CLEANUP_FUNC(RpcServer *, rpc_server_free)

struct RpcDispatchItem {
        RpcDispatchItem *next;
        RpcDispatchKind kind;
        RpcCall *call;
};

int rpc_server_new(RpcServer **ret) {
        _cleanup_(rpc_server_freep) RpcServer *s = NULL;
        pthread_rwlockattr_t attr;
        int r;

        if (!ret)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event_fd = -EBADF;
        s->conn_cfg.limits.max_connections = RPC_DEFAULT_MAX_CONNECTIONS;
        s->tcp_limits = (RpcTcpLimits){
                .max_connections = RPC_DEFAULT_TCP_MAX_CONNECTIONS,
                .max_unauth_per_source = RPC_DEFAULT_TCP_MAX_UNAUTH_PER_SOURCE,
                .handshake_timeout_ms = RPC_DEFAULT_TCP_HANDSHAKE_TIMEOUT_MS,
        };
        pthread_mutex_init(&s->dispatch_lock, NULL);
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&s->batch_lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        s->shutdown_tag = (RpcTag){RPC_TAG_SHUTDOWN, s};

        rpc_grpc_ref();
        s->grpc_ref = true;

        s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->event_fd < 0)
                return -errno;
        r = rpc_acceptor_new(&s->acceptor);
        if (r >= 0)
                r = rpc_front_new(&s->front);
        if (r >= 0)
                r = rpc_serial_cache_new(&s->serial_cache);
        if (r < 0)
                return r;
        s->server = grpc_server_create(rpc_channel_args(true), NULL);
        s->cq = grpc_completion_queue_create_for_next(NULL);
        if (!s->server || !s->cq)
                return -ENOMEM;
        grpc_server_register_completion_queue(s->server, s->cq, NULL);

        *ret = TAKE_PTR(s);
        return 0;
}

static RpcMethod *server_find_method(RpcServer *s, const char *path) {
        for (size_t i = 0; i < s->n_methods; i++)
                if (streq(s->methods[i].path, path))
                        return &s->methods[i];
        return NULL;
}

int rpc_server_add_method(RpcServer *s,
                          const char *path,
                          RpcKind kind,
                          RpcHandler handler,
                          void *userdata,
                          unsigned flags) {
        _cleanup_free_ char *p = NULL;
        RpcMethod *m;
        void *handle;

        if (!s || !path || path[0] != '/' || !handler || (flags & ~RPC_METHOD_INLINE) ||
            (kind != RPC_UNARY && kind != RPC_SERVER_STREAM))
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        if (server_find_method(s, path))
                return -EEXIST;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        m = reallocarray(s->methods, s->n_methods + 1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        s->methods = m;
        handle = grpc_server_register_method(s->server, p, NULL,
                                             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!handle)
                return -EEXIST;
        s->methods[s->n_methods++] = (RpcMethod){
                .path = TAKE_PTR(p),
                .kind = kind,
                .handler = handler,
                .userdata = userdata,
                .flags = flags,
                .handle = handle,
        };
        return 0;
}

int rpc_server_require_metadata(RpcServer *s,
                                const char *path_prefix,
                                const char *key,
                                const char *value,
                                grpc_status_code status,
                                const char *message) {
        RpcRequirement q = {}, *n;

        if (!s || !path_prefix || !key || !value || status == GRPC_STATUS_OK)
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        q.prefix = strdup(path_prefix);
        q.key = strdup(key);
        q.value = strdup(value);
        q.message = strdup(strempty(message));
        q.status = status;
        n = reallocarray(s->reqs, s->n_reqs + 1, sizeof(*n));
        if (!q.prefix || !q.key || !q.value || !q.message || !n) {
                free(q.prefix);
                free(q.key);
                free(q.value);
                free(q.message);
                if (n)
                        s->reqs = n;
                return -ENOMEM;
        }
        s->reqs = n;
        s->reqs[s->n_reqs++] = q;
        return 0;
}

void rpc_server_set_call_observer(RpcServer *s, RpcCallObserver cb, void *userdata) {
        if (!s)
                return;
        if (s->started) {
                /* The CQ thread reads it unlocked. */
                log_debug("rpc: call observer set after start, ignoring");
                return;
        }
        s->call_observer = cb;
        s->call_observer_userdata = userdata;
}

int rpc_server_set_max_connections(RpcServer *s, unsigned n) {
        if (!s || n == 0)
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        s->conn_cfg.limits.max_connections = n;
        return 0;
}

int rpc_server_set_conn_limits(RpcServer *s, const RpcConnLimits *l) {
        if (!s || !l || l->max_connections == 0)
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        s->conn_cfg.limits = *l;
        return 0;
}

int rpc_server_set_tcp_limits(RpcServer *s, const RpcTcpLimits *l) {
        if (!s || !l || l->max_connections == 0)
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        s->tcp_limits = *l;
        return 0;
}

void rpc_server_set_tcp_observer(RpcServer *s, RpcTcpObserver cb, void *userdata) {
        if (!s || s->started)
                return;
        s->tcp_observer = cb;
        s->tcp_observer_userdata = userdata;
}

int rpc_server_set_relay_socket(RpcServer *s, const char *path) {
        char *p;

        if (!s || !path || path[0] != '/')
                return -EINVAL;
        if (s->started || rpc_front_n_listeners(s->front) > 0)
                return -EBUSY;
        if (strlen(path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -ENAMETOOLONG;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        free(s->relay_path);
        s->relay_path = p;
        return 0;
}

void rpc_server_set_conn_observer(RpcServer *s, RpcConnObserver cb, void *userdata) {
        if (!s || s->started)
                return;
        s->conn_cfg.observer = cb;
        s->conn_cfg.observer_userdata = userdata;
}

int rpc_server_set_conn_attest(RpcServer *s,
                               RpcConnAttestFunc fn,
                               void (*free_fn)(void *),
                               void *userdata) {
        if (!s)
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        s->conn_cfg.attest = fn;
        s->conn_cfg.attest_free = free_fn;
        s->conn_cfg.attest_userdata = userdata;
        return 0;
}

int rpc_server_event_fd(RpcServer *s) {
        return s ? s->event_fd : -EBADF;
}

void rpc_server_get_stats(RpcServer *s, RpcServerStats *ret) {
        *ret = (RpcServerStats){
                .calls_started = __atomic_load_n(&s->calls_started, __ATOMIC_RELAXED),
                .calls_active = __atomic_load_n(&s->calls_active, __ATOMIC_RELAXED),
                .messages_sent = __atomic_load_n(&s->messages_sent, __ATOMIC_RELAXED),
                .messages_coalesced = __atomic_load_n(&s->messages_coalesced, __ATOMIC_RELAXED),
        };
        rpc_acceptor_get_stats(s->acceptor, ret);
        rpc_front_get_stats(s->front, ret);
}

bool rpc_server_batch_begin(RpcServer *s) {
        pthread_rwlock_rdlock(&s->batch_lock);
        return !s->cq_closed;
}

void rpc_server_batch_end(RpcServer *s) {
        pthread_rwlock_unlock(&s->batch_lock);
}

/* --- owner-thread dispatch --- */

static int server_queue(RpcServer *s, RpcDispatchKind kind, RpcCall *c) {
        RpcDispatchItem *i;
        bool wake;

        i = malloc(sizeof(*i));
        if (!i)
                return -ENOMEM;
        *i = (RpcDispatchItem){.kind = kind, .call = rpc_call_ref(c)};

        pthread_mutex_lock(&s->dispatch_lock);
        wake = !s->dispatch_head;
        if (s->dispatch_tail)
                s->dispatch_tail->next = i;
        else
                s->dispatch_head = i;
        s->dispatch_tail = i;
        pthread_mutex_unlock(&s->dispatch_lock);

        if (wake) {
                uint64_t one = 1;
                /* Only fails when the counter would overflow: it is readable then. */
                (void) !write(s->event_fd, &one, sizeof(one));
        }
        return 0;
}

int rpc_server_queue_handler(RpcServer *s, RpcCall *c) {
        return server_queue(s, RPC_DISPATCH_HANDLER, c);
}

int rpc_server_queue_close(RpcServer *s, RpcCall *c) {
        return server_queue(s, RPC_DISPATCH_CLOSE, c);
}

int rpc_server_queue_sent(RpcServer *s, RpcCall *c) {
        return server_queue(s, RPC_DISPATCH_SENT, c);
}

/* Runs (or with run_handlers false, drops) everything queued so far. */
static int server_run_queue(RpcServer *s, bool run_handlers) {
        RpcDispatchItem *i;
        uint64_t v;
        int n = 0;

        (void) !read(s->event_fd, &v, sizeof(v));
        pthread_mutex_lock(&s->dispatch_lock);
        i = s->dispatch_head;
        s->dispatch_head = s->dispatch_tail = NULL;
        pthread_mutex_unlock(&s->dispatch_lock);

        while (i) {
                RpcDispatchItem *next = i->next;
                RpcCall *c = i->call;

                if (i->kind == RPC_DISPATCH_HANDLER) {
                        if (run_handlers)
                                c->method->handler(c, c->method->userdata);
                } else if (i->kind == RPC_DISPATCH_SENT) {
                        RpcCloseCallback cb;
                        void *ud;

                        pthread_mutex_lock(&c->lock);
                        cb = c->closed || c->send_in_flight || c->queued_msg ? NULL : c->sent_cb;
                        ud = c->sent_userdata;
                        pthread_mutex_unlock(&c->lock);
                        if (cb && run_handlers)
                                cb(c, ud);
                } else {
                        RpcCloseCallback cb;
                        void *ud;

                        pthread_mutex_lock(&c->lock);
                        cb = c->close_cb;
                        ud = c->close_userdata;
                        pthread_mutex_unlock(&c->lock);
                        if (cb)
                                cb(c, ud);
                }
                rpc_call_unref(c);
                free(i);
                i = next;
                n++;
        }
        return n;
}

int rpc_server_dispatch(RpcServer *s) {
        if (!s)
                return -EINVAL;
        return server_run_queue(s, !s->shutdown_done);
}

/* --- requests and the CQ thread --- */

static int slot_post(RpcServer *s, RpcRequestSlot *slot) {
        grpc_call_error e;

        if (slot->method)
                e = grpc_server_request_registered_call(s->server, slot->method->handle,
                                                        &slot->call, &slot->deadline, &slot->md,
                                                        &slot->payload, s->cq, s->cq, &slot->tag);
        else
                e = grpc_server_request_call(s->server, &slot->call, &slot->details, &slot->md,
                                             s->cq, s->cq, &slot->tag);
        return e == GRPC_CALL_OK ? 0 : -EIO;
}

static void slot_reset(RpcRequestSlot *slot) {
        grpc_metadata_array_destroy(&slot->md);
        grpc_metadata_array_init(&slot->md);
        grpc_call_details_destroy(&slot->details);
        grpc_call_details_init(&slot->details);
        if (slot->payload) {
                grpc_byte_buffer_destroy(slot->payload);
                slot->payload = NULL;
        }
        slot->call = NULL;
}

/* The first requirement on this method that the call's metadata fails, or NULL. */
static const RpcRequirement *server_check_metadata(RpcServer *s, RpcCall *c) {
        for (size_t i = 0; i < s->n_reqs; i++) {
                const RpcRequirement *q = &s->reqs[i];
                size_t n = 0;
                bool match = false;

                if (strncmp(c->method->path, q->prefix, strlen(q->prefix)) != 0)
                        continue;
                for (size_t j = 0; j < c->n_md; j++)
                        if (streq(c->md[j].key, q->key)) {
                                n++;
                                match = c->md[j].value_len == strlen(q->value) &&
                                        streq(c->md[j].value, q->value);
                        }
                if (n != 1 || !match)
                        return q;
        }
        return NULL;
}

/* Ends a call before any handler ran, and tells the call observer. */
static void server_refuse(RpcServer *s, RpcCall *c, grpc_status_code status, const char *message) {
        (void) rpc_call_finish(c, status, message);
        if (s->call_observer)
                s->call_observer(rpc_call_method(c), status, s->call_observer_userdata);
}

static void server_handle_call(RpcServer *s, RpcCall *c) {
        const RpcRequirement *q = NULL;

        if (!c->method)
                server_refuse(s, c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
        else if (c->peer_unknown)
                server_refuse(s, c, GRPC_STATUS_UNAVAILABLE, "peer credentials unavailable");
        else if (c->over_uid_cap)
                server_refuse(s, c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                              "too many concurrent calls for this user");
        else if (c->no_request)
                server_refuse(s, c, GRPC_STATUS_INTERNAL, "request message missing");
        else if ((q = server_check_metadata(s, c)))
                server_refuse(s, c, q->status, q->message);
        else if (c->method->flags & RPC_METHOD_INLINE)
                c->method->handler(c, c->method->userdata);
        else if (rpc_server_queue_handler(s, c) < 0)
                server_refuse(s, c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

static void server_on_request(RpcServer *s, RpcRequestSlot *slot, bool ok) {
        RpcCall *c = NULL;
        int r = -ECANCELED;

        if (ok && slot->call)
                r = rpc_call_new_from_slot(s, slot, &c);
        slot_reset(slot);
        /* !ok: the server is shutting down and the slot is done for good. */
        if (ok && !s->cq_closed && slot_post(s, slot) < 0)
                log_debug("rpc: failed to post a request slot, ignoring");
        if (r < 0)
                return;
        server_handle_call(s, c);
        rpc_call_unref(c);
}

static void *server_cq_thread(void *p) {
        RpcServer *s = p;

        for (;;) {
                grpc_event ev =
                        grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                RpcTag *t;

                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        break;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                t = ev.tag;
                switch (t->kind) {
                case RPC_TAG_REQUEST:
                        server_on_request(s, t->data, ev.success);
                        break;
                case RPC_TAG_CLOSE:
                        rpc_call_on_close(t->data, ev.success);
                        break;
                case RPC_TAG_SEND:
                        rpc_call_on_send_done(t->data, ev.success);
                        break;
                case RPC_TAG_SHUTDOWN:
                        /* Nobody may begin an operation once the CQ is shut down. */
                        pthread_rwlock_wrlock(&s->batch_lock);
                        s->cq_closed = true;
                        pthread_rwlock_unlock(&s->batch_lock);
                        grpc_completion_queue_shutdown(s->cq);
                        break;
                }
        }
        return NULL;
}

static int server_alloc_slots(RpcServer *s) {
        size_t k = 0;

        s->n_slots = s->n_methods * RPC_REQUESTS_PER_METHOD + 1;
        s->slots = calloc(s->n_slots, sizeof(*s->slots));
        if (!s->slots)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_slots; i++) {
                RpcRequestSlot *slot = &s->slots[i];

                slot->tag = (RpcTag){RPC_TAG_REQUEST, slot};
                slot->server = s;
                /* The last one is the generic slot (method NULL). */
                if (i < s->n_slots - 1)
                        slot->method = &s->methods[k++ / RPC_REQUESTS_PER_METHOD];
                grpc_metadata_array_init(&slot->md);
                grpc_call_details_init(&slot->details);
        }
        return 0;
}

int rpc_server_start(RpcServer *s) {
        int r;

        if (!s)
                return -EINVAL;
        if (s->started || s->shutdown_done)
                return -EALREADY;
        r = server_alloc_slots(s);
        if (r < 0)
                return r;

        rpc_grpc_start_server(s->server);
        s->started = true;
        for (size_t i = 0; i < s->n_slots; i++)
                if (slot_post(s, &s->slots[i]) < 0)
                        return -EIO;

        r = rpc_thread_create(&s->cq_thread, "rpc-cq", server_cq_thread, s);
        if (r < 0)
                return r;
        s->cq_thread_started = true;

        if (rpc_front_n_listeners(s->front) > 0) {
                r = rpc_front_start(s->front, &s->tcp_limits, s->tcp_observer,
                                    s->tcp_observer_userdata);
                if (r < 0)
                        return r;
        }
        /* add_channel_from_fd() is only valid after grpc_server_start(). */
        if (rpc_acceptor_n_listeners(s->acceptor) > 0)
                return rpc_acceptor_start(s->acceptor, s->server, &s->conn_cfg);
        return 0;
}

void rpc_server_shutdown(RpcServer *s) {
        if (!s || s->shutdown_done)
                return;
        s->shutdown_done = true;

        rpc_acceptor_stop(s->acceptor);
        if (s->server) {
                grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
                grpc_server_cancel_all_calls(s->server);
        } else if (s->cq)
                grpc_completion_queue_shutdown(s->cq);

        /* Drain until QUEUE_SHUTDOWN: every batch we started has completed then. */
        if (s->cq_thread_started) {
                pthread_join(s->cq_thread, NULL);
                s->cq_thread_started = false;
        } else if (s->cq)
                (void) server_cq_thread(s);
        /* The relay carried gRPC's goodbyes until here. */
        rpc_front_stop(s->front);

        if (s->server) {
                grpc_server_destroy(s->server);
                s->server = NULL;
        }
        if (s->cq) {
                grpc_completion_queue_destroy(s->cq);
                s->cq = NULL;
        }
        /* Close callbacks still due run here; queued handlers are dropped. */
        while (server_run_queue(s, false) > 0)
                ;
}

RpcServer *rpc_server_free(RpcServer *s) {
        if (!s)
                return NULL;
        rpc_server_shutdown(s);
        /* Close callbacks queued by rpc_call_set_close_callback() after shutdown. */
        while (server_run_queue(s, false) > 0)
                ;

        for (size_t i = 0; i < s->n_slots; i++) {
                slot_reset(&s->slots[i]);
                grpc_metadata_array_destroy(&s->slots[i].md);
                grpc_call_details_destroy(&s->slots[i].details);
        }
        free(s->slots);
        for (size_t i = 0; i < s->n_methods; i++)
                free(s->methods[i].path);
        free(s->methods);
        for (size_t i = 0; i < s->n_reqs; i++) {
                free(s->reqs[i].prefix);
                free(s->reqs[i].key);
                free(s->reqs[i].value);
                free(s->reqs[i].message);
        }
        free(s->reqs);
        for (size_t i = 0; i < s->n_tls; i++)
                rpc_tls_server_free(s->tls[i]);
        free(s->tls);
        rpc_acceptor_free(s->acceptor);
        rpc_front_free(s->front);
        free(s->relay_path);
        rpc_serial_cache_free(s->serial_cache);
        if (s->event_fd >= 0)
                close(s->event_fd);
        pthread_rwlock_destroy(&s->batch_lock);
        pthread_mutex_destroy(&s->dispatch_lock);
        if (s->grpc_ref)
                rpc_grpc_unref();
        free(s);
        return NULL;
}
