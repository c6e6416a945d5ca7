/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of daemon/upstream.c: a real event loop per test, the Upstream client
 * and an in-process evhttp server (fake-http.c) on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "fake-http.h"
#include "log.h"
#include "macro.h"
#include "test-wait.h"
#include "upstream.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
#define URLS_MAX 64

typedef struct Ctx Ctx;

/* What a completion callback saw. */
typedef struct Result {
        Ctx *ctx;
        unsigned calls;
        int error;
        char *error_text;
        long status;
        char *body;
        size_t body_len;
        char *content_type;
        char *location;
        long long retry_after_ms;
        unsigned attempts;
        uint64_t elapsed_ms;
        UpstreamRequest *req;
        UpstreamRequest *cancel_other; /* cancelled from this request's callback */
        bool free_upstream;            /* upstream_free() from this request's callback */
        bool cancel_self;              /* cancel this very request from its callback */
} Result;

struct Ctx {
        struct event_base *base;
        FakeHttp *fake;
        Upstream *up;
        unsigned done;
        unsigned expect;
        char *urls[URLS_MAX];
        size_t n_urls;
};

/* Options every test starts from: verification on, quick retries. */
static UpstreamOptions test_options(void) {
        return (UpstreamOptions) {
                .verify_ssl = true,
                .retry_base_ms = 10,
                .retry_max_ms = 40,
        };
}

/* Creates the loop, the fake server and the client. */
static void ctx_init(Ctx *c, const UpstreamOptions *opts) {
        UpstreamOptions o = opts ? *opts : test_options();
        int r;

        *c = (Ctx) {};
        c->base = event_base_new();
        ck_assert_ptr_nonnull(c->base);
        r = fake_http_new(c->base, &c->fake);
        ck_assert_int_eq(r, 0);
        r = upstream_new(c->base, &o, &c->up);
        ck_assert_int_eq(r, 0);
}

/* Frees everything. */
static void ctx_done(Ctx *c) {
        c->up = upstream_free(c->up);
        c->fake = fake_http_free(c->fake);
        event_base_free(c->base);
        for (size_t i = 0; i < c->n_urls; i++)
                free(c->urls[i]);
}

/* A URL on the fake server, owned by the context. */
static const char *url(Ctx *c, const char *path) {
        char *u = fake_http_url(c->fake, path);

        ck_assert_ptr_nonnull(u);
        ck_assert_uint_lt(c->n_urls, URLS_MAX);
        c->urls[c->n_urls++] = u;
        return u;
}

/* A URL on a local port nobody listens on. */
static const char *closed_url(Ctx *c, const char *path) {
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        char *u;
        int fd;

        fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        close(fd);
        ck_assert_int_ge(asprintf(&u, "http://127.0.0.1:%u%s", ntohs(sa.sin_port), path), 0);
        c->urls[c->n_urls++] = u;
        return u;
}

/* Whether the expected number of completions came in. */
static bool ctx_all_done(void *arg) {
        Ctx *c = arg;

        return c->done >= c->expect;
}

/* Runs the loop until `expect` completions in total; fails when they do not come. */
static void ctx_run(Ctx *c, unsigned expect) {
        c->expect = expect;
        ck_assert_msg(test_wait_until(c->base, ctx_all_done, c, TEST_WAIT_MS),
                      "timed out with %u of %u completions", c->done, expect);
        ck_assert_uint_eq(c->done, expect);
}

/* Runs the loop until cond(arg) holds; fails when it does not. */
static void ctx_wait(Ctx *c, TestCondition cond, void *arg, const char *what) {
        ck_assert_msg(test_wait_until(c->base, cond, arg, TEST_WAIT_MS), "timed out waiting for %s",
                      what);
}

/* A number of requests the fake server is to have received on a path. */
typedef struct Arrivals {
        Ctx *ctx;
        const char *path;
        size_t n;
} Arrivals;

static bool arrived(void *arg) {
        const Arrivals *a = arg;

        return fake_http_count(a->ctx->fake, a->path) >= a->n;
}

/* Runs the loop until the fake server has received n requests on a path. */
static void ctx_wait_requests(Ctx *c, const char *path, size_t n) {
        Arrivals a = { .ctx = c, .path = path, .n = n };

        ctx_wait(c, arrived, &a, path);
}

/* After what a test waited for: runs the loop for a while to see that nothing more happens
 * (no late callback, no further request). */
static void ctx_quiet(Ctx *c) {
        test_run_quiet(c->base, 100);
}

/* Frees a result's copies. */
static void result_done(Result *r) {
        free(r->error_text);
        free(r->body);
        free(r->content_type);
        free(r->location);
}

/* Completion: copies what the response says, counts, stops the loop when all are in. */
static void on_done(const UpstreamResponse *resp, void *userdata) {
        Result *r = userdata;
        Ctx *c = r->ctx;
        UpstreamRequest *self = r->req;
        const char *loc;

        ck_assert_ptr_eq(resp->request, self);
        ck_assert_ptr_nonnull(resp->error_text);
        ck_assert_ptr_nonnull(resp->body);
        ck_assert_uint_eq(strlen(resp->body), resp->body_len);
        result_done(r);
        r->calls++;
        r->error = resp->error;
        r->error_text = strdup(resp->error_text);
        r->status = resp->status;
        r->body = strndup(resp->body, resp->body_len);
        r->body_len = resp->body_len;
        r->content_type = resp->content_type ? strdup(resp->content_type) : NULL;
        loc = upstream_response_header(resp, "location");
        r->location = loc ? strdup(loc) : NULL;
        r->retry_after_ms = resp->retry_after_ms;
        r->attempts = resp->attempts;
        r->elapsed_ms = resp->elapsed_ms;
        r->req = NULL;

        if (r->cancel_other)
                upstream_request_cancel(r->cancel_other);
        if (r->cancel_self)
                upstream_request_cancel(self); /* a no-op: it is being delivered */
        if (r->free_upstream)
                c->up = upstream_free(c->up);

        c->done++;
        if (c->done >= c->expect)
                event_base_loopbreak(c->base);
}

