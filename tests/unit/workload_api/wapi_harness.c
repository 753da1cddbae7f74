/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wapi_harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "cleanup.h"
#include "testlib.h"

static const RpcMetadata hdr[] = {{"workload.spiffe.io", "true"}};

static int on_changed(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Harness *h = userdata;
        uint64_t v;

        (void) s;
        (void) revents;
        (void) !read(fd, &v, sizeof(v));
        for (uint64_t i = 0; i < v; i++) {
                workload_api_snapshot_changed(h->api);
                sem_post(&h->changed);
        }
        return 0;
}

static int on_quit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Harness *h = userdata;

        (void) fd;
        (void) revents;
        workload_api_stop(h->api);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *server_main(void *p) {
        Harness *h = p;
        WorkloadApiConfig cfg = h->cfg;
        sd_event_source *s1 = NULL, *s2 = NULL;
        sd_event *e = NULL;
        int r;

        r = sd_event_new(&e);
        if (r >= 0)
                r = workload_api_new(&cfg, &h->fx->source, h->attestor, &h->api);
        if (r >= 0)
                r = sd_event_add_io(e, &s1, h->changed_fd, EPOLLIN, on_changed, h);
        if (r >= 0)
                r = sd_event_add_io(e, &s2, h->quit_fd, EPOLLIN, on_quit, h);
        if (r >= 0)
                r = workload_api_start(h->api, e);
        h->start_r = r;
        sem_post(&h->ready);
        if (r >= 0)
                (void) sd_event_loop(e);
        h->api = workload_api_free(h->api);
        sd_event_source_unref(s1);
        sd_event_source_unref(s2);
        sd_event_unref(e);
        return NULL;
}

void h_start(Harness *h) {
        h_start_with(h, &(WorkloadApiConfig){.jwt_skew_seconds = WORKLOAD_API_JWT_SKEW_SECONDS});
}

void h_start_with(Harness *h, const WorkloadApiConfig *cfg) {
        AttestorConfig acfg;

        *h = (Harness){.cfg = *cfg, .changed_fd = -EBADF, .quit_fd = -EBADF};
        assert_ok(fx_new(&h->fx));
        assert_ok(metrics_registry_new(&h->registry));
        assert_ok(metrics_names_register_agent(h->registry, &h->metrics));
        attestor_config_init(&acfg);
        acfg.systemd = false;
        assert_ok(attestor_new(&acfg, &h->attestor));
        h->dir = test_tmpdir();
        assert_non_null(h->dir);
        assert_true(asprintf(&h->sock, "%s/run/agent.sock", h->dir) > 0);
        h->cfg.socket_path = h->sock;
        h->cfg.listen_fd = -1;
        h->cfg.metrics = &h->metrics;
        h->changed_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        h->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(h->changed_fd >= 0 && h->quit_fd >= 0);
        sem_init(&h->ready, 0, 0);
        sem_init(&h->changed, 0, 0);
        assert_int_equal(pthread_create(&h->thread, NULL, server_main, h), 0);
        sem_wait(&h->ready);
        assert_ok(h->start_r);
        assert_ok(rpc_channel_new_unix(h->sock, &h->ch));
}

