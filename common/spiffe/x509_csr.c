/* SPDX-License-Identifier: Apache-2.0 */
/* PKCS#10 certificate signing requests. Only the key of a peer's CSR matters: the
 * server decides the identity, so names in a request are never read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
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
