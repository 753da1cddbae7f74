/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include <openssl/err.h>

#include "log.h"
#include "ossl_cleanup.h"

int ossl_to_errno(int fallback) {
        unsigned long e;
        int r = fallback;
        char buf[256];

        while ((e = ERR_get_error()) != 0) {
                if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
                        r = -ENOMEM;
                ERR_error_string_n(e, buf, sizeof(buf));
                log_debug("openssl: %s", buf);
        }
        return r < 0 ? r : -EIO;
}
