/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `warden-agent run`: the node agent process.
 *
 * Threads (what each owns; every other thread only passes it messages):
 *   main         sd-event loop: the Manager (entries, SVIDs, publishing snapshots), link
 *                events, signals, watchdog, STATUS= lines; on every new snapshot it
 *                publishes the Workload API's view and pushes to open streams.
 *   link         link.c: node attestation and renewal, the Sync stream (blocking calls on
 *                callback completion queues: it never polls gRPC); LinkEvents to main.
 *   worker       the manager's taskq: workload key generation, CSR batches, JWT-SVID
 *                mints (blocking calls to the server); results to main; a minted JWT-SVID
 *                is answered to its Workload API caller from here.
 *   rpc-cq       the Workload API's CQ thread, the one thread that polls gRPC for the
 *                whole process (rpc_client_set_polled_elsewhere()): every Workload API
 *                handler runs here, inline, and never blocks.
 *   rpc-accept   accepts Workload API connections: per-uid and global caps, idle and
 *                hung-up connections, the connection table.
 *   rpc-attest   (x2) attests each new connection before gRPC sees it, uids in turn.
 *   http         libmicrohttpd (with -healthAddress): /live, /ready, /metrics, /logger.
 *   and gRPC's own (executor, timers, resolver).
 *
 * Locks, each guarding only what is listed and held only for short, non-blocking work:
 *   Manager.snapshot_lock     the published AgentSnapshot pointer (swap, or ref + unlock)
 *   JwtCache.lock             JWT-SVID cache, per-uid accounts and mint budgets, pending mints
 *   WorkloadApi.view_lock     the published WapiView pointer. Readers on the CQ thread do
 *                             not take it: they compare an atomic generation (one load per
 *                             call) and take it only once after each publish
 *   WorkloadApi.streams_lock  the list of open streams (updates copy it, then send
 *                             without it); WapiStream.lock what one stream sent
 *   WorkloadApi.log_lock      the per-uid refusal log slots
 *   RpcAcceptor.lock          connection table, per-uid counts, attestation queue
 *   RpcCall.lock, RpcServer.batch_lock (rwlock)  one call's send state; the CQ's life
 *   Attestor.lock, WlNames.lock, WlSystemd.lock  the sha256 cache, the name cache, the bus
 *   taskq and link event queues                  their own queues
 * The metrics registry is updated from every thread (atomics inside).
 *
 * systemd: READY=1 once the Workload API listens (calls get UNAVAILABLE until the first
 * Sync), STATUS= lines on every change ("Attesting", "Connecting to the server", "Serving
 * N SVIDs for M entries (server connected)" or "(server unreachable, serving from
 * cache)", "Shutting down"), WATCHDOG=1 from the event loop at half of $WATCHDOG_USEC,
 * STOPPING=1 on SIGTERM/SIGINT; a socket-activated listening fd (sd_listen_fds) is used
 * instead of binding -socketPath. SIGHUP reloads the configuration (agent_internal.h,
 * agent_reload()). With -healthAddress, /live, /ready (200 once the node is attested
 * and the first Sync message applied, 503 before and while stopping) and /metrics
 * (metrics_names.h, AgentMetrics) are served over loopback HTTP. */

#include <stdbool.h>

#include "cleanup.h"
#include "config.h"

#define WARDEN_AGENT_VERSION "0.1.0"

typedef struct Agent Agent;

/* Builds the agent from cfg (taken over; *cfg is zeroed on success): blocks the
 * termination signals, creates the metrics registry and dataDir (0700) and locks it
 * (<dataDir>/agent.lock: a second agent on it fails here, naming the first one's pid),
 * with -healthAddress starts the HTTP endpoints, loads the persisted node identity and
 * checks that the agent can start at all (a valid node SVID, or an attestation method
 * and roots for the server). Logs what failed. A start that fails, here or in
 * agent_run(), removes what it created (the lock file, directories it made that are still
 * empty). */
int agent_new(AgentConfig *cfg, Agent **ret);

/* Starts the threads and the Workload API, sends READY=1, runs until SIGTERM/SIGINT
 * (0) or until the link gives up (-errno, logged). */
int agent_run(Agent *a);

/* Stops the HTTP endpoints, the Workload API, the link and the worker, frees
 * everything (the metrics registry last). NULL-safe. */
Agent *agent_free(Agent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Agent *, agent_free)

/* `warden-agent run ...` (DEFINE_DAEMON_MAIN_FUNCTION): logs as "agent", parses,
 * agent_new, agent_run, agent_free. Returns the exit status (0 clean shutdown or help,
 * 1 on any error). */
int agent_main(int argc, char **argv);
