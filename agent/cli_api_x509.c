/* SPDX-License-Identifier: Apache-2.0 */
/* `api fetch x509`, `api fetch bundles` and `api watch`. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "cli_api_internal.h"
#include "ossl_cleanup.h"
#include "rpc.h"
#include "rpc_status.h"
#include "spiffe/workload/workload.pb-c.h"

/* Caps on what we parse from the agent. */
#define API_BUNDLE_MAX_CERTS 1024
/* Pause before `api watch` opens its stream again. */
#define API_WATCH_RETRY_MS 500

static void certs_freep(STACK_OF(X509) * *s) {
        if (*s)
                sk_X509_pop_free(*s, X509_free);
}

static int bundle_certs(const ProtobufCBinaryData *d, STACK_OF(X509) * *ret) {
        return warden_x509_certs_from_der(d->data, d->len, API_BUNDLE_MAX_CERTS,
                                          RPC_MAX_MESSAGE_SIZE, ret);
}

/* One SVID as JSON (or printed), after checking that its chain parses. */
static int svid_describe(const X509SVID *s, bool json, json_t *arr) {
        _cleanup_(certs_freep) STACK_OF(X509) *chain = NULL, *bundle = NULL;
        _cleanup_free_ char *serial = NULL;
        char nb[32], na[32];
        X509 *leaf;
        int r;

        r = warden_x509_chain_from_der(s->x509_svid.data, s->x509_svid.len, &chain);
        if (r < 0)
                return api_error_errno(r, "malformed X.509-SVID for %s", s->spiffe_id);
        r = bundle_certs(&s->bundle, &bundle);
        if (r < 0)
                return api_error_errno(r, "malformed bundle for %s", s->spiffe_id);
        leaf = sk_X509_value(chain, 0);
        r = warden_x509_serial_hex(leaf, &serial);
        if (r < 0)
                return api_error_errno(r, "cannot read the serial number: %s", strerror(-r));
        api_format_time(warden_x509_not_before(leaf), nb);
        api_format_time(warden_x509_not_after(leaf), na);
        if (json)
                return json_array_append_new(arr,
                                             json_pack("{ss ss ss ss ss si si}", "spiffe_id",
                                                       s->spiffe_id, "hint", s->hint, "serial",
                                                       serial, "not_before", nb, "not_after", na,
                                                       "chain_length", (int) sk_X509_num(chain),
                                                       "bundle_cas", (int) sk_X509_num(bundle))) < 0
                               ? api_error_errno(-ENOMEM, "out of memory")
                               : 0;
        printf("SPIFFE ID:         %s\n", s->spiffe_id);
        if (*s->hint)
                printf("Hint:              %s\n", s->hint);
        printf("Serial:            %s\n", serial);
        printf("SVID Valid After:  %s\n", nb);
        printf("SVID Valid Until:  %s\n", na);
        printf("Intermediates:     %d\n", sk_X509_num(chain) - 1);
        printf("Bundle CAs:        %d\n\n", sk_X509_num(bundle));
        return 0;
}

/* Prints an X509SVIDResponse (text, or one JSON document, compact for watch). */
static int print_x509_response(const X509SVIDResponse *resp, int64_t ms, bool json, bool compact) {
        _cleanup_(json_decrefp) json_t *arr = json ? json_array() : NULL, *fed = NULL;
        int r;

        if (json && !arr)
                return api_error_errno(-ENOMEM, "out of memory");
        if (!json)
                printf("Received %zu svid%s after %lld ms\n\n", resp->n_svids,
                       resp->n_svids == 1 ? "" : "s", (long long) ms);
        for (size_t i = 0; i < resp->n_svids; i++) {
                r = svid_describe(resp->svids[i], json, arr);
                if (r < 0)
                        return r;
        }
        fed = json ? json_object() : NULL;
        for (size_t i = 0; i < resp->n_federated_bundles; i++) {
                _cleanup_(certs_freep) STACK_OF(X509) *certs = NULL;
                const X509SVIDResponse__FederatedBundlesEntry *e = resp->federated_bundles[i];

                r = bundle_certs(&e->value, &certs);
                if (r < 0)
                        return api_error_errno(r, "malformed federated bundle %s", e->key);
                if (json)
                        json_object_set_new(fed, e->key, json_integer(sk_X509_num(certs)));
                else
                        printf("Federated bundle:  %s (%d CA%s)\n", e->key, sk_X509_num(certs),
                               sk_X509_num(certs) == 1 ? "" : "s");
        }
        if (json)
                return api_print_json(json_pack("{sOsO}", "svids", arr, "federated_bundles", fed),
                                      compact);
        fflush(stdout);
        return 0;
}

