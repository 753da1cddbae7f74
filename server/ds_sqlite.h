/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals of the SQLite datastore backend, shared by ds_sqlite*.c and
 * ds_migrate.c. Not for use outside the backend (tests may use ds_migrate()). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "ds_internal.h"

/* Cached prepared statements: one slot per statement, SQL given at the use site. */
typedef enum StmtId {
        STMT_BEGIN,
        STMT_BEGIN_IMMEDIATE,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_SEQ_GET,
        STMT_SEQ_BUMP,
        STMT_EVENT_INSERT,
        STMT_EVENT_LIST,
        STMT_EVENT_LAST,
        STMT_EVENT_PRUNE,
        STMT_ENTRY_INSERT,
        STMT_ENTRY_UPDATE,
        STMT_ENTRY_DELETE,
        STMT_ENTRY_GET,
        STMT_ENTRY_COUNT,
        STMT_ENTRY_BY_PARENT,
        STMT_ENTRY_SEL_INSERT,
        STMT_ENTRY_SEL_GET,
        STMT_ENTRY_SEL_DELETE,
        STMT_ENTRY_DNS_INSERT,
        STMT_ENTRY_DNS_GET,
        STMT_ENTRY_DNS_DELETE,
        STMT_ENTRY_FED_INSERT,
        STMT_ENTRY_FED_GET,
        STMT_ENTRY_FED_DELETE,
        STMT_ENTRY_SCOPE_INSERT,
        STMT_ENTRY_SCOPE_GET,
        STMT_ENTRY_SCOPE_DELETE,
        STMT_AGENT_UPSERT,
        STMT_AGENT_GET,
        STMT_AGENT_LIST,
        STMT_AGENT_BAN,
        STMT_AGENT_DELETE,
        STMT_AGENT_SVID,
        STMT_AGENT_TOUCH,
        STMT_AGENT_SEL_INSERT,
        STMT_AGENT_SEL_GET,
        STMT_AGENT_SEL_DELETE,
        STMT_TOKEN_INSERT,
        STMT_TOKEN_GET,
        STMT_TOKEN_USE,
        STMT_TOKEN_PRUNE,
        STMT_BUNDLE_SET,
        STMT_BUNDLE_GET,
        STMT_BUNDLE_LIST,
        STMT_BUNDLE_DELETE,
        STMT_META_GET,
        STMT_META_SET,
        STMT_AUDIT_INSERT,
        STMT_AUDIT_LAST_SEQ,
        STMT_AUDIT_LAST_HASH,
        STMT_AUDIT_LIST,
        _STMT_MAX,
} StmtId;

/* ds_list_entries() statements, one per combination of filter criteria. */
#define DS_LIST_STMT_VARIANTS 64

typedef struct DsSqlite {
        Datastore base;
        sqlite3 *db;
        bool ready;     /* opened and migrated */
        bool write_txn; /* the open transaction is a write (ds_sqlite_begin()) */
        sqlite3_stmt *stmts[_STMT_MAX];
        sqlite3_stmt *list_stmts[DS_LIST_STMT_VARIANTS];
} DsSqlite;

static inline DsSqlite *ds_sqlite(Datastore *ds) {
        return (DsSqlite *) ds;
}

/* Maps a SQLite result code (primary or extended) to a negative errno:
 * CONSTRAINT -> -EEXIST (NOTNULL/CHECK -> -EINVAL), BUSY/LOCKED -> -EBUSY,
 * CORRUPT/NOTADB -> -EBADMSG, NOMEM -> -ENOMEM, CANTOPEN -> -EACCES,
 * PERM/AUTH/READONLY -> -EACCES, FULL -> -ENOSPC, TOOBIG -> -E2BIG, else -EIO. */
int sqlite_to_errno(int rc);

/* Returns the cached statement `id` (preparing sql the first time), reset and
 * with no bindings. The cache owns it: do not finalize. */
int ds_sqlite_stmt(DsSqlite *s, StmtId id, const char *sql, sqlite3_stmt **ret);
/* The same for a caller-owned cache slot. */
int ds_sqlite_stmt_slot(DsSqlite *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **ret);

/* Steps st: 1 = a row, 0 = done, < 0 = -errno (logged at debug). */
int ds_sqlite_step(sqlite3_stmt *st);
/* Steps st once, expecting no row. 0 or -errno. */
int ds_sqlite_exec_stmt(sqlite3_stmt *st);

/* Runs a statement without parameters (no caching), for schema work. */
int ds_sqlite_exec(sqlite3 *db, const char *sql);

/* Binds s, or NULL when s is NULL. */
int ds_sqlite_bind_text(sqlite3_stmt *st, int idx, const char *s);
int ds_sqlite_bind_int64(sqlite3_stmt *st, int idx, int64_t v);
int ds_sqlite_bind_blob(sqlite3_stmt *st, int idx, const void *data, size_t len);
/* Duplicates a text column; a NULL column gives *ret = NULL. */
int ds_sqlite_column_strdup(sqlite3_stmt *st, int col, char **ret);

/* Transactions: begin (deferred for reads, immediate for writes), commit, and a
 * rollback that accepts a connection with no transaction open. */
int ds_sqlite_begin(DsSqlite *s, bool write);
int ds_sqlite_commit(DsSqlite *s);
void ds_sqlite_rollback(DsSqlite *s);
/* _cleanup_ helper: rolls back when the pointer is still set. */
static inline void ds_sqlite_rollbackp(DsSqlite **s) {
        if (*s)
                ds_sqlite_rollback(*s);
}
/* _cleanup_ helper: resets a borrowed cached statement (releases its locks). */
static inline void ds_sqlite_resetp(sqlite3_stmt **st) {
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}

