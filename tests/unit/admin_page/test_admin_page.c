/* SPDX-License-Identifier: Apache-2.0 */
/* Paging of the admin list calls: page tokens (made and checked by the server only),
 * page sizes and their cap, pages that end by size or by bytes, sparse filters, the
 * unpaged answer, counts; then the real entry and agent sources on a datastore. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "ds.h"
#include "jose_b64.h"
#include "pb_util.h"
#include "testlib.h"

#define TD "example.org"
#define PARENT "spiffe://" TD "/warden/agent/join_token/p"

/* ---- a source of made-up rows: keys k0000.., a payload size each ---- */

typedef struct Row {
        char key[16];
        size_t payload;
} Row;

typedef struct Fake {
        size_t n;
        size_t payload;  /* bytes of every row's encoding */
        size_t big_from; /* rows from here on carry big_payload */
        size_t big_payload;
        unsigned every; /* matches rows whose index is a multiple of this */
        size_t fetches;
} Fake;

static void row_key(size_t i, char buf[static 16]) {
        snprintf(buf, 16, "k%04u", (unsigned) (i % 10000));
}

static int fake_fetch(void *ctx, const char *after, size_t limit, void ***ret, size_t *ret_n) {
        Fake *f = ctx;
        void **v = calloc(limit + 1, sizeof(void *));
        size_t k = 0;
        char key[16];

        assert_non_null(v);
        f->fetches++;
        for (size_t i = 0; i < f->n && k < limit; i++) {
                row_key(i, key);
                if (after && strcmp(key, after) <= 0)
                        continue;
                Row *r = calloc(1, sizeof(Row));
                assert_non_null(r);
                memcpy(r->key, key, sizeof(key));
                r->payload = f->big_payload && i >= f->big_from ? f->big_payload : f->payload;
                v[k++] = r;
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

static bool fake_match(void *ctx, const void *item) {
        const Fake *f = ctx;
        const Row *r = item;

        return f->every <= 1 || atoi(r->key + 1) % (int) f->every == 0;
}

static const char *fake_key(const void *item) {
        return ((const Row *) item)->key;
}

static int fake_pb(const void *item, ProtobufCMessage **ret) {
        const Row *r = item;
        Warden__Types__V1__Selector *m = calloc(1, sizeof(*m));

        assert_non_null(m);
        warden__types__v1__selector__init(m);
        m->type = strdup(r->key);
        m->value = calloc(1, r->payload + 1);
        assert_non_null(m->type);
        assert_non_null(m->value);
        memset(m->value, 'x', r->payload);
        *ret = &m->base;
        return 0;
}

static void fake_free(void *item) {
        free(item);
}

static AdminPageSource fake_source(Fake *f) {
        return (AdminPageSource){
                .kind = ADMIN_PAGE_ENTRIES,
                .ctx = f,
                .all_match = f->every <= 1,
                .fetch = fake_fetch,
                .match = fake_match,
                .key = fake_key,
                .to_pb = fake_pb,
                .free_item = fake_free,
        };
}

static const char *pb_key(const ProtobufCMessage *m) {
        return ((const Warden__Types__V1__Selector *) m)->type;
}

/* Walks every page of size `size` and checks that the rows come in order, each once,
 * exactly the matching ones; returns the number of pages (the last may be empty). */
static size_t walk(Fake *f, int32_t size, size_t *ret_max_page) {
        AdminPageSource src = fake_source(f);
        _cleanup_free_ char *token = NULL;
        _cleanup_free_ size_t *want = calloc(f->n + 1, sizeof(size_t));
        size_t pages = 0, seen = 0, max_page = 0, matching = 0;
        char err[ADMIN_ERR_MAX], key[16];

        assert_non_null(want);
        for (size_t i = 0; i < f->n; i++) {
                Row r = {};
                row_key(i, r.key);
                if (fake_match(f, &r))
                        want[matching++] = i;
        }
        do {
                _cleanup_(admin_page_done) AdminPage p = {};
                _cleanup_(admin_pb_list_done) AdminPbList l = {};
                char *next = NULL;

                assert_ok(admin_page_init(ADMIN_PAGE_ENTRIES, size, token, &p, err, sizeof(err)));
                assert_ok(admin_page_collect(&src, &p, &l, &next));
                if (l.n > 0)
                        assert_null(l.v[l.n]);
                for (size_t i = 0; i < l.n; i++) {
                        assert_true(seen < matching);
                        row_key(want[seen++], key);
                        assert_string_equal(pb_key(l.v[i]), key);
                }
                if (l.n > max_page)
                        max_page = l.n;
                free(token);
                token = next;
                pages++;
                assert_true(pages < 10000);
        } while (token);
        assert_int_equal(seen, matching);
        if (ret_max_page)
                *ret_max_page = max_page;
        return pages;
}

static void test_pages_by_size(void **state) {
        Fake f = {.n = 10, .payload = 10};
        size_t max = 0;

        (void) state;
        assert_int_equal(walk(&f, 3, &max), 4); /* 3 3 3 1 */
        assert_int_equal(max, 3);
        /* A full last page cannot know it is the last: one empty page follows. */
        assert_int_equal(walk(&f, 5, &max), 3);
        assert_int_equal(walk(&f, 1000, &max), 1);
        assert_int_equal(max, 10);
        /* Over the cap: 1000. */
        f.n = 2500;
        assert_int_equal(walk(&f, 5000, &max), 3);
        assert_int_equal(max, ADMIN_PAGE_SIZE_MAX);
        /* Nothing at all: one empty page, no token. */
        f.n = 0;
        assert_int_equal(walk(&f, 10, &max), 1);
        assert_int_equal(max, 0);
}

static void test_sparse_filter(void **state) {
        Fake f = {.n = 1200, .payload = 10, .every = 250}; /* 0 250 500 750 1000 */
        size_t max = 0;

        (void) state;
        assert_int_equal(walk(&f, 2, &max), 3);
        assert_int_equal(max, 2);
        f.every = 2;
        assert_int_equal(walk(&f, 7, &max), 600 / 7 + 1);
        /* A filter that matches only the first row reads everything once, in chunks. */
        f.every = 100000;
        f.fetches = 0;
        assert_int_equal(walk(&f, 10, &max), 1);
        assert_true(f.fetches >= 1200 / 256 + 1);
        assert_true(f.fetches <= 16);
}

static void test_pages_by_bytes(void **state) {
        /* 900 kB each: two fit in ADMIN_PAGE_BYTES_MAX, not three. */
        Fake f = {.n = 7, .payload = 900 * 1000};
        size_t max = 0;

        (void) state;
        assert_int_equal(walk(&f, 100, &max), 4);
        assert_int_equal(max, 2);
        /* A row larger than a page still comes, alone. */
        f = (Fake){.n = 5, .payload = 10, .big_from = 2, .big_payload = 3 * 1024 * 1024};
        assert_int_equal(walk(&f, 100, &max), 4); /* k0 k1 | k2 | k3 | k4 */
        /* The bytes limit hits in the middle of a filtered chunk. */
        f = (Fake){.n = 40, .payload = 300 * 1000, .every = 3};
        assert_int_equal(walk(&f, 100, &max), 14 / 6 + 1);
        assert_int_equal(max, 6);
}

static void test_unpaged(void **state) {
        Fake f = {.n = 3000, .payload = 1000};
        AdminPageSource src = fake_source(&f);
        _cleanup_(admin_page_done) AdminPage p = {};
        _cleanup_(admin_pb_list_done) AdminPbList l = {};
        char err[ADMIN_ERR_MAX], *next = (char *) "x";
        int64_t n = 0;

        (void) state;
        /* No page size, no token: everything (no bytes limit either: the reply fails
         * when it does not fit in one message, as before paging). */
        assert_ok(admin_page_init(ADMIN_PAGE_ENTRIES, 0, "", &p, err, sizeof(err)));
        assert_int_equal(p.size, 0);
        assert_ok(admin_page_collect(&src, &p, &l, &next));
        assert_null(next);
        assert_int_equal(l.n, 3000);
        f.every = 7;
        assert_ok(admin_page_count(&src, &n));
        assert_int_equal(n, 3000 / 7 + 1);
}

static void test_tokens(void **state) {
        _cleanup_free_ char *t = NULL, *t2 = NULL, *bad = NULL, *nul = NULL, *agent = NULL;
        AdminPage p = {};
        char err[ADMIN_ERR_MAX];

        (void) state;
        assert_ok(admin_page_token(ADMIN_PAGE_ENTRIES, "abc_DEF-1", &t));
        assert_null(strstr(t, "abc")); /* opaque: not the plain key */
        assert_ok(admin_page_init(ADMIN_PAGE_ENTRIES, 10, t, &p, err, sizeof(err)));
        assert_string_equal(p.after, "abc_DEF-1");
        assert_int_equal(p.size, 10);
        admin_page_done(&p);
        assert_null(p.after);
        /* A token and no size: the cap. */
        assert_ok(admin_page_init(ADMIN_PAGE_ENTRIES, 0, t, &p, err, sizeof(err)));
        assert_int_equal(p.size, ADMIN_PAGE_SIZE_MAX);
        admin_page_done(&p);

#define REFUSED(kind, size, token, text)                                                           \
        do {                                                                                       \
                err[0] = '\0';                                                                     \
                assert_errno(admin_page_init(kind, size, token, &p, err, sizeof(err)), EINVAL);    \
                assert_non_null(strstr(err, text));                                                \
                admin_page_done(&p);                                                               \
        } while (0)

        REFUSED(ADMIN_PAGE_ENTRIES, -1, "", "page_size must not be negative");
        REFUSED(ADMIN_PAGE_ENTRIES, 10, "garbage!", "invalid page_token");
        REFUSED(ADMIN_PAGE_ENTRIES, 10, "a2V5", "invalid page_token"); /* "key" */
        /* A token of the other list. */
        assert_ok(admin_page_token(ADMIN_PAGE_AGENTS, "spiffe://" TD "/a", &agent));
        REFUSED(ADMIN_PAGE_ENTRIES, 10, agent, "invalid page_token");
        assert_ok(admin_page_init(ADMIN_PAGE_AGENTS, 10, agent, &p, err, sizeof(err)));
        assert_string_equal(p.after, "spiffe://" TD "/a");
        admin_page_done(&p);
        REFUSED(ADMIN_PAGE_AGENTS, 10, t, "invalid page_token");
        /* Keys that could never be stored, a NUL inside, padding, far too long. */
        assert_ok(admin_page_token(ADMIN_PAGE_ENTRIES, "bad id", &bad));
        REFUSED(ADMIN_PAGE_ENTRIES, 10, bad, "invalid page_token");
        assert_ok(jose_b64url_encode("e:ab\0cd", 7, &nul));
        REFUSED(ADMIN_PAGE_ENTRIES, 10, nul, "invalid page_token");
        assert_ok(admin_page_token(ADMIN_PAGE_ENTRIES, "", &t2));
        REFUSED(ADMIN_PAGE_ENTRIES, 10, t2, "invalid page_token");
        REFUSED(ADMIN_PAGE_ENTRIES, 10, "ZTphYmM=", "invalid page_token");
        char *huge = malloc(20000);
        assert_non_null(huge);
        memset(huge, 'A', 19999);
        huge[19999] = '\0';
        REFUSED(ADMIN_PAGE_AGENTS, 10, huge, "invalid page_token");
        free(huge);
#undef REFUSED
}

/* ---- the real sources on a datastore ---- */

typedef struct Db {
        char *dir;
        Datastore *ds;
        Server srv;
} Db;

static int db_setup(void **state) {
        Db *d = calloc(1, sizeof(Db));
        char path[512];

        assert_non_null(d);
        d->dir = test_tmpdir();
        snprintf(path, sizeof(path), "%s/ds.sqlite3", d->dir);
        assert_ok(ds_open_sqlite(path, &d->ds));
        d->srv.ds = d->ds;
        *state = d;
        return 0;
}

static int db_teardown(void **state) {
        Db *d = *state;

        ds_close(d->ds);
        test_rmdir_free(d->dir);
        free(d);
        return 0;
}

static void store(Datastore *ds, size_t n) {
        Entry **v = calloc(n, sizeof(Entry *));
        char id[96], sel[32];

        assert_non_null(v);
        for (size_t i = 0; i < n; i++) {
                assert_ok(entry_new(&v[i]));
                snprintf(id, sizeof(id), "spiffe://" TD "/w/%zu", i);
                snprintf(sel, sizeof(sel), "unix:uid:%zu", i);
                v[i]->spiffe_id = strdup(id);
                v[i]->parent_id = strdup(PARENT);
                if (i % 4 == 0)
                        v[i]->hint = strdup("four");
                assert_ok(selector_set_add_string(&v[i]->selectors, sel, NULL));
        }
        assert_ok(ds_create_entries(ds, v, n, NULL));
        entry_array_free(v, n);
}

/* Every page of ListEntries with this request; returns how many entries came. */
static size_t list_all(Db *d, Warden__Admin__V1__ListEntriesRequest *req, int32_t size) {
        _cleanup_free_ char *token = NULL, *last = NULL;
        char err[ADMIN_ERR_MAX];
        size_t total = 0;

        do {
                _cleanup_(admin_entry_query_done) EntryQuery q = {};
                _cleanup_(admin_page_done) AdminPage p = {};
                _cleanup_(admin_pb_list_done) AdminPbList l = {};
                AdminPageSource src;
                char *next = NULL;

                assert_ok(admin_entry_query_init(req, &q, err, sizeof(err)));
                assert_ok(admin_page_init(ADMIN_PAGE_ENTRIES, size, token, &p, err, sizeof(err)));
                admin_entry_page_source(&d->srv, &q, &src);
                assert_ok(admin_page_collect(&src, &p, &l, &next));
                assert_true(l.n <= (size_t) size);
                for (size_t i = 0; i < l.n; i++) {
                        const Warden__Types__V1__Entry *e = (const void *) l.v[i];
                        if (last)
                                assert_true(strcmp(e->id, last) > 0);
                        free(last);
                        last = strdup(e->id);
                        if (*req->by_hint)
                                assert_string_equal(e->hint, req->by_hint);
                }
                total += l.n;
                free(token);
                token = next;
        } while (token);
        return total;
}

static void test_entry_source(void **state) {
        Db *d = *state;
        Warden__Admin__V1__ListEntriesRequest req = WARDEN__ADMIN__V1__LIST_ENTRIES_REQUEST__INIT;
        _cleanup_(admin_entry_query_done) EntryQuery q = {};
        char err[ADMIN_ERR_MAX];
        AdminPageSource src;
        int64_t n = 0;

        store(d->ds, 50);
        assert_int_equal(list_all(d, &req, 1), 50);
        assert_int_equal(list_all(d, &req, 7), 50);
        req.by_parent_id = (char *) PARENT;
        assert_int_equal(list_all(d, &req, 50), 50);
        /* A filter the admin API applies itself. */
        req.by_hint = (char *) "four";
        assert_int_equal(list_all(d, &req, 3), 13);
        assert_ok(admin_entry_query_init(&req, &q, err, sizeof(err)));
        admin_entry_page_source(&d->srv, &q, &src);
        assert_ok(admin_page_count(&src, &n));
        assert_int_equal(n, 13);
}

static void test_agent_source(void **state) {
        Db *d = *state;
        Warden__Admin__V1__ListAgentsRequest req = WARDEN__ADMIN__V1__LIST_AGENTS_REQUEST__INIT;
        _cleanup_free_ char *token = NULL;
        char err[ADMIN_ERR_MAX], id[96];
        size_t total = 0;

        for (int i = 0; i < 5; i++) {
                _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
                assert_ok(attested_agent_new(&a));
                snprintf(id, sizeof(id), "spiffe://" TD "/warden/agent/join_token/a%d", i);
                a->spiffe_id = strdup(id);
                a->attestation_type = strdup(i == 2 ? "x509pop" : "join_token");
                assert_ok(ds_upsert_agent(d->ds, a));
        }
        req.by_attestation_type = (char *) "join_token";
        do {
                _cleanup_(admin_agent_query_done) AgentQuery q = {};
                _cleanup_(admin_page_done) AdminPage p = {};
                _cleanup_(admin_pb_list_done) AdminPbList l = {};
                AdminPageSource src;
                char *next = NULL;

                assert_ok(admin_agent_query_init(&req, &q, err, sizeof(err)));
                assert_ok(admin_page_init(ADMIN_PAGE_AGENTS, 2, token, &p, err, sizeof(err)));
                admin_agent_page_source(&d->srv, &q, &src);
                assert_ok(admin_page_collect(&src, &p, &l, &next));
                for (size_t i = 0; i < l.n; i++) {
                        const Warden__Types__V1__AttestedAgent *a = (const void *) l.v[i];
                        assert_string_equal(a->attestation_type, "join_token");
                }
                total += l.n;
                free(token);
                token = next;
        } while (token);
        assert_int_equal(total, 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pages_by_size),
                cmocka_unit_test(test_sparse_filter),
                cmocka_unit_test(test_pages_by_bytes),
                cmocka_unit_test(test_unpaged),
                cmocka_unit_test(test_tokens),
                cmocka_unit_test_setup_teardown(test_entry_source, db_setup, db_teardown),
                cmocka_unit_test_setup_teardown(test_agent_source, db_setup, db_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
