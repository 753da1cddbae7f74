/* SPDX-License-Identifier: Apache-2.0 */
/* A Workload API server fed by the test fixture (real SVIDs and JWT-SVIDs from a test
 * CA made at start), for the interop test and the benchmark:
 *
 *   wapi_testserver -s SOCKET [-n NOOP_SOCKET] [-r MS]
 *                   [-e EXPIRED_TOKEN_FILE] [-f FEDERATED_TOKEN_FILE] [-c]
 *
 * Entries: fx_default_entries (uid 0 -> /workload/root, uid 65534 -> /workload/nobody,
 * uid 4242 -> /workload/pending, never signed). SIGUSR1 re-signs everything (a
 * rotation); SIGUSR2 toggles an extra entry for uid 0 (/workload/extra); -r re-signs
 * every MS milliseconds. -n also serves /warden.bench.Noop/Ping (an empty unary reply)
 * on a second socket (handled on the CQ thread, like the Workload API). -c caches JWT-SVIDs per
 * (SPIFFE ID, audiences). SIGTERM/SIGINT stop. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "cleanup.h"
#include "log.h"
#include "rpc.h"
#include "wapi_fixture.h"
#include "workload_api.h"

static const FxEntry extra_entries[] = {
        {
                .entry_id = "00000000-0000-0000-0000-000000000009",
                .spiffe_id = "spiffe://" FX_TD "/workload/extra",
                .selectors = {"unix:uid:0"},
                .created_at = 2000,
        },
};

typedef struct Server {
        Fixture *fx;
        WorkloadApi *api;
        RpcServer *noop;
        FxEntry entries[8];
        size_t n_entries;
        bool extra;
        uint64_t rotate_ms;
} Server;

static int publish(Server *s) {
        int r = fx_publish(s->fx, s->entries, s->n_entries);

        if (r < 0)
                return log_error_errno(r, "Cannot publish a snapshot: %m");
        workload_api_snapshot_changed(s->api);
        return 0;
}

static void toggle_extra(Server *s) {
        s->extra = !s->extra;
        s->n_entries = fx_n_default_entries;
        memcpy(s->entries, fx_default_entries, fx_n_default_entries * sizeof(FxEntry));
        if (s->extra)
                s->entries[s->n_entries++] = extra_entries[0];
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;

        switch (si->ssi_signo) {
        case SIGUSR1:
                return publish(s);
        case SIGUSR2:
                toggle_extra(s);
                return publish(s);
        default:
                return sd_event_exit(sd_event_source_get_event(src), 0);
        }
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        (void) publish(s);
        /* A time source is one-shot: re-arm it, or it fires once and never again. */
        r = sd_event_source_set_time(src, usec + s->rotate_ms * 1000);
        if (r >= 0)
                r = sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return r;
}

static void noop_ping(RpcCall *c, void *userdata) {
        (void) userdata;
        (void) rpc_call_reply(c, "", 0);
}

static int on_noop_event(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (void) src;
        (void) fd;
        (void) revents;
        (void) rpc_server_dispatch(userdata);
        return 0;
}

static int start_noop(Server *s, sd_event *e, const char *path) {
        unsigned flags = RPC_METHOD_INLINE;
        int r;

        r = rpc_server_new(&s->noop);
        if (r >= 0)
                r = rpc_server_add_method(s->noop, "/warden.bench.Noop/Ping", RPC_UNARY, noop_ping,
                                          NULL, flags);
        if (r >= 0)
                r = rpc_server_listen_unix(s->noop, path, 0777);
        if (r >= 0)
                r = sd_event_add_io(e, NULL, rpc_server_event_fd(s->noop), EPOLLIN, on_noop_event,
                                    s->noop);
        if (r >= 0)
                r = rpc_server_start(s->noop);
        return r;
}

