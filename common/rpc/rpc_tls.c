/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* TLS for the RPC layer: rotatable server credentials (SSL server credentials
 * with a certificate-config fetcher), client credentials that check the server's
 * SPIFFE ID instead of a host name (the experimental grpc_tls_credentials API
 * with an external verifier), and the client's SPIFFE ID from a call's auth
 * context. PEM inputs are parsed with OpenSSL first so that bad material fails
 * here, synchronously, rather than in a later handshake. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <warden/spiffeid.h>

#include "cleanup.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "rpc_conn.h"
#include "rpc_front.h"
#include "rpc_internal.h"

struct RpcTlsServerState {
        pthread_mutex_t lock;
        grpc_ssl_server_certificate_config *pending; /* handed to gRPC at the next handshake */
};

/* Parses every certificate of a PEM bundle (at least one). *ret_first (optional)
 * gets the first one. */
static int pem_parse_certs(const char *pem, X509 **ret_first) {
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *first = NULL;
        size_t n = 0;

        if (!pem)
                return -EINVAL;
        b = BIO_new_mem_buf(pem, -1);
        if (!b)
                return ossl_to_errno(-ENOMEM);
        for (;;) {
                X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

                if (!x)
                        break;
                if (n++ == 0)
                        first = x;
                else
                        X509_free(x);
        }
        /* The loop ends on a "no start line" error at the end of the input. */
        (void) ossl_to_errno(-EINVAL);
        if (n == 0)
                return -EINVAL;
        if (ret_first)
                *ret_first = TAKE_PTR(first);
        return 0;
}

/* The chain parses, the key parses, and the key belongs to the leaf. */
static int pem_check_pair(const char *chain_pem, const char *key_pem) {
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        if (!chain_pem || !key_pem)
                return -EINVAL;
        r = pem_parse_certs(chain_pem, &leaf);
        if (r < 0)
                return r;
        b = BIO_new_mem_buf(key_pem, -1);
        if (!b)
                return ossl_to_errno(-ENOMEM);
        key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        if (!key || X509_check_private_key(leaf, key) != 1)
                return ossl_to_errno(-EINVAL);
        return 0;
}

static int tls_server_config_new(const RpcTlsServerConfig *cfg,
                                 grpc_ssl_server_certificate_config **ret) {
        grpc_ssl_pem_key_cert_pair pair;
        int r;

        if (!cfg || (cfg->client_cert != RPC_CLIENT_CERT_REQUIRE &&
                     cfg->client_cert != RPC_CLIENT_CERT_OPTIONAL))
                return -EINVAL;
        r = pem_parse_certs(cfg->roots_pem, NULL);
        if (r < 0)
                return r;
        r = pem_check_pair(cfg->cert_chain_pem, cfg->key_pem);
        if (r < 0)
                return r;
        pair = (grpc_ssl_pem_key_cert_pair){.private_key = cfg->key_pem,
                                            .cert_chain = cfg->cert_chain_pem};
        /* Copies the strings. */
        *ret = grpc_ssl_server_certificate_config_create(cfg->roots_pem, &pair, 1);
        return *ret ? 0 : -ENOMEM;
}

/* Called by gRPC (any of its threads) before each handshake. */
static grpc_ssl_certificate_config_reload_status tls_server_fetch(
        void *userdata, grpc_ssl_server_certificate_config **config) {
        RpcTlsServerState *st = userdata;
        grpc_ssl_certificate_config_reload_status status =
                GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;

        pthread_mutex_lock(&st->lock);
        if (st->pending) {
                *config = TAKE_PTR(st->pending);
                status = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
        }
        pthread_mutex_unlock(&st->lock);
        return status;
}

int rpc_tls_server_new(const RpcTlsServerConfig *cfg,
                       RpcTlsServerState **ret_state,
                       grpc_server_credentials **ret_creds) {
        grpc_ssl_server_credentials_options *opts;
        grpc_server_credentials *creds;
        RpcTlsServerState *st;
        int r;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        pthread_mutex_init(&st->lock, NULL);
        r = tls_server_config_new(cfg, &st->pending);
        if (r < 0) {
                rpc_tls_server_free(st);
                return r;
        }

        opts = grpc_ssl_server_credentials_create_options_using_config_fetcher(
                cfg->client_cert == RPC_CLIENT_CERT_REQUIRE
                        ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                        : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY,
                tls_server_fetch, st);
        creds = opts ? grpc_ssl_server_credentials_create_with_options(opts) : NULL;
        if (!creds) {
                rpc_tls_server_free(st);
                return -ENOMEM;
        }
        *ret_state = st;
        *ret_creds = creds;
        return 0;
}

