/* SPDX-License-Identifier: Apache-2.0 */
/* Small value parsers: numbers, ports, booleans, durations, users and groups, times. */
#define _GNU_SOURCE

#include "parse.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#define NSS_BUFFER_MAX (1024 * 1024)

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Reads a run of digits at *p (at least one), advancing *p. */
static int read_digits(const char **p, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (!is_digit(*s))
                return -EINVAL;
        for (; is_digit(*s); s++) {
                if (__builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t) (*s - '0'), &v))
                        return -ERANGE;
        }
        *p = s;
        *ret = v;
        return 0;
}

int parse_uint64(const char *s, uint64_t *ret) {
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = read_digits(&s, &v);
        if (r < 0)
                return r;
        if (*s != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_uint32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int parse_int64(const char *s, int64_t *ret) {
        bool negative = false;
        uint64_t v;
        int r;

        if (s && s[0] == '-') {
                negative = true;
                s++;
        }
        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (negative) {
                if (v > (uint64_t) INT64_MAX + 1)
                        return -ERANGE;
                *ret = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;
        } else {
                if (v > INT64_MAX)
                        return -ERANGE;
                *ret = (int64_t) v;
        }
        return 0;
}

int parse_port(const char *s, uint16_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT16_MAX)
                return -ERANGE;
        *ret = (uint16_t) v;
        return 0;
}

int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int unit_seconds(char unit, int64_t *ret) {
        switch (unit) {
        case 'd':
                *ret = 86400;
                return 0;
        case 'h':
                *ret = 3600;
                return 0;
        case 'm':
                *ret = 60;
                return 0;
        case 's':
                *ret = 1;
                return 0;
        default:
                return -EINVAL;
        }
}

int parse_duration(const char *s, int64_t *ret_seconds) {
        int64_t total = 0, last_unit = INT64_MAX;
        uint64_t n;
        int r;

        if (!s || s[0] == '\0')
                return -EINVAL;
        r = parse_uint64(s, &n);
        if (r != -EINVAL) { /* all digits: seconds */
                if (r < 0)
                        return r;
                if (n > INT64_MAX)
                        return -ERANGE;
                *ret_seconds = (int64_t) n;
                return 0;
        }

        while (*s != '\0') {
                int64_t unit, part;

                r = read_digits(&s, &n);
                if (r < 0)
                        return r;
                if (unit_seconds(*s, &unit) < 0)
                        return -EINVAL; /* unknown or missing unit */
                if (unit >= last_unit)
                        return -EINVAL; /* repeated or out of order */
                last_unit = unit;
                s++;
                if (n > INT64_MAX || __builtin_mul_overflow((int64_t) n, unit, &part) ||
                    __builtin_add_overflow(total, part, &total))
                        return -ERANGE;
        }
        *ret_seconds = total;
        return 0;
}

char *format_duration(int64_t seconds, char *buf, size_t size) {
        static const struct {
                char unit;
                uint64_t secs;
        } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
        uint64_t v;
        size_t pos = 0;

        if (!buf || size == 0)
                return buf;
        buf[0] = '\0';
        if (seconds < 0) {
                pos += (size_t) snprintf(buf, size, "-");
                v = (uint64_t) (-(seconds + 1)) + 1;
        } else
                v = (uint64_t) seconds;
        if (v == 0) {
                snprintf(buf + pos, size - pos, "0s");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(units) && pos < size; i++) {
                uint64_t q = v / units[i].secs;
                if (q == 0)
                        continue;
                v -= q * units[i].secs;
                pos += (size_t) snprintf(buf + pos, size - pos, "%llu%c", (unsigned long long) q,
                                         units[i].unit);
        }
        return buf;
}

/* A uid/gid number: 0..4294967294. 1 = parsed, 0 = not all digits, < 0 = error. */
static int parse_id_number(const char *s, uint32_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        if (v >= UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 1;
}

/* getpwnam_r(3): these errors also mean "no such name" on some NSS setups. */
static bool nss_not_found(int r) {
        return r == ENOENT || r == ESRCH || r == EBADF || r == EPERM;
}

static size_t nss_buffer_size(int name) {
        long n = sysconf(name);
        return n > 0 && n < NSS_BUFFER_MAX ? (size_t) n : 4096;
}

int parse_uid(const char *s, uid_t *ret) {
        size_t size = nss_buffer_size(_SC_GETPW_R_SIZE_MAX);
        uint32_t id;
        int r;

        if (!s || s[0] == '\0')
                return -EINVAL;
        r = parse_id_number(s, &id);
        if (r < 0)
                return r;
        if (r > 0) {
                *ret = (uid_t) id;
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd pw, *result = NULL;

                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(s, &pw, buf, size, &result);
                if (r == ERANGE && size < NSS_BUFFER_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0 && !nss_not_found(r))
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret = pw.pw_uid;
                return 0;
        }
}

int parse_gid(const char *s, gid_t *ret) {
        size_t size = nss_buffer_size(_SC_GETGR_R_SIZE_MAX);
        uint32_t id;
        int r;

        if (!s || s[0] == '\0')
                return -EINVAL;
        r = parse_id_number(s, &id);
        if (r < 0)
                return r;
        if (r > 0) {
                *ret = (gid_t) id;
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                struct group gr, *result = NULL;

                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(s, &gr, buf, size, &result);
                if (r == ERANGE && size < NSS_BUFFER_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0 && !nss_not_found(r))
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret = gr.gr_gid;
                return 0;
        }
}

char *format_timestamp(int64_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%lld", (long long) t);
        return buf;
}

/* Exactly n decimal digits at *s (advanced past them). */
static int digits(const char **s, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                if ((*s)[i] < '0' || (*s)[i] > '9')
                        return -EINVAL;
                v = v * 10 + ((*s)[i] - '0');
        }
        *s += n;
        *ret = v;
        return 0;
}

static int expect_char(const char **s, const char *allowed) {
        if (!**s || !strchr(allowed, **s))
                return -EINVAL;
        (*s)++;
        return 0;
}

/* "Z", "z" or "+HH:MM" / "-HH:MM": the offset east of UTC in seconds. */
static int parse_utc_offset(const char *s, int64_t *ret) {
        int h, m, sign;

        if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
                *ret = 0;
                return 0;
        }
        if (s[0] != '+' && s[0] != '-')
                return -EINVAL;
        sign = s[0] == '-' ? -1 : 1;
        s++;
        if (digits(&s, 2, &h) < 0 || expect_char(&s, ":") < 0 || digits(&s, 2, &m) < 0 || *s ||
            h > 23 || m > 59)
                return -EINVAL;
        *ret = sign * (h * 3600 + m * 60);
        return 0;
}

