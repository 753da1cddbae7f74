/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared pieces of the datastore unit tests (test_ds*.c). */

#include <stdarg.h>
#include <stdint.h>

#include "ds.h"
#include "entry.h"

#define TD "example.org"

/* Builds an entry with the given IDs and a NULL-terminated list of "type:value"
 * selectors; fails the test on error. */
Entry *test_entry_new(const char *spiffe_id, const char *parent_id, ...);
/* Fails the test unless every field of a and b is equal. */
void test_assert_entries_equal(const Entry *a, const Entry *b);

/* cmocka setup/teardown: *state = a DsFixture with a fresh database file. */
typedef struct DsFixture {
        char *dir;
        char *path; /* dir/warden.db */
        Datastore *ds;
} DsFixture;
int test_ds_setup(void **state);
int test_ds_teardown(void **state);
/* Closes and reopens f->ds on the same file. */
void test_ds_reopen(DsFixture *f);
/* The change sequence now. */
uint64_t test_ds_seq(Datastore *ds);

/* Test groups, each run by main() in test_ds.c. */
int test_entry_run(void);
int test_ds_agents_run(void);
int test_ds_files_run(void);
int test_ds_plan_run(void);
int test_ds_events_run(void);
int test_ds_audit_run(void);
