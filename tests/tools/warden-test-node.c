/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal node client for the server's node API, for tests (the real agent comes
 * later). Every command talks TLS to -server and pins the server's identity
 * spiffe://<td>/warden/server; the trust domain is taken from -trustDomain or from
 * the first certificate of the trust bundle (our CA certificates carry spiffe://<td>).
 *
 *   attest-join    -server H:P -trustBundle roots.pem -token T -dir D
 *   attest-x509pop -server H:P -trustBundle roots.pem -cert c.pem -key k.pem -dir D [-tamper]
 *        both write D/node.key (0600), D/node.pem, D/bundle.pem; print the agent ID
 *   sync   -server H:P -dir D [-count N] [-timeout S]
 *        applies the messages as an agent does (snapshot, deltas, parts); after each
 *        change: one line per entry SPIFFE ID held, then "--- entries=<n held>
 *        sequence=<seq> bundle_sequence=<seq> kind=snapshot|delta upserts=<n>
 *        deleted=<n> more=0 base=<seq>" (parts of one change count as one)
 *   sign   -server H:P -dir D -entry ID -out DIR    writes DIR/svid.pem, DIR/key.pem
 *   sign-loop -server H:P -dir D -entry ID -batch B -count N
 *        N calls of B CSRs for entry ID on one connection (one CSR reused); prints
 *        "signed=<B*N>" (benchmarks: scripts/bench-signing.sh)
 *   jwt    -server H:P -dir D -entry ID -audience A [-audience B ...]   prints the token
 *   renew  -server H:P -dir D                        replaces D/node.key and D/node.pem
 *   sync-many -server H:P -trustBundle roots.pem -tokens FILE -dir D -count N
 *        N simulated agents, one Sync stream each (test_node_many.c)
 *   admin-create-loop -socketPath S -parentID P -spiffeIDPrefix ID -count N
 *        timed entry creates on the admin API (test_node_admin.c)
 *   admin-tokens -socketPath S -count N [-alias ID]   prints N join tokens
 * Calls after attestation use D/node.pem + D/node.key as client certificate and
 * D/bundle.pem as roots. A refused call prints "status: <NAME>: <message>" on stderr
 * and exits 1; sync exits 2 when -timeout passes before -count messages. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "options.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "rpc_client.h"
#include "rpc_status.h"
#include "test_node.h"
#include "warden/node/v1/node.pb-c.h"

#define NODE "/warden.node.v1.Node/"
#define CALL_TIMEOUT_MS 15000
#define FILE_MAX (1024 * 1024)

static void pbfreep(void *p) {
        pb_free(*(void **) p);
}

static void rpc_channel_freep(RpcChannel **c) {
        rpc_channel_free(*c);
}

static int fail(const char *what, int r) {
        fprintf(stderr, "Error: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return 1;
}

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        if (!f)
                return NULL;
        buf = calloc(1, FILE_MAX + 1);
        n = buf ? fread(buf, 1, FILE_MAX, f) : 0;
        fclose(f);
        if (buf && n == 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static char *path_in(const char *dir, const char *name) {
        char *p = NULL;

        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* The trust domain: -trustDomain, else the URI SAN of the bundle's first certificate. */
static int trust_domain(const Options *o, const char *roots_pem, char **ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = NULL;
        _cleanup_free_ char *id = NULL;
        const char *td = options_get_string(o, "trustDomain");
        int r;

        if (td)
                return (*ret = strdup(td)) ? 0 : -ENOMEM;
        r = warden_x509_chain_from_pem(roots_pem, strlen(roots_pem), &roots);
        if (r >= 0)
                r = warden_x509_spiffe_id(sk_X509_value(roots, 0), &id);
        if (r >= 0)
                r = warden_spiffeid_parse(id, ret, NULL, NULL);
        return r;
}

/* A channel to -server: roots from roots_file, client cert from D/node.* if mtls. */
static int open_channel(const Options *o, const char *roots_file, bool mtls, RpcChannel **ret) {
        _cleanup_free_ char *roots = NULL, *cert = NULL, *key = NULL, *td = NULL, *sid = NULL;
        _cleanup_free_ char *cert_path = NULL, *key_path = NULL;
        const char *dir = options_get_string(o, "dir");
        int r;

        roots = read_text(roots_file);
        if (!roots)
                return -errno ?: -EINVAL;
        if (mtls) {
                cert_path = path_in(dir, "node.pem");
                key_path = path_in(dir, "node.key");
                cert = cert_path ? read_text(cert_path) : NULL;
                key = key_path ? read_text(key_path) : NULL;
                if (!cert || !key)
                        return -ENOENT;
        }
        r = trust_domain(o, roots, &td);
        if (r < 0)
                return r;
        if (asprintf(&sid, "spiffe://%s/warden/server", td) < 0)
                return -ENOMEM;
        return rpc_channel_new_tls(options_get_string(o, "server"),
                                   &(RpcTlsClientConfig){roots, cert, key, sid}, ret);
}

/* One unary call; a non-OK status is printed and gives -EPROTO. */
static int call(RpcChannel *ch,
                const char *method,
                const void *req,
                const ProtobufCMessageDescriptor *desc,
                void **ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ void *resp = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t len, resp_len = 0;
        int status = 0, r;

        r = pb_pack(req, &buf, &len);
        if (r >= 0)
                r = rpc_unary(ch, method, NULL, 0, buf, len, CALL_TIMEOUT_MS, &resp, &resp_len,
                              &status, &msg);
        if (r < 0)
                return r;
        if (status != GRPC_STATUS_OK) {
                fprintf(stderr, "status: %s: %s\n", rpc_status_to_string(status), strna(msg));
                return -EPROTO;
        }
        *ret = protobuf_c_message_unpack(desc, NULL, resp_len, resp);
        return *ret ? 0 : -EBADMSG;
}

static int der_list_to_stack(ProtobufCBinaryData *v, size_t n, STACK_OF(X509) * *ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *s = sk_X509_new_null();
        int r;

        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                X509 *x = NULL;

                r = warden_x509_from_der(v[i].data, v[i].len, &x);
                if (r < 0)
                        return r;
                if (!sk_X509_push(s, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static int write_certs(const char *dir, const char *name, ProtobufCBinaryData *v, size_t n) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *s = NULL;
        _cleanup_free_ char *p = path_in(dir, name);
        int r;

        if (!p)
                return -ENOMEM;
        r = der_list_to_stack(v, n, &s);
        return r < 0 ? r : warden_x509_write_pem_file(p, s, 0644);
}

static int write_key(const char *dir, const char *name, EVP_PKEY *key) {
        _cleanup_free_ char *p = path_in(dir, name);

        return p ? warden_key_write_file(p, key) : -ENOMEM;
}

/* Writes what attestation returned into -dir. */
static int save_node(const Options *o, EVP_PKEY *key, Warden__Node__V1__AttestAgentResponse *r) {
        const char *dir = options_get_string(o, "dir");
        int k;

        if (!r->bundle || r->n_svid_chain == 0)
                return -EBADMSG;
        (void) mkdir(dir, 0700);
        k = write_key(dir, "node.key", key);
        if (k >= 0)
                k = write_certs(dir, "node.pem", r->svid_chain, r->n_svid_chain);
        if (k >= 0)
                k = write_certs(dir, "bundle.pem", r->bundle->x509_authorities,
                                r->bundle->n_x509_authorities);
        if (k >= 0)
                printf("%s\n", r->spiffe_id);
        return k;
}

static int new_key_csr(EVP_PKEY **ret_key, uint8_t **ret_csr, size_t *ret_len) {
        int r = warden_key_generate(WARDEN_KEY_EC_P256, ret_key);

        return r < 0 ? r : warden_csr_create(*ret_key, NULL, ret_csr, ret_len);
}

static int attest(const Options *o, Warden__Node__V1__AttestAgentRequest *req, EVP_PKEY *key) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_(pbfreep) Warden__Node__V1__AttestAgentResponse *resp = NULL;
        int r;

        r = open_channel(o, options_get_string(o, "trustBundle"), false, &ch);
        if (r < 0)
                return fail("connect", r);
        r = call(ch, NODE "AttestAgent", req, &warden__node__v1__attest_agent_response__descriptor,
                 (void **) &resp);
        if (r == -EPROTO)
                return 1;
        if (r >= 0)
                r = save_node(o, key, resp);
        return r < 0 ? fail("attest", r) : 0;
}

static int cmd_attest_join(const Options *o) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        int r;

        r = new_key_csr(&key, &csr, &req.csr.len);
        if (r < 0)
                return fail("key", r);
        req.csr.data = csr;
        req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN;
        req.join_token = (char *) strempty(options_get_string(o, "token"));
        return attest(o, &req, key);
}

/* x509pop: challenge for the chain, then the proof signed with the site key. */
static int cmd_attest_x509pop(const Options *o) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        Warden__Node__V1__X509PopChallengeRequest ch_req =
                WARDEN__NODE__V1__X509_POP_CHALLENGE_REQUEST__INIT;
        Warden__Node__V1__X509PopProof proof = WARDEN__NODE__V1__X509_POP_PROOF__INIT;
        _cleanup_(pbfreep) Warden__Node__V1__X509PopChallengeResponse *ch_resp = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *site_key = NULL, *key = NULL;
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_free_ uint8_t *csr = NULL, *data = NULL, *sig = NULL;
        ProtobufCBinaryData certs[WARDEN_X509_CHAIN_MAX_CERTS] = {};
        size_t n = 0, csr_len = 0, sig_len = 0, ctx = strlen("warden-x509pop-v1");
        int r;

        r = warden_x509_read_pem_file(options_get_string(o, "cert"), &chain);
        if (r >= 0)
                r = warden_key_read_file(options_get_string(o, "key"), &site_key);
        for (int i = 0; r >= 0 && i < sk_X509_num(chain) && n < ELEMENTSOF(certs); i++, n++)
                r = warden_x509_to_der(sk_X509_value(chain, i), &certs[i].data, &certs[i].len);
        if (r >= 0)
                r = open_channel(o, options_get_string(o, "trustBundle"), false, &ch);
        if (r < 0)
                goto out;
        ch_req.cert_chain = certs;
        ch_req.n_cert_chain = n;
        r = call(ch, NODE "X509PopChallenge", &ch_req,
                 &warden__node__v1__x509_pop_challenge_response__descriptor, (void **) &ch_resp);
        if (r >= 0)
                r = new_key_csr(&key, &csr, &csr_len);
        if (r >= 0 && !(data = malloc(ctx + ch_resp->nonce.len + csr_len)))
                r = -ENOMEM;
        if (r < 0)
                goto out;
        memcpy(data, "warden-x509pop-v1", ctx);
        memcpy(data + ctx, ch_resp->nonce.data, ch_resp->nonce.len);
        memcpy(data + ctx + ch_resp->nonce.len, csr, csr_len);
        r = warden_sign(site_key, data, ctx + ch_resp->nonce.len + csr_len, &sig, &sig_len);
        if (r < 0)
                goto out;
        if (options_get_bool(o, "tamper"))
                sig[sig_len / 2] ^= 0x01;
        proof.cert_chain = certs;
        proof.n_cert_chain = n;
        proof.nonce = ch_resp->nonce;
        proof.signature = (ProtobufCBinaryData){.data = sig, .len = sig_len};
        req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_X509POP;
        req.x509pop = &proof;
        req.csr = (ProtobufCBinaryData){.data = csr, .len = csr_len};
        r = attest(o, &req, key) == 0 ? 0 : -EPROTO;
out:
        for (size_t i = 0; i < n; i++)
                free(certs[i].data);
        if (r == -EPROTO)
                return 1;
        return r < 0 ? fail("x509pop", r) : 0;
}

/* What a sync client holds: entry id -> SPIFFE ID, as an agent applies the messages
 * (docs/sync.md). */
typedef struct SyncHeld {
        char **ids, **spiffe_ids;
        bool *seen;
        size_t n;
        bool in_snapshot;
        uint64_t applied;
} SyncHeld;

static void held_remove_at(SyncHeld *h, size_t i) {
        free(h->ids[i]);
        free(h->spiffe_ids[i]);
        h->n--;
        h->ids[i] = h->ids[h->n];
        h->spiffe_ids[i] = h->spiffe_ids[h->n];
        h->seen[i] = h->seen[h->n];
}

static int held_apply(SyncHeld *h, const Warden__Node__V1__SyncResponse *m) {
        if (!m->full_snapshot && m->base_sequence != h->applied) {
                fprintf(stderr, "gap: delta based on %llu, last applied %llu\n",
                        (unsigned long long) m->base_sequence, (unsigned long long) h->applied);
                return -EREMCHG;
        }
        h->applied = m->sequence;
        if (m->full_snapshot) {
                for (size_t i = 0; i < h->n; i++)
                        h->seen[i] = false;
                h->in_snapshot = true;
        }
        for (size_t i = 0; i < m->n_entries; i++) {
                size_t k = 0;

                while (k < h->n && strcmp(h->ids[k], m->entries[i]->id) != 0)
                        k++;
                if (k == h->n) {
                        char **a = reallocarray(h->ids, h->n + 1, sizeof(char *));
                        char **b = a ? reallocarray(h->spiffe_ids, h->n + 1, sizeof(char *)) : NULL;
                        bool *c = b ? reallocarray(h->seen, h->n + 1, sizeof(bool)) : NULL;

                        if (a)
                                h->ids = a;
                        if (b)
                                h->spiffe_ids = b;
                        if (!c)
                                return -ENOMEM;
                        h->seen = c;
                        h->ids[k] = strdup(m->entries[i]->id);
                        h->spiffe_ids[k] = NULL;
                        h->n++;
                }
                free(h->spiffe_ids[k]);
                h->spiffe_ids[k] = strdup(m->entries[i]->spiffe_id);
                h->seen[k] = true;
        }
        for (size_t i = 0; i < m->n_deleted_entry_ids; i++)
                for (size_t k = 0; k < h->n; k++)
                        if (streq(h->ids[k], m->deleted_entry_ids[i])) {
                                held_remove_at(h, k);
                                break;
                        }
        if (h->in_snapshot && !m->more) {
                for (size_t k = h->n; k > 0; k--)
                        if (!h->seen[k - 1])
                                held_remove_at(h, k - 1);
                h->in_snapshot = false;
        }
        return 0;
}

static void held_done(SyncHeld *h) {
        while (h->n > 0)
                held_remove_at(h, h->n - 1);
        free(h->ids);
        free(h->spiffe_ids);
        free(h->seen);
}

/* The state after m (SPIFFE IDs, one per line), then a line describing m itself. */
static void print_snapshot(const SyncHeld *h, const Warden__Node__V1__SyncResponse *m) {
        for (size_t i = 0; i < h->n; i++)
                printf("%s\n", h->spiffe_ids[i]);
        printf("--- entries=%zu sequence=%llu bundle_sequence=%llu kind=%s upserts=%zu "
               "deleted=%zu more=%d base=%llu\n",
               h->n, (unsigned long long) m->sequence,
               (unsigned long long) (m->bundle ? m->bundle->sequence_number : 0),
               m->full_snapshot ? "snapshot" : "delta", m->n_entries, m->n_deleted_entry_ids,
               (int) m->more, (unsigned long long) m->base_sequence);
        fflush(stdout);
}

static int stream_ended(RpcStream *st) {
        _cleanup_free_ char *msg = NULL;
        int status = 0;

        (void) rpc_stream_status(st, &status, &msg);
        fprintf(stderr, "status: %s: %s\n", rpc_status_to_string(status), strna(msg));
        return 1;
}

static int cmd_sync(const Options *o) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_free_ char *roots = path_in(options_get_string(o, "dir"), "bundle.pem");
        Warden__Node__V1__SyncRequest req = WARDEN__NODE__V1__SYNC_REQUEST__INIT;
        _cleanup_free_ uint8_t *buf = NULL;
        int64_t count = options_get_int(o, "count"), timeout = options_get_duration(o, "timeout");
        int64_t deadline = timeout > 0 ? (int64_t) time(NULL) + timeout : 0, got = 0;
        RpcStream *st = NULL;
        SyncHeld held = {};
        size_t len;
        int r, ret = 0;

        r = roots ? open_channel(o, roots, true, &ch) : -ENOMEM;
        if (r >= 0)
                r = pb_pack(&req, &buf, &len);
        if (r >= 0)
                r = rpc_stream_open(ch, NODE "Sync", NULL, 0, buf, len, &st);
        if (r < 0)
                return fail("sync", r);
        while (count <= 0 || got < count) {
                _cleanup_(pbfreep) Warden__Node__V1__SyncResponse *m = NULL;
                _cleanup_free_ void *msg = NULL;
                size_t n = 0;

                if (deadline > 0 && time(NULL) >= deadline) {
                        fprintf(stderr, "timeout after %lld message(s)\n", (long long) got);
                        ret = 2;
                        break;
                }
                r = rpc_stream_next(st, 200, &msg, &n);
                if (r == -ETIMEDOUT)
                        continue;
                if (r <= 0) {
                        ret = r == 0 ? stream_ended(st) : fail("sync", r);
                        break;
                }
                m = warden__node__v1__sync_response__unpack(NULL, n, msg);
                if (!m) {
                        ret = fail("sync", -EBADMSG);
                        break;
                }
                r = held_apply(&held, m);
                if (r < 0) {
                        ret = fail("sync", r);
                        break;
                }
                /* The parts of one change are one step for the caller. */
                if (m->more)
                        continue;
                print_snapshot(&held, m);
                got++;
        }
        rpc_stream_free(st);
        held_done(&held);
        return ret;
}

static int write_svid(const char *dir, EVP_PKEY *key, Warden__Node__V1__X509SVIDResult *res) {
        int r;

        (void) mkdir(dir, 0700);
        r = write_certs(dir, "svid.pem", res->svid_chain, res->n_svid_chain);
        if (r >= 0)
                r = write_key(dir, "key.pem", key);
        if (r >= 0)
                printf("expires_at=%lld\n", (long long) res->expires_at);
        return r;
}

/* An mTLS channel with the node SVID. */
static int node_channel(const Options *o, RpcChannel **ret) {
        _cleanup_free_ char *roots = path_in(options_get_string(o, "dir"), "bundle.pem");

        return roots ? open_channel(o, roots, true, ret) : -ENOMEM;
}

static int cmd_sign(const Options *o) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_(pbfreep) Warden__Node__V1__BatchNewX509SVIDResponse *resp = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        Warden__Node__V1__BatchNewX509SVIDRequest req =
                WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT;
        Warden__Node__V1__X509SVIDParams p = WARDEN__NODE__V1__X509_SVIDPARAMS__INIT, *pp = &p;
        Warden__Node__V1__X509SVIDResult *res;
        int r;

        r = new_key_csr(&key, &csr, &p.csr.len);
        if (r >= 0)
                r = node_channel(o, &ch);
        if (r < 0)
                return fail("sign", r);
        p.csr.data = csr;
        p.entry_id = (char *) strempty(options_get_string(o, "entry"));
        req.params = &pp;
        req.n_params = 1;
        r = call(ch, NODE "BatchNewX509SVID", &req,
                 &warden__node__v1__batch_new_x509_svidresponse__descriptor, (void **) &resp);
        if (r == -EPROTO)
                return 1;
        if (r >= 0 && resp->n_results != 1)
                r = -EBADMSG;
        if (r < 0)
                return fail("sign", r);
        res = resp->results[0];
        if (res->status != 0) {
                fprintf(stderr, "status: %s: %s\n", rpc_status_to_string(res->status),
                        res->message);
                return 1;
        }
        r = write_svid(options_get_string(o, "out"), key, res);
        return r < 0 ? fail("write", r) : 0;
}

static int cmd_sign_loop(const Options *o) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ Warden__Node__V1__X509SVIDParams **pp = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        Warden__Node__V1__BatchNewX509SVIDRequest req =
                WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT;
        Warden__Node__V1__X509SVIDParams p = WARDEN__NODE__V1__X509_SVIDPARAMS__INIT;
        int64_t batch = options_get_int(o, "batch"), count = options_get_int(o, "count");
        long long signed_n = 0;
        int r;

        if (batch <= 0 || batch > 500 || count <= 0)
                return fail("sign-loop: -batch 1..500 and -count > 0", -EINVAL);
        pp = calloc((size_t) batch, sizeof(*pp));
        r = pp ? new_key_csr(&key, &csr, &p.csr.len) : -ENOMEM;
        if (r >= 0)
                r = node_channel(o, &ch);
        if (r < 0)
                return fail("sign-loop", r);
        p.csr.data = csr;
        p.entry_id = (char *) strempty(options_get_string(o, "entry"));
        for (int64_t i = 0; i < batch; i++)
                pp[i] = &p;
        req.params = pp;
        req.n_params = (size_t) batch;
        for (int64_t i = 0; i < count; i++) {
                _cleanup_(pbfreep) Warden__Node__V1__BatchNewX509SVIDResponse *resp = NULL;

                r = call(ch, NODE "BatchNewX509SVID", &req,
                         &warden__node__v1__batch_new_x509_svidresponse__descriptor,
                         (void **) &resp);
                if (r == -EPROTO)
                        return 1;
                if (r >= 0 && resp->n_results != (size_t) batch)
                        r = -EBADMSG;
                if (r < 0)
                        return fail("sign-loop", r);
                for (size_t j = 0; j < resp->n_results; j++)
                        if (resp->results[j]->status == 0)
                                signed_n++;
        }
        printf("signed=%lld\n", signed_n);
        return signed_n == batch * count ? 0 : 1;
}

