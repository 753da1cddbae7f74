/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server audit show|verify`: the server's hash-chained audit log (ds.h "Audit
 * log"): who changed which entry, agent or join token, and whether the chain is whole. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

#define AUDIT_PAGE 1000

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static void hex(const ProtobufCBinaryData *b, char *out, size_t n) {
        size_t o = 0;

        out[0] = '\0';
        for (size_t i = 0; i < b->len && o + 3 <= n; i++, o += 2)
                snprintf(out + o, 3, "%02x", b->data[i]);
}

static json_t *record_to_json(const Warden__Admin__V1__AuditRecord *a) {
        char prev[65], h[65];
        json_t *data = json_loads(a->data, JSON_DECODE_ANY, NULL);

        hex(&a->prev_hash, prev, sizeof(prev));
        hex(&a->hash, h, sizeof(h));
        if (!data)
                data = cli_json_string(a->data);
        return json_pack("{s:I,s:o,s:s,s:s,s:s,s:o,s:s,s:s}", "seq", (json_int_t) a->seq, "at",
                         cli_json_time(a->at), "kind", a->kind, "actor", a->actor, "subject",
                         a->subject, "data", data, "prev_hash", prev, "hash", h);
}

static void print_record(const Warden__Admin__V1__AuditRecord *a) {
        char t[32];

        printf("%llu %s %s actor=%s subject=%s %s\n", (unsigned long long) a->seq,
               cli_format_time(a->at, t), a->kind, a->actor, a->subject[0] ? a->subject : "-",
               a->data);
}

static const Option show_options[] = {
        CLI_COMMON_OPTIONS,
        {"since", OPT_STRING, NULL, "Records written at or after TIME (RFC 3339 or Unix seconds)"},
        {"until", OPT_STRING, NULL, "Records written at or before TIME"},
        {"spiffeID", OPT_STRING, NULL, "Records about this SPIFFE ID (their subject)"},
        {"kind", OPT_STRING, NULL, "Records of this kind (entry.create, agent.ban, ...)"},
        {"limit", OPT_INT, "0", "At most this many records (0 = all)"},
};

static int audit_show(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_done) Cli cli = {};
        Warden__Admin__V1__ListAuditRecordsRequest req =
                WARDEN__ADMIN__V1__LIST_AUDIT_RECORDS_REQUEST__INIT;
        json_t *list = NULL;
        int64_t limit, shown = 0;
        int r;

        r = cli_parse("warden-server audit show [-since TIME] [-until TIME] [-spiffeID ID] "
                      "[-kind KIND] [-limit N]",
                      show_options, ELEMENTSOF(show_options), argc, argv, &o);
        if (r < 0)
                return r;
        limit = options_get_int(o, "limit");
        if (limit < 0)
                return cli_error("-limit must be 0 or more");
        if ((options_is_set(o, "since") && (r = cli_time_flag(o, "since", &req.since)) < 0) ||
            (options_is_set(o, "until") && (r = cli_time_flag(o, "until", &req.until)) < 0))
                return r;
        req.subject = (char *) options_get_string(o, "spiffeID");
        req.kind = (char *) options_get_string(o, "kind");
        r = cli_open(&cli, o);
        if (r < 0)
                return r;
        if (cli.json && !(list = json_array()))
                return -ENOMEM;
        for (;;) {
                _cleanup_(pb_freep) Warden__Admin__V1__ListAuditRecordsResponse *resp = NULL;

                req.page_size = limit > 0 && limit - shown < AUDIT_PAGE ? (int32_t) (limit - shown)
                                                                        : AUDIT_PAGE;
                r = cli_call(&cli, "ListAuditRecords", &req,
                             &warden__admin__v1__list_audit_records_response__descriptor,
                             (void **) &resp);
                if (r < 0)
                        goto out;
                for (size_t i = 0; i < resp->n_records; i++, shown++) {
                        if (!list)
                                print_record(resp->records[i]);
                        else if (json_array_append_new(list, record_to_json(resp->records[i])) <
                                 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                if (resp->next_after_seq == 0 || (limit > 0 && shown >= limit))
                        break;
                req.after_seq = resp->next_after_seq;
        }
        if (list)
                return cli_print_json(json_pack("{s:o}", "records", TAKE_PTR(list)));
        if (shown == 0)
                printf("No audit records\n");
        r = 0;
out:
        json_decref(list);
        return r;
}

static const Option verify_options[] = {CLI_COMMON_OPTIONS};

static int audit_verify(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(cli_done) Cli cli = {};
        _cleanup_(pb_freep) Warden__Admin__V1__VerifyAuditResponse *resp = NULL;
        Warden__Admin__V1__VerifyAuditRequest req = WARDEN__ADMIN__V1__VERIFY_AUDIT_REQUEST__INIT;
        int r;

        r = cli_parse("warden-server audit verify", verify_options, ELEMENTSOF(verify_options),
                      argc, argv, &o);
        if (r < 0)
                return r;
        r = cli_open(&cli, o);
        if (r < 0)
                return r;
        r = cli_call(&cli, "VerifyAudit", &req,
                     &warden__admin__v1__verify_audit_response__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        if (cli.json)
                r = cli_print_json(json_pack("{s:b,s:I,s:I,s:s}", "intact", resp->intact, "count",
                                             (json_int_t) resp->count, "broken_seq",
                                             (json_int_t) resp->broken_seq, "reason",
                                             resp->intact ? "" : resp->reason));
        else if (resp->intact)
                printf("audit log intact: %llu records\n", (unsigned long long) resp->count);
        else
                printf("audit log broken at record %llu: %s\n",
                       (unsigned long long) resp->broken_seq, resp->reason);
        if (r < 0)
                return r;
        return resp->intact ? 0 : -EBADMSG;
}

static const CliVerb audit_verbs[] = {
        {"show", audit_show, "List audit records (who changed what, when)"},
        {"verify", audit_verify, "Check the hash chain of the audit log; exit 1 if broken"},
};

int cli_audit_main(int argc, char **argv) {
        return cli_dispatch(audit_verbs, ELEMENTSOF(audit_verbs), argc, argv);
}
