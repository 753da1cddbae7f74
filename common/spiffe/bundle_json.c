/* SPDX-License-Identifier: Apache-2.0 */
/* JSON forms of a trust bundle: the SPIFFE bundle format and the plain JWKS that the
 * Workload API carries (spec/SPIFFE-FACTS.md §5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/x509v3.h>

#include <warden/bundle.h>

#include "jose_b64.h"
#include "jwk.h"
#include "ossl_cleanup.h"

#define USE_X509 "x509-svid"
#define USE_JWT "jwt-svid"

static int dump(json_t *root, char **ret) {
        char *s = json_dumps(root, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Builds {"keys":[...]} with the JWT authorities (use = NULL for the plain JWKS). */
static int keys_doc(const WardenBundle *b, bool spiffe, json_t **ret) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        const STACK_OF(X509) *roots = warden_bundle_x509_authorities(b);
        json_t *keys, *k;
        int r;

        root = json_object();
        keys = json_array();
        if (!root || !keys || json_object_set_new(root, "keys", keys) < 0)
                return -ENOMEM;

        for (int i = 0; spiffe && i < sk_X509_num(roots); i++) {
                X509 *cert = sk_X509_value(roots, i);
                r = jwk_from_pkey(X509_get0_pubkey(cert), USE_X509, NULL, cert, &k);
                if (r < 0)
                        return r;
                if (json_array_append_new(keys, k) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < warden_bundle_n_jwt_authorities(b); i++) {
                const char *kid;
                EVP_PKEY *key;
                r = warden_bundle_get_jwt_authority(b, i, &kid, &key, NULL);
                if (r < 0)
                        return r;
                r = jwk_from_pkey(key, spiffe ? USE_JWT : NULL, kid, NULL, &k);
                if (r < 0)
                        return r;
                if (json_array_append_new(keys, k) < 0)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(root);
        return 0;
}

int warden_bundle_to_spiffe_json(const WardenBundle *b, char **ret) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        uint64_t seq;
        int64_t hint;
        int r;

        if (!b || !ret)
                return -EINVAL;
        seq = warden_bundle_sequence(b);
        hint = warden_bundle_refresh_hint(b);
        if (seq > INT64_MAX)
                return -ERANGE;

        r = keys_doc(b, true, &root);
        if (r < 0)
                return r;
        if (json_object_set_new(root, "spiffe_sequence", json_integer((json_int_t) seq)) < 0)
                return -ENOMEM;
        if (hint > 0 &&
            json_object_set_new(root, "spiffe_refresh_hint", json_integer((json_int_t) hint)) < 0)
                return -ENOMEM;
        return dump(root, ret);
}

int warden_bundle_to_jwks(const WardenBundle *b, char **ret) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        int r;

        if (!b || !ret)
                return -EINVAL;
        r = keys_doc(b, false, &root);
        if (r < 0)
                return r;
        return dump(root, ret);
}

static int fail(const char **reterr_reason, const char *reason) {
        *reterr_reason = reason;
        return -EINVAL;
}

/* Loads the document and returns its "keys" array (borrowed from *ret_root). */
static int load_doc(const char *json,
                    size_t len,
                    json_t **ret_root,
                    json_t **ret_keys,
                    const char **reterr_reason) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_error_t error;
        json_t *keys;

        if (!json)
                return fail(reterr_reason, "no document");
        if (len > WARDEN_BUNDLE_JSON_MAX) {
                *reterr_reason = "document too large";
                return -E2BIG;
        }
        root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
        if (!root)
                return fail(reterr_reason, "not valid JSON");
        if (!json_is_object(root))
                return fail(reterr_reason, "not a JSON object");
        keys = json_object_get(root, "keys");
        if (!json_is_array(keys))
                return fail(reterr_reason, "keys missing or not an array");
        if (json_array_size(keys) > WARDEN_BUNDLE_KEYS_MAX) {
                *reterr_reason = "too many keys";
                return -E2BIG;
        }
        *ret_keys = keys;
        *ret_root = TAKE_PTR(root);
        return 0;
}

/* Checks the key is an object with a string kty; *ret_known is false for a kty other
 * than EC/RSA (such keys are ignored). */
static int key_kty(const json_t *k, bool *ret_known, const char **reterr_reason) {
        const json_t *kty;

        if (!json_is_object(k))
                return fail(reterr_reason, "key is not an object");
        kty = json_object_get(k, "kty");
        if (!json_is_string(kty))
                return fail(reterr_reason, "key kty missing or not a string");
        *ret_known = streq(json_string_value(kty), "EC") || streq(json_string_value(kty), "RSA");
        return 0;
}

static int parse_x5c(const json_t *k, X509 **ret, const char **reterr_reason) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        const json_t *x5c = json_object_get(k, "x5c"), *s;
        const unsigned char *p;
        size_t len;
        int r;

        if (!json_is_array(x5c) || json_array_size(x5c) != 1)
                return fail(reterr_reason, "x509-svid key needs exactly one x5c certificate");
        s = json_array_get(x5c, 0);
        if (!json_is_string(s))
                return fail(reterr_reason, "x5c entry is not a string");
        r = jose_b64_decode(json_string_value(s), json_string_length(s), &der, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(reterr_reason, "x5c is not valid base64");

        p = der;
        cert = d2i_X509(NULL, &p, (long) len);
        if (!cert || p != der + len) {
                (void) ossl_to_errno(-EINVAL);
                return fail(reterr_reason, "x5c is not a DER certificate");
        }
        uint32_t flags = X509_get_extension_flags(cert);
        if ((flags & EXFLAG_INVALID) || !(flags & EXFLAG_CA))
                return fail(reterr_reason, "x5c certificate is not a CA certificate");

        *ret = TAKE_PTR(cert);
        return 0;
}

