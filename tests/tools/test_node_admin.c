/* SPDX-License-Identifier: Apache-2.0 */
/* admin-create-loop: timed entry creates on the admin API, for scale benchmarks.
 *
 *   admin-create-loop -socketPath S -parentID P|-parentIDs FILE -spiffeIDPrefix spiffe://td/p
 *                     [-count N] [-start K] [-intervalMs MS] [-budget DURATION]
 *
 * Creates N entries, one BatchCreateEntry call each, over one connection made (and
 * warmed up with a Health call) before the first: spiffe_id <prefix>/<K+i>, parent_id P
 * (or, with -parentIDs, the ID of line i mod n of FILE, lines "<label> <ID>" as in
 * sync-many's D/ids), selector unix:uid:<K+i>. Sleeps MS milliseconds between calls; stops early,
 * after at least 3 calls, once -budget has passed since the first. Prints one line a call:
 *
 *   <CLOCK_MONOTONIC ns before> <ns after> <0 = created, else the gRPC status> <label or ->
 *
 * so that the time a change reached an agent (sync-many prints the same clock) can be
 * measured from the moment the admin call returned. Exits 1 when any call failed.
 *
 *   admin-tokens -socketPath S -count N [-alias ID] [-ttl DURATION]
 *
 * Makes N join tokens (each giving its agent the node alias ID, if set), one a line. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "pb_util.h"
#include "rpc_client.h"
#include "rpc_status.h"
#include "test_node.h"
#include "warden/admin/v1/admin.pb-c.h"

#define ADMIN "/warden.admin.v1.Admin/"
#define ADMIN_TIMEOUT_MS 30000
#define PARENTS_MAX 100000

static int64_t mono_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rpc_channel_freep(RpcChannel **c) {
        rpc_channel_free(*c);
}

/* One packed request; the gRPC status in *ret_status, the answer (if OK and wanted) in
 * *ret_resp. */
static int admin_call_full(RpcChannel *ch,
                           const char *method,
                           const void *req,
                           int *ret_status,
                           void **ret_resp,
                           size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t len;
        int r;

        r = pb_pack(req, &buf, &len);
        if (r >= 0)
                r = rpc_unary(ch, method, NULL, 0, buf, len, ADMIN_TIMEOUT_MS, ret_resp, ret_len,
                              ret_status, &msg);
        if (r >= 0 && *ret_status != GRPC_STATUS_OK)
                fprintf(stderr, "%s: %s: %s\n", method, rpc_status_to_string(*ret_status),
                        strna(msg));
        return r;
}

static int admin_call(RpcChannel *ch, const char *method, const void *req, int *ret_status) {
        _cleanup_free_ void *resp = NULL;
        size_t len = 0;

        return admin_call_full(ch, method, req, ret_status, &resp, &len);
}

/* The parents of the creates: -parentID, or each line "<label> <ID>" of -parentIDs in
 * turn (sync-many's D/ids). */
typedef struct Parents {
        char **label, **id;
        size_t n;
} Parents;

static void parents_done(Parents *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->label[i]);
                free(p->id[i]);
        }
        free(p->label);
        free(p->id);
}

static int parents_read(const char *path, Parents *p) {
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0 && p->n < PARENTS_MAX) {
                char label[64], id[2048];
                char **l = reallocarray(p->label, p->n + 1, sizeof(char *));
                char **d = l ? reallocarray(p->id, p->n + 1, sizeof(char *)) : NULL;

                if (l)
                        p->label = l;
                if (d)
                        p->id = d;
                if (!l || !d)
                        break;
                if (sscanf(line, "%63s %2047s", label, id) != 2)
                        continue;
                p->label[p->n] = strdup(label);
                p->id[p->n] = strdup(id);
                if (!p->label[p->n] || !p->id[p->n]) {
                        free(p->label[p->n]);
                        free(p->id[p->n]);
                        break;
                }
                p->n++;
        }
        fclose(f);
        return p->n > 0 ? 0 : -EINVAL;
}

