/* SPDX-License-Identifier: Apache-2.0 */
/* Node attestation (join token, x509pop), node SVID renewal, and the node identity's
 * files in dataDir. */
#define _GNU_SOURCE

#include "node_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "file.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "server_client.h"
#include "x509pop.h"

NodeIdentity *node_identity_free(NodeIdentity *id) {
        if (!id)
                return NULL;
        free(id->spiffe_id);
        if (id->chain)
                sk_X509_pop_free(id->chain, X509_free);
        EVP_PKEY_free(id->key);
        warden_bundle_unref(id->bundle);
        free(id);
        return NULL;
}

bool node_identity_expired(const NodeIdentity *id, int64_t now) {
        return now >= id->not_after;
}

int64_t node_identity_renew_at(const NodeIdentity *id) {
        return id->not_before + (id->not_after - id->not_before) / 2;
}

/* Reads a whole regular file of at most max bytes (NUL-terminated). */
static int read_file_capped(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t) st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static char *path_join(const char *dir, const char *file) {
        char *p;

        return asprintf(&p, "%s/%s", dir, file) < 0 ? NULL : p;
}

int node_identity_bundle_save(const WardenBundle *b, const char *data_dir) {
        _cleanup_free_ char *json = NULL, *path = path_join(data_dir, NODE_IDENTITY_BUNDLE_FILE);
        int r;

        if (!path)
                return -ENOMEM;
        r = warden_bundle_to_spiffe_json(b, &json);
        if (r < 0)
                return r;
        return file_write_atomic(path, json, strlen(json), 0600);
}

