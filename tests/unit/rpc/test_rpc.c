/* SPDX-License-Identifier: Apache-2.0 */
/* RPC layer over Unix sockets: unary calls, peer credentials (also of another
 * uid), required metadata, unknown methods, the call observer, socket activation, limits, the
 * connection cap, status mapping and peercred. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "missing.h"
#include "peercred.h"
#include "rpc.h"
#include "rpc_client.h"
#include "rpc_status.h"
#include "rpc_testutil.h"
#include "testlib.h"

extern char **environ;

static const RpcMetadata hdr_ok[] = {{"workload.spiffe.io", "true"}};

static void setup_echo(TestServer *t) {
        test_server_init(t);
        assert_ok(rpc_server_add_method(t->s, "/test.Open/Echo", RPC_UNARY, test_echo, NULL, 0));
        assert_ok(rpc_server_add_method(t->s, "/test.Secure/Echo", RPC_UNARY, test_echo, NULL, 0));
        assert_ok(rpc_server_require_metadata(t->s, "/test.Secure/", "workload.spiffe.io", "true",
                                              GRPC_STATUS_INVALID_ARGUMENT,
                                              "security header missing from request"));
        test_server_listen(t);
        test_server_run(t);
}

static void test_unary_peer(void **state) {
        TestServer t;
        _cleanup_free_ char *resp = NULL, *want = NULL;
        RpcServerStats st;

        setup_echo(&t);
        assert_int_equal(test_unary(t.sock, "/test.Open/Echo", NULL, 0, "hello", &resp, NULL),
                         GRPC_STATUS_OK);
        assert_true(asprintf(&want, "uid=%d;pid=%d;hello", (int) getuid(), (int) getpid()) > 0);
        assert_string_equal(resp, want);

        rpc_server_get_stats(t.s, &st);
        assert_int_equal(st.connections_accepted, 1);
        assert_int_equal(st.calls_started, 1);
        test_server_done(&t);
}

/* Runs argv, returns its stdout (malloc'd) and pid; asserts exit status 0. */
static char *spawn_capture(char *const argv[], pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        char *out = calloc(1, 4096);
        size_t n = 0;
        ssize_t k;
        int p[2], status;
        pid_t pid;

        assert_non_null(out);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        while (n < 4095 && (k = read(p[0], out + n, 4095 - n)) > 0)
                n += (size_t) k;
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        *ret_pid = pid;
        return out;
}

static void test_unary_other_uid(void **state) {
        TestServer t;
        _cleanup_free_ char *out = NULL, *want = NULL, *client = NULL;
        char *dir = NULL;
        pid_t pid;

        if (geteuid() != 0)
                skip(); /* changing uid needs root */
        dir = test_tmpdir();
        setup_echo(&t);
        /* The build dir may be private: nobody runs a copy. */
        client = test_copy_for_other_uid(RPC_TEST_CLIENT_PATH, dir);
        /* setpriv execs the client, so the connecting pid is the spawned pid. */
        char *argv[] = {"/usr/bin/setpriv",
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        client,
                        "unary",
                        t.sock,
                        "/test.Secure/Echo",
                        "from-nobody",
                        "workload.spiffe.io=true",
                        NULL};
        out = spawn_capture(argv, &pid);
        assert_true(asprintf(&want, "status=0\nuid=65534;pid=%d;from-nobody\n", (int) pid) > 0);
        assert_string_equal(out, want);
        test_server_done(&t);
        test_rmdir_free(dir);
}

