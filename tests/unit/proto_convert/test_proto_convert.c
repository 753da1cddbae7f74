/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "attested_agent.h"
#include "entry_pb.h"
#include "ossl_cleanup.h"
#include "testlib.h"

static Entry *make_entry(void) {
        Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->id = strdup("0123456789abcdef0123456789abcdef");
        e->spiffe_id = strdup("spiffe://example.org/web");
        e->parent_id = strdup("spiffe://example.org/warden/agent/join_token/t");
        assert_ok(selector_set_add(&e->selectors, "unix", "uid:0"));
        assert_ok(selector_set_add(&e->selectors, "unix", "user:root"));
        assert_ok(entry_add_dns_name(e, "web.example.org"));
        assert_ok(entry_add_federates_with(e, "other.org"));
        assert_ok(entry_add_scope(e, "read"));
        e->hint = strdup("internal");
        e->env = strdup("prod");
        e->task = strdup("job-1");
        e->x509_svid_ttl = 600;
        e->jwt_svid_ttl = 60;
        e->admin = true;
        e->expires_at = 1900000000;
        e->revision = 3;
        e->created_at = 1700000000;
        return e;
}

static void test_entry_round_trip(void **state) {
        _cleanup_(entry_freep) Entry *e = make_entry(), *back = NULL;
        Warden__Types__V1__Entry *pb = NULL, *unpacked;
        _cleanup_free_ uint8_t *buf = NULL;
        const char *reason = NULL;
        size_t len;
        (void) state;

        assert_ok(entry_to_pb(e, &pb));
        assert_ok(pb_pack(pb, &buf, &len));
        pb_free(pb);
        unpacked = warden__types__v1__entry__unpack(NULL, len, buf);
        assert_non_null(unpacked);
        assert_ok(entry_new_from_pb(unpacked, &back, &reason));
        pb_free(unpacked);

        assert_string_equal(back->id, e->id);
        assert_string_equal(back->spiffe_id, e->spiffe_id);
        assert_string_equal(back->parent_id, e->parent_id);
        assert_int_equal(back->selectors.n, 2);
        assert_string_equal(back->selectors.items[0].type, "unix");
        assert_string_equal(back->selectors.items[0].value, "uid:0");
        assert_int_equal(back->n_dns_names, 1);
        assert_string_equal(back->dns_names[0], "web.example.org");
        assert_string_equal(back->federates_with[0], "other.org");
        assert_string_equal(back->scopes[0], "read");
        assert_string_equal(back->hint, "internal");
        assert_string_equal(back->env, "prod");
        assert_string_equal(back->task, "job-1");
        assert_null(back->state); /* empty optional string -> NULL */
        assert_int_equal(back->x509_svid_ttl, 600);
        assert_int_equal(back->jwt_svid_ttl, 60);
        assert_true(back->admin);
        assert_false(back->node);
        assert_int_equal(back->expires_at, 1900000000);
        assert_int_equal(back->revision, 3);
        assert_int_equal(back->created_at, 1700000000);
}

static void test_entry_bad_selector(void **state) {
        Warden__Types__V1__Entry pb = WARDEN__TYPES__V1__ENTRY__INIT;
        Warden__Types__V1__Selector sel = WARDEN__TYPES__V1__SELECTOR__INIT, *sels[] = {&sel};
        Entry *e = NULL;
        const char *reason = NULL;
        (void) state;

        sel.type = (char *) "unix";
        sel.value = (char *) "uid:abc";
        pb.selectors = sels;
        pb.n_selectors = 1;
        assert_errno(entry_new_from_pb(&pb, &e, &reason), EINVAL);
        assert_null(e);
        assert_non_null(reason);
}

static void test_bundle_round_trip(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *jwt_key = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL;
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL, *back = NULL;
        Warden__Types__V1__Bundle *pb = NULL, *unpacked;
        _cleanup_free_ uint8_t *buf = NULL;
        const char *reason = NULL;
        size_t len;
        (void) state;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &ca_key));
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &jwt_key));
        assert_ok(warden_ca_create_self_signed(ca_key, "example.org", 3600, 0, &ca));
        assert_ok(warden_bundle_new("example.org", &b));
        assert_ok(warden_bundle_add_x509_authority(b, ca));
        assert_ok(warden_bundle_add_jwt_authority(b, "kid-1", jwt_key, 1900000000));
        warden_bundle_set_sequence(b, 42);
        assert_ok(warden_bundle_set_refresh_hint(b, 300));

        assert_ok(pb_from_bundle(b, &pb));
        assert_ok(pb_pack(pb, &buf, &len));
        pb_free(pb);
        unpacked = warden__types__v1__bundle__unpack(NULL, len, buf);
        assert_non_null(unpacked);
        assert_ok(pb_to_bundle(unpacked, &back, &reason));
        pb_free(unpacked);
        assert_true(warden_bundle_equal(b, back));
        assert_int_equal(warden_bundle_sequence(back), 42);
        assert_int_equal(warden_bundle_refresh_hint(back), 300);
        assert_non_null(warden_bundle_find_jwt_key(back, "kid-1"));
}

static void test_bundle_bad_authority(void **state) {
        Warden__Types__V1__Bundle pb = WARDEN__TYPES__V1__BUNDLE__INIT;
        ProtobufCBinaryData junk = {.len = 3, .data = (uint8_t *) "abc"};
        WardenBundle *b = NULL;
        const char *reason = NULL;
        (void) state;

        pb.trust_domain = (char *) "example.org";
        pb.x509_authorities = &junk;
        pb.n_x509_authorities = 1;
        assert_errno(pb_to_bundle(&pb, &b, &reason), EINVAL);
        assert_string_equal(reason, "bad X.509 authority");
        pb.n_x509_authorities = 0;
        pb.trust_domain = (char *) "Bad_TD!";
        assert_errno(pb_to_bundle(&pb, &b, &reason), EINVAL);
        assert_null(b);
}

static void test_agent_to_pb(void **state) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        Warden__Types__V1__AttestedAgent *pb = NULL;
        (void) state;

        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup("spiffe://example.org/warden/agent/join_token/x");
        a->attestation_type = strdup("join_token");
        a->banned = true;
        a->svid_expires_at = 123;
        assert_ok(selector_set_add(&a->selectors, "warden", "agent_id:x"));
        assert_ok(attested_agent_to_pb(a, &pb));
        assert_string_equal(pb->spiffe_id, a->spiffe_id);
        assert_string_equal(pb->x509_svid_serial, ""); /* NULL serial -> "" */
        assert_true(pb->banned);
        assert_int_equal(pb->n_selectors, 1);
        assert_string_equal(pb->selectors[0]->value, "agent_id:x");
        pb_free(pb);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_entry_round_trip),
                cmocka_unit_test(test_entry_bad_selector),
                cmocka_unit_test(test_bundle_round_trip),
                cmocka_unit_test(test_bundle_bad_authority),
                cmocka_unit_test(test_agent_to_pb),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
