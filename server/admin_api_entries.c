/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: registration entries (create in batches, get, list, update, delete,
 * count). Every committed change is pushed to the agents (server_entries_changed). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/spiffeid.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "entry_pb.h"
#include "entry_policy.h"
#include "log.h"
#include "rpc_status.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static char *mfree(char *p) {
        free(p);
        return NULL;
}

typedef struct EntryVec {
        Entry **entries;
        size_t n;
} EntryVec;

static void entry_vec_done(EntryVec *v) {
        entry_array_free(v->entries, v->n);
}

/* "invalid entry: <reason>", naming our trust domain when that is the problem. */
static int invalid_entry(const Server *s, const char *reason, char *err, size_t n) {
        if (strstr(reason, "server's trust domain"))
                return admin_fail(-EINVAL, err, n, "invalid entry: %s (%s)", reason,
                                  s->cfg.trust_domain);
        return admin_fail(-EINVAL, err, n, "invalid entry: %s", reason);
}

static const char *duplicate_message(void) {
        return "an entry with the same SPIFFE ID, parent ID and selectors already exists";
}

static EntryPolicy entry_policy(const Server *s, bool allow_unknown_selector_types) {
        return (EntryPolicy){
                .ds = s->ds,
                .now = (int64_t) time(NULL),
                .min_x509_ttl = s->cfg.min_x509_ttl,
                .min_jwt_ttl = s->cfg.min_jwt_ttl,
                .allow_unknown_selector_types = allow_unknown_selector_types,
        };
}

/* Converts and validates one entry from a client. The server's own record is ignored,
 * not refused, so that `entry show -output json` reads back: revision and created_at,
 * and the governance fields (state, created_by, approved_by), which the server sets. */
static int entry_from_client(
        Server *s, const Warden__Types__V1__Entry *pb, Entry **ret, char *err, size_t n) {
        _cleanup_(entry_freep) Entry *e = NULL;
        const char *reason = "malformed entry";
        int r;

        if (!pb)
                return admin_fail(-EINVAL, err, n, "missing entry");
        r = entry_new_from_pb(pb, &e, &reason);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                r = entry_validate(e, s->cfg.trust_domain, &reason);
        if (r < 0)
                return invalid_entry(s, reason, err, n);
        e->state = mfree(e->state);
        e->created_by = mfree(e->created_by);
        e->approved_by = mfree(e->approved_by);
        e->revision = 0;
        e->created_at = 0;
        *ret = TAKE_PTR(e);
        return 0;
}

/* All-or-nothing failure: entry `bad` gets (status, message), the others ABORTED. */
static int batch_reply_failure(RpcCall *c, size_t n, size_t bad, int r, const char *message) {
        Warden__Admin__V1__BatchCreateEntryResponse resp =
                WARDEN__ADMIN__V1__BATCH_CREATE_ENTRY_RESPONSE__INIT;
        _cleanup_free_ Warden__Admin__V1__EntryResult *res = calloc(n, sizeof(*res));
        _cleanup_free_ Warden__Admin__V1__EntryResult **ptrs = calloc(n, sizeof(*ptrs));
        char other[64];

        if (!res || !ptrs)
                return -ENOMEM;
        snprintf(other, sizeof(other), "not created: entry %zu failed", bad + 1);
        for (size_t i = 0; i < n; i++) {
                warden__admin__v1__entry_result__init(&res[i]);
                res[i].status = i == bad ? (int32_t) errno_to_grpc_status(r)
                                         : (int32_t) GRPC_STATUS_ABORTED;
                res[i].message = (char *) (i == bad ? message : other);
                ptrs[i] = &res[i];
        }
        resp.results = ptrs;
        resp.n_results = n;
        return rpc_message_reply(c, &resp.base, 0);
}

static int batch_reply_success(RpcCall *c, Entry **entries, size_t n) {
        Warden__Admin__V1__BatchCreateEntryResponse resp =
                WARDEN__ADMIN__V1__BATCH_CREATE_ENTRY_RESPONSE__INIT;
        _cleanup_free_ Warden__Admin__V1__EntryResult *res = calloc(n, sizeof(*res));
        _cleanup_free_ Warden__Admin__V1__EntryResult **ptrs = calloc(n, sizeof(*ptrs));
        int r = 0;

        if (!res || !ptrs)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                warden__admin__v1__entry_result__init(&res[i]);
                res[i].message = (char *) "created";
                ptrs[i] = &res[i];
                r = entry_to_pb(entries[i], &res[i].entry);
        }
        if (r >= 0) {
                resp.results = ptrs;
                resp.n_results = n;
                r = rpc_message_reply(c, &resp.base, 0);
        }
        for (size_t i = 0; i < n; i++)
                pb_free(res[i].entry);
        return r;
}

