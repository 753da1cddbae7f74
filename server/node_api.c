/* SPDX-License-Identifier: Apache-2.0 */
/* Node API: method table and dispatch, per-call agent authentication, and helpers
 * shared by the handlers in node_attest.c, node_sync.c and node_svid.c. */
#define _GNU_SOURCE

#include "node_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "node_api_internal.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "rpc_status.h"

static const NodeMethod node_methods[] = {
        {"X509PopChallenge", RPC_UNARY, node_x509pop_challenge},
        {"AttestAgent", RPC_UNARY, node_attest_agent},
        {"RenewAgent", RPC_UNARY, node_renew_agent},
        {"Sync", RPC_SERVER_STREAM, node_sync},
        {"BatchNewX509SVID", RPC_UNARY, node_batch_new_x509_svid},
        {"NewJWTSVID", RPC_UNARY, node_new_jwt_svid},
};

_Static_assert(ELEMENTSOF(node_methods) <= NODE_METHODS_MAX, "NODE_METHODS_MAX too small");

int node_api_new(Server *s, NodeApi **ret) {
        _cleanup_(node_api_freep) NodeApi *n = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        n = calloc(1, sizeof(NodeApi));
        if (!n)
                return -ENOMEM;
        n->server = s;
        n->max_entries = s->cfg.max_entries_per_agent;
        r = node_api_set_x509pop_ca(n, s->cfg.x509pop_ca);
        if (r < 0)
                return r;
        /* Bursts of 2 s worth: an x509pop attestation takes two attempts. */
        if (s->cfg.attest_rate_per_source > 0) {
                r = rpc_source_table_new(0, s->cfg.attest_rate_per_source,
                                         2.0 * s->cfg.attest_rate_per_source, &n->attest_rate);
                if (r < 0)
                        return r;
        }
        if (s->cfg.signing_threads > 0) {
                r = sign_pool_new(s->cfg.signing_threads, &n->sign_pool);
                if (r < 0)
                        return log_error_errno(r, "Failed to start %u signing threads: %m",
                                               s->cfg.signing_threads);
                log_debug("Signing SVIDs on %u threads", s->cfg.signing_threads);
        }
        *ret = TAKE_PTR(n);
        return 0;
}

void node_api_stop_signing(NodeApi *n) {
        if (n)
                sign_pool_stop(n->sign_pool);
}

int node_api_set_x509pop_ca(NodeApi *n, const char *path) {
        STACK_OF(X509) *roots = NULL;
        int r;

        if (!n)
                return -EINVAL;
        if (path) {
                r = warden_x509_read_pem_file(path, &roots);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the x509pop CA file %s: %m",
                                               path);
                log_info("x509pop node attestation enabled with %d CA certificate(s) from %s",
                         sk_X509_num(roots), path);
        } else if (n->x509pop_roots)
                log_info("x509pop node attestation disabled");
        if (n->x509pop_roots)
                sk_X509_pop_free(n->x509pop_roots, X509_free);
        n->x509pop_roots = roots;
        return 0;
}

NodeApi *node_api_free(NodeApi *n) {
        if (!n)
                return NULL;
        n->sign_pool = sign_pool_free(n->sign_pool);
        node_sync_free_all(n);
        node_serial_free_all(n);
        if (n->x509pop_roots)
                sk_X509_pop_free(n->x509pop_roots, X509_free);
        if (n->nonces)
                explicit_erase(n->nonces, NODE_NONCES_MAX * sizeof(NodeNonce));
        free(n->nonces);
        rpc_source_table_free(n->attest_rate);
        free(n);
        return NULL;
}

static void node_dispatch(RpcCall *c, void *userdata) {
        NodeBinding *b = userdata;
        const char *msg = NULL;
        int r;

        r = b->method->handler(b->node, c, &msg);
        if (r >= 0)
                return;
        if (!msg) {
                if (errno_to_grpc_status(r) == GRPC_STATUS_INTERNAL)
                        log_error_errno(r, "Node API %s failed: %m", b->method->name);
                msg = errno_to_grpc_status(r) == GRPC_STATUS_INTERNAL ? "internal error"
                                                                      : "request refused";
        }
        r = rpc_call_finish(c, errno_to_grpc_status(r), msg);
        if (r < 0 && r != -ENOTCONN && r != -EALREADY)
                log_warning_errno(r, "Failed to end a node API call, ignoring: %m");
}

