/* SPDX-License-Identifier: Apache-2.0 */
#include "jwk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "jose_b64.h"
#include "ossl_cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)

typedef struct Curve {
        const char *crv;
        const char *group;
        int nid;
        size_t coord_len;
} Curve;

static const Curve curves[] = {
        {"P-256", "prime256v1", NID_X9_62_prime256v1, 32},
        {"P-384", "secp384r1", NID_secp384r1, 48},
        {"P-521", "secp521r1", NID_secp521r1, 66},
};

static const Curve *curve_by_nid(int nid) {
        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                if (curves[i].nid == nid)
                        return &curves[i];
        return NULL;
}

static const Curve *curve_by_crv(const char *crv) {
        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                if (streq(curves[i].crv, crv))
                        return &curves[i];
        return NULL;
}

int jwk_key_info(const EVP_PKEY *key, JwkKeyInfo *ret, const char **reterr_reason) {
        const char *reason;
        char group[64];
        int nid;

        if (!key || !ret)
                return -EINVAL;

        switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_EC: {
                if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1) {
                        reason = "EC key without a named curve";
                        goto unsupported;
                }
                nid = OBJ_txt2nid(group);
                if (nid == NID_undef)
                        nid = EC_curve_nist2nid(group);
                const Curve *c = curve_by_nid(nid);
                if (!c) {
                        reason = "unsupported EC curve";
                        goto unsupported;
                }
                *ret = (JwkKeyInfo){.type = JWK_KEY_EC,
                                    .curve_nid = c->nid,
                                    .crv = c->crv,
                                    .coord_len = c->coord_len,
                                    .bits = EVP_PKEY_get_bits(key)};
                return 0;
        }
        case EVP_PKEY_RSA: {
                int bits = EVP_PKEY_get_bits(key);
                if (bits < JWK_RSA_MIN_BITS || bits > JWK_RSA_MAX_BITS) {
                        if (reterr_reason)
                                *reterr_reason = bits < JWK_RSA_MIN_BITS ? "RSA key too short"
                                                                         : "RSA key too long";
                        return -EINVAL;
                }
                *ret = (JwkKeyInfo){.type = JWK_KEY_RSA, .bits = bits};
                return 0;
        }
        default:
                reason = "unsupported key type";
                goto unsupported;
        }

unsupported:
        if (reterr_reason)
                *reterr_reason = reason;
        return -EOPNOTSUPP;
}

int jwk_public_copy(const EVP_PKEY *key, EVP_PKEY **ret) {
        _cleanup_free_ unsigned char *der = NULL;
        const unsigned char *p;
        JwkKeyInfo info;
        EVP_PKEY *pub;
        int n, r;

        r = jwk_key_info(key, &info, NULL);
        if (r < 0)
                return r;

        n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return ossl_to_errno(-EINVAL);
        p = der;
        pub = d2i_PUBKEY(NULL, &p, n);
        if (!pub)
                return ossl_to_errno(-EINVAL);
        *ret = pub;
        return 0;
}

/* Sets o[name] = base64url(bn), left-padded with zeros to `pad` bytes (0 = minimal). */
static int set_bn(json_t *o, const char *name, const BIGNUM *bn, size_t pad) {
        _cleanup_free_ unsigned char *buf = NULL;
        _cleanup_free_ char *s = NULL;
        size_t len = pad > 0 ? pad : (size_t) BN_num_bytes(bn);
        int r;

        if (len == 0 || len > JWK_RSA_MAX_BITS / 8)
                return -EINVAL;
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        if (BN_bn2binpad(bn, buf, (int) len) < 0)
                return ossl_to_errno(-EINVAL);
        r = jose_b64url_encode(buf, len, &s);
        if (r < 0)
                return r;
        if (json_object_set_new(o, name, json_string(s)) < 0)
                return -ENOMEM;
        return 0;
}

static int set_bn_param(
        json_t *o, const char *name, const EVP_PKEY *key, const char *param, size_t pad) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;

        if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
                return ossl_to_errno(-EINVAL);
        return set_bn(o, name, bn, pad);
}

static int set_str(json_t *o, const char *name, const char *value) {
        if (!value)
                return 0;
        return json_object_set_new(o, name, json_string(value)) < 0 ? -ENOMEM : 0;
}

