/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's /ready answer and STATUS= text for each state, and SIGHUP reloads on an
 * Agent with a real (unstarted) manager: logLevel and workloadKeyType applied,
 * restart-only options left alone, a broken file or a vanished token file handled. */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "agent_internal.h"
#include "log.h"
#include "manager_internal.h"
#include "testlib.h"

static void test_ready(void **state) {
        Agent a = {};
        const char *why = NULL;

        (void) state;
        assert_false(agent_is_ready(&a, &why));
        assert_string_equal(why, "not attested yet");
        agent_set_ready(&a, AGENT_READY_SYNCED);
        assert_false(agent_is_ready(&a, &why));
        assert_string_equal(why, "not attested yet");
        agent_set_ready(&a, AGENT_READY_ATTESTED);
        why = NULL;
        assert_true(agent_is_ready(&a, &why));
        assert_null(why);
        a.ready = AGENT_READY_ATTESTED;
        assert_false(agent_is_ready(&a, &why));
        assert_string_equal(why, "no sync yet");
        agent_set_ready(&a, AGENT_READY_SYNCED);
        agent_set_ready(&a, AGENT_READY_STOPPING);
        assert_false(agent_is_ready(&a, &why));
        assert_string_equal(why, "shutting down");
}

static void expect_status(Agent *a, const char *want) {
        _cleanup_free_ char *t = agent_status_text(a);

        assert_non_null(t);
        assert_string_equal(t, want);
}

static void test_status_text(void **state) {
        Agent a = {};

        (void) state;
        expect_status(&a, "Attesting");
        agent_set_ready(&a, AGENT_READY_ATTESTED);
        expect_status(&a, "Connecting to the server");
        a.ever_connected = a.connected = true;
        expect_status(&a, "Serving 0 SVIDs for 0 entries (server connected)");
        a.connected = false;
        expect_status(&a, "Serving 0 SVIDs for 0 entries (server unreachable, serving from cache)");
        /* Once shutting down, nothing else is announced. */
        a.stopping = true;
        agent_notify_status(&a, NULL);
        assert_null(a.last_status);
}

static int dummy_sign(void *ud, const ManagerSignRequest *req, size_t n, ManagerSignResult *res) {
        return -EAGAIN;
}

static int dummy_mint(void *ud,
                      const char *entry_id,
                      const char *const *aud,
                      size_t n,
                      char **token,
                      int64_t *exp,
                      int64_t *iat) {
        return -EAGAIN;
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static void test_reload(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *conf = NULL, *tok = NULL, *msg = NULL;
        ManagerConfig mc = {.trust_domain = "example.org", .key_type = WARDEN_KEY_EC_P256};
        ManagerBackend be = {.batch_sign = dummy_sign, .mint_jwt = dummy_mint};
        sd_event *e = NULL;
        Agent a = {};

        (void) state;
        unsetenv("WARDEN_LOG_LEVEL");
        unsetenv("NOTIFY_SOCKET");
        assert_true(asprintf(&conf, "%s/agent.conf", dir) > 0);
        assert_true(asprintf(&tok, "%s/token", dir) > 0);
        write_file(conf, "logLevel = info\nserverPort = 7000\n");
        write_file(tok, "tok\n");
        char *argv[] = {"run",         "-config",        conf, "-trustDomain",
                        "example.org", "-joinTokenFile", tok};
        assert_ok(agent_config_parse(ELEMENTSOF(argv), argv, &a.cfg, &msg));
        assert_ok(sd_event_new(&e));
        assert_ok(manager_new(&mc, &be, e, &a.manager));
        log_set_max_level(LOG_INFO);

        /* Without the run arguments there is nothing to reload. */
        assert_errno(agent_reload(&a), EINVAL);
        a.argc = ELEMENTSOF(argv);
        a.argv = argv;

        /* The token was used up and its file removed: the reload still works. */
        assert_int_equal(unlink(tok), 0);
        write_file(conf, "logLevel = debug\nserverPort = 7001\nworkloadKeyType = \"ec-p384\"\n");
        assert_ok(agent_reload(&a));
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(a.cfg.log_level, LOG_DEBUG);
        assert_int_equal(a.cfg.workload_key_type, WARDEN_KEY_EC_P384);
        assert_int_equal(a.manager->cfg.key_type, WARDEN_KEY_EC_P384);
        assert_int_equal(a.cfg.server_port, 7000); /* needs a restart */
        assert_string_equal(a.cfg.join_token, "tok");
        assert_non_null(a.last_status);

        /* A broken file changes nothing. */
        write_file(conf, "logLevel = warning\n{{{\n");
        assert_true(agent_reload(&a) < 0);
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        write_file(conf, "logLevel = nonsense\n");
        assert_true(agent_reload(&a) < 0);
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(a.manager->cfg.key_type, WARDEN_KEY_EC_P384);

        /* WARDEN_LOG_LEVEL still wins over the file. */
        write_file(conf, "logLevel = error\n");
        assert_int_equal(setenv("WARDEN_LOG_LEVEL", "warning", 1), 0);
        assert_ok(agent_reload(&a));
        assert_int_equal(log_get_max_level(), LOG_WARNING);
        assert_int_equal(a.cfg.workload_key_type, WARDEN_KEY_EC_P256); /* the default again */
        unsetenv("WARDEN_LOG_LEVEL");

        log_set_max_level(LOG_INFO);
        a.manager = manager_free(a.manager);
        sd_event_unref(e);
        free(a.last_status);
        agent_config_done(&a.cfg);
        test_rmdir_free(TAKE_PTR(dir));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ready),
                cmocka_unit_test(test_status_text),
                cmocka_unit_test(test_reload),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
