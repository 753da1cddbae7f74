/* SPDX-License-Identifier: Apache-2.0 */
/* Running node API signing jobs (node_sign_job.h), on a signing thread or on the main
 * thread: CSR checks, signatures, metrics, packing and the answer. Nothing here
 * touches the datastore, the Ca or the NodeApi. */
#define _GNU_SOURCE

#include "node_sign_job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "parse.h"
#include "pb_util.h"
#include "rpc_status.h"
#include "strv.h"

static void job_run(SignJob *b);
static void job_cancel(SignJob *b);

int node_sign_job_new(NodeSignKind kind, NodeSignJob **ret) {
        NodeSignJob *j = calloc(1, sizeof(NodeSignJob));

        if (!j)
                return -ENOMEM;
        j->kind = kind;
        j->base.run = job_run;
        j->base.cancel = job_cancel;
        *ret = j;
        return 0;
}

NodeSignJob *node_sign_job_free(NodeSignJob *j) {
        if (!j)
                return NULL;
        if (j->kind == NODE_SIGN_X509) {
                for (size_t i = 0; i < j->x509.n_items; i++) {
                        NodeX509Item *it = &j->x509.items[i];

                        free(it->spiffe_id);
                        free(it->entry_id);
                        strv_free(it->dns_names, it->n_dns_names);
                }
                free(j->x509.items);
                pb_free(j->x509.req);
                pb_free(j->x509.resp);
        } else {
                pb_free(j->jwt.req);
                free(j->jwt.spiffe_id);
                free(j->jwt.entry_id);
        }
        free(j->agent_id);
        ca_signer_unref(j->signer);
        rpc_call_unref(j->call);
        free(j);
        return NULL;
}

int node_sign_result_fail(Warden__Node__V1__X509SVIDResult *res, int r, const char *message) {
        res->status = errno_to_grpc_status(r);
        res->message = strdup(message);
        return res->message ? 0 : -ENOMEM;
}

static void job_count(NodeSignJob *j, const char *kind, double t0) {
        (void) metrics_histogram_observe_since(j->signing_seconds, METRICS_LABELS(kind), t0);
        (void) metrics_counter_inc(j->signings, METRICS_LABELS(kind));
}

/* The leaf's DER, then copies of the signer's cached chain DER. */
static int chain_to_pb(const CaSigner *s, X509 *leaf, Warden__Node__V1__X509SVIDResult *res) {
        const CaDer *rest;
        size_t n_rest = ca_signer_chain_der(s, &rest);
        ProtobufCBinaryData *v;
        int r;

        v = calloc(1 + n_rest, sizeof(ProtobufCBinaryData));
        if (!v)
                return -ENOMEM;
        res->svid_chain = v;
        r = warden_x509_to_der(leaf, &v[0].data, &v[0].len);
        if (r < 0)
                return r;
        res->n_svid_chain = 1;
        for (size_t i = 0; i < n_rest; i++) {
                v[i + 1].data = malloc(rest[i].len);
                if (!v[i + 1].data)
                        return -ENOMEM;
                memcpy(v[i + 1].data, rest[i].data, rest[i].len);
                v[i + 1].len = rest[i].len;
                res->n_svid_chain++;
        }
        return 0;
}

/* Signs one CSR into its result; refusals go into the result, only internal failures
 * that stop the batch (out of memory) are returned. */
static int x509_sign_item(NodeSignJob *j, NodeX509Item *it) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        const char *msg = NULL;
        double t0;
        int r;

        r = node_csr_public_key(it->csr, &pub, &msg);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return node_sign_result_fail(it->res, r, msg ? msg : "invalid CSR");
        t0 = metrics_now();
        r = ca_signer_sign_x509_svid(j->signer, pub, it->spiffe_id,
                                     (const char *const *) it->dns_names, it->n_dns_names, it->ttl,
                                     (time_t) j->now, &leaf);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* Whatever the CA's reason, it is ours, not the caller's. */
                log_error_errno(r, "Failed to sign an X.509-SVID for %s: %m", it->spiffe_id);
                return node_sign_result_fail(it->res, -EIO, "signing failed");
        }
        job_count(j, METRICS_KIND_X509_SVID, t0);
        r = chain_to_pb(j->signer, leaf, it->res);
        if (r < 0)
                return r;
        it->res->expires_at = warden_x509_not_after(leaf);
        if (log_get_max_level() >= LOG_DEBUG) {
                _cleanup_free_ char *serial = NULL;

                if (warden_x509_serial_hex(leaf, &serial) >= 0)
                        log_debug("Signed an X.509-SVID for %s (entry %s, agent %s), serial %s",
                                  it->spiffe_id, it->entry_id, j->agent_id, serial);
        }
        return 0;
}

