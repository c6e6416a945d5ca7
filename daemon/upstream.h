/* SPDX-License-Identifier: MIT */
/*
 * Upstream HTTP client: one long-lived libcurl multi handle driven by the daemon's libevent
 * loop (curl_multi_socket_action, one timer, one event per socket). Nothing here blocks.
 *
 * Glossary:
 *   Upstream         the multi handle, its timer and sockets, options, statistics, and one
 *                    circuit breaker per upstream host.
 *   UpstreamRequest  one logical request: possibly several HTTP attempts (network retries
 *                    with jittered exponential backoff for idempotent requests, and waits
 *                    for Retry-After on 429), then exactly one completion callback.
 *   attempt          one curl easy transfer.
 *
 * Contract (libuv's): upstream_request_start() either returns < 0 and never calls the
 * callback, or returns 0 and calls it exactly once, always from a fresh libevent callback
 * (never from inside upstream_request_start or from inside a libcurl callback), unless the
 * request is cancelled first. upstream_request_cancel() never calls the callback and is safe
 * from any libevent callback, from any completion callback (its own request included: a
 * no-op) and from inside the stream callbacks (body_read, body_rewind, sink) of any request;
 * a request cancelled while libcurl is on the stack is freed once libcurl has returned.
 * Stream callbacks may also start requests and resume transfers (both deferred to the loop).
 *
 * Secrets: header values and `userpwd` are copied into memory that is zeroed before it is
 * freed, and are never logged; URLs are logged without their query string.
 *
 * Proxies: the options say which proxy serves each scheme (the caller resolved the
 * configuration and the environment); each request picks its own (proxy.h) and libcurl is
 * told exactly, never left to read the environment. Errors of a request that went through a
 * proxy name it, with "user:password@" masked as "***@".
 */
#pragma once

#include <errno.h>
#include <limits.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct JsonText JsonText;
typedef struct JsonTextMemo JsonTextMemo;

typedef struct Upstream Upstream;
typedef struct UpstreamRequest UpstreamRequest;

/* For max_rate_limit_retries: no 429 is waited out (0 there means the default). */
#define UPSTREAM_RETRIES_NONE UINT_MAX

typedef struct UpstreamOptions {
        const char *user_agent;          /* copied; NULL = "avatard/<version>" */
        bool verify_ssl;                 /* false: logged loudly at upstream_new */
        const char *ca_file;             /* copied; NULL = system store */
        bool allow_insecure_http;        /* plain http to non-loopback hosts */
        uint64_t connect_timeout_ms;     /* per attempt; 0 = 10 s */
        uint64_t request_timeout_ms;     /* default deadline of a whole request; 0 = 60 s */
        uint64_t max_body_bytes;         /* cap for in-memory response bodies; 0 = 64 MiB */
        unsigned max_network_attempts;   /* incl. the first; 0 = 6; 1 disables retries */
        uint64_t retry_base_ms;          /* first backoff; 0 = 200 ms */
        uint64_t retry_max_ms;           /* backoff ceiling; 0 = 5 s */
        unsigned max_rate_limit_retries; /* 429 waits; 0 = 3; UPSTREAM_RETRIES_NONE = none */
        uint64_t max_retry_after_ms;     /* longest Retry-After honoured; 0 = 60 s; longer → fail */
        unsigned max_total_connections;  /* 0 = 64 */
        unsigned max_host_connections;   /* 0 = 16 */
        unsigned breaker_threshold;      /* consecutive network failures that open it; 0 = 5 */
        uint64_t breaker_cooldown_ms;    /* open → half-open after this; 0 = 10 s */
        const char *http_proxy;          /* proxy for http URLs; copied; NULL or "" = direct */
        const char *https_proxy;         /* proxy for https URLs; copied; NULL or "" = direct */
        const char *no_proxy;            /* hosts reached directly (proxy.h); copied */
} UpstreamOptions;

typedef enum UpstreamMethod {
        UPSTREAM_GET,
        UPSTREAM_HEAD,
        UPSTREAM_POST,
        UPSTREAM_PUT,
        UPSTREAM_DELETE,
        _UPSTREAM_METHOD_MAX,
        _UPSTREAM_METHOD_INVALID = -EINVAL,
} UpstreamMethod;

