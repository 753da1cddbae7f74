/* SPDX-License-Identifier: Apache-2.0 */
/* Real HTTP over loopback: libmicrohttpd serves, a plain socket client asks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cleanup.h"
#include "health_http.h"
#include "log.h"
#include "metrics.h"
#include "testlib.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsRegistry *, metrics_registry_free);

typedef struct Response {
        int status; /* 0: the server closed without a status line */
        char *head; /* status line and headers */
        char *body;
} Response;

static void response_done(Response *r) {
        free(r->head);
        free(r->body);
        *r = (Response){};
}

/* Sends raw (a whole request) to family/port on loopback and reads until EOF. */
static int http_raw(int family, uint16_t port, const char *raw, size_t raw_len, Response *ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct sockaddr_storage ss = {};
        struct timeval tv = {.tv_sec = 15};
        size_t size = 0;
        socklen_t len;
        char *sep;
        int r;

        if (family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                a->sin6_family = AF_INET6;
                a->sin6_addr = in6addr_loopback;
                a->sin6_port = htons(port);
                len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *) &ss;
                a->sin_family = AF_INET;
                a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                a->sin_port = htons(port);
                len = sizeof(*a);
        }
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &ss, len) < 0)
                return -errno;
        for (size_t off = 0; off < raw_len;) {
                ssize_t k = send(fd, raw + off, raw_len - off, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EPIPE || errno == ECONNRESET)
                                break; /* the server refused early; read its answer */
                        return -errno;
                }
                off += (size_t) k;
        }
        r = test_read_fd(fd, &buf, &size);
        if (r < 0)
                return r;
        *ret = (Response){};
        if (sscanf(buf, "HTTP/1.%*1[01] %3d ", &ret->status) != 1)
                ret->status = 0;
        sep = strstr(buf, "\r\n\r\n");
        ret->head = strndup(buf, sep ? (size_t) (sep - buf) : size);
        ret->body = strdup(sep ? sep + 4 : "");
        return 0;
}

static int http_str(int family, uint16_t port, const char *raw, Response *ret) {
        return http_raw(family, port, raw, strlen(raw), ret);
}

static int http(uint16_t port, const char *method, const char *path, Response *ret) {
        _cleanup_free_ char *req = NULL;
        int n;

        n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", method,
                     path);
        if (n < 0)
                return -ENOMEM;
        return http_raw(AF_INET, port, req, (size_t) n, ret);
}

static void expect(uint16_t port, const char *path, int status, const char *body) {
        Response r = {};

        assert_ok(http(port, "GET", path, &r));
        if (r.status != status)
                fail_msg("GET %s: status %d, expected %d", path, r.status, status);
        if (body)
                assert_string_equal(r.body, body);
        response_done(&r);
}

typedef struct ReadyState {
        atomic_bool ready;
        atomic_int calls;
        pthread_t caller;
} ReadyState;

static bool ready_cb(void *userdata, const char **ret_reason) {
        ReadyState *st = userdata;

        st->caller = pthread_self();
        atomic_fetch_add(&st->calls, 1);
        if (atomic_load(&st->ready))
                return true;
        *ret_reason = "no SVID yet";
        return false;
}

