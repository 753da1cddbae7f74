/* SPDX-License-Identifier: Apache-2.0 */
/* Workload API JWT side over a real socket: FetchJWTSVID (audiences, spiffe_id
 * selection, pending, async and failing sources, shutdown while a mint is in
 * flight), ValidateJWTSVID (round trip with claims, tampered / expired / wrong
 * audience / garbage tokens, federated trust domains), and the claims <-> Struct
 * conversion. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <warden/jwtsvid.h>

#include "cleanup.h"
#include "spiffe/workload/workload.pb-c.h"
#include "testlib.h"
#include "wapi_harness.h"
#include "workload_api_internal.h"

#define ID_A "spiffe://" FX_TD "/a"
#define ID_B "spiffe://" FX_TD "/b"
#define ID_N "spiffe://" FX_TD "/nobody"
#define ID_FED "spiffe://" FX_FED_TD "/remote"
#define GENERIC "unable to validate JWT-SVID"

static const FxEntry entries_root[] = {
        {.entry_id = "1",
         .spiffe_id = ID_A,
         .hint = "a",
         .selectors = {"unix:uid:0"},
         .federates_with = FX_FED_TD,
         .created_at = 10},
        {.entry_id = "2", .spiffe_id = ID_N, .selectors = {"unix:uid:65534"}, .created_at = 10},
        {.entry_id = "3", .spiffe_id = ID_B, .selectors = {"unix:uid:0"}, .created_at = 10},
};
static const FxEntry entries_plain[] = {
        {.entry_id = "1", .spiffe_id = ID_A, .selectors = {"unix:uid:0"}, .created_at = 10},
};
static const FxEntry entries_nobody[] = {
        {.entry_id = "2", .spiffe_id = ID_N, .selectors = {"unix:uid:65534"}, .created_at = 10},
};
static const FxEntry entries_pending[] = {
        {.entry_id = "1",
         .spiffe_id = ID_A,
         .selectors = {"unix:uid:0"},
         .pending = true,
         .created_at = 10},
        {.entry_id = "3", .spiffe_id = ID_B, .selectors = {"unix:uid:0"}, .created_at = 10},
};

static void free_msg(void *m) {
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}

/* FetchJWTSVID; returns the status, *ret the response on OK. */
static int fetch_jwt(Harness *h,
                     const char *const *aud,
                     size_t n_aud,
                     const char *spiffe_id,
                     JWTSVIDResponse **ret,
                     char **ret_msg) {
        JWTSVIDRequest req = JWTSVIDREQUEST__INIT;

        req.n_audience = n_aud;
        req.audience = (char **) aud;
        if (spiffe_id)
                req.spiffe_id = (char *) spiffe_id;
        return h_unary(h, "FetchJWTSVID", true, &req.base, &jwtsvidresponse__descriptor,
                       (ProtobufCMessage **) ret, ret_msg);
}

static int validate(Harness *h,
                    const char *aud,
                    const char *token,
                    ValidateJWTSVIDResponse **ret,
                    char **ret_msg) {
        ValidateJWTSVIDRequest req = VALIDATE_JWTSVIDREQUEST__INIT;

        req.audience = (char *) aud;
        req.svid = (char *) token;
        return h_unary(h, "ValidateJWTSVID", true, &req.base, &validate_jwtsvidresponse__descriptor,
                       (ProtobufCMessage **) ret, ret_msg);
}

/* The token verifies against our bundle with exactly these audiences. */
static void check_token(Harness *h, const char *token, const char *id, size_t n_aud, ...) {
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = h->fx->source.snapshot(h->fx);
        const WardenBundle *b[] = {s->bundle};
        va_list ap;

        va_start(ap, n_aud);
        for (size_t i = 0; i < n_aud; i++) {
                const char *aud = va_arg(ap, const char *);

                warden_jwt_claims_free(TAKE_PTR(c));
                assert_ok(warden_jwtsvid_validate(token, aud, b, 1, NULL, &c, NULL));
        }
        va_end(ap);
        assert_string_equal(c->spiffe_id, id);
        assert_int_equal(c->n_aud, n_aud);
}

