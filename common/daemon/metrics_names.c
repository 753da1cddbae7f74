/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's and the server's metric families, registered from two tables. */

#include "metrics_names.h"

#include <errno.h>
#include <stddef.h>

#include "cleanup.h"

typedef struct MetricDef {
        MetricType type;
        const char *name;
        const char *help;
        const char *labels[METRICS_LABELS_MAX + 1];
        size_t offset; /* of the Metric * in AgentMetrics / ServerMetrics */
} MetricDef;

static const MetricDef agent_defs[] = {
        {METRIC_COUNTER,
         METRIC_WORKLOAD_API_CALLS,
         "Workload API calls by method and gRPC status code.",
         {"method", "code"},
         offsetof(AgentMetrics, workload_api_calls)},
        {METRIC_HISTOGRAM,
         METRIC_WORKLOAD_API_CALL_SECONDS,
         "Workload API call latency in seconds (streams: until the first response).",
         {"method"},
         offsetof(AgentMetrics, workload_api_call_seconds)},
        {METRIC_GAUGE,
         METRIC_WORKLOAD_API_OPEN_STREAMS,
         "Open Workload API streams by method.",
         {"method"},
         offsetof(AgentMetrics, workload_api_open_streams)},
        {METRIC_COUNTER,
         METRIC_WORKLOAD_ATTESTATIONS,
         "Workload attestations (one per connection) by result: ok (all selectors), "
         "unbound (uid/gid only: the process could not prove it holds the connection), "
         "gone (exited first) or error.",
         {"result"},
         offsetof(AgentMetrics, workload_attestations)},
        {METRIC_HISTOGRAM,
         METRIC_WORKLOAD_ATTESTATION_SECONDS,
         "Time to attest a workload (derive its selectors) in seconds.",
         {NULL},
         offsetof(AgentMetrics, workload_attestation_seconds)},
        {METRIC_COUNTER,
         METRIC_WORKLOAD_API_LIMITED,
         "Workload API requests refused or connections closed by a limit: "
         "connections_per_uid, calls_per_uid, jwt_mint_rate, idle_timeout, "
         "connections_evicted (idle, at the global cap).",
         {"limit"},
         offsetof(AgentMetrics, workload_api_limited)},
        {METRIC_COUNTER,
         METRIC_AGENT_SVIDS_ISSUED,
         "SVIDs received from the server.",
         {NULL},
         offsetof(AgentMetrics, svids_issued)},
        {METRIC_COUNTER,
         METRIC_AGENT_SVIDS_ROTATED,
         "Cached X509-SVIDs renewed before expiry.",
         {NULL},
         offsetof(AgentMetrics, svids_rotated)},
        {METRIC_GAUGE,
         METRIC_AGENT_SVID_CACHE_ENTRIES,
         "X509-SVIDs in the agent's cache.",
         {NULL},
         offsetof(AgentMetrics, svid_cache_entries)},
        {METRIC_GAUGE,
         METRIC_AGENT_JWT_CACHE_ENTRIES,
         "JWT-SVIDs in the agent's cache.",
         {NULL},
         offsetof(AgentMetrics, jwt_cache_entries)},
        {METRIC_COUNTER,
         METRIC_AGENT_SYNC_RECONNECTS,
         "Times the sync stream to the server was re-established.",
         {NULL},
         offsetof(AgentMetrics, sync_reconnects)},
        {METRIC_COUNTER,
         METRIC_AGENT_ENTRIES_OVER_CAP,
         "Registration entries ignored because the agent held -maxEntries already "
         "(counted per Sync message).",
         {NULL},
         offsetof(AgentMetrics, entries_over_cap)},
};

static const MetricDef server_defs[] = {
        {METRIC_COUNTER,
         METRIC_SERVER_SIGNINGS,
         "Signatures made by the server CA, by kind.",
         {"kind"},
         offsetof(ServerMetrics, signings)},
        {METRIC_HISTOGRAM,
         METRIC_SERVER_SIGNING_SECONDS,
         "Time to sign, by kind, in seconds.",
         {"kind"},
         offsetof(ServerMetrics, signing_seconds)},
        {METRIC_HISTOGRAM,
         METRIC_SERVER_DATASTORE_SECONDS,
         "Datastore operation latency by operation, in seconds.",
         {"op"},
         offsetof(ServerMetrics, datastore_seconds)},
        {METRIC_COUNTER,
         METRIC_SERVER_NODE_ATTESTATIONS,
         "Node attestations by method and result (ok or error).",
         {"method", "result"},
         offsetof(ServerMetrics, node_attestations)},
        {METRIC_GAUGE,
         METRIC_SERVER_AGENT_STREAMS,
         "Open agent sync streams.",
         {NULL},
         offsetof(ServerMetrics, agent_streams)},
        {METRIC_COUNTER,
         METRIC_SERVER_NODE_API_LIMITED,
         "Node API connections and calls refused or closed by a limit, by limit.",
         {"limit"},
         offsetof(ServerMetrics, node_api_limited)},
        {METRIC_COUNTER,
         METRIC_SERVER_SYNC_MESSAGES,
         "Sync messages sent to agents, by kind (snapshot or delta).",
         {"kind"},
         offsetof(ServerMetrics, sync_messages)},
        {METRIC_COUNTER,
         METRIC_SERVER_SYNC_BYTES,
         "Bytes of Sync messages sent to agents.",
         {NULL},
         offsetof(ServerMetrics, sync_bytes)},
        {METRIC_GAUGE,
         METRIC_SERVER_INDEX_ENTRIES,
         "Registration entries in the server's in-memory index.",
         {NULL},
         offsetof(ServerMetrics, index_entries)},
        {METRIC_COUNTER,
         METRIC_SERVER_CHANGES_APPLIED,
         "Datastore change events applied to the in-memory index.",
         {NULL},
         offsetof(ServerMetrics, changes_applied)},
};

static int register_defs(MetricsRegistry *reg, const MetricDef *defs, size_t n, void *ret) {
        for (size_t i = 0; i < n; i++) {
                const MetricDef *d = &defs[i];
                Metric **slot = (Metric **) ((char *) ret + d->offset);
                int r;

                switch (d->type) {
                case METRIC_COUNTER:
                        r = metrics_counter_new(reg, d->name, d->help, d->labels, slot);
                        break;
                case METRIC_GAUGE:
                        r = metrics_gauge_new(reg, d->name, d->help, d->labels, slot);
                        break;
                case METRIC_HISTOGRAM:
                        r = metrics_histogram_new(reg, d->name, d->help, d->labels, NULL, 0, slot);
                        break;
                default:
                        r = -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int metrics_names_register_agent(MetricsRegistry *reg, AgentMetrics *ret) {
        AgentMetrics m = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = register_defs(reg, agent_defs, ELEMENTSOF(agent_defs), &m);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int metrics_names_register_server(MetricsRegistry *reg, ServerMetrics *ret) {
        ServerMetrics m = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = register_defs(reg, server_defs, ELEMENTSOF(server_defs), &m);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}
