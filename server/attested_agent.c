/* SPDX-License-Identifier: Apache-2.0 */
#include "attested_agent.h"

#include <errno.h>
#include <stdlib.h>

#include "pb_util.h"
#include "str.h"

int attested_agent_new(AttestedAgent **ret) {
        AttestedAgent *a = calloc(1, sizeof(AttestedAgent));

        if (!a)
                return -ENOMEM;
        *ret = a;
        return 0;
}

AttestedAgent *attested_agent_free(AttestedAgent *a) {
        if (!a)
                return NULL;
        free(a->spiffe_id);
        free(a->attestation_type);
        free(a->serial);
        selector_set_done(&a->selectors);
        free(a);
        return NULL;
}

int attested_agent_copy(const AttestedAgent *a, AttestedAgent **ret) {
        _cleanup_(attested_agent_freep) AttestedAgent *c = NULL;
        int r;

        if (!a)
                return -EINVAL;
        r = attested_agent_new(&c);
        if (r < 0)
                return r;
        if ((r = str_dup_opt(a->spiffe_id, &c->spiffe_id)) < 0 ||
            (r = str_dup_opt(a->attestation_type, &c->attestation_type)) < 0 ||
            (r = str_dup_opt(a->serial, &c->serial)) < 0 ||
            (r = selector_set_copy(&a->selectors, &c->selectors)) < 0)
                return r;
        c->svid_expires_at = a->svid_expires_at;
        c->banned = a->banned;
        c->created_at = a->created_at;
        c->last_seen_at = a->last_seen_at;
        *ret = TAKE_PTR(c);
        return 0;
}

AttestedAgent **attested_agent_array_free(AttestedAgent **a, size_t n) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                attested_agent_free(a[i]);
        free(a);
        return NULL;
}

int attested_agent_to_pb(const AttestedAgent *a, Warden__Types__V1__AttestedAgent **ret) {
        Warden__Types__V1__AttestedAgent *pb = calloc(1, sizeof(*pb));
        int r;

        if (!pb)
                return -ENOMEM;
        warden__types__v1__attested_agent__init(pb);
        pb->spiffe_id = pb_strdup(a->spiffe_id);
        pb->attestation_type = pb_strdup(a->attestation_type);
        pb->x509_svid_serial = pb_strdup(a->serial);
        r = (!pb->spiffe_id || !pb->attestation_type || !pb->x509_svid_serial) ? -ENOMEM : 0;
        if (r >= 0)
                r = pb_from_selectors(&a->selectors, &pb->selectors, &pb->n_selectors);
        if (r < 0) {
                pb_free(pb);
                return r;
        }
        pb->x509_svid_expires_at = a->svid_expires_at;
        pb->banned = a->banned;
        pb->created_at = a->created_at;
        pb->last_seen_at = a->last_seen_at;
        *ret = pb;
        return 0;
}
