/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server bundle show [-format pem|spiffe]`: the trust domain's bundle. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_nouns.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "warden/admin/v1/admin.pb-c.h"

static void pb_freep(void *p) {
        pb_free(*(void **) p);
}

static void x509_stack_freep(STACK_OF(X509) * *p) {
        if (*p)
                sk_X509_pop_free(*p, X509_free);
}

/* The X.509 authorities as PEM. */
static int bundle_pem(const Warden__Types__V1__Bundle *b, char **ret) {
        _cleanup_(x509_stack_freep) STACK_OF(X509) *certs = sk_X509_new_null();
        int r;

        if (!certs)
                return cli_error_errno(-ENOMEM, "out of memory");
        for (size_t i = 0; i < b->n_x509_authorities; i++) {
                X509 *cert = NULL;
                r = warden_x509_from_der(b->x509_authorities[i].data, b->x509_authorities[i].len,
                                         &cert);
                if (r < 0)
                        return cli_error_errno(r, "malformed X.509 authority in the bundle");
                if (!sk_X509_push(certs, cert)) {
                        X509_free(cert);
                        return cli_error_errno(-ENOMEM, "out of memory");
                }
        }
        if (sk_X509_num(certs) == 0)
                return cli_error_errno(-ENOENT, "the bundle has no X.509 authorities");
        r = warden_x509_chain_to_pem(certs, ret);
        if (r < 0)
                return cli_error_errno(r, "cannot encode the bundle as PEM: %s", strerror(-r));
        return 0;
}

static const Option show_options[] = {
        CLI_COMMON_OPTIONS,
        {"format", OPT_STRING, "pem", "pem (X.509 roots) or spiffe (SPIFFE bundle JWKS)"},
};

static int print_spiffe(const char *json) {
        json_error_t jerr;
        json_t *j = json_loads(json, 0, &jerr);

        if (!j)
                return cli_error_errno(-EBADMSG, "malformed SPIFFE bundle from the server: %s",
                                       jerr.text);
        return cli_print_json(j);
}

static int bundle_show(int argc, char **argv) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(pb_freep) Warden__Admin__V1__GetBundleResponse *resp = NULL;
        Warden__Admin__V1__GetBundleRequest req = WARDEN__ADMIN__V1__GET_BUNDLE_REQUEST__INIT;
        _cleanup_(cli_done) Cli cli = {};
        _cleanup_free_ char *pem = NULL;
        const char *format;
        int r;

        r = cli_parse("warden-server bundle show [-format pem|spiffe]", show_options,
                      ELEMENTSOF(show_options), argc, argv, &o);
        if (r < 0)
                return r;
        format = options_get_string(o, "format");
        if (!streq(format, "pem") && !streq(format, "spiffe"))
                return cli_error("-format: expected pem or spiffe, got \"%s\"", format);
        r = cli_open(&cli, o);
        if (r >= 0)
                r = cli_call(&cli, "GetBundle", &req,
                             &warden__admin__v1__get_bundle_response__descriptor, (void **) &resp);
        if (r < 0)
                return r;
        if (streq(format, "spiffe"))
                return print_spiffe(resp->spiffe_json);
        if (!resp->bundle)
                return cli_error_errno(-EBADMSG, "malformed answer: no bundle");
        r = bundle_pem(resp->bundle, &pem);
        if (r < 0)
                return r;
        if (cli.json)
                return cli_print_json(json_pack("{s:s,s:s}", "trust_domain",
                                                resp->bundle->trust_domain, "pem", pem));
        fputs(pem, stdout);
        return 0;
}

static const CliVerb bundle_verbs[] = {
        {"show", bundle_show, "Print the trust domain's bundle"},
};

int cli_bundle_main(int argc, char **argv) {
        return cli_dispatch(bundle_verbs, ELEMENTSOF(bundle_verbs), argc, argv);
}
