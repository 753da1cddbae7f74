/* SPDX-License-Identifier: Apache-2.0 */
/* ValidateJWTSVID: checks a token against the bundles the caller can see (our trust
 * domain plus the federated ones of its entries; no identity needed). Every failure is
 * INVALID_ARGUMENT with one generic message; the reason goes to the debug log with a
 * hash prefix of the token, never the token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <warden/jwtsvid.h>

#include "log.h"
#include "spiffe/workload/workload.pb-c.h"
#include "workload_api_internal.h"

/* First 12 hex digits of the token's SHA-256, for logs. */
static void token_tag(const char *token, char ret[static 13]) {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        strcpy(ret, "?");
        if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 || n < 6)
                return;
        for (size_t i = 0; i < 6; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
}

/* Bundles visible to the caller, borrowed from the view's snapshot. */
static int caller_bundles(const WapiView *v,
                          const SelectorSet *have,
                          const WardenBundle ***ret,
                          size_t *ret_n) {
        _cleanup_free_ bool *sel = calloc(v->n_tds, sizeof(*sel));
        const WardenBundle **b;
        size_t n = 0;

        b = calloc(v->n_tds, sizeof(*b));
        if (!sel || !b) {
                free(b);
                return -ENOMEM;
        }
        (void) wapi_view_caller_tds(v, have, sel);
        for (size_t k = 0; k < v->n_tds; k++) {
                const WardenBundle *x;

                if (!sel[k])
                        continue;
                x = k == 0 ? v->snap->bundle : agent_snapshot_federated(v->snap, v->tds[k].td);
                if (x)
                        b[n++] = x;
        }
        *ret = b;
        *ret_n = n;
        return 0;
}

/* The claims to return: all of them for our own trust domain; for a federated one only
 * sub, aud and exp (as SPIRE without allowed_foreign_jwt_claims). aud is always a
 * list. A new reference. */
static json_t *claims_out(const WardenJwtClaims *claims, const char *own_td) {
        json_t *out, *aud;

        if (streq(claims->trust_domain, own_td))
                out = json_copy(claims->all);
        else {
                out = json_object();
                if (out && (json_object_set(out, "sub", json_object_get(claims->all, "sub")) < 0 ||
                            json_object_set(out, "exp", json_object_get(claims->all, "exp")) < 0)) {
                        json_decref(out);
                        return NULL;
                }
        }
        aud = json_array();
        for (size_t i = 0; aud && i < claims->n_aud; i++)
                if (json_array_append_new(aud, json_string(claims->aud[i])) < 0) {
                        json_decref(aud);
                        aud = NULL;
                }
        if (!out || !aud || json_object_set_new(out, "aud", aud) < 0) {
                json_decref(out);
                return NULL;
        }
        return out;
}

static int validate_reply(WapiCall *call, const WardenJwtClaims *claims, const char *own_td) {
        ValidateJWTSVIDResponse resp = VALIDATE_JWTSVIDRESPONSE__INIT;
        _cleanup_(json_decrefp) json_t *out = NULL;
        Google__Protobuf__Struct *st = NULL;
        int r;

        out = claims_out(claims, own_td);
        if (!out)
                return -ENOMEM;
        r = wapi_struct_from_json(out, &st);
        if (r < 0)
                return r;
        resp.spiffe_id = claims->spiffe_id;
        resp.claims = st;
        r = wapi_reply(call, &resp.base, 0);
        protobuf_c_message_free_unpacked(&st->base, NULL);
        return r;
}

static void validate(WapiCall *call, const WapiView *v, const ValidateJWTSVIDRequest *pb) {
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *claims = NULL;
        _cleanup_free_ const WardenBundle **bundles = NULL;
        WardenJwtError err = WARDEN_JWT_OK;
        char tag[13];
        size_t n;
        int r;

        r = caller_bundles(v, call->selectors, &bundles, &n);
        if (r < 0) {
                wapi_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        r = warden_jwtsvid_validate(pb->svid, pb->audience, bundles, n, &call->api->jwt_times,
                                    &claims, &err);
        if (r < 0) {
                token_tag(pb->svid, tag);
                log_debug_errno(r, "workload api: JWT-SVID %s rejected: %s", tag,
                                warden_jwt_error_to_string(err));
                wapi_finish(call, GRPC_STATUS_INVALID_ARGUMENT, WAPI_MSG_INVALID_JWT);
                return;
        }
        r = validate_reply(call, claims, v->tds[0].td);
        if (r < 0) {
                log_debug_errno(r, "workload api: ValidateJWTSVID reply failed: %m");
                wapi_finish(call, GRPC_STATUS_INTERNAL, "internal error");
        }
}

void wapi_validate_jwt_svid(WapiCall *call, const WapiView *v, ProtobufCMessage *req) {
        ValidateJWTSVIDRequest *pb = (ValidateJWTSVIDRequest *) req;
        const char *why = NULL;

        if (warden_jwt_audience_check(pb->audience, strlen(pb->audience), &why) < 0)
                wapi_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
                            pb->audience[0] ? why : "audience must be specified");
        else if (!pb->svid[0])
                wapi_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "svid must be specified");
        else
                validate(call, v, pb);
        /* The token is a credential: wipe it. */
        explicit_erase(pb->svid, strlen(pb->svid));
        protobuf_c_message_free_unpacked(&pb->base, NULL);
}
