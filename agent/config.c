/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-agent run` flags and config file -> AgentConfig, with validation. */
#define _GNU_SOURCE

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <warden/spiffeid.h>

#include "cleanup.h"
#include "health_http.h"
#include "log.h"
#include "options.h"
#include "path.h"

static const Option run_options[] = {
        {"trustDomain", OPT_STRING, NULL,
         "Trust domain of this agent, e.g. example.org (required)"},
        {"serverAddress", OPT_STRING, AGENT_DEFAULT_SERVER_ADDRESS,
         "Host name or IP address of the server's node API"},
        {"serverPort", OPT_PORT, "8081", "TCP port of the server's node API"},
        {"dataDir", OPT_STRING, AGENT_DEFAULT_DATA_DIR,
         "Directory for the node SVID, its key and the bundle (created 0700)"},
        {"socketPath", OPT_STRING, AGENT_DEFAULT_SOCKET_PATH,
         "Workload API Unix socket (mode 0777, directory 0755)"},
        {"joinToken", OPT_STRING, NULL, "Join token for node attestation"},
        {"joinTokenFile", OPT_STRING, NULL, "File holding the join token"},
        {"x509popCert", OPT_STRING, NULL, "PEM certificate chain for x509pop node attestation"},
        {"x509popKey", OPT_STRING, NULL, "PEM private key of -x509popCert"},
        {"trustBundle", OPT_STRING, NULL,
         "PEM CA certificates to trust the server on first contact"},
        {"logLevel", OPT_STRING, "info", "error, warning, info or debug"},
        {"workloadKeyType", OPT_STRING, "ec-p256",
         "Workload SVID key type: ec-p256, ec-p384 or rsa-2048"},
        {"healthAddress", OPT_STRING, NULL,
         "Loopback HOST:PORT serving /live, /ready and /metrics over HTTP (empty = off)"},
        {"maxConnections", OPT_INT, "1024",
         "Workload API connections of all users together (at the cap the oldest idle one "
         "is closed)"},
        {"maxConnectionsPerUID", OPT_INT, "64",
         "Workload API connections per uid (more are closed at once)"},
        {"maxCallsPerUID", OPT_INT, "256",
         "Concurrent Workload API calls per uid, open streams included (more get "
         "RESOURCE_EXHAUSTED)"},
        {"connectionIdleTimeout", OPT_DURATION, "60s",
         "Close a Workload API connection without any call for this long (0 = never)"},
        {"jwtMintRatePerUID", OPT_INT, "10",
         "New JWT-SVIDs (cache misses) per second per uid, bursts of 5 s worth (0 = no "
         "limit)"},
        {"jwtClockSkew", OPT_DURATION, "60s",
         "ValidateJWTSVID: how far nbf and iat may be in the future"},
        {"jwtExpiryLeeway", OPT_DURATION, "0",
         "ValidateJWTSVID: grace after exp (RFC 7519 wants none: valid only while now < exp)"},
        {"maxEntries", OPT_INT, "100000",
         "Registration entries (each with its X.509-SVID) kept at most; more are ignored "
         "with a warning (1..1000000)"},
};

void agent_config_print_help(FILE *f) {
        options_print_help(run_options, ELEMENTSOF(run_options), f);
}

void agent_config_done(AgentConfig *c) {
        if (!c)
                return;
        free(c->trust_domain);
        free(c->server_address);
        free(c->server_target);
        free(c->data_dir);
        free(c->socket_path);
        erase_and_free(c->join_token);
        free(c->join_token_file);
        free(c->x509pop_cert);
        free(c->x509pop_key);
        free(c->trust_bundle);
        free(c->health_address);
        *c = (AgentConfig){};
}

/* "-flag: what is wrong" message for *ret; returns -EINVAL. */
#define fail(ret, ...) options_fail_message(-EINVAL, (ret), __VA_ARGS__)

static int dup_opt(const Options *o, const char *name, char **ret) {
        const char *v = options_get_string(o, name);

        *ret = NULL;
        if (!v)
                return 0;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

/* Reads the token file: one line, surrounding whitespace dropped. */
static int read_token_file(const char *path, char **ret, char **reterr_message) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[AGENT_JOIN_TOKEN_MAX + 2];
        ssize_t n;
        size_t b = 0, e;

        if (fd < 0)
                return fail(reterr_message, "-joinTokenFile: cannot open %s: %s", path,
                            strerror(errno));
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return fail(reterr_message, "-joinTokenFile: cannot read %s: %s", path,
                            strerror(errno));
        if ((size_t) n > AGENT_JOIN_TOKEN_MAX) {
                explicit_erase(buf, sizeof(buf));
                return fail(reterr_message, "-joinTokenFile: %s is longer than %d bytes", path,
                            AGENT_JOIN_TOKEN_MAX);
        }
        e = (size_t) n;
        while (b < e && strchr(" \t\r\n", buf[b]))
                b++;
        while (e > b && strchr(" \t\r\n", buf[e - 1]))
                e--;
        *ret = strndup(buf + b, e - b);
        explicit_erase(buf, sizeof(buf));
        return *ret ? 0 : -ENOMEM;
}

static int config_strings(const Options *o, unsigned flags, AgentConfig *c, char **reterr_message) {
        if (dup_opt(o, "trustDomain", &c->trust_domain) < 0 ||
            dup_opt(o, "serverAddress", &c->server_address) < 0 ||
            dup_opt(o, "dataDir", &c->data_dir) < 0 ||
            dup_opt(o, "socketPath", &c->socket_path) < 0 ||
            dup_opt(o, "joinToken", &c->join_token) < 0 ||
            dup_opt(o, "joinTokenFile", &c->join_token_file) < 0 ||
            dup_opt(o, "x509popCert", &c->x509pop_cert) < 0 ||
            dup_opt(o, "x509popKey", &c->x509pop_key) < 0 ||
            dup_opt(o, "trustBundle", &c->trust_bundle) < 0)
                return -ENOMEM;
        /* An empty -healthAddress means off, like an unset one. */
        if (*strempty(options_get_string(o, "healthAddress")) &&
            dup_opt(o, "healthAddress", &c->health_address) < 0)
                return -ENOMEM;
        if (!c->trust_domain || !*c->trust_domain)
                return fail(reterr_message, "-trustDomain is required");
        if (!c->join_token_file)
                return 0;
        if (c->join_token)
                return fail(reterr_message, "-joinToken and -joinTokenFile are mutually exclusive");
        if (flags & AGENT_CONFIG_SKIP_TOKEN_FILE)
                return 0;
        return read_token_file(c->join_token_file, &c->join_token, reterr_message);
}

/* An OPT_INT/OPT_DURATION option within [min, max], or a message naming it. */
static int int_in_range(const Options *o,
                        const char *name,
                        int64_t min,
                        int64_t max,
                        int64_t *ret,
                        char **reterr_message) {
        int64_t v = options_get_int(o, name);

        if (v < min || v > max)
                return fail(reterr_message, "-%s: must be %" PRId64 "..%" PRId64 ", got %" PRId64,
                            name, min, max, v);
        *ret = v;
        return 0;
}

static int config_limits(const Options *o, AgentConfig *c, char **reterr_message) {
        int64_t conns = 0, per_uid = 0, calls = 0, idle = 0, rate = 0, skew = 0, leeway = 0,
                entries = 0;
        int r;

        r = int_in_range(o, "maxConnections", 1, AGENT_MAX_CONNECTIONS_MAX, &conns, reterr_message);
        if (r >= 0)
                r = int_in_range(o, "maxConnectionsPerUID", 1, conns, &per_uid, reterr_message);
        if (r >= 0)
                r = int_in_range(o, "maxCallsPerUID", 1, AGENT_MAX_CALLS_PER_UID_MAX, &calls,
                                 reterr_message);
        if (r >= 0)
                r = int_in_range(o, "connectionIdleTimeout", 0, 7 * 24 * 3600, &idle,
                                 reterr_message);
        if (r >= 0)
                r = int_in_range(o, "jwtMintRatePerUID", 0, 100000, &rate, reterr_message);
        if (r >= 0)
                r = int_in_range(o, "jwtClockSkew", 0, 3600, &skew, reterr_message);
        if (r >= 0)
                r = int_in_range(o, "jwtExpiryLeeway", 0, 3600, &leeway, reterr_message);
        if (r >= 0)
                r = int_in_range(o, "maxEntries", 1, AGENT_MAX_ENTRIES_MAX, &entries,
                                 reterr_message);
        if (r < 0)
                return r;
        c->max_connections = (unsigned) conns;
        c->max_connections_per_uid = (unsigned) per_uid;
        c->max_calls_per_uid = (unsigned) calls;
        c->idle_timeout_sec = idle;
        c->jwt_mint_rate = (unsigned) rate;
        c->jwt_clock_skew_sec = skew;
        c->jwt_expiry_leeway_sec = leeway;
        c->max_entries = (size_t) entries;
        return 0;
}

static int config_values(const Options *o, AgentConfig *c, char **reterr_message) {
        const char *level = options_get_string(o, "logLevel");
        const char *kt = options_get_string(o, "workloadKeyType");
        bool v6;
        int r;

        r = log_level_from_string(level);
        if (r < 0)
                return fail(reterr_message,
                            "-logLevel: unknown level \"%s\" (use error, warning, info or debug)",
                            level);
        c->log_level = r;
        r = warden_key_type_from_string(kt);
        if (r < 0)
                return fail(reterr_message,
                            "-workloadKeyType: unknown key type \"%s\" (use ec-p256, ec-p384 or "
                            "rsa-2048)",
                            kt);
        c->workload_key_type = (WardenKeyType) r;
        r = config_limits(o, c, reterr_message);
        if (r < 0)
                return r;
        c->server_port = options_get_port(o, "serverPort");
        if (c->server_port == 0)
                return fail(reterr_message, "-serverPort: must not be 0");
        v6 = c->server_address && strchr(c->server_address, ':');
        if (asprintf(&c->server_target, v6 ? "[%s]:%u" : "%s:%u", strempty(c->server_address),
                     (unsigned) c->server_port) < 0) {
                c->server_target = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int validate_attestation(const AgentConfig *c, char **reterr_message) {
        int r = 0;

        if (!!c->x509pop_cert != !!c->x509pop_key)
                return fail(reterr_message, "-x509popCert and -x509popKey go together");
        if ((c->join_token || c->join_token_file) && c->x509pop_cert)
                return fail(reterr_message, "use either a join token or x509pop, not both");
        if (c->join_token && (!*c->join_token || strlen(c->join_token) > AGENT_JOIN_TOKEN_MAX))
                return fail(reterr_message, "join token: must be 1..%d bytes",
                            AGENT_JOIN_TOKEN_MAX);
        if (c->x509pop_cert) {
                r = options_check_readable_file("x509popCert", c->x509pop_cert, reterr_message);
                if (r >= 0)
                        r = options_check_readable_file("x509popKey", c->x509pop_key,
                                                        reterr_message);
        }
        if (r >= 0 && c->trust_bundle)
                r = options_check_readable_file("trustBundle", c->trust_bundle, reterr_message);
        return r;
}

int agent_config_validate(const AgentConfig *c, char **reterr_message) {
        const char *reason = NULL;
        int r;

        if (!c->trust_domain || warden_trust_domain_validate(c->trust_domain, &reason) < 0)
                return fail(reterr_message, "-trustDomain: invalid trust domain \"%s\": %s",
                            strempty(c->trust_domain), strna(reason));
        if (!c->server_address || !*c->server_address)
                return fail(reterr_message, "-serverAddress: must not be empty");
        if (!c->data_dir || !*c->data_dir)
                return fail(reterr_message, "-dataDir: must not be empty");
        if (!c->socket_path || c->socket_path[0] != '/')
                return fail(reterr_message, "-socketPath: must be an absolute path, got \"%s\"",
                            strempty(c->socket_path));
        if (strlen(c->socket_path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return fail(reterr_message, "-socketPath: longer than %zu bytes",
                            sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1);
        if (path_is_below(c->socket_path, c->data_dir))
                return fail(reterr_message,
                            "-socketPath: %s is inside -dataDir %s, which only the agent may "
                            "enter (0700): workloads of other users could not connect; put "
                            "the socket elsewhere (default " AGENT_DEFAULT_SOCKET_PATH ")",
                            c->socket_path, c->data_dir);
        if (c->workload_key_type < 0 || c->workload_key_type >= _WARDEN_KEY_TYPE_MAX)
                return fail(reterr_message, "-workloadKeyType: unknown key type");
        r = health_http_check_address_option(c->health_address, reterr_message);
        if (r < 0)
                return r;
        return validate_attestation(c, reterr_message);
}

/* The join token counts as changed when the flag's value or the file's name did;
 * a file's content is read at start only. */
static bool join_token_same(const AgentConfig *cur, const AgentConfig *next) {
        if (cur->join_token_file || next->join_token_file)
                return streq_ptr(cur->join_token_file, next->join_token_file);
        return streq_ptr(cur->join_token, next->join_token);
}

size_t agent_config_restart_changes(const AgentConfig *cur,
                                    const AgentConfig *next,
                                    const char **ret,
                                    size_t max) {
        const struct {
                const char *name;
                bool same;
        } fields[] = {
                {"trustDomain", streq_ptr(cur->trust_domain, next->trust_domain)},
                {"serverAddress", streq_ptr(cur->server_address, next->server_address)},
                {"serverPort", cur->server_port == next->server_port},
                {"dataDir", streq_ptr(cur->data_dir, next->data_dir)},
                {"socketPath", streq_ptr(cur->socket_path, next->socket_path)},
                {"joinToken", join_token_same(cur, next)},
                {"x509popCert", streq_ptr(cur->x509pop_cert, next->x509pop_cert)},
                {"x509popKey", streq_ptr(cur->x509pop_key, next->x509pop_key)},
                {"trustBundle", streq_ptr(cur->trust_bundle, next->trust_bundle)},
                {"healthAddress", streq_ptr(cur->health_address, next->health_address)},
                {"maxConnections", cur->max_connections == next->max_connections},
                {"maxConnectionsPerUID",
                 cur->max_connections_per_uid == next->max_connections_per_uid},
                {"maxCallsPerUID", cur->max_calls_per_uid == next->max_calls_per_uid},
                {"connectionIdleTimeout", cur->idle_timeout_sec == next->idle_timeout_sec},
                {"jwtMintRatePerUID", cur->jwt_mint_rate == next->jwt_mint_rate},
                {"jwtClockSkew", cur->jwt_clock_skew_sec == next->jwt_clock_skew_sec},
                {"jwtExpiryLeeway", cur->jwt_expiry_leeway_sec == next->jwt_expiry_leeway_sec},
                {"maxEntries", cur->max_entries == next->max_entries},
        };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (fields[i].same)
                        continue;
                if (ret && n < max)
                        ret[n] = fields[i].name;
                n++;
        }
        return n;
}

int agent_config_parse(int argc, char **argv, AgentConfig *ret, char **reterr_message) {
        return agent_config_parse_flags(argc, argv, 0, ret, reterr_message);
}

int agent_config_parse_flags(
        int argc, char **argv, unsigned flags, AgentConfig *ret, char **reterr_message) {
        _cleanup_(options_freep) Options *o = NULL;
        AgentConfig c = {};
        size_t n_pos;
        char **pos;
        int r;

        r = options_parse(run_options, ELEMENTSOF(run_options), argc, argv, &o, reterr_message);
        if (r < 0)
                return r;
        pos = options_positional(o, &n_pos);
        if (n_pos > 0)
                return fail(reterr_message, "unexpected argument \"%s\"", pos[0]);
        r = config_strings(o, flags, &c, reterr_message);
        if (r >= 0)
                r = config_values(o, &c, reterr_message);
        if (r >= 0)
                r = agent_config_validate(&c, reterr_message);
        if (r < 0) {
                agent_config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}
