/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A join token as the datastore keeps it. */

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

typedef struct JoinToken {
        char *token; /* secret: erased on free */
        int64_t expires_at;
        char *alias_spiffe_id; /* may be NULL */
        bool used;
} JoinToken;

/* Wipes the token, frees everything. Accepts NULL; returns NULL. */
JoinToken *join_token_free(JoinToken *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(JoinToken *, join_token_free)
