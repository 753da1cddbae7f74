/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What both daemons do the same way around their sd-event loop: the signals they
 * handle (SIGTERM, SIGINT: stop; SIGHUP: reload) and the systemd watchdog. */

#include <systemd/sd-event.h>

enum {
        DAEMON_SIGTERM,
        DAEMON_SIGINT,
        DAEMON_SIGHUP,
        DAEMON_N_SIGNALS,
};

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that every thread created
 * afterwards (gRPC's included) inherits the mask and the event loop alone receives them.
 * Call before creating any thread. 0 or -errno. */
int daemon_block_signals(void);

/* Adds `handler` for the three signals (sources go to sources[DAEMON_*]) and turns on
 * sd-event's watchdog: WATCHDOG=1 from the loop at half of $WATCHDOG_USEC when set.
 * 0 or -errno (sources added so far stay in sources[] for daemon_remove_signals). */
int daemon_add_signals(sd_event *event,
                       sd_event_source *sources[DAEMON_N_SIGNALS],
                       sd_event_signal_handler_t handler,
                       void *userdata);

/* Disables and drops the sources; entries become NULL. */
void daemon_remove_signals(sd_event_source *sources[DAEMON_N_SIGNALS]);
