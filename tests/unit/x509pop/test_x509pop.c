/* SPDX-License-Identifier: Apache-2.0 */
/* The bytes an x509pop proof signs (common/rpc/x509pop.c): their layout is the wire
 * contract between the agent and the server. */
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "testlib.h"
#include "x509pop.h"

static void test_payload(void **state) {
        const uint8_t nonce[3] = {1, 2, 3}, csr[2] = {0xaa, 0xbb};
        _cleanup_free_ uint8_t *buf = NULL, *empty = NULL;
        size_t len;

        assert_ok(x509pop_payload(nonce, sizeof(nonce), csr, sizeof(csr), &buf, &len));
        assert_int_equal(len, strlen("warden-x509pop-v1") + 5);
        assert_memory_equal(buf, "warden-x509pop-v1", 17);
        assert_memory_equal(buf + 17, nonce, 3);
        assert_memory_equal(buf + 20, csr, 2);

        /* An empty CSR (refused later by the server) still has a payload. */
        assert_ok(x509pop_payload(nonce, sizeof(nonce), NULL, 0, &empty, &len));
        assert_int_equal(len, 20);
        assert_memory_equal(empty + 17, nonce, 3);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_payload),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
