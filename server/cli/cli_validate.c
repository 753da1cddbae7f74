/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server validate [-config FILE] [run flags]`: checks the configuration `run`
 * would use, without starting: every problem on its own line, exit 0 or 1. Besides the
 * flags and the file it checks what run checks first at start: an existing -dataDir's
 * owner and mode. Ports and sockets are not probed (the server may be running). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "server.h"
#include "server_config.h"
#include "strv.h"

/* Takes -output VALUE / -output=VALUE out of argv (in place); *ret_json. */
static int take_output_flag(int *argc, char **argv, bool *ret_json) {
        const char *value = NULL;
        int k = 1;

        for (int i = 1; i < *argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--")) {
                        while (i < *argc)
                                argv[k++] = argv[i++];
                        break;
                }
                if (streq(a, "-output") || streq(a, "--output")) {
                        if (i + 1 >= *argc)
                                return cli_error("-output: missing value");
                        value = argv[++i];
                } else if (strneq(a, "-output=", 8) || strneq(a, "--output=", 9))
                        value = strchr(a, '=') + 1;
                else
                        argv[k++] = argv[i];
        }
        argv[k] = NULL;
        *argc = k;
        if (value && !streq(value, "text") && !streq(value, "json"))
                return cli_error("-output: expected text or json, got \"%s\"", value);
        *ret_json = value && streq(value, "json");
        return 0;
}

static bool wants_help(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "-h") || streq(argv[i], "-help") || streq(argv[i], "--help"))
                        return true;
        return false;
}

/* What run would refuse at start before anything else: the data dir. */
static int check_data_dir(const ServerConfig *c, ConfigProblems *p) {
        char *msg = NULL;
        bool exists;
        int r;

        r = server_datadir_check(c->data_dir, geteuid(), &exists, &msg);
        if (r >= 0 || r == -ENOMEM)
                return r;
        if (!msg && asprintf(&msg, "-dataDir %s: %s", c->data_dir, strerror(-r)) < 0)
                return -ENOMEM;
        r = strv_push(&p->v, &p->n, msg);
        free(msg);
        return r;
}

static int report(bool json, const ConfigProblems *p) {
        json_t *list;

        if (json) {
                list = json_array();
                for (size_t i = 0; list && i < p->n; i++)
                        json_array_append_new(list, cli_json_string(p->v[i]));
                (void) cli_print_json(json_pack("{s:b,s:o}", "valid", p->n == 0, "problems", list));
        } else if (p->n == 0)
                printf("Configuration is valid\n");
        for (size_t i = 0; !json && i < p->n; i++)
                fprintf(stderr, "Error: %s\n", p->v[i]);
        return p->n == 0 ? 0 : 1;
}

int cli_validate_main(int argc, char **argv) {
        _cleanup_free_ char **args = calloc((size_t) argc + 1, sizeof(char *));
        ConfigProblems p = {};
        ServerConfig c = {};
        bool json = false;
        int r;

        if (!args) {
                (void) cli_error_errno(-ENOMEM, "out of memory");
                return 1;
        }
        memcpy(args, argv, (size_t) argc * sizeof(char *));
        if (take_output_flag(&argc, args, &json) < 0)
                return 1;
        if (wants_help(argc, args))
                printf("Usage: warden-server validate [-config FILE] [flags of run] "
                       "[-output text|json]\n\nChecks the configuration without starting the "
                       "server: exit 0 when valid, else one line per problem.\n\n");
        r = server_config_parse_all(argc, args, &c, &p);
        if (r == -ECANCELED)
                return 0;
        if (r >= 0)
                r = check_data_dir(&c, &p);
        server_config_done(&c);
        if (r == -ENOMEM) {
                server_config_problems_done(&p);
                (void) cli_error_errno(r, "out of memory");
                return 1;
        }
        r = report(json, &p);
        server_config_problems_done(&p);
        return r;
}
