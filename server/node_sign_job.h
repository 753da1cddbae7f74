/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Signing jobs of the node API (node_svid.c builds them on the main thread,
 * node_sign_job.c runs them): everything a BatchNewX509SVID or NewJWTSVID answer still
 * needs once the caller is authorized, owned by the job, so that it can run on any
 * thread. A job holds a reference on its call and on the CaSigner it signs with: CA
 * rotation meanwhile does not change what it signs with. */

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "metrics.h"
#include "node_api_internal.h"
#include "sign_pool.h"

typedef enum NodeSignKind {
        NODE_SIGN_X509,
        NODE_SIGN_JWT,
} NodeSignKind;

/* One CSR of a batch. spiffe_id NULL: refused on the main thread (res is filled). */
typedef struct NodeX509Item {
        Warden__Node__V1__X509SVIDResult *res; /* in the job's response */
        const ProtobufCBinaryData *csr;        /* in the job's request */
        char *spiffe_id;
        char *entry_id;
        char **dns_names;
        size_t n_dns_names;
        int64_t ttl;
} NodeX509Item;

typedef struct NodeSignJob {
        SignJob base; /* first */
        NodeSignKind kind;
        RpcCall *call;    /* a reference */
        CaSigner *signer; /* a reference */
        char *agent_id;   /* for the log */
        int64_t now;      /* when the call was authorized */
        Metric *signing_seconds, *signings;
        union {
                struct {
                        Warden__Node__V1__BatchNewX509SVIDRequest *req;
                        Warden__Node__V1__BatchNewX509SVIDResponse *resp;
                        NodeX509Item *items; /* one per request param */
                        size_t n_items;
                } x509;
                struct {
                        Warden__Node__V1__NewJWTSVIDRequest *req; /* audiences */
                        char *spiffe_id;
                        char *entry_id;
                        int64_t ttl;
                } jwt;
        };
} NodeSignJob;

int node_sign_job_new(NodeSignKind kind, NodeSignJob **ret);
NodeSignJob *node_sign_job_free(NodeSignJob *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeSignJob *, node_sign_job_free)

/* A refusal in one X.509 result (status and a copy of message); -ENOMEM or 0. */
int node_sign_result_fail(Warden__Node__V1__X509SVIDResult *res, int r, const char *message);

/* Hands *j to the signing pool, or runs it here without one; either way *j becomes
 * NULL and the job answers the call. When the pool refuses it (-EDQUOT: queue full,
 * -ESHUTDOWN: stopping; *reterr_message set) *j stays the caller's. */
int node_sign_submit(NodeApi *n, NodeSignJob **j, const char **reterr_message);
