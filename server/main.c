/* SPDX-License-Identifier: Apache-2.0 */
/* warden-server: `run` starts the issuing server; every other first word is an admin
 * CLI noun that talks to a running server over its admin socket.
 * Exit status: 0 on success (and for -h), 1 on any error (usage errors included). */

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "cli_nouns.h"
#include "log.h"
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
        {"entry", cli_entry_main, "Registration entries: create, show, update, delete, count"},
        {"token", cli_token_main, "Join tokens for node attestation: generate"},
        {"agent", cli_agent_main, "Attested agents: list, show, evict, ban"},
        {"bundle", cli_bundle_main, "The trust bundle: show"},
        {"x509", cli_x509_main, "X509-SVIDs: mint"},
        {"jwt", cli_jwt_main, "JWT-SVIDs: mint"},
        {"healthcheck", cli_healthcheck_main, "Exit 0 if the server is serving"},
};

static void usage(FILE *f) {
        fprintf(f, "Usage: warden-server <command> [<verb>] [flags]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
        fprintf(f, "  %-12s %s\n", "version", "Print the version");
        fprintf(f,
                "\nEvery command takes -h. CLI commands take -socketPath PATH (default %s)\n"
                "and -output text|json. Exit status: 0 on success, 1 on any error.\n",
                "/run/warden/server.sock");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 1;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "-help") || streq(argv[1], "--help") ||
            streq(argv[1], "help")) {
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
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, argv[1]))
                        return commands[i].main(argc - 1, argv + 1);
        fprintf(stderr, "Error: unknown command \"%s\" (run 'warden-server -h' for the commands)\n",
                argv[1]);
        return 1;
}
