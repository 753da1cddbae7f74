/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the admin API handler files (admin_api*.c). */

#include <stddef.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"
#include "server.h"
#include "warden/admin/v1/admin.pb-c.h"

#define ADMIN_SERVICE "/warden.admin.v1.Admin/"
#define ADMIN_ERR_MAX 512

/* Who called: the verified admin uid (SO_PEERCRED) and "uid:<n>" for created_by. */
typedef struct AdminCaller {
        uid_t uid;
        char actor[32];
} AdminCaller;

/* A handler answers the call itself (rpc_call_reply) and returns 0, or returns a
 * negative errno; the dispatcher then ends the call with errno_to_grpc_status(r) and
 * err (if the handler wrote one) or a generic text. */
typedef int (*AdminHandler)(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);

/* Unpacks the call's request as a message of desc (-EINVAL "malformed request"). */
int admin_unpack(RpcCall *c, const ProtobufCMessageDescriptor *desc, void **ret);
/* Packs msg and replies with it. */
int admin_reply(RpcCall *c, const void *msg);
/* snprintf into err; returns r. */
int admin_fail(int r, char *err, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* admin_api_entries.c */
int admin_batch_create_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_get_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_list_entries(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_update_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_delete_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_count_entries(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);

/* admin_api_agents.c */
int admin_create_join_token(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_list_agents(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_get_agent(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_evict_agent(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_ban_agent(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);

/* admin_api_mint.c */
int admin_get_bundle(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_mint_x509_svid(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_mint_jwt_svid(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
