/* SPDX-License-Identifier: Apache-2.0 */
#include "verbs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"

static const Verb *verbs_find(const VerbTable *t, const char *name) {
        for (size_t i = 0; i < t->n_verbs; i++)
                if (streq(t->verbs[i].name, name))
                        return &t->verbs[i];
        return NULL;
}

static void verbs_usage(const VerbTable *t, FILE *f) {
        fprintf(f, "Usage: %s <command> [<verb>] [flags]\n\nCommands:\n", t->program);
        for (size_t i = 0; i < t->n_verbs; i++)
                fprintf(f, "  %-12s %s\n", t->verbs[i].name, t->verbs[i].help);
        fprintf(f, "  %-12s %s\n", "version", "Print the version");
        fputs(t->footer, f);
}

static int verbs_unknown(const VerbTable *t, const char *name) {
        fprintf(stderr, "Error: unknown command \"%s\" (run '%s -h' for the commands)\n", name,
                t->program);
        return EXIT_FAILURE;
}

/* `help VERB [WORD...]` is `VERB [WORD...] -h`. */
static int verbs_help(const VerbTable *t, int argc, char **argv) {
        _cleanup_free_ char **args = NULL;
        const Verb *v;

        if (t->help_max_words > 0 && (size_t) argc > t->help_max_words) {
                fprintf(stderr, "Error: unexpected argument \"%s\" (usage: %s help COMMAND",
                        argv[t->help_max_words], t->program);
                for (size_t i = 1; i < t->help_max_words; i++)
                        fputs(" [VERB]", stderr);
                fputs(")\n", stderr);
                return EXIT_FAILURE;
        }
        v = verbs_find(t, argv[0]);
        if (!v)
                return verbs_unknown(t, argv[0]);
        args = calloc((size_t) argc + 2, sizeof(char *));
        if (!args) {
                fprintf(stderr, "Error: out of memory\n");
                return EXIT_FAILURE;
        }
        memcpy(args, argv, (size_t) argc * sizeof(char *));
        args[argc] = (char *) "-h";
        return v->fn(argc + 1, args);
}

static bool one_of(const char *s, const char *a, const char *b, const char *c) {
        return streq(s, a) || streq(s, b) || streq(s, c);
}

int verbs_dispatch(const VerbTable *t, int argc, char **argv) {
        const Verb *v;

        if (argc < 2) {
                verbs_usage(t, stderr);
                return EXIT_FAILURE;
        }
        if (one_of(argv[1], "-h", "-help", "--help") || (streq(argv[1], "help") && argc == 2)) {
                verbs_usage(t, stdout);
                return EXIT_SUCCESS;
        }
        if (one_of(argv[1], "version", "-version", "--version")) {
                printf("%s %s\n", t->program, t->version);
                return EXIT_SUCCESS;
        }
        /* The CLI keeps its own and gRPC's debug chatter quiet unless asked for. */
        log_set_component("cli");
        log_set_max_level(LOG_WARNING);
        (void) log_parse_environment();
        if (streq(argv[1], "help"))
                return verbs_help(t, argc - 2, argv + 2);
        v = verbs_find(t, argv[1]);
        if (!v)
                return verbs_unknown(t, argv[1]);
        return v->fn(argc - 1, argv + 1);
}
