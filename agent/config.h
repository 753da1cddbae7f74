/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `warden-agent run` configuration: the flag table (every flag is also a key of the
 * optional libconfuse file given with -config, same format as the server's; flags win
 * over the file, the file over the defaults) turned into a validated AgentConfig.
 * See conf/agent.conf.example. */

#include <stdint.h>
#include <stdio.h>

#include <warden/x509.h>

#define AGENT_DEFAULT_DATA_DIR "/var/lib/warden/agent"
#define AGENT_DEFAULT_SOCKET_PATH "/run/warden/agent.sock"
#define AGENT_DEFAULT_SERVER_ADDRESS "127.0.0.1"
#define AGENT_DEFAULT_SERVER_PORT 8081
/* Largest join token accepted (from a flag or -joinTokenFile). */
#define AGENT_JOIN_TOKEN_MAX 1024

typedef struct AgentConfig {
        char *trust_domain;   /* bare name */
        char *server_address; /* host name or IP */
        uint16_t server_port;
        char *server_target; /* "host:port" ("[v6]:port") for gRPC */
        char *data_dir;      /* node SVID, key and bundle (0700) */
        char *socket_path;   /* Workload API socket */
        char *join_token;    /* secret; NULL unless -joinToken/-joinTokenFile */
        char *x509pop_cert;  /* PEM chain, leaf first; NULL unless x509pop */
        char *x509pop_key;
        char *trust_bundle; /* PEM roots for the first contact; NULL = only dataDir's */
        int log_level;
        WardenKeyType workload_key_type;
} AgentConfig;

/* Parses the `run` arguments (argv[0] is the verb and is skipped) into *ret (release
 * with agent_config_done()). Returns 0; -ECANCELED when help was printed; or -EINVAL,
 * -ENOENT, -EFBIG, ... with *reterr_message (malloc'd, one line naming the flag or
 * config line); -ENOMEM without a message. A -joinTokenFile is read here. */
int agent_config_parse(int argc, char **argv, AgentConfig *ret, char **reterr_message);

/* Checks a filled config: trust domain, absolute socket path that fits sun_path,
 * non-empty dataDir and server address, at most one attestation method (join token or
 * x509pop, whose cert and key come together), readable files. -EINVAL + message. */
int agent_config_validate(const AgentConfig *c, char **reterr_message);

/* Frees the strings (the join token is wiped) and zeroes c. NULL-safe. */
void agent_config_done(AgentConfig *c);

/* Prints the `run` flags with their defaults. */
void agent_config_print_help(FILE *f);
