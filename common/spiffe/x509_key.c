/* SPDX-License-Identifier: Apache-2.0 */
/* Private and public keys: generation, PKCS#8 DER/PEM, SPKI, sign/verify. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "x509_internal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS8_PRIV_KEY_INFO *, PKCS8_PRIV_KEY_INFO_free)

static const char *const key_type_names[_WARDEN_KEY_TYPE_MAX] = {
        [WARDEN_KEY_EC_P256] = "ec-p256",
        [WARDEN_KEY_EC_P384] = "ec-p384",
        [WARDEN_KEY_RSA_2048] = "rsa-2048",
};

int warden_key_type_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _WARDEN_KEY_TYPE_MAX; i++)
                if (streq(s, key_type_names[i]))
                        return i;
        return -EINVAL;
}

const char *warden_key_type_to_string(WardenKeyType type) {
        if ((int) type < 0 || type >= _WARDEN_KEY_TYPE_MAX)
                return NULL;
        return key_type_names[type];
}

/* NID of an EC key's curve, or NID_undef. */
static int key_curve_nid(const EVP_PKEY *key) {
        char name[64];
        size_t n = 0;
        int nid;

        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
                return NID_undef;
        if (EVP_PKEY_get_group_name(key, name, sizeof(name), &n) != 1) {
                (void) ossl_to_errno(-EIO);
                return NID_undef;
        }
        nid = OBJ_txt2nid(name);
        if (nid == NID_undef)
                nid = EC_curve_nist2nid(name);
        return nid;
}

int warden_key_get_type(const EVP_PKEY *key) {
        if (!key)
                return -EINVAL;
        switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_EC:
                switch (key_curve_nid(key)) {
                case NID_X9_62_prime256v1:
                        return WARDEN_KEY_EC_P256;
                case NID_secp384r1:
                        return WARDEN_KEY_EC_P384;
                default:
                        return -EOPNOTSUPP;
                }
        case EVP_PKEY_RSA:
                return EVP_PKEY_get_bits(key) == 2048 ? WARDEN_KEY_RSA_2048 : -EOPNOTSUPP;
        default:
                return -EOPNOTSUPP;
        }
}

/* An EC key that came with explicit curve parameters instead of a curve's name. OpenSSL
 * 3 refuses to verify a certificate for one (X509_V_ERR_EC_KEY_EXPLICIT_PARAMS) and Go
 * cannot parse it, so it must never be signed into a certificate. */
static bool key_has_explicit_params(const EVP_PKEY *key) {
        int v = 0;

        return EVP_PKEY_get_int_param(key, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS, &v) ==
                       1 &&
               v != 0;
}

int x509_key_check_supported(const EVP_PKEY *key) {
        int bits;

        if (!key)
                return -EINVAL;
        switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_EC:
                if (key_has_explicit_params(key))
                        return log_debug_errno(-EOPNOTSUPP, "EC key with explicit parameters");
                switch (key_curve_nid(key)) {
                case NID_X9_62_prime256v1:
                case NID_secp384r1:
                case NID_secp521r1:
                        return 0;
                default:
                        return log_debug_errno(-EOPNOTSUPP, "Unsupported EC curve");
                }
        case EVP_PKEY_RSA:
                bits = EVP_PKEY_get_bits(key);
                if (bits < 2048 || bits > 8192)
                        return log_debug_errno(-EKEYREJECTED, "RSA key of %d bits refused", bits);
                return 0;
        default:
                return log_debug_errno(-EOPNOTSUPP, "Unsupported key type %d",
                                       EVP_PKEY_get_base_id(key));
        }
}

int x509_set_pubkey_spki(X509 *x, EVP_PKEY *key) {
        unsigned char *point;
        size_t len = 0;
        int nid;

        /* OpenSSL 3.0's X509_set_pubkey() runs an OSSL_ENCODER (~190 us): for an EC key
         * on a named curve the SubjectPublicKeyInfo is simply the curve's OID and the
         * encoded point, which the key hands out cheaply. */
        nid = key_curve_nid(key);
        if (nid == NID_undef || key_has_explicit_params(key))
                return X509_set_pubkey(x, key) == 1 ? 0 : ossl_to_errno(-EIO);
        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &len) != 1 ||
            len == 0 || len > INT_MAX)
                return ossl_to_errno(-EINVAL);
        point = OPENSSL_malloc(len);
        if (!point)
                return -ENOMEM;
        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, len, &len) != 1 ||
            X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                   V_ASN1_OBJECT, OBJ_nid2obj(nid), point, (int) len) != 1) {
                OPENSSL_free(point);
                return ossl_to_errno(-EINVAL);
        }
        return 0;
}