static void test_fetch_jwt(void **state) {
        const char *aud2[] = {"aud1", "aud2"}, *aud1[] = {"aud1"};
        JWTSVIDResponse *r = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        /* Every identity, entry order, hints. */
        assert_int_equal(fetch_jwt(&h, aud2, 2, NULL, &r, NULL), GRPC_STATUS_OK);
        assert_int_equal(r->n_svids, 2);
        assert_string_equal(r->svids[0]->spiffe_id, ID_A);
        assert_string_equal(r->svids[0]->hint, "a");
        check_token(&h, r->svids[0]->svid, ID_A, 2, "aud1", "aud2");
        assert_string_equal(r->svids[1]->spiffe_id, ID_B);
        assert_string_equal(r->svids[1]->hint, "");
        check_token(&h, r->svids[1]->svid, ID_B, 2, "aud1", "aud2");
        free_msg(r);
        /* One chosen identity. */
        assert_int_equal(fetch_jwt(&h, aud1, 1, ID_B, &r, NULL), GRPC_STATUS_OK);
        assert_int_equal(r->n_svids, 1);
        assert_string_equal(r->svids[0]->spiffe_id, ID_B);
        check_token(&h, r->svids[0]->svid, ID_B, 1, "aud1");
        free_msg(r);
        h_stop(&h);
}

