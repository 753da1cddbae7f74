/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* gRPC server on gRPC core 1.51, carrying raw serialized protobuf bytes.
 *
 * One RpcServer owns one grpc_server, one completion queue with one CQ thread,
 * and (for Unix sockets) an accept thread of its own: it accepts every client
 * itself, records SO_PEERCRED + a pidfd, optionally attests the connection
 * (rpc_server_set_conn_attest(), on attestation threads), and only then hands the
 * fd to gRPC, so each call knows the pid/uid/gid of the process that connected and
 * what was derived from it. TCP listeners are TLS only and expose the client
 * certificate's SPIFFE ID instead.
 *
 * Threads: the thread that creates the server is its "owner". Handlers and close
 * callbacks run on the owner's thread from rpc_server_dispatch() (wire
 * rpc_server_event_fd() into sd-event), except for methods registered with
 * RPC_METHOD_INLINE, whose handler and close callback run on the CQ thread and
 * must never block. rpc_call_send(), rpc_call_reply(), rpc_call_finish() and
 * rpc_call_ref()/unref() may be called from any thread.
 *
 * Limits: messages are capped at RPC_MAX_MESSAGE_SIZE in both directions, each
 * connection at RPC_MAX_STREAMS_PER_CONNECTION concurrent calls, and Unix socket
 * connections by RpcConnLimits (rpc_server_set_conn_limits(): all peers together,
 * per uid, concurrent calls per uid, idle timeout). At the global cap the oldest
 * idle connection is closed to make room; with none idle, new clients wait in the
 * listen backlog.
 *
 * TCP (TLS) listeners are ours too: gRPC 1.51 adds fds only with insecure credentials
 * and stops accepting for good after an EMFILE, so gRPC listens with TLS on an internal
 * Unix socket and a relay thread (rpc_front.c) accepts the TCP clients, applies
 * RpcTcpLimits (all connections, not yet authenticated ones per source address, the
 * handshake timeout), backs off on EMFILE and copies bytes both ways. TLS stays gRPC's.
 *
 * Typical use:
 *   rpc_server_new(&s);
 *   rpc_server_add_method(s, "/SpiffeWorkloadAPI/FetchJWTSVID", RPC_UNARY, h, m, 0);
 *   rpc_server_require_metadata(s, "/SpiffeWorkloadAPI/", "workload.spiffe.io", "true",
 *                               GRPC_STATUS_INVALID_ARGUMENT,
 *                               "security header missing from request");
 *   rpc_server_listen_unix(s, "/run/warden/agent.sock", 0666);
 *   rpc_server_start(s);
 *   ... sd_event_add_io(e, NULL, rpc_server_event_fd(s), EPOLLIN, cb, s)
 *       where cb calls rpc_server_dispatch(s) ...
 *   rpc_server_shutdown(s);
 *   rpc_server_free(s);
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <grpc/status.h>

#define RPC_MAX_MESSAGE_SIZE (4u * 1024u * 1024u)
#define RPC_MAX_STREAMS_PER_CONNECTION 1024u
#define RPC_DEFAULT_MAX_CONNECTIONS 1024u

typedef struct RpcServer RpcServer;
typedef struct RpcCall RpcCall;

/* Who is calling. For Unix socket peers pid/uid/gid/pidfd/conn_id come from the
 * connection (SO_PEERCRED at accept time), conn_data from the connection's
 * attestation (rpc_server_set_conn_attest(); NULL without); spiffe_id and
 * cert_serial are NULL. For
 * TLS peers pid is 0, uid/gid are (uid_t) -1 / (gid_t) -1, pidfd is -EBADF,
 * spiffe_id is the client certificate's SPIFFE ID (NULL without a client
 * certificate), and cert_serial that certificate's serial number as lowercase hex
 * without leading zeros, the format of warden_x509_serial_hex() (NULL without a
 * SPIFFE ID, or when the certificate could not be read). Reading the serial parses
 * the certificate once per distinct certificate, not per call: the server caches it
 * by the certificate's PEM bytes (about 1 µs a call on a hit; see rpc_serial.c). */