static int cmd_jwt(const Options *o) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_(pbfreep) Warden__Node__V1__NewJWTSVIDResponse *resp = NULL;
        Warden__Node__V1__NewJWTSVIDRequest req = WARDEN__NODE__V1__NEW_JWTSVIDREQUEST__INIT;
        int r;

        req.entry_id = (char *) strempty(options_get_string(o, "entry"));
        req.audience = (char **) options_get_strv(o, "audience", &req.n_audience);
        r = node_channel(o, &ch);
        if (r >= 0)
                r = call(ch, NODE "NewJWTSVID", &req,
                         &warden__node__v1__new_jwtsvidresponse__descriptor, (void **) &resp);
        if (r == -EPROTO)
                return 1;
        if (r < 0)
                return fail("jwt", r);
        printf("%s\n", resp->token);
        return 0;
}

static int cmd_renew(const Options *o) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        _cleanup_(pbfreep) Warden__Node__V1__RenewAgentResponse *resp = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        Warden__Node__V1__RenewAgentRequest req = WARDEN__NODE__V1__RENEW_AGENT_REQUEST__INIT;
        const char *dir = options_get_string(o, "dir");
        int r;

        r = new_key_csr(&key, &csr, &req.csr.len);
        if (r >= 0)
                r = node_channel(o, &ch);
        if (r < 0)
                return fail("renew", r);
        req.csr.data = csr;
        r = call(ch, NODE "RenewAgent", &req, &warden__node__v1__renew_agent_response__descriptor,
                 (void **) &resp);
        if (r == -EPROTO)
                return 1;
        if (r >= 0)
                r = write_key(dir, "node.key", key);
        if (r >= 0)
                r = write_certs(dir, "node.pem", resp->svid_chain, resp->n_svid_chain);
        if (r < 0)
                return fail("renew", r);
        printf("renewed\n");
        return 0;
}

