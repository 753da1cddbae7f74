/* SPDX-License-Identifier: Apache-2.0 */
/* Workload API load generator (a benchmark, not a test; scripts/bench.sh drives it):
 *
 *   wapi_bench -s SOCKET -k jwt|x509|noop [-c CLIENTS] [-t SECONDS] [-p SERVER_PID] [-S]
 *
 * Forks CLIENTS processes before gRPC is initialised; each opens its own channel and
 * calls in a loop for SECONDS: jwt = FetchJWTSVID(audience "bench") (the source caches
 * the token), x509 = open FetchX509SVID, wait for the first message, cancel, noop =
 * /warden.bench.Noop/Ping (an empty unary call, the transport floor). Prints one line:
 *   kind clients calls calls_per_s p50_us p99_us mean_us server_cpu_us_per_call errors
 *   server_syscalls_per_call server_context_switches_per_call
 * Server CPU comes from /proc/SERVER_PID/stat (utime + stime) before and after, context
 * switches from every thread's /proc/SERVER_PID/task/ * /status; with -S, syscalls from
 * `perf stat -e raw_syscalls:sys_enter -p SERVER_PID` over the same window (-1 without
 * perf). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rpc_client.h"
#include "spiffe/workload/workload.pb-c.h"

#define MAX_CLIENTS 64
#define MAX_SAMPLES (1u << 20)

typedef enum Kind { KIND_NOOP, KIND_JWT, KIND_X509 } Kind;

typedef struct Result {
        uint32_t n, errors;
} Result;

static const RpcMetadata hdr[] = {{"workload.spiffe.io", "true"}};

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int one_call(RpcChannel *ch, Kind kind, const uint8_t *jreq, size_t jlen) {
        RpcStream *st = NULL;
        void *resp = NULL;
        size_t len = 0;
        int status = -1, r;

        switch (kind) {
        case KIND_NOOP:
                r = rpc_unary(ch, "/warden.bench.Noop/Ping", NULL, 0, "", 0, 5000, &resp, &len,
                              &status, NULL);
                break;
        case KIND_JWT:
                r = rpc_unary(ch, "/SpiffeWorkloadAPI/FetchJWTSVID", hdr, 1, jreq, jlen, 5000,
                              &resp, &len, &status, NULL);
                break;
        default:
                r = rpc_stream_open(ch, "/SpiffeWorkloadAPI/FetchX509SVID", hdr, 1, "", 0, &st);
                if (r >= 0)
                        r = rpc_stream_next(st, 5000, &resp, &len);
                status = r == 1 ? 0 : -1;
                rpc_stream_free(st);
        }
        free(resp);
        return r < 0 || status != 0 ? -EIO : 0;
}

static int write_all(int fd, const void *p, size_t n) {
        const uint8_t *b = p;

        while (n > 0) {
                ssize_t k = write(fd, b, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -errno;
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

static int read_all(int fd, void *p, size_t n) {
        uint8_t *b = p;

        while (n > 0) {
                ssize_t k = read(fd, b, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -EIO;
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

/* A child: calls for `seconds`, then writes Result + n latencies (µs) to fd. */
static int client_main(const char *sock, Kind kind, double seconds, int fd) {
        char *aud[] = {"bench"};
        JWTSVIDRequest req = JWTSVIDREQUEST__INIT;
        uint8_t jreq[64];
        size_t jlen;
        RpcChannel *ch = NULL;
        uint32_t *lat;
        Result res = {};
        int64_t end;

        req.n_audience = 1;
        req.audience = aud;
        jlen = jwtsvidrequest__pack(&req, jreq);
        lat = malloc(MAX_SAMPLES * sizeof(*lat));
        if (!lat || rpc_channel_new_unix(sock, &ch) < 0)
                return 1;
        (void) one_call(ch, kind, jreq, jlen); /* connect, fill caches */
        end = now_ns() + (int64_t) (seconds * 1e9);
        for (int64_t t0 = now_ns(); t0 < end; t0 = now_ns()) {
                if (one_call(ch, kind, jreq, jlen) < 0)
                        res.errors++;
                else if (res.n < MAX_SAMPLES)
                        lat[res.n++] = (uint32_t) ((now_ns() - t0) / 1000);
        }
        rpc_channel_free(ch);
        if (write_all(fd, &res, sizeof(res)) < 0 || write_all(fd, lat, res.n * sizeof(*lat)) < 0)
                return 1;
        free(lat);
        return 0;
}

static int64_t server_cpu_ticks(long pid) {
        char path[64], buf[1024], *p;
        unsigned long ut = 0, st = 0;
        FILE *f;

        if (pid <= 0)
                return -1;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        p = fgets(buf, sizeof(buf), f);
        fclose(f);
        p = p ? strrchr(buf, ')') : NULL;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime */
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (int64_t) (ut + st);
}

/* Voluntary + involuntary context switches of every thread of pid. */
static int64_t server_ctxsw(long pid) {
        char path[64], line[256];
        int64_t sum = 0;
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%ld/task", pid);
        d = pid > 0 ? opendir(path) : NULL;
        if (!d)
                return -1;
        while ((de = readdir(d))) {
                char p[320];
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "/proc/%ld/task/%s/status", pid, de->d_name);
                f = fopen(p, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        long long v;

                        if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
                            sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
                                sum += v;
                }
                fclose(f);
        }
        closedir(d);
        return sum;
}

