/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "testlib.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *test_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *p;

        if (!base || !*base)
                base = "/tmp";
        if (asprintf(&p, "%s/wtest.XXXXXX", base) < 0)
                return NULL;
        if (!mkdtemp(p)) {
                free(p);
                return NULL;
        }
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

void test_rmdir_free(char *path) {
        if (!path)
                return;
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
}

char *test_read_file(const char *path, size_t *ret_size) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return NULL;
        for (;;) {
                if (cap - n < 4096) {
                        char *nb = realloc(buf, cap + 65536);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                        cap += 65536;
                }
                size_t k = fread(buf + n, 1, cap - n - 1, f);
                n += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        return buf;
}
