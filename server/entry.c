/* SPDX-License-Identifier: Apache-2.0 */
#include "entry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "str.h"
#include "strv.h"

int entry_new(Entry **ret) {
        Entry *e = calloc(1, sizeof(Entry));

        if (!e)
                return -ENOMEM;
        *ret = e;
        return 0;
}

Entry *entry_free(Entry *e) {
        if (!e)
                return NULL;
        free(e->id);
        free(e->spiffe_id);
        free(e->parent_id);
        selector_set_done(&e->selectors);
        strv_free(e->dns_names, e->n_dns_names);
        strv_free(e->federates_with, e->n_federates_with);
        free(e->hint);
        free(e->env);
        free(e->task);
        free(e->state);
        free(e->created_by);
        free(e->approved_by);
        strv_free(e->scopes, e->n_scopes);
        free(e);
        return NULL;
}

Entry **entry_array_free(Entry **a, size_t n) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                entry_free(a[i]);
        free(a);
        return NULL;
}

static int entry_copy_strings(const Entry *e, Entry *c) {
        int r;

        if ((r = str_dup_opt(e->id, &c->id)) < 0 ||
            (r = str_dup_opt(e->spiffe_id, &c->spiffe_id)) < 0 ||
            (r = str_dup_opt(e->parent_id, &c->parent_id)) < 0 ||
            (r = str_dup_opt(e->hint, &c->hint)) < 0 || (r = str_dup_opt(e->env, &c->env)) < 0 ||
            (r = str_dup_opt(e->task, &c->task)) < 0 ||
            (r = str_dup_opt(e->state, &c->state)) < 0 ||
            (r = str_dup_opt(e->created_by, &c->created_by)) < 0 ||
            (r = str_dup_opt(e->approved_by, &c->approved_by)) < 0)
                return r;
        return 0;
}

int entry_copy(const Entry *e, Entry **ret) {
        _cleanup_(entry_freep) Entry *c = NULL;
        int r;

        if (!e)
                return -EINVAL;
        r = entry_new(&c);
        if (r < 0)
                return r;
        r = entry_copy_strings(e, c);
        if (r < 0)
                return r;
        r = selector_set_copy(&e->selectors, &c->selectors);
        if (r < 0)
                return r;
        r = strv_copy(e->dns_names, e->n_dns_names, &c->dns_names);
        if (r < 0)
                return r;
        c->n_dns_names = e->n_dns_names;
        r = strv_copy(e->federates_with, e->n_federates_with, &c->federates_with);
        if (r < 0)
                return r;
        c->n_federates_with = e->n_federates_with;
        r = strv_copy(e->scopes, e->n_scopes, &c->scopes);
        if (r < 0)
                return r;
        c->n_scopes = e->n_scopes;

        c->x509_svid_ttl = e->x509_svid_ttl;
        c->jwt_svid_ttl = e->jwt_svid_ttl;
        c->admin = e->admin;
        c->node = e->node;
        c->downstream = e->downstream;
        c->expires_at = e->expires_at;
        c->revision = e->revision;
        c->created_at = e->created_at;
        *ret = TAKE_PTR(c);
        return 0;
}

int entry_add_dns_name(Entry *e, const char *name) {
        return strv_push(&e->dns_names, &e->n_dns_names, name);
}

int entry_add_federates_with(Entry *e, const char *td) {
        return strv_push(&e->federates_with, &e->n_federates_with, td);
}

int entry_add_scope(Entry *e, const char *scope) {
        return strv_push(&e->scopes, &e->n_scopes, scope);
}

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int entry_dns_name_validate(const char *name, const char **reterr_reason) {
        /* The same rules the CA applies when it puts the names into an SVID. */
        return warden_dns_name_validate(name, reterr_reason);
}

int entry_id_validate(const char *id) {
        size_t len;

        if (!id)
                return -EINVAL;
        len = strlen(id);
        if (len == 0 || len > ENTRY_ID_MAX)
                return -EINVAL;
        for (size_t i = 0; i < len; i++)
                if (!is_alnum(id[i]) && id[i] != '-' && id[i] != '_')
                        return -EINVAL;
        return 0;
}

static bool one_of(const char *s, const char *const *allowed, size_t n) {
        if (!s || !*s)
                return true;
        for (size_t i = 0; i < n; i++)
                if (streq(s, allowed[i]))
                        return true;
        return false;
}

static bool printable(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
                        return false;
        return true;
}

bool entry_spiffe_id_is_reserved(const char *spiffe_id) {
        static const char scheme[] = "spiffe://";
        size_t n = strlen(ENTRY_RESERVED_PATH);
        const char *path;

        if (!spiffe_id || !strneq(spiffe_id, scheme, strlen(scheme)))
                return false;
        path = strchr(spiffe_id + strlen(scheme), '/');
        return path && strneq(path, ENTRY_RESERVED_PATH, n) && (path[n] == '\0' || path[n] == '/');
}

