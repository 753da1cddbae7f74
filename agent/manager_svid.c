/* SPDX-License-Identifier: Apache-2.0 */
/* X.509-SVIDs for the manager's entries: batching CSRs to the worker thread, applying
 * the results on the main thread, renewal at half-life with jitter, retries. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include <warden/x509.h>

#include "log.h"
#include "manager_internal.h"
#include "ossl_cleanup.h"
#include "parse.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

/* One entry in a sign job; the worker fills the result fields. */
typedef struct SignItem {
        char *entry_id;
        char *spiffe_id;
        uint64_t gen;
        /* result */
        int r;
        uint8_t *chain_der;
        size_t chain_len;
        uint8_t *key_pkcs8;
        size_t key_len;
        int64_t not_before;
        int64_t not_after;
        char *serial; /* hex, for the log */
} SignItem;

typedef struct SignJob {
        Manager *m;
        WardenKeyType key_type;
        size_t n;
        SignItem items[];
} SignJob;

/* Why a signing failed, in words (no errno text: most come from the server, not a
 * system call). */
static const char *sign_failure(int r) {
        switch (r) {
        case -EPERM:
        case -EACCES:
                return "the server refused (entry not authorized for this node)";
        case -EINVAL:
                return "the server refused the request as invalid";
        case -EAGAIN:
        case -ETIMEDOUT:
        case -ECONNREFUSED:
        case -ENOTCONN:
                return "the server is unreachable";
        case -ESTALE:
                return "the entry changed while its SVID was being signed";
        case -EBADMSG:
        case -EPROTO:
                return "the server's answer was unusable";
        case -ENOMEM:
                return "out of memory";
        default:
                return "signing failed";
        }
}

const char *manager_format_time(int64_t t, char buf[static MANAGER_TIME_STRING_MAX]) {
        return format_timestamp(t, buf, MANAGER_TIME_STRING_MAX);
}

int manager_set_key_type(Manager *m, WardenKeyType key_type) {
        if (!m || key_type < 0 || key_type >= _WARDEN_KEY_TYPE_MAX)
                return -EINVAL;
        m->cfg.key_type = key_type;
        return 0;
}

int64_t manager_renew_time(int64_t not_before, int64_t not_after, double unit) {
        int64_t lifetime = not_after - not_before;
        double jitter;

        if (lifetime <= 0)
                return not_before;
        if (unit < 0)
                unit = 0;
        if (unit > 1)
                unit = 1;
        jitter = (unit * 2.0 - 1.0) * (double) lifetime / 20.0;
        return not_before + lifetime / 2 + (int64_t) jitter;
}

int64_t manager_retry_delay(unsigned failures) {
        int64_t d = MANAGER_RETRY_MIN_SEC;

        for (unsigned i = 1; i < failures && d < MANAGER_RETRY_MAX_SEC; i++)
                d *= 2;
        return d > MANAGER_RETRY_MAX_SEC ? MANAGER_RETRY_MAX_SEC : d;
}

static double random_unit(void) {
        uint32_t v = 0;

        if (RAND_bytes((unsigned char *) &v, sizeof(v)) != 1)
                return 0.5;
        return (double) v / (double) UINT32_MAX;
}

bool managed_entry_needs_signing(const ManagedEntry *e, int64_t now) {
        if (e->in_flight || now < e->retry_at)
                return false;
        return !e->svid || e->stale || now >= e->renew_at;
}

static void sign_job_free(void *p) {
        SignJob *job = p;

        if (!job)
                return;
        for (size_t i = 0; i < job->n; i++) {
                SignItem *it = &job->items[i];
                free(it->entry_id);
                free(it->spiffe_id);
                free(it->chain_der);
                free(it->serial);
                warden_key_der_free(it->key_pkcs8, it->key_len);
        }
        free(job);
}

