/* SPDX-License-Identifier: Apache-2.0 */
/* Per-call accounting of the Workload API: each call that reaches a handler is
 * counted once with its status and latency, calls the RPC layer refuses before a
 * handler (missing security header) with their status, and refusals are logged with the
 * caller's pid and uid, rate-limited per uid (a uid without entries that retries in a
 * loop must not flood the journal). */
#define _GNU_SOURCE

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_status.h"
#include "workload_api_internal.h"

static const char *const method_names[_WAPI_METHOD_MAX] = {
        [WAPI_FETCH_X509_SVID] = "FetchX509SVID",
        [WAPI_FETCH_X509_BUNDLES] = "FetchX509Bundles",
        [WAPI_FETCH_JWT_SVID] = "FetchJWTSVID",
        [WAPI_FETCH_JWT_BUNDLES] = "FetchJWTBundles",
        [WAPI_VALIDATE_JWT_SVID] = "ValidateJWTSVID",
        [WAPI_FETCH_WIT_SVID] = "FetchWITSVID",
        [WAPI_FETCH_WIT_BUNDLES] = "FetchWITBundles",
};

const char *wapi_method_name(WapiMethodId id) {
        return id >= 0 && id < _WAPI_METHOD_MAX ? method_names[id] : "unknown";
}

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
               status == GRPC_STATUS_INVALID_ARGUMENT;
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

int wapi_reply(WapiCall *call, const void *msg, size_t len) {
        int r;

        r = rpc_call_reply(call->rpc, msg, len);
        if (r >= 0)
                wapi_call_count(call, GRPC_STATUS_OK);
        else if (r == -ENOTCONN)
                wapi_call_count(call, GRPC_STATUS_CANCELLED);
        return r;
}

void wapi_call_stream_opened(WapiCall *call, int delta) {
        (void) metrics_gauge_add(call->api->metrics.workload_api_open_streams,
                                 METRICS_LABELS(wapi_method_name(call->method)), (double) delta);
}

void wapi_count_refused(const char *path, grpc_status_code status, void *userdata) {
        const AgentMetrics *m = &((WorkloadApi *) userdata)->metrics;
        const char *name = NULL;

        /* The path is the client's: only our own names may become labels. */
        if (!path || strncmp(path, WAPI_METHOD_PREFIX, strlen(WAPI_METHOD_PREFIX)) != 0)
                return;
        for (size_t i = 0; i < _WAPI_METHOD_MAX && !name; i++)
                if (streq(path + strlen(WAPI_METHOD_PREFIX), method_names[i]))
                        name = method_names[i];
        if (!name)
                return;
        /* No agent code ran: latency 0, so the histogram still counts every call. */
        (void) metrics_histogram_observe(m->workload_api_call_seconds, METRICS_LABELS(name), 0.0);
        (void) metrics_counter_inc(m->workload_api_calls,
                                   METRICS_LABELS(name, rpc_status_to_string(status)));
}

void wapi_call_run(WapiMethodCtx *m, RpcCall *rpc, double t0) {
        WapiCall call = {.api = m->api, .rpc = rpc, .method = m->id, .t0 = t0};

        m->handler(&call);
        if (!call.counted && !call.handed_off) {
                /* Every path answers; this only guards the metrics against a new one
                 * that forgets to. */
                log_debug("workload api: %s returned without an outcome",
                          wapi_method_name(call.method));
                wapi_call_count(&call, GRPC_STATUS_UNKNOWN);
        }
}
