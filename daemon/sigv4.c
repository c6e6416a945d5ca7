/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4, computed here rather than by libcurl's CURLOPT_AWS_SIGV4.
 *
 * Why our own signer: a signature is only valid if every header named in SignedHeaders is
 * on the wire with the value that was signed. libcurl signs the header list it is given, and
 * that list also holds the lines we use to remove libcurl's own headers ("Expect:" against
 * 100-continue, "Content-Type:" against the form type libcurl puts on POST bodies). libcurl
 * 7.88 lists such removed headers in SignedHeaders with an empty value although they are
 * never sent, and AWS, MinIO and SeaweedFS answer every such request with an error; other
 * libcurl versions sign other subsets. Working around that with different removal lines would
 * tie correctness to the behaviour of one libcurl release. Here the caller (Upstream) hands
 * the signer exactly the header lines it sends (host and x-amz-date included, which it sets
 * itself), and nothing else is signed; removal lines never reach the signer.
 *
 * The canonical request follows the SigV4 specification as S3 applies it:
 *   method
 *   canonical URI    the path percent-decoded, then each byte URI-encoded (unreserved
 *                    characters bare, '/' kept) once: S3 does not double-encode, and a path
 *                    already sent in canonical form comes out unchanged
 *   canonical query  each name and value decoded, then URI-encoded ('/' encoded too), sorted
 *                    by name then value (byte order), "name=" for an empty value; '+' is a
 *                    literal plus, as RFC 3986 has it
 *   headers          names lower-cased, values trimmed with inner runs of spaces collapsed,
 *                    repeated names joined with ',', sorted by name, then the signed list
 *   payload hash     hex SHA-256 of the body, or UNSIGNED-PAYLOAD
 * then the string to sign ("AWS4-HMAC-SHA256", date, scope, hash of the canonical request)
 * and the key derived from the secret, date, region, service and "aws4_request".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "sha256.h"
#include "sigv4.h"

#define SIGV4_HEADERS_MAX 64

/* One header of the canonical request. */
typedef struct CanonHeader {
        char *name;   /* lower-case */
        char *value;  /* trimmed, runs of spaces collapsed, repeats joined with ',' */
} CanonHeader;

/* One query parameter, both halves URI-encoded. */
typedef struct CanonParam {
        char *name;
        char *value;
} CanonParam;

static bool is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '~';
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

char *sigv4_uri_encode(const char *s, size_t len, int keep_slash) {
        static const char hex[] = "0123456789ABCDEF";
        char *out, *o;

        if (len > (SIZE_MAX - 1) / 3)
                return NULL;
        out = o = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (is_unreserved(c) || (keep_slash && c == '/'))
                        *o++ = (char) c;
                else {
                        *o++ = '%';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 15];
                }
        }
        *o = '\0';
        return out;
}

/* Percent-decodes len bytes; a '%' not followed by two hex digits stays literal, as S3 takes
 * it. Returns malloc'd (NUL-terminated, *ret_len bytes) or NULL on OOM. */
static char *uri_decode(const char *s, size_t len, size_t *ret_len) {
        char *out = malloc(len + 1);
        size_t n = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < len && (hi = hex_value(s[i + 1])) >= 0 &&
                    (lo = hex_value(s[i + 2])) >= 0) {
                        out[n++] = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        out[n++] = s[i];
        }
        out[n] = '\0';
        *ret_len = n;
        return out;
}

/* Decodes, then encodes: the canonical form of a path or a query half. */
static char *canonical_component(const char *s, size_t len, bool keep_slash) {
        _cleanup_free_ char *raw = NULL;
        size_t n;

        raw = uri_decode(s, len, &n);
        if (!raw)
                return NULL;
        return sigv4_uri_encode(raw, n, keep_slash);
}

