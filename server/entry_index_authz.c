/* SPDX-License-Identifier: Apache-2.0 */
/* The entry index's walks: an agent's authorized entries (down parent_id, the rules of
 * authz.h), its matching node aliases (through the selector map), and the walk up
 * spiffe_id -> parent_id that names the agents a change can reach. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "entry_index.h"
#include "entry_index_internal.h"
#include "greedy_realloc.h"
#include "log.h"

/* A growable array of borrowed pointers. */
typedef struct PtrList {
        const void **v;
        size_t n, allocated;
} PtrList;

static void ptr_list_done(PtrList *l) {
        free(l->v);
        *l = (PtrList){};
}

static int ptr_list_push(PtrList *l, const void *p) {
        int r = GREEDY_REALLOC(l->v, l->allocated, l->n + 1);

        if (r < 0)
                return r;
        l->v[l->n++] = p;
        return 0;
}

static void ptr_list_swap(PtrList *a, PtrList *b) {
        PtrList t = *a;

        *a = *b;
        *b = t;
}

void authz_view_done(AuthzView *v) {
        if (!v)
                return;
        free(v->entries);
        *v = (AuthzView){};
}

static void view_reset(AuthzView *v) {
        v->n = 0;
        v->truncated = false;
}

static int view_push(AuthzView *v, const Entry *e) {
        int r = GREEDY_REALLOC(v->entries, v->allocated, v->n + 1);

        if (r < 0)
                return r;
        v->entries[v->n++] = e;
        return 0;
}

static const Bucket *bucket_get(const StrMap *m, const char *key) {
        return str_map_get(m, key);
}

/* Adds id to seen: 1 when it was new, 0 when already there. */
static int seen_add(StrMap *seen, const char *id) {
        int r;

        if (str_map_get(seen, id))
                return 0;
        r = str_map_put(seen, id, (void *) id);
        return r < 0 ? r : 1;
}

/* An alias filed under the agent's selector s (its first selector): do the others
 * follow? Binary search of each in the agent's sorted set. */
static bool alias_matches(const Entry *alias, const SelectorSet *agent_selectors) {
        for (size_t i = 1; i < alias->selectors.n; i++)
                if (!selector_set_contains(agent_selectors, &alias->selectors.items[i]))
                        return false;
        return alias->selectors.n > 0;
}

