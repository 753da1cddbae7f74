/* SPDX-License-Identifier: Apache-2.0 */
/* entry_index_bench [entries] [agents]: the in-memory entry index at scale (a benchmark,
 * not a test). Stores `entries` (default 100000) in a scratch SQLite datastore, spread
 * over `agents` (default 100) agents: direct children, one level of grandchildren and
 * node aliases with selectors from a pool. Prints the time of entry_index_load(), of
 * one agent's authorized set from the index and from authz_set_build(), of alias
 * matching, walk up and put/remove, and the index's memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "ds.h"
#include "entry_index.h"
#include "log.h"

#define TD "spiffe://example.org"
#define POOL 200

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int die(const char *what, int r) {
        fprintf(stderr, "%s: %s\n", what, strerror(-r));
        exit(EXIT_FAILURE);
}

static Entry *mk(size_t i, size_t agents) {
        char s[96];
        Entry *e = NULL;
        int r = entry_new(&e);

        if (r < 0)
                die("entry_new", r);
        /* Every 100th an alias, every 4th a grandchild (under the workload 4 before). */
        if (i % 100 == 0) {
                e->node = true;
                snprintf(s, sizeof(s), TD "/cluster/%zu", i / 100);
                e->spiffe_id = strdup(s);
                e->parent_id = strdup(TD "/warden/server");
                snprintf(s, sizeof(s), "node:k%zu", i % POOL);
                selector_set_add_string(&e->selectors, s, NULL);
                snprintf(s, sizeof(s), "node:k%zu", (i / 7) % POOL);
                selector_set_add_string(&e->selectors, s, NULL);
        } else {
                snprintf(s, sizeof(s), TD "/wl/%zu", i);
                e->spiffe_id = strdup(s);
                if (i % 4 == 0)
                        snprintf(s, sizeof(s), TD "/wl/%zu", i - 3);
                else
                        snprintf(s, sizeof(s), TD "/warden/agent/a%zu", i % agents);
                e->parent_id = strdup(s);
                snprintf(s, sizeof(s), "unix:uid:%zu", i);
                selector_set_add_string(&e->selectors, s, NULL);
        }
        if (!e->spiffe_id || !e->parent_id)
                die("strdup", -ENOMEM);
        return e;
}

static int count_cb(const char *id, void *userdata) {
        (void) id;
        ++*(size_t *) userdata;
        return 0;
}

static void store(Datastore *ds, size_t total, size_t agents) {
        double t = now_s();
        int r;

        for (size_t done = 0; done < total;) {
                Entry *batch[DS_BATCH_MAX];
                size_t k = total - done < DS_BATCH_MAX ? total - done : DS_BATCH_MAX;

                for (size_t i = 0; i < k; i++)
                        batch[i] = mk(done + i, agents);
                if ((r = ds_create_entries(ds, batch, k, NULL)) < 0)
                        die("ds_create_entries", r);
                for (size_t i = 0; i < k; i++)
                        entry_free(batch[i]);
                done += k;
        }
        printf("datastore: %zu entries stored in %.2f s\n", total, now_s() - t);
}

static void load(EntryIndex *idx, Datastore *ds) {
        size_t heap = mallinfo2().uordblks;
        double t = now_s();
        int r;

        if ((r = entry_index_load(idx, ds)) < 0)
                die("entry_index_load", r);
        printf("entry_index_load: %.3f s, %zu entries\n", now_s() - t, entry_index_count(idx));
        /* The load's own pages are freed by now: what stayed is the index (and SQLite's
         * page cache, which it had filled while storing). */
        printf("entry_index_memory: %.1f MiB (malloc'd since before the load: %.1f MiB)\n",
               (double) entry_index_memory(idx) / (1024.0 * 1024.0),
               (double) (mallinfo2().uordblks - heap) / (1024.0 * 1024.0));
}

