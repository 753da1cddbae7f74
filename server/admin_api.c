/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: method table, caller authorization (SO_PEERCRED uid), request
 * unpacking, error mapping, and Health. The handlers live in admin_api_*.c. */
#define _GNU_SOURCE

#include "admin_api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "log.h"
#include "pb_util.h"
#include "rpc_status.h"

static int admin_health(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
static int admin_get_logger(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
static int admin_set_logger(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

typedef struct AdminMethod {
        const char *name;
        AdminHandler handler;
} AdminMethod;

static const AdminMethod admin_methods[] = {
        {"Health", admin_health},
        {"BatchCreateEntry", admin_batch_create_entry},
        {"GetEntry", admin_get_entry},
        {"ListEntries", admin_list_entries},
        {"UpdateEntry", admin_update_entry},
        {"DeleteEntry", admin_delete_entry},
        {"CountEntries", admin_count_entries},
        {"CreateJoinToken", admin_create_join_token},
        {"ListAgents", admin_list_agents},
        {"GetAgent", admin_get_agent},
        {"EvictAgent", admin_evict_agent},
        {"BanAgent", admin_ban_agent},
        {"GetBundle", admin_get_bundle},
        {"MintX509SVID", admin_mint_x509_svid},
        {"MintJWTSVID", admin_mint_jwt_svid},
        {"CountAgents", admin_count_agents},
        {"PurgeAgents", admin_purge_agents},
        {"GetLogger", admin_get_logger},
        {"SetLogger", admin_set_logger},
        {"ListAuditRecords", admin_list_audit_records},
        {"VerifyAudit", admin_verify_audit},
};

int admin_fail(int r, char *err, size_t n, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(err, n, fmt, ap);
        va_end(ap);
        return r;
}

static bool admin_uid_allowed(const Server *s, uid_t uid) {
        if (uid == 0 || uid == s->own_uid)
                return true;
        for (size_t i = 0; i < s->cfg.n_admin_uids; i++)
                if (s->cfg.admin_uids[i] == uid)
                        return true;
        return false;
}

/* Serving means answering here and (unless shallow) being able to read the datastore. */
static int admin_health(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__HealthRequest *req = NULL;
        Warden__Admin__V1__HealthResponse resp = WARDEN__ADMIN__V1__HEALTH_RESPONSE__INIT;
        AttestedAgent **agents = NULL;
        size_t n_agents = 0;
        int64_t count;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__health_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        if (!req->shallow) {
                r = ds_count_entries(s->ds, &count);
                if (r >= 0)
                        r = ds_list_agents(s->ds, &agents, &n_agents);
                if (r < 0)
                        return admin_fail(-EAGAIN, err, n, "the datastore is not usable: %s",
                                          strerror(-r));
                attested_agent_array_free(agents, n_agents);
                resp.datastore_checked = true;
                resp.entries = count;
                resp.agents = (int64_t) n_agents;
        }
        resp.trust_domain = s->cfg.trust_domain;
        resp.started_at = s->started_at;
        resp.version = (char *) WARDEN_SERVER_VERSION;
        return rpc_message_reply(c, &resp.base, 0);
}

static int reply_logger(Server *s, RpcCall *c) {
        Warden__Admin__V1__Logger resp = WARDEN__ADMIN__V1__LOGGER__INIT;

        resp.current_level = (char *) log_level_to_string(log_get_max_level());
        resp.launch_level = (char *) log_level_to_string(s->launch_log_level);
        return rpc_message_reply(c, &resp.base, 0);
}

static int admin_get_logger(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        return reply_logger(s, c);
}

/* Changes the level at once (until the next SIGHUP re-reads -logLevel). */
static int admin_set_logger(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__SetLoggerRequest *req = NULL;
        int r, level, old = log_get_max_level();

        r = rpc_message_unpack(c, &warden__admin__v1__set_logger_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        level = *req->level ? log_level_from_string(req->level) : s->launch_log_level;
        if (level < 0)
                return admin_fail(-EINVAL, err, n,
                                  "unknown log level \"%s\" (use error, warning, info or debug)",
                                  req->level);
        /* Logged at whichever of the two levels shows it. */
        log_set_max_level(level > old ? level : old);
        log_info("admin: log level %s -> %s uid=%u", log_level_to_string(old),
                 log_level_to_string(level), (unsigned) who->uid);
        log_set_max_level(level);
        return reply_logger(s, c);
}

static const char *generic_message(int r) {
        switch (r) {
        case -EINVAL:
                return "malformed request";
        case -ENOENT:
                return "not found";
        case -EEXIST:
                return "already exists";
        case -EBUSY:
                return "the datastore is busy, try again";
        case -E2BIG:
        case -EMSGSIZE:
                return "response too large";
        case -ENOMEM:
                return "out of memory";
        default:
                return "internal error";
        }
}

static void admin_dispatch(RpcCall *c, void *userdata) {
        Server *s = userdata;
        const RpcPeer *peer = rpc_call_peer(c);
        const char *method = rpc_call_method(c) + strlen(ADMIN_SERVICE);
        const AdminMethod *m = NULL;
        AdminCaller who = {.uid = peer->uid};
        char err[ADMIN_ERR_MAX] = "";
        int r;

        if (!admin_uid_allowed(s, peer->uid)) {
                log_warning(
                        "admin: refused %s: not an admin uid=%u pid=%d status=PERMISSION_DENIED",
                        method, (unsigned) peer->uid, (int) peer->pid);
                snprintf(err, sizeof(err), "permission denied: uid %u is not an admin",
                         (unsigned) peer->uid);
                (void) rpc_call_finish(c, GRPC_STATUS_PERMISSION_DENIED, err);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(admin_methods); i++)
                if (streq(admin_methods[i].name, method))
                        m = &admin_methods[i];
        if (!m) {
                (void) rpc_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
                return;
        }
        snprintf(who.actor, sizeof(who.actor), "uid:%u", (unsigned) peer->uid);
        log_debug("admin: %s from uid %u", m->name, (unsigned) peer->uid);
        /* The audit records of the handler's writes name the caller. */
        (void) ds_set_actor(s->ds, who.actor);
        r = m->handler(s, c, &who, err, sizeof(err));
        (void) ds_set_actor(s->ds, NULL);
        if (r >= 0)
                return;
        if (r != -EINVAL && r != -ENOENT && r != -EEXIST)
                log_error_errno(r, "admin: %s failed: %s: %m uid=%u status=%s", m->name,
                                err[0] ? err : "-", (unsigned) peer->uid,
                                rpc_status_to_string(errno_to_grpc_status(r)));
        else
                log_info("admin: %s refused: %s uid=%u status=%s", m->name,
                         err[0] ? err : generic_message(r), (unsigned) peer->uid,
                         rpc_status_to_string(errno_to_grpc_status(r)));
        (void) rpc_call_finish_errno(c, r, err[0] ? err : generic_message(r));
}

int admin_api_register(Server *s, RpcServer *rpc) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(admin_methods); i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, ADMIN_SERVICE "%s", admin_methods[i].name) < 0)
                        return -ENOMEM;
                r = rpc_server_add_method(rpc, path, RPC_UNARY, admin_dispatch, s, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}
