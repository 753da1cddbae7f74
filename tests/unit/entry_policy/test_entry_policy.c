/* SPDX-License-Identifier: Apache-2.0 */
/* What the server refuses to store although entry_validate() accepts it (selector types
 * no attestor produces, federation without a bundle, past expiry, short TTLs), only for
 * what an update changes; the no-change comparison; the list filters' selector match. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "ds.h"
#include "entry_policy.h"
#include "strv.h"
#include "testlib.h"

#define NOW 1800000000

typedef struct Fixture {
        char *dir;
        Datastore *ds;
        EntryPolicy p;
        char err[ADMIN_ERR_MAX];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        char path[512];

        assert_non_null(f);
        f->dir = test_tmpdir();
        snprintf(path, sizeof(path), "%s/ds.sqlite3", f->dir);
        assert_ok(ds_open_sqlite(path, &f->ds));
        f->p = (EntryPolicy){.ds = f->ds, .now = NOW, .min_x509_ttl = 30, .min_jwt_ttl = 10};
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        ds_close(f->ds);
        test_rmdir_free(f->dir);
        free(f);
        return 0;
}

/* An entry with the given selectors (NULL-terminated "type:value"). node is an int:
 * va_start() needs a last parameter that default promotions leave alone. */
static Entry *entry_with(int node, ...) {
        Entry *e = NULL;
        const char *s;
        va_list ap;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup("spiffe://example.org/w");
        e->parent_id = strdup("spiffe://example.org/p");
        e->node = node;
        va_start(ap, node);
        while ((s = va_arg(ap, const char *)))
                assert_ok(selector_set_add_string(&e->selectors, s, NULL));
        va_end(ap);
        return e;
}

static void expect_refused(Fixture *f, const Entry *e, const Entry *old, const char *want) {
        f->err[0] = '\0';
        assert_errno(entry_policy_check(&f->p, e, old, f->err, sizeof(f->err)), EINVAL);
        if (!strstr(f->err, want))
                fail_msg("message '%s' does not contain '%s'", f->err, want);
        assert_true(strncmp(f->err, "invalid entry: ", 15) == 0);
}

