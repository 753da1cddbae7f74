/* SPDX-License-Identifier: Apache-2.0 */
/* The Workload API server: setup, handler placement, attestation of callers, the
 * view cache, and request/response plumbing shared by the RPC files. */
#define _GNU_SOURCE
#include "workload_api.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "mkdir.h"
#include "workload_api_internal.h"

typedef struct WapiMethod {
        RpcKind kind;
        WapiHandler handler;
} WapiMethod;

static void handle_unimplemented(WapiCall *call) {
        wapi_finish(call, GRPC_STATUS_UNIMPLEMENTED, "WIT-SVIDs are not supported");
}

/* Indexed by WapiMethodId (names in workload_api_calls.c). */
static const WapiMethod wapi_methods[_WAPI_METHOD_MAX] = {
        [WAPI_FETCH_X509_SVID] = {RPC_SERVER_STREAM, wapi_handle_fetch_x509_svid},
        [WAPI_FETCH_X509_BUNDLES] = {RPC_SERVER_STREAM, wapi_handle_fetch_x509_bundles},
        [WAPI_FETCH_JWT_SVID] = {RPC_UNARY, wapi_handle_fetch_jwt_svid},
        [WAPI_FETCH_JWT_BUNDLES] = {RPC_SERVER_STREAM, wapi_handle_fetch_jwt_bundles},
        [WAPI_VALIDATE_JWT_SVID] = {RPC_UNARY, wapi_handle_validate_jwt_svid},
        [WAPI_FETCH_WIT_SVID] = {RPC_SERVER_STREAM, handle_unimplemented},
        [WAPI_FETCH_WIT_BUNDLES] = {RPC_SERVER_STREAM, handle_unimplemented},
};

/* One queued call for the worker pool. */
struct WapiWork {
        WapiWork *next;
        RpcCall *call;
        WapiMethodCtx *method;
        double t0;
};

static const char *const mode_names[_WORKLOAD_API_HANDLERS_MAX] = {
        [WORKLOAD_API_HANDLERS_INLINE] = "inline",
        [WORKLOAD_API_HANDLERS_OWNER] = "owner",
        [WORKLOAD_API_HANDLERS_WORKERS] = "workers",
};

int workload_api_handler_mode_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(mode_names); i++)
                if (streq(mode_names[i], s))
                        return (int) i;
        return -EINVAL;
}

static void api_destroy(WorkloadApi *w) {
        rpc_server_free(w->rpc);
        /* Every stream is gone once the server ran its close callbacks. */
        while (w->streams) {
                WapiStream *st = w->streams;

                w->streams = st->next;
                selector_set_done(&st->selectors);
                rpc_call_unref(st->call);
                free(st);
        }
        wapi_view_unref(w->view);
        free(w->socket_path);
        pthread_mutex_destroy(&w->lock);
        pthread_mutex_destroy(&w->log_lock);
        pthread_mutex_destroy(&w->work_lock);
        pthread_cond_destroy(&w->work_cond);
        free(w);
}

WorkloadApi *wapi_ref(WorkloadApi *w) {
        if (w)
                __atomic_add_fetch(&w->n_ref, 1, __ATOMIC_RELAXED);
        return w;
}

