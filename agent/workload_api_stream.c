/* SPDX-License-Identifier: Apache-2.0 */
/* The stream registry: FetchX509SVID, FetchX509Bundles and FetchJWTBundles streams
 * get the caller's full state at once and again whenever a newer snapshot changes it.
 * A message equal to the last one sent is skipped (compared by SHA-256, so no copy
 * of the private keys stays around). A caller whose identities are gone gets
 * PERMISSION_DENIED, as with SPIRE; entries still waiting for their SVID keep an
 * X.509-SVID stream open without a message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "rpc_status.h"
#include "workload_api_internal.h"

static int stream_message(const WapiStream *st, const WapiView *v, uint8_t **ret, size_t *ret_len) {
        switch (st->kind) {
        case WAPI_STREAM_X509_SVID:
                return wapi_x509_svid_response(v, &st->selectors, ret, ret_len);
        case WAPI_STREAM_X509_BUNDLES:
                return wapi_x509_bundles_response(v, &st->selectors, ret, ret_len);
        case WAPI_STREAM_JWT_BUNDLES:
                return wapi_jwt_bundles_response(v, &st->selectors, ret, ret_len);
        }
        return -EINVAL;
}

/* w->lock is held: it guards st->stats too. */
static void stream_end(WapiStream *st, grpc_status_code status, const char *message) {
        st->done = true;
        wapi_finish(&st->stats, status, message); /* counted only if nothing went out */
}

/* Brings one stream up to view v. w->lock is held. */
static void stream_update_locked(WapiStream *st, const WapiView *v) {
        uint8_t digest[EVP_MAX_MD_SIZE];
        unsigned digest_len = 0;
        uint8_t *msg = NULL;
        size_t len = 0;
        int r;

        if (st->done)
                return;
        r = stream_message(st, v, &msg, &len);
        if (r == -EPERM) {
                stream_end(st, GRPC_STATUS_PERMISSION_DENIED, WAPI_MSG_NO_IDENTITY);
                return;
        }
        if (r < 0) {
                log_debug_errno(r, "workload api: building a stream message failed: %m");
                if (!st->sent)
                        stream_end(st, errno_to_grpc_status(r), "internal error");
                return;
        }
        if (r == 0)
                return; /* SVIDs not signed yet: the first message comes later */

        if (EVP_Digest(msg, len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
            digest_len != sizeof(st->digest)) {
                wapi_free_secret(msg, len);
                return;
        }
        if (st->sent && memcmp(digest, st->digest, sizeof(st->digest)) == 0) {
                wapi_free_secret(msg, len);
                return;
        }
        r = rpc_call_send(st->call, msg, len);
        wapi_free_secret(msg, len);
        if (r < 0) {
                /* Closed or finished: the close callback unregisters the stream. */
                log_debug_errno(r, "workload api: stream send failed: %m");
                return;
        }
        memcpy(st->digest, digest, sizeof(st->digest));
        st->sent = true;
        wapi_call_count(&st->stats, GRPC_STATUS_OK); /* the first message counts */
}

static void stream_free(WapiStream *st) {
        selector_set_done(&st->selectors);
        rpc_call_unref(st->call);
        free(st);
}

static void stream_on_close(RpcCall *c, void *userdata) {
        WapiStream *st = userdata;
        WorkloadApi *w = st->api;

        (void) c;
        pthread_mutex_lock(&w->lock);
        if (st->prev)
                st->prev->next = st->next;
        else
                w->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        w->n_streams--;
        /* Over before any message or status of ours: the client left (or we shut down). */
        wapi_call_count(&st->stats, GRPC_STATUS_CANCELLED);
        pthread_mutex_unlock(&w->lock);
        wapi_call_stream_opened(&st->stats, -1);
        stream_free(st);
}

static void stream_start(WapiCall *call, WapiStreamKind kind, SelectorSet *sel) {
        _cleanup_(wapi_view_unrefp) WapiView *v = NULL;
        WorkloadApi *w = call->api;
        WapiStream *st;
        int r;

        st = calloc(1, sizeof(*st));
        if (!st) {
                selector_set_done(sel);
                wapi_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        *st = (WapiStream){
                .api = w, .call = rpc_call_ref(call->rpc), .kind = kind, .selectors = *sel};
        *sel = (SelectorSet){};

        pthread_mutex_lock(&w->lock);
        r = wapi_view_get_locked(w, &v);
        if (r < 0) {
                pthread_mutex_unlock(&w->lock);
                stream_free(st);
                wapi_finish(call, r == -EAGAIN ? GRPC_STATUS_UNAVAILABLE : errno_to_grpc_status(r),
                            r == -EAGAIN ? WAPI_MSG_NOT_READY : "internal error");
                return;
        }
        /* From here on the stream does the accounting. */
        st->stats = *call;
        st->stats.rpc = st->call;
        call->handed_off = true;
        wapi_call_stream_opened(&st->stats, +1);
        st->next = w->streams;
        if (w->streams)
                w->streams->prev = st;
        w->streams = st;
        w->n_streams++;
        stream_update_locked(st, v);
        pthread_mutex_unlock(&w->lock);

        /* Only now: the callback may run at once (call already closed), and it
         * unregisters the stream. */
        rpc_call_set_close_callback(st->call, stream_on_close, st);
}

void wapi_stream_handler(WapiCall *call,
                         const ProtobufCMessageDescriptor *desc,
                         WapiStreamKind kind) {
        SelectorSet sel = {};
        ProtobufCMessage *req;

        req = wapi_unpack_request(call, desc);
        if (!req)
                return;
        protobuf_c_message_free_unpacked(req, NULL);
        if (wapi_attest(call, &sel) < 0)
                return;
        stream_start(call, kind, &sel);
}

void wapi_streams_update(WorkloadApi *w) {
        _cleanup_(wapi_view_unrefp) WapiView *v = NULL;
        int r;

        pthread_mutex_lock(&w->lock);
        r = wapi_view_get_locked(w, &v);
        if (r < 0)
                log_debug_errno(r, "workload api: no view of the new snapshot, streams wait: %m");
        else
                for (WapiStream *st = w->streams; st; st = st->next)
                        stream_update_locked(st, v);
        pthread_mutex_unlock(&w->lock);
}
