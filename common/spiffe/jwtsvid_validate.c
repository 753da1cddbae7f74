/* SPDX-License-Identifier: Apache-2.0 */
/* JWT-SVID parsing and validation, in the order of spec/SPIFFE-FACTS.md §4. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>

#include "cleanup.h"
#include "jose_b64.h"
#include "jws.h"
#include "log.h"

typedef struct Token {
        JwsAlg alg;
        size_t signing_len; /* bytes of "header.payload" at the start of the token */
        uint8_t *sig;
        size_t sig_len;
        WardenJwtClaims *claims;
} Token;

static void token_done(Token *t) {
        free(t->sig);
        warden_jwt_claims_free(t->claims);
}

WardenJwtClaims *warden_jwt_claims_free(WardenJwtClaims *c) {
        if (!c)
                return NULL;
        free(c->spiffe_id);
        free(c->trust_domain);
        for (size_t i = 0; i < c->n_aud; i++)
                free(c->aud[i]);
        free(c->aud);
        free(c->jti);
        free(c->kid);
        free(c->alg);
        json_decref(c->all);
        free(c);
        return NULL;
}

static int errno_of(WardenJwtError e) {
        switch (e) {
        case WARDEN_JWT_OK:
                return 0;
        case WARDEN_JWT_ERR_ARGUMENT:
                return -EINVAL;
        case WARDEN_JWT_ERR_TOO_LARGE:
                return -E2BIG;
        case WARDEN_JWT_ERR_NO_BUNDLE:
        case WARDEN_JWT_ERR_UNKNOWN_KID:
                return -ENOKEY;
        case WARDEN_JWT_ERR_KEY_MISMATCH:
        case WARDEN_JWT_ERR_SIGNATURE:
                return -EKEYREJECTED;
        case WARDEN_JWT_ERR_AUDIENCE:
                return -EACCES;
        case WARDEN_JWT_ERR_EXPIRED:
        case WARDEN_JWT_ERR_NOT_YET_VALID:
        case WARDEN_JWT_ERR_ISSUED_IN_FUTURE:
                return -EKEYEXPIRED;
        case WARDEN_JWT_ERR_INTERNAL:
                return -ENOMEM;
        default:
                return -EBADMSG;
        }
}

/* Records e in *err and returns its errno. */
static int jwt_fail(WardenJwtError *err, WardenJwtError e) {
        *err = e;
        return errno_of(e);
}

/* Decodes one base64url part and, unless ret_json is NULL, parses it as a JSON object. */
static int decode_part(const char *s,
                       size_t len,
                       uint8_t **ret_raw,
                       size_t *ret_len,
                       json_t **ret_json,
                       WardenJwtError json_error,
                       WardenJwtError *err) {
        _cleanup_free_ uint8_t *raw = NULL;
        json_t *v;
        size_t n;
        int r;

        r = jose_b64url_decode(s, len, &raw, &n);
        if (r == -ENOMEM)
                return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);
        if (r < 0)
                return jwt_fail(err, WARDEN_JWT_ERR_ENCODING);
        if (ret_json) {
                v = json_loadb((const char *) raw, n, JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(v)) {
                        json_decref(v);
                        return jwt_fail(err, json_error);
                }
                *ret_json = v;
                return 0;
        }
        *ret_raw = TAKE_PTR(raw);
        *ret_len = n;
        return 0;
}

static int check_header(const json_t *h, Token *t, const char **ret_kid, WardenJwtError *err) {
        const json_t *alg, *typ, *kid;
        const char *name;
        json_t *v;

        json_object_foreach(
                (json_t *) h, name,
                v) if (!streq(name, "alg") && !streq(name, "kid") &&
                       !streq(name, "typ")) return jwt_fail(err, WARDEN_JWT_ERR_HEADER_PARAM);

        alg = json_object_get(h, "alg");
        t->alg = jws_alg_from_string(json_string_value(alg));
        if (t->alg < 0)
                return jwt_fail(err, WARDEN_JWT_ERR_ALG);

        typ = json_object_get(h, "typ");
        if (typ && (!json_is_string(typ) || (!streq(json_string_value(typ), "JWT") &&
                                             !streq(json_string_value(typ), "JOSE"))))
                return jwt_fail(err, WARDEN_JWT_ERR_TYP);

        kid = json_object_get(h, "kid");
        if (!json_is_string(kid) || json_string_length(kid) == 0 ||
            json_string_length(kid) > WARDEN_JWT_KID_MAX)
                return jwt_fail(err, WARDEN_JWT_ERR_KID);
        *ret_kid = json_string_value(kid);
        return 0;
}

static int64_t number_to_int64(const json_t *v) {
        double d;

        if (json_is_integer(v))
                return json_integer_value(v);
        d = json_real_value(v);
        if (d >= 9.2e18)
                return INT64_MAX;
        if (d <= -9.2e18)
                return INT64_MIN;
        return (int64_t) d;
}

