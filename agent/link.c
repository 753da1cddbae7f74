/* SPDX-License-Identifier: Apache-2.0 */
/* The link thread: node identity upkeep plus the Sync stream, posting events to the
 * main thread. Everything here blocks; only this thread touches l->id. */
#define _GNU_SOURCE

#include "link.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "log.h"
#include "parse.h"
#include "pb_util.h"
#include "rpc_status.h"
#include "taskq.h"

struct Link {
        LinkConfig cfg;
        ServerCreds *creds;
        NodeIdentity *id; /* link thread only, once started */
        LinkEventCallback cb;
        void *userdata;
        TaskQueue *events;
        pthread_t thread;
        bool started;
        int64_t renew_retry_at;
        unsigned attempt; /* failed connection attempts in a row (quieter logs) */
        bool refused;     /* the server refused l->id: attest again */
        char *last_error; /* why the last attempt failed, for the DISCONNECTED event */
        /* A renewed node SVID is used once it is saved; until then l->id (which the server
         * accepts until it sees the new one) stays in use, so a restart finds one that
         * works. Both link thread only. */
        NodeIdentity *pending;
        bool id_unsaved; /* l->id is in use but not on disk (saving is retried) */
        int64_t save_retry_at;
        char *bootstrap_source;
        /* Link thread only: the stream's connection is rebuilt only between streams
         * (a new identity must not tear down the open stream); unary calls (attest,
         * renew) use their own. */
        ServerConn stream_conn;
        ServerConn call_conn;

        pthread_mutex_t lock; /* protects stopping and stream */
        pthread_cond_t cond;
        bool stopping;
        RpcStream *stream;
};

uint64_t link_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms, double unit) {
        uint64_t d = min_ms;

        for (unsigned i = 0; i < attempt && d < max_ms; i++)
                d *= 2;
        if (d > max_ms)
                d = max_ms;
        if (unit < 0)
                unit = 0;
        if (unit > 1)
                unit = 1;
        return (uint64_t) ((double) d * (0.8 + 0.4 * unit));
}

static double random_unit(void) {
        uint32_t v = 0;

        if (RAND_bytes((unsigned char *) &v, sizeof(v)) != 1)
                return 0.5;
        return (double) v / (double) UINT32_MAX;
}

static void event_free(void *p) {
        LinkEvent *ev = p;

        if (!ev)
                return;
        free(ev->message);
        pb_free(ev->sync);
        free(ev);
}

static void event_run(void *p) {
        LinkEvent *ev = p;
        Link *l = *(Link **) (ev + 1);

        l->cb(ev, l->userdata);
        event_free(ev);
}

/* Posts an event; takes sync. */
static void post(Link *l,
                 LinkEventType type,
                 int error,
                 const char *message,
                 Warden__Node__V1__SyncResponse *sync) {
        LinkEvent *ev = calloc(1, sizeof(LinkEvent) + sizeof(Link *));

        if (!ev) {
                pb_free(sync);
                return;
        }
        *(Link **) (ev + 1) = l;
        ev->type = type;
        ev->error = error;
        ev->message = message ? strdup(message) : NULL;
        ev->sync = sync;
        if (taskq_push(l->events, event_run, event_free, ev) < 0)
                event_free(ev);
}

static bool stopping(Link *l) {
        bool s;

        pthread_mutex_lock(&l->lock);
        s = l->stopping;
        pthread_mutex_unlock(&l->lock);
        return s;
}

/* Sleeps ms unless stopped first. Returns false when stopping. */
static bool wait_ms(Link *l, uint64_t ms) {
        struct timespec ts;
        bool s;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t) (ms / 1000);
        ts.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&l->lock);
        while (!l->stopping && pthread_cond_timedwait(&l->cond, &l->lock, &ts) == 0)
                ;
        s = l->stopping;
        pthread_mutex_unlock(&l->lock);
        return !s;
}

/* Publishes the identity to the credentials every connection uses. */
static int install_identity(Link *l) {
        int r = server_creds_set_identity(l->creds, l->id->chain, l->id->key);

        if (r >= 0 && l->id->bundle)
                r = server_creds_set_roots(l->creds, l->id->bundle);
        return r;
}

/* Logs a failed call at level and keeps its reason for the DISCONNECTED event: the
 * server's or gRPC's text when there is one (an errno string would be made up: gRPC
 * failures are mapped to errno codes, they do not come from a syscall), else %m. */
