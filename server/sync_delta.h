/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The content of Sync messages (docs/sync.md): what one agent holds, and the next
 * message that brings it to a given authorized set. Pure: no datastore, no stream,
 * so the delta rules are tested on their own (tests/unit/node_api/test_sync_delta.c).
 *
 * A SyncState records every entry the agent holds (id + revision + created_at, sorted by
 * id: an entry deleted and created again under the same id starts at revision 1) and
 * every federated bundle it holds (trust domain + hash of the stored bytes).
 * sync_delta_next() fills a SyncResponse with what the agent lacks (entries new or
 * with another revision, whole), what it must drop (entry ids, trust domains), and
 * updates the state as if the message was delivered. A message stops growing at
 * max_bytes of entries: then `more` is set and the next call continues. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry_index.h"
#include "warden/node/v1/node.pb-c.h"

typedef struct SyncSent {
        char *id;
        int64_t revision;
        int64_t created_at;
} SyncSent;

typedef struct SyncFederated {
        char *trust_domain;
        uint64_t hash;
} SyncFederated;

typedef struct SyncState {
        SyncSent *sent; /* sorted by id */
        size_t n_sent;
        SyncFederated *federated;
        size_t n_federated;
} SyncState;

void sync_state_done(SyncState *st);

/* The stored bundle of a trust domain: *ret_data NULL (and 0) when none is stored.
 * The bytes are borrowed and must stay valid during sync_delta_next(). */
typedef int (*SyncBundleLookup)(void *userdata,
                                const char *trust_domain,
                                const uint8_t **ret_data,
                                size_t *ret_len,
                                uint64_t *ret_hash);

/* At most this many federated bundles per agent. */
#define SYNC_FEDERATED_MAX 64

/* Fills m (initialized, empty) to bring the agent from *st to view (sorted by id):
 * full = a snapshot (every entry of view, every wanted bundle, nothing to delete; the
 * state is replaced). Bundles: the federates_with of view's entries that lookup has a
 * bundle for. Sets m->full_snapshot, entries, deleted_entry_ids, federated_bundles,
 * removed_trust_domains and more; not bundle or the sequences. On failure st is
 * unchanged (m holds a partial message for the caller to free). */
int sync_delta_next(SyncState *st,
                    const AuthzView *view,
                    bool full,
                    size_t max_bytes,
                    SyncBundleLookup lookup,
                    void *userdata,
                    Warden__Node__V1__SyncResponse *m);

/* 64-bit FNV-1a of data (bundle versions). */
uint64_t sync_hash(const void *data, size_t len);
