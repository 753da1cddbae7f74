/* SPDX-License-Identifier: Apache-2.0 */
#include "entry_pb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "strv.h"

static char *nullable_strdup(const char *s, int *r) {
        char *c;

        if (!s || !*s)
                return NULL;
        c = strdup(s);
        if (!c)
                *r = -ENOMEM;
        return c;
}

static int entry_strings_to_pb(const Entry *e, Warden__Types__V1__Entry *pb) {
        int r;

        pb->id = pb_strdup(e->id);
        pb->spiffe_id = pb_strdup(e->spiffe_id);
        pb->parent_id = pb_strdup(e->parent_id);
        pb->hint = pb_strdup(e->hint);
        pb->env = pb_strdup(e->env);
        pb->task = pb_strdup(e->task);
        pb->state = pb_strdup(e->state);
        pb->created_by = pb_strdup(e->created_by);
        pb->approved_by = pb_strdup(e->approved_by);
        if (!pb->id || !pb->spiffe_id || !pb->parent_id || !pb->hint || !pb->env || !pb->task ||
            !pb->state || !pb->created_by || !pb->approved_by)
                return -ENOMEM;
        r = strv_copy(e->dns_names, e->n_dns_names, &pb->dns_names);
        if (r < 0)
                return r;
        pb->n_dns_names = e->n_dns_names;
        r = strv_copy(e->federates_with, e->n_federates_with, &pb->federates_with);
        if (r < 0)
                return r;
        pb->n_federates_with = e->n_federates_with;
        r = strv_copy(e->scopes, e->n_scopes, &pb->scopes);
        if (r < 0)
                return r;
        pb->n_scopes = e->n_scopes;
        return 0;
}

int entry_to_pb(const Entry *e, Warden__Types__V1__Entry **ret) {
        Warden__Types__V1__Entry *pb = calloc(1, sizeof(*pb));
        int r;

        if (!pb)
                return -ENOMEM;
        warden__types__v1__entry__init(pb);
        /* Make every string field NULL first: pb_free() then frees only what we set. */
        pb->id = pb->spiffe_id = pb->parent_id = pb->hint = NULL;
        pb->env = pb->task = pb->state = pb->created_by = pb->approved_by = NULL;
        r = entry_strings_to_pb(e, pb);
        if (r >= 0)
                r = pb_from_selectors(&e->selectors, &pb->selectors, &pb->n_selectors);
        if (r < 0) {
                pb_free(pb);
                return r;
        }
        pb->x509_svid_ttl = e->x509_svid_ttl;
        pb->jwt_svid_ttl = e->jwt_svid_ttl;
        pb->admin = e->admin;
        pb->node = e->node;
        pb->downstream = e->downstream;
        pb->expires_at = e->expires_at;
        pb->revision = e->revision;
        pb->created_at = e->created_at;
        *ret = pb;
        return 0;
}

static int entry_lists_from_pb(const Warden__Types__V1__Entry *pb, Entry *e) {
        int r;

        for (size_t i = 0; i < pb->n_dns_names; i++) {
                r = entry_add_dns_name(e, pb->dns_names[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < pb->n_federates_with; i++) {
                r = entry_add_federates_with(e, pb->federates_with[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < pb->n_scopes; i++) {
                r = entry_add_scope(e, pb->scopes[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int entry_new_from_pb(const Warden__Types__V1__Entry *pb, Entry **ret, const char **reterr_reason) {
        _cleanup_(entry_freep) Entry *e = NULL;
        int r = entry_new(&e);

        if (r < 0)
                return r;
        e->id = nullable_strdup(pb->id, &r);
        e->spiffe_id = nullable_strdup(pb->spiffe_id, &r);
        e->parent_id = nullable_strdup(pb->parent_id, &r);
        e->hint = nullable_strdup(pb->hint, &r);
        e->env = nullable_strdup(pb->env, &r);
        e->task = nullable_strdup(pb->task, &r);
        e->state = nullable_strdup(pb->state, &r);
        e->created_by = nullable_strdup(pb->created_by, &r);
        e->approved_by = nullable_strdup(pb->approved_by, &r);
        if (r < 0)
                return r;
        r = pb_to_selectors(pb->selectors, pb->n_selectors, &e->selectors, reterr_reason);
        if (r < 0)
                return r;
        r = entry_lists_from_pb(pb, e);
        if (r < 0) {
                if (r == -EINVAL && reterr_reason)
                        *reterr_reason = "invalid list value";
                return r;
        }
        e->x509_svid_ttl = pb->x509_svid_ttl;
        e->jwt_svid_ttl = pb->jwt_svid_ttl;
        e->admin = pb->admin;
        e->node = pb->node;
        e->downstream = pb->downstream;
        e->expires_at = pb->expires_at;
        e->revision = pb->revision;
        e->created_at = pb->created_at;
        *ret = TAKE_PTR(e);
        return 0;
}