/* Checks a signed chain against the key we made and keeps it in it. */
static int item_take_chain(SignItem *it, EVP_PKEY *key, ManagerSignResult *res) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *id = NULL;
        const char *reason = NULL;
        X509 *leaf;
        int r;

        r = warden_x509_chain_from_der(res->chain_der, res->chain_len, &chain);
        if (r < 0)
                return log_warning_errno(r, "Server sent a bad chain for entry %s", it->entry_id);
        leaf = sk_X509_value(chain, 0);
        r = warden_svid_check_leaf(leaf, &reason);
        if (r >= 0)
                r = warden_x509_spiffe_id(leaf, &id);
        if (r >= 0 && !streq(id, it->spiffe_id))
                r = -EBADMSG, reason = "SVID carries another SPIFFE ID";
        if (r >= 0 && !warden_key_public_equal(X509_get0_pubkey(leaf), key))
                r = -EBADMSG, reason = "SVID does not match our key";
        if (r < 0)
                return log_warning_errno(r, "Server sent an unusable SVID for entry %s: %s",
                                         it->entry_id, strna(reason));
        r = warden_key_to_pkcs8_der(key, &it->key_pkcs8, &it->key_len);
        if (r < 0)
                return r;
        (void) warden_x509_serial_hex(leaf, &it->serial);
        it->not_before = (int64_t) warden_x509_not_before(leaf);
        it->not_after = (int64_t) warden_x509_not_after(leaf);
        it->chain_der = TAKE_PTR(res->chain_der);
        it->chain_len = res->chain_len;
        return 0;
}

static void sign_done_run(void *p);

/* Worker thread: keys, CSRs, one batch call, result checks; then back to main. */
static void sign_job_run(void *p) {
        SignJob *job = p;
        EVP_PKEY **keys = calloc(job->n, sizeof(EVP_PKEY *));
        ManagerSignRequest *reqs = calloc(job->n, sizeof(ManagerSignRequest));
        ManagerSignResult *res = calloc(job->n, sizeof(ManagerSignResult));
        uint8_t **csrs = calloc(job->n, sizeof(uint8_t *));
        int r = keys && reqs && res && csrs ? 0 : -ENOMEM;

        for (size_t i = 0; i < job->n && r >= 0; i++) {
                r = warden_key_generate(job->key_type, &keys[i]);
                if (r >= 0)
                        r = warden_csr_create(keys[i], job->items[i].spiffe_id, &csrs[i],
                                              &reqs[i].csr_len);
                reqs[i].entry_id = job->items[i].entry_id;
                reqs[i].csr = csrs[i];
        }
        if (r >= 0)
                r = job->m->backend.batch_sign(job->m->backend.userdata, reqs, job->n, res);
        for (size_t i = 0; i < job->n; i++) {
                SignItem *it = &job->items[i];
                it->r = r < 0 ? r : res ? res[i].r : -ENOMEM;
                if (it->r >= 0)
                        it->r = item_take_chain(it, keys[i], &res[i]);
        }
        for (size_t i = 0; i < job->n; i++) {
                EVP_PKEY_free(keys ? keys[i] : NULL);
                free(csrs ? csrs[i] : NULL);
                free(res ? res[i].chain_der : NULL);
        }
        free(keys), free(reqs), free(res), free(csrs);
        if (r < 0)
                log_debug("Signing %zu SVIDs failed: %s", job->n, strerror(-r));
        if (taskq_push(job->m->results, sign_done_run, sign_job_free, job) < 0)
                sign_job_free(job);
}

/* One line and the counters for an SVID that arrived; rotated: it replaced one. */
static void count_svid(Manager *m, const ManagedEntry *e, const SignItem *it, bool rotated) {
        char t[MANAGER_TIME_STRING_MAX];

        (void) metrics_counter_inc(m->metrics.svids_issued, NULL);
        if (rotated)
                (void) metrics_counter_inc(m->metrics.svids_rotated, NULL);
        log_info("X509-SVID %s entry_id=%s spiffe_id=%s serial=%s expires=%s",
                 rotated ? "rotated" : "issued", managed_entry_id(e), managed_entry_spiffe_id(e),
                 strna(it->serial), manager_format_time(it->not_after, t));
}

