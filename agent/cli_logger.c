/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-agent logger get|set -level L|reset -healthAddress ADDR`: the running agent's
 * log level, through its loopback health endpoint (GET/PUT /logger): the agent has no
 * admin socket. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent_cli.h"
#include "cleanup.h"
#include "health_http.h"
#include "log.h"
#include "options.h"

#define LOGGER_TIMEOUT_MS 5000

static const Option logger_options[] = {
        {"healthAddress", OPT_STRING, NULL,
         "The agent's -healthAddress (loopback HOST:PORT, required)"},
        {"level", OPT_STRING, NULL, "set: error, warning, info or debug"},
        {"output", OPT_STRING, "text", "Output format: text or json"},
};

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
        va_list ap;

        fputs("Error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

/* The agent's answer {"current_level", "launch_level"} as text or JSON. */
static int print_answer(const char *body, bool json) {
        json_error_t jerr;
        json_auto_t *j = json_loads(body, 0, &jerr);
        const char *cur = NULL, *launch = NULL;
        char *s;

        if (!j || json_unpack(j, "{s:s,s:s}", "current_level", &cur, "launch_level", &launch) < 0)
                return fail("malformed answer from the agent: %s", body);
        if (!json) {
                printf("Log level: %s (launch level: %s)\n", cur, launch);
                return 0;
        }
        s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s)
                return 1;
        puts(s);
        free(s);
        return 0;
}

static int logger_request(const Options *o, const char *method, const char *path) {
        const char *addr = options_get_string(o, "healthAddress"), *reason = NULL;
        const char *output = options_get_string(o, "output");
        _cleanup_free_ char *body = NULL;
        unsigned status = 0;
        int r;

        if (!streq(output, "text") && !streq(output, "json"))
                return fail("-output: expected text or json, got \"%s\"", output);
        if (!addr)
                return fail("-healthAddress is required (the agent's loopback HOST:PORT)");
        r = health_http_request(addr, method, path, LOGGER_TIMEOUT_MS, &status, &body, &reason);
        if (r < 0 && reason)
                return fail("-healthAddress: %s: \"%s\"", reason, addr);
        if (r < 0)
                return fail("cannot reach the agent at %s: %s", addr, strerror(-r));
        if (status == 404)
                return fail("the agent at %s does not serve /logger", addr);
        if (status != 200) {
                body[strcspn(body, "\n")] = '\0';
                return fail("the agent refused: %s", body);
        }
        return print_answer(body, streq(output, "json"));
}

static int usage(FILE *f) {
        fprintf(f, "Usage: warden-agent logger get|set -level LEVEL|reset -healthAddress "
                   "HOST:PORT\n\nCommands:\n"
                   "  get        Show the agent's current log level\n"
                   "  set        Change the agent's log level now\n"
                   "  reset      Go back to the level the agent was started with\n\n");
        options_print_help(logger_options, ELEMENTSOF(logger_options), f);
        return f == stdout ? 0 : 1;
}

int agent_cli_logger(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_free_ char *msg = NULL, *path = NULL;
        const char *verb = argc > 1 ? argv[1] : NULL, *level;
        int r;

        if (!verb)
                return usage(stderr);
        if (streq(verb, "-h") || streq(verb, "-help") || streq(verb, "--help") ||
            streq(verb, "help"))
                return usage(stdout);
        if (!streq(verb, "get") && !streq(verb, "set") && !streq(verb, "reset"))
                return fail("unknown command \"logger %s\" (run 'warden-agent logger -h')", verb);
        for (int i = 2; i < argc; i++)
                if (streq(argv[i], "-h") || streq(argv[i], "-help") || streq(argv[i], "--help"))
                        return usage(stdout);
        r = options_parse(logger_options, ELEMENTSOF(logger_options), argc - 1, argv + 1, &o, &msg);
        if (r < 0)
                return fail("%s", msg ? msg : strerror(-r));
        if (options_positional(o, NULL)[0])
                return fail("unexpected argument \"%s\"", options_positional(o, NULL)[0]);
        level = options_get_string(o, "level");
        if (!streq(verb, "set"))
                return level ? fail("-level is only for 'logger set'")
                             : logger_request(o, streq(verb, "get") ? "GET" : "PUT",
                                              streq(verb, "get") ? "/logger" : "/logger?level=");
        if (!level || log_level_from_string(level) < 0)
                return fail("-level: expected error, warning, info or debug, got \"%s\"",
                            strempty(level));
        if (asprintf(&path, "/logger?level=%s", level) < 0)
                return fail("out of memory");
        return logger_request(o, "PUT", path);
}
