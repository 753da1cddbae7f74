/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The agent's manager: keeps one X.509-SVID per authorized entry (workload keys made
 * here, CSRs sent in batches, renewed at half-life with jitter), caches JWT-SVIDs, and
 * publishes an immutable AgentSnapshot after every change. Entries and bundles come
 * from the Sync stream (manager_apply_sync, fed by the link thread through the main
 * loop); signing goes through a ManagerBackend (the server's node API in the daemon).
 *
 * Threads: the manager's state belongs to the main thread (sd-event). Blocking calls
 * to the server, and workload key generation, run on the manager's own worker thread,
 * which hands results back to the main thread (a locked queue + eventfd on the event
 * loop). manager_snapshot() and manager_fetch_jwt_svid() may be called from any
 * thread.
 *
 * Publishing: the current snapshot pointer is swapped under a tiny mutex; readers lock,
 * take a reference, unlock (no reader ever sees a snapshot being freed). A published
 * snapshot is never modified.
 *
 * Rotation (SPIFFE-FACTS §6): an SVID is renewed once now >= not_before + lifetime/2
 * +- lifetime/20 (+-10 % of the half-life, random per SVID); new and changed entries
 * are signed within MANAGER_BATCH_DELAY_MS, at most MANAGER_BATCH_MAX CSRs per call;
 * failures are retried with back-off (MANAGER_RETRY_MIN_SEC doubling to
 * MANAGER_RETRY_MAX_SEC; reset by every Sync message). An SVID whose notAfter passed
 * leaves the snapshot. Only entries that can match a workload are kept (at least one
 * selector, not a node alias), at most ManagerConfig.max_entries (more are ignored with a
 * warning and counted in entries_over_cap).
 *
 * Memory: an entry's data and SVID are kept once, as immutable refcounted objects
 * (snapshot.h) that every snapshot shares; a publish only references them. After
 * large changes the manager hands freed heap back to the kernel (malloc_trim).
 *
 * JWT cache: key = SHA-256(caller's uid, spiffe_id NUL, then each sorted audience
 * followed by NUL); at most ManagerConfig.jwt_cache_max tokens, partitioned by uid (when
 * full, the uid holding the most tokens loses its least recently used one, so one uid
 * cannot evict another's); a token is reused while more than half of its lifetime
 * remains; when minting fails an unexpired cached token is returned (and served without
 * retrying for a few seconds), else -EAGAIN. Concurrent requests for one key share one
 * mint. A uid may start ManagerConfig.jwt_mint_rate mints per second (burst
 * jwt_mint_burst); beyond, -EDQUOT (or an unexpired cached token). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "metrics_names.h"
#include "snapshot.h"
#include "warden/node/v1/node.pb-c.h"

#define MANAGER_BATCH_DELAY_MS 50
#define MANAGER_BATCH_MAX 100
#define MANAGER_ENTRIES_MAX 100000 /* default of ManagerConfig.max_entries */
#define MANAGER_RETRY_MIN_SEC 1
#define MANAGER_RETRY_MAX_SEC 60
#define MANAGER_JWT_CACHE_MAX_DEFAULT 1000
#define MANAGER_JWT_MINT_RATE_DEFAULT 10.0 /* per second per uid */
#define MANAGER_JWT_MINT_BURST_DEFAULT 50.0

typedef struct Manager Manager;

/* One CSR for the backend to sign (borrowed strings/bytes). */
typedef struct ManagerSignRequest {
        const char *entry_id;
        const uint8_t *csr;
        size_t csr_len;
} ManagerSignRequest;

/* The backend's answer for one request: r = 0 and the chain (DER certs joined, leaf
 * first, malloc'd; the manager takes it), or r < 0. */
typedef struct ManagerSignResult {
        int r;
        uint8_t *chain_der;
        size_t chain_len;
} ManagerSignResult;

/* Blocking calls to whoever signs, made on the worker thread only. */
typedef struct ManagerBackend {
        /* Signs n CSRs; results[i] answers requests[i] (results is zeroed by the caller).
         * Returns 0 when the call went through (per-result r), or -errno when nothing
         * was signed (server unreachable: -EAGAIN and the like). */
        int (*batch_sign)(void *userdata,
                          const ManagerSignRequest *requests,
                          size_t n,
                          ManagerSignResult *results);
        /* Mints a JWT-SVID for entry_id; *ret_token malloc'd. */
        int (*mint_jwt)(void *userdata,
                        const char *entry_id,
                        const char *const *audiences,
                        size_t n_audiences,
                        char **ret_token,
                        int64_t *ret_expires_at,
                        int64_t *ret_issued_at);
        void *userdata;
} ManagerBackend;

typedef struct ManagerConfig {
        const char *trust_domain;   /* bare name */
        WardenKeyType key_type;     /* workload keys */
        size_t jwt_cache_max;       /* 0 = MANAGER_JWT_CACHE_MAX_DEFAULT */
        size_t max_entries;         /* entries kept; 0 = MANAGER_ENTRIES_MAX */
        double jwt_mint_rate;       /* mints/s per uid; 0 = default, < 0 = no limit */
        double jwt_mint_burst;      /* 0 = default (5 s worth of jwt_mint_rate, >= 1) */
        int64_t (*clock)(void *ud); /* Unix seconds; NULL = time(NULL) (tests inject) */
        void *clock_userdata;
        /* Borrowed (copied pointers); NULL = no metrics. The manager counts
         * svids_issued (X509-SVIDs signed for it, JWT-SVIDs minted), svids_rotated
         * (X509-SVIDs replacing one still in the cache) and sets svid_cache_entries
         * (valid X509-SVIDs, at every publish), jwt_cache_entries (at every publish
         * and cache store) and entries_over_cap (entries of a Sync message ignored at
         * max_entries). */
        const AgentMetrics *metrics;
} ManagerConfig;

/* Creates the manager (not started). The backend is copied; event is referenced. */
int manager_new(const ManagerConfig *cfg,
                const ManagerBackend *backend,
                sd_event *event,
                Manager **ret);

/* Starts the worker thread and hooks the result queue and timers into the loop. */
int manager_start(Manager *m);

/* Stops the worker (pending JWT requests get -ECANCELED), frees everything. NULL-safe. */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free)

/* Applies one Sync message (main thread): entries added/updated/deleted (a
 * full_snapshot replaces them all), our bundle, federated bundles. Entries that are
 * invalid (bad SPIFFE ID, other trust domain, bad selectors) are skipped with a
 * warning. Publishes a new snapshot at once and schedules signing. Returns 0, or
 * -EINVAL for a bundle of the wrong trust domain (nothing applied), -ENOMEM. */
int manager_apply_sync(Manager *m, const Warden__Node__V1__SyncResponse *resp);

/* Key type for workload keys made from now on (main thread); SVIDs already cached
 * keep theirs until renewed. Returns 0 or -EINVAL. */
int manager_set_key_type(Manager *m, WardenKeyType key_type);

/* Counts for status lines: entries kept, entries with a valid SVID. */
void manager_get_counts(Manager *m, size_t *ret_entries, size_t *ret_svids);

/* The current snapshot, referenced (drop it with agent_snapshot_unref), or NULL
 * before the first Sync message. Any thread. */
AgentSnapshot *manager_snapshot(Manager *m);

/* Called on the main thread after each new snapshot is published (the Workload API
 * pushes to its open streams from here). One callback. */
typedef void (*ManagerSnapshotCallback)(AgentSnapshot *snapshot, void *userdata);
void manager_set_snapshot_callback(Manager *m, ManagerSnapshotCallback cb, void *userdata);

/* A JWT-SVID for entry `svid` (from a snapshot) and the audiences. Served from the
 * JWT cache when a token for (SPIFFE ID, sorted audiences) has more than half its life
 * left; otherwise minted by the server. `done` runs exactly once, on an unspecified
 * thread, with r = 0 and the token, or r < 0 (-EAGAIN/-ECONNREFUSED when the server
 * cannot be reached and no cached token is valid). Returns 0 when `done` will run
 * (possibly already ran), or -errno without calling it (-EINVAL: no audience, more
 * than WARDEN_JWT_AUDIENCES_MAX, one that warden_jwt_audience_check() refuses;
 * -EDQUOT: uid is over its rate of mints and has no unexpired token for this key).
 * uid is the caller's: tokens are cached per uid. */
typedef void (*ManagerJwtCallback)(int r, const char *token, void *userdata);
int manager_fetch_jwt_svid(Manager *m,
                           uid_t uid,
                           const CachedSvid *svid,
                           const char *const *audiences,
                           size_t n_audiences,
                           ManagerJwtCallback done,
                           void *userdata);
