/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the `entry` CLI files: cli_entry.c (create, show, count) and cli_entry_edit.c
 * (update, delete). */

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "entry.h"
#include "warden/admin/v1/admin.pb-c.h"

/* Flags describing an entry, shared by create and update. */
// clang-format off
#define ENTRY_FIELD_OPTIONS                                                                        \
        {"spiffeID", OPT_STRING, NULL, "SPIFFE ID of the workload"},                               \
        {"parentID", OPT_STRING, NULL, "SPIFFE ID of the parent: an agent or a node alias"},       \
        {"selector", OPT_STRV, NULL, "Selector type:key:value, e.g. unix:uid:1000 (repeatable)"},  \
        {"x509SVIDTTL", OPT_DURATION, NULL,                                                        \
         "X509-SVID lifetime, e.g. 30m (0 = the server default, which is also the cap)"},          \
        {"jwtSVIDTTL", OPT_DURATION, NULL,                                                         \
         "JWT-SVID lifetime (0 = the server default, which is also the cap)"},                     \
        {"dns", OPT_STRV, NULL, "DNS name for the X509-SVID (repeatable; -dns '' clears them)"},   \
        {"federatesWith", OPT_STRV, NULL,                                                          \
         "Trust domain whose bundle the workload also gets (repeatable; '' clears them)"},         \
        {"hint", OPT_STRING, NULL, "Hint for workloads that get several identities ('' clears)"}, \
        {"admin", OPT_BOOL, NULL, "The workload may use the admin API (-admin=false clears)"},     \
        {"downstream", OPT_BOOL, NULL, "The workload is a downstream CA"},                         \
        {"node", OPT_BOOL, NULL, "A node alias: matches agents by their selectors"},               \
        {"entryExpiry", OPT_STRING, NULL,                                                          \
         "When the entry stops being valid: 2030-01-01T00:00:00Z or Unix seconds (0 = never)"},    \
        {"allowUnknownSelectorType", OPT_BOOL, "false",                                            \
         "Store selectors of a type no built-in attestor produces"}
// clang-format on

void cli_pb_freep(void *p);

/* Applies every entry flag given in o to e (for update: only what was given). Prints
 * "Error: ..." on bad input. */
int cli_entry_apply_flags(const Options *o, Entry *e);

/* The first entry field flag (ENTRY_FIELD_OPTIONS but -allowUnknownSelectorType) that
 * was given, or NULL. */
const char *cli_entry_flag_set(const Options *o);

/* GetEntry (prints "Error: ..." on failure). */
int cli_entry_get(Cli *cli, const char *id, Warden__Types__V1__Entry **ret);

/* Reads a JSON file for `entry delete -file`: {"ids": ["ID", ...]}, {"entries":
 * [{"id": "ID", ...}, ...]} (what `entry show -output json` prints) or a bare array of
 * either. At most DS_BATCH_MAX IDs, each checked. Prints "Error: FILE: ..." on bad input.
 * Free with strv_free(). */
int cli_entry_ids_from_file(const char *path, char ***ret, size_t *ret_n);

/* cli_entry_edit.c */
int cli_entry_update(int argc, char **argv);
int cli_entry_delete(int argc, char **argv);
