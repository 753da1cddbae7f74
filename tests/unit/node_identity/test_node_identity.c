/* SPDX-License-Identifier: Apache-2.0 */
/* The node identity files (agent/node_identity.c): save/load, modes, tampering, a save
 * stopped at every step. */
#define _GNU_SOURCE

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <warden/x509.h>

#include "file.h"
#include "node_identity.h"
#include "ossl_cleanup.h"
#include "testlib.h"

#define AGENT_ID "spiffe://example.org/warden/agent/join_token/abc"

typedef struct Pki {
        EVP_PKEY *ca_key, *node_key;
        X509 *ca;
        WardenBundle *bundle;
} Pki;

static NodeIdentity *make_identity(Pki *pki, const char *id, int64_t ttl) {
        NodeIdentity *n = calloc(1, sizeof(*n));
        X509 *leaf = NULL;

        assert_non_null(n);
        if (!pki->ca) {
                assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &pki->ca_key));
                assert_ok(warden_ca_create_self_signed(pki->ca_key, "example.org", 3600, 0,
                                                       &pki->ca));
                assert_ok(warden_bundle_new("example.org", &pki->bundle));
                assert_ok(warden_bundle_add_x509_authority(pki->bundle, pki->ca));
                warden_bundle_set_sequence(pki->bundle, 3);
        }
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &n->key));
        WardenSvidParams p = {
                .ca_cert = pki->ca,
                .ca_key = pki->ca_key,
                .public_key = n->key,
                .spiffe_id = id,
                .ttl_seconds = ttl,
        };
        assert_ok(warden_svid_sign(&p, &leaf));
        n->chain = sk_X509_new_null();
        assert_true(sk_X509_push(n->chain, leaf) > 0);
        n->spiffe_id = strdup(id);
        n->bundle = warden_bundle_ref(pki->bundle);
        n->not_before = (int64_t) warden_x509_not_before(leaf);
        n->not_after = (int64_t) warden_x509_not_after(leaf);
        return n;
}

static void pki_done(Pki *pki) {
        EVP_PKEY_free(pki->ca_key);
        X509_free(pki->ca);
        warden_bundle_unref(pki->bundle);
}

static mode_t file_mode(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        assert_int_equal(stat(p, &st), 0);
        return st.st_mode & 07777;
}

static void test_identity_files(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *bundle_path = NULL, *key_path = NULL;
        _cleanup_(node_identity_freep) NodeIdentity *id = NULL, *loaded = NULL, *other = NULL;
        const char *reason = NULL;
        Pki pki = {};

        assert_errno(node_identity_load(dir, "example.org", NULL, &loaded, &reason), ENOENT);
        id = make_identity(&pki, AGENT_ID, 600);
        assert_ok(node_identity_save(id, dir));
        assert_int_equal(file_mode(dir, NODE_IDENTITY_SVID_FILE), 0600);
        assert_int_equal(file_mode(dir, NODE_IDENTITY_KEY_FILE), 0600);
        assert_int_equal(file_mode(dir, NODE_IDENTITY_BUNDLE_FILE), 0600);
        assert_ok(node_identity_load(dir, "example.org", NULL, &loaded, &reason));
        assert_string_equal(loaded->spiffe_id, AGENT_ID);
        assert_int_equal(loaded->not_after, id->not_after);
        assert_true(warden_key_public_equal(loaded->key, id->key));
        assert_true(warden_bundle_equal(loaded->bundle, pki.bundle)); /* incl. sequence */
        assert_false(node_identity_expired(loaded, time(NULL)));
        assert_true(node_identity_expired(loaded, loaded->not_after));
        assert_int_equal(node_identity_renew_at(loaded),
                         loaded->not_before + (loaded->not_after - loaded->not_before) / 2);
        loaded = node_identity_free(loaded);

        /* another trust domain refuses the files */
        assert_errno(node_identity_load(dir, "other.org", NULL, &loaded, &reason), EBADMSG);

        /* no bundle.json: the bootstrap bundle, or -ENOKEY without one */
        assert_true(asprintf(&bundle_path, "%s/%s", dir, NODE_IDENTITY_BUNDLE_FILE) > 0);
        assert_int_equal(unlink(bundle_path), 0);
        assert_errno(node_identity_load(dir, "example.org", NULL, &loaded, &reason), ENOKEY);
        assert_ok(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason));
        loaded = node_identity_free(loaded);

        /* a key that does not match the SVID */
        other = make_identity(&pki, AGENT_ID, 600);
        assert_true(asprintf(&key_path, "%s/%s", dir, NODE_IDENTITY_KEY_FILE) > 0);
        assert_ok(warden_key_write_file(key_path, other->key));
        assert_errno(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason), EBADMSG);
        assert_string_equal(reason, "node SVID does not match its key");

        /* a key readable by others is refused */
        assert_ok(warden_key_write_file(key_path, id->key));
        assert_int_equal(chmod(key_path, 0644), 0);
        assert_true(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason) < 0);
        assert_int_equal(chmod(key_path, 0600), 0);
        assert_ok(node_identity_load(dir, "example.org", pki.bundle, &loaded, &reason));

        /* a corrupt bundle.json */
        assert_ok(file_write_atomic(bundle_path, "{\"keys\":", 8, 0600));
        loaded = node_identity_free(loaded);
        assert_errno(node_identity_load(dir, "example.org", NULL, &loaded, &reason), EBADMSG);
        pki_done(&pki);
        test_rmdir_free(TAKE_PTR(dir));
}

