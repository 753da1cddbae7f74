/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The link to the server: a thread that owns the blocking connection.
 *
 * It keeps the node identity (attesting when there is none or it expired or was
 * refused, renewing it at half-life, persisting it in dataDir), holds one Sync stream
 * open over mutual TLS, and posts what happens to the main thread as LinkEvents (a
 * locked queue + eventfd: hook link_event_fd() into sd-event and call link_dispatch()).
 * When the stream fails it reconnects with jittered exponential back-off
 * (LINK_BACKOFF_MIN_MS doubling to LINK_BACKOFF_MAX_MS, +-20 %), on a fresh channel,
 * and the server resends the full state. A refused node SVID (PERMISSION_DENIED) means
 * attesting anew when a join token or x509pop is configured, else a fatal event; so is a
 * server that TLS refuses on the first attestation (no node SVID persisted): its
 * certificate does not verify against the bootstrap bundle, or it is not
 * spiffe://<td>/warden/server (a wrong -trustBundle or -trustDomain). Each
 * Sync message's bundle, when it changed, is persisted and becomes the roots for the
 * next connections. */

#include <stdbool.h>
#include <stdint.h>

#include <warden/bundle.h>

#include "cleanup.h"
#include "node_identity.h"
#include "server_client.h"
#include "warden/node/v1/node.pb-c.h"

#define LINK_BACKOFF_MIN_MS 1000
#define LINK_BACKOFF_MAX_MS 30000
/* How often the thread wakes while streaming (renewal, stop). */
#define LINK_POLL_MS 1000
/* A failed node SVID renewal is retried after this long. */
#define LINK_RENEW_RETRY_SEC 5

typedef enum LinkEventType {
        LINK_EVENT_ATTESTED,     /* new node SVID from attestation; message = agent ID */
        LINK_EVENT_RENEWED,      /* node SVID renewed; message = agent ID */
        LINK_EVENT_CONNECTED,    /* first Sync message of a stream arrived */
        LINK_EVENT_SYNC,         /* a Sync message (sync) */
        LINK_EVENT_DISCONNECTED, /* stream lost or not opened; error + message (why: the
                                  * server's status text, or strerror for local errors);
                                  * retrying */
        LINK_EVENT_FATAL,        /* the link gave up (error + message); the thread ended */
} LinkEventType;

typedef struct LinkEvent {
        LinkEventType type;
        int error;
        char *message;
        Warden__Node__V1__SyncResponse *sync;
} LinkEvent;

/* Runs on the main thread from link_dispatch(); ev is borrowed. */
typedef void (*LinkEventCallback)(const LinkEvent *ev, void *userdata);

typedef struct LinkConfig {
        const char *trust_domain;
        const char *data_dir;
        NodeAttestParams attest;       /* strings borrowed for the link's lifetime */
        const WardenBundle *bootstrap; /* -trustBundle roots, borrowed; may be NULL */
        const char *bootstrap_source;  /* where they came from, for errors (copied); or NULL */
        unsigned backoff_min_ms;       /* 0 = LINK_BACKOFF_MIN_MS */
        unsigned backoff_max_ms;       /* 0 = LINK_BACKOFF_MAX_MS */
} LinkConfig;

typedef struct Link Link;

/* identity (taken, even on failure; may be NULL: attest first) is the node identity loaded from
 * dataDir. creds is borrowed: the link keeps its roots and identity current. */
int link_new(const LinkConfig *cfg,
             NodeIdentity *identity,
             ServerCreds *creds,
             LinkEventCallback cb,
             void *userdata,
             Link **ret);
int link_start(Link *l);
/* Stops the thread (cancels the stream, wakes the back-off) and joins it. */
void link_stop(Link *l);
Link *link_free(Link *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Link *, link_free)

int link_event_fd(Link *l);
/* Delivers queued events to the callback (main thread). */
void link_dispatch(Link *l);

/* Delay before retry number `attempt` (0-based): min * 2^attempt capped at max, times
 * a factor in [0.8, 1.2] from unit in [0, 1]. */
uint64_t link_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms, double unit);

/* Sync message order on one stream (docs/sync.md): a full snapshot is always taken; a
 * delta only when its base_sequence is the sequence of the last message taken. false
 * means a message is missing: the stream must be reopened for a fresh snapshot. */
typedef struct LinkSyncCursor {
        uint64_t applied;
        bool have;
} LinkSyncCursor;

bool link_sync_take(LinkSyncCursor *c, const Warden__Node__V1__SyncResponse *m);
