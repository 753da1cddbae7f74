/* SPDX-License-Identifier: Apache-2.0 */
/* PKCS#10 certificate signing requests. Only the key of a peer's CSR matters: the
 * server decides the identity, so names in a request are never read. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

static void x509_extension_stack_freep(STACK_OF(X509_EXTENSION) * *p) {
        if (*p)
                sk_X509_EXTENSION_pop_free(*p, X509_EXTENSION_free);
}

/* Adds a URI SAN (critical, as the subject is empty) to the request. */
static int csr_add_uri_san(X509_REQ *req, const char *uri) {
        _cleanup_(x509_extension_stack_freep) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        X509_EXTENSION *ext;
        GENERAL_NAME *g;
        ASN1_IA5STRING *s;

        if (!gens)
                return -ENOMEM;
        g = GENERAL_NAME_new();
        s = ASN1_IA5STRING_new();
        if (!g || !s || ASN1_STRING_set(s, uri, (int) strlen(uri)) != 1) {
                GENERAL_NAME_free(g);
                ASN1_IA5STRING_free(s);
                return ossl_to_errno(-ENOMEM);
        }
        GENERAL_NAME_set0_value(g, GEN_URI, s);
        if (sk_GENERAL_NAME_push(gens, g) <= 0) {
                GENERAL_NAME_free(g);
                return ossl_to_errno(-ENOMEM);
        }
        exts = sk_X509_EXTENSION_new_null();
        if (!exts)
                return -ENOMEM;
        ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, gens);
        if (!ext)
                return ossl_to_errno(-EIO);
        if (sk_X509_EXTENSION_push(exts, ext) <= 0) {
                X509_EXTENSION_free(ext);
                return ossl_to_errno(-ENOMEM);
        }
        if (X509_REQ_add_extensions(req, exts) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

static int csr_to_der(X509_REQ *req, uint8_t **ret_der, size_t *ret_len) {
        uint8_t *buf, *p;
        int n;

        n = i2d_X509_REQ(req, NULL);
        if (n <= 0)
                return ossl_to_errno(-EIO);
        buf = malloc((size_t) n);
        if (!buf)
                return -ENOMEM;
        p = buf;
        if (i2d_X509_REQ(req, &p) != n) {
                free(buf);
                return ossl_to_errno(-EIO);
        }
        *ret_der = buf;
        *ret_len = (size_t) n;
        return 0;
}

int warden_csr_create(EVP_PKEY *key, const char *spiffe_id, uint8_t **ret_der, size_t *ret_len) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        const char *reason = NULL;
        int r;

        if (!key || !ret_der || !ret_len)
                return -EINVAL;
        if (spiffe_id && warden_spiffeid_validate(spiffe_id, &reason) < 0)
                return log_debug_errno(-EINVAL, "Invalid CSR SPIFFE ID: %s", strna(reason));
        r = x509_key_check_supported(key);
        if (r < 0)
                return r;
        req = X509_REQ_new();
        if (!req)
                return -ENOMEM;
        if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            X509_REQ_set_pubkey(req, key) != 1)
                return ossl_to_errno(-EIO);
        if (spiffe_id) {
                r = csr_add_uri_san(req, spiffe_id);
                if (r < 0)
                        return r;
        }
        if (X509_REQ_sign(req, key, x509_digest_for_key(key)) <= 0)
                return ossl_to_errno(-EIO);
        return csr_to_der(req, ret_der, ret_len);
}

int warden_csr_parse(const uint8_t *der, size_t len, X509_REQ **ret, const char **reterr_reason) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        const uint8_t *p = der;
        const char *reason;
        EVP_PKEY *pkey;
        int r;

        if (!der || !ret)
                return -EINVAL;
        if (len > WARDEN_CSR_MAX_BYTES) {
                reason = "CSR too large";
                r = -EMSGSIZE;
                goto bad;
        }
        req = d2i_X509_REQ(NULL, &p, (long) len);
        if (!req || p != der + len) {
                reason = "malformed CSR";
                r = ossl_to_errno(-EBADMSG);
                goto bad;
        }
        pkey = X509_REQ_get0_pubkey(req);
        if (!pkey || x509_key_check_supported(pkey) < 0) {
                reason = "unsupported CSR key";
                r = -EKEYREJECTED;
                goto bad;
        }
        if (X509_REQ_verify(req, pkey) != 1) {
                reason = "bad CSR signature";
                r = ossl_to_errno(-EKEYREJECTED);
                goto bad;
        }
        *ret = TAKE_PTR(req);
        return 0;
