/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <time.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "sim-sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define MAX_SIGNED_HEADERS 64

/* Fills err and returns -EACCES. */
static int fail(SigV4Error *err, int status, const char *code, const char *fmt, ...)
        _printf_(4, 5);
static int fail(SigV4Error *err, int status, const char *code, const char *fmt, ...) {
        va_list ap;

        err->status = status;
        err->code = code;
        va_start(ap, fmt);
        if (vasprintf(&err->message, fmt, ap) < 0)
                err->message = NULL;
        va_end(ap);
        return -EACCES;
}

/* Frees the strings of an error. */
void sigv4_error_done(SigV4Error *err) {
        err->message = mfree(err->message);
        err->canonical_request = mfree(err->canonical_request);
        err->string_to_sign = mfree(err->string_to_sign);
}

/* The fields of the Authorization header. Strings owned. */
typedef struct AuthFields {
        char *credential;
        char *signed_headers;
        char *signature;
} AuthFields;

/* Frees the fields. */
static void auth_fields_done(AuthFields *f) {
        free(f->credential);
        free(f->signed_headers);
        free(f->signature);
}

/* Splits "Credential=a, SignedHeaders=b, Signature=c" (after the algorithm). */
static int parse_auth_fields(const char *s, AuthFields *f) {
        while (*s) {
                const char *comma, *eq;
                size_t l;
                char **slot = NULL;

                while (*s == ' ' || *s == ',' || *s == '\t')
                        s++;
                if (!*s)
                        break;
                comma = strchr(s, ',');
                l = comma ? (size_t) (comma - s) : strlen(s);
                while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
                        l--;
                eq = memchr(s, '=', l);
                if (!eq)
                        return -EINVAL;
                if ((size_t) (eq - s) == 10 && strncmp(s, "Credential", 10) == 0)
                        slot = &f->credential;
                else if ((size_t) (eq - s) == 13 && strncmp(s, "SignedHeaders", 13) == 0)
                        slot = &f->signed_headers;
                else if ((size_t) (eq - s) == 9 && strncmp(s, "Signature", 9) == 0)
                        slot = &f->signature;
                if (slot) {
                        if (*slot)
                                return -EINVAL;
                        *slot = strndup(eq + 1, l - (size_t) (eq + 1 - s));
                        if (!*slot)
                                return -ENOMEM;
                }
                s = comma ? comma + 1 : s + strlen(s);
        }
        return f->credential && f->signed_headers && f->signature ? 0 : -EINVAL;
}

/* Parses "YYYYMMDDTHHMMSSZ" into seconds since the epoch. */
static int parse_amz_date(const char *s, int64_t *ret) {
        struct tm tm = {};

        if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
                return -EINVAL;
        for (int i = 0; i < 15; i++)
                if (i != 8 && !isdigit((unsigned char) s[i]))
                        return -EINVAL;
        tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') -
                     1900;
        tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
        tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
        tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
        tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
        tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
        if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
            tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                return -EINVAL;
        *ret = (int64_t) timegm(&tm);
        return 0;
}

/*
 * Parses an RFC 1123 Date header ("Fri, 24 May 2013 00:00:00 GMT") into seconds since the
 * epoch and its "YYYYMMDDTHHMMSSZ" form, which the string to sign then carries.
 */
