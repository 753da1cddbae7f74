/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the agent can serve right now, as one immutable, refcounted value.
 *
 * The manager (main thread) builds a new AgentSnapshot whenever entries, SVIDs or
 * bundles change and publishes it with a pointer swap; Workload API handlers take a
 * reference and read it without locks from any thread (STYLE.md "hot path"). Nothing
 * in a published snapshot is ever modified. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <warden/bundle.h>

#include "cleanup.h"
#include "selector.h"

/* One registration entry authorized for this node, with its X.509-SVID once signed. */
typedef struct CachedSvid {
        char *entry_id;
        char *spiffe_id;
        char *hint;               /* may be NULL */
        SelectorSet selectors;    /* matches a caller whose selectors are a superset */
        int64_t entry_created_at; /* hint de-duplication: the oldest entry wins */
        int32_t jwt_svid_ttl;     /* from the entry, 0 = server default */
        char **federates_with;    /* bare trust-domain names */
        size_t n_federates_with;
        uint8_t *chain_der; /* DER certs joined, leaf first; NULL until signed */
        size_t chain_len;
        uint8_t *key_pkcs8; /* unencrypted PKCS#8 DER; secret, wiped on free */
        size_t key_len;
        int64_t not_before;
        int64_t expires_at; /* leaf notAfter */
} CachedSvid;

typedef struct AgentSnapshot {
        unsigned n_ref;           /* atomic */
        uint64_t version;         /* increases with every published snapshot */
        char *trust_domain;       /* bare name */
        WardenBundle *bundle;     /* our trust domain; NULL before the first sync */
        WardenBundle **federated; /* other trust domains' bundles */
        size_t n_federated;
        CachedSvid **svids; /* sorted by entry_id (SPIRE's default order) */
        size_t n_svids;
} AgentSnapshot;

int agent_snapshot_new(const char *trust_domain, AgentSnapshot **ret);
AgentSnapshot *agent_snapshot_ref(AgentSnapshot *s);
AgentSnapshot *agent_snapshot_unref(AgentSnapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentSnapshot *, agent_snapshot_unref)

CachedSvid *cached_svid_free(CachedSvid *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CachedSvid *, cached_svid_free)

/* The federated bundle for trust domain td (bare name), or NULL. */
WardenBundle *agent_snapshot_federated(const AgentSnapshot *s, const char *td);

/* The SVIDs a caller with these selectors may have: every signed SVID whose entry's
 * selectors are a subset of `have`, in snapshot order, keeping only the oldest entry
 * of each non-empty hint. *ret_n may be 0. Returns borrowed pointers (valid while
 * the snapshot is referenced) in a malloc'd array, or -ENOMEM.
 * *ret_pending (may be NULL) counts matching entries whose SVID is not signed yet. */
int agent_snapshot_match(const AgentSnapshot *s,
                         const SelectorSet *have,
                         const CachedSvid ***ret,
                         size_t *ret_n,
                         size_t *ret_pending);
