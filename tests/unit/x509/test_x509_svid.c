/* SPDX-License-Identifier: Apache-2.0 */
/* X509-SVID template: every property read back with OpenSSL's parsers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "x509_test_util.h"

typedef struct Fixture {
        EVP_PKEY *ca_key;
        X509 *ca;
        EVP_PKEY *key;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        f->ca_key = tu_key();
        f->key = tu_key();
        if (warden_ca_create_self_signed(f->ca_key, TU_TD, 86400, 0, &f->ca) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        X509_free(f->ca);
        EVP_PKEY_free(f->ca_key);
        EVP_PKEY_free(f->key);
        free(f);
        return 0;
}

static WardenSvidParams params(Fixture *f) {
        return (WardenSvidParams){
                .ca_cert = f->ca,
                .ca_key = f->ca_key,
                .public_key = f->key,
                .spiffe_id = TU_ID,
                .ttl_seconds = 3600,
        };
}

static void test_svid_template(void **state) {
        static const char *const dns[] = {"web.example.org", "*.api.example.org"};
        Fixture *f = *state;
        _cleanup_(X509_freep) X509 *svid = NULL;
        _cleanup_free_ char *uri = NULL, *dns0 = NULL, *c = NULL, *o = NULL, *cn = NULL;
        _cleanup_(BN_freep) BIGNUM *serial = NULL;
        WardenSvidParams p = params(f);
        BASIC_CONSTRAINTS *bc;
        AUTHORITY_KEYID *akid;
        time_t now = time(NULL) - 100;

        p.dns_names = dns;
        p.n_dns_names = ELEMENTSOF(dns);
        p.now = now;
        assert_ok(warden_svid_sign(&p, &svid));

        assert_int_equal(X509_get_version(svid), X509_VERSION_3);
        assert_int_equal(tu_san_count(svid, GEN_URI, &uri), 1);
        assert_string_equal(uri, TU_ID);
        assert_int_equal(tu_san_count(svid, GEN_DNS, &dns0), 2);
        assert_string_equal(dns0, "web.example.org");
        c = tu_subject_entry(svid, NID_countryName);
        o = tu_subject_entry(svid, NID_organizationName);
        cn = tu_subject_entry(svid, NID_commonName);
        assert_string_equal(c, "US");
        assert_string_equal(o, "Warden");
        assert_string_equal(cn, "web.example.org");
        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(svid), X509_get_subject_name(f->ca)),
                         0);

        assert_int_equal(tu_ext_critical(svid, NID_basic_constraints), 1);
        bc = X509_get_ext_d2i(svid, NID_basic_constraints, NULL, NULL);
        assert_non_null(bc);
        assert_false(bc->ca);
        BASIC_CONSTRAINTS_free(bc);
        assert_int_equal(X509_check_ca(svid), 0);

        assert_int_equal(tu_ext_critical(svid, NID_key_usage), 1);
        assert_int_equal(X509_get_key_usage(svid),
                         KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT);
        assert_int_equal(tu_ext_critical(svid, NID_ext_key_usage), 0);
        assert_int_equal(X509_get_extended_key_usage(svid), XKU_SSL_SERVER | XKU_SSL_CLIENT);

        assert_non_null(X509_get0_subject_key_id(svid));
        akid = X509_get_ext_d2i(svid, NID_authority_key_identifier, NULL, NULL);
        assert_non_null(akid);
        assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(f->ca)), 0);
        AUTHORITY_KEYID_free(akid);

        serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(svid), NULL);
        assert_false(BN_is_negative(serial));
        assert_true(BN_num_bits(serial) > 64);
        assert_true(BN_num_bits(serial) <= 128);

        assert_int_equal(warden_x509_not_before(svid), now - 10);
        assert_int_equal(warden_x509_not_after(svid), now + 3600);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(svid), f->key), 1);
        assert_int_equal(X509_verify(svid, f->ca_key), 1);
        assert_int_equal(X509_get_signature_nid(svid), NID_ecdsa_with_SHA256);
        assert_ok(warden_svid_check_leaf(svid, NULL));
}

static void test_svid_serials_differ(void **state) {
        Fixture *f = *state;
        WardenSvidParams p = params(f);
        _cleanup_(X509_freep) X509 *a = NULL, *b = NULL;

        assert_ok(warden_svid_sign(&p, &a));
        assert_ok(warden_svid_sign(&p, &b));
        assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)),
                             0);
}

static void test_svid_no_dns_no_cn(void **state) {
        Fixture *f = *state;
        WardenSvidParams p = params(f);
        _cleanup_(X509_freep) X509 *svid = NULL, *svid2 = NULL;
        _cleanup_free_ char *cn = NULL, *cn2 = NULL;
        /* 65 bytes: valid DNS name, too long for CN. */
        const char *longname[] = {
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.exam"};

        assert_ok(warden_svid_sign(&p, &svid));
        cn = tu_subject_entry(svid, NID_commonName);
        assert_null(cn);
        assert_int_equal(tu_san_count(svid, GEN_DNS, NULL), 0);
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(svid)), 2);

        assert_int_equal(strlen(longname[0]), 65);
        p.dns_names = longname;
        p.n_dns_names = 1;
        assert_ok(warden_svid_sign(&p, &svid2));
        cn2 = tu_subject_entry(svid2, NID_commonName);
        assert_null(cn2);
        assert_int_equal(tu_san_count(svid2, GEN_DNS, NULL), 1);
}

