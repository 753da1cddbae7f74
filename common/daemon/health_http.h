/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Health and metrics HTTP endpoints of a daemon (the -healthAddress flag), served by
 * libmicrohttpd on its own internal thread:
 *
 *   GET /live     200 "ok\n" while the process serves HTTP at all
 *   GET /ready    200 "ready\n", or 503 "not ready: <reason>\n" (from the ready callback)
 *   GET /metrics  200, the MetricsRegistry in Prometheus text 0.0.4 (404 without one)
 *   GET /logger   with cfg->logger: 200 {"current_level": "info", "launch_level": "info"}
 *   PUT /logger?level=L   with cfg->logger: sets this process's log level (error, warning,
 *                 info, debug; empty: back to the launch level), 200 as GET; 400 for a bad
 *                 level. Only on a loopback address (never with allow_non_loopback).
 *   GET other     404;   any other method: 405 with "Allow: GET"
 *
 * The endpoints are unauthenticated, so by default only loopback addresses are
 * accepted. Requests are capped (16 KiB of request line and headers, 10 s idle timeout,
 * 32 connections); bodies are never read.
 *
 * Threads: the ready callback and metrics_render() run on the HTTP thread, never on
 * the caller's main thread. The callback must therefore only read state that is safe to
 * read from another thread (an atomic flag the main loop sets, say) and return quickly. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "metrics.h"

/* Longest accepted address string ("[v6]:port" fits easily). */
#define HEALTH_HTTP_ADDRESS_MAX 128

typedef struct HealthHttp HealthHttp;

/* Returns true when ready; when not, may set *ret_reason to a short static text
 * (shown after "not ready: "). Called on the HTTP thread. */
typedef bool (*HealthReadyFunc)(void *userdata, const char **ret_reason);

typedef struct HealthHttpConfig {
        const char *address;      /* "127.0.0.1:9090", "[::1]:9090", "localhost:9090";
                                   * port 0 picks a free one (see health_http_port()) */
        bool allow_non_loopback;  /* accept e.g. "0.0.0.0:9090" (explicit opt-in) */
        MetricsRegistry *metrics; /* borrowed, may be NULL; must outlive the server */
        HealthReadyFunc ready;    /* NULL: always ready */
        void *userdata;           /* passed to ready */
        bool logger;              /* serve GET/PUT /logger (the launch level is the one at
                                   * health_http_start(), see health_http_set_launch_log_level()) */
} HealthHttpConfig;

/* Checks a -healthAddress option value (NULL = off, fine): loopback only. 0, or -EINVAL
 * with "-healthAddress: <reason>: \"<value>\"" in *reterr_message. */
int health_http_check_address_option(const char *addr, char **reterr_message);

/* Parses "HOST:PORT" where HOST is an IPv4 literal, a bracketed IPv6 literal or
 * "localhost" (127.0.0.1); no name lookups. Refuses non-loopback hosts unless
 * allow_non_loopback. Fills *ret and *ret_len on success.
 * Returns 0; -EINVAL (syntax, bad port, too long) or -EPERM (not loopback) with a
 * static *reterr_reason. */
int health_http_parse_address(const char *s,
                              bool allow_non_loopback,
                              struct sockaddr_storage *ret,
                              socklen_t *ret_len,
                              const char **reterr_reason);

/* Binds cfg->address (SO_REUSEADDR, IPv6 only for v6), then starts the HTTP thread.
 * Returns 0 and *ret; or -EINVAL/-EPERM from the address (with *reterr_reason),
 * -EADDRINUSE, -EACCES, ... from bind(), -ENOMEM, or -EIO when libmicrohttpd fails to
 * start. *reterr_reason may be NULL on errors that are not about the address. */
int health_http_start(const HealthHttpConfig *cfg, HealthHttp **ret, const char **reterr_reason);

/* Stops the HTTP thread (waits for requests in flight), closes the socket and frees h.
 * NULL-safe; returns NULL. */
HealthHttp *health_http_stop(HealthHttp *h);

static inline void health_http_stopp(HealthHttp **h) {
        if (*h)
                health_http_stop(*h);
}

/* Where a request goes: the routing of the HTTP thread, apart for tests and fuzzing. */
typedef enum HealthHttpRoute {
        HEALTH_HTTP_LIVE,
        HEALTH_HTTP_READY,
        HEALTH_HTTP_METRICS,
        HEALTH_HTTP_LOGGER_GET,
        HEALTH_HTTP_LOGGER_PUT,
        HEALTH_HTTP_BAD_METHOD, /* 405 */
        HEALTH_HTTP_NOT_FOUND,  /* 404 */
} HealthHttpRoute;

/* The endpoint for method and url as libmicrohttpd passes them (url: the path without
 * the query, %-escapes decoded); logger: whether /logger is served. Exact matches only;
 * NULL method or url: HEALTH_HTTP_NOT_FOUND. */
HealthHttpRoute health_http_route(const char *method, const char *url, bool logger);

/* The log level PUT /logger?level=VALUE asks for: value is the decoded query argument
 * (NULL when there is none: -ENODATA); "" means launch_level; else
 * log_level_from_string(value) (-EINVAL for an unknown level). */
int health_http_logger_level(const char *value, int launch_level);

/* The bound TCP port (useful after port 0). */
uint16_t health_http_port(const HealthHttp *h);

/* The level PUT /logger?level= goes back to, e.g. after a reload re-read -logLevel. Any
 * thread. NULL-safe. */
void health_http_set_launch_log_level(HealthHttp *h, int level);

/* A client for these endpoints (the `logger` verb): sends "METHOD PATH" (no body) to
 * address (as health_http_parse_address() reads it: loopback only) and reads the answer
 * within timeout_ms. Returns 0 with the HTTP status and the body (malloc'd, at most
 * HEALTH_HTTP_BODY_MAX bytes); -EINVAL/-EPERM for a bad address (with *reterr_reason),
 * -ECONNREFUSED etc. from connect(), -ETIMEDOUT, -EBADMSG (not an HTTP answer),
 * -EMSGSIZE. */
#define HEALTH_HTTP_BODY_MAX (64 * 1024)
int health_http_request(const char *address,
                        const char *method,
                        const char *path,
                        int timeout_ms,
                        unsigned *ret_status,
                        char **ret_body,
                        const char **reterr_reason);
