/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "sim-auth.h"
#include "sim-http.h"
#include "sim-sigv4.h"
#include "sim-storage.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define ETAG_BUCKETS 1024
#define ETAG_CACHE_MAX 65536
#define KEY_MAX 1024
#define LIST_MAX_KEYS 200000
#define PART_NUMBER_MAX 10000
#define DELETE_OBJECTS_MAX 1000
#define ETAG_LEN 64

/* A cached ETag of one object file, valid while the file's identity and size/mtime match. */
struct EtagCacheEntry {
        char *path;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        char etag[ETAG_LEN];
        EtagCacheEntry *next;
};

/* One received part of a multipart upload. */
typedef struct Part {
        unsigned number;
        char etag[ETAG_LEN];
        uint64_t size;
} Part;

/* A multipart upload in progress. */
struct Upload {
        char id[33];
        char *bucket;
        char *key;
        User *owner; /* NULL: started with the forced --storage-credentials */
        char *dir;
        Part *parts; /* sorted by number */
        size_t n_parts;
        int64_t initiated; /* usec */
        Upload *next;
};

/* What every storage handler knows after authentication. */
typedef struct S3Ctx {
        char *bucket; /* decoded, NULL for the service itself */
        char *key;    /* decoded, NULL for bucket operations */
        User *user;   /* credential owner; NULL: the forced pair, every bucket */
        char payload_sha256[SHA256_HEX_LEN];
} S3Ctx;

/* Frees the contents of a context. */
static void s3_ctx_done(S3Ctx *c) {
        free(c->bucket);
        free(c->key);
}

/* FNV-1a of a string, for the ETag table. */
static size_t hash_str(const char *s) {
        return (size_t) (fnv1a(FNV1A_INIT, s) % ETAG_BUCKETS);
}

/* True when two timespecs are equal. */
static bool ts_eq(struct timespec a, struct timespec b) {
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Finds the cache entry of a path. */
static EtagCacheEntry **etag_cache_slot(Sim *sim, const char *path) {
        EtagCacheEntry **p = &sim->etags[hash_str(path)];

        while (*p && !streq((*p)->path, path))
                p = &(*p)->next;
        return p;
}

/* Remembers the ETag of a file as it is now. */
static void etag_cache_put(Sim *sim, const char *path, const struct stat *st, const char *etag) {
        EtagCacheEntry **p = etag_cache_slot(sim, path), *e = *p;

        if (!e) {
                if (sim->n_etags >= ETAG_CACHE_MAX)
                        return;
                e = calloc(1, sizeof(EtagCacheEntry));
                if (!e)
                        return;
                e->path = strdup(path);
                if (!e->path) {
                        free(e);
                        return;
                }
                *p = e;
                sim->n_etags++;
        }
        e->dev = st->st_dev;
        e->ino = st->st_ino;
        e->size = st->st_size;
        e->mtime = st->st_mtim;
        snprintf(e->etag, sizeof(e->etag), "%s", etag);
}

/* Forgets the ETag of a path. */
static void etag_cache_del(Sim *sim, const char *path) {
        EtagCacheEntry **p = etag_cache_slot(sim, path), *e = *p;

        if (!e)
                return;
        *p = e->next;
        free(e->path);
        free(e);
        sim->n_etags--;
}

/* The ETag of an object file (cached, else the first 32 hex digits of its SHA-256). */
static int etag_of_file(Sim *sim, const char *path, int fd, const struct stat *st,
                        char etag[static ETAG_LEN]) {
        EtagCacheEntry *e = *etag_cache_slot(sim, path);
        EVP_MD_CTX *md;
        uint8_t buf[65536], d[SHA256_LEN];
        char hex[SHA256_HEX_LEN];
        off_t off = 0;
        unsigned len = SHA256_LEN;

        if (e && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
            ts_eq(e->mtime, st->st_mtim)) {
                memcpy(etag, e->etag, ETAG_LEN);
                return 0;
        }
        md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;
        if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(md);
                return -EIO;
        }
        for (;;) {
                ssize_t k = pread(fd, buf, sizeof(buf), off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        EVP_MD_CTX_free(md);
                        return r;
                }
                if (k == 0)
                        break;
                EVP_DigestUpdate(md, buf, (size_t) k);
                off += k;
        }
        EVP_DigestFinal_ex(md, d, &len);
        EVP_MD_CTX_free(md);
        hex_encode(d, sizeof(d), hex);
        snprintf(etag, ETAG_LEN, "%.32s", hex);
        etag_cache_put(sim, path, st, etag);
        return 0;
}

