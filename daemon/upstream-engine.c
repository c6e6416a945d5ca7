/* SPDX-License-Identifier: MIT */
/*
 * The upstream client's engine: libcurl's multi interface wired to the daemon's libevent loop
 * (style.md §3), and a request's way through it: attempts, SigV4 signing per attempt,
 * network retries with backoff, 429 waits, the deadline, and delivery from the request's own
 * timer. The design (wiring, life cycle, reentrancy, policy) is described in upstream.c.
 */
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "sigv4.h"
#include "upstream-internal.h"
#include "upstream.h"

/* Shortest wait after a 429, as the Python client does (max(1 s, retry_after)). */
#define UPSTREAM_RATE_LIMIT_MIN_MS 1000u

/* A curl timeout that fires this close to the deadline is the deadline. */
#define UPSTREAM_DEADLINE_SLACK_USEC (5u * USEC_PER_MSEC)

static void request_next_attempt(UpstreamRequest *req);
static void reap_zombies(Upstream *u);

/* ---- the libcurl <-> libevent wiring (style.md §3) -------------------------------------- */

/* Applies the connection limits to the multi handle. */
void upstream_apply_multi_options(Upstream *u) {
        (void) curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                                 (long) u->opts.max_total_connections);
        (void) curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                                 (long) u->opts.max_host_connections);
}

/* libevent: a watched socket is ready; hand it to libcurl, then harvest. */
static void on_socket_ready(evutil_socket_t fd, short what, void *userdata);

/* Frees the per-socket state. */
static UpstreamSocket *upstream_socket_free(Upstream *u, UpstreamSocket *s) {
        if (!s)
                return NULL;
        TAILQ_REMOVE(&u->sockets, s, link);
        if (s->ev)
                event_free(s->ev);
        free(s);
        return NULL;
}

/* libcurl: start, change or stop watching a socket. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userdata,
                          void *socketp) {
        Upstream *u = userdata;
        UpstreamSocket *s = socketp;
        short events;

        (void) easy;

        if (what == CURL_POLL_REMOVE) {
                /* libcurl forgets socketp on REMOVE; the fd may come back later. */
                upstream_socket_free(u, s);
                return 0;
        }

        switch (what) {
        case CURL_POLL_IN:
                events = EV_READ;
                break;
        case CURL_POLL_OUT:
                events = EV_WRITE;
                break;
        case CURL_POLL_INOUT:
                events = EV_READ | EV_WRITE;
                break;
        default:
                return -1;
        }
        events |= EV_PERSIST;

        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        return -1;
                s->upstream = u;
                s->fd = fd;
                TAILQ_INSERT_TAIL(&u->sockets, s, link);
                s->ev = event_new(u->base, fd, events, on_socket_ready, u);
                if (!s->ev || event_add(s->ev, NULL) < 0 ||
                    curl_multi_assign(u->multi, fd, s) != CURLM_OK) {
                        upstream_socket_free(u, s);
                        return -1;
                }
                return 0;
        }

        /* No libevent timeout on socket events: timing belongs to libcurl's timer. */
        (void) event_del(s->ev);
        if (event_assign(s->ev, u->base, fd, events, on_socket_ready, u) < 0 ||
            event_add(s->ev, NULL) < 0)
                return -1;
        return 0;
}

/* libcurl: (re)arm or delete the one timer. Never calls back into libcurl: a 0 ms timeout
 * is a 0 ms libevent timer, so socket_action runs from the loop. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userdata) {
        Upstream *u = userdata;
        struct timeval tv;

        (void) multi;

        if (timeout_ms < 0) {
                (void) evtimer_del(u->timer);
                return 0;
        }
        tv = usec_to_timeval(ms_to_usec((uint64_t) timeout_ms));
        return evtimer_add(u->timer, &tv) < 0 ? -1 : 0;
}

/* Creates the multi handle and wires it to the loop. */
int upstream_multi_create(Upstream *u) {
        CURLM *m;

        m = curl_multi_init();
        if (!m)
                return -ENOMEM;
        if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(m, CURLMOPT_SOCKETDATA, u) != CURLM_OK ||
            curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(m, CURLMOPT_TIMERDATA, u) != CURLM_OK ||
            curl_multi_setopt(m, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX) != CURLM_OK) {
                (void) curl_multi_cleanup(m);
                return -ENOMEM;
        }
        u->multi = m;
        upstream_apply_multi_options(u);
        return 0;
}

