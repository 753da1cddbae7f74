/* SPDX-License-Identifier: Apache-2.0 */
/* The Workload API's metrics over a real socket: every call that reaches a handler (or
 * that the gRPC layer refuses for the security header) is counted once by method and status code
 * with its latency (streams: OK with the first message, else their final status, CANCELLED when the
 * client leaves first), open streams go up and down, each attestation is counted. Runs once per */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "spiffe/workload/workload.pb-c.h"
#include "testlib.h"
#include "wapi_harness.h"

#define ID_A "spiffe://" FX_TD "/a"
#define QUIET_MS 300

/* Caller = this process, uid 0. */
static const FxEntry entries_mine[] = {
        {.entry_id = "1", .spiffe_id = ID_A, .selectors = {"unix:uid:0"}, .created_at = 10},
};
static const FxEntry entries_other[] = {
        {.entry_id = "2",
         .spiffe_id = "spiffe://" FX_TD "/n",
         .selectors = {"unix:uid:65534"},
         .created_at = 10},
};
static const FxEntry entries_pending[] = {
        {.entry_id = "1",
         .spiffe_id = ID_A,
         .selectors = {"unix:uid:0"},
         .pending = true,
         .created_at = 10},
};

#define CALLS(method, code) h_metric(&h, METRIC_WORKLOAD_API_CALLS, METRICS_LABELS(method, code))
#define EXPECT_CALLS(method, code, n)                                                              \
        h_expect_metric(&h, METRIC_WORKLOAD_API_CALLS, METRICS_LABELS(method, code), n)
#define EXPECT_OPEN(method, n)                                                                     \
        h_expect_metric(&h, METRIC_WORKLOAD_API_OPEN_STREAMS, METRICS_LABELS(method), n)
#define SECONDS(method) h_metric(&h, METRIC_WORKLOAD_API_CALL_SECONDS, METRICS_LABELS(method))

static int fetch_jwt(Harness *h, const char *aud) {
        JWTSVIDRequest req = JWTSVIDREQUEST__INIT;
        char *auds[] = {(char *) aud};
        ProtobufCMessage *m = NULL;
        int status;

        req.n_audience = aud ? 1 : 0;
        req.audience = auds;
        status =
                h_unary(h, "FetchJWTSVID", true, &req.base, &jwtsvidresponse__descriptor, &m, NULL);
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
        return status;
}

static void test_stream_metrics(void **state) {
        ProtobufCMessage *m = NULL;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);

        /* No snapshot yet: UNAVAILABLE, after the caller was attested. */
        st = h_stream(&h, "FetchX509SVID", true);
        h_expect_end(st, GRPC_STATUS_UNAVAILABLE, NULL);
        rpc_stream_free(st);
        EXPECT_CALLS("FetchX509SVID", "UNAVAILABLE", 1);

        /* The first message counts the stream as OK, once; it is open until the
         * client goes, and leaving after a message adds no CANCELLED. */
        h_publish(&h, entries_mine, ELEMENTSOF(entries_mine));
        st = h_stream(&h, "FetchX509SVID", true);
        assert_int_equal(h_next(st, H_TIMEOUT_MS, &x509_svidresponse__descriptor, &m, NULL, NULL),
                         1);
        protobuf_c_message_free_unpacked(m, NULL);
        EXPECT_CALLS("FetchX509SVID", "OK", 1);
        EXPECT_OPEN("FetchX509SVID", 1);
        h_publish(&h, entries_mine, ELEMENTSOF(entries_mine)); /* a second message */
        assert_int_equal(h_next(st, H_TIMEOUT_MS, &x509_svidresponse__descriptor, &m, NULL, NULL),
                         1);
        protobuf_c_message_free_unpacked(m, NULL);
        rpc_stream_free(st);
        EXPECT_OPEN("FetchX509SVID", 0);
        assert_true(CALLS("FetchX509SVID", "OK") == 1);
        assert_true(CALLS("FetchX509SVID", "CANCELLED") == 0);
        assert_true(SECONDS("FetchX509SVID") == 2);

        /* Waiting for a pending SVID when the client gives up: CANCELLED. */
        h_publish(&h, entries_pending, ELEMENTSOF(entries_pending));
        st = h_stream(&h, "FetchX509SVID", true);
        assert_int_equal(h_next(st, QUIET_MS, NULL, &m, NULL, NULL), -ETIMEDOUT);
        EXPECT_OPEN("FetchX509SVID", 1);
        rpc_stream_free(st);
        EXPECT_CALLS("FetchX509SVID", "CANCELLED", 1);
        EXPECT_OPEN("FetchX509SVID", 0);

        /* No identity: PERMISSION_DENIED, per method. */
        h_publish(&h, entries_other, ELEMENTSOF(entries_other));
        st = h_stream(&h, "FetchX509Bundles", true);
        h_expect_end(st, GRPC_STATUS_PERMISSION_DENIED, NULL);
        rpc_stream_free(st);
        EXPECT_CALLS("FetchX509Bundles", "PERMISSION_DENIED", 1);
        EXPECT_OPEN("FetchX509Bundles", 0);
        assert_true(CALLS("FetchX509SVID", "PERMISSION_DENIED") == 0);

        /* Attestation is per connection: the harness's one channel, attested once. */
        h_expect_metric(&h, METRIC_WORKLOAD_ATTESTATIONS, METRICS_LABELS(METRICS_RESULT_OK), 1);
        assert_true(h_metric(&h, METRIC_WORKLOAD_ATTESTATION_SECONDS, NULL) == 1);
        assert_true(h_metric(&h, METRIC_WORKLOAD_ATTESTATIONS,
                             METRICS_LABELS(METRICS_RESULT_ERROR)) == 0);
        h_stop(&h);
}