bad:
        ERR_clear_error();
        if (reterr_reason)
                *reterr_reason = reason;
        return log_debug_errno(r, "Refusing CSR: %s", reason);
}

int warden_csr_public_key(X509_REQ *req, EVP_PKEY **ret) {
        EVP_PKEY *pkey;

        if (!req || !ret)
                return -EINVAL;
        pkey = X509_REQ_get_pubkey(req);
        if (!pkey)
                return ossl_to_errno(-EBADMSG);
        *ret = pkey;
        return 0;
}

/* The CSR again, with the SubjectPublicKeyInfo left as its two fields: d2i_X509_REQ()
 * turns it into an EVP_PKEY through OpenSSL 3.0's OSSL_DECODER, which costs ~120 us a
 * CSR. CsrInfo keeps its DER (ASN1_SEQUENCE_enc), so the signature is checked over
 * exactly the bytes received, as X509_REQ_verify() does. */
typedef struct CsrSpki {
        X509_ALGOR *algor;
        ASN1_BIT_STRING *public_key;
} CsrSpki;

typedef struct CsrInfo {
        ASN1_ENCODING enc;
        ASN1_INTEGER *version;
        X509_NAME *subject;
        CsrSpki *spki;
        STACK_OF(X509_ATTRIBUTE) * attributes;
} CsrInfo;

typedef struct CsrDer {
        CsrInfo *info;
        X509_ALGOR *sig_alg;
        ASN1_BIT_STRING *signature;
} CsrDer;

