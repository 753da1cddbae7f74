/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Conversions between the server's registration entries (entry.h) and the
 * warden.types.v1.Entry messages used on the node and admin APIs (attested agents:
 * attested_agent_to_pb()).
 *
 * *_to_pb() build deep copies in which every string, byte array and sub-message
 * is malloc'd, so the result is released with pb_free() (protobuf-c's
 * free_unpacked with the default allocator). *_from_pb() validate what a peer
 * sent and return our own model. The generic helpers (pb_free, pb_pack, pb_strdup)
 * and the Bundle/Selector conversions live in common/pb_util.h. */

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <warden/bundle.h>

#include "entry.h"
#include "pb_util.h"
#include "warden/types/v1/types.pb-c.h"

int entry_to_pb(const Entry *e, Warden__Types__V1__Entry **ret);

/* Copies pb into a new Entry. Selectors are validated (-EINVAL + reason); empty
 * optional strings become NULL. entry_validate() is the caller's next step. */
int entry_new_from_pb(const Warden__Types__V1__Entry *pb, Entry **ret, const char **reterr_reason);
