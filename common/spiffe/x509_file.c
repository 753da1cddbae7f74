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

#include <openssl/rand.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

#define TEMP_ATTEMPTS 16

/* Directory part of path ("." when there is none), malloc'd. */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* Creates "<dir>/.<base>.tmp-<random>" exclusively; returns the fd, *ret_tmp the name. */
static int open_temp(const char *path, mode_t mode, char **ret_tmp) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        int dirlen = slash ? (int) (slash - path + 1) : 0;

        for (int i = 0; i < TEMP_ATTEMPTS; i++) {
                _cleanup_free_ char *tmp = NULL;
                unsigned char rnd[8];
                char hex[17];
                int fd;

                if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                        return ossl_to_errno(-EIO);
                for (size_t k = 0; k < sizeof(rnd); k++)
                        snprintf(hex + 2 * k, 3, "%02x", rnd[k]);
                if (asprintf(&tmp, "%.*s.%s.tmp-%s", dirlen, path, base, hex) < 0)
                        return -ENOMEM;
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
                if (fd < 0 && errno == EEXIST)
                        continue;
                if (fd < 0)
                        return log_debug_errno(-errno, "Failed to create %s: %m", tmp);
                *ret_tmp = TAKE_PTR(tmp);
                return fd;
        }
        return -EEXIST;
}

static int write_all(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int fsync_dir(const char *path) {
        _cleanup_free_ char *dir = dir_of(path);
        _cleanup_close_ int dfd = -EBADF;

        if (!dir)
                return -ENOMEM;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return log_debug_errno(-errno, "Failed to open directory %s: %m", dir);
        if (fsync(dfd) < 0)
                return log_debug_errno(-errno, "Failed to fsync directory %s: %m", dir);
        return 0;
}

int x509_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!path || !*path || (!data && len > 0))
                return -EINVAL;
        fd = open_temp(path, mode & 07777, &tmp);
        if (fd < 0)
                return fd;
        /* open() applied the umask; make the mode exact. */
        if (fchmod(fd, mode & 07777) < 0) {
                r = -errno;
                goto fail;
        }
        r = write_all(fd, data, len);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0 || close(TAKE_FD(fd)) < 0) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        return fsync_dir(path);
fail:
        (void) unlink(tmp);
        return log_debug_errno(r, "Failed to write %s: %m", path);
}

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
        return x509_write_file_atomic(path, pem, strlen(pem), 0600);
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
        return x509_write_file_atomic(path, pem, strlen(pem), mode);
}
