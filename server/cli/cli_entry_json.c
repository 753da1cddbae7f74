/* SPDX-License-Identifier: Apache-2.0 */
/* Registration entries as JSON: printing (`entry show -output json`) and reading
 * `entry create -data FILE`. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_entry.h"
#include "ds.h"
#include "entry.h"
#include "entry_pb.h"
#include "parse.h"
#include "rpc.h"
#include "strv.h"

static json_t *strv_to_json(char *const *v, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                json_array_append_new(a, cli_json_string(v[i]));
        return a;
}

json_t *cli_selectors_to_json(Warden__Types__V1__Selector *const *sel, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                json_array_append_new(a,
                                      json_pack("{s:o,s:o}", "type", cli_json_string(sel[i]->type),
                                                "value", cli_json_string(sel[i]->value)));
        return a;
}

json_t *cli_entry_to_json(const Warden__Types__V1__Entry *e) {
        json_t *j = json_object();

        if (!j)
                return NULL;
        json_object_set_new(j, "id", cli_json_string(e->id));
        json_object_set_new(j, "spiffe_id", cli_json_string(e->spiffe_id));
        json_object_set_new(j, "parent_id", cli_json_string(e->parent_id));
        json_object_set_new(j, "selectors", cli_selectors_to_json(e->selectors, e->n_selectors));
        json_object_set_new(j, "x509_svid_ttl", json_integer(e->x509_svid_ttl));
        json_object_set_new(j, "jwt_svid_ttl", json_integer(e->jwt_svid_ttl));
        json_object_set_new(j, "dns_names", strv_to_json(e->dns_names, e->n_dns_names));
        json_object_set_new(j, "federates_with",
                            strv_to_json(e->federates_with, e->n_federates_with));
        json_object_set_new(j, "hint", cli_json_string(e->hint));
        json_object_set_new(j, "admin", json_boolean(e->admin));
        json_object_set_new(j, "node", json_boolean(e->node));
        json_object_set_new(j, "downstream", json_boolean(e->downstream));
        json_object_set_new(j, "expires_at", cli_json_time(e->expires_at));
        json_object_set_new(j, "revision", json_integer(e->revision));
        json_object_set_new(j, "created_at", cli_json_time(e->created_at));
        json_object_set_new(j, "env", cli_json_string(e->env));
        json_object_set_new(j, "task", cli_json_string(e->task));
        json_object_set_new(j, "scopes", strv_to_json(e->scopes, e->n_scopes));
        json_object_set_new(j, "state", cli_json_string(e->state));
        json_object_set_new(j, "created_by", cli_json_string(e->created_by));
        json_object_set_new(j, "approved_by", cli_json_string(e->approved_by));
        return j;
}

/* ---- reading ---- */

typedef struct JsonCtx {
        const char *path;
        size_t index; /* 1-based entry number */
        const char *key;
} JsonCtx;

static int bad(const JsonCtx *x, const char *what, const char *detail) {
        if (detail)
                return cli_error("%s: entry %zu: \"%s\": %s: %s", x->path, x->index, x->key, what,
                                 detail);
        return cli_error("%s: entry %zu: \"%s\": %s", x->path, x->index, x->key, what);
}

static char *mfree(char *p) {
        free(p);
        return NULL;
}

static int set_string(const JsonCtx *x, json_t *v, char **field) {
        char *s;

        if (!json_is_string(v))
                return bad(x, "expected a string", NULL);
        if (strlen(json_string_value(v)) != json_string_length(v))
                return bad(x, "contains a NUL byte", NULL);
        s = strdup(json_string_value(v));
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        if (!*s)
                *field = mfree(s);
        return 0;
}

static int set_int(const JsonCtx *x, json_t *v, int64_t max, int64_t *ret) {
        int64_t i;

        if (json_is_string(v)) {
                if (parse_duration(json_string_value(v), &i) < 0)
                        return bad(x, "not a duration", json_string_value(v));
        } else if (json_is_integer(v))
                i = json_integer_value(v);
        else
                return bad(x, "expected an integer", NULL);
        if (i < 0 || i > max)
                return bad(x, "out of range", NULL);
        *ret = i;
        return 0;
}

