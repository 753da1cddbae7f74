/* SPDX-License-Identifier: Apache-2.0 */
/* Refusing entries that can only go wrong, and comparing an update with what is stored. */
#define _GNU_SOURCE

#include "entry_policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "parse.h"
#include "strv.h"

typedef struct KnownSelector {
        const char *type;
        const char *key;
        bool node; /* produced by node attestation (node aliases), else by the workload attestor */
} KnownSelector;

static const KnownSelector known_selectors[] = {
        {"unix", "uid", false},
        {"unix", "user", false},
        {"unix", "gid", false},
        {"unix", "group", false},
        {"unix", "supplementary_gid", false},
        {"unix", "supplementary_group", false},
        {"unix", "path", false},
        {"unix", "sha256", false},
        {"systemd", "id", false},
        {"systemd", "fragment_path", false},
        {"warden", "agent_id", true},
        {"x509pop", "subject:cn", true},
        {"x509pop", "ca:fingerprint", true},
        {"x509pop", "san:dns", true},
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t n, const char *fmt, ...) {
        va_list ap;
        int k;

        k = snprintf(err, n, "invalid entry: ");
        va_start(ap, fmt);
        if (k >= 0 && (size_t) k < n)
                (void) vsnprintf(err + k, n - (size_t) k, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static const KnownSelector *find_known(const Selector *s) {
        for (size_t i = 0; i < ELEMENTSOF(known_selectors); i++) {
                const KnownSelector *k = &known_selectors[i];
                size_t len = strlen(k->key);
                if (streq(k->type, s->type) && strneq(s->value, k->key, len) &&
                    s->value[len] == ':' && s->value[len + 1] != '\0')
                        return k;
        }
        return NULL;
}

/* "unix:uid, unix:user, ..." of one kind into buf. */
static const char *known_list(bool node, char *buf, size_t n) {
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(known_selectors); i++) {
                const KnownSelector *k = &known_selectors[i];
                int w;
                if (k->node != node)
                        continue;
                w = snprintf(buf + len, n - len, "%s%s:%s", len ? ", " : "", k->type, k->key);
                if (w < 0 || (size_t) w >= n - len)
                        break;
                len += (size_t) w;
        }
        return buf;
}

static bool known_type(const char *type) {
        for (size_t i = 0; i < ELEMENTSOF(known_selectors); i++)
                if (streq(known_selectors[i].type, type))
                        return true;
        return false;
}

/* "uid:1000" was meant as "unix:uid:1000": the type is a unix key. */
static bool looks_like_unix_key(const char *type) {
        for (size_t i = 0; i < ELEMENTSOF(known_selectors); i++)
                if (streq(known_selectors[i].type, "unix") && streq(known_selectors[i].key, type))
                        return true;
        return false;
}

static int check_selector(const Selector *s, bool node, char *err, size_t n) {
        const KnownSelector *k = find_known(s);
        char list[256], hint[128] = "";

        if (k && k->node == node)
                return 0;
        if (k && node)
                return fail(err, n,
                            "selector \"%s:%s\" is a workload selector, but node aliases match "
                            "agents, by %s",
                            s->type, s->value, known_list(true, list, sizeof(list)));
        if (k)
                return fail(err, n,
                            "selector \"%s:%s\" matches agents, not workloads: use it on a node "
                            "alias (-node); workload entries take %s",
                            s->type, s->value, known_list(false, list, sizeof(list)));
        if (!node && looks_like_unix_key(s->type))
                snprintf(hint, sizeof(hint), " (did you mean \"unix:%s:%s\"?)", s->type, s->value);
        return fail(err, n,
                    "selector \"%s:%s\": no attestor produces %s \"%s\"%s; %s take %s "
                    "(-allowUnknownSelectorType stores it anyway)",
                    s->type, s->value, known_type(s->type) ? "this key of type" : "type", s->type,
                    hint, node ? "node aliases" : "workload entries",
                    known_list(node, list, sizeof(list)));
}

static int check_selectors(
        const EntryPolicy *p, const Entry *e, const Entry *old, char *err, size_t n) {
        int r;

        if (p->allow_unknown_selector_types)
                return 0;
        FOREACH_SELECTOR(s, &e->selectors) {
                /* Kept from the stored entry (and its node flag): not re-judged. */
                if (old && old->node == e->node && selector_set_contains(&old->selectors, s))
                        continue;
                r = check_selector(s, e->node, err, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool strv_contains(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

static int check_federation(
        const EntryPolicy *p, const Entry *e, const Entry *old, char *err, size_t n) {
        for (size_t i = 0; i < e->n_federates_with; i++) {
                const char *td = e->federates_with[i];
                _cleanup_free_ uint8_t *data = NULL;
                size_t len = 0;
                int r;

                if (old && strv_contains(old->federates_with, old->n_federates_with, td))
                        continue;
                r = ds_get_bundle(p->ds, td, &data, &len);
                if (r == -ENOENT)
                        return fail(err, n,
                                    "federates_with \"%s\": this server has no bundle for that "
                                    "trust domain (store its bundle first)",
                                    td);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A TTL below the minimum, unless it is the stored one (old_ttl, when !is_new). */
static int check_ttl(const char *field,
                     int32_t ttl,
                     int32_t old_ttl,
                     bool is_new,
                     int64_t min,
                     const char *flag,
                     char *err,
                     size_t n) {
        char a[DURATION_STRING_MAX], b[DURATION_STRING_MAX];

        if (ttl <= 0 || ttl >= min || (!is_new && ttl == old_ttl))
                return 0;
        return fail(err, n, "%s %s is shorter than the server's minimum %s (%s)", field,
                    format_duration(ttl, a, sizeof(a)), format_duration(min, b, sizeof(b)), flag);
}

int entry_policy_check(
        const EntryPolicy *p, const Entry *e, const Entry *old, char *err, size_t err_size) {
        char a[TIMESTAMP_STRING_MAX], b[TIMESTAMP_STRING_MAX];
        int r;

        r = check_selectors(p, e, old, err, err_size);
        if (r >= 0)
                r = check_federation(p, e, old, err, err_size);
        if (r < 0)
                return r;
        if (e->expires_at > 0 && e->expires_at <= p->now &&
            (!old || old->expires_at != e->expires_at))
                return fail(err, err_size, "expires_at %s is in the past (now %s)",
                            format_timestamp(e->expires_at, a, sizeof(a)),
                            format_timestamp(p->now, b, sizeof(b)));
        r = check_ttl("x509_svid_ttl", e->x509_svid_ttl, old ? old->x509_svid_ttl : 0, !old,
                      p->min_x509_ttl, "-minX509SVIDTTL", err, err_size);
        if (r >= 0)
                r = check_ttl("jwt_svid_ttl", e->jwt_svid_ttl, old ? old->jwt_svid_ttl : 0, !old,
                              p->min_jwt_ttl, "-minJWTSVIDTTL", err, err_size);
        return r;
}

static bool str_same(const char *a, const char *b) {
        return streq(strempty(a), strempty(b));
}

static bool selectors_same(const SelectorSet *a, const SelectorSet *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (selector_compare(&a->items[i], &b->items[i]) != 0)
                        return false;
        return true;
}

bool entry_same_content(const Entry *a, const Entry *b) {
        return str_same(a->spiffe_id, b->spiffe_id) && str_same(a->parent_id, b->parent_id) &&
               selectors_same(&a->selectors, &b->selectors) &&
               a->x509_svid_ttl == b->x509_svid_ttl && a->jwt_svid_ttl == b->jwt_svid_ttl &&
               strv_equal(a->dns_names, a->n_dns_names, b->dns_names, b->n_dns_names) &&
               strv_equal(a->federates_with, a->n_federates_with, b->federates_with,
                          b->n_federates_with) &&
               str_same(a->hint, b->hint) && a->admin == b->admin && a->node == b->node &&
               a->downstream == b->downstream && a->expires_at == b->expires_at &&
               str_same(a->env, b->env) && str_same(a->task, b->task) &&
               strv_equal(a->scopes, a->n_scopes, b->scopes, b->n_scopes);
}
