/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of daemon/upstream.c: a real event loop per test, the Upstream client
 * and an in-process evhttp server (fake-http.c) on 127.0.0.1. Plain requests, network
 * retries and deadlines, 429 and body caps; the harness is upstream-harness.c, streaming,
 * cancel and free, concurrency, the circuit breaker, SigV4 and statistics are in
 * test-upstream-stream.c.
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "fake-http.h"
#include "macro.h"
#include "test-wait.h"
#include "upstream-harness.h"
#include "upstream.h"

/* ---- plain requests ------------------------------------------------------------------- */

/* A GET with a JSON answer: status, body, content type, one attempt. */
START_TEST(test_get_json) {
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/jobs", (FakeStep) { .status = 200,
                                          .headers = { "Content-Type: application/json" },
                                          .body = "{\"jobs\":[1,2,3]}" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/jobs?limit=3"),
                                    .idempotent = true }, &res);
        ck_assert_uint_eq(upstream_in_flight(c.up), 1);
        ck_assert_uint_eq(res.calls, 0); /* never from inside start */
        ctx_run(&c, 1);

        ck_assert_uint_eq(res.calls, 1);
        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 200);
        ck_assert_str_eq(res.body, "{\"jobs\":[1,2,3]}");
        ck_assert_str_eq(res.content_type, "application/json");
        ck_assert_uint_eq(res.attempts, 1);
        ck_assert_int_eq(res.retry_after_ms, -1);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        ck_assert_uint_eq(fake_http_count(c.fake, "/jobs"), 1);
        ck_assert_str_eq(fake_http_last(c.fake, "/jobs")->method, "GET");
        ck_assert_str_eq(fake_http_last(c.fake, "/jobs")->uri, "/jobs?limit=3");

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* A POST's body and header lines reach the server; no Expect header. */
START_TEST(test_post_body_and_headers) {
        static const char *const headers[] = {
                "Content-Type: application/json",
                "Authorization: api-key-v1 not-a-real-key",
                "Avatars-Accept-Created: yes",
                NULL,
        };
        const FakeRequest *fr;
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/jobs", (FakeStep) { .status = 200, .body = "{}" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/jobs"),
                                    .headers = headers, .body = "{\"k\":5}", .body_len = 7 },
              &res);
        ctx_run(&c, 1);

        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 200);
        fr = fake_http_last(c.fake, "/jobs");
        ck_assert_ptr_nonnull(fr);
        ck_assert_str_eq(fr->method, "POST");
        ck_assert_str_eq(fr->body, "{\"k\":5}");
        ck_assert_str_eq(fake_request_header(fr, "Content-Type"), "application/json");
        ck_assert_str_eq(fake_request_header(fr, "Authorization"), "api-key-v1 not-a-real-key");
        ck_assert_str_eq(fake_request_header(fr, "Avatars-Accept-Created"), "yes");
        ck_assert_str_eq(fake_request_header(fr, "Content-Length"), "7");
        ck_assert_ptr_null(fake_request_header(fr, "Expect"));

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* An empty POST sends Content-Length: 0 and no made-up content type. */
START_TEST(test_post_empty_body) {
        const FakeRequest *fr;
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/empty", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/empty") }, &res);
        ctx_run(&c, 1);

        ck_assert_int_eq(res.error, 0);
        ck_assert_str_eq(res.body, "");
        fr = fake_http_last(c.fake, "/empty");
        ck_assert_str_eq(fr->method, "POST");
        ck_assert_str_eq(fake_request_header(fr, "Content-Length"), "0");
        /* libcurl's default form content type is not sent on our behalf */
        ck_assert_ptr_null(fake_request_header(fr, "Content-Type"));

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* The default User-Agent, then the one set by upstream_set_options(). */
START_TEST(test_user_agent) {
        UpstreamOptions o = test_options();
        Ctx c;
        Result a = {}, b = {};

        ctx_init(&c, NULL);
        script(&c, "/ua", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/ua") }, &a);
        ctx_run(&c, 1);
        ck_assert_str_eq(fake_request_header(fake_http_last(c.fake, "/ua"), "User-Agent"),
                         "avatard/" AVATARD_VERSION);

        o.user_agent = "avatar-python/1.2.3";
        ck_assert_int_eq(upstream_set_options(c.up, &o), 0);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/ua") }, &b);
        ctx_run(&c, 2);
        ck_assert_str_eq(fake_request_header(fake_http_last(c.fake, "/ua"), "User-Agent"),
                         "avatar-python/1.2.3");

        result_done(&a);
        result_done(&b);
        ctx_done(&c);
}
END_TEST

/* HTTP error statuses come back after exactly one request. */
START_TEST(test_http_errors_not_retried) {
        Ctx c;
        Result r404 = {}, r500 = {}, r502 = {};

        ctx_init(&c, NULL);
        script(&c, "/404", (FakeStep) { .status = 404,
                                         .headers = { "Content-Type: application/json" },
                                         .body = "{\"message\":\"no such job\"}" });
        script(&c, "/500", (FakeStep) { .status = 500, .body = "boom" });
        script(&c, "/502", (FakeStep) { .status = 502, .body = "bad gateway" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/404"),
                                    .idempotent = true }, &r404);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/500"),
                                    .idempotent = true }, &r500);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/502"),
                                    .body = "{}", .body_len = 2 }, &r502);
        ctx_run(&c, 3);

        ck_assert_int_eq(r404.error, 0);
        ck_assert_int_eq(r404.status, 404);
        ck_assert_str_eq(r404.body, "{\"message\":\"no such job\"}");
        ck_assert_int_eq(r500.status, 500);
        ck_assert_str_eq(r500.body, "boom");
        ck_assert_int_eq(r502.status, 502);
        ck_assert_str_eq(r502.body, "bad gateway");
        ck_assert_uint_eq(r404.attempts + r500.attempts + r502.attempts, 3);
        ck_assert_uint_eq(fake_http_count(c.fake, "/404"), 1);
        ck_assert_uint_eq(fake_http_count(c.fake, "/500"), 1);
        ck_assert_uint_eq(fake_http_count(c.fake, "/502"), 1);

        result_done(&r404);
        result_done(&r500);
        result_done(&r502);
        ctx_done(&c);
}
END_TEST

