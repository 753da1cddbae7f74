/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Tests defined in test_bundle_json.c, run by test_bundle.c's main(). */

void test_spiffe_roundtrip(void **state);
void test_spiffe_shape(void **state);
void test_spiffe_hint_and_sequence(void **state);
void test_jwks_shape(void **state);
void test_jwks_parse(void **state);
void test_spiffe_malformed(void **state);
void test_spiffe_malformed_keys(void **state);
void test_jwks_malformed(void **state);
void test_ignored_keys(void **state);
void test_size_caps(void **state);

/* Frees the shared keys/certificates of test_bundle_json.c (group teardown). */
int bundle_json_teardown(void **state);
