/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of daemon/upstream.c, continued from test-upstream.c: streaming bodies,
 * cancel and free, concurrency and connection reuse, the circuit breaker, the URL policy,
 * SigV4 and statistics. The harness is upstream-harness.c.
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
#include "log.h"
#include "macro.h"
#include "test-wait.h"
#include "upstream-harness.h"
#include "upstream.h"

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
        Suite *s = suite_create("upstream-stream");
        TCase *retry = tcase_create("retry"), *stream = tcase_create("stream"),
              *life = tcase_create("lifecycle"), *misc = tcase_create("misc");

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
        return upstream_test_main(upstream_suite());
}
