/* SPDX-License-Identifier: Apache-2.0 */
#include "jws.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#include "jwk.h"
#include "ossl_cleanup.h"

typedef enum SigKind {
        SIG_PKCS1,
        SIG_PSS,
        SIG_ECDSA,
} SigKind;

typedef struct AlgInfo {
        const char *name;
        const char *md;
        SigKind kind;
        int curve_nid; /* ECDSA only */
} AlgInfo;

static const AlgInfo algs[_JWS_ALG_MAX] = {
        [JWS_RS256] = {"RS256", "SHA256", SIG_PKCS1, 0},
        [JWS_RS384] = {"RS384", "SHA384", SIG_PKCS1, 0},
        [JWS_RS512] = {"RS512", "SHA512", SIG_PKCS1, 0},
        [JWS_ES256] = {"ES256", "SHA256", SIG_ECDSA, NID_X9_62_prime256v1},
        [JWS_ES384] = {"ES384", "SHA384", SIG_ECDSA, NID_secp384r1},
        [JWS_ES512] = {"ES512", "SHA512", SIG_ECDSA, NID_secp521r1},
        [JWS_PS256] = {"PS256", "SHA256", SIG_PSS, 0},
        [JWS_PS384] = {"PS384", "SHA384", SIG_PSS, 0},
        [JWS_PS512] = {"PS512", "SHA512", SIG_PSS, 0},
};

JwsAlg jws_alg_from_string(const char *s) {
        if (!s)
                return _JWS_ALG_INVALID;
        for (int i = 0; i < _JWS_ALG_MAX; i++)
                if (streq(algs[i].name, s))
                        return (JwsAlg) i;
        return _JWS_ALG_INVALID;
}

const char *jws_alg_to_string(JwsAlg alg) {
        if (alg < 0 || alg >= _JWS_ALG_MAX)
                return NULL;
        return algs[alg].name;
}

int jws_alg_for_key(const EVP_PKEY *key, JwsAlg *ret) {
        JwkKeyInfo info;
        int r;

        r = jwk_key_info(key, &info, NULL);
        if (r < 0)
                return r;
        if (info.type == JWK_KEY_RSA)
                *ret = JWS_RS256;
        else if (info.curve_nid == NID_X9_62_prime256v1)
                *ret = JWS_ES256;
        else if (info.curve_nid == NID_secp384r1)
                *ret = JWS_ES384;
        else
                *ret = JWS_ES512;
        return 0;
}

/* On success *ret_coord_len is the ECDSA coordinate size (0 for RSA). */
static int check_key(JwsAlg alg, const EVP_PKEY *key, size_t *ret_coord_len) {
        JwkKeyInfo info;

        if (alg < 0 || alg >= _JWS_ALG_MAX)
                return -EINVAL;
        if (jwk_key_info(key, &info, NULL) < 0)
                return -EKEYREJECTED;
        if (algs[alg].kind == SIG_ECDSA) {
                if (info.type != JWK_KEY_EC || info.curve_nid != algs[alg].curve_nid)
                        return -EKEYREJECTED;
                *ret_coord_len = info.coord_len;
        } else {
                if (info.type != JWK_KEY_RSA)
                        return -EKEYREJECTED;
                *ret_coord_len = 0;
        }
        return 0;
}

int jws_alg_check_key(JwsAlg alg, const EVP_PKEY *key) {
        size_t coord_len;

        return check_key(alg, key, &coord_len);
}

