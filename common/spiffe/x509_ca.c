/* SPDX-License-Identifier: Apache-2.0 */
/* CA certificates: self-signed roots and intermediates (SPIRE's CA template). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

#define CA_COMMON_NAME "Warden CA"

static void openssl_freep(char **p) {
        OPENSSL_free(*p);
}

typedef struct CaTemplate {
        EVP_PKEY *subject_key; /* public part goes into the cert */
        const char *trust_domain;
        time_t not_before;
        time_t not_after;
        X509 *issuer;       /* NULL: self-signed */
        EVP_PKEY *sign_key; /* issuer's (or own) private key */
} CaTemplate;

/* Names, serial and validity of a CA certificate. */
static int ca_set_names(X509 *x, const CaTemplate *t) {
        _cleanup_(BN_freep) BIGNUM *serial = NULL;
        _cleanup_(openssl_freep) char *serial_dec = NULL;
        int r;

        r = x509_set_random_serial(x, &serial);
        if (r < 0)
                return r;
        serial_dec = BN_bn2dec(serial);
        if (!serial_dec)
                return ossl_to_errno(-ENOMEM);
        r = x509_set_subject(x, serial_dec, CA_COMMON_NAME);
        if (r < 0)
                return r;
        if (X509_set_issuer_name(x, X509_get_subject_name(t->issuer ? t->issuer : x)) != 1)
                return ossl_to_errno(-EIO);
        return x509_set_validity(x, t->not_before, t->not_after);
}

static int ca_build(const CaTemplate *t, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_free_ char *id = NULL;
        const char *reason = NULL;
        int r;

        r = warden_trust_domain_validate(t->trust_domain, &reason);
        if (r < 0)
                return log_debug_errno(-EINVAL, "Invalid trust domain: %s", strna(reason));
        r = warden_trust_domain_id(t->trust_domain, &id);
        if (r < 0)
                return r;
        r = x509_key_check_supported(t->subject_key);
        if (r < 0)
                return r;

        x = X509_new();
        if (!x)
                return -ENOMEM;
        if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_pubkey(x, t->subject_key) != 1)
                return ossl_to_errno(-EIO);
        r = ca_set_names(x, t);
        if (r < 0)
                return r;
        r = x509_add_san(x, id, NULL, 0);
        if (r >= 0)
                r = x509_add_basic_constraints(x, true);
        if (r >= 0)
                r = x509_add_key_usage(x, (1u << X509_KU_BIT_KEY_CERT_SIGN) |
                                                  (1u << X509_KU_BIT_CRL_SIGN));
        if (r >= 0)
                r = x509_add_ski(x);
        if (r >= 0 && t->issuer)
                r = x509_add_aki(x, t->issuer);
        if (r < 0)
                return r;
        if (X509_sign(x, t->sign_key, x509_digest_for_key(t->sign_key)) <= 0)
                return ossl_to_errno(-EIO);
        *ret = TAKE_PTR(x);
        return 0;
}

int warden_ca_create_self_signed(
        EVP_PKEY *key, const char *trust_domain, int64_t ttl_seconds, time_t now, X509 **ret) {
        CaTemplate t = {
                .subject_key = key,
                .trust_domain = trust_domain,
                .sign_key = key,
        };
        int r;

        if (!key || !trust_domain || !ret)
                return -EINVAL;
        r = x509_validity_for(now > 0 ? now : time(NULL), ttl_seconds, 0, &t.not_before,
                              &t.not_after);
        if (r < 0)
                return r;
        return ca_build(&t, ret);
}

int warden_ca_create_intermediate(X509 *upstream_cert,
                                  EVP_PKEY *upstream_key,
                                  EVP_PKEY *pubkey,
                                  const char *trust_domain,
                                  int64_t ttl_seconds,
                                  time_t now,
                                  X509 **ret) {
        CaTemplate t = {
                .subject_key = pubkey,
                .trust_domain = trust_domain,
                .issuer = upstream_cert,
                .sign_key = upstream_key,
        };
        time_t cap;
        int r;

        if (!upstream_cert || !upstream_key || !pubkey || !trust_domain || !ret)
                return -EINVAL;
        if (now <= 0)
                now = time(NULL);
        r = x509_check_signing_ca(upstream_cert, upstream_key, now, &cap);
        if (r < 0)
                return r;
        r = x509_validity_for(now, ttl_seconds, cap, &t.not_before, &t.not_after);
        if (r < 0)
                return r;
        return ca_build(&t, ret);
}
