/* SPDX-License-Identifier: Apache-2.0 */
/* DER/PEM encodings, chains and their caps, accessors. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "x509_test_util.h"

typedef struct Fixture {
        EVP_PKEY *root_key, *int_key, *key;
        X509 *root, *inter, *leaf;
        STACK_OF(X509) * chain; /* leaf, intermediate, root */
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        WardenSvidParams p = {.spiffe_id = TU_ID, .ttl_seconds = 600};

        if (!f)
                return -1;
        f->root_key = tu_key();
        f->int_key = tu_key();
        f->key = tu_key();
        if (warden_ca_create_self_signed(f->root_key, TU_TD, 86400, 0, &f->root) < 0 ||
            warden_ca_create_intermediate(f->root, f->root_key, f->int_key, TU_TD, 3600, 0,
                                          &f->inter) < 0)
                return -1;
        p.ca_cert = f->inter;
        p.ca_key = f->int_key;
        p.public_key = f->key;
        if (warden_svid_sign(&p, &f->leaf) < 0)
                return -1;
        f->chain = tu_stack(f->leaf, f->inter, f->root, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        sk_X509_pop_free(f->chain, X509_free);
        X509_free(f->leaf);
        X509_free(f->inter);
        X509_free(f->root);
        EVP_PKEY_free(f->root_key);
        EVP_PKEY_free(f->int_key);
        EVP_PKEY_free(f->key);
        free(f);
        return 0;
}

static void assert_same_certs(STACK_OF(X509) * a, STACK_OF(X509) * b) {
        assert_int_equal(sk_X509_num(a), sk_X509_num(b));
        for (int i = 0; i < sk_X509_num(a); i++)
                assert_int_equal(X509_cmp(sk_X509_value(a, i), sk_X509_value(b, i)), 0);
}

static void test_cert_der(void **state) {
        Fixture *f = *state;
        _cleanup_(X509_freep) X509 *back = NULL;
        _cleanup_free_ uint8_t *der = NULL, *big = NULL;
        X509 *out = NULL;
        size_t len = 0;

        assert_ok(warden_x509_to_der(f->leaf, &der, &len));
        assert_ok(warden_x509_from_der(der, len, &back));
        assert_int_equal(X509_cmp(back, f->leaf), 0);
        assert_errno(warden_x509_from_der(der, len - 1, &out), EBADMSG);
        der = realloc(der, len + 1);
        der[len] = 0;
        assert_errno(warden_x509_from_der(der, len + 1, &out), EBADMSG);
        big = calloc(1, WARDEN_X509_CERT_MAX_BYTES + 1);
        assert_errno(warden_x509_from_der(big, WARDEN_X509_CERT_MAX_BYTES + 1, &out), EMSGSIZE);
        assert_errno(warden_x509_from_der(big, 0, &out), EBADMSG);
        assert_null(out);
}

static void test_chain_der_roundtrip(void **state) {
        Fixture *f = *state;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *back = NULL, *empty = sk_X509_new_null();
        _cleanup_free_ uint8_t *der = NULL, *leaf_der = NULL;
        uint8_t *none = (uint8_t *) "x";
        size_t len = 0, leaf_len = 0, none_len = 1;

        assert_ok(warden_x509_chain_to_der(f->chain, &der, &len));
        /* Leaf first, byte-for-byte its own DER. */
        assert_ok(warden_x509_to_der(f->leaf, &leaf_der, &leaf_len));
        assert_true(len > leaf_len);
        assert_memory_equal(der, leaf_der, leaf_len);
        assert_ok(warden_x509_chain_from_der(der, len, &back));
        assert_same_certs(back, f->chain);

        assert_ok(warden_x509_chain_to_der(empty, &none, &none_len));
        assert_null(none);
        assert_int_equal(none_len, 0);
}

