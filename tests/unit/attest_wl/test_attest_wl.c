/* SPDX-License-Identifier: Apache-2.0 */
/* Workload attestor: /proc parsers, the sha256 cache, attestation of our own process, and
 * fake /proc trees for the cases a live process can't show (start time changing mid-way,
 * zombies, many groups, odd exe links). Processes of other users: test_attest_wl_procs.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <systemd/sd-login.h>

#include "attest_wl.h"
#include "testlib.h"
#include "wl_proc.h"
#include "wl_sha256cache.h"
#include "wl_test.h"

static const char STAT_OK[] = "1234 (my prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 "
                              "1 0 987654 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 "
                              "0 0 17 0 0 0 0 0 0\n";

static void test_parse_stat(void **state) {
        uint64_t start = 0;
        char st = 0;
        (void) state;

        assert_ok(wl_proc_parse_stat(STAT_OK, strlen(STAT_OK), &st, &start));
        assert_int_equal(st, 'S');
        assert_int_equal(start, 987654);

        /* The comm is the workload's choice: spaces, parens and fake fields inside it. */
        const char *evil = "7 (a) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 1) Z 1 1 1 0 -1 "
                           "0 0 0 0 0 0 0 0 0 20 0 1 0 42 0";
        assert_ok(wl_proc_parse_stat(evil, strlen(evil), &st, &start));
        assert_int_equal(st, 'Z');
        assert_int_equal(start, 42);

        /* Not NUL-terminated: only size bytes count. */
        char copy[sizeof(STAT_OK)];
        memcpy(copy, STAT_OK, sizeof(copy));
        size_t cut = (size_t) (strstr(copy, "987654") - copy) + 3;
        assert_ok(wl_proc_parse_stat(copy, cut, &st, &start));
        assert_int_equal(start, 987);

        const char *bad[] = {
                "",
                "1 (x S 1",
                "1 x) S 1 2",
                "1 (x) S 1 2 3",
                "1 (x) 5 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0",
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 0",
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42x 0",
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551616 0",
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0  42",
                "1 (x) S 1 1 1 0 -- 0 0 0 0 0 0 0 0 0 20 0 1 0 42",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_errno(wl_proc_parse_stat(bad[i], strlen(bad[i]), &st, &start), EBADMSG);
        const char *max = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615";
        assert_ok(wl_proc_parse_stat(max, strlen(max), &st, &start));
        assert_true(start == UINT64_MAX);
}

