/* SPDX-License-Identifier: Apache-2.0 */
/* CA and JWT key slots and their SPIRE-like rotation (prepare at half-life, activate
 * with 1/6 of the lifetime left, retire until notAfter). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <warden/x509.h>

#include "ca_internal.h"
#include "cleanup.h"
#include "jose_b64.h"
#include "log.h"
#include "ossl_cleanup.h"
#include "parse.h"

/* Rotation steps per kind and tick; a long downtime needs at most four (promote next,
 * prepare, activate, settle). */
#define ROTATE_ROUNDS_MAX 8

static const char *const kind_names[_CA_KIND_MAX] = {
        [CA_KIND_X509] = "X.509 CA",
        [CA_KIND_JWT] = "JWT key",
};

static const char *const role_names[_CA_ROLE_MAX] = {
        [CA_ROLE_CURRENT] = "current",
        [CA_ROLE_NEXT] = "next",
        [CA_ROLE_RETIRED] = "retired",
};

const char *ca_kind_to_string(CaKind kind) {
        return kind >= 0 && kind < _CA_KIND_MAX ? kind_names[kind] : NULL;
}

const char *ca_role_to_string(CaRole role) {
        return role >= 0 && role < _CA_ROLE_MAX ? role_names[role] : NULL;
}

int ca_role_from_string(const char *s) {
        for (int i = 0; s && i < _CA_ROLE_MAX; i++)
                if (streq(s, role_names[i]))
                        return i;
        return -EINVAL;
}

static int64_t min64(int64_t a, int64_t b) {
        return a < b ? a : b;
}

void ca_slot_done(CaSlot *s) {
        if (!s)
                return;
        EVP_PKEY_free(s->key);
        X509_free(s->cert);
        free(s->kid);
        *s = (CaSlot){};
}

CaSlot *ca_slot_find(Ca *ca, CaKind kind, CaRole role) {
        CaSlots *ss = &ca->slots[kind];

        for (size_t i = 0; i < ss->n; i++)
                if (ss->slot[i].role == role)
                        return &ss->slot[i];
        return NULL;
}

const CaSlot *ca_slot_find_const(const Ca *ca, CaKind kind, CaRole role) {
        return ca_slot_find((Ca *) ca, kind, role);
}

int ca_jwt_kid(const EVP_PKEY *key, char **ret) {
        _cleanup_free_ uint8_t *der = NULL;
        unsigned char md[SHA256_DIGEST_LENGTH];
        size_t len = 0;
        int r;

        if (!key || !ret)
                return -EINVAL;
        r = warden_key_public_der(key, &der, &len);
        if (r < 0)
                return r;
        if (EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL) != 1)
                return ossl_to_errno(-EIO);
        return jose_b64url_encode(md, sizeof(md), ret);
}

static int slot_make_cert(Ca *ca, CaSlot *s, time_t now) {
        time_t na;
        int r;

        if (ca->upstream_cert)
                r = warden_ca_create_intermediate(ca->upstream_cert, ca->upstream_key, s->key,
                                                  ca->trust_domain, ca->ttl, now, &s->cert);
        else
                r = warden_ca_create_self_signed(s->key, ca->trust_domain, ca->ttl, now, &s->cert);
        if (r < 0)
                return r;
        na = warden_x509_not_after(s->cert);
        if (na == (time_t) -1)
                return -EBADMSG;
        /* Upstream mode caps notAfter at the upstream's. */
        s->not_after = min64((int64_t) na, (int64_t) now + ca->ttl);
        return 0;
}

