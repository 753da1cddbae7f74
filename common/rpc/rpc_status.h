/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* gRPC status codes at the edge of the RPC layer. Inside Warden errors are
 * negative errno values; they turn into a gRPC status only here, from one table. */

#include <grpc/status.h>

/* Name of a status code ("OK", "INVALID_ARGUMENT", ...), "UNKNOWN" for other values. */
const char *rpc_status_to_string(int status);

/* Maps a negative errno (a handler's failure) to the status sent to the client:
 *   0                                        OK
 *   -EINVAL, -EBADMSG                        INVALID_ARGUMENT
 *   -EPERM, -EACCES                          PERMISSION_DENIED
 *   -EKEYREVOKED, -EKEYREJECTED, -EKEYEXPIRED PERMISSION_DENIED
 *   -ENOENT                                  NOT_FOUND
 *   -EEXIST                                  ALREADY_EXISTS
 *   -EAGAIN, -ECONNREFUSED, -ENOTCONN,
 *   -ESHUTDOWN                               UNAVAILABLE
 *   -ESRCH (caller exited before attestation) UNAUTHENTICATED
 *   -ENOSYS, -EOPNOTSUPP                     UNIMPLEMENTED
 *   -ETIMEDOUT                               DEADLINE_EXCEEDED
 *   -ECANCELED                               CANCELLED
 *   -E2BIG, -EMSGSIZE, -ENOMEM, -ENOSPC,
 *   -EDQUOT                                  RESOURCE_EXHAUSTED (a size cap or quota was hit)
 *   anything else                            INTERNAL
 * Positive values are treated like their negation. */
grpc_status_code errno_to_grpc_status(int r);

/* The reverse, for clients that want a -errno from a call's status:
 *   OK 0, CANCELLED -ECANCELED, INVALID_ARGUMENT -EINVAL, DEADLINE_EXCEEDED -ETIMEDOUT,
 *   NOT_FOUND -ENOENT, ALREADY_EXISTS -EEXIST, PERMISSION_DENIED -EPERM,
 *   UNAUTHENTICATED -EACCES, RESOURCE_EXHAUSTED -ENOBUFS, FAILED_PRECONDITION -EBUSY,
 *   ABORTED -ECONNABORTED, OUT_OF_RANGE -ERANGE, UNIMPLEMENTED -EOPNOTSUPP,
 *   UNAVAILABLE -EAGAIN, DATA_LOSS -EIO, INTERNAL/UNKNOWN/other -EPROTO. */
int rpc_status_to_errno(int status);
