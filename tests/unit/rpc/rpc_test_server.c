/* SPDX-License-Identifier: Apache-2.0 */
/* A small service on the real RPC layer, raw bytes in and out, for the Python
 * client test and for manual measurements.
 *
 *   rpc_test_server (--unix PATH | --listen-fd N) [--push-ms N]
 *
 * Methods:
 *   /test.Open/Echo    unary: replies "uid=<uid>;pid=<pid>;" + request
 *   /test.Open/EchoInline  the same, run on the CQ thread (RPC_METHOD_INLINE)
 *   /test.Secure/Echo  the same, but /test.Secure/ requires "workload.spiffe.io: true"
 *   /test.Open/Watch   stream: "v=<version>" at once, then one message per push
 *   /test.Open/Fail    unary: request "<errno>" → finishes with errno_to_grpc_status()
 * A pusher thread bumps the version every --push-ms milliseconds and on SIGUSR1.
 * Prints "READY" on stdout once serving; SIGTERM/SIGINT shut down cleanly. */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "greedy_realloc.h"
#include "rpc.h"
#include "rpc_status.h"

typedef struct Watchers {
        pthread_mutex_t lock;
        RpcCall **calls;
        size_t n, cap;
        unsigned long version;
} Watchers;

static Watchers watchers = {.lock = PTHREAD_MUTEX_INITIALIZER};
static int push_fd = -EBADF, stop_pusher_fd = -EBADF;
static long arg_push_ms = 0;

static void send_version_locked(RpcCall *c) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "v=%lu", watchers.version);

        (void) rpc_call_send(c, buf, (size_t) n);
}

static void echo(RpcCall *c, void *userdata) {
        const RpcPeer *p = rpc_call_peer(c);
        size_t len;
        const char *req = rpc_call_request(c, &len);
        _cleanup_free_ char *out = NULL;
        int n;

        n = asprintf(&out, "uid=%d;pid=%d;%.*s", (int) p->uid, (int) p->pid, (int) len, req);
        if (n < 0)
                (void) rpc_call_finish_errno(c, -ENOMEM, "out of memory");
        else
                (void) rpc_call_reply(c, out, (size_t) n);
}

static void fail(RpcCall *c, void *userdata) {
        const char *req = rpc_call_request(c, NULL);

        (void) rpc_call_finish_errno(c, -atoi(req), "failed on request");
}

static void watch_closed(RpcCall *c, void *userdata) {
        pthread_mutex_lock(&watchers.lock);
        for (size_t i = 0; i < watchers.n; i++)
                if (watchers.calls[i] == c) {
                        watchers.calls[i] = watchers.calls[--watchers.n];
                        rpc_call_unref(c);
                        break;
                }
        pthread_mutex_unlock(&watchers.lock);
}

static void watch(RpcCall *c, void *userdata) {
        pthread_mutex_lock(&watchers.lock);
        if (GREEDY_REALLOC(watchers.calls, watchers.cap, watchers.n + 1) < 0) {
                pthread_mutex_unlock(&watchers.lock);
                (void) rpc_call_finish_errno(c, -ENOMEM, "out of memory");
                return;
        }
        watchers.calls[watchers.n++] = rpc_call_ref(c);
        send_version_locked(c);
        pthread_mutex_unlock(&watchers.lock);
        rpc_call_set_close_callback(c, watch_closed, NULL);
}

static void *pusher(void *p) {
        for (;;) {
                struct pollfd pfd[2] = {{push_fd, POLLIN, 0}, {stop_pusher_fd, POLLIN, 0}};
                uint64_t v;
                int r = poll(pfd, 2, arg_push_ms > 0 ? (int) arg_push_ms : -1);

                if (r < 0 && errno != EINTR)
                        break;
                if (pfd[1].revents)
                        break;
                if (pfd[0].revents)
                        (void) !read(push_fd, &v, sizeof(v));
                pthread_mutex_lock(&watchers.lock);
                watchers.version++;
                for (size_t i = 0; i < watchers.n; i++)
                        send_version_locked(watchers.calls[i]);
                pthread_mutex_unlock(&watchers.lock);
        }
        return NULL;
}

