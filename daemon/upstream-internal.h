/* SPDX-License-Identifier: MIT */
/*
 * Inside the upstream client (the contract is upstream.h; the design, in upstream.c). The
 * files, each using only those above it in this list:
 *   upstream-url.c       method names, the scheme policy, URL descriptions, libcurl errors
 *   upstream-breaker.c   circuit breakers and statistics
 *   upstream-transfer.c  one transfer's libcurl callbacks, header lists
 *   upstream-engine.c    the libcurl multi <-> libevent wiring; attempts, retries, delivery
 *   upstream-request.c   building a request and its easy handle
 *   upstream.c           options and the public API
 */
#pragma once

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "clock.h"
#include "macro.h"
#include "upstream.h"

/* Header lines a caller may pass (ours are a handful). */
#define UPSTREAM_CALL_HEADERS_MAX 64

typedef enum RequestState {
        REQ_PENDING,    /* first attempt deferred to the request timer */
        REQ_ATTEMPT,    /* easy handle in the multi */
        REQ_WAITING,    /* backoff or Retry-After wait on the request timer */
        REQ_COMPLETING, /* result ready; the request timer delivers it */
        REQ_DELIVERING, /* detached; the completion callback runs */
        REQ_CANCELLED,  /* cancelled while libcurl was on the stack; reaped later */
} RequestState;

typedef enum BreakerState {
        BREAKER_CLOSED,
        BREAKER_OPEN,
        BREAKER_HALF_OPEN,
        _BREAKER_STATE_MAX,
        _BREAKER_STATE_INVALID = -EINVAL,
} BreakerState;

typedef enum BreakerOutcome {
        BREAKER_SUCCESS, /* the host answered HTTP (any status) */
        BREAKER_FAILURE, /* the request finally failed at the network level */
        BREAKER_NEUTRAL, /* says nothing about the host (cancelled, local stream error) */
} BreakerOutcome;

typedef struct UpstreamSocket UpstreamSocket;
typedef struct Breaker Breaker;

/* The strings UpstreamOptions points to, copied. */
typedef struct UpstreamStrings {
        char *user_agent;
        char *ca_file;
        char *http_proxy;
        char *https_proxy;
        char *no_proxy;
} UpstreamStrings;

/* One socket libcurl asked us to watch (curl_multi_assign()ed to it). */
struct UpstreamSocket {
        Upstream *upstream;
        curl_socket_t fd;
        struct event *ev;
        TAILQ_ENTRY(UpstreamSocket) link;
};

/* Circuit breaker of one scheme://host:port. */
struct Breaker {
        char *key;
        uint64_t serial;            /* which breaker of the Upstream's it is (1, 2, ...) */
        BreakerState state; /* OPEN past its cooldown is reported as half_open */
        unsigned consecutive_failures;
        unsigned opened;            /* times it opened */
        uint64_t opened_usec;       /* when it last opened */
        UpstreamRequest *trial;     /* the half-open trial request */
        unsigned users;             /* requests pointing at it */
        TAILQ_ENTRY(Breaker) link;
};

struct UpstreamRequest {
        Upstream *upstream;
        TAILQ_ENTRY(UpstreamRequest) link;
        RequestState state;
        struct event *timer;

        upstream_done_cb cb;
        void *userdata;

        /* the call, copied */
        UpstreamMethod method;
        char *url;
        char *url_log;              /* without userinfo, query and fragment */
        char *label;
        struct curl_slist *headers; /* values zeroed before free */
        char *body;                 /* in-memory body, zeroed before free */
        size_t body_len;
        size_t body_off;            /* in-memory PUT read position */
        bool has_body;
        upstream_read_cb body_read;
        upstream_rewind_cb body_rewind;
        int64_t body_size;
        upstream_write_cb sink;
        void *stream_userdata;
        bool idempotent;
        bool own_connection;        /* HTTP/1.1, never multiplexed */
        char *userpwd;              /* zeroed before free */
        char *proxy;                /* the proxy it goes through, NULL: direct; zeroed */
        char *proxy_log;            /* the same with "user:password@" masked */

        /* SigV4, when the call asked for it (see sigv4.c for why we sign ourselves) */
        bool sign;
        char *sign_region;
        char *sign_service;
        char *sign_host;            /* the Host line we send: host[:port] of the URL */
        char *sign_path;            /* path and query as libcurl sends them */
        char *sign_query;
        char *payload_hash;         /* x-amz-content-sha256 */
        struct curl_slist *attempt_headers; /* headers + Host, x-amz-date, Authorization */

