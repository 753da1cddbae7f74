/* SPDX-License-Identifier: Apache-2.0 */
/* warden-agent: `run` starts the node agent; `api ...` and `healthcheck` are the
 * workload-side CLI that talks to a running agent over the Workload API socket.
 * Exit status: 0 on success (and for -h), 1 on any error. */

#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agent_cli.h"
#include "cleanup.h"
#include "cli_api.h"
#include "log.h"
#include "log_journal.h"

typedef struct Command {
        const char *name;
        int (*main)(int argc, char **argv);
        const char *help;
} Command;

static int run_main(int argc, char **argv) {
        log_set_component("agent");
        log_open();
        return agent_main(argc, argv);
}

static const Command commands[] = {
        {"run", run_main, "Run the node agent"},
        {"api", agent_cli_api, "Workload API client: fetch x509|jwt|bundles, watch, validate"},
        {"healthcheck", agent_cli_healthcheck, "Exit 0 if the agent's Workload API answers"},
        {"validate", agent_cli_validate, "Check a configuration (file and flags) without starting"},
        {"logger", agent_cli_logger, "The running agent's log level: get, set, reset"},
};

static void usage(FILE *f) {
        fprintf(f, "Usage: warden-agent <command> [<verb>] [flags]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
        fprintf(f, "  %-12s %s\n", "version", "Print the version");
        fprintf(f, "\nEvery command takes -h. Exit status: 0 on success, 1 on any error.\n");
}

/* `help VERB [SUB...]`: the same as `VERB [SUB...] -h`. */
static int help_verb(int argc, char **argv) {
        char *args[8];
        int n = 0;

        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (!streq(commands[i].name, argv[0]))
                        continue;
                for (int k = 0; k < argc && n < (int) ELEMENTSOF(args) - 2; k++)
                        args[n++] = argv[k];
                args[n++] = (char *) "-h";
                args[n] = NULL;
                return commands[i].main(n, args);
        }
        fprintf(stderr, "Error: unknown command \"%s\" (run 'warden-agent -h' for the commands)\n",
                argv[0]);
        return 1;
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 1;
        }
        if (streq(argv[1], "help") && argc > 2)
                return help_verb(argc - 2, argv + 2);
        if (streq(argv[1], "-h") || streq(argv[1], "-help") || streq(argv[1], "--help") ||
            streq(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "version") || streq(argv[1], "-version") ||
            streq(argv[1], "--version")) {
                printf("warden-agent %s\n", WARDEN_AGENT_VERSION);
                return 0;
        }
        /* The CLI keeps its own and gRPC's debug chatter quiet unless asked for. */
        log_set_component("cli");
        log_set_max_level(LOG_WARNING);
        (void) log_parse_environment();
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, argv[1]))
                        return commands[i].main(argc - 1, argv + 1);
        fprintf(stderr, "Error: unknown command \"%s\" (run 'warden-agent -h' for the commands)\n",
                argv[1]);
        return 1;
}
