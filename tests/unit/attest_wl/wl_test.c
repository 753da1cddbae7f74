/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_test.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "testlib.h"

void wl_test_write_file(const char *path, const void *data, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        assert_int_equal(close(fd), 0);
}

void wl_test_wait_racy_window(void) {
        struct timespec ts = {0, 150 * 1000 * 1000};

        nanosleep(&ts, NULL);
}

void wl_test_sha256_path(const char *path, char hex[65]) {
        unsigned char md[32];
        unsigned len = 0;
        size_t n = 0;
        char *data = test_read_file(path, &n);

        assert_non_null(data);
        assert_int_equal(EVP_Digest(data, n, md, &len, EVP_sha256(), NULL), 1);
        assert_int_equal(len, 32);
        for (unsigned i = 0; i < len; i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        free(data);
}

static bool has_v(const SelectorSet *set, const char *type, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
static bool has_v(const SelectorSet *set, const char *type, const char *fmt, va_list ap) {
        char *value = NULL;
        bool found;

        assert_true(vasprintf(&value, fmt, ap) >= 0);
        Selector s = {(char *) type, value};
        found = selector_set_contains(set, &s);
        free(value);
        return found;
}

bool wl_test_has(const SelectorSet *set, const char *type, const char *fmt, ...) {
        va_list ap;
        bool r;

        va_start(ap, fmt);
        r = has_v(set, type, fmt, ap);
        va_end(ap);
        return r;
}

void wl_test_assert_has(const SelectorSet *set, const char *type, const char *fmt, ...) {
        char *value = NULL;
        va_list ap;
        bool r;

        va_start(ap, fmt);
        r = has_v(set, type, fmt, ap);
        va_end(ap);
        if (r)
                return;
        va_start(ap, fmt);
        assert_true(vasprintf(&value, fmt, ap) >= 0);
        va_end(ap);
        print_message("missing selector %s:%s; the set has %zu:\n", type, value, set->n);
        FOREACH_SELECTOR(s, set)
                print_message("  %s:%s\n", s->type, s->value);
        free(value);
        fail();
}

int wl_test_count_key(const SelectorSet *set, const char *type, const char *prefix) {
        int n = 0;

        FOREACH_SELECTOR(s, set)
                if (strcmp(s->type, type) == 0 && strncmp(s->value, prefix, strlen(prefix)) == 0)
                        n++;
        return n;
}
