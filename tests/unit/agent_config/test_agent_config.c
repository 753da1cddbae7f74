/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's options (agent/config.c): flags, config file, token file, limits, and
 * what a reload may change. */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "config.h"
#include "testlib.h"

static int parse(AgentConfig *c, char **msg, ...) {
        char *argv[32] = {"run"};
        int argc = 1;
        va_list ap;

        va_start(ap, msg);
        for (char *a; (a = va_arg(ap, char *));)
                argv[argc++] = a;
        va_end(ap);
        *msg = NULL;
        return agent_config_parse(argc, argv, c, msg);
}

static void expect_error(const char *needle, ...) {
        char *argv[32] = {"run"}, *msg = NULL;
        AgentConfig c = {};
        int argc = 1;
        va_list ap;

        va_start(ap, needle);
        for (char *a; (a = va_arg(ap, char *));)
                argv[argc++] = a;
        va_end(ap);
        assert_true(agent_config_parse(argc, argv, &c, &msg) < 0);
        assert_non_null(msg);
        if (!strstr(msg, needle))
                fail_msg("error \"%s\" does not contain \"%s\"", msg, needle);
        free(msg);
}

static void test_config(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *tok = NULL, *big = NULL, *conf = NULL;
        AgentConfig c = {};
        char *msg = NULL;
        FILE *f;

        assert_ok(parse(&c, &msg, "-trustDomain", "example.org", "-joinToken", "t1", NULL));
        assert_string_equal(c.server_target, "127.0.0.1:8081");
        assert_string_equal(c.socket_path, AGENT_DEFAULT_SOCKET_PATH);
        assert_string_equal(c.data_dir, AGENT_DEFAULT_DATA_DIR);
        assert_string_equal(c.join_token, "t1");
        assert_int_equal(c.workload_key_type, WARDEN_KEY_EC_P256);
        agent_config_done(&c);
        assert_ok(parse(&c, &msg, "-trustDomain", "example.org", "-serverAddress", "::1",
                        "-serverPort", "9000", "-workloadKeyType", "rsa-2048", NULL));
        assert_string_equal(c.server_target, "[::1]:9000");
        assert_int_equal(c.workload_key_type, WARDEN_KEY_RSA_2048);
        assert_null(c.join_token);
        agent_config_done(&c);

        /* token file: surrounding whitespace dropped; too long refused */
        assert_true(asprintf(&tok, "%s/token", dir) > 0);
        f = fopen(tok, "w");
        fprintf(f, "  secret-token\n");
        fclose(f);
        assert_ok(parse(&c, &msg, "-trustDomain", "example.org", "-joinTokenFile", tok, NULL));
        assert_string_equal(c.join_token, "secret-token");
        agent_config_done(&c);
        assert_true(asprintf(&big, "%s/big", dir) > 0);
        f = fopen(big, "w");
        for (int i = 0; i <= AGENT_JOIN_TOKEN_MAX; i++)
                fputc('a', f);
        fclose(f);
        expect_error("longer than", "-trustDomain", "example.org", "-joinTokenFile", big, NULL);
        expect_error("mutually exclusive", "-trustDomain", "example.org", "-joinToken", "x",
                     "-joinTokenFile", tok, NULL);

        /* config file, flags win */
        assert_true(asprintf(&conf, "%s/agent.conf", dir) > 0);
        f = fopen(conf, "w");
        fprintf(f, "trustDomain = \"example.org\"\nserverPort = 7000\nlogLevel = debug\n");
        fclose(f);
        assert_ok(parse(&c, &msg, "-config", conf, "-serverPort", "7001", NULL));
        assert_string_equal(c.server_target, "127.0.0.1:7001");
        assert_int_equal(c.log_level, LOG_DEBUG);
        agent_config_done(&c);

        expect_error("-trustDomain is required", "-serverPort", "1", NULL);
        expect_error("invalid trust domain", "-trustDomain", "Example.org", NULL);
        expect_error("must be an absolute path", "-trustDomain", "example.org", "-socketPath",
                     "rel.sock", NULL);
        expect_error("go together", "-trustDomain", "example.org", "-x509popCert", tok, NULL);
        expect_error("not both", "-trustDomain", "example.org", "-joinToken", "x", "-x509popCert",
                     tok, "-x509popKey", tok, NULL);
        expect_error("unknown key type", "-trustDomain", "example.org", "-workloadKeyType", "dsa",
                     NULL);
        expect_error("must not be 0", "-trustDomain", "example.org", "-serverPort", "0", NULL);
        expect_error("cannot read", "-trustDomain", "example.org", "-trustBundle",
                     "/nonexistent/roots.pem", NULL);
        expect_error("unexpected argument", "-trustDomain", "example.org", "extra", NULL);
        /* The data dir is 0700: a socket inside it would refuse every other user. */
        expect_error("is inside -dataDir", "-trustDomain", "example.org", "-dataDir",
                     "/var/lib/warden/agent", "-socketPath", "/var/lib/warden/agent/api.sock",
                     NULL);
        expect_error("is inside -dataDir", "-trustDomain", "example.org", "-dataDir",
                     "/var/lib/warden/agent/", "-socketPath",
                     "/var/lib/warden/./agent/run/../api.sock", NULL);
        assert_ok(parse(&c, &msg, "-trustDomain", "example.org", "-dataDir",
                        "/var/lib/warden/agent", "-socketPath", "/var/lib/warden/agent.sock",
                        NULL));
        agent_config_done(&c);
        test_rmdir_free(TAKE_PTR(dir));
}

