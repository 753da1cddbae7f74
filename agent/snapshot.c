/* SPDX-License-Identifier: Apache-2.0 */
#include "snapshot.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int agent_snapshot_new(const char *trust_domain, AgentSnapshot **ret) {
        AgentSnapshot *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->trust_domain = strdup(trust_domain ? trust_domain : "");
        if (!s->trust_domain) {
                free(s);
                return -ENOMEM;
        }
        s->n_ref = 1;
        *ret = s;
        return 0;
}

AgentSnapshot *agent_snapshot_ref(AgentSnapshot *s) {
        if (s)
                __atomic_add_fetch(&s->n_ref, 1, __ATOMIC_RELAXED);
        return s;
}

int entry_info_new(EntryInfo **ret) {
        EntryInfo *i = calloc(1, sizeof(*i));

        if (!i)
                return -ENOMEM;
        i->n_ref = 1;
        *ret = i;
        return 0;
}

EntryInfo *entry_info_ref(EntryInfo *i) {
        if (i)
                __atomic_add_fetch(&i->n_ref, 1, __ATOMIC_RELAXED);
        return i;
}

EntryInfo *entry_info_unref(EntryInfo *i) {
        if (!i || __atomic_sub_fetch(&i->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        if (i->packed) {
                free(i); /* strings and arrays live in the same allocation */
                return NULL;
        }
        free(i->entry_id);
        free(i->spiffe_id);
        free(i->hint);
        selector_set_done(&i->selectors);
        for (size_t k = 0; k < i->n_federates_with; k++)
                free(i->federates_with[k]);
        free(i->federates_with);
        free(i);
        return NULL;
}

static size_t str_size(const char *s) {
        return s ? strlen(s) + 1 : 0;
}

static char *put_str(char **p, const char *s) {
        size_t n = str_size(s);
        char *r = *p;

        if (!s)
                return NULL;
        memcpy(r, s, n);
        *p += n;
        return r;
}

int entry_info_pack(const EntryInfo *src, EntryInfo **ret) {
        size_t n_sel = src->selectors.n, n_fed = src->n_federates_with, size;
        EntryInfo *i;
        Selector *items;
        char **fed, *p;

        size = sizeof(*i) + n_sel * sizeof(Selector) + n_fed * sizeof(char *) +
               str_size(src->entry_id) + str_size(src->spiffe_id) + str_size(src->hint);
        for (size_t k = 0; k < n_sel; k++)
                size += str_size(src->selectors.items[k].type) +
                        str_size(src->selectors.items[k].value);
        for (size_t k = 0; k < n_fed; k++)
                size += str_size(src->federates_with[k]);
        i = malloc(size);
        if (!i)
                return -ENOMEM;
        items = (Selector *) (i + 1);
        fed = (char **) (items + n_sel);
        p = (char *) (fed + n_fed);
        *i = (EntryInfo){
                .n_ref = 1,
                .packed = true,
                .entry_id = put_str(&p, src->entry_id),
                .spiffe_id = put_str(&p, src->spiffe_id),
                .hint = put_str(&p, src->hint),
                .selectors = {.items = n_sel > 0 ? items : NULL,
                              .n = n_sel,
                              .allocated = n_sel,
                              .max = src->selectors.max},
                .created_at = src->created_at,
                .jwt_svid_ttl = src->jwt_svid_ttl,
                .federates_with = n_fed > 0 ? fed : NULL,
                .n_federates_with = n_fed,
        };
        for (size_t k = 0; k < n_sel; k++) {
                items[k].type = put_str(&p, src->selectors.items[k].type);
                items[k].value = put_str(&p, src->selectors.items[k].value);
        }
        for (size_t k = 0; k < n_fed; k++)
                fed[k] = put_str(&p, src->federates_with[k]);
        *ret = i;
        return 0;
}

int svid_data_new(const uint8_t *chain,
                  size_t chain_len,
                  const uint8_t *key,
                  size_t key_len,
                  int64_t not_before,
                  int64_t not_after,
                  SvidData **ret) {
        SvidData *d;

        if (!chain || chain_len == 0 || !key || key_len == 0 ||
            chain_len > SIZE_MAX / 2 - sizeof(*d) || key_len > SIZE_MAX / 2)
                return -EINVAL;
        d = malloc(sizeof(*d) + chain_len + key_len);
        if (!d)
                return -ENOMEM;
        *d = (SvidData){.n_ref = 1,
                        .not_before = not_before,
                        .not_after = not_after,
                        .chain_len = chain_len,
                        .key_len = key_len};
        memcpy(d->bytes, chain, chain_len);
        memcpy(d->bytes + chain_len, key, key_len);
        *ret = d;
        return 0;
}

SvidData *svid_data_ref(SvidData *d) {
        if (d)
                __atomic_add_fetch(&d->n_ref, 1, __ATOMIC_RELAXED);
        return d;
}

SvidData *svid_data_unref(SvidData *d) {
        if (!d || __atomic_sub_fetch(&d->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        explicit_erase(d->bytes + d->chain_len, d->key_len);
        free(d);
        return NULL;
}

int cached_svid_new(EntryInfo *info, SvidData *svid, CachedSvid **ret) {
        CachedSvid *c;

        if (!info)
                return -EINVAL;
        c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (CachedSvid){
                .n_ref = 1,
                .info = entry_info_ref(info),
                .svid = svid_data_ref(svid),
                .entry_id = info->entry_id,
                .spiffe_id = info->spiffe_id,
                .hint = info->hint,
                .selectors = info->selectors,
                .entry_created_at = info->created_at,
                .jwt_svid_ttl = info->jwt_svid_ttl,
                .federates_with = info->federates_with,
                .n_federates_with = info->n_federates_with,
        };
        if (svid) {
                c->chain_der = svid->bytes;
                c->chain_len = svid->chain_len;
                c->key_pkcs8 = svid_data_key(svid);
                c->key_len = svid->key_len;
                c->not_before = svid->not_before;
                c->expires_at = svid->not_after;
        }
        *ret = c;
        return 0;
}

CachedSvid *cached_svid_ref(CachedSvid *c) {
        if (c)
                __atomic_add_fetch(&c->n_ref, 1, __ATOMIC_RELAXED);
        return c;
}

CachedSvid *cached_svid_unref(CachedSvid *c) {
        if (!c || __atomic_sub_fetch(&c->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        entry_info_unref(c->info);
        svid_data_unref(c->svid);
        free(c);
        return NULL;
}

AgentSnapshot *agent_snapshot_unref(AgentSnapshot *s) {
        if (!s)
                return NULL;
        if (__atomic_sub_fetch(&s->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        free(s->trust_domain);
        warden_bundle_unref(s->bundle);
        for (size_t i = 0; i < s->n_federated; i++)
                warden_bundle_unref(s->federated[i]);
        free(s->federated);
        for (size_t i = 0; i < s->n_svids; i++)
                cached_svid_unref(s->svids[i]);
        free(s->svids);
        free(s);
        return NULL;
}

WardenBundle *agent_snapshot_federated(const AgentSnapshot *s, const char *td) {
        for (size_t i = 0; i < s->n_federated; i++)
                if (streq(warden_bundle_trust_domain(s->federated[i]), td))
                        return s->federated[i];
        return NULL;
}

/* true when an earlier match already carries this hint and that entry is older (or the
 * same age with a smaller id): the later one is dropped, as SPIRE's hint filter does. */
static int hint_taken(const CachedSvid **out, size_t n, const CachedSvid *c, size_t *ret_index) {
        for (size_t i = 0; i < n; i++) {
                if (!out[i]->hint || !streq(out[i]->hint, c->hint))
                        continue;
                *ret_index = i;
                return 1;
        }
        return 0;
}

static bool older(const CachedSvid *a, const CachedSvid *b) {
        if (a->entry_created_at != b->entry_created_at)
                return a->entry_created_at < b->entry_created_at;
        return strcmp(a->entry_id, b->entry_id) < 0;
}

int agent_snapshot_match(const AgentSnapshot *s,
                         const SelectorSet *have,
                         const CachedSvid ***ret,
                         size_t *ret_n,
                         size_t *ret_pending) {
        const CachedSvid **out = NULL;
        size_t n = 0, pending = 0;

        if (s->n_svids > 0) {
                out = calloc(s->n_svids, sizeof(*out));
                if (!out)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_svids; i++) {
                const CachedSvid *c = s->svids[i];
                size_t k;

                if (!selector_set_is_subset(&c->selectors, have))
                        continue;
                if (!c->chain_der) {
                        pending++;
                        continue;
                }
                if (c->hint && *c->hint && hint_taken(out, n, c, &k)) {
                        if (older(c, out[k]))
                                out[k] = c;
                        continue;
                }
                out[n++] = c;
        }
        *ret = out;
        *ret_n = n;
        if (ret_pending)
                *ret_pending = pending;
        return 0;
}
