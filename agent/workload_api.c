/* SPDX-License-Identifier: Apache-2.0 */
/* The Workload API server: setup and shutdown, per-connection attestation, publishing
 * views to the CQ thread, and the request/response helpers the method files share. */
#define _GNU_SOURCE
#include "workload_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mkdir.h"
#include "workload_api_internal.h"

static void api_destroy(WorkloadApi *w) {
        rpc_server_free(w->rpc);
        /* Every stream is gone once the server ran its close callbacks. */
        wapi_view_unref(w->view);
        wapi_view_unref(w->cq_view);
        free(w->socket_path);
        pthread_mutex_destroy(&w->streams_lock);
        pthread_mutex_destroy(&w->view_lock);
        pthread_mutex_destroy(&w->log_lock);
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

static void config_limits(const WorkloadApiConfig *cfg, RpcConnLimits *ret) {
        *ret = cfg->limits;
        if (ret->max_connections == 0)
                ret->max_connections = WORKLOAD_API_MAX_CONNECTIONS;
        if (ret->max_connections_per_uid == 0)
                ret->max_connections_per_uid = WORKLOAD_API_MAX_CONNECTIONS_PER_UID;
        if (ret->max_calls_per_uid == 0)
                ret->max_calls_per_uid = WORKLOAD_API_MAX_CALLS_PER_UID;
        if (ret->idle_timeout_ms == 0 && !cfg->no_idle_timeout)
                ret->idle_timeout_ms = WORKLOAD_API_IDLE_TIMEOUT_MS;
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
        if (cfg->jwt_skew_seconds < 0 || cfg->jwt_skew_seconds > WARDEN_JWT_LEEWAY_MAX ||
            cfg->jwt_expiry_leeway_seconds < 0 ||
            cfg->jwt_expiry_leeway_seconds > WARDEN_JWT_LEEWAY_MAX)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->n_ref = 1;
        w->source = *source;
        w->attestor = attestor;
        w->listen_fd = cfg->listen_fd;
        config_limits(cfg, &w->limits);
        w->jwt_times = (WardenJwtTimeRules){
                .skew_seconds = cfg->jwt_skew_seconds,
                .exp_leeway_seconds = cfg->jwt_expiry_leeway_seconds,
        };
        if (cfg->metrics)
                w->metrics = *cfg->metrics;
        pthread_mutex_init(&w->streams_lock, NULL);
        pthread_mutex_init(&w->view_lock, NULL);
        pthread_mutex_init(&w->log_lock, NULL);
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

/* --- per-connection attestation (attest threads) --- */

void wapi_conn_free(void *p) {
        WapiConn *c = p;

        if (!c)
                return;
        selector_set_done(&c->selectors);
        free(c);
}

static const char *attest_result(const WapiConn *c) {
        if (c->error == -ESRCH)
                return METRICS_RESULT_GONE;
        if (c->error < 0)
                return METRICS_RESULT_ERROR;
        return c->bound ? METRICS_RESULT_OK : METRICS_RESULT_UNBOUND;
}

void *wapi_conn_attest(const RpcConnInfo *info, void *userdata) {
        WorkloadApi *w = userdata;
        WorkloadInfo wi = {
                .pid = info->pid,
                .uid = info->uid,
                .gid = info->gid,
                .pidfd = info->pidfd,
                .sock = info->fd,
        };
        double t0 = metrics_now();
        WapiConn *c;

        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL; /* calls on it get UNAVAILABLE */
        /* No pidfd: the process was gone already when it connected. */
        c->error = info->pid > 0 && info->pidfd >= 0
                           ? attestor_attest(w->attestor, &wi, &c->selectors, &c->bound)
                           : -ESRCH;
        if (c->error < 0)
                log_debug_errno(c->error, "workload api: attesting pid %d (uid %u) failed: %m",
                                (int) info->pid, (unsigned) info->uid);
        (void) metrics_histogram_observe_since(w->metrics.workload_attestation_seconds, NULL, t0);
        (void) metrics_counter_inc(w->metrics.workload_attestations,
                                   METRICS_LABELS(attest_result(c)));
        return c;
}

/* --- setup --- */

static int api_register(WorkloadApi *w) {
        size_t n;
        const WapiMethod *m = wapi_methods(&n);
        int r;

        for (size_t i = 0; i < n && i < ELEMENTSOF(w->method_ctx); i++) {
                w->method_ctx[i] = (WapiMethodCtx){.api = w, .method = &m[i]};
                r = rpc_server_add_method(w->rpc, m[i].path, m[i].kind, wapi_call_start,
                                          &w->method_ctx[i], RPC_METHOD_INLINE);
                if (r < 0)
                        return r;
        }
        rpc_server_set_call_observer(w->rpc, wapi_count_refused, w);
        rpc_server_set_conn_observer(w->rpc, wapi_count_conn_event, w);
        r = rpc_server_set_conn_limits(w->rpc, &w->limits);
        if (r >= 0)
                r = rpc_server_set_conn_attest(w->rpc, wapi_conn_attest, wapi_conn_free, w);
        if (r < 0)
                return r;
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
        r = sd_event_add_io(event, &w->event_source, rpc_server_event_fd(w->rpc), EPOLLIN,
                            on_rpc_event, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->event_source, "workload-api");
        workload_api_snapshot_changed(w);
        return rpc_server_start(w->rpc);
}

/* --- views --- */

/* Builds the view of the source's current snapshot and makes it the published one
 * (none when the source has no snapshot with a bundle). Returns it (borrowed; owner
 * thread), or NULL. */
static const WapiView *view_publish(WorkloadApi *w) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *snap = NULL;
        WapiView *v = NULL, *old;
        int r;

        snap = w->source.snapshot(w->source.userdata);
        if (snap && w->view && w->view->snap == snap)
                return w->view; /* only the owner thread changes w->view */
        if (snap && snap->bundle) {
                r = wapi_view_new(snap, &v);
                if (r < 0) {
                        log_warning_errno(r, "workload api: cannot encode the new snapshot, "
                                             "serving the previous one: %m");
                        return w->view;
                }
        }
        pthread_mutex_lock(&w->view_lock);
        old = w->view;
        w->view = v;
        __atomic_add_fetch(&w->view_gen, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&w->view_lock);
        wapi_view_unref(old);
        return v;
}

const WapiView *wapi_view_current(WorkloadApi *w) {
        uint64_t gen = __atomic_load_n(&w->view_gen, __ATOMIC_ACQUIRE);

        if (gen != w->cq_gen) {
                WapiView *old = w->cq_view;

                pthread_mutex_lock(&w->view_lock);
                w->cq_view = wapi_view_ref(w->view);
                w->cq_gen = w->view_gen;
                pthread_mutex_unlock(&w->view_lock);
                wapi_view_unref(old);
        }
        return w->cq_view;
}

void workload_api_snapshot_changed(WorkloadApi *w) {
        const WapiView *v;

        if (!w || !w->started || w->stopped)
                return;
        v = view_publish(w);
        if (v)
                wapi_streams_update(w, v);
}

void workload_api_get_stats(WorkloadApi *w, RpcServerStats *ret) {
        rpc_server_get_stats(w->rpc, ret);
}

void workload_api_stop(WorkloadApi *w) {
        if (!w || w->stopped)
                return;
        w->stopped = true;
        /* Cancels every call: the streams' close callbacks unregister them. */
        rpc_server_shutdown(w->rpc);
        w->event_source = sd_event_source_disable_unref(w->event_source);
}

WorkloadApi *workload_api_free(WorkloadApi *w) {
        if (!w)
                return NULL;
        workload_api_stop(w);
        return wapi_unref(w);
}

/* --- request and response helpers --- */

/* Reads a base-128 varint at *p. Returns 0 or -EBADMSG. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*p >= end)
                        return -EBADMSG;
                v |= (uint64_t) (**p & 0x7f) << shift;
                if (!(*(*p)++ & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

int wapi_check_strings(const uint8_t *buf, size_t len, const char **reterr_reason) {
        const uint8_t *p = buf, *end = buf + len;

        /* protobuf-c accepted the message already: only the string bytes need a look. */
        while (p < end) {
                uint64_t key, n;

                if (read_varint(&p, end, &key) < 0)
                        break;
                if ((key & 7) == 0) {
                        if (read_varint(&p, end, &n) < 0)
                                break;
                        continue;
                }
                if ((key & 7) != 2 || read_varint(&p, end, &n) < 0 || n > (uint64_t) (end - p))
                        break; /* not ours to judge: unpack decides */
                if (!warden_utf8_valid((const char *) p, (size_t) n)) {
                        *reterr_reason = "strings must be UTF-8 without NUL";
                        return -EINVAL;
                }
                p += n;
        }
        return 0;
}
