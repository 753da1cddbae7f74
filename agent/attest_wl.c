/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "attest_wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "peercred.h"
#include "wl_holder.h"
#include "wl_names.h"
#include "wl_proc.h"
#include "wl_sha256cache.h"
#include "wl_systemd.h"
#include "wl_unix.h"

/* A file whose ctime is this recent may still change within the same timestamp tick without
 * its key changing, so its hash is returned but not cached. */
#define RACY_WINDOW_NS (INT64_C(100) * 1000 * 1000)

struct Attestor {
        AttestorConfig cfg;
        char *proc_root;
        WlSystemd *systemd; /* NULL when systemd selectors are off */
        WlNames *names;

        pthread_mutex_t lock; /* protects cache and stats */
        WlSha256Cache *cache;
        AttestorStats stats;
};

void attestor_config_init(AttestorConfig *cfg) {
        *cfg = (AttestorConfig){
                .sha256_max_size = ATTESTOR_SHA256_MAX_SIZE_DEFAULT,
                .cache_capacity = ATTESTOR_CACHE_CAPACITY_DEFAULT,
                .systemd = true,
                .proc_root = "/proc",
                .passwd_path = "/etc/passwd",
                .group_path = "/etc/group",
        };
}

int attestor_new(const AttestorConfig *cfg, Attestor **ret) {
        _cleanup_(attestor_freep) Attestor *a = NULL;
        AttestorConfig defaults;
        int r;

        if (!ret)
                return -EINVAL;
        if (!cfg) {
                attestor_config_init(&defaults);
                cfg = &defaults;
        }
        if (!cfg->proc_root || cfg->proc_root[0] != '/' || cfg->cache_capacity < 1 ||
            cfg->cache_capacity > ATTESTOR_CACHE_CAPACITY_MAX)
                return -EINVAL;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        pthread_mutex_init(&a->lock, NULL);
        a->cfg = *cfg;
        a->proc_root = strdup(cfg->proc_root);
        if (!a->proc_root)
                return -ENOMEM;
        a->cfg.proc_root = a->proc_root;
        r = wl_names_new(cfg->passwd_path ?: "/etc/passwd", cfg->group_path ?: "/etc/group",
                         &a->names);
        if (r < 0)
                return r;
        a->cfg.passwd_path = a->cfg.group_path = NULL; /* not kept: the cache copied them */
        r = wl_sha256cache_new(cfg->cache_capacity, &a->cache);
        if (r < 0)
                return r;
        if (cfg->systemd) {
                r = wl_systemd_new(&a->systemd);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

Attestor *attestor_free(Attestor *a) {
        if (!a)
                return NULL;
        wl_systemd_free(a->systemd);
        wl_names_free(a->names);
        wl_sha256cache_free(a->cache);
        pthread_mutex_destroy(&a->lock);
        free(a->proc_root);
        free(a);
        return NULL;
}

void attestor_get_stats(Attestor *a, AttestorStats *ret) {
        pthread_mutex_lock(&a->lock);
        *ret = a->stats;
        pthread_mutex_unlock(&a->lock);
}

static bool is_racy(const WlFileKey *k) {
        struct timespec now;

        if (clock_gettime(CLOCK_REALTIME, &now) < 0)
                return true;
        return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec - k->ctime_ns < RACY_WINDOW_NS;
}

static void count(Attestor *a, uint64_t *counter) {
        pthread_mutex_lock(&a->lock);
        (*counter)++;
        pthread_mutex_unlock(&a->lock);
}

int attestor_hash_file(Attestor *a, int fd, char ret_hex[static 65]) {
        char hex[WL_SHA256_HEX_SIZE];
        WlFileKey key, after;
        struct stat st;
        bool hit;
        int r;

        if (!a || fd < 0)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size < 0 || (uint64_t) st.st_size > a->cfg.sha256_max_size) {
                count(a, &a->stats.too_big);
                return -EFBIG;
        }
        wl_file_key_from_stat(&st, &key);

        pthread_mutex_lock(&a->lock);
        hit = wl_sha256cache_get(a->cache, &key, hex);
        if (hit)
                a->stats.cache_hits++;
        pthread_mutex_unlock(&a->lock);
        if (hit) {
                memcpy(ret_hex, hex, sizeof(hex));
                return 0;
        }

        /* Hash without holding the lock: this is the slow part. */
        r = wl_sha256_fd(fd, a->cfg.sha256_max_size, hex);
        if (r == -EFBIG)
                count(a, &a->stats.too_big);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        wl_file_key_from_stat(&st, &after);
        if (!wl_file_key_equal(&key, &after))
                return log_debug_errno(-EAGAIN, "File changed while being hashed");

        pthread_mutex_lock(&a->lock);
        a->stats.hash_computed++;
        if (!is_racy(&key))
                wl_sha256cache_put(a->cache, &key, hex);
        pthread_mutex_unlock(&a->lock);
        memcpy(ret_hex, hex, sizeof(hex));
        return 0;
}

/* 0 while the process behind pidfd runs; -ESRCH once it exited (a zombie counts as exited:
 * the pidfd polls readable then). EPERM from the signal probe only means "not ours". */
static int pidfd_alive(int pidfd) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int r;

        if (pidfd_send_signal(pidfd, 0, NULL, 0) < 0 && errno != EPERM)
                return errno == ESRCH ? -ESRCH : -errno;
        do
                r = poll(&p, 1, 0);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (p.revents & POLLNVAL)
                return -EBADF;
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
                return -ESRCH;
        return 0;
}

