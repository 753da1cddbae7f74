/* SPDX-License-Identifier: Apache-2.0 */
/* Client side of the RPC tests, run as a separate process (e.g. under setpriv as
 * another uid) and for a quick round-trip measurement.
 *
 *   rpc_test_client unary SOCKET METHOD REQUEST [key=value...]
 *       prints "status=<code>" and then the response (or the status message)
 *   rpc_test_client bench SOCKET METHOD SECONDS
 *       sequential unary calls; prints "calls=<n> per_sec=<rate>"
 *   rpc_test_client watch SOCKET METHOD REQUEST
 *       server stream; prints each message, then "status=<code>" */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "rpc_client.h"

#define MAX_MD 8

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int do_unary(RpcChannel *ch, const char *method, const char *req, char **kv, int n_kv) {
        RpcMetadata md[MAX_MD];
        _cleanup_free_ void *resp = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t len = 0, n = 0;
        int status, r;

        for (int i = 0; i < n_kv && n < MAX_MD; i++) {
                char *eq = strchr(kv[i], '=');

                if (!eq)
                        return -EINVAL;
                *eq = 0;
                md[n++] = (RpcMetadata){kv[i], eq + 1};
        }
        r = rpc_unary(ch, method, md, n, req, strlen(req), 5000, &resp, &len, &status, &msg);
        if (r < 0)
                return r;
        printf("status=%d\n%s\n", status, status == 0 ? (char *) resp : strempty(msg));
        return 0;
}

static int do_bench(RpcChannel *ch, const char *method, double seconds) {
        double start = now_s(), end = start + seconds;
        unsigned long n = 0;

        while (now_s() < end) {
                _cleanup_free_ void *resp = NULL;
                int status, r;

                r = rpc_unary(ch, method, NULL, 0, "ping", 4, 5000, &resp, NULL, &status, NULL);
                if (r < 0 || status != 0)
                        return r < 0 ? r : -EIO;
                n++;
        }
        printf("calls=%lu per_sec=%.0f\n", n, (double) n / (now_s() - start));
        return 0;
}

static int do_watch(RpcChannel *ch, const char *method, const char *req) {
        RpcStream *st = NULL;
        int status, r;

        r = rpc_stream_open(ch, method, NULL, 0, req, strlen(req), &st);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_free_ char *msg = NULL;

                r = rpc_stream_next(st, -1, (void **) &msg, NULL);
                if (r <= 0)
                        break;
                printf("%s\n", msg);
                fflush(stdout);
        }
        if (r == 0 && rpc_stream_status(st, &status, NULL) >= 0)
                printf("status=%d\n", status);
        rpc_stream_free(st);
        return r;
}

int main(int argc, char **argv) {
        RpcChannel *ch = NULL;
        int r;

        if (argc < 5 ||
            (!streq(argv[1], "unary") && !streq(argv[1], "bench") && !streq(argv[1], "watch"))) {
                fprintf(stderr, "usage: %s unary|bench|watch SOCKET METHOD ARG [key=value...]\n",
                        argv[0]);
                return 2;
        }
        r = rpc_channel_new_unix(argv[2], &ch);
        if (r >= 0) {
                if (streq(argv[1], "unary"))
                        r = do_unary(ch, argv[3], argv[4], argv + 5, argc - 5);
                else if (streq(argv[1], "watch"))
                        r = do_watch(ch, argv[3], argv[4]);
                else
                        r = do_bench(ch, argv[3], atof(argv[4]));
        }
        rpc_channel_free(ch);
        if (r < 0) {
                fprintf(stderr, "failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
