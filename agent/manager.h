/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The agent's manager: keeps the node attested, holds the Sync stream to the server,
 * keeps one X.509-SVID per authorized entry (workload keys made here, CSRs sent in
 * batches, renewed at half-life with jitter), caches JWT-SVIDs, and publishes an
 * immutable AgentSnapshot after every change.
 *
 * Threads: the manager's state belongs to the main thread (sd-event). Blocking calls
 * to the server run on the manager's own threads, which hand results back to the main
 * thread. manager_snapshot() and manager_fetch_jwt_svid() may be called from any
 * thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "snapshot.h"

typedef struct Manager Manager;

/* The current snapshot, referenced (drop it with agent_snapshot_unref), or NULL
 * before the first one was published. Lock-free for readers. */
AgentSnapshot *manager_snapshot(Manager *m);

/* Called on the main thread after each new snapshot is published (the Workload API
 * pushes to its open streams from here). One callback. */
typedef void (*ManagerSnapshotCallback)(AgentSnapshot *snapshot, void *userdata);
void manager_set_snapshot_callback(Manager *m, ManagerSnapshotCallback cb, void *userdata);

/* A JWT-SVID for entry `svid` (from a snapshot) and the audiences. Served from the
 * JWT cache when a token for (SPIFFE ID, sorted audiences) has more than half its life
 * left; otherwise minted by the server. `done` runs exactly once, on an unspecified
 * thread, with r = 0 and the token, or r < 0 (-EAGAIN/-ECONNREFUSED when the server
 * cannot be reached and no cached token is valid). Returns 0 when `done` will run
 * (possibly already ran), or -errno without calling it. */
typedef void (*ManagerJwtCallback)(int r, const char *token, void *userdata);
int manager_fetch_jwt_svid(Manager *m,
                           const CachedSvid *svid,
                           const char *const *audiences,
                           size_t n_audiences,
                           ManagerJwtCallback done,
                           void *userdata);
