/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE

#include "manager_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "ossl_cleanup.h"
#include "pb_util.h"
#include "testlib.h"

int64_t fx_now(Fixture *fx) {
        return __atomic_load_n(&fx->clock, __ATOMIC_SEQ_CST);
}

void fx_advance(Fixture *fx, int64_t seconds) {
        __atomic_add_fetch(&fx->clock, seconds, __ATOMIC_SEQ_CST);
}

static int64_t clock_cb(void *ud) {
        return fx_now(ud);
}

/* The backend: entry "eN" -> spiffe://example.org/wN is how the tests name things, but
 * the signer takes the ID from the CSR as a real server takes it from the entry. */
static int sign_one(Fixture *fx, const ManagerSignRequest *req, ManagerSignResult *res) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *id = NULL;
        STACK_OF(GENERAL_NAME) *sans = NULL;
        int r;

        r = warden_csr_parse(req->csr, req->csr_len, &csr, NULL);
        if (r < 0)
                return r;
        r = warden_csr_public_key(csr, &pub);
        if (r < 0)
                return r;
        /* The CSR carries the ID as its URI SAN. */
        {
                STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
                for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts) && !id; i++) {
                        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
                        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
                                continue;
                        sans = X509V3_EXT_d2i(ext);
                        for (int j = 0; sans && j < sk_GENERAL_NAME_num(sans); j++) {
                                GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, j);
                                if (gn->type == GEN_URI)
                                        id = strndup((const char *) ASN1_STRING_get0_data(
                                                             gn->d.uniformResourceIdentifier),
                                                     (size_t) ASN1_STRING_length(
                                                             gn->d.uniformResourceIdentifier));
                        }
                        GENERAL_NAMES_free(sans);
                }
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        }
        if (!id)
                return -EINVAL;
        WardenSvidParams p = {
                .ca_cert = fx->ca,
                .ca_key = fx->ca_key,
                .public_key = pub,
                .spiffe_id = id,
                .ttl_seconds = FX_SVID_TTL,
                .now = (time_t) fx_now(fx),
        };
        r = warden_svid_sign(&p, &cert);
        if (r < 0)
                return r;
        return warden_x509_to_der(cert, &res->chain_der, &res->chain_len);
}

static int fx_batch_sign(void *ud,
                         const ManagerSignRequest *reqs,
                         size_t n,
                         ManagerSignResult *res) {
        Fixture *fx = ud;

        __atomic_add_fetch(&fx->sign_calls, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&fx->fail, __ATOMIC_SEQ_CST))
                return -EAGAIN;
        for (size_t i = 0; i < n; i++) {
                res[i].r = sign_one(fx, &reqs[i], &res[i]);
                if (res[i].r >= 0)
                        __atomic_add_fetch(&fx->signed_n, 1, __ATOMIC_SEQ_CST);
        }
        return 0;
}

static int fx_mint(void *ud,
                   const char *entry_id,
                   const char *const *aud,
                   size_t n_aud,
                   char **ret_token,
                   int64_t *ret_exp,
                   int64_t *ret_iat) {
        Fixture *fx = ud;
        _cleanup_free_ char *id = NULL;
        int64_t now = fx_now(fx);
        int r;

        __atomic_add_fetch(&fx->mint_calls, 1, __ATOMIC_SEQ_CST);
        if (fx->mint_delay_ms)
                usleep(fx->mint_delay_ms * 1000);
        if (__atomic_load_n(&fx->fail, __ATOMIC_SEQ_CST))
                return -EAGAIN;
        /* entry "eN" is spiffe://example.org/wN in every test */
        if (asprintf(&id, "spiffe://" FX_TD "/w%s", entry_id + 1) < 0)
                return -ENOMEM;
        WardenJwtMintParams p = {
                .key = fx->jwt_key,
                .kid = "k1",
                .spiffe_id = id,
                .audiences = aud,
                .n_audiences = n_aud,
                .ttl = FX_JWT_TTL,
                .now = now,
        };
        r = warden_jwtsvid_mint(&p, ret_token);
        if (r < 0)
                return r;
        *ret_exp = now + FX_JWT_TTL;
        *ret_iat = now;
        return 0;
}

static void on_snapshot(AgentSnapshot *s, void *ud) {
        Fixture *fx = ud;

        assert_true(s->version > fx->last_version);
        fx->last_version = s->version;
        fx->snapshots++;
}

void fx_init(Fixture *fx, size_t jwt_cache_max) {
        fx_init_max(fx, jwt_cache_max, 0);
}

void fx_init_max(Fixture *fx, size_t jwt_cache_max, size_t max_entries) {
        *fx = (Fixture){.clock = (int64_t) time(NULL)};
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &fx->ca_key));
        assert_ok(warden_ca_create_self_signed(fx->ca_key, FX_TD, 24 * 3600, 0, &fx->ca));
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &fx->jwt_key));
        assert_ok(warden_bundle_new(FX_TD, &fx->bundle));
        assert_ok(warden_bundle_add_x509_authority(fx->bundle, fx->ca));
        assert_ok(warden_bundle_add_jwt_authority(fx->bundle, "k1", fx->jwt_key, 0));
        warden_bundle_set_sequence(fx->bundle, 7);
        assert_ok(sd_event_new(&fx->event));
        assert_ok(metrics_registry_new(&fx->registry));
        assert_ok(metrics_names_register_agent(fx->registry, &fx->metrics));
        ManagerConfig cfg = {
                .trust_domain = FX_TD,
                .key_type = WARDEN_KEY_EC_P256,
                .jwt_cache_max = jwt_cache_max,
                .max_entries = max_entries,
                .clock = clock_cb,
                .clock_userdata = fx,
                .metrics = &fx->metrics,
        };
        ManagerBackend be = {.batch_sign = fx_batch_sign, .mint_jwt = fx_mint, .userdata = fx};
        assert_ok(manager_new(&cfg, &be, fx->event, &fx->m));
        manager_set_snapshot_callback(fx->m, on_snapshot, fx);
        assert_ok(manager_start(fx->m));
}

