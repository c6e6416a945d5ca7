/* SPDX-License-Identifier: MIT */
/*
 * The shared harness of the upstream client tests: see upstream-harness.h.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake-http.h"
#include "log.h"
#include "test-wait.h"
#include "upstream-harness.h"
#include "upstream.h"

/* Options every test starts from: verification on, quick retries. */
UpstreamOptions test_options(void) {
        return (UpstreamOptions) {
                .verify_ssl = true,
                .retry_base_ms = 10,
                .retry_max_ms = 40,
        };
}

/* Creates the loop, the fake server and the client. */
void ctx_init(Ctx *c, const UpstreamOptions *opts) {
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
void ctx_done(Ctx *c) {
        c->up = upstream_free(c->up);
        c->fake = fake_http_free(c->fake);
        event_base_free(c->base);
        for (size_t i = 0; i < c->n_urls; i++)
                free(c->urls[i]);
}

/* A URL on the fake server, owned by the context. */
const char *url(Ctx *c, const char *path) {
        char *u = fake_http_url(c->fake, path);

        ck_assert_ptr_nonnull(u);
        ck_assert_uint_lt(c->n_urls, URLS_MAX);
        c->urls[c->n_urls++] = u;
        return u;
}

/* A URL on a local port nobody listens on. */
const char *closed_url(Ctx *c, const char *path) {
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
void ctx_run(Ctx *c, unsigned expect) {
        c->expect = expect;
        ck_assert_msg(test_wait_until(c->base, ctx_all_done, c, TEST_WAIT_MS),
                      "timed out with %u of %u completions", c->done, expect);
        ck_assert_uint_eq(c->done, expect);
}

/* Runs the loop until cond(arg) holds; fails when it does not. */
void ctx_wait(Ctx *c, TestCondition cond, void *arg, const char *what) {
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
void ctx_wait_requests(Ctx *c, const char *path, size_t n) {
        Arrivals a = { .ctx = c, .path = path, .n = n };

        ctx_wait(c, arrived, &a, path);
}

/* After what a test waited for: runs the loop for a while to see that nothing more happens
 * (no late callback, no further request). */
void ctx_quiet(Ctx *c) {
        test_run_quiet(c->base, 100);
}

/* Frees a result's copies. */
void result_done(Result *r) {
        free(r->error_text);
        free(r->body);
        free(r->content_type);
        free(r->location);
}

/* Completion: copies what the response says, counts, stops the loop when all are in. */
void on_done(const UpstreamResponse *resp, void *userdata) {
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
void start(Ctx *c, const UpstreamCall *call, Result *res) {
        int r;

        res->ctx = c;
        r = upstream_request_start(c->up, call, on_done, res, &res->req);
        ck_assert_msg(r == 0, "start %s: %s", call->url, strerror(-r));
}

/* Scripts one step for a path. */
void script(Ctx *c, const char *path, FakeStep step) {
        ck_assert_int_eq(fake_http_script(c->fake, path, &step, 1), 0);
}

/* The integer at stats.requests[label][key], 0 when absent. */
int64_t stat_count(json_object *stats, const char *label, const char *key) {
        json_object *req, *l, *v;

        if (!json_object_object_get_ex(stats, "requests", &req) ||
            !json_object_object_get_ex(req, label, &l) ||
            !json_object_object_get_ex(l, key, &v))
                return 0;
        return json_object_get_int64(v);
}

/* stats.retries[key]. */
int64_t stat_retries(json_object *stats, const char *key) {
        json_object *r, *v;

        if (!json_object_object_get_ex(stats, "retries", &r) ||
            !json_object_object_get_ex(r, key, &v))
                return -1;
        return json_object_get_int64(v);
}

/* libevent: resume a paused download. */
void on_resume_download(evutil_socket_t fd, short what, void *userdata) {
        Download *d = userdata;

        (void) fd;
        (void) what;
        upstream_request_resume(*d->req);
}

/* Sink: pauses as scripted, otherwise appends. */
ssize_t on_sink(void *userdata, const char *buf, size_t len) {
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

int upstream_test_main(Suite *s) {
        SRunner *sr;
        int failed;

        log_set_max_level(getenv("UPSTREAM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        /* upstream_new() leaves libcurl's global state to process exit; release it here so
         * leak checkers see a clean exit. */
        curl_global_cleanup();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
