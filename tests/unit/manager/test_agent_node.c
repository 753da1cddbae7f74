/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's config parsing, the node identity files (save/load, modes, tampering),
 * the x509pop payload layout, and the thread queue. */
#define _GNU_SOURCE

#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <warden/x509.h>

#include "config.h"
#include "node_identity.h"
#include "ossl_cleanup.h"
#include "taskq.h"
#include "testlib.h"

#define AGENT_ID "spiffe://example.org/warden/agent/join_token/abc"

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

typedef struct Pki {
        EVP_PKEY *ca_key, *node_key;
        X509 *ca;
        WardenBundle *bundle;
} Pki;

static NodeIdentity *make_identity(Pki *pki, const char *id, int64_t ttl) {
        NodeIdentity *n = calloc(1, sizeof(*n));
        X509 *leaf = NULL;

        assert_non_null(n);
        if (!pki->ca) {
                assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &pki->ca_key));
                assert_ok(warden_ca_create_self_signed(pki->ca_key, "example.org", 3600, 0,
                                                       &pki->ca));
                assert_ok(warden_bundle_new("example.org", &pki->bundle));
                assert_ok(warden_bundle_add_x509_authority(pki->bundle, pki->ca));
                warden_bundle_set_sequence(pki->bundle, 3);
        }
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &n->key));
        WardenSvidParams p = {
                .ca_cert = pki->ca,
                .ca_key = pki->ca_key,
                .public_key = n->key,
                .spiffe_id = id,
                .ttl_seconds = ttl,
        };
        assert_ok(warden_svid_sign(&p, &leaf));
        n->chain = sk_X509_new_null();
        assert_true(sk_X509_push(n->chain, leaf) > 0);
        n->spiffe_id = strdup(id);
        n->bundle = warden_bundle_ref(pki->bundle);
        n->not_before = (int64_t) warden_x509_not_before(leaf);
        n->not_after = (int64_t) warden_x509_not_after(leaf);
        return n;
}

static void pki_done(Pki *pki) {
        EVP_PKEY_free(pki->ca_key);
        X509_free(pki->ca);
        warden_bundle_unref(pki->bundle);
}

static mode_t file_mode(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        assert_int_equal(stat(p, &st), 0);
        return st.st_mode & 07777;
}

static void test_identity_files(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *bundle_path = NULL, *key_path = NULL;
        _cleanup_(node_identity_freep) NodeIdentity *id = NULL, *loaded = NULL, *other = NULL;
        const char *reason = NULL;
        Pki pki = {};

        assert_errno(node_identity_load(dir, "example.org", NULL, &loaded, &reason), ENOENT);
        id = make_identity(&pki, AGENT_ID, 600);
        assert_ok(node_identity_save(id, dir));
        assert_int_equal(file_mode(dir, NODE_IDENTITY_SVID_FILE), 0600);
        assert_int_equal(file_mode(dir, NODE_IDENTITY_KEY_FILE), 0600);
        assert_int_equal(file_mode(dir, NODE_IDENTITY_BUNDLE_FILE), 0600);
        assert_ok(node_identity_load(dir, "example.org", NULL, &loaded, &reason));
        assert_string_equal(loaded->spiffe_id, AGENT_ID);
        assert_int_equal(loaded->not_after, id->not_after);
        assert_true(warden_key_public_equal(loaded->key, id->key));
        assert_true(warden_bundle_equal(loaded->bundle, pki.bundle)); /* incl. sequence */
        assert_false(node_identity_expired(loaded, time(NULL)));
        assert_true(node_identity_expired(loaded, loaded->not_after));
        assert_int_equal(node_identity_renew_at(loaded),
                         loaded->not_before + (loaded->not_after - loaded->not_before) / 2);
        loaded = node_identity_free(loaded);

        /* another trust domain refuses the files */
        assert_errno(node_identity_load(dir, "other.org", NULL, &loaded, &reason), EBADMSG);

        /* no bundle.json: the bootstrap bundle, or -ENOKEY without one */
        assert_true(asprintf(&bundle_path, "%s/%s", dir, NODE_IDENTITY_BUNDLE_FILE) > 0);
        assert_int_equal(unlink(bundle_path), 0);
        assert_errno(node_identity_load(dir, "example.org", NULL, &loaded, &reason), ENOKEY);
        assert_ok(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason));
        loaded = node_identity_free(loaded);

        /* a key that does not match the SVID */
        other = make_identity(&pki, AGENT_ID, 600);
        assert_true(asprintf(&key_path, "%s/%s", dir, NODE_IDENTITY_KEY_FILE) > 0);
        assert_ok(warden_key_write_file(key_path, other->key));
        assert_errno(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason), EBADMSG);
        assert_string_equal(reason, "node SVID does not match its key");

        /* a key readable by others is refused */
        assert_ok(warden_key_write_file(key_path, id->key));
        assert_int_equal(chmod(key_path, 0644), 0);
        assert_true(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason) < 0);
        assert_int_equal(chmod(key_path, 0600), 0);
        assert_ok(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason));

        /* a corrupt bundle.json */
        assert_ok(node_identity_write_file_atomic(bundle_path, "{\"keys\":", 8, 0600));
        loaded = node_identity_free(loaded);
        assert_errno(node_identity_load(dir, "example.org", NULL, &loaded, &reason), EBADMSG);
        pki_done(&pki);
        test_rmdir_free(TAKE_PTR(dir));
}

/* chattr +i / -i on a directory; false where the file system or our capabilities do not
 * allow it. */
static bool set_immutable(const char *path, bool on) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0;
        bool ok;

        assert_true(fd >= 0);
        ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
        close(fd);
        return ok;
}

