/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"
#include "testlib.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const char *valid[] = {
        "unix:uid:0",
        "unix:uid:1000",
        "unix:uid:4294967294",
        "unix:gid:0",
        "unix:supplementary_gid:27",
        "unix:user:root",
        "unix:user:svc-web_1",
        "unix:group:wheel",
        "unix:supplementary_group:docker",
        "unix:path:/usr/bin/python3",
        "unix:path:/opt/my app/bin",
        "unix:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "systemd:id:foo.service",
        "systemd:id:user@1000.service",
        "systemd:fragment_path:/usr/lib/systemd/system/foo.service",
        "k8s:ns:default",                     /* unknown type: generic rules */
        "docker:label:a=b c",                 /* inner space */
        "my-plugin_2:anything",               /* no key needed */
        "x:~!@#$%^&*()[]{}<>?/|\\",           /* punctuation */
        "abcdefghijklmnopqrstuvwxyz012345:v", /* type of 32 bytes */
};

typedef struct Bad {
        const char *s;
        const char *reason;
} Bad;

static const Bad invalid[] = {
        {"", "empty selector"},
        {"unix", "missing type separator"},
        {":uid:0", "empty type"},
        {"Unix:uid:0", "bad type character"},
        {"un ix:uid:0", "bad type character"},
        {"un.ix:uid:0", "bad type character"},
        {"abcdefghijklmnopqrstuvwxyz0123456:v", "type too long"},
        {"unix:", "empty value"},
        {"x: leading", "leading or trailing space"},
        {"x:trailing ", "leading or trailing space"},
        {"x: ", "leading or trailing space"},
        {"x:tab\there", "bad value character"},
        {"x:nl\n", "bad value character"},
        {"x:del\x7f", "bad value character"},
        {"x:utf8\xc3\xa9", "bad value character"},
        {"unix:uid", "missing key separator"},
        {"unix:uid:", "empty key value"},
        {"unix:pid:1", "unknown key for selector type"},
        {"unix:UID:1", "unknown key for selector type"},
        {"unix::1", "unknown key for selector type"},
        {"unix:id:foo.service", "unknown key for selector type"},
        {"systemd:uid:0", "unknown key for selector type"},
        {"unix:uid:-1", "not a decimal number"},
        {"unix:uid:+1", "not a decimal number"},
        {"unix:uid:1x", "not a decimal number"},
        {"unix:uid:0x10", "not a decimal number"},
        {"unix:uid:007", "number has a leading zero"},
        {"unix:gid:4294967295", "number out of range"},
        {"unix:gid:99999999999", "number out of range"},
        {"unix:supplementary_gid:18446744073709551617", "number out of range"},
        {"unix:path:usr/bin/x", "not an absolute path"},
        {"systemd:fragment_path:foo.service", "not an absolute path"},
        {"unix:sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
         "not a lowercase hex sha256"},
        {"unix:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
         "not a lowercase hex sha256"},
        {"unix:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
         "not a lowercase hex sha256"},
        {"unix:sha256:g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "not a lowercase hex sha256"},
        {"systemd:id:", "empty key value"},
};

static void test_parse_valid(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTS(valid); i++) {
                Selector s = {};
                const char *reason = NULL;
                char *text = NULL;
                int r = selector_parse(valid[i], &s, &reason);

                if (r < 0)
                        fail_msg("%s: rejected (%s)", valid[i], reason);
                assert_null(reason);
                /* type is everything before the first ':' */
                assert_int_equal(strlen(s.type), strcspn(valid[i], ":"));
                assert_ok(selector_format(&s, &text));
                assert_string_equal(text, valid[i]);
                free(text);
                selector_done(&s);
                assert_null(s.type);
                assert_null(s.value);
        }
}

static void test_parse_invalid(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTS(invalid); i++) {
                Selector s = {(char *) "sentinel", NULL};
                const char *reason = NULL;
                int r = selector_parse(invalid[i].s, &s, &reason);

                if (r != -EINVAL)
                        fail_msg("%s: returned %d, expected -EINVAL", invalid[i].s, r);
                assert_non_null(reason);
                if (strcmp(reason, invalid[i].reason) != 0)
                        fail_msg("%s: reason \"%s\", expected \"%s\"", invalid[i].s, reason,
                                 invalid[i].reason);
                assert_string_equal(s.type, "sentinel"); /* untouched */
        }
}

