/* SPDX-License-Identifier: Apache-2.0 */
/* The agent process: wiring of config, node identity, link thread, manager, Workload
 * API and the event loop (signals, sd_notify, watchdog). */
#define _GNU_SOURCE

#include "agent.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent_internal.h"
#include "daemon.h"
#include "log.h"
#include "node_identity.h"
#include "parse.h"
#include "rpc_client.h"

/* ---- the manager's backend: the node API, called on the worker thread ---- */

static int backend_batch_sign(void *userdata,
                              const ManagerSignRequest *requests,
                              size_t n,
                              ManagerSignResult *results) {
        ServerConn *conn = userdata;
        RpcChannel *ch;
        int r;

        r = server_conn_channel(conn, true, &ch);
        if (r < 0)
                return -EAGAIN;
        r = server_batch_sign(ch, requests, n, results);
        if (r == -EAGAIN || r == -ETIMEDOUT)
                server_conn_reset(conn);
        return r;
}

static int backend_mint_jwt(void *userdata,
                            const char *entry_id,
                            const char *const *audiences,
                            size_t n_audiences,
                            char **ret_token,
                            int64_t *ret_expires_at,
                            int64_t *ret_issued_at) {
        ServerConn *conn = userdata;
        RpcChannel *ch;
        int r;

        r = server_conn_channel(conn, true, &ch);
        if (r < 0)
                return -EAGAIN;
        r = server_new_jwt(ch, entry_id, audiences, n_audiences, ret_token, ret_expires_at,
                           ret_issued_at);
        if (r == -EAGAIN || r == -ETIMEDOUT)
                server_conn_reset(conn);
        return r;
}

/* ---- Workload API source ---- */

static AgentSnapshot *source_snapshot(void *userdata) {
        return manager_snapshot(userdata);
}

static int source_fetch_jwt(void *userdata,
                            uid_t uid,
                            const CachedSvid *svid,
                            const char *const *audiences,
                            size_t n_audiences,
                            ManagerJwtCallback done,
                            void *done_userdata) {
        return manager_fetch_jwt_svid(userdata, uid, svid, audiences, n_audiences, done,
                                      done_userdata);
}

static void on_snapshot(AgentSnapshot *snapshot, void *userdata) {
        Agent *a = userdata;

        if (a->wapi)
                workload_api_snapshot_changed(a->wapi);
        agent_notify_status(a, NULL);
}

/* ---- the link's events ---- */

static void on_connected(Agent *a) {
        if (a->ever_connected)
                (void) metrics_counter_inc(a->metrics.sync_reconnects, NULL);
        log_info("Connected to the server, sync stream open server=%s agent_id=%s",
                 a->cfg.server_target, strna(a->agent_id));
        a->connected = a->ever_connected = true;
}

static void on_disconnected(Agent *a, const LinkEvent *ev) {
        const char *why = ev->message ? ev->message : strerror(ev->error < 0 ? -ev->error : EIO);

        if (a->connected)
                log_warning("Sync stream lost, serving from cache; retrying server=%s error=%s",
                            a->cfg.server_target, why);
        else if (!a->ever_connected)
                log_warning("Server unreachable; retrying server=%s error=%s", a->cfg.server_target,
                            why);
        a->connected = false;
}

static void link_event(const LinkEvent *ev, void *userdata) {
        Agent *a = userdata;
        int r;

        switch (ev->type) {
        case LINK_EVENT_ATTESTED:
        case LINK_EVENT_RENEWED:
                free(a->agent_id);
                a->agent_id = ev->message ? strdup(ev->message) : NULL;
                agent_set_ready(a, AGENT_READY_ATTESTED);
                break;
        case LINK_EVENT_CONNECTED:
                on_connected(a);
                break;
        case LINK_EVENT_SYNC:
                r = manager_apply_sync(a->manager, ev->sync);
                if (r < 0)
                        log_warning_errno(r, "Failed to apply a Sync message, ignoring: %m");
                else
                        agent_set_ready(a, AGENT_READY_SYNCED);
                break;
        case LINK_EVENT_DISCONNECTED:
                on_disconnected(a, ev);
                break;
        case LINK_EVENT_FATAL:
                log_error("Cannot continue: %s", strna(ev->message));
                a->exit_error = ev->error < 0 ? ev->error : -EPERM;
                (void) sd_event_exit(a->event, 1);
                break;
        }
        agent_notify_status(a, NULL);
}

