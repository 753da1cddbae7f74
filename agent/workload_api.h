/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The SPIFFE Workload API (proto/spiffe/workload/workload.proto) on a Unix socket.
 *
 * Attestation is per connection, at accept (RpcConnAttestFunc on the RPC layer's attest
 * threads): the selectors are bound to the connection and every call on it reuses them
 * after a pidfd liveness check (a call from a connection whose process exited is
 * refused with UNAUTHENTICATED). A process that exec'd after connecting gets uid/gid
 * selectors only (attest_wl.h). Every call must carry `workload.spiffe.io: true` (else
 * INVALID_ARGUMENT, before anything else). Refused and failed calls are logged at info
 * with method=, pid=, uid= and status= (at most one line a second per uid, then a
 * suppressed= count). The caller's SVIDs are the snapshot's SVIDs whose entry selectors
 * are a subset of the caller's. Streams send the caller's full state at once and again
 * on every published snapshot that changes it (a message equal to the last one sent is
 * skipped); an X.509-SVID stream whose identities are all gone ends with
 * PERMISSION_DENIED, one whose entries await their SVIDs waits silently. Encodings per
 * spec/SPIFFE-FACTS.md §2. `/grpc.health.v1.Health/Check` answers SERVING once a
 * snapshot is published (NOT_SERVING before); it needs no header and is no Workload API
 * call (not counted).
 *
 * Fairness: per-uid caps on connections and on concurrent calls (open streams
 * included), an idle timeout, the oldest idle connection closed at the global cap
 * (RpcConnLimits), and the source's JWT-SVID cache partitioned by uid with a per-uid
 * rate of mints (manager.h).
 *
 * Threads: every handler runs on the RPC layer's CQ thread and never blocks: it reads
 * the published WapiView without a lock and answers at once, except a JWT-SVID that has
 * to be minted, which is answered from the source's callback. The owner thread publishes
 * views and pushes stream updates (workload_api_snapshot_changed()).
 *
 * Data comes from a WorkloadApiSource: the agent's Manager in production; tests may
 * supply snapshots they build themselves. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "attest_wl.h"
#include "manager.h"
#include "metrics_names.h"
#include "rpc.h"
#include "snapshot.h"

/* Defaults of WorkloadApiConfig (0 there picks them). */
#define WORKLOAD_API_MAX_CONNECTIONS 1024
#define WORKLOAD_API_MAX_CONNECTIONS_PER_UID 64
#define WORKLOAD_API_MAX_CALLS_PER_UID 256
#define WORKLOAD_API_IDLE_TIMEOUT_MS (60 * 1000)
/* ValidateJWTSVID: how far in the future nbf and iat may be (clocks ahead of ours), the
 * agent's default. */
#define WORKLOAD_API_JWT_SKEW_SECONDS 60

typedef struct WorkloadApiSource {
        /* Current snapshot, referenced; NULL when none yet (calls get UNAVAILABLE). */
        AgentSnapshot *(*snapshot)(void *userdata);
        /* Same contract as manager_fetch_jwt_svid(). */
        int (*fetch_jwt_svid)(void *userdata,
                              uid_t uid,
                              const CachedSvid *svid,
                              const char *const *audiences,
                              size_t n_audiences,
                              ManagerJwtCallback done,
                              void *done_userdata);
        void *userdata;
} WorkloadApiSource;

typedef struct WorkloadApiConfig {
        const char *socket_path;  /* bind here (mode 0777, dir 0755) unless listen_fd >= 0 */
        int listen_fd;            /* socket-activated fd (sd_listen_fds), else -1 */
        RpcConnLimits limits;     /* zeros: the WORKLOAD_API_* defaults */
        bool no_idle_timeout;     /* limits.idle_timeout_ms 0 means "never", not the default */
        int64_t jwt_skew_seconds; /* ValidateJWTSVID: nbf/iat this far ahead are
                                   * fine (WORKLOAD_API_JWT_SKEW_SECONDS is usual) */
        int64_t jwt_expiry_leeway_seconds; /* opt-in grace after exp; 0 as RFC 7519 wants */
        /* Borrowed (the pointers are copied); NULL = no metrics. Updated: every call
         * that reaches a handler in workload_api_calls{method, code} and
         * workload_api_call_seconds{method} (unary: until the status; streams: until
         * the first message, or the status when none went out), calls the RPC layer
         * refuses (header, per-uid call cap) in workload_api_calls with latency 0, open
         * streams workload_api_open_streams{method}, per-connection attestation in
         * workload_attestations{result} and workload_attestation_seconds, refusals by a
         * limit in workload_api_limited{limit}. */
        const AgentMetrics *metrics;
} WorkloadApiConfig;

typedef struct WorkloadApi WorkloadApi;

/* Creates the API and its RpcServer (not yet serving). Borrowed: source, attestor. */
int workload_api_new(const WorkloadApiConfig *cfg,
                     const WorkloadApiSource *source,
                     Attestor *attestor,
                     WorkloadApi **ret);

/* Starts serving and publishes the source's current snapshot, if any. The RpcServer's
 * event fd is added to `event` (close callbacks of the layer run there). */
int workload_api_start(WorkloadApi *w, sd_event *event);

/* Call after every newly published snapshot (owner thread): publishes its view to the
 * handlers and pushes to open streams. */
void workload_api_snapshot_changed(WorkloadApi *w);

/* The RPC layer's counters (connections accepted/refused/evicted/idle-closed, calls). */
void workload_api_get_stats(WorkloadApi *w, RpcServerStats *ret);

/* Ends every stream and stops serving; the socket path is unlinked unless the fd
 * was socket-activated. */
void workload_api_stop(WorkloadApi *w);
/* Stops (if needed) and drops the owner's reference. Memory still used by JWT-SVID
 * requests in flight at the source is released when their callbacks have run. */
WorkloadApi *workload_api_free(WorkloadApi *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkloadApi *, workload_api_free)
