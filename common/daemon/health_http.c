/* SPDX-License-Identifier: Apache-2.0 */
/* /live, /ready and /metrics over libmicrohttpd (internal polling thread).
 *
 * We bind the listening socket ourselves (exact bind errors, the port of ":0") and hand
 * libmicrohttpd a duplicate of it with MHD_OPTION_LISTEN_SOCKET; MHD_stop_daemon()
 * closes that duplicate. */
#define _GNU_SOURCE

#include "health_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cleanup.h"
#include "log.h"
#include "options.h"
#include "parse.h"

#define CONNECTION_LIMIT 32u
#define CONNECTION_TIMEOUT_SEC 10u
#define CONNECTION_MEMORY_LIMIT ((size_t) 16384) /* request line + headers */
#define LISTEN_BACKLOG 16
#define REASON_MAX 200

#define TEXT_PLAIN "text/plain; charset=utf-8"

struct HealthHttp {
        struct MHD_Daemon *daemon;
        MetricsRegistry *metrics;
        HealthReadyFunc ready;
        void *userdata;
        uint16_t port;
        bool logger;
        int launch_level; /* atomic */
};

static int fail(const char **reterr_reason, int r, const char *reason) {
        if (reterr_reason)
                *reterr_reason = reason;
        return r;
}

/* Splits "HOST:PORT" / "[HOST]:PORT" into host (NUL-terminated) and the port text. */
static int split_host_port(const char *s,
                           char host[static HEALTH_HTTP_ADDRESS_MAX + 1],
                           const char **ret_port,
                           bool *ret_bracketed,
                           const char **reterr_reason) {
        const char *colon;
        size_t n;

        if (!s || !*s)
                return fail(reterr_reason, -EINVAL, "empty address");
        if (strnlen(s, HEALTH_HTTP_ADDRESS_MAX + 1) > HEALTH_HTTP_ADDRESS_MAX)
                return fail(reterr_reason, -EINVAL, "address too long");
        colon = strrchr(s, ':');
        if (!colon)
                return fail(reterr_reason, -EINVAL, "expected HOST:PORT");
        if (s[0] == '[') {
                if (colon - s < 2 || colon[-1] != ']')
                        return fail(reterr_reason, -EINVAL, "expected [IPV6]:PORT");
                n = (size_t) (colon - s) - 2;
                memcpy(host, s + 1, n);
        } else {
                n = (size_t) (colon - s);
                if (memchr(s, ':', n))
                        return fail(reterr_reason, -EINVAL, "IPv6 addresses need brackets");
                memcpy(host, s, n);
        }
        host[n] = 0;
        if (n == 0)
                return fail(reterr_reason, -EINVAL, "missing host");
        *ret_port = colon + 1;
        *ret_bracketed = s[0] == '[';
        return 0;
}

int health_http_parse_address(const char *s,
                              bool allow_non_loopback,
                              struct sockaddr_storage *ret,
                              socklen_t *ret_len,
                              const char **reterr_reason) {
        char host[HEALTH_HTTP_ADDRESS_MAX + 1];
        struct sockaddr_storage ss = {};
        const char *port_text;
        bool v6, loopback;
        socklen_t len;
        uint16_t port = 0;
        int r;

        r = split_host_port(s, host, &port_text, &v6, reterr_reason);
        if (r < 0)
                return r;
        if (parse_port(port_text, &port) < 0)
                return fail(reterr_reason, -EINVAL, "bad port (0..65535)");
        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;

                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return fail(reterr_reason, -EINVAL, "bad IPv6 address");
                a->sin6_family = AF_INET6;
                a->sin6_port = htons(port);
                loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                           (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
                len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *) &ss;

                if (inet_pton(AF_INET, streq(host, "localhost") ? "127.0.0.1" : host,
                              &a->sin_addr) != 1)
                        return fail(reterr_reason, -EINVAL,
                                    "host must be an IPv4 address, [IPv6] or localhost");
                a->sin_family = AF_INET;
                a->sin_port = htons(port);
                loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
                len = sizeof(*a);
        }
        if (!loopback && !allow_non_loopback)
                return fail(reterr_reason, -EPERM,
                            "not a loopback address (the health endpoints are unauthenticated)");
        *ret = ss;
        *ret_len = len;
        return 0;
}

