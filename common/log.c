/* SPDX-License-Identifier: Apache-2.0 */
#define SD_JOURNAL_SUPPRESS_LOCATION 1

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

#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;
static int use_journal = 0;
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

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected to our stderr. */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_open(void) {
        use_journal = stderr_is_journal();
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

        if (use_journal) {
                char cl[32];
                snprintf(cl, sizeof(cl), "CODE_LINE=%d", line);
                sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%i", level, "CODE_FILE=%s", file,
                                "CODE_FUNC=%s", func, "%s", cl, "SYSLOG_IDENTIFIER=%s", component,
                                "ERRNO=%i", error, NULL);
        } else {
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
