/* SPDX-License-Identifier: Apache-2.0 */
/* TCP + mutual TLS: the client's SPIFFE ID and certificate serial reach the handler
 * (the serial through the server's per-certificate cache, whose cost is measured), the
 * client pins the server's SPIFFE ID (no DNS SAN needed), foreign CAs are refused,
 * optional client certificates, certificate rotation, and bad configurations. */

#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "rpc.h"
#include "rpc_client.h"
#include "rpc_internal.h"
#include "rpc_testutil.h"
#include "testlib.h"

#define SERVER_ID "spiffe://example.org/warden/server"
#define CLIENT_ID "spiffe://example.org/warden/agent/join_token/abc"

typedef struct Pki {
        TestCa *ca, *other_ca;
        char *server_cert, *server_key;
        char *client_cert, *client_key;
        char *foreign_cert, *foreign_key; /* CLIENT_ID, signed by other_ca */
} Pki;

static Pki pki;
/* Counted on the server's thread, read by the test's after a call: atomic, as the order
 * between them comes from gRPC, which ThreadSanitizer does not see. */
static atomic_uint handler_calls;

static int pki_setup(void **state) {
        pki.ca = test_ca_new("warden test CA");
        pki.other_ca = test_ca_new("other CA");
        test_ca_issue(pki.ca, SERVER_ID, &pki.server_cert, &pki.server_key);
        test_ca_issue(pki.ca, CLIENT_ID, &pki.client_cert, &pki.client_key);
        test_ca_issue(pki.other_ca, CLIENT_ID, &pki.foreign_cert, &pki.foreign_key);
        return 0;
}

static int pki_teardown(void **state) {
        test_ca_free(pki.ca);
        test_ca_free(pki.other_ca);
        free(pki.server_cert);
        free(pki.server_key);
        free(pki.client_cert);
        free(pki.client_key);
        free(pki.foreign_cert);
        free(pki.foreign_key);
        return 0;
}

/* Replies with the caller's SPIFFE ID, or "none". */
static void whoami(RpcCall *c, void *userdata) {
        const RpcPeer *p = rpc_call_peer(c);
        const char *id = p->spiffe_id ? p->spiffe_id : "none";

        atomic_fetch_add(&handler_calls, 1);
        assert_int_equal(p->pid, 0);
        assert_int_equal(p->pidfd, -EBADF);
        assert_ok(rpc_call_reply(c, id, strlen(id)));
}

/* Replies with the caller's certificate serial, or "none". */
static void serial(RpcCall *c, void *userdata) {
        const RpcPeer *p = rpc_call_peer(c);
        const char *s = p->cert_serial ? p->cert_serial : "none";

        atomic_fetch_add(&handler_calls, 1);
        assert_ok(rpc_call_reply(c, s, strlen(s)));
}

/* The serial of a PEM certificate, the slow way. */
static char *pem_serial(const char *pem) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(pem, -1);
        _cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        char *s = NULL;

        assert_non_null(x);
        assert_ok(warden_x509_serial_hex(x, &s));
        return s;
}

static double now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int start_tls(TestServer *t, RpcClientCertMode mode) {
        RpcTlsServerConfig cfg = {pki.ca->pem, pki.server_cert, pki.server_key, mode};
        int port = 0;

        atomic_store(&handler_calls, 0);
        test_server_init(t);
        assert_ok(rpc_server_add_method(t->s, "/test.Tls/WhoAmI", RPC_UNARY, whoami, NULL, 0));
        assert_ok(rpc_server_add_method(t->s, "/test.Tls/Serial", RPC_UNARY, serial, NULL, 0));
        assert_ok(rpc_server_listen_tls(t->s, "127.0.0.1:0", &cfg, &port));
        assert_true(port > 0);
        test_server_run(t);
        return port;
}

/* One call of method on a new channel; returns the status, *ret_resp (optional) the
 * reply. */
static int call_method(int port,
                       const char *method,
                       const RpcTlsClientConfig *cfg,
                       char **ret_resp) {
        _cleanup_free_ char *target = NULL;
        RpcChannel *ch = NULL;
        void *resp = NULL;
        int status = -1;

        assert_true(asprintf(&target, "127.0.0.1:%d", port) > 0);
        assert_ok(rpc_channel_new_tls(target, cfg, &ch));
        assert_ok(rpc_unary(ch, method, NULL, 0, "", 0, 5000, &resp, NULL, &status, NULL));
        rpc_channel_free(ch);
        if (ret_resp)
                *ret_resp = resp;
        else
                free(resp);
        return status;
}

