/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"
#include "testlib.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const Option table[] = {
        {"trustDomain", OPT_STRING, NULL, "Trust domain"},
        {"dataDir", OPT_STRING, "/var/lib/warden", "Data directory"},
        {"serverPort", OPT_PORT, "8081", "Node API port"},
        {"workers", OPT_INT, "4", "Worker count"},
        {"ttl", OPT_DURATION, "1h", "Default X509-SVID TTL"},
        {"admin", OPT_BOOL, "false", "Admin entry"},
        {"debug", OPT_BOOL, NULL, "Debug"},
        {"selector", OPT_STRV, NULL, "Selector"},
        {"federatesWith", OPT_STRV, "spiffe://default.org", "Federated trust domains"},
};

static char *tmpdir;

static int setup(void **state) {
        (void) state;
        tmpdir = test_tmpdir();
        return tmpdir ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        test_rmdir_free(tmpdir);
        return 0;
}

/* Writes a config file under tmpdir; returns its malloc'd path. */
static char *write_conf(const char *name, const char *text, size_t len) {
        char *path;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        return path;
}

/* Parses a NULL-terminated argument list (argv[0] added). */
static int parse_args(Options **ret, char **msg, ...) {
        char *argv[64] = {(char *) "prog"};
        int argc = 1;
        va_list ap;

        va_start(ap, msg);
        for (char *a; (a = va_arg(ap, char *));)
                argv[argc++] = a;
        va_end(ap);
        return options_parse(table, ELEMENTS(table), argc, argv, ret, msg);
}

static void expect_error(const char *want, int err, Options **o, char **msg, int r) {
        if (r != -err)
                fail_msg("returned %d, expected %d (msg %s)", r, -err, *msg ? *msg : "-");
        assert_null(*o);
        assert_non_null(*msg);
        if (!strstr(*msg, want))
                fail_msg("message \"%s\" does not contain \"%s\"", *msg, want);
        free(*msg);
        *msg = NULL;
}

static void test_defaults(void **state) {
        Options *o = NULL;
        char *msg = NULL;
        size_t n;
        (void) state;

        assert_ok(parse_args(&o, &msg, NULL));
        assert_null(options_get_string(o, "trustDomain"));
        assert_string_equal(options_get_string(o, "dataDir"), "/var/lib/warden");
        assert_int_equal(options_get_port(o, "serverPort"), 8081);
        assert_int_equal(options_get_int(o, "serverPort"), 8081);
        assert_int_equal(options_get_int(o, "workers"), 4);
        assert_int_equal(options_get_duration(o, "ttl"), 3600);
        assert_false(options_get_bool(o, "admin"));
        assert_false(options_get_bool(o, "debug"));
        char *const *l = options_get_strv(o, "selector", &n);
        assert_non_null(l);
        assert_int_equal(n, 0);
        assert_null(l[0]);
        l = options_get_strv(o, "federatesWith", &n);
        assert_int_equal(n, 1);
        assert_string_equal(l[0], "spiffe://default.org");
        assert_false(options_is_set(o, "dataDir"));
        assert_null(options_get_string(o, "config"));
        options_positional(o, &n);
        assert_int_equal(n, 0);

        /* Wrong-type and unknown getters return zero values. */
        assert_null(options_get_string(o, "serverPort"));
        assert_null(options_get_string(o, "nosuch"));
        assert_int_equal(options_get_int(o, "dataDir"), 0);
        assert_int_equal(options_get_duration(o, "serverPort"), 0);
        assert_int_equal(options_get_port(o, "workers"), 0);
        assert_false(options_get_bool(o, "dataDir"));
        assert_null(options_get_strv(o, "dataDir", &n));
        assert_int_equal(n, 0);
        assert_null(options_free(o));
        assert_null(options_free(NULL));
}

