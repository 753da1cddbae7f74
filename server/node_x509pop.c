/* SPDX-License-Identifier: Apache-2.0 */
/* x509pop node attestation: the node proves possession of the private key of a
 * certificate that chains to a CA configured with -x509popCA.
 *
 *   1. X509PopChallenge(chain): the chain is verified now; the server returns 32
 *      random bytes bound to the leaf's SHA-1 fingerprint, valid NODE_NONCE_TTL s
 *      (at most NODE_NONCES_MAX pending; the oldest is dropped first).
 *   2. AttestAgent(x509pop{chain, nonce, signature}, csr): the chain is verified
 *      again, the nonce must be pending for this leaf (it is consumed, whatever the
 *      outcome), and signature = warden_sign(leaf key, "warden-x509pop-v1" || nonce ||
 *      csr), which binds the proof to this one CSR. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "node_api_internal.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "rpc_status.h"
#include "x509pop.h"

static void sk_X509_freep(STACK_OF(X509) * *s) {
        sk_X509_free(*s);
}

/* ---- pending nonces ---- */

static void nonce_remove(NodeApi *n, size_t i) {
        explicit_erase(&n->nonces[i], sizeof(NodeNonce));
        memmove(&n->nonces[i], &n->nonces[i + 1], (n->n_nonces - i - 1) * sizeof(NodeNonce));
        n->n_nonces--;
}

static void nonces_expire(NodeApi *n, int64_t now) {
        for (size_t i = n->n_nonces; i > 0; i--)
                if (n->nonces[i - 1].expires_at <= now)
                        nonce_remove(n, i - 1);
}

static int nonce_issue(NodeApi *n, const char *fingerprint, int64_t now, uint8_t *ret) {
        NodeNonce *x;

        if (!n->nonces) {
                n->nonces = calloc(NODE_NONCES_MAX, sizeof(NodeNonce));
                if (!n->nonces)
                        return -ENOMEM;
        }
        nonces_expire(n, now);
        if (n->n_nonces >= NODE_NONCES_MAX) {
                log_debug("x509pop: %d challenges pending, dropping the oldest", NODE_NONCES_MAX);
                nonce_remove(n, 0);
        }
        x = &n->nonces[n->n_nonces];
        if (RAND_bytes(x->nonce, NODE_NONCE_SIZE) != 1)
                return ossl_to_errno(-EIO);
        memcpy(x->fingerprint, fingerprint, NODE_FINGERPRINT_HEX);
        x->fingerprint[NODE_FINGERPRINT_HEX] = '\0';
        x->expires_at = now + NODE_NONCE_TTL;
        memcpy(ret, x->nonce, NODE_NONCE_SIZE);
        n->n_nonces++;
        return 0;
}

/* 0 when nonce is pending for this leaf; the nonce is consumed either way. */
static int nonce_consume(NodeApi *n,
                         const ProtobufCBinaryData *nonce,
                         const char *fingerprint,
                         int64_t now) {
        if (nonce->len != NODE_NONCE_SIZE)
                return -EPERM;
        nonces_expire(n, now);
        for (size_t i = 0; i < n->n_nonces; i++) {
                bool bound;

                if (CRYPTO_memcmp(n->nonces[i].nonce, nonce->data, NODE_NONCE_SIZE) != 0)
                        continue;
                bound = streq(n->nonces[i].fingerprint, fingerprint);
                nonce_remove(n, i);
                return bound ? 0 : -EPERM;
        }
        return -EPERM;
}

/* ---- chains ---- */

