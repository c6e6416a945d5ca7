/* SPDX-License-Identifier: MIT */
/*
 * Unit test of avatar-sim's SigV4 verifier against the worked examples of the Amazon S3
 * documentation ("Signature Calculations for the Authorization Header: Transferring Payload in
 * a Single Chunk"), plus the refusals the simulator must give.
 */
#include <stdio.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "sim-sigv4.h"

#define AKID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define WELCOME_SHA256 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"

static int failures;

/* Secret lookup: only the documentation's key exists. */
static int lookup(void *userdata _unused_, const char *key_id, const char **ret_secret) {
        if (!streq(key_id, AKID))
                return -ENOKEY;
        *ret_secret = SECRET;
        return 0;
}

/* 2013-05-24T00:00:00Z, the time of the examples. */
static int64_t example_time(void) {
        struct tm tm = { .tm_year = 113, .tm_mon = 4, .tm_mday = 24 };

        return (int64_t) timegm(&tm);
}

/*
 * Verifies one request; expects success (code NULL) or the given S3 error code with a
 * message containing words (when not NULL).
 */
static void expect_words(const char *name, const char *method, const char *path,
                         const char *query, struct evkeyvalq *headers,
                         const char *payload_sha256, int64_t now, const char *code,
                         const char *words) {
        SigV4Request rq = {
                .method = method,
                .raw_path = path,
                .raw_query = query,
                .headers = headers,
                .payload_sha256 = payload_sha256,
                .now_sec = now,
        };
        _cleanup_free_ char *key_id = NULL;
        SigV4Error err;
        int r;

        r = sigv4_verify(&rq, lookup, NULL, &key_id, &err);
        if (!code && r == 0 && streq(key_id, AKID))
                printf("ok - %s\n", name);
        else if (code && r < 0 && err.code && streq(err.code, code) &&
                 (!words || (err.message && strstr(err.message, words))))
                printf("ok - %s (%s: %s)\n", name, code, strna(err.message));
        else {
                failures++;
                printf("not ok - %s: r=%d code=%s message=%s\n", name, r, strna(err.code),
                       strna(err.message));
                if (err.canonical_request)
                        printf("# canonical request:\n%s\n", err.canonical_request);
        }
        if (r < 0)
                sigv4_error_done(&err);
}

/* Verifies one request; expects success (code NULL) or the given S3 error code. */
static void expect(const char *name, const char *method, const char *path, const char *query,
                   struct evkeyvalq *headers, const char *payload_sha256, int64_t now,
                   const char *code) {
        expect_words(name, method, path, query, headers, payload_sha256, now, code, NULL);
}

/*
 * Fills h with a GET of examplebucket at the time of the examples, signed host,
 * x-amz-content-sha256 and x-amz-date (the signature comes from botocore's S3SigV4Auth, an
 * implementation we did not write).
 */
