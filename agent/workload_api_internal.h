/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals shared by the workload_api*.c files. Not for use outside them.
 *
 * Threads and locking. Handlers run where the handler mode puts them (the CQ thread,
 * the owner thread, or a worker thread); workload_api_snapshot_changed() runs on the
 * owner thread. One mutex (WorkloadApi.lock) guards the stream registry, every
 * stream's state and the cached view; it is taken before any RpcCall lock (rpc_call_*
 * take their own), never the other way round, and nothing blocking happens under it.
 * Unary calls read an immutable, refcounted WapiView and need no lock after getting
 * it. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <systemd/sd-event.h>

#include "google/protobuf/struct.pb-c.h"
#include "rpc.h"
#include "selector.h"
#include "workload_api.h"

#define WAPI_METHOD_PREFIX "/SpiffeWorkloadAPI/"
#define WAPI_MSG_NO_IDENTITY "no identity issued"
#define WAPI_MSG_NOT_READY "agent is not ready to serve yet"
#define WAPI_MSG_ATTEST_FAILED "workload attestation failed"
#define WAPI_MSG_CALLER_GONE "could not verify existence of the original caller"
#define WAPI_MSG_BAD_REQUEST "malformed request"
#define WAPI_MSG_INVALID_JWT "unable to validate JWT-SVID"

/* FetchJWTSVID limits (peer-controlled sizes). */
#define WAPI_AUDIENCES_MAX 32 /* = MANAGER_JWT_AUDIENCES_MAX */
#define WAPI_AUDIENCE_LEN_MAX 1024
/* Leeway for exp/nbf/iat in ValidateJWTSVID (go-jose's default, as SPIRE). */
#define WAPI_JWT_LEEWAY_SECONDS 60
/* Worker threads in WORKLOAD_API_HANDLERS_WORKERS mode. */
#define WAPI_WORKERS 2

/* One trust domain's encodings, computed once per snapshot. */
typedef struct WapiTd {
        char *td;       /* bare name */
        char *id;       /* "spiffe://<td>", the Workload API map key */
        uint8_t *der;   /* CA certificates, DER joined */
        size_t der_len; /* 0 for none */
        char *jwks;     /* plain JWKS of the JWT authorities ({"keys":[]} for none) */
        size_t jwks_len;
} WapiTd;

/* A snapshot with its per-trust-domain encodings. Immutable once built. */
typedef struct WapiView {
        unsigned n_ref;
        AgentSnapshot *snap;
        WapiTd *tds; /* [0] is our own trust domain, then the federated ones by name */
        size_t n_tds;
} WapiView;

