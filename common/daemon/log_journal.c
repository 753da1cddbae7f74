/* SPDX-License-Identifier: Apache-2.0 */
#define SD_JOURNAL_SUPPRESS_LOCATION 1

#include "log_journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static void journal_sink(int level,
                         int error,
                         const char *file,
                         int line,
                         const char *func,
                         const char *component,
                         const char *message) {
        char cl[32];

        snprintf(cl, sizeof(cl), "CODE_LINE=%d", line);
        sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", level, "CODE_FILE=%s", file,
                        "CODE_FUNC=%s", func, "%s", cl, "SYSLOG_IDENTIFIER=%s", component,
                        "ERRNO=%i", error, NULL);
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
        log_set_sink(stderr_is_journal() ? journal_sink : NULL);
}
