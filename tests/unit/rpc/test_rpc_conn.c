/* SPDX-License-Identifier: Apache-2.0 */
/* Unix socket connection management of the RPC layer: the global cap (the oldest idle
 * connection closed to make room, none closed while all are busy), the per-uid
 * connection cap, the per-uid cap on concurrent calls, the idle timeout (open streams
 * are not idle), and connection attestation (its result seen by every call, a slow
 * attestation of one uid not delaying another uid). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_testutil.h"
#include "testlib.h"

extern char **environ;

/* --- a stream that stays open until the client leaves --- */

static void hold_closed(RpcCall *c, void *userdata) {
        (void) userdata;
        rpc_call_unref(c);
}

static void hold_stream(RpcCall *c, void *userdata) {
        (void) userdata;
        (void) rpc_call_send(rpc_call_ref(c), "open", 4);
        rpc_call_set_close_callback(c, hold_closed, NULL);
}

static void echo_conn_data(RpcCall *c, void *userdata) {
        const char *d = rpc_call_peer(c)->conn_data;

        (void) userdata;
        (void) rpc_call_reply(c, d ? d : "-", d ? strlen(d) : 1);
}

/* Connection events seen by the observer. */
static unsigned events[_RPC_CONN_EVENT_MAX];
static uid_t last_event_uid;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_conn_event(RpcConnEvent ev, uid_t uid, void *userdata) {
        (void) userdata;
        pthread_mutex_lock(&events_lock);
        events[ev]++;
        last_event_uid = uid;
        pthread_mutex_unlock(&events_lock);
}

static uid_t last_uid(void) {
        uid_t uid;

        pthread_mutex_lock(&events_lock);
        uid = last_event_uid;
        pthread_mutex_unlock(&events_lock);
        return uid;
}

static unsigned events_of(RpcConnEvent ev) {
        unsigned n;

        pthread_mutex_lock(&events_lock);
        n = events[ev];
        pthread_mutex_unlock(&events_lock);
        return n;
}

static void setup(TestServer *t, const RpcConnLimits *l) {
        memset(events, 0, sizeof(events));
        test_server_init(t);
        assert_ok(rpc_server_add_method(t->s, "/test.Open/Echo", RPC_UNARY, test_echo, NULL, 0));
        assert_ok(rpc_server_add_method(t->s, "/test.Open/Hold", RPC_SERVER_STREAM, hold_stream,
                                        NULL, 0));
        assert_ok(rpc_server_set_conn_limits(t->s, l));
        rpc_server_set_conn_observer(t->s, on_conn_event, NULL);
        test_server_listen(t);
        test_server_run(t);
}

static int echo(RpcChannel *ch, int64_t timeout_ms) {
        int status = -1;

        assert_ok(rpc_unary(ch, "/test.Open/Echo", NULL, 0, "", 0, timeout_ms, NULL, NULL, &status,
                            NULL));
        return status;
}

/* Opens a held stream and waits for its first message. */
static RpcStream *hold(RpcChannel *ch) {
        RpcStream *st = NULL;
        void *msg = NULL;

        assert_ok(rpc_stream_open(ch, "/test.Open/Hold", NULL, 0, "", 0, &st));
        if (rpc_stream_next(st, 5000, &msg, NULL) != 1) {
                int status = -1;
                _cleanup_free_ char *m = NULL;

                (void) rpc_stream_status(st, &status, &m);
                fail_msg("stream ended: status %d %s", status, strna(m));
        }
        free(msg);
        return st;
}

static void test_global_cap_evicts_idle(void **state) {
        RpcChannel *a = NULL, *b = NULL, *c = NULL;
        RpcStream *sa, *sb;
        RpcServerStats st;
        TestServer t;

        (void) state;
        assert_errno(rpc_server_set_conn_limits(NULL, &(RpcConnLimits){.max_connections = 1}),
                     EINVAL);
        setup(&t, &(RpcConnLimits){.max_connections = 2});
        assert_errno(rpc_server_set_conn_limits(t.s, &(RpcConnLimits){.max_connections = 3}),
                     EBUSY);
        assert_ok(rpc_channel_new_unix(t.sock, &a));
        assert_ok(rpc_channel_new_unix(t.sock, &b));
        assert_ok(rpc_channel_new_unix(t.sock, &c));

        /* Both connections busy with a stream: the third waits in the backlog. */
        sa = hold(a);
        sb = hold(b);
        assert_int_equal(echo(c, 300), GRPC_STATUS_DEADLINE_EXCEEDED);
        rpc_server_get_stats(t.s, &st);
        assert_int_equal(st.connections_accepted, 2);
        assert_int_equal(st.connections_evicted, 0);

        /* a's stream ends: a is idle now and makes room for c. */
        sa = rpc_stream_free(sa);
        assert_int_equal(echo(c, 5000), GRPC_STATUS_OK);
        rpc_server_get_stats(t.s, &st);
        assert_int_equal(st.connections_accepted, 3);
        assert_int_equal(st.connections_evicted, 1);
        assert_int_equal(events_of(RPC_CONN_EVICTED), 1);
        assert_int_equal(st.connections_open, 2);
        /* b kept its stream all along. */
        rpc_stream_cancel(sb);
        rpc_stream_free(sb);

        rpc_channel_free(a);
        rpc_channel_free(b);
        rpc_channel_free(c);
        test_server_done(&t);
}

