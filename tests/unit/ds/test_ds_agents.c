/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore: attested agents, join tokens, bundles and the change sequence. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ds.h"
#include "test_ds.h"
#include "testlib.h"

#define NODE1 "spiffe://" TD "/warden/agent/join_token/n1"
#define NODE2 "spiffe://" TD "/warden/agent/x509pop/n2"

static AttestedAgent *agent_new(const char *id, const char *type, const char *serial, ...) {
        AttestedAgent *a = NULL;
        const char *sel;
        va_list ap;

        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup(id);
        a->attestation_type = strdup(type);
        a->serial = serial ? strdup(serial) : NULL;
        va_start(ap, serial);
        while ((sel = va_arg(ap, const char *)))
                assert_ok(selector_set_add_string(&a->selectors, sel, NULL));
        va_end(ap);
        return a;
}

static void test_agents_upsert_and_ban(void **state) {
        DsFixture *f = *state;
        _cleanup_(attested_agent_freep) AttestedAgent *a =
                agent_new(NODE1, "join_token", "01ab", "join_token:alias:x", NULL);
        _cleanup_(attested_agent_freep) AttestedAgent *got = NULL;
        int64_t before = (int64_t) time(NULL), created;

        a->svid_expires_at = 1000;
        a->banned = true; /* ignored by upsert */
        assert_ok(ds_upsert_agent(f->ds, a));
        assert_ok(ds_get_agent(f->ds, NODE1, &got));
        assert_string_equal(got->spiffe_id, NODE1);
        assert_string_equal(got->attestation_type, "join_token");
        assert_string_equal(got->serial, "01ab");
        assert_int_equal(got->svid_expires_at, 1000);
        assert_false(got->banned);
        assert_true(got->created_at >= before);
        assert_int_equal(got->last_seen_at, got->created_at);
        assert_int_equal(got->selectors.n, 1);
        assert_string_equal(got->selectors.items[0].value, "alias:x");
        created = got->created_at;
        got = attested_agent_free(got);

        /* Ban, then re-attest: the ban stays, fields and selectors are replaced. */
        assert_ok(ds_set_agent_banned(f->ds, NODE1, true));
        free(a->serial);
        a->serial = strdup("02CD");
        a->svid_expires_at = 2000;
        a->banned = false;
        selector_set_done(&a->selectors);
        assert_ok(selector_set_add_string(&a->selectors, "join_token:alias:y", NULL));
        assert_ok(selector_set_add_string(&a->selectors, "join_token:alias:z", NULL));
        assert_ok(ds_upsert_agent(f->ds, a));
        assert_ok(ds_get_agent(f->ds, NODE1, &got));
        assert_true(got->banned);
        assert_string_equal(got->serial, "02CD");
        assert_int_equal(got->svid_expires_at, 2000);
        assert_int_equal(got->created_at, created);
        assert_int_equal(got->selectors.n, 2);
        assert_string_equal(got->selectors.items[0].value, "alias:y");
        got = attested_agent_free(got);
        assert_ok(ds_set_agent_banned(f->ds, NODE1, false));
        assert_ok(ds_get_agent(f->ds, NODE1, &got));
        assert_false(got->banned);
}

