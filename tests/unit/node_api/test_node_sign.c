/* SPDX-License-Identifier: Apache-2.0 */
/* Signing on the signing threads (-signingThreads), in process over real TLS: many
 * concurrent batches each signed right (every SVID verifies against the CA and names
 * its own entry's SPIFFE ID, with the CSR's key), with threads and without; JWT-SVIDs
 * from the pool; a call whose deadline passes while it waits in the queue is not
 * signed; a shutdown with calls queued ends them UNAVAILABLE; a CA rotation (up to the
 * old CA's removal) while a call waits leaves it signed by the CA of its snapshot.
 * The pool itself: FIFO order, cancel on stop, refusals when full or stopped. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "node_api.h"
#include "node_api_internal.h"
#include "node_test.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "sign_pool.h"
#include "testlib.h"

#define TD "spiffe://" NT_TD
#define N_ENTRIES 5
#define N_CALLS 6
#define PER_CALL 12

typedef Warden__Node__V1__BatchNewX509SVIDRequest BatchReq;
typedef Warden__Node__V1__BatchNewX509SVIDResponse BatchResp;
typedef Warden__Node__V1__X509SVIDParams Params;

static const ProtobufCMessageDescriptor *batch_desc =
        &warden__node__v1__batch_new_x509_svidresponse__descriptor;

static const char *const L_X509[] = {METRICS_KIND_X509_SVID, NULL};

/* Entries TD/w<i> for the agent; their IDs into ids. */
static void make_entries(NodeFx *fx, const NodeId *id, char *ids[N_ENTRIES]) {
        for (int i = 0; i < N_ENTRIES; i++) {
                _cleanup_free_ char *sid = NULL;
                Entry *e = NULL;

                assert_ok(entry_new(&e));
                assert_true(asprintf(&sid, TD "/w%d", i) > 0);
                e->spiffe_id = strdup(sid);
                e->parent_id = strdup(id->spiffe_id);
                assert_ok(selector_set_add(&e->selectors, "unix", "uid:1000"));
                assert_ok(ds_create_entries(fx->s->ds, &e, 1, NULL));
                server_entries_changed(fx->s); /* as every writer does */
                ids[i] = strdup(e->id);
                entry_free(e);
        }
}

/* A batch of n CSRs (all for key's CSR) for entries ids[(first + i) % N_ENTRIES]. */
typedef struct Batch {
        BatchReq req;
        Params params[PER_CALL];
        Params *pp[PER_CALL];
} Batch;

static void batch_init(
        Batch *b, char *ids[N_ENTRIES], int first, size_t n, ProtobufCBinaryData *csr) {
        *b = (Batch){.req = WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT};
        for (size_t i = 0; i < n; i++) {
                b->params[i] = (Params) WARDEN__NODE__V1__X509_SVIDPARAMS__INIT;
                b->params[i].entry_id = ids[(first + (int) i) % N_ENTRIES];
                b->params[i].csr = *csr;
                b->pp[i] = &b->params[i];
        }
        b->req.params = b->pp;
        b->req.n_params = n;
}

/* res is an SVID for spiffe_id with key, signed by one of roots. */
static void check_svid(Warden__Node__V1__X509SVIDResult *res,
                       const char *spiffe_id,
                       EVP_PKEY *key,
                       STACK_OF(X509) * roots) {
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_free_ char *got = NULL;
        const char *reason = NULL;

        assert_int_equal(res->status, 0);
        assert_int_equal(res->n_svid_chain, 1);
        assert_ok(warden_x509_from_der(res->svid_chain[0].data, res->svid_chain[0].len, &leaf));
        if (warden_svid_verify(leaf, NULL, roots, 0, &got, &reason) < 0)
                fail_msg("SVID does not verify: %s", strna(reason));
        assert_string_equal(got, spiffe_id);
        assert_true(warden_key_public_equal(X509_get0_pubkey(leaf), key));
}

static STACK_OF(X509) * roots_of(NodeFx *fx) {
        STACK_OF(X509) *roots = NULL;

        assert_ok(warden_x509_chain_from_pem(fx->roots_pem, strlen(fx->roots_pem), &roots));
        return roots;
}

