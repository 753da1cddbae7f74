/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/ca: first start, persistence, signing, JWT minting, corrupt state, key
 * types, server TLS. Rotation and upstream mode are in test_ca_rotate.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509v3.h>

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

static void test_first_start(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_free_ char *state_path = NULL, *id = NULL;
        const char *chain = NULL, *key = NULL, *roots = NULL;
        const WardenBundle *b;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);

        assert_int_equal(file_mode(f.data_dir), 0700);
        assert_int_equal(file_mode(f.ca_dir), 0700);
        state_path = path_in(f.ca_dir, "state.json");
        assert_int_equal(file_mode(state_path), 0600);
        {
                _cleanup_free_ char *k1 = path_in(f.ca_dir, "x509-1.key");
                _cleanup_free_ char *k2 = path_in(f.ca_dir, "jwt-2.key");
                assert_int_equal(file_mode(k1), 0600);
                assert_int_equal(file_mode(k2), 0600);
        }
        assert_true(file_exists(f.ca_dir, "x509-1.pem"));
        /* No temp dirs or files left behind. */
        assert_int_equal(count_entries(f.data_dir, NULL), 1);
        assert_int_equal(count_entries(f.ca_dir, ".tmp"), 0);
        assert_int_equal(count_entries(f.ca_dir, NULL), 4);

        b = ca_bundle(ca);
        assert_non_null(b);
        assert_string_equal(warden_bundle_trust_domain(b), TD);
        assert_int_equal(warden_bundle_n_x509_authorities(b), 1);
        assert_int_equal(warden_bundle_n_jwt_authorities(b), 1);
        assert_int_equal(warden_bundle_sequence(b), 1);
        assert_true(warden_bundle_refresh_hint(b) > 0);

        assert_ok(ca_server_spiffe_id(ca, &id));
        assert_string_equal(id, "spiffe://example.org/warden/server");
        assert_ok(ca_server_tls(ca, &chain, &key, &roots));
        assert_non_null(strstr(chain, "BEGIN CERTIFICATE"));
        assert_non_null(strstr(key, "BEGIN PRIVATE KEY"));
        assert_non_null(strstr(roots, "BEGIN CERTIFICATE"));
        assert_true(ca_next_tick(ca) > f.t0);
        fx_done(&f);
}

static void test_restart_same_ca(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(X509_freep) X509 *root1 = NULL;
        _cleanup_free_ char *kid1 = NULL, *kid2 = NULL;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        root1 = bundle_root_ref(ca, 0);
        kid1 = mint_kid(ca, f.t0);
        ca = ca_free(ca);

        ca = fx_new(&f, f.t0 + 5);
        assert_int_equal(warden_bundle_n_x509_authorities(ca_bundle(ca)), 1);
        assert_int_equal(X509_cmp(sk_X509_value(bundle_roots(ca), 0), root1), 0);
        kid2 = mint_kid(ca, f.t0 + 5);
        assert_string_equal(kid1, kid2);
        assert_int_equal(warden_bundle_sequence(ca_bundle(ca)), 1);
        {
                const char *id = NULL;
                assert_ok(warden_bundle_get_jwt_authority(ca_bundle(ca), 0, &id, NULL, NULL));
                assert_string_equal(id, kid1);
        }
        fx_done(&f);
}

static void test_sign_and_verify(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL, *chain2 = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const char *dns[] = {"svc.example.org"};
        STACK_OF(X509) *out = NULL;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        chain = sign_svid(ca, 600, f.t0 + 1);
        assert_int_equal(sk_X509_num(chain), 1);
        assert_ok(verify_chain(chain, bundle_roots(ca), f.t0 + 2));
        assert_int_equal(
                X509_check_issued(sk_X509_value(bundle_roots(ca), 0), sk_X509_value(chain, 0)),
                X509_V_OK);
        /* TTL honoured when below the cap. */
        assert_int_equal(warden_x509_not_after(sk_X509_value(chain, 0)), f.t0 + 1 + 600);
        /* Expired by then. */
        assert_errno(verify_chain(chain, bundle_roots(ca), f.t0 + 700), EKEYEXPIRED);

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(ca_sign_x509_svid(ca, key, WL_ID, dns, 1, 60, f.t0, &out));
        chain2 = out;
        assert_ok(verify_chain(chain2, bundle_roots(ca), f.t0));
        assert_int_equal(X509_check_host(sk_X509_value(chain2, 0), dns[0], 0, 0, NULL), 1);

        out = NULL;
        assert_errno(ca_sign_x509_svid(ca, key, "spiffe://other.org/w", NULL, 0, 60, f.t0, &out),
                     EINVAL);
        assert_errno(ca_sign_x509_svid(ca, key, WL_ID, NULL, 0, 0, f.t0, &out), EINVAL);
        assert_errno(ca_sign_x509_svid(ca, NULL, WL_ID, NULL, 0, 60, f.t0, &out), EINVAL);
        assert_null(out);
        fx_done(&f);
}