int node_api_register(NodeApi *n, RpcServer *rpc) {
        int r;

        if (!n || !rpc)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(node_methods); i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, NODE_SERVICE "%s", node_methods[i].name) < 0)
                        return -ENOMEM;
                n->bindings[i] = (NodeBinding){.node = n, .method = &node_methods[i]};
                r = rpc_server_add_method(rpc, path, node_methods[i].kind, node_dispatch,
                                          &n->bindings[i], 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

int node_authenticate(NodeApi *n, RpcCall *c, AttestedAgent **ret) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        const RpcPeer *p = rpc_call_peer(c);
        const char *method = rpc_call_method(c);
        int r;

        if (!p->spiffe_id) {
                log_info("node API: refused %s: no client certificate status=PERMISSION_DENIED",
                         method);
                return -EPERM;
        }
        if (!warden_spiffeid_member_of(p->spiffe_id, n->server->cfg.trust_domain)) {
                log_info("node API: refused %s: foreign trust domain agent_id=%s "
                         "status=PERMISSION_DENIED",
                         method, p->spiffe_id);
                return -EPERM;
        }
        r = ds_get_agent(n->server->ds, p->spiffe_id, &a);
        if (r == -ENOENT) {
                log_info("node API: refused %s: not an attested agent agent_id=%s "
                         "status=PERMISSION_DENIED",
                         method, p->spiffe_id);
                return -EPERM;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to look up agent %s: %m", p->spiffe_id);
        if (a->banned) {
                log_info("node API: refused %s: agent is banned agent_id=%s "
                         "status=PERMISSION_DENIED",
                         method, p->spiffe_id);
                return -EPERM;
        }
        if (node_serial_check(n, a, p->cert_serial, time(NULL)) < 0) {
                log_info("node API: refused %s: not the agent's current node SVID agent_id=%s "
                         "serial=%s status=PERMISSION_DENIED",
                         method, p->spiffe_id, strna(p->cert_serial));
                return -EPERM;
        }
        r = ds_touch_agent(n->server->ds, p->spiffe_id, time(NULL));
        if (r < 0)
                log_warning_errno(r, "Failed to update last-seen of %s, ignoring: %m",
                                  p->spiffe_id);
        if (ret)
                *ret = TAKE_PTR(a);
        return 0;
}

int node_chain_to_pb(STACK_OF(X509) * chain, ProtobufCBinaryData **ret, size_t *ret_n) {
        ProtobufCBinaryData *v;
        int n = sk_X509_num(chain);
        int r;

        if (n <= 0)
                return -EINVAL;
        v = calloc(n, sizeof(ProtobufCBinaryData));
        if (!v)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                r = warden_x509_to_der(sk_X509_value(chain, i), &v[i].data, &v[i].len);
                if (r < 0) {
                        for (int j = 0; j < i; j++)
                                free(v[j].data);
                        free(v);
                        return r;
                }
        }
        *ret = v;
        *ret_n = (size_t) n;
        return 0;
}

int node_csr_public_key(const ProtobufCBinaryData *csr,
                        EVP_PKEY **ret,
                        const char **reterr_message) {
        const char *reason = NULL;
        int r;

        if (csr->len == 0) {
                *reterr_message = "missing CSR";
                return -EINVAL;
        }
        r = warden_csr_parse_public_key(csr->data, csr->len, ret, &reason);
        if (r < 0) {
                log_debug("Refused a CSR: %s", strna(reason));
                *reterr_message = "invalid CSR";
                return r == -ENOMEM ? r : -EINVAL;
        }
        return 0;
}

int node_sign_svid(NodeApi *n,
                   const char *kind,
                   EVP_PKEY *pub,
                   const char *spiffe_id,
                   const char *const *dns_names,
                   size_t n_dns_names,
                   int64_t ttl,
                   int64_t now,
                   STACK_OF(X509) * *ret_chain,
                   const char **reterr_message) {
        int r;

        r = server_sign_x509_svid(n->server, kind, pub, spiffe_id, dns_names, n_dns_names, ttl,
                                  (time_t) now, ret_chain);
        if (r < 0) {
                /* Whatever the CA's reason, it is ours, not the caller's. */
                log_error_errno(r, "Failed to sign an X.509-SVID for %s: %m", spiffe_id);
                *reterr_message = "signing failed";
                return r == -ENOMEM ? r : -EIO;
        }
        return 0;
}
