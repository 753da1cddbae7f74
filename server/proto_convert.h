/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Conversions between the server's C model (entry.h, WardenBundle) and the
 * warden.types.v1 protobuf messages used on the node and admin APIs.
 *
 * *_to_pb() build deep copies in which every string, byte array and sub-message
 * is malloc'd, so the result is released with pb_free() (protobuf-c's
 * free_unpacked with the default allocator). *_from_pb() validate what a peer
 * sent and return our own model. */

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <warden/bundle.h>

#include "entry.h"
#include "warden/types/v1/types.pb-c.h"

/* Frees a message built by *_to_pb() or unpacked by protobuf-c. NULL is fine. */
void pb_free(void *msg);

/* Serializes any message into a malloc'd buffer. */
int pb_pack(const void *msg, uint8_t **ret, size_t *ret_len);

/* strdup() that maps NULL to "" (protobuf-c strings are never NULL). */
char *pb_strdup(const char *s);

int entry_to_pb(const Entry *e, Warden__Types__V1__Entry **ret);

/* Copies pb into a new Entry. Selectors are validated (-EINVAL + reason); empty
 * optional strings become NULL. entry_validate() is the caller's next step. */
int entry_from_pb(const Warden__Types__V1__Entry *pb, Entry **ret, const char **reterr_reason);

int agent_to_pb(const AttestedAgent *a, Warden__Types__V1__AttestedAgent **ret);

int bundle_to_pb(const WardenBundle *b, Warden__Types__V1__Bundle **ret);

/* Rebuilds a bundle: every X.509 authority must be a DER certificate and every JWT
 * key a DER SubjectPublicKeyInfo with a kid; -EINVAL + reason otherwise. */
int bundle_from_pb(const Warden__Types__V1__Bundle *pb,
                   WardenBundle **ret,
                   const char **reterr_reason);

/* Fills a repeated-selector field (type/value pairs) from a set. */
int selectors_to_pb(const SelectorSet *set, Warden__Types__V1__Selector ***ret, size_t *ret_n);
int selectors_from_pb(Warden__Types__V1__Selector *const *sel,
                      size_t n,
                      SelectorSet *ret,
                      const char **reterr_reason);