/* Tears down the multi handle: easy handles must be out already; curl_multi_cleanup may
 * still call on_curl_socket, so the event base and our socket list are alive here. */
void upstream_multi_destroy(Upstream *u) {
        if (u->multi) {
                (void) curl_multi_cleanup(u->multi);
                u->multi = NULL;
        }
        while (!TAILQ_EMPTY(&u->sockets))
                upstream_socket_free(u, TAILQ_FIRST(&u->sockets));
        if (u->timer)
                (void) evtimer_del(u->timer);
        u->still_running = 0;
}

/* Frees a request and everything it owns. Never touches the Upstream: a request being
 * delivered is detached and may outlive it. */
UpstreamRequest *upstream_request_free(UpstreamRequest *req) {
        if (!req)
                return NULL;
        assert(!req->in_multi);
        if (req->easy)
                curl_easy_cleanup(req->easy);
        if (req->timer)
                event_free(req->timer);
        upstream_slist_erase_and_free(req->headers);
        upstream_slist_erase_and_free(req->attempt_headers);
        explicit_bzero_safe(req->body, req->body_len);
        free(req->body);
        erase_and_free(req->userpwd);
        erase_and_free(req->proxy);
        free(req->proxy_log);
        free(req->attempt_text);
        erase_and_free(req->url);
        free(req->sign_region);
        free(req->sign_service);
        free(req->sign_host);
        free(req->sign_path);
        free(req->sign_query);
        free(req->payload_hash);
        free(req->url_log);
        free(req->label);
        free(req->resp_body);
        for (size_t i = 0; i < req->n_resp_headers; i++)
                free(req->resp_headers[i]);
        free(req->resp_headers);
        free(req->error_text);
        free(req);
        return NULL;
}

/* Unlinks a request from its Upstream: statistics, in-flight count and breaker. */
void upstream_request_detach(UpstreamRequest *req) {
        Upstream *u = req->upstream;

        TAILQ_REMOVE(&u->requests, req, link);
        if (req->state == REQ_CANCELLED) {
                assert(u->zombies > 0);
                u->zombies--;
        } else {
                assert(u->in_flight > 0);
                u->in_flight--;
        }
        upstream_breaker_release(req);
        req->upstream = NULL;
}

/* Removes a request from the multi (if there) and frees it; the callback is not called. */
void upstream_request_destroy(UpstreamRequest *req) {
        Upstream *u = req->upstream;

        if (req->in_multi) {
                (void) curl_multi_remove_handle(u->multi, req->easy);
                req->in_multi = false;
        }
        upstream_request_detach(req);
        upstream_request_free(req);
}

/* Frees the requests cancelled while libcurl was on the stack. */
static void reap_zombies(Upstream *u) {
        UpstreamRequest *req, *next;

        if (u->zombies == 0 || u->callback_depth > 0)
                return;
        for (req = TAILQ_FIRST(&u->requests); req; req = next) {
                next = TAILQ_NEXT(req, link);
                if (req->state == REQ_CANCELLED)
                        upstream_request_destroy(req);
        }
}

/* libcurl's state can no longer be trusted: fail every transfer in the multi handle and
 * replace it. Requests waiting for a retry keep waiting and use the new handle. */
