/* SPDX-License-Identifier: Apache-2.0 */
/* The entry index's storage: owned entries, the id/parent/spiffe/selector maps, the
 * expiry heap, loading from the datastore. The walks are in entry_index_authz.c. */
#include "entry_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entry_index_internal.h"
#include "greedy_realloc.h"
#include "log.h"

/* Entries read from the datastore per ds_list_entries() call by entry_index_load(). */
#define ENTRY_INDEX_LOAD_PAGE 5000

/* Rough cost of one heap allocation beyond its size, for entry_index_memory(). */
#define MALLOC_OVERHEAD 16

int entry_index_new(EntryIndex **ret) {
        EntryIndex *idx;

        if (!ret)
                return -EINVAL;
        idx = calloc(1, sizeof(EntryIndex));
        if (!idx)
                return -ENOMEM;
        *ret = idx;
        return 0;
}

static IndexItem *item_free(IndexItem *it) {
        if (!it)
                return NULL;
        entry_free(it->e);
        free(it);
        return NULL;
}

static void bucket_map_done(StrMap *m) {
        for (size_t i = 0; i < m->cap; i++)
                if (m->slots[i].key) {
                        Bucket *b = m->slots[i].value;

                        free(b->v);
                        free(b);
                }
        str_map_done(m);
}

static void index_clear(EntryIndex *idx) {
        /* by_id holds every item once; the buckets only borrow them. */
        for (size_t i = 0; i < idx->by_id.cap; i++)
                if (idx->by_id.slots[i].key)
                        item_free(idx->by_id.slots[i].value);
        str_map_done(&idx->by_id);
        bucket_map_done(&idx->by_parent);
        bucket_map_done(&idx->by_spiffe);
        bucket_map_done(&idx->by_selector);
        free(idx->heap);
        *idx = (EntryIndex){};
}

EntryIndex *entry_index_free(EntryIndex *idx) {
        if (!idx)
                return NULL;
        index_clear(idx);
        free(idx);
        return NULL;
}

static size_t str_bytes(const char *s) {
        return s ? strlen(s) + 1 + MALLOC_OVERHEAD : 0;
}

static size_t strv_bytes(char *const *v, size_t n) {
        size_t b = v ? n * sizeof(char *) + MALLOC_OVERHEAD : 0;

        for (size_t i = 0; i < n; i++)
                b += str_bytes(v[i]);
        return b;
}

static size_t entry_bytes(const Entry *e) {
        size_t b = sizeof(IndexItem) + sizeof(Entry) + 2 * MALLOC_OVERHEAD;

        b += str_bytes(e->id) + str_bytes(e->spiffe_id) + str_bytes(e->parent_id);
        b += str_bytes(e->hint) + str_bytes(e->env) + str_bytes(e->task) + str_bytes(e->state);
        b += str_bytes(e->created_by) + str_bytes(e->approved_by);
        b += e->selectors.allocated * sizeof(Selector);
        for (size_t i = 0; i < e->selectors.n; i++)
                b += str_bytes(e->selectors.items[i].type) + str_bytes(e->selectors.items[i].value);
        b += strv_bytes(e->dns_names, e->n_dns_names);
        b += strv_bytes(e->federates_with, e->n_federates_with);
        b += strv_bytes(e->scopes, e->n_scopes);
        return b;
}

/* ---- Buckets ---- */

static int bucket_add(EntryIndex *idx, StrMap *m, const char *key, IndexItem *it, IndexSlot slot) {
        Bucket *b = str_map_get(m, key);
        size_t keylen, old_allocated;
        int r;

        if (!b) {
                keylen = strlen(key);
                b = calloc(1, sizeof(Bucket) + keylen + 1);
                if (!b)
                        return -ENOMEM;
                memcpy(b->key, key, keylen + 1);
                r = str_map_put(m, b->key, b);
                if (r < 0) {
                        free(b);
                        return r;
                }
                idx->bucket_bytes += sizeof(Bucket) + keylen + 1 + MALLOC_OVERHEAD;
        }
        old_allocated = b->allocated;
        r = GREEDY_REALLOC(b->v, b->allocated, b->n + 1);
        if (r < 0) {
                if (b->n == 0) {
                        str_map_remove(m, b->key);
                        idx->bucket_bytes -= sizeof(Bucket) + strlen(b->key) + 1 + MALLOC_OVERHEAD;
                        free(b);
                }
                return r;
        }
        idx->bucket_bytes += (b->allocated - old_allocated) * sizeof(IndexItem *);
        it->pos[slot] = b->n;
        b->v[b->n++] = it;
        return 0;
}