/* Starts a call whose completion lands in `res`. */
static void start(Ctx *c, const UpstreamCall *call, Result *res) {
        int r;

        res->ctx = c;
        r = upstream_request_start(c->up, call, on_done, res, &res->req);
        ck_assert_msg(r == 0, "start %s: %s", call->url, strerror(-r));
}

/* Scripts one step for a path. */
static void script(Ctx *c, const char *path, FakeStep step) {
        ck_assert_int_eq(fake_http_script(c->fake, path, &step, 1), 0);
}

/* The integer at stats.requests[label][key], 0 when absent. */
static int64_t stat_count(json_object *stats, const char *label, const char *key) {
        json_object *req, *l, *v;

        if (!json_object_object_get_ex(stats, "requests", &req) ||
            !json_object_object_get_ex(req, label, &l) ||
            !json_object_object_get_ex(l, key, &v))
                return 0;
        return json_object_get_int64(v);
}

/* stats.retries[key]. */
static int64_t stat_retries(json_object *stats, const char *key) {
        json_object *r, *v;

        if (!json_object_object_get_ex(stats, "retries", &r) ||
            !json_object_object_get_ex(r, key, &v))
                return -1;
        return json_object_get_int64(v);
}

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

/* A sink that keeps everything. */
typedef struct Download {
        Ctx *ctx;
        UpstreamRequest **req;
        char *data;
        size_t len;
        unsigned calls;
        unsigned pauses_left;
        size_t pause_every;     /* pause again once this many more bytes arrived */
        size_t next_pause_at;
        struct event *resume;   /* activated by hand: resumes from the loop */
        int fail_with;          /* return this instead of consuming */
        bool cancel_self;
        bool start_other;
        Result *other;
        const char *other_url;
} Download;

/* libevent: resume a paused download. */
static void on_resume_download(evutil_socket_t fd, short what, void *userdata) {
        Download *d = userdata;

        (void) fd;
        (void) what;
        upstream_request_resume(*d->req);
}

/* Sink: pauses as scripted, otherwise appends. */
static ssize_t on_sink(void *userdata, const char *buf, size_t len) {
        Download *d = userdata;
        char *n;

        d->calls++;
        if (d->cancel_self) {
                upstream_request_cancel(*d->req);
                /* no completion will count it */
                if (++d->ctx->done >= d->ctx->expect)
                        event_base_loopbreak(d->ctx->base);
                return -EAGAIN;
        }
        if (d->start_other) {
                d->start_other = false;
                start(d->ctx, &(UpstreamCall) { .method = UPSTREAM_GET, .url = d->other_url },
                      d->other);
        }
        if (d->fail_with < 0)
                return d->fail_with;
        if (d->pauses_left > 0 && d->len >= d->next_pause_at) {
                d->pauses_left--;
                d->next_pause_at = d->len + d->pause_every;
                /* resumed from the loop once libcurl has taken the pause */
                event_active(d->resume, EV_TIMEOUT, 1);
                return -EAGAIN;
        }
        n = realloc(d->data, d->len + len + 1);
        ck_assert_ptr_nonnull(n);
        d->data = n;
        memcpy(d->data + d->len, buf, len);
        d->len += len;
        d->data[d->len] = '\0';
        return (ssize_t) len;
}

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

/* ---- streaming ------------------------------------------------------------------------ */

/* A streaming request body: a byte pattern, served in pieces, with one -EAGAIN. */
typedef struct Upload {
        UpstreamRequest **req;
        size_t total;
        size_t off;
        size_t piece;
        bool pause_once;
        bool never_resume;      /* the pause is for good */
        bool paused;
        unsigned pauses;
        unsigned rewinds;
        int fail_with;
        struct event *resume;   /* activated by hand: resumes from the loop */
} Upload;

/* The byte at offset i of an upload. */
static char upload_byte(size_t i) {
        return (char) ('a' + i % 26);
}

