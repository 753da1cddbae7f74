/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Backend side of the datastore interface. ds.c checks arguments, assigns ids
 * and timestamps, hashes join tokens, then calls a backend through this table.
 * A backend's struct starts with `Datastore base`. Backends may assume the
 * arguments already passed the checks documented in ds.h. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds.h"
#include "entry.h"

#define DS_TOKEN_HASH_SIZE 32 /* SHA-256 */

typedef struct DatastoreOps {
        const char *name;
        void (*close)(Datastore *ds);
        int (*schema_version)(Datastore *ds);
        int (*change_sequence)(Datastore *ds, uint64_t *ret);

        /* limit: 1..DS_EVENTS_PAGE_MAX. */
        int (*list_events)(
                Datastore *ds, uint64_t after_id, size_t limit, DsEvent **ret, size_t *ret_n);
        int (*last_event_id)(Datastore *ds, uint64_t *ret);
        int (*prune_events)(Datastore *ds, int64_t before);

        /* ids[i] is the id to store for entries[i] (entries[i]->id is ignored). */
        int (*create_entries)(Datastore *ds,
                              Entry *const *entries,
                              char *const *ids,
                              size_t n,
                              int64_t now,
                              size_t *reterr_index);
        int (*get_entry)(Datastore *ds, const char *id, Entry **ret);
        int (*list_entries)(Datastore *ds, const EntryFilter *f, Entry ***ret, size_t *ret_n);
        /* parent_ids holds no duplicates. */
        int (*list_entries_by_parent_ids)(Datastore *ds,
                                          const char *const *parent_ids,
                                          size_t n,
                                          Entry ***ret,
                                          size_t *ret_n);
        int (*update_entry)(Datastore *ds, const Entry *e, Entry **ret);
        int (*delete_entry)(Datastore *ds, const char *id);
        int (*count_entries)(Datastore *ds, int64_t *ret);

        int (*upsert_agent)(Datastore *ds, const AttestedAgent *a, int64_t now);
        int (*get_agent)(Datastore *ds, const char *spiffe_id, AttestedAgent **ret);
        /* after_id: "" = from the first; limit: 0 = all. */
        int (*list_agents)(Datastore *ds,
                           const char *after_id,
                           size_t limit,
                           AttestedAgent ***ret,
                           size_t *ret_n);
        int (*set_agent_banned)(Datastore *ds, const char *spiffe_id, bool banned);
        int (*delete_agent)(Datastore *ds, const char *spiffe_id);
        int (*update_agent_svid)(Datastore *ds,
                                 const char *spiffe_id,
                                 const char *serial,
                                 int64_t expires_at);
        int (*touch_agent)(Datastore *ds, const char *spiffe_id, int64_t now);

        int (*create_join_token)(Datastore *ds,
                                 const uint8_t hash[DS_TOKEN_HASH_SIZE],
                                 int64_t expires_at,
                                 const char *alias_spiffe_id,
                                 int64_t now);
        /* Same results as ds_consume_join_token(); returns the stored fields. */
        int (*consume_join_token)(Datastore *ds,
                                  const uint8_t hash[DS_TOKEN_HASH_SIZE],
                                  int64_t now,
                                  int64_t *ret_expires_at,
                                  char **ret_alias_spiffe_id);
        int (*prune_join_tokens)(Datastore *ds, int64_t now);

        int (*set_bundle)(
                Datastore *ds, const char *td, const uint8_t *data, size_t len, int64_t now);
        int (*get_bundle)(Datastore *ds, const char *td, uint8_t **ret_data, size_t *ret_len);
        int (*list_bundles)(Datastore *ds, BundleRow ***ret, size_t *ret_n);
        int (*delete_bundle)(Datastore *ds, const char *td);

        int (*get_meta)(Datastore *ds, const char *key, int64_t *ret);
        int (*set_meta)(Datastore *ds, const char *key, int64_t value);

        /* Writes ds->audit[0..n_audit) in a transaction of its own. */
        int (*audit_append)(Datastore *ds);
        /* f->limit: 1..DS_AUDIT_PAGE_MAX. */
        int (*audit_list)(Datastore *ds,
                          const DsAuditFilter *f,
                          DsAuditRecord **ret,
                          size_t *ret_n);
} DatastoreOps;

/* An audit record waiting for the write it describes (ds_audit.c). */
typedef struct DsAuditStaged {
        const char *kind; /* static */
        char *subject;
        char *data;
} DsAuditStaged;

struct Datastore {
        const DatastoreOps *ops;
        Metric *seconds;                    /* ds_set_metrics(); NULL = off */
        char actor[DS_AUDIT_ACTOR_MAX + 1]; /* ds_set_actor(); "" = "server" */
        /* Staged by the front end around one backend write: the backend appends them
         * (with the current actor) inside that write's transaction, just before it
         * commits, then sets audit_written; the front end clears them afterwards. */
        DsAuditStaged *audit;
        size_t n_audit, n_audit_allocated;
        bool audit_written;
};

/* Stages one record (subject, data copied; data NULL: "{}"). */
int ds_audit_stage(Datastore *ds, const char *kind, const char *subject, const char *data);
/* Drops the staged records; free_array also frees the array (ds_close()). */
void ds_audit_unstage(Datastore *ds, bool free_array);
/* s as a JSON string literal with quotes, malloc'd. */
int ds_json_quote(const char *s, char **ret);

/* The canonical, unambiguous text of a selector set used for the duplicate
 * check: selectors sorted by (type, value), duplicates dropped, each written as
 * "<len(type)>:<type><len(value)>:<value>". Same set = same key. */
int ds_selectors_key(const SelectorSet *set, char **ret);

/* true when every selector of want is in have (want empty: true). Both sets
 * must be sorted, as selector_set_add() keeps them. */
bool ds_selectors_contain_all(const SelectorSet *have, const SelectorSet *want);

/* Grows an array of pointers by one element. */
int ds_ptr_array_push(void ***array, size_t *n, size_t *allocated, void *p);
