/* SPDX-License-Identifier: Apache-2.0 */
/* The attestor against real processes: workers forked and switched to other uids connect to
 * a Unix socket; we take SO_PEERCRED and a pidfd at accept time, as the agent does. Covers
 * exited and zombie callers, a pid really reused by another process (ns_last_pid), a deleted
 * executable, and a worker in a *.service cgroup with a stand-in systemd on a private bus.
 * Needs root (setuid, cgroups); parts that can't run here are skipped. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-login.h>

#include "attest_wl.h"
#include "fake_systemd.h"
#include "testlib.h"
#include "wl_test.h"

#define NOBODY 65534

typedef struct Worker {
        pid_t pid;
        int conn;
        WorkloadInfo w;
} Worker;

static int listen_fd = -1;
static struct sockaddr_un listen_addr;
static socklen_t listen_len;

static void require_root(void) {
        if (geteuid() != 0) {
                print_message("not root: skipping\n");
                skip();
        }
}

static int setup(void **state) {
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(listen_fd >= 0);
        /* Abstract address: no file permissions in the way of other uids. */
        listen_addr.sun_family = AF_UNIX;
        int n = snprintf(listen_addr.sun_path + 1, sizeof(listen_addr.sun_path) - 1,
                         "warden-test-attest-%d", (int) getpid());
        listen_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) n);
        assert_int_equal(bind(listen_fd, (struct sockaddr *) &listen_addr, listen_len), 0);
        assert_int_equal(listen(listen_fd, 8), 0);
        return 0;
}

static int teardown(void **state) {
        close(listen_fd);
        return 0;
}

/* Child: optionally join a cgroup, drop to uid/gid/groups, connect, say hello, wait for the
 * parent to hang up. */
static _Noreturn void worker_main(
        uid_t uid, gid_t gid, const gid_t *groups, size_t ng, const char *cgroup_procs) {
        char c = 'r';
        int fd;

        if (cgroup_procs) {
                char buf[32];
                int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
                int cg = open(cgroup_procs, O_WRONLY | O_CLOEXEC);
                if (cg < 0 || write(cg, buf, (size_t) n) != n)
                        _exit(10);
                close(cg);
        }
        if (setgroups(ng, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
                _exit(11);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &listen_addr, listen_len) < 0)
                _exit(12);
        if (write(fd, &c, 1) != 1)
                _exit(13);
        while (read(fd, &c, 1) > 0)
                ;
        _exit(0);
}

/* What the agent's accept loop does: accept, SO_PEERCRED, pidfd_open. */
static void worker_start(Worker *wk,
                         uid_t uid,
                         gid_t gid,
                         const gid_t *groups,
                         size_t ng,
                         const char *cgroup_procs) {
        struct ucred uc;
        socklen_t len = sizeof(uc);
        char c;

        wk->pid = fork();
        assert_true(wk->pid >= 0);
        if (wk->pid == 0)
                worker_main(uid, gid, groups, ng, cgroup_procs);
        wk->conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(wk->conn >= 0);
        assert_int_equal(read(wk->conn, &c, 1), 1);
        assert_int_equal(getsockopt(wk->conn, SOL_SOCKET, SO_PEERCRED, &uc, &len), 0);
        assert_int_equal(uc.pid, wk->pid);
        wk->w = (WorkloadInfo){uc.pid, uc.uid, uc.gid, pidfd_open(uc.pid, 0), wk->conn};
        assert_true(wk->w.pidfd >= 0);
}