/* True for a bucket name S3 would accept (3..63 of a-z 0-9 . -, alphanumeric ends). */
static bool bucket_name_is_valid(const char *b) {
        size_t n = strlen(b);

        if (n < 3 || n > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
                return false;
        return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

/* Checks that a key can be stored as a file path. */
static int key_validate(const char *key) {
        size_t n = strlen(key);

        if (n == 0 || n > KEY_MAX)
                return -EINVAL;
        for (const char *p = key;;) {
                const char *slash = strchr(p, '/');
                size_t l = slash ? (size_t) (slash - p) : strlen(p);

                if (l == 0 || l > 255 || (l == 1 && p[0] == '.') ||
                    (l == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                if (!slash)
                        return 0;
                p = slash + 1;
        }
}

/* The file of an object. */
int storage_object_path(Sim *sim, const char *bucket, const char *key, char **ret) {
        if (!bucket_name_is_valid(bucket) || key_validate(key) < 0)
                return -EINVAL;
        *ret = strprintf("%s/%s/%s", sim->storage_dir, bucket, key);
        return *ret ? 0 : -ENOMEM;
}

/* Opens an object for reading. */
int storage_open_object(Sim *sim, const char *bucket, const char *key) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        r = storage_object_path(sim, bucket, key, &path);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOTDIR ? -ENOENT : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        return TAKE_FD(fd);
}

/* A new temporary file path under DIR/.tmp. */
static char *tmp_path_new(Sim *sim) {
        char rnd[17];

        if (random_string(rnd, 16, "abcdefghijklmnopqrstuvwxyz0123456789") < 0)
                return NULL;
        return strprintf("%s/.tmp/%s", sim->storage_dir, rnd);
}

/* Creates the parent directories of an object file. */
static int make_parents(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                return 0;
        *slash = '\0';
        return mkdir_p(dir);
}

/* Renames a finished temporary file onto an object path. */
static int install_file(const char *tmp, const char *path) {
        int r;

        r = make_parents(path);
        if (r < 0)
                return r == -EEXIST ? -ENOTDIR : r;
        if (rename(tmp, path) < 0)
                return -errno;
        return 0;
}

/* Starts writing an object. */
int storage_writer_open(Sim *sim, const char *bucket, const char *key, StorageWriter *w) {
        int r, fd;

        memset(w, 0, sizeof(*w));
        r = storage_object_path(sim, bucket, key, &w->final_path);
        if (r < 0)
                return r;
        w->tmp_path = tmp_path_new(sim);
        if (!w->tmp_path) {
                storage_writer_abort(w);
                return -ENOMEM;
        }
        fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
                r = -errno;
                storage_writer_abort(w);
                return r;
        }
        w->f = fdopen(fd, "w");
        if (!w->f) {
                r = -errno;
                close(fd);
                storage_writer_abort(w);
                return r;
        }
        return 0;
}

/* Finishes writing. */
int storage_writer_commit(StorageWriter *w) {
        int r = 0;

        if (ferror(w->f))
                r = -EIO;
        if (fclose(w->f) != 0 && r == 0)
                r = -errno;
        w->f = NULL;
        if (r == 0)
                r = install_file(w->tmp_path, w->final_path);
        if (r < 0)
                (void) unlink(w->tmp_path);
        w->tmp_path = mfree(w->tmp_path);
        w->final_path = mfree(w->final_path);
        return r;
}

/* Abandons a writer. */
void storage_writer_abort(StorageWriter *w) {
        if (w->f)
                fclose(w->f);
        w->f = NULL;
        if (w->tmp_path)
                (void) unlink(w->tmp_path);
        w->tmp_path = mfree(w->tmp_path);
        w->final_path = mfree(w->final_path);
}

/* Removes every object under a directory-like prefix of a bucket. */
int storage_remove_prefix(Sim *sim, const char *bucket, const char *prefix) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = storage_object_path(sim, bucket, prefix, &path);
        if (r < 0)
                return r;
        return rm_rf(path);
}

/* Creates a bucket directory. */
static int bucket_create(Sim *sim, const char *bucket) {
        _cleanup_free_ char *path = strprintf("%s/%s", sim->storage_dir, bucket);

        if (!path)
                return -ENOMEM;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* True when the bucket directory exists. */
static bool bucket_exists(Sim *sim, const char *bucket) {
        _cleanup_free_ char *path = strprintf("%s/%s", sim->storage_dir, bucket);
        struct stat st;

        return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Creates the storage root and user buckets. */
int storage_init(Sim *sim) {
        _cleanup_free_ char *tmp = NULL, *mp = NULL;
        int r;

        sim->etags = calloc(ETAG_BUCKETS, sizeof(EtagCacheEntry *));
        if (!sim->etags)
                return -ENOMEM;
        if (sim->cfg.storage_dir) {
                r = mkdir_p(sim->cfg.storage_dir);
                if (r < 0)
                        return r;
                sim->storage_dir = realpath(sim->cfg.storage_dir, NULL);
                if (!sim->storage_dir)
                        return -errno;
        } else {
                const char *t = getenv("TMPDIR");
                _cleanup_free_ char *templ = strprintf("%s/avatar-sim.XXXXXX", isempty(t) ? "/tmp" : t);
                if (!templ)
                        return -ENOMEM;
                if (!mkdtemp(templ))
                        return -errno;
                sim->storage_dir = TAKE_PTR(templ);
                sim->storage_dir_is_temp = true;
        }
        tmp = strprintf("%s/.tmp", sim->storage_dir);
        mp = strprintf("%s/.multipart", sim->storage_dir);
        if (!tmp || !mp)
                return -ENOMEM;
        /* Leftovers of an earlier run are not ours to keep. */
        (void) rm_rf(tmp);
        (void) rm_rf(mp);
        r = mkdir_p(tmp);
        if (r >= 0)
                r = mkdir_p(mp);
        for (User *u = sim->users; r >= 0 && u; u = u->next)
                r = bucket_create(sim, u->id);
        return r;
}

/* Frees one upload record (its files stay). Returns NULL. */
static Upload *upload_free(Upload *u) {
        if (!u)
                return NULL;
        free(u->bucket);
        free(u->key);
        free(u->dir);
        free(u->parts);
        free(u);
        return NULL;
}

/* Frees uploads and caches; removes a temporary storage root. */
void storage_done(Sim *sim) {
        while (sim->uploads) {
                Upload *u = sim->uploads;
                sim->uploads = u->next;
                (void) rm_rf(u->dir);
                upload_free(u);
        }
        sim->n_uploads = 0;
        for (size_t i = 0; sim->etags && i < ETAG_BUCKETS; i++)
                while (sim->etags[i]) {
                        EtagCacheEntry *e = sim->etags[i];
                        sim->etags[i] = e->next;
                        free(e->path);
                        free(e);
                }
        free(sim->etags);
        sim->etags = NULL;
        sim->n_etags = 0;
        if (sim->storage_dir && sim->storage_dir_is_temp)
                (void) rm_rf(sim->storage_dir);
        free(sim->storage_dir);
        sim->storage_dir = NULL;
}

/* Appends <name>escaped value</name>. */
static void xml_elem(struct evbuffer *b, const char *name, const char *value) {
        evbuffer_add_printf(b, "<%s>", name);
        xml_escape(b, value);
        evbuffer_add_printf(b, "</%s>", name);
}

/* Adds the headers every storage answer has; id (17 bytes) gets the x-amz-request-id. */
static void s3_common_headers_id(Req *r, char id[static 17]) {
        if (random_string(id, 16, "0123456789ABCDEF") < 0)
                strcpy(id, "0000000000000000");
        req_add_header(r, "x-amz-request-id", id);
        req_add_header(r, "Server", "avatar-sim");
}

/* Adds the headers every storage answer has. */
static void s3_common_headers(Req *r) {
        char id[17];

        s3_common_headers_id(r, id);
}

/*
 * Sends an S3 XML error, shaped as S3's (Code, Message, Resource, RequestId) so that any S3
 * client surfaces its code and message.
 */
static void s3_error(Req *r, int status, const char *code, const char *message,
                     const SigV4Error *sig) {
        struct evbuffer *b = evbuffer_new();
        char id[17];

        s3_common_headers_id(r, id);
        if (b) {
                evbuffer_add_printf(b, XML_DECL "<Error>");
                xml_elem(b, "Code", code);
                xml_elem(b, "Message", message ? message : code);
                xml_elem(b, "Resource", r->raw_path);
                xml_elem(b, "RequestId", id);
                if (sig && sig->string_to_sign)
                        xml_elem(b, "StringToSign", sig->string_to_sign);
                if (sig && sig->canonical_request)
                        xml_elem(b, "CanonicalRequest", sig->canonical_request);
                evbuffer_add_printf(b, "</Error>\n");
        }
        req_reply(r, status, "application/xml", b);
}

/* Sends an XML document built in b. */
static void s3_reply_xml(Req *r, int status, struct evbuffer *b) {
        s3_common_headers(r);
        req_reply(r, status, "application/xml", b);
}

/* Secret lookup for the verifier. */
static int lookup_secret(void *userdata, const char *key_id, const char **ret_secret) {
        User *u;

        return storage_credentials_lookup(userdata, key_id, &u, ret_secret);
}

/* Splits /storage/<bucket>/<key> of the raw path into decoded parts. */
static int s3_split_path(Req *r, char **ret_bucket, char **ret_key) {
        const char *p = r->raw_path + STRLEN("/storage"), *slash;

        *ret_bucket = *ret_key = NULL;
        while (*p == '/')
                p++;
        if (!*p)
                return 0;
        slash = strchr(p, '/');
        *ret_bucket = url_decode(p, slash ? (size_t) (slash - p) : strlen(p), false);
        if (!*ret_bucket)
                return -EINVAL;
        if (slash && slash[1]) {
                *ret_key = url_decode(slash + 1, strlen(slash + 1), false);
                if (!*ret_key)
                        return -EINVAL;
        }
        return 0;
}

/*
 * Checks Content-MD5 when the client sent one (the AWS CLI does on PutObject and UploadPart),
 * as S3 does: a value that is not the base64 of 16 bytes is InvalidDigest, another body's
 * is BadDigest. Returns 0, or -EBADMSG after answering.
 */
static int check_content_md5(Req *r) {
        const char *v = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Content-MD5");
        uint8_t want[18], got[EVP_MAX_MD_SIZE];
        unsigned len = sizeof(got);
        size_t l;

        if (!v)
                return 0;
        l = strlen(v);
        /* 16 bytes are 24 base64 characters ending in "==" */
        if (l != 24 || !endswith(v, "==") ||
            EVP_DecodeBlock(want, (const unsigned char *) v, (int) l) != 18) {
                s3_error(r, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.",
                         NULL);
                return -EBADMSG;
        }
        if (evbuffer_digest(req_body(r), EVP_md5(), got, &len) < 0 || len != 16 ||
            memcmp(want, got, 16) != 0) {
                s3_error(r, 400, "BadDigest",
                         "The Content-MD5 you specified did not match what we received.", NULL);
                return -EBADMSG;
        }
        return 0;
}

/*
 * Authenticates a storage request and checks its bucket. Returns 0 with c filled, or a
 * negative errno after answering.
 */
static int s3_begin(Req *r, S3Ctx *c, bool need_bucket) {
        Sim *sim = r->sim;
        SigV4Request rq = {
                .method = r->method_name,
                .raw_path = r->raw_path,
                .raw_query = r->raw_query,
                .headers = evhttp_request_get_input_headers(r->ev),
                .payload_sha256 = c->payload_sha256,
                .now_sec = now_usec() / 1000000,
        };
        _cleanup_free_ char *key_id = NULL;
        SigV4Error err;
        const char *secret;
        int k;

        memset(c, 0, sizeof(*c));
        evbuffer_sha256_hex(req_body(r), c->payload_sha256);
        if (s3_split_path(r, &c->bucket, &c->key) < 0) {
                s3_error(r, 400, "InvalidURI", "Couldn't parse the specified URI.", NULL);
                return -EINVAL;
        }
        k = sigv4_verify(&rq, lookup_secret, sim, &key_id, &err);
        if (k == -ENOMEM) {
                s3_error(r, 500, "InternalError", "Out of memory", NULL);
                return k;
        }
        if (k < 0) {
                s3_error(r, err.status, err.code, err.message, &err);
                sigv4_error_done(&err);
                return k;
        }
        r->auth = "sigv4";
        if (check_content_md5(r) < 0)
                return -EBADMSG;
        (void) storage_credentials_lookup(sim, key_id, &c->user, &secret);
        if (!need_bucket)
                return 0;
        if (!c->bucket || !bucket_name_is_valid(c->bucket)) {
                s3_error(r, 400, "InvalidBucketName", "The specified bucket is not valid.", NULL);
                return -EINVAL;
        }
        if (c->user && strcasecmp(c->bucket, c->user->id) != 0) {
                s3_error(r, 403, "AccessDenied", "Access Denied", NULL);
                return -EACCES;
        }
        if (r->method != EVHTTP_REQ_PUT || c->key) {
                if (!bucket_exists(sim, c->bucket)) {
                        s3_error(r, 404, "NoSuchBucket", "The specified bucket does not exist",
                                 NULL);
                        return -ENOENT;
                }
        }
        if (c->key && key_validate(c->key) < 0) {
                s3_error(r, 400, "InvalidArgument",
                         "avatar-sim stores keys as files: a key must be 1..1024 bytes of "
                         "non-empty segments other than '.' and '..'",
                         NULL);
                return -EINVAL;
        }
        return 0;
}

/* GET /storage/: ListBuckets. */
static void on_list_buckets(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        struct evbuffer *b;
        DIR *d;

        if (s3_begin(r, &c, false) < 0)
                return;
        b = evbuffer_new();
        d = opendir(r->sim->storage_dir);
        if (!b || !d) {
                if (b)
                        evbuffer_free(b);
                if (d)
                        closedir(d);
                s3_error(r, 500, "InternalError", "Cannot list buckets", NULL);
                return;
        }
        evbuffer_add_printf(b, XML_DECL "<ListAllMyBucketsResult xmlns=\"" S3_XMLNS "\"><Owner>");
        xml_elem(b, "ID", c.user ? c.user->id : "avatar-sim");
        xml_elem(b, "DisplayName", c.user ? c.user->email : "avatar-sim");
        evbuffer_add_printf(b, "</Owner><Buckets>");
        for (struct dirent *de; (de = readdir(d));) {
                char date[ISO8601_LEN];
                if (de->d_name[0] == '.' || !bucket_name_is_valid(de->d_name))
                        continue;
                if (c.user && strcasecmp(de->d_name, c.user->id) != 0)
                        continue;
                format_iso8601(now_usec(), date);
                evbuffer_add_printf(b, "<Bucket>");
                xml_elem(b, "Name", de->d_name);
                evbuffer_add_printf(b, "<CreationDate>%.19s.000Z</CreationDate></Bucket>", date);
        }
        closedir(d);
        evbuffer_add_printf(b, "</Buckets></ListAllMyBucketsResult>\n");
        s3_reply_xml(r, 200, b);
}

/* PUT /storage/<bucket>: CreateBucket. */
static void on_create_bucket(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *loc = NULL;

        if (s3_begin(r, &c, true) < 0)
                return;
        if (bucket_create(r->sim, c.bucket) < 0) {
                s3_error(r, 500, "InternalError", "Cannot create the bucket", NULL);
                return;
        }
        loc = strprintf("/%s", c.bucket);
        if (loc)
                req_add_header(r, "Location", loc);
        s3_common_headers(r);
        req_reply(r, 200, "application/xml", NULL);
}

/* HEAD /storage/<bucket>: HeadBucket. */
static void on_head_bucket(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};

        if (s3_begin(r, &c, true) < 0)
                return;
        req_add_header(r, "x-amz-bucket-region", "us-east-1");
        s3_common_headers(r);
        req_reply(r, 200, "application/xml", NULL);
}

/* DELETE /storage/<bucket>: DeleteBucket (only when empty). */
static void on_delete_bucket(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *path = NULL;

        if (s3_begin(r, &c, true) < 0)
                return;
        path = strprintf("%s/%s", r->sim->storage_dir, c.bucket);
        if (!path || rmdir(path) < 0) {
                if (errno == ENOTEMPTY || errno == EEXIST)
                        s3_error(r, 409, "BucketNotEmpty",
                                 "The bucket you tried to delete is not empty", NULL);
                else
                        s3_error(r, 500, "InternalError", "Cannot delete the bucket", NULL);
                return;
        }
        s3_common_headers(r);
        req_reply(r, 204, "application/xml", NULL);
}

/* GET /storage/<bucket>?location: GetBucketLocation. */
static void on_bucket_location(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        struct evbuffer *b;

        if (s3_begin(r, &c, true) < 0)
                return;
        b = evbuffer_new();
        if (b)
                evbuffer_add_printf(b, XML_DECL "<LocationConstraint xmlns=\"" S3_XMLNS
                                               "\"></LocationConstraint>\n");
        s3_reply_xml(r, 200, b);
}

/* Sorted keys of a bucket. */
typedef struct KeyList {
        char **keys;
        size_t n;
} KeyList;

/* Frees a key list. */
static void key_list_done(KeyList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->keys[i]);
        free(l->keys);
}

/* Collects the keys under dir (relative name rel) that could start with prefix. */
static int walk_keys(const char *dir, const char *rel, const char *prefix, KeyList *l,
                     unsigned depth) {
        DIR *d;
        int r = 0;

        if (depth > 128)
                return 0;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                _cleanup_free_ char *child = NULL, *crel = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                child = strprintf("%s/%s", dir, de->d_name);
                crel = strprintf("%s%s", rel, de->d_name);
                if (!child || !crel) {
                        r = -ENOMEM;
                        break;
                }
                if (lstat(child, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *drel = strprintf("%s/", crel);
                        size_t dl;
                        if (!drel) {
                                r = -ENOMEM;
                                break;
                        }
                        dl = strlen(drel);
                        /* descend only where keys can start with the prefix */
                        if (strncmp(drel, prefix, MIN(dl, strlen(prefix))) == 0)
                                r = walk_keys(child, drel, prefix, l, depth + 1);
                } else if (S_ISREG(st.st_mode) && startswith(crel, prefix)) {
                        char **nk;
                        if (l->n >= LIST_MAX_KEYS) {
                                r = -E2BIG;
                                break;
                        }
                        nk = realloc(l->keys, (l->n + 1) * sizeof(char *));
                        if (!nk) {
                                r = -ENOMEM;
                                break;
                        }
                        l->keys = nk;
                        l->keys[l->n++] = TAKE_PTR(crel);
                }
        }
        closedir(d);
        return r;
}

/* qsort comparator for keys (byte order, as S3). */
static int cmp_key(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The outcome of one listing page. */
typedef struct ListPage {
        char **contents; /* borrowed from the KeyList */
        size_t n_contents;
        char **prefixes; /* owned */
        size_t n_prefixes;
        bool truncated;
        const char *last; /* borrowed: the last key or prefix of the page */
        bool last_is_prefix;
} ListPage;

/* Frees a page. */
static void list_page_done(ListPage *p) {
        for (size_t i = 0; i < p->n_prefixes; i++)
                free(p->prefixes[i]);
        free(p->prefixes);
        free(p->contents);
}

/*
 * Computes one page of a listing: keys after `after` (when after_prefix, also skipping every
 * key under that common prefix), grouped by delimiter, at most max entries.
 */
static int list_page(const KeyList *l, const char *prefix, const char *delim, const char *after,
                     bool after_prefix, unsigned max, ListPage *p) {
        memset(p, 0, sizeof(*p));
        p->contents = calloc(MIN((size_t) max, l->n) + 1, sizeof(char *));
        p->prefixes = calloc(MIN((size_t) max, l->n) + 1, sizeof(char *));
        if (!p->contents || !p->prefixes)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                const char *k = l->keys[i], *d;

                if (!startswith(k, prefix))
                        continue;
                if (after && (strcmp(k, after) <= 0 || (after_prefix && startswith(k, after))))
                        continue;
                d = !isempty(delim) ? strstr(k + strlen(prefix), delim) : NULL;
                if (d) {
                        size_t cl = (size_t) (d - k) + strlen(delim);
                        if (p->n_prefixes > 0 && p->last_is_prefix &&
                            strlen(p->last) == cl && strncmp(p->last, k, cl) == 0)
                                continue;
                        if (p->n_contents + p->n_prefixes >= max) {
                                p->truncated = true;
                                break;
                        }
                        p->prefixes[p->n_prefixes] = strndup(k, cl);
                        if (!p->prefixes[p->n_prefixes])
                                return -ENOMEM;
                        p->last = p->prefixes[p->n_prefixes++];
                        p->last_is_prefix = true;
                        continue;
                }
                if (p->n_contents + p->n_prefixes >= max) {
                        p->truncated = true;
                        break;
                }
                p->contents[p->n_contents++] = l->keys[i];
                p->last = k;
                p->last_is_prefix = false;
        }
        return 0;
}

/* Appends a key in the listing's encoding. */
static void add_listed_key(struct evbuffer *b, const char *elem, const char *key, bool url) {
        if (url) {
                _cleanup_free_ char *e = url_encode(key, true);
                xml_elem(b, elem, e ? e : "");
        } else
                xml_elem(b, elem, key);
}

/* Appends <Contents> for each listed key. */
static void add_contents(Req *r, const S3Ctx *c, struct evbuffer *b, const ListPage *p, bool url) {
        for (size_t i = 0; i < p->n_contents; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_close_ int fd = -1;
                char etag[ETAG_LEN] = "", date[ISO8601_LEN];
                struct stat st;

                if (storage_object_path(r->sim, c->bucket, p->contents[i], &path) < 0)
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0)
                        continue;
                (void) etag_of_file(r->sim, path, fd, &st, etag);
                format_iso8601((int64_t) st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000,
                               date);
                evbuffer_add_printf(b, "<Contents>");
                add_listed_key(b, "Key", p->contents[i], url);
                evbuffer_add_printf(b,
                                    "<LastModified>%.23sZ</LastModified><ETag>&quot;%s&quot;</ETag>"
                                    "<Size>%lld</Size><StorageClass>STANDARD</StorageClass>"
                                    "</Contents>",
                                    date, etag, (long long) st.st_size);
        }
        for (size_t i = 0; i < p->n_prefixes; i++) {
                evbuffer_add_printf(b, "<CommonPrefixes>");
                add_listed_key(b, "Prefix", p->prefixes[i], url);
                evbuffer_add_printf(b, "</CommonPrefixes>");
        }
}