static void test_jwt_mint_validate(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_erase_ char *token = NULL;
        const char *aud[] = {"svc-a", "svc-b"};
        const WardenBundle *bundles[1];
        const char *kid = NULL;
        WardenJwtError e = WARDEN_JWT_OK;
        int64_t exp = 0;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        bundles[0] = ca_bundle(ca);
        assert_ok(ca_mint_jwt_svid(ca, WL_ID, aud, 2, 300, f.t0, &token, &exp));
        assert_int_equal(exp, f.t0 + 300);
        assert_ok(warden_jwtsvid_validate(token, "svc-b", bundles, 1,
                                          &(WardenJwtTimeRules){.now = f.t0 + 1}, &c, &e));
        assert_string_equal(c->spiffe_id, WL_ID);
        assert_int_equal(c->exp, f.t0 + 300);
        assert_string_equal(c->alg, "ES256");
        assert_ok(warden_bundle_get_jwt_authority(bundles[0], 0, &kid, NULL, NULL));
        assert_string_equal(c->kid, kid);
        assert_int_equal(strlen(kid), 43); /* base64url of SHA-256 */
        /* Wrong audience and expiry are caught by the validator. */
        assert_errno(warden_jwtsvid_validate(token, "svc-c", bundles, 1,
                                             &(WardenJwtTimeRules){.now = f.t0}, NULL, &e),
                     EACCES);
        assert_errno(warden_jwtsvid_validate(token, "svc-a", bundles, 1,
                                             &(WardenJwtTimeRules){.now = f.t0 + 400}, NULL, &e),
                     EKEYEXPIRED);

        erase_and_free(TAKE_PTR(token));
        assert_errno(ca_mint_jwt_svid(ca, "spiffe://other.org/w", aud, 1, 60, f.t0, &token, NULL),
                     EINVAL);
        assert_errno(ca_mint_jwt_svid(ca, WL_ID, aud, 1, -1, f.t0, &token, NULL), EINVAL);
        assert_null(token);
        fx_done(&f);
}

