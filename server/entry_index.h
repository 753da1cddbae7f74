/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The server's in-memory index of registration entries: the datastore stays the
 * durable record, the index answers the hot reads (Sync, signing, JWT minting) in
 * time proportional to the answer instead of a table scan.
 *
 * It holds one deep copy of every stored entry and these maps (hash tables):
 *   id        -> entry
 *   parent_id -> entries with that parent_id (the authorization walk goes down these)
 *   spiffe_id -> entries with that spiffe_id (the "who can reach this entry" walk
 *                goes up these)
 *   selector  -> node alias entries (node = true) whose first (smallest) selector it
 *                is, so the aliases matching an agent (all of whose selectors the
 *                agent has, so also the first) are found from the agent's own
 *                selectors, each once.
 * The next expiry comes from a min-heap on expires_at.
 *
 * Loaded once from the datastore at start, then kept current by the caller with
 * entry_index_put()/entry_index_remove() for every change it learns of (the server
 * tails the datastore's events table, see ds.h, so its own writes and, later, other
 * servers' writes reach the index the same way).
 *
 * Authorization follows authz.h exactly (levels, usability, alias rules, the cap):
 * entry_index_authorized() gives the same set as authz_set_build() on the same data.
 *
 * Main thread only; not thread-safe. Every int function returns >= 0 or a negative
 * errno (-EINVAL for NULL arguments, -ENOMEM). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "ds.h"
#include "entry.h"
#include "selector.h"

typedef struct EntryIndex EntryIndex;

int entry_index_new(EntryIndex **ret);
/* Accepts NULL, returns NULL. */
EntryIndex *entry_index_free(EntryIndex *idx);
DEFINE_TRIVIAL_CLEANUP_FUNC(EntryIndex *, entry_index_free)

/* Replaces the whole content by every entry of ds (read page by page). On failure
 * the index is left as it was. */
int entry_index_load(EntryIndex *idx, Datastore *ds);

/* Inserts e, or replaces the entry with the same id; takes ownership of e (also on
 * failure, when it is freed). Pointers previously returned for that id become
 * invalid. */
int entry_index_put(EntryIndex *idx, Entry *e);

/* Removes the entry with this id: 0, or -ENOENT when unknown. Pointers previously
 * returned for it become invalid. */
int entry_index_remove(EntryIndex *idx, const char *id);

/* The entry with this id (borrowed until the next put/remove of that id), or NULL. */
const Entry *entry_index_get(const EntryIndex *idx, const char *id);

size_t entry_index_count(const EntryIndex *idx);

/* An agent's authorized entries: borrowed pointers into the index, sorted by id,
 * valid until the next entry_index_put()/remove(). */
typedef struct AuthzView {
        const Entry **entries;
        size_t n, allocated;
        bool truncated; /* max was reached */
} AuthzView;

void authz_view_done(AuthzView *v);

/* The entries agent_id (attested with agent_selectors) is authorized for, by the
 * rules of authz.h with max in place of AUTHZ_ENTRIES_MAX (0 = AUTHZ_ENTRIES_MAX).
 * Time proportional to the size of the result plus the agent's matching aliases.
 * *ret is reset first (its array is reused). */
int entry_index_authorized(const EntryIndex *idx,
                           const char *agent_id,
                           const SelectorSet *agent_selectors,
                           int64_t now,
                           size_t max,
                           AuthzView *ret);

/* The usable node alias entries whose selectors are all in agent_selectors (borrowed,
 * in no particular order; *ret is reset first). Found through the selector map:
 * the time depends on the aliases sharing a selector with the agent, not on the
 * number of entries. */
int entry_index_matching_aliases(const EntryIndex *idx,
                                 const SelectorSet *agent_selectors,
                                 int64_t now,
                                 AuthzView *ret);

/* Every ID from which an entry with this parent_id can be reached by the walk of
 * authz.h: parent_id itself, then, level by level (at most AUTHZ_LEVELS_MAX levels),
 * the parent_id of every non-alias entry whose spiffe_id is an ID found so far. (An
 * entry is served at most AUTHZ_LEVELS_MAX levels below an agent or alias, so its
 * parent is at most AUTHZ_LEVELS_MAX - 1 steps below one: parent_id is the first of
 * the AUTHZ_LEVELS_MAX levels.) With include_unusable = false only entries usable at
 * `now` are followed; with true every entry is (a superset, right even when the caller
 * does not know which version of an entry an agent last saw).
 *
 * The server calls it with the old and the new parent of a changed entry: the agents
 * to update are those whose ID is in the result, plus those matching a node alias
 * whose spiffe_id is in the result. cb is called once per ID (borrowed string, valid
 * during the call; cb must not change the index); a negative return from cb stops the
 * walk and is returned. */
int entry_index_walk_up(const EntryIndex *idx,
                        const char *parent_id,
                        int64_t now,
                        bool include_unusable,
                        int (*cb)(const char *id, void *userdata),
                        void *userdata);

/* The node alias entries whose spiffe_id is id (borrowed; *ret is reset first). */
int entry_index_aliases_named(const EntryIndex *idx, const char *id, AuthzView *ret);

/* The earliest expires_at > now among the stored entries, or 0 when none will expire:
 * the server wakes up then, since an entry that expires leaves agents' sets without
 * any write. Cost: O(1 + entries already expired at now) (a pruned search of the
 * expiry heap), so expired entries should not linger in the datastore forever. */
int64_t entry_index_next_expiry(const EntryIndex *idx, int64_t now);

/* Bytes of memory the index holds (entries and tables), approximately: for metrics
 * and the scale benchmark. */
size_t entry_index_memory(const EntryIndex *idx);
