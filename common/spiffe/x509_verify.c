/* SPDX-License-Identifier: Apache-2.0 */
/* X509-SVID verification: the leaf rules of spec/SPIFFE-FACTS.md §3 plus RFC 5280
 * path validation through OpenSSL's X509_STORE_CTX. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

/* Longest chain we walk (leaf + intermediates + anchor). */
#define VERIFY_MAX_DEPTH 16

DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_BIT_STRING *, ASN1_BIT_STRING_free)

static int fail(int r, const char *reason, const char **reterr_reason) {
        ERR_clear_error();
        if (reterr_reason)
                *reterr_reason = reason;
        return log_debug_errno(r, "Certificate refused: %s", reason);
}

/* Finds the only URI SAN: NULL and *ret_uri (borrowed from *ret_gens, which the
 * caller frees), or a reason. */
static const char *leaf_uri(const X509 *leaf, GENERAL_NAMES **ret_gens, const char **ret_uri) {
        GENERAL_NAMES *gens;
        const char *uri = NULL;
        int crit = -1, n = 0;

        gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
        if (!gens)
                return crit == -1 ? "no URI SAN" : "malformed extensions";
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                if (g->type != GEN_URI)
                        continue;
                n++;
                uri = (const char *) ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
                /* An embedded NUL would make the C string differ from the SAN. */
                if (!uri ||
                    (size_t) ASN1_STRING_length(g->d.uniformResourceIdentifier) != strlen(uri))
                        uri = "";
        }
        *ret_gens = gens;
        if (n == 0)
                return "no URI SAN";
        if (n > 1)
                return "more than one URI SAN";
        *ret_uri = uri;
        return NULL;
}

/* The cert's one URI SAN as a SPIFFE ID (malloc'd): 0, -ENOMEM, or -EBADMSG and a
 * reason. */
static int uri_spiffe_id(const X509 *cert, bool need_path, char **ret_id, const char **ret_reason) {
        GENERAL_NAMES *gens = NULL;
        const char *reason, *uri = NULL;
        char *id = NULL;

        reason = leaf_uri(cert, &gens, &uri);
        if (!reason && warden_spiffeid_validate(uri, NULL) < 0)
                reason = "invalid SPIFFE ID in URI SAN";
        if (!reason && need_path && warden_spiffeid_validate_workload(uri, NULL) < 0)
                reason = "SPIFFE ID has no path";
        if (!reason) {
                id = strdup(uri);
                GENERAL_NAMES_free(gens);
                if (!id)
                        return -ENOMEM;
                *ret_id = id;
                return 0;
        }
        GENERAL_NAMES_free(gens);
        *ret_reason = reason;
        return -EBADMSG;
}

int warden_x509_spiffe_id(const X509 *cert, char **ret) {
        const char *reason = NULL;
        int r;

        if (!cert || !ret)
                return -EINVAL;
        r = uri_spiffe_id(cert, false, ret, &reason);
        if (r == -EBADMSG)
                return fail(r, reason, NULL);
        return r;
}

static const char *leaf_constraints(const X509 *leaf) {
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = NULL;
        _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = NULL;
        int crit = -1;

        bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
        if (!bc && crit != -1)
                return "malformed extensions";
        if (bc && bc->ca)
                return "leaf is a CA";
        ku = X509_get_ext_d2i(leaf, NID_key_usage, &crit, NULL);
        if (!ku)
                return crit == -1 ? "missing key usage" : "malformed extensions";
        if (!ASN1_BIT_STRING_get_bit(ku, X509_KU_BIT_DIGITAL_SIGNATURE))
                return "missing digital signature key usage";
        if (ASN1_BIT_STRING_get_bit(ku, X509_KU_BIT_KEY_CERT_SIGN))
                return "leaf has keyCertSign";
        if (ASN1_BIT_STRING_get_bit(ku, X509_KU_BIT_CRL_SIGN))
                return "leaf has cRLSign";
        return NULL;
}

/* Leaf rules; on success *ret_id (may be NULL) gets the SPIFFE ID. */
static int check_leaf(X509 *leaf, char **ret_id, const char **reterr_reason) {
        _cleanup_free_ char *id = NULL;
        const char *reason = NULL;
        int r;

        if (!leaf)
                return -EINVAL;
        r = uri_spiffe_id(leaf, true, &id, &reason);
        if (r == -EBADMSG)
                return fail(r, reason, reterr_reason);
        if (r < 0)
                return r;
        reason = leaf_constraints(leaf);
        if (reason)
                return fail(-EBADMSG, reason, reterr_reason);
        if (ret_id)
                *ret_id = TAKE_PTR(id);
        return 0;
}