typedef struct RpcPeer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        int pidfd;             /* the connection's, borrowed: valid while the call is
                                * referenced; -EBADF if the process had already exited
                                * when it connected */
        uint64_t conn_id;      /* unique per accepted connection, 0 for TLS peers */
        const void *conn_data; /* borrowed like pidfd */
        char *spiffe_id;
        char *cert_serial;
        char source[48]; /* TLS peers: the client's IP address ("" if unknown) */
} RpcPeer;

typedef enum RpcKind {
        RPC_UNARY,
        RPC_SERVER_STREAM,
} RpcKind;

enum {
        /* Run the handler (and the call's close callback) on the CQ thread. For hot
         * paths that answer from immutable state; must not block or take locks
         * that the owner thread holds for long. */
        RPC_METHOD_INLINE = 1u << 0,
};

typedef enum RpcClientCertMode {
        RPC_CLIENT_CERT_REQUIRE,  /* handshake fails without a valid client cert */
        RPC_CLIENT_CERT_OPTIONAL, /* verified if sent; calls without one have spiffe_id NULL */
} RpcClientCertMode;

/* TLS listener settings. All strings are PEM and are copied. */
typedef struct RpcTlsServerConfig {
        const char *roots_pem;      /* CAs that sign client certificates */
        const char *cert_chain_pem; /* server certificate chain, leaf first */
        const char *key_pem;        /* server private key */
        RpcClientCertMode client_cert;
} RpcTlsServerConfig;

typedef struct RpcServerStats {
        uint64_t connections_accepted;    /* Unix socket connections handed to gRPC */
        uint64_t connections_open;        /* Unix socket connections open now */
        uint64_t connections_refused;     /* closed at once: their uid was at its cap */
        uint64_t connections_evicted;     /* idle ones closed to make room at the global cap */
        uint64_t connections_idle_closed; /* closed after the idle timeout */
        uint64_t calls_started;           /* calls that reached a handler or got a status */
        uint64_t calls_active;            /* calls whose gRPC call is still alive */
        uint64_t messages_sent;           /* SEND_MESSAGE batches started */
        uint64_t messages_coalesced;      /* queued messages replaced by a newer one */
        uint64_t tcp_max_connections;     /* TCP connections allowed (after the fd limit) */
        uint64_t tcp_connections_accepted;
        uint64_t tcp_connections_open;
        uint64_t tcp_refused_source;     /* a source at max_unauth_per_source */
        uint64_t tcp_evicted;            /* unauthenticated ones closed at the global cap */
        uint64_t tcp_handshake_timeouts; /* closed after handshake_timeout_ms */
        uint64_t tcp_accept_backoffs;    /* accept paused: EMFILE/ENFILE or no fds left */
} RpcServerStats;

/* Handler for one incoming call. The call is borrowed for the duration of the
 * handler; take a reference (rpc_call_ref) to answer later or keep a stream. */
typedef void (*RpcHandler)(RpcCall *call, void *userdata);
typedef void (*RpcCloseCallback)(RpcCall *call, void *userdata);

/* Creates a server (calls grpc_init, balanced by rpc_server_free).
 * Returns 0 or -ENOMEM/-errno. */
int rpc_server_new(RpcServer **ret);

/* Registers a method by its full path ("/pkg.Service/Method"). Before
 * rpc_server_start only. Returns 0, -EINVAL, -EEXIST for a duplicate path,
 * -EBUSY once started. */
int rpc_server_add_method(RpcServer *s,
                          const char *path,
                          RpcKind kind,
                          RpcHandler handler,
                          void *userdata,
                          unsigned flags);

/* Requires, for every registered method whose path starts with path_prefix,
 * exactly one metadata value for `key` and that it equals `value`; otherwise the
 * call ends with (status, message) before any handler runs. Unknown methods get
 * UNIMPLEMENTED whatever their metadata. Before rpc_server_start only.
 * Returns 0, -EINVAL, -EBUSY, -ENOMEM. */
int rpc_server_require_metadata(RpcServer *s,
                                const char *path_prefix,
                                const char *key,
                                const char *value,
                                grpc_status_code status,
                                const char *message);

/* Told about every call the layer ends by itself before any handler runs: a
 * metadata requirement not met (rpc_server_require_metadata(), with its status),
 * an unknown method (UNIMPLEMENTED; method is the path the client asked for, which
 * is peer-controlled), a Unix socket peer without credentials (UNAVAILABLE), a
 * missing request message (INTERNAL), the caller's uid at max_calls_per_uid or no
 * memory to queue the handler (RESOURCE_EXHAUSTED). Calls that reach a handler are
 * never reported. */