static int parse_x509_key(WardenBundle *b, const json_t *k, const char **reterr_reason) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        if (json_object_get(k, "kid"))
                return fail(reterr_reason, "x509-svid key must not have a kid");
        r = parse_x5c(k, &cert, reterr_reason);
        if (r < 0)
                return r;
        r = jwk_to_pkey(k, &key, reterr_reason);
        if (r < 0)
                return r;
        if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
                (void) ossl_to_errno(-EINVAL);
                return fail(reterr_reason, "x5c public key does not match the JWK");
        }
        r = warden_bundle_add_x509_authority(b, cert);
        if (r == -EOPNOTSUPP || r == -EINVAL)
                return fail(reterr_reason, "x5c certificate key is not supported");
        return r < 0 ? r : 0;
}

static int parse_jwt_key(WardenBundle *b, const json_t *k, const char **reterr_reason) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const json_t *kid = json_object_get(k, "kid");
        int r;

        if (!json_is_string(kid) || json_string_length(kid) == 0)
                return fail(reterr_reason, "JWT key without a kid");
        if (json_string_length(kid) > WARDEN_JWT_KID_MAX)
                return fail(reterr_reason, "kid too long");
        if (warden_bundle_find_jwt_key(b, json_string_value(kid)))
                return fail(reterr_reason, "duplicate kid");
        r = jwk_to_pkey(k, &key, reterr_reason);
        if (r < 0)
                return r;
        r = warden_bundle_add_jwt_authority(b, json_string_value(kid), key, 0);
        if (r == -EOPNOTSUPP || r == -EINVAL)
                return fail(reterr_reason, "JWT key is not supported");
        return r;
}

static int get_nonneg(const json_t *root, const char *name, json_int_t *ret) {
        const json_t *v = json_object_get(root, name);

        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EINVAL;
        *ret = json_integer_value(v);
        return 1;
}

static int parse_spiffe_key(WardenBundle *b, const json_t *k, const char **reterr_reason) {
        const json_t *use;
        bool known;
        int r;

        r = key_kty(k, &known, reterr_reason);
        if (r < 0)
                return r;
        use = json_object_get(k, "use");
        if (!known || !json_is_string(use))
                return 0; /* unknown kty, missing use: ignored */
        if (streq(json_string_value(use), USE_X509))
                return parse_x509_key(b, k, reterr_reason);
        if (streq(json_string_value(use), USE_JWT))
                return parse_jwt_key(b, k, reterr_reason);
        return 0; /* unknown use (wit-svid included): ignored */
}

int warden_bundle_from_spiffe_json(const char *td,
                                   const char *json,
                                   size_t len,
                                   WardenBundle **ret,
                                   const char **reterr_reason) {
        const char *dummy = NULL, **reason = reterr_reason ? reterr_reason : &dummy;
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_int_t seq = 0, hint = 0;
        json_t *keys;
        int r;

        if (!ret)
                return -EINVAL;
        r = warden_bundle_new(td, &b);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(reason, "invalid trust domain");
        r = load_doc(json, len, &root, &keys, reason);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_array_size(keys); i++) {
                r = parse_spiffe_key(b, json_array_get(keys, i), reason);
                if (r < 0)
                        return r;
        }
        if (get_nonneg(root, "spiffe_sequence", &seq) < 0)
                return fail(reason, "spiffe_sequence is not a non-negative integer");
        if (get_nonneg(root, "spiffe_refresh_hint", &hint) < 0)
                return fail(reason, "spiffe_refresh_hint is not a non-negative integer");
        warden_bundle_set_sequence(b, (uint64_t) seq);
        r = warden_bundle_set_refresh_hint(b, hint);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b);
        return 0;
}

static int parse_jwks_key(WardenBundle *b, const json_t *k, const char **reterr_reason) {
        const json_t *use;
        bool known;
        int r;

        r = key_kty(k, &known, reterr_reason);
        if (r < 0)
                return r;
        use = json_object_get(k, "use");
        if (!known || (json_is_string(use) && streq(json_string_value(use), USE_X509)))
                return 0;
        return parse_jwt_key(b, k, reterr_reason);
}

int warden_jwks_parse(const char *td,
                      const char *json,
                      size_t len,
                      WardenBundle **ret,
                      const char **reterr_reason) {
        const char *dummy = NULL, **reason = reterr_reason ? reterr_reason : &dummy;
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_t *keys;
        int r;

        if (!ret)
                return -EINVAL;
        r = warden_bundle_new(td, &b);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(reason, "invalid trust domain");
        r = load_doc(json, len, &root, &keys, reason);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_array_size(keys); i++) {
                r = parse_jwks_key(b, json_array_get(keys, i), reason);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(b);
        return 0;
}
