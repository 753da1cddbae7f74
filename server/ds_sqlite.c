/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite datastore: connection, statement cache, transactions, error mapping. */
#include "ds_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#define DS_BUSY_TIMEOUT_MS 5000

int sqlite_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_CONSTRAINT:
                if (rc == SQLITE_CONSTRAINT_NOTNULL || rc == SQLITE_CONSTRAINT_CHECK)
                        return -EINVAL;
                return -EEXIST;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
        case SQLITE_READONLY:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_TOOBIG:
                return -E2BIG;
        default:
                return -EIO;
        }
}

int ds_sqlite_stmt_slot(DsSqlite *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **ret) {
        int rc;

        if (!*slot) {
                rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
                if (rc != SQLITE_OK) {
                        log_debug("sqlite: prepare failed: %s", sqlite3_errmsg(s->db));
                        *slot = NULL;
                        return sqlite_to_errno(rc);
                }
        } else {
                sqlite3_reset(*slot);
                sqlite3_clear_bindings(*slot);
        }
        *ret = *slot;
        return 0;
}

int ds_sqlite_stmt(DsSqlite *s, StmtId id, const char *sql, sqlite3_stmt **ret) {
        return ds_sqlite_stmt_slot(s, &s->stmts[id], sql, ret);
}

int ds_sqlite_step(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        log_debug("sqlite: step failed: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
        return sqlite_to_errno(rc);
}

int ds_sqlite_exec_stmt(sqlite3_stmt *st) {
        int r = ds_sqlite_step(st);

        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (r < 0)
                return r;
        return r == 0 ? 0 : -EIO;
}

int ds_sqlite_exec(sqlite3 *db, const char *sql) {
        char *msg = NULL;
        int rc;

        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                log_debug("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return sqlite_to_errno(rc);
        }
        return 0;
}

int ds_sqlite_bind_text(sqlite3_stmt *st, int idx, const char *s) {
        int rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, idx);

        return sqlite_to_errno(rc);
}

int ds_sqlite_bind_int64(sqlite3_stmt *st, int idx, int64_t v) {
        return sqlite_to_errno(sqlite3_bind_int64(st, idx, v));
}

int ds_sqlite_bind_blob(sqlite3_stmt *st, int idx, const void *data, size_t len) {
        return sqlite_to_errno(sqlite3_bind_blob64(st, idx, data, len, SQLITE_STATIC));
}

int ds_sqlite_column_strdup(sqlite3_stmt *st, int col, char **ret) {
        const unsigned char *t = sqlite3_column_text(st, col);
        char *c = NULL;

        if (t) {
                c = strdup((const char *) t);
                if (!c)
                        return -ENOMEM;
        } else if (sqlite3_column_type(st, col) != SQLITE_NULL)
                return -ENOMEM; /* conversion to text failed */
        *ret = c;
        return 0;
}

int ds_sqlite_begin(DsSqlite *s, bool write) {
        sqlite3_stmt *st;
        int r;

        if (write)
                r = ds_sqlite_stmt(s, STMT_BEGIN_IMMEDIATE, "BEGIN IMMEDIATE", &st);
        else
                r = ds_sqlite_stmt(s, STMT_BEGIN, "BEGIN", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_exec_stmt(st);
        if (r >= 0)
                s->write_txn = write;
        return r;
}

int ds_sqlite_commit(DsSqlite *s) {
        sqlite3_stmt *st;
        int r;

        /* The audit records of a write go into its own transaction. */
        if (s->write_txn && s->base.n_audit > 0 && !s->base.audit_written) {
                r = ds_sqlite_audit_write(s);
                if (r < 0)
                        return r;
        }
        r = ds_sqlite_stmt(s, STMT_COMMIT, "COMMIT", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        if (s->write_txn && s->base.n_audit > 0)
                s->base.audit_written = true;
        s->write_txn = false;
        return 0;
}

void ds_sqlite_rollback(DsSqlite *s) {
        sqlite3_stmt *st;

        s->write_txn = false;
        if (sqlite3_get_autocommit(s->db))
                return; /* no transaction open (SQLite may have rolled back itself) */
        if (ds_sqlite_stmt(s, STMT_ROLLBACK, "ROLLBACK", &st) < 0 || ds_sqlite_exec_stmt(st) < 0)
                log_debug("sqlite: rollback failed: %s", sqlite3_errmsg(s->db));
}

int ds_sqlite_bump_change_seq(DsSqlite *s) {
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_SEQ_BUMP,
                           "UPDATE meta SET value = value + 1 WHERE key = 'change_seq'", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 1 ? 0 : -EBADMSG;
}

int ds_sqlite_append_event(DsSqlite *s, DsEventKind kind, const char *key) {
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_EVENT_INSERT,
                           "INSERT INTO events (kind, key, at) VALUES (?1, ?2, ?3)", &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_int64(st, 1, kind)) < 0 ||
            (r = ds_sqlite_bind_text(st, 2, key)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 3, (int64_t) time(NULL))) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_exec_stmt(st);
}

