/* SPDX-License-Identifier: Apache-2.0 */
/* Key and certificate files: atomic writes, careful reads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "file.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

/* Reads until EOF, at most max bytes (-EMSGSIZE when more). */
static int read_capped(int fd, size_t max, char **ret, size_t *ret_len) {
        size_t cap = max + 1, n = 0;
        char *buf;

        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, cap - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        explicit_erase(buf, n);
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max) {
                        explicit_erase(buf, n);
                        free(buf);
                        return -EMSGSIZE;
                }
        }
        buf[n] = '\0';
        *ret = buf;
        *ret_len = n;
        return 0;
}

int x509_read_file(const char *path, size_t max, bool private_mode, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (!path || !ret || !ret_len)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return log_debug_errno(-errno, "Failed to open %s: %m", path);
        if (fstat(fd, &st) < 0)
                return log_debug_errno(-errno, "Failed to stat %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return log_debug_errno(-EBADMSG, "%s is not a regular file", path);
        if (private_mode && (st.st_mode & 077) != 0)
                return log_debug_errno(-EPERM,
                                       "Key file %s has mode %04o, accessible by group or "
                                       "others; refusing it (chmod 600)",
                                       path, (unsigned) (st.st_mode & 07777));
        if ((uint64_t) st.st_size > max)
                return log_debug_errno(-EMSGSIZE, "%s is larger than %zu bytes", path, max);
        return read_capped(fd, max, ret, ret_len);
}

int warden_key_write_file(const char *path, const EVP_PKEY *key) {
        _cleanup_erase_ char *pem = NULL;
        int r;

        if (!path || !key)
                return -EINVAL;
        r = warden_key_to_pem(key, &pem);
        if (r < 0)
                return r;
        return file_write_atomic(path, pem, strlen(pem), 0600);
}

int warden_key_read_file(const char *path, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        char *data = NULL;
        size_t len = 0;
        int r;

        if (!path || !ret)
                return -EINVAL;
        r = x509_read_file(path, WARDEN_KEY_MAX_BYTES, true, &data, &len);
        if (r < 0)
                return r;
        if (len >= 10 && memcmp(data, "-----BEGIN", 10) == 0)
                r = warden_key_from_pem(data, len, &key);
        else
                r = warden_key_from_pkcs8_der((const uint8_t *) data, len, &key);
        explicit_erase(data, len);
        free(data);
        if (r < 0)
                return log_debug_errno(r, "Failed to parse key file %s: %m", path);
        *ret = TAKE_PTR(key);
        return 0;
}

int warden_x509_read_pem_file(const char *path, STACK_OF(X509) * *ret) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r;

        if (!path || !ret)
                return -EINVAL;
        r = x509_read_file(path, WARDEN_X509_PEM_MAX_BYTES, false, &data, &len);
        if (r < 0)
                return r;
        r = warden_x509_chain_from_pem(data, len, ret);
        if (r < 0)
                return log_debug_errno(r, "Failed to parse certificates in %s: %m", path);
        return r;
}

int warden_x509_write_pem_file(const char *path, STACK_OF(X509) * certs, mode_t mode) {
        _cleanup_free_ char *pem = NULL;
        int r;

        if (!path || !certs)
                return -EINVAL;
        r = warden_x509_chain_to_pem(certs, &pem);
        if (r < 0)
                return r;
        return file_write_atomic(path, pem, strlen(pem), mode);
}