static void upstream_multi_failed(Upstream *u, CURLMcode mc) {
        UpstreamRequest *req, *next;
        _cleanup_free_ char *text = NULL;
        int r;

        log_error("libcurl multi handle failed: %s; failing its transfers and recreating it.",
                  curl_multi_strerror(mc));
        if (asprintf(&text, "libcurl multi handle failed: %s", curl_multi_strerror(mc)) < 0)
                text = NULL;

        for (req = TAILQ_FIRST(&u->requests); req; req = next) {
                next = TAILQ_NEXT(req, link);
                if (!req->in_multi)
                        continue;
                (void) curl_multi_remove_handle(u->multi, req->easy);
                req->in_multi = false;
                if (req->state == REQ_CANCELLED)
                        upstream_request_destroy(req);
                else {
                        upstream_breaker_record(u, req, BREAKER_NEUTRAL);
                        upstream_request_complete(req, -EIO, text ?: "libcurl multi handle failed");
                }
        }

        upstream_multi_destroy(u);
        r = upstream_multi_create(u);
        if (r < 0)
                log_error_errno(r, "Failed to recreate the libcurl multi handle, retrying on "
                                   "the next request: %m");
}

/* Forward: what to do when an attempt has ended. */
static void attempt_done(UpstreamRequest *req, CURLcode result);

/* Harvests finished transfers. Runs only from libevent callbacks, after socket_action has
 * returned, because easy handles may not be removed from inside libcurl callbacks. */
static void drain_completions(Upstream *u) {
        CURLMsg *msg;
        int left;

        while (u->multi && (msg = curl_multi_info_read(u->multi, &left))) {
                UpstreamRequest *req;
                CURLcode result;
                CURL *easy;
                char *p = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                /* The message does not survive curl_multi_remove_handle: copy it first. */
                easy = msg->easy_handle;
                result = msg->data.result;
                (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
                req = (UpstreamRequest *) p;
                assert(req && req->easy == easy);

                (void) curl_multi_remove_handle(u->multi, easy);
                req->in_multi = false;
                if (req->state == REQ_CANCELLED) {
                        upstream_request_destroy(req);
                        continue;
                }
                attempt_done(req, result);
        }
}

/* Runs curl_multi_socket_action() and everything that must follow it. */
static void upstream_socket_action(Upstream *u, curl_socket_t fd, int mask) {
        CURLMcode mc;

        if (!u->multi)
                return;
        u->callback_depth++;
        mc = curl_multi_socket_action(u->multi, fd, mask, &u->still_running);
        u->callback_depth--;
        if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET) {
                upstream_multi_failed(u, mc);
                reap_zombies(u);
                return;
        }
        drain_completions(u);
        reap_zombies(u);
        if (u->still_running <= 0)
                (void) evtimer_del(u->timer);
}

/* libevent: a watched socket is ready; hand it to libcurl, then harvest. */
static void on_socket_ready(evutil_socket_t fd, short what, void *userdata) {
        Upstream *u = userdata;
        int mask = 0;

        if (what & EV_READ)
                mask |= CURL_CSELECT_IN;
        if (what & EV_WRITE)
                mask |= CURL_CSELECT_OUT;
        upstream_socket_action(u, fd, mask);
}

/* libevent: libcurl's timer expired. */
void upstream_on_timer(evutil_socket_t fd, short what, void *userdata) {
        Upstream *u = userdata;

        (void) fd;
        (void) what;
        upstream_socket_action(u, CURL_SOCKET_TIMEOUT, 0);
}

/* Makes the loop run socket_action soon (after unpausing a transfer). */
static void upstream_kick(Upstream *u) {
        struct timeval tv = { 0, 0 };

        (void) evtimer_add(u->timer, &tv);
}

/* ---- attempts, retries, completion ------------------------------------------------------ */

/* Arms the request's timer. */
void upstream_request_arm(UpstreamRequest *req, uint64_t usec) {
        struct timeval tv = usec_to_timeval(usec);

        /* evtimer_add only fails on invalid arguments; nothing to recover here. */
        (void) evtimer_add(req->timer, &tv);
}