/* workload_api_view.c */
int wapi_view_new(AgentSnapshot *snap, WapiView **ret);
WapiView *wapi_view_ref(WapiView *v);
WapiView *wapi_view_unref(WapiView *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(WapiView *, wapi_view_unref)
/* Index of trust domain td (bare) in v->tds, or -ENOENT. */
int wapi_view_find(const WapiView *v, const char *td);
/* Marks in sel[0..v->n_tds) the trust domains a caller with selectors `have` sees:
 * our own, plus every federated one named by an entry that matches (signed or not).
 * Returns the number of matching entries (0: the caller has no identity). */
size_t wapi_view_caller_tds(const WapiView *v, const SelectorSet *have, bool *sel);
/* true when some entry matching `have` has no SVID yet; with spiffe_id non-NULL,
 * only entries for that ID count. */
bool wapi_view_pending(const WapiView *v, const SelectorSet *have, const char *spiffe_id);

typedef enum WapiStreamKind {
        WAPI_STREAM_X509_SVID,
        WAPI_STREAM_X509_BUNDLES,
        WAPI_STREAM_JWT_BUNDLES,
} WapiStreamKind;

typedef struct WapiStream WapiStream;
struct WapiStream {
        WorkloadApi *api;
        RpcCall *call; /* referenced */
        WapiStreamKind kind;
        SelectorSet selectors; /* attested once, when the stream started */
        uint8_t digest[32];    /* SHA-256 of the last message sent */
        bool sent;             /* a message went out (digest is valid) */
        bool done;             /* we ended it with a status */
        WapiStream *prev, *next;
};

typedef struct WapiWork WapiWork;

/* The methods we register (the five of the spec plus the two WIT ones). */
#define WAPI_N_METHODS 7

/* Per-method userdata of the worker-pool trampoline. */
typedef struct WapiMethodCtx {
        WorkloadApi *api;
        RpcHandler handler;
} WapiMethodCtx;

struct WorkloadApi {
        unsigned n_ref; /* the owner's + one per JWT-SVID request in flight */
        WorkloadApiSource source;
        Attestor *attestor;
        RpcServer *rpc;
        char *socket_path;
        int listen_fd;
        unsigned max_connections;
        WorkloadApiHandlerMode mode;
        sd_event_source *event_source;
        bool started, stopped;

        pthread_mutex_t lock; /* guards everything below */
        WapiView *view;       /* encodings of the newest snapshot seen */
        WapiStream *streams;
        size_t n_streams;

        /* WORKLOAD_API_HANDLERS_WORKERS */
        WapiMethodCtx methods[WAPI_N_METHODS];
        pthread_mutex_t work_lock;
        pthread_cond_t work_cond;
        WapiWork *work_head, *work_tail;
        bool work_quit;
        pthread_t workers[WAPI_WORKERS];
        size_t n_workers;
};

/* workload_api.c: shared call plumbing */

/* References keep the RpcServer alive for callbacks that may come late (JWT-SVIDs). */
WorkloadApi *wapi_ref(WorkloadApi *w);
WorkloadApi *wapi_unref(WorkloadApi *w);

/* Attests the caller of c into *ret. On failure the call is finished with the
 * matching status (UNAUTHENTICATED when the caller exited, else UNAVAILABLE) and
 * -errno is returned. */
int wapi_attest(WorkloadApi *w, RpcCall *c, SelectorSet *ret);
/* The view of the newest snapshot (referenced). -EAGAIN when there is no snapshot or
 * no bundle yet. wapi_view_get_locked() needs w->lock held. */
int wapi_view_get(WorkloadApi *w, WapiView **ret);
int wapi_view_get_locked(WorkloadApi *w, WapiView **ret);
/* Unpacks the request of c as desc; NULL (call finished with INVALID_ARGUMENT) on
 * failure. Free with protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *wapi_unpack_request(RpcCall *c, const ProtobufCMessageDescriptor *desc);
/* Packs m into a malloc'd buffer. */
int wapi_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len);
/* Wipes and frees a packed message that held secrets. */
void wapi_free_secret(uint8_t *p, size_t len);

/* workload_api_stream.c: the handler of the three streams. Checks the (empty)
 * request, attests the caller once, registers the stream, sends its first message (or
 * ends it), and keeps it updated until it closes. */
void wapi_stream_handler(WorkloadApi *w,
                         RpcCall *c,
                         const ProtobufCMessageDescriptor *desc,
                         WapiStreamKind kind);
/* Brings every open stream up to the newest snapshot (owner thread). */
void wapi_streams_update(WorkloadApi *w);

/* workload_api_x509.c */

/* The caller's X509SVIDResponse, packed (it holds private keys: free it with
 * wapi_free_secret). Returns 1 with a message, 0 when every matching entry is
 * still waiting for its SVID, -EPERM when no entry matches, -ENOMEM. */
int wapi_x509_svid_response(const WapiView *v,
                            const SelectorSet *have,
                            uint8_t **ret,
                            size_t *ret_len);
/* X509BundlesResponse / JWTBundlesResponse for the caller: our trust domain plus the
 * federated ones of its entries. Returns 1 with a message, -EPERM when the caller
 * has no identity, -ENOMEM. */
int wapi_x509_bundles_response(const WapiView *v,
                               const SelectorSet *have,
                               uint8_t **ret,
                               size_t *ret_len);
int wapi_jwt_bundles_response(const WapiView *v,
                              const SelectorSet *have,
                              uint8_t **ret,
                              size_t *ret_len);

/* Handlers (RpcHandler, userdata = WorkloadApi). */
void wapi_handle_fetch_x509_svid(RpcCall *c, void *userdata);
void wapi_handle_fetch_x509_bundles(RpcCall *c, void *userdata);
void wapi_handle_fetch_jwt_svid(RpcCall *c, void *userdata);
void wapi_handle_fetch_jwt_bundles(RpcCall *c, void *userdata);
void wapi_handle_validate_jwt_svid(RpcCall *c, void *userdata);

/* workload_api_struct.c: JWT claims <-> google.protobuf.Struct */

/* Nesting deeper than this is refused (-E2BIG). */
#define WAPI_STRUCT_DEPTH_MAX 32

/* A JSON object as a malloc'd Struct tree (numbers become doubles). Free it with
 * protobuf_c_message_free_unpacked(&s->base, NULL). -EINVAL if j is not an object. */
int wapi_struct_from_json(const json_t *j, Google__Protobuf__Struct **ret);
/* The reverse, for printing (CLI): a new JSON object. */
int wapi_struct_to_json(const Google__Protobuf__Struct *s, json_t **ret);
