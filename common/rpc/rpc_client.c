/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "rpc_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_internal.h"
#include "rpc_status.h"

/* Request metadata pairs a caller may attach. */
#define RPC_CLIENT_MAX_METADATA 32

struct RpcChannel {
        grpc_channel *channel;
};

/* Where a blocking call waits for its batches: a pluck CQ that the waiting thread polls,
 * or, while another thread polls for the process (rpc_client_set_polled_elsewhere()), a
 * callback CQ whose completions wake the waiter through a condition variable, so the
 * waiting thread never handles other connections' I/O. */
typedef struct ClientCq ClientCq;

typedef struct ClientTag {
        grpc_completion_queue_functor functor; /* first: callback CQs get its address */
        ClientCq *q;
        bool done, ok; /* callback CQs, under q->lock */
} ClientTag;

struct ClientCq {
        grpc_completion_queue *cq;
        bool callback;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* CLOCK_MONOTONIC */
        ClientTag shutdown;
};

struct RpcStream {
        ClientCq *cq;
        grpc_call *call;
        grpc_byte_buffer *send_bb, *recv_bb;
        grpc_metadata_array initial_md, trailing_md;
        grpc_status_code status;
        grpc_slice details;
        bool start_pending, recv_pending, status_pending;
        ClientTag start_tag, recv_tag, status_tag;
};

static int channel_new(const char *target, grpc_channel_credentials *creds, RpcChannel **ret) {
        RpcChannel *ch = calloc(1, sizeof(*ch));

        if (!ch) {
                grpc_channel_credentials_release(creds);
                return -ENOMEM;
        }
        ch->channel = grpc_channel_create(target, creds, rpc_channel_args(false));
        grpc_channel_credentials_release(creds);
        if (!ch->channel) {
                free(ch);
                return -ENOMEM;
        }
        *ret = ch;
        return 0;
}

