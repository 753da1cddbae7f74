/* SPDX-License-Identifier: Apache-2.0 */
/* The entry model: construction, deep copy, entry_validate() rule by rule. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "test_ds.h"
#include "testlib.h"

Entry *test_entry_new(const char *spiffe_id, const char *parent_id, ...) {
        Entry *e = NULL;
        const char *sel;
        va_list ap;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_non_null(e->spiffe_id);
        assert_non_null(e->parent_id);
        va_start(ap, parent_id);
        while ((sel = va_arg(ap, const char *))) {
                const char *reason = NULL;
                int r = selector_set_add_string(&e->selectors, sel, &reason);
                if (r < 0)
                        fail_msg("selector %s: %s", sel, reason ? reason : strerror(-r));
        }
        va_end(ap);
        return e;
}

static void assert_strv_equal(char *const *a, size_t na, char *const *b, size_t nb) {
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++)
                assert_string_equal(a[i], b[i]);
}

static void assert_str_or_null_equal(const char *a, const char *b) {
        if (!a || !b)
                assert_ptr_equal(a, b);
        else
                assert_string_equal(a, b);
}

void test_assert_entries_equal(const Entry *a, const Entry *b) {
        assert_str_or_null_equal(a->id, b->id);
        assert_string_equal(a->spiffe_id, b->spiffe_id);
        assert_string_equal(a->parent_id, b->parent_id);
        assert_int_equal(a->selectors.n, b->selectors.n);
        for (size_t i = 0; i < a->selectors.n; i++) {
                assert_string_equal(a->selectors.items[i].type, b->selectors.items[i].type);
                assert_string_equal(a->selectors.items[i].value, b->selectors.items[i].value);
        }
        assert_int_equal(a->x509_svid_ttl, b->x509_svid_ttl);
        assert_int_equal(a->jwt_svid_ttl, b->jwt_svid_ttl);
        assert_strv_equal(a->dns_names, a->n_dns_names, b->dns_names, b->n_dns_names);
        assert_strv_equal(a->federates_with, a->n_federates_with, b->federates_with,
                          b->n_federates_with);
        assert_str_or_null_equal(a->hint, b->hint);
        assert_int_equal(a->admin, b->admin);
        assert_int_equal(a->node, b->node);
        assert_int_equal(a->downstream, b->downstream);
        assert_int_equal(a->expires_at, b->expires_at);
        assert_int_equal(a->revision, b->revision);
        assert_int_equal(a->created_at, b->created_at);
        assert_str_or_null_equal(a->env, b->env);
        assert_str_or_null_equal(a->task, b->task);
        assert_str_or_null_equal(a->state, b->state);
        assert_str_or_null_equal(a->created_by, b->created_by);
        assert_str_or_null_equal(a->approved_by, b->approved_by);
        assert_strv_equal(a->scopes, a->n_scopes, b->scopes, b->n_scopes);
}

static Entry *full_entry(void) {
        Entry *e =
                test_entry_new("spiffe://" TD "/web", "spiffe://" TD "/warden/agent/join_token/n1",
                               "unix:uid:1000", "unix:path:/usr/bin/web", NULL);
        assert_ok(entry_add_dns_name(e, "web.example.org"));
        assert_ok(entry_add_dns_name(e, "*.web.example.org"));
        assert_ok(entry_add_federates_with(e, "partner.example"));
        assert_ok(entry_add_scope(e, "read:orders"));
        e->x509_svid_ttl = 3600;
        e->jwt_svid_ttl = 300;
        e->hint = strdup("frontend");
        e->admin = true;
        e->downstream = true;
        e->expires_at = 2000000000;
        e->env = strdup("prod");
        e->task = strdup("task-7");
        e->state = strdup("pending_approval");
        e->created_by = strdup("alice");
        return e;
}

static void test_copy_is_deep(void **state) {
        _cleanup_(entry_freep) Entry *e = full_entry(), *c = NULL;
        (void) state;

        e->id = strdup("abc");
        e->revision = 3;
        e->created_at = 42;
        assert_ok(entry_copy(e, &c));
        test_assert_entries_equal(e, c);
        assert_ptr_not_equal(e->spiffe_id, c->spiffe_id);
        assert_ptr_not_equal(e->dns_names[0], c->dns_names[0]);
        assert_ptr_not_equal(e->selectors.items, c->selectors.items);
        c->dns_names[0][0] = 'X';
        assert_string_equal(e->dns_names[0], "web.example.org");
        assert_errno(entry_copy(NULL, &c), EINVAL);
        assert_null(entry_free(NULL));
        assert_null(attested_agent_free(NULL));
        assert_null(join_token_free(NULL));
        assert_null(bundle_row_free(NULL));
        assert_null(entry_array_free(NULL, 3));
}

static void test_agent_copy(void **state) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL, *c = NULL;
        (void) state;

        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup("spiffe://" TD "/warden/agent/x509pop/abc");
        a->attestation_type = strdup("x509pop");
        a->serial = strdup("0a1b");
        a->banned = true;
        a->svid_expires_at = 77;
        assert_ok(selector_set_add_string(&a->selectors, "x509pop:subject:cn:n1", NULL));
        assert_ok(attested_agent_copy(a, &c));
        assert_string_equal(c->spiffe_id, a->spiffe_id);
        assert_string_equal(c->serial, "0a1b");
        assert_true(c->banned);
        assert_int_equal(c->svid_expires_at, 77);
        assert_int_equal(c->selectors.n, 1);
        assert_ptr_not_equal(c->selectors.items, a->selectors.items);
}

/* Applies `mutate` to a valid entry and checks the exact reason. */
static void expect_invalid(void (*mutate)(Entry *e), const char *reason) {
        _cleanup_(entry_freep) Entry *e = full_entry();
        const char *got = NULL;

        assert_ok(entry_validate(e, TD, &got));
        mutate(e);
        assert_errno(entry_validate(e, TD, &got), EINVAL);
        assert_non_null(got);
        assert_string_equal(got, reason);
}

