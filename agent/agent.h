/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `warden-agent run`: the node agent process.
 *
 * The main thread runs sd-event and owns the Manager; the link thread (sync.h) keeps
 * the node attested and the Sync stream open; the manager's worker thread signs; the
 * Workload API (workload_api.h) serves from the manager's snapshots. systemd: READY=1
 * once the Workload API listens (calls get UNAVAILABLE until the first Sync), STATUS=
 * lines on every change ("Attesting", "Connecting to the server", "Serving N SVIDs for
 * M entries (server connected)" or "(server unreachable, serving from cache)",
 * "Shutting down"), WATCHDOG=1 from the event loop at half of $WATCHDOG_USEC,
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

/* `warden-agent run ...`: parse, agent_new, agent_run, agent_free. Returns the exit
 * status (0 clean shutdown or help, 1 on any error). */
int agent_main(int argc, char **argv);
