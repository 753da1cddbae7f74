/* SPDX-License-Identifier: Apache-2.0 */
/* The optional config file of options.h, read with libconfuse.
 *
 * libconfuse 3.3 miscounts lines after comments, so '#' comments are blanked out here
 * (newlines kept) before libconfuse sees the text; its line numbers are then exact.
 * Its error and validate callbacks carry no user pointer, so the parse in progress is
 * reached through a thread-local pointer that is set only around cfg_parse_buf(). */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <confuse.h>

#include "cleanup.h"
#include "options_internal.h"

typedef struct FileParse {
        Options *options;
        const char *path;
        char *error; /* first error: "path:line: text" */
} FileParse;

static _Thread_local FileParse *current_parse;

DEFINE_TRIVIAL_CLEANUP_FUNC(cfg_t *, cfg_free)

/* libconfuse's cfg_errfunc_t; fmt is a printf format. */
static void on_error(cfg_t *cfg, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_error(cfg_t *cfg, const char *fmt, va_list ap) {
        FileParse *p = current_parse;
        _cleanup_free_ char *text = NULL;

        if (!p || p->error)
                return; /* keep the first error only */
        if (vasprintf(&text, fmt, ap) < 0)
                return;
        for (char *c = text; *c; c++) /* the file's bytes may be anything */
                if (*c < 0x20 || *c > 0x7e)
                        *c = '?';
        if (asprintf(&p->error, "%s:%d: %s", p->path, cfg ? cfg->line : 0, text) < 0)
                p->error = NULL;
}

static int on_validate(cfg_t *cfg, cfg_opt_t *opt) {
        FileParse *p = current_parse;
        const OptionValue *v = p ? options_find(p->options, opt->name) : NULL;

        if (!v)
                return 0;
        for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
                const char *text = cfg_opt_getnstr(opt, i), *problem = NULL;
                char quoted[72];

                if (!text || option_check_value(v->option, text, &problem) >= 0)
                        continue;
                option_quote_value(text, quoted);
                cfg_error(cfg, "%s: %s: \"%s\"", opt->name, problem, quoted);
                return -1;
        }
        return 0;
}

/* Reads the whole file (a regular file of at most OPTIONS_CONFIG_MAX bytes). Sets
 * *ret = NULL and returns 0 when it does not exist and !must_exist. */
static int read_config(const char *path, bool must_exist, char **ret, char **reterr_message) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ENOENT && !must_exist) {
                *ret = NULL;
                return 0;
        }
        if (fd < 0 || fstat(fd, &st) < 0)
                return options_fail_message(-errno, reterr_message, "%s: %m", path);
        if (!S_ISREG(st.st_mode))
                return options_fail_message(-EINVAL, reterr_message, "%s: not a regular file",
                                            path);

        buf = malloc(OPTIONS_CONFIG_MAX + 2);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + size, OPTIONS_CONFIG_MAX + 1 - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return options_fail_message(-errno, reterr_message, "%s: %m", path);
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > OPTIONS_CONFIG_MAX)
                        return options_fail_message(-EFBIG, reterr_message,
                                                    "%s: larger than %d bytes", path,
                                                    OPTIONS_CONFIG_MAX);
        }
        buf[size] = '\0';
        if (strlen(buf) != size)
                return options_fail_message(-EINVAL, reterr_message, "%s: contains a NUL byte",
                                            path);
        *ret = TAKE_PTR(buf);
        return 0;
}

static bool starts_token(const char *buf, size_t i) {
        return i == 0 || strchr(" \t\r\n={}(),+", buf[i - 1]);
}

/* Blanks '#' comments outside quotes (keeping newlines) and rejects the comment
 * styles that we do not support, mirroring libconfuse's lexer: '"' and '\'' start
 * strings in which a backslash escapes the next byte. */