static int add_selector(const JsonCtx *x, json_t *v, Entry *e) {
        const char *reason = NULL, *type, *value;
        int r;

        if (json_is_string(v)) {
                r = selector_set_add_string(&e->selectors, json_string_value(v), &reason);
        } else if (json_unpack(v, "{s:s,s:s!}", "type", &type, "value", &value) == 0) {
                r = selector_validate(type, value, &reason);
                if (r >= 0)
                        r = selector_set_add(&e->selectors, type, value);
        } else
                return bad(x, "a selector must be \"type:value\" or {\"type\", \"value\"}", NULL);
        if (r == -E2BIG)
                return bad(x, "too many selectors", NULL);
        if (r < 0 && r != -ENOMEM)
                return bad(x, "invalid selector", reason);
        return r;
}

static int set_list(const JsonCtx *x, json_t *v, Entry *e, int (*add)(Entry *, const char *)) {
        size_t i;
        json_t *item;
        int r;

        if (!json_is_array(v))
                return bad(x, "expected an array", NULL);
        json_array_foreach(v, i, item) {
                if (!json_is_string(item))
                        return bad(x, "expected an array of strings", NULL);
                r = add(e, json_string_value(item));
                if (r < 0)
                        return r == -ENOMEM ? r : bad(x, "invalid value", json_string_value(item));
        }
        return 0;
}

