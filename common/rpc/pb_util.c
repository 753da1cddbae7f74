/* SPDX-License-Identifier: Apache-2.0 */
/* Generic protobuf-c helpers and Bundle/Selector conversions (moved here from
 * server/proto_convert.c so that the agent can use them too). */
#include "pb_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"

void pb_free(void *msg) {
        if (msg)
                protobuf_c_message_free_unpacked(msg, NULL);
}

int pb_pack(const void *msg, uint8_t **ret, size_t *ret_len) {
        size_t n = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf = malloc(n > 0 ? n : 1);

        if (!buf)
                return -ENOMEM;
        protobuf_c_message_pack(msg, buf);
        *ret = buf;
        *ret_len = n;
        return 0;
}

char *pb_strdup(const char *s) {
        return strdup(s ? s : "");
}

int pb_from_selectors(const SelectorSet *set, Warden__Types__V1__Selector ***ret, size_t *ret_n) {
        Warden__Types__V1__Selector **v;

        *ret = NULL;
        *ret_n = 0;
        if (set->n == 0)
                return 0;
        v = calloc(set->n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        /* Set the count first so a partial array is freed by pb_free of the parent. */
        *ret = v;
        for (size_t i = 0; i < set->n; i++) {
                Warden__Types__V1__Selector *s = malloc(sizeof(*s));
                if (!s)
                        return -ENOMEM;
                warden__types__v1__selector__init(s);
                s->type = pb_strdup(set->items[i].type);
                s->value = pb_strdup(set->items[i].value);
                v[i] = s;
                *ret_n = i + 1;
                if (!s->type || !s->value)
                        return -ENOMEM;
        }
        return 0;
}

int pb_to_selectors(Warden__Types__V1__Selector *const *sel,
                    size_t n,
                    SelectorSet *ret,
                    const char **reterr_reason) {
        SelectorSet set = {};
        int r;

        for (size_t i = 0; i < n; i++) {
                r = selector_validate(sel[i]->type, sel[i]->value, reterr_reason);
                if (r >= 0)
                        r = selector_set_add(&set, sel[i]->type, sel[i]->value);
                if (r < 0) {
                        if (r == -E2BIG && reterr_reason)
                                *reterr_reason = "too many selectors";
                        selector_set_done(&set);
                        return r;
                }
        }
        *ret = set;
        return 0;
}

static int bundle_x509_to_pb(const WardenBundle *b, Warden__Types__V1__Bundle *pb) {
        const STACK_OF(X509) *roots = warden_bundle_x509_authorities(b);
        size_t n = warden_bundle_n_x509_authorities(b);

        if (n == 0)
                return 0;
        pb->x509_authorities = calloc(n, sizeof(ProtobufCBinaryData));
        if (!pb->x509_authorities)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint8_t *der;
                size_t len;
                int r = warden_x509_to_der(sk_X509_value(roots, (int) i), &der, &len);
                if (r < 0)
                        return r;
                pb->x509_authorities[i].data = der;
                pb->x509_authorities[i].len = len;
                pb->n_x509_authorities = i + 1;
        }
        return 0;
}

static int bundle_jwt_to_pb(const WardenBundle *b, Warden__Types__V1__Bundle *pb) {
        size_t n = warden_bundle_n_jwt_authorities(b);

        if (n == 0)
                return 0;
        pb->jwt_authorities = calloc(n, sizeof(*pb->jwt_authorities));
        if (!pb->jwt_authorities)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                Warden__Types__V1__JWTKey *k = malloc(sizeof(*k));
                const char *kid;
                EVP_PKEY *key;
                int64_t exp;
                int r;

                if (!k)
                        return -ENOMEM;
                warden__types__v1__jwtkey__init(k);
                k->public_key.data = NULL;
                k->public_key.len = 0;
                pb->jwt_authorities[i] = k;
                pb->n_jwt_authorities = i + 1;
                k->kid = NULL;
                r = warden_bundle_get_jwt_authority(b, i, &kid, &key, &exp);
                if (r < 0)
                        return r;
                k->kid = pb_strdup(kid);
                if (!k->kid)
                        return -ENOMEM;
                r = warden_key_public_der(key, &k->public_key.data, &k->public_key.len);
                if (r < 0)
                        return r;
                k->expires_at = exp;
        }
        return 0;
}

int pb_from_bundle(const WardenBundle *b, Warden__Types__V1__Bundle **ret) {
        Warden__Types__V1__Bundle *pb = calloc(1, sizeof(*pb));
        int r;

        if (!pb)
                return -ENOMEM;
        warden__types__v1__bundle__init(pb);
        pb->trust_domain = pb_strdup(warden_bundle_trust_domain(b));
        r = pb->trust_domain ? 0 : -ENOMEM;
        if (r >= 0)
                r = bundle_x509_to_pb(b, pb);
        if (r >= 0)
                r = bundle_jwt_to_pb(b, pb);
        if (r < 0) {
                pb_free(pb);
                return r;
        }
        pb->refresh_hint = warden_bundle_refresh_hint(b);
        pb->sequence_number = warden_bundle_sequence(b);
        *ret = pb;
        return 0;
}

static int bundle_add_pb_authorities(WardenBundle *b,
                                     const Warden__Types__V1__Bundle *pb,
                                     const char **reterr_reason) {
        int r;

        for (size_t i = 0; i < pb->n_x509_authorities; i++) {
                _cleanup_(X509_freep) X509 *cert = NULL;
                r = warden_x509_from_der(pb->x509_authorities[i].data, pb->x509_authorities[i].len,
                                         &cert);
                if (r >= 0)
                        r = warden_bundle_add_x509_authority(b, cert);
                if (r < 0) {
                        *reterr_reason = "bad X.509 authority";
                        return r == -ENOMEM ? r : -EINVAL;
                }
        }
        for (size_t i = 0; i < pb->n_jwt_authorities; i++) {
                const Warden__Types__V1__JWTKey *k = pb->jwt_authorities[i];
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                r = warden_key_public_from_der(k->public_key.data, k->public_key.len, &key);
                if (r >= 0)
                        r = warden_bundle_add_jwt_authority(b, k->kid, key, k->expires_at);
                if (r < 0) {
                        *reterr_reason = "bad JWT authority";
                        return r == -ENOMEM ? r : -EINVAL;
                }
        }
        return 0;
}

int pb_to_bundle(const Warden__Types__V1__Bundle *pb,
                 WardenBundle **ret,
                 const char **reterr_reason) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        const char *reason = NULL;
        int r;

        r = warden_bundle_new(pb->trust_domain, &b);
        if (r < 0) {
                if (reterr_reason)
                        *reterr_reason = "bad trust domain";
                return r;
        }
        r = bundle_add_pb_authorities(b, pb, &reason);
        if (r < 0) {
                if (reterr_reason)
                        *reterr_reason = reason;
                return r;
        }
        if (pb->refresh_hint > 0)
                (void) warden_bundle_set_refresh_hint(b, pb->refresh_hint);
        warden_bundle_set_sequence(b, pb->sequence_number);
        *ret = TAKE_PTR(b);
        return 0;
}
