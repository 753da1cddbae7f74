/* SPDX-License-Identifier: Apache-2.0 */
/* Workload API over a real socket: X.509-SVID and bundle streams (first message,
 * encodings, updates, skipping identical bundle messages, identity gone, pending
 * SVIDs), the security header, status codes, and shutdown with open streams. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "spiffe/workload/workload.pb-c.h"
#include "testlib.h"
#include "wapi_harness.h"

#define ID_A "spiffe://" FX_TD "/a"
#define ID_B "spiffe://" FX_TD "/b"
#define ID_N "spiffe://" FX_TD "/nobody"
#define QUIET_MS 300

/* Caller = this process, uid 0. Entry ids order the answer: "1" (a) before "3" (b). */
static const FxEntry entries_root[] = {
        {.entry_id = "1",
         .spiffe_id = ID_A,
         .hint = "a",
         .selectors = {"unix:uid:0"},
         .federates_with = FX_FED_TD,
         .created_at = 10},
        {.entry_id = "2", .spiffe_id = ID_N, .selectors = {"unix:uid:65534"}, .created_at = 10},
        {.entry_id = "3",
         .spiffe_id = ID_B,
         .selectors = {"unix:uid:0", "unix:user:root"},
         .created_at = 10},
        {.entry_id = "4",
         .spiffe_id = "spiffe://" FX_TD "/c",
         .selectors = {"unix:uid:0", "unix:uid:4242"},
         .created_at = 10},
};
static const FxEntry entries_a_only[] = {
        {.entry_id = "1", .spiffe_id = ID_A, .selectors = {"unix:uid:0"}, .created_at = 10},
};
static const FxEntry entries_nobody[] = {
        {.entry_id = "2", .spiffe_id = ID_N, .selectors = {"unix:uid:65534"}, .created_at = 10},
};
static const FxEntry entries_pending[] = {
        {.entry_id = "1",
         .spiffe_id = ID_A,
         .selectors = {"unix:uid:0"},
         .pending = true,
         .federates_with = FX_FED_TD,
         .created_at = 10},
};
/* Same hint: the older entry (b, created first) wins although its id sorts later. */
static const FxEntry entries_hint[] = {
        {.entry_id = "1",
         .spiffe_id = ID_A,
         .hint = "web",
         .selectors = {"unix:uid:0"},
         .created_at = 2000},
        {.entry_id = "2",
         .spiffe_id = ID_B,
         .hint = "web",
         .selectors = {"unix:uid:0"},
         .created_at = 1000},
};

static STACK_OF(X509) * certs_of(const ProtobufCBinaryData *d) {
        STACK_OF(X509) *s = NULL;

        assert_ok(warden_x509_certs_from_der(d->data, d->len, 16, 65536, &s));
        return s;
}

static void check_svid(Harness *h, const X509SVID *s, const char *id, const char *hint) {
        STACK_OF(X509) *chain = NULL, *roots = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *got = NULL;
        X509 *leaf;

        assert_string_equal(s->spiffe_id, id);
        assert_string_equal(s->hint, hint ? hint : "");
        assert_ok(warden_x509_chain_from_der(s->x509_svid.data, s->x509_svid.len, &chain));
        leaf = sk_X509_value(chain, 0);
        assert_ok(warden_x509_spiffe_id(leaf, &got));
        assert_string_equal(got, id);
        assert_ok(warden_key_from_pkcs8_der(s->x509_svid_key.data, s->x509_svid_key.len, &key));
        assert_int_equal(X509_check_private_key(leaf, key), 1);
        roots = certs_of(&s->bundle);
        assert_int_equal(sk_X509_num(roots), 1);
        assert_int_equal(X509_cmp(sk_X509_value(roots, 0), h->fx->ca), 0);
        assert_ok(warden_svid_verify(leaf, NULL, roots, 0, NULL, NULL));
        sk_X509_pop_free(chain, X509_free);
        sk_X509_pop_free(roots, X509_free);
}

static void check_der_is(const ProtobufCBinaryData *d, X509 *want) {
        STACK_OF(X509) *s = certs_of(d);

        assert_int_equal(sk_X509_num(s), 1);
        assert_int_equal(X509_cmp(sk_X509_value(s, 0), want), 0);
        sk_X509_pop_free(s, X509_free);
}

