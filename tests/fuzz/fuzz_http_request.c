/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP requests to the health endpoints (common/health_http.c). The first byte picks:
 *   even: the routing itself: "METHOD\nURL[\nLEVEL]" through health_http_route() and
 *         health_http_logger_level() (bit 1: /logger served). Checked against a plain
 *         restatement of the table in health_http.h; a level is one of the four and
 *         names itself.
 *   odd:  the rest as raw bytes of a request (and an empty line) to a real health server
 *         on loopback (GET and PUT /logger served, a metrics registry, a ready callback
 *         that says no):
 *         libmicrohttpd parses the request line and headers, our handler answers.
 *         Whatever comes back is a status line with a status the server can give.
 * The process's log level is put back after every request (PUT /logger changes it). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include "health_http.h"
#include "log.h"
#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LEVEL LOG_CRIT
#define FUZZ_RESPONSE_MAX (256 * 1024)
/* An answer comes within a millisecond; libmicrohttpd waits (10 s) on a request it
 * cannot finish parsing, which is not worth waiting for. */
#define FUZZ_WAIT_USEC 50000

static bool is(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* health_http.h's table, restated. */
static HealthHttpRoute expected_route(const char *method, const char *url, bool logger) {
        if (logger && is(url, "/logger") && is(method, "PUT"))
                return HEALTH_HTTP_LOGGER_PUT;
        if (!is(method, "GET"))
                return HEALTH_HTTP_BAD_METHOD;
        if (is(url, "/live") || is(url, "/ready") || is(url, "/metrics"))
                return is(url, "/live")    ? HEALTH_HTTP_LIVE
                       : is(url, "/ready") ? HEALTH_HTTP_READY
                                           : HEALTH_HTTP_METRICS;
        return logger && is(url, "/logger") ? HEALTH_HTTP_LOGGER_GET : HEALTH_HTTP_NOT_FOUND;
}

static void check_route(uint8_t flags, const uint8_t *data, size_t size) {
        char *s = strndup((const char *) data, size), *url, *value;
        bool logger = flags & 2;
        int level;

        if (!s)
                return;
        url = strchr(s, '\n');
        if (!url)
                goto out;
        *url++ = '\0';
        value = strchr(url, '\n');
        if (value)
                *value++ = '\0';
        if (health_http_route(s, url, logger) != expected_route(s, url, logger))
                abort();
        level = health_http_logger_level(value, LOG_NOTICE);
        if (!value ? level != -ENODATA : !*value ? level != LOG_NOTICE : level == -ENODATA)
                abort();
        if (value && *value && level >= 0 &&
            (level < LOG_ERR || level > LOG_DEBUG ||
             log_level_from_string(log_level_to_string(level)) != level))
                abort();
        if (level < 0 && level != -EINVAL && level != -ENODATA)
                abort();
out:
        free(s);
}

static bool not_ready(void *userdata, const char **ret_reason) {
        *ret_reason = "fuzzing";
        return false;
}

static uint16_t server_port(void) {
        static HealthHttp *h;
        static MetricsRegistry *reg;
        static const char *const labels[] = {"kind", NULL};
        Metric *m = NULL;

        if (h)
                return health_http_port(h);
        log_set_max_level(FUZZ_LEVEL);
        if (metrics_registry_new(&reg) < 0 ||
            metrics_counter_new(reg, "fuzz_requests_total", "Requests.", labels, &m) < 0 ||
            metrics_counter_inc(m, (const char *const[]){"a\"b\\c\n", NULL}) < 0)
                abort();
        if (health_http_start(&(HealthHttpConfig){.address = "127.0.0.1:0",
                                                  .metrics = reg,
                                                  .ready = not_ready,
                                                  .logger = true},
                              &h, NULL) < 0)
                abort();
        return health_http_port(h);
}

static int connect_loopback(uint16_t port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        struct timeval tv = {.tv_usec = FUZZ_WAIT_USEC};
        int fd;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                close(fd);
                return -errno;
        }
        return fd;
}

static bool send_all(int fd, const void *p, size_t len) {
        while (len > 0) {
                ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
                if (k <= 0)
                        return false; /* the server refused early: read its answer */
                p = (const uint8_t *) p + k, len -= (size_t) k;
        }
        return true;
}

/* Sends the request and an empty line (most mutations lose the end of the headers),
 * half-closes, reads the answer until EOF (or the cap). */
static size_t exchange(int fd, const uint8_t *req, size_t len, char *buf, size_t max) {
        size_t n = 0;

        if (send_all(fd, req, len))
                (void) send_all(fd, "\r\n\r\n", 4);
        (void) shutdown(fd, SHUT_WR);
        while (n < max) {
                ssize_t k = recv(fd, buf + n, max - n, 0);
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        return n;
}

static void check_server(const uint8_t *data, size_t size) {
        static char buf[FUZZ_RESPONSE_MAX + 1];
        unsigned status = 0;
        size_t n;
        int fd;

        fd = connect_loopback(server_port());
        if (fd < 0)
                return; /* out of ephemeral ports or the like: not the server's fault */
        n = exchange(fd, data, size, buf, FUZZ_RESPONSE_MAX);
        /* A reset, not a FIN: libmicrohttpd drops the connection at once instead of
         * keeping one of its 32 slots until its timeout. */
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){.l_onoff = 1},
                          sizeof(struct linger));
        close(fd);
        log_set_max_level(FUZZ_LEVEL);
        if (n == 0)
                return; /* libmicrohttpd may just close on garbage */
        if (sscanf(buf, "HTTP/1.%*1[01] %3u ", &status) != 1 || status < 100 || status > 599)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 64 * 1024)
                return 0;
        if (data[0] & 1)
                check_server(data + 1, size - 1);
        else
                check_route(data[0], data + 1, size - 1);
        return 0;
}
