/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore files: creation mode, WAL, reopen, newer schema, corrupt files,
 * migrations from an older schema, lock contention, error mapping. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ds.h"
#include "ds_sqlite.h"
#include "test_ds.h"
#include "testlib.h"

#define NODE1 "spiffe://" TD "/warden/agent/join_token/n1"

static char *path_in(const char *dir, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static char *raw_text(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *s;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        s = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return s;
}

static void test_open_mode_and_settings(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *wal = NULL, *mode = NULL;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        struct stat st;

        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(ds_schema_version(f->ds), DS_SCHEMA_VERSION);
        mode = raw_text(f->path, "PRAGMA journal_mode");
        assert_string_equal(mode, "wal");
        /* The WAL file takes the database file's mode. */
        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        wal = path_in(f->dir, "warden.db-wal");
        assert_int_equal(stat(wal, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        int version = -1;
        assert_ok(ds_sqlite_file_schema_version(f->path, &version));
        assert_int_equal(version, DS_SCHEMA_VERSION);
}

static void test_existing_file_tightened(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *path = path_in(dir, "loose.db");
        _cleanup_(ds_closep) Datastore *ds = NULL;
        int fd;
        struct stat st;
        (void) state;

        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, 0644), 0);
        close(fd);
        assert_ok(ds_open_sqlite(path, &ds));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        ds = ds_close(ds);
        test_rmdir_free(TAKE_PTR(dir));
}

static void test_reopen_finds_everything(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", "unix:gid:2", NULL);
        _cleanup_(entry_freep) Entry *got = NULL;
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL, *agot = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        const uint8_t bundle[] = {9, 8, 7};
        size_t len = 0;
        int64_t n = 0;

        assert_ok(entry_add_dns_name(e, "a.example.org"));
        e->env = strdup("prod");
        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup(NODE1);
        a->attestation_type = strdup("join_token");
        assert_ok(ds_upsert_agent(f->ds, a));
        assert_ok(ds_set_agent_banned(f->ds, NODE1, true));
        assert_ok(ds_create_join_token(f->ds, "tok-1", INT64_MAX, NULL));
        assert_ok(ds_set_bundle(f->ds, "partner.example", bundle, sizeof(bundle)));
        uint64_t seq = test_ds_seq(f->ds);

        test_ds_reopen(f);
        assert_ok(ds_get_entry(f->ds, e->id, &got));
        test_assert_entries_equal(e, got);
        assert_ok(ds_count_entries(f->ds, &n));
        assert_int_equal(n, 1);
        assert_ok(ds_get_agent(f->ds, NODE1, &agot));
        assert_true(agot->banned);
        assert_ok(ds_get_bundle(f->ds, "partner.example", &data, &len));
        assert_int_equal(len, 3);
        assert_memory_equal(data, bundle, 3);
        assert_int_equal(test_ds_seq(f->ds), seq);
        assert_ok(ds_consume_join_token(f->ds, "tok-1", 1, NULL));
        test_ds_reopen(f);
        assert_errno(ds_consume_join_token(f->ds, "tok-1", 1, NULL), EALREADY);
}

static void make_raw_db(const char *path, const char *sql) {
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void assert_untouched(const char *dir, const char *path, const char *before, size_t size) {
        _cleanup_free_ char *after = NULL, *wal = path_in(dir, "x.db-wal");
        size_t n = 0;

        after = test_read_file(path, &n);
        assert_non_null(after);
        assert_int_equal(n, size);
        assert_memory_equal(after, before, size);
        assert_int_equal(access(wal, F_OK), -1);
}

static void test_newer_schema_refused(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *path = path_in(dir, "x.db"), *before = NULL;
        Datastore *ds = NULL;
        size_t size = 0;
        int v = 0;
        (void) state;

        make_raw_db(path, "CREATE TABLE future (x INTEGER); PRAGMA user_version = 999;");
        before = test_read_file(path, &size);
        assert_non_null(before);
        assert_errno(ds_open_sqlite(path, &ds), ENOTSUP);
        assert_null(ds);
        assert_untouched(dir, path, before, size);
        /* What the caller prints: "database schema version 999 is newer than ... (N)". */
        assert_ok(ds_sqlite_file_schema_version(path, &v));
        assert_int_equal(v, 999);
        assert_untouched(dir, path, before, size);
        test_rmdir_free(TAKE_PTR(dir));
}

static void test_corrupt_file_refused(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *path = path_in(dir, "x.db"), *before = NULL;
        Datastore *ds = NULL;
        unsigned char garbage[8192];
        size_t size = 0;
        FILE *fp;
        int v;
        (void) state;

        srand(7);
        for (size_t i = 0; i < sizeof(garbage); i++)
                garbage[i] = (unsigned char) rand();
        fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(garbage, 1, sizeof(garbage), fp), sizeof(garbage));
        fclose(fp);
        before = test_read_file(path, &size);
        assert_errno(ds_open_sqlite(path, &ds), EBADMSG);
        assert_null(ds);
        assert_untouched(dir, path, before, size);
        assert_errno(ds_sqlite_file_schema_version(path, &v), EBADMSG);
        test_rmdir_free(TAKE_PTR(dir));
}

static void test_bad_paths(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *missing = path_in(dir, "no/such/dir.db");
        _cleanup_free_ char *link = path_in(dir, "link.db"), *target = path_in(dir, "t.db");
        Datastore *ds = NULL;
        (void) state;

        assert_errno(ds_open_sqlite(missing, &ds), ENOENT);
        assert_errno(ds_open_sqlite("", &ds), EINVAL);
        assert_errno(ds_open_sqlite(NULL, &ds), EINVAL);
        /* A symlink in place of the database is refused (O_NOFOLLOW). */
        assert_int_equal(symlink(target, link), 0);
        assert_true(ds_open_sqlite(link, &ds) < 0);
        assert_null(ds);
        assert_int_equal(access(target, F_OK), -1);
        /* A directory. */
        assert_true(ds_open_sqlite(dir, &ds) < 0);
        test_rmdir_free(TAKE_PTR(dir));
        assert_null(ds_close(NULL));
}

static void test_migration_from_v1(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *path = path_in(dir, "old.db");
        _cleanup_(ds_closep) Datastore *ds = NULL;
        _cleanup_(entry_freep) Entry *got = NULL, *upd = NULL;
        sqlite3 *db = NULL;
        int v = 0;
        (void) state;

        /* A database as schema version 1 left it, with one entry. */
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_ok(ds_migrate(db, 1));
        assert_ok(ds_migrate_read_version(db, &v));
        assert_int_equal(v, 1);
        assert_int_equal(
                sqlite3_exec(db,
                             "INSERT INTO entries (id, spiffe_id, parent_id, selectors_key, "
                             "x509_svid_ttl, revision, created_at) VALUES ('old1', "
                             "'spiffe://" TD "/old', '" NODE1 "', '4:unix5:uid:1', 60, 4, 77);"
                             "INSERT INTO entry_selectors VALUES ('old1', 'unix', 'uid:1');"
                             "UPDATE meta SET value = 12 WHERE key = 'change_seq';",
                             NULL, NULL, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_ok(ds_open_sqlite(path, &ds));
        assert_int_equal(ds_schema_version(ds), DS_SCHEMA_VERSION);
        assert_int_equal(test_ds_seq(ds), 12);
        assert_ok(ds_get_entry(ds, "old1", &got));
        assert_string_equal(got->spiffe_id, "spiffe://" TD "/old");
        assert_int_equal(got->x509_svid_ttl, 60);
        assert_int_equal(got->revision, 4);
        assert_int_equal(got->created_at, 77);
        assert_int_equal(got->selectors.n, 1);
        assert_null(got->env);
        assert_int_equal(got->n_scopes, 0);

        /* The new columns work, and the v1 row still takes part in the duplicate check. */
        assert_ok(entry_copy(got, &upd));
        upd->env = strdup("prod");
        assert_ok(entry_add_scope(upd, "s1"));
        assert_ok(ds_update_entry(ds, upd, NULL));
        free(upd->id);
        upd->id = NULL;
        assert_errno(ds_create_entries(ds, &upd, 1, NULL), EEXIST);

        ds = ds_close(ds);
        assert_errno(ds_migrate(NULL, 1), EINVAL);
        test_rmdir_free(TAKE_PTR(dir));
}

static void test_locked_database(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *got = NULL;
        sqlite3 *other = NULL;
        time_t start;

        /* Another process holds the write lock past our 5 s busy timeout. */
        assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
        assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        start = time(NULL);
        assert_errno(ds_create_entries(f->ds, &e, 1, NULL), EBUSY);
        assert_true(time(NULL) - start >= 4);
        assert_null(e->id);
        /* Readers are not blocked in WAL mode. */
        int64_t n = -1;
        assert_ok(ds_count_entries(f->ds, &n));
        assert_int_equal(n, 0);
        assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(other), SQLITE_OK);
        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        assert_ok(ds_get_entry(f->ds, e->id, &got));
}

static void test_sqlite_to_errno(void **state) {
        (void) state;
        assert_int_equal(sqlite_to_errno(SQLITE_OK), 0);
        assert_int_equal(sqlite_to_errno(SQLITE_DONE), 0);
        assert_int_equal(sqlite_to_errno(SQLITE_CONSTRAINT), -EEXIST);
        assert_int_equal(sqlite_to_errno(SQLITE_CONSTRAINT_UNIQUE), -EEXIST);
        assert_int_equal(sqlite_to_errno(SQLITE_CONSTRAINT_PRIMARYKEY), -EEXIST);
        assert_int_equal(sqlite_to_errno(SQLITE_CONSTRAINT_NOTNULL), -EINVAL);
        assert_int_equal(sqlite_to_errno(SQLITE_BUSY), -EBUSY);
        assert_int_equal(sqlite_to_errno(SQLITE_BUSY_SNAPSHOT), -EBUSY);
        assert_int_equal(sqlite_to_errno(SQLITE_LOCKED), -EBUSY);
        assert_int_equal(sqlite_to_errno(SQLITE_CORRUPT), -EBADMSG);
        assert_int_equal(sqlite_to_errno(SQLITE_NOTADB), -EBADMSG);
        assert_int_equal(sqlite_to_errno(SQLITE_NOMEM), -ENOMEM);
        assert_int_equal(sqlite_to_errno(SQLITE_CANTOPEN), -EACCES);
        assert_int_equal(sqlite_to_errno(SQLITE_READONLY), -EACCES);
        assert_int_equal(sqlite_to_errno(SQLITE_FULL), -ENOSPC);
        assert_int_equal(sqlite_to_errno(SQLITE_IOERR), -EIO);
        assert_int_equal(sqlite_to_errno(SQLITE_ERROR), -EIO);
}

/* Named integers in the meta table: survive a reopen, never touch the change sequence. */
static void test_meta(void **state) {
        DsFixture *f = *state;
        uint64_t seq = test_ds_seq(f->ds);
        int64_t v = -1;

        assert_errno(ds_get_meta(f->ds, DS_META_CA_CREATED_AT, &v), ENOENT);
        assert_int_equal(v, -1);
        assert_ok(ds_set_meta(f->ds, DS_META_CA_CREATED_AT, 1700000000));
        assert_ok(ds_set_meta(f->ds, DS_META_CA_CREATED_AT, 1700000001));
        test_ds_reopen(f);
        assert_ok(ds_get_meta(f->ds, DS_META_CA_CREATED_AT, &v));
        assert_int_equal(v, 1700000001);
        assert_int_equal(test_ds_seq(f->ds), seq);
        assert_errno(ds_set_meta(f->ds, "change_seq", 5), EINVAL);
        assert_errno(ds_get_meta(f->ds, "change_seq", &v), EINVAL);
        assert_errno(ds_set_meta(f->ds, "Bad-Key", 5), EINVAL);
        assert_errno(ds_set_meta(f->ds, "", 5), EINVAL);
        assert_errno(ds_get_meta(f->ds, NULL, &v), EINVAL);
        assert_int_equal(test_ds_seq(f->ds), seq);
}

int test_ds_files_run(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_mode_and_settings, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test(test_existing_file_tightened),
                cmocka_unit_test_setup_teardown(test_reopen_finds_everything, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test(test_newer_schema_refused),
                cmocka_unit_test(test_corrupt_file_refused),
                cmocka_unit_test(test_bad_paths),
                cmocka_unit_test(test_migration_from_v1),
                cmocka_unit_test_setup_teardown(test_locked_database, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test(test_sqlite_to_errno),
                cmocka_unit_test_setup_teardown(test_meta, test_ds_setup, test_ds_teardown),
        };
        return cmocka_run_group_tests_name("ds_files", tests, NULL, NULL);
}
