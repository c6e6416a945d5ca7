/* SPDX-License-Identifier: MIT */
/*
 * Upstream HTTP client: libcurl's multi interface driven by the daemon's libevent loop. This
 * file holds the design, the options and the public API; the rest is in upstream-*.c (see
 * upstream-internal.h).
 *
 * Wiring (style.md §3): libcurl tells us which sockets to watch (on_curl_socket(), one
 * event_new() per socket) and when to call it back (on_curl_timer(), one timer for the whole
 * multi handle). Our two libevent callbacks (on_socket_ready(), upstream_on_timer()) call
 * curl_multi_socket_action() and then drain_completions(). Nothing calls socket_action from
 * inside a libcurl callback, and easy handles are only added or removed from libevent
 * callbacks, never from inside libcurl.
 *
 * Request life cycle (UpstreamRequest.state):
 *
 *   PENDING ──► ATTEMPT ──► WAITING ──► ATTEMPT ... ──► COMPLETING ──► DELIVERING ──► freed
 *      │  (easy in the multi)  (backoff or Retry-After)   (0 ms timer)   (user callback)
 *      └──► COMPLETING (circuit open)                                    CANCELLED ──► freed
 *
 * Every request owns one timer event. It starts a deferred first attempt (PENDING), ends a
 * retry wait (WAITING), runs a deferred resume (ATTEMPT) and delivers the result
 * (COMPLETING). Delivering from the request's own timer means the completion callback always
 * runs from a fresh libevent callback in which nothing of ours is on the stack, so it may
 * start, cancel or resume any request and even free the Upstream.
 *
 * Reentrancy: stream callbacks (body_read, body_rewind, sink) run while libcurl is on the
 * stack (callback_depth > 0). A cancel issued from there only marks the request CANCELLED;
 * the easy handle is removed and the request freed by reap_zombies() once libcurl has
 * returned. A start issued from there defers curl_multi_add_handle() to the request's timer,
 * because libcurl refuses multi calls from inside its callbacks.
 *
 * Policy (avatar-api.md §7.2, bounded):
 *   - network failures (connect, resolve, reset, empty reply, partial body, HTTP/2 stream
 *     errors, TLS handshake resets, an attempt timeout before the deadline) are retried for
 *     idempotent requests only, with full-jitter exponential backoff, at most
 *     max_network_attempts attempts, never past the deadline; a consumed streaming body is
 *     repeated only through its rewind callback;
 *   - 429 is repeated for any method after max(1 s, Retry-After or the body's retry_after),
 *     at most max_rate_limit_retries times; a longer wait is handed back as status 429;
 *   - any other status is handed back as is;
 *   - the circuit breaker counts logical requests, not attempts: a request that finally fails
 *     at the network level is one failure, any HTTP answer is a success. The half-open trial
 *     makes a single attempt so that it decides quickly.
 * libcurl itself resends a request once when a reused keep-alive connection turns out to be
 * dead before any response byte; that is not counted as an attempt here. POST and PUT
 * requests that are not idempotent never reuse a connection, so they cannot be sent twice
 * that way (a GET sent twice is harmless).
 *
 * curl_global_init() runs once, in the first upstream_new(); curl_global_cleanup() is left to
 * process exit, since other code in the process may use libcurl as well.
 */
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "build-config.h"
#include "clock.h"
#include "log.h"
#include "macro.h"
#include "upstream-internal.h"
#include "upstream.h"

/* The strings of the options, owned; the proxies may hold credentials. */
static void upstream_strings_done(UpstreamStrings *s) {
        free(s->user_agent);
        free(s->ca_file);
        erase_and_free(s->http_proxy);
        erase_and_free(s->https_proxy);
        free(s->no_proxy);
        *s = (UpstreamStrings){};
}

/* Process-wide: libcurl's global state, initialized once (single-threaded daemon). */
static bool curl_initialized = false;

/* ---- options --------------------------------------------------------------------------- */

