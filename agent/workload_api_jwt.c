/* SPDX-License-Identifier: Apache-2.0 */
/* FetchJWTSVID: one JWT-SVID per identity of the caller (after hint de-dup), or only
 * the one asked for by spiffe_id. Tokens come from the source (the manager's JWT cache,
 * partitioned by the caller's uid, or a mint at the server, at a per-uid rate); the
 * handler never waits for them: cached tokens are answered at once on the CQ thread,
 * minted ones from the last callback, on whatever thread that runs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

#include "log.h"
#include "spiffe/workload/workload.pb-c.h"
#include "workload_api_internal.h"

typedef struct JwtRequest JwtRequest;

typedef struct JwtSlot {
        JwtRequest *req;
        const CachedSvid *svid; /* borrowed from req->view */
        char *token;            /* secret */
} JwtSlot;

struct JwtRequest {
        WorkloadApi *api;   /* referenced: keeps the RpcServer alive */
        RpcCall *call;      /* referenced */
        WapiCall stats;     /* accounting (rpc = call) */
        WapiView *view;     /* keeps the CachedSvids alive */
        JWTSVIDRequest *pb; /* the audiences live here until the end */
        uid_t uid;          /* the caller's: the source partitions its cache by it */
        JwtSlot *slots;
        size_t n_slots;
        unsigned outstanding; /* atomic: callbacks still due, +1 while starting */
        int error;            /* atomic: first failure */
};

static void jwt_request_free(JwtRequest *q) {
        for (size_t i = 0; i < q->n_slots; i++)
                erase_and_free(q->slots[i].token);
        free(q->slots);
        if (q->pb)
                protobuf_c_message_free_unpacked(&q->pb->base, NULL);
        wapi_view_unref(q->view);
        rpc_call_unref(q->call);
        wapi_unref(q->api);
        free(q);
}

/* The status for a source failure (manager_fetch_jwt_svid errors). */
static grpc_status_code jwt_error_status(int r) {
        switch (r) {
        case -EPERM:
        case -EACCES:
        case -EKEYREVOKED:
        case -EKEYREJECTED:
                return GRPC_STATUS_PERMISSION_DENIED;
        case -EINVAL:
                return GRPC_STATUS_INVALID_ARGUMENT; /* audiences the source refused */
        case -ENOMEM:
        case -EDQUOT: /* the caller's uid is over its rate of mints */
                return GRPC_STATUS_RESOURCE_EXHAUSTED;
        default:
                return GRPC_STATUS_UNAVAILABLE; /* server unreachable, no cached token */
        }
}

static int jwt_reply(JwtRequest *q) {
        JWTSVIDResponse resp = JWTSVIDRESPONSE__INIT;
        _cleanup_free_ JWTSVID *svids = NULL, **ptrs = NULL;

        svids = calloc(q->n_slots, sizeof(*svids));
        ptrs = calloc(q->n_slots, sizeof(*ptrs));
        if (!svids || !ptrs)
                return -ENOMEM;
        for (size_t i = 0; i < q->n_slots; i++) {
                jwtsvid__init(&svids[i]);
                svids[i].spiffe_id = q->slots[i].svid->spiffe_id;
                svids[i].svid = q->slots[i].token;
                if (q->slots[i].svid->hint)
                        svids[i].hint = q->slots[i].svid->hint;
                ptrs[i] = &svids[i];
        }
        resp.n_svids = q->n_slots;
        resp.svids = ptrs;
        /* 0 when the caller went away: nothing to tell */
        return wapi_reply(&q->stats, &resp.base, RPC_MESSAGE_ERASE);
}

static void jwt_complete(JwtRequest *q) {
        int r = __atomic_load_n(&q->error, __ATOMIC_ACQUIRE);

        if (r == -EDQUOT) {
                wapi_count_limited(q->api, METRICS_LIMIT_JWT_MINT_RATE);
                wapi_finish(&q->stats, GRPC_STATUS_RESOURCE_EXHAUSTED,
                            "too many new JWT-SVIDs for this user, try again later");
        } else if (r < 0) {
                log_debug_errno(r, "workload api: no JWT-SVID for the caller: %m");
                wapi_finish(&q->stats, jwt_error_status(r), "could not fetch JWT-SVID");
        } else {
                r = jwt_reply(q);
                if (r < 0)
                        wapi_finish(&q->stats, GRPC_STATUS_INTERNAL, "internal error");
        }
        jwt_request_free(q);
}

