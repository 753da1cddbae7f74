/* SPDX-License-Identifier: Apache-2.0 */
/* The issuing server's state: building it (datastore, CA, RPC servers), TTL policy,
 * change notifications, and tearing it down. The event loop is in server_run.c. */
#define _GNU_SOURCE

#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_api.h"
#include "cleanup.h"
#include "daemon.h"
#include "lockfile.h"
#include "log.h"
#include "mkdir.h"
#include "node_api.h"

int64_t server_x509_ttl(const Server *s, int32_t entry_ttl) {
        int64_t cap = s->cfg.default_x509_ttl;

        return entry_ttl > 0 && entry_ttl < cap ? entry_ttl : cap;
}

int64_t server_jwt_ttl(const Server *s, int32_t entry_ttl) {
        int64_t cap = s->cfg.default_jwt_ttl;

        return entry_ttl > 0 && entry_ttl < cap ? entry_ttl : cap;
}

int server_sign_x509_svid(Server *s,
                          const char *kind,
                          EVP_PKEY *public_key,
                          const char *spiffe_id,
                          const char *const *dns_names,
                          size_t n_dns_names,
                          int64_t ttl,
                          time_t now,
                          STACK_OF(X509) * *ret_chain) {
        double t0 = metrics_now();
        int r;

        r = ca_sign_x509_svid(s->ca, public_key, spiffe_id, dns_names, n_dns_names, ttl, now,
                              ret_chain);
        if (r >= 0) {
                (void) metrics_histogram_observe_since(s->metrics.signing_seconds,
                                                       METRICS_LABELS(kind), t0);
                (void) metrics_counter_inc(s->metrics.signings, METRICS_LABELS(kind));
        }
        return r;
}

int server_mint_jwt_svid(Server *s,
                         const char *spiffe_id,
                         const char *const *audiences,
                         size_t n_audiences,
                         int64_t ttl,
                         time_t now,
                         char **ret_token,
                         int64_t *ret_expires_at) {
        double t0 = metrics_now();
        int r;

        r = ca_mint_jwt_svid(s->ca, spiffe_id, audiences, n_audiences, ttl, now, ret_token,
                             ret_expires_at);
        if (r >= 0) {
                (void) metrics_histogram_observe_since(s->metrics.signing_seconds,
                                                       METRICS_LABELS(METRICS_KIND_JWT_SVID), t0);
                (void) metrics_counter_inc(s->metrics.signings,
                                           METRICS_LABELS(METRICS_KIND_JWT_SVID));
        }
        return r;
}

void server_entries_changed(Server *s) {
        server_changes_kick(s);
}

void server_bundle_changed(Server *s) {
        if (s && s->node) {
                node_api_bundle_changed(s->node);
                node_api_flush(s->node);
        }
}

void server_agent_changed(Server *s, const char *agent_id) {
        (void) agent_id; /* the datastore's event names it */
        server_changes_kick(s);
}

static int server_open_datastore(Server *s) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/" SERVER_DATASTORE_FILE, s->cfg.data_dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        s->created_datastore = access(path, F_OK) < 0 && errno == ENOENT;
        r = ds_open_sqlite_with(path,
                                &(DsSqliteOptions){
                                        .cache_bytes = s->cfg.ds_cache_mib > 0
                                                               ? s->cfg.ds_cache_mib * 1024 * 1024
                                                               : DS_CACHE_BYTES_DEFAULT,
                                        .mmap_bytes = s->cfg.ds_mmap_mib * 1024 * 1024,
                                },
                                &s->ds);
        if (r == -ENOTSUP)
                return log_error_errno(r, "Datastore %s was written by a newer version", path);
        if (r == -EBADMSG)
                return log_error_errno(r, "Datastore %s is corrupt or not a database", path);
        if (r < 0)
                return log_error_errno(r, "Failed to open datastore %s: %m", path);
        ds_set_metrics(s->ds, s->metrics.datastore_seconds);
        return 0;
}

static int server_open_ca(Server *s) {
        CaConfig cc = {
                .trust_domain = s->cfg.trust_domain,
                .data_dir = s->cfg.data_dir,
                .key_type = s->cfg.ca_key_type,
                .ca_ttl = s->cfg.ca_ttl,
                .upstream_cert_path = s->cfg.upstream_cert,
                .upstream_key_path = s->cfg.upstream_key,
        };
        int r;

        r = server_datadir_check_ca(s);
        if (r < 0)
                return r;
        r = ca_new(&cc, time(NULL), &s->ca);
        if (r < 0)
                return log_error_errno(r, "Failed to load or create the CA in %s/ca: %m",
                                       s->cfg.data_dir);
        return server_datadir_record_ca(s);
}

/* Fills the node API's TLS settings from the CA's current server identity. */
int server_tls_config(Server *s, RpcTlsServerConfig *ret) {
        const char *chain, *key, *roots;
        int r;

        r = ca_server_tls(s->ca, &chain, &key, &roots);
        if (r < 0)
                return r;
        *ret = (RpcTlsServerConfig){
                .roots_pem = roots,
                .cert_chain_pem = chain,
                .key_pem = key,
                .client_cert = RPC_CLIENT_CERT_OPTIONAL,
        };
        return 0;
}

