/* SPDX-License-Identifier: Apache-2.0 */
/* Keys: generation, PKCS#8 DER/PEM, files, SPKI, sign/verify. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rsa.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "x509_test_util.h"

static const WardenKeyType all_types[] = {
        WARDEN_KEY_EC_P256,
        WARDEN_KEY_EC_P384,
        WARDEN_KEY_RSA_2048,
};

static void test_key_type_strings(void **state) {
        (void) state;
        assert_int_equal(warden_key_type_from_string("ec-p256"), WARDEN_KEY_EC_P256);
        assert_int_equal(warden_key_type_from_string("ec-p384"), WARDEN_KEY_EC_P384);
        assert_int_equal(warden_key_type_from_string("rsa-2048"), WARDEN_KEY_RSA_2048);
        assert_errno(warden_key_type_from_string("EC-P256"), EINVAL);
        assert_errno(warden_key_type_from_string("rsa-1024"), EINVAL);
        assert_errno(warden_key_type_from_string(""), EINVAL);
        assert_errno(warden_key_type_from_string(NULL), EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(all_types); i++)
                assert_int_equal(
                        warden_key_type_from_string(warden_key_type_to_string(all_types[i])),
                        all_types[i]);
        assert_null(warden_key_type_to_string(_WARDEN_KEY_TYPE_MAX));
        assert_null(warden_key_type_to_string((WardenKeyType) -1));
}

static void test_generate_and_pkcs8_roundtrip(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(all_types); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *back = NULL;
                uint8_t *der = NULL, *der2 = NULL;
                size_t len = 0, len2 = 0;

                assert_ok(warden_key_generate(all_types[i], &key));
                assert_int_equal(warden_key_get_type(key), all_types[i]);
                assert_ok(warden_key_to_pkcs8_der(key, &der, &len));
                assert_true(len > 64);
                assert_ok(warden_key_from_pkcs8_der(der, len, &back));
                assert_int_equal(warden_key_get_type(back), all_types[i]);
                assert_true(warden_key_public_equal(key, back));
                /* Same private key: the re-encoding is byte-identical. */
                assert_ok(warden_key_to_pkcs8_der(back, &der2, &len2));
                assert_int_equal(len, len2);
                assert_memory_equal(der, der2, len);
                warden_key_der_free(der, len);
                warden_key_der_free(der2, len2);
        }
        assert_errno(warden_key_generate(_WARDEN_KEY_TYPE_MAX, &(EVP_PKEY *){NULL}), EINVAL);
}

static void test_pkcs8_rejects(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *weak = NULL, *p521 = NULL, *ed = NULL;
        EVP_PKEY *out = NULL;
        uint8_t *der = NULL, *big;
        size_t len = 0;
        (void) state;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(warden_key_to_pkcs8_der(key, &der, &len));
        /* Trailing byte, truncation, empty. */
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, der, len);
        longer[len] = 0;
        assert_errno(warden_key_from_pkcs8_der(longer, len + 1, &out), EBADMSG);
        assert_errno(warden_key_from_pkcs8_der(der, len - 1, &out), EBADMSG);
        assert_errno(warden_key_from_pkcs8_der(der, 0, &out), EBADMSG);
        free(longer);
        warden_key_der_free(der, len);
        /* Size cap: limit + 1. */
        big = calloc(1, WARDEN_KEY_MAX_BYTES + 1);
        assert_errno(warden_key_from_pkcs8_der(big, WARDEN_KEY_MAX_BYTES + 1, &out), EMSGSIZE);
        assert_errno(warden_key_from_pkcs8_der(big, WARDEN_KEY_MAX_BYTES, &out), EBADMSG);
        free(big);

        /* Weak RSA, unsupported types. */
        weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        assert_non_null(weak);
        assert_ok(warden_key_to_pkcs8_der(weak, &der, &len));
        assert_errno(warden_key_from_pkcs8_der(der, len, &out), EKEYREJECTED);
        warden_key_der_free(der, len);
        ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(ed);
        assert_ok(warden_key_to_pkcs8_der(ed, &der, &len));
        assert_errno(warden_key_from_pkcs8_der(der, len, &out), EOPNOTSUPP);
        warden_key_der_free(der, len);
        assert_errno(warden_key_get_type(ed), EOPNOTSUPP);
        /* P-521 parses (site CAs may use it) but is not a generation type. */
        p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
        assert_ok(warden_key_to_pkcs8_der(p521, &der, &len));
        assert_ok(warden_key_from_pkcs8_der(der, len, &out));
        assert_errno(warden_key_get_type(out), EOPNOTSUPP);
        EVP_PKEY_free(out);
        warden_key_der_free(der, len);
}

