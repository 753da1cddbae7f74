/* SPDX-License-Identifier: Apache-2.0 */
/* What the agent does with the node API answers of its server after protobuf-c has
 * decoded them. The input is a list of records, each one type byte, a 16-bit little-endian
 * length and that many bytes:
 *   SYNC    a SyncResponse applied to one Manager (manager_apply_sync(): entries, our
 *           bundle, federated bundles, deletions, full snapshots);
 *   SIGN    a BatchNewX509SVIDResponse answering a signing round: matched to the requests
 *           by server_sign_results_from_pb(), checked by the manager (item_take_chain,
 *           apply_item);
 *   SIGNOK  a signing round that a CA made here answers correctly (entries get SVIDs);
 *   JWT     a NewJWTSVIDResponse answering manager_fetch_jwt_svid() (mint_job_run's
 *           checks, the JWT cache);
 *   CLOCK   moves the manager's clock forward and runs manager_tick() (expiry);
 *   ATTEST, RENEW, POP: an AttestAgentResponse, RenewAgentResponse or
 *           X509PopChallengeResponse through the helpers the agent runs on them
 *           (server_chain_from_pb, the leaf checks of node_identity.c, pb_to_bundle).
 * The manager is never started: its worker queue is run here, on the fuzzer's thread.
 * Invariants (after every record): entries sorted and unique, each one usable (valid ID
 * of our trust domain, selectors, bounded strings); our bundle is ours; federated
 * bundles unique and never ours; the snapshot lists every entry, and every SVID in it
 * carries its entry's ID and the matching key; a JWT-SVID handed out is for the entry. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "fixture_ca.h"
#include "log.h"
#include "manager_internal.h"
#include "node_identity.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "server_client.h"
#include "x509pop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SIGN_ENTRIES_MAX 16 /* signing rounds only for this many entries */
#define FUZZ_CHECKED_MAX 64      /* SVIDs remembered as checked */

enum {
        REC_SYNC,
        REC_SIGN,
        REC_SIGNOK,
        REC_JWT,
        REC_CLOCK,
        REC_ATTEST,
        REC_RENEW,
        REC_POP,
        _REC_MAX,
};

/* An SVID found good for an ID (parsing keys and chains is most of the time spent). */
typedef struct CheckedSvid {
        uint8_t *chain;
        size_t chain_len;
        uint8_t *key;
        size_t key_len;
        char *spiffe_id;
} CheckedSvid;

typedef struct Fuzz {
        Manager *m;
        int64_t clock;
        const uint8_t *answer; /* the SIGN or JWT record being answered */
        size_t answer_len;
        CheckedSvid checked[FUZZ_CHECKED_MAX];
        size_t n_checked;
} Fuzz;

static int64_t fuzz_clock(void *ud) {
        return ((Fuzz *) ud)->clock;
}

/* ---- the backend: answers from the input, or a correct signer ---- */

static void check_results(const ManagerSignResult *res, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if ((res[i].r >= 0) != (res[i].chain_der != NULL))
                        abort();
                /* Empty certificates join to 0 bytes: the manager's parse refuses them. */
                if (res[i].r >= 0 && res[i].chain_len > WARDEN_X509_CHAIN_MAX_BYTES)
                        abort();
        }
}

