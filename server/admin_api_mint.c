/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: the trust bundle, and minting X509-SVIDs (from a CLI-made CSR) and
 * JWT-SVIDs for any workload ID of our trust domain. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include <warden/bundle.h>
#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "entry.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "pb_util.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static void x509_stack_freep(STACK_OF(X509) * *p) {
        if (*p)
                sk_X509_pop_free(*p, X509_free);
}

/* DER blobs of every cert in the array; the caller frees each .data and the array. */
typedef struct DerList {
        ProtobufCBinaryData *v;
        size_t n;
} DerList;

static void der_list_done(DerList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].data);
        free(l->v);
        *l = (DerList){};
}

static int der_list_from_stack(const STACK_OF(X509) * certs, DerList *l) {
        int n = sk_X509_num(certs);

        l->v = calloc(n > 0 ? (size_t) n : 1, sizeof(ProtobufCBinaryData));
        if (!l->v)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                int r = warden_x509_to_der(sk_X509_value(certs, i), &l->v[i].data, &l->v[i].len);
                if (r < 0)
                        return r;
                l->n++;
        }
        return 0;
}

int admin_get_bundle(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        Warden__Admin__V1__GetBundleResponse resp = WARDEN__ADMIN__V1__GET_BUNDLE_RESPONSE__INIT;
        _cleanup_(pb_freep) Warden__Types__V1__Bundle *pb = NULL;
        _cleanup_free_ char *json = NULL;
        const WardenBundle *b = ca_bundle(s->ca);
        int r;

        if (!b)
                return admin_fail(-EAGAIN, err, n, "no bundle yet");
        r = pb_from_bundle(b, &pb);
        if (r >= 0)
                r = warden_bundle_to_spiffe_json(b, &json);
        if (r < 0)
                return r;
        resp.bundle = pb;
        resp.spiffe_json = json;
        return rpc_message_reply(c, &resp.base, 0);
}

/* The ID must be a workload ID of our trust domain, outside the reserved /warden
 * namespace: an SVID for the server's or an agent's own ID would let its holder act as
 * them on the node API (the rule entry_validate() applies to entries). */
static int check_mint_id(const Server *s, const char *id, char *err, size_t n) {
        const char *reason = NULL;

        if (!*id)
                return admin_fail(-EINVAL, err, n, "missing SPIFFE ID");
        if (warden_spiffeid_validate_workload(id, &reason) < 0)
                return admin_fail(-EINVAL, err, n, "invalid SPIFFE ID \"%s\": %s", id, reason);
        if (!warden_spiffeid_member_of(id, s->cfg.trust_domain))
                return admin_fail(-EINVAL, err, n,
                                  "SPIFFE ID %s is not in the server's trust domain (%s)", id,
                                  s->cfg.trust_domain);
        if (entry_spiffe_id_is_reserved(id))
                return admin_fail(
                        -EINVAL, err, n,
                        "SPIFFE ID %s is in the reserved " ENTRY_RESERVED_PATH " namespace", id);
        return 0;
}

static int check_mint_x509(const Server *s,
                           const Warden__Admin__V1__MintX509SVIDRequest *req,
                           char *err,
                           size_t n) {
        const char *reason = NULL;
        int r;

        r = check_mint_id(s, req->spiffe_id, err, n);
        if (r < 0)
                return r;
        if (req->ttl < 0)
                return admin_fail(-EINVAL, err, n, "invalid TTL: negative");
        if (req->n_dns_names > ENTRY_DNS_NAMES_MAX)
                return admin_fail(-EINVAL, err, n, "too many DNS names (at most %d)",
                                  ENTRY_DNS_NAMES_MAX);
        for (size_t i = 0; i < req->n_dns_names; i++)
                if (entry_dns_name_validate(req->dns_names[i], &reason) < 0)
                        return admin_fail(-EINVAL, err, n, "invalid DNS name \"%.64s\": %s",
                                          req->dns_names[i], reason);
        return 0;
}

