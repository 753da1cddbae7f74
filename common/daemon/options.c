/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line flags, value storage, getters and help. The config file is in
 * options_file.c. Rules in options.h. */
#define _GNU_SOURCE

#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "options_internal.h"
#include "parse.h"

/* The implicit -config flag, for tables that do not define "config" themselves. */
static const Option config_option = {
        OPTIONS_CONFIG_NAME,
        OPT_STRING,
        NULL,
        "Path to a configuration file (key = value lines)",
};

int option_check_value(const Option *opt, const char *text, const char **reterr_problem) {
        const char *problem = NULL;
        int64_t i64;
        uint16_t port;
        bool b;

        switch (opt->type) {
        case OPT_STRING:
        case OPT_STRV:
                return 0;
        case OPT_INT:
                if (parse_int64(text, &i64) < 0)
                        problem = "not an integer";
                break;
        case OPT_BOOL:
                if (parse_bool(text, &b) < 0)
                        problem = "not a boolean";
                break;
        case OPT_DURATION:
                if (parse_duration(text, &i64) < 0)
                        problem = "not a duration (e.g. 90s, 5m, 1h30m, 7d)";
                break;
        case OPT_PORT:
                if (parse_port(text, &port) < 0)
                        problem = "not a port number";
                break;
        default:
                problem = "unknown option type";
        }
        if (!problem)
                return 0;
        if (reterr_problem)
                *reterr_problem = problem;
        return -EINVAL;
}

void option_value_clear(OptionValue *v) {
        free(v->string);
        v->string = NULL;
        for (size_t i = 0; i < v->n_strv; i++)
                free(v->strv[i]);
        free(v->strv);
        v->strv = NULL;
        v->n_strv = 0;
        v->number = 0;
        v->boolean = false;
        v->source = OPTION_SOURCE_NONE;
}