static X509SVIDResponse *next_x509(RpcStream *st) {
        ProtobufCMessage *m = NULL;

        assert_int_equal(h_next(st, H_TIMEOUT_MS, &x509_svidresponse__descriptor, &m, NULL, NULL),
                         1);
        return (X509SVIDResponse *) m;
}

static void expect_quiet(RpcStream *st) {
        ProtobufCMessage *m = NULL;

        assert_int_equal(h_next(st, QUIET_MS, NULL, &m, NULL, NULL), -ETIMEDOUT);
}

static void free_msg(void *m) {
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}

static void test_x509_svid(void **state) {
        X509SVIDResponse *r;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        st = h_stream(&h, "FetchX509SVID", true);
        r = next_x509(st);
        /* Both identities of uid 0 in entry order (the first is the default); the
         * others' entries need selectors this process lacks. */
        assert_int_equal(r->n_svids, 2);
        check_svid(&h, r->svids[0], ID_A, "a");
        check_svid(&h, r->svids[1], ID_B, NULL);
        assert_int_equal(r->n_crl, 0);
        /* Entry a federates with federated.test; unrelated.test is nobody's. */
        assert_int_equal(r->n_federated_bundles, 1);
        assert_string_equal(r->federated_bundles[0]->key, "spiffe://" FX_FED_TD);
        check_der_is(&r->federated_bundles[0]->value, h.fx->fed_ca);
        free_msg(r);
        rpc_stream_free(st);
        h_stop(&h);
}

static void test_x509_hint_dedup(void **state) {
        X509SVIDResponse *r;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_hint, ELEMENTSOF(entries_hint));
        st = h_stream(&h, "FetchX509SVID", true);
        r = next_x509(st);
        assert_int_equal(r->n_svids, 1);
        check_svid(&h, r->svids[0], ID_B, "web");
        assert_int_equal(r->n_federated_bundles, 0);
        free_msg(r);
        rpc_stream_free(st);
        h_stop(&h);
}

static void test_x509_updates(void **state) {
        X509SVIDResponse *r1, *r2, *r3;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        st = h_stream(&h, "FetchX509SVID", true);
        r1 = next_x509(st);

        /* Rotation: the same identities with new certificates. */
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        r2 = next_x509(st);
        assert_int_equal(r2->n_svids, 2);
        check_svid(&h, r2->svids[0], ID_A, "a");
        assert_false(r1->svids[0]->x509_svid.len == r2->svids[0]->x509_svid.len &&
                     memcmp(r1->svids[0]->x509_svid.data, r2->svids[0]->x509_svid.data,
                            r1->svids[0]->x509_svid.len) == 0);

        /* An entry deleted: the next message has only a. */
        h_publish(&h, entries_a_only, ELEMENTSOF(entries_a_only));
        r3 = next_x509(st);
        assert_int_equal(r3->n_svids, 1);
        check_svid(&h, r3->svids[0], ID_A, NULL);
        assert_int_equal(r3->n_federated_bundles, 0);

        /* Every identity gone: the stream ends as with SPIRE. */
        h_publish(&h, entries_nobody, ELEMENTSOF(entries_nobody));
        h_expect_end(st, GRPC_STATUS_PERMISSION_DENIED, "no identity issued");
        free_msg(r1);
        free_msg(r2);
        free_msg(r3);
        rpc_stream_free(st);
        h_stop(&h);
}

static void test_x509_pending(void **state) {
        ProtobufCMessage *m = NULL;
        X509SVIDResponse *r;
        RpcStream *st, *bst;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_pending, ELEMENTSOF(entries_pending));
        st = h_stream(&h, "FetchX509SVID", true);
        /* Matching entry without SVID: the stream stays open, silent. */
        expect_quiet(st);
        /* Its bundles are served already (the entry counts as an identity). */
        bst = h_stream(&h, "FetchX509Bundles", true);
        assert_int_equal(
                h_next(bst, H_TIMEOUT_MS, &x509_bundles_response__descriptor, &m, NULL, NULL), 1);
        assert_int_equal(((X509BundlesResponse *) m)->n_bundles, 2);
        free_msg(m);

        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        r = next_x509(st);
        assert_int_equal(r->n_svids, 2);
        free_msg(r);
        rpc_stream_free(st);
        rpc_stream_free(bst);
        h_stop(&h);
}

static void check_bundles_response(Harness *h, const X509BundlesResponse *r) {
        assert_int_equal(r->n_crl, 0);
        assert_int_equal(r->n_bundles, 2);
        assert_string_equal(r->bundles[0]->key, "spiffe://" FX_TD);
        check_der_is(&r->bundles[0]->value, h->fx->ca);
        assert_string_equal(r->bundles[1]->key, "spiffe://" FX_FED_TD);
        check_der_is(&r->bundles[1]->value, h->fx->fed_ca);
}