static void test_required_metadata(void **state) {
        static const RpcMetadata wrong[] = {{"workload.spiffe.io", "TRUE"}};
        static const RpcMetadata twice[] = {{"workload.spiffe.io", "true"},
                                            {"workload.spiffe.io", "true"}};
        static const RpcMetadata other[] = {{"x-other", "true"}};
        TestServer t;
        char *msg = NULL, *resp = NULL;

        setup_echo(&t);
        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", NULL, 0, "x", &resp, &msg),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(msg, "security header missing from request");
        assert_null(resp);
        free(msg);
        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", wrong, 1, "x", NULL, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", twice, 2, "x", NULL, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", other, 1, "x", NULL, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", hdr_ok, 1, "x", &resp, NULL),
                         GRPC_STATUS_OK);
        assert_non_null(strstr(resp, ";x"));
        free(resp);
        /* Methods outside the prefix need no header. */
        assert_int_equal(test_unary(t.sock, "/test.Open/Echo", NULL, 0, "x", NULL, NULL),
                         GRPC_STATUS_OK);
        test_server_done(&t);
}

static void test_unknown_method(void **state) {
        TestServer t;
        _cleanup_free_ char *msg = NULL;
        uint64_t start;

        setup_echo(&t);
        start = test_now_ms();
        /* Even with the header and under a known prefix: UNIMPLEMENTED, at once. */
        assert_int_equal(test_unary(t.sock, "/test.Secure/Nope", hdr_ok, 1, "x", NULL, &msg),
                         GRPC_STATUS_UNIMPLEMENTED);
        assert_int_equal(test_unary(t.sock, "/nope.Svc/M", NULL, 0, "", NULL, NULL),
                         GRPC_STATUS_UNIMPLEMENTED);
        assert_true(test_now_ms() - start < 2000);
        test_server_done(&t);
}

typedef struct Observed {
        pthread_mutex_t lock;
        unsigned n;
        char method[4][64];
        grpc_status_code status[4];
} Observed;

static void observe(const char *method, grpc_status_code status, void *userdata) {
        Observed *o = userdata;

        pthread_mutex_lock(&o->lock);
        if (o->n < ELEMENTSOF(o->status)) {
                (void) snprintf(o->method[o->n], sizeof(o->method[o->n]), "%s", method);
                o->status[o->n] = status;
        }
        o->n++;
        pthread_mutex_unlock(&o->lock);
}

static unsigned observed_n(Observed *o) {
        unsigned n;

        pthread_mutex_lock(&o->lock);
        n = o->n;
        pthread_mutex_unlock(&o->lock);
        return n;
}

static bool observed_two(void *userdata) {
        return observed_n(userdata) >= 2;
}

/* The observer hears of calls the layer ends itself, never of handled ones. */
static void test_call_observer(void **state) {
        Observed o = {.lock = PTHREAD_MUTEX_INITIALIZER};
        TestServer t;

        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Secure/Echo", RPC_UNARY, test_echo, NULL, 0));
        assert_ok(rpc_server_require_metadata(t.s, "/test.Secure/", "workload.spiffe.io", "true",
                                              GRPC_STATUS_INVALID_ARGUMENT, "no header"));
        rpc_server_set_call_observer(t.s, observe, &o);
        test_server_listen(&t);
        test_server_run(&t);
        /* Too late once started: ignored. */
        rpc_server_set_call_observer(t.s, NULL, NULL);

        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", NULL, 0, "x", NULL, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(test_unary(t.sock, "/test.Secure/Echo", hdr_ok, 1, "x", NULL, NULL),
                         GRPC_STATUS_OK);
        /* Sent after the handled call: had that one fired, it would be second. */
        assert_int_equal(test_unary(t.sock, "/test.Secure/Nope", hdr_ok, 1, "x", NULL, NULL),
                         GRPC_STATUS_UNIMPLEMENTED);
        assert_true(test_wait_for(observed_two, &o, 5000));
        test_server_done(&t);

        assert_int_equal(o.n, 2);
        assert_string_equal(o.method[0], "/test.Secure/Echo");
        assert_int_equal(o.status[0], GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(o.method[1], "/test.Secure/Nope");
        assert_int_equal(o.status[1], GRPC_STATUS_UNIMPLEMENTED);
        pthread_mutex_destroy(&o.lock);
}