/* Hang up; the worker exits. reap: also collect it (else it stays a zombie). */
static void worker_hangup(Worker *wk, bool reap) {
        struct pollfd p = {.fd = wk->w.pidfd, .events = POLLIN};
        int status;

        close(wk->conn);
        wk->conn = -1;
        wk->w.sock = -EBADF;
        assert_int_equal(poll(&p, 1, 10000), 1); /* readable once it has exited */
        if (reap) {
                assert_int_equal(waitpid(wk->pid, &status, 0), wk->pid);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
}

static void worker_done(Worker *wk) {
        if (wk->conn >= 0)
                worker_hangup(wk, true);
        close(wk->w.pidfd);
}

static void test_other_uid(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        _cleanup_(selector_set_done) SelectorSet set = {};
        const gid_t groups[] = {NOBODY, 100};
        char exe[PATH_MAX], want[65];
        Worker wk;

        require_root();
        assert_ok(attestor_new(NULL, &a));
        worker_start(&wk, NOBODY, NOBODY, groups, ELEMENTSOF(groups), NULL);
        assert_int_equal(wk.w.uid, NOBODY);
        assert_int_equal(wk.w.gid, NOBODY);
        assert_ok(attestor_attest(a, &wk.w, &set, NULL));

        wl_test_assert_has(&set, "unix", "uid:%d", NOBODY);
        wl_test_assert_has(&set, "unix", "gid:%d", NOBODY);
        wl_test_assert_has(&set, "unix", "supplementary_gid:%d", NOBODY);
        wl_test_assert_has(&set, "unix", "supplementary_gid:%d", 100);
        assert_int_equal(wl_test_count_key(&set, "unix", "supplementary_gid:"), 2);
        /* Names from this system's databases, not assumed. */
        struct passwd *pw = getpwuid(NOBODY);
        assert_non_null(pw);
        wl_test_assert_has(&set, "unix", "user:%s", pw->pw_name);
        struct group *gr = getgrgid(NOBODY);
        assert_non_null(gr);
        wl_test_assert_has(&set, "unix", "group:%s", gr->gr_name);
        wl_test_assert_has(&set, "unix", "supplementary_group:%s", gr->gr_name);
        gr = getgrgid(100);
        if (gr)
                wl_test_assert_has(&set, "unix", "supplementary_group:%s", gr->gr_name);
        assert_false(wl_test_has(&set, "unix", "uid:0"));

        /* A forked worker runs our own executable. */
        assert_non_null(realpath("/proc/self/exe", exe));
        wl_test_assert_has(&set, "unix", "path:%s", exe);
        wl_test_sha256_path(exe, want);
        wl_test_assert_has(&set, "unix", "sha256:%s", want);
        worker_done(&wk);
}

static void test_exited(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        SelectorSet set = {};
        Worker wk;

        require_root();
        assert_ok(attestor_new(NULL, &a));

        /* Exited and reaped: the pid is free (and may be reused). */
        worker_start(&wk, NOBODY, NOBODY, NULL, 0, NULL);
        worker_hangup(&wk, true);
        assert_errno(attestor_attest(a, &wk.w, &set, NULL), ESRCH);
        worker_done(&wk);

        /* Exited but not reaped: a zombie still holds its pid and /proc entry. */
        worker_start(&wk, NOBODY, NOBODY, NULL, 0, NULL);
        worker_hangup(&wk, false);
        assert_errno(attestor_attest(a, &wk.w, &set, NULL), ESRCH);
        assert_int_equal(waitpid(wk.pid, NULL, 0), wk.pid);
        worker_done(&wk);
        assert_int_equal(set.n, 0);
}

static int set_last_pid(pid_t pid) {
        char buf[32];
        int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
        int n = snprintf(buf, sizeof(buf), "%d", (int) pid), r = 0;

        if (fd < 0)
                return -errno;
        if (write(fd, buf, (size_t) n) != n)
                r = -errno;
        close(fd);
        return r;
}

/* A child that waits until *release is closed. */
static pid_t fork_idle(int *release) {
        int p[2];
        pid_t pid;
        char c;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[1]);
                while (read(p[0], &c, 1) > 0)
                        ;
                _exit(0);
        }
        close(p[0]);
        *release = p[1];
        return pid;
}