/* Parses max-keys (default and cap 1000). Returns -EINVAL when malformed. */
static int parse_max_keys(const char *s, unsigned *ret) {
        char *end;
        long v;

        *ret = 1000;
        if (!s)
                return 0;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end || v < 0)
                return -EINVAL;
        *ret = (unsigned) MIN(v, 1000L);
        return 0;
}

/* GET /storage/<bucket>[?list-type=2]: ListObjects (V1) and ListObjectsV2. */
static void on_list_objects(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_(key_list_done) KeyList l = {};
        _cleanup_(list_page_done) ListPage p = {};
        _cleanup_free_ char *bucket_dir = NULL, *token_key = NULL;
        const char *prefix = req_query(r, "prefix"), *delim = req_query(r, "delimiter"),
                   *enc = req_query(r, "encoding-type"), *token = req_query(r, "continuation-token"),
                   *after = NULL;
        bool v2 = streq_ptr(req_query(r, "list-type"), "2"), url = streq_ptr(enc, "url"),
             after_prefix = false;
        struct evbuffer *b;
        unsigned max;
        int k;

        if (s3_begin(r, &c, true) < 0)
                return;
        if (parse_max_keys(req_query(r, "max-keys"), &max) < 0) {
                s3_error(r, 400, "InvalidArgument", "Provided max-keys not an integer or within "
                                                    "integer range", NULL);
                return;
        }
        if (enc && !url) {
                s3_error(r, 400, "InvalidArgument", "Invalid Encoding Method specified in Request",
                         NULL);
                return;
        }
        prefix = prefix ? prefix : "";
        if (v2 && token) {
                /* our continuation tokens: 'K' or 'P' (key or common prefix) + hex of it */
                size_t tl = strlen(token);
                if (tl < 1 || (token[0] != 'K' && token[0] != 'P') || (tl - 1) % 2 != 0) {
                        s3_error(r, 400, "InvalidArgument",
                                 "The continuation token provided is incorrect", NULL);
                        return;
                }
                token_key = calloc(1, tl);
                if (!token_key) {
                        s3_error(r, 500, "InternalError", "Out of memory", NULL);
                        return;
                }
                for (size_t i = 1; i + 1 < tl; i += 2) {
                        char hx[3] = { token[i], token[i + 1], 0 };
                        token_key[(i - 1) / 2] = (char) strtol(hx, NULL, 16);
                }
                after = token_key;
                after_prefix = token[0] == 'P';
        } else
                after = req_query(r, v2 ? "start-after" : "marker");
        bucket_dir = strprintf("%s/%s", r->sim->storage_dir, c.bucket);
        k = bucket_dir ? walk_keys(bucket_dir, "", prefix, &l, 0) : -ENOMEM;
        if (k >= 0 && l.n > 0)
                qsort(l.keys, l.n, sizeof(char *), cmp_key);
        if (k >= 0)
                k = list_page(&l, prefix, delim, isempty(after) ? NULL : after, after_prefix, max,
                              &p);
        b = evbuffer_new();
        if (k < 0 || !b) {
                if (b)
                        evbuffer_free(b);
                s3_error(r, 500, "InternalError",
                         k == -E2BIG ? "Too many objects to list" : "Cannot list", NULL);
                return;
        }
        evbuffer_add_printf(b, XML_DECL "<ListBucketResult xmlns=\"" S3_XMLNS "\">");
        xml_elem(b, "Name", c.bucket);
        add_listed_key(b, "Prefix", prefix, url);
        if (delim)
                add_listed_key(b, "Delimiter", delim, url);
        evbuffer_add_printf(b, "<MaxKeys>%u</MaxKeys>", max);
        if (url)
                xml_elem(b, "EncodingType", "url");
        evbuffer_add_printf(b, "<IsTruncated>%s</IsTruncated>", p.truncated ? "true" : "false");
        if (v2) {
                evbuffer_add_printf(b, "<KeyCount>%zu</KeyCount>", p.n_contents + p.n_prefixes);
                if (token)
                        xml_elem(b, "ContinuationToken", token);
                if (req_query(r, "start-after"))
                        add_listed_key(b, "StartAfter", req_query(r, "start-after"), url);
                if (p.truncated && p.last) {
                        _cleanup_free_ char *hex = malloc(2 * strlen(p.last) + 2);
                        if (hex) {
                                hex[0] = p.last_is_prefix ? 'P' : 'K';
                                hex_encode((const uint8_t *) p.last, strlen(p.last), hex + 1);
                                xml_elem(b, "NextContinuationToken", hex);
                        }
                }
        } else {
                add_listed_key(b, "Marker", after ? after : "", url);
                if (p.truncated && p.last && delim)
                        add_listed_key(b, "NextMarker", p.last, url);
        }
        add_contents(r, &c, b, &p, url);
        evbuffer_add_printf(b, "</ListBucketResult>\n");
        s3_reply_xml(r, 200, b);
}