static void test_listen_fd(void **state) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        TestServer t;
        _cleanup_free_ char *resp = NULL;
        struct stat st;
        int fd;

        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Echo", RPC_UNARY, test_echo, NULL, 0));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        strcpy(sa.sun_path, t.sock);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        /* Not listening yet: refused. */
        assert_errno(rpc_server_listen_fd(t.s, fd), EINVAL);
        assert_int_equal(listen(fd, 16), 0);
        assert_errno(rpc_server_listen_fd(t.s, -1), EBADF);
        assert_errno(rpc_server_listen_fd(t.s, STDIN_FILENO), ENOTSOCK);
        assert_ok(rpc_server_listen_fd(t.s, fd));
        test_server_run(&t);

        assert_int_equal(test_unary(t.sock, "/test.Open/Echo", NULL, 0, "act", &resp, NULL),
                         GRPC_STATUS_OK);
        assert_non_null(strstr(resp, ";act"));

        test_server_stop_owner(&t);
        rpc_server_shutdown(t.s);
        /* Borrowed: still open, and the socket file is not unlinked. */
        assert_true(fcntl(fd, F_GETFD) >= 0);
        assert_int_equal(stat(t.sock, &st), 0);
        close(fd);
        test_server_done(&t);
}

static void test_listen_unix_paths(void **state) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        TestServer t;
        RpcServer *other = NULL;
        _cleanup_free_ char *file = NULL;
        int fd;

        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Echo", RPC_UNARY, test_echo, NULL, 0));
        /* A stale socket file (its server is gone) is replaced. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        strcpy(sa.sun_path, t.sock);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        close(fd);
        test_server_listen(&t);
        test_server_run(&t);
        assert_int_equal(test_unary(t.sock, "/test.Open/Echo", NULL, 0, "", NULL, NULL),
                         GRPC_STATUS_OK);

        /* A live one is not stolen; a regular file is left alone. */
        assert_ok(rpc_server_new(&other));
        assert_errno(rpc_server_listen_unix(other, t.sock, 0666), EADDRINUSE);
        assert_true(asprintf(&file, "%s/file", t.dir) > 0);
        fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(fd);
        assert_errno(rpc_server_listen_unix(other, file, 0666), EEXIST);
        assert_errno(rpc_server_listen_unix(other, "relative.sock", 0666), EINVAL);
        assert_errno(
                rpc_server_listen_unix(other,
                                       "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
                                       0666),
                ENAMETOOLONG);
        rpc_server_free(other);

        /* Listening but never started: the socket file goes away with the server. */
        assert_ok(rpc_server_new(&other));
        free(file);
        file = NULL;
        assert_true(asprintf(&file, "%s/unstarted.sock", t.dir) > 0);
        assert_ok(rpc_server_listen_unix(other, file, 0600));
        assert_int_equal(access(file, F_OK), 0);
        rpc_server_free(other);
        assert_int_equal(access(file, F_OK), -1);

        /* Our own socket file is unlinked at shutdown. */
        test_server_stop_owner(&t);
        rpc_server_shutdown(t.s);
        assert_int_equal(access(t.sock, F_OK), -1);
        test_server_done(&t);
}

static void size_handler(RpcCall *c, void *userdata) {
        char buf[32];
        size_t len;

        (void) rpc_call_request(c, &len);
        snprintf(buf, sizeof(buf), "%zu", len);
        assert_ok(rpc_call_reply(c, buf, strlen(buf)));
}

static void big_reply(RpcCall *c, void *userdata) {
        _cleanup_free_ char *big = calloc(1, RPC_MAX_MESSAGE_SIZE + 1);

        assert_non_null(big);
        assert_errno(rpc_call_reply(c, big, RPC_MAX_MESSAGE_SIZE + 1), EMSGSIZE);
        assert_ok(rpc_call_reply(c, big, RPC_MAX_MESSAGE_SIZE));
        assert_errno(rpc_call_reply(c, big, 1), EALREADY);
        assert_errno(rpc_call_finish(c, GRPC_STATUS_INTERNAL, "x"), EALREADY);
}