static void bucket_del(EntryIndex *idx, StrMap *m, const char *key, IndexItem *it, IndexSlot slot) {
        Bucket *b = str_map_get(m, key);
        size_t i;

        if (!b)
                return; /* not linked (a half-done link being undone) */
        i = it->pos[slot];
        if (i >= b->n || b->v[i] != it)
                return;
        b->v[i] = b->v[--b->n];
        b->v[i]->pos[slot] = i;
        if (b->n > 0)
                return;
        str_map_remove(m, b->key);
        idx->bucket_bytes -= sizeof(Bucket) + strlen(b->key) + 1 + MALLOC_OVERHEAD +
                             b->allocated * sizeof(IndexItem *);
        free(b->v);
        free(b);
}

/* ---- Expiry heap ---- */

static void heap_set(EntryIndex *idx, size_t i, IndexItem *it) {
        idx->heap[i] = it;
        it->heap_pos = i;
}

static void heap_sift_up(EntryIndex *idx, size_t i) {
        IndexItem *it = idx->heap[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;

                if (idx->heap[p]->e->expires_at <= it->e->expires_at)
                        break;
                heap_set(idx, i, idx->heap[p]);
                i = p;
        }
        heap_set(idx, i, it);
}

static void heap_sift_down(EntryIndex *idx, size_t i) {
        IndexItem *it = idx->heap[i];

        for (;;) {
                size_t c = 2 * i + 1;

                if (c >= idx->n_heap)
                        break;
                if (c + 1 < idx->n_heap &&
                    idx->heap[c + 1]->e->expires_at < idx->heap[c]->e->expires_at)
                        c++;
                if (it->e->expires_at <= idx->heap[c]->e->expires_at)
                        break;
                heap_set(idx, i, idx->heap[c]);
                i = c;
        }
        heap_set(idx, i, it);
}

static int heap_add(EntryIndex *idx, IndexItem *it) {
        int r = GREEDY_REALLOC(idx->heap, idx->heap_allocated, idx->n_heap + 1);

        if (r < 0)
                return r;
        heap_set(idx, idx->n_heap++, it);
        heap_sift_up(idx, it->heap_pos);
        return 0;
}

static void heap_del(EntryIndex *idx, IndexItem *it) {
        size_t i = it->heap_pos;
        IndexItem *last;

        if (i == INDEX_HEAP_NONE)
                return;
        it->heap_pos = INDEX_HEAP_NONE;
        last = idx->heap[--idx->n_heap];
        if (last == it)
                return;
        heap_set(idx, i, last);
        heap_sift_up(idx, i);
        heap_sift_down(idx, last->heap_pos);
}

/* The least expires_at > now in the subtree at i: a node past now may have children
 * that are not, a node after now bounds its whole subtree. */
static int64_t heap_min_after(const EntryIndex *idx, size_t i, int64_t now) {
        int64_t a, b, t;

        if (i >= idx->n_heap)
                return 0;
        t = idx->heap[i]->e->expires_at;
        if (t > now)
                return t;
        a = heap_min_after(idx, 2 * i + 1, now);
        b = heap_min_after(idx, 2 * i + 2, now);
        return a == 0 || (b != 0 && b < a) ? b : a;
}

int64_t entry_index_next_expiry(const EntryIndex *idx, int64_t now) {
        return idx ? heap_min_after(idx, 0, now) : 0;
}

/* ---- Linking an item into the maps ---- */

static void item_unlink(EntryIndex *idx, IndexItem *it) {
        const Entry *e = it->e;
        char key[INDEX_SELECTOR_KEY_MAX];

        bucket_del(idx, &idx->by_parent, e->parent_id, it, INDEX_SLOT_PARENT);
        bucket_del(idx, &idx->by_spiffe, e->spiffe_id, it, INDEX_SLOT_SPIFFE);
        if (e->node && e->selectors.n > 0 &&
            entry_index_selector_key(&e->selectors.items[0], key) >= 0)
                bucket_del(idx, &idx->by_selector, key, it, INDEX_SLOT_SELECTOR);
        heap_del(idx, it);
}

