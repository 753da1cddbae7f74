/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the server refuses to store although entry_validate() accepts it, because it can
 * only go wrong: selectors no attestor produces (the entry never matches), federation
 * with a trust domain whose bundle the server does not have, an expiry in the past, and
 * SVID lifetimes so short that agents do nothing but re-sign. Also the comparison that
 * makes an update without a change a no-op. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds.h"
#include "entry.h"

typedef struct EntryPolicy {
        Datastore *ds; /* looks up federation bundles */
        int64_t now;
        int64_t min_x509_ttl; /* seconds; an entry's non-zero x509_svid_ttl is at least this */
        int64_t min_jwt_ttl;
        bool allow_unknown_selector_types;
} EntryPolicy;

/* Checks e (which passed entry_validate()). For an update, old is the stored entry and
 * only what changes is checked, so that an entry stays updatable after its bundle went
 * away or the minimums grew; NULL for a new entry. The rules:
 *   - every selector has a type:key an attestor produces: workload entries unix:uid,
 *     unix:user, unix:gid, unix:group, unix:supplementary_gid, unix:supplementary_group,
 *     unix:path, unix:sha256, systemd:id, systemd:fragment_path; node aliases
 *     warden:agent_id, x509pop:subject:cn, x509pop:ca:fingerprint, x509pop:san:dns
 *     (unless allow_unknown_selector_types);
 *   - the server stores a bundle for every federates_with trust domain;
 *   - expires_at is 0 or in the future;
 *   - a non-zero x509_svid_ttl / jwt_svid_ttl is at least the minimum.
 * Returns 0; -EINVAL with a one-line message in err ("invalid entry: ..."); or the
 * datastore's -errno. */
int entry_policy_check(
        const EntryPolicy *p, const Entry *e, const Entry *old, char *err, size_t err_size);

/* true when a and b hold the same values in every field a client sets (all but id,
 * revision, created_at, state, created_by and approved_by). Lists compare in order;
 * NULL and "" strings are equal. */
bool entry_same_content(const Entry *a, const Entry *b);