static void test_pem_roundtrip(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(all_types); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *back = NULL;
                _cleanup_erase_ char *pem = NULL;

                assert_ok(warden_key_generate(all_types[i], &key));
                assert_ok(warden_key_to_pem(key, &pem));
                assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----\n"));
                assert_non_null(strstr(pem, "-----END PRIVATE KEY-----\n"));
                assert_ok(warden_key_from_pem(pem, strlen(pem), &back));
                assert_true(warden_key_public_equal(key, back));
        }
}

static void test_pem_rejects(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_erase_ char *pem = NULL;
        _cleanup_free_ char *two = NULL, *other = NULL;
        EVP_PKEY *out = NULL;
        (void) state;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(warden_key_to_pem(key, &pem));
        assert_true(asprintf(&two, "%s%s", pem, pem) > 0);
        assert_errno(warden_key_from_pem(two, strlen(two), &out), EBADMSG);
        other = strdup(pem);
        memcpy(strstr(other, "PRIVATE KEY"), "PUBLIC  KEY", 11);
        assert_errno(warden_key_from_pem(other, strlen(other), &out), EBADMSG);
        assert_errno(warden_key_from_pem("garbage", 7, &out), EBADMSG);
        assert_errno(warden_key_from_pem(pem, WARDEN_KEY_MAX_BYTES + 1, &out), EMSGSIZE);
        /* Truncated body. */
        assert_errno(warden_key_from_pem(pem, strlen(pem) / 2, &out), EBADMSG);
        assert_null(out);
}

static size_t dir_entries(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_key_file(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *key2 = NULL, *back = NULL;
        _cleanup_free_ char *path = NULL;
        char *dir = test_tmpdir();
        EVP_PKEY *out = NULL;
        mode_t old_umask;
        struct stat st;
        (void) state;

        assert_non_null(dir);
        assert_true(asprintf(&path, "%s/agent.key", dir) > 0);
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        old_umask = umask(0); /* the file must be 0600 whatever the umask */
        assert_ok(warden_key_write_file(path, key));
        umask(old_umask);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(dir_entries(dir), 1); /* no temp file left behind */
        assert_ok(warden_key_read_file(path, &back));
        assert_true(warden_key_public_equal(key, back));

        /* Replacing an existing file. */
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P384, &key2));
        assert_ok(warden_key_write_file(path, key2));
        assert_int_equal(dir_entries(dir), 1);
        assert_ok(warden_key_read_file(path, &out));
        assert_true(warden_key_public_equal(key2, out));
        assert_false(warden_key_public_equal(key, out));
        EVP_PKEY_free(out);
        test_rmdir_free(dir);
}

static void test_key_file_refusals(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *path = NULL, *link = NULL, *derpath = NULL;
        char *dir = test_tmpdir();
        EVP_PKEY *out = NULL;
        (void) state;

        assert_non_null(dir);
        assert_true(asprintf(&path, "%s/agent.key", dir) > 0);
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(warden_key_write_file(path, key));

        /* Group/other readable files are refused. */
        assert_int_equal(chmod(path, 0644), 0);
        assert_errno(warden_key_read_file(path, &out), EPERM);
        assert_int_equal(chmod(path, 0640), 0);
        assert_errno(warden_key_read_file(path, &out), EPERM);
        assert_int_equal(chmod(path, 0602), 0);
        assert_errno(warden_key_read_file(path, &out), EPERM);
        assert_int_equal(chmod(path, 0400), 0);
        assert_ok(warden_key_read_file(path, &out));
        EVP_PKEY_free(out);
        out = NULL;

        /* No symlink in the last component, no directory, no missing file. */
        assert_true(asprintf(&link, "%s/link.key", dir) > 0);
        assert_int_equal(symlink(path, link), 0);
        assert_errno(warden_key_read_file(link, &out), ELOOP);
        assert_errno(warden_key_read_file(dir, &out), EBADMSG);
        assert_true(asprintf(&derpath, "%s/missing.key", dir) > 0);
        assert_errno(warden_key_read_file(derpath, &out), ENOENT);

        /* A DER PKCS#8 file is accepted too. */
        uint8_t *der = NULL;
        size_t len = 0;
        FILE *f;
        assert_ok(warden_key_to_pkcs8_der(key, &der, &len));
        f = fopen(derpath, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(der, 1, len, f), len);
        fclose(f);
        warden_key_der_free(der, len);
        assert_int_equal(chmod(derpath, 0600), 0);
        assert_ok(warden_key_read_file(derpath, &out));
        assert_true(warden_key_public_equal(key, out));
        EVP_PKEY_free(out);
        test_rmdir_free(dir);
}

