/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The issuing server's datastore: registration entries, attested agents, join
 * tokens and federation bundles behind one interface (a vtable, see
 * ds_internal.h), so a PostgreSQL backend can sit next to the SQLite one.
 *
 * Threading: a Datastore is one database connection owned by the server's main
 * thread. It is NOT thread-safe; do not share it between threads.
 *
 * Errors: every int function returns >= 0 on success or a negative errno:
 *   -EINVAL     bad argument (NULL, empty, over a cap; see each function)
 *   -E2BIG      a batch or list over its cap
 *   -ENOENT     no such entry / agent / token / bundle
 *   -EEXIST     duplicate (entry with the same spiffe_id + parent_id + selectors,
 *               same entry id, same join token)
 *   -EBUSY      the database is locked by another process past the busy timeout
 *   -EBADMSG    the database file is corrupt or not a database
 *   -ENOTSUP    the database schema is newer than this binary (ds_open_sqlite only)
 *   -EACCES, -ENOMEM, -EIO
 * Nothing stored changes when a call fails. Outputs (ret_*) are written only on
 * success. Timestamps are seconds since the Unix epoch. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attested_agent.h"
#include "bundle_row.h"
#include "entry.h"
#include "join_token.h"
#include "metrics.h"

typedef struct Datastore Datastore;

/* Highest schema version this binary knows (PRAGMA user_version of a SQLite file). */
#define DS_SCHEMA_VERSION 5

#define DS_BATCH_MAX 1000               /* entries per ds_create_entries() */
#define DS_JOIN_TOKEN_MAX 1024          /* bytes of a join token */
#define DS_BUNDLE_MAX (4 * 1024 * 1024) /* bytes of one stored bundle */
#define DS_AGENT_SELECTORS_MAX 64       /* selectors stored per agent */
#define DS_ATTESTATION_TYPE_MAX 64      /* bytes of an attestation type */
#define DS_SERIAL_MAX 128               /* hex digits of an SVID serial */

/* Opens (creating it with mode 0600 if missing) the SQLite database at path:
 * WAL journal, foreign keys on, busy timeout 5 s, synchronous=NORMAL. Pending
 * schema migrations are applied, one transaction each. A database whose schema
 * is newer than DS_SCHEMA_VERSION is left untouched and gives -ENOTSUP (use
 * ds_sqlite_file_schema_version() to name its version); a corrupt file gives
 * -EBADMSG; a missing directory -ENOENT; no permission -EACCES. */
int ds_open_sqlite(const char *path, Datastore **ret);

/* Memory of the SQLite connection. */
typedef struct DsSqliteOptions {
        int64_t cache_bytes; /* page cache (PRAGMA cache_size), DS_CACHE_BYTES_MIN..MAX */
        int64_t mmap_bytes;  /* memory-mapped reads (PRAGMA mmap_size), 0 = off ..MAX */
} DsSqliteOptions;

#define DS_CACHE_BYTES_DEFAULT (64LL * 1024 * 1024)
#define DS_CACHE_BYTES_MIN (1LL * 1024 * 1024)
#define DS_CACHE_BYTES_MAX (64LL * 1024 * 1024 * 1024)
#define DS_MMAP_BYTES_DEFAULT 0LL
#define DS_MMAP_BYTES_MAX (64LL * 1024 * 1024 * 1024)

/* ds_open_sqlite() with these sizes (o NULL: the defaults); -EINVAL when out of range.
 * SQLite lowers an mmap size above its compile-time limit to that limit. */
int ds_open_sqlite_with(const char *path, const DsSqliteOptions *o, Datastore **ret);

/* Reads the schema version of a SQLite database file without changing it. */
int ds_sqlite_file_schema_version(const char *path, int *ret);

/* Closes the connection. Accepts NULL, returns NULL. */
Datastore *ds_close(Datastore *ds);
DEFINE_TRIVIAL_CLEANUP_FUNC(Datastore *, ds_close)

/* Times every following operation of ds into seconds, a histogram with one label, op:
 * the function's name without "ds_" ("get_entry", "create_entries", ...). NULL (the
 * default) turns timing off. seconds must outlive ds or be reset first. */
void ds_set_metrics(Datastore *ds, Metric *seconds);

/* Schema version of the open database (>= 0), or -errno. */
int ds_schema_version(Datastore *ds);

/* A persisted counter bumped in the same transaction as every write of an
 * entry, a bundle, an agent's (re-)attestation, banned flag or deletion (not by
 * SVID renewals, last-seen updates or join tokens): lets the server push
 * "changes since N". */