/* Whether a received body is the upload pattern of length n. */
static bool upload_matches(const char *body, size_t len, size_t n) {
        if (len != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (body[i] != upload_byte(i))
                        return false;
        return true;
}

/* libevent: resume a paused upload. */
static void on_resume_upload(evutil_socket_t fd, short what, void *userdata) {
        Upload *u = userdata;

        (void) fd;
        (void) what;
        u->paused = false;
        upstream_request_resume(*u->req);
}

/* body_read: the pattern, piece by piece; pauses once half way. */
static ssize_t on_body_read(void *userdata, char *buf, size_t len) {
        Upload *u = userdata;
        size_t n;

        if (u->fail_with < 0 && u->off > 0)
                return u->fail_with;
        if (u->off >= u->total)
                return 0;
        if (u->pause_once && u->off >= u->total / 2) {
                u->pause_once = false;
                u->paused = true;
                u->pauses++;
                /* resumed from the loop once libcurl has taken the pause */
                if (!u->never_resume)
                        event_active(u->resume, EV_TIMEOUT, 1);
                return -EAGAIN;
        }
        ck_assert(!u->paused);
        n = MIN(MIN(len, u->piece), u->total - u->off);
        for (size_t i = 0; i < n; i++)
                buf[i] = upload_byte(u->off + i);
        u->off += n;
        return (ssize_t) n;
}

/* body_rewind. */
static int on_body_rewind(void *userdata) {
        Upload *u = userdata;

        u->rewinds++;
        u->off = 0;
        return 0;
}

/* Streaming PUT (sized) and POST (chunked) bodies with a pause and resume. */
START_TEST(test_streaming_upload) {
        Ctx c;
        Result put = {}, post = {};
        Upload a = { .total = 50000, .piece = 3000, .pause_once = true };
        Upload b = { .total = 20000, .piece = 1000, .pause_once = true };
        const FakeRequest *fr;

        ctx_init(&c, NULL);
        a.req = &put.req;
        b.req = &post.req;
        a.resume = event_new(c.base, -1, 0, on_resume_upload, &a);
        b.resume = event_new(c.base, -1, 0, on_resume_upload, &b);
        script(&c, "/put", (FakeStep) { .status = 200 });
        script(&c, "/post", (FakeStep) { .status = 201 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_PUT, .url = url(&c, "/put"),
                                    .body_read = on_body_read, .body_size = 50000,
                                    .stream_userdata = &a }, &put);
        /* Unknown size: sent chunked. */
        start(&c, &(UpstreamCall) { .method = UPSTREAM_POST, .url = url(&c, "/post"),
                                    .body_read = on_body_read, .body_size = -1,
                                    .stream_userdata = &b }, &post);
        ctx_run(&c, 2);

        ck_assert_int_eq(put.error, 0);
        ck_assert_int_eq(put.status, 200);
        ck_assert_uint_eq(a.pauses, 1);
        fr = fake_http_last(c.fake, "/put");
        ck_assert_str_eq(fr->method, "PUT");
        ck_assert_str_eq(fake_request_header(fr, "Content-Length"), "50000");
        ck_assert_ptr_null(fake_request_header(fr, "Expect"));
        ck_assert(upload_matches(fr->body, fr->body_len, 50000));

        ck_assert_int_eq(post.error, 0);
        ck_assert_int_eq(post.status, 201);
        ck_assert_uint_eq(b.pauses, 1);
        fr = fake_http_last(c.fake, "/post");
        ck_assert_str_eq(fr->method, "POST");
        ck_assert_str_eq(fake_request_header(fr, "Transfer-Encoding"), "chunked");
        ck_assert_ptr_null(fake_request_header(fr, "Expect"));
        ck_assert(upload_matches(fr->body, fr->body_len, 20000));

        event_free(a.resume);
        event_free(b.resume);
        result_done(&put);
        result_done(&post);
        ctx_done(&c);
}
END_TEST

/* A consumed streaming body is repeated only with a rewind callback; read errors abort. */
START_TEST(test_streaming_upload_retry_needs_rewind) {
        Ctx c;
        Result with = {}, without = {}, failing = {};
        Upload a = { .total = 5000, .piece = 1000 }, b = { .total = 5000, .piece = 1000 };
        Upload f = { .total = 5000, .piece = 1000, .fail_with = -EBADF };

        ctx_init(&c, NULL);
        a.req = &with.req;
        b.req = &without.req;
        f.req = &failing.req;
        script(&c, "/with", (FakeStep) { .action = FAKE_DROP });
        script(&c, "/with", (FakeStep) { .status = 200 });
        script(&c, "/without", (FakeStep) { .action = FAKE_DROP });
        script(&c, "/without", (FakeStep) { .status = 200 });
        script(&c, "/failing", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_PUT, .url = url(&c, "/with"),
                                    .body_read = on_body_read, .body_rewind = on_body_rewind,
                                    .body_size = 5000, .stream_userdata = &a,
                                    .idempotent = true }, &with);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_PUT, .url = url(&c, "/without"),
                                    .body_read = on_body_read, .body_size = 5000,
                                    .stream_userdata = &b, .idempotent = true }, &without);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_PUT, .url = url(&c, "/failing"),
                                    .body_read = on_body_read, .body_size = 5000,
                                    .stream_userdata = &f, .idempotent = true }, &failing);
        ctx_run(&c, 3);

        ck_assert_int_eq(with.error, 0);
        ck_assert_uint_eq(with.attempts, 2);
        ck_assert_uint_eq(a.rewinds, 1);
        ck_assert(upload_matches(fake_http_last(c.fake, "/with")->body,
                                 fake_http_last(c.fake, "/with")->body_len, 5000));
        ck_assert_int_eq(without.error, -ECONNRESET);
        ck_assert_uint_eq(without.attempts, 1);
        ck_assert_uint_eq(fake_http_count(c.fake, "/without"), 1);
        ck_assert_int_eq(failing.error, -EBADF);
        ck_assert_uint_eq(failing.attempts, 1);

        result_done(&with);
        result_done(&without);
        result_done(&failing);
        ctx_done(&c);
}
END_TEST

/* A sink with pauses gets every byte once; error bodies and sink errors. */
START_TEST(test_streaming_download) {
        Ctx c;
        Result res = {}, nf = {}, bad = {};
        Download d = { .pauses_left = 2, .pause_every = 8000 };
        Download d404 = {}, dbad = { .fail_with = -EPIPE };

        ctx_init(&c, NULL);
        d.ctx = d404.ctx = dbad.ctx = &c;
        d.req = &res.req;
        d404.req = &nf.req;
        dbad.req = &bad.req;
        d.resume = event_new(c.base, -1, 0, on_resume_download, &d);
        script(&c, "/file", (FakeStep) { .action = FAKE_STREAM, .status = 200,
                                          .fill_bytes = 20000, .chunk_size = 4096,
                                          .chunk_interval_ms = 5 });
        script(&c, "/missing", (FakeStep) { .status = 404, .body = "{\"message\":\"gone\"}" });
        script(&c, "/bad", (FakeStep) { .status = 200, .fill_bytes = 5000 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/file"),
                                    .sink = on_sink, .stream_userdata = &d,
                                    .max_body_bytes = 100 /* does not apply to the sink */ },
              &res);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/missing"),
                                    .sink = on_sink, .stream_userdata = &d404 }, &nf);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/bad"),
                                    .sink = on_sink, .stream_userdata = &dbad,
                                    .idempotent = true }, &bad);
        ctx_run(&c, 3);

        ck_assert_int_eq(res.error, 0);
        ck_assert_int_eq(res.status, 200);
        ck_assert_str_eq(res.body, "");
        ck_assert_uint_eq(d.pauses_left, 0);
        ck_assert_uint_eq(d.len, 20000);
        for (size_t i = 0; i < d.len; i++)
                ck_assert_int_eq(d.data[i], 'x');

        /* error bodies stay in memory for the message; the sink sees nothing */
        ck_assert_int_eq(nf.status, 404);
        ck_assert_str_eq(nf.body, "{\"message\":\"gone\"}");
        ck_assert_uint_eq(d404.calls, 0);

        /* a sink error ends the request with that error, not retried */
        ck_assert_int_eq(bad.error, -EPIPE);
        ck_assert_uint_eq(bad.attempts, 1);

        event_free(d.resume);
        free(d.data);
        free(d404.data);
        result_done(&res);
        result_done(&nf);
        result_done(&bad);
        ctx_done(&c);
}
END_TEST

