/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Which registration entries an attested agent is authorized for: the entries it may
 * see on its Sync stream and get X.509-/JWT-SVIDs for.
 *
 * For agent A with attested selectors S:
 *   1. ids = {A} plus the spiffe_id of every usable node alias entry (node = true)
 *      whose selectors are all in S;
 *   2. level 1 = the entries whose parent_id is in ids;
 *   3. level k+1 = the entries whose parent_id is the spiffe_id of an entry of level
 *      k (descendants), for at most AUTHZ_LEVELS_MAX levels in all; every parent ID
 *      is looked up once, so cycles end;
 *   4. node alias entries themselves are never part of the set, nor are entries that
 *      are not usable (expired, pending_approval, revoked); descendants are reached
 *      only through entries that are in the set;
 *   5. at most AUTHZ_ENTRIES_MAX entries (the default cap; see authz_set_build_max()): the
 *      walk stops there (set->truncated).
 * The server answers these from its in-memory index (entry_index_authorized()); the
 * walk here reads the datastore directly and is the reference the index is tested
 * against (tests/unit/node_api/test_entry_index*.c). Main thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "ds.h"
#include "entry.h"
#include "selector.h"

#define AUTHZ_LEVELS_MAX 8
#define AUTHZ_ENTRIES_MAX 10000

typedef struct AuthzSet {
        Entry **entries; /* owned, sorted by entry id */
        size_t n;
        bool truncated; /* the cap (AUTHZ_ENTRIES_MAX by default) was reached */
} AuthzSet;

/* true when e may be served at time now: not expired (expires_at == 0 or > now), its
 * state is empty or "active", and its spiffe_id is not in the reserved /warden
 * namespace (entry_validate() refuses such entries; this also keeps one stored by other
 * means from being signed). */
bool authz_entry_usable(const Entry *e, int64_t now);

/* Computes the set for agent_id with the agent's attested selectors (may be empty).
 * -EINVAL for NULL arguments; datastore errors as ds.h. */
int authz_set_build(Datastore *ds,
                    const char *agent_id,
                    const SelectorSet *agent_selectors,
                    int64_t now,
                    AuthzSet **ret);

/* authz_set_build() with max in place of AUTHZ_ENTRIES_MAX (0 = AUTHZ_ENTRIES_MAX), the
 * cap entry_index_authorized() takes too. */
int authz_set_build_max(Datastore *ds,
                        const char *agent_id,
                        const SelectorSet *agent_selectors,
                        int64_t now,
                        size_t max,
                        AuthzSet **ret);

/* The entry with this id, or NULL when the agent is not authorized for it (binary
 * search; the pointer is borrowed from the set). */
const Entry *authz_set_find(const AuthzSet *set, const char *entry_id);

/* Accepts NULL, returns NULL. */
AuthzSet *authz_set_free(AuthzSet *set);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthzSet *, authz_set_free)