static int param_compare(const void *a, const void *b) {
        const CanonParam *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

static int header_compare(const void *a, const void *b) {
        return strcmp(((const CanonHeader *) a)->name, ((const CanonHeader *) b)->name);
}

/* Writes the canonical query string to f. */
static int write_canonical_query(FILE *f, const char *query) {
        CanonParam *params = NULL;
        size_t n = 0, alloc = 0;
        int r = 0;

        for (const char *p = query; p && *p;) {
                const char *amp = strchrnul(p, '&'), *eq;

                if (amp == p) { /* "a&&b": no parameter between the ampersands */
                        p++;
                        continue;
                }
                if (n == alloc) {
                        CanonParam *np = reallocarray(params, alloc * 2 + 8, sizeof(*params));

                        if (!np) {
                                r = -ENOMEM;
                                goto out;
                        }
                        params = np;
                        alloc = alloc * 2 + 8;
                }
                eq = memchr(p, '=', (size_t) (amp - p));
                params[n].name = canonical_component(p, (size_t) ((eq ?: amp) - p), false);
                params[n].value = eq ? canonical_component(eq + 1, (size_t) (amp - eq - 1), false)
                                     : strdup("");
                n++;
                if (!params[n - 1].name || !params[n - 1].value) {
                        r = -ENOMEM;
                        goto out;
                }
                p = *amp ? amp + 1 : amp;
        }
        if (n > 1)
                qsort(params, n, sizeof(*params), param_compare);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s=%s", i > 0 ? "&" : "", params[i].name, params[i].value);
out:
        for (size_t i = 0; i < n; i++) {
                free(params[i].name);
                free(params[i].value);
        }
        free(params);
        return r;
}

/* The value as SigV4 wants it: no leading or trailing whitespace, runs of spaces as one. */
static char *header_value_trim(const char *v) {
        char *out, *o;
        const char *end;

        while (*v == ' ' || *v == '\t')
                v++;
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        out = o = malloc((size_t) (end - v) + 1);
        if (!out)
                return NULL;
        for (const char *p = v; p < end; p++) {
                bool space = *p == ' ' || *p == '\t';

                if (space && o > out && o[-1] == ' ')
                        continue;
                *o++ = space ? ' ' : *p;
        }
        *o = '\0';
        return out;
}

/* Parses the header lines into sorted canonical headers, merging repeated names. */
static int canonical_headers(const SigV4Request *rq, CanonHeader *h, size_t *ret_n) {
        size_t n = 0;

        if (rq->n_headers > SIGV4_HEADERS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < rq->n_headers; i++) {
                const char *line = rq->headers[i], *colon = line ? strchr(line, ':') : NULL;
                _cleanup_free_ char *name = NULL, *value = NULL;
                size_t j;

                if (!colon || colon == line)
                        return -EINVAL;
                name = strndup(line, (size_t) (colon - line));
                value = header_value_trim(colon + 1);
                if (!name || !value)
                        return -ENOMEM;
                for (char *p = name; *p; p++) {
                        if (*p <= ' ' || *p == ';')
                                return -EINVAL;
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char) (*p - 'A' + 'a');
                }
                for (j = 0; j < n; j++)
                        if (streq(h[j].name, name))
                                break;
                if (j < n) {
                        char *joined;

                        if (asprintf(&joined, "%s,%s", h[j].value, value) < 0)
                                return -ENOMEM;
                        free(h[j].value);
                        h[j].value = joined;
                } else {
                        h[n].name = TAKE_PTR(name);
                        h[n].value = TAKE_PTR(value);
                        n++;
                }
        }
        if (n > 1)
                qsort(h, n, sizeof(*h), header_compare);
        *ret_n = n;
        return 0;
}

static const char *header_find(const CanonHeader *h, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(h[i].name, name))
                        return h[i].value;
        return NULL;
}

/* A scope component: non-empty, no separator of the Credential field, no whitespace. */
static bool scope_part_is_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s == '/' || *s == ',' || *s == '=' || (unsigned char) *s <= ' ')
                        return false;
        return true;
}

static bool amz_date_is_valid(const char *d) {
        if (!d || strlen(d) != SIGV4_DATE_SIZE - 1 || d[8] != 'T' || d[15] != 'Z')
                return false;
        for (unsigned i = 0; i < 15; i++)
                if (i != 8 && (d[i] < '0' || d[i] > '9'))
                        return false;
        return true;
}

