/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared plumbing of the `api` CLI files (cli_api*.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "cli_api.h"
#include "options.h"
#include "rpc_client.h"

/* The flags every command takes; put them first in each command's option table. */
/* clang-format off */
#define API_COMMON_OPTIONS                                                                         \
        {"socketPath", OPT_STRING, NULL,                                                           \
         "Workload API socket (default: $SPIFFE_ENDPOINT_SOCKET, or " CLI_API_DEFAULT_SOCKET ")"},\
        {"output", OPT_STRING, "text", "Output format: text or json"},                             \
        {"timeout", OPT_DURATION, "5s", "How long to wait for the agent's answer"}
/* clang-format on */

typedef struct ApiClient {
        char *socket_path;
        bool json;
        int64_t timeout_ms;
        RpcChannel *ch;
} ApiClient;

/* Prints "Error: <fmt...>" on stderr; returns -EINVAL (api_error_errno: r). */
int api_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int api_error_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The socket path named by a SPIFFE_ENDPOINT_SOCKET value: "unix:///abs/path",
 * "unix:/abs/path" or "/abs/path". -EINVAL (with a static reason) for anything else,
 * including tcp: addresses. *ret is malloc'd. */
int api_socket_from_env(const char *value, char **ret, const char **reterr_reason);

/* Parses a command's flags (printing `usage` above the flags for -h; -ECANCELED
 * then). Positional arguments are refused. */
int api_parse(
        const char *usage, const Option *table, size_t n, int argc, char **argv, Options **ret);

/* Reads -socketPath/-output/-timeout, checks that the socket accepts connections and
 * opens the channel. Prints the error and returns -errno on failure. */
int api_open(ApiClient *c, const Options *o);
void api_close(ApiClient *c);

/* One unary Workload API call ("FetchJWTSVID"): *ret is the unpacked answer (free with
 * protobuf_c_message_free_unpacked). A non-OK status prints
 * "Error: <method>: <CODE>: <message>" and returns -errno. */
int api_unary(ApiClient *c,
              const char *method,
              const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *desc,
              ProtobufCMessage **ret);

/* Opens a stream ("FetchX509SVID", empty request) and waits up to timeout_ms (< 0:
 * forever) for its first message. Returns 1 with *ret; on an ended stream prints the
 * status as above and returns -errno; -ETIMEDOUT (printed) when nothing came. With
 * ret_stream the stream stays open for the caller. */
int api_stream_first(ApiClient *c,
                     const char *method,
                     const ProtobufCMessageDescriptor *desc,
                     int64_t timeout_ms,
                     ProtobufCMessage **ret,
                     RpcStream **ret_stream);

/* Opens a stream with the security header. */
int api_stream_open(ApiClient *c, const char *method, RpcStream **ret);

/* Prints j (indented, or compact on one line) on stdout and drops the reference. */
int api_print_json(json_t *j, bool compact);

/* "2026-05-01T12:00:00Z" (UTC). Returns buf. */
char *api_format_time(int64_t t, char buf[static 32]);

/* Monotonic milliseconds. */
int64_t api_now_ms(void);

/* Commands (argv[0] = the last verb word). Return 0 or -errno (-ECANCELED: help). */
int api_fetch_x509(int argc, char **argv);
int api_fetch_x509_bundles(int argc, char **argv);
int api_watch(int argc, char **argv);
int api_fetch_jwt(int argc, char **argv);
int api_fetch_jwt_bundles(int argc, char **argv);
int api_validate_jwt(int argc, char **argv);