static void test_parse_groups(void **state) {
        gid_t g[4];
        size_t n = 99;
        (void) state;

        const char *s = "Name:\tx\nUid:\t0\t0\t0\t0\nGroups:\t0 100 4294967294 \nNgid:\t0\n";
        assert_ok(wl_proc_parse_groups(s, strlen(s), g, 4, &n));
        assert_int_equal(n, 3);
        assert_int_equal(g[0], 0);
        assert_int_equal(g[1], 100);
        assert_int_equal(g[2], 4294967294u);

        s = "Name:\tx\nGroups:\t\nNgid:\t0\n";
        assert_ok(wl_proc_parse_groups(s, strlen(s), g, 4, &n));
        assert_int_equal(n, 0);
        s = "Groups:\t1 2 3 4";
        assert_ok(wl_proc_parse_groups(s, strlen(s), g, 4, &n));
        assert_int_equal(n, 4);
        s = "Groups:\t1 2 3 4 5";
        assert_errno(wl_proc_parse_groups(s, strlen(s), g, 4, &n), E2BIG);

        const char *bad[] = {
                "Name:\tx\n",    "XGroups:\t1\n",         "Groups:\t1,2\n",
                "Groups:\t-1\n", "Groups:\t4294967295\n", "Groups:\t99999999999999999999\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_errno(wl_proc_parse_groups(bad[i], strlen(bad[i]), g, 4, &n), EBADMSG);
}

static void test_parse_fdinfo(void **state) {
        int64_t pid = 0;
        (void) state;

        const char *s =
                "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1\nPid:\t4242\nNSpid:\t4242\n";
        assert_ok(wl_proc_parse_fdinfo_pid(s, strlen(s), &pid));
        assert_int_equal(pid, 4242);
        s = "pos:\t0\nPid:\t-1\nNSpid:\t-1\n";
        assert_ok(wl_proc_parse_fdinfo_pid(s, strlen(s), &pid));
        assert_int_equal(pid, -1);
        s = "pos:\t0\nflags:\t02\n";
        assert_errno(wl_proc_parse_fdinfo_pid(s, strlen(s), &pid), ENODATA);
        s = "Pid:\t-2\n";
        assert_errno(wl_proc_parse_fdinfo_pid(s, strlen(s), &pid), EBADMSG);
        s = "Pid:\t12x\n";
        assert_errno(wl_proc_parse_fdinfo_pid(s, strlen(s), &pid), EBADMSG);
}

/* Random byte flips and truncations of valid inputs: the parsers must stay in bounds (ASan)
 * and either succeed or say EBADMSG/E2BIG. */
static void test_parsers_mutated(void **state) {
        const char *status = "Name:\tx\nGroups:\t1 2 3 100 65534 \nNgid:\t0\n";
        char buf[256];
        unsigned seed = 12345;
        (void) state;

        for (int i = 0; i < 20000; i++) {
                const char *src = i % 2 ? STAT_OK : status;
                size_t n = strlen(src), len;
                uint64_t start;
                gid_t g[8];
                size_t ng;
                char st;
                int r;

                memcpy(buf, src, n);
                for (int k = 0; k < 3; k++)
                        buf[rand_r(&seed) % n] = (char) (rand_r(&seed) & 0xff);
                len = (size_t) rand_r(&seed) % (n + 1);
                /* Copy into an exact-size heap block so overreads trip ASan. */
                char *exact = malloc(len ? len : 1);
                assert_non_null(exact);
                memcpy(exact, buf, len);
                r = wl_proc_parse_stat(exact, len, &st, &start);
                assert_true(r == 0 || r == -EBADMSG);
                r = wl_proc_parse_groups(exact, len, g, ELEMENTSOF(g), &ng);
                assert_true(r == 0 || r == -EBADMSG || r == -E2BIG);
                free(exact);
        }
}

static void test_config(void **state) {
        AttestorConfig cfg;
        Attestor *a = NULL;
        (void) state;

        assert_ok(attestor_new(NULL, &a));
        a = attestor_free(a);
        assert_null(a);
        assert_null(attestor_free(NULL));

        attestor_config_init(&cfg);
        assert_true(cfg.sha256_max_size == 64u * 1024 * 1024);
        cfg.cache_capacity = 0;
        assert_errno(attestor_new(&cfg, &a), EINVAL);
        cfg.cache_capacity = ATTESTOR_CACHE_CAPACITY_MAX + 1;
        assert_errno(attestor_new(&cfg, &a), EINVAL);
        attestor_config_init(&cfg);
        cfg.proc_root = "proc";
        assert_errno(attestor_new(&cfg, &a), EINVAL);
        cfg.proc_root = NULL;
        assert_errno(attestor_new(&cfg, &a), EINVAL);
        assert_null(a);
}

static void test_hash_file(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        char *dir = test_tmpdir(), path[PATH_MAX], hex[65], want[65];
        AttestorStats st;
        (void) state;

        assert_ok(attestor_new(NULL, &a));
        snprintf(path, sizeof(path), "%s/f", dir);
        wl_test_write_file(path, "hello world\n", 12);
        wl_test_wait_racy_window();
        wl_test_sha256_path(path, want);
        assert_string_equal(want,
                            "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");

        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_ok(attestor_hash_file(a, fd, hex));
        assert_string_equal(hex, want);
        assert_true(lseek(fd, 0, SEEK_CUR) == 0); /* pread: offset untouched */
        close(fd);
        attestor_get_stats(a, &st);
        assert_int_equal(st.hash_computed, 1);
        assert_int_equal(st.cache_hits, 0);

        /* Same file, another fd: served from the cache. */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_ok(attestor_hash_file(a, fd, hex));
        assert_string_equal(hex, want);
        attestor_get_stats(a, &st);
        assert_int_equal(st.hash_computed, 1);
        assert_int_equal(st.cache_hits, 1);

        /* Same size, new bytes, and mtime put back: ctime still moves, so it's rehashed. */
        struct stat before;
        assert_int_equal(fstat(fd, &before), 0);
        close(fd);
        wl_test_write_file(path, "HELLO WORLD\n", 12);
        struct timespec times[2] = {before.st_atim, before.st_mtim};
        assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
        wl_test_wait_racy_window();
        wl_test_sha256_path(path, want);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_ok(attestor_hash_file(a, fd, hex));
        assert_string_equal(hex, want);
        close(fd);
        attestor_get_stats(a, &st);
        assert_int_equal(st.hash_computed, 2);
        assert_int_equal(st.cache_hits, 1);

        /* Not regular files. */
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_errno(attestor_hash_file(a, fd, hex), EINVAL);
        close(fd);
        assert_errno(attestor_hash_file(a, -1, hex), EINVAL);
        test_rmdir_free(dir);
}

/* A file written just now may change again within one timestamp tick: hashed, not cached. */
static void test_hash_racy_not_cached(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        char *dir = test_tmpdir(), path[PATH_MAX], hex[65];
        AttestorStats st;
        (void) state;

        assert_ok(attestor_new(NULL, &a));
        snprintf(path, sizeof(path), "%s/f", dir);
        wl_test_write_file(path, "fresh", 5);
        for (int i = 0; i < 2; i++) {
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                assert_ok(attestor_hash_file(a, fd, hex));
                close(fd);
        }
        attestor_get_stats(a, &st);
        assert_int_equal(st.cache_hits, 0);
        assert_int_equal(st.hash_computed, 2);
        test_rmdir_free(dir);
}

static void test_hash_size_limit(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        char *dir = test_tmpdir(), path[PATH_MAX], hex[65];
        AttestorConfig cfg;
        AttestorStats st;
        (void) state;

        attestor_config_init(&cfg);
        cfg.sha256_max_size = 16;
        assert_ok(attestor_new(&cfg, &a));
        snprintf(path, sizeof(path), "%s/at-limit", dir);
        wl_test_write_file(path, "0123456789abcdef", 16);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_ok(attestor_hash_file(a, fd, hex));
        close(fd);
        snprintf(path, sizeof(path), "%s/over-limit", dir);
        wl_test_write_file(path, "0123456789abcdefX", 17);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_errno(attestor_hash_file(a, fd, hex), EFBIG);
        close(fd);
        attestor_get_stats(a, &st);
        assert_int_equal(st.too_big, 1);
        assert_int_equal(st.hash_computed, 1);

        /* wl_sha256_fd enforces the limit itself too (a file that grows while read). */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_errno(wl_sha256_fd(fd, 16, hex), EFBIG);
        assert_ok(wl_sha256_fd(fd, 17, hex));
        close(fd);
        test_rmdir_free(dir);
}

static void test_hash_lru(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        char *dir = test_tmpdir(), path[3][PATH_MAX], hex[65];
        AttestorConfig cfg;
        AttestorStats st;
        (void) state;

        attestor_config_init(&cfg);
        cfg.cache_capacity = 2;
        assert_ok(attestor_new(&cfg, &a));
        for (int i = 0; i < 3; i++) {
                snprintf(path[i], sizeof(path[i]), "%s/f%d", dir, i);
                wl_test_write_file(path[i], path[i], strlen(path[i]));
        }
        wl_test_wait_racy_window();
        /* A B A C: C evicts B (least recently used); then A hits, B misses. */
        const int order[] = {0, 1, 0, 2, 0, 1};
        const int hit[] = {0, 0, 1, 0, 1, 0};
        uint64_t hits = 0;
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                int fd = open(path[order[i]], O_RDONLY | O_CLOEXEC);
                assert_ok(attestor_hash_file(a, fd, hex));
                close(fd);
                attestor_get_stats(a, &st);
                hits += (uint64_t) hit[i];
                assert_int_equal(st.cache_hits, hits);
        }
        assert_int_equal(st.hash_computed, 4);
        test_rmdir_free(dir);
}

