/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
#include "testlib.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static void test_uint(void **state) {
        uint64_t u64 = 7;
        uint32_t u32 = 7;
        (void) state;

        assert_ok(parse_uint64("0", &u64));
        assert_int_equal(u64, 0);
        assert_ok(parse_uint64("18446744073709551615", &u64));
        assert_true(u64 == UINT64_MAX);
        assert_errno(parse_uint64("18446744073709551616", &u64), ERANGE);
        assert_errno(parse_uint64("99999999999999999999999", &u64), ERANGE);
        assert_true(u64 == UINT64_MAX); /* untouched on failure */
        assert_errno(parse_uint64("", &u64), EINVAL);
        assert_errno(parse_uint64(NULL, &u64), EINVAL);
        assert_errno(parse_uint64("-1", &u64), EINVAL);
        assert_errno(parse_uint64("+1", &u64), EINVAL);
        assert_errno(parse_uint64(" 1", &u64), EINVAL);
        assert_errno(parse_uint64("1 ", &u64), EINVAL);
        assert_errno(parse_uint64("0x10", &u64), EINVAL);
        assert_errno(parse_uint64("1e3", &u64), EINVAL);

        assert_ok(parse_uint32("4294967295", &u32));
        assert_int_equal(u32, UINT32_MAX);
        assert_ok(parse_uint32("0042", &u32));
        assert_int_equal(u32, 42);
        assert_errno(parse_uint32("4294967296", &u32), ERANGE);
        assert_errno(parse_uint32("abc", &u32), EINVAL);
        assert_int_equal(u32, 42);
}

static void test_int64(void **state) {
        int64_t v = 0;
        (void) state;

        assert_ok(parse_int64("-5", &v));
        assert_int_equal(v, -5);
        assert_ok(parse_int64("9223372036854775807", &v));
        assert_true(v == INT64_MAX);
        assert_ok(parse_int64("-9223372036854775808", &v));
        assert_true(v == INT64_MIN);
        assert_errno(parse_int64("9223372036854775808", &v), ERANGE);
        assert_errno(parse_int64("-9223372036854775809", &v), ERANGE);
        assert_errno(parse_int64("-", &v), EINVAL);
        assert_errno(parse_int64("--1", &v), EINVAL);
        assert_errno(parse_int64("+1", &v), EINVAL);
        assert_true(v == INT64_MIN);
}

static void test_port(void **state) {
        uint16_t p = 1;
        (void) state;

        assert_ok(parse_port("0", &p));
        assert_int_equal(p, 0);
        assert_ok(parse_port("8081", &p));
        assert_int_equal(p, 8081);
        assert_ok(parse_port("65535", &p));
        assert_int_equal(p, 65535);
        assert_errno(parse_port("65536", &p), ERANGE);
        assert_errno(parse_port("-1", &p), EINVAL);
        assert_errno(parse_port("http", &p), EINVAL);
        assert_errno(parse_port("", &p), EINVAL);
        assert_int_equal(p, 65535);
}

static void test_bool(void **state) {
        static const char *const t[] = {"true", "TRUE", "yes", "on", "1", "True"};
        static const char *const f[] = {"false", "no", "off", "0", "FALSE"};
        static const char *const bad[] = {"", "2", "tru", "y", "enable", " true"};
        bool b;
        (void) state;

        for (size_t i = 0; i < ELEMENTS(t); i++) {
                b = false;
                assert_ok(parse_bool(t[i], &b));
                assert_true(b);
        }
        for (size_t i = 0; i < ELEMENTS(f); i++) {
                b = true;
                assert_ok(parse_bool(f[i], &b));
                assert_false(b);
        }
        for (size_t i = 0; i < ELEMENTS(bad); i++)
                assert_errno(parse_bool(bad[i], &b), EINVAL);
        assert_errno(parse_bool(NULL, &b), EINVAL);
}

