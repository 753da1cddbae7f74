/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "log_journal.h"

static const int daemon_signals[DAEMON_N_SIGNALS] = {
        [DAEMON_SIGTERM] = SIGTERM,
        [DAEMON_SIGINT] = SIGINT,
        [DAEMON_SIGHUP] = SIGHUP,
};

int daemon_block_signals(void) {
        sigset_t set;

        sigemptyset(&set);
        for (int i = 0; i < DAEMON_N_SIGNALS; i++)
                sigaddset(&set, daemon_signals[i]);
        return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void daemon_raise_nofile_limit(void) {
        struct rlimit rl;
        rlim_t old;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_warning_errno(-errno, "Failed to read the open file limit, ignoring: %m");
                return;
        }
        old = rl.rlim_cur;
        if (rl.rlim_cur != rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        log_warning_errno(-errno,
                                          "Failed to raise the open file limit, ignoring: %m");
                        return;
                }
        }
        log_debug("Open file limit %llu (soft limit was %llu)", (unsigned long long) rl.rlim_cur,
                  (unsigned long long) old);
}

int daemon_add_signals(sd_event *event,
                       sd_event_source *sources[DAEMON_N_SIGNALS],
                       sd_event_signal_handler_t handler,
                       void *userdata) {
        int r;

        for (int i = 0; i < DAEMON_N_SIGNALS; i++) {
                r = sd_event_add_signal(event, &sources[i], daemon_signals[i], handler, userdata);
                if (r < 0)
                        return r;
        }
        r = sd_event_set_watchdog(event, true);
        if (r > 0)
                log_debug("systemd watchdog enabled");
        return r < 0 ? r : 0;
}

void daemon_remove_signals(sd_event_source *sources[DAEMON_N_SIGNALS]) {
        for (int i = 0; i < DAEMON_N_SIGNALS; i++)
                sources[i] = sd_event_source_disable_unref(sources[i]);
}

int daemon_main(int argc, char **argv, const char *component, DaemonRun run) {
        log_set_component(component);
        log_open();
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int daemon_options_parsed(int r, const char *msg, int log_level) {
        if (r == -ECANCELED)
                return 0;
        if (r < 0) {
                fprintf(stderr, "Error: %s\n", msg ? msg : strerror(-r));
                return r;
        }
        log_set_max_level(log_level);
        (void) log_parse_environment(); /* WARDEN_LOG_LEVEL overrides the option */
        return 1;
}
