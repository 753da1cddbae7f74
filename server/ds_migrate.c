/* SPDX-License-Identifier: Apache-2.0 */
/* Numbered schema migrations of the SQLite datastore. Migration N brings a
 * database from PRAGMA user_version N-1 to N. Never edit a released migration:
 * append a new one and raise DS_SCHEMA_VERSION (ds.h). */
#include <errno.h>
#include <stdio.h>

#include "ds_sqlite.h"
#include "log.h"

static const char migration_1[] =
        "CREATE TABLE meta ("
        "  key TEXT PRIMARY KEY NOT NULL,"
        "  value INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "INSERT INTO meta (key, value) VALUES ('change_seq', 0);"

        "CREATE TABLE entries ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  spiffe_id TEXT NOT NULL,"
        "  parent_id TEXT NOT NULL,"
        "  selectors_key TEXT NOT NULL,"
        "  x509_svid_ttl INTEGER NOT NULL DEFAULT 0,"
        "  jwt_svid_ttl INTEGER NOT NULL DEFAULT 0,"
        "  hint TEXT,"
        "  admin INTEGER NOT NULL DEFAULT 0,"
        "  node INTEGER NOT NULL DEFAULT 0,"
        "  downstream INTEGER NOT NULL DEFAULT 0,"
        "  expires_at INTEGER NOT NULL DEFAULT 0,"
        "  revision INTEGER NOT NULL,"
        "  created_at INTEGER NOT NULL,"
        "  UNIQUE (spiffe_id, parent_id, selectors_key)"
        ");"
        "CREATE INDEX entries_parent_id ON entries (parent_id);"
        "CREATE TABLE entry_selectors ("
        "  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
        "  type TEXT NOT NULL,"
        "  value TEXT NOT NULL,"
        "  PRIMARY KEY (entry_id, type, value)"
        ") WITHOUT ROWID;"
        "CREATE INDEX entry_selectors_type_value ON entry_selectors (type, value);"
        "CREATE TABLE entry_dns ("
        "  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
        "  pos INTEGER NOT NULL,"
        "  name TEXT NOT NULL,"
        "  PRIMARY KEY (entry_id, pos)"
        ") WITHOUT ROWID;"
        "CREATE TABLE entry_federates ("
        "  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
        "  pos INTEGER NOT NULL,"
        "  trust_domain TEXT NOT NULL,"
        "  PRIMARY KEY (entry_id, pos)"
        ") WITHOUT ROWID;"

        "CREATE TABLE agents ("
        "  spiffe_id TEXT PRIMARY KEY NOT NULL,"
        "  attestation_type TEXT NOT NULL,"
        "  serial TEXT,"
        "  svid_expires_at INTEGER NOT NULL DEFAULT 0,"
        "  banned INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL,"
        "  last_seen_at INTEGER NOT NULL DEFAULT 0"
        ") WITHOUT ROWID;"
        "CREATE TABLE agent_selectors ("
        "  agent_id TEXT NOT NULL REFERENCES agents (spiffe_id) ON DELETE CASCADE,"
        "  type TEXT NOT NULL,"
        "  value TEXT NOT NULL,"
        "  PRIMARY KEY (agent_id, type, value)"
        ") WITHOUT ROWID;"

        "CREATE TABLE join_tokens ("
        "  hash BLOB PRIMARY KEY NOT NULL,"
        "  expires_at INTEGER NOT NULL,"
        "  alias_spiffe_id TEXT,"
        "  created_at INTEGER NOT NULL,"
        "  used_at INTEGER"
        ") WITHOUT ROWID;"
        "CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);"

        "CREATE TABLE bundles ("
        "  trust_domain TEXT PRIMARY KEY NOT NULL,"
        "  data BLOB NOT NULL,"
        "  updated_at INTEGER NOT NULL"
        ") WITHOUT ROWID;";

/* Governance fields of entries (environment, task, approval state, scopes). */
static const char migration_2[] =
        "ALTER TABLE entries ADD COLUMN env TEXT;"
        "ALTER TABLE entries ADD COLUMN task TEXT;"
        "ALTER TABLE entries ADD COLUMN state TEXT;"
        "ALTER TABLE entries ADD COLUMN created_by TEXT;"
        "ALTER TABLE entries ADD COLUMN approved_by TEXT;"
        "CREATE INDEX entries_task ON entries (task) WHERE task IS NOT NULL;"
        "CREATE INDEX entries_spiffe_id ON entries (spiffe_id);"
        "CREATE TABLE entry_scopes ("
        "  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
        "  pos INTEGER NOT NULL,"
        "  scope TEXT NOT NULL,"
        "  PRIMARY KEY (entry_id, pos)"
        ") WITHOUT ROWID;";