/* A plain JWKS with exactly these kids, every key with kid and no use. */
static void check_jwks(const ProtobufCBinaryData *d, const char *td, size_t n_kids, ...) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *reason = NULL;
        WardenBundle *b = NULL;
        json_t *keys, *k;
        size_t i;
        va_list ap;

        j = json_loadb((const char *) d->data, d->len, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_object_size(j), 1);
        keys = json_object_get(j, "keys");
        assert_true(json_is_array(keys));
        assert_int_equal(json_array_size(keys), n_kids);
        json_array_foreach(keys, i, k) {
                assert_non_null(json_object_get(k, "kid"));
                assert_null(json_object_get(k, "use"));
                assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
        }
        assert_ok(warden_jwks_parse(td, (const char *) d->data, d->len, &b, &reason));
        assert_int_equal(warden_bundle_n_jwt_authorities(b), n_kids);
        va_start(ap, n_kids);
        for (i = 0; i < n_kids; i++)
                assert_non_null(warden_bundle_find_jwt_key(b, va_arg(ap, const char *)));
        va_end(ap);
        warden_bundle_unref(b);
}

static void test_bundle_streams(void **state) {
        ProtobufCMessage *m = NULL;
        JWTBundlesResponse *j;
        RpcStream *xs, *js;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        xs = h_stream(&h, "FetchX509Bundles", true);
        js = h_stream(&h, "FetchJWTBundles", true);
        assert_int_equal(
                h_next(xs, H_TIMEOUT_MS, &x509_bundles_response__descriptor, &m, NULL, NULL), 1);
        check_bundles_response(&h, (X509BundlesResponse *) m);
        free_msg(m);
        assert_int_equal(h_next(js, H_TIMEOUT_MS, &jwtbundles_response__descriptor, &m, NULL, NULL),
                         1);
        j = (JWTBundlesResponse *) m;
        assert_int_equal(j->n_bundles, 2);
        assert_string_equal(j->bundles[0]->key, "spiffe://" FX_TD);
        check_jwks(&j->bundles[0]->value, FX_TD, 1, FX_KID);
        assert_string_equal(j->bundles[1]->key, "spiffe://" FX_FED_TD);
        check_jwks(&j->bundles[1]->value, FX_FED_TD, 1, FX_FED_KID);
        free_msg(m);

        /* New snapshot, same bundles: no message on either stream. */
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        expect_quiet(xs);
        expect_quiet(js);

        /* A new JWT key: only the JWT bundle stream changes. */
        assert_ok(fx_add_jwt_key(h.fx));
        h_changed(&h);
        assert_int_equal(h_next(js, H_TIMEOUT_MS, &jwtbundles_response__descriptor, &m, NULL, NULL),
                         1);
        j = (JWTBundlesResponse *) m;
        check_jwks(&j->bundles[0]->value, FX_TD, 2, FX_KID, h.fx->extra_kid);
        free_msg(m);
        expect_quiet(xs);

        /* Identity gone: both end. */
        h_publish(&h, entries_nobody, ELEMENTSOF(entries_nobody));
        h_expect_end(xs, GRPC_STATUS_PERMISSION_DENIED, "no identity issued");
        h_expect_end(js, GRPC_STATUS_PERMISSION_DENIED, "no identity issued");
        rpc_stream_free(xs);
        rpc_stream_free(js);
        h_stop(&h);
}

static void test_bundles_not_federated(void **state) {
        ProtobufCMessage *m = NULL;
        X509BundlesResponse *r;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_a_only, ELEMENTSOF(entries_a_only));
        st = h_stream(&h, "FetchX509Bundles", true);
        assert_int_equal(
                h_next(st, H_TIMEOUT_MS, &x509_bundles_response__descriptor, &m, NULL, NULL), 1);
        r = (X509BundlesResponse *) m;
        assert_int_equal(r->n_bundles, 1);
        assert_string_equal(r->bundles[0]->key, "spiffe://" FX_TD);
        free_msg(m);
        rpc_stream_free(st);
        h_stop(&h);
}

