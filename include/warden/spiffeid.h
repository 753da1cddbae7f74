/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* SPIFFE IDs and trust domains, validated exactly as spec/SPIFFE-FACTS.md §1
 * (go-spiffe's FromString algorithm, plus the 2048/255-byte length limits).
 *
 * All functions are pure and thread-safe. Every rejection returns -EINVAL and,
 * when reterr_reason is not NULL, a static reason string ("wrong scheme",
 * "bad trust domain character", "dot segment", ...). */

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARDEN_SPIFFEID_MAX 2048
#define WARDEN_TRUST_DOMAIN_MAX 255

/* 0 when s is a valid SPIFFE ID (path optional), else -EINVAL. */
int warden_spiffeid_validate(const char *s, const char **reterr_reason);

/* Like validate, and also requires a non-empty path (a workload/leaf SVID ID). */
int warden_spiffeid_validate_workload(const char *s, const char **reterr_reason);

/* Splits a valid ID: *ret_td = bare trust domain ("example.org"), *ret_path = path
 * ("" or "/a/b"). Both malloc'd; either out pointer may be NULL. */
int warden_spiffeid_parse(const char *s,
                          char **ret_td,
                          char **ret_path,
                          const char **reterr_reason);

/* Bare trust domain name ("example.org"): non-empty, [a-z0-9._-], <= 255 bytes. */
int warden_trust_domain_validate(const char *td, const char **reterr_reason);

/* Accepts a bare name or any valid ID (treated as an ID when it contains ":/"),
 * as go-spiffe TrustDomainFromString. *ret_td is malloc'd. */
int warden_trust_domain_from_string(const char *s, char **ret_td, const char **reterr_reason);

/* Builds "spiffe://<td><path>" and validates the result. path may be NULL or "". */
int warden_spiffeid_format(const char *td, const char *path, char **ret);

/* Builds the trust domain's own ID "spiffe://<td>". */
int warden_trust_domain_id(const char *td, char **ret);

/* true when the (valid) id belongs to trust domain td (bare name). */
bool warden_spiffeid_member_of(const char *id, const char *td);

/* true when id equals prefix or lies below it by whole segments:
 * "spiffe://a/b/c" has prefix "spiffe://a/b" but not "spiffe://a/b/c2" nor "spiffe://a/bc". */
bool warden_spiffeid_has_prefix(const char *id, const char *prefix);

/* Byte-wise equality of two IDs (IDs are emitted in canonical lowercase form). */
bool warden_spiffeid_equal(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