static int reply_x509(RpcCall *c, const Ca *ca, STACK_OF(X509) * chain) {
        Warden__Admin__V1__MintX509SVIDResponse resp =
                WARDEN__ADMIN__V1__MINT_X509_SVIDRESPONSE__INIT;
        DerList svid = {}, roots = {};
        int r;

        r = der_list_from_stack(chain, &svid);
        if (r >= 0)
                r = der_list_from_stack(warden_bundle_x509_authorities(ca_bundle(ca)), &roots);
        if (r >= 0) {
                resp.svid_chain = svid.v;
                resp.n_svid_chain = svid.n;
                resp.root_cas = roots.v;
                resp.n_root_cas = roots.n;
                r = rpc_message_reply(c, &resp.base, 0);
        }
        der_list_done(&svid);
        der_list_done(&roots);
        return r;
}

int admin_mint_x509_svid(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__MintX509SVIDRequest *req = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(x509_stack_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *serial = NULL;
        const char *reason = "malformed CSR";
        int64_t ttl;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__mint_x509_svidrequest__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_mint_x509(s, req, err, n);
        if (r < 0)
                return r;
        r = warden_csr_parse(req->csr.data, req->csr.len, &csr, &reason);
        if (r >= 0)
                r = warden_csr_public_key(csr, &pub);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return admin_fail(-EINVAL, err, n, "invalid CSR: %s", strna(reason));
        ttl = server_x509_ttl(s, req->ttl);
        r = server_sign_x509_svid(s, METRICS_KIND_X509_SVID, pub, req->spiffe_id,
                                  (const char *const *) req->dns_names, req->n_dns_names, ttl,
                                  time(NULL), &chain);
        if (r == -EKEYREJECTED || r == -EOPNOTSUPP)
                return admin_fail(-EINVAL, err, n, "unsupported or weak key in the CSR");
        if (r < 0)
                return admin_fail(r, err, n, "failed to sign the X509-SVID");
        (void) warden_x509_serial_hex(sk_X509_value(chain, 0), &serial);
        log_info("admin: minted X509-SVID spiffe_id=%s serial=%s ttl=%lld uid=%u", req->spiffe_id,
                 strna(serial), (long long) ttl, (unsigned) who->uid);
        return reply_x509(c, s->ca, chain);
}

static int check_audiences(char **aud, size_t count, char *err, size_t n) {
        if (count == 0)
                return admin_fail(-EINVAL, err, n, "at least one audience is required");
        if (count > WARDEN_JWT_AUDIENCES_MAX)
                return admin_fail(-EINVAL, err, n, "too many audiences (at most %d)",
                                  WARDEN_JWT_AUDIENCES_MAX);
        for (size_t i = 0; i < count; i++) {
                const char *why = NULL;

                if (warden_jwt_audience_check(aud[i], strlen(aud[i]), &why) < 0)
                        return admin_fail(-EINVAL, err, n,
                                          "an audience must be 1..%d bytes of UTF-8 (%s)",
                                          WARDEN_JWT_AUDIENCE_MAX, why);
        }
        return 0;
}

int admin_mint_jwt_svid(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__MintJWTSVIDRequest *req = NULL;
        Warden__Admin__V1__MintJWTSVIDResponse resp = WARDEN__ADMIN__V1__MINT_JWTSVIDRESPONSE__INIT;
        _cleanup_erase_ char *token = NULL;
        int64_t ttl, expires_at = 0;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__mint_jwtsvidrequest__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_mint_id(s, req->spiffe_id, err, n);
        if (r >= 0)
                r = check_audiences(req->audience, req->n_audience, err, n);
        if (r >= 0 && req->ttl < 0)
                r = admin_fail(-EINVAL, err, n, "invalid TTL: negative");
        if (r < 0)
                return r;
        ttl = server_jwt_ttl(s, req->ttl);
        r = server_mint_jwt_svid(s, req->spiffe_id, (const char *const *) req->audience,
                                 req->n_audience, ttl, time(NULL), &token, &expires_at);
        if (r < 0)
                return admin_fail(r, err, n, "failed to mint the JWT-SVID");
        log_info("admin: minted JWT-SVID spiffe_id=%s ttl=%lld uid=%u", req->spiffe_id,
                 (long long) ttl, (unsigned) who->uid);
        resp.token = token;
        resp.expires_at = expires_at;
        return rpc_message_reply(c, &resp.base, RPC_MESSAGE_ERASE);
}
