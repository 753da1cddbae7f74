/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Scope-bound ownership helpers in the systemd style.
 *
 *   _cleanup_free_ char *s = strdup("x");      freed at scope exit
 *   _cleanup_close_ int fd = -EBADF;            closed at scope exit
 *   _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
 *   *ret = TAKE_PTR(s);                         hand ownership out
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_erase_ _cleanup_(erase_and_freep)
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Returns the pointer and sets the variable to NULL, so a cleanup won't free it. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                typeof(p) _took = (p);                                                             \
                (p) = NULL;                                                                        \
                _took;                                                                             \
        })

#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd = (fd);                                                                    \
                (fd) = -EBADF;                                                                     \
                _fd;                                                                               \
        })

/* Defines `name(T **p)` that calls `func(*p)` when *p is non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p) {                                                      \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

/* Zero memory in a way the compiler will not elide. */
static inline void *explicit_erase(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
        return p;
}

/* For NUL-terminated secrets (tokens, passphrases): wipe then free. */
static inline void erase_and_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

static inline void erase_and_freep(char **s) {
        erase_and_free(*s);
}

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
