/* SPDX-License-Identifier: MIT */
/*
 * The fake Upstream (fake-upstream.h). A request goes through at most three steps, each from
 * its own 0 ms timer, as the real client's do from libcurl's callbacks: the request body is
 * read from its body_read callback to its end (a pause waits for upstream_request_resume()),
 * a 2xx answer's body is written to the sink in 16 KiB pieces when there is one (a pause
 * waits likewise), then the completion callback runs, once, and the request is freed.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "fake-upstream.h"
#include "jsonrpc.h"

/* What libcurl hands a write callback at most at once (CURL_MAX_WRITE_SIZE). */
#define SINK_CHUNK (16u * 1024u)
/* A request body larger than this is not read on (the harnesses' descriptors are small). */
#define BODY_MAX (64u * 1024u * 1024u)

typedef enum FakeState {
        FAKE_BODY,        /* reading the request body */
        FAKE_SINK,        /* writing the answer to the sink */
        FAKE_DELIVER,     /* the completion is due */
        FAKE_DELIVERING,  /* the completion callback runs */
} FakeState;

struct UpstreamRequest {
        Upstream *upstream;
        TAILQ_ENTRY(UpstreamRequest) link;
        struct event *timer;
        FakeState state;
        bool paused;
        bool in_callback;        /* a stream callback is on the stack */
        bool cancelled;          /* cancelled from one: freed when it returns */

        upstream_done_cb cb;
        void *userdata;
        UpstreamMethod method;
        char *url;
        upstream_read_cb body_read;
        int64_t body_size;
        upstream_write_cb sink;
        void *stream_userdata;

        uint64_t body_bytes;     /* read from body_read */
        int stream_error;
        const FakeAnswer *answer;
        FakeAnswer refused;
        size_t sink_off;
        bool delayed;            /* the answer's Delay has passed */
};

struct Upstream {
        struct event_base *base;
        TAILQ_HEAD(, UpstreamRequest) requests;
        unsigned n_requests;
        const FakeAnswer *script;
        size_t n_script;
        size_t next;
        unsigned long answered;
};

void fake_upstream_set_script(Upstream *u, const FakeAnswer *answers, size_t n) {
        u->script = answers;
        u->n_script = n;
        u->next = 0;
}

unsigned long fake_upstream_answered(const Upstream *u) {
        return u->answered;
}

unsigned fake_upstream_pending(const Upstream *u) {
        return u->n_requests;
}

int upstream_new(struct event_base *base, const UpstreamOptions *opts, Upstream **ret) {
        Upstream *u = calloc(1, sizeof(Upstream));

        (void) opts;
        if (!u)
                return -ENOMEM;
        u->base = base;
        TAILQ_INIT(&u->requests);
        *ret = u;
        return 0;
}

int upstream_set_options(Upstream *u, const UpstreamOptions *opts) {
        (void) u;
        (void) opts;
        return 0;
}

static void request_free(UpstreamRequest *r) {
        TAILQ_REMOVE(&r->upstream->requests, r, link);
        r->upstream->n_requests--;
        event_free(r->timer);
        free(r->url);
        free(r);
}

Upstream *upstream_free(Upstream *u) {
        if (!u)
                return NULL;
        while (!TAILQ_EMPTY(&u->requests))
                request_free(TAILQ_FIRST(&u->requests));
        free(u);
        return NULL;
}

static void request_arm(UpstreamRequest *r) {
        static const struct timeval now = { 0, 0 };

        evtimer_add(r->timer, &now);
}

/* Reads the request body to its end; false when the request must stop here (paused or
 * cancelled). */
static bool step_body(UpstreamRequest *r) {
        static char buf[64 * 1024];

        while (r->body_read && r->stream_error == 0) {
                ssize_t k;

                r->in_callback = true;
                k = r->body_read(r->stream_userdata, buf, sizeof(buf));
                r->in_callback = false;
                if (r->cancelled) {
                        request_free(r);
                        return false;
                }
                if (k == -EAGAIN) {
                        r->paused = true;
                        return false;
                }
                if (k < 0)
                        r->stream_error = (int) k;
                else if (k == 0)
                        break;
                else if ((size_t) k > sizeof(buf))
                        r->stream_error = -EIO;
                else if ((r->body_bytes += (uint64_t) k) > BODY_MAX)
                        r->stream_error = -EFBIG;
        }
        /* libcurl fails an upload that ends before (or runs past) the size announced */
        if (r->stream_error == 0 && r->body_read && r->body_size >= 0 && r->body_bytes != (uint64_t) r->body_size)
                r->stream_error = -EIO;
        return true;
}