int node_identity_bundle_from_pem_file(const char *path, const char *td, WardenBundle **ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        int r;

        r = warden_x509_read_pem_file(path, &certs);
        if (r < 0)
                return r;
        r = warden_bundle_new(td, &b);
        if (r < 0)
                return r;
        for (int i = 0; i < sk_X509_num(certs); i++) {
                r = warden_bundle_add_x509_authority(b, sk_X509_value(certs, i));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(b);
        return 0;
}

/* Fills spiffe_id and the times from the chain and checks that the leaf belongs to td
 * and carries the key. */
static int identity_check(NodeIdentity *id, const char *td, const char **reterr_reason) {
        X509 *leaf = sk_X509_value(id->chain, 0);
        _cleanup_free_ char *sid = NULL;
        int r;

        r = warden_x509_spiffe_id(leaf, &sid);
        if (r < 0) {
                *reterr_reason = "node SVID has no valid SPIFFE ID";
                return -EBADMSG;
        }
        if (!warden_spiffeid_member_of(sid, td) ||
            warden_spiffeid_validate_workload(sid, NULL) < 0) {
                *reterr_reason = "node SVID is not an agent ID of our trust domain";
                return -EBADMSG;
        }
        if (!warden_key_public_equal(X509_get0_pubkey(leaf), id->key)) {
                *reterr_reason = "node SVID does not match its key";
                return -EBADMSG;
        }
        id->not_before = (int64_t) warden_x509_not_before(leaf);
        id->not_after = (int64_t) warden_x509_not_after(leaf);
        if (id->not_before < 0 || id->not_after < 0) {
                *reterr_reason = "node SVID has unreadable validity times";
                return -EBADMSG;
        }
        free(id->spiffe_id);
        id->spiffe_id = TAKE_PTR(sid);
        return 0;
}

int node_identity_bundle_load(const char *data_dir,
                              const char *td,
                              const WardenBundle *bootstrap,
                              WardenBundle **ret,
                              const char **reterr_reason) {
        _cleanup_free_ char *path = path_join(data_dir, NODE_IDENTITY_BUNDLE_FILE), *json = NULL;
        size_t len = 0;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_capped(path, WARDEN_BUNDLE_JSON_MAX, &json, &len);
        if (r == -ENOENT) {
                if (!bootstrap)
                        return -ENOKEY;
                return warden_bundle_copy(bootstrap, ret);
        }
        if (r < 0) {
                if (reterr_reason)
                        *reterr_reason = "cannot read " NODE_IDENTITY_BUNDLE_FILE;
                return r;
        }
        r = warden_bundle_from_spiffe_json(td, json, len, ret, reterr_reason);
        return r < 0 && r != -ENOMEM ? -EBADMSG : r;
}

/* The key of id's leaf: NODE_IDENTITY_KEY_FILE, or NODE_IDENTITY_KEY_NEXT_FILE when a save was cut
 * short after its commit point (the chain is the new one, the key still the old one). */
static int load_key(const char *data_dir, NodeIdentity *id, const char **reterr_reason) {
        _cleanup_free_ char *key_path = path_join(data_dir, NODE_IDENTITY_KEY_FILE);
        _cleanup_free_ char *next_path = path_join(data_dir, NODE_IDENTITY_KEY_NEXT_FILE);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *next = NULL;
        X509 *leaf = sk_X509_value(id->chain, 0);
        int r;

        if (!key_path || !next_path)
                return -ENOMEM;
        r = warden_key_read_file(key_path, &id->key);
        if (r < 0 && r != -ENOENT) {
                *reterr_reason = "cannot read " NODE_IDENTITY_KEY_FILE;
                return r;
        }
        if (r >= 0 && warden_key_public_equal(X509_get0_pubkey(leaf), id->key))
                return 0;
        if (warden_key_read_file(next_path, &next) < 0 ||
            !warden_key_public_equal(X509_get0_pubkey(leaf), next)) {
                if (r < 0)
                        *reterr_reason = "cannot read " NODE_IDENTITY_KEY_FILE;
                return r < 0 ? r : 0; /* identity_check() refuses the mismatch */
        }
        log_debug("The key of the node SVID in %s is %s, finishing an interrupted save", data_dir,
                  NODE_IDENTITY_KEY_NEXT_FILE);
        if (rename(next_path, key_path) < 0)
                log_debug_errno(-errno, "Cannot rename %s, ignoring: %m", next_path);
        EVP_PKEY_free(id->key);
        id->key = TAKE_PTR(next);
        return 0;
}

int node_identity_load(const char *data_dir,
                       const char *td,
                       const WardenBundle *bootstrap,
                       NodeIdentity **ret,
                       const char **reterr_reason) {
        _cleanup_(node_identity_freep) NodeIdentity *id = NULL;
        _cleanup_free_ char *svid_path = path_join(data_dir, NODE_IDENTITY_SVID_FILE);
        const char *reason = NULL;
        int r;

        if (!svid_path)
                return -ENOMEM;
        id = calloc(1, sizeof(*id));
        if (!id)
                return -ENOMEM;
        r = warden_x509_read_pem_file(svid_path, &id->chain);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                reason = "cannot read " NODE_IDENTITY_SVID_FILE;
        if (r >= 0)
                r = load_key(data_dir, id, &reason);
        if (r >= 0)
                r = identity_check(id, td, &reason);
        if (r >= 0)
                r = node_identity_bundle_load(data_dir, td, bootstrap, &id->bundle, &reason);
        if (r < 0) {
                if (reterr_reason)
                        *reterr_reason = reason;
                return r;
        }
        *ret = TAKE_PTR(id);
        return 0;
}

int node_identity_save_svid(const NodeIdentity *id, const char *data_dir) {
        _cleanup_free_ char *svid_path = path_join(data_dir, NODE_IDENTITY_SVID_FILE);
        _cleanup_free_ char *key_path = path_join(data_dir, NODE_IDENTITY_KEY_FILE);
        _cleanup_free_ char *next_path = path_join(data_dir, NODE_IDENTITY_KEY_NEXT_FILE);
        _cleanup_close_ int dfd = -EBADF;
        int r;

        if (!svid_path || !key_path || !next_path)
                return -ENOMEM;
        /* 1. The new key beside the old one; 2. the chain (each written whole, fsync'd,
         * renamed, directory fsync'd): the commit point, from here on the new pair loads
         * (load_key() pairs it with NODE_IDENTITY_KEY_NEXT_FILE); 3. the key to its place. A
         * failure in 1 or 2 leaves the old pair as it was. NODE_IDENTITY_KEY_NEXT_FILE is not
         * removed on a failure in 2: the chain may have been renamed before the directory
         * fsync failed, and then it is the only key that matches. */
        r = warden_key_write_file(next_path, id->key);
        if (r >= 0)
                r = warden_x509_write_pem_file(svid_path, id->chain, 0600);
        if (r < 0)
                return r;
        if (rename(next_path, key_path) < 0) {
                log_debug_errno(-errno, "Cannot rename %s (the next load finishes it): %m",
                                next_path);
                return 0;
        }
        dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
        return 0;
}

int node_identity_save(const NodeIdentity *id, const char *data_dir) {
        int r = 0;

        /* The bundle first: it does not depend on the SVID, and a failure leaves no half. */
        if (id->bundle)
                r = node_identity_bundle_save(id->bundle, data_dir);
        if (r >= 0)
                r = node_identity_save_svid(id, data_dir);
        return r;
}

/* Builds the x509pop proof for csr: challenge, then the signature. proof's buffers are
 * malloc'd (freed by the caller with free_x509pop_proof). */
static int x509pop_proof(RpcChannel *ch,
                         const NodeAttestParams *p,
                         const uint8_t *csr,
                         size_t csr_len,
                         Warden__Node__V1__X509PopProof *proof,
                         char **reterr_message) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *payload = NULL;
        size_t payload_len, n;
        int r;

        r = warden_x509_read_pem_file(p->x509pop_cert, &chain);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", p->x509pop_cert);
        r = warden_key_read_file(p->x509pop_key, &key);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", p->x509pop_key);
        n = (size_t) sk_X509_num(chain);
        if (n > WARDEN_X509_CHAIN_MAX_CERTS)
                return log_error_errno(-E2BIG, "%s: too many certificates", p->x509pop_cert);
        r = server_x509pop_challenge(ch, chain, &proof->nonce.data, &proof->nonce.len,
                                     reterr_message);
        if (r < 0)
                return r;
        r = x509pop_payload(proof->nonce.data, proof->nonce.len, csr, csr_len, &payload,
                            &payload_len);
        if (r >= 0)
                r = warden_sign(key, payload, payload_len, &proof->signature.data,
                                &proof->signature.len);
        if (r < 0)
                return r;
        proof->cert_chain = calloc(n, sizeof(ProtobufCBinaryData));
        if (!proof->cert_chain)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = warden_x509_to_der(sk_X509_value(chain, (int) i), &proof->cert_chain[i].data,
                                       &proof->cert_chain[i].len);
                if (r < 0)
                        return r;
                proof->n_cert_chain = i + 1;
        }
        return 0;
}

