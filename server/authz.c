/* SPDX-License-Identifier: Apache-2.0 */
/* The entries an agent is authorized for: its own children, its node aliases'
 * children, and their descendants (see authz.h for the rules). */
#include "authz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "greedy_realloc.h"
#include "log.h"

/* Parent IDs passed to the datastore per query (its duplicate check is quadratic). */
#define AUTHZ_PARENTS_PER_QUERY 256

/* A growable array of borrowed strings. */
typedef struct StrList {
        const char **v;
        size_t n, allocated;
} StrList;

static void str_list_done(StrList *l) {
        free(l->v);
        *l = (StrList){};
}

static int str_list_push(StrList *l, const char *s) {
        int r = GREEDY_REALLOC(l->v, l->allocated, l->n + 1);

        if (r < 0)
                return r;
        l->v[l->n++] = s;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void str_list_sort_uniq(StrList *l) {
        size_t m = 0;

        if (l->n == 0)
                return;
        qsort(l->v, l->n, sizeof(char *), cmp_str);
        for (size_t i = 1; i < l->n; i++)
                if (!streq(l->v[i], l->v[m]))
                        l->v[++m] = l->v[i];
        l->n = m + 1;
}

static bool str_list_contains(const StrList *l, const char *s) {
        return l->n > 0 && bsearch(&s, l->v, l->n, sizeof(char *), cmp_str);
}

static int cmp_entry_id(const void *a, const void *b) {
        const Entry *x = *(const Entry *const *) a, *y = *(const Entry *const *) b;

        return strcmp(x->id, y->id);
}

bool authz_entry_usable(const Entry *e, int64_t now) {
        if (!e || entry_spiffe_id_is_reserved(e->spiffe_id))
                return false;
        if (e->expires_at > 0 && e->expires_at <= now)
                return false;
        return !e->state || !*e->state || streq(e->state, "active");
}

AuthzSet *authz_set_free(AuthzSet *set) {
        if (!set)
                return NULL;
        entry_array_free(set->entries, set->n);
        free(set);
        return NULL;
}

static int set_push(AuthzSet *set, size_t *allocated, Entry *e) {
        int r = GREEDY_REALLOC(set->entries, *allocated, set->n + 1);

        if (r < 0)
                return r;
        set->entries[set->n++] = e;
        return 0;
}

/* Moves the usable, non-alias entries of batch into set and their SPIFFE IDs into
 * next; what is not taken stays in batch (freed by the caller). */
static int take_children(AuthzSet *set,
                         size_t *allocated,
                         Entry **batch,
                         size_t n,
                         int64_t now,
                         size_t max,
                         StrList *next) {
        int r;

        for (size_t i = 0; i < n; i++) {
                Entry *e = batch[i];

                if (e->node || !authz_entry_usable(e, now))
                        continue;
                if (set->n >= max) {
                        set->truncated = true;
                        return 0;
                }
                r = set_push(set, allocated, e);
                if (r < 0)
                        return r;
                batch[i] = NULL;
                r = str_list_push(next, e->spiffe_id);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One level: the children of every ID in level, queried in chunks. */
static int walk_level(Datastore *ds,
                      const StrList *level,
                      int64_t now,
                      size_t max,
                      AuthzSet *set,
                      size_t *allocated,
                      StrList *next) {
        int r;

        for (size_t off = 0; off < level->n && !set->truncated; off += AUTHZ_PARENTS_PER_QUERY) {
                size_t k = level->n - off;
                Entry **batch = NULL;
                size_t n = 0;

                if (k > AUTHZ_PARENTS_PER_QUERY)
                        k = AUTHZ_PARENTS_PER_QUERY;
                r = ds_list_entries_by_parent_ids(ds, level->v + off, k, &batch, &n);
                if (r < 0)
                        return r;
                r = take_children(set, allocated, batch, n, now, max, next);
                entry_array_free(batch, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The agent's own ID plus its matching node aliases. aliases stays owned by the
 * caller (level borrows their strings). */
static int first_level(Datastore *ds,
                       const char *agent_id,
                       const SelectorSet *sel,
                       int64_t now,
                       Entry ***ret_aliases,
                       size_t *ret_n_aliases,
                       StrList *level) {
        Entry **aliases = NULL;
        size_t n = 0;
        int r;

        r = ds_list_entries(ds, &(EntryFilter){.only_node_aliases = true}, &aliases, &n);
        if (r < 0)
                return r;
        r = str_list_push(level, agent_id);
        for (size_t i = 0; i < n && r >= 0; i++)
                if (aliases[i]->node && authz_entry_usable(aliases[i], now) &&
                    selector_set_is_subset(&aliases[i]->selectors, sel))
                        r = str_list_push(level, aliases[i]->spiffe_id);
        if (r < 0) {
                entry_array_free(aliases, n);
                return r;
        }
        str_list_sort_uniq(level);
        *ret_aliases = aliases;
        *ret_n_aliases = n;
        return 0;
}

/* Adds level to used, then makes next minus everything already used the new level
 * (next is emptied). */
static int advance(StrList *used, StrList *level, StrList *next) {
        StrList t;
        size_t m = 0;
        int r;

        for (size_t i = 0; i < level->n; i++) {
                r = str_list_push(used, level->v[i]);
                if (r < 0)
                        return r;
        }
        str_list_sort_uniq(used);
        str_list_sort_uniq(next);
        for (size_t i = 0; i < next->n; i++)
                if (!str_list_contains(used, next->v[i]))
                        next->v[m++] = next->v[i];
        next->n = m;
        t = *level;
        *level = *next;
        *next = t;
        next->n = 0;
        return 0;
}

int authz_set_build(Datastore *ds,
                    const char *agent_id,
                    const SelectorSet *agent_selectors,
                    int64_t now,
                    AuthzSet **ret) {
        return authz_set_build_max(ds, agent_id, agent_selectors, now, 0, ret);
}

int authz_set_build_max(Datastore *ds,
                        const char *agent_id,
                        const SelectorSet *agent_selectors,
                        int64_t now,
                        size_t max,
                        AuthzSet **ret) {
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        _cleanup_(str_list_done) StrList level = {}, next = {}, used = {};
        Entry **aliases = NULL;
        size_t n_aliases = 0, allocated = 0;
        int r;

        if (!ds || !agent_id || !agent_selectors || !ret)
                return -EINVAL;
        if (max == 0)
                max = AUTHZ_ENTRIES_MAX;
        set = calloc(1, sizeof(AuthzSet));
        if (!set)
                return -ENOMEM;
        r = first_level(ds, agent_id, agent_selectors, now, &aliases, &n_aliases, &level);
        if (r < 0)
                return r;
        for (unsigned depth = 0; depth < AUTHZ_LEVELS_MAX && level.n > 0 && !set->truncated;
             depth++) {
                /* level's strings are borrowed from aliases or set: both outlive it. */
                r = walk_level(ds, &level, now, max, set, &allocated, &next);
                if (r >= 0)
                        r = advance(&used, &level, &next);
                if (r < 0)
                        break;
        }
        entry_array_free(aliases, n_aliases);
        if (r < 0)
                return r;
        if (set->truncated)
                log_warning(
                        "Agent %s is authorized for more than %zu entries, serving the first %zu",
                        agent_id, max, max);
        if (set->n > 1)
                qsort(set->entries, set->n, sizeof(Entry *), cmp_entry_id);
        *ret = TAKE_PTR(set);
        return 0;
}

const Entry *authz_set_find(const AuthzSet *set, const char *entry_id) {
        Entry key = {.id = (char *) entry_id}, *k = &key, **found;

        if (!set || !entry_id || set->n == 0)
                return NULL;
        found = bsearch(&k, set->entries, set->n, sizeof(Entry *), cmp_entry_id);
        return found ? *found : NULL;
}
