/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes concatenated-DER chain parsing (the Workload API's x509_svid and bundle
 * bytes) and the SVID checks run on whatever parses. */
#include <stdint.h>
#include <stdlib.h>

#include <warden/x509.h>

#include "ossl_cleanup.h"

/* A fixed verification time keeps runs reproducible: a day after the seed corpus
 * was made (2026-11-22), so the seed chains verify. */
#define FUZZ_NOW ((time_t) 1795384800)

static void poke_cert(X509 *x) {
        const char *reason = NULL;
        char *s = NULL;

        (void) warden_svid_check_leaf(x, &reason);
        if (warden_x509_spiffe_id(x, &s) >= 0)
                free(s);
        if (warden_x509_serial_hex(x, &s) >= 0)
                free(s);
        if (warden_x509_fingerprint_sha1_hex(x, &s) >= 0)
                free(s);
        (void) warden_x509_not_after(x);
        (void) warden_x509_not_before(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *inter = NULL, *roots = NULL;
        const char *reason = NULL;
        char *id = NULL;
        int n;

        if (warden_x509_chain_from_der(data, size, &chain) < 0)
                return 0;
        n = sk_X509_num(chain);
        for (int i = 0; i < n; i++)
                poke_cert(sk_X509_value(chain, i));
        if (n < 2)
                return 0;
        /* leaf, intermediates..., last cert as the bundle. */
        inter = sk_X509_new_null();
        roots = sk_X509_new_null();
        if (!inter || !roots)
                return 0;
        for (int i = 1; i < n; i++) {
                X509 *x = sk_X509_value(chain, i);
                if (X509_up_ref(x) != 1)
                        return 0;
                if (sk_X509_push(i == n - 1 ? roots : inter, x) <= 0) {
                        X509_free(x);
                        return 0;
                }
        }
        if (warden_svid_verify(sk_X509_value(chain, 0), inter, roots, FUZZ_NOW, &id, &reason) >= 0)
                free(id);
        (void) warden_x509_verify_chain_to_roots(sk_X509_value(chain, 0), inter, roots, FUZZ_NOW,
                                                 &reason);
        return 0;
}
