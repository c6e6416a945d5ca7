/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "sim-util.h"

/* Wall-clock time in microseconds since the epoch. */
int64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Monotonic time in microseconds. */
uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Writes "2026-05-01T09:12:03.120000+00:00" for usec into buf. */
void format_iso8601(int64_t usec, char buf[static ISO8601_LEN]) {
        time_t sec = (time_t) (usec / 1000000);
        struct tm tm;

        size_t n;

        gmtime_r(&sec, &tm);
        n = strftime(buf, ISO8601_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, ISO8601_LEN - n, ".%06u+00:00", (unsigned) (usec % 1000000));
}

/* Writes an HTTP date for a time_t into buf. */
void format_http_date(int64_t sec, char *buf, size_t size) {
        time_t t = (time_t) sec;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Fills p with n random bytes from getrandom(). */
int random_bytes(void *p, size_t n) {
        uint8_t *q = p;

        while (n > 0) {
                ssize_t k = getrandom(q, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                q += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Formats 16 bytes as a version-4-shaped UUID. */
static void uuid_format(uint8_t b[16], char out[static UUID_STR_LEN]) {
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(out, UUID_STR_LEN,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
}

/* Writes a random UUID4 string into out. */
void uuid4(char out[static UUID_STR_LEN]) {
        uint8_t b[16];

        if (random_bytes(b, sizeof(b)) < 0) {
                /* getrandom() does not fail once the pool is initialised; stay unique anyway. */
                uint64_t t = mono_usec();
                memset(b, 0, sizeof(b));
                memcpy(b, &t, sizeof(t));
        }
        uuid_format(b, out);
}

/* Writes a UUID-shaped string derived from SHA-256 of seed. */
void uuid_from_seed(const char *seed, char out[static UUID_STR_LEN]) {
        uint8_t d[SHA256_LEN];

        sha256_buf(seed, strlen(seed), d);
        uuid_format(d, out);
}

/* True when s is a canonical UUID. */
bool uuid_is_valid(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!strchr("0123456789abcdefABCDEF", s[i]))
                        return false;
        }
        return true;
}

/* Writes 2n lowercase hex digits and a NUL. */
void hex_encode(const uint8_t *p, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 0xf];
        }
        out[2 * n] = '\0';
}

/* Writes n random characters from alphabet into out and a NUL. */
int random_string(char *out, size_t n, const char *alphabet) {
        size_t l = strlen(alphabet);
        uint8_t b[64];
        int r;

        assert_return(l > 0 && l <= 256, -EINVAL);
        for (size_t i = 0; i < n; i += sizeof(b)) {
                size_t k = MIN(sizeof(b), n - i);
                r = random_bytes(b, k);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < k; j++)
                        out[i + j] = alphabet[b[j] % l];
        }
        out[n] = '\0';
        return 0;
}

/* SHA-256 of a buffer. */
void sha256_buf(const void *p, size_t n, uint8_t out[static SHA256_LEN]) {
        unsigned len = SHA256_LEN;

        if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
                memset(out, 0, SHA256_LEN);
}

/* Lowercase hex SHA-256 of a buffer. */
void sha256_hex(const void *p, size_t n, char out[static SHA256_HEX_LEN]) {
        uint8_t d[SHA256_LEN];

        sha256_buf(p, n, d);
        hex_encode(d, sizeof(d), out);
}

/* Value of one hex digit, or -1. */
static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decodes n bytes of s into a new string. */
char *url_decode(const char *s, size_t n, bool plus_is_space) {
        _cleanup_free_ char *out = malloc(n + 1);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '%') {
                        int hi, lo;
                        if (i + 2 >= n)
                                return NULL;
                        hi = unhex(s[i + 1]);
                        lo = unhex(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return NULL;
                        c = (char) (hi * 16 + lo);
                        i += 2;
                } else if (c == '+' && plus_is_space)
                        c = ' ';
                if (c == '\0')
                        return NULL;
                out[o++] = c;
        }
        out[o] = '\0';
        return TAKE_PTR(out);
}

