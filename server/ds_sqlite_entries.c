/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite datastore: registration entries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ds_sqlite.h"
#include "log.h"

#define ENTRY_COLUMNS                                                                              \
        "e.id, e.spiffe_id, e.parent_id, e.x509_svid_ttl, e.jwt_svid_ttl, e.hint, e.admin, "       \
        "e.node, e.downstream, e.expires_at, e.revision, e.created_at, e.env, e.task, e.state, "   \
        "e.created_by, e.approved_by"

/* Binds ?1..?18 of the insert and update statements (update ignores ?12 and ?13). */
static int bind_entry(
        sqlite3_stmt *st, const Entry *e, const char *id, const char *key, int64_t now) {
        int r;

        if ((r = ds_sqlite_bind_text(st, 1, id)) < 0 ||
            (r = ds_sqlite_bind_text(st, 2, e->spiffe_id)) < 0 ||
            (r = ds_sqlite_bind_text(st, 3, e->parent_id)) < 0 ||
            (r = ds_sqlite_bind_text(st, 4, key)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 5, e->x509_svid_ttl)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 6, e->jwt_svid_ttl)) < 0 ||
            (r = ds_sqlite_bind_text(st, 7, e->hint)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 8, e->admin)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 9, e->node)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 10, e->downstream)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 11, e->expires_at)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 12, 1)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 13, now)) < 0 ||
            (r = ds_sqlite_bind_text(st, 14, e->env)) < 0 ||
            (r = ds_sqlite_bind_text(st, 15, e->task)) < 0 ||
            (r = ds_sqlite_bind_text(st, 16, e->state)) < 0 ||
            (r = ds_sqlite_bind_text(st, 17, e->created_by)) < 0 ||
            (r = ds_sqlite_bind_text(st, 18, e->approved_by)) < 0)
                return r;
        return 0;
}

/* Runs `st` (?1 = entry id, ?2 = pos, ?3 = text) once per element of v. */
static int insert_strv(sqlite3_stmt *st, const char *id, char *const *v, size_t n) {
        int r;

        for (size_t i = 0; i < n; i++) {
                if ((r = ds_sqlite_bind_text(st, 1, id)) < 0 ||
                    (r = ds_sqlite_bind_int64(st, 2, (int64_t) i)) < 0 ||
                    (r = ds_sqlite_bind_text(st, 3, v[i])) < 0 || (r = ds_sqlite_exec_stmt(st)) < 0)
                        return r;
        }
        return 0;
}

static int write_children(DsSqlite *s, const char *id, const Entry *e) {
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(
                s, STMT_ENTRY_SEL_INSERT,
                "INSERT OR IGNORE INTO entry_selectors (entry_id, type, value) VALUES (?1, ?2, ?3)",
                &st);
        if (r < 0)
                return r;
        for (size_t i = 0; i < e->selectors.n; i++) {
                if ((r = ds_sqlite_bind_text(st, 1, id)) < 0 ||
                    (r = ds_sqlite_bind_text(st, 2, e->selectors.items[i].type)) < 0 ||
                    (r = ds_sqlite_bind_text(st, 3, e->selectors.items[i].value)) < 0 ||
                    (r = ds_sqlite_exec_stmt(st)) < 0)
                        return r;
        }
        r = ds_sqlite_stmt(s, STMT_ENTRY_DNS_INSERT,
                           "INSERT INTO entry_dns (entry_id, pos, name) VALUES (?1, ?2, ?3)", &st);
        if (r < 0 || (r = insert_strv(st, id, e->dns_names, e->n_dns_names)) < 0)
                return r;
        r = ds_sqlite_stmt(
                s, STMT_ENTRY_FED_INSERT,
                "INSERT INTO entry_federates (entry_id, pos, trust_domain) VALUES (?1, ?2, ?3)",
                &st);
        if (r < 0 || (r = insert_strv(st, id, e->federates_with, e->n_federates_with)) < 0)
                return r;
        r = ds_sqlite_stmt(s, STMT_ENTRY_SCOPE_INSERT,
                           "INSERT INTO entry_scopes (entry_id, pos, scope) VALUES (?1, ?2, ?3)",
                           &st);
        if (r < 0 || (r = insert_strv(st, id, e->scopes, e->n_scopes)) < 0)
                return r;
        return 0;
}

