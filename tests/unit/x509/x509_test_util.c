/* SPDX-License-Identifier: Apache-2.0 */
#include "x509_test_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "testlib.h"

EVP_PKEY *tu_key(void) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(k);
        return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        if (!value)
                return;
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
}

X509 *tu_make_cert(const TuCertSpec *s) {
        X509 *x = X509_new(), *issuer;
        X509_NAME *name = X509_NAME_new();
        time_t now = time(NULL);

        assert_non_null(x);
        assert_non_null(name);
        assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial ? s->serial : 1), 1);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                                    (const unsigned char *) "Test", -1, -1, 0),
                         1);
        if (s->cn)
                assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                            (const unsigned char *) s->cn, -1, -1,
                                                            0),
                                 1);
        assert_int_equal(X509_set_subject_name(x, name), 1);
        X509_NAME_free(name);
        issuer = s->issuer ? s->issuer : x;
        assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer)), 1);
        assert_non_null(
                ASN1_TIME_set(X509_getm_notBefore(x), s->not_before ? s->not_before : now - 60));
        assert_non_null(
                ASN1_TIME_set(X509_getm_notAfter(x), s->not_after ? s->not_after : now + 3600));
        assert_int_equal(X509_set_pubkey(x, s->key), 1);
        add_ext(x, issuer, NID_subject_key_identifier, "hash");
        if (s->issuer)
                add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
        add_ext(x, issuer, NID_subject_alt_name, s->san);
        add_ext(x, issuer, NID_basic_constraints, s->bc);
        add_ext(x, issuer, NID_key_usage, s->ku);
        add_ext(x, issuer, NID_ext_key_usage, s->eku);
        assert_true(X509_sign(x, s->issuer ? s->issuer_key : s->key, EVP_sha256()) > 0);
        return x;
}

X509 *tu_make_root(EVP_PKEY *key, const char *td) {
        char san[300];
        TuCertSpec s = {
                .key = key,
                .cn = "Test Root",
                .bc = "critical,CA:TRUE",
                .ku = "critical,keyCertSign,cRLSign",
        };

        if (td) {
                snprintf(san, sizeof(san), "URI:spiffe://%s", td);
                s.san = san;
        }
        return tu_make_cert(&s);
}

X509 *tu_make_leaf(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *san) {
        TuCertSpec s = {
                .key = key,
                .issuer = ca,
                .issuer_key = ca_key,
                .san = san,
                .bc = "critical,CA:FALSE",
                .ku = "critical,digitalSignature,keyEncipherment,keyAgreement",
                .eku = "serverAuth,clientAuth",
                .serial = 2,
        };
        return tu_make_cert(&s);
}

STACK_OF(X509) * tu_stack(X509 *first, ...) {
        STACK_OF(X509) *sk = sk_X509_new_null();
        va_list ap;

        assert_non_null(sk);
        va_start(ap, first);
        for (X509 *x = first; x; x = va_arg(ap, X509 *)) {
                assert_int_equal(X509_up_ref(x), 1);
                assert_true(sk_X509_push(sk, x) > 0);
        }
        va_end(ap);
        return sk;
}

int tu_ext_critical(X509 *x, int nid) {
        int i = X509_get_ext_by_NID(x, nid, -1);

        if (i < 0)
                return -1;
        return X509_EXTENSION_get_critical(X509_get_ext(x, i)) ? 1 : 0;
}

int tu_san_count(X509 *x, int type, char **ret_first) {
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        int n = 0;

        if (ret_first)
                *ret_first = NULL;
        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                int t;
                ASN1_STRING *s = GENERAL_NAME_get0_value(g, &t);
                if (t != type)
                        continue;
                if (n == 0 && ret_first)
                        *ret_first = strndup((const char *) ASN1_STRING_get0_data(s),
                                             (size_t) ASN1_STRING_length(s));
                n++;
        }
        GENERAL_NAMES_free(gens);
        return n;
}

char *tu_subject_entry(X509 *x, int nid) {
        X509_NAME *name = X509_get_subject_name(x);
        int i = X509_NAME_get_index_by_NID(name, nid, -1);
        ASN1_STRING *s;

        if (i < 0)
                return NULL;
        s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        return strndup((const char *) ASN1_STRING_get0_data(s), (size_t) ASN1_STRING_length(s));
}

size_t tu_count(const char *haystack, const char *needle) {
        size_t n = 0;

        for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}