static void test_duration(void **state) {
        static const struct {
                const char *s;
                int64_t secs;
        } good[] = {
                {"0", 0},
                {"90", 90},
                {"90s", 90},
                {"5m", 300},
                {"1h", 3600},
                {"24h", 86400},
                {"1h30m", 5400},
                {"7d", 604800},
                {"1d12h30m15s", 86400 + 43200 + 1800 + 15},
                {"0s", 0},
                {"90m", 5400},
                {"2h0m", 7200},
                {"9223372036854775807", INT64_MAX},
                {"9223372036854775807s", INT64_MAX},
        };
        static const struct {
                const char *s;
                int err;
        } bad[] = {
                {"", EINVAL},
                {"-5m", EINVAL},
                {"-1", EINVAL},
                {"+5m", EINVAL},
                {"5x", EINVAL},
                {"1ms", EINVAL},
                {"1w", EINVAL},
                {"1h30", EINVAL},
                {"h", EINVAL},
                {"1.5h", EINVAL},
                {"1 h", EINVAL},
                {" 1h", EINVAL},
                {"1h ", EINVAL},
                {"1m1h", EINVAL},
                {"1h1h", EINVAL},
                {"1H", EINVAL},
                {"9223372036854775808", ERANGE},
                {"106751991167301d", ERANGE},
                {"9223372036854775807s1d", EINVAL}, /* out of order */
                {"106751991167300d23h59m59s", ERANGE},
                {"99999999999999999999s", ERANGE},
        };
        int64_t v;
        (void) state;

        for (size_t i = 0; i < ELEMENTS(good); i++) {
                v = -1;
                int r = parse_duration(good[i].s, &v);
                if (r < 0)
                        fail_msg("%s: %d", good[i].s, r);
                if (v != good[i].secs)
                        fail_msg("%s: got %lld", good[i].s, (long long) v);
        }
        for (size_t i = 0; i < ELEMENTS(bad); i++) {
                v = 12345;
                int r = parse_duration(bad[i].s, &v);
                if (r != -bad[i].err)
                        fail_msg("\"%s\": got %d, expected %d", bad[i].s, r, -bad[i].err);
                assert_int_equal(v, 12345);
        }
        assert_errno(parse_duration(NULL, &v), EINVAL);

        /* The exact boundary: INT64_MAX s = 106751991167300d 15h 30m 7s. */
        assert_ok(parse_duration("106751991167300d15h30m7s", &v));
        assert_true(v == INT64_MAX);
        assert_errno(parse_duration("106751991167300d15h30m8s", &v), ERANGE);
}

static void test_format_duration(void **state) {
        static const struct {
                int64_t secs;
                const char *s;
        } cases[] = {
                {0, "0s"},
                {59, "59s"},
                {60, "1m"},
                {5400, "1h30m"},
                {86400, "1d"},
                {604800, "7d"},
                {90061, "1d1h1m1s"},
                {-90, "-1m30s"},
                {INT64_MAX, "106751991167300d15h30m7s"},
                {INT64_MIN, "-106751991167300d15h30m8s"},
        };
        char buf[DURATION_STRING_MAX];
        (void) state;

        for (size_t i = 0; i < ELEMENTS(cases); i++) {
                int64_t back;
                assert_string_equal(format_duration(cases[i].secs, buf, sizeof(buf)), cases[i].s);
                if (cases[i].secs >= 0) {
                        assert_ok(parse_duration(buf, &back));
                        assert_true(back == cases[i].secs);
                }
        }
        /* Truncates safely in a small buffer. */
        char small[4];
        format_duration(90061, small, sizeof(small));
        assert_int_equal(strlen(small), 3);
}

