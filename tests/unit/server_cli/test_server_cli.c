/* SPDX-License-Identifier: Apache-2.0 */
/* The admin CLI's entry JSON: `entry create -data FILE` parsing (both selector forms,
 * durations, ignored and unknown keys, caps at limit and limit + 1), the round trip
 * through `entry show -output json`, and list output streamed page by page. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_entry.h"
#include "ds.h"
#include "pb_util.h"
#include "strv.h"
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

static char *write_file(const char *content, size_t len) {
        char *path;
        int fd;

        assert_true(asprintf(&path, "%s/data.json", tmpdir) > 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, len), (ssize_t) len);
        close(fd);
        return path;
}

static int parse(const char *content, Warden__Types__V1__Entry ***v, size_t *n) {
        _cleanup_free_ char *path = write_file(content, strlen(content));

        return cli_entries_from_file(path, v, n);
}

#define AGENT "spiffe://example.org/warden/agent/join_token/a"

static void test_parse_entries(void **state) {
        Warden__Types__V1__Entry **v = NULL;
        size_t n = 0;

        assert_ok(parse(
                "{\"entries\": ["
                " {\"spiffe_id\": \"spiffe://example.org/a\", \"parent_id\": \"" AGENT "\","
                "  \"selectors\": [{\"type\": \"unix\", \"value\": \"uid:1\"}, \"unix:gid:2\"],"
                "  \"x509_svid_ttl\": \"1h30m\", \"jwt_svid_ttl\": 60, \"admin\": true,"
                "  \"dns_names\": [\"a.example\"], \"federates_with\": [\"other.org\"],"
                "  \"hint\": \"h\", \"expires_at\": 4102444800, \"revision\": 7,"
                "  \"created_by\": \"someone\", \"created_at\": 5, \"id\": \"myid\","
                "  \"state\": \"pending_approval\", \"approved_by\": \"uid:7\"},"
                " {\"spiffe_id\": \"spiffe://example.org/b\", \"parent_id\": \"" AGENT "\","
                "  \"selectors\": [\"unix:uid:3\"], \"node\": true, \"hint\": \"\","
                "  \"expires_at\": \"2100-01-01T01:00:00+01:00\", \"created_at\": null},"
                " {\"spiffe_id\": \"spiffe://example.org/c\", \"expires_at\": null}]}",
                &v, &n));
        assert_int_equal(n, 3);
        assert_string_equal(v[0]->spiffe_id, "spiffe://example.org/a");
        assert_string_equal(v[0]->id, "myid");
        assert_int_equal(v[0]->n_selectors, 2);
        assert_string_equal(v[0]->selectors[0]->value, "gid:2"); /* sorted set */
        assert_string_equal(v[0]->selectors[1]->value, "uid:1");
        assert_int_equal(v[0]->x509_svid_ttl, 5400);
        assert_int_equal(v[0]->jwt_svid_ttl, 60);
        assert_true(v[0]->admin);
        assert_int_equal(v[0]->expires_at, 4102444800);
        assert_int_equal(v[0]->n_dns_names, 1);
        assert_string_equal(v[0]->federates_with[0], "other.org");
        /* The server's record (revision, created_at, state, created_by, approved_by) is
         * not taken from the file: `entry show -output json` prints it. */
        assert_int_equal(v[0]->revision, 0);
        assert_int_equal(v[0]->created_at, 0);
        assert_string_equal(v[0]->created_by, "");
        assert_string_equal(v[0]->state, "");
        assert_string_equal(v[0]->approved_by, "");
        assert_true(v[1]->node);
        assert_string_equal(v[1]->hint, "");
        assert_int_equal(v[1]->expires_at, 4102444800);
        assert_int_equal(v[2]->expires_at, 0);
        cli_entries_free(v, n);
}

static void test_bare_array(void **state) {
        Warden__Types__V1__Entry **v = NULL;
        size_t n = 0;

        assert_ok(parse("[{\"spiffe_id\": \"spiffe://example.org/a\"}]", &v, &n));
        assert_int_equal(n, 1);
        cli_entries_free(v, n);
}