static int listen_socket(const struct sockaddr_storage *ss,
                         socklen_t len,
                         int *ret_fd,
                         uint16_t *ret_port) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage bound;
        socklen_t bound_len = sizeof(bound);
        int one = 1;

        fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (ss->ss_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (const struct sockaddr *) ss, len) < 0)
                return -errno;
        if (listen(fd, LISTEN_BACKLOG) < 0)
                return -errno;
        if (getsockname(fd, (struct sockaddr *) &bound, &bound_len) < 0)
                return -errno;
        *ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                      : ((struct sockaddr_in *) &bound)->sin_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

HealthHttpRoute health_http_route(const char *method, const char *url, bool logger) {
        if (!method || !url)
                return HEALTH_HTTP_NOT_FOUND;
        if (logger && streq(url, "/logger") && streq(method, MHD_HTTP_METHOD_PUT))
                return HEALTH_HTTP_LOGGER_PUT;
        if (!streq(method, MHD_HTTP_METHOD_GET))
                return HEALTH_HTTP_BAD_METHOD;
        if (streq(url, "/live"))
                return HEALTH_HTTP_LIVE;
        if (streq(url, "/ready"))
                return HEALTH_HTTP_READY;
        if (streq(url, "/metrics"))
                return HEALTH_HTTP_METRICS;
        if (logger && streq(url, "/logger"))
                return HEALTH_HTTP_LOGGER_GET;
        return HEALTH_HTTP_NOT_FOUND;
}

/* Queues body (owned: malloc'd, handed to libmicrohttpd) with status. */
static enum MHD_Result respond(struct MHD_Connection *c,
                               unsigned status,
                               char *body,
                               bool owned,
                               const char *content_type) {
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(
                strlen(body), body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                if (owned)
                        free(body);
                return MHD_NO;
        }
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
            (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET") != MHD_YES)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result respond_static(struct MHD_Connection *c, unsigned status, const char *text) {
        return respond(c, status, (char *) text, false, TEXT_PLAIN);
}

static enum MHD_Result on_ready(HealthHttp *h, struct MHD_Connection *c) {
        const char *reason = NULL;
        char *body;

        if (!h->ready || h->ready(h->userdata, &reason))
                return respond_static(c, MHD_HTTP_OK, "ready\n");
        if (asprintf(&body, "not ready: %.*s\n", REASON_MAX, reason ? reason : "starting") < 0)
                return MHD_NO;
        return respond(c, MHD_HTTP_SERVICE_UNAVAILABLE, body, true, TEXT_PLAIN);
}

static enum MHD_Result on_metrics(HealthHttp *h, struct MHD_Connection *c) {
        char *text = NULL;
        int r;

        if (!h->metrics)
                return respond_static(c, MHD_HTTP_NOT_FOUND, "not found\n");
        r = metrics_render(h->metrics, &text, NULL);
        if (r < 0) {
                log_debug_errno(r, "Failed to render metrics: %m");
                return respond_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
        }
        return respond(c, MHD_HTTP_OK, text, true, METRICS_CONTENT_TYPE);
}

static enum MHD_Result logger_reply(HealthHttp *h, struct MHD_Connection *c) {
        char *body;

        if (asprintf(&body, "{\"current_level\": \"%s\", \"launch_level\": \"%s\"}\n",
                     log_level_to_string(log_get_max_level()),
                     log_level_to_string(__atomic_load_n(&h->launch_level, __ATOMIC_RELAXED))) < 0)
                return MHD_NO;
        return respond(c, MHD_HTTP_OK, body, true, "application/json");
}

int health_http_logger_level(const char *value, int launch_level) {
        if (!value)
                return -ENODATA;
        return *value ? log_level_from_string(value) : launch_level;
}

/* PUT /logger?level=L: the query argument only, a body is never read. */
static enum MHD_Result on_logger_put(HealthHttp *h, struct MHD_Connection *c) {
        const char *value = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "level");
        int level, old = log_get_max_level();

        level = health_http_logger_level(value,
                                         __atomic_load_n(&h->launch_level, __ATOMIC_RELAXED));
        if (level == -ENODATA)
                return respond_static(c, MHD_HTTP_BAD_REQUEST, "missing ?level=\n");
        if (level < 0)
                return respond_static(c, MHD_HTTP_BAD_REQUEST,
                                      "unknown level (use error, warning, info or debug)\n");
        /* Logged at whichever of the two levels shows it. */
        log_set_max_level(level > old ? level : old);
        log_info("Log level %s -> %s (PUT /logger)", log_level_to_string(old),
                 log_level_to_string(level));
        log_set_max_level(level);
        return logger_reply(h, c);
}

