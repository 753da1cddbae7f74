/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* Copying the bytes of one relayed TCP connection (see rpc_front.h). Level-triggered
 * epoll; each direction has one buffer, read into only when empty and written out
 * before the next read, so a slow reader stops its writer (backpressure through the
 * kernel's socket buffers). An end with nothing to do is taken out of the epoll set,
 * so a hang-up we cannot act on yet does not spin. End-of-file travels as
 * shutdown(SHUT_WR) once the buffer is out; the connection is over when gRPC's side
 * ended and everything it sent is out, or on any error. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc_front.h"

/* Reads land here first (the relay is one thread); a connection gets a buffer of its
 * own only for what the other end did not take at once, and only until it does. Idle
 * connections (agents between calls) hold no buffer: 32 KiB less each. */
static _Thread_local char scratch[RPC_RELAY_BUF_SIZE];

int rpc_relay_init(RpcFrontConn *c) {
        for (int i = 0; i < 2; i++) {
                c->buf[i] = (RpcRelayBuf){};
                c->end[i].conn = c;
        }
        return 0;
}

void rpc_relay_done(int epoll_fd, RpcFrontConn *c) {
        for (int i = 0; i < 2; i++) {
                if (c->end[i].fd >= 0) {
                        if (c->end[i].events)
                                (void) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->end[i].fd, NULL);
                        close(c->end[i].fd);
                }
                c->end[i].fd = -EBADF;
                c->end[i].events = 0;
                free(c->buf[i].data);
                c->buf[i].data = NULL;
        }
}

/* Writes buf[i] to the other end; after end-of-file, passes it on. 0 or -errno. */
static int relay_flush(RpcFrontConn *c, int i) {
        RpcRelayBuf *b = &c->buf[i];
        int fd = c->end[1 - i].fd;

        while (b->len > 0) {
                ssize_t n = send(fd, b->data + b->off, b->len, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                b->off += (size_t) n;
                b->len -= (size_t) n;
        }
        b->off = 0;
        if (!b->borrowed) {
                free(b->data);
                b->data = NULL;
        }
        if (b->eof && !b->shut_wr) {
                b->shut_wr = true;
                if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
                        return -errno;
        }
        return 0;
}

/* Reads from end i into its (empty) buffer and passes it on at once. 0 or -errno. */
static int relay_fill(RpcFrontConn *c, int i) {
        RpcRelayBuf *b = &c->buf[i];
        ssize_t n;

        int r;

        if (b->eof || b->len > 0)
                return 0;
        do
                n = recv(c->end[i].fd, scratch, RPC_RELAY_BUF_SIZE, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        if (n == 0)
                b->eof = true;
        b->data = scratch;
        b->borrowed = true;
        b->off = 0;
        b->len = (size_t) n;
        r = relay_flush(c, i);
        b->borrowed = false;
        b->data = NULL;
        if (b->len > 0) {
                /* The rest waits for EPOLLOUT in a buffer of its own. */
                b->data = malloc(b->len);
                if (!b->data) {
                        b->len = 0;
                        return -ENOMEM;
                }
                memcpy(b->data, scratch + b->off, b->len);
                b->off = 0;
        }
        return r;
}

static uint32_t relay_want(const RpcFrontConn *c, int i) {
        uint32_t ev = 0;

        if (!c->buf[i].eof && c->buf[i].len == 0)
                ev |= EPOLLIN;
        if (c->buf[1 - i].len > 0)
                ev |= EPOLLOUT;
        return ev;
}

bool rpc_relay_update(int epoll_fd, RpcFrontConn *c) {
        /* gRPC ended the connection and all it said went out. */
        if (c->buf[1].eof && c->buf[1].len == 0)
                return false;
        for (int i = 0; i < 2; i++) {
                RpcRelayEnd *e = &c->end[i];
                struct epoll_event ev = {.events = relay_want(c, i), .data.ptr = e};
                int op;

                if (ev.events == e->events)
                        continue;
                op = e->events == 0 ? EPOLL_CTL_ADD : ev.events ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
                if (epoll_ctl(epoll_fd, op, e->fd, &ev) < 0)
                        return false;
                e->events = ev.events;
        }
        return true;
}

bool rpc_relay_handle(int epoll_fd, RpcRelayEnd *e, uint32_t events) {
        RpcFrontConn *c = e->conn;
        int i = e == &c->end[0] ? 0 : 1;

        if (events & EPOLLERR)
                return false;
        if ((events & EPOLLOUT) && relay_flush(c, 1 - i) < 0)
                return false;
        if ((events & (EPOLLIN | EPOLLHUP)) && relay_fill(c, i) < 0)
                return false;
        /* Hung up while we still have bytes for it: they cannot arrive any more. */
        if ((events & EPOLLHUP) && c->buf[1 - i].len > 0)
                return false;
        return rpc_relay_update(epoll_fd, c);
}
