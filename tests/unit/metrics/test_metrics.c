/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "metrics.h"
#include "metrics_names.h"
#include "testlib.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsRegistry *, metrics_registry_free);

static char *render(MetricsRegistry *reg) {
        char *text = NULL;
        size_t size = 0;

        assert_ok(metrics_render(reg, &text, &size));
        assert_non_null(text);
        assert_int_equal(size, strlen(text));
        return text;
}

static void test_counter(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        _cleanup_free_ char *text = NULL;
        Metric *calls = NULL, *plain = NULL;
        MetricSeries *s = NULL;
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_counter_new(reg, "t_calls_total", "Calls.",
                                      METRICS_LABELS("method", "code"), &calls));
        assert_ok(metrics_counter_new(reg, "t_plain_total", "Plain.", NULL, &plain));
        assert_ptr_equal(metrics_registry_find(reg, "t_calls_total"), calls);
        assert_null(metrics_registry_find(reg, "t_nope"));
        assert_int_equal(metric_type(calls), METRIC_COUNTER);
        assert_string_equal(metric_name(plain), "t_plain_total");

        /* No series yet for the labelled family; the plain one starts at 0. */
        text = render(reg);
        assert_string_equal(text, "# HELP t_calls_total Calls.\n"
                                  "# TYPE t_calls_total counter\n"
                                  "# HELP t_plain_total Plain.\n"
                                  "# TYPE t_plain_total counter\n"
                                  "t_plain_total 0\n");
        free(TAKE_PTR(text));

        assert_ok(metrics_counter_inc(calls, METRICS_LABELS("Fetch", "OK")));
        assert_ok(metrics_counter_add(calls, METRICS_LABELS("Fetch", "OK"), 41));
        assert_ok(metrics_counter_inc(calls, METRICS_LABELS("Fetch", "PERMISSION_DENIED")));
        assert_ok(metrics_counter_inc(plain, NULL));
        assert_ok(metrics_series_get(calls, METRICS_LABELS("Fetch", "OK"), &s));
        metrics_series_add(s, 8);
        assert_true(metrics_series_value(s) == 50);
        /* A series of another type ignores updates of this type. */
        metrics_series_set(s, 3);
        metrics_series_observe(s, 3);
        assert_true(metrics_series_value(s) == 50);

        text = render(reg);
        assert_string_equal(text, "# HELP t_calls_total Calls.\n"
                                  "# TYPE t_calls_total counter\n"
                                  "t_calls_total{method=\"Fetch\",code=\"OK\"} 50\n"
                                  "t_calls_total{method=\"Fetch\",code=\"PERMISSION_DENIED\"} 1\n"
                                  "# HELP t_plain_total Plain.\n"
                                  "# TYPE t_plain_total counter\n"
                                  "t_plain_total 1\n");
}

static void test_gauge_numbers(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        _cleanup_free_ char *text = NULL;
        Metric *g = NULL;
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_gauge_new(reg, "t_g", "G.", METRICS_LABELS("k"), &g));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("a"), 0.1));
        assert_ok(metrics_gauge_add(g, METRICS_LABELS("b"), 2));
        assert_ok(metrics_gauge_add(g, METRICS_LABELS("b"), -5.5));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("c"), 1.0 / 3.0));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("d"), 123456789012.0));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("e"), 1e-7));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("f"), NAN));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("g"), INFINITY));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("h"), -INFINITY));
        assert_ok(metrics_gauge_set(g, METRICS_LABELS("i"), 0));

        text = render(reg);
        assert_string_equal(text, "# HELP t_g G.\n"
                                  "# TYPE t_g gauge\n"
                                  "t_g{k=\"a\"} 0.1\n"
                                  "t_g{k=\"b\"} -3.5\n"
                                  "t_g{k=\"c\"} 0.33333333333333331\n"
                                  "t_g{k=\"d\"} 123456789012\n"
                                  "t_g{k=\"e\"} 1e-07\n"
                                  "t_g{k=\"f\"} NaN\n"
                                  "t_g{k=\"g\"} +Inf\n"
                                  "t_g{k=\"h\"} -Inf\n"
                                  "t_g{k=\"i\"} 0\n");
}

