/* SPDX-License-Identifier: Apache-2.0 */
/* Shared CLI plumbing: verb dispatch, flag parsing with usage, connecting to the
 * admin socket, calls with one-line errors, JSON output. */
#define _GNU_SOURCE

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>

#include "cleanup.h"
#include "file.h"
#include "parse.h"
#include "pb_util.h"
#include "rpc_status.h"
#include "selector.h"

#define ADMIN_METHOD_PREFIX "/warden.admin.v1.Admin/"

int cli_error(const char *fmt, ...) {
        va_list ap;

        fputs("Error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EINVAL;
}

int cli_error_errno(int r, const char *fmt, ...) {
        va_list ap;

        fputs("Error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r < 0 ? r : -r;
}

static void print_verbs(FILE *f, const char *noun, const CliVerb *verbs, size_t n) {
        fprintf(f, "Usage: warden-server %s <command> [flags]\n\nCommands:\n", noun);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
        fprintf(f, "\nRun 'warden-server %s <command> -h' for the flags of a command.\n", noun);
}

int cli_run(int (*run)(int argc, char **argv), int argc, char **argv) {
        int r = run(argc, argv);

        if (r == -ECANCELED)
                return 0;
        return r < 0 ? 1 : 0;
}

int cli_dispatch(const CliVerb *verbs, size_t n, int argc, char **argv) {
        const char *noun = argv[0];

        if (argc < 2) {
                print_verbs(stderr, noun, verbs, n);
                return 1;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "-help") || streq(argv[1], "--help") ||
            (streq(argv[1], "help") && argc == 2)) {
                print_verbs(stdout, noun, verbs, n);
                return 0;
        }
        if (streq(argv[1], "help")) {
                /* `<noun> help <verb>`: the verb's own -h. */
                char *help_argv[] = {argv[2], (char *) "-h", NULL};

                for (size_t i = 0; i < n; i++)
                        if (streq(verbs[i].name, argv[2]))
                                return cli_run(verbs[i].run, 2, help_argv);
                cli_error("unknown command \"%s %s\" (run 'warden-server %s -h' for the commands)",
                          noun, argv[2], noun);
                return 1;
        }
        for (size_t i = 0; i < n; i++)
                if (streq(verbs[i].name, argv[1]))
                        return cli_run(verbs[i].run, argc - 1, argv + 1);
        cli_error("unknown command \"%s %s\" (run 'warden-server %s -h' for the commands)", noun,
                  argv[1], noun);
        return 1;
}

/* Whether the flags ask for help, walking them the way options_parse() does (so a
 * value that happens to be "-h" is not mistaken for a help flag). */
static bool wants_help(const Option *table, size_t n, int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *name;
                size_t len;
                const Option *opt = NULL;

                if (streq(a, "--") || a[0] != '-' || a[1] == '\0')
                        return false;
                name = a + (a[1] == '-' ? 2 : 1);
                len = strcspn(name, "=");
                if ((len == 1 && name[0] == 'h') || (len == 4 && strneq(name, "help", 4)))
                        return true;
                for (size_t j = 0; j < n; j++)
                        if (strlen(table[j].name) == len && strneq(table[j].name, name, len))
                                opt = &table[j];
                if (name[len] == '\0' && (!opt || opt->type != OPT_BOOL))
                        i++; /* skip its value */
        }
        return false;
}

int cli_parse(
        const char *usage, const Option *table, size_t n, int argc, char **argv, Options **ret) {
        _cleanup_free_ char *msg = NULL;
        size_t n_pos;
        char **pos;
        Options *o = NULL;
        int r;

        if (wants_help(table, n, argc, argv)) {
                printf("Usage: %s\n\n", usage);
                fflush(stdout);
        }
        r = options_parse(table, n, argc, argv, &o, &msg);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return cli_error_errno(r, "%s", msg ? msg : strerror(-r));
        pos = options_positional(o, &n_pos);
        if (n_pos > 0) {
                r = cli_error("unexpected argument \"%s\" (flags are -name value)", pos[0]);
                options_free(o);
                return r;
        }
        *ret = o;
        return 0;
}

int cli_open(Cli *cli, const Options *o) {
        const char *output = options_get_string(o, "output");
        const char *path = options_get_string(o, "socketPath");
        int r;

        *cli = (Cli){.socket_path = path};
        if (!streq(output, "text") && !streq(output, "json"))
                return cli_error("-output: expected text or json, got \"%s\"", output);
        cli->json = streq(output, "json");
        if (!path || path[0] != '/')
                return cli_error("-socketPath: must be an absolute path, got \"%s\"",
                                 strempty(path));
        r = rpc_unix_probe(path);
        if (r < 0)
                return cli_error_errno(r, "cannot connect to the server at %s: %s", path,
                                       strerror(-r));
        r = rpc_channel_new_unix(path, &cli->ch);
        if (r < 0)
                return cli_error_errno(r, "cannot connect to the server at %s: %s", path,
                                       strerror(-r));
        return 0;
}

void cli_done(Cli *cli) {
        cli->ch = rpc_channel_free(cli->ch);
}

/* Sets *ret (if not NULL) to a malloc'd message; returns r. */
__attribute__((format(printf, 3, 4))) static int call_fail(int r,
                                                           char **ret,
                                                           const char *fmt,
                                                           ...) {
        va_list ap;

        va_start(ap, fmt);
        if (ret && vasprintf(ret, fmt, ap) < 0)
                *ret = NULL;
        va_end(ap);
        return r;
}