static int link_failed(Link *l, int level, int r, const char *what, const char *msg) {
        free(l->last_error);
        l->last_error = strdup(msg ? msg : strerror(r < 0 ? -r : EIO));
        if (msg)
                log_full(level, "%s: %s", what, msg);
        else
                log_full_errno(level, r, "%s: %m", what);
        return r;
}

/* Puts next in use (the bundle moves over when next has none) and tells the main thread
 * with event (LINK_EVENT_ATTESTED or _RENEWED). */
static int use_identity(Link *l, NodeIdentity *next, bool saved, LinkEventType event) {
        int r;

        if (!next->bundle && l->id)
                next->bundle = TAKE_PTR(l->id->bundle);
        node_identity_free(l->id);
        l->id = next;
        l->id_unsaved = !saved;
        l->refused = false;
        l->save_retry_at = time(NULL) + LINK_RENEW_RETRY_SEC;
        r = install_identity(l);
        if (r < 0)
                return log_error_errno(r, "Failed to use the new node SVID: %m");
        post(l, event, 0, l->id->spiffe_id, NULL);
        return 0;
}

static int attest(Link *l, bool *fatal) {
        ServerConn *conn = &l->call_conn;
        _cleanup_(node_identity_freep) NodeIdentity *id = NULL;
        _cleanup_free_ char *msg = NULL, *why = NULL;
        RpcChannel *ch;
        int r;

        r = server_conn_channel(conn, false, &ch);
        if (r < 0) {
                *fatal = true;
                post(l, LINK_EVENT_FATAL, r,
                     "no trust bundle to verify the server with (use -trustBundle)", NULL);
                return r;
        }
        log_info("Attesting this node with %s",
                 l->cfg.attest.join_token ? "a join token" : "x509pop");
        r = node_identity_attest(ch, &l->cfg.attest, l->id ? l->id->bundle : l->cfg.bootstrap, &id,
                                 &msg);
        if (r == -EPERM || r == -EINVAL) {
                *fatal = true;
                post(l, LINK_EVENT_FATAL, r, msg ? msg : "node attestation refused", NULL);
                return r;
        }
        if (r < 0 && !l->id &&
            node_identity_first_contact_refusal(msg, l->cfg.trust_domain, l->cfg.bootstrap,
                                                l->cfg.bootstrap_source, &why) > 0) {
                /* Nothing persisted to fall back on: retrying will not help. */
                *fatal = true;
                post(l, LINK_EVENT_FATAL, -EKEYREJECTED, why, NULL);
                return r;
        }
        if (r < 0)
                return link_failed(l, LOG_WARNING, r, "Node attestation failed", msg);
        log_info("Node attested as %s method=%s expires=%s", id->spiffe_id,
                 l->cfg.attest.join_token ? "join_token" : "x509pop",
                 FORMAT_TIMESTAMP(id->not_after));
        /* No older identity to fall back on (the token is spent): use it, saved or not. */
        r = node_identity_save(id, l->cfg.data_dir);
        if (r < 0)
                log_warning_errno(r,
                                  "Cannot save the node SVID in %s (%m): using it, saving is "
                                  "retried; a restart before that needs a new attestation",
                                  l->cfg.data_dir);
        l->pending = node_identity_free(l->pending);
        return use_identity(l, TAKE_PTR(id), r >= 0, LINK_EVENT_ATTESTED);
}

/* An identity to connect with: the loaded one if still valid, else a new attestation.
 * Returns 0 or -errno; *fatal is set when the link must give up (event posted). */
static int ensure_identity(Link *l, bool *fatal) {
        bool have_method = l->cfg.attest.join_token || l->cfg.attest.x509pop_cert;

        if (l->id && l->pending && (l->refused || node_identity_expired(l->id, time(NULL)))) {
                /* A server that restarted forgot the old serial; or it expired: the renewed
                 * one is all there is. */
                log_warning("Node SVID %s %s; using the renewed one, which is not saved yet",
                            l->id->spiffe_id, l->refused ? "refused" : "expired");
                return use_identity(l, TAKE_PTR(l->pending), false, LINK_EVENT_RENEWED);
        }
        if (l->id && !l->refused && !node_identity_expired(l->id, time(NULL)))
                return 0;
        if (!have_method) {
                *fatal = true;
                post(l, LINK_EVENT_FATAL, -ENOKEY,
                     l->id ? "the node SVID has expired and no join token or x509pop is "
                             "configured to attest again"
                           : "no node SVID in the data directory and no join token or x509pop "
                             "configured",
                     NULL);
                return -ENOKEY;
        }
        if (l->id)
                log_warning("Node SVID %s %s, attesting again", l->id->spiffe_id,
                            l->refused ? "refused" : "expired");
        return attest(l, fatal);
}