/* The worker connects and exits; another process gets its pid before we attest. */
static void test_pid_reused(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        _cleanup_(selector_set_done) SelectorSet set = {};
        pid_t other = -1;
        int release = -1;
        Worker wk;

        require_root();
        assert_ok(attestor_new(NULL, &a));
        for (int tries = 0; tries < 20 && other < 0; tries++) {
                worker_start(&wk, NOBODY, NOBODY, NULL, 0, NULL);
                worker_hangup(&wk, true);
                if (set_last_pid(wk.pid - 1) < 0) {
                        worker_done(&wk);
                        print_message("can't write ns_last_pid: skipping\n");
                        skip();
                }
                pid_t p = fork_idle(&release);
                if (p == wk.pid) {
                        other = p;
                        break;
                }
                close(release);
                waitpid(p, NULL, 0);
                worker_done(&wk);
        }
        if (other < 0) {
                print_message("pid not reused after 20 tries: skipping\n");
                skip();
        }

        /* /proc/<pid> now shows a live root process, but the pidfd knows better. */
        assert_errno(attestor_attest(a, &wk.w, &set, NULL), ESRCH);
        assert_int_equal(set.n, 0);
        /* The new process itself attests fine. */
        WorkloadInfo w2 = {other, 0, 0, pidfd_open(other, 0), -EBADF};
        assert_true(w2.pidfd >= 0);
        assert_ok(attestor_attest(a, &w2, &set, NULL));
        wl_test_assert_has(&set, "unix", "uid:0");
        close(w2.pidfd);
        close(release);
        assert_int_equal(waitpid(other, NULL, 0), other);
        worker_done(&wk);
}

static void copy_file(const char *from, const char *to) {
        size_t n;
        char *data = test_read_file(from, &n);

        assert_non_null(data);
        wl_test_write_file(to, data, n);
        assert_int_equal(chmod(to, 0755), 0);
        free(data);
}

/* Runs attest_client (argv after the socket name) as a worker: accept its connection as
 * the agent would, and wait until its executable is `exe` (an exec is done). */
static void client_start(Worker *wk, const char *exe, const char *const *args, size_t n) {
        const char *argv[16];
        struct ucred uc;
        socklen_t len = sizeof(uc);
        char link[64], c;

        assert_true(n + 3 <= ELEMENTSOF(argv));
        argv[0] = "attest_client";
        argv[1] = listen_addr.sun_path + 1;
        for (size_t i = 0; i < n; i++)
                argv[2 + i] = args[i];
        argv[2 + n] = NULL;
        wk->pid = fork();
        assert_true(wk->pid >= 0);
        if (wk->pid == 0) {
                execv(args[n], (char *const *) argv); /* args[n]: the client binary */
                _exit(127);
        }
        wk->conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(wk->conn >= 0);
        assert_int_equal(read(wk->conn, &c, 1), 1);
        assert_int_equal(getsockopt(wk->conn, SOL_SOCKET, SO_PEERCRED, &uc, &len), 0);
        assert_int_equal(uc.pid, wk->pid);
        wk->w = (WorkloadInfo){uc.pid, uc.uid, uc.gid, pidfd_open(uc.pid, 0), wk->conn};
        assert_true(wk->w.pidfd >= 0);
        snprintf(link, sizeof(link), "/proc/%d/exe", (int) wk->pid);
        for (int i = 0; i < 500; i++) { /* until the exec is done */
                char t[PATH_MAX];
                ssize_t k = readlink(link, t, sizeof(t) - 1);
                struct timespec ts = {0, 10 * 1000 * 1000};

                if (k > 0 && (t[k] = 0, strcmp(t, exe) == 0))
                        return;
                nanosleep(&ts, NULL);
        }
        fail_msg("pid %d never ran %s", (int) wk->pid, exe);
}

static void client_stop(Worker *wk) {
        close(wk->conn);
        wk->conn = -1;
        kill(wk->pid, SIGKILL);
        assert_int_equal(waitpid(wk->pid, NULL, 0), wk->pid);
        close(wk->w.pidfd);
}

/* Exec a private copy of the client; attest (hash cached the second time); delete the
 * file: still bound to the connection, but no path and no hash. */
