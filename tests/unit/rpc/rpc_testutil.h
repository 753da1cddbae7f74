/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared fixtures for the RPC layer tests: an in-process server with an owner
 * thread that runs rpc_server_dispatch(), a test PKI made with OpenSSL at run
 * time, and small waiting helpers. */

#include <pthread.h>
#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rpc.h"
#include "rpc_client.h"

typedef struct TestServer {
        RpcServer *s;
        char *dir;  /* private temp dir (mode 0755) */
        char *sock; /* dir/s.sock */
        pthread_t owner;
        int stop_fd;
        bool owner_running;
} TestServer;

/* New server and temp dir; the caller adds methods and listeners next. */
void test_server_init(TestServer *t);
/* Listens on t->sock (mode 0666). */
void test_server_listen(TestServer *t);
/* rpc_server_start() and an owner thread that dispatches handlers. */
void test_server_run(TestServer *t);
/* Stops the owner thread (the caller's thread becomes the owner). */
void test_server_stop_owner(TestServer *t);
/* Stops the owner thread, shuts down, frees, removes the temp dir. */
void test_server_done(TestServer *t);

/* Echo handler: replies "uid=<uid>;pid=<pid>;" + request. */
void test_echo(RpcCall *c, void *userdata);

/* Calls method on a fresh Unix channel. Returns the status; *ret_resp and
 * *ret_message (both optional) are malloc'd. */
int test_unary(const char *sock,
               const char *method,
               const RpcMetadata *md,
               size_t n_md,
               const char *req,
               char **ret_resp,
               char **ret_message);

/* Polls cond every millisecond for up to timeout_ms. */
bool test_wait_for(bool (*cond)(void *), void *userdata, int timeout_ms);
uint64_t test_now_ms(void);

typedef struct TestCa {
        EVP_PKEY *key;
        X509 *cert;
        char *pem;
} TestCa;

/* A self-signed EC P-256 CA. */
TestCa *test_ca_new(const char *cn);
TestCa *test_ca_free(TestCa *ca);
/* Issues a leaf (CA=false, digitalSignature, serverAuth+clientAuth) whose only
 * SAN is the URI uri; PEM certificate and PKCS#8 key come back malloc'd. */
void test_ca_issue(TestCa *ca, const char *uri, char **ret_cert_pem, char **ret_key_pem);
