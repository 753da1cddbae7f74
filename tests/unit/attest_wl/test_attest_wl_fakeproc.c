/* SPDX-License-Identifier: Apache-2.0 */
/* The attestor over a fake /proc tree (AttestorConfig.proc_root). The pid and pidfd are our
 * own, so the pidfd checks are real; stat, status and the exe link are files we write. This
 * reaches what a live process can't show on demand: the start time changing between the
 * first and the last read, zombies, hundreds of groups, odd exe links. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest_wl.h"
#include "testlib.h"
#include "wl_test.h"

#define UID 4242
#define GID 4343

typedef struct Fake {
        char *root; /* proc_root */
        char piddir[PATH_MAX];
        char bin[PATH_MAX]; /* a regular file the exe link can point at */
        int sp[2];          /* the "connection": sp[0] ours, sp[1] the client's */
        WorkloadInfo w;
} Fake;

static void stat_line(char *buf, size_t size, char state, unsigned long start) {
        snprintf(buf, size,
                 "%d (fake) %c 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %lu 1000 10 "
                 "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
                 (int) getpid(), state, start);
}

static void fake_write(Fake *f, const char *name, const char *content) {
        char path[PATH_MAX];

        WL_PATHF(path, "%s/%s", f->piddir, name);
        wl_test_write_file(path, content, strlen(content));
}

static void fake_exe(Fake *f, const char *target) {
        char path[PATH_MAX];

        WL_PATHF(path, "%s/exe", f->piddir);
        unlink(path);
        assert_int_equal(symlink(target, path), 0);
}

/* The fake process's fd 7: the client end of our connection, with or without
 * close-on-exec, or (holder false) not there at all. */
static void fake_holder(Fake *f, bool holder, bool cloexec) {
        char path[PATH_MAX], link[64];
        struct stat st;

        WL_PATHF(path, "%s/fd/7", f->piddir);
        unlink(path);
        if (!holder)
                return;
        assert_int_equal(fstat(f->sp[1], &st), 0);
        snprintf(link, sizeof(link), "socket:[%lu]", (unsigned long) st.st_ino);
        assert_int_equal(symlink(link, path), 0);
        fake_write(f, "fdinfo/7",
                   cloexec ? "pos:\t0\nflags:\t02000002\nmnt_id:\t9\n"
                           : "pos:\t0\nflags:\t00000002\nmnt_id:\t9\n");
}

static int setup(void **state) {
        Fake *f = calloc(1, sizeof(Fake));
        char line[512];

        assert_non_null(f);
        f->root = test_tmpdir();
        assert_non_null(f->root);
        WL_PATHF(f->piddir, "%s/%d", f->root, (int) getpid());
        assert_int_equal(mkdir(f->piddir, 0755), 0);
        stat_line(line, sizeof(line), 'S', 5555);
        fake_write(f, "stat", line);
        fake_write(f, "status", "Name:\tfake\nUid:\t1\t1\t1\t1\nGroups:\t100 4343 \nNgid:\t0\n");
        WL_PATHF(f->bin, "%s/bin", f->root);
        wl_test_write_file(f->bin, "#!/bin/true\n", 12);
        fake_exe(f, f->bin);
        WL_PATHF(line, "%s/fd", f->piddir);
        assert_int_equal(mkdir(line, 0755), 0);
        WL_PATHF(line, "%s/fdinfo", f->piddir);
        assert_int_equal(mkdir(line, 0755), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sp), 0);
        fake_holder(f, true, true);
        f->w = (WorkloadInfo){getpid(), UID, GID, pidfd_open(getpid(), 0), f->sp[0]};
        assert_true(f->w.pidfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fake *f = *state;

        close(f->w.pidfd);
        close(f->sp[0]);
        close(f->sp[1]);
        test_rmdir_free(f->root);
        free(f);
        return 0;
}

static Attestor *fake_attestor(Fake *f, uint64_t max_size) {
        AttestorConfig cfg;
        Attestor *a = NULL;

        attestor_config_init(&cfg);
        cfg.proc_root = f->root;
        cfg.systemd = false;
        cfg.sha256_max_size = max_size;
        assert_ok(attestor_new(&cfg, &a));
        return a;
}