static int parse_http_date(const char *s, int64_t *ret, char iso[static 17]) {
        struct tm tm = {};
        const char *end;
        time_t t;

        if (!s)
                return -EINVAL;
        end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (!end || *end)
                return -EINVAL;
        t = timegm(&tm);
        if (!gmtime_r(&t, &tm) || strftime(iso, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
                return -EINVAL;
        *ret = (int64_t) t;
        return 0;
}

/* Appends a header value trimmed, with inner runs of spaces collapsed to one. */
static void add_trimmed(struct evbuffer *b, const char *v) {
        bool space = false, started = false;

        for (; *v; v++) {
                if (*v == ' ' || *v == '\t') {
                        space = started;
                        continue;
                }
                if (space)
                        evbuffer_add(b, " ", 1);
                evbuffer_add(b, v, 1);
                space = false;
                started = true;
        }
}

/* qsort comparator for C strings. */
static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* qsort comparator for encoded query pairs: by name, then by value. */
static int cmp_pair(const void *a, const void *b) {
        const QueryParam *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

/* Appends the canonical query string. */
static int add_canonical_query(struct evbuffer *b, const char *raw_query) {
        QueryParam *params = NULL;
        size_t n = 0;
        int r;

        r = query_parse(raw_query, true, &params, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char *en = url_encode(params[i].name, false), *ev = url_encode(params[i].value, false);
                if (!en || !ev) {
                        free(en);
                        free(ev);
                        query_free(params, n);
                        return -ENOMEM;
                }
                free(params[i].name);
                free(params[i].value);
                params[i].name = en;
                params[i].value = ev;
        }
        if (n > 0)
                qsort(params, n, sizeof(QueryParam), cmp_pair);
        for (size_t i = 0; i < n; i++)
                evbuffer_add_printf(b, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
        query_free(params, n);
        return 0;
}

/*
 * Appends the canonical headers and the sorted signed header list. A signed header the
 * request does not carry is refused rather than signed as empty: AWS, MinIO and SeaweedFS
 * refuse it, and a client that signs headers it never sends must not pass here.
 */
static int add_canonical_headers(struct evbuffer *b, const struct evkeyvalq *headers,
                                 char **names, size_t n, struct evbuffer *signed_list,
                                 SigV4Error *err) {
        for (size_t i = 0; i < n; i++) {
                bool first = true;
                const struct evkeyval *h;

                evbuffer_add_printf(b, "%s:", names[i]);
                TAILQ_FOREACH(h, headers, next) {
                        if (strcasecmp(h->key, names[i]) != 0)
                                continue;
                        if (!first)
                                evbuffer_add(b, ",", 1);
                        add_trimmed(b, h->value);
                        first = false;
                }
                if (first)
                        return fail(err, 403, "AccessDenied",
                                    "signed header missing: %s (SignedHeaders names a header "
                                    "the request does not carry)",
                                    names[i]);
                evbuffer_add(b, "\n", 1);
                evbuffer_add_printf(signed_list, "%s%s", i ? ";" : "", names[i]);
        }
        return 0;
}

/* HMAC-SHA256. */
static void hmac(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t out[static SHA256_LEN]) {
        unsigned out_len = SHA256_LEN;

        if (!HMAC(EVP_sha256(), key, (int) key_len, data, len, out, &out_len))
                memset(out, 0, SHA256_LEN);
}

/* The value of the first header called name, or NULL. */
static const char *header_get(const struct evkeyvalq *headers, const char *name) {
        const struct evkeyval *h;

        TAILQ_FOREACH(h, headers, next)
                if (strcasecmp(h->key, name) == 0)
                        return h->value;
        return NULL;
}

/* Checks x-amz-content-sha256 against the body. */
static int check_payload(const SigV4Request *rq, const char *value, SigV4Error *err) {
        if (!value)
                return fail(err, 400, "InvalidRequest",
                            "Missing required header for this request: x-amz-content-sha256");
        if (streq(value, "UNSIGNED-PAYLOAD"))
                return 0;
        if (startswith(value, "STREAMING-"))
                return fail(err, 501, "NotImplemented",
                            "avatar-sim does not implement aws-chunked payloads (%s)", value);
        if (strlen(value) != 64 || strspn(value, "0123456789abcdefABCDEF") != 64)
                return fail(err, 400, "InvalidArgument",
                            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 "
                            "value");
        if (strcasecmp(value, rq->payload_sha256) != 0)
                return fail(err, 400, "XAmzContentSHA256Mismatch",
                            "The provided 'x-amz-content-sha256' header does not match what "
                            "was computed.");
        return 0;
}

/* Splits the signed header list into sorted lowercase names. */
static int split_signed_headers(const char *list, char **names, size_t *ret_n,
                                SigV4Error *err) {
        size_t n = 0;

        for (const char *p = list; *p;) {
                const char *semi = strchr(p, ';');
                size_t l = semi ? (size_t) (semi - p) : strlen(p);

                if (l == 0 || n >= MAX_SIGNED_HEADERS)
                        return fail(err, 400, "AuthorizationHeaderMalformed",
                                    "The authorization header is malformed; invalid "
                                    "SignedHeaders.");
                names[n] = strndup(p, l);
                if (!names[n])
                        return -ENOMEM;
                for (char *c = names[n]; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                n++;
                p = semi ? semi + 1 : p + l;
        }
        *ret_n = n;
        qsort(names, n, sizeof(char *), cmp_str);
        for (size_t i = 1; i < n; i++)
                if (streq(names[i - 1], names[i]))
                        return fail(err, 400, "AuthorizationHeaderMalformed",
                                    "The authorization header is malformed; SignedHeaders "
                                    "names %s twice.",
                                    names[i]);
        return 0;
}

/* Whether name is one of the n sorted signed header names. */
static bool is_signed(char **names, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return true;
        return false;
}

/*
 * Checks that host and the header giving the request time (date_header) are signed, and that
 * every x-amz-* header is: an unsigned one could be changed in transit.
 */
static int check_signed_set(const SigV4Request *rq, char **names, size_t n,
                            const char *date_header, SigV4Error *err) {
        const struct evkeyval *h;

        if (!is_signed(names, n, "host"))
                return fail(err, 403, "AccessDenied",
                            "The host header must be part of the signed headers.");
        if (!is_signed(names, n, date_header))
                return fail(err, 403, "AccessDenied",
                            "The %s header must be part of the signed headers.", date_header);
        TAILQ_FOREACH(h, rq->headers, next) {
                bool found = false;

                if (strncasecmp(h->key, "x-amz-", 6) != 0)
                        continue;
                for (size_t i = 0; i < n && !found; i++)
                        found = strcasecmp(h->key, names[i]) == 0;
                if (!found)
                        return fail(err, 403, "AccessDenied",
                                    "There were headers present in the request which were not "
                                    "signed: %s",
                                    h->key);
        }
        return 0;
}

/*
 * Builds the canonical request: the path and the query are decoded and re-encoded (unreserved
 * characters bare, the rest %XX upper-case, UTF-8 bytes one by one), query pairs sorted by
 * encoded name then value, an absent value as "name=". Returns 0 with *ret (owned) or a
 * negative errno with err filled in.
 */
static int canonical_request(const SigV4Request *rq, char **names, size_t n, const char *payload,
                             char **ret, SigV4Error *err) {
        struct evbuffer *b = evbuffer_new(), *sl = evbuffer_new();
        _cleanup_free_ char *decoded = NULL, *uri = NULL, *signed_list = NULL;
        int r = -ENOMEM;

        if (!b || !sl)
                goto out;
        decoded = url_decode(rq->raw_path, strlen(rq->raw_path), false);
        if (!decoded) {
                r = fail(err, 400, "InvalidURI", "Couldn't parse the specified URI.");
                goto out;
        }
        uri = url_encode(decoded, true);
        if (!uri)
                goto out;
        evbuffer_add_printf(b, "%s\n%s\n", rq->method, isempty(uri) ? "/" : uri);
        r = add_canonical_query(b, rq->raw_query);
        if (r == -EINVAL || r == -E2BIG)
                r = fail(err, 400, "InvalidURI", "Couldn't parse the query of the specified URI.");
        if (r < 0)
                goto out;
        evbuffer_add(b, "\n", 1);
        r = add_canonical_headers(b, rq->headers, names, n, sl, err);
        if (r < 0)
                goto out;
        signed_list = evbuffer_take_string(sl);
        sl = NULL;
        r = -ENOMEM;
        if (!signed_list)
                goto out;
        evbuffer_add_printf(b, "\n%s\n%s", signed_list, payload);
        *ret = evbuffer_take_string(b);
        b = NULL;
        r = *ret ? 0 : -ENOMEM;
out:
        if (b)
                evbuffer_free(b);
        if (sl)
                evbuffer_free(sl);
        return r;
}

/* Verifies the signature of rq. */
int sigv4_verify(const SigV4Request *rq, SigV4SecretLookup lookup, void *userdata,
                 char **ret_key_id, SigV4Error *err) {
        const char *authz = header_get(rq->headers, "Authorization"), *amz_date, *payload, *secret;
        const char *date_header = "x-amz-date";
        _cleanup_free_ char *creq = NULL, *sts = NULL, *kprefixed = NULL;
        _cleanup_(auth_fields_done) AuthFields f = {};
        char *names[MAX_SIGNED_HEADERS] = {}, *cparts[5] = {}, *cred_copy = NULL;
        char creq_hash[SHA256_HEX_LEN], sig[SHA256_HEX_LEN], date_buf[17];
        uint8_t k[SHA256_LEN], out[SHA256_LEN];
        size_t n_names = 0, n_parts = 0;
        int64_t t;
        int r;

        memset(err, 0, sizeof(*err));
        if (!authz) {
                if (rq->raw_query && strstr(rq->raw_query, "X-Amz-Signature="))
                        return fail(err, 403, "AccessDenied",
                                    "avatar-sim does not accept presigned URLs");
                return fail(err, 403, "AccessDenied", "Access Denied");
        }
        if (!startswith(authz, ALGORITHM " "))
                return fail(err, 400, "InvalidArgument",
                            "Unsupported Authorization Type: only " ALGORITHM " is accepted");
        r = parse_auth_fields(authz + STRLEN(ALGORITHM " "), &f);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(err, 400, "AuthorizationHeaderMalformed",
                            "The authorization header is malformed.");

        /* Credential=KEYID/YYYYMMDD/region/service/aws4_request */
        cred_copy = strdup(f.credential);
        if (!cred_copy)
                return -ENOMEM;
        for (char *p = cred_copy, *slash; p && n_parts < 5; p = slash ? slash + 1 : NULL) {
                slash = strchr(p, '/');
                if (slash)
                        *slash = '\0';
                cparts[n_parts++] = p;
                if (!slash)
                        break;
        }
        r = 0;
        if (n_parts != 5 || strchr(f.credential + (cparts[4] - cred_copy), '/') ||
            isempty(cparts[0]) || isempty(cparts[2]) || !streq(cparts[4], "aws4_request"))
                r = fail(err, 400, "AuthorizationHeaderMalformed",
                         "The authorization header is malformed; the Credential is mal-formed; "
                         "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
        else if (!streq(cparts[3], "s3"))
                r = fail(err, 400, "AuthorizationHeaderMalformed",
                         "The authorization header is malformed; incorrect service \"%s\". "
                         "This endpoint belongs to \"s3\".",
                         cparts[3]);
        else if (lookup(userdata, cparts[0], &secret) < 0)
                r = fail(err, 403, "InvalidAccessKeyId",
                         "The AWS Access Key Id you provided does not exist in our records.");
        if (r < 0)
                goto out;

        /* the request time: x-amz-date, or else Date (RFC 1123), which must then be signed */
        amz_date = header_get(rq->headers, "x-amz-date");
        if (amz_date)
                r = parse_amz_date(amz_date, &t);
        else {
                date_header = "date";
                r = parse_http_date(header_get(rq->headers, "Date"), &t, date_buf);
                amz_date = date_buf;
        }
        if (r < 0) {
                r = fail(err, 403, "AccessDenied",
                         "AWS authentication requires a valid Date or x-amz-date header");
                goto out;
        }
        if (strncmp(amz_date, cparts[1], 8) != 0 || strlen(cparts[1]) != 8) {
                r = fail(err, 400, "AuthorizationHeaderMalformed",
                         "The authorization header is malformed; Invalid credential date. Date "
                         "is not the same as X-Amz-Date.");
                goto out;
        }
        if (t < rq->now_sec - SIGV4_MAX_SKEW_SEC || t > rq->now_sec + SIGV4_MAX_SKEW_SEC) {
                r = fail(err, 403, "RequestTimeTooSkewed",
                         "The difference between the request time and the current time is too "
                         "large.");
                goto out;
        }
        payload = header_get(rq->headers, "x-amz-content-sha256");
        r = check_payload(rq, payload, err);
        if (r < 0)
                goto out;
        r = split_signed_headers(f.signed_headers, names, &n_names, err);
        if (r < 0)
                goto out;
        r = check_signed_set(rq, names, n_names, date_header, err);
        if (r < 0)
                goto out;
        r = canonical_request(rq, names, n_names, payload, &creq, err);
        if (r < 0)
                goto out;
        sha256_hex(creq, strlen(creq), creq_hash);
        sts = strprintf(ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, cparts[1],
                        cparts[2], cparts[3], creq_hash);
        kprefixed = strprintf("AWS4%s", secret);
        if (!sts || !kprefixed) {
                r = -ENOMEM;
                goto out;
        }
        hmac(kprefixed, strlen(kprefixed), cparts[1], strlen(cparts[1]), k);
        hmac(k, sizeof(k), cparts[2], strlen(cparts[2]), k);
        hmac(k, sizeof(k), cparts[3], strlen(cparts[3]), k);
        hmac(k, sizeof(k), "aws4_request", STRLEN("aws4_request"), k);
        hmac(k, sizeof(k), sts, strlen(sts), out);
        hex_encode(out, sizeof(out), sig);
        explicit_bzero_safe(k, sizeof(k));
        if (strlen(f.signature) != 64 || CRYPTO_memcmp(sig, f.signature, 64) != 0) {
                r = fail(err, 403, "SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature "
                         "you provided. Check your key and signing method.");
                err->canonical_request = TAKE_PTR(creq);
                err->string_to_sign = TAKE_PTR(sts);
                goto out;
        }
        *ret_key_id = strdup(cparts[0]);
        r = *ret_key_id ? 0 : -ENOMEM;
out:
        kprefixed = erase_and_free(kprefixed);
        for (size_t i = 0; i < n_names; i++)
                free(names[i]);
        free(cred_copy);
        return r;
}