/* Creates a digest context set up for alg (PSS padding and salt length included). */
static int md_ctx_new(JwsAlg alg, EVP_PKEY *key, bool sign, EVP_MD_CTX **ret) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        int k;

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (sign)
                k = EVP_DigestSignInit_ex(ctx, &pctx, algs[alg].md, NULL, NULL, key, NULL);
        else
                k = EVP_DigestVerifyInit_ex(ctx, &pctx, algs[alg].md, NULL, NULL, key, NULL);
        if (k != 1)
                return ossl_to_errno(-EINVAL);
        if (algs[alg].kind == SIG_PSS &&
            (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
                return ossl_to_errno(-EINVAL);

        *ret = TAKE_PTR(ctx);
        return 0;
}

/* DER ECDSA-Sig-Value → r||s, each padded to coord_len bytes. */
static int ecdsa_der_to_jose(const uint8_t *der, size_t der_len, size_t coord_len, uint8_t *out) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
        const unsigned char *p = der;
        const BIGNUM *r, *s;

        sig = d2i_ECDSA_SIG(NULL, &p, (long) der_len);
        if (!sig)
                return ossl_to_errno(-EINVAL);
        ECDSA_SIG_get0(sig, &r, &s);
        if (BN_bn2binpad(r, out, (int) coord_len) < 0 ||
            BN_bn2binpad(s, out + coord_len, (int) coord_len) < 0)
                return ossl_to_errno(-EINVAL);
        return 0;
}

/* r||s → DER ECDSA-Sig-Value (malloc'd by OpenSSL). */
static int ecdsa_jose_to_der(const uint8_t *sig, size_t coord_len, uint8_t **ret, size_t *ret_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *e = NULL;
        _cleanup_(BN_freep) BIGNUM *r = NULL, *s = NULL;
        unsigned char *der = NULL;
        int n;

        r = BN_bin2bn(sig, (int) coord_len, NULL);
        s = BN_bin2bn(sig + coord_len, (int) coord_len, NULL);
        e = ECDSA_SIG_new();
        if (!r || !s || !e)
                return ossl_to_errno(-ENOMEM);
        if (ECDSA_SIG_set0(e, r, s) != 1)
                return ossl_to_errno(-ENOMEM);
        r = s = NULL; /* owned by e now */

        n = i2d_ECDSA_SIG(e, &der);
        if (n <= 0)
                return ossl_to_errno(-ENOMEM);
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

int jws_sign(JwsAlg alg,
             EVP_PKEY *key,
             const void *data,
             size_t len,
             uint8_t **ret_sig,
             size_t *ret_sig_len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *sig = NULL, *jose = NULL;
        size_t coord_len, sig_len = 0;
        int r;

        if (!key || (!data && len > 0) || !ret_sig || !ret_sig_len)
                return -EINVAL;
        r = check_key(alg, key, &coord_len);
        if (r < 0)
                return r;
        r = md_ctx_new(alg, key, true, &ctx);
        if (r < 0)
                return r;
        if (EVP_DigestSign(ctx, NULL, &sig_len, data, len) != 1)
                return ossl_to_errno(-EINVAL);
        sig = malloc(sig_len);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(ctx, sig, &sig_len, data, len) != 1)
                return ossl_to_errno(-EINVAL);

        if (algs[alg].kind == SIG_ECDSA) {
                jose = malloc(2 * coord_len);
                if (!jose)
                        return -ENOMEM;
                r = ecdsa_der_to_jose(sig, sig_len, coord_len, jose);
                if (r < 0)
                        return r;
                *ret_sig = TAKE_PTR(jose);
                *ret_sig_len = 2 * coord_len;
                return 0;
        }

        *ret_sig = TAKE_PTR(sig);
        *ret_sig_len = sig_len;
        return 0;
}

int jws_verify(JwsAlg alg,
               EVP_PKEY *key,
               const void *data,
               size_t len,
               const uint8_t *sig,
               size_t sig_len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        uint8_t *der = NULL;
        size_t coord_len, der_len = 0;
        int r, k;

        if (!key || (!data && len > 0) || (!sig && sig_len > 0))
                return -EINVAL;
        r = check_key(alg, key, &coord_len);
        if (r < 0)
                return r;

        if (algs[alg].kind == SIG_ECDSA) {
                if (sig_len != 2 * coord_len)
                        return -EKEYREJECTED;
                r = ecdsa_jose_to_der(sig, coord_len, &der, &der_len);
                if (r < 0)
                        return r;
                sig = der;
                sig_len = der_len;
        }

        r = md_ctx_new(alg, key, false, &ctx);
        if (r >= 0) {
                k = EVP_DigestVerify(ctx, sig, sig_len, data, len);
                r = k == 1 ? 0 : ossl_to_errno(-EKEYREJECTED);
        }
        OPENSSL_free(der);
        return r;
}