const EVP_MD *x509_digest_for_key(const EVP_PKEY *key) {
        switch (key_curve_nid(key)) {
        case NID_secp384r1:
                return EVP_sha384();
        case NID_secp521r1:
                return EVP_sha512();
        default:
                return EVP_sha256();
        }
}

int x509_hex_lower(const uint8_t *p, size_t n, char **ret) {
        static const char digits[] = "0123456789abcdef";
        char *s;

        s = malloc(n * 2 + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                s[2 * i] = digits[p[i] >> 4];
                s[2 * i + 1] = digits[p[i] & 0xf];
        }
        s[2 * n] = '\0';
        *ret = s;
        return 0;
}

int warden_key_generate(WardenKeyType type, EVP_PKEY **ret) {
        EVP_PKEY *key = NULL;

        if (!ret)
                return -EINVAL;
        switch (type) {
        case WARDEN_KEY_EC_P256:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case WARDEN_KEY_EC_P384:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
                break;
        case WARDEN_KEY_RSA_2048:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
                break;
        default:
                return -EINVAL;
        }
        if (!key)
                return ossl_to_errno(-EIO);
        *ret = key;
        return 0;
}

void warden_key_der_free(uint8_t *der, size_t len) {
        explicit_erase(der, len);
        free(der);
}

int warden_key_to_pkcs8_der(const EVP_PKEY *key, uint8_t **ret, size_t *ret_len) {
        _cleanup_(PKCS8_PRIV_KEY_INFO_freep) PKCS8_PRIV_KEY_INFO *p8 = NULL;
        uint8_t *buf, *p;
        int n;

        if (!key || !ret || !ret_len)
                return -EINVAL;
        p8 = EVP_PKEY2PKCS8(key);
        if (!p8)
                return ossl_to_errno(-EINVAL);
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
        if (n <= 0)
                return ossl_to_errno(-EIO);
        buf = malloc((size_t) n);
        if (!buf)
                return -ENOMEM;
        p = buf;
        if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != n) {
                warden_key_der_free(buf, (size_t) n);
                return ossl_to_errno(-EIO);
        }
        *ret = buf;
        *ret_len = (size_t) n;
        return 0;
}

int warden_key_from_pkcs8_der(const uint8_t *der, size_t len, EVP_PKEY **ret) {
        _cleanup_(PKCS8_PRIV_KEY_INFO_freep) PKCS8_PRIV_KEY_INFO *p8 = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const uint8_t *p = der;
        int r;

        if (!der || !ret)
                return -EINVAL;
        if (len == 0 || len > WARDEN_KEY_MAX_BYTES)
                return len == 0 ? -EBADMSG : -EMSGSIZE;
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long) len);
        if (!p8)
                return ossl_to_errno(-EBADMSG);
        if (p != der + len)
                return log_debug_errno(-EBADMSG, "Trailing bytes after PKCS#8 key");
        key = EVP_PKCS82PKEY(p8);
        if (!key)
                return ossl_to_errno(-EBADMSG);
        r = x509_key_check_supported(key);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(key);
        return 0;
}

/* Copies a memory BIO's contents into a NUL-terminated malloc'd string. */
static int bio_to_string(BIO *bio, char **ret) {
        char *data = NULL, *s;
        long n;

        n = BIO_get_mem_data(bio, &data);
        if (n < 0 || (n > 0 && !data))
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

int warden_key_to_pem(const EVP_PKEY *key, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!key || !ret)
                return -EINVAL;
        /* secmem BIOs wipe their buffer when freed. */
        bio = BIO_new(BIO_s_secmem());
        if (!bio)
                return ossl_to_errno(-ENOMEM);
        if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
                return ossl_to_errno(-EIO);
        return bio_to_string(bio, ret);
}

/* Frees PEM_read_bio() outputs; data may hold key bytes. */
typedef struct PemBlock {
        char *name;
        char *header;
        unsigned char *data;
        long len;
} PemBlock;

static void pem_block_done(PemBlock *b) {
        OPENSSL_free(b->name);
        OPENSSL_free(b->header);
        if (b->data)
                OPENSSL_clear_free(b->data, b->len > 0 ? (size_t) b->len : 0);
        *b = (PemBlock){};
}