int rpc_channel_new_unix(const char *path, RpcChannel **ret) {
        _cleanup_free_ char *target = NULL;
        const char *p = path;
        int r;

        if (!path || !ret)
                return -EINVAL;
        if (strneq(p, "unix://", 7))
                p += 7; /* unix:///abs: empty authority; unix://host is refused below */
        else if (strneq(p, "unix:", 5))
                p += 5;
        if (p[0] != '/')
                return -EINVAL;
        if (strlen(p) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -ENAMETOOLONG;
        if (asprintf(&target, "unix:%s", p) < 0)
                return -ENOMEM;

        rpc_grpc_ref();
        r = channel_new(target, grpc_insecure_credentials_create(), ret);
        if (r < 0)
                rpc_grpc_unref();
        return r;
}

int rpc_channel_new_tls(const char *target, const RpcTlsClientConfig *cfg, RpcChannel **ret) {
        grpc_channel_credentials *creds;
        int r;

        if (!target || !cfg || !ret)
                return -EINVAL;
        rpc_grpc_ref();
        r = rpc_tls_channel_creds_new(cfg, &creds);
        if (r >= 0)
                r = channel_new(target, creds, ret);
        if (r < 0)
                rpc_grpc_unref();
        return r;
}

RpcChannel *rpc_channel_free(RpcChannel *ch) {
        if (!ch)
                return NULL;
        grpc_channel_destroy(ch->channel);
        free(ch);
        rpc_grpc_unref();
        return NULL;
}

RpcTlsFailure rpc_tls_failure_from_details(const char *details, const char **ret_reason) {
        /* OpenSSL 3 says "certificate verify failed", BoringSSL and older OpenSSL
         * "CERTIFICATE_VERIFY_FAILED". */
        static const char *const untrusted[] = {"certificate verify failed",
                                                "CERTIFICATE_VERIFY_FAILED"};
        const char *p;

        if (ret_reason)
                *ret_reason = NULL;
        if (!details)
                return RPC_TLS_FAILURE_NONE;
        p = strstr(details, RPC_TLS_ID_MISMATCH);
        if (p) {
                if (ret_reason)
                        *ret_reason = p;
                return RPC_TLS_FAILURE_SERVER_ID;
        }
        for (size_t i = 0; i < ELEMENTSOF(untrusted); i++) {
                p = strstr(details, untrusted[i]);
                if (p) {
                        if (ret_reason)
                                *ret_reason = p;
                        return RPC_TLS_FAILURE_UNTRUSTED;
                }
        }
        return RPC_TLS_FAILURE_NONE;
}

static int check_request(
        const char *method, const RpcMetadata *md, size_t n_md, const void *req, size_t len) {
        if (!method || method[0] != '/' || (!req && len > 0) || (!md && n_md > 0))
                return -EINVAL;
        if (n_md > RPC_CLIENT_MAX_METADATA)
                return -E2BIG;
        for (size_t i = 0; i < n_md; i++)
                if (!md[i].key || !md[i].value)
                        return -EINVAL;
        if (len > RPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        return 0;
}

static bool polled_elsewhere; /* atomic */

void rpc_client_set_polled_elsewhere(bool on) {
        __atomic_store_n(&polled_elsewhere, on, __ATOMIC_RELEASE);
}

struct RpcPoller {
        grpc_completion_queue *cq; /* never used for an operation: only to poll */
        pthread_t thread;
        bool stop; /* atomic */
};

static void *poller_main(void *p) {
        RpcPoller *poller = p;

        while (!__atomic_load_n(&poller->stop, __ATOMIC_ACQUIRE))
                (void) grpc_completion_queue_next(poller->cq, rpc_deadline_ms(50), NULL);
        return NULL;
}

int rpc_poller_start(RpcPoller **ret) {
        RpcPoller *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        rpc_grpc_ref();
        p->cq = grpc_completion_queue_create_for_next(NULL);
        r = p->cq ? rpc_thread_create(&p->thread, "rpc-poller", poller_main, p) : -ENOMEM;
        if (r < 0) {
                if (p->cq)
                        grpc_completion_queue_destroy(p->cq);
                free(p);
                rpc_grpc_unref();
                return r;
        }
        *ret = p;
        return 0;
}

RpcPoller *rpc_poller_stop(RpcPoller *p) {
        if (!p)
                return NULL;
        __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
        pthread_join(p->thread, NULL);
        grpc_completion_queue_shutdown(p->cq);
        while (grpc_completion_queue_next(p->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(p->cq);
        free(p);
        rpc_grpc_unref();
        return NULL;
}

/* Callback CQs: a completion (any thread, inline) marks its tag done. */
static void tag_done(grpc_completion_queue_functor *f, int ok) {
        ClientTag *t = (ClientTag *) f;
        ClientCq *q = t->q;

        pthread_mutex_lock(&q->lock);
        t->done = true;
        t->ok = ok != 0;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
}

/* Readies t for one batch on q; returns the tag to start the batch with. */
static void *tag_arm(ClientCq *q, ClientTag *t) {
        *t = (ClientTag){.functor = {.functor_run = tag_done, .inlineable = 1}, .q = q};
        return t;
}

static void ccq_free(ClientCq *q) {
        if (!q)
                return;
        if (q->cq) {
                /* Every batch completed (we waited for all): shutdown is immediate for a
                 * pluck CQ; a callback CQ confirms through its functor. */
                grpc_completion_queue_shutdown(q->cq);
                if (q->callback) {
                        pthread_mutex_lock(&q->lock);
                        while (!q->shutdown.done)
                                pthread_cond_wait(&q->cond, &q->lock);
                        pthread_mutex_unlock(&q->lock);
                }
                grpc_completion_queue_destroy(q->cq);
        }
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        free(q);
}

static int ccq_new(ClientCq **ret) {
        pthread_condattr_t attr;
        ClientCq *q = calloc(1, sizeof(*q));

        if (!q)
                return -ENOMEM;
        pthread_mutex_init(&q->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&q->cond, &attr);
        pthread_condattr_destroy(&attr);
        q->callback = __atomic_load_n(&polled_elsewhere, __ATOMIC_ACQUIRE);
        if (q->callback)
                q->cq = grpc_completion_queue_create_for_callback(
                        &((ClientTag *) tag_arm(q, &q->shutdown))->functor, NULL);
        else
                q->cq = grpc_completion_queue_create_for_pluck(NULL);
        if (!q->cq) {
                ccq_free(q);
                return -ENOMEM;
        }
        *ret = q;
        return 0;
}

/* Waits for the batch started with tag t: 1 when it completed (*ret_ok: its success),
 * 0 when timeout_ms (< 0: none) passed first. */
static int ccq_wait(ClientCq *q, ClientTag *t, int64_t timeout_ms, bool *ret_ok) {
        struct timespec until;
        int r = 0;

        if (!q->callback) {
                grpc_event ev =
                        grpc_completion_queue_pluck(q->cq, t, rpc_deadline_ms(timeout_ms), NULL);

                if (ev.type == GRPC_QUEUE_TIMEOUT)
                        return 0;
                *ret_ok = ev.type == GRPC_OP_COMPLETE && ev.success;
                return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&q->lock);
        while (!t->done && r != ETIMEDOUT)
                r = timeout_ms < 0 ? pthread_cond_wait(&q->cond, &q->lock)
                                   : pthread_cond_timedwait(&q->cond, &q->lock, &until);
        *ret_ok = t->ok;
        r = t->done ? 1 : 0;
        pthread_mutex_unlock(&q->lock);
        return r;
}

/* Creates the call on a fresh CQ. */
static int call_create(RpcChannel *ch,
                       const char *method,
                       int64_t timeout_ms,
                       ClientCq **ret_cq,
                       grpc_call **ret_call) {
        grpc_slice m = grpc_slice_from_copied_string(method);
        ClientCq *q = NULL;
        grpc_call *call;
        int r;

        r = ccq_new(&q);
        if (r < 0) {
                grpc_slice_unref(m);
                return r;
        }
        call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, q->cq, m, NULL,
                                        rpc_deadline_ms(timeout_ms), NULL);
        grpc_slice_unref(m);
        if (!call) {
                ccq_free(q);
                return -ENOMEM;
        }
        *ret_cq = q;
        *ret_call = call;
        return 0;
}

/* Copied slices: core keeps references while the batch needs them. */
static void md_build(grpc_metadata *out, const RpcMetadata *md, size_t n_md) {
        for (size_t i = 0; i < n_md; i++)
                out[i] = (grpc_metadata){
                        .key = grpc_slice_from_copied_string(md[i].key),
                        .value = grpc_slice_from_copied_string(md[i].value),
                };
}

static void md_unref(grpc_metadata *out, size_t n_md) {
        for (size_t i = 0; i < n_md; i++) {
                grpc_slice_unref(out[i].key);
                grpc_slice_unref(out[i].value);
        }
}

/* Bad metadata (keys must be lowercase [a-z0-9-_.], values printable unless the
 * key ends in -bin) is the caller's mistake; anything else is ours. */
static int batch_error(grpc_call_error e) {
        return e == GRPC_CALL_ERROR_INVALID_METADATA ? -EINVAL : -EIO;
}

static char *details_dup(grpc_slice details) {
        size_t n = GRPC_SLICE_LENGTH(details);

        if (n == 0)
                return NULL;
        return strndup((const char *) GRPC_SLICE_START_PTR(details), n);
}

/* Hands the outcome of a finished unary call to the caller's ret_ pointers. */
static int unary_result(grpc_status_code status,
                        grpc_slice details,
                        grpc_byte_buffer *resp,
                        void **ret_resp,
                        size_t *ret_len,
                        int *ret_status,
                        char **ret_message) {
        _cleanup_free_ void *data = NULL;
        size_t len = 0;
        int r;

        if (!ret_status && status != GRPC_STATUS_OK)
                return rpc_status_to_errno(status);
        if (status == GRPC_STATUS_OK && resp && ret_resp) {
                r = rpc_byte_buffer_copy(resp, &data, &len);
                if (r < 0)
                        return r;
        }
        if (ret_message)
                *ret_message = details_dup(details);
        if (ret_status)
                *ret_status = status;
        if (ret_resp)
                *ret_resp = TAKE_PTR(data);
        if (ret_len)
                *ret_len = len;
        return 0;
}

typedef struct UnaryState {
        grpc_metadata_array initial_md, trailing_md;
        grpc_byte_buffer *send_bb, *recv_bb;
        grpc_status_code status;
        grpc_slice details;
} UnaryState;

/* Sends everything and receives everything in one batch; returns once the call
 * is over (its deadline, if any, bounds the wait). */
static int unary_run(
        grpc_call *call, ClientCq *q, UnaryState *u, const RpcMetadata *md, size_t n_md) {
        grpc_metadata gmd[RPC_CLIENT_MAX_METADATA];
        grpc_op ops[6] = {};
        grpc_call_error e;
        ClientTag tag;
        bool ok = false;

        md_build(gmd, md, n_md);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = n_md;
        ops[0].data.send_initial_metadata.metadata = gmd;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = u->send_bb;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &u->recv_bb;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
        ops[5].data.recv_status_on_client.status = &u->status;
        ops[5].data.recv_status_on_client.status_details = &u->details;

        e = grpc_call_start_batch(call, ops, ELEMENTSOF(ops), tag_arm(q, &tag), NULL);
        md_unref(gmd, n_md);
        if (e != GRPC_CALL_OK)
                return batch_error(e);
        /* The call's deadline, if any, bounds the wait. */
        return ccq_wait(q, &tag, -1, &ok) > 0 ? 0 : -EIO;
}

int rpc_unary(RpcChannel *ch,
              const char *method,
              const RpcMetadata *md,
              size_t n_md,
              const void *req,
              size_t len,
              int64_t timeout_ms,
              void **ret_resp,
              size_t *ret_len,
              int *ret_status,
              char **ret_message) {
        UnaryState u = {.status = GRPC_STATUS_UNKNOWN, .details = grpc_empty_slice()};
        ClientCq *cq;
        grpc_call *call;
        int r;

        if (!ch)
                return -EINVAL;
        r = check_request(method, md, n_md, req, len);
        if (r < 0)
                return r;
        u.send_bb = rpc_byte_buffer_new(req, len);
        if (!u.send_bb)
                return -ENOMEM;
        r = call_create(ch, method, timeout_ms, &cq, &call);
        if (r < 0) {
                grpc_byte_buffer_destroy(u.send_bb);
                return r;
        }
        grpc_metadata_array_init(&u.initial_md);
        grpc_metadata_array_init(&u.trailing_md);

        r = unary_run(call, cq, &u, md, n_md);
        if (r >= 0)
                r = unary_result(u.status, u.details, u.recv_bb, ret_resp, ret_len, ret_status,
                                 ret_message);

        grpc_call_unref(call);
        ccq_free(cq);
        grpc_byte_buffer_destroy(u.send_bb);
        if (u.recv_bb)
                grpc_byte_buffer_destroy(u.recv_bb);
        grpc_slice_unref(u.details);
        grpc_metadata_array_destroy(&u.initial_md);
        grpc_metadata_array_destroy(&u.trailing_md);
        return r;
}

/* --- server streams --- */

static int stream_start(RpcStream *st, const RpcMetadata *md, size_t n_md) {
        grpc_metadata gmd[RPC_CLIENT_MAX_METADATA];
        grpc_op ops[4] = {}, sop = {};
        grpc_call_error e;

        md_build(gmd, md, n_md);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = n_md;
        ops[0].data.send_initial_metadata.metadata = gmd;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = st->send_bb;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &st->initial_md;
        e = grpc_call_start_batch(st->call, ops, ELEMENTSOF(ops), tag_arm(st->cq, &st->start_tag),
                                  NULL);
        md_unref(gmd, n_md);
        if (e != GRPC_CALL_OK)
                return batch_error(e);
        st->start_pending = true;

        sop.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        sop.data.recv_status_on_client.trailing_metadata = &st->trailing_md;
        sop.data.recv_status_on_client.status = &st->status;
        sop.data.recv_status_on_client.status_details = &st->details;
        if (grpc_call_start_batch(st->call, &sop, 1, tag_arm(st->cq, &st->status_tag), NULL) !=
            GRPC_CALL_OK)
                return -EIO;
        st->status_pending = true;
        return 0;
}

int rpc_stream_open(RpcChannel *ch,
                    const char *method,
                    const RpcMetadata *md,
                    size_t n_md,
                    const void *req,
                    size_t len,
                    RpcStream **ret) {
        RpcStream *st;
        int r;

        if (!ch || !ret)
                return -EINVAL;
        r = check_request(method, md, n_md, req, len);
        if (r < 0)
                return r;
        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        rpc_grpc_ref();
        grpc_metadata_array_init(&st->initial_md);
        grpc_metadata_array_init(&st->trailing_md);
        st->details = grpc_empty_slice();
        st->status = GRPC_STATUS_UNKNOWN;

        st->send_bb = rpc_byte_buffer_new(req, len);
        r = st->send_bb ? call_create(ch, method, -1, &st->cq, &st->call) : -ENOMEM;
        if (r >= 0)
                r = stream_start(st, md, n_md);
        if (r < 0) {
                rpc_stream_free(st);
                return r;
        }
        *ret = st;
        return 0;
}

static void stream_pluck(RpcStream *st, ClientTag *tag, bool *pending) {
        bool ok;

        if (!*pending)
                return;
        (void) ccq_wait(st->cq, tag, -1, &ok);
        *pending = false;
}

int rpc_stream_next(RpcStream *st, int64_t timeout_ms, void **ret_msg, size_t *ret_len) {
        bool ok = false;
        void *data;
        size_t len;
        int r;

        if (!st || !ret_msg)
                return -EINVAL;
        if (!st->status_pending && !st->recv_pending)
                return 0; /* ended before */
        if (!st->recv_pending) {
                grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};

                op.data.recv_message.recv_message = &st->recv_bb;
                if (grpc_call_start_batch(st->call, &op, 1, tag_arm(st->cq, &st->recv_tag), NULL) !=
                    GRPC_CALL_OK)
                        return -EIO;
                st->recv_pending = true;
        }
        if (ccq_wait(st->cq, &st->recv_tag, timeout_ms, &ok) == 0)
                return -ETIMEDOUT;
        st->recv_pending = false;

        if (ok && st->recv_bb) {
                r = rpc_byte_buffer_copy(st->recv_bb, &data, &len);
                grpc_byte_buffer_destroy(st->recv_bb);
                st->recv_bb = NULL;
                if (r < 0)
                        return r;
                *ret_msg = data;
                if (ret_len)
                        *ret_len = len;
                return 1;
        }
        /* No message: the stream is over; its status follows right away. */
        stream_pluck(st, &st->status_tag, &st->status_pending);
        return 0;
}

int rpc_stream_status(RpcStream *st, int *ret_status, char **ret_message) {
        if (!st)
                return -EINVAL;
        if (st->status_pending)
                return -EBUSY;
        if (ret_message)
                *ret_message = details_dup(st->details);
        if (ret_status)
                *ret_status = st->status;
        return 0;
}

void rpc_stream_cancel(RpcStream *st) {
        if (st && st->call)
                grpc_call_cancel(st->call, NULL);
}

RpcStream *rpc_stream_free(RpcStream *st) {
        if (!st)
                return NULL;
        if (st->call) {
                if (st->status_pending || st->recv_pending)
                        grpc_call_cancel(st->call, NULL);
                /* Every started batch must complete before the call and CQ go. */
                stream_pluck(st, &st->start_tag, &st->start_pending);
                stream_pluck(st, &st->recv_tag, &st->recv_pending);
                stream_pluck(st, &st->status_tag, &st->status_pending);
                grpc_call_unref(st->call);
        }
        ccq_free(st->cq);
        if (st->send_bb)
                grpc_byte_buffer_destroy(st->send_bb);
        if (st->recv_bb)
                grpc_byte_buffer_destroy(st->recv_bb);
        grpc_slice_unref(st->details);
        grpc_metadata_array_destroy(&st->initial_md);
        grpc_metadata_array_destroy(&st->trailing_md);
        free(st);
        rpc_grpc_unref();
        return NULL;
}

int rpc_unix_probe(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}