static int set_x5c(json_t *o, X509 *cert) {
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        json_t *a;
        int n, r;

        n = i2d_X509(cert, &der);
        if (n <= 0)
                return ossl_to_errno(-EINVAL);
        r = jose_b64_encode(der, (size_t) n, &b64);
        if (r < 0)
                return r;
        a = json_array();
        if (!a || json_object_set_new(o, "x5c", a) < 0)
                return -ENOMEM;
        if (json_array_append_new(a, json_string(b64)) < 0)
                return -ENOMEM;
        return 0;
}

int jwk_from_pkey(const EVP_PKEY *key, const char *use, const char *kid, X509 *x5c, json_t **ret) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        JwkKeyInfo info;
        int r;

        r = jwk_key_info(key, &info, NULL);
        if (r < 0)
                return r;

        o = json_object();
        if (!o)
                return -ENOMEM;
        r = set_str(o, "use", use);
        if (r >= 0)
                r = set_str(o, "kty", info.type == JWK_KEY_EC ? "EC" : "RSA");
        if (r >= 0)
                r = set_str(o, "kid", kid);
        if (r < 0)
                return r;

        if (info.type == JWK_KEY_EC) {
                r = set_str(o, "crv", info.crv);
                if (r >= 0)
                        r = set_bn_param(o, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, info.coord_len);
                if (r >= 0)
                        r = set_bn_param(o, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y, info.coord_len);
        } else {
                r = set_bn_param(o, "n", key, OSSL_PKEY_PARAM_RSA_N, 0);
                if (r >= 0)
                        r = set_bn_param(o, "e", key, OSSL_PKEY_PARAM_RSA_E, 0);
        }
        if (r >= 0 && x5c)
                r = set_x5c(o, x5c);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

/* Decodes the base64url string member `name`; its decoded size must lie in [min, max]. */
static int get_b64(const json_t *jwk,
                   const char *name,
                   size_t min,
                   size_t max,
                   uint8_t **ret,
                   size_t *ret_len,
                   const char **reterr_reason) {
        const json_t *v = json_object_get(jwk, name);
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        if (!json_is_string(v)) {
                *reterr_reason = "JWK key parameter missing or not a string";
                return -EINVAL;
        }
        if (json_string_length(v) > (max + 2) / 3 * 4) {
                *reterr_reason = "JWK key parameter too long";
                return -EINVAL;
        }
        r = jose_b64url_decode(json_string_value(v), json_string_length(v), &buf, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *reterr_reason = "JWK key parameter is not valid base64url";
                return -EINVAL;
        }
        if (len < min || len > max) {
                *reterr_reason = "JWK key parameter has a wrong length";
                return -EINVAL;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* Imports params as a public key of type `name`; with public_check, then runs OpenSSL's
 * public-key check (EC: coordinates in range and point on the curve). */
static int import_public(const char *name, OSSL_PARAM *params, bool public_check, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL, *check = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
        if (!ctx)
                return ossl_to_errno(-ENOMEM);
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
                return ossl_to_errno(-EINVAL);
        if (public_check) {
                check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
                if (!check)
                        return ossl_to_errno(-ENOMEM);
                if (EVP_PKEY_public_check(check) != 1)
                        return ossl_to_errno(-EINVAL);
        }
        *ret = TAKE_PTR(key);
        return 0;
}

/* A sane RSA modulus: odd, no factor below 752, not a prime (the rules of OpenSSL's RSA
 * public check, SP 800-56B). That check is not used: it tells "composite, factor found"
 * from "composite" with random bases, so it accepted a bogus modulus one time and refused
 * it the next (found by fuzz_bundle_json), and a document must get the same answer every
 * time. BN_check_prime() only errs for a composite that passes all its rounds. */
static int rsa_modulus_check(const BIGNUM *n) {
        int r;

        if (!BN_is_odd(n))
                return -EINVAL;
        for (BN_ULONG d = 3; d < 752; d += 2)
                if (BN_mod_word(n, d) == 0)
                        return -EINVAL;
        r = BN_check_prime(n, NULL, NULL);
        if (r < 0)
                return ossl_to_errno(-ENOMEM);
        return r == 0 ? 0 : -EINVAL;
}

static int ec_from_jwk(const json_t *jwk, EVP_PKEY **ret, const char **reterr_reason) {
        _cleanup_free_ uint8_t *x = NULL, *y = NULL, *pub = NULL;
        const json_t *crv = json_object_get(jwk, "crv");
        const Curve *c;
        size_t x_len, y_len;
        int r;

        if (!json_is_string(crv)) {
                *reterr_reason = "EC JWK without crv";
                return -EINVAL;
        }
        c = curve_by_crv(json_string_value(crv));
        if (!c) {
                *reterr_reason = "unsupported EC curve";
                return -EINVAL;
        }
        r = get_b64(jwk, "x", c->coord_len, c->coord_len, &x, &x_len, reterr_reason);
        if (r < 0)
                return r;
        r = get_b64(jwk, "y", c->coord_len, c->coord_len, &y, &y_len, reterr_reason);
        if (r < 0)
                return r;

        pub = malloc(1 + 2 * c->coord_len);
        if (!pub)
                return -ENOMEM;
        pub[0] = POINT_CONVERSION_UNCOMPRESSED;
        memcpy(pub + 1, x, c->coord_len);
        memcpy(pub + 1 + c->coord_len, y, c->coord_len);

        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) c->group, 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                  1 + 2 * c->coord_len),
                OSSL_PARAM_construct_end(),
        };
        r = import_public("EC", params, true, ret);
        if (r == -EINVAL)
                *reterr_reason = "EC point is not on the curve";
        return r;
}