/* A caller-chosen entry ID that is taken: index of the first one, or n. */
static size_t find_taken_id(Server *s, Entry **entries, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_(entry_freep) Entry *old = NULL;
                if (entries[i]->id && ds_get_entry(s->ds, entries[i]->id, &old) >= 0)
                        return i;
        }
        return n;
}

static int batch_create(Server *s,
                        RpcCall *c,
                        const AdminCaller *who,
                        Entry **entries,
                        size_t n,
                        char *err,
                        size_t errn) {
        size_t bad = find_taken_id(s, entries, n);
        int r;

        if (bad < n) {
                (void) admin_fail(-EEXIST, err, errn, "an entry with ID %s already exists",
                                  entries[bad]->id);
                return batch_reply_failure(c, n, bad, -EEXIST, err);
        }
        r = ds_create_entries(s->ds, entries, n, &bad);
        if (r == -EEXIST && bad < n)
                return batch_reply_failure(c, n, bad, r, duplicate_message());
        if (r < 0 && bad < n)
                return batch_reply_failure(c, n, bad, r, "the datastore refused the entry");
        if (r < 0)
                return admin_fail(r, err, errn, "failed to store the entries");
        for (size_t i = 0; i < n; i++)
                log_info("admin: entry created entry_id=%s spiffe_id=%s parent_id=%s uid=%u",
                         entries[i]->id, entries[i]->spiffe_id, entries[i]->parent_id,
                         (unsigned) who->uid);
        server_entries_changed(s);
        return batch_reply_success(c, entries, n);
}

/* A new entry: created by the caller, active, approved by nobody (entry_from_client()
 * dropped any client-set value). */
static int set_governance(Entry *e, const char *actor) {
        free(e->created_by);
        free(e->state);
        e->created_by = strdup(actor);
        e->state = strdup("active");
        return e->created_by && e->state ? 0 : -ENOMEM;
}

int admin_batch_create_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__BatchCreateEntryRequest *req = NULL;
        _cleanup_(entry_vec_done) EntryVec v = {};
        EntryPolicy policy;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__batch_create_entry_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        if (req->n_entries == 0)
                return admin_fail(-EINVAL, err, n, "no entries in the request");
        if (req->n_entries > DS_BATCH_MAX)
                return admin_fail(-E2BIG, err, n, "too many entries in one batch (at most %d)",
                                  DS_BATCH_MAX);
        v.entries = calloc(req->n_entries, sizeof(Entry *));
        if (!v.entries)
                return -ENOMEM;
        v.n = req->n_entries;
        policy = entry_policy(s, req->allow_unknown_selector_types);
        for (size_t i = 0; i < v.n; i++) {
                r = entry_from_client(s, req->entries[i], &v.entries[i], err, n);
                if (r >= 0)
                        r = entry_policy_check(&policy, v.entries[i], NULL, err, n);
                if (r >= 0)
                        r = set_governance(v.entries[i], who->actor);
                if (r == -EINVAL)
                        return batch_reply_failure(c, v.n, i, r, err);
                if (r < 0)
                        return r;
        }
        return batch_create(s, c, who, v.entries, v.n, err, n);
}

static int check_entry_id(const char *id, char *err, size_t n) {
        if (!id || !*id)
                return admin_fail(-EINVAL, err, n, "missing entry ID");
        if (entry_id_validate(id) < 0)
                return admin_fail(-EINVAL, err, n,
                                  "invalid entry ID (1..%d characters of A-Z a-z 0-9 _ -)",
                                  ENTRY_ID_MAX);
        return 0;
}

static int reply_entry(RpcCall *c, const Entry *e) {
        _cleanup_(pb_freep) Warden__Types__V1__Entry *pb = NULL;
        int r;

        r = entry_to_pb(e, &pb);
        if (r < 0)
                return r;
        return rpc_message_reply(c, &pb->base, 0);
}

int admin_get_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__GetEntryRequest *req = NULL;
        _cleanup_(entry_freep) Entry *e = NULL;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__get_entry_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_entry_id(req->id, err, n);
        if (r < 0)
                return r;
        r = ds_get_entry(s->ds, req->id, &e);
        if (r == -ENOENT)
                return admin_fail(r, err, n, "no entry with ID %s", req->id);
        if (r < 0)
                return r;
        return reply_entry(c, e);
}

