/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: join tokens and attested agents (list, show, evict, ban). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include <warden/spiffeid.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "parse.h"
#include "pb_util.h"
#include "strv.h"

#define JOIN_TOKEN_DEFAULT_TTL 600

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

/* A random UUID (version 4) string: 122 bits from the OpenSSL DRBG. */
static int join_token_generate(char ret[static 37]) {
        uint8_t b[16];

        if (RAND_bytes(b, sizeof(b)) != 1)
                return ossl_to_errno(-EIO);
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
        explicit_erase(b, sizeof(b));
        return 0;
}

int admin_create_join_token(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__CreateJoinTokenRequest *req = NULL;
        Warden__Admin__V1__CreateJoinTokenResponse resp =
                WARDEN__ADMIN__V1__CREATE_JOIN_TOKEN_RESPONSE__INIT;
        const char *reason = NULL, *alias = NULL;
        char token[37];
        int64_t ttl, expires_at;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__create_join_token_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        ttl = req->ttl == 0 ? JOIN_TOKEN_DEFAULT_TTL : req->ttl;
        if (ttl < 0 || ttl > ENTRY_TTL_MAX)
                return admin_fail(-EINVAL, err, n, "invalid token TTL %lld (1s..1 year)",
                                  (long long) ttl);
        if (*req->alias_spiffe_id) {
                alias = req->alias_spiffe_id;
                if (warden_spiffeid_validate_workload(alias, &reason) < 0)
                        return admin_fail(-EINVAL, err, n, "invalid alias SPIFFE ID \"%s\": %s",
                                          alias, reason);
                if (!warden_spiffeid_member_of(alias, s->cfg.trust_domain))
                        return admin_fail(-EINVAL, err, n,
                                          "alias SPIFFE ID is not in the server's trust domain "
                                          "(%s)",
                                          s->cfg.trust_domain);
        }
        r = join_token_generate(token);
        if (r < 0)
                return r;
        expires_at = (int64_t) time(NULL) + ttl;
        r = ds_create_join_token(s->ds, token, expires_at, alias);
        if (r >= 0) {
                log_info("admin: join token created ttl=%lld alias=%s uid=%u", (long long) ttl,
                         alias ? alias : "-", (unsigned) who->uid);
                resp.token = token;
                resp.expires_at = expires_at;
                r = rpc_message_reply(c, &resp.base, RPC_MESSAGE_ERASE);
        }
        explicit_erase(token, sizeof(token));
        return r;
}

int admin_count_agents(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__ListAgentsRequest *req = NULL;
        Warden__Admin__V1__CountAgentsResponse resp =
                WARDEN__ADMIN__V1__COUNT_AGENTS_RESPONSE__INIT;
        _cleanup_(admin_agent_query_done) AgentQuery q = {};
        AdminPageSource src;
        int64_t count;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__list_agents_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = admin_agent_query_init(req, &q, err, n);
        if (r < 0)
                return r;
        admin_agent_page_source(s, &q, &src);
        r = admin_page_count(&src, &count);
        if (r < 0)
                return r;
        resp.count = count;
        return rpc_message_reply(c, &resp.base, 0);
}

int admin_list_agents(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__ListAgentsRequest *req = NULL;
        Warden__Admin__V1__ListAgentsResponse resp = WARDEN__ADMIN__V1__LIST_AGENTS_RESPONSE__INIT;
        _cleanup_(admin_agent_query_done) AgentQuery q = {};
        _cleanup_(admin_page_done) AdminPage page = {};
        _cleanup_(admin_pb_list_done) AdminPbList l = {};
        _cleanup_free_ char *next = NULL;
        AdminPageSource src;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__list_agents_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = admin_agent_query_init(req, &q, err, n);
        if (r >= 0)
                r = admin_page_init(ADMIN_PAGE_AGENTS, req->page_size, req->page_token, &page, err,
                                    n);
        if (r < 0)
                return r;
        admin_agent_page_source(s, &q, &src);
        r = admin_page_collect(&src, &page, &l, &next);
        if (r < 0)
                return r;
        resp.agents = (Warden__Types__V1__AttestedAgent **) l.v;
        resp.n_agents = l.n;
        resp.next_page_token = next ? next : (char *) "";
        r = rpc_message_reply(c, &resp.base, 0);
        if (r == -EMSGSIZE)
                (void) admin_fail(r, err, n,
                                  "too many agents (%zu) for one answer; ask for pages "
                                  "(page_size) or narrow the filter",
                                  l.n);
        return r;
}

