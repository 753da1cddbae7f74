/* SPDX-License-Identifier: Apache-2.0 */
#include "certgen.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "testlib.h"

EVP_PKEY *test_key(const char *type) {
        EVP_PKEY *k;

        if (strncmp(type, "RSA", 3) == 0)
                k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) atoi(type + 3));
        else
                k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
        assert_non_null(k);
        return k;
}

static void add_ext(X509 *cert, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(cert, ext, -1), 1);
        X509_EXTENSION_free(ext);
}

X509 *test_cert(EVP_PKEY *key, const char *cn, bool ca) {
        static long serial = 1;
        X509 *cert = X509_new();
        X509_NAME *name;

        assert_non_null(cert);
        assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++), 1);
        name = X509_get_subject_name(cert);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *) cn, -1, -1, 0),
                         1);
        assert_int_equal(X509_set_issuer_name(cert, name), 1);
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -60));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 3600));
        assert_int_equal(X509_set_pubkey(cert, key), 1);
        if (ca) {
                add_ext(cert, NID_basic_constraints, "critical,CA:TRUE");
                add_ext(cert, NID_key_usage, "critical,keyCertSign,cRLSign");
        } else {
                add_ext(cert, NID_basic_constraints, "critical,CA:FALSE");
                add_ext(cert, NID_key_usage, "critical,digitalSignature");
        }
        assert_true(X509_sign(cert, key,
                              EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) >
                    0);
        return cert;
}
