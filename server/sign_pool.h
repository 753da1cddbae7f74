/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A small pool of signing threads (-signingThreads): the node API's main thread
 * authenticates and authorizes a call, then hands the CPU-bound rest (CSR checks,
 * signatures, packing, rpc_call_reply()) to the pool.
 *
 * A job embeds a SignJob as its first member. run() is called once on a pool thread and
 * owns the job from then on; when the pool stops before a job ran, cancel() is called
 * on the stopping thread instead (the job is never run). Exactly one of the two is
 * called for every job sign_pool_submit() accepted.
 *
 * Threads: sign_pool_new(), sign_pool_stop() and sign_pool_free() belong to the owner
 * (the main thread); sign_pool_submit() and sign_pool_queued() may be called from any
 * thread. */

#include <stddef.h>

#include "cleanup.h"

/* Jobs waiting at most; beyond, sign_pool_submit() refuses (-EBUSY). Each is one call
 * of up to 500 CSRs. */
#define SIGN_POOL_QUEUE_MAX 1024
/* Most threads -signingThreads accepts. */
#define SIGN_POOL_THREADS_MAX 256

typedef struct SignPool SignPool;
typedef struct SignJob SignJob;

struct SignJob {
        SignJob *next;
        void (*run)(SignJob *j);
        void (*cancel)(SignJob *j);
};

/* Starts n_threads (1..SIGN_POOL_THREADS_MAX) threads. */
int sign_pool_new(unsigned n_threads, SignPool **ret);

/* Queues j (run and cancel set by the caller). -ESHUTDOWN once the pool stops, -EBUSY
 * with SIGN_POOL_QUEUE_MAX jobs waiting: then the caller still owns j. */
int sign_pool_submit(SignPool *p, SignJob *j);

/* Jobs waiting (not yet running). */
size_t sign_pool_queued(SignPool *p);

/* Refuses new jobs, cancels the waiting ones (cancel(), on this thread), waits for the
 * running ones and joins the threads. Idempotent; NULL is a no-op. */
void sign_pool_stop(SignPool *p);

/* Stops and frees the pool. Accepts NULL; returns NULL. */
SignPool *sign_pool_free(SignPool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(SignPool *, sign_pool_free)

/* Online CPUs (sysconf), at least 1: the default of -signingThreads. */
unsigned sign_pool_default_threads(void);