/* Extracts the decoded text of the next <tag>...</tag> at or after *p. NULL when none. */
static char *xml_next_text(const char **p, const char *end, const char *tag) {
        _cleanup_free_ char *open = strprintf("<%s>", tag), *close_tag = strprintf("</%s>", tag);
        const char *s, *e;
        char *out;
        size_t o = 0;

        if (!open || !close_tag)
                return NULL;
        s = memmem(*p, (size_t) (end - *p), open, strlen(open));
        if (!s)
                return NULL;
        s += strlen(open);
        e = memmem(s, (size_t) (end - s), close_tag, strlen(close_tag));
        if (!e)
                return NULL;
        *p = e + strlen(close_tag);
        out = malloc((size_t) (e - s) + 1);
        if (!out)
                return NULL;
        for (const char *q = s; q < e;) {
                static const struct {
                        const char *ent;
                        char c;
                } ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
                             { "&quot;", '"' }, { "&apos;", '\'' } };
                bool done = false;
                for (size_t i = 0; *q == '&' && i < ELEMENTSOF(ents) && !done; i++)
                        if ((size_t) (e - q) >= strlen(ents[i].ent) &&
                            strncmp(q, ents[i].ent, strlen(ents[i].ent)) == 0) {
                                out[o++] = ents[i].c;
                                q += strlen(ents[i].ent);
                                done = true;
                        }
                if (!done)
                        out[o++] = *q++;
        }
        out[o] = '\0';
        return out;
}

