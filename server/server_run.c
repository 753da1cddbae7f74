/* SPDX-License-Identifier: Apache-2.0 */
/* The server's event loop: RPC dispatch, CA rotation timer, pruning of join tokens
 * and change events, signals and sd_notify. */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "daemon.h"
#include "log.h"
#include "node_api.h"
#include "server.h"
#include "server_config.h"

#define USEC_PER_SEC 1000000ULL
#define PRUNE_INTERVAL_USEC (3600ULL * USEC_PER_SEC)

static int on_rpc(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        int r = rpc_server_dispatch(userdata);

        if (r < 0)
                log_warning_errno(r, "RPC dispatch failed, ignoring: %m");
        return 0;
}

static int arm_ca_timer(Server *s) {
        time_t next = ca_next_tick(s->ca), now = time(NULL);
        uint64_t usec;

        if (!s->ca_timer)
                return -EINVAL;
        /* Never sooner than a second from now, so a CA that keeps asking for "now"
         * cannot make the loop spin. */
        if (next <= now)
                next = now + 1;
        usec = (uint64_t) next * USEC_PER_SEC;
        (void) sd_event_source_set_time(s->ca_timer, usec);
        return sd_event_source_set_enabled(s->ca_timer, SD_EVENT_ONESHOT);
}

static int on_ca_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;
        RpcTlsServerConfig tls;
        bool changed = false;
        int r;

        r = ca_tick(s->ca, time(NULL), &changed);
        if (r < 0)
                log_error_errno(r, "CA rotation failed, retrying in 60s: %m");
        if (r >= 0 && changed) {
                char note[64];

                snprintf(note, sizeof(note), "CA rotated, bundle sequence %llu",
                         (unsigned long long) warden_bundle_sequence(ca_bundle(s->ca)));
                log_info("CA rotated: bundle sequence %llu",
                         (unsigned long long) warden_bundle_sequence(ca_bundle(s->ca)));
                server_notify_status(s, NULL, note);
                r = server_tls_config(s, &tls);
                if (r >= 0)
                        r = rpc_server_update_tls(s->node_rpc, &tls);
                if (r < 0)
                        log_error_errno(r, "Failed to reload the node API certificate: %m");
                server_bundle_changed(s);
        }
        if (r < 0) {
                (void) sd_event_source_set_time(src, (uint64_t) (time(NULL) + 60) * USEC_PER_SEC);
                return sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        }
        return arm_ca_timer(s);
}

static int on_prune_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        r = ds_prune_join_tokens(s->ds, time(NULL));
        if (r < 0)
                log_warning_errno(r, "Failed to prune expired join tokens, ignoring: %m");
        else if (r > 0)
                log_info("Pruned %d expired join tokens", r);
        /* Change events are a tail for readers seconds behind, not a history (ds.h). */
        r = ds_prune_events(s->ds, (int64_t) time(NULL) - DS_EVENTS_KEEP_SECONDS);
        if (r < 0)
                log_warning_errno(r, "Failed to prune old change events, ignoring: %m");
        else if (r > 0)
                log_debug("Pruned %d change events", r);
        (void) sd_event_source_set_time(src, usec + PRUNE_INTERVAL_USEC);
        return sd_event_source_set_enabled(src, SD_EVENT_ON);
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;

        if (si->ssi_signo == SIGHUP) {
                if (!s->stopping)
                        (void) server_reload(s);
                return 0;
        }
        if (s->stopping)
                return 0;
        s->stopping = true;
        server_set_ready(s, SERVER_STOPPING);
        log_info("Received %s, shutting down", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        if (s->node) {
                node_api_close_all(s->node);
                node_api_stop_signing(s->node);
        }
        return sd_event_exit(s->event, 0);
}

static int add_sources(Server *s) {
        uint64_t now;
        int r;

        r = sd_event_add_io(s->event, &s->node_io, rpc_server_event_fd(s->node_rpc), EPOLLIN,
                            on_rpc, s->node_rpc);
        if (r >= 0)
                r = sd_event_add_io(s->event, &s->admin_io, rpc_server_event_fd(s->admin_rpc),
                                    EPOLLIN, on_rpc, s->admin_rpc);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->ca_timer, CLOCK_REALTIME, 0, USEC_PER_SEC,
                                      on_ca_timer, s);
        if (r >= 0)
                r = arm_ca_timer(s);
        if (r >= 0)
                r = sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->prune_timer, CLOCK_MONOTONIC,
                                      now + PRUNE_INTERVAL_USEC, 60 * USEC_PER_SEC, on_prune_timer,
                                      s);
        if (r >= 0)
                r = server_changes_attach(s);
        if (r < 0)
                return r;
        return daemon_add_signals(s->event, s->signals, on_signal, s);
}

int server_run(Server *s) {
        RpcServerStats st;
        struct rlimit rl;
        int r;

        r = rpc_server_start(s->node_rpc);
        if (r < 0)
                return log_error_errno(r, "Failed to start the node API: %m");
        r = rpc_server_start(s->admin_rpc);
        if (r < 0)
                return log_error_errno(r, "Failed to start the admin API: %m");
        r = add_sources(s);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");

        rpc_server_get_stats(s->node_rpc, &st);
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                rl.rlim_cur = 0;
        log_info("Node API limits: %" PRIu64 " connections (open file limit %llu), %u "
                 "unauthenticated per address, handshake timeout %" PRId64
                 " s, %u attestations/s per address",
                 st.tcp_max_connections, (unsigned long long) rl.rlim_cur,
                 s->cfg.node_max_unauth_per_source, s->cfg.node_handshake_timeout,
                 s->cfg.attest_rate_per_source);
        log_info(strchr(s->cfg.bind_address, ':') ? "node API listening on [%s]:%d"
                                                  : "node API listening on %s:%d",
                 s->cfg.bind_address, s->node_port);
        log_info("admin API listening on %s", s->cfg.socket_path);
        log_info("Serving trust domain %s (data in %s)", s->cfg.trust_domain, s->cfg.data_dir);
        server_set_ready(s, SERVER_READY);
        server_notify_status(s, "READY=1\n", NULL);

        r = sd_event_loop(s->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        log_info("Server stopped");
        return 0;
}

/* `warden-server run`: parse → new → run → free. */
static int run(int argc, char **argv) {
        _cleanup_(server_freep) Server *s = NULL;
        _cleanup_free_ char *msg = NULL;
        ServerConfig cfg = {};
        int r;

        for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "-h") || streq(argv[i], "-help") || streq(argv[i], "--help")) {
                        printf("Usage: warden-server run [-config FILE] [flags]\n\n");
                        break;
                }
        r = server_config_parse(argc, argv, &cfg, &msg);
        r = daemon_options_parsed(r, msg, cfg.log_level);
        if (r <= 0)
                return r;
        if (cfg.default_x509_ttl > cfg.ca_ttl)
                log_warning("-defaultX509SVIDTTL is longer than -caTTL: SVIDs will be cut "
                            "short at their CA's expiry");
        r = server_new(&cfg, &s);
        server_config_done(&cfg);
        if (r < 0)
                return r;
        s->argc = argc;
        s->argv = argv;
        return server_run(s);
}

DEFINE_DAEMON_MAIN_FUNCTION(server_main, "server", run)
