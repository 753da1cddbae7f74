/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by test_entry_index.c (single behaviours) and test_entry_index_random.c (random
 * operation sequences checked against authz_set_build() and brute force). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz.h"
#include "ds.h"
#include "entry_index.h"

#define TD "spiffe://example.org"

typedef struct Fx {
        char *dir;
        Datastore *ds;
        EntryIndex *idx;
        int64_t now;
} Fx;

int eit_setup(void **state);
int eit_teardown(void **state);

/* A new entry (spiffe_id, parent_id, one selector "type:value"). */
Entry *eit_mk(const char *spiffe_id, const char *parent_id, const char *selector);

/* Stores e in the datastore and a copy of the stored entry in the index; frees e.
 * Returns the datastore's result (0, or -EEXIST for a duplicate; others fail the test)
 * and the new id in ret_id (optional, at least ENTRY_ID_MAX + 1 bytes). */
int eit_create(Fx *fx, Entry *e, char *ret_id);

/* Compares entry_index_authorized() with authz_set_build_max() for one agent (same
 * ids in the same order, same truncation), failing the test if they differ; returns
 * the datastore's set. */
AuthzSet *eit_check_authorized(
        Fx *fx, const char *agent_id, const SelectorSet *sel, int64_t now, size_t max);

void test_random_ops(void **state);
void test_random_small_cap(void **state);
