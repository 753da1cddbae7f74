/* SPDX-License-Identifier: Apache-2.0 */
/* Protobuf messages on an RpcCall (rpc_message.h): the size limit of the packer, a
 * request unpacked and answered, a malformed request, a second answer, and an answer
 * to a call that went away. */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc.h"
#include "rpc_message.h"
#include "rpc_status.h"
#include "rpc_testutil.h"
#include "testlib.h"
#include "warden/node/v1/node.pb-c.h"

#define ECHO "/test.Message/Echo"
#define HOLD "/test.Message/Hold"

static int reply_first = -1, reply_second = -1;
static RpcCall *held;

/* A message of n bytes: one bytes field (tag, 4-byte length, payload). */
static void test_pack_limit(void **state) {
        Warden__Node__V1__X509PopChallengeResponse m =
                WARDEN__NODE__V1__X509_POP_CHALLENGE_RESPONSE__INIT;
        _cleanup_free_ uint8_t *payload = calloc(1, RPC_MAX_MESSAGE_SIZE);
        uint8_t *buf = NULL;
        size_t len = 0;

        assert_non_null(payload);
        m.nonce = (ProtobufCBinaryData){RPC_MAX_MESSAGE_SIZE - 5, payload};
        assert_ok(rpc_message_pack(&m.base, &buf, &len));
        assert_int_equal(len, RPC_MAX_MESSAGE_SIZE);
        rpc_message_free(buf, len, RPC_MESSAGE_ERASE);

        buf = NULL;
        m.nonce.len++;
        assert_errno(rpc_message_pack(&m.base, &buf, &len), EMSGSIZE);
        assert_null(buf);

        m.nonce = (ProtobufCBinaryData){};
        assert_ok(rpc_message_pack(&m.base, &buf, &len));
        assert_non_null(buf);
        assert_int_equal(len, 0);
        rpc_message_free(buf, len, 0);
        rpc_message_free(NULL, 0, RPC_MESSAGE_ERASE);
}

/* Unpacks a HealthCheckRequest and answers with the same message. */
static void message_echo(RpcCall *c, void *userdata) {
        ProtobufCMessage *req = NULL;
        int r;

        r = rpc_message_unpack(c, &grpc__health__v1__health_check_request__descriptor, &req);
        if (r < 0) {
                (void) rpc_call_finish_errno(c, r, "malformed request");
                return;
        }
        r = rpc_message_reply(c, req, RPC_MESSAGE_ERASE);
        __atomic_store_n(&reply_first, r, __ATOMIC_RELEASE);
        r = rpc_message_reply(c, req, 0);
        __atomic_store_n(&reply_second, r, __ATOMIC_RELEASE);
        protobuf_c_message_free_unpacked(req, NULL);
}

static void message_hold(RpcCall *c, void *userdata) {
        __atomic_store_n(&held, rpc_call_ref(c), __ATOMIC_RELEASE);
}

/* The handler goes on after its answer went out. */
static bool replied_twice(void *userdata) {
        return __atomic_load_n(&reply_second, __ATOMIC_ACQUIRE) != -1;
}

static void setup(TestServer *t) {
        test_server_init(t);
        assert_ok(rpc_server_add_method(t->s, ECHO, RPC_UNARY, message_echo, NULL, 0));
        assert_ok(rpc_server_add_method(t->s, HOLD, RPC_UNARY, message_hold, NULL, 0));
        test_server_listen(t);
        test_server_run(t);
}

static void test_unpack_reply(void **state) {
        _cleanup_free_ char *resp = NULL, *msg = NULL;
        TestServer t;

        setup(&t);
        /* HealthCheckRequest{service: "abc"} */
        assert_int_equal(test_unary(t.sock, ECHO, NULL, 0,
                                    "\x0a\x03"
                                    "abc",
                                    &resp, NULL),
                         GRPC_STATUS_OK);
        assert_string_equal(resp, "\x0a\x03"
                                  "abc");
        assert_true(test_wait_for(replied_twice, NULL, 5000));
        assert_int_equal(reply_first, 1);
        assert_int_equal(reply_second, -EALREADY);

        /* field 1 with wire type 7: no such message */
        assert_int_equal(test_unary(t.sock, ECHO, NULL, 0, "\x0f", NULL, &msg),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(msg, "malformed request");
        test_server_done(&t);
}

static void *hold_client(void *p) {
        TestServer *t = p;

        (void) test_unary(t->sock, HOLD, NULL, 0, "", NULL, NULL);
        return NULL;
}

static bool is_held(void *userdata) {
        return __atomic_load_n(&held, __ATOMIC_ACQUIRE) != NULL;
}

static void test_reply_gone(void **state) {
        Grpc__Health__V1__HealthCheckResponse m = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        pthread_t client;
        TestServer t;

        setup(&t);
        assert_int_equal(pthread_create(&client, NULL, hold_client, &t), 0);
        assert_true(test_wait_for(is_held, NULL, 5000));
        test_server_stop_owner(&t);
        rpc_server_shutdown(t.s);
        /* Nobody left to answer: not an error. */
        assert_int_equal(rpc_message_reply(held, &m.base, 0), 0);
        held = rpc_call_unref(held);
        pthread_join(client, NULL);
        test_server_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pack_limit),
                cmocka_unit_test(test_unpack_reply),
                cmocka_unit_test(test_reply_gone),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