/* A renewed node SVID goes in use once it is saved. If saving fails, the current one
 * stays in use (the server accepts it until it sees the renewed one) and saving is retried;
 * unless the current one is not on disk either: then nothing is gained by waiting. */
static int take_renewed(Link *l, NodeIdentity *next) {
        int r = node_identity_save_svid(next, l->cfg.data_dir);

        if (r < 0 && !l->id_unsaved) {
                log_warning_errno(r,
                                  "Cannot save the renewed node SVID in %s (%m): keeping the "
                                  "current one (expires %s) until it is saved",
                                  l->cfg.data_dir, FORMAT_TIMESTAMP(l->id->not_after));
                node_identity_free(l->pending);
                l->pending = next;
                l->save_retry_at = time(NULL) + LINK_RENEW_RETRY_SEC;
                return 0;
        }
        if (r < 0)
                log_warning_errno(r, "Cannot save the renewed node SVID in %s either: %m",
                                  l->cfg.data_dir);
        log_info("Node SVID renewed agent_id=%s expires=%s", next->spiffe_id,
                 FORMAT_TIMESTAMP(next->not_after));
        return use_identity(l, next, r >= 0, LINK_EVENT_RENEWED);
}

/* Saves the renewed (or unsaved) node SVID again. The renewed one goes in use once saved,
 * or when the current one would expire before the next attempt. */
static int retry_save(Link *l, int64_t now) {
        bool expiring = l->pending && now + LINK_RENEW_RETRY_SEC >= l->id->not_after;
        int r;

        if (now < l->save_retry_at && !expiring)
                return 0;
        l->save_retry_at = now + LINK_RENEW_RETRY_SEC;
        r = l->pending ? node_identity_save_svid(l->pending, l->cfg.data_dir)
                       : node_identity_save(l->id, l->cfg.data_dir);
        if (r < 0 && !expiring) {
                log_debug_errno(r, "Still cannot save the node SVID in %s: %m", l->cfg.data_dir);
                return 0;
        }
        if (r >= 0)
                log_info("Saved the node SVID in %s", l->cfg.data_dir);
        if (!l->pending) {
                l->id_unsaved = false;
                return 0;
        }
        if (r < 0)
                log_warning_errno(r,
                                  "The node SVID in use expires at %s and the renewed one "
                                  "still cannot be saved in %s (%m): using it unsaved",
                                  FORMAT_TIMESTAMP(l->id->not_after), l->cfg.data_dir);
        log_info("Node SVID renewed agent_id=%s expires=%s", l->pending->spiffe_id,
                 FORMAT_TIMESTAMP(l->pending->not_after));
        return use_identity(l, TAKE_PTR(l->pending), r >= 0, LINK_EVENT_RENEWED);
}

static int renew(Link *l) {
        _cleanup_(node_identity_freep) NodeIdentity *next = NULL;
        _cleanup_free_ char *msg = NULL;
        RpcChannel *ch;
        int r;

        r = server_conn_channel(&l->call_conn, true, &ch);
        if (r >= 0)
                r = node_identity_renew(ch, l->id, &next, &msg);
        if (r < 0) {
                l->renew_retry_at = time(NULL) + LINK_RENEW_RETRY_SEC;
                return link_failed(l, LOG_WARNING, r, "Failed to renew the node SVID", msg);
        }
        return take_renewed(l, TAKE_PTR(next));
}

static int maybe_renew(Link *l) {
        int64_t now = time(NULL);
        int r;

        if (l->pending || l->id_unsaved) {
                r = retry_save(l, now);
                if (r < 0 || l->pending)
                        return r; /* no new renewal while one waits to be saved */
        }
        /* (An unsaved identity in use is renewed as usual: nothing on disk to protect.) */
        if (now < node_identity_renew_at(l->id) || now < l->renew_retry_at)
                return 0;
        return renew(l);
}

