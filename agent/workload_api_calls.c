/* SPDX-License-Identifier: Apache-2.0 */
/* The Workload API's one call path: the method table and wapi_call_start(), which takes
 * every call from arrival to answer on the CQ thread; plus the accounting of each call
 * (counted once with its status and latency), the calls the RPC layer refuses before a
 * handler, and refusal logs rate-limited per uid (a uid without entries that retries in
 * a loop must not flood the journal). */
#define _GNU_SOURCE

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "peercred.h"
#include "rpc_status.h"
#include "spiffe/workload/workload.pb-c.h"
#include "workload_api_internal.h"

static const WapiMethod methods[_WAPI_METHOD_MAX] = {
        [WAPI_FETCH_X509_SVID] = {WAPI_METHOD_PREFIX "FetchX509SVID", RPC_SERVER_STREAM,
                                  &x509_svidrequest__descriptor, .workload_api = true,
                                  .build = wapi_x509_svid_response, .wipe_messages = true},
        [WAPI_FETCH_X509_BUNDLES] = {WAPI_METHOD_PREFIX "FetchX509Bundles", RPC_SERVER_STREAM,
                                     &x509_bundles_request__descriptor, .workload_api = true,
                                     .build = wapi_x509_bundles_response},
        [WAPI_FETCH_JWT_SVID] = {WAPI_METHOD_PREFIX "FetchJWTSVID", RPC_UNARY,
                                 &jwtsvidrequest__descriptor, .workload_api = true,
                                 .strings_only = true, .unary = wapi_fetch_jwt_svid},
        [WAPI_FETCH_JWT_BUNDLES] = {WAPI_METHOD_PREFIX "FetchJWTBundles", RPC_SERVER_STREAM,
                                    &jwtbundles_request__descriptor, .workload_api = true,
                                    .build = wapi_jwt_bundles_response},
        [WAPI_VALIDATE_JWT_SVID] = {WAPI_METHOD_PREFIX "ValidateJWTSVID", RPC_UNARY,
                                    &validate_jwtsvidrequest__descriptor, .workload_api = true,
                                    .strings_only = true, .unary = wapi_validate_jwt_svid},
        /* WIT-SVIDs: registered so that clients get UNIMPLEMENTED, not a hang. */
        [WAPI_FETCH_WIT_SVID] = {WAPI_METHOD_PREFIX "FetchWITSVID", RPC_SERVER_STREAM, NULL,
                                 .workload_api = true},
        [WAPI_FETCH_WIT_BUNDLES] = {WAPI_METHOD_PREFIX "FetchWITBundles", RPC_SERVER_STREAM, NULL,
                                    .workload_api = true},
        [WAPI_HEALTH_CHECK] = {"/grpc.health.v1.Health/Check", RPC_UNARY,
                               &grpc__health__v1__health_check_request__descriptor,
                               .unary = wapi_health_check},
};

const WapiMethod *wapi_methods(size_t *ret_n) {
        *ret_n = ELEMENTSOF(methods);
        return methods;
}

const char *wapi_method_name(const WapiMethod *m) {
        const char *slash = strrchr(m->path, '/');

        return slash ? slash + 1 : m->path;
}

/* --- accounting and refusal logs --- */

/* Whether a refusal by uid may be logged now: at most one line per second per uid.
 * *ret_suppressed gets how many were held back since the last line. */
static bool log_allowed(WorkloadApi *w, uid_t uid, unsigned *ret_suppressed) {
        int64_t now = (int64_t) metrics_now() + 1; /* never 0, which marks a free slot */
        WapiLogSlot *slot = NULL, *oldest = &w->log_slots[0];
        bool allowed;

        pthread_mutex_lock(&w->log_lock);
        for (size_t i = 0; i < WAPI_LOG_UIDS && !slot; i++) {
                WapiLogSlot *s = &w->log_slots[i];

                if (s->second != 0 && s->uid == uid)
                        slot = s;
                else if (s->second < oldest->second)
                        oldest = s;
        }
        if (!slot) {
                /* A new uid takes a free slot, or the one quiet for the longest. */
                slot = oldest;
                *slot = (WapiLogSlot){.uid = uid};
        }
        allowed = slot->second != now;
        if (allowed) {
                *ret_suppressed = slot->suppressed;
                slot->suppressed = 0;
                slot->second = now;
        } else
                slot->suppressed++;
        pthread_mutex_unlock(&w->log_lock);
        return allowed;
}

