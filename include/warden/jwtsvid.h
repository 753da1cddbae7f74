/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* JWT-SVIDs (spec/SPIFFE-FACTS.md §4): minting, validation against trust bundles,
 * and unverified parsing for clients.
 *
 * Minted tokens look exactly like SPIRE's: header {"alg","kid","typ":"JWT"} in that
 * order; claims sub, aud (always an array), exp and iat (integers), jti (16 random
 * bytes, base64url), plus optional extra claims. ECDSA signatures are JOSE r||s.
 *
 * Validation follows SPIRE/go-spiffe's order and reports each failure with its own
 * WardenJwtError (for logs; callers outside say a generic "invalid token"). The
 * return value is a negative errno:
 *   -EINVAL       bad arguments
 *   -EBADMSG      malformed token: encoding, header, claims, alg/typ/kid rules
 *   -E2BIG        token larger than WARDEN_JWT_MAX
 *   -ENOKEY       no bundle for the subject's trust domain, or no key with that kid
 *   -EKEYREJECTED the key does not fit alg, or the signature does not verify
 *   -EACCES       the expected audience is not in aud
 *   -EKEYEXPIRED  expired, or not yet valid (nbf/iat in the future)
 *   -ENOMEM       out of memory */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <warden/bundle.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest token accepted, in bytes. */
#define WARDEN_JWT_MAX (16U * 1024U)
/* Largest leeway the validator accepts (one day). */
#define WARDEN_JWT_LEEWAY_MAX (24 * 3600)
/* Audiences of a JWT-SVID request, the same rule on agent and server: at most this many,
 * each 1..WARDEN_JWT_AUDIENCE_MAX bytes of UTF-8 without NUL. */
#define WARDEN_JWT_AUDIENCES_MAX 32
#define WARDEN_JWT_AUDIENCE_MAX 256

/* Checks one audience as received: len is its length on the wire, so a NUL inside it is
 * seen. Returns 0, or -EINVAL with *reterr_reason (static text; the pointer may be NULL):
 * "audience must not be empty", "audience too long", "audience must be UTF-8 without
 * NUL". */
int warden_jwt_audience_check(const char *aud, size_t len, const char **reterr_reason);

/* true when s[0..len) is valid UTF-8 (no overlong forms, surrogates or values past
 * U+10FFFF) without a NUL byte. */
bool warden_utf8_valid(const char *s, size_t len);

typedef enum WardenJwtError {
        WARDEN_JWT_OK = 0,
        WARDEN_JWT_ERR_ARGUMENT,         /* bad arguments (NULL token, empty audience...) */
        WARDEN_JWT_ERR_TOO_LARGE,        /* token over WARDEN_JWT_MAX bytes */
        WARDEN_JWT_ERR_MALFORMED,        /* not exactly three parts, empty header/payload */
        WARDEN_JWT_ERR_ENCODING,         /* a part is not strict base64url */
        WARDEN_JWT_ERR_HEADER,           /* header is not a JSON object */
        WARDEN_JWT_ERR_HEADER_PARAM,     /* header has a parameter other than alg/kid/typ */
        WARDEN_JWT_ERR_ALG,              /* alg missing or not allowed (none, HS*, EdDSA...) */
        WARDEN_JWT_ERR_TYP,              /* typ present but not "JWT"/"JOSE" */
        WARDEN_JWT_ERR_KID,              /* kid missing, empty, or not a string */
        WARDEN_JWT_ERR_CLAIMS,           /* payload is not a JSON object */
        WARDEN_JWT_ERR_SUB,              /* sub missing or not a valid SPIFFE ID */
        WARDEN_JWT_ERR_SUB_NO_PATH,      /* sub is a trust domain ID without a path */
        WARDEN_JWT_ERR_EXP_MISSING,      /* no exp claim */
        WARDEN_JWT_ERR_EXP_TYPE,         /* exp is not an integer (e.g. a float) */
        WARDEN_JWT_ERR_AUD_TYPE,         /* aud missing, empty, or not string/array of strings */
        WARDEN_JWT_ERR_TIME_TYPE,        /* nbf or iat present but not a number */
        WARDEN_JWT_ERR_NO_BUNDLE,        /* no bundle for the subject's trust domain */
        WARDEN_JWT_ERR_UNKNOWN_KID,      /* the bundle has no key with this kid */
        WARDEN_JWT_ERR_KEY_MISMATCH,     /* key type/curve does not fit alg */
        WARDEN_JWT_ERR_SIGNATURE,        /* signature does not verify */
        WARDEN_JWT_ERR_AUDIENCE,         /* expected audience not in aud */
        WARDEN_JWT_ERR_EXPIRED,          /* now >= exp + exp leeway */
        WARDEN_JWT_ERR_NOT_YET_VALID,    /* nbf > now + skew */
        WARDEN_JWT_ERR_ISSUED_IN_FUTURE, /* iat > now + skew */
        WARDEN_JWT_ERR_INTERNAL,         /* out of memory or a library failure */
        _WARDEN_JWT_ERR_MAX,
} WardenJwtError;