static void test_attest_self(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        _cleanup_(selector_set_done) SelectorSet set = {};
        char exe[PATH_MAX], want[65], *unit = NULL;
        WorkloadInfo w = {getpid(), geteuid(), getegid(), -1, -EBADF};
        gid_t groups[256];
        int sp[2];
        bool bound = false;
        (void) state;

        assert_ok(attestor_new(NULL, &a));
        w.pidfd = pidfd_open(getpid(), 0);
        assert_true(w.pidfd >= 0);
        /* We hold the client end ourselves, close-on-exec: bound, every selector. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        w.sock = sp[0];
        assert_ok(attestor_attest(a, &w, &set, &bound));
        assert_true(bound);

        wl_test_assert_has(&set, "unix", "uid:%u", (unsigned) geteuid());
        wl_test_assert_has(&set, "unix", "gid:%u", (unsigned) getegid());
        struct passwd *pw = getpwuid(geteuid());
        if (pw)
                wl_test_assert_has(&set, "unix", "user:%s", pw->pw_name);
        struct group *gr = getgrgid(getegid());
        if (gr)
                wl_test_assert_has(&set, "unix", "group:%s", gr->gr_name);
        int ng = getgroups(ELEMENTSOF(groups), groups);
        assert_true(ng >= 0);
        for (int i = 0; i < ng; i++)
                wl_test_assert_has(&set, "unix", "supplementary_gid:%u", (unsigned) groups[i]);
        assert_int_equal(wl_test_count_key(&set, "unix", "supplementary_gid:"), ng);

        assert_non_null(realpath("/proc/self/exe", exe));
        wl_test_assert_has(&set, "unix", "path:%s", exe);
        wl_test_sha256_path(exe, want);
        wl_test_assert_has(&set, "unix", "sha256:%s", want);
        assert_int_equal(wl_test_count_key(&set, "unix", "path:"), 1);

        /* This sandbox runs no systemd: we are in no unit, so no systemd selectors. Where we
         * are in one, systemd:id must name it. */
        if (sd_pid_get_unit(getpid(), &unit) < 0)
                assert_int_equal(wl_test_count_key(&set, "systemd", ""), 0);
        else
                wl_test_assert_has(&set, "systemd", "id:%s", unit);
        free(unit);
        close(sp[0]);
        close(sp[1]);

        /* The client end without close-on-exec, as after an exec: uid/gid only. */
        _cleanup_(selector_set_done) SelectorSet unbound = {};
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        assert_int_equal(fcntl(sp[0], F_SETFD, FD_CLOEXEC), 0);
        w.sock = sp[0];
        assert_ok(attestor_attest(a, &w, &unbound, &bound));
        assert_false(bound);
        wl_test_assert_has(&unbound, "unix", "uid:%u", (unsigned) geteuid());
        assert_int_equal(wl_test_count_key(&unbound, "unix", "path:"), 0);
        assert_int_equal(wl_test_count_key(&unbound, "unix", "supplementary_gid:"), 0);
        /* No connection at all: the same. */
        selector_set_done(&unbound);
        w.sock = -EBADF;
        assert_ok(attestor_attest(a, &w, &unbound, &bound));
        assert_false(bound);
        assert_int_equal(wl_test_count_key(&unbound, "unix", "path:"), 0);
        /* The client end closed: the caller is gone. */
        close(sp[1]);
        w.sock = sp[0];
        assert_errno(attestor_attest(a, &w, &unbound, &bound), ESRCH);
        close(sp[0]);
        close(w.pidfd);
}

