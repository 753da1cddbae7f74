/* SPDX-License-Identifier: Apache-2.0 */
/* Server streams: first message at once, pushes from other threads, coalescing
 * for slow readers, close callbacks on cancel, message ordering before a final
 * status, and shutdown with many open streams. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "rpc.h"
#include "rpc_client.h"
#include "rpc_testutil.h"
#include "testlib.h"

#define MAX_STREAMS 512

extern char **environ;

typedef struct Streams {
        pthread_mutex_t lock;
        RpcCall *calls[MAX_STREAMS];
        size_t n;
        unsigned closed, cancelled;
        unsigned long version;
} Streams;

static Streams S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void streams_reset(void) {
        pthread_mutex_lock(&S.lock);
        assert_int_equal(S.n, 0);
        S.closed = S.cancelled = 0;
        S.version = 0;
        pthread_mutex_unlock(&S.lock);
}

static void send_version_locked(RpcCall *c, size_t pad) {
        _cleanup_free_ char *buf = calloc(1, pad + 32);
        int n;

        assert_non_null(buf);
        n = snprintf(buf, 32, "v=%lu;", S.version);
        memset(buf + n, 'x', pad);
        (void) rpc_call_send(c, buf, (size_t) n + pad);
}

/* Sends the current version to every open stream, from the calling thread. */
static void push_all(size_t pad) {
        pthread_mutex_lock(&S.lock);
        S.version++;
        for (size_t i = 0; i < S.n; i++)
                send_version_locked(S.calls[i], pad);
        pthread_mutex_unlock(&S.lock);
}

static void watch_closed(RpcCall *c, void *userdata) {
        pthread_mutex_lock(&S.lock);
        for (size_t i = 0; i < S.n; i++)
                if (S.calls[i] == c) {
                        S.calls[i] = S.calls[--S.n];
                        break;
                }
        S.closed++;
        if (rpc_call_was_cancelled(c))
                S.cancelled++;
        pthread_mutex_unlock(&S.lock);
        rpc_call_unref(c);
}

static void watch(RpcCall *c, void *userdata) {
        pthread_mutex_lock(&S.lock);
        assert_true(S.n < MAX_STREAMS);
        S.calls[S.n++] = rpc_call_ref(c);
        send_version_locked(c, 0);
        pthread_mutex_unlock(&S.lock);
        rpc_call_set_close_callback(c, watch_closed, NULL);
}

/* Sends "a" and "b", then ends with NOT_FOUND; checks the send error cases. */
static void finite_stream(RpcCall *c, void *userdata) {
        _cleanup_free_ char *big = calloc(1, RPC_MAX_MESSAGE_SIZE + 1);

        assert_non_null(big);
        assert_errno(rpc_call_send(c, big, RPC_MAX_MESSAGE_SIZE + 1), EMSGSIZE);
        assert_ok(rpc_call_send(c, "a", 1));
        assert_ok(rpc_call_send(c, "b", 1));
        assert_ok(rpc_call_finish(c, GRPC_STATUS_NOT_FOUND, "gone"));
        assert_errno(rpc_call_send(c, "c", 1), EALREADY);
        assert_errno(rpc_call_finish(c, GRPC_STATUS_OK, NULL), EALREADY);
}

static void unary_send(RpcCall *c, void *userdata) {
        assert_errno(rpc_call_send(c, "x", 1), EINVAL);
        assert_ok(rpc_call_reply(c, "ok", 2));
}

static void setup(TestServer *t) {
        streams_reset();
        test_server_init(t);
        assert_ok(
                rpc_server_add_method(t->s, "/test.Open/Watch", RPC_SERVER_STREAM, watch, NULL, 0));
        assert_ok(rpc_server_add_method(t->s, "/test.Open/WatchInline", RPC_SERVER_STREAM, watch,
                                        NULL, RPC_METHOD_INLINE));
        assert_ok(rpc_server_add_method(t->s, "/test.Open/Finite", RPC_SERVER_STREAM, finite_stream,
                                        NULL, 0));
        assert_ok(rpc_server_add_method(t->s, "/test.Open/Unary", RPC_UNARY, unary_send, NULL, 0));
        test_server_listen(t);
        test_server_run(t);
}

static unsigned long next_version(RpcStream *st) {
        _cleanup_free_ char *msg = NULL;
        unsigned long v;

        assert_int_equal(rpc_stream_next(st, 10000, (void **) &msg, NULL), 1);
        assert_int_equal(sscanf(msg, "v=%lu;", &v), 1);
        return v;
}

