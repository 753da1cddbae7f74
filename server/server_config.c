/* SPDX-License-Identifier: Apache-2.0 */
/* `warden-server run` flags and config file → ServerConfig, with validation. */
#define _GNU_SOURCE

#include "server_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "entry.h"
#include "health_http.h"
#include "log.h"
#include "options.h"
#include "parse.h"
#include "sign_pool.h"
#include "strv.h"

#define ADMIN_UIDS_MAX 64
#define MIB (1024LL * 1024)

static const Option run_options[] = {
        {"trustDomain", OPT_STRING, NULL,
         "Trust domain of this server, e.g. example.org (required)"},
        {"dataDir", OPT_STRING, SERVER_DEFAULT_DATA_DIR,
         "Directory for the datastore and the CA keys (created 0700)"},
        {"bindAddress", OPT_STRING, SERVER_DEFAULT_BIND_ADDRESS, "IP address of the node API"},
        {"serverPort", OPT_PORT, "8081", "TCP port of the node API (0 = any free port, logged)"},
        {"socketPath", OPT_STRING, SERVER_DEFAULT_SOCKET_PATH, "Admin API Unix socket (mode 0770)"},
        {"logLevel", OPT_STRING, "info", "error, warning, info or debug"},
        {"defaultX509SVIDTTL", OPT_DURATION, "1h", "Default (and maximum) X509-SVID lifetime"},
        {"defaultJWTSVIDTTL", OPT_DURATION, "5m", "Default (and maximum) JWT-SVID lifetime"},
        {"caTTL", OPT_DURATION, "24h", "Lifetime of each signing CA and JWT key"},
        {"caKeyType", OPT_STRING, "ec-p256", "CA and JWT key type: ec-p256, ec-p384 or rsa-2048"},
        {"upstreamCA", OPT_STRING, NULL,
         "cert.pem,key.pem of an upstream CA that signs our CA (default: self-signed)"},
        {"x509popCA", OPT_STRING, NULL, "PEM CA certificates for x509pop node attestation"},
        {"adminUIDs", OPT_STRV, NULL,
         "Extra uids (or user names, comma-separated, repeatable) allowed on the admin socket"},
        {"healthAddress", OPT_STRING, NULL,
         "Loopback HOST:PORT serving /live, /ready and /metrics over HTTP (empty = off)"},
        {"minX509SVIDTTL", OPT_DURATION, "30s",
         "Shortest X509-SVID lifetime an entry may ask for (and -defaultX509SVIDTTL's floor)"},
        {"minJWTSVIDTTL", OPT_DURATION, "10s",
         "Shortest JWT-SVID lifetime an entry may ask for (and -defaultJWTSVIDTTL's floor)"},
        {"forceNewCA", OPT_BOOL, "false",
         "Create a new CA although <dataDir>/ca is missing and the datastore records one"},
        {"datastoreCacheMiB", OPT_INT, "64", "SQLite page cache of the datastore, in MiB"},
        {"datastoreMmapMiB", OPT_INT, "0",
         "Memory-mapped reads of the datastore file, in MiB (0 = off)"},
        {"nodeMaxConnections", OPT_INT, "8192",
         "Node API TCP connections in all (lowered to what the open file limit allows)"},
        {"nodeMaxUnauthPerSource", OPT_INT, "64",
         "Node API connections per client IP address without a call made with a node SVID "
         "yet (0 = no cap)"},
        {"nodeHandshakeTimeout", OPT_DURATION, "10s",
         "A node API connection without a call made with a node SVID this long after "
         "connecting (TLS handshake and attestation included) is closed (0 = never)"},
        {"attestRatePerSource", OPT_INT, "10",
         "Node attestation attempts per second per client IP address, bursts of 2 s worth; "
         "beyond, RESOURCE_EXHAUSTED (0 = no limit)"},
        {"maxEntriesPerAgent", OPT_INT, "100000",
         "Registration entries one agent is served at most (Sync, signing); beyond, the "
         "first ones by id and a warning"},
        {"signingThreads", OPT_INT, "-1",
         "Threads that verify CSRs and sign SVIDs for agents (-1 = one per online CPU, "
         "0 = on the main thread)"},
};

void server_config_print_help(FILE *f) {
        options_print_help(run_options, ELEMENTSOF(run_options), f);
}

void server_config_done(ServerConfig *c) {
        if (!c)
                return;
        free(c->trust_domain);
        free(c->data_dir);
        free(c->bind_address);
        free(c->socket_path);
        free(c->upstream_cert);
        free(c->upstream_key);
        free(c->x509pop_ca);
        free(c->admin_uids);
        free(c->health_address);
        *c = (ServerConfig){};
}

