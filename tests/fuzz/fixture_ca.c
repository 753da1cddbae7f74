/* SPDX-License-Identifier: Apache-2.0 */
#include "fixture_ca.h"

#include <stdlib.h>

#include <warden/x509.h>

#include "log.h"

const FuzzCa *fuzz_ca(void) {
        static FuzzCa ca;

        if (ca.cert)
                return &ca;
        if (warden_key_generate(WARDEN_KEY_EC_P256, &ca.key) < 0 ||
            warden_key_generate(WARDEN_KEY_EC_P256, &ca.subject) < 0 ||
            warden_ca_create_self_signed(ca.key, FUZZ_TD, 366 * 24 * 3600, (time_t) FUZZ_NOW,
                                         &ca.cert) < 0)
                abort();
        log_set_max_level(LOG_CRIT);
        return &ca;
}
