/* SPDX-License-Identifier: Apache-2.0 */
/* SPIFFE ID and trust-domain validation: go-spiffe's FromString algorithm
 * (spec/SPIFFE-FACTS.md §1) plus the 2048/255-byte length limits. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>

#include "cleanup.h"

#define SCHEME_PREFIX "spiffe://"
#define SCHEME_PREFIX_LEN (sizeof(SCHEME_PREFIX) - 1)

static int fail(const char *reason, const char **reterr_reason) {
        if (reterr_reason)
                *reterr_reason = reason;
        return -EINVAL;
}

static bool is_td_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool is_path_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '-' || c == '_';
}

/* Checks the segment path[start..end) (it begins with the '/'). last: at end of path. */
static int check_segment(const char *seg, size_t len, bool last, const char **reterr_reason) {
        if (len == 1)
                return fail(last ? "trailing slash" : "empty segment", reterr_reason);
        if ((len == 2 && seg[1] == '.') || (len == 3 && seg[1] == '.' && seg[2] == '.'))
                return fail("dot segment", reterr_reason);
        return 0;
}

/* go-spiffe ValidatePath: "" or "/seg[/seg...]". */
static int validate_path(const char *path, const char **reterr_reason) {
        size_t start = 0, end;
        int r;

        if (path[0] == '\0')
                return 0;
        if (path[0] != '/')
                return fail("bad path character", reterr_reason);

        for (end = 0; path[end] != '\0'; end++) {
                char c = path[end];
                if (c == '/') {
                        if (end > 0) {
                                r = check_segment(path + start, end - start, false, reterr_reason);
                                if (r < 0)
                                        return r;
                        }
                        start = end;
                        continue;
                }
                if (!is_path_char(c))
                        return fail("bad path character", reterr_reason);
        }
        return check_segment(path + start, end - start, true, reterr_reason);
}

/* Scans the trust domain of s (which must start with the scheme). On success
 * *ret_td_len is its length and the path starts at s + SCHEME_PREFIX_LEN + len. */
static int scan_id(const char *s, size_t *ret_td_len, const char **reterr_reason) {
        const char *td;
        size_t i;
        int r;

        if (!s || s[0] == '\0')
                return fail("empty", reterr_reason);
        if (strncmp(s, SCHEME_PREFIX, SCHEME_PREFIX_LEN) != 0)
                return fail("wrong scheme", reterr_reason);
        if (strnlen(s, WARDEN_SPIFFEID_MAX + 1) > WARDEN_SPIFFEID_MAX)
                return fail("too long", reterr_reason);

        td = s + SCHEME_PREFIX_LEN;
        for (i = 0; td[i] != '\0' && td[i] != '/'; i++)
                if (!is_td_char(td[i]))
                        return fail("bad trust domain character", reterr_reason);
        if (i == 0)
                return fail("missing trust domain", reterr_reason);
        if (i > WARDEN_TRUST_DOMAIN_MAX)
                return fail("trust domain too long", reterr_reason);

        r = validate_path(td + i, reterr_reason);
        if (r < 0)
                return r;
        *ret_td_len = i;
        return 0;
}

int warden_spiffeid_validate(const char *s, const char **reterr_reason) {
        size_t td_len;

        return scan_id(s, &td_len, reterr_reason);
}

int warden_spiffeid_validate_workload(const char *s, const char **reterr_reason) {
        size_t td_len;
        int r;

        r = scan_id(s, &td_len, reterr_reason);
        if (r < 0)
                return r;
        if (s[SCHEME_PREFIX_LEN + td_len] == '\0')
                return fail("path required", reterr_reason);
        return 0;
}

int warden_spiffeid_parse(const char *s,
                          char **ret_td,
                          char **ret_path,
                          const char **reterr_reason) {
        _cleanup_free_ char *td = NULL, *path = NULL;
        size_t td_len;
        int r;

        r = scan_id(s, &td_len, reterr_reason);
        if (r < 0)
                return r;

        if (ret_td) {
                td = strndup(s + SCHEME_PREFIX_LEN, td_len);
                if (!td)
                        return -ENOMEM;
        }
        if (ret_path) {
                path = strdup(s + SCHEME_PREFIX_LEN + td_len);
                if (!path)
                        return -ENOMEM;
        }
        if (ret_td)
                *ret_td = TAKE_PTR(td);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

int warden_trust_domain_validate(const char *td, const char **reterr_reason) {
        size_t i;

        if (!td || td[0] == '\0')
                return fail("missing trust domain", reterr_reason);
        for (i = 0; td[i] != '\0'; i++) {
                if (!is_td_char(td[i]))
                        return fail("bad trust domain character", reterr_reason);
                if (i >= WARDEN_TRUST_DOMAIN_MAX)
                        return fail("trust domain too long", reterr_reason);
        }
        return 0;
}

int warden_trust_domain_from_string(const char *s, char **ret_td, const char **reterr_reason) {
        char *td;
        int r;

        if (!s || s[0] == '\0')
                return fail("missing trust domain", reterr_reason);

        if (strstr(s, ":/")) {
                r = warden_spiffeid_parse(s, &td, NULL, reterr_reason);
                if (r < 0)
                        return r;
        } else {
                r = warden_trust_domain_validate(s, reterr_reason);
                if (r < 0)
                        return r;
                td = strdup(s);
                if (!td)
                        return -ENOMEM;
        }
        if (ret_td)
                *ret_td = td;
        else
                free(td);
        return 0;
}

int warden_spiffeid_format(const char *td, const char *path, char **ret) {
        _cleanup_free_ char *id = NULL;
        int r;

        r = warden_trust_domain_validate(td, NULL);
        if (r < 0)
                return r;
        if (!path)
                path = "";
        r = validate_path(path, NULL);
        if (r < 0)
                return r;
        if (asprintf(&id, SCHEME_PREFIX "%s%s", td, path) < 0) {
                id = NULL;
                return -ENOMEM;
        }
        /* Catches the overall length limit. */
        r = warden_spiffeid_validate(id, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(id);
        return 0;
}

int warden_trust_domain_id(const char *td, char **ret) {
        return warden_spiffeid_format(td, NULL, ret);
}

bool warden_spiffeid_member_of(const char *id, const char *td) {
        size_t id_td_len;

        if (!td || scan_id(id, &id_td_len, NULL) < 0)
                return false;
        return strlen(td) == id_td_len && strncmp(id + SCHEME_PREFIX_LEN, td, id_td_len) == 0;
}

bool warden_spiffeid_has_prefix(const char *id, const char *prefix) {
        size_t td_len, n;

        if (scan_id(id, &td_len, NULL) < 0 || scan_id(prefix, &td_len, NULL) < 0)
                return false;
        n = strlen(prefix);
        if (strncmp(id, prefix, n) != 0)
                return false;
        /* Whole segments only: the match must end at the end of id or at a '/'. */
        return id[n] == '\0' || id[n] == '/';
}

bool warden_spiffeid_equal(const char *a, const char *b) {
        return a && b && streq(a, b);
}
