/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate encodings (DER, concatenated DER chains, PEM) and accessors. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

int warden_x509_to_der(X509 *cert, uint8_t **ret, size_t *ret_len) {
        uint8_t *buf, *p;
        int n;

        if (!cert || !ret || !ret_len)
                return -EINVAL;
        n = i2d_X509(cert, NULL);
        if (n <= 0)
                return ossl_to_errno(-EIO);
        buf = malloc((size_t) n);
        if (!buf)
                return -ENOMEM;
        p = buf;
        if (i2d_X509(cert, &p) != n) {
                free(buf);
                return ossl_to_errno(-EIO);
        }
        *ret = buf;
        *ret_len = (size_t) n;
        return 0;
}

/* Parses one certificate at *p (at most avail bytes) and advances *p past it. */
static int parse_one(const uint8_t **p, size_t avail, X509 **ret) {
        const uint8_t *start = *p;
        X509 *x;

        x = d2i_X509(NULL, p, (long) avail);
        if (!x) {
                *p = start;
                return ossl_to_errno(-EBADMSG);
        }
        if ((size_t) (*p - start) > WARDEN_X509_CERT_MAX_BYTES) {
                X509_free(x);
                return -EMSGSIZE;
        }
        *ret = x;
        return 0;
}

int warden_x509_from_der(const uint8_t *der, size_t len, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = NULL;
        const uint8_t *p = der;
        int r;

        if (!der || !ret)
                return -EINVAL;
        if (len > WARDEN_X509_CERT_MAX_BYTES)
                return -EMSGSIZE;
        r = parse_one(&p, len, &x);
        if (r < 0)
                return r;
        if (p != der + len)
                return log_debug_errno(-EBADMSG, "Trailing bytes after certificate");
        *ret = TAKE_PTR(x);
        return 0;
}

int warden_x509_chain_to_der(STACK_OF(X509) * chain, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t total = 0;
        uint8_t *p;

        if (!chain || !ret || !ret_len)
                return -EINVAL;
        for (int i = 0; i < sk_X509_num(chain); i++) {
                int n = i2d_X509(sk_X509_value(chain, i), NULL);
                if (n <= 0)
                        return ossl_to_errno(-EIO);
                total += (size_t) n;
        }
        if (total > 0) {
                buf = malloc(total);
                if (!buf)
                        return -ENOMEM;
        }
        p = buf;
        for (int i = 0; i < sk_X509_num(chain); i++)
                if (i2d_X509(sk_X509_value(chain, i), &p) <= 0)
                        return ossl_to_errno(-EIO);
        *ret = TAKE_PTR(buf);
        *ret_len = total;
        return 0;
}