static void test_histogram(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        _cleanup_free_ char *text = NULL;
        static const double bounds[] = {0.1, 1, 10};
        Metric *h = NULL, *lat = NULL;
        MetricSeries *s = NULL;
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_histogram_new(reg, "t_h_seconds", "H.", METRICS_LABELS("op"), bounds,
                                        ELEMENTSOF(bounds), &h));
        /* 0.1 and 10 fall in their own bucket (le is "less or equal"); NaN is ignored. */
        for (double v = 0; v < 3; v++) /* three observations of 0.05 */
                assert_ok(metrics_histogram_observe(h, METRICS_LABELS("get"), 0.05));
        assert_ok(metrics_histogram_observe(h, METRICS_LABELS("get"), 0.1));
        assert_ok(metrics_histogram_observe(h, METRICS_LABELS("get"), 0.5));
        assert_ok(metrics_histogram_observe(h, METRICS_LABELS("get"), 10));
        assert_ok(metrics_histogram_observe(h, METRICS_LABELS("get"), 11.25));
        assert_ok(metrics_histogram_observe(h, METRICS_LABELS("get"), NAN));
        assert_ok(metrics_series_get(h, METRICS_LABELS("get"), &s));
        assert_true(metrics_series_value(s) == 7);
        assert_true(fabs(metrics_series_sum(s) - 22.0) < 1e-9);

        text = render(reg);
        assert_string_equal(text, "# HELP t_h_seconds H.\n"
                                  "# TYPE t_h_seconds histogram\n"
                                  "t_h_seconds_bucket{op=\"get\",le=\"0.1\"} 4\n"
                                  "t_h_seconds_bucket{op=\"get\",le=\"1\"} 5\n"
                                  "t_h_seconds_bucket{op=\"get\",le=\"10\"} 6\n"
                                  "t_h_seconds_bucket{op=\"get\",le=\"+Inf\"} 7\n"
                                  "t_h_seconds_sum{op=\"get\"} 22\n"
                                  "t_h_seconds_count{op=\"get\"} 7\n");
        free(TAKE_PTR(text));

        /* Default buckets, no labels: rendered from the start with zeros. */
        assert_ok(metrics_histogram_new(reg, "t_lat", "L.", NULL, NULL, 0, &lat));
        double t0 = metrics_now();
        assert_ok(metrics_histogram_observe_since(lat, NULL, t0));
        assert_ok(metrics_series_get(lat, NULL, &s));
        assert_true(metrics_series_value(s) == 1);
        assert_true(metrics_series_sum(s) >= 0 && metrics_series_sum(s) < 1);
        text = render(reg);
        assert_non_null(strstr(text, "t_lat_bucket{le=\"0.0001\"} "));
        assert_non_null(strstr(text, "t_lat_bucket{le=\"0.00025\"} "));
        assert_non_null(strstr(text, "t_lat_bucket{le=\"10\"} 1\n"));
        assert_non_null(strstr(text, "t_lat_bucket{le=\"+Inf\"} 1\n"));
        assert_non_null(strstr(text, "t_lat_count 1\n"));
        assert_int_equal(metrics_latency_buckets_count, 16);
}

static void test_escaping(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        _cleanup_free_ char *text = NULL;
        Metric *c = NULL;
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_counter_new(reg, "t_e", "Back\\slash \"quoted\"\nnext line",
                                      METRICS_LABELS("v"), &c));
        assert_ok(metrics_counter_inc(c, METRICS_LABELS("a\"b\\c\nd")));
        assert_ok(metrics_counter_inc(c, METRICS_LABELS("")));
        assert_ok(metrics_counter_inc(c,
                                      METRICS_LABELS("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91")));
        text = render(reg);
        assert_string_equal(text, "# HELP t_e Back\\\\slash \"quoted\"\\nnext line\n"
                                  "# TYPE t_e counter\n"
                                  "t_e{v=\"a\\\"b\\\\c\\nd\"} 1\n"
                                  "t_e{v=\"\"} 1\n"
                                  "t_e{v=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"} 1\n");
}