int ds_change_sequence(Datastore *ds, uint64_t *ret);

/* ---- Change events ----
 * Every write that can change what an agent is served appends one row to the events
 * table in the same transaction: an entry created, updated or deleted (kind ENTRY,
 * key = the entry id; a batch create appends one event per entry, in batch order), an
 * agent attested, re-attested, banned, unbanned or deleted (AGENT, key = its SPIFFE
 * ID), a federated bundle set or deleted (BUNDLE, key = the trust domain). SVID
 * renewals, last-seen updates, join tokens and metadata append none. A write that
 * fails appends none. Event ids increase monotonically and are never reused (also
 * across restarts and deletions of old events), so a reader that remembers the last id
 * it applied can tail the table: the server's in-memory index and Sync fan-out do this
 * for the server's own writes, and other servers sharing a PostgreSQL datastore will
 * do the same for theirs. An event says only *what* changed; the reader loads the
 * current state (ds_get_entry() ... -ENOENT meaning deleted).
 *
 * Retention: events are a tail for readers that are at most seconds behind, not a
 * history. The server prunes events older than DS_EVENTS_KEEP_SECONDS on its hourly
 * housekeeping timer (so an event lives between one and about two hours), always
 * keeping the newest one. A reader further behind than that must reload everything.
 * With SQLite, whose writers are serialized, committed ids have no gaps: when the
 * first event after after_id is not after_id + 1, the events in between were pruned
 * and the reader missed them (other backends may leave gaps; do not rely on this). */

typedef enum DsEventKind {
        DS_EVENT_ENTRY = 1,
        DS_EVENT_AGENT = 2,
        DS_EVENT_BUNDLE = 3,
} DsEventKind;

typedef struct DsEvent {
        uint64_t id;
        DsEventKind kind; /* may be one this binary does not know: skip it */
        char *key;
        int64_t at; /* when it was written */
} DsEvent;

#define DS_EVENTS_KEEP_SECONDS 3600 /* the server prunes events older than this */

/* Events with id > after_id, ascending, at most limit (1..DS_EVENTS_PAGE_MAX, else
 * -EINVAL). None: *ret = NULL, *ret_n = 0. Free with ds_event_array_free(). */
#define DS_EVENTS_PAGE_MAX 10000
int ds_list_events(Datastore *ds, uint64_t after_id, size_t limit, DsEvent **ret, size_t *ret_n);
/* Frees the keys and the array. Accepts NULL. */
void ds_event_array_free(DsEvent *events, size_t n);

/* The id of the newest event ever written (0 when none was, e.g. on a fresh or just
 * migrated database), also when it was pruned. A reader that starts with a full load
 * reads this id *before* loading, then tails from it: an event whose change the load
 * already saw only makes it reload the same key. */
int ds_last_event_id(Datastore *ds, uint64_t *ret);

/* Deletes events written before `before` (at < before), always keeping the newest
 * event. Returns how many. */
int ds_prune_events(Datastore *ds, int64_t before);

/* ---- Registration entries ----
 * The datastore checks only what it needs to store an entry (spiffe_id and
 * parent_id non-empty, 1..64 valid selectors (selector_validate()), the list
 * caps of entry.h, a well-formed id when one is given): callers run
 * entry_validate() first. */

/* Stores n (1..DS_BATCH_MAX) entries in one transaction, all or nothing. On
 * success each entry gets id (a fresh random one, unless the caller set one),
 * revision = 1 and created_at = now. A duplicate (same spiffe_id + parent_id +
 * selector set, or an existing id), also between two entries of the batch,
 * gives -EEXIST. On failure *reterr_index (optional) is the index of the entry
 * that failed, or n when the failure was not tied to one entry; the entries are
 * left as they were. */
int ds_create_entries(Datastore *ds, Entry *const *entries, size_t n, size_t *reterr_index);

/* -ENOENT when unknown. */
int ds_get_entry(Datastore *ds, const char *id, Entry **ret);

typedef struct EntryFilter {
        const char *by_spiffe_id;
        const char *by_parent_id;
        const SelectorSet *by_selectors; /* entries containing all of these */
        const char *by_task;
        bool only_node_aliases; /* entries with node = true */
        const char *after_id;   /* paging: only ids > after_id */
        size_t limit;           /* paging: at most this many, 0 = all */
} EntryFilter;

/* Entries matching every given criterion of f (f may be NULL = all), ordered
 * by id. -EINVAL when by_selectors holds an invalid selector or more than 64.
 * Free the result with entry_array_free(). */
