/* SPDX-License-Identifier: Apache-2.0 */
/* In-process node API fixture (see node_test.h). */
#define _GNU_SOURCE
#include "node_test.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "node_api.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "rpc_status.h"
#include "testlib.h"
#include "warden/node/v1/node.pb-c.h"

#define SERVER_ID "spiffe://" NT_TD "/warden/server"

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void make_site_ca(NodeFx *fx) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *s = sk_X509_new_null();
        _cleanup_free_ char *path = NULL;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &fx->site_key));
        assert_ok(warden_ca_create_self_signed(fx->site_key, "site.example", 3600, 0,
                                               &fx->site_cert));
        assert_true(X509_up_ref(fx->site_cert));
        assert_true(sk_X509_push(s, fx->site_cert));
        assert_true(asprintf(&path, "%s/site-ca.pem", fx->dir) > 0);
        assert_ok(warden_x509_write_pem_file(path, s, 0644));
}

/* A Server on fx->dir (its CA and datastore are kept there), listening on port (0: any). */
static void start_server(NodeFx *fx, int port) {
        _cleanup_free_ char *ds_path = NULL, *addr = NULL;
        RpcTlsServerConfig tls;
        Server *s;

        s = fx->s = calloc(1, sizeof(Server));
        assert_non_null(s);
        /* Metrics on, as in warden-server (server_free frees the registry). */
        assert_ok(metrics_registry_new(&s->registry));
        assert_ok(metrics_names_register_server(s->registry, &s->metrics));
        s->cfg.trust_domain = strdup(NT_TD);
        s->cfg.data_dir = strdup(fx->dir);
        s->cfg.bind_address = strdup("127.0.0.1");
        s->cfg.default_x509_ttl = 3600;
        s->cfg.default_jwt_ttl = 300;
        s->cfg.ca_ttl = 86400;
        s->cfg.signing_threads = fx->signing_threads;
        if (fx->site_cert)
                assert_true(asprintf(&s->cfg.x509pop_ca, "%s/site-ca.pem", fx->dir) > 0);
        assert_true(asprintf(&ds_path, "%s/ds.sqlite3", fx->dir) > 0);
        assert_ok(ds_open_sqlite(ds_path, &s->ds));
        ds_set_metrics(s->ds, s->metrics.datastore_seconds);
        assert_ok(server_changes_start(s));
        assert_ok(ca_new(&(CaConfig){.trust_domain = NT_TD,
                                     .data_dir = fx->dir,
                                     .key_type = WARDEN_KEY_EC_P256,
                                     .ca_ttl = 86400},
                         time(NULL), &s->ca));
        assert_ok(rpc_server_new(&s->node_rpc));
        assert_ok(node_api_new(s, &s->node));
        assert_ok(node_api_register(s->node, s->node_rpc));
        assert_ok(server_tls_config(s, &tls));
        free(fx->roots_pem);
        fx->roots_pem = strdup(tls.roots_pem);
        assert_true(asprintf(&addr, "127.0.0.1:%d", port) > 0);
        assert_ok(rpc_server_listen_tls(s->node_rpc, addr, &tls, &fx->port));
        assert_ok(rpc_server_start(s->node_rpc));
}

void node_fx_init(NodeFx *fx, bool x509pop) {
        node_fx_init_signing(fx, x509pop, 0);
}

void node_fx_init_signing(NodeFx *fx, bool x509pop, unsigned signing_threads) {
        *fx = (NodeFx){.signing_threads = signing_threads};
        fx->dir = test_tmpdir();
        if (x509pop)
                make_site_ca(fx);
        start_server(fx, 0);
}

void node_fx_restart(NodeFx *fx) {
        fx->s = server_free(fx->s);
        start_server(fx, fx->port);
}

void node_fx_done(NodeFx *fx) {
        server_free(fx->s);
        EVP_PKEY_free(fx->site_key);
        X509_free(fx->site_cert);
        free(fx->roots_pem);
        test_rmdir_free(fx->dir);
        *fx = (NodeFx){};
}