static void run_concurrent(unsigned threads) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        ProtobufCBinaryData csr = {};
        NodeFxCall *calls[N_CALLS];
        Batch batches[N_CALLS];
        char *ids[N_ENTRIES];
        NodeId id = {};
        NodeFx fx;

        node_fx_init_signing(&fx, false, threads);
        assert_true(!fx.s->node->sign_pool == (threads == 0));
        node_fx_attest_join(&fx, "tok", &id);
        make_entries(&fx, &id, ids);
        roots = roots_of(&fx);
        node_fx_csr(&key, &csr);
        for (int c = 0; c < N_CALLS; c++) {
                batch_init(&batches[c], ids, c, PER_CALL, &csr);
                calls[c] = node_fx_call_start(&fx, &id, "BatchNewX509SVID", &batches[c].req, 0);
        }
        for (int c = 0; c < N_CALLS; c++) {
                BatchResp *resp = NULL;

                assert_int_equal(node_fx_call_finish(calls[c], batch_desc, (void **) &resp),
                                 GRPC_STATUS_OK);
                assert_int_equal(resp->n_results, PER_CALL);
                for (int i = 0; i < PER_CALL; i++) {
                        _cleanup_free_ char *want = NULL;
                        int e = (c + i) % N_ENTRIES;

                        assert_true(asprintf(&want, TD "/w%d", e) > 0);
                        assert_string_equal(resp->results[i]->entry_id, ids[e]);
                        check_svid(resp->results[i], want, key, roots);
                }
                pb_free(resp);
        }
        assert_int_equal(node_fx_metric(&fx, fx.s->metrics.signings, L_X509), N_CALLS * PER_CALL);
        for (int i = 0; i < N_ENTRIES; i++)
                free(ids[i]);
        free(csr.data);
        node_id_done(&id);
        node_fx_done(&fx);
}

static void test_concurrent_batches(void **state) {
        run_concurrent(2);
}

static void test_main_thread(void **state) {
        run_concurrent(0);
}

static void test_jwt_on_pool(void **state) {
        Warden__Node__V1__NewJWTSVIDRequest req = WARDEN__NODE__V1__NEW_JWTSVIDREQUEST__INIT;
        Warden__Node__V1__NewJWTSVIDResponse *resp = NULL;
        char *aud[] = {(char *) "svc"}, *ids[N_ENTRIES];
        NodeId id = {};
        NodeFx fx;

        node_fx_init_signing(&fx, false, 2);
        node_fx_attest_join(&fx, "tok", &id);
        make_entries(&fx, &id, ids);
        req.entry_id = ids[1];
        req.audience = aud;
        req.n_audience = 1;
        assert_int_equal(node_fx_call(&fx, &id, "NewJWTSVID", &req, 1,
                                      &warden__node__v1__new_jwtsvidresponse__descriptor,
                                      (void **) &resp, NULL),
                         GRPC_STATUS_OK);
        assert_non_null(strchr(resp->token, '.'));
        assert_int_equal(resp->expires_at - resp->issued_at, 300);
        pb_free(resp);
        for (int i = 0; i < N_ENTRIES; i++)
                free(ids[i]);
        node_id_done(&id);
        node_fx_done(&fx);
}

/* A job that holds a pool thread until released. */
typedef struct Blocker {
        SignJob base;
        atomic_bool running, release, cancelled;
} Blocker;

static void blocker_run(SignJob *b) {
        Blocker *k = (Blocker *) b;

        atomic_store(&k->running, true);
        while (!atomic_load(&k->release))
                usleep(1000);
}

static void blocker_cancel(SignJob *b) {
        atomic_store(&((Blocker *) b)->cancelled, true);
}

static void block_pool(NodeFx *fx, Blocker *k) {
        *k = (Blocker){.base = {.run = blocker_run, .cancel = blocker_cancel}};
        assert_ok(sign_pool_submit(fx->s->node->sign_pool, &k->base));
        for (int i = 0; i < 5000 && !atomic_load(&k->running); i++)
                usleep(1000);
        assert_true(atomic_load(&k->running));
}

static bool queued_n(NodeFx *fx, size_t n) {
        for (int i = 0; i < 2000 && sign_pool_queued(fx->s->node->sign_pool) < n; i++)
                node_fx_pump(fx, NULL, NULL, 5);
        return sign_pool_queued(fx->s->node->sign_pool) == n;
}

static bool no_calls(void *p) {
        RpcServerStats st;

        rpc_server_get_stats(((NodeFx *) p)->s->node_rpc, &st);
        return st.calls_active == 0;
}

