/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/ca: the rotation timeline (ca_ttl = 60 s, driven through `now`),
 * restarts during rotation and after a long downtime, and upstream mode. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <warden/jwtsvid.h>

#include "ca.h"
#include "ca_test_util.h"
#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"

static void ca_freep_(Ca **ca) {
        ca_free(*ca);
}
#define _cleanup_ca_ _cleanup_(ca_freep_)

static uint64_t seq(Ca *ca) {
        return warden_bundle_sequence(ca_bundle(ca));
}

static bool issued_by(X509 *issuer, STACK_OF(X509) * chain, int i) {
        return X509_check_issued(issuer, sk_X509_value(chain, i)) == X509_V_OK;
}

/* The bundle root that is not `other`. */
static X509 *other_root_ref(Ca *ca, X509 *other) {
        STACK_OF(X509) *roots = bundle_roots(ca);

        for (int i = 0; i < sk_X509_num(roots); i++)
                if (X509_cmp(sk_X509_value(roots, i), other) != 0)
                        return bundle_root_ref(ca, i);
        fail_msg("no second root");
        return NULL;
}

static void tick_expect(Ca *ca, time_t now, bool want_changed) {
        bool changed = !want_changed;

        assert_ok(ca_tick(ca, now, &changed));
        assert_int_equal(changed, want_changed);
}

/* State carried through the phases of the ca_ttl = 60 s timeline. */
typedef struct Timeline {
        CaFixture f;
        Ca *ca;
        time_t t;
        X509 *old_root, *new_root;
        STACK_OF(X509) * old_only; /* just the old root */
        STACK_OF(X509) * early;    /* an SVID signed by the old CA at t + 30 */
        char *old_kid, *kid;
} Timeline;

/* t + 0 .. t + 30: one root until half-life, then the next CA and JWT key are
 * published while the old ones still sign. */
static void timeline_prepare(Timeline *tl) {
        time_t t = tl->t;

        tl->ca = fx_new(&tl->f, t);
        tl->old_root = bundle_root_ref(tl->ca, 0);
        tl->old_only = stack_of(tl->old_root);
        tl->old_kid = mint_kid(tl->ca, t);
        assert_int_equal(seq(tl->ca), 1);
        /* The server TLS cert lives min(1 h, ca_ttl/2) = 30 s: renewed after 15 s. */
        assert_int_equal(ca_next_tick(tl->ca), t + 15);
        tick_expect(tl->ca, t + 15, true);
        assert_int_equal(seq(tl->ca), 1);
        assert_int_equal(ca_next_tick(tl->ca), t + 30);

        tick_expect(tl->ca, t + 29, false);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(tl->ca)), 1);
        assert_int_equal(warden_bundle_n_jwt_authorities(ca_bundle(tl->ca)), 1);

        tick_expect(tl->ca, t + 30, true);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(tl->ca)), 2);
        assert_int_equal(warden_bundle_n_jwt_authorities(ca_bundle(tl->ca)), 2);
        assert_int_equal(seq(tl->ca), 2);
        tl->new_root = other_root_ref(tl->ca, tl->old_root);
        tl->early = sign_svid(tl->ca, 3600, t + 30);
        assert_true(issued_by(tl->old_root, tl->early, 0));
        assert_ok(verify_chain(tl->early, tl->old_only, t + 31));
        tl->kid = mint_kid(tl->ca, t + 30);
        assert_string_equal(tl->kid, tl->old_kid);
        /* TLS renewal (issued at +30) comes first, then activation. */
        assert_int_equal(ca_next_tick(tl->ca), t + 45);
        tick_expect(tl->ca, t + 45, true);
        assert_int_equal(seq(tl->ca), 2);
        assert_int_equal(ca_next_tick(tl->ca), t + 50);
        tick_expect(tl->ca, t + 49, false);
}

