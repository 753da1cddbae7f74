/* SPDX-License-Identifier: Apache-2.0 */
/* The server's data directory at start: who owns it and who may write it, the lock that
 * keeps a second server out, never a silent new CA over a datastore that had one, and
 * removing what a failed start created. */
#define _GNU_SOURCE

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca_internal.h"
#include "cleanup.h"
#include "lockfile.h"
#include "log.h"
#include "mkdir.h"
#include "options.h"
#include "parse.h"
#include "server.h"

/* One directory: a directory, ours, not writable by group or others. */
static int check_dir(const char *what, const char *path, uid_t uid, char **reterr_message) {
        struct stat st;

        if (stat(path, &st) < 0)
                return options_fail_message(-errno, reterr_message, "%s %s: %s", what, path,
                                            strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return options_fail_message(-ENOTDIR, reterr_message, "%s %s is not a directory",
                                            what, path);
        if (st.st_uid != uid)
                return options_fail_message(
                        -EPERM, reterr_message,
                        "%s %s is owned by uid %u, not by the server's uid %u: refusing to use "
                        "it (chown it to uid %u, or pick another -dataDir)",
                        what, path, (unsigned) st.st_uid, (unsigned) uid, (unsigned) uid);
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return options_fail_message(
                        -EPERM, reterr_message,
                        "%s %s is writable by group or others (mode %04o): refusing to use it "
                        "(chmod go-w %s)",
                        what, path, (unsigned) (st.st_mode & 07777), path);
        return 0;
}

int server_datadir_check(const char *dir, uid_t uid, bool *ret_exists, char **reterr_message) {
        _cleanup_free_ char *ca = NULL;
        struct stat st;
        int r;

        if (stat(dir, &st) < 0 && errno == ENOENT) {
                *ret_exists = false;
                return 0;
        }
        r = check_dir("-dataDir", dir, uid, reterr_message);
        if (r < 0)
                return r;
        if (asprintf(&ca, "%s/" CA_DIR_NAME, dir) < 0)
                return -ENOMEM;
        if (lstat(ca, &st) >= 0) {
                r = check_dir("CA directory", ca, uid, reterr_message);
                if (r < 0)
                        return r;
        }
        *ret_exists = true;
        return 0;
}

static int lock_datadir(Server *s) {
        pid_t holder = 0;
        int r;

        r = lockfile_acquire(s->cfg.data_dir, SERVER_LOCK_FILE, &s->lock_fd, &holder);
        if (r == -EBUSY && holder > 0)
                return log_error_errno(r, "Data directory %s is in use by another server (pid %d)",
                                       s->cfg.data_dir, (int) holder);
        if (r == -EBUSY)
                return log_error_errno(r, "Data directory %s is in use by another server",
                                       s->cfg.data_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to lock %s/%s: %m", s->cfg.data_dir,
                                       SERVER_LOCK_FILE);
        return 0;
}

int server_datadir_open(Server *s) {
        _cleanup_free_ char *msg = NULL;
        bool exists = false;
        int r;

        r = server_datadir_check(s->cfg.data_dir, geteuid(), &exists, &msg);
        if (r == -ENOMEM || (r < 0 && !msg))
                return log_error_errno(r, "Failed to check %s: %m", s->cfg.data_dir);
        if (r < 0)
                return log_error_errno(r, "%s", msg);
        return exists ? lock_datadir(s) : 0;
}

/* The topmost directory of path that does not exist yet (what mkdir_p() will create). */
static int first_missing(const char *path, char **ret) {
        _cleanup_free_ char *p = strdup(path), *top = NULL;
        struct stat st;

        if (!p)
                return -ENOMEM;
        for (;;) {
                char *slash;
                size_t n = strlen(p);

                while (n > 1 && p[n - 1] == '/')
                        p[--n] = '\0';
                if (lstat(p, &st) >= 0)
                        break;
                if (errno != ENOENT)
                        return -errno;
                free(top);
                top = strdup(p);
                if (!top)
                        return -ENOMEM;
                slash = strrchr(p, '/');
                if (!slash || slash == p)
                        break;
                *slash = '\0';
        }
        *ret = TAKE_PTR(top);
        return 0;
}

int server_datadir_create(Server *s) {
        _cleanup_free_ char *top = NULL;
        int r;

        if (s->lock_fd >= 0)
                return 0; /* existed, checked and locked */
        r = first_missing(s->cfg.data_dir, &top);
        if (r >= 0)
                r = mkdir_p(s->cfg.data_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create data directory %s: %m",
                                       s->cfg.data_dir);
        s->created_dir = TAKE_PTR(top);
        return lock_datadir(s);
}

/* Whether the datastore knows of a CA: the marker, or anything a CA has signed for. */
static int datastore_records_ca(Server *s, char *what, size_t n) {
        AttestedAgent **agents = NULL;
        size_t n_agents = 0;
        int64_t created = 0, entries = 0;
        char t[32];
        int r;

        r = ds_get_meta(s->ds, DS_META_CA_CREATED_AT, &created);
        if (r < 0 && r != -ENOENT)
                return r;
        r = ds_count_entries(s->ds, &entries);
        if (r >= 0)
                r = ds_list_agents(s->ds, &agents, &n_agents);
        if (r < 0)
                return r;
        attested_agent_array_free(agents, n_agents);
        if (created > 0)
                snprintf(what, n, "a CA created at %s, %lld entries, %zu agents",
                         format_timestamp(created, t, sizeof(t)), (long long) entries, n_agents);
        else
                snprintf(what, n, "%lld entries, %zu agents", (long long) entries, n_agents);
        return created > 0 || entries > 0 || n_agents > 0;
}

int server_datadir_check_ca(Server *s) {
        _cleanup_free_ char *ca = NULL;
        struct stat st;
        char what[160];
        int r;

        if (asprintf(&ca, "%s/" CA_DIR_NAME, s->cfg.data_dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (lstat(ca, &st) >= 0 || errno != ENOENT)
                return 0; /* there is one: ca_new() loads it (or says what is wrong) */
        /* A datastore this start created records nothing. */
        r = s->created_datastore ? 0 : datastore_records_ca(s, what, sizeof(what));
        if (r < 0)
                return log_error_errno(r, "Failed to read the datastore: %m");
        if (r > 0 && !s->cfg.force_new_ca)
                return log_error_errno(-EEXIST,
                                       "%s is missing but the datastore records a CA (%s): "
                                       "refusing to create a new CA, which no agent would "
                                       "trust; restore %s, or start once with -forceNewCA",
                                       ca, what, ca);
        if (r > 0)
                log_warning("-forceNewCA: creating a new CA in %s although the datastore "
                            "records one (%s); every agent needs the new bundle",
                            ca, what);
        s->created_ca = true;
        return 0;
}

int server_datadir_record_ca(Server *s) {
        int64_t v;
        int r;

        r = ds_get_meta(s->ds, DS_META_CA_CREATED_AT, &v);
        if (r >= 0 && !s->created_ca)
                return 0;
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to read the datastore: %m");
        r = ds_set_meta(s->ds, DS_META_CA_CREATED_AT, (int64_t) time(NULL));
        if (r < 0)
                return log_error_errno(r, "Failed to record the CA in the datastore: %m");
        return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (remove(path) < 0)
                log_debug_errno(-errno, "Failed to remove %s, ignoring: %m", path);
        return 0;
}

static void remove_tree(const char *path) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return;
        if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
                log_warning_errno(-errno, "Failed to remove %s, ignoring: %m", path);
        else
                log_info("Removed %s (created by this failed start)", path);
}

void server_datadir_undo(Server *s) {
        static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};

        s->ca = ca_free(s->ca);
        s->ds = ds_close(s->ds);
        if (s->created_dir) {
                remove_tree(s->created_dir);
                return;
        }
        if (s->created_datastore)
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/" SERVER_DATASTORE_FILE "%s", s->cfg.data_dir,
                                     suffixes[i]) >= 0 &&
                            unlink(p) < 0 && errno != ENOENT)
                                log_warning_errno(-errno, "Failed to remove %s, ignoring: %m", p);
                }
        if (s->created_ca) {
                _cleanup_free_ char *ca = NULL;
                if (asprintf(&ca, "%s/" CA_DIR_NAME, s->cfg.data_dir) >= 0)
                        remove_tree(ca);
        }
}
