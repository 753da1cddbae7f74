/* SPDX-License-Identifier: Apache-2.0 */
/* sync-many: N simulated agents for scale benchmarks (scripts/bench-scale.sh).
 *
 *   sync-many -server H:P -trustBundle roots.pem -tokens FILE -dir D [-count N]
 *             [-concurrency C] [-holdUntil FILE] [-timeout S]
 *
 * Attests the first N join tokens of FILE (one a line) from C threads at once, keeps
 * every node key and SVID in memory and writes "<index> <agent ID>" lines to D/ids.
 * Then (once the -holdUntil file exists, if given: attestations create node alias
 * entries, so a benchmark may attest agents early and connect them later) opens one
 * Sync stream per agent, each on a channel (TCP connection) of its own,
 * read by one small thread per stream while two threads poll gRPC for all of them.
 * When every stream has delivered its first message it creates D/ready. Every message
 * received prints one line on stdout, flushed at once:
 *
 *   <CLOCK_MONOTONIC ns> <index> <sequence> <full_snapshot 0/1> <entries> <deleted> <bytes>
 *
 * Runs until SIGTERM or SIGINT (or -timeout), then exits 0; 1 when an attestation or a
 * stream failed (ended streams are reported on stderr). */
#define _GNU_SOURCE

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "rpc_client.h"
#include "rpc_status.h"
#include "test_node.h"
#include "warden/node/v1/node.pb-c.h"

#define SYNC_METHOD "/warden.node.v1.Node/Sync"
#define ATTEST_METHOD "/warden.node.v1.Node/AttestAgent"
#define ATTEST_TRIES 100
#define READER_STACK (256 * 1024)
#define POLLERS 2
#define AGENTS_MAX 100000

typedef struct SimAgent {
        size_t index;
        char *token, *id, *cert_pem, *key_pem;
        RpcChannel *ch;
        RpcStream *st;
        pthread_t thread;
        bool running;
} SimAgent;

typedef struct Fleet {
        const char *server;
        char *roots_pem, *server_id;
        SimAgent *agents;
        size_t n, next, ready, failed;
        const char *hold; /* streams open once this file exists */
        sigset_t sigs;
        bool stop;
} Fleet;

static int64_t mono_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool stopped(Fleet *fl) {
        return __atomic_load_n(&fl->stop, __ATOMIC_ACQUIRE);
}

static char *slurp(const char *path) {
        _cleanup_free_ char *buf = NULL;
        FILE *f = fopen(path, "re");
        size_t cap = 0, n = 0;

        if (!f)
                return NULL;
        for (;;) {
                if (n + 4097 > cap) {
                        char *b = realloc(buf, cap = cap * 2 + 8192);

                        if (!b)
                                break;
                        buf = b;
                }
                size_t k = fread(buf + n, 1, cap - n - 1, f);
                if (k == 0)
                        break;
                n += k;
        }
        fclose(f);
        if (!buf)
                return NULL;
        buf[n] = 0;
        return TAKE_PTR(buf);
}

/* Takes the first fl->n lines of the tokens file; fewer lines lower fl->n. */
static int read_tokens(Fleet *fl, const char *path) {
        _cleanup_free_ char *text = slurp(path);
        char *save = NULL, *line;
        size_t i = 0;

        if (!text)
                return -errno ?: -ENOMEM;
        for (line = strtok_r(text, "\n", &save); line && i < fl->n;
             line = strtok_r(NULL, "\n", &save)) {
                fl->agents[i].index = i;
                fl->agents[i].token = strdup(line);
                if (!fl->agents[i++].token)
                        return -ENOMEM;
        }
        fl->n = i;
        return i > 0 ? 0 : -EINVAL;
}

static int server_id_from_roots(Fleet *fl) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = NULL;
        _cleanup_free_ char *id = NULL, *td = NULL;
        int r;

        r = warden_x509_chain_from_pem(fl->roots_pem, strlen(fl->roots_pem), &roots);
        if (r >= 0)
                r = warden_x509_spiffe_id(sk_X509_value(roots, 0), &id);
        if (r >= 0)
                r = warden_spiffeid_parse(id, &td, NULL, NULL);
        if (r >= 0 && asprintf(&fl->server_id, "spiffe://%s/warden/server", td) < 0)
                r = -ENOMEM;
        return r;
}

