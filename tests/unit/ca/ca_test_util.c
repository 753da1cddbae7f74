/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "ca_test_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <warden/jwtsvid.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"

void fx_init(CaFixture *f, int64_t ttl, WardenKeyType type) {
        *f = (CaFixture){};
        f->tmp = test_tmpdir();
        assert_non_null(f->tmp);
        f->data_dir = path_in(f->tmp, "data");
        f->ca_dir = path_in(f->data_dir, "ca");
        f->cfg = (CaConfig){
                .trust_domain = TD,
                .data_dir = f->data_dir,
                .key_type = type,
                .ca_ttl = ttl,
        };
        f->t0 = time(NULL);
}

void fx_done(CaFixture *f) {
        free(f->ca_dir);
        free(f->data_dir);
        test_rmdir_free(f->tmp);
        *f = (CaFixture){};
}

Ca *fx_new(CaFixture *f, time_t now) {
        Ca *ca = NULL;

        assert_ok(ca_new(&f->cfg, now, &ca));
        assert_non_null(ca);
        return ca;
}

char *path_in(const char *dir, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

mode_t file_mode(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                fail_msg("stat %s: %s", path, strerror(errno));
        return st.st_mode & 07777;
}

bool file_exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_in(dir, name);
        struct stat st;

        return stat(p, &st) == 0;
}

int count_entries(const char *dir, const char *needle) {
        struct dirent *de;
        DIR *d = opendir(dir);
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    (!needle || strstr(de->d_name, needle)))
                        n++;
        closedir(d);
        return n;
}

STACK_OF(X509) * bundle_roots(Ca *ca) {
        return (STACK_OF(X509) *) warden_bundle_x509_authorities(ca_bundle(ca));
}

bool bundle_has_root(Ca *ca, X509 *cert) {
        STACK_OF(X509) *roots = bundle_roots(ca);

        for (int i = 0; i < sk_X509_num(roots); i++)
                if (X509_cmp(sk_X509_value(roots, i), cert) == 0)
                        return true;
        return false;
}

X509 *bundle_root_ref(Ca *ca, int i) {
        X509 *x = sk_X509_value(bundle_roots(ca), i);

        assert_non_null(x);
        assert_int_equal(X509_up_ref(x), 1);
        return x;
}

STACK_OF(X509) * sign_svid(Ca *ca, int64_t ttl, time_t now) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        STACK_OF(X509) *chain = NULL;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(ca_sign_x509_svid(ca, key, WL_ID, NULL, 0, ttl, now, &chain));
        assert_non_null(chain);
        return chain;
}

int verify_chain(STACK_OF(X509) * chain, STACK_OF(X509) * roots, time_t now) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *inter = sk_X509_new_null();
        _cleanup_free_ char *id = NULL;
        const char *reason = NULL;
        int r;

        assert_non_null(inter);
        for (int i = 1; i < sk_X509_num(chain); i++) {
                X509 *c = sk_X509_value(chain, i);
                assert_int_equal(X509_up_ref(c), 1);
                assert_true(sk_X509_push(inter, c) > 0);
        }
        r = warden_svid_verify(sk_X509_value(chain, 0), inter, roots, now, &id, &reason);
        if (r >= 0)
                assert_string_equal(id, WL_ID);
        return r;
}

STACK_OF(X509) * stack_of(X509 *cert) {
        STACK_OF(X509) *s = sk_X509_new_null();

        assert_non_null(s);
        assert_int_equal(X509_up_ref(cert), 1);
        assert_true(sk_X509_push(s, cert) > 0);
        return s;
}

char *mint_kid(Ca *ca, time_t now) {
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_erase_ char *token = NULL;
        const char *aud[] = {"aud"};
        char *kid;

        assert_ok(ca_mint_jwt_svid(ca, WL_ID, aud, 1, 60, now, &token, NULL));
        assert_ok(warden_jwtsvid_parse_unverified(token, &c, NULL));
        kid = strdup(c->kid);
        assert_non_null(kid);
        return kid;
}

static int no_dots(const struct dirent *de) {
        return !streq(de->d_name, ".") && !streq(de->d_name, "..");
}

char *snapshot_dir(const char *dir, size_t *ret_len) {
        struct dirent **list = NULL;
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        int n;

        assert_non_null(f);
        n = scandir(dir, &list, no_dots, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = path_in(dir, list[i]->d_name);
                _cleanup_free_ char *data = NULL;
                size_t size = 0;

                data = test_read_file(p, &size);
                assert_non_null(data);
                fprintf(f, "%s\n%zu\n", list[i]->d_name, size);
                fwrite(data, 1, size, f);
                free(list[i]);
        }
        free(list);
        assert_int_equal(fclose(f), 0);
        *ret_len = len;
        return out;
}