static int on_link(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Agent *a = userdata;

        link_dispatch(a->link);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;

        if (si->ssi_signo == SIGHUP) {
                if (!a->stopping)
                        (void) agent_reload(a);
                return 0;
        }
        if (a->stopping)
                return 0;
        a->stopping = true;
        agent_set_ready(a, AGENT_READY_STOPPING);
        log_info("Received %s, shutting down", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        return sd_event_exit(a->event, 0);
}

/* ---- setup ---- */

/* The persisted identity, or NULL when the link must attest first. */
static int load_identity(Agent *a, NodeIdentity **ret) {
        bool have_method = a->cfg.join_token || a->cfg.x509pop_cert;
        const char *reason = NULL;
        NodeIdentity *id = NULL;
        int r;

        *ret = NULL;
        r = node_identity_load(a->cfg.data_dir, a->cfg.trust_domain, a->bootstrap, &id, &reason);
        if (r == -ENOKEY)
                return log_error_errno(r,
                                       "A node SVID is in %s but no bundle to trust the server "
                                       "with: give -trustBundle",
                                       a->cfg.data_dir);
        if (r < 0 && r != -ENOENT) {
                if (!have_method)
                        return log_error_errno(r,
                                               "Cannot use the node SVID in %s (%s) and no join "
                                               "token or x509pop is configured",
                                               a->cfg.data_dir, strna(reason));
                log_warning_errno(r, "Ignoring the node SVID in %s (%s): %m", a->cfg.data_dir,
                                  strna(reason));
        }
        if (r == -ENOENT && !have_method)
                return log_error_errno(r,
                                       "No node SVID in %s: give -joinToken, -joinTokenFile or "
                                       "-x509popCert/-x509popKey to attest this node",
                                       a->cfg.data_dir);
        if (id && node_identity_expired(id, time(NULL))) {
                if (!have_method) {
                        node_identity_free(id);
                        return log_error_errno(-EKEYEXPIRED,
                                               "The node SVID in %s has expired "
                                               "and no join token or x509pop is "
                                               "configured to attest again",
                                               a->cfg.data_dir);
                }
                log_info("The node SVID in %s has expired, attesting again", a->cfg.data_dir);
        } else if (id)
                log_info("Using the node SVID of %s from %s (valid until %s)", id->spiffe_id,
                         a->cfg.data_dir, FORMAT_TIMESTAMP(id->not_after));
        if (!id && !a->bootstrap)
                return log_error_errno(-ENOKEY, "-trustBundle is required to attest this node "
                                                "(no bundle in the data directory)");
        *ret = id;
        return 0;
}

static int setup_link(Agent *a) {
        _cleanup_free_ char *source = NULL;
        NodeIdentity *id = NULL;
        LinkConfig lc = {
                .trust_domain = a->cfg.trust_domain,
                .data_dir = a->cfg.data_dir,
                .attest =
                        {
                                .trust_domain = a->cfg.trust_domain,
                                .join_token = a->cfg.join_token,
                                .x509pop_cert = a->cfg.x509pop_cert,
                                .x509pop_key = a->cfg.x509pop_key,
                        },
                .bootstrap = a->bootstrap,
        };
        int r;

        if (a->cfg.trust_bundle)
                r = asprintf(&source, "-trustBundle %s", a->cfg.trust_bundle);
        else
                r = asprintf(&source, "%s/" NODE_IDENTITY_BUNDLE_FILE, a->cfg.data_dir);
        if (r < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        lc.bootstrap_source = source;
        r = load_identity(a, &id);
        if (r < 0)
                return r;
        if (id) {
                a->agent_id = strdup(id->spiffe_id);
                if (!a->agent_id) {
                        node_identity_free(id);
                        return log_error_errno(-ENOMEM, "Out of memory");
                }
                if (!node_identity_expired(id, time(NULL)))
                        agent_set_ready(a, AGENT_READY_ATTESTED);
        }
        r = link_new(&lc, id, a->creds, link_event, a, &a->link);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the server link: %m");
        return 0;
}

static int setup_manager(Agent *a) {
        ManagerConfig mc = {
                .trust_domain = a->cfg.trust_domain,
                .key_type = a->cfg.workload_key_type,
                .jwt_mint_rate = a->cfg.jwt_mint_rate > 0 ? (double) a->cfg.jwt_mint_rate : -1,
                .max_entries = a->cfg.max_entries,
                .metrics = &a->metrics,
        };
        ManagerBackend be = {
                .batch_sign = backend_batch_sign,
                .mint_jwt = backend_mint_jwt,
                .userdata = &a->worker_conn,
        };
        int r;

        a->worker_conn.creds = a->creds;
        r = manager_new(&mc, &be, a->event, &a->manager);
        if (r < 0)
                return log_error_errno(r, "Failed to create the manager: %m");
        manager_set_snapshot_callback(a->manager, on_snapshot, a);
        return 0;
}

static int setup_workload_api(Agent *a) {
        WorkloadApiSource src = {
                .snapshot = source_snapshot,
                .fetch_jwt_svid = source_fetch_jwt,
                .userdata = a->manager,
        };
        WorkloadApiConfig wc = {
                .socket_path = a->cfg.socket_path,
                .listen_fd = -1,
                .limits =
                        {
                                .max_connections = a->cfg.max_connections,
                                .max_connections_per_uid = a->cfg.max_connections_per_uid,
                                .max_calls_per_uid = a->cfg.max_calls_per_uid,
                                .idle_timeout_ms = (unsigned) (a->cfg.idle_timeout_sec * 1000),
                        },
                .no_idle_timeout = a->cfg.idle_timeout_sec == 0,
                .jwt_skew_seconds = a->cfg.jwt_clock_skew_sec,
                .jwt_expiry_leeway_seconds = a->cfg.jwt_expiry_leeway_sec,
                .metrics = &a->metrics,
        };
        int r;

        r = sd_listen_fds(true);
        if (r < 0)
                return log_error_errno(r, "Failed to read the sockets passed by systemd: %m");
        if (r > 1)
                return log_error_errno(-EINVAL, "Got %d sockets from systemd, expected one", r);
        if (r == 1) {
                wc.listen_fd = a->listen_fd = SD_LISTEN_FDS_START;
                log_info("Using the Workload API socket passed by systemd");
        }
        r = attestor_new(NULL, &a->attestor);
        if (r < 0)
                return log_error_errno(r, "Failed to create the workload attestor: %m");
        r = workload_api_new(&wc, &src, a->attestor, &a->wapi);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Workload API on %s: %m",
                                       a->cfg.socket_path);
        return 0;
}

/* agent_new() after the allocation. What can fail without touching the disk comes first;
 * on failure the caller takes back what this start created (agent_release_start()). */
static int agent_setup(Agent *a) {
        int r;

        r = sd_event_default(&a->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        r = agent_setup_metrics(a);
        if (r < 0)
                return r;
        if (a->cfg.trust_bundle) {
                r = node_identity_bundle_from_pem_file(a->cfg.trust_bundle, a->cfg.trust_domain,
                                                       &a->bootstrap);
                if (r < 0)
                        return log_error_errno(r, "Failed to read -trustBundle %s: %m",
                                               a->cfg.trust_bundle);
        }
        /* The lock before anything else that can fail: a second agent on this data dir
         * (with the same -healthAddress, say) must hear about the first one. */
        r = agent_take_data_dir(a);
        if (r < 0)
                return r;
        r = agent_start_health(a);
        if (r < 0)
                return r;
        if (!a->bootstrap) {
                /* No -trustBundle: the bundle kept from the last run, if any. */
                r = node_identity_bundle_load(a->cfg.data_dir, a->cfg.trust_domain, NULL,
                                              &a->bootstrap, NULL);
                if (r < 0 && r != -ENOKEY)
                        log_warning_errno(r, "Ignoring %s/" NODE_IDENTITY_BUNDLE_FILE ": %m",
                                          a->cfg.data_dir);
        }
        r = server_creds_new(a->cfg.server_target, a->cfg.trust_domain, &a->creds);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the server credentials: %m");
        r = setup_link(a);
        if (r >= 0)
                r = setup_manager(a);
        if (r >= 0)
                r = setup_workload_api(a);
        return r;
}

int agent_new(AgentConfig *cfg, Agent **ret) {
        _cleanup_(agent_freep) Agent *a = NULL;
        int r;

        r = daemon_block_signals();
        if (r < 0)
                return log_error_errno(r, "Failed to block signals: %m");
        daemon_raise_nofile_limit();
        a = calloc(1, sizeof(Agent));
        if (!a)
                return log_error_errno(-ENOMEM, "Out of memory");
        a->listen_fd = a->lock_fd = -EBADF;
        a->cfg = *cfg;
        *cfg = (AgentConfig){};
        r = agent_setup(a);
        if (r < 0) {
                a->undo_start = true;
                return r;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static int add_sources(Agent *a) {
        int r;

        r = sd_event_add_io(a->event, &a->link_io, link_event_fd(a->link), EPOLLIN, on_link, a);
        if (r < 0)
                return r;
        return daemon_add_signals(a->event, a->signals, on_signal, a);
}

int agent_run(Agent *a) {
        int r;

        r = manager_start(a->manager);
        if (r < 0)
                return log_error_errno(r, "Failed to start the manager: %m");
        if (a->listen_fd < 0) {
                r = agent_make_socket_dir(a);
                if (r < 0)
                        return r;
        }
        r = workload_api_start(a->wapi, a->event);
        if (r < 0)
                return log_error_errno(r, "Failed to start the Workload API on %s: %m",
                                       a->cfg.socket_path);
        /* The Workload API's CQ thread polls gRPC for the whole process from here on:
         * the link and the worker wait on their calls without polling (rpc_client.h). */
        rpc_client_set_polled_elsewhere(true);
        r = add_sources(a);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        r = link_start(a->link);
        if (r < 0)
                return log_error_errno(r, "Failed to start the server link: %m");
        log_info("Workload API listening on %s; server %s, trust domain %s",
                 a->listen_fd >= 0 ? "the socket passed by systemd" : a->cfg.socket_path,
                 a->cfg.server_target, a->cfg.trust_domain);
        agent_notify_status(a, "READY=1\n");
        r = sd_event_loop(a->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        if (a->exit_error < 0)
                return a->exit_error;
        log_info("Agent stopped");
        return 0;
}

Agent *agent_free(Agent *a) {
        RpcPoller *poller = NULL;

        if (!a)
                return NULL;
        /* The HTTP thread reads the registry and a->ready: stop it before anything.
         * Then the link (no more events; its calls still progress on the Workload
         * API's CQ thread), the Workload API (no more calls into the manager), the
         * manager (its worker answers pending JWT callbacks). A poller takes over from
         * the Workload API's CQ thread meanwhile, for calls of the worker in flight. */
        a->health = health_http_stop(a->health);
        a->link = link_free(a->link);
        if (a->wapi && rpc_poller_start(&poller) < 0)
                log_debug(
                        "No poller for the shutdown: calls in flight may wait for their deadline");
        if (a->wapi)
                workload_api_stop(a->wapi);
        a->manager = manager_free(a->manager);
        poller = rpc_poller_stop(poller);
        rpc_client_set_polled_elsewhere(false);
        a->wapi = workload_api_free(a->wapi);
        /* No thread writes to dataDir any more, the socket is gone. */
        agent_release_start(a, a->undo_start);
        a->attestor = attestor_free(a->attestor);
        server_conn_done(&a->worker_conn);
        a->creds = server_creds_free(a->creds);
        warden_bundle_unref(a->bootstrap);
        sd_event_source_disable_unref(a->link_io);
        daemon_remove_signals(a->signals);
        sd_event_unref(a->event);
        free(a->agent_id);
        free(a->last_status);
        agent_config_done(&a->cfg);
        /* Last: every thread above updated it. */
        a->registry = metrics_registry_free(a->registry);
        free(a);
        return NULL;
}

/* glibc gives each thread that allocates an arena of its own, up to 8 per CPU. The
 * agent's link and worker threads and gRPC's allocate in bursts (a Sync message of
 * every entry, a batch of keys and CSRs) among a few long-lived chunks, and freed
 * memory stays resident in their arenas: ~1 KB per authorized entry at 5000 entries
 * (scripts/bench-agent-memory.sh). With a few shared arenas it is reused instead;
 * small allocations still come from per-thread caches without locks, and the Workload
 * API's CPU per call showed no difference (scripts/bench.sh). MALLOC_ARENA_MAX or
 * GLIBC_TUNABLES in the environment win. Before any thread starts. */
#define AGENT_MALLOC_ARENAS 4
static void limit_arenas(void) {
        if (getenv("MALLOC_ARENA_MAX") || getenv("GLIBC_TUNABLES"))
                return;
        if (mallopt(M_ARENA_MAX, AGENT_MALLOC_ARENAS) != 1)
                log_debug("Could not limit malloc arenas, ignoring");
}

/* `warden-agent run`: parse → new → run → free. */
static int run(int argc, char **argv) {
        _cleanup_(agent_freep) Agent *a = NULL;
        _cleanup_free_ char *msg = NULL;
        AgentConfig cfg = {};
        int r;

        r = agent_config_parse(argc, argv, &cfg, &msg);
        r = daemon_options_parsed(r, msg, cfg.log_level);
        if (r <= 0)
                return r;
        limit_arenas();
        r = agent_new(&cfg, &a);
        agent_config_done(&cfg);
        if (r < 0)
                return r;
        a->argc = argc;
        a->argv = argv;
        r = agent_run(a);
        /* A failed run takes back what its start created (a node SVID it saved stays). */
        a->undo_start = r < 0;
        return r;
}

DEFINE_DAEMON_MAIN_FUNCTION(agent_main, "agent", run)
