/* SPDX-License-Identifier: Apache-2.0 */
#include "rpc_message.h"

#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"

int rpc_message_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *p;

        if (n > RPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        p = malloc(n > 0 ? n : 1);
        if (!p)
                return -ENOMEM;
        *ret_len = protobuf_c_message_pack(m, p);
        *ret = p;
        return 0;
}

void rpc_message_free(uint8_t *p, size_t len, RpcMessageFlags flags) {
        if (p && (flags & RPC_MESSAGE_ERASE))
                explicit_erase(p, len);
        free(p);
}

int rpc_message_unpack(RpcCall *c, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret) {
        const void *data;
        ProtobufCMessage *m;
        size_t len;

        data = rpc_call_request(c, &len);
        m = protobuf_c_message_unpack(desc, NULL, len, data);
        if (!m)
                return -EINVAL;
        *ret = m;
        return 0;
}

int rpc_message_reply(RpcCall *c, const ProtobufCMessage *m, RpcMessageFlags flags) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        r = rpc_message_pack(m, &buf, &len);
        if (r < 0)
                return r;
        r = rpc_call_reply(c, buf, len);
        rpc_message_free(buf, len, flags);
        if (r == -ENOTCONN)
                return 0;
        return r < 0 ? r : 1;
}