static void test_flag_forms(void **state) {
        Options *o = NULL;
        char *msg = NULL;
        size_t n;
        (void) state;

        assert_ok(parse_args(&o, &msg, "-trustDomain", "example.org", "-dataDir=/tmp/x",
                             "--serverPort", "9000", "--workers=-3", "-ttl", "1h30m", "-admin",
                             "--debug=false", NULL));
        assert_null(msg);
        assert_string_equal(options_get_string(o, "trustDomain"), "example.org");
        assert_string_equal(options_get_string(o, "dataDir"), "/tmp/x");
        assert_int_equal(options_get_port(o, "serverPort"), 9000);
        assert_int_equal(options_get_int(o, "workers"), -3);
        assert_int_equal(options_get_duration(o, "ttl"), 5400);
        assert_true(options_get_bool(o, "admin"));
        assert_false(options_get_bool(o, "debug"));
        assert_true(options_is_set(o, "debug"));
        assert_true(options_is_set(o, "trustDomain"));
        assert_false(options_is_set(o, "selector"));
        options_positional(o, &n);
        assert_int_equal(n, 0);
        o = options_free(o);

        /* A value starting with '-' is taken as the value; = can hold '='. */
        assert_ok(parse_args(&o, &msg, "-trustDomain", "-x", "-dataDir=a=b", "-admin=yes", NULL));
        assert_string_equal(options_get_string(o, "trustDomain"), "-x");
        assert_string_equal(options_get_string(o, "dataDir"), "a=b");
        assert_true(options_get_bool(o, "admin"));
        o = options_free(o);

        /* The last of a repeated scalar flag wins; empty string allowed. */
        assert_ok(parse_args(&o, &msg, "-dataDir", "a", "-dataDir", "", NULL));
        assert_string_equal(options_get_string(o, "dataDir"), "");
        o = options_free(o);
}

static void test_repeated_strv(void **state) {
        Options *o = NULL;
        char *msg = NULL;
        size_t n;
        char *const *l;
        (void) state;

        assert_ok(parse_args(&o, &msg, "-selector", "unix:uid:0", "-selector=unix:user:root",
                             "--selector", "systemd:id:a.service", "-federatesWith",
                             "spiffe://a.org", NULL));
        l = options_get_strv(o, "selector", &n);
        assert_int_equal(n, 3);
        assert_string_equal(l[0], "unix:uid:0");
        assert_string_equal(l[1], "unix:user:root");
        assert_string_equal(l[2], "systemd:id:a.service");
        assert_null(l[3]);
        /* A flag replaces the default list rather than appending to it. */
        l = options_get_strv(o, "federatesWith", &n);
        assert_int_equal(n, 1);
        assert_string_equal(l[0], "spiffe://a.org");
        o = options_free(o);
}

static void test_positional(void **state) {
        Options *o = NULL;
        char *msg = NULL;
        char **p;
        size_t n;
        (void) state;

        assert_ok(parse_args(&o, &msg, "-admin", "create", "-trustDomain", "x", NULL));
        p = options_positional(o, &n);
        assert_int_equal(n, 3);
        assert_string_equal(p[0], "create");
        assert_string_equal(p[1], "-trustDomain");
        assert_null(options_get_string(o, "trustDomain"));
        o = options_free(o);

        assert_ok(parse_args(&o, &msg, "-workers", "2", "--", "-admin", NULL));
        p = options_positional(o, &n);
        assert_int_equal(n, 1);
        assert_string_equal(p[0], "-admin");
        assert_false(options_get_bool(o, "admin"));
        o = options_free(o);

        assert_ok(parse_args(&o, &msg, "-", "x", NULL));
        p = options_positional(o, &n);
        assert_int_equal(n, 2);
        assert_string_equal(p[0], "-");
        o = options_free(o);
}