static int delete_children(DsSqlite *s, const char *id) {
        static const struct {
                StmtId stmt;
                const char *sql;
        } tables[] = {
                {STMT_ENTRY_SEL_DELETE, "DELETE FROM entry_selectors WHERE entry_id = ?1"},
                {STMT_ENTRY_DNS_DELETE, "DELETE FROM entry_dns WHERE entry_id = ?1"},
                {STMT_ENTRY_FED_DELETE, "DELETE FROM entry_federates WHERE entry_id = ?1"},
                {STMT_ENTRY_SCOPE_DELETE, "DELETE FROM entry_scopes WHERE entry_id = ?1"},
        };
        sqlite3_stmt *st;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                r = ds_sqlite_stmt(s, tables[i].stmt, tables[i].sql, &st);
                if (r < 0 || (r = ds_sqlite_bind_text(st, 1, id)) < 0 ||
                    (r = ds_sqlite_exec_stmt(st)) < 0)
                        return r;
        }
        return 0;
}

static int insert_entry(DsSqlite *s, const Entry *e, const char *id, int64_t now) {
        _cleanup_free_ char *key = NULL;
        sqlite3_stmt *st;
        int r;

        r = ds_selectors_key(&e->selectors, &key);
        if (r < 0)
                return r;
        r = ds_sqlite_stmt(
                s, STMT_ENTRY_INSERT,
                "INSERT INTO entries (id, spiffe_id, parent_id, selectors_key, x509_svid_ttl, "
                "jwt_svid_ttl, hint, admin, node, downstream, expires_at, revision, created_at, "
                "env, task, state, created_by, approved_by) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                "?17, ?18)",
                &st);
        if (r < 0)
                return r;
        r = bind_entry(st, e, id, key, now);
        if (r < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        return write_children(s, id, e);
}

int ds_sqlite_create_entries(Datastore *ds,
                             Entry *const *entries,
                             char *const *ids,
                             size_t n,
                             int64_t now,
                             size_t *reterr_index) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        int r;

        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        for (size_t i = 0; i < n; i++) {
                r = insert_entry(s, entries[i], ids[i], now);
                if (r < 0) {
                        *reterr_index = i;
                        return log_debug_errno(r, "sqlite: storing entry %zu of %zu: %m", i, n);
                }
        }
        /* One change, one event per entry. */
        r = ds_sqlite_bump_change_seq(s);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = ds_sqlite_append_event(s, DS_EVENT_ENTRY, ids[i]);
        if (r < 0)
                return r;
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        return 0;
}

static int entry_from_row(sqlite3_stmt *st, Entry **ret) {
        _cleanup_(entry_freep) Entry *e = NULL;
        int r;

        r = entry_new(&e);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_column_strdup(st, 0, &e->id)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 1, &e->spiffe_id)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 2, &e->parent_id)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 5, &e->hint)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 12, &e->env)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 13, &e->task)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 14, &e->state)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 15, &e->created_by)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 16, &e->approved_by)) < 0)
                return r;
        e->x509_svid_ttl = sqlite3_column_int(st, 3);
        e->jwt_svid_ttl = sqlite3_column_int(st, 4);
        e->admin = sqlite3_column_int(st, 6) != 0;
        e->node = sqlite3_column_int(st, 7) != 0;
        e->downstream = sqlite3_column_int(st, 8) != 0;
        e->expires_at = sqlite3_column_int64(st, 9);
        e->revision = sqlite3_column_int64(st, 10);
        e->created_at = sqlite3_column_int64(st, 11);
        *ret = TAKE_PTR(e);
        return 0;
}

/* Reads the text column of every row of st (bound to one entry id) into a list. */
static int read_strv(sqlite3_stmt *st, char ***v, size_t *n) {
        size_t allocated = 0;
        char *c;
        int r;

        while ((r = ds_sqlite_step(st)) > 0) {
                r = ds_sqlite_column_strdup(st, 0, &c);
                if (r < 0)
                        return r;
                if (!c)
                        return -EBADMSG;
                r = ds_ptr_array_push((void ***) v, n, &allocated, c);
                if (r < 0) {
                        free(c);
                        return r;
                }
        }
        return r;
}

static int load_strv(
        DsSqlite *s, StmtId id, const char *sql, const char *entry_id, char ***v, size_t *n) {
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, id, sql, &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, entry_id)) < 0)
                return r;
        return read_strv(st, v, n);
}

static int load_selectors(DsSqlite *s, Entry *e) {
        return ds_sqlite_load_selectors(
                s, STMT_ENTRY_SEL_GET,
                "SELECT type, value FROM entry_selectors WHERE entry_id = ?1", e->id,
                &e->selectors);
}

static int load_children(DsSqlite *s, Entry *e) {
        int r;

        r = load_selectors(s, e);
        if (r < 0)
                return r;
        r = load_strv(s, STMT_ENTRY_DNS_GET,
                      "SELECT name FROM entry_dns WHERE entry_id = ?1 ORDER BY pos", e->id,
                      &e->dns_names, &e->n_dns_names);
        if (r < 0)
                return r;
        r = load_strv(s, STMT_ENTRY_FED_GET,
                      "SELECT trust_domain FROM entry_federates WHERE entry_id = ?1 ORDER BY pos",
                      e->id, &e->federates_with, &e->n_federates_with);
        if (r < 0)
                return r;
        return load_strv(s, STMT_ENTRY_SCOPE_GET,
                         "SELECT scope FROM entry_scopes WHERE entry_id = ?1 ORDER BY pos", e->id,
                         &e->scopes, &e->n_scopes);
}