static void test_split(void **state) {
        Selector s = {};
        (void) state;
        assert_ok(selector_parse("unix:path:/a:b", &s, NULL));
        assert_string_equal(s.type, "unix");
        assert_string_equal(s.value, "path:/a:b");
        selector_done(&s);
        selector_done(NULL);
        assert_errno(selector_parse(NULL, &s, NULL), EINVAL);
}

static void test_value_length(void **state) {
        char buf[2 + SELECTOR_VALUE_MAX + 2];
        const char *reason = NULL;
        Selector s = {};
        (void) state;

        memcpy(buf, "x:", 2);
        memset(buf + 2, 'v', SELECTOR_VALUE_MAX);
        buf[2 + SELECTOR_VALUE_MAX] = '\0';
        assert_ok(selector_parse(buf, &s, &reason));
        assert_int_equal(strlen(s.value), SELECTOR_VALUE_MAX);
        selector_done(&s);

        buf[2 + SELECTOR_VALUE_MAX] = 'v';
        buf[2 + SELECTOR_VALUE_MAX + 1] = '\0';
        assert_errno(selector_parse(buf, &s, &reason), EINVAL);
        assert_string_equal(reason, "value too long");

        /* Same limit for an absolute path of a built-in type: 1024 ok, 1025 not. */
        memcpy(buf, "path:/", 6);
        buf[SELECTOR_VALUE_MAX] = '\0';
        assert_ok(selector_validate("unix", buf, &reason));
        buf[SELECTOR_VALUE_MAX] = 'v';
        buf[SELECTOR_VALUE_MAX + 1] = '\0';
        assert_errno(selector_validate("unix", buf, &reason), EINVAL);
        assert_string_equal(reason, "value too long");
}

static void test_validate(void **state) {
        const char *reason = NULL;
        (void) state;
        assert_ok(selector_validate("unix", "uid:0", &reason));
        assert_errno(selector_validate(NULL, "uid:0", &reason), EINVAL);
        assert_string_equal(reason, "empty type");
        assert_errno(selector_validate("unix", NULL, &reason), EINVAL);
        assert_string_equal(reason, "empty value");
        assert_ok(selector_validate("unix", "uid:0", NULL));
        assert_errno(selector_validate("unix", "uid:x", NULL), EINVAL);
}

static void test_compare(void **state) {
        Selector a = {(char *) "unix", (char *) "uid:0"};
        Selector b = {(char *) "unix", (char *) "uid:1"};
        Selector c = {(char *) "systemd", (char *) "zz"};
        (void) state;
        assert_true(selector_compare(&a, &b) < 0);
        assert_true(selector_compare(&b, &a) > 0);
        assert_int_equal(selector_compare(&a, &a), 0);
        assert_true(selector_compare(&c, &a) < 0); /* type first */
}

static void add_all(SelectorSet *set, const char *const *items, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *reason = NULL;
                int r = selector_set_add_string(set, items[i], &reason);
                if (r < 0)
                        fail_msg("add %s: %d (%s)", items[i], r, reason ? reason : "?");
        }
}

