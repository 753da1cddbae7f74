/* SPDX-License-Identifier: Apache-2.0 */
/* X509-SVID issuance (SPIRE's leaf template, spec/SPIFFE-FACTS.md §3). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

#define DNS_LABEL_MAX 63
/* X.520 ub-common-name: a longer first DNS name is not copied into CN. */
#define CN_MAX 64

static bool dns_label_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-';
}

int warden_dns_name_validate(const char *name, const char **reterr_reason) {
        const char *reason, *p;
        size_t len;

        if (!name || !*name) {
                reason = "empty DNS name";
                goto bad;
        }
        len = strlen(name);
        if (len > WARDEN_DNS_NAME_MAX) {
                reason = "DNS name too long";
                goto bad;
        }
        p = strneq(name, "*.", 2) ? name + 2 : name;
        for (;;) {
                size_t n = 0;

                while (p[n] && p[n] != '.') {
                        if (!dns_label_char(p[n])) {
                                reason = "bad DNS name character";
                                goto bad;
                        }
                        n++;
                }
                if (n == 0) {
                        reason = "empty DNS label";
                        goto bad;
                }
                if (n > DNS_LABEL_MAX) {
                        reason = "DNS label too long";
                        goto bad;
                }
                if (p[0] == '-' || p[n - 1] == '-') {
                        reason = "DNS label starts or ends with '-'";
                        goto bad;
                }
                if (!p[n])
                        return 0;
                p += n + 1;
        }
bad:
        if (reterr_reason)
                *reterr_reason = reason;
        return -EINVAL;
}

static int svid_check_params(const WardenSvidParams *p) {
        const char *reason = NULL;
        int r;

        if (!p->ca_cert || !p->ca_key || !p->public_key || !p->spiffe_id)
                return -EINVAL;
        if (p->ttl_seconds <= 0)
                return log_debug_errno(-EINVAL, "SVID TTL must be positive");
        r = warden_spiffeid_validate_workload(p->spiffe_id, &reason);
        if (r < 0)
                return log_debug_errno(-EINVAL, "Invalid SVID SPIFFE ID: %s", strna(reason));
        if (p->n_dns_names > WARDEN_SVID_DNS_NAMES_MAX || (p->n_dns_names > 0 && !p->dns_names))
                return log_debug_errno(-EINVAL, "Too many DNS names");
        for (size_t i = 0; i < p->n_dns_names; i++) {
                r = warden_dns_name_validate(p->dns_names[i], &reason);
                if (r < 0)
                        return log_debug_errno(-EINVAL, "Invalid DNS name: %s", reason);
        }
        return x509_key_check_supported(p->public_key);
}

static int svid_add_extensions(X509 *x, const WardenSvidParams *p) {
        int r;

        r = x509_add_san(x, p->spiffe_id, p->dns_names, p->n_dns_names);
        if (r >= 0)
                r = x509_add_basic_constraints(x, false);
        if (r >= 0)
                r = x509_add_key_usage(x, (1u << X509_KU_BIT_DIGITAL_SIGNATURE) |
                                                  (1u << X509_KU_BIT_KEY_ENCIPHERMENT) |
                                                  (1u << X509_KU_BIT_KEY_AGREEMENT));
        if (r >= 0)
                r = x509_add_eku_server_client(x);
        if (r >= 0)
                r = x509_add_ski(x);
        if (r >= 0)
                r = x509_add_aki(x, p->ca_cert);
        return r;
}

static int svid_sign(const WardenSvidParams *p, bool for_der, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = NULL;
        time_t now, cap, nb, na;
        const char *cn = NULL;
        int r;

        if (!p || !ret)
                return -EINVAL;
        r = svid_check_params(p);
        if (r < 0)
                return r;
        now = p->now > 0 ? p->now : time(NULL);
        r = x509_check_signing_ca(p->ca_cert, p->ca_key, now, &cap);
        if (r < 0)
                return r;
        r = x509_validity_for(now, p->ttl_seconds, cap, &nb, &na);
        if (r < 0)
                return r;
        if (p->n_dns_names > 0 && strlen(p->dns_names[0]) <= CN_MAX)
                cn = p->dns_names[0];

        x = X509_new();
        if (!x)
                return -ENOMEM;
        if (X509_set_version(x, X509_VERSION_3) != 1)
                return ossl_to_errno(-EIO);
        if (for_der)
                r = x509_set_pubkey_spki(x, p->public_key);
        else
                r = X509_set_pubkey(x, p->public_key) == 1 ? 0 : ossl_to_errno(-EIO);
        if (r >= 0)
                r = x509_set_random_serial(x, NULL);
        if (r >= 0)
                r = x509_set_subject(x, NULL, cn);
        if (r >= 0)
                r = x509_set_validity(x, nb, na);
        if (r < 0)
                return r;
        if (X509_set_issuer_name(x, X509_get_subject_name(p->ca_cert)) != 1)
                return ossl_to_errno(-EIO);
        r = svid_add_extensions(x, p);
        if (r < 0)
                return r;
        if (X509_sign(x, p->ca_key, x509_digest_for_key(p->ca_key)) <= 0)
                return ossl_to_errno(-EIO);
        *ret = TAKE_PTR(x);
        return 0;
}

int warden_svid_sign(const WardenSvidParams *p, X509 **ret) {
        return svid_sign(p, false, ret);
}

int warden_svid_sign_for_der(const WardenSvidParams *p, X509 **ret) {
        return svid_sign(p, true, ret);
}
