/* SPDX-License-Identifier: Apache-2.0 */
/* Test data source for the Workload API: see wapi_fixture.h. */
#define _GNU_SOURCE
#include "wapi_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <warden/jwtsvid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"

const FxEntry fx_default_entries[] = {
        {
                .entry_id = "00000000-0000-0000-0000-000000000001",
                .spiffe_id = "spiffe://" FX_TD "/workload/root",
                .hint = "root",
                .selectors = {"unix:uid:0"},
                .federates_with = FX_FED_TD,
                .created_at = 1000,
        },
        {
                .entry_id = "00000000-0000-0000-0000-000000000002",
                .spiffe_id = "spiffe://" FX_TD "/workload/nobody",
                .selectors = {"unix:uid:65534"},
                .created_at = 1000,
        },
        {
                .entry_id = "00000000-0000-0000-0000-000000000003",
                .spiffe_id = "spiffe://" FX_TD "/workload/pending",
                .selectors = {"unix:uid:4242"},
                .pending = true,
                .created_at = 1000,
        },
};
const size_t fx_n_default_entries = ELEMENTSOF(fx_default_entries);

/* --- source callbacks --- */

static AgentSnapshot *fx_snapshot(void *userdata) {
        Fixture *f = userdata;
        AgentSnapshot *s;

        pthread_mutex_lock(&f->lock);
        s = agent_snapshot_ref(f->current);
        pthread_mutex_unlock(&f->lock);
        return s;
}

typedef struct FxAsync {
        unsigned delay_ms;
        ManagerJwtCallback done;
        void *userdata;
        int r;
        char *token;
} FxAsync;

static void *fx_async_main(void *p) {
        FxAsync *a = p;

        if (a->delay_ms > 0)
                usleep(a->delay_ms * 1000u);
        a->done(a->r, a->token, a->userdata);
        erase_and_free(a->token);
        free(a);
        return NULL;
}

static char *cache_key(const char *id, const char *const *aud, size_t n) {
        char *k = strdup(id);

        for (size_t i = 0; k && i < n; i++) {
                char *x = NULL;

                if (asprintf(&x, "%s\x1f%s", k, aud[i]) < 0)
                        x = NULL;
                free(k);
                k = x;
        }
        return k;
}

/* The token for (svid, audiences): cached or freshly minted. */
static int fx_token(
        Fixture *f, const CachedSvid *svid, const char *const *aud, size_t n, char **ret) {
        _cleanup_free_ char *key = cache_key(svid->spiffe_id, aud, n);
        WardenJwtMintParams p = {
                .key = f->jwt_key,
                .kid = FX_KID,
                .spiffe_id = svid->spiffe_id,
                .audiences = aud,
                .n_audiences = n,
                .ttl = svid->jwt_svid_ttl > 0 ? svid->jwt_svid_ttl : 300,
        };
        char *token = NULL;
        int r;

        if (!key)
                return -ENOMEM;
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; f->jwt_cache && i < f->n_cache; i++)
                if (streq(f->cache_keys[i], key))
                        token = strdup(f->cache_tokens[i]);
        pthread_mutex_unlock(&f->lock);
        if (token) {
                *ret = token;
                return 0;
        }
        r = warden_jwtsvid_mint(&p, &token);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        f->n_mints++;
        if (f->jwt_cache) {
                char **k = reallocarray(f->cache_keys, f->n_cache + 1, sizeof(char *));
                char **t = k ? reallocarray(f->cache_tokens, f->n_cache + 1, sizeof(char *)) : NULL;

                if (k)
                        f->cache_keys = k;
                if (t) {
                        f->cache_tokens = t;
                        f->cache_keys[f->n_cache] = TAKE_PTR(key);
                        f->cache_tokens[f->n_cache] = strdup(token);
                        if (f->cache_tokens[f->n_cache])
                                f->n_cache++;
                        else
                                free(f->cache_keys[f->n_cache]);
                }
        }
        pthread_mutex_unlock(&f->lock);
        *ret = token;
        return 0;
}

void fx_set_jwt_mode(Fixture *f, FxJwtMode mode) {
        pthread_mutex_lock(&f->lock);
        f->jwt = mode;
        pthread_mutex_unlock(&f->lock);
}

unsigned fx_n_fetches(Fixture *f) {
        unsigned n;

        pthread_mutex_lock(&f->lock);
        n = f->n_fetches;
        pthread_mutex_unlock(&f->lock);
        return n;
}