static void test_parse_address(void **state) {
        static const char *const good[] = {
                "127.0.0.1:9090", "127.1.2.3:0",          "localhost:80",
                "[::1]:9090",     "[::ffff:127.0.0.1]:1", "127.0.0.1:65535",
        };
        static const char *const bad[] = {
                "",
                "127.0.0.1",
                "127.0.0.1:",
                "127.0.0.1:65536",
                "127.0.0.1:-1",
                "127.0.0.1:0x50",
                ":9090",
                "[::1]9090",
                "::1:9090",
                "[::1:9090",
                "[]:80",
                "[127.0.0.1]:80",
                "example.com:80",
                "127.0.0.1 :80",
                "127.0.0.01:80",
                "127.1:80",
        };
        static const char *const remote[] = {
                "0.0.0.0:9090",     "10.1.2.3:80",          "[::]:80",
                "[2001:db8::1]:80", "[::ffff:10.0.0.1]:80",
        };
        struct sockaddr_storage ss;
        socklen_t len;
        const char *reason;
        char longaddr[HEALTH_HTTP_ADDRESS_MAX + 2];
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                reason = NULL;
                if (health_http_parse_address(good[i], false, &ss, &len, &reason) < 0)
                        fail_msg("%s refused: %s", good[i], reason);
        }
        assert_ok(health_http_parse_address("127.0.0.1:9090", false, &ss, &len, &reason));
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(len, sizeof(struct sockaddr_in));
        assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 9090);
        assert_ok(health_http_parse_address("localhost:1", false, &ss, &len, &reason));
        assert_int_equal(ntohl(((struct sockaddr_in *) &ss)->sin_addr.s_addr), INADDR_LOOPBACK);
        assert_ok(health_http_parse_address("[::1]:443", false, &ss, &len, &reason));
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(ntohs(((struct sockaddr_in6 *) &ss)->sin6_port), 443);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                reason = NULL;
                if (health_http_parse_address(bad[i], true, &ss, &len, &reason) != -EINVAL)
                        fail_msg("\"%s\" accepted", bad[i]);
                assert_non_null(reason);
        }
        assert_errno(health_http_parse_address(NULL, true, &ss, &len, NULL), EINVAL);
        memset(longaddr, '1', sizeof(longaddr));
        longaddr[HEALTH_HTTP_ADDRESS_MAX + 1] = 0;
        assert_errno(health_http_parse_address(longaddr, true, &ss, &len, &reason), EINVAL);
        assert_string_equal(reason, "address too long");

        for (size_t i = 0; i < ELEMENTSOF(remote); i++) {
                reason = NULL;
                assert_errno(health_http_parse_address(remote[i], false, &ss, &len, &reason),
                             EPERM);
                assert_non_null(strstr(reason, "loopback"));
                assert_ok(health_http_parse_address(remote[i], true, &ss, &len, &reason));
        }
}

static void test_endpoints(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        _cleanup_(health_http_stopp) HealthHttp *h = NULL;
        ReadyState st = {};
        Metric *calls = NULL;
        Response r = {};
        uint16_t port;
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_counter_new(reg, "t_calls_total", "Calls.", METRICS_LABELS("code"),
                                      &calls));
        assert_ok(metrics_counter_inc(calls, METRICS_LABELS("OK")));
        assert_ok(health_http_start(&(HealthHttpConfig){.address = "127.0.0.1:0",
                                                        .metrics = reg,
                                                        .ready = ready_cb,
                                                        .userdata = &st},
                                    &h, NULL));
        port = health_http_port(h);
        assert_true(port > 0);

        expect(port, "/live", 200, "ok\n");
        expect(port, "/live?probe=1", 200, "ok\n"); /* the query is not part of the path */
        expect(port, "/ready", 503, "not ready: no SVID yet\n");
        assert_int_equal(atomic_load(&st.calls), 1);
        assert_false(pthread_equal(st.caller, pthread_self())); /* the HTTP thread */
        atomic_store(&st.ready, true);
        expect(port, "/ready", 200, "ready\n");

        assert_ok(http(port, "GET", "/metrics", &r));
        assert_int_equal(r.status, 200);
        assert_non_null(strcasestr(r.head, "Content-Type: text/plain; version=0.0.4"));
        assert_non_null(strcasestr(r.head, "Cache-Control: no-store"));
        assert_string_equal(r.body, "# HELP t_calls_total Calls.\n"
                                    "# TYPE t_calls_total counter\n"
                                    "t_calls_total{code=\"OK\"} 1\n");
        response_done(&r);
        assert_ok(metrics_counter_add(calls, METRICS_LABELS("OK"), 41));
        assert_ok(http(port, "GET", "/metrics", &r));
        assert_non_null(strstr(r.body, "t_calls_total{code=\"OK\"} 42\n"));
        response_done(&r);

        expect(port, "/", 404, "not found\n");
        expect(port, "/logger", 404, NULL); /* not asked for */
        expect(port, "/live/", 404, NULL);
        expect(port, "/metrics/x", 404, NULL);
        expect(port, "/LIVE", 404, NULL);

        static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                assert_ok(http(port, methods[i], "/live", &r));
                if (r.status != 405)
                        fail_msg("%s: status %d", methods[i], r.status);
                assert_non_null(strcasestr(r.head, "\r\nAllow: GET"));
                response_done(&r);
        }
        /* A POST with a body is refused without reading the body. */
        static const char post[] = "POST /ready HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                   "Connection: close\r\n\r\nhello";
        assert_ok(http_str(AF_INET, port, post, &r));
        assert_int_equal(r.status, 405);
        response_done(&r);
}

/* GET/PUT /logger through health_http_request(). */
static unsigned logger_call(HealthHttp *h, const char *method, const char *path, char **body) {
        char addr[64];
        unsigned status = 0;

        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned) health_http_port(h));
        assert_ok(health_http_request(addr, method, path, 5000, &status, body, NULL));
        return status;
}

