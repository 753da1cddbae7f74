/* SPDX-License-Identifier: Apache-2.0 */
/* The TCP front of TLS listeners (rpc_front.c, rpc_relay.c): calls go through the relay
 * and know the client's address; a relay socket path is used and removed again; the
 * per-address cap closes one connection too many at once; an unauthenticated
 * connection is closed after the handshake timeout, an authenticated one is not; the
 * observer and the counters see each refusal; bad limits are refused. */

#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "rpc.h"
#include "rpc_client.h"
#include "rpc_testutil.h"
#include "testlib.h"

#define SERVER_ID "spiffe://example.org/warden/server"
#define CLIENT_ID "spiffe://example.org/warden/agent/join_token/abc"

static TestCa *ca;
static char *server_cert, *server_key, *client_cert, *client_key;
static atomic_uint events[_RPC_TCP_EVENT_MAX];

static int pki_setup(void **state) {
        ca = test_ca_new("warden test CA");
        test_ca_issue(ca, SERVER_ID, &server_cert, &server_key);
        test_ca_issue(ca, CLIENT_ID, &client_cert, &client_key);
        return 0;
}

static int pki_teardown(void **state) {
        test_ca_free(ca);
        free(server_cert);
        free(server_key);
        free(client_cert);
        free(client_key);
        return 0;
}

/* Replies with the caller's address. */
static void source(RpcCall *c, void *userdata) {
        const RpcPeer *p = rpc_call_peer(c);

        assert_ok(rpc_call_reply(c, p->source, strlen(p->source)));
}

static void on_event(RpcTcpEvent ev, const char *src, void *userdata) {
        assert_true(ev < _RPC_TCP_EVENT_MAX);
        atomic_fetch_add(&events[ev], 1);
}

static int start(TestServer *t, const RpcTcpLimits *l, bool relay_path) {
        RpcTlsServerConfig cfg = {ca->pem, server_cert, server_key, RPC_CLIENT_CERT_REQUIRE};
        _cleanup_free_ char *path = NULL;
        int port = 0;

        for (size_t i = 0; i < _RPC_TCP_EVENT_MAX; i++)
                atomic_store(&events[i], 0);
        test_server_init(t);
        assert_ok(rpc_server_add_method(t->s, "/test.Front/Source", RPC_UNARY, source, NULL, 0));
        if (l)
                assert_ok(rpc_server_set_tcp_limits(t->s, l));
        rpc_server_set_tcp_observer(t->s, on_event, NULL);
        if (relay_path) {
                assert_true(asprintf(&path, "%s/relay.sock", t->dir) > 0);
                assert_ok(rpc_server_set_relay_socket(t->s, path));
        }
        assert_ok(rpc_server_listen_tls(t->s, "127.0.0.1:0", &cfg, &port));
        test_server_run(t);
        return port;
}

static int call_source(int port, char **ret) {
        RpcTlsClientConfig cfg = {ca->pem, client_cert, client_key, SERVER_ID};
        _cleanup_free_ char *target = NULL;
        RpcChannel *ch = NULL;
        void *resp = NULL;
        int status = -1;

        assert_true(asprintf(&target, "127.0.0.1:%d", port) > 0);
        assert_ok(rpc_channel_new_tls(target, &cfg, &ch));
        assert_ok(rpc_unary(ch, "/test.Front/Source", NULL, 0, "", 0, 5000, &resp, NULL, &status,
                            NULL));
        rpc_channel_free(ch);
        *ret = resp;
        return status;
}

static int tcp_connect(int port) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_ok(connect(fd, (struct sockaddr *) &sa, sizeof(sa)));
        return fd;
}

/* Whether the server closed fd within timeout_ms (end-of-file or reset). */
static bool closed_within(int fd, int timeout_ms) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;

        if (poll(&p, 1, timeout_ms) <= 0)
                return false;
        return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static bool source_at(void *userdata) {
        return atomic_load(&events[RPC_TCP_REFUSED_SOURCE]) >= *(unsigned *) userdata;
}

/* A call through the relay: answered, and it knows its client's address; the relay
 * socket exists while the server runs and is gone after. */
static void test_source(void **state) {
        _cleanup_free_ char *resp = NULL, *path = NULL;
        RpcServerStats st;
        TestServer t;
        struct stat sb;
        int port = start(&t, NULL, true);

        assert_int_equal(call_source(port, &resp), 0);
        assert_string_equal(resp, "127.0.0.1");
        rpc_server_get_stats(t.s, &st);
        assert_true(st.tcp_connections_accepted >= 1);
        /* The default, or what the open file limit allows. */
        assert_true(st.tcp_max_connections > 0);
        assert_true(st.tcp_max_connections <= RPC_DEFAULT_TCP_MAX_CONNECTIONS);
        assert_true(asprintf(&path, "%s/relay.sock", t.dir) > 0);
        assert_ok(stat(path, &sb));
        assert_true(S_ISSOCK(sb.st_mode));
        test_server_stop_owner(&t);
        rpc_server_shutdown(t.s);
        assert_int_equal(stat(path, &sb), -1);
        test_server_done(&t);
}

