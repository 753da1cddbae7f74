/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server run` configuration: defaults, flags, config file precedence and a
 * specific error message for every kind of bad input. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "server_config.h"
#include "sign_pool.h"
#include "testlib.h"

static char *tmpdir;

static int setup(void **state) {
        tmpdir = test_tmpdir();
        assert_non_null(tmpdir);
        return 0;
}

static int teardown(void **state) {
        test_rmdir_free(tmpdir);
        tmpdir = NULL;
        return 0;
}

/* Writes content to <tmpdir>/name and returns the malloc'd path. */
static char *write_file(const char *name, const char *content) {
        char *path;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
        return path;
}

#define ARGV(...) ((char *[]){"run", __VA_ARGS__, NULL})
#define ARGC(...) ((int) (sizeof((char *[]){"run", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(cfg, msg, ...) server_config_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), cfg, msg)

static void test_defaults(void **state) {
        ServerConfig c = {};
        _cleanup_free_ char *msg = NULL;

        assert_ok(PARSE(&c, &msg, "-trustDomain", "example.org"));
        assert_string_equal(c.trust_domain, "example.org");
        assert_string_equal(c.data_dir, SERVER_DEFAULT_DATA_DIR);
        assert_string_equal(c.bind_address, "127.0.0.1");
        assert_int_equal(c.port, 8081);
        assert_string_equal(c.socket_path, "/run/warden/server.sock");
        assert_int_equal(c.log_level, LOG_INFO);
        assert_int_equal(c.default_x509_ttl, 3600);
        assert_int_equal(c.default_jwt_ttl, 300);
        assert_int_equal(c.ca_ttl, 86400);
        assert_int_equal(c.ca_key_type, WARDEN_KEY_EC_P256);
        assert_null(c.upstream_cert);
        assert_null(c.upstream_key);
        assert_null(c.x509pop_ca);
        assert_int_equal(c.n_admin_uids, 0);
        assert_null(c.health_address);
        assert_int_equal(c.min_x509_ttl, 30);
        assert_int_equal(c.min_jwt_ttl, 10);
        assert_false(c.force_new_ca);
        assert_int_equal(c.ds_cache_mib, 64);
        assert_int_equal(c.ds_mmap_mib, 0);
        assert_int_equal(c.node_max_connections, 8192);
        assert_int_equal(c.node_max_unauth_per_source, 64);
        assert_int_equal(c.node_handshake_timeout, 10);
        assert_int_equal(c.attest_rate_per_source, 10);
        assert_int_equal(c.signing_threads, sign_pool_default_threads());
        assert_true(c.signing_threads >= 1);
        server_config_done(&c);
        assert_null(c.trust_domain);
}

/* The node API limits: set, switched off with 0, and out of range. */
static void test_node_limits(void **state) {
        ServerConfig c = {};
        _cleanup_free_ char *msg = NULL;

        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-nodeMaxConnections", "100",
                        "-nodeMaxUnauthPerSource", "0", "-nodeHandshakeTimeout", "0",
                        "-attestRatePerSource", "0"));
        assert_int_equal(c.node_max_connections, 100);
        assert_int_equal(c.node_max_unauth_per_source, 0);
        assert_int_equal(c.node_handshake_timeout, 0);
        assert_int_equal(c.attest_rate_per_source, 0);
        server_config_done(&c);
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-nodeHandshakeTimeout", "2s"));
        assert_int_equal(c.node_handshake_timeout, 2);
        server_config_done(&c);
        /* -signingThreads: 0 signs on the main thread, -1 is one per online CPU. */
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-signingThreads", "0"));
        assert_int_equal(c.signing_threads, 0);
        server_config_done(&c);
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-signingThreads", "3"));
        assert_int_equal(c.signing_threads, 3);
        server_config_done(&c);
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-signingThreads", "-1"));
        assert_int_equal(c.signing_threads, sign_pool_default_threads());
        server_config_done(&c);
}

static void test_min_ttls(void **state) {
        _cleanup_free_ char *msg = NULL;
        ServerConfig c = {};

        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-defaultX509SVIDTTL", "10s",
                        "-minX509SVIDTTL", "5s", "-minJWTSVIDTTL", "1m", "-forceNewCA"));
        assert_int_equal(c.min_x509_ttl, 5);
        assert_int_equal(c.min_jwt_ttl, 60);
        assert_true(c.force_new_ca);
        server_config_done(&c);
}

/* server_config_parse_all(): every independent problem, in order. */
static void test_all_problems(void **state) {
        ConfigProblems p = {};
        ServerConfig c = {};
        char *argv[] = {"run",
                        "-logLevel",
                        "loud",
                        "-caKeyType",
                        "dsa",
                        "-bindAddress",
                        "host",
                        "-defaultJWTSVIDTTL",
                        "5s",
                        "-socketPath",
                        "rel.sock",
                        "-x509popCA",
                        "/nonexistent/ca.pem",
                        NULL};

        assert_errno(server_config_parse_all((int) ELEMENTSOF(argv) - 1, argv, &c, &p), EINVAL);
        assert_null(c.data_dir);
        assert_int_equal(p.n, 7);
        assert_string_equal(p.v[0], "-trustDomain is required");
        assert_non_null(strstr(p.v[1], "-logLevel: unknown level \"loud\""));
        assert_non_null(strstr(p.v[2], "-caKeyType: unknown key type \"dsa\""));
        assert_non_null(strstr(p.v[3], "-socketPath: must be an absolute path"));
        assert_non_null(strstr(p.v[4], "-bindAddress: not an IP address: \"host\""));
        assert_non_null(strstr(p.v[5], "-x509popCA: cannot read /nonexistent/ca.pem"));
        assert_string_equal(p.v[6], "-defaultJWTSVIDTTL: 5s is shorter than -minJWTSVIDTTL 10s");
        server_config_problems_done(&p);
        assert_int_equal(p.n, 0);

        /* A syntax error stops at once: one problem. */
        char *bad[] = {"run", "-nosuchflag", "x", "-logLevel", "loud", NULL};
        assert_errno(server_config_parse_all(5, bad, &c, &p), EINVAL);
        assert_int_equal(p.n, 1);
        assert_non_null(strstr(p.v[0], "unknown flag: -nosuchflag"));
        server_config_problems_done(&p);
}

static void test_health_address(void **state) {
        _cleanup_free_ char *msg = NULL;
        ServerConfig c = {};

        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-healthAddress", "127.0.0.1:9090"));
        assert_string_equal(c.health_address, "127.0.0.1:9090");
        server_config_done(&c);
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-healthAddress", "[::1]:0"));
        assert_string_equal(c.health_address, "[::1]:0");
        server_config_done(&c);
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-healthAddress", "localhost:1"));
        server_config_done(&c);
        /* Empty is off. */
        assert_ok(PARSE(&c, &msg, "-trustDomain", "a.b", "-healthAddress", ""));
        assert_null(c.health_address);
        server_config_done(&c);
}

static void test_restart_changes(void **state) {
        _cleanup_free_ char *msg = NULL;
        ServerConfig a = {}, b = {};
        const char *names[3];

        assert_ok(PARSE(&a, &msg, "-trustDomain", "a.b"));
        /* Only run-time options differ: nothing needs a restart. */
        assert_ok(PARSE(&b, &msg, "-trustDomain", "a.b", "-logLevel", "debug",
                        "-defaultX509SVIDTTL", "5m", "-defaultJWTSVIDTTL", "1m", "-adminUIDs",
                        "1000"));
        assert_int_equal(server_config_restart_changes(&a, &b, names, 3), 0);
        assert_int_equal(server_config_restart_changes(&a, &a, NULL, 0), 0);
        server_config_done(&b);

        assert_ok(PARSE(&b, &msg, "-trustDomain", "c.d", "-serverPort", "1", "-caTTL", "2h",
                        "-healthAddress", "127.0.0.1:1", "-dataDir", "/x", "-caKeyType",
                        "ec-p384"));
        assert_int_equal(server_config_restart_changes(&a, &b, names, 3), 6);
        assert_string_equal(names[0], "trustDomain");
        assert_string_equal(names[1], "dataDir");
        assert_string_equal(names[2], "serverPort");
        assert_int_equal(server_config_restart_changes(&b, &a, NULL, 0), 6);
        server_config_done(&b);

        assert_ok(PARSE(&b, &msg, "-trustDomain", "a.b", "-socketPath", "/s.sock", "-bindAddress",
                        "::1"));
        assert_int_equal(server_config_restart_changes(&a, &b, names, 3), 2);
        assert_string_equal(names[0], "bindAddress");
        assert_string_equal(names[1], "socketPath");
        server_config_done(&b);

        assert_ok(PARSE(&b, &msg, "-trustDomain", "a.b", "-datastoreCacheMiB", "256",
                        "-datastoreMmapMiB", "1024"));
        assert_int_equal(b.ds_cache_mib, 256);
        assert_int_equal(b.ds_mmap_mib, 1024);
        assert_int_equal(server_config_restart_changes(&a, &b, names, 3), 2);
        assert_string_equal(names[0], "datastoreCacheMiB");
        assert_string_equal(names[1], "datastoreMmapMiB");
        server_config_done(&b);
        server_config_done(&a);
}

static void test_all_flags(void **state) {
        _cleanup_free_ char *cert = write_file("up.pem", "x"), *key = write_file("up.key", "y");
        _cleanup_free_ char *pop = write_file("pop.pem", "z"), *up = NULL, *msg = NULL;
        ServerConfig c = {};

        assert_true(asprintf(&up, "%s,%s", cert, key) > 0);
        assert_ok(PARSE(&c, &msg, "-trustDomain", "td.test", "-dataDir", "/tmp/d", "-bindAddress",
                        "::1", "-serverPort", "0", "-socketPath", "/tmp/s.sock", "-logLevel",
                        "debug", "-defaultX509SVIDTTL", "30m", "-defaultJWTSVIDTTL", "90", "-caTTL",
                        "2d", "-caKeyType", "rsa-2048", "-upstreamCA", up, "-x509popCA", pop,
                        "-adminUIDs", "1000, 1001", "-adminUIDs", "root"));
        assert_string_equal(c.bind_address, "::1");
        assert_int_equal(c.port, 0);
        assert_int_equal(c.log_level, LOG_DEBUG);
        assert_int_equal(c.default_x509_ttl, 1800);
        assert_int_equal(c.default_jwt_ttl, 90);
        assert_int_equal(c.ca_ttl, 2 * 86400);
        assert_int_equal(c.ca_key_type, WARDEN_KEY_RSA_2048);
        assert_string_equal(c.upstream_cert, cert);
        assert_string_equal(c.upstream_key, key);
        assert_string_equal(c.x509pop_ca, pop);
        assert_int_equal(c.n_admin_uids, 3);
        assert_int_equal(c.admin_uids[0], 1000);
        assert_int_equal(c.admin_uids[1], 1001);
        assert_int_equal(c.admin_uids[2], 0);
        server_config_done(&c);
}

static void test_config_file(void **state) {
        _cleanup_free_ char *conf = write_file("server.conf", "# comment\n"
                                                              "trustDomain = \"file.test\"\n"
                                                              "serverPort = 9000\n"
                                                              "caKeyType = ec-p384\n"
                                                              "adminUIDs = { \"7\", \"8\" }\n"
                                                              "defaultJWTSVIDTTL = \"1m\"\n");
        _cleanup_free_ char *msg = NULL;
        ServerConfig c = {};

        assert_ok(PARSE(&c, &msg, "-config", conf, "-serverPort", "9001"));
        assert_string_equal(c.trust_domain, "file.test");
        assert_int_equal(c.port, 9001); /* flags win */
        assert_int_equal(c.ca_key_type, WARDEN_KEY_EC_P384);
        assert_int_equal(c.default_jwt_ttl, 60);
        assert_int_equal(c.n_admin_uids, 2);
        assert_int_equal(c.admin_uids[1], 8);
        server_config_done(&c);
}

/* Parses argv, expects failure with a message containing `want`. */
static void expect_error(int argc, char **argv, const char *want) {
        _cleanup_free_ char *msg = NULL;
        ServerConfig c = {};
        int r;

        r = server_config_parse(argc, argv, &c, &msg);
        if (r >= 0)
                fail_msg("parse succeeded, expected an error containing '%s'", want);
        if (!msg)
                fail_msg("no message, expected one containing '%s' (r=%d)", want, r);
        if (!strstr(msg, want))
                fail_msg("message '%s' does not contain '%s'", msg, want);
        assert_null(c.trust_domain);
}

#define EXPECT_ERROR(want, ...) expect_error(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), want)

static void test_bad_flags(void **state) {
        EXPECT_ERROR("-trustDomain is required", "-serverPort", "1");
        EXPECT_ERROR("-trustDomain: invalid trust domain \"Example.org\"", "-trustDomain",
                     "Example.org");
        EXPECT_ERROR("-serverPort: not a port number", "-trustDomain", "a.b", "-serverPort",
                     "70000");
        EXPECT_ERROR("-serverPort: not a port number", "-trustDomain", "a.b", "-serverPort",
                     "http");
        EXPECT_ERROR("-caKeyType: unknown key type \"dsa\"", "-trustDomain", "a.b", "-caKeyType",
                     "dsa");
        EXPECT_ERROR("-caTTL: not a duration", "-trustDomain", "a.b", "-caTTL", "1w");
        EXPECT_ERROR("-caTTL: must be at least 10s", "-trustDomain", "a.b", "-caTTL", "9s");
        EXPECT_ERROR("-defaultX509SVIDTTL: must be longer than 0s", "-trustDomain", "a.b",
                     "-defaultX509SVIDTTL", "0");
        EXPECT_ERROR("-defaultJWTSVIDTTL: 400d is longer than the maximum", "-trustDomain", "a.b",
                     "-defaultJWTSVIDTTL", "400d");
        EXPECT_ERROR("-defaultX509SVIDTTL: 10s is shorter than -minX509SVIDTTL 30s", "-trustDomain",
                     "a.b", "-defaultX509SVIDTTL", "10s");
        EXPECT_ERROR("-minJWTSVIDTTL: must be longer than 0s", "-trustDomain", "a.b",
                     "-minJWTSVIDTTL", "0");
        EXPECT_ERROR("-forceNewCA: not a boolean", "-trustDomain", "a.b", "-forceNewCA=maybe");
        EXPECT_ERROR("-bindAddress: not an IP address: \"localhost\"", "-trustDomain", "a.b",
                     "-bindAddress", "localhost");
        EXPECT_ERROR("-socketPath: must be an absolute path", "-trustDomain", "a.b", "-socketPath",
                     "rel.sock");
        EXPECT_ERROR("-socketPath: longer than", "-trustDomain", "a.b", "-socketPath",
                     "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock");
        EXPECT_ERROR("-upstreamCA: expected CERT.pem,KEY.pem", "-trustDomain", "a.b", "-upstreamCA",
                     "only.pem");
        EXPECT_ERROR("-upstreamCA: cannot read /nonexistent/c.pem", "-trustDomain", "a.b",
                     "-upstreamCA", "/nonexistent/c.pem,/nonexistent/k.pem");
        EXPECT_ERROR("-x509popCA: cannot read /nonexistent/ca.pem", "-trustDomain", "a.b",
                     "-x509popCA", "/nonexistent/ca.pem");
        EXPECT_ERROR("-adminUIDs: no such user or bad uid \"nosuchuser-xyz\"", "-trustDomain",
                     "a.b", "-adminUIDs", "1000,nosuchuser-xyz");
        EXPECT_ERROR("-logLevel: unknown level \"loud\"", "-trustDomain", "a.b", "-logLevel",
                     "loud");
        EXPECT_ERROR("-healthAddress: not a loopback address", "-trustDomain", "a.b",
                     "-healthAddress", "0.0.0.0:9090");
        EXPECT_ERROR("-healthAddress: not a loopback address", "-trustDomain", "a.b",
                     "-healthAddress", "[::]:9090");
        EXPECT_ERROR("-healthAddress: expected HOST:PORT: \"9090\"", "-trustDomain", "a.b",
                     "-healthAddress", "9090");
        EXPECT_ERROR("-healthAddress: bad port", "-trustDomain", "a.b", "-healthAddress",
                     "127.0.0.1:http");
        EXPECT_ERROR("-healthAddress: host must be", "-trustDomain", "a.b", "-healthAddress",
                     "example.org:80");
        EXPECT_ERROR("-datastoreCacheMiB: must be between 1 and 65536", "-trustDomain", "a.b",
                     "-datastoreCacheMiB", "0");
        EXPECT_ERROR("-datastoreCacheMiB: must be between 1 and 65536", "-trustDomain", "a.b",
                     "-datastoreCacheMiB", "65537");
        EXPECT_ERROR("-datastoreMmapMiB: must be between 0 and 65536", "-trustDomain", "a.b",
                     "-datastoreMmapMiB", "-1");
        EXPECT_ERROR("-nodeMaxConnections: must be 1..1000000, got 0", "-trustDomain", "a.b",
                     "-nodeMaxConnections", "0");
        EXPECT_ERROR("-nodeMaxUnauthPerSource: must be 0..1000000, got 1000001", "-trustDomain",
                     "a.b", "-nodeMaxUnauthPerSource", "1000001");
        EXPECT_ERROR("-attestRatePerSource: must be 0..100000, got 100001", "-trustDomain", "a.b",
                     "-attestRatePerSource", "100001");
        EXPECT_ERROR("-signingThreads: must be -1 (one per online CPU) or 0..256, got 257",
                     "-trustDomain", "a.b", "-signingThreads", "257");
        EXPECT_ERROR("-signingThreads: must be -1 (one per online CPU) or 0..256, got -2",
                     "-trustDomain", "a.b", "-signingThreads", "-2");
        EXPECT_ERROR("-nodeHandshakeTimeout: must be 0..1h", "-trustDomain", "a.b",
                     "-nodeHandshakeTimeout", "2h");
        EXPECT_ERROR("unknown flag: -trustDomian", "-trustDomian", "a.b");
        EXPECT_ERROR("-trustDomain: missing value", "-trustDomain");
        EXPECT_ERROR("unexpected argument \"extra\"", "-trustDomain", "a.b", "extra");
}

static void test_bad_config_file(void **state) {
        _cleanup_free_ char *bad_key = write_file("k.conf", "trustDomian = \"a.b\"\n");
        _cleanup_free_ char *bad_val = write_file("v.conf", "trustDomain = a.b\nserverPort = x\n");
        _cleanup_free_ char *garbage = write_file("g.conf", "{{{ not a config\n");

        EXPECT_ERROR("no such option 'trustDomian'", "-config", bad_key);
        EXPECT_ERROR("serverPort: not a port number", "-config", bad_val);
        EXPECT_ERROR("g.conf", "-config", garbage);
        EXPECT_ERROR("/nonexistent/server.conf", "-config", "/nonexistent/server.conf");
}

static void test_help(void **state) {
        ServerConfig c = {};

        assert_int_equal(PARSE(&c, NULL, "-h"), -ECANCELED);
        assert_null(c.trust_domain);
}

static void test_parse_uids(void **state) {
        _cleanup_free_ uid_t *uids = NULL;
        const char *bad = NULL;
        size_t n = 0;

        assert_ok(server_config_parse_uids(" 5 ,root,  42", &uids, &n, &bad));
        assert_int_equal(n, 3);
        assert_int_equal(uids[0], 5);
        assert_int_equal(uids[1], 0);
        assert_int_equal(uids[2], 42);
        assert_errno(server_config_parse_uids("7,-1", &uids, &n, &bad), EINVAL);
        assert_string_equal(bad, "-1");
        assert_errno(server_config_parse_uids("4294967295", &uids, &n, &bad), EINVAL);
        assert_int_equal(n, 4); /* 7 was appended before -1 failed */
}

static void test_uid_cap(void **state) {
        _cleanup_free_ uid_t *uids = NULL;
        _cleanup_free_ char *many = NULL;
        size_t n = 0, len = 0;
        FILE *f = open_memstream(&many, &len);

        assert_non_null(f);
        for (int i = 0; i < 65; i++)
                fprintf(f, "%s%d", i ? "," : "", 1000 + i);
        fclose(f);
        assert_errno(server_config_parse_uids(many, &uids, &n, NULL), E2BIG);
        assert_int_equal(n, 64);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_min_ttls),
                cmocka_unit_test(test_all_problems),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_node_limits),
                cmocka_unit_test_setup_teardown(test_all_flags, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
                cmocka_unit_test(test_bad_flags),
                cmocka_unit_test_setup_teardown(test_bad_config_file, setup, teardown),
                cmocka_unit_test(test_help),
                cmocka_unit_test(test_health_address),
                cmocka_unit_test(test_restart_changes),
                cmocka_unit_test(test_parse_uids),
                cmocka_unit_test(test_uid_cap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
