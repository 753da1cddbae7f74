/* SPDX-License-Identifier: Apache-2.0 */
/* SIGHUP: re-reading the configuration and applying what is safe at run time.
 *
 * Safe: logLevel (an atomic in log.c) and workloadKeyType (read by the main thread
 * when it queues a signing). Not safe, hence restart-only: the server address, port
 * and trust bundle (the link thread owns the connection and its credentials), the
 * data directory (the node identity files), the socket path (bound or passed by
 * systemd), the attestation method (borrowed by the link thread, and used once), and
 * the health address (the HTTP thread's socket). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>

#include "agent_internal.h"
#include "cleanup.h"
#include "log.h"

static const char *level_name(int level) {
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
                return "error";
        case LOG_WARNING:
                return "warning";
        case LOG_NOTICE:
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

static void warn_restart_only(const AgentConfig *cur, const AgentConfig *next) {
        const char *names[16];
        size_t n = agent_config_restart_changes(cur, next, names, ELEMENTSOF(names));

        for (size_t i = 0; i < n && i < ELEMENTSOF(names); i++)
                log_warning("Reload: -%s changed, requires restart, ignoring", names[i]);
}

static void apply_safe(Agent *a, const AgentConfig *next) {
        int r;

        if (next->log_level != a->cfg.log_level)
                log_info("Reload: -logLevel %s", level_name(next->log_level));
        a->cfg.log_level = next->log_level;
        log_set_max_level(next->log_level);
        (void) log_parse_environment(); /* WARDEN_LOG_LEVEL still wins */
        health_http_set_launch_log_level(a->health, log_get_max_level()); /* PUT /logger?level= */

        if (next->workload_key_type == a->cfg.workload_key_type)
                return;
        r = manager_set_key_type(a->manager, next->workload_key_type);
        if (r < 0) {
                log_warning_errno(r, "Reload: cannot change -workloadKeyType, ignoring: %m");
                return;
        }
        log_info("Reload: -workloadKeyType %s (for SVIDs signed from now on)",
                 warden_key_type_to_string(next->workload_key_type));
        a->cfg.workload_key_type = next->workload_key_type;
}

int agent_reload(Agent *a) {
        _cleanup_free_ char *msg = NULL;
        AgentConfig next = {};
        int r;

        if (!a || a->argc <= 0 || !a->argv)
                return -EINVAL;
        log_info("Received SIGHUP, reloading the configuration");
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                          (unsigned long long) (metrics_now() * 1e6));
        r = agent_config_parse_flags(a->argc, a->argv, AGENT_CONFIG_SKIP_TOKEN_FILE, &next, &msg);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s",
                          msg ? msg : strerror(-r));
                agent_notify_status(a, "READY=1\n");
                return r;
        }
        warn_restart_only(&a->cfg, &next);
        apply_safe(a, &next);
        agent_config_done(&next);
        log_info("Configuration reloaded");
        agent_notify_status(a, "READY=1\n");
        return 0;
}
