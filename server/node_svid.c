/* SPDX-License-Identifier: Apache-2.0 */
/* Workload SVIDs for agents: BatchNewX509SVID signs CSRs and NewJWTSVID mints tokens,
 * each only for entries the calling agent is authorized for (authz.h). TTLs come from
 * the entry, capped by the server defaults.
 *
 * The main thread authenticates and authorizes the call and copies what signing needs
 * (entry fields, a CaSigner snapshot) into a job; the job verifies the CSRs, signs,
 * packs and answers on a signing thread (sign_pool.h), or right away on the main
 * thread with -signingThreads 0 (node_sign_job.c). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/jwtsvid.h>

#include "cleanup.h"
#include "entry_index.h"
#include "log.h"
#include "node_api_internal.h"
#include "node_sign_job.h"
#include "pb_util.h"
#include "rpc_status.h"
#include "strv.h"

#define NOT_AUTHORIZED "entry is not authorized for this agent"

/* A peer's entry ID for the log: only when it has the form of one. */
static const char *loggable_id(const char *id) {
        return entry_id_validate(id) >= 0 ? id : "(malformed)";
}

/* The caller's authorized set, from the in-memory index (borrowed entries, valid until
 * the index changes: use them before returning to the event loop). */
static int load_authz(NodeApi *n, RpcCall *c, AuthzView *ret, const char **reterr_message) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        r = node_authenticate(n, c, &a);
        if (r == -EPERM)
                *reterr_message = NODE_NOT_ATTESTED;
        if (r < 0)
                return r;
        return entry_index_authorized(n->server->index, a->spiffe_id, &a->selectors, time(NULL),
                                      n->max_entries, ret);
}

static int cmp_view_id(const void *key, const void *elem) {
        return strcmp(key, (*(const Entry *const *) elem)->id);
}

static const Entry *view_find(const AuthzView *v, const char *id) {
        const Entry *const *e;

        if (v->n == 0)
                return NULL;
        e = bsearch(id, v->entries, v->n, sizeof(Entry *), cmp_view_id);
        return e ? *e : NULL;
}

/* The job's call, signer and metrics (main thread). */
static int job_init(NodeApi *n, RpcCall *c, NodeSignJob *j) {
        int r;

        r = ca_get_signer(n->server->ca, &j->signer);
        if (r < 0)
                return r;
        j->agent_id = strdup(rpc_call_peer(c)->spiffe_id);
        if (!j->agent_id)
                return -ENOMEM;
        j->call = rpc_call_ref(c);
        j->signing_seconds = n->server->metrics.signing_seconds;
        j->signings = n->server->metrics.signings;
        return 0;
}

/* Fills item i for the authorized entry e (copies: the set is gone when the job runs). */
static int x509_item_init(NodeApi *n, NodeX509Item *it, const Entry *e) {
        int r;

        it->spiffe_id = strdup(e->spiffe_id);
        it->entry_id = strdup(e->id);
        if (!it->spiffe_id || !it->entry_id)
                return -ENOMEM;
        r = strv_copy(e->dns_names, e->n_dns_names, &it->dns_names);
        if (r < 0)
                return r;
        it->n_dns_names = e->n_dns_names;
        it->ttl = server_x509_ttl(n->server, e->x509_svid_ttl);
        return 0;
}

