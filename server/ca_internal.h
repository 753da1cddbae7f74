/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals shared by ca.c (API, bundle, signing, server TLS), ca_rotate.c (slots and
 * rotation) and ca_store.c (files under <data_dir>/ca/). */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "ca.h"

/* Most slots (current + next + retired) kept per authority kind. Normal operation
 * needs three at most; the rest is headroom for TTL changes across restarts. */
#define CA_SLOTS_MAX 8
#define CA_DIR_NAME "ca"
#define CA_STATE_FILE "state.json"
#define CA_STATE_VERSION 1
#define CA_STATE_MAX_BYTES (64 * 1024)
/* SPIRE-like thresholds: prepare when this much of the lifetime is left (capped), and
 * activate when this much is left (capped). */
#define CA_PREPARE_CAP ((int64_t) 30 * 24 * 3600)
#define CA_ACTIVATE_CAP ((int64_t) 7 * 24 * 3600)
/* The server's own TLS certificate lives at most this long (and at most ca_ttl/2). */
#define CA_SERVER_TLS_TTL_MAX 3600
#define CA_SERVER_PATH "/warden/server"

typedef enum CaKind {
        CA_KIND_X509,
        CA_KIND_JWT,
        _CA_KIND_MAX,
} CaKind;

typedef enum CaRole {
        CA_ROLE_CURRENT,
        CA_ROLE_NEXT,
        CA_ROLE_RETIRED,
        _CA_ROLE_MAX,
} CaRole;

typedef struct CaSlot {
        CaRole role;
        uint32_t id;       /* names the files: x509-<id>.key + x509-<id>.pem, jwt-<id>.key */
        EVP_PKEY *key;     /* private key */
        X509 *cert;        /* X.509 slots: the CA certificate */
        char *kid;         /* JWT slots: the key ID */
        int64_t issued_at; /* our `now` when the slot was created */
        int64_t not_after; /* nothing signed with this slot outlives it */
} CaSlot;

typedef struct CaSlots {
        CaSlot slot[CA_SLOTS_MAX];
        size_t n;
} CaSlots;

typedef struct CaTls {
        char *chain_pem;  /* leaf (+ intermediates) */
        char *key_pem;    /* wiped on free */
        uint32_t ca_id;   /* X.509 slot that signed it */
        int64_t renew_at; /* half of its lifetime */
} CaTls;

struct Ca {
        char *trust_domain;
        char *data_dir;
        char *dir; /* <data_dir>/ca, or the temp dir while the first start builds it */
        WardenKeyType key_type;
        int64_t ttl;

        /* Upstream mode (all NULL when self-signed). */
        X509 *upstream_cert;             /* signs our intermediates */
        EVP_PKEY *upstream_key;          /* its private key */
        STACK_OF(X509) * upstream_chain; /* file certs before the root: go into SVID chains */
        X509 *upstream_root;             /* last cert of the file: the bundle's root */
        int64_t upstream_not_after;

        CaSlots slots[_CA_KIND_MAX];
        uint32_t next_id;
        uint64_t sequence;
        bool dirty;           /* slots or sequence changed since the state file was written */
        bool changed_pending; /* a change that a failed ca_tick() could not report yet */
        int64_t retry_at;     /* after a failed ca_tick(): when to try again; else 0 */

        WardenBundle *bundle; /* published: what ca_bundle() returns */
        WardenBundle *staged; /* newer, waiting for the state file to be written */
        char *roots_pem;      /* PEM of bundle's X.509 roots */
        CaTls tls;
        CaSigner *signer; /* snapshot of the current slots (ca_signer.c), or NULL */
};

const char *ca_kind_to_string(CaKind kind);
const char *ca_role_to_string(CaRole role);
int ca_role_from_string(const char *s);

/* ---- ca_signer.c ---- */

/* ca_signer_sign_x509_svid(), giving a leaf for encoding only (warden_svid_sign_for_der())
 * when for_der, else a complete one (warden_svid_sign()). */
int ca_signer_sign(const CaSigner *s,
                   EVP_PKEY *public_key,
                   const char *spiffe_id,
                   const char *const *dns_names,
                   size_t n_dns_names,
                   int64_t ttl,
                   time_t now,
                   bool for_der,
                   X509 **ret_leaf);

/* ---- ca_rotate.c ---- */

void ca_slot_done(CaSlot *s);
/* The slot with this role (the first one for RETIRED), or NULL. */
CaSlot *ca_slot_find(Ca *ca, CaKind kind, CaRole role);
const CaSlot *ca_slot_find_const(const Ca *ca, CaKind kind, CaRole role);
/* The JWT key ID of a key: base64url(SHA-256(SubjectPublicKeyInfo DER)), 43 chars. */
int ca_jwt_kid(const EVP_PKEY *key, char **ret);
/* Creates a slot with a new key (+ CA cert or kid), writes its files into ca->dir and
 * appends it with the given role. */
int ca_slot_create(Ca *ca, CaKind kind, CaRole role, time_t now);
/* Drops expired slots, prepares, activates. Sets *changed_active to true when a
 * current slot changed (also on failure, for the steps done before it). Marks
 * ca->dirty on any change. */
int ca_rotate(Ca *ca, time_t now, bool *changed_active);
/* Earliest time at which ca_rotate() has something to do (INT64_MAX for never). */
int64_t ca_rotate_next_time(const Ca *ca);

/* ---- ca_store.c ---- */

/* "<dir>/x509-<id>.key" etc.; kind X509 has a cert file, JWT has none. */
int ca_store_slot_key_name(CaKind kind, uint32_t id, char **ret);
int ca_store_slot_cert_name(CaKind kind, uint32_t id, char **ret);
/* Writes a slot's key (0600, atomic) and certificate (0644, atomic) into ca->dir. */
int ca_store_write_slot(const Ca *ca, CaKind kind, const CaSlot *s);
/* Reads <ca->dir>/state.json and every file it names into ca->slots/sequence/next_id.
 * Missing or corrupt files give -EBADMSG (the file is named in an error log). */
int ca_store_load(Ca *ca);
/* Writes the state file atomically (temp + fsync + rename + fsync of the directory). */
int ca_store_save(const Ca *ca);
/* Removes slot files not named by any slot, and temp files of interrupted writes. */
void ca_store_gc(const Ca *ca);
/* Opens <data_dir>/ca (creating data_dir 0700 if needed) and loads it. When it does
 * not exist (first start), builds it in a temp dir (0700) with build(), which creates
 * the first slots, writes the state file there and renames the dir into place, so a
 * half-built directory is never taken for a real one. Sets ca->dir. */
int ca_store_open(Ca *ca, int (*build)(Ca *ca, time_t now), time_t now);
