/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_names.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

#define NSS_BUF_MIN 1024
#define NSS_BUF_MAX (1024 * 1024)
#define NAMES_BUCKETS 256

typedef struct NameItem {
        unsigned id;
        char *name; /* NULL: the id has no name */
        struct NameItem *next;
} NameItem;

typedef struct NameTable {
        NameItem *buckets[NAMES_BUCKETS];
        size_t n;
} NameTable;

/* What a watched file looked like when the cache was filled. */
typedef struct FileStamp {
        bool exists;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
} FileStamp;

struct WlNames {
        char *paths[2]; /* passwd, group */
        pthread_mutex_t lock;
        FileStamp stamps[2];
        int64_t filled_at; /* CLOCK_MONOTONIC seconds */
        NameTable users, groups;
        unsigned long hits, misses;
};

static void table_clear(NameTable *t) {
        for (size_t i = 0; i < NAMES_BUCKETS; i++)
                while (t->buckets[i]) {
                        NameItem *it = t->buckets[i];

                        t->buckets[i] = it->next;
                        free(it->name);
                        free(it);
                }
        t->n = 0;
}

int wl_names_new(const char *passwd, const char *group, WlNames **ret) {
        WlNames *n;

        if (!passwd || !group || !ret)
                return -EINVAL;
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        pthread_mutex_init(&n->lock, NULL);
        n->paths[0] = strdup(passwd);
        n->paths[1] = strdup(group);
        if (!n->paths[0] || !n->paths[1]) {
                wl_names_free(n);
                return -ENOMEM;
        }
        *ret = n;
        return 0;
}

WlNames *wl_names_free(WlNames *n) {
        if (!n)
                return NULL;
        table_clear(&n->users);
        table_clear(&n->groups);
        free(n->paths[0]);
        free(n->paths[1]);
        pthread_mutex_destroy(&n->lock);
        free(n);
        return NULL;
}

void wl_names_stats(WlNames *n, unsigned long *ret_hits, unsigned long *ret_misses) {
        pthread_mutex_lock(&n->lock);
        *ret_hits = n->hits;
        *ret_misses = n->misses;
        pthread_mutex_unlock(&n->lock);
}

static void stamp_read(const char *path, FileStamp *ret) {
        struct stat st;

        if (stat(path, &st) < 0) {
                *ret = (FileStamp){};
                return;
        }
        *ret = (FileStamp){true, st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

static bool stamp_equal(const FileStamp *a, const FileStamp *b) {
        return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
               a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
               a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
               a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int64_t now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec;
}

/* Under lock: empties the cache when a file changed or it is too old. */
static void revalidate_locked(WlNames *n) {
        FileStamp now[2];
        int64_t t = now_sec();

        stamp_read(n->paths[0], &now[0]);
        stamp_read(n->paths[1], &now[1]);
        if (stamp_equal(&now[0], &n->stamps[0]) && stamp_equal(&now[1], &n->stamps[1]) &&
            t - n->filled_at < WL_NAMES_TTL_SEC)
                return;
        table_clear(&n->users);
        table_clear(&n->groups);
        n->stamps[0] = now[0];
        n->stamps[1] = now[1];
        n->filled_at = t;
}

static NameItem **bucket(NameTable *t, unsigned id) {
        return &t->buckets[(id * 2654435761u) % NAMES_BUCKETS];
}

/* Under lock: 1 and *ret (a copy, may be NULL) when cached, 0 when not. */
static int table_get(NameTable *t, unsigned id, char **ret) {
        for (NameItem *it = *bucket(t, id); it; it = it->next)
                if (it->id == id) {
                        *ret = it->name ? strdup(it->name) : NULL;
                        return it->name && !*ret ? -ENOMEM : 1;
                }
        return 0;
}

static void table_put(NameTable *t, unsigned id, const char *name) {
        NameItem *it;

        if (t->n >= WL_NAMES_MAX)
                table_clear(t);
        it = calloc(1, sizeof(*it));
        if (!it)
                return;
        it->id = id;
        it->name = name ? strdup(name) : NULL;
        if (name && !it->name) {
                free(it);
                return;
        }
        it->next = *bucket(t, id);
        *bucket(t, id) = it;
        t->n++;
}

/* NSS "not found" comes back as 0 with no result, or as one of these. */
static bool nss_not_found(int e) {
        return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM;
}

/* getpwuid_r (user true) or getgrgid_r: *ret = the name or NULL. */
static int nss_name(bool user, unsigned id, char **ret) {
        for (size_t size = NSS_BUF_MIN; size <= NSS_BUF_MAX; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd pw, *pres = NULL;
                struct group gr, *gres = NULL;
                const char *name = NULL;
                int e;

                if (!buf)
                        return -ENOMEM;
                if (user) {
                        e = getpwuid_r((uid_t) id, &pw, buf, size, &pres);
                        name = pres ? pw.pw_name : NULL;
                } else {
                        e = getgrgid_r((gid_t) id, &gr, buf, size, &gres);
                        name = gres ? gr.gr_name : NULL;
                }
                if (e == ERANGE)
                        continue;
                if (name) {
                        *ret = strdup(name);
                        return *ret ? 0 : -ENOMEM;
                }
                if (nss_not_found(e)) {
                        *ret = NULL;
                        return 0;
                }
                return log_debug_errno(-e, "%s(%u) failed: %m", user ? "getpwuid_r" : "getgrgid_r",
                                       id);
        }
        return -ENOBUFS;
}

static int lookup(WlNames *n, bool user, unsigned id, char **ret) {
        NameTable *t = user ? &n->users : &n->groups;
        char *name = NULL;
        int r;

        pthread_mutex_lock(&n->lock);
        revalidate_locked(n);
        r = table_get(t, id, ret);
        if (r > 0)
                n->hits++;
        else
                n->misses++;
        pthread_mutex_unlock(&n->lock);
        if (r != 0)
                return r < 0 ? r : 0;

        /* NSS without the lock: it may be slow (a directory service). */
        r = nss_name(user, id, &name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&n->lock);
        table_put(t, id, name);
        pthread_mutex_unlock(&n->lock);
        *ret = name;
        return 0;
}

int wl_names_user(WlNames *n, uid_t uid, char **ret) {
        return lookup(n, true, (unsigned) uid, ret);
}

int wl_names_group(WlNames *n, gid_t gid, char **ret) {
        return lookup(n, false, (unsigned) gid, ret);
}