/* Adds it to the buckets and the heap (not to by_id): all or nothing. */
static int item_link(EntryIndex *idx, IndexItem *it) {
        const Entry *e = it->e;
        char key[INDEX_SELECTOR_KEY_MAX];
        int r;

        for (size_t k = 0; k < _INDEX_SLOT_MAX; k++)
                it->pos[k] = SIZE_MAX;
        it->heap_pos = INDEX_HEAP_NONE;
        r = bucket_add(idx, &idx->by_parent, e->parent_id, it, INDEX_SLOT_PARENT);
        if (r >= 0)
                r = bucket_add(idx, &idx->by_spiffe, e->spiffe_id, it, INDEX_SLOT_SPIFFE);
        /* An alias matches an agent only when all its selectors are the agent's, so also
         * its first one: filing it under that one selector finds it exactly once. */
        if (r >= 0 && e->node && e->selectors.n > 0 &&
            entry_index_selector_key(&e->selectors.items[0], key) >= 0)
                r = bucket_add(idx, &idx->by_selector, key, it, INDEX_SLOT_SELECTOR);
        if (r >= 0 && e->expires_at > 0)
                r = heap_add(idx, it);
        if (r < 0)
                item_unlink(idx, it);
        return r;
}

int entry_index_put(EntryIndex *idx, Entry *e) {
        _cleanup_(entry_freep) Entry *owned = e;
        IndexItem *it, *old;
        int r;

        if (!idx || !e || !e->id || !e->spiffe_id || !e->parent_id)
                return -EINVAL;
        it = calloc(1, sizeof(IndexItem));
        if (!it)
                return -ENOMEM;
        it->e = TAKE_PTR(owned);
        it->bytes = entry_bytes(it->e);
        r = item_link(idx, it);
        if (r < 0) {
                item_free(it);
                return r;
        }
        /* Replacing an existing key needs no room: only a new id can fail here. */
        old = str_map_get(&idx->by_id, e->id);
        r = str_map_put(&idx->by_id, e->id, it);
        if (r < 0) {
                item_unlink(idx, it);
                item_free(it);
                return r;
        }
        idx->entry_bytes += it->bytes;
        if (old) {
                item_unlink(idx, old);
                idx->entry_bytes -= old->bytes;
                item_free(old);
        }
        return 0;
}

int entry_index_remove(EntryIndex *idx, const char *id) {
        IndexItem *it;

        if (!idx || !id)
                return -EINVAL;
        it = str_map_remove(&idx->by_id, id);
        if (!it)
                return -ENOENT;
        item_unlink(idx, it);
        idx->entry_bytes -= it->bytes;
        item_free(it);
        return 0;
}

const Entry *entry_index_get(const EntryIndex *idx, const char *id) {
        const IndexItem *it = idx && id ? str_map_get(&idx->by_id, id) : NULL;

        return it ? it->e : NULL;
}

size_t entry_index_count(const EntryIndex *idx) {
        return idx ? idx->by_id.n : 0;
}

/* Puts one page of entries into idx (taking every one of them, also on failure). */
static int load_page(EntryIndex *idx, Entry **page, size_t n) {
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                if (r >= 0)
                        r = entry_index_put(idx, TAKE_PTR(page[i]));
                else
                        page[i] = entry_free(page[i]);
        }
        return r;
}

int entry_index_load(EntryIndex *idx, Datastore *ds) {
        _cleanup_(entry_index_freep) EntryIndex *fresh = NULL;
        _cleanup_free_ char *after = NULL;
        EntryIndex t;
        int r;

        if (!idx || !ds)
                return -EINVAL;
        r = entry_index_new(&fresh);
        if (r < 0)
                return r;
        for (;;) {
                Entry **page = NULL;
                size_t n = 0;

                r = ds_list_entries(
                        ds, &(EntryFilter){.after_id = after, .limit = ENTRY_INDEX_LOAD_PAGE},
                        &page, &n);
                if (r < 0)
                        return r;
                if (n > 0) {
                        free(after);
                        after = strdup(page[n - 1]->id);
                }
                if (n > 0 && !after) {
                        entry_array_free(page, n);
                        return -ENOMEM;
                }
                r = load_page(fresh, page, n);
                free(page);
                if (r < 0)
                        return r;
                if (n < ENTRY_INDEX_LOAD_PAGE)
                        break;
        }
        t = *idx;
        *idx = *fresh;
        *fresh = t;
        log_debug("Entry index loaded: %zu entries", entry_index_count(idx));
        return 0;
}

size_t entry_index_memory(const EntryIndex *idx) {
        if (!idx)
                return 0;
        return sizeof(EntryIndex) + idx->entry_bytes + idx->bucket_bytes +
               str_map_memory(&idx->by_id) + str_map_memory(&idx->by_parent) +
               str_map_memory(&idx->by_spiffe) + str_map_memory(&idx->by_selector) +
               idx->heap_allocated * sizeof(IndexItem *);
}
