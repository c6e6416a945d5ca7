/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the daemon's SHA-256, HMAC-SHA256 and SigV4 signer: the NIST FIPS 180-4
 * example vectors, RFC 4231's HMAC vectors, and the worked examples of the Amazon S3
 * documentation ("Signature Calculations for the Authorization Header: Transferring Payload
 * in a Single Chunk"), the same ones avatar-sim's verifier is tested with, plus canonical
 * query and URI cases and the requests the signer must refuse.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "sha256.h"
#include "sigv4.h"

#define AKID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define WELCOME_SHA256 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
#define DATE "20130524T000000Z"
#define CREDENTIAL "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"

static int failures;

static void check_str(const char *name, const char *got, const char *want) {
        if (got && streq(got, want))
                printf("ok - %s\n", name);
        else {
                failures++;
                printf("not ok - %s\n#   got:  %s\n#   want: %s\n", name, strna(got), want);
        }
}

static void check_digest(const char *name, const uint8_t d[static SHA256_DIGEST_SIZE],
                         const char *want) {
        char hex[SHA256_HEX_SIZE];

        sha256_hex(d, hex);
        check_str(name, hex, want);
}

static void test_sha256(void) {
        static const char *const abc448 =
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        static const char *const million_a =
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
        uint8_t d[SHA256_DIGEST_SIZE], key[131];
        char *a;
        Sha256 c;

        sha256("abc", 3, d);
        check_digest("SHA-256 \"abc\"", d,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256("", 0, d);
        check_digest("SHA-256 empty string", d, EMPTY_SHA256);
        sha256(abc448, strlen(abc448), d);
        check_digest("SHA-256 448-bit message", d,
                     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

        a = malloc(1000000);
        if (!a)
                abort();
        memset(a, 'a', 1000000);
        sha256(a, 1000000, d);
        check_digest("SHA-256 one million 'a'", d, million_a);
        /* the same in uneven pieces, across block boundaries */
        sha256_init(&c);
        for (size_t off = 0, step = 1; off < 1000000; off += step, step = step % 97 + 1)
                sha256_update(&c, a + off, MIN(step, 1000000 - off));
        sha256_final(&c, d);
        check_digest("SHA-256 one million 'a' in pieces", d, million_a);
        free(a);

        /* RFC 4231, test cases 2 and 6 (a key longer than a block) */
        hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
        check_digest("HMAC-SHA256 RFC 4231 case 2", d,
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        memset(key, 0xaa, sizeof(key));
        hmac_sha256(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First",
                    54, d);
        check_digest("HMAC-SHA256 RFC 4231 case 6", d,
                     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* Signs with the documentation's credentials, region and date. */
static int sign(const char *method, const char *path, const char *query,
                const char *const *headers, const char *payload, char **ret_auth,
                char **ret_canonical) {
        size_t n = 0;

        while (headers[n])
                n++;
        return sigv4_authorization(&(SigV4Request) {
                                           .method = method,
                                           .path = path,
                                           .query = query,
                                           .headers = headers,
                                           .n_headers = n,
                                           .payload_hash = payload,
                                           .amz_date = DATE,
                                           .region = "us-east-1",
                                           .service = "s3",
                                           .access_key_id = AKID,
                                           .secret_access_key = SECRET,
                                   },
                                   ret_auth, ret_canonical);
}

static void expect_signature(const char *name, const char *method, const char *path,
                             const char *query, const char *const *headers, const char *payload,
                             const char *want) {
        _cleanup_free_ char *auth = NULL, *canonical = NULL;
        int r;

        r = sign(method, path, query, headers, payload, &auth, &canonical);
        if (r < 0) {
                failures++;
                printf("not ok - %s: %s\n", name, strerror(-r));
                return;
        }
        check_str(name, auth, want);
        if (!streq(auth, want))
                printf("# canonical request:\n%s\n", canonical);
}

static void expect_canonical(const char *name, const char *path, const char *query,
                             const char *want) {
        static const char *const headers[] = { "Host: h", "x-amz-date: " DATE,
                                               "x-amz-content-sha256: UNSIGNED-PAYLOAD", NULL };
        _cleanup_free_ char *auth = NULL, *canonical = NULL;
        char *nl;

        if (sign("GET", path, query, headers, "UNSIGNED-PAYLOAD", &auth, &canonical) < 0) {
                failures++;
                printf("not ok - %s: refused\n", name);
                return;
        }
        /* compare the URI and query lines only */
        nl = strchr(canonical, '\n');
        nl = nl ? strchr(nl + 1, '\n') : NULL;
        nl = nl ? strchr(nl + 1, '\n') : NULL;
        if (nl)
                *nl = '\0';
        check_str(name, strchr(canonical, '\n') ? strchr(canonical, '\n') + 1 : canonical, want);
}

static void expect_refused(const char *name, const char *const *headers, const char *payload) {
        _cleanup_free_ char *auth = NULL;
        int r;

        r = sign("GET", "/", NULL, headers, payload, &auth, NULL);
        if (r == -EINVAL && !auth)
                printf("ok - %s refused\n", name);
        else {
                failures++;
                printf("not ok - %s: r=%d\n", name, r);
        }
}

static void test_signer(void) {
        char date[SIGV4_DATE_SIZE];

        /* GET Object with Range */
        expect_signature("GET Object example", "GET", "/test.txt", NULL,
                         (const char *const[]) { "Host: examplebucket.s3.amazonaws.com",
                                                 "Range: bytes=0-9",
                                                 "x-amz-content-sha256: " EMPTY_SHA256,
                                                 "x-amz-date: " DATE, NULL },
                         EMPTY_SHA256,
                         CREDENTIAL "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                         "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        /* PUT Object: '$' gets encoded, whether the path comes raw or encoded */
        static const char *const put_headers[] = {
                "Date: Fri, 24 May 2013 00:00:00 GMT",
                "Host: examplebucket.s3.amazonaws.com",
                "x-amz-date: " DATE,
                "x-amz-storage-class: REDUCED_REDUNDANCY",
                "x-amz-content-sha256: " WELCOME_SHA256,
                NULL,
        };
        static const char *const put_want =
                CREDENTIAL "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                "x-amz-storage-class,"
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
        expect_signature("PUT Object example", "PUT", "/test$file.text", NULL, put_headers,
                         WELCOME_SHA256, put_want);
        expect_signature("PUT Object example, path sent encoded", "PUT", "/test%24file.text",
                         NULL, put_headers, WELCOME_SHA256, put_want);
        /* GET Bucket lifecycle: a parameter without a value */
        static const char *const bucket_headers[] = {
                "Host: examplebucket.s3.amazonaws.com",
                "x-amz-date: " DATE,
                "x-amz-content-sha256: " EMPTY_SHA256,
                NULL,
        };
        expect_signature("GET Bucket lifecycle example", "GET", "/", "lifecycle",
                         bucket_headers, EMPTY_SHA256,
                         CREDENTIAL "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                         "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
        /* GET Bucket: parameters sorted whatever order they came in */
        expect_signature("GET Bucket example", "GET", "/", "max-keys=2&prefix=J",
                         bucket_headers, EMPTY_SHA256,
                         CREDENTIAL "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                         "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
        expect_signature("GET Bucket example, parameters reordered", "GET", "/",
                         "prefix=J&max-keys=2", bucket_headers, EMPTY_SHA256,
                         CREDENTIAL "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                         "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
        /* header names in any case, values with spaces to trim and collapse */
        expect_signature("GET Object example, headers untidy", "GET", "/test.txt", NULL,
                         (const char *const[]) { "HOST:   examplebucket.s3.amazonaws.com  ",
                                                 "x-amz-date:" DATE,
                                                 "X-Amz-Content-Sha256: " EMPTY_SHA256,
                                                 "range: bytes=0-9", NULL },
                         EMPTY_SHA256,
                         CREDENTIAL "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                         "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

        /* canonical URI and query */
        expect_canonical("space and unicode in the path", "/b/a b/\xc3\xa9t\xc3\xa9~.txt", NULL,
                         "/b/a%20b/%C3%A9t%C3%A9~.txt\n");
        expect_canonical("path encoded once only", "/b/a%20b/%c3%a9+x", NULL,
                         "/b/a%20b/%C3%A9%2Bx\n");
        expect_canonical("empty path", "", NULL, "/\n");
        expect_canonical("empty values, repeated keys sorted by value", "/k",
                         "uploads&b=2&a=&b=1", "/k\na=&b=1&b=2&uploads=");
        expect_canonical("unicode and space in query keys and values", "/k",
                         "%C3%A9t%C3%A9=a%20b&x y=/&partNumber=3",
                         "/k\n%C3%A9t%C3%A9=a%20b&partNumber=3&x%20y=%2F");
        expect_canonical("a '%' without hex digits", "/100%", "q=50%", "/100%25\nq=50%25");

        /* refusals */
        expect_refused("no host",
                       (const char *const[]) { "x-amz-date: " DATE,
                                               "x-amz-content-sha256: UNSIGNED-PAYLOAD", NULL },
                       "UNSIGNED-PAYLOAD");
        expect_refused("no x-amz-date",
                       (const char *const[]) { "Host: h",
                                               "x-amz-content-sha256: UNSIGNED-PAYLOAD", NULL },
                       "UNSIGNED-PAYLOAD");
        expect_refused("no x-amz-content-sha256",
                       (const char *const[]) { "Host: h", "x-amz-date: " DATE, NULL },
                       "UNSIGNED-PAYLOAD");
        expect_refused("a payload hash that differs from the header",
                       (const char *const[]) { "Host: h", "x-amz-date: " DATE,
                                               "x-amz-content-sha256: UNSIGNED-PAYLOAD", NULL },
                       EMPTY_SHA256);
        expect_refused("a header line without a name",
                       (const char *const[]) { "Host: h", "x-amz-date: " DATE,
                                               "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                                               ": v", NULL },
                       "UNSIGNED-PAYLOAD");

        sigv4_format_date(1369353600, date);
        check_str("x-amz-date format", date, DATE);
}

int main(void) {
        test_sha256();
        test_signer();
        printf("# %d failure(s)\n", failures);
        return failures == 0 ? 0 : 1;
}
