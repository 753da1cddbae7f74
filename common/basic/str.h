/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Small string helpers. */

/* Duplicates s into *ret; NULL stays NULL. 0 or -ENOMEM (*ret untouched). */
int str_dup_opt(const char *s, char **ret);