/* Checks that the pidfd pins the process with this pid (/proc/self/fdinfo "Pid:"). */
static int pidfd_check_pid(int pidfd, pid_t pid) {
        _cleanup_free_ char *info = NULL;
        char path[64];
        int64_t fd_pid;
        size_t size;
        int r;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        r = wl_proc_read_at(AT_FDCWD, path, 4096, &info, &size);
        if (r < 0)
                return r;
        r = wl_proc_parse_fdinfo_pid(info, size, &fd_pid);
        if (r == -ENODATA)
                return log_debug_errno(-EBADF, "fd %d is not a pidfd", pidfd);
        if (r < 0)
                return r;
        if (fd_pid != pid)
                return log_debug_errno(-ESRCH, "pidfd is for pid %" PRId64 ", not %d", fd_pid,
                                       (int) pid);
        return 0;
}

static int open_piddir(Attestor *a, pid_t pid, int *ret) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%d", a->proc_root, (int) pid) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        *ret = fd;
        return 0;
}

/* Start time of the process; -ESRCH for a zombie or a vanished process. */
static int read_starttime(int piddir, uint64_t *ret) {
        _cleanup_free_ char *stat = NULL;
        size_t size;
        char state;
        int r;

        r = wl_proc_read_at(piddir, "stat", WL_PROC_STAT_MAX, &stat, &size);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        r = wl_proc_parse_stat(stat, size, &state, ret);
        if (r < 0)
                return r;
        if (state == 'Z' || state == 'X' || state == 'x')
                return -ESRCH;
        return 0;
}

/* After a failure: if the process is gone, that is the real reason. */
static int gone_or(int pidfd, int r) {
        if (r != -ESRCH && pidfd_alive(pidfd) == -ESRCH)
                return -ESRCH;
        return r;
}

/* The selectors that need the proof: groups, exe, systemd. The exe was opened first
 * (exe_st): the caller compares it with the exe after the proof. */
static int collect_process(
        Attestor *a, const WorkloadInfo *w, int piddir, SelectorSet *set, struct stat *ret_exe_st) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int exe = -EBADF;
        int r;

        r = wl_unix_open_exe(piddir, &exe, &path, ret_exe_st);
        if (r < 0)
                return r;
        if (exe < 0)
                return -ENOEXEC; /* nothing to compare against: no proof possible */
        r = wl_unix_add_groups(a->names, set, piddir);
        if (r >= 0)
                r = wl_unix_add_exe(a, set, exe, path);
        if (r >= 0 && a->systemd)
                r = wl_systemd_add_selectors(a->systemd, w->pid, set);
        return r;
}

/* The proof of wl_holder.h around the selectors read in between: 1 proven, 0 not (with
 * *ret_reason), < 0 error. */
