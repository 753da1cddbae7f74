/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The issuing server's data model: registration entries here; attested agents, join
 * tokens and stored federation bundles in attested_agent.h, join_token.h and
 * bundle_row.h. Plain C structs with owned strings.
 *
 * Every *_free() accepts NULL and returns NULL. Copies are deep. Timestamps are
 * seconds since the Unix epoch (0 = unset / never). TTLs are seconds (0 = the
 * server's default). Validation of outside input is entry_validate(); the
 * datastore itself only refuses what it cannot store (see ds.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "selector.h"

/* Caps enforced by entry_validate() (the datastore enforces the count caps too). */
#define ENTRY_SELECTORS_MAX 64
#define ENTRY_DNS_NAMES_MAX 32
#define ENTRY_FEDERATES_WITH_MAX 32
#define ENTRY_SCOPES_MAX 32
#define ENTRY_HINT_MAX 1024
#define ENTRY_TASK_MAX 256
#define ENTRY_SCOPE_MAX 256
#define ENTRY_ACTOR_MAX 256 /* created_by / approved_by */
#define ENTRY_ID_MAX 64
#define ENTRY_TTL_MAX (366 * 24 * 3600) /* one (leap) year */
#define DNS_NAME_MAX 253

typedef struct Entry {
        char *id; /* server-assigned: 16 random bytes as lowercase hex */
        char *spiffe_id;
        char *parent_id;
        SelectorSet selectors;
        int32_t x509_svid_ttl; /* seconds, 0 = default */
        int32_t jwt_svid_ttl;  /* seconds, 0 = default */
        char **dns_names;
        size_t n_dns_names;
        char **federates_with; /* bare trust-domain names */
        size_t n_federates_with;
        char *hint;
        bool admin;
        bool node; /* a node alias entry */
        bool downstream;
        int64_t expires_at; /* 0 = never */
        int64_t revision;
        int64_t created_at;
        char *env;   /* "dev", "test", "prod" or NULL/"" */
        char *task;  /* may be NULL */
        char *state; /* "active", "pending_approval", "revoked" or NULL/"" */
        char *created_by;
        char *approved_by;
        char **scopes;
        size_t n_scopes;
} Entry;

/* A zeroed entry. -ENOMEM. */
int entry_new(Entry **ret);
Entry *entry_free(Entry *e);
/* Deep copy of every field. -ENOMEM. */
int entry_copy(const Entry *e, Entry **ret);
/* Frees every element of an array returned by a list call, then the array. */
Entry **entry_array_free(Entry **a, size_t n);

/* Helpers that duplicate their inputs into a string list (char **, size_t). */
int entry_add_dns_name(Entry *e, const char *name);
int entry_add_federates_with(Entry *e, const char *td);
int entry_add_scope(Entry *e, const char *scope);

/* Checks an entry against the server's trust domain (bare name). Returns 0 or
 * -EINVAL with a static reason naming the violated rule:
 *   spiffe_id a valid workload SPIFFE ID in trust_domain, not in the reserved /warden
 *   namespace (an SVID for the server's or an agent's ID would let its holder act as
 *   them on the node API); parent_id a valid SPIFFE ID in trust_domain; 1..64
 *   selectors, each valid (selector_validate()); TTLs 0..1 year; expires_at >= 0;
 *   <= 32 valid DNS names; <= 32 federates_with, each a valid trust domain other than
 *   ours; hint <= 1024 bytes of UTF-8 without control characters (workloads get it in
 *   a proto3 string, which strict clients refuse to parse otherwise); env one of
 *   dev/test/prod/empty; state one of active/pending_approval/revoked/empty; task <=
 *   256 bytes; <= 32 scopes of 1..256 printable bytes; created_by and approved_by <=
 *   256 bytes; id (when set) 1..64 bytes of [A-Za-z0-9_-]. */
int entry_validate(const Entry *e, const char *trust_domain, const char **reterr_reason);

/* The path below which Warden names its own identities (spiffe://<td>/warden/server,
 * spiffe://<td>/warden/agent/...): never a registration entry's spiffe_id, like SPIRE's
 * /spire namespace. */
#define ENTRY_RESERVED_PATH "/warden"

/* true when spiffe_id's path is ENTRY_RESERVED_PATH or lies below it. */
bool entry_spiffe_id_is_reserved(const char *spiffe_id);

/* 0 when name is a DNS name for an X.509 SAN: 1..253 bytes, dot-separated labels
 * of 1..63 [A-Za-z0-9-] not starting or ending with '-', optionally a leading
 * "*." wildcard label; else -EINVAL. The rules of warden_dns_name_validate(), which the
 * CA applies when signing, so an entry that validates can always be signed. */
int entry_dns_name_validate(const char *name, const char **reterr_reason);

/* 0 when id is usable as an entry ID: 1..64 bytes of [A-Za-z0-9_-]; else -EINVAL. */
int entry_id_validate(const char *id);

DEFINE_TRIVIAL_CLEANUP_FUNC(Entry *, entry_free)
