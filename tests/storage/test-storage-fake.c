/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of daemon/storage.c, continued from test-storage.c: against an
 * in-process evhttp fake (tests/upstream/fake-http.c) for answers the simulator never gives
 * (a 200 Complete that carries an <Error>, XML with comments and entities, a lost Complete
 * answer, bad answers, error codes and messages) and for the signed headers on the wire.
 * The harness is storage-harness.c, which also starts avatar-sim as for test-storage.
 *
 * Usage: test-storage-fake AVATAR_SIM.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fake-http.h"
#include "log.h"
#include "macro.h"
#include "sigv4.h"
#include "storage-harness.h"
#include "storage.h"
#include "test-wait.h"
#include "upstream.h"

/* ---- against the in-process fake: answers the simulator never gives ----------------------- */

/* Sets up on the fake. */
static void ctx_init_fake(Ctx *c) {
        struct event_base *base = event_base_new();
        FakeHttp *f;
        char *endpoint;

        ck_assert_ptr_nonnull(base);
        ck_assert_int_eq(fake_http_new(base, &f), 0);
        endpoint = fake_http_url(f, "");
        /* ctx_init_at makes its own base: build by hand on this one */
        memset(c, 0, sizeof(*c));
        c->base = base;
        c->fake = f;
        {
                UpstreamOptions uo = test_upstream_options();
                StorageOptions so = test_options(endpoint);

                so.multipart_threshold = 5 * MIB;
                /* the fake answers in the order requests arrive: one part at a time keeps
                 * its script's ETags on their parts */
                so.concurrency = 1;
                ck_assert_int_eq(upstream_new(base, &uo, &c->up), 0);
                ck_assert_int_eq(storage_new(base, c->up, &so, &c->st), 0);
        }
        free(endpoint);
}

/* Comments, namespaces, white space and entities in the XML; the canonical URIs and the
 * headers on the wire; S3 failing a Complete with a 200 that carries an <Error>, repeated
 * like a 5xx, then given up on and the upload aborted. */