static void test_agents_renew_list_evict(void **state) {
        DsFixture *f = *state;
        _cleanup_(attested_agent_freep) AttestedAgent *a =
                agent_new(NODE1, "join_token", "01ab", "join_token:alias:x", NULL);
        _cleanup_(attested_agent_freep) AttestedAgent *b =
                agent_new(NODE2, "x509pop", NULL, "x509pop:subject:cn:n2", "x509pop:ca:root", NULL);
        _cleanup_(attested_agent_freep) AttestedAgent *got = NULL;
        AttestedAgent **list = NULL;
        size_t n = 0;

        assert_ok(ds_upsert_agent(f->ds, b));
        assert_ok(ds_upsert_agent(f->ds, a));

        /* SVID renewal and last seen. */
        assert_ok(ds_update_agent_svid(f->ds, NODE1, "ff00", 3000));
        assert_ok(ds_touch_agent(f->ds, NODE1, 4242));
        assert_ok(ds_get_agent(f->ds, NODE1, &got));
        assert_string_equal(got->serial, "ff00");
        assert_int_equal(got->svid_expires_at, 3000);
        assert_int_equal(got->last_seen_at, 4242);
        got = attested_agent_free(got);

        assert_ok(ds_list_agents(f->ds, &list, &n));
        assert_int_equal(n, 2);
        assert_string_equal(list[0]->spiffe_id, NODE1);
        assert_string_equal(list[1]->spiffe_id, NODE2);
        assert_null(list[1]->serial);
        assert_int_equal(list[1]->selectors.n, 2);
        attested_agent_array_free(list, n);

        /* Eviction. */
        assert_ok(ds_delete_agent(f->ds, NODE2));
        assert_errno(ds_get_agent(f->ds, NODE2, &got), ENOENT);
        assert_errno(ds_delete_agent(f->ds, NODE2), ENOENT);
        assert_errno(ds_set_agent_banned(f->ds, NODE2, true), ENOENT);
        assert_errno(ds_update_agent_svid(f->ds, NODE2, "01", 1), ENOENT);
        assert_errno(ds_touch_agent(f->ds, NODE2, 1), ENOENT);
        assert_ok(ds_list_agents(f->ds, &list, &n));
        assert_int_equal(n, 1);
        attested_agent_array_free(list, n);
}

static void test_agent_limits(void **state) {
        DsFixture *f = *state;
        _cleanup_(attested_agent_freep) AttestedAgent *a =
                agent_new(NODE1, "join_token", "zz", NULL);
        char buf[64], serial[DS_SERIAL_MAX + 2];

        assert_errno(ds_upsert_agent(f->ds, a), EINVAL); /* serial not hex */
        free(a->serial);
        memset(serial, 'a', DS_SERIAL_MAX);
        serial[DS_SERIAL_MAX] = '\0';
        a->serial = strdup(serial);
        assert_ok(ds_upsert_agent(f->ds, a));
        serial[DS_SERIAL_MAX] = 'a';
        serial[DS_SERIAL_MAX + 1] = '\0';
        assert_errno(ds_update_agent_svid(f->ds, NODE1, serial, 1), EINVAL);
        assert_errno(ds_update_agent_svid(f->ds, NODE1, "", 1), EINVAL);

        a->selectors.max = DS_AGENT_SELECTORS_MAX + 1;
        for (int i = 0; a->selectors.n < DS_AGENT_SELECTORS_MAX; i++) {
                snprintf(buf, sizeof(buf), "unix:gid:%d", i);
                assert_ok(selector_set_add_string(&a->selectors, buf, NULL));
        }
        assert_ok(ds_upsert_agent(f->ds, a));
        assert_ok(selector_set_add_string(&a->selectors, "unix:gid:999999", NULL));
        assert_errno(ds_upsert_agent(f->ds, a), EINVAL);

        free(a->attestation_type);
        a->attestation_type = strdup("");
        assert_errno(ds_upsert_agent(f->ds, a), EINVAL);
        assert_errno(ds_upsert_agent(f->ds, NULL), EINVAL);
}

/* true when needle occurs in the database file or its WAL. */
static bool db_contains(const char *path, const void *needle, size_t len) {
        bool found = false;

        for (int i = 0; i < 2 && !found; i++) {
                _cleanup_free_ char *p = NULL, *data = NULL;
                size_t size = 0;

                assert_true(asprintf(&p, "%s%s", path, i == 0 ? "" : "-wal") > 0);
                data = test_read_file(p, &size);
                if (data)
                        found = memmem(data, size, needle, len) != NULL;
        }
        return found;
}

