/* SPDX-License-Identifier: Apache-2.0 */
#include "join_token.h"

#include <stdlib.h>

JoinToken *join_token_free(JoinToken *t) {
        if (!t)
                return NULL;
        erase_and_free(t->token);
        free(t->alias_spiffe_id);
        free(t);
        return NULL;
}