static void test_validation(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        char name[METRICS_NAME_MAX + 2], value[METRICS_LABEL_VALUE_MAX + 2];
        double bounds[METRICS_BUCKETS_MAX + 1];
        Metric *c = NULL, *h = NULL, *out = (Metric *) 1;
        MetricSeries *s;
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_errno(metrics_counter_new(reg, "", "x", NULL, &out), EINVAL);
        assert_errno(metrics_counter_new(reg, "1abc", "x", NULL, &out), EINVAL);
        assert_errno(metrics_counter_new(reg, "a-b", "x", NULL, &out), EINVAL);
        assert_errno(metrics_counter_new(reg, NULL, "x", NULL, &out), EINVAL);
        assert_errno(metrics_counter_new(reg, "a", NULL, NULL, &out), EINVAL);
        assert_errno(metrics_counter_new(reg, "a", "bad \xff utf8", NULL, &out), EINVAL);
        assert_errno(metrics_counter_new(NULL, "a", "x", NULL, &out), EINVAL);
        memset(name, 'n', sizeof(name));
        name[METRICS_NAME_MAX + 1] = 0; /* one too long */
        assert_errno(metrics_counter_new(reg, name, "x", NULL, &out), EINVAL);
        name[METRICS_NAME_MAX] = 0;
        assert_ok(metrics_counter_new(reg, name, "x", NULL, NULL));
        assert_ok(metrics_counter_new(reg, "ns:sub_total", "x", NULL, NULL));

        assert_errno(metrics_counter_new(reg, "l1", "x", METRICS_LABELS("__x"), &out), EINVAL);
        assert_errno(metrics_counter_new(reg, "l2", "x", METRICS_LABELS("a:b"), &out), EINVAL);
        assert_errno(metrics_counter_new(reg, "l3", "x", METRICS_LABELS("a", "a"), &out), EINVAL);
        assert_errno(
                metrics_counter_new(reg, "l4", "x", METRICS_LABELS("a", "b", "c", "d", "e"), &out),
                E2BIG);
        assert_ok(metrics_counter_new(reg, "l5", "x", METRICS_LABELS("a", "b", "c", "d"), &c));
        assert_errno(metrics_histogram_new(reg, "h1", "x", METRICS_LABELS("le"), NULL, 0, &out),
                     EINVAL);
        assert_ok(metrics_counter_new(reg, "le_ok", "x", METRICS_LABELS("le"), NULL));

        bounds[0] = 1, bounds[1] = 1;
        assert_errno(metrics_histogram_new(reg, "h2", "x", NULL, bounds, 2, &out), EINVAL);
        bounds[0] = 2, bounds[1] = 1;
        assert_errno(metrics_histogram_new(reg, "h3", "x", NULL, bounds, 2, &out), EINVAL);
        bounds[0] = 1, bounds[1] = INFINITY;
        assert_errno(metrics_histogram_new(reg, "h4", "x", NULL, bounds, 2, &out), EINVAL);
        bounds[1] = NAN;
        assert_errno(metrics_histogram_new(reg, "h5", "x", NULL, bounds, 2, &out), EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++)
                bounds[i] = (double) i - 5;
        assert_errno(
                metrics_histogram_new(reg, "h6", "x", NULL, bounds, METRICS_BUCKETS_MAX + 1, &out),
                E2BIG);
        assert_ok(metrics_histogram_new(reg, "h7", "x", NULL, bounds, METRICS_BUCKETS_MAX, &h));
        assert_ptr_equal(out, (Metric *) 1); /* untouched by every failure */

        /* Same name again, whatever the type. */
        assert_errno(metrics_gauge_new(reg, "l5", "x", NULL, NULL), EEXIST);

        /* Label values: count, UTF-8, length. */
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3")), EINVAL);
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3", "4", "5")), EINVAL);
        assert_errno(metrics_counter_inc(c, NULL), EINVAL);
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3", "\xc0\xaf")), EINVAL);
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3", "\xed\xa0\x80")), EINVAL);
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3", "\xe2\x82")), EINVAL);
        memset(value, 'v', sizeof(value));
        value[METRICS_LABEL_VALUE_MAX + 1] = 0;
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3", value)), EINVAL);
        value[METRICS_LABEL_VALUE_MAX] = 0;
        assert_ok(metrics_counter_inc(c, METRICS_LABELS("1", "2", "3", value)));
        /* A family without labels refuses values. */
        assert_errno(metrics_histogram_observe(h, METRICS_LABELS("x"), 1), EINVAL);

        /* Wrong type for the typed helpers. */
        assert_errno(metrics_gauge_set(c, METRICS_LABELS("1", "2", "3", "4"), 1), EINVAL);
        assert_errno(metrics_histogram_observe(c, METRICS_LABELS("1", "2", "3", "4"), 1), EINVAL);
        assert_errno(metrics_counter_inc(h, NULL), EINVAL);

        /* NULL families: no-ops. */
        assert_ok(metrics_counter_inc(NULL, METRICS_LABELS("whatever")));
        assert_ok(metrics_gauge_set(NULL, NULL, 1));
        assert_ok(metrics_histogram_observe(NULL, NULL, 1));
        s = (MetricSeries *) 1;
        assert_ok(metrics_series_get(NULL, NULL, &s));
        assert_null(s);
        metrics_series_add(NULL, 1);
        metrics_series_set(NULL, 1);
        metrics_series_shift(NULL, 1);
        metrics_series_observe(NULL, 1);
        assert_true(metrics_series_value(NULL) == 0);
        assert_null(metrics_registry_free(NULL));
}