/* t + 50 (1/6 left): the new CA and key sign; the old ones stay in the bundle. */
static void timeline_activate(Timeline *tl) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *late = NULL, *tls = NULL;
        _cleanup_erase_ char *token = NULL;
        const WardenBundle *bundles[1];
        const char *aud[] = {"a"}, *pem = NULL;
        time_t t = tl->t;

        tick_expect(tl->ca, t + 50, true);
        assert_int_equal(seq(tl->ca), 2); /* both were already published */
        late = sign_svid(tl->ca, 3600, t + 50);
        assert_true(issued_by(tl->new_root, late, 0));
        assert_ok(verify_chain(late, bundle_roots(tl->ca), t + 51));
        assert_errno(verify_chain(late, tl->old_only, t + 51), EKEYREJECTED);

        free(tl->kid);
        tl->kid = mint_kid(tl->ca, t + 50);
        assert_string_not_equal(tl->kid, tl->old_kid);
        assert_non_null(warden_bundle_find_jwt_key(ca_bundle(tl->ca), tl->kid));
        assert_non_null(warden_bundle_find_jwt_key(ca_bundle(tl->ca), tl->old_kid));
        assert_true(bundle_has_root(tl->ca, tl->old_root));
        /* What the old CA signed is capped at its notAfter and still verifies. */
        assert_int_equal(warden_x509_not_after(sk_X509_value(tl->early, 0)), t + 60);
        assert_ok(verify_chain(tl->early, bundle_roots(tl->ca), t + 59));

        bundles[0] = ca_bundle(tl->ca);
        assert_ok(ca_mint_jwt_svid(tl->ca, WL_ID, aud, 1, 300, t + 50, &token, NULL));
        assert_ok(warden_jwtsvid_validate(token, "a", bundles, 1,
                                          &(WardenJwtTimeRules){.now = t + 51}, NULL, NULL));

        assert_ok(ca_server_tls(tl->ca, &pem, NULL, NULL));
        assert_ok(warden_x509_chain_from_pem(pem, strlen(pem), &tls));
        assert_true(issued_by(tl->new_root, tls, 0));
        assert_int_equal(ca_next_tick(tl->ca), t + 60);
}

/* t + 60, the old notAfter: the old CA and key leave the bundle and their files go;
 * the new CA reached its own half-life, so its successor is published. */
static void timeline_retire(Timeline *tl) {
        const char *dir = tl->f.ca_dir;

        tick_expect(tl->ca, tl->t + 60, true);
        assert_false(bundle_has_root(tl->ca, tl->old_root));
        assert_true(bundle_has_root(tl->ca, tl->new_root));
        assert_null(warden_bundle_find_jwt_key(ca_bundle(tl->ca), tl->old_kid));
        assert_non_null(warden_bundle_find_jwt_key(ca_bundle(tl->ca), tl->kid));
        assert_int_equal(seq(tl->ca), 3);
        assert_false(file_exists(dir, "x509-1.key"));
        assert_false(file_exists(dir, "x509-1.pem"));
        assert_false(file_exists(dir, "jwt-2.key"));
        assert_true(file_exists(dir, "x509-3.key"));
        assert_true(file_exists(dir, "jwt-4.key"));
}

static void test_rotation_timeline(void **state) {
        Timeline tl = {};

        (void) state;
        fx_init(&tl.f, 60, WARDEN_KEY_EC_P256);
        tl.t = tl.f.t0;
        timeline_prepare(&tl);
        timeline_activate(&tl);
        timeline_retire(&tl);

        ca_free(tl.ca);
        X509_free(tl.old_root);
        X509_free(tl.new_root);
        sk_X509_pop_free(tl.old_only, X509_free);
        sk_X509_pop_free(tl.early, X509_free);
        free(tl.old_kid);
        free(tl.kid);
        fx_done(&tl.f);
}