static int node_address(const Server *s, char **ret) {
        bool v6 = strchr(s->cfg.bind_address, ':');

        if (asprintf(ret, v6 ? "[%s]:%u" : "%s:%u", s->cfg.bind_address, (unsigned) s->cfg.port) <
            0)
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

static int node_listen_error(int r, const char *addr) {
        if (r == -EADDRINUSE)
                return log_error_errno(r,
                                       "Cannot listen on %s: address in use (another server? "
                                       "pick another -serverPort)",
                                       addr);
        return log_error_errno(r, "Failed to listen on %s: %m", addr);
}

/* Before anything persistent exists: is the node API's port free? (Port 0 always is.) */
static int server_check_node_port(Server *s) {
        _cleanup_free_ char *addr = NULL;
        int r;

        if (s->cfg.port == 0)
                return 0;
        r = node_address(s, &addr);
        if (r < 0)
                return r;
        r = rpc_tcp_check_bind(addr);
        return r < 0 ? node_listen_error(r, addr) : 0;
}

/* Relay thread: a node API connection refused or closed by a limit. */
static void on_node_tcp_event(RpcTcpEvent ev, const char *source, void *userdata) {
        static const char *const limits[_RPC_TCP_EVENT_MAX] = {
                [RPC_TCP_REFUSED_SOURCE] = METRICS_LIMIT_UNAUTH_PER_SOURCE,
                [RPC_TCP_EVICTED] = METRICS_LIMIT_CONNECTIONS_EVICTED,
                [RPC_TCP_HANDSHAKE_TIMEOUT] = METRICS_LIMIT_HANDSHAKE_TIMEOUT,
                [RPC_TCP_ACCEPT_BACKOFF] = METRICS_LIMIT_ACCEPT_BACKOFF,
        };
        Server *s = userdata;

        (void) source;
        if ((unsigned) ev < _RPC_TCP_EVENT_MAX)
                (void) metrics_counter_inc(s->metrics.node_api_limited, METRICS_LABELS(limits[ev]));
}

/* Connection limits, and gRPC's internal socket for the relay in the data dir (0700)
 * when the path fits in sun_path, else an abstract one. */
static int server_node_limits(Server *s) {
        _cleanup_free_ char *relay = NULL;
        int r;

        r = rpc_server_set_tcp_limits(
                s->node_rpc,
                &(RpcTcpLimits){
                        /* 0 only in a config not made by the parser */
                        .max_connections =
                                s->cfg.node_max_connections ?: RPC_DEFAULT_TCP_MAX_CONNECTIONS,
                        .max_unauth_per_source = s->cfg.node_max_unauth_per_source,
                        .handshake_timeout_ms = (unsigned) s->cfg.node_handshake_timeout * 1000,
                });
        if (r < 0)
                return log_error_errno(r, "Failed to set the node API limits: %m");
        rpc_server_set_tcp_observer(s->node_rpc, on_node_tcp_event, s);
        if (asprintf(&relay, "%s/node-api.sock", s->cfg.data_dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = rpc_server_set_relay_socket(s->node_rpc, relay);
        if (r == -ENAMETOOLONG || r == -EINVAL)
                log_debug("Cannot bind %s, using an abstract socket for the node API relay", relay);
        else if (r < 0)
                return log_error_errno(r, "Failed to set the relay socket %s: %m", relay);
        return 0;
}

static int server_setup_node_rpc(Server *s) {
        _cleanup_free_ char *addr = NULL;
        RpcTlsServerConfig tls;
        int r;

        r = rpc_server_new(&s->node_rpc);
        if (r < 0)
                return log_error_errno(r, "Failed to create the node API server: %m");
        r = server_node_limits(s);
        if (r < 0)
                return r;
        r = node_api_new(s, &s->node);
        if (r >= 0)
                r = node_api_register(s->node, s->node_rpc);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the node API: %m");
        r = server_tls_config(s, &tls);
        if (r < 0)
                return log_error_errno(r, "Failed to get the server's TLS identity: %m");
        r = node_address(s, &addr);
        if (r < 0)
                return r;
        r = rpc_server_listen_tls(s->node_rpc, addr, &tls, &s->node_port);
        return r < 0 ? node_listen_error(r, addr) : 0;
}

static int server_setup_admin_rpc(Server *s) {
        _cleanup_free_ char *dir = strdup(s->cfg.socket_path);
        char *slash;
        int r;

        if (!dir)
                return log_error_errno(-ENOMEM, "Out of memory");
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                r = mkdir_p(dir, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create socket directory %s: %m", dir);
        }
        r = rpc_server_new(&s->admin_rpc);
        if (r < 0)
                return log_error_errno(r, "Failed to create the admin API server: %m");
        r = admin_api_register(s, s->admin_rpc);
        if (r < 0)
                return log_error_errno(r, "Failed to register the admin API: %m");
        r = rpc_server_listen_unix(s->admin_rpc, s->cfg.socket_path, 0770);
        if (r == -EADDRINUSE)
                return log_error_errno(r, "Admin socket %s is in use by another server",
                                       s->cfg.socket_path);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", s->cfg.socket_path);
        return 0;
}

void server_set_ready(Server *s, ServerReadyState state) {
        __atomic_store_n(&s->ready, (int) state, __ATOMIC_RELEASE);
}

/* /ready, on the HTTP thread: reads nothing but the atomic state. */
static bool server_is_ready(void *userdata, const char **ret_reason) {
        Server *s = userdata;

        switch (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) {
        case SERVER_READY:
                return true;
        case SERVER_STOPPING:
                *ret_reason = "shutting down";
                return false;
        default:
                *ret_reason = "starting";
                return false;
        }
}

static int server_setup_metrics(Server *s) {
        int r;

        r = metrics_registry_new(&s->registry);
        if (r >= 0)
                r = metrics_names_register_server(s->registry, &s->metrics);
        if (r < 0)
                return log_error_errno(r, "Failed to set up metrics: %m");
        return 0;
}

static int server_start_health(Server *s) {
        const HealthHttpConfig hc = {
                .address = s->cfg.health_address,
                .metrics = s->registry,
                .ready = server_is_ready,
                .userdata = s,
        };
        const char *reason = NULL;
        int r;

        if (!s->cfg.health_address)
                return 0;
        r = health_http_start(&hc, &s->health, &reason);
        if (r < 0 && reason)
                return log_error_errno(r, "Failed to serve the health endpoints on %s: %s",
                                       s->cfg.health_address, reason);
        if (r < 0)
                return log_error_errno(r, "Failed to serve the health endpoints on %s: %m",
                                       s->cfg.health_address);
        log_info("Health endpoints /live, /ready, /metrics listening on %s (port %u)",
                 s->cfg.health_address, (unsigned) health_http_port(s->health));
        return 0;
}

int server_new(ServerConfig *cfg, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        r = daemon_block_signals();
        if (r < 0)
                return log_error_errno(r, "Failed to block signals: %m");
        daemon_raise_nofile_limit();
        s = calloc(1, sizeof(Server));
        if (!s)
                return log_error_errno(-ENOMEM, "Out of memory");
        s->cfg = *cfg;
        *cfg = (ServerConfig){};
        s->lock_fd = -EBADF;
        s->own_uid = getuid();
        s->started_at = time(NULL);
        s->launch_log_level = log_get_max_level();
        r = sd_event_default(&s->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        /* Everything that can fail without leaving anything behind comes first: the data
         * dir's owner, mode and lock, the admin socket, the health port, the node port. */
        r = server_setup_metrics(s);
        if (r >= 0)
                r = server_datadir_open(s);
        if (r >= 0)
                r = server_setup_admin_rpc(s);
        if (r >= 0)
                r = server_start_health(s);
        if (r >= 0)
                r = server_check_node_port(s);
        if (r < 0)
                return r;
        /* Then the persistent state, removed again if the start fails after all. */
        r = server_datadir_create(s);
        if (r >= 0)
                r = server_open_datastore(s);
        if (r >= 0)
                r = server_changes_start(s);
        if (r >= 0)
                r = server_open_ca(s);
        if (r >= 0)
                r = server_setup_node_rpc(s);
        if (r < 0) {
                server_datadir_undo(s);
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        /* The HTTP thread reads the registry and s->ready: stop it before anything. */
        s->health = health_http_stop(s->health);
        /* Shut the RPC servers down first: their close callbacks still reach the node
         * API and the datastore. */
        if (s->node && !s->stopping)
                node_api_close_all(s->node);
        node_api_stop_signing(s->node);
        if (s->node_rpc)
                rpc_server_shutdown(s->node_rpc);
        if (s->admin_rpc)
                rpc_server_shutdown(s->admin_rpc);
        s->node = node_api_free(s->node);
        server_changes_stop(s);
        s->node_rpc = rpc_server_free(s->node_rpc);
        s->admin_rpc = rpc_server_free(s->admin_rpc);
        sd_event_source_disable_unref(s->node_io);
        sd_event_source_disable_unref(s->admin_io);
        sd_event_source_disable_unref(s->ca_timer);
        sd_event_source_disable_unref(s->prune_timer);
        daemon_remove_signals(s->signals);
        s->ca = ca_free(s->ca);
        s->ds = ds_close(s->ds);
        s->lock_fd = lockfile_release(s->lock_fd);
        free(s->created_dir);
        sd_event_unref(s->event);
        server_config_done(&s->cfg);
        /* Last: the node API, the datastore and the signing paths update it. */
        s->registry = metrics_registry_free(s->registry);
        free(s);
        return NULL;
}