/* Percent-encodes s the SigV4 way. */
char *url_encode(const char *s, bool keep_slash) {
        static const char digits[] = "0123456789ABCDEF";
        size_t n = strlen(s), o = 0;
        char *out = malloc(3 * n + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash))
                        out[o++] = (char) c;
                else {
                        out[o++] = '%';
                        out[o++] = digits[c >> 4];
                        out[o++] = digits[c & 0xf];
                }
        }
        out[o] = '\0';
        return out;
}

/* Frees an array from query_parse(). */
void query_free(QueryParam *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].value);
        }
        free(p);
}

/* Parses a raw query string into decoded pairs. */
int query_parse(const char *q, bool plus_is_space, QueryParam **ret, size_t *ret_n) {
        QueryParam *params = NULL;
        size_t n = 0;

        for (const char *p = q; p && *p;) {
                const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
                const char *eq = memchr(p, '=', (size_t) (end - p));
                QueryParam *np;

                if (end == p) {
                        p = amp ? amp + 1 : end;
                        continue;
                }
                if (n >= 256) {
                        query_free(params, n);
                        return -E2BIG;
                }
                np = realloc(params, (n + 1) * sizeof(QueryParam));
                if (!np) {
                        query_free(params, n);
                        return -ENOMEM;
                }
                params = np;
                params[n].name = url_decode(p, (size_t) ((eq ? eq : end) - p), plus_is_space);
                params[n].value = eq ? url_decode(eq + 1, (size_t) (end - eq - 1), plus_is_space)
                                     : strdup("");
                n++;
                if (!params[n - 1].name || !params[n - 1].value) {
                        query_free(params, n);
                        return -EINVAL;
                }
                p = amp ? amp + 1 : end;
        }
        *ret = params;
        *ret_n = n;
        return 0;
}

/* Returns the value of the first parameter called name, or NULL. */
const char *query_get(const QueryParam *p, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(p[i].name, name))
                        return p[i].value;
        return NULL;
}

/* True when a parameter called name is present. */
bool query_has(const QueryParam *p, size_t n, const char *name) {
        return query_get(p, n, name) != NULL;
}

