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
#include "metrics_names.h"
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

/* The methods we register (the five of the spec plus the two WIT ones), in the order
 * of workload_api.c's table. */
typedef enum WapiMethodId {
        WAPI_FETCH_X509_SVID,
        WAPI_FETCH_X509_BUNDLES,
        WAPI_FETCH_JWT_SVID,
        WAPI_FETCH_JWT_BUNDLES,
        WAPI_VALIDATE_JWT_SVID,
        WAPI_FETCH_WIT_SVID,
        WAPI_FETCH_WIT_BUNDLES,
        _WAPI_METHOD_MAX,
} WapiMethodId;

#define WAPI_N_METHODS _WAPI_METHOD_MAX

/* One call as the handlers see it, and its accounting: every call that reaches a
 * handler is counted exactly once (workload_api_calls{method, code} and
 * workload_api_call_seconds{method}) when its outcome is known: a unary call when its
 * status goes out; a stream when its first message goes out (OK) or when it ends
 * before one (its status, or CANCELLED when the client left first). Refusals are
 * logged with method, pid, uid and status, at most once a second per uid.
 * Handlers get it on their stack; a stream or JWT request that answers later keeps
 * a copy (with its own reference on rpc) and sets handed_off on the original. */
typedef struct WapiCall {
        WorkloadApi *api;
        RpcCall *rpc; /* borrowed by handlers */
        WapiMethodId method;
        double t0;       /* metrics_now() when the call arrived */
        bool counted;    /* the outcome is recorded */
        bool handed_off; /* a copy took over the accounting */
} WapiCall;

typedef void (*WapiHandler)(WapiCall *call);

typedef enum WapiStreamKind {
        WAPI_STREAM_X509_SVID,
        WAPI_STREAM_X509_BUNDLES,
        WAPI_STREAM_JWT_BUNDLES,
} WapiStreamKind;

typedef struct WapiStream WapiStream;
struct WapiStream {
        WorkloadApi *api;
        RpcCall *call;  /* referenced */
        WapiCall stats; /* accounting (rpc = call); under WorkloadApi.lock */
        WapiStreamKind kind;
        SelectorSet selectors; /* attested once, when the stream started */
        uint8_t digest[32];    /* SHA-256 of the last message sent */
        bool sent;             /* a message went out (digest is valid) */
        bool done;             /* we ended it with a status */
        WapiStream *prev, *next;
};

typedef struct WapiWork WapiWork;

/* Per-method userdata of the registered RpcHandlers. */
typedef struct WapiMethodCtx {
        WorkloadApi *api;
        WapiHandler handler;
        WapiMethodId id;
} WapiMethodCtx;

/* Refusal log lines: one a second per uid, for this many uids at once. */
#define WAPI_LOG_UIDS 64

typedef struct WapiLogSlot {
        uid_t uid;
        int64_t second;      /* CLOCK_MONOTONIC second of the last line; 0 = unused */
        unsigned suppressed; /* refusals not logged since */
} WapiLogSlot;

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
        AgentMetrics metrics; /* all NULL without WorkloadApiConfig.metrics */

        pthread_mutex_t log_lock; /* guards log_slots */
        WapiLogSlot log_slots[WAPI_LOG_UIDS];

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

/* Attests the caller of the call into *ret (counted in workload_attestations{result}
 * and workload_attestation_seconds). On failure the call is finished with the
 * matching status (UNAUTHENTICATED when the caller exited, else UNAVAILABLE) and
 * -errno is returned. */
int wapi_attest(WapiCall *call, SelectorSet *ret);
/* The view of the newest snapshot (referenced). -EAGAIN when there is no snapshot or
 * no bundle yet. wapi_view_get_locked() needs w->lock held. */
int wapi_view_get(WorkloadApi *w, WapiView **ret);
int wapi_view_get_locked(WorkloadApi *w, WapiView **ret);
/* Unpacks the request of the call as desc; NULL (call finished with
 * INVALID_ARGUMENT) on failure. Free with protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *wapi_unpack_request(WapiCall *call, const ProtobufCMessageDescriptor *desc);
/* Packs m into a malloc'd buffer. */
int wapi_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len);
/* Wipes and frees a packed message that held secrets. */
void wapi_free_secret(uint8_t *p, size_t len);

/* workload_api_stream.c: the handler of the three streams. Checks the (empty)
 * request, attests the caller once, registers the stream, sends its first message (or
 * ends it), and keeps it updated until it closes. */
void wapi_stream_handler(WapiCall *call,
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

/* Handlers. */
void wapi_handle_fetch_x509_svid(WapiCall *call);
void wapi_handle_fetch_x509_bundles(WapiCall *call);
void wapi_handle_fetch_jwt_svid(WapiCall *call);
void wapi_handle_fetch_jwt_bundles(WapiCall *call);
void wapi_handle_validate_jwt_svid(WapiCall *call);

/* workload_api_calls.c: accounting and refusal logs (see WapiCall) */

/* The method's name ("FetchX509SVID"), a static string. */
const char *wapi_method_name(WapiMethodId id);
/* Runs handler for rpc (arrived at t0) and makes sure the call gets counted. */
void wapi_call_run(WapiMethodCtx *m, RpcCall *rpc, double t0);
/* Records the call's outcome, once; later calls for the same WapiCall are no-ops. */
void wapi_call_count(WapiCall *call, grpc_status_code status);
/* rpc_call_finish() + wapi_call_count(). */
void wapi_finish(WapiCall *call, grpc_status_code status, const char *message);
/* rpc_call_reply(); counts OK when it went out and CANCELLED when the caller was
 * gone (-ENOTCONN), nothing on other errors (the caller finishes the call). Returns
 * what rpc_call_reply() returned. */
int wapi_reply(WapiCall *call, const void *msg, size_t len);
/* Open streams gauge of the call's method, +1 or -1. */
void wapi_call_stream_opened(WapiCall *call, int delta);
/* RpcCallObserver (userdata: the WorkloadApi): counts a call the RPC layer ended
 * before any handler, e.g. INVALID_ARGUMENT for a missing security header, under the
 * method's name with latency 0. Paths that are not one of our methods are ignored.
 * Runs on the CQ thread. */
void wapi_count_refused(const char *path, grpc_status_code status, void *userdata);

/* workload_api_struct.c: JWT claims <-> google.protobuf.Struct */

/* Nesting deeper than this is refused (-E2BIG). */
#define WAPI_STRUCT_DEPTH_MAX 32

/* A JSON object as a malloc'd Struct tree (numbers become doubles). Free it with
 * protobuf_c_message_free_unpacked(&s->base, NULL). -EINVAL if j is not an object. */
int wapi_struct_from_json(const json_t *j, Google__Protobuf__Struct **ret);
/* The reverse, for printing (CLI): a new JSON object. */
int wapi_struct_to_json(const Google__Protobuf__Struct *s, json_t **ret);
