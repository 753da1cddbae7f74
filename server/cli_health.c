/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server healthcheck`: exit 0 when the server answers on its admin socket. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "proto_convert.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static const Option health_options[] = {CLI_COMMON_OPTIONS};

static int healthcheck(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__HealthResponse *resp = NULL;
        Warden__Admin__V1__HealthRequest req = WARDEN__ADMIN__V1__HEALTH_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        char t[32];
        int r;

        r = cli_parse("warden-server healthcheck [-socketPath PATH]", health_options,
                      ELEMENTSOF(health_options), argc, argv, &o);
        if (r >= 0)
                r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "Health", &req, &warden__admin__v1__health_response__descriptor,
                             (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack(
                        "{s:b,s:s,s:I,s:s}", "healthy", 1, "trust_domain", resp->trust_domain,
                        "started_at", (json_int_t) resp->started_at, "version", resp->version));
        printf("Server is healthy (trust domain %s, version %s, up since %s)\n", resp->trust_domain,
               resp->version, cli_format_time(resp->started_at, t));
        return 0;
}

int cli_healthcheck_main(int argc, char **argv) {
        return cli_run(healthcheck, argc, argv);
}
