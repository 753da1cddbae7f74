/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-agent validate [-config FILE] [run flags] [-output text|json]`: checks the
 * configuration `run` would use (agent_config_parse(), which stops at the first
 * problem), without starting anything: "Configuration is valid" and exit 0, or the
 * problem as one "Error: ..." line and exit 1. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent_cli.h"
#include "cleanup.h"
#include "config.h"

/* Takes -output VALUE / -output=VALUE out of argv (in place). 0, or -EINVAL (printed). */
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
                if ((streq(a, "-output") || streq(a, "--output")) && i + 1 < *argc)
                        value = argv[++i];
                else if (strneq(a, "-output=", 8) || strneq(a, "--output=", 9))
                        value = strchr(a, '=') + 1;
                else
                        argv[k++] = argv[i];
        }
        argv[k] = NULL;
        *argc = k;
        if (value && !streq(value, "text") && !streq(value, "json")) {
                fprintf(stderr, "Error: -output: expected text or json, got \"%s\"\n", value);
                return -EINVAL;
        }
        *ret_json = value && streq(value, "json");
        return 0;
}

static int report(bool json, const char *problem) {
        if (json) {
                json_t *j = json_pack("{s:b,s:[]}", "valid", !problem, "problems");
                char *s;

                if (j && problem)
                        json_array_append_new(json_object_get(j, "problems"), json_string(problem));
                s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
                json_decref(j);
                if (!s)
                        return 1;
                puts(s);
                free(s);
        } else if (problem)
                fprintf(stderr, "Error: %s\n", problem);
        else
                printf("Configuration is valid\n");
        return problem ? 1 : 0;
}

int agent_cli_validate(int argc, char **argv) {
        _cleanup_free_ char **args = calloc((size_t) argc + 1, sizeof(char *));
        _cleanup_free_ char *msg = NULL;
        AgentConfig c = {};
        bool json = false;
        int r;

        if (!args) {
                fprintf(stderr, "Error: out of memory\n");
                return 1;
        }
        memcpy(args, argv, (size_t) argc * sizeof(char *));
        if (take_output_flag(&argc, args, &json) < 0)
                return 1;
        for (int i = 1; i < argc && !streq(args[i], "--"); i++)
                if (streq(args[i], "-h") || streq(args[i], "-help") || streq(args[i], "--help")) {
                        printf("Usage: warden-agent validate [-config FILE] [flags of run] "
                               "[-output text|json]\n\nChecks the configuration without "
                               "starting the agent: exit 0 when valid, else the problem.\n\n");
                        break;
                }
        r = agent_config_parse(argc, args, &c, &msg);
        agent_config_done(&c);
        if (r == -ECANCELED)
                return 0;
        if (r < 0 && !msg)
                return report(json, strerror(-r));
        return report(json, r < 0 ? msg : NULL);
}
