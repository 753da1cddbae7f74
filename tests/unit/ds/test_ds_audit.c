/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore audit log: which writes append which records (in their own transaction,
 * none for failed writes), the actor, the chain and what ds_audit_verify() reports
 * for rows edited or deleted behind the datastore's back, filters, the migration. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "ds.h"
#include "ds_sqlite.h"
#include "test_ds.h"
#include "testlib.h"

#define NODE1 "spiffe://" TD "/warden/agent/join_token/n1"
#define NODE2 "spiffe://" TD "/warden/agent/join_token/n2"

typedef struct Want {
        const char *kind;
        const char *subject;
        const char *actor;
} Want;

static void assert_records(Datastore *ds, const DsAuditFilter *f, const Want *want, size_t n) {
        DsAuditRecord *recs = NULL;
        size_t got = SIZE_MAX;

        assert_ok(ds_audit_list(ds, f, &recs, &got));
        for (size_t i = 0; i < got && i < n; i++) {
                assert_string_equal(recs[i].kind, want[i].kind);
                assert_string_equal(recs[i].subject, want[i].subject);
                assert_string_equal(recs[i].actor, want[i].actor);
        }
        assert_int_equal(got, n);
        ds_audit_record_array_free(recs, got);
}

static void assert_intact(Datastore *ds, uint64_t count) {
        uint64_t c = UINT64_MAX, bad = 0;
        const char *reason = NULL;

        assert_ok(ds_audit_verify(ds, &c, &bad, &reason));
        assert_int_equal(c, count);
}

static void assert_broken(Datastore *ds, uint64_t seq, const char *reason) {
        uint64_t c = 0, bad = 0;
        const char *why = NULL;

        assert_errno(ds_audit_verify(ds, &c, &bad, &why), EBADMSG);
        assert_int_equal(bad, seq);
        assert_non_null(why);
        assert_string_equal(why, reason);
}

static void sql(Datastore *ds, const char *s) {
        assert_int_equal(sqlite3_exec(ds_sqlite(ds)->db, s, NULL, NULL, NULL), SQLITE_OK);
}

static AttestedAgent *agent_new(const char *id) {
        AttestedAgent *a = NULL;

        assert_ok(attested_agent_new(&a));
        a->spiffe_id = strdup(id);
        a->attestation_type = strdup("join_token");
        assert_ok(selector_set_add_string(&a->selectors, "warden:agent_id:x", NULL));
        return a;
}

/* Creates, updates, deletes an entry, bans/unbans/deletes an agent, makes a token:
 * 7 records. */
static char *some_writes(Datastore *ds) {
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(attested_agent_freep) AttestedAgent *a = agent_new(NODE1);
        char *id;

        assert_ok(ds_set_actor(ds, "uid:0"));
        assert_ok(ds_create_entries(ds, &e, 1, NULL));
        e->x509_svid_ttl = 99;
        assert_ok(ds_update_entry(ds, e, NULL));
        assert_ok(ds_upsert_agent(ds, a)); /* not audited */
        assert_ok(ds_set_agent_banned(ds, NODE1, true));
        assert_ok(ds_set_agent_banned(ds, NODE1, false));
        assert_ok(ds_set_actor(ds, NULL));
        assert_ok(ds_create_join_token(ds, "secret-token", INT64_MAX, NODE2));
        assert_ok(ds_set_actor(ds, NODE1));
        assert_ok(ds_delete_agent(ds, NODE1));
        assert_ok(ds_delete_entry(ds, e->id));
        id = strdup(e->id);
        assert_non_null(id);
        return id;
}

static const Want all_writes[] = {
        {"entry.create", "spiffe://" TD "/a", "uid:0"},
        {"entry.update", "spiffe://" TD "/a", "uid:0"},
        {"agent.ban", NODE1, "uid:0"},
        {"agent.unban", NODE1, "uid:0"},
        {"token.create", NODE2, "server"},
        {"agent.delete", NODE1, NODE1},
        {"entry.delete", "spiffe://" TD "/a", NODE1},
};

static void test_writes_and_chain(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *id = NULL;
        DsAuditRecord *recs = NULL;
        uint8_t zero[DS_AUDIT_HASH_SIZE] = {}, h[DS_AUDIT_HASH_SIZE];
        size_t n = 0;

        assert_intact(f->ds, 0);
        id = some_writes(f->ds);
        assert_records(f->ds, NULL, all_writes, ELEMENTSOF(all_writes));
        assert_intact(f->ds, ELEMENTSOF(all_writes));

        assert_ok(ds_audit_list(f->ds, NULL, &recs, &n));
        assert_memory_equal(recs[0].prev_hash, zero, sizeof(zero));
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(recs[i].seq, i + 1);
                assert_ok(ds_audit_hash(&recs[i], h));
                assert_memory_equal(h, recs[i].hash, sizeof(h));
                if (i > 0)
                        assert_memory_equal(recs[i].prev_hash, recs[i - 1].hash, sizeof(h));
        }
        /* The entry's id is in the data; the token never is, only its SHA-256. */
        assert_non_null(strstr(recs[0].data, id));
        assert_null(strstr(recs[4].data, "secret-token"));
        assert_non_null(strstr(recs[4].data, "\"token_sha256\":\""));
        ds_audit_record_array_free(recs, n);

        /* Survives a reopen; an explicit append continues the chain. */
        test_ds_reopen(f);
        assert_ok(ds_audit_append(f->ds, "note", "uid:5", "x", "{\"a\":1}"));
        assert_intact(f->ds, ELEMENTSOF(all_writes) + 1);
        assert_records(f->ds, &(DsAuditFilter){.kind = "note"}, &(Want){"note", "x", "uid:5"}, 1);
        assert_string_equal(ds_get_actor(f->ds), "server");
}

