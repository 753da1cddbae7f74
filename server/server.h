/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The issuing server process: configuration and the state its main thread owns.
 *
 * One sd-event loop on the main thread owns everything here: the datastore, the CA,
 * both RPC servers (their handlers run on this thread through rpc_server_dispatch),
 * the node API's open Sync streams and the timers (CA rotation, token pruning). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <systemd/sd-event.h>

#include <warden/x509.h>

#include "ca.h"
#include "ds.h"
#include "rpc.h"

typedef struct NodeApi NodeApi;

typedef struct ServerConfig {
        char *trust_domain;
        char *data_dir;
        char *bind_address; /* default 127.0.0.1 */
        uint16_t port;      /* default 8081; 0 = any free port (logged) */
        char *socket_path;  /* admin socket, default /run/warden/server.sock */
        int log_level;
        int64_t default_x509_ttl; /* 1h */
        int64_t default_jwt_ttl;  /* 5m */
        int64_t ca_ttl;           /* 24h */
        WardenKeyType ca_key_type;
        char *upstream_cert; /* -upstreamCA cert.pem,key.pem */
        char *upstream_key;
        char *x509pop_ca; /* PEM roots for x509pop node attestation; NULL = disabled */
        uid_t *admin_uids;
        size_t n_admin_uids;
} ServerConfig;

typedef struct Server {
        sd_event *event;
        ServerConfig cfg;
        Datastore *ds;
        Ca *ca;
        RpcServer *node_rpc;  /* TCP + TLS */
        RpcServer *admin_rpc; /* Unix socket */
        NodeApi *node;
        int node_port; /* the port actually bound */
        time_t started_at;
        uid_t own_uid;
} Server;

void server_config_done(ServerConfig *c);

/* The authoritative TTL for an entry's SVID: the entry's own value if set, capped at
 * the server default (an entry never raises the cap). */
int64_t server_x509_ttl(const Server *s, int32_t entry_ttl);
int64_t server_jwt_ttl(const Server *s, int32_t entry_ttl);

/* Tell every connected agent that something changed (entries, bans, bundle). Called by
 * the admin API after each committed change and by the CA timer after rotation. */
void server_entries_changed(Server *s);
void server_bundle_changed(Server *s);
void server_agent_changed(Server *s, const char *agent_id); /* banned or evicted */