/* Removes directories left empty above an object file, up to its bucket. */
static void prune_empty_dirs(Sim *sim, const char *bucket, char *path) {
        size_t floor_len = strlen(sim->storage_dir) + 1 + strlen(bucket);

        for (char *s = strrchr(path, '/'); s; s = strrchr(path, '/')) {
                *s = '\0';
                if (strlen(path) <= floor_len || rmdir(path) < 0)
                        return;
        }
}

/* POST /storage/<bucket>?delete: DeleteObjects. */
static void on_delete_objects(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        struct evbuffer *b;
        const char *body, *p, *end;
        size_t len, n = 0;

        if (s3_begin(r, &c, true) < 0)
                return;
        body = req_body_str(r, &len);
        if (!body || !strstr(body, "<Delete")) {
                s3_error(r, 400, "MalformedXML", "The XML you provided was not well-formed", NULL);
                return;
        }
        b = evbuffer_new();
        if (!b) {
                s3_error(r, 500, "InternalError", "Out of memory", NULL);
                return;
        }
        evbuffer_add_printf(b, XML_DECL "<DeleteResult xmlns=\"" S3_XMLNS "\">");
        end = body + len;
        for (p = body; n < DELETE_OBJECTS_MAX; n++) {
                _cleanup_free_ char *key = xml_next_text(&p, end, "Key"), *path = NULL;
                if (!key)
                        break;
                if (storage_object_path(r->sim, c.bucket, key, &path) < 0) {
                        evbuffer_add_printf(b, "<Error>");
                        xml_elem(b, "Key", key);
                        evbuffer_add_printf(b, "<Code>InvalidArgument</Code><Message>Invalid "
                                               "key</Message></Error>");
                        continue;
                }
                if (unlink(path) == 0) {
                        etag_cache_del(r->sim, path);
                        prune_empty_dirs(r->sim, c.bucket, path);
                }
                evbuffer_add_printf(b, "<Deleted>");
                xml_elem(b, "Key", key);
                evbuffer_add_printf(b, "</Deleted>");
        }
        evbuffer_add_printf(b, "</DeleteResult>\n");
        s3_reply_xml(r, 200, b);
}

/* Writes an evbuffer (draining it) to a new temporary file. Returns 0 or -errno. */
static int evbuffer_to_tmp(Sim *sim, struct evbuffer *body, char **ret_tmp) {
        _cleanup_free_ char *tmp = tmp_path_new(sim);
        _cleanup_close_ int fd = -1;

        if (!tmp)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        while (evbuffer_get_length(body) > 0) {
                int k = evbuffer_write(body, fd);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int r = k < 0 ? -errno : -EIO;
                        (void) unlink(tmp);
                        return r;
                }
        }
        if (close(TAKE_FD(fd)) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return r;
        }
        *ret_tmp = TAKE_PTR(tmp);
        return 0;
}

/* Answers a failed install of a file at an object path. */
static void reply_install_error(Req *r, int k) {
        if (k == -ENOTDIR || k == -EISDIR || k == -EEXIST || k == -ENOTEMPTY)
                s3_error(r, 409, "InvalidArgument",
                         "avatar-sim cannot store this key: it clashes with an object or a "
                         "prefix of other objects",
                         NULL);
        else
                s3_error(r, 500, "InternalError", "Cannot store the object", NULL);
}

/* PUT /storage/<bucket>/<key>: PutObject. */
static void on_put_object(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        char etag[ETAG_LEN], quoted[ETAG_LEN + 2];
        struct stat st;
        int k;

        if (s3_begin(r, &c, true) < 0)
                return;
        if (req_header(r, "x-amz-copy-source")) {
                s3_error(r, 501, "NotImplemented", "avatar-sim does not implement CopyObject", NULL);
                return;
        }
        k = storage_object_path(r->sim, c.bucket, c.key, &path);
        if (k >= 0)
                k = evbuffer_to_tmp(r->sim, req_body(r), &tmp);
        if (k < 0) {
                s3_error(r, 500, "InternalError", "Cannot store the object", NULL);
                return;
        }
        k = install_file(tmp, path);
        if (k < 0) {
                (void) unlink(tmp);
                reply_install_error(r, k);
                return;
        }
        snprintf(etag, sizeof(etag), "%.32s", c.payload_sha256);
        if (stat(path, &st) == 0)
                etag_cache_put(r->sim, path, &st, etag);
        snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
        req_add_header(r, "ETag", quoted);
        s3_common_headers(r);
        req_reply(r, 200, "application/xml", NULL);
}

