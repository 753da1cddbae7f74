/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The Agent's state, shared by agent.c (wiring, event loop), agent_health.c (metrics,
 * /ready, STATUS= lines) and agent_reload.c (SIGHUP), and exposed to the unit tests.
 *
 * Threads: everything belongs to the main thread (sd-event) except `ready`, which the
 * HTTP thread reads (atomics), and the metrics, which every thread updates. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include <warden/bundle.h>

#include "agent.h"
#include "attest_wl.h"
#include "config.h"
#include "daemon.h"
#include "health_http.h"
#include "link.h"
#include "manager.h"
#include "metrics.h"
#include "metrics_names.h"
#include "server_client.h"
#include "workload_api.h"

/* Bits of Agent.ready (what /ready reports). */
enum {
        AGENT_READY_ATTESTED = 1 << 0, /* a valid node SVID, loaded or from attestation */
        AGENT_READY_SYNCED = 1 << 1,   /* the first Sync message was applied */
        AGENT_READY_STOPPING = 1 << 2, /* SIGTERM/SIGINT: shutting down */
};

struct Agent {
        AgentConfig cfg;
        sd_event *event;
        WardenBundle *bootstrap;
        ServerCreds *creds;
        ServerConn worker_conn; /* the manager's worker thread only */
        Manager *manager;
        Link *link;
        Attestor *attestor;
        WorkloadApi *wapi;
        int listen_fd;
        int lock_fd;              /* flock on <dataDir>/AGENT_LOCK_FILE (agent_start.c) */
        bool lock_created;        /* ... made by this start */
        char *created_data_dir;   /* topmost directory this start made for dataDir */
        char *created_socket_dir; /* ... and for the socket's directory */
        bool undo_start;          /* agent_free(): the start failed, take that back */
        char *agent_id;
        char *last_status;
        sd_event_source *link_io;
        sd_event_source *signals[DAEMON_N_SIGNALS];
        bool connected, ever_connected, stopping;
        int exit_error;

        /* The `run` arguments (borrowed from main), parsed again on SIGHUP; argc 0: no
         * reload possible. */
        int argc;
        char **argv;

        /* Metrics (always collected) and the optional HTTP endpoints serving them. The
         * HTTP thread reads `registry` and `ready` only. */
        MetricsRegistry *registry;
        AgentMetrics metrics; /* all NULL without a registry: updates are no-ops */
        HealthHttp *health;
        unsigned ready; /* AGENT_READY_* bits, atomic (__atomic_* builtins) */
};

/* agent_health.c */

/* Creates the registry and registers the agent's metrics in it. Logs failures. */
int agent_setup_metrics(Agent *a);
/* With -healthAddress: starts the HTTP endpoints (/ready answers 503 until the node
 * is attested and the first Sync message is applied). Logs failures. */
int agent_start_health(Agent *a);
/* Sets one AGENT_READY_* bit (any thread). */
void agent_set_ready(Agent *a, unsigned bit);
/* HealthReadyFunc for /ready: true when attested and synced and not stopping; the
 * reason otherwise ("shutting down", "not attested yet", "no sync yet"). */
bool agent_is_ready(void *userdata, const char **ret_reason);
/* The STATUS= text for the current state (malloc'd), without "STATUS=":
 * "Attesting", "Connecting to the server", "Serving N SVIDs for M entries (server
 * connected)" or "(server unreachable, serving from cache)". NULL on OOM. */
char *agent_status_text(Agent *a);
/* Sends "<extra>STATUS=<agent_status_text()>" when the text changed since the last
 * one sent, or always when extra is not NULL ("READY=1\n", say). A no-op without
 * $NOTIFY_SOCKET. */
void agent_notify_status(Agent *a, const char *extra);

/* agent_start.c: what a start makes on disk, and taking it back when the start fails. */

/* The lock file in dataDir (lockfile.h). */
#define AGENT_LOCK_FILE "agent.lock"

/* Creates dataDir (0700, missing parents 0755) and locks it; a second agent on it fails
 * here with one line naming the holder's pid. Logs failures. */
int agent_take_data_dir(Agent *a);
/* Creates the missing directories above -socketPath (0755). Logs failures. */
int agent_make_socket_dir(Agent *a);
/* Releases the lock. With undo (the start failed) first removes what this start created:
 * the lock file, then the directories it made, each only if empty. Call after the
 * Workload API and the link are gone (the socket unlinked, no more writes to dataDir). */
void agent_release_start(Agent *a, bool undo);

/* agent_reload.c */

/* SIGHUP: parses a->argv again (flags and the -config file; -joinTokenFile is not
 * read) and applies what is safe at run time: logLevel (WARDEN_LOG_LEVEL still wins)
 * and workloadKeyType (for SVIDs signed from now on; the current ones keep their key
 * until their renewal). Everything else is fixed at start; options that differ are logged at
 * warning as "requires restart, ignoring". A config that does not parse or validate is logged and
 * the running configuration stays. Sends RELOADING=1, then READY=1 with the STATUS= line. Returns 0
 * when applied, or the parse error. */
int agent_reload(Agent *a);
