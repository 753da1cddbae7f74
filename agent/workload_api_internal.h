/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals shared by the workload_api*.c files. Not for use outside them.
 *
 * One call's life (workload_api_calls.c, wapi_call_start(), on the CQ thread):
 *   method table entry → caller (the connection's WapiConn + pidfd liveness) → request
 *   unpacked → the published WapiView → a pure builder (view + selectors in, packed
 *   protobuf out) for streams, or the method's unary function → reply or status →
 *   counted and, when refused, logged (WapiCall).
 *
 * Threads and locking:
 *   CQ thread     runs every handler (RPC_METHOD_INLINE); reads the view through
 *                 wapi_view_current(): one atomic load while nothing changed.
 *   attest thread wapi_conn_attest(): a WapiConn per connection (immutable after).
 *   owner thread  wapi_view_publish() + wapi_streams_update() on every snapshot.
 *   source thread a JWT-SVID that had to be minted is answered from the source's
 *                 callback (the manager's worker thread).
 * view_lock guards `view` (the pointer) and view_gen's writer side; streams_lock guards
 * the stream list; each WapiStream has its own lock for what it sent. Lock order:
 * streams_lock, then a stream's lock, then RpcCall locks (rpc_call_* take their own).
 * Nothing blocking happens under any of them. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <systemd/sd-event.h>

#include <warden/jwtsvid.h>

#include "google/protobuf/struct.pb-c.h"
#include "metrics_names.h"
#include "rpc.h"
#include "rpc_message.h"
#include "selector.h"
#include "workload_api.h"

#define WAPI_METHOD_PREFIX "/SpiffeWorkloadAPI/"
#define WAPI_MSG_NO_IDENTITY "no identity issued"
#define WAPI_MSG_NOT_READY "agent is not ready to serve yet"
#define WAPI_MSG_ATTEST_FAILED "workload attestation failed"
#define WAPI_MSG_CALLER_GONE "could not verify existence of the original caller"
#define WAPI_MSG_BAD_REQUEST "malformed request"
#define WAPI_MSG_INVALID_JWT "unable to validate JWT-SVID"

/* What a connection was attested as (RpcPeer.conn_data). Immutable once made. */
typedef struct WapiConn {
        int error;             /* 0; -ESRCH: the caller was gone; else attestation failed */
        bool bound;            /* the process proved it holds the connection */
        SelectorSet selectors; /* valid when error is 0 */
} WapiConn;

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

typedef struct WapiStream WapiStream;

/* Refusal log lines: one a second per uid, for this many uids at once. */
#define WAPI_LOG_UIDS 64

typedef struct WapiLogSlot {
        uid_t uid;
        int64_t second;      /* CLOCK_MONOTONIC second of the last line; 0 = unused */
        unsigned suppressed; /* refusals not logged since */
} WapiLogSlot;

typedef struct WapiMethod WapiMethod;

/* The methods we register, in the order of workload_api_calls.c's table. */
typedef enum WapiMethodId {
        WAPI_FETCH_X509_SVID,
        WAPI_FETCH_X509_BUNDLES,
        WAPI_FETCH_JWT_SVID,
        WAPI_FETCH_JWT_BUNDLES,
        WAPI_VALIDATE_JWT_SVID,
        WAPI_FETCH_WIT_SVID,
        WAPI_FETCH_WIT_BUNDLES,
        WAPI_HEALTH_CHECK,
        _WAPI_METHOD_MAX,
} WapiMethodId;

/* The userdata of a registered method's handler. */
typedef struct WapiMethodCtx {
        WorkloadApi *api;
        const WapiMethod *method;
} WapiMethodCtx;

struct WorkloadApi {
        unsigned n_ref; /* the owner's + one per JWT-SVID request in flight */
        WorkloadApiSource source;
        Attestor *attestor;
        RpcServer *rpc;
        char *socket_path;
        int listen_fd;
        RpcConnLimits limits;
        WardenJwtTimeRules jwt_times;
        sd_event_source *event_source;
        bool started, stopped;
        AgentMetrics metrics; /* all NULL without WorkloadApiConfig.metrics */

        pthread_mutex_t log_lock; /* guards log_slots */
        WapiLogSlot log_slots[WAPI_LOG_UIDS];

        pthread_mutex_t view_lock;
        WapiView *view;    /* the newest published view; NULL before the first */
        uint64_t view_gen; /* atomic; bumped (under view_lock) on every publish */
        WapiView *cq_view; /* CQ thread only: the view it last took, and its gen */
        uint64_t cq_gen;

        pthread_mutex_t streams_lock;
        WapiStream *streams;
        size_t n_streams;

        WapiMethodCtx method_ctx[_WAPI_METHOD_MAX];
};

/* workload_api.c */

/* References keep the RpcServer alive for callbacks that may come late (JWT-SVIDs). */
WorkloadApi *wapi_ref(WorkloadApi *w);
WorkloadApi *wapi_unref(WorkloadApi *w);
/* RpcConnAttestFunc / its free function (userdata: the WorkloadApi). */
void *wapi_conn_attest(const RpcConnInfo *info, void *userdata);
void wapi_conn_free(void *p);
/* The newest view, borrowed until the next call on this thread; NULL before the first
 * snapshot with a bundle. CQ thread only. */
const WapiView *wapi_view_current(WorkloadApi *w);
/* Checks every length-delimited field of a request made of strings only: UTF-8
 * without NUL (protobuf-c would cut a string at its first NUL). Returns 0 or -EINVAL
 * with a static reason. */
int wapi_check_strings(const uint8_t *buf, size_t len, const char **reterr_reason);

/* One call as the handlers see it, and its accounting: every Workload API call that
 * reaches a handler is counted exactly once (workload_api_calls{method, code} and
 * workload_api_call_seconds{method}) when its outcome is known: a unary call when its
 * status goes out; a stream when its first message goes out (OK) or when it ends
 * before one (its status, or CANCELLED when the client left first). Refusals are
 * logged with method, pid, uid and status, at most once a second per uid.
 * Handlers get it on their stack; a stream or JWT request that answers later keeps
 * a copy (with its own reference on rpc) and sets handed_off on the original. */
typedef struct WapiCall {
        WorkloadApi *api;
        RpcCall *rpc; /* borrowed by handlers */
        const WapiMethod *method;
        const SelectorSet *selectors; /* the caller's (its connection's) */
        double t0;                    /* metrics_now() when the call arrived */
        bool counted;                 /* the outcome is recorded */
        bool handed_off;              /* a copy took over the accounting */
} WapiCall;

/* A stream's message for a caller: 1 with a message, 0 when there is nothing to send
 * yet (identities waiting for their SVIDs), -EPERM when the caller has no identity,
 * -ENOMEM. Pure: reads v and have only. */
typedef int (*WapiBuild)(const WapiView *v,
                         const SelectorSet *have,
                         uint8_t **ret,
                         size_t *ret_len);
/* A unary method: answers (or hands off) the call; takes req (frees it with
 * protobuf_c_message_free_unpacked()). v is NULL before the first view (only for
 * methods that are not Workload API calls). */
typedef void (*WapiUnary)(WapiCall *call, const WapiView *v, ProtobufCMessage *req);

struct WapiMethod {
        const char *path;
        RpcKind kind;
        const ProtobufCMessageDescriptor *request;
        bool workload_api;  /* a Workload API call: header, caller, counted */
        bool strings_only;  /* the request holds strings only (wapi_check_strings()) */
        WapiBuild build;    /* streams */
        bool wipe_messages; /* the built messages hold private keys */
        WapiUnary unary;    /* unary methods; both NULL: UNIMPLEMENTED */
};

/* workload_api_calls.c: the method table and a call's life. */
const WapiMethod *wapi_methods(size_t *ret_n);
/* The RpcHandler of every method (userdata: its WapiMethodCtx). */
void wapi_call_start(RpcCall *rpc, void *userdata);
/* Records the call's outcome, once; later calls for the same WapiCall are no-ops. */
void wapi_call_count(WapiCall *call, grpc_status_code status);
/* rpc_call_finish() + wapi_call_count(). */
void wapi_finish(WapiCall *call, grpc_status_code status, const char *message);
/* rpc_message_reply(); counts OK when the answer went out and CANCELLED when the
 * caller was gone, nothing on errors (the caller finishes the call). Returns what
 * rpc_message_reply() returned: 1, 0 (caller gone) or -errno. */
int wapi_reply(WapiCall *call, const ProtobufCMessage *m, RpcMessageFlags flags);
/* Open streams gauge of the call's method, +1 or -1. */
void wapi_call_stream_opened(WapiCall *call, int delta);
/* The method's short name ("FetchX509SVID"), for labels and logs. */
const char *wapi_method_name(const WapiMethod *m);
/* RpcCallObserver (userdata: the WorkloadApi): counts a call the RPC layer ended
 * before any handler, e.g. INVALID_ARGUMENT for a missing security header, under the
 * method's name with latency 0. Paths that are not one of our methods are ignored. */
void wapi_count_refused(const char *path, grpc_status_code status, void *userdata);
/* RpcConnObserver (userdata: the WorkloadApi): workload_api_limited. */
void wapi_count_conn_event(RpcConnEvent ev, uid_t uid, void *userdata);
/* workload_api_limited{limit} += 1. */
void wapi_count_limited(WorkloadApi *w, const char *limit);

/* workload_api_stream.c */

/* Registers the call as a stream of its method, sends its first message (or ends it),
 * and keeps it updated until it closes. */
void wapi_stream_start(WapiCall *call, const WapiView *v);
/* Brings every open stream up to v (owner thread). */
void wapi_streams_update(WorkloadApi *w, const WapiView *v);

/* Builders (pure): workload_api_x509.c, workload_api_bundles.c. */
int wapi_x509_svid_response(const WapiView *v,
                            const SelectorSet *have,
                            uint8_t **ret,
                            size_t *ret_len);
int wapi_x509_bundles_response(const WapiView *v,
                               const SelectorSet *have,
                               uint8_t **ret,
                               size_t *ret_len);
int wapi_jwt_bundles_response(const WapiView *v,
                              const SelectorSet *have,
                              uint8_t **ret,
                              size_t *ret_len);

/* Unary methods: workload_api_jwt.c, workload_api_validate.c, workload_api_calls.c. */
void wapi_fetch_jwt_svid(WapiCall *call, const WapiView *v, ProtobufCMessage *req);
void wapi_validate_jwt_svid(WapiCall *call, const WapiView *v, ProtobufCMessage *req);
void wapi_health_check(WapiCall *call, const WapiView *v, ProtobufCMessage *req);

/* workload_api_struct.c: JWT claims <-> google.protobuf.Struct */

/* Nesting deeper than this is refused (-E2BIG). */
#define WAPI_STRUCT_DEPTH_MAX 32

/* A JSON object as a malloc'd Struct tree (numbers become doubles). Free it with
 * protobuf_c_message_free_unpacked(&s->base, NULL). -EINVAL if j is not an object. */
int wapi_struct_from_json(const json_t *j, Google__Protobuf__Struct **ret);
/* The reverse, for printing (CLI): a new JSON object. */
int wapi_struct_to_json(const Google__Protobuf__Struct *s, json_t **ret);
