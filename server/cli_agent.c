/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server agent list|show|evict|ban`. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <warden/spiffeid.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "proto_convert.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static json_t *agent_to_json(const Warden__Types__V1__AttestedAgent *a) {
        return json_pack(
                "{s:o,s:o,s:o,s:I,s:b,s:o,s:I,s:I}", "spiffe_id", cli_json_string(a->spiffe_id),
                "attestation_type", cli_json_string(a->attestation_type), "serial",
                cli_json_string(a->x509_svid_serial), "expires_at",
                (json_int_t) a->x509_svid_expires_at, "banned", (int) a->banned, "selectors",
                cli_selectors_to_json(a->selectors, a->n_selectors), "created_at",
                (json_int_t) a->created_at, "last_seen_at", (json_int_t) a->last_seen_at);
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

static const Option list_options[] = {CLI_COMMON_OPTIONS};

static int agent_list(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__ListAgentsResponse *resp = NULL;
        Warden__Admin__V1__ListAgentsRequest req = WARDEN__ADMIN__V1__LIST_AGENTS_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        json_t *list;
        int r;

        r = cli_parse("warden-server agent list", list_options, ELEMENTSOF(list_options), argc,
                      argv, &o);
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "ListAgents", &req,
                             &warden__admin__v1__list_agents_response__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        if (!cli.json) {
                printf("Found %zu attested %s\n", resp->n_agents,
                       resp->n_agents == 1 ? "agent" : "agents");
                for (size_t i = 0; i < resp->n_agents; i++) {
                        printf("\n");
                        print_agent(resp->agents[i]);
                }
                return 0;
        }
        list = json_array();
        for (size_t i = 0; list && i < resp->n_agents; i++)
                json_array_append_new(list, agent_to_json(resp->agents[i]));
        return cli_print_json(json_pack("{s:o}", "agents", list));
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
        {"list", agent_list, "List attested agents"},
        {"show", agent_show, "Show one attested agent"},
        {"evict", agent_evict, "Forget an agent: it must attest again"},
        {"ban", agent_ban, "Ban an agent: every call it makes is refused"},
};

int cli_agent_main(int argc, char **argv) {
        return cli_dispatch(agent_verbs, ELEMENTSOF(agent_verbs), argc, argv);
}