static void test_restart_mid_rotation(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(X509_freep) X509 *old_root = NULL, *new_root = NULL;
        _cleanup_free_ char *old_kid = NULL, *kid = NULL;
        CaFixture f;
        time_t t;

        (void) state;
        fx_init(&f, 60, WARDEN_KEY_EC_P256);
        t = f.t0;
        ca = fx_new(&f, t);
        old_root = bundle_root_ref(ca, 0);
        old_kid = mint_kid(ca, t);
        tick_expect(ca, t + 35, true);
        new_root = other_root_ref(ca, old_root);
        ca = ca_free(ca);

        ca = fx_new(&f, t + 36);
        assert_int_equal(seq(ca), 2);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 2);
        assert_int_equal(warden_bundle_n_jwt_authorities(ca_bundle(ca)), 2);
        assert_true(bundle_has_root(ca, old_root));
        assert_true(bundle_has_root(ca, new_root));
        {
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c = sign_svid(ca, 60, t + 36);
                assert_true(issued_by(old_root, c, 0));
        }
        kid = mint_kid(ca, t + 36);
        assert_string_equal(kid, old_kid);
        assert_true(ca_next_tick(ca) <= t + 50);
        tick_expect(ca, t + 49, true); /* only the TLS renewal */
        {
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c = sign_svid(ca, 60, t + 49);
                assert_true(issued_by(old_root, c, 0));
        }
        assert_int_equal(ca_next_tick(ca), t + 50);

        tick_expect(ca, t + 50, true);
        {
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c = sign_svid(ca, 60, t + 50);
                assert_true(issued_by(new_root, c, 0));
        }
        ca = ca_free(ca);
        /* And the activation survives a restart too. */
        ca = fx_new(&f, t + 51);
        {
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c = sign_svid(ca, 60, t + 51);
                assert_true(issued_by(new_root, c, 0));
        }
        assert_int_equal(seq(ca), 2);
        fx_done(&f);
}

static void test_long_downtime(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(X509_freep) X509 *old_root = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c = NULL;
        CaFixture f;

        (void) state;
        fx_init(&f, 60, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        old_root = bundle_root_ref(ca, 0);
        ca = ca_free(ca);

        /* Everything expired while the server was down: new authorities, new bundle. */
        ca = fx_new(&f, f.t0 + 500);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 1);
        assert_int_equal(warden_bundle_n_jwt_authorities(ca_bundle(ca)), 1);
        assert_false(bundle_has_root(ca, old_root));
        assert_int_equal(seq(ca), 2);
        c = sign_svid(ca, 30, f.t0 + 500);
        assert_ok(verify_chain(c, bundle_roots(ca), f.t0 + 501));
        assert_false(file_exists(f.ca_dir, "x509-1.key"));
        fx_done(&f);
}

/* A tick whose state file cannot be written fails, keeps its work, says "retry now",
 * and the next tick saves it and reports the change. */
static void test_save_failure_retry(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_free_ char *state_path = NULL;
        bool changed = false;
        CaFixture f;

        (void) state;
        fx_init(&f, 60, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        state_path = path_in(f.ca_dir, "state.json");
        assert_int_equal(unlink(state_path), 0);
        assert_int_equal(mkdir(state_path, 0700), 0); /* rename() over it fails */

        assert_true(ca_tick(ca, f.t0 + 30, &changed) < 0);
        assert_int_equal(ca_next_tick(ca), f.t0 + 30 + CA_RETRY_SECONDS);
        /* Not published before its sequence is on disk. */
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 1);
        assert_int_equal(seq(ca), 1);
        assert_true(ca_tick(ca, f.t0 + 30, &changed) < 0);

        assert_int_equal(rmdir(state_path), 0);
        tick_expect(ca, f.t0 + 31, true);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 2);
        assert_int_equal(seq(ca), 2);
        assert_true(ca_next_tick(ca) > f.t0 + 31);
        tick_expect(ca, f.t0 + 32, false);
        ca = ca_free(ca);

        ca = fx_new(&f, f.t0 + 33);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 2);
        assert_int_equal(warden_bundle_n_jwt_authorities(ca_bundle(ca)), 2);
        assert_int_equal(seq(ca), 2);
        fx_done(&f);
}

/* ---- upstream mode ---- */

typedef struct Upstream {
        X509 *cert;
        EVP_PKEY *key;
        char *cert_path;
        char *key_path;
} Upstream;

static void upstream_make(Upstream *u, const char *dir, const char *name, int64_t ttl) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *s = NULL;
        _cleanup_free_ char *c = NULL, *k = NULL;

        assert_true(asprintf(&c, "%s.pem", name) > 0 && asprintf(&k, "%s.key", name) > 0);
        *u = (Upstream){.cert_path = path_in(dir, c), .key_path = path_in(dir, k)};
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &u->key));
        assert_ok(warden_ca_create_self_signed(u->key, "upstream.example", ttl, 0, &u->cert));
        s = stack_of(u->cert);
        assert_ok(warden_x509_write_pem_file(u->cert_path, s, 0644));
        assert_ok(warden_key_write_file(u->key_path, u->key));
}

static void upstream_done(Upstream *u) {
        X509_free(u->cert);
        EVP_PKEY_free(u->key);
        free(u->cert_path);
        free(u->key_path);
}

