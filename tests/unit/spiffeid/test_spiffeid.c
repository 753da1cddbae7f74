/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

#include "testlib.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct Vector {
        const char *id;
        const char *reason; /* NULL = valid */
} Vector;

/* spec/SPIFFE-FACTS.md §1 table (every row), then extra edge cases. */
static const Vector vectors[] = {
        /* ✓ rows */
        {"spiffe://trustdomain", NULL},
        {"spiffe://trustdomain/path", NULL},
        {"spiffe://trustdomain/path/element", NULL},
        {"spiffe://trustdomain/.path", NULL},
        {"spiffe://trustdomain/..path", NULL},
        {"spiffe://trustdomain/...", NULL},
        {"spiffe://trustdomain/pathA", NULL},
        {"spiffe://trustdomain/path-_.9", NULL},
        {"spiffe://trustdomain_/path", NULL},
        {"spiffe://trustdomain./path", NULL},
        {"spiffe://trustdomain-/path", NULL},
        {"spiffe://192.168.1.1/path", NULL},
        {"spiffe://k8s-west.example.com/ns/staging/sa/default", NULL},
        /* ✗ rows */
        {"", "empty"},
        {"s", "wrong scheme"},
        {"spiffe:/", "wrong scheme"},
        {"spiffe:/trustdomain/path", "wrong scheme"},
        {"Spiffe://", "wrong scheme"},
        {"SPIFFE://trustdomain", "wrong scheme"},
        {"spiffe://", "missing trust domain"},
        {"spiffe:///", "missing trust domain"},
        {"spiffe:///path", "missing trust domain"},
        {"spiffe://trustdomain/", "trailing slash"},
        {"spiffe://trustdomain/path/", "trailing slash"},
        {"spiffe://trustdomain//", "empty segment"},
        {"spiffe://trustdomain//path", "empty segment"},
        {"spiffe://trustdomain/.", "dot segment"},
        {"spiffe://trustdomain/./path", "dot segment"},
        {"spiffe://trustdomain/path/./other", "dot segment"},
        {"spiffe://trustdomain/..", "dot segment"},
        {"spiffe://trustdomain/path/..", "dot segment"},
        {"spiffe://trustdomain/../path", "dot segment"},
        {"spiffe://trustdomain/path/../other", "dot segment"},
        {"spiffe://%F0%9F%A4%AF/path", "bad trust domain character"},
        {"spiffe://%62%61%64/path", "bad trust domain character"},
        {"spiffe://trustdomain/%F0%9F%A4%AF", "bad path character"},
        {"spiffe://trustdomain/%62%61%64", "bad path character"},
        {"spiffe://trust$domain", "bad trust domain character"},
        {"spiffe://TrustDomain/path", "bad trust domain character"},
        {"spiffe://trustdomain:8080/path", "bad trust domain character"},
        {"spiffe://user@trustdomain/path", "bad trust domain character"},
        {"spiffe://[::1]/path", "bad trust domain character"},
        {"spiffe://trustdomain/path$", "bad path character"},
        {"spiffe://trustdomain/path?x=1", "bad path character"},
        {"spiffe://trustdomain/path#frag", "bad path character"},
        {"spiffe://trustdomain/pa th", "bad path character"},
        /* extra edge cases */
        {"spiffe://a/b/c/d/e/f/g", NULL},
        {"spiffe://0/0", NULL},
        {"spiffe://-/-", NULL},
        {"spiffe://_._/_", NULL},
        {"spiffe://td/a..b", NULL},
        {"spiffe://td/.../x", NULL},
        {"spiffe://td/.a/..b/...c", NULL},
        {"spiffe://td/A/Z/a/z/0/9", NULL},
        {"spiffe://td/a//b", "empty segment"},
        {"spiffe://td/a/b//", "empty segment"},
        {"spiffe://td/./", "dot segment"},
        {"spiffe://td/a/.", "dot segment"},
        {"spiffe://td/a/../", "dot segment"},
        {"spiffe://td/a/b/", "trailing slash"},
        {"spiffe://td/%", "bad path character"},
        {"spiffe://td/a:b", "bad path character"},
        {"spiffe://td/a@b", "bad path character"},
        {"spiffe://td/a\\b", "bad path character"},
        {"spiffe://td/\xc3\xa9", "bad path character"},
        {"spiffe://td/a\tb", "bad path character"},
        {"spiffe://td/a\n", "bad path character"},
        {"spiffe://td/a~b", "bad path character"},
        {"spiffe://td/a+b", "bad path character"},
        {"spiffe://t\xc3\xa9/p", "bad trust domain character"},
        {"spiffe://td\\p", "bad trust domain character"},
        {"spiffe://td?x", "bad trust domain character"},
        {"spiffe://td#x", "bad trust domain character"},
        {"spiffe://exAmple.org", "bad trust domain character"},
        {"spiffe://a b", "bad trust domain character"},
        {"spiffe://td:", "bad trust domain character"},
        {" spiffe://td/p", "wrong scheme"},
        {"http://td/p", "wrong scheme"},
        {"spiffe:td/p", "wrong scheme"},
        {"spiffe//td/p", "wrong scheme"},
        {"spiffe:\\\\td", "wrong scheme"},
        {"spiffE://td", "wrong scheme"},
};

