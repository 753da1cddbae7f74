/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The TCP front of TLS listeners (see rpc.h): one relay thread accepts TCP clients,
 * connects each to gRPC's internal Unix socket from an autobound abstract address
 * (gRPC names such a call's peer "unix-abstract:NAME", which is how a call finds its
 * client's IP address) and copies bytes both ways. rpc_front.c: listeners, limits,
 * the connection table; rpc_relay.c: the byte copying of one connection. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "rpc.h"
#include "rpc_source.h"

typedef struct RpcFront RpcFront;
typedef struct RpcFrontConn RpcFrontConn;

/* Each direction's buffer: about one TLS record. */
#define RPC_RELAY_BUF_SIZE (16u * 1024u)

typedef struct RpcRelayBuf {
        char *data; /* what is left to send (malloc'd), or NULL */
        size_t off, len;
        bool borrowed; /* data is the relay thread's scratch buffer (inside a read) */
        bool eof;      /* its reader saw end-of-file */
        bool shut_wr;  /* the other end got shutdown(SHUT_WR) after the last byte */
} RpcRelayBuf;

/* One end of a relayed connection: [0] the TCP client, [1] gRPC's Unix socket. */
typedef struct RpcRelayEnd {
        RpcFrontConn *conn;
        int fd;
        uint32_t events; /* what epoll watches now; 0 = not in the epoll set */
} RpcRelayEnd;

struct RpcFrontConn {
        RpcFrontConn *prev, *next;   /* all connections, oldest first */
        RpcFrontConn *uprev, *unext; /* unauthenticated ones, oldest first */
        RpcFrontConn *hnext;         /* name hash chain */
        RpcRelayEnd end[2];
        RpcRelayBuf buf[2]; /* buf[i]: read from end[i], to be written to end[1 - i] */
        RpcSourceAddr source;
        char source_text[48];
        uint32_t name; /* the autobound abstract name, 5 hex digits */
        uint64_t accepted_ms;
        bool authed;   /* a call with a client certificate arrived (under the lock) */
        bool dead;     /* closed, freed after the epoll batch */
        bool draining; /* closed on our side; waiting for gRPC to close its end */
        uint64_t drain_ms;
};

/* Relay I/O for one end's epoll events (relay thread). Returns false when the
 * connection is over (error, or both directions finished) and must be closed. */
bool rpc_relay_handle(int epoll_fd, RpcRelayEnd *e, uint32_t events);
/* Sets what epoll watches for both ends from the buffers' state. false: the
 * connection is over. */
bool rpc_relay_update(int epoll_fd, RpcFrontConn *c);
/* Buffers for a new connection. 0 or -ENOMEM. */
int rpc_relay_init(RpcFrontConn *c);
/* Closes both fds and frees the buffers. */
void rpc_relay_done(int epoll_fd, RpcFrontConn *c);

int rpc_front_new(RpcFront **ret);
/* Accepts NULL; stops first. Returns NULL. */
RpcFront *rpc_front_free(RpcFront *f);
/* A bound and listening TCP socket (owned) whose clients go to the internal Unix
 * socket address target. */
int rpc_front_add(RpcFront *f, int fd, const struct sockaddr_un *target, socklen_t target_len);
size_t rpc_front_n_listeners(RpcFront *f);
/* Starts the relay thread. limits and the observer are copied. */
int rpc_front_start(RpcFront *f, const RpcTcpLimits *limits, RpcTcpObserver cb, void *userdata);
/* Joins the thread, closes listeners and every connection. Idempotent. */
void rpc_front_stop(RpcFront *f);
/* A call arrived from gRPC peer "unix-abstract:NAME": copies its client's address
 * into ret_source (size 48; "" when unknown) and, when the call carries a verified
 * client certificate (authed), marks the connection authenticated. Any thread. */
void rpc_front_call_peer(RpcFront *f, const char *name, bool authed, char ret_source[static 48]);
void rpc_front_get_stats(RpcFront *f, RpcServerStats *ret);