void fx_done(Fixture *fx) {
        fx->m = manager_free(fx->m);
        fx->registry = metrics_registry_free(fx->registry);
        fx->event = sd_event_unref(fx->event);
        EVP_PKEY_free(fx->ca_key);
        X509_free(fx->ca);
        EVP_PKEY_free(fx->jwt_key);
        warden_bundle_unref(fx->bundle);
}

void fx_run_until(Fixture *fx, bool (*cond)(Fixture *fx, const void *arg), const void *arg) {
        for (int i = 0; i < 400; i++) {
                if (cond(fx, arg))
                        return;
                assert_true(sd_event_run(fx->event, 25000) >= 0);
        }
        fail_msg("condition not reached within 10 s");
}

/* "id path sel1,sel2 [revision]" */
static Warden__Types__V1__Entry *entry_pb(const char *spec) {
        Warden__Types__V1__Entry *e = calloc(1, sizeof(*e));
        char id[64], path[128], sels[512];
        long long rev = 1;
        SelectorSet set = {};
        int n;

        assert_non_null(e);
        warden__types__v1__entry__init(e);
        n = sscanf(spec, "%63s %127s %511s %lld", id, path, sels, &rev);
        assert_true(n >= 3);
        e->id = strdup(id);
        assert_true(asprintf(&e->spiffe_id, "spiffe://" FX_TD "%s", path) > 0);
        e->parent_id = strdup("spiffe://" FX_TD "/warden/agent/join_token/x");
        e->hint = strdup("");
        e->env = strdup("");
        e->task = strdup("");
        e->state = strdup("active");
        e->created_by = strdup("");
        e->approved_by = strdup("");
        if (!streq(sels, "-")) {
                char *save = NULL;
                for (char *t = strtok_r(sels, ",", &save); t; t = strtok_r(NULL, ",", &save))
                        assert_ok(selector_set_add_string(&set, t, NULL));
        }
        assert_ok(pb_from_selectors(&set, &e->selectors, &e->n_selectors));
        selector_set_done(&set);
        e->revision = rev;
        e->created_at = 1000;
        return e;
}

Warden__Node__V1__SyncResponse *fx_sync(Fixture *fx,
                                        bool full,
                                        const char *const *entries,
                                        size_t n) {
        Warden__Node__V1__SyncResponse *r = calloc(1, sizeof(*r));

        assert_non_null(r);
        warden__node__v1__sync_response__init(r);
        r->full_snapshot = full;
        if (n > 0) {
                r->entries = calloc(n, sizeof(*r->entries));
                assert_non_null(r->entries);
        }
        for (size_t i = 0; i < n; i++) {
                r->entries[i] = entry_pb(entries[i]);
                r->n_entries = i + 1;
        }
        assert_ok(pb_from_bundle(fx->bundle, &r->bundle));
        r->sequence = 1;
        return r;
}

void fx_apply(Fixture *fx, bool full, const char *const *entries, size_t n) {
        Warden__Node__V1__SyncResponse *resp = fx_sync(fx, full, entries, n);

        assert_ok(manager_apply_sync(fx->m, resp));
        pb_free(resp);
}

const CachedSvid *fx_find(const AgentSnapshot *s, const char *entry_id) {
        for (size_t i = 0; s && i < s->n_svids; i++)
                if (streq(s->svids[i]->entry_id, entry_id))
                        return s->svids[i];
        return NULL;
}

size_t fx_signed(Fixture *fx) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = manager_snapshot(fx->m);
        size_t n = 0;

        for (size_t i = 0; s && i < s->n_svids; i++)
                if (s->svids[i]->chain_der)
                        n++;
        return n;
}

char *fx_check_svid(Fixture *fx, const CachedSvid *c, const char *spiffe_id) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL, *roots = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *id = NULL;
        char *serial = NULL;

        assert_non_null(c);
        assert_non_null(c->chain_der);
        assert_ok(warden_x509_chain_from_der(c->chain_der, c->chain_len, &chain));
        assert_ok(warden_key_from_pkcs8_der(c->key_pkcs8, c->key_len, &key));
        assert_true(warden_key_public_equal(X509_get0_pubkey(sk_X509_value(chain, 0)), key));
        roots = sk_X509_new_null();
        assert_non_null(roots);
        X509_up_ref(fx->ca);
        assert_true(sk_X509_push(roots, fx->ca) > 0);
        assert_ok(warden_svid_verify(sk_X509_value(chain, 0), NULL, roots, (time_t) fx_now(fx), &id,
                                     NULL));
        assert_string_equal(id, spiffe_id);
        assert_int_equal(c->expires_at, (int64_t) warden_x509_not_after(sk_X509_value(chain, 0)));
        assert_ok(warden_x509_serial_hex(sk_X509_value(chain, 0), &serial));
        return serial;
}