START_TEST(test_fake_complete_error_in_200) {
        static const char create[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- <UploadId>decoy</UploadId> -->\n"
                "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                "<Bucket>bkt</Bucket><Key>k</Key>\n  <UploadId >\n  up&amp;1&#x2F;&#61;  </UploadId>"
                "</InitiateMultipartUploadResult>";
        static const char complete_error[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code>"
                "<Message>We encountered an internal error. Please try again.</Message>"
                "<RequestId>1</RequestId></Error>";
        size_t len = 6 * MIB + 1;
        uint8_t *data = malloc(len);
        const FakeRequest *fr;
        Res put = {};
        Ctx c;

        ck_assert_ptr_nonnull(data);
        fill_pattern(data, len, 2);
        ctx_init_fake(&c);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/dir/k%20%2B.bin", (FakeStep[]) {
                { .status = 200, .body = create },
                { .status = 200, .headers = { "ETag: \"e1\"" } },
                { .status = 200, .headers = { "ETag: \"e&2\"" } },
                { .status = 200, .body = complete_error },
                { .status = 200, .body = complete_error },
                { .status = 200, .body = complete_error },
                { .status = 200, .body = complete_error },
                { .status = 204 },
        }, 8), 0);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/dir/k +.bin", &good_cred, data, len,
                                            on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        ck_assert_int_eq(put.error, -EREMOTEIO);
        ck_assert_int_eq(put.status, 200);
        ck_assert_str_eq(put.code, "InternalError");
        ck_assert_ptr_nonnull(strstr(put.message, "We encountered an internal error"));
        ck_assert_uint_eq(fake_http_n_requests(c.fake), 8);

        fr = fake_http_request(c.fake, 0);
        ck_assert_str_eq(fr->method, "POST");
        ck_assert_str_eq(fr->uri, "/bkt/dir/k%20%2B.bin?uploads=");
        ck_assert_str_eq(fake_request_header(fr, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
        ck_assert(startswith(fake_request_header(fr, "Authorization"),
                             "AWS4-HMAC-SHA256 Credential=" KEY_ID "/"));
        ck_assert_ptr_nonnull(strstr(fake_request_header(fr, "Authorization"), "/us-east-1/s3/"));
        ck_assert_ptr_nonnull(fake_request_header(fr, "x-amz-date"));
        fr = fake_http_request(c.fake, 1);
        ck_assert_str_eq(fr->method, "PUT");
        ck_assert_str_eq(fr->uri, "/bkt/dir/k%20%2B.bin?partNumber=1&uploadId=up%261%2F%3D");
        ck_assert_uint_eq(fr->body_len, 5 * MIB);
        ck_assert(memcmp(fr->body, data, 5 * MIB) == 0);
        fr = fake_http_request(c.fake, 2);
        ck_assert_str_eq(fr->uri, "/bkt/dir/k%20%2B.bin?partNumber=2&uploadId=up%261%2F%3D");
        ck_assert_uint_eq(fr->body_len, MIB + 1);
        fr = fake_http_request(c.fake, 3);
        ck_assert_str_eq(fr->method, "POST");
        ck_assert_str_eq(fr->uri, "/bkt/dir/k%20%2B.bin?uploadId=up%261%2F%3D");
        ck_assert_str_eq(fr->body, "<CompleteMultipartUpload>"
                                   "<Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag></Part>"
                                   "<Part><PartNumber>2</PartNumber><ETag>\"e&amp;2\"</ETag></Part>"
                                   "</CompleteMultipartUpload>");
        ck_assert_str_eq(fake_request_header(fr, "Content-Type"), "application/xml");
        for (size_t i = 4; i < 7; i++)
                ck_assert_str_eq(fake_http_request(c.fake, i)->body,
                                 fake_http_request(c.fake, 3)->body);
        fr = fake_http_request(c.fake, 7);
        ck_assert_str_eq(fr->method, "DELETE");
        ck_assert_str_eq(fr->uri, "/bkt/dir/k%20%2B.bin?uploadId=up%261%2F%3D");
        res_done(&put);
        ctx_done(&c);
        free(data);
}
END_TEST

/* A Complete whose answer is lost: the retry meets NoSuchUpload and HeadObject shows the
 * object is there; the ETag of a successful Complete is decoded. */
START_TEST(test_fake_complete_lost_answer) {
        static const char create[] = "<InitiateMultipartUploadResult><UploadId>U</UploadId>"
                                     "</InitiateMultipartUploadResult>";
        static const char no_upload[] = "<Error><Code>NoSuchUpload</Code><Message>The specified "
                                        "upload does not exist.</Message></Error>";
        static const char completed[] = "<CompleteMultipartUploadResult><ETag>&quot;abc-2&quot;"
                                        "</ETag></CompleteMultipartUploadResult>";
        size_t len = 6 * MIB;
        uint8_t *data = calloc(1, len);
        Res lost = {}, ok = {};
        Ctx c;

        ck_assert_ptr_nonnull(data);
        ctx_init_fake(&c);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/lost", (FakeStep[]) {
                { .status = 200, .body = create },
                { .status = 200, .headers = { "ETag: \"p1\"" } },
                { .status = 200, .headers = { "ETag: \"p2\"" } },
                { .action = FAKE_DROP },
                { .status = 404, .body = no_upload },
                { .status = 200, .headers = { "ETag: \"whole-2\"", "Content-Length: 6291456" } },
        }, 6), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/ok", (FakeStep[]) {
                { .status = 200, .body = create },
                { .status = 200, .headers = { "ETag: \"p1\"" } },
                { .status = 200, .headers = { "ETag: \"p2\"" } },
                { .status = 200, .body = completed },
        }, 4), 0);
        lost.ctx = ok.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/lost", &good_cred, data, len, on_done,
                                            &lost, &lost.op), 0);
        ctx_run(&c, 1);
        ck_assert_msg(lost.error == 0, "lost: %s", strna(lost.message));
        ck_assert_str_eq(lost.etag, "\"whole-2\"");
        ck_assert_str_eq(fake_http_last(c.fake, "/bkt/lost")->method, "HEAD");
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/ok", &good_cred, data, len, on_done,
                                            &ok, &ok.op), 0);
        ctx_run(&c, 2);
        ck_assert_int_eq(ok.error, 0);
        ck_assert_str_eq(ok.etag, "\"abc-2\"");
        res_done(&lost);
        res_done(&ok);
        ctx_done(&c);
        free(data);
}
END_TEST

