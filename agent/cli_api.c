/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-agent api ...` and `warden-agent healthcheck`: verb dispatch and the
 * plumbing every Workload API command shares. */
#define _GNU_SOURCE
#include "cli_api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <grpc/status.h>

#include "cleanup.h"
#include "cli_api_internal.h"
#include "grpc/health/v1/health.pb-c.h"
#include "parse.h"
#include "rpc_status.h"
#include "spiffe/workload/workload.pb-c.h"

#define API_METHOD_PREFIX "/SpiffeWorkloadAPI/"

static const RpcMetadata api_header[] = {{"workload.spiffe.io", "true"}};

int api_error(const char *fmt, ...) {
        va_list ap;

        fputs("Error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EINVAL;
}

int api_error_errno(int r, const char *fmt, ...) {
        va_list ap;

        fputs("Error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r < 0 ? r : -EINVAL;
}

int api_socket_from_env(const char *value, char **ret, const char **reterr_reason) {
        const char *path = NULL, *why = NULL;

        if (!value || !*value)
                why = "empty address";
        else if (strneq(value, "unix://", 7))
                path = value + 7; /* no authority: unix:///abs/path */
        else if (strneq(value, "unix:", 5))
                path = value + 5;
        else if (strneq(value, "tcp:", 4))
                why = "tcp addresses are not supported, use a unix socket";
        else if (value[0] == '/')
                path = value;
        else
                why = "expected unix:///path or an absolute path";
        if (!why && path[0] != '/')
                why = "the unix socket path must be absolute";
        if (!why && strpbrk(path, "?#"))
                why = "query and fragment are not allowed";
        if (why) {
                if (reterr_reason)
                        *reterr_reason = why;
                return -EINVAL;
        }
        *ret = strdup(path);
        return *ret ? 0 : -ENOMEM;
}

static bool wants_help(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "-h") || streq(argv[i], "-help") || streq(argv[i], "--help"))
                        return true;
        return false;
}

int api_parse(
        const char *usage, const Option *table, size_t n, int argc, char **argv, Options **ret) {
        _cleanup_free_ char *msg = NULL;
        Options *o = NULL;
        size_t n_pos;
        char **pos;
        int r;

        if (wants_help(argc, argv)) {
                printf("Usage: %s\n\n", usage);
                fflush(stdout);
        }
        r = options_parse(table, n, argc, argv, &o, &msg);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return api_error_errno(r, "%s", msg ? msg : strerror(-r));
        pos = options_positional(o, &n_pos);
        if (n_pos > 0) {
                r = api_error("unexpected argument \"%s\" (flags are -name value)", pos[0]);
                options_free(o);
                return r;
        }
        *ret = o;
        return 0;
}

static int resolve_socket(const Options *o, char **ret) {
        const char *flag = options_get_string(o, "socketPath"), *env, *why = NULL;
        int r;

        if (flag) {
                if (flag[0] != '/')
                        return api_error("-socketPath: must be an absolute path, got \"%s\"", flag);
                *ret = strdup(flag);
                return *ret ? 0 : api_error_errno(-ENOMEM, "out of memory");
        }
        env = getenv("SPIFFE_ENDPOINT_SOCKET");
        if (env && *env) {
                r = api_socket_from_env(env, ret, &why);
                if (r < 0)
                        return api_error_errno(r, "SPIFFE_ENDPOINT_SOCKET=\"%s\": %s", env,
                                               why ? why : strerror(-r));
                return 0;
        }
        *ret = strdup(CLI_API_DEFAULT_SOCKET);
        return *ret ? 0 : api_error_errno(-ENOMEM, "out of memory");
}

int api_open(ApiClient *c, const Options *o) {
        const char *output = options_get_string(o, "output");
        int64_t timeout = options_get_duration(o, "timeout");
        int r;

        *c = (ApiClient){.timeout_ms = timeout > 0 ? timeout * 1000 : 5000};
        if (!streq(output, "text") && !streq(output, "json"))
                return api_error("-output: expected text or json, got \"%s\"", output);
        c->json = streq(output, "json");
        r = resolve_socket(o, &c->socket_path);
        if (r < 0)
                return r;
        r = rpc_unix_probe(c->socket_path);
        if (r < 0)
                return api_error_errno(r, "cannot connect to the agent at %s: %s", c->socket_path,
                                       strerror(-r));
        r = rpc_channel_new_unix(c->socket_path, &c->ch);
        if (r < 0)
                return api_error_errno(r, "cannot connect to the agent at %s: %s", c->socket_path,
                                       strerror(-r));
        return 0;
}

void api_close(ApiClient *c) {
        c->ch = rpc_channel_free(c->ch);
        free(c->socket_path);
        c->socket_path = NULL;
}

static int status_error(const char *method, int status, const char *message) {
        api_error("%s: %s: %s", method, rpc_status_to_string(status),
                  message && *message ? message : "(no message)");
        return rpc_status_to_errno(status);
}

int api_unary(ApiClient *c,
              const char *method,
              const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *desc,
              ProtobufCMessage **ret) {
        _cleanup_free_ char *path = NULL, *message = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ void *resp = NULL;
        size_t len, resp_len = 0;
        int status = GRPC_STATUS_UNKNOWN, r;
        ProtobufCMessage *m;

        if (asprintf(&path, API_METHOD_PREFIX "%s", method) < 0)
                return api_error_errno(-ENOMEM, "out of memory");
        len = protobuf_c_message_get_packed_size(req);
        buf = malloc(len + 1);
        if (!buf)
                return api_error_errno(-ENOMEM, "out of memory");
        protobuf_c_message_pack(req, buf);
        r = rpc_unary(c->ch, path, api_header, ELEMENTSOF(api_header), buf, len, c->timeout_ms,
                      &resp, &resp_len, &status, &message);
        if (r < 0)
                return api_error_errno(r, "%s: %s", method, strerror(-r));
        if (status != GRPC_STATUS_OK)
                return status_error(method, status, message);
        m = protobuf_c_message_unpack(desc, NULL, resp_len, resp);
        if (!m)
                return api_error_errno(-EBADMSG, "%s: malformed response", method);
        *ret = m;
        return 0;
}

int api_stream_open(ApiClient *c, const char *method, RpcStream **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, API_METHOD_PREFIX "%s", method) < 0)
                return api_error_errno(-ENOMEM, "out of memory");
        r = rpc_stream_open(c->ch, path, api_header, ELEMENTSOF(api_header), "", 0, ret);
        if (r < 0)
                return api_error_errno(r, "%s: %s", method, strerror(-r));
        return 0;
}

int api_stream_first(ApiClient *c,
                     const char *method,
                     const ProtobufCMessageDescriptor *desc,
                     int64_t timeout_ms,
                     ProtobufCMessage **ret,
                     RpcStream **ret_stream) {
        _cleanup_free_ char *message = NULL;
        _cleanup_free_ void *msg = NULL;
        RpcStream *st = NULL;
        ProtobufCMessage *m;
        size_t len = 0;
        int r, status = GRPC_STATUS_UNKNOWN;

        r = api_stream_open(c, method, &st);
        if (r < 0)
                return r;
        r = rpc_stream_next(st, timeout_ms, &msg, &len);
        if (r == 0) {
                (void) rpc_stream_status(st, &status, &message);
                r = status_error(method, status, message);
        } else if (r == -ETIMEDOUT)
                r = api_error_errno(r, "%s: no answer from the agent within %lld ms", method,
                                    (long long) timeout_ms);
        else if (r < 0)
                r = api_error_errno(r, "%s: %s", method, strerror(-r));
        else {
                m = protobuf_c_message_unpack(desc, NULL, len, msg);
                r = m ? 1 : api_error_errno(-EBADMSG, "%s: malformed response", method);
                if (m)
                        *ret = m;
        }
        if (r > 0 && ret_stream)
                *ret_stream = TAKE_PTR(st);
        rpc_stream_free(st);
        return r;
}

int api_print_json(json_t *j, bool compact) {
        if (!j)
                return api_error_errno(-ENOMEM, "out of memory");
        json_dumpf(j, stdout, compact ? JSON_COMPACT : JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(j);
        return 0;
}

char *api_format_time(int64_t t, char buf[static 32]) {
        return format_timestamp(t, buf, 32);
}

int64_t api_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- dispatch --- */

typedef struct ApiCommand {
        const char *words[3];
        int (*run)(int argc, char **argv);
        const char *help;
} ApiCommand;

static const ApiCommand api_commands[] = {
        {{"fetch", "x509"}, api_fetch_x509, "Fetch X.509-SVIDs [-write DIR]"},
        {{"fetch", "jwt", "bundles"}, api_fetch_jwt_bundles, "Fetch the JWT bundles (JWKS)"},
        {{"fetch", "jwt"}, api_fetch_jwt, "Fetch JWT-SVIDs -audience A [-spiffeID ID]"},
        {{"fetch", "bundles"}, api_fetch_x509_bundles, "Fetch the X.509 bundles"},
        {{"fetch", "x509", "bundles"}, api_fetch_x509_bundles, "Same as fetch bundles"},
        {{"validate", "jwt"}, api_validate_jwt, "Validate a JWT-SVID -audience A -svid TOKEN"},
        {{"watch"}, api_watch, "Print every X.509-SVID update as it arrives"},
};

/* Whether cmd's words start with the n words given. */
static bool has_prefix_words(const ApiCommand *cmd, char **words, size_t n) {
        for (size_t k = 0; k < n; k++)
                if (k >= 3 || !cmd->words[k] || !streq(cmd->words[k], words[k]))
                        return false;
        return true;
}

/* The commands whose first words are words[0..n) (all of them for n = 0). */
static void api_usage(FILE *f, char **words, size_t n) {
        fprintf(f, "Usage: warden-agent api <command> [flags]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(api_commands); i++) {
                char name[64] = "";

                if (!has_prefix_words(&api_commands[i], words, n))
                        continue;
                for (size_t k = 0; k < 3 && api_commands[i].words[k]; k++) {
                        if (k > 0)
                                strcat(name, " ");
                        strcat(name, api_commands[i].words[k]);
                }
                fprintf(f, "  %-20s %s\n", name, api_commands[i].help);
        }
        fprintf(f, "\nRun 'warden-agent api <command> -h' for the flags of a command.\n");
}

/* How many of argv[1..] are words (not flags) that begin some command, e.g. 1 for
 * "fetch -h": the usage then lists that family. */
static size_t prefix_words(int argc, char **argv) {
        size_t n = 0;

        while ((int) n + 1 < argc && n < 3 && argv[n + 1][0] != '-') {
                bool any = false;

                for (size_t i = 0; i < ELEMENTSOF(api_commands) && !any; i++)
                        any = has_prefix_words(&api_commands[i], argv + 1, n + 1);
                if (!any)
                        break;
                n++;
        }
        return n;
}

/* Number of words of cmd matching argv[1..], 0 when it does not match. */
static size_t match_words(const ApiCommand *cmd, int argc, char **argv) {
        size_t k = 0;

        for (; k < 3 && cmd->words[k]; k++)
                if ((int) k + 1 >= argc || !streq(argv[k + 1], cmd->words[k]))
                        return 0;
        return k;
}

static int exit_status(int r) {
        return r >= 0 || r == -ECANCELED ? 0 : 1;
}

int agent_cli_api(int argc, char **argv) {
        const ApiCommand *best = NULL;
        size_t best_n = 0;

        if (argc < 2) {
                api_usage(stderr, NULL, 0);
                return 1;
        }
        if (wants_help(2, argv) || streq(argv[1], "help")) {
                api_usage(stdout, NULL, 0);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(api_commands); i++) {
                size_t n = match_words(&api_commands[i], argc, argv);

                if (n > best_n) {
                        best = &api_commands[i];
                        best_n = n;
                }
        }
        if (!best) {
                size_t n = prefix_words(argc, argv);

                /* "api fetch -h": the usage of that family of commands. */
                if (n > 0 && wants_help(argc, argv)) {
                        api_usage(stdout, argv + 1, n);
                        return 0;
                }
                if (n > 0)
                        api_error("incomplete command \"api %s\"", argv[1]);
                else
                        api_error("unknown command \"api %s\"", argv[1]);
                api_usage(stderr, argv + 1, n);
                return 1;
        }
        return exit_status(best->run(argc - (int) best_n, argv + best_n));
}

/* --- healthcheck --- */

/* grpc.health.v1.Health/Check on the Workload API socket: no Workload API call, so a
 * user without an identity is neither refused nor counted. 0 SERVING, -EAGAIN NOT_SERVING
 * (no sync yet), other -errno for no answer. *ret_what says what went wrong. */
static int health_check(ApiClient *c, const char **ret_what, char **ret_detail) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        Grpc__Health__V1__HealthCheckResponse *resp;
        _cleanup_free_ void *out = NULL;
        uint8_t buf[8];
        size_t n, len = 0;
        int status = GRPC_STATUS_UNKNOWN, r;

        n = protobuf_c_message_pack(&req.base, buf);
        r = rpc_unary(c->ch, "/grpc.health.v1.Health/Check", NULL, 0, buf, n, c->timeout_ms, &out,
                      &len, &status, ret_detail);
        if (r < 0) {
                *ret_what = "request failed";
                return r;
        }
        if (status != GRPC_STATUS_OK) {
                *ret_what = rpc_status_to_string(status);
                return rpc_status_to_errno(status);
        }
        resp = grpc__health__v1__health_check_response__unpack(NULL, len, out);
        if (!resp) {
                *ret_what = "malformed health response";
                return -EBADMSG;
        }
        r = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                    ? 0
                    : -EAGAIN;
        *ret_what = r < 0 ? "NOT_SERVING (no identities synced from the server yet)" : "SERVING";
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return r;
}

static int healthcheck(int argc, char **argv) {
        static const Option table[] = {
                API_COMMON_OPTIONS,
                {"shallow", OPT_BOOL, "false", "Only check that the socket accepts connections"},
        };
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_free_ char *detail = NULL;
        const char *what = "SERVING";
        bool shallow, opened;
        ApiClient c;
        int r;

        r = api_parse("warden-agent healthcheck [flags]", table, ELEMENTSOF(table), argc, argv, &o);
        if (r < 0)
                return r;
        shallow = options_get_bool(o, "shallow");
        r = api_open(&c, o); /* says why on stderr when it fails */
        opened = r >= 0;
        if (!opened)
                what = "UNREACHABLE";
        else if (shallow)
                what = "ACCEPTING";
        else
                r = health_check(&c, &what, &detail);
        if (c.json) {
                json_t *j = json_pack("{s:b,s:s?,s:s}", "healthy", r >= 0, "socket", c.socket_path,
                                      "status", what);

                if (j && detail)
                        (void) json_object_set_new(j, "detail", json_string(detail));
                (void) api_print_json(j, false);
        } else if (r >= 0)
                printf("Agent is healthy.\n");
        else if (opened)
                (void) api_error_errno(r, "agent is unhealthy: %s%s%s", what, detail ? ": " : "",
                                       strempty(detail));
        api_close(&c);
        return r;
}

int agent_cli_healthcheck(int argc, char **argv) {
        return exit_status(healthcheck(argc, argv));
}