/* SIGNOK: the server's job, done as ca_sign_x509_svid() does it, for the entry's ID. */
static int sign_ok(Fuzz *f, const ManagerSignRequest *req, ManagerSignResult *res) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        const ManagedEntry *e = manager_find_entry(f->m, req->entry_id);
        const FuzzCa *ca = fuzz_ca();
        int r;

        if (!e)
                abort(); /* the manager asked for an entry it does not have */
        r = warden_csr_parse(req->csr, req->csr_len, &csr, NULL);
        if (r < 0 || warden_csr_public_key(csr, &pub) < 0)
                abort(); /* our own CSR */
        WardenSvidParams p = {
                .ca_cert = ca->cert,
                .ca_key = ca->key,
                .public_key = pub,
                .spiffe_id = managed_entry_spiffe_id(e),
                .dns_names = (const char *const *) e->dns_names,
                .n_dns_names = e->n_dns_names,
                .ttl_seconds = e->x509_ttl > 0 && e->x509_ttl < 3600 ? e->x509_ttl : 3600,
                .now = (time_t) f->clock,
        };
        r = warden_svid_sign(&p, &cert);
        if (r < 0)
                return r; /* e.g. a DNS name the CA refuses: the server answers an error */
        return warden_x509_to_der(cert, &res->chain_der, &res->chain_len);
}

static int fuzz_batch_sign(void *ud,
                           const ManagerSignRequest *reqs,
                           size_t n,
                           ManagerSignResult *res) {
        Warden__Node__V1__BatchNewX509SVIDResponse *resp;
        Fuzz *f = ud;

        if (n == 0 || n > MANAGER_BATCH_MAX)
                abort();
        if (!f->answer) {
                for (size_t i = 0; i < n; i++)
                        res[i].r = sign_ok(f, &reqs[i], &res[i]);
                return 0;
        }
        resp = warden__node__v1__batch_new_x509_svidresponse__unpack(NULL, f->answer_len,
                                                                     f->answer);
        if (!resp)
                return -EBADMSG; /* what call_unary() returns */
        server_sign_results_from_pb(resp, reqs, n, res);
        pb_free(resp);
        check_results(res, n);
        return 0;
}

static int fuzz_mint_jwt(void *ud,
                         const char *entry_id,
                         const char *const *audiences,
                         size_t n_audiences,
                         char **ret_token,
                         int64_t *ret_expires_at,
                         int64_t *ret_issued_at) {
        Warden__Node__V1__NewJWTSVIDResponse *resp;
        Fuzz *f = ud;
        int r = 0;

        resp = warden__node__v1__new_jwtsvidresponse__unpack(NULL, f->answer_len, f->answer);
        if (!resp)
                return -EBADMSG;
        /* server_new_jwt()'s checks */
        if (!*resp->token || strlen(resp->token) > SERVER_JWT_TOKEN_MAX || resp->expires_at <= 0)
                r = -EBADMSG;
        if (r >= 0) {
                *ret_token = TAKE_PTR(resp->token);
                *ret_expires_at = resp->expires_at;
                *ret_issued_at = resp->issued_at;
        }
        pb_free(resp);
        return r;
}

/* ---- invariants ---- */

static bool svid_was_checked(const Fuzz *f, const ManagedEntry *e) {
        const SvidData *d = e->svid;

        for (size_t i = 0; i < f->n_checked; i++) {
                const CheckedSvid *c = &f->checked[i];
                if (c->chain_len == d->chain_len && c->key_len == d->key_len &&
                    memcmp(c->chain, d->bytes, c->chain_len) == 0 &&
                    memcmp(c->key, d->bytes + d->chain_len, c->key_len) == 0 &&
                    strcmp(c->spiffe_id, managed_entry_spiffe_id(e)) == 0)
                        return true;
        }
        return false;
}

static void svid_remember(Fuzz *f, const ManagedEntry *e) {
        CheckedSvid *c = &f->checked[f->n_checked];
        const SvidData *d = e->svid;

        if (f->n_checked >= FUZZ_CHECKED_MAX)
                return;
        c->chain = malloc(d->chain_len);
        c->key = malloc(d->key_len);
        c->spiffe_id = strdup(managed_entry_spiffe_id(e));
        if (!c->chain || !c->key || !c->spiffe_id)
                abort();
        memcpy(c->chain, d->bytes, d->chain_len);
        memcpy(c->key, d->bytes + d->chain_len, d->key_len);
        c->chain_len = d->chain_len;
        c->key_len = d->key_len;
        f->n_checked++;
}