static void test_vectors(void **state) {
        (void) state;
        assert_true(ELEMENTS(vectors) >= 70);
        for (size_t i = 0; i < ELEMENTS(vectors); i++) {
                const Vector *v = &vectors[i];
                const char *reason = NULL;
                int r = warden_spiffeid_validate(v->id, &reason);

                if (!v->reason) {
                        if (r != 0)
                                fail_msg("%s: rejected (%s), expected valid", v->id, reason);
                        assert_null(reason); /* untouched on success */
                } else {
                        if (r != -EINVAL)
                                fail_msg("%s: returned %d, expected -EINVAL", v->id, r);
                        assert_non_null(reason);
                        if (strcmp(reason, v->reason) != 0)
                                fail_msg("%s: reason \"%s\", expected \"%s\"", v->id, reason,
                                         v->reason);
                }
        }
}

static void test_null_and_no_reason(void **state) {
        const char *reason = NULL;
        (void) state;
        assert_errno(warden_spiffeid_validate(NULL, &reason), EINVAL);
        assert_string_equal(reason, "empty");
        /* A NULL reason pointer is fine. */
        assert_errno(warden_spiffeid_validate("spiffe://", NULL), EINVAL);
        assert_ok(warden_spiffeid_validate("spiffe://td/x", NULL));
}

static void test_validate_workload(void **state) {
        const char *reason = NULL;
        (void) state;
        assert_ok(warden_spiffeid_validate_workload("spiffe://td/a", &reason));
        assert_ok(warden_spiffeid_validate_workload("spiffe://td/a/b", &reason));
        assert_errno(warden_spiffeid_validate_workload("spiffe://td", &reason), EINVAL);
        assert_string_equal(reason, "path required");
        /* Other errors still win over the missing path. */
        assert_errno(warden_spiffeid_validate_workload("spiffe://TD", &reason), EINVAL);
        assert_string_equal(reason, "bad trust domain character");
        assert_errno(warden_spiffeid_validate_workload("spiffe://td/", &reason), EINVAL);
        assert_string_equal(reason, "trailing slash");
}

static void test_parse(void **state) {
        char *td = NULL, *path = NULL;
        const char *reason = NULL;
        (void) state;

        assert_ok(warden_spiffeid_parse("spiffe://example.org/ns/a", &td, &path, &reason));
        assert_string_equal(td, "example.org");
        assert_string_equal(path, "/ns/a");
        free(td);
        free(path);

        assert_ok(warden_spiffeid_parse("spiffe://example.org", &td, &path, NULL));
        assert_string_equal(td, "example.org");
        assert_string_equal(path, "");
        free(td);
        free(path);

        td = path = NULL;
        assert_ok(warden_spiffeid_parse("spiffe://x/y", NULL, &path, NULL));
        assert_string_equal(path, "/y");
        free(path);
        assert_ok(warden_spiffeid_parse("spiffe://x/y", &td, NULL, NULL));
        assert_string_equal(td, "x");
        free(td);

        /* Outputs untouched on failure. */
        td = path = (char *) "sentinel";
        assert_errno(warden_spiffeid_parse("spiffe://x/y/", &td, &path, &reason), EINVAL);
        assert_string_equal(reason, "trailing slash");
        assert_string_equal(td, "sentinel");
        assert_string_equal(path, "sentinel");
}