int ds_sqlite_record_change(DsSqlite *s, DsEventKind kind, const char *key) {
        int r = ds_sqlite_bump_change_seq(s);

        return r < 0 ? r : ds_sqlite_append_event(s, kind, key);
}

int ds_sqlite_run_write(DsSqlite *s, sqlite3_stmt *st, DsEventKind kind, const char *key) {
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *reset = st;
        int r;

        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        r = ds_sqlite_exec_stmt(TAKE_PTR(reset));
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) == 0)
                return -ENOENT;
        if (key && (r = ds_sqlite_record_change(s, kind, key)) < 0)
                return r;
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        return 0;
}

int ds_sqlite_load_selectors(
        DsSqlite *s, StmtId id, const char *sql, const char *owner, SelectorSet *set) {
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, id, sql, &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, owner)) < 0)
                return r;
        while ((r = ds_sqlite_step(st)) > 0) {
                const char *type = (const char *) sqlite3_column_text(st, 0);
                const char *value = (const char *) sqlite3_column_text(st, 1);
                if (!type || !value)
                        return -EBADMSG;
                r = selector_set_add(set, type, value);
                if (r < 0)
                        return r;
        }
        return r;
}

static int ds_sqlite_change_sequence(Datastore *ds, uint64_t *ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_SEQ_GET, "SELECT value FROM meta WHERE key = 'change_seq'", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;
        *ret = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

static int ds_sqlite_get_meta(Datastore *ds, const char *key, int64_t *ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_META_GET, "SELECT value FROM meta WHERE key = ?1", &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, key)) < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int ds_sqlite_set_meta(Datastore *ds, const char *key, int64_t value) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_META_SET,
                           "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, key)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, value)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, 0, NULL);
}

static int ds_sqlite_schema_version(Datastore *ds) {
        int r, v;

        r = ds_migrate_read_version(ds_sqlite(ds)->db, &v);
        return r < 0 ? r : v;
}

static void ds_sqlite_close(Datastore *ds) {
        DsSqlite *s = ds_sqlite(ds);

        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(s->stmts[i]);
        for (size_t i = 0; i < DS_LIST_STMT_VARIANTS; i++)
                sqlite3_finalize(s->list_stmts[i]);
        if (s->db) {
                if (s->ready)
                        (void) ds_sqlite_exec(s->db, "PRAGMA optimize");
                if (sqlite3_close(s->db) != SQLITE_OK)
                        log_debug("sqlite: close failed: %s", sqlite3_errmsg(s->db));
        }
        free(s);
}

static const DatastoreOps sqlite_ops = {
        .name = "sqlite",
        .close = ds_sqlite_close,
        .schema_version = ds_sqlite_schema_version,
        .change_sequence = ds_sqlite_change_sequence,
        .list_events = ds_sqlite_list_events,
        .last_event_id = ds_sqlite_last_event_id,
        .audit_append = ds_sqlite_audit_append,
        .audit_list = ds_sqlite_audit_list,
        .prune_events = ds_sqlite_prune_events,
        .create_entries = ds_sqlite_create_entries,
        .get_entry = ds_sqlite_get_entry,
        .list_entries = ds_sqlite_list_entries,
        .list_entries_by_parent_ids = ds_sqlite_list_entries_by_parent_ids,
        .update_entry = ds_sqlite_update_entry,
        .delete_entry = ds_sqlite_delete_entry,
        .count_entries = ds_sqlite_count_entries,
        .upsert_agent = ds_sqlite_upsert_agent,
        .get_agent = ds_sqlite_get_agent,
        .list_agents = ds_sqlite_list_agents,
        .set_agent_banned = ds_sqlite_set_agent_banned,
        .delete_agent = ds_sqlite_delete_agent,
        .update_agent_svid = ds_sqlite_update_agent_svid,
        .touch_agent = ds_sqlite_touch_agent,
        .create_join_token = ds_sqlite_create_join_token,
        .consume_join_token = ds_sqlite_consume_join_token,
        .prune_join_tokens = ds_sqlite_prune_join_tokens,
        .set_bundle = ds_sqlite_set_bundle,
        .get_bundle = ds_sqlite_get_bundle,
        .list_bundles = ds_sqlite_list_bundles,
        .delete_bundle = ds_sqlite_delete_bundle,
        .get_meta = ds_sqlite_get_meta,
        .set_meta = ds_sqlite_set_meta,
};