static void test_cancelled_while_queued(void **state) {
        ProtobufCBinaryData csr = {};
        char *ids[N_ENTRIES];
        NodeId id = {};
        NodeFxCall *call;
        Blocker k;
        Batch b;
        NodeFx fx;

        node_fx_init_signing(&fx, false, 1);
        node_fx_attest_join(&fx, "tok", &id);
        make_entries(&fx, &id, ids);
        node_fx_csr(NULL, &csr);
        block_pool(&fx, &k);
        batch_init(&b, ids, 0, 3, &csr);
        call = node_fx_call_start(&fx, &id, "BatchNewX509SVID", &b.req, 300);
        assert_true(queued_n(&fx, 1));
        /* The deadline passes while the job waits. */
        assert_int_equal(node_fx_call_finish(call, batch_desc, NULL),
                         GRPC_STATUS_DEADLINE_EXCEEDED);
        /* Until the server has seen the call end too (slow under sanitizers). */
        node_fx_pump(&fx, no_calls, &fx, 10000);
        assert_true(no_calls(&fx));
        atomic_store(&k.release, true);
        for (int i = 0; i < 2000 && sign_pool_queued(fx.s->node->sign_pool) > 0; i++)
                usleep(1000);
        node_fx_pump(&fx, NULL, NULL, 100);
        assert_int_equal(node_fx_metric(&fx, fx.s->metrics.signings, L_X509), 0);
        /* The pool still works. */
        call = node_fx_call_start(&fx, &id, "BatchNewX509SVID", &b.req, 0);
        assert_int_equal(node_fx_call_finish(call, batch_desc, NULL), GRPC_STATUS_OK);
        assert_int_equal(node_fx_metric(&fx, fx.s->metrics.signings, L_X509), 3);
        for (int i = 0; i < N_ENTRIES; i++)
                free(ids[i]);
        free(csr.data);
        node_id_done(&id);
        node_fx_done(&fx);
}

static void *release_later(void *p) {
        usleep(200 * 1000);
        atomic_store(&((Blocker *) p)->release, true);
        return NULL;
}

static void test_shutdown_with_queued(void **state) {
        ProtobufCBinaryData csr = {};
        NodeFxCall *calls[3];
        char *ids[N_ENTRIES];
        NodeId id = {};
        pthread_t t;
        Blocker k;
        Batch b;
        NodeFx fx;

        node_fx_init_signing(&fx, false, 1);
        node_fx_attest_join(&fx, "tok", &id);
        make_entries(&fx, &id, ids);
        node_fx_csr(NULL, &csr);
        block_pool(&fx, &k);
        batch_init(&b, ids, 0, 2, &csr);
        for (int i = 0; i < 3; i++)
                calls[i] = node_fx_call_start(&fx, &id, "BatchNewX509SVID", &b.req, 0);
        assert_true(queued_n(&fx, 3));
        /* Stopping cancels the queued calls and waits for the running job. */
        assert_int_equal(pthread_create(&t, NULL, release_later, &k), 0);
        node_api_stop_signing(fx.s->node);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_false(atomic_load(&k.cancelled));
        for (int i = 0; i < 3; i++)
                assert_int_equal(node_fx_call_finish(calls[i], batch_desc, NULL),
                                 GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(node_fx_metric(&fx, fx.s->metrics.signings, L_X509), 0);
        /* Later calls are refused, not lost. */
        calls[0] = node_fx_call_start(&fx, &id, "BatchNewX509SVID", &b.req, 0);
        assert_int_equal(node_fx_call_finish(calls[0], batch_desc, NULL), GRPC_STATUS_UNAVAILABLE);
        for (int i = 0; i < N_ENTRIES; i++)
                free(ids[i]);
        free(csr.data);
        node_id_done(&id);
        node_fx_done(&fx);
}

static void test_rotation_while_queued(void **state) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *old_roots = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        ProtobufCBinaryData csr = {};
        BatchResp *resp = NULL;
        char *ids[N_ENTRIES];
        NodeId id = {};
        NodeFxCall *call;
        time_t now = time(NULL);
        bool changed = false;
        Blocker k;
        Batch b;
        NodeFx fx;

        node_fx_init_signing(&fx, false, 1);
        node_fx_attest_join(&fx, "tok", &id);
        make_entries(&fx, &id, ids);
        old_roots = roots_of(&fx);
        assert_int_equal(sk_X509_num(old_roots), 1);
        node_fx_csr(&key, &csr);
        block_pool(&fx, &k);
        batch_init(&b, ids, 0, 2, &csr);
        call = node_fx_call_start(&fx, &id, "BatchNewX509SVID", &b.req, 0);
        assert_true(queued_n(&fx, 1));
        /* The next CA becomes active (ca_ttl 24 h: at 20 h), then the old one expires
         * and leaves the Ca altogether: only the queued job's snapshot still holds it. */
        assert_ok(ca_tick(fx.s->ca, now + 12 * 3600 + 60, &changed));
        assert_ok(ca_tick(fx.s->ca, now + 20 * 3600 + 60, &changed));
        assert_true(changed);
        assert_ok(ca_tick(fx.s->ca, now + 24 * 3600 + 60, &changed));
        atomic_store(&k.release, true);
        assert_int_equal(node_fx_call_finish(call, batch_desc, (void **) &resp), GRPC_STATUS_OK);
        check_svid(resp->results[0], TD "/w0", key, old_roots);
        check_svid(resp->results[1], TD "/w1", key, old_roots);
        pb_free(resp);
        for (int i = 0; i < N_ENTRIES; i++)
                free(ids[i]);
        free(csr.data);
        node_id_done(&id);
        node_fx_done(&fx);
}