/* a2: its direct children only; a1: as many again one level below them. */
static void walks(EntryIndex *idx, Datastore *ds, const SelectorSet *sel, int64_t now) {
        AuthzView v = {};
        AuthzSet *set = NULL;
        char agent[64];
        size_t walked = 0;
        double t;
        int r, iters = 200;

        for (size_t a = 2; a >= 1; a--) {
                snprintf(agent, sizeof(agent), TD "/warden/agent/a%zu", a);
                t = now_s();
                for (int i = 0; i < iters; i++)
                        if ((r = entry_index_authorized(idx, agent, sel, now, 0, &v)) < 0)
                                die("entry_index_authorized", r);
                printf("entry_index_authorized: %zu entries in %.1f us\n", v.n,
                       (now_s() - t) / iters * 1e6);
                t = now_s();
                if ((r = authz_set_build(ds, agent, sel, now, &set)) < 0)
                        die("authz_set_build", r);
                printf("authz_set_build (SQLite): %zu entries in %.1f us\n", set->n,
                       (now_s() - t) * 1e6);
                authz_set_free(set);
        }
        t = now_s();
        for (int i = 0; i < iters; i++)
                if ((r = entry_index_matching_aliases(idx, sel, now, &v)) < 0)
                        die("entry_index_matching_aliases", r);
        printf("entry_index_matching_aliases: %zu aliases in %.1f us\n", v.n,
               (now_s() - t) / iters * 1e6);
        t = now_s();
        for (int i = 0; i < iters; i++)
                if ((r = entry_index_walk_up(idx, TD "/wl/5", now, true, count_cb, &walked)) < 0)
                        die("entry_index_walk_up", r);
        printf("entry_index_walk_up: %zu IDs in %.2f us\n", walked / (size_t) iters,
               (now_s() - t) / iters * 1e6);
        authz_view_done(&v);
}

static void put_remove(EntryIndex *idx, size_t first, size_t agents) {
        double t = now_s();
        char s[32];
        int r;

        for (size_t i = 0; i < 10000; i++) {
                Entry *e = mk(first + i, agents);

                snprintf(s, sizeof(s), "bench%zu", i);
                e->id = strdup(s);
                if ((r = entry_index_put(idx, e)) < 0)
                        die("entry_index_put", r);
        }
        for (size_t i = 0; i < 10000; i++) {
                snprintf(s, sizeof(s), "bench%zu", i);
                if ((r = entry_index_remove(idx, s)) < 0)
                        die("entry_index_remove", r);
        }
        printf("entry_index_put + remove: %.2f us per entry\n", (now_s() - t) / 10000 * 1e6);
}

int main(int argc, char **argv) {
        size_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
        size_t agents = argc > 2 ? strtoull(argv[2], NULL, 10) : 100;
        char dir[] = "/tmp/entry-index-bench.XXXXXX", path[96], s[32];
        SelectorSet sel = {};
        Datastore *ds = NULL;
        EntryIndex *idx = NULL;
        int r;

        log_set_max_level(LOG_ERR);
        if (total == 0 || agents < 3)
                return fprintf(stderr, "usage: %s [entries] [agents >= 3]\n", argv[0]), 2;
        if (!mkdtemp(dir))
                die("mkdtemp", -errno);
        snprintf(path, sizeof(path), "%s/ds.sqlite3", dir);
        if ((r = ds_open_sqlite(path, &ds)) < 0)
                die("ds_open_sqlite", r);
        store(ds, total, agents);
        if ((r = entry_index_new(&idx)) < 0)
                die("entry_index_new", r);
        load(idx, ds);
        for (size_t i = 0; i < 10; i++) {
                snprintf(s, sizeof(s), "node:k%zu", i * 3);
                selector_set_add_string(&sel, s, NULL);
        }
        walks(idx, ds, &sel, time(NULL));
        put_remove(idx, total, agents);

        selector_set_done(&sel);
        entry_index_free(idx);
        ds_close(ds);
        for (const char *const *x = (const char *const[]){"", "-wal", "-shm", NULL}; *x; x++) {
                snprintf(path, sizeof(path), "%s/ds.sqlite3%s", dir, *x);
                (void) unlink(path);
        }
        return rmdir(dir) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
