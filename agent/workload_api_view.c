/* SPDX-License-Identifier: Apache-2.0 */
/* WapiView: a snapshot plus the encodings every caller shares (DER bundles and
 * JWKS per trust domain), computed once when the snapshot is first used. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_api_internal.h"

static void td_done(WapiTd *t) {
        free(t->td);
        free(t->id);
        free(t->der);
        free(t->jwks);
}

static int td_fill(WapiTd *t, const WardenBundle *b) {
        int r;

        t->td = strdup(warden_bundle_trust_domain(b));
        if (!t->td || asprintf(&t->id, "spiffe://%s", t->td) < 0) {
                t->id = NULL;
                return -ENOMEM;
        }
        r = warden_bundle_x509_der(b, &t->der, &t->der_len);
        if (r < 0)
                return r;
        r = warden_bundle_to_jwks(b, &t->jwks);
        if (r < 0)
                return r;
        t->jwks_len = strlen(t->jwks);
        return 0;
}

static int cmp_bundle_td(const void *a, const void *b) {
        const WardenBundle *const *x = a, *const *y = b;

        return strcmp(warden_bundle_trust_domain(*x), warden_bundle_trust_domain(*y));
}

WapiView *wapi_view_ref(WapiView *v) {
        if (v)
                __atomic_add_fetch(&v->n_ref, 1, __ATOMIC_RELAXED);
        return v;
}

WapiView *wapi_view_unref(WapiView *v) {
        if (!v || __atomic_sub_fetch(&v->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        for (size_t i = 0; i < v->n_tds; i++)
                td_done(&v->tds[i]);
        free(v->tds);
        agent_snapshot_unref(v->snap);
        free(v);
        return NULL;
}

int wapi_view_new(AgentSnapshot *snap, WapiView **ret) {
        _cleanup_(wapi_view_unrefp) WapiView *v = NULL;
        _cleanup_free_ WardenBundle **fed = NULL;
        const char *own;
        int r;

        if (!snap || !snap->bundle)
                return -EINVAL;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->n_ref = 1;
        v->snap = agent_snapshot_ref(snap);
        v->tds = calloc(snap->n_federated + 1, sizeof(*v->tds));
        if (!v->tds)
                return -ENOMEM;
        r = td_fill(&v->tds[v->n_tds++], snap->bundle);
        if (r < 0)
                return r;
        own = v->tds[0].td;

        /* Federated trust domains sorted by name: map order is stable across snapshots,
         * so equal content packs to equal bytes. */
        if (snap->n_federated > 0) {
                fed = malloc(snap->n_federated * sizeof(*fed));
                if (!fed)
                        return -ENOMEM;
                memcpy(fed, snap->federated, snap->n_federated * sizeof(*fed));
                qsort(fed, snap->n_federated, sizeof(*fed), cmp_bundle_td);
        }
        for (size_t i = 0; i < snap->n_federated; i++) {
                const char *td = warden_bundle_trust_domain(fed[i]);

                if (streq(td, own) || (v->n_tds > 1 && streq(td, v->tds[v->n_tds - 1].td)))
                        continue; /* never our own, no duplicates */
                r = td_fill(&v->tds[v->n_tds++], fed[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int wapi_view_find(const WapiView *v, const char *td) {
        for (size_t i = 0; i < v->n_tds; i++)
                if (streq(v->tds[i].td, td))
                        return (int) i;
        return -ENOENT;
}

size_t wapi_view_caller_tds(const WapiView *v, const SelectorSet *have, bool *sel) {
        const AgentSnapshot *s = v->snap;
        size_t n = 0;

        memset(sel, 0, v->n_tds * sizeof(*sel));
        sel[0] = true;
        for (size_t i = 0; i < s->n_svids; i++) {
                const CachedSvid *c = s->svids[i];

                if (!selector_set_is_subset(&c->selectors, have))
                        continue;
                n++;
                for (size_t j = 0; j < c->n_federates_with; j++) {
                        int k = wapi_view_find(v, c->federates_with[j]);

                        if (k > 0)
                                sel[k] = true;
                }
        }
        return n;
}

bool wapi_view_pending(const WapiView *v, const SelectorSet *have, const char *spiffe_id) {
        const AgentSnapshot *s = v->snap;

        for (size_t i = 0; i < s->n_svids; i++) {
                const CachedSvid *c = s->svids[i];

                if (!c->chain_der && (!spiffe_id || streq(c->spiffe_id, spiffe_id)) &&
                    selector_set_is_subset(&c->selectors, have))
                        return true;
        }
        return false;
}
