/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Per source address accounting for TCP peers: how many connections each address holds
 * that have not authenticated yet (a cap), and a token bucket of events per second and
 * address (node attestation attempts). Addresses are kept as IPv6 (IPv4 mapped), so
 * 10.0.0.1 and ::ffff:10.0.0.1 are one source. An address has an entry only while it
 * holds something: a counted connection, or a bucket that has not refilled yet; at most
 * RPC_SOURCE_MAX entries, beyond which new addresses are refused (-ENOSPC) until some
 * have refilled. Thread-safe (one mutex). */

#include <arpa/inet.h>
#include <stdint.h>
#include <sys/socket.h>

#define RPC_SOURCE_MAX 65536u

typedef struct RpcSourceAddr {
        uint8_t b[16];
} RpcSourceAddr;

typedef struct RpcSourceTable RpcSourceTable;

/* From an AF_INET or AF_INET6 socket address. 0 or -EAFNOSUPPORT. */
int rpc_source_addr_from_sockaddr(const struct sockaddr *sa, RpcSourceAddr *ret);
/* From "1.2.3.4" or "::1". 0 or -EINVAL. */
int rpc_source_addr_from_string(const char *s, RpcSourceAddr *ret);
/* As text: dotted quad for IPv4 (mapped) addresses, else IPv6. */
void rpc_source_addr_to_string(const RpcSourceAddr *a, char buf[static INET6_ADDRSTRLEN]);

/* max_conns: connections one address may hold (0 = no cap). rate: events per second and
 * address (0 = no limit), burst: how many may come at once (rounded up to >= 1).
 * 0, -EINVAL (negative rate or burst), -ENOMEM. */
int rpc_source_table_new(unsigned max_conns, double rate, double burst, RpcSourceTable **ret);
/* Accepts NULL; returns NULL. */
RpcSourceTable *rpc_source_table_free(RpcSourceTable *t);

/* Counts one connection of a. 0, -EDQUOT (a holds max_conns already; nothing counted),
 * -ENOSPC (table full), -ENOMEM. */
int rpc_source_conn_admit(RpcSourceTable *t, const RpcSourceAddr *a);
/* Undoes one rpc_source_conn_admit() of a. */
void rpc_source_conn_release(RpcSourceTable *t, const RpcSourceAddr *a);
/* Connections a holds now. */
unsigned rpc_source_conns(RpcSourceTable *t, const RpcSourceAddr *a);

/* Takes one event from a's bucket at now_ms (a monotonic clock). 0, -EDQUOT (the bucket is
 * empty: over the rate), -ENOSPC (table full), -ENOMEM. Always 0 without a rate. */
int rpc_source_rate_take(RpcSourceTable *t, const RpcSourceAddr *a, uint64_t now_ms);

/* Addresses with an entry now (for tests). */
size_t rpc_source_table_size(RpcSourceTable *t);