static int load_entry(DsSqlite *s, const char *id, Entry **ret) {
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        _cleanup_(entry_freep) Entry *e = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_ENTRY_GET,
                           "SELECT " ENTRY_COLUMNS " FROM entries e WHERE e.id = ?1", &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, id)) < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = entry_from_row(st, &e);
        if (r < 0)
                return r;
        ds_sqlite_resetp(&st);
        r = load_children(s, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

int ds_sqlite_get_entry(Datastore *ds, const char *id, Entry **ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(entry_freep) Entry *e = NULL;
        int r;

        r = ds_sqlite_begin(s, false);
        if (r < 0)
                return r;
        txn = s;
        r = load_entry(s, id, &e);
        if (r < 0)
                return r;
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        *ret = TAKE_PTR(e);
        return 0;
}

typedef struct EntryList {
        Entry **items;
        size_t n, allocated;
} EntryList;

static void entry_list_done(EntryList *l) {
        entry_array_free(l->items, l->n);
}

/* Appends the entries of every row of st that contain all of `want` (may be
 * NULL), until l holds `limit` entries (0 = no limit). */
static int collect_rows(
        DsSqlite *s, sqlite3_stmt *st, const SelectorSet *want, size_t limit, EntryList *l) {
        int r = 0;

        while ((limit == 0 || l->n < limit) && (r = ds_sqlite_step(st)) > 0) {
                _cleanup_(entry_freep) Entry *e = NULL;

                r = entry_from_row(st, &e);
                if (r < 0)
                        return r;
                r = load_children(s, e);
                if (r < 0)
                        return r;
                if (want && !ds_selectors_contain_all(&e->selectors, want))
                        continue;
                r = ds_ptr_array_push((void ***) &l->items, &l->n, &l->allocated, e);
                if (r < 0)
                        return r;
                TAKE_PTR(e);
        }
        return limit != 0 && l->n >= limit ? 0 : r;
}

enum {
        FILTER_SPIFFE_ID = 1 << 0,
        FILTER_PARENT_ID = 1 << 1,
        FILTER_TASK = 1 << 2,
        FILTER_NODE = 1 << 3,
        FILTER_AFTER = 1 << 4,
        FILTER_SELECTOR = 1 << 5,
};

/* Builds the SQL of a filter combination from constant fragments only; every
 * value is a bound parameter with a fixed number. Every combination but "all" searches
 * an index (migration 3; test_ds_plan.c checks each plan), and all are ordered by id
 * without a sort, so a page (after_id, limit) reads only the rows it returns. */
static void list_sql(unsigned mask, char *buf, size_t size) {
        snprintf(buf, size,
                 "SELECT " ENTRY_COLUMNS " FROM entries e WHERE 1%s%s%s%s%s%s%s ORDER BY e.id",
                 mask & FILTER_SPIFFE_ID ? " AND e.spiffe_id = ?1" : "",
                 mask & FILTER_PARENT_ID ? " AND e.parent_id = ?2" : "",
                 mask & FILTER_TASK ? " AND e.task = ?3" : "",
                 mask & FILTER_NODE ? " AND e.node = 1" : "",
                 mask & FILTER_AFTER ? " AND e.id > ?4" : "",
                 mask & FILTER_SELECTOR ? " AND e.id IN (SELECT entry_id FROM entry_selectors "
                                          "WHERE type = ?5 AND value = ?6"
                                        : "",
                 /* Pages of a selector filter read only the ids after the last one. */
                 mask & FILTER_SELECTOR ? (mask & FILTER_AFTER ? " AND entry_id > ?4)" : ")") : "");
}

static int list_stmt(DsSqlite *s, const EntryFilter *f, sqlite3_stmt **ret) {
        const SelectorSet *sel = f->by_selectors;
        unsigned mask = (f->by_spiffe_id ? FILTER_SPIFFE_ID : 0) |
                        (f->by_parent_id ? FILTER_PARENT_ID : 0) | (f->by_task ? FILTER_TASK : 0) |
                        (f->only_node_aliases ? FILTER_NODE : 0) |
                        (f->after_id ? FILTER_AFTER : 0) |
                        (sel && sel->n > 0 ? FILTER_SELECTOR : 0);
        sqlite3_stmt *st;
        char sql[1024];
        int r;

        _Static_assert(FILTER_SELECTOR * 2 <= DS_LIST_STMT_VARIANTS, "list statement cache size");
        list_sql(mask, sql, sizeof(sql));
        r = ds_sqlite_stmt_slot(s, &s->list_stmts[mask], sql, &st);
        if (r < 0)
                return r;
        if (((mask & FILTER_SPIFFE_ID) && (r = ds_sqlite_bind_text(st, 1, f->by_spiffe_id)) < 0) ||
            ((mask & FILTER_PARENT_ID) && (r = ds_sqlite_bind_text(st, 2, f->by_parent_id)) < 0) ||
            ((mask & FILTER_TASK) && (r = ds_sqlite_bind_text(st, 3, f->by_task)) < 0) ||
            ((mask & FILTER_AFTER) && (r = ds_sqlite_bind_text(st, 4, f->after_id)) < 0) ||
            ((mask & FILTER_SELECTOR) &&
             (r = ds_sqlite_bind_text(st, 5, sel->items[0].type)) < 0) ||
            ((mask & FILTER_SELECTOR) &&
             (r = ds_sqlite_bind_text(st, 6, sel->items[0].value)) < 0)) {
                ds_sqlite_resetp(&st);
                return r;
        }
        *ret = st;
        return 0;
}

int ds_sqlite_list_entries(Datastore *ds, const EntryFilter *f, Entry ***ret, size_t *ret_n) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(entry_list_done) EntryList l = {};
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        const SelectorSet *want =
                f->by_selectors && f->by_selectors->n > 1 ? f->by_selectors : NULL;
        int r;

        r = ds_sqlite_begin(s, false);
        if (r < 0)
                return r;
        txn = s;
        r = list_stmt(s, f, &st);
        if (r < 0)
                return r;
        r = collect_rows(s, st, want, f->limit, &l);
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

int ds_sqlite_list_entries_by_parent_ids(
        Datastore *ds, const char *const *parent_ids, size_t n, Entry ***ret, size_t *ret_n) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(entry_list_done) EntryList l = {};
        int r;

        r = ds_sqlite_begin(s, false);
        if (r < 0)
                return r;
        txn = s;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;

                r = ds_sqlite_stmt(s, STMT_ENTRY_BY_PARENT,
                                   "SELECT " ENTRY_COLUMNS " FROM entries e WHERE e.parent_id = ?1 "
                                   "ORDER BY e.id",
                                   &st);
                if (r < 0 || (r = ds_sqlite_bind_text(st, 1, parent_ids[i])) < 0)
                        return r;
                r = collect_rows(s, st, NULL, 0, &l);
                if (r < 0)
                        return r;
        }
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        *ret = TAKE_PTR(l.items);
        *ret_n = l.n;
        l.n = 0;
        return 0;
}