static int setup(RpcServer *s, const char *path, int listen_fd) {
        int r;

        r = rpc_server_add_method(s, "/test.Open/Echo", RPC_UNARY, echo, NULL, 0);
        if (r >= 0)
                r = rpc_server_add_method(s, "/test.Open/EchoInline", RPC_UNARY, echo, NULL,
                                          RPC_METHOD_INLINE);
        if (r >= 0)
                r = rpc_server_add_method(s, "/test.Secure/Echo", RPC_UNARY, echo, NULL, 0);
        if (r >= 0)
                r = rpc_server_add_method(s, "/test.Open/Watch", RPC_SERVER_STREAM, watch, NULL, 0);
        if (r >= 0)
                r = rpc_server_add_method(s, "/test.Open/Fail", RPC_UNARY, fail, NULL, 0);
        if (r >= 0)
                r = rpc_server_require_metadata(s, "/test.Secure/", "workload.spiffe.io", "true",
                                                GRPC_STATUS_INVALID_ARGUMENT,
                                                "security header missing from request");
        if (r >= 0)
                r = path ? rpc_server_listen_unix(s, path, 0666)
                         : rpc_server_listen_fd(s, listen_fd);
        return r;
}

static int parse_args(int argc, char **argv, const char **path, int *listen_fd) {
        static const struct option opts[] = {
                {"unix", required_argument, NULL, 'u'},
                {"listen-fd", required_argument, NULL, 'f'},
                {"push-ms", required_argument, NULL, 'p'},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'u':
                        *path = optarg;
                        break;
                case 'f':
                        *listen_fd = atoi(optarg);
                        break;
                case 'p':
                        arg_push_ms = atol(optarg);
                        break;
                default:
                        return -EINVAL;
                }
        return (*path || *listen_fd >= 0) ? 0 : -EINVAL;
}

/* Serves until SIGTERM/SIGINT; SIGUSR1 triggers a push. */
static int run(RpcServer *s, int sfd) {
        for (;;) {
                struct pollfd pfd[2] = {{rpc_server_event_fd(s), POLLIN, 0}, {sfd, POLLIN, 0}};
                struct signalfd_siginfo si;
                uint64_t one = 1;

                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        return -errno;
                if (pfd[0].revents)
                        (void) rpc_server_dispatch(s);
                if (!pfd[1].revents || read(sfd, &si, sizeof(si)) != sizeof(si))
                        continue;
                if (si.ssi_signo != SIGUSR1)
                        return 0;
                (void) !write(push_fd, &one, sizeof(one));
        }
}

int main(int argc, char **argv) {
        const char *path = NULL;
        int listen_fd = -1, sfd, r;
        RpcServer *s = NULL;
        pthread_t pt;
        sigset_t mask;
        uint64_t one = 1;

        if (parse_args(argc, argv, &path, &listen_fd) < 0) {
                fprintf(stderr, "usage: %s (--unix PATH | --listen-fd N) [--push-ms N]\n", argv[0]);
                return 2;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        push_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        stop_pusher_fd = eventfd(0, EFD_CLOEXEC);

        r = rpc_server_new(&s);
        if (r >= 0)
                r = setup(s, path, listen_fd);
        if (r >= 0)
                r = rpc_server_start(s);
        if (r < 0) {
                fprintf(stderr, "server setup failed: %s\n", strerror(-r));
                rpc_server_free(s);
                return 1;
        }
        pthread_create(&pt, NULL, pusher, NULL);
        printf("READY\n");
        fflush(stdout);

        r = run(s, sfd);

        (void) !write(stop_pusher_fd, &one, sizeof(one));
        pthread_join(pt, NULL);
        rpc_server_shutdown(s); /* fires the close callbacks: watchers drop their refs */
        rpc_server_free(s);
        free(watchers.calls);
        close(sfd);
        close(push_fd);
        close(stop_pusher_fd);
        return r < 0 ? 1 : 0;
}
