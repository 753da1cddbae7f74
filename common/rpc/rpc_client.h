/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Blocking gRPC client on gRPC core 1.51, carrying raw serialized protobuf bytes.
 * Used by the CLIs and by the agent's server-client thread.
 *
 * A channel may be shared by threads; each blocking call uses its own completion
 * queue, and its grpc_call is cancelled and released on every exit path.
 * Messages are capped at RPC_MAX_MESSAGE_SIZE (4 MiB) both ways. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

typedef struct RpcChannel RpcChannel;
typedef struct RpcStream RpcStream;

/* One request metadata pair; keys are lowercase ASCII. */
typedef struct RpcMetadata {
        const char *key;
        const char *value;
} RpcMetadata;

/* TCP + TLS client settings. Strings are PEM and are copied. */
typedef struct RpcTlsClientConfig {
        const char *roots_pem;          /* CAs that must sign the server certificate */
        const char *cert_chain_pem;     /* optional client chain (mutual TLS) ... */
        const char *key_pem;            /* ... and its key; both or neither */
        const char *expected_server_id; /* the server cert must carry exactly this one URI SAN */
} RpcTlsClientConfig;

/* Tells the client that another thread of this process always polls gRPC (an
 * RpcServer's CQ thread): calls made from now on wait on non-polling completion
 * queues, so the calling thread never runs other connections' transport work (gRPC's
 * epoll engine lets any polling thread handle any connection, and every hand-over
 * between threads costs context switches). Set it only while such a server runs, and
 * back to false before stopping it; without any poller, calls would only progress on
 * gRPC's backup poller (every 5 s) or end at their deadline. */
void rpc_client_set_polled_elsewhere(bool on);

/* A thread that polls gRPC for the process while no server does: started before the
 * polling server stops (the agent's shutdown), it lets calls already waiting on their
 * completion (rpc_client_set_polled_elsewhere()) finish promptly. */
typedef struct RpcPoller RpcPoller;
int rpc_poller_start(RpcPoller **ret);
/* Stops and joins the thread. NULL-safe; returns NULL. */
RpcPoller *rpc_poller_stop(RpcPoller *p);

/* Connects to the Unix socket at path with a plain connect() and closes it again, so a
 * CLI can name why a socket is unreachable (-ENOENT, -ECONNREFUSED, -EACCES,
 * -ENAMETOOLONG) instead of gRPC's generic UNAVAILABLE after its deadline. */
int rpc_unix_probe(const char *path);

/* Channel to a Unix socket: "/abs/path", "unix:/abs/path" or "unix:///abs/path".
 * Connects lazily. Returns 0, -EINVAL, -ENAMETOOLONG, -ENOMEM. */
int rpc_channel_new_unix(const char *path, RpcChannel **ret);

/* Channel over TCP + TLS to target ("host:port"). The server certificate must
 * chain to cfg->roots_pem and carry exactly one URI SAN equal to
 * cfg->expected_server_id; the host name is not checked (SPIFFE identities have
 * no DNS SAN). Connects lazily: a wrong server identity shows up as an
 * UNAVAILABLE status on the first call. Returns 0, -EINVAL (bad config or PEM),
 * -ENOMEM. */
int rpc_channel_new_tls(const char *target, const RpcTlsClientConfig *cfg, RpcChannel **ret);

/* Closes the channel. Accepts NULL; returns NULL. */
RpcChannel *rpc_channel_free(RpcChannel *ch);

/* Why a call on a TLS channel failed, when the handshake is the reason. gRPC ends such a
 * call UNAVAILABLE, like any unreachable server, and only its details tell them apart. */
typedef enum RpcTlsFailure {
        RPC_TLS_FAILURE_NONE,      /* not a handshake refusal (or no details) */
        RPC_TLS_FAILURE_UNTRUSTED, /* the server's chain does not verify against the roots */
        RPC_TLS_FAILURE_SERVER_ID, /* it verifies, but does not carry expected_server_id */
} RpcTlsFailure;

/* The text our server-ID check puts in the details: RPC_TLS_ID_MISMATCH ": presented <ID
 * or 'N URI SANs'>, expected <ID>" (the presented ID cut at RPC_TLS_PRESENTED_ID_MAX). */
#define RPC_TLS_ID_MISMATCH "server SPIFFE ID mismatch"
#define RPC_TLS_PRESENTED_ID_MAX 256

/* Classifies a failed call's status details. For RPC_TLS_FAILURE_SERVER_ID *ret_reason
 * (optional) points into details at the RPC_TLS_ID_MISMATCH text, for the others at the
 * matched words or NULL. */
RpcTlsFailure rpc_tls_failure_from_details(const char *details, const char **ret_reason);

/* One unary call. timeout_ms < 0 means no deadline.
 * Returns 0 when the call completed with any status, or -errno for local
 * failures (-EINVAL, -EMSGSIZE, -ENOMEM). With ret_status NULL a non-OK status is
 * returned as rpc_status_to_errno(status) instead.
 * On status OK, *ret_resp and *ret_len get the response (malloc'd, NUL-terminated
 * for convenience; may be NULL). *ret_message gets the status message (malloc'd,
 * may be NULL). Every ret_ pointer may be NULL. */
int rpc_unary(RpcChannel *ch,
              const char *method,
              const RpcMetadata *md,
              size_t n_md,
              const void *req,
              size_t len,
              int64_t timeout_ms,
              void **ret_resp,
              size_t *ret_len,
              int *ret_status,
              char **ret_message);

/* Opens a server-streaming call (no deadline). Returns 0 or -errno. */
int rpc_stream_open(RpcChannel *ch,
                    const char *method,
                    const RpcMetadata *md,
                    size_t n_md,
                    const void *req,
                    size_t len,
                    RpcStream **ret);

/* Waits up to timeout_ms (< 0: forever) for the next message.
 * Returns 1 with a message (*ret_msg malloc'd, NUL-terminated), 0 when the stream
 * has ended (see rpc_stream_status), -ETIMEDOUT when nothing came in time (call
 * again to keep waiting), or -errno. */
int rpc_stream_next(RpcStream *st, int64_t timeout_ms, void **ret_msg, size_t *ret_len);

/* Final status of an ended stream. Returns 0, or -EBUSY while it is still open.
 * *ret_message is malloc'd (may be NULL); either pointer may be NULL. */
int rpc_stream_status(RpcStream *st, int *ret_status, char **ret_message);

/* Cancels the call; a blocked rpc_stream_next() then returns 0 with CANCELLED.
 * May be called from another thread. */
void rpc_stream_cancel(RpcStream *st);

/* Cancels if still open, waits for gRPC to release the call, frees.
 * Accepts NULL; returns NULL. */
RpcStream *rpc_stream_free(RpcStream *st);