static void test_deleted_exe(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        char *dir = test_tmpdir(), bin[PATH_MAX], real[PATH_MAX], want[65];
        AttestorStats st;
        Worker wk;

        assert_non_null(dir);
        snprintf(bin, sizeof(bin), "%s/client", dir);
        copy_file(ATTEST_CLIENT_PATH, bin);
        assert_non_null(realpath(bin, real));
        wl_test_sha256_path(bin, want);
        wl_test_wait_racy_window();
        assert_ok(attestor_new(NULL, &a));

        client_start(&wk, real, (const char *[]){"hold", bin}, 1);
        for (int i = 0; i < 2; i++) {
                _cleanup_(selector_set_done) SelectorSet set = {};
                bool bound = false;

                assert_ok(attestor_attest(a, &wk.w, &set, &bound));
                assert_true(bound);
                wl_test_assert_has(&set, "unix", "path:%s", real);
                wl_test_assert_has(&set, "unix", "sha256:%s", want);
        }
        attestor_get_stats(a, &st);
        assert_int_equal(st.hash_computed, 1);
        assert_int_equal(st.cache_hits, 1);

        assert_int_equal(unlink(bin), 0);
        _cleanup_(selector_set_done) SelectorSet set = {};
        bool bound = false;
        assert_ok(attestor_attest(a, &wk.w, &set, &bound));
        assert_true(bound);
        assert_int_equal(wl_test_count_key(&set, "unix", "path:"), 0);
        assert_int_equal(wl_test_count_key(&set, "unix", "sha256:"), 0);
        wl_test_assert_has(&set, "unix", "uid:%u", (unsigned) getuid());
        client_stop(&wk);
        test_rmdir_free(dir);
}

/* The attack: connect, then exec an allowed binary (itself with the socket inherited, or
 * in the parent while a forked child keeps the socket). /proc/<pid>/exe then names the
 * allowed binary; the attestor must not say so. */
static void test_exec_after_connect(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        const char *sleep_bin =
                access("/usr/bin/sleep", X_OK) == 0 ? "/usr/bin/sleep" : "/bin/sleep";
        char sleep_real[PATH_MAX], client_real[PATH_MAX];
        const char *modes[] = {"exec", "fork-exec"};

        assert_non_null(realpath(sleep_bin, sleep_real));
        assert_non_null(realpath(ATTEST_CLIENT_PATH, client_real));
        assert_ok(attestor_new(NULL, &a));
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                _cleanup_(selector_set_done) SelectorSet set = {};
                AttestorStats before, after;
                bool bound = true;
                Worker wk;

                client_start(&wk, sleep_real,
                             (const char *[]){modes[i], sleep_bin, "60", ATTEST_CLIENT_PATH}, 3);
                attestor_get_stats(a, &before);
                assert_ok(attestor_attest(a, &wk.w, &set, &bound));
                attestor_get_stats(a, &after);
                assert_false(bound);
                assert_int_equal(after.unbound, before.unbound + 1);
                wl_test_assert_has(&set, "unix", "uid:%u", (unsigned) getuid());
                assert_int_equal(wl_test_count_key(&set, "unix", "path:"), 0);
                assert_int_equal(wl_test_count_key(&set, "unix", "sha256:"), 0);
                assert_int_equal(wl_test_count_key(&set, "unix", "supplementary_gid:"), 0);
                client_stop(&wk);
        }

        /* Control: the client holding its own connection is bound and named. */
        _cleanup_(selector_set_done) SelectorSet set = {};
        bool bound = false;
        Worker wk;
        client_start(&wk, client_real, (const char *[]){"hold", ATTEST_CLIENT_PATH}, 1);
        assert_ok(attestor_attest(a, &wk.w, &set, &bound));
        assert_true(bound);
        wl_test_assert_has(&set, "unix", "path:%s", client_real);
        client_stop(&wk);
}

/* Makes <base>/<unit> a cgroup that sd_pid_get_unit() maps to unit (tried on each hierarchy
 * systemd might read); fills its directory and cgroup.procs path. */
