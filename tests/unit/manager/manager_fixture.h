/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A Manager driven in-process: a test CA signs CSRs and a test key mints JWT-SVIDs
 * (a real signing backend on the manager's worker thread), the clock is injected, and
 * Sync messages are built here as protobuf structs. */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include <warden/bundle.h>

#include "manager_internal.h"
#include "metrics.h"
#include "metrics_names.h"

#define FX_TD "example.org"
#define FX_SVID_TTL 100
#define FX_JWT_TTL 60

typedef struct Fixture {
        sd_event *event;
        Manager *m;
        EVP_PKEY *ca_key;
        X509 *ca;
        EVP_PKEY *jwt_key;
        WardenBundle *bundle;
        int64_t clock;       /* atomic */
        unsigned sign_calls; /* atomic: batch_sign invocations */
        unsigned signed_n;   /* atomic: CSRs signed */
        unsigned mint_calls; /* atomic */
        int fail;            /* atomic: backend answers -EAGAIN when set */
        unsigned mint_delay_ms;
        unsigned snapshots; /* snapshot callbacks */
        uint64_t last_version;
        MetricsRegistry *registry; /* the manager's metrics */
        AgentMetrics metrics;
} Fixture;

/* Sets up CA, JWT key, bundle, event loop and a started manager (jwt_cache_max 0 =
 * default). */
void fx_init(Fixture *fx, size_t jwt_cache_max);
/* fx_init() with ManagerConfig.max_entries (0 = default). */
void fx_init_max(Fixture *fx, size_t jwt_cache_max, size_t max_entries);
void fx_done(Fixture *fx);

int64_t fx_now(Fixture *fx);
void fx_advance(Fixture *fx, int64_t seconds);

/* Runs the loop until cond(fx, arg) or ~10 s (then fails the test). */
void fx_run_until(Fixture *fx, bool (*cond)(Fixture *fx, const void *arg), const void *arg);

/* A Sync message: entries given as "id spiffe_path selector[,selector...] [revision]"
 * strings ("-" for no selector), with our bundle. pb_free() it. */
Warden__Node__V1__SyncResponse *fx_sync(Fixture *fx,
                                        bool full,
                                        const char *const *entries,
                                        size_t n);

/* fx_sync() applied to the manager (must succeed), then freed. */
void fx_apply(Fixture *fx, bool full, const char *const *entries, size_t n);

/* The snapshot's SVID for entry_id (borrowed from s), or NULL. */
const CachedSvid *fx_find(const AgentSnapshot *s, const char *entry_id);
/* Number of signed SVIDs in the current snapshot. */
size_t fx_signed(Fixture *fx);
/* Checks that c holds a chain whose leaf carries spiffe_id and matches the key, and
 * chains to the test CA. Returns the leaf serial (malloc'd). */
char *fx_check_svid(Fixture *fx, const CachedSvid *c, const char *spiffe_id);
