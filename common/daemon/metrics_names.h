/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The metrics Warden's daemons export, in one place so names, help texts and label
 * sets stay the same in both daemons, the docs and the dashboards.
 *
 * Each daemon registers its set once at start (before any thread updates them) into
 * a MetricsRegistry it owns, keeps the struct, and updates through the Metric pointers
 * (metrics.h; all updates are thread-safe and no-ops on NULL, so a zeroed struct means
 * "metrics off"). Label values:
 *   method  the gRPC method's short name ("FetchX509SVID", "FetchJWTSVID", ...)
 *   code    rpc_status_to_string(status): "OK", "PERMISSION_DENIED", ...
 *   result  METRICS_RESULT_OK or METRICS_RESULT_ERROR (attestations: also UNBOUND, GONE)
 *   limit   METRICS_LIMIT_*: which limit refused a connection or call
 *   kind    METRICS_KIND_*: what the server signed
 *   op      the datastore operation ("create_entry", "list_entries", ...) */

#include "metrics.h"

/* Family names (labels in braces). */
/* Workload API (agent): calls {method, code}, call seconds {method}, open streams {method},
 * attestations {result}, attestation seconds, limits hit {limit}. */
#define METRIC_WORKLOAD_API_CALLS "warden_workload_api_calls_total"
#define METRIC_WORKLOAD_API_CALL_SECONDS "warden_workload_api_call_seconds"
#define METRIC_WORKLOAD_API_OPEN_STREAMS "warden_workload_api_open_streams"
#define METRIC_WORKLOAD_ATTESTATIONS "warden_workload_attestations_total"
#define METRIC_WORKLOAD_ATTESTATION_SECONDS "warden_workload_attestation_seconds"
#define METRIC_WORKLOAD_API_LIMITED "warden_workload_api_limited_total"
/* Agent state (no labels). */
#define METRIC_AGENT_SVIDS_ISSUED "warden_agent_svids_issued_total"
#define METRIC_AGENT_SVIDS_ROTATED "warden_agent_svids_rotated_total"
#define METRIC_AGENT_SVID_CACHE_ENTRIES "warden_agent_svid_cache_entries"
#define METRIC_AGENT_JWT_CACHE_ENTRIES "warden_agent_jwt_cache_entries"
#define METRIC_AGENT_SYNC_RECONNECTS "warden_agent_sync_reconnects_total"
#define METRIC_AGENT_ENTRIES_OVER_CAP "warden_agent_entries_over_cap_total"
/* Server: signings {kind}, signing seconds {kind}, datastore seconds {op}, node
 * attestations {method, result}, open agent streams, node API refusals {limit}. */
#define METRIC_SERVER_SIGNINGS "warden_server_signings_total"
#define METRIC_SERVER_SIGNING_SECONDS "warden_server_signing_seconds"
#define METRIC_SERVER_DATASTORE_SECONDS "warden_server_datastore_seconds"
#define METRIC_SERVER_NODE_ATTESTATIONS "warden_server_node_attestations_total"
#define METRIC_SERVER_AGENT_STREAMS "warden_server_agent_streams"
#define METRIC_SERVER_NODE_API_LIMITED "warden_server_node_api_limited_total"
#define METRIC_SERVER_SYNC_MESSAGES "warden_server_sync_messages_total"
#define METRIC_SERVER_SYNC_BYTES "warden_server_sync_bytes_total"
#define METRIC_SERVER_INDEX_ENTRIES "warden_server_index_entries"
#define METRIC_SERVER_CHANGES_APPLIED "warden_server_changes_applied_total"

#define METRICS_RESULT_OK "ok"
#define METRICS_RESULT_ERROR "error"
#define METRICS_RESULT_UNBOUND "unbound"
#define METRICS_RESULT_GONE "gone"

#define METRICS_LIMIT_CONNECTIONS_PER_UID "connections_per_uid"
#define METRICS_LIMIT_CALLS_PER_UID "calls_per_uid"
#define METRICS_LIMIT_JWT_MINT_RATE "jwt_mint_rate"
#define METRICS_LIMIT_IDLE_TIMEOUT "idle_timeout"
#define METRICS_LIMIT_CONNECTIONS_EVICTED "connections_evicted"
#define METRICS_LIMIT_UNAUTH_PER_SOURCE "unauth_per_source"
#define METRICS_LIMIT_HANDSHAKE_TIMEOUT "handshake_timeout"
#define METRICS_LIMIT_ACCEPT_BACKOFF "accept_backoff"
#define METRICS_LIMIT_ATTESTATION_RATE "attestation_rate"

#define METRICS_KIND_X509_SVID "x509_svid"
#define METRICS_KIND_JWT_SVID "jwt_svid"
#define METRICS_KIND_NODE_SVID "node_svid"
#define METRICS_KIND_CA "ca"

typedef struct AgentMetrics {
        Metric *workload_api_calls;           /* counter {method, code} */
        Metric *workload_api_call_seconds;    /* histogram {method}: unary calls, and a
                                               * stream's time to its first response */
        Metric *workload_api_open_streams;    /* gauge {method} */
        Metric *workload_attestations;        /* counter {result} */
        Metric *workload_attestation_seconds; /* histogram: time to derive selectors */
        Metric *workload_api_limited;         /* counter {limit}: METRICS_LIMIT_* */
        Metric *svids_issued;                 /* counter: X509-SVIDs and JWT-SVIDs received */
        Metric *svids_rotated;                /* counter: cached X509-SVIDs renewed */
        Metric *svid_cache_entries;           /* gauge: X509-SVIDs in the cache */
        Metric *jwt_cache_entries;            /* gauge: JWT-SVIDs in the cache */
        Metric *sync_reconnects;              /* counter: sync stream re-established */
        Metric *entries_over_cap;             /* counter: entries ignored at -maxEntries */
} AgentMetrics;

typedef struct ServerMetrics {
        Metric *signings;          /* counter {kind} */
        Metric *signing_seconds;   /* histogram {kind} */
        Metric *datastore_seconds; /* histogram {op} */
        Metric *node_attestations; /* counter {method, result}: join_token, x509pop, svid */
        Metric *agent_streams;     /* gauge: open agent sync streams */
        Metric *node_api_limited;  /* counter {limit}: METRICS_LIMIT_* of the node API */
        Metric *sync_messages;     /* counter {kind}: snapshot, delta */
        Metric *sync_bytes;        /* counter: bytes of Sync messages */
        Metric *index_entries;     /* gauge: entries in the in-memory index */
        Metric *changes_applied;   /* counter: datastore events applied to the index */
} ServerMetrics;

/* Registers the agent's metrics in reg and fills *ret (borrowed pointers, valid while
 * reg lives). Returns 0, -EEXIST if already registered, or -ENOMEM; on failure *ret is
 * untouched and some families may be registered already (free the registry). */
int metrics_names_register_agent(MetricsRegistry *reg, AgentMetrics *ret);

/* The same for the server's metrics. */
int metrics_names_register_server(MetricsRegistry *reg, ServerMetrics *ret);