int ds_list_entries(Datastore *ds, const EntryFilter *f, Entry ***ret, size_t *ret_n);

/* Entries whose parent_id is one of parent_ids (duplicates in the input are
 * ignored), grouped by parent in input order. The server's "entries authorized
 * for agent X" walk calls this for the agent and its aliases, then for each
 * level of descendants. */
int ds_list_entries_by_parent_ids(
        Datastore *ds, const char *const *parent_ids, size_t n, Entry ***ret, size_t *ret_n);

/* Replaces every field of the stored entry e->id with e's (created_at is kept),
 * revision + 1. -ENOENT when unknown, -EEXIST when the change would duplicate
 * another entry. *ret (optional) is the stored result. */
int ds_update_entry(Datastore *ds, const Entry *e, Entry **ret);

/* -ENOENT when unknown. */
int ds_delete_entry(Datastore *ds, const char *id);

int ds_count_entries(Datastore *ds, int64_t *ret);

/* ---- Attested agents ---- */

/* Creates the agent, or on re-attestation updates its attestation type, serial,
 * SVID expiry and selectors. created_at is set on creation only, last_seen_at
 * to now; the banned flag in a is ignored (it survives re-attestation; use
 * ds_set_agent_banned()). */
int ds_upsert_agent(Datastore *ds, const AttestedAgent *a);
int ds_get_agent(Datastore *ds, const char *spiffe_id, AttestedAgent **ret);
/* All agents ordered by SPIFFE ID; free with attested_agent_array_free(). */
int ds_list_agents(Datastore *ds, AttestedAgent ***ret, size_t *ret_n);
/* One page of that list: the agents whose SPIFFE ID sorts after after_id (NULL: from
 * the first), at most limit of them (0 = all). */
int ds_list_agents_page(
        Datastore *ds, const char *after_id, size_t limit, AttestedAgent ***ret, size_t *ret_n);
int ds_set_agent_banned(Datastore *ds, const char *spiffe_id, bool banned);
/* Evicts the agent (it must attest again). -ENOENT when unknown. */
int ds_delete_agent(Datastore *ds, const char *spiffe_id);
/* Records the agent's new node SVID (serial as hex). -ENOENT when unknown. */
int ds_update_agent_svid(Datastore *ds,
                         const char *spiffe_id,
                         const char *serial,
                         int64_t expires_at);
int ds_touch_agent(Datastore *ds, const char *spiffe_id, int64_t now);

/* ---- Join tokens ----
 * Only the SHA-256 of a token is stored; lookups compare hashes. */

/* token: 1..DS_JOIN_TOKEN_MAX bytes; alias_spiffe_id may be NULL. -EEXIST when
 * the same token exists. */
int ds_create_join_token(Datastore *ds,
                         const char *token,
                         int64_t expires_at,
                         const char *alias_spiffe_id);
/* Atomically checks and uses a token: -ENOENT unknown, -EALREADY already used,
 * -EKEYEXPIRED when now >= expires_at; else marks it used and returns it
 * (ret may be NULL). */
int ds_consume_join_token(Datastore *ds, const char *token, int64_t now, JoinToken **ret);
/* Deletes tokens with expires_at <= now; returns how many. */
int ds_prune_join_tokens(Datastore *ds, int64_t now);

/* ---- Federation bundles (data = serialized warden.types.v1.Bundle) ---- */

/* Creates or replaces the bundle of trust domain td (a bare name), 1..DS_BUNDLE_MAX bytes. */
int ds_set_bundle(Datastore *ds, const char *td, const uint8_t *data, size_t len);
/* -ENOENT when unknown. *ret_data is malloc'd. */
int ds_get_bundle(Datastore *ds, const char *td, uint8_t **ret_data, size_t *ret_len);
/* All bundles ordered by trust domain; free with bundle_row_array_free(). */
int ds_list_bundles(Datastore *ds, BundleRow ***ret, size_t *ret_n);
int ds_delete_bundle(Datastore *ds, const char *td);

/* ---- Server metadata: small named integers ----
 * key: 1..DS_META_KEY_MAX bytes of [a-z0-9_], not "change_seq" (-EINVAL). Writing one
 * does not bump the change sequence. */

#define DS_META_KEY_MAX 64
/* Unix time at which this datastore's server first created a CA: set once a CA exists,
 * so that a start that finds <dataDir>/ca missing knows one was lost. */
#define DS_META_CA_CREATED_AT "ca_created_at"

/* -ENOENT when the key was never set. */
int ds_get_meta(Datastore *ds, const char *key, int64_t *ret);
/* Creates or replaces the value of key. */
int ds_set_meta(Datastore *ds, const char *key, int64_t value);