/* Malformed or incomplete answers: no UploadId, no part ETag, an error body with entities,
 * a non-XML error page. */
START_TEST(test_fake_bad_answers) {
        static const char denied[] = "<Error>\n  <Code>AccessDenied</Code>\n  <Message>no &lt;access&gt; "
                                     "for caf&#233; &amp; co</Message>\n</Error>";
        Res noid = {}, noetag = {}, deny = {}, html = {};
        uint8_t *data = calloc(1, 6 * MIB);
        Ctx c;

        ctx_init_fake(&c);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/noid", (FakeStep[]) {
                { .status = 200, .body = "<InitiateMultipartUploadResult><UploadId/>"
                                         "</InitiateMultipartUploadResult>" } }, 1), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/noetag", (FakeStep[]) {
                { .status = 200, .body = "<InitiateMultipartUploadResult><UploadId>X</UploadId>"
                                         "</InitiateMultipartUploadResult>" },
                { .status = 200 },
                { .status = 204 } }, 3), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/deny", (FakeStep[]) {
                { .status = 403, .body = denied } }, 1), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/html", (FakeStep[]) {
                { .status = 502, .body = "<html><body>Bad Gateway</body></html>" } }, 1), 0);
        noid.ctx = noetag.ctx = deny.ctx = html.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/noid", &good_cred, data, 6 * MIB,
                                            on_done, &noid, &noid.op), 0);
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/noetag", &good_cred, data, 6 * MIB,
                                            on_done, &noetag, &noetag.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://bkt/deny", &good_cred, 10, on_done, &deny,
                                            &deny.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://bkt/html", &good_cred, 10, on_done, &html,
                                            &html.op), 0);
        ctx_run(&c, 4);
        ck_assert_int_eq(noid.error, -EBADMSG);
        ck_assert_ptr_nonnull(strstr(noid.message, "UploadId"));
        ck_assert_int_eq(noetag.error, -EBADMSG);
        ck_assert_ptr_nonnull(strstr(noetag.message, "ETag"));
        ck_assert_str_eq(fake_http_last(c.fake, "/bkt/noetag")->method, "DELETE");
        ck_assert_int_eq(deny.error, -EREMOTEIO);
        ck_assert_str_eq(deny.code, "AccessDenied");
        ck_assert_str_eq(deny.message, "GetObject: AccessDenied: no <access> for caf\xc3\xa9 & co");
        ck_assert_int_eq(html.error, -EREMOTEIO);
        ck_assert_int_eq(html.status, 502);
        ck_assert_ptr_null(html.code);
        ck_assert_ptr_nonnull(strstr(html.message, "HTTP 502"));
        res_done(&noid);
        res_done(&noetag);
        res_done(&deny);
        res_done(&html);
        ctx_done(&c);
        free(data);
}
END_TEST

/* Checks the SigV4 signature of one captured request: every header named in SignedHeaders
 * is on the wire, host, x-amz-date and x-amz-content-sha256 are among them, and the
 * signature recomputed from what arrived (with the test's secret) is the one sent. */