static int x509_run(NodeSignJob *j) {
        int r;

        for (size_t i = 0; i < j->x509.n_items; i++) {
                if (!j->x509.items[i].spiffe_id)
                        continue;
                r = x509_sign_item(j, &j->x509.items[i]);
                if (r < 0)
                        return r;
        }
        return rpc_message_reply(j->call, &j->x509.resp->base, 0);
}

static int jwt_run(NodeSignJob *j) {
        Warden__Node__V1__NewJWTSVIDResponse resp = WARDEN__NODE__V1__NEW_JWTSVIDRESPONSE__INIT;
        _cleanup_erase_ char *token = NULL;
        char t[TIMESTAMP_STRING_MAX];
        int64_t expires_at = 0;
        double t0 = metrics_now();
        int r;

        r = ca_signer_mint_jwt_svid(
                j->signer, j->jwt.spiffe_id, (const char *const *) j->jwt.req->audience,
                j->jwt.req->n_audience, j->jwt.ttl, (time_t) j->now, &token, &expires_at);
        if (r < 0) {
                log_error_errno(r, "Failed to mint a JWT-SVID for %s: %m", j->jwt.spiffe_id);
                (void) rpc_call_finish(j->call, errno_to_grpc_status(r == -ENOMEM ? r : -EIO),
                                       "signing failed");
                return 0;
        }
        job_count(j, METRICS_KIND_JWT_SVID, t0);
        resp.token = token;
        resp.expires_at = expires_at;
        resp.issued_at = j->now;
        log_debug("Minted a JWT-SVID for %s (entry %s, agent %s), expires %s", j->jwt.spiffe_id,
                  j->jwt.entry_id, j->agent_id, format_timestamp(expires_at, t, sizeof(t)));
        return rpc_message_reply(j->call, &resp.base, RPC_MESSAGE_ERASE);
}

static void job_run(SignJob *b) {
        _cleanup_(node_sign_job_freep) NodeSignJob *j = (NodeSignJob *) b;
        int r;

        /* Cancelled, past its deadline or disconnected while it waited: nobody to
         * answer, so nothing to sign. */
        if (rpc_call_is_closed(j->call)) {
                log_debug("node API: a signing call from %s ended before it was signed",
                          j->agent_id);
                return;
        }
        r = j->kind == NODE_SIGN_X509 ? x509_run(j) : jwt_run(j);
        if (r >= 0 || r == -ENOTCONN)
                return;
        log_error_errno(r, "Failed to answer a signing call from %s: %m", j->agent_id);
        r = rpc_call_finish(j->call, GRPC_STATUS_INTERNAL, "internal error");
        if (r < 0 && r != -ENOTCONN && r != -EALREADY)
                log_warning_errno(r, "Failed to end a node API call, ignoring: %m");
}

static void job_cancel(SignJob *b) {
        _cleanup_(node_sign_job_freep) NodeSignJob *j = (NodeSignJob *) b;

        (void) rpc_call_finish(j->call, GRPC_STATUS_UNAVAILABLE, "server shutting down");
}

int node_sign_submit(NodeApi *n, NodeSignJob **j, const char **reterr_message) {
        NodeSignJob *job = *j;
        int r;

        if (!n->sign_pool) {
                *j = NULL;
                job_run(&job->base);
                return 0;
        }
        r = sign_pool_submit(n->sign_pool, &job->base);
        if (r == -EBUSY) {
                log_warning("node API: signing queue full, refused a call from %s", job->agent_id);
                *reterr_message = "signing queue full, try again later";
                return -EDQUOT;
        }
        if (r == -ESHUTDOWN)
                *reterr_message = "server shutting down";
        if (r < 0)
                return r;
        *j = NULL;
        return 0;
}