static int fx_fetch_jwt(void *userdata,
                        uid_t uid,
                        const CachedSvid *svid,
                        const char *const *aud,
                        size_t n,
                        ManagerJwtCallback done,
                        void *done_userdata) {
        Fixture *f = userdata;
        char *token = NULL;
        FxAsync *a;
        int r, fail, fail_now;
        unsigned delay_ms;
        bool async;

        pthread_mutex_lock(&f->lock);
        f->n_fetches++;
        f->last_uid = uid;
        fail = f->jwt.fail;
        fail_now = f->jwt.fail_now;
        delay_ms = f->jwt.delay_ms;
        async = f->jwt.async && f->n_threads < FX_MAX_THREADS;
        pthread_mutex_unlock(&f->lock);
        if (fail_now < 0)
                return fail_now;

        r = fail < 0 ? fail : fx_token(f, svid, aud, n, &token);
        if (!async) {
                done(r, r < 0 ? NULL : token, done_userdata);
                erase_and_free(token);
                return 0;
        }
        a = malloc(sizeof(*a));
        if (!a) {
                erase_and_free(token);
                return -ENOMEM;
        }
        *a = (FxAsync){.delay_ms = delay_ms,
                       .done = done,
                       .userdata = done_userdata,
                       .r = r,
                       .token = token};
        pthread_mutex_lock(&f->lock);
        if (pthread_create(&f->threads[f->n_threads], NULL, fx_async_main, a) == 0)
                f->n_threads++;
        else {
                pthread_mutex_unlock(&f->lock);
                erase_and_free(a->token);
                free(a);
                return -EAGAIN;
        }
        pthread_mutex_unlock(&f->lock);
        return 0;
}

/* --- setup --- */

static int make_ca(const char *td, EVP_PKEY **ret_key, X509 **ret_ca) {
        int r = warden_key_generate(WARDEN_KEY_EC_P256, ret_key);

        if (r < 0)
                return r;
        return warden_ca_create_self_signed(*ret_key, td, 24 * 3600, 0, ret_ca);
}

