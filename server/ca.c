/* SPDX-License-Identifier: Apache-2.0 */
/* The CA manager: setup (self-signed or upstream), the bundle, X.509-SVID signing,
 * JWT-SVID minting and the server's own TLS identity. Rotation is in ca_rotate.c,
 * files in ca_store.c. */
#include "ca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include <warden/bundle.h>
#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "ca_internal.h"
#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"

static int64_t min64(int64_t a, int64_t b) {
        return a < b ? a : b;
}

static void ca_tls_done(CaTls *t) {
        free(t->chain_pem);
        erase_and_free(t->key_pem);
        *t = (CaTls){};
}

Ca *ca_free(Ca *ca) {
        if (!ca)
                return NULL;
        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++)
                for (size_t i = 0; i < ca->slots[kind].n; i++)
                        ca_slot_done(&ca->slots[kind].slot[i]);
        X509_free(ca->upstream_cert);
        EVP_PKEY_free(ca->upstream_key);
        sk_X509_pop_free(ca->upstream_chain, X509_free);
        X509_free(ca->upstream_root);
        warden_bundle_unref(ca->bundle);
        warden_bundle_unref(ca->staged);
        free(ca->roots_pem);
        ca_tls_done(&ca->tls);
        ca_signer_unref(ca->signer);
        free(ca->trust_domain);
        free(ca->data_dir);
        free(ca->dir);
        free(ca);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Ca *, ca_free)

static int ca_check_config(const CaConfig *cfg) {
        const char *reason = NULL;

        if (!cfg || !cfg->trust_domain || !cfg->data_dir || !*cfg->data_dir)
                return -EINVAL;
        if (warden_trust_domain_validate(cfg->trust_domain, &reason) < 0)
                return log_error_errno(-EINVAL, "Invalid trust domain \"%s\": %s",
                                       cfg->trust_domain, strna(reason));
        if (!warden_key_type_to_string(cfg->key_type))
                return log_error_errno(-EINVAL, "Invalid CA key type %d", (int) cfg->key_type);
        if (cfg->ca_ttl < CA_TTL_MIN || cfg->ca_ttl > WARDEN_X509_TTL_MAX)
                return log_error_errno(-EINVAL, "CA TTL %lld s out of range (%d s .. 50 years)",
                                       (long long) cfg->ca_ttl, CA_TTL_MIN);
        if (!cfg->upstream_cert_path != !cfg->upstream_key_path)
                return log_error_errno(-EINVAL,
                                       "An upstream CA needs both a certificate and a key");
        return 0;
}

/* The upstream signing cert must be CA:TRUE with keyCertSign, match the key and be
 * unexpired. */
static int upstream_check(X509 *cert, EVP_PKEY *key, const CaConfig *cfg, time_t now) {
        time_t na;

        if (X509_check_ca(cert) != 1 || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))
                return log_error_errno(-EINVAL,
                                       "Upstream certificate %s is not a CA certificate with "
                                       "keyCertSign",
                                       cfg->upstream_cert_path);
        if (X509_check_private_key(cert, key) != 1) {
                (void) ossl_to_errno(-EKEYREJECTED);
                return log_error_errno(-EKEYREJECTED,
                                       "Upstream key %s does not match the certificate %s",
                                       cfg->upstream_key_path, cfg->upstream_cert_path);
        }
        na = warden_x509_not_after(cert);
        if (na == (time_t) -1 || na <= now)
                return log_error_errno(-EKEYEXPIRED, "Upstream certificate %s has expired",
                                       cfg->upstream_cert_path);
        return 0;
}

/* The certificate file holds the upstream signing CA first, then optionally its chain
 * up to a root. The last certificate is the bundle's root; the ones before it travel
 * in SVID chains after our intermediate. */