typedef void (*RpcCallObserver)(const char *method, grpc_status_code status, void *userdata);

/* Sets the call observer (NULL removes it). It runs on the CQ thread, once per such
 * call, right after the status was queued, and must not block. method is borrowed
 * for the duration of the callback. Before rpc_server_start only (ignored after). */
void rpc_server_set_call_observer(RpcServer *s, RpcCallObserver cb, void *userdata);

/* Binds and listens on a Unix socket at path with the given file mode. A stale
 * socket file (nobody accepting) is unlinked first; a live one gives -EADDRINUSE,
 * a non-socket file -EEXIST. The path is unlinked again at shutdown.
 * Before rpc_server_start only. */
int rpc_server_listen_unix(RpcServer *s, const char *path, mode_t mode);

/* Serves an already listening AF_UNIX stream socket (e.g. from sd_listen_fds()).
 * The fd is borrowed: it is set O_NONBLOCK, never closed nor unlinked by us, and
 * must stay open until rpc_server_shutdown(). Before rpc_server_start only.
 * Returns 0, -EBADF, -ENOTSOCK, -EINVAL (not a listening AF_UNIX stream socket). */
int rpc_server_listen_fd(RpcServer *s, int fd);

/* Listens on TCP with TLS at addr ("127.0.0.1:0", "[::]:8081"). The port actually
 * bound goes to *ret_port (may be NULL). Never shares the port (no SO_REUSEPORT).
 * Before rpc_server_start only. Returns 0, -EINVAL (bad config or PEM), -EADDRINUSE
 * (another socket listens there), -EACCES (a privileged port), -EADDRNOTAVAIL (any
 * other bind failure). */
int rpc_server_listen_tls(RpcServer *s,
                          const char *addr,
                          const RpcTlsServerConfig *cfg,
                          int *ret_port);

/* Whether a TCP listener could bind addr ("1.2.3.4:port", "[v6]:port", IP literals
 * only) right now: binds a throwaway socket with SO_REUSEADDR, as the listeners do,
 * and closes it. 0, -EINVAL (not IP:port), -EADDRINUSE, -EACCES, -EADDRNOTAVAIL, ... */
int rpc_tcp_check_bind(const char *addr);

/* TCP connections (all TLS listeners together). A connection is unauthenticated from
 * accept until a call with a verified client certificate arrives on it (TLS finished
 * with a certificate our roots accept); calls without one, such as node attestation,
 * leave it unauthenticated. */
typedef struct RpcTcpLimits {
        unsigned max_connections;       /* >= 1; lowered to what RLIMIT_NOFILE allows. At
                                         * the cap the oldest unauthenticated connection is
                                         * closed for a waiting client; with none, new
                                         * clients wait in the listen backlog */
        unsigned max_unauth_per_source; /* per client IP address; beyond, a new connection
                                         * is closed at once (0 = no cap) */
        unsigned handshake_timeout_ms;  /* unauthenticated this long: closed (0 = never) */
} RpcTcpLimits;

#define RPC_DEFAULT_TCP_MAX_CONNECTIONS 8192u
#define RPC_DEFAULT_TCP_MAX_UNAUTH_PER_SOURCE 64u
#define RPC_DEFAULT_TCP_HANDSHAKE_TIMEOUT_MS 10000u

/* Sets the limits (copied). Before rpc_server_start only. 0, -EINVAL, -EBUSY. */
int rpc_server_set_tcp_limits(RpcServer *s, const RpcTcpLimits *l);

/* What the TCP relay did to a connection because of a limit. */
typedef enum RpcTcpEvent {
        RPC_TCP_REFUSED_SOURCE,    /* its source had max_unauth_per_source */
        RPC_TCP_EVICTED,           /* the oldest unauthenticated one, closed to make room */
        RPC_TCP_HANDSHAKE_TIMEOUT, /* not authenticated within handshake_timeout_ms */
        RPC_TCP_ACCEPT_BACKOFF,    /* accepting paused for 100 ms: out of file descriptors,
                                    * or at max_connections with none to close */
        _RPC_TCP_EVENT_MAX,
} RpcTcpEvent;