static void test_join_tokens(void **state) {
        DsFixture *f = *state;
        const char *token = "3f6c1e0a9b2d4c8e7f5a6b1c2d3e4f50";
        _cleanup_(join_token_freep) JoinToken *t = NULL;
        uint8_t hash[32];
        char big[DS_JOIN_TOKEN_MAX + 2];

        assert_ok(ds_create_join_token(f->ds, token, 1000, NODE1 "/alias"));
        assert_errno(ds_create_join_token(f->ds, token, 5000, NULL), EEXIST);
        assert_ok(ds_create_join_token(f->ds, "other-token", 500, NULL));

        /* Only the SHA-256 is stored: the hash is in the file, the token is not. */
        assert_int_equal(EVP_Digest(token, strlen(token), hash, NULL, EVP_sha256(), NULL), 1);
        assert_true(db_contains(f->path, hash, sizeof(hash)));
        assert_false(db_contains(f->path, token, strlen(token)));
        assert_false(db_contains(f->path, "other-token", strlen("other-token")));

        assert_errno(ds_consume_join_token(f->ds, "unknown", 10, &t), ENOENT);
        assert_errno(ds_consume_join_token(f->ds, token, 1000, &t), EKEYEXPIRED);
        assert_errno(ds_consume_join_token(f->ds, token, 5000, &t), EKEYEXPIRED);
        assert_null(t);
        /* An expired attempt did not use it up. */
        assert_ok(ds_consume_join_token(f->ds, token, 999, &t));
        assert_string_equal(t->token, token);
        assert_string_equal(t->alias_spiffe_id, NODE1 "/alias");
        assert_int_equal(t->expires_at, 1000);
        assert_true(t->used);
        t = join_token_free(t);
        /* Single use. */
        assert_errno(ds_consume_join_token(f->ds, token, 999, &t), EALREADY);
        assert_null(t);
        assert_ok(ds_consume_join_token(f->ds, "other-token", 1, NULL));
        assert_errno(ds_consume_join_token(f->ds, "other-token", 1, NULL), EALREADY);

        /* Size cap: exactly DS_JOIN_TOKEN_MAX is fine, one more is refused. */
        memset(big, 'x', DS_JOIN_TOKEN_MAX);
        big[DS_JOIN_TOKEN_MAX] = '\0';
        assert_ok(ds_create_join_token(f->ds, big, 100000, NULL));
        assert_ok(ds_consume_join_token(f->ds, big, 1, NULL));
        big[DS_JOIN_TOKEN_MAX] = 'x';
        big[DS_JOIN_TOKEN_MAX + 1] = '\0';
        assert_errno(ds_create_join_token(f->ds, big, 100000, NULL), EINVAL);
        assert_errno(ds_consume_join_token(f->ds, big, 1, NULL), ENOENT);
        assert_errno(ds_create_join_token(f->ds, "", 100000, NULL), EINVAL);

        /* Pruning drops tokens with expires_at <= now. */
        assert_ok(ds_create_join_token(f->ds, "fresh", 200000, NULL));
        assert_int_equal(ds_prune_join_tokens(f->ds, 1000), 2);
        assert_errno(ds_consume_join_token(f->ds, token, 1, NULL), ENOENT);
        assert_int_equal(ds_prune_join_tokens(f->ds, 1000), 0);
        assert_int_equal(ds_prune_join_tokens(f->ds, 100000), 1);
        assert_ok(ds_consume_join_token(f->ds, "fresh", 100001, NULL));
}