/* Cancelling itself and starting a request from inside a sink. */
START_TEST(test_cancel_and_start_from_sink) {
        Ctx c;
        Result self = {}, host = {}, other = {};
        Download dself = { .cancel_self = true }, dhost = { .start_other = true };

        ctx_init(&c, NULL);
        dself.ctx = dhost.ctx = &c;
        dself.req = &self.req;
        dhost.req = &host.req;
        dhost.other = &other;
        dhost.other_url = url(&c, "/other");
        script(&c, "/self", (FakeStep) { .action = FAKE_STREAM, .fill_bytes = 10000,
                                          .chunk_size = 1000, .chunk_interval_ms = 5 });
        script(&c, "/host", (FakeStep) { .status = 200, .fill_bytes = 100 });
        script(&c, "/other", (FakeStep) { .status = 200, .body = "other" });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/self"),
                                    .sink = on_sink, .stream_userdata = &dself }, &self);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/host"),
                                    .sink = on_sink, .stream_userdata = &dhost }, &host);
        /* self counts itself when it cancels; host and the request started from its sink */
        ctx_run(&c, 3);
        ctx_quiet(&c);

        ck_assert_uint_eq(self.calls, 0);
        ck_assert_uint_eq(dself.calls, 1);
        ck_assert_uint_eq(host.calls, 1);
        ck_assert_int_eq(host.error, 0);
        ck_assert_uint_eq(dhost.len, 100);
        ck_assert_uint_eq(other.calls, 1);
        ck_assert_str_eq(other.body, "other");
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);

        free(dhost.data);
        result_done(&self);
        result_done(&host);
        result_done(&other);
        ctx_done(&c);
}
END_TEST

/* ---- cancel and free ------------------------------------------------------------------ */

/* A cancelled request never calls back and leaves nothing behind. */
START_TEST(test_cancel_in_flight) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        Ctx c;
        Result res = {};

        ctx_init(&c, NULL);
        script(&c, "/hang", (FakeStep) { .action = FAKE_HANG });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/hang") }, &res);
        /* cancelled once the server has it: a transfer in progress, not one still starting */
        ctx_wait_requests(&c, "/hang", 1);
        ck_assert_uint_eq(upstream_in_flight(c.up), 1);
        upstream_request_cancel(res.req);
        res.req = NULL;
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        ctx_quiet(&c);

        ck_assert_uint_eq(res.calls, 0);
        ck_assert_uint_eq(fake_http_count(c.fake, "/hang"), 1);
        stats = upstream_stats_json(c.up);
        ck_assert_int_eq(stat_count(stats, "GET /hang", "cancelled"), 1);
        upstream_request_cancel(NULL);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* Cancels from completion callbacks: another request's, and its own. */
START_TEST(test_cancel_from_callback) {
        Ctx c;
        Result fast = {}, slow = {}, a = {}, b = {};

        ctx_init(&c, NULL);
        script(&c, "/fast", (FakeStep) { .status = 200 });
        script(&c, "/slow", (FakeStep) { .action = FAKE_HANG });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/fast") }, &fast);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/slow") }, &slow);
        fast.cancel_other = slow.req;
        fast.cancel_self = true;
        ctx_run(&c, 1);
        ctx_quiet(&c);
        ck_assert_uint_eq(fast.calls, 1);
        ck_assert_int_eq(fast.status, 200);
        ck_assert_uint_eq(slow.calls, 0);

        /* Two answers that may land in the same drain: whoever is delivered first cancels
         * the other, which must then never be called. */
        c.done = 0;
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/fast") }, &a);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/fast") }, &b);
        a.cancel_other = b.req;
        b.cancel_other = a.req;
        ctx_run(&c, 1);
        ctx_quiet(&c);
        ck_assert_uint_eq(a.calls + b.calls, 1);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);

        result_done(&fast);
        result_done(&slow);
        result_done(&a);
        result_done(&b);
        ctx_done(&c);
}
END_TEST

/* test_free_with_requests_in_flight: the server has the hanging and the held request, and
 * the upload has paused. */
typedef struct InFlight {
        Ctx *ctx;
        const Upload *upload;
} InFlight;

static bool in_flight_settled(void *arg) {
        const InFlight *f = arg;

        return fake_http_count(f->ctx->fake, "/hang") == 1 &&
               fake_http_count(f->ctx->fake, "/held") == 1 && f->upload->pauses == 1;
}

/* Whether a network retry has been scheduled. Checked after every loop turn, so it first
 * holds right after the turn in which the request went into its backoff wait. */
static bool network_retry_scheduled(void *arg) {
        _cleanup_(json_object_putp) json_object *stats = upstream_stats_json(((Ctx *) arg)->up);

        return stat_retries(stats, "network") >= 1;
}

