/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark's baseline: a gRPC server on a Unix socket with one method that does
 * nothing, served by the same RPC layer as the agent (own accept loop, SO_PEERCRED per
 * connection, the handler on the CQ thread), in its own process:
 *
 *   noop_server SOCKET       serves /warden.bench.Noop/Ping until SIGTERM/SIGINT
 *
 * A Workload API call can only be slower than this; scripts/bench.sh reports every
 * figure of the agent as a ratio to it, measured in the same run. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rpc.h"

static void ping(RpcCall *c, void *userdata) {
        (void) userdata;
        (void) rpc_call_reply(c, "", 0);
}

int main(int argc, char **argv) {
        RpcServer *s = NULL;
        sigset_t set;
        int sig, r;

        if (argc != 2) {
                fprintf(stderr, "Usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        r = rpc_server_new(&s);
        if (r >= 0)
                r = rpc_server_add_method(s, "/warden.bench.Noop/Ping", RPC_UNARY, ping, NULL,
                                          RPC_METHOD_INLINE);
        if (r >= 0)
                r = rpc_server_listen_unix(s, argv[1], 0777);
        if (r >= 0)
                r = rpc_server_start(s);
        if (r < 0) {
                fprintf(stderr, "noop_server: %s\n", strerror(-r));
                rpc_server_free(s);
                return 1;
        }
        (void) sigwait(&set, &sig);
        rpc_server_free(s);
        return 0;
}