/* A federated trust domain without JWT keys appears as {"keys":[]}. */
static void test_jwt_bundle_without_keys(void **state) {
        static const FxEntry e[] = {
                {.entry_id = "1",
                 .spiffe_id = ID_A,
                 .selectors = {"unix:uid:0"},
                 .federates_with = FX_OTHER_TD},
        };
        ProtobufCMessage *m = NULL;
        JWTBundlesResponse *j;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, e, ELEMENTSOF(e));
        st = h_stream(&h, "FetchJWTBundles", true);
        assert_int_equal(h_next(st, H_TIMEOUT_MS, &jwtbundles_response__descriptor, &m, NULL, NULL),
                         1);
        j = (JWTBundlesResponse *) m;
        assert_int_equal(j->n_bundles, 2);
        assert_string_equal(j->bundles[1]->key, "spiffe://" FX_OTHER_TD);
        assert_int_equal(j->bundles[1]->value.len, strlen("{\"keys\":[]}"));
        assert_memory_equal(j->bundles[1]->value.data, "{\"keys\":[]}", j->bundles[1]->value.len);
        free_msg(m);
        rpc_stream_free(st);
        h_stop(&h);
}

static const char *const all_methods[] = {
        "FetchX509SVID",   "FetchX509Bundles", "FetchJWTSVID",    "FetchJWTBundles",
        "ValidateJWTSVID", "FetchWITSVID",     "FetchWITBundles",
};

static void test_security_header(void **state) {
        static const RpcMetadata wrong[] = {{"workload.spiffe.io", "True"}};
        static const RpcMetadata twice[] = {{"workload.spiffe.io", "true"},
                                            {"workload.spiffe.io", "true"}};
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        for (size_t i = 0; i < ELEMENTSOF(all_methods); i++) {
                _cleanup_free_ char *msg = NULL, *path = NULL;
                int status = -1;

                /* Garbage request: the header check still comes first. */
                assert_int_equal(h_unary_raw(&h, all_methods[i], false, "\xff", 1, &msg),
                                 GRPC_STATUS_INVALID_ARGUMENT);
                assert_string_equal(msg, "security header missing from request");
                assert_true(asprintf(&path, "/SpiffeWorkloadAPI/%s", all_methods[i]) > 0);
                assert_ok(rpc_unary(h.ch, path, wrong, 1, "", 0, H_TIMEOUT_MS, NULL, NULL, &status,
                                    NULL));
                assert_int_equal(status, GRPC_STATUS_INVALID_ARGUMENT);
                assert_ok(rpc_unary(h.ch, path, twice, 2, "", 0, H_TIMEOUT_MS, NULL, NULL, &status,
                                    NULL));
                assert_int_equal(status, GRPC_STATUS_INVALID_ARGUMENT);
        }
        h_stop(&h);
}