/* upstream_free() with requests hanging, held by the server, backing off and paused. */
START_TEST(test_free_with_requests_in_flight) {
        UpstreamOptions o = test_options();
        Upload up = { .total = 100000, .piece = 100, .pause_once = true, .never_resume = true };
        Ctx c;
        Result hang = {}, held = {}, backoff = {}, upload = {};
        InFlight f = { .ctx = &c, .upload = &up };

        /* long backoffs (with full jitter a wait may still be short: the free below comes
         * right after the wait was scheduled) */
        o.retry_base_ms = 5000;
        o.retry_max_ms = 5000;
        ctx_init(&c, &o);
        up.req = &upload.req;
        script(&c, "/hang", (FakeStep) { .action = FAKE_HANG });
        script(&c, "/held", (FakeStep) { .action = FAKE_HOLD, .status = 200 });
        script(&c, "/upload", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/hang") }, &hang);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/held") }, &held);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_PUT, .url = url(&c, "/upload"),
                                    .body_read = on_body_read, .body_size = 100000,
                                    .stream_userdata = &up }, &upload);
        ctx_wait(&c, in_flight_settled, &f, "the requests to reach the server and the pause");
        /* the request to a closed port last: it is freed in its backoff wait, not in a
         * later attempt */
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = closed_url(&c, "/b"),
                                    .idempotent = true }, &backoff);
        ctx_wait(&c, network_retry_scheduled, &c, "a backoff wait");
        ck_assert_uint_eq(backoff.calls, 0);
        ck_assert_uint_eq(upstream_in_flight(c.up), 4);
        c.up = upstream_free(c.up);
        ck_assert_ptr_null(c.up);
        ck_assert_uint_eq(up.pauses, 1);
        ctx_quiet(&c);

        ck_assert_uint_eq(hang.calls + held.calls + backoff.calls + upload.calls, 0);

        result_done(&hang);
        result_done(&held);
        result_done(&backoff);
        result_done(&upload);
        ctx_done(&c);
}
END_TEST

/* upstream_free() from inside a completion callback. */
START_TEST(test_free_from_callback) {
        Ctx c;
        Result fast = {}, slow = {};

        ctx_init(&c, NULL);
        script(&c, "/fast", (FakeStep) { .status = 200 });
        script(&c, "/slow", (FakeStep) { .action = FAKE_HANG });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/slow") }, &slow);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/fast") }, &fast);
        fast.free_upstream = true;
        ctx_run(&c, 1);
        ck_assert_ptr_null(c.up);
        ctx_quiet(&c);
        ck_assert_uint_eq(fast.calls, 1);
        ck_assert_int_eq(fast.status, 200);
        ck_assert_uint_eq(slow.calls, 0);

        result_done(&fast);
        result_done(&slow);
        ctx_done(&c);
}
END_TEST

/* ---- concurrency and reuse ------------------------------------------------------------ */

/* A hundred concurrent requests all complete, within the connection limit. */
START_TEST(test_hundred_concurrent) {
        Ctx c;
        Result *res = calloc(100, sizeof(Result));
        const char *u;

        ck_assert_ptr_nonnull(res);
        ctx_init(&c, NULL);
        /* The first 16 answers are held: the limit's worth of requests in progress at once;
         * the others are answered as they come. */
        for (size_t i = 0; i < 16; i++)
                script(&c, "/many", (FakeStep) { .action = FAKE_HOLD, .status = 200,
                                                  .body = "m" });
        script(&c, "/many", (FakeStep) { .status = 200, .body = "m" });
        u = url(&c, "/many");
        for (size_t i = 0; i < 100; i++)
                start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u,
                                            .idempotent = true }, &res[i]);
        ck_assert_uint_eq(upstream_in_flight(c.up), 100);

        /* max_host_connections (16) requests reach the server side by side, each on a
         * connection of its own, and no more while they are held */
        ctx_wait_requests(&c, "/many", 16);
        ctx_quiet(&c);
        ck_assert_uint_eq(fake_http_count(c.fake, "/many"), 16);
        ck_assert_uint_eq(fake_http_n_connections(c.fake), 16);
        ck_assert_uint_eq(c.done, 0);
        ck_assert_uint_eq(fake_http_release(c.fake, "/many"), 16);
        ctx_run(&c, 100);

        for (size_t i = 0; i < 100; i++) {
                ck_assert_uint_eq(res[i].calls, 1);
                ck_assert_int_eq(res[i].error, 0);
                ck_assert_int_eq(res[i].status, 200);
                ck_assert_str_eq(res[i].body, "m");
                result_done(&res[i]);
        }
        ck_assert_uint_eq(fake_http_count(c.fake, "/many"), 100);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        /* max_host_connections (16) bounds the connections */
        ck_assert_uint_le(fake_http_n_connections(c.fake), 16);

        free(res);
        ctx_done(&c);
}
END_TEST

/* Completion that starts the next of a chain of sequential requests. */
static void on_chain_done(const UpstreamResponse *resp, void *userdata) {
        Ctx *c = userdata;
        int r;

        ck_assert_int_eq(resp->error, 0);
        ck_assert_int_eq(resp->status, 200);
        c->done++;
        if (c->done >= c->expect) {
                event_base_loopbreak(c->base);
                return;
        }
        r = upstream_request_start(c->up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                            .url = c->urls[0] },
                                   on_chain_done, c, NULL);
        ck_assert_int_eq(r, 0);
}

/* Sequential requests share one TCP connection. */
START_TEST(test_connection_reuse) {
        Ctx c;
        int r;

        ctx_init(&c, NULL);
        script(&c, "/seq", (FakeStep) { .status = 200, .body = "s" });
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                           .url = url(&c, "/seq") },
                                   on_chain_done, &c, NULL);
        ck_assert_int_eq(r, 0);
        ctx_run(&c, 4);

        ck_assert_uint_eq(fake_http_count(c.fake, "/seq"), 4);
        ck_assert_uint_eq(fake_http_n_connections(c.fake), 1);

        ctx_done(&c);
}
END_TEST

/* ---- circuit breaker ------------------------------------------------------------------ */

/* A cooldown no test outlasts: an open circuit is checked to fail fast while it stays open
 * however slow the machine. The cooldown is read when a request is admitted, so lowering it
 * (as a reload would) lets the tests wait for the half-open trial. */
#define COOLDOWN_LONG_MS (3600u * 1000u)
#define COOLDOWN_MS 1000u

/* Knocks on a host whose circuit is open: starts a call again each time it fails fast, until
 * the breaker lets one through as its half-open trial, whose completion lands in `trial`.
 * The refusals come back from the loop, so the cooldown is waited out without a timer. */
