/* SPDX-License-Identifier: Apache-2.0 */
/* The next Sync message for one agent: see sync_delta.h. */
#define _GNU_SOURCE

#include "sync_delta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "entry_pb.h"
#include "greedy_realloc.h"
#include "log.h"
#include "pb_util.h"

uint64_t sync_hash(const void *data, size_t len) {
        const uint8_t *p = data;
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

static void sent_array_free(SyncSent *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].id);
        free(v);
}

static void federated_array_free(SyncFederated *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].trust_domain);
        free(v);
}

void sync_state_done(SyncState *st) {
        if (!st)
                return;
        sent_array_free(st->sent, st->n_sent);
        federated_array_free(st->federated, st->n_federated);
        *st = (SyncState){};
}

static int cmp_sent(const void *a, const void *b) {
        return strcmp(((const SyncSent *) a)->id, ((const SyncSent *) b)->id);
}

static const SyncSent *sent_find(const SyncState *st, const char *id) {
        SyncSent key = {.id = (char *) id};

        if (st->n_sent == 0)
                return NULL;
        return bsearch(&key, st->sent, st->n_sent, sizeof(SyncSent), cmp_sent);
}

/* ---- entries ---- */

/* Appends e to m unless max_bytes would be passed (the first entry always fits):
 * 1 added, 0 full, or -errno. */
static int add_entry(Warden__Node__V1__SyncResponse *m,
                     size_t *allocated,
                     size_t *bytes,
                     size_t max_bytes,
                     const Entry *e) {
        Warden__Types__V1__Entry *pb = NULL;
        size_t sz;
        int r;

        r = entry_to_pb(e, &pb);
        if (r < 0)
                return r;
        sz = protobuf_c_message_get_packed_size(&pb->base) + 8; /* + tag and length */
        if (m->n_entries > 0 && *bytes + sz > max_bytes) {
                pb_free(pb);
                return 0;
        }
        r = GREEDY_REALLOC(m->entries, *allocated, m->n_entries + 1);
        if (r < 0) {
                pb_free(pb);
                return r;
        }
        m->entries[m->n_entries++] = pb;
        *bytes += sz;
        return 1;
}

static int add_string(char ***v, size_t *n, size_t *allocated, const char *s) {
        char *copy = pb_strdup(s);
        int r;

        if (!copy)
                return -ENOMEM;
        r = GREEDY_REALLOC(*v, *allocated, *n + 1);
        if (r < 0) {
                free(copy);
                return r;
        }
        (*v)[(*n)++] = copy;
        return 0;
}

/* Entries the agent lacks into m, as many as fit; then the ids it holds that view
 * lacks (all of them: ids are small). */