/* Told about every RpcTcpEvent on the relay thread (must not block); source is the
 * client's address as text ("" for RPC_TCP_ACCEPT_BACKOFF). Before rpc_server_start. */
typedef void (*RpcTcpObserver)(RpcTcpEvent ev, const char *source, void *userdata);
void rpc_server_set_tcp_observer(RpcServer *s, RpcTcpObserver cb, void *userdata);

/* Where gRPC listens for the relay: a Unix socket path in a directory only we may enter
 * (a stale file there is replaced). Without it, an abstract socket with a random name.
 * Before rpc_server_listen_tls(). 0, -EINVAL, -ENAMETOOLONG, -ENOMEM, -EBUSY. */
int rpc_server_set_relay_socket(RpcServer *s, const char *path);

/* Replaces the certificate chain, key and client roots of every TLS listener.
 * Takes effect for new connections; existing ones keep their session. The client
 * certificate mode cannot change (cfg->client_cert is ignored). Any thread.
 * Returns 0, -EINVAL (bad PEM), -ENOENT (no TLS listener). */
int rpc_server_update_tls(RpcServer *s, const RpcTlsServerConfig *cfg);

/* Caps concurrent Unix socket connections (n >= 1), as
 * RpcConnLimits.max_connections. Before rpc_server_start only. */
int rpc_server_set_max_connections(RpcServer *s, unsigned n);

/* Limits for Unix socket peers (0 = no limit, except max_connections). */
typedef struct RpcConnLimits {
        unsigned max_connections;         /* all peers together, >= 1 */
        unsigned max_connections_per_uid; /* beyond it a new connection is closed at once */
        unsigned max_calls_per_uid;       /* concurrent calls, open streams included;
                                           * beyond it RESOURCE_EXHAUSTED (call observer) */
        unsigned idle_timeout_ms;         /* closed after this long without any call */
} RpcConnLimits;

/* Sets the limits (copied). Before rpc_server_start only. Returns 0, -EINVAL
 * (max_connections 0), -EBUSY. */
int rpc_server_set_conn_limits(RpcServer *s, const RpcConnLimits *l);

/* What the accept thread did to a connection because of a limit. */
typedef enum RpcConnEvent {
        RPC_CONN_REFUSED_UID, /* closed at once: its uid had max_connections_per_uid */
        RPC_CONN_EVICTED,     /* the oldest idle one, closed to make room */
        RPC_CONN_IDLE_CLOSED, /* no call for idle_timeout_ms */
        _RPC_CONN_EVENT_MAX,
} RpcConnEvent;

/* Told about every RpcConnEvent, on the accept thread (must not block). Before
 * rpc_server_start only. */
typedef void (*RpcConnObserver)(RpcConnEvent ev, uid_t uid, void *userdata);
void rpc_server_set_conn_observer(RpcServer *s, RpcConnObserver cb, void *userdata);

/* A Unix socket connection just accepted, not yet seen by gRPC. */
typedef struct RpcConnInfo {
        int fd; /* the accepted socket: borrowed, never read from or closed */
        pid_t pid;
        uid_t uid;
        gid_t gid;
        int pidfd; /* borrowed; -EBADF when the process was gone already */
        uint64_t conn_id;
} RpcConnInfo;

/* Attests a connection before gRPC reads a byte from it. Runs on one of
 * RPC_ATTEST_THREADS threads, at most one connection of a uid at a time and uids
 * taking turns, so a slow attestation only delays its own uid. Returns what every
 * call on the connection sees as RpcPeer.conn_data (NULL allowed); free_fn frees
 * it once the connection and its last call are gone (any thread). */
typedef void *(*RpcConnAttestFunc)(const RpcConnInfo *info, void *userdata);

#define RPC_ATTEST_THREADS 2

/* Before rpc_server_start only. Returns 0, -EINVAL, -EBUSY. */
int rpc_server_set_conn_attest(RpcServer *s,
                               RpcConnAttestFunc fn,
                               void (*free_fn)(void *),
                               void *userdata);

/* Starts gRPC, the CQ thread and the accept thread. Returns 0 or -errno. */
int rpc_server_start(RpcServer *s);

/* An fd that becomes readable when rpc_server_dispatch() has work. Owned by the
 * server. */
int rpc_server_event_fd(RpcServer *s);