typedef struct Knock {
        Ctx *ctx;
        UpstreamCall call;
        Result *trial;
        unsigned refused;
} Knock;

static void on_knock_done(const UpstreamResponse *resp, void *userdata);

/* Starts one knock. */
static void knock(Knock *k) {
        int r;

        k->trial->ctx = k->ctx;
        r = upstream_request_start(k->ctx->up, &k->call, on_knock_done, k, &k->trial->req);
        ck_assert_int_eq(r, 0);
}

/* Completion of a knock: refused while the circuit is open, or the trial's own. */
static void on_knock_done(const UpstreamResponse *resp, void *userdata) {
        Knock *k = userdata;

        if (resp->error == -EHOSTDOWN && resp->attempts == 0) {
                ck_assert_ptr_nonnull(strstr(resp->error_text, "circuit open"));
                k->refused++;
                knock(k);
                return;
        }
        on_done(resp, k->trial);
}

/* The breaker opens, fails fast, goes half open after the cooldown and closes. */
START_TEST(test_circuit_breaker) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        UpstreamOptions o = test_options();
        json_object *br, *e, *v;
        Ctx c;
        Result f1 = {}, f2 = {}, fast = {}, trial = {}, during = {}, after = {};
        Knock k = { .ctx = &c, .trial = &trial };
        const char *u;
        char key[64];
        uint64_t t_open;

        o.breaker_threshold = 2;
        o.breaker_cooldown_ms = COOLDOWN_LONG_MS;
        o.max_network_attempts = 1;
        ctx_init(&c, &o);
        u = url(&c, "/b");
        script(&c, "/b", (FakeStep) { .action = FAKE_DROP });
        script(&c, "/b", (FakeStep) { .action = FAKE_DROP });
        /* the trial's answer waits until the others have been refused meanwhile */
        script(&c, "/b", (FakeStep) { .action = FAKE_HOLD, .status = 200 });
        script(&c, "/b", (FakeStep) { .status = 200 });

        ck_assert_str_eq(upstream_breaker_state(c.up, u), "closed");
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u, .idempotent = true }, &f1);
        ctx_run(&c, 1);
        ck_assert_int_eq(f1.error, -ECONNRESET);
        ck_assert_str_eq(upstream_breaker_state(c.up, u), "closed");
        t_open = test_now_ms(); /* the circuit opens after this */
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u, .idempotent = true }, &f2);
        ctx_run(&c, 2);
        ck_assert_int_eq(f2.error, -ECONNRESET);
        ck_assert_str_eq(upstream_breaker_state(c.up, u), "open");

        /* open: fails fast, never reaches the server, still from the loop */
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u }, &fast);
        ck_assert_uint_eq(fast.calls, 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(fast.error, -EHOSTDOWN);
        ck_assert_uint_eq(fast.attempts, 0);
        ck_assert_ptr_nonnull(strstr(fast.error_text, "circuit open"));
        ck_assert_uint_eq(fake_http_count(c.fake, "/b"), 2);

        /* after the cooldown: half open, one trial, the others still fail fast */
        o.breaker_cooldown_ms = COOLDOWN_MS;
        ck_assert_int_eq(upstream_set_options(c.up, &o), 0);
        k.call = (UpstreamCall) { .method = UPSTREAM_GET, .url = u, .label = "GET /b trial" };
        knock(&k);
        ctx_wait_requests(&c, "/b", 3);
        ck_assert_uint_ge(test_now_ms() - t_open, COOLDOWN_MS - TEST_TIMER_SLACK_MS);
        ck_assert_str_eq(upstream_breaker_state(c.up, u), "half_open");
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u }, &during);
        ctx_run(&c, 4);
        ck_assert_int_eq(during.error, -EHOSTDOWN);
        ck_assert_ptr_nonnull(strstr(during.error_text, "trial request is in flight"));
        ck_assert_uint_eq(trial.calls, 0);
        ck_assert_uint_eq(fake_http_release(c.fake, "/b"), 1);
        ctx_run(&c, 5);
        ck_assert_int_eq(trial.error, 0);
        ck_assert_int_eq(trial.status, 200);
        ck_assert_str_eq(upstream_breaker_state(c.up, u), "closed");

        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u }, &after);
        ctx_run(&c, 6);
        ck_assert_int_eq(after.status, 200);

        stats = upstream_stats_json(c.up);
        snprintf(key, sizeof(key), "http://127.0.0.1:%u", fake_http_port(c.fake));
        ck_assert(json_object_object_get_ex(stats, "breakers", &br));
        ck_assert(json_object_object_get_ex(br, key, &e));
        ck_assert(json_object_object_get_ex(e, "state", &v));
        ck_assert_str_eq(json_object_get_string(v), "closed");
        ck_assert(json_object_object_get_ex(e, "opened", &v));
        ck_assert_int_eq(json_object_get_int(v), 1);
        ck_assert_int_eq(stat_count(stats, "GET /b", "circuit_open"), 2);
        ck_assert_int_eq(stat_count(stats, "GET /b", "reset"), 2);
        ck_assert_int_eq(stat_count(stats, "GET /b trial", "circuit_open"), k.refused);
        ck_assert_int_eq(stat_count(stats, "GET /b trial", "200"), 1);

        result_done(&f1);
        result_done(&f2);
        result_done(&fast);
        result_done(&trial);
        result_done(&during);
        result_done(&after);
        ctx_done(&c);
}
END_TEST

