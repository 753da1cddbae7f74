/* SPDX-License-Identifier: Apache-2.0 */
/* JWT-SVIDs: a cache keyed by (caller's uid, SPIFFE ID, sorted audiences), shared by
 * every thread under one mutex, with one mint in flight per key (later callers wait on
 * it). The cache is partitioned by uid: each uid has its own LRU list, and when the
 * cache is full the uid holding the most tokens loses its least recently used one, so
 * one uid asking for many audiences only ever evicts its own tokens. Mints that miss the
 * cache are limited per uid by a token bucket (ManagerConfig.jwt_mint_rate/burst).
 * Mints run on the manager's worker thread; their callbacks run there too. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <warden/jwtsvid.h>

#include "log.h"
#include "manager_internal.h"
#include "ossl_cleanup.h"

#define JWT_KEY_SIZE 32
#define JWT_BUCKETS 256
#define JWT_ACCOUNT_BUCKETS 64
/* Uid accounts kept; beyond, those without tokens and with a full mint budget go. */
#define JWT_ACCOUNTS_MAX 4096
/* After a failed re-mint, the cached token is served this long before trying again. */
#define JWT_HOLD_SEC 5
/* Callers waiting on mints, all keys together. */
#define JWT_WAITERS_MAX 4096

typedef struct JwtAccount JwtAccount;

typedef struct JwtItem {
        uint8_t key[JWT_KEY_SIZE];
        JwtAccount *acct; /* the uid it was minted for */
        char *token;      /* secret */
        int64_t issued_at;
        int64_t expires_at;
        int64_t hold_until;          /* after a failed re-mint: served as is until then */
        struct JwtItem *prev, *next; /* the uid's LRU, head = most recently used */
        struct JwtItem *hnext;
} JwtItem;

/* One uid's share of the cache and its mint budget. */
struct JwtAccount {
        uid_t uid;
        size_t n;             /* tokens held */
        JwtItem *head, *tail; /* LRU */
        double budget;        /* mints it may start now (token bucket) */
        double refilled;      /* CLOCK_MONOTONIC seconds of the last refill */
        JwtAccount *next;
};

typedef struct JwtWaiter {
        ManagerJwtCallback done;
        void *userdata;
        struct JwtWaiter *next;
} JwtWaiter;

typedef struct JwtPending {
        uint8_t key[JWT_KEY_SIZE];
        JwtWaiter *waiters;
        struct JwtPending *next;
} JwtPending;

struct JwtCache {
        pthread_mutex_t lock;
        size_t max, n, n_waiters, n_accounts;
        double rate, burst; /* mints per second and burst per uid; rate 0: no limit */
        JwtItem *buckets[JWT_BUCKETS];
        JwtAccount *accounts[JWT_ACCOUNT_BUCKETS];
        JwtPending *pending;
};

typedef struct MintJob {
        Manager *m;
        uid_t uid;
        uint8_t key[JWT_KEY_SIZE];
        char *entry_id;
        char *spiffe_id;
        size_t n_audiences;
        char *audiences[];
} MintJob;

int jwt_cache_new(size_t max, double mint_rate, double mint_burst, JwtCache **ret) {
        JwtCache *c;

        if (max == 0 || mint_rate < 0 || (mint_rate > 0 && mint_burst < 1))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        c->max = max;
        c->rate = mint_rate;
        c->burst = mint_burst;
        *ret = c;
        return 0;
}

static void item_free(JwtItem *it) {
        erase_and_free(it->token);
        free(it);
}

JwtCache *jwt_cache_free(JwtCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < JWT_BUCKETS; i++)
                while (c->buckets[i]) {
                        JwtItem *it = c->buckets[i];
                        c->buckets[i] = it->hnext;
                        item_free(it);
                }
        for (size_t i = 0; i < JWT_ACCOUNT_BUCKETS; i++)
                while (c->accounts[i]) {
                        JwtAccount *a = c->accounts[i];
                        c->accounts[i] = a->next;
                        free(a);
                }
        while (c->pending) {
                JwtPending *p = c->pending;
                c->pending = p->next;
                while (p->waiters) {
                        JwtWaiter *w = p->waiters;
                        p->waiters = w->next;
                        free(w);
                }
                free(p);
        }
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

