/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include <warden/bundle.h>
#include <warden/spiffeid.h>

#include "greedy_realloc.h"
#include "jwk.h"
#include "ossl_cleanup.h"

typedef struct JwtAuthority {
        char *kid;
        EVP_PKEY *key;
        int64_t expires_at;
} JwtAuthority;

struct WardenBundle {
        unsigned n_ref;
        char *td;
        STACK_OF(X509) * x509;
        JwtAuthority *jwt;
        size_t n_jwt, n_jwt_alloc;
        uint64_t sequence;
        int64_t refresh_hint;
};

int warden_bundle_new(const char *td, WardenBundle **ret) {
        WardenBundle *b;
        char *name = NULL;
        int r;

        if (!td || !ret)
                return -EINVAL;
        r = warden_trust_domain_from_string(td, &name, NULL);
        if (r < 0)
                return r;

        b = calloc(1, sizeof(*b));
        if (!b) {
                free(name);
                return -ENOMEM;
        }
        b->n_ref = 1;
        b->td = name;
        b->x509 = sk_X509_new_null();
        if (!b->x509) {
                warden_bundle_unref(b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

WardenBundle *warden_bundle_ref(WardenBundle *b) {
        if (b)
                __atomic_add_fetch(&b->n_ref, 1, __ATOMIC_RELAXED);
        return b;
}

static void jwt_authority_done(JwtAuthority *a) {
        free(a->kid);
        EVP_PKEY_free(a->key);
}

WardenBundle *warden_bundle_unref(WardenBundle *b) {
        if (!b)
                return NULL;
        if (__atomic_sub_fetch(&b->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;

        for (size_t i = 0; i < b->n_jwt; i++)
                jwt_authority_done(&b->jwt[i]);
        free(b->jwt);
        sk_X509_pop_free(b->x509, X509_free);
        free(b->td);
        free(b);
        return NULL;
}

const char *warden_bundle_trust_domain(const WardenBundle *b) {
        return b ? b->td : NULL;
}

static size_t n_keys(const WardenBundle *b) {
        return (size_t) sk_X509_num(b->x509) + b->n_jwt;
}

static int find_x509(const WardenBundle *b, const X509 *cert) {
        for (int i = 0; i < sk_X509_num(b->x509); i++)
                if (X509_cmp(sk_X509_value(b->x509, i), cert) == 0)
                        return i;
        return -ENOENT;
}

int warden_bundle_add_x509_authority(WardenBundle *b, X509 *cert) {
        EVP_PKEY *key;
        JwkKeyInfo info;
        int r;

        if (!b || !cert)
                return -EINVAL;
        if (find_x509(b, cert) >= 0)
                return 0;
        key = X509_get0_pubkey(cert);
        if (!key)
                return ossl_to_errno(-EINVAL);
        r = jwk_key_info(key, &info, NULL);
        if (r < 0)
                return r;
        if (n_keys(b) >= WARDEN_BUNDLE_KEYS_MAX)
                return -E2BIG;

        if (sk_X509_push(b->x509, cert) <= 0)
                return -ENOMEM;
        X509_up_ref(cert);
        return 1;
}

int warden_bundle_remove_x509_authority(WardenBundle *b, const X509 *cert) {
        int i;

        if (!b || !cert)
                return -EINVAL;
        i = find_x509(b, cert);
        if (i < 0)
                return i;
        X509_free(sk_X509_delete(b->x509, i));
        return 0;
}

const STACK_OF(X509) * warden_bundle_x509_authorities(const WardenBundle *b) {
        return b->x509;
}

size_t warden_bundle_n_x509_authorities(const WardenBundle *b) {
        return b ? (size_t) sk_X509_num(b->x509) : 0;
}

static JwtAuthority *find_jwt(const WardenBundle *b, const char *kid) {
        for (size_t i = 0; i < b->n_jwt; i++)
                if (streq(b->jwt[i].kid, kid))
                        return &b->jwt[i];
        return NULL;
}

int warden_bundle_add_jwt_authority(WardenBundle *b,
                                    const char *kid,
                                    const EVP_PKEY *key,
                                    int64_t expires_at) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_free_ char *k = NULL;
        size_t kid_len;
        int r;

        if (!b || !kid || !key || expires_at < 0)
                return -EINVAL;
        kid_len = strnlen(kid, WARDEN_JWT_KID_MAX + 1);
        if (kid_len == 0 || kid_len > WARDEN_JWT_KID_MAX)
                return -EINVAL;
        if (find_jwt(b, kid))
                return -EEXIST;
        if (n_keys(b) >= WARDEN_BUNDLE_KEYS_MAX)
                return -E2BIG;

        r = jwk_public_copy(key, &pub);
        if (r < 0)
                return r;
        k = strdup(kid);
        if (!k)
                return -ENOMEM;

        r = GREEDY_REALLOC(b->jwt, b->n_jwt_alloc, b->n_jwt + 1);
        if (r < 0)
                return r;
        b->jwt[b->n_jwt++] = (JwtAuthority){
                .kid = TAKE_PTR(k),
                .key = TAKE_PTR(pub),
                .expires_at = expires_at,
        };
        return 0;
}

int warden_bundle_remove_jwt_authority(WardenBundle *b, const char *kid) {
        JwtAuthority *a;

        if (!b || !kid)
                return -EINVAL;
        a = find_jwt(b, kid);
        if (!a)
                return -ENOENT;
        jwt_authority_done(a);
        memmove(a, a + 1, (size_t) (b->jwt + b->n_jwt - (a + 1)) * sizeof(*a));
        b->n_jwt--;
        return 0;
}

EVP_PKEY *warden_bundle_find_jwt_key(const WardenBundle *b, const char *kid) {
        JwtAuthority *a;

        if (!b || !kid)
                return NULL;
        a = find_jwt(b, kid);
        return a ? a->key : NULL;
}

size_t warden_bundle_n_jwt_authorities(const WardenBundle *b) {
        return b ? b->n_jwt : 0;
}

int warden_bundle_get_jwt_authority(const WardenBundle *b,
                                    size_t i,
                                    const char **ret_kid,
                                    EVP_PKEY **ret_key,
                                    int64_t *ret_expires_at) {
        if (!b)
                return -EINVAL;
        if (i >= b->n_jwt)
                return -ENOENT;
        if (ret_kid)
                *ret_kid = b->jwt[i].kid;
        if (ret_key)
                *ret_key = b->jwt[i].key;
        if (ret_expires_at)
                *ret_expires_at = b->jwt[i].expires_at;
        return 0;
}

uint64_t warden_bundle_sequence(const WardenBundle *b) {
        return b ? b->sequence : 0;
}

void warden_bundle_set_sequence(WardenBundle *b, uint64_t sequence) {
        if (b)
                b->sequence = sequence;
}

int64_t warden_bundle_refresh_hint(const WardenBundle *b) {
        return b ? b->refresh_hint : 0;
}

int warden_bundle_set_refresh_hint(WardenBundle *b, int64_t seconds) {
        if (!b || seconds < 0)
                return -EINVAL;
        b->refresh_hint = seconds;
        return 0;
}

/* Every authority of a is in b; with equal counts and no duplicates that is set equality. */
static bool authorities_subset(const WardenBundle *a, const WardenBundle *b) {
        for (int i = 0; i < sk_X509_num(a->x509); i++)
                if (find_x509(b, sk_X509_value(a->x509, i)) < 0)
                        return false;
        for (size_t i = 0; i < a->n_jwt; i++) {
                const JwtAuthority *x = &a->jwt[i], *y = find_jwt(b, x->kid);
                if (!y || x->expires_at != y->expires_at || EVP_PKEY_eq(x->key, y->key) != 1)
                        return false;
        }
        return true;
}

bool warden_bundle_equal(const WardenBundle *a, const WardenBundle *b) {
        if (a == b)
                return true;
        if (!a || !b)
                return false;
        return streq(a->td, b->td) && a->sequence == b->sequence &&
               a->refresh_hint == b->refresh_hint && sk_X509_num(a->x509) == sk_X509_num(b->x509) &&
               a->n_jwt == b->n_jwt && authorities_subset(a, b);
}

int warden_bundle_copy(const WardenBundle *b, WardenBundle **ret) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *c = NULL;
        int r;

        if (!b || !ret)
                return -EINVAL;
        r = warden_bundle_new(b->td, &c);
        if (r < 0)
                return r;
        for (int i = 0; i < sk_X509_num(b->x509); i++) {
                r = warden_bundle_add_x509_authority(c, sk_X509_value(b->x509, i));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < b->n_jwt; i++) {
                r = warden_bundle_add_jwt_authority(c, b->jwt[i].kid, b->jwt[i].key,
                                                    b->jwt[i].expires_at);
                if (r < 0)
                        return r;
        }
        c->sequence = b->sequence;
        c->refresh_hint = b->refresh_hint;
        *ret = TAKE_PTR(c);
        return 0;
}

int warden_bundle_x509_der(const WardenBundle *b, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;

        if (!b || !ret || !ret_len)
                return -EINVAL;
        for (int i = 0; i < sk_X509_num(b->x509); i++) {
                int n = i2d_X509(sk_X509_value(b->x509, i), NULL);
                if (n <= 0)
                        return ossl_to_errno(-EINVAL);
                len += (size_t) n;
        }
        buf = malloc(len > 0 ? len : 1);
        if (!buf)
                return -ENOMEM;
        unsigned char *p = buf;
        for (int i = 0; i < sk_X509_num(b->x509); i++)
                if (i2d_X509(sk_X509_value(b->x509, i), &p) <= 0)
                        return ossl_to_errno(-EINVAL);

        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int warden_bundle_to_pem(const WardenBundle *b, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        char *data, *s;
        long n;

        if (!b || !ret)
                return -EINVAL;
        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return ossl_to_errno(-ENOMEM);
        for (int i = 0; i < sk_X509_num(b->x509); i++)
                if (PEM_write_bio_X509(bio, sk_X509_value(b->x509, i)) != 1)
                        return ossl_to_errno(-EIO);
        n = BIO_get_mem_data(bio, &data);
        if (n < 0)
                return -EIO;
        s = strndup(n > 0 ? data : "", (size_t) n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
