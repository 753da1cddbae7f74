/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* An agent the server attested (the datastore's agents table), and its
 * warden.types.v1.AttestedAgent message. Timestamps are seconds since the Unix epoch;
 * *_free() accepts NULL and returns NULL; copies are deep. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "selector.h"
#include "warden/types/v1/types.pb-c.h"

typedef struct AttestedAgent {
        char *spiffe_id;
        char *attestation_type; /* "join_token", "x509pop", ... */
        char *serial;           /* hex serial of the current node SVID, may be NULL */
        int64_t svid_expires_at;
        bool banned;
        SelectorSet selectors;
        int64_t created_at;
        int64_t last_seen_at;
} AttestedAgent;

int attested_agent_new(AttestedAgent **ret);
AttestedAgent *attested_agent_free(AttestedAgent *a);
int attested_agent_copy(const AttestedAgent *a, AttestedAgent **ret);
AttestedAgent **attested_agent_array_free(AttestedAgent **a, size_t n);
DEFINE_TRIVIAL_CLEANUP_FUNC(AttestedAgent *, attested_agent_free)

/* A deep copy as a message, released with pb_free(). -ENOMEM. */
int attested_agent_to_pb(const AttestedAgent *a, Warden__Types__V1__AttestedAgent **ret);