static void expect_td(const char *in, const char *want) {
        char *td = NULL;
        const char *reason = NULL;
        int r = warden_trust_domain_from_string(in, &td, &reason);

        if (r < 0)
                fail_msg("%s: rejected (%s)", in, reason);
        assert_string_equal(td, want);
        free(td);
}

static void expect_td_fail(const char *in, const char *want_reason) {
        char *td = NULL;
        const char *reason = NULL;

        assert_errno(warden_trust_domain_from_string(in, &td, &reason), EINVAL);
        assert_null(td);
        assert_non_null(reason);
        assert_string_equal(reason, want_reason);
}

static void test_trust_domain_from_string(void **state) {
        (void) state;
        expect_td("trustdomain", "trustdomain");
        expect_td("spiffe://trustdomain", "trustdomain");
        expect_td("spiffe://trustdomain/path", "trustdomain");
        expect_td("example.org", "example.org");
        expect_td("192.168.1.1", "192.168.1.1");
        expect_td("spiffe://k8s-west.example.com/ns/staging/sa/default", "k8s-west.example.com");
        expect_td_fail("", "missing trust domain");
        expect_td_fail(NULL, "missing trust domain");
        expect_td_fail("spiffe://", "missing trust domain");
        expect_td_fail("spiffe:/trustdomain", "wrong scheme");
        expect_td_fail("http://trustdomain", "wrong scheme");
        expect_td_fail("Example.org", "bad trust domain character");
        expect_td_fail("example.org/path", "bad trust domain character");
        expect_td_fail("example.org:8080", "bad trust domain character");
        expect_td_fail("spiffe://trustdomain/path/", "trailing slash");
        expect_td_fail("spiffe://trustdomain/./x", "dot segment");
        assert_ok(warden_trust_domain_from_string("td", NULL, NULL));
}

static void test_trust_domain_validate(void **state) {
        const char *reason = NULL;
        (void) state;
        assert_ok(warden_trust_domain_validate("example.org", &reason));
        assert_ok(warden_trust_domain_validate("a_b-c.d", &reason));
        assert_errno(warden_trust_domain_validate("", &reason), EINVAL);
        assert_string_equal(reason, "missing trust domain");
        assert_errno(warden_trust_domain_validate("spiffe://x", &reason), EINVAL);
        assert_string_equal(reason, "bad trust domain character");
        assert_errno(warden_trust_domain_validate("a/b", &reason), EINVAL);
        assert_string_equal(reason, "bad trust domain character");
}

static void test_format_round_trip(void **state) {
        static const struct {
                const char *td, *path, *id;
        } cases[] = {
                {"example.org", "/ns/a/sa/b", "spiffe://example.org/ns/a/sa/b"},
                {"example.org", "", "spiffe://example.org"},
                {"example.org", NULL, "spiffe://example.org"},
                {"192.168.1.1", "/x", "spiffe://192.168.1.1/x"},
                {"td", "/.a/..b/...", "spiffe://td/.a/..b/..."},
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTS(cases); i++) {
                char *id = NULL, *td = NULL, *path = NULL;

                assert_ok(warden_spiffeid_format(cases[i].td, cases[i].path, &id));
                assert_string_equal(id, cases[i].id);
                assert_ok(warden_spiffeid_parse(id, &td, &path, NULL));
                assert_string_equal(td, cases[i].td);
                assert_string_equal(path, cases[i].path ? cases[i].path : "");
                free(id);
                id = NULL;
                assert_ok(warden_spiffeid_format(td, path, &id));
                assert_string_equal(id, cases[i].id);
                free(id);
                free(td);
                free(path);
        }
}

