/* SPDX-License-Identifier: Apache-2.0 */
/* The stream registry: FetchX509SVID, FetchX509Bundles and FetchJWTBundles streams
 * get the caller's full state at once and again whenever a newer view changes it.
 * A message equal to the last one sent is skipped (compared by SHA-256, so no copy
 * of the private keys stays around). A caller whose identities are gone gets
 * PERMISSION_DENIED, as with SPIRE; entries still waiting for their SVID keep an
 * X.509-SVID stream open without a message.
 *
 * The CQ thread starts streams (first message without a thread hop) and runs their
 * close callbacks; the owner thread updates them. A stream applies views in snapshot
 * order only: whichever thread comes second with an older view does nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "rpc_status.h"
#include "workload_api_internal.h"

struct WapiStream {
        unsigned n_ref; /* atomic: the registry's + one per update in progress */
        WorkloadApi *api;
        RpcCall *call; /* referenced: keeps the connection, so `selectors`, alive */
        const WapiMethod *method;
        const SelectorSet *selectors;

        pthread_mutex_t lock; /* guards what follows */
        WapiCall stats;       /* accounting (rpc = call) */
        uint64_t applied;     /* snapshot version of the last view applied */
        uint8_t digest[32];   /* SHA-256 of the last message sent */
        bool sent;            /* a message went out (digest is valid) */
        bool done;            /* we ended it with a status */

        WapiStream *prev, *next; /* under WorkloadApi.streams_lock */
};

static WapiStream *stream_ref(WapiStream *st) {
        __atomic_add_fetch(&st->n_ref, 1, __ATOMIC_RELAXED);
        return st;
}

static void stream_unref(WapiStream *st) {
        if (__atomic_sub_fetch(&st->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        rpc_call_unref(st->call);
        pthread_mutex_destroy(&st->lock);
        free(st);
}

/* st->lock is held. */
static void stream_end(WapiStream *st, grpc_status_code status, const char *message) {
        st->done = true;
        wapi_finish(&st->stats, status, message); /* counted only if nothing went out */
}

/* Sends msg unless it equals the last message sent. st->lock is held. */
static void stream_send_locked(WapiStream *st, const uint8_t *msg, size_t len) {
        uint8_t digest[EVP_MAX_MD_SIZE];
        unsigned digest_len = 0;
        int r;

        if (EVP_Digest(msg, len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
            digest_len != sizeof(st->digest))
                return;
        if (st->sent && memcmp(digest, st->digest, sizeof(st->digest)) == 0)
                return;
        r = rpc_call_send(st->call, msg, len);
        if (r < 0) {
                /* Closed or finished: the close callback unregisters the stream. */
                log_debug_errno(r, "workload api: stream send failed: %m");
                return;
        }
        memcpy(st->digest, digest, sizeof(st->digest));
        st->sent = true;
        wapi_call_count(&st->stats, GRPC_STATUS_OK); /* the first message counts */
}

/* Brings one stream up to view v, unless it saw a newer one. */
static void stream_apply(WapiStream *st, const WapiView *v) {
        uint8_t *msg = NULL;
        size_t len = 0;
        int r;

        pthread_mutex_lock(&st->lock);
        if (st->done || (st->applied > 0 && v->snap->version <= st->applied)) {
                pthread_mutex_unlock(&st->lock);
                return;
        }
        st->applied = v->snap->version;
        r = st->method->build(v, st->selectors, &msg, &len);
        if (r == -EPERM)
                stream_end(st, GRPC_STATUS_PERMISSION_DENIED, WAPI_MSG_NO_IDENTITY);
        else if (r < 0) {
                log_debug_errno(r, "workload api: building a stream message failed: %m");
                if (!st->sent)
                        stream_end(st, errno_to_grpc_status(r), "internal error");
        } else if (r > 0)
                stream_send_locked(st, msg, len);
        /* r == 0: SVIDs not signed yet, the first message comes later */
        pthread_mutex_unlock(&st->lock);
        rpc_message_free(msg, len, st->method->wipe_messages ? RPC_MESSAGE_ERASE : 0);
}

static void stream_on_close(RpcCall *c, void *userdata) {
        WapiStream *st = userdata;
        WorkloadApi *w = st->api;

        (void) c;
        pthread_mutex_lock(&w->streams_lock);
        if (st->prev)
                st->prev->next = st->next;
        else
                w->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        w->n_streams--;
        pthread_mutex_unlock(&w->streams_lock);

        pthread_mutex_lock(&st->lock);
        /* Over before any message or status of ours: the client left (or we shut down). */
        wapi_call_count(&st->stats, GRPC_STATUS_CANCELLED);
        st->done = true;
        pthread_mutex_unlock(&st->lock);
        wapi_call_stream_opened(&st->stats, -1);
        stream_unref(st);
}

void wapi_stream_start(WapiCall *call, const WapiView *v) {
        WorkloadApi *w = call->api;
        WapiStream *st;

        st = calloc(1, sizeof(*st));
        if (!st) {
                wapi_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        *st = (WapiStream){
                .n_ref = 1,
                .api = w,
                .call = rpc_call_ref(call->rpc),
                .method = call->method,
                .selectors = call->selectors,
        };
        pthread_mutex_init(&st->lock, NULL);
        /* From here on the stream does the accounting. */
        st->stats = *call;
        st->stats.rpc = st->call;
        call->handed_off = true;
        wapi_call_stream_opened(&st->stats, +1);

        pthread_mutex_lock(&w->streams_lock);
        st->next = w->streams;
        if (w->streams)
                w->streams->prev = st;
        w->streams = st;
        w->n_streams++;
        pthread_mutex_unlock(&w->streams_lock);

        /* An update of the owner thread may have come first with a newer view: then
         * this older one is skipped. */
        stream_apply(st, v);

        /* Only now: the callback may run at once (call already closed), and it
         * unregisters the stream. */
        rpc_call_set_close_callback(st->call, stream_on_close, st);
}

void wapi_streams_update(WorkloadApi *w, const WapiView *v) {
        _cleanup_free_ WapiStream **list = NULL;
        size_t n = 0;

        /* Take references under the registry lock, build and send without it, so that
         * streams can start and close on the CQ thread meanwhile. */
        bool oom;

        pthread_mutex_lock(&w->streams_lock);
        if (w->n_streams > 0)
                list = malloc(w->n_streams * sizeof(*list));
        oom = w->n_streams > 0 && !list;
        for (WapiStream *st = list ? w->streams : NULL; st; st = st->next)
                list[n++] = stream_ref(st);
        pthread_mutex_unlock(&w->streams_lock);
        if (oom)
                log_warning("workload api: out of memory, streams not updated");

        for (size_t i = 0; i < n; i++) {
                stream_apply(list[i], v);
                stream_unref(list[i]);
        }
}