/* An SVID the manager keeps carries its entry's ID and the key kept with it. */
static void check_svid(Fuzz *f, const ManagedEntry *e) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *id = NULL;
        const SvidData *d = e->svid;

        if (d->key_len == 0 || d->chain_len == 0 || d->not_after <= d->not_before)
                abort();
        if (svid_was_checked(f, e))
                return;
        if (warden_x509_chain_from_der(d->bytes, d->chain_len, &chain) < 0 ||
            warden_x509_spiffe_id(sk_X509_value(chain, 0), &id) < 0 ||
            strcmp(id, managed_entry_spiffe_id(e)) != 0)
                abort();
        if (warden_key_from_pkcs8_der(d->bytes + d->chain_len, d->key_len, &key) < 0 ||
            !warden_key_public_equal(X509_get0_pubkey(sk_X509_value(chain, 0)), key))
                abort();
        svid_remember(f, e);
}

static void check_entry(Fuzz *f, const ManagedEntry *e) {
        const EntryInfo *i = e->info;

        if (!i->entry_id || !*i->entry_id || strlen(i->entry_id) > MANAGER_ENTRY_ID_MAX)
                abort();
        if (warden_spiffeid_validate_workload(i->spiffe_id, NULL) < 0 ||
            !warden_spiffeid_member_of(i->spiffe_id, FUZZ_TD))
                abort();
        if (i->selectors.n == 0 || (i->hint && (!*i->hint || strlen(i->hint) > MANAGER_HINT_MAX)))
                abort();
        if (e->n_dns_names > WARDEN_SVID_DNS_NAMES_MAX ||
            i->n_federates_with > MANAGER_FEDERATES_WITH_MAX)
                abort();
        if (e->pub && (e->pub->info != e->info || (e->pub->svid && e->pub->svid != e->svid)))
                abort(); /* what is published is what the manager holds */
        if (e->svid)
                check_svid(f, e);
}

static void check_bundles(const Manager *m) {
        if (m->bundle && strcmp(warden_bundle_trust_domain(m->bundle), FUZZ_TD) != 0)
                abort();
        if (m->n_federated > MANAGER_FEDERATED_MAX)
                abort();
        for (size_t i = 0; i < m->n_federated; i++) {
                const char *td = warden_bundle_trust_domain(m->federated[i]);
                if (strcmp(td, FUZZ_TD) == 0)
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (strcmp(td, warden_bundle_trust_domain(m->federated[j])) == 0)
                                abort();
        }
}

static void check_snapshot(Manager *m) {
        AgentSnapshot *s = manager_snapshot(m);

        if (!s) {
                if (m->synced)
                        abort();
                return;
        }
        if (s->n_svids != m->n_entries || s->bundle != m->bundle)
                abort();
        for (size_t i = 0; i < s->n_svids; i++) {
                const CachedSvid *c = s->svids[i];
                if (strcmp(c->entry_id, managed_entry_id(m->entries[i])) != 0 ||
                    strcmp(c->spiffe_id, managed_entry_spiffe_id(m->entries[i])) != 0)
                        abort();
                if (c->chain_der &&
                    (!m->entries[i]->svid || c->chain_len != m->entries[i]->svid->chain_len))
                        abort();
        }
        agent_snapshot_unref(s);
}

static void check_manager(Fuzz *f) {
        Manager *m = f->m;

        if (m->n_entries > m->max_entries)
                abort();
        for (size_t i = 0; i < m->n_entries; i++) {
                check_entry(f, m->entries[i]);
                if (i > 0 && strcmp(managed_entry_id(m->entries[i - 1]),
                                    managed_entry_id(m->entries[i])) >= 0)
                        abort();
        }
        check_bundles(m);
        check_snapshot(m);
}

/* ---- records ---- */

