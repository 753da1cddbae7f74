/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* In-process metrics: counters, gauges and histograms, rendered in the Prometheus text
 * exposition format 0.0.4 (served by health_http.h on /metrics).
 *
 * A MetricsRegistry owns metric families (Metric). A family has a name, a help text, a
 * type and a small fixed list of label names (at most METRICS_LABELS_MAX). Each distinct
 * tuple of label values is a series, created on first use and kept until the registry is
 * freed; a family holds at most METRICS_SERIES_MAX series, so a label fed by a peer can
 * not grow memory without bound.
 *
 * Threads: registering families and creating series takes the registry's mutex; updates
 * of an existing series are lock-free (atomics) and may come from any thread; rendering
 * takes no lock and may run on any thread while others update. Free the registry only
 * after every thread that updates it has stopped.
 *
 * A NULL Metric or MetricSeries makes every update a no-op returning 0, so a daemon run
 * without metrics can leave its Metric pointers NULL.
 *
 * Usage:
 *   Metric *calls;
 *   r = metrics_counter_new(reg, "warden_workload_api_calls_total", "Workload API calls.",
 *                           METRICS_LABELS("method", "code"), &calls);
 *   (void) metrics_counter_inc(calls, METRICS_LABELS("FetchX509SVID", "OK"));
 *   double t0 = metrics_now();
 *   ...
 *   (void) metrics_histogram_observe_since(seconds, METRICS_LABELS("FetchX509SVID"), t0);
 */

#include <stddef.h>
#include <stdint.h>

/* Most label names in one family ("le" is reserved for histograms). */
#define METRICS_LABELS_MAX 4
/* Most series (label value tuples) in one family; further tuples get -E2BIG. */
#define METRICS_SERIES_MAX 256
/* Most histogram bucket bounds (the +Inf bucket is implicit and not counted). */
#define METRICS_BUCKETS_MAX 32
/* Longest metric or label name, label value and help text, in bytes. */
#define METRICS_NAME_MAX 128
#define METRICS_LABEL_VALUE_MAX 128
#define METRICS_HELP_MAX 512

/* Content-Type of metrics_render()'s output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A NULL-terminated array literal of label names or values: METRICS_LABELS("a", "b").
 * Families without labels take NULL instead. */
#define METRICS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Bucket bounds for request latencies in seconds, 100µs .. 10s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_buckets_count;

typedef struct MetricsRegistry MetricsRegistry;
typedef struct Metric Metric;
typedef struct MetricSeries MetricSeries;

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_HISTOGRAM,
} MetricType;

/* Makes an empty registry. Returns 0 or -ENOMEM. */
int metrics_registry_new(MetricsRegistry **ret);

/* Frees the registry and every family and series in it (Metric and MetricSeries
 * pointers become invalid). NULL-safe; returns NULL. */
MetricsRegistry *metrics_registry_free(MetricsRegistry *reg);

/* Registers a family. name matches [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* without a leading "__", distinct, NULL-terminated (or NULL for
 * none); help is UTF-8 of at most METRICS_HELP_MAX bytes. For histograms, bounds are the
 * bucket upper bounds, finite and strictly increasing (NULL and 0 pick
 * metrics_latency_buckets), and no label may be named "le". A family without labels
 * starts with its one series at zero, so it renders from the start.
 * *ret (may be NULL) borrows the family; it lives as long as the registry.
 * Returns 0, -EINVAL (bad name, labels, help or bounds), -EEXIST (name taken), -E2BIG
 * (too many labels or bounds) or -ENOMEM. */
int metrics_counter_new(MetricsRegistry *reg,
                        const char *name,
                        const char *help,
                        const char *const *label_names,
                        Metric **ret);
int metrics_gauge_new(MetricsRegistry *reg,
                      const char *name,
                      const char *help,
                      const char *const *label_names,
                      Metric **ret);
int metrics_histogram_new(MetricsRegistry *reg,
                          const char *name,
                          const char *help,
                          const char *const *label_names,
                          const double *bounds,
                          size_t n_bounds,
                          Metric **ret);

/* Looks up family by name; NULL when there is none. */
Metric *metrics_registry_find(MetricsRegistry *reg, const char *name);

/* A family's type (m must not be NULL) and name (NULL for a NULL m). */
MetricType metric_type(const Metric *m);
const char *metric_name(const Metric *m);

/* Finds or creates the series of m for label values: a NULL-terminated array with one
 * value per label name, in order (METRICS_LABELS(...)); NULL for a family without
 * labels. Values are UTF-8 of at most
 * METRICS_LABEL_VALUE_MAX bytes. *ret borrows the series (valid as long as the
 * registry); callers on a hot path may keep it and update it without any lookup.
 * A NULL m gives *ret = NULL and 0. Returns 0, -EINVAL (bad value or wrong count),
 * -E2BIG (METRICS_SERIES_MAX reached) or -ENOMEM. */
int metrics_series_get(Metric *m, const char *const *label_values, MetricSeries **ret);

/* Updates of one series; each is a no-op on NULL or on a series of another type. */
void metrics_series_add(MetricSeries *s, uint64_t n);   /* counter += n */
void metrics_series_set(MetricSeries *s, double v);     /* gauge = v */
void metrics_series_shift(MetricSeries *s, double d);   /* gauge += d */
void metrics_series_observe(MetricSeries *s, double v); /* histogram; NaN is ignored */

/* Reads a series: a counter's count, a gauge's value, a histogram's observation count.
 * 0 for NULL. For tests and callers that report their own state. */
double metrics_series_value(const MetricSeries *s);
/* A histogram's sum of observations (0 for other types and NULL). */
double metrics_series_sum(const MetricSeries *s);

/* Lookup + update: metrics_series_get() then the update. Return what the lookup
 * returned (0 for NULL m); the update itself cannot fail. -EINVAL when m has another
 * type than the function's. */
int metrics_counter_add(Metric *m, const char *const *label_values, uint64_t n);
int metrics_counter_inc(Metric *m, const char *const *label_values);
int metrics_gauge_set(Metric *m, const char *const *label_values, double v);
int metrics_gauge_add(Metric *m, const char *const *label_values, double d);
int metrics_histogram_observe(Metric *m, const char *const *label_values, double v);

/* CLOCK_MONOTONIC in seconds, for latencies. */
double metrics_now(void);

/* metrics_histogram_observe(m, label_values, metrics_now() - start). */
int metrics_histogram_observe_since(Metric *m, const char *const *label_values, double start);

/* Renders every family in registration order (series in creation order) as Prometheus
 * text 0.0.4: "# HELP" and "# TYPE" lines, then one line per sample; help text and
 * label values escaped (backslash, newline, and double quote in values). Histograms
 * give cumulative _bucket lines with le="...", the +Inf bucket, _sum and _count.
 * *ret is malloc'd and NUL-terminated, *ret_size (may be NULL) its length.
 * Returns 0 or -ENOMEM. */
int metrics_render(MetricsRegistry *reg, char **ret, size_t *ret_size);
