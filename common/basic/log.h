/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Process-wide logging.
 *
 * Levels are syslog's (LOG_ERR .. LOG_DEBUG). Output goes to stderr as
 * "TIME LEVEL component: message key=value...", or to a sink set with log_set_sink()
 * (the daemons' journald sink, daemon/log_journal.h). Code in common/ logs at debug
 * only; handlers and main() decide what users see.
 *
 * log_*_errno(r, ...) logs with errno = -r (so %m prints its text) and returns r,
 * so a caller can `return log_error_errno(r, "Failed to open %s: %m", path);`.
 * Never pass keys or whole tokens to these functions. */

#include <stdarg.h>
#include <syslog.h>

/* Sets the component name shown on stderr lines ("server", "agent", ...). */
void log_set_component(const char *name);
void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "error", "warn", "warning", "info", "debug" (case-insensitive) into a
 * syslog level. Returns the level or -EINVAL. */
int log_level_from_string(const char *s);
/* The name of a syslog level as log_level_from_string() reads it: "error" (LOG_ERR and
 * above), "warning", "notice", "info", "debug". */
const char *log_level_to_string(int level);
/* Reads WARDEN_LOG_LEVEL if set; returns 0 or -EINVAL for a bad value. */
int log_parse_environment(void);
/* Where formatted messages go instead of stderr (NULL: back to stderr). Set once, before
 * threads start. */
typedef void (*LogSink)(int level,
                        int error,
                        const char *file,
                        int line,
                        const char *func,
                        const char *component,
                        const char *message);
void log_set_sink(LogSink sink);

int log_internal(
        int level, int error, const char *file, int line, const char *func, const char *format, ...)
        __attribute__((format(printf, 6, 7)));

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l = (level), _e = (error);                                                    \
                (log_get_max_level() >= _l)                                                        \
                        ? log_internal(_l, _e, __FILE__, __LINE__, __func__, __VA_ARGS__)          \
                        : -((_e) < 0 ? -(_e) : (_e));                                              \
        })

#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
