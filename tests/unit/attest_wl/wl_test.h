/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Helpers shared by the workload attestor tests. */

#include <stdbool.h>
#include <stddef.h>

#include "selector.h"

/* Writes (truncating) a file; fails the test on error. */
void wl_test_write_file(const char *path, const void *data, size_t n);
/* Sleeps past the attestor's "too recently changed to cache" window. */
void wl_test_wait_racy_window(void);
/* Independent SHA-256 of a file's bytes (EVP one-shot over the whole content). */
void wl_test_sha256_path(const char *path, char hex[65]);
/* Whether set holds (type, printf(fmt, ...)). */
bool wl_test_has(const SelectorSet *set, const char *type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Fails the test (printing the set) unless it holds (type, printf(fmt, ...)). */
void wl_test_assert_has(const SelectorSet *set, const char *type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Number of selectors of `type` whose value starts with prefix. */
int wl_test_count_key(const SelectorSet *set, const char *type, const char *prefix);

/* snprintf into an array, failing the test on truncation. */
#define WL_PATHF(buf, ...)                                                                         \
        assert_true((size_t) snprintf((buf), sizeof(buf), __VA_ARGS__) < sizeof(buf))
