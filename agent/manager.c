/* SPDX-License-Identifier: Apache-2.0 */
/* The manager: lifecycle, applying Sync messages to the entry set, and publishing
 * snapshots. Signing and rotation are in manager_svid.c, the JWT cache in
 * manager_jwt.c. */
#define _GNU_SOURCE

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "greedy_realloc.h"
#include "log.h"
#include "manager_internal.h"
#include "pb_util.h"
#include "strv.h"

int64_t manager_now(Manager *m) {
        return m->cfg.clock ? m->cfg.clock(m->cfg.clock_userdata) : (int64_t) time(NULL);
}

/* Index of entry_id in the sorted array, or where it would go (*found false). */
static size_t entry_index(Manager *m, const char *entry_id, bool *found) {
        size_t lo = 0, hi = m->n_entries;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(managed_entry_id(m->entries[mid]), entry_id);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

ManagedEntry *manager_find_entry(Manager *m, const char *entry_id) {
        bool found;
        size_t i = entry_index(m, entry_id, &found);

        return found ? m->entries[i] : NULL;
}

static void entry_remove_at(Manager *m, size_t i) {
        managed_entry_free(m->entries[i]);
        memmove(&m->entries[i], &m->entries[i + 1],
                (m->n_entries - i - 1) * sizeof(ManagedEntry *));
        m->n_entries--;
}

static void entry_remove(Manager *m, const char *entry_id) {
        bool found;
        size_t i = entry_index(m, entry_id, &found);

        if (found)
                entry_remove_at(m, i);
}

/* Inserts or updates one entry; takes e. A new one is refused when in_use entries count
 * against the cap already. Returns 1 when added/updated, 0 skipped. */
static int entry_upsert(Manager *m, ManagedEntry *e, size_t in_use) {
        bool found;
        size_t i = entry_index(m, managed_entry_id(e), &found);
        int r;

        e->seen = true;
        if (found) {
                managed_entry_carry_over(m->entries[i], e);
                managed_entry_free(m->entries[i]);
                m->entries[i] = e;
                return 1;
        }
        if (in_use >= m->max_entries) {
                managed_entry_free(e);
                return 0;
        }
        r = GREEDY_REALLOC(m->entries, m->allocated_entries, m->n_entries + 1);
        if (r < 0) {
                managed_entry_free(e);
                return r;
        }
        memmove(&m->entries[i + 1], &m->entries[i], (m->n_entries - i) * sizeof(ManagedEntry *));
        m->entries[i] = e;
        m->n_entries++;
        return 1;
}

/* The cap counts what stays: in a delta the entries kept so far (deletions are applied
 * first), in a full snapshot those of its parts (the rest go after the last part). */
static int apply_entries(Manager *m, const Warden__Node__V1__SyncResponse *resp) {
        size_t skipped_cap = 0;
        int r;

        for (size_t i = 0; i < resp->n_deleted_entry_ids; i++)
                entry_remove(m, resp->deleted_entry_ids[i]);
        /* A full snapshot may come in parts (docs/sync.md): entries not in any part
         * are removed after the last one, and the cap counts the parts' entries. */
        if (resp->full_snapshot) {
                for (size_t i = 0; i < m->n_entries; i++)
                        m->entries[i]->seen = false;
                m->in_snapshot = true;
                m->snapshot_kept = 0;
        }
        for (size_t i = 0; i < resp->n_entries; i++) {
                const Warden__Types__V1__Entry *pb = resp->entries[i];
                ManagedEntry *e = NULL;
                const char *reason = NULL;

                r = managed_entry_from_pb(m, pb, &e, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        log_warning("Ignoring invalid entry %s from the server: %s", strna(pb->id),
                                    strna(reason));
                if (!e) {
                        if (pb->id && *pb->id)
                                entry_remove(m, pb->id);
                        continue;
                }
                r = entry_upsert(m, e, m->in_snapshot ? m->snapshot_kept : m->n_entries);
                if (r < 0)
                        return r;
                if (r == 0)
                        skipped_cap++;
                else if (m->in_snapshot)
                        m->snapshot_kept++;
        }
        if (skipped_cap > 0) {
                log_warning("More than %zu entries (-maxEntries) for this agent: %zu more ignored",
                            m->max_entries, skipped_cap);
                (void) metrics_counter_add(m->metrics.entries_over_cap, NULL, skipped_cap);
        }
        if (m->in_snapshot && !resp->more) {
                for (size_t i = m->n_entries; i > 0; i--)
                        if (!m->entries[i - 1]->seen)
                                entry_remove_at(m, i - 1);
                m->in_snapshot = false;
        }
        return 0;
}

static void federated_clear(Manager *m) {
        for (size_t i = 0; i < m->n_federated; i++)
                warden_bundle_unref(m->federated[i]);
        free(m->federated);
        m->federated = NULL;
        m->n_federated = 0;
}

/* Inserts or replaces the bundle of its trust domain; takes b. */
static int federated_put(Manager *m, WardenBundle *b) {
        const char *td = warden_bundle_trust_domain(b);
        WardenBundle **n;

        for (size_t i = 0; i < m->n_federated; i++)
                if (streq(warden_bundle_trust_domain(m->federated[i]), td)) {
                        warden_bundle_unref(m->federated[i]);
                        m->federated[i] = b;
                        return 0;
                }
        if (m->n_federated >= MANAGER_FEDERATED_MAX) {
                warden_bundle_unref(b);
                return 0;
        }
        n = reallocarray(m->federated, m->n_federated + 1, sizeof(*n));
        if (!n) {
                warden_bundle_unref(b);
                return -ENOMEM;
        }
        m->federated = n;
        m->federated[m->n_federated++] = b;
        return 0;
}

static void federated_remove(Manager *m, const char *td) {
        for (size_t i = 0; i < m->n_federated; i++)
                if (streq(warden_bundle_trust_domain(m->federated[i]), td)) {
                        warden_bundle_unref(m->federated[i]);
                        m->federated[i] = m->federated[--m->n_federated];
                        return;
                }
}

static int apply_federated(Manager *m, const Warden__Node__V1__SyncResponse *resp) {
        if (resp->full_snapshot)
                federated_clear(m);
        for (size_t i = 0; i < resp->n_removed_trust_domains; i++)
                federated_remove(m, resp->removed_trust_domains[i]);
        for (size_t i = 0; i < resp->n_federated_bundles; i++) {
                WardenBundle *b = NULL;
                const char *reason = NULL;
                int r;

                r = pb_to_bundle(resp->federated_bundles[i], &b, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && streq(warden_bundle_trust_domain(b), m->trust_domain)) {
                        warden_bundle_unref(b);
                        r = -EINVAL, reason = "federated bundle of our own trust domain";
                }
                if (r < 0) {
                        log_warning("Ignoring a bad federated bundle: %s", strna(reason));
                        continue;
                }
                r = federated_put(m, b);
                if (r < 0)
                        return r;
        }
        return 0;
}

int manager_apply_sync(Manager *m, const Warden__Node__V1__SyncResponse *resp) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *bundle = NULL;
        const char *reason = NULL;
        int r;

        if (resp->bundle) {
                r = pb_to_bundle(resp->bundle, &bundle, &reason);
                if (r >= 0 && !streq(warden_bundle_trust_domain(bundle), m->trust_domain))
                        r = -EINVAL, reason = "bundle of another trust domain";
                if (r < 0)
                        return log_warning_errno(r, "Ignoring Sync message with a bad bundle: %s",
                                                 strna(reason));
        }
        r = apply_entries(m, resp);
        if (r >= 0)
                r = apply_federated(m, resp);
        if (r < 0)
                return r;
        if (bundle) {
                warden_bundle_unref(m->bundle);
                m->bundle = TAKE_PTR(bundle);
        }
        if (resp->more)
                return 0; /* the rest of the change follows at once: act on the whole */
        m->synced = true;
        /* The server is back: retry failed signings now. */
        for (size_t i = 0; i < m->n_entries; i++)
                m->entries[i]->failures = 0, m->entries[i]->retry_at = 0;
        log_debug("Sync applied: %zu entries, sequence %llu", m->n_entries,
                  (unsigned long long) resp->sequence);
        r = manager_publish(m);
        manager_schedule_signing(m);
        manager_rearm(m);
        return r;
}

void manager_get_counts(Manager *m, size_t *ret_entries, size_t *ret_svids) {
        size_t n = 0;
        int64_t now = manager_now(m);

        for (size_t i = 0; i < m->n_entries; i++)
                if (m->entries[i]->svid && now < m->entries[i]->svid->not_after)
                        n++;
        if (ret_entries)
                *ret_entries = m->n_entries;
        if (ret_svids)
                *ret_svids = n;
}

/* e->pub, made anew when e changed or its SVID expired (then served without it). */
static int entry_publishable(Manager *m, ManagedEntry *e, int64_t now) {
        bool valid = e->svid && now < e->svid->not_after;
        int r;

        if (e->pub && (valid || !e->pub->svid))
                return 0;
        e->pub = cached_svid_unref(e->pub);
        r = cached_svid_new(e->info, valid ? e->svid : NULL, &e->pub);
        if (r < 0)
                return r;
        m->churn++;
        return 0;
}

static int build_snapshot(Manager *m, AgentSnapshot **ret) {
        _cleanup_(agent_snapshot_unrefp) AgentSnapshot *s = NULL;
        int64_t now = manager_now(m);
        int r;

        r = agent_snapshot_new(m->trust_domain, &s);
        if (r < 0)
                return r;
        s->version = ++m->version;
        s->bundle = warden_bundle_ref(m->bundle);
        if (m->n_federated > 0) {
                s->federated = calloc(m->n_federated, sizeof(WardenBundle *));
                if (!s->federated)
                        return -ENOMEM;
                for (size_t i = 0; i < m->n_federated; i++)
                        s->federated[i] = warden_bundle_ref(m->federated[i]);
                s->n_federated = m->n_federated;
        }
        if (m->n_entries > 0) {
                s->svids = calloc(m->n_entries, sizeof(CachedSvid *));
                if (!s->svids)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < m->n_entries; i++) {
                r = entry_publishable(m, m->entries[i], now);
                if (r < 0)
                        return r;
                s->svids[i] = cached_svid_ref(m->entries[i]->pub);
                s->n_svids = i + 1;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int manager_publish(Manager *m) {
        AgentSnapshot *s = NULL, *old;
        int r;

        r = build_snapshot(m, &s);
        if (r < 0)
                return log_error_errno(r, "Failed to build a snapshot: %m");
        pthread_mutex_lock(&m->snapshot_lock);
        old = m->snapshot;
        m->snapshot = s;
        pthread_mutex_unlock(&m->snapshot_lock);
        agent_snapshot_unref(old);
        if (m->metrics.svid_cache_entries) {
                size_t n = 0;

                for (size_t i = 0; i < s->n_svids; i++)
                        if (s->svids[i]->chain_der)
                                n++;
                (void) metrics_gauge_set(m->metrics.svid_cache_entries, NULL, (double) n);
        }
        manager_update_jwt_gauge(m);
        if (m->cb)
                m->cb(s, m->cb_userdata);
        manager_trim_heap(m);
        return 0;
}

void manager_trim_heap(Manager *m) {
        if (m->churn < MANAGER_TRIM_CHURN && (m->jobs_in_flight > 0 || m->churn == 0))
                return;
        /* The CachedSvids of the snapshot just replaced, Sync messages decoded on the link
         * thread and chains received on the worker leave freed memory scattered in the
         * arenas; glibc would keep it. A few ms per MANAGER_TRIM_CHURN entries changed. */
        (void) malloc_trim(0);
        m->churn = 0;
}

AgentSnapshot *manager_snapshot(Manager *m) {
        AgentSnapshot *s;

        pthread_mutex_lock(&m->snapshot_lock);
        s = agent_snapshot_ref(m->snapshot);
        pthread_mutex_unlock(&m->snapshot_lock);
        return s;
}

void manager_set_snapshot_callback(Manager *m, ManagerSnapshotCallback cb, void *userdata) {
        m->cb = cb;
        m->cb_userdata = userdata;
}

static double mint_rate(const ManagerConfig *cfg) {
        if (cfg->jwt_mint_rate < 0)
                return 0; /* no limit */
        return cfg->jwt_mint_rate > 0 ? cfg->jwt_mint_rate : MANAGER_JWT_MINT_RATE_DEFAULT;
}

static double mint_burst(const ManagerConfig *cfg) {
        double rate = mint_rate(cfg);

        if (cfg->jwt_mint_burst >= 1)
                return cfg->jwt_mint_burst;
        if (cfg->jwt_mint_rate == 0)
                return MANAGER_JWT_MINT_BURST_DEFAULT;
        return rate * 5 >= 1 ? rate * 5 : 1;
}

int manager_new(const ManagerConfig *cfg,
                const ManagerBackend *backend,
                sd_event *event,
                Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        if (!cfg || !cfg->trust_domain || !backend || !backend->batch_sign || !backend->mint_jwt ||
            !event)
                return -EINVAL;
        if (cfg->key_type < 0 || cfg->key_type >= _WARDEN_KEY_TYPE_MAX)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->snapshot_lock, NULL);
        m->cfg = *cfg;
        m->cfg.metrics = NULL;
        if (cfg->metrics)
                m->metrics = *cfg->metrics;
        m->backend = *backend;
        m->event = sd_event_ref(event);
        m->trust_domain = strdup(cfg->trust_domain);
        if (!m->trust_domain)
                return -ENOMEM;
        m->cfg.trust_domain = m->trust_domain;
        m->max_entries = cfg->max_entries > 0 ? cfg->max_entries : MANAGER_ENTRIES_MAX;
        r = taskq_new(true, &m->results);
        if (r >= 0)
                r = taskq_new(false, &m->work);
        if (r >= 0)
                r = jwt_cache_new(cfg->jwt_cache_max ? cfg->jwt_cache_max
                                                     : MANAGER_JWT_CACHE_MAX_DEFAULT,
                                  mint_rate(cfg), mint_burst(cfg), &m->jwt);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static void *worker_main(void *p) {
        Manager *m = p;

        taskq_run(m->work);
        return NULL;
}

static int on_results(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        taskq_dispatch(m->results);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        if (m->started)
                return -EBUSY;
        r = sd_event_add_io(m->event, &m->results_io, taskq_fd(m->results), EPOLLIN, on_results, m);
        if (r >= 0)
                r = manager_svid_start(m);
        if (r < 0)
                return r;
        r = taskq_thread_create(&m->worker, worker_main, m);
        if (r < 0)
                return r;
        m->started = true;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Queued jobs are destroyed (JWT waiters get -ECANCELED); the running one ends. */
        taskq_close(m->work);
        if (m->started)
                pthread_join(m->worker, NULL);
        m->work = taskq_free(m->work);
        m->results = taskq_free(m->results);
        sd_event_source_disable_unref(m->results_io);
        sd_event_source_disable_unref(m->batch_timer);
        sd_event_source_disable_unref(m->rotate_timer);
        for (size_t i = 0; i < m->n_entries; i++)
                managed_entry_free(m->entries[i]);
        free(m->entries);
        warden_bundle_unref(m->bundle);
        federated_clear(m);
        agent_snapshot_unref(m->snapshot);
        m->jwt = jwt_cache_free(m->jwt);
        pthread_mutex_destroy(&m->snapshot_lock);
        sd_event_unref(m->event);
        free(m->trust_domain);
        free(m);
        return NULL;
}
