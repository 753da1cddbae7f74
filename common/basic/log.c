/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int max_level = LOG_INFO;
static LogSink sink;
static const char *component = "warden";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_component(const char *name) {
        component = name ? name : "warden";
}

void log_set_max_level(int level) {
        if (level < LOG_EMERG)
                level = LOG_EMERG;
        if (level > LOG_DEBUG)
                level = LOG_DEBUG;
        __atomic_store_n(&max_level, level, __ATOMIC_RELAXED);
}

int log_get_max_level(void) {
        return __atomic_load_n(&max_level, __ATOMIC_RELAXED);
}

int log_level_from_string(const char *s) {
        static const struct {
                const char *name;
                int level;
        } table[] = {
                {"error", LOG_ERR},       {"err", LOG_ERR},       {"warn", LOG_WARNING},
                {"warning", LOG_WARNING}, {"notice", LOG_NOTICE}, {"info", LOG_INFO},
                {"debug", LOG_DEBUG},
        };
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (strcasecmp(s, table[i].name) == 0)
                        return table[i].level;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level <= LOG_ERR)
                return "error";
        switch (level) {
        case LOG_WARNING:
                return "warning";
        case LOG_NOTICE:
                return "notice";
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

int log_parse_environment(void) {
        const char *e = getenv("WARDEN_LOG_LEVEL");
        if (!e || !*e)
                return 0;
        int l = log_level_from_string(e);
        if (l < 0)
                return l;
        log_set_max_level(l);
        return 0;
}

void log_set_sink(LogSink s) {
        sink = s;
}

static const char *level_name(int level) {
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
                return "CRIT";
        case LOG_ERR:
                return "ERROR";
        case LOG_WARNING:
                return "WARN";
        case LOG_NOTICE:
                return "NOTICE";
        case LOG_INFO:
                return "INFO";
        default:
                return "DEBUG";
        }
}

int log_internal(int level,
                 int error,
                 const char *file,
                 int line,
                 const char *func,
                 const char *format,
                 ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error < 0)
                error = -error;
        /* %m prints strerror(errno): make it the error we were given. */
        errno = error;
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (sink)
                sink(level, error, file, line, func, component, buf);
        else {
                struct timespec ts;
                struct tm tm;
                char when[32];

                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                pthread_mutex_lock(&log_lock);
                fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000,
                        level_name(level), component, buf);
                pthread_mutex_unlock(&log_lock);
        }
        errno = saved;
        return -error;
}
