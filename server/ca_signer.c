/* SPDX-License-Identifier: Apache-2.0 */
/* Signer snapshots (ca.h, CaSigner): the active X.509 CA and JWT key, referenced and
 * never changed after they are built, so signing threads can use one while the main
 * thread rotates the CA. The DER of the certificates that follow the leaf in SVID
 * chains is encoded once here, not per SVID. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "ca.h"
#include "ca_internal.h"
#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"

struct CaSigner {
        unsigned n_ref; /* atomic */
        char *trust_domain;
        /* X.509: all NULL when there is no current CA */
        X509 *cert;
        EVP_PKEY *key;
        int64_t not_after;
        STACK_OF(X509) * chain; /* after the leaf: upstream mode, our CA and the upstream's */
        CaDer *chain_der;
        size_t n_chain_der;
        /* JWT: NULL when there is no current key */
        EVP_PKEY *jwt_key;
        char *jwt_kid;
        int64_t jwt_not_after;
};

static int64_t min64(int64_t a, int64_t b) {
        return a < b ? a : b;
}

static CaSigner *signer_free(CaSigner *s) {
        if (!s)
                return NULL;
        free(s->trust_domain);
        X509_free(s->cert);
        EVP_PKEY_free(s->key);
        sk_X509_pop_free(s->chain, X509_free);
        for (size_t i = 0; i < s->n_chain_der; i++)
                free(s->chain_der[i].data);
        free(s->chain_der);
        EVP_PKEY_free(s->jwt_key);
        free(s->jwt_kid);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CaSigner *, signer_free)

CaSigner *ca_signer_ref(CaSigner *s) {
        if (s)
                __atomic_add_fetch(&s->n_ref, 1, __ATOMIC_RELAXED);
        return s;
}

