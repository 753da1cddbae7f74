/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `warden-server run` configuration: the flag table (every flag is also a key of the
 * optional libconfuse file given with -config; flags win over the file, the file over
 * the defaults) turned into a validated ServerConfig. See conf/server.conf.example. */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "server.h"

/* Defaults (also shown by `warden-server run -h`). */
#define SERVER_DEFAULT_DATA_DIR "/var/lib/warden/server"
#define SERVER_DEFAULT_SOCKET_PATH "/run/warden/server.sock"
#define SERVER_DEFAULT_BIND_ADDRESS "127.0.0.1"
#define SERVER_DEFAULT_PORT 8081

/* Every problem of a configuration, one malloc'd line each (`validate` prints them
 * all; `run` shows the first). */
typedef struct ConfigProblems {
        char **v;
        size_t n;
} ConfigProblems;

void server_config_problems_done(ConfigProblems *p);

/* Parses the `run` arguments (argv[0] is the verb and is skipped) into *ret. On
 * success *ret owns its strings (release with server_config_done()). Returns
 *   0           parsed and valid;
 *   -ECANCELED  help was requested and printed to stdout (exit 0);
 *   -EINVAL, -ENOENT, -EFBIG, ...  with *reterr_message (malloc'd, one line naming the
 *               flag or config file line and the problem), e.g.
 *               `-caKeyType: unknown key type "dsa" (use ec-p256, ec-p384 or rsa-2048)`;
 *   -ENOMEM (no message). */
int server_config_parse(int argc, char **argv, ServerConfig *ret, char **reterr_message);

/* server_config_parse(), but every problem found is appended to *p (checks that do not
 * depend on each other all run). Returns 0, -ECANCELED (help printed), -EINVAL (see
 * *p, at least one problem) or -ENOMEM. */
int server_config_parse_all(int argc, char **argv, ServerConfig *ret, ConfigProblems *p);

/* server_config_validate() appending every problem to *p: 0 or -EINVAL, -ENOMEM. */
int server_config_check(const ServerConfig *c, ConfigProblems *p);

/* Checks an already filled config (the rules server_config_parse() applies after
 * reading the flags): trust domain, absolute admin socket path that fits sun_path,
 * IP bind address, positive TTLs within their caps and not below their floors
 * (-minX509SVIDTTL, -minJWTSVIDTTL), readable upstream CA files. On
 * failure returns -EINVAL and *reterr_message (malloc'd). */
int server_config_validate(const ServerConfig *c, char **reterr_message);

/* Parses an -adminUIDs value: uids or user names separated by commas (spaces allowed
 * around them); appends to *uids / *n. -EINVAL (bad or unknown user, *reterr_bad set
 * to the offending element's start, borrowed from s), -E2BIG past 64 uids, -ENOMEM. */
int server_config_parse_uids(const char *s, uid_t **uids, size_t *n, const char **reterr_bad);

/* Options that only take effect at start: trustDomain, dataDir, bindAddress,
 * serverPort, socketPath, caTTL, caKeyType, upstreamCA, healthAddress,
 * datastoreCacheMiB, datastoreMmapMiB and the node API limits (nodeMaxConnections,
 * nodeMaxUnauthPerSource, nodeHandshakeTimeout, attestRatePerSource). Returns how many
 * of them differ between cur and next and stores the first max of their names (flag
 * names without the dash, static strings) in ret (may be NULL). Everything else
 * (logLevel, the default TTLs, adminUIDs, x509popCA) can change at run time. */
size_t server_config_restart_changes(const ServerConfig *cur,
                                     const ServerConfig *next,
                                     const char **ret,
                                     size_t max);

/* Prints the `run` flags with their defaults to f. */
void server_config_print_help(FILE *f);
