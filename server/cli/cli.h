/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The admin CLI (`warden-server <noun> <verb> [flags]`): shared plumbing for the
 * per-noun files cli_<noun>.c.
 *
 * Conventions: every command accepts -socketPath (the admin socket) and -output
 * text|json; `-h` prints its flags and exits 0. Errors print exactly one line
 * "Error: <what>" on stderr; the process then exits 1 (usage errors too). With
 * -output json each command prints exactly one JSON document on stdout. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "options.h"
#include "rpc_client.h"
#include "server_config.h"
#include "warden/types/v1/types.pb-c.h"

/* Timeout of one admin call. */
#define CLI_CALL_TIMEOUT_MS 30000

/* The flags every command takes; put this first in each command's option table. */
// clang-format off
#define CLI_COMMON_OPTIONS                                                                         \
        {"socketPath", OPT_STRING, SERVER_DEFAULT_SOCKET_PATH, "Admin API socket of the server"},  \
        {"output", OPT_STRING, "text", "Output format: text or json"}
// clang-format on

typedef struct CliVerb {
        const char *name;
        int (*run)(int argc, char **argv); /* argv[0] = the verb; returns 0 or -errno */
        const char *help;
} CliVerb;

/* A connected CLI session. */
typedef struct Cli {
        const char *socket_path; /* borrowed from the options */
        bool json;
        RpcChannel *ch;
} Cli;

/* Runs the verb named by argv[1] of noun argv[0]. Without a verb, or with -h, prints
 * the verb list (stderr / stdout); `<noun> help <verb>` is `<noun> <verb> -h`. Returns
 * the process exit status. */
int cli_dispatch(const CliVerb *verbs, size_t n, int argc, char **argv);

/* Runs one command function (argv[0] = its name) and maps its result to an exit
 * status: 0 on success or help (-ECANCELED), 1 otherwise. */
int cli_run(int (*run)(int argc, char **argv), int argc, char **argv);

/* Parses a command's flags. `usage` is the line printed above the flags for -h.
 * Rejects positional arguments. Prints "Error: ..." and returns -EINVAL (or -errno)
 * on bad input; -ECANCELED after printing help. */
int cli_parse(
        const char *usage, const Option *table, size_t n, int argc, char **argv, Options **ret);

/* Reads -socketPath and -output, checks that the socket accepts connections, opens
 * the channel. Prints "Error: cannot connect to the server at <path>: <reason>" (or
 * a bad -output) and returns -errno on failure. */
int cli_open(Cli *cli, const Options *o);
void cli_done(Cli *cli);

/* One admin call: method is the bare name ("CountEntries"); req a protobuf-c message;
 * the answer is unpacked as resp_desc into *ret (free with pb_free()). A non-OK status
 * prints "Error: <the server's message>" and returns rpc_status_to_errno(). */
int cli_call(Cli *cli,
             const char *method,
             const void *req,
             const ProtobufCMessageDescriptor *resp_desc,
             void **ret);

/* cli_call() that prints nothing: on failure *reterr_message (optional) is the malloc'd
 * one-line reason (the server's message for a non-OK status). */
int cli_call_quiet(Cli *cli,
                   const char *method,
                   const void *req,
                   const ProtobufCMessageDescriptor *resp_desc,
                   void **ret,
                   char **reterr_message);

/* Prints "Error: <fmt...>" to stderr; returns -EINVAL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, returning r. */
int cli_error_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints j (indented, keys in insertion order) and a newline on stdout, then drops the
 * reference. NULL (allocation failure) gives -ENOMEM. */
int cli_print_json(json_t *j);

/* A TTL flag (OPT_DURATION) checked against 0..max seconds (-EINVAL + message). */
int cli_ttl(const Options *o, const char *flag, int64_t max, int32_t *ret);

/* "2026-05-01T12:00:00Z" for t (UTC); "never" for 0. Returns buf. */
char *cli_format_time(int64_t t, char buf[static 32]);

/* json_t helpers that tolerate NULL strings. */
json_t *cli_json_string(const char *s);
/* A time in JSON output: the RFC 3339 UTC string, null for 0 (never / unset). */
json_t *cli_json_time(int64_t t);
/* A time in JSON input: an RFC 3339 string, Unix seconds (a number or a string of
 * digits) or null (0). -EINVAL otherwise. */
int cli_time_from_json(json_t *v, int64_t *ret);

/* Parses a time flag (RFC 3339 or Unix seconds; "0" for none) into *ret; prints
 * "Error: -<flag>: ..." and returns -EINVAL on bad input. */
int cli_time_flag(const Options *o, const char *flag, int64_t *ret);

