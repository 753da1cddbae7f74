/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Sync streams (docs/sync.md): node_sync.c builds and sends each stream's messages,
 * node_sync_fanout.c finds the streams a change affects. Main thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry_index.h"
#include "node_api_internal.h"
#include "sync_delta.h"

/* Entries of one message are added until its packed size passes this; the rest
 * follows in the next message (`more` set). Well below RPC_MAX_MESSAGE_SIZE. */
#define NODE_SYNC_MESSAGE_BYTES (1024u * 1024u)

struct NodeStream {
        NodeApi *node;
        RpcCall *call; /* a reference */
        char *agent_id;
        SelectorSet selectors; /* the agent's, as attested */

        SyncState state;        /* what the agent holds */
        uint64_t last_sequence; /* of the last message sent */
        uint64_t bundle_hash;   /* of our bundle as last sent */
        unsigned n_messages;

        bool dirty;        /* its entries may have changed */
        bool agent_dirty;  /* re-read the agent (banned, evicted, re-attested) */
        bool bundle_dirty; /* our bundle changed */
        bool on_dirty_list;
        bool finished; /* we ended it; waiting for the close callback */
        bool truncated_logged;

        NodeStream *prev, *next;   /* every stream */
        NodeStream *dirty_next;    /* n->dirty list */
        NodeStream *by_agent_next; /* same hash bucket */
};

/* A stored federated bundle, cached: its bytes are read from the datastore once, until
 * a BUNDLE event names it. */
typedef struct SyncBundleCache {
        char *trust_domain;
        uint8_t *data;
        size_t len;
        uint64_t hash;
} SyncBundleCache;

/* node_sync_fanout.c */
int node_sync_table_add(NodeApi *n, NodeStream *st);
void node_sync_table_remove(NodeApi *n, NodeStream *st);
NodeStream *node_sync_table_first(NodeApi *n, const char *agent_id);
void node_sync_mark(NodeApi *n, NodeStream *st);

/* node_sync.c */
void node_sync_update(NodeStream *st);
