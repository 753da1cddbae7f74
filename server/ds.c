/* SPDX-License-Identifier: Apache-2.0 */
/* Datastore front end: argument checks, ids, timestamps and token hashing, then
 * dispatch to the backend (ds_internal.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <warden/spiffeid.h>

#include "ds_internal.h"
#include "greedy_realloc.h"
#include "log.h"
#include "metrics.h"
#include "ossl_cleanup.h"
#include "strv.h"

static int64_t now_seconds(void) {
        return (int64_t) time(NULL);
}

/* ---- timing (ds_set_metrics) ---- */

static double ds_clock(const Datastore *ds) {
        return ds->seconds ? metrics_now() : 0;
}

static void ds_observe(const Datastore *ds, const char *op, double start) {
        if (ds->seconds)
                (void) metrics_histogram_observe_since(ds->seconds, METRICS_LABELS(op), start);
}

/* ds->ops->op(ds, ...), timed under the label "op". */
#define DS_OP(ds, op, ...)                                                                         \
        ({                                                                                         \
                double _t0 = ds_clock(ds);                                                         \
                int _r = (ds)->ops->op((ds), __VA_ARGS__);                                         \
                ds_observe((ds), #op, _t0);                                                        \
                _r;                                                                                \
        })

void ds_set_metrics(Datastore *ds, Metric *seconds) {
        if (ds)
                ds->seconds = seconds;
}

/* ---- helpers shared with the backends ---- */

int ds_ptr_array_push(void ***array, size_t *n, size_t *allocated, void *p) {
        int r = GREEDY_REALLOC(*array, *allocated, *n + 1);

        if (r < 0)
                return r;
        (*array)[(*n)++] = p;
        return 0;
}

static int selector_cmp(const void *a, const void *b) {
        const Selector *x = *(const Selector *const *) a, *y = *(const Selector *const *) b;
        int c = strcmp(x->type, y->type);

        return c != 0 ? c : strcmp(x->value, y->value);
}

int ds_selectors_key(const SelectorSet *set, char **ret) {
        _cleanup_free_ const Selector **sorted = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 1, len = 0;

        if (!set || set->n == 0)
                return -EINVAL;
        sorted = calloc(set->n, sizeof(Selector *));
        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < set->n; i++) {
                sorted[i] = &set->items[i];
                size += strlen(sorted[i]->type) + strlen(sorted[i]->value) + 2 * 21 + 2;
        }
        qsort(sorted, set->n, sizeof(Selector *), selector_cmp);
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        buf[0] = '\0';
        for (size_t i = 0; i < set->n; i++) {
                const Selector *s = sorted[i];
                if (i > 0 && selector_cmp(&sorted[i - 1], &sorted[i]) == 0)
                        continue;
                int k = snprintf(buf + len, size - len, "%zu:%s%zu:%s", strlen(s->type), s->type,
                                 strlen(s->value), s->value);
                if (k < 0 || (size_t) k >= size - len)
                        return -EIO;
                len += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

bool ds_selectors_contain_all(const SelectorSet *have, const SelectorSet *want) {
        return want->n == 0 || selector_set_is_subset(want, have);
}

static int new_entry_id(char **ret) {
        uint8_t raw[16];
        char *id;

        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return ossl_to_errno(-EIO);
        id = malloc(2 * sizeof(raw) + 1);
        if (!id)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(raw); i++)
                sprintf(id + 2 * i, "%02x", raw[i]);
        *ret = id;
        return 0;
}

static int hash_token(const char *token, uint8_t hash[DS_TOKEN_HASH_SIZE]) {
        unsigned int len = 0;

        if (EVP_Digest(token, strlen(token), hash, &len, EVP_sha256(), NULL) != 1 ||
            len != DS_TOKEN_HASH_SIZE)
                return ossl_to_errno(-EIO);
        return 0;
}

static bool str_ok(const char *s, size_t max) {
        return s && *s && strlen(s) <= max;
}

static bool strv_ok(char *const *v, size_t n, size_t cap, size_t max) {
        if (n > cap || (n > 0 && !v))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!str_ok(v[i], max))
                        return false;
        return true;
}

