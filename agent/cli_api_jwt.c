/* SPDX-License-Identifier: Apache-2.0 */
/* `api fetch jwt`, `api fetch jwt bundles` and `api validate jwt`. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warden/jwtsvid.h>

#include "cleanup.h"
#include "cli_api_internal.h"
#include "spiffe/workload/workload.pb-c.h"
#include "workload_api_internal.h"

int api_fetch_jwt(int argc, char **argv) {
        static const Option table[] = {
                API_COMMON_OPTIONS,
                {"audience", OPT_STRV, NULL, "Audience of the token (repeatable, required)"},
                {"spiffeID", OPT_STRING, NULL, "Only this SPIFFE ID (default: every identity)"},
        };
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(json_decrefp) json_t *arr = NULL;
        JWTSVIDRequest req = JWTSVIDREQUEST__INIT;
        JWTSVIDResponse *resp = NULL;
        char *const *aud;
        size_t n_aud = 0;
        ApiClient c;
        int r;

        r = api_parse("warden-agent api fetch jwt -audience A [-audience B] [-spiffeID ID] [flags]",
                      table, ELEMENTSOF(table), argc, argv, &o);
        if (r < 0)
                return r;
        aud = options_get_strv(o, "audience", &n_aud);
        if (n_aud == 0)
                return api_error("-audience is required");
        req.audience = (char **) aud;
        req.n_audience = n_aud;
        if (options_get_string(o, "spiffeID"))
                req.spiffe_id = (char *) options_get_string(o, "spiffeID");

        r = api_open(&c, o);
        if (r >= 0)
                r = api_unary(&c, "FetchJWTSVID", &req.base, &jwtsvidresponse__descriptor,
                              (ProtobufCMessage **) &resp);
        arr = json_array();
        for (size_t i = 0; r >= 0 && i < resp->n_svids; i++) {
                const JWTSVID *s = resp->svids[i];

                if (c.json)
                        json_array_append_new(arr,
                                              json_pack("{ss ss ss}", "spiffe_id", s->spiffe_id,
                                                        "hint", s->hint, "svid", s->svid));
                else if (*s->hint)
                        printf("token(%s) hint(%s):\n\t%s\n", s->spiffe_id, s->hint, s->svid);
                else
                        printf("token(%s):\n\t%s\n", s->spiffe_id, s->svid);
        }
        if (r >= 0 && c.json)
                r = api_print_json(json_pack("{sO}", "svids", arr), false);
        if (resp) {
                for (size_t i = 0; i < resp->n_svids; i++)
                        explicit_erase(resp->svids[i]->svid, strlen(resp->svids[i]->svid));
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        api_close(&c);
        return r;
}

int api_fetch_jwt_bundles(int argc, char **argv) {
        static const Option table[] = {API_COMMON_OPTIONS};
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_(json_decrefp) json_t *out = NULL;
        JWTBundlesResponse *resp = NULL;
        ApiClient c;
        int r;

        r = api_parse("warden-agent api fetch jwt bundles [flags]", table, ELEMENTSOF(table), argc,
                      argv, &o);
        if (r < 0)
                return r;
        r = api_open(&c, o);
        if (r >= 0)
                r = api_stream_first(&c, "FetchJWTBundles", &jwtbundles_response__descriptor,
                                     c.timeout_ms, (ProtobufCMessage **) &resp, NULL);
        out = json_object();
        for (size_t i = 0; r > 0 && i < resp->n_bundles; i++) {
                const JWTBundlesResponse__BundlesEntry *e = resp->bundles[i];
                json_t *jwks;

                if (!c.json) {
                        printf("bundle(%s):\n\t%.*s\n", e->key, (int) e->value.len,
                               (const char *) e->value.data);
                        continue;
                }
                jwks = json_loadb((const char *) e->value.data, e->value.len,
                                  JSON_REJECT_DUPLICATES, NULL);
                if (!jwks) {
                        r = api_error_errno(-EBADMSG, "malformed JWKS for %s", e->key);
                        break;
                }
                json_object_set_new(out, e->key, jwks);
        }
        if (r > 0 && c.json)
                r = api_print_json(json_pack("{sO}", "bundles", out), false);
        if (resp)
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        api_close(&c);
        return r;
}

/* -svid -: the token from stdin (keeps it out of the process list). */
static int read_token(const char *arg, char **ret) {
        char *buf;
        size_t n;

        if (!streq(arg, "-")) {
                *ret = strdup(arg);
                return *ret ? 0 : -ENOMEM;
        }
        buf = calloc(1, WARDEN_JWT_MAX + 2);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, WARDEN_JWT_MAX + 1, stdin);
        while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
                buf[--n] = 0;
        if (n > WARDEN_JWT_MAX) {
                erase_and_free(buf);
                return -E2BIG;
        }
        *ret = buf;
        return 0;
}

static int print_validated(const ValidateJWTSVIDResponse *resp, bool json) {
        _cleanup_(json_decrefp) json_t *claims = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        if (resp->claims) {
                r = wapi_struct_to_json(resp->claims, &claims);
                if (r < 0)
                        return api_error_errno(r, "malformed claims");
        } else
                claims = json_object();
        if (json)
                return api_print_json(
                        json_pack("{sssO}", "spiffe_id", resp->spiffe_id, "claims", claims), false);
        text = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
        printf("SVID is valid.\nSPIFFE ID : %s\nClaims    : %s\n", resp->spiffe_id, strempty(text));
        return 0;
}

int api_validate_jwt(int argc, char **argv) {
        static const Option table[] = {
                API_COMMON_OPTIONS,
                {"audience", OPT_STRING, NULL, "Audience the token must carry (required)"},
                {"svid", OPT_STRING, NULL, "The JWT-SVID (\"-\": read it from stdin; required)"},
        };
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_erase_ char *token = NULL;
        ValidateJWTSVIDRequest req = VALIDATE_JWTSVIDREQUEST__INIT;
        ValidateJWTSVIDResponse *resp = NULL;
        ApiClient c;
        int r;

        r = api_parse("warden-agent api validate jwt -audience A -svid TOKEN [flags]", table,
                      ELEMENTSOF(table), argc, argv, &o);
        if (r < 0)
                return r;
        if (!options_get_string(o, "audience"))
                return api_error("-audience is required");
        if (!options_get_string(o, "svid"))
                return api_error("-svid is required");
        r = read_token(options_get_string(o, "svid"), &token);
        if (r < 0)
                return api_error_errno(r, "-svid: %s",
                                       r == -E2BIG ? "token too large" : strerror(-r));
        req.audience = (char *) options_get_string(o, "audience");
        req.svid = token;

        r = api_open(&c, o);
        if (r >= 0)
                r = api_unary(&c, "ValidateJWTSVID", &req.base,
                              &validate_jwtsvidresponse__descriptor, (ProtobufCMessage **) &resp);
        if (r >= 0)
                r = print_validated(resp, c.json);
        if (resp)
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        api_close(&c);
        return r;
}
