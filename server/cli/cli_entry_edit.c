/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server entry update` (flags, or -data FILE) and `entry delete` (-entryID, or
 * -file FILE). An update that changes nothing says so: the server stores nothing and the
 * revision stays. A batch goes on after a failed entry, reports each one and exits 1 if
 * any failed. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_entry.h"
#include "cli_nouns.h"
#include "entry_pb.h"
#include "strv.h"

static const Option update_options[] = {
        CLI_COMMON_OPTIONS,
        {"entryID", OPT_STRING, NULL, "ID of the entry to change (required without -data)"},
        ENTRY_FIELD_OPTIONS,
        {"data", OPT_STRING, NULL,
         "JSON file of whole entries, each with its \"id\" (as `entry show -output json` "
         "prints them), that replace the stored ones"},
};

/* One UpdateEntry; *ret_changed tells whether the server stored a new revision. */
static int update_one(Cli *cli,
                      Warden__Types__V1__Entry *e,
                      int64_t old_revision,
                      bool allow_unknown,
                      Warden__Types__V1__Entry **ret,
                      bool *ret_changed,
                      char **reterr_message) {
        Warden__Admin__V1__UpdateEntryRequest req = WARDEN__ADMIN__V1__UPDATE_ENTRY_REQUEST__INIT;
        Warden__Types__V1__Entry *updated = NULL;
        int r;

        req.entry = e;
        req.allow_unknown_selector_types = allow_unknown;
        r = cli_call_quiet(cli, "UpdateEntry", &req, &warden__types__v1__entry__descriptor,
                           (void **) &updated, reterr_message);
        if (r < 0)
                return r;
        *ret_changed = updated->revision != old_revision;
        *ret = updated;
        return 0;
}

static int update_from_flags(Cli *cli, const Options *o) {
        _cleanup_(cli_pb_freep) Warden__Types__V1__Entry *old = NULL, *out = NULL, *updated = NULL;
        _cleanup_(entry_freep) Entry *e = NULL;
        _cleanup_free_ char *msg = NULL;
        const char *reason = NULL;
        bool changed = false;
        int r;

        r = cli_entry_get(cli, options_get_string(o, "entryID"), &old);
        if (r < 0)
                return r;
        r = entry_new_from_pb(old, &e, &reason);
        if (r < 0)
                return cli_error_errno(r, "cannot read the stored entry: %s", strna(reason));
        r = cli_entry_apply_flags(o, e);
        if (r >= 0)
                r = entry_to_pb(e, &out);
        if (r < 0)
                return r == -ENOMEM ? cli_error_errno(r, "out of memory") : r;
        r = update_one(cli, out, old->revision, options_get_bool(o, "allowUnknownSelectorType"),
                       &updated, &changed, &msg);
        if (r < 0)
                return cli_error_errno(r, "%s", msg ? msg : strerror(-r));
        if (cli->json)
                return cli_print_json(cli_entry_to_json(updated));
        if (!changed)
                printf("No change: entry %s is already as given (revision %lld)\n\n", updated->id,
                       (long long) updated->revision);
        cli_print_entry(updated);
        return 0;
}

/* The stored revision of an entry, to tell a no-op update from a real one. */
static int stored_revision(Cli *cli, const char *id, int64_t *ret, char **reterr_message) {
        Warden__Admin__V1__GetEntryRequest req = WARDEN__ADMIN__V1__GET_ENTRY_REQUEST__INIT;
        _cleanup_(cli_pb_freep) Warden__Types__V1__Entry *e = NULL;
        int r;

        req.id = (char *) id;
        r = cli_call_quiet(cli, "GetEntry", &req, &warden__types__v1__entry__descriptor,
                           (void **) &e, reterr_message);
        if (r < 0)
                return r;
        *ret = e->revision;
        return 0;
}

/* One entry of a -data file: prints its line (text) or appends its result (json). */
static int update_item(Cli *cli,
                       Warden__Types__V1__Entry *e,
                       size_t i,
                       size_t n,
                       bool allow_unknown,
                       json_t *results) {
        _cleanup_(cli_pb_freep) Warden__Types__V1__Entry *updated = NULL;
        _cleanup_free_ char *msg = NULL;
        int64_t revision = 0;
        bool changed = false;
        int r;

        r = stored_revision(cli, e->id, &revision, &msg);
        if (r >= 0)
                r = update_one(cli, e, revision, allow_unknown, &updated, &changed, &msg);
        if (cli->json) {
                json_t *j = r < 0 ? json_pack("{s:s,s:s,s:o}", "id", e->id, "result", "error",
                                              "message", cli_json_string(msg ? msg : "failed"))
                                  : json_pack("{s:s,s:s,s:o}", "id", e->id, "result",
                                              changed ? "updated" : "unchanged", "entry",
                                              cli_entry_to_json(updated));
                json_array_append_new(results, j);
        } else if (r < 0)
                fprintf(stderr, "Error: entry %zu of %zu (%s): %s\n", i + 1, n, e->id,
                        msg ? msg : strerror(-r));
        else if (changed)
                printf("Updated entry %s (revision %lld)\n", e->id, (long long) updated->revision);
        else
                printf("No change: entry %s (revision %lld)\n", e->id,
                       (long long) updated->revision);
        return r;
}

static int update_from_file(Cli *cli, const Options *o) {
        const char *path = options_get_string(o, "data");
        bool allow = options_get_bool(o, "allowUnknownSelectorType");
        Warden__Types__V1__Entry **v = NULL;
        json_t *results = NULL;
        size_t n = 0, failed = 0;
        int r;

        r = cli_entries_from_file(path, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                if (!*v[i]->id)
                        r = cli_error("%s: entry %zu: \"id\" is required to update an entry", path,
                                      i + 1);
        if (r >= 0 && cli->json && !(results = json_array()))
                r = cli_error_errno(-ENOMEM, "out of memory");
        for (size_t i = 0; i < n && r >= 0; i++)
                if (update_item(cli, v[i], i, n, allow, results) < 0)
                        failed++;
        cli_entries_free(v, n);
        if (r < 0)
                return r;
        if (cli->json)
                r = cli_print_json(json_pack("{s:o}", "results", results));
        else if (failed > 0)
                fprintf(stderr, "Error: %zu of %zu entries were not updated\n", failed, n);
        return r < 0 ? r : failed > 0 ? -EIO : 0;
}

int cli_entry_update(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_done) Cli cli = {};
        int r;

        r = cli_parse("warden-server entry update -entryID ID [flags to change] | -data FILE",
                      update_options, ELEMENTSOF(update_options), argc, argv, &o);
        if (r < 0)
                return r;
        if (options_is_set(o, "data") && (options_is_set(o, "entryID") || cli_entry_flag_set(o)))
                return cli_error("-data cannot be combined with -%s",
                                 options_is_set(o, "entryID") ? "entryID" : cli_entry_flag_set(o));
        if (!options_is_set(o, "data") && !options_is_set(o, "entryID"))
                return cli_error("-entryID is required (or -data FILE)");
        r = cli_open(&cli, o);
        if (r < 0)
                return r;
        return options_is_set(o, "data") ? update_from_file(&cli, o) : update_from_flags(&cli, o);
}

static const Option delete_options[] = {
        CLI_COMMON_OPTIONS,
        {"entryID", OPT_STRING, NULL, "ID of the entry to delete"},
        {"file", OPT_STRING, NULL,
         "JSON file of entry IDs to delete: {\"ids\": [...]} or `entry show -output json` "
         "output"},
};

static int delete_one(Cli *cli, const char *id, char **reterr_message) {
        Warden__Admin__V1__DeleteEntryRequest req = WARDEN__ADMIN__V1__DELETE_ENTRY_REQUEST__INIT;
        _cleanup_(cli_pb_freep) Warden__Admin__V1__DeleteEntryResponse *resp = NULL;

        req.id = (char *) id;
        return cli_call_quiet(cli, "DeleteEntry", &req,
                              &warden__admin__v1__delete_entry_response__descriptor,
                              (void **) &resp, reterr_message);
}

static int delete_many(Cli *cli, char **ids, size_t n) {
        json_t *results = cli->json ? json_array() : NULL;
        size_t failed = 0;

        if (cli->json && !results)
                return cli_error_errno(-ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *msg = NULL;
                int r = delete_one(cli, ids[i], &msg);

                if (r < 0)
                        failed++;
                if (cli->json)
                        json_array_append_new(
                                results,
                                r < 0 ? json_pack("{s:s,s:s,s:o}", "id", ids[i], "result", "error",
                                                  "message", cli_json_string(msg ? msg : "failed"))
                                      : json_pack("{s:s,s:s}", "id", ids[i], "result", "deleted"));
                else if (r < 0)
                        fprintf(stderr, "Error: entry %zu of %zu (%s): %s\n", i + 1, n, ids[i],
                                msg ? msg : strerror(-r));
                else
                        printf("Deleted entry %s\n", ids[i]);
        }
        if (cli->json && cli_print_json(json_pack("{s:o}", "results", results)) < 0)
                return -ENOMEM;
        if (!cli->json && failed > 0)
                fprintf(stderr, "Error: %zu of %zu entries were not deleted\n", failed, n);
        return failed > 0 ? -EIO : 0;
}

int cli_entry_delete(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_done) Cli cli = {};
        _cleanup_free_ char *msg = NULL;
        char **ids = NULL;
        size_t n = 0;
        int r;

        r = cli_parse("warden-server entry delete -entryID ID | -file FILE", delete_options,
                      ELEMENTSOF(delete_options), argc, argv, &o);
        if (r < 0)
                return r;
        if (options_is_set(o, "entryID") && options_is_set(o, "file"))
                return cli_error("-entryID and -file cannot be combined");
        if (!options_is_set(o, "entryID") && !options_is_set(o, "file"))
                return cli_error("-entryID is required (or -file FILE)");
        if (options_is_set(o, "file")) {
                r = cli_entry_ids_from_file(options_get_string(o, "file"), &ids, &n);
                if (r >= 0)
                        r = cli_open(&cli, o);
                if (r >= 0)
                        r = delete_many(&cli, ids, n);
                strv_free(ids, n);
                return r;
        }
        r = cli_open(&cli, o);
        if (r < 0)
                return r;
        r = delete_one(&cli, options_get_string(o, "entryID"), &msg);
        if (r < 0)
                return cli_error_errno(r, "%s", msg ? msg : strerror(-r));
        if (cli.json)
                return cli_print_json(
                        json_pack("{s:s}", "deleted", options_get_string(o, "entryID")));
        printf("Deleted entry %s\n", options_get_string(o, "entryID"));
        return 0;
}
