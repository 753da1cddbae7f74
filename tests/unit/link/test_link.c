/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's link (agent/link.c) against an in-process node API server over real TLS
 * (tests/unit/node_api/node_test.c): the events it posts to the main thread, in order,
 * for an attestation and a Sync stream, a stream that drops (a server restart, an
 * eviction), the refusals it gives up on, and link_stop() while the thread is blocked
 * on the stream or in its back-off. The main thread here plays the agent's: it runs the
 * server's handlers and link_dispatch(). */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "link.h"
#include "node_identity.h"
#include "node_test.h"
#include "ossl_cleanup.h"
#include "server.h"
#include "testlib.h"

#define TOKEN "link-token"
#define JOIN_ID "spiffe://" NT_TD "/warden/agent/join_token/" TOKEN
#define X509POP_ID_PREFIX "spiffe://" NT_TD "/warden/agent/x509pop/"
/* How long a test waits for the next event (reconnects wait out a back-off). */
#define WAIT_MS 30000
/* link_stop() must not wait out a call deadline (SERVER_CALL_TIMEOUT_MS) or a back-off. */
#define STOP_MS 5000

typedef struct Seen {
        LinkEventType type;
        int error;
        char *message;
        size_t n_entries; /* SYNC */
        bool has_bundle;  /* SYNC */
} Seen;

typedef struct LinkFx {
        NodeFx node; /* .s is NULL when there is no server */
        char *data_dir;
        WardenBundle *bootstrap;
        ServerCreds *creds;
        Link *link;
        Seen events[32];
        size_t n_events, checked;
} LinkFx;