void h_stop_server(Harness *h) {
        uint64_t one = 1;

        if (h->stopped)
                return;
        h->stopped = true;
        assert_int_equal(write(h->quit_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        pthread_join(h->thread, NULL);
}

void h_stop(Harness *h) {
        h_stop_server(h);
        h->ch = rpc_channel_free(h->ch);
        close(h->changed_fd);
        close(h->quit_fd);
        sem_destroy(&h->ready);
        sem_destroy(&h->changed);
        h->attestor = attestor_free(h->attestor);
        h->fx = fx_free(h->fx);
        h->registry = metrics_registry_free(h->registry);
        free(h->sock);
        test_rmdir_free(h->dir);
}

void h_changed(Harness *h) {
        uint64_t one = 1;

        assert_int_equal(write(h->changed_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        sem_wait(&h->changed);
}

void h_publish(Harness *h, const FxEntry *entries, size_t n) {
        assert_ok(fx_publish(h->fx, entries, n));
        h_changed(h);
}

int h_unary_raw(
        Harness *h, const char *method, bool header, const void *req, size_t len, char **ret_msg) {
        _cleanup_free_ char *path = NULL;
        int status = -1;

        assert_true(asprintf(&path, "/SpiffeWorkloadAPI/%s", method) > 0);
        assert_ok(rpc_unary(h->ch, path, header ? hdr : NULL, header ? 1 : 0, req, len,
                            H_TIMEOUT_MS, NULL, NULL, &status, ret_msg));
        return status;
}

int h_unary(Harness *h,
            const char *method,
            bool header,
            const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc,
            ProtobufCMessage **ret,
            char **ret_msg) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ void *resp = NULL;
        size_t len = 0, resp_len = 0;
        int status = -1;

        assert_true(asprintf(&path, "/SpiffeWorkloadAPI/%s", method) > 0);
        len = protobuf_c_message_get_packed_size(req);
        buf = malloc(len + 1);
        assert_non_null(buf);
        protobuf_c_message_pack(req, buf);
        assert_ok(rpc_unary(h->ch, path, header ? hdr : NULL, header ? 1 : 0, buf, len,
                            H_TIMEOUT_MS, &resp, &resp_len, &status, ret_msg));
        if (status == 0 && ret) {
                *ret = protobuf_c_message_unpack(resp_desc, NULL, resp_len, resp);
                assert_non_null(*ret);
        }
        return status;
}

RpcStream *h_stream(Harness *h, const char *method, bool header) {
        _cleanup_free_ char *path = NULL;
        RpcStream *st = NULL;

        assert_true(asprintf(&path, "/SpiffeWorkloadAPI/%s", method) > 0);
        assert_ok(rpc_stream_open(h->ch, path, header ? hdr : NULL, header ? 1 : 0, "", 0, &st));
        return st;
}

int h_next(RpcStream *st,
           int64_t timeout_ms,
           const ProtobufCMessageDescriptor *desc,
           ProtobufCMessage **ret,
           int *ret_status,
           char **ret_msg) {
        _cleanup_free_ void *msg = NULL;
        size_t len = 0;
        int r;

        r = rpc_stream_next(st, timeout_ms, &msg, &len);
        if (r == -ETIMEDOUT)
                return r;
        assert_ok(r);
        if (r == 0) {
                assert_ok(rpc_stream_status(st, ret_status, ret_msg));
                return 0;
        }
        if (!desc)
                return 1; /* not expected: the caller fails */
        *ret = protobuf_c_message_unpack(desc, NULL, len, msg);
        assert_non_null(*ret);
        return 1;
}

void h_expect_end(RpcStream *st, int status, const char *message) {
        _cleanup_free_ char *msg = NULL;
        ProtobufCMessage *m = NULL;
        int got = -1;

        assert_int_equal(h_next(st, H_TIMEOUT_MS, NULL, &m, &got, &msg), 0);
        assert_int_equal(got, status);
        if (message)
                assert_string_equal(strempty(msg), message);
}

double h_metric(Harness *h, const char *name, const char *const *labels) {
        Metric *m = metrics_registry_find(h->registry, name);
        MetricSeries *s = NULL;

        assert_non_null(m);
        assert_ok(metrics_series_get(m, labels, &s));
        return metrics_series_value(s);
}

void h_expect_metric(Harness *h, const char *name, const char *const *labels, double want) {
        double v = h_metric(h, name, labels);

        for (int i = 0; i < H_TIMEOUT_MS / 10 && v != want; i++) {
                usleep(10000);
                v = h_metric(h, name, labels);
        }
        if (v != want)
                fail_msg("%s{%s%s%s} is %g, expected %g", name, labels ? labels[0] : "",
                         labels && labels[1] ? "," : "", labels && labels[1] ? labels[1] : "", v,
                         want);
}