/* The Workload API limits and JWT time rules. */
static void test_config_limits(void **state) {
        AgentConfig c = {};
        char *msg = NULL;

        (void) state;
        assert_ok(parse(&c, &msg, "-trustDomain", "example.org", NULL));
        assert_int_equal(c.max_connections, 1024);
        assert_int_equal(c.max_connections_per_uid, 64);
        assert_int_equal(c.max_calls_per_uid, 256);
        assert_int_equal(c.idle_timeout_sec, 60);
        assert_int_equal(c.jwt_mint_rate, 10);
        assert_int_equal(c.jwt_clock_skew_sec, 60);
        assert_int_equal(c.jwt_expiry_leeway_sec, 0);
        agent_config_done(&c);
        assert_ok(parse(&c, &msg, "-trustDomain", "example.org", "-maxConnections", "10",
                        "-maxConnectionsPerUID", "10", "-maxCallsPerUID", "3",
                        "-connectionIdleTimeout", "0", "-jwtMintRatePerUID", "0", "-jwtClockSkew",
                        "5s", "-jwtExpiryLeeway", "1m", NULL));
        assert_int_equal(c.max_connections, 10);
        assert_int_equal(c.max_connections_per_uid, 10);
        assert_int_equal(c.max_calls_per_uid, 3);
        assert_int_equal(c.idle_timeout_sec, 0);
        assert_int_equal(c.jwt_mint_rate, 0);
        assert_int_equal(c.jwt_clock_skew_sec, 5);
        assert_int_equal(c.jwt_expiry_leeway_sec, 60);
        agent_config_done(&c);
        expect_error("-maxConnections: must be 1..65536, got 0", "-trustDomain", "example.org",
                     "-maxConnections", "0", NULL);
        expect_error("-maxConnectionsPerUID: must be 1..10, got 11", "-trustDomain", "example.org",
                     "-maxConnections", "10", "-maxConnectionsPerUID", "11", NULL);
        expect_error("-maxCallsPerUID: must be 1..65536, got 70000", "-trustDomain", "example.org",
                     "-maxCallsPerUID", "70000", NULL);
        expect_error("-jwtMintRatePerUID: must be 0..100000, got -1", "-trustDomain", "example.org",
                     "-jwtMintRatePerUID", "-1", NULL);
        expect_error("-jwtExpiryLeeway: must be 0..3600, got 7200", "-trustDomain", "example.org",
                     "-jwtExpiryLeeway", "2h", NULL);
        expect_error("-jwtClockSkew", "-trustDomain", "example.org", "-jwtClockSkew", "soon", NULL);
}

