/* SPDX-License-Identifier: Apache-2.0 */
/* server_sign_results_from_pb(): how the agent matches a BatchNewX509SVID answer to its
 * requests and which chains it refuses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "server_client.h"

typedef Warden__Node__V1__X509SVIDResult Result;

static void result_init(
        Result *r, const char *entry_id, int status, ProtobufCBinaryData *chain, size_t n) {
        warden__node__v1__x509_svidresult__init(r);
        r->entry_id = (char *) entry_id;
        r->status = status;
        r->svid_chain = chain;
        r->n_svid_chain = n;
}

static void results_free(ManagerSignResult *res, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(res[i].chain_der);
}

static void test_matched_by_entry_id(void **state) {
        uint8_t leaf[] = {1, 2, 3}, ca[] = {4, 5};
        ProtobufCBinaryData chain[] = {{sizeof(leaf), leaf}, {sizeof(ca), ca}};
        ManagerSignRequest req[] = {{.entry_id = "a"}, {.entry_id = "b"}, {.entry_id = "c"}};
        ManagerSignResult res[3];
        Result r_b, r_a, r_stray, r_a_again;
        Result *list[] = {&r_b, &r_stray, &r_a, &r_a_again};
        Warden__Node__V1__BatchNewX509SVIDResponse resp;
        static const uint8_t joined[] = {1, 2, 3, 4, 5};

        result_init(&r_b, "b", 7 /* PERMISSION_DENIED */, NULL, 0);
        result_init(&r_a, "a", 0, chain, 2);
        result_init(&r_stray, "zz", 0, chain, 1);
        result_init(&r_a_again, "a", 0, chain, 1);
        warden__node__v1__batch_new_x509_svidresponse__init(&resp);
        resp.results = list;
        resp.n_results = 4;

        server_sign_results_from_pb(&resp, req, 3, res);
        assert_int_equal(res[0].r, 0);
        assert_int_equal(res[0].chain_len, sizeof(joined));
        assert_memory_equal(res[0].chain_der, joined, sizeof(joined));
        assert_int_equal(res[1].r, -EPERM);
        assert_null(res[1].chain_der);
        assert_int_equal(res[2].r, -EPROTO); /* nothing for "c" */
        assert_null(res[2].chain_der);
        results_free(res, 3);
}

static void test_bad_chains_refused(void **state) {
        uint8_t leaf[] = {1, 2, 3};
        ProtobufCBinaryData with_empty[] = {{sizeof(leaf), leaf}, {0, NULL}};
        ProtobufCBinaryData many[WARDEN_X509_CHAIN_MAX_CERTS + 1];
        ManagerSignRequest req[] = {
                {.entry_id = "empty"}, {.entry_id = "none"}, {.entry_id = "many"}};
        ManagerSignResult res[3];
        Result r_empty, r_none, r_many;
        Result *list[] = {&r_empty, &r_none, &r_many};
        Warden__Node__V1__BatchNewX509SVIDResponse resp;

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = (ProtobufCBinaryData){sizeof(leaf), leaf};
        result_init(&r_empty, "empty", 0, with_empty, 2);
        result_init(&r_none, "none", 0, NULL, 0);
        result_init(&r_many, "many", 0, many, ELEMENTSOF(many));
        warden__node__v1__batch_new_x509_svidresponse__init(&resp);
        resp.results = list;
        resp.n_results = 3;

        server_sign_results_from_pb(&resp, req, 3, res);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(res[i].r, -EBADMSG);
                assert_null(res[i].chain_der);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_matched_by_entry_id),
                cmocka_unit_test(test_bad_chains_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
