/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The SPIFFE Workload API (proto/spiffe/workload/workload.proto) on a Unix socket.
 *
 * Every call must carry `workload.spiffe.io: true` (else INVALID_ARGUMENT, before
 * anything else). Each call's process is attested from the connection's SO_PEERCRED
 * + pidfd (Attestor); the caller's SVIDs are the snapshot's SVIDs whose entry
 * selectors are a subset of the caller's. Streams send the caller's full state at once
 * and again on every published snapshot that changes it; bundle streams skip a
 * message equal to the last one sent. Encodings per spec/SPIFFE-FACTS.md §2.
 *
 * Data comes from a WorkloadApiSource: the agent's Manager in production; tests may
 * supply snapshots they build themselves. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "attest_wl.h"
#include "manager.h"
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
} WorkloadApiConfig;

typedef struct WorkloadApi WorkloadApi;

/* Creates the API and its RpcServer (not yet serving). Borrowed: source, attestor. */
int workload_api_new(const WorkloadApiConfig *cfg,
                     const WorkloadApiSource *source,
                     Attestor *attestor,
                     WorkloadApi **ret);

/* Starts serving. The RpcServer's event fd is added to `event` (handlers run on the
 * thread running that loop). */
int workload_api_start(WorkloadApi *w, sd_event *event);

/* Call after every newly published snapshot (main thread): pushes to open streams. */
void workload_api_snapshot_changed(WorkloadApi *w);

/* Ends every stream and stops serving; the socket path is unlinked unless the fd
 * was socket-activated. */
void workload_api_stop(WorkloadApi *w);
WorkloadApi *workload_api_free(WorkloadApi *w);
