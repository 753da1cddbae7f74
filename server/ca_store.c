/* SPDX-License-Identifier: Apache-2.0 */
/* CA persistence under <data_dir>/ca/ (0700): x509-<id>.key (0600) + x509-<id>.pem,
 * jwt-<id>.key (0600), and state.json naming the slots:
 *
 *   {"version":1,"trust_domain":"example.org","upstream":false,"sequence":3,
 *    "next_id":4,
 *    "x509":[{"id":1,"role":"current","key":"x509-1.key","cert":"x509-1.pem",
 *             "issued_at":1700000000,"not_after":1700086400}, ...],
 *    "jwt":[{"id":2,"role":"current","key":"jwt-2.key","kid":"...",
 *            "issued_at":1700000000,"not_after":1700086400}, ...]}
 *
 * Every file is written atomically (temp + fsync + rename + fsync of the directory),
 * slot files before the state file that names them. Loading never repairs anything:
 * a missing or corrupt file is an error naming the file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "ca_internal.h"
#include "cleanup.h"
#include "file.h"
#include "log.h"
#include "ossl_cleanup.h"

static const char *const kind_prefix[_CA_KIND_MAX] = {
        [CA_KIND_X509] = "x509",
        [CA_KIND_JWT] = "jwt",
};

static void *mfree(void *p) {
        free(p);
        return NULL;
}

static void sk_X509_freep(STACK_OF(X509) * *s) {
        sk_X509_free(*s); /* borrowed certs: the stack only */
}

int ca_store_slot_key_name(CaKind kind, uint32_t id, char **ret) {
        if (kind < 0 || kind >= _CA_KIND_MAX)
                return -EINVAL;
        return asprintf(ret, "%s-%u.key", kind_prefix[kind], id) < 0 ? -ENOMEM : 0;
}

int ca_store_slot_cert_name(CaKind kind, uint32_t id, char **ret) {
        if (kind != CA_KIND_X509)
                return -EINVAL;
        return asprintf(ret, "%s-%u.pem", kind_prefix[kind], id) < 0 ? -ENOMEM : 0;
}

static int path_join(const char *dir, const char *name, char **ret) {
        return asprintf(ret, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

int ca_store_write_slot(const Ca *ca, CaKind kind, const CaSlot *s) {
        _cleanup_(sk_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *name = NULL, *path = NULL;
        int r;

        r = ca_store_slot_key_name(kind, s->id, &name);
        if (r >= 0)
                r = path_join(ca->dir, name, &path);
        if (r >= 0)
                r = warden_key_write_file(path, s->key);
        if (r < 0 || kind != CA_KIND_X509)
                return r;

        name = mfree(name);
        path = mfree(path);
        r = ca_store_slot_cert_name(kind, s->id, &name);
        if (r >= 0)
                r = path_join(ca->dir, name, &path);
        if (r < 0)
                return r;
        certs = sk_X509_new_null();
        if (!certs || !sk_X509_push(certs, s->cert))
                return -ENOMEM;
        return warden_x509_write_pem_file(path, certs, 0644);
}

/* ---- state file: save ---- */

static json_t *slot_to_json(CaKind kind, const CaSlot *s) {
        _cleanup_free_ char *key = NULL, *cert = NULL;

        if (ca_store_slot_key_name(kind, s->id, &key) < 0)
                return NULL;
        if (kind == CA_KIND_JWT)
                return json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t) s->id, "role",
                                 ca_role_to_string(s->role), "key", key, "kid", s->kid, "issued_at",
                                 (json_int_t) s->issued_at, "not_after", (json_int_t) s->not_after);
        if (ca_store_slot_cert_name(kind, s->id, &cert) < 0)
                return NULL;
        return json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t) s->id, "role",
                         ca_role_to_string(s->role), "key", key, "cert", cert, "issued_at",
                         (json_int_t) s->issued_at, "not_after", (json_int_t) s->not_after);
}

int ca_store_save(const Ca *ca) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_free_ char *text = NULL, *path = NULL;

        if (ca->sequence > INT64_MAX)
                return -ERANGE;
        root = json_pack("{s:i, s:s, s:b, s:I, s:I}", "version", CA_STATE_VERSION, "trust_domain",
                         ca->trust_domain, "upstream", ca->upstream_cert != NULL, "sequence",
                         (json_int_t) ca->sequence, "next_id", (json_int_t) ca->next_id);
        if (!root)
                return -ENOMEM;
        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++) {
                json_t *arr = json_array();

                if (!arr || json_object_set_new(root, kind_prefix[kind], arr) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < ca->slots[kind].n; i++)
                        if (json_array_append_new(arr,
                                                  slot_to_json(kind, &ca->slots[kind].slot[i])) < 0)
                                return -ENOMEM;
        }
        text = json_dumps(root, JSON_INDENT(2));
        if (!text)
                return -ENOMEM;
        if (path_join(ca->dir, CA_STATE_FILE, &path) < 0)
                return -ENOMEM;
        return file_write_atomic(path, text, strlen(text), 0600);
}

