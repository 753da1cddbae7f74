/* SPDX-License-Identifier: Apache-2.0 */
/* Building blocks for certificate templates: serials, validity, names, extensions.
 * Extensions are built from their ASN.1 structures (never from config strings), so
 * no value can smuggle in extra names. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_BIT_STRING *, ASN1_BIT_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EXTENDED_KEY_USAGE *, EXTENDED_KEY_USAGE_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(AUTHORITY_KEYID *, AUTHORITY_KEYID_free)

#define SERIAL_BYTES 16

int x509_set_random_serial(X509 *x, BIGNUM **ret_bn) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
        unsigned char rnd[SERIAL_BYTES];

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return ossl_to_errno(-EIO);
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
        if (!bn)
                return ossl_to_errno(-ENOMEM);
        if (BN_is_zero(bn) && BN_one(bn) != 1) /* 2^-128, but a serial must be positive */
                return ossl_to_errno(-EIO);
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        if (!serial)
                return ossl_to_errno(-ENOMEM);
        if (X509_set_serialNumber(x, serial) != 1)
                return ossl_to_errno(-EIO);
        if (ret_bn)
                *ret_bn = TAKE_PTR(bn);
        return 0;
}

int x509_set_validity(X509 *x, time_t not_before, time_t not_after) {
        if (!ASN1_TIME_set(X509_getm_notBefore(x), not_before) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), not_after))
                return ossl_to_errno(-EINVAL);
        return 0;
}

int x509_time_to_time_t(const ASN1_TIME *t, time_t *ret) {
        struct tm tm = {};
        time_t v;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return ossl_to_errno(-EBADMSG);
        v = timegm(&tm);
        if (v == (time_t) -1)
                return -ERANGE;
        *ret = v;
        return 0;
}

int x509_validity_for(time_t now,
                      int64_t ttl,
                      time_t cap_not_after,
                      time_t *ret_not_before,
                      time_t *ret_not_after) {
        time_t nb, na;

        if (ttl <= 0 || ttl > WARDEN_X509_TTL_MAX)
                return log_debug_errno(-EINVAL, "Certificate TTL %lld out of range",
                                       (long long) ttl);
        nb = now - WARDEN_X509_BACKDATE_SECONDS;
        na = now + (time_t) ttl;
        if (cap_not_after > 0 && na > cap_not_after)
                na = cap_not_after;
        if (na <= now)
                return log_debug_errno(-EKEYEXPIRED, "Issuer expires before the new certificate");
        *ret_not_before = nb;
        *ret_not_after = na;
        return 0;
}

int x509_set_subject(X509 *x, const char *serial_number, const char *cn) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();

        if (!name)
                return -ENOMEM;
        if (!X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *) "US", -1,
                                        -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "Warden",
                                        -1, -1, 0))
                return ossl_to_errno(-EIO);
        if (serial_number &&
            !X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
                                        (const unsigned char *) serial_number, -1, -1, 0))
                return ossl_to_errno(-EINVAL);
        if (cn && !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn,
                                              -1, -1, 0))
                return ossl_to_errno(-EINVAL);
        if (X509_set_subject_name(x, name) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

static int push_name(GENERAL_NAMES *gens, int type, const char *value) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();

        if (!g || !s || ASN1_STRING_set(s, value, (int) strlen(value)) != 1) {
                GENERAL_NAME_free(g);
                ASN1_IA5STRING_free(s);
                return ossl_to_errno(-ENOMEM);
        }
        GENERAL_NAME_set0_value(g, type, s);
        if (sk_GENERAL_NAME_push(gens, g) <= 0) {
                GENERAL_NAME_free(g);
                return ossl_to_errno(-ENOMEM);
        }
        return 0;
}

int x509_add_san(X509 *x, const char *uri, const char *const *dns, size_t n_dns) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        int r;

        if (!gens)
                return -ENOMEM;
        r = push_name(gens, GEN_URI, uri);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_dns; i++) {
                r = push_name(gens, GEN_DNS, dns[i]);
                if (r < 0)
                        return r;
        }
        if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

