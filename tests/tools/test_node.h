/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Commands of warden-test-node that live in files of their own (scale benchmarks). */

#include "options.h"

/* test_node_many.c: sync-many, many simulated agents on one Sync stream each. */
int cmd_sync_many(const Options *o);

/* test_node_admin.c: admin-create-loop, timed single-entry creates on the admin API. */
int cmd_admin_create_loop(const Options *o);

/* test_node_admin.c: admin-tokens, many join tokens at once. */
int cmd_admin_tokens(const Options *o);
