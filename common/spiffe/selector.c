/* SPDX-License-Identifier: Apache-2.0 */
/* Selectors ("type:value") and sorted, deduplicated selector sets. Rules in selector.h. */
#define _GNU_SOURCE

#include "selector.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "greedy_realloc.h"

typedef enum KeyKind {
        KEY_NAME,   /* any non-empty text */
        KEY_NUMBER, /* decimal 0..4294967294 */
        KEY_PATH,   /* absolute path */
        KEY_SHA256, /* 64 lowercase hex digits */
} KeyKind;

typedef struct KnownKey {
        const char *type;
        const char *key;
        KeyKind kind;
} KnownKey;

static const KnownKey known_keys[] = {
        {"unix", "uid", KEY_NUMBER},
        {"unix", "user", KEY_NAME},
        {"unix", "gid", KEY_NUMBER},
        {"unix", "group", KEY_NAME},
        {"unix", "supplementary_gid", KEY_NUMBER},
        {"unix", "supplementary_group", KEY_NAME},
        {"unix", "path", KEY_PATH},
        {"unix", "sha256", KEY_SHA256},
        {"systemd", "id", KEY_NAME},
        {"systemd", "fragment_path", KEY_PATH},
};

static int fail(const char *reason, const char **reterr_reason) {
        if (reterr_reason)
                *reterr_reason = reason;
        return -EINVAL;
}

static bool is_known_type(const char *type) {
        for (size_t i = 0; i < ELEMENTSOF(known_keys); i++)
                if (streq(known_keys[i].type, type))
                        return true;
        return false;
}

static int validate_type(const char *type, const char **reterr_reason) {
        size_t i;

        if (!type || type[0] == '\0')
                return fail("empty type", reterr_reason);
        for (i = 0; type[i] != '\0'; i++) {
                char c = type[i];
                if (i >= SELECTOR_TYPE_MAX)
                        return fail("type too long", reterr_reason);
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                        return fail("bad type character", reterr_reason);
        }
        return 0;
}

static int validate_generic_value(const char *value, const char **reterr_reason) {
        size_t i;

        if (!value || value[0] == '\0')
                return fail("empty value", reterr_reason);
        for (i = 0; value[i] != '\0'; i++) {
                unsigned char c = (unsigned char) value[i];
                if (i >= SELECTOR_VALUE_MAX)
                        return fail("value too long", reterr_reason);
                if (c < 0x20 || c > 0x7e)
                        return fail("bad value character", reterr_reason);
        }
        if (value[0] == ' ' || value[i - 1] == ' ')
                return fail("leading or trailing space", reterr_reason);
        return 0;
}

static int validate_number(const char *s, const char **reterr_reason) {
        uint64_t v = 0;
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (s[i] < '0' || s[i] > '9')
                        return fail("not a decimal number", reterr_reason);
        if (s[0] == '0' && s[1] != '\0')
                return fail("number has a leading zero", reterr_reason);
        if (i > 10)
                return fail("number out of range", reterr_reason);
        for (i = 0; s[i] != '\0'; i++)
                v = v * 10 + (uint64_t) (s[i] - '0');
        if (v > UINT32_MAX - 1)
                return fail("number out of range", reterr_reason);
        return 0;
}

static int validate_sha256(const char *s, const char **reterr_reason) {
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return fail("not a lowercase hex sha256", reterr_reason);
        if (i != 64)
                return fail("not a lowercase hex sha256", reterr_reason);
        return 0;
}

/* value = "key:arg" for a built-in type. */
static int validate_known_value(const char *type, const char *value, const char **reterr_reason) {
        const char *colon = strchr(value, ':'), *arg;
        size_t klen;

        if (!colon)
                return fail("missing key separator", reterr_reason);
        klen = (size_t) (colon - value);
        arg = colon + 1;

        for (size_t i = 0; i < ELEMENTSOF(known_keys); i++) {
                const KnownKey *k = &known_keys[i];
                if (!streq(k->type, type) || strlen(k->key) != klen || !strneq(k->key, value, klen))
                        continue;
                if (arg[0] == '\0')
                        return fail("empty key value", reterr_reason);
                switch (k->kind) {
                case KEY_NAME:
                        return 0;
                case KEY_NUMBER:
                        return validate_number(arg, reterr_reason);
                case KEY_PATH:
                        return arg[0] == '/' ? 0 : fail("not an absolute path", reterr_reason);
                case KEY_SHA256:
                        return validate_sha256(arg, reterr_reason);
                }
        }
        return fail("unknown key for selector type", reterr_reason);
}

int selector_validate(const char *type, const char *value, const char **reterr_reason) {
        int r;

        r = validate_type(type, reterr_reason);
        if (r < 0)
                return r;
        r = validate_generic_value(value, reterr_reason);
        if (r < 0)
                return r;
        if (is_known_type(type))
                return validate_known_value(type, value, reterr_reason);
        return 0;
}

