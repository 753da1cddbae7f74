/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The node API (proto/warden/node/v1/node.proto) on the server's TLS listener:
 * node attestation (join_token, x509pop), node SVID renewal, the Sync stream of
 * authorized entries/bundle/revocations, batch X.509-SVID signing and JWT minting.
 *
 * Every call except X509PopChallenge and AttestAgent must carry a client
 * certificate whose SPIFFE ID is an attested, unbanned agent in the datastore
 * (checked on every call). Handlers run on the server's main thread. */

#include "server.h"

int node_api_new(Server *s, NodeApi **ret);
NodeApi *node_api_free(NodeApi *n);

/* Registers the node API methods on rpc (before rpc_server_start). */
int node_api_register(NodeApi *n, RpcServer *rpc);

/* Pushes to open Sync streams. entries_changed recomputes every connected agent's
 * authorized entries and sends what differs; bundle_changed sends the new bundle;
 * agent_changed ends the streams of a banned/evicted agent with PERMISSION_DENIED. */
void node_api_entries_changed(NodeApi *n);
void node_api_bundle_changed(NodeApi *n);
void node_api_agent_changed(NodeApi *n, const char *agent_id);

/* Ends every open stream (server shutdown). */
void node_api_close_all(NodeApi *n);
