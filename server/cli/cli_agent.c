/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server agent list|show|count|evict|ban|purge`. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <warden/spiffeid.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "parse.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static json_t *agent_to_json(const Warden__Types__V1__AttestedAgent *a) {
        return json_pack(
                "{s:o,s:o,s:o,s:o,s:b,s:o,s:o,s:o}", "spiffe_id", cli_json_string(a->spiffe_id),
                "attestation_type", cli_json_string(a->attestation_type), "serial",
                cli_json_string(a->x509_svid_serial), "expires_at",
                cli_json_time(a->x509_svid_expires_at), "banned", (int) a->banned, "selectors",
                cli_selectors_to_json(a->selectors, a->n_selectors), "created_at",
                cli_json_time(a->created_at), "last_seen_at", cli_json_time(a->last_seen_at));
}

static void print_agent(const Warden__Types__V1__AttestedAgent *a) {
        char t[32];

        printf("%-17s: %s\n", "SPIFFE ID", a->spiffe_id);
        printf("%-17s: %s\n", "Attestation type", a->attestation_type);
        printf("%-17s: %s\n", "Expiration time", cli_format_time(a->x509_svid_expires_at, t));
        printf("%-17s: %s\n", "Serial number", a->x509_svid_serial);
        printf("%-17s: %s\n", "Banned", a->banned ? "true" : "false");
        for (size_t i = 0; i < a->n_selectors; i++)
                printf("%-17s: %s:%s\n", "Selector", a->selectors[i]->type, a->selectors[i]->value);
        printf("%-17s: %s\n", "Attested at", cli_format_time(a->created_at, t));
        printf("%-17s: %s\n", "Last seen", cli_format_time(a->last_seen_at, t));
}

/* The filters of list and count. */
// clang-format off
#define AGENT_FILTER_OPTIONS                                                                       \
        {"attestationType", OPT_STRING, NULL, "Only agents attested this way: join_token, x509pop"}, \
        {"banned", OPT_STRING, NULL, "true: only banned agents; false: only the others"},         \
        {"expiresBefore", OPT_STRING, NULL,                                                        \
         "Only agents whose node SVID expires before this time (RFC 3339 or Unix seconds)"},      \
        {"selector", OPT_STRV, NULL, "Only agents matching these selectors (repeatable)"},         \
        {"matchSelectorsOn", OPT_STRING, "superset",                                              \
         "How -selector matches: superset (holds all), exact, subset (holds only some) or any"}
// clang-format on

static const Option list_options[] = {CLI_COMMON_OPTIONS, AGENT_FILTER_OPTIONS, CLI_PAGE_OPTION};
static const Option count_options[] = {CLI_COMMON_OPTIONS, AGENT_FILTER_OPTIONS};

static void list_request_done(Warden__Admin__V1__ListAgentsRequest *req) {
        cli_selectors_free(req->by_selectors, req->n_by_selectors);
}

/* The request's strings are borrowed from o. */
static int list_request(const Options *o, Warden__Admin__V1__ListAgentsRequest *req) {
        const char *banned = options_get_string(o, "banned"), *match = NULL;
        int r;

        if (banned && !streq(banned, "true") && !streq(banned, "false"))
                return cli_error("-banned: expected true or false, got \"%s\"", banned);
        req->by_banned = (char *) strempty(banned);
        req->by_attestation_type = (char *) strempty(options_get_string(o, "attestationType"));
        if (options_is_set(o, "expiresBefore") &&
            (r = cli_time_flag(o, "expiresBefore", &req->by_expires_before)) < 0)
                return r;
        r = cli_match_flag(o, &match);
        if (r >= 0)
                r = cli_selector_filter(o, &req->by_selectors, &req->n_by_selectors);
        req->match_selectors_on = (char *) match;
        return r;
}

static size_t page_agents(const void *resp, void *const **ret) {
        const Warden__Admin__V1__ListAgentsResponse *p = resp;

        *ret = (void *const *) p->agents;
        return p->n_agents;
}

static const char *page_next(const void *resp) {
        return ((const Warden__Admin__V1__ListAgentsResponse *) resp)->next_page_token;
}

static void print_header(int64_t n) {
        printf("Found %lld attested %s\n", (long long) n, n == 1 ? "agent" : "agents");
}

static void print_one(const void *a) {
        print_agent(a);
}

static json_t *one_to_json(const void *a) {
        return agent_to_json(a);
}

/* The total of a listing longer than one page. */
static int count_listed(Cli *cli, void *userdata, int64_t *ret) {
        _cleanup_(pb_freep) Warden__Admin__V1__CountAgentsResponse *resp = NULL;
        int r;

        r = cli_call(cli, "CountAgents", userdata,
                     &warden__admin__v1__count_agents_response__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        *ret = resp->count;
        return 0;
}

static int agent_list(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(list_request_done) Warden__Admin__V1__ListAgentsRequest req =
                WARDEN__ADMIN__V1__LIST_AGENTS_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        const CliPager pg = {
                .method = "ListAgents",
                .resp_desc = &warden__admin__v1__list_agents_response__descriptor,
                .req = &req,
                .req_page_size = &req.page_size,
                .req_page_token = &req.page_token,
                .items = page_agents,
                .next_token = page_next,
        };
        const CliListPrinter pr = {
                .json_key = "agents",
                .print_header = print_header,
                .print_text = print_one,
                .to_json = one_to_json,
                .count = count_listed,
                .userdata = &req,
        };
        int32_t page_size = 0;
        int r;

        r = cli_parse("warden-server agent list [-attestationType T] [-banned true|false] "
                      "[-expiresBefore TIME] [-selector T:K:V... -matchSelectorsOn M] "
                      "[-pageSize N]",
                      list_options, ELEMENTSOF(list_options), argc, argv, &o);
        if (r >= 0)
                r = cli_page_size_flag(o, &page_size);
        if (r >= 0)
                r = list_request(o, &req);
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_list_all(&cli, &pg, &pr, page_size);
        return r;
}

static int agent_count(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__CountAgentsResponse *resp = NULL;
        _cleanup_(list_request_done) Warden__Admin__V1__ListAgentsRequest req =
                WARDEN__ADMIN__V1__LIST_AGENTS_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        int r;

        r = cli_parse("warden-server agent count [-attestationType T] [-banned true|false] "
                      "[-expiresBefore TIME] [-selector T:K:V... -matchSelectorsOn M]",
                      count_options, ELEMENTSOF(count_options), argc, argv, &o);
        if (r >= 0)
                r = list_request(o, &req);
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "CountAgents", &req,
                             &warden__admin__v1__count_agents_response__descriptor,
                             (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack("{s:I}", "count", (json_int_t) resp->count));
        printf("%lld attested %s\n", (long long) resp->count,
               resp->count == 1 ? "agent" : "agents");
        return 0;
}

static const Option purge_options[] = {
        CLI_COMMON_OPTIONS,
        {"expiredFor", OPT_DURATION, "30d",
         "Forget agents whose node SVID expired at least this long ago"},
        {"dryRun", OPT_BOOL, "false", "Only show which agents would be forgotten"},
};

static json_t *strv_json(char **v, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                json_array_append_new(a, cli_json_string(v[i]));
        return a;
}

static int agent_purge(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__PurgeAgentsResponse *resp = NULL;
        Warden__Admin__V1__PurgeAgentsRequest req = WARDEN__ADMIN__V1__PURGE_AGENTS_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        char d[DURATION_STRING_MAX];
        int r;

        r = cli_parse("warden-server agent purge [-expiredFor DURATION] [-dryRun]", purge_options,
                      ELEMENTSOF(purge_options), argc, argv, &o);
        if (r < 0)
                return r;
        req.expired_for = options_get_duration(o, "expiredFor");
        req.dry_run = options_get_bool(o, "dryRun");
        r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "PurgeAgents", &req,
                             &warden__admin__v1__purge_agents_response__descriptor,
                             (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack("{s:b,s:o,s:o}", "dry_run", (int) req.dry_run,
                                                "purged", strv_json(resp->purged, resp->n_purged),
                                                "kept_banned",
                                                strv_json(resp->kept_banned, resp->n_kept_banned)));
        printf("%s %zu %s expired for %s or longer\n", req.dry_run ? "Would purge" : "Purged",
               resp->n_purged, resp->n_purged == 1 ? "agent" : "agents",
               format_duration(req.expired_for, d, sizeof(d)));
        for (size_t i = 0; i < resp->n_purged; i++)
                printf("  %s\n", resp->purged[i]);
        for (size_t i = 0; i < resp->n_kept_banned; i++)
                printf("Kept %s: banned (evict it to forget it)\n", resp->kept_banned[i]);
        return 0;
}

static const Option id_options[] = {
        CLI_COMMON_OPTIONS,
        {"spiffeID", OPT_STRING, NULL, "SPIFFE ID of the agent (required)"},
};

/* Parses the flags, checks -spiffeID and connects. */
static int agent_prepare(const char *usage, int argc, char **argv, Options **ret_o, Cli *cli) {
        _cleanup_(options_freep) Options *o = NULL;
        const char *id, *reason = NULL;
        int r;

        r = cli_parse(usage, id_options, ELEMENTSOF(id_options), argc, argv, &o);
        if (r < 0)
                return r;
        id = options_get_string(o, "spiffeID");
        if (!id)
                return cli_error("-spiffeID is required");
        if (warden_spiffeid_validate(id, &reason) < 0)
                return cli_error("invalid -spiffeID \"%s\": %s", id, reason);
        r = cli_open(cli, o);
        if (r < 0)
                return r;
        *ret_o = TAKE_PTR(o);
        return 0;
}

static int agent_show(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Types__V1__AttestedAgent *a = NULL;
        Warden__Admin__V1__GetAgentRequest req = WARDEN__ADMIN__V1__GET_AGENT_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        int r;

        r = agent_prepare("warden-server agent show -spiffeID ID", argc, argv, &o, &cli);
        if (r < 0)
                return r;
        req.spiffe_id = (char *) options_get_string(o, "spiffeID");
        r = cli_call(&cli, "GetAgent", &req, &warden__types__v1__attested_agent__descriptor,
                     (void **) &a);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(agent_to_json(a));
        print_agent(a);
        return 0;
}

static int agent_action(int argc, char **argv, bool ban) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__AgentActionResponse *resp = NULL;
        Warden__Admin__V1__AgentIDRequest req = WARDEN__ADMIN__V1__AGENT_IDREQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        int r;

        r = agent_prepare(ban ? "warden-server agent ban -spiffeID ID"
                              : "warden-server agent evict -spiffeID ID",
                          argc, argv, &o, &cli);
        if (r < 0)
                return r;
        req.spiffe_id = (char *) options_get_string(o, "spiffeID");
        r = cli_call(&cli, ban ? "BanAgent" : "EvictAgent", &req,
                     &warden__admin__v1__agent_action_response__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack("{s:s,s:s}", ban ? "banned" : "evicted",
                                                req.spiffe_id, "result", "ok"));
        printf("Agent %s %s\n", req.spiffe_id, ban ? "banned" : "evicted (it must attest again)");
        return 0;
}

static int agent_evict(int argc, char **argv) {
        return agent_action(argc, argv, false);
}

static int agent_ban(int argc, char **argv) {
        return agent_action(argc, argv, true);
}

static const CliVerb agent_verbs[] = {
        {"list", agent_list, "List attested agents, optionally filtered"},
        {"show", agent_show, "Show one attested agent"},
        {"count", agent_count, "Count attested agents, optionally filtered"},
        {"purge", agent_purge, "Forget agents whose node SVID expired long ago"},
        {"evict", agent_evict, "Forget an agent: it must attest again"},
        {"ban", agent_ban, "Ban an agent: every call it makes is refused"},
};

int cli_agent_main(int argc, char **argv) {
        return cli_dispatch(agent_verbs, ELEMENTSOF(agent_verbs), argc, argv);
}