static void test_series_cap(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        Metric *c = NULL;
        MetricSeries *s = NULL;
        char v[32];
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_counter_new(reg, "t_cap", "x", METRICS_LABELS("peer"), &c));
        for (int i = 0; i < METRICS_SERIES_MAX; i++) {
                snprintf(v, sizeof(v), "p%d", i);
                assert_ok(metrics_counter_inc(c, METRICS_LABELS(v)));
        }
        assert_errno(metrics_counter_inc(c, METRICS_LABELS("one-too-many")), E2BIG);
        /* Existing series still work. */
        assert_ok(metrics_counter_inc(c, METRICS_LABELS("p7")));
        assert_ok(metrics_series_get(c, METRICS_LABELS("p7"), &s));
        assert_true(metrics_series_value(s) == 2);
}

#define THREADS 4
#define ITERATIONS 100000
#define THREAD_SERIES 40

typedef struct Shared {
        Metric *counter, *gauge, *hist, *per_thread;
        MetricsRegistry *reg;
        int errors; /* cmocka asserts must stay on the main thread */
} Shared;

static void *worker(void *p) {
        Shared *sh = p;
        MetricSeries *c = NULL;
        char v[32];

        if (metrics_series_get(sh->counter, METRICS_LABELS("shared"), &c) < 0)
                sh->errors++;
        for (int i = 0; i < ITERATIONS; i++) {
                metrics_series_add(c, 1);
                if (metrics_counter_inc(sh->counter, METRICS_LABELS("lookup")) < 0 ||
                    metrics_gauge_add(sh->gauge, NULL, 1) < 0 ||
                    metrics_histogram_observe(sh->hist, NULL, (i % 4) * 0.5) < 0)
                        sh->errors++;
                if (i < THREAD_SERIES * 2) { /* every thread races to create the same series */
                        snprintf(v, sizeof(v), "s%d", i % THREAD_SERIES);
                        if (metrics_counter_inc(sh->per_thread, METRICS_LABELS(v)) < 0)
                                sh->errors++;
                }
        }
        return NULL;
}

static void *scraper(void *p) {
        Shared *sh = p;

        for (int i = 0; i < 50; i++) {
                char *text = NULL;
                if (metrics_render(sh->reg, &text, NULL) < 0 ||
                    !strstr(text, "# TYPE t_race_total counter\n"))
                        sh->errors++;
                free(text);
        }
        return NULL;
}