/* Cap 2 per address: the third raw connection is closed at once, counted and
 * observed; the first two stay; once one goes, a new one is let in. */
static void test_source_cap(void **state) {
        RpcTcpLimits l = {.max_connections = 100, .max_unauth_per_source = 2};
        _cleanup_close_ int a = -EBADF, b = -EBADF, c = -EBADF, d = -EBADF;
        _cleanup_free_ char *resp = NULL;
        unsigned one = 1;
        RpcServerStats st;
        TestServer t;
        int port = start(&t, &l, false);

        a = tcp_connect(port);
        b = tcp_connect(port);
        c = tcp_connect(port);
        assert_true(closed_within(c, 5000));
        assert_true(test_wait_for(source_at, &one, 5000));
        assert_false(closed_within(a, 50));
        assert_false(closed_within(b, 0));
        rpc_server_get_stats(t.s, &st);
        assert_int_equal(st.tcp_refused_source, 1);
        /* A TLS client is refused as well while two are unauthenticated... */
        assert_int_not_equal(call_source(port, &resp), 0);
        free(resp);
        resp = NULL;
        /* ...and served once one of them went. */
        closep(&a);
        for (int i = 0; i < 100; i++) {
                if (call_source(port, &resp) == 0)
                        break;
                free(resp);
                resp = NULL;
                usleep(20000);
        }
        assert_non_null(resp);
        assert_string_equal(resp, "127.0.0.1");
        d = tcp_connect(port); /* the TLS connection is authenticated: not counted */
        assert_false(closed_within(d, 50));
        test_server_done(&t);
}

/* Handshake timeout 300 ms: a silent connection is closed after it (not before); a
 * connection that made a call stays. */
static void test_handshake_timeout(void **state) {
        RpcTcpLimits l = {.max_connections = 100, .handshake_timeout_ms = 300};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *resp = NULL;
        TestServer t;
        int port = start(&t, &l, false);
        uint64_t t0;

        fd = tcp_connect(port);
        t0 = test_now_ms();
        assert_true(closed_within(fd, 10000));
        assert_true(test_now_ms() - t0 >= 250);
        assert_int_equal(atomic_load(&events[RPC_TCP_HANDSHAKE_TIMEOUT]), 1);
        /* An authenticated connection outlives the timeout: the same channel calls again
         * after it. */
        {
                RpcTlsClientConfig cfg = {ca->pem, client_cert, client_key, SERVER_ID};
                _cleanup_free_ char *target = NULL;
                RpcChannel *ch = NULL;
                int status = -1;
                void *r = NULL;

                assert_true(asprintf(&target, "127.0.0.1:%d", port) > 0);
                assert_ok(rpc_channel_new_tls(target, &cfg, &ch));
                assert_ok(rpc_unary(ch, "/test.Front/Source", NULL, 0, "", 0, 5000, &r, NULL,
                                    &status, NULL));
                assert_int_equal(status, 0);
                free(r);
                usleep(600 * 1000);
                assert_ok(rpc_unary(ch, "/test.Front/Source", NULL, 0, "", 0, 5000, &r, NULL,
                                    &status, NULL));
                assert_int_equal(status, 0);
                free(r);
                rpc_channel_free(ch);
        }
        assert_int_equal(atomic_load(&events[RPC_TCP_HANDSHAKE_TIMEOUT]), 1);
        test_server_done(&t);
}

static void test_bad_limits(void **state) {
        RpcServer *s = NULL;
        char path[200];

        assert_ok(rpc_server_new(&s));
        assert_errno(rpc_server_set_tcp_limits(s, &(RpcTcpLimits){.max_connections = 0}), EINVAL);
        assert_errno(rpc_server_set_tcp_limits(s, NULL), EINVAL);
        assert_errno(rpc_server_set_relay_socket(s, "relative.sock"), EINVAL);

        memset(path, 'a', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = '\0';
        assert_errno(rpc_server_set_relay_socket(s, path), ENAMETOOLONG);
        rpc_server_free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_source),
                cmocka_unit_test(test_source_cap),
                cmocka_unit_test(test_handshake_timeout),
                cmocka_unit_test(test_bad_limits),
        };

        return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
