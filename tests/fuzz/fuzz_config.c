/* SPDX-License-Identifier: Apache-2.0 */
/* Config file reader (comment stripping + libconfuse + type checks) and the duration
 * parser: never crash, never leak; errors always come with a message; an accepted
 * duration formats back to a string that parses to the same number. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "options.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const Option table[] = {
        {"trustDomain", OPT_STRING, NULL, NULL}, {"serverPort", OPT_PORT, "8081", NULL},
        {"workers", OPT_INT, "4", NULL},         {"ttl", OPT_DURATION, "1h", NULL},
        {"admin", OPT_BOOL, "false", NULL},      {"selector", OPT_STRV, NULL, NULL},
};

static void check_duration(const uint8_t *data, size_t size) {
        char s[64], buf[DURATION_STRING_MAX];
        int64_t v, back;

        if (size >= sizeof(s))
                return;
        memcpy(s, data, size);
        s[size] = '\0';
        if (parse_duration(s, &v) < 0)
                return;
        if (v < 0 || parse_duration(format_duration(v, buf, sizeof(buf)), &back) < 0 || back != v)
                abort();
}

static void check_config(const uint8_t *data, size_t size) {
        char path[64], *argv[4] = {(char *) "fuzz", (char *) "-config", path, NULL};
        Options *o = NULL;
        char *msg = NULL;
        int fd, r;

        fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        if (fd < 0)
                return;
        if (write(fd, data, size) != (ssize_t) size) {
                close(fd);
                return;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        r = options_parse(table, sizeof(table) / sizeof(table[0]), 3, argv, &o, &msg);
        if (r < 0 && r != -ENOMEM && !msg)
                abort();
        if (r >= 0) {
                size_t n;
                char *const *l = options_get_strv(o, "selector", &n);
                if (!l || l[n] != NULL)
                        abort();
        }
        options_free(o);
        free(msg);
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 65536)
                return 0;
        check_duration(data, size);
        check_config(data, size);
        return 0;
}
