/* SPDX-License-Identifier: MIT */
/*
 * The shared harness of the upstream client tests (test-upstream.c, test-upstream-stream.c):
 * a real event loop, the Upstream client and the in-process evhttp server (fake-http.c) per
 * test, completion results, a recording sink and the statistics readers.
 */
#pragma once

#include <check.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fake-http.h"
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

/* Options every test starts from: verification on, quick retries. */
UpstreamOptions test_options(void);

/* Creates the loop, the fake server and the client. */
void ctx_init(Ctx *c, const UpstreamOptions *opts);

/* Frees everything. */
void ctx_done(Ctx *c);

/* A URL on the fake server, owned by the context. */
const char *url(Ctx *c, const char *path);

/* A URL on a local port nobody listens on. */
const char *closed_url(Ctx *c, const char *path);

/* Runs the loop until `expect` completions in total; fails when they do not come. */
void ctx_run(Ctx *c, unsigned expect);

/* Runs the loop until cond(arg) holds; fails when it does not. */
void ctx_wait(Ctx *c, TestCondition cond, void *arg, const char *what);

/* Runs the loop until the fake server has received n requests on a path. */
void ctx_wait_requests(Ctx *c, const char *path, size_t n);

/* After what a test waited for: runs the loop for a while to see that nothing more happens
 * (no late callback, no further request). */
void ctx_quiet(Ctx *c);

/* Frees a result's copies. */
void result_done(Result *r);

/* Completion: copies what the response says, counts, stops the loop when all are in. */
void on_done(const UpstreamResponse *resp, void *userdata);

/* Starts a call whose completion lands in `res`. */
void start(Ctx *c, const UpstreamCall *call, Result *res);

/* Scripts one step for a path. */
void script(Ctx *c, const char *path, FakeStep step);

/* The integer at stats.requests[label][key], 0 when absent. */
int64_t stat_count(json_object *stats, const char *label, const char *key);

/* stats.retries[key]. */
int64_t stat_retries(json_object *stats, const char *key);

/* libevent: resume a paused download. */
void on_resume_download(evutil_socket_t fd, short what, void *userdata);

/* Sink: pauses as scripted, otherwise appends. */
ssize_t on_sink(void *userdata, const char *buf, size_t len);

/* Runs the suite s (log level from $UPSTREAM_TEST_DEBUG) and releases libcurl's global state;
 * the exit status of a test program. */
int upstream_test_main(Suite *s);
