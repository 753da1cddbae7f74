/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Table-driven command-line flags plus an optional config file (SPIRE style).
 *
 *   static const Option table[] = {
 *           {"trustDomain", OPT_STRING, NULL, "Trust domain of this server"},
 *           {"serverPort", OPT_PORT, "8081", "TCP port of the node API"},
 *           {"defaultX509SvidTTL", OPT_DURATION, "1h", "Default X509-SVID lifetime"},
 *           {"selector", OPT_STRV, NULL, "Selector (repeatable)"},
 *           {"admin", OPT_BOOL, "false", "Admin entry"},
 *   };
 *   r = options_parse(table, ELEMENTSOF(table), argc, argv, &opts, &msg);
 *   if (r == -ECANCELED) return 0;                       help was printed to stdout
 *   if (r < 0) { fprintf(stderr, "%s\n", msg); ... }
 *
 * FLAGS. argv[0] (program or verb name) is skipped. Each option `name` is a flag given as
 * `-name value`, `-name=value`, `--name value` or `--name=value`. Names are
 * case-sensitive. OPT_BOOL flags take no separate value: `-admin` means true,
 * `-admin=false` sets false (true/false, yes/no, on/off, 1/0). OPT_STRV flags may be
 * repeated and append (`-selector a -selector b`); any other flag given twice keeps the
 * last value. `-h`, `-help` and `--help` print the help to stdout and make options_parse
 * return -ECANCELED (so main can exit 0). Parsing stops at `--` or at the first argument
 * that does not start with '-' (or is just "-"); the rest are positional arguments. A
 * value is always taken from the next argument, even if it starts with '-'.
 *
 * VALUES. OPT_STRING: any text. OPT_INT: decimal int64, optional '-'. OPT_PORT: 0..65535.
 * OPT_DURATION: parse_duration() syntax ("90", "90s", "5m", "1h30m", "7d"), read as
 * seconds. OPT_STRV: a list of strings. default_value is text parsed the same way
 * (for OPT_STRV it is a single element; NULL = unset/empty).
 *
 * CONFIG FILE. `-config FILE` (always accepted; a table may define "config" itself as
 * an OPT_STRING to give it a default path, in which case a missing default file is
 * ignored but a missing file named by the flag is an error). Every other option is also
 * a key of the file. Precedence: flags > file > defaults; a list given by flags replaces
 * the file's list. The file is read with libconfuse and is a flat list of assignments:
 *
 *     # comment (from '#' to the end of the line, outside quotes)
 *     trustDomain = "example.org"          # double quotes: C escapes (\n, \", \\)
 *     dataDir = /var/lib/warden            # bare words: no spaces, no = { } ( ) , + # " '
 *     logLevel = 'debug'                   # single quotes: literal text
 *     serverPort = 8081
 *     defaultX509SvidTTL = "1h"
 *     selector = { "unix:uid:0", "unix:user:root" }   # lists; may span lines
 *     selector += { "systemd:id:a.service" }          # append to a list
 *     admin = true
 *
 * A key given twice keeps the last value. `${VAR}` (and `${VAR:-default}`) expands from
 * the environment in bare words and in double quotes (libconfuse behaviour); use single
 * quotes for literal text. Only '#' comments: `//` and C-style block comments are rejected.
 * Errors name the file, the line and the key, e.g.
 *     server.conf:7: no such option 'trustDomian'
 *     server.conf:3: serverPort: not a port number: "http"
 * The file must be a regular file of at most OPTIONS_CONFIG_MAX bytes with no NUL byte.
 *
 * libconfuse keeps global lexer state: call options_parse() from one thread at a time
 * (normally main(), before starting threads). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OPTIONS_CONFIG_MAX (1024 * 1024)

typedef enum OptionType {
        OPT_STRING,
        OPT_INT,
        OPT_BOOL,
        OPT_DURATION,
        OPT_STRV,
        OPT_PORT,
} OptionType;

typedef struct Option {
        const char *name; /* flag "-name" and config key "name" */
        OptionType type;
        const char *default_value; /* text, parsed like a flag value; NULL = unset */
        const char *help;          /* one line */
} Option;

typedef struct Options Options;

/* Parses argv (then the config file, if any) against table[0..n). table must outlive
 * the result. On success *ret is the parsed set. On failure returns
 *   -ECANCELED  help was requested and printed to stdout;
 *   -EINVAL     unknown flag, missing or bad value, unknown config key, config syntax;
 *   -ENOENT     the config file named by -config does not exist (other open errors
 *               return their -errno);
 *   -EFBIG      config file larger than OPTIONS_CONFIG_MAX;
 *   -ENOMEM;
 * and, for every error but -ECANCELED and -ENOMEM, *reterr_message (if not NULL) is a
 * malloc'd one-line message such as `-serverPort: not a port number: "x"`. */
int options_parse(
        const Option *table, size_t n, int argc, char **argv, Options **ret, char **reterr_message);

/* Frees o; accepts NULL; returns NULL. */
Options *options_free(Options *o);

/* Value of an OPT_STRING option (or "config"), NULL when unset or not a string option. */
const char *options_get_string(const Options *o, const char *name);

/* Value of an OPT_INT, OPT_PORT or OPT_DURATION option; 0 when unset or unknown. */
int64_t options_get_int(const Options *o, const char *name);

/* Value of an OPT_BOOL option; false when unset or unknown. */
bool options_get_bool(const Options *o, const char *name);

/* Value of an OPT_DURATION option in seconds; 0 when unset or unknown. */
int64_t options_get_duration(const Options *o, const char *name);

/* Value of an OPT_PORT option; 0 when unset or unknown. */
uint16_t options_get_port(const Options *o, const char *name);

/* Elements of an OPT_STRV option (NULL-terminated, borrowed); *ret_n (optional) gets
 * the count. Never NULL for a known OPT_STRV option: an empty list is {NULL}. */
char *const *options_get_strv(const Options *o, const char *name, size_t *ret_n);

/* true when the option was given by a flag or in the config file (not just defaulted). */
bool options_is_set(const Options *o, const char *name);

/* Arguments left after the flags (borrowed from argv). *ret_n (optional) gets the count. */
char **options_positional(const Options *o, size_t *ret_n);

/* Prints one entry per option (plus -config when the table has none) with its value
 * kind, default and help text. */
/* Sets *ret (if not NULL) to a malloc'd message (NULL when out of memory) and returns
 * r: the one helper for "-flag: what is wrong" messages of option parsers. */
int options_fail_message(int r, char **ret, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* For a file an option names: 0 when path is readable, else -EINVAL with
 * "-<flag>: empty file name" or "-<flag>: cannot read <path>: <reason>" in *reterr_message. */
int options_check_readable_file(const char *flag, const char *path, char **reterr_message);

void options_print_help(const Option *table, size_t n, FILE *f);

/* _cleanup_(options_freep) Options *o = NULL; */
static inline void options_freep(Options **o) {
        options_free(*o);
}