#define MUTATOR(name, body)                                                                        \
        static void name(Entry *e) {                                                               \
                body;                                                                              \
        }

static void set_str(char **field, const char *value) {
        free(*field);
        *field = value ? strdup(value) : NULL;
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

MUTATOR(m_bad_id, set_str(&e->id, "has space"))
MUTATOR(m_spiffe_invalid, set_str(&e->spiffe_id, "spiffe://" TD "/a//b"))
MUTATOR(m_spiffe_no_path, set_str(&e->spiffe_id, "spiffe://" TD))
MUTATOR(m_spiffe_null, set_str(&e->spiffe_id, NULL))
MUTATOR(m_spiffe_other_td, set_str(&e->spiffe_id, "spiffe://other.org/web"))
MUTATOR(m_spiffe_server, set_str(&e->spiffe_id, "spiffe://" TD "/warden/server"))
MUTATOR(m_spiffe_agent, set_str(&e->spiffe_id, "spiffe://" TD "/warden/agent/join_token/n1"))
MUTATOR(m_spiffe_warden, set_str(&e->spiffe_id, "spiffe://" TD "/warden"))
MUTATOR(m_parent_invalid, set_str(&e->parent_id, "http://" TD "/agent"))
MUTATOR(m_parent_other_td, set_str(&e->parent_id, "spiffe://other.org/agent"))
MUTATOR(m_no_selectors, selector_set_done(&e->selectors))
MUTATOR(m_bad_selector, set_str(&e->selectors.items[0].value, "uid:abc"))
MUTATOR(m_x509_neg, e->x509_svid_ttl = -1)
MUTATOR(m_x509_long, e->x509_svid_ttl = ENTRY_TTL_MAX + 1)
MUTATOR(m_jwt_neg, e->jwt_svid_ttl = -5)
MUTATOR(m_jwt_long, e->jwt_svid_ttl = ENTRY_TTL_MAX + 1)
MUTATOR(m_expires_neg, e->expires_at = -1)
MUTATOR(m_dns_bad, set_str(&e->dns_names[0], "bad_name.example"))
MUTATOR(m_fed_bad, set_str(&e->federates_with[0], "Partner.Example"))
MUTATOR(m_fed_own, set_str(&e->federates_with[0], TD))
MUTATOR(m_hint_long, free(e->hint); e->hint = repeat('h', ENTRY_HINT_MAX + 1))
MUTATOR(m_hint_not_utf8, set_str(&e->hint, "caf\xe9"))
MUTATOR(m_hint_ctrl, set_str(&e->hint, "a\tb"))
MUTATOR(m_env_bad, set_str(&e->env, "staging"))
MUTATOR(m_state_bad, set_str(&e->state, "approved"))
MUTATOR(m_task_ctrl, set_str(&e->task, "a\nb"))
MUTATOR(m_scope_empty, set_str(&e->scopes[0], ""))
MUTATOR(m_created_by_long, free(e->created_by); e->created_by = repeat('u', ENTRY_ACTOR_MAX + 1))

static void m_too_many_selectors(Entry *e) {
        char buf[64];

        e->selectors.max = ENTRY_SELECTORS_MAX + 1;
        for (int i = 0; e->selectors.n <= ENTRY_SELECTORS_MAX; i++) {
                snprintf(buf, sizeof(buf), "unix:gid:%d", i);
                assert_ok(selector_set_add_string(&e->selectors, buf, NULL));
        }
}

static void m_too_many_dns(Entry *e) {
        while (e->n_dns_names <= ENTRY_DNS_NAMES_MAX)
                assert_ok(entry_add_dns_name(e, "a.example.org"));
}

static void m_too_many_fed(Entry *e) {
        while (e->n_federates_with <= ENTRY_FEDERATES_WITH_MAX)
                assert_ok(entry_add_federates_with(e, "b.example"));
}

static void m_too_many_scopes(Entry *e) {
        while (e->n_scopes <= ENTRY_SCOPES_MAX)
                assert_ok(entry_add_scope(e, "s"));
}

static void test_validate_rules(void **state) {
        (void) state;
        expect_invalid(m_bad_id, "invalid entry id");
        expect_invalid(m_spiffe_invalid, "spiffe_id is not a valid workload SPIFFE ID");
        expect_invalid(m_spiffe_no_path, "spiffe_id is not a valid workload SPIFFE ID");
        expect_invalid(m_spiffe_null, "spiffe_id is not a valid workload SPIFFE ID");
        expect_invalid(m_spiffe_other_td, "spiffe_id is not in the server's trust domain");
        expect_invalid(m_spiffe_server, "spiffe_id is in the reserved /warden namespace");
        expect_invalid(m_spiffe_agent, "spiffe_id is in the reserved /warden namespace");
        expect_invalid(m_spiffe_warden, "spiffe_id is in the reserved /warden namespace");
        expect_invalid(m_parent_invalid, "parent_id is not a valid SPIFFE ID");
        expect_invalid(m_parent_other_td, "parent_id is not in the server's trust domain");
        expect_invalid(m_no_selectors, "entry has no selectors");
        expect_invalid(m_too_many_selectors, "too many selectors");
        expect_invalid(m_bad_selector, "invalid selector");
        expect_invalid(m_x509_neg, "x509_svid_ttl is negative");
        expect_invalid(m_x509_long, "x509_svid_ttl is longer than a year");
        expect_invalid(m_jwt_neg, "jwt_svid_ttl is negative");
        expect_invalid(m_jwt_long, "jwt_svid_ttl is longer than a year");
        expect_invalid(m_expires_neg, "expires_at is negative");
        expect_invalid(m_dns_bad, "invalid DNS name");
        expect_invalid(m_too_many_dns, "too many DNS names");
        expect_invalid(m_fed_bad, "federates_with is not a valid trust domain");
        expect_invalid(m_fed_own, "federates_with names the server's own trust domain");
        expect_invalid(m_too_many_fed, "too many federates_with trust domains");
        expect_invalid(m_hint_long, "hint is too long");
        expect_invalid(m_hint_not_utf8, "hint is not printable UTF-8 text");
        expect_invalid(m_hint_ctrl, "hint is not printable UTF-8 text");
        expect_invalid(m_env_bad, "env must be dev, test or prod");
        expect_invalid(m_state_bad, "state must be active, pending_approval or revoked");
        expect_invalid(m_task_ctrl, "invalid task");
        expect_invalid(m_scope_empty, "invalid scope");
        expect_invalid(m_too_many_scopes, "too many scopes");
        expect_invalid(m_created_by_long, "created_by is too long");
}

static void test_validate_limits_accepted(void **state) {
        _cleanup_(entry_freep) Entry *e = full_entry();
        const char *reason = NULL;
        char buf[64];
        (void) state;

        /* Every cap exactly at its limit is fine. */
        e->x509_svid_ttl = ENTRY_TTL_MAX;
        e->jwt_svid_ttl = ENTRY_TTL_MAX;
        free(e->hint);
        e->hint = repeat('h', ENTRY_HINT_MAX);
        for (int i = 0; e->selectors.n < ENTRY_SELECTORS_MAX; i++) {
                snprintf(buf, sizeof(buf), "unix:gid:%d", i);
                assert_ok(selector_set_add_string(&e->selectors, buf, NULL));
        }
        while (e->n_dns_names < ENTRY_DNS_NAMES_MAX)
                assert_ok(entry_add_dns_name(e, "a.example.org"));
        while (e->n_federates_with < ENTRY_FEDERATES_WITH_MAX)
                assert_ok(entry_add_federates_with(e, "b.example"));
        assert_ok(entry_validate(e, TD, &reason));

        /* A hint may be any UTF-8 text. */
        set_str(&e->hint, "caf\xc3\xa9 \xe2\x82\xac");
        assert_ok(entry_validate(e, TD, &reason));

        /* Only the /warden segment itself is reserved. */
        set_str(&e->spiffe_id, "spiffe://" TD "/wardens/x");
        assert_ok(entry_validate(e, TD, &reason));
        set_str(&e->spiffe_id, "spiffe://" TD "/x/warden/server");
        assert_ok(entry_validate(e, TD, &reason));
        /* Parents are agents and the server, of course. */
        set_str(&e->parent_id, "spiffe://" TD "/warden/server");
        assert_ok(entry_validate(e, TD, &reason));

        /* Empty/NULL governance fields are allowed. */
        set_str(&e->env, "");
        set_str(&e->state, NULL);
        set_str(&e->hint, NULL);
        assert_ok(entry_validate(e, TD, &reason));
        set_str(&e->env, "dev");
        set_str(&e->state, "revoked");
        assert_ok(entry_validate(e, TD, &reason));

        assert_errno(entry_validate(e, "Bad TD", &reason), EINVAL);
        assert_string_equal(reason, "invalid server trust domain");
        assert_errno(entry_validate(NULL, TD, &reason), EINVAL);
        assert_ok(entry_validate(e, TD, NULL));
}

static void test_dns_names(void **state) {
        static const char *const good[] = {
                "a",
                "example.org",
                "web-1.example.org",
                "*.example.org",
                "xn--bcher-kva.example",
                "A.EXAMPLE.ORG",
        };
        static const struct {
                const char *name, *reason;
        } bad[] = {
                {"", "empty DNS name"},
                {"a..b", "empty DNS label"},
                {"example.org.", "empty DNS label"},
                {".example.org", "empty DNS label"},
                {"-a.example", "DNS label starts or ends with '-'"},
                {"a-.example", "DNS label starts or ends with '-'"},
                {"a_b.example", "bad DNS name character"},
                {"a.*.example", "bad DNS name character"},
                {"*", "bad DNS name character"},
                {"*.", "empty DNS label"},
                {"a b", "bad DNS name character"},
        };
        const char *reason = NULL;
        char label[80], name[300];
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_ok(entry_dns_name_validate(good[i], &reason));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                reason = NULL;
                assert_errno(entry_dns_name_validate(bad[i].name, &reason), EINVAL);
                assert_string_equal(reason, bad[i].reason);
        }
        memset(label, 'a', 63);
        label[63] = '\0';
        assert_ok(entry_dns_name_validate(label, &reason));
        label[63] = 'a';
        label[64] = '\0';
        assert_errno(entry_dns_name_validate(label, &reason), EINVAL);
        assert_string_equal(reason, "DNS label too long");
        /* 253 bytes fine, 254 too long: labels of 9 + '.' */
        name[0] = '\0';
        while (strlen(name) < 250)
                strcat(name, "abcdefghi.");
        strcat(name, "abc");
        assert_int_equal(strlen(name), 253);
        assert_ok(entry_dns_name_validate(name, &reason));
        strcat(name, "d");
        assert_errno(entry_dns_name_validate(name, &reason), EINVAL);
        assert_string_equal(reason, "DNS name too long");
        assert_errno(entry_dns_name_validate(NULL, NULL), EINVAL);
}

static void test_entry_ids(void **state) {
        char id[ENTRY_ID_MAX + 2];
        (void) state;

        assert_ok(entry_id_validate("0123abcdef"));
        assert_ok(entry_id_validate("My_Entry-1"));
        assert_errno(entry_id_validate(""), EINVAL);
        assert_errno(entry_id_validate(NULL), EINVAL);
        assert_errno(entry_id_validate("a/b"), EINVAL);
        assert_errno(entry_id_validate("a'; DROP TABLE entries; --"), EINVAL);
        memset(id, 'a', ENTRY_ID_MAX);
        id[ENTRY_ID_MAX] = '\0';
        assert_ok(entry_id_validate(id));
        id[ENTRY_ID_MAX] = 'a';
        id[ENTRY_ID_MAX + 1] = '\0';
        assert_errno(entry_id_validate(id), EINVAL);
}

int test_entry_run(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_copy_is_deep),
                cmocka_unit_test(test_agent_copy),
                cmocka_unit_test(test_validate_rules),
                cmocka_unit_test(test_validate_limits_accepted),
                cmocka_unit_test(test_dns_names),
                cmocka_unit_test(test_entry_ids),
        };
        return cmocka_run_group_tests_name("entry", tests, NULL, NULL);
}