/* Copies options, applying the documented defaults for zero values. */
static int options_normalize(const UpstreamOptions *in, UpstreamOptions *out,
                             UpstreamStrings *ret_strings) {
        static const UpstreamOptions defaults = { .verify_ssl = true };
        UpstreamStrings st = {};

        if (!in)
                in = &defaults;

        st.user_agent = in->user_agent ? strdup(in->user_agent) : strdup("avatard/" AVATARD_VERSION);
        if (!st.user_agent ||
            (in->ca_file && !(st.ca_file = strdup(in->ca_file))) ||
            (!isempty(in->http_proxy) && !(st.http_proxy = strdup(in->http_proxy))) ||
            (!isempty(in->https_proxy) && !(st.https_proxy = strdup(in->https_proxy))) ||
            (!isempty(in->no_proxy) && !(st.no_proxy = strdup(in->no_proxy)))) {
                upstream_strings_done(&st);
                return -ENOMEM;
        }

        *out = *in;
        out->connect_timeout_ms = in->connect_timeout_ms ?: 10 * MSEC_PER_SEC;
        out->request_timeout_ms = in->request_timeout_ms ?: 60 * MSEC_PER_SEC;
        out->max_body_bytes = in->max_body_bytes ?: 64u * 1024u * 1024u;
        out->max_network_attempts = in->max_network_attempts ?: 6;
        out->retry_base_ms = in->retry_base_ms ?: 200;
        out->retry_max_ms = MAX(in->retry_max_ms ?: 5 * MSEC_PER_SEC, out->retry_base_ms);
        out->max_rate_limit_retries = in->max_rate_limit_retries == UPSTREAM_RETRIES_NONE ? 0 :
                                      in->max_rate_limit_retries ?: 3;
        out->max_retry_after_ms = in->max_retry_after_ms ?: 60 * MSEC_PER_SEC;
        out->max_total_connections = in->max_total_connections ?: 64;
        out->max_host_connections = in->max_host_connections ?: 16;
        out->breaker_threshold = in->breaker_threshold ?: 5;
        out->breaker_cooldown_ms = in->breaker_cooldown_ms ?: 10 * MSEC_PER_SEC;
        out->user_agent = st.user_agent;
        out->ca_file = st.ca_file;
        out->http_proxy = st.http_proxy;
        out->https_proxy = st.https_proxy;
        out->no_proxy = st.no_proxy;

        *ret_strings = st;
        return 0;
}

/* Logs the verify_ssl: false warning. */
static void warn_insecure(const UpstreamOptions *o) {
        if (!o->verify_ssl)
                log_warning("TLS certificate verification is DISABLED for upstream requests "
                            "(verify_ssl: false): anyone on the network path can impersonate "
                            "the server and read the API key.");
}

/* ---- public API ------------------------------------------------------------------------- */

/* Creates the client. */
int upstream_new(struct event_base *base, const UpstreamOptions *opts, Upstream **ret) {
        const curl_version_info_data *vi;
        Upstream *u;
        int r;

        assert_return(base, -EINVAL);
        assert_return(ret, -EINVAL);

        if (!curl_initialized) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return log_error_errno(ENOMEM, "Failed to initialize libcurl.");
                curl_initialized = true;
        }
        vi = curl_version_info(CURLVERSION_NOW);
        if (!vi || !(vi->features & CURL_VERSION_ASYNCHDNS))
                return log_error_errno(EOPNOTSUPP,
                                       "libcurl %s resolves names synchronously (no AsynchDNS); "
                                       "it would block the event loop, refusing.",
                                       vi ? vi->version : "?");

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->base = base;
        TAILQ_INIT(&u->requests);
        TAILQ_INIT(&u->sockets);
        TAILQ_INIT(&u->breakers);

        r = options_normalize(opts, &u->opts, &u->strings);
        if (r < 0)
                goto fail;
        u->timer = evtimer_new(base, upstream_on_timer, u);
        u->stats_requests = json_object_new_object();
        if (!u->timer || !u->stats_requests) {
                r = -ENOMEM;
                goto fail;
        }
        r = upstream_multi_create(u);
        if (r < 0)
                goto fail;

        warn_insecure(&u->opts);
        *ret = u;
        return 0;

fail:
        upstream_free(u);
        return r;
}

/* Replaces options for requests started from now on. */
int upstream_set_options(Upstream *u, const UpstreamOptions *opts) {
        UpstreamStrings st;
        UpstreamOptions o;
        int r;

        assert_return(u, -EINVAL);

        r = options_normalize(opts, &o, &st);
        if (r < 0)
                return r;
        upstream_strings_done(&u->strings);
        u->strings = st;
        u->opts = o;
        if (u->multi)
                upstream_apply_multi_options(u);
        warn_insecure(&u->opts);
        return 0;
}