/* Sets the result and schedules delivery from the request timer. */
void upstream_request_complete(UpstreamRequest *req, int error, const char *text) {
        char *copy = text ? strdup(text) : NULL; /* text may be req->error_text */

        req->error = error;
        free(req->error_text);
        req->error_text = copy;
        req->state = REQ_COMPLETING;
        upstream_request_arm(req, 0);
}

/* The text of the last attempt's libcurl error. libcurl names the host it connected to, which
 * for a request through a proxy is the proxy: say so, and which proxy (credentials masked). The
 * text is valid until the next call. */
static const char *attempt_error_text(UpstreamRequest *req, CURLcode result) {
        const char *text = req->errbuf[0] ? req->errbuf : curl_easy_strerror(result);
        char *n = NULL;
        int r;

        if (!req->proxy_log)
                return text;
        if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_PROXY ||
            result == CURLE_PROXY)
                r = asprintf(&n, "Failed to connect to proxy %s (%s)", req->proxy_log, text);
        else
                r = asprintf(&n, "%s (via proxy %s)", text, req->proxy_log);
        if (r < 0)
                return text;
        free(req->attempt_text);
        req->attempt_text = n;
        return n;
}

/* Whether the request body can be sent again. */
static bool request_can_repeat(const UpstreamRequest *req) {
        return !req->body_read || req->body_bytes_read == 0 || req->body_rewind;
}

/* Rewinds the body before a repeat. Returns 0 or -errno; the caller checks for a cancel
 * issued by the rewind callback. */
static int request_rewind(UpstreamRequest *req) {
        Upstream *u = req->upstream;
        int r;

        req->body_off = 0;
        if (!req->body_read || req->body_bytes_read == 0)
                return 0;
        if (!req->body_rewind)
                return -ESPIPE;
        u->callback_depth++;
        r = req->body_rewind(req->stream_userdata);
        u->callback_depth--;
        if (r >= 0)
                req->body_bytes_read = 0;
        return r < 0 ? r : 0;
}

/* Parses Retry-After (delta-seconds or an HTTP date) into milliseconds, -1 if absent or
 * unparsable. */
static long long parse_retry_after(const char *v) {
        time_t t, now;
        char *end;
        unsigned long long s;

        if (isempty(v))
                return -1;
        if (*v >= '0' && *v <= '9') {
                errno = 0;
                s = strtoull(v, &end, 10);
                if (errno != 0 || *end != '\0')
                        return -1;
                return s > (unsigned long long) LLONG_MAX / 1000 ? LLONG_MAX : (long long) s * 1000;
        }
        t = curl_getdate(v, NULL);
        if (t == (time_t) -1)
                return -1;
        now = time(NULL);
        if (t <= now)
                return 0;
        /* a date centuries ahead (curl_getdate takes any year) is as good as never */
        return (unsigned long long) (t - now) > (unsigned long long) LLONG_MAX / 1000 ? LLONG_MAX
                                                                                       : (long long) (t - now) * 1000;
}