static void test_logger(void **state) {
        _cleanup_(health_http_stopp) HealthHttp *h = NULL;
        int saved = log_get_max_level();
        const char *reason = NULL;
        char *body = NULL, addr[64];
        unsigned status = 0;
        (void) state;

        log_set_max_level(LOG_INFO);
        assert_ok(health_http_start(&(HealthHttpConfig){.address = "127.0.0.1:0", .logger = true},
                                    &h, NULL));
        assert_int_equal(logger_call(h, "GET", "/logger", &body), 200);
        assert_string_equal(body, "{\"current_level\": \"info\", \"launch_level\": \"info\"}\n");
        free(body);
        assert_int_equal(logger_call(h, "PUT", "/logger?level=debug", &body), 200);
        assert_string_equal(body, "{\"current_level\": \"debug\", \"launch_level\": \"info\"}\n");
        free(body);
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(logger_call(h, "PUT", "/logger?level=loud", &body), 400);
        free(body);
        assert_int_equal(logger_call(h, "PUT", "/logger", &body), 400);
        free(body);
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(logger_call(h, "PUT", "/logger?level=", &body), 200); /* reset */
        free(body);
        assert_int_equal(log_get_max_level(), LOG_INFO);
        health_http_set_launch_log_level(h, LOG_ERR);
        assert_int_equal(logger_call(h, "PUT", "/logger?level=", &body), 200);
        assert_string_equal(body, "{\"current_level\": \"error\", \"launch_level\": \"error\"}\n");
        free(body);
        assert_int_equal(logger_call(h, "DELETE", "/logger", &body), 405);
        free(body);

        /* The client: a closed port, a non-loopback address, a bad path. */
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned) health_http_port(h));
        h = health_http_stop(h);
        assert_errno(health_http_request(addr, "GET", "/logger", 2000, &status, &body, NULL),
                     ECONNREFUSED);
        assert_errno(health_http_request("10.1.2.3:80", "GET", "/", 2000, &status, &body, &reason),
                     EPERM);
        assert_non_null(reason);
        assert_errno(health_http_request(addr, "GET", "/a b", 2000, &status, &body, NULL), EINVAL);

        /* Never on an open address. */
        assert_ok(health_http_start(&(HealthHttpConfig){.address = "0.0.0.0:0",
                                                        .allow_non_loopback = true,
                                                        .logger = true},
                                    &h, NULL));
        expect(health_http_port(h), "/logger", 404, NULL);
        log_set_max_level(saved);
}