static void test_message_limits(void **state) {
        TestServer t;
        RpcChannel *ch = NULL;
        _cleanup_free_ char *big = calloc(1, RPC_MAX_MESSAGE_SIZE + 1);
        void *resp = NULL;
        size_t len = 0;
        int status;

        assert_non_null(big);
        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Size", RPC_UNARY, size_handler, NULL, 0));
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Big", RPC_UNARY, big_reply, NULL, 0));
        test_server_listen(&t);
        test_server_run(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &ch));

        assert_ok(rpc_unary(ch, "/test.Open/Size", NULL, 0, big, RPC_MAX_MESSAGE_SIZE, 5000, &resp,
                            NULL, &status, NULL));
        assert_int_equal(status, GRPC_STATUS_OK);
        assert_string_equal(resp, "4194304");
        free(resp);
        assert_errno(rpc_unary(ch, "/test.Open/Size", NULL, 0, big, RPC_MAX_MESSAGE_SIZE + 1, 5000,
                               &resp, NULL, &status, NULL),
                     EMSGSIZE);
        assert_ok(
                rpc_unary(ch, "/test.Open/Big", NULL, 0, "", 0, 5000, &resp, &len, &status, NULL));
        assert_int_equal(status, GRPC_STATUS_OK);
        assert_int_equal(len, RPC_MAX_MESSAGE_SIZE);
        free(resp);

        rpc_channel_free(ch);
        test_server_done(&t);
}

/* Set by the handler's thread, read by the test's after the call: atomic, as the order
 * between them comes from gRPC, which ThreadSanitizer does not see. */
static _Atomic(pthread_t) handler_thread;

static void thread_echo(RpcCall *c, void *userdata) {
        atomic_store(&handler_thread, pthread_self());
        test_echo(c, userdata);
}

static void test_inline_and_dispatch_threads(void **state) {
        TestServer t;

        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Inline", RPC_UNARY, thread_echo, NULL,
                                        RPC_METHOD_INLINE));
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Owner", RPC_UNARY, thread_echo, NULL, 0));
        assert_errno(rpc_server_add_method(t.s, "/test.Open/Owner", RPC_UNARY, test_echo, NULL, 0),
                     EEXIST);
        assert_errno(rpc_server_add_method(t.s, "no-slash", RPC_UNARY, test_echo, NULL, 0), EINVAL);
        test_server_listen(&t);
        test_server_run(&t);
        assert_errno(rpc_server_add_method(t.s, "/test.Open/Late", RPC_UNARY, test_echo, NULL, 0),
                     EBUSY);

        assert_int_equal(test_unary(t.sock, "/test.Open/Owner", NULL, 0, "", NULL, NULL), 0);
        assert_true(pthread_equal(atomic_load(&handler_thread), t.owner));
        assert_int_equal(test_unary(t.sock, "/test.Open/Inline", NULL, 0, "", NULL, NULL), 0);
        assert_false(pthread_equal(atomic_load(&handler_thread), t.owner));
        assert_false(pthread_equal(atomic_load(&handler_thread), pthread_self()));
        test_server_done(&t);
}

static void errno_handler(RpcCall *c, void *userdata) {
        assert_ok(rpc_call_finish_errno(c, -atoi(rpc_call_request(c, NULL)), "nope"));
}

static void test_errno_status(void **state) {
        TestServer t;
        RpcChannel *ch = NULL;
        _cleanup_free_ char *msg = NULL;
        int status;

        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Fail", RPC_UNARY, errno_handler, NULL, 0));
        test_server_listen(&t);
        test_server_run(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &ch));

        assert_ok(
                rpc_unary(ch, "/test.Open/Fail", NULL, 0, "1", 1, 5000, NULL, NULL, &status, &msg));
        assert_int_equal(status, GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(msg, "nope");
        /* Without ret_status the status comes back as -errno. */
        assert_errno(
                rpc_unary(ch, "/test.Open/Fail", NULL, 0, "2", 1, 5000, NULL, NULL, NULL, NULL),
                ENOENT);
        rpc_channel_free(ch);
        test_server_done(&t);
}

