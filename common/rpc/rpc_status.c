/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "rpc_status.h"

#include <errno.h>

#include "cleanup.h"

static const char *const status_names[] = {
        [GRPC_STATUS_OK] = "OK",
        [GRPC_STATUS_CANCELLED] = "CANCELLED",
        [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
        [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
        [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
        [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
        [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [GRPC_STATUS_ABORTED] = "ABORTED",
        [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
        [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
        [GRPC_STATUS_INTERNAL] = "INTERNAL",
        [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
        [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
        [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *rpc_status_to_string(int status) {
        if (status < 0 || (size_t) status >= ELEMENTSOF(status_names) || !status_names[status])
                return "UNKNOWN";
        return status_names[status];
}

grpc_status_code errno_to_grpc_status(int r) {
        switch (r < 0 ? -r : r) {
        case 0:
                return GRPC_STATUS_OK;
        case EINVAL:
        case EBADMSG:
                return GRPC_STATUS_INVALID_ARGUMENT;
        case EPERM:
        case EACCES:
        case EKEYREVOKED:
        case EKEYREJECTED:
        case EKEYEXPIRED:
                return GRPC_STATUS_PERMISSION_DENIED;
        case ENOENT:
                return GRPC_STATUS_NOT_FOUND;
        case EEXIST:
                return GRPC_STATUS_ALREADY_EXISTS;
        case EAGAIN:
        case ECONNREFUSED:
        case ENOTCONN:
        case ESHUTDOWN:
                return GRPC_STATUS_UNAVAILABLE;
        case ESRCH:
                return GRPC_STATUS_UNAUTHENTICATED;
        case ENOSYS:
        case EOPNOTSUPP:
                return GRPC_STATUS_UNIMPLEMENTED;
        case ETIMEDOUT:
                return GRPC_STATUS_DEADLINE_EXCEEDED;
        case ECANCELED:
                return GRPC_STATUS_CANCELLED;
        case E2BIG:
        case EMSGSIZE:
        case ENOMEM:
        case ENOSPC:
        case EDQUOT:
                return GRPC_STATUS_RESOURCE_EXHAUSTED;
        default:
                return GRPC_STATUS_INTERNAL;
        }
}

int rpc_status_to_errno(int status) {
        switch (status) {
        case GRPC_STATUS_OK:
                return 0;
        case GRPC_STATUS_CANCELLED:
                return -ECANCELED;
        case GRPC_STATUS_INVALID_ARGUMENT:
                return -EINVAL;
        case GRPC_STATUS_DEADLINE_EXCEEDED:
                return -ETIMEDOUT;
        case GRPC_STATUS_NOT_FOUND:
                return -ENOENT;
        case GRPC_STATUS_ALREADY_EXISTS:
                return -EEXIST;
        case GRPC_STATUS_PERMISSION_DENIED:
                return -EPERM;
        case GRPC_STATUS_UNAUTHENTICATED:
                return -EACCES;
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
                return -ENOBUFS;
        case GRPC_STATUS_FAILED_PRECONDITION:
                return -EBUSY;
        case GRPC_STATUS_ABORTED:
                return -ECONNABORTED;
        case GRPC_STATUS_OUT_OF_RANGE:
                return -ERANGE;
        case GRPC_STATUS_UNIMPLEMENTED:
                return -EOPNOTSUPP;
        case GRPC_STATUS_UNAVAILABLE:
                return -EAGAIN;
        case GRPC_STATUS_DATA_LOSS:
                return -EIO;
        default:
                return -EPROTO;
        }
}