static void test_basic(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        _cleanup_(selector_set_done) SelectorSet set = {};
        char want[65];

        assert_ok(attestor_attest(a, &f->w, &set, NULL));
        wl_test_assert_has(&set, "unix", "uid:%d", UID);
        wl_test_assert_has(&set, "unix", "gid:%d", GID);
        wl_test_assert_has(&set, "unix", "supplementary_gid:%d", 100);
        wl_test_assert_has(&set, "unix", "supplementary_gid:%d", GID);
        assert_int_equal(wl_test_count_key(&set, "unix", "supplementary_gid:"), 2);
        wl_test_assert_has(&set, "unix", "path:%s", f->bin);
        wl_test_sha256_path(f->bin, want);
        wl_test_assert_has(&set, "unix", "sha256:%s", want);
        assert_int_equal(wl_test_count_key(&set, "systemd", ""), 0);
}

/* Over the size limit: the path, but no hash. At the limit: both. */
static void test_size_limit(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *small = fake_attestor(f, 11);
        _cleanup_(attestor_freep) Attestor *exact = fake_attestor(f, 12);
        _cleanup_(selector_set_done) SelectorSet s1 = {}, s2 = {};
        AttestorStats st;

        assert_ok(attestor_attest(small, &f->w, &s1, NULL));
        wl_test_assert_has(&s1, "unix", "path:%s", f->bin);
        assert_int_equal(wl_test_count_key(&s1, "unix", "sha256:"), 0);
        attestor_get_stats(small, &st);
        assert_int_equal(st.too_big, 1);

        assert_ok(attestor_attest(exact, &f->w, &s2, NULL));
        assert_int_equal(wl_test_count_key(&s2, "unix", "sha256:"), 1);
}

static void test_exe_links(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        char target[PATH_MAX + 32];
        struct {
                const char *name; /* below root, or as is when relative */
                bool relative;
                int paths, hashes;
        } cases[] = {
                /* The kernel's mark for a deleted executable: no path, no hash, even though
                 * a file of that name exists here. */
                {"bin (deleted)", false, 0, 0},
                {"bin", true, 0, 0},        /* not absolute */
                {"missing", false, 0, 0},   /* can't be opened: no proof, uid/gid only */
                {"b\xc3\xa9", false, 0, 1}, /* not a valid selector value: no path, still hashed */
        };

        WL_PATHF(target, "%s/bin (deleted)", f->root);
        wl_test_write_file(target, "x", 1);
        WL_PATHF(target, "%s/b\xc3\xa9", f->root);
        wl_test_write_file(target, "y", 1);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(selector_set_done) SelectorSet set = {};

                if (cases[i].relative)
                        WL_PATHF(target, "%s", cases[i].name);
                else
                        WL_PATHF(target, "%s/%s", f->root, cases[i].name);
                fake_exe(f, target);
                assert_ok(attestor_attest(a, &f->w, &set, NULL));
                wl_test_assert_has(&set, "unix", "uid:%d", UID);
                assert_int_equal(wl_test_count_key(&set, "unix", "path:"), cases[i].paths);
                assert_int_equal(wl_test_count_key(&set, "unix", "sha256:"), cases[i].hashes);
        }

        /* No exe link at all (kernel threads, no access): still attested. */
        _cleanup_(selector_set_done) SelectorSet set = {};
        WL_PATHF(target, "%s/exe", f->piddir);
        assert_int_equal(unlink(target), 0);
        assert_ok(attestor_attest(a, &f->w, &set, NULL));
        assert_int_equal(wl_test_count_key(&set, "unix", "path:"), 0);
}

