/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite datastore: the hash-chained audit log (ds.h "Audit log"). Records are
 * appended inside the transaction of the write they describe: ds_sqlite_commit()
 * calls ds_sqlite_audit_write() for the records the front end staged. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "ds_sqlite.h"
#include "greedy_realloc.h"
#include "log.h"

/* The seq the next record gets (AUTOINCREMENT's counter + 1) and the hash of the newest
 * stored record (zeros when none is). */
static int audit_tail(DsSqlite *s, uint64_t *ret_seq, uint8_t prev[DS_AUDIT_HASH_SIZE]) {
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL, *hs = NULL;
        int64_t last = 0;
        int r;

        r = ds_sqlite_stmt(s, STMT_AUDIT_LAST_SEQ,
                           "SELECT seq FROM sqlite_sequence WHERE name = 'audit'", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r > 0)
                last = sqlite3_column_int64(st, 0);
        if (last < 0 || last == INT64_MAX)
                return -EBADMSG;
        r = ds_sqlite_stmt(s, STMT_AUDIT_LAST_HASH,
                           "SELECT hash FROM audit WHERE seq = (SELECT max(seq) FROM audit)", &hs);
        if (r < 0)
                return r;
        r = ds_sqlite_step(hs);
        if (r < 0)
                return r;
        memset(prev, 0, DS_AUDIT_HASH_SIZE);
        if (r > 0) {
                if (sqlite3_column_bytes(hs, 0) != DS_AUDIT_HASH_SIZE)
                        return -EBADMSG;
                memcpy(prev, sqlite3_column_blob(hs, 0), DS_AUDIT_HASH_SIZE);
        }
        *ret_seq = (uint64_t) last + 1;
        return 0;
}

static int audit_insert(DsSqlite *s, const DsAuditRecord *rec) {
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_AUDIT_INSERT,
                           "INSERT INTO audit (seq, at, kind, actor, subject, data, prev_hash, "
                           "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_int64(st, 1, (int64_t) rec->seq)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, rec->at)) < 0 ||
            (r = ds_sqlite_bind_text(st, 3, rec->kind)) < 0 ||
            (r = ds_sqlite_bind_text(st, 4, rec->actor)) < 0 ||
            (r = ds_sqlite_bind_text(st, 5, rec->subject)) < 0 ||
            (r = ds_sqlite_bind_text(st, 6, rec->data)) < 0 ||
            (r = ds_sqlite_bind_blob(st, 7, rec->prev_hash, DS_AUDIT_HASH_SIZE)) < 0 ||
            (r = ds_sqlite_bind_blob(st, 8, rec->hash, DS_AUDIT_HASH_SIZE)) < 0)
                return r;
        return ds_sqlite_exec_stmt(TAKE_PTR(st));
}

int ds_sqlite_audit_write(DsSqlite *s) {
        DsAuditRecord rec = {
                .at = (int64_t) time(NULL),
                .actor = (char *) ds_get_actor(&s->base),
        };
        int r;

        r = audit_tail(s, &rec.seq, rec.prev_hash);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->base.n_audit; i++) {
                rec.kind = (char *) s->base.audit[i].kind;
                rec.subject = s->base.audit[i].subject;
                rec.data = s->base.audit[i].data;
                r = ds_audit_hash(&rec, rec.hash);
                if (r < 0)
                        return r;
                r = audit_insert(s, &rec);
                if (r < 0)
                        return log_debug_errno(r, "sqlite: appending audit record: %m");
                memcpy(rec.prev_hash, rec.hash, DS_AUDIT_HASH_SIZE);
                rec.seq++;
        }
        return 0;
}

int ds_sqlite_audit_append(Datastore *ds) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_rollbackp) DsSqlite *txn = NULL;
        int r;

        r = ds_sqlite_begin(s, true);
        if (r < 0)
                return r;
        txn = s;
        r = ds_sqlite_commit(s); /* appends the staged records */
        if (r < 0)
                return r;
        txn = NULL;
        return 0;
}

typedef struct RecordList {
        DsAuditRecord *items;
        size_t n, allocated;
} RecordList;

static void record_list_done(RecordList *l) {
        ds_audit_record_array_free(l->items, l->n);
}

static int blob32(sqlite3_stmt *st, int col, uint8_t ret[DS_AUDIT_HASH_SIZE]) {
        /* A wrong size is kept visible to verify as a mismatch, not an error. */
        int len = sqlite3_column_bytes(st, col);
        const void *p = sqlite3_column_blob(st, col);

        memset(ret, 0, DS_AUDIT_HASH_SIZE);
        if (p && len > 0)
                memcpy(ret, p, len < DS_AUDIT_HASH_SIZE ? (size_t) len : DS_AUDIT_HASH_SIZE);
        if (len != DS_AUDIT_HASH_SIZE)
                ret[0] ^= 0xff; /* never equal to a real hash of the same prefix */
        return 0;
}

static int record_from_row(sqlite3_stmt *st, DsAuditRecord *ret) {
        DsAuditRecord rec = {
                .seq = (uint64_t) sqlite3_column_int64(st, 0),
                .at = sqlite3_column_int64(st, 1),
        };
        int r;

        if ((r = ds_sqlite_column_strdup(st, 2, &rec.kind)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 3, &rec.actor)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 4, &rec.subject)) < 0 ||
            (r = ds_sqlite_column_strdup(st, 5, &rec.data)) < 0)
                goto fail;
        if (!rec.kind || !rec.actor || !rec.subject || !rec.data) {
                r = -EBADMSG;
                goto fail;
        }
        (void) blob32(st, 6, rec.prev_hash);
        (void) blob32(st, 7, rec.hash);
        *ret = rec;
        return 0;
fail:
        free(rec.kind);
        free(rec.actor);
        free(rec.subject);
        free(rec.data);
        return r;
}

int ds_sqlite_audit_list(Datastore *ds,
                         const DsAuditFilter *f,
                         DsAuditRecord **ret,
                         size_t *ret_n) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(record_list_done) RecordList l = {};
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_AUDIT_LIST,
                           "SELECT seq, at, kind, actor, subject, data, prev_hash, hash FROM audit "
                           "WHERE seq > ?1 AND (?2 = 0 OR at >= ?2) AND (?3 = 0 OR at <= ?3) "
                           "AND (?4 IS NULL OR subject = ?4) AND (?5 IS NULL OR kind = ?5) "
                           "ORDER BY seq LIMIT ?6",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_int64(st, 1, (int64_t) f->after_seq)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, f->since)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 3, f->until)) < 0 ||
            (r = ds_sqlite_bind_text(st, 4, f->subject)) < 0 ||
            (r = ds_sqlite_bind_text(st, 5, f->kind)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 6, (int64_t) f->limit)) < 0)
                return r;
        while ((r = ds_sqlite_step(st)) > 0) {
                r = GREEDY_REALLOC(l.items, l.allocated, l.n + 1);
                if (r < 0)
                        return r;
                r = record_from_row(st, &l.items[l.n]);
                if (r < 0)
                        return r;
                l.n++;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l.items);
        *ret_n = l.n;
        l.n = 0;
        return 0;
}