/* Writes a 2xx answer's body to the sink; false when the request must stop here. */
static bool step_sink(UpstreamRequest *r) {
        const FakeAnswer *a = r->answer;

        if (!r->sink || a->error != 0 || a->status < 200 || a->status > 299)
                return true;
        while (r->sink_off < a->body_len && r->stream_error == 0) {
                size_t n = a->body_len - r->sink_off;
                ssize_t k;

                if (n > SINK_CHUNK)
                        n = SINK_CHUNK;
                r->in_callback = true;
                k = r->sink(r->stream_userdata, a->body + r->sink_off, n);
                r->in_callback = false;
                if (r->cancelled) {
                        request_free(r);
                        return false;
                }
                if (k == -EAGAIN) {
                        r->paused = true;
                        return false;
                }
                if (k < 0)
                        r->stream_error = (int) k;
                else if ((size_t) k != n)
                        r->stream_error = -EIO;
                else
                        r->sink_off += n;
        }
        return true;
}

/* A header of whole seconds (at most about 30 years), or -1. */
static long long header_seconds(const FakeAnswer *a, const char *name) {
        for (size_t i = 0; i < a->n_headers; i++)
                if (strcasecmp(a->headers[i].name, name) == 0) {
                        const char *v = a->headers[i].value;
                        long long s = 0;

                        if (*v < '0' || *v > '9')
                                return -1;
                        for (; *v >= '0' && *v <= '9' && s < 1000000000; v++)
                                s = s * 10 + (*v - '0');
                        return s;
                }
        return -1;
}

/* Retry-After as the real client reads it: delta-seconds only here. */
static long long retry_after_ms(const FakeAnswer *a) {
        long long s = header_seconds(a, "Retry-After");

        return s < 0 ? -1 : s * 1000;
}

static void deliver(UpstreamRequest *r) {
        const FakeAnswer *a = r->answer;
        char *body = NULL;
        UpstreamResponse resp = {
                .status = a->error == 0 ? a->status : 0,
                .body = "",
                .attempts = 1,
                .request = r,
                .retry_after_ms = -1,
        };
        bool sunk = r->sink && a->error == 0 && a->status >= 200 && a->status <= 299;

        if (r->stream_error < 0) {
                resp.error = r->stream_error;
                resp.error_text = "transfer aborted by a stream callback";
        } else if (a->error < 0) {
                resp.error = a->error;
                resp.error_text = a->error == -ECONNREFUSED ? "Failed to connect to avatar.example.com port 443: "
                                                              "Connection refused"
                                                            : "fake transport failure";
        } else {
                resp.error_text = "";
                resp.content_type = upstream_response_header(&resp, "Content-Type");
                resp.retry_after_ms = retry_after_ms(a);
                if (!sunk) {
                        /* the real client keeps bodies NUL-terminated */
                        body = malloc(a->body_len + 1);
                        assert(body);
                        memcpy(body, a->body, a->body_len);
                        body[a->body_len] = '\0';
                        resp.body = body;
                        resp.body_len = a->body_len;
                }
        }
        r->upstream->answered++;
        if (getenv("FUZZ_TRACE"))
                fprintf(stderr, "   upstream %s %s: %d %ld (%zu bytes)\n", upstream_method_to_string(r->method), r->url,
                        resp.error, resp.status, a->body_len);
        r->state = FAKE_DELIVERING;
        r->cb(&resp, r->userdata);
        free(body);
        request_free(r);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata) {
        UpstreamRequest *r = userdata;
        Upstream *u = r->upstream;

        (void) fd;
        (void) what;
        if (r->state == FAKE_BODY) {
                if (!step_body(r))
                        return;
                if (u->next < u->n_script)
                        r->answer = &u->script[u->next++];
                else {
                        r->refused = (FakeAnswer){ .error = -ECONNREFUSED };
                        r->answer = &r->refused;
                }
                r->state = r->stream_error < 0 ? FAKE_DELIVER : FAKE_SINK;
        }
        if (!r->delayed) {
                /* a "Delay:S" header: the answer takes S seconds (of the harness's clock) */
                long long d = header_seconds(r->answer, "Delay");

                r->delayed = true;
                if (d > 0) {
                        struct timeval tv = { .tv_sec = (time_t) d };

                        evtimer_add(r->timer, &tv);
                        return;
                }
        }
        if (r->state == FAKE_SINK) {
                if (!step_sink(r))
                        return;
                r->state = FAKE_DELIVER;
        }
        deliver(r);
}