/* Indexes for the hot statements (tests/unit/ds/test_ds_plan.c checks their plans):
 * every filtered entry list is ordered by id and pages with "id > ?", so the filter
 * column is followed by id and no list needs a sort; node aliases (read for every
 * authorized-set build) get a partial index of their own. */
static const char migration_3[] =
        "DROP INDEX entries_parent_id;"
        "CREATE INDEX entries_parent_id_id ON entries (parent_id, id);"
        "DROP INDEX entries_spiffe_id;"
        "CREATE INDEX entries_spiffe_id_id ON entries (spiffe_id, id);"
        "DROP INDEX entries_task;"
        "CREATE INDEX entries_task_id ON entries (task, id) WHERE task IS NOT NULL;"
        "CREATE INDEX entries_node_id ON entries (id) WHERE node = 1;";

/* Change events (ds.h "Change events"): AUTOINCREMENT so that no id is handed out
 * twice, even once every row is gone (pruning keeps the newest anyway) and its largest
 * id is in sqlite_sequence for ds_last_event_id(); `at` indexed for pruning. */
static const char migration_4[] = "CREATE TABLE events ("
                                  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                  "  kind INTEGER NOT NULL,"
                                  "  key TEXT NOT NULL,"
                                  "  at INTEGER NOT NULL"
                                  ");"
                                  "CREATE INDEX events_at ON events (at);";

/* Audit log (ds.h "Audit log"): AUTOINCREMENT so that a seq is never handed out twice,
 * which makes a deleted row a visible gap in the chain. */
static const char migration_5[] = "CREATE TABLE audit ("
                                  "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                  "  at INTEGER NOT NULL,"
                                  "  kind TEXT NOT NULL,"
                                  "  actor TEXT NOT NULL,"
                                  "  subject TEXT NOT NULL,"
                                  "  data TEXT NOT NULL,"
                                  "  prev_hash BLOB NOT NULL,"
                                  "  hash BLOB NOT NULL"
                                  ");"
                                  "CREATE INDEX audit_at ON audit (at);"
                                  "CREATE INDEX audit_subject_seq ON audit (subject, seq);";

static const char *const migrations[] = {
        migration_1, migration_2, migration_3, migration_4, migration_5,
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DS_SCHEMA_VERSION,
               "one migration per schema version");

int ds_migrate_read_version(sqlite3 *db, int *ret) {
        sqlite3_stmt *st = NULL;
        int rc, v;

        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK) {
                log_debug("sqlite: reading schema version: %s", sqlite3_errmsg(db));
                return sqlite_to_errno(rc);
        }
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                log_debug("sqlite: reading schema version: %s", sqlite3_errmsg(db));
                sqlite3_finalize(st);
                return sqlite_to_errno(rc);
        }
        v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        *ret = v;
        return 0;
}

static int too_new(int v) {
        log_debug("sqlite: database schema version %d is newer than this binary supports (%d)", v,
                  DS_SCHEMA_VERSION);
        return -ENOTSUP;
}

/* Applies migration `to` unless another process did it first. */
static int migrate_one(sqlite3 *db, int to) {
        char pragma[64];
        int r, v;

        r = ds_sqlite_exec(db, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = ds_migrate_read_version(db, &v);
        if (r < 0)
                goto fail;
        if (v > DS_SCHEMA_VERSION) {
                r = too_new(v);
                goto fail;
        }
        if (v >= to) /* done meanwhile by another process */
                return ds_sqlite_exec(db, "COMMIT");
        r = ds_sqlite_exec(db, migrations[to - 1]);
        if (r < 0)
                goto fail;
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", to);
        r = ds_sqlite_exec(db, pragma);
        if (r < 0)
                goto fail;
        r = ds_sqlite_exec(db, "COMMIT");
        if (r < 0)
                goto fail;
        log_debug("sqlite: applied schema migration %d", to);
        return 0;
fail:
        (void) ds_sqlite_exec(db, "ROLLBACK");
        return r;
}

int ds_migrate(sqlite3 *db, int target) {
        int r, v;

        if (!db || target < 1 || target > DS_SCHEMA_VERSION)
                return -EINVAL;
        r = ds_migrate_read_version(db, &v);
        if (r < 0)
                return r;
        if (v > DS_SCHEMA_VERSION)
                return too_new(v);
        if (v < 0)
                return -EBADMSG;
        for (int to = v + 1; to <= target; to++) {
                r = migrate_one(db, to);
                if (r < 0)
                        return r;
        }
        return 0;
}
