/* SPDX-License-Identifier: Apache-2.0 */
/* JWT-SVID minting and error strings. Validation is in jwtsvid_validate.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>

#include "cleanup.h"
#include "jose_b64.h"
#include "jws.h"
#include "ossl_cleanup.h"

#define JTI_BYTES 16
/* Longest TTL a token may be minted with (one year); keeps exp far from overflow. */
#define MINT_TTL_MAX (366 * 24 * 3600)

static const char *const error_strings[_WARDEN_JWT_ERR_MAX] = {
        [WARDEN_JWT_OK] = "ok",
        [WARDEN_JWT_ERR_ARGUMENT] = "invalid arguments",
        [WARDEN_JWT_ERR_TOO_LARGE] = "token too large",
        [WARDEN_JWT_ERR_MALFORMED] = "token is not a compact JWS with three parts",
        [WARDEN_JWT_ERR_ENCODING] = "token part is not valid base64url",
        [WARDEN_JWT_ERR_HEADER] = "header is not a JSON object",
        [WARDEN_JWT_ERR_HEADER_PARAM] = "header has a parameter other than alg, kid, typ",
        [WARDEN_JWT_ERR_ALG] = "alg missing or not allowed",
        [WARDEN_JWT_ERR_TYP] = "typ is not JWT or JOSE",
        [WARDEN_JWT_ERR_KID] = "kid missing or invalid",
        [WARDEN_JWT_ERR_CLAIMS] = "claims are not a JSON object",
        [WARDEN_JWT_ERR_SUB] = "sub missing or not a SPIFFE ID",
        [WARDEN_JWT_ERR_SUB_NO_PATH] = "sub has no path",
        [WARDEN_JWT_ERR_EXP_MISSING] = "exp missing",
        [WARDEN_JWT_ERR_EXP_TYPE] = "exp is not an integer",
        [WARDEN_JWT_ERR_AUD_TYPE] = "aud missing or not a string or array of strings",
        [WARDEN_JWT_ERR_TIME_TYPE] = "nbf or iat is not a number",
        [WARDEN_JWT_ERR_NO_BUNDLE] = "no bundle for the subject's trust domain",
        [WARDEN_JWT_ERR_UNKNOWN_KID] = "no key with this kid in the bundle",
        [WARDEN_JWT_ERR_KEY_MISMATCH] = "key does not fit alg",
        [WARDEN_JWT_ERR_SIGNATURE] = "signature does not verify",
        [WARDEN_JWT_ERR_AUDIENCE] = "audience not accepted",
        [WARDEN_JWT_ERR_EXPIRED] = "token expired",
        [WARDEN_JWT_ERR_NOT_YET_VALID] = "token not yet valid (nbf)",
        [WARDEN_JWT_ERR_ISSUED_IN_FUTURE] = "token issued in the future (iat)",
        [WARDEN_JWT_ERR_INTERNAL] = "internal error",
};

const char *warden_jwt_error_to_string(WardenJwtError e) {
        if ((int) e < 0 || e >= _WARDEN_JWT_ERR_MAX || !error_strings[e])
                return "unknown error";
        return error_strings[e];
}

/* true when s can be a JSON string (jansson takes valid UTF-8 only). */
static bool json_text_ok(const char *s) {
        json_t *v = json_string(s);

        json_decref(v);
        return v != NULL;
}

static int check_params(const WardenJwtMintParams *p) {
        size_t kid_len;

        if (!p || !p->key || !p->kid || !p->spiffe_id || !p->audiences || p->n_audiences == 0)
                return -EINVAL;
        kid_len = strnlen(p->kid, WARDEN_JWT_KID_MAX + 1);
        if (kid_len == 0 || kid_len > WARDEN_JWT_KID_MAX || !json_text_ok(p->kid))
                return -EINVAL;
        if (warden_spiffeid_validate_workload(p->spiffe_id, NULL) < 0)
                return -EINVAL;
        for (size_t i = 0; i < p->n_audiences; i++)
                if (!p->audiences[i] || p->audiences[i][0] == '\0' ||
                    !json_text_ok(p->audiences[i]))
                        return -EINVAL;
        if (p->ttl <= 0 || p->ttl > MINT_TTL_MAX || p->now < 0 || p->now > INT64_MAX / 2)
                return -EINVAL;
        if (p->extra_claims) {
                static const char *const reserved[] = {"sub", "aud", "exp", "iat", "jti"};
                if (!json_is_object(p->extra_claims))
                        return -EINVAL;
                for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                        if (json_object_get(p->extra_claims, reserved[i]))
                                return -EINVAL;
        }
        return 0;
}

static int make_jti(char **ret) {
        uint8_t buf[JTI_BYTES];

        if (RAND_bytes(buf, sizeof(buf)) != 1)
                return ossl_to_errno(-EIO);
        return jose_b64url_encode(buf, sizeof(buf), ret);
}

