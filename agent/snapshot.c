/* SPDX-License-Identifier: Apache-2.0 */
#include "snapshot.h"

#include <errno.h>
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

CachedSvid *cached_svid_free(CachedSvid *c) {
        if (!c)
                return NULL;
        free(c->entry_id);
        free(c->spiffe_id);
        free(c->hint);
        selector_set_done(&c->selectors);
        for (size_t i = 0; i < c->n_federates_with; i++)
                free(c->federates_with[i]);
        free(c->federates_with);
        free(c->chain_der);
        explicit_erase(c->key_pkcs8, c->key_len);
        free(c->key_pkcs8);
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
                cached_svid_free(s->svids[i]);
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
