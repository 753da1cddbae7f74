/* SPDX-License-Identifier: Apache-2.0 */
/* SPIFFE ID parser: never crashes; every accepted ID re-validates, splits into
 * a valid trust domain and path, and formats back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *reason = NULL;
        char *s, *td = NULL, *path = NULL, *again = NULL, *td2 = NULL;

        if (size > 4 * WARDEN_SPIFFEID_MAX)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        if (warden_spiffeid_parse(s, &td, &path, &reason) < 0) {
                if (!reason || warden_spiffeid_validate(s, NULL) >= 0)
                        abort();
                /* Still must not crash on the other entry points. */
                (void) warden_trust_domain_from_string(s, NULL, NULL);
                (void) warden_spiffeid_has_prefix(s, s);
                goto out;
        }
        if (warden_spiffeid_validate(s, NULL) < 0 || warden_trust_domain_validate(td, NULL) < 0)
                abort();
        if (warden_spiffeid_format(td, path, &again) < 0 || strcmp(again, s) != 0)
                abort();
        if (!warden_spiffeid_member_of(s, td) || !warden_spiffeid_has_prefix(s, s))
                abort();
        if (warden_trust_domain_from_string(s, &td2, NULL) < 0 || strcmp(td2, td) != 0)
                abort();
        if ((path[0] != '\0') != (warden_spiffeid_validate_workload(s, NULL) == 0))
                abort();
out:
        free(s);
        free(td);
        free(path);
        free(again);
        free(td2);
        return 0;
}