static int diff_entries(const SyncState *st,
                        const AuthzView *view,
                        bool full,
                        size_t max_bytes,
                        Warden__Node__V1__SyncResponse *m) {
        size_t bytes = 0, j = 0, allocated = 0, allocated_deleted = 0;
        int r;

        for (size_t i = 0; i < view->n; i++) {
                const Entry *e = view->entries[i];
                const SyncSent *old = full ? NULL : sent_find(st, e->id);

                if (old && old->revision == e->revision && old->created_at == e->created_at)
                        continue;
                r = add_entry(m, &allocated, &bytes, max_bytes, e);
                if (r < 0)
                        return r;
                if (r == 0) {
                        m->more = true;
                        break;
                }
        }
        if (full)
                return 0;
        for (size_t i = 0; i < st->n_sent; i++) {
                int c = 1;

                while (j < view->n && (c = strcmp(view->entries[j]->id, st->sent[i].id)) < 0)
                        j++;
                if (j < view->n && c == 0)
                        continue;
                r = add_string(&m->deleted_entry_ids, &m->n_deleted_entry_ids, &allocated_deleted,
                               st->sent[i].id);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What the agent holds once m is applied: the entries of view that m carries or that
 * it held already (not-yet-sent ones stay out, so the next call sends them). */
static int sent_after(const SyncState *st,
                      const AuthzView *view,
                      bool full,
                      const Warden__Node__V1__SyncResponse *m,
                      SyncSent **ret,
                      size_t *ret_n) {
        SyncSent *v = NULL;
        size_t n = 0, allocated = 0, k = 0;
        int r;

        /* m->entries are in view's order (sorted by id): one walk over both. */
        for (size_t i = 0; i < view->n; i++) {
                const Entry *e = view->entries[i];
                const SyncSent *old = full ? NULL : sent_find(st, e->id);
                bool in_m = k < m->n_entries && streq(m->entries[k]->id, e->id);

                if (in_m)
                        k++;
                else if (!old)
                        continue;
                r = GREEDY_REALLOC(v, allocated, n + 1);
                if (r < 0)
                        goto fail;
                v[n].id = strdup(e->id);
                if (!v[n].id) {
                        r = -ENOMEM;
                        goto fail;
                }
                v[n].revision = in_m ? e->revision : old->revision;
                v[n++].created_at = in_m ? e->created_at : old->created_at;
        }
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        sent_array_free(v, n);
        return r;
}

/* ---- federated bundles ---- */

static bool strv_has(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

/* The trust domains view's entries federate with (borrowed strings). */
static int wanted_federated(const AuthzView *view, char ***ret, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        for (size_t i = 0; i < view->n; i++)
                for (size_t j = 0; j < view->entries[i]->n_federates_with; j++) {
                        char *td = view->entries[i]->federates_with[j];

                        if (n >= SYNC_FEDERATED_MAX || strv_has(v, n, td))
                                continue;
                        r = GREEDY_REALLOC(v, allocated, n + 1);
                        if (r < 0) {
                                free(v);
                                return r;
                        }
                        v[n++] = td;
                }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int diff_federated(const SyncState *st,
                          const AuthzView *view,
                          bool full,
                          SyncBundleLookup lookup,
                          void *userdata,
                          Warden__Node__V1__SyncResponse *m,
                          SyncFederated **ret,
                          size_t *ret_n) {
        _cleanup_free_ char **tds = NULL;
        SyncFederated *now = NULL;
        size_t n_tds = 0, n_now = 0, allocated_removed = 0;
        int r;

        r = wanted_federated(view, &tds, &n_tds);
        if (r < 0)
                return r;
        if (n_tds > 0) {
                now = calloc(n_tds, sizeof(SyncFederated));
                m->federated_bundles = calloc(n_tds, sizeof(void *));
                if (!now || !m->federated_bundles) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        for (size_t i = 0; i < n_tds; i++) {
                const uint8_t *data = NULL;
                Warden__Types__V1__Bundle *b;
                uint64_t hash = 0;
                size_t len = 0;
                bool same = false;

                r = lookup(userdata, tds[i], &data, &len, &hash);
                if (r < 0)
                        goto fail;
                if (!data)
                        continue;
                for (size_t k = 0; k < st->n_federated && !full; k++)
                        if (streq(st->federated[k].trust_domain, tds[i]))
                                same = st->federated[k].hash == hash;
                if (!same) {
                        b = warden__types__v1__bundle__unpack(NULL, len, data);
                        if (!b) {
                                log_warning("Stored bundle of %s is corrupt, skipping", tds[i]);
                                continue;
                        }
                        m->federated_bundles[m->n_federated_bundles++] = b;
                }
                now[n_now].trust_domain = strdup(tds[i]);
                if (!now[n_now].trust_domain) {
                        r = -ENOMEM;
                        goto fail;
                }
                now[n_now++].hash = hash;
        }
        for (size_t k = 0; k < st->n_federated && !full; k++) {
                bool keep = false;

                for (size_t i = 0; i < n_now && !keep; i++)
                        keep = streq(now[i].trust_domain, st->federated[k].trust_domain);
                if (keep)
                        continue;
                r = add_string(&m->removed_trust_domains, &m->n_removed_trust_domains,
                               &allocated_removed, st->federated[k].trust_domain);
                if (r < 0)
                        goto fail;
        }
        *ret = now;
        *ret_n = n_now;
        return 0;
fail:
        federated_array_free(now, n_now);
        return r;
}

int sync_delta_next(SyncState *st,
                    const AuthzView *view,
                    bool full,
                    size_t max_bytes,
                    SyncBundleLookup lookup,
                    void *userdata,
                    Warden__Node__V1__SyncResponse *m) {
        SyncFederated *fed = NULL;
        SyncSent *sent = NULL;
        size_t n_fed = 0, n_sent = 0;
        int r;

        if (!st || !view || !lookup || !m || max_bytes == 0)
                return -EINVAL;
        m->full_snapshot = full;
        r = diff_entries(st, view, full, max_bytes, m);
        if (r >= 0)
                r = diff_federated(st, view, full, lookup, userdata, m, &fed, &n_fed);
        if (r < 0)
                return r;
        r = sent_after(st, view, full, m, &sent, &n_sent);
        if (r < 0) {
                federated_array_free(fed, n_fed);
                return r;
        }
        sync_state_done(st);
        *st = (SyncState){.sent = sent, .n_sent = n_sent, .federated = fed, .n_federated = n_fed};
        return 0;
}
