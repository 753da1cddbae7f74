/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's workload-side CLI (agent/cli_api.c) as a program of its own, so the
 * interop test can run `api ...` and `healthcheck` without the rest of the agent:
 *   wapi_cli api fetch x509 ...     wapi_cli healthcheck ... */
#include <stdio.h>

#include "cleanup.h"
#include "cli_api.h"
#include "log.h"

int main(int argc, char **argv) {
        log_set_component("cli");
        log_set_max_level(LOG_WARNING);
        (void) log_parse_environment();
        if (argc >= 2 && streq(argv[1], "api"))
                return agent_cli_api(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "healthcheck"))
                return agent_cli_healthcheck(argc - 1, argv + 1);
        fprintf(stderr, "Usage: %s api|healthcheck ...\n", argv[0]);
        return 1;
}