static void apply_failure(ManagedEntry *e, int r, int64_t now) {
        e->failures++;
        e->retry_at = now + manager_retry_delay(e->failures);
        if (e->failures == 1)
                log_warning("Failed to get an SVID for entry %s (%s): %s, retrying",
                            managed_entry_id(e), managed_entry_spiffe_id(e), sign_failure(r));
}

static void apply_item(Manager *m, SignItem *it, int64_t now) {
        ManagedEntry *e = manager_find_entry(m, it->entry_id);
        SvidData *svid = NULL;
        bool rotated;

        if (!e || e->sign_gen != it->gen)
                return; /* deleted or asked again since */
        e->in_flight = false;
        if (it->r >= 0 && !streq(managed_entry_spiffe_id(e), it->spiffe_id))
                it->r = -ESTALE; /* the entry's identity changed meanwhile */
        /* One allocation, made here: what stays for the SVID's lifetime lives in the main
         * thread's arena, not between the worker's short-lived buffers. */
        if (it->r >= 0)
                it->r = svid_data_new(it->chain_der, it->chain_len, it->key_pkcs8, it->key_len,
                                      it->not_before, it->not_after, &svid);
        if (it->r < 0) {
                apply_failure(e, it->r, now);
                return;
        }
        rotated = e->svid != NULL;
        managed_entry_set_svid(e, svid);
        e->renew_at = manager_renew_time(svid->not_before, svid->not_after, random_unit());
        if (e->renew_at <= now) /* a very short SVID: don't ask again in a tight loop */
                e->renew_at = now + MANAGER_RETRY_MIN_SEC;
        e->failures = 0;
        e->retry_at = 0;
        count_svid(m, e, it, rotated);
        log_debug("SVID for %s (entry %s) valid until %s, renewal at %s",
                  managed_entry_spiffe_id(e), managed_entry_id(e),
                  FORMAT_TIMESTAMP(svid->not_after), FORMAT_TIMESTAMP(e->renew_at));
}

/* Main thread: a job came back. */
static void sign_done_run(void *p) {
        SignJob *job = p;
        Manager *m = job->m;
        int64_t now = manager_now(m);

        if (m->jobs_in_flight > 0)
                m->jobs_in_flight--;
        for (size_t i = 0; i < job->n; i++)
                apply_item(m, &job->items[i], now);
        sign_job_free(job);
        (void) manager_publish(m);
        manager_schedule_signing(m);
        manager_rearm(m);
}

static int post_job(Manager *m, ManagedEntry **batch, size_t n) {
        SignJob *job = calloc(1, sizeof(SignJob) + n * sizeof(SignItem));
        uint64_t gen;
        int r;

        if (!job)
                return -ENOMEM;
        job->m = m;
        job->key_type = m->cfg.key_type;
        job->n = n;
        gen = ++m->sign_seq;
        for (size_t i = 0; i < n; i++) {
                job->items[i].entry_id = strdup(managed_entry_id(batch[i]));
                job->items[i].spiffe_id = strdup(managed_entry_spiffe_id(batch[i]));
                job->items[i].gen = gen;
                if (!job->items[i].entry_id || !job->items[i].spiffe_id) {
                        sign_job_free(job);
                        return -ENOMEM;
                }
        }
        r = taskq_push(m->work, sign_job_run, sign_job_free, job);
        if (r < 0) {
                sign_job_free(job);
                return r;
        }
        m->jobs_in_flight++;
        for (size_t i = 0; i < n; i++) {
                batch[i]->sign_gen = gen;
                batch[i]->in_flight = true;
                batch[i]->stale = false;
        }
        return 0;
}

