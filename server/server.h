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
#include "cleanup.h"
#include "ds.h"
#include "rpc.h"

typedef struct NodeApi NodeApi;

#define WARDEN_SERVER_VERSION "0.1.0"

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
        /* event sources, owned (server.c / server_run.c) */
        sd_event_source *node_io, *admin_io;
        sd_event_source *ca_timer, *prune_timer;
        sd_event_source *sigterm, *sigint, *sighup;
        bool stopping;
} Server;

/* Frees the strings of c and zeroes it (config.c). */
void server_config_done(ServerConfig *c);

/* Creates the server state from cfg, which it takes over (*cfg is zeroed on success):
 * blocks SIGTERM/SIGINT/SIGHUP (before any gRPC thread exists), creates dataDir
 * (0700), opens <dataDir>/datastore.sqlite3, loads or creates the CA, and sets up
 * both RPC servers (node API on bindAddress:serverPort with TLS, admin API on
 * socketPath, mode 0770, its directory created 0755 if missing). Logs what failed. */
int server_new(ServerConfig *cfg, Server **ret);

/* Starts both RPC servers, hooks them, the CA rotation timer, the hourly join-token
 * prune and the signal handlers into the sd-event loop, sends READY=1, and runs until
 * SIGTERM/SIGINT (then STOPPING=1). Returns 0 after a clean shutdown, or -errno. */
int server_run(Server *s);

/* The node API's TLS settings from the CA's current server identity (borrowed PEM
 * strings, valid until the next ca_tick()). */
int server_tls_config(Server *s, RpcTlsServerConfig *ret);

/* Shuts the RPC servers down (ending every open call), then frees everything.
 * Accepts NULL; returns NULL. */
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free)

/* `warden-server run ...`: parse, server_new, server_run, server_free. Returns the
 * process exit status (0 clean shutdown or help, 1 on any error, printed as
 * "Error: ..." on stderr or logged). */
int server_main(int argc, char **argv);

/* The authoritative TTL for an entry's SVID: the entry's own value if set, capped at
 * the server default (an entry never raises the cap). */
int64_t server_x509_ttl(const Server *s, int32_t entry_ttl);
int64_t server_jwt_ttl(const Server *s, int32_t entry_ttl);

/* Tell every connected agent that something changed (entries, bans, bundle). Called by
 * the admin API after each committed change and by the CA timer after rotation. */
void server_entries_changed(Server *s);
void server_bundle_changed(Server *s);
void server_agent_changed(Server *s, const char *agent_id); /* banned or evicted */