static int claims_aud(WardenJwtClaims *c, const json_t *aud, WardenJwtError *err) {
        size_t n = json_is_array(aud) ? json_array_size(aud) : 1;

        if (!json_is_string(aud) && (!json_is_array(aud) || n == 0))
                return jwt_fail(err, WARDEN_JWT_ERR_AUD_TYPE);
        c->aud = calloc(n, sizeof(char *));
        if (!c->aud)
                return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);
        for (size_t i = 0; i < n; i++) {
                const json_t *s = json_is_array(aud) ? json_array_get(aud, i) : aud;
                if (!json_is_string(s))
                        return jwt_fail(err, WARDEN_JWT_ERR_AUD_TYPE);
                c->aud[i] = strdup(json_string_value(s));
                if (!c->aud[i])
                        return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);
                c->n_aud = i + 1;
        }
        return 0;
}

/* Checks the claims and fills *c from them (c->all is set by the caller). */
static int check_claims(WardenJwtClaims *c, const json_t *p, WardenJwtError *err) {
        const json_t *sub = json_object_get(p, "sub"), *exp = json_object_get(p, "exp");
        const json_t *nbf = json_object_get(p, "nbf"), *iat = json_object_get(p, "iat");
        const json_t *jti = json_object_get(p, "jti");
        int r;

        if (!json_is_string(sub) || warden_spiffeid_validate(json_string_value(sub), NULL) < 0)
                return jwt_fail(err, WARDEN_JWT_ERR_SUB);
        if (warden_spiffeid_validate_workload(json_string_value(sub), NULL) < 0)
                return jwt_fail(err, WARDEN_JWT_ERR_SUB_NO_PATH);
        if (!exp)
                return jwt_fail(err, WARDEN_JWT_ERR_EXP_MISSING);
        if (!json_is_integer(exp))
                return jwt_fail(err, WARDEN_JWT_ERR_EXP_TYPE);
        r = claims_aud(c, json_object_get(p, "aud"), err);
        if (r < 0)
                return r;
        if ((nbf && !json_is_number(nbf)) || (iat && !json_is_number(iat)))
                return jwt_fail(err, WARDEN_JWT_ERR_TIME_TYPE);

        r = warden_spiffeid_parse(json_string_value(sub), &c->trust_domain, NULL, NULL);
        if (r < 0)
                return jwt_fail(err, r == -ENOMEM ? WARDEN_JWT_ERR_INTERNAL : WARDEN_JWT_ERR_SUB);
        c->spiffe_id = strdup(json_string_value(sub));
        c->jti = json_is_string(jti) ? strdup(json_string_value(jti)) : NULL;
        if (!c->spiffe_id || (json_is_string(jti) && !c->jti))
                return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);
        c->exp = json_integer_value(exp);
        c->has_iat = iat != NULL;
        c->iat = iat ? number_to_int64(iat) : 0;
        return 0;
}

/* Splits "h.p.s" (each part must exist; h and p non-empty). */
static int split(const char *token, size_t len, size_t dot[2], WardenJwtError *err) {
        const char *d1, *d2;

        d1 = memchr(token, '.', len);
        if (!d1)
                return jwt_fail(err, WARDEN_JWT_ERR_MALFORMED);
        d2 = memchr(d1 + 1, '.', len - (size_t) (d1 + 1 - token));
        if (!d2 || memchr(d2 + 1, '.', len - (size_t) (d2 + 1 - token)))
                return jwt_fail(err, WARDEN_JWT_ERR_MALFORMED);
        if (d1 == token || d2 == d1 + 1)
                return jwt_fail(err, WARDEN_JWT_ERR_MALFORMED);
        dot[0] = (size_t) (d1 - token);
        dot[1] = (size_t) (d2 - token);
        return 0;
}

static int parse_token(const char *token, Token *t, WardenJwtError *err) {
        _cleanup_(json_decrefp) json_t *header = NULL, *payload = NULL;
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        const char *kid = NULL;
        size_t len, dot[2];
        int r;

        if (!token)
                return jwt_fail(err, WARDEN_JWT_ERR_ARGUMENT);
        len = strnlen(token, WARDEN_JWT_MAX + 1);
        if (len > WARDEN_JWT_MAX)
                return jwt_fail(err, WARDEN_JWT_ERR_TOO_LARGE);
        r = split(token, len, dot, err);
        if (r < 0)
                return r;

        r = decode_part(token, dot[0], NULL, NULL, &header, WARDEN_JWT_ERR_HEADER, err);
        if (r < 0)
                return r;
        r = decode_part(token + dot[0] + 1, dot[1] - dot[0] - 1, NULL, NULL, &payload,
                        WARDEN_JWT_ERR_CLAIMS, err);
        if (r < 0)
                return r;
        r = decode_part(token + dot[1] + 1, len - dot[1] - 1, &t->sig, &t->sig_len, NULL, 0, err);
        if (r < 0)
                return r;

        r = check_header(header, t, &kid, err);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);
        c->all = json_incref(payload);
        r = check_claims(c, payload, err);
        if (r < 0)
                return r;
        c->kid = strdup(kid);
        c->alg = strdup(jws_alg_to_string(t->alg));
        if (!c->kid || !c->alg)
                return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);

        t->signing_len = dot[1];
        t->claims = TAKE_PTR(c);
        return 0;
}