static bool n_streams_is(void *p) {
        size_t want = (size_t) p, n;

        pthread_mutex_lock(&S.lock);
        n = S.n;
        pthread_mutex_unlock(&S.lock);
        return n == want;
}

static void *pusher(void *p) {
        for (int i = 0; i < 200; i++)
                push_all(0);
        return NULL;
}

static void test_stream_pushes(void **state) {
        TestServer t;
        RpcChannel *ch = NULL;
        RpcStream *st = NULL;
        unsigned long v, last;
        pthread_t pt;

        setup(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &ch));
        assert_ok(rpc_stream_open(ch, "/test.Open/Watch", NULL, 0, "", 0, &st));
        /* The first message comes without any push. */
        assert_int_equal(next_version(st), 0);
        assert_true(n_streams_is((void *) 1));

        /* Pushes from another thread: in order, ending with the newest. */
        assert_int_equal(pthread_create(&pt, NULL, pusher, NULL), 0);
        last = 0;
        do {
                v = next_version(st);
                assert_true(v > last);
                last = v;
        } while (v < 200);
        pthread_join(pt, NULL);

        /* A reader that keeps up gets every push. */
        for (unsigned long i = 201; i <= 220; i++) {
                push_all(0);
                assert_int_equal(next_version(st), i);
        }
        assert_errno(rpc_stream_next(st, 50, (void **) &(char *){NULL}, NULL), ETIMEDOUT);

        rpc_stream_free(st);
        rpc_channel_free(ch);
        test_server_done(&t);
}

static void test_stream_coalescing(void **state) {
        const unsigned n_push = 2000;
        const size_t pad = 64 * 1024;
        TestServer t;
        RpcChannel *ch = NULL;
        RpcStream *st = NULL;
        RpcServerStats s;
        unsigned long v, last = 0, received = 0;

        setup(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &ch));
        assert_ok(rpc_stream_open(ch, "/test.Open/Watch", NULL, 0, "", 0, &st));
        assert_int_equal(next_version(st), 0);

        /* 2000 x 64 KiB (125 MiB) to a client that does not read meanwhile. */
        for (unsigned i = 0; i < n_push; i++)
                push_all(pad);

        do {
                v = next_version(st);
                assert_true(v > last);
                last = v;
                received++;
        } while (v < n_push);

        rpc_server_get_stats(t.s, &s);
        /* One message in flight plus at most one waiting: the rest was replaced. */
        assert_int_equal(s.messages_sent + s.messages_coalesced, n_push + 1);
        assert_int_equal(s.messages_sent, received + 1);
        assert_true(s.messages_coalesced > n_push / 2);
        assert_true(received < n_push / 4);
        printf("# coalescing: %u pushes of 64 KiB, %lu delivered, %" PRIu64 " replaced\n", n_push,
               received, s.messages_coalesced);

        rpc_stream_free(st);
        rpc_channel_free(ch);
        test_server_done(&t);
}

static bool closed_is(void *p) {
        unsigned want = (unsigned) (uintptr_t) p, n;

        pthread_mutex_lock(&S.lock);
        n = S.closed;
        pthread_mutex_unlock(&S.lock);
        return n == want;
}

static void test_stream_cancel(void **state) {
        static const char *const methods[] = {"/test.Open/Watch", "/test.Open/WatchInline"};
        TestServer t;
        RpcChannel *ch = NULL;

        setup(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &ch));
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                RpcStream *st = NULL;
                RpcCall *c;
                char *msg = NULL;
                int status;

                assert_ok(rpc_stream_open(ch, methods[i], NULL, 0, "", 0, &st));
                assert_int_equal(next_version(st), 0);
                pthread_mutex_lock(&S.lock);
                assert_int_equal(S.n, 1);
                c = rpc_call_ref(S.calls[0]);
                pthread_mutex_unlock(&S.lock);
                assert_false(rpc_call_is_closed(c));

                rpc_stream_cancel(st);
                assert_int_equal(rpc_stream_next(st, 5000, (void **) &msg, NULL), 0);
                assert_ok(rpc_stream_status(st, &status, NULL));
                assert_int_equal(status, GRPC_STATUS_CANCELLED);

                /* The server's close callback fires; the call is dead for sends. */
                assert_true(test_wait_for(closed_is, (void *) (uintptr_t) (i + 1), 5000));
                assert_int_equal(S.cancelled, i + 1);
                assert_true(rpc_call_is_closed(c));
                assert_true(rpc_call_was_cancelled(c));
                assert_errno(rpc_call_send(c, "late", 4), ENOTCONN);
                assert_errno(rpc_call_finish(c, GRPC_STATUS_OK, NULL), ENOTCONN);
                rpc_call_unref(c);
                rpc_stream_free(st);
        }
        rpc_channel_free(ch);
        test_server_done(&t);
}