static void test_zombie_and_garbage(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        SelectorSet set = {};
        char line[512];

        stat_line(line, sizeof(line), 'Z', 5555);
        fake_write(f, "stat", line);
        assert_errno(attestor_attest(a, &f->w, &set, NULL), ESRCH);
        fake_write(f, "stat", "1234 (fake) S 1 2 3");
        assert_errno(attestor_attest(a, &f->w, &set, NULL), EBADMSG);
        stat_line(line, sizeof(line), 'S', 5555);
        fake_write(f, "stat", line);
        fake_write(f, "status", "Name:\tfake\nUid:\t1\t1\t1\t1\n");
        assert_errno(attestor_attest(a, &f->w, &set, NULL), EBADMSG);
        assert_int_equal(set.n, 0);
}

static void write_groups(Fake *f, int n) {
        char *s = malloc(64 + (size_t) n * 12), *p = s;

        assert_non_null(s);
        p += sprintf(p, "Name:\tfake\nGroups:\t");
        for (int i = 0; i < n; i++)
                p += sprintf(p, "%d ", 3000000 + i);
        sprintf(p, "\nNgid:\t0\n");
        fake_write(f, "status", s);
        free(s);
}

static void test_groups_limit(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        _cleanup_(selector_set_done) SelectorSet set = {};
        SelectorSet none = {};

        write_groups(f, ATTESTOR_GROUPS_MAX);
        assert_ok(attestor_attest(a, &f->w, &set, NULL));
        assert_int_equal(wl_test_count_key(&set, "unix", "supplementary_gid:"),
                         ATTESTOR_GROUPS_MAX);
        wl_test_assert_has(&set, "unix", "supplementary_gid:%d", 3000000 + ATTESTOR_GROUPS_MAX - 1);
        write_groups(f, ATTESTOR_GROUPS_MAX + 1);
        assert_errno(attestor_attest(a, &f->w, &none, NULL), E2BIG);
        assert_int_equal(none.n, 0);
}

/* "status" is a FIFO: attestation blocks reading it, after its first look at stat. Meanwhile
 * this thread replaces stat (a new start time = another process now has the pid), then lets
 * the read finish. The closing check must notice. */
typedef struct Swap {
        Fake *f;
        unsigned long new_start;
} Swap;

/* No cmocka asserts in here (not the test's thread): abort() on trouble. */
static void *swap_thread(void *arg) {
        Swap *s = arg;
        char path[PATH_MAX], tmp[PATH_MAX], line[512];
        const char *status = "Name:\tfake\nGroups:\t100\n";
        int fd, nfd;

        if ((size_t) snprintf(path, sizeof(path), "%s/status", s->f->piddir) >= sizeof(path) ||
            (size_t) snprintf(tmp, sizeof(tmp), "%s/stat.new", s->f->piddir) >= sizeof(tmp))
                abort();
        fd = open(path, O_WRONLY | O_CLOEXEC); /* waits for the attestor to open it */
        if (fd < 0)
                return NULL;
        stat_line(line, sizeof(line), 'S', s->new_start);
        nfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (nfd < 0 || write(nfd, line, strlen(line)) != (ssize_t) strlen(line) || close(nfd) < 0)
                abort();
        if ((size_t) snprintf(path, sizeof(path), "%s/stat", s->f->piddir) >= sizeof(path) ||
            rename(tmp, path) < 0 || write(fd, status, strlen(status)) < 0)
                abort();
        close(fd);
        return NULL;
}

static int attest_with_swap(Fake *f, unsigned long new_start, SelectorSet *set) {
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        char path[PATH_MAX];
        Swap s = {f, new_start};
        pthread_t t;
        int r, fd;

        WL_PATHF(path, "%s/status", f->piddir);
        unlink(path);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(pthread_create(&t, NULL, swap_thread, &s), 0);
        r = attestor_attest(a, &f->w, set, NULL);
        /* Should the attestor not have opened the FIFO, release the writer. */
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (fd >= 0)
                close(fd);
        return r;
}

static void test_starttime_changes(void **state) {
        Fake *f = *state;
        _cleanup_(selector_set_done) SelectorSet set = {};

        /* Control: stat rewritten with the same start time passes. */
        assert_ok(attest_with_swap(f, 5555, &set));
        wl_test_assert_has(&set, "unix", "supplementary_gid:%d", 100);
        selector_set_done(&set);

        assert_errno(attest_with_swap(f, 5556, &set), ESRCH);
        assert_int_equal(set.n, 0);
}

