/* SPDX-License-Identifier: Apache-2.0 */
/* The manager's entries: made from the server's protobuf entries into an immutable,
 * shared EntryInfo plus the manager's own state, and carried over on updates so that
 * unchanged data stays shared with the published snapshots. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "manager_internal.h"
#include "pb_util.h"
#include "strv.h"

void managed_entry_set_svid(ManagedEntry *e, SvidData *svid) {
        svid_data_unref(e->svid);
        e->svid = svid;
        e->pub = cached_svid_unref(e->pub);
        if (!svid)
                e->renew_at = 0;
}

ManagedEntry *managed_entry_free(ManagedEntry *e) {
        if (!e)
                return NULL;
        cached_svid_unref(e->pub);
        entry_info_unref(e->info);
        svid_data_unref(e->svid);
        strv_free(e->dns_names, e->n_dns_names);
        free(e);
        return NULL;
}

/* The EntryInfo of an entry already checked by managed_entry_from_pb(). */
static int entry_info_from_pb(const Warden__Types__V1__Entry *pb,
                              EntryInfo **ret,
                              const char **reterr_reason) {
        _cleanup_(entry_info_unrefp) EntryInfo *info = NULL;
        int r;

        r = entry_info_new(&info);
        if (r < 0)
                return r;
        r = pb_to_selectors(pb->selectors, pb->n_selectors, &info->selectors, reterr_reason);
        if (r < 0)
                return r;
        info->entry_id = strdup(pb->id);
        info->spiffe_id = strdup(pb->spiffe_id);
        if (!info->entry_id || !info->spiffe_id)
                return -ENOMEM;
        if (pb->hint && *pb->hint && strlen(pb->hint) <= MANAGER_HINT_MAX) {
                info->hint = strdup(pb->hint);
                if (!info->hint)
                        return -ENOMEM;
        }
        r = strv_copy(pb->federates_with, pb->n_federates_with, &info->federates_with);
        if (r < 0)
                return r;
        info->n_federates_with = pb->n_federates_with;
        info->jwt_svid_ttl = pb->jwt_svid_ttl;
        info->created_at = pb->created_at;
        /* kept for as long as the entry exists: one allocation */
        return entry_info_pack(info, ret);
}

static bool selector_set_equal(const SelectorSet *a, const SelectorSet *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (selector_compare(&a->items[i], &b->items[i]) != 0)
                        return false;
        return true;
}

static bool entry_info_equal(const EntryInfo *a, const EntryInfo *b) {
        return streq(a->entry_id, b->entry_id) && streq(a->spiffe_id, b->spiffe_id) &&
               streq_ptr(a->hint, b->hint) && a->created_at == b->created_at &&
               a->jwt_svid_ttl == b->jwt_svid_ttl &&
               selector_set_equal(&a->selectors, &b->selectors) &&
               strv_equal(a->federates_with, a->n_federates_with, b->federates_with,
                          b->n_federates_with);
}

/* Checks an entry from the server and copies what the agent needs. Returns 0 with
 * *ret NULL for an entry no workload can match (node alias, no selectors, expired,
 * not active); -EINVAL + reason for an invalid one. */
int managed_entry_from_pb(Manager *m,
                          const Warden__Types__V1__Entry *pb,
                          ManagedEntry **ret,
                          const char **reterr_reason) {
        _cleanup_(managed_entry_freep) ManagedEntry *e = NULL;
        int r;

        *ret = NULL;
        if (!pb->id || !*pb->id || strlen(pb->id) > MANAGER_ENTRY_ID_MAX)
                return *reterr_reason = "bad entry ID", -EINVAL;
        if (warden_spiffeid_validate_workload(pb->spiffe_id, reterr_reason) < 0)
                return -EINVAL;
        if (!warden_spiffeid_member_of(pb->spiffe_id, m->trust_domain))
                return *reterr_reason = "SPIFFE ID of another trust domain", -EINVAL;
        if (pb->n_dns_names > WARDEN_SVID_DNS_NAMES_MAX ||
            pb->n_federates_with > MANAGER_FEDERATES_WITH_MAX)
                return *reterr_reason = "too many DNS names or federated trust domains", -EINVAL;
        for (size_t i = 0; i < pb->n_federates_with; i++)
                if (warden_trust_domain_validate(pb->federates_with[i], reterr_reason) < 0)
                        return -EINVAL;
        if (pb->node || pb->n_selectors == 0 ||
            (pb->expires_at > 0 && pb->expires_at <= manager_now(m)) ||
            (pb->state && *pb->state && !streq(pb->state, "active")))
                return 0;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = entry_info_from_pb(pb, &e->info, reterr_reason);
        if (r < 0)
                return r;
        r = strv_copy(pb->dns_names, pb->n_dns_names, &e->dns_names);
        if (r < 0)
                return r;
        e->n_dns_names = pb->n_dns_names;
        e->x509_ttl = pb->x509_svid_ttl;
        e->revision = pb->revision;
        *ret = TAKE_PTR(e);
        return 0;
}

/* Moves the SVID state of old into new when it is still good for new. */
void managed_entry_carry_over(ManagedEntry *old, ManagedEntry *new) {
        new->sign_gen = old->sign_gen;
        new->in_flight = old->in_flight;
        new->failures = old->failures;
        new->retry_at = old->retry_at;
        new->stale =
                old->stale || old->revision != new->revision || old->x509_ttl != new->x509_ttl ||
                !strv_equal(old->dns_names, old->n_dns_names, new->dns_names, new->n_dns_names);
        if (!streq(managed_entry_spiffe_id(old), managed_entry_spiffe_id(new))) {
                /* Another identity: the old SVID must not be served under it. */
                new->stale = true;
                return;
        }
        new->svid = TAKE_PTR(old->svid);
        new->renew_at = old->renew_at;
        if (entry_info_equal(old->info, new->info)) {
                /* The same entry sent again (a full snapshot): keep what snapshots share. */
                EntryInfo *t = old->info;

                old->info = new->info;
                new->info = t;
                new->pub = TAKE_PTR(old->pub);
        }
}
