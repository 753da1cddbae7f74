/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the admin API handler files (admin_api*.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"
#include "rpc_message.h"
#include "server.h"
#include "warden/admin/v1/admin.pb-c.h"

#define ADMIN_SERVICE "/warden.admin.v1.Admin/"
#define ADMIN_ERR_MAX 512

/* Who called: the verified admin uid (SO_PEERCRED) and "uid:<n>" for created_by. */
typedef struct AdminCaller {
        uid_t uid;
        char actor[32];
} AdminCaller;

/* A handler answers the call itself (rpc_message_reply()) and returns >= 0, or returns a
 * negative errno; the dispatcher then ends the call with errno_to_grpc_status(r) and
 * err (if the handler wrote one) or a generic text. */
typedef int (*AdminHandler)(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);

/* snprintf into err; returns r. */
int admin_fail(int r, char *err, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* admin_api_filter.c: the filters of the list and count calls */

/* How a filter's selectors match an entry's or agent's (ListEntriesRequest). */
typedef enum SelectorMatch {
        SELECTOR_MATCH_SUPERSET, /* holds all of them (the default) */
        SELECTOR_MATCH_EXACT,
        SELECTOR_MATCH_SUBSET, /* holds only some of them */
        SELECTOR_MATCH_ANY,
} SelectorMatch;

/* "superset" (or ""), "exact", "subset", "any"; else -EINVAL. */
int admin_selector_match_from_string(const char *s, SelectorMatch *ret);
/* Whether have matches the filter want (an empty want matches everything). */
bool admin_selectors_match(SelectorMatch m, const SelectorSet *have, const SelectorSet *want);

typedef struct EntryQuery {
        EntryFilter ds; /* the part the datastore filters (strings borrowed from the request) */
        SelectorSet sel;
        SelectorMatch match;
        char *const *fed; /* federates with all of these (borrowed) */
        size_t n_fed;
        const char *hint; /* borrowed; NULL = any */
} EntryQuery;

/* Checks and reads a ListEntriesRequest (-EINVAL with err). Release with
 * admin_entry_query_done() in any case. */
int admin_entry_query_init(const Warden__Admin__V1__ListEntriesRequest *req,
                           EntryQuery *q,
                           char *err,
                           size_t n);
void admin_entry_query_done(EntryQuery *q);
/* The matching entries, ordered by id (free with entry_array_free()). */
int admin_entry_query_run(Server *s, const EntryQuery *q, Entry ***ret, size_t *ret_n);

typedef struct AgentQuery {
        const char *attestation_type; /* borrowed; NULL = any */
        int banned;                   /* -1 any, 0 not banned, 1 banned */
        int64_t expires_before;       /* 0 = any */
        SelectorSet sel;
        SelectorMatch match;
} AgentQuery;

int admin_agent_query_init(const Warden__Admin__V1__ListAgentsRequest *req,
                           AgentQuery *q,
                           char *err,
                           size_t n);
void admin_agent_query_done(AgentQuery *q);
/* The matching agents, ordered by SPIFFE ID (free with attested_agent_array_free()). */
int admin_agent_query_run(Server *s, const AgentQuery *q, AttestedAgent ***ret, size_t *ret_n);

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
int admin_count_agents(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_purge_agents(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);

/* admin_api_mint.c */
int admin_get_bundle(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_mint_x509_svid(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_mint_jwt_svid(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