/* Valid UTF-8 (as jansson checks it: no overlong forms, no surrogates) without ASCII
 * control characters: what a proto3 string that clients parse strictly may carry. */
static bool printable_utf8(const char *s) {
        json_t *v;

        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        v = json_string(s);
        json_decref(v);
        return v != NULL;
}

static const char *validate_ids(const Entry *e, const char *td) {
        if (e->id && entry_id_validate(e->id) < 0)
                return "invalid entry id";
        if (!e->spiffe_id || warden_spiffeid_validate_workload(e->spiffe_id, NULL) < 0)
                return "spiffe_id is not a valid workload SPIFFE ID";
        if (!warden_spiffeid_member_of(e->spiffe_id, td))
                return "spiffe_id is not in the server's trust domain";
        if (entry_spiffe_id_is_reserved(e->spiffe_id))
                return "spiffe_id is in the reserved /warden namespace";
        if (!e->parent_id || warden_spiffeid_validate(e->parent_id, NULL) < 0)
                return "parent_id is not a valid SPIFFE ID";
        if (!warden_spiffeid_member_of(e->parent_id, td))
                return "parent_id is not in the server's trust domain";
        return NULL;
}

static const char *validate_lists(const Entry *e, const char *td) {
        if (e->selectors.n == 0)
                return "entry has no selectors";
        if (e->selectors.n > ENTRY_SELECTORS_MAX)
                return "too many selectors";
        for (size_t i = 0; i < e->selectors.n; i++) {
                const Selector *s = &e->selectors.items[i];
                if (!s->type || !s->value || selector_validate(s->type, s->value, NULL) < 0)
                        return "invalid selector";
        }
        if (e->n_dns_names > ENTRY_DNS_NAMES_MAX)
                return "too many DNS names";
        for (size_t i = 0; i < e->n_dns_names; i++)
                if (entry_dns_name_validate(e->dns_names[i], NULL) < 0)
                        return "invalid DNS name";
        if (e->n_federates_with > ENTRY_FEDERATES_WITH_MAX)
                return "too many federates_with trust domains";
        for (size_t i = 0; i < e->n_federates_with; i++) {
                if (warden_trust_domain_validate(e->federates_with[i], NULL) < 0)
                        return "federates_with is not a valid trust domain";
                if (streq(e->federates_with[i], td))
                        return "federates_with names the server's own trust domain";
        }
        if (e->n_scopes > ENTRY_SCOPES_MAX)
                return "too many scopes";
        for (size_t i = 0; i < e->n_scopes; i++) {
                const char *s = e->scopes[i];
                if (!s || !*s || strlen(s) > ENTRY_SCOPE_MAX || !printable(s))
                        return "invalid scope";
        }
        return NULL;
}

static const char *validate_scalars(const Entry *e) {
        static const char *const envs[] = {"dev", "test", "prod"};
        static const char *const states[] = {"active", "pending_approval", "revoked"};

        if (e->x509_svid_ttl < 0)
                return "x509_svid_ttl is negative";
        if (e->x509_svid_ttl > ENTRY_TTL_MAX)
                return "x509_svid_ttl is longer than a year";
        if (e->jwt_svid_ttl < 0)
                return "jwt_svid_ttl is negative";
        if (e->jwt_svid_ttl > ENTRY_TTL_MAX)
                return "jwt_svid_ttl is longer than a year";
        if (e->expires_at < 0)
                return "expires_at is negative";
        if (e->hint && strlen(e->hint) > ENTRY_HINT_MAX)
                return "hint is too long";
        if (e->hint && !printable_utf8(e->hint))
                return "hint is not printable UTF-8 text";
        if (!one_of(e->env, envs, ELEMENTSOF(envs)))
                return "env must be dev, test or prod";
        if (!one_of(e->state, states, ELEMENTSOF(states)))
                return "state must be active, pending_approval or revoked";
        if (e->task && (strlen(e->task) > ENTRY_TASK_MAX || !printable(e->task)))
                return "invalid task";
        if (e->created_by && strlen(e->created_by) > ENTRY_ACTOR_MAX)
                return "created_by is too long";
        if (e->approved_by && strlen(e->approved_by) > ENTRY_ACTOR_MAX)
                return "approved_by is too long";
        return NULL;
}

int entry_validate(const Entry *e, const char *trust_domain, const char **reterr_reason) {
        const char *reason;

        if (!e)
                reason = "no entry";
        else if (!trust_domain || warden_trust_domain_validate(trust_domain, NULL) < 0)
                reason = "invalid server trust domain";
        else if (!(reason = validate_ids(e, trust_domain)) &&
                 !(reason = validate_lists(e, trust_domain)))
                reason = validate_scalars(e);
        if (!reason)
                return 0;
        if (reterr_reason)
                *reterr_reason = reason;
        return -EINVAL;
}
