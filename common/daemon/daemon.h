/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What both daemons do the same way: the start-up shape of their `run` verb, and
 * around their sd-event loop the signals they handle (SIGTERM, SIGINT: stop; SIGHUP:
 * reload) and the systemd watchdog. */

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

/* Raises the soft limit of open files (RLIMIT_NOFILE) to the hard limit: every node
 * API connection costs the server file descriptors, and gRPC stops accepting for good
 * once accept4() fails with EMFILE. Logs the result at debug level; a failure is a
 * warning, and the daemon carries on with the limit it has. */
void daemon_raise_nofile_limit(void);

/* Adds `handler` for the three signals (sources go to sources[DAEMON_*]) and turns on
 * sd-event's watchdog: WATCHDOG=1 from the loop at half of $WATCHDOG_USEC when set.
 * 0 or -errno (sources added so far stay in sources[] for daemon_remove_signals). */
int daemon_add_signals(sd_event *event,
                       sd_event_source *sources[DAEMON_N_SIGNALS],
                       sd_event_signal_handler_t handler,
                       void *userdata);

/* Disables and drops the sources; entries become NULL. */
void daemon_remove_signals(sd_event_source *sources[DAEMON_N_SIGNALS]);

/* The start-up shape of a daemon's `run` verb, after systemd's run() +
 * DEFINE_MAIN_FUNCTION. The daemon writes one
 *
 *   static int run(int argc, char **argv) {
 *           r = foo_config_parse(argc, argv, &cfg, &msg);
 *           r = daemon_options_parsed(r, msg, cfg.log_level);
 *           if (r <= 0)
 *                   return r;
 *           r = foo_new(&cfg, &f);            (parse → new → run → free)
 *           ...
 *           return foo_run(f);                (_cleanup_ frees f)
 *   }
 *   DEFINE_DAEMON_MAIN_FUNCTION(foo_main, "foo", run)
 *
 * and foo_main is the verb: it logs as component "foo" (to the journal when that is
 * our stderr), runs run() and turns its result into the exit status: 1 when it is
 * negative (run() logged or printed why), else 0. */
typedef int (*DaemonRun)(int argc, char **argv);
int daemon_main(int argc, char **argv, const char *component, DaemonRun run);
#define DEFINE_DAEMON_MAIN_FUNCTION(name, component, run)                                          \
        int name(int argc, char **argv) {                                                          \
                return daemon_main(argc, argv, component, run);                                    \
        }

/* The end of a `run` verb's option parsing: r and msg from the parser. -ECANCELED
 * (the help was printed) returns 0: stop, exit status 0. Another error is printed as
 * "Error: <msg or strerror(r)>" on stderr and returned. Otherwise log_level becomes
 * the log's (WARDEN_LOG_LEVEL overrides it) and 1 says go on. */
int daemon_options_parsed(int r, const char *msg, int log_level);