void node_fx_pump(NodeFx *fx, bool (*done)(void *), void *userdata, int ms) {
        uint64_t end = now_ms() + (uint64_t) ms;
        struct pollfd p = {.fd = rpc_server_event_fd(fx->s->node_rpc), .events = POLLIN};

        for (;;) {
                assert_true(rpc_server_dispatch(fx->s->node_rpc) >= 0);
                if (done && done(userdata))
                        return;
                if (now_ms() >= end)
                        return;
                (void) poll(&p, 1, 5);
        }
}

static int open_channel(NodeFx *fx, const NodeId *id, RpcChannel **ret) {
        _cleanup_free_ char *target = NULL;

        assert_true(asprintf(&target, "127.0.0.1:%d", fx->port) > 0);
        return rpc_channel_new_tls(target,
                                   &(RpcTlsClientConfig){fx->roots_pem, id ? id->cert_pem : NULL,
                                                         id ? id->key_pem : NULL, SERVER_ID},
                                   ret);
}

typedef struct CallJob {
        NodeFx *fx;
        const NodeId *id;
        const char *method;
        uint8_t *req;
        size_t len;
        unsigned repeat;
        int timeout_ms;
        int status;
        void *resp;
        size_t resp_len;
        char *msg;
        atomic_bool done;
} CallJob;

static void *call_thread(void *p) {
        CallJob *j = p;
        RpcChannel *ch = NULL;

        assert_ok(open_channel(j->fx, j->id, &ch));
        for (unsigned i = 0; i < j->repeat; i++) {
                free(j->resp);
                free(j->msg);
                j->resp = NULL;
                j->msg = NULL;
                j->resp_len = 0;
                assert_ok(rpc_unary(ch, j->method, NULL, 0, j->req, j->len, j->timeout_ms ?: 20000,
                                    &j->resp, &j->resp_len, &j->status, &j->msg));
        }
        rpc_channel_free(ch);
        atomic_store(&j->done, true);
        return NULL;
}

static bool call_done(void *p) {
        return atomic_load(&((CallJob *) p)->done);
}

int node_fx_call(NodeFx *fx,
                 const NodeId *id,
                 const char *method,
                 const void *req,
                 unsigned repeat,
                 const ProtobufCMessageDescriptor *desc,
                 void **ret,
                 char **ret_message) {
        _cleanup_free_ char *path = NULL;
        CallJob j = {.fx = fx, .id = id, .repeat = repeat ? repeat : 1};
        pthread_t t;

        assert_true(asprintf(&path, NT_NODE "%s", method) > 0);
        j.method = path;
        assert_ok(pb_pack(req, &j.req, &j.len));
        assert_int_equal(pthread_create(&t, NULL, call_thread, &j), 0);
        node_fx_pump(fx, call_done, &j, 120000);
        assert_true(call_done(&j));
        assert_int_equal(pthread_join(t, NULL), 0);
        if (j.status == GRPC_STATUS_OK && ret) {
                *ret = protobuf_c_message_unpack(desc, NULL, j.resp_len, j.resp);
                assert_non_null(*ret);
        }
        if (ret_message)
                *ret_message = TAKE_PTR(j.msg);
        free(j.msg);
        free(j.resp);
        free(j.req);
        return j.status;
}

struct NodeFxCall {
        CallJob job;
        char *path;
        pthread_t thread;
};

NodeFxCall *node_fx_call_start(
        NodeFx *fx, const NodeId *id, const char *method, const void *req, int timeout_ms) {
        NodeFxCall *c = calloc(1, sizeof(NodeFxCall));

        assert_non_null(c);
        assert_true(asprintf(&c->path, NT_NODE "%s", method) > 0);
        c->job = (CallJob){
                .fx = fx, .id = id, .method = c->path, .repeat = 1, .timeout_ms = timeout_ms};
        assert_ok(pb_pack(req, &c->job.req, &c->job.len));
        assert_int_equal(pthread_create(&c->thread, NULL, call_thread, &c->job), 0);
        return c;
}