static void assert_signed_as_sent(const FakeRequest *fr) {
        const char *auth = fake_request_header(fr, "Authorization"), *list, *end, *query;
        _cleanup_free_ char *names = NULL, *recomputed = NULL, *canonical = NULL;
        const char *lines[32];
        char *buf[32] = {};
        size_t n = 0;
        bool host = false, date = false, sha = false;

        ck_assert_msg(auth, "%s %s: no Authorization", fr->method, fr->uri);
        list = strstr(auth, "SignedHeaders=");
        ck_assert_msg(list, "%s %s: no SignedHeaders in %s", fr->method, fr->uri, auth);
        list += STRLEN("SignedHeaders=");
        end = strchr(list, ',');
        ck_assert_ptr_nonnull(end);
        names = strndup(list, (size_t) (end - list));
        ck_assert_ptr_nonnull(names);
        for (char *save = NULL, *name = strtok_r(names, ";", &save); name;
             name = strtok_r(NULL, ";", &save)) {
                const char *v = fake_request_header(fr, name);

                ck_assert_msg(v, "%s %s: signed header missing: %s", fr->method, fr->uri, name);
                ck_assert_uint_lt(n, ELEMENTSOF(lines));
                ck_assert_int_ge(asprintf(&buf[n], "%s: %s", name, v), 0);
                lines[n] = buf[n];
                n++;
                host = host || streq(name, "host");
                date = date || streq(name, "x-amz-date");
                sha = sha || streq(name, "x-amz-content-sha256");
        }
        ck_assert_msg(host && date && sha, "%s %s: host, x-amz-date or x-amz-content-sha256 not "
                      "signed: %s", fr->method, fr->uri, auth);

        query = strchr(fr->uri, '?');
        ck_assert_int_eq(sigv4_authorization(&(SigV4Request) {
                                                     .method = fr->method,
                                                     .path = fr->path,
                                                     .query = query ? query + 1 : NULL,
                                                     .headers = lines,
                                                     .n_headers = n,
                                                     .payload_hash = fake_request_header(
                                                             fr, "x-amz-content-sha256"),
                                                     .amz_date = fake_request_header(fr,
                                                                                     "x-amz-date"),
                                                     .region = "eu-west-3",
                                                     .service = "s3",
                                                     .access_key_id = KEY_ID,
                                                     .secret_access_key = SECRET,
                                             },
                                             &recomputed, &canonical),
                         0);
        ck_assert_msg(streq(recomputed, auth), "%s %s: signature differs:\n sent %s\n ours %s\n%s",
                      fr->method, fr->uri, auth, recomputed, canonical);
        for (size_t i = 0; i < n; i++)
                free(buf[i]);
}

/* Every kind of storage request names in SignedHeaders only headers that are on the wire
 * (libcurl's removal lines "Expect:" and "Content-Type:" once got signed although never
 * sent, which AWS refuses), always signs host, x-amz-date and x-amz-content-sha256, and
 * carries the signature one recomputes from what arrived: PutObject, CreateMultipartUpload,
 * UploadPart, CompleteMultipartUpload, AbortMultipartUpload, GetObject, HeadObject; the configured region is the one signed. */
