/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared helpers for cmocka unit tests. Include after <cmocka.h>'s prerequisites:
 *   #include "testlib.h"   (pulls in stdarg/stddef/setjmp/stdint and cmocka) */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* r >= 0 */
#define assert_ok(expr)                                                                            \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                if (_r < 0)                                                                        \
                        fail_msg("%s failed: %d (%s)", #expr, _r, strerror(-_r));                  \
        } while (0)

/* r == -e */
#define assert_errno(expr, e)                                                                      \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                if (_r != -(e))                                                                    \
                        fail_msg("%s returned %d, expected -%s (%d)", #expr, _r, #e, -(e));        \
        } while (0)

/* Makes a private temp directory (mkdtemp) and returns a malloc'd path. */
char *test_tmpdir(void);
/* rm -rf the directory made by test_tmpdir(), then free the path. */
void test_rmdir_free(char *path);
/* Reads a whole file; returns malloc'd data (NUL-terminated) or NULL. */
char *test_read_file(const char *path, size_t *ret_size);
/* Reads fd until EOF (a connection reset counts as EOF) into *ret (malloc'd,
 * NUL-terminated); *ret_size (optional) without the NUL. 0 or -errno. */
int test_read_fd(int fd, char **ret, size_t *ret_size);

/* For a child that runs as another uid, which cannot reach a private checkout or build dir
 * (0700): copies the program at path into dir (made 0755: test_tmpdir() dirs are 0700) and
 * returns the copy's path (malloc'd, mode 0755). When LSAN_OPTIONS or TSAN_OPTIONS names a
 * suppressions file, that is copied into dir too and the variable (in the environment
 * children inherit) is changed to name the copy: a sanitizer that cannot read it aborts
 * the program. */
char *test_copy_for_other_uid(const char *path, const char *dir);
