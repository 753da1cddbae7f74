/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite datastore: join tokens (stored as SHA-256 hashes) and federation bundles. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ds_sqlite.h"
#include "log.h"

int ds_sqlite_create_join_token(Datastore *ds,
                                const uint8_t hash[DS_TOKEN_HASH_SIZE],
                                int64_t expires_at,
                                const char *alias_spiffe_id,
                                int64_t now) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(
                s, STMT_TOKEN_INSERT,
                "INSERT INTO join_tokens (hash, expires_at, alias_spiffe_id, created_at) "
                "VALUES (?1, ?2, ?3, ?4)",
                &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_blob(st, 1, hash, DS_TOKEN_HASH_SIZE)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, expires_at)) < 0 ||
            (r = ds_sqlite_bind_text(st, 3, alias_spiffe_id)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 4, now)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        /* A transaction of its own, for the audit record. */
        return ds_sqlite_run_write(s, st, 0, NULL);
}

/* Reads the token row inside the caller's transaction and checks it can be used. */
static int check_token(DsSqlite *s,
                       const uint8_t hash[DS_TOKEN_HASH_SIZE],
                       int64_t now,
                       int64_t *ret_expires_at,
                       char **ret_alias) {
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *alias = NULL;
        int64_t expires_at;
        int r;

        r = ds_sqlite_stmt(
                s, STMT_TOKEN_GET,
                "SELECT expires_at, alias_spiffe_id, used_at FROM join_tokens WHERE hash = ?1",
                &st);
        if (r < 0 || (r = ds_sqlite_bind_blob(st, 1, hash, DS_TOKEN_HASH_SIZE)) < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL)
                return -EALREADY;
        expires_at = sqlite3_column_int64(st, 0);
        if (now >= expires_at)
                return -EKEYEXPIRED;
        r = ds_sqlite_column_strdup(st, 1, &alias);
        if (r < 0)
                return r;
        *ret_expires_at = expires_at;
        *ret_alias = TAKE_PTR(alias);
        return 0;
}

int ds_sqlite_consume_join_token(Datastore *ds,
                                 const uint8_t hash[DS_TOKEN_HASH_SIZE],
                                 int64_t now,
                                 int64_t *ret_expires_at,
                                 char **ret_alias_spiffe_id) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        _cleanup_free_ char *alias = NULL;
        int64_t expires_at = 0;
        sqlite3_stmt *st;
        int r;

        /* An immediate transaction: two servers cannot both see the token unused. */
        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        r = check_token(s, hash, now, &expires_at, &alias);
        if (r < 0)
                return r;
        r = ds_sqlite_stmt(
                s, STMT_TOKEN_USE,
                "UPDATE join_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL", &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_blob(st, 1, hash, DS_TOKEN_HASH_SIZE)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, now)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) != 1)
                return -EALREADY;
        r = ds_sqlite_commit(s);
        if (r < 0)
                return r;
        txn = NULL;
        *ret_expires_at = expires_at;
        *ret_alias_spiffe_id = TAKE_PTR(alias);
        return 0;
}

int ds_sqlite_prune_join_tokens(Datastore *ds, int64_t now) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_TOKEN_PRUNE, "DELETE FROM join_tokens WHERE expires_at <= ?1",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_int64(st, 1, now)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db);
}

int ds_sqlite_set_bundle(
        Datastore *ds, const char *td, const uint8_t *data, size_t len, int64_t now) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        r = ds_sqlite_stmt(
                s, STMT_BUNDLE_SET,
                "INSERT INTO bundles (trust_domain, data, updated_at) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (trust_domain) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, td)) < 0 ||
            (r = ds_sqlite_bind_blob(st, 2, data, len)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 3, now)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        if ((r = ds_sqlite_exec_stmt(st)) < 0 ||
            (r = ds_sqlite_record_change(s, DS_EVENT_BUNDLE, td)) < 0 ||
            (r = ds_sqlite_commit(s)) < 0)
                return r;
        txn = NULL;
        return 0;
}

static int column_blob_dup(sqlite3_stmt *st, int col, uint8_t **ret, size_t *ret_len) {
        const void *p = sqlite3_column_blob(st, col);
        int n = sqlite3_column_bytes(st, col);
        uint8_t *c;

        if (n < 0 || (!p && n > 0))
                return -ENOMEM;
        c = malloc(n > 0 ? (size_t) n : 1);
        if (!c)
                return -ENOMEM;
        if (n > 0)
                memcpy(c, p, (size_t) n);
        *ret = c;
        *ret_len = (size_t) n;
        return 0;
}

int ds_sqlite_get_bundle(Datastore *ds, const char *td, uint8_t **ret_data, size_t *ret_len) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_BUNDLE_GET, "SELECT data FROM bundles WHERE trust_domain = ?1",
                           &st);
        if (r < 0 || (r = ds_sqlite_bind_text(st, 1, td)) < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        return column_blob_dup(st, 0, ret_data, ret_len);
}

typedef struct BundleList {
        BundleRow **items;
        size_t n, allocated;
} BundleList;

static void bundle_list_done(BundleList *l) {
        bundle_row_array_free(l->items, l->n);
}

static int bundle_from_row(sqlite3_stmt *st, BundleRow **ret) {
        _cleanup_(bundle_row_freep) BundleRow *b = NULL;
        int r;

        b = calloc(1, sizeof(BundleRow));
        if (!b)
                return -ENOMEM;
        if ((r = ds_sqlite_column_strdup(st, 0, &b->trust_domain)) < 0 ||
            (r = column_blob_dup(st, 1, &b->data, &b->len)) < 0)
                return r;
        if (!b->trust_domain)
                return -EBADMSG;
        b->updated_at = sqlite3_column_int64(st, 2);
        *ret = TAKE_PTR(b);
        return 0;
}

int ds_sqlite_list_bundles(Datastore *ds, BundleRow ***ret, size_t *ret_n) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(bundle_list_done) BundleList l = {};
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(
                s, STMT_BUNDLE_LIST,
                "SELECT trust_domain, data, updated_at FROM bundles ORDER BY trust_domain", &st);
        if (r < 0)
                return r;
        while ((r = ds_sqlite_step(st)) > 0) {
                _cleanup_(bundle_row_freep) BundleRow *b = NULL;

                r = bundle_from_row(st, &b);
                if (r < 0)
                        return r;
                r = ds_ptr_array_push((void ***) &l.items, &l.n, &l.allocated, b);
                if (r < 0)
                        return r;
                TAKE_PTR(b);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l.items);
        *ret_n = l.n;
        l.n = 0;
        return 0;
}

int ds_sqlite_delete_bundle(Datastore *ds, const char *td) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        r = ds_sqlite_stmt(s, STMT_BUNDLE_DELETE, "DELETE FROM bundles WHERE trust_domain = ?1",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_text(st, 1, td)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        return ds_sqlite_run_write(s, st, DS_EVENT_BUNDLE, td);
}
