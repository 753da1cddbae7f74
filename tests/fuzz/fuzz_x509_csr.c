/* SPDX-License-Identifier: Apache-2.0 */
/* CSRs from agents (AttestAgent, RenewAgent, BatchNewX509SVID) and from the CLI
 * (MintX509SVID): what the server runs on the bytes before it signs. node_csr_public_key()
 * (server/node_api.c: warden_csr_parse_public_key(), which parses EC CSRs without
 * OpenSSL's decoder and leaves the rest to warden_csr_parse()), then the signing
 * of warden_svid_sign() with a CA made at start, as ca_sign_x509_svid() does.
 * Invariants: the node API and the plain parser agree; a refusal has a reason and one
 * of the documented errors; an accepted key round-trips through SubjectPublicKeyInfo
 * DER, can always be signed, and the SVID verifies against the CA with the ID asked for
 * and exactly the CSR's key. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <warden/x509.h>

#include "fixture_ca.h"
#include "node_api_internal.h"
#include "ossl_cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed times keep runs reproducible. */
#define FUZZ_ID "spiffe://example.org/fuzz/workload"

static void check_public_der(EVP_PKEY *pub) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *back = NULL;
        uint8_t *der = NULL;
        size_t len = 0;

        if (warden_key_public_der(pub, &der, &len) < 0 || len == 0)
                abort();
        if (warden_key_public_from_der(der, len, &back) < 0 || !warden_key_public_equal(pub, back))
                abort();
        free(der);
}

/* What the server does with the key: sign an SVID for it (ca_sign_x509_svid()). */
static void check_sign(EVP_PKEY *pub) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = sk_X509_new_null();
        _cleanup_(X509_freep) X509 *leaf = NULL;
        const FuzzCa *ca = fuzz_ca();
        const char *dns[] = {"workload.example.org"};
        const char *reason = NULL;
        char *id = NULL;
        WardenSvidParams p = {
                .ca_cert = ca->cert,
                .ca_key = ca->key,
                .public_key = pub,
                .spiffe_id = FUZZ_ID,
                .dns_names = dns,
                .n_dns_names = 1,
                .ttl_seconds = 3600,
                .now = FUZZ_NOW,
        };

        if (!roots || X509_up_ref(ca->cert) != 1)
                abort();
        if (sk_X509_push(roots, ca->cert) <= 0)
                abort();
        if (warden_svid_sign(&p, &leaf) < 0)
                abort();
        if (!warden_key_public_equal(X509_get0_pubkey(leaf), pub))
                abort();
        if (warden_svid_verify(leaf, NULL, roots, FUZZ_NOW, &id, &reason) < 0)
                abort();
        if (strcmp(id, FUZZ_ID) != 0)
                abort();
        free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *node_pub = NULL;
        ProtobufCBinaryData csr = {.len = size, .data = (uint8_t *) data};
        const char *reason = NULL, *message = NULL;
        int r, rn;

        if (size > 2 * WARDEN_CSR_MAX_BYTES)
                return 0;
        rn = node_csr_public_key(&csr, &node_pub, &message);
        if (size == 0) {
                if (rn != -EINVAL || !message)
                        abort();
                return 0;
        }
        r = warden_csr_parse(data, size, &req, &reason);
        if ((r >= 0) != (rn >= 0))
                abort();
        if (r < 0) {
                if (!reason || (r != -EMSGSIZE && r != -EBADMSG && r != -EKEYREJECTED))
                        abort();
                if ((size > WARDEN_CSR_MAX_BYTES) != (r == -EMSGSIZE))
                        abort();
                if (rn != -EINVAL || !message)
                        abort();
                return 0;
        }
        if (warden_csr_public_key(req, &pub) < 0 || !warden_key_public_equal(pub, node_pub))
                abort();
        check_public_der(pub);
        check_sign(pub);
        return 0;
}