/* mkdir -p with mode 0700. */
int mkdir_p(const char *path) {
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        for (char *s = copy + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* nftw callback that removes one entry. */
static int rm_one(const char *path, const struct stat *st _unused_, int flag,
                  struct FTW *ftw _unused_) {
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? -1 : 0;
        return unlink(path) < 0 ? -1 : 0;
}

/* Removes a directory tree without following symlinks. */
int rm_rf(const char *path) {
        if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

/* Writes len bytes to fd, retrying on short writes. */
int write_all(int fd, const void *p, size_t len) {
        const uint8_t *q = p;

        while (len > 0) {
                ssize_t k = write(fd, q, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                q += k;
                len -= (size_t) k;
        }
        return 0;
}

/* Writes data to path atomically. */
int write_file_atomic(const char *path, const void *data, size_t len) {
        _cleanup_free_ char *tmp = strprintf("%s.tmp.%d", path, (int) getpid());
        _cleanup_close_ int fd = -1;
        int r;

        if (!tmp)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        fd = safe_close(fd);
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

/* Returns a json string, or json null when s is NULL. */
json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* Returns an ISO-8601 string for usec, or json null when usec is 0. */
json_object *json_time_or_null(int64_t usec) {
        char buf[ISO8601_LEN];

        if (usec == 0)
                return NULL;
        format_iso8601(usec, buf);
        return json_object_new_string(buf);
}

/* Serializes obj in the wire form. */
const char *json_wire(json_object *obj, size_t *ret_len) {
        return json_object_to_json_string_length(
                obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, ret_len);
}

/* Moves the contents of b into a new string and frees b. */
char *evbuffer_take_string(struct evbuffer *b) {
        size_t n = evbuffer_get_length(b);
        char *s = malloc(n + 1);

        if (s) {
                evbuffer_remove(b, s, n);
                s[n] = '\0';
        }
        evbuffer_free(b);
        return s;
}

/* Appends s escaped for XML. */
void xml_escape(struct evbuffer *b, const char *s) {
        for (; *s; s++) {
                switch (*s) {
                case '&':
                        evbuffer_add(b, "&amp;", 5);
                        break;
                case '<':
                        evbuffer_add(b, "&lt;", 4);
                        break;
                case '>':
                        evbuffer_add(b, "&gt;", 4);
                        break;
                case '"':
                        evbuffer_add(b, "&quot;", 6);
                        break;
                case '\'':
                        evbuffer_add(b, "&apos;", 6);
                        break;
                default:
                        evbuffer_add(b, s, 1);
                }
        }
}

/* 64-bit FNV-1a of a string, continuing from h. */
uint64_t fnv1a(uint64_t h, const char *s) {
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * UINT64_C(1099511628211);
        return h;
}

/* Returns strdup(s) for a non-NULL s, NULL otherwise. */
char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* Returns a new formatted string, or NULL on OOM. */
char *strprintf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

/* The digest (SHA-256, MD5) of an evbuffer's contents, without draining it. */
int evbuffer_digest(struct evbuffer *b, const EVP_MD *type, uint8_t *d, unsigned *len) {
        struct evbuffer_ptr pos;
        struct evbuffer_iovec v[16];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t left = evbuffer_get_length(b);
        int r = 0;

        if (!md || EVP_DigestInit_ex(md, type, NULL) != 1) {
                EVP_MD_CTX_free(md);
                return -ENOMEM;
        }
        evbuffer_ptr_set(b, &pos, 0, EVBUFFER_PTR_SET);
        while (left > 0) {
                int n = evbuffer_peek(b, (ev_ssize_t) left, &pos, v, ELEMENTSOF(v));
                size_t done = 0;
                if (n <= 0)
                        break;
                for (int i = 0; i < MIN(n, (int) ELEMENTSOF(v)); i++) {
                        size_t l = MIN(v[i].iov_len, left - done);
                        EVP_DigestUpdate(md, v[i].iov_base, l);
                        done += l;
                }
                left -= done;
                if (evbuffer_ptr_set(b, &pos, done, EVBUFFER_PTR_ADD) < 0)
                        break;
        }
        if (EVP_DigestFinal_ex(md, d, len) != 1)
                r = -EIO;
        EVP_MD_CTX_free(md);
        return r;
}

/* Lowercase hex SHA-256 of an evbuffer's contents, without draining it. */
void evbuffer_sha256_hex(struct evbuffer *b, char out[static SHA256_HEX_LEN]) {
        uint8_t d[SHA256_LEN];
        unsigned len = SHA256_LEN;

        if (evbuffer_digest(b, EVP_sha256(), d, &len) < 0) {
                memset(out, '0', 64);
                out[64] = '\0';
                return;
        }
        hex_encode(d, sizeof(d), out);
}

/* Content-Type for an object, from its extension. */
const char *content_type_of(const char *key) {
        static const struct {
                const char *ext;
                const char *type;
        } types[] = {
                { ".csv", "text/csv" },           { ".json", "application/json" },
                { ".pdf", "application/pdf" },    { ".html", "text/html" },
                { ".yaml", "application/yaml" },  { ".txt", "text/plain" },
                { ".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
        };
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (endswith(key, types[i].ext))
                        return types[i].type;
        return "application/octet-stream";
}

/* Parses "bytes=a-b", "bytes=a-", "bytes=-n". 0: range set; 1: no usable range; -ERANGE. */
int parse_range(const char *h, off_t size, off_t *ret_start, off_t *ret_len) {
        long long a = -1, b = -1;
        const char *s;
        char *end;

        if (!h || !(s = startswith(h, "bytes=")) || strchr(s, ','))
                return 1;
        if (*s == '-') {
                errno = 0;
                b = strtoll(s + 1, &end, 10);
                if (errno || end == s + 1 || *end || b < 0)
                        return 1;
                if (b == 0 || size == 0)
                        return -ERANGE;
                *ret_start = size - MIN((off_t) b, size);
                *ret_len = size - *ret_start;
                return 0;
        }
        errno = 0;
        a = strtoll(s, &end, 10);
        if (errno || end == s || *end != '-' || a < 0)
                return 1;
        s = end + 1;
        if (*s) {
                b = strtoll(s, &end, 10);
                if (errno || *end || b < a)
                        return 1;
        }
        if (a >= size)
                return -ERANGE;
        *ret_start = a;
        *ret_len = (b < 0 || b >= size ? size - 1 : (off_t) b) - a + 1;
        return 0;
}