bool node_fx_call_done(NodeFxCall *c) {
        return call_done(&c->job);
}

int node_fx_call_finish(NodeFxCall *c, const ProtobufCMessageDescriptor *desc, void **ret) {
        int status;

        node_fx_pump(c->job.fx, call_done, &c->job, 120000);
        assert_true(call_done(&c->job));
        assert_int_equal(pthread_join(c->thread, NULL), 0);
        status = c->job.status;
        if (status == GRPC_STATUS_OK && ret) {
                *ret = protobuf_c_message_unpack(desc, NULL, c->job.resp_len, c->job.resp);
                assert_non_null(*ret);
        }
        free(c->job.msg);
        free(c->job.resp);
        free(c->job.req);
        free(c->path);
        free(c);
        return status;
}

void node_fx_csr(EVP_PKEY **ret_key, ProtobufCBinaryData *ret_csr) {
        EVP_PKEY *key = NULL;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(warden_csr_create(key, NULL, &ret_csr->data, &ret_csr->len));
        if (ret_key)
                *ret_key = key;
        else
                EVP_PKEY_free(key);
}

double node_fx_metric(NodeFx *fx, Metric *m, const char *const *label_values) {
        MetricSeries *series = NULL;

        assert_non_null(m);
        assert_ok(metrics_series_get(m, label_values, &series));
        return metrics_series_value(series);
}

void node_fx_attest_join(NodeFx *fx, const char *token, NodeId *ret) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        Warden__Node__V1__AttestAgentResponse *resp = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = sk_X509_new_null();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        r = ds_create_join_token(fx->s->ds, token, time(NULL) + 600, NULL);
        assert_true(r >= 0 || r == -EEXIST);
        node_fx_csr(&key, &req.csr);
        req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN;
        req.join_token = (char *) token;
        assert_int_equal(node_fx_call(fx, NULL, "AttestAgent", &req, 1,
                                      &warden__node__v1__attest_agent_response__descriptor,
                                      (void **) &resp, NULL),
                         GRPC_STATUS_OK);
        free(req.csr.data);
        for (size_t i = 0; i < resp->n_svid_chain; i++) {
                X509 *x = NULL;

                assert_ok(warden_x509_from_der(resp->svid_chain[i].data, resp->svid_chain[i].len,
                                               &x));
                assert_true(sk_X509_push(chain, x));
        }
        assert_non_null(resp->bundle);
        ret->spiffe_id = strdup(resp->spiffe_id);
        assert_ok(warden_x509_chain_to_pem(chain, &ret->cert_pem));
        assert_ok(warden_key_to_pem(key, &ret->key_pem));
        pb_free(resp);
}

void node_id_done(NodeId *id) {
        free(id->spiffe_id);
        free(id->cert_pem);
        erase_and_free(id->key_pem);
        *id = (NodeId){};
}

void node_fx_site_leaf(NodeFx *fx, const char *dns, X509 **ret_cert, EVP_PKEY **ret_key) {
        const char *names[] = {dns};

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, ret_key));
        assert_ok(warden_svid_sign(&(WardenSvidParams){.ca_cert = fx->site_cert,
                                                       .ca_key = fx->site_key,
                                                       .public_key = *ret_key,
                                                       .spiffe_id = "spiffe://site.example/node",
                                                       .dns_names = names,
                                                       .n_dns_names = 1,
                                                       .ttl_seconds = 3600},
                                   ret_cert));
}

/* ---- Sync client ---- */