static int add_selector_list(const JsonCtx *x, json_t *v, Entry *e) {
        size_t i;
        json_t *item;
        int r;

        if (!json_is_array(v))
                return bad(x, "expected an array", NULL);
        json_array_foreach(v, i, item) {
                r = add_selector(x, item, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const struct {
        const char *key;
        size_t offset;
} string_fields[] = {
        {"id", offsetof(Entry, id)},
        {"spiffe_id", offsetof(Entry, spiffe_id)},
        {"parent_id", offsetof(Entry, parent_id)},
        {"hint", offsetof(Entry, hint)},
        {"env", offsetof(Entry, env)},
        {"task", offsetof(Entry, task)},
};

/* The server's own record, as `entry show -output json` prints it: read back without
 * complaint and not sent (the server sets these). */
static const char *const ignored_fields[] = {"revision", "created_at", "state", "created_by",
                                             "approved_by"};

static int entry_field(const JsonCtx *x, json_t *v, Entry *e) {
        int64_t i = 0;
        int r;

        for (size_t k = 0; k < ELEMENTSOF(string_fields); k++)
                if (streq(x->key, string_fields[k].key))
                        return set_string(x, v,
                                          (char **) ((uint8_t *) e + string_fields[k].offset));
        for (size_t k = 0; k < ELEMENTSOF(ignored_fields); k++)
                if (streq(x->key, ignored_fields[k]))
                        return 0;
        if (streq(x->key, "x509_svid_ttl") || streq(x->key, "jwt_svid_ttl")) {
                r = set_int(x, v, ENTRY_TTL_MAX, &i);
                if (r >= 0 && x->key[0] == 'x')
                        e->x509_svid_ttl = (int32_t) i;
                else if (r >= 0)
                        e->jwt_svid_ttl = (int32_t) i;
                return r;
        }
        if (streq(x->key, "expires_at"))
                return cli_time_from_json(v, &e->expires_at) < 0
                               ? bad(x,
                                     "expected a time (\"2030-01-01T00:00:00Z\", Unix seconds) "
                                     "or null",
                                     NULL)
                               : 0;
        if (streq(x->key, "admin") || streq(x->key, "node") || streq(x->key, "downstream")) {
                if (!json_is_boolean(v))
                        return bad(x, "expected true or false", NULL);
                *(x->key[0] == 'a'   ? &e->admin
                  : x->key[0] == 'n' ? &e->node
                                     : &e->downstream) = json_is_true(v);
                return 0;
        }
        if (streq(x->key, "selectors"))
                return add_selector_list(x, v, e);
        if (streq(x->key, "dns_names"))
                return set_list(x, v, e, entry_add_dns_name);
        if (streq(x->key, "federates_with"))
                return set_list(x, v, e, entry_add_federates_with);
        if (streq(x->key, "scopes"))
                return set_list(x, v, e, entry_add_scope);
        return bad(x, "unknown key", NULL);
}

static int entry_from_json(JsonCtx *x, json_t *o, Warden__Types__V1__Entry **ret) {
        _cleanup_(entry_freep) Entry *e = NULL;
        const char *key;
        json_t *v;
        int r;

        if (!json_is_object(o))
                return cli_error("%s: entry %zu: not a JSON object", x->path, x->index);
        r = entry_new(&e);
        if (r < 0)
                return r;
        json_object_foreach(o, key, v) {
                x->key = key;
                r = entry_field(x, v, e);
                if (r < 0)
                        return r;
        }
        return entry_to_pb(e, ret);
}

static int read_json_file(const char *flag, const char *path, json_t **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        json_error_t jerr;
        struct stat st;
        size_t len = 0;
        json_t *j;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return cli_error_errno(-errno, "cannot read %s %s: %s", flag, path,
                                       strerror(errno));
        if (!S_ISREG(st.st_mode))
                return cli_error("%s %s is not a regular file", flag, path);
        if (st.st_size > (off_t) RPC_MAX_MESSAGE_SIZE)
                return cli_error_errno(-EFBIG, "%s %s is larger than %u bytes", flag, path,
                                       RPC_MAX_MESSAGE_SIZE);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + len, (size_t) st.st_size - len);
                if (k < 0)
                        return cli_error_errno(-errno, "cannot read %s %s: %s", flag, path,
                                               strerror(errno));
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return cli_error("%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
                                 jerr.text);
        *ret = j;
        return 0;
}

void cli_entries_free(Warden__Types__V1__Entry **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                pb_free(v[i]);
        free(v);
}

int cli_entries_from_file(const char *path, Warden__Types__V1__Entry ***ret, size_t *ret_n) {
        json_auto_t *j = NULL;
        json_t *list, *item;
        Warden__Types__V1__Entry **v;
        JsonCtx x = {.path = path};
        size_t n, i;
        int r;

        r = read_json_file("-data file", path, &j);
        if (r < 0)
                return r;
        list = json_is_object(j) ? json_object_get(j, "entries") : j;
        if (json_is_object(j) && json_object_size(j) != 1)
                return cli_error("%s: expected {\"entries\": [...]}", path);
        if (!json_is_array(list))
                return cli_error("%s: expected {\"entries\": [...]} or an array of entries", path);
        n = json_array_size(list);
        if (n == 0)
                return cli_error("%s: no entries", path);
        if (n > DS_BATCH_MAX)
                return cli_error("%s: %zu entries, at most %d per file", path, n, DS_BATCH_MAX);
        v = calloc(n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        json_array_foreach(list, i, item) {
                x.index = i + 1;
                r = entry_from_json(&x, item, &v[i]);
                if (r < 0) {
                        cli_entries_free(v, n);
                        return r == -ENOMEM ? cli_error_errno(r, "out of memory") : r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* One element of an ID list: "ID" or {"id": "ID", ...}. */
static int id_of(const char *path, size_t i, json_t *item, const char **ret) {
        json_t *id = json_is_object(item) ? json_object_get(item, "id") : item;

        if (!json_is_string(id))
                return cli_error("%s: item %zu: expected an entry ID or an object with \"id\"",
                                 path, i + 1);
        if (entry_id_validate(json_string_value(id)) < 0 ||
            strlen(json_string_value(id)) != json_string_length(id))
                return cli_error("%s: item %zu: invalid entry ID \"%s\"", path, i + 1,
                                 json_string_value(id));
        *ret = json_string_value(id);
        return 0;
}

int cli_entry_ids_from_file(const char *path, char ***ret, size_t *ret_n) {
        json_auto_t *j = NULL;
        json_t *list, *item;
        char **ids = NULL;
        size_t n = 0, i;
        int r;

        r = read_json_file("-file", path, &j);
        if (r < 0)
                return r;
        list = json_is_object(j) ? json_object_get(j, json_object_get(j, "ids") ? "ids" : "entries")
                                 : j;
        if ((json_is_object(j) && json_object_size(j) != 1) || !json_is_array(list))
                return cli_error("%s: expected {\"ids\": [...]}, {\"entries\": [...]} or an array",
                                 path);
        if (json_array_size(list) == 0)
                return cli_error("%s: no entry IDs", path);
        if (json_array_size(list) > DS_BATCH_MAX)
                return cli_error("%s: %zu entry IDs, at most %d per file", path,
                                 json_array_size(list), DS_BATCH_MAX);
        json_array_foreach(list, i, item) {
                const char *id = NULL;
                r = id_of(path, i, item, &id);
                if (r >= 0 && strv_push(&ids, &n, id) < 0)
                        r = cli_error_errno(-ENOMEM, "out of memory");
                if (r < 0) {
                        strv_free(ids, n);
                        return r;
                }
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}
