/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `warden-agent run`: the node agent process.
 *
 * The main thread runs sd-event and owns the Manager; the link thread (sync.h) keeps
 * the node attested and the Sync stream open; the manager's worker thread signs; the
 * Workload API (workload_api.h) serves from the manager's snapshots. systemd: READY=1
 * once the Workload API listens (calls get UNAVAILABLE until the first Sync), STATUS=
 * lines on every change of connection state, WATCHDOG=1 when WATCHDOG_USEC is set,
 * STOPPING=1 on SIGTERM/SIGINT; a socket-activated listening fd (sd_listen_fds) is used
 * instead of binding -socketPath. */

#include <stdbool.h>

#include "cleanup.h"
#include "config.h"

#define WARDEN_AGENT_VERSION "0.1.0"

typedef struct Agent Agent;

/* Builds the agent from cfg (taken over; *cfg is zeroed on success): blocks the
 * termination signals, creates dataDir (0700), loads the persisted node identity and
 * checks that the agent can start at all (a valid node SVID, or an attestation method
 * and roots for the server). Logs what failed. */
int agent_new(AgentConfig *cfg, Agent **ret);

/* Starts the threads and the Workload API, sends READY=1, runs until SIGTERM/SIGINT
 * (0) or until the link gives up (-errno, logged). */
int agent_run(Agent *a);

/* Stops the Workload API, the link and the worker, frees everything. NULL-safe. */
Agent *agent_free(Agent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Agent *, agent_free)

/* `warden-agent run ...`: parse, agent_new, agent_run, agent_free. Returns the exit
 * status (0 clean shutdown or help, 1 on any error). */
int agent_main(int argc, char **argv);