static void jwt_put(JwtRequest *q, int r) {
        int zero = 0;

        if (r < 0)
                (void) __atomic_compare_exchange_n(&q->error, &zero, r, false, __ATOMIC_ACQ_REL,
                                                   __ATOMIC_ACQUIRE);
        if (__atomic_sub_fetch(&q->outstanding, 1, __ATOMIC_ACQ_REL) == 0)
                jwt_complete(q);
}

static void jwt_done(int r, const char *token, void *userdata) {
        JwtSlot *slot = userdata;

        if (r >= 0 && !token)
                r = -EPROTO;
        if (r >= 0) {
                slot->token = strdup(token);
                if (!slot->token)
                        r = -ENOMEM;
        }
        jwt_put(slot->req, r);
}

/* INVALID_ARGUMENT reasons, or NULL when the request is fine. The strings were
 * checked on the wire for NUL and UTF-8 (wapi_check_strings()). */
static const char *jwt_check_request(const JWTSVIDRequest *pb) {
        const char *why = NULL;

        if (pb->n_audience == 0)
                return "audience must be specified";
        if (pb->n_audience > WARDEN_JWT_AUDIENCES_MAX)
                return "too many audiences";
        for (size_t i = 0; i < pb->n_audience; i++)
                if (warden_jwt_audience_check(pb->audience[i], strlen(pb->audience[i]), &why) < 0)
                        return why;
        if (pb->spiffe_id[0] && warden_spiffeid_validate_workload(pb->spiffe_id, NULL) < 0)
                return "invalid spiffe_id";
        return NULL;
}

/* The caller's identities to mint for (filtered by spiffe_id), into q->slots.
 * Finishes the call and returns < 0 when there are none. */
static int jwt_select(JwtRequest *q, const SelectorSet *have) {
        _cleanup_free_ const CachedSvid **m = NULL;
        const char *want = q->pb->spiffe_id[0] ? q->pb->spiffe_id : NULL;
        size_t n;
        int r;

        r = agent_snapshot_match(q->view->snap, have, &m, &n, NULL);
        if (r < 0) {
                wapi_finish(&q->stats, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return r;
        }
        q->slots = calloc(n > 0 ? n : 1, sizeof(*q->slots));
        if (!q->slots) {
                wapi_finish(&q->stats, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (!want || streq(m[i]->spiffe_id, want))
                        q->slots[q->n_slots++] = (JwtSlot){.req = q, .svid = m[i]};
        if (q->n_slots > 0)
                return 0;
        if (wapi_view_pending(q->view, have, want)) {
                wapi_finish(&q->stats, GRPC_STATUS_UNAVAILABLE,
                            "identity not issued yet, try again");
                return -EAGAIN;
        }
        wapi_finish(&q->stats, GRPC_STATUS_PERMISSION_DENIED, WAPI_MSG_NO_IDENTITY);
        return -EPERM;
}

/* Asks the source for every token; the last callback answers the call. */
static void jwt_start(JwtRequest *q) {
        const WorkloadApiSource *src = &q->api->source;
        const char *const *aud = (const char *const *) q->pb->audience;
        size_t n = q->n_slots;

        q->outstanding = (unsigned) n + 1;
        for (size_t i = 0; i < n; i++) {
                int r = src->fetch_jwt_svid(src->userdata, q->uid, q->slots[i].svid, aud,
                                            q->pb->n_audience, jwt_done, &q->slots[i]);
                if (r < 0)
                        jwt_put(q, r); /* done will not run for this one */
        }
        jwt_put(q, 0);
}

void wapi_fetch_jwt_svid(WapiCall *call, const WapiView *v, ProtobufCMessage *req) {
        JWTSVIDRequest *pb = (JWTSVIDRequest *) req;
        WorkloadApi *w = call->api;
        const char *why;
        JwtRequest *q;

        why = jwt_check_request(pb);
        if (why) {
                protobuf_c_message_free_unpacked(&pb->base, NULL);
                wapi_finish(call, GRPC_STATUS_INVALID_ARGUMENT, why);
                return;
        }
        q = calloc(1, sizeof(*q));
        if (!q) {
                protobuf_c_message_free_unpacked(&pb->base, NULL);
                wapi_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        *q = (JwtRequest){
                .api = wapi_ref(w),
                .call = rpc_call_ref(call->rpc),
                .pb = pb,
                .view = wapi_view_ref((WapiView *) v),
                .uid = rpc_call_peer(call->rpc)->uid,
        };
        /* From here on the request does the accounting, whichever thread answers. */
        q->stats = *call;
        q->stats.rpc = q->call;
        call->handed_off = true;
        if (jwt_select(q, call->selectors) < 0) {
                jwt_request_free(q);
                return;
        }
        jwt_start(q);
}