/* The build dir may be private (a 0700 checkout): uid 65534 runs a copy of the test
 * client, made once (with the sanitizers' suppression files) and removed at the end. */
static char *client_dir, *client_copy;

static const char *other_uid_client(void) {
        if (!client_copy) {
                client_dir = test_tmpdir();
                client_copy = test_copy_for_other_uid(RPC_TEST_CLIENT_PATH, client_dir);
        }
        return client_copy;
}

/* One uid's connections beyond its cap are closed at once; other uids get in. */
static void test_uid_connection_cap(void **state) {
        RpcChannel *ch[3] = {};
        RpcStream *held[2];
        RpcServerStats st;
        TestServer t;

        (void) state;
        setup(&t, &(RpcConnLimits){.max_connections = 16, .max_connections_per_uid = 2});
        for (size_t i = 0; i < ELEMENTSOF(ch); i++)
                assert_ok(rpc_channel_new_unix(t.sock, &ch[i]));
        held[0] = hold(ch[0]);
        held[1] = hold(ch[1]);
        assert_int_equal(echo(ch[2], 2000), GRPC_STATUS_UNAVAILABLE);
        rpc_server_get_stats(t.s, &st);
        assert_true(st.connections_refused >= 1);
        assert_true(events_of(RPC_CONN_REFUSED_UID) >= 1);
        assert_int_equal(last_uid(), geteuid());

        if (geteuid() == 0) {
                /* Another uid is not held back by root's cap. */
                char *argv[] = {"/usr/bin/setpriv",
                                "--reuid=65534",
                                "--regid=65534",
                                "--clear-groups",
                                (char *) other_uid_client(),
                                "unary",
                                t.sock,
                                "/test.Open/Echo",
                                "x",
                                NULL};
                int status;
                pid_t pid;

                assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        /* Once one of root's connections goes, root gets in again (on a new channel: the
         * refused one waits out gRPC's reconnect back-off). */
        rpc_stream_free(held[0]);
        ch[0] = rpc_channel_free(ch[0]);
        int status = -1;
        for (int i = 0; i < 100 && status != GRPC_STATUS_OK; i++) {
                RpcChannel *fresh = NULL;

                usleep(10000);
                assert_ok(rpc_channel_new_unix(t.sock, &fresh));
                status = echo(fresh, 5000);
                rpc_channel_free(fresh);
        }
        assert_int_equal(status, GRPC_STATUS_OK);
        rpc_stream_free(held[1]);
        for (size_t i = 1; i < ELEMENTSOF(ch); i++)
                rpc_channel_free(ch[i]);
        test_server_done(&t);
}

static unsigned refused_calls;
static void on_refused_call(const char *method, grpc_status_code status, void *userdata) {
        (void) method;
        (void) userdata;
        if (status == GRPC_STATUS_RESOURCE_EXHAUSTED)
                __atomic_add_fetch(&refused_calls, 1, __ATOMIC_RELAXED);
}

static bool one_refused(void *userdata) {
        (void) userdata;
        return __atomic_load_n(&refused_calls, __ATOMIC_RELAXED) == 1;
}

/* Concurrent calls per uid, open streams included, on one or many connections. */
static void test_uid_call_cap(void **state) {
        RpcChannel *a = NULL, *b = NULL;
        RpcStream *s1, *s2;
        _cleanup_free_ char *msg = NULL;
        TestServer t;
        int status = -1;

        (void) state;
        refused_calls = 0;
        memset(events, 0, sizeof(events));
        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Echo", RPC_UNARY, test_echo, NULL, 0));
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Hold", RPC_SERVER_STREAM, hold_stream,
                                        NULL, 0));
        assert_ok(rpc_server_set_conn_limits(
                t.s, &(RpcConnLimits){.max_connections = 16, .max_calls_per_uid = 2}));
        rpc_server_set_call_observer(t.s, on_refused_call, NULL);
        test_server_listen(&t);
        test_server_run(&t);
        assert_ok(rpc_channel_new_unix(t.sock, &a));
        assert_ok(rpc_channel_new_unix(t.sock, &b));
        s1 = hold(a);
        s2 = hold(b);
        assert_ok(rpc_unary(b, "/test.Open/Echo", NULL, 0, "", 0, 5000, NULL, NULL, &status, &msg));
        assert_int_equal(status, GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_string_equal(msg, "too many concurrent calls for this user");
        /* The observer runs right after the status is queued: maybe after we got it. */
        assert_true(test_wait_for(one_refused, NULL, 5000));
        /* A stream ends: room for a call again (counted when the call is released). */
        rpc_stream_free(s1);
        for (int i = 0; i < 100 && echo(a, 5000) != GRPC_STATUS_OK; i++)
                usleep(10000);
        assert_int_equal(echo(a, 5000), GRPC_STATUS_OK);
        rpc_stream_free(s2);
        rpc_channel_free(a);
        rpc_channel_free(b);
        test_server_done(&t);
}