int warden_x509_certs_from_der(
        const uint8_t *buf, size_t len, size_t max_certs, size_t max_bytes, STACK_OF(X509) * *ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = NULL;
        const uint8_t *p = buf, *end = buf + len;
        int r;

        if ((!buf && len > 0) || !ret)
                return -EINVAL;
        if (len > max_bytes)
                return log_debug_errno(-EMSGSIZE, "Certificate list of %zu bytes too large", len);
        certs = sk_X509_new_null();
        if (!certs)
                return -ENOMEM;
        while (p < end) {
                X509 *x = NULL;

                if ((size_t) sk_X509_num(certs) >= max_certs)
                        return log_debug_errno(-EMSGSIZE, "More than %zu certificates", max_certs);
                r = parse_one(&p, (size_t) (end - p), &x);
                if (r < 0)
                        return log_debug_errno(r, "Bad certificate #%d: %m", sk_X509_num(certs));
                if (sk_X509_push(certs, x) <= 0) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(certs);
        return 0;
}

int warden_x509_chain_from_der(const uint8_t *buf, size_t len, STACK_OF(X509) * *ret) {
        if (!ret)
                return -EINVAL;
        if (len == 0)
                return log_debug_errno(-EBADMSG, "Empty certificate chain");
        return warden_x509_certs_from_der(buf, len, WARDEN_X509_CHAIN_MAX_CERTS,
                                          WARDEN_X509_CHAIN_MAX_BYTES, ret);
}

int warden_x509_chain_to_pem(STACK_OF(X509) * certs, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        char *data = NULL, *s;
        long n;

        if (!certs || !ret)
                return -EINVAL;
        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return ossl_to_errno(-ENOMEM);
        for (int i = 0; i < sk_X509_num(certs); i++)
                if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
                        return ossl_to_errno(-EIO);
        n = BIO_get_mem_data(bio, &data);
        if (n < 0)
                return -EIO;
        s = malloc((size_t) n + 1);
        if (!s)
                return -ENOMEM;
        if (n > 0)
                memcpy(s, data, (size_t) n);
        s[n] = '\0';
        *ret = s;
        return 0;
}

static void pem_freep(unsigned char **p) {
        OPENSSL_free(*p);
}

static void openssl_strfreep(char **p) {
        OPENSSL_free(*p);
}

/* Reads the next PEM block; 1 and a cert for "CERTIFICATE", 1 and NULL for another
 * block type, 0 at the end. */
static int pem_next(BIO *bio, X509 **ret) {
        _cleanup_(openssl_strfreep) char *name = NULL, *header = NULL;
        _cleanup_(pem_freep) unsigned char *data = NULL;
        long len = 0;
        int r;

        if (PEM_read_bio(bio, &name, &header, &data, &len) != 1) {
                unsigned long e = ERR_peek_last_error();
                if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                        ERR_clear_error();
                        return 0;
                }
                return ossl_to_errno(-EBADMSG);
        }
        *ret = NULL;
        if (!streq(name, "CERTIFICATE"))
                return 1;
        r = warden_x509_from_der(data, len > 0 ? (size_t) len : 0, ret);
        return r < 0 ? r : 1;
}

int warden_x509_chain_from_pem(const char *pem, size_t len, STACK_OF(X509) * *ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!pem || !ret)
                return -EINVAL;
        if (len > WARDEN_X509_PEM_MAX_BYTES)
                return -EMSGSIZE;
        bio = BIO_new_mem_buf(pem, (int) len);
        certs = sk_X509_new_null();
        if (!bio || !certs)
                return ossl_to_errno(-ENOMEM);
        for (;;) {
                X509 *x = NULL;
                int r = pem_next(bio, &x);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (!x)
                        continue;
                if (sk_X509_push(certs, x) <= 0) {
                        X509_free(x);
                        return -ENOMEM;
                }
                if (sk_X509_num(certs) > WARDEN_X509_PEM_MAX_CERTS)
                        return -EMSGSIZE;
        }
        if (sk_X509_num(certs) == 0)
                return log_debug_errno(-EBADMSG, "No certificate in PEM data");
        *ret = TAKE_PTR(certs);
        return 0;
}

int warden_x509_serial_hex(const X509 *cert, char **ret) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        char *hex, *s;

        if (!cert || !ret)
                return -EINVAL;
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        if (!bn)
                return ossl_to_errno(-EBADMSG);
        hex = BN_bn2hex(bn);
        if (!hex)
                return ossl_to_errno(-ENOMEM);
        /* BN_bn2hex pads to whole bytes; drop a leading zero nibble and lowercase. */
        s = strdup(hex + ((hex[0] == '0' && hex[1]) ? 1 : 0));
        OPENSSL_free(hex);
        if (!s)
                return -ENOMEM;
        for (char *c = s; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        *ret = s;
        return 0;
}

int warden_x509_fingerprint_sha1_hex(X509 *cert, char **ret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (!cert || !ret)
                return -EINVAL;
        if (X509_digest(cert, EVP_sha1(), md, &n) != 1)
                return ossl_to_errno(-EIO);
        return x509_hex_lower(md, n, ret);
}

time_t warden_x509_not_after(const X509 *cert) {
        time_t t;

        if (!cert || x509_time_to_time_t(X509_get0_notAfter(cert), &t) < 0)
                return (time_t) -1;
        return t;
}

time_t warden_x509_not_before(const X509 *cert) {
        time_t t;

        if (!cert || x509_time_to_time_t(X509_get0_notBefore(cert), &t) < 0)
                return (time_t) -1;
        return t;
}
