/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `warden-agent run` configuration: the flag table (every flag is also a key of the
 * optional libconfuse file given with -config, same format as the server's; flags win
 * over the file, the file over the defaults) turned into a validated AgentConfig.
 * See conf/agent.conf.example. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <warden/x509.h>

#define AGENT_DEFAULT_DATA_DIR "/var/lib/warden/agent"
#define AGENT_DEFAULT_SOCKET_PATH "/run/warden/agent.sock"
#define AGENT_DEFAULT_SERVER_ADDRESS "127.0.0.1"
#define AGENT_DEFAULT_SERVER_PORT 8081
/* Largest join token accepted (from a flag or -joinTokenFile). */
#define AGENT_JOIN_TOKEN_MAX 1024
/* Upper bounds of -maxConnections and -maxCallsPerUID. */
#define AGENT_MAX_CONNECTIONS_MAX 65536
#define AGENT_MAX_CALLS_PER_UID_MAX 65536
/* -maxEntries: registration entries the manager keeps (default, upper bound). */
#define AGENT_MAX_ENTRIES_DEFAULT 100000
#define AGENT_MAX_ENTRIES_MAX 1000000

typedef struct AgentConfig {
        char *trust_domain;   /* bare name */
        char *server_address; /* host name or IP */
        uint16_t server_port;
        char *server_target;   /* "host:port" ("[v6]:port") for gRPC */
        char *data_dir;        /* node SVID, key and bundle (0700) */
        char *socket_path;     /* Workload API socket */
        char *join_token;      /* secret; NULL unless -joinToken/-joinTokenFile */
        char *join_token_file; /* -joinTokenFile as given; NULL without */
        char *x509pop_cert;    /* PEM chain, leaf first; NULL unless x509pop */
        char *x509pop_key;
        char *trust_bundle; /* PEM roots for the first contact; NULL = only dataDir's */
        int log_level;
        WardenKeyType workload_key_type;
        char *health_address; /* -healthAddress; NULL = no HTTP endpoints */

        /* Workload API limits (workload_api.h) */
        unsigned max_connections;
        unsigned max_connections_per_uid;
        unsigned max_calls_per_uid;
        int64_t idle_timeout_sec;      /* 0 = never */
        unsigned jwt_mint_rate;        /* new JWT-SVIDs per second per uid, 0 = no limit */
        int64_t jwt_clock_skew_sec;    /* ValidateJWTSVID: nbf/iat in the future */
        int64_t jwt_expiry_leeway_sec; /* ValidateJWTSVID: grace after exp */
        size_t max_entries;            /* registration entries kept (manager) */
} AgentConfig;

typedef enum AgentConfigFlags {
        /* Leave -joinTokenFile unread (join_token stays NULL, join_token_file is set):
         * for a reload, where the token was used up long ago and its file may be gone. */
        AGENT_CONFIG_SKIP_TOKEN_FILE = 1 << 0,
} AgentConfigFlags;

/* Parses the `run` arguments (argv[0] is the verb and is skipped) into *ret (release
 * with agent_config_done()). Returns 0; -ECANCELED when help was printed; or -EINVAL,
 * -ENOENT, -EFBIG, ... with *reterr_message (malloc'd, one line naming the flag or
 * config line); -ENOMEM without a message. A -joinTokenFile is read here. */
int agent_config_parse(int argc, char **argv, AgentConfig *ret, char **reterr_message);

/* agent_config_parse() with AgentConfigFlags. */
int agent_config_parse_flags(
        int argc, char **argv, unsigned flags, AgentConfig *ret, char **reterr_message);

/* Options that only take effect at start: every one but logLevel and workloadKeyType
 * (trustDomain, serverAddress, serverPort, dataDir, socketPath, joinToken (the flag's
 * value, or the -joinTokenFile path when either config names a file), x509popCert,
 * x509popKey, trustBundle, healthAddress, maxEntries and the Workload API limits).
 * Returns how many of them differ between cur and next and stores the first max of
 * their names (flag names without the dash, static strings) in ret (may be NULL). */
size_t agent_config_restart_changes(const AgentConfig *cur,
                                    const AgentConfig *next,
                                    const char **ret,
                                    size_t max);

/* Checks a filled config: trust domain, absolute socket path that fits sun_path and is
 * not inside dataDir (path_is_below(): other users could not reach it), non-empty dataDir and
 * server address, at most one attestation method (join token or x509pop, whose cert and key come
 * together), readable files, a loopback -healthAddress (health_http_parse_address()). -EINVAL +
 * message. */
int agent_config_validate(const AgentConfig *c, char **reterr_message);

/* Frees the strings (the join token is wiped) and zeroes c. NULL-safe. */
void agent_config_done(AgentConfig *c);

/* Prints the `run` flags with their defaults. */
void agent_config_print_help(FILE *f);