static bool is_refusal(grpc_status_code status) {
        return status == GRPC_STATUS_PERMISSION_DENIED || status == GRPC_STATUS_UNAUTHENTICATED ||
               status == GRPC_STATUS_INVALID_ARGUMENT || status == GRPC_STATUS_RESOURCE_EXHAUSTED;
}

static void log_outcome(WapiCall *call, grpc_status_code status) {
        const RpcPeer *p = rpc_call_peer(call->rpc);
        unsigned suppressed = 0;
        char extra[32] = "";

        if (status == GRPC_STATUS_OK || status == GRPC_STATUS_CANCELLED)
                return;
        if (!log_allowed(call->api, p->uid, &suppressed))
                return;
        if (suppressed > 0)
                (void) snprintf(extra, sizeof(extra), " suppressed=%u", suppressed);
        log_info("Workload API call %s method=%s pid=%d uid=%u status=%s%s",
                 is_refusal(status) ? "refused" : "failed", wapi_method_name(call->method),
                 (int) p->pid, (unsigned) p->uid, rpc_status_to_string(status), extra);
}

void wapi_call_count(WapiCall *call, grpc_status_code status) {
        const AgentMetrics *m = &call->api->metrics;
        const char *name = wapi_method_name(call->method);

        if (call->counted)
                return;
        call->counted = true;
        if (!call->method->workload_api)
                return; /* health checks are not Workload API calls */
        /* The counter last: whoever sees it has the latency too. */
        (void) metrics_histogram_observe_since(m->workload_api_call_seconds, METRICS_LABELS(name),
                                               call->t0);
        (void) metrics_counter_inc(m->workload_api_calls,
                                   METRICS_LABELS(name, rpc_status_to_string(status)));
        log_outcome(call, status);
}

void wapi_finish(WapiCall *call, grpc_status_code status, const char *message) {
        (void) rpc_call_finish(call->rpc, status, message);
        wapi_call_count(call, status);
}

int wapi_reply(WapiCall *call, const ProtobufCMessage *m, RpcMessageFlags flags) {
        int r;

        r = rpc_message_reply(call->rpc, m, flags);
        if (r >= 0)
                wapi_call_count(call, r > 0 ? GRPC_STATUS_OK : GRPC_STATUS_CANCELLED);
        return r;
}

void wapi_call_stream_opened(WapiCall *call, int delta) {
        (void) metrics_gauge_add(call->api->metrics.workload_api_open_streams,
                                 METRICS_LABELS(wapi_method_name(call->method)), (double) delta);
}

void wapi_count_limited(WorkloadApi *w, const char *limit) {
        (void) metrics_counter_inc(w->metrics.workload_api_limited, METRICS_LABELS(limit));
}

void wapi_count_refused(const char *path, grpc_status_code status, void *userdata) {
        WorkloadApi *w = userdata;
        const AgentMetrics *m = &w->metrics;
        const char *name = NULL;

        /* The path is the client's: only our own names may become labels. */
        for (size_t i = 0; i < ELEMENTSOF(methods) && !name; i++)
                if (methods[i].workload_api && path && streq(path, methods[i].path))
                        name = wapi_method_name(&methods[i]);
        if (!name)
                return;
        if (status == GRPC_STATUS_RESOURCE_EXHAUSTED)
                wapi_count_limited(w, METRICS_LIMIT_CALLS_PER_UID);
        /* No agent code ran: latency 0, so the histogram still counts every call. */
        (void) metrics_histogram_observe(m->workload_api_call_seconds, METRICS_LABELS(name), 0.0);
        (void) metrics_counter_inc(m->workload_api_calls,
                                   METRICS_LABELS(name, rpc_status_to_string(status)));
}