const char *upstream_method_to_string(UpstreamMethod m);

/* Streaming request body source. Returns bytes written to buf (> 0), 0 at end of body,
 * -EAGAIN to pause the transfer until upstream_request_resume(), or another negative errno to
 * abort the request (completion error is that value). */
typedef ssize_t (*upstream_read_cb)(void *userdata, char *buf, size_t len);
/* Rewinds a streaming body for a retry. Returns 0 or negative errno (then no retry). */
typedef int (*upstream_rewind_cb)(void *userdata);
/* Streaming response sink, called only for 2xx responses (error bodies are always kept in
 * memory for the message). Returns len when all was consumed, -EAGAIN to pause (nothing was
 * consumed; the same bytes come again after upstream_request_resume()), or another negative
 * errno to abort the request with that error. */
typedef ssize_t (*upstream_write_cb)(void *userdata, const char *buf, size_t len);

typedef struct UpstreamCall {
        UpstreamMethod method;
        const char *url;                 /* absolute; copied */
        const char *const *headers;      /* NULL-terminated "Name: value" lines; copied */
        const void *body;                /* in-memory body (copied), or NULL */
        size_t body_len;
        upstream_read_cb body_read;      /* streaming body instead of `body` */
        upstream_rewind_cb body_rewind;  /* NULL: not rewindable, never retried once sent */
        int64_t body_size;               /* streaming body length, -1 unknown (chunked) */
        upstream_write_cb sink;          /* streaming 2xx response instead of memory */
        void *stream_userdata;           /* for body_read/body_rewind/sink */
        bool idempotent;                 /* safe to repeat after a network error */
        uint64_t timeout_ms;             /* deadline of the whole request; 0 = options default */
        uint64_t max_body_bytes;         /* 0 = options default; in-memory bodies only */
        const char *aws_sigv4;           /* "aws:amz:<region>:<service>" to sign the request
                                          * with SigV4 (sigv4.c), or NULL; the caller then
                                          * gives no Host, x-amz-date or Authorization line,
                                          * may give x-amz-content-sha256 (else the hash of
                                          * an in-memory body, UNSIGNED-PAYLOAD for a stream)
                                          * and every line it gives that is sent is signed */
        const char *userpwd;             /* "id:secret" for SigV4; copied, zeroed on free */
        const char *label;               /* statistics key, e.g. "GET /jobs"; copied;
                                          * NULL = method + path without query */
        bool own_connection;             /* HTTP/1.1 only: requests in flight at the same
                                          * time each get a TCP connection of their own
                                          * (kept alive and reused one after another), never
                                          * streams multiplexed over one HTTP/2 connection,
                                          * whose single TCP flow a per-connection shaper
                                          * or the latency would bound */
} UpstreamCall;

typedef struct UpstreamResponse {
        int error;                /* 0, or negative errno when no usable HTTP answer:
                                   * -ETIMEDOUT deadline, -ECONNREFUSED/-EHOSTUNREACH/
                                   * -ECONNRESET network, -EMSGSIZE body over the cap,
                                   * -EHOSTDOWN circuit open, -EPROTONOSUPPORT scheme refused,
                                   * -ENOMEM, or the error returned by a stream callback */
        const char *error_text;   /* curl's error buffer or a description; never NULL */
        long status;              /* HTTP status of the last attempt, 0 if none */
        const char *body;         /* NUL-terminated; "" when streamed or absent */
        size_t body_len;
        const char *content_type; /* NULL when absent */
        long long retry_after_ms; /* from Retry-After (seconds or HTTP date), -1 when absent */
        unsigned attempts;        /* HTTP attempts made */
        uint64_t elapsed_ms;
        const UpstreamRequest *request; /* for upstream_response_header() */
} UpstreamResponse;

/* Completion. The response and everything it points to are valid only during the call. */
typedef void (*upstream_done_cb)(const UpstreamResponse *resp, void *userdata);

