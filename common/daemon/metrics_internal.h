/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals of metrics.c shared with metrics_render.c. See metrics.c for the
 * locking rules: lists are append-only, published with release stores. */

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "metrics.h"

struct MetricSeries {
        MetricSeries *_Atomic next;
        const Metric *family;
        char *values[METRICS_LABELS_MAX];
        _Atomic uint64_t value;     /* counter: count; gauge: bits of a double */
        _Atomic uint64_t sum;       /* histogram: bits of a double */
        _Atomic uint64_t buckets[]; /* histogram: n_bounds + 1, the last is +Inf */
};

struct Metric {
        Metric *_Atomic next;
        MetricsRegistry *reg;
        MetricType type;
        char *name;
        char *help;
        size_t n_labels;
        char *labels[METRICS_LABELS_MAX];
        size_t n_bounds;
        double bounds[METRICS_BUCKETS_MAX];
        MetricSeries *single; /* the only series of a family without labels */
        MetricSeries *_Atomic series;
        MetricSeries *series_tail; /* under reg->lock */
        size_t n_series;           /* under reg->lock */
};

struct MetricsRegistry {
        pthread_mutex_t lock;
        Metric *_Atomic families;
        Metric *families_tail; /* under lock */
};

static inline double metrics_bits_double(uint64_t u) {
        double v;
        memcpy(&v, &u, sizeof(v));
        return v;
}
