/* SPDX-License-Identifier: Apache-2.0 */
/* The `api` CLI (agent/cli_api*.c) in-process against a real Workload API: socket
 * address parsing, usage errors, fetch x509 -write (files, modes, contents), fetch jwt
 * + validate jwt round trip, bundles, healthcheck. Output is captured from stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <warden/jwtsvid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "cli_api.h"
#include "cli_api_internal.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "wapi_harness.h"

#define ID_ROOT "spiffe://" FX_TD "/workload/root"

/* Runs agent_cli_api/healthcheck with the words given; returns the exit status and
 * (if ret_out) what it printed on stdout. */
static int cli(char **ret_out, const char *const *words) {
        _cleanup_free_ char *path = NULL;
        char *argv[32];
        int argc = 0, saved, fd, rc;

        while (words[argc]) {
                argv[argc] = (char *) words[argc];
                argc++;
        }
        argv[argc] = NULL;
        assert_true(asprintf(&path, "/tmp/wapi-cli-out.%d", (int) getpid()) > 0);
        fflush(stdout);
        saved = dup(STDOUT_FILENO);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(saved >= 0 && fd >= 0);
        dup2(fd, STDOUT_FILENO);
        close(fd);
        rc = streq(argv[0], "healthcheck") ? agent_cli_healthcheck(argc, argv)
                                           : agent_cli_api(argc, argv);
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);
        if (ret_out) {
                *ret_out = test_read_file(path, NULL);
                assert_non_null(*ret_out);
        }
        unlink(path);
        return rc;
}

#define CLI(out, ...) cli(out, (const char *const[]){__VA_ARGS__, NULL})

static void test_socket_from_env(void **state) {
        static const struct {
                const char *in, *out;
        } ok[] = {
                {"unix:///run/a.sock", "/run/a.sock"},
                {"unix:/run/a.sock", "/run/a.sock"},
                {"/run/a.sock", "/run/a.sock"},
        };
        static const char *const bad[] = {
                "",
                "tcp://127.0.0.1:8000",
                "unix://host/run/a.sock",
                "unix:relative",
                "relative",
                "unix:///a?x=1",
                "unix:///a#f",
        };
        const char *why;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *p = NULL;

                assert_ok(api_socket_from_env(ok[i].in, &p, NULL));
                assert_string_equal(p, ok[i].out);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *p = NULL;

                why = NULL;
                assert_errno(api_socket_from_env(bad[i], &p, &why), EINVAL);
                assert_non_null(why);
                assert_null(p);
        }
}

static void test_usage_errors(void **state) {
        (void) state;
        assert_int_equal(CLI(NULL, "api"), 1);
        assert_int_equal(CLI(NULL, "api", "frobnicate"), 1);
        assert_int_equal(CLI(NULL, "api", "fetch", "jwt", "-socketPath", "/nonexistent"), 1);
        assert_int_equal(CLI(NULL, "api", "fetch", "x509", "-output", "yaml"), 1);
        assert_int_equal(CLI(NULL, "api", "fetch", "x509", "extra"), 1);
        assert_int_equal(CLI(NULL, "api", "validate", "jwt", "-audience", "a"), 1);
        assert_int_equal(CLI(NULL, "api", "fetch", "x509", "-h"), 0);
        /* Nobody listens there. */
        assert_int_equal(CLI(NULL, "api", "fetch", "x509", "-socketPath", "/nonexistent/sock"), 1);
        assert_int_equal(CLI(NULL, "healthcheck", "-socketPath", "/nonexistent/sock"), 1);
}

static void check_file_mode(const char *dir, const char *name, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, mode);
}

static void test_fetch_x509_write(void **state) {
        _cleanup_free_ char *out = NULL, *dir = NULL, *p = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        STACK_OF(X509) *chain = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, fx_default_entries, fx_n_default_entries);
        dir = test_tmpdir();
        assert_int_equal(CLI(&out, "api", "fetch", "x509", "-socketPath", h.sock, "-write", dir),
                         0);
        assert_non_null(strstr(out, "Received 1 svid after"));
        assert_non_null(strstr(out, ID_ROOT));
        assert_non_null(strstr(out, "Federated bundle:  spiffe://" FX_FED_TD " (1 CA)"));
        check_file_mode(dir, "svid.0.pem", 0644);
        check_file_mode(dir, "svid.0.key", 0600);
        check_file_mode(dir, "bundle.0.pem", 0644);
        check_file_mode(dir, "federated_bundle.0.0.pem", 0644);
        /* The files hold the SVID and its key. */
        assert_true(asprintf(&p, "%s/svid.0.pem", dir) > 0);
        assert_ok(warden_x509_read_pem_file(p, &chain));
        free(p);
        assert_true(asprintf(&p, "%s/svid.0.key", dir) > 0);
        assert_ok(warden_key_read_file(p, &key));
        assert_int_equal(X509_check_private_key(sk_X509_value(chain, 0), key), 1);
        sk_X509_pop_free(chain, X509_free);
        test_rmdir_free(TAKE_PTR(dir));
        h_stop(&h);
}