/* HEAD (no body) and DELETE go out with their methods. */
START_TEST(test_head_and_delete) {
        Ctx c;
        Result h = {}, d = {};

        ctx_init(&c, NULL);
        script(&c, "/h", (FakeStep) { .status = 200, .headers = { "Content-Type: text/plain" },
                                       .body = "not sent for HEAD" });
        script(&c, "/jobs/1", (FakeStep) { .status = 204 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_HEAD, .url = url(&c, "/h") }, &h);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_DELETE, .url = url(&c, "/jobs/1"),
                                    .idempotent = true }, &d);
        ctx_run(&c, 2);

        ck_assert_int_eq(h.error, 0);
        ck_assert_int_eq(h.status, 200);
        ck_assert_str_eq(h.body, "");
        ck_assert_str_eq(h.content_type, "text/plain");
        ck_assert_str_eq(fake_http_last(c.fake, "/h")->method, "HEAD");
        ck_assert_int_eq(d.error, 0);
        ck_assert_int_eq(d.status, 204);
        ck_assert_str_eq(fake_http_last(c.fake, "/jobs/1")->method, "DELETE");

        result_done(&h);
        result_done(&d);
        ctx_done(&c);
}
END_TEST

/* A HEAD answer's Content-Length describes the object, not a body: a large object does not
 * trip the body cap (regression: HEAD of a multi-GiB object failed with -EMSGSIZE). */
START_TEST(test_head_large_object) {
        Ctx c;
        Result h = {};

        ctx_init(&c, NULL);
        script(&c, "/big", (FakeStep) { .status = 200, .headers = { "Content-Length: 4194304" } });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_HEAD, .url = url(&c, "/big"), .max_body_bytes = 1024 }, &h);
        ctx_run(&c, 1);

        ck_assert_int_eq(h.error, 0);
        ck_assert_int_eq(h.status, 200);
        result_done(&h);
        ctx_done(&c);
}
END_TEST

/* A request that is not safe to repeat never rides a reused connection, so libcurl cannot
 * resend it after finding the connection closed; idempotent ones share one connection. */
