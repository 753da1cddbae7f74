/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: the filters of ListEntries/CountEntries and ListAgents/CountAgents, as page
 * sources (admin_api_page.c). The datastore filters what it can (IDs, selectors held);
 * the rest (other selector match modes, federates_with, hint, agent fields) is filtered
 * here. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "entry_pb.h"
#include "pb_util.h"

int admin_selector_match_from_string(const char *s, SelectorMatch *ret) {
        static const char *const names[] = {
                [SELECTOR_MATCH_SUPERSET] = "superset",
                [SELECTOR_MATCH_EXACT] = "exact",
                [SELECTOR_MATCH_SUBSET] = "subset",
                [SELECTOR_MATCH_ANY] = "any",
        };

        if (!s || !*s) {
                *ret = SELECTOR_MATCH_SUPERSET;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i])) {
                        *ret = (SelectorMatch) i;
                        return 0;
                }
        return -EINVAL;
}

static bool sets_intersect(const SelectorSet *a, const SelectorSet *b) {
        FOREACH_SELECTOR(s, a)
                if (selector_set_contains(b, s))
                        return true;
        return false;
}

bool admin_selectors_match(SelectorMatch m, const SelectorSet *have, const SelectorSet *want) {
        if (want->n == 0)
                return true;
        switch (m) {
        case SELECTOR_MATCH_EXACT:
                return have->n == want->n && selector_set_is_subset(want, have);
        case SELECTOR_MATCH_SUBSET:
                return have->n > 0 && selector_set_is_subset(have, want);
        case SELECTOR_MATCH_ANY:
                return sets_intersect(have, want);
        default:
                return selector_set_is_subset(want, have);
        }
}

static int query_selectors(Warden__Types__V1__Selector **pb,
                           size_t n_pb,
                           const char *match,
                           SelectorSet *sel,
                           SelectorMatch *ret_match,
                           char *err,
                           size_t n) {
        const char *reason = NULL;
        int r;

        if (admin_selector_match_from_string(match, ret_match) < 0)
                return admin_fail(-EINVAL, err, n,
                                  "unknown selector match \"%s\" (use exact, subset, superset or "
                                  "any)",
                                  match);
        if (n_pb == 0)
                return 0;
        r = pb_to_selectors(pb, n_pb, sel, &reason);
        if (r == -EINVAL || r == -E2BIG)
                return admin_fail(-EINVAL, err, n, "invalid selector filter: %s", strna(reason));
        return r;
}

int admin_entry_query_init(const Warden__Admin__V1__ListEntriesRequest *req,
                           EntryQuery *q,
                           char *err,
                           size_t n) {
        const char *reason = NULL;
        int r;

        *q = (EntryQuery){};
        if (*req->by_spiffe_id) {
                if (warden_spiffeid_validate(req->by_spiffe_id, &reason) < 0)
                        return admin_fail(-EINVAL, err, n, "invalid SPIFFE ID filter: %s", reason);
                q->ds.by_spiffe_id = req->by_spiffe_id;
        }
        if (*req->by_parent_id) {
                if (warden_spiffeid_validate(req->by_parent_id, &reason) < 0)
                        return admin_fail(-EINVAL, err, n, "invalid parent ID filter: %s", reason);
                q->ds.by_parent_id = req->by_parent_id;
        }
        for (size_t i = 0; i < req->n_by_federates_with; i++)
                if (warden_trust_domain_validate(req->by_federates_with[i], &reason) < 0)
                        return admin_fail(-EINVAL, err, n, "invalid federates_with filter: %s",
                                          reason);
        r = query_selectors(req->by_selectors, req->n_by_selectors, req->match_selectors_on,
                            &q->sel, &q->match, err, n);
        if (r < 0)
                return r;
        /* The datastore answers "holds all of these" itself. */
        if (q->match == SELECTOR_MATCH_SUPERSET && q->sel.n > 0)
                q->ds.by_selectors = &q->sel;
        q->fed = req->by_federates_with;
        q->n_fed = req->n_by_federates_with;
        q->hint = *req->by_hint ? req->by_hint : NULL;
        return 0;
}

void admin_entry_query_done(EntryQuery *q) {
        selector_set_done(&q->sel);
}

static bool federates_with_all(const Entry *e, char *const *tds, size_t n) {
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                for (size_t j = 0; j < e->n_federates_with && !found; j++)
                        found = streq(e->federates_with[j], tds[i]);
                if (!found)
                        return false;
        }
        return true;
}