int cli_call_quiet(Cli *cli,
                   const char *method,
                   const void *req,
                   const ProtobufCMessageDescriptor *resp_desc,
                   void **ret,
                   char **reterr_message) {
        _cleanup_free_ char *path = NULL, *message = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ void *resp = NULL;
        size_t len = 0, resp_len = 0;
        int status = GRPC_STATUS_UNKNOWN, r;
        void *m;

        if (asprintf(&path, ADMIN_METHOD_PREFIX "%s", method) < 0)
                return call_fail(-ENOMEM, reterr_message, "out of memory");
        r = pb_pack(req, &buf, &len);
        if (r >= 0)
                r = rpc_unary(cli->ch, path, NULL, 0, buf, len, CLI_CALL_TIMEOUT_MS, &resp,
                              &resp_len, &status, &message);
        if (r < 0)
                return call_fail(r, reterr_message, "%s failed: %s", method, strerror(-r));
        if (status == GRPC_STATUS_UNAVAILABLE)
                return call_fail(rpc_status_to_errno(status), reterr_message,
                                 "cannot connect to the server at %s: %s", cli->socket_path,
                                 message && *message ? message : "unavailable");
        if (status != GRPC_STATUS_OK)
                return call_fail(rpc_status_to_errno(status), reterr_message, "%s",
                                 message && *message ? message : rpc_status_to_string(status));
        m = protobuf_c_message_unpack(resp_desc, NULL, resp_len, resp);
        if (!m)
                return call_fail(-EBADMSG, reterr_message, "malformed answer from the server to %s",
                                 method);
        *ret = m;
        return 0;
}

int cli_call(Cli *cli,
             const char *method,
             const void *req,
             const ProtobufCMessageDescriptor *resp_desc,
             void **ret) {
        _cleanup_free_ char *msg = NULL;
        int r;

        r = cli_call_quiet(cli, method, req, resp_desc, ret, &msg);
        if (r < 0)
                return cli_error_errno(r, "%s", msg ? msg : strerror(-r));
        return 0;
}

int cli_print_json(json_t *j) {
        char *s;

        if (!j)
                return cli_error_errno(-ENOMEM, "out of memory");
        s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!s)
                return cli_error_errno(-ENOMEM, "out of memory");
        puts(s);
        free(s);
        return 0;
}

int cli_ttl(const Options *o, const char *flag, int64_t max, int32_t *ret) {
        int64_t v = options_get_duration(o, flag);

        if (v < 0 || v > max || v > INT32_MAX)
                return cli_error("-%s: must be between 0s and %llds", flag, (long long) max);
        *ret = (int32_t) v;
        return 0;
}

char *cli_format_time(int64_t t, char buf[static 32]) {
        if (t == 0)
                snprintf(buf, 32, "never");
        else
                format_timestamp(t, buf, 32);
        return buf;
}

json_t *cli_json_time(int64_t t) {
        char buf[TIMESTAMP_STRING_MAX];

        return t == 0 ? json_null() : json_string(format_timestamp(t, buf, sizeof(buf)));
}

int cli_time_from_json(json_t *v, int64_t *ret) {
        if (json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0 || json_integer_value(v) > TIMESTAMP_MAX)
                        return -EINVAL;
                *ret = json_integer_value(v);
                return 0;
        }
        if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
                return parse_timestamp(json_string_value(v), ret) < 0 ? -EINVAL : 0;
        return -EINVAL;
}

int cli_time_flag(const Options *o, const char *flag, int64_t *ret) {
        const char *v = options_get_string(o, flag);
        int r;

        r = parse_timestamp(v, ret);
        if (r == -ERANGE)
                return cli_error("-%s: \"%s\" is out of range (1970 .. 9999)", flag, v);
        if (r < 0)
                return cli_error("-%s: expected a time as 2026-01-01T00:00:00Z or Unix seconds, "
                                 "got \"%s\"",
                                 flag, strempty(v));
        return 0;
}

int cli_write_file(const char *path, const char *data, size_t len, mode_t mode) {
        int r = file_write_atomic(path, data, len, mode);

        if (r < 0)
                return cli_error_errno(r, "cannot write %s: %s", path, strerror(-r));
        return 0;
}

void cli_selectors_free(Warden__Types__V1__Selector **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                pb_free(v[i]);
        free(v);
}

int cli_selector_filter(const Options *o, Warden__Types__V1__Selector ***ret, size_t *ret_n) {
        char *const *sel = options_get_strv(o, "selector", NULL);
        _cleanup_(selector_set_done) SelectorSet set = {};
        const char *reason = NULL;
        int r;

        for (size_t i = 0; sel && sel[i]; i++) {
                r = selector_set_add_string(&set, sel[i], &reason);
                if (r == -E2BIG)
                        return cli_error("too many -selector flags (at most %d)",
                                         WARDEN_SELECTORS_MAX);
                if (r == -ENOMEM)
                        return cli_error_errno(r, "out of memory");
                if (r < 0)
                        return cli_error("invalid -selector \"%s\": %s", sel[i], strna(reason));
        }
        *ret = NULL;
        *ret_n = 0;
        if (set.n == 0)
                return 0;
        r = pb_from_selectors(&set, ret, ret_n);
        return r < 0 ? cli_error_errno(r, "out of memory") : 0;
}

int cli_match_flag(const Options *o, const char **ret) {
        static const char *const modes[] = {"exact", "subset", "superset", "any"};
        const char *m = options_get_string(o, "matchSelectorsOn");

        if (!m || !*m) {
                *ret = "";
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                if (streq(m, modes[i])) {
                        *ret = m;
                        return 0;
                }
        return cli_error("-matchSelectorsOn: expected exact, subset, superset or any, got \"%s\"",
                         m);
}

json_t *cli_json_string(const char *s) {
        json_t *j = json_string(s ? s : "");

        /* Not UTF-8 (a peer's bytes): never drop the key, show that it was unreadable. */
        return j ? j : json_string("(invalid UTF-8)");
}