static int rsa_from_jwk(const json_t *jwk, EVP_PKEY **ret, const char **reterr_reason) {
        _cleanup_free_ uint8_t *n_buf = NULL, *e_buf = NULL;
        _cleanup_(BN_freep) BIGNUM *n = NULL, *e = NULL;
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
        size_t n_len, e_len;
        int r;

        r = get_b64(jwk, "n", 1, JWK_RSA_MAX_BITS / 8, &n_buf, &n_len, reterr_reason);
        if (r < 0)
                return r;
        r = get_b64(jwk, "e", 1, 4, &e_buf, &e_len, reterr_reason);
        if (r < 0)
                return r;
        n = BN_bin2bn(n_buf, (int) n_len, NULL);
        e = BN_bin2bn(e_buf, (int) e_len, NULL);
        if (!n || !e)
                return ossl_to_errno(-ENOMEM);
        if (BN_num_bits(n) < JWK_RSA_MIN_BITS) {
                *reterr_reason = "RSA key too short";
                return -EINVAL;
        }
        if (!BN_is_odd(e) || BN_num_bits(e) < 2) {
                *reterr_reason = "RSA exponent is not sane";
                return -EINVAL;
        }
        r = rsa_modulus_check(n);
        if (r < 0) {
                if (r == -EINVAL)
                        *reterr_reason = "RSA public key is not valid";
                return r;
        }

        bld = OSSL_PARAM_BLD_new();
        if (!bld || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
                return ossl_to_errno(-ENOMEM);
        params = OSSL_PARAM_BLD_to_param(bld);
        if (!params)
                return ossl_to_errno(-ENOMEM);
        r = import_public("RSA", params, false, ret);
        if (r == -EINVAL)
                *reterr_reason = "RSA public key is not valid";
        return r;
}

int jwk_to_pkey(const json_t *jwk, EVP_PKEY **ret, const char **reterr_reason) {
        const char *dummy = NULL, **reason = reterr_reason ? reterr_reason : &dummy;
        const json_t *kty;

        if (!json_is_object(jwk) || !ret) {
                *reason = "JWK is not an object";
                return -EINVAL;
        }
        kty = json_object_get(jwk, "kty");
        if (!json_is_string(kty)) {
                *reason = "JWK kty missing or not a string";
                return -EINVAL;
        }
        if (streq(json_string_value(kty), "EC"))
                return ec_from_jwk(jwk, ret, reason);
        if (streq(json_string_value(kty), "RSA"))
                return rsa_from_jwk(jwk, ret, reason);
        *reason = "unsupported JWK kty";
        return -EOPNOTSUPP;
}
