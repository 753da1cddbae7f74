/* SPDX-License-Identifier: Apache-2.0 */
/* The verb dispatcher (verbs.h): usage on the right stream with the right exit status,
 * version, verbs and their arguments, `help VERB ...`, its word limit, unknown verbs. */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "testlib.h"
#include "verbs.h"

static int seen_argc;
static char seen_argv[8][32];

static int verb_record(int argc, char **argv) {
        seen_argc = argc;
        for (int i = 0; i < argc && i < 8; i++)
                snprintf(seen_argv[i], sizeof(seen_argv[i]), "%s", argv[i]);
        return 7;
}

static const Verb verbs[] = {
        {"run", verb_record, "Run it"},
        {"list", verb_record, "List things"},
};

static const VerbTable table = {
        .program = "prog",
        .version = "1.2.3",
        .verbs = verbs,
        .n_verbs = ELEMENTSOF(verbs),
        .footer = "\nThe end.\n",
};

typedef struct Output {
        int status;
        char *out, *err;
} Output;

static void output_done(Output *o) {
        free(o->out);
        free(o->err);
}

/* Runs verbs_dispatch(t, argv...) with stdout and stderr going to files. */
static Output dispatch(const VerbTable *t, char **argv) {
        _cleanup_free_ char *dir = test_tmpdir(), *po = NULL, *pe = NULL;
        int argc = 0, o1 = dup(STDOUT_FILENO), o2 = dup(STDERR_FILENO);
        Output r = {};

        while (argv[argc])
                argc++;
        assert_true(asprintf(&po, "%s/out", dir) > 0 && asprintf(&pe, "%s/err", dir) > 0);
        fflush(stdout);
        fflush(stderr);
        assert_non_null(freopen(po, "w", stdout));
        assert_non_null(freopen(pe, "w", stderr));
        seen_argc = -1;
        r.status = verbs_dispatch(t, argc, argv);
        fflush(stdout);
        fflush(stderr);
        assert_int_equal(dup2(o1, STDOUT_FILENO), STDOUT_FILENO);
        assert_int_equal(dup2(o2, STDERR_FILENO), STDERR_FILENO);
        close(o1);
        close(o2);
        r.out = test_read_file(po, NULL);
        r.err = test_read_file(pe, NULL);
        assert_non_null(r.out);
        assert_non_null(r.err);
        test_rmdir_free(TAKE_PTR(dir));
        return r;
}

#define USAGE                                                                                      \
        "Usage: prog <command> [<verb>] [flags]\n\nCommands:\n"                                    \
        "  run          Run it\n"                                                                  \
        "  list         List things\n"                                                             \
        "  version      Print the version\n"                                                       \
        "\nThe end.\n"

static void test_usage(void **state) {
        const char *help[] = {"-h", "-help", "--help", "help"};
        Output o = dispatch(&table, (char *[]){"prog", NULL});

        assert_int_equal(o.status, 1);
        assert_string_equal(o.out, "");
        assert_string_equal(o.err, USAGE);
        output_done(&o);
        for (size_t i = 0; i < ELEMENTSOF(help); i++) {
                o = dispatch(&table, (char *[]){"prog", (char *) help[i], NULL});
                assert_int_equal(o.status, 0);
                assert_string_equal(o.out, USAGE);
                assert_string_equal(o.err, "");
                assert_int_equal(seen_argc, -1);
                output_done(&o);
        }
}

static void test_version(void **state) {
        const char *version[] = {"version", "-version", "--version"};

        for (size_t i = 0; i < ELEMENTSOF(version); i++) {
                Output o = dispatch(&table, (char *[]){"prog", (char *) version[i], NULL});

                assert_int_equal(o.status, 0);
                assert_string_equal(o.out, "prog 1.2.3\n");
                output_done(&o);
        }
}

static void test_verb(void **state) {
        Output o = dispatch(&table, (char *[]){"prog", "list", "-a", "b", NULL});

        assert_int_equal(o.status, 7);
        assert_int_equal(seen_argc, 3);
        assert_string_equal(seen_argv[0], "list");
        assert_string_equal(seen_argv[1], "-a");
        assert_string_equal(seen_argv[2], "b");
        /* Verbs run with the CLI's quiet log. */
        assert_int_equal(log_get_max_level(), LOG_WARNING);
        output_done(&o);

        o = dispatch(&table, (char *[]){"prog", "frob", NULL});
        assert_int_equal(o.status, 1);
        assert_int_equal(seen_argc, -1);
        assert_string_equal(o.err,
                            "Error: unknown command \"frob\" (run 'prog -h' for the commands)\n");
        output_done(&o);
}

static void test_help_verb(void **state) {
        VerbTable limited = table;
        Output o = dispatch(&table, (char *[]){"prog", "help", "run", "a", "b", NULL});

        assert_int_equal(o.status, 7);
        assert_int_equal(seen_argc, 4);
        assert_string_equal(seen_argv[0], "run");
        assert_string_equal(seen_argv[2], "b");
        assert_string_equal(seen_argv[3], "-h");
        output_done(&o);

        o = dispatch(&table, (char *[]){"prog", "help", "nope", NULL});
        assert_int_equal(o.status, 1);
        assert_string_equal(o.err,
                            "Error: unknown command \"nope\" (run 'prog -h' for the commands)\n");
        output_done(&o);

        /* At the limit, then one word past it. */
        limited.help_max_words = 2;
        o = dispatch(&limited, (char *[]){"prog", "help", "run", "a", NULL});
        assert_int_equal(o.status, 7);
        assert_int_equal(seen_argc, 3);
        output_done(&o);
        o = dispatch(&limited, (char *[]){"prog", "help", "run", "a", "b", NULL});
        assert_int_equal(o.status, 1);
        assert_int_equal(seen_argc, -1);
        assert_string_equal(o.err,
                            "Error: unexpected argument \"b\" (usage: prog help COMMAND [VERB])\n");
        output_done(&o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_usage),
                cmocka_unit_test(test_version),
                cmocka_unit_test(test_verb),
                cmocka_unit_test(test_help_verb),
        };

        unsetenv("WARDEN_LOG_LEVEL");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