START_TEST(test_post_fresh_connection) {
        Ctx c;
        Result g1 = {}, g2 = {}, p1 = {}, p2 = {};
        unsigned before;

        ctx_init(&c, NULL);
        script(&c, "/g", (FakeStep) { .status = 200, .body = "{}" });
        script(&c, "/p", (FakeStep) { .status = 201, .body = "{}" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/g"), .idempotent = true }, &g1);
        ctx_run(&c, 1);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/g"), .idempotent = true }, &g2);
        ctx_run(&c, 2);
        ck_assert_uint_eq(fake_http_n_connections(c.fake), 1);
        before = fake_http_n_connections(c.fake);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/p"), .body = "x", .body_len = 1 }, &p1);
        ctx_run(&c, 3);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/p"), .body = "y", .body_len = 1 }, &p2);
        ctx_run(&c, 4);
        ck_assert_int_eq(p1.status, 201);
        ck_assert_int_eq(p2.status, 201);
        ck_assert_uint_eq(fake_http_n_connections(c.fake), before + 2);

        result_done(&g1);
        result_done(&g2);
        result_done(&p1);
        result_done(&p2);
        ctx_done(&c);
}
END_TEST

/* 201 + Location is handed back, not followed. */
START_TEST(test_location_not_followed) {
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/jobs", (FakeStep) { .status = 201,
                                          .headers = { "Location: /jobs/abc",
                                                       "Content-Type: application/json" },
                                          .body = "{\"name\":\"abc\"}" });
        script(&c, "/jobs/abc", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/jobs"),
                                    .body = "{}", .body_len = 2 }, &res);
        ctx_run(&c, 1);

        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 201);
        ck_assert_str_eq(res.location, "/jobs/abc");
        ck_assert_str_eq(res.body, "{\"name\":\"abc\"}");
        ck_assert_uint_eq(fake_http_count(c.fake, "/jobs/abc"), 0);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* ---- network retries ------------------------------------------------------------------ */

/* An idempotent GET whose connection drops is retried and succeeds. */
START_TEST(test_get_dropped_is_retried) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/flaky", (FakeStep) { .action = FAKE_DROP });
        script(&c, "/flaky", (FakeStep) { .status = 200, .body = "ok" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/flaky"),
                                    .idempotent = true }, &res);
        ctx_run(&c, 1);

        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 200);
        ck_assert_str_eq(res.body, "ok");
        ck_assert_uint_eq(res.attempts, 2);
        ck_assert_uint_eq(fake_http_count(c.fake, "/flaky"), 2);
        stats = upstream_stats_json(c.up);
        ck_assert_int_eq(stat_retries(stats, "network"), 1);
        ck_assert_int_eq(stat_count(stats, "GET /flaky", "200"), 1);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* A non-idempotent POST whose connection drops is not retried. */
START_TEST(test_post_dropped_not_retried) {
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/post", (FakeStep) { .action = FAKE_DROP });
        script(&c, "/post", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/post"),
                                    .body = "x", .body_len = 1 }, &res);
        ctx_run(&c, 1);

        ck_assert_int_eq(res.error, -ECONNRESET);
        ck_assert_int_eq(res.status, 0);
        ck_assert_uint_eq(res.attempts, 1);
        ck_assert_uint_eq(fake_http_count(c.fake, "/post"), 1);
        ck_assert_str_ne(res.error_text, "");

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* A closed port: retried up to max_network_attempts for GET, once for POST. */
START_TEST(test_connection_refused) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        UpstreamOptions o = test_options();
        Ctx c;
        Result get = {}, post = {};

        o.max_network_attempts = 3;
        ctx_init(&c, &o);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = closed_url(&c, "/x"),
                                    .idempotent = true }, &get);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = closed_url(&c, "/y") },
              &post);
        ctx_run(&c, 2);

        ck_assert_int_eq(get.error, -ECONNREFUSED);
        ck_assert_uint_eq(get.attempts, 3);
        ck_assert_int_eq(post.error, -ECONNREFUSED);
        ck_assert_uint_eq(post.attempts, 1);
        stats = upstream_stats_json(c.up);
        ck_assert_int_eq(stat_retries(stats, "network"), 2);
        ck_assert_int_eq(stat_count(stats, "GET /x", "refused"), 1);
        ck_assert_int_eq(stat_count(stats, "POST /y", "refused"), 1);

        result_done(&get);
        result_done(&post);
        ctx_done(&c);
}
END_TEST

/* A server that never answers: -ETIMEDOUT at the deadline, not before. */
START_TEST(test_deadline) {
        Ctx c;
        Result res = {};
        uint64_t t0 = test_now_ms(), took;

        ctx_init(&c, NULL);
        script(&c, "/slow", (FakeStep) { .action = FAKE_HANG });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/slow"),
                                    .idempotent = true, .timeout_ms = 300 }, &res);
        ctx_run(&c, 1);
        took = test_now_ms() - t0;

        ck_assert_int_eq(res.error, -ETIMEDOUT);
        ck_assert_uint_eq(res.attempts, 1);
        ck_assert_uint_ge(took, 300 - TEST_TIMER_SLACK_MS);
        /* the request's own deadline ended it, not the 60 s default (scaled: a slow machine
         * may take longer to get there, never less) */
        ck_assert_uint_lt(took, test_deadline_ms(10000));
        ck_assert_ptr_nonnull(strstr(res.error_text, "deadline"));
        ck_assert_uint_eq(fake_http_count(c.fake, "/slow"), 1);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* The deadline passing during a backoff wait ends the request with -ETIMEDOUT. */
