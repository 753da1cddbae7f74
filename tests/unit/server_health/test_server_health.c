/* SPDX-License-Identifier: Apache-2.0 */
/* server_new() with -healthAddress, over real loopback HTTP: /live, /ready from
 * "starting" through ready to "shutting down", /metrics with the server's own
 * families (datastore timings, signings), no endpoints without the flag, and a busy
 * health port failing server_new() cleanly (no leak, no admin socket left). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "server.h"
#include "testlib.h"

static char *tmpdir;

static int setup(void **state) {
        tmpdir = test_tmpdir();
        assert_non_null(tmpdir);
        return 0;
}

static int teardown(void **state) {
        test_rmdir_free(tmpdir);
        tmpdir = NULL;
        return 0;
}

/* A valid config in tmpdir; health may be NULL. */
static void config(ServerConfig *c, const char *name, const char *health) {
        *c = (ServerConfig){
                .trust_domain = strdup("example.org"),
                .bind_address = strdup("127.0.0.1"),
                .log_level = LOG_INFO,
                .default_x509_ttl = 3600,
                .default_jwt_ttl = 300,
                .ca_ttl = 86400,
                .ca_key_type = WARDEN_KEY_EC_P256,
                .health_address = health ? strdup(health) : NULL,
        };
        assert_true(asprintf(&c->data_dir, "%s/%s.data", tmpdir, name) > 0);
        assert_true(asprintf(&c->socket_path, "%s/%s.sock", tmpdir, name) > 0);
}

typedef struct Response {
        int status;
        char *body;
} Response;

/* GET path from 127.0.0.1:port (HTTP/1.0, read until EOF). */
static void http_get(uint16_t port, const char *path, Response *ret) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        struct timeval tv = {.tv_sec = 15};
        _cleanup_free_ char *req = NULL, *buf = NULL;
        char *sep;
        int n;

        assert_true(fd >= 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_ok(connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ? -errno : 0);
        n = asprintf(&req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
        assert_true(n > 0);
        assert_int_equal(send(fd, req, (size_t) n, MSG_NOSIGNAL), n);
        assert_ok(test_read_fd(fd, &buf, NULL));
        assert_int_equal(sscanf(buf, "HTTP/1.%*1[01] %3d ", &ret->status), 1);
        sep = strstr(buf, "\r\n\r\n");
        assert_non_null(sep);
        ret->body = strdup(sep + 4);
}

static void expect(uint16_t port, const char *path, int status, const char *body) {
        Response r = {};

        http_get(port, path, &r);
        if (r.status != status)
                fail_msg("GET %s: status %d, expected %d (%s)", path, r.status, status, r.body);
        if (body && !strstr(r.body, body))
                fail_msg("GET %s: body does not contain '%s':\n%s", path, body, r.body);
        free(r.body);
}

/* Signs one X509-SVID through the server, as the admin and node APIs do. */
static void sign_one(Server *s) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(server_sign_x509_svid(s, METRICS_KIND_X509_SVID, key, "spiffe://example.org/w",
                                        NULL, 0, 60, time(NULL), &chain));
        assert_int_equal(sk_X509_num(chain), 1);
}

static void test_endpoints(void **state) {
        ServerConfig c;
        Server *s = NULL;
        int64_t n = 0;
        uint16_t port;

        config(&c, "a", "127.0.0.1:0");
        assert_ok(server_new(&c, &s));
        assert_null(c.trust_domain); /* taken over */
        assert_non_null(s->health);
        port = health_http_port(s->health);
        assert_true(port > 0);

        expect(port, "/live", 200, "ok\n");
        expect(port, "/ready", 503, "not ready: starting\n");
        server_set_ready(s, SERVER_READY);
        expect(port, "/ready", 200, "ready\n");

        /* What the server measures shows up on /metrics. */
        expect(port, "/metrics", 200, "# TYPE warden_server_signings_total counter\n");
        assert_ok(ds_count_entries(s->ds, &n));
        sign_one(s);
        sign_one(s);
        expect(port, "/metrics", 200,
               "warden_server_datastore_seconds_count{op=\"count_entries\"} 1\n");
        expect(port, "/metrics", 200, "warden_server_signings_total{kind=\"x509_svid\"} 2\n");
        expect(port, "/metrics", 200,
               "warden_server_signing_seconds_count{kind=\"x509_svid\"} 2\n");
        expect(port, "/metrics", 200, "warden_server_agent_streams 0\n");

        server_set_ready(s, SERVER_STOPPING);
        expect(port, "/ready", 503, "not ready: shutting down\n");
        expect(port, "/live", 200, "ok\n");
        s = server_free(s);
        assert_null(s);
}

static void test_no_endpoints(void **state) {
        ServerConfig c;
        Server *s = NULL;
        MetricSeries *series = NULL;

        config(&c, "b", NULL);
        assert_ok(server_new(&c, &s));
        assert_null(s->health);
        /* Metrics are collected all the same. */
        sign_one(s);
        assert_ok(metrics_series_get(s->metrics.signings, METRICS_LABELS(METRICS_KIND_X509_SVID),
                                     &series));
        assert_int_equal(metrics_series_value(series), 1);
        server_free(s);
}

static void test_busy_port(void **state) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof(a);
        _cleanup_free_ char *addr = NULL, *sock = NULL;
        ServerConfig c;
        Server *s = NULL;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_ok(bind(fd, (struct sockaddr *) &a, sizeof(a)));
        assert_ok(listen(fd, 1));
        assert_ok(getsockname(fd, (struct sockaddr *) &a, &len));
        assert_true(asprintf(&addr, "127.0.0.1:%u", (unsigned) ntohs(a.sin_port)) > 0);

        config(&c, "c", addr);
        sock = strdup(c.socket_path);
        assert_errno(server_new(&c, &s), EADDRINUSE);
        assert_null(s);
        server_config_done(&c);
        /* Everything built before the failure was torn down, the admin socket too. */
        assert_int_equal(access(sock, F_OK), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_endpoints, setup, teardown),
                cmocka_unit_test_setup_teardown(test_busy_port, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