/* The "retry_after" number (seconds) of a JSON error body, in milliseconds, or -1. */
static long long body_retry_after(const UpstreamRequest *req) {
        json_tokener *tok;
        json_object *o, *v;
        long long ms = -1;
        double d;

        if (!req->resp_body || req->resp_len == 0 || req->resp_len > INT32_MAX)
                return -1;
        tok = json_tokener_new_ex(16);
        if (!tok)
                return -1;
        o = json_tokener_parse_ex(tok, req->resp_body, (int) req->resp_len);
        if (o && json_object_is_type(o, json_type_object) &&
            json_object_object_get_ex(o, "retry_after", &v) &&
            (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
                d = json_object_get_double(v);
                if (d >= 0 && d < 1e12)
                        ms = (long long) (d * 1000.0 + 0.5);
        }
        json_object_put(o);
        json_tokener_free(tok);
        return ms;
}

/* Whether the deadline has passed (a curl timeout within the slack counts as the deadline). */
static bool request_deadline_reached(const UpstreamRequest *req, uint64_t now) {
        return add_sat(now, UPSTREAM_DEADLINE_SLACK_USEC) >= req->deadline_usec;
}

/* Completes with -ETIMEDOUT, naming the last error when there was one. */
static void request_timed_out(UpstreamRequest *req, const char *last) {
        _cleanup_free_ char *text = NULL;

        if (asprintf(&text,
                     "Timeout waiting for %s %s: deadline of %" PRIu64 " ms exceeded after %u "
                     "attempt(s)%s%s",
                     upstream_method_to_string(req->method), req->url_log, req->timeout_ms,
                     req->attempts, last ? "; last error: " : "", last ?: "") < 0)
                text = NULL;
        upstream_request_complete(req, -ETIMEDOUT, text ?: "deadline exceeded");
}

/* Waits before the next attempt, never past the deadline: a wait that reaches it ends the
 * request with -ETIMEDOUT when the timer fires. */
static void request_wait(UpstreamRequest *req, uint64_t wait_ms) {
        uint64_t now = now_usec();
        uint64_t until = MIN(add_sat(now, ms_to_usec(wait_ms)), req->deadline_usec);

        req->state = REQ_WAITING;
        upstream_request_arm(req, until > now ? until - now : 0);
}

/* The full-jitter backoff before network retry number n (0-based). */
static uint64_t backoff_ms(const UpstreamRequest *req, unsigned n) {
        uint64_t ceiling = req->retry_base_ms;

        for (unsigned i = 0; i < n && ceiling < req->retry_max_ms; i++)
                ceiling *= 2;
        ceiling = MIN(ceiling, req->retry_max_ms);
        return arc4random_uniform((uint32_t) MIN(ceiling, (uint64_t) UINT32_MAX - 1) + 1);
}

/* A 429: wait and repeat, or complete with the status and the wait the server asked for. */
static void attempt_rate_limited(UpstreamRequest *req) {
        Upstream *u = req->upstream;
        long long ra;
        uint64_t wait_ms, now = now_usec();
        int r;

        ra = parse_retry_after(upstream_request_header(req, "Retry-After"));
        if (ra < 0)
                ra = body_retry_after(req);
        wait_ms = MAX((uint64_t) MAX(ra, 0LL), (uint64_t) UPSTREAM_RATE_LIMIT_MIN_MS);
        req->retry_after_ms = (long long) MIN(wait_ms, (uint64_t) LLONG_MAX);

        if (req->rate_limit_retries >= req->max_rate_limit_retries ||
            wait_ms > req->max_retry_after_ms ||
            add_sat(add_sat(now, ms_to_usec(wait_ms)), UPSTREAM_DEADLINE_SLACK_USEC) >=
                    req->deadline_usec ||
            !request_can_repeat(req)) {
                upstream_request_complete(req, 0, NULL);
                return;
        }
        r = request_rewind(req);
        if (req->state == REQ_CANCELLED)
                return;
        if (r < 0) {
                upstream_request_complete(req, 0, NULL);
                return;
        }

        req->rate_limit_retries++;
        req->network_attempts = 0;
        u->retries_rate_limited++;
        log_warning("%s %s: rate limited (429), retrying in %" PRIu64 " ms (%u/%u).",
                    upstream_method_to_string(req->method), req->url_log, wait_ms,
                    req->rate_limit_retries, req->max_rate_limit_retries);
        request_wait(req, wait_ms);
}

/* Decides what follows an attempt: deliver, wait for a rate limit, or back off and retry. */
static void attempt_done(UpstreamRequest *req, CURLcode result) {
        Upstream *u = req->upstream;
        uint64_t now = now_usec(), wait_ms;
        bool network;
        long status = 0;
        int r;

        (void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
        req->status = status;
        req->paused = false;

        if (result == CURLE_OK) {
                log_debug("%s %s: %ld in %" PRIu64 " ms (attempt %u)",
                          upstream_method_to_string(req->method), req->url_log, status,
                          usec_span_ms(req->attempt_start_usec, now), req->attempts);
                upstream_breaker_record(u, req, BREAKER_SUCCESS);
                if (status == 429) {
                        attempt_rate_limited(req);
                        return;
                }
                req->retry_after_ms =
                        parse_retry_after(upstream_request_header(req, "Retry-After"));
                upstream_request_complete(req, 0, NULL);
                return;
        }

        r = upstream_curl_error_to_errno(result, req);
        network = upstream_error_is_network(result) && req->stream_error == 0;
        log_debug("%s %s: attempt %u failed after %" PRIu64 " ms: %s",
                  upstream_method_to_string(req->method), req->url_log, req->attempts,
                  usec_span_ms(req->attempt_start_usec, now), attempt_error_text(req, result));

        /* Anything the host answered over HTTP, a body over the cap included, is no reason
         * to distrust it. */
        if (!network) {
                _cleanup_free_ char *text = NULL;

                upstream_breaker_record(u, req, status > 0 ? BREAKER_SUCCESS : BREAKER_NEUTRAL);
                if (req->stream_error < 0) {
                        if (asprintf(&text, "transfer aborted: %s", strerror(-r)) < 0)
                                text = NULL;
                } else if (r == -EMSGSIZE) {
                        if (asprintf(&text, "response body exceeds the limit of %" PRIu64
                                     " bytes", req->max_body) < 0)
                                text = NULL;
                }
                upstream_request_complete(req, r, text ?: attempt_error_text(req, result));
                return;
        }

        /* The half-open trial decides alone and at once: no retries. */
        if (!req->idempotent || req->breaker_trial ||
            req->network_attempts >= req->max_network_attempts || !request_can_repeat(req)) {
                upstream_breaker_record(u, req, BREAKER_FAILURE);
                if (result == CURLE_OPERATION_TIMEDOUT && request_deadline_reached(req, now))
                        request_timed_out(req, NULL);
                else
                        upstream_request_complete(req, r, attempt_error_text(req, result));
                return;
        }
        if (request_deadline_reached(req, now)) {
                upstream_breaker_record(u, req, BREAKER_FAILURE);
                request_timed_out(req, result == CURLE_OPERATION_TIMEDOUT ?
                                  NULL : attempt_error_text(req, result));
                return;
        }

        r = request_rewind(req);
        if (req->state == REQ_CANCELLED)
                return;
        if (r < 0) {
                upstream_breaker_record(u, req, BREAKER_FAILURE);
                upstream_request_complete(req, upstream_curl_error_to_errno(result, req),
                                          attempt_error_text(req, result));
                return;
        }

        wait_ms = backoff_ms(req, req->network_attempts - 1);
        u->retries_network++;
        log_warning("%s %s: %s (attempt %u/%u), retrying in %" PRIu64 " ms.",
                    upstream_method_to_string(req->method), req->url_log,
                    attempt_error_text(req, result), req->network_attempts,
                    req->max_network_attempts, wait_ms);
        /* Keep the error for the message should the deadline end the wait. */
        free(req->error_text);
        req->error_text = strdup(attempt_error_text(req, result));
        request_wait(req, wait_ms);
}

/* Whether a header line is one of libcurl's removal lines ("Name:" with nothing after the
 * colon), which keeps a header of libcurl's own off the wire: never signed. */
static bool header_line_is_removal(const char *line) {
        const char *v = strchr(line, ':') + 1;

        v += strspn(v, " \t");
        return *v == '\0';
}

/* Builds the attempt's header list: the request's lines plus Host, x-amz-date and the
 * Authorization computed over exactly the lines that go on the wire. */
static int request_sign(UpstreamRequest *req) {
        const char *lines[UPSTREAM_CALL_HEADERS_MAX + 4];
        _cleanup_free_ char *host = NULL, *date_line = NULL, *auth = NULL, *auth_line = NULL;
        _cleanup_(erase_and_freep) char *id = NULL;
        struct curl_slist *list = NULL;
        char date[SIGV4_DATE_SIZE];
        const char *secret;
        size_t n = 0;
        int r;

        sigv4_format_date((time_t) (now_realtime_usec() / USEC_PER_SEC), date);
        if (asprintf(&host, "Host: %s", req->sign_host) < 0)
                host = NULL;
        if (asprintf(&date_line, "x-amz-date: %s", date) < 0)
                date_line = NULL;
        id = strdup(req->userpwd ?: "");
        if (!host || !date_line || !id)
                return -ENOMEM;
        /* "id:secret", as CURLOPT_USERPWD took it */
        secret = strchr(id, ':');
        if (!secret)
                return -EINVAL;
        *(char *) secret++ = '\0';

        for (struct curl_slist *i = req->headers; i; i = i->next)
                if (!header_line_is_removal(i->data) && n < UPSTREAM_CALL_HEADERS_MAX)
                        lines[n++] = i->data;
        lines[n++] = host;
        lines[n++] = date_line;
        r = sigv4_authorization(&(SigV4Request) {
                                        .method = upstream_method_to_string(req->method),
                                        .path = req->sign_path,
                                        .query = req->sign_query,
                                        .headers = lines,
                                        .n_headers = n,
                                        .payload_hash = req->payload_hash,
                                        .amz_date = date,
                                        .region = req->sign_region,
                                        .service = req->sign_service,
                                        .access_key_id = id,
                                        .secret_access_key = secret,
                                },
                                &auth, NULL);
        if (r < 0)
                return r;
        if (asprintf(&auth_line, "Authorization: %s", auth) < 0)
                return -ENOMEM;

        /* The lines as they go out: removal lines included, they are not sent. */
        for (struct curl_slist *i = req->headers; i; i = i->next)
                if (!upstream_slist_append_checked(&list, i->data))
                        goto oom;
        if (!upstream_slist_append_checked(&list, host) ||
            !upstream_slist_append_checked(&list, date_line) ||
            !upstream_slist_append_checked(&list, auth_line))
                goto oom;
        explicit_bzero_safe(auth_line, strlen(auth_line));
        if (curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, list)) {
                upstream_slist_erase_and_free(list);
                return -EINVAL;
        }
        upstream_slist_erase_and_free(req->attempt_headers);
        req->attempt_headers = list;
        return 0;
oom:
        explicit_bzero_safe(auth_line, strlen(auth_line));
        upstream_slist_erase_and_free(list);
        return -ENOMEM;
}

/* Resets per-attempt state, sets the attempt's timeouts and adds the easy handle. */
int upstream_attempt_start(UpstreamRequest *req) {
        Upstream *u = req->upstream;
        uint64_t now = now_usec(), remaining_ms;
        CURLMcode mc;
        int r;

        assert(u->callback_depth == 0);
        if (!u->multi) {
                r = upstream_multi_create(u);
                if (r < 0)
                        return r;
        }

        remaining_ms = usec_span_ms(now, req->deadline_usec);
        if (remaining_ms == 0)
                return -ETIMEDOUT;

        req->resp_len = 0;
        if (req->resp_body)
                req->resp_body[0] = '\0';
        upstream_response_headers_clear(req);
        req->status = 0;
        req->too_large = false;
        req->stream_error = 0;
        req->paused = false;
        req->errbuf[0] = '\0';
        req->body_off = 0;
        req->retry_after_ms = -1;

        /* Each attempt is signed anew: a retry may come long after the first try, and
         * servers refuse an x-amz-date more than 15 minutes off. */
        if (req->sign) {
                r = request_sign(req);
                if (r < 0)
                        return r;
        }

        /* The attempt may use what is left of the whole request's deadline. */
        if (curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, (long) MIN(remaining_ms,
                                                                       (uint64_t) LONG_MAX)) ||
            curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS,
                             (long) MIN(MIN(req->connect_timeout_ms, remaining_ms),
                                        (uint64_t) LONG_MAX)))
                return -EINVAL;

        mc = curl_multi_add_handle(u->multi, req->easy);
        if (mc != CURLM_OK)
                return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        req->in_multi = true;
        req->state = REQ_ATTEMPT;
        req->attempts++;
        req->network_attempts++;
        req->attempt_start_usec = now;
        return 0;
}