static void free_x509pop_proof(Warden__Node__V1__X509PopProof *proof) {
        for (size_t i = 0; i < proof->n_cert_chain; i++)
                free(proof->cert_chain[i].data);
        free(proof->cert_chain);
        free(proof->nonce.data);
        free(proof->signature.data);
}

/* Turns an AttestAgent answer into an identity with our key. */
static int identity_from_response(const Warden__Node__V1__AttestAgentResponse *resp,
                                  const char *td,
                                  const WardenBundle *bootstrap,
                                  EVP_PKEY *key,
                                  NodeIdentity **ret) {
        _cleanup_(node_identity_freep) NodeIdentity *id = calloc(1, sizeof(NodeIdentity));
        const char *reason = NULL;
        int r;

        if (!id)
                return -ENOMEM;
        r = server_chain_from_pb(resp->svid_chain, resp->n_svid_chain, &id->chain);
        if (r < 0)
                return log_error_errno(r, "Server sent a bad node SVID chain");
        id->key = key;
        EVP_PKEY_up_ref(key);
        r = identity_check(id, td, &reason);
        if (r >= 0 && !streq(id->spiffe_id, resp->spiffe_id))
                r = -EBADMSG, reason = "node SVID does not carry the agent ID";
        if (r < 0)
                return log_error_errno(r, "Server sent an unusable node SVID: %s", strna(reason));
        if (resp->bundle) {
                r = pb_to_bundle(resp->bundle, &id->bundle, &reason);
                if (r >= 0 && !streq(warden_bundle_trust_domain(id->bundle), td))
                        r = -EBADMSG, reason = "bundle of another trust domain";
                if (r < 0)
                        return log_error_errno(r, "Server sent a bad bundle: %s", strna(reason));
        } else if (bootstrap) {
                r = warden_bundle_copy(bootstrap, &id->bundle);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(id);
        return 0;
}

int node_identity_attest(RpcChannel *ch,
                         const NodeAttestParams *p,
                         const WardenBundle *bootstrap,
                         NodeIdentity **ret,
                         char **reterr_message) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        Warden__Node__V1__X509PopProof proof = WARDEN__NODE__V1__X509_POP_PROOF__INIT;
        Warden__Node__V1__AttestAgentResponse *resp = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        size_t csr_len;
        int r;

        if (!p->join_token && !p->x509pop_cert)
                return -ENOKEY;
        r = warden_key_generate(WARDEN_KEY_EC_P256, &key);
        if (r >= 0)
                r = warden_csr_create(key, NULL, &csr, &csr_len);
        if (r < 0)
                return log_error_errno(r, "Failed to make the node key and CSR: %m");
        req.csr.data = csr;
        req.csr.len = csr_len;
        if (p->join_token) {
                req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN;
                req.join_token = (char *) p->join_token;
        } else {
                r = x509pop_proof(ch, p, csr, csr_len, &proof, reterr_message);
                req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_X509POP;
                req.x509pop = &proof;
        }
        if (r >= 0)
                r = server_attest_agent(ch, &req, &resp, reterr_message);
        free_x509pop_proof(&proof);
        if (r < 0)
                return r;
        r = identity_from_response(resp, p->trust_domain, bootstrap, key, ret);
        pb_free(resp);
        return r;
}

