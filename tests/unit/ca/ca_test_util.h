/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Helpers for tests/unit/ca: a temp data dir, CA construction at a chosen `now`,
 * signing with fresh keys and looking into bundles and files. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/x509.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "ca.h"

#define TD "example.org"
#define WL_ID "spiffe://example.org/workload"

/* Group runners; each returns the number of failed tests. */
int ca_basic_tests(void);
int ca_rotate_tests(void);

typedef struct CaFixture {
        char *tmp;      /* test_tmpdir() */
        char *data_dir; /* <tmp>/data (not created: ca_new makes it) */
        char *ca_dir;   /* <data_dir>/ca */
        CaConfig cfg;
        time_t t0; /* the wall clock at setup; tests move forward from it */
} CaFixture;

void fx_init(CaFixture *f, int64_t ttl, WardenKeyType type);
void fx_done(CaFixture *f);
/* ca_new() at now, asserting success. */
Ca *fx_new(CaFixture *f, time_t now);
/* "<dir>/<name>", malloc'd. */
char *path_in(const char *dir, const char *name);
/* st_mode & 07777 of a path (fails the test if it does not exist). */
mode_t file_mode(const char *path);
bool file_exists(const char *dir, const char *name);
/* Entries of dir (without . and ..) whose name contains needle (NULL: all). */
int count_entries(const char *dir, const char *needle);

/* The bundle's X.509 roots, borrowed (valid until the next ca_tick()). */
STACK_OF(X509) * bundle_roots(Ca *ca);
bool bundle_has_root(Ca *ca, X509 *cert);
/* A new reference to the i-th root of the bundle. */
X509 *bundle_root_ref(Ca *ca, int i);

/* Signs an SVID for WL_ID with a fresh P-256 key; asserts success. */
STACK_OF(X509) * sign_svid(Ca *ca, int64_t ttl, time_t now);
/* warden_svid_verify of chain[0] with chain[1..] as intermediates against roots. */
int verify_chain(STACK_OF(X509) * chain, STACK_OF(X509) * roots, time_t now);
/* A stack holding a new reference to one cert. */
STACK_OF(X509) * stack_of(X509 *cert);

/* Mints a JWT for WL_ID / audience "aud" and returns its header kid (malloc'd). */
char *mint_kid(Ca *ca, time_t now);

/* Every file in dir as "name\n<len>\n<bytes>" concatenated in name order (malloc'd):
 * equal snapshots mean untouched files. */
char *snapshot_dir(const char *dir, size_t *ret_len);