/* Creates the client on `base`. Checks that libcurl has AsynchDNS (refuses with
 * -EOPNOTSUPP otherwise) and logs a warning when verify_ssl is off. `opts` NULL means all
 * defaults with TLS verification on (a zero-initialized UpstreamOptions has verify_ssl
 * false). Calls curl_global_init() the first time; curl_global_cleanup() is left to process
 * exit. Returns 0 or -errno. */
int upstream_new(struct event_base *base, const UpstreamOptions *opts, Upstream **ret);

/* Replaces options for requests started from now on (SIGHUP). Returns 0 or -errno. */
int upstream_set_options(Upstream *u, const UpstreamOptions *opts);

/* Cancels every request (callbacks are not called), tears the multi handle down in the
 * order libcurl requires, frees. May be called from a completion callback, not from a stream
 * callback. NULL-safe; returns NULL. */
Upstream *upstream_free(Upstream *u);

/* Checks a URL against the scheme policy: https always; http only for a loopback host
 * (127.0.0.0/8, ::1, localhost) unless allow_insecure_http. Returns 0, -EPROTONOSUPPORT
 * (scheme refused) or -EINVAL (not a URL). Used by config validation too. */
int upstream_check_url(const char *url, bool allow_insecure_http);

/* Starts a request. See the contract at the top. Refuses (-EINVAL) a body on GET/HEAD, both
 * `body` and `body_read`, header lines without a colon or with CR/LF; a URL refused by
 * upstream_check_url() gives its error. `ret` may be NULL. While the host's circuit is open
 * the request still starts and completes with -EHOSTDOWN from the loop. */
int upstream_request_start(Upstream *u, const UpstreamCall *call, upstream_done_cb cb,
                           void *userdata, UpstreamRequest **ret);

/* Cancels; the callback will not be called. NULL-safe. */
void upstream_request_cancel(UpstreamRequest *r);

/* Resumes a transfer paused by a stream callback returning -EAGAIN. NULL-safe; a no-op for a
 * request that is not transferring. */
void upstream_request_resume(UpstreamRequest *r);

/* A response header of the last attempt (case-insensitive name), or NULL. Valid during the
 * completion callback. */
const char *upstream_response_header(const UpstreamResponse *resp, const char *name);

/* The longest Location upstream_redirect_text() shows. */
#define UPSTREAM_LOCATION_SHOWN_MAX 256u

/* What to say of an answer in the 3xx range, which is never followed: "redirect not followed
 * (302 to https://host/path)", or "(302 without a Location)". The Location (the header's
 * value, may be NULL) is shown without credentials, query or fragment (they may hold tokens),
 * with every byte that is not printable ASCII percent-encoded, and cut to
 * UPSTREAM_LOCATION_SHOWN_MAX bytes ending in "...". Returns a malloc'd string, NULL on OOM. */
char *upstream_redirect_text(long status, const char *location);

/* Statistics as JSON: {"requests": {"<label>": {"<status or error name>": n}}, "retries":
 * {"network": n, "rate_limited": n}, "in_flight": n, "breakers": {"<host>": {"state":
 * "closed|open|half_open", "consecutive_failures": n, "opened": n}}}. New reference. */
json_object *upstream_stats_json(const Upstream *u);

/* upstream_stats_json()'s text, byte for byte, appended to t; `now` (now_usec()) tells an
 * open breaker past its cooldown. For daemon.status: no objects, the requests' text kept
 * while they do not change, and the whole block in memo (may be NULL) while none of its
 * figures changes. NULL u: null. */
void upstream_stats_text(const Upstream *u, JsonText *t, uint64_t now, JsonTextMemo *memo);

/* The breaker state of the host of `url`: "closed", "open" or "half_open". The key of the
 * last URL asked about is kept, so that asking again about it parses nothing. _at() takes the
 * time (now_usec()). */
const char *upstream_breaker_state(const Upstream *u, const char *url);
const char *upstream_breaker_state_at(const Upstream *u, const char *url, uint64_t now);

/* Number of requests started and not yet completed or cancelled. */
unsigned upstream_in_flight(const Upstream *u);
