/* SPDX-License-Identifier: Apache-2.0 */
/* Admin API: paging of the list calls (ListEntries, ListAgents), as SPIRE's admin API
 * pages. A page holds the first matching results after the key (entry ID, agent SPIFFE
 * ID) the page token names, in key order, so a walk sees every result that exists from
 * its start to its end exactly once, whatever changes meanwhile (results created or
 * deleted during the walk may or may not be seen). */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

#include "admin_api_internal.h"
#include "cleanup.h"
#include "entry.h"
#include "greedy_realloc.h"
#include "jose_b64.h"
#include "pb_util.h"

/* Longest token accepted: base64url of "<kind>:<longest key>". */
#define PAGE_TOKEN_MAX (4 * (WARDEN_SPIFFEID_MAX + 2) / 3 + 4)

/* Rows read from the datastore at a time for an unpaged answer or a filter the datastore
 * does not apply: the first read of a page asks for at least PAGE_CHUNK_MIN rows, every
 * further one for twice as many, up to PAGE_CHUNK. */
#define PAGE_CHUNK 256
#define PAGE_CHUNK_MIN 16

static bool page_key_ok(AdminPageKind kind, const char *key) {
        if (kind == ADMIN_PAGE_ENTRIES)
                return entry_id_validate(key) >= 0;
        return warden_spiffeid_validate(key, NULL) >= 0;
}

static int page_token_decode(AdminPageKind kind, const char *token, char **ret) {
        _cleanup_free_ uint8_t *raw = NULL;
        size_t len = 0, tlen = strlen(token);
        char *key;

        if (tlen > PAGE_TOKEN_MAX || jose_b64url_decode(token, tlen, &raw, &len) < 0)
                return -EINVAL;
        /* "<kind>:<key>", the key without NUL bytes (decoded buffers end with one). */
        if (len < 3 || raw[0] != (uint8_t) kind || raw[1] != ':' || memchr(raw, '\0', len) != NULL)
                return -EINVAL;
        if (!page_key_ok(kind, (const char *) raw + 2))
                return -EINVAL;
        key = strdup((const char *) raw + 2);
        if (!key)
                return -ENOMEM;
        *ret = key;
        return 0;
}

int admin_page_token(AdminPageKind kind, const char *last, char **ret) {
        _cleanup_free_ char *raw = NULL;

        if (asprintf(&raw, "%c:%s", (char) kind, last) < 0)
                return -ENOMEM;
        return jose_b64url_encode(raw, strlen(raw), ret);
}

int admin_page_init(AdminPageKind kind,
                    int32_t page_size,
                    const char *token,
                    AdminPage *p,
                    char *err,
                    size_t n) {
        int r;

        *p = (AdminPage){};
        if (page_size < 0)
                return admin_fail(-EINVAL, err, n, "page_size must not be negative");
        if (token && *token) {
                r = page_token_decode(kind, token, &p->after);
                if (r == -EINVAL)
                        return admin_fail(r, err, n, "invalid page_token");
                if (r < 0)
                        return r;
        }
        /* No page size and no token: everything, as before paging existed. */
        if (page_size == 0 && !p->after)
                p->size = 0;
        else if (page_size == 0 || page_size > ADMIN_PAGE_SIZE_MAX)
                p->size = ADMIN_PAGE_SIZE_MAX;
        else
                p->size = (size_t) page_size;
        return 0;
}

void admin_page_done(AdminPage *p) {
        free(p->after);
        p->after = NULL;
}

void admin_pb_list_done(AdminPbList *l) {
        for (size_t i = 0; i < l->n; i++)
                pb_free(l->v[i]);
        free(l->v);
        *l = (AdminPbList){};
}

static int pb_list_push(AdminPbList *l, ProtobufCMessage *m) {
        /* One slot more than used: protobuf-c repeated fields are plain arrays. */
        int r = GREEDY_REALLOC(l->v, l->allocated, l->n + 2);

        if (r < 0)
                return r;
        l->v[l->n++] = m;
        l->v[l->n] = NULL;
        return 0;
}