static const Option options[] = {
        {"server", OPT_STRING, "127.0.0.1:8081", "Node API address host:port"},
        {"trustBundle", OPT_STRING, NULL, "PEM roots for attestation (bootstrap bundle)"},
        {"trustDomain", OPT_STRING, NULL, "Trust domain (default: from the bundle)"},
        {"dir", OPT_STRING, ".", "Directory of node.key, node.pem, bundle.pem"},
        {"token", OPT_STRING, NULL, "Join token"},
        {"cert", OPT_STRING, NULL, "x509pop: PEM certificate chain of the node"},
        {"key", OPT_STRING, NULL, "x509pop: its private key (mode 0600)"},
        {"tamper", OPT_BOOL, "false", "x509pop: corrupt the signature (tests)"},
        {"count", OPT_INT, "0",
         "sync: exit after this many messages (0 = never); sync-many: agents; admin-*: calls"},
        {"timeout", OPT_DURATION, "0", "sync: give up after this long (0 = never)"},
        {"entry", OPT_STRING, NULL, "Entry ID for sign/jwt"},
        {"out", OPT_STRING, ".", "sign: output directory"},
        {"batch", OPT_INT, "100", "sign-loop: CSRs per call"},
        {"audience", OPT_STRV, NULL, "jwt: audience (repeatable)"},
        {"tokens", OPT_STRING, NULL, "sync-many: file of join tokens, one a line"},
        {"concurrency", OPT_INT, "16", "sync-many: attestations at once"},
        {"holdUntil", OPT_STRING, NULL, "sync-many: open the streams once this file exists"},
        {"socketPath", OPT_STRING, NULL, "admin-create-loop: the server's admin socket"},
        {"parentID", OPT_STRING, NULL, "admin-create-loop: parent ID of the entries"},
        {"parentIDs", OPT_STRING, NULL,
         "admin-create-loop: file of \"<label> <parent ID>\" lines, used in turn"},
        {"spiffeIDPrefix", OPT_STRING, NULL, "admin-create-loop: entry IDs are <prefix>/<n>"},
        {"start", OPT_INT, "0", "admin-create-loop: first n"},
        {"intervalMs", OPT_INT, "0", "admin-create-loop: pause between creates"},
        {"budget", OPT_DURATION, "0", "admin-create-loop: no new create after this long"},
        {"alias", OPT_STRING, NULL, "admin-tokens: node alias ID the agents also get"},
        {"ttl", OPT_DURATION, "1h", "admin-tokens: how long the tokens can be used"},
};

static const struct {
        const char *name;
        int (*fn)(const Options *o);
} commands[] = {
        {"attest-join", cmd_attest_join},
        {"attest-x509pop", cmd_attest_x509pop},
        {"sync", cmd_sync},
        {"sign", cmd_sign},
        {"sign-loop", cmd_sign_loop},
        {"jwt", cmd_jwt},
        {"renew", cmd_renew},
        {"sync-many", cmd_sync_many},
        {"admin-create-loop", cmd_admin_create_loop},
        {"admin-tokens", cmd_admin_tokens},
};

int main(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        if (argc < 2) {
                fprintf(stderr,
                        "Usage: %s attest-join|attest-x509pop|sync|sign|sign-loop|jwt|"
                        "renew|sync-many|admin-create-loop|admin-tokens [flags]\n",
                        argv[0]);
                return 1;
        }
        r = options_parse(options, ELEMENTSOF(options), argc - 1, argv + 1, &o, &msg);
        if (r == -ECANCELED)
                return 0;
        if (r < 0) {
                fprintf(stderr, "Error: %s\n", msg ? msg : strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[1], commands[i].name))
                        return commands[i].fn(o);
        fprintf(stderr, "Error: unknown command %s\n", argv[1]);
        return 1;
}