static int collect_aliases(const EntryIndex *idx,
                           const SelectorSet *agent_selectors,
                           int64_t now,
                           int (*push)(void *list, const Entry *e),
                           void *list) {
        char key[INDEX_SELECTOR_KEY_MAX];
        int r;

        FOREACH_SELECTOR(s, agent_selectors) {
                const Bucket *b;

                if (entry_index_selector_key(s, key) < 0)
                        continue; /* too long to be any entry's selector */
                b = bucket_get(&idx->by_selector, key);
                for (size_t i = 0; b && i < b->n; i++) {
                        const Entry *e = b->v[i]->e;

                        if (!e->node || !authz_entry_usable(e, now) ||
                            !alias_matches(e, agent_selectors))
                                continue;
                        r = push(list, e);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int push_view(void *list, const Entry *e) {
        return view_push(list, e);
}

static int push_ptr(void *list, const Entry *e) {
        return ptr_list_push(list, e);
}

int entry_index_matching_aliases(const EntryIndex *idx,
                                 const SelectorSet *agent_selectors,
                                 int64_t now,
                                 AuthzView *ret) {
        if (!idx || !agent_selectors || !ret)
                return -EINVAL;
        view_reset(ret);
        return collect_aliases(idx, agent_selectors, now, push_view, ret);
}

int entry_index_aliases_named(const EntryIndex *idx, const char *id, AuthzView *ret) {
        const Bucket *b;
        int r;

        if (!idx || !id || !ret)
                return -EINVAL;
        view_reset(ret);
        b = bucket_get(&idx->by_spiffe, id);
        for (size_t i = 0; b && i < b->n; i++) {
                if (!b->v[i]->e->node)
                        continue;
                r = view_push(ret, b->v[i]->e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_entry_id(const void *a, const void *b) {
        const Entry *x = *(const Entry *const *) a, *y = *(const Entry *const *) b;

        return strcmp(x->id, y->id);
}

/* The order in which authz_set_build() meets a level's children: by parent ID, then by
 * entry ID (matters only for which ones fit under the cap). */
static int cmp_walk_order(const void *a, const void *b) {
        const Entry *x = *(const Entry *const *) a, *y = *(const Entry *const *) b;
        int c = strcmp(x->parent_id, y->parent_id);

        return c != 0 ? c : strcmp(x->id, y->id);
}

/* The first level: the agent's ID and its matching aliases' spiffe_ids. */
static int first_level(const EntryIndex *idx,
                       const char *agent_id,
                       const SelectorSet *agent_selectors,
                       int64_t now,
                       StrMap *seen,
                       PtrList *level) {
        _cleanup_(ptr_list_done) PtrList aliases = {};
        int r;

        r = collect_aliases(idx, agent_selectors, now, push_ptr, &aliases);
        if (r < 0)
                return r;
        r = seen_add(seen, agent_id);
        if (r >= 0)
                r = ptr_list_push(level, agent_id);
        for (size_t i = 0; i < aliases.n && r >= 0; i++) {
                const char *id = ((const Entry *) aliases.v[i])->spiffe_id;

                r = seen_add(seen, id);
                if (r > 0)
                        r = ptr_list_push(level, id);
        }
        return r < 0 ? r : 0;
}

/* One level down: the usable non-alias children of level's IDs into ret (up to max),
 * their not yet seen spiffe_ids into next. */
static int walk_down(const EntryIndex *idx,
                     const PtrList *level,
                     int64_t now,
                     size_t max,
                     StrMap *seen,
                     PtrList *cand,
                     PtrList *next,
                     AuthzView *ret) {
        int r;

        cand->n = 0;
        for (size_t i = 0; i < level->n; i++) {
                const Bucket *b = bucket_get(&idx->by_parent, level->v[i]);

                for (size_t j = 0; b && j < b->n; j++) {
                        const Entry *e = b->v[j]->e;

                        if (e->node || !authz_entry_usable(e, now))
                                continue;
                        r = ptr_list_push(cand, e);
                        if (r < 0)
                                return r;
                }
        }
        if (cand->n > max - ret->n) {
                qsort(cand->v, cand->n, sizeof(void *), cmp_walk_order);
                cand->n = max - ret->n;
                ret->truncated = true;
        }
        next->n = 0;
        for (size_t i = 0; i < cand->n; i++) {
                const Entry *e = cand->v[i];

                r = view_push(ret, e);
                if (r >= 0)
                        r = seen_add(seen, e->spiffe_id);
                if (r > 0)
                        r = ptr_list_push(next, e->spiffe_id);
                if (r < 0)
                        return r;
        }
        return 0;
}

int entry_index_authorized(const EntryIndex *idx,
                           const char *agent_id,
                           const SelectorSet *agent_selectors,
                           int64_t now,
                           size_t max,
                           AuthzView *ret) {
        _cleanup_(ptr_list_done) PtrList level = {}, next = {}, cand = {};
        _cleanup_(str_map_done) StrMap seen = {};
        int r;

        if (!idx || !agent_id || !agent_selectors || !ret)
                return -EINVAL;
        view_reset(ret);
        if (max == 0)
                max = AUTHZ_ENTRIES_MAX;
        r = first_level(idx, agent_id, agent_selectors, now, &seen, &level);
        if (r < 0)
                return r;
        for (unsigned depth = 0; depth < AUTHZ_LEVELS_MAX && level.n > 0 && !ret->truncated;
             depth++) {
                r = walk_down(idx, &level, now, max, &seen, &cand, &next, ret);
                if (r < 0)
                        return r;
                ptr_list_swap(&level, &next);
        }
        if (ret->n > 1)
                qsort(ret->entries, ret->n, sizeof(Entry *), cmp_entry_id);
        return 0;
}

int entry_index_walk_up(const EntryIndex *idx,
                        const char *parent_id,
                        int64_t now,
                        bool include_unusable,
                        int (*cb)(const char *id, void *userdata),
                        void *userdata) {
        _cleanup_(ptr_list_done) PtrList level = {}, next = {};
        _cleanup_(str_map_done) StrMap seen = {};
        int r;

        if (!idx || !parent_id || !cb)
                return -EINVAL;
        r = seen_add(&seen, parent_id);
        if (r >= 0)
                r = ptr_list_push(&level, parent_id);
        if (r >= 0)
                r = cb(parent_id, userdata);
        /* An entry is served at most AUTHZ_LEVELS_MAX levels below the agent (or an
         * alias): from its parent that is at most AUTHZ_LEVELS_MAX - 1 steps up. */
        for (unsigned step = 1; step < AUTHZ_LEVELS_MAX && level.n > 0 && r >= 0; step++) {
                next.n = 0;
                for (size_t i = 0; i < level.n && r >= 0; i++) {
                        const Bucket *b = bucket_get(&idx->by_spiffe, level.v[i]);

                        for (size_t j = 0; b && j < b->n && r >= 0; j++) {
                                const Entry *e = b->v[j]->e;

                                if (e->node || (!include_unusable && !authz_entry_usable(e, now)))
                                        continue;
                                r = seen_add(&seen, e->parent_id);
                                if (r <= 0)
                                        continue;
                                r = ptr_list_push(&next, e->parent_id);
                                if (r >= 0)
                                        r = cb(e->parent_id, userdata);
                        }
                }
                ptr_list_swap(&level, &next);
        }
        return r < 0 ? r : 0;
}