/* ---- state file: load ---- */

static int corrupt(const char *path, const char *reason) {
        return log_error_errno(-EBADMSG, "CA state %s is corrupt: %s", path, reason);
}

/* A key or certificate file named by the state could not be used. */
static int file_error(int r, const char *path) {
        log_error_errno(r, "CA file %s is missing or unusable: %m", path);
        /* Keep what an operator can fix in place (permissions, I/O); the rest means
         * the state and its files disagree. */
        if (r == -ENOMEM || r == -EPERM || r == -EACCES || r == -EIO)
                return r;
        return -EBADMSG;
}

static int slot_load_x509(Ca *ca, CaSlot *s, const char *path) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = NULL;
        time_t na;
        int r;

        r = warden_x509_read_pem_file(path, &certs);
        if (r < 0)
                return file_error(r, path);
        if (sk_X509_num(certs) != 1)
                return file_error(-EBADMSG, path);
        s->cert = sk_X509_shift(certs);
        if (X509_check_private_key(s->cert, s->key) != 1) {
                (void) ossl_to_errno(-EBADMSG);
                return log_error_errno(-EBADMSG, "CA certificate %s does not match its key", path);
        }
        na = warden_x509_not_after(s->cert);
        if (na == (time_t) -1 || (int64_t) na < s->not_after)
                return log_error_errno(-EBADMSG, "CA certificate %s ends before its slot", path);
        if (ca->upstream_cert && X509_verify(s->cert, X509_get0_pubkey(ca->upstream_cert)) != 1) {
                (void) ossl_to_errno(-EKEYREJECTED);
                return log_error_errno(-EKEYREJECTED,
                                       "CA certificate %s was not signed by the configured "
                                       "upstream CA; move %s away to start a new CA",
                                       path, ca->dir);
        }
        return 0;
}

static int slot_load_jwt(CaSlot *s, const char *kid, const char *path) {
        _cleanup_free_ char *want = NULL;
        int r;

        if (strlen(kid) == 0 || strlen(kid) > WARDEN_JWT_KID_MAX)
                return log_error_errno(-EBADMSG, "CA state: bad kid for %s", path);
        r = ca_jwt_kid(s->key, &want);
        if (r < 0)
                return r;
        if (!streq(want, kid))
                return log_error_errno(-EBADMSG, "JWT key %s does not match its kid", path);
        s->kid = strdup(kid);
        return s->kid ? 0 : -ENOMEM;
}

typedef struct SlotJson {
        json_int_t id, issued_at, not_after;
        const char *role, *key, *cert, *kid;
} SlotJson;

static int slot_unpack(CaKind kind, json_t *o, SlotJson *j) {
        json_error_t err;

        if (kind == CA_KIND_X509)
                return json_unpack_ex(o, &err, JSON_STRICT, "{s:I, s:s, s:s, s:s, s:I, s:I}", "id",
                                      &j->id, "role", &j->role, "key", &j->key, "cert", &j->cert,
                                      "issued_at", &j->issued_at, "not_after", &j->not_after);
        return json_unpack_ex(o, &err, JSON_STRICT, "{s:I, s:s, s:s, s:s, s:I, s:I}", "id", &j->id,
                              "role", &j->role, "key", &j->key, "kid", &j->kid, "issued_at",
                              &j->issued_at, "not_after", &j->not_after);
}

/* Checks the slot's fields against the names we would have given its files. */
static int slot_check_names(Ca *ca, CaKind kind, const SlotJson *j, const char *state) {
        _cleanup_free_ char *key = NULL, *cert = NULL;

        if (j->id <= 0 || (uint64_t) j->id >= ca->next_id)
                return corrupt(state, "slot id out of range");
        if (ca_role_from_string(j->role) < 0)
                return corrupt(state, "unknown slot role");
        if (j->issued_at <= 0 || j->not_after <= j->issued_at)
                return corrupt(state, "bad slot times");
        if (ca_store_slot_key_name(kind, (uint32_t) j->id, &key) < 0 ||
            (kind == CA_KIND_X509 && ca_store_slot_cert_name(kind, (uint32_t) j->id, &cert) < 0))
                return -ENOMEM;
        if (!streq(key, j->key) || (cert && !streq(cert, j->cert)))
                return corrupt(state, "unexpected slot file name");
        return 0;
}