        /* options in force when the request started */
        uint64_t start_usec;
        uint64_t deadline_usec;
        uint64_t timeout_ms;
        uint64_t max_body;
        uint64_t connect_timeout_ms;
        unsigned max_network_attempts;
        uint64_t retry_base_ms;
        uint64_t retry_max_ms;
        unsigned max_rate_limit_retries;
        uint64_t max_retry_after_ms;

        /* circuit breaker */
        Breaker *breaker;
        bool breaker_trial;

        /* the current attempt */
        CURL *easy;
        bool in_multi;
        bool paused;                /* a stream callback asked for a pause */
        bool too_large;             /* our body cap was hit */
        int stream_error;           /* error returned by a stream callback */
        char errbuf[CURL_ERROR_SIZE];
        char *attempt_text;         /* errbuf naming the proxy, see attempt_error_text() */
        uint64_t attempt_start_usec;

        /* counters over all attempts */
        unsigned attempts;
        unsigned network_attempts;  /* attempts since the last HTTP answer */
        unsigned rate_limit_retries;
        uint64_t body_bytes_read;   /* from body_read, all attempts */

        /* the response of the last attempt */
        long status;
        char *resp_body;
        size_t resp_len;
        size_t resp_alloc;
        char **resp_headers;        /* "name\0value\0" each */
        size_t n_resp_headers;
        size_t resp_header_bytes;

        /* the result */
        int error;
        char *error_text;
        long long retry_after_ms;
};

struct Upstream {
        struct event_base *base;
        CURLM *multi;
        struct event *timer;        /* libcurl's one timer */
        int still_running;
        unsigned callback_depth;    /* > 0 while libcurl or a stream callback is on the stack */
        unsigned zombies;           /* requests in REQ_CANCELLED */

        UpstreamOptions opts;       /* normalized; its strings are these copies */
        UpstreamStrings strings;

        TAILQ_HEAD(, UpstreamRequest) requests;
        TAILQ_HEAD(, UpstreamSocket) sockets;
        TAILQ_HEAD(, Breaker) breakers;
        unsigned n_breakers;
        uint64_t breakers_made;
        unsigned in_flight;

        json_object *stats_requests; /* {"label": {"200": n, "timeout": n}} */
        uint64_t stats_requests_changes; /* bumped by every change of stats_requests */
        uint64_t retries_network;
        uint64_t retries_rate_limited;

        /* daemon.status: the text of stats_requests as of stats_text_changes, and the breaker
         * key of the URL last asked about (upstream_breaker_state()), so that neither is made
         * again while it is the same */
        char *stats_text;
        size_t stats_text_len;
        uint64_t stats_text_changes;
        bool stats_text_valid;
        char *state_url;
        char *state_url_key;        /* NULL: the URL has no breaker key ("closed") */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);

/* Frees a string libcurl allocated, for _cleanup_. */
static inline void curl_freep(char **p) {
        curl_free(*p);
}

/* Milliseconds from a to b (0 when b is not after a), rounded up. */
static inline uint64_t usec_span_ms(uint64_t a, uint64_t b) {
        return b > a ? (b - a + USEC_PER_MSEC - 1) / USEC_PER_MSEC : 0;
}

/* a * 1000 without overflow. */
static inline uint64_t ms_to_usec(uint64_t ms) {
        return ms > UINT64_MAX / USEC_PER_MSEC ? UINT64_MAX : ms * USEC_PER_MSEC;
}

/* a + b without overflow. */
static inline uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- upstream-url.c ------------------------------------------------------------------------- */

/* Parses an absolute URL into a CURLU handle. */
int upstream_url_parse(const char *url, CURLU **ret);

/* Checks a parsed URL against the scheme policy. */
int upstream_url_policy(CURLU *h, bool allow_insecure_http);

/* Derives from a parsed URL (which it strips) the log form of the URL (no credentials, query
 * or fragment), the default statistics label ("METHOD /path"; not when ret_label is NULL) and
 * the breaker key (scheme://host:port). */
int upstream_url_describe(CURLU *h, UpstreamMethod method, char **ret_log, char **ret_label,
                          char **ret_key);

/* Maps a libcurl result to a negative errno: the one place that does. Stream callback errors
 * and our body cap show up as write/read/abort codes, so the request's flags decide those. */
int upstream_curl_error_to_errno(CURLcode c, const UpstreamRequest *req);

/* Whether a libcurl result is a transient network failure: retried for idempotent requests
 * and counted by the circuit breaker. TLS handshake resets are; certificate errors are not. */