static void test_public_der(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(all_types); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *pub = NULL, *other = NULL;
                _cleanup_free_ uint8_t *der = NULL;
                const unsigned char *p;
                size_t len = 0;

                assert_ok(warden_key_generate(all_types[i], &key));
                assert_ok(warden_key_public_der(key, &der, &len));
                /* Independent decode as SubjectPublicKeyInfo. */
                p = der;
                other = d2i_PUBKEY(NULL, &p, (long) len);
                assert_non_null(other);
                assert_ptr_equal(p, der + len);
                assert_int_equal(EVP_PKEY_eq(key, other), 1);
                assert_ok(warden_key_public_from_der(der, len, &pub));
                assert_true(warden_key_public_equal(pub, key));
                assert_errno(warden_key_public_from_der(der, len - 1, &(EVP_PKEY *){NULL}),
                             EBADMSG);
        }
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *a = tu_key(), *b = tu_key();
        assert_false(warden_key_public_equal(a, b));
        assert_false(warden_key_public_equal(a, NULL));
        assert_false(warden_key_public_equal(NULL, NULL));
        assert_true(warden_key_public_equal(a, a));
}

/* Checks a signature with raw OpenSSL: SHA-256, PKCS#1 v1.5 for RSA. */
static int raw_verify(EVP_PKEY *key, const char *msg, const uint8_t *sig, size_t siglen) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        int r;

        assert_int_equal(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, key), 1);
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
                assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
        r = EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *) msg, strlen(msg));
        EVP_MD_CTX_free(ctx);
        return r;
}

static void test_sign_verify(void **state) {
        static const char msg[] = "x509pop challenge nonce";
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(all_types); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *pub = NULL, *other = NULL;
                _cleanup_free_ uint8_t *sig = NULL, *spki = NULL;
                size_t siglen = 0, spkilen = 0;

                assert_ok(warden_key_generate(all_types[i], &key));
                assert_ok(warden_key_generate(all_types[i], &other));
                assert_ok(warden_key_public_der(key, &spki, &spkilen));
                assert_ok(warden_key_public_from_der(spki, spkilen, &pub));
                assert_ok(warden_sign(key, msg, strlen(msg), &sig, &siglen));
                assert_ok(warden_verify(pub, msg, strlen(msg), sig, siglen));
                assert_ok(warden_verify(key, msg, strlen(msg), sig, siglen));
                assert_int_equal(raw_verify(pub, msg, sig, siglen), 1);
                /* Wrong data, wrong key, damaged or empty signature. */
                assert_errno(warden_verify(pub, msg, strlen(msg) - 1, sig, siglen), EKEYREJECTED);
                assert_errno(warden_verify(other, msg, strlen(msg), sig, siglen), EKEYREJECTED);
                sig[siglen / 2] ^= 0x01;
                assert_errno(warden_verify(pub, msg, strlen(msg), sig, siglen), EKEYREJECTED);
                assert_errno(warden_verify(pub, msg, strlen(msg), sig, 0), EKEYREJECTED);
        }
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *weak =
                EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        uint8_t *sig = NULL;
        size_t siglen = 0;
        assert_errno(warden_sign(weak, msg, 3, &sig, &siglen), EKEYREJECTED);
        assert_errno(warden_verify(weak, msg, 3, (const uint8_t *) "x", 1), EKEYREJECTED);
        assert_errno(warden_sign(ed, msg, 3, &sig, &siglen), EOPNOTSUPP);
        assert_null(sig);
}

int x509_key_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_key_type_strings),
                cmocka_unit_test(test_generate_and_pkcs8_roundtrip),
                cmocka_unit_test(test_pkcs8_rejects),
                cmocka_unit_test(test_pem_roundtrip),
                cmocka_unit_test(test_pem_rejects),
                cmocka_unit_test(test_key_file),
                cmocka_unit_test(test_key_file_refusals),
                cmocka_unit_test(test_public_der),
                cmocka_unit_test(test_sign_verify),
        };
        return cmocka_run_group_tests_name("x509_key", tests, NULL, NULL);
}