static int update_row(DsSqlite *s, const Entry *e) {
        _cleanup_free_ char *key = NULL;
        sqlite3_stmt *st;
        int r;

        r = ds_selectors_key(&e->selectors, &key);
        if (r < 0)
                return r;
        r = ds_sqlite_stmt(
                s, STMT_ENTRY_UPDATE,
                "UPDATE entries SET spiffe_id = ?2, parent_id = ?3, selectors_key = ?4, "
                "x509_svid_ttl = ?5, jwt_svid_ttl = ?6, hint = ?7, admin = ?8, node = ?9, "
                "downstream = ?10, expires_at = ?11, revision = revision + 1, env = ?14, "
                "task = ?15, state = ?16, created_by = ?17, approved_by = ?18 "
                "WHERE id = ?1",
                &st);
        if (r < 0)
                return r;
        r = bind_entry(st, e, e->id, key, 0);
        if (r < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 0 ? -ENOENT : 0;
}

int ds_sqlite_update_entry(Datastore *ds, const Entry *e, Entry **ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(entry_freep) Entry *stored = NULL;
        int r;

        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        r = update_row(s, e);
        if (r < 0)
                return r;
        if ((r = delete_children(s, e->id)) < 0 || (r = write_children(s, e->id, e)) < 0 ||
            (r = ds_sqlite_record_change(s, DS_EVENT_ENTRY, e->id)) < 0)
                return r;
        if (ret && (r = load_entry(s, e->id, &stored)) < 0)
                return r;
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        if (ret)
                *ret = TAKE_PTR(stored);
        return 0;
}

int ds_sqlite_delete_entry(Datastore *ds, const char *id) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_ENTRY_DELETE, "DELETE FROM entries WHERE id = ?1", &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, id)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, DS_EVENT_ENTRY, id);
}

int ds_sqlite_count_entries(Datastore *ds, int64_t *ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_ENTRY_COUNT, "SELECT COUNT(*) FROM entries", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}