static void test_unary_metrics(void **state) {
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_mine, ELEMENTSOF(entries_mine));

        assert_int_equal(fetch_jwt(&h, "aud1"), GRPC_STATUS_OK);
        EXPECT_CALLS("FetchJWTSVID", "OK", 1);
        assert_true(SECONDS("FetchJWTSVID") == 1);
        /* Refused before attestation: no audience, a malformed request. */
        assert_int_equal(fetch_jwt(&h, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        EXPECT_CALLS("FetchJWTSVID", "INVALID_ARGUMENT", 1);
        assert_int_equal(h_unary_raw(&h, "ValidateJWTSVID", true, "\xff", 1, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        EXPECT_CALLS("ValidateJWTSVID", "INVALID_ARGUMENT", 1);
        /* A bad token, after attestation. */
        {
                ValidateJWTSVIDRequest req = VALIDATE_JWTSVIDREQUEST__INIT;

                req.audience = "aud1";
                req.svid = "not.a.token";
                assert_int_equal(h_unary(&h, "ValidateJWTSVID", true, &req.base, NULL, NULL, NULL),
                                 GRPC_STATUS_INVALID_ARGUMENT);
        }
        EXPECT_CALLS("ValidateJWTSVID", "INVALID_ARGUMENT", 2);
        assert_int_equal(h_unary_raw(&h, "FetchWITSVID", true, "", 0, NULL),
                         GRPC_STATUS_UNIMPLEMENTED);
        EXPECT_CALLS("FetchWITSVID", "UNIMPLEMENTED", 1);
        /* A caller without an identity. */
        h_publish(&h, entries_other, ELEMENTSOF(entries_other));
        assert_int_equal(fetch_jwt(&h, "aud1"), GRPC_STATUS_PERMISSION_DENIED);
        EXPECT_CALLS("FetchJWTSVID", "PERMISSION_DENIED", 1);

        assert_true(SECONDS("FetchJWTSVID") == 3);
        assert_true(SECONDS("ValidateJWTSVID") == 2);
        /* One connection, attested once for all of these calls. */
        h_expect_metric(&h, METRIC_WORKLOAD_ATTESTATIONS, METRICS_LABELS(METRICS_RESULT_OK), 1);
        h_stop(&h);
}

/* Calls the gRPC layer refuses for the security header never reach a handler, yet
 * count as INVALID_ARGUMENT (latency 0); unknown paths never become labels. */
static void test_header_refusal_metrics(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t text_size;
        RpcStream *st;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, entries_mine, ELEMENTSOF(entries_mine));

        assert_int_equal(h_unary_raw(&h, "FetchJWTSVID", false, "", 0, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        EXPECT_CALLS("FetchJWTSVID", "INVALID_ARGUMENT", 1);
        st = h_stream(&h, "FetchX509SVID", false);
        h_expect_end(st, GRPC_STATUS_INVALID_ARGUMENT, "security header missing from request");
        rpc_stream_free(st);
        EXPECT_CALLS("FetchX509SVID", "INVALID_ARGUMENT", 1);
        assert_int_equal(h_unary_raw(&h, "NoSuchMethod", false, "", 0, NULL),
                         GRPC_STATUS_UNIMPLEMENTED);
        /* A handled call afterwards is counted by its handler, once. */
        assert_int_equal(fetch_jwt(&h, "aud1"), GRPC_STATUS_OK);
        EXPECT_CALLS("FetchJWTSVID", "OK", 1);

        assert_true(SECONDS("FetchJWTSVID") == 2);
        assert_true(SECONDS("FetchX509SVID") == 1);
        assert_true(CALLS("FetchJWTSVID", "INVALID_ARGUMENT") == 1);
        /* The connection was attested once, whatever its calls. */
        h_expect_metric(&h, METRIC_WORKLOAD_ATTESTATIONS, METRICS_LABELS(METRICS_RESULT_OK), 1);
        assert_ok(metrics_render(h.registry, &text, &text_size));
        assert_null(strstr(text, "NoSuchMethod"));
        h_stop(&h);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stream_metrics),
                cmocka_unit_test(test_unary_metrics),
                cmocka_unit_test(test_header_refusal_metrics),
        };
        return cmocka_run_group_tests_name("workload_api_metrics", tests, NULL, NULL);
}
