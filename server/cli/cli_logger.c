/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server logger get|set|reset`: the running server's log level, changed at once
 * (a SIGHUP re-reads -logLevel from the configuration). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "log.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static int print_logger(const Cli *cli, const Warden__Admin__V1__Logger *l) {
        if (cli->json)
                return cli_print_json(json_pack("{s:s,s:s}", "current_level", l->current_level,
                                                "launch_level", l->launch_level));
        printf("Log level: %s (launch level: %s)\n", l->current_level, l->launch_level);
        return 0;
}

/* GetLogger, or SetLogger with level ("" = back to the launch level). */
static int logger_call(const Options *o, const char *level) {
        _cleanup_(pb_freep) Warden__Admin__V1__Logger *resp = NULL;
        Warden__Admin__V1__GetLoggerRequest get = WARDEN__ADMIN__V1__GET_LOGGER_REQUEST__INIT;
        Warden__Admin__V1__SetLoggerRequest set = WARDEN__ADMIN__V1__SET_LOGGER_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        int r;

        r = cli_open(&cli, o);
        if (r < 0)
                return r;
        set.level = (char *) level;
        r = cli_call(&cli, level ? "SetLogger" : "GetLogger", level ? (void *) &set : (void *) &get,
                     &warden__admin__v1__logger__descriptor, (void **) &resp);
        return r < 0 ? r : print_logger(&cli, resp);
}

static const Option get_options[] = {CLI_COMMON_OPTIONS};

static int logger_get(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        int r;

        r = cli_parse("warden-server logger get", get_options, ELEMENTSOF(get_options), argc, argv,
                      &o);
        return r < 0 ? r : logger_call(o, NULL);
}

static const Option set_options[] = {
        CLI_COMMON_OPTIONS,
        {"level", OPT_STRING, NULL, "error, warning, info or debug (required)"},
};

static int logger_set(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        const char *level;
        int r;

        r = cli_parse("warden-server logger set -level LEVEL", set_options, ELEMENTSOF(set_options),
                      argc, argv, &o);
        if (r < 0)
                return r;
        level = options_get_string(o, "level");
        if (!level)
                return cli_error("-level is required (error, warning, info or debug)");
        if (log_level_from_string(level) < 0)
                return cli_error("-level: unknown level \"%s\" (use error, warning, info or debug)",
                                 level);
        return logger_call(o, level);
}

static int logger_reset(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        int r;

        r = cli_parse("warden-server logger reset", get_options, ELEMENTSOF(get_options), argc,
                      argv, &o);
        return r < 0 ? r : logger_call(o, "");
}

static const CliVerb logger_verbs[] = {
        {"get", logger_get, "Show the server's current log level"},
        {"set", logger_set, "Change the server's log level now"},
        {"reset", logger_reset, "Go back to the level the server was started with"},
};

int cli_logger_main(int argc, char **argv) {
        return cli_dispatch(logger_verbs, ELEMENTSOF(logger_verbs), argc, argv);
}
