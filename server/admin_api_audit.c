/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: the hash-chained audit log (list and verify, ds.h "Audit log"). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "pb_util.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

typedef struct AuditPage {
        DsAuditRecord *recs;
        size_t n;
        Warden__Admin__V1__AuditRecord *pb;
        Warden__Admin__V1__AuditRecord **ptrs;
} AuditPage;

static void audit_page_done(AuditPage *p) {
        ds_audit_record_array_free(p->recs, p->n);
        free(p->pb);
        free(p->ptrs);
}

int admin_list_audit_records(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__ListAuditRecordsRequest *req = NULL;
        Warden__Admin__V1__ListAuditRecordsResponse resp =
                WARDEN__ADMIN__V1__LIST_AUDIT_RECORDS_RESPONSE__INIT;
        _cleanup_(audit_page_done) AuditPage p = {};
        DsAuditFilter f = {};
        int r;

        (void) who;
        r = rpc_message_unpack(c, &warden__admin__v1__list_audit_records_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        if (req->page_size < 0 || req->page_size > DS_AUDIT_PAGE_MAX)
                return admin_fail(-EINVAL, err, n, "page_size must be 0..%d", DS_AUDIT_PAGE_MAX);
        if (req->after_seq > INT64_MAX)
                return admin_fail(-EINVAL, err, n, "after_seq is out of range");
        f = (DsAuditFilter){
                .since = req->since,
                .until = req->until,
                .subject = req->subject && *req->subject ? req->subject : NULL,
                .kind = req->kind && *req->kind ? req->kind : NULL,
                .after_seq = req->after_seq,
                .limit = (size_t) req->page_size,
        };
        r = ds_audit_list(s->ds, &f, &p.recs, &p.n);
        if (r < 0)
                return r;
        if (p.n > 0) {
                p.pb = calloc(p.n, sizeof(*p.pb));
                p.ptrs = calloc(p.n, sizeof(*p.ptrs));
                if (!p.pb || !p.ptrs)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < p.n; i++) {
                Warden__Admin__V1__AuditRecord *a = &p.pb[i];
                warden__admin__v1__audit_record__init(a);
                a->seq = p.recs[i].seq;
                a->at = p.recs[i].at;
                a->kind = p.recs[i].kind;
                a->actor = p.recs[i].actor;
                a->subject = p.recs[i].subject;
                a->data = p.recs[i].data;
                a->prev_hash = (ProtobufCBinaryData){DS_AUDIT_HASH_SIZE, p.recs[i].prev_hash};
                a->hash = (ProtobufCBinaryData){DS_AUDIT_HASH_SIZE, p.recs[i].hash};
                p.ptrs[i] = a;
        }
        resp.records = p.ptrs;
        resp.n_records = p.n;
        /* A full page may have more after it. */
        if (p.n > 0 && p.n == (f.limit ? f.limit : DS_AUDIT_PAGE_MAX))
                resp.next_after_seq = p.recs[p.n - 1].seq;
        return rpc_message_reply(c, &resp.base, 0);
}

int admin_verify_audit(Server *s, RpcCall *c, const AdminCaller *who, char *err, size_t n) {
        _cleanup_(pb_freep) Warden__Admin__V1__VerifyAuditRequest *req = NULL;
        Warden__Admin__V1__VerifyAuditResponse resp =
                WARDEN__ADMIN__V1__VERIFY_AUDIT_RESPONSE__INIT;
        uint64_t count = 0, bad = 0;
        const char *reason = NULL;
        int r;

        (void) who;
        (void) err;
        (void) n;
        r = rpc_message_unpack(c, &warden__admin__v1__verify_audit_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0)
                return r;
        r = ds_audit_verify(s->ds, &count, &bad, &reason);
        if (r == -EBADMSG && reason) {
                resp.broken_seq = bad;
                resp.reason = (char *) reason;
        } else if (r < 0)
                return r;
        else {
                resp.intact = true;
                resp.count = count;
        }
        return rpc_message_reply(c, &resp.base, 0);
}