/* A write that fails appends nothing, and the next one continues the chain. */
static void test_failed_writes_add_nothing(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *dup = NULL, *unknown = NULL;

        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        assert_ok(entry_copy(e, &dup));
        free(dup->id);
        dup->id = NULL;
        assert_errno(ds_create_entries(f->ds, &dup, 1, NULL), EEXIST);
        assert_ok(entry_copy(e, &unknown));
        free(unknown->id);
        unknown->id = strdup("ffffffffffffffffffffffffffffffff");
        assert_errno(ds_update_entry(f->ds, unknown, NULL), ENOENT);
        assert_errno(ds_delete_entry(f->ds, unknown->id), ENOENT);
        assert_errno(ds_set_agent_banned(f->ds, NODE2, true), ENOENT);
        assert_errno(ds_delete_agent(f->ds, NODE2), ENOENT);
        assert_ok(ds_create_join_token(f->ds, "t", INT64_MAX, NULL));
        assert_errno(ds_create_join_token(f->ds, "t", INT64_MAX, NULL), EEXIST);
        assert_records(f->ds, NULL,
                       (const Want[]){
                               {"entry.create", "spiffe://" TD "/a", "server"},
                               {"token.create", "", "server"},
                       },
                       2);
        assert_ok(ds_delete_entry(f->ds, e->id));
        assert_intact(f->ds, 3);
}

/* An audit record that cannot be written fails the write it describes. */
static void test_audit_failure_fails_write(void **state) {
        DsFixture *f = *state;
        _cleanup_(entry_freep) Entry *e =
                test_entry_new("spiffe://" TD "/a", NODE1, "unix:uid:1", NULL);
        _cleanup_(entry_freep) Entry *got = NULL;
        Entry **all = NULL;
        size_t n = 1;

        sql(f->ds, "CREATE TRIGGER no_audit BEFORE INSERT ON audit "
                   "BEGIN SELECT RAISE(ABORT, 'no'); END;");
        assert_true(ds_create_entries(f->ds, &e, 1, NULL) < 0);
        assert_ok(ds_list_entries(f->ds, NULL, &all, &n));
        assert_int_equal(n, 0);
        free(all);
        sql(f->ds, "DROP TRIGGER no_audit");
        assert_ok(ds_create_entries(f->ds, &e, 1, NULL));
        assert_ok(ds_get_entry(f->ds, e->id, &got));
        assert_intact(f->ds, 1);
}

static void test_tampering(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *id = some_writes(f->ds);

        sql(f->ds, "UPDATE audit SET data = '{\"id\":\"other\"}' WHERE seq = 3");
        assert_broken(f->ds, 3, "was changed");
        sql(f->ds, "UPDATE audit SET data = '{}' WHERE seq = 3"); /* the original */
        assert_intact(f->ds, 7);

        sql(f->ds, "UPDATE audit SET kind = 'agent.unban' WHERE seq = 5");
        assert_broken(f->ds, 5, "was changed");
        sql(f->ds, "UPDATE audit SET kind = 'token.create' WHERE seq = 5");
        sql(f->ds, "UPDATE audit SET actor = 'uid:1' WHERE seq = 1");
        assert_broken(f->ds, 1, "was changed");
        sql(f->ds, "UPDATE audit SET actor = 'uid:0' WHERE seq = 1");
        assert_intact(f->ds, 7);

        /* A copied prev_hash with a matching recomputed hash still breaks the link. */
        sql(f->ds, "UPDATE audit SET prev_hash = (SELECT prev_hash FROM audit WHERE seq = 2) "
                   "WHERE seq = 4");
        assert_broken(f->ds, 4, "was changed");
        sql(f->ds, "UPDATE audit SET prev_hash = (SELECT hash FROM audit WHERE seq = 3) "
                   "WHERE seq = 4");
        assert_intact(f->ds, 7);

        /* Deleting the newest row goes unnoticed until the next record is written:
         * AUTOINCREMENT does not hand its seq out again, so that shows the gap. */
        sql(f->ds, "DELETE FROM audit WHERE seq = 7");
        assert_intact(f->ds, 6);
        assert_ok(ds_audit_append(f->ds, "note", NULL, "", NULL));
        assert_broken(f->ds, 7, "is missing");
        sql(f->ds, "DELETE FROM audit WHERE seq = 8");

        /* A deleted middle row is a gap; the next write does not hide it. */
        sql(f->ds, "DELETE FROM audit WHERE seq = 4");
        assert_broken(f->ds, 4, "is missing");
        assert_ok(ds_audit_append(f->ds, "note", NULL, "", NULL));
        assert_broken(f->ds, 4, "is missing");
}

