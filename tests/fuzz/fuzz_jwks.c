/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the bundle parsers: warden_bundle_from_spiffe_json() and warden_jwks_parse().
 * Whatever they accept must serialise again and parse back to an equal bundle. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/bundle.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*ParseFn)(const char *, const char *, size_t, WardenBundle **, const char **);
typedef int (*WriteFn)(const WardenBundle *, char **);

static void roundtrip(const WardenBundle *b, ParseFn parse, WriteFn write) {
        WardenBundle *back = NULL;
        char *s = NULL;

        if (write(b, &s) < 0)
                abort();
        if (parse("example.org", s, strlen(s), &back, NULL) < 0)
                abort();
        if (!warden_bundle_equal(b, back))
                abort();
        warden_bundle_unref(back);
        free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        WardenBundle *b = NULL;
        const char *reason = NULL;

        if (warden_bundle_from_spiffe_json("example.org", (const char *) data, size, &b, &reason) >=
            0) {
                roundtrip(b, warden_bundle_from_spiffe_json, warden_bundle_to_spiffe_json);
                b = warden_bundle_unref(b);
        } else if (!reason) {
                abort();
        }

        reason = NULL;
        if (warden_jwks_parse("example.org", (const char *) data, size, &b, &reason) >= 0) {
                if (warden_bundle_n_x509_authorities(b) != 0)
                        abort();
                roundtrip(b, warden_jwks_parse, warden_bundle_to_jwks);
                warden_bundle_unref(b);
        } else if (!reason) {
                abort();
        }
        return 0;
}