WorkloadApi *wapi_unref(WorkloadApi *w) {
        if (w && __atomic_sub_fetch(&w->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                api_destroy(w);
        return NULL;
}

int workload_api_new(const WorkloadApiConfig *cfg,
                     const WorkloadApiSource *source,
                     Attestor *attestor,
                     WorkloadApi **ret) {
        WorkloadApi *w;
        int r;

        if (!cfg || !source || !source->snapshot || !source->fetch_jwt_svid || !attestor || !ret)
                return -EINVAL;
        if (cfg->listen_fd < 0 && (!cfg->socket_path || cfg->socket_path[0] != '/'))
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->n_ref = 1;
        w->source = *source;
        w->attestor = attestor;
        w->listen_fd = cfg->listen_fd;
        w->max_connections = cfg->max_connections;
        w->mode = WORKLOAD_API_HANDLERS_DEFAULT;
        if (cfg->metrics)
                w->metrics = *cfg->metrics;
        pthread_mutex_init(&w->lock, NULL);
        pthread_mutex_init(&w->log_lock, NULL);
        pthread_mutex_init(&w->work_lock, NULL);
        pthread_cond_init(&w->work_cond, NULL);
        if (cfg->socket_path) {
                w->socket_path = strdup(cfg->socket_path);
                if (!w->socket_path) {
                        wapi_unref(w);
                        return -ENOMEM;
                }
        }
        r = rpc_server_new(&w->rpc);
        if (r < 0) {
                wapi_unref(w);
                return r;
        }
        *ret = w;
        return 0;
}

int workload_api_set_handler_mode(WorkloadApi *w, WorkloadApiHandlerMode mode) {
        if (!w || mode < 0 || mode >= _WORKLOAD_API_HANDLERS_MAX)
                return -EINVAL;
        if (w->started)
                return -EBUSY;
        w->mode = mode;
        return 0;
}

/* --- worker pool --- */

static void *worker_main(void *p) {
        WorkloadApi *w = p;

        for (;;) {
                WapiWork *item;

                pthread_mutex_lock(&w->work_lock);
                while (!w->work_head && !w->work_quit)
                        pthread_cond_wait(&w->work_cond, &w->work_lock);
                item = w->work_head;
                if (item) {
                        w->work_head = item->next;
                        if (!w->work_head)
                                w->work_tail = NULL;
                }
                pthread_mutex_unlock(&w->work_lock);
                if (!item)
                        return NULL; /* quitting, queue drained */
                /* After a shutdown the call is cancelled already; answers go nowhere. */
                wapi_call_run(item->method, item->call, item->t0);
                rpc_call_unref(item->call);
                free(item);
        }
}

/* The handler in INLINE and OWNER mode. */
static void call_entry(RpcCall *c, void *userdata) {
        wapi_call_run(userdata, c, metrics_now());
}

/* The inline handler in WORKERS mode: queue the call for a worker. */
static void worker_trampoline(RpcCall *c, void *userdata) {
        WapiMethodCtx *m = userdata;
        WorkloadApi *w = m->api;
        WapiWork *item;

        item = malloc(sizeof(*item));
        if (!item) {
                WapiCall call = {.api = w, .rpc = c, .method = m->id, .t0 = metrics_now()};

                wapi_finish(&call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        *item = (WapiWork){.call = rpc_call_ref(c), .method = m, .t0 = metrics_now()};
        pthread_mutex_lock(&w->work_lock);
        if (w->work_tail)
                w->work_tail->next = item;
        else
                w->work_head = item;
        w->work_tail = item;
        pthread_cond_signal(&w->work_cond);
        pthread_mutex_unlock(&w->work_lock);
}

static int workers_start(WorkloadApi *w) {
        for (size_t i = 0; i < WAPI_WORKERS; i++) {
                sigset_t all, old;
                int r;

                /* Workers must not take the daemon's signals (sd_event_add_signal). */
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                r = -pthread_create(&w->workers[i], NULL, worker_main, w);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (r < 0)
                        return r;
                w->n_workers++;
        }
        return 0;
}

static void workers_stop(WorkloadApi *w) {
        pthread_mutex_lock(&w->work_lock);
        w->work_quit = true;
        pthread_cond_broadcast(&w->work_cond);
        pthread_mutex_unlock(&w->work_lock);
        for (size_t i = 0; i < w->n_workers; i++)
                pthread_join(w->workers[i], NULL);
        w->n_workers = 0;
}

/* --- setup --- */

static int api_register(WorkloadApi *w) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(wapi_methods); i++) {
                const WapiMethod *m = &wapi_methods[i];
                _cleanup_free_ char *path = NULL;
                RpcHandler h = call_entry;
                unsigned flags = 0;

                if (asprintf(&path, WAPI_METHOD_PREFIX "%s", wapi_method_name(i)) < 0)
                        return -ENOMEM;
                w->methods[i] = (WapiMethodCtx){.api = w, .handler = m->handler, .id = i};
                if (w->mode == WORKLOAD_API_HANDLERS_INLINE)
                        flags = RPC_METHOD_INLINE;
                else if (w->mode == WORKLOAD_API_HANDLERS_WORKERS) {
                        h = worker_trampoline;
                        flags = RPC_METHOD_INLINE;
                }
                r = rpc_server_add_method(w->rpc, path, m->kind, h, &w->methods[i], flags);
                if (r < 0)
                        return r;
        }
        rpc_server_set_call_observer(w->rpc, wapi_count_refused, w);
        return rpc_server_require_metadata(w->rpc, WAPI_METHOD_PREFIX, "workload.spiffe.io", "true",
                                           GRPC_STATUS_INVALID_ARGUMENT,
                                           "security header missing from request");
}

static int on_rpc_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WorkloadApi *w = userdata;
        int r;

        (void) s;
        (void) fd;
        (void) revents;
        r = rpc_server_dispatch(w->rpc);
        if (r < 0)
                log_debug_errno(r, "workload api: dispatch failed: %m");
        return 0;
}

int workload_api_start(WorkloadApi *w, sd_event *event) {
        int r;

        if (!w || !event)
                return -EINVAL;
        if (w->started)
                return -EALREADY;
        w->started = true;
        r = api_register(w);
        if (r < 0)
                return r;
        if (w->max_connections > 0) {
                r = rpc_server_set_max_connections(w->rpc, w->max_connections);
                if (r < 0)
                        return r;
        }
        if (w->listen_fd >= 0)
                r = rpc_server_listen_fd(w->rpc, w->listen_fd);
        else {
                r = mkdir_parents(w->socket_path);
                if (r < 0)
                        return log_debug_errno(r, "Cannot create the directory of %s: %m",
                                               w->socket_path);
                r = rpc_server_listen_unix(w->rpc, w->socket_path, 0777);
        }
        if (r < 0)
                return r;
        if (w->mode == WORKLOAD_API_HANDLERS_WORKERS) {
                r = workers_start(w);
                if (r < 0)
                        return r;
        }
        r = sd_event_add_io(event, &w->event_source, rpc_server_event_fd(w->rpc), EPOLLIN,
                            on_rpc_event, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->event_source, "workload-api");
        return rpc_server_start(w->rpc);
}

void workload_api_snapshot_changed(WorkloadApi *w) {
        if (w && w->started && !w->stopped)
                wapi_streams_update(w);
}

void workload_api_stop(WorkloadApi *w) {
        if (!w || w->stopped)
                return;
        w->stopped = true;
        /* Cancels every call: the streams' close callbacks unregister them. */
        rpc_server_shutdown(w->rpc);
        workers_stop(w);
        /* Close callbacks queued by handlers that ran after the shutdown. */
        (void) rpc_server_dispatch(w->rpc);
        w->event_source = sd_event_source_disable_unref(w->event_source);
}

WorkloadApi *workload_api_free(WorkloadApi *w) {
        if (!w)
                return NULL;
        workload_api_stop(w);
        return wapi_unref(w);
}

/* --- shared call plumbing --- */

int wapi_attest(WapiCall *call, SelectorSet *ret) {
        WorkloadApi *w = call->api;
        const RpcPeer *p = rpc_call_peer(call->rpc);
        WorkloadInfo info = {.pid = p->pid, .uid = p->uid, .gid = p->gid, .pidfd = p->pidfd};
        SelectorSet set = {};
        double t0 = metrics_now();
        int r;

        /* No pidfd: the process was gone already when it connected. */
        r = p->pid > 0 && p->pidfd >= 0 ? attestor_attest(w->attestor, &info, &set) : -ESRCH;
        (void) metrics_histogram_observe_since(w->metrics.workload_attestation_seconds, NULL, t0);
        (void) metrics_counter_inc(
                w->metrics.workload_attestations,
                METRICS_LABELS(r < 0 ? METRICS_RESULT_ERROR : METRICS_RESULT_OK));
        if (r == -ESRCH) {
                log_debug("workload api: caller pid %d exited before attestation", (int) p->pid);
                wapi_finish(call, GRPC_STATUS_UNAUTHENTICATED, WAPI_MSG_CALLER_GONE);
                return r;
        }
        if (r < 0) {
                log_debug_errno(r, "workload api: attesting pid %d failed: %m", (int) p->pid);
                wapi_finish(call, GRPC_STATUS_UNAVAILABLE, WAPI_MSG_ATTEST_FAILED);
                return r;
        }
        *ret = set;
        return 0;
}

int wapi_view_get_locked(WorkloadApi *w, WapiView **ret) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *snap = NULL;
        WapiView *v;
        int r;

        snap = w->source.snapshot(w->source.userdata);
        if (!snap || !snap->bundle)
                return -EAGAIN;
        /* Snapshots only move forward, and every read happens under w->lock. */
        if (!w->view || w->view->snap != snap) {
                r = wapi_view_new(snap, &v);
                if (r < 0)
                        return r;
                wapi_view_unref(w->view);
                w->view = v;
        }
        *ret = wapi_view_ref(w->view);
        return 0;
}

int wapi_view_get(WorkloadApi *w, WapiView **ret) {
        int r;

        pthread_mutex_lock(&w->lock);
        r = wapi_view_get_locked(w, ret);
        pthread_mutex_unlock(&w->lock);
        return r;
}

ProtobufCMessage *wapi_unpack_request(WapiCall *call, const ProtobufCMessageDescriptor *desc) {
        ProtobufCMessage *m;
        const void *req;
        size_t len;

        req = rpc_call_request(call->rpc, &len);
        m = protobuf_c_message_unpack(desc, NULL, len, req);
        if (!m)
                wapi_finish(call, GRPC_STATUS_INVALID_ARGUMENT, WAPI_MSG_BAD_REQUEST);
        return m;
}

int wapi_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *p;

        if (n > RPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        p = malloc(n > 0 ? n : 1);
        if (!p)
                return -ENOMEM;
        *ret_len = protobuf_c_message_pack(m, p);
        *ret = p;
        return 0;
}

void wapi_free_secret(uint8_t *p, size_t len) {
        explicit_erase(p, len);
        free(p);
}
