/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server healthcheck`: exit 0 when the server answers on its admin socket. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static const Option health_options[] = {
        CLI_COMMON_OPTIONS,
        {"shallow", OPT_BOOL, "false",
         "Only check that the server answers (not that its datastore is usable)"},
        {"verbose", OPT_BOOL, "false", "Print each step and what the server reported"},
};

static void print_verbose(const Warden__Admin__V1__HealthResponse *resp) {
        char t[32];

        printf("Server: trust domain %s, version %s, up since %s\n", resp->trust_domain,
               resp->version, cli_format_time(resp->started_at, t));
        if (resp->datastore_checked)
                printf("Datastore: usable (%lld entries, %lld agents)\n", (long long) resp->entries,
                       (long long) resp->agents);
        else
                printf("Datastore: not checked (-shallow)\n");
}

static int healthcheck(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__HealthResponse *resp = NULL;
        Warden__Admin__V1__HealthRequest req = WARDEN__ADMIN__V1__HEALTH_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        bool verbose;
        char t[32];
        int r;

        r = cli_parse("warden-server healthcheck [-socketPath PATH] [-shallow] [-verbose]",
                      health_options, ELEMENTSOF(health_options), argc, argv, &o);
        if (r < 0)
                return r;
        verbose = options_get_bool(o, "verbose");
        req.shallow = options_get_bool(o, "shallow");
        if (verbose && !streq(options_get_string(o, "output"), "json"))
                printf("Checking the server at %s (%s check)...\n",
                       options_get_string(o, "socketPath"), req.shallow ? "shallow" : "full");
        r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "Health", &req, &warden__admin__v1__health_response__descriptor,
                             (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack(
                        "{s:b,s:s,s:o,s:s,s:b,s:o,s:o}", "healthy", 1, "trust_domain",
                        resp->trust_domain, "started_at", cli_json_time(resp->started_at),
                        "version", resp->version, "datastore_checked",
                        (int) resp->datastore_checked, "entries",
                        resp->datastore_checked ? json_integer(resp->entries) : json_null(),
                        "agents",
                        resp->datastore_checked ? json_integer(resp->agents) : json_null()));
        if (verbose)
                print_verbose(resp);
        printf("Server is healthy (trust domain %s, version %s, up since %s)\n", resp->trust_domain,
               resp->version, cli_format_time(resp->started_at, t));
        return 0;
}

int cli_healthcheck_main(int argc, char **argv) {
        return cli_run(healthcheck, argc, argv);
}
