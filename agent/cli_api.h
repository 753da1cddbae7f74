/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The workload-side CLI of warden-agent, a Workload API client (SPIRE's `api` verbs):
 *
 *   api fetch x509 [-write DIR]          X.509-SVIDs (svid.N.pem, svid.N.key 0600,
 *                                        bundle.N.pem, federated_bundle.N.M.pem)
 *   api fetch jwt -audience A [-audience B] [-spiffeID ID]
 *   api fetch jwt bundles                JWT bundles (plain JWKS per trust domain)
 *   api fetch bundles                    X.509 bundles (PEM per trust domain)
 *   api validate jwt -audience A -svid TOKEN   (-svid - reads the token from stdin)
 *   api watch                            prints every X.509-SVID update as it arrives
 *   healthcheck [-shallow]
 *
 * Common flags: -socketPath (default $SPIFFE_ENDPOINT_SOCKET as unix:///path or /path,
 * else /run/warden/agent.sock), -output text|json, -timeout (default 5s). Errors are
 * one line "Error: ..." on stderr; the exit status is 0 on success, 1 otherwise. */

#define CLI_API_DEFAULT_SOCKET "/run/warden/agent.sock"

/* argv[0] = "api". Returns the process exit status. */
int agent_cli_api(int argc, char **argv);

/* argv[0] = "healthcheck". Returns the process exit status. */
int agent_cli_healthcheck(int argc, char **argv);
