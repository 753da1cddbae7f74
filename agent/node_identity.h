/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The agent's node identity: node attestation (join token or x509pop), renewal, and
 * persistence in dataDir.
 *
 * Files (every one written atomically: temp file, fsync, rename, fsync of the dir):
 *   agent_svid.pem       the node SVID chain, leaf first (0600)
 *   agent_svid.key       its private key, PEM PKCS#8 (0600)
 *   agent_svid.key.next  during a save: the key of the chain being written (0600)
 *   bundle.json          our trust domain's bundle, SPIFFE bundle JSON with sequence (0600)
 * At start the agent loads them: an unexpired SVID is used for mutual TLS (and renewed
 * at half-life); an expired one, or one the server refuses, means attesting anew.
 *
 * x509pop proof: the signature over x509pop_payload() (common/rpc/x509pop.h) made with
 * the x509pop key. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <warden/bundle.h>

#include "cleanup.h"
#include "rpc_client.h"

#define NODE_IDENTITY_SVID_FILE "agent_svid.pem"
#define NODE_IDENTITY_KEY_FILE "agent_svid.key"
#define NODE_IDENTITY_KEY_NEXT_FILE "agent_svid.key.next"
#define NODE_IDENTITY_BUNDLE_FILE "bundle.json"

typedef struct NodeIdentity {
        char *spiffe_id;        /* spiffe://<td>/warden/agent/... */
        STACK_OF(X509) * chain; /* node SVID, leaf first */
        EVP_PKEY *key;
        WardenBundle *bundle; /* our trust domain's bundle (roots for the server) */
        int64_t not_before;
        int64_t not_after;
} NodeIdentity;

NodeIdentity *node_identity_free(NodeIdentity *id);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeIdentity *, node_identity_free)

/* Loads the persisted identity of trust domain td from data_dir. bootstrap (may be NULL,
 * borrowed) is used when bundle.json is missing. -ENOENT when there is no node SVID;
 * -EBADMSG (+ reason) for files that do not parse, a key that does not match the
 * leaf, an ID of another trust domain; -ENOKEY when there is no bundle at all. An
 * expired SVID still loads (check node_identity_expired). */
int node_identity_load(const char *data_dir,
                       const char *td,
                       const WardenBundle *bootstrap,
                       NodeIdentity **ret,
                       const char **reterr_reason);

/* Writes the SVID chain and its key to data_dir durably and so that every moment leaves a
 * pair that loads: the old one until the chain is renamed into place, the new one after
 * (with NODE_IDENTITY_KEY_NEXT_FILE until the key is renamed too). 0 once the new pair is the one
 * that loads; -errno (disk full, read-only) while the old pair still is. */
int node_identity_save_svid(const NodeIdentity *id, const char *data_dir);

/* The bundle (when id has one), then node_identity_save_svid(). */
int node_identity_save(const NodeIdentity *id, const char *data_dir);

/* Writes bundle.json only (after the bundle changed). */
int node_identity_bundle_save(const WardenBundle *b, const char *data_dir);

/* Reads bundle.json of trust domain td from data_dir; when it is missing, a copy of
 * bootstrap (may be NULL: -ENOKEY). -EBADMSG (+ reason) when it does not parse. */
int node_identity_bundle_load(const char *data_dir,
                              const char *td,
                              const WardenBundle *bootstrap,
                              WardenBundle **ret,
                              const char **reterr_reason);

/* Reads PEM CA certificates (-trustBundle) into a bundle for td. */
int node_identity_bundle_from_pem_file(const char *path, const char *td, WardenBundle **ret);

/* true once the node SVID has expired (now >= notAfter). */
bool node_identity_expired(const NodeIdentity *id, int64_t now);
/* When to renew: notBefore + half the lifetime. */
int64_t node_identity_renew_at(const NodeIdentity *id);

typedef struct NodeAttestParams {
        const char *trust_domain;
        const char *join_token;   /* either this ... */
        const char *x509pop_cert; /* ... or these two (PEM file paths) */
        const char *x509pop_key;
} NodeAttestParams;

/* Attests over ch (server-authenticated TLS): new node key + CSR, join token or x509pop
 * proof, AttestAgent. The answer is checked (ID in our trust domain, chain leaf carries
 * that ID and our key). bootstrap (borrowed) is kept as the bundle when the server sends
 * none. -EPERM/-EINVAL: refused by the server (*reterr_message says why); -EAGAIN and
 * others: try again later; -ENOKEY: no attestation method configured. */
int node_identity_attest(RpcChannel *ch,
                         const NodeAttestParams *p,
                         const WardenBundle *bootstrap,
                         NodeIdentity **ret,
                         char **reterr_message);

/* Renews id over ch (mutual TLS with id): new key + CSR, RenewAgent. *ret is the new
 * identity (same SPIFFE ID, checked; no bundle: the caller moves id's over when it
 * switches). id is left alone: the caller keeps using it until *ret is saved. */
int node_identity_renew(RpcChannel *ch,
                        const NodeIdentity *id,
                        NodeIdentity **ret,
                        char **reterr_message);

/* Whether a failed attestation's status details (server_client.h *reterr_message) say that
 * TLS refused the server: 1 with *ret (malloc'd) the one-line reason naming what was
 * expected, for a chain that does not verify against bootstrap (the N CAs from source,
 * "-trustBundle F" say) or a server that is not spiffe://td/warden/server; 0 for any other
 * failure (unreachable, refused by the server); -ENOMEM. */
int node_identity_first_contact_refusal(const char *details,
                                        const char *td,
                                        const WardenBundle *bootstrap,
                                        const char *source,
                                        char **ret);