/* chattr +i / -i on a directory; false where the file system or our capabilities do not
 * allow it. */
static bool set_immutable(const char *path, bool on) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0;
        bool ok;

        assert_true(fd >= 0);
        ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
        close(fd);
        return ok;
}

/* The node SVID of dir is the one of `want` (same key). */
static void assert_loads(const char *dir, const Pki *pki, const NodeIdentity *want) {
        _cleanup_(node_identity_freep) NodeIdentity *loaded = NULL;
        const char *reason = NULL;

        assert_ok(node_identity_load(dir, "example.org", pki->bundle, &loaded, &reason));
        assert_true(warden_key_public_equal(loaded->key, want->key));
        assert_int_equal(X509_cmp(sk_X509_value(loaded->chain, 0), sk_X509_value(want->chain, 0)),
                         0);
}

/* Saving a renewed node SVID: whatever point a save stops at, the files load as the old
 * pair or as the new one, never as a chain with the wrong key. */
static void test_identity_save_steps(void **state) {
        _cleanup_free_ char *dir = test_tmpdir(), *svid = NULL, *key = NULL, *next_key = NULL;
        _cleanup_(node_identity_freep) NodeIdentity *s1 = NULL, *s2 = NULL, *s3 = NULL;
        Pki pki = {};

        s1 = make_identity(&pki, AGENT_ID, 600);
        s2 = make_identity(&pki, AGENT_ID, 600);
        s3 = make_identity(&pki, AGENT_ID, 600);
        assert_true(asprintf(&svid, "%s/%s", dir, NODE_IDENTITY_SVID_FILE) > 0);
        assert_true(asprintf(&key, "%s/%s", dir, NODE_IDENTITY_KEY_FILE) > 0);
        assert_true(asprintf(&next_key, "%s/%s", dir, NODE_IDENTITY_KEY_NEXT_FILE) > 0);
        assert_ok(node_identity_save(s1, dir));
        assert_int_equal(access(next_key, F_OK), -1);
        assert_loads(dir, &pki, s1);

        /* Stopped after the commit point (the chain is new, the key still old): the new
         * pair, and the load finishes the save. */
        assert_ok(warden_key_write_file(next_key, s2->key));
        assert_ok(warden_x509_write_pem_file(svid, s2->chain, 0600));
        assert_loads(dir, &pki, s2);
        assert_int_equal(access(next_key, F_OK), -1);
        assert_loads(dir, &pki, s2);

        /* Stopped before it (only the next key written): the old pair. */
        assert_ok(warden_key_write_file(next_key, s3->key));
        assert_loads(dir, &pki, s2);

        /* A data dir that refuses new files (read-only, full): the save fails, the old pair
         * stays. */
        if (set_immutable(dir, true)) {
                assert_true(node_identity_save_svid(s3, dir) < 0);
                assert_true(set_immutable(dir, false));
                assert_loads(dir, &pki, s2);
        } else
                print_message("chattr +i not possible here, read-only save case skipped\n");

        assert_ok(node_identity_save_svid(s3, dir));
        assert_int_equal(access(next_key, F_OK), -1);
        assert_loads(dir, &pki, s3);
        pki_done(&pki);
        test_rmdir_free(TAKE_PTR(dir));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identity_files),
                cmocka_unit_test(test_identity_save_steps),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
