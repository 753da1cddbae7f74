/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server token generate`: a single-use join token for node attestation. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <warden/spiffeid.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "entry.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static const Option generate_options[] = {
        CLI_COMMON_OPTIONS,
        {"spiffeID", OPT_STRING, NULL, "Node alias SPIFFE ID that the attested agent also gets"},
        {"ttl", OPT_DURATION, "10m", "How long the token can be used"},
};

static int token_generate(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__CreateJoinTokenResponse *resp = NULL;
        Warden__Admin__V1__CreateJoinTokenRequest req =
                WARDEN__ADMIN__V1__CREATE_JOIN_TOKEN_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        const char *alias, *reason = NULL;
        char t[32];
        int r;

        r = cli_parse("warden-server token generate [-spiffeID ALIAS] [-ttl DURATION]",
                      generate_options, ELEMENTSOF(generate_options), argc, argv, &o);
        if (r < 0)
                return r;
        alias = options_get_string(o, "spiffeID");
        if (alias && warden_spiffeid_validate_workload(alias, &reason) < 0)
                return cli_error("invalid -spiffeID \"%s\": %s", alias, reason);
        r = cli_ttl(o, "ttl", ENTRY_TTL_MAX, &req.ttl);
        if (r >= 0 && req.ttl == 0)
                r = cli_error("-ttl: must be longer than 0s");
        if (r < 0)
                return r;
        req.alias_spiffe_id = (char *) strempty(alias);
        r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "CreateJoinToken", &req,
                             &warden__admin__v1__create_join_token_response__descriptor,
                             (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack("{s:s,s:o}", "token", resp->token, "expires_at",
                                                cli_json_time(resp->expires_at)));
        printf("Token: %s\n", resp->token);
        printf("Expires at: %s\n", cli_format_time(resp->expires_at, t));
        return 0;
}

static const CliVerb token_verbs[] = {
        {"generate", token_generate, "Generate a join token for a new agent"},
};

int cli_token_main(int argc, char **argv) {
        return cli_dispatch(token_verbs, ELEMENTSOF(token_verbs), argc, argv);
}