void sigv4_format_date(time_t t, char out[static SIGV4_DATE_SIZE]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(out, SIGV4_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm) == 0)
                strcpy(out, "19700101T000000Z");
}

int sigv4_authorization(const SigV4Request *rq, char **ret_authorization, char **ret_canonical) {
        CanonHeader h[SIGV4_HEADERS_MAX] = {};
        _cleanup_free_ char *canonical = NULL, *signed_list = NULL, *string_to_sign = NULL,
                            *path = NULL, *secret = NULL;
        uint8_t digest[SHA256_DIGEST_SIZE], key[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE], date[9], *auth = NULL;
        const char *v;
        size_t n = 0, len;
        FILE *f;
        int r;

        if (!rq || !rq->method || !rq->path || !rq->payload_hash || !ret_authorization ||
            !amz_date_is_valid(rq->amz_date) || !scope_part_is_valid(rq->region) ||
            !scope_part_is_valid(rq->service) || !scope_part_is_valid(rq->access_key_id) ||
            !rq->secret_access_key || (rq->n_headers > 0 && !rq->headers))
                return -EINVAL;

        r = canonical_headers(rq, h, &n);
        if (r < 0)
                goto out;
        /* What makes the signature worth anything: the host it is for, its time, and (for
         * S3) the payload hash the server checks the body against. */
        r = -EINVAL;
        if (!header_find(h, n, "host") || !(v = header_find(h, n, "x-amz-date")) ||
            !streq(v, rq->amz_date))
                goto out;
        if (streq(rq->service, "s3") &&
            (!(v = header_find(h, n, "x-amz-content-sha256")) || !streq(v, rq->payload_hash)))
                goto out;

        r = -ENOMEM;
        path = canonical_component(rq->path, strlen(rq->path), true);
        if (!path)
                goto out;

        f = open_memstream(&signed_list, &len);
        if (!f)
                goto out;
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s", i > 0 ? ";" : "", h[i].name);
        if (fclose(f) != 0)
                goto out;

        f = open_memstream(&canonical, &len);
        if (!f)
                goto out;
        fprintf(f, "%s\n%s%s\n", rq->method, path[0] == '/' ? "" : "/", path);
        if (write_canonical_query(f, rq->query) < 0) {
                fclose(f);
                goto out;
        }
        fputc('\n', f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s:%s\n", h[i].name, h[i].value);
        fprintf(f, "\n%s\n%s", signed_list, rq->payload_hash);
        if (fclose(f) != 0)
                goto out;

        memcpy(date, rq->amz_date, 8);
        date[8] = '\0';
        sha256(canonical, strlen(canonical), digest);
        sha256_hex(digest, hex);
        if (asprintf(&string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
                     rq->amz_date, date, rq->region, rq->service, hex) < 0) {
                string_to_sign = NULL;
                goto out;
        }

        /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
         * "aws4_request") */
        if (asprintf(&secret, "AWS4%s", rq->secret_access_key) < 0) {
                secret = NULL;
                goto out;
        }
        hmac_sha256(secret, strlen(secret), date, strlen(date), key);
        explicit_bzero_safe(secret, strlen(secret));
        hmac_sha256(key, sizeof(key), rq->region, strlen(rq->region), key);
        hmac_sha256(key, sizeof(key), rq->service, strlen(rq->service), key);
        hmac_sha256(key, sizeof(key), "aws4_request", STRLEN("aws4_request"), key);
        hmac_sha256(key, sizeof(key), string_to_sign, strlen(string_to_sign), digest);
        sha256_hex(digest, hex);

        if (asprintf(&auth,
                     "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,"
                     "Signature=%s",
                     rq->access_key_id, date, rq->region, rq->service, signed_list, hex) < 0)
                goto out;
        *ret_authorization = auth;
        if (ret_canonical)
                *ret_canonical = TAKE_PTR(canonical);
        r = 0;
out:
        explicit_bzero_safe(key, sizeof(key));
        explicit_bzero_safe(digest, sizeof(digest));
        for (size_t i = 0; i < ELEMENTSOF(h); i++) {
                free(h[i].name);
                free(h[i].value);
        }
        return r;
}