/* Whether a header line may be sent: "Name: value", no CR or LF. */
static bool header_line_ok(const char *l) {
        return strchr(l, ':') && !strpbrk(l, "\r\n");
}

int upstream_request_start(Upstream *u, const UpstreamCall *call, upstream_done_cb cb, void *userdata,
                           UpstreamRequest **ret) {
        UpstreamRequest *r;
        int q;

        assert(u && call && cb);
        if (call->method < 0 || call->method >= _UPSTREAM_METHOD_MAX)
                return -EINVAL;
        if ((call->body || call->body_read) && (call->method == UPSTREAM_GET || call->method == UPSTREAM_HEAD))
                return -EINVAL;
        if (call->body && call->body_read)
                return -EINVAL;
        for (const char *const *h = call->headers; h && *h; h++)
                if (!header_line_ok(*h))
                        return -EINVAL;
        q = upstream_check_url(call->url, false);
        if (q < 0)
                return q;

        r = calloc(1, sizeof(UpstreamRequest));
        if (!r)
                return -ENOMEM;
        r->upstream = u;
        r->cb = cb;
        r->userdata = userdata;
        r->method = call->method;
        r->url = strdup(call->url);
        assert(r->url);
        r->body_read = call->body_read;
        r->body_size = call->body_size;
        r->sink = call->sink;
        r->stream_userdata = call->stream_userdata;
        r->timer = evtimer_new(u->base, on_timer, r);
        assert(r->timer);
        TAILQ_INSERT_TAIL(&u->requests, r, link);
        u->n_requests++;
        request_arm(r);
        if (ret)
                *ret = r;
        return 0;
}

void upstream_request_cancel(UpstreamRequest *r) {
        if (!r || r->state == FAKE_DELIVERING)
                return;
        if (r->in_callback) {
                r->cancelled = true;
                return;
        }
        request_free(r);
}

void upstream_request_resume(UpstreamRequest *r) {
        if (!r || !r->paused || r->state == FAKE_DELIVERING)
                return;
        r->paused = false;
        request_arm(r);
}

const char *upstream_response_header(const UpstreamResponse *resp, const char *name) {
        const FakeAnswer *a;

        if (!resp || !resp->request || !name)
                return NULL;
        a = resp->request->answer;
        for (size_t i = 0; a && i < a->n_headers; i++)
                if (strcasecmp(a->headers[i].name, name) == 0)
                        return a->headers[i].value;
        return NULL;
}

json_object *upstream_stats_json(const Upstream *u) {
        json_object *o = json_object_new_object(), *retries = json_object_new_object();

        json_object_object_add(o, "requests", json_object_new_object());
        json_object_object_add(retries, "network", json_object_new_int(0));
        json_object_object_add(retries, "rate_limited", json_object_new_int(0));
        json_object_object_add(o, "retries", retries);
        json_object_object_add(o, "in_flight", json_object_new_int64(u->n_requests));
        json_object_object_add(o, "breakers", json_object_new_object());
        return o;
}

const char *upstream_breaker_state(const Upstream *u, const char *url) {
        (void) u;
        (void) url;
        return "closed";
}

const char *upstream_breaker_state_at(const Upstream *u, const char *url, uint64_t now) {
        (void) now;
        return upstream_breaker_state(u, url);
}

void upstream_stats_text(const Upstream *u, JsonText *t, uint64_t now, JsonTextMemo *memo) {
        json_object *o = upstream_stats_json(u);

        (void) now;
        (void) memo;
        json_text_add_value(t, o);
        json_object_put(o);
}

unsigned upstream_in_flight(const Upstream *u) {
        return u->n_requests;
}