static void test_chain_der_caps(void **state) {
        Fixture *f = *state;
        _cleanup_free_ uint8_t *one = NULL, *buf = NULL, *big = NULL, *der = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *sixteen = NULL, *empty = NULL;
        STACK_OF(X509) *out = NULL;
        size_t len = 0, dlen = 0;

        assert_ok(warden_x509_to_der(f->root, &one, &len));
        buf = malloc(len * (WARDEN_X509_CHAIN_MAX_CERTS + 1));
        for (size_t i = 0; i <= WARDEN_X509_CHAIN_MAX_CERTS; i++)
                memcpy(buf + i * len, one, len);
        assert_true(len * (WARDEN_X509_CHAIN_MAX_CERTS + 1) <= WARDEN_X509_CHAIN_MAX_BYTES);
        /* 16 certs: fine; 17: refused. */
        assert_ok(warden_x509_chain_from_der(buf, len * WARDEN_X509_CHAIN_MAX_CERTS, &sixteen));
        assert_int_equal(sk_X509_num(sixteen), WARDEN_X509_CHAIN_MAX_CERTS);
        assert_errno(warden_x509_chain_from_der(buf, len * (WARDEN_X509_CHAIN_MAX_CERTS + 1), &out),
                     EMSGSIZE);
        /* Byte cap. */
        big = calloc(1, WARDEN_X509_CHAIN_MAX_BYTES + 1);
        assert_errno(warden_x509_chain_from_der(big, WARDEN_X509_CHAIN_MAX_BYTES + 1, &out),
                     EMSGSIZE);
        assert_errno(warden_x509_chain_from_der(big, WARDEN_X509_CHAIN_MAX_BYTES, &out), EBADMSG);

        /* Truncated: last byte gone, cut inside the second cert, garbage, empty. */
        assert_ok(warden_x509_chain_to_der(f->chain, &der, &dlen));
        assert_errno(warden_x509_chain_from_der(der, dlen - 1, &out), EBADMSG);
        assert_errno(warden_x509_chain_from_der(der, dlen / 2, &out), EBADMSG);
        assert_errno(warden_x509_chain_from_der((const uint8_t *) "\x30\x82\xff", 3, &out),
                     EBADMSG);
        assert_errno(warden_x509_chain_from_der(der, 0, &out), EBADMSG);
        assert_null(out);

        /* The general form allows an empty list and custom caps. */
        assert_ok(warden_x509_certs_from_der(der, 0, 4, 1024, &empty));
        assert_int_equal(sk_X509_num(empty), 0);
        assert_errno(warden_x509_certs_from_der(der, dlen, 2, 65536, &out), EMSGSIZE);
        assert_errno(warden_x509_certs_from_der(der, dlen, 3, dlen - 1, &out), EMSGSIZE);
        assert_ok(warden_x509_certs_from_der(der, dlen, 3, dlen, &out));
        sk_X509_pop_free(out, X509_free);
}

static void test_pem(void **state) {
        Fixture *f = *state;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *back = NULL, *mixed_back = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = tu_key();
        _cleanup_erase_ char *keypem = NULL;
        _cleanup_free_ char *pem = NULL, *mixed = NULL, *broken = NULL;
        STACK_OF(X509) *out = NULL;
        char *body;

        assert_ok(warden_x509_chain_to_pem(f->chain, &pem));
        assert_int_equal(tu_count(pem, "-----BEGIN CERTIFICATE-----\n"), 3);
        assert_ok(warden_x509_chain_from_pem(pem, strlen(pem), &back));
        assert_same_certs(back, f->chain);

        /* Other block types are skipped. */
        assert_ok(warden_key_to_pem(k, &keypem));
        assert_true(asprintf(&mixed, "junk\n%s%s", keypem, pem) > 0);
        assert_ok(warden_x509_chain_from_pem(mixed, strlen(mixed), &mixed_back));
        assert_same_certs(mixed_back, f->chain);

        /* No certificate at all; damaged base64 inside a CERTIFICATE block. */
        assert_errno(warden_x509_chain_from_pem(keypem, strlen(keypem), &out), EBADMSG);
        assert_errno(warden_x509_chain_from_pem("", 0, &out), EBADMSG);
        broken = strdup(pem);
        body = strstr(broken, "-----\n") + 6;
        memcpy(body, "!!!!", 4);
        assert_errno(warden_x509_chain_from_pem(broken, strlen(broken), &out), EBADMSG);
        assert_errno(warden_x509_chain_from_pem(pem, WARDEN_X509_PEM_MAX_BYTES + 1, &out),
                     EMSGSIZE);
        assert_null(out);
}

