/* SPDX-License-Identifier: Apache-2.0 */
/* The list verbs (`entry show`, `agent list`): every page of the list call, printed as it
 * arrives, in the same text and JSON as one answer would print. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "pb_util.h"

#define JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)

void cli_json_list_begin(CliJsonList *l, FILE *f, const char *key) {
        json_t *j = json_string(key);
        _cleanup_free_ char *k = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

        json_decref(j);
        *l = (CliJsonList){.f = f};
        /* cli_print_json() of {"key": [...]}: the same bytes, written item by item. */
        fprintf(f, "{\n  %s: [", k ? k : "\"\"");
}

int cli_json_list_add(CliJsonList *l, json_t *item) {
        _cleanup_free_ char *s = NULL;

        if (!item)
                return cli_error_errno(-ENOMEM, "out of memory");
        s = json_dumps(item, JSON_FLAGS);
        json_decref(item);
        if (!s)
                return cli_error_errno(-ENOMEM, "out of memory");
        /* Nested two levels deeper: every line of the item moves 4 columns right
         * (strings hold no raw newlines: JSON escapes them). */
        fputs(l->n++ > 0 ? ",\n    " : "\n    ", l->f);
        for (const char *p = s; *p; p++) {
                fputc(*p, l->f);
                if (*p == '\n')
                        fputs("    ", l->f);
        }
        return 0;
}

void cli_json_list_end(CliJsonList *l) {
        fputs(l->n > 0 ? "\n  ]\n}\n" : "]\n}\n", l->f);
        fflush(l->f);
}

typedef struct Walk {
        Cli *cli;
        const CliPager *pg;
        const CliListPrinter *pr;
        CliJsonList json;
} Walk;

static void walk_print(Walk *w, const void *resp, int *r) {
        void *const *items = NULL;
        size_t n = w->pg->items(resp, &items);

        for (size_t i = 0; i < n && *r >= 0; i++) {
                if (w->cli->json)
                        *r = cli_json_list_add(&w->json, w->pr->to_json(items[i]));
                else {
                        printf("\n");
                        w->pr->print_text(items[i]);
                }
        }
}

/* The header line of the text output needs the total: the first page's size when it
 * is the only one, else the count call's answer. */
static int walk_header(Walk *w, const void *first) {
        void *const *items = NULL;
        size_t n = w->pg->items(first, &items);
        int64_t total = (int64_t) n;
        int r;

        if (w->cli->json) {
                cli_json_list_begin(&w->json, stdout, w->pr->json_key);
                return 0;
        }
        if (*w->pg->next_token(first)) {
                r = w->pr->count(w->cli, w->pr->userdata, &total);
                if (r < 0)
                        return r;
        }
        w->pr->print_header(total);
        return 0;
}

static int walk_call(Walk *w, void **ret) {
        return cli_call(w->cli, w->pg->method, w->pg->req, w->pg->resp_desc, ret);
}

int cli_list_all(Cli *cli, const CliPager *pg, const CliListPrinter *pr, int32_t page_size) {
        Walk w = {.cli = cli, .pg = pg, .pr = pr};
        _cleanup_free_ char *token = NULL;
        void *resp = NULL;
        int r;

        *pg->req_page_size = page_size;
        *pg->req_page_token = (char *) "";
        r = walk_call(&w, &resp);
        if (r >= 0)
                r = walk_header(&w, resp);
        while (r >= 0) {
                const char *next;

                walk_print(&w, resp, &r);
                next = pg->next_token(resp);
                if (r < 0 || !*next)
                        break;
                /* A server that hands out the same token again would never end. */
                if (token && streq(token, next)) {
                        r = cli_error("the server repeated a page token");
                        break;
                }
                free(token);
                token = strdup(next);
                if (!token) {
                        r = cli_error_errno(-ENOMEM, "out of memory");
                        break;
                }
                pb_free(resp);
                resp = NULL;
                *pg->req_page_token = token;
                r = walk_call(&w, &resp);
        }
        pb_free(resp);
        *pg->req_page_token = (char *) "";
        if (r >= 0 && cli->json)
                cli_json_list_end(&w.json);
        fflush(stdout);
        return r;
}

int cli_page_size_flag(const Options *o, int32_t *ret) {
        int64_t v = options_get_int(o, "pageSize");

        if (v < 1 || v > 1000)
                return cli_error("-pageSize: must be between 1 and 1000");
        *ret = (int32_t) v;
        return 0;
}