static int ca_upstream_load(Ca *ca, const CaConfig *cfg, time_t now) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int n, r;

        r = warden_x509_read_pem_file(cfg->upstream_cert_path, &certs);
        if (r < 0)
                return log_error_errno(r, "Failed to read the upstream CA certificate %s: %m",
                                       cfg->upstream_cert_path);
        r = warden_key_read_file(cfg->upstream_key_path, &key);
        if (r < 0)
                return log_error_errno(r, "Failed to read the upstream CA key %s: %m",
                                       cfg->upstream_key_path);
        r = upstream_check(sk_X509_value(certs, 0), key, cfg, now);
        if (r < 0)
                return r;

        n = sk_X509_num(certs);
        ca->upstream_root = sk_X509_pop(certs);
        ca->upstream_cert = sk_X509_value(certs, 0);
        if (!ca->upstream_cert) /* one cert: it is the root too */
                ca->upstream_cert = ca->upstream_root;
        if (X509_up_ref(ca->upstream_cert) != 1)
                return -ENOMEM;
        ca->upstream_chain = TAKE_PTR(certs);
        ca->upstream_key = TAKE_PTR(key);
        ca->upstream_not_after = warden_x509_not_after(ca->upstream_cert);
        log_debug("Upstream CA %s: %d certificate(s)", cfg->upstream_cert_path, n);
        return 0;
}

/* Few enough seconds that relying parties poll several times between a new key's
 * publication and its first use (ca_ttl/3 later): ca_ttl/15, between 1 s and 5 min. */
static int64_t refresh_hint(int64_t ttl) {
        int64_t h = ttl / 15;
        return h < 1 ? 1 : min64(h, 300);
}

static int ca_bundle_build(const Ca *ca, WardenBundle **ret) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        const CaSlots *x = &ca->slots[CA_KIND_X509], *j = &ca->slots[CA_KIND_JWT];
        int r;

        r = warden_bundle_new(ca->trust_domain, &b);
        if (r < 0)
                return r;
        if (ca->upstream_root)
                r = warden_bundle_add_x509_authority(b, ca->upstream_root);
        for (size_t i = 0; r >= 0 && !ca->upstream_root && i < x->n; i++)
                r = warden_bundle_add_x509_authority(b, x->slot[i].cert);
        for (size_t i = 0; r >= 0 && i < j->n; i++)
                r = warden_bundle_add_jwt_authority(b, j->slot[i].kid, j->slot[i].key,
                                                    j->slot[i].not_after);
        if (r >= 0)
                r = warden_bundle_set_refresh_hint(b, refresh_hint(ca->ttl));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

/* Rebuilds the bundle from the slots into ca->staged; the sequence goes up when the
 * content differs from the latest bundle (and starts at 1). A staged bundle is
 * published only once the state file holding its sequence is written. */
static int ca_bundle_stage(Ca *ca) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        const WardenBundle *latest = ca->staged ? ca->staged : ca->bundle;
        int r;

        r = ca_bundle_build(ca, &b);
        if (r < 0)
                return r;
        warden_bundle_set_sequence(b, ca->sequence);
        if (latest && warden_bundle_equal(latest, b))
                return 0;
        if (latest || ca->sequence == 0) {
                ca->sequence++;
                warden_bundle_set_sequence(b, ca->sequence);
                ca->dirty = true;
        }
        warden_bundle_unref(ca->staged);
        ca->staged = TAKE_PTR(b);
        return 0;
}

static int ca_bundle_publish(Ca *ca, bool *ret_changed) {
        _cleanup_free_ char *pem = NULL;
        int r;

        if (!ca->staged) {
                *ret_changed = false;
                return 0;
        }
        r = warden_bundle_to_pem(ca->staged, &pem);
        if (r < 0)
                return r;
        warden_bundle_unref(ca->bundle);
        ca->bundle = TAKE_PTR(ca->staged);
        free(ca->roots_pem);
        ca->roots_pem = TAKE_PTR(pem);
        *ret_changed = true;
        return 0;
}

