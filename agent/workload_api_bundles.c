/* SPDX-License-Identifier: Apache-2.0 */
/* FetchX509Bundles and FetchJWTBundles: our trust domain's bundle plus those the
 * caller's entries federate with, as DER roots or as a plain JWKS (exactly what SPIRE
 * sends: every key with kid, no use). */
#include <errno.h>
#include <stdlib.h>

#include "spiffe/workload/workload.pb-c.h"
#include "workload_api_internal.h"

/* The trust domains the caller sees (sel, malloc'd), or -EPERM without identity. */
static int caller_tds(const WapiView *v, const SelectorSet *have, bool **ret) {
        _cleanup_free_ bool *sel = calloc(v->n_tds, sizeof(*sel));

        if (!sel)
                return -ENOMEM;
        if (wapi_view_caller_tds(v, have, sel) == 0)
                return -EPERM;
        *ret = TAKE_PTR(sel);
        return 0;
}

int wapi_x509_bundles_response(const WapiView *v,
                               const SelectorSet *have,
                               uint8_t **ret,
                               size_t *ret_len) {
        X509BundlesResponse resp = X509_BUNDLES_RESPONSE__INIT;
        _cleanup_free_ X509BundlesResponse__BundlesEntry *e = NULL, **ptrs = NULL;
        _cleanup_free_ bool *sel = NULL;
        int r;

        r = caller_tds(v, have, &sel);
        if (r < 0)
                return r;
        e = calloc(v->n_tds, sizeof(*e));
        ptrs = calloc(v->n_tds, sizeof(*ptrs));
        if (!e || !ptrs)
                return -ENOMEM;
        for (size_t k = 0; k < v->n_tds; k++) {
                X509BundlesResponse__BundlesEntry *x = &e[resp.n_bundles];

                if (!sel[k])
                        continue;
                x509_bundles_response__bundles_entry__init(x);
                x->key = v->tds[k].id;
                x->value = (ProtobufCBinaryData){v->tds[k].der_len, v->tds[k].der};
                ptrs[resp.n_bundles++] = x;
        }
        resp.bundles = ptrs;
        r = rpc_message_pack(&resp.base, ret, ret_len);
        return r < 0 ? r : 1;
}

int wapi_jwt_bundles_response(const WapiView *v,
                              const SelectorSet *have,
                              uint8_t **ret,
                              size_t *ret_len) {
        JWTBundlesResponse resp = JWTBUNDLES_RESPONSE__INIT;
        _cleanup_free_ JWTBundlesResponse__BundlesEntry *e = NULL, **ptrs = NULL;
        _cleanup_free_ bool *sel = NULL;
        int r;

        r = caller_tds(v, have, &sel);
        if (r < 0)
                return r;
        e = calloc(v->n_tds, sizeof(*e));
        ptrs = calloc(v->n_tds, sizeof(*ptrs));
        if (!e || !ptrs)
                return -ENOMEM;
        for (size_t k = 0; k < v->n_tds; k++) {
                JWTBundlesResponse__BundlesEntry *x = &e[resp.n_bundles];

                if (!sel[k])
                        continue;
                jwtbundles_response__bundles_entry__init(x);
                x->key = v->tds[k].id;
                x->value = (ProtobufCBinaryData){v->tds[k].jwks_len, (uint8_t *) v->tds[k].jwks};
                ptrs[resp.n_bundles++] = x;
        }
        resp.bundles = ptrs;
        r = rpc_message_pack(&resp.base, ret, ret_len);
        return r < 0 ? r : 1;
}
