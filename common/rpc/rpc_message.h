/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Protobuf messages on an RpcCall: the one copy of "unpack the request" and "pack the
 * answer and reply" that every service (node API, admin API, Workload API) uses, with
 * the layer's size limit (RPC_MAX_MESSAGE_SIZE).
 *
 *   r = rpc_message_unpack(c, &foo_request__descriptor, (ProtobufCMessage **) &req);
 *   if (r < 0)
 *           return r;                     // -EINVAL: INVALID_ARGUMENT
 *   ...
 *   return rpc_message_reply(c, &resp.base, 0);
 */

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"

typedef enum RpcMessageFlags {
        /* The packed bytes may hold secrets (keys, tokens, nonces): wipe them before
         * they are freed. */
        RPC_MESSAGE_ERASE = 1u << 0,
} RpcMessageFlags;

/* Packs m into a malloc'd buffer of exactly its size (*ret is never NULL on success).
 * -EMSGSIZE past RPC_MAX_MESSAGE_SIZE (checked before anything is allocated), -ENOMEM. */
int rpc_message_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len);

/* Wipes (with RPC_MESSAGE_ERASE) and frees a buffer of rpc_message_pack(). NULL is fine. */
void rpc_message_free(uint8_t *p, size_t len, RpcMessageFlags flags);

/* Unpacks the call's request as a message of desc, into a new message that the caller
 * frees with protobuf_c_message_free_unpacked(). -EINVAL when the bytes are not such a
 * message ("malformed request"). */
int rpc_message_unpack(RpcCall *c, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret);

/* The unary answer: packs m (rpc_message_pack()) and replies with it and status OK
 * (rpc_call_reply()). Returns 1 when the answer was queued, 0 when the call had gone
 * away already (cancelled, deadline, shutdown: nobody left to answer), -EMSGSIZE,
 * -ENOMEM, -EALREADY (a status went out before), -EIO. */
int rpc_message_reply(RpcCall *c, const ProtobufCMessage *m, RpcMessageFlags flags);