static void signed_get(struct evkeyvalq *h, const char *signature) {
        _cleanup_free_ char *authz = strprintf(
                "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=%s",
                signature);

        evhttp_add_header(h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(h, "Authorization", authz ? authz : "");
        evhttp_add_header(h, "x-amz-content-sha256", EMPTY_SHA256);
        evhttp_add_header(h, "x-amz-date", "20130524T000000Z");
}

/* Frees the headers of a test. */
static void headers_clear(struct evkeyvalq *h) {
        evhttp_clear_headers(h);
        TAILQ_INIT(h);
}

/* Runs every case; exits non-zero when one fails. */
int main(void) {
        struct evkeyvalq h;
        int64_t t = example_time();

        TAILQ_INIT(&h);

        /* GET Object */
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        evhttp_add_header(&h, "Range", "bytes=0-9");
        evhttp_add_header(&h, "x-amz-content-sha256", EMPTY_SHA256);
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        expect("GET Object example", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t, NULL);
        expect("the same request 16 minutes later", "GET", "/test.txt", NULL, &h, EMPTY_SHA256,
               t + 16 * 60, "RequestTimeTooSkewed");
        expect("another path", "GET", "/test2.txt", NULL, &h, EMPTY_SHA256, t,
               "SignatureDoesNotMatch");
        expect("an added query", "GET", "/test.txt", "versionId=1", &h, EMPTY_SHA256, t,
               "SignatureDoesNotMatch");
        evhttp_add_header(&h, "x-amz-meta-unsigned", "1");
        expect("an unsigned x-amz header", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t,
               "AccessDenied");
        evhttp_remove_header(&h, "x-amz-meta-unsigned");
        evhttp_remove_header(&h, "Range");
        expect_words("a signed header (range) that the request does not carry", "GET",
                     "/test.txt", NULL, &h, EMPTY_SHA256, t, "AccessDenied",
                     "signed header missing: range");
        evhttp_add_header(&h, "Range", "");
        expect("a signed header sent with another (empty) value", "GET", "/test.txt", NULL, &h,
               EMPTY_SHA256, t, "SignatureDoesNotMatch");
        headers_clear(&h);

        /* PUT Object: '$' in the path is encoded in the canonical URI */
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Date", "Fri, 24 May 2013 00:00:00 GMT");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
                          "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        evhttp_add_header(&h, "x-amz-storage-class", "REDUCED_REDUNDANCY");
        evhttp_add_header(&h, "x-amz-content-sha256", WELCOME_SHA256);
        expect("PUT Object example", "PUT", "/test$file.text", NULL, &h, WELCOME_SHA256, t, NULL);
        expect("PUT Object, path sent encoded", "PUT", "/test%24file.text", NULL, &h,
               WELCOME_SHA256, t, NULL);
        expect("PUT Object with another body", "PUT", "/test$file.text", NULL, &h, EMPTY_SHA256, t,
               "XAmzContentSHA256Mismatch");
        headers_clear(&h);

        /* GET Bucket lifecycle: a parameter without a value */
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                          "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        evhttp_add_header(&h, "x-amz-content-sha256", EMPTY_SHA256);
        expect("GET Bucket lifecycle example", "GET", "/", "lifecycle", &h, EMPTY_SHA256, t, NULL);
        expect("GET Bucket lifecycle, lifecycle=", "GET", "/", "lifecycle=", &h, EMPTY_SHA256, t,
               NULL);
        headers_clear(&h);

        /* GET Bucket (list objects): parameters are sorted */
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                          "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        evhttp_add_header(&h, "x-amz-content-sha256", EMPTY_SHA256);
        expect("GET Bucket example", "GET", "/", "max-keys=2&prefix=J", &h, EMPTY_SHA256, t, NULL);
        expect("GET Bucket, parameters in another order", "GET", "/", "prefix=J&max-keys=2", &h,
               EMPTY_SHA256, t, NULL);
        headers_clear(&h);

        /*
         * Canonical query per SigV4: unreserved characters bare, the rest %XX upper-case,
         * UTF-8 bytes one by one, space as %20, pairs sorted by encoded name then value,
         * an empty value as "name=". The signatures come from botocore.
         */
        signed_get(&h, "93d3aa1dd9a108dbe4048fe1bc516c26151e44a272a6990f2bde940d7a343d06");
        expect("unicode and space in a query key and value", "GET", "/test.txt",
               "caf%C3%A9%20key=%C3%A0%20b&x=y", &h, EMPTY_SHA256, t, NULL);
        expect("unicode and space, sent with lower-case escapes and in another order", "GET",
               "/test.txt", "x=y&caf%c3%a9%20key=%c3%a0%20b", &h, EMPTY_SHA256, t, NULL);
        expect("unicode sent as raw UTF-8 bytes is encoded byte by byte", "GET", "/test.txt",
               "caf\xc3\xa9%20key=\xc3\xa0%20b&x=y", &h, EMPTY_SHA256, t, NULL);
        expect("another unicode character in the key", "GET", "/test.txt",
               "caf%C3%A8%20key=%C3%A0%20b&x=y", &h, EMPTY_SHA256, t, "SignatureDoesNotMatch");
        expect("the space of the key dropped", "GET", "/test.txt", "caf%C3%A9key=%C3%A0%20b&x=y",
               &h, EMPTY_SHA256, t, "SignatureDoesNotMatch");
        expect("an invalid escape in the query", "GET", "/test.txt", "caf%C3%Z9=1", &h,
               EMPTY_SHA256, t, "InvalidURI");
        headers_clear(&h);

        signed_get(&h, "043f34339cfad789bd0a2d98d8329e68f4499798da7564b5d39bf5a6711c1d6a");
        expect("empty values signed as name=", "GET", "/test.txt", "uploads=&acl=&b=1", &h,
               EMPTY_SHA256, t, NULL);
        expect("empty values sent without '='", "GET", "/test.txt", "uploads&acl&b=1", &h,
               EMPTY_SHA256, t, NULL);
        expect("an empty value made non-empty", "GET", "/test.txt", "uploads=&acl=x&b=1", &h,
               EMPTY_SHA256, t, "SignatureDoesNotMatch");
        headers_clear(&h);

        signed_get(&h, "11a06665803a59ecdbb5005820a9805238b22519849aea1b4c97a032c5a2507b");
        expect("repeated keys sorted by value, names by byte", "GET", "/test.txt",
               "k=c&a-b=1&k=a&aB=2&A=3&k=b", &h, EMPTY_SHA256, t, NULL);
        expect("repeated keys in another order", "GET", "/test.txt", "k=b&k=a&A=3&aB=2&a-b=1&k=c",
               &h, EMPTY_SHA256, t, NULL);
        expect("a repeated key dropped", "GET", "/test.txt", "k=c&a-b=1&k=a&aB=2&A=3", &h,
               EMPTY_SHA256, t, "SignatureDoesNotMatch");
        headers_clear(&h);

        /* canonical URI: the path decoded, then re-encoded with '/' kept */
        signed_get(&h, "a2d85f95359cca34202631eb988529b1d50d449f33dcc9ff5fd69b6379dac1f8");
        expect("unicode, space and '+' in the path", "GET", "/d%C3%A9j%C3%A0%20vu%2Bx.txt", NULL,
               &h, EMPTY_SHA256, t, NULL);
        expect("unicode path sent as raw UTF-8 bytes", "GET", "/d\xc3\xa9j\xc3\xa0%20vu+x.txt",
               NULL, &h, EMPTY_SHA256, t, NULL);
        headers_clear(&h);

        /* the request time from Date when there is no x-amz-date; it must then be signed */
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Date", "Fri, 24 May 2013 00:00:00 GMT");
        evhttp_add_header(&h, "x-amz-content-sha256", EMPTY_SHA256);
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=date;host;x-amz-content-sha256,"
                          "Signature=f51e643fca75b7c8fd918b44dd7f5de20a60f46a456fd2170e1e8248a77144e1");
        expect("Date instead of x-amz-date", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t, NULL);
        expect("Date, 16 minutes later", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t + 16 * 60,
               "RequestTimeTooSkewed");
        evhttp_remove_header(&h, "Authorization");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;x-amz-content-sha256,"
                          "Signature=f51e643fca75b7c8fd918b44dd7f5de20a60f46a456fd2170e1e8248a77144e1");
        expect_words("Date not signed", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t,
                     "AccessDenied", "date header must be part of the signed headers");
        headers_clear(&h);

        /* host and x-amz-date must be signed; SignedHeaders names each header once */
        signed_get(&h, "93d3aa1dd9a108dbe4048fe1bc516c26151e44a272a6990f2bde940d7a343d06");
        evhttp_remove_header(&h, "Authorization");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=x-amz-content-sha256;x-amz-date,"
                          "Signature=93d3aa1dd9a108dbe4048fe1bc516c26151e44a272a6990f2bde940d7a343d06");
        expect_words("host not signed", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t,
                     "AccessDenied", "host header must be part of the signed headers");
        evhttp_remove_header(&h, "Authorization");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;x-amz-content-sha256,"
                          "Signature=93d3aa1dd9a108dbe4048fe1bc516c26151e44a272a6990f2bde940d7a343d06");
        expect_words("x-amz-date not signed", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t,
                     "AccessDenied", "x-amz-date header must be part of the signed headers");
        evhttp_remove_header(&h, "Authorization");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;host;x-amz-content-sha256;x-amz-date,"
                          "Signature=93d3aa1dd9a108dbe4048fe1bc516c26151e44a272a6990f2bde940d7a343d06");
        expect_words("a header signed twice", "GET", "/test.txt", NULL, &h, EMPTY_SHA256, t,
                     "AuthorizationHeaderMalformed", "host twice");
        evhttp_remove_header(&h, "Authorization");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=content-type;expect;host;x-amz-content-sha256;x-amz-date,"
                          "Signature=93d3aa1dd9a108dbe4048fe1bc516c26151e44a272a6990f2bde940d7a343d06");
        expect_words("removed headers (Content-Type:, Expect:) signed but not sent", "GET",
                     "/test.txt", NULL, &h, EMPTY_SHA256, t, "AccessDenied",
                     "signed header missing: content-type");
        headers_clear(&h);

        /* refusals before any signature is computed */
        expect("no Authorization header", "GET", "/", NULL, &h, EMPTY_SHA256, t, "AccessDenied");
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=NOBODY/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=00");
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        evhttp_add_header(&h, "x-amz-content-sha256", EMPTY_SHA256);
        expect("an unknown key id", "GET", "/", NULL, &h, EMPTY_SHA256, t, "InvalidAccessKeyId");
        headers_clear(&h);
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;x-amz-date,Signature=00");
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        expect("no x-amz-content-sha256", "GET", "/", NULL, &h, EMPTY_SHA256, t, "InvalidRequest");
        headers_clear(&h);
        evhttp_add_header(&h, "Host", "examplebucket.s3.amazonaws.com");
        evhttp_add_header(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/ec2/aws4_request,"
                          "SignedHeaders=host;x-amz-date,Signature=00");
        evhttp_add_header(&h, "x-amz-date", "20130524T000000Z");
        expect("another service", "GET", "/", NULL, &h, EMPTY_SHA256, t,
               "AuthorizationHeaderMalformed");
        headers_clear(&h);
        evhttp_add_header(&h, "Authorization", "AWS " AKID ":c2lnbmF0dXJl");
        expect("signature version 2", "GET", "/", NULL, &h, EMPTY_SHA256, t, "InvalidArgument");
        headers_clear(&h);

        printf("# %d failure(s)\n", failures);
        return failures == 0 ? 0 : 1;
}
