/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The node API (proto/warden/node/v1/node.proto) on the server's TLS listener:
 * node attestation (join_token, x509pop), node SVID renewal, the Sync stream of
 * authorized entries/bundle/revocations, batch X.509-SVID signing and JWT minting.
 *
 * Every call except X509PopChallenge and AttestAgent must carry a client
 * certificate whose SPIFFE ID is an attested, unbanned agent in the datastore
 * (checked on every call). Handlers run on the server's main thread.
 *
 * Attestation (node_attest.c, node_x509pop.c):
 *   join_token  agent ID spiffe://<td>/warden/agent/join_token/<token>; the token is
 *               single use (unknown, expired and used tokens get the same
 *               PERMISSION_DENIED); a token made with an alias creates the node alias
 *               entry {alias, parent spiffe://<td>/warden/server, node,
 *               warden:agent_id:<agent ID>} unless an identical one exists.
 *   x509pop     X509PopChallenge, then AttestAgent with the proof (node_x509pop.c);
 *               agent ID spiffe://<td>/warden/agent/x509pop/<SHA-1 of the leaf>;
 *               UNIMPLEMENTED without -x509popCA.
 *   no method   with a valid node SVID as client certificate: a renewal.
 * Every agent gets the selector warden:agent_id:<agent ID>; x509pop agents also
 * x509pop:subject:cn:<CN>, x509pop:ca:fingerprint:<SHA-1 of each CA above the leaf>
 * and x509pop:san:dns:<each DNS SAN>. The node SVID lives for the server's default
 * X.509 TTL; its serial and expiry are recorded. A banned agent cannot attest.
 *
 * Authorization (authz.h): BatchNewX509SVID (<= 500 CSRs; each entry not authorized
 * gets its own PERMISSION_DENIED result) and NewJWTSVID (1..32 audiences of 1..256
 * bytes) serve only entries authorized for the calling agent, with the entry's TTL
 * capped by the server default. */

#include "cleanup.h"
#include "server.h"

/* Creates the node API for s (borrowed; it must outlive the NodeApi). Loads the
 * x509pop CA file when s->cfg.x509pop_ca is set (x509pop is disabled otherwise). */
int node_api_new(Server *s, NodeApi **ret);
/* Frees the API and what is left of its stream records. Call after the RPC server has
 * shut down (its close callbacks still reach the NodeApi). Accepts NULL, returns NULL. */
NodeApi *node_api_free(NodeApi *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeApi *, node_api_free)

/* Replaces the x509pop CA roots with the PEM certificates in path (NULL disables
 * x509pop). On failure (logged) the current roots stay. For SIGHUP reloads. */
int node_api_set_x509pop_ca(NodeApi *n, const char *path);

/* Registers the node API methods on rpc (before rpc_server_start). */
int node_api_register(NodeApi *n, RpcServer *rpc);

/* Sync fan-out (docs/sync.md). The server applies each datastore change to its index
 * and tells the node API here; these only mark the Sync streams the change affects,
 * node_api_flush() then sends each marked stream one delta (or, while a message is
 * still on its way to that agent, leaves it marked for the moment it has gone).
 *   entry_changed      old: the entry before (NULL: created), new: after (NULL:
 *                      deleted); both must stay valid during the call
 *   agent_changed      an agent was re-attested, banned or evicted: its streams re-read
 *                      it (and end with PERMISSION_DENIED if it is banned or gone)
 *   federated_changed  the stored bundle of trust domain td changed or was deleted
 *   bundle_changed     our own bundle changed (every stream)
 *   all_changed        recompute every stream (entries expired, resync) */
void node_api_entry_changed(NodeApi *n, const Entry *old, const Entry *new);
void node_api_agent_changed(NodeApi *n, const char *agent_id);
void node_api_federated_changed(NodeApi *n, const char *td);
void node_api_bundle_changed(NodeApi *n);
void node_api_all_changed(NodeApi *n);
void node_api_flush(NodeApi *n);

/* Ends every open stream (server shutdown). */
void node_api_close_all(NodeApi *n);

/* Server shutdown, before the RPC server's: stops the signing threads. Calls still
 * waiting for one end with UNAVAILABLE; the jobs being signed are finished first.
 * Later signing calls are refused (UNAVAILABLE). Idempotent. */
void node_api_stop_signing(NodeApi *n);