size_t jwt_cache_size(JwtCache *c) {
        size_t n;

        pthread_mutex_lock(&c->lock);
        n = c->n;
        pthread_mutex_unlock(&c->lock);
        return n;
}

void manager_update_jwt_gauge(Manager *m) {
        if (m->metrics.jwt_cache_entries)
                (void) metrics_gauge_set(m->metrics.jwt_cache_entries, NULL,
                                         (double) jwt_cache_size(m->jwt));
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int jwt_cache_key(uid_t uid,
                  const char *spiffe_id,
                  const char *const *audiences,
                  size_t n_audiences,
                  uint8_t ret[32]) {
        uint8_t uid_le[4] = {uid & 0xff, (uid >> 8) & 0xff, (uid >> 16) & 0xff, uid >> 24};
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_free_ const char **sorted = calloc(n_audiences ? n_audiences : 1, sizeof(char *));
        unsigned len = 0;
        int ok;

        if (!ctx || !sorted)
                return -ENOMEM;
        memcpy(sorted, audiences, n_audiences * sizeof(char *));
        qsort(sorted, n_audiences, sizeof(char *), cmp_str);
        ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, uid_le, sizeof(uid_le)) &&
             EVP_DigestUpdate(ctx, spiffe_id, strlen(spiffe_id) + 1);
        for (size_t i = 0; ok && i < n_audiences; i++)
                ok = EVP_DigestUpdate(ctx, sorted[i], strlen(sorted[i]) + 1);
        if (!ok || !EVP_DigestFinal_ex(ctx, ret, &len) || len != JWT_KEY_SIZE)
                return ossl_to_errno(-EIO);
        return 0;
}

/* ---- accounts, LRU + hash (caller holds the lock) ---- */

static double mono_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static JwtAccount **account_bucket(JwtCache *c, uid_t uid) {
        return &c->accounts[(uid * 2654435761u) % JWT_ACCOUNT_BUCKETS];
}

/* Tops the mint budget up for the time passed. */
static void account_refill(JwtCache *c, JwtAccount *a, double now) {
        if (now > a->refilled)
                a->budget += (now - a->refilled) * c->rate;
        if (a->budget > c->burst)
                a->budget = c->burst;
        a->refilled = now;
}

/* Drops accounts that hold nothing and have their whole budget back. */
static void accounts_prune(JwtCache *c, double now) {
        for (size_t i = 0; i < JWT_ACCOUNT_BUCKETS; i++)
                for (JwtAccount **p = &c->accounts[i]; *p;) {
                        JwtAccount *a = *p;

                        account_refill(c, a, now);
                        if (a->n > 0 || a->budget < c->burst) {
                                p = &a->next;
                                continue;
                        }
                        *p = a->next;
                        free(a);
                        c->n_accounts--;
                }
}

static JwtAccount *account_get(JwtCache *c, uid_t uid) {
        double now = mono_now();
        JwtAccount *a;

        for (a = *account_bucket(c, uid); a; a = a->next)
                if (a->uid == uid)
                        return a;
        if (c->n_accounts >= JWT_ACCOUNTS_MAX)
                accounts_prune(c, now);
        a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        *a = (JwtAccount){.uid = uid, .budget = c->burst, .refilled = now};
        a->next = *account_bucket(c, uid);
        *account_bucket(c, uid) = a;
        c->n_accounts++;
        return a;
}

/* Takes one mint from uid's budget: 0, or -EDQUOT when it is spent. */
static int account_take_mint(JwtCache *c, uid_t uid) {
        JwtAccount *a;

        if (c->rate <= 0)
                return 0;
        a = account_get(c, uid);
        if (!a)
                return -ENOMEM;
        account_refill(c, a, mono_now());
        if (a->budget < 1)
                return -EDQUOT;
        a->budget -= 1;
        return 0;
}

static JwtItem **bucket(JwtCache *c, const uint8_t key[JWT_KEY_SIZE]) {
        return &c->buckets[key[0]];
}