int ca_slot_create(Ca *ca, CaKind kind, CaRole role, time_t now) {
        _cleanup_(ca_slot_done) CaSlot s = {
                .role = role,
                .id = ca->next_id,
                .issued_at = now,
        };
        CaSlots *ss = &ca->slots[kind];
        char t[TIMESTAMP_STRING_MAX];
        int r;

        if (ss->n >= CA_SLOTS_MAX)
                return log_error_errno(-E2BIG, "Too many %s slots (%d), refusing to add one",
                                       kind_names[kind], CA_SLOTS_MAX);
        if (ca->next_id == 0 || ca->next_id == UINT32_MAX)
                return log_error_errno(-EOVERFLOW, "CA slot IDs exhausted");
        r = warden_key_generate(ca->key_type, &s.key);
        if (r < 0)
                return log_error_errno(r, "Failed to generate a %s key: %m", kind_names[kind]);
        if (kind == CA_KIND_X509)
                r = slot_make_cert(ca, &s, now);
        else {
                r = ca_jwt_kid(s.key, &s.kid);
                s.not_after = (int64_t) now + ca->ttl;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to create a %s: %m", kind_names[kind]);
        if (s.not_after <= (int64_t) now)
                return log_error_errno(-EKEYEXPIRED, "New %s would already be expired",
                                       kind_names[kind]);
        r = ca_store_write_slot(ca, kind, &s);
        if (r < 0)
                return log_error_errno(r, "Failed to store the new %s in %s: %m", kind_names[kind],
                                       ca->dir);

        log_info("Created %s %s (slot %u, expires at %s)", role_names[role], kind_names[kind], s.id,
                 format_timestamp(s.not_after, t, sizeof(t)));
        ca->next_id++;
        ss->slot[ss->n++] = s;
        s = (CaSlot){};
        ca->dirty = true;
        return 0;
}

static void slot_remove(CaSlots *ss, size_t i) {
        ca_slot_done(&ss->slot[i]);
        memmove(&ss->slot[i], &ss->slot[i + 1], (ss->n - i - 1) * sizeof(CaSlot));
        ss->n--;
        ss->slot[ss->n] = (CaSlot){};
}

/* Prepare the next slot with half the lifetime (at most 30 days) left. */
static int64_t prepare_at(const CaSlot *s) {
        return s->not_after - min64((s->not_after - s->issued_at) / 2, CA_PREPARE_CAP);
}

/* Activate it with a sixth of the lifetime (at most 7 days) left. */
static int64_t activate_at(const CaSlot *s) {
        return s->not_after - min64((s->not_after - s->issued_at) / 6, CA_ACTIVATE_CAP);
}

/* An intermediate capped at the upstream's notAfter would not outlive the current one:
 * preparing it would only churn slots. */
static bool can_prepare(const Ca *ca, CaKind kind, const CaSlot *cur) {
        return !(kind == CA_KIND_X509 && ca->upstream_cert &&
                 ca->upstream_not_after <= cur->not_after);
}

static void drop_expired(Ca *ca, CaKind kind, time_t now) {
        CaSlots *ss = &ca->slots[kind];

        for (size_t i = 0; i < ss->n;) {
                if (ss->slot[i].not_after > (int64_t) now) {
                        i++;
                        continue;
                }
                log_info("%s %s (slot %u) expired, removing it", role_names[ss->slot[i].role],
                         kind_names[kind], ss->slot[i].id);
                slot_remove(ss, i);
                ca->dirty = true;
        }
}

/* One step; 1 when something changed (call again), 0 when settled. */
static int rotate_step(Ca *ca, CaKind kind, time_t now, bool *changed_active) {
        CaSlot *cur = ca_slot_find(ca, kind, CA_ROLE_CURRENT);
        CaSlot *next = ca_slot_find(ca, kind, CA_ROLE_NEXT);
        char t[TIMESTAMP_STRING_MAX];
        int r;

        if (!cur && next) {
                log_warning("Current %s expired before rotation, activating the next one "
                            "(slot %u)",
                            kind_names[kind], next->id);
                next->role = CA_ROLE_CURRENT;
        } else if (!cur) {
                log_warning("No unexpired %s left, creating a new one; agents need the new "
                            "bundle",
                            kind_names[kind]);
                r = ca_slot_create(ca, kind, CA_ROLE_CURRENT, now);
                if (r < 0)
                        return r;
        } else if (next && (int64_t) now >= activate_at(cur)) {
                log_info("Activating next %s (slot %u), retiring slot %u until %s",
                         kind_names[kind], next->id, cur->id,
                         format_timestamp(cur->not_after, t, sizeof(t)));
                cur->role = CA_ROLE_RETIRED;
                next->role = CA_ROLE_CURRENT;
        } else if (!next && (int64_t) now >= prepare_at(cur) && can_prepare(ca, kind, cur)) {
                r = ca_slot_create(ca, kind, CA_ROLE_NEXT, now);
                if (r < 0)
                        return r;
                return 1; /* the current slot did not change */
        } else
                return 0;

        *changed_active = true;
        ca->dirty = true;
        return 1;
}

int ca_rotate(Ca *ca, time_t now, bool *changed_active) {
        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++) {
                drop_expired(ca, kind, now);
                for (int round = 0; round < ROTATE_ROUNDS_MAX; round++) {
                        int r = rotate_step(ca, kind, now, changed_active);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                }
        }
        return 0;
}

int64_t ca_rotate_next_time(const Ca *ca) {
        int64_t t = INT64_MAX;

        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++) {
                const CaSlots *ss = &ca->slots[kind];
                const CaSlot *cur = ca_slot_find_const(ca, kind, CA_ROLE_CURRENT);

                if (!cur)
                        return 0; /* needs a new current slot right away */
                for (size_t i = 0; i < ss->n; i++)
                        t = min64(t, ss->slot[i].not_after);
                if (ca_slot_find_const(ca, kind, CA_ROLE_NEXT))
                        t = min64(t, activate_at(cur));
                else if (can_prepare(ca, kind, cur))
                        t = min64(t, prepare_at(cur));
        }
        return t;
}