static void test_svid_capped_at_ca(void **state) {
        Fixture *f = *state;
        _cleanup_(X509_freep) X509 *ca = NULL, *svid = NULL;
        WardenSvidParams p = params(f);

        assert_ok(warden_ca_create_self_signed(f->ca_key, TU_TD, 600, 0, &ca));
        p.ca_cert = ca;
        p.ttl_seconds = 3600;
        assert_ok(warden_svid_sign(&p, &svid));
        assert_int_equal(warden_x509_not_after(svid), warden_x509_not_after(ca));
}

static void test_svid_p384_ca(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL, *svid = NULL;
        WardenSvidParams p = params(f);

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P384, &key));
        assert_ok(warden_ca_create_self_signed(key, TU_TD, 3600, 0, &ca));
        p.ca_cert = ca;
        p.ca_key = key;
        assert_ok(warden_svid_sign(&p, &svid));
        assert_int_equal(X509_get_signature_nid(svid), NID_ecdsa_with_SHA384);
}

static void test_svid_rejects(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = tu_key();
        _cleanup_(X509_freep) X509 *leaf = NULL;
        static const char *const bad_dns[] = {"ok.example.org", "bad_name.example.org"};
        const char *many[WARDEN_SVID_DNS_NAMES_MAX + 1];
        WardenSvidParams p;
        X509 *out = NULL;

        p = params(f);
        p.spiffe_id = "spiffe://" TU_TD;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p.spiffe_id = "spiffe://Example.org/x";
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p.spiffe_id = "spiffe://example.org/a,URI:spiffe://evil/x";
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p = params(f);
        p.ttl_seconds = 0;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p.ttl_seconds = -1;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p = params(f);
        p.dns_names = bad_dns;
        p.n_dns_names = 2;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "a.example.org";
        p.dns_names = many;
        p.n_dns_names = WARDEN_SVID_DNS_NAMES_MAX + 1;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p.n_dns_names = WARDEN_SVID_DNS_NAMES_MAX;
        assert_ok(warden_svid_sign(&p, &out));
        X509_free(out);
        out = NULL;

        /* CA key mismatch; a non-CA "CA"; an expired CA. */
        p = params(f);
        p.ca_key = other;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        leaf = tu_make_leaf(other, f->ca, f->ca_key, "URI:" TU_ID);
        p = params(f);
        p.ca_cert = leaf;
        p.ca_key = other;
        assert_errno(warden_svid_sign(&p, &out), EINVAL);
        p = params(f);
        p.now = time(NULL) + 2 * 86400;
        assert_errno(warden_svid_sign(&p, &out), EKEYEXPIRED);
        assert_null(out);
}

static void test_dns_name_validate(void **state) {
        static const char *const good[] = {
                "example.org",
                "a",
                "A-b.c0",
                "*.example.org",
                "xn--bcher-kva.example",
                "123.example",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org",
        };
        static const struct {
                const char *name, *reason;
        } bad[] = {
                {"", "empty DNS name"},
                {".example.org", "empty DNS label"},
                {"example.org.", "empty DNS label"},
                {"a..b", "empty DNS label"},
                {"*", "bad DNS name character"},
                {"*.", "empty DNS label"},
                {"a.*.org", "bad DNS name character"},
                {"**.org", "bad DNS name character"},
                {"under_score.org", "bad DNS name character"},
                {"sp ace.org", "bad DNS name character"},
                {"-lead.org", "DNS label starts or ends with '-'"},
                {"trail-.org", "DNS label starts or ends with '-'"},
                {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org",
                 "DNS label too long"},
        };
        char longname[300];
        const char *reason;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                reason = NULL;
                assert_ok(warden_dns_name_validate(good[i], &reason));
                assert_null(reason);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                reason = NULL;
                assert_errno(warden_dns_name_validate(bad[i].name, &reason), EINVAL);
                assert_string_equal(reason, bad[i].reason);
        }
        /* 253 bytes is the limit. */
        memset(longname, 0, sizeof(longname));
        for (size_t i = 0; i < 253; i++)
                longname[i] = (i % 2) ? '.' : 'a';
        assert_ok(warden_dns_name_validate(longname, NULL));
        longname[253] = '.';
        longname[254] = 'a';
        assert_errno(warden_dns_name_validate(longname, &reason), EINVAL);
        assert_string_equal(reason, "DNS name too long");
        assert_errno(warden_dns_name_validate(NULL, NULL), EINVAL);
}

int x509_svid_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_svid_template, setup, teardown),
                cmocka_unit_test_setup_teardown(test_svid_serials_differ, setup, teardown),
                cmocka_unit_test_setup_teardown(test_svid_no_dns_no_cn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_svid_capped_at_ca, setup, teardown),
                cmocka_unit_test_setup_teardown(test_svid_p384_ca, setup, teardown),
                cmocka_unit_test_setup_teardown(test_svid_rejects, setup, teardown),
                cmocka_unit_test(test_dns_name_validate),
        };
        return cmocka_run_group_tests_name("x509_svid", tests, NULL, NULL);
}
