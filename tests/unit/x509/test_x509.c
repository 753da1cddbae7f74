/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/x509: one executable running every x509 test group. */
#include "testlib.h"
#include "x509_test_util.h"

int main(void) {
        int failed = 0;

        failed += x509_key_tests();
        failed += x509_csr_tests();
        failed += x509_ca_tests();
        failed += x509_svid_tests();
        failed += x509_verify_tests();
        failed += x509_encode_tests();
        return failed == 0 ? 0 : 1;
}