static void test_bundles(void **state) {
        DsFixture *f = *state;
        const uint8_t data1[] = {0x0a, 0x03, 'a', 0x00, 'b'}, data2[] = {0x01};
        _cleanup_free_ uint8_t *got = NULL, *big = NULL;
        BundleRow **rows = NULL;
        size_t len = 0, n = 0;

        assert_ok(ds_set_bundle(f->ds, "partner.example", data1, sizeof(data1)));
        assert_ok(ds_set_bundle(f->ds, "another.example", data2, sizeof(data2)));
        assert_ok(ds_get_bundle(f->ds, "partner.example", &got, &len));
        assert_int_equal(len, sizeof(data1));
        assert_memory_equal(got, data1, sizeof(data1));
        free(got);
        got = NULL;

        /* Replace. */
        assert_ok(ds_set_bundle(f->ds, "partner.example", data2, sizeof(data2)));
        assert_ok(ds_get_bundle(f->ds, "partner.example", &got, &len));
        assert_int_equal(len, 1);
        assert_int_equal(got[0], 0x01);

        assert_ok(ds_list_bundles(f->ds, &rows, &n));
        assert_int_equal(n, 2);
        assert_string_equal(rows[0]->trust_domain, "another.example");
        assert_string_equal(rows[1]->trust_domain, "partner.example");
        assert_int_equal(rows[1]->len, 1);
        assert_true(rows[1]->updated_at > 0);
        bundle_row_array_free(rows, n);

        assert_ok(ds_delete_bundle(f->ds, "another.example"));
        assert_errno(ds_delete_bundle(f->ds, "another.example"), ENOENT);
        assert_errno(ds_get_bundle(f->ds, "another.example", &got, &len), ENOENT);

        assert_errno(ds_set_bundle(f->ds, "Bad.TD", data1, sizeof(data1)), EINVAL);
        assert_errno(ds_set_bundle(f->ds, "spiffe://x.example", data1, sizeof(data1)), EINVAL);
        assert_errno(ds_set_bundle(f->ds, "x.example", data1, 0), EINVAL);
        big = calloc(1, DS_BUNDLE_MAX + 1);
        assert_non_null(big);
        assert_errno(ds_set_bundle(f->ds, "x.example", big, DS_BUNDLE_MAX + 1), E2BIG);
        assert_ok(ds_set_bundle(f->ds, "x.example", big, DS_BUNDLE_MAX));
        free(got);
        got = NULL;
        assert_ok(ds_get_bundle(f->ds, "x.example", &got, &len));
        assert_int_equal(len, DS_BUNDLE_MAX);
}

static void test_change_sequence(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(attested_agent_freep) AttestedAgent *a =
                agent_new(NODE1, "join_token", "01", NULL);
        const uint8_t b[] = {1, 2, 3};
        uint64_t s = test_ds_seq(f->ds);

        assert_int_equal(s, 0);
        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        assert_int_equal(test_ds_seq(f->ds), ++s);
        assert_ok(ds_update_entry(f->ds, e, NULL));
        assert_int_equal(test_ds_seq(f->ds), ++s);
        assert_ok(ds_upsert_agent(f->ds, a));
        assert_int_equal(test_ds_seq(f->ds), ++s);
        assert_ok(ds_set_agent_banned(f->ds, NODE1, true));
        assert_int_equal(test_ds_seq(f->ds), ++s);
        assert_ok(ds_set_bundle(f->ds, "partner.example", b, sizeof(b)));
        assert_int_equal(test_ds_seq(f->ds), ++s);

        /* Not counted: renewals, last seen, tokens, failures. */
        assert_ok(ds_update_agent_svid(f->ds, NODE1, "02", 5));
        assert_ok(ds_touch_agent(f->ds, NODE1, 5));
        assert_ok(ds_create_join_token(f->ds, "tok", 10, NULL));
        assert_errno(ds_delete_entry(f->ds, "0000"), ENOENT);
        assert_errno(ds_create_entries(f->ds, &e, 1, NULL), EEXIST);
        assert_int_equal(test_ds_seq(f->ds), s);

        /* Survives a reopen and keeps counting. */
        test_ds_reopen(f);
        assert_int_equal(test_ds_seq(f->ds), s);
        assert_ok(ds_delete_bundle(f->ds, "partner.example"));
        assert_ok(ds_delete_agent(f->ds, NODE1));
        assert_ok(ds_delete_entry(f->ds, e->id));
        assert_int_equal(test_ds_seq(f->ds), s + 3);
}

int test_ds_agents_run(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_agents_upsert_and_ban, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_agents_renew_list_evict, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_agent_limits, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_join_tokens, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_bundles, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_change_sequence, test_ds_setup,
                                                test_ds_teardown),
        };
        return cmocka_run_group_tests_name("ds_agents_tokens_bundles", tests, NULL, NULL);
}