/* Keeps the bundle of a Sync message: persisted and used as roots when it changed. */
static void take_bundle(Link *l, const Warden__Types__V1__Bundle *pb) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        const char *reason = NULL;
        int r;

        r = pb_to_bundle(pb, &b, &reason);
        if (r >= 0 && !streq(warden_bundle_trust_domain(b), l->cfg.trust_domain))
                r = -EINVAL, reason = "bundle of another trust domain";
        if (r < 0) {
                log_warning("Ignoring a bad bundle from the server: %s", strna(reason));
                return;
        }
        if (warden_bundle_equal(b, l->id->bundle))
                return;
        r = node_identity_bundle_save(b, l->cfg.data_dir);
        if (r < 0)
                log_warning_errno(r, "Failed to save the bundle, continuing: %m");
        if (warden_bundle_n_x509_authorities(b) > 0)
                (void) server_creds_set_roots(l->creds, b);
        warden_bundle_unref(l->id->bundle);
        l->id->bundle = TAKE_PTR(b);
        log_debug("Bundle updated to sequence %llu",
                  (unsigned long long) warden_bundle_sequence(l->id->bundle));
}

bool link_sync_take(LinkSyncCursor *c, const Warden__Node__V1__SyncResponse *m) {
        if (!m->full_snapshot && (!c->have || m->base_sequence != c->applied))
                return false;
        c->applied = m->sequence;
        c->have = true;
        return true;
}

static int set_stream(Link *l, RpcStream *st) {
        int r = 0;

        pthread_mutex_lock(&l->lock);
        if (st && l->stopping)
                r = -ECANCELED;
        else
                l->stream = st;
        pthread_mutex_unlock(&l->lock);
        return r;
}

/* Reads the stream until it ends. *got is set once a message arrived. Returns the
 * reason it ended: -EPERM when the server refused us, -EREMCHG when a delta does not
 * follow the last message applied (docs/sync.md: reopen for a full snapshot), another
 * -errno otherwise. */
static int read_stream(Link *l, RpcStream *st, bool *got) {
        LinkSyncCursor cursor = {};

        for (;;) {
                Warden__Node__V1__SyncResponse *resp = NULL;
                _cleanup_free_ char *msg = NULL;
                int status = GRPC_STATUS_UNKNOWN, r;

                r = server_sync_next(st, LINK_POLL_MS, &resp, &status, &msg);
                if (r == -ETIMEDOUT) {
                        if (stopping(l))
                                return -ECANCELED;
                        (void) maybe_renew(l);
                        if (node_identity_expired(l->id, time(NULL)))
                                return log_warning_errno(-EKEYEXPIRED,
                                                         "The node SVID expired before it could "
                                                         "be renewed, reconnecting");
                        continue;
                }
                if (r < 0)
                        return link_failed(l, l->attempt ? LOG_DEBUG : LOG_WARNING, r,
                                           "Sync stream failed", NULL);
                if (r == 0) {
                        _cleanup_free_ char *text = NULL;

                        if (stopping(l))
                                return -ECANCELED;
                        r = rpc_status_to_errno(status);
                        if (asprintf(&text, "%s%s%s", rpc_status_to_string(status), msg ? ": " : "",
                                     strempty(msg)) < 0)
                                text = NULL;
                        return link_failed(l, l->attempt ? LOG_DEBUG : LOG_WARNING,
                                           r == 0 ? -ECONNRESET : r, "Sync stream ended", text);
                }
                if (!link_sync_take(&cursor, resp)) {
                        log_warning("Sync: a message is missing (delta based on %llu, last "
                                    "applied %llu), asking for a full snapshot",
                                    (unsigned long long) resp->base_sequence,
                                    (unsigned long long) cursor.applied);
                        pb_free(resp);
                        return -EREMCHG;
                }
                if (!*got)
                        post(l, LINK_EVENT_CONNECTED, 0, NULL, NULL);
                *got = true;
                if (resp->bundle)
                        take_bundle(l, resp->bundle);
                post(l, LINK_EVENT_SYNC, 0, NULL, resp);
        }
}

static int run_stream(Link *l, bool *got) {
        RpcStream *st = NULL;
        RpcChannel *ch;
        int r;

        (void) maybe_renew(l);
        r = server_conn_channel(&l->stream_conn, true, &ch);
        if (r < 0)
                return r;
        for (unsigned resyncs = 0;; resyncs++) {
                r = server_sync_open(ch, 0, &st);
                if (r < 0)
                        return link_failed(l, l->attempt ? LOG_DEBUG : LOG_WARNING, r,
                                           "Failed to open the Sync stream", NULL);
                r = set_stream(l, st);
                if (r >= 0) {
                        r = read_stream(l, st, got);
                        (void) set_stream(l, NULL);
                }
                rpc_stream_free(st);
                st = NULL;
                /* A gap: a fresh stream at once on the same connection (a few times,
                 * then the usual reconnect with back-off). */
                if (r != -EREMCHG || resyncs >= 3)
                        return r;
        }
}