/* A client process killed mid-stream: the connection drops, the close callback
 * fires, and the call counts as cancelled. */
static void test_stream_client_killed(void **state) {
        TestServer t;
        pid_t pid;
        int status;

        setup(&t);
        char *argv[] = {RPC_TEST_CLIENT_PATH, "watch", t.sock, "/test.Open/Watch", "", NULL};
        posix_spawn_file_actions_t fa;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        assert_true(test_wait_for(n_streams_is, (void *) 1, 10000));
        pthread_mutex_lock(&S.lock);
        assert_int_equal(S.calls[0] ? rpc_call_peer(S.calls[0])->pid : 0, pid);
        pthread_mutex_unlock(&S.lock);

        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(test_wait_for(closed_is, (void *) 1, 5000));
        assert_int_equal(S.cancelled, 1);
        assert_int_equal(S.n, 0);
        test_server_done(&t);
}

static void test_stream_finish_order(void **state) {
        TestServer t;
        RpcChannel *ch = NULL;
        RpcStream *st = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *smsg = NULL;
        char *none = NULL;
        int status;

        setup(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &ch));
        assert_ok(rpc_stream_open(ch, "/test.Open/Finite", NULL, 0, "", 0, &st));
        assert_int_equal(rpc_stream_next(st, 5000, (void **) &a, NULL), 1);
        assert_int_equal(rpc_stream_next(st, 5000, (void **) &b, NULL), 1);
        assert_string_equal(a, "a");
        assert_string_equal(b, "b");
        assert_int_equal(rpc_stream_next(st, 5000, (void **) &none, NULL), 0);
        assert_int_equal(rpc_stream_next(st, 5000, (void **) &none, NULL), 0);
        assert_ok(rpc_stream_status(st, &status, &smsg));
        assert_int_equal(status, GRPC_STATUS_NOT_FOUND);
        assert_string_equal(smsg, "gone");
        rpc_stream_free(st);

        assert_int_equal(test_unary(t.sock, "/test.Open/Unary", NULL, 0, "", NULL, NULL),
                         GRPC_STATUS_OK);
        rpc_channel_free(ch);
        test_server_done(&t);
}

static void test_shutdown_many_streams(void **state) {
        enum { N_CH = 4, PER_CH = 50, N = N_CH * PER_CH };
        TestServer t;
        RpcChannel *ch[N_CH] = {};
        RpcStream *st[N] = {};
        RpcServerStats s;
        uint64_t start;

        setup(&t);
        for (size_t i = 0; i < N_CH; i++)
                assert_ok(rpc_channel_new_unix(t.sock, &ch[i]));
        for (size_t i = 0; i < N; i++) {
                assert_ok(rpc_stream_open(ch[i % N_CH],
                                          i % 2 ? "/test.Open/Watch" : "/test.Open/WatchInline",
                                          NULL, 0, "", 0, &st[i]));
                assert_int_equal(next_version(st[i]), 0);
        }
        assert_true(n_streams_is((void *) (size_t) N));
        push_all(0);

        test_server_stop_owner(&t);
        start = test_now_ms();
        rpc_server_shutdown(t.s);
        printf("# shutdown with %d open streams: %" PRIu64 " ms\n", N, test_now_ms() - start);

        /* Every close callback ran (inline ones on the CQ thread, the others in
         * shutdown on this thread) and every gRPC call is released. */
        assert_int_equal(S.closed, N);
        assert_int_equal(S.n, 0);
        rpc_server_get_stats(t.s, &s);
        assert_int_equal(s.calls_active, 0);

        for (size_t i = 0; i < N; i++) {
                char *msg = NULL;
                int status, r;

                /* The push may or may not have made it before the end. */
                while ((r = rpc_stream_next(st[i], 5000, (void **) &msg, NULL)) == 1)
                        free(msg);
                assert_int_equal(r, 0);
                assert_ok(rpc_stream_status(st[i], &status, NULL));
                assert_int_equal(status, GRPC_STATUS_UNAVAILABLE);
                rpc_stream_free(st[i]);
        }
        for (size_t i = 0; i < N_CH; i++)
                rpc_channel_free(ch[i]);
        test_server_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stream_pushes),
                cmocka_unit_test(test_stream_coalescing),
                cmocka_unit_test(test_stream_cancel),
                cmocka_unit_test(test_stream_client_killed),
                cmocka_unit_test(test_stream_finish_order),
                cmocka_unit_test(test_shutdown_many_streams),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