static void use_upstream(CaFixture *f, const Upstream *u) {
        f->cfg.upstream_cert_path = u->cert_path;
        f->cfg.upstream_key_path = u->key_path;
}

static void test_upstream(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *up = NULL, *c1 = NULL, *c2 = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = NULL;
        _cleanup_(X509_freep) X509 *inter1 = NULL;
        _cleanup_free_ char *id = NULL;
        const char *roots_pem = NULL;
        Upstream u;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        upstream_make(&u, f.tmp, "up", 7200);
        use_upstream(&f, &u);
        up = stack_of(u.cert);
        ca = fx_new(&f, f.t0);

        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 1);
        assert_true(bundle_has_root(ca, u.cert));
        c1 = sign_svid(ca, 600, f.t0);
        assert_int_equal(sk_X509_num(c1), 2);
        assert_true(issued_by(u.cert, c1, 1));
        assert_int_equal(X509_check_ca(sk_X509_value(c1, 1)), 1);
        assert_ok(warden_x509_spiffe_id(sk_X509_value(c1, 1), &id));
        assert_string_equal(id, "spiffe://example.org");
        assert_ok(verify_chain(c1, up, f.t0 + 1));
        assert_ok(verify_chain(c1, bundle_roots(ca), f.t0 + 1));
        /* Without the intermediate the leaf does not verify. */
        inter1 = sk_X509_pop(c1);
        assert_errno(verify_chain(c1, up, f.t0 + 1), EKEYREJECTED);

        assert_ok(ca_server_tls(ca, NULL, NULL, &roots_pem));
        assert_ok(warden_x509_chain_from_pem(roots_pem, strlen(roots_pem), &roots));
        assert_int_equal(sk_X509_num(roots), 1);
        assert_int_equal(X509_cmp(sk_X509_value(roots, 0), u.cert), 0);

        /* A restart keeps the same intermediate. */
        ca = ca_free(ca);
        ca = fx_new(&f, f.t0 + 2);
        c2 = sign_svid(ca, 600, f.t0 + 2);
        assert_int_equal(sk_X509_num(c2), 2);
        assert_int_equal(X509_cmp(sk_X509_value(c2, 1), inter1), 0);
        upstream_done(&u);
        fx_done(&f);
}

static void test_upstream_capped(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c = NULL;
        time_t up_na;
        Upstream u;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        upstream_make(&u, f.tmp, "up", 100);
        up_na = warden_x509_not_after(u.cert);
        use_upstream(&f, &u);
        ca = fx_new(&f, f.t0);
        c = sign_svid(ca, 3600, f.t0);
        assert_int_equal(warden_x509_not_after(sk_X509_value(c, 1)), up_na);
        assert_true(warden_x509_not_after(sk_X509_value(c, 0)) <= up_na);
        /* No churn: past the intermediate's half-life, a successor could not outlive
         * it, so none is made; the bundle stays as it is. */
        assert_ok(ca_tick(ca, f.t0 + 70, NULL));
        assert_int_equal(seq(ca), 1);
        {
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *c2 = sign_svid(ca, 3600, f.t0 + 70);
                assert_int_equal(X509_cmp(sk_X509_value(c, 1), sk_X509_value(c2, 1)), 0);
        }
        assert_false(file_exists(f.ca_dir, "x509-3.key"));
        assert_true(ca_next_tick(ca) > f.t0 + 70);
        upstream_done(&u);
        fx_done(&f);
}

static void test_upstream_rotation(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *up = NULL, *c1 = NULL, *c2 = NULL;
        Upstream u;
        CaFixture f;

        (void) state;
        fx_init(&f, 60, WARDEN_KEY_EC_P256);
        upstream_make(&u, f.tmp, "up", 7200);
        use_upstream(&f, &u);
        up = stack_of(u.cert);
        ca = fx_new(&f, f.t0);
        c1 = sign_svid(ca, 3600, f.t0 + 10);

        tick_expect(ca, f.t0 + 30, true);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 1);
        assert_true(bundle_has_root(ca, u.cert));
        assert_int_equal(warden_bundle_n_jwt_authorities(ca_bundle(ca)), 2);

        tick_expect(ca, f.t0 + 50, true);
        c2 = sign_svid(ca, 3600, f.t0 + 50);
        assert_int_not_equal(X509_cmp(sk_X509_value(c1, 1), sk_X509_value(c2, 1)), 0);
        assert_true(issued_by(u.cert, c2, 1));
        assert_ok(verify_chain(c2, up, f.t0 + 51));
        assert_ok(verify_chain(c1, up, f.t0 + 55));
        assert_int_equal(warden_x509_not_after(sk_X509_value(c1, 0)), f.t0 + 60);

        tick_expect(ca, f.t0 + 60, true);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 1);
        upstream_done(&u);
        fx_done(&f);
}

