/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A real WorkloadApi on a temp socket, run by its own sd-event loop on a thread and fed
 * by a Fixture, plus client helpers built on common/rpc_client.h. */

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#include <protobuf-c/protobuf-c.h>

#include "attest_wl.h"
#include "metrics.h"
#include "metrics_names.h"
#include "rpc_client.h"
#include "wapi_fixture.h"
#include "workload_api.h"

#define H_TIMEOUT_MS 5000

typedef struct Harness {
        Fixture *fx;
        Attestor *attestor;
        WorkloadApi *api;
        WorkloadApiConfig cfg; /* limits and JWT rules of h_start_with() */
        char *dir, *sock;
        int changed_fd, quit_fd;
        sem_t ready, changed;
        int start_r;
        bool stopped;
        pthread_t thread;
        RpcChannel *ch;
        MetricsRegistry *registry; /* the server's metrics */
        AgentMetrics metrics;
} Harness;

/* Makes the fixture (no snapshot), the attestor and the server; asserts on failure. */
void h_start(Harness *h);
/* The same with cfg's limits and JWT rules (socket path and metrics are the harness's). */
void h_start_with(Harness *h, const WorkloadApiConfig *cfg);
void h_stop(Harness *h);
/* Stops only the server (clients see their calls end); h_stop() does the rest. */
void h_stop_server(Harness *h);

/* Tells the server a new snapshot is out and waits until it has pushed to streams. */
void h_changed(Harness *h);

/* fx_publish() + h_changed(). */
void h_publish(Harness *h, const FxEntry *entries, size_t n);

/* One unary call; returns the gRPC status. *ret (may be NULL) gets the unpacked
 * response on OK, *ret_msg (may be NULL) the status message. */
int h_unary(Harness *h,
            const char *method,
            bool header,
            const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc,
            ProtobufCMessage **ret,
            char **ret_msg);

/* Same with raw request bytes and no response parsing. */
int h_unary_raw(
        Harness *h, const char *method, bool header, const void *req, size_t len, char **ret_msg);

/* Opens a stream (empty request). */
RpcStream *h_stream(Harness *h, const char *method, bool header);

/* Next message of a stream, unpacked as desc: 1 with *ret, 0 when the stream ended
 * (status in *ret_status, message in *ret_msg, both optional), -ETIMEDOUT. */
int h_next(RpcStream *st,
           int64_t timeout_ms,
           const ProtobufCMessageDescriptor *desc,
           ProtobufCMessage **ret,
           int *ret_status,
           char **ret_msg);

/* The value of a series of the server's metrics (label values NULL-terminated, NULL
 * for none): a counter's count, a gauge's value, a histogram's observation count. */
double h_metric(Harness *h, const char *name, const char *const *labels);
/* Waits up to H_TIMEOUT_MS for h_metric() to equal want (the server counts a call
 * right after its answer went out), then asserts it. */
void h_expect_metric(Harness *h, const char *name, const char *const *labels, double want);

/* Expects the stream to end with this status (and message, if not NULL). */
void h_expect_end(RpcStream *st, int status, const char *message);