/* GET and HEAD /storage/<bucket>/<key>: GetObject, HeadObject. */
static void on_get_object(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        char etag[ETAG_LEN] = "", buf[128];
        off_t start = 0, len;
        struct evbuffer *b = NULL;
        struct stat st;
        int status = 200, k;

        if (s3_begin(r, &c, true) < 0)
                return;
        fd = storage_open_object(r->sim, c.bucket, c.key);
        if (fd < 0) {
                s3_error(r, 404, "NoSuchKey", "The specified key does not exist.", NULL);
                return;
        }
        if (fstat(fd, &st) < 0 || storage_object_path(r->sim, c.bucket, c.key, &path) < 0 ||
            etag_of_file(r->sim, path, fd, &st, etag) < 0) {
                s3_error(r, 500, "InternalError", "Cannot read the object", NULL);
                return;
        }
        len = st.st_size;
        k = parse_range(req_header(r, "Range"), st.st_size, &start, &len);
        if (k == -ERANGE) {
                snprintf(buf, sizeof(buf), "bytes */%lld", (long long) st.st_size);
                req_add_header(r, "Content-Range", buf);
                s3_error(r, 416, "InvalidRange", "The requested range is not satisfiable", NULL);
                return;
        }
        if (k == 0) {
                status = 206;
                snprintf(buf, sizeof(buf), "bytes %lld-%lld/%lld", (long long) start,
                         (long long) (start + len - 1), (long long) st.st_size);
                req_add_header(r, "Content-Range", buf);
        }
        snprintf(buf, sizeof(buf), "\"%s\"", etag);
        req_add_header(r, "ETag", buf);
        format_http_date(st.st_mtim.tv_sec, buf, sizeof(buf));
        req_add_header(r, "Last-Modified", buf);
        req_add_header(r, "Accept-Ranges", "bytes");
        req_add_header(r, "Content-Type", content_type_of(c.key));
        s3_common_headers(r);
        if (r->method == EVHTTP_REQ_HEAD) {
                snprintf(buf, sizeof(buf), "%lld", (long long) len);
                req_add_header(r, "Content-Length", buf);
                req_reply(r, status, NULL, NULL);
                return;
        }
        b = evbuffer_new();
        if (!b) {
                req_drop(r);
                return;
        }
        if (len > 0 && r->body_fault != BODY_FAULT_NONE) {
                /* faults rewrite the body in memory: read it instead of referencing the file */
                void *mem = malloc((size_t) len);
                if (mem && pread(fd, mem, (size_t) len, start) == (ssize_t) len)
                        evbuffer_add(b, mem, (size_t) len);
                free(mem);
        } else if (len > 0) {
                /* the segment owns the descriptor from here on and closes it when freed */
                struct evbuffer_file_segment *seg =
                        evbuffer_file_segment_new(fd, start, len, EVBUF_FS_CLOSE_ON_FREE);
                int k2;

                if (!seg) {
                        evbuffer_free(b);
                        s3_error(r, 500, "InternalError", "Cannot read the object", NULL);
                        return;
                }
                fd = -1;
                k2 = evbuffer_add_file_segment(b, seg, 0, len);
                evbuffer_file_segment_free(seg); /* the buffer keeps its own reference */
                if (k2 < 0) {
                        evbuffer_free(b);
                        s3_error(r, 500, "InternalError", "Cannot read the object", NULL);
                        return;
                }
        }
        req_reply(r, status, NULL, b);
}

/* DELETE /storage/<bucket>/<key>: DeleteObject. */
static void on_delete_object(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *path = NULL;
        struct stat st;

        if (s3_begin(r, &c, true) < 0)
                return;
        if (storage_object_path(r->sim, c.bucket, c.key, &path) >= 0 && lstat(path, &st) == 0 &&
            S_ISREG(st.st_mode) && unlink(path) == 0) {
                etag_cache_del(r->sim, path);
                prune_empty_dirs(r->sim, c.bucket, path);
        }
        s3_common_headers(r);
        req_reply(r, 204, "application/xml", NULL);
}

/* The upload with this id for this bucket and key, or NULL. */
static Upload *upload_find(Sim *sim, const char *id, const S3Ctx *c) {
        for (Upload *u = sim->uploads; u; u = u->next)
                if (streq(u->id, id) && streq(u->bucket, c->bucket) && streq(u->key, c->key))
                        return u;
        return NULL;
}

/* The multipart uploads in progress, [{id, bucket, key, parts}], for /_sim/uploads. */
json_object *storage_uploads_json(Sim *sim) {
        json_object *a = json_object_new_array();

        for (Upload *u = sim->uploads; a && u; u = u->next) {
                json_object *o = json_object_new_object();

                if (!o)
                        break;
                json_object_object_add(o, "id", json_object_new_string(u->id));
                json_object_object_add(o, "bucket", json_object_new_string(u->bucket));
                json_object_object_add(o, "key", json_object_new_string(u->key));
                json_object_object_add(o, "parts", json_object_new_int64((int64_t) u->n_parts));
                json_object_array_add(a, o);
        }
        return a;
}

/* Unlinks an upload from the list, removes its parts and frees it. */
static void upload_remove(Sim *sim, Upload *up) {
        for (Upload **p = &sim->uploads; *p; p = &(*p)->next)
                if (*p == up) {
                        *p = up->next;
                        break;
                }
        sim->n_uploads--;
        (void) rm_rf(up->dir);
        upload_free(up);
}

/* POST /storage/<bucket>/<key>?uploads: CreateMultipartUpload. */
static void on_create_multipart(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        struct evbuffer *b;
        Upload *up;

        if (s3_begin(r, &c, true) < 0)
                return;
        if (r->sim->n_uploads >= SIM_MAX_UPLOADS) {
                s3_error(r, 503, "SlowDown", "Too many multipart uploads in progress", NULL);
                return;
        }
        up = calloc(1, sizeof(Upload));
        if (!up || random_string(up->id, 32, "0123456789abcdef") < 0 ||
            !(up->bucket = strdup(c.bucket)) || !(up->key = strdup(c.key)) ||
            !(up->dir = strprintf("%s/.multipart/%s", r->sim->storage_dir, up->id)) ||
            mkdir(up->dir, 0700) < 0) {
                upload_free(up);
                s3_error(r, 500, "InternalError", "Cannot start the upload", NULL);
                return;
        }
        up->owner = c.user;
        up->initiated = now_usec();
        up->next = r->sim->uploads;
        r->sim->uploads = up;
        r->sim->n_uploads++;
        b = evbuffer_new();
        if (b) {
                evbuffer_add_printf(b, XML_DECL "<InitiateMultipartUploadResult xmlns=\"" S3_XMLNS
                                               "\">");
                xml_elem(b, "Bucket", c.bucket);
                xml_elem(b, "Key", c.key);
                xml_elem(b, "UploadId", up->id);
                evbuffer_add_printf(b, "</InitiateMultipartUploadResult>\n");
        }
        s3_reply_xml(r, 200, b);
}

/* GET /storage/<bucket>?uploads: ListMultipartUploads, with prefix; never truncated (at most
 * SIM_MAX_UPLOADS exist), newest first. */