static int check_agent_id(const char *id, char *err, size_t n) {
        const char *reason = NULL;

        if (!*id)
                return admin_fail(-EINVAL, err, n, "missing agent SPIFFE ID");
        if (warden_spiffeid_validate(id, &reason) < 0)
                return admin_fail(-EINVAL, err, n, "invalid agent SPIFFE ID \"%s\": %s", id,
                                  reason);
        return 0;
}

static int no_agent(const char *id, char *err, size_t n) {
        return admin_fail(-ENOENT, err, n, "no attested agent with SPIFFE ID %s", id);
}

int admin_get_agent(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__GetAgentRequest *req = NULL;
        _cleanup_(pb_freep) Warden__Types__V1__AttestedAgent *pb = NULL;
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__get_agent_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_agent_id(req->spiffe_id, err, n);
        if (r < 0)
                return r;
        r = ds_get_agent(s->ds, req->spiffe_id, &a);
        if (r == -ENOENT)
                return no_agent(req->spiffe_id, err, n);
        if (r >= 0)
                r = attested_agent_to_pb(a, &pb);
        if (r < 0)
                return r;
        return rpc_message_reply(c, &pb->base, 0);
}

/* Evict (ban = false) deletes the agent; ban sets its banned flag. Either way its
 * open streams end and its next call is refused. */
static int agent_action(
        Server *s, RpcCall *c, const AdminCaller *who, bool ban, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__AgentIDRequest *req = NULL;
        Warden__Admin__V1__AgentActionResponse resp =
                WARDEN__ADMIN__V1__AGENT_ACTION_RESPONSE__INIT;
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__agent_idrequest__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_agent_id(req->spiffe_id, err, n);
        if (r < 0)
                return r;
        (void) ds_get_agent(s->ds, req->spiffe_id, &a); /* only for the log line */
        r = ban ? ds_set_agent_banned(s->ds, req->spiffe_id, true)
                : ds_delete_agent(s->ds, req->spiffe_id);
        if (r == -ENOENT)
                return no_agent(req->spiffe_id, err, n);
        if (r < 0)
                return r;
        log_info("admin: agent %s agent_id=%s method=%s uid=%u", ban ? "banned" : "evicted",
                 req->spiffe_id, a ? strna(a->attestation_type) : "-", (unsigned) who->uid);
        server_agent_changed(s, req->spiffe_id);
        return rpc_message_reply(c, &resp.base, 0);
}

int admin_evict_agent(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        return agent_action(s, c, who, false, err, n);
}

int admin_ban_agent(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        return agent_action(s, c, who, true, err, n);
}

typedef struct StrList {
        char **v;
        size_t n;
} StrList;

static void str_list_done(StrList *l) {
        strv_free(l->v, l->n);
}

/* Forgets one expired agent (not with dry_run); ids go to *purged. */
static int purge_one(Server *s, const AttestedAgent *a, bool dry_run, const AdminCaller *who) {
        char t[TIMESTAMP_STRING_MAX];
        int r;

        if (dry_run)
                return 0;
        r = ds_delete_agent(s->ds, a->spiffe_id);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        log_info("admin: agent purged agent_id=%s expired=%s uid=%u", a->spiffe_id,
                 format_timestamp(a->svid_expires_at, t, sizeof(t)), (unsigned) who->uid);
        server_agent_changed(s, a->spiffe_id);
        return 0;
}

int admin_purge_agents(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__PurgeAgentsRequest *req = NULL;
        Warden__Admin__V1__PurgeAgentsResponse resp =
                WARDEN__ADMIN__V1__PURGE_AGENTS_RESPONSE__INIT;
        _cleanup_(str_list_done) StrList purged = {}, banned = {};
        AttestedAgent **agents = NULL;
        size_t count = 0;
        int64_t now = (int64_t) time(NULL);
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__purge_agents_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        if (req->expired_for < 0 || req->expired_for > now)
                return admin_fail(-EINVAL, err, n, "expired_for out of range");
        r = ds_list_agents(s->ds, &agents, &count);
        for (size_t i = 0; i < count && r >= 0; i++) {
                const AttestedAgent *a = agents[i];
                if (a->svid_expires_at <= 0 || a->svid_expires_at > now - req->expired_for)
                        continue;
                if (a->banned)
                        r = strv_push(&banned.v, &banned.n, a->spiffe_id);
                else if ((r = purge_one(s, a, req->dry_run, who)) >= 0)
                        r = strv_push(&purged.v, &purged.n, a->spiffe_id);
        }
        attested_agent_array_free(agents, count);
        if (r < 0)
                return r;
        resp.purged = purged.v;
        resp.n_purged = purged.n;
        resp.kept_banned = banned.v;
        resp.n_kept_banned = banned.n;
        return rpc_message_reply(c, &resp.base, 0);
}
