/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server x509 mint` and `warden-server jwt mint`: SVIDs for any workload ID
 * of the trust domain, straight from the server (for tests and bootstrapping). The
 * X.509 key is made here and never leaves this process except into -write DIR. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "entry.h"
#include "ossl_cleanup.h"
#include "parse.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static void x509_stack_freep(STACK_OF(X509) * *p) {
        if (*p)
                sk_X509_pop_free(*p, X509_free);
}

static int check_workload_id(const Options *o, const char **ret) {
        const char *id = options_get_string(o, "spiffeID"), *reason = NULL;

        if (!id)
                return cli_error("-spiffeID is required");
        if (warden_spiffeid_validate_workload(id, &reason) < 0)
                return cli_error("invalid -spiffeID \"%s\": %s", id, reason);
        *ret = id;
        return 0;
}

static int certs_from_der(ProtobufCBinaryData *v, size_t n, STACK_OF(X509) * *ret) {
        _cleanup_(x509_stack_freep) STACK_OF(X509) *certs = sk_X509_new_null();

        if (!certs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                X509 *cert = NULL;
                int r = warden_x509_from_der(v[i].data, v[i].len, &cert);
                if (r < 0)
                        return cli_error_errno(r, "malformed certificate from the server");
                if (!sk_X509_push(certs, cert)) {
                        X509_free(cert);
                        return -ENOMEM;
                }
        }
        if (sk_X509_num(certs) == 0)
                return cli_error_errno(-EBADMSG, "malformed answer: no certificates");
        *ret = TAKE_PTR(certs);
        return 0;
}

typedef struct Minted {
        STACK_OF(X509) * chain;
        STACK_OF(X509) * roots;
        EVP_PKEY *key;
} Minted;

static void minted_done(Minted *m) {
        x509_stack_freep(&m->chain);
        x509_stack_freep(&m->roots);
        EVP_PKEY_free(m->key);
}

static int write_files(const Cli *cli, const char *dir, const Minted *m) {
        _cleanup_free_ char *svid = NULL, *key = NULL, *bundle = NULL;
        int r;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return cli_error_errno(-errno, "cannot create %s: %s", dir, strerror(errno));
        if (asprintf(&svid, "%s/svid.pem", dir) < 0 || asprintf(&key, "%s/key.pem", dir) < 0 ||
            asprintf(&bundle, "%s/bundle.pem", dir) < 0)
                return cli_error_errno(-ENOMEM, "out of memory");
        r = warden_x509_write_pem_file(svid, m->chain, 0644);
        if (r >= 0)
                r = warden_key_write_file(key, m->key);
        if (r >= 0)
                r = warden_x509_write_pem_file(bundle, m->roots, 0644);
        if (r < 0)
                return cli_error_errno(r, "cannot write to %s: %s", dir, strerror(-r));
        if (cli->json)
                return cli_print_json(json_pack(
                        "{s:s,s:s,s:s,s:o}", "svid_path", svid, "key_path", key, "bundle_path",
                        bundle, "expires_at",
                        cli_json_time(warden_x509_not_after(sk_X509_value(m->chain, 0)))));
        printf("X509-SVID written to %s\nPrivate key written to %s\nBundle written to %s\n", svid,
               key, bundle);
        return 0;
}

static int print_pems(const Cli *cli, const char *id, const Minted *m) {
        _cleanup_free_ char *chain = NULL, *roots = NULL;
        _cleanup_erase_ char *key = NULL;
        int r;

        r = warden_x509_chain_to_pem(m->chain, &chain);
        if (r >= 0)
                r = warden_x509_chain_to_pem(m->roots, &roots);
        if (r >= 0)
                r = warden_key_to_pem(m->key, &key);
        if (r < 0)
                return cli_error_errno(r, "cannot encode PEM: %s", strerror(-r));
        if (cli->json)
                return cli_print_json(json_pack(
                        "{s:s,s:s,s:s,s:s,s:o}", "spiffe_id", id, "svid_pem", chain, "key_pem", key,
                        "bundle_pem", roots, "expires_at",
                        cli_json_time(warden_x509_not_after(sk_X509_value(m->chain, 0)))));
        printf("# X509-SVID for %s (leaf first)\n%s# Private key\n%s# Trust bundle\n%s", id, chain,
               key, roots);
        return 0;
}

static const Option x509_options[] = {
        CLI_COMMON_OPTIONS,
        {"spiffeID", OPT_STRING, NULL, "SPIFFE ID of the X509-SVID (required)"},
        {"ttl", OPT_DURATION, "0", "Lifetime (0 = the server default, which is also the cap)"},
        {"dns", OPT_STRV, NULL, "DNS name SAN (repeatable)"},
        {"write", OPT_STRING, NULL, "Write svid.pem, key.pem (0600) and bundle.pem into DIR"},
};

static int mint_request(Cli *cli,
                        const Options *o,
                        const char *id,
                        Minted *m,
                        Warden__Admin__V1__MintX509SVIDResponse **ret) {
        Warden__Admin__V1__MintX509SVIDRequest req = WARDEN__ADMIN__V1__MINT_X509_SVIDREQUEST__INIT;
        _cleanup_free_ uint8_t *csr = NULL;
        size_t csr_len = 0, n_dns = 0;
        int r;

        req.dns_names = (char **) options_get_strv(o, "dns", &n_dns);
        req.n_dns_names = n_dns;
        for (size_t i = 0; i < n_dns; i++)
                if (entry_dns_name_validate(req.dns_names[i], NULL) < 0)
                        return cli_error("invalid -dns \"%s\"", req.dns_names[i]);
        r = cli_ttl(o, "ttl", ENTRY_TTL_MAX, &req.ttl);
        if (r < 0)
                return r;
        r = warden_key_generate(WARDEN_KEY_EC_P256, &m->key);
        if (r >= 0)
                r = warden_csr_create(m->key, id, &csr, &csr_len);
        if (r < 0)
                return cli_error_errno(r, "cannot make a key and CSR: %s", strerror(-r));
        req.spiffe_id = (char *) id;
        req.csr.data = csr;
        req.csr.len = csr_len;
        r = cli_open(cli, o);
        if (r < 0)
                return r;
        return cli_call(cli, "MintX509SVID", &req,
                        &warden__admin__v1__mint_x509_svidresponse__descriptor, (void **) ret);
}

static int x509_mint(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__MintX509SVIDResponse *resp = NULL;
        _cleanup_(minted_done) Minted m = {};
        _cleanup_(cli_done) Cli cli = {};
        const char *id = NULL;
        int r;

        r = cli_parse("warden-server x509 mint -spiffeID ID [-ttl DURATION] [-dns NAME]... "
                      "[-write DIR]",
                      x509_options, ELEMENTSOF(x509_options), argc, argv, &o);
        if (r >= 0)
                r = check_workload_id(o, &id);
        if (r >= 0)
                r = mint_request(&cli, o, id, &m, &resp);
        if (r >= 0)
                r = certs_from_der(resp->svid_chain, resp->n_svid_chain, &m.chain);
        if (r >= 0)
                r = certs_from_der(resp->root_cas, resp->n_root_cas, &m.roots);
        if (r == -ENOMEM)
                return cli_error_errno(r, "out of memory");
        if (r < 0)
                return r;
        if (options_get_string(o, "write"))
                return write_files(&cli, options_get_string(o, "write"), &m);
        return print_pems(&cli, id, &m);
}

static const Option jwt_options[] = {
        CLI_COMMON_OPTIONS,
        {"spiffeID", OPT_STRING, NULL, "SPIFFE ID (sub) of the JWT-SVID (required)"},
        {"audience", OPT_STRV, NULL, "Audience (aud), repeatable (required)"},
        {"ttl", OPT_DURATION, "0", "Lifetime (0 = the server default, which is also the cap)"},
        {"write", OPT_STRING, NULL, "Write the token into FILE (mode 0600) instead of stdout"},
};

static int print_jwt(const Cli *cli, const char *path, const char *token, int64_t expires_at) {
        char t[TIMESTAMP_STRING_MAX];
        int r;

        if (path) {
                r = cli_write_file(path, token, strlen(token), 0600);
                if (r < 0)
                        return r;
        }
        if (cli->json && path)
                return cli_print_json(json_pack("{s:s,s:o}", "token_path", path, "expires_at",
                                                cli_json_time(expires_at)));
        if (cli->json)
                return cli_print_json(json_pack("{s:s,s:o}", "token", token, "expires_at",
                                                cli_json_time(expires_at)));
        if (path)
                printf("JWT-SVID written to %s (expires at %s)\n", path,
                       format_timestamp(expires_at, t, sizeof(t)));
        else
                printf("%s\n", token);
        return 0;
}

static int jwt_mint(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__MintJWTSVIDResponse *resp = NULL;
        Warden__Admin__V1__MintJWTSVIDRequest req = WARDEN__ADMIN__V1__MINT_JWTSVIDREQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        const char *id = NULL;
        size_t n_aud = 0;
        int r;

        r = cli_parse("warden-server jwt mint -spiffeID ID -audience AUD... [-ttl DURATION] "
                      "[-write FILE]",
                      jwt_options, ELEMENTSOF(jwt_options), argc, argv, &o);
        if (r >= 0)
                r = check_workload_id(o, &id);
        if (r >= 0)
                r = cli_ttl(o, "ttl", ENTRY_TTL_MAX, &req.ttl);
        if (r < 0)
                return r;
        req.audience = (char **) options_get_strv(o, "audience", &n_aud);
        req.n_audience = n_aud;
        if (n_aud == 0)
                return cli_error("at least one -audience is required");
        req.spiffe_id = (char *) id;
        r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "MintJWTSVID", &req,
                             &warden__admin__v1__mint_jwtsvidresponse__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        return print_jwt(&cli, options_get_string(o, "write"), resp->token, resp->expires_at);
}

static const CliVerb x509_verbs[] = {
        {"mint", x509_mint, "Mint an X509-SVID (the key is made locally)"},
};

static const CliVerb jwt_verbs[] = {
        {"mint", jwt_mint, "Mint a JWT-SVID"},
};

int cli_x509_main(int argc, char **argv) {
        return cli_dispatch(x509_verbs, ELEMENTSOF(x509_verbs), argc, argv);
}

int cli_jwt_main(int argc, char **argv) {
        return cli_dispatch(jwt_verbs, ELEMENTSOF(jwt_verbs), argc, argv);
}