int rpc_tls_server_update(RpcTlsServerState *st, const RpcTlsServerConfig *cfg) {
        grpc_ssl_server_certificate_config *c = NULL, *old;
        int r;

        if (!cfg)
                return -EINVAL;
        /* The mode is fixed at creation; validate the rest with a valid mode. */
        r = tls_server_config_new(
                &(RpcTlsServerConfig){cfg->roots_pem, cfg->cert_chain_pem, cfg->key_pem}, &c);
        if (r < 0)
                return r;
        pthread_mutex_lock(&st->lock);
        old = st->pending;
        st->pending = c;
        pthread_mutex_unlock(&st->lock);
        if (old)
                grpc_ssl_server_certificate_config_destroy(old);
        return 0;
}

RpcTlsServerState *rpc_tls_server_free(RpcTlsServerState *st) {
        if (!st)
                return NULL;
        if (st->pending)
                grpc_ssl_server_certificate_config_destroy(st->pending);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return NULL;
}

/* "1.2.3.4:port" or "[v6]:port" (IP literals only) into *ret. */
static int tcp_address_parse(const char *addr, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon = addr ? strrchr(addr, ':') : NULL;
        bool v6 = addr && addr[0] == '[';
        const char *h = v6 ? addr + 1 : addr;
        size_t n = colon ? (size_t) (colon - h) - (v6 ? 1 : 0) : 0;
        char *end = NULL;
        unsigned long port;

        if (!colon || n == 0 || n >= sizeof(host) || (v6 && colon[-1] != ']'))
                return -EINVAL;
        memcpy(host, h, n);
        host[n] = '\0';
        port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || port > 65535)
                return -EINVAL;
        *ret = (struct sockaddr_storage){};
        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) ret;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(*a);
                return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -EINVAL;
        }
        struct sockaddr_in *a = (struct sockaddr_in *) ret;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t) port);
        *ret_len = sizeof(*a);
        return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

int rpc_tcp_check_bind(const char *addr) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage ss;
        socklen_t len;
        int one = 1, r;

        r = tcp_address_parse(addr, &ss, &len);
        if (r < 0)
                return r;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* As gRPC's listeners: a port in TIME_WAIT is free, one with a listener is not. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return -errno;
        return 0;
}

/* Our own TCP listener at addr: never SO_REUSEPORT, so a second server on the port
 * fails. */
static int tcp_listen(const char *addr, int *ret_fd, int *ret_port) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage ss;
        socklen_t len;
        int one = 1, r;

        r = tcp_address_parse(addr, &ss, &len);
        if (r < 0)
                return r;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return errno == EADDRINUSE || errno == EACCES ? -errno : -EADDRNOTAVAIL;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        *ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                                   : ((struct sockaddr_in *) &ss)->sin_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Where gRPC listens for the relay: s->relay_path for the first TLS listener (a stale
 * socket there is removed), else an abstract name nobody can guess. *ret_uri is gRPC's
 * address for it. */
static int relay_target(RpcServer *s, struct sockaddr_un *ret, socklen_t *ret_len, char **ret_uri) {
        static unsigned seq;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat st;
        uint32_t rnd = 0;
        int n;

        if (s->relay_path && rpc_front_n_listeners(s->front) == 0) {
                if (lstat(s->relay_path, &st) >= 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        if (unlink(s->relay_path) < 0)
                                return -errno;
                }
                strcpy(sa.sun_path, s->relay_path);
                *ret_len = offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1;
                if (asprintf(ret_uri, "unix:%s", s->relay_path) < 0)
                        return -ENOMEM;
                *ret = sa;
                return 0;
        }
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (uint32_t) rpc_now_ms();
        n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "warden-rpc-%d-%u-%08x",
                     (int) getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), rnd);
        *ret_len = offsetof(struct sockaddr_un, sun_path) + 1 + (socklen_t) n;
        if (asprintf(ret_uri, "unix-abstract:%s", sa.sun_path + 1) < 0)
                return -ENOMEM;
        *ret = sa;
        return 0;
}