int ca_sign_x509_svid(Ca *ca,
                      EVP_PKEY *public_key,
                      const char *spiffe_id,
                      const char *const *dns_names,
                      size_t n_dns_names,
                      int64_t ttl,
                      time_t now,
                      STACK_OF(X509) * *ret_chain) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(ca_signer_unrefp) CaSigner *signer = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        STACK_OF(X509) * rest;
        int r;

        if (!ca || !ret_chain)
                return -EINVAL;
        r = ca_get_signer(ca, &signer);
        if (r >= 0)
                r = ca_signer_sign(signer, public_key, spiffe_id, dns_names, n_dns_names, ttl, now,
                                   false, &leaf);
        if (r < 0)
                return r;
        chain = sk_X509_new_null();
        if (!chain || !sk_X509_push(chain, leaf))
                return -ENOMEM;
        TAKE_PTR(leaf);
        rest = ca_signer_chain(signer);
        for (int i = 0; i < sk_X509_num(rest); i++) {
                X509 *c = sk_X509_value(rest, i);

                if (X509_up_ref(c) != 1)
                        return -ENOMEM;
                if (!sk_X509_push(chain, c)) {
                        X509_free(c);
                        return -ENOMEM;
                }
        }
        *ret_chain = TAKE_PTR(chain);
        return 0;
}

int ca_mint_jwt_svid(Ca *ca,
                     const char *spiffe_id,
                     const char *const *audiences,
                     size_t n_audiences,
                     int64_t ttl,
                     time_t now,
                     char **ret_token,
                     int64_t *ret_expires_at) {
        _cleanup_(ca_signer_unrefp) CaSigner *signer = NULL;
        int r;

        if (!ca)
                return -EINVAL;
        r = ca_get_signer(ca, &signer);
        if (r < 0)
                return r;
        return ca_signer_mint_jwt_svid(signer, spiffe_id, audiences, n_audiences, ttl, now,
                                       ret_token, ret_expires_at);
}

int ca_server_spiffe_id(const Ca *ca, char **ret) {
        if (!ca || !ret)
                return -EINVAL;
        return warden_spiffeid_format(ca->trust_domain, CA_SERVER_PATH, ret);
}

static int ca_tls_issue(Ca *ca, time_t now) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *id = NULL, *chain_pem = NULL;
        _cleanup_erase_ char *key_pem = NULL;
        static const char *const dns[] = {"localhost"};
        const CaSlot *cur = ca_slot_find_const(ca, CA_KIND_X509, CA_ROLE_CURRENT);
        int64_t ttl;
        int r;

        if (!cur || cur->not_after <= (int64_t) now)
                return -EKEYEXPIRED;
        ttl = min64(min64(CA_SERVER_TLS_TTL_MAX, ca->ttl / 2), cur->not_after - (int64_t) now);
        r = warden_key_generate(ca->key_type, &key);
        if (r >= 0)
                r = ca_server_spiffe_id(ca, &id);
        if (r >= 0)
                r = ca_sign_x509_svid(ca, key, id, dns, 1, ttl, now, &chain);
        if (r >= 0)
                r = warden_x509_chain_to_pem(chain, &chain_pem);
        if (r >= 0)
                r = warden_key_to_pem(key, &key_pem);
        if (r < 0)
                return log_error_errno(r, "Failed to issue the server's TLS certificate: %m");

        ca_tls_done(&ca->tls);
        ca->tls = (CaTls){
                .chain_pem = TAKE_PTR(chain_pem),
                .key_pem = TAKE_PTR(key_pem),
                .ca_id = cur->id,
                .renew_at = (int64_t) now + (ttl + 1) / 2,
        };
        log_debug("Issued the server TLS certificate (CA slot %u, %lld s)", cur->id,
                  (long long) ttl);
        return 0;
}

/* Re-issues the server certificate at half-life or when the active CA changed. */
static int ca_tls_refresh(Ca *ca, time_t now, bool *ret_changed) {
        const CaSlot *cur = ca_slot_find_const(ca, CA_KIND_X509, CA_ROLE_CURRENT);
        int r;

        if (ca->tls.chain_pem && cur && ca->tls.ca_id == cur->id &&
            (int64_t) now < ca->tls.renew_at) {
                *ret_changed = false;
                return 0;
        }
        r = ca_tls_issue(ca, now);
        if (r < 0)
                return r;
        *ret_changed = true;
        return 0;
}

