/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The issuing server process: configuration and the state its main thread owns.
 *
 * One sd-event loop on the main thread owns everything here: the datastore, the CA,
 * both RPC servers (their handlers run on this thread through rpc_server_dispatch),
 * the node API's open Sync streams and the timers (CA rotation, token pruning). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include <warden/x509.h>

#include "ca.h"
#include "cleanup.h"
#include "daemon.h"
#include "ds.h"
#include "health_http.h"
#include "metrics.h"
#include "metrics_names.h"
#include "rpc.h"

typedef struct NodeApi NodeApi;
typedef struct EntryIndex EntryIndex;

#define WARDEN_SERVER_VERSION "0.1.0"
#define SERVER_DATASTORE_FILE "datastore.sqlite3"

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
        char *health_address; /* -healthAddress; NULL = no HTTP endpoints */
        int64_t min_x509_ttl; /* 30s: floor of entry and default X509-SVID TTLs */
        int64_t min_jwt_ttl;  /* 10s */
        bool force_new_ca;    /* -forceNewCA: a new CA although the datastore records one */
        int64_t ds_cache_mib; /* -datastoreCacheMiB: SQLite page cache (64; 0 = that) */
        int64_t ds_mmap_mib;  /* -datastoreMmapMiB: memory-mapped reads (0 = off) */
        unsigned node_max_connections;       /* -nodeMaxConnections, 8192 */
        unsigned node_max_unauth_per_source; /* -nodeMaxUnauthPerSource, 64; 0 = no cap */
        int64_t node_handshake_timeout;      /* -nodeHandshakeTimeout, 10 s; 0 = never */
        unsigned attest_rate_per_source;     /* -attestRatePerSource, 10/s; 0 = no limit */
        unsigned max_entries_per_agent;      /* -maxEntriesPerAgent, 100000 */
        unsigned signing_threads; /* -signingThreads (-1 = online CPUs); 0 = main thread */
} ServerConfig;

/* What /ready reports (Server.ready, read by the HTTP thread). */
typedef enum ServerReadyState {
        SERVER_STARTING,
        SERVER_READY,
        SERVER_STOPPING,
} ServerReadyState;

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
        /* The in-memory entry index and the change fan-out (server_changes.c). */
        EntryIndex *index;
        uint64_t applied_event; /* the last datastore event applied to index */
        sd_event_source *changes_defer, *expiry_timer;
        sd_event_source *signals[DAEMON_N_SIGNALS];
        bool stopping;
        /* The `run` arguments (borrowed from main), re-parsed on SIGHUP; argc 0: no
         * reload possible. */
        int argc;
        char **argv;
        /* Metrics (always collected) and the optional HTTP endpoints serving them. The
         * HTTP thread reads `registry` and `ready` only. */
        MetricsRegistry *registry;
        ServerMetrics metrics; /* all NULL without a registry: updates are no-ops */
        HealthHttp *health;
        int ready; /* ServerReadyState, atomic (__atomic_* builtins) */
        /* The data dir (server_datadir.c): its lock, and what this start created, removed
         * again when the start fails. */
        int lock_fd;
        char *created_dir; /* topmost directory created for -dataDir, or NULL */
        bool created_datastore, created_ca;
        int launch_log_level; /* the level from the configuration: `logger reset` */
} Server;

/* Frees the strings of c and zeroes it (server_config.c). */
void server_config_done(ServerConfig *c);

/* Creates the server state from cfg, which it takes over (*cfg is zeroed on success):
 * blocks SIGTERM/SIGINT/SIGHUP (before any gRPC thread exists), creates the metrics
 * registry; then, before creating anything persistent, checks an existing dataDir
 * (owner, mode) and locks it, listens on the admin socket (socketPath, mode 0770, its
 * directory created 0755 if missing), starts the HTTP endpoints with -healthAddress
 * (/ready answers 503 until server_run() is serving) and checks that serverPort is
 * free; then creates a missing dataDir (0700) and locks it, opens
 * <dataDir>/datastore.sqlite3 (timed in the datastore_seconds metric), loads or creates
 * the CA (never a new one over a datastore that records one, unless -forceNewCA) and
 * listens on bindAddress:serverPort with TLS (no shared port). When a step fails,
 * what this start created is removed again. Logs what failed. */
int server_new(ServerConfig *cfg, Server **ret);

/* Starts both RPC servers, hooks them, the CA rotation timer, the hourly join-token
 * prune, the signal handlers and the systemd watchdog (WATCHDOG=1 at half of
 * $WATCHDOG_USEC when set) into the sd-event loop, marks the server ready (/ready)
 * and sends READY=1 with a STATUS= line, and runs until SIGTERM/SIGINT (then not
 * ready, STOPPING=1). SIGHUP calls server_reload(). Returns 0 after a clean
 * shutdown, or -errno. */
int server_run(Server *s);