/* Static English text for logs ("signature does not verify"); never NULL. */
const char *warden_jwt_error_to_string(WardenJwtError e);

typedef struct WardenJwtMintParams {
        EVP_PKEY *key;                /* private signing key: EC P-256/384/521 or RSA >= 2048 */
        const char *kid;              /* key ID for the header, non-empty, <= WARDEN_JWT_KID_MAX,
                                       * UTF-8 (as every string here) */
        const char *alg;              /* NULL: from the key (ES256/ES384/ES512/RS256); or any
                                       * allowed alg that fits the key, e.g. "PS256" */
        const char *spiffe_id;        /* sub: a valid SPIFFE ID with a path */
        const char *const *audiences; /* >= 1, each non-empty */
        size_t n_audiences;
        int64_t ttl;                /* seconds, > 0 */
        int64_t now;                /* Unix seconds for iat; 0 = time(NULL) */
        const json_t *extra_claims; /* optional JSON object, copied; may not contain
                                     * sub, aud, exp, iat or jti */
} WardenJwtMintParams;

/* Mints a signed JWT-SVID; *ret_token is malloc'd (free with erase_and_free/free).
 * -EINVAL for bad parameters (including a kid or audience that is not valid UTF-8),
 * -EKEYREJECTED when alg does not fit the key. */
int warden_jwtsvid_mint(const WardenJwtMintParams *p, char **ret_token);

typedef struct WardenJwtClaims {
        char *spiffe_id;    /* sub */
        char *trust_domain; /* bare trust domain of sub */
        char **aud;         /* always a list (a string aud becomes one element) */
        size_t n_aud;
        int64_t exp;
        int64_t iat; /* 0 when absent; a fractional iat is truncated */
        bool has_iat;
        char *jti;   /* NULL when absent or not a string */
        char *kid;   /* header kid */
        char *alg;   /* header alg */
        json_t *all; /* every claim, as decoded (owned reference) */
} WardenJwtClaims;

/* Frees claims; NULL-safe; returns NULL. */
WardenJwtClaims *warden_jwt_claims_free(WardenJwtClaims *c);
static inline void warden_jwt_claims_freep(WardenJwtClaims **c) {
        warden_jwt_claims_free(*c);
}

/* The clock rules of validation. All zero (or a NULL pointer): now = time(NULL), no
 * allowance at all. */
typedef struct WardenJwtTimeRules {
        int64_t now;                /* Unix seconds; 0 = time(NULL) */
        int64_t skew_seconds;       /* nbf and iat may be this far in the future (clocks
                                     * ahead of ours); 0..WARDEN_JWT_LEEWAY_MAX */
        int64_t exp_leeway_seconds; /* opt-in grace after exp; 0..WARDEN_JWT_LEEWAY_MAX.
                                     * RFC 7519 wants 0: valid only while now < exp */
} WardenJwtTimeRules;

/* Validates a token against the bundle of its subject's trust domain, taken from
 * bundles[0..n_bundles) (the first with that trust domain wins): structure (3 parts,
 * <= WARDEN_JWT_MAX), header (only alg/kid/typ; alg allowlisted; typ JWT/JOSE; kid
 * present), claims (sub a SPIFFE ID with a path, exp an integer, aud a string or
 * array of strings, nbf/iat numbers), key by kid, key type vs alg, signature, then
 * audience (must be in aud), now < exp + exp_leeway, nbf/iat <= now + skew.
 * On success *ret holds the claims (ret may be NULL). On failure *reterr_code (may
 * be NULL) says why; see the top of this file for the errno values. */
int warden_jwtsvid_validate(const char *token,
                            const char *audience,
                            const WardenBundle *const *bundles,
                            size_t n_bundles,
                            const WardenJwtTimeRules *times,
                            WardenJwtClaims **ret,
                            WardenJwtError *reterr_code);

/* The structure, header and claim checks of validate, without a signature check,
 * audience or time checks (as go-spiffe's ParseInsecure, for clients that fetched
 * the token from their agent). */
int warden_jwtsvid_parse_unverified(const char *token,
                                    WardenJwtClaims **ret,
                                    WardenJwtError *reterr_code);

#ifdef __cplusplus
}
#endif
