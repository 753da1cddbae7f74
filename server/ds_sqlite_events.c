/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite datastore: reading and pruning the change events (ds.h "Change events").
 * Events are appended by the writes themselves (ds_sqlite_record_change()). */
#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "ds_sqlite.h"
#include "greedy_realloc.h"
#include "log.h"

typedef struct EventList {
        DsEvent *items;
        size_t n, allocated;
} EventList;

static void event_list_done(EventList *l) {
        ds_event_array_free(l->items, l->n);
}

static int event_from_row(sqlite3_stmt *st, DsEvent *ret) {
        int64_t id = sqlite3_column_int64(st, 0), kind = sqlite3_column_int64(st, 1);
        char *key = NULL;
        int r;

        /* A kind this binary does not know (written by a newer server sharing the
         * datastore) is passed on: readers skip what they do not know. */
        if (id <= 0 || kind <= 0 || kind > INT32_MAX)
                return log_debug_errno(-EBADMSG, "sqlite: event %lld has kind %lld", (long long) id,
                                       (long long) kind);
        r = ds_sqlite_column_strdup(st, 2, &key);
        if (r < 0)
                return r;
        if (!key)
                return -EBADMSG;
        *ret = (DsEvent){
                .id = (uint64_t) id,
                .kind = (DsEventKind) kind,
                .key = key,
                .at = sqlite3_column_int64(st, 3),
        };
        return 0;
}

int ds_sqlite_list_events(
        Datastore *ds, uint64_t after_id, size_t limit, DsEvent **ret, size_t *ret_n) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(event_list_done) EventList l = {};
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = ds_sqlite_stmt(s, STMT_EVENT_LIST,
                           "SELECT id, kind, key, at FROM events WHERE id > ?1 "
                           "ORDER BY id LIMIT ?2",
                           &st);
        if (r < 0)
                return r;
        /* No stored id exceeds INT64_MAX. */
        if ((r = ds_sqlite_bind_int64(st, 1,
                                      after_id > INT64_MAX ? INT64_MAX : (int64_t) after_id)) < 0 ||
            (r = ds_sqlite_bind_int64(st, 2, (int64_t) limit)) < 0)
                return r;
        while ((r = ds_sqlite_step(st)) > 0) {
                r = GREEDY_REALLOC(l.items, l.allocated, l.n + 1);
                if (r < 0)
                        return r;
                r = event_from_row(st, &l.items[l.n]);
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

int ds_sqlite_last_event_id(Datastore *ds, uint64_t *ret) {
        DsSqlite *s = ds_sqlite(ds);
        _cleanup_(ds_sqlite_resetp) sqlite3_stmt *st = NULL;
        int64_t id = 0;
        int r;

        /* AUTOINCREMENT keeps the largest id ever assigned to events here, committed
         * with the row that got it: right after pruning too. No row: no event yet. A
         * single-row table (one row per AUTOINCREMENT table). */
        r = ds_sqlite_stmt(s, STMT_EVENT_LAST,
                           "SELECT seq FROM sqlite_sequence WHERE name = 'events'", &st);
        if (r < 0)
                return r;
        r = ds_sqlite_step(st);
        if (r < 0)
                return r;
        if (r > 0)
                id = sqlite3_column_int64(st, 0);
        if (id < 0)
                return -EBADMSG;
        *ret = (uint64_t) id;
        return 0;
}

int ds_sqlite_prune_events(Datastore *ds, int64_t before) {
        DsSqlite *s = ds_sqlite(ds);
        sqlite3_stmt *st;
        int r;

        /* One statement, so one implicit transaction; the newest event stays, whatever
         * its age. */
        r = ds_sqlite_stmt(s, STMT_EVENT_PRUNE,
                           "DELETE FROM events WHERE at < ?1 "
                           "AND id < (SELECT MAX(id) FROM events)",
                           &st);
        if (r < 0)
                return r;
        if ((r = ds_sqlite_bind_int64(st, 1, before)) < 0) {
                ds_sqlite_resetp(&st);
                return r;
        }
        r = ds_sqlite_exec_stmt(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db);
}