/* A record rewritten with a correct hash of its own still does not chain. */
static void test_rehashed_record(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *id = some_writes(f->ds);
        DsAuditRecord *recs = NULL;
        size_t n = 0;
        uint8_t h[DS_AUDIT_HASH_SIZE];
        sqlite3_stmt *st = NULL;

        assert_ok(ds_audit_list(f->ds, &(DsAuditFilter){.after_seq = 1, .limit = 1}, &recs, &n));
        assert_int_equal(n, 1);
        memset(recs[0].prev_hash, 7, sizeof(recs[0].prev_hash));
        assert_ok(ds_audit_hash(&recs[0], h));
        assert_int_equal(sqlite3_prepare_v2(ds_sqlite(f->ds)->db,
                                            "UPDATE audit SET prev_hash = ?1, hash = ?2 "
                                            "WHERE seq = 2",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(st, 1, recs[0].prev_hash, DS_AUDIT_HASH_SIZE, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, h, DS_AUDIT_HASH_SIZE, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        ds_audit_record_array_free(recs, n);
        assert_broken(f->ds, 2, "does not follow the record before it");
}

static void test_filters(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *id = some_writes(f->ds);
        int64_t now = (int64_t) time(NULL);

        assert_records(f->ds, &(DsAuditFilter){.subject = NODE1},
                       (const Want[]){all_writes[2], all_writes[3], all_writes[5]}, 3);
        assert_records(f->ds, &(DsAuditFilter){.kind = "entry.delete"}, all_writes + 6, 1);
        assert_records(f->ds, &(DsAuditFilter){.after_seq = 5}, all_writes + 5, 2);
        assert_records(f->ds, &(DsAuditFilter){.limit = 2}, all_writes, 2);
        assert_records(f->ds, &(DsAuditFilter){.since = now + 100}, NULL, 0);
        assert_records(f->ds, &(DsAuditFilter){.until = now - 100}, NULL, 0);
        assert_records(f->ds, &(DsAuditFilter){.since = now - 100, .until = now + 100}, all_writes,
                       ELEMENTSOF(all_writes));
}

static void test_args(void **state) {
        DsFixture *f = *state;
        char big[DS_AUDIT_ACTOR_MAX + 2];
        DsAuditRecord *recs = NULL;
        size_t n = 0;

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_errno(ds_set_actor(f->ds, big), EINVAL);
        assert_errno(ds_set_actor(NULL, "x"), EINVAL);
        assert_errno(ds_audit_append(f->ds, "", NULL, "", NULL), EINVAL);
        assert_errno(ds_audit_append(f->ds, NULL, NULL, "", NULL), EINVAL);
        assert_errno(
                ds_audit_list(f->ds, &(DsAuditFilter){.limit = DS_AUDIT_PAGE_MAX + 1}, &recs, &n),
                EINVAL);
        assert_errno(ds_audit_verify(NULL, NULL, NULL, NULL), EINVAL);
}

static void test_migration_from_v4(void **state) {
        DsFixture *f = *state;
        _cleanup_free_ char *path = NULL;
        _cleanup_(ds_closep) Datastore *ds = NULL;
        _cleanup_(entry_freep) Entry *got = NULL;
        sqlite3 *db = NULL;
        int v = 0;

        assert_true(asprintf(&path, "%s/v4.db", f->dir) > 0);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_ok(ds_migrate(db, 4));
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO entries (id, spiffe_id, parent_id, "
                                      "selectors_key, revision, created_at) VALUES ('old1', "
                                      "'spiffe://" TD "/old', '" NODE1 "', '4:unix5:uid:1', 3, "
                                      "77);"
                                      "INSERT INTO entry_selectors VALUES ('old1', 'unix', "
                                      "'uid:1');",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "SELECT 1 FROM audit", NULL, NULL, NULL), SQLITE_ERROR);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_ok(ds_open_sqlite(path, &ds));
        assert_int_equal(ds_schema_version(ds), 5);
        assert_ok(ds_get_entry(ds, "old1", &got));
        assert_intact(ds, 0);
        assert_ok(ds_delete_entry(ds, "old1"));
        assert_records(ds, NULL, &(Want){"entry.delete", "spiffe://" TD "/old", "server"}, 1);
        assert_intact(ds, 1);
        ds = ds_close(ds);
        assert_ok(ds_sqlite_file_schema_version(path, &v));
        assert_int_equal(v, 5);
}

int test_ds_audit_run(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_writes_and_chain, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_failed_writes_add_nothing, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_audit_failure_fails_write, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_tampering, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_rehashed_record, test_ds_setup,
                                                test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_filters, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_args, test_ds_setup, test_ds_teardown),
                cmocka_unit_test_setup_teardown(test_migration_from_v4, test_ds_setup,
                                                test_ds_teardown),
        };
        return cmocka_run_group_tests_name("ds_audit", tests, NULL, NULL);
}