bool upstream_error_is_network(CURLcode c);

/* The statistics key of a failed request. */
const char *upstream_error_stats_name(int error);

/* ---- upstream-breaker.c --------------------------------------------------------------------- */

/* Adds one to stats_requests[label][key]. Statistics are best effort: allocation failures
 * are ignored. */
void upstream_stats_count(Upstream *u, const char *label, const char *key);

/* Frees a breaker. */
Breaker *upstream_breaker_free(Breaker *b);

/* Finds or creates the breaker of a key; NULL when the table is full of busy breakers or
 * memory is short (the request then runs without one). */
Breaker *upstream_breaker_get(Upstream *u, const char *key);

/* Decides whether a new request may go to its host. Returns 0, or -EHOSTDOWN with a
 * description in *ret_text. */
int upstream_breaker_admit(Upstream *u, UpstreamRequest *req, char **ret_text);

/* Records what a request learned about its host. */
void upstream_breaker_record(Upstream *u, UpstreamRequest *req, BreakerOutcome outcome);

/* Drops a request's reference to its breaker, releasing the trial slot if it held it. */
void upstream_breaker_release(UpstreamRequest *req);

/* ---- upstream-transfer.c -------------------------------------------------------------------- */

/* Appends a copy of line to *l; false on OOM (*l is left as it was). */
bool upstream_slist_append_checked(struct curl_slist **l, const char *line);

/* Frees a header list whose lines may hold secrets. */
void upstream_slist_erase_and_free(struct curl_slist *l);

/* Drops the response headers collected so far. */
void upstream_response_headers_clear(UpstreamRequest *req);

/* libcurl: one response header line. Kept (bounded) for upstream_response_header(). */
size_t upstream_on_curl_header(char *data, size_t size, size_t nitems, void *userdata);

/* Looks a collected response header up (case-insensitive name). */
const char *upstream_request_header(const UpstreamRequest *req, const char *name);

/* libcurl: response body bytes. 2xx bodies go to the sink when there is one; everything
 * else is kept in memory (error bodies carry the message). */
size_t upstream_on_curl_write(char *data, size_t size, size_t nmemb, void *userdata);

/* libcurl: request body bytes, from our copy or from the caller's body_read. */
size_t upstream_on_curl_read(char *buf, size_t size, size_t nitems, void *userdata);

/* libcurl: rewind the request body (libcurl resends on a reused connection that died). */
int upstream_on_curl_seek(void *userdata, curl_off_t offset, int origin);

/* ---- upstream-engine.c ---------------------------------------------------------------------- */

/* Applies the connection limits to the multi handle. */
void upstream_apply_multi_options(Upstream *u);

/* Creates the multi handle and wires it to the loop. */
int upstream_multi_create(Upstream *u);

/* Tears down the multi handle: easy handles must be out already; curl_multi_cleanup may
 * still call on_curl_socket, so the event base and our socket list are alive here. */
void upstream_multi_destroy(Upstream *u);

/* Frees a request and everything it owns. Never touches the Upstream: a request being
 * delivered is detached and may outlive it. */
UpstreamRequest *upstream_request_free(UpstreamRequest *req);

/* Unlinks a request from its Upstream: statistics, in-flight count and breaker. */
void upstream_request_detach(UpstreamRequest *req);

/* Removes a request from the multi (if there) and frees it; the callback is not called. */
void upstream_request_destroy(UpstreamRequest *req);

/* libevent: libcurl's timer expired. */
void upstream_on_timer(evutil_socket_t fd, short what, void *userdata);

/* Arms the request's timer. */
void upstream_request_arm(UpstreamRequest *req, uint64_t usec);

/* Sets the result and schedules delivery from the request timer. */
void upstream_request_complete(UpstreamRequest *req, int error, const char *text);

/* Resets per-attempt state, sets the attempt's timeouts and adds the easy handle. */
int upstream_attempt_start(UpstreamRequest *req);

/* Unpauses a transfer paused by a stream callback, then kicks the multi from the loop. */
void upstream_request_unpause(UpstreamRequest *req);

/* libevent: the request's own timer (see the state diagram at the top). */
void upstream_on_request_timer(evutil_socket_t fd, short what, void *userdata);

/* ---- upstream-request.c --------------------------------------------------------------------- */

/* Copies the call, whose URL parsed into `url` and passed the scheme policy, into a new
 * request. */
int upstream_request_new(Upstream *u, const UpstreamCall *call, CURLU *url, UpstreamRequest **ret);