/* ---- Audit log ----
 * A tamper-evident, hash-chained record of administrative writes, appended in the
 * same transaction as the write it describes (a write that fails appends nothing):
 *   entry.create / entry.update / entry.delete  subject = the entry's SPIFFE ID,
 *                                               data {"id": ...}
 *   agent.ban / agent.unban / agent.delete      subject = the agent's SPIFFE ID
 *   token.create                                subject = the alias SPIFFE ID or "",
 *                                               data {"token_sha256": hex, "expires_at": N}
 * (never the token itself). actor is the string last given to ds_set_actor().
 *
 * Records are numbered by seq (1, 2, ...; never reused). Each stores prev_hash, the
 * hash of the record before it (32 zero bytes for the first), and hash = SHA-256 over
 * this canonical form, where u64(x) is x as 8 bytes big-endian and str(s) is
 * u64(length of s in bytes) followed by the bytes of s (no terminator):
 *   str("warden.audit.v1") u64(seq) u64(at as two's complement) str(kind) str(actor)
 *   str(subject) str(data) str(prev_hash: 32 bytes)
 * data is JSON text, hashed exactly as stored. ds_audit_verify() recomputes the chain:
 * a changed field breaks that record's hash, a row deleted in the middle leaves a gap
 * in seq. Deleting the newest rows cannot be detected this way (nothing follows them)
 * until the next record is written (its seq leaves the gap); catching it at once needs a
 * checkpoint of the last hash kept elsewhere (not done yet). The hash has no key: whoever
 * can write the file can also recompute every hash after an edit; only such a checkpoint
 * (or a signature) outside the database can catch that. */

#define DS_AUDIT_HASH_SIZE 32
#define DS_AUDIT_ACTOR_MAX 255  /* bytes of an actor */
#define DS_AUDIT_FIELD_MAX 4096 /* bytes of kind, subject or data */
#define DS_AUDIT_PAGE_MAX 1000

typedef struct DsAuditRecord {
        uint64_t seq;
        int64_t at;
        char *kind;
        char *actor;
        char *subject;
        char *data;
        uint8_t prev_hash[DS_AUDIT_HASH_SIZE];
        uint8_t hash[DS_AUDIT_HASH_SIZE];
} DsAuditRecord;

/* Criteria of ds_audit_list(); zero/NULL fields match everything. */
typedef struct DsAuditFilter {
        int64_t since; /* at >= since (0: any) */
        int64_t until; /* at <= until (0: any) */
        const char *subject;
        const char *kind;
        uint64_t after_seq; /* seq > after_seq */
        size_t limit;       /* 1..DS_AUDIT_PAGE_MAX; 0 = DS_AUDIT_PAGE_MAX */
} DsAuditFilter;

/* Who the following writes of ds are done for: "uid:<n>" for the admin API, an agent's
 * SPIFFE ID for the node API; NULL or "" gives back the default, "server".
 * -EINVAL when longer than DS_AUDIT_ACTOR_MAX. */
int ds_set_actor(Datastore *ds, const char *actor);
/* The current actor (never NULL). */
const char *ds_get_actor(Datastore *ds);

/* Appends one record in a transaction of its own. actor NULL: the current actor;
 * data_json NULL: "{}". kind, subject: 0..DS_AUDIT_FIELD_MAX bytes (kind non-empty). */
int ds_audit_append(Datastore *ds,
                    const char *kind,
                    const char *actor,
                    const char *subject,
                    const char *data_json);

/* Records matching f (NULL: the first page of all), ascending seq. None: *ret = NULL,
 * *ret_n = 0. Free with ds_audit_record_array_free(). */
int ds_audit_list(Datastore *ds, const DsAuditFilter *f, DsAuditRecord **ret, size_t *ret_n);
void ds_audit_record_array_free(DsAuditRecord *records, size_t n);

/* Walks the whole chain in seq order. 0 when intact (*ret_count = the records). When
 * broken: -EBADMSG, *reterr_seq = the first bad record and *reterr_reason one of
 * "was changed" (its hash does not match its content), "is missing" (a gap in seq),
 * "does not follow the record before it" (prev_hash differs from that record's hash). */
int ds_audit_verify(Datastore *ds,
                    uint64_t *ret_count,
                    uint64_t *reterr_seq,
                    const char **reterr_reason);

/* SHA-256 of the canonical form above of r (r->hash is not read). */
int ds_audit_hash(const DsAuditRecord *r, uint8_t ret[DS_AUDIT_HASH_SIZE]);
