/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Workload selectors and sorted selector sets.
 *
 * Text form: "type:value", split at the first ':'. For the built-in types the value is
 * itself "key:rest", e.g. "unix:uid:0", "unix:user:root", "unix:path:/usr/bin/python3",
 * "systemd:id:foo.service".
 *
 * Generic rules (every type):
 *   - type: [a-z0-9_-], 1..32 bytes;
 *   - value: 1..1024 bytes of printable ASCII 0x20..0x7e, no leading or trailing space
 *     (so no control characters, no NUL, no bytes >= 0x80).
 * Built-in types also check the key and its argument:
 *   unix:    uid, gid, supplementary_gid    decimal 0..4294967294, no sign, no leading zero
 *            user, group, supplementary_group  non-empty name
 *            path                              absolute path ("/...")
 *            sha256                            64 lowercase hex digits
 *   systemd: id                                non-empty unit name
 *            fragment_path                     absolute path
 * Unknown types (future plugins) are accepted with the generic rules only.
 * Numbers are canonical (no "007"), so two selectors match exactly when their bytes match.
 *
 * A SelectorSet is kept sorted (type, then value, bytewise) and free of duplicates.
 * An entry holds at most WARDEN_SELECTORS_MAX selectors; a workload's attested set may be
 * larger (many supplementary groups), so a set's cap is selectable through its `max`
 * field (0 means WARDEN_SELECTORS_MAX). */

#include <stdbool.h>
#include <stddef.h>

#define WARDEN_SELECTORS_MAX 64
#define WARDEN_WORKLOAD_SELECTORS_MAX 1024
#define SELECTOR_TYPE_MAX 32
#define SELECTOR_VALUE_MAX 1024

typedef struct Selector {
        char *type;
        char *value;
} Selector;

typedef struct SelectorSet {
        Selector *items;
        size_t n;
        size_t allocated;
        size_t max; /* cap on n; 0 = WARDEN_SELECTORS_MAX */
} SelectorSet;

/* Iterates `const Selector *s` over a set. */
#define FOREACH_SELECTOR(s, set)                                                                   \
        for (const Selector *s = (set)->items; (s) && (s) < (set)->items + (set)->n; (s)++)

/* Checks a (type, value) pair against the rules above. 0, or -EINVAL with a static reason. */
int selector_validate(const char *type, const char *value, const char **reterr_reason);

/* Parses "type:value" and validates it. On success fills *ret with owned copies
 * (release with selector_done()). -EINVAL with a reason on bad input, -ENOMEM. */
int selector_parse(const char *s, Selector *ret, const char **reterr_reason);

/* Frees the members of s and clears them; s may be NULL. */
void selector_done(Selector *s);

/* *ret = malloc'd "type:value". */
int selector_format(const Selector *s, char **ret);

/* strcmp-like order: by type, then by value. */
int selector_compare(const Selector *a, const Selector *b);

/* Validates and inserts a copy of (type, value), keeping the set sorted. Adding a
 * selector already present is a no-op returning 0. -EINVAL (bad selector), -E2BIG (set
 * full), -ENOMEM. On failure the set is unchanged. */
int selector_set_add(SelectorSet *set, const char *type, const char *value);

/* selector_parse() + selector_set_add(). reterr_reason is set on -EINVAL. */
int selector_set_add_string(SelectorSet *set, const char *s, const char **reterr_reason);

/* Deep copy of src into *ret (same cap). */
int selector_set_copy(const SelectorSet *src, SelectorSet *ret);

/* Frees all members and resets the set to empty (keeps `max`); set may be NULL. */
void selector_set_done(SelectorSet *set);

/* Binary search for s in set. */
bool selector_set_contains(const SelectorSet *set, const Selector *s);

/* The entry-matching rule: true when entry is non-empty and every selector of entry is
 * in have. Linear merge over the two sorted sets, O(n + m). */
bool selector_set_is_subset(const SelectorSet *entry, const SelectorSet *have);