/* Starts the next attempt, or ends the request if the deadline passed while waiting. */
static void request_next_attempt(UpstreamRequest *req) {
        int r;

        if (req->state == REQ_WAITING && request_deadline_reached(req, now_usec()))
                r = -ETIMEDOUT;
        else
                r = upstream_attempt_start(req);
        if (r == -ETIMEDOUT) {
                _cleanup_free_ char *last = TAKE_PTR(req->error_text);

                /* the deadline passed in a backoff after network failures, or (rarely) a
                 * rate-limit wait */
                upstream_breaker_record(req->upstream, req,
                                        req->status > 0 ? BREAKER_NEUTRAL : BREAKER_FAILURE);
                request_timed_out(req, last);
        } else if (r < 0) {
                upstream_breaker_record(req->upstream, req, BREAKER_NEUTRAL);
                upstream_request_complete(req, r, "failed to start the transfer");
        }
}

/* Unpauses a transfer paused by a stream callback, then kicks the multi from the loop. */
void upstream_request_unpause(UpstreamRequest *req) {
        Upstream *u = req->upstream;
        CURLcode c;

        if (!req->paused || !req->in_multi)
                return;
        req->paused = false;
        /* May call our write callback (and the sink) synchronously with the held bytes. */
        u->callback_depth++;
        c = curl_easy_pause(req->easy, CURLPAUSE_CONT);
        u->callback_depth--;
        if (c != CURLE_OK && req->state == REQ_ATTEMPT && req->in_multi) {
                /* A callback failed while libcurl flushed the held data: the transfer
                 * cannot continue, end the attempt here as drain_completions would. */
                (void) curl_multi_remove_handle(u->multi, req->easy);
                req->in_multi = false;
                attempt_done(req, c);
        }
        reap_zombies(u);
        upstream_kick(u);
}