CaSigner *ca_signer_unref(CaSigner *s) {
        if (s && __atomic_sub_fetch(&s->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                signer_free(s);
        return NULL;
}

static int push_ref(STACK_OF(X509) * chain, X509 *cert) {
        if (X509_up_ref(cert) != 1)
                return -ENOMEM;
        if (!sk_X509_push(chain, cert)) {
                X509_free(cert);
                return -ENOMEM;
        }
        return 0;
}

static int signer_set_x509(CaSigner *s, const Ca *ca, const CaSlot *cur) {
        int n, r;

        if (X509_up_ref(cur->cert) != 1 || (s->cert = cur->cert, EVP_PKEY_up_ref(cur->key) != 1))
                return -ENOMEM;
        s->key = cur->key;
        s->not_after = cur->not_after;
        /* Fill OpenSSL's lazily built caches (extensions, public key) here, on one
         * thread, before the certificate is shared. */
        (void) X509_check_purpose(s->cert, -1, 0);
        (void) X509_get0_pubkey(s->cert);
        s->chain = sk_X509_new_null();
        if (!s->chain)
                return -ENOMEM;
        if (ca->upstream_cert) {
                r = push_ref(s->chain, cur->cert);
                for (int i = 0; r >= 0 && i < sk_X509_num(ca->upstream_chain); i++)
                        r = push_ref(s->chain, sk_X509_value(ca->upstream_chain, i));
                if (r < 0)
                        return r;
        }
        n = sk_X509_num(s->chain);
        if (n == 0)
                return 0;
        s->chain_der = calloc((size_t) n, sizeof(CaDer));
        if (!s->chain_der)
                return -ENOMEM;
        for (; s->n_chain_der < (size_t) n; s->n_chain_der++) {
                CaDer *d = &s->chain_der[s->n_chain_der];

                r = warden_x509_to_der(sk_X509_value(s->chain, (int) s->n_chain_der), &d->data,
                                       &d->len);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int signer_new(const Ca *ca, const CaSlot *x509, const CaSlot *jwt, CaSigner **ret) {
        _cleanup_(signer_freep) CaSigner *s = calloc(1, sizeof(CaSigner));
        int r;

        if (!s)
                return -ENOMEM;
        s->n_ref = 1;
        s->trust_domain = strdup(ca->trust_domain);
        if (!s->trust_domain)
                return -ENOMEM;
        if (x509) {
                r = signer_set_x509(s, ca, x509);
                if (r < 0)
                        return r;
        }
        if (jwt) {
                if (EVP_PKEY_up_ref(jwt->key) != 1)
                        return -ENOMEM;
                s->jwt_key = jwt->key;
                s->jwt_kid = strdup(jwt->kid);
                if (!s->jwt_kid)
                        return -ENOMEM;
                s->jwt_not_after = jwt->not_after;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int ca_get_signer(Ca *ca, CaSigner **ret) {
        const CaSlot *x509, *jwt;
        CaSigner *s;
        int r;

        if (!ca || !ret)
                return -EINVAL;
        x509 = ca_slot_find_const(ca, CA_KIND_X509, CA_ROLE_CURRENT);
        jwt = ca_slot_find_const(ca, CA_KIND_JWT, CA_ROLE_CURRENT);
        /* The snapshot holds references on the slot's certificate and key, so a
         * pointer match is the same authority (the address cannot have been reused). */
        s = ca->signer;
        if (!s || s->cert != (x509 ? x509->cert : NULL) || s->jwt_key != (jwt ? jwt->key : NULL)) {
                r = signer_new(ca, x509, jwt, &s);
                if (r < 0)
                        return r;
                ca_signer_unref(ca->signer);
                ca->signer = s;
        }
        *ret = ca_signer_ref(s);
        return 0;
}

int ca_signer_sign(const CaSigner *s,
                   EVP_PKEY *public_key,
                   const char *spiffe_id,
                   const char *const *dns_names,
                   size_t n_dns_names,
                   int64_t ttl,
                   time_t now,
                   bool for_der,
                   X509 **ret_leaf) {
        if (!s || !public_key || !spiffe_id || ttl <= 0 || !ret_leaf)
                return -EINVAL;
        if (!warden_spiffeid_member_of(spiffe_id, s->trust_domain))
                return log_debug_errno(-EINVAL, "%s is not in trust domain %s", spiffe_id,
                                       s->trust_domain);
        if (!s->cert || s->not_after <= (int64_t) now)
                return -EKEYEXPIRED;

        WardenSvidParams p = {
                .ca_cert = s->cert,
                .ca_key = s->key,
                .public_key = public_key,
                .spiffe_id = spiffe_id,
                .dns_names = dns_names,
                .n_dns_names = n_dns_names,
                .ttl_seconds = min64(ttl, s->not_after - (int64_t) now),
                .now = now,
        };
        return for_der ? warden_svid_sign_for_der(&p, ret_leaf) : warden_svid_sign(&p, ret_leaf);
}

int ca_signer_sign_x509_svid(const CaSigner *s,
                             EVP_PKEY *public_key,
                             const char *spiffe_id,
                             const char *const *dns_names,
                             size_t n_dns_names,
                             int64_t ttl,
                             time_t now,
                             X509 **ret_leaf) {
        return ca_signer_sign(s, public_key, spiffe_id, dns_names, n_dns_names, ttl, now, true,
                              ret_leaf);
}

size_t ca_signer_chain_der(const CaSigner *s, const CaDer **ret) {
        *ret = s ? s->chain_der : NULL;
        return s ? s->n_chain_der : 0;
}

STACK_OF(X509) * ca_signer_chain(const CaSigner *s) {
        return s ? s->chain : NULL;
}

int ca_signer_mint_jwt_svid(const CaSigner *s,
                            const char *spiffe_id,
                            const char *const *audiences,
                            size_t n_audiences,
                            int64_t ttl,
                            time_t now,
                            char **ret_token,
                            int64_t *ret_expires_at) {
        _cleanup_erase_ char *token = NULL;
        int r;

        if (!s || !spiffe_id || ttl <= 0 || !ret_token)
                return -EINVAL;
        if (!warden_spiffeid_member_of(spiffe_id, s->trust_domain))
                return log_debug_errno(-EINVAL, "%s is not in trust domain %s", spiffe_id,
                                       s->trust_domain);
        if (!s->jwt_key || s->jwt_not_after <= (int64_t) now)
                return -EKEYEXPIRED;
        ttl = min64(ttl, s->jwt_not_after - (int64_t) now);

        WardenJwtMintParams p = {
                .key = s->jwt_key,
                .kid = s->jwt_kid,
                .spiffe_id = spiffe_id,
                .audiences = audiences,
                .n_audiences = n_audiences,
                .ttl = ttl,
                .now = now,
        };
        r = warden_jwtsvid_mint(&p, &token);
        if (r < 0)
                return r;
        *ret_token = TAKE_PTR(token);
        if (ret_expires_at)
                *ret_expires_at = (int64_t) now + ttl;
        return 0;
}
