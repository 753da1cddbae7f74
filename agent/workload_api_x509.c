/* SPDX-License-Identifier: Apache-2.0 */
/* FetchX509SVID: the caller's X509SVIDResponse (spec/SPIFFE-FACTS.md §2.3-2.6). */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "spiffe/workload/workload.pb-c.h"
#include "workload_api_internal.h"

/* Marks the trust domains the given SVIDs federate with (never our own, index 0). */
static void federated_of(const WapiView *v, const CachedSvid *const *m, size_t n, bool *sel) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < m[i]->n_federates_with; j++) {
                        int k = wapi_view_find(v, m[i]->federates_with[j]);

                        if (k > 0)
                                sel[k] = true;
                }
}

typedef struct X509Parts {
        X509SVID *svids;
        X509SVID **svid_ptrs;
        X509SVIDResponse__FederatedBundlesEntry *fed;
        X509SVIDResponse__FederatedBundlesEntry **fed_ptrs;
        bool *sel;
} X509Parts;

static void x509_parts_done(X509Parts *p) {
        free(p->svids);
        free(p->svid_ptrs);
        free(p->fed);
        free(p->fed_ptrs);
        free(p->sel);
}

static int x509_parts_alloc(X509Parts *p, size_t n_svids, size_t n_tds) {
        p->svids = calloc(n_svids, sizeof(*p->svids));
        p->svid_ptrs = calloc(n_svids, sizeof(*p->svid_ptrs));
        p->fed = calloc(n_tds, sizeof(*p->fed));
        p->fed_ptrs = calloc(n_tds, sizeof(*p->fed_ptrs));
        p->sel = calloc(n_tds, sizeof(*p->sel));
        if (!p->svids || !p->svid_ptrs || !p->fed || !p->fed_ptrs || !p->sel)
                return -ENOMEM;
        return 0;
}

int wapi_x509_svid_response(const WapiView *v,
                            const SelectorSet *have,
                            uint8_t **ret,
                            size_t *ret_len) {
        X509SVIDResponse resp = X509_SVIDRESPONSE__INIT;
        _cleanup_free_ const CachedSvid **m = NULL;
        _cleanup_(x509_parts_done) X509Parts p = {};
        const WapiTd *own = &v->tds[0];
        size_t n, pending;
        int r;

        r = agent_snapshot_match(v->snap, have, &m, &n, &pending);
        if (r < 0)
                return r;
        if (n == 0)
                return pending > 0 ? 0 : -EPERM;
        r = x509_parts_alloc(&p, n, v->n_tds);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                X509SVID *s = &p.svids[i];

                x509_svid__init(s);
                s->spiffe_id = m[i]->spiffe_id;
                s->x509_svid = (ProtobufCBinaryData){m[i]->chain_len, m[i]->chain_der};
                s->x509_svid_key = (ProtobufCBinaryData){m[i]->key_len, m[i]->key_pkcs8};
                s->bundle = (ProtobufCBinaryData){own->der_len, own->der};
                if (m[i]->hint)
                        s->hint = m[i]->hint;
                p.svid_ptrs[i] = s;
        }
        resp.n_svids = n;
        resp.svids = p.svid_ptrs;

        federated_of(v, m, n, p.sel);
        for (size_t k = 1; k < v->n_tds; k++) {
                X509SVIDResponse__FederatedBundlesEntry *e = &p.fed[resp.n_federated_bundles];

                if (!p.sel[k])
                        continue;
                x509_svidresponse__federated_bundles_entry__init(e);
                e->key = v->tds[k].id;
                e->value = (ProtobufCBinaryData){v->tds[k].der_len, v->tds[k].der};
                p.fed_ptrs[resp.n_federated_bundles++] = e;
        }
        resp.federated_bundles = p.fed_ptrs;

        r = rpc_message_pack(&resp.base, ret, ret_len);
        return r < 0 ? r : 1;
}