int admin_list_entries(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__ListEntriesRequest *req = NULL;
        Warden__Admin__V1__ListEntriesResponse resp =
                WARDEN__ADMIN__V1__LIST_ENTRIES_RESPONSE__INIT;
        _cleanup_(admin_entry_query_done) EntryQuery q = {};
        _cleanup_(admin_page_done) AdminPage page = {};
        _cleanup_(admin_pb_list_done) AdminPbList l = {};
        _cleanup_free_ char *next = NULL;
        AdminPageSource src;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__list_entries_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = admin_entry_query_init(req, &q, err, n);
        if (r >= 0)
                r = admin_page_init(ADMIN_PAGE_ENTRIES, req->page_size, req->page_token, &page, err,
                                    n);
        if (r < 0)
                return r;
        admin_entry_page_source(s, &q, &src);
        r = admin_page_collect(&src, &page, &l, &next);
        if (r < 0)
                return r;
        resp.entries = (Warden__Types__V1__Entry **) l.v;
        resp.n_entries = l.n;
        resp.next_page_token = next ? next : (char *) "";
        r = rpc_message_reply(c, &resp.base, 0);
        if (r == -EMSGSIZE)
                (void) admin_fail(r, err, n,
                                  "too many entries (%zu) for one answer; ask for pages "
                                  "(page_size) or narrow the filter",
                                  l.n);
        return r;
}

int admin_update_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__UpdateEntryRequest *req = NULL;
        _cleanup_(entry_freep) Entry *e = NULL, *old = NULL, *stored = NULL;
        EntryPolicy policy;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__update_entry_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_entry_id(req->entry ? req->entry->id : NULL, err, n);
        if (r < 0)
                return r;
        r = ds_get_entry(s->ds, req->entry->id, &old);
        if (r == -ENOENT)
                return admin_fail(r, err, n, "no entry with ID %s", req->entry->id);
        if (r >= 0)
                r = entry_from_client(s, req->entry, &e, err, n);
        if (r < 0)
                return r;
        if (entry_same_content(e, old)) {
                log_info("admin: entry unchanged entry_id=%s revision=%lld uid=%u", old->id,
                         (long long) old->revision, (unsigned) who->uid);
                return reply_entry(c, old);
        }
        policy = entry_policy(s, req->allow_unknown_selector_types);
        r = entry_policy_check(&policy, e, old, err, n);
        if (r < 0)
                return r;
        /* Who created and approved an entry, and its state, are the server's record: kept
         * (entry_from_client() dropped any client-set value). */
        e->created_by = TAKE_PTR(old->created_by);
        e->approved_by = TAKE_PTR(old->approved_by);
        e->state = TAKE_PTR(old->state);
        r = ds_update_entry(s->ds, e, &stored);
        if (r == -ENOENT)
                return admin_fail(r, err, n, "no entry with ID %s", e->id);
        if (r == -EEXIST)
                return admin_fail(r, err, n, "%s", duplicate_message());
        if (r < 0)
                return r;
        log_info("admin: entry updated entry_id=%s spiffe_id=%s revision=%lld uid=%u", stored->id,
                 stored->spiffe_id, (long long) stored->revision, (unsigned) who->uid);
        server_entries_changed(s);
        return reply_entry(c, stored);
}

int admin_delete_entry(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__DeleteEntryRequest *req = NULL;
        Warden__Admin__V1__DeleteEntryResponse resp =
                WARDEN__ADMIN__V1__DELETE_ENTRY_RESPONSE__INIT;
        _cleanup_(entry_freep) Entry *old = NULL;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__delete_entry_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r >= 0)
                r = check_entry_id(req->id, err, n);
        if (r < 0)
                return r;
        (void) ds_get_entry(s->ds, req->id, &old); /* only for the log line */
        r = ds_delete_entry(s->ds, req->id);
        if (r == -ENOENT)
                return admin_fail(r, err, n, "no entry with ID %s", req->id);
        if (r < 0)
                return r;
        log_info("admin: entry deleted entry_id=%s spiffe_id=%s uid=%u", req->id,
                 old ? old->spiffe_id : "-", (unsigned) who->uid);
        server_entries_changed(s);
        return rpc_message_reply(c, &resp.base, 0);
}

int admin_count_entries(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__CountEntriesRequest *req = NULL;
        Warden__Admin__V1__CountEntriesResponse resp =
                WARDEN__ADMIN__V1__COUNT_ENTRIES_RESPONSE__INIT;
        _cleanup_(admin_entry_query_done) EntryQuery q = {};
        AdminPageSource src;
        int64_t count;
        int r;

        r = rpc_message_unpack(c, &warden__admin__v1__count_entries_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        if (!req->filter) {
                r = ds_count_entries(s->ds, &count);
                if (r < 0)
                        return r;
                resp.count = count;
                return rpc_message_reply(c, &resp.base, 0);
        }
        r = admin_entry_query_init(req->filter, &q, err, n);
        if (r < 0)
                return r;
        admin_entry_page_source(s, &q, &src);
        r = admin_page_count(&src, &count);
        if (r < 0)
                return r;
        resp.count = count;
        return rpc_message_reply(c, &resp.base, 0);
}