static bool find_unit_cgroup(const char *unit, char *dir, char *procs) {
        static const char *bases[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup",
                                      "/sys/fs/cgroup/systemd"};

        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                char buf[32], *u = NULL;
                bool match = false;
                int release, fd, n;
                pid_t p;

                if ((size_t) snprintf(dir, PATH_MAX, "%s/%s", bases[i], unit) >= PATH_MAX / 2 ||
                    (size_t) snprintf(procs, PATH_MAX, "%s/cgroup.procs", dir) >= PATH_MAX)
                        continue;
                if (mkdir(dir, 0755) < 0)
                        continue;
                p = fork_idle(&release);
                n = snprintf(buf, sizeof(buf), "%d\n", (int) p);
                fd = open(procs, O_WRONLY | O_CLOEXEC);
                if (fd >= 0 && write(fd, buf, (size_t) n) == n)
                        match = sd_pid_get_unit(p, &u) >= 0 && strcmp(u, unit) == 0;
                if (fd >= 0)
                        close(fd);
                free(u);
                close(release);
                waitpid(p, NULL, 0);
                if (match)
                        return true;
                rmdir(dir);
        }
        return false;
}

static void attest_unit(Attestor *a, Worker *wk, const char *unit, const char *fragment) {
        _cleanup_(selector_set_done) SelectorSet set = {};

        assert_ok(attestor_attest(a, &wk->w, &set, NULL));
        wl_test_assert_has(&set, "unix", "uid:%d", NOBODY);
        wl_test_assert_has(&set, "systemd", "id:%s", unit);
        if (fragment)
                wl_test_assert_has(&set, "systemd", "fragment_path:%s", fragment);
        assert_int_equal(wl_test_count_key(&set, "systemd", "fragment_path:"), fragment ? 1 : 0);
        assert_int_equal(wl_test_count_key(&set, "systemd", ""), fragment ? 2 : 1);
}

/* A worker inside "warden-test-<pid>.service": systemd:id from its cgroup, FragmentPath from
 * the (stand-in) manager on the bus; without a bus, or once it went away, only the id. */
static void test_systemd_unit(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL, *nobus = NULL, *off = NULL;
        char unit[64], cgdir[PATH_MAX], procs[PATH_MAX], fragment[PATH_MAX], addr[PATH_MAX + 16];
        FakeSystemd *fake = NULL;
        AttestorConfig cfg;
        Worker wk;
        char *dir;
        int r;

        require_root();
        snprintf(unit, sizeof(unit), "warden-test-%d.service", (int) getpid());
        if (!find_unit_cgroup(unit, cgdir, procs)) {
                print_message(
                        "no writable cgroup hierarchy that sd_pid_get_unit reads: skipping\n");
                skip();
        }
        dir = test_tmpdir();
        assert_non_null(dir);
        snprintf(fragment, sizeof(fragment), "/etc/systemd/system/%s", unit);
        r = fake_systemd_start(dir, unit, fragment, &fake);
        if (r < 0)
                print_message("dbus-daemon unavailable (%s): systemd:id only\n", strerror(-r));
        assert_ok(attestor_new(NULL, &a));
        worker_start(&wk, NOBODY, NOBODY, NULL, 0, procs);

        attest_unit(a, &wk, unit, fake ? fragment : NULL);
        if (fake) {
                assert_int_equal(fake_systemd_calls(fake), 1);
                /* The bus dies under a kept connection: still attested, without the path. */
                fake_systemd_stop(fake);
                attest_unit(a, &wk, unit, NULL);
        }

        /* No bus at all. */
        snprintf(addr, sizeof(addr), "unix:path=%s/no-bus", dir);
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1), 0);
        assert_ok(attestor_new(NULL, &nobus));
        attest_unit(nobus, &wk, unit, NULL);
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");

        /* systemd selectors switched off. */
        _cleanup_(selector_set_done) SelectorSet set = {};
        attestor_config_init(&cfg);
        cfg.systemd = false;
        assert_ok(attestor_new(&cfg, &off));
        assert_ok(attestor_attest(off, &wk.w, &set, NULL));
        assert_int_equal(wl_test_count_key(&set, "systemd", ""), 0);

        worker_done(&wk);
        assert_int_equal(rmdir(cgdir), 0);
        test_rmdir_free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_other_uid),          cmocka_unit_test(test_exited),
                cmocka_unit_test(test_pid_reused),         cmocka_unit_test(test_deleted_exe),
                cmocka_unit_test(test_exec_after_connect), cmocka_unit_test(test_systemd_unit),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
