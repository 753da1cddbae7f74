/* SPDX-License-Identifier: Apache-2.0 */
/* Counters, gauges and histograms; Prometheus text exposition 0.0.4.
 *
 * Families and series are append-only singly linked lists. Writers (registration, new
 * series) hold the registry mutex and publish a fully built node with a release store;
 * readers (lookups, rendering) walk the lists with acquire loads and no lock. Values are
 * atomics: counters and bucket counts are uint64_t, gauges and sums are the bits of a
 * double updated with compare-and-swap. */
#define _GNU_SOURCE

#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "metrics_internal.h"

const double metrics_latency_buckets[] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};
const size_t metrics_latency_buckets_count = ELEMENTSOF(metrics_latency_buckets);

static uint64_t double_bits(double v) {
        uint64_t u;

        memcpy(&u, &v, sizeof(u));
        return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double d) {
        uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

        while (!atomic_compare_exchange_weak_explicit(p, &old,
                                                      double_bits(metrics_bits_double(old) + d),
                                                      memory_order_relaxed, memory_order_relaxed))
                ;
}

static bool is_alpha_(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool valid_metric_name(const char *s) {
        size_t n;

        if (!s || (!is_alpha_(s[0]) && s[0] != ':'))
                return false;
        n = strnlen(s, METRICS_NAME_MAX + 1);
        if (n > METRICS_NAME_MAX)
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alpha_(s[i]) && !is_digit(s[i]) && s[i] != ':')
                        return false;
        return true;
}

static bool valid_label_name(const char *s) {
        size_t n;

        if (!s || !is_alpha_(s[0]) || strneq(s, "__", 2))
                return false;
        n = strnlen(s, METRICS_NAME_MAX + 1);
        if (n > METRICS_NAME_MAX)
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alpha_(s[i]) && !is_digit(s[i]))
                        return false;
        return true;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF), at most max
 * bytes. */