static void test_unimplemented_and_malformed(void **state) {
        _cleanup_free_ char *msg = NULL;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        st = h_stream(&h, "FetchWITSVID", true);
        h_expect_end(st, GRPC_STATUS_UNIMPLEMENTED, NULL);
        rpc_stream_free(st);
        st = h_stream(&h, "FetchWITBundles", true);
        h_expect_end(st, GRPC_STATUS_UNIMPLEMENTED, NULL);
        rpc_stream_free(st);
        assert_int_equal(h_unary_raw(&h, "NoSuchMethod", true, "", 0, NULL),
                         GRPC_STATUS_UNIMPLEMENTED);
        /* Not protobuf: field 1 with a length running past the end. */
        assert_int_equal(h_unary_raw(&h, "FetchJWTSVID", true, "\x0a\x7f", 2, &msg),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(msg, "malformed request");
        h_stop(&h);
}

static void test_not_ready_and_no_identity(void **state) {
        Harness h;

        (void) state;
        h_start(&h);
        /* No snapshot yet: UNAVAILABLE everywhere. */
        for (size_t i = 0; i < 4; i++) {
                RpcStream *st;

                if (streq(all_methods[i], "FetchJWTSVID"))
                        continue;
                st = h_stream(&h, all_methods[i], true);
                h_expect_end(st, GRPC_STATUS_UNAVAILABLE, "agent is not ready to serve yet");
                rpc_stream_free(st);
        }
        /* Entries for others only: PERMISSION_DENIED on every stream. */
        h_publish(&h, entries_nobody, ELEMENTSOF(entries_nobody));
        for (size_t i = 0; i < 4; i++) {
                RpcStream *st;

                if (streq(all_methods[i], "FetchJWTSVID"))
                        continue;
                st = h_stream(&h, all_methods[i], true);
                h_expect_end(st, GRPC_STATUS_PERMISSION_DENIED, "no identity issued");
                rpc_stream_free(st);
        }
        h_stop(&h);
}

/* Many streams on one connection all get the update; then the server stops under
 * them and every client sees its stream end. */
static void test_many_streams_and_stop(void **state) {
        RpcStream *st[40];
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        for (size_t i = 0; i < ELEMENTSOF(st); i++) {
                ProtobufCMessage *m = NULL;

                st[i] = h_stream(&h, i % 2 ? "FetchX509SVID" : "FetchJWTBundles", true);
                assert_int_equal(h_next(st[i], H_TIMEOUT_MS,
                                        i % 2 ? &x509_svidresponse__descriptor
                                              : &jwtbundles_response__descriptor,
                                        &m, NULL, NULL),
                                 1);
                free_msg(m);
        }
        /* a without b, and no federation: both kinds of stream change. */
        h_publish(&h, entries_a_only, ELEMENTSOF(entries_a_only));
        for (size_t i = 0; i < ELEMENTSOF(st); i++) {
                ProtobufCMessage *m = NULL;

                if (i % 2) {
                        m = &next_x509(st[i])->base;
                        assert_int_equal(((X509SVIDResponse *) m)->n_svids, 1);
                } else {
                        assert_int_equal(h_next(st[i], H_TIMEOUT_MS,
                                                &jwtbundles_response__descriptor, &m, NULL, NULL),
                                         1);
                        assert_int_equal(((JWTBundlesResponse *) m)->n_bundles, 1);
                }
                free_msg(m);
        }
        /* Stopping cancels every call: each stream ends UNAVAILABLE (gRPC's text varies with
         * the moment the connection goes: "Cancelling all calls", "Broken pipe"). */
        h_stop_server(&h);
        for (size_t i = 0; i < ELEMENTSOF(st); i++) {
                h_expect_end(st[i], GRPC_STATUS_UNAVAILABLE, NULL);
                rpc_stream_free(st[i]);
        }
        h_stop(&h);
}

extern char **environ;

/* The process that connected exited before its call was attested (the call comes
 * from its child over the inherited connection): UNAUTHENTICATED. */
static void test_caller_gone(void **state) {
        char *argv[] = {(char *) WAPI_ORPHAN_PATH, NULL, NULL};
        posix_spawn_file_actions_t fa;
        char out[256] = "";
        size_t n = 0;
        ssize_t k;
        int p[2], status;
        pid_t pid;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        argv[1] = h.sock;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* EOF once the orphaned child is done. */
        while (n < sizeof(out) - 1 && (k = read(p[0], out + n, sizeof(out) - 1 - n)) > 0)
                n += (size_t) k;
        close(p[0]);
        assert_string_equal(out, "16 could not verify existence of the original caller\n");
        /* Counted as an UNAUTHENTICATED call; the connection was attested once, before
         * or after its process exited (the pidfd check per call refuses either way). */
        h_expect_metric(&h, METRIC_WORKLOAD_API_CALLS,
                        METRICS_LABELS("FetchJWTSVID", "UNAUTHENTICATED"), 1);
        assert_true(
                h_metric(&h, METRIC_WORKLOAD_ATTESTATIONS, METRICS_LABELS(METRICS_RESULT_GONE)) +
                        h_metric(&h, METRIC_WORKLOAD_ATTESTATIONS,
                                 METRICS_LABELS(METRICS_RESULT_OK)) +
                        h_metric(&h, METRIC_WORKLOAD_ATTESTATIONS,
                                 METRICS_LABELS(METRICS_RESULT_UNBOUND)) ==
                1);
        h_stop(&h);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_x509_svid),
                cmocka_unit_test(test_x509_hint_dedup),
                cmocka_unit_test(test_x509_updates),
                cmocka_unit_test(test_x509_pending),
                cmocka_unit_test(test_bundle_streams),
                cmocka_unit_test(test_bundles_not_federated),
                cmocka_unit_test(test_jwt_bundle_without_keys),
                cmocka_unit_test(test_security_header),
                cmocka_unit_test(test_unimplemented_and_malformed),
                cmocka_unit_test(test_not_ready_and_no_identity),
                cmocka_unit_test(test_many_streams_and_stop),
                cmocka_unit_test(test_caller_gone),
        };
        return cmocka_run_group_tests_name("workload_api", tests, NULL, NULL);
}