static int parse_rfc3339(const char *s, int64_t *ret) {
        struct tm tm = {}, check;
        int y, mo, d, h, mi, sec;
        int64_t offset;
        time_t t;

        if (digits(&s, 4, &y) < 0 || expect_char(&s, "-") < 0 || digits(&s, 2, &mo) < 0 ||
            expect_char(&s, "-") < 0 || digits(&s, 2, &d) < 0 || expect_char(&s, "Tt ") < 0 ||
            digits(&s, 2, &h) < 0 || expect_char(&s, ":") < 0 || digits(&s, 2, &mi) < 0 ||
            expect_char(&s, ":") < 0 || digits(&s, 2, &sec) < 0)
                return -EINVAL;
        if (*s == '.') { /* fractions of a second: dropped */
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                while (*s >= '0' && *s <= '9')
                        s++;
        }
        if (parse_utc_offset(s, &offset) < 0 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 ||
            sec > 60)
                return -EINVAL;
        tm = (struct tm){.tm_year = y - 1900,
                         .tm_mon = mo - 1,
                         .tm_mday = d,
                         .tm_hour = h,
                         .tm_min = mi,
                         .tm_sec = sec == 60 ? 59 : sec};
        t = timegm(&tm);
        /* timegm() normalizes (Feb 30 -> Mar 2): refuse dates that do not exist. */
        if (!gmtime_r(&t, &check) || check.tm_mday != d || check.tm_mon != mo - 1)
                return -EINVAL;
        *ret = (int64_t) t - offset;
        return 0;
}

int parse_timestamp(const char *s, int64_t *ret) {
        int64_t v;
        int r;

        if (!s || !*s)
                return -EINVAL;
        if (strchr(s, '-') || strchr(s, ':')) {
                r = parse_rfc3339(s, &v);
                if (r < 0)
                        return r;
                if (v < 0)
                        return -ERANGE;
        } else {
                uint64_t u;
                r = parse_uint64(s, &u);
                if (r < 0)
                        return r;
                if (u > (uint64_t) TIMESTAMP_MAX)
                        return -ERANGE;
                v = (int64_t) u;
        }
        if (v > TIMESTAMP_MAX)
                return -ERANGE;
        *ret = v;
        return 0;
}