int node_identity_renew(RpcChannel *ch,
                        const NodeIdentity *id,
                        NodeIdentity **ret,
                        char **reterr_message) {
        _cleanup_(node_identity_freep) NodeIdentity *next = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        _cleanup_free_ char *td = NULL;
        const char *reason = NULL;
        size_t csr_len;
        int r;

        next = calloc(1, sizeof(NodeIdentity));
        if (!next)
                return -ENOMEM;
        r = warden_spiffeid_parse(id->spiffe_id, &td, NULL, NULL);
        if (r >= 0)
                r = warden_key_generate(WARDEN_KEY_EC_P256, &key);
        if (r >= 0)
                r = warden_csr_create(key, id->spiffe_id, &csr, &csr_len);
        if (r < 0)
                return r;
        r = server_renew_agent(ch, csr, csr_len, &next->chain, reterr_message);
        if (r < 0)
                return r;
        next->key = TAKE_PTR(key);
        r = identity_check(next, td, &reason);
        if (r >= 0 && !streq(next->spiffe_id, id->spiffe_id))
                r = -EBADMSG, reason = "renewed SVID carries another ID";
        if (r < 0)
                return log_warning_errno(r, "Server sent an unusable renewed node SVID: %s",
                                         strna(reason));
        *ret = TAKE_PTR(next);
        return 0;
}

int node_identity_first_contact_refusal(const char *details,
                                        const char *td,
                                        const WardenBundle *bootstrap,
                                        const char *source,
                                        char **ret) {
        size_t n = bootstrap ? warden_bundle_n_x509_authorities(bootstrap) : 0;
        const char *reason = NULL;
        int r;

        switch (rpc_tls_failure_from_details(details, &reason)) {
        case RPC_TLS_FAILURE_UNTRUSTED:
                r = asprintf(ret,
                             "the server's certificate does not verify against the trust bundle "
                             "(%zu CA certificate%s from %s): give the bundle of trust domain %s "
                             "(warden-server bundle show)",
                             n, n == 1 ? "" : "s", strna(source), td);
                break;
        case RPC_TLS_FAILURE_SERVER_ID:
                r = asprintf(ret,
                             "the server is not the server of trust domain %s: %s (check "
                             "-trustDomain)",
                             td, reason);
                break;
        default:
                return 0;
        }
        return r < 0 ? -ENOMEM : 1;
}