static int set_new(json_t *o, const char *name, json_t *v) {
        return json_object_set_new(o, name, v) < 0 ? -ENOMEM : 0;
}

static int build_claims(const WardenJwtMintParams *p, json_t **ret) {
        _cleanup_(json_decrefp) json_t *claims = NULL, *extra = NULL;
        _cleanup_free_ char *jti = NULL;
        int64_t now = p->now > 0 ? p->now : (int64_t) time(NULL);
        json_t *aud;
        int r;

        r = make_jti(&jti);
        if (r < 0)
                return r;
        claims = json_object();
        aud = json_array();
        if (!claims || !aud || set_new(claims, "sub", json_string(p->spiffe_id)) < 0 ||
            set_new(claims, "aud", aud) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_audiences; i++)
                if (json_array_append_new(aud, json_string(p->audiences[i])) < 0)
                        return -ENOMEM;
        if (set_new(claims, "exp", json_integer(now + p->ttl)) < 0 ||
            set_new(claims, "iat", json_integer(now)) < 0 ||
            set_new(claims, "jti", json_string(jti)) < 0)
                return -ENOMEM;

        if (p->extra_claims) {
                extra = json_deep_copy(p->extra_claims);
                if (!extra || json_object_update(claims, extra) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(claims);
        return 0;
}

static int build_header(JwsAlg alg, const char *kid, json_t **ret) {
        json_t *h = json_object();

        if (!h || set_new(h, "alg", json_string(jws_alg_to_string(alg))) < 0 ||
            set_new(h, "kid", json_string(kid)) < 0 || set_new(h, "typ", json_string("JWT")) < 0) {
                json_decref(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

/* "a.b", malloc'd */
static char *join_dot(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        char *s = malloc(la + 1 + lb + 1);

        if (!s)
                return NULL;
        memcpy(s, a, la);
        s[la] = '.';
        memcpy(s + la + 1, b, lb + 1);
        return s;
}

/* base64url(compact JSON of v) */
static int encode_json(const json_t *v, char **ret) {
        _cleanup_free_ char *s = json_dumps(v, JSON_COMPACT);

        if (!s)
                return -ENOMEM;
        return jose_b64url_encode(s, strlen(s), ret);
}

int warden_jwtsvid_mint(const WardenJwtMintParams *p, char **ret_token) {
        _cleanup_(json_decrefp) json_t *header = NULL, *claims = NULL;
        _cleanup_free_ char *h64 = NULL, *c64 = NULL, *s64 = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_erase_ char *input = NULL;
        size_t sig_len;
        JwsAlg alg;
        char *token;
        int r;

        if (!ret_token)
                return -EINVAL;
        r = check_params(p);
        if (r < 0)
                return r;
        if (p->alg) {
                alg = jws_alg_from_string(p->alg);
                if (alg < 0)
                        return -EINVAL;
        } else {
                r = jws_alg_for_key(p->key, &alg);
                if (r < 0)
                        return -EKEYREJECTED;
        }
        r = jws_alg_check_key(alg, p->key);
        if (r < 0)
                return r;

        r = build_header(alg, p->kid, &header);
        if (r >= 0)
                r = build_claims(p, &claims);
        if (r >= 0)
                r = encode_json(header, &h64);
        if (r >= 0)
                r = encode_json(claims, &c64);
        if (r < 0)
                return r;
        input = join_dot(h64, c64);
        if (!input)
                return -ENOMEM;

        r = jws_sign(alg, p->key, input, strlen(input), &sig, &sig_len);
        if (r < 0)
                return r;
        r = jose_b64url_encode(sig, sig_len, &s64);
        if (r < 0)
                return r;
        token = join_dot(input, s64);
        if (!token)
                return -ENOMEM;
        *ret_token = token;
        return 0;
}

bool warden_utf8_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        while (p < end) {
                unsigned c = *p++, n, min, cp;

                if (c == 0)
                        return false;
                if (c < 0x80)
                        continue;
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, min = 0x80, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, min = 0x800, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, min = 0x10000, cp = c & 0x07;
                else
                        return false;
                if ((size_t) (end - p) < n)
                        return false;
                for (unsigned i = 0; i < n; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (*p & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
        }
        return true;
}

int warden_jwt_audience_check(const char *aud, size_t len, const char **reterr_reason) {
        const char *why = NULL;

        if (!aud || len == 0)
                why = "audience must not be empty";
        else if (len > WARDEN_JWT_AUDIENCE_MAX)
                why = "audience too long";
        else if (!warden_utf8_valid(aud, len))
                why = "audience must be UTF-8 without NUL";
        if (!why)
                return 0;
        if (reterr_reason)
                *reterr_reason = why;
        return -EINVAL;
}