static void test_fetch_jwt_errors(void **state) {
        static char long_aud[WARDEN_JWT_AUDIENCE_MAX + 2];
        const char *aud1[] = {"aud1"}, *empty[] = {""}, *longa[] = {long_aud};
        const char *many[WARDEN_JWT_AUDIENCES_MAX + 1];
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL;
        Harness h;

        (void) state;
        memset(long_aud, 'x', sizeof(long_aud) - 1);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "aud";
        h_start(&h);
        /* Not ready. */
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        assert_int_equal(fetch_jwt(&h, NULL, 0, NULL, NULL, &m1), GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(m1, "audience must be specified");
        assert_int_equal(fetch_jwt(&h, empty, 1, NULL, NULL, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        /* Limits: at the limit fine, one over refused. */
        assert_int_equal(fetch_jwt(&h, many, WARDEN_JWT_AUDIENCES_MAX, NULL, NULL, NULL),
                         GRPC_STATUS_OK);
        assert_int_equal(fetch_jwt(&h, many, WARDEN_JWT_AUDIENCES_MAX + 1, NULL, NULL, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        long_aud[WARDEN_JWT_AUDIENCE_MAX] = 0;
        assert_int_equal(fetch_jwt(&h, longa, 1, NULL, NULL, NULL), GRPC_STATUS_OK);
        long_aud[WARDEN_JWT_AUDIENCE_MAX] = 'x';
        assert_int_equal(fetch_jwt(&h, longa, 1, NULL, NULL, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(fetch_jwt(&h, aud1, 1, "spiffe://" FX_TD "/a/../b", NULL, &m2),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(m2, "invalid spiffe_id");
        /* Someone else's identity, and one nobody has. */
        assert_int_equal(fetch_jwt(&h, aud1, 1, ID_N, NULL, &m3), GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(m3, "no identity issued");
        assert_int_equal(fetch_jwt(&h, aud1, 1, "spiffe://" FX_TD "/none", NULL, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        /* No identity at all. */
        h_publish(&h, entries_nobody, ELEMENTSOF(entries_nobody));
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);
        h_stop(&h);
}

static void test_fetch_jwt_pending(void **state) {
        const char *aud1[] = {"aud1"};
        JWTSVIDResponse *r = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_pending, ELEMENTSOF(entries_pending));
        /* a is not signed yet: asking for it is UNAVAILABLE; b is served. */
        assert_int_equal(fetch_jwt(&h, aud1, 1, ID_A, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, &r, NULL), GRPC_STATUS_OK);
        assert_int_equal(r->n_svids, 1);
        assert_string_equal(r->svids[0]->spiffe_id, ID_B);
        free_msg(r);
        h_stop(&h);
}

static void test_fetch_jwt_source(void **state) {
        const char *aud1[] = {"aud1"};
        JWTSVIDResponse *r = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        /* Answers from other threads, later. */
        fx_set_jwt_mode(h.fx, (FxJwtMode){.async = true, .delay_ms = 20});
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, &r, NULL), GRPC_STATUS_OK);
        assert_int_equal(r->n_svids, 2);
        check_token(&h, r->svids[1]->svid, ID_B, 1, "aud1");
        free_msg(r);
        /* Server unreachable: UNAVAILABLE, from the callback or at once. */
        fx_set_jwt_mode(h.fx, (FxJwtMode){.async = true, .delay_ms = 20, .fail = -EAGAIN});
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
        fx_set_jwt_mode(h.fx, (FxJwtMode){.fail = -EAGAIN});
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
        fx_set_jwt_mode(h.fx, (FxJwtMode){.fail_now = -ECONNREFUSED});
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
        /* Refused by the server. */
        fx_set_jwt_mode(h.fx, (FxJwtMode){.fail = -EPERM});
        assert_int_equal(fetch_jwt(&h, aud1, 1, NULL, NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);
        h_stop(&h);
}

typedef struct Caller {
        Harness *h;
        int status;
} Caller;

static void *caller_main(void *p) {
        Caller *c = p;
        const char *aud1[] = {"aud1"};

        c->status = fetch_jwt(c->h, aud1, 1, NULL, NULL, NULL);
        return NULL;
}

/* The server stops while the source still owes it tokens: the late callbacks find
 * the call cancelled and the last one frees what is left (ASan/LSan check this). */
static void test_stop_with_jwt_in_flight(void **state) {
        Caller c;
        pthread_t t;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        fx_set_jwt_mode(h.fx, (FxJwtMode){.async = true, .delay_ms = 400});
        c = (Caller){.h = &h, .status = -1};
        assert_int_equal(pthread_create(&t, NULL, caller_main, &c), 0);
        while (fx_n_fetches(h.fx) < 2)
                usleep(1000);
        h_stop_server(&h);
        pthread_join(t, NULL);
        assert_int_not_equal(c.status, GRPC_STATUS_OK);
        h_stop(&h); /* joins the fixture's threads: the callbacks ran */
}

static void test_validate_round_trip(void **state) {
        const char *aud1[] = {"aud1"};
        _cleanup_(json_decrefp) json_t *claims = NULL;
        ValidateJWTSVIDResponse *v = NULL;
        JWTSVIDResponse *r = NULL;
        json_t *aud;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        assert_int_equal(fetch_jwt(&h, aud1, 1, ID_A, &r, NULL), GRPC_STATUS_OK);
        assert_int_equal(validate(&h, "aud1", r->svids[0]->svid, &v, NULL), GRPC_STATUS_OK);
        assert_string_equal(v->spiffe_id, ID_A);
        assert_non_null(v->claims);
        assert_ok(wapi_struct_to_json(v->claims, &claims));
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), ID_A);
        aud = json_object_get(claims, "aud");
        assert_true(json_is_array(aud));
        assert_int_equal(json_array_size(aud), 1);
        assert_string_equal(json_string_value(json_array_get(aud, 0)), "aud1");
        assert_true(json_is_integer(json_object_get(claims, "exp")));
        assert_true(json_integer_value(json_object_get(claims, "exp")) > time(NULL));
        assert_true(json_is_integer(json_object_get(claims, "iat")));
        assert_true(json_is_string(json_object_get(claims, "jti")));
        free_msg(v);

        /* The caller needs no identity to validate. */
        h_publish(&h, entries_nobody, ELEMENTSOF(entries_nobody));
        assert_int_equal(validate(&h, "aud1", r->svids[0]->svid, NULL, NULL), GRPC_STATUS_OK);
        free_msg(r);
        h_stop(&h);
}

static void expect_invalid(Harness *h, const char *aud, const char *token, const char *msg) {
        _cleanup_free_ char *got = NULL;

        assert_int_equal(validate(h, aud, token, NULL, &got), GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(got, msg);
}

static void test_validate_rejects(void **state) {
        _cleanup_free_ char *good = NULL, *expired = NULL, *tampered = NULL, *unknown = NULL;
        Harness h;
        char *dot;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        assert_ok(fx_mint(h.fx, false, ID_A, "aud1", 300, 0, &good));
        assert_int_equal(validate(&h, "aud1", good, NULL, NULL), GRPC_STATUS_OK);

        expect_invalid(&h, "", good, "audience must be specified");
        {
                char aud[WARDEN_JWT_AUDIENCE_MAX + 2];

                memset(aud, 'a', sizeof(aud) - 1);
                aud[sizeof(aud) - 1] = 0;
                expect_invalid(&h, aud, good, "audience too long");
                aud[WARDEN_JWT_AUDIENCE_MAX] = 0; /* at the limit: checked, just wrong */
                expect_invalid(&h, aud, good, GENERIC);
        }
        expect_invalid(&h, "aud1", "", "svid must be specified");
        /* Every token failure: one generic message. */
        expect_invalid(&h, "aud2", good, GENERIC);
        assert_ok(fx_mint(h.fx, false, ID_A, "aud1", 60, time(NULL) - 3600, &expired));
        expect_invalid(&h, "aud1", expired, GENERIC);
        tampered = strdup(good);
        assert_non_null(tampered);
        dot = strrchr(tampered, '.');
        dot[3] = dot[3] == 'A' ? 'B' : 'A';
        expect_invalid(&h, "aud1", tampered, GENERIC);
        expect_invalid(&h, "aud1", "not.a.token", GENERIC);
        expect_invalid(&h, "aud1", "garbage", GENERIC);
        /* A trust domain we have no bundle for. */
        assert_ok(fx_mint(h.fx, true, "spiffe://elsewhere.test/x", "aud1", 300, 0, &unknown));
        expect_invalid(&h, "aud1", unknown, GENERIC);
        /* Not ready (the source has no snapshot any more). */
        fx_clear(h.fx);
        h_changed(&h);
        assert_int_equal(validate(&h, "aud1", good, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
        h_stop(&h);
}

static void test_validate_federated(void **state) {
        _cleanup_(json_decrefp) json_t *claims = NULL;
        _cleanup_free_ char *fed = NULL;
        ValidateJWTSVIDResponse *v = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_root, ELEMENTSOF(entries_root));
        assert_ok(fx_mint(h.fx, true, ID_FED, "aud1", 300, 0, &fed));
        /* Entry a federates with federated.test: its tokens validate, with only
         * sub/aud/exp returned. */
        assert_int_equal(validate(&h, "aud1", fed, &v, NULL), GRPC_STATUS_OK);
        assert_string_equal(v->spiffe_id, ID_FED);
        assert_ok(wapi_struct_to_json(v->claims, &claims));
        assert_int_equal(json_object_size(claims), 3);
        assert_non_null(json_object_get(claims, "sub"));
        assert_true(json_is_array(json_object_get(claims, "aud")));
        assert_non_null(json_object_get(claims, "exp"));
        free_msg(v);
        /* Without the federation the same token is refused. */
        h_publish(&h, entries_plain, ELEMENTSOF(entries_plain));
        expect_invalid(&h, "aud1", fed, GENERIC);
        h_stop(&h);
}

static void test_struct_conversion(void **state) {
        static const char doc[] = "{\"s\":\"x\",\"n\":1.5,\"i\":42,\"t\":true,\"f\":false,"
                                  "\"z\":null,\"o\":{\"a\":[1,\"b\",{\"c\":[]}]},\"e\":{}}";
        _cleanup_(json_decrefp) json_t *in = NULL, *out = NULL, *deep = NULL;
        Google__Protobuf__Struct *st = NULL, *back;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        (void) state;
        in = json_loads(doc, 0, NULL);
        assert_non_null(in);
        assert_ok(wapi_struct_from_json(in, &st));
        /* Through the wire format and back. */
        len = protobuf_c_message_get_packed_size(&st->base);
        buf = malloc(len);
        assert_non_null(buf);
        protobuf_c_message_pack(&st->base, buf);
        protobuf_c_message_free_unpacked(&st->base, NULL);
        back = google__protobuf__struct__unpack(NULL, len, buf);
        assert_non_null(back);
        assert_ok(wapi_struct_to_json(back, &out));
        protobuf_c_message_free_unpacked(&back->base, NULL);
        assert_true(json_equal(in, out));

        /* Nesting is capped. */
        deep = json_object();
        for (int i = 0; i < WAPI_STRUCT_DEPTH_MAX + 2; i++)
                deep = json_pack("{so}", "x", deep);
        assert_errno(wapi_struct_from_json(deep, &st), E2BIG);
        assert_errno(
                wapi_struct_from_json(
                        json_array_get(json_object_get(json_object_get(in, "o"), "a"), 0), &st),
                EINVAL);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fetch_jwt),
                cmocka_unit_test(test_fetch_jwt_errors),
                cmocka_unit_test(test_fetch_jwt_pending),
                cmocka_unit_test(test_fetch_jwt_source),
                cmocka_unit_test(test_stop_with_jwt_in_flight),
                cmocka_unit_test(test_validate_round_trip),
                cmocka_unit_test(test_validate_rejects),
                cmocka_unit_test(test_validate_federated),
        };
        static const struct CMUnitTest plain[] = {
                cmocka_unit_test(test_struct_conversion),
        };
        int fails = cmocka_run_group_tests_name("workload_api_struct", plain, NULL, NULL);

        return fails + cmocka_run_group_tests_name("workload_api_jwt", tests, NULL, NULL);
}
