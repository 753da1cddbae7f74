/* SPDX-License-Identifier: Apache-2.0 */
/* Audit log front end (ds.h "Audit log"): the current actor, records staged around a
 * backend write, the canonical hash and the chain walk of ds_audit_verify(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ds_internal.h"
#include "greedy_realloc.h"
#include "ossl_cleanup.h"

#define AUDIT_DOMAIN "warden.audit.v1"

static bool field_ok(const char *s, bool nonempty) {
        return s && (!nonempty || *s) && strnlen(s, DS_AUDIT_FIELD_MAX + 1) <= DS_AUDIT_FIELD_MAX;
}

int ds_set_actor(Datastore *ds, const char *actor) {
        size_t len;

        if (!ds)
                return -EINVAL;
        if (!actor)
                actor = "";
        len = strnlen(actor, DS_AUDIT_ACTOR_MAX + 1);
        if (len > DS_AUDIT_ACTOR_MAX)
                return -EINVAL;
        memcpy(ds->actor, actor, len + 1);
        return 0;
}

const char *ds_get_actor(Datastore *ds) {
        return ds && ds->actor[0] ? ds->actor : "server";
}

int ds_json_quote(const char *s, char **ret) {
        size_t len = strlen(s), o = 0;
        char *q;

        q = malloc(len * 6 + 3);
        if (!q)
                return -ENOMEM;
        q[o++] = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        q[o++] = '\\';
                        q[o++] = (char) *p;
                } else if (*p < 0x20)
                        o += (size_t) sprintf(q + o, "\\u%04x", *p);
                else
                        q[o++] = (char) *p;
        }
        q[o++] = '"';
        q[o] = '\0';
        *ret = q;
        return 0;
}

int ds_audit_stage(Datastore *ds, const char *kind, const char *subject, const char *data) {
        DsAuditStaged *a;

        int r;

        r = GREEDY_REALLOC(ds->audit, ds->n_audit_allocated, ds->n_audit + 1);
        if (r < 0)
                return r;
        a = &ds->audit[ds->n_audit];
        a->kind = kind;
        a->subject = strdup(subject ? subject : "");
        a->data = strdup(data ? data : "{}");
        if (!a->subject || !a->data) {
                free(a->subject);
                free(a->data);
                return -ENOMEM;
        }
        ds->n_audit++;
        ds->audit_written = false;
        return 0;
}

void ds_audit_unstage(Datastore *ds, bool free_array) {
        for (size_t i = 0; i < ds->n_audit; i++) {
                free(ds->audit[i].subject);
                free(ds->audit[i].data);
        }
        ds->n_audit = 0;
        ds->audit_written = false;
        if (free_array) {
                free(ds->audit);
                ds->audit = NULL;
                ds->n_audit_allocated = 0;
        }
}

int ds_audit_append(Datastore *ds,
                    const char *kind,
                    const char *actor,
                    const char *subject,
                    const char *data_json) {
        char saved[sizeof(ds->actor)];
        int r;

        if (!ds || !field_ok(kind, true) || !field_ok(subject ? subject : "", false) ||
            !field_ok(data_json ? data_json : "", false) ||
            (actor && strlen(actor) > DS_AUDIT_ACTOR_MAX))
                return -EINVAL;
        memcpy(saved, ds->actor, sizeof(saved));
        if (actor)
                (void) ds_set_actor(ds, actor);
        ds_audit_unstage(ds, false);
        r = ds_audit_stage(ds, kind, subject, data_json);
        if (r >= 0)
                r = ds->ops->audit_append(ds);
        ds_audit_unstage(ds, false);
        memcpy(ds->actor, saved, sizeof(saved));
        return r;
}

void ds_audit_record_array_free(DsAuditRecord *records, size_t n) {
        for (size_t i = 0; records && i < n; i++) {
                free(records[i].kind);
                free(records[i].actor);
                free(records[i].subject);
                free(records[i].data);
        }
        free(records);
}

int ds_audit_list(Datastore *ds, const DsAuditFilter *f, DsAuditRecord **ret, size_t *ret_n) {
        DsAuditFilter c = {};

        if (!ds || !ret || !ret_n)
                return -EINVAL;
        if (f)
                c = *f;
        if (c.limit == 0)
                c.limit = DS_AUDIT_PAGE_MAX;
        if (c.limit > DS_AUDIT_PAGE_MAX || c.after_seq > INT64_MAX)
                return -EINVAL;
        return ds->ops->audit_list(ds, &c, ret, ret_n);
}

static void put_u64(EVP_MD_CTX *ctx, uint64_t v, int *ok) {
        uint8_t b[8];

        for (int i = 7; i >= 0; i--, v >>= 8)
                b[i] = (uint8_t) (v & 0xff);
        *ok &= EVP_DigestUpdate(ctx, b, sizeof(b));
}

static void put_bytes(EVP_MD_CTX *ctx, const void *p, size_t len, int *ok) {
        put_u64(ctx, len, ok);
        if (len > 0)
                *ok &= EVP_DigestUpdate(ctx, p, len);
}

static void put_str(EVP_MD_CTX *ctx, const char *s, int *ok) {
        put_bytes(ctx, s ? s : "", s ? strlen(s) : 0, ok);
}

int ds_audit_hash(const DsAuditRecord *r, uint8_t ret[DS_AUDIT_HASH_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        unsigned int len = 0;
        int ok = 1;

        if (!r || !ret)
                return -EINVAL;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        ok &= EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        put_str(ctx, AUDIT_DOMAIN, &ok);
        put_u64(ctx, r->seq, &ok);
        put_u64(ctx, (uint64_t) r->at, &ok);
        put_str(ctx, r->kind, &ok);
        put_str(ctx, r->actor, &ok);
        put_str(ctx, r->subject, &ok);
        put_str(ctx, r->data, &ok);
        put_bytes(ctx, r->prev_hash, DS_AUDIT_HASH_SIZE, &ok);
        if (!ok || EVP_DigestFinal_ex(ctx, ret, &len) != 1 || len != DS_AUDIT_HASH_SIZE)
                return ossl_to_errno(-EIO);
        return 0;
}

/* Checks rec, expected to be record number want following a record with hash prev. */
static int check_one(const DsAuditRecord *rec,
                     uint64_t want,
                     const uint8_t prev[DS_AUDIT_HASH_SIZE],
                     uint64_t *reterr_seq,
                     const char **reterr_reason) {
        uint8_t h[DS_AUDIT_HASH_SIZE];
        int r;

        if (rec->seq != want) {
                *reterr_seq = want;
                *reterr_reason = "is missing";
                return -EBADMSG;
        }
        r = ds_audit_hash(rec, h);
        if (r < 0)
                return r;
        if (memcmp(h, rec->hash, sizeof(h)) != 0) {
                *reterr_seq = rec->seq;
                *reterr_reason = "was changed";
                return -EBADMSG;
        }
        if (memcmp(prev, rec->prev_hash, DS_AUDIT_HASH_SIZE) != 0) {
                *reterr_seq = rec->seq;
                *reterr_reason = "does not follow the record before it";
                return -EBADMSG;
        }
        return 0;
}

int ds_audit_verify(Datastore *ds,
                    uint64_t *ret_count,
                    uint64_t *reterr_seq,
                    const char **reterr_reason) {
        uint8_t prev[DS_AUDIT_HASH_SIZE] = {};
        uint64_t count = 0, bad_seq = 0;
        const char *reason = NULL;
        int r;

        if (!ds)
                return -EINVAL;
        for (;;) {
                DsAuditFilter f = {.after_seq = count, .limit = DS_AUDIT_PAGE_MAX};
                DsAuditRecord *recs = NULL;
                size_t n = 0;

                r = ds_audit_list(ds, &f, &recs, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        r = check_one(&recs[i], count + 1, prev, &bad_seq, &reason);
                        if (r >= 0) {
                                memcpy(prev, recs[i].hash, sizeof(prev));
                                count++;
                        }
                }
                ds_audit_record_array_free(recs, n);
                if (r == -EBADMSG && reason) {
                        if (reterr_seq)
                                *reterr_seq = bad_seq;
                        if (reterr_reason)
                                *reterr_reason = reason;
                        return r;
                }
                if (r < 0)
                        return r;
                if (n < DS_AUDIT_PAGE_MAX)
                        break;
        }
        if (ret_count)
                *ret_count = count;
        return 0;
}