static void test_fetch_jwt_validate(void **state) {
        _cleanup_(json_decrefp) json_t *j = NULL, *v = NULL;
        _cleanup_free_ char *out = NULL, *out2 = NULL, *out3 = NULL, *token = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        h_publish(&h, fx_default_entries, fx_n_default_entries);
        assert_int_equal(CLI(&out, "api", "fetch", "jwt", "-socketPath", h.sock, "-audience", "x",
                             "-audience", "y", "-output", "json"),
                         0);
        j = json_loads(out, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(json_object_get(j, "svids"), 0), "spiffe_id")),
                            ID_ROOT);
        token = strdup(json_string_value(
                json_object_get(json_array_get(json_object_get(j, "svids"), 0), "svid")));
        assert_non_null(token);
        assert_int_equal(CLI(&out2, "api", "validate", "jwt", "-socketPath", h.sock, "-audience",
                             "y", "-svid", token, "-output", "json"),
                         0);
        v = json_loads(out2, 0, NULL);
        assert_non_null(v);
        assert_string_equal(json_string_value(json_object_get(v, "spiffe_id")), ID_ROOT);
        assert_int_equal(json_array_size(json_object_get(json_object_get(v, "claims"), "aud")), 2);
        /* Wrong audience, and a foreign identity. */
        assert_int_equal(CLI(NULL, "api", "validate", "jwt", "-socketPath", h.sock, "-audience",
                             "z", "-svid", token),
                         1);
        assert_int_equal(CLI(NULL, "api", "fetch", "jwt", "-socketPath", h.sock, "-audience", "x",
                             "-spiffeID", "spiffe://" FX_TD "/workload/nobody"),
                         1);
        assert_int_equal(CLI(&out3, "api", "fetch", "jwt", "bundles", "-socketPath", h.sock), 0);
        assert_non_null(strstr(out3, "bundle(spiffe://" FX_TD "):"));
        assert_non_null(strstr(out3, FX_KID));
        h_stop(&h);
}

static void test_bundles_and_health(void **state) {
        _cleanup_free_ char *out = NULL, *out2 = NULL;
        Harness h;

        (void) state;
        h_start(&h);
        /* No snapshot yet: unhealthy. */
        assert_int_equal(CLI(NULL, "healthcheck", "-socketPath", h.sock), 1);
        assert_int_equal(CLI(NULL, "healthcheck", "-socketPath", h.sock, "-shallow"), 0);
        h_publish(&h, fx_default_entries, fx_n_default_entries);
        assert_int_equal(CLI(&out2, "healthcheck", "-socketPath", h.sock), 0);
        assert_string_equal(out2, "Agent is healthy.\n");
        /* The socket from the environment. */
        assert_int_equal(setenv("SPIFFE_ENDPOINT_SOCKET", h.sock, 1), 0);
        assert_int_equal(CLI(&out, "api", "fetch", "bundles"), 0);
        unsetenv("SPIFFE_ENDPOINT_SOCKET");
        assert_non_null(strstr(out, "bundle(spiffe://" FX_TD "):\n-----BEGIN CERTIFICATE-----"));
        assert_non_null(strstr(out, "bundle(spiffe://" FX_FED_TD "):"));
        /* Nobody's entries: fetch fails with the server's reason. */
        {
                static const FxEntry none[] = {{.entry_id = "x",
                                                .spiffe_id = "spiffe://" FX_TD "/x",
                                                .selectors = {"unix:uid:4243"}}};

                h_publish(&h, none, 1);
                assert_int_equal(CLI(NULL, "api", "fetch", "x509", "-socketPath", h.sock), 1);
                /* ... yet the agent is healthy. */
                assert_int_equal(CLI(NULL, "healthcheck", "-socketPath", h.sock), 0);
        }
        h_stop(&h);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_socket_from_env),
                cmocka_unit_test(test_usage_errors),
                cmocka_unit_test(test_fetch_x509_write),
                cmocka_unit_test(test_fetch_jwt_validate),
                cmocka_unit_test(test_bundles_and_health),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