int selector_parse(const char *s, Selector *ret, const char **reterr_reason) {
        _cleanup_free_ char *type = NULL, *value = NULL;
        const char *colon;
        int r;

        if (!s || s[0] == '\0')
                return fail("empty selector", reterr_reason);
        colon = strchr(s, ':');
        if (!colon)
                return fail("missing type separator", reterr_reason);
        if ((size_t) (colon - s) > SELECTOR_TYPE_MAX)
                return fail("type too long", reterr_reason);

        type = strndup(s, (size_t) (colon - s));
        if (!type)
                return -ENOMEM;
        r = selector_validate(type, colon + 1, reterr_reason);
        if (r < 0)
                return r;
        value = strdup(colon + 1);
        if (!value)
                return -ENOMEM;

        ret->type = TAKE_PTR(type);
        ret->value = TAKE_PTR(value);
        return 0;
}

void selector_done(Selector *s) {
        if (!s)
                return;
        free(s->type);
        free(s->value);
        s->type = s->value = NULL;
}

int selector_format(const Selector *s, char **ret) {
        char *t;

        if (!s || !s->type || !s->value)
                return -EINVAL;
        if (asprintf(&t, "%s:%s", s->type, s->value) < 0)
                return -ENOMEM;
        *ret = t;
        return 0;
}

int selector_compare(const Selector *a, const Selector *b) {
        int c = strcmp(a->type, b->type);

        if (c != 0)
                return c;
        return strcmp(a->value, b->value);
}

static size_t set_max(const SelectorSet *set) {
        return set->max > 0 ? set->max : WARDEN_SELECTORS_MAX;
}

/* Index of the first item >= s; *ret_found when equal. */
static size_t set_lower_bound(const SelectorSet *set, const Selector *s, bool *ret_found) {
        size_t lo = 0, hi = set->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (selector_compare(&set->items[mid], s) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = lo < set->n && selector_compare(&set->items[lo], s) == 0;
        return lo;
}

int selector_set_add(SelectorSet *set, const char *type, const char *value) {
        _cleanup_free_ char *t = NULL, *v = NULL;
        Selector key = {(char *) type, (char *) value};
        bool found;
        size_t i;
        int r;

        if (!set)
                return -EINVAL;
        r = selector_validate(type, value, NULL);
        if (r < 0)
                return r;
        i = set_lower_bound(set, &key, &found);
        if (found)
                return 0;
        if (set->n >= set_max(set))
                return -E2BIG;

        t = strdup(type);
        v = strdup(value);
        if (!t || !v)
                return -ENOMEM;
        r = GREEDY_REALLOC(set->items, set->allocated, set->n + 1);
        if (r < 0)
                return r;

        memmove(set->items + i + 1, set->items + i, (set->n - i) * sizeof(Selector));
        set->items[i] = (Selector){TAKE_PTR(t), TAKE_PTR(v)};
        set->n++;
        return 0;
}

int selector_set_add_string(SelectorSet *set, const char *s, const char **reterr_reason) {
        _cleanup_(selector_done) Selector sel = {};
        int r;

        r = selector_parse(s, &sel, reterr_reason);
        if (r < 0)
                return r;
        return selector_set_add(set, sel.type, sel.value);
}

int selector_set_copy(const SelectorSet *src, SelectorSet *ret) {
        _cleanup_(selector_set_done) SelectorSet copy = {.max = src->max};
        int r;

        r = GREEDY_REALLOC(copy.items, copy.allocated, src->n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < src->n; i++) {
                copy.items[i].type = strdup(src->items[i].type);
                copy.items[i].value = strdup(src->items[i].value);
                copy.n++;
                if (!copy.items[i].type || !copy.items[i].value)
                        return -ENOMEM;
        }
        *ret = copy;
        copy = (SelectorSet){};
        return 0;
}

void selector_set_done(SelectorSet *set) {
        if (!set)
                return;
        for (size_t i = 0; i < set->n; i++)
                selector_done(&set->items[i]);
        free(set->items);
        set->items = NULL;
        set->n = set->allocated = 0;
}

bool selector_set_contains(const SelectorSet *set, const Selector *s) {
        bool found;

        if (!set || !s || !s->type || !s->value)
                return false;
        (void) set_lower_bound(set, s, &found);
        return found;
}

bool selector_set_is_subset(const SelectorSet *entry, const SelectorSet *have) {
        size_t i = 0, j = 0;

        if (!entry || entry->n == 0 || !have || have->n < entry->n)
                return false;
        while (i < entry->n) {
                int c;

                if (j >= have->n)
                        return false;
                c = selector_compare(&entry->items[i], &have->items[j]);
                if (c < 0)
                        return false; /* entry->items[i] is not in have */
                if (c == 0)
                        i++;
                j++;
        }
        return true;
}