static bool entry_matches(const EntryQuery *q, const Entry *e) {
        if (q->hint && !streq(strempty(e->hint), q->hint))
                return false;
        if (!federates_with_all(e, q->fed, q->n_fed))
                return false;
        return q->ds.by_selectors || admin_selectors_match(q->match, &e->selectors, &q->sel);
}

static int entry_fetch(void *ctx, const char *after, size_t limit, void ***ret, size_t *ret_n) {
        const EntryQuery *q = ctx;
        EntryFilter f = q->ds;

        f.after_id = after;
        f.limit = limit;
        return ds_list_entries(q->store, &f, (Entry ***) ret, ret_n);
}

static bool entry_match(void *ctx, const void *item) {
        return entry_matches(ctx, item);
}

static const char *entry_key(const void *item) {
        return ((const Entry *) item)->id;
}

static int entry_pb(const void *item, ProtobufCMessage **ret) {
        return entry_to_pb(item, (Warden__Types__V1__Entry **) ret);
}

static void entry_free_item(void *item) {
        entry_free(item);
}

void admin_entry_page_source(Server *s, EntryQuery *q, AdminPageSource *ret) {
        q->store = s->ds;
        *ret = (AdminPageSource){
                .kind = ADMIN_PAGE_ENTRIES,
                .ctx = q,
                .all_match = !q->hint && q->n_fed == 0 && (q->ds.by_selectors || q->sel.n == 0),
                .fetch = entry_fetch,
                .match = entry_match,
                .key = entry_key,
                .to_pb = entry_pb,
                .free_item = entry_free_item,
        };
}

int admin_agent_query_init(const Warden__Admin__V1__ListAgentsRequest *req,
                           AgentQuery *q,
                           char *err,
                           size_t n) {
        *q = (AgentQuery){.banned = -1};
        if (streq(req->by_banned, "true"))
                q->banned = 1;
        else if (streq(req->by_banned, "false"))
                q->banned = 0;
        else if (*req->by_banned)
                return admin_fail(-EINVAL, err, n, "banned filter must be true or false");
        if (req->by_expires_before < 0)
                return admin_fail(-EINVAL, err, n, "expires_before must not be negative");
        q->attestation_type = *req->by_attestation_type ? req->by_attestation_type : NULL;
        q->expires_before = req->by_expires_before;
        return query_selectors(req->by_selectors, req->n_by_selectors, req->match_selectors_on,
                               &q->sel, &q->match, err, n);
}

void admin_agent_query_done(AgentQuery *q) {
        selector_set_done(&q->sel);
}

static bool agent_matches(const AgentQuery *q, const AttestedAgent *a) {
        if (q->attestation_type && !streq(strempty(a->attestation_type), q->attestation_type))
                return false;
        if (q->banned >= 0 && a->banned != (q->banned == 1))
                return false;
        if (q->expires_before > 0 && a->svid_expires_at >= q->expires_before)
                return false;
        return admin_selectors_match(q->match, &a->selectors, &q->sel);
}

static int agent_fetch(void *ctx, const char *after, size_t limit, void ***ret, size_t *ret_n) {
        const AgentQuery *q = ctx;

        return ds_list_agents_page(q->store, after, limit, (AttestedAgent ***) ret, ret_n);
}

static bool agent_match(void *ctx, const void *item) {
        return agent_matches(ctx, item);
}

static const char *agent_key(const void *item) {
        return ((const AttestedAgent *) item)->spiffe_id;
}

static int agent_pb(const void *item, ProtobufCMessage **ret) {
        return attested_agent_to_pb(item, (Warden__Types__V1__AttestedAgent **) ret);
}

static void agent_free_item(void *item) {
        attested_agent_free(item);
}

void admin_agent_page_source(Server *s, AgentQuery *q, AdminPageSource *ret) {
        q->store = s->ds;
        *ret = (AdminPageSource){
                .kind = ADMIN_PAGE_AGENTS,
                .ctx = q,
                .all_match = !q->attestation_type && q->banned < 0 && q->expires_before == 0 &&
                             q->sel.n == 0,
                .fetch = agent_fetch,
                .match = agent_match,
                .key = agent_key,
                .to_pb = agent_pb,
                .free_item = agent_free_item,
        };
}