static JwtItem *find(JwtCache *c, const uint8_t key[JWT_KEY_SIZE]) {
        for (JwtItem *it = *bucket(c, key); it; it = it->hnext)
                if (memcmp(it->key, key, JWT_KEY_SIZE) == 0)
                        return it;
        return NULL;
}

static void lru_unlink(JwtItem *it) {
        JwtAccount *a = it->acct;

        if (it->prev)
                it->prev->next = it->next;
        else
                a->head = it->next;
        if (it->next)
                it->next->prev = it->prev;
        else
                a->tail = it->prev;
        it->prev = it->next = NULL;
}

static void lru_push_front(JwtItem *it) {
        JwtAccount *a = it->acct;

        it->prev = NULL;
        it->next = a->head;
        if (a->head)
                a->head->prev = it;
        a->head = it;
        if (!a->tail)
                a->tail = it;
}

static void remove_item(JwtCache *c, JwtItem *it) {
        for (JwtItem **p = bucket(c, it->key); *p; p = &(*p)->hnext)
                if (*p == it) {
                        *p = it->hnext;
                        break;
                }
        lru_unlink(it);
        it->acct->n--;
        c->n--;
        item_free(it);
}

/* Full: the uid holding the most tokens gives up its least recently used one. */
static void evict_one(JwtCache *c) {
        JwtAccount *big = NULL;

        for (size_t i = 0; i < JWT_ACCOUNT_BUCKETS; i++)
                for (JwtAccount *a = c->accounts[i]; a; a = a->next)
                        if (a->n > 0 && (!big || a->n > big->n))
                                big = a;
        if (big)
                remove_item(c, big->tail);
}

static bool is_fresh(const JwtItem *it, int64_t now) {
        return now < it->issued_at + (it->expires_at - it->issued_at) / 2 || now < it->hold_until;
}

static int lookup_locked(
        JwtCache *c, const uint8_t *key, int64_t now, bool fresh_only, char **ret) {
        JwtItem *it = find(c, key);

        if (!it)
                return 0;
        if (now >= it->expires_at) {
                remove_item(c, it);
                return 0;
        }
        if (fresh_only && !is_fresh(it, now))
                return 0;
        *ret = strdup(it->token);
        if (!*ret)
                return -ENOMEM;
        lru_unlink(it);
        lru_push_front(it);
        return 1;
}

int jwt_cache_lookup(JwtCache *c, const uint8_t key[32], int64_t now, bool fresh_only, char **ret) {
        int r;

        pthread_mutex_lock(&c->lock);
        r = lookup_locked(c, key, now, fresh_only, ret);
        pthread_mutex_unlock(&c->lock);
        return r;
}

static int store_locked(JwtCache *c,
                        uid_t uid,
                        const uint8_t *key,
                        const char *token,
                        int64_t issued_at,
                        int64_t expires_at) {
        JwtItem *it = find(c, key);
        JwtAccount *a = it ? it->acct : account_get(c, uid);
        char *copy = strdup(token);

        if (!copy || !a) {
                free(copy);
                return -ENOMEM;
        }
        if (!it) {
                it = calloc(1, sizeof(*it));
                if (!it) {
                        free(copy);
                        return -ENOMEM;
                }
                memcpy(it->key, key, JWT_KEY_SIZE);
                it->acct = a;
                it->hnext = *bucket(c, key);
                *bucket(c, key) = it;
                a->n++;
                c->n++;
        } else {
                lru_unlink(it);
                erase_and_free(it->token);
        }
        it->token = copy;
        it->issued_at = issued_at;
        it->expires_at = expires_at;
        it->hold_until = 0;
        lru_push_front(it);
        while (c->n > c->max)
                evict_one(c);
        return 0;
}