static void test_bad_input(void **state) {
        static const char *const bad[] = {
                "",
                "{",
                "[]",
                "{\"entries\": []}",
                "{\"entries\": [], \"more\": 1}",
                "{\"items\": [{}]}",
                "\"entries\"",
                "[1]",
                "[{\"colour\": \"red\"}]",
                "[{\"spiffe_id\": 5}]",
                "[{\"spiffe_id\": \"a\\u0000b\"}]",
                "[{\"spiffe_id\": \"a\", \"spiffe_id\": \"b\"}]",
                "[{\"selectors\": \"unix:uid:1\"}]",
                "[{\"selectors\": [\"unix:uid:01\"]}]",
                "[{\"selectors\": [{\"type\": \"unix\"}]}]",
                "[{\"selectors\": [{\"type\": \"unix\", \"value\": \"uid:1\", \"x\": 1}]}]",
                "[{\"x509_svid_ttl\": -1}]",
                "[{\"x509_svid_ttl\": \"1y\"}]",
                "[{\"jwt_svid_ttl\": 31622401}]",
                "[{\"jwt_svid_ttl\": 1.5}]",
                "[{\"expires_at\": -1}]",
                "[{\"expires_at\": \"tomorrow\"}]",
                "[{\"expires_at\": \"2023-02-29T00:00:00Z\"}]",
                "[{\"expires_at\": 1.5}]",
                "[{\"expires_at\": true}]",
                "[{\"expires_at\": 253402300800}]",
                "[{\"admin\": \"yes\"}]",
                "[{\"dns_names\": [1]}]",
                "[{\"dns_names\": \"a\"}]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Warden__Types__V1__Entry **v = NULL;
                size_t n = 0;
                int r = parse(bad[i], &v, &n);
                if (r >= 0)
                        fail_msg("accepted: %s", bad[i]);
                assert_null(v);
        }
}

static char *entries_json(size_t n) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        fputs("[", f);
        for (size_t i = 0; i < n; i++)
                fprintf(f,
                        "%s{\"spiffe_id\": \"spiffe://example.org/w%zu\", \"selectors\": "
                        "[\"unix:uid:%zu\"]}",
                        i ? "," : "", i, i);
        fputs("]", f);
        fclose(f);
        return buf;
}

static void test_batch_cap(void **state) {
        _cleanup_free_ char *ok = entries_json(DS_BATCH_MAX),
                            *over = entries_json(DS_BATCH_MAX + 1);
        Warden__Types__V1__Entry **v = NULL;
        size_t n = 0;

        assert_ok(parse(ok, &v, &n));
        assert_int_equal(n, DS_BATCH_MAX);
        cli_entries_free(v, n);
        v = NULL;
        assert_errno(parse(over, &v, &n), EINVAL);
        assert_null(v);
}

static void test_file_caps(void **state) {
        _cleanup_free_ char *big = malloc(RPC_MAX_MESSAGE_SIZE + 1), *path = NULL;
        Warden__Types__V1__Entry **v = NULL;
        size_t n = 0;

        assert_non_null(big);
        memset(big, ' ', RPC_MAX_MESSAGE_SIZE + 1);
        path = write_file(big, RPC_MAX_MESSAGE_SIZE + 1);
        assert_errno(cli_entries_from_file(path, &v, &n), EFBIG);
        assert_errno(cli_entries_from_file(tmpdir, &v, &n), EINVAL); /* a directory */
        assert_true(cli_entries_from_file("/nonexistent/x.json", &v, &n) == -ENOENT);
        assert_null(v);
}

/* `entry show -output json` output can be fed back to `entry create -data`, the
 * server's record (revision, created_at, state, ...) left out. */
static void test_round_trip(void **state) {
        Warden__Types__V1__Entry **v = NULL, **w = NULL;
        _cleanup_free_ char *s = NULL, *wrapped = NULL;
        size_t n = 0, m = 0;
        json_t *j;

        assert_ok(parse("[{\"spiffe_id\": \"spiffe://example.org/a\", \"parent_id\": \"" AGENT "\","
                        " \"selectors\": [\"unix:uid:1\", \"systemd:id:a.service\"],"
                        " \"dns_names\": [\"a.example\", \"b.example\"], \"x509_svid_ttl\": 90,"
                        " \"downstream\": true, \"scopes\": [\"read\"], \"env\": \"dev\"}]",
                        &v, &n));
        v[0]->expires_at = 4102444800;
        v[0]->created_at = 1767225600;
        v[0]->revision = 3;
        free(v[0]->state);
        v[0]->state = strdup("active");
        j = cli_entry_to_json(v[0]);
        assert_non_null(j);
        assert_int_equal(json_object_size(j), 21);
        /* Times in RFC 3339 UTC, as everywhere. */
        assert_string_equal(json_string_value(json_object_get(j, "expires_at")),
                            "2100-01-01T00:00:00Z");
        assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                            "2026-01-01T00:00:00Z");
        s = json_dumps(j, 0);
        json_decref(j);
        assert_true(asprintf(&wrapped, "{\"entries\": [%s]}", s) > 0);
        assert_ok(parse(wrapped, &w, &m));
        assert_int_equal(m, 1);
        assert_string_equal(w[0]->spiffe_id, v[0]->spiffe_id);
        assert_string_equal(w[0]->parent_id, v[0]->parent_id);
        assert_int_equal(w[0]->n_selectors, 2);
        assert_string_equal(w[0]->selectors[0]->type, "systemd");
        assert_int_equal(w[0]->n_dns_names, 2);
        assert_int_equal(w[0]->x509_svid_ttl, 90);
        assert_true(w[0]->downstream);
        assert_string_equal(w[0]->scopes[0], "read");
        assert_string_equal(w[0]->env, "dev");
        assert_int_equal(w[0]->expires_at, 4102444800);
        assert_int_equal(w[0]->revision, 0);
        assert_string_equal(w[0]->state, "");
        cli_entries_free(v, n);
        cli_entries_free(w, m);
}