/* Runs queued handlers and close callbacks on the calling thread (the owner).
 * Returns the number of items run, or -errno. Never blocks. */
int rpc_server_dispatch(RpcServer *s);

/* Stops accepting, cancels every call (clients see UNAVAILABLE), waits until gRPC
 * has completed every operation, joins our threads and fires the close callbacks
 * still due, on the calling thread. Handlers that were queued but not run are
 * dropped. Afterwards every RpcCall is closed; calls still referenced by their
 * owner only need rpc_call_unref(). Idempotent. Call from the owner thread. */
void rpc_server_shutdown(RpcServer *s);

/* Shuts down if needed and frees the server. Accepts NULL; returns NULL.
 * RpcCalls still referenced afterwards may only be passed to rpc_call_unref(). */
RpcServer *rpc_server_free(RpcServer *s);

/* Snapshot of the server's counters. */
void rpc_server_get_stats(RpcServer *s, RpcServerStats *ret);

/* --- per call --- */

/* Full method path of the call ("/pkg.Service/Method"). */
const char *rpc_call_method(RpcCall *c);
/* The request message (a copy, owned by the call; may be empty but never NULL). */
const void *rpc_call_request(RpcCall *c, size_t *ret_len);
/* Caller identity, copied when the call arrived. */
const RpcPeer *rpc_call_peer(RpcCall *c);
/* First value of a request metadata key (lowercase), NUL-terminated, or NULL. */
const char *rpc_call_metadata(RpcCall *c, const char *key);

/* Unary answer: the message and status OK in one go. Any thread.
 * Returns 0, -EMSGSIZE, -EALREADY (status already sent or queued),
 * -ENOTCONN (call closed or server shutting down), -ENOMEM. */
int rpc_call_reply(RpcCall *c, const void *msg, size_t len);

/* Ends the call with a status (unary error, or the end of a stream). Messages
 * queued before it still go out first. message may be NULL. Any thread.
 * Returns 0, -EALREADY, -ENOTCONN, -ENOMEM. */
int rpc_call_finish(RpcCall *c, grpc_status_code status, const char *message);

/* Same, with the status and a fixed message chosen from a negative errno
 * (errno_to_grpc_status()). */
int rpc_call_finish_errno(RpcCall *c, int r, const char *message);

/* Pushes one message on a server stream. Any thread. At most one message is in
 * flight per call; while one is, the newest message waits and replaces any older
 * waiting one (a slow client only ever gets the latest state).
 * Returns 0, -EINVAL (unary method), -EMSGSIZE, -EALREADY (finished),
 * -ENOTCONN (closed/shutting down), -ENOMEM. */
int rpc_call_send(RpcCall *c, const void *msg, size_t len);

/* Sets the callback that runs (via rpc_server_dispatch(), on the owner's thread) each
 * time a message sent with rpc_call_send() has gone out and no newer one is waiting:
 * the stream is idle, so a producer that sends one message at a time and merges what
 * happens meanwhile into the next one loses nothing (see server/node_sync.c). Not
 * called once the call is closed. cb NULL turns it off. */
void rpc_call_set_sent_callback(RpcCall *c, RpcCloseCallback cb, void *userdata);

/* true while a message is on its way or waiting to be sent. Any thread. */
bool rpc_call_send_busy(RpcCall *c);

/* Sets the callback that runs once when the call is over: the client cancelled
 * or disconnected, the deadline passed, the server shut down, or our status went
 * out. It runs via rpc_server_dispatch() (on the CQ thread for inline methods);
 * if the call is already closed it is queued for the next dispatch. */
void rpc_call_set_close_callback(RpcCall *c, RpcCloseCallback cb, void *userdata);

/* true once the call is over (see above). */
bool rpc_call_is_closed(RpcCall *c);
/* true when the call ended before our status went out: client cancel,
 * disconnect, deadline or server shutdown. Meaningful once closed. */
bool rpc_call_was_cancelled(RpcCall *c);

/* Owner state attached to the call (e.g. a stream's watcher). Not freed by us. */
void rpc_call_set_userdata(RpcCall *c, void *userdata);
void *rpc_call_get_userdata(RpcCall *c);

/* Reference counting; unref accepts NULL and returns NULL. Any thread. */
RpcCall *rpc_call_ref(RpcCall *c);
RpcCall *rpc_call_unref(RpcCall *c);
