/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Operator verbs of warden-agent beside the workload-side `api` CLI. Each takes argv[0]
 * = the verb and returns the process exit status (0 on success or -h, 1 on any error). */

/* `validate [-config FILE] [run flags] [-output text|json]` (cli_validate.c). */
int agent_cli_validate(int argc, char **argv);

/* `logger get|set -level L|reset -healthAddress ADDR [-output text|json]`
 * (cli_logger.c), through the agent's loopback GET/PUT /logger. */
int agent_cli_logger(int argc, char **argv);