static int slot_load(Ca *ca, CaKind kind, json_t *o, const char *state, CaSlot *s) {
        _cleanup_free_ char *path = NULL;
        SlotJson j = {};
        int r;

        if (slot_unpack(kind, o, &j) < 0)
                return corrupt(state, "malformed slot");
        r = slot_check_names(ca, kind, &j, state);
        if (r < 0)
                return r;
        s->id = (uint32_t) j.id;
        s->role = ca_role_from_string(j.role);
        s->issued_at = j.issued_at;
        s->not_after = j.not_after;

        if (path_join(ca->dir, j.key, &path) < 0)
                return -ENOMEM;
        r = warden_key_read_file(path, &s->key);
        if (r < 0)
                return file_error(r, path);
        if (kind == CA_KIND_JWT)
                return slot_load_jwt(s, j.kid, path);
        path = mfree(path);
        if (path_join(ca->dir, j.cert, &path) < 0)
                return -ENOMEM;
        return slot_load_x509(ca, s, path);
}

/* Every slot of a kind, then one current, at most one next, unique ids. */
static int slots_load(Ca *ca, CaKind kind, json_t *arr, const char *state) {
        CaSlots *ss = &ca->slots[kind];
        unsigned n_role[_CA_ROLE_MAX] = {};
        size_t i;
        json_t *o;

        if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > CA_SLOTS_MAX)
                return corrupt(state, "missing or oversized slot list");
        json_array_foreach(arr, i, o) {
                int r = slot_load(ca, kind, o, state, &ss->slot[ss->n]);
                if (r < 0) {
                        ca_slot_done(&ss->slot[ss->n]);
                        return r;
                }
                n_role[ss->slot[ss->n].role]++;
                ss->n++;
                for (size_t k = 0; k + 1 < ss->n; k++)
                        if (ss->slot[k].id == ss->slot[ss->n - 1].id)
                                return corrupt(state, "duplicate slot id");
        }
        if (n_role[CA_ROLE_CURRENT] != 1 || n_role[CA_ROLE_NEXT] > 1)
                return corrupt(state, "needs one current and at most one next slot");
        return 0;
}

static int state_header(Ca *ca, json_t *root, const char *state) {
        json_int_t version, sequence, next_id;
        json_t *x509, *jwt;
        const char *td;
        int upstream;
        json_error_t err;

        if (json_unpack_ex(root, &err, JSON_STRICT, "{s:I, s:s, s:b, s:I, s:I, s:o, s:o}",
                           "version", &version, "trust_domain", &td, "upstream", &upstream,
                           "sequence", &sequence, "next_id", &next_id, "x509", &x509, "jwt",
                           &jwt) < 0)
                return corrupt(state, "malformed header");
        if (version != CA_STATE_VERSION)
                return corrupt(state, "unsupported version");
        if (sequence <= 0 || next_id <= 1 || next_id >= UINT32_MAX)
                return corrupt(state, "bad sequence or next_id");
        if (!streq(td, ca->trust_domain))
                return log_error_errno(-EINVAL, "CA state %s belongs to trust domain %s, not %s",
                                       state, td, ca->trust_domain);
        if (!!upstream != !!ca->upstream_cert)
                return log_error_errno(-EINVAL,
                                       "CA state %s was made %s an upstream CA; the "
                                       "configuration now says otherwise",
                                       state, upstream ? "with" : "without");
        ca->sequence = (uint64_t) sequence;
        ca->next_id = (uint32_t) next_id;
        return 0;
}

static int read_state(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size > CA_STATE_MAX_BYTES)
                return -EBADMSG;
        buf = malloc(CA_STATE_MAX_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, CA_STATE_MAX_BYTES + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CA_STATE_MAX_BYTES)
                        return -EBADMSG;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

static void slots_clear(Ca *ca) {
        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++) {
                for (size_t i = 0; i < ca->slots[kind].n; i++)
                        ca_slot_done(&ca->slots[kind].slot[i]);
                ca->slots[kind].n = 0;
        }
}