static int write_token(Fixture *fx, const char *path, bool fed) {
        _cleanup_erase_ char *token = NULL;
        FILE *f;
        int r;

        if (fed)
                r = fx_mint(fx, true, "spiffe://" FX_FED_TD "/remote", "interop", 600, 0, &token);
        else /* expired an hour ago */
                r = fx_mint(fx, false, "spiffe://" FX_TD "/workload/root", "interop", 60,
                            time(NULL) - 3600, &token);
        if (r < 0)
                return r;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f, "%s\n", token);
        return fclose(f) == 0 ? 0 : -errno;
}

typedef struct Args {
        const char *socket, *noop, *expired, *fed;
        uint64_t rotate_ms;
        bool cache;
} Args;

static int parse_args(int argc, char **argv, Args *a) {
        int c;

        *a = (Args){};
        while ((c = getopt(argc, argv, "s:n:r:e:f:c")) >= 0)
                switch (c) {
                case 's':
                        a->socket = optarg;
                        break;
                case 'n':
                        a->noop = optarg;
                        break;
                case 'r':
                        a->rotate_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'e':
                        a->expired = optarg;
                        break;
                case 'f':
                        a->fed = optarg;
                        break;
                case 'c':
                        a->cache = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (!a->socket)
                return log_error_errno(-EINVAL, "Usage: %s -s SOCKET [...]", argv[0]);
        return 0;
}

static int run(const Args *a, Server *s, Attestor *att, sd_event *e) {
        WorkloadApiConfig cfg = {.socket_path = a->socket,
                                 .listen_fd = -1,
                                 .jwt_skew_seconds = WORKLOAD_API_JWT_SKEW_SECONDS};
        int r;

        r = fx_new(&s->fx);
        if (r < 0)
                return log_error_errno(r, "Cannot make the test CA: %m");
        s->fx->jwt_cache = a->cache;
        if (a->expired && (r = write_token(s->fx, a->expired, false)) < 0)
                return log_error_errno(r, "Cannot write %s: %m", a->expired);
        if (a->fed && (r = write_token(s->fx, a->fed, true)) < 0)
                return log_error_errno(r, "Cannot write %s: %m", a->fed);
        r = workload_api_new(&cfg, &s->fx->source, att, &s->api);
        if (r >= 0)
                r = workload_api_start(s->api, e);
        if (r < 0)
                return log_error_errno(r, "Cannot start the Workload API on %s: %m", a->socket);
        if (a->noop && (r = start_noop(s, e, a->noop)) < 0)
                return log_error_errno(r, "Cannot start the no-op server on %s: %m", a->noop);
        s->rotate_ms = a->rotate_ms;
        if (a->rotate_ms > 0) {
                uint64_t now;

                (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
                r = sd_event_add_time(e, NULL, CLOCK_MONOTONIC, now + a->rotate_ms * 1000, 0,
                                      on_timer, s);
                if (r < 0)
                        return r;
        }
        toggle_extra(s); /* extra on ... */
        toggle_extra(s); /* ... and off: the default entries */
        r = publish(s);
        if (r < 0)
                return r;
        log_info("wapi_testserver: serving %s", a->socket);
        return sd_event_loop(e);
}

int main(int argc, char **argv) {
        Server s = {};
        Attestor *att = NULL;
        sd_event *e = NULL;
        sigset_t mask;
        Args a;
        int r;

        log_set_component("wapi_testserver");
        (void) log_parse_environment();
        r = parse_args(argc, argv, &a);
        if (r < 0)
                return 2;
        /* Before any thread exists (gRPC's inherit the mask). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGUSR2);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_new(&e);
        if (r >= 0)
                r = attestor_new(NULL, &att);
        for (int sig = SIGUSR1; r >= 0 && sig <= SIGTERM; sig++)
                if (sigismember(&mask, sig))
                        r = sd_event_add_signal(e, NULL, sig, on_signal, &s);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, on_signal, &s);
        if (r >= 0)
                r = run(&a, &s, att, e);
        if (s.api)
                workload_api_stop(s.api);
        if (s.noop)
                rpc_server_shutdown(s.noop);
        s.api = workload_api_free(s.api);
        s.noop = rpc_server_free(s.noop);
        s.fx = fx_free(s.fx);
        attestor_free(att);
        sd_event_unref(e);
        return r < 0 ? 1 : 0;
}