/* clang-format off */
ASN1_SEQUENCE(CsrSpki) = {
        ASN1_SIMPLE(CsrSpki, algor, X509_ALGOR),
        ASN1_SIMPLE(CsrSpki, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CsrSpki)

ASN1_SEQUENCE_enc(CsrInfo, enc, NULL) = {
        ASN1_SIMPLE(CsrInfo, version, ASN1_INTEGER),
        ASN1_SIMPLE(CsrInfo, subject, X509_NAME),
        ASN1_SIMPLE(CsrInfo, spki, CsrSpki),
        ASN1_IMP_SET_OF_OPT(CsrInfo, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CsrInfo, CsrInfo)

ASN1_SEQUENCE(CsrDer) = {
        ASN1_SIMPLE(CsrDer, info, CsrInfo),
        ASN1_SIMPLE(CsrDer, sig_alg, X509_ALGOR),
        ASN1_SIMPLE(CsrDer, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CsrDer)
        /* clang-format on */

        static void csr_der_freep(CsrDer * *p) {
        ASN1_item_free((ASN1_VALUE *) *p, ASN1_ITEM_rptr(CsrDer));
}

/* Parameters-only keys of the curves we accept, made once: a CSR's key is a copy of
 * one plus its point, ~3 times cheaper than EVP_PKEY_fromdata(), which builds the curve
 * (EC_GROUP_new_by_curve_name()) every time. Read-only once made; NULL when making
 * one failed (then EVP_PKEY_fromdata() it is). */
static const int curve_nids[] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
static EVP_PKEY *curve_params[ELEMENTSOF(curve_nids)];
static pthread_once_t curve_params_once = PTHREAD_ONCE_INIT;

static void curve_params_init(void) {
        for (size_t i = 0; i < ELEMENTSOF(curve_nids); i++) {
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;

                ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                if (!ctx || EVP_PKEY_paramgen_init(ctx) != 1 ||
                    EVP_PKEY_CTX_set_group_name(ctx, OBJ_nid2sn(curve_nids[i])) != 1 ||
                    EVP_PKEY_paramgen(ctx, &curve_params[i]) != 1)
                        curve_params[i] = NULL;
        }
        ERR_clear_error();
}

static int ec_key_from_template(const EVP_PKEY *params,
                                const ASN1_BIT_STRING *point,
                                EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_new();

        if (!key)
                return -ENOMEM;
        if (EVP_PKEY_copy_parameters(key, params) != 1 ||
            EVP_PKEY_set1_encoded_public_key(key, point->data, (size_t) point->length) != 1)
                return ossl_to_errno(-EKEYREJECTED);
        *ret = TAKE_PTR(key);
        return 0;
}

/* The EC key of spki when it names its curve (else -EOPNOTSUPP: not for the fast path),
 * built from its parameters without a decoder; -EKEYREJECTED for a curve we do not
 * accept or a point that is not on it. */
static int spki_ec_key(const CsrSpki *spki, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        const ASN1_OBJECT *alg;
        const void *param;
        EVP_PKEY *key = NULL;
        int ptype, nid;

        X509_ALGOR_get0(&alg, &ptype, &param, spki->algor);
        if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT)
                return -EOPNOTSUPP;
        nid = OBJ_obj2nid(param);
        (void) pthread_once(&curve_params_once, curve_params_init);
        for (size_t i = 0; i < ELEMENTSOF(curve_nids); i++)
                if (nid == curve_nids[i] && curve_params[i])
                        return ec_key_from_template(curve_params[i], spki->public_key, ret);
        if (nid == NID_undef || !OBJ_nid2sn(nid))
                return -EKEYREJECTED;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *) OBJ_nid2sn(nid), 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, spki->public_key->data,
                                                  (size_t) spki->public_key->length),
                OSSL_PARAM_construct_end(),
        };
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx)
                return ossl_to_errno(-ENOMEM);
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1 || !key)
                return ossl_to_errno(-EKEYREJECTED);
        *ret = key;
        return 0;
}

/* The slow path: warden_csr_parse(), then its key. */
static int csr_key_via_req(const uint8_t *der, size_t len, EVP_PKEY **ret, const char **reason) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        int r;

        r = warden_csr_parse(der, len, &req, reason);
        return r < 0 ? r : warden_csr_public_key(req, ret);
}

int warden_csr_parse_public_key(const uint8_t *der,
                                size_t len,
                                EVP_PKEY **ret,
                                const char **reterr_reason) {
        _cleanup_(csr_der_freep) CsrDer *csr = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const uint8_t *p = der;
        const char *reason;
        int r;

        if (!der || !ret)
                return -EINVAL;
        if (len > WARDEN_CSR_MAX_BYTES || len > LONG_MAX)
                return csr_key_via_req(der, len, ret, reterr_reason);
        csr = (CsrDer *) ASN1_item_d2i(NULL, &p, (long) len, ASN1_ITEM_rptr(CsrDer));
        if (!csr || p != der + len) {
                ERR_clear_error();
                /* The slow path gives the same refusal, with its reason. */
                return csr_key_via_req(der, len, ret, reterr_reason);
        }
        r = spki_ec_key(csr->info->spki, &key);
        if (r == -EOPNOTSUPP)
                return csr_key_via_req(der, len, ret, reterr_reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || x509_key_check_supported(key) < 0) {
                reason = "unsupported CSR key";
                r = -EKEYREJECTED;
                goto bad;
        }
        if (ASN1_item_verify(ASN1_ITEM_rptr(CsrInfo), csr->sig_alg, csr->signature, csr->info,
                             key) != 1) {
                reason = "bad CSR signature";
                r = ossl_to_errno(-EKEYREJECTED);
                goto bad;
        }
        *ret = TAKE_PTR(key);
        return 0;
bad:
        ERR_clear_error();
        if (reterr_reason)
                *reterr_reason = reason;
        return log_debug_errno(r, "Refusing CSR: %s", reason);
}
