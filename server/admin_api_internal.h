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
        Datastore *store; /* set by admin_entry_page_source() */
        EntryFilter ds;   /* the part the datastore filters (strings borrowed from the request) */
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

typedef struct AgentQuery {
        Datastore *store;             /* set by admin_agent_page_source() */
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

/* admin_api_page.c: paging of the list calls */

#define ADMIN_PAGE_SIZE_MAX 1000                  /* results per page, at most */
#define ADMIN_PAGE_BYTES_MAX (2u * 1024u * 1024u) /* encoded results per page, about */

/* What a page token names the key of (entry ID or agent SPIFFE ID). */
typedef enum AdminPageKind {
        ADMIN_PAGE_ENTRIES = 'e',
        ADMIN_PAGE_AGENTS = 'a',
} AdminPageKind;

typedef struct AdminPage {
        size_t size; /* results wanted; 0 = all in one answer (no page_size, no token) */
        char *after; /* the page starts after this key; NULL = from the first */
} AdminPage;

/* Reads page_size and page_token of a list request: page_size 0 with a token and page
 * sizes over ADMIN_PAGE_SIZE_MAX become ADMIN_PAGE_SIZE_MAX. -EINVAL with err for a
 * negative page_size or a token this server did not make for this kind. Release with
 * admin_page_done() in any case. */
int admin_page_init(AdminPageKind kind,
                    int32_t page_size,
                    const char *token,
                    AdminPage *p,
                    char *err,
                    size_t n);
void admin_page_done(AdminPage *p);
/* The token of the page after the one that ended with key `last`: base64url of
 * "<kind>:<last>" (opaque to clients). */
int admin_page_token(AdminPageKind kind, const char *last, char **ret);

/* Where a page comes from: rows in key order, a filter and the encoding. */
typedef struct AdminPageSource {
        AdminPageKind kind;
        void *ctx;
        bool all_match; /* every fetched row matches: match() always says true */
        /* Up to limit rows after key `after` (NULL: from the first), in key order. */
        int (*fetch)(void *ctx, const char *after, size_t limit, void ***ret, size_t *ret_n);
        bool (*match)(void *ctx, const void *item);
        const char *(*key)(const void *item);
        int (*to_pb)(const void *item, ProtobufCMessage **ret);
        void (*free_item)(void *item);
} AdminPageSource;

/* Encoded results (NULL-terminated array; a repeated field of a reply). */
typedef struct AdminPbList {
        ProtobufCMessage **v;
        size_t n, allocated;
} AdminPbList;
void admin_pb_list_done(AdminPbList *l);

/* Appends the page p of src to out: the matching rows after p->after, at most p->size
 * of them and about ADMIN_PAGE_BYTES_MAX bytes (at least one), or all of them when
 * p->size is 0. *ret_next_token is the token of the next page, or NULL after the last. */
int admin_page_collect(const AdminPageSource *src,
                       const AdminPage *p,
                       AdminPbList *out,
                       char **ret_next_token);

/* admin_api_filter.c: page sources of the queries, and counts */
void admin_entry_page_source(Server *s, EntryQuery *q, AdminPageSource *ret);
void admin_agent_page_source(Server *s, AgentQuery *q, AdminPageSource *ret);
/* The number of results of src (read in pages). */
int admin_page_count(const AdminPageSource *src, int64_t *ret);

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

/* admin_api_audit.c */
int admin_list_audit_records(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
int admin_verify_audit(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n);