static int keep_node(SimAgent *a, EVP_PKEY *key, const Warden__Node__V1__AttestAgentResponse *m) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = sk_X509_new_null();
        int r = chain ? 0 : -ENOMEM;

        for (size_t i = 0; r >= 0 && i < m->n_svid_chain; i++) {
                X509 *x = NULL;

                r = warden_x509_from_der(m->svid_chain[i].data, m->svid_chain[i].len, &x);
                if (r >= 0 && !sk_X509_push(chain, x)) {
                        X509_free(x);
                        r = -ENOMEM;
                }
        }
        if (r >= 0)
                r = warden_x509_chain_to_pem(chain, &a->cert_pem);
        if (r >= 0)
                r = warden_key_to_pem(key, &a->key_pem);
        if (r >= 0)
                a->id = strdup(m->spiffe_id);
        return r < 0 ? r : a->id ? 0 : -ENOMEM;
}

/* One AttestAgent call; 1 when the server asked us to come back later. */
static int attest_once(Fleet *fl, SimAgent *a, EVP_PKEY *key, const uint8_t *csr, size_t len) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        Warden__Node__V1__AttestAgentResponse *m;
        RpcChannel *ch = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ void *resp = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t buf_len, resp_len = 0;
        int status = 0, r;

        req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN;
        req.join_token = a->token;
        req.csr = (ProtobufCBinaryData){.data = (uint8_t *) csr, .len = len};
        r = pb_pack(&req, &buf, &buf_len);
        if (r >= 0)
                r = rpc_channel_new_tls(
                        fl->server, &(RpcTlsClientConfig){fl->roots_pem, NULL, NULL, fl->server_id},
                        &ch);
        if (r >= 0)
                r = rpc_unary(ch, ATTEST_METHOD, NULL, 0, buf, buf_len, 30000, &resp, &resp_len,
                              &status, &msg);
        rpc_channel_free(ch);
        if (r < 0)
                return r;
        if (status == GRPC_STATUS_RESOURCE_EXHAUSTED || status == GRPC_STATUS_UNAVAILABLE)
                return 1;
        if (status != GRPC_STATUS_OK) {
                fprintf(stderr, "agent %zu: attest: %s: %s\n", a->index,
                        rpc_status_to_string(status), strna(msg));
                return -EPROTO;
        }
        m = warden__node__v1__attest_agent_response__unpack(NULL, resp_len, resp);
        if (!m)
                return -EBADMSG;
        r = keep_node(a, key, m);
        pb_free(m);
        return r;
}

static int attest(Fleet *fl, SimAgent *a) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        size_t len = 0;
        int r;

        r = warden_key_generate(WARDEN_KEY_EC_P256, &key);
        if (r >= 0)
                r = warden_csr_create(key, NULL, &csr, &len);
        for (int i = 0; r >= 0 && i < ATTEST_TRIES && !stopped(fl); i++) {
                r = attest_once(fl, a, key, csr, len);
                if (r <= 0)
                        return r;
                usleep(100 * 1000);
        }
        return r < 0 ? r : -EBUSY;
}

static void *attest_worker(void *p) {
        Fleet *fl = p;

        for (;;) {
                size_t i = __atomic_fetch_add(&fl->next, 1, __ATOMIC_ACQ_REL);
                int r;

                if (i >= fl->n || stopped(fl))
                        return NULL;
                r = attest(fl, &fl->agents[i]);
                if (r < 0) {
                        fprintf(stderr, "agent %zu: attestation failed: %s\n", i, strerror(-r));
                        __atomic_fetch_add(&fl->failed, 1, __ATOMIC_ACQ_REL);
                }
        }
}

static int attest_all(Fleet *fl, size_t concurrency) {
        pthread_t t[64];
        size_t n = concurrency < 1 ? 1 : concurrency > 64 ? 64 : concurrency;

        for (size_t i = 0; i < n; i++)
                if (pthread_create(&t[i], NULL, attest_worker, fl) != 0)
                        return -EAGAIN; /* the started ones end with the process */
        for (size_t i = 0; i < n; i++)
                pthread_join(t[i], NULL);
        return fl->failed > 0 ? -EPROTO : 0;
}