/* perf stat counting the server's syscalls until stopped; -1 when perf can't. */
static pid_t perf_start(long pid, const char *out) {
        char spid[32];
        pid_t p;

        snprintf(spid, sizeof(spid), "%ld", pid);
        p = fork();
        if (p == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null >= 0) {
                        dup2(null, STDOUT_FILENO);
                        dup2(null, STDERR_FILENO);
                }
                execlp("perf", "perf", "stat", "-x,", "-o", out, "-e", "raw_syscalls:sys_enter",
                       "-p", spid, (char *) NULL);
                _exit(127);
        }
        return p;
}

static double perf_stop(pid_t p, const char *out) {
        char line[256];
        double v = -1;
        int status;
        FILE *f;

        if (p <= 0)
                return -1;
        kill(p, SIGINT);
        /* perf writes its counts, then dies of the SIGINT it re-raises. */
        if (waitpid(p, &status, 0) != p ||
            !(WIFSIGNALED(status) ? WTERMSIG(status) == SIGINT : WIFEXITED(status)))
                return -1;
        f = fopen(out, "re");
        while (f && fgets(line, sizeof(line), f))
                if (strstr(line, "raw_syscalls:sys_enter")) {
                        if (sscanf(line, "%lf,", &v) != 1)
                                v = 0; /* "<not counted>": none */
                        break;
                }
        if (f)
                fclose(f);
        return v;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

static int run(const char *sock,
               Kind kind,
               const char *name,
               int clients,
               double secs,
               long pid,
               bool syscalls) {
        char perf_out[] = "/tmp/wapi_bench_perf.XXXXXX";
        int fds[MAX_CLIENTS];
        pid_t kids[MAX_CLIENTS], perf = -1;
        uint32_t *all = NULL;
        size_t n = 0;
        uint64_t errors = 0, sum = 0;
        int64_t cpu0, cpu1, sw0, sw1;
        double cpu_us = -1, sc = -1, sw = -1;

        if (syscalls && pid > 0) {
                int tmp = mkstemp(perf_out);

                if (tmp >= 0) {
                        close(tmp);
                        perf = perf_start(pid, perf_out);
                        usleep(200 * 1000); /* perf attaches to every thread */
                }
        }
        cpu0 = server_cpu_ticks(pid);
        sw0 = server_ctxsw(pid);
        for (int i = 0; i < clients; i++) {
                int p[2];

                if (pipe(p) < 0)
                        return 1;
                kids[i] = fork();
                if (kids[i] < 0)
                        return 1;
                if (kids[i] == 0) {
                        close(p[0]);
                        _exit(client_main(sock, kind, secs, p[1]));
                }
                close(p[1]);
                fds[i] = p[0];
        }
        for (int i = 0; i < clients; i++) {
                Result res;

                if (read_all(fds[i], &res, sizeof(res)) < 0)
                        return 1;
                all = realloc(all, (n + res.n + 1) * sizeof(*all));
                if (!all || read_all(fds[i], all + n, res.n * sizeof(*all)) < 0)
                        return 1;
                n += res.n;
                errors += res.errors;
                close(fds[i]);
                (void) waitpid(kids[i], NULL, 0);
        }
        cpu1 = server_cpu_ticks(pid);
        sw1 = server_ctxsw(pid);
        if (perf > 0) {
                sc = perf_stop(perf, perf_out);
                unlink(perf_out);
        }
        if (n == 0) {
                fprintf(stderr, "wapi_bench: no successful %s call (%llu errors)\n", name,
                        (unsigned long long) errors);
                return 1;
        }
        qsort(all, n, sizeof(*all), cmp_u32);
        for (size_t i = 0; i < n; i++)
                sum += all[i];
        if (cpu0 >= 0 && cpu1 >= cpu0)
                cpu_us = (double) (cpu1 - cpu0) * 1e6 / (double) sysconf(_SC_CLK_TCK) / (double) n;
        if (sw0 >= 0 && sw1 >= sw0)
                sw = (double) (sw1 - sw0) / (double) n;
        printf("%s %d %zu %.0f %u %u %.0f %.1f %llu %.1f %.1f\n", name, clients, n,
               (double) n / secs, all[n / 2], all[(n * 99) / 100], (double) sum / (double) n,
               cpu_us, (unsigned long long) errors, sc >= 0 ? sc / (double) n : -1.0, sw);
        free(all);
        return 0;
}

int main(int argc, char **argv) {
        const char *sock = NULL, *kind = "noop";
        int clients = 1, c;
        bool syscalls = false;
        double secs = 3;
        long pid = 0;
        Kind k;

        while ((c = getopt(argc, argv, "s:k:c:t:p:S")) >= 0)
                switch (c) {
                case 's':
                        sock = optarg;
                        break;
                case 'k':
                        kind = optarg;
                        break;
                case 'c':
                        clients = atoi(optarg);
                        break;
                case 't':
                        secs = atof(optarg);
                        break;
                case 'p':
                        pid = atol(optarg);
                        break;
                case 'S':
                        syscalls = true;
                        break;
                default:
                        return 2;
                }
        if (!sock || clients < 1 || clients > MAX_CLIENTS || secs <= 0) {
                fprintf(stderr, "Usage: %s -s SOCKET -k jwt|x509|noop [-c N] [-t S] [-p PID]\n",
                        argv[0]);
                return 2;
        }
        k = strcmp(kind, "jwt") == 0 ? KIND_JWT : strcmp(kind, "x509") == 0 ? KIND_X509 : KIND_NOOP;
        return run(sock, k, kind, clients, secs, pid, syscalls);
}