static void test_set_sorted_dedupe(void **state) {
        static const char *const items[] = {
                "unix:uid:1000", "unix:gid:1000",   "systemd:id:a.service",
                "unix:uid:1000", "unix:user:alice", "systemd:id:a.service",
                "k8s:ns:x",
        };
        static const char *const want[] = {
                "k8s:ns:x",      "systemd:id:a.service", "unix:gid:1000",
                "unix:uid:1000", "unix:user:alice",
        };
        SelectorSet set = {};
        size_t k = 0;
        (void) state;

        add_all(&set, items, ELEMENTS(items));
        assert_int_equal(set.n, ELEMENTS(want));
        FOREACH_SELECTOR(s, &set) {
                char *text = NULL;
                assert_ok(selector_format(s, &text));
                assert_string_equal(text, want[k]);
                free(text);
                k++;
        }
        assert_int_equal(k, ELEMENTS(want));

        for (size_t i = 0; i < ELEMENTS(items); i++) {
                Selector s = {};
                assert_ok(selector_parse(items[i], &s, NULL));
                assert_true(selector_set_contains(&set, &s));
                selector_done(&s);
        }
        Selector other = {(char *) "unix", (char *) "uid:1001"};
        assert_false(selector_set_contains(&set, &other));
        assert_false(selector_set_contains(NULL, &other));

        /* Bad input leaves the set unchanged. */
        const char *reason = NULL;
        assert_errno(selector_set_add_string(&set, "unix:uid:-1", &reason), EINVAL);
        assert_string_equal(reason, "not a decimal number");
        assert_errno(selector_set_add(&set, "unix", "nokey"), EINVAL);
        assert_errno(selector_set_add(NULL, "unix", "uid:0"), EINVAL);
        assert_int_equal(set.n, ELEMENTS(want));

        selector_set_done(&set);
        assert_int_equal(set.n, 0);
        assert_null(set.items);
        selector_set_done(&set);
        selector_set_done(NULL);
        FOREACH_SELECTOR(s, &set)
                fail_msg("empty set iterated: %s", s->type);
}

static void test_set_copy(void **state) {
        static const char *const items[] = {"unix:uid:1", "unix:gid:2", "x:y"};
        SelectorSet a = {.max = 5}, b = {};
        (void) state;

        add_all(&a, items, ELEMENTS(items));
        assert_ok(selector_set_copy(&a, &b));
        assert_int_equal(b.n, a.n);
        assert_int_equal(b.max, 5);
        for (size_t i = 0; i < a.n; i++) {
                assert_int_equal(selector_compare(&a.items[i], &b.items[i]), 0);
                assert_ptr_not_equal(a.items[i].value, b.items[i].value);
        }
        selector_set_done(&a);
        assert_true(selector_set_contains(&b, &(Selector){(char *) "x", (char *) "y"}));
        selector_set_done(&b);

        SelectorSet empty = {}, copy = {};
        assert_ok(selector_set_copy(&empty, &copy));
        assert_int_equal(copy.n, 0);
        selector_set_done(&copy);
}

static void make_set(SelectorSet *set, const char *const *items, size_t n) {
        *set = (SelectorSet){.max = WARDEN_WORKLOAD_SELECTORS_MAX};
        add_all(set, items, n);
}