static bool selectors_ok(const SelectorSet *set, size_t min, size_t max) {
        if (set->n < min || set->n > max || (set->n > 0 && !set->items))
                return false;
        for (size_t i = 0; i < set->n; i++)
                if (!set->items[i].type || !set->items[i].value ||
                    selector_validate(set->items[i].type, set->items[i].value, NULL) < 0)
                        return false;
        return true;
}

/* What the datastore needs to store an entry; entry_validate() does the rest. */
static int entry_check_storable(const Entry *e) {
        if (!e || !str_ok(e->spiffe_id, WARDEN_SPIFFEID_MAX) ||
            !str_ok(e->parent_id, WARDEN_SPIFFEID_MAX) ||
            !selectors_ok(&e->selectors, 1, ENTRY_SELECTORS_MAX) ||
            !strv_ok(e->dns_names, e->n_dns_names, ENTRY_DNS_NAMES_MAX, DNS_NAME_MAX) ||
            !strv_ok(e->federates_with, e->n_federates_with, ENTRY_FEDERATES_WITH_MAX,
                     WARDEN_TRUST_DOMAIN_MAX) ||
            !strv_ok(e->scopes, e->n_scopes, ENTRY_SCOPES_MAX, ENTRY_SCOPE_MAX))
                return -EINVAL;
        if (e->id && entry_id_validate(e->id) < 0)
                return -EINVAL;
        return 0;
}

/* ---- audit records staged for the backend write (ds_internal.h) ---- */

static int stage_entry(Datastore *ds, const char *kind, const char *spiffe_id, const char *id) {
        _cleanup_free_ char *q = NULL, *data = NULL;
        int r;

        r = ds_json_quote(id, &q);
        if (r < 0)
                return r;
        if (asprintf(&data, "{\"id\":%s}", q) < 0)
                return -ENOMEM;
        return ds_audit_stage(ds, kind, spiffe_id, data);
}