int ca_store_load(Ca *ca) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_free_ char *path = NULL, *data = NULL;
        json_error_t err;
        size_t len = 0;
        int r;

        if (path_join(ca->dir, CA_STATE_FILE, &path) < 0)
                return -ENOMEM;
        r = read_state(path, &data, &len);
        if (r < 0)
                return file_error(r, path);
        root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
        if (!json_is_object(root))
                return corrupt(path, "not a JSON object");
        r = state_header(ca, root, path);
        for (CaKind kind = 0; r >= 0 && kind < _CA_KIND_MAX; kind++)
                r = slots_load(ca, kind, json_object_get(root, kind_prefix[kind]), path);
        if (r < 0) {
                slots_clear(ca);
                return r;
        }
        log_debug("Loaded CA state %s (sequence %llu)", path, (unsigned long long) ca->sequence);
        return 0;
}

/* ---- directory ---- */

/* "x509-<id>.key" style names we made for an id no slot uses any more. */
static bool is_unused_slot_file(const Ca *ca, const char *name) {
        for (CaKind kind = 0; kind < _CA_KIND_MAX; kind++) {
                size_t plen = strlen(kind_prefix[kind]);
                _cleanup_free_ char *key = NULL, *cert = NULL;
                unsigned long id;
                char *end;

                if (strncmp(name, kind_prefix[kind], plen) != 0 || name[plen] != '-')
                        continue;
                errno = 0;
                id = strtoul(name + plen + 1, &end, 10);
                if (errno != 0 || end == name + plen + 1 || id == 0 || id >= UINT32_MAX)
                        return false;
                if (ca_store_slot_key_name(kind, (uint32_t) id, &key) < 0)
                        return false;
                if (kind == CA_KIND_X509 && ca_store_slot_cert_name(kind, (uint32_t) id, &cert) < 0)
                        return false;
                if (!streq(name, key) && !(cert && streq(name, cert)))
                        return false;
                for (size_t i = 0; i < ca->slots[kind].n; i++)
                        if (ca->slots[kind].slot[i].id == id)
                                return false;
                return true;
        }
        return false;
}

void ca_store_gc(const Ca *ca) {
        DIR *d = opendir(ca->dir);
        struct dirent *de;

        if (!d) {
                log_debug_errno(-errno, "Failed to open %s: %m, not cleaning up", ca->dir);
                return;
        }
        while ((de = readdir(d))) {
                bool temp = de->d_name[0] == '.' && strstr(de->d_name, ".tmp-");

                if (!temp && !is_unused_slot_file(ca, de->d_name))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                        log_debug_errno(-errno, "Failed to remove %s/%s: %m, ignoring", ca->dir,
                                        de->d_name);
                else
                        log_debug("Removed %s/%s", ca->dir, de->d_name);
        }
        closedir(d);
}

/* Removes a temp dir that holds only files. */
static void remove_flat_dir(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(path);
}

static int create_dir(Ca *ca, const char *final, int (*build)(Ca *ca, time_t now), time_t now) {
        _cleanup_free_ char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s/.%s.tmp-XXXXXX", ca->data_dir, CA_DIR_NAME) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmp)) /* mode 0700 */
                return log_error_errno(-errno, "Failed to create a directory in %s: %m",
                                       ca->data_dir);
        free(ca->dir);
        ca->dir = strdup(tmp);
        if (!ca->dir) {
                r = -ENOMEM;
                goto fail;
        }
        r = build(ca, now);
        if (r >= 0)
                r = ca_store_save(ca);
        if (r >= 0 && rename(tmp, final) < 0)
                r = log_error_errno(-errno, "Failed to move %s to %s: %m", tmp, final);
        if (r < 0)
                goto fail;
        free(ca->dir);
        ca->dir = strdup(final);
        if (!ca->dir)
                return -ENOMEM;
        log_info("Created a new CA in %s", final);
        return file_fsync_directory(ca->data_dir);
fail:
        remove_flat_dir(tmp);
        slots_clear(ca);
        return r;
}

int ca_store_open(Ca *ca, int (*build)(Ca *ca, time_t now), time_t now) {
        _cleanup_free_ char *final = NULL;
        struct stat st;

        if (mkdir(ca->data_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s: %m", ca->data_dir);
        if (path_join(ca->data_dir, CA_DIR_NAME, &final) < 0)
                return -ENOMEM;
        if (lstat(final, &st) < 0) {
                if (errno != ENOENT)
                        return log_error_errno(-errno, "Failed to stat %s: %m", final);
                return create_dir(ca, final, build, now);
        }
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "%s is not a directory", final);
        free(ca->dir);
        ca->dir = TAKE_PTR(final);
        return ca_store_load(ca);
}