/* Creates a missing database file with mode 0600 ourselves (SQLite would use
 * 0644 & ~umask); tightens an existing one that others may read. */
static int prepare_file(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0)
                return 0;
        if (errno != EEXIST)
                return log_debug_errno(-errno, "sqlite: cannot create %s: %m", path);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return log_debug_errno(-errno, "sqlite: cannot open %s: %m", path);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0)
                log_debug_errno(-errno, "sqlite: cannot make %s private: %m, ignoring", path);
        return 0;
}

/* Page cache and memory-mapped I/O: the defaults (2 MB, no mmap) turn every read of a
 * large datastore into pread calls. */
static int configure_memory(sqlite3 *db, const DsSqliteOptions *o) {
        char sql[96];
        int r;

        /* A negative cache_size is in KiB. */
        snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%lld",
                 (long long) (o->cache_bytes / 1024));
        r = ds_sqlite_exec(db, sql);
        if (r < 0)
                return r;
        snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %lld", (long long) o->mmap_bytes);
        return ds_sqlite_exec(db, sql);
}

static int configure(sqlite3 *db, const DsSqliteOptions *o) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        /* Changes the file (journal mode byte): run only after the version check. */
        rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *mode = (const char *) sqlite3_column_text(st, 0);
                if (!mode || strcasecmp(mode, "wal") != 0)
                        log_debug("sqlite: journal mode is %s, not WAL", strna(mode));
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) {
                log_debug("sqlite: enabling WAL: %s", sqlite3_errmsg(db));
                return sqlite_to_errno(rc);
        }
        r = ds_sqlite_exec(db, "PRAGMA foreign_keys = ON");
        if (r < 0)
                return r;
        r = ds_sqlite_exec(db, "PRAGMA synchronous = NORMAL");
        if (r < 0)
                return r;
        return configure_memory(db, o);
}

static int open_db(const char *path, int flags, sqlite3 **ret) {
        sqlite3 *db = NULL;
        int rc;

        rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                int sys = db ? sqlite3_system_errno(db) : 0;
                log_debug("sqlite: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "");
                sqlite3_close(db);
                if ((rc & 0xff) == SQLITE_CANTOPEN && sys == ENOENT)
                        return -ENOENT;
                return sqlite_to_errno(rc);
        }
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, DS_BUSY_TIMEOUT_MS);
        /* Defence in depth against a tampered file: no schema-defined SQL functions
         * or views running with our privileges, no writable_schema tricks. */
        (void) sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        (void) sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        *ret = db;
        return 0;
}

int ds_sqlite_file_schema_version(const char *path, int *ret) {
        sqlite3 *db = NULL;
        int r, v;

        if (!path || !*path || !ret)
                return -EINVAL;
        r = open_db(path, SQLITE_OPEN_READONLY, &db);
        if (r < 0)
                return r;
        r = ds_migrate_read_version(db, &v);
        sqlite3_close(db);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int ds_open_sqlite(const char *path, Datastore **ret) {
        return ds_open_sqlite_with(path, NULL, ret);
}

int ds_open_sqlite_with(const char *path, const DsSqliteOptions *o, Datastore **ret) {
        static const DsSqliteOptions defaults = {
                .cache_bytes = DS_CACHE_BYTES_DEFAULT,
                .mmap_bytes = DS_MMAP_BYTES_DEFAULT,
        };
        DsSqlite *s;
        int r, v;

        if (!o)
                o = &defaults;
        if (!path || !*path || !ret || o->cache_bytes < DS_CACHE_BYTES_MIN ||
            o->cache_bytes > DS_CACHE_BYTES_MAX || o->mmap_bytes < 0 ||
            o->mmap_bytes > DS_MMAP_BYTES_MAX)
                return -EINVAL;
        r = prepare_file(path);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(DsSqlite));
        if (!s)
                return -ENOMEM;
        s->base.ops = &sqlite_ops;

        r = open_db(path, SQLITE_OPEN_READWRITE, &s->db);
        if (r < 0)
                goto fail;
        /* Read before changing anything: a newer or corrupt file stays untouched. */
        r = ds_migrate_read_version(s->db, &v);
        if (r < 0)
                goto fail;
        if (v > DS_SCHEMA_VERSION) {
                log_debug("sqlite: %s has schema version %d, newer than this binary supports "
                          "(%d)",
                          path, v, DS_SCHEMA_VERSION);
                r = -ENOTSUP;
                goto fail;
        }
        r = configure(s->db, o);
        if (r < 0)
                goto fail;
        r = ds_migrate(s->db, DS_SCHEMA_VERSION);
        if (r < 0)
                goto fail;
        s->ready = true;
        *ret = &s->base;
        return 0;
fail:
        ds_sqlite_close(&s->base);
        return r;
}