/* A failing half-open trial (not retried) opens the breaker again. */
START_TEST(test_circuit_breaker_trial_fails) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        UpstreamOptions o = test_options();
        json_object *br, *e = NULL, *v;
        Ctx c;
        Result f1 = {}, trial = {}, next = {};
        Knock k = { .ctx = &c, .trial = &trial };
        const char *u;
        uint64_t t_open;

        o.breaker_threshold = 1;
        o.breaker_cooldown_ms = COOLDOWN_LONG_MS;
        o.max_network_attempts = 3;
        ctx_init(&c, &o);
        u = closed_url(&c, "/down");
        t_open = test_now_ms();
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u, .idempotent = true }, &f1);
        ctx_run(&c, 1);
        ck_assert_int_eq(f1.error, -ECONNREFUSED);
        ck_assert_uint_eq(f1.attempts, 3);
        ck_assert_str_eq(upstream_breaker_state(c.up, u), "open");

        /* the trial, let through after the cooldown, is not retried (an ordinary request
         * would make 3 attempts) and opens the circuit again */
        o.breaker_cooldown_ms = COOLDOWN_MS;
        ck_assert_int_eq(upstream_set_options(c.up, &o), 0);
        k.call = (UpstreamCall) { .method = UPSTREAM_GET, .url = u, .idempotent = true };
        knock(&k);
        ctx_run(&c, 2);
        ck_assert_uint_ge(test_now_ms() - t_open, COOLDOWN_MS - TEST_TIMER_SLACK_MS);
        ck_assert_int_eq(trial.error, -ECONNREFUSED);
        ck_assert_uint_eq(trial.attempts, 1);
        ck_assert_str_eq(upstream_breaker_state(c.up, u), "open");
        /* open for long again, so that the next request surely finds it so */
        o.breaker_cooldown_ms = COOLDOWN_LONG_MS;
        ck_assert_int_eq(upstream_set_options(c.up, &o), 0);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = u }, &next);
        ctx_run(&c, 3);
        ck_assert_int_eq(next.error, -EHOSTDOWN);

        stats = upstream_stats_json(c.up);
        ck_assert(json_object_object_get_ex(stats, "breakers", &br));
        json_object_object_foreach(br, host, val) {
                (void) host;
                e = val;
        }
        ck_assert(json_object_object_get_ex(e, "opened", &v));
        ck_assert_int_eq(json_object_get_int(v), 2);

        result_done(&f1);
        result_done(&trial);
        result_done(&next);
        ctx_done(&c);
}
END_TEST

/* ---- URL policy, arguments, SigV4, statistics ----------------------------------------- */

/* The scheme policy of upstream_check_url(). */
START_TEST(test_check_url) {
        ck_assert_int_eq(upstream_check_url("https://www.octopize.app/api", false), 0);
        ck_assert_int_eq(upstream_check_url("HTTPS://example.com:8443/x?y=z", false), 0);
        ck_assert_int_eq(upstream_check_url("http://127.0.0.1:8080/api", false), 0);
        ck_assert_int_eq(upstream_check_url("http://127.5.6.7/", false), 0);
        ck_assert_int_eq(upstream_check_url("http://localhost:9000/storage", false), 0);
        ck_assert_int_eq(upstream_check_url("http://LOCALHOST/", false), 0);
        ck_assert_int_eq(upstream_check_url("http://[::1]:8000/", false), 0);
        ck_assert_int_eq(upstream_check_url("http://example.com/api", false), -EPROTONOSUPPORT);
        ck_assert_int_eq(upstream_check_url("http://128.0.0.1/", false), -EPROTONOSUPPORT);
        ck_assert_int_eq(upstream_check_url("http://[::2]/", false), -EPROTONOSUPPORT);
        ck_assert_int_eq(upstream_check_url("http://localhost.example.com/", false),
                         -EPROTONOSUPPORT);
        ck_assert_int_eq(upstream_check_url("http://example.com/api", true), 0);
        ck_assert_int_eq(upstream_check_url("ftp://example.com/", true), -EPROTONOSUPPORT);
        ck_assert_int_eq(upstream_check_url("file:///etc/passwd", true), -EINVAL);
        ck_assert_int_eq(upstream_check_url("not a url", false), -EINVAL);
        ck_assert_int_eq(upstream_check_url("www.octopize.app/api", false), -EINVAL);
        ck_assert_int_eq(upstream_check_url("", false), -EINVAL);
        ck_assert_int_eq(upstream_check_url(NULL, false), -EINVAL);
}
END_TEST

/* Calls refused by upstream_request_start() never call back. */
START_TEST(test_start_refusals) {
        static const char *const bad_header[] = { "X-Evil: a\r\nX-Injected: b", NULL };
        static const char *const no_colon[] = { "NoColonHere", NULL };
        Ctx c;
        Result res = {};
        int r;

        ctx_init(&c, NULL);
        res.ctx = &c;
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                           .url = "http://example.com/" },
                                   on_done, &res, NULL);
        ck_assert_int_eq(r, -EPROTONOSUPPORT);
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                           .url = "garbage" },
                                   on_done, &res, NULL);
        ck_assert_int_eq(r, -EINVAL);
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                           .url = url(&c, "/"), .body = "x",
                                                           .body_len = 1 },
                                   on_done, &res, NULL);
        ck_assert_int_eq(r, -EINVAL);
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                           .url = url(&c, "/"),
                                                           .headers = bad_header },
                                   on_done, &res, NULL);
        ck_assert_int_eq(r, -EINVAL);
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = UPSTREAM_GET,
                                                           .url = url(&c, "/"),
                                                           .headers = no_colon },
                                   on_done, &res, NULL);
        ck_assert_int_eq(r, -EINVAL);
        r = upstream_request_start(c.up, &(UpstreamCall) { .method = _UPSTREAM_METHOD_MAX,
                                                           .url = url(&c, "/") },
                                   on_done, &res, NULL);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        ctx_quiet(&c);
        ck_assert_uint_eq(res.calls, 0);
        ck_assert_uint_eq(fake_http_n_requests(c.fake), 0);

        result_done(&res);
        ctx_done(&c);
}
END_TEST

