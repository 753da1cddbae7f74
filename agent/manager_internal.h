/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals shared by manager.c (lifecycle, Sync, snapshots), manager_svid.c (signing,
 * rotation) and manager_jwt.c (JWT cache), and exposed to the unit tests. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include <warden/bundle.h>

#include "manager.h"
#include "selector.h"
#include "snapshot.h"
#include "taskq.h"

#define MANAGER_FEDERATED_MAX 256
#define MANAGER_ENTRY_ID_MAX 256
#define MANAGER_HINT_MAX 1024
#define MANAGER_FEDERATES_WITH_MAX 64
/* manager_trim_heap(): trim after this many CachedSvids were made (or when signing
 * went quiet after any). */
#define MANAGER_TRIM_CHURN 1024
/* The rotation timer wakes at least this often (wall-clock jumps). */
#define MANAGER_TIMER_MAX_SEC 3600

typedef struct JwtCache JwtCache;

/* One authorized entry and its X.509-SVID. What workloads see is immutable and shared
 * with the published snapshots (refcounted, never copied): info (replaced when the
 * entry changes), svid (replaced when renewed) and pub, the CachedSvid made of both
 * (NULL when either changed: the next publish makes a new one). */
typedef struct ManagedEntry {
        EntryInfo *info;
        SvidData *svid; /* NULL until signed */
        CachedSvid *pub;
        char **dns_names;
        size_t n_dns_names;
        int32_t x509_ttl;
        bool seen;  /* marks during a full snapshot */
        bool stale; /* the entry changed since the SVID was requested: sign again */
        bool in_flight;
        unsigned failures;
        int64_t revision;
        int64_t renew_at;
        /* signing */
        uint64_t sign_gen; /* the request in flight (Manager.sign_seq); others are dropped */
        int64_t retry_at;
} ManagedEntry;

struct Manager {
        ManagerConfig cfg;
        char *trust_domain;
        ManagerBackend backend;
        sd_event *event;
        sd_event_source *results_io;
        sd_event_source *batch_timer;
        sd_event_source *rotate_timer;
        TaskQueue *results; /* worker -> main (eventfd) */
        TaskQueue *work;    /* main -> worker */
        pthread_t worker;
        bool started;

        ManagedEntry **entries; /* sorted by entry_id */
        size_t n_entries, allocated_entries;
        size_t max_entries;      /* ManagerConfig.max_entries or MANAGER_ENTRIES_MAX */
        size_t churn;            /* CachedSvids made since the heap was last trimmed */
        unsigned jobs_in_flight; /* sign jobs on the worker */
        WardenBundle *bundle;
        WardenBundle **federated;
        size_t n_federated;
        bool synced;          /* a Sync message was applied */
        bool in_snapshot;     /* a full snapshot's later parts are still coming (`more`) */
        size_t snapshot_kept; /* entries the parts so far brought, against the cap */
        uint64_t sign_seq;    /* numbers sign requests */

        pthread_mutex_t snapshot_lock; /* guards snapshot (the pointer) only */
        AgentSnapshot *snapshot;
        uint64_t version;
        ManagerSnapshotCallback cb;
        void *cb_userdata;

        JwtCache *jwt;        /* locked inside */
        AgentMetrics metrics; /* all NULL without ManagerConfig.metrics */
};

/* manager.c */
int64_t manager_now(Manager *m);
/* Unix seconds as "2026-01-02T03:04:05Z" in buf (for logs); returns buf. */
#define MANAGER_TIME_STRING_MAX 32
const char *manager_format_time(int64_t t, char buf[static MANAGER_TIME_STRING_MAX]);
ManagedEntry *manager_find_entry(Manager *m, const char *entry_id);

/* manager_entry.c */
ManagedEntry *managed_entry_free(ManagedEntry *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(ManagedEntry *, managed_entry_free)
/* Checks an entry from the server and copies what the agent needs. Returns 0 with
 * *ret NULL for an entry no workload can match (node alias, no selectors, expired,
 * not active); -EINVAL + reason for an invalid one. */
int managed_entry_from_pb(Manager *m,
                          const Warden__Types__V1__Entry *pb,
                          ManagedEntry **ret,
                          const char **reterr_reason);
/* Moves the SVID state of old into new (an update of the same entry ID) when it is
 * still good for new; an unchanged entry keeps its shared EntryInfo and CachedSvid. */
void managed_entry_carry_over(ManagedEntry *old, ManagedEntry *new);
/* Replaces the SVID of e, taking svid (NULL drops it; the key is wiped once no
 * snapshot holds it any more). */
void managed_entry_set_svid(ManagedEntry *e, SvidData *svid);
static inline const char *managed_entry_id(const ManagedEntry *e) {
        return e->info->entry_id;
}
static inline const char *managed_entry_spiffe_id(const ManagedEntry *e) {
        return e->info->spiffe_id;
}

/* manager.c */
/* Gives the heap back to the kernel (malloc_trim) once many CachedSvids were made
 * since the last time, or when signing went quiet after some. */
void manager_trim_heap(Manager *m);
/* Builds and publishes a new snapshot from the current state, then calls the callback. */
int manager_publish(Manager *m);

/* manager_svid.c */
/* Renewal time of an SVID valid [not_before, not_after): half-life +- lifetime/20,
 * unit in [0, 1] choosing the point in that window (0.5 = exact half-life). */
int64_t manager_renew_time(int64_t not_before, int64_t not_after, double unit);
/* Back-off before retry number `failures` (>= 1). */
int64_t manager_retry_delay(unsigned failures);
bool managed_entry_needs_signing(const ManagedEntry *e, int64_t now);
/* Arms the batch timer (MANAGER_BATCH_DELAY_MS) if an entry needs signing. */
void manager_schedule_signing(Manager *m);
/* Sends every entry that needs signing now to the worker, in batches. Returns how many. */
size_t manager_sign_due(Manager *m);
/* Drops expired SVIDs (publishing if any), signs what is due, re-arms the timer. The
 * rotation timer calls this; tests call it after moving their clock. */
void manager_tick(Manager *m);
/* Re-arms the rotation timer for the earliest renewal, expiry or retry. */
void manager_rearm(Manager *m);
int manager_svid_start(Manager *m);

/* manager_jwt.c */
/* max tokens in all; mint_rate mints per second per uid (0: no limit) with a burst of
 * mint_burst (>= 1 when limited). */
int jwt_cache_new(size_t max, double mint_rate, double mint_burst, JwtCache **ret);
JwtCache *jwt_cache_free(JwtCache *c);
size_t jwt_cache_size(JwtCache *c);
/* Sets the jwt_cache_entries gauge to the cache's size (any thread). */
void manager_update_jwt_gauge(Manager *m);
/* SHA-256(uid as 4 bytes little-endian, spiffe_id NUL, then the sorted audiences each
 * followed by NUL): a uid's tokens are its own. */
int jwt_cache_key(uid_t uid,
                  const char *spiffe_id,
                  const char *const *audiences,
                  size_t n_audiences,
                  uint8_t ret[32]);
/* A cached token for key (copied, erase_and_free it): fresh_only = more than half of
 * its lifetime left at now, else merely unexpired. 1 found, 0 not. Marks it used. */
int jwt_cache_lookup(JwtCache *c, const uint8_t key[32], int64_t now, bool fresh_only, char **ret);
/* Stores (or replaces) a token of uid's; beyond the cap the uid holding the most tokens
 * loses its least recently used one. */
int jwt_cache_store(JwtCache *c,
                    uid_t uid,
                    const uint8_t key[32],
                    const char *token,
                    int64_t issued_at,
                    int64_t expires_at);