START_TEST(test_deadline_during_backoff) {
        UpstreamOptions o = test_options();
        Ctx c;
        Result res = {};
        uint64_t t0 = test_now_ms(), took;

        o.max_network_attempts = 100;
        o.retry_base_ms = 1000;
        o.retry_max_ms = 1000;
        o.breaker_threshold = 100;
        ctx_init(&c, &o);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = closed_url(&c, "/x"),
                                    .idempotent = true, .timeout_ms = 400 }, &res);
        ctx_run(&c, 1);
        took = test_now_ms() - t0;

        ck_assert_int_eq(res.error, -ETIMEDOUT);
        ck_assert_uint_ge(res.attempts, 1);
        ck_assert_uint_ge(took, 400 - TEST_TIMER_SLACK_MS);
        ck_assert_uint_lt(took, test_deadline_ms(10000));
        ck_assert_ptr_nonnull(strstr(res.error_text, "last error"));

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* ---- 429 ------------------------------------------------------------------------------ */

/* 429 with Retry-After (preferred over the body) is waited out and repeated. */
START_TEST(test_429_retry_after_header) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        Ctx c;
        Result res = {};
        uint64_t t0 = test_now_ms(), took;

        ctx_init(&c, NULL);
        /* The header wins over the body's retry_after: an hour, over max_retry_after_ms,
         * would hand the 429 back instead of repeating the request. */
        script(&c, "/rl", (FakeStep) { .status = 429,
                                        .headers = { "Retry-After: 1",
                                                     "Content-Type: application/json" },
                                        .body = "{\"retry_after\": 3600}" });
        script(&c, "/rl", (FakeStep) { .status = 200, .body = "done" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/rl"),
                                    .body = "{}", .body_len = 2 }, &res);
        ctx_run(&c, 1);
        took = test_now_ms() - t0;

        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 200);
        ck_assert_str_eq(res.body, "done");
        ck_assert_uint_eq(res.attempts, 2);
        ck_assert_uint_eq(fake_http_count(c.fake, "/rl"), 2);
        ck_assert_str_eq(fake_http_last(c.fake, "/rl")->body, "{}");
        ck_assert_uint_ge(took, 1000 - TEST_TIMER_SLACK_MS);
        stats = upstream_stats_json(c.up);
        ck_assert_int_eq(stat_retries(stats, "rate_limited"), 1);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* 429 with the body's retry_after only: that wait is honoured. */