int warden_key_from_pem(const char *pem, size_t len, EVP_PKEY **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(pem_block_done) PemBlock b = {}, extra = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        if (!pem || !ret)
                return -EINVAL;
        if (len > WARDEN_KEY_MAX_BYTES)
                return -EMSGSIZE;
        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return ossl_to_errno(-ENOMEM);
        if (PEM_read_bio(bio, &b.name, &b.header, &b.data, &b.len) != 1)
                return ossl_to_errno(-EBADMSG);
        if (!streq(b.name, "PRIVATE KEY") || b.header[0] != '\0')
                return log_debug_errno(-EBADMSG, "PEM block '%s' is not a PKCS#8 key", b.name);
        if (PEM_read_bio(bio, &extra.name, &extra.header, &extra.data, &extra.len) == 1)
                return log_debug_errno(-EBADMSG, "More than one PEM block in key");
        ERR_clear_error();
        r = warden_key_from_pkcs8_der(b.data, (size_t) b.len, &key);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(key);
        return 0;
}

int warden_key_public_der(const EVP_PKEY *key, uint8_t **ret, size_t *ret_len) {
        uint8_t *buf, *p;
        int n;

        if (!key || !ret || !ret_len)
                return -EINVAL;
        n = i2d_PUBKEY(key, NULL);
        if (n <= 0)
                return ossl_to_errno(-EINVAL);
        buf = malloc((size_t) n);
        if (!buf)
                return -ENOMEM;
        p = buf;
        if (i2d_PUBKEY(key, &p) != n) {
                free(buf);
                return ossl_to_errno(-EIO);
        }
        *ret = buf;
        *ret_len = (size_t) n;
        return 0;
}

int warden_key_public_from_der(const uint8_t *der, size_t len, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const uint8_t *p = der;
        int r;

        if (!der || !ret)
                return -EINVAL;
        if (len == 0 || len > WARDEN_KEY_MAX_BYTES)
                return len == 0 ? -EBADMSG : -EMSGSIZE;
        key = d2i_PUBKEY(NULL, &p, (long) len);
        if (!key)
                return ossl_to_errno(-EBADMSG);
        if (p != der + len)
                return log_debug_errno(-EBADMSG, "Trailing bytes after public key");
        r = x509_key_check_supported(key);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(key);
        return 0;
}

bool warden_key_public_equal(const EVP_PKEY *a, const EVP_PKEY *b) {
        if (!a || !b)
                return false;
        if (EVP_PKEY_eq(a, b) == 1)
                return true;
        ERR_clear_error();
        return false;
}

/* Keys usable for warden_sign/warden_verify: EC of a supported curve, RSA >= 2048. */
static int sign_key_check(const EVP_PKEY *key) {
        int r = x509_key_check_supported(key);

        if (r == -EKEYREJECTED)
                return r;
        return r < 0 ? -EOPNOTSUPP : 0;
}

int warden_sign(
        EVP_PKEY *key, const void *data, size_t len, uint8_t **ret_sig, size_t *ret_siglen) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        size_t n = 0;
        int r;

        if (!key || (!data && len > 0) || !ret_sig || !ret_siglen)
                return -EINVAL;
        r = sign_key_check(key);
        if (r < 0)
                return r;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1)
                return ossl_to_errno(-EINVAL);
        if (EVP_DigestSign(ctx, NULL, &n, data, len) != 1 || n == 0)
                return ossl_to_errno(-EIO);
        sig = malloc(n);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(ctx, sig, &n, data, len) != 1)
                return ossl_to_errno(-EIO);
        *ret_sig = TAKE_PTR(sig);
        *ret_siglen = n;
        return 0;
}

int warden_verify(
        EVP_PKEY *pubkey, const void *data, size_t len, const uint8_t *sig, size_t siglen) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        int r;

        if (!pubkey || (!data && len > 0) || (!sig && siglen > 0))
                return -EINVAL;
        r = sign_key_check(pubkey);
        if (r < 0)
                return r;
        if (siglen == 0)
                return -EKEYREJECTED;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pubkey) != 1)
                return ossl_to_errno(-EINVAL);
        if (EVP_DigestVerify(ctx, sig, siglen, data, len) != 1) {
                (void) ossl_to_errno(-EKEYREJECTED);
                return -EKEYREJECTED;
        }
        return 0;
}