static void test_client_errors(void **state) {
        TestServer t;
        RpcChannel *ch = NULL;
        _cleanup_free_ char *missing = NULL, *uri = NULL;
        int status;

        assert_errno(rpc_channel_new_unix("relative.sock", &ch), EINVAL);
        assert_errno(rpc_channel_new_unix("unix://host/x.sock", &ch), EINVAL);
        assert_errno(rpc_channel_new_unix(NULL, &ch), EINVAL);

        setup_echo(&t);
        /* unix:///abs form */
        assert_true(asprintf(&uri, "unix://%s", t.sock) > 0);
        assert_ok(rpc_channel_new_unix(uri, &ch));
        assert_errno(rpc_unary(ch, "no-slash", NULL, 0, "", 0, 1000, NULL, NULL, &status, NULL),
                     EINVAL);
        assert_ok(
                rpc_unary(ch, "/test.Open/Echo", NULL, 0, "", 0, 5000, NULL, NULL, &status, NULL));
        assert_int_equal(status, GRPC_STATUS_OK);
        rpc_channel_free(ch);

        /* Nobody listening: UNAVAILABLE, not a hang. */
        assert_true(asprintf(&missing, "%s/missing.sock", t.dir) > 0);
        assert_ok(rpc_channel_new_unix(missing, &ch));
        assert_ok(
                rpc_unary(ch, "/test.Open/Echo", NULL, 0, "", 0, 5000, NULL, NULL, &status, NULL));
        assert_int_equal(status, GRPC_STATUS_UNAVAILABLE);
        rpc_channel_free(ch);
        test_server_done(&t);
}