/* Writes data to path with mode (0600 for secrets): a new file, or one replaced
 * atomically (written beside it, then renamed). Prints "Error: ..." on failure. */
int cli_write_file(const char *path, const char *data, size_t len, mode_t mode);

/* Selectors of a -selector flag (repeatable) as a protobuf array for a filter (free
 * with cli_selectors_free()); prints "Error: ..." on bad input. */
int cli_selector_filter(const Options *o, Warden__Types__V1__Selector ***ret, size_t *ret_n);
void cli_selectors_free(Warden__Types__V1__Selector **v, size_t n);

/* -matchSelectorsOn: exact, subset, superset (default) or any; "Error: ..." otherwise. */
int cli_match_flag(const Options *o, const char **ret);

/* ---- cli_page.c: the list verbs walk every page and print as they go ---- */

/* Results per list call unless -pageSize says otherwise (the server caps it at 1000). */
#define CLI_PAGE_SIZE_DEFAULT 500
/* The -pageSize flag of the list verbs. */
// clang-format off
#define CLI_PAGE_OPTION                                                                                    {"pageSize", OPT_INT, "500", "Results per call to the server (1..1000); all are shown"}
// clang-format on
/* -pageSize, checked (prints "Error: ..." and returns -EINVAL). */
int cli_page_size_flag(const Options *o, int32_t *ret);

/* The JSON document {"<key>": [item, ...]} written one item at a time, byte for byte
 * what cli_print_json() prints for the whole document. */
typedef struct CliJsonList {
        FILE *f;
        size_t n;
} CliJsonList;
void cli_json_list_begin(CliJsonList *l, FILE *f, const char *key);
/* Takes the reference to item (NULL: -ENOMEM, printed). */
int cli_json_list_add(CliJsonList *l, json_t *item);
void cli_json_list_end(CliJsonList *l);

/* A list call that pages (ListEntries, ListAgents): the request, where its page fields
 * are, and how to read an answer. */
typedef struct CliPager {
        const char *method;
        const ProtobufCMessageDescriptor *resp_desc;
        void *req;
        int32_t *req_page_size;
        char **req_page_token;
        /* The results of an answer and the token of the next page ("" after the last). */
        size_t (*items)(const void *resp, void *const **ret);
        const char *(*next_token)(const void *resp);
} CliPager;

/* How the results print: -output text gets a header line with the total, then each
 * result after an empty line; -output json one document {"<json_key>": [...]}. */
typedef struct CliListPrinter {
        const char *json_key;
        void (*print_header)(int64_t total);
        void (*print_text)(const void *item);
        json_t *(*to_json)(const void *item);
        /* The total for the header when there is more than one page (the count call). */
        int (*count)(Cli *cli, void *userdata, int64_t *ret);
        void *userdata;
} CliListPrinter;

/* Calls pg->method for every page (page_size results each) and prints the results as
 * they arrive. With one page the output is what one answer printed before paging; with
 * more, the header's total comes from pr->count, so results created or deleted during
 * the walk can make it differ from the number printed. Errors print "Error: ..." (after
 * what was printed so far) and return -errno. */
int cli_list_all(Cli *cli, const CliPager *pg, const CliListPrinter *pr, int32_t page_size);

/* ---- cli_entry_json.c: entries and selectors as JSON ---- */

/* The JSON form of an entry, also accepted by `entry create -data`: keys id,
 * spiffe_id, parent_id, selectors [{type, value}], x509_svid_ttl, jwt_svid_ttl,
 * dns_names, federates_with, hint, admin, node, downstream, expires_at, revision,
 * created_at, env, task, scopes, state, created_by, approved_by (always all of them,
 * in this order). Times are RFC 3339 UTC strings, null for none. */
json_t *cli_entry_to_json(const Warden__Types__V1__Entry *e);
json_t *cli_selectors_to_json(Warden__Types__V1__Selector *const *sel, size_t n);

/* Reads `entry create -data FILE`: {"entries": [entry, ...]} or a bare array, at most
 * DS_BATCH_MAX entries and RPC_MAX_MESSAGE_SIZE bytes. Selectors may be {type,value}
 * objects or "type:value" strings; TTLs numbers of seconds or durations ("1h");
 * expires_at an RFC 3339 string, Unix seconds or null. The server's own record
 * (revision, created_at, state, created_by, approved_by) is ignored, so that `entry
 * show -output json` output reads back; unknown keys are errors. Prints "Error: FILE: entry N: ..."
 * and returns -errno on bad input. Free the result with cli_entries_free(). */
int cli_entries_from_file(const char *path, Warden__Types__V1__Entry ***ret, size_t *ret_n);
void cli_entries_free(Warden__Types__V1__Entry **v, size_t n);