int fx_new(Fixture **ret) {
        Fixture *f = calloc(1, sizeof(*f));
        int r;

        if (!f)
                return -ENOMEM;
        pthread_mutex_init(&f->lock, NULL);
        f->source = (WorkloadApiSource){
                .snapshot = fx_snapshot,
                .fetch_jwt_svid = fx_fetch_jwt,
                .userdata = f,
        };
        r = make_ca(FX_TD, &f->ca_key, &f->ca);
        if (r >= 0)
                r = make_ca(FX_FED_TD, &f->fed_ca_key, &f->fed_ca);
        if (r >= 0)
                r = make_ca(FX_OTHER_TD, &f->other_ca_key, &f->other_ca);
        if (r >= 0)
                r = warden_key_generate(WARDEN_KEY_EC_P256, &f->jwt_key);
        if (r >= 0)
                r = warden_key_generate(WARDEN_KEY_EC_P256, &f->fed_jwt_key);
        if (r < 0) {
                fx_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

Fixture *fx_free(Fixture *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_threads; i++)
                pthread_join(f->threads[i], NULL);
        agent_snapshot_unref(f->current);
        for (size_t i = 0; i < f->n_cache; i++) {
                free(f->cache_keys[i]);
                erase_and_free(f->cache_tokens[i]);
        }
        free(f->cache_keys);
        free(f->cache_tokens);
        EVP_PKEY_free(f->ca_key);
        EVP_PKEY_free(f->jwt_key);
        EVP_PKEY_free(f->fed_ca_key);
        EVP_PKEY_free(f->fed_jwt_key);
        EVP_PKEY_free(f->other_ca_key);
        EVP_PKEY_free(f->extra_key);
        free(f->extra_kid);
        X509_free(f->ca);
        X509_free(f->fed_ca);
        X509_free(f->other_ca);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

/* --- snapshots --- */

static int sign_svid(Fixture *f, const char *spiffe_id, SvidData **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        uint8_t *pk = NULL;
        size_t pk_len = 0, der_len = 0;
        int r;

        r = warden_key_generate(WARDEN_KEY_EC_P256, &key);
        if (r < 0)
                return r;
        r = warden_svid_sign(&(WardenSvidParams){.ca_cert = f->ca,
                                                 .ca_key = f->ca_key,
                                                 .public_key = key,
                                                 .spiffe_id = spiffe_id,
                                                 .ttl_seconds = 3600},
                             &leaf);
        if (r < 0)
                return r;
        r = warden_x509_to_der(leaf, &der, &der_len);
        if (r < 0)
                return r;
        r = warden_key_to_pkcs8_der(key, &pk, &pk_len);
        if (r < 0)
                return r;
        r = svid_data_new(der, der_len, pk, pk_len, warden_x509_not_before(leaf),
                          warden_x509_not_after(leaf), ret);
        warden_key_der_free(pk, pk_len);
        return r;
}

static int make_info(const FxEntry *e, EntryInfo **ret) {
        _cleanup_(entry_info_unrefp) EntryInfo *i = NULL;
        int r;

        r = entry_info_new(&i);
        if (r < 0)
                return r;
        i->entry_id = strdup(e->entry_id);
        i->spiffe_id = strdup(e->spiffe_id);
        i->hint = e->hint ? strdup(e->hint) : NULL;
        if (!i->entry_id || !i->spiffe_id || (e->hint && !i->hint))
                return -ENOMEM;
        for (size_t k = 0; k < FX_MAX_SELECTORS && e->selectors[k]; k++) {
                r = selector_set_add_string(&i->selectors, e->selectors[k], NULL);
                if (r < 0)
                        return r;
        }
        i->created_at = e->created_at;
        i->jwt_svid_ttl = 300;
        if (e->federates_with) {
                i->federates_with = calloc(1, sizeof(char *));
                if (!i->federates_with)
                        return -ENOMEM;
                i->federates_with[0] = strdup(e->federates_with);
                if (!i->federates_with[0])
                        return -ENOMEM;
                i->n_federates_with = 1;
        }
        *ret = TAKE_PTR(i);
        return 0;
}

static int make_svid(Fixture *f, const FxEntry *e, CachedSvid **ret) {
        _cleanup_(entry_info_unrefp) EntryInfo *info = NULL;
        _cleanup_(svid_data_unrefp) SvidData *svid = NULL;
        int r;

        r = make_info(e, &info);
        if (r < 0)
                return r;
        if (!e->pending) {
                r = sign_svid(f, e->spiffe_id, &svid);
                if (r < 0)
                        return r;
        }
        return cached_svid_new(info, svid, ret);
}

static int make_bundle(
        const char *td, X509 *ca, const char *kid, EVP_PKEY *jwt, WardenBundle **ret) {
        WardenBundle *b = NULL;
        int r;

        r = warden_bundle_new(td, &b);
        if (r >= 0)
                r = warden_bundle_add_x509_authority(b, ca);
        if (r >= 0 && jwt)
                r = warden_bundle_add_jwt_authority(b, kid, jwt, 0);
        if (r < 0) {
                warden_bundle_unref(b);
                return r;
        }
        *ret = b;
        return 0;
}

static int cmp_svid(const void *a, const void *b) {
        const CachedSvid *const *x = a, *const *y = b;

        return strcmp((*x)->entry_id, (*y)->entry_id);
}

static int build_snapshot(Fixture *f, const FxEntry *entries, size_t n, AgentSnapshot *s) {
        int r;

        r = make_bundle(FX_TD, f->ca, FX_KID, f->jwt_key, &s->bundle);
        if (r >= 0 && f->extra_key)
                r = warden_bundle_add_jwt_authority(s->bundle, f->extra_kid, f->extra_key, 0);
        if (r < 0)
                return r;
        s->federated = calloc(2, sizeof(*s->federated));
        if (!s->federated)
                return -ENOMEM;
        r = make_bundle(FX_FED_TD, f->fed_ca, FX_FED_KID, f->fed_jwt_key, &s->federated[0]);
        if (r < 0)
                return r;
        s->n_federated = 1;
        r = make_bundle(FX_OTHER_TD, f->other_ca, NULL, NULL, &s->federated[1]);
        if (r < 0)
                return r;
        s->n_federated = 2;

        s->svids = calloc(n > 0 ? n : 1, sizeof(*s->svids));
        if (!s->svids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = make_svid(f, &entries[i], &s->svids[i]);
                if (r < 0)
                        return r;
                s->n_svids++;
        }
        qsort(s->svids, s->n_svids, sizeof(*s->svids), cmp_svid);
        return 0;
}

int fx_publish(Fixture *f, const FxEntry *entries, size_t n) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = NULL;
        int r;

        r = agent_snapshot_new(FX_TD, &s);
        if (r < 0)
                return r;
        r = build_snapshot(f, entries, n, s);
        if (r < 0)
                return r;
        f->entries = entries;
        f->n_entries = n;
        pthread_mutex_lock(&f->lock);
        s->version = ++f->version;
        agent_snapshot_unref(f->current);
        f->current = TAKE_PTR(s);
        pthread_mutex_unlock(&f->lock);
        return 0;
}

int fx_add_jwt_key(Fixture *f) {
        int r;

        EVP_PKEY_free(f->extra_key);
        f->extra_key = NULL;
        free(f->extra_kid);
        if (asprintf(&f->extra_kid, "extra-key-%llu", (unsigned long long) f->version) < 0) {
                f->extra_kid = NULL;
                return -ENOMEM;
        }
        r = warden_key_generate(WARDEN_KEY_EC_P256, &f->extra_key);
        if (r < 0)
                return r;
        return fx_publish(f, f->entries, f->n_entries);
}

void fx_clear(Fixture *f) {
        pthread_mutex_lock(&f->lock);
        f->current = agent_snapshot_unref(f->current);
        pthread_mutex_unlock(&f->lock);
}

int fx_mint(Fixture *f,
            bool fed,
            const char *spiffe_id,
            const char *audience,
            int64_t ttl,
            int64_t now,
            char **ret) {
        const char *aud[] = {audience};
        WardenJwtMintParams p = {
                .key = fed ? f->fed_jwt_key : f->jwt_key,
                .kid = fed ? FX_FED_KID : FX_KID,
                .spiffe_id = spiffe_id,
                .audiences = aud,
                .n_audiences = 1,
                .ttl = ttl,
                .now = now,
        };

        return warden_jwtsvid_mint(&p, ret);
}