START_TEST(test_fake_signed_headers_on_wire) {
        static const char create[] = "<InitiateMultipartUploadResult><UploadId>U 1</UploadId>"
                                     "</InitiateMultipartUploadResult>";
        static const char no_upload[] = "<Error><Code>NoSuchUpload</Code><Message>gone</Message>"
                                        "</Error>";
        static const char denied[] = "<Error><Code>AccessDenied</Code><Message>no</Message>"
                                     "</Error>";
        StorageOptions so;
        size_t len = 6 * MIB;
        uint8_t *data = calloc(1, len);
        Res single = {}, lost = {}, aborted = {}, get = {};
        char *endpoint;
        bool seen_methods[5] = {};
        Ctx c;

        ck_assert_ptr_nonnull(data);
        ctx_init_fake(&c);
        /* the region is signed: another one than the default */
        c.st = storage_free(c.st);
        endpoint = fake_http_url(c.fake, "");
        so = test_options(endpoint);
        so.multipart_threshold = 5 * MIB;
        so.concurrency = 1;
        so.region = "eu-west-3";
        ck_assert_int_eq(storage_new(c.base, c.up, &so, &c.st), 0);
        free(endpoint);

        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/single", (FakeStep[]) {
                { .status = 200, .headers = { "ETag: \"s\"" } } }, 1), 0);
        /* create, two parts, a Complete whose answer is lost, NoSuchUpload, HEAD */
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/dir/lost%20%25", (FakeStep[]) {
                { .status = 200, .body = create },
                { .status = 200, .headers = { "ETag: \"p1\"" } },
                { .status = 200, .headers = { "ETag: \"p2\"" } },
                { .action = FAKE_DROP },
                { .status = 404, .body = no_upload },
                { .status = 200, .headers = { "ETag: \"whole-2\"", "Content-Length: 6291456" } },
        }, 6), 0);
        /* create, a refused part, the abort */
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/aborted", (FakeStep[]) {
                { .status = 200, .body = create },
                { .status = 403, .body = denied },
                { .status = 204 },
        }, 3), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/get", (FakeStep[]) {
                { .status = 200, .headers = { "ETag: \"g\"" }, .body = "0123456789" } }, 1), 0);

        single.ctx = lost.ctx = aborted.ctx = get.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/single", &good_cred, "abc", 3,
                                            on_done, &single, &single.op), 0);
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/dir/lost %", &good_cred, data, len,
                                            on_done, &lost, &lost.op), 0);
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/aborted", &good_cred, data, len,
                                            on_done, &aborted, &aborted.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://bkt/get", &good_cred, 100, on_done, &get,
                                            &get.op), 0);
        ctx_run(&c, 4);
        ck_assert_msg(single.error == 0, "single: %s", strna(single.message));
        ck_assert_msg(lost.error == 0, "lost: %s", strna(lost.message));
        ck_assert_int_eq(aborted.error, -EREMOTEIO);
        ck_assert_msg(get.error == 0, "get: %s", strna(get.message));
        ck_assert_str_eq(get.data, "0123456789");

        for (size_t i = 0; i < fake_http_n_requests(c.fake); i++) {
                const FakeRequest *fr = fake_http_request(c.fake, i);
                static const char *const methods[] = { "PUT", "POST", "DELETE", "GET", "HEAD" };

                assert_signed_as_sent(fr);
                ck_assert_ptr_nonnull(strstr(fake_request_header(fr, "Authorization"),
                                             "/eu-west-3/s3/aws4_request"));
                for (size_t m = 0; m < ELEMENTSOF(methods); m++)
                        if (streq(fr->method, methods[m]))
                                seen_methods[m] = true;
        }
        for (size_t m = 0; m < ELEMENTSOF(seen_methods); m++)
                ck_assert_msg(seen_methods[m], "no request of method %zu", m);
        /* the bodies say what they are, and that is signed */
        for (size_t i = 0; i < fake_http_n_requests(c.fake); i++) {
                const FakeRequest *fr = fake_http_request(c.fake, i);

                if (fr->body_len > 0)
                        ck_assert_msg(fake_request_header(fr, "Content-Type") &&
                                      strstr(fake_request_header(fr, "Authorization"),
                                             "content-type;"),
                                      "%s %s: body without a signed Content-Type", fr->method,
                                      fr->uri);
        }
        res_done(&single);
        res_done(&lost);
        res_done(&aborted);
        res_done(&get);
        ctx_done(&c);
        free(data);
}
END_TEST

/* An S3 <Error> answer is reported with its Code and Message, the message bounded, valid
 * UTF-8, free of control characters, and never echoing the secret. */
