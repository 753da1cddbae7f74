/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The SPIFFE Workload API (proto/spiffe/workload/workload.proto) on a Unix socket.
 *
 * Every call must carry `workload.spiffe.io: true` (else INVALID_ARGUMENT, before
 * anything else). Refused and failed calls are logged at info with method=, pid=,
 * uid= and status= (at most one line a second per uid, then a suppressed= count). Each call's
 * process is attested from the connection's SO_PEERCRED
 * + pidfd (Attestor); the caller's SVIDs are the snapshot's SVIDs whose entry
 * selectors are a subset of the caller's. Streams send the caller's full state at once
 * and again on every published snapshot that changes it (a message equal to the last
 * one sent is skipped); an X.509-SVID stream whose identities are all gone ends with
 * PERMISSION_DENIED, one whose entries await their SVIDs waits silently. Encodings
 * per spec/SPIFFE-FACTS.md §2.
 *
 * Data comes from a WorkloadApiSource: the agent's Manager in production; tests may
 * supply snapshots they build themselves. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "attest_wl.h"
#include "manager.h"
#include "metrics_names.h"
#include "snapshot.h"

typedef struct WorkloadApiSource {
        /* Current snapshot, referenced; NULL when none yet (calls get UNAVAILABLE). */
        AgentSnapshot *(*snapshot)(void *userdata);
        /* Same contract as manager_fetch_jwt_svid(). */
        int (*fetch_jwt_svid)(void *userdata,
                              const CachedSvid *svid,
                              const char *const *audiences,
                              size_t n_audiences,
                              ManagerJwtCallback done,
                              void *done_userdata);
        void *userdata;
} WorkloadApiSource;

typedef struct WorkloadApiConfig {
        const char *socket_path; /* bind here (mode 0777, dir 0755) unless listen_fd >= 0 */
        int listen_fd;           /* socket-activated fd (sd_listen_fds), else -1 */
        unsigned max_connections;
        /* Borrowed (the pointers are copied); NULL = no metrics. Updated: every call
         * that reaches a handler in workload_api_calls{method, code} and
         * workload_api_call_seconds{method} (unary: until the status; streams: until
         * the first message, or the status when none went out), open streams
         * workload_api_open_streams{method}, per-call attestation in
         * workload_attestations{result} and workload_attestation_seconds. Calls
         * refused by the gRPC layer before any handler (no or a wrong
         * `workload.spiffe.io` header, unknown method) are not seen here. */
        const AgentMetrics *metrics;
} WorkloadApiConfig;

typedef struct WorkloadApi WorkloadApi;

/* Where call handlers run (attestation reads /proc, JWT-SVIDs may wait for the server):
 *   INLINE   on the gRPC completion-queue thread (lowest latency; a slow attestation,
 *            e.g. hashing a big executable the first time, delays other calls);
 *   OWNER    on the thread running the sd-event loop given to workload_api_start();
 *   WORKERS  the CQ thread hands each call to a small pool of worker threads.
 * JWT-SVID mints that miss the cache never block any of them: the answer is sent
 * from the source's callback. The default is WORKERS: in scripts/bench.sh runs the
 * three modes stay within the run-to-run noise of each other (+-20 % on a shared 2-CPU
 * box; the thread hop costs a few us), while per-call attestation (~50-70 us of /proc
 * reads, the largest cost; at worst a D-Bus call or hashing a big executable) never
 * stalls the CQ thread or the agent's main loop. */
typedef enum WorkloadApiHandlerMode {
        WORKLOAD_API_HANDLERS_INLINE,
        WORKLOAD_API_HANDLERS_OWNER,
        WORKLOAD_API_HANDLERS_WORKERS,
        _WORKLOAD_API_HANDLERS_MAX,
} WorkloadApiHandlerMode;

#define WORKLOAD_API_HANDLERS_DEFAULT WORKLOAD_API_HANDLERS_WORKERS

/* Creates the API and its RpcServer (not yet serving). Borrowed: source, attestor. */
int workload_api_new(const WorkloadApiConfig *cfg,
                     const WorkloadApiSource *source,
                     Attestor *attestor,
                     WorkloadApi **ret);

/* Before workload_api_start() only (-EBUSY after, -EINVAL for a bad mode). */
int workload_api_set_handler_mode(WorkloadApi *w, WorkloadApiHandlerMode mode);

/* "inline" | "owner" | "workers" -> mode (>= 0), else -EINVAL. */
int workload_api_handler_mode_from_string(const char *s);

/* Starts serving. The RpcServer's event fd is added to `event` (handlers run on the
 * thread running that loop). */
int workload_api_start(WorkloadApi *w, sd_event *event);

/* Call after every newly published snapshot (main thread): pushes to open streams. */
void workload_api_snapshot_changed(WorkloadApi *w);

/* Ends every stream and stops serving; the socket path is unlinked unless the fd
 * was socket-activated. */
void workload_api_stop(WorkloadApi *w);
/* Stops (if needed) and drops the owner's reference. Memory still used by JWT-SVID
 * requests in flight at the source is released when their callbacks have run. */
WorkloadApi *workload_api_free(WorkloadApi *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkloadApi *, workload_api_free)
