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

/* The parts of an authorized entry that a workload can see, immutable and refcounted:
 * the manager holds one per entry and every CachedSvid built from it shares it. */
typedef struct EntryInfo {
        unsigned n_ref; /* atomic */
        bool packed;    /* made by entry_info_pack(): one allocation */
        char *entry_id;
        char *spiffe_id;
        char *hint; /* NULL when empty */
        SelectorSet selectors;
        int64_t created_at;
        int32_t jwt_svid_ttl;
        char **federates_with;
        size_t n_federates_with;
} EntryInfo;

/* A signed X.509-SVID and its key, immutable and refcounted, in one allocation: the
 * chain (DER certs joined, leaf first) followed by the unencrypted PKCS#8 DER key
 * (secret, wiped on free). No parsed X509 or EVP_PKEY is kept: the Workload API
 * serves these bytes as they are. */
typedef struct SvidData {
        unsigned n_ref; /* atomic */
        int64_t not_before;
        int64_t not_after; /* leaf notAfter */
        size_t chain_len;
        size_t key_len;
        uint8_t bytes[]; /* chain, then key */
} SvidData;

/* One registration entry authorized for this node, with its X.509-SVID once signed:
 * references to its EntryInfo and SvidData, and their fields copied flat (borrowed
 * pointers) for the readers. Refcounted: consecutive snapshots share it while neither
 * the entry nor its SVID changes. */
typedef struct CachedSvid {
        unsigned n_ref; /* atomic */
        EntryInfo *info;
        SvidData *svid; /* NULL until signed */
        /* Borrowed from info and svid, never written through (not const only so that
         * protobuf messages can point at them). */
        char *entry_id;
        char *spiffe_id;
        char *hint;               /* may be NULL */
        SelectorSet selectors;    /* info's (shallow copy) */
        int64_t entry_created_at; /* hint de-duplication: the oldest entry wins */
        int32_t jwt_svid_ttl;     /* from the entry, 0 = server default */
        char **federates_with;    /* bare trust-domain names */
        size_t n_federates_with;
        uint8_t *chain_der; /* DER certs joined, leaf first; NULL until signed */
        size_t chain_len;
        uint8_t *key_pkcs8; /* unencrypted PKCS#8 DER; secret */
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
        CachedSvid **svids; /* referenced; sorted by entry_id (SPIRE's default order) */
        size_t n_svids;
} AgentSnapshot;

int agent_snapshot_new(const char *trust_domain, AgentSnapshot **ret);
AgentSnapshot *agent_snapshot_ref(AgentSnapshot *s);
AgentSnapshot *agent_snapshot_unref(AgentSnapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentSnapshot *, agent_snapshot_unref)

/* An empty EntryInfo (n_ref 1) for the caller to fill. */
int entry_info_new(EntryInfo **ret);
/* A copy of src in a single allocation: the struct, then the selector and
 * federates_with arrays, then every string (no per-string malloc overhead; an entry
 * with one selector takes ~200 bytes instead of ~400). */
int entry_info_pack(const EntryInfo *src, EntryInfo **ret);
EntryInfo *entry_info_ref(EntryInfo *i);
EntryInfo *entry_info_unref(EntryInfo *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(EntryInfo *, entry_info_unref)

/* Copies chain and key into one new SvidData (n_ref 1). */
int svid_data_new(const uint8_t *chain,
                  size_t chain_len,
                  const uint8_t *key,
                  size_t key_len,
                  int64_t not_before,
                  int64_t not_after,
                  SvidData **ret);
SvidData *svid_data_ref(SvidData *d);
SvidData *svid_data_unref(SvidData *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(SvidData *, svid_data_unref)
static inline uint8_t *svid_data_key(SvidData *d) {
        return d->bytes + d->chain_len;
}

/* A CachedSvid referencing info and svid (may be NULL). */
int cached_svid_new(EntryInfo *info, SvidData *svid, CachedSvid **ret);
CachedSvid *cached_svid_ref(CachedSvid *c);
CachedSvid *cached_svid_unref(CachedSvid *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CachedSvid *, cached_svid_unref)

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