static void run_sync(Fuzz *f, const uint8_t *p, size_t len) {
        Warden__Node__V1__SyncResponse *resp;
        int r;

        resp = warden__node__v1__sync_response__unpack(NULL, len, p);
        if (!resp)
                return; /* server_sync_next(): -EBADMSG, the stream is dropped */
        r = manager_apply_sync(f->m, resp);
        if (r < 0 && r != -EINVAL)
                abort();
        pb_free(resp);
}

/* Runs what the manager queued for its worker, then the results on "the main thread". */
static void run_worker(Fuzz *f) {
        (void) taskq_dispatch(f->m->work);
        (void) taskq_dispatch(f->m->results);
        for (size_t i = 0; i < f->m->n_entries; i++)
                if (f->m->entries[i]->in_flight)
                        abort();
}

/* One signing round, as the batch timer runs it. Signing rounds (here and in run_clock)
 * are skipped for many entries (slow), so nothing stays queued between records. */
static void run_sign(Fuzz *f, const uint8_t *answer, size_t len) {
        if (f->m->n_entries > FUZZ_SIGN_ENTRIES_MAX)
                return;
        f->answer = answer;
        f->answer_len = len;
        (void) manager_sign_due(f->m);
        run_worker(f);
        f->answer = NULL;
}

typedef struct JwtAnswer {
        bool done;
        int r;
        char *token;
} JwtAnswer;

static void on_jwt(int r, const char *token, void *userdata) {
        JwtAnswer *a = userdata;

        if (a->done || (r >= 0) != (token != NULL))
                abort();
        a->done = true;
        a->r = r;
        a->token = token ? strdup(token) : NULL;
}

static void run_jwt(Fuzz *f, const uint8_t *p, size_t len) {
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *claims = NULL;
        const char *aud[] = {"fuzz"};
        AgentSnapshot *s = manager_snapshot(f->m);
        JwtAnswer a = {};
        int r;

        if (!s || s->n_svids == 0)
                goto out;
        f->answer = p;
        f->answer_len = len;
        r = manager_fetch_jwt_svid(f->m, 1000, s->svids[0], aud, 1, on_jwt, &a);
        (void) taskq_dispatch(f->m->work);
        f->answer = NULL;
        if (r < 0 ? a.done : !a.done)
                abort();
        /* A token handed out was checked for the entry's ID (mint_job_run). */
        if (a.r >= 0 && a.token &&
            (warden_jwtsvid_parse_unverified(a.token, &claims, NULL) < 0 ||
             strcmp(claims->spiffe_id, s->svids[0]->spiffe_id) != 0))
                abort();
        free(a.token);
out:
        agent_snapshot_unref(s);
}

/* The rotation timer: expired SVIDs dropped, due ones renewed (by the correct signer). */
static void run_clock(Fuzz *f, const uint8_t *p, size_t len) {
        f->clock += len >= 2 ? (int64_t) p[0] | (int64_t) p[1] << 8 : 60;
        if (f->m->n_entries > FUZZ_SIGN_ENTRIES_MAX)
                return;
        manager_tick(f->m);
        run_worker(f);
        for (size_t i = 0; i < f->m->n_entries; i++)
                if (f->m->entries[i]->svid && f->m->entries[i]->svid->not_after <= f->clock)
                        abort(); /* manager_tick() drops expired SVIDs */
}

/* attest_node.c: identity_from_response() and identity_check() on a chain and bundle. */
static void check_node_chain(const ProtobufCBinaryData *certs, size_t n) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *id = NULL;

        if (server_chain_from_pb(certs, n, &chain) < 0)
                return;
        if (sk_X509_num(chain) < 1 || sk_X509_num(chain) > WARDEN_X509_CHAIN_MAX_CERTS)
                abort();
        if (warden_x509_spiffe_id(sk_X509_value(chain, 0), &id) >= 0 &&
            warden_spiffeid_validate(id, NULL) < 0)
                abort();
        (void) warden_x509_not_before(sk_X509_value(chain, 0));
        (void) warden_x509_not_after(sk_X509_value(chain, 0));
}