int node_batch_new_x509_svid(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(node_sign_job_freep) NodeSignJob *j = NULL;
        _cleanup_(authz_view_done) AuthzView set = {};
        Warden__Node__V1__BatchNewX509SVIDRequest *req;
        Warden__Node__V1__BatchNewX509SVIDResponse *resp;
        int r;

        r = load_authz(n, c, &set, reterr_message);
        if (r < 0)
                return r;
        r = node_sign_job_new(NODE_SIGN_X509, &j);
        if (r < 0)
                return r;
        j->now = time(NULL);
        r = rpc_message_unpack(c, &warden__node__v1__batch_new_x509_svidrequest__descriptor,
                               (ProtobufCMessage **) &j->x509.req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        req = j->x509.req;
        if (req->n_params > NODE_BATCH_MAX) {
                *reterr_message = "too many CSRs in one batch (at most 500)";
                return -EINVAL;
        }
        r = job_init(n, c, j);
        if (r < 0)
                return r;
        resp = j->x509.resp = malloc(sizeof(*resp));
        if (!resp)
                return -ENOMEM;
        warden__node__v1__batch_new_x509_svidresponse__init(resp);
        if (req->n_params > 0) {
                resp->results = calloc(req->n_params, sizeof(void *));
                j->x509.items = calloc(req->n_params, sizeof(NodeX509Item));
                if (!resp->results || !j->x509.items)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < req->n_params; i++) {
                const Warden__Node__V1__X509SVIDParams *p = req->params[i];
                Warden__Node__V1__X509SVIDResult *res = malloc(sizeof(*res));
                NodeX509Item *it = &j->x509.items[j->x509.n_items++];
                const Entry *e;

                if (!res)
                        return -ENOMEM;
                warden__node__v1__x509_svidresult__init(res);
                resp->results[resp->n_results++] = res;
                it->res = res;
                it->csr = &p->csr;
                res->entry_id = pb_strdup(p->entry_id);
                if (!res->entry_id)
                        return -ENOMEM;
                e = view_find(&set, p->entry_id);
                if (!e) {
                        log_info("node API: refused an X.509-SVID: entry not authorized "
                                 "entry_id=%s agent_id=%s status=PERMISSION_DENIED",
                                 loggable_id(p->entry_id), j->agent_id);
                        r = node_sign_result_fail(res, -EPERM, NOT_AUTHORIZED);
                } else
                        r = x509_item_init(n, it, e);
                if (r < 0)
                        return r;
        }
        return node_sign_submit(n, &j, reterr_message);
}

static int check_audiences(const Warden__Node__V1__NewJWTSVIDRequest *req) {
        if (req->n_audience == 0 || req->n_audience > WARDEN_JWT_AUDIENCES_MAX)
                return -EINVAL;
        for (size_t i = 0; i < req->n_audience; i++) {
                const char *a = req->audience[i];

                if (warden_jwt_audience_check(a, strnlen(a, WARDEN_JWT_AUDIENCE_MAX + 1), NULL) < 0)
                        return -EINVAL;
        }
        return 0;
}

int node_new_jwt_svid(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(node_sign_job_freep) NodeSignJob *j = NULL;
        _cleanup_(authz_view_done) AuthzView set = {};
        const Entry *e;
        int r;

        r = load_authz(n, c, &set, reterr_message);
        if (r < 0)
                return r;
        r = node_sign_job_new(NODE_SIGN_JWT, &j);
        if (r < 0)
                return r;
        j->now = time(NULL);
        r = rpc_message_unpack(c, &warden__node__v1__new_jwtsvidrequest__descriptor,
                               (ProtobufCMessage **) &j->jwt.req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        if (check_audiences(j->jwt.req) < 0) {
                *reterr_message = "1 to 32 audiences of 1 to 256 bytes of UTF-8 are required";
                return -EINVAL;
        }
        e = view_find(&set, j->jwt.req->entry_id);
        if (!e) {
                log_info("node API: refused a JWT-SVID: entry not authorized entry_id=%s "
                         "agent_id=%s status=PERMISSION_DENIED",
                         loggable_id(j->jwt.req->entry_id), rpc_call_peer(c)->spiffe_id);
                *reterr_message = NOT_AUTHORIZED;
                return -EPERM;
        }
        r = job_init(n, c, j);
        if (r < 0)
                return r;
        j->jwt.spiffe_id = strdup(e->spiffe_id);
        j->jwt.entry_id = strdup(e->id);
        if (!j->jwt.spiffe_id || !j->jwt.entry_id)
                return -ENOMEM;
        j->jwt.ttl = server_jwt_ttl(n->server, e->jwt_svid_ttl);
        return node_sign_submit(n, &j, reterr_message);
}