int jwt_cache_store(JwtCache *c,
                    uid_t uid,
                    const uint8_t key[32],
                    const char *token,
                    int64_t issued_at,
                    int64_t expires_at) {
        int r;

        pthread_mutex_lock(&c->lock);
        r = store_locked(c, uid, key, token, issued_at, expires_at);
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* ---- minting ---- */

static JwtPending *pending_find(JwtCache *c, const uint8_t *key, bool unlink) {
        for (JwtPending **p = &c->pending; *p; p = &(*p)->next) {
                JwtPending *x = *p;
                if (memcmp(x->key, key, JWT_KEY_SIZE) != 0)
                        continue;
                if (unlink)
                        *p = x->next;
                return x;
        }
        return NULL;
}

/* Ends the mint for key: stores a new token, then answers every waiter. */
static void mint_complete(Manager *m,
                          uid_t uid,
                          const uint8_t *key,
                          int r,
                          const char *token,
                          int64_t issued_at,
                          int64_t expires_at) {
        JwtCache *c = m->jwt;
        _cleanup_erase_ char *fallback = NULL;
        int64_t now = manager_now(m);
        JwtPending *p;

        pthread_mutex_lock(&c->lock);
        if (r >= 0 && store_locked(c, uid, key, token, issued_at, expires_at) < 0)
                log_debug("Failed to cache a JWT-SVID, continuing");
        if (r < 0 && lookup_locked(c, key, now, false, &fallback) > 0) {
                /* Serve it without asking the server again for a little while. */
                JwtItem *it = find(c, key);
                if (it)
                        it->hold_until = now + JWT_HOLD_SEC;
                token = fallback;
        }
        p = pending_find(c, key, true);
        for (JwtWaiter *w = p ? p->waiters : NULL; w; w = w->next)
                c->n_waiters--;
        pthread_mutex_unlock(&c->lock);
        if (r >= 0)
                manager_update_jwt_gauge(m);
        if (r >= 0)
                r = 0;
        else if (fallback) {
                log_info_errno(r, "Minting a JWT-SVID failed (%m), serving the cached one");
                r = 0;
                token = fallback;
        } else {
                if (r != -EPERM && r != -ECANCELED)
                        r = -EAGAIN;
                token = NULL;
        }
        while (p && p->waiters) {
                JwtWaiter *w = p->waiters;
                p->waiters = w->next;
                w->done(r, token, w->userdata);
                free(w);
        }
        free(p);
}

static void mint_job_free(void *p) {
        MintJob *job = p;

        if (!job)
                return;
        free(job->entry_id);
        free(job->spiffe_id);
        for (size_t i = 0; i < job->n_audiences; i++)
                free(job->audiences[i]);
        free(job);
}

/* The queue was closed before the job ran. */
static void mint_job_cancel(void *p) {
        MintJob *job = p;

        mint_complete(job->m, job->uid, job->key, -ECANCELED, NULL, 0, 0);
        mint_job_free(job);
}

/* Worker thread. */
static void mint_job_run(void *p) {
        MintJob *job = p;
        Manager *m = job->m;
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *claims = NULL;
        _cleanup_erase_ char *token = NULL;
        int64_t exp = 0, iat = 0, now = manager_now(m);
        int r;

        r = m->backend.mint_jwt(m->backend.userdata, job->entry_id,
                                (const char *const *) job->audiences, job->n_audiences, &token,
                                &exp, &iat);
        if (r >= 0 && (warden_jwtsvid_parse_unverified(token, &claims, NULL) < 0 ||
                       !streq(claims->spiffe_id, job->spiffe_id) || exp <= now))
                r = log_warning_errno(-EBADMSG, "Server sent an unusable JWT-SVID for %s",
                                      job->spiffe_id);
        if (r >= 0 && (iat <= 0 || iat > now))
                iat = now;
        if (r >= 0) {
                char t[MANAGER_TIME_STRING_MAX];

                (void) metrics_counter_inc(m->metrics.svids_issued, NULL);
                log_info("JWT-SVID issued entry_id=%s spiffe_id=%s jti=%s audiences=%zu "
                         "expires=%s",
                         job->entry_id, job->spiffe_id, strna(claims->jti), job->n_audiences,
                         manager_format_time(exp, t));
        }
        mint_complete(m, job->uid, job->key, r, token, iat, exp);
        mint_job_free(job);
}

static int mint_job_new(Manager *m,
                        uid_t uid,
                        const uint8_t *key,
                        const CachedSvid *svid,
                        const char *const *audiences,
                        size_t n,
                        MintJob **ret) {
        MintJob *job = calloc(1, sizeof(MintJob) + n * sizeof(char *));

        if (!job)
                return -ENOMEM;
        job->m = m;
        job->uid = uid;
        memcpy(job->key, key, JWT_KEY_SIZE);
        job->entry_id = strdup(svid->entry_id);
        job->spiffe_id = strdup(svid->spiffe_id);
        for (size_t i = 0; i < n; i++) {
                job->audiences[i] = strdup(audiences[i]);
                job->n_audiences = i + 1;
                if (!job->audiences[i])
                        break;
        }
        if (!job->entry_id || !job->spiffe_id || job->n_audiences != n || !job->audiences[n - 1]) {
                mint_job_free(job);
                return -ENOMEM;
        }
        *ret = job;
        return 0;
}

/* Under the lock: a fresh token (1, *ret), or a waiter added (0; *ret_start when this
 * caller must start the mint), or -EDQUOT when uid may not start another mint yet (an
 * unexpired token is served instead, if there is one). */
static int fetch_locked(Manager *m,
                        uid_t uid,
                        const uint8_t *key,
                        ManagerJwtCallback done,
                        void *userdata,
                        char **ret,
                        bool *ret_start) {
        JwtCache *c = m->jwt;
        JwtPending *p;
        JwtWaiter *w;
        int r;

        r = lookup_locked(c, key, manager_now(m), true, ret);
        if (r != 0)
                return r;
        if (c->n_waiters >= JWT_WAITERS_MAX)
                return -EAGAIN;
        p = pending_find(c, key, false);
        if (!p) {
                r = account_take_mint(c, uid);
                if (r == -EDQUOT && lookup_locked(c, key, manager_now(m), false, ret) > 0)
                        return 1;
                if (r < 0)
                        return r;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (JwtWaiter){.done = done, .userdata = userdata};
        *ret_start = !p;
        if (!p) {
                p = calloc(1, sizeof(*p));
                if (!p) {
                        free(w);
                        return -ENOMEM;
                }
                memcpy(p->key, key, JWT_KEY_SIZE);
                p->next = c->pending;
                c->pending = p;
        }
        w->next = p->waiters;
        p->waiters = w;
        c->n_waiters++;
        return 0;
}

static int check_audiences(const char *const *audiences, size_t n) {
        if (n == 0 || n > WARDEN_JWT_AUDIENCES_MAX || !audiences)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!audiences[i] ||
                    warden_jwt_audience_check(audiences[i], strlen(audiences[i]), NULL) < 0)
                        return -EINVAL;
        return 0;
}

int manager_fetch_jwt_svid(Manager *m,
                           uid_t uid,
                           const CachedSvid *svid,
                           const char *const *audiences,
                           size_t n_audiences,
                           ManagerJwtCallback done,
                           void *userdata) {
        _cleanup_erase_ char *token = NULL;
        uint8_t key[JWT_KEY_SIZE];
        MintJob *job = NULL;
        bool start = false;
        int r;

        if (!m || !svid || !svid->entry_id || !svid->spiffe_id || !done)
                return -EINVAL;
        r = check_audiences(audiences, n_audiences);
        if (r >= 0)
                r = jwt_cache_key(uid, svid->spiffe_id, audiences, n_audiences, key);
        if (r < 0)
                return r;
        pthread_mutex_lock(&m->jwt->lock);
        r = fetch_locked(m, uid, key, done, userdata, &token, &start);
        pthread_mutex_unlock(&m->jwt->lock);
        if (r > 0)
                done(0, token, userdata);
        if (r != 0 || !start)
                return r < 0 ? r : 0;
        /* From here on `done` is registered: every failure is answered through it. */
        r = mint_job_new(m, uid, key, svid, audiences, n_audiences, &job);
        if (r < 0) {
                mint_complete(m, uid, key, r, NULL, 0, 0);
                return 0;
        }
        r = taskq_push_front(m->work, mint_job_run, mint_job_cancel, job);
        if (r < 0)
                mint_job_cancel(job);
        return 0;
}
