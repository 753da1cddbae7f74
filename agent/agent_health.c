/* SPDX-License-Identifier: Apache-2.0 */
/* What the agent tells the outside about itself: the metrics registry, the HTTP
 * endpoints (/live, /ready, /metrics) and the STATUS= lines for systemd. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "agent_internal.h"
#include "log.h"

int agent_setup_metrics(Agent *a) {
        int r;

        r = metrics_registry_new(&a->registry);
        if (r >= 0)
                r = metrics_names_register_agent(a->registry, &a->metrics);
        if (r < 0)
                return log_error_errno(r, "Failed to set up metrics: %m");
        return 0;
}

void agent_set_ready(Agent *a, unsigned bit) {
        (void) __atomic_or_fetch(&a->ready, bit, __ATOMIC_ACQ_REL);
}

/* On the HTTP thread: reads nothing but the atomic bits. */
bool agent_is_ready(void *userdata, const char **ret_reason) {
        Agent *a = userdata;
        unsigned bits = __atomic_load_n(&a->ready, __ATOMIC_ACQUIRE);

        if (bits & AGENT_READY_STOPPING)
                *ret_reason = "shutting down";
        else if (!(bits & AGENT_READY_ATTESTED))
                *ret_reason = "not attested yet";
        else if (!(bits & AGENT_READY_SYNCED))
                *ret_reason = "no sync yet";
        else
                return true;
        return false;
}

int agent_start_health(Agent *a) {
        const HealthHttpConfig hc = {
                .address = a->cfg.health_address,
                .metrics = a->registry,
                .ready = agent_is_ready,
                .userdata = a,
                .logger = true, /* `warden-agent logger`: the agent has no admin socket */
        };
        const char *reason = NULL;
        int r;

        if (!a->cfg.health_address)
                return 0;
        r = health_http_start(&hc, &a->health, &reason);
        if (r < 0 && reason)
                return log_error_errno(r, "Failed to serve the health endpoints on %s: %s",
                                       a->cfg.health_address, reason);
        if (r < 0)
                return log_error_errno(r, "Failed to serve the health endpoints on %s: %m",
                                       a->cfg.health_address);
        log_info("Health endpoints /live, /ready, /metrics listening on %s (port %u)",
                 a->cfg.health_address, (unsigned) health_http_port(a->health));
        return 0;
}

char *agent_status_text(Agent *a) {
        size_t n_entries = 0, n_svids = 0;
        char *text = NULL;

        if (!(__atomic_load_n(&a->ready, __ATOMIC_ACQUIRE) & AGENT_READY_ATTESTED))
                return strdup("Attesting");
        if (!a->ever_connected)
                return strdup("Connecting to the server");
        if (a->manager)
                manager_get_counts(a->manager, &n_entries, &n_svids);
        if (asprintf(&text, "Serving %zu SVIDs for %zu entries (%s)", n_svids, n_entries,
                     a->connected ? "server connected" : "server unreachable, serving from cache") <
            0)
                return NULL;
        return text;
}

void agent_notify_status(Agent *a, const char *extra) {
        _cleanup_free_ char *text = NULL;

        if (a->stopping)
                return; /* "Shutting down" was the last word */
        text = agent_status_text(a);
        if (!text || (!extra && streq_ptr(text, a->last_status)))
                return;
        (void) sd_notifyf(false, "%sSTATUS=%s", strempty(extra), text);
        free(a->last_status);
        a->last_status = TAKE_PTR(text);
}
