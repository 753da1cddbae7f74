/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between options.c (flags, getters, help) and options_file.c (config file). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

typedef enum OptionSource {
        OPTION_SOURCE_NONE,
        OPTION_SOURCE_DEFAULT,
        OPTION_SOURCE_FILE,
        OPTION_SOURCE_FLAG,
} OptionSource;

typedef struct OptionValue {
        const Option *option;
        OptionSource source;
        char *string;   /* OPT_STRING */
        int64_t number; /* OPT_INT, OPT_PORT, OPT_DURATION */
        bool boolean;   /* OPT_BOOL */
        char **strv;    /* OPT_STRV, NULL-terminated once anything was added */
        size_t n_strv;
} OptionValue;

struct Options {
        OptionValue *values;
        size_t n_values;
        Option config_option; /* used when the table has no "config" */
        char **positional;
        size_t n_positional;
};

#define OPTIONS_CONFIG_NAME "config"

/* Checks text against the option's type. 0, or -EINVAL with a static problem text
 * such as "not a port number". */
int option_check_value(const Option *opt, const char *text, const char **reterr_problem);

/* Stores text as the value from source. A value from a new source replaces the old
 * one; OPT_STRV values from the same source append. -EINVAL (with problem) or -ENOMEM. */
int option_value_set(OptionValue *v,
                     const char *text,
                     OptionSource source,
                     const char **reterr_problem);

/* Drops any value (used when a config list is empty). */
void option_value_clear(OptionValue *v);

/* Looks up a value slot by option name (config included); NULL if unknown. */
OptionValue *options_find(const Options *o, const char *name);

/* Copies text for an error message: at most 64 bytes, non-printable bytes as '?'. */
void option_quote_value(const char *text, char buf[static 72]);

/* Reads the config file at path into o (keys not already set by a flag).
 * must_exist: a missing file is an error (-ENOENT) rather than ignored. */
int options_load_file(Options *o, const char *path, bool must_exist, char **reterr_message);
