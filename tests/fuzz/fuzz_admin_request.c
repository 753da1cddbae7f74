/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API requests after protobuf-c decoded them: the first byte picks the request
 * message, the rest is its wire form. Each one goes through the pure checks and
 * conversions its handler runs before touching the datastore:
 *   BatchCreateEntry, UpdateEntry: entry_new_from_pb(), entry_validate(), entry_policy_check()
 *     (federates_with hidden: its check reads the datastore), entry_same_content();
 *   ListEntries, CountEntries, ListAgents/CountAgents: admin_entry_query_init() and
 *     admin_agent_query_init(), and the page request's admin_page_init();
 *   GetEntry/DeleteEntry: entry_id_validate(); CreateJoinToken, GetAgent, EvictAgent,
 *     BanAgent, MintX509SVID, MintJWTSVID, SetLogger: the validators their handlers call.
 * Invariants: an accepted entry survives entry_to_pb -> pack -> unpack -> entry_new_from_pb
 * unchanged and validates again; an update that changes nothing is never refused by the
 * policy; with every policy rule relaxed nothing is refused; what the server stores, the
 * agent accepts (pb_to_selectors, the caps of agent/manager.c) and the CA
 * can sign (spiffe_id and DNS names into an SVID). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/jwtsvid.h>
#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "admin_api_internal.h"
#include "entry_pb.h"
#include "entry_policy.h"
#include "fixture_ca.h"
#include "log.h"
#include "ossl_cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SIGN_MAX 4 /* entries per input that the CA signs */
#define ERR_PREFIX "invalid entry: "

enum {
        REQ_BATCH_CREATE,
        REQ_UPDATE,
        REQ_LIST_ENTRIES,
        REQ_COUNT_ENTRIES,
        REQ_LIST_AGENTS,
        REQ_ENTRY_ID,
        REQ_JOIN_TOKEN,
        REQ_AGENT_ID,
        REQ_MINT_X509,
        REQ_MINT_JWT,
        REQ_SET_LOGGER,
        _REQ_MAX,
};

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

/* ---- entries ---- */

static void check_roundtrip(const Entry *e) {
        _cleanup_(pb_freep) Warden__Types__V1__Entry *pb = NULL, *back = NULL;
        _cleanup_(entry_freep) Entry *again = NULL, *copy = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        SelectorSet agent = {};
        size_t len = 0;

        if (entry_to_pb(e, &pb) < 0 || pb_pack(pb, &buf, &len) < 0)
                abort();
        back = warden__types__v1__entry__unpack(NULL, len, buf);
        if (!back || entry_new_from_pb(back, &again, NULL) < 0)
                abort();
        if (!entry_same_content(e, again) || entry_validate(again, FUZZ_TD, NULL) < 0)
                abort();
        if (!streq(strempty(e->id), strempty(again->id)) || e->revision != again->revision)
                abort();
        if (entry_copy(e, &copy) < 0 || !entry_same_content(e, copy))
                abort();
        /* The agent (agent/manager.c) takes what the server sends in Sync. */
        if (pb_to_selectors(back->selectors, back->n_selectors, &agent, NULL) < 0 ||
            agent.n != e->selectors.n)
                abort();
        selector_set_done(&agent);
        if (strlen(back->id) > ENTRY_ID_MAX || back->n_dns_names > WARDEN_SVID_DNS_NAMES_MAX)
                abort();
}

/* entry.h: "an entry that validates can always be signed". */
static void check_signable(const Entry *e) {
        _cleanup_(X509_freep) X509 *leaf = NULL;
        const FuzzCa *ca = fuzz_ca();
        WardenSvidParams p = {
                .ca_cert = ca->cert,
                .ca_key = ca->key,
                .public_key = ca->subject,
                .spiffe_id = e->spiffe_id,
                .dns_names = (const char *const *) e->dns_names,
                .n_dns_names = e->n_dns_names,
                .ttl_seconds =
                        e->x509_svid_ttl > 0 && e->x509_svid_ttl < 3600 ? e->x509_svid_ttl : 3600,
                .now = (time_t) FUZZ_NOW,
        };

        if (warden_svid_sign(&p, &leaf) < 0)
                abort();
}

/* The policy without its datastore rule; old may be e itself. */
static int policy(const EntryPolicy *p, Entry *e, const Entry *old, char *err, size_t n) {
        size_t n_fed = e->n_federates_with;
        int r;

        e->n_federates_with = 0;
        r = entry_policy_check(p, e, old, err, n);
        e->n_federates_with = n_fed;
        if (r < 0 && (r != -EINVAL || strncmp(err, ERR_PREFIX, strlen(ERR_PREFIX)) != 0))
                abort();
        return r;
}

