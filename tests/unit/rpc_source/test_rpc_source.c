/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_source.h"
#include "testlib.h"

static RpcSourceAddr addr(const char *s) {
        RpcSourceAddr a;

        assert_ok(rpc_source_addr_from_string(s, &a));
        return a;
}

/* IPv4 is kept mapped: "10.0.0.1" and "::ffff:10.0.0.1" are one source. */
static void test_addr(void **state) {
        RpcSourceAddr a = addr("10.0.0.1"), b = addr("::ffff:10.0.0.1"), c = addr("::1");
        struct sockaddr_in in = {.sin_family = AF_INET};
        char buf[INET6_ADDRSTRLEN];
        RpcSourceAddr d;

        assert_memory_equal(a.b, b.b, sizeof(a.b));
        assert_memory_not_equal(a.b, c.b, sizeof(a.b));
        rpc_source_addr_to_string(&a, buf);
        assert_string_equal(buf, "10.0.0.1");
        rpc_source_addr_to_string(&c, buf);
        assert_string_equal(buf, "::1");
        in.sin_addr.s_addr = htonl(0x0a000001);
        assert_ok(rpc_source_addr_from_sockaddr((struct sockaddr *) &in, &d));
        assert_memory_equal(a.b, d.b, sizeof(a.b));
        assert_errno(rpc_source_addr_from_string("10.0.0", &d), EINVAL);
        assert_errno(rpc_source_addr_from_string("", &d), EINVAL);
        assert_errno(rpc_source_addr_from_string(NULL, &d), EINVAL);
        in.sin_family = AF_UNIX;
        assert_errno(rpc_source_addr_from_sockaddr((struct sockaddr *) &in, &d), EAFNOSUPPORT);
}

/* The cap is per address: at the cap one more is refused (nothing counted), another
 * address is not affected, a release makes room, and an address holding nothing has no
 * entry. */
static void test_conn_cap(void **state) {
        RpcSourceAddr a = addr("192.0.2.1"), b = addr("2001:db8::1");
        RpcSourceTable *t = NULL;

        assert_ok(rpc_source_table_new(3, 0, 0, &t));
        for (int i = 0; i < 3; i++)
                assert_ok(rpc_source_conn_admit(t, &a));
        assert_errno(rpc_source_conn_admit(t, &a), EDQUOT);
        assert_int_equal(rpc_source_conns(t, &a), 3);
        assert_ok(rpc_source_conn_admit(t, &b));
        assert_int_equal(rpc_source_table_size(t), 2);
        rpc_source_conn_release(t, &a);
        assert_ok(rpc_source_conn_admit(t, &a));
        assert_errno(rpc_source_conn_admit(t, &a), EDQUOT);
        for (int i = 0; i < 3; i++)
                rpc_source_conn_release(t, &a);
        rpc_source_conn_release(t, &a); /* one too many: ignored */
        rpc_source_conn_release(t, &b);
        assert_int_equal(rpc_source_conns(t, &a), 0);
        assert_int_equal(rpc_source_table_size(t), 0);
        rpc_source_table_free(t);
}

/* 0 = no cap. */
static void test_conn_no_cap(void **state) {
        RpcSourceAddr a = addr("192.0.2.1");
        RpcSourceTable *t = NULL;

        assert_ok(rpc_source_table_new(0, 0, 0, &t));
        for (int i = 0; i < 10000; i++)
                assert_ok(rpc_source_conn_admit(t, &a));
        assert_int_equal(rpc_source_conns(t, &a), 10000);
        rpc_source_table_free(t);
}

/* 2 per second, bursts of 4: four at once, then one every 500 ms; each address has its
 * own bucket; a bucket never holds more than the burst. */
static void test_rate(void **state) {
        RpcSourceAddr a = addr("192.0.2.1"), b = addr("192.0.2.2");
        RpcSourceTable *t = NULL;
        uint64_t now = 1000000;

        assert_ok(rpc_source_table_new(0, 2, 4, &t));
        for (int i = 0; i < 4; i++)
                assert_ok(rpc_source_rate_take(t, &a, now));
        assert_errno(rpc_source_rate_take(t, &a, now), EDQUOT);
        assert_errno(rpc_source_rate_take(t, &a, now + 499), EDQUOT);
        assert_ok(rpc_source_rate_take(t, &b, now));
        assert_ok(rpc_source_rate_take(t, &a, now + 500));
        assert_errno(rpc_source_rate_take(t, &a, now + 600), EDQUOT);
        /* A long pause refills to the burst, not beyond. */
        now += 3600 * 1000;
        for (int i = 0; i < 4; i++)
                assert_ok(rpc_source_rate_take(t, &a, now));
        assert_errno(rpc_source_rate_take(t, &a, now), EDQUOT);
        /* A clock that goes back refills nothing. */
        assert_errno(rpc_source_rate_take(t, &a, now - 10000), EDQUOT);
        rpc_source_table_free(t);
}

/* Without a rate nothing is limited and no entry is made. */
static void test_rate_off(void **state) {
        RpcSourceAddr a = addr("192.0.2.1");
        RpcSourceTable *t = NULL;

        assert_ok(rpc_source_table_new(0, 0, 0, &t));
        for (int i = 0; i < 1000; i++)
                assert_ok(rpc_source_rate_take(t, &a, 5));
        assert_int_equal(rpc_source_table_size(t), 0);
        rpc_source_table_free(t);
        assert_errno(rpc_source_table_new(0, -1, 0, &t), EINVAL);
}

/* A full table refuses new addresses until entries refill; then they are collected. */
static void test_full(void **state) {
        RpcSourceTable *t = NULL;
        RpcSourceAddr a = {};
        uint64_t now = 1000;

        assert_ok(rpc_source_table_new(0, 1, 1, &t));
        for (uint32_t i = 0; i < RPC_SOURCE_MAX; i++) {
                memcpy(a.b, &i, sizeof(i));
                assert_ok(rpc_source_rate_take(t, &a, now));
        }
        assert_int_equal(rpc_source_table_size(t), RPC_SOURCE_MAX);
        a.b[15] = 1; /* a new address */
        assert_errno(rpc_source_rate_take(t, &a, now), ENOSPC);
        assert_errno(rpc_source_conn_admit(t, &a), ENOSPC);
        /* One second later every bucket is full again: all are collected. */
        assert_ok(rpc_source_rate_take(t, &a, now + 1000));
        assert_int_equal(rpc_source_table_size(t), 1);
        rpc_source_table_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_addr),        cmocka_unit_test(test_conn_cap),
                cmocka_unit_test(test_conn_no_cap), cmocka_unit_test(test_rate),
                cmocka_unit_test(test_rate_off),    cmocka_unit_test(test_full),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