static int parse_chain(ProtobufCBinaryData *const certs, size_t n, STACK_OF(X509) * *ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        int r;

        if (n == 0 || n > WARDEN_X509_CHAIN_MAX_CERTS)
                return -EINVAL;
        chain = sk_X509_new_null();
        if (!chain)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                X509 *x = NULL;

                r = warden_x509_from_der(certs[i].data, certs[i].len, &x);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return -EINVAL;
                if (!sk_X509_push(chain, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(chain);
        return 0;
}

/* Parses and verifies a node's chain against the x509pop roots. *ret_path is the
 * verified path (leaf first, ending with the trust anchor): not the chain as sent, which
 * may carry any extra certificate; *ret_fingerprint is the leaf's SHA-1 (hex). */
static int verify_chain(NodeApi *n,
                        ProtobufCBinaryData *const certs,
                        size_t n_certs,
                        int64_t now,
                        STACK_OF(X509) * *ret_path,
                        char **ret_fingerprint,
                        const char **reterr_message) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL, *path = NULL;
        _cleanup_(sk_X509_freep) STACK_OF(X509) *inter = NULL;
        const char *reason = NULL;
        int r;

        if (!n->x509pop_roots) {
                *reterr_message = "x509pop attestation is not enabled";
                return -EOPNOTSUPP;
        }
        r = parse_chain(certs, n_certs, &chain);
        if (r < 0) {
                *reterr_message = "malformed certificate chain";
                return r;
        }
        inter = sk_X509_new_null();
        if (!inter)
                return -ENOMEM;
        for (int i = 1; i < sk_X509_num(chain); i++)
                if (!sk_X509_push(inter, sk_X509_value(chain, i)))
                        return -ENOMEM;
        r = warden_x509_verify_path_to_roots(sk_X509_value(chain, 0), inter, n->x509pop_roots,
                                             (time_t) now, &path, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_info("node API: refused x509pop node certificate: %s method=x509pop "
                         "status=%s",
                         strna(reason),
                         rpc_status_to_string(
                                 errno_to_grpc_status(r == -EBADMSG ? -EINVAL : -EPERM)));
                *reterr_message = "node certificate is not trusted";
                return r == -EBADMSG ? -EINVAL : -EPERM;
        }
        r = warden_x509_fingerprint_sha1_hex(sk_X509_value(path, 0), ret_fingerprint);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

int node_x509pop_challenge(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(node_pb_freep) Warden__Node__V1__X509PopChallengeRequest *req = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *fp = NULL;
        Warden__Node__V1__X509PopChallengeResponse resp =
                WARDEN__NODE__V1__X509_POP_CHALLENGE_RESPONSE__INIT;
        uint8_t nonce[NODE_NONCE_SIZE];
        int r;

        r = node_attest_rate_check(n, c, reterr_message);
        if (r < 0)
                return r;
        r = rpc_message_unpack(c, &warden__node__v1__x509_pop_challenge_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        r = verify_chain(n, req->cert_chain, req->n_cert_chain, time(NULL), &chain, &fp,
                         reterr_message);
        if (r < 0)
                return r;
        r = nonce_issue(n, fp, time(NULL), nonce);
        if (r < 0)
                return r;
        resp.nonce = (ProtobufCBinaryData){.data = nonce, .len = sizeof(nonce)};
        r = rpc_message_reply(c, &resp.base, RPC_MESSAGE_ERASE);
        explicit_erase(nonce, sizeof(nonce));
        return r;
}

static int check_signature(X509 *leaf,
                           const ProtobufCBinaryData *nonce,
                           const ProtobufCBinaryData *csr,
                           const ProtobufCBinaryData *sig) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        int r;

        if (sig->len == 0 || sig->len > NODE_X509POP_SIGNATURE_MAX)
                return -EINVAL;
        r = x509pop_payload(nonce->data, nonce->len, csr->data, csr->len, &data, &len);
        if (r < 0)
                return r;
        r = warden_verify(X509_get0_pubkey(leaf), data, len, sig->data, sig->len);
        if (r == -ENOMEM)
                return r;
        return r < 0 ? (r == -EOPNOTSUPP ? -EINVAL : -EPERM) : 0;
}

int node_x509pop_verify_proof(NodeApi *n,
                              const Warden__Node__V1__X509PopProof *proof,
                              const ProtobufCBinaryData *csr,
                              int64_t now,
                              char **ret_agent_id,
                              STACK_OF(X509) * *ret_chain,
                              const char **reterr_message) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *fp = NULL, *path = NULL, *id = NULL;
        int r;

        if (!proof) {
                *reterr_message = "malformed request";
                return -EINVAL;
        }
        r = verify_chain(n, proof->cert_chain, proof->n_cert_chain, now, &chain, &fp,
                         reterr_message);
        if (r < 0)
                return r;
        if (asprintf(&path, "/warden/agent/x509pop/%s", fp) < 0)
                return -ENOMEM;
        r = warden_spiffeid_format(n->server->cfg.trust_domain, path, &id);
        if (r < 0)
                return r;
        r = nonce_consume(n, &proof->nonce, fp, now);
        if (r < 0) {
                log_info("node API: refused attestation: unknown or expired challenge "
                         "agent_id=%s method=x509pop status=PERMISSION_DENIED",
                         id);
                *reterr_message = "unknown or expired challenge";
                return r;
        }
        r = check_signature(sk_X509_value(chain, 0), &proof->nonce, csr, &proof->signature);
        if (r < 0) {
                log_info("node API: refused attestation: bad proof of possession agent_id=%s "
                         "method=x509pop status=%s",
                         id, rpc_status_to_string(errno_to_grpc_status(r)));
                *reterr_message = "bad proof of possession";
                return r;
        }
        *ret_agent_id = TAKE_PTR(id);
        *ret_chain = TAKE_PTR(chain);
        return 0;
}

/* ---- selectors ---- */

/* Adds x509pop:<prefix><value>; a value that is not a valid selector, or a full set,
 * is skipped. */
static int add_optional(SelectorSet *sel, const char *prefix, const char *value) {
        _cleanup_free_ char *v = NULL;
        int r;

        if (asprintf(&v, "%s%s", prefix, value) < 0)
                return -ENOMEM;
        r = selector_set_add(sel, "x509pop", v);
        if (r == -EINVAL || r == -E2BIG) {
                log_debug("x509pop: skipping selector %s...: %s", prefix,
                          r == -EINVAL ? "invalid value" : "too many selectors");
                return 0;
        }
        return r;
}

static int add_cn(X509 *leaf, SelectorSet *sel) {
        X509_NAME *name = X509_get_subject_name(leaf);
        unsigned char *utf8 = NULL;
        int idx, len, r = 0;

        idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
        if (idx < 0)
                return 0;
        len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
        if (len > 0 && strlen((char *) utf8) == (size_t) len)
                r = add_optional(sel, "subject:cn:", (char *) utf8);
        OPENSSL_free(utf8);
        return r;
}

static int add_ca_fingerprint(X509 *ca, SelectorSet *sel) {
        _cleanup_free_ char *fp = NULL;
        int r;

        r = warden_x509_fingerprint_sha1_hex(ca, &fp);
        return r < 0 ? r : add_optional(sel, "ca:fingerprint:", fp);
}

static int add_dns_sans(X509 *leaf, SelectorSet *sel) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int r;

        gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                _cleanup_free_ char *dns = NULL;
                int len;

                if (g->type != GEN_DNS)
                        continue;
                len = ASN1_STRING_length(g->d.dNSName);
                if (len <= 0 || len > WARDEN_DNS_NAME_MAX ||
                    memchr(ASN1_STRING_get0_data(g->d.dNSName), 0, len))
                        continue;
                dns = strndup((const char *) ASN1_STRING_get0_data(g->d.dNSName), len);
                if (!dns)
                        return -ENOMEM;
                r = add_optional(sel, "san:dns:", dns);
                if (r < 0)
                        return r;
        }
        return 0;
}

int node_x509pop_selectors(NodeApi *n, STACK_OF(X509) * chain, SelectorSet *sel) {
        X509 *last = sk_X509_value(chain, sk_X509_num(chain) - 1);
        int r;

        r = add_cn(sk_X509_value(chain, 0), sel);
        for (int i = 1; r >= 0 && i < sk_X509_num(chain); i++)
                r = add_ca_fingerprint(sk_X509_value(chain, i), sel);
        /* The configured root that issued the chain's last certificate. */
        for (int i = 0; r >= 0 && n->x509pop_roots && i < sk_X509_num(n->x509pop_roots); i++) {
                X509 *root = sk_X509_value(n->x509pop_roots, i);

                if (X509_check_issued(root, last) == X509_V_OK &&
                    X509_verify(last, X509_get0_pubkey(root)) == 1)
                        r = add_ca_fingerprint(root, sel);
        }
        ERR_clear_error();
        if (r >= 0)
                r = add_dns_sans(sk_X509_value(chain, 0), sel);
        return r;
}
