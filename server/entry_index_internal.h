/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The insides of EntryIndex (entry_index.c: storage; entry_index_authz.c: the walks;
 * entry_index_map.c: the string hash map both use). */

#include <stddef.h>
#include <stdint.h>

#include "entry.h"

/* ---- StrMap: string -> non-NULL pointer, open addressing with linear probing and
 * backward-shift deletion (no tombstones). Keys are borrowed: each must stay valid and
 * unchanged while it is in the map. Capacity is a power of two, load <= 1/2. */

typedef struct StrMapSlot {
        const char *key; /* NULL: free slot */
        uint64_t hash;
        void *value;
} StrMapSlot;

typedef struct StrMap {
        StrMapSlot *slots;
        size_t n, cap;
} StrMap;

void str_map_done(StrMap *m);
void *str_map_get(const StrMap *m, const char *key);
/* Inserts key -> value (value != NULL), or replaces the key and value of an equal key.
 * -ENOMEM (the map is unchanged). */
int str_map_put(StrMap *m, const char *key, void *value);
/* Removes key: its value, or NULL when absent. Never fails. */
void *str_map_remove(StrMap *m, const char *key);
size_t str_map_memory(const StrMap *m);

/* ---- The index ---- */

/* Which bucket map an IndexItem sits in: its position there is pos[slot]. */
typedef enum IndexSlot {
        INDEX_SLOT_PARENT,   /* by_parent */
        INDEX_SLOT_SPIFFE,   /* by_spiffe */
        INDEX_SLOT_SELECTOR, /* by_selector (node aliases only) */
        _INDEX_SLOT_MAX,
} IndexSlot;

#define INDEX_HEAP_NONE SIZE_MAX

typedef struct IndexItem {
        Entry *e; /* owned */
        size_t pos[_INDEX_SLOT_MAX];
        size_t heap_pos; /* INDEX_HEAP_NONE when e->expires_at == 0 */
        size_t bytes;    /* approximate heap bytes of e and this item */
} IndexItem;

/* The items of one key of a multi-map, unordered (removal swaps the last one in). */
typedef struct Bucket {
        IndexItem **v;
        size_t n, allocated;
        char key[]; /* the map's key for this bucket */
} Bucket;

struct EntryIndex {
        StrMap by_id;       /* e->id -> IndexItem */
        StrMap by_parent;   /* parent_id -> Bucket */
        StrMap by_spiffe;   /* spiffe_id -> Bucket */
        StrMap by_selector; /* "type:value" -> Bucket of node aliases with it as first selector */
        IndexItem **heap;   /* min-heap on expires_at of the items with expires_at > 0 */
        size_t n_heap, heap_allocated;
        size_t entry_bytes;  /* sum of the items' bytes */
        size_t bucket_bytes; /* bytes of buckets and their arrays */
};

/* "type:value" of s into buf (at least INDEX_SELECTOR_KEY_MAX bytes): 0, or -E2BIG when
 * it does not fit (such a selector is in no stored entry: the datastore validates them). */
#define INDEX_SELECTOR_KEY_MAX (SELECTOR_TYPE_MAX + 1 + SELECTOR_VALUE_MAX + 1)
int entry_index_selector_key(const Selector *s, char *buf);