START_TEST(test_fake_error_code_and_message) {
        static const char mismatch[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
                "<Message>The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.</Message>"
                "<AWSAccessKeyId>" KEY_ID "</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256"
                "</StringToSign><RequestId>1</RequestId></Error>";
        static const char nasty[] =
                "<Error><Code>Odd\x01" "Code</Code><Message>line\none \xff\xfe bad, key " SECRET
                " echoed</Message></Error>";
        char *long_error, *p;
        Res sig = {}, odd = {}, lng = {};
        size_t msg_len;
        Ctx c;

        /* a Message of 4000 'é': cut between characters */
        long_error = malloc(8100);
        ck_assert_ptr_nonnull(long_error);
        p = stpcpy(long_error, "<Error><Code>SlowDown</Code><Message>");
        for (unsigned i = 0; i < 4000; i++)
                p = stpcpy(p, "\xc3\xa9");
        strcpy(p, "</Message></Error>");

        ctx_init_fake(&c);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/sig", (FakeStep[]) {
                { .status = 403, .body = mismatch } }, 1), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/odd", (FakeStep[]) {
                { .status = 400, .body = nasty } }, 1), 0);
        ck_assert_int_eq(fake_http_script(c.fake, "/bkt/long", (FakeStep[]) {
                { .status = 403, .body = long_error } }, 1), 0);
        sig.ctx = odd.ctx = lng.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://bkt/sig", &good_cred, "abc", 3, on_done,
                                            &sig, &sig.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://bkt/odd", &good_cred, 10, on_done, &odd,
                                            &odd.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://bkt/long", &good_cred, 10, on_done, &lng,
                                            &lng.op), 0);
        ctx_run(&c, 3);

        ck_assert_int_eq(sig.error, -EREMOTEIO);
        ck_assert_int_eq(sig.status, 403);
        ck_assert_str_eq(sig.code, "SignatureDoesNotMatch");
        ck_assert_str_eq(sig.message, "PutObject: SignatureDoesNotMatch: The request signature we "
                                      "calculated does not match the signature you provided. "
                                      "Check your key and signing method.");

        ck_assert_int_eq(odd.error, -EREMOTEIO);
        ck_assert_str_eq(odd.code, "Odd Code");
        ck_assert_str_eq(odd.message, "GetObject: Odd Code: line one ?? bad, key *** echoed");
        ck_assert_ptr_null(strstr(odd.message, SECRET));

        ck_assert_int_eq(lng.error, -EREMOTEIO);
        ck_assert_str_eq(lng.code, "SlowDown");
        msg_len = strlen(lng.message);
        ck_assert_uint_le(msg_len, strlen("GetObject: SlowDown: ") + 512 + strlen("…"));
        ck_assert(startswith(lng.message, "GetObject: SlowDown: \xc3\xa9"));
        /* 255 whole characters, then the ellipsis */
        ck_assert_str_eq(lng.message + msg_len - strlen("\xc3\xa9…"), "\xc3\xa9…");
        ck_assert_uint_eq(msg_len, strlen("GetObject: SlowDown: ") + 256 * 2 + strlen("…"));

        res_done(&sig);
        res_done(&odd);
        res_done(&lng);
        ctx_done(&c);
        free(long_error);
}
END_TEST

/* ---- main ---------------------------------------------------------------------------------- */

/* The suite (there is no slow test here). */
static Suite *storage_suite(bool slow) {
        Suite *s = suite_create("storage-fake");
        TCase *tc;

        (void) slow;
        tc = tcase_create("fake");
        tcase_add_test(tc, test_fake_complete_error_in_200);
        tcase_add_test(tc, test_fake_complete_lost_answer);
        tcase_add_test(tc, test_fake_bad_answers);
        tcase_add_test(tc, test_fake_signed_headers_on_wire);
        tcase_add_test(tc, test_fake_error_code_and_message);
        suite_add_tcase(s, tc);
        return s;
}

/* Starts the simulator, runs the suite, cleans up (storage-harness.c). */
int main(int argc, char **argv) {
        return storage_test_main(argc, argv, storage_suite);
}