static void test_ttl_capped(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_erase_ char *token = NULL;
        const char *aud[] = {"a"};
        time_t root_na;
        int64_t exp = 0;
        CaFixture f;

        (void) state;
        fx_init(&f, 60, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        root_na = warden_x509_not_after(sk_X509_value(bundle_roots(ca), 0));
        assert_true(root_na >= f.t0 + 60);

        chain = sign_svid(ca, 3600, f.t0 + 5);
        assert_int_equal(warden_x509_not_after(sk_X509_value(chain, 0)), f.t0 + 60);
        assert_ok(ca_mint_jwt_svid(ca, WL_ID, aud, 1, 3600, f.t0 + 5, &token, &exp));
        assert_int_equal(exp, f.t0 + 60);
        fx_done(&f);
}

static void test_corrupt_state(void **state) {
        _cleanup_free_ char *state_path = NULL, *before = NULL, *after = NULL;
        size_t n1 = 0, n2 = 0;
        Ca *ca = NULL;
        CaFixture f;
        FILE *fp;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca_free(fx_new(&f, f.t0));
        state_path = path_in(f.ca_dir, "state.json");
        fp = fopen(state_path, "w");
        assert_non_null(fp);
        fputs("{\"version\": 1, \"trust_domain\": ", fp);
        fclose(fp);

        before = snapshot_dir(f.ca_dir, &n1);
        assert_errno(ca_new(&f.cfg, f.t0 + 1, &ca), EBADMSG);
        assert_null(ca);
        after = snapshot_dir(f.ca_dir, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(before, after, n1);

        /* Valid JSON, wrong shape. */
        fp = fopen(state_path, "w");
        assert_non_null(fp);
        fputs("{\"version\": 1}", fp);
        fclose(fp);
        assert_errno(ca_new(&f.cfg, f.t0 + 1, &ca), EBADMSG);
        fx_done(&f);
}

/* Runs ca_new on a state where `mutate` damaged one thing; expects err and untouched
 * files. */
static void expect_load_error(void (*mutate)(const CaFixture *f), int err) {
        _cleanup_free_ char *before = NULL, *after = NULL;
        size_t n1 = 0, n2 = 0;
        Ca *ca = NULL;
        CaFixture f;

        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca_free(fx_new(&f, f.t0));
        mutate(&f);
        before = snapshot_dir(f.ca_dir, &n1);
        assert_int_equal(ca_new(&f.cfg, f.t0 + 1, &ca), -err);
        assert_null(ca);
        after = snapshot_dir(f.ca_dir, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(before, after, n1);
        fx_done(&f);
}

static void remove_jwt_key(const CaFixture *f) {
        _cleanup_free_ char *p = path_in(f->ca_dir, "jwt-2.key");
        assert_int_equal(unlink(p), 0);
}

static void garble_cert(const CaFixture *f) {
        _cleanup_free_ char *p = path_in(f->ca_dir, "x509-1.pem");
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", fp);
        fclose(fp);
}

static void swap_keys(const CaFixture *f) {
        /* The X.509 CA's key replaced by the JWT key: cert and key no longer match. */
        _cleanup_free_ char *a = path_in(f->ca_dir, "jwt-2.key");
        _cleanup_free_ char *b = path_in(f->ca_dir, "x509-1.key");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        assert_ok(warden_key_read_file(a, &k));
        assert_ok(warden_key_write_file(b, k));
}

static void replace_jwt_key(const CaFixture *f) {
        /* A different key under the same kid. */
        _cleanup_free_ char *p = path_in(f->ca_dir, "jwt-2.key");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &k));
        assert_ok(warden_key_write_file(p, k));
}

static void remove_state(const CaFixture *f) {
        _cleanup_free_ char *p = path_in(f->ca_dir, "state.json");
        assert_int_equal(unlink(p), 0);
}

/* Edits state.json: edit() gets the "x509" slot array. */
static void edit_state(const CaFixture *f, void (*edit)(json_t *x509)) {
        _cleanup_free_ char *p = path_in(f->ca_dir, "state.json");
        json_t *root = json_load_file(p, 0, NULL);

        assert_non_null(root);
        edit(json_object_get(root, "x509"));
        assert_int_equal(json_dump_file(root, p, 0), 0);
        json_decref(root);
}

static void dup_slot_edit(json_t *x509) {
        json_t *copy = json_deep_copy(json_array_get(x509, 0));

        assert_int_equal(json_object_set_new(copy, "role", json_string("retired")), 0);
        assert_int_equal(json_array_append_new(x509, copy), 0);
}

static void duplicate_slot(const CaFixture *f) {
        edit_state(f, dup_slot_edit);
}

static void path_edit(json_t *x509) {
        json_t *slot = json_array_get(x509, 0);

        assert_int_equal(json_object_set_new(slot, "key", json_string("../../x509-1.key")), 0);
}

static void escaping_path(const CaFixture *f) {
        edit_state(f, path_edit);
}

static void no_current_edit(json_t *x509) {
        json_t *slot = json_array_get(x509, 0);

        assert_int_equal(json_object_set_new(slot, "role", json_string("next")), 0);
}

static void no_current(const CaFixture *f) {
        edit_state(f, no_current_edit);
}

static void open_key_mode(const CaFixture *f) {
        _cleanup_free_ char *p = path_in(f->ca_dir, "x509-1.key");
        assert_int_equal(chmod(p, 0644), 0);
}

static void test_damaged_files(void **state) {
        (void) state;
        expect_load_error(remove_jwt_key, EBADMSG);
        expect_load_error(garble_cert, EBADMSG);
        expect_load_error(swap_keys, EBADMSG);
        expect_load_error(replace_jwt_key, EBADMSG);
        expect_load_error(remove_state, EBADMSG);
        expect_load_error(open_key_mode, EPERM);
        expect_load_error(duplicate_slot, EBADMSG);
        expect_load_error(escaping_path, EBADMSG);
        expect_load_error(no_current, EBADMSG);
}

static void test_other_trust_domain(void **state) {
        Ca *ca = NULL;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        ca_free(fx_new(&f, f.t0));
        f.cfg.trust_domain = "other.org";
        assert_errno(ca_new(&f.cfg, f.t0, &ca), EINVAL);
        assert_null(ca);
        fx_done(&f);
}

static void test_bad_config(void **state) {
        Ca *ca = NULL;
        CaFixture f;

        (void) state;
        fx_init(&f, 3600, WARDEN_KEY_EC_P256);
        f.cfg.ca_ttl = CA_TTL_MIN - 1;
        assert_errno(ca_new(&f.cfg, f.t0, &ca), EINVAL);
        f.cfg.ca_ttl = 3600;
        f.cfg.trust_domain = "Bad_Domain";
        assert_errno(ca_new(&f.cfg, f.t0, &ca), EINVAL);
        f.cfg.trust_domain = TD;
        f.cfg.key_type = _WARDEN_KEY_TYPE_MAX;
        assert_errno(ca_new(&f.cfg, f.t0, &ca), EINVAL);
        f.cfg.key_type = WARDEN_KEY_EC_P256;
        f.cfg.upstream_cert_path = "/nonexistent.pem";
        assert_errno(ca_new(&f.cfg, f.t0, &ca), EINVAL);
        assert_errno(ca_new(NULL, f.t0, &ca), EINVAL);
        assert_null(ca);
        /* Nothing was created by the failed attempts. */
        assert_false(file_exists(f.tmp, "data"));
        fx_done(&f);
}

static void key_type_smoke(WardenKeyType type, const char *alg) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_erase_ char *token = NULL;
        const char *aud[] = {"a"};
        const WardenBundle *bundles[1];
        EVP_PKEY *jwt_key = NULL;
        CaFixture f;

        fx_init(&f, 3600, type);
        ca = fx_new(&f, f.t0);
        assert_int_equal(warden_key_get_type(X509_get0_pubkey(sk_X509_value(bundle_roots(ca), 0))),
                         (int) type);
        assert_ok(warden_bundle_get_jwt_authority(ca_bundle(ca), 0, NULL, &jwt_key, NULL));
        assert_int_equal(warden_key_get_type(jwt_key), (int) type);

        chain = sign_svid(ca, 600, f.t0);
        assert_ok(verify_chain(chain, bundle_roots(ca), f.t0));
        assert_ok(ca_mint_jwt_svid(ca, WL_ID, aud, 1, 60, f.t0, &token, NULL));
        bundles[0] = ca_bundle(ca);
        assert_ok(warden_jwtsvid_validate(token, "a", bundles, 1,
                                          &(WardenJwtTimeRules){.now = f.t0}, &c, NULL));
        assert_string_equal(c->alg, alg);
        ca = ca_free(ca);
        /* And it reloads. */
        ca = fx_new(&f, f.t0 + 1);
        fx_done(&f);
}