static void test_threads(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        static const double bounds[] = {0.25, 0.75};
        pthread_t t[THREADS + 1];
        Shared sh[THREADS + 1];
        MetricSeries *s = NULL;
        Metric *counter, *gauge, *hist, *per_thread;
        char v[32];
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_counter_new(reg, "t_race_total", "x", METRICS_LABELS("k"), &counter));
        assert_ok(metrics_gauge_new(reg, "t_race_gauge", "x", NULL, &gauge));
        assert_ok(metrics_histogram_new(reg, "t_race_h", "x", NULL, bounds, 2, &hist));
        assert_ok(metrics_counter_new(reg, "t_race_series", "x", METRICS_LABELS("s"), &per_thread));
        for (int i = 0; i < THREADS; i++) {
                sh[i] = (Shared){counter, gauge, hist, per_thread, reg, 0};
                assert_int_equal(pthread_create(&t[i], NULL, worker, &sh[i]), 0);
        }
        sh[THREADS] = (Shared){.reg = reg};
        assert_int_equal(pthread_create(&t[THREADS], NULL, scraper, &sh[THREADS]), 0);
        for (int i = 0; i <= THREADS; i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(sh[i].errors, 0);
        }

        assert_ok(metrics_series_get(counter, METRICS_LABELS("shared"), &s));
        assert_true(metrics_series_value(s) == THREADS * ITERATIONS);
        assert_ok(metrics_series_get(counter, METRICS_LABELS("lookup"), &s));
        assert_true(metrics_series_value(s) == THREADS * ITERATIONS);
        assert_ok(metrics_series_get(gauge, NULL, &s));
        assert_true(metrics_series_value(s) == THREADS * ITERATIONS);
        assert_ok(metrics_series_get(hist, NULL, &s));
        assert_true(metrics_series_value(s) == THREADS * ITERATIONS);
        /* i%4 * 0.5 cycles 0, 0.5, 1, 1.5: 3 per 4 observations on average. */
        assert_true(metrics_series_sum(s) == 0.75 * THREADS * ITERATIONS);
        /* Each per-thread series was created exactly once and counted by every thread. */
        for (int i = 0; i < THREAD_SERIES; i++) {
                snprintf(v, sizeof(v), "s%d", i);
                assert_ok(metrics_series_get(per_thread, METRICS_LABELS(v), &s));
                assert_true(metrics_series_value(s) == THREADS * 2);
        }
        {
                _cleanup_free_ char *text = render(reg);
                size_t n = 0;
                for (const char *p = text; (p = strstr(p, "t_race_series{")); p++)
                        n++;
                assert_int_equal(n, THREAD_SERIES);
                assert_non_null(strstr(text, "t_race_h_bucket{le=\"0.25\"} 100000\n"));
                assert_non_null(strstr(text, "t_race_h_bucket{le=\"0.75\"} 200000\n"));
                assert_non_null(strstr(text, "t_race_h_count 400000\n"));
        }
}

