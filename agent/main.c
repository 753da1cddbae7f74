/* SPDX-License-Identifier: Apache-2.0 */
/* warden-agent: `run` starts the node agent; `api ...` and `healthcheck` are the
 * workload-side CLI that talks to a running agent over the Workload API socket.
 * Exit status: 0 on success (and for -h), 1 on any error. */

#include "agent.h"
#include "agent_cli.h"
#include "cleanup.h"
#include "cli_api.h"
#include "verbs.h"

static const Verb verbs[] = {
        {"run", agent_main, "Run the node agent"},
        {"api", agent_cli_api, "Workload API client: fetch x509|jwt|bundles, watch, validate"},
        {"healthcheck", agent_cli_healthcheck, "Exit 0 if the agent's Workload API answers"},
        {"validate", agent_cli_validate, "Check a configuration (file and flags) without starting"},
        {"logger", agent_cli_logger, "The running agent's log level: get, set, reset"},
};

static const VerbTable table = {
        .program = "warden-agent",
        .version = WARDEN_AGENT_VERSION,
        .verbs = verbs,
        .n_verbs = ELEMENTSOF(verbs),
        .footer = "\nEvery command takes -h. Exit status: 0 on success, 1 on any error.\n",
};

int main(int argc, char **argv) {
        return verbs_dispatch(&table, argc, argv);
}