static void test_key_types(void **state) {
        (void) state;
        key_type_smoke(WARDEN_KEY_EC_P384, "ES384");
        key_type_smoke(WARDEN_KEY_RSA_2048, "RS256");
}

static void test_server_tls(void **state) {
        _cleanup_ca_ Ca *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL, *roots = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *id = NULL, *first = NULL;
        const char *chain_pem = NULL, *key_pem = NULL, *roots_pem = NULL, *reason = NULL;
        X509 *leaf;
        time_t na;
        bool changed = true;
        CaFixture f;

        (void) state;
        fx_init(&f, 7200, WARDEN_KEY_EC_P256);
        ca = fx_new(&f, f.t0);
        assert_ok(ca_server_tls(ca, &chain_pem, &key_pem, &roots_pem));
        assert_ok(warden_x509_chain_from_pem(chain_pem, strlen(chain_pem), &chain));
        assert_ok(warden_x509_chain_from_pem(roots_pem, strlen(roots_pem), &roots));
        assert_ok(warden_key_from_pem(key_pem, strlen(key_pem), &key));
        leaf = sk_X509_value(chain, 0);
        assert_int_equal(X509_check_private_key(leaf, key), 1);
        assert_ok(warden_svid_verify(leaf, NULL, roots, f.t0, &id, &reason));
        assert_string_equal(id, "spiffe://example.org/warden/server");
        assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
        na = warden_x509_not_after(leaf);
        assert_int_equal(na, f.t0 + 3600); /* min(1 h, ca_ttl/2) */
        first = strdup(chain_pem);

        /* Renewed at half-life, not before. */
        assert_ok(ca_tick(ca, f.t0 + 1799, &changed));
        assert_false(changed);
        assert_true(ca_next_tick(ca) <= f.t0 + 1800);
        assert_ok(ca_tick(ca, f.t0 + 1800, &changed));
        assert_true(changed);
        assert_ok(ca_server_tls(ca, &chain_pem, NULL, NULL));
        assert_string_not_equal(first, chain_pem);
        fx_done(&f);
}

int ca_basic_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_start),     cmocka_unit_test(test_restart_same_ca),
                cmocka_unit_test(test_sign_and_verify), cmocka_unit_test(test_jwt_mint_validate),
                cmocka_unit_test(test_ttl_capped),      cmocka_unit_test(test_corrupt_state),
                cmocka_unit_test(test_damaged_files),   cmocka_unit_test(test_other_trust_domain),
                cmocka_unit_test(test_bad_config),      cmocka_unit_test(test_key_types),
                cmocka_unit_test(test_server_tls),
        };
        return cmocka_run_group_tests_name("ca", tests, NULL, NULL);
}

int main(void) {
        int failed = 0;

        failed += ca_basic_tests();
        failed += ca_rotate_tests();
        return failed == 0 ? 0 : 1;
}
