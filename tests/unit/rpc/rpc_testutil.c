/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "rpc_testutil.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cleanup.h"
#include "testlib.h"

void test_server_init(TestServer *t) {
        *t = (TestServer){.stop_fd = -EBADF};
        t->dir = test_tmpdir();
        assert_non_null(t->dir);
        assert_int_equal(chmod(t->dir, 0755), 0);
        assert_true(asprintf(&t->sock, "%s/s.sock", t->dir) > 0);
        assert_ok(rpc_server_new(&t->s));
}

void test_server_listen(TestServer *t) {
        assert_ok(rpc_server_listen_unix(t->s, t->sock, 0666));
}

static void *owner_thread(void *p) {
        TestServer *t = p;

        for (;;) {
                struct pollfd pfd[2] = {
                        {rpc_server_event_fd(t->s), POLLIN, 0},
                        {t->stop_fd, POLLIN, 0},
                };

                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pfd[1].revents)
                        break;
                if (pfd[0].revents)
                        (void) rpc_server_dispatch(t->s);
        }
        return NULL;
}

void test_server_run(TestServer *t) {
        assert_ok(rpc_server_start(t->s));
        t->stop_fd = eventfd(0, EFD_CLOEXEC);
        assert_true(t->stop_fd >= 0);
        assert_int_equal(pthread_create(&t->owner, NULL, owner_thread, t), 0);
        t->owner_running = true;
}

void test_server_stop_owner(TestServer *t) {
        uint64_t one = 1;

        if (!t->owner_running)
                return;
        assert_int_equal(write(t->stop_fd, &one, sizeof(one)), sizeof(one));
        pthread_join(t->owner, NULL);
        t->owner_running = false;
}

void test_server_done(TestServer *t) {
        test_server_stop_owner(t);
        rpc_server_shutdown(t->s);
        t->s = rpc_server_free(t->s);
        if (t->stop_fd >= 0)
                close(t->stop_fd);
        free(t->sock);
        test_rmdir_free(t->dir);
        *t = (TestServer){.stop_fd = -EBADF};
}

void test_echo(RpcCall *c, void *userdata) {
        const RpcPeer *p = rpc_call_peer(c);
        size_t len;
        const char *req = rpc_call_request(c, &len);
        _cleanup_free_ char *out = NULL;
        int n;

        n = asprintf(&out, "uid=%d;pid=%d;%.*s", (int) p->uid, (int) p->pid, (int) len, req);
        assert_true(n > 0);
        assert_ok(rpc_call_reply(c, out, (size_t) n));
}

int test_unary(const char *sock,
               const char *method,
               const RpcMetadata *md,
               size_t n_md,
               const char *req,
               char **ret_resp,
               char **ret_message) {
        RpcChannel *ch = NULL;
        void *resp = NULL;
        char *msg = NULL;
        int status = -1;

        assert_ok(rpc_channel_new_unix(sock, &ch));
        assert_ok(rpc_unary(ch, method, md, n_md, req, strlen(req), 5000, &resp, NULL, &status,
                            &msg));
        rpc_channel_free(ch);
        if (ret_resp)
                *ret_resp = resp;
        else
                free(resp);
        if (ret_message)
                *ret_message = msg;
        else
                free(msg);
        return status;
}

uint64_t test_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

bool test_wait_for(bool (*cond)(void *), void *userdata, int timeout_ms) {
        uint64_t end = test_now_ms() + (uint64_t) timeout_ms;

        while (!cond(userdata)) {
                if (test_now_ms() > end)
                        return false;
                usleep(1000);
        }
        return true;
}

/* --- PKI --- */

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(cert, ext, -1), 1);
        X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer) {
        X509 *x = X509_new();
        unsigned char serial[16];
        BIGNUM *bn;

        assert_non_null(x);
        assert_int_equal(X509_set_version(x, 2), 1);
        assert_int_equal(RAND_bytes(serial, sizeof(serial)), 1);
        serial[0] &= 0x7f;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
        BN_free(bn);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), cn ? "CN" : "O", MBSTRING_ASC,
                                   (const unsigned char *) (cn ? cn : "warden-test"), -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
        if (issuer)
                add_ext(x, issuer, NID_authority_key_identifier, "keyid");
        return x;
}

static char *pem_of(int (*write)(BIO *, void *), void *obj) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *out;
        long n;

        assert_non_null(b);
        assert_int_equal(write(b, obj), 1);
        n = BIO_get_mem_data(b, &data);
        out = strndup(data, (size_t) n);
        assert_non_null(out);
        BIO_free(b);
        return out;
}

static int write_x509(BIO *b, void *x) {
        return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k) {
        return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

TestCa *test_ca_new(const char *cn) {
        TestCa *ca = calloc(1, sizeof(*ca));

        assert_non_null(ca);
        ca->key = EVP_EC_gen("P-256");
        assert_non_null(ca->key);
        ca->cert = make_cert(ca->key, cn, NULL);
        add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
        assert_true(X509_sign(ca->cert, ca->key, EVP_sha256()) > 0);
        ca->pem = pem_of(write_x509, ca->cert);
        return ca;
}

TestCa *test_ca_free(TestCa *ca) {
        if (!ca)
                return NULL;
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        free(ca->pem);
        free(ca);
        return NULL;
}

void test_ca_issue(TestCa *ca, const char *uri, char **ret_cert_pem, char **ret_key_pem) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        _cleanup_free_ char *san = NULL;
        X509 *x;

        assert_non_null(key);
        x = make_cert(key, NULL, ca->cert);
        add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature");
        add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth");
        assert_true(asprintf(&san, "URI:%s", uri) > 0);
        add_ext(x, ca->cert, NID_subject_alt_name, san);
        assert_true(X509_sign(x, ca->key, EVP_sha256()) > 0);

        *ret_cert_pem = pem_of(write_x509, x);
        *ret_key_pem = pem_of(write_key, key);
        X509_free(x);
        EVP_PKEY_free(key);
}