/* SigV4 signing reaches the server; logs carry no secret. */
START_TEST(test_sigv4_and_no_secrets_in_logs) {
        static const char *const headers[] = { "Authorization-Shadow: api-key-v1 SEKRIT-HEADER",
                                               NULL };
        char logbuf[65536];
        const FakeRequest *fr;
        const char *auth;
        FILE *tmp;
        ssize_t n;
        int saved, old_level;
        Ctx c;
        Result res = {}, fail = {};

        /* Capture our log output for this test. */
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        tmp = tmpfile();
        ck_assert_ptr_nonnull(tmp);
        ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
        old_level = log_get_max_level();
        log_set_max_level(LOG_DEBUG);

        ctx_init(&c, NULL);
        script(&c, "/bucket/key", (FakeStep) { .status = 200, .body = "stored" });
        script(&c, "/fail", (FakeStep) { .action = FAKE_DROP });
        script(&c, "/fail", (FakeStep) { .status = 200 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET,
                                    .url = url(&c, "/bucket/key?X-Token=SEKRIT-QUERY"),
                                    .headers = headers,
                                    .aws_sigv4 = "aws:amz:us-east-1:s3",
                                    .userpwd = "AKIDEXAMPLE:SEKRIT-SECRET-KEY",
                                    .idempotent = true }, &res);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET,
                                    .url = url(&c, "/fail?sig=SEKRIT-QUERY2"),
                                    .headers = headers, .idempotent = true }, &fail);
        ctx_run(&c, 2);

        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        log_set_max_level(old_level);
        n = pread(fileno(tmp), logbuf, sizeof(logbuf) - 1, 0);
        ck_assert_int_ge(n, 0);
        logbuf[n] = '\0';
        fclose(tmp);

        ck_assert_int_eq(res.error, 0);
        ck_assert_str_eq(res.body, "stored");
        fr = fake_http_last(c.fake, "/bucket/key");
        auth = fake_request_header(fr, "Authorization");
        ck_assert_ptr_nonnull(auth);
        ck_assert_msg(startswith(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
                      "unexpected Authorization scheme");
        ck_assert_ptr_nonnull(fake_request_header(fr, "x-amz-date"));
        ck_assert_ptr_null(strstr(auth, "SEKRIT-SECRET-KEY"));
        ck_assert_int_eq(fail.error, 0);
        ck_assert_uint_eq(fail.attempts, 2);

        /* The logs name the requests but carry no secret. */
        ck_assert_ptr_nonnull(strstr(logbuf, "/bucket/key"));
        ck_assert_ptr_nonnull(strstr(logbuf, "retrying in"));
        ck_assert_ptr_null(strstr(logbuf, "SEKRIT"));
        ck_assert_ptr_null(strstr(logbuf, auth));

        result_done(&res);
        result_done(&fail);
        ctx_done(&c);
}
END_TEST

/* Statistics by label and status, retries, in-flight count and breakers. */
START_TEST(test_stats_json) {
        _cleanup_(json_object_putp) json_object *stats = NULL;
        json_object *v, *br;
        Ctx c;
        Result a = {}, b = {}, l = {}, n = {};

        ctx_init(&c, NULL);
        script(&c, "/s", (FakeStep) { .status = 200 });
        script(&c, "/missing", (FakeStep) { .status = 404 });
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/s?q=1") }, &a);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/s?q=2") }, &b);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url(&c, "/missing"),
                                    .label = "GET /jobs/{name}" }, &l);
        start(&c, &(UpstreamCall) { .method = UPSTREAM_DELETE, .url = url(&c, "/missing") },
              &n);
        ctx_run(&c, 4);

        stats = upstream_stats_json(c.up);
        ck_assert_ptr_nonnull(stats);
        ck_assert_int_eq(stat_count(stats, "GET /s", "200"), 2);
        ck_assert_int_eq(stat_count(stats, "GET /jobs/{name}", "404"), 1);
        ck_assert_int_eq(stat_count(stats, "DELETE /missing", "404"), 1);
        ck_assert_int_eq(stat_count(stats, "GET /missing", "404"), 0);
        ck_assert_int_eq(stat_retries(stats, "network"), 0);
        ck_assert_int_eq(stat_retries(stats, "rate_limited"), 0);
        ck_assert(json_object_object_get_ex(stats, "in_flight", &v));
        ck_assert_int_eq(json_object_get_int(v), 0);
        ck_assert(json_object_object_get_ex(stats, "breakers", &br));
        ck_assert_int_eq(json_object_object_length(br), 1);

        result_done(&a);
        result_done(&b);
        result_done(&l);
        result_done(&n);
        ctx_done(&c);
}
END_TEST

/* Builds the suite. */
static Suite *upstream_suite(void) {
        Suite *s = suite_create("upstream");
        TCase *plain = tcase_create("plain"), *retry = tcase_create("retry"),
              *stream = tcase_create("stream"), *life = tcase_create("lifecycle"),
              *misc = tcase_create("misc");

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
        tcase_add_test(retry, test_circuit_breaker);
        tcase_add_test(retry, test_circuit_breaker_trial_fails);
        suite_add_tcase(s, retry);

        tcase_add_test(stream, test_streaming_upload);
        tcase_add_test(stream, test_streaming_upload_retry_needs_rewind);
        tcase_add_test(stream, test_streaming_download);
        tcase_add_test(stream, test_cancel_and_start_from_sink);
        suite_add_tcase(s, stream);

        tcase_add_test(life, test_cancel_in_flight);
        tcase_add_test(life, test_cancel_from_callback);
        tcase_add_test(life, test_free_with_requests_in_flight);
        tcase_add_test(life, test_free_from_callback);
        tcase_add_test(life, test_hundred_concurrent);
        tcase_add_test(life, test_connection_reuse);
        suite_add_tcase(s, life);

        tcase_add_test(misc, test_check_url);
        tcase_add_test(misc, test_start_refusals);
        tcase_add_test(misc, test_sigv4_and_no_secrets_in_logs);
        tcase_add_test(misc, test_stats_json);
        suite_add_tcase(s, misc);
        return s;
}

/* Runs the suite. */
int main(void) {
        SRunner *sr;
        int failed;

        log_set_max_level(getenv("UPSTREAM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        sr = srunner_create(upstream_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        /* upstream_new() leaves libcurl's global state to process exit; release it here so
         * leak checkers see a clean exit. */
        curl_global_cleanup();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