/* Cancels everything, tears the multi handle down in libcurl's order, frees. */
Upstream *upstream_free(Upstream *u) {
        if (!u)
                return NULL;
        /* Freeing from inside a stream callback would pull libcurl's state from under it. */
        assert(u->callback_depth == 0);

        /* 1. easy handles out of the multi and freed (callbacks are not called) */
        while (!TAILQ_EMPTY(&u->requests))
                upstream_request_destroy(TAILQ_FIRST(&u->requests));
        /* 2. curl_multi_cleanup (may call on_curl_socket), our sockets, the timer's arming */
        upstream_multi_destroy(u);
        /* 3. the timer event; the event base belongs to the caller */
        if (u->timer)
                event_free(u->timer);

        while (!TAILQ_EMPTY(&u->breakers)) {
                Breaker *b = TAILQ_FIRST(&u->breakers);

                TAILQ_REMOVE(&u->breakers, b, link);
                upstream_breaker_free(b);
        }
        json_object_put(u->stats_requests);
        free(u->stats_text);
        free(u->state_url);
        free(u->state_url_key);
        upstream_strings_done(&u->strings);
        free(u);
        return NULL;
}

/* Starts a request. */
int upstream_request_start(Upstream *u, const UpstreamCall *call, upstream_done_cb cb,
                           void *userdata, UpstreamRequest **ret) {
        _cleanup_(curl_url_cleanupp) CURLU *url = NULL;
        _cleanup_free_ char *text = NULL;
        UpstreamRequest *req = NULL;
        int r;

        assert_return(u, -EINVAL);
        assert_return(call, -EINVAL);
        assert_return(cb, -EINVAL);
        assert_return(upstream_method_to_string(call->method), -EINVAL);
        assert_return(!(call->body_read && (call->body || call->body_len > 0)), -EINVAL);
        assert_return(call->body || call->body_len == 0, -EINVAL);
        assert_return(!call->body_rewind || call->body_read, -EINVAL);
        /* GET and HEAD carry no body. */
        assert_return(!(call->method == UPSTREAM_GET || call->method == UPSTREAM_HEAD) ||
                      !(call->body || call->body_read), -EINVAL);

        r = upstream_url_parse(call->url, &url);
        if (r < 0)
                return r;
        r = upstream_url_policy(url, u->opts.allow_insecure_http);
        if (r < 0)
                return r;

        r = upstream_request_new(u, call, url, &req);
        if (r < 0) {
                upstream_request_free(req);
                return r;
        }
        req->cb = cb;
        req->userdata = userdata;
        TAILQ_INSERT_TAIL(&u->requests, req, link);
        u->in_flight++;

        r = upstream_breaker_admit(u, req, &text);
        if (r < 0) {
                /* Fail fast, but still from a fresh libevent callback. */
                upstream_request_complete(req, r, text ?: "circuit open");
        } else if (u->callback_depth > 0) {
                /* libcurl is on the stack (a stream callback started us): add the handle
                 * from the loop. */
                upstream_request_arm(req, 0);
        } else {
                r = upstream_attempt_start(req);
                if (r < 0) {
                        upstream_request_detach(req);
                        upstream_request_free(req);
                        return r;
                }
        }

        if (ret)
                *ret = req;
        return 0;
}

/* Cancels; the callback will not be called. */
void upstream_request_cancel(UpstreamRequest *r) {
        Upstream *u;

        if (!r || r->state == REQ_DELIVERING || r->state == REQ_CANCELLED)
                return;
        u = r->upstream;

        upstream_stats_count(u, r->label, "cancelled");
        upstream_breaker_record(u, r, BREAKER_NEUTRAL);
        (void) event_del(r->timer);
        r->cb = NULL;

        if (u->callback_depth > 0) {
                /* libcurl (or a stream callback) is on the stack and may still hold this
                 * request: reap it once libcurl has returned. */
                assert(u->in_flight > 0);
                u->in_flight--;
                u->zombies++;
                r->state = REQ_CANCELLED;
                return;
        }
        upstream_request_destroy(r);
}

/* Resumes a transfer paused by a stream callback returning -EAGAIN. */
void upstream_request_resume(UpstreamRequest *r) {
        if (!r || r->state != REQ_ATTEMPT)
                return;
        if (r->upstream->callback_depth > 0) {
                /* From inside a libcurl callback (possibly the very callback that is about
                 * to return the pause): unpause from the loop instead. */
                upstream_request_arm(r, 0);
                return;
        }
        upstream_request_unpause(r);
}

/* Number of requests started and not yet completed or cancelled. */
unsigned upstream_in_flight(const Upstream *u) {
        return u ? u->in_flight : 0;
}