/* entry_from_client() and the policy of admin_batch_create_entry()/admin_update_entry(). */
static void check_entry(const Warden__Types__V1__Entry *pb, bool allow_unknown, bool *signs) {
        _cleanup_(entry_freep) Entry *e = NULL;
        EntryPolicy p = {.now = FUZZ_NOW, .min_x509_ttl = 30, .min_jwt_ttl = 10};
        EntryPolicy relaxed = {.allow_unknown_selector_types = true};
        const char *reason = NULL;
        char err[ADMIN_ERR_MAX] = "";
        int r;

        if (!pb)
                return;
        r = entry_new_from_pb(pb, &e, &reason);
        if (r >= 0)
                r = entry_validate(e, FUZZ_TD, &reason);
        if (r < 0) {
                if (r != -EINVAL || !reason)
                        abort();
                return;
        }
        check_roundtrip(e);
        if (*signs) {
                check_signable(e);
                *signs = false;
        }
        p.allow_unknown_selector_types = allow_unknown;
        (void) policy(&p, e, NULL, err, sizeof(err));
        if (policy(&p, e, e, err, sizeof(err)) < 0 ||
            policy(&relaxed, e, NULL, err, sizeof(err)) < 0)
                abort();
}

static void run_batch_create(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__BatchCreateEntryRequest *req = NULL;
        size_t signs = FUZZ_SIGN_MAX;

        req = warden__admin__v1__batch_create_entry_request__unpack(NULL, len, p);
        if (!req || req->n_entries == 0 || req->n_entries > DS_BATCH_MAX)
                return;
        for (size_t i = 0; i < req->n_entries; i++) {
                bool sign = i < signs;
                check_entry(req->entries[i], req->allow_unknown_selector_types, &sign);
        }
}

static void check_entry_id(const char *id) {
        bool ok = *id && strlen(id) <= ENTRY_ID_MAX;

        for (const char *c = id; *c && ok; c++)
                ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        if ((entry_id_validate(id) >= 0) != ok)
                abort();
}

static void run_update(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__UpdateEntryRequest *req = NULL;
        bool sign = true;

        req = warden__admin__v1__update_entry_request__unpack(NULL, len, p);
        if (!req || !req->entry)
                return;
        check_entry_id(req->entry->id);
        if (entry_id_validate(req->entry->id) >= 0)
                check_entry(req->entry, req->allow_unknown_selector_types, &sign);
}

/* ---- filters ---- */

static void check_query_selectors(SelectorMatch m, const SelectorSet *sel) {
        SelectorSet empty = {};

        if (!admin_selectors_match(m, sel, &empty))
                abort(); /* an empty filter matches everything */
        if (sel->n > 0 && !admin_selectors_match(m, sel, sel))
                abort(); /* a set matches itself in every mode */
}

/* A page request: refused with a reason, or a size within the cap and a token that is
 * the one this server makes for the key it names. */
static void check_page(AdminPageKind kind, int32_t size, const char *token) {
        _cleanup_(admin_page_done) AdminPage p = {};
        _cleanup_free_ char *again = NULL;
        char err[ADMIN_ERR_MAX] = "";
        int r;

        r = admin_page_init(kind, size, token, &p, err, sizeof(err));
        if (r < 0) {
                if (r != -EINVAL || !*err)
                        abort();
                return;
        }
        if (p.size > ADMIN_PAGE_SIZE_MAX || (p.size == 0 && (size != 0 || p.after)))
                abort();
        if (!p.after) {
                if (*token)
                        abort();
                return;
        }
        if (admin_page_token(kind, p.after, &again) < 0 || !streq(again, token))
                abort(); /* one key, one token */
}

static void check_list_entries(const Warden__Admin__V1__ListEntriesRequest *req) {
        _cleanup_(admin_entry_query_done) EntryQuery q = {};
        char err[ADMIN_ERR_MAX] = "";
        int r;

        r = admin_entry_query_init(req, &q, err, sizeof(err));
        if (r < 0) {
                if (r != -EINVAL || !*err)
                        abort();
                return;
        }
        if (q.sel.n > WARDEN_SELECTORS_MAX ||
            (q.ds.by_selectors && q.match != SELECTOR_MATCH_SUPERSET))
                abort();
        check_query_selectors(q.match, &q.sel);
}

static void run_list_entries(const uint8_t *p, size_t len, bool count) {
        _cleanup_(pb_freep) Warden__Admin__V1__ListEntriesRequest *req = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__CountEntriesRequest *creq = NULL;

        if (count) {
                creq = warden__admin__v1__count_entries_request__unpack(NULL, len, p);
                if (creq && creq->filter)
                        check_list_entries(creq->filter);
                return;
        }
        req = warden__admin__v1__list_entries_request__unpack(NULL, len, p);
        if (req) {
                check_list_entries(req);
                check_page(ADMIN_PAGE_ENTRIES, req->page_size, req->page_token);
        }
}

static void run_list_agents(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__ListAgentsRequest *req = NULL;
        _cleanup_(admin_agent_query_done) AgentQuery q = {};
        char err[ADMIN_ERR_MAX] = "";
        int r;

        req = warden__admin__v1__list_agents_request__unpack(NULL, len, p);
        if (!req)
                return;
        check_page(ADMIN_PAGE_AGENTS, req->page_size, req->page_token);
        r = admin_agent_query_init(req, &q, err, sizeof(err));
        if (r < 0) {
                if (r != -EINVAL || !*err)
                        abort();
                return;
        }
        if (q.banned < -1 || q.banned > 1 || q.expires_before < 0)
                abort();
        check_query_selectors(q.match, &q.sel);
}

