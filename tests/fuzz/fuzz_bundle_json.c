/* SPDX-License-Identifier: Apache-2.0 */
/* SPIFFE bundle JSON as a federation bundle endpoint (or the agent's bundle.json) serves
 * it: warden_bundle_from_spiffe_json() for trust domain example.org. fuzz_jwks covers
 * the plain JWKS as well; this target checks every form an accepted bundle travels in:
 *   - SPIFFE JSON: serialise, parse, equal, and serialising again gives the same bytes;
 *   - the Bundle protobuf of the node and admin APIs (pb_from_bundle, pack, unpack,
 *     pb_to_bundle): equal;
 *   - the Workload API JWKS: the same JWT authorities, no X.509 ones;
 *   - the Workload API DER roots and PEM: every X.509 authority, in order;
 *   - warden_bundle_copy(): equal.
 * A refusal always comes with a reason. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "ossl_cleanup.h"
#include "pb_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TD "example.org"

static void check_json(const WardenBundle *b) {
        WardenBundle *back = NULL;
        char *s = NULL, *again = NULL;

        if (warden_bundle_to_spiffe_json(b, &s) < 0)
                abort();
        if (warden_bundle_from_spiffe_json(FUZZ_TD, s, strlen(s), &back, NULL) < 0)
                abort();
        if (!warden_bundle_equal(b, back))
                abort();
        if (warden_bundle_to_spiffe_json(back, &again) < 0 || strcmp(s, again) != 0)
                abort();
        warden_bundle_unref(back);
        free(s);
        free(again);
}

static void check_pb(const WardenBundle *b) {
        Warden__Types__V1__Bundle *pb = NULL, *unpacked;
        WardenBundle *back = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;

        if (pb_from_bundle(b, &pb) < 0 || pb_pack(pb, &buf, &len) < 0)
                abort();
        unpacked = warden__types__v1__bundle__unpack(NULL, len, buf);
        if (!unpacked || pb_to_bundle(unpacked, &back, NULL) < 0)
                abort();
        if (!warden_bundle_equal(b, back))
                abort();
        warden_bundle_unref(back);
        pb_free(unpacked);
        pb_free(pb);
        free(buf);
}

static void check_jwks(const WardenBundle *b) {
        WardenBundle *back = NULL;
        char *s = NULL;

        if (warden_bundle_to_jwks(b, &s) < 0)
                abort();
        if (warden_jwks_parse(FUZZ_TD, s, strlen(s), &back, NULL) < 0)
                abort();
        if (warden_bundle_n_x509_authorities(back) != 0 ||
            warden_bundle_n_jwt_authorities(back) != warden_bundle_n_jwt_authorities(b))
                abort();
        for (size_t i = 0; i < warden_bundle_n_jwt_authorities(b); i++) {
                const char *kid = NULL;
                EVP_PKEY *key = NULL;

                if (warden_bundle_get_jwt_authority(b, i, &kid, &key, NULL) < 0)
                        abort();
                if (!warden_key_public_equal(key, warden_bundle_find_jwt_key(back, kid)))
                        abort();
        }
        warden_bundle_unref(back);
        free(s);
}

static void check_roots(const WardenBundle *b) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *from_der = NULL, *from_pem = NULL;
        const STACK_OF(X509) *roots = warden_bundle_x509_authorities(b);
        size_t n = warden_bundle_n_x509_authorities(b);
        uint8_t *der = NULL;
        char *pem = NULL;
        size_t len = 0;

        if (warden_bundle_x509_der(b, &der, &len) < 0 || warden_bundle_to_pem(b, &pem) < 0)
                abort();
        if ((n == 0) != (len == 0) || (n == 0 && *pem != '\0'))
                abort();
        if (n > 0) {
                if (warden_x509_certs_from_der(der, len, n, len, &from_der) < 0 ||
                    (size_t) sk_X509_num(from_der) != n)
                        abort();
                /* PEM readers cap the count (a bundle may hold more). */
                if (n <= WARDEN_X509_PEM_MAX_CERTS &&
                    (warden_x509_chain_from_pem(pem, strlen(pem), &from_pem) < 0 ||
                     (size_t) sk_X509_num(from_pem) != n))
                        abort();
                for (int i = 0; i < (int) n; i++)
                        if (X509_cmp(sk_X509_value(roots, i), sk_X509_value(from_der, i)) != 0 ||
                            (from_pem &&
                             X509_cmp(sk_X509_value(roots, i), sk_X509_value(from_pem, i)) != 0))
                                abort();
        }
        free(der);
        free(pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        WardenBundle *b = NULL, *copy = NULL;
        const char *reason = NULL;
        int r;

        if (size > 256 * 1024)
                return 0;
        r = warden_bundle_from_spiffe_json(FUZZ_TD, (const char *) data, size, &b, &reason);
        if (r < 0) {
                if (!reason || (r != -EINVAL && r != -E2BIG))
                        abort();
                return 0;
        }
        if (strcmp(warden_bundle_trust_domain(b), FUZZ_TD) != 0 ||
            warden_bundle_n_x509_authorities(b) + warden_bundle_n_jwt_authorities(b) >
                    WARDEN_BUNDLE_KEYS_MAX)
                abort();
        check_json(b);
        check_pb(b);
        check_jwks(b);
        check_roots(b);
        if (warden_bundle_copy(b, &copy) < 0 || !warden_bundle_equal(b, copy))
                abort();
        warden_bundle_unref(copy);
        warden_bundle_unref(b);
        return 0;
}