static void test_subset(void **state) {
        static const char *const have_items[] = {
                "unix:uid:1000",          "unix:gid:1000",
                "unix:user:alice",        "unix:path:/usr/bin/python3",
                "systemd:id:app.service",
        };
        static const char *const equal_items[] = {
                "systemd:id:app.service", "unix:path:/usr/bin/python3",
                "unix:user:alice",        "unix:gid:1000",
                "unix:uid:1000",
        };
        static const char *const part_items[] = {"unix:uid:1000", "systemd:id:app.service"};
        static const char *const first_item[] = {"systemd:id:app.service"};
        static const char *const last_item[] = {"unix:user:alice"};
        static const char *const partial_items[] = {"unix:uid:1000", "unix:gid:0"};
        static const char *const disjoint_items[] = {"unix:uid:0", "k8s:ns:x"};
        static const char *const before_items[] = {"aaa:x"};
        static const char *const after_items[] = {"zzz:x"};
        static const char *const super_items[] = {
                "unix:uid:1000",          "unix:gid:1000",
                "unix:user:alice",        "unix:path:/usr/bin/python3",
                "systemd:id:app.service", "unix:group:staff",
        };
        SelectorSet have, empty = {}, eq, part, first, last, partial, disjoint, before, after,
                          super;
        (void) state;

        make_set(&have, have_items, ELEMENTS(have_items));
        make_set(&eq, equal_items, ELEMENTS(equal_items));
        make_set(&part, part_items, ELEMENTS(part_items));
        make_set(&first, first_item, 1);
        make_set(&last, last_item, 1);
        make_set(&partial, partial_items, ELEMENTS(partial_items));
        make_set(&disjoint, disjoint_items, ELEMENTS(disjoint_items));
        make_set(&before, before_items, 1);
        make_set(&after, after_items, 1);
        make_set(&super, super_items, ELEMENTS(super_items));

        assert_false(selector_set_is_subset(&empty, &have)); /* empty entry matches nothing */
        assert_false(selector_set_is_subset(&empty, &empty));
        assert_false(selector_set_is_subset(&part, &empty));
        assert_true(selector_set_is_subset(&eq, &have));
        assert_true(selector_set_is_subset(&have, &eq));
        assert_true(selector_set_is_subset(&part, &have));
        assert_true(selector_set_is_subset(&first, &have));
        assert_true(selector_set_is_subset(&last, &have));
        assert_false(selector_set_is_subset(&super, &have)); /* entry needs more */
        assert_true(selector_set_is_subset(&have, &super));
        assert_false(selector_set_is_subset(&partial, &have));
        assert_false(selector_set_is_subset(&disjoint, &have));
        assert_false(selector_set_is_subset(&before, &have));
        assert_false(selector_set_is_subset(&after, &have));
        assert_false(selector_set_is_subset(NULL, &have));
        assert_false(selector_set_is_subset(&part, NULL));

        SelectorSet *all[] = {&have,    &eq,       &part,   &first, &last,
                              &partial, &disjoint, &before, &after, &super};
        for (size_t i = 0; i < ELEMENTS(all); i++)
                selector_set_done(all[i]);
}

static void test_cap(void **state) {
        SelectorSet set = {};
        char value[32];
        (void) state;

        for (unsigned i = 0; i < WARDEN_SELECTORS_MAX; i++) {
                snprintf(value, sizeof(value), "uid:%u", i);
                assert_ok(selector_set_add(&set, "unix", value));
        }
        assert_int_equal(set.n, WARDEN_SELECTORS_MAX);
        /* Duplicate of a present one is still fine at the cap. */
        assert_ok(selector_set_add(&set, "unix", "uid:5"));
        snprintf(value, sizeof(value), "uid:%u", WARDEN_SELECTORS_MAX);
        assert_errno(selector_set_add(&set, "unix", value), E2BIG);
        assert_errno(selector_set_add_string(&set, "unix:gid:1", NULL), E2BIG);
        assert_int_equal(set.n, WARDEN_SELECTORS_MAX);
        selector_set_done(&set);

        /* A custom cap. */
        set = (SelectorSet){.max = 2};
        assert_ok(selector_set_add(&set, "a", "1"));
        assert_ok(selector_set_add(&set, "a", "2"));
        assert_errno(selector_set_add(&set, "a", "3"), E2BIG);
        selector_set_done(&set);
        assert_int_equal(set.max, 2);

        /* Workload cap: many supplementary groups. */
        set = (SelectorSet){.max = WARDEN_WORKLOAD_SELECTORS_MAX};
        for (unsigned i = 0; i < WARDEN_WORKLOAD_SELECTORS_MAX; i++) {
                snprintf(value, sizeof(value), "supplementary_gid:%u", 1000000 - i);
                assert_ok(selector_set_add(&set, "unix", value));
        }
        assert_errno(selector_set_add(&set, "unix", "uid:0"), E2BIG);
        /* Still sorted after inserting in descending order. */
        for (size_t i = 1; i < set.n; i++)
                assert_true(selector_compare(&set.items[i - 1], &set.items[i]) < 0);
        selector_set_done(&set);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_invalid),
                cmocka_unit_test(test_split),
                cmocka_unit_test(test_value_length),
                cmocka_unit_test(test_validate),
                cmocka_unit_test(test_compare),
                cmocka_unit_test(test_set_sorted_dedupe),
                cmocka_unit_test(test_set_copy),
                cmocka_unit_test(test_subset),
                cmocka_unit_test(test_cap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
