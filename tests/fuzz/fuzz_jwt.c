/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes JWT-SVID parsing and validation: warden_jwtsvid_parse_unverified() and
 * warden_jwtsvid_validate() against a fixed example.org bundle (a P-256 key "fuzz-ec"
 * and an RSA-2048 key "fuzz-rsa"; the seed tokens in corpus/jwt/ were signed with
 * their private halves, which are not kept anywhere). Invariants: validate never
 * accepts what parse_unverified rejects, and an accepted token is from example.org. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/bundle.h>
#include <warden/jwtsvid.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Validation time: the seed tokens have iat 1700000000 and exp 1700000300. */
#define FUZZ_NOW INT64_C(1700000100)

static const char fuzz_jwks[] =
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"u8siaVyMsBL3m8u9yeLgxh6"
        "Nx5cKrB5po4Bwg-cvORA\",\"y\":\"mIL9NHIMKW9WwpDz6JKMTx_XAgXkQVWWcHiCnl-GqCo\""
        ",\"kid\":\"fuzz-ec\"},{\"kty\":\"RSA\",\"n\":\"qq7Pd56ggUDt67gmp5BKfp76aG1zM"
        "yQnvKb0ldsoK_lIy54BJnp0v4HzopofY7RUJFlPOUSF1_tI5DAG8wOxX0IMnNk4RKkux9F3msrIq"
        "nnzl2yO3z0PmvTaYEtCSRaICFWzs0C96g7u5mckJTlzj4O0CniM5RKO_VSg59P20NJ0591PqLrw7"
        "DMyyZkPwm_aKe3milJdDmweNSC5LJahR-zfH5eTFJZ9jrjULKTPf2OglgIM8_STepXQM2QJWp88Q"
        "xtUOghJoI2ZH2ZjcUS2Yes8Uexh68gWdzrIoKmdAZvOiWi6eGlPj2hfk-f2p_kEcUVjMVZbiFbdu"
        "t8XU0LBrQ\",\"e\":\"AQAB\",\"kid\":\"fuzz-rsa\"}]}";

static const WardenBundle *fuzz_bundle(void) {
        static WardenBundle *b;

        if (!b && warden_jwks_parse("example.org", fuzz_jwks, strlen(fuzz_jwks), &b, NULL) < 0)
                abort();
        return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const WardenBundle *bundles[1] = {fuzz_bundle()};
        WardenJwtClaims *parsed = NULL, *valid = NULL;
        WardenJwtError e1 = WARDEN_JWT_OK, e2 = WARDEN_JWT_OK;
        char *token;
        int r1, r2;

        token = malloc(size + 1);
        if (!token)
                return 0;
        memcpy(token, data, size);
        token[size] = '\0';

        r1 = warden_jwtsvid_parse_unverified(token, &parsed, &e1);
        r2 = warden_jwtsvid_validate(token, "aud1", bundles, 1,
                                     &(WardenJwtTimeRules){.now = FUZZ_NOW, .skew_seconds = 60},
                                     &valid, &e2);
        if (r2 >= 0 && (r1 < 0 || strcmp(valid->trust_domain, "example.org") != 0 ||
                        strcmp(valid->spiffe_id, parsed->spiffe_id) != 0))
                abort();
        if ((r1 < 0) != (e1 != WARDEN_JWT_OK) || (r2 < 0) != (e2 != WARDEN_JWT_OK))
                abort();

        warden_jwt_claims_free(parsed);
        warden_jwt_claims_free(valid);
        free(token);
        return 0;
}