static void on_list_multipart(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        const char *prefix = req_query(r, "prefix");
        struct evbuffer *b;

        if (s3_begin(r, &c, true) < 0)
                return;
        b = evbuffer_new();
        if (!b) {
                s3_error(r, 500, "InternalError", "Out of memory", NULL);
                return;
        }
        evbuffer_add_printf(b, XML_DECL "<ListMultipartUploadsResult xmlns=\"" S3_XMLNS "\">");
        xml_elem(b, "Bucket", c.bucket);
        xml_elem(b, "KeyMarker", "");
        xml_elem(b, "UploadIdMarker", "");
        xml_elem(b, "Prefix", prefix ? prefix : "");
        evbuffer_add_printf(b, "<MaxUploads>%u</MaxUploads><IsTruncated>false</IsTruncated>", SIM_MAX_UPLOADS);
        for (Upload *u = r->sim->uploads; u; u = u->next) {
                char t[ISO8601_LEN];

                if (!streq(u->bucket, c.bucket) || (prefix && !startswith(u->key, prefix)))
                        continue;
                format_iso8601(u->initiated, t);
                evbuffer_add_printf(b, "<Upload>");
                xml_elem(b, "Key", u->key);
                xml_elem(b, "UploadId", u->id);
                xml_elem(b, "Initiated", t);
                evbuffer_add_printf(b, "<StorageClass>STANDARD</StorageClass></Upload>");
        }
        evbuffer_add_printf(b, "</ListMultipartUploadsResult>\n");
        s3_reply_xml(r, 200, b);
}

/* Looks up the upload named by ?uploadId=, answering NoSuchUpload when absent. */
static Upload *upload_of_request(Req *r, const S3Ctx *c) {
        const char *id = req_query(r, "uploadId");
        Upload *up = id ? upload_find(r->sim, id, c) : NULL;

        if (!up)
                s3_error(r, 404, "NoSuchUpload",
                         "The specified upload does not exist. The upload ID may be invalid, or "
                         "the upload may have been aborted or completed.",
                         NULL);
        return up;
}

/* PUT /storage/<bucket>/<key>?partNumber=N&uploadId=X: UploadPart. */
static void on_upload_part(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        const char *pn = req_query(r, "partNumber");
        char quoted[ETAG_LEN + 2], *end;
        uint64_t size = evbuffer_get_length(req_body(r));
        Upload *up;
        Part *part = NULL;
        long n;

        if (s3_begin(r, &c, true) < 0)
                return;
        up = upload_of_request(r, &c);
        if (!up)
                return;
        errno = 0;
        n = pn ? strtol(pn, &end, 10) : 0;
        if (!pn || errno || *end || n < 1 || n > PART_NUMBER_MAX) {
                s3_error(r, 400, "InvalidArgument",
                         "Part number must be an integer between 1 and 10000, inclusive", NULL);
                return;
        }
        for (size_t i = 0; i < up->n_parts; i++)
                if (up->parts[i].number == (unsigned) n)
                        part = &up->parts[i];
        if (!part) {
                Part *np = realloc(up->parts, (up->n_parts + 1) * sizeof(Part));
                if (!np) {
                        s3_error(r, 500, "InternalError", "Out of memory", NULL);
                        return;
                }
                up->parts = np;
                /* keep parts sorted by number */
                size_t at = up->n_parts;
                while (at > 0 && up->parts[at - 1].number > (unsigned) n) {
                        up->parts[at] = up->parts[at - 1];
                        at--;
                }
                part = &up->parts[at];
                memset(part, 0, sizeof(*part));
                part->number = (unsigned) n;
                up->n_parts++;
        }
        path = strprintf("%s/%ld", up->dir, n);
        if (!path || evbuffer_to_tmp(r->sim, req_body(r), &tmp) < 0 || rename(tmp, path) < 0) {
                if (tmp)
                        (void) unlink(tmp);
                part->etag[0] = '\0'; /* not usable until uploaded again */
                s3_error(r, 500, "InternalError", "Cannot store the part", NULL);
                return;
        }
        snprintf(part->etag, sizeof(part->etag), "%.32s", c.payload_sha256);
        part->size = size;
        snprintf(quoted, sizeof(quoted), "\"%s\"", part->etag);
        req_add_header(r, "ETag", quoted);
        s3_common_headers(r);
        req_reply(r, 200, "application/xml", NULL);
}

/* Appends the contents of one file to fd. */
static int append_file(int fd, const char *path) {
        _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t buf[65536];

        if (in < 0)
                return -errno;
        for (;;) {
                ssize_t k = read(in, buf, sizeof(buf));
                int r;
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                r = write_all(fd, buf, (size_t) k);
                if (r < 0)
                        return r;
        }
}

/* Strips quotes from an ETag given in a CompleteMultipartUpload body. */
static void etag_unquote(char *e) {
        size_t n = strlen(e);

        if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
                memmove(e, e + 1, n - 2);
                e[n - 2] = '\0';
        }
}

/* Validates the part list of a CompleteMultipartUpload; fills order[] with part indexes. */
static int complete_check_parts(Req *r, Upload *up, size_t *order, size_t *ret_n) {
        const char *body, *p, *end;
        size_t len, n = 0;
        long last = 0;

        body = req_body_str(r, &len);
        if (!body || !strstr(body, "<CompleteMultipartUpload")) {
                s3_error(r, 400, "MalformedXML", "The XML you provided was not well-formed", NULL);
                return -EINVAL;
        }
        end = body + len;
        for (p = body;;) {
                const char *ps = memmem(p, (size_t) (end - p), "<Part>", 6), *pe;
                _cleanup_free_ char *num = NULL, *etag = NULL;
                const char *q;
                size_t idx = SIZE_MAX;
                long v;
                char *e;

                if (!ps)
                        break;
                pe = memmem(ps, (size_t) (end - ps), "</Part>", 7);
                if (!pe) {
                        s3_error(r, 400, "MalformedXML", "The XML you provided was not well-formed",
                                 NULL);
                        return -EINVAL;
                }
                q = ps;
                num = xml_next_text(&q, pe, "PartNumber");
                q = ps;
                etag = xml_next_text(&q, pe, "ETag");
                p = pe + 7;
                if (!num || !etag) {
                        s3_error(r, 400, "MalformedXML", "The XML you provided was not well-formed",
                                 NULL);
                        return -EINVAL;
                }
                errno = 0;
                v = strtol(num, &e, 10);
                if (errno || *e || v < 1 || v > PART_NUMBER_MAX || n >= up->n_parts + 1) {
                        s3_error(r, 400, "InvalidPart", "One or more of the specified parts could "
                                                        "not be found.", NULL);
                        return -EINVAL;
                }
                if (v <= last) {
                        s3_error(r, 400, "InvalidPartOrder",
                                 "The list of parts was not in ascending order. The parts list "
                                 "must be specified in order of the part number.",
                                 NULL);
                        return -EINVAL;
                }
                last = v;
                etag_unquote(etag);
                for (size_t i = 0; i < up->n_parts; i++)
                        if (up->parts[i].number == (unsigned) v)
                                idx = i;
                if (idx == SIZE_MAX || isempty(up->parts[idx].etag) ||
                    strcasecmp(up->parts[idx].etag, etag) != 0) {
                        s3_error(r, 400, "InvalidPart", "One or more of the specified parts could "
                                                        "not be found. The part may not have been "
                                                        "uploaded, or the specified entity tag "
                                                        "may not match the part's entity tag.",
                                 NULL);
                        return -EINVAL;
                }
                order[n++] = idx;
        }
        if (n == 0) {
                s3_error(r, 400, "MalformedXML", "The XML you provided was not well-formed", NULL);
                return -EINVAL;
        }
        for (size_t i = 0; i + 1 < n; i++)
                if (up->parts[order[i]].size < r->sim->cfg.min_part_size) {
                        s3_error(r, 400, "EntityTooSmall",
                                 "Your proposed upload is smaller than the minimum allowed size",
                                 NULL);
                        return -EINVAL;
                }
        *ret_n = n;
        return 0;
}