static void run_attest(const uint8_t *p, size_t len) {
        Warden__Node__V1__AttestAgentResponse *resp;
        WardenBundle *b = NULL;

        resp = warden__node__v1__attest_agent_response__unpack(NULL, len, p);
        if (!resp)
                return;
        check_node_chain(resp->svid_chain, resp->n_svid_chain);
        if (resp->bundle && pb_to_bundle(resp->bundle, &b, NULL) >= 0) {
                if (warden_trust_domain_validate(warden_bundle_trust_domain(b), NULL) < 0)
                        abort();
                warden_bundle_unref(b);
        }
        pb_free(resp);
}

static void run_renew(const uint8_t *p, size_t len) {
        Warden__Node__V1__RenewAgentResponse *resp;

        resp = warden__node__v1__renew_agent_response__unpack(NULL, len, p);
        if (!resp)
                return;
        check_node_chain(resp->svid_chain, resp->n_svid_chain);
        pb_free(resp);
}

/* server_x509pop_challenge()'s check, then the payload the agent signs. */
static void run_pop(const uint8_t *p, size_t len) {
        static const uint8_t csr[] = {0x30, 0x00};
        Warden__Node__V1__X509PopChallengeResponse *resp;
        uint8_t *payload = NULL;
        size_t n = 0;

        resp = warden__node__v1__x509_pop_challenge_response__unpack(NULL, len, p);
        if (!resp)
                return;
        if (resp->nonce.len > 0 && resp->nonce.len <= 1024) {
                if (x509pop_payload(resp->nonce.data, resp->nonce.len, csr, sizeof(csr), &payload,
                                    &n) < 0)
                        abort();
                if (n != strlen(X509POP_CONTEXT) + resp->nonce.len + sizeof(csr) ||
                    memcmp(payload + strlen(X509POP_CONTEXT), resp->nonce.data, resp->nonce.len) !=
                            0)
                        abort();
                free(payload);
        }
        pb_free(resp);
}

static void run_record(Fuzz *f, unsigned type, const uint8_t *p, size_t len) {
        switch (type) {
        case REC_SYNC:
                return run_sync(f, p, len);
        case REC_SIGN:
                return run_sign(f, p, len);
        case REC_SIGNOK:
                return run_sign(f, NULL, 0);
        case REC_JWT:
                return run_jwt(f, p, len);
        case REC_CLOCK:
                return run_clock(f, p, len);
        case REC_ATTEST:
                return run_attest(p, len);
        case REC_RENEW:
                return run_renew(p, len);
        default:
                return run_pop(p, len);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ManagerBackend backend = {.batch_sign = fuzz_batch_sign, .mint_jwt = fuzz_mint_jwt};
        Fuzz f = {.clock = FUZZ_NOW};
        ManagerConfig cfg = {
                .trust_domain = FUZZ_TD,
                .key_type = WARDEN_KEY_EC_P256,
                .max_entries = 100, /* the cap is reached, too */
                .clock = fuzz_clock,
                .clock_userdata = &f,
        };
        sd_event *event = NULL;

        if (size > 256 * 1024)
                return 0;
        (void) fuzz_ca();
        backend.userdata = &f;
        if (sd_event_new(&event) < 0 || manager_new(&cfg, &backend, event, &f.m) < 0)
                abort();
        while (size >= 3) {
                unsigned type = data[0] % _REC_MAX;
                size_t len = (size_t) data[1] | (size_t) data[2] << 8;

                data += 3, size -= 3;
                if (len > size)
                        len = size;
                run_record(&f, type, data, len);
                check_manager(&f);
                data += len, size -= len;
        }
        manager_free(f.m);
        sd_event_unref(event);
        for (size_t i = 0; i < f.n_checked; i++) {
                free(f.checked[i].chain);
                free(f.checked[i].key);
                free(f.checked[i].spiffe_id);
        }
        return 0;
}