static int strv_append(OptionValue *v, const char *text) {
        _cleanup_free_ char *copy = strdup(text);
        char **l;

        if (!copy)
                return -ENOMEM;
        l = reallocarray(v->strv, v->n_strv + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        v->strv = l;
        v->strv[v->n_strv++] = TAKE_PTR(copy);
        v->strv[v->n_strv] = NULL;
        return 0;
}

int option_value_set(OptionValue *v,
                     const char *text,
                     OptionSource source,
                     const char **reterr_problem) {
        _cleanup_free_ char *copy = NULL;
        int64_t number = 0;
        uint16_t port;
        bool b = false;
        int r;

        r = option_check_value(v->option, text, reterr_problem);
        if (r < 0)
                return r;

        if (v->option->type == OPT_STRV) {
                if (v->source != source)
                        option_value_clear(v);
                r = strv_append(v, text);
                if (r < 0)
                        return r;
                v->source = source;
                return 0;
        }

        switch (v->option->type) {
        case OPT_STRING:
                copy = strdup(text);
                if (!copy)
                        return -ENOMEM;
                break;
        case OPT_INT:
                (void) parse_int64(text, &number);
                break;
        case OPT_DURATION:
                (void) parse_duration(text, &number);
                break;
        case OPT_PORT:
                (void) parse_port(text, &port);
                number = port;
                break;
        case OPT_BOOL:
                (void) parse_bool(text, &b);
                break;
        default:
                break;
        }
        option_value_clear(v);
        v->string = TAKE_PTR(copy);
        v->number = number;
        v->boolean = b;
        v->source = source;
        return 0;
}

void option_quote_value(const char *text, char buf[static 72]) {
        size_t i;

        for (i = 0; text[i] != '\0' && i < 64; i++)
                buf[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
        if (text[i] != '\0') {
                memcpy(buf + i, "...", 3);
                i += 3;
        }
        buf[i] = '\0';
}

OptionValue *options_find(const Options *o, const char *name) {
        if (!o || !name)
                return NULL;
        for (size_t i = 0; i < o->n_values; i++)
                if (streq(o->values[i].option->name, name))
                        return &o->values[i];
        return NULL;
}

Options *options_free(Options *o) {
        if (!o)
                return NULL;
        for (size_t i = 0; i < o->n_values; i++)
                option_value_clear(&o->values[i]);
        free(o->values);
        free(o);
        return NULL;
}

int options_fail_message(int r, char **ret, const char *fmt, ...) {
        va_list ap;

        if (ret) {
                va_start(ap, fmt);
                if (vasprintf(ret, fmt, ap) < 0)
                        *ret = NULL;
                va_end(ap);
        }
        return r;
}

int options_check_readable_file(const char *flag, const char *path, char **reterr_message) {
        if (!path || !*path)
                return options_fail_message(-EINVAL, reterr_message, "-%s: empty file name", flag);
        if (access(path, R_OK) < 0)
                return options_fail_message(-EINVAL, reterr_message, "-%s: cannot read %s: %s",
                                            flag, path, strerror(errno));
        return 0;
}

static int options_new(const Option *table, size_t n, Options **ret) {
        _cleanup_(options_freep) Options *o = NULL;
        bool have_config = false;

        o = calloc(1, sizeof(Options));
        if (!o)
                return -ENOMEM;
        o->values = calloc(n + 1, sizeof(OptionValue));
        if (!o->values)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!table[i].name || !table[i].name[0] || options_find(o, table[i].name))
                        return -EINVAL; /* programming error: bad or duplicate name */
                if (streq(table[i].name, OPTIONS_CONFIG_NAME)) {
                        if (table[i].type != OPT_STRING)
                                return -EINVAL;
                        have_config = true;
                }
                o->values[o->n_values++].option = &table[i];
        }
        if (!have_config) {
                o->config_option = config_option;
                o->values[o->n_values++].option = &o->config_option;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static int apply_defaults(Options *o, char **reterr_message) {
        for (size_t i = 0; i < o->n_values; i++) {
                OptionValue *v = &o->values[i];
                const char *problem = NULL;
                int r;

                if (!v->option->default_value)
                        continue;
                r = option_value_set(v, v->option->default_value, OPTION_SOURCE_DEFAULT, &problem);
                if (r == -EINVAL)
                        return options_fail_message(r, reterr_message,
                                                    "internal error: bad default for -%s: %s",
                                                    v->option->name, problem);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool is_help(const Options *o, const char *name) {
        return (streq(name, "h") || streq(name, "help")) && !options_find(o, name);
}

/* Handles argv[*i] (a flag). May consume the next argument as its value. */
static int parse_flag(Options *o, int argc, char **argv, int *i, char **reterr_message) {
        _cleanup_free_ char *name = NULL;
        const char *arg = argv[*i], *eq, *text, *problem = NULL;
        char quoted[72];
        OptionValue *v;
        int r;

        arg += arg[1] == '-' ? 2 : 1;
        eq = strchr(arg, '=');
        name = eq ? strndup(arg, (size_t) (eq - arg)) : strdup(arg);
        if (!name)
                return -ENOMEM;
        if (is_help(o, name))
                return -ECANCELED;
        v = options_find(o, name);
        if (!v || name[0] == '\0') {
                option_quote_value(name, quoted);
                return options_fail_message(-EINVAL, reterr_message, "unknown flag: -%s", quoted);
        }

        if (eq)
                text = eq + 1;
        else if (v->option->type == OPT_BOOL)
                text = "true";
        else if (*i + 1 < argc)
                text = argv[++*i];
        else
                return options_fail_message(-EINVAL, reterr_message, "-%s: missing value", name);

        r = option_value_set(v, text, OPTION_SOURCE_FLAG, &problem);
        if (r == -EINVAL) {
                option_quote_value(text, quoted);
                return options_fail_message(r, reterr_message, "-%s: %s: \"%s\"", name, problem,
                                            quoted);
        }
        return r;
}

static int parse_argv(Options *o, int argc, char **argv, char **reterr_message) {
        int i, r;

        for (i = 1; i < argc; i++) {
                const char *arg = argv[i];

                if (streq(arg, "--")) {
                        i++;
                        break;
                }
                if (arg[0] != '-' || arg[1] == '\0')
                        break;
                r = parse_flag(o, argc, argv, &i, reterr_message);
                if (r < 0)
                        return r;
        }
        o->positional = argv + (i < argc ? i : argc);
        o->n_positional = (size_t) (argc - (i < argc ? i : argc));
        return 0;
}

int options_parse(const Option *table,
                  size_t n,
                  int argc,
                  char **argv,
                  Options **ret,
                  char **reterr_message) {
        _cleanup_(options_freep) Options *o = NULL;
        const OptionValue *config;
        int r;

        if (!table && n > 0)
                return options_fail_message(-EINVAL, reterr_message,
                                            "internal error: no option table");
        r = options_new(table, n, &o);
        if (r == -EINVAL)
                return options_fail_message(r, reterr_message, "internal error: bad option table");
        if (r < 0)
                return r;
        r = apply_defaults(o, reterr_message);
        if (r < 0)
                return r;
        r = parse_argv(o, argc, argv, reterr_message);
        if (r == -ECANCELED) {
                options_print_help(table, n, stdout);
                fflush(stdout);
        }
        if (r < 0)
                return r;

        config = options_find(o, OPTIONS_CONFIG_NAME);
        if (config->string && config->string[0] != '\0') {
                r = options_load_file(o, config->string, config->source == OPTION_SOURCE_FLAG,
                                      reterr_message);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static const OptionValue *lookup(const Options *o, const char *name) {
        const OptionValue *v = options_find(o, name);

        return v && v->source != OPTION_SOURCE_NONE ? v : NULL;
}

const char *options_get_string(const Options *o, const char *name) {
        const OptionValue *v = lookup(o, name);

        return v && v->option->type == OPT_STRING ? v->string : NULL;
}

int64_t options_get_int(const Options *o, const char *name) {
        const OptionValue *v = lookup(o, name);

        if (!v || !(v->option->type == OPT_INT || v->option->type == OPT_PORT ||
                    v->option->type == OPT_DURATION))
                return 0;
        return v->number;
}

bool options_get_bool(const Options *o, const char *name) {
        const OptionValue *v = lookup(o, name);

        return v && v->option->type == OPT_BOOL && v->boolean;
}

int64_t options_get_duration(const Options *o, const char *name) {
        const OptionValue *v = lookup(o, name);

        return v && v->option->type == OPT_DURATION ? v->number : 0;
}

uint16_t options_get_port(const Options *o, const char *name) {
        const OptionValue *v = lookup(o, name);

        return v && v->option->type == OPT_PORT ? (uint16_t) v->number : 0;
}

char *const *options_get_strv(const Options *o, const char *name, size_t *ret_n) {
        static char *const empty[] = {NULL};
        const OptionValue *v = options_find(o, name);

        if (!v || v->option->type != OPT_STRV) {
                if (ret_n)
                        *ret_n = 0;
                return NULL;
        }
        if (ret_n)
                *ret_n = v->n_strv;
        return v->strv ? v->strv : empty;
}

bool options_is_set(const Options *o, const char *name) {
        const OptionValue *v = options_find(o, name);

        return v && (v->source == OPTION_SOURCE_FLAG || v->source == OPTION_SOURCE_FILE);
}

char **options_positional(const Options *o, size_t *ret_n) {
        if (ret_n)
                *ret_n = o ? o->n_positional : 0;
        return o ? o->positional : NULL;
}

static const char *type_hint(OptionType t) {
        switch (t) {
        case OPT_STRING:
        case OPT_STRV:
                return " <string>";
        case OPT_INT:
                return " <int>";
        case OPT_DURATION:
                return " <duration>";
        case OPT_PORT:
                return " <port>";
        default:
                return "";
        }
}

static void print_one(const Option *opt, FILE *f) {
        fprintf(f, "  -%s%s%s\n", opt->name, type_hint(opt->type),
                opt->type == OPT_STRV ? "  (repeatable)" : "");
        fprintf(f, "        %s", opt->help ? opt->help : "");
        if (opt->default_value)
                fprintf(f, " (default \"%s\")", opt->default_value);
        fputc('\n', f);
}

void options_print_help(const Option *table, size_t n, FILE *f) {
        bool have_config = false;

        fprintf(f, "Flags (each is also a config file key; flags win over the file):\n");
        for (size_t i = 0; i < n; i++)
                if (table[i].name && streq(table[i].name, OPTIONS_CONFIG_NAME))
                        have_config = true;
        if (!have_config)
                print_one(&config_option, f);
        for (size_t i = 0; i < n; i++)
                print_one(&table[i], f);
        fprintf(f, "  -h, -help\n        Show this help\n");
}