static int write_pem_der(const char *dir,
                         const char *name,
                         const ProtobufCBinaryData *der,
                         bool silent) {
        _cleanup_(certs_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = bundle_certs(der, &certs);
        if (r < 0)
                return api_error_errno(r, "malformed certificates for %s", name);
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return api_error_errno(-ENOMEM, "out of memory");
        r = warden_x509_write_pem_file(path, certs, 0644);
        if (r < 0)
                return api_error_errno(r, "cannot write %s: %s", path, strerror(-r));
        if (!silent)
                printf("Wrote %s\n", path);
        return 0;
}

static int write_key(const char *dir, size_t i, const ProtobufCBinaryData *pkcs8, bool silent) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = warden_key_from_pkcs8_der(pkcs8->data, pkcs8->len, &key);
        if (r < 0)
                return api_error_errno(r, "malformed private key for SVID %zu", i);
        if (asprintf(&path, "%s/svid.%zu.key", dir, i) < 0)
                return api_error_errno(-ENOMEM, "out of memory");
        r = warden_key_write_file(path, key); /* 0600 */
        if (r < 0)
                return api_error_errno(r, "cannot write %s: %s", path, strerror(-r));
        if (!silent)
                printf("Wrote %s\n", path);
        return 0;
}

/* svid.N.pem, svid.N.key, bundle.N.pem and federated_bundle.N.M.pem, as SPIRE. */
static int write_files(const char *dir, const X509SVIDResponse *resp, bool silent) {
        int r;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return api_error_errno(-errno, "cannot create %s: %m", dir);
        for (size_t i = 0; i < resp->n_svids; i++) {
                const X509SVID *s = resp->svids[i];
                char name[64];

                snprintf(name, sizeof(name), "svid.%zu.pem", i);
                r = write_pem_der(dir, name, &s->x509_svid, silent);
                if (r >= 0)
                        r = write_key(dir, i, &s->x509_svid_key, silent);
                if (r < 0)
                        return r;
                snprintf(name, sizeof(name), "bundle.%zu.pem", i);
                if (s->bundle.len > 0 && (r = write_pem_der(dir, name, &s->bundle, silent)) < 0)
                        return r;
                for (size_t j = 0; j < resp->n_federated_bundles; j++) {
                        snprintf(name, sizeof(name), "federated_bundle.%zu.%zu.pem", i, j);
                        if (resp->federated_bundles[j]->value.len == 0)
                                continue;
                        r = write_pem_der(dir, name, &resp->federated_bundles[j]->value, silent);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int api_fetch_x509(int argc, char **argv) {
        static const Option table[] = {
                API_COMMON_OPTIONS,
                {"write", OPT_STRING, NULL, "Write the SVIDs, keys and bundles to this directory"},
                {"silent", OPT_BOOL, "false", "Print nothing on success (with -write: files only)"},
        };
        _cleanup_(options_freep) Options *o = NULL;
        ProtobufCMessage *m = NULL;
        const char *dir;
        bool silent;
        ApiClient c;
        int64_t t0;
        int r;

        r = api_parse("warden-agent api fetch x509 [flags]", table, ELEMENTSOF(table), argc, argv,
                      &o);
        if (r < 0)
                return r;
        silent = options_get_bool(o, "silent");
        r = api_open(&c, o);
        if (r >= 0) {
                t0 = api_now_ms();
                r = api_stream_first(&c, "FetchX509SVID", &x509_svidresponse__descriptor,
                                     c.timeout_ms, &m, NULL);
        }
        if (r > 0) {
                r = silent ? 0
                           : print_x509_response((X509SVIDResponse *) m, api_now_ms() - t0, c.json,
                                                 false);
                dir = options_get_string(o, "write");
                if (r >= 0 && dir)
                        r = write_files(dir, (X509SVIDResponse *) m, silent);
        }
        if (m) {
                /* The keys: wipe our copy. */
                for (size_t i = 0; i < ((X509SVIDResponse *) m)->n_svids; i++) {
                        X509SVID *s = ((X509SVIDResponse *) m)->svids[i];

                        explicit_erase(s->x509_svid_key.data, s->x509_svid_key.len);
                }
                protobuf_c_message_free_unpacked(m, NULL);
        }
        api_close(&c);
        return r;
}

int api_fetch_x509_bundles(int argc, char **argv) {
        static const Option table[] = {API_COMMON_OPTIONS};
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(json_decrefp) json_t *out = NULL;
        X509BundlesResponse *resp = NULL;
        ApiClient c;
        int r;

        r = api_parse("warden-agent api fetch bundles [flags]", table, ELEMENTSOF(table), argc,
                      argv, &o);
        if (r < 0)
                return r;
        r = api_open(&c, o);
        if (r >= 0)
                r = api_stream_first(&c, "FetchX509Bundles", &x509_bundles_response__descriptor,
                                     c.timeout_ms, (ProtobufCMessage **) &resp, NULL);
        out = json_object();
        for (size_t i = 0; r > 0 && i < resp->n_bundles; i++) {
                _cleanup_(certs_freep) STACK_OF(X509) *certs = NULL;
                _cleanup_free_ char *pem = NULL;
                const X509BundlesResponse__BundlesEntry *e = resp->bundles[i];

                r = bundle_certs(&e->value, &certs);
                if (r >= 0)
                        r = sk_X509_num(certs) > 0 ? warden_x509_chain_to_pem(certs, &pem) : 0;
                if (r < 0) {
                        r = api_error_errno(r, "malformed bundle %s", e->key);
                        break;
                }
                if (c.json)
                        json_object_set_new(out, e->key, json_string(strempty(pem)));
                else
                        printf("bundle(%s):\n%s\n", e->key, strempty(pem));
                r = 1;
        }
        if (r > 0 && c.json)
                r = api_print_json(json_pack("{sO}", "bundles", out), false);
        if (resp)
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        api_close(&c);
        return r;
}

/* --- watch --- */

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig) {
        (void) sig;
        watch_stop = 1;
}

/* Prints a stream's end; returns < 0 when watching should stop for good. */
static int watch_ended(ApiClient *c, RpcStream *st) {
        _cleanup_free_ char *message = NULL;
        int status = GRPC_STATUS_UNKNOWN;

        (void) rpc_stream_status(st, &status, &message);
        if (c->json)
                (void) api_print_json(json_pack("{s{ssss}}", "error", "code",
                                                rpc_status_to_string(status), "message",
                                                strempty(message)),
                                      true);
        else {
                printf("Stream ended: %s: %s\n", rpc_status_to_string(status), strempty(message));
                fflush(stdout);
        }
        /* As go-spiffe's watcher: no retry after INVALID_ARGUMENT (or a method the agent
         * does not have). */
        if (status == GRPC_STATUS_INVALID_ARGUMENT || status == GRPC_STATUS_UNIMPLEMENTED)
                return api_error_errno(rpc_status_to_errno(status), "FetchX509SVID: %s: %s",
                                       rpc_status_to_string(status), strempty(message));
        return 0;
}

/* One stream until it ends or we are told to stop. */
static int watch_once(ApiClient *c, int64_t t0) {
        RpcStream *st = NULL;
        int r;

        r = api_stream_open(c, "FetchX509SVID", &st);
        while (r >= 0 && !watch_stop) {
                _cleanup_free_ void *msg = NULL;
                X509SVIDResponse *resp;
                size_t len = 0;

                r = rpc_stream_next(st, 200, &msg, &len);
                if (r == -ETIMEDOUT) {
                        r = 0;
                        continue;
                }
                if (r == 0) {
                        r = watch_ended(c, st);
                        break;
                }
                if (r < 0)
                        break;
                resp = x509_svidresponse__unpack(NULL, len, msg);
                if (!resp) {
                        r = api_error_errno(-EBADMSG, "FetchX509SVID: malformed response");
                        break;
                }
                r = print_x509_response(resp, api_now_ms() - t0, c->json, true);
                for (size_t i = 0; i < resp->n_svids; i++)
                        explicit_erase(resp->svids[i]->x509_svid_key.data,
                                       resp->svids[i]->x509_svid_key.len);
                explicit_erase(msg, len);
                x509_svidresponse__free_unpacked(resp, NULL);
        }
        rpc_stream_free(st);
        return r;
}

int api_watch(int argc, char **argv) {
        static const Option table[] = {API_COMMON_OPTIONS};
        _cleanup_(options_freep) Options *o = NULL;
        struct sigaction sa = {.sa_handler = on_watch_signal};
        ApiClient c;
        int64_t t0 = api_now_ms();
        int r;

        r = api_parse("warden-agent api watch [flags]", table, ELEMENTSOF(table), argc, argv, &o);
        if (r < 0)
                return r;
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        r = api_open(&c, o);
        while (r >= 0 && !watch_stop) {
                r = watch_once(&c, t0);
                for (int i = 0; r >= 0 && !watch_stop && i < API_WATCH_RETRY_MS / 50; i++)
                        (void) usleep(50 * 1000);
        }
        api_close(&c);
        return r;
}