static void test_attest_bad_input(void **state) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        SelectorSet set = {};
        char *dir = test_tmpdir(), path[PATH_MAX];
        (void) state;

        assert_ok(attestor_new(NULL, &a));
        int pidfd = pidfd_open(getpid(), 0);
        assert_true(pidfd >= 0);
        WorkloadInfo w = {0, 0, 0, pidfd, -EBADF};
        assert_errno(attestor_attest(a, &w, &set, NULL), EINVAL);
        w = (WorkloadInfo){getpid(), 0, 0, -1, -EBADF};
        assert_errno(attestor_attest(a, &w, &set, NULL), EINVAL);
        assert_errno(attestor_attest(NULL, &w, &set, NULL), EINVAL);

        /* A pidfd pinning another process than w.pid: refused. */
        pid_t parent = getppid();
        w = (WorkloadInfo){parent, 0, 0, pidfd, -EBADF};
        assert_errno(attestor_attest(a, &w, &set, NULL), ESRCH);

        /* Not a pidfd at all. */
        snprintf(path, sizeof(path), "%s/f", dir);
        wl_test_write_file(path, "x", 1);
        w = (WorkloadInfo){getpid(), 0, 0, open(path, O_RDONLY | O_CLOEXEC), -EBADF};
        assert_errno(attestor_attest(a, &w, &set, NULL), EBADF);
        close(w.pidfd);
        assert_int_equal(set.n, 0);
        close(pidfd);
        test_rmdir_free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_stat),
                cmocka_unit_test(test_parse_groups),
                cmocka_unit_test(test_parse_fdinfo),
                cmocka_unit_test(test_parsers_mutated),
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_hash_file),
                cmocka_unit_test(test_hash_racy_not_cached),
                cmocka_unit_test(test_hash_size_limit),
                cmocka_unit_test(test_hash_lru),
                cmocka_unit_test(test_attest_self),
                cmocka_unit_test(test_attest_bad_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