static void test_format_rejects(void **state) {
        char *id = (char *) "sentinel";
        (void) state;
        /* Path-only rules: "" and "/foo" fine, "foo" (no leading slash) and "/" not. */
        assert_errno(warden_spiffeid_format("td", "foo", &id), EINVAL);
        assert_errno(warden_spiffeid_format("td", "/", &id), EINVAL);
        /* Segment rules: "" (empty), "." and ".." (dot), "/" and "$" (bad char). */
        assert_errno(warden_spiffeid_format("td", "/a//b", &id), EINVAL);
        assert_errno(warden_spiffeid_format("td", "/.", &id), EINVAL);
        assert_errno(warden_spiffeid_format("td", "/..", &id), EINVAL);
        assert_errno(warden_spiffeid_format("td", "/$", &id), EINVAL);
        assert_errno(warden_spiffeid_format("td", "/a?b", &id), EINVAL);
        /* Bad trust domains. */
        assert_errno(warden_spiffeid_format("", "/a", &id), EINVAL);
        assert_errno(warden_spiffeid_format(NULL, "/a", &id), EINVAL);
        assert_errno(warden_spiffeid_format("TD", "/a", &id), EINVAL);
        assert_errno(warden_spiffeid_format("a/b", "", &id), EINVAL);
        assert_errno(warden_spiffeid_format("a:1", "", &id), EINVAL);
        assert_string_equal(id, "sentinel");

        id = NULL;
        assert_ok(warden_spiffeid_format("td", "/foo", &id));
        assert_string_equal(id, "spiffe://td/foo");
        free(id);
}

static void test_trust_domain_id(void **state) {
        char *id = NULL;
        (void) state;
        assert_ok(warden_trust_domain_id("example.org", &id));
        assert_string_equal(id, "spiffe://example.org");
        free(id);
        assert_errno(warden_trust_domain_id("Example.org", &id), EINVAL);
        assert_errno(warden_trust_domain_id("", &id), EINVAL);
}

static void test_member_of(void **state) {
        (void) state;
        assert_true(warden_spiffeid_member_of("spiffe://example.org/a", "example.org"));
        assert_true(warden_spiffeid_member_of("spiffe://example.org", "example.org"));
        assert_false(warden_spiffeid_member_of("spiffe://example.org/a", "example.com"));
        assert_false(warden_spiffeid_member_of("spiffe://example.org/a", "example.or"));
        assert_false(warden_spiffeid_member_of("spiffe://example.org/a", "example.org.evil"));
        assert_false(warden_spiffeid_member_of("spiffe://example.org.evil/a", "example.org"));
        assert_false(warden_spiffeid_member_of("spiffe://example.org/a", ""));
        assert_false(warden_spiffeid_member_of("spiffe://example.org/a", NULL));
        assert_false(warden_spiffeid_member_of(NULL, "example.org"));
        /* Invalid IDs are members of nothing. */
        assert_false(warden_spiffeid_member_of("spiffe://example.org/a/", "example.org"));
        assert_false(warden_spiffeid_member_of("SPIFFE://example.org/a", "example.org"));
}

static void test_has_prefix(void **state) {
        (void) state;
        assert_true(warden_spiffeid_has_prefix("spiffe://a/b/c", "spiffe://a/b"));
        assert_true(warden_spiffeid_has_prefix("spiffe://a/b/c", "spiffe://a/b/c"));
        assert_true(warden_spiffeid_has_prefix("spiffe://a/b/c", "spiffe://a"));
        assert_true(warden_spiffeid_has_prefix("spiffe://a", "spiffe://a"));
        assert_false(warden_spiffeid_has_prefix("spiffe://a/b/c", "spiffe://a/b/c2"));
        assert_false(warden_spiffeid_has_prefix("spiffe://a/bc", "spiffe://a/b"));
        assert_false(warden_spiffeid_has_prefix("spiffe://ab/c", "spiffe://a"));
        assert_false(warden_spiffeid_has_prefix("spiffe://a/b", "spiffe://a/b/c"));
        assert_false(warden_spiffeid_has_prefix("spiffe://b/a", "spiffe://a"));
        /* A prefix with a trailing slash is not a valid ID, so never matches. */
        assert_false(warden_spiffeid_has_prefix("spiffe://a/b/c", "spiffe://a/b/"));
        assert_false(warden_spiffeid_has_prefix("spiffe://a/b/c", ""));
        assert_false(warden_spiffeid_has_prefix(NULL, "spiffe://a"));
        assert_false(warden_spiffeid_has_prefix("spiffe://a/b/", "spiffe://a/b"));
}