static void held_apply(NodeSyncClient *c, const Warden__Node__V1__SyncResponse *m) {
        for (size_t i = 0; i < m->n_entries; i++) {
                bool have = false;

                for (size_t k = 0; k < c->n_held && !have; k++)
                        have = streq(c->held[k], m->entries[i]->id);
                if (have)
                        continue;
                c->held = reallocarray(c->held, c->n_held + 1, sizeof(char *));
                assert_non_null(c->held);
                c->held[c->n_held++] = strdup(m->entries[i]->id);
        }
        for (size_t i = 0; i < m->n_deleted_entry_ids; i++)
                for (size_t k = 0; k < c->n_held; k++)
                        if (streq(c->held[k], m->deleted_entry_ids[i])) {
                                free(c->held[k]);
                                c->held[k] = c->held[--c->n_held];
                                break;
                        }
}

static void *sync_thread(void *p) {
        NodeSyncClient *c = p;
        Warden__Node__V1__SyncRequest req = WARDEN__NODE__V1__SYNC_REQUEST__INIT;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        assert_ok(open_channel(c->fx, c->id, &c->ch));
        assert_ok(pb_pack(&req, &buf, &len));
        assert_ok(rpc_stream_open(c->ch, NT_NODE "Sync", NULL, 0, buf, len, &c->st));
        atomic_store(&c->opened, true);
        for (;;) {
                _cleanup_free_ void *msg = NULL;
                Warden__Node__V1__SyncResponse *m;
                size_t n = 0;
                int r = rpc_stream_next(c->st, 100, &msg, &n);

                if (r == -ETIMEDOUT)
                        continue;
                if (r <= 0) {
                        (void) rpc_stream_status(c->st, &c->status, NULL);
                        break;
                }
                m = warden__node__v1__sync_response__unpack(NULL, n, msg);
                assert_non_null(m);
                /* As an agent applies it (docs/sync.md): a snapshot first (with the
                 * bundle), then deltas based on the message before. */
                if (atomic_load(&c->n_msgs) == 0) {
                        assert_true(m->full_snapshot);
                        assert_non_null(m->bundle);
                } else {
                        assert_false(m->full_snapshot);
                        assert_true(m->base_sequence == c->applied);
                        atomic_fetch_add(&c->n_deltas, 1);
                }
                c->applied = m->sequence;
                held_apply(c, m);
                atomic_store(&c->last_entries, (int) c->n_held);
                atomic_fetch_add(&c->n_msgs, 1);
                pb_free(m);
        }
        atomic_store(&c->ended, true);
        return NULL;
}

void node_sync_start(NodeSyncClient *c, NodeFx *fx, NodeId *id) {
        *c = (NodeSyncClient){.fx = fx, .id = id, .status = -1};
        assert_int_equal(pthread_create(&c->thread, NULL, sync_thread, c), 0);
}

typedef struct MsgWait {
        NodeSyncClient *c;
        int n;
} MsgWait;

static bool got_msgs(void *p) {
        MsgWait *w = p;

        return atomic_load(&w->c->n_msgs) >= w->n;
}

bool node_sync_wait_msgs(NodeSyncClient *c, int n, int ms) {
        MsgWait w = {c, n};

        node_fx_pump(c->fx, got_msgs, &w, ms);
        return got_msgs(&w);
}

static bool ended(void *p) {
        return atomic_load(&((NodeSyncClient *) p)->ended);
}

bool node_sync_wait_end(NodeSyncClient *c, int ms) {
        node_fx_pump(c->fx, ended, c, ms);
        return ended(c);
}

static bool opened(void *p) {
        return atomic_load(&((NodeSyncClient *) p)->opened);
}

void node_sync_stop(NodeSyncClient *c) {
        node_fx_pump(c->fx, opened, c, 10000);
        assert_true(opened(c));
        rpc_stream_cancel(c->st);
        assert_true(node_sync_wait_end(c, 10000));
        assert_int_equal(pthread_join(c->thread, NULL), 0);
        rpc_stream_free(c->st);
        rpc_channel_free(c->ch);
        for (size_t i = 0; i < c->n_held; i++)
                free(c->held[i]);
        free(c->held);
}