static void test_pem_count_cap(void **state) {
        Fixture *f = *state;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *one = tu_stack(f->root, NULL), *ok = NULL;
        _cleanup_free_ char *pem = NULL, *many = NULL;
        STACK_OF(X509) *out = NULL;
        size_t n;

        assert_ok(warden_x509_chain_to_pem(one, &pem));
        n = strlen(pem);
        many = malloc(n * (WARDEN_X509_PEM_MAX_CERTS + 1) + 1);
        for (size_t i = 0; i <= WARDEN_X509_PEM_MAX_CERTS; i++)
                memcpy(many + i * n, pem, n);
        many[n * (WARDEN_X509_PEM_MAX_CERTS + 1)] = '\0';
        assert_ok(warden_x509_chain_from_pem(many, n * WARDEN_X509_PEM_MAX_CERTS, &ok));
        assert_int_equal(sk_X509_num(ok), WARDEN_X509_PEM_MAX_CERTS);
        assert_errno(warden_x509_chain_from_pem(many, n * (WARDEN_X509_PEM_MAX_CERTS + 1), &out),
                     EMSGSIZE);
}

static void test_pem_file(void **state) {
        Fixture *f = *state;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *back = NULL;
        _cleanup_free_ char *path = NULL;
        char *dir = test_tmpdir();
        mode_t old_umask;
        struct stat st;
        int r;

        assert_true(asprintf(&path, "%s/bundle.pem", dir) > 0);
        /* The mode is exact whatever the umask. */
        old_umask = umask(077);
        r = warden_x509_write_pem_file(path, f->chain, 0644);
        umask(old_umask);
        assert_ok(r);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_ok(warden_x509_read_pem_file(path, &back));
        assert_same_certs(back, f->chain);
        assert_errno(warden_x509_write_pem_file("/nonexistent-dir/x.pem", f->chain, 0644), ENOENT);
        test_rmdir_free(dir);
}

static void test_accessors(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *id = NULL, *td = NULL, *hex = NULL, *fp = NULL, *want = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = tu_key();
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        size_t len = 0;
        char *out = NULL;
        TuCertSpec s = {.key = k, .cn = "plain", .serial = 0x0a1b};
        _cleanup_(X509_freep) X509 *plain = tu_make_cert(&s);

        assert_ok(warden_x509_spiffe_id(f->leaf, &id));
        assert_string_equal(id, TU_ID);
        assert_ok(warden_x509_spiffe_id(f->root, &td));
        assert_string_equal(td, "spiffe://" TU_TD);
        assert_errno(warden_x509_spiffe_id(plain, &out), EBADMSG);

        assert_ok(warden_x509_serial_hex(plain, &hex));
        assert_string_equal(hex, "a1b");
        free(hex);
        hex = NULL;
        assert_ok(warden_x509_serial_hex(f->leaf, &hex));
        assert_true(strlen(hex) >= 17 && strlen(hex) <= 32);
        assert_int_equal(strspn(hex, "0123456789abcdef"), strlen(hex));

        /* SHA-1 over the DER, computed independently. */
        assert_ok(warden_x509_fingerprint_sha1_hex(f->leaf, &fp));
        assert_ok(warden_x509_to_der(f->leaf, &der, &len));
        assert_int_equal(EVP_Digest(der, len, md, &mdlen, EVP_sha1(), NULL), 1);
        assert_int_equal(mdlen, 20);
        want = calloc(1, 41);
        for (unsigned i = 0; i < mdlen; i++)
                sprintf(want + 2 * i, "%02x", md[i]);
        assert_string_equal(fp, want);

        assert_int_equal(warden_x509_not_after(plain) - warden_x509_not_before(plain), 3660);
        assert_int_equal(warden_x509_not_after(f->leaf) - warden_x509_not_before(f->leaf), 610);
        assert_int_equal(warden_x509_not_after(NULL), (time_t) -1);
}

int x509_encode_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_cert_der, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chain_der_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chain_der_caps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pem, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pem_count_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pem_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_accessors, setup, teardown),
        };
        return cmocka_run_group_tests_name("x509_encode", tests, NULL, NULL);
}