void wapi_count_conn_event(RpcConnEvent ev, uid_t uid, void *userdata) {
        static const char *const limits[_RPC_CONN_EVENT_MAX] = {
                [RPC_CONN_REFUSED_UID] = METRICS_LIMIT_CONNECTIONS_PER_UID,
                [RPC_CONN_EVICTED] = METRICS_LIMIT_CONNECTIONS_EVICTED,
                [RPC_CONN_IDLE_CLOSED] = METRICS_LIMIT_IDLE_TIMEOUT,
        };
        WorkloadApi *w = userdata;

        if (ev < 0 || ev >= _RPC_CONN_EVENT_MAX)
                return;
        wapi_count_limited(w, limits[ev]);
        /* Idle connections closing are routine; hitting a cap is worth a line. */
        if (ev != RPC_CONN_IDLE_CLOSED) {
                unsigned suppressed = 0;

                if (log_allowed(w, uid, &suppressed))
                        log_info("Workload API connection %s uid=%u limit=%s%s",
                                 ev == RPC_CONN_REFUSED_UID ? "refused" : "closed", (unsigned) uid,
                                 limits[ev], suppressed > 0 ? " (more suppressed)" : "");
        }
}

/* --- a call's life --- */

/* The caller's connection, checked: its attestation succeeded and its process still
 * runs. Finishes the call and returns NULL otherwise. */
static const WapiConn *call_caller(WapiCall *call) {
        const RpcPeer *p = rpc_call_peer(call->rpc);
        const WapiConn *c = p->conn_data;

        if (!c) {
                wapi_finish(call, GRPC_STATUS_UNAVAILABLE, WAPI_MSG_ATTEST_FAILED);
                return NULL;
        }
        if (c->error == -ESRCH || peercred_pidfd_running(p->pidfd) < 0) {
                log_debug("workload api: the process (pid %d) behind the connection is gone",
                          (int) p->pid);
                wapi_finish(call, GRPC_STATUS_UNAUTHENTICATED, WAPI_MSG_CALLER_GONE);
                return NULL;
        }
        if (c->error < 0) {
                wapi_finish(call, GRPC_STATUS_UNAVAILABLE, WAPI_MSG_ATTEST_FAILED);
                return NULL;
        }
        return c;
}

/* The request, unpacked; NULL (call finished with INVALID_ARGUMENT) when malformed. */
static ProtobufCMessage *call_request(WapiCall *call) {
        const char *why = WAPI_MSG_BAD_REQUEST;
        ProtobufCMessage *m = NULL;
        const void *req;
        size_t len;

        req = rpc_call_request(call->rpc, &len);
        if ((call->method->strings_only && wapi_check_strings(req, len, &why) < 0) ||
            rpc_message_unpack(call->rpc, call->method->request, &m) < 0) {
                wapi_finish(call, GRPC_STATUS_INVALID_ARGUMENT, why);
                return NULL;
        }
        return m;
}

static void call_run(WapiCall *call) {
        const WapiMethod *m = call->method;
        const WapiView *v = NULL;
        ProtobufCMessage *req;

        if (!m->request) {
                wapi_finish(call, GRPC_STATUS_UNIMPLEMENTED, "WIT-SVIDs are not supported");
                return;
        }
        if (m->workload_api) {
                const WapiConn *c = call_caller(call);

                if (!c)
                        return;
                call->selectors = &c->selectors;
        }
        req = call_request(call);
        if (!req)
                return;
        v = wapi_view_current(call->api);
        if (m->unary && (v || !m->workload_api)) {
                m->unary(call, v, req);
                return;
        }
        protobuf_c_message_free_unpacked(req, NULL);
        if (!v)
                wapi_finish(call, GRPC_STATUS_UNAVAILABLE, WAPI_MSG_NOT_READY);
        else
                wapi_stream_start(call, v);
}

void wapi_call_start(RpcCall *rpc, void *userdata) {
        const WapiMethodCtx *ctx = userdata;
        WapiCall call = {.api = ctx->api, .rpc = rpc, .method = ctx->method, .t0 = metrics_now()};

        call_run(&call);
        if (!call.counted && !call.handed_off) {
                /* Every path answers; this only guards the metrics against a new one
                 * that forgets to. */
                log_debug("workload api: %s returned without an outcome",
                          wapi_method_name(call.method));
                wapi_call_count(&call, GRPC_STATUS_UNKNOWN);
        }
}

/* grpc.health.v1.Health/Check: SERVING once there is something to serve. Any caller,
 * any service name (the agent serves one thing). */
void wapi_health_check(WapiCall *call, const WapiView *v, ProtobufCMessage *req) {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

        protobuf_c_message_free_unpacked(req, NULL);
        resp.status = v ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                        : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        (void) wapi_reply(call, &resp.base, 0);
}