static void test_status_mapping(void **state) {
        assert_int_equal(errno_to_grpc_status(0), GRPC_STATUS_OK);
        assert_int_equal(errno_to_grpc_status(-EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(errno_to_grpc_status(-EPERM), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(errno_to_grpc_status(-EACCES), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(errno_to_grpc_status(-EKEYREVOKED), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(errno_to_grpc_status(-EKEYREJECTED), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(errno_to_grpc_status(-EKEYEXPIRED), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(errno_to_grpc_status(-ENOENT), GRPC_STATUS_NOT_FOUND);
        assert_int_equal(errno_to_grpc_status(-EEXIST), GRPC_STATUS_ALREADY_EXISTS);
        assert_int_equal(errno_to_grpc_status(-EAGAIN), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(errno_to_grpc_status(-ECONNREFUSED), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(errno_to_grpc_status(-ENOTCONN), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(errno_to_grpc_status(-ENOSYS), GRPC_STATUS_UNIMPLEMENTED);
        assert_int_equal(errno_to_grpc_status(-EOPNOTSUPP), GRPC_STATUS_UNIMPLEMENTED);
        assert_int_equal(errno_to_grpc_status(-ETIMEDOUT), GRPC_STATUS_DEADLINE_EXCEEDED);
        assert_int_equal(errno_to_grpc_status(-E2BIG), GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_int_equal(errno_to_grpc_status(-EMSGSIZE), GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_int_equal(errno_to_grpc_status(-ESRCH), GRPC_STATUS_UNAUTHENTICATED);
        assert_int_equal(errno_to_grpc_status(-EIO), GRPC_STATUS_INTERNAL);
        assert_int_equal(errno_to_grpc_status(EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(rpc_status_to_string(GRPC_STATUS_UNAVAILABLE), "UNAVAILABLE");
        assert_string_equal(rpc_status_to_string(99), "UNKNOWN");
        assert_string_equal(rpc_status_to_string(-1), "UNKNOWN");
        /* Round trips where the mapping is one to one. */
        static const int back[] = {EINVAL, ENOENT, EEXIST, ETIMEDOUT, ECANCELED, EOPNOTSUPP};
        for (size_t i = 0; i < ELEMENTSOF(back); i++)
                assert_int_equal(rpc_status_to_errno(errno_to_grpc_status(-back[i])), -back[i]);
        assert_int_equal(rpc_status_to_errno(GRPC_STATUS_OK), 0);
        assert_int_equal(rpc_status_to_errno(GRPC_STATUS_INTERNAL), -EPROTO);
}

static void test_peercred(void **state) {
        int sp[2], pidfd = -EBADF, r;
        PeerCred c;
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        assert_ok(peercred_get(sp[0], &c));
        assert_int_equal(c.pid, getpid());
        assert_int_equal(c.uid, getuid());
        assert_int_equal(c.gid, getgid());
        assert_ok(peercred_get_pidfd(sp[0], c.pid, &pidfd));
        assert_ok(peercred_pidfd_alive(pidfd));
        assert_ok(peercred_pidfd_get_pid(pidfd, &pid));
        assert_int_equal(pid, getpid());
        close(pidfd);
        close(sp[0]);
        close(sp[1]);
        assert_errno(peercred_get(STDIN_FILENO, &c), ENOTSOCK);
        assert_errno(peercred_pidfd_alive(-1), EBADF);

        /* A pinned process that exits is seen as gone. */
        char *argv[] = {"/bin/true", NULL};
        assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
        pidfd = -EBADF;
        r = peercred_get_pidfd(-1, pid, &pidfd);
        assert_errno(r, EINVAL);
        pidfd = missing_pidfd_open(pid, 0);
        assert_true(pidfd >= 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_errno(peercred_pidfd_alive(pidfd), ESRCH);
        assert_errno(peercred_pidfd_get_pid(pidfd, &pid), ESRCH);
        close(pidfd);
}

/* sock_diag: the inode of the other end, as the peer's /proc/<pid>/fd shows it. */
static void test_peer_inode(void **state) {
        struct stat st;
        uint64_t ino = 0;
        int sp[2], pidfd;
        pid_t pid;

        (void) state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(fstat(sp[1], &st), 0);
        assert_ok(peercred_peer_inode(sp[0], &ino));
        assert_int_equal(ino, st.st_ino);
        assert_int_equal(fstat(sp[0], &st), 0);
        assert_ok(peercred_peer_inode(sp[1], &ino));
        assert_int_equal(ino, st.st_ino);
        /* The other end closed: no peer any more. */
        close(sp[1]);
        assert_errno(peercred_peer_inode(sp[0], &ino), ENOTCONN);
        close(sp[0]);
        assert_errno(peercred_peer_inode(sp[0], &ino), EBADF);
        assert_errno(peercred_peer_inode(STDIN_FILENO, &ino), ENOTSOCK);
        assert_errno(peercred_peer_inode(-1, &ino), EINVAL);

        /* peercred_pidfd_running(): one poll, a zombie counts as exited. */
        char *argv[] = {"/bin/sleep", "30", NULL};
        assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
        pidfd = missing_pidfd_open(pid, 0);
        assert_true(pidfd >= 0);
        assert_ok(peercred_pidfd_running(pidfd));
        kill(pid, SIGKILL);
        for (int i = 0; i < 500 && peercred_pidfd_running(pidfd) == 0; i++)
                usleep(1000);
        assert_errno(peercred_pidfd_running(pidfd), ESRCH); /* not reaped yet: a zombie */
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        close(pidfd);
        assert_errno(peercred_pidfd_running(-1), EBADF);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_mapping),
                cmocka_unit_test(test_peercred),
                cmocka_unit_test(test_peer_inode),
                cmocka_unit_test(test_unary_peer),
                cmocka_unit_test(test_unary_other_uid),
                cmocka_unit_test(test_required_metadata),
                cmocka_unit_test(test_unknown_method),
                cmocka_unit_test(test_call_observer),
                cmocka_unit_test(test_listen_fd),
                cmocka_unit_test(test_listen_unix_paths),
                cmocka_unit_test(test_message_limits),
                cmocka_unit_test(test_inline_and_dispatch_threads),
                cmocka_unit_test(test_errno_status),
                cmocka_unit_test(test_client_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
