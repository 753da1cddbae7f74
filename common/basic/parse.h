/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Small parsers for command-line and config-file values.
 *
 * All take a NUL-terminated string and write *ret only on success. Numbers are plain
 * decimal: no sign (except parse_int64's '-'), no "0x", no whitespace, no empty string.
 * Errors: -EINVAL for bad syntax, -ERANGE for a number that does not fit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decimal 0..UINT64_MAX. */
int parse_uint64(const char *s, uint64_t *ret);

/* Decimal 0..UINT32_MAX. */
int parse_uint32(const char *s, uint32_t *ret);

/* Decimal with an optional leading '-', INT64_MIN..INT64_MAX. */
int parse_int64(const char *s, int64_t *ret);

/* TCP/UDP port 0..65535. */
int parse_port(const char *s, uint16_t *ret);

/* "true"/"false", "yes"/"no", "on"/"off", "1"/"0" (case-insensitive). */
int parse_bool(const char *s, bool *ret);

/* Duration in seconds: a bare number ("90") means seconds; otherwise one or more
 * <number><unit> groups with units d, h, m, s, each unit at most once and in that
 * order: "90s", "5m", "1h", "24h", "1h30m", "7d", "1d12h30m15s". Rejects empty input,
 * signs, spaces, fractions, unknown units ("1ms", "1w"), a trailing bare number ("1h30"),
 * and totals over INT64_MAX seconds (-ERANGE). */
int parse_duration(const char *s, int64_t *ret_seconds);

/* Formats seconds the way parse_duration reads them ("1h30m", "7d", "0s") into buf.
 * Returns buf. A buffer of DURATION_STRING_MAX bytes always suffices; negative input
 * yields "-" followed by the absolute value. */
#define DURATION_STRING_MAX 48
char *format_duration(int64_t seconds, char *buf, size_t size);

/* A user: decimal uid 0..4294967294, or a user name looked up with getpwnam_r.
 * A string of digits is always a number: -ERANGE above 4294967294 ((uid_t) -1 is
 * reserved). -ENOENT when no such user exists, -EINVAL for an empty string. */
int parse_uid(const char *s, uid_t *ret);

/* A group: decimal gid 0..4294967294, or a group name looked up with getgrnam_r. */
int parse_gid(const char *s, gid_t *ret);

/* Unix time t as RFC 3339 in UTC, "2026-05-01T12:00:00Z": the one format of every time
 * Warden prints. A buffer of TIMESTAMP_STRING_MAX bytes suffices. Returns buf. */
#define TIMESTAMP_STRING_MAX 32
char *format_timestamp(int64_t t, char *buf, size_t size);
/* format_timestamp() into a buffer that lives until the end of the enclosing block, for
 * log lines: log_info("... expires=%s", FORMAT_TIMESTAMP(t)). */
#define FORMAT_TIMESTAMP(t)                                                                        \
        format_timestamp((t), (char[TIMESTAMP_STRING_MAX]){}, TIMESTAMP_STRING_MAX)

/* Latest time accepted by parse_timestamp(): 9999-12-31T23:59:59Z. */
#define TIMESTAMP_MAX INT64_C(253402300799)

/* A point in time: Unix seconds ("1767225600") or RFC 3339 ("2026-01-01T00:00:00Z",
 * "2026-01-01T01:00:00+01:00"; 't' or a space may stand for 'T', 'z' for 'Z';
 * fractions of a second are dropped; dates that do not exist are refused). -EINVAL
 * for bad syntax, -ERANGE before 1970 or after TIMESTAMP_MAX. */
int parse_timestamp(const char *s, int64_t *ret);