static int create_one(
        RpcChannel *ch, const char *prefix, const char *parent, const char *label, int64_t k) {
        Warden__Admin__V1__BatchCreateEntryRequest req =
                WARDEN__ADMIN__V1__BATCH_CREATE_ENTRY_REQUEST__INIT;
        Warden__Types__V1__Entry e = WARDEN__TYPES__V1__ENTRY__INIT, *ep = &e;
        Warden__Types__V1__Selector sel = WARDEN__TYPES__V1__SELECTOR__INIT, *selp = &sel;
        _cleanup_free_ char *id = NULL, *value = NULL;
        int64_t t0, t1;
        int status = GRPC_STATUS_UNKNOWN, r;

        if (asprintf(&id, "%s/%lld", prefix, (long long) k) < 0 ||
            asprintf(&value, "uid:%lld", (long long) k) < 0)
                return -ENOMEM;
        sel.type = (char *) "unix";
        sel.value = value;
        e.spiffe_id = id;
        e.parent_id = (char *) parent;
        e.selectors = &selp;
        e.n_selectors = 1;
        req.entries = &ep;
        req.n_entries = 1;
        t0 = mono_ns();
        r = admin_call(ch, ADMIN "BatchCreateEntry", &req, &status);
        t1 = mono_ns();
        if (r < 0)
                return r;
        printf("%lld %lld %d %s\n", (long long) t0, (long long) t1, status, label);
        fflush(stdout);
        return status == GRPC_STATUS_OK ? 0 : -EPROTO;
}

int cmd_admin_create_loop(const Options *o) {
        Warden__Admin__V1__HealthRequest hreq = WARDEN__ADMIN__V1__HEALTH_REQUEST__INIT;
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        const char *sock = options_get_string(o, "socketPath");
        const char *prefix = options_get_string(o, "spiffeIDPrefix");
        const char *parent = options_get_string(o, "parentID");
        const char *parents_file = options_get_string(o, "parentIDs");
        _cleanup_(parents_done) Parents parents = {};
        int64_t count = options_get_int(o, "count"), start = options_get_int(o, "start");
        int64_t interval = options_get_int(o, "intervalMs"), t0 = mono_ns();
        int64_t budget = options_get_duration(o, "budget") * 1000000000;
        int status = 0, r, failed = 0;

        if (!sock || !prefix || !(parent || parents_file) || count <= 0) {
                fprintf(stderr, "Error: admin-create-loop needs -socketPath, -spiffeIDPrefix, "
                                "-parentID or -parentIDs and -count > 0\n");
                return 1;
        }
        hreq.shallow = true;
        r = parents_file ? parents_read(parents_file, &parents) : 0;
        if (r >= 0)
                r = rpc_channel_new_unix(sock, &ch);
        if (r >= 0)
                r = admin_call(ch, ADMIN "Health", &hreq, &status);
        if (r >= 0 && status != GRPC_STATUS_OK)
                r = -EPROTO;
        for (int64_t i = 0; r >= 0 && i < count; i++) {
                if (budget > 0 && i >= 3 && mono_ns() - t0 >= budget)
                        break;
                if (i > 0 && interval > 0)
                        usleep((useconds_t) interval * 1000);
                if (parents.n > 0)
                        r = create_one(ch, prefix, parents.id[i % parents.n],
                                       parents.label[i % parents.n], start + i);
                else
                        r = create_one(ch, prefix, parent, "-", start + i);
                if (r == -EPROTO) {
                        failed++;
                        r = 0;
                }
        }
        if (r < 0) {
                fprintf(stderr, "Error: admin-create-loop: %s\n", strerror(-r));
                return 1;
        }
        return failed > 0 ? 1 : 0;
}

static int make_token(RpcChannel *ch, const char *alias, int64_t ttl) {
        Warden__Admin__V1__CreateJoinTokenRequest req =
                WARDEN__ADMIN__V1__CREATE_JOIN_TOKEN_REQUEST__INIT;
        Warden__Admin__V1__CreateJoinTokenResponse *m;
        _cleanup_free_ void *resp = NULL;
        size_t len = 0;
        int status = GRPC_STATUS_UNKNOWN, r;

        req.ttl = (int32_t) ttl;
        req.alias_spiffe_id = (char *) strempty(alias);
        r = admin_call_full(ch, ADMIN "CreateJoinToken", &req, &status, &resp, &len);
        if (r < 0)
                return r;
        if (status != GRPC_STATUS_OK)
                return -EPROTO;
        m = warden__admin__v1__create_join_token_response__unpack(NULL, len, resp);
        if (!m)
                return -EBADMSG;
        printf("%s\n", m->token);
        pb_free(m);
        return 0;
}

int cmd_admin_tokens(const Options *o) {
        _cleanup_(rpc_channel_freep) RpcChannel *ch = NULL;
        const char *sock = options_get_string(o, "socketPath");
        int64_t count = options_get_int(o, "count");
        int r;

        if (!sock || count <= 0) {
                fprintf(stderr, "Error: admin-tokens needs -socketPath and -count > 0\n");
                return 1;
        }
        r = rpc_channel_new_unix(sock, &ch);
        for (int64_t i = 0; r >= 0 && i < count; i++)
                r = make_token(ch, options_get_string(o, "alias"), options_get_duration(o, "ttl"));
        fflush(stdout);
        if (r < 0) {
                fprintf(stderr, "Error: admin-tokens: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