static void test_defaults(void **state) {
        _cleanup_(health_http_stopp) HealthHttp *h = NULL;
        Response r = {};
        (void) state;

        /* No registry, no callback: /metrics is 404, /ready always 200. */
        assert_ok(health_http_start(&(HealthHttpConfig){.address = "localhost:0"}, &h, NULL));
        expect(health_http_port(h), "/metrics", 404, NULL);
        expect(health_http_port(h), "/ready", 200, "ready\n");

        /* IPv6 loopback. */
        h = health_http_stop(h);
        assert_null(h);
        assert_ok(health_http_start(&(HealthHttpConfig){.address = "[::1]:0"}, &h, NULL));
        assert_ok(http_str(AF_INET6, health_http_port(h),
                           "GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "ok\n");
        response_done(&r);
        /* v6-only: the same port on 127.0.0.1 is not ours. */
        assert_errno(http(health_http_port(h), "GET", "/live", &r), ECONNREFUSED);
}

static void test_limits(void **state) {
        _cleanup_(health_http_stopp) HealthHttp *h = NULL;
        _cleanup_free_ char *big = NULL;
        Response r = {};
        size_t n = 0;
        uint16_t port;
        (void) state;

        assert_ok(health_http_start(&(HealthHttpConfig){.address = "127.0.0.1:0"}, &h, NULL));
        port = health_http_port(h);

        /* 64 KiB of headers: over the 16 KiB cap, refused with 431 (413 in older releases). */
        big = malloc(70000);
        assert_non_null(big);
        n += (size_t) sprintf(big, "GET /live HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; n < 65536; i++)
                n += (size_t) sprintf(big + n, "X-Filler-%d: %0100d\r\n", i, 0);
        n += (size_t) sprintf(big + n, "Connection: close\r\n\r\n");
        assert_ok(http_raw(AF_INET, port, big, n, &r));
        if (r.status != 431 && r.status != 413)
                fail_msg("oversized request got status %d", r.status);
        response_done(&r);

        /* Garbage request line: closed without an answer (or 400). */
        assert_ok(http_str(AF_INET, port, "\x01\x02garbage\r\n\r\n", &r));
        assert_true(r.status == 0 || r.status == 400);
        response_done(&r);
        assert_ok(http_str(AF_INET, port,
                           "GET /live HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n", &r));
        assert_int_equal(r.status, 505);
        response_done(&r);

        /* Still serving after all that. */
        expect(port, "/live", 200, "ok\n");
}

static int count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static void test_start_stop(void **state) {
        HealthHttp *h = NULL, *h2 = (HealthHttp *) 1;
        const char *reason = NULL;
        Response r = {};
        uint16_t port;
        int fds;
        (void) state;

        fds = count_fds();
        for (int i = 0; i < 3; i++) {
                assert_ok(
                        health_http_start(&(HealthHttpConfig){.address = "127.0.0.1:0"}, &h, NULL));
                port = health_http_port(h);
                expect(port, "/live", 200, "ok\n");
                /* The port is taken while we serve. */
                char addr[32];
                snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
                assert_errno(health_http_start(&(HealthHttpConfig){.address = addr}, &h2, NULL),
                             EADDRINUSE);
                assert_ptr_equal(h2, (HealthHttp *) 1);
                h = health_http_stop(h);
                assert_null(h);
                assert_errno(http(port, "GET", "/live", &r), ECONNREFUSED);
        }
        assert_int_equal(count_fds(), fds); /* no socket left behind */

        /* Non-loopback only with the explicit opt-in. */
        assert_errno(health_http_start(&(HealthHttpConfig){.address = "0.0.0.0:0"}, &h2, &reason),
                     EPERM);
        assert_non_null(reason);
        assert_errno(health_http_start(&(HealthHttpConfig){.address = "nonsense"}, &h2, &reason),
                     EINVAL);
        assert_errno(health_http_start(NULL, &h2, NULL), EINVAL);
        assert_ok(health_http_start(
                &(HealthHttpConfig){.address = "0.0.0.0:0", .allow_non_loopback = true}, &h, NULL));
        expect(health_http_port(h), "/live", 200, "ok\n");
        h = health_http_stop(h);
        assert_null(health_http_stop(NULL));
        assert_int_equal(health_http_port(NULL), 0);
}

static void test_route(void **state) {
        (void) state;

        assert_int_equal(health_http_route("GET", "/live", false), HEALTH_HTTP_LIVE);
        assert_int_equal(health_http_route("GET", "/ready", false), HEALTH_HTTP_READY);
        assert_int_equal(health_http_route("GET", "/metrics", true), HEALTH_HTTP_METRICS);
        assert_int_equal(health_http_route("GET", "/logger", true), HEALTH_HTTP_LOGGER_GET);
        assert_int_equal(health_http_route("PUT", "/logger", true), HEALTH_HTTP_LOGGER_PUT);
        assert_int_equal(health_http_route("GET", "/logger", false), HEALTH_HTTP_NOT_FOUND);
        assert_int_equal(health_http_route("PUT", "/logger", false), HEALTH_HTTP_BAD_METHOD);
        assert_int_equal(health_http_route("POST", "/live", true), HEALTH_HTTP_BAD_METHOD);
        assert_int_equal(health_http_route("get", "/live", true), HEALTH_HTTP_BAD_METHOD);
        assert_int_equal(health_http_route("GET", "/live/", true), HEALTH_HTTP_NOT_FOUND);
        assert_int_equal(health_http_route("GET", "", true), HEALTH_HTTP_NOT_FOUND);
        assert_int_equal(health_http_route(NULL, "/live", true), HEALTH_HTTP_NOT_FOUND);

        assert_int_equal(health_http_logger_level(NULL, LOG_INFO), -ENODATA);
        assert_int_equal(health_http_logger_level("", LOG_ERR), LOG_ERR);
        assert_int_equal(health_http_logger_level("DEBUG", LOG_INFO), LOG_DEBUG);
        assert_int_equal(health_http_logger_level("loud", LOG_INFO), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_address), cmocka_unit_test(test_endpoints),
                cmocka_unit_test(test_defaults),      cmocka_unit_test(test_limits),
                cmocka_unit_test(test_start_stop),    cmocka_unit_test(test_logger),
                cmocka_unit_test(test_route),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