/* Hands the result to the caller and frees the request. */
static void request_deliver(UpstreamRequest *req) {
        Upstream *u = req->upstream;
        UpstreamResponse resp;
        char key[32];
        upstream_done_cb cb = req->cb;
        void *userdata = req->userdata;

        if (req->error < 0)
                snprintf(key, sizeof(key), "%s", upstream_error_stats_name(req->error));
        else
                snprintf(key, sizeof(key), "%ld", req->status);
        upstream_stats_count(u, req->label, key);

        /* Detached from here on: the callback may do anything, upstream_free() included. */
        upstream_request_detach(req);
        req->state = REQ_DELIVERING;

        resp = (UpstreamResponse) {
                .error = req->error,
                .error_text = req->error_text ?: "",
                .status = req->status,
                .body = req->resp_body && req->error == 0 ? req->resp_body : "",
                .body_len = req->error == 0 ? req->resp_len : 0,
                .content_type = upstream_request_header(req, "Content-Type"),
                .retry_after_ms = req->retry_after_ms,
                .attempts = req->attempts,
                .elapsed_ms = usec_span_ms(req->start_usec, now_usec()),
                .request = req,
        };
        if (cb)
                cb(&resp, userdata);
        upstream_request_free(req);
}

/* libevent: the request's own timer (see the state diagram in upstream.c). */
void upstream_on_request_timer(evutil_socket_t fd, short what, void *userdata) {
        UpstreamRequest *req = userdata;

        (void) fd;
        (void) what;

        switch (req->state) {
        case REQ_PENDING:
        case REQ_WAITING:
                request_next_attempt(req);
                break;
        case REQ_ATTEMPT:
                upstream_request_unpause(req); /* a resume deferred out of a libcurl callback */
                break;
        case REQ_COMPLETING:
                request_deliver(req);
                break;
        case REQ_DELIVERING:
        case REQ_CANCELLED:
        default:
                break;
        }
}
