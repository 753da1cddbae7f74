/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "greedy_realloc.h"

/* Number of stat fields between the state (field 3) and the start time (field 22). */
#define STAT_FIELDS_BETWEEN 18
/* wl_proc_read_at() reads this much more at a time. */
#define WL_PROC_READ_CHUNK 4096

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Parses decimal digits at *p (< end) into *ret; moves *p past them. Returns false when there
 * are none or the value exceeds max. */
static bool parse_decimal(const char **p, const char *end, uint64_t max, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (s >= end || !is_digit(*s))
                return false;
        for (; s < end && is_digit(*s); s++) {
                unsigned d = (unsigned) (*s - '0');
                if (v > (max - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return true;
}

int wl_proc_parse_stat(const char *buf, size_t size, char *ret_state, uint64_t *ret_starttime) {
        const char *end = buf + size, *p;
        uint64_t v;
        char state;

        if (!buf || size == 0)
                return -EBADMSG;
        p = memrchr(buf, ')', size);
        if (!p || !memchr(buf, '(', (size_t) (p - buf)))
                return -EBADMSG;
        p++;
        /* " S" */
        if (end - p < 2 || p[0] != ' ' ||
            !((p[1] >= 'A' && p[1] <= 'Z') || (p[1] >= 'a' && p[1] <= 'z')))
                return -EBADMSG;
        state = p[1];
        p += 2;
        for (unsigned i = 0; i < STAT_FIELDS_BETWEEN; i++) {
                if (p >= end || *p != ' ')
                        return -EBADMSG;
                p++;
                if (p < end && *p == '-')
                        p++;
                if (!parse_decimal(&p, end, UINT64_MAX, &v))
                        return -EBADMSG;
        }
        if (p >= end || *p != ' ')
                return -EBADMSG;
        p++;
        if (!parse_decimal(&p, end, UINT64_MAX, &v))
                return -EBADMSG;
        if (p < end && *p != ' ' && *p != '\n')
                return -EBADMSG;

        *ret_state = state;
        *ret_starttime = v;
        return 0;
}

/* Finds the line starting with `key` and returns its remainder [*ret_p, *ret_end). */
static bool find_line(
        const char *buf, size_t size, const char *key, const char **ret_p, const char **ret_end) {
        const char *p = buf, *end = buf + size;
        size_t klen = strlen(key);

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *eol = nl ? nl : end;

                if ((size_t) (eol - p) >= klen && memcmp(p, key, klen) == 0) {
                        *ret_p = p + klen;
                        *ret_end = eol;
                        return true;
                }
                p = nl ? nl + 1 : end;
        }
        return false;
}

int wl_proc_parse_groups(const char *buf, size_t size, gid_t *gids, size_t max, size_t *ret_n) {
        const char *p, *end;
        size_t n = 0;

        if (!buf || !find_line(buf, size, "Groups:", &p, &end))
                return -EBADMSG;
        for (;;) {
                uint64_t v;

                while (p < end && (*p == ' ' || *p == '\t'))
                        p++;
                if (p >= end)
                        break;
                /* (gid_t) -1 is "no group" and never a real one. */
                if (!parse_decimal(&p, end, UINT32_MAX - 1, &v))
                        return -EBADMSG;
                if (p < end && *p != ' ' && *p != '\t')
                        return -EBADMSG;
                if (n >= max)
                        return -E2BIG;
                gids[n++] = (gid_t) v;
        }
        *ret_n = n;
        return 0;
}

int wl_proc_read_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;
        int r;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                /* Room to read on (up to max + 1 bytes: one more than max tells the file is
                 * too big), plus the NUL. n <= max here. */
                size_t want = max + 1 - n < WL_PROC_READ_CHUNK ? max + 1 : n + WL_PROC_READ_CHUNK;
                ssize_t k;

                r = GREEDY_REALLOC(buf, allocated, want + 1);
                if (r < 0)
                        return r;
                k = read(fd, buf + n, allocated - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return -EFBIG;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int wl_proc_parse_fdinfo_pid(const char *buf, size_t size, int64_t *ret_pid) {
        const char *p, *end;
        bool negative = false;
        uint64_t v;

        if (!buf || !find_line(buf, size, "Pid:", &p, &end))
                return -ENODATA;
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        if (p < end && *p == '-') {
                negative = true;
                p++;
        }
        if (!parse_decimal(&p, end, INT32_MAX, &v))
                return -EBADMSG;
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        if (p != end || (negative && v != 1))
                return -EBADMSG;
        *ret_pid = negative ? -1 : (int64_t) v;
        return 0;
}