static bool idle_closed_once(void *userdata) {
        RpcServerStats st;

        rpc_server_get_stats(userdata, &st);
        return st.connections_idle_closed >= 1;
}

static void test_idle_timeout(void **state) {
        RpcChannel *a = NULL, *b = NULL;
        RpcServerStats st;
        RpcStream *s;
        TestServer t;

        (void) state;
        setup(&t, &(RpcConnLimits){.max_connections = 16, .idle_timeout_ms = 200});
        assert_ok(rpc_channel_new_unix(t.sock, &a));
        assert_ok(rpc_channel_new_unix(t.sock, &b));
        assert_int_equal(echo(a, 5000), GRPC_STATUS_OK);
        s = hold(b);
        assert_true(test_wait_for(idle_closed_once, t.s, 5000));
        usleep(1500 * 1000); /* several idle checks later */
        rpc_server_get_stats(t.s, &st);
        /* a was closed; b, with its stream open, was not. */
        assert_int_equal(st.connections_idle_closed, 1);
        assert_int_equal(events_of(RPC_CONN_IDLE_CLOSED), 1);
        assert_int_equal(st.connections_open, 1);
        /* a's channel simply reconnects. */
        assert_int_equal(echo(a, 5000), GRPC_STATUS_OK);
        rpc_stream_free(s);
        rpc_channel_free(a);
        rpc_channel_free(b);
        test_server_done(&t);
}

/* Attestation: uid 65534's takes a second; root's connections meanwhile don't wait. */
static void *attest_slow_nobody(const RpcConnInfo *info, void *userdata) {
        char *s = NULL;

        (void) userdata;
        if (info->uid == 65534)
                sleep(1);
        assert_true(info->fd >= 0 && info->pidfd >= 0 && info->conn_id > 0);
        if (asprintf(&s, "attested uid=%u pid=%d", (unsigned) info->uid, (int) info->pid) < 0)
                return NULL;
        return s;
}

static void test_attestation(void **state) {
        _cleanup_free_ char *resp = NULL, *want = NULL;
        TestServer t;
        pid_t pid = -1;
        uint64_t t0;

        (void) state;
        test_server_init(&t);
        assert_ok(rpc_server_add_method(t.s, "/test.Open/Data", RPC_UNARY, echo_conn_data, NULL,
                                        RPC_METHOD_INLINE));
        assert_ok(rpc_server_set_conn_attest(t.s, attest_slow_nobody, free, NULL));
        test_server_listen(&t);
        test_server_run(&t);
        assert_int_equal(test_unary(t.sock, "/test.Open/Data", NULL, 0, "", &resp, NULL),
                         GRPC_STATUS_OK);
        assert_true(asprintf(&want, "attested uid=%u pid=%d", (unsigned) geteuid(),
                             (int) getpid()) > 0);
        assert_string_equal(resp, want);

        if (geteuid() == 0) {
                char *argv[] = {"/usr/bin/setpriv",
                                "--reuid=65534",
                                "--regid=65534",
                                "--clear-groups",
                                (char *) other_uid_client(),
                                "unary",
                                t.sock,
                                "/test.Open/Data",
                                "x",
                                NULL};
                int status;

                assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
                usleep(200 * 1000); /* its attestation has begun */
                t0 = test_now_ms();
                free(resp);
                resp = NULL;
                assert_int_equal(test_unary(t.sock, "/test.Open/Data", NULL, 0, "", &resp, NULL),
                                 GRPC_STATUS_OK);
                assert_true(test_now_ms() - t0 < 500);
                assert_string_equal(resp, want);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        test_server_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_global_cap_evicts_idle),
                cmocka_unit_test(test_uid_connection_cap),
                cmocka_unit_test(test_uid_call_cap),
                cmocka_unit_test(test_idle_timeout),
                cmocka_unit_test(test_attestation),
        };
        int r;

        (void) log_parse_environment();
        r = cmocka_run_group_tests(tests, NULL, NULL);
        free(client_copy);
        if (client_dir)
                test_rmdir_free(client_dir);
        return r;
}
