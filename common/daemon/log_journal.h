/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The daemons' log output: journald when systemd connected our stderr to the journal
 * (JOURNAL_STREAM names our stderr), with PRIORITY, CODE_FILE/LINE/FUNC, ERRNO and
 * SYSLOG_IDENTIFIER fields; stderr otherwise (basic/log.h). */

/* Decides between journald and stderr (call once after fds are settled). */
void log_open(void);