static void test_names(void **state) {
        _cleanup_(metrics_registry_freep) MetricsRegistry *reg = NULL;
        _cleanup_free_ char *text = NULL;
        AgentMetrics a = {}, again = {};
        ServerMetrics sv = {};
        static const char *const expected[] = {
                "# TYPE warden_workload_api_calls_total counter\n",
                "# TYPE warden_workload_api_call_seconds histogram\n",
                "# TYPE warden_workload_api_open_streams gauge\n",
                "# TYPE warden_workload_attestations_total counter\n",
                "# TYPE warden_workload_attestation_seconds histogram\n",
                "# TYPE warden_agent_svids_issued_total counter\n",
                "# TYPE warden_agent_svids_rotated_total counter\n",
                "# TYPE warden_agent_svid_cache_entries gauge\n",
                "# TYPE warden_agent_jwt_cache_entries gauge\n",
                "# TYPE warden_agent_sync_reconnects_total counter\n",
                "# TYPE warden_agent_entries_over_cap_total counter\n",
                "# TYPE warden_server_signings_total counter\n",
                "# TYPE warden_server_signing_seconds histogram\n",
                "# TYPE warden_server_datastore_seconds histogram\n",
                "# TYPE warden_server_node_attestations_total counter\n",
                "# TYPE warden_server_agent_streams gauge\n",
                "# TYPE warden_server_node_api_limited_total counter\n",
        };
        (void) state;

        assert_ok(metrics_registry_new(&reg));
        assert_ok(metrics_names_register_agent(reg, &a));
        assert_ok(metrics_names_register_server(reg, &sv));
        assert_errno(metrics_names_register_agent(reg, &again), EEXIST);
        assert_null(again.workload_api_calls);

        /* Every slot is filled, with the family of the right name and label set. */
        assert_ptr_equal(a.workload_api_calls,
                         metrics_registry_find(reg, METRIC_WORKLOAD_API_CALLS));
        assert_ptr_equal(a.sync_reconnects,
                         metrics_registry_find(reg, METRIC_AGENT_SYNC_RECONNECTS));
        assert_ptr_equal(a.entries_over_cap,
                         metrics_registry_find(reg, METRIC_AGENT_ENTRIES_OVER_CAP));
        assert_ptr_equal(sv.agent_streams, metrics_registry_find(reg, METRIC_SERVER_AGENT_STREAMS));
        assert_ptr_equal(sv.node_api_limited,
                         metrics_registry_find(reg, METRIC_SERVER_NODE_API_LIMITED));
        assert_ok(metrics_counter_inc(a.workload_api_calls, METRICS_LABELS("FetchX509SVID", "OK")));
        assert_ok(metrics_histogram_observe(a.workload_api_call_seconds,
                                            METRICS_LABELS("FetchX509SVID"), 0.0003));
        assert_ok(
                metrics_gauge_add(a.workload_api_open_streams, METRICS_LABELS("FetchX509SVID"), 1));
        assert_ok(metrics_counter_inc(a.workload_attestations, METRICS_LABELS(METRICS_RESULT_OK)));
        assert_ok(metrics_histogram_observe(a.workload_attestation_seconds, NULL, 0.001));
        assert_ok(metrics_counter_inc(a.svids_issued, NULL));
        assert_ok(metrics_counter_inc(a.svids_rotated, NULL));
        assert_ok(metrics_gauge_set(a.svid_cache_entries, NULL, 3));
        assert_ok(metrics_gauge_set(a.jwt_cache_entries, NULL, 2));
        assert_ok(metrics_counter_inc(a.sync_reconnects, NULL));
        assert_ok(metrics_counter_inc(sv.signings, METRICS_LABELS(METRICS_KIND_X509_SVID)));
        assert_ok(metrics_histogram_observe(sv.signing_seconds,
                                            METRICS_LABELS(METRICS_KIND_JWT_SVID), 0.002));
        assert_ok(metrics_histogram_observe(sv.datastore_seconds, METRICS_LABELS("list_entries"),
                                            0.004));
        assert_ok(metrics_counter_inc(sv.node_attestations,
                                      METRICS_LABELS("join_token", METRICS_RESULT_ERROR)));
        assert_ok(metrics_gauge_set(sv.agent_streams, NULL, 1));

        text = render(reg);
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                if (!strstr(text, expected[i]))
                        fail_msg("missing %s", expected[i]);
        assert_non_null(strstr(
                text, "warden_workload_api_calls_total{method=\"FetchX509SVID\",code=\"OK\"} 1\n"));
        assert_non_null(strstr(text, "warden_server_node_attestations_total{method=\"join_token\","
                                     "result=\"error\"} 1\n"));
        assert_non_null(strstr(text, "warden_agent_svid_cache_entries 3\n"));

        /* A zeroed struct is "metrics off": every update is a no-op. */
        AgentMetrics off = {};
        assert_ok(metrics_counter_inc(off.workload_api_calls, METRICS_LABELS("x", "y")));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_counter),    cmocka_unit_test(test_gauge_numbers),
                cmocka_unit_test(test_histogram),  cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_validation), cmocka_unit_test(test_series_cap),
                cmocka_unit_test(test_threads),    cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