/* ---- the pool alone ---- */

typedef struct CountJob {
        SignJob base;
        int n;
        atomic_int *order;
        atomic_int *next;
        atomic_bool cancelled;
} CountJob;

static void count_run(SignJob *b) {
        CountJob *j = (CountJob *) b;

        atomic_store(&j->order[j->n], atomic_fetch_add(j->next, 1));
}

static void count_cancel(SignJob *b) {
        atomic_store(&((CountJob *) b)->cancelled, true);
}

static void test_pool(void **state) {
        _cleanup_(sign_pool_freep) SignPool *p = NULL;
        atomic_int next = 0;
        atomic_int order[8] = {};
        CountJob jobs[8];
        Blocker k = {.base = {.run = blocker_run, .cancel = blocker_cancel}};

        assert_int_equal(sign_pool_new(0, &p), -EINVAL);
        assert_int_equal(sign_pool_new(SIGN_POOL_THREADS_MAX + 1, &p), -EINVAL);
        assert_ok(sign_pool_new(1, &p));
        assert_ok(sign_pool_submit(p, &k.base));
        for (int i = 0; i < 5000 && !atomic_load(&k.running); i++)
                usleep(1000);
        for (int i = 0; i < 8; i++) {
                jobs[i] = (CountJob){.base = {.run = count_run, .cancel = count_cancel},
                                     .n = i,
                                     .order = order,
                                     .next = &next};
                assert_ok(sign_pool_submit(p, &jobs[i].base));
        }
        assert_int_equal(sign_pool_queued(p), 8);
        atomic_store(&k.release, true);
        /* One thread runs them in turn: the last one's store comes after the others'. */
        for (int i = 0; i < 5000 && atomic_load(&order[7]) != 7; i++)
                usleep(1000);
        for (int i = 0; i < 8; i++)
                assert_int_equal(atomic_load(&order[i]), i); /* one thread: FIFO */

        /* Full, then stopped with jobs waiting: they are cancelled, never run. */
        k = (Blocker){.base = {.run = blocker_run, .cancel = blocker_cancel}};
        assert_ok(sign_pool_submit(p, &k.base));
        for (int i = 0; i < 5000 && !atomic_load(&k.running); i++)
                usleep(1000);
        CountJob *many = calloc(SIGN_POOL_QUEUE_MAX + 1, sizeof(CountJob));
        assert_non_null(many);
        for (int i = 0; i <= SIGN_POOL_QUEUE_MAX; i++) {
                many[i] = (CountJob){.base = {.run = count_run, .cancel = count_cancel},
                                     .order = order,
                                     .next = &next};
                assert_int_equal(sign_pool_submit(p, &many[i].base),
                                 i < SIGN_POOL_QUEUE_MAX ? 0 : -EBUSY);
        }
        atomic_store(&next, 0);
        atomic_store(&k.release, true);
        sign_pool_stop(p);
        sign_pool_stop(p);
        assert_int_equal(sign_pool_submit(p, &many[0].base), -ESHUTDOWN);
        /* Whatever did not run was cancelled, and nothing both. */
        int n_cancelled = 0;
        for (int i = 0; i < SIGN_POOL_QUEUE_MAX; i++)
                n_cancelled += atomic_load(&many[i].cancelled);
        assert_int_equal(n_cancelled + atomic_load(&next), SIGN_POOL_QUEUE_MAX);
        assert_false(atomic_load(&k.cancelled));
        free(many);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pool),
                cmocka_unit_test(test_concurrent_batches),
                cmocka_unit_test(test_main_thread),
                cmocka_unit_test(test_jwt_on_pool),
                cmocka_unit_test(test_cancelled_while_queued),
                cmocka_unit_test(test_shutdown_with_queued),
                cmocka_unit_test(test_rotation_while_queued),
        };

        return cmocka_run_group_tests_name("node_sign", tests, NULL, NULL);
}