void server_config_problems_done(ConfigProblems *p) {
        if (!p)
                return;
        strv_free(p->v, p->n);
        *p = (ConfigProblems){};
}

/* Records one "-flag: what is wrong" problem; returns -EINVAL (-ENOMEM when it cannot be
 * recorded, which ends the check). */
__attribute__((format(printf, 2, 3))) static int fail(ConfigProblems *p, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (k < 0 || strv_push(&p->v, &p->n, m) < 0)
                return -ENOMEM;
        return -EINVAL;
}

/* Records the message of a check that reports through char **reterr_message. */
static int fail_message(ConfigProblems *p, int r, char *msg) {
        _cleanup_free_ char *m = msg;

        if (r >= 0 || r == -ENOMEM || !m)
                return r >= 0 ? 0 : -ENOMEM;
        return strv_push(&p->v, &p->n, m) < 0 ? -ENOMEM : -EINVAL;
}

/* Ends a group of independent checks: -ENOMEM stops everything, -EINVAL does not. */
static int keep_going(int r) {
        return r == -ENOMEM ? r : 0;
}

int server_config_parse_uids(const char *s, uid_t **uids, size_t *n, const char **reterr_bad) {
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL, *tok;

        if (!copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                size_t len;
                uid_t uid, *l;

                tok += strspn(tok, " \t");
                len = strlen(tok);
                while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
                        tok[--len] = '\0';
                if (parse_uid(tok, &uid) < 0) {
                        if (reterr_bad)
                                *reterr_bad = s + (tok - copy);
                        return -EINVAL;
                }
                if (*n >= ADMIN_UIDS_MAX)
                        return -E2BIG;
                l = reallocarray(*uids, *n + 1, sizeof(uid_t));
                if (!l)
                        return -ENOMEM;
                *uids = l;
                l[(*n)++] = uid;
        }
        return 0;
}

static int config_upstream(const Options *o, ServerConfig *c, ConfigProblems *p) {
        const char *up = options_get_string(o, "upstreamCA"), *comma;

        if (!up)
                return 0;
        comma = strchr(up, ',');
        if (!comma || comma == up || !comma[1] || strchr(comma + 1, ','))
                return keep_going(
                        fail(p, "-upstreamCA: expected CERT.pem,KEY.pem, got \"%s\"", up));
        c->upstream_cert = strndup(up, (size_t) (comma - up));
        c->upstream_key = strdup(comma + 1);
        return c->upstream_cert && c->upstream_key ? 0 : -ENOMEM;
}

static int config_strings(const Options *o, ServerConfig *c, ConfigProblems *p) {
        const char *td = options_get_string(o, "trustDomain");

        if (!td || !*td) {
                if (fail(p, "-trustDomain is required") == -ENOMEM)
                        return -ENOMEM;
        } else if (!(c->trust_domain = strdup(td)))
                return -ENOMEM;
        c->data_dir = strdup(options_get_string(o, "dataDir"));
        c->bind_address = strdup(options_get_string(o, "bindAddress"));
        c->socket_path = strdup(options_get_string(o, "socketPath"));
        if (!c->data_dir || !c->bind_address || !c->socket_path)
                return -ENOMEM;
        if (config_upstream(o, c, p) < 0)
                return -ENOMEM;
        if (options_get_string(o, "x509popCA")) {
                c->x509pop_ca = strdup(options_get_string(o, "x509popCA"));
                if (!c->x509pop_ca)
                        return -ENOMEM;
        }
        /* An empty -healthAddress means off, like an unset one. */
        if (*strempty(options_get_string(o, "healthAddress"))) {
                c->health_address = strdup(options_get_string(o, "healthAddress"));
                if (!c->health_address)
                        return -ENOMEM;
        }
        return 0;
}

