/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A stored federation bundle, as the datastore keeps it. */

#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

typedef struct BundleRow {
        char *trust_domain;
        uint8_t *data; /* serialized warden.types.v1.Bundle; the caller converts */
        size_t len;
        int64_t updated_at;
} BundleRow;

/* Accept NULL; return NULL. */
BundleRow *bundle_row_free(BundleRow *b);
/* Frees every element of an array returned by a list call, then the array. */
BundleRow **bundle_row_array_free(BundleRow **a, size_t n);
DEFINE_TRIVIAL_CLEANUP_FUNC(BundleRow *, bundle_row_free)
