/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The admin API (proto/warden/admin/v1/admin.proto) on the admin Unix socket. Only
 * callers whose uid (SO_PEERCRED) is 0, the server's own uid or one of -adminUIDs are
 * served; everyone else gets PERMISSION_DENIED. Handlers run on the main thread. */

#include "server.h"

int admin_api_register(Server *s, RpcServer *rpc);