static int write_ids(const Fleet *fl, const char *dir) {
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        FILE *f;

        (void) mkdir(dir, 0700);
        if (asprintf(&path, "%s/ids", dir) < 0 || asprintf(&tmp, "%s/ids.tmp", dir) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        for (size_t i = 0; i < fl->n; i++)
                fprintf(f, "%zu %s\n", i, fl->agents[i].id);
        if (fclose(f) != 0)
                return -errno;
        return rename(tmp, path) < 0 ? -errno : 0;
}

static void report(const SimAgent *a, const void *msg, size_t len, int64_t t) {
        Warden__Node__V1__SyncResponse *m = warden__node__v1__sync_response__unpack(NULL, len, msg);

        if (!m) {
                fprintf(stderr, "agent %zu: malformed SyncResponse\n", a->index);
                return;
        }
        flockfile(stdout);
        printf("%lld %zu %llu %d %zu %zu %zu\n", (long long) t, a->index,
               (unsigned long long) m->sequence, m->full_snapshot ? 1 : 0, m->n_entries,
               m->n_deleted_entry_ids, len);
        fflush(stdout);
        funlockfile(stdout);
        pb_free(m);
}

static void stream_ended(Fleet *fl, SimAgent *a) {
        _cleanup_free_ char *msg = NULL;
        int status = 0;

        (void) rpc_stream_status(a->st, &status, &msg);
        if (!stopped(fl)) {
                fprintf(stderr, "agent %zu: stream ended: %s: %s\n", a->index,
                        rpc_status_to_string(status), strna(msg));
                __atomic_fetch_add(&fl->failed, 1, __ATOMIC_ACQ_REL);
        }
}

static void mark_ready(Fleet *fl) {
        __atomic_fetch_add(&fl->ready, 1, __ATOMIC_ACQ_REL);
}

typedef struct ReaderArg {
        Fleet *fleet;
        SimAgent *agent;
} ReaderArg;

static int stream_open(Fleet *fl, SimAgent *a) {
        Warden__Node__V1__SyncRequest req = WARDEN__NODE__V1__SYNC_REQUEST__INIT;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        r = rpc_channel_new_tls(
                fl->server,
                &(RpcTlsClientConfig){fl->roots_pem, a->cert_pem, a->key_pem, fl->server_id},
                &a->ch);
        if (r >= 0)
                r = pb_pack(&req, &buf, &len);
        if (r >= 0)
                r = rpc_stream_open(a->ch, SYNC_METHOD, NULL, 0, buf, len, &a->st);
        return r;
}

/* One agent's stream: connect, then report every message until stopped. */
static void *reader_main(void *p) {
        ReaderArg *arg = p;
        Fleet *fl = arg->fleet;
        SimAgent *a = arg->agent;
        bool first = true;
        int r;

        free(arg);
        r = stream_open(fl, a);
        if (r < 0) {
                fprintf(stderr, "agent %zu: sync: %s\n", a->index, strerror(-r));
                __atomic_fetch_add(&fl->failed, 1, __ATOMIC_ACQ_REL);
                mark_ready(fl);
                return NULL;
        }
        while (!stopped(fl)) {
                _cleanup_free_ void *msg = NULL;
                size_t len = 0;

                r = rpc_stream_next(a->st, 1000, &msg, &len);
                if (r == -ETIMEDOUT)
                        continue;
                if (r <= 0) {
                        stream_ended(fl, a);
                        break;
                }
                report(a, msg, len, mono_ns());
                if (first)
                        mark_ready(fl);
                first = false;
        }
        if (first)
                mark_ready(fl);
        return NULL;
}

static int start_readers(Fleet *fl) {
        pthread_attr_t attr;
        int r = 0;

        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, READER_STACK);
        for (size_t i = 0; i < fl->n && r == 0; i++) {
                ReaderArg *arg = malloc(sizeof(*arg));

                if (!arg) {
                        r = ENOMEM;
                        break;
                }
                *arg = (ReaderArg){fl, &fl->agents[i]};
                r = pthread_create(&fl->agents[i].thread, &attr, reader_main, arg);
                if (r != 0)
                        free(arg);
                else
                        fl->agents[i].running = true;
        }
        pthread_attr_destroy(&attr);
        return -r;
}

static bool all_ready(Fleet *fl) {
        return __atomic_load_n(&fl->ready, __ATOMIC_ACQUIRE) >= fl->n;
}

static bool hold_released(Fleet *fl) {
        return !fl->hold || access(fl->hold, F_OK) == 0;
}

static bool never(Fleet *fl) {
        (void) fl;
        return false;
}

/* Waits until done(fl), polling every 50 ms. Returns 0, -ECANCELED when a signal
 * stopped us first, or -ETIMEDOUT at the deadline (CLOCK_MONOTONIC ns, 0 = none). */
static int fleet_wait(Fleet *fl, bool (*done)(Fleet *fl), int64_t deadline_ns) {
        while (!stopped(fl)) {
                if (done(fl))
                        return 0;
                if (deadline_ns > 0 && mono_ns() >= deadline_ns)
                        return -ETIMEDOUT;
                usleep(50 * 1000);
        }
        return -ECANCELED;
}