static void test_flag_errors(void **state) {
        Options *o = NULL;
        char *msg = NULL;
        (void) state;

        expect_error("unknown flag: -nosuch", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-nosuch", NULL));
        expect_error("unknown flag: -TrustDomain", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-TrustDomain", "x", NULL));
        expect_error("unknown flag: -", EINVAL, &o, &msg, parse_args(&o, &msg, "-=x", NULL));
        expect_error("-trustDomain: missing value", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-trustDomain", NULL));
        expect_error("-ttl: missing value", EINVAL, &o, &msg, parse_args(&o, &msg, "--ttl", NULL));
        expect_error("-serverPort: not a port number: \"x\"", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-serverPort", "x", NULL));
        expect_error("-serverPort: not a port number: \"65536\"", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-serverPort=65536", NULL));
        expect_error("-workers: not an integer: \"4.5\"", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-workers", "4.5", NULL));
        expect_error("-ttl: not a duration", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-ttl", "-5m", NULL));
        expect_error("-ttl: not a duration", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-ttl=1y", NULL));
        expect_error("-admin: not a boolean: \"maybe\"", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-admin=maybe", NULL));
        /* Control characters and long values are sanitised in the message. */
        expect_error("-workers: not an integer: \"a?b\"", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-workers=a\nb", NULL));
        char long_value[200];
        memset(long_value, '9', sizeof(long_value) - 1);
        long_value[sizeof(long_value) - 1] = '\0';
        assert_errno(parse_args(&o, &msg, "-serverPort", long_value, NULL), EINVAL);
        assert_non_null(strstr(msg, "999...\""));
        assert_true(strlen(msg) < 120);
        free(msg);
        msg = NULL;

        /* A NULL message pointer is fine. */
        assert_errno(parse_args(&o, NULL, "-nosuch", NULL), EINVAL);
}

static void test_help(void **state) {
        static const char *const forms[] = {"-h", "-help", "--help", "--h"};
        char *path, *text;
        size_t size;
        (void) state;

        assert_true(asprintf(&path, "%s/help.out", tmpdir) > 0);
        for (size_t i = 0; i < ELEMENTS(forms); i++) {
                Options *o = NULL;
                char *msg = NULL;
                int saved = dup(STDOUT_FILENO);

                fflush(stdout);
                assert_non_null(freopen(path, "w", stdout));
                int r = parse_args(&o, &msg, "-admin", forms[i], "-nosuch", NULL);
                fflush(stdout);
                dup2(saved, STDOUT_FILENO);
                close(saved);
                assert_int_equal(r, -ECANCELED);
                assert_null(o);
                assert_null(msg);

                text = test_read_file(path, &size);
                assert_non_null(text);
                assert_non_null(strstr(text, "-trustDomain <string>"));
                assert_non_null(strstr(text, "-serverPort <port>"));
                assert_non_null(strstr(text, "(default \"8081\")"));
                assert_non_null(strstr(text, "-selector <string>  (repeatable)"));
                assert_non_null(strstr(text, "-ttl <duration>"));
                assert_non_null(strstr(text, "-config <string>"));
                assert_non_null(strstr(text, "  -admin\n"));
                free(text);
        }
        free(path);
}

static void test_print_help(void **state) {
        static const Option with_config[] = {
                {"config", OPT_STRING, "/etc/warden/server.conf", "Config file"},
        };
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        (void) state;

        f = open_memstream(&buf, &size);
        assert_non_null(f);
        options_print_help(with_config, 1, f);
        fclose(f);
        assert_non_null(strstr(buf, "-config <string>"));
        assert_non_null(strstr(buf, "(default \"/etc/warden/server.conf\")"));
        /* Listed once only. */
        assert_null(strstr(strstr(buf, "-config") + 1, "-config"));
        free(buf);
}

static void test_bad_table(void **state) {
        static const Option dup[] = {
                {"a", OPT_STRING, NULL, NULL},
                {"a", OPT_INT, NULL, NULL},
        };
        static const Option bad_default[] = {
                {"port", OPT_PORT, "http", NULL},
        };
        static const Option bad_config[] = {
                {"config", OPT_INT, NULL, NULL},
        };
        char *argv[] = {(char *) "prog", NULL};
        Options *o = NULL;
        char *msg = NULL;
        (void) state;

        expect_error("bad option table", EINVAL, &o, &msg,
                     options_parse(dup, 2, 1, argv, &o, &msg));
        expect_error("bad option table", EINVAL, &o, &msg,
                     options_parse(bad_config, 1, 1, argv, &o, &msg));
        expect_error("internal error: bad default for -port: not a port number", EINVAL, &o, &msg,
                     options_parse(bad_default, 1, 1, argv, &o, &msg));
        /* An empty table still knows -config. */
        assert_ok(options_parse(NULL, 0, 1, argv, &o, &msg));
        o = options_free(o);
}

static const char good_conf[] = "# Warden test config\n"
                                "\n"
                                "trustDomain = \"example.org\"   # quoted, with a comment\n"
                                "dataDir = /srv/warden#bare then comment\n"
                                "serverPort = 9443\n"
                                "workers = '7'\n"
                                "ttl = \"5m\"\n"
                                "admin = true\n"
                                "selector = { \"unix:uid:0\",   # first\n"
                                "             'unix:path:/a b#c' }\n"
                                "selector += { \"systemd:id:x.service\" }\n"
                                "federatesWith = {}\n"
                                "debug = \"#not a comment\"\n";

static void test_config_file(void **state) {
        Options *o = NULL;
        char *msg = NULL, *path;
        char *const *l;
        size_t n;
        (void) state;

        path = write_conf("good.conf", good_conf,
                          strlen(good_conf) - strlen("debug = \"#not a comment\"\n"));
        assert_ok(parse_args(&o, &msg, "-config", path, NULL));
        if (msg)
                fail_msg("%s", msg);
        assert_string_equal(options_get_string(o, "config"), path);
        assert_string_equal(options_get_string(o, "trustDomain"), "example.org");
        assert_string_equal(options_get_string(o, "dataDir"), "/srv/warden");
        assert_int_equal(options_get_port(o, "serverPort"), 9443);
        assert_int_equal(options_get_int(o, "workers"), 7);
        assert_int_equal(options_get_duration(o, "ttl"), 300);
        assert_true(options_get_bool(o, "admin"));
        assert_true(options_is_set(o, "admin"));
        l = options_get_strv(o, "selector", &n);
        assert_int_equal(n, 3);
        assert_string_equal(l[0], "unix:uid:0");
        assert_string_equal(l[1], "unix:path:/a b#c");
        assert_string_equal(l[2], "systemd:id:x.service");
        /* An empty list in the file clears the default. */
        l = options_get_strv(o, "federatesWith", &n);
        assert_int_equal(n, 0);
        assert_true(options_is_set(o, "federatesWith"));
        o = options_free(o);
        free(path);

        /* A '#' inside quotes is data, so the bool value is bad; error on line 13. */
        path = write_conf("hash.conf", good_conf, strlen(good_conf));
        assert_errno(parse_args(&o, &msg, "-config", path, NULL), EINVAL);
        assert_non_null(strstr(msg, ":13: debug: not a boolean: \"#not a comment\""));
        assert_int_equal(strncmp(msg, path, strlen(path)), 0);
        free(msg);
        free(path);
}

static void test_precedence(void **state) {
        static const char conf[] = "trustDomain = file.org\n"
                                   "serverPort = 1111\n"
                                   "selector = { \"a:1\", \"a:2\" }\n"
                                   "admin = true\n";
        Options *o = NULL;
        char *msg = NULL, *path;
        char *const *l;
        size_t n;
        (void) state;

        path = write_conf("prec.conf", conf, strlen(conf));
        /* Flags before and after -config both win over the file. */
        assert_ok(parse_args(&o, &msg, "-trustDomain", "flag.org", "-config", path, "-selector",
                             "b:1", "-admin=false", NULL));
        assert_string_equal(options_get_string(o, "trustDomain"), "flag.org");
        assert_int_equal(options_get_port(o, "serverPort"), 1111); /* file over default */
        assert_int_equal(options_get_int(o, "workers"), 4);        /* default */
        assert_false(options_get_bool(o, "admin"));
        l = options_get_strv(o, "selector", &n);
        assert_int_equal(n, 1); /* flag list replaces the file list */
        assert_string_equal(l[0], "b:1");
        o = options_free(o);
        free(path);
}

static void test_config_errors(void **state) {
        static const struct {
                const char *text;
                const char *want;
        } cases[] = {
                {"# one\n# two\n\n  # three\nbogus = 1\n", ":5: no such option 'bogus'"},
                {"trustDomain = x\n# c\n# c\n# c\nserverPort = http\n",
                 ":5: serverPort: not a port number: \"http\""},
                {"ttl = 1h\nttl = \"-5m\"\n", ":2: ttl: not a duration"},
                {"workers = { 1, 2 }\n", ":1:"},
                {"selector = { \"a\", \"unterminated }\n", ":2: premature end of file"},
                {"trustDomain = \"x\n", ":"},
                {"trustDomain \"x\"\n", ":1: missing equal sign after option 'trustDomain'"},
                {"trustDomain = {{{ \n", ":1:"},
                {"config = other.conf\n", ":1: no such option 'config'"},
                {"serverPort += 5\n", ":1: attempt to append to non-list option 'serverPort'"},
                {"a = 1\n// c++ comment\n", ":2: only # comments are supported"},
                {"/* block */\n", ":1: only # comments are supported"},
                {"trustDomain = x\n\n  //x\n", ":3: only # comments are supported"},
                {"\xff\x01 = 1\n", ":1: no such option '\x3f\x3f'"}, /* sanitised */
                {"workers = { 1, 2 }\n", ":1: unexpected token '{'"},
                {"admin = true\n\n\n}\n", ":4: unexpected closing brace"},
                {"selector = {\n \"a\",\n \"b\"\n}\nadmin = perhaps\n",
                 ":5: admin: not a boolean: \"perhaps\""},
        };
        Options *o = NULL;
        char *msg = NULL;
        (void) state;

        for (size_t i = 0; i < ELEMENTS(cases); i++) {
                char name[32];
                char *path;
                int r;

                snprintf(name, sizeof(name), "bad%zu.conf", i);
                path = write_conf(name, cases[i].text, strlen(cases[i].text));
                r = parse_args(&o, &msg, "-config", path, NULL);
                if (r != -EINVAL || !msg || !strstr(msg, cases[i].want))
                        fail_msg("case %zu: r=%d msg=%s, want \"%s\"", i, r, msg ? msg : "(null)",
                                 cases[i].want);
                assert_null(o);
                assert_int_equal(strncmp(msg, path, strlen(path)), 0); /* names the file */
                free(msg);
                msg = NULL;
                free(path);
        }
}

static void test_config_file_problems(void **state) {
        static const char with_nul[] = "trustDomain = x\0y\n";
        static const Option with_default[] = {
                {"config", OPT_STRING, "/nonexistent/warden/default.conf", NULL},
                {"x", OPT_INT, "1", NULL},
        };
        Options *o = NULL;
        char *msg = NULL, *path, *missing;
        (void) state;

        /* Missing file named by the flag. */
        assert_true(asprintf(&missing, "%s/nope.conf", tmpdir) > 0);
        expect_error("nope.conf: No such file or directory", ENOENT, &o, &msg,
                     parse_args(&o, &msg, "-config", missing, NULL));

        /* A missing default config file is fine; the same path as a flag is not. */
        char *argv[] = {(char *) "prog", NULL};
        assert_ok(options_parse(with_default, 2, 1, argv, &o, &msg));
        assert_string_equal(options_get_string(o, "config"), "/nonexistent/warden/default.conf");
        assert_false(options_is_set(o, "config"));
        o = options_free(o);
        char *argv2[] = {(char *) "prog", (char *) "-config", missing, NULL};
        assert_errno(options_parse(with_default, 2, 3, argv2, &o, &msg), ENOENT);
        free(msg);
        msg = NULL;
        free(missing);

        /* A directory. */
        expect_error("not a regular file", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-config", tmpdir, NULL));

        /* A NUL byte. */
        path = write_conf("nul.conf", with_nul, sizeof(with_nul) - 1);
        expect_error("contains a NUL byte", EINVAL, &o, &msg,
                     parse_args(&o, &msg, "-config", path, NULL));
        free(path);

        /* Over the size cap, and exactly at it. */
        char *big = malloc(OPTIONS_CONFIG_MAX + 1);
        assert_non_null(big);
        memset(big, ' ', OPTIONS_CONFIG_MAX + 1);
        memcpy(big, "workers = 9\n", 12);
        path = write_conf("big.conf", big, OPTIONS_CONFIG_MAX + 1);
        expect_error("larger than", EFBIG, &o, &msg, parse_args(&o, &msg, "-config", path, NULL));
        free(path);
        path = write_conf("max.conf", big, OPTIONS_CONFIG_MAX);
        assert_ok(parse_args(&o, &msg, "-config", path, NULL));
        assert_int_equal(options_get_int(o, "workers"), 9);
        o = options_free(o);
        free(path);
        free(big);

        /* Empty and comment-only files change nothing. */
        path = write_conf("empty.conf", "", 0);
        assert_ok(parse_args(&o, &msg, "-config", path, NULL));
        assert_int_equal(options_get_int(o, "workers"), 4);
        o = options_free(o);
        free(path);
        path = write_conf("comments.conf", "# a\n  # b\n", 10);
        assert_ok(parse_args(&o, &msg, "-config", path, NULL));
        assert_false(options_is_set(o, "workers"));
        o = options_free(o);
        free(path);

        /* Unreadable file (skip when running as root, which reads anything). */
        if (geteuid() != 0) {
                path = write_conf("noperm.conf", "workers = 1\n", 12);
                assert_int_equal(chmod(path, 0), 0);
                expect_error("Permission denied", EACCES, &o, &msg,
                             parse_args(&o, &msg, "-config", path, NULL));
                free(path);
        }
}

static void test_config_env(void **state) {
        static const char conf[] = "trustDomain = \"${WARDEN_TEST_TD}\"\n"
                                   "dataDir = '${WARDEN_TEST_TD}'\n";
        Options *o = NULL;
        char *msg = NULL, *path;
        (void) state;

        setenv("WARDEN_TEST_TD", "env.org", 1);
        path = write_conf("env.conf", conf, strlen(conf));
        assert_ok(parse_args(&o, &msg, "-config", path, NULL));
        assert_string_equal(options_get_string(o, "trustDomain"), "env.org");
        assert_string_equal(options_get_string(o, "dataDir"), "${WARDEN_TEST_TD}");
        o = options_free(o);
        free(path);
        unsetenv("WARDEN_TEST_TD");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),      cmocka_unit_test(test_flag_forms),
                cmocka_unit_test(test_repeated_strv), cmocka_unit_test(test_positional),
                cmocka_unit_test(test_flag_errors),   cmocka_unit_test(test_help),
                cmocka_unit_test(test_print_help),    cmocka_unit_test(test_bad_table),
                cmocka_unit_test(test_config_file),   cmocka_unit_test(test_precedence),
                cmocka_unit_test(test_config_errors), cmocka_unit_test(test_config_file_problems),
                cmocka_unit_test(test_config_env),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