/* SIGHUP (server_reload.c): parses s->argv again (flags and the -config file) and
 * applies what is safe at run time: logLevel (WARDEN_LOG_LEVEL still wins; it becomes
 * the level `logger reset` goes back to), the default and minimum TTLs, adminUIDs and
 * x509popCA (the file is read again). Other options that differ
 * are logged at warning as "requires restart, ignoring". A config that does not parse
 * or validate, or an x509popCA file that cannot be read, is logged and the running
 * configuration is kept (all of it, or the old CA roots). Returns 0 when the new
 * configuration was applied, or the parse error. */
int server_reload(Server *s);

/* Sends "STATUS=Serving trust domain <td>: <n> entries, <m> agents" (with "; <note>"
 * appended when note is not NULL), prefixed by the sd_notify assignments in extra
 * ("READY=1\n", may be NULL). A no-op without $NOTIFY_SOCKET. */
void server_notify_status(Server *s, const char *extra, const char *note);

/* ---- server_datadir.c: the data directory at start ---- */

#define SERVER_LOCK_FILE "server.lock"

/* 0 when dir does not exist (*ret_exists false) or is a directory owned by uid and not
 * writable by group or others, and so is its ca/ subdirectory if there is one. Else
 * -ENOTDIR, -EPERM (owner, mode) or -errno of stat() with *reterr_message (malloc'd, one
 * line naming the path and what to do). */
int server_datadir_check(const char *dir, uid_t uid, bool *ret_exists, char **reterr_message);

/* First step of a start, before any socket or port: checks the data dir and, when it
 * exists, locks it (-EBUSY: another server holds it; logged with its pid). */
int server_datadir_open(Server *s);

/* After every socket and port was set up: creates the data dir if it was missing (0700,
 * remembering what was created) and locks it. */
int server_datadir_create(Server *s);

/* Before the CA is loaded: when <dataDir>/ca is missing but the datastore records a CA
 * (DS_META_CA_CREATED_AT, or any entry or agent), refuses (-EEXIST, logged) unless
 * -forceNewCA. Remembers whether this start creates the CA. */
int server_datadir_check_ca(Server *s);

/* After the CA was loaded or created: records DS_META_CA_CREATED_AT if missing. */
int server_datadir_record_ca(Server *s);

/* A start failed: closes the datastore and the CA and removes what this start created
 * (the data dir and its missing parents; else a new datastore file, a new ca/). The
 * lock is kept until server_free(). */
void server_datadir_undo(Server *s);

/* Readiness for /ready: SERVER_READY once serving, until shutdown starts. */
void server_set_ready(Server *s, ServerReadyState state);

/* The node API's TLS settings from the CA's current server identity (borrowed PEM
 * strings, valid until the next ca_tick()). */
int server_tls_config(Server *s, RpcTlsServerConfig *ret);

/* Stops the HTTP endpoints, shuts the RPC servers down (ending every open call), then
 * frees everything, the metrics registry last. Accepts NULL; returns NULL. */
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free)

/* `warden-server run ...` (DEFINE_DAEMON_MAIN_FUNCTION): logs as "server", parses,
 * server_new, server_run, server_free. Returns the process exit status (0 clean
 * shutdown or help, 1 on any error, printed as "Error: ..." on stderr or logged). */
int server_main(int argc, char **argv);

/* ca_sign_x509_svid() / ca_mint_jwt_svid() on s->ca, counted in the signings and
 * signing_seconds metrics with label kind (METRICS_KIND_*) when they succeed. */
int server_sign_x509_svid(Server *s,
                          const char *kind,
                          EVP_PKEY *public_key,
                          const char *spiffe_id,
                          const char *const *dns_names,
                          size_t n_dns_names,
                          int64_t ttl,
                          time_t now,
                          STACK_OF(X509) * *ret_chain);
int server_mint_jwt_svid(Server *s,
                         const char *spiffe_id,
                         const char *const *audiences,
                         size_t n_audiences,
                         int64_t ttl,
                         time_t now,
                         char **ret_token,
                         int64_t *ret_expires_at);

/* The authoritative TTL for an entry's SVID: the entry's own value if set, capped at
 * the server default (an entry never raises the cap). */
int64_t server_x509_ttl(const Server *s, int32_t entry_ttl);
int64_t server_jwt_ttl(const Server *s, int32_t entry_ttl);

/* Tell every connected agent that something changed (entries, bans, bundle). Called by
 * the admin API after each committed change and by the CA timer after rotation. */
/* server_changes.c: server_changes_start() loads the index (server_new), attach() hooks
 * the fan-out into the loop (server_run), kick() schedules one pass over the new
 * datastore events (every writer calls it, via server_entries_changed() & co),
 * apply() is that pass, stop() frees it all. */
int server_changes_start(Server *s);
int server_changes_attach(Server *s);
void server_changes_kick(Server *s);
int server_changes_apply(Server *s);
void server_changes_stop(Server *s);

void server_entries_changed(Server *s);
void server_bundle_changed(Server *s);
void server_agent_changed(Server *s, const char *agent_id); /* banned or evicted */