static bool valid_utf8(const char *s, size_t max) {
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        const unsigned char *p = (const unsigned char *) s;
        size_t n;

        if (!s)
                return false;
        n = strnlen(s, max + 1);
        if (n > max)
                return false;
        for (size_t i = 0; i < n;) {
                unsigned c = p[i], len;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0)
                        len = 2, cp = c & 0x1F;
                else if ((c & 0xF0) == 0xE0)
                        len = 3, cp = c & 0x0F;
                else if ((c & 0xF8) == 0xF0)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                if (n - i < len)
                        return false;
                for (unsigned k = 1; k < len; k++) {
                        if ((p[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3F);
                }
                if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}

/* -EINVAL unless values holds exactly n_labels non-NULL strings (then a NULL). */
static int check_value_count(const Metric *m, const char *const *values) {
        if (!values)
                return m->n_labels == 0 ? 0 : -EINVAL;
        for (size_t i = 0; i < m->n_labels; i++)
                if (!values[i])
                        return -EINVAL;
        return values[m->n_labels] ? -EINVAL : 0;
}

static MetricSeries *series_free(MetricSeries *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < METRICS_LABELS_MAX; i++)
                free(s->values[i]);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(MetricSeries *, series_free);

static int series_new(const Metric *m, const char *const *values, MetricSeries **ret) {
        _cleanup_(series_freep) MetricSeries *s = NULL;
        size_t n_buckets = m->type == METRIC_HISTOGRAM ? m->n_bounds + 1 : 0;

        s = calloc(1, sizeof(MetricSeries) + n_buckets * sizeof(s->buckets[0]));
        if (!s)
                return -ENOMEM;
        s->family = m;
        for (size_t i = 0; i < m->n_labels; i++) {
                s->values[i] = strdup(values[i]);
                if (!s->values[i])
                        return -ENOMEM;
        }
        atomic_init(&s->value, m->type == METRIC_GAUGE ? double_bits(0.0) : 0);
        atomic_init(&s->sum, double_bits(0.0));
        *ret = TAKE_PTR(s);
        return 0;
}

static MetricSeries *series_find(Metric *m, const char *const *values) {
        MetricSeries *s;

        for (s = atomic_load_explicit(&m->series, memory_order_acquire); s;
             s = atomic_load_explicit(&s->next, memory_order_acquire)) {
                size_t i = 0;

                while (i < m->n_labels && streq(s->values[i], values[i]))
                        i++;
                if (i == m->n_labels)
                        return s;
        }
        return NULL;
}

/* Appends s to m's series; caller holds the registry lock. */
static void series_append(Metric *m, MetricSeries *s) {
        if (m->series_tail)
                atomic_store_explicit(&m->series_tail->next, s, memory_order_release);
        else
                atomic_store_explicit(&m->series, s, memory_order_release);
        m->series_tail = s;
        m->n_series++;
}

static int series_create(Metric *m, const char *const *values, MetricSeries **ret) {
        MetricSeries *s;
        int r = 0;

        for (size_t i = 0; i < m->n_labels; i++)
                if (!valid_utf8(values[i], METRICS_LABEL_VALUE_MAX))
                        return -EINVAL;

        pthread_mutex_lock(&m->reg->lock);
        s = series_find(m, values); /* another thread may have been first */
        if (!s && m->n_series >= METRICS_SERIES_MAX)
                r = -E2BIG;
        else if (!s) {
                r = series_new(m, values, &s);
                if (r >= 0)
                        series_append(m, s);
        }
        pthread_mutex_unlock(&m->reg->lock);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

int metrics_series_get(Metric *m, const char *const *label_values, MetricSeries **ret) {
        MetricSeries *s;
        int r;

        if (!ret)
                return -EINVAL;
        if (!m) {
                *ret = NULL;
                return 0;
        }
        r = check_value_count(m, label_values);
        if (r < 0)
                return r;
        if (m->single) {
                *ret = m->single;
                return 0;
        }
        s = series_find(m, label_values);
        if (!s)
                return series_create(m, label_values, ret);
        *ret = s;
        return 0;
}

void metrics_series_add(MetricSeries *s, uint64_t n) {
        if (s && s->family->type == METRIC_COUNTER)
                atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void metrics_series_set(MetricSeries *s, double v) {
        if (s && s->family->type == METRIC_GAUGE)
                atomic_store_explicit(&s->value, double_bits(v), memory_order_relaxed);
}

void metrics_series_shift(MetricSeries *s, double d) {
        if (s && s->family->type == METRIC_GAUGE)
                atomic_add_double(&s->value, d);
}

void metrics_series_observe(MetricSeries *s, double v) {
        const Metric *m;
        size_t i = 0;

        if (!s || s->family->type != METRIC_HISTOGRAM || isnan(v))
                return;
        m = s->family;
        while (i < m->n_bounds && v > m->bounds[i]) /* buckets are "less or equal" */
                i++;
        atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
        atomic_add_double(&s->sum, v);
}

static uint64_t histogram_count(const MetricSeries *s) {
        uint64_t n = 0;

        for (size_t i = 0; i <= s->family->n_bounds; i++)
                n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        return n;
}

double metrics_series_value(const MetricSeries *s) {
        if (!s)
                return 0;
        switch (s->family->type) {
        case METRIC_COUNTER:
                return (double) atomic_load_explicit(&s->value, memory_order_relaxed);
        case METRIC_GAUGE:
                return metrics_bits_double(atomic_load_explicit(&s->value, memory_order_relaxed));
        case METRIC_HISTOGRAM:
                return (double) histogram_count(s);
        }
        return 0;
}

double metrics_series_sum(const MetricSeries *s) {
        if (!s || s->family->type != METRIC_HISTOGRAM)
                return 0;
        return metrics_bits_double(atomic_load_explicit(&s->sum, memory_order_relaxed));
}

static int lookup_typed(Metric *m, MetricType type, const char *const *values, MetricSeries **ret) {
        if (m && m->type != type)
                return -EINVAL;
        return metrics_series_get(m, values, ret);
}

int metrics_counter_add(Metric *m, const char *const *label_values, uint64_t n) {
        MetricSeries *s;
        int r = lookup_typed(m, METRIC_COUNTER, label_values, &s);

        if (r >= 0)
                metrics_series_add(s, n);
        return r;
}

int metrics_counter_inc(Metric *m, const char *const *label_values) {
        return metrics_counter_add(m, label_values, 1);
}

int metrics_gauge_set(Metric *m, const char *const *label_values, double v) {
        MetricSeries *s;
        int r = lookup_typed(m, METRIC_GAUGE, label_values, &s);

        if (r >= 0)
                metrics_series_set(s, v);
        return r;
}

int metrics_gauge_add(Metric *m, const char *const *label_values, double d) {
        MetricSeries *s;
        int r = lookup_typed(m, METRIC_GAUGE, label_values, &s);

        if (r >= 0)
                metrics_series_shift(s, d);
        return r;
}

int metrics_histogram_observe(Metric *m, const char *const *label_values, double v) {
        MetricSeries *s;
        int r = lookup_typed(m, METRIC_HISTOGRAM, label_values, &s);

        if (r >= 0)
                metrics_series_observe(s, v);
        return r;
}

double metrics_now(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int metrics_histogram_observe_since(Metric *m, const char *const *label_values, double start) {
        return metrics_histogram_observe(m, label_values, metrics_now() - start);
}

MetricType metric_type(const Metric *m) {
        return m->type;
}

const char *metric_name(const Metric *m) {
        return m ? m->name : NULL;
}

/* ---- registry ---- */

int metrics_registry_new(MetricsRegistry **ret) {
        MetricsRegistry *reg;

        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        pthread_mutex_init(&reg->lock, NULL);
        *ret = reg;
        return 0;
}

static Metric *family_free(Metric *m) {
        MetricSeries *s, *next;

        if (!m)
                return NULL;
        for (s = atomic_load_explicit(&m->series, memory_order_acquire); s; s = next) {
                next = atomic_load_explicit(&s->next, memory_order_relaxed);
                series_free(s);
        }
        for (size_t i = 0; i < m->n_labels; i++)
                free(m->labels[i]);
        free(m->name);
        free(m->help);
        free(m);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Metric *, family_free);

MetricsRegistry *metrics_registry_free(MetricsRegistry *reg) {
        Metric *m, *next;

        if (!reg)
                return NULL;
        for (m = atomic_load_explicit(&reg->families, memory_order_acquire); m; m = next) {
                next = atomic_load_explicit(&m->next, memory_order_relaxed);
                family_free(m);
        }
        pthread_mutex_destroy(&reg->lock);
        free(reg);
        return NULL;
}

Metric *metrics_registry_find(MetricsRegistry *reg, const char *name) {
        Metric *m;

        if (!reg || !name)
                return NULL;
        for (m = atomic_load_explicit(&reg->families, memory_order_acquire); m;
             m = atomic_load_explicit(&m->next, memory_order_acquire))
                if (streq(m->name, name))
                        return m;
        return NULL;
}

static int family_set_labels(Metric *m, const char *const *labels) {
        for (size_t i = 0; labels && labels[i]; i++) {
                if (i >= METRICS_LABELS_MAX)
                        return -E2BIG;
                if (!valid_label_name(labels[i]))
                        return -EINVAL;
                if (m->type == METRIC_HISTOGRAM && streq(labels[i], "le"))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(labels[i], labels[j]))
                                return -EINVAL;
                m->labels[i] = strdup(labels[i]);
                if (!m->labels[i])
                        return -ENOMEM;
                m->n_labels = i + 1;
        }
        return 0;
}

static int family_set_bounds(Metric *m, const double *bounds, size_t n) {
        if (!bounds || n == 0) {
                bounds = metrics_latency_buckets;
                n = metrics_latency_buckets_count;
        }
        if (n > METRICS_BUCKETS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                        return -EINVAL;
                m->bounds[i] = bounds[i];
        }
        m->n_bounds = n;
        return 0;
}

static int family_new(MetricType type,
                      const char *name,
                      const char *help,
                      const char *const *labels,
                      const double *bounds,
                      size_t n_bounds,
                      Metric **ret) {
        _cleanup_(family_freep) Metric *m = NULL;
        int r;

        if (!valid_metric_name(name) || !valid_utf8(help, METRICS_HELP_MAX))
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->type = type;
        r = family_set_labels(m, labels);
        if (r >= 0 && type == METRIC_HISTOGRAM)
                r = family_set_bounds(m, bounds, n_bounds);
        if (r < 0)
                return r;
        m->name = strdup(name);
        m->help = strdup(help);
        if (!m->name || !m->help)
                return -ENOMEM;
        if (m->n_labels == 0) {
                r = series_new(m, NULL, &m->single);
                if (r < 0)
                        return r;
                series_append(m, m->single); /* m is not published yet */
        }
        *ret = TAKE_PTR(m);
        return 0;
}

static int registry_add(MetricsRegistry *reg,
                        MetricType type,
                        const char *name,
                        const char *help,
                        const char *const *labels,
                        const double *bounds,
                        size_t n_bounds,
                        Metric **ret) {
        _cleanup_(family_freep) Metric *m = NULL;
        int r = 0;

        if (!reg)
                return -EINVAL;
        r = family_new(type, name, help, labels, bounds, n_bounds, &m);
        if (r < 0)
                return r;
        m->reg = reg;

        pthread_mutex_lock(&reg->lock);
        if (metrics_registry_find(reg, name))
                r = -EEXIST;
        else {
                if (reg->families_tail)
                        atomic_store_explicit(&reg->families_tail->next, m, memory_order_release);
                else
                        atomic_store_explicit(&reg->families, m, memory_order_release);
                reg->families_tail = m;
        }
        pthread_mutex_unlock(&reg->lock);
        if (r < 0)
                return r;
        if (ret)
                *ret = m;
        TAKE_PTR(m);
        return 0;
}

int metrics_counter_new(MetricsRegistry *reg,
                        const char *name,
                        const char *help,
                        const char *const *label_names,
                        Metric **ret) {
        return registry_add(reg, METRIC_COUNTER, name, help, label_names, NULL, 0, ret);
}

int metrics_gauge_new(MetricsRegistry *reg,
                      const char *name,
                      const char *help,
                      const char *const *label_names,
                      Metric **ret) {
        return registry_add(reg, METRIC_GAUGE, name, help, label_names, NULL, 0, ret);
}

int metrics_histogram_new(MetricsRegistry *reg,
                          const char *name,
                          const char *help,
                          const char *const *label_names,
                          const double *bounds,
                          size_t n_bounds,
                          Metric **ret) {
        return registry_add(reg, METRIC_HISTOGRAM, name, help, label_names, bounds, n_bounds, ret);
}