/* Without the proof: the uid/gid selectors and their names only. */
static void assert_unbound(Attestor *a, Fake *f) {
        _cleanup_(selector_set_done) SelectorSet set = {};
        bool bound = true;

        assert_ok(attestor_attest(a, &f->w, &set, &bound));
        assert_false(bound);
        wl_test_assert_has(&set, "unix", "uid:%d", UID);
        wl_test_assert_has(&set, "unix", "gid:%d", GID);
        assert_int_equal(wl_test_count_key(&set, "unix", "supplementary_gid:"), 0);
        assert_int_equal(wl_test_count_key(&set, "unix", "path:"), 0);
        assert_int_equal(wl_test_count_key(&set, "unix", "sha256:"), 0);
}

static void test_holder(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        _cleanup_(selector_set_done) SelectorSet set = {};
        AttestorStats st;
        bool bound = false;
        int other[2];

        assert_ok(attestor_attest(a, &f->w, &set, &bound));
        assert_true(bound);
        wl_test_assert_has(&set, "unix", "path:%s", f->bin);

        /* Held without close-on-exec: what an exec after connect() leaves. */
        fake_holder(f, true, false);
        assert_unbound(a, f);
        /* Not held at all: a forked child has it, the pid exec'd. */
        fake_holder(f, false, false);
        assert_unbound(a, f);
        /* Another socket of the process, not our connection. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other), 0);
        fake_holder(f, true, true);
        f->w.sock = other[0];
        assert_unbound(a, f);
        f->w.sock = f->sp[0];
        close(other[0]);
        close(other[1]);
        /* No connection given: nothing to prove. */
        f->w.sock = -EBADF;
        assert_unbound(a, f);
        f->w.sock = f->sp[0];
        attestor_get_stats(a, &st);
        assert_int_equal(st.attested, 1);
        assert_int_equal(st.unbound, 4);
        /* A garbled fdinfo is an error, not a proof. */
        fake_write(f, "fdinfo/7", "pos:\t0\nflags:\t02x\n");
        assert_errno(attestor_attest(a, &f->w, &set, &bound), EBADMSG);
}

/* The exe is read, then exec happens while attestation waits on the status file: the
 * exe found after the proof is another file. */
static void *exec_thread(void *arg) {
        Fake *f = arg;
        char path[PATH_MAX], other[PATH_MAX], link[PATH_MAX];
        const char *status = "Name:\tfake\nGroups:\t100\n";
        int fd;

        if ((size_t) snprintf(path, sizeof(path), "%s/status", f->piddir) >= sizeof(path) ||
            (size_t) snprintf(other, sizeof(other), "%s/other", f->root) >= sizeof(other) ||
            (size_t) snprintf(link, sizeof(link), "%s/exe", f->piddir) >= sizeof(link))
                abort();
        fd = open(path, O_WRONLY | O_CLOEXEC); /* waits for the attestor to open it */
        if (fd < 0)
                return NULL;
        if (unlink(link) < 0 || symlink(other, link) < 0 || write(fd, status, strlen(status)) < 0)
                abort();
        close(fd);
        return NULL;
}

static void test_exec_during_attestation(void **state) {
        Fake *f = *state;
        _cleanup_(attestor_freep) Attestor *a = fake_attestor(f, 1024);
        char path[PATH_MAX];
        pthread_t t;

        WL_PATHF(path, "%s/other", f->root);
        wl_test_write_file(path, "#!/bin/false\n", 13);
        WL_PATHF(path, "%s/status", f->piddir);
        unlink(path);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(pthread_create(&t, NULL, exec_thread, f), 0);
        assert_unbound(a, f);
        assert_int_equal(pthread_join(t, NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exe_links, setup, teardown),
                cmocka_unit_test_setup_teardown(test_zombie_and_garbage, setup, teardown),
                cmocka_unit_test_setup_teardown(test_groups_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_starttime_changes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exec_during_attestation, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
