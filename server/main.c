/* SPDX-License-Identifier: Apache-2.0 */
/* warden-server: `run` starts the issuing server; every other first word is an admin
 * CLI noun that talks to a running server over its admin socket.
 * Exit status: 0 on success (and for -h), 1 on any error (usage errors included). */

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "cli_nouns.h"
#include "log.h"
#include "log_journal.h"
#include "server.h"

typedef struct Command {
        const char *name;
        int (*main)(int argc, char **argv);
        const char *help;
} Command;

static int run_main(int argc, char **argv) {
        log_set_component("server");
        log_open();
        return server_main(argc, argv);
}

static const Command commands[] = {
        {"run", run_main, "Run the issuing server"},
        {"validate", cli_validate_main, "Check a configuration (file and flags) without starting"},
        {"entry", cli_entry_main, "Registration entries: create, show, update, delete, count"},
        {"token", cli_token_main, "Join tokens for node attestation: generate"},
        {"agent", cli_agent_main, "Attested agents: list, show, count, evict, ban, purge"},
        {"bundle", cli_bundle_main, "The trust bundle: show"},
        {"x509", cli_x509_main, "X509-SVIDs: mint"},
        {"jwt", cli_jwt_main, "JWT-SVIDs: mint"},
        {"healthcheck", cli_healthcheck_main, "Exit 0 if the server is serving"},
        {"logger", cli_logger_main, "The running server's log level: get, set, reset"},
};

static void usage(FILE *f) {
        fprintf(f, "Usage: warden-server <command> [<verb>] [flags]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
        fprintf(f, "  %-12s %s\n", "version", "Print the version");
        fprintf(f,
                "\nEvery command takes -h ('help COMMAND [VERB]' is the same). CLI commands take\n"
                "-socketPath PATH (default %s) and -output text|json.\n"
                "Exit status: 0 on success, 1 on any error.\n",
                "/run/warden/server.sock");
}

static int run_command(int argc, char **argv) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, argv[0]))
                        return commands[i].main(argc, argv);
        fprintf(stderr, "Error: unknown command \"%s\" (run 'warden-server -h' for the commands)\n",
                argv[0]);
        return 1;
}

/* `help COMMAND [VERB]` is `COMMAND [VERB] -h`. */
static int help_command(int argc, char **argv) {
        char *help_argv[] = {argv[0], argc > 1 ? argv[1] : (char *) "-h", (char *) "-h", NULL};

        if (argc > 2) {
                fprintf(stderr,
                        "Error: unexpected argument \"%s\" (usage: warden-server help "
                        "COMMAND [VERB])\n",
                        argv[2]);
                return 1;
        }
        return run_command(argc > 1 ? 3 : 2, help_argv);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 1;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "-help") || streq(argv[1], "--help") ||
            (streq(argv[1], "help") && argc == 2)) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "version") || streq(argv[1], "-version") ||
            streq(argv[1], "--version")) {
                printf("warden-server %s\n", WARDEN_SERVER_VERSION);
                return 0;
        }
        /* The CLI keeps its own and gRPC's debug chatter quiet unless asked for. */
        log_set_component("cli");
        log_set_max_level(LOG_WARNING);
        (void) log_parse_environment();
        if (streq(argv[1], "help"))
                return help_command(argc - 2, argv + 2);
        return run_command(argc - 1, argv + 1);
}