int warden_jwtsvid_parse_unverified(const char *token,
                                    WardenJwtClaims **ret,
                                    WardenJwtError *reterr_code) {
        _cleanup_(token_done) Token t = {};
        WardenJwtError dummy, *err = reterr_code ? reterr_code : &dummy;
        int r;

        if (!ret)
                return jwt_fail(err, WARDEN_JWT_ERR_ARGUMENT);
        r = parse_token(token, &t, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t.claims);
        return 0;
}

static const WardenBundle *find_bundle(const WardenBundle *const *bundles,
                                       size_t n,
                                       const char *td) {
        for (size_t i = 0; i < n; i++)
                if (bundles[i] && streq(warden_bundle_trust_domain(bundles[i]), td))
                        return bundles[i];
        return NULL;
}

static int check_key_and_signature(const char *token,
                                   const Token *t,
                                   const WardenBundle *const *bundles,
                                   size_t n_bundles,
                                   WardenJwtError *err) {
        const WardenBundle *b;
        EVP_PKEY *key;
        int r;

        b = find_bundle(bundles, n_bundles, t->claims->trust_domain);
        if (!b)
                return jwt_fail(err, WARDEN_JWT_ERR_NO_BUNDLE);
        key = warden_bundle_find_jwt_key(b, t->claims->kid);
        if (!key)
                return jwt_fail(err, WARDEN_JWT_ERR_UNKNOWN_KID);
        if (jws_alg_check_key(t->alg, key) < 0)
                return jwt_fail(err, WARDEN_JWT_ERR_KEY_MISMATCH);
        r = jws_verify(t->alg, key, token, t->signing_len, t->sig, t->sig_len);
        if (r == -ENOMEM)
                return jwt_fail(err, WARDEN_JWT_ERR_INTERNAL);
        if (r < 0)
                return jwt_fail(err, WARDEN_JWT_ERR_SIGNATURE);
        return 0;
}

/* RFC 7519: valid only while now < exp (+ an opt-in leeway); the skew allowance is for
 * clocks ahead of ours (nbf, iat) and never extends a token's life. */
static int check_times(const WardenJwtClaims *c,
                       const WardenJwtTimeRules *t,
                       int64_t now,
                       WardenJwtError *err) {
        const json_t *nbf = json_object_get(c->all, "nbf"), *iat = json_object_get(c->all, "iat");

        if (now >= c->exp + t->exp_leeway_seconds)
                return jwt_fail(err, WARDEN_JWT_ERR_EXPIRED);
        if (nbf && number_to_int64(nbf) > now + t->skew_seconds)
                return jwt_fail(err, WARDEN_JWT_ERR_NOT_YET_VALID);
        if (iat && number_to_int64(iat) > now + t->skew_seconds)
                return jwt_fail(err, WARDEN_JWT_ERR_ISSUED_IN_FUTURE);
        return 0;
}

int warden_jwtsvid_validate(const char *token,
                            const char *audience,
                            const WardenBundle *const *bundles,
                            size_t n_bundles,
                            const WardenJwtTimeRules *times,
                            WardenJwtClaims **ret,
                            WardenJwtError *reterr_code) {
        _cleanup_(token_done) Token t = {};
        WardenJwtError dummy, *err = reterr_code ? reterr_code : &dummy;
        const WardenJwtTimeRules none = {};
        bool found = false;
        int64_t now;
        int r;

        if (!times)
                times = &none;
        now = times->now;
        if (!audience || audience[0] == '\0' || (!bundles && n_bundles > 0) || now < 0 ||
            now > INT64_MAX / 2 || times->skew_seconds < 0 ||
            times->skew_seconds > WARDEN_JWT_LEEWAY_MAX || times->exp_leeway_seconds < 0 ||
            times->exp_leeway_seconds > WARDEN_JWT_LEEWAY_MAX)
                return jwt_fail(err, WARDEN_JWT_ERR_ARGUMENT);
        if (now == 0)
                now = (int64_t) time(NULL);

        r = parse_token(token, &t, err);
        if (r < 0)
                return r;
        r = check_key_and_signature(token, &t, bundles, n_bundles, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t.claims->n_aud && !found; i++)
                found = streq(t.claims->aud[i], audience);
        if (!found)
                return jwt_fail(err, WARDEN_JWT_ERR_AUDIENCE);
        r = check_times(t.claims, times, now, err);
        if (r < 0)
                return r;

        log_debug("JWT-SVID for %s validated (kid %s)", t.claims->spiffe_id, t.claims->kid);
        if (ret)
                *ret = TAKE_PTR(t.claims);
        return 0;
}