int warden_svid_check_leaf(X509 *leaf, const char **reterr_reason) {
        return check_leaf(leaf, NULL, reterr_reason);
}

static const char *chain_error_reason(int err, int *ret_errno) {
        *ret_errno = -EKEYREJECTED;
        switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
                *ret_errno = -EKEYEXPIRED;
                return "expired";
        case X509_V_ERR_CERT_NOT_YET_VALID:
                *ret_errno = -EKEYEXPIRED;
                return "not yet valid";
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_REJECTED:
                return "untrusted chain";
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
                return "bad signature";
        case X509_V_ERR_INVALID_CA:
                return "issuer is not a CA";
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        case X509_V_ERR_PATH_LENGTH_EXCEEDED:
                return "chain too long";
        default:
                return "chain does not verify";
        }
}

/* A store holding every root as a trust anchor. */
static int make_store(STACK_OF(X509) * roots, X509_STORE **ret) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();

        if (!store)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(roots); i++)
                if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1)
                        return ossl_to_errno(-EIO);
        *ret = TAKE_PTR(store);
        return 0;
}

int warden_x509_verify_path_to_roots(X509 *leaf,
                                     STACK_OF(X509) * intermediates,
                                     STACK_OF(X509) * roots,
                                     time_t now,
                                     STACK_OF(X509) * *ret_path,
                                     const char **reterr_reason) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
        X509_VERIFY_PARAM *param;
        const char *reason;
        int r, err;

        if (!leaf || !roots)
                return -EINVAL;
        if (sk_X509_num(roots) <= 0)
                return fail(-EKEYREJECTED, "untrusted chain", reterr_reason);
        if (intermediates && sk_X509_num(intermediates) >= VERIFY_MAX_DEPTH)
                return fail(-EKEYREJECTED, "chain too long", reterr_reason);
        r = make_store(roots, &store);
        if (r < 0)
                return r;
        ctx = X509_STORE_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (X509_STORE_CTX_init(ctx, store, leaf, intermediates) != 1)
                return ossl_to_errno(-EIO);
        param = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(param, now > 0 ? now : time(NULL));
        X509_VERIFY_PARAM_set_depth(param, VERIFY_MAX_DEPTH);
        /* Every bundle cert is a trust anchor, as Go's crypto/x509 Roots are. */
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
        if (X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) != 1)
                return ossl_to_errno(-EIO);
        if (X509_verify_cert(ctx) == 1) {
                if (ret_path) {
                        *ret_path = X509_STORE_CTX_get1_chain(ctx);
                        if (!*ret_path)
                                return ossl_to_errno(-ENOMEM);
                }
                return 0;
        }
        err = X509_STORE_CTX_get_error(ctx);
        log_debug("Chain verification failed at depth %d: %s", X509_STORE_CTX_get_error_depth(ctx),
                  X509_verify_cert_error_string(err));
        reason = chain_error_reason(err, &r);
        return fail(r, reason, reterr_reason);
}

int warden_x509_verify_chain_to_roots(X509 *leaf,
                                      STACK_OF(X509) * intermediates,
                                      STACK_OF(X509) * roots,
                                      time_t now,
                                      const char **reterr_reason) {
        return warden_x509_verify_path_to_roots(leaf, intermediates, roots, now, NULL,
                                                reterr_reason);
}

static int check_intermediates(STACK_OF(X509) * intermediates, const char **reterr_reason) {
        for (int i = 0; i < sk_X509_num(intermediates); i++) {
                const X509 *x = sk_X509_value(intermediates, i);
                BASIC_CONSTRAINTS *bc;
                int crit = -1;
                bool ca;

                bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
                ca = bc && bc->ca;
                BASIC_CONSTRAINTS_free(bc);
                if (!ca)
                        return fail(-EBADMSG, "intermediate is not a CA", reterr_reason);
                if (!x509_is_ca_with_cert_sign(x))
                        return fail(-EBADMSG, "intermediate lacks keyCertSign", reterr_reason);
        }
        return 0;
}

int warden_svid_verify(X509 *leaf,
                       STACK_OF(X509) * intermediates,
                       STACK_OF(X509) * roots,
                       time_t now,
                       char **ret_spiffe_id,
                       const char **reterr_reason) {
        _cleanup_free_ char *id = NULL;
        int r;

        if (!leaf || !roots)
                return -EINVAL;
        r = check_leaf(leaf, &id, reterr_reason);
        if (r < 0)
                return r;
        r = check_intermediates(intermediates, reterr_reason);
        if (r < 0)
                return r;
        r = warden_x509_verify_chain_to_roots(leaf, intermediates, roots, now, reterr_reason);
        if (r < 0)
                return r;
        if (ret_spiffe_id)
                *ret_spiffe_id = TAKE_PTR(id);
        return 0;
}
