/* SPDX-License-Identifier: Apache-2.0 */
/* A small string hash map for the entry index: open addressing, linear probing,
 * backward-shift deletion. Keys are entry fields written through the admin API and
 * looked up with agents' selectors and IDs; the hash is FNV-1a with a final mix. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "entry_index_internal.h"

#define STR_MAP_MIN_CAP 16

static uint64_t str_hash(const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                h ^= *p;
                h *= 0x100000001b3ULL;
        }
        /* murmur3's fmix64: spreads FNV's weak low bits over the whole word. */
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

void str_map_done(StrMap *m) {
        free(m->slots);
        *m = (StrMap){};
}

/* The slot holding key, or the free slot where it would go. */
static size_t find_slot(const StrMap *m, const char *key, uint64_t h) {
        size_t mask = m->cap - 1, i = h & mask;

        while (m->slots[i].key) {
                if (m->slots[i].hash == h && streq(m->slots[i].key, key))
                        return i;
                i = (i + 1) & mask;
        }
        return i;
}

void *str_map_get(const StrMap *m, const char *key) {
        size_t i;

        if (!m || !key || m->n == 0)
                return NULL;
        i = find_slot(m, key, str_hash(key));
        return m->slots[i].key ? m->slots[i].value : NULL;
}

static int grow(StrMap *m) {
        size_t cap = m->cap ? m->cap * 2 : STR_MAP_MIN_CAP;
        StrMapSlot *slots;

        if (cap > SIZE_MAX / 2 / sizeof(StrMapSlot))
                return -ENOMEM;
        slots = calloc(cap, sizeof(StrMapSlot));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
                const StrMapSlot *s = &m->slots[i];
                size_t j;

                if (!s->key)
                        continue;
                for (j = s->hash & (cap - 1); slots[j].key; j = (j + 1) & (cap - 1))
                        ;
                slots[j] = *s;
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
        return 0;
}

int str_map_put(StrMap *m, const char *key, void *value) {
        uint64_t h;
        size_t i;
        int r;

        if (!m || !key || !value)
                return -EINVAL;
        h = str_hash(key);
        if (m->cap > 0) {
                i = find_slot(m, key, h);
                if (m->slots[i].key) {
                        m->slots[i].key = key;
                        m->slots[i].value = value;
                        return 0;
                }
        }
        if ((m->n + 1) * 2 > m->cap) {
                r = grow(m);
                if (r < 0)
                        return r;
        }
        i = find_slot(m, key, h);
        m->slots[i] = (StrMapSlot){.key = key, .hash = h, .value = value};
        m->n++;
        return 0;
}

void *str_map_remove(StrMap *m, const char *key) {
        size_t mask, i, j;
        void *value;

        if (!m || !key || m->n == 0)
                return NULL;
        mask = m->cap - 1;
        i = find_slot(m, key, str_hash(key));
        if (!m->slots[i].key)
                return NULL;
        value = m->slots[i].value;
        /* Backward shift: pull each following entry of the run into the hole when its
         * home slot does not lie cyclically in (hole, its position]. */
        for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
                size_t home = m->slots[j].hash & mask;

                if (((j - home) & mask) >= ((j - i) & mask)) {
                        m->slots[i] = m->slots[j];
                        i = j;
                }
        }
        m->slots[i] = (StrMapSlot){};
        m->n--;
        return value;
}

size_t str_map_memory(const StrMap *m) {
        return m ? m->cap * sizeof(StrMapSlot) : 0;
}

int entry_index_selector_key(const Selector *s, char *buf) {
        size_t t, v;

        if (!s || !s->type || !s->value)
                return -EINVAL;
        t = strlen(s->type);
        v = strlen(s->value);
        if (t + 1 + v + 1 > INDEX_SELECTOR_KEY_MAX)
                return -E2BIG;
        memcpy(buf, s->type, t);
        buf[t] = ':';
        memcpy(buf + t + 1, s->value, v + 1);
        return 0;
}
