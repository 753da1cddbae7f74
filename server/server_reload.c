/* SPDX-License-Identifier: Apache-2.0 */
/* SIGHUP: re-reading the configuration and applying what is safe at run time, and the
 * STATUS= lines sent to systemd. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "log.h"
#include "node_api.h"
#include "parse.h"
#include "server.h"
#include "server_config.h"

void server_notify_status(Server *s, const char *extra, const char *note) {
        AttestedAgent **agents = NULL;
        size_t n_agents = 0;
        int64_t n_entries = 0;

        if (!getenv("NOTIFY_SOCKET"))
                return;
        if (ds_count_entries(s->ds, &n_entries) < 0)
                n_entries = -1;
        if (ds_list_agents(s->ds, &agents, &n_agents) >= 0)
                attested_agent_array_free(agents, n_agents);
        (void) sd_notifyf(false, "%sSTATUS=Serving trust domain %s: %lld entries, %zu agents%s%s",
                          strempty(extra), s->cfg.trust_domain, (long long) n_entries, n_agents,
                          note ? "; " : "", strempty(note));
}

static void warn_restart_only(const ServerConfig *cur, const ServerConfig *next) {
        const char *names[16];
        size_t n = server_config_restart_changes(cur, next, names, ELEMENTSOF(names));

        for (size_t i = 0; i < n && i < ELEMENTSOF(names); i++)
                log_warning("Reload: -%s changed, requires restart, ignoring", names[i]);
}

static void log_ttl_change(const char *flag, int64_t old, int64_t now) {
        char a[DURATION_STRING_MAX], b[DURATION_STRING_MAX];

        if (old != now)
                log_info("Reload: -%s %s -> %s", flag, format_duration(old, a, sizeof(a)),
                         format_duration(now, b, sizeof(b)));
}

/* Swaps the x509pop CA in when its file reads; keeps the old one otherwise. */
static void apply_x509pop(Server *s, ServerConfig *next) {
        int r;

        /* Re-read even an unchanged path: the file itself may have changed. */
        if (!s->node || (!s->cfg.x509pop_ca && !next->x509pop_ca))
                return;
        r = node_api_set_x509pop_ca(s->node, next->x509pop_ca);
        if (r < 0) {
                log_error("Reload: keeping the previous x509pop CA certificates");
                return;
        }
        free(s->cfg.x509pop_ca);
        s->cfg.x509pop_ca = TAKE_PTR(next->x509pop_ca);
}

static void apply_admin_uids(Server *s, ServerConfig *next) {
        bool same = s->cfg.n_admin_uids == next->n_admin_uids &&
                    (next->n_admin_uids == 0 || memcmp(s->cfg.admin_uids, next->admin_uids,
                                                       next->n_admin_uids * sizeof(uid_t)) == 0);

        if (!same)
                log_info("Reload: -adminUIDs now lists %zu uid(s)", next->n_admin_uids);
        free(s->cfg.admin_uids);
        s->cfg.admin_uids = TAKE_PTR(next->admin_uids);
        s->cfg.n_admin_uids = next->n_admin_uids;
        next->n_admin_uids = 0;
}

static void apply_safe(Server *s, ServerConfig *next) {
        if (next->log_level != s->cfg.log_level)
                log_info("Reload: -logLevel %s", log_level_to_string(next->log_level));
        s->cfg.log_level = next->log_level;
        log_set_max_level(next->log_level);
        (void) log_parse_environment(); /* WARDEN_LOG_LEVEL still wins */
        s->launch_log_level = log_get_max_level();

        log_ttl_change("defaultX509SVIDTTL", s->cfg.default_x509_ttl, next->default_x509_ttl);
        log_ttl_change("defaultJWTSVIDTTL", s->cfg.default_jwt_ttl, next->default_jwt_ttl);
        s->cfg.default_x509_ttl = next->default_x509_ttl;
        s->cfg.default_jwt_ttl = next->default_jwt_ttl;
        log_ttl_change("minX509SVIDTTL", s->cfg.min_x509_ttl, next->min_x509_ttl);
        log_ttl_change("minJWTSVIDTTL", s->cfg.min_jwt_ttl, next->min_jwt_ttl);
        s->cfg.min_x509_ttl = next->min_x509_ttl;
        s->cfg.min_jwt_ttl = next->min_jwt_ttl;
        if (s->cfg.default_x509_ttl > s->cfg.ca_ttl)
                log_warning("-defaultX509SVIDTTL is longer than -caTTL: SVIDs will be cut "
                            "short at their CA's expiry");

        apply_admin_uids(s, next);
        apply_x509pop(s, next);
}

int server_reload(Server *s) {
        _cleanup_free_ char *msg = NULL;
        ServerConfig next = {};
        int r;

        if (!s || s->argc <= 0 || !s->argv)
                return -EINVAL;
        log_info("Received SIGHUP, reloading the configuration");
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                          (unsigned long long) (metrics_now() * 1e6));
        r = server_config_parse(s->argc, s->argv, &next, &msg);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s",
                          msg ? msg : strerror(-r));
                server_notify_status(s, "READY=1\n", "reload failed, running configuration kept");
                return r;
        }
        warn_restart_only(&s->cfg, &next);
        apply_safe(s, &next);
        server_config_done(&next);
        log_info("Configuration reloaded");
        server_notify_status(s, "READY=1\n", "configuration reloaded");
        return 0;
}
