/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite datastore: attested agents (nodes). */
#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "ds_sqlite.h"
#include "log.h"

#define AGENT_COLUMNS                                                                              \
        "spiffe_id, attestation_type, serial, svid_expires_at, banned, created_at, last_seen_at"

static int write_agent_selectors(DsSqlite *s, const AttestedAgent *a) {
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_AGENT_SEL_DELETE,
                           "DELETE FROM agent_selectors WHERE agent_id = ?1", &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, a->spiffe_id)) < 0 ||
            (r = ds_sqlite_exec_stmt(st)) < 0)
                return r;
        r = ds_sqlite_stmt(s, STMT_AGENT_SEL_INSERT,
                           "INSERT OR IGNORE INTO agent_selectors (agent_id, type, value) "
                           "VALUES (?1, ?2, ?3)",
                           &st);
        if (r < 0)
                return r;
        for (size_t i = 0; i < a->selectors.n; i++) {
                if ((r = ds_sqlite_bind_text(st, 1, a->spiffe_id)) < 0 ||
                    (r = ds_sqlite_bind_text(st, 2, a->selectors.items[i].type)) < 0 ||
                    (r = ds_sqlite_bind_text(st, 3, a->selectors.items[i].value)) < 0 ||
                    (r = ds_sqlite_exec_stmt(st)) < 0)
                        return r;
        }
        return 0;
}

int ds_sqlite_upsert_agent(Datastore *ds, const AttestedAgent *a, int64_t now) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        r = ds_sqlite_stmt(
                s, STMT_AGENT_UPSERT,
                "INSERT INTO agents (" AGENT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5) "
                "ON CONFLICT (spiffe_id) DO UPDATE SET "
                "attestation_type = excluded.attestation_type, serial = excluded.serial, "
                "svid_expires_at = excluded.svid_expires_at, "
                "last_seen_at = excluded.last_seen_at",
                &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, a->spiffe_id)) < 0 ||
            (r = ds_sqlite_bind_text(st, 2, a->attestation_type)) < 0 ||
            (r = ds_sqlite_bind_text(st, 3, a->serial)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 4, a->svid_expires_at)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 5, now)) < 0 || (r = ds_sqlite_exec_stmt(st)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        /* New selectors may change which node aliases (and so entries) apply. */
        if ((r = write_agent_selectors(s, a)) < 0 ||
            (r = ds_sqlite_record_change(s, DS_EVENT_AGENT, a->spiffe_id)) < 0 ||
            (r = ds_sqlite_commit(s)) < 0)
                return r;
        txn = NULL;
        return 0;
}

static int agent_from_row(sqlite3_stmt *st, AttestedAgent **ret) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        r = attested_agent_new(&a);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_column_strdup(st, 0, &a->spiffe_id)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 1, &a->attestation_type)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 2, &a->serial)) < 0)
                return r;
        a->svid_expires_at = sqlite3_column_int64(st, 3);
        a->banned = sqlite3_column_int(st, 4) != 0;
        a->created_at = sqlite3_column_int64(st, 5);
        a->last_seen_at = sqlite3_column_int64(st, 6);
        *ret = TAKE_PTR(a);
        return 0;
}

static int load_agent_selectors(DsSqlite *s, AttestedAgent *a) {
        return ds_sqlite_load_selectors(
                s, STMT_AGENT_SEL_GET,
                "SELECT type, value FROM agent_selectors WHERE agent_id = ?1", a->spiffe_id,
                &a->selectors);
}

int ds_sqlite_get_agent(Datastore *ds, const char *spiffe_id, AttestedAgent **ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_begin(s, false);
        if (r < 0)
                return r;
        txn = s;
        r = ds_sqlite_stmt(s, STMT_AGENT_GET,
                           "SELECT " AGENT_COLUMNS " FROM agents WHERE spiffe_id = ?1", &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, spiffe_id)) < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = agent_from_row(st, &a);
        if (r < 0)
                return r;
        ds_sqlite_resetp(&st);
        r = load_agent_selectors(s, a);
        if (r < 0 || (r = ds_sqlite_commit(s)) < 0)
                return r;
        txn = NULL;
        *ret = TAKE_PTR(a);
        return 0;
}

typedef struct AgentList {
        AttestedAgent **items;
        size_t n, allocated;
} AgentList;

static void agent_list_done(AgentList *l) {
        attested_agent_array_free(l->items, l->n);
}

int ds_sqlite_list_agents(
        Datastore *ds, const char *after_id, size_t limit, AttestedAgent ***ret, size_t *ret_n) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(agent_list_done) AgentList l = {};
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_begin(s, false);
        if (r < 0)
                return r;
        txn = s;
        /* Every SPIFFE ID sorts after "": one statement for the whole list and its pages. */
        r = ds_sqlite_stmt(s, STMT_AGENT_LIST,
                           "SELECT " AGENT_COLUMNS " FROM agents WHERE spiffe_id > ?1 "
                           "ORDER BY spiffe_id LIMIT ?2",
                           &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, after_id)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, limit == 0 ? -1 : (int64_t) limit)) < 0)
                return r;
        while ((r = ds_sqlite_step(st)) > 0) {
                _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;

                r = agent_from_row(st, &a);
                if (r < 0 || (r = load_agent_selectors(s, a)) < 0)
                        return r;
                r = ds_ptr_array_push((void ***) &l.items, &l.n, &l.allocated, a);
                if (r < 0)
                        return r;
                TAKE_PTR(a);
        }
        if (r < 0)
                return r;
        ds_sqlite_resetp(&st);
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        *ret = TAKE_PTR(l.items);
        *ret_n = l.n;
        l.n = 0;
        return 0;
}

int ds_sqlite_set_agent_banned(Datastore *ds, const char *spiffe_id, bool banned) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_AGENT_BAN, "UPDATE agents SET banned = ?2 WHERE spiffe_id = ?1",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, spiffe_id)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, banned)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, DS_EVENT_AGENT, spiffe_id);
}

int ds_sqlite_delete_agent(Datastore *ds, const char *spiffe_id) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_AGENT_DELETE, "DELETE FROM agents WHERE spiffe_id = ?1", &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, spiffe_id)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, DS_EVENT_AGENT, spiffe_id);
}

int ds_sqlite_update_agent_svid(Datastore *ds,
                                const char *spiffe_id,
                                const char *serial,
                                int64_t exp) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(
                s, STMT_AGENT_SVID,
                "UPDATE agents SET serial = ?2, svid_expires_at = ?3 WHERE spiffe_id = ?1", &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, spiffe_id)) < 0 ||
            (r = ds_sqlite_bind_text(st, 2, serial)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 3, exp)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, 0, NULL);
}

int ds_sqlite_touch_agent(Datastore *ds, const char *spiffe_id, int64_t now) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_AGENT_TOUCH,
                           "UPDATE agents SET last_seen_at = ?2 WHERE spiffe_id = ?1", &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, spiffe_id)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, now)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, 0, NULL);
}