static int ids(const char *content, char ***v, size_t *n) {
        _cleanup_free_ char *path = write_file(content, strlen(content));

        return cli_entry_ids_from_file(path, v, n);
}

/* `entry delete -file`: {"ids": [...]}, `entry show -output json` output, bare arrays. */
static void test_ids_file(void **state) {
        static const char *const good[] = {
                "{\"ids\": [\"a1\", \"b_2\"]}",
                "{\"entries\": [{\"id\": \"a1\", \"spiffe_id\": \"x\"}, {\"id\": \"b_2\"}]}",
                "[\"a1\", {\"id\": \"b_2\"}]",
        };
        static const char *const bad[] = {
                "{\"ids\": []}",
                "{\"ids\": [\"a\"], \"x\": 1}",
                "{\"x\": [\"a\"]}",
                "[1]",
                "[{\"spiffe_id\": \"a\"}]",
                "[\"../etc\"]",
                "[\"\"]",
                "{",
                "\"a\"",
        };
        char **v = NULL;
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                assert_ok(ids(good[i], &v, &n));
                assert_int_equal(n, 2);
                assert_string_equal(v[0], "a1");
                assert_string_equal(v[1], "b_2");
                strv_free(v, n);
                v = NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (ids(bad[i], &v, &n) >= 0)
                        fail_msg("accepted: %s", bad[i]);
        assert_null(v);
}

/* What CliJsonList writes for these items, and what cli_print_json() prints for the
 * whole document, must be the same bytes. */
static void check_streamed(json_t *items) {
        _cleanup_free_ char *whole = NULL, *streamed = NULL;
        size_t len = 0, i;
        CliJsonList l;
        json_t *doc, *item;
        FILE *f;

        doc = json_pack("{s:O}", "entries", items);
        assert_non_null(doc);
        whole = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        f = open_memstream(&streamed, &len);
        assert_non_null(f);
        cli_json_list_begin(&l, f, "entries");
        json_array_foreach(items, i, item) assert_ok(cli_json_list_add(&l, json_incref(item)));
        cli_json_list_end(&l);
        fclose(f);
        assert_int_equal(strlen(streamed), strlen(whole) + 1);
        assert_memory_equal(streamed, whole, strlen(whole));
        assert_int_equal(streamed[strlen(whole)], '\n');
}

static void test_streamed_json(void **state) {
        Warden__Types__V1__Entry **v = NULL;
        json_t *items = json_array();
        size_t n = 0;

        check_streamed(items); /* empty: "entries": [] */
        assert_ok(parse("[{\"spiffe_id\": \"spiffe://example.org/a\", \"parent_id\": \"" AGENT
                        "\", \"selectors\": [\"unix:uid:1\", \"unix:gid:2\"],"
                        " \"dns_names\": [\"a.example\"], \"hint\": \"h \\u00e9\"},"
                        " {\"spiffe_id\": \"spiffe://example.org/b\", \"parent_id\": \"" AGENT
                        "\", \"selectors\": [\"unix:uid:3\"]}]",
                        &v, &n));
        assert_int_equal(n, 2);
        json_array_append_new(items, cli_entry_to_json(v[0]));
        check_streamed(items);
        json_array_append_new(items, cli_entry_to_json(v[1]));
        json_array_append_new(items, json_object()); /* nested empty structures */
        json_array_append_new(items, json_pack("{s:[],s:{},s:[[1],{}],s:s}", "a", "b", "c", "d",
                                               "two\nlines \"quoted\""));
        check_streamed(items);
        json_decref(items);
        cli_entries_free(v, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_streamed_json, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parse_entries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bare_array, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_caps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ids_file, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