static void test_upstream_rejected(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = NULL, *leaf_key = NULL;
        _cleanup_free_ char *other_path = NULL, *leaf_path = NULL;
        Ca *ca = NULL;
        Upstream u;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        upstream_make(&u, f.tmp, "up", 7200);

        /* Key that does not match the certificate. */
        other_path = path_in(f.tmp, "other.key");
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &other));
        assert_ok(warden_key_write_file(other_path, other));
        f.cfg.upstream_cert_path = u.cert_path;
        f.cfg.upstream_key_path = other_path;
        assert_errno(ca_new(&f.cfg, f.t0, &ca), EKEYREJECTED);

        /* A certificate that is not a CA (an SVID leaf with its own key). */
        {
                _cleanup_(X509_freep) X509 *leaf = NULL;
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *s = NULL;
                WardenSvidParams p = {.ca_cert = u.cert,
                                      .ca_key = u.key,
                                      .spiffe_id = "spiffe://upstream.example/x",
                                      .ttl_seconds = 3600};

                assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &leaf_key));
                p.public_key = leaf_key;
                assert_ok(warden_svid_sign(&p, &leaf));
                s = stack_of(leaf);
                leaf_path = path_in(f.tmp, "leaf.pem");
                assert_ok(warden_x509_write_pem_file(leaf_path, s, 0644));
                assert_ok(warden_key_write_file(other_path, leaf_key));
                f.cfg.upstream_cert_path = leaf_path;
                assert_errno(ca_new(&f.cfg, f.t0, &ca), EINVAL);
        }

        /* Expired upstream. */
        use_upstream(&f, &u);
        assert_errno(ca_new(&f.cfg, f.t0 + 8000, &ca), EKEYEXPIRED);
        assert_false(file_exists(f.tmp, "data"));
        assert_null(ca);
        upstream_done(&u);
        fx_done(&f);
}

static void test_upstream_state_mismatch(void **state) {
        Upstream u, u2;
        Ca *ca = NULL;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        upstream_make(&u, f.tmp, "up", 7200);
        upstream_make(&u2, f.tmp, "up2", 7200);
        use_upstream(&f, &u);

        /* State made with upstream u: u2 did not sign the stored intermediate, and
         * a self-signed configuration does not fit the state either. */
        ca_free(fx_new(&f, f.t0));
        use_upstream(&f, &u2);
        assert_errno(ca_new(&f.cfg, f.t0 + 1, &ca), EKEYREJECTED);
        f.cfg.upstream_cert_path = f.cfg.upstream_key_path = NULL;
        assert_errno(ca_new(&f.cfg, f.t0 + 1, &ca), EINVAL);
        assert_null(ca);
        upstream_done(&u);
        upstream_done(&u2);
        fx_done(&f);

        /* And the other way round. */
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        upstream_make(&u, f.tmp, "up", 7200);
        ca_free(fx_new(&f, f.t0));
        use_upstream(&f, &u);
        assert_errno(ca_new(&f.cfg, f.t0 + 1, &ca), EINVAL);
        upstream_done(&u);
        fx_done(&f);
}

int ca_rotate_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rotation_timeline),
                cmocka_unit_test(test_restart_mid_rotation),
                cmocka_unit_test(test_long_downtime),
                cmocka_unit_test(test_save_failure_retry),
                cmocka_unit_test(test_upstream),
                cmocka_unit_test(test_upstream_capped),
                cmocka_unit_test(test_upstream_rotation),
                cmocka_unit_test(test_upstream_rejected),
                cmocka_unit_test(test_upstream_state_mismatch),
        };
        return cmocka_run_group_tests_name("ca_rotate", tests, NULL, NULL);
}