/* Appends the staged audit records of s->base (ds_internal.h), inside the caller's
 * write transaction; ds_sqlite_commit() calls it. */
int ds_sqlite_audit_write(DsSqlite *s);

/* Adds 1 to the persisted change sequence (inside the caller's transaction). */
int ds_sqlite_bump_change_seq(DsSqlite *s);
/* Appends one row to the events table, at = now (inside the caller's transaction). */
int ds_sqlite_append_event(DsSqlite *s, DsEventKind kind, const char *key);
/* A write that changes what agents are served: bumps the change sequence and appends
 * the event (kind, key), inside the caller's transaction. Every such write calls this
 * (or, for a batch, the two above) just before it commits. */
int ds_sqlite_record_change(DsSqlite *s, DsEventKind kind, const char *key);

/* Runs the bound statement st (an UPDATE or DELETE of one row) in its own
 * transaction. A non-NULL key makes it a change: ds_sqlite_record_change(kind, key)
 * in the same transaction; a NULL key (kind 0) records nothing. -ENOENT when no row
 * changed (nothing is committed then). st is reset in every case. */
int ds_sqlite_run_write(DsSqlite *s, sqlite3_stmt *st, DsEventKind kind, const char *key);

/* Runs the cached statement id (sql selects type, value for ?1 = owner) and adds
 * every row to set. -EBADMSG for a NULL column; selector_set_add() errors. */
int ds_sqlite_load_selectors(
        DsSqlite *s, StmtId id, const char *sql, const char *owner, SelectorSet *set);

/* Applies the migrations that bring db from its PRAGMA user_version up to
 * `target` (1..DS_SCHEMA_VERSION), each in its own immediate transaction.
 * -ENOTSUP when the database is already newer than DS_SCHEMA_VERSION. */
int ds_migrate(sqlite3 *db, int target);
/* PRAGMA user_version of db. */
int ds_migrate_read_version(sqlite3 *db, int *ret);

/* Backend operations, by file. */
/* ds_sqlite_entries.c */
int ds_sqlite_create_entries(Datastore *ds,
                             Entry *const *entries,
                             char *const *ids,
                             size_t n,
                             int64_t now,
                             size_t *reterr_index);
int ds_sqlite_get_entry(Datastore *ds, const char *id, Entry **ret);
int ds_sqlite_list_entries(Datastore *ds, const EntryFilter *f, Entry ***ret, size_t *ret_n);
int ds_sqlite_list_entries_by_parent_ids(
        Datastore *ds, const char *const *parent_ids, size_t n, Entry ***ret, size_t *ret_n);
int ds_sqlite_update_entry(Datastore *ds, const Entry *e, Entry **ret);
int ds_sqlite_delete_entry(Datastore *ds, const char *id);
int ds_sqlite_count_entries(Datastore *ds, int64_t *ret);
/* ds_sqlite_agents.c */
int ds_sqlite_upsert_agent(Datastore *ds, const AttestedAgent *a, int64_t now);
int ds_sqlite_get_agent(Datastore *ds, const char *spiffe_id, AttestedAgent **ret);
int ds_sqlite_list_agents(
        Datastore *ds, const char *after_id, size_t limit, AttestedAgent ***ret, size_t *ret_n);
int ds_sqlite_set_agent_banned(Datastore *ds, const char *spiffe_id, bool banned);
int ds_sqlite_delete_agent(Datastore *ds, const char *spiffe_id);
int ds_sqlite_update_agent_svid(Datastore *ds,
                                const char *spiffe_id,
                                const char *serial,
                                int64_t exp);
int ds_sqlite_touch_agent(Datastore *ds, const char *spiffe_id, int64_t now);
/* ds_sqlite_audit.c */
int ds_sqlite_audit_append(Datastore *ds);
int ds_sqlite_audit_list(Datastore *ds, const DsAuditFilter *f, DsAuditRecord **ret, size_t *ret_n);
/* ds_sqlite_events.c */
int ds_sqlite_list_events(
        Datastore *ds, uint64_t after_id, size_t limit, DsEvent **ret, size_t *ret_n);
int ds_sqlite_last_event_id(Datastore *ds, uint64_t *ret);
int ds_sqlite_prune_events(Datastore *ds, int64_t before);
/* ds_sqlite_tokens.c (join tokens and bundles) */
int ds_sqlite_create_join_token(Datastore *ds,
                                const uint8_t hash[DS_TOKEN_HASH_SIZE],
                                int64_t expires_at,
                                const char *alias_spiffe_id,
                                int64_t now);
int ds_sqlite_consume_join_token(Datastore *ds,
                                 const uint8_t hash[DS_TOKEN_HASH_SIZE],
                                 int64_t now,
                                 int64_t *ret_expires_at,
                                 char **ret_alias_spiffe_id);
int ds_sqlite_prune_join_tokens(Datastore *ds, int64_t now);
int ds_sqlite_set_bundle(
        Datastore *ds, const char *td, const uint8_t *data, size_t len, int64_t now);
int ds_sqlite_get_bundle(Datastore *ds, const char *td, uint8_t **ret_data, size_t *ret_len);
int ds_sqlite_list_bundles(Datastore *ds, BundleRow ***ret, size_t *ret_n);
int ds_sqlite_delete_bundle(Datastore *ds, const char *td);
