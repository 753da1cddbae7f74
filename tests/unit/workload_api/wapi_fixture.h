/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A WorkloadApiSource for tests, the interop test server and the benchmark: a test CA
 * and JWT key made at run time, snapshots of real X509-SVIDs signed by that CA for
 * the entries the test describes, and a fetch_jwt_svid that mints real JWT-SVIDs
 * with the test key (optionally cached per (SPIFFE ID, audiences), optionally
 * answering from another thread, optionally failing). */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <warden/bundle.h>

#include "workload_api.h"

#define FX_TD "example.org"
#define FX_FED_TD "federated.test"   /* a federated trust domain in every snapshot */
#define FX_OTHER_TD "unrelated.test" /* another one no entry federates with */
#define FX_KID "fixture-jwt-key"
#define FX_FED_KID "federated-jwt-key"
#define FX_MAX_SELECTORS 4
#define FX_MAX_THREADS 4096

typedef struct FxEntry {
        const char *entry_id;
        const char *spiffe_id;
        const char *hint;                        /* NULL: none */
        const char *selectors[FX_MAX_SELECTORS]; /* NULL-terminated */
        const char *federates_with;              /* NULL or one bare trust domain */
        bool pending;                            /* no SVID signed yet */
        int64_t created_at;
} FxEntry;

/* How fetch_jwt_svid answers. */
typedef struct FxJwtMode {
        bool async;        /* call done from a new thread ... */
        unsigned delay_ms; /* ... after this long */
        int fail;          /* < 0: fail every fetch with this */
        int fail_now;      /* < 0: return this from fetch_jwt_svid itself */
} FxJwtMode;

typedef struct Fixture {
        EVP_PKEY *ca_key, *jwt_key, *fed_ca_key, *fed_jwt_key, *other_ca_key;
        X509 *ca, *fed_ca, *other_ca;
        char *extra_kid; /* an extra JWT key in our bundle, see fx_add_jwt_key */
        EVP_PKEY *extra_key;

        const FxEntry *entries; /* of the last fx_publish() (borrowed) */
        size_t n_entries;

        pthread_mutex_t lock;
        AgentSnapshot *current; /* under lock */
        uint64_t version;

        /* fetch_jwt_svid behaviour */
        bool jwt_cache;              /* reuse a token per (SPIFFE ID, audiences); set before use */
        FxJwtMode jwt;               /* under lock: fx_set_jwt_mode() */
        unsigned n_fetches, n_mints; /* under lock: fx_n_fetches() */
        uid_t last_uid;              /* the caller's uid of the last fetch (under lock) */
        char **cache_keys, **cache_tokens;
        size_t n_cache;
        pthread_t threads[FX_MAX_THREADS];
        size_t n_threads;

        WorkloadApiSource source;
} Fixture;

/* Makes the keys and CAs (no snapshot yet: source.snapshot returns NULL). */
int fx_new(Fixture **ret);
/* Joins async JWT threads and frees everything. */
Fixture *fx_free(Fixture *f);

/* Sets how fetch_jwt_svid answers from now on. The Workload API calls it from its own
 * threads: a test changes it only through here. */
void fx_set_jwt_mode(Fixture *f, FxJwtMode mode);
/* fetch_jwt_svid calls so far. */
unsigned fx_n_fetches(Fixture *f);

/* Builds and publishes a snapshot holding these entries, each signed SVID fresh
 * (a new key and serial every time); version increases. The federated bundles of
 * FX_FED_TD and FX_OTHER_TD are always present. */
int fx_publish(Fixture *f, const FxEntry *entries, size_t n);
/* Republishes the current entries with a new JWT key added to our bundle. */
int fx_add_jwt_key(Fixture *f);
/* Publishes nothing new but drops the current snapshot (source returns NULL). */
void fx_clear(Fixture *f);

/* Mints a JWT-SVID with our key (fed = false) or the federated trust domain's key. */
int fx_mint(Fixture *f,
            bool fed,
            const char *spiffe_id,
            const char *audience,
            int64_t ttl,
            int64_t now,
            char **ret);

/* A fixed set of entries used by the test server and the bench:
 *   uid 0      -> spiffe://example.org/workload/root (hint "root", federates with
 *                 federated.test)
 *   uid 65534  -> spiffe://example.org/workload/nobody
 *   uid 4242   -> spiffe://example.org/workload/pending (never signed) */
extern const FxEntry fx_default_entries[];
extern const size_t fx_n_default_entries;