/* ---- the other requests: the validators their handlers call ---- */

/* A workload ID of our trust domain outside /warden (admin_api_mint.c check_mint_id,
 * admin_api_agents.c for join token aliases). */
static bool workload_id_ok(const char *id) {
        const char *reason = NULL;
        bool ok = warden_spiffeid_validate_workload(id, &reason) >= 0;

        if (!ok && !reason)
                abort();
        if (ok && warden_spiffeid_validate(id, NULL) < 0)
                abort();
        return ok && warden_spiffeid_member_of(id, FUZZ_TD);
}

/* entry_spiffe_id_is_reserved() reads the path by hand: it must agree with the parser. */
static void check_reserved(const char *id) {
        _cleanup_free_ char *td = NULL, *path = NULL;
        size_t n = strlen(ENTRY_RESERVED_PATH);
        bool want;

        if (warden_spiffeid_parse(id, &td, &path, NULL) < 0)
                abort();
        want = strncmp(path, ENTRY_RESERVED_PATH, n) == 0 && (path[n] == '\0' || path[n] == '/');
        if (entry_spiffe_id_is_reserved(id) != want)
                abort();
}

static void run_entry_id(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__GetEntryRequest *req = NULL;

        req = warden__admin__v1__get_entry_request__unpack(NULL, len, p);
        if (req)
                check_entry_id(req->id);
}

static void run_join_token(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__CreateJoinTokenRequest *req = NULL;

        req = warden__admin__v1__create_join_token_request__unpack(NULL, len, p);
        if (req && *req->alias_spiffe_id && workload_id_ok(req->alias_spiffe_id))
                check_reserved(req->alias_spiffe_id);
}

static void run_agent_id(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__AgentIDRequest *req = NULL;
        _cleanup_free_ char *td = NULL, *path = NULL;

        req = warden__admin__v1__agent_idrequest__unpack(NULL, len, p);
        if (!req || !*req->spiffe_id)
                return;
        if ((warden_spiffeid_validate(req->spiffe_id, NULL) >= 0) !=
            (warden_spiffeid_parse(req->spiffe_id, &td, &path, NULL) >= 0))
                abort();
}

static void run_mint_x509(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__MintX509SVIDRequest *req = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        const char *reason = NULL;

        req = warden__admin__v1__mint_x509_svidrequest__unpack(NULL, len, p);
        if (!req)
                return;
        if (workload_id_ok(req->spiffe_id))
                check_reserved(req->spiffe_id);
        for (size_t i = 0; i < req->n_dns_names && i < ENTRY_DNS_NAMES_MAX; i++)
                if (entry_dns_name_validate(req->dns_names[i], &reason) < 0 && !reason)
                        abort();
        if (warden_csr_parse(req->csr.data, req->csr.len, &csr, &reason) < 0 && req->csr.len &&
            !reason)
                abort();
}

static void run_mint_jwt(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__MintJWTSVIDRequest *req = NULL;

        req = warden__admin__v1__mint_jwtsvidrequest__unpack(NULL, len, p);
        if (!req)
                return;
        (void) workload_id_ok(req->spiffe_id);
        for (size_t i = 0; i < req->n_audience && i < WARDEN_JWT_AUDIENCES_MAX; i++) {
                const char *why = NULL;
                if (warden_jwt_audience_check(req->audience[i], strlen(req->audience[i]), &why) <
                            0 &&
                    !why)
                        abort();
        }
}

static void run_set_logger(const uint8_t *p, size_t len) {
        _cleanup_(pb_freep) Warden__Admin__V1__SetLoggerRequest *req = NULL;
        int level;

        req = warden__admin__v1__set_logger_request__unpack(NULL, len, p);
        if (!req || !*req->level)
                return;
        level = log_level_from_string(req->level);
        if (level >= 0 && log_level_from_string(log_level_to_string(level)) != level)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 256 * 1024)
                return 0;
        (void) fuzz_ca();
        switch (data[0] % _REQ_MAX) {
        case REQ_BATCH_CREATE:
                run_batch_create(data + 1, size - 1);
                break;
        case REQ_UPDATE:
                run_update(data + 1, size - 1);
                break;
        case REQ_LIST_ENTRIES:
        case REQ_COUNT_ENTRIES:
                run_list_entries(data + 1, size - 1, data[0] % _REQ_MAX == REQ_COUNT_ENTRIES);
                break;
        case REQ_LIST_AGENTS:
                run_list_agents(data + 1, size - 1);
                break;
        case REQ_ENTRY_ID:
                run_entry_id(data + 1, size - 1);
                break;
        case REQ_JOIN_TOKEN:
                run_join_token(data + 1, size - 1);
                break;
        case REQ_AGENT_ID:
                run_agent_id(data + 1, size - 1);
                break;
        case REQ_MINT_X509:
                run_mint_x509(data + 1, size - 1);
                break;
        case REQ_MINT_JWT:
                run_mint_jwt(data + 1, size - 1);
                break;
        default:
                run_set_logger(data + 1, size - 1);
                break;
        }
        return 0;
}
