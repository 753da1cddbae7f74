/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Entry points of the CLI nouns (argv[0] = the noun), called by main.c. Each returns
 * the process exit status: 0 on success or help, 1 on any error. */

#include "warden/types/v1/types.pb-c.h"

int cli_entry_main(int argc, char **argv);
int cli_token_main(int argc, char **argv);
int cli_agent_main(int argc, char **argv);
int cli_bundle_main(int argc, char **argv);
int cli_x509_main(int argc, char **argv);
int cli_jwt_main(int argc, char **argv);
int cli_healthcheck_main(int argc, char **argv);
int cli_logger_main(int argc, char **argv);
int cli_audit_main(int argc, char **argv);
/* `warden-server validate` (cli_validate.c). */
int cli_validate_main(int argc, char **argv);

/* Prints an entry as aligned "Label : value" lines (cli_entry.c). */
void cli_print_entry(const Warden__Types__V1__Entry *e);