static int prove_holder(int piddir, int sock, const struct stat *exe_st, const char **ret_reason) {
        struct stat now;
        uint64_t peer;
        int r;

        r = peercred_peer_inode(sock, &peer);
        if (r == -ENOTCONN || r == -ENOENT)
                return -ESRCH; /* the client end is closed: the caller is gone */
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_debug_errno(r, "sock_diag: %m");
                *ret_reason = "cannot find the client end of the connection (sock_diag)";
                return 0;
        }
        r = wl_holder_check(piddir, peer, ret_reason);
        if (r <= 0)
                return r;
        if (fstatat(piddir, "exe", &now, 0) < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        if (now.st_dev != exe_st->st_dev || now.st_ino != exe_st->st_ino) {
                *ret_reason = "the executable changed while attesting (exec)";
                return 0;
        }
        return 1;
}

/* Adds every selector of src to dst. */
static int merge(SelectorSet *dst, const SelectorSet *src) {
        FOREACH_SELECTOR(x, src) {
                int r = selector_set_add(dst, x->type, x->value);

                if (r < 0)
                        return r;
        }
        return 0;
}

/* Process selectors into *set when the proof holds; *ret_bound tells. */
static int collect_bound(
        Attestor *a, const WorkloadInfo *w, int piddir, SelectorSet *set, bool *ret_bound) {
        _cleanup_(selector_set_done) SelectorSet proc = {.max = WARDEN_WORKLOAD_SELECTORS_MAX};
        const char *why = "no connection to prove";
        struct stat exe_st;
        int r = 0;

        *ret_bound = false;
        if (w->sock >= 0) {
                r = collect_process(a, w, piddir, &proc, &exe_st);
                if (r == -ENOEXEC) {
                        why = "no executable to read";
                        r = 0;
                } else if (r >= 0)
                        r = prove_holder(piddir, w->sock, &exe_st, &why);
        }
        if (r < 0)
                return r;
        if (r == 0) {
                log_debug("Pid %d: uid/gid selectors only: %s", (int) w->pid, why);
                return 0;
        }
        *ret_bound = true;
        return merge(set, &proc);
}

int attestor_attest(Attestor *a, const WorkloadInfo *w, SelectorSet *ret, bool *ret_bound) {
        _cleanup_(selector_set_done) SelectorSet set = {.max = WARDEN_WORKLOAD_SELECTORS_MAX};
        _cleanup_close_ int piddir = -EBADF;
        uint64_t start = 0, start_after = 0;
        bool bound = false;
        int r;

        if (!a || !w || !ret || w->pid <= 0 || w->pidfd < 0)
                return -EINVAL;

        r = pidfd_alive(w->pidfd);
        if (r >= 0)
                r = pidfd_check_pid(w->pidfd, w->pid);
        if (r >= 0)
                r = open_piddir(a, w->pid, &piddir);
        if (r >= 0)
                r = read_starttime(piddir, &start);
        if (r >= 0)
                r = wl_unix_add_ids(a->names, &set, w->uid, w->gid);
        if (r >= 0)
                r = collect_bound(a, w, piddir, &set, &bound);
        if (r < 0)
                return log_debug_errno(gone_or(w->pidfd, r), "Attesting pid %d failed: %m",
                                       (int) w->pid);

        /* Pid reuse guard: the pinned process still runs (so the pid still names it), and
         * /proc/<pid> still describes the process that started when we began. */
        r = pidfd_alive(w->pidfd);
        if (r >= 0)
                r = read_starttime(piddir, &start_after);
        if (r >= 0 && start_after != start)
                r = -ESRCH;
        if (r < 0)
                return log_debug_errno(gone_or(w->pidfd, r),
                                       "Pid %d changed during attestation: %m", (int) w->pid);

        pthread_mutex_lock(&a->lock);
        if (bound)
                a->stats.attested++;
        else
                a->stats.unbound++;
        pthread_mutex_unlock(&a->lock);
        log_debug("Attested pid %d: %zu selectors%s", (int) w->pid, set.n,
                  bound ? "" : " (uid/gid only)");
        if (ret_bound)
                *ret_bound = bound;
        *ret = set;
        set = (SelectorSet){};
        return 0;
}