int x509_add_basic_constraints(X509 *x, bool ca) {
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();

        if (!bc)
                return -ENOMEM;
        bc->ca = ca ? 0xff : 0;
        if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

int x509_add_key_usage(X509 *x, unsigned bits) {
        _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

        if (!ku)
                return -ENOMEM;
        for (int bit = 0; bit < 9; bit++)
                if ((bits & (1u << bit)) && ASN1_BIT_STRING_set_bit(ku, bit, 1) != 1)
                        return ossl_to_errno(-ENOMEM);
        if (X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

int x509_add_eku_server_client(X509 *x) {
        _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();

        if (!eku)
                return -ENOMEM;
        if (sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) <= 0 ||
            sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) <= 0)
                return ossl_to_errno(-ENOMEM);
        if (X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

/* SHA-1 of the subjectPublicKey BIT STRING of x as an OCTET STRING. */
static int key_id_of(const X509 *x, ASN1_OCTET_STRING **ret) {
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *os = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (X509_pubkey_digest(x, EVP_sha1(), md, &n) != 1)
                return ossl_to_errno(-EINVAL);
        os = ASN1_OCTET_STRING_new();
        if (!os || ASN1_OCTET_STRING_set(os, md, (int) n) != 1)
                return ossl_to_errno(-ENOMEM);
        *ret = TAKE_PTR(os);
        return 0;
}

int x509_add_ski(X509 *x) {
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *os = NULL;
        int r;

        r = key_id_of(x, &os);
        if (r < 0)
                return r;
        if (X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, X509V3_ADD_DEFAULT) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

int x509_add_aki(X509 *x, X509 *issuer) {
        _cleanup_(AUTHORITY_KEYID_freep) AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        const ASN1_OCTET_STRING *ski;
        int r;

        if (!akid)
                return -ENOMEM;
        ski = X509_get0_subject_key_id(issuer);
        if (ski) {
                akid->keyid = ASN1_OCTET_STRING_dup(ski);
                if (!akid->keyid)
                        return ossl_to_errno(-ENOMEM);
        } else {
                ERR_clear_error();
                r = key_id_of(issuer, &akid->keyid);
                if (r < 0)
                        return r;
        }
        if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
                return ossl_to_errno(-EIO);
        return 0;
}

bool x509_is_ca_with_cert_sign(const X509 *ca) {
        BASIC_CONSTRAINTS *bc;
        ASN1_BIT_STRING *ku;
        bool is_ca, cert_sign;
        int crit = -1;

        bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
        is_ca = bc && bc->ca;
        BASIC_CONSTRAINTS_free(bc);
        ku = X509_get_ext_d2i(ca, NID_key_usage, &crit, NULL);
        cert_sign = ku && ASN1_BIT_STRING_get_bit(ku, X509_KU_BIT_KEY_CERT_SIGN);
        ASN1_BIT_STRING_free(ku);
        ERR_clear_error();
        return is_ca && cert_sign;
}

int x509_check_signing_ca(X509 *ca, EVP_PKEY *ca_key, time_t now, time_t *ret_not_after) {
        time_t not_after;
        int r;

        if (!x509_is_ca_with_cert_sign(ca))
                return log_debug_errno(-EINVAL, "Signing certificate is not a CA with keyCertSign");
        if (X509_check_private_key(ca, ca_key) != 1)
                return log_debug_errno(ossl_to_errno(-EINVAL),
                                       "Signing key does not match the CA certificate");
        r = x509_time_to_time_t(X509_get0_notAfter(ca), &not_after);
        if (r < 0)
                return r;
        if (not_after <= now)
                return log_debug_errno(-EKEYEXPIRED, "Signing CA has expired");
        *ret_not_after = not_after;
        return 0;
}
