/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition format 0.0.4 for a MetricsRegistry.
 *
 * Runs without the registry lock, concurrently with updates: each value is read once
 * with an atomic load, and a histogram's _count is the sum of the bucket counts it
 * printed, so +Inf and _count always agree within one scrape. Numbers use the C
 * locale's '.' (the daemons never call setlocale). */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "metrics.h"
#include "metrics_internal.h"

#define NUMBER_MAX 32

static void memstream_closep(FILE **f) {
        if (*f)
                fclose(*f);
}

/* Shortest of %.15g / %.17g that reads back as v; NaN, +Inf, -Inf as Prometheus spells
 * them. */
static const char *format_number(double v, char buf[static NUMBER_MAX]) {
        if (isnan(v))
                return "NaN";
        if (isinf(v))
                return v > 0 ? "+Inf" : "-Inf";
        snprintf(buf, NUMBER_MAX, "%.15g", v);
        if (strtod(buf, NULL) != v)
                snprintf(buf, NUMBER_MAX, "%.17g", v);
        return buf;
}

/* Help text escapes backslash and newline; label values also the double quote. */
static void put_escaped(FILE *f, const char *s, bool quote) {
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else if (quote && *s == '"')
                        fputs("\\\"", f);
                else
                        fputc(*s, f);
        }
}

/* {a="x",b="y"} plus le="..." for histogram buckets; nothing when there is no label. */
static void put_labels(FILE *f, const Metric *m, const MetricSeries *s, const char *le) {
        if (m->n_labels == 0 && !le)
                return;
        fputc('{', f);
        for (size_t i = 0; i < m->n_labels; i++) {
                fprintf(f, "%s%s=\"", i > 0 ? "," : "", m->labels[i]);
                put_escaped(f, s->values[i], true);
                fputc('"', f);
        }
        if (le)
                fprintf(f, "%sle=\"%s\"", m->n_labels > 0 ? "," : "", le);
        fputc('}', f);
}

static void put_histogram(FILE *f, const Metric *m, const MetricSeries *s) {
        char buf[NUMBER_MAX];
        uint64_t cumulative = 0;
        double sum = metrics_bits_double(atomic_load_explicit(&s->sum, memory_order_relaxed));

        for (size_t i = 0; i <= m->n_bounds; i++) {
                cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
                fprintf(f, "%s_bucket", m->name);
                put_labels(f, m, s, i < m->n_bounds ? format_number(m->bounds[i], buf) : "+Inf");
                fprintf(f, " %" PRIu64 "\n", cumulative);
        }
        fprintf(f, "%s_sum", m->name);
        put_labels(f, m, s, NULL);
        fprintf(f, " %s\n", format_number(sum, buf));
        fprintf(f, "%s_count", m->name);
        put_labels(f, m, s, NULL);
        fprintf(f, " %" PRIu64 "\n", cumulative);
}

static void put_sample(FILE *f, const Metric *m, const MetricSeries *s) {
        char buf[NUMBER_MAX];
        uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);

        fputs(m->name, f);
        put_labels(f, m, s, NULL);
        if (m->type == METRIC_COUNTER)
                fprintf(f, " %" PRIu64 "\n", v);
        else
                fprintf(f, " %s\n", format_number(metrics_bits_double(v), buf));
}

static const char *type_name(MetricType t) {
        switch (t) {
        case METRIC_COUNTER:
                return "counter";
        case METRIC_GAUGE:
                return "gauge";
        case METRIC_HISTOGRAM:
                return "histogram";
        }
        return "untyped";
}

static void put_family(FILE *f, const Metric *m) {
        const MetricSeries *s;

        fprintf(f, "# HELP %s ", m->name);
        put_escaped(f, m->help, false);
        fprintf(f, "\n# TYPE %s %s\n", m->name, type_name(m->type));
        for (s = atomic_load_explicit(&m->series, memory_order_acquire); s;
             s = atomic_load_explicit(&s->next, memory_order_acquire)) {
                if (m->type == METRIC_HISTOGRAM)
                        put_histogram(f, m, s);
                else
                        put_sample(f, m, s);
        }
}

int metrics_render(MetricsRegistry *reg, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        const Metric *m;
        int r;

        if (!reg || !ret)
                return -EINVAL;
        {
                _cleanup_(memstream_closep) FILE *f = open_memstream(&buf, &size);
                if (!f)
                        return -ENOMEM;
                for (m = atomic_load_explicit(&reg->families, memory_order_acquire); m;
                     m = atomic_load_explicit(&m->next, memory_order_acquire))
                        put_family(f, m);
                r = fflush(f) != 0 || ferror(f) ? -ENOMEM : 0;
                if (fclose(TAKE_PTR(f)) != 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}