/* POST /storage/<bucket>/<key>?uploadId=X: CompleteMultipartUpload. */
static void on_complete_multipart(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        _cleanup_free_ char *tmp = NULL, *path = NULL, *joined = NULL, *loc = NULL;
        _cleanup_free_ size_t *order = NULL;
        _cleanup_close_ int fd = -1;
        char etag[ETAG_LEN], hex[SHA256_HEX_LEN];
        struct evbuffer *b;
        struct stat st;
        size_t n = 0;
        Upload *up;
        int k = 0;

        if (s3_begin(r, &c, true) < 0)
                return;
        up = upload_of_request(r, &c);
        if (!up)
                return;
        order = calloc(up->n_parts + 1, sizeof(size_t));
        if (!order) {
                s3_error(r, 500, "InternalError", "Out of memory", NULL);
                return;
        }
        if (complete_check_parts(r, up, order, &n) < 0)
                return;
        tmp = tmp_path_new(r->sim);
        joined = calloc(n, 33);
        if (!tmp || !joined || storage_object_path(r->sim, c.bucket, c.key, &path) < 0) {
                s3_error(r, 500, "InternalError", "Out of memory", NULL);
                return;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                k = -errno;
        for (size_t i = 0; k >= 0 && i < n; i++) {
                _cleanup_free_ char *part = strprintf("%s/%u", up->dir, up->parts[order[i]].number);
                k = part ? append_file(fd, part) : -ENOMEM;
                memcpy(joined + 32 * i, up->parts[order[i]].etag, 32);
        }
        if (k >= 0 && close(TAKE_FD(fd)) < 0)
                k = -errno;
        if (k >= 0)
                k = install_file(tmp, path);
        if (k < 0) {
                (void) unlink(tmp);
                reply_install_error(r, k);
                return;
        }
        sha256_hex(joined, 32 * n, hex);
        snprintf(etag, sizeof(etag), "%.32s-%zu", hex, n);
        if (stat(path, &st) == 0)
                etag_cache_put(r->sim, path, &st, etag);
        upload_remove(r->sim, up);
        loc = strprintf("%s%s", r->sim->public_base, r->raw_path);
        b = evbuffer_new();
        if (b) {
                evbuffer_add_printf(b, XML_DECL "<CompleteMultipartUploadResult xmlns=\"" S3_XMLNS
                                               "\">");
                xml_elem(b, "Location", loc ? loc : "");
                xml_elem(b, "Bucket", c.bucket);
                xml_elem(b, "Key", c.key);
                evbuffer_add_printf(b, "<ETag>&quot;%s&quot;</ETag>", etag);
                evbuffer_add_printf(b, "</CompleteMultipartUploadResult>\n");
        }
        s3_reply_xml(r, 200, b);
}

/* DELETE /storage/<bucket>/<key>?uploadId=X: AbortMultipartUpload. */
static void on_abort_multipart(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};
        Upload *up;

        if (s3_begin(r, &c, true) < 0)
                return;
        up = upload_of_request(r, &c);
        if (!up)
                return;
        upload_remove(r->sim, up);
        s3_common_headers(r);
        req_reply(r, 204, "application/xml", NULL);
}

/* Any storage operation avatar-sim does not implement. */
static void on_not_implemented(Req *r) {
        _cleanup_(s3_ctx_done) S3Ctx c = {};

        if (s3_begin(r, &c, false) < 0)
                return;
        s3_error(r, 501, "NotImplemented",
                 "A header or query you provided implies functionality that is not implemented",
                 NULL);
}

/* A storage method on a resource that does not allow it. */
static void on_method_not_allowed(Req *r) {
        s3_error(r, 405, "MethodNotAllowed",
                 "The specified method is not allowed against this resource.", NULL);
}

/* Sets the route name and handler of a storage request. */
static void storage_set(Req *r, const char *route, RouteFn fn) {
        (void) req_set_route(r, route);
        r->handler = fn;
}

/* Routes a /storage request. */
void storage_route(Req *r) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        bool has_upload = req_query(r, "uploadId") != NULL;

        if (s3_split_path(r, &bucket, &key) < 0) {
                storage_set(r, "/storage/{invalid}", on_not_implemented);
                return;
        }
        if (!bucket) {
                storage_set(r, "/storage/", r->method == EVHTTP_REQ_GET ? on_list_buckets
                                                                         : on_method_not_allowed);
                return;
        }
        if (!key) {
                switch (r->method) {
                case EVHTTP_REQ_PUT:
                        storage_set(r, "/storage/{bucket}", on_create_bucket);
                        break;
                case EVHTTP_REQ_HEAD:
                        storage_set(r, "/storage/{bucket}", on_head_bucket);
                        break;
                case EVHTTP_REQ_DELETE:
                        storage_set(r, "/storage/{bucket}", on_delete_bucket);
                        break;
                case EVHTTP_REQ_POST:
                        if (req_query(r, "delete"))
                                storage_set(r, "/storage/{bucket}?delete", on_delete_objects);
                        else
                                storage_set(r, "/storage/{bucket}", on_method_not_allowed);
                        break;
                case EVHTTP_REQ_GET:
                        if (req_query(r, "location"))
                                storage_set(r, "/storage/{bucket}?location", on_bucket_location);
                        else if (req_query(r, "uploads"))
                                storage_set(r, "/storage/{bucket}?uploads", on_list_multipart);
                        else if (req_query(r, "versions") || req_query(r, "policy") || req_query(r, "acl"))
                                storage_set(r, "/storage/{bucket}?subresource", on_not_implemented);
                        else if (streq_ptr(req_query(r, "list-type"), "2"))
                                storage_set(r, "/storage/{bucket}?list-type=2", on_list_objects);
                        else
                                storage_set(r, "/storage/{bucket}", on_list_objects);
                        break;
                default:
                        storage_set(r, "/storage/{bucket}", on_method_not_allowed);
                }
                return;
        }
        switch (r->method) {
        case EVHTTP_REQ_PUT:
                if (has_upload || req_query(r, "partNumber"))
                        storage_set(r, "/storage/{bucket}/{key}?partNumber&uploadId", on_upload_part);
                else
                        storage_set(r, "/storage/{bucket}/{key}", on_put_object);
                break;
        case EVHTTP_REQ_GET:
                if (has_upload || req_query(r, "acl") || req_query(r, "tagging"))
                        storage_set(r, "/storage/{bucket}/{key}?subresource", on_not_implemented);
                else
                        storage_set(r, "/storage/{bucket}/{key}", on_get_object);
                break;
        case EVHTTP_REQ_HEAD:
                storage_set(r, "/storage/{bucket}/{key}", on_get_object);
                break;
        case EVHTTP_REQ_DELETE:
                if (has_upload)
                        storage_set(r, "/storage/{bucket}/{key}?uploadId", on_abort_multipart);
                else
                        storage_set(r, "/storage/{bucket}/{key}", on_delete_object);
                break;
        case EVHTTP_REQ_POST:
                if (req_query(r, "uploads"))
                        storage_set(r, "/storage/{bucket}/{key}?uploads", on_create_multipart);
                else if (has_upload)
                        storage_set(r, "/storage/{bucket}/{key}?uploadId", on_complete_multipart);
                else
                        storage_set(r, "/storage/{bucket}/{key}", on_method_not_allowed);
                break;
        default:
                storage_set(r, "/storage/{bucket}/{key}", on_method_not_allowed);
        }
}