/* Turns SIGTERM and SIGINT (blocked in every thread) into fl->stop. */
static void *signal_main(void *p) {
        Fleet *fl = p;
        int sig = 0;

        (void) sigwait(&fl->sigs, &sig);
        __atomic_store_n(&fl->stop, true, __ATOMIC_RELEASE);
        return NULL;
}

static int touch_ready(const char *dir, const Fleet *fl) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        if (asprintf(&path, "%s/ready", dir) < 0)
                return -ENOMEM;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f, "%zu %zu\n", fl->n, fl->failed);
        return fclose(f) == 0 ? 0 : -errno;
}

static void fleet_done(Fleet *fl) {
        __atomic_store_n(&fl->stop, true, __ATOMIC_RELEASE);
        for (size_t i = 0; fl->agents && i < fl->n; i++) {
                SimAgent *a = &fl->agents[i];

                if (a->running)
                        pthread_join(a->thread, NULL);
                rpc_stream_free(a->st);
                rpc_channel_free(a->ch);
                free(a->token);
                free(a->id);
                free(a->cert_pem);
                free(a->key_pem);
        }
        free(fl->agents);
        free(fl->roots_pem);
        free(fl->server_id);
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static int fleet_run(Fleet *fl, const Options *o) {
        const char *dir = options_get_string(o, "dir");
        int64_t timeout = options_get_duration(o, "timeout");
        int64_t deadline = timeout > 0 ? mono_ns() + timeout * 1000000000 : 0;
        int r;

        r = read_tokens(fl, options_get_string(o, "tokens"));
        if (r < 0)
                return r;
        r = attest_all(fl, (size_t) options_get_int(o, "concurrency"));
        if (r >= 0)
                r = write_ids(fl, dir);
        if (r >= 0)
                r = fleet_wait(fl, hold_released, deadline);
        if (r >= 0)
                r = start_readers(fl);
        if (r >= 0)
                r = fleet_wait(fl, all_ready, deadline);
        if (r >= 0)
                r = touch_ready(dir, fl);
        if (r >= 0) {
                fprintf(stderr, "sync-many: %zu agents synced (%zu failed)\n", fl->n, fl->failed);
                r = fleet_wait(fl, never, deadline);
        }
        return r == -ECANCELED || (r == -ETIMEDOUT && all_ready(fl)) ? 0 : r;
}

int cmd_sync_many(const Options *o) {
        RpcPoller *pollers[POLLERS] = {};
        int64_t count = options_get_int(o, "count");
        const char *bundle = options_get_string(o, "trustBundle");
        Fleet fl = {.server = options_get_string(o, "server"),
                    .hold = options_get_string(o, "holdUntil")};
        pthread_t sig_thread;
        int r;

        sigemptyset(&fl.sigs);
        sigaddset(&fl.sigs, SIGTERM);
        sigaddset(&fl.sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &fl.sigs, NULL); /* every thread inherits it */
        raise_nofile();
        if (count <= 0 || count > AGENTS_MAX || !bundle || !options_get_string(o, "tokens")) {
                fprintf(stderr, "Error: sync-many needs -tokens, -trustBundle, -count 1..%d\n",
                        AGENTS_MAX);
                return 1;
        }
        fl.n = (size_t) count;
        fl.agents = calloc(fl.n, sizeof(SimAgent));
        fl.roots_pem = slurp(bundle);
        r = fl.agents && fl.roots_pem ? server_id_from_roots(&fl) : -ENOMEM;
        if (r >= 0 && pthread_create(&sig_thread, NULL, signal_main, &fl) != 0)
                r = -EAGAIN;
        if (r < 0) {
                fleet_done(&fl);
                fprintf(stderr, "Error: sync-many: %s\n", strerror(-r));
                return 1;
        }
        rpc_client_set_polled_elsewhere(true);
        for (size_t i = 0; r >= 0 && i < POLLERS; i++)
                r = rpc_poller_start(&pollers[i]);
        if (r >= 0)
                r = fleet_run(&fl, o);
        if (!stopped(&fl))
                pthread_kill(sig_thread, SIGTERM); /* pending for its sigwait() */
        pthread_join(sig_thread, NULL);
        fleet_done(&fl); /* readers see stop within a second */
        rpc_client_set_polled_elsewhere(false);
        for (size_t i = 0; i < POLLERS; i++)
                rpc_poller_stop(pollers[i]);
        if (r < 0) {
                fprintf(stderr, "Error: sync-many: %s\n", strerror(-r));
                return 1;
        }
        return fl.failed > 0 ? 1 : 0;
}