/* -maxEntries: default, bounds, the config file, and that it needs a restart. */
static void test_config_max_entries(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *conf = NULL;
        const char *names[4];
        AgentConfig a = {}, b = {};
        char *msg = NULL;
        FILE *f;

        (void) state;
        assert_ok(parse(&a, &msg, "-trustDomain", "example.org", NULL));
        assert_int_equal(a.max_entries, AGENT_MAX_ENTRIES_DEFAULT);
        assert_int_equal(a.max_entries, 100000);
        agent_config_done(&a);
        assert_ok(parse(&a, &msg, "-trustDomain", "example.org", "-maxEntries", "1", NULL));
        assert_int_equal(a.max_entries, 1);
        assert_ok(parse(&b, &msg, "-trustDomain", "example.org", "-maxEntries", "1000000", NULL));
        assert_int_equal(b.max_entries, AGENT_MAX_ENTRIES_MAX);
        assert_int_equal(agent_config_restart_changes(&a, &b, names, ELEMENTSOF(names)), 1);
        assert_string_equal(names[0], "maxEntries");
        agent_config_done(&a);
        agent_config_done(&b);
        expect_error("-maxEntries: must be 1..1000000, got 0", "-trustDomain", "example.org",
                     "-maxEntries", "0", NULL);
        expect_error("-maxEntries: must be 1..1000000, got 1000001", "-trustDomain", "example.org",
                     "-maxEntries", "1000001", NULL);
        expect_error("-maxEntries: must be 1..1000000, got -5", "-trustDomain", "example.org",
                     "-maxEntries", "-5", NULL);
        expect_error("-maxEntries", "-trustDomain", "example.org", "-maxEntries", "many", NULL);

        /* the config file; the flag wins */
        assert_true(asprintf(&conf, "%s/agent.conf", dir) > 0);
        f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f, "trustDomain = \"example.org\"\nmaxEntries = 2500\n");
        fclose(f);
        assert_ok(parse(&a, &msg, "-config", conf, NULL));
        assert_int_equal(a.max_entries, 2500);
        agent_config_done(&a);
        assert_ok(parse(&a, &msg, "-config", conf, "-maxEntries", "7", NULL));
        assert_int_equal(a.max_entries, 7);
        agent_config_done(&a);
        f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f, "trustDomain = \"example.org\"\nmaxEntries = 0\n");
        fclose(f);
        expect_error("-maxEntries: must be 1..1000000, got 0", "-config", conf, NULL);
        test_rmdir_free(TAKE_PTR(dir));
}