START_TEST(test_429_json_retry_after) {
        Ctx c;
        Result res = {};
        uint64_t t0 = test_now_ms(), took;

        ctx_init(&c, NULL);
        script(&c, "/rl", (FakeStep) { .status = 429,
                                        .headers = { "Content-Type: application/json" },
                                        .body = "{\"message\":\"slow\",\"retry_after\":1.5}" });
        script(&c, "/rl", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/rl") }, &res);
        ctx_run(&c, 1);
        took = test_now_ms() - t0;

        ck_assert_int_eq(res.status, 200);
        ck_assert_uint_eq(fake_http_count(c.fake, "/rl"), 2);
        ck_assert_uint_ge(took, 1500 - TEST_TIMER_SLACK_MS);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* 429 beyond max_rate_limit_retries: status 429 with retry_after_ms. */
START_TEST(test_429_exhausted) {
        UpstreamOptions o = test_options();
        Ctx c;
        Result res = {};

        o.max_rate_limit_retries = 1;
        ctx_init(&c, &o);
        script(&c, "/rl", (FakeStep) { .status = 429, .headers = { "Retry-After: 1" },
                                        .body = "{\"message\":\"too many\"}" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/rl") }, &res);
        ctx_run(&c, 1);

        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 429);
        ck_assert_int_eq(res.retry_after_ms, 1000);
        ck_assert_str_eq(res.body, "{\"message\":\"too many\"}");
        ck_assert_uint_eq(res.attempts, 2);
        ck_assert_uint_eq(fake_http_count(c.fake, "/rl"), 2);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* A Retry-After (seconds or HTTP date) over max_retry_after_ms is handed back at once. */
START_TEST(test_429_wait_too_long) {
        UpstreamOptions o = test_options();
        char date[64], line[96];
        time_t t = time(NULL) + 3;
        struct tm tm;
        Ctx c;
        Result secs = {}, when = {};

        o.max_retry_after_ms = 500;
        ctx_init(&c, &o);
        script(&c, "/secs", (FakeStep) { .status = 429, .headers = { "Retry-After: 120" } });
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
        snprintf(line, sizeof(line), "Retry-After: %s", date);
        script(&c, "/date", (FakeStep) { .status = 429, .headers = { line } });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/secs") }, &secs);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/date") }, &when);
        ctx_run(&c, 2);

        /* Longer than max_retry_after_ms: handed back at once with the wait, which is
         * neither waited out nor followed by another attempt. */
        ck_assert_int_eq(secs.status, 429);
        ck_assert_int_eq(secs.retry_after_ms, 120000);
        ck_assert_uint_eq(secs.attempts, 1);
        ck_assert_uint_eq(fake_http_count(c.fake, "/secs"), 1);
        ck_assert_uint_lt(secs.elapsed_ms, 120000);
        ck_assert_int_eq(when.status, 429);
        ck_assert_uint_eq(when.attempts, 1);
        ck_assert_int_ge(when.retry_after_ms, 1000);
        ck_assert_int_le(when.retry_after_ms, 4000);
        ck_assert_uint_eq(fake_http_count(c.fake, "/date"), 1);

        result_done(&secs);
        result_done(&when);
        ctx_done(&c);
}
END_TEST

/* ---- body caps ------------------------------------------------------------------------ */

/* Bodies over max_body_bytes end with -EMSGSIZE, by Content-Length or while streaming. */
START_TEST(test_body_cap) {
        Download d = {};
        Ctx c;
        Result known = {}, chunked = {}, err = {}, fits = {};

        ctx_init(&c, NULL);
        script(&c, "/big", (FakeStep) { .status = 200, .fill_bytes = 10000 });
        script(&c, "/big-chunked", (FakeStep) { .action = FAKE_STREAM, .status = 200,
                                                 .fill_bytes = 10000, .chunk_size = 700 });
        script(&c, "/big-error", (FakeStep) { .action = FAKE_STREAM, .status = 500,
                                               .fill_bytes = 10000, .chunk_size = 700 });
        script(&c, "/fits", (FakeStep) { .status = 200, .fill_bytes = 1000 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/big"),
                                    .max_body_bytes = 1000, .idempotent = true }, &known);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/big-chunked"),
                                    .max_body_bytes = 1000, .idempotent = true }, &chunked);
        /* Error bodies are capped even when 2xx bodies go to a sink. */
        d.ctx = &c;
        d.req = &err.req;
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/big-error"),
                                    .max_body_bytes = 1000, .sink = on_sink,
                                    .stream_userdata = &d }, &err);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/fits"),
                                    .max_body_bytes = 1000 }, &fits);
        ctx_run(&c, 4);

        ck_assert_int_eq(known.error, -EMSGSIZE);
        ck_assert_uint_eq(known.attempts, 1);
        ck_assert_int_eq(chunked.error, -EMSGSIZE);
        ck_assert_uint_eq(chunked.attempts, 1);
        ck_assert_str_eq(chunked.body, "");
        ck_assert_int_eq(err.error, -EMSGSIZE);
        ck_assert_uint_eq(d.calls, 0);
        ck_assert_int_eq(fits.error, 0);
        ck_assert_uint_eq(fits.body_len, 1000);

        result_done(&known);
        result_done(&chunked);
        result_done(&err);
        result_done(&fits);
        ctx_done(&c);
}
END_TEST

/* Builds the suite. */
static Suite *upstream_suite(void) {
        Suite *s = suite_create("upstream");
        TCase *plain = tcase_create("plain"), *retry = tcase_create("retry");

        tcase_add_test(plain, test_get_json);
        tcase_add_test(plain, test_post_body_and_headers);
        tcase_add_test(plain, test_post_empty_body);
        tcase_add_test(plain, test_user_agent);
        tcase_add_test(plain, test_http_errors_not_retried);
        tcase_add_test(plain, test_head_and_delete);
        tcase_add_test(plain, test_head_large_object);
        tcase_add_test(plain, test_post_fresh_connection);
        tcase_add_test(plain, test_location_not_followed);
        tcase_add_test(plain, test_body_cap);
        suite_add_tcase(s, plain);

        tcase_add_test(retry, test_get_dropped_is_retried);
        tcase_add_test(retry, test_post_dropped_not_retried);
        tcase_add_test(retry, test_connection_refused);
        tcase_add_test(retry, test_deadline);
        tcase_add_test(retry, test_deadline_during_backoff);
        tcase_add_test(retry, test_429_retry_after_header);
        tcase_add_test(retry, test_429_json_retry_after);
        tcase_add_test(retry, test_429_exhausted);
        tcase_add_test(retry, test_429_wait_too_long);
        suite_add_tcase(s, retry);
        return s;
}

/* Runs the suite. */
int main(void) {
        return upstream_test_main(upstream_suite());
}