static enum MHD_Result on_request(void *cls,
                                  struct MHD_Connection *c,
                                  const char *url,
                                  const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size,
                                  void **req_cls) {
        HealthHttp *h = cls;

        /* Answer on the first call, right after the headers; a body is never read. */
        switch (health_http_route(method, url, h->logger)) {
        case HEALTH_HTTP_LIVE:
                return respond_static(c, MHD_HTTP_OK, "ok\n");
        case HEALTH_HTTP_READY:
                return on_ready(h, c);
        case HEALTH_HTTP_METRICS:
                return on_metrics(h, c);
        case HEALTH_HTTP_LOGGER_GET:
                return logger_reply(h, c);
        case HEALTH_HTTP_LOGGER_PUT:
                return on_logger_put(h, c);
        case HEALTH_HTTP_BAD_METHOD:
                return respond_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        default:
                return respond_static(c, MHD_HTTP_NOT_FOUND, "not found\n");
        }
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls,
                                                             const char *fmt,
                                                             va_list ap) {
        char buf[256];
        size_t n;

        vsnprintf(buf, sizeof(buf), fmt, ap);
        n = strlen(buf);
        if (n > 0 && buf[n - 1] == '\n')
                buf[n - 1] = 0;
        log_debug("microhttpd: %s", buf);
}

/* Starts libmicrohttpd on a duplicate of fd (fd stays ours either way). */
static int daemon_start(HealthHttp *h, int fd) {
        _cleanup_close_ int mhd_fd = -EBADF;
        struct stat a, b;

        mhd_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (mhd_fd < 0)
                return -errno;
        h->daemon = MHD_start_daemon(
                MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) mhd_fd, MHD_OPTION_CONNECTION_LIMIT,
                CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_SEC,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY_LIMIT, MHD_OPTION_END);
        if (h->daemon) {
                TAKE_FD(mhd_fd); /* closed by MHD_stop_daemon() */
                return 0;
        }
        /* libmicrohttpd closes the socket on some failure paths and not on others: close
         * the duplicate only if that number still names our socket. */
        if (fstat(fd, &a) < 0 || fstat(mhd_fd, &b) < 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino)
                TAKE_FD(mhd_fd);
        return -EIO;
}

int health_http_start(const HealthHttpConfig *cfg, HealthHttp **ret, const char **reterr_reason) {
        _cleanup_(health_http_stopp) HealthHttp *h = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage ss;
        socklen_t len;
        uint16_t port = 0;
        int r;

        if (!cfg || !ret)
                return fail(reterr_reason, -EINVAL, "no configuration");
        r = health_http_parse_address(cfg->address, cfg->allow_non_loopback, &ss, &len,
                                      reterr_reason);
        if (r < 0)
                return r;
        r = listen_socket(&ss, len, &fd, &port);
        if (r < 0)
                return fail(reterr_reason, r, NULL);

        h = calloc(1, sizeof(*h));
        if (!h)
                return fail(reterr_reason, -ENOMEM, NULL);
        h->metrics = cfg->metrics;
        h->ready = cfg->ready;
        h->userdata = cfg->userdata;
        h->port = port;
        /* Changing the log level is for the local admin: never on an open address. */
        h->logger = cfg->logger && !cfg->allow_non_loopback;
        h->launch_level = log_get_max_level();
        r = daemon_start(h, fd);
        if (r < 0)
                return fail(reterr_reason, r, "libmicrohttpd failed to start");
        log_debug("Health endpoints listening on %s (port %u)", cfg->address, port);
        *ret = TAKE_PTR(h);
        return 0;
}

HealthHttp *health_http_stop(HealthHttp *h) {
        if (!h)
                return NULL;
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        free(h);
        return NULL;
}

uint16_t health_http_port(const HealthHttp *h) {
        return h ? h->port : 0;
}

void health_http_set_launch_log_level(HealthHttp *h, int level) {
        if (h)
                __atomic_store_n(&h->launch_level, level, __ATOMIC_RELAXED);
}

int health_http_check_address_option(const char *addr, char **reterr_message) {
        struct sockaddr_storage ss;
        const char *reason = NULL;
        socklen_t len;

        if (!addr)
                return 0;
        if (health_http_parse_address(addr, false, &ss, &len, &reason) < 0)
                return options_fail_message(-EINVAL, reterr_message, "-healthAddress: %s: \"%s\"",
                                            strna(reason), addr);
        return 0;
}
