/* SPDX-License-Identifier: Apache-2.0 */
/* warden-server: `run` starts the issuing server; every other first word is an admin
 * CLI noun that talks to a running server over its admin socket.
 * Exit status: 0 on success (and for -h), 1 on any error (usage errors included). */

#include "cleanup.h"
#include "cli_nouns.h"
#include "server.h"
#include "verbs.h"

static const Verb verbs[] = {
        {"run", server_main, "Run the issuing server"},
        {"validate", cli_validate_main, "Check a configuration (file and flags) without starting"},
        {"entry", cli_entry_main, "Registration entries: create, show, update, delete, count"},
        {"token", cli_token_main, "Join tokens for node attestation: generate"},
        {"agent", cli_agent_main, "Attested agents: list, show, count, evict, ban, purge"},
        {"bundle", cli_bundle_main, "The trust bundle: show"},
        {"x509", cli_x509_main, "X509-SVIDs: mint"},
        {"jwt", cli_jwt_main, "JWT-SVIDs: mint"},
        {"healthcheck", cli_healthcheck_main, "Exit 0 if the server is serving"},
        {"logger", cli_logger_main, "The running server's log level: get, set, reset"},
        {"audit", cli_audit_main, "The audit log of changes: show, verify"},
};

static const VerbTable table = {
        .program = "warden-server",
        .version = WARDEN_SERVER_VERSION,
        .verbs = verbs,
        .n_verbs = ELEMENTSOF(verbs),
        .footer = "\nEvery command takes -h ('help COMMAND [VERB]' is the same). CLI commands "
                  "take\n-socketPath PATH (default /run/warden/server.sock) and -output "
                  "text|json.\nExit status: 0 on success, 1 on any error.\n",
        .help_max_words = 2, /* help COMMAND [VERB] */
};

int main(int argc, char **argv) {
        return verbs_dispatch(&table, argc, argv);
}