/* The node SVID of dir is the one of `want` (same key). */
static void assert_loads(const char *dir, const Pki *pki, const NodeIdentity *want) {
        _cleanup_(node_identity_freep) NodeIdentity *loaded = NULL;
        const char *reason = NULL;

        assert_ok(node_identity_load(dir, "example.org", pki->bundle, &loaded, &reason));
        assert_true(warden_key_public_equal(loaded->key, want->key));
        assert_int_equal(X509_cmp(sk_X509_value(loaded->chain, 0), sk_X509_value(want->chain, 0)),
                         0);
}

/* Saving a renewed node SVID: whatever point a save stops at, the files load as the old
 * pair or as the new one, never as a chain with the wrong key. */
static void test_identity_save_steps(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *svid = NULL, *key = NULL, *next_key = NULL;
        _cleanup_(node_identity_freep) NodeIdentity *s1 = NULL, *s2 = NULL, *s3 = NULL;
        Pki pki = {};

        s1 = make_identity(&pki, AGENT_ID, 600);
        s2 = make_identity(&pki, AGENT_ID, 600);
        s3 = make_identity(&pki, AGENT_ID, 600);
        assert_true(asprintf(&svid, "%s/%s", dir, NODE_IDENTITY_SVID_FILE) > 0);
        assert_true(asprintf(&key, "%s/%s", dir, NODE_IDENTITY_KEY_FILE) > 0);
        assert_true(asprintf(&next_key, "%s/%s", dir, NODE_IDENTITY_KEY_NEXT_FILE) > 0);
        assert_ok(node_identity_save(s1, dir));
        assert_int_equal(access(next_key, F_OK), -1);
        assert_loads(dir, &pki, s1);

        /* Stopped after the commit point (the chain is new, the key still old): the new
         * pair, and the load finishes the save. */
        assert_ok(warden_key_write_file(next_key, s2->key));
        assert_ok(warden_x509_write_pem_file(svid, s2->chain, 0600));
        assert_loads(dir, &pki, s2);
        assert_int_equal(access(next_key, F_OK), -1);
        assert_loads(dir, &pki, s2);

        /* Stopped before it (only the next key written): the old pair. */
        assert_ok(warden_key_write_file(next_key, s3->key));
        assert_loads(dir, &pki, s2);

        /* A data dir that refuses new files (read-only, full): the save fails, the old pair
         * stays. */
        if (set_immutable(dir, true)) {
                assert_true(node_identity_save_svid(s3, dir) < 0);
                assert_true(set_immutable(dir, false));
                assert_loads(dir, &pki, s2);
        } else
                print_message("chattr +i not possible here, read-only save case skipped\n");

        assert_ok(node_identity_save_svid(s3, dir));
        assert_int_equal(access(next_key, F_OK), -1);
        assert_loads(dir, &pki, s3);
        pki_done(&pki);
        test_rmdir_free(TAKE_PTR(dir));
}

static void test_x509pop_payload(void **state) {
        const uint8_t nonce[3] = {1, 2, 3}, csr[2] = {0xaa, 0xbb};
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        assert_ok(
                node_identity_x509pop_payload(nonce, sizeof(nonce), csr, sizeof(csr), &buf, &len));
        assert_int_equal(len, strlen("warden-x509pop-v1") + 5);
        assert_memory_equal(buf, "warden-x509pop-v1", 17);
        assert_memory_equal(buf + 17, nonce, 3);
        assert_memory_equal(buf + 20, csr, 2);
}

static void append(void *p) {
        char *s = p;
        static char out[16];

        strncat(out, s, sizeof(out) - strlen(out) - 1);
        if (streq(s, "!"))
                assert_string_equal(out, "bac!");
}

static int destroyed;
static void destroy(void *p) {
        destroyed++;
}

static void *worker(void *p) {
        taskq_run(p);
        return NULL;
}

static int ran;
static void count(void *p) {
        __atomic_add_fetch(&ran, 1, __ATOMIC_SEQ_CST);
}

static void test_taskq(void **state) {
        TaskQueue *q = NULL;
        pthread_t t;

        assert_ok(taskq_new(true, &q));
        assert_true(taskq_fd(q) >= 0);
        assert_ok(taskq_push(q, append, destroy, "a"));
        assert_ok(taskq_push(q, append, destroy, "c"));
        assert_ok(taskq_push_front(q, append, destroy, "b"));
        assert_ok(taskq_push(q, append, destroy, "!"));
        assert_int_equal(taskq_dispatch(q), 4);
        assert_int_equal(taskq_dispatch(q), 0);
        assert_ok(taskq_push(q, append, destroy, "x"));
        assert_ok(taskq_push(q, append, destroy, "y"));
        taskq_close(q);
        assert_int_equal(destroyed, 2);
        assert_errno(taskq_push(q, append, destroy, "z"), ESHUTDOWN);
        taskq_free(q);

        /* a worker thread runs everything pushed, then stops on close */
        assert_ok(taskq_new(false, &q));
        assert_errno(taskq_fd(q), EBADF);
        assert_ok(taskq_thread_create(&t, worker, q));
        for (int i = 0; i < 100; i++)
                assert_ok(taskq_push(q, count, NULL, NULL));
        for (int i = 0; i < 500 && __atomic_load_n(&ran, __ATOMIC_SEQ_CST) < 100; i++)
                usleep(2000);
        assert_int_equal(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 100);
        taskq_close(q);
        assert_int_equal(pthread_join(t, NULL), 0);
        taskq_free(q);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_config_limits),
                cmocka_unit_test(test_config_reload),
                cmocka_unit_test(test_identity_files),
                cmocka_unit_test(test_identity_save_steps),
                cmocka_unit_test(test_x509pop_payload),
                cmocka_unit_test(test_taskq),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