int ca_tick(Ca *ca, time_t now, bool *ret_changed) {
        bool active = false, bundle = false, tls = false;
        int r, k;

        if (!ca)
                return -EINVAL;
        /* Whatever rotation managed before a failure is still saved and published. */
        r = ca_rotate(ca, now, &active);
        k = ca_bundle_stage(ca);
        if (r >= 0)
                r = k;
        if (ca->dirty) {
                k = ca_store_save(ca);
                if (k < 0)
                        log_error_errno(k, "Failed to save the CA state in %s: %m", ca->dir);
                else {
                        ca->dirty = false;
                        ca_store_gc(ca);
                }
                if (r >= 0)
                        r = k;
        }
        if (!ca->dirty) {
                k = ca_bundle_publish(ca, &bundle);
                if (r >= 0)
                        r = k;
        }
        ca->changed_pending = ca->changed_pending || active || bundle;
        if (r >= 0)
                r = ca_tls_refresh(ca, now, &tls);
        if (r < 0) {
                ca->retry_at = (int64_t) now + CA_RETRY_SECONDS;
                return r;
        }
        ca->retry_at = 0;
        if (ret_changed)
                *ret_changed = ca->changed_pending || tls;
        ca->changed_pending = false;
        return 0;
}

time_t ca_next_tick(const Ca *ca) {
        int64_t t;

        if (!ca)
                return (time_t) INT64_MAX;
        if (ca->retry_at > 0)
                return (time_t) ca->retry_at; /* after a failed tick */
        t = min64(ca_rotate_next_time(ca), ca->tls.renew_at);
        return (time_t) t;
}

const WardenBundle *ca_bundle(const Ca *ca) {
        return ca ? ca->bundle : NULL;
}

int ca_server_tls(Ca *ca,
                  const char **ret_chain_pem,
                  const char **ret_key_pem,
                  const char **ret_roots_pem) {
        if (!ca)
                return -EINVAL;
        if (!ca->tls.chain_pem || !ca->roots_pem)
                return -ENODATA;
        if (ret_chain_pem)
                *ret_chain_pem = ca->tls.chain_pem;
        if (ret_key_pem)
                *ret_key_pem = ca->tls.key_pem;
        if (ret_roots_pem)
                *ret_roots_pem = ca->roots_pem;
        return 0;
}

/* First start: one current X.509 CA and one current JWT key, bundle sequence 1. */
static int ca_first_build(Ca *ca, time_t now) {
        int r;

        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++) {
                r = ca_slot_create(ca, kind, CA_ROLE_CURRENT, now);
                if (r < 0)
                        return r;
        }
        return ca_bundle_stage(ca);
}

int ca_new(const CaConfig *cfg, time_t now, Ca **ret) {
        _cleanup_(ca_freep) Ca *ca = NULL;
        bool changed;
        int r;

        if (!ret)
                return -EINVAL;
        r = ca_check_config(cfg);
        if (r < 0)
                return r;
        ca = calloc(1, sizeof(Ca));
        if (!ca)
                return -ENOMEM;
        ca->trust_domain = strdup(cfg->trust_domain);
        ca->data_dir = strdup(cfg->data_dir);
        if (!ca->trust_domain || !ca->data_dir)
                return -ENOMEM;
        ca->key_type = cfg->key_type;
        ca->ttl = cfg->ca_ttl;
        ca->next_id = 1;

        if (cfg->upstream_cert_path) {
                r = ca_upstream_load(ca, cfg, now);
                if (r < 0)
                        return r;
        }
        r = ca_store_open(ca, ca_first_build, now);
        if (r < 0)
                return r;
        /* The bundle as stored (same sequence; the state file is written), then catch
         * up with the clock. */
        ca->dirty = false;
        r = ca_bundle_stage(ca);
        if (r >= 0)
                r = ca_bundle_publish(ca, &changed);
        if (r < 0)
                return r;
        r = ca_tick(ca, now, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ca);
        return 0;
}