static void test_selector_types(void **state) {
        Fixture *f = *state;
        _cleanup_(entry_freep) Entry *ok = entry_with(
                false, "unix:uid:1", "unix:user:u", "unix:gid:1", "unix:group:g",
                "unix:supplementary_gid:2", "unix:supplementary_group:s", "unix:path:/bin/x",
                "systemd:id:a.service", "systemd:fragment_path:/etc/x.service", NULL);
        _cleanup_(entry_freep) Entry *node = entry_with(
                true, "warden:agent_id:spiffe://example.org/warden/agent/x",
                "x509pop:subject:cn:n1", "x509pop:ca:fingerprint:ab", "x509pop:san:dns:a.b", NULL);
        _cleanup_(entry_freep) Entry *uid = entry_with(false, "uid:1000", NULL);
        _cleanup_(entry_freep) Entry *k8s = entry_with(false, "unix:uid:1", "k8s:ns:default", NULL);
        _cleanup_(entry_freep) Entry *mixed = entry_with(false, "warden:agent_id:x", NULL);
        _cleanup_(entry_freep) Entry *mixed2 = entry_with(true, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *badkey = entry_with(true, "x509pop:serial:1", NULL);
        _cleanup_(entry_freep) Entry *nokeyarg = entry_with(true, "x509pop:subject:cn:", NULL);

        assert_ok(entry_policy_check(&f->p, ok, NULL, f->err, sizeof(f->err)));
        assert_ok(entry_policy_check(&f->p, node, NULL, f->err, sizeof(f->err)));
        expect_refused(f, uid, NULL,
                       "selector \"uid:1000\": no attestor produces type \"uid\" (did you mean "
                       "\"unix:uid:1000\"?); workload entries take unix:uid, unix:user, unix:gid, "
                       "unix:group, unix:supplementary_gid, unix:supplementary_group, unix:path, "
                       "unix:sha256, systemd:id, systemd:fragment_path (-allowUnknownSelectorType");
        expect_refused(f, k8s, NULL, "selector \"k8s:ns:default\": no attestor produces type");
        expect_refused(f, mixed, NULL, "matches agents, not workloads");
        expect_refused(f, mixed2, NULL,
                       "is a workload selector, but node aliases match agents, by "
                       "warden:agent_id, x509pop:subject:cn, x509pop:ca:fingerprint, "
                       "x509pop:san:dns");
        expect_refused(f, badkey, NULL,
                       "selector \"x509pop:serial:1\": no attestor produces this key of type "
                       "\"x509pop\"; node aliases take warden:agent_id");
        expect_refused(f, nokeyarg, NULL, "no attestor produces this key of type \"x509pop\"");

        f->p.allow_unknown_selector_types = true;
        assert_ok(entry_policy_check(&f->p, uid, NULL, f->err, sizeof(f->err)));
        assert_ok(entry_policy_check(&f->p, k8s, NULL, f->err, sizeof(f->err)));
        assert_ok(entry_policy_check(&f->p, mixed, NULL, f->err, sizeof(f->err)));
        f->p.allow_unknown_selector_types = false;

        /* An update re-judges only new selectors; a stored unknown one stays. */
        assert_ok(entry_policy_check(&f->p, k8s, k8s, f->err, sizeof(f->err)));
        expect_refused(f, k8s, ok, "k8s:ns:default");
}

static void test_federation(void **state) {
        Fixture *f = *state;
        _cleanup_(entry_freep) Entry *e = entry_with(false, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *old = entry_with(false, "unix:uid:1", NULL);
        static const uint8_t bundle[] = {0x0a, 0x09, 'o', 't', 'h', 'e', 'r', '.', 'o', 'r', 'g'};

        assert_ok(entry_add_federates_with(e, "other.org"));
        expect_refused(f, e, NULL,
                       "federates_with \"other.org\": this server has no bundle for that trust "
                       "domain");
        assert_ok(ds_set_bundle(f->ds, "other.org", bundle, sizeof(bundle)));
        assert_ok(entry_policy_check(&f->p, e, NULL, f->err, sizeof(f->err)));
        assert_ok(ds_delete_bundle(f->ds, "other.org"));
        /* Stored already: an update may keep it; adding another needs its bundle. */
        assert_ok(entry_add_federates_with(old, "other.org"));
        assert_ok(entry_policy_check(&f->p, e, old, f->err, sizeof(f->err)));
        assert_ok(entry_add_federates_with(e, "third.org"));
        expect_refused(f, e, old, "federates_with \"third.org\"");
}

static void test_expiry_and_ttls(void **state) {
        Fixture *f = *state;
        _cleanup_(entry_freep) Entry *e = entry_with(false, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *old = entry_with(false, "unix:uid:1", NULL);

        e->expires_at = NOW;
        expect_refused(f, e, NULL,
                       "expires_at 2027-01-15T08:00:00Z is in the past (now 2027-01-15T08:00:00Z)");
        e->expires_at = NOW + 1;
        assert_ok(entry_policy_check(&f->p, e, NULL, f->err, sizeof(f->err)));
        /* An entry that expired since may still be updated without touching the expiry. */
        e->expires_at = old->expires_at = NOW - 10;
        assert_ok(entry_policy_check(&f->p, e, old, f->err, sizeof(f->err)));
        e->expires_at = 0;

        e->x509_svid_ttl = 29;
        expect_refused(f, e, NULL,
                       "x509_svid_ttl 29s is shorter than the server's minimum 30s "
                       "(-minX509SVIDTTL)");
        e->x509_svid_ttl = 30;
        e->jwt_svid_ttl = 9;
        expect_refused(f, e, NULL, "jwt_svid_ttl 9s is shorter than the server's minimum 10s");
        old->jwt_svid_ttl = 9; /* stored before the minimum grew */
        old->expires_at = 0;
        assert_ok(entry_policy_check(&f->p, e, old, f->err, sizeof(f->err)));
        e->jwt_svid_ttl = 0; /* the server default */
        e->x509_svid_ttl = 0;
        assert_ok(entry_policy_check(&f->p, e, NULL, f->err, sizeof(f->err)));
}

static void test_same_content(void **state) {
        _cleanup_(entry_freep) Entry *a = entry_with(false, "unix:uid:1", "unix:gid:2", NULL);
        _cleanup_(entry_freep) Entry *b = NULL;

        assert_ok(entry_add_dns_name(a, "a.example"));
        a->hint = strdup("");
        a->state = strdup("active");
        a->revision = 4;
        assert_ok(entry_copy(a, &b));
        assert_true(entry_same_content(a, b));
        /* The server's record does not count; NULL and "" are the same. */
        b->revision = 9;
        b->created_at = 7;
        free(b->state);
        b->state = NULL;
        free(b->hint);
        b->hint = NULL;
        b->id = strdup("x");
        assert_true(entry_same_content(a, b));
        b->admin = true;
        assert_false(entry_same_content(a, b));
        b->admin = false;
        strv_clear(&b->dns_names, &b->n_dns_names);
        assert_false(entry_same_content(a, b));
        assert_ok(entry_add_dns_name(b, "a.example"));
        assert_true(entry_same_content(a, b));
        assert_ok(selector_set_add_string(&b->selectors, "unix:uid:3", NULL));
        assert_false(entry_same_content(a, b));
}

static void test_selector_match(void **state) {
        SelectorSet have = {}, want = {}, empty = {};
        SelectorMatch m;

        assert_ok(selector_set_add_string(&have, "unix:uid:1", NULL));
        assert_ok(selector_set_add_string(&have, "unix:gid:1", NULL));
        assert_ok(selector_set_add_string(&want, "unix:uid:1", NULL));
        assert_true(admin_selectors_match(SELECTOR_MATCH_SUPERSET, &have, &want));
        assert_false(admin_selectors_match(SELECTOR_MATCH_EXACT, &have, &want));
        assert_false(admin_selectors_match(SELECTOR_MATCH_SUBSET, &have, &want));
        assert_true(admin_selectors_match(SELECTOR_MATCH_ANY, &have, &want));
        assert_true(admin_selectors_match(SELECTOR_MATCH_SUBSET, &want, &have));
        assert_false(admin_selectors_match(SELECTOR_MATCH_SUPERSET, &want, &have));
        assert_ok(selector_set_add_string(&want, "unix:gid:1", NULL));
        assert_true(admin_selectors_match(SELECTOR_MATCH_EXACT, &have, &want));
        assert_true(admin_selectors_match(SELECTOR_MATCH_EXACT, &have, &empty));
        assert_false(admin_selectors_match(SELECTOR_MATCH_ANY, &empty, &want));

        assert_ok(admin_selector_match_from_string("", &m));
        assert_int_equal(m, SELECTOR_MATCH_SUPERSET);
        assert_ok(admin_selector_match_from_string("any", &m));
        assert_int_equal(m, SELECTOR_MATCH_ANY);
        assert_errno(admin_selector_match_from_string("all", &m), EINVAL);
        selector_set_done(&have);
        selector_set_done(&want);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_selector_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_federation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expiry_and_ttls, setup, teardown),
                cmocka_unit_test(test_same_content),
                cmocka_unit_test(test_selector_match),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
