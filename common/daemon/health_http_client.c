/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal HTTP/1.0 client for the loopback health endpoints (health_http.h): one
 * request without a body, the whole answer read until the server closes. */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "health_http.h"

#define HEAD_MAX (16 * 1024)

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline (monotonic ms): 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline) {
        struct pollfd p = {.fd = fd, .events = events};
        int64_t left = deadline - now_ms();
        int r;

        if (left <= 0)
                return -ETIMEDOUT;
        r = poll(&p, 1, (int) left);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        return r == 0 ? -ETIMEDOUT : 0;
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t len, int64_t deadline) {
        _cleanup_close_ int fd = -EBADF;
        socklen_t elen = sizeof(int);
        int err = 0, r;

        fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) ss, len) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }
        return TAKE_FD(fd);
}

static int send_all(int fd, const char *p, size_t len, int64_t deadline) {
        while (len > 0) {
                ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
                if (k < 0 && errno == EAGAIN) {
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0) {
                        p += k;
                        len -= (size_t) k;
                }
        }
        return 0;
}

/* Reads until EOF, at most max bytes (-EMSGSIZE beyond). */
static int recv_all(int fd, size_t max, int64_t deadline, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = malloc(max + 1);
        size_t len = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = recv(fd, buf + len, max + 1 - len, 0);
                if (k < 0 && errno == EAGAIN) {
                        int r = wait_fd(fd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max)
                        return -EMSGSIZE;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* "HTTP/1.x NNN ...\r\n...\r\n\r\nbody": the status and a copy of the body. */
static int parse_answer(const char *a, size_t len, unsigned *ret_status, char **ret_body) {
        const char *body = strstr(a, "\r\n\r\n");
        unsigned status;
        char *b;

        if (strlen(a) != len || !body || sscanf(a, "HTTP/1.%*1[01] %3u", &status) != 1 ||
            status < 100 || status > 599)
                return -EBADMSG;
        body += 4;
        if (strlen(body) > HEALTH_HTTP_BODY_MAX)
                return -EMSGSIZE;
        b = strdup(body);
        if (!b)
                return -ENOMEM;
        *ret_status = status;
        *ret_body = b;
        return 0;
}

int health_http_request(const char *address,
                        const char *method,
                        const char *path,
                        int timeout_ms,
                        unsigned *ret_status,
                        char **ret_body,
                        const char **reterr_reason) {
        _cleanup_free_ char *req = NULL, *answer = NULL;
        _cleanup_close_ int fd = -EBADF;
        int64_t deadline = now_ms() + timeout_ms;
        struct sockaddr_storage ss;
        size_t len = 0;
        socklen_t sslen;
        int r;

        if (!method || !path || path[0] != '/' || strpbrk(path, " \r\n") || timeout_ms <= 0)
                return -EINVAL;
        r = health_http_parse_address(address, false, &ss, &sslen, reterr_reason);
        if (r < 0)
                return r;
        if (asprintf(&req,
                     "%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     method, path) < 0)
                return -ENOMEM;
        fd = connect_to(&ss, sslen, deadline);
        if (fd < 0)
                return fd;
        r = send_all(fd, req, strlen(req), deadline);
        if (r >= 0)
                r = recv_all(fd, HEAD_MAX + HEALTH_HTTP_BODY_MAX, deadline, &answer, &len);
        if (r < 0)
                return r;
        return parse_answer(answer, len, ret_status, ret_body);
}