static int config_uids(const Options *o, ServerConfig *c, ConfigProblems *p) {
        char *const *uids = options_get_strv(o, "adminUIDs", NULL);
        int r;

        for (size_t i = 0; uids && uids[i]; i++) {
                const char *bad = NULL;
                r = server_config_parse_uids(uids[i], &c->admin_uids, &c->n_admin_uids, &bad);
                if (r == -EINVAL)
                        return fail(p, "-adminUIDs: no such user or bad uid \"%s\"",
                                    bad ? bad : uids[i]);
                if (r == -E2BIG)
                        return fail(p, "-adminUIDs: more than %d uids", ADMIN_UIDS_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An OPT_INT flag within min..max into *ret (unchanged and a problem noted otherwise). */
static int int_in_range(const Options *o,
                        const char *name,
                        int64_t min,
                        int64_t max,
                        unsigned *ret,
                        ConfigProblems *p) {
        int64_t v = options_get_int(o, name);

        if (v < min || v > max)
                return fail(p, "-%s: must be %" PRId64 "..%" PRId64 ", got %" PRId64, name, min,
                            max, v);
        *ret = (unsigned) v;
        return 0;
}

static int config_node_limits(const Options *o, ServerConfig *c, ConfigProblems *p) {
        int64_t t = options_get_duration(o, "nodeHandshakeTimeout"), v;
        int r = 0;

        if (int_in_range(o, "nodeMaxConnections", 1, 1000000, &c->node_max_connections, p) ==
                    -ENOMEM ||
            int_in_range(o, "nodeMaxUnauthPerSource", 0, 1000000, &c->node_max_unauth_per_source,
                         p) == -ENOMEM ||
            int_in_range(o, "attestRatePerSource", 0, 100000, &c->attest_rate_per_source, p) ==
                    -ENOMEM ||
            int_in_range(o, "maxEntriesPerAgent", 1, 10000000, &c->max_entries_per_agent, p) ==
                    -ENOMEM)
                return -ENOMEM;
        v = options_get_int(o, "signingThreads");
        if (v == -1)
                c->signing_threads = sign_pool_default_threads();
        else if (v >= 0 && v <= SIGN_POOL_THREADS_MAX)
                c->signing_threads = (unsigned) v;
        else if (fail(p, "-signingThreads: must be -1 (one per online CPU) or 0..%d, got %" PRId64,
                      SIGN_POOL_THREADS_MAX, v) == -ENOMEM)
                return -ENOMEM;
        if (t < 0 || t > 3600)
                r = fail(p, "-nodeHandshakeTimeout: must be 0..1h");
        else
                c->node_handshake_timeout = t;
        return r;
}

static int config_values(const Options *o, ServerConfig *c, ConfigProblems *p) {
        const char *level = options_get_string(o, "logLevel");
        const char *kt = options_get_string(o, "caKeyType");
        int r;

        r = log_level_from_string(level);
        if (r < 0 && fail(p, "-logLevel: unknown level \"%s\" (use error, warning, info or debug)",
                          level) == -ENOMEM)
                return -ENOMEM;
        c->log_level = r < 0 ? LOG_INFO : r;
        r = warden_key_type_from_string(kt);
        if (r < 0 &&
            fail(p, "-caKeyType: unknown key type \"%s\" (use ec-p256, ec-p384 or rsa-2048)", kt) ==
                    -ENOMEM)
                return -ENOMEM;
        c->ca_key_type = r < 0 ? WARDEN_KEY_EC_P256 : (WardenKeyType) r;
        c->port = options_get_port(o, "serverPort");
        c->default_x509_ttl = options_get_duration(o, "defaultX509SVIDTTL");
        c->default_jwt_ttl = options_get_duration(o, "defaultJWTSVIDTTL");
        c->min_x509_ttl = options_get_duration(o, "minX509SVIDTTL");
        c->min_jwt_ttl = options_get_duration(o, "minJWTSVIDTTL");
        c->ca_ttl = options_get_duration(o, "caTTL");
        c->force_new_ca = options_get_bool(o, "forceNewCA");
        c->ds_cache_mib = options_get_int(o, "datastoreCacheMiB");
        c->ds_mmap_mib = options_get_int(o, "datastoreMmapMiB");
        r = keep_going(config_node_limits(o, c, p));
        if (r < 0)
                return r;
        return keep_going(config_uids(o, c, p));
}

static int validate_ttl(const char *flag, int64_t ttl, int64_t max, ConfigProblems *p) {
        char buf[DURATION_STRING_MAX], maxbuf[DURATION_STRING_MAX];

        if (ttl <= 0)
                return fail(p, "-%s: must be longer than 0s", flag);
        if (ttl > max)
                return fail(p, "-%s: %s is longer than the maximum %s", flag,
                            format_duration(ttl, buf, sizeof(buf)),
                            format_duration(max, maxbuf, sizeof(maxbuf)));
        return 0;
}

/* A default SVID lifetime and its floor. */
static int validate_min_ttl(
        const char *flag, int64_t ttl, const char *min_flag, int64_t min, ConfigProblems *p) {
        char a[DURATION_STRING_MAX], b[DURATION_STRING_MAX];
        int r;

        r = validate_ttl(min_flag, min, ENTRY_TTL_MAX, p);
        if (r < 0)
                return r;
        if (ttl > 0 && ttl < min)
                return fail(p, "-%s: %s is shorter than -%s %s", flag,
                            format_duration(ttl, a, sizeof(a)), min_flag,
                            format_duration(min, b, sizeof(b)));
        return 0;
}

/* options_check_readable_file() as a recorded problem. */
static int check_file(ConfigProblems *p, const char *flag, const char *path) {
        char *msg = NULL;
        int r;

        r = options_check_readable_file(flag, path, &msg);
        return fail_message(p, r, msg);
}

static int validate_files(const ServerConfig *c, ConfigProblems *p) {
        int r = 0;

        if (c->upstream_cert) {
                r = check_file(p, "upstreamCA", c->upstream_cert);
                if (r >= 0)
                        r = check_file(p, "upstreamCA", c->upstream_key);
        }
        if (keep_going(r) >= 0 && c->x509pop_ca)
                r = check_file(p, "x509popCA", c->x509pop_ca);
        return keep_going(r);
}

static int validate_paths(const ServerConfig *c, ConfigProblems *p) {
        struct in6_addr a6;
        struct in_addr a4;
        int r = 0;

        if (!c->data_dir || !*c->data_dir)
                r = fail(p, "-dataDir: must not be empty");
        if (keep_going(r) >= 0 && (!c->socket_path || c->socket_path[0] != '/'))
                r = fail(p, "-socketPath: must be an absolute path, got \"%s\"",
                         strempty(c->socket_path));
        else if (keep_going(r) >= 0 &&
                 strlen(c->socket_path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                r = fail(p, "-socketPath: longer than %zu bytes",
                         sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1);
        if (keep_going(r) >= 0 &&
            (!c->bind_address || (inet_pton(AF_INET, c->bind_address, &a4) != 1 &&
                                  inet_pton(AF_INET6, c->bind_address, &a6) != 1)))
                r = fail(p, "-bindAddress: not an IP address: \"%s\"", strempty(c->bind_address));
        if (keep_going(r) < 0)
                return r;
        return validate_files(c, p);
}

static int validate_ttls(const ServerConfig *c, ConfigProblems *p) {
        int r;

        r = validate_ttl("defaultX509SVIDTTL", c->default_x509_ttl, ENTRY_TTL_MAX, p);
        if (keep_going(r) >= 0)
                r = validate_ttl("defaultJWTSVIDTTL", c->default_jwt_ttl, ENTRY_TTL_MAX, p);
        if (keep_going(r) >= 0)
                r = validate_min_ttl("defaultX509SVIDTTL", c->default_x509_ttl, "minX509SVIDTTL",
                                     c->min_x509_ttl, p);
        if (keep_going(r) >= 0)
                r = validate_min_ttl("defaultJWTSVIDTTL", c->default_jwt_ttl, "minJWTSVIDTTL",
                                     c->min_jwt_ttl, p);
        if (keep_going(r) >= 0)
                r = validate_ttl("caTTL", c->ca_ttl, WARDEN_X509_TTL_MAX, p);
        if (keep_going(r) >= 0 && c->ca_ttl > 0 && c->ca_ttl < CA_TTL_MIN)
                r = fail(p, "-caTTL: must be at least %ds", CA_TTL_MIN);
        return keep_going(r);
}

static int validate_datastore(const ServerConfig *c, ConfigProblems *p) {
        int r = 0;

        if (c->ds_cache_mib < DS_CACHE_BYTES_MIN / MIB ||
            c->ds_cache_mib > DS_CACHE_BYTES_MAX / MIB)
                r = fail(p, "-datastoreCacheMiB: must be between %lld and %lld",
                         DS_CACHE_BYTES_MIN / MIB, DS_CACHE_BYTES_MAX / MIB);
        if (keep_going(r) >= 0 && (c->ds_mmap_mib < 0 || c->ds_mmap_mib > DS_MMAP_BYTES_MAX / MIB))
                r = fail(p, "-datastoreMmapMiB: must be between 0 and %lld",
                         DS_MMAP_BYTES_MAX / MIB);
        return keep_going(r);
}

int server_config_check(const ServerConfig *c, ConfigProblems *p) {
        _cleanup_free_ char *msg = NULL;
        const char *reason = NULL;
        int r = 0;

        if (c->trust_domain && warden_trust_domain_validate(c->trust_domain, &reason) < 0)
                r = fail(p, "-trustDomain: invalid trust domain \"%s\": %s", c->trust_domain,
                         strna(reason));
        if (keep_going(r) >= 0)
                r = validate_paths(c, p);
        if (keep_going(r) >= 0) {
                r = health_http_check_address_option(c->health_address, &msg);
                r = fail_message(p, r, TAKE_PTR(msg));
        }
        if (keep_going(r) >= 0 && (c->ca_key_type < 0 || c->ca_key_type >= _WARDEN_KEY_TYPE_MAX))
                r = fail(p, "-caKeyType: unknown key type");
        if (keep_going(r) >= 0)
                r = validate_ttls(c, p);
        if (keep_going(r) >= 0)
                r = validate_datastore(c, p);
        if (r == -ENOMEM)
                return r;
        return p->n > 0 ? -EINVAL : 0;
}

/* The first problem as the one-line message, the rest dropped. */
static int first_problem(ConfigProblems *p, int r, char **reterr_message) {
        if (r < 0 && r != -ENOMEM && p->n > 0 && reterr_message)
                *reterr_message = TAKE_PTR(p->v[0]);
        server_config_problems_done(p);
        return r;
}

int server_config_validate(const ServerConfig *c, char **reterr_message) {
        ConfigProblems p = {};

        return first_problem(&p, server_config_check(c, &p), reterr_message);
}

size_t server_config_restart_changes(const ServerConfig *cur,
                                     const ServerConfig *next,
                                     const char **ret,
                                     size_t max) {
        const struct {
                const char *name;
                bool same;
        } fields[] = {
                {"trustDomain", streq_ptr(cur->trust_domain, next->trust_domain)},
                {"dataDir", streq_ptr(cur->data_dir, next->data_dir)},
                {"bindAddress", streq_ptr(cur->bind_address, next->bind_address)},
                {"serverPort", cur->port == next->port},
                {"socketPath", streq_ptr(cur->socket_path, next->socket_path)},
                {"caTTL", cur->ca_ttl == next->ca_ttl},
                {"caKeyType", cur->ca_key_type == next->ca_key_type},
                {"upstreamCA", streq_ptr(cur->upstream_cert, next->upstream_cert) &&
                                       streq_ptr(cur->upstream_key, next->upstream_key)},
                {"healthAddress", streq_ptr(cur->health_address, next->health_address)},
                {"datastoreCacheMiB", cur->ds_cache_mib == next->ds_cache_mib},
                {"datastoreMmapMiB", cur->ds_mmap_mib == next->ds_mmap_mib},
                {"nodeMaxConnections", cur->node_max_connections == next->node_max_connections},
                {"nodeMaxUnauthPerSource",
                 cur->node_max_unauth_per_source == next->node_max_unauth_per_source},
                {"nodeHandshakeTimeout",
                 cur->node_handshake_timeout == next->node_handshake_timeout},
                {"attestRatePerSource",
                 cur->attest_rate_per_source == next->attest_rate_per_source},
                {"maxEntriesPerAgent", cur->max_entries_per_agent == next->max_entries_per_agent},
                {"signingThreads", cur->signing_threads == next->signing_threads},
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

int server_config_parse_all(int argc, char **argv, ServerConfig *ret, ConfigProblems *p) {
        _cleanup_(options_freep) Options *o = NULL;
        _cleanup_free_ char *msg = NULL;
        ServerConfig c = {};
        size_t n_pos;
        char **pos;
        int r;

        r = options_parse(run_options, ELEMENTSOF(run_options), argc, argv, &o, &msg);
        if (r == -ECANCELED || r == -ENOMEM || (r < 0 && !msg))
                return r;
        if (r < 0)
                return fail_message(p, r, TAKE_PTR(msg));
        pos = options_positional(o, &n_pos);
        if (n_pos > 0)
                return fail(p, "unexpected argument \"%s\"", pos[0]);
        r = config_strings(o, &c, p);
        if (r >= 0)
                r = config_values(o, &c, p);
        if (r >= 0)
                r = server_config_check(&c, p);
        if (r >= 0 && p->n > 0)
                r = -EINVAL;
        if (r < 0) {
                server_config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int server_config_parse(int argc, char **argv, ServerConfig *ret, char **reterr_message) {
        ConfigProblems p = {};

        return first_problem(&p, server_config_parse_all(argc, argv, ret, &p), reterr_message);
}