size_t manager_sign_due(Manager *m) {
        ManagedEntry *batch[MANAGER_BATCH_MAX];
        int64_t now = manager_now(m);
        size_t n = 0, total = 0;

        for (size_t i = 0; i <= m->n_entries; i++) {
                if (i < m->n_entries && managed_entry_needs_signing(m->entries[i], now))
                        batch[n++] = m->entries[i];
                if (n == 0 || (n < MANAGER_BATCH_MAX && i < m->n_entries))
                        continue;
                if (post_job(m, batch, n) < 0) {
                        log_warning("Failed to queue %zu SVID requests, retrying later", n);
                        return total;
                }
                total += n;
                n = 0;
        }
        if (total > 0)
                log_debug("Requested %zu SVIDs", total);
        return total;
}

static int on_batch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        manager_sign_due(m);
        manager_rearm(m);
        return 0;
}

void manager_schedule_signing(Manager *m) {
        int64_t now = manager_now(m);
        uint64_t mono;
        int enabled = SD_EVENT_OFF;

        if (!m->batch_timer)
                return;
        if (sd_event_source_get_enabled(m->batch_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        for (size_t i = 0; i < m->n_entries; i++) {
                if (!managed_entry_needs_signing(m->entries[i], now))
                        continue;
                if (sd_event_now(m->event, CLOCK_MONOTONIC, &mono) < 0)
                        return;
                (void) sd_event_source_set_time(m->batch_timer,
                                                mono + MANAGER_BATCH_DELAY_MS * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(m->batch_timer, SD_EVENT_ONESHOT);
                return;
        }
}

/* Drops SVIDs past their notAfter; true when any was dropped. */
static bool drop_expired(Manager *m, int64_t now) {
        bool any = false;

        for (size_t i = 0; i < m->n_entries; i++) {
                ManagedEntry *e = m->entries[i];
                if (!e->svid || now < e->svid->not_after)
                        continue;
                log_warning("SVID for %s (entry %s) expired before it could be renewed",
                            managed_entry_spiffe_id(e), managed_entry_id(e));
                managed_entry_set_svid(e, NULL);
                any = true;
        }
        return any;
}

void manager_tick(Manager *m) {
        if (drop_expired(m, manager_now(m)))
                (void) manager_publish(m);
        manager_sign_due(m);
        manager_rearm(m);
}

static int64_t earliest_event(Manager *m, int64_t now) {
        int64_t next = now + MANAGER_TIMER_MAX_SEC;

        for (size_t i = 0; i < m->n_entries; i++) {
                const ManagedEntry *e = m->entries[i];
                if (managed_entry_needs_signing(e, now))
                        continue; /* the batch timer takes it */
                if (e->svid && e->svid->not_after < next)
                        next = e->svid->not_after;
                if (e->in_flight)
                        continue;
                if (e->retry_at > now && e->retry_at < next)
                        next = e->retry_at;
                else if (e->svid && !e->stale && e->renew_at < next)
                        next = e->renew_at;
        }
        return next;
}

void manager_rearm(Manager *m) {
        int64_t now = manager_now(m), next;
        uint64_t mono;

        if (!m->rotate_timer || sd_event_now(m->event, CLOCK_MONOTONIC, &mono) < 0)
                return;
        manager_schedule_signing(m);
        next = earliest_event(m, now);
        if (next < now)
                next = now;
        (void) sd_event_source_set_time(m->rotate_timer,
                                        mono + (uint64_t) (next - now) * USEC_PER_SEC);
        (void) sd_event_source_set_enabled(m->rotate_timer, SD_EVENT_ONESHOT);
}

static int on_rotate_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_tick(userdata);
        return 0;
}

int manager_svid_start(Manager *m) {
        int r;

        r = sd_event_add_time(m->event, &m->batch_timer, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC,
                              on_batch_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->batch_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->rotate_timer, CLOCK_MONOTONIC, 0,
                                      100 * USEC_PER_MSEC, on_rotate_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->rotate_timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        /* Entries applied before the start. */
        manager_schedule_signing(m);
        manager_rearm(m);
        return 0;
}