/* One connection attempt; *fatal is set (and the event posted) when giving up. */
static int link_once(Link *l, bool *got, bool *fatal) {
        int r;

        r = ensure_identity(l, fatal);
        if (r < 0)
                return r;
        r = run_stream(l, got);
        if (r == -EPERM) {
                log_warning("The server refused node SVID %s (evicted or banned?)",
                            l->id->spiffe_id);
                if (!l->pending && !l->cfg.attest.join_token && !l->cfg.attest.x509pop_cert) {
                        *fatal = true;
                        post(l, LINK_EVENT_FATAL, r,
                             "the server refused our node SVID and no join token or x509pop is "
                             "configured to attest again",
                             NULL);
                        return r;
                }
                /* The renewed node SVID, or a new attestation, at the next attempt (the
                 * bundle is kept). */
                l->refused = true;
        }
        return r;
}

static void *link_thread(void *p) {
        Link *l = p;

        while (!stopping(l)) {
                bool got = false, fatal = false;
                int r = link_once(l, &got, &fatal);

                if (fatal || stopping(l))
                        break;
                if (got)
                        l->attempt = 0;
                post(l, LINK_EVENT_DISCONNECTED, r,
                     l->last_error ? l->last_error : strerror(r < 0 ? -r : EIO), NULL);
                free(l->last_error);
                l->last_error = NULL;
                server_conn_reset(&l->stream_conn);
                server_conn_reset(&l->call_conn);
                if (!wait_ms(l, link_backoff_ms(l->attempt, l->cfg.backoff_min_ms,
                                                l->cfg.backoff_max_ms, random_unit())))
                        break;
                if (l->attempt < 16)
                        l->attempt++;
        }
        server_conn_done(&l->stream_conn);
        server_conn_done(&l->call_conn);
        return NULL;
}

int link_new(const LinkConfig *cfg,
             NodeIdentity *identity,
             ServerCreds *creds,
             LinkEventCallback cb,
             void *userdata,
             Link **ret) {
        _cleanup_(link_freep) Link *l = calloc(1, sizeof(Link));
        pthread_condattr_t ca;
        int r;

        if (!l) {
                node_identity_free(identity);
                return -ENOMEM;
        }
        l->id = identity;
        pthread_mutex_init(&l->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l->cond, &ca);
        pthread_condattr_destroy(&ca);
        l->cfg = *cfg;
        l->bootstrap_source = cfg->bootstrap_source ? strdup(cfg->bootstrap_source) : NULL;
        l->cfg.bootstrap_source = l->bootstrap_source;
        if (!l->cfg.backoff_min_ms)
                l->cfg.backoff_min_ms = LINK_BACKOFF_MIN_MS;
        if (!l->cfg.backoff_max_ms)
                l->cfg.backoff_max_ms = LINK_BACKOFF_MAX_MS;
        l->creds = creds;
        l->stream_conn.creds = l->call_conn.creds = creds;
        l->cb = cb;
        l->userdata = userdata;
        r = taskq_new(true, &l->events);
        if (r >= 0 && l->id)
                r = install_identity(l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int link_start(Link *l) {
        int r;

        if (!l->id && l->cfg.bootstrap) {
                r = server_creds_set_roots(l->creds, l->cfg.bootstrap);
                if (r < 0)
                        return r;
        }
        r = taskq_thread_create(&l->thread, link_thread, l);
        if (r < 0)
                return r;
        l->started = true;
        return 0;
}

void link_stop(Link *l) {
        if (!l || !l->started)
                return;
        pthread_mutex_lock(&l->lock);
        l->stopping = true;
        if (l->stream)
                rpc_stream_cancel(l->stream);
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
        l->started = false;
}

Link *link_free(Link *l) {
        if (!l)
                return NULL;
        link_stop(l);
        taskq_free(l->events);
        node_identity_free(l->id);
        node_identity_free(l->pending);
        free(l->last_error);
        free(l->bootstrap_source);
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
}

int link_event_fd(Link *l) {
        return taskq_fd(l->events);
}

void link_dispatch(Link *l) {
        taskq_dispatch(l->events);
}