/* -healthAddress, parsing for a reload, and the options that need a restart. */
static void test_config_reload(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *tok = NULL;
        const char *names[8];
        AgentConfig a = {}, b = {};
        char *msg = NULL;
        FILE *f;

        assert_ok(parse(&a, &msg, "-trustDomain", "example.org", "-healthAddress", "127.0.0.1:9090",
                        NULL));
        assert_string_equal(a.health_address, "127.0.0.1:9090");
        agent_config_done(&a);
        assert_ok(parse(&a, &msg, "-trustDomain", "example.org", "-healthAddress", "", NULL));
        assert_null(a.health_address);
        agent_config_done(&a);
        expect_error("-healthAddress: not a loopback address", "-trustDomain", "example.org",
                     "-healthAddress", "0.0.0.0:9090", NULL);
        expect_error("-healthAddress:", "-trustDomain", "example.org", "-healthAddress", "nonsense",
                     NULL);

        /* A reload leaves the token file unread: it may be gone by then. */
        assert_true(asprintf(&tok, "%s/token", dir) > 0);
        f = fopen(tok, "w");
        fprintf(f, "secret-token\n");
        fclose(f);
        char *argv[] = {"run", "-trustDomain", "example.org", "-joinTokenFile",
                        tok,   "-logLevel",    "info"};
        assert_ok(agent_config_parse(ELEMENTSOF(argv), argv, &a, &msg));
        assert_string_equal(a.join_token, "secret-token");
        assert_string_equal(a.join_token_file, tok);
        assert_int_equal(unlink(tok), 0);
        assert_true(agent_config_parse(ELEMENTSOF(argv), argv, &b, &msg) < 0);
        free(TAKE_PTR(msg));
        assert_ok(agent_config_parse_flags(ELEMENTSOF(argv), argv, AGENT_CONFIG_SKIP_TOKEN_FILE, &b,
                                           &msg));
        assert_null(b.join_token);
        assert_string_equal(b.join_token_file, tok);
        assert_int_equal(agent_config_restart_changes(&a, &b, names, ELEMENTSOF(names)), 0);
        agent_config_done(&b);

        /* logLevel and workloadKeyType may change at run time; the rest needs a restart. */
        char *argv2[] = {"run",         "-trustDomain",   "example.org", "-joinTokenFile",
                         tok,           "-logLevel",      "debug",       "-workloadKeyType",
                         "ec-p384",     "-serverPort",    "9000",        "-socketPath",
                         "/run/x.sock", "-healthAddress", "[::1]:1"};
        assert_ok(agent_config_parse_flags(ELEMENTSOF(argv2), argv2, AGENT_CONFIG_SKIP_TOKEN_FILE,
                                           &b, &msg));
        assert_int_equal(agent_config_restart_changes(&a, &b, names, ELEMENTSOF(names)), 3);
        assert_string_equal(names[0], "serverPort");
        assert_string_equal(names[1], "socketPath");
        assert_string_equal(names[2], "healthAddress");
        assert_int_equal(agent_config_restart_changes(&a, &b, names, 1), 3); /* counts all */
        assert_int_equal(agent_config_restart_changes(&a, &b, NULL, 0), 3);
        agent_config_done(&b);

        /* The join token: a changed flag value, or the file named instead. */
        char *argv3[] = {"run", "-trustDomain", "example.org", "-joinToken", "other"};
        assert_ok(agent_config_parse(ELEMENTSOF(argv3), argv3, &b, &msg));
        assert_int_equal(agent_config_restart_changes(&a, &b, names, ELEMENTSOF(names)), 1);
        assert_string_equal(names[0], "joinToken");
        agent_config_done(&a);
        char *argv4[] = {"run", "-trustDomain", "example.org", "-joinToken", "first"};
        assert_ok(agent_config_parse(ELEMENTSOF(argv4), argv4, &a, &msg));
        assert_int_equal(agent_config_restart_changes(&a, &b, names, ELEMENTSOF(names)), 1);
        agent_config_done(&b);
        assert_ok(agent_config_parse(ELEMENTSOF(argv4), argv4, &b, &msg));
        assert_int_equal(agent_config_restart_changes(&a, &b, names, ELEMENTSOF(names)), 0);
        agent_config_done(&a);
        agent_config_done(&b);

        /* An unread token file still conflicts with x509pop. */
        char *argv5[] = {"run",          "-trustDomain", "example.org", "-joinTokenFile",
                         "/nonexistent", "-x509popCert", "/dev/null",   "-x509popKey",
                         "/dev/null"};
        assert_true(agent_config_parse_flags(ELEMENTSOF(argv5), argv5, AGENT_CONFIG_SKIP_TOKEN_FILE,
                                             &b, &msg) < 0);
        assert_non_null(strstr(msg, "not both"));
        free(msg);
        test_rmdir_free(TAKE_PTR(dir));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_config_limits),
                cmocka_unit_test(test_config_max_entries),
                cmocka_unit_test(test_config_reload),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