int rpc_server_listen_tls(RpcServer *s,
                          const char *addr,
                          const RpcTlsServerConfig *cfg,
                          int *ret_port) {
        RpcTlsServerState *st = NULL, **n;
        grpc_server_credentials *creds = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *uri = NULL;
        struct sockaddr_un target = {};
        socklen_t target_len = 0;
        int port = 0, r;

        if (!s || !addr || !cfg)
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        if (rpc_front_n_listeners(s->front) >= RPC_MAX_LISTENERS)
                return -E2BIG;
        n = reallocarray(s->tls, s->n_tls + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        s->tls = n;
        r = rpc_tls_server_new(cfg, &st, &creds);
        if (r < 0)
                return r;
        /* Even on failure the credentials may have been handed our state. */
        s->tls[s->n_tls++] = st;
        r = tcp_listen(addr, &fd, &port);
        if (r >= 0)
                r = relay_target(s, &target, &target_len, &uri);
        if (r < 0) {
                grpc_server_credentials_release(creds);
                return r;
        }
        /* TLS stays gRPC's, on the internal socket; the server keeps its own reference
         * to the credentials. */
        if (grpc_server_add_http2_port(s->server, uri, creds) <= 0)
                r = -EADDRNOTAVAIL;
        grpc_server_credentials_release(creds);
        if (r >= 0)
                r = rpc_front_add(s->front, fd, &target, target_len);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        if (ret_port)
                *ret_port = port;
        return 0;
}

int rpc_server_update_tls(RpcServer *s, const RpcTlsServerConfig *cfg) {
        int r;

        if (!s || !cfg)
                return -EINVAL;
        if (s->n_tls == 0)
                return -ENOENT;
        for (size_t i = 0; i < s->n_tls; i++) {
                r = rpc_tls_server_update(s->tls[i], cfg);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --- client side: server SPIFFE ID verifier --- */

typedef struct RpcIdVerifier {
        grpc_tls_certificate_verifier_external ext;
        char *expected;
} RpcIdVerifier;

/* What the server's certificate carries instead of the expected ID, for the error text
 * (the peer's bytes: printable ASCII only, capped). */
static void describe_presented(const grpc_tls_custom_verification_check_request *request,
                               char *buf,
                               size_t size) {
        size_t n = request->peer_info.san_names.uri_names_size, i = 0;
        const char *uri;

        if (n != 1) {
                snprintf(buf, size, "%zu URI SANs", n);
                return;
        }
        uri = request->peer_info.san_names.uri_names[0];
        for (; uri && uri[i] && i < RPC_TLS_PRESENTED_ID_MAX && i + 1 < size; i++)
                buf[i] = uri[i] > 0x20 && uri[i] < 0x7f ? uri[i] : '?';
        buf[i] = '\0';
}

/* Runs after gRPC verified the chain against our roots. An X509-SVID has exactly
 * one URI SAN; it must be the expected ID. The details end up in the failed call's
 * status (rpc_tls_failure_from_details()). */
static int verifier_verify(void *userdata,
                           grpc_tls_custom_verification_check_request *request,
                           grpc_tls_on_custom_verification_check_done_cb callback,
                           void *callback_arg,
                           grpc_status_code *sync_status,
                           char **sync_error_details) {
        const RpcIdVerifier *v = userdata;
        size_t n = request->peer_info.san_names.uri_names_size;
        char presented[RPC_TLS_PRESENTED_ID_MAX + 1], *details = NULL;

        if (n == 1 && streq(request->peer_info.san_names.uri_names[0], v->expected)) {
                *sync_status = GRPC_STATUS_OK;
                return 1;
        }
        describe_presented(request, presented, sizeof(presented));
        log_debug("rpc: server certificate carries %s, not the expected SPIFFE ID %s", presented,
                  v->expected);
        *sync_status = GRPC_STATUS_UNAUTHENTICATED;
        gpr_asprintf(&details, RPC_TLS_ID_MISMATCH ": presented %s, expected %s", presented,
                     v->expected);
        *sync_error_details = details;
        return 1; /* synchronous */
}

static void verifier_cancel(void *userdata, grpc_tls_custom_verification_check_request *request) {
}

static void verifier_destruct(void *userdata) {
        RpcIdVerifier *v = userdata;

        free(v->expected);
        free(v);
}

static int tls_client_check(const RpcTlsClientConfig *cfg) {
        const char *reason;
        int r;

        if (!cfg || !cfg->expected_server_id || !!cfg->cert_chain_pem != !!cfg->key_pem)
                return -EINVAL;
        if (warden_spiffeid_validate(cfg->expected_server_id, &reason) < 0)
                return log_debug_errno(-EINVAL, "rpc: bad expected server ID: %s", reason);
        r = pem_parse_certs(cfg->roots_pem, NULL);
        if (r < 0)
                return r;
        if (cfg->cert_chain_pem)
                return pem_check_pair(cfg->cert_chain_pem, cfg->key_pem);
        return 0;
}

int rpc_tls_channel_creds_new(const RpcTlsClientConfig *cfg, grpc_channel_credentials **ret) {
        grpc_tls_credentials_options *opts;
        grpc_tls_certificate_provider *provider;
        grpc_tls_certificate_verifier *verifier;
        grpc_tls_identity_pairs *pairs = NULL;
        grpc_channel_credentials *creds;
        RpcIdVerifier *v;
        int r;

        r = tls_client_check(cfg);
        if (r < 0)
                return r;
        v = calloc(1, sizeof(*v));
        if (!v || !(v->expected = strdup(cfg->expected_server_id))) {
                free(v);
                return -ENOMEM;
        }
        v->ext = (grpc_tls_certificate_verifier_external){
                .user_data = v,
                .verify = verifier_verify,
                .cancel = verifier_cancel,
                .destruct = verifier_destruct,
        };

        opts = grpc_tls_credentials_options_create();
        if (cfg->cert_chain_pem) {
                pairs = grpc_tls_identity_pairs_create();
                grpc_tls_identity_pairs_add_pair(pairs, cfg->key_pem, cfg->cert_chain_pem);
        }
        /* Copies the roots, takes the pairs. */
        provider = grpc_tls_certificate_provider_static_data_create(cfg->roots_pem, pairs);
        grpc_tls_credentials_options_set_certificate_provider(opts, provider);
        grpc_tls_credentials_options_watch_root_certs(opts);
        if (cfg->cert_chain_pem)
                grpc_tls_credentials_options_watch_identity_key_cert_pairs(opts);
        grpc_tls_credentials_options_set_verify_server_cert(opts, 1);
        /* Owns v from here on: verifier_destruct frees it. */
        verifier = grpc_tls_certificate_verifier_external_create(&v->ext);
        grpc_tls_credentials_options_set_certificate_verifier(opts, verifier);
        grpc_tls_credentials_options_set_check_call_host(opts, 0);
        creds = grpc_tls_credentials_create(opts); /* takes opts */
        grpc_tls_certificate_provider_release(provider);
        grpc_tls_certificate_verifier_release(verifier);
        if (!creds)
                return -ENOMEM;
        *ret = creds;
        return 0;
}

/* --- server side: the client's SPIFFE ID --- */

/* The value of name if the context has exactly one such property. */
static const grpc_auth_property *auth_single(const grpc_auth_context *ctx, const char *name) {
        grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, name);
        const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);

        if (!p || grpc_auth_property_iterator_next(&it))
                return NULL;
        return p;
}

int rpc_tls_peer_spiffe_id(grpc_call *call, char **ret) {
        grpc_auth_context *ctx = grpc_call_auth_context(call);
        const grpc_auth_property *p;
        _cleanup_free_ char *id = NULL;
        const char *reason;

        *ret = NULL;
        if (!ctx)
                return 0;
        /* gRPC sets peer_spiffe_id only for exactly one valid spiffe:// URI SAN; the
         * single peer_uri is the fallback. Either way our own rules decide. */
        p = auth_single(ctx, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
        if (!p)
                p = auth_single(ctx, GRPC_PEER_URI_PROPERTY_NAME);
        if (p && p->value && p->value_length <= WARDEN_SPIFFEID_MAX) {
                id = strndup(p->value, p->value_length);
                if (!id) {
                        grpc_auth_context_release(ctx);
                        return -ENOMEM;
                }
        }
        grpc_auth_context_release(ctx);

        if (id && warden_spiffeid_validate(id, &reason) < 0) {
                log_debug("rpc: client certificate URI SAN is no SPIFFE ID (%s), ignoring", reason);
                return 0;
        }
        *ret = TAKE_PTR(id);
        return 0;
}