static void free_items(const AdminPageSource *src, void **items, size_t k) {
        for (size_t i = 0; i < k; i++)
                src->free_item(items[i]);
        free(items);
}

typedef struct Walk {
        const AdminPageSource *src;
        const AdminPage *page;
        AdminPbList *out;
        size_t bytes; /* encoded size of out so far */
        char *last;   /* once the page is full: the key it ends with */
} Walk;

static int walk_end(Walk *w, const char *key) {
        w->last = strdup(key);
        return w->last ? 0 : -ENOMEM;
}

/* Adds the matching items of one chunk (the items after key `before`) to w->out, until
 * the page is full: by page size, or by bytes (then it ends before the item that did
 * not fit). */
static int walk_chunk(Walk *w, const char *before, void **items, size_t k) {
        const AdminPage *p = w->page;
        int r;

        for (size_t i = 0; i < k; i++) {
                ProtobufCMessage *m = NULL;
                size_t size;

                if (!w->src->match(w->src->ctx, items[i]))
                        continue;
                r = w->src->to_pb(items[i], &m);
                if (r < 0)
                        return r;
                /* The field's tag and length come on top of the message. */
                size = protobuf_c_message_get_packed_size(m) + 8;
                if (p->size > 0 && w->out->n > 0 && w->bytes + size > ADMIN_PAGE_BYTES_MAX) {
                        pb_free(m);
                        return walk_end(w, i > 0 ? w->src->key(items[i - 1]) : before);
                }
                r = pb_list_push(w->out, m);
                if (r < 0) {
                        pb_free(m);
                        return r;
                }
                w->bytes += size;
                if (p->size > 0 && w->out->n >= p->size)
                        return walk_end(w, w->src->key(items[i]));
        }
        return 0;
}

int admin_page_collect(const AdminPageSource *src,
                       const AdminPage *p,
                       AdminPbList *out,
                       char **ret_next_token) {
        _cleanup_free_ char *cursor = NULL;
        Walk w = {.src = src, .page = p, .out = out};
        size_t chunk = PAGE_CHUNK_MIN;
        int r;

        for (;;) {
                const char *before = cursor ? cursor : p->after;
                size_t want = PAGE_CHUNK, k = 0;
                void **items = NULL;

                if (p->size > 0) {
                        /* Every row a match: read exactly what the page still needs. */
                        want = p->size - out->n;
                        if (!src->all_match && want < chunk)
                                want = chunk;
                        chunk = chunk * 2 > PAGE_CHUNK ? PAGE_CHUNK : chunk * 2;
                }
                r = src->fetch(src->ctx, before, want, &items, &k);
                if (r < 0)
                        break;
                r = walk_chunk(&w, before, items, k);
                if (r >= 0 && !w.last && k == want) {
                        char *next = strdup(src->key(items[k - 1]));
                        r = next ? 0 : -ENOMEM;
                        free(cursor);
                        cursor = next;
                }
                free_items(src, items, k);
                if (r < 0 || w.last || k < want)
                        break;
        }
        if (r >= 0 && w.last)
                r = admin_page_token(src->kind, w.last, ret_next_token);
        else if (r >= 0)
                *ret_next_token = NULL; /* the walk reached the end */
        free(w.last);
        return r;
}

int admin_page_count(const AdminPageSource *src, int64_t *ret) {
        _cleanup_free_ char *cursor = NULL;
        int64_t count = 0;
        int r;

        for (;;) {
                void **items = NULL;
                size_t k = 0;

                r = src->fetch(src->ctx, cursor, ADMIN_PAGE_SIZE_MAX, &items, &k);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < k; i++)
                        count += src->match(src->ctx, items[i]);
                if (k == ADMIN_PAGE_SIZE_MAX) {
                        free(cursor);
                        cursor = strdup(src->key(items[k - 1]));
                        r = cursor ? 0 : -ENOMEM;
                }
                free_items(src, items, k);
                if (r < 0)
                        return r;
                if (k < ADMIN_PAGE_SIZE_MAX)
                        break;
        }
        *ret = count;
        return 0;
}