static int strip_comments(char *buf, const char *path, char **reterr_message) {
        char quote = 0;

        for (size_t i = 0; buf[i] != '\0'; i++) {
                char c = buf[i];

                if (quote) {
                        if (c == '\\' && buf[i + 1] != '\0')
                                i++;
                        else if (c == quote)
                                quote = 0;
                } else if (c == '"' || c == '\'')
                        quote = c;
                else if (c == '#') {
                        while (buf[i + 1] != '\0' && buf[i + 1] != '\n')
                                buf[i++] = ' ';
                        buf[i] = ' ';
                } else if (c == '/' &&
                           (buf[i + 1] == '*' || (buf[i + 1] == '/' && starts_token(buf, i)))) {
                        int line = 1;
                        for (size_t j = 0; j < i; j++)
                                line += buf[j] == '\n';
                        return options_fail_message(-EINVAL, reterr_message,
                                                    "%s:%d: only # comments are supported", path,
                                                    line);
                }
        }
        return 0;
}

/* One libconfuse option per table option (all as strings; we check types ourselves). */
static cfg_opt_t *make_cfg_opts(const Options *o) {
        cfg_opt_t *opts = calloc(o->n_values + 1, sizeof(cfg_opt_t));
        size_t k = 0;

        if (!opts)
                return NULL;
        for (size_t i = 0; i < o->n_values; i++) {
                const Option *opt = o->values[i].option;

                if (streq(opt->name, OPTIONS_CONFIG_NAME))
                        continue;
                if (opt->type == OPT_STRV)
                        opts[k++] = (cfg_opt_t) CFG_STR_LIST(opt->name, NULL, CFGF_NODEFAULT);
                else
                        opts[k++] = (cfg_opt_t) CFG_STR(opt->name, NULL, CFGF_NODEFAULT);
        }
        opts[k] = (cfg_opt_t) CFG_END();
        return opts;
}

/* Copies the file's values into options not already given by a flag. */
static int apply_file_values(Options *o, cfg_t *cfg) {
        for (size_t i = 0; i < o->n_values; i++) {
                OptionValue *v = &o->values[i];
                cfg_opt_t *opt;
                int r;

                if (v->source == OPTION_SOURCE_FLAG || streq(v->option->name, OPTIONS_CONFIG_NAME))
                        continue;
                opt = cfg_getopt(cfg, v->option->name);
                if (!opt || !(opt->flags & CFGF_MODIFIED))
                        continue;
                option_value_clear(v);
                v->source = OPTION_SOURCE_FILE; /* also for an empty list */
                for (unsigned j = 0; j < cfg_opt_size(opt); j++) {
                        r = option_value_set(v, cfg_opt_getnstr(opt, j), OPTION_SOURCE_FILE, NULL);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int parse_text(Options *o, const char *path, const char *text, char **reterr_message) {
        _cleanup_free_ cfg_opt_t *opts = NULL;
        _cleanup_(cfg_freep) cfg_t *cfg = NULL;
        FileParse p = {.options = o, .path = path};
        int rc;

        opts = make_cfg_opts(o);
        if (!opts)
                return -ENOMEM;
        cfg = cfg_init(opts, CFGF_NONE);
        if (!cfg)
                return -ENOMEM;
        cfg_set_error_function(cfg, on_error);
        for (size_t i = 0; opts[i].name; i++)
                cfg_set_validate_func(cfg, opts[i].name, on_validate);

        current_parse = &p;
        rc = cfg_parse_buf(cfg, text);
        current_parse = NULL;

        if (rc != CFG_SUCCESS) {
                if (!p.error)
                        return options_fail_message(-EINVAL, reterr_message, "%s: parse error",
                                                    path);
                if (reterr_message)
                        *reterr_message = TAKE_PTR(p.error);
                free(p.error);
                return -EINVAL;
        }
        free(p.error);
        return apply_file_values(o, cfg);
}

int options_load_file(Options *o, const char *path, bool must_exist, char **reterr_message) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_config(path, must_exist, &text, reterr_message);
        if (r < 0 || !text)
                return r;
        r = strip_comments(text, path, reterr_message);
        if (r < 0)
                return r;
        if (text[strspn(text, " \t\r\n")] == '\0')
                return 0; /* empty or only comments */
        return parse_text(o, path, text, reterr_message);
}
