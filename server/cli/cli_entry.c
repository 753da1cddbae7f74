/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server entry create|show|count` (update and delete: cli_entry_edit.c). */
#define _GNU_SOURCE

#include "cli_entry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "entry.h"
#include "entry_pb.h"
#include "parse.h"
#include "strv.h"
#include "warden/admin/v1/admin.pb-c.h"

void cli_pb_freep(void *p) {
        pb_free(*(void **) p);
}

static void print_strv(const char *label, char *const *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                printf("%-17s: %s\n", label, v[i]);
}

static const char *ttl_string(int32_t ttl, char buf[static DURATION_STRING_MAX]) {
        return ttl > 0 ? format_duration(ttl, buf, DURATION_STRING_MAX) : "default";
}

void cli_print_entry(const Warden__Types__V1__Entry *e) {
        char t[32], d[DURATION_STRING_MAX];

        printf("%-17s: %s\n", "Entry ID", e->id);
        printf("%-17s: %s\n", "SPIFFE ID", e->spiffe_id);
        printf("%-17s: %s\n", "Parent ID", e->parent_id);
        printf("%-17s: %lld\n", "Revision", (long long) e->revision);
        printf("%-17s: %s\n", "X509-SVID TTL", ttl_string(e->x509_svid_ttl, d));
        printf("%-17s: %s\n", "JWT-SVID TTL", ttl_string(e->jwt_svid_ttl, d));
        for (size_t i = 0; i < e->n_selectors; i++)
                printf("%-17s: %s:%s\n", "Selector", e->selectors[i]->type, e->selectors[i]->value);
        print_strv("DNS name", e->dns_names, e->n_dns_names);
        print_strv("FederatesWith", e->federates_with, e->n_federates_with);
        if (*e->hint)
                printf("%-17s: %s\n", "Hint", e->hint);
        if (e->admin)
                printf("%-17s: true\n", "Admin");
        if (e->downstream)
                printf("%-17s: true\n", "Downstream");
        if (e->node)
                printf("%-17s: true\n", "Node alias");
        if (e->expires_at)
                printf("%-17s: %s\n", "Expires at", cli_format_time(e->expires_at, t));
        if (*e->state)
                printf("%-17s: %s\n", "State", e->state);
        printf("%-17s: %s\n", "Created at", cli_format_time(e->created_at, t));
        if (*e->created_by)
                printf("%-17s: %s\n", "Created by", e->created_by);
}

static int set_id_flag(const Options *o, const char *flag, bool workload, char **field) {
        const char *v = options_get_string(o, flag), *reason = NULL;
        int r;

        if (!v)
                return 0;
        r = workload ? warden_spiffeid_validate_workload(v, &reason)
                     : warden_spiffeid_validate(v, &reason);
        if (r < 0)
                return cli_error("invalid -%s \"%s\": %s", flag, v, reason);
        free(*field);
        *field = strdup(v);
        return *field ? 0 : -ENOMEM;
}

static int set_selectors(const Options *o, Entry *e) {
        char *const *sel = options_get_strv(o, "selector", NULL);
        const char *reason = NULL;
        int r;

        if (!options_is_set(o, "selector"))
                return 0;
        selector_set_done(&e->selectors);
        for (size_t i = 0; sel[i]; i++) {
                r = selector_set_add_string(&e->selectors, sel[i], &reason);
                if (r == -E2BIG)
                        return cli_error("too many -selector flags (at most %d)",
                                         ENTRY_SELECTORS_MAX);
                if (r < 0)
                        return cli_error("invalid -selector \"%s\": %s", sel[i], strna(reason));
        }
        return 0;
}

/* A list flag given once as '' clears the list. */
static bool clears(const Options *o, const char *flag) {
        size_t n = 0;
        char *const *v = options_get_strv(o, flag, &n);

        return n == 1 && streq(v[0], "");
}

static int set_lists(const Options *o, Entry *e) {
        char *const *v;
        const char *reason = NULL;
        int r;

        if (options_is_set(o, "dns")) {
                strv_clear(&e->dns_names, &e->n_dns_names);
                for (v = options_get_strv(o, "dns", NULL); !clears(o, "dns") && *v; v++) {
                        if (entry_dns_name_validate(*v, &reason) < 0)
                                return cli_error("invalid -dns \"%s\": %s", *v, reason);
                        if ((r = entry_add_dns_name(e, *v)) < 0)
                                return r;
                }
        }
        if (options_is_set(o, "federatesWith")) {
                strv_clear(&e->federates_with, &e->n_federates_with);
                for (v = options_get_strv(o, "federatesWith", NULL);
                     !clears(o, "federatesWith") && *v; v++) {
                        _cleanup_free_ char *td = NULL;
                        if (warden_trust_domain_from_string(*v, &td, &reason) < 0)
                                return cli_error("invalid -federatesWith \"%s\": %s", *v, reason);
                        if ((r = entry_add_federates_with(e, td)) < 0)
                                return r;
                }
        }
        return 0;
}

static int set_scalars(const Options *o, Entry *e) {
        int r;

        if (options_is_set(o, "x509SVIDTTL") &&
            (r = cli_ttl(o, "x509SVIDTTL", ENTRY_TTL_MAX, &e->x509_svid_ttl)) < 0)
                return r;
        if (options_is_set(o, "jwtSVIDTTL") &&
            (r = cli_ttl(o, "jwtSVIDTTL", ENTRY_TTL_MAX, &e->jwt_svid_ttl)) < 0)
                return r;
        if (options_is_set(o, "hint")) {
                free(e->hint);
                e->hint = strdup(options_get_string(o, "hint"));
                if (!e->hint)
                        return -ENOMEM;
        }
        if (options_is_set(o, "entryExpiry") &&
            (r = cli_time_flag(o, "entryExpiry", &e->expires_at)) < 0)
                return r;
        if (options_is_set(o, "admin"))
                e->admin = options_get_bool(o, "admin");
        if (options_is_set(o, "downstream"))
                e->downstream = options_get_bool(o, "downstream");
        if (options_is_set(o, "node"))
                e->node = options_get_bool(o, "node");
        return 0;
}

const char *cli_entry_flag_set(const Options *o) {
        static const char *const flags[] = {
                "spiffeID",      "parentID", "selector", "x509SVIDTTL", "jwtSVIDTTL", "dns",
                "federatesWith", "hint",     "admin",    "downstream",  "node",       "entryExpiry",
        };

        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (options_is_set(o, flags[i]))
                        return flags[i];
        return NULL;
}

int cli_entry_apply_flags(const Options *o, Entry *e) {
        int r;

        r = set_id_flag(o, "spiffeID", true, &e->spiffe_id);
        if (r >= 0)
                r = set_id_flag(o, "parentID", false, &e->parent_id);
        if (r >= 0)
                r = set_selectors(o, e);
        if (r >= 0)
                r = set_lists(o, e);
        if (r >= 0)
                r = set_scalars(o, e);
        if (r == -ENOMEM)
                return cli_error_errno(r, "out of memory");
        return r;
}

/* A node alias without -parentID hangs below the server's own ID, as in SPIRE. */
static int default_parent(Entry *e) {
        _cleanup_free_ char *td = NULL;

        if (e->parent_id || !e->node || !e->spiffe_id)
                return 0;
        if (warden_spiffeid_parse(e->spiffe_id, &td, NULL, NULL) < 0 ||
            warden_spiffeid_format(td, "/warden/server", &e->parent_id) < 0)
                return cli_error_errno(-ENOMEM, "out of memory");
        return 0;
}

static int entries_from_flags(const Options *o, Warden__Types__V1__Entry ***ret, size_t *ret_n) {
        _cleanup_(entry_freep) Entry *e = NULL;
        Warden__Types__V1__Entry **v;
        int r;

        if (!options_is_set(o, "spiffeID"))
                return cli_error("-spiffeID is required (or -data FILE)");
        if (!options_is_set(o, "selector"))
                return cli_error("at least one -selector is required");
        if (!options_is_set(o, "parentID") && !options_get_bool(o, "node"))
                return cli_error("-parentID is required");
        r = entry_new(&e);
        if (r >= 0)
                r = cli_entry_apply_flags(o, e);
        if (r >= 0)
                r = default_parent(e);
        if (r < 0)
                return r;
        v = calloc(1, sizeof(*v));
        if (!v || entry_to_pb(e, &v[0]) < 0) {
                free(v);
                return cli_error_errno(-ENOMEM, "out of memory");
        }
        *ret = v;
        *ret_n = 1;
        return 0;
}

static int print_created(const Cli *cli, Warden__Admin__V1__BatchCreateEntryResponse *resp) {
        json_t *list;

        if (!cli->json) {
                for (size_t i = 0; i < resp->n_results; i++) {
                        if (i > 0)
                                printf("\n");
                        cli_print_entry(resp->results[i]->entry);
                }
                return 0;
        }
        list = json_array();
        for (size_t i = 0; list && i < resp->n_results; i++)
                json_array_append_new(list, cli_entry_to_json(resp->results[i]->entry));
        return cli_print_json(json_pack("{s:o}", "entries", list));
}

/* All or nothing: name the entry that failed. */
static int check_batch(Warden__Admin__V1__BatchCreateEntryResponse *resp,
                       Warden__Types__V1__Entry **sent,
                       size_t n) {
        if (resp->n_results != n)
                return cli_error("malformed answer: %zu results for %zu entries", resp->n_results,
                                 n);
        for (size_t i = 0; i < n; i++) {
                const Warden__Admin__V1__EntryResult *res = resp->results[i];
                if (res->status == 0 && res->entry)
                        continue;
                if (res->status == 0 || res->status == 10 /* ABORTED: another one failed */)
                        continue;
                if (n == 1)
                        return cli_error("%s", res->message);
                return cli_error("entry %zu of %zu (%s): %s; no entries were created", i + 1, n,
                                 sent[i]->spiffe_id, res->message);
        }
        for (size_t i = 0; i < n; i++)
                if (resp->results[i]->status != 0 || !resp->results[i]->entry)
                        return cli_error("the server created no entries");
        return 0;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* unix:path and unix:sha256 name a file, not the code running in it (LD_PRELOAD, ptrace
 * by the same user): an entry should pair them with the user allowed to run it. */
static void warn_unpaired(Warden__Types__V1__Entry *const *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                bool file = false, user = false;

                for (size_t j = 0; j < v[i]->n_selectors; j++) {
                        const Warden__Types__V1__Selector *s = v[i]->selectors[j];

                        if (!streq(s->type, "unix"))
                                continue;
                        file = file || has_prefix(s->value, "path:") ||
                               has_prefix(s->value, "sha256:");
                        user = user || has_prefix(s->value, "uid:") ||
                               has_prefix(s->value, "user:");
                }
                if (file && !user && !v[i]->node)
                        fprintf(stderr,
                                "Warning: %s selects by unix:path or unix:sha256 without "
                                "unix:uid or unix:user: these name a file, not the code running "
                                "in it; any user who can run that file gets this identity. Pair "
                                "them with unix:uid:N or unix:user:NAME.\n",
                                v[i]->spiffe_id);
        }
}

static const Option create_options[] = {
        CLI_COMMON_OPTIONS,
        ENTRY_FIELD_OPTIONS,
        {"data", OPT_STRING, NULL,
         "JSON file {\"entries\": [...]} whose entries are created in one all-or-nothing call"},
};

static int entry_create(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_pb_freep) Warden__Admin__V1__BatchCreateEntryResponse *resp = NULL;
        Warden__Admin__V1__BatchCreateEntryRequest req =
                WARDEN__ADMIN__V1__BATCH_CREATE_ENTRY_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        Warden__Types__V1__Entry **v = NULL;
        size_t n = 0;
        int r;

        r = cli_parse("warden-server entry create -spiffeID ID -parentID ID -selector T:K:V... "
                      "[flags] | -data FILE",
                      create_options, ELEMENTSOF(create_options), argc, argv, &o);
        if (r < 0)
                return r;
        if (options_is_set(o, "data")) {
                if (cli_entry_flag_set(o))
                        return cli_error("-data cannot be combined with -%s",
                                         cli_entry_flag_set(o));
                r = cli_entries_from_file(options_get_string(o, "data"), &v, &n);
        } else
                r = entries_from_flags(o, &v, &n);
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0) {
                req.entries = v;
                req.n_entries = n;
                req.allow_unknown_selector_types = options_get_bool(o, "allowUnknownSelectorType");
                r = cli_call(&cli, "BatchCreateEntry", &req,
                             &warden__admin__v1__batch_create_entry_response__descriptor,
                             (void **) &resp);
        }
        if (r >= 0)
                r = check_batch(resp, v, n);
        if (r >= 0)
                warn_unpaired(v, n);
        if (r >= 0)
                r = print_created(&cli, resp);
        cli_entries_free(v, n);
        return r;
}

static int print_entries(const Cli *cli, Warden__Types__V1__Entry **v, size_t n) {
        json_t *list;

        if (!cli->json) {
                printf("Found %zu %s\n", n, n == 1 ? "entry" : "entries");
                for (size_t i = 0; i < n; i++) {
                        printf("\n");
                        cli_print_entry(v[i]);
                }
                return 0;
        }
        list = json_array();
        for (size_t i = 0; list && i < n; i++)
                json_array_append_new(list, cli_entry_to_json(v[i]));
        return cli_print_json(json_pack("{s:o}", "entries", list));
}

int cli_entry_get(Cli *cli, const char *id, Warden__Types__V1__Entry **ret) {
        Warden__Admin__V1__GetEntryRequest req = WARDEN__ADMIN__V1__GET_ENTRY_REQUEST__INIT;

        req.id = (char *) id;
        return cli_call(cli, "GetEntry", &req, &warden__types__v1__entry__descriptor,
                        (void **) ret);
}

/* The filters of show and count. */
// clang-format off
#define ENTRY_FILTER_OPTIONS                                                                       \
        {"spiffeID", OPT_STRING, NULL, "Only entries with this SPIFFE ID"},                        \
        {"parentID", OPT_STRING, NULL, "Only entries with this parent ID"},                        \
        {"selector", OPT_STRV, NULL, "Only entries matching these selectors (repeatable)"},        \
        {"matchSelectorsOn", OPT_STRING, "superset",                                              \
         "How -selector matches: superset (holds all), exact, subset (holds only some) or any"},  \
        {"federatesWith", OPT_STRV, NULL,                                                          \
         "Only entries federating with this trust domain (repeatable: all of them)"},             \
        {"hint", OPT_STRING, NULL, "Only entries with this hint"}
// clang-format on

static const Option show_options[] = {
        CLI_COMMON_OPTIONS,
        {"entryID", OPT_STRING, NULL, "Show only the entry with this ID"},
        ENTRY_FILTER_OPTIONS,
        CLI_PAGE_OPTION,
};

static bool filter_given(const Options *o) {
        static const char *const flags[] = {"spiffeID",      "parentID", "selector",
                                            "federatesWith", "hint",     "matchSelectorsOn"};

        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (options_is_set(o, flags[i]))
                        return true;
        return false;
}

/* A ListEntriesRequest and what it borrows. */
typedef struct ListArgs {
        Warden__Admin__V1__ListEntriesRequest req;
        Entry *e; /* owns the IDs and trust domains */
} ListArgs;

static void list_args_done(ListArgs *a) {
        cli_selectors_free(a->req.by_selectors, a->req.n_by_selectors);
        entry_free(a->e);
}

static int list_request(const Options *o, ListArgs *a) {
        const char *match = NULL;
        int r;

        warden__admin__v1__list_entries_request__init(&a->req);
        r = entry_new(&a->e);
        if (r >= 0)
                r = set_id_flag(o, "spiffeID", false, &a->e->spiffe_id);
        if (r >= 0)
                r = set_id_flag(o, "parentID", false, &a->e->parent_id);
        if (r >= 0)
                r = set_lists(o, a->e);
        if (r >= 0)
                r = cli_match_flag(o, &match);
        if (r >= 0)
                r = cli_selector_filter(o, &a->req.by_selectors, &a->req.n_by_selectors);
        if (r == -ENOMEM)
                return cli_error_errno(r, "out of memory");
        if (r < 0)
                return r;
        a->req.by_spiffe_id = (char *) strempty(a->e->spiffe_id);
        a->req.by_parent_id = (char *) strempty(a->e->parent_id);
        a->req.by_federates_with = a->e->federates_with;
        a->req.n_by_federates_with = a->e->n_federates_with;
        a->req.by_hint = (char *) strempty(options_get_string(o, "hint"));
        a->req.match_selectors_on = (char *) match;
        return 0;
}

static size_t page_entries(const void *resp, void *const **ret) {
        const Warden__Admin__V1__ListEntriesResponse *p = resp;

        *ret = (void *const *) p->entries;
        return p->n_entries;
}

static const char *page_next(const void *resp) {
        return ((const Warden__Admin__V1__ListEntriesResponse *) resp)->next_page_token;
}

static void print_header(int64_t n) {
        printf("Found %lld %s\n", (long long) n, n == 1 ? "entry" : "entries");
}

static void print_one(const void *e) {
        cli_print_entry(e);
}

static json_t *one_to_json(const void *e) {
        return cli_entry_to_json(e);
}

/* The total of a listing longer than one page. */
static int count_listed(Cli *cli, void *userdata, int64_t *ret) {
        _cleanup_(cli_pb_freep) Warden__Admin__V1__CountEntriesResponse *resp = NULL;
        Warden__Admin__V1__CountEntriesRequest req = WARDEN__ADMIN__V1__COUNT_ENTRIES_REQUEST__INIT;
        Warden__Admin__V1__ListEntriesRequest *f = userdata;
        int r;

        /* No filter at all: the datastore's own count, not a walk through every entry. */
        if (*f->by_spiffe_id || *f->by_parent_id || f->n_by_selectors > 0 ||
            f->n_by_federates_with > 0 || *f->by_hint)
                req.filter = f;
        r = cli_call(cli, "CountEntries", &req,
                     &warden__admin__v1__count_entries_response__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        *ret = resp->count;
        return 0;
}

static int show_all(Cli *cli, ListArgs *a, int32_t page_size) {
        const CliPager pg = {
                .method = "ListEntries",
                .resp_desc = &warden__admin__v1__list_entries_response__descriptor,
                .req = &a->req,
                .req_page_size = &a->req.page_size,
                .req_page_token = &a->req.page_token,
                .items = page_entries,
                .next_token = page_next,
        };
        const CliListPrinter pr = {
                .json_key = "entries",
                .print_header = print_header,
                .print_text = print_one,
                .to_json = one_to_json,
                .count = count_listed,
                .userdata = &a->req,
        };

        return cli_list_all(cli, &pg, &pr, page_size);
}

static int entry_show(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_pb_freep) Warden__Types__V1__Entry *one = NULL;
        _cleanup_(list_args_done) ListArgs a = {};
        _cleanup_(cli_done) Cli cli = {};
        int32_t page_size = 0;
        int r;

        r = cli_parse("warden-server entry show [-entryID ID | -spiffeID ID -parentID ID "
                      "-selector T:K:V... -matchSelectorsOn M -federatesWith TD... -hint H] "
                      "[-pageSize N]",
                      show_options, ELEMENTSOF(show_options), argc, argv, &o);
        if (r < 0)
                return r;
        if (options_is_set(o, "entryID") && filter_given(o))
                return cli_error("-entryID cannot be combined with other filters");
        r = cli_page_size_flag(o, &page_size);
        if (r >= 0 && !options_is_set(o, "entryID"))
                r = list_request(o, &a);
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0 && options_is_set(o, "entryID")) {
                r = cli_entry_get(&cli, options_get_string(o, "entryID"), &one);
                if (r >= 0)
                        r = print_entries(&cli, &one, 1);
        } else if (r >= 0)
                r = show_all(&cli, &a, page_size);
        return r;
}

static const Option count_options[] = {
        CLI_COMMON_OPTIONS,
        ENTRY_FILTER_OPTIONS,
};

static int entry_count(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_pb_freep) Warden__Admin__V1__CountEntriesResponse *resp = NULL;
        Warden__Admin__V1__CountEntriesRequest req = WARDEN__ADMIN__V1__COUNT_ENTRIES_REQUEST__INIT;
        _cleanup_(list_args_done) ListArgs a = {};
        _cleanup_(cli_done) Cli cli = {};
        int r;

        r = cli_parse("warden-server entry count [-spiffeID ID -parentID ID -selector T:K:V... "
                      "-matchSelectorsOn M -federatesWith TD... -hint H]",
                      count_options, ELEMENTSOF(count_options), argc, argv, &o);
        if (r >= 0 && filter_given(o)) {
                r = list_request(o, &a);
                req.filter = &a.req;
        }
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "CountEntries", &req,
                             &warden__admin__v1__count_entries_response__descriptor,
                             (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack("{s:I}", "count", (json_int_t) resp->count));
        printf("%lld registration %s\n", (long long) resp->count,
               resp->count == 1 ? "entry" : "entries");
        return 0;
}

static const CliVerb entry_verbs[] = {
        {"create", entry_create, "Create an entry (or many with -data FILE)"},
        {"show", entry_show, "Show entries, optionally filtered"},
        {"update", cli_entry_update, "Change an entry, or many with -data FILE"},
        {"delete", cli_entry_delete, "Delete an entry, or many with -file FILE"},
        {"count", entry_count, "Count the entries, optionally filtered"},
};

int cli_entry_main(int argc, char **argv) {
        return cli_dispatch(entry_verbs, ELEMENTSOF(entry_verbs), argc, argv);
}