static const char *event_name(LinkEventType t) {
        static const char *const names[] = {
                [LINK_EVENT_ATTESTED] = "ATTESTED",         [LINK_EVENT_RENEWED] = "RENEWED",
                [LINK_EVENT_CONNECTED] = "CONNECTED",       [LINK_EVENT_SYNC] = "SYNC",
                [LINK_EVENT_DISCONNECTED] = "DISCONNECTED", [LINK_EVENT_FATAL] = "FATAL",
        };

        return (size_t) t < ELEMENTSOF(names) ? names[t] : "?";
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The agent's link_event(): records the event (main thread). */
static void on_event(const LinkEvent *ev, void *userdata) {
        LinkFx *fx = userdata;
        Seen *s;

        if (fx->n_events >= ELEMENTSOF(fx->events))
                fail_msg("more than %zu link events", ELEMENTSOF(fx->events));
        s = &fx->events[fx->n_events++];
        *s = (Seen){.type = ev->type, .error = ev->error};
        s->message = ev->message ? strdup(ev->message) : NULL;
        if (ev->sync) {
                s->n_entries = ev->sync->n_entries;
                s->has_bundle = ev->sync->bundle != NULL;
        }
}

/* Runs the server's handlers and the link's events until an event is there that the test
 * has not checked yet, or ms passed. */
static void pump(LinkFx *fx, int ms) {
        uint64_t end = now_ms() + (uint64_t) ms;

        for (;;) {
                struct pollfd p[2] = {
                        {.fd = link_event_fd(fx->link), .events = POLLIN},
                        {.fd = fx->node.s ? rpc_server_event_fd(fx->node.s->node_rpc) : -1,
                         .events = POLLIN},
                };

                if (fx->node.s)
                        assert_true(rpc_server_dispatch(fx->node.s->node_rpc) >= 0);
                link_dispatch(fx->link);
                if (fx->n_events > fx->checked || now_ms() >= end)
                        return;
                (void) poll(p, ELEMENTSOF(p), 5);
        }
}

/* The next event, which must be of this type. */
static const Seen *expect_event(LinkFx *fx, LinkEventType type) {
        const Seen *s;

        pump(fx, WAIT_MS);
        if (fx->n_events <= fx->checked)
                fail_msg("no %s event within %d ms", event_name(type), WAIT_MS);
        s = &fx->events[fx->checked++];
        if (s->type != type)
                fail_msg("event %s (%d, %s), expected %s", event_name(s->type), s->error,
                         strna(s->message), event_name(type));
        return s;
}

/* Skips the events of this type that come next (attempts that failed alike). */
static void skip_events(LinkFx *fx, LinkEventType type) {
        for (;;) {
                pump(fx, WAIT_MS);
                if (fx->n_events <= fx->checked || fx->events[fx->checked].type != type)
                        return;
                fx->checked++;
        }
}

static void expect_no_event(LinkFx *fx) {
        link_dispatch(fx->link);
        if (fx->n_events > fx->checked)
                fail_msg("unexpected event %s (%s)", event_name(fx->events[fx->checked].type),
                         strna(fx->events[fx->checked].message));
}

static WardenBundle *bundle_from_pem(const char *dir, const char *pem) {
        _cleanup_free_ char *path = NULL;
        WardenBundle *b = NULL;
        FILE *f;

        assert_true(asprintf(&path, "%s/roots.pem", dir) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(pem, f) >= 0);
        assert_int_equal(fclose(f), 0);
        assert_ok(node_identity_bundle_from_pem_file(path, NT_TD, &b));
        return b;
}

/* A bundle of a CA the server does not know. */
static WardenBundle *foreign_bundle(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL;
        WardenBundle *b = NULL;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(warden_ca_create_self_signed(key, NT_TD, 3600, 0, &ca));
        assert_ok(warden_bundle_new(NT_TD, &b));
        assert_ok(warden_bundle_add_x509_authority(b, ca));
        return b;
}

/* A free TCP port on loopback that nothing listens on. */
static int unused_port(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof(a);

        assert_true(fd >= 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        return ntohs(a.sin_port);
}

/* With a server (x509pop: with its site CA), or with a port nothing listens on. */
static void fx_init(LinkFx *fx, bool server, bool x509pop) {
        *fx = (LinkFx){};
        fx->data_dir = test_tmpdir();
        if (!server) {
                fx->node.port = unused_port();
                return;
        }
        node_fx_init(&fx->node, x509pop);
        fx->bootstrap = bundle_from_pem(fx->node.dir, fx->node.roots_pem);
}

static void fx_start(LinkFx *fx, const NodeAttestParams *attest, unsigned backoff_min_ms) {
        _cleanup_free_ char *target = NULL;
        LinkConfig cfg = {
                .trust_domain = NT_TD,
                .data_dir = fx->data_dir,
                .attest = *attest,
                .bootstrap = fx->bootstrap,
                .bootstrap_source = "-trustBundle roots.pem",
                .backoff_min_ms = backoff_min_ms,
                .backoff_max_ms = backoff_min_ms * 4,
        };

        cfg.attest.trust_domain = NT_TD;
        assert_true(asprintf(&target, "127.0.0.1:%d", fx->node.port) > 0);
        assert_ok(server_creds_new(target, NT_TD, &fx->creds));
        assert_ok(link_new(&cfg, NULL, fx->creds, on_event, fx, &fx->link));
        assert_ok(link_start(fx->link));
}

/* Stops the link, which must not take long, and must not post anything more. */
static void fx_stop(LinkFx *fx) {
        uint64_t t0 = now_ms();

        link_stop(fx->link);
        if (now_ms() - t0 > STOP_MS)
                fail_msg("link_stop() took %llu ms", (unsigned long long) (now_ms() - t0));
        expect_no_event(fx);
}

static void fx_done(LinkFx *fx) {
        fx->link = link_free(fx->link);
        fx->creds = server_creds_free(fx->creds);
        for (size_t i = 0; i < fx->n_events; i++)
                free(fx->events[i].message);
        warden_bundle_unref(fx->bootstrap);
        if (fx->node.s)
                node_fx_done(&fx->node);
        test_rmdir_free(fx->data_dir);
        *fx = (LinkFx){};
}

static void add_entry(LinkFx *fx, const char *spiffe_id, const char *parent_id) {
        _cleanup_(entry_freep) Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_ok(selector_set_add(&e->selectors, "unix", "uid:1000"));
        assert_ok(ds_create_entries(fx->node.s->ds, &e, 1, NULL));
        server_entries_changed(fx->node.s);
}

/* Message order on a stream: a snapshot always, a delta only right after the message
 * it is based on; a gap (or a delta first) is refused. */
static void test_sync_order(void **state) {
        Warden__Node__V1__SyncResponse m = WARDEN__NODE__V1__SYNC_RESPONSE__INIT;
        LinkSyncCursor c = {};

        (void) state;
        m.sequence = 5;
        assert_false(link_sync_take(&c, &m)); /* a delta before any snapshot */
        m.full_snapshot = true;
        assert_true(link_sync_take(&c, &m));
        m.full_snapshot = false;
        m.base_sequence = 5, m.sequence = 9;
        assert_true(link_sync_take(&c, &m));
        m.base_sequence = 9, m.sequence = 9; /* a part of the same change */
        assert_true(link_sync_take(&c, &m));
        m.base_sequence = 10, m.sequence = 12; /* 9 -> 10 missing */
        assert_false(link_sync_take(&c, &m));
        assert_int_equal(c.applied, 9);
        m.full_snapshot = true; /* the fresh snapshot after the reopen */
        assert_true(link_sync_take(&c, &m));
        assert_int_equal(c.applied, 12);
}

/* Attestation, then a Sync message per change, the identity saved; a stop while the
 * thread waits on the stream. */
static void test_attest_and_sync(void **state) {
        _cleanup_(node_identity_freep) NodeIdentity *saved = NULL;
        const char *reason = NULL;
        const Seen *s;
        LinkFx fx;

        fx_init(&fx, true, false);
        assert_ok(ds_create_join_token(fx.node.s->ds, TOKEN, time(NULL) + 600, NULL));
        add_entry(&fx, "spiffe://" NT_TD "/w1", JOIN_ID);
        fx_start(&fx, &(NodeAttestParams){.join_token = TOKEN}, 100);

        s = expect_event(&fx, LINK_EVENT_ATTESTED);
        assert_string_equal(s->message, JOIN_ID);
        expect_event(&fx, LINK_EVENT_CONNECTED);
        s = expect_event(&fx, LINK_EVENT_SYNC);
        assert_int_equal(s->n_entries, 1);
        assert_true(s->has_bundle);
        add_entry(&fx, "spiffe://" NT_TD "/w2", JOIN_ID);
        s = expect_event(&fx, LINK_EVENT_SYNC);
        assert_int_equal(s->n_entries, 1); /* a delta: just the new entry */
        assert_false(s->has_bundle);       /* unchanged: not sent again */

        assert_ok(node_identity_load(fx.data_dir, NT_TD, NULL, &saved, &reason));
        assert_string_equal(saved->spiffe_id, JOIN_ID);
        assert_non_null(saved->bundle);
        fx_stop(&fx);
        fx_done(&fx);
}

/* The server restarts: the stream ends, the link reconnects with the node SVID it has
 * (no new attestation) and the server sends the whole state again. */
static void test_reconnect_after_restart(void **state) {
        const Seen *s;
        LinkFx fx;

        fx_init(&fx, true, false);
        assert_ok(ds_create_join_token(fx.node.s->ds, TOKEN, time(NULL) + 600, NULL));
        add_entry(&fx, "spiffe://" NT_TD "/w1", JOIN_ID);
        fx_start(&fx, &(NodeAttestParams){.join_token = TOKEN}, 100);
        expect_event(&fx, LINK_EVENT_ATTESTED);
        expect_event(&fx, LINK_EVENT_CONNECTED);
        expect_event(&fx, LINK_EVENT_SYNC);

        node_fx_restart(&fx.node);
        s = expect_event(&fx, LINK_EVENT_DISCONNECTED);
        assert_true(s->error < 0);
        assert_non_null(s->message);
        /* Attempts while the server was away fail the same way. */
        skip_events(&fx, LINK_EVENT_DISCONNECTED);
        expect_event(&fx, LINK_EVENT_CONNECTED);
        s = expect_event(&fx, LINK_EVENT_SYNC);
        assert_int_equal(s->n_entries, 1);
        fx_stop(&fx);
        fx_done(&fx);
}

/* An evicted agent's stream ends PERMISSION_DENIED; with x509pop configured the link
 * attests again (the same agent ID: it names the certificate) and streams on. */
static void test_evicted_attests_again(void **state) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = sk_X509_new_null();
        _cleanup_free_ char *cert = NULL, *key = NULL, *id = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *leaf_key = NULL;
        X509 *leaf = NULL;
        const Seen *s;
        LinkFx fx;

        fx_init(&fx, true, true);
        node_fx_site_leaf(&fx.node, "node-1.site.example", &leaf, &leaf_key);
        assert_true(sk_X509_push(chain, leaf) > 0);
        assert_true(asprintf(&cert, "%s/node.pem", fx.node.dir) > 0);
        assert_true(asprintf(&key, "%s/node.key", fx.node.dir) > 0);
        assert_ok(warden_x509_write_pem_file(cert, chain, 0600));
        assert_ok(warden_key_write_file(key, leaf_key));
        fx_start(&fx, &(NodeAttestParams){.x509pop_cert = cert, .x509pop_key = key}, 100);

        s = expect_event(&fx, LINK_EVENT_ATTESTED);
        assert_true(strneq(s->message, X509POP_ID_PREFIX, strlen(X509POP_ID_PREFIX)));
        id = strdup(s->message);
        expect_event(&fx, LINK_EVENT_CONNECTED);
        s = expect_event(&fx, LINK_EVENT_SYNC);
        assert_int_equal(s->n_entries, 0);

        assert_ok(ds_delete_agent(fx.node.s->ds, id));
        server_agent_changed(fx.node.s, id);
        s = expect_event(&fx, LINK_EVENT_DISCONNECTED);
        assert_int_equal(s->error, -EPERM);
        assert_true(strneq(s->message, "PERMISSION_DENIED", strlen("PERMISSION_DENIED")));
        s = expect_event(&fx, LINK_EVENT_ATTESTED);
        assert_string_equal(s->message, id);
        expect_event(&fx, LINK_EVENT_CONNECTED);
        expect_event(&fx, LINK_EVENT_SYNC);
        fx_stop(&fx);
        fx_done(&fx);
}

/* No server: every attempt fails and the thread waits out a long back-off, which
 * link_stop() cuts short. */
static void test_stop_in_backoff(void **state) {
        const Seen *s;
        LinkFx fx;

        fx_init(&fx, false, false);
        fx.bootstrap = foreign_bundle();
        fx_start(&fx, &(NodeAttestParams){.join_token = TOKEN}, 60000);
        s = expect_event(&fx, LINK_EVENT_DISCONNECTED);
        assert_true(s->error < 0);
        assert_non_null(s->message);
        fx_stop(&fx);
        fx_done(&fx);
}

/* What the link gives up on: FATAL, and the thread ends by itself. */
static void test_fatal(void **state) {
        const Seen *s;
        LinkFx fx;

        /* Nothing to attest with. */
        fx_init(&fx, false, false);
        fx.bootstrap = foreign_bundle();
        fx_start(&fx, &(NodeAttestParams){}, 100);
        s = expect_event(&fx, LINK_EVENT_FATAL);
        assert_int_equal(s->error, -ENOKEY);
        assert_string_equal(s->message, "no node SVID in the data directory and no join token "
                                        "or x509pop configured");
        fx_stop(&fx);
        fx_done(&fx);

        /* A join token the server does not know: refused, with its reason. */
        fx_init(&fx, true, false);
        fx_start(&fx, &(NodeAttestParams){.join_token = "unknown"}, 100);
        s = expect_event(&fx, LINK_EVENT_FATAL);
        assert_int_equal(s->error, -EPERM);
        assert_non_null(s->message);
        fx_stop(&fx);
        fx_done(&fx);

        /* A -trustBundle the server's certificate does not verify against, on first
         * contact: retrying would not help. */
        fx_init(&fx, true, false);
        warden_bundle_unref(fx.bootstrap);
        fx.bootstrap = foreign_bundle();
        assert_ok(ds_create_join_token(fx.node.s->ds, TOKEN, time(NULL) + 600, NULL));
        fx_start(&fx, &(NodeAttestParams){.join_token = TOKEN}, 100);
        s = expect_event(&fx, LINK_EVENT_FATAL);
        assert_int_equal(s->error, -EKEYREJECTED);
        assert_non_null(strstr(s->message, "-trustBundle roots.pem"));
        fx_stop(&fx);
        fx_done(&fx);
}

/* 1 s doubling to 30 s, +-20 %. */
static void test_backoff(void **state) {
        assert_int_equal(link_backoff_ms(0, 1000, 30000, 0.5), 1000);
        assert_int_equal(link_backoff_ms(0, 1000, 30000, 0.0), 800);
        assert_int_equal(link_backoff_ms(0, 1000, 30000, 1.0), 1200);
        assert_int_equal(link_backoff_ms(3, 1000, 30000, 0.5), 8000);
        assert_int_equal(link_backoff_ms(5, 1000, 30000, 0.5), 30000);
        assert_int_equal(link_backoff_ms(60, 1000, 30000, 1.0), 36000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sync_order),
                cmocka_unit_test(test_attest_and_sync),
                cmocka_unit_test(test_reconnect_after_restart),
                cmocka_unit_test(test_evicted_attests_again),
                cmocka_unit_test(test_stop_in_backoff),
                cmocka_unit_test(test_fatal),
                cmocka_unit_test(test_backoff),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