static void test_equal(void **state) {
        (void) state;
        assert_true(warden_spiffeid_equal("spiffe://a/b", "spiffe://a/b"));
        assert_false(warden_spiffeid_equal("spiffe://a/b", "spiffe://a/B"));
        assert_false(warden_spiffeid_equal("spiffe://a/b", "spiffe://a/b/c"));
        assert_false(warden_spiffeid_equal(NULL, "spiffe://a/b"));
        assert_false(warden_spiffeid_equal("spiffe://a/b", NULL));
        assert_false(warden_spiffeid_equal(NULL, NULL));
}

/* "spiffe://" + td of td_len 'a's + "/" + 'x' padding up to total bytes. */
static char *make_id(size_t td_len, size_t total) {
        char *s = malloc(total + 1);
        size_t pos = 0;

        assert_non_null(s);
        memcpy(s, "spiffe://", 9);
        pos = 9;
        memset(s + pos, 'a', td_len);
        pos += td_len;
        if (pos < total) {
                s[pos++] = '/';
                memset(s + pos, 'x', total - pos);
                pos = total;
        }
        s[pos] = '\0';
        assert_int_equal(strlen(s), total);
        return s;
}

static void test_length_limits(void **state) {
        const char *reason = NULL;
        char *s, *id = NULL, *td;
        (void) state;

        s = make_id(10, WARDEN_SPIFFEID_MAX);
        assert_ok(warden_spiffeid_validate(s, &reason));
        assert_ok(warden_spiffeid_validate_workload(s, &reason));
        free(s);

        s = make_id(10, WARDEN_SPIFFEID_MAX + 1);
        assert_errno(warden_spiffeid_validate(s, &reason), EINVAL);
        assert_string_equal(reason, "too long");
        /* format refuses to produce it, too. */
        assert_errno(warden_spiffeid_format("aaaaaaaaaa", s + 9 + 10, &id), EINVAL);
        assert_null(id);
        free(s);

        s = make_id(WARDEN_TRUST_DOMAIN_MAX, 9 + WARDEN_TRUST_DOMAIN_MAX + 2);
        assert_ok(warden_spiffeid_validate(s, &reason));
        free(s);
        s = make_id(WARDEN_TRUST_DOMAIN_MAX, 9 + WARDEN_TRUST_DOMAIN_MAX);
        assert_ok(warden_spiffeid_validate(s, &reason));
        free(s);

        s = make_id(WARDEN_TRUST_DOMAIN_MAX + 1, 9 + WARDEN_TRUST_DOMAIN_MAX + 3);
        assert_errno(warden_spiffeid_validate(s, &reason), EINVAL);
        assert_string_equal(reason, "trust domain too long");
        free(s);

        td = calloc(1, WARDEN_TRUST_DOMAIN_MAX + 2);
        assert_non_null(td);
        memset(td, 'a', WARDEN_TRUST_DOMAIN_MAX);
        assert_ok(warden_trust_domain_validate(td, &reason));
        assert_ok(warden_trust_domain_id(td, &id));
        free(id);
        id = NULL;
        td[WARDEN_TRUST_DOMAIN_MAX] = 'a';
        assert_errno(warden_trust_domain_validate(td, &reason), EINVAL);
        assert_string_equal(reason, "trust domain too long");
        assert_errno(warden_trust_domain_from_string(td, NULL, &reason), EINVAL);
        assert_string_equal(reason, "trust domain too long");
        assert_errno(warden_trust_domain_id(td, &id), EINVAL);
        assert_null(id);
        free(td);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_null_and_no_reason),
                cmocka_unit_test(test_validate_workload),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_trust_domain_from_string),
                cmocka_unit_test(test_trust_domain_validate),
                cmocka_unit_test(test_format_round_trip),
                cmocka_unit_test(test_format_rejects),
                cmocka_unit_test(test_trust_domain_id),
                cmocka_unit_test(test_member_of),
                cmocka_unit_test(test_has_prefix),
                cmocka_unit_test(test_equal),
                cmocka_unit_test(test_length_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