static int call_tls(int port, const RpcTlsClientConfig *cfg, char **ret_resp) {
        return call_method(port, "/test.Tls/WhoAmI", cfg, ret_resp);
}

static void test_mtls_identity(void **state) {
        RpcTlsClientConfig cfg = {pki.ca->pem, pki.client_cert, pki.client_key, SERVER_ID};
        TestServer t;
        _cleanup_free_ char *resp = NULL;
        int port = start_tls(&t, RPC_CLIENT_CERT_REQUIRE);

        assert_int_equal(call_tls(port, &cfg, &resp), GRPC_STATUS_OK);
        assert_string_equal(resp, CLIENT_ID);

        /* Wrong expected server ID: refused before any call reaches the server. */
        cfg.expected_server_id = "spiffe://example.org/warden/impostor";
        assert_int_not_equal(call_tls(port, &cfg, NULL), GRPC_STATUS_OK);
        assert_int_equal(atomic_load(&handler_calls), 1);
        test_server_done(&t);
}

static void test_mtls_refusals(void **state) {
        RpcTlsClientConfig foreign = {pki.ca->pem, pki.foreign_cert, pki.foreign_key, SERVER_ID};
        RpcTlsClientConfig anonymous = {pki.ca->pem, NULL, NULL, SERVER_ID};
        RpcTlsClientConfig wrong_roots = {pki.other_ca->pem, pki.client_cert, pki.client_key,
                                          SERVER_ID};
        TestServer t;
        int port = start_tls(&t, RPC_CLIENT_CERT_REQUIRE);

        /* A client certificate from another CA, or none at all, is refused. */
        assert_int_equal(call_tls(port, &foreign, NULL), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(call_tls(port, &anonymous, NULL), GRPC_STATUS_UNAVAILABLE);
        /* The server's certificate does not chain to the client's roots. */
        assert_int_equal(call_tls(port, &wrong_roots, NULL), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(atomic_load(&handler_calls), 0);
        test_server_done(&t);
}

/* One call; returns the status, *ret_details its details. */
static int call_details(int port, const RpcTlsClientConfig *cfg, char **ret_details) {
        _cleanup_free_ char *target = NULL;
        RpcChannel *ch = NULL;
        int status = -1;

        assert_true(asprintf(&target, "127.0.0.1:%d", port) > 0);
        assert_ok(rpc_channel_new_tls(target, cfg, &ch));
        assert_ok(rpc_unary(ch, "/test.Tls/WhoAmI", NULL, 0, "", 0, 5000, NULL, NULL, &status,
                            ret_details));
        rpc_channel_free(ch);
        return status;
}

/* Handshake refusals are told apart by their details: the server's chain not verifying
 * against our roots, the server's ID not being the expected one (naming both IDs), and
 * neither for a server that refuses our certificate or is not there at all. */
static void test_tls_failure_details(void **state) {
        RpcTlsClientConfig wrong_id = {pki.ca->pem, pki.client_cert, pki.client_key,
                                       "spiffe://example.org/warden/impostor"};
        RpcTlsClientConfig wrong_roots = {pki.other_ca->pem, pki.client_cert, pki.client_key,
                                          SERVER_ID};
        RpcTlsClientConfig foreign = {pki.ca->pem, pki.foreign_cert, pki.foreign_key, SERVER_ID};
        TestServer t;
        int port = start_tls(&t, RPC_CLIENT_CERT_REQUIRE);
        const char *reason = NULL;
        char *details = NULL;

        assert_int_equal(call_details(port, &wrong_id, &details), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(rpc_tls_failure_from_details(details, &reason), RPC_TLS_FAILURE_SERVER_ID);
        assert_string_equal(reason,
                            RPC_TLS_ID_MISMATCH ": presented " SERVER_ID
                                                ", expected spiffe://example.org/warden/impostor");
        free(details);

        assert_int_equal(call_details(port, &wrong_roots, &details), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(rpc_tls_failure_from_details(details, &reason), RPC_TLS_FAILURE_UNTRUSTED);
        assert_non_null(reason);
        free(details);

        /* The server refuses us: not a reason to distrust the server. */
        assert_int_equal(call_details(port, &foreign, &details), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(rpc_tls_failure_from_details(details, NULL), RPC_TLS_FAILURE_NONE);
        free(details);
        test_server_done(&t);

        /* Nobody listens any more. */
        assert_int_equal(call_details(port, &wrong_id, &details), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(rpc_tls_failure_from_details(details, NULL), RPC_TLS_FAILURE_NONE);
        free(details);
        assert_int_equal(rpc_tls_failure_from_details(NULL, &reason), RPC_TLS_FAILURE_NONE);
        assert_null(reason);
        assert_int_equal(rpc_tls_failure_from_details("tls: CERTIFICATE_VERIFY_FAILED", NULL),
                         RPC_TLS_FAILURE_UNTRUSTED);
}

static void test_optional_client_cert(void **state) {
        RpcTlsClientConfig anonymous = {pki.ca->pem, NULL, NULL, SERVER_ID};
        RpcTlsClientConfig mtls = {pki.ca->pem, pki.client_cert, pki.client_key, SERVER_ID};
        RpcTlsClientConfig foreign = {pki.ca->pem, pki.foreign_cert, pki.foreign_key, SERVER_ID};
        TestServer t;
        char *resp = NULL;
        int port = start_tls(&t, RPC_CLIENT_CERT_OPTIONAL);

        assert_int_equal(call_tls(port, &anonymous, &resp), GRPC_STATUS_OK);
        assert_string_equal(resp, "none");
        free(resp);
        assert_int_equal(call_tls(port, &mtls, &resp), GRPC_STATUS_OK);
        assert_string_equal(resp, CLIENT_ID);
        free(resp);
        /* Optional still means verified when presented. */
        assert_int_not_equal(call_tls(port, &foreign, NULL), GRPC_STATUS_OK);
        test_server_done(&t);
}

static void test_rotation(void **state) {
        const char *new_id = "spiffe://example.org/warden/server2";
        RpcTlsClientConfig old_cfg = {pki.ca->pem, pki.client_cert, pki.client_key, SERVER_ID};
        RpcTlsClientConfig new_cfg = {pki.ca->pem, pki.client_cert, pki.client_key, new_id};
        _cleanup_free_ char *cert = NULL, *key = NULL;
        TestServer t;
        int port = start_tls(&t, RPC_CLIENT_CERT_REQUIRE);

        assert_int_equal(call_tls(port, &old_cfg, NULL), GRPC_STATUS_OK);
        assert_int_not_equal(call_tls(port, &new_cfg, NULL), GRPC_STATUS_OK);

        test_ca_issue(pki.ca, new_id, &cert, &key);
        /* Bad material is refused and changes nothing. */
        assert_errno(
                rpc_server_update_tls(t.s, &(RpcTlsServerConfig){pki.ca->pem, cert, pki.server_key,
                                                                 RPC_CLIENT_CERT_REQUIRE}),
                EINVAL);
        assert_int_equal(call_tls(port, &old_cfg, NULL), GRPC_STATUS_OK);

        assert_ok(rpc_server_update_tls(
                t.s, &(RpcTlsServerConfig){pki.ca->pem, cert, key, RPC_CLIENT_CERT_REQUIRE}));
        /* New connections see the new certificate. */
        assert_int_equal(call_tls(port, &new_cfg, NULL), GRPC_STATUS_OK);
        assert_int_not_equal(call_tls(port, &old_cfg, NULL), GRPC_STATUS_OK);
        test_server_done(&t);
}

/* The client certificate's serial reaches the handler, per certificate; none without
 * one. */
static void test_cert_serial(void **state) {
        _cleanup_free_ char *cert2 = NULL, *key2 = NULL, *want1 = NULL, *want2 = NULL;
        RpcTlsClientConfig mtls = {pki.ca->pem, pki.client_cert, pki.client_key, SERVER_ID};
        RpcTlsClientConfig anonymous = {pki.ca->pem, NULL, NULL, SERVER_ID};
        TestServer t;
        char *resp = NULL;
        int port = start_tls(&t, RPC_CLIENT_CERT_OPTIONAL);

        test_ca_issue(pki.ca, CLIENT_ID, &cert2, &key2);
        want1 = pem_serial(pki.client_cert);
        want2 = pem_serial(cert2);
        assert_string_not_equal(want1, want2);
        for (int i = 0; i < 2; i++) { /* parsed, then cached */
                assert_int_equal(call_method(port, "/test.Tls/Serial", &mtls, &resp),
                                 GRPC_STATUS_OK);
                assert_string_equal(resp, want1);
                free(resp);
        }
        mtls = (RpcTlsClientConfig){pki.ca->pem, cert2, key2, SERVER_ID};
        assert_int_equal(call_method(port, "/test.Tls/Serial", &mtls, &resp), GRPC_STATUS_OK);
        assert_string_equal(resp, want2);
        free(resp);
        assert_int_equal(call_method(port, "/test.Tls/Serial", &anonymous, &resp), GRPC_STATUS_OK);
        assert_string_equal(resp, "none");
        free(resp);
        test_server_done(&t);
}

/* The cache itself: same answer as a parse, hits after the first lookup, distinct
 * certificates kept apart, bad input refused; and what a hit saves (printed). */
static void test_serial_cache(void **state) {
        _cleanup_free_ char *cert2 = NULL, *key2 = NULL, *want = NULL, *big = NULL;
        RpcSerialCache *c = NULL;
        size_t len = strlen(pki.client_cert);
        uint64_t hits, misses;
        char *s = NULL;
        double t0, t_hit, t_parse;
        const int n = 2000;

        test_ca_issue(pki.ca, CLIENT_ID, &cert2, &key2);
        want = pem_serial(pki.client_cert);
        assert_ok(rpc_serial_cache_new(&c));
        for (int i = 0; i < 3; i++) {
                assert_ok(rpc_serial_cache_get(c, pki.client_cert, len, &s));
                assert_string_equal(s, want);
                free(s);
        }
        rpc_serial_cache_stats(c, &hits, &misses);
        assert_int_equal(hits, 2);
        assert_int_equal(misses, 1);
        assert_ok(rpc_serial_cache_get(c, cert2, strlen(cert2), &s));
        assert_string_not_equal(s, want);
        free(s);
        /* Not NUL-terminated at len: only len bytes count. */
        assert_ok(rpc_serial_cache_get(c, pki.client_cert, len, &s));
        assert_string_equal(s, want);
        free(s);

        assert_errno(rpc_serial_cache_get(c, "junk", 4, &s), EBADMSG);
        assert_errno(rpc_serial_cache_get(c, pki.client_cert, 0, &s), EINVAL);
        big = calloc(1, RPC_SERIAL_PEM_MAX + 2);
        assert_non_null(big);
        memcpy(big, pki.client_cert, len);
        memset(big + len, '\n', RPC_SERIAL_PEM_MAX - len); /* exactly at the cap: fine */
        assert_ok(rpc_serial_cache_get(c, big, RPC_SERIAL_PEM_MAX, &s));
        assert_string_equal(s, want);
        free(s);
        big[RPC_SERIAL_PEM_MAX] = '\n';
        assert_errno(rpc_serial_cache_get(c, big, RPC_SERIAL_PEM_MAX + 1, &s), EMSGSIZE);

        t0 = now_us();
        for (int i = 0; i < n; i++) {
                assert_ok(rpc_serial_cache_get(c, pki.client_cert, len, &s));
                free(s);
        }
        t_hit = (now_us() - t0) / n;
        t0 = now_us();
        for (int i = 0; i < n / 10; i++)
                free(pem_serial(pki.client_cert));
        t_parse = (now_us() - t0) / (n / 10);
        printf("serial of a %zu-byte PEM: %.2f us from the cache, %.1f us parsed\n", len, t_hit,
               t_parse);
        assert_true(t_hit < t_parse);
        rpc_serial_cache_free(c);
}

/* gRPC would set SO_REUSEPORT: a second listener on the same port must fail instead of
 * sharing the connections with the first. */
static void test_port_not_shared(void **state) {
        RpcTlsServerConfig cfg = {pki.ca->pem, pki.server_cert, pki.server_key,
                                  RPC_CLIENT_CERT_OPTIONAL};
        RpcServer *a = NULL, *b = NULL;
        char addr[64];
        int port = 0, port2 = 0;

        assert_ok(rpc_server_new(&a));
        assert_ok(rpc_server_listen_tls(a, "127.0.0.1:0", &cfg, &port));
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        assert_errno(rpc_tcp_check_bind(addr), EADDRINUSE);
        assert_ok(rpc_server_new(&b));
        assert_errno(rpc_server_listen_tls(b, addr, &cfg, &port2), EADDRINUSE);
        assert_int_equal(port2, 0);
        rpc_server_free(b);
        rpc_server_free(a);
        /* Free again once the listener is gone. */
        assert_ok(rpc_tcp_check_bind(addr));
        assert_ok(rpc_tcp_check_bind("127.0.0.1:0"));
        assert_ok(rpc_tcp_check_bind("[::1]:0"));
        assert_errno(rpc_tcp_check_bind("localhost:1"), EINVAL);
        assert_errno(rpc_tcp_check_bind("127.0.0.1"), EINVAL);
        assert_errno(rpc_tcp_check_bind("127.0.0.1:70000"), EINVAL);
        assert_errno(rpc_tcp_check_bind("[::1:1"), EINVAL);
}

static void test_bad_configs(void **state) {
        RpcServer *s = NULL;
        RpcChannel *ch = NULL;
        int port;

        assert_ok(rpc_server_new(&s));
        assert_errno(rpc_server_update_tls(s, &(RpcTlsServerConfig){pki.ca->pem, pki.server_cert,
                                                                    pki.server_key,
                                                                    RPC_CLIENT_CERT_REQUIRE}),
                     ENOENT);
        assert_errno(rpc_server_listen_tls(s, "127.0.0.1:0",
                                           &(RpcTlsServerConfig){"garbage", pki.server_cert,
                                                                 pki.server_key,
                                                                 RPC_CLIENT_CERT_REQUIRE},
                                           &port),
                     EINVAL);
        /* Key of another certificate. */
        assert_errno(rpc_server_listen_tls(s, "127.0.0.1:0",
                                           &(RpcTlsServerConfig){pki.ca->pem, pki.server_cert,
                                                                 pki.client_key,
                                                                 RPC_CLIENT_CERT_REQUIRE},
                                           &port),
                     EINVAL);
        rpc_server_free(s);

        /* Listening but never started: freeing tears everything down. */
        assert_ok(rpc_server_new(&s));
        assert_ok(rpc_server_listen_tls(s, "127.0.0.1:0",
                                        &(RpcTlsServerConfig){pki.ca->pem, pki.server_cert,
                                                              pki.server_key,
                                                              RPC_CLIENT_CERT_OPTIONAL},
                                        &port));
        assert_true(port > 0);
        rpc_server_free(s);

        assert_errno(rpc_channel_new_tls("127.0.0.1:1",
                                         &(RpcTlsClientConfig){pki.ca->pem, NULL, NULL, NULL}, &ch),
                     EINVAL);
        assert_errno(rpc_channel_new_tls(
                             "127.0.0.1:1",
                             &(RpcTlsClientConfig){pki.ca->pem, NULL, NULL, "https://example.org"},
                             &ch),
                     EINVAL);
        assert_errno(rpc_channel_new_tls(
                             "127.0.0.1:1",
                             &(RpcTlsClientConfig){pki.ca->pem, pki.client_cert, NULL, SERVER_ID},
                             &ch),
                     EINVAL);
        assert_errno(
                rpc_channel_new_tls("127.0.0.1:1",
                                    &(RpcTlsClientConfig){"-----BEGIN CERTIFICATE-----\nAAAA\n",
                                                          NULL, NULL, SERVER_ID},
                                    &ch),
                EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mtls_identity),        cmocka_unit_test(test_mtls_refusals),
                cmocka_unit_test(test_optional_client_cert), cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_bad_configs),          cmocka_unit_test(test_cert_serial),
                cmocka_unit_test(test_serial_cache),         cmocka_unit_test(test_port_not_shared),
                cmocka_unit_test(test_tls_failure_details),
        };
        return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
