/* SPDX-License-Identifier: Apache-2.0 */
#include "bundle_row.h"

#include <stdlib.h>

BundleRow *bundle_row_free(BundleRow *b) {
        if (!b)
                return NULL;
        free(b->trust_domain);
        free(b->data);
        free(b);
        return NULL;
}

BundleRow **bundle_row_array_free(BundleRow **a, size_t n) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                bundle_row_free(a[i]);
        free(a);
        return NULL;
}