/* Never the token: its SHA-256. */
static int stage_token(Datastore *ds,
                       const uint8_t hash[DS_TOKEN_HASH_SIZE],
                       int64_t expires_at,
                       const char *alias) {
        char hex[DS_TOKEN_HASH_SIZE * 2 + 1], data[160];

        for (size_t i = 0; i < DS_TOKEN_HASH_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", hash[i]);
        snprintf(data, sizeof(data), "{\"token_sha256\":\"%s\",\"expires_at\":%lld}", hex,
                 (long long) expires_at);
        return ds_audit_stage(ds, "token.create", alias ? alias : "", data);
}

/* ---- lifecycle ---- */

Datastore *ds_close(Datastore *ds) {
        if (ds) {
                ds_audit_unstage(ds, true);
                ds->ops->close(ds);
        }
        return NULL;
}

int ds_schema_version(Datastore *ds) {
        if (!ds)
                return -EINVAL;
        return ds->ops->schema_version(ds);
}

int ds_change_sequence(Datastore *ds, uint64_t *ret) {
        if (!ds || !ret)
                return -EINVAL;
        return DS_OP(ds, change_sequence, ret);
}

/* ---- change events ---- */

int ds_list_events(Datastore *ds, uint64_t after_id, size_t limit, DsEvent **ret, size_t *ret_n) {
        if (!ds || !ret || !ret_n || limit == 0 || limit > DS_EVENTS_PAGE_MAX)
                return -EINVAL;
        return DS_OP(ds, list_events, after_id, limit, ret, ret_n);
}

void ds_event_array_free(DsEvent *events, size_t n) {
        if (!events)
                return;
        for (size_t i = 0; i < n; i++)
                free(events[i].key);
        free(events);
}

int ds_last_event_id(Datastore *ds, uint64_t *ret) {
        if (!ds || !ret)
                return -EINVAL;
        return DS_OP(ds, last_event_id, ret);
}

int ds_prune_events(Datastore *ds, int64_t before) {
        if (!ds)
                return -EINVAL;
        return DS_OP(ds, prune_events, before);
}

/* ---- entries ---- */

static int create_entries_prepare(Entry *const *entries, size_t n, char **ids, size_t *reterr) {
        int r;

        for (size_t i = 0; i < n; i++) {
                r = entry_check_storable(entries[i]);
                if (r < 0) {
                        *reterr = i;
                        return r;
                }
                if (entries[i]->id) {
                        ids[i] = strdup(entries[i]->id);
                        r = ids[i] ? 0 : -ENOMEM;
                } else
                        r = new_entry_id(&ids[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int ds_create_entries(Datastore *ds, Entry *const *entries, size_t n, size_t *reterr_index) {
        char **ids = NULL;
        size_t bad = n;
        int64_t now = now_seconds();
        int r;

        if (!ds || !entries || n == 0) {
                r = -EINVAL;
                goto out;
        }
        if (n > DS_BATCH_MAX) {
                r = -E2BIG;
                goto out;
        }
        ids = calloc(n, sizeof(char *));
        if (!ids) {
                r = -ENOMEM;
                goto out;
        }
        r = create_entries_prepare(entries, n, ids, &bad);
        if (r < 0)
                goto out;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = stage_entry(ds, "entry.create", entries[i]->spiffe_id, ids[i]);
        if (r >= 0)
                r = DS_OP(ds, create_entries, entries, ids, n, now, &bad);
        ds_audit_unstage(ds, false);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                free(entries[i]->id);
                entries[i]->id = TAKE_PTR(ids[i]);
                entries[i]->revision = 1;
                entries[i]->created_at = now;
        }
out:
        strv_free(ids, ids ? n : 0);
        if (r < 0 && reterr_index)
                *reterr_index = bad < n ? bad : n;
        return r;
}

int ds_get_entry(Datastore *ds, const char *id, Entry **ret) {
        if (!ds || !ret || !id)
                return -EINVAL;
        if (entry_id_validate(id) < 0)
                return -ENOENT; /* could never have been stored */
        return DS_OP(ds, get_entry, id, ret);
}

int ds_list_entries(Datastore *ds, const EntryFilter *f, Entry ***ret, size_t *ret_n) {
        static const EntryFilter all = {};

        if (!ds || !ret || !ret_n)
                return -EINVAL;
        if (f && f->by_selectors && !selectors_ok(f->by_selectors, 0, ENTRY_SELECTORS_MAX))
                return -EINVAL;
        return DS_OP(ds, list_entries, f ? f : &all, ret, ret_n);
}

int ds_list_entries_by_parent_ids(
        Datastore *ds, const char *const *parent_ids, size_t n, Entry ***ret, size_t *ret_n) {
        _cleanup_free_ const char **uniq = NULL;
        size_t m = 0;

        if (!ds || !ret || !ret_n || (n > 0 && !parent_ids))
                return -EINVAL;
        if (n > 0) {
                uniq = calloc(n, sizeof(char *));
                if (!uniq)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                bool dup = false;
                if (!parent_ids[i])
                        return -EINVAL;
                for (size_t j = 0; j < m && !dup; j++)
                        dup = streq(uniq[j], parent_ids[i]);
                if (!dup)
                        uniq[m++] = parent_ids[i];
        }
        return DS_OP(ds, list_entries_by_parent_ids, uniq, m, ret, ret_n);
}

int ds_update_entry(Datastore *ds, const Entry *e, Entry **ret) {
        int r;

        if (!ds || !e || !e->id)
                return -EINVAL;
        r = entry_check_storable(e);
        if (r < 0)
                return r;
        r = stage_entry(ds, "entry.update", e->spiffe_id, e->id);
        if (r >= 0)
                r = DS_OP(ds, update_entry, e, ret);
        ds_audit_unstage(ds, false);
        return r;
}

int ds_delete_entry(Datastore *ds, const char *id) {
        _cleanup_(entry_freep) Entry *old = NULL;
        int r;

        if (!ds || !id)
                return -EINVAL;
        if (entry_id_validate(id) < 0)
                return -ENOENT;
        r = DS_OP(ds, get_entry, id, &old); /* for the audit record's subject */
        if (r < 0)
                return r;
        r = stage_entry(ds, "entry.delete", old->spiffe_id, id);
        if (r >= 0)
                r = DS_OP(ds, delete_entry, id);
        ds_audit_unstage(ds, false);
        return r;
}

int ds_count_entries(Datastore *ds, int64_t *ret) {
        if (!ds || !ret)
                return -EINVAL;
        return DS_OP(ds, count_entries, ret);
}

/* ---- agents ---- */

static bool is_hex(const char *s) {
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
                      (*s >= 'A' && *s <= 'F')))
                        return false;
        return true;
}

static bool serial_ok(const char *serial) {
        return !serial || (str_ok(serial, DS_SERIAL_MAX) && is_hex(serial));
}

int ds_upsert_agent(Datastore *ds, const AttestedAgent *a) {
        if (!ds || !a || !str_ok(a->spiffe_id, WARDEN_SPIFFEID_MAX) ||
            !str_ok(a->attestation_type, DS_ATTESTATION_TYPE_MAX) || !serial_ok(a->serial) ||
            !selectors_ok(&a->selectors, 0, DS_AGENT_SELECTORS_MAX))
                return -EINVAL;
        return DS_OP(ds, upsert_agent, a, now_seconds());
}

int ds_get_agent(Datastore *ds, const char *spiffe_id, AttestedAgent **ret) {
        if (!ds || !spiffe_id || !ret)
                return -EINVAL;
        return DS_OP(ds, get_agent, spiffe_id, ret);
}

int ds_list_agents(Datastore *ds, AttestedAgent ***ret, size_t *ret_n) {
        return ds_list_agents_page(ds, NULL, 0, ret, ret_n);
}

int ds_list_agents_page(
        Datastore *ds, const char *after_id, size_t limit, AttestedAgent ***ret, size_t *ret_n) {
        if (!ds || !ret || !ret_n || limit > INT64_MAX)
                return -EINVAL;
        return DS_OP(ds, list_agents, strempty(after_id), limit, ret, ret_n);
}

int ds_set_agent_banned(Datastore *ds, const char *spiffe_id, bool banned) {
        int r;

        if (!ds || !spiffe_id)
                return -EINVAL;
        r = ds_audit_stage(ds, banned ? "agent.ban" : "agent.unban", spiffe_id, NULL);
        if (r >= 0)
                r = DS_OP(ds, set_agent_banned, spiffe_id, banned);
        ds_audit_unstage(ds, false);
        return r;
}

int ds_delete_agent(Datastore *ds, const char *spiffe_id) {
        int r;

        if (!ds || !spiffe_id)
                return -EINVAL;
        r = ds_audit_stage(ds, "agent.delete", spiffe_id, NULL);
        if (r >= 0)
                r = DS_OP(ds, delete_agent, spiffe_id);
        ds_audit_unstage(ds, false);
        return r;
}

int ds_update_agent_svid(Datastore *ds,
                         const char *spiffe_id,
                         const char *serial,
                         int64_t expires_at) {
        if (!ds || !spiffe_id || !serial || !serial_ok(serial))
                return -EINVAL;
        return DS_OP(ds, update_agent_svid, spiffe_id, serial, expires_at);
}

int ds_touch_agent(Datastore *ds, const char *spiffe_id, int64_t now) {
        if (!ds || !spiffe_id)
                return -EINVAL;
        return DS_OP(ds, touch_agent, spiffe_id, now);
}

/* ---- join tokens ---- */

int ds_create_join_token(Datastore *ds,
                         const char *token,
                         int64_t expires_at,
                         const char *alias_spiffe_id) {
        uint8_t hash[DS_TOKEN_HASH_SIZE];
        int r;

        if (!ds || !str_ok(token, DS_JOIN_TOKEN_MAX) ||
            (alias_spiffe_id && !str_ok(alias_spiffe_id, WARDEN_SPIFFEID_MAX)))
                return -EINVAL;
        r = hash_token(token, hash);
        if (r < 0)
                return r;
        r = stage_token(ds, hash, expires_at, alias_spiffe_id);
        if (r >= 0)
                r = DS_OP(ds, create_join_token, hash, expires_at, alias_spiffe_id, now_seconds());
        ds_audit_unstage(ds, false);
        return r;
}

int ds_consume_join_token(Datastore *ds, const char *token, int64_t now, JoinToken **ret) {
        _cleanup_(join_token_freep) JoinToken *t = NULL;
        _cleanup_free_ char *alias = NULL;
        uint8_t hash[DS_TOKEN_HASH_SIZE];
        int64_t expires_at = 0;
        int r;

        if (!ds || !token)
                return -EINVAL;
        if (!str_ok(token, DS_JOIN_TOKEN_MAX))
                return -ENOENT; /* could never have been stored */
        r = hash_token(token, hash);
        if (r < 0)
                return r;
        if (ret) {
                /* Allocate before consuming, so a failure cannot lose a used token. */
                t = calloc(1, sizeof(JoinToken));
                if (!t)
                        return -ENOMEM;
                t->token = strdup(token);
                if (!t->token)
                        return -ENOMEM;
        }
        r = DS_OP(ds, consume_join_token, hash, now, &expires_at, &alias);
        if (r < 0)
                return r;
        if (t) {
                t->expires_at = expires_at;
                t->alias_spiffe_id = TAKE_PTR(alias);
                t->used = true;
                *ret = TAKE_PTR(t);
        }
        return 0;
}

int ds_prune_join_tokens(Datastore *ds, int64_t now) {
        if (!ds)
                return -EINVAL;
        return DS_OP(ds, prune_join_tokens, now);
}

/* ---- bundles ---- */

int ds_set_bundle(Datastore *ds, const char *td, const uint8_t *data, size_t len) {
        if (!ds || !td || !data || len == 0 || warden_trust_domain_validate(td, NULL) < 0)
                return -EINVAL;
        if (len > DS_BUNDLE_MAX)
                return -E2BIG;
        return DS_OP(ds, set_bundle, td, data, len, now_seconds());
}

int ds_get_bundle(Datastore *ds, const char *td, uint8_t **ret_data, size_t *ret_len) {
        if (!ds || !td || !ret_data || !ret_len)
                return -EINVAL;
        return DS_OP(ds, get_bundle, td, ret_data, ret_len);
}

int ds_list_bundles(Datastore *ds, BundleRow ***ret, size_t *ret_n) {
        if (!ds || !ret || !ret_n)
                return -EINVAL;
        return DS_OP(ds, list_bundles, ret, ret_n);
}

int ds_delete_bundle(Datastore *ds, const char *td) {
        if (!ds || !td)
                return -EINVAL;
        return DS_OP(ds, delete_bundle, td);
}

/* ---- server metadata ---- */

static bool meta_key_ok(const char *key) {
        if (!str_ok(key, DS_META_KEY_MAX) || streq(key, "change_seq"))
                return false;
        for (const char *p = key; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

int ds_get_meta(Datastore *ds, const char *key, int64_t *ret) {
        if (!ds || !ret || !meta_key_ok(key))
                return -EINVAL;
        return DS_OP(ds, get_meta, key, ret);
}

int ds_set_meta(Datastore *ds, const char *key, int64_t value) {
        if (!ds || !meta_key_ok(key))
                return -EINVAL;
        return DS_OP(ds, set_meta, key, value);
}