static void test_timestamp(void **state) {
        char buf[TIMESTAMP_STRING_MAX];
        int64_t t = -1;

        assert_string_equal(format_timestamp(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
        assert_string_equal(format_timestamp(4102444800, buf, sizeof(buf)), "2100-01-01T00:00:00Z");
        assert_ok(parse_timestamp("4102444800", &t));
        assert_int_equal(t, 4102444800);
        assert_ok(parse_timestamp("2100-01-01T00:00:00Z", &t));
        assert_int_equal(t, 4102444800);
        assert_ok(parse_timestamp("2100-01-01t01:30:00.123456+01:30", &t));
        assert_int_equal(t, 4102444800);
        assert_ok(parse_timestamp("2099-12-31 23:00:00-01:00", &t));
        assert_int_equal(t, 4102444800);
        assert_ok(parse_timestamp("2024-02-29T00:00:00z", &t));
        assert_int_equal(t, 1709164800);
        assert_ok(parse_timestamp("0", &t));
        assert_int_equal(t, 0);
        /* Round trip. */
        assert_ok(parse_timestamp(format_timestamp(1767225599, buf, sizeof(buf)), &t));
        assert_int_equal(t, 1767225599);

        t = 7;
        assert_errno(parse_timestamp("", &t), EINVAL);
        assert_errno(parse_timestamp(NULL, &t), EINVAL);
        assert_errno(parse_timestamp("-5", &t), EINVAL);
        assert_errno(parse_timestamp("2023-02-29T00:00:00Z", &t), EINVAL);
        assert_errno(parse_timestamp("2023-13-01T00:00:00Z", &t), EINVAL);
        assert_errno(parse_timestamp("2023-01-01T24:00:00Z", &t), EINVAL);
        assert_errno(parse_timestamp("2023-01-01T00:00:00", &t), EINVAL);
        assert_errno(parse_timestamp("2023-01-01", &t), EINVAL);
        assert_errno(parse_timestamp("2023-01-01T00:00:00.Z", &t), EINVAL);
        assert_errno(parse_timestamp("2023-01-01T00:00:00+0100", &t), EINVAL);
        assert_errno(parse_timestamp("2023-01-01T00:00:00Zjunk", &t), EINVAL);
        assert_errno(parse_timestamp("1h", &t), EINVAL);
        assert_errno(parse_timestamp("1969-12-31T23:59:59Z", &t), ERANGE);
        assert_errno(parse_timestamp("253402300800", &t), ERANGE);
        assert_errno(parse_timestamp("99999999999999999999", &t), ERANGE);
        assert_int_equal(t, 7);
}

static void test_uid_gid(void **state) {
        uid_t uid = 77;
        gid_t gid = 77;
        struct passwd *pw;
        (void) state;

        assert_ok(parse_uid("0", &uid));
        assert_int_equal(uid, 0);
        assert_ok(parse_uid("4294967294", &uid));
        assert_int_equal(uid, 4294967294u);
        assert_errno(parse_uid("4294967295", &uid), ERANGE);
        assert_errno(parse_uid("99999999999", &uid), ERANGE);
        assert_errno(parse_uid("", &uid), EINVAL);
        assert_errno(parse_uid(NULL, &uid), EINVAL);
        assert_errno(parse_uid("no-such-user-warden-test", &uid), ENOENT);
        assert_int_equal(uid, 4294967294u);

        /* A real name: our own user, whatever it is. */
        pw = getpwuid(getuid());
        if (pw) {
                uid = 12345;
                assert_ok(parse_uid(pw->pw_name, &uid));
                assert_int_equal(uid, getuid());
        }
        assert_ok(parse_uid("root", &uid));
        assert_int_equal(uid, 0);

        assert_ok(parse_gid("0", &gid));
        assert_int_equal(gid, 0);
        assert_ok(parse_gid("root", &gid));
        assert_int_equal(gid, 0);
        assert_errno(parse_gid("4294967295", &gid), ERANGE);
        assert_errno(parse_gid("no-such-group-warden-test", &gid), ENOENT);
        assert_errno(parse_gid("", &gid), EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_uint),     cmocka_unit_test(test_int64),
                cmocka_unit_test(test_port),     cmocka_unit_test(test_bool),
                cmocka_unit_test(test_duration), cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_uid_gid),  cmocka_unit_test(test_timestamp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
