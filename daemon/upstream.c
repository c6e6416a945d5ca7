/* SPDX-License-Identifier: MIT */
/*
 * Upstream HTTP client: libcurl's multi interface driven by the daemon's libevent loop.
 *
 * Wiring (style.md §3): libcurl tells us which sockets to watch (on_curl_socket(), one
 * event_new() per socket) and when to call it back (on_curl_timer(), one timer for the whole
 * multi handle). Our two libevent callbacks (on_socket_ready(), on_timer()) call
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
#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "build-config.h"
#include "clock.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"
#include "sigv4.h"
#include "proxy.h"
#include "upstream.h"

/* Response headers kept per attempt, and their total size: enough for any API answer, and a
 * bound on what a misbehaving server can make us store. Extra headers are ignored. */
#define UPSTREAM_HEADERS_MAX 128
#define UPSTREAM_HEADER_BYTES_MAX (64u * 1024u)

/* Header lines a caller may pass (ours are a handful). */
#define UPSTREAM_CALL_HEADERS_MAX 64

/* Distinct statistics labels; further labels are counted under "other" so that paths with
 * identifiers in them cannot grow the table without bound. */
#define UPSTREAM_STATS_LABELS_MAX 256
#define UPSTREAM_STATS_OTHER "other"

/* Hosts with a circuit breaker. Closed, idle breakers are evicted to make room. */
#define UPSTREAM_BREAKERS_MAX 64

/* Shortest wait after a 429, as the Python client does (max(1 s, retry_after)). */
#define UPSTREAM_RATE_LIMIT_MIN_MS 1000u

/* A curl timeout that fires this close to the deadline is the deadline. */
#define UPSTREAM_DEADLINE_SLACK_USEC (5u * USEC_PER_MSEC)

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
        unsigned in_flight;

        json_object *stats_requests; /* {"label": {"200": n, "timeout": n}} */
        uint64_t retries_network;
        uint64_t retries_rate_limited;
};

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

static void request_complete(UpstreamRequest *req, int error, const char *text);
static void request_next_attempt(UpstreamRequest *req);
static void reap_zombies(Upstream *u);

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);

/* Frees a string libcurl allocated, for _cleanup_. */
static void curl_freep(char **p) {
        curl_free(*p);
}

/* Milliseconds from a to b (0 when b is not after a), rounded up. */
static uint64_t usec_span_ms(uint64_t a, uint64_t b) {
        return b > a ? (b - a + USEC_PER_MSEC - 1) / USEC_PER_MSEC : 0;
}

/* a * 1000 without overflow. */
static uint64_t ms_to_usec(uint64_t ms) {
        return ms > UINT64_MAX / USEC_PER_MSEC ? UINT64_MAX : ms * USEC_PER_MSEC;
}

/* a + b without overflow. */
static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static const char *const method_table[_UPSTREAM_METHOD_MAX] = {
        [UPSTREAM_GET] = "GET",
        [UPSTREAM_HEAD] = "HEAD",
        [UPSTREAM_POST] = "POST",
        [UPSTREAM_PUT] = "PUT",
        [UPSTREAM_DELETE] = "DELETE",
};

/* The HTTP name of a method, or NULL. */
const char *upstream_method_to_string(UpstreamMethod m) {
        if (m < 0 || m >= _UPSTREAM_METHOD_MAX)
                return NULL;
        return method_table[m];
}

static const char *const breaker_state_table[_BREAKER_STATE_MAX] = {
        [BREAKER_CLOSED] = "closed",
        [BREAKER_OPEN] = "open",
        [BREAKER_HALF_OPEN] = "half_open",
};

/* The name of a breaker state. */
static const char *breaker_state_to_string(BreakerState s) {
        if (s < 0 || s >= _BREAKER_STATE_MAX)
                return NULL;
        return breaker_state_table[s];
}

/* ---- URLs ------------------------------------------------------------------------------ */

/* Whether a host (as CURLU returns it: IPv6 in brackets) is a loopback name or address. */
static bool host_is_loopback(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;
        char buf[INET6_ADDRSTRLEN + 2];
        size_t l;

        if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        l = strlen(host);
        if (l >= 2 && host[0] == '[' && host[l - 1] == ']' && l - 2 < sizeof(buf)) {
                memcpy(buf, host + 1, l - 2);
                buf[l - 2] = '\0';
                host = buf;
        }
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

/* Parses an absolute URL into a CURLU handle. */
static int url_parse(const char *url, CURLU **ret) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;

        if (isempty(url))
                return -EINVAL;
        h = curl_url();
        if (!h)
                return -ENOMEM;
        if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
                return -EINVAL;
        *ret = TAKE_PTR(h);
        return 0;
}

/* Checks a parsed URL against the scheme policy. */
static int url_policy(CURLU *h, bool allow_insecure_http) {
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL;

        if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || isempty(host))
                return -EINVAL;
        if (strcasecmp(scheme, "https") == 0)
                return 0;
        if (strcasecmp(scheme, "http") != 0)
                return -EPROTONOSUPPORT;
        if (allow_insecure_http || host_is_loopback(host))
                return 0;
        return -EPROTONOSUPPORT;
}

/* Checks a URL against the scheme policy. */
int upstream_check_url(const char *url, bool allow_insecure_http) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        int r;

        r = url_parse(url, &h);
        if (r < 0)
                return r;
        return url_policy(h, allow_insecure_http);
}

/* Derives from a parsed URL (which it strips) the log form of the URL (no credentials, query
 * or fragment), the default statistics label ("METHOD /path"; not when ret_label is NULL) and
 * the breaker key (scheme://host:port). */
static int url_describe(CURLU *h, UpstreamMethod method, char **ret_log, char **ret_label,
                        char **ret_key) {
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL,
                                   *clean = NULL;
        _cleanup_free_ char *label = NULL, *key = NULL;

        if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
            (ret_label && curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK))
                return -EINVAL;

        if (ret_label && asprintf(&label, "%s %s", upstream_method_to_string(method),
                                  isempty(path) ? "/" : path) < 0)
                return -ENOMEM;
        if (asprintf(&key, "%s://%s:%s", scheme, host, port) < 0)
                return -ENOMEM;
        for (char *p = key; *p; p++)
                *p = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);

        if (curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
            curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
            curl_url_set(h, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
            curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_URL, &clean, 0) != CURLUE_OK)
                return -ENOMEM;

        *ret_log = strdup(clean);
        if (!*ret_log)
                return -ENOMEM;
        if (ret_label)
                *ret_label = TAKE_PTR(label);
        *ret_key = TAKE_PTR(key);
        return 0;
}

/* ---- errors ---------------------------------------------------------------------------- */

/* Maps a libcurl result to a negative errno: the one place that does. Stream callback errors
 * and our body cap show up as write/read/abort codes, so the request's flags decide those. */
static int upstream_curl_error_to_errno(CURLcode c, const UpstreamRequest *req) {
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_WRITE_ERROR:
        case CURLE_READ_ERROR:
        case CURLE_ABORTED_BY_CALLBACK:
                if (req->stream_error < 0)
                        return req->stream_error;
                if (req->too_large)
                        return -EMSGSIZE;
                return c == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO;
        case CURLE_FILESIZE_EXCEEDED:
                return -EMSGSIZE;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
        case CURLE_PROXY:           /* a SOCKS proxy's handshake or answer */
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SEND_FAIL_REWIND:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_USE_SSL_FAILED:
                return -ECONNABORTED;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* Whether a libcurl result is a transient network failure: retried for idempotent requests
 * and counted by the circuit breaker. TLS handshake resets are; certificate errors are not. */
static bool curl_error_is_network(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_PROXY:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SSL_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

/* The statistics key of a failed request. */
static const char *error_stats_name(int error) {
        switch (-error) {
        case ETIMEDOUT:
                return "timeout";
        case ECONNREFUSED:
                return "refused";
        case EHOSTUNREACH:
                return "unreachable";
        case ECONNRESET:
                return "reset";
        case EMSGSIZE:
                return "too_large";
        case EHOSTDOWN:
                return "circuit_open";
        case ECONNABORTED:
                return "tls";
        case EPROTONOSUPPORT:
                return "protocol";
        case ENOMEM:
                return "no_memory";
        default:
                return "error";
        }
}

/* ---- statistics ------------------------------------------------------------------------ */

/* Adds one to stats_requests[label][key]. Statistics are best effort: allocation failures
 * are ignored. */
static void stats_count(Upstream *u, const char *label, const char *key) {
        json_object *per_label, *counter;

        if (!u->stats_requests)
                return;
        if (!json_object_object_get_ex(u->stats_requests, label, &per_label)) {
                if (json_object_object_length(u->stats_requests) >= UPSTREAM_STATS_LABELS_MAX) {
                        label = UPSTREAM_STATS_OTHER;
                        if (json_object_object_get_ex(u->stats_requests, label, &per_label))
                                goto found;
                }
                per_label = json_object_new_object();
                if (!per_label)
                        return;
                if (json_object_object_add(u->stats_requests, label, per_label) < 0) {
                        json_object_put(per_label);
                        return;
                }
        }
found:
        if (json_object_object_get_ex(per_label, key, &counter)) {
                (void) json_object_set_int64(counter, json_object_get_int64(counter) + 1);
                return;
        }
        counter = json_object_new_int64(1);
        if (counter && json_object_object_add(per_label, key, counter) < 0)
                json_object_put(counter);
}

/* ---- circuit breakers ------------------------------------------------------------------ */

/* The state to report: an open breaker past its cooldown admits a trial, so it is half open. */
static BreakerState breaker_effective_state(const Upstream *u, const Breaker *b, uint64_t now) {
        if (b->state == BREAKER_OPEN &&
            now >= add_sat(b->opened_usec, ms_to_usec(u->opts.breaker_cooldown_ms)))
                return BREAKER_HALF_OPEN;
        return b->state;
}

/* Frees a breaker. */
static Breaker *breaker_free(Breaker *b) {
        if (!b)
                return NULL;
        free(b->key);
        free(b);
        return NULL;
}

/* Finds the breaker of a key. */
static Breaker *breaker_find(const Upstream *u, const char *key) {
        Breaker *b;

        TAILQ_FOREACH(b, &u->breakers, link)
                if (streq(b->key, key))
                        return b;
        return NULL;
}

/* Finds or creates the breaker of a key; NULL when the table is full of busy breakers or
 * memory is short (the request then runs without one). */
static Breaker *breaker_get(Upstream *u, const char *key) {
        Breaker *b;

        b = breaker_find(u, key);
        if (b)
                return b;
        if (u->n_breakers >= UPSTREAM_BREAKERS_MAX) {
                Breaker *victim = NULL;

                TAILQ_FOREACH(b, &u->breakers, link)
                        if (b->users == 0 && b->state == BREAKER_CLOSED) {
                                victim = b;
                                break;
                        }
                if (!victim)
                        return NULL;
                TAILQ_REMOVE(&u->breakers, victim, link);
                u->n_breakers--;
                breaker_free(victim);
        }
        b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->key = strdup(key);
        if (!b->key)
                return breaker_free(b);
        TAILQ_INSERT_TAIL(&u->breakers, b, link);
        u->n_breakers++;
        return b;
}

/* Decides whether a new request may go to its host. Returns 0, or -EHOSTDOWN with a
 * description in *ret_text. */
static int breaker_admit(Upstream *u, UpstreamRequest *req, char **ret_text) {
        Breaker *b = req->breaker;
        uint64_t now = now_usec(), reopen;

        if (!b || b->state == BREAKER_CLOSED)
                return 0;
        if (b->state == BREAKER_OPEN) {
                reopen = add_sat(b->opened_usec, ms_to_usec(u->opts.breaker_cooldown_ms));
                if (now < reopen) {
                        if (asprintf(ret_text,
                                     "circuit open for %s after %u consecutive network "
                                     "failures, retrying in %" PRIu64 " s",
                                     b->key, b->consecutive_failures,
                                     (usec_span_ms(now, reopen) + 999) / 1000) < 0)
                                *ret_text = NULL;
                        return -EHOSTDOWN;
                }
                b->state = BREAKER_HALF_OPEN;
                b->trial = NULL;
                log_warning("Upstream %s circuit half-open: letting one trial request "
                            "through.", b->key);
        }
        if (b->trial) {
                if (asprintf(ret_text, "circuit half-open for %s, a trial request is in flight",
                             b->key) < 0)
                        *ret_text = NULL;
                return -EHOSTDOWN;
        }
        b->trial = req;
        req->breaker_trial = true;
        return 0;
}

/* Records what a request learned about its host. */
static void breaker_record(Upstream *u, UpstreamRequest *req, BreakerOutcome outcome) {
        Breaker *b = req->breaker;

        if (!b)
                return;
        if (b->trial == req)
                b->trial = NULL;
        req->breaker_trial = false;

        switch (outcome) {
        case BREAKER_SUCCESS:
                b->consecutive_failures = 0;
                if (b->state != BREAKER_CLOSED) {
                        b->state = BREAKER_CLOSED;
                        log_warning("Upstream %s circuit closed: the host answers again.",
                                    b->key);
                }
                break;
        case BREAKER_FAILURE:
                if (b->consecutive_failures < UINT_MAX)
                        b->consecutive_failures++;
                if (b->state == BREAKER_HALF_OPEN ||
                    (b->state == BREAKER_CLOSED &&
                     b->consecutive_failures >= u->opts.breaker_threshold)) {
                        b->state = BREAKER_OPEN;
                        b->opened++;
                        b->opened_usec = now_usec();
                        log_warning("Upstream %s circuit open after %u consecutive network "
                                    "failures, retrying in %" PRIu64 " ms.",
                                    b->key, b->consecutive_failures,
                                    u->opts.breaker_cooldown_ms);
                }
                break;
        case BREAKER_NEUTRAL:
        default:
                break;
        }
}

/* Drops a request's reference to its breaker, releasing the trial slot if it held it. */
static void breaker_release(UpstreamRequest *req) {
        Breaker *b = req->breaker;

        if (!b)
                return;
        if (b->trial == req)
                b->trial = NULL;
        assert(b->users > 0);
        b->users--;
        req->breaker = NULL;
        req->breaker_trial = false;
}

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

/* Applies the connection limits to the multi handle. */
static void upstream_apply_multi_options(Upstream *u) {
        (void) curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                                 (long) u->opts.max_total_connections);
        (void) curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                                 (long) u->opts.max_host_connections);
}

/* Logs the verify_ssl: false warning. */
static void warn_insecure(const UpstreamOptions *o) {
        if (!o->verify_ssl)
                log_warning("TLS certificate verification is DISABLED for upstream requests "
                            "(verify_ssl: false): anyone on the network path can impersonate "
                            "the server and read the API key.");
}

/* ---- the libcurl <-> libevent wiring (style.md §3) -------------------------------------- */

/* libevent: a watched socket is ready; hand it to libcurl, then harvest. */
static void on_socket_ready(evutil_socket_t fd, short what, void *userdata);
/* libevent: libcurl's timer expired. */
static void on_timer(evutil_socket_t fd, short what, void *userdata);

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
static int upstream_multi_create(Upstream *u) {
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
static void upstream_multi_destroy(Upstream *u) {
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

/* Appends a copy of line to *l; false on OOM (*l is left as it was). */
static bool curl_slist_append_checked(struct curl_slist **l, const char *line) {
        struct curl_slist *t = curl_slist_append(*l, line);

        if (!t)
                return false;
        *l = t;
        return true;
}

/* Frees a header list whose lines may hold secrets. */
static void slist_erase_and_free(struct curl_slist *l) {
        for (struct curl_slist *i = l; i; i = i->next)
                explicit_bzero_safe(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

/* Frees a request and everything it owns. Never touches the Upstream: a request being
 * delivered is detached and may outlive it. */
static UpstreamRequest *request_free(UpstreamRequest *req) {
        if (!req)
                return NULL;
        assert(!req->in_multi);
        if (req->easy)
                curl_easy_cleanup(req->easy);
        if (req->timer)
                event_free(req->timer);
        slist_erase_and_free(req->headers);
        slist_erase_and_free(req->attempt_headers);
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
static void request_detach(UpstreamRequest *req) {
        Upstream *u = req->upstream;

        TAILQ_REMOVE(&u->requests, req, link);
        if (req->state == REQ_CANCELLED) {
                assert(u->zombies > 0);
                u->zombies--;
        } else {
                assert(u->in_flight > 0);
                u->in_flight--;
        }
        breaker_release(req);
        req->upstream = NULL;
}

/* Removes a request from the multi (if there) and frees it; the callback is not called. */
static void request_destroy(UpstreamRequest *req) {
        Upstream *u = req->upstream;

        if (req->in_multi) {
                (void) curl_multi_remove_handle(u->multi, req->easy);
                req->in_multi = false;
        }
        request_detach(req);
        request_free(req);
}

/* Frees the requests cancelled while libcurl was on the stack. */
static void reap_zombies(Upstream *u) {
        UpstreamRequest *req, *next;

        if (u->zombies == 0 || u->callback_depth > 0)
                return;
        for (req = TAILQ_FIRST(&u->requests); req; req = next) {
                next = TAILQ_NEXT(req, link);
                if (req->state == REQ_CANCELLED)
                        request_destroy(req);
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
                        request_destroy(req);
                else {
                        breaker_record(u, req, BREAKER_NEUTRAL);
                        request_complete(req, -EIO, text ?: "libcurl multi handle failed");
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
                        request_destroy(req);
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
static void on_timer(evutil_socket_t fd, short what, void *userdata) {
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

/* ---- libcurl callbacks of one request --------------------------------------------------- */

/* Drops the response headers collected so far. */
static void response_headers_clear(UpstreamRequest *req) {
        for (size_t i = 0; i < req->n_resp_headers; i++)
                free(req->resp_headers[i]);
        req->n_resp_headers = 0;
        req->resp_header_bytes = 0;
}

/* libcurl: one response header line. Kept (bounded) for upstream_response_header(). */
static size_t on_curl_header(char *data, size_t size, size_t nitems, void *userdata) {
        UpstreamRequest *req = userdata;
        size_t n = size * nitems, nl, vl;
        const char *colon, *name, *value, *end = data + n;
        char *entry;

        /* A status line starts a new response: interim 1xx answers come first. */
        if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                response_headers_clear(req);
                return n;
        }
        if (req->n_resp_headers >= UPSTREAM_HEADERS_MAX ||
            req->resp_header_bytes + n > UPSTREAM_HEADER_BYTES_MAX)
                return n;
        colon = memchr(data, ':', n);
        if (!colon || colon == data)
                return n;

        name = data;
        nl = (size_t) (colon - data);
        while (nl > 0 && (name[nl - 1] == ' ' || name[nl - 1] == '\t'))
                nl--;
        value = colon + 1;
        while (value < end && (*value == ' ' || *value == '\t'))
                value++;
        vl = (size_t) (end - value);
        while (vl > 0 && (value[vl - 1] == '\r' || value[vl - 1] == '\n' ||
                          value[vl - 1] == ' ' || value[vl - 1] == '\t'))
                vl--;

        if (!req->resp_headers) {
                req->resp_headers = calloc(UPSTREAM_HEADERS_MAX, sizeof(char *));
                if (!req->resp_headers)
                        return n; /* best effort */
        }
        entry = malloc(nl + vl + 2);
        if (!entry)
                return n;
        memcpy(entry, name, nl);
        entry[nl] = '\0';
        memcpy(entry + nl + 1, value, vl);
        entry[nl + 1 + vl] = '\0';
        req->resp_headers[req->n_resp_headers++] = entry;
        req->resp_header_bytes += n;
        return n;
}

/* Looks a collected response header up (case-insensitive name). */
static const char *request_header(const UpstreamRequest *req, const char *name) {
        for (size_t i = 0; i < req->n_resp_headers; i++)
                if (strcasecmp(req->resp_headers[i], name) == 0)
                        return req->resp_headers[i] + strlen(req->resp_headers[i]) + 1;
        return NULL;
}

/* Appends to the in-memory response body, enforcing the cap. */
static size_t response_append(UpstreamRequest *req, const char *data, size_t n) {
        if (n > req->max_body || req->resp_len > req->max_body - n) {
                req->too_large = true;
                return CURL_WRITEFUNC_ERROR;
        }
        if (req->resp_len + n + 1 > req->resp_alloc) {
                size_t want = MAX(req->resp_len + n + 1, MAX(req->resp_alloc * 2, (size_t) 4096));
                char *p;

                want = MIN(want, (size_t) req->max_body + 1);
                p = realloc(req->resp_body, want);
                if (!p) {
                        req->stream_error = -ENOMEM;
                        return CURL_WRITEFUNC_ERROR;
                }
                req->resp_body = p;
                req->resp_alloc = want;
        }
        memcpy(req->resp_body + req->resp_len, data, n);
        req->resp_len += n;
        req->resp_body[req->resp_len] = '\0';
        return n;
}

/* libcurl: response body bytes. 2xx bodies go to the sink when there is one; everything
 * else is kept in memory (error bodies carry the message). */
static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *userdata) {
        UpstreamRequest *req = userdata;
        size_t n = size * nmemb;
        long status = 0;
        ssize_t k;

        if (req->state != REQ_ATTEMPT)
                return CURL_WRITEFUNC_ERROR; /* cancelled meanwhile: stop the transfer */
        if (n == 0)
                return 0;

        (void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
        if (!req->sink || status < 200 || status > 299)
                return response_append(req, data, n);

        k = req->sink(req->stream_userdata, data, n);
        if (req->state != REQ_ATTEMPT)
                return CURL_WRITEFUNC_ERROR;
        if (k == -EAGAIN) {
                /* Nothing consumed: libcurl keeps the bytes and delivers them again. */
                req->paused = true;
                return CURL_WRITEFUNC_PAUSE;
        }
        if (k < 0) {
                req->stream_error = (int) k;
                return CURL_WRITEFUNC_ERROR;
        }
        if ((size_t) k != n) {
                req->stream_error = -EIO;
                return CURL_WRITEFUNC_ERROR;
        }
        return n;
}

/* libcurl: request body bytes, from our copy or from the caller's body_read. */
static size_t on_curl_read(char *buf, size_t size, size_t nitems, void *userdata) {
        UpstreamRequest *req = userdata;
        size_t n = size * nitems;
        ssize_t k;

        if (req->state != REQ_ATTEMPT)
                return CURL_READFUNC_ABORT;

        if (!req->body_read) {
                k = (ssize_t) MIN(n, req->body_len - req->body_off);
                if (k > 0)
                        memcpy(buf, req->body + req->body_off, (size_t) k);
                req->body_off += (size_t) k;
                return (size_t) k;
        }

        k = req->body_read(req->stream_userdata, buf, n);
        if (req->state != REQ_ATTEMPT)
                return CURL_READFUNC_ABORT;
        if (k == -EAGAIN) {
                req->paused = true;
                return CURL_READFUNC_PAUSE;
        }
        if (k < 0) {
                req->stream_error = (int) k;
                return CURL_READFUNC_ABORT;
        }
        if ((size_t) k > n) {
                req->stream_error = -EIO;
                return CURL_READFUNC_ABORT;
        }
        req->body_bytes_read += (uint64_t) k;
        return (size_t) k;
}

/* libcurl: rewind the request body (libcurl resends on a reused connection that died). */
static int on_curl_seek(void *userdata, curl_off_t offset, int origin) {
        UpstreamRequest *req = userdata;
        int r;

        if (offset != 0 || origin != SEEK_SET)
                return CURL_SEEKFUNC_CANTSEEK;
        if (!req->body_read) {
                req->body_off = 0;
                return CURL_SEEKFUNC_OK;
        }
        if (!req->body_rewind)
                return CURL_SEEKFUNC_CANTSEEK;
        r = req->body_rewind(req->stream_userdata);
        if (r < 0 || req->state != REQ_ATTEMPT)
                return CURL_SEEKFUNC_FAIL;
        return CURL_SEEKFUNC_OK;
}

/* ---- attempts, retries, completion ------------------------------------------------------ */

/* Arms the request's timer. */
static void request_arm(UpstreamRequest *req, uint64_t usec) {
        struct timeval tv = usec_to_timeval(usec);

        /* evtimer_add only fails on invalid arguments; nothing to recover here. */
        (void) evtimer_add(req->timer, &tv);
}

/* Sets the result and schedules delivery from the request timer. */
static void request_complete(UpstreamRequest *req, int error, const char *text) {
        char *copy = text ? strdup(text) : NULL; /* text may be req->error_text */

        req->error = error;
        free(req->error_text);
        req->error_text = copy;
        req->state = REQ_COMPLETING;
        request_arm(req, 0);
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
        return t > now ? (long long) (t - now) * 1000 : 0;
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
        request_complete(req, -ETIMEDOUT, text ?: "deadline exceeded");
}

/* Waits before the next attempt, never past the deadline: a wait that reaches it ends the
 * request with -ETIMEDOUT when the timer fires. */
static void request_wait(UpstreamRequest *req, uint64_t wait_ms) {
        uint64_t now = now_usec();
        uint64_t until = MIN(add_sat(now, ms_to_usec(wait_ms)), req->deadline_usec);

        req->state = REQ_WAITING;
        request_arm(req, until > now ? until - now : 0);
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

        ra = parse_retry_after(request_header(req, "Retry-After"));
        if (ra < 0)
                ra = body_retry_after(req);
        wait_ms = MAX((uint64_t) MAX(ra, 0LL), (uint64_t) UPSTREAM_RATE_LIMIT_MIN_MS);
        req->retry_after_ms = (long long) MIN(wait_ms, (uint64_t) LLONG_MAX);

        if (req->rate_limit_retries >= req->max_rate_limit_retries ||
            wait_ms > req->max_retry_after_ms ||
            add_sat(add_sat(now, ms_to_usec(wait_ms)), UPSTREAM_DEADLINE_SLACK_USEC) >=
                    req->deadline_usec ||
            !request_can_repeat(req)) {
                request_complete(req, 0, NULL);
                return;
        }
        r = request_rewind(req);
        if (req->state == REQ_CANCELLED)
                return;
        if (r < 0) {
                request_complete(req, 0, NULL);
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
                breaker_record(u, req, BREAKER_SUCCESS);
                if (status == 429) {
                        attempt_rate_limited(req);
                        return;
                }
                req->retry_after_ms = parse_retry_after(request_header(req, "Retry-After"));
                request_complete(req, 0, NULL);
                return;
        }

        r = upstream_curl_error_to_errno(result, req);
        network = curl_error_is_network(result) && req->stream_error == 0;
        log_debug("%s %s: attempt %u failed after %" PRIu64 " ms: %s",
                  upstream_method_to_string(req->method), req->url_log, req->attempts,
                  usec_span_ms(req->attempt_start_usec, now), attempt_error_text(req, result));

        /* Anything the host answered over HTTP, a body over the cap included, is no reason
         * to distrust it. */
        if (!network) {
                _cleanup_free_ char *text = NULL;

                breaker_record(u, req, status > 0 ? BREAKER_SUCCESS : BREAKER_NEUTRAL);
                if (req->stream_error < 0) {
                        if (asprintf(&text, "transfer aborted: %s", strerror(-r)) < 0)
                                text = NULL;
                } else if (r == -EMSGSIZE) {
                        if (asprintf(&text, "response body exceeds the limit of %" PRIu64
                                     " bytes", req->max_body) < 0)
                                text = NULL;
                }
                request_complete(req, r, text ?: attempt_error_text(req, result));
                return;
        }

        /* The half-open trial decides alone and at once: no retries. */
        if (!req->idempotent || req->breaker_trial ||
            req->network_attempts >= req->max_network_attempts || !request_can_repeat(req)) {
                breaker_record(u, req, BREAKER_FAILURE);
                if (result == CURLE_OPERATION_TIMEDOUT && request_deadline_reached(req, now))
                        request_timed_out(req, NULL);
                else
                        request_complete(req, r, attempt_error_text(req, result));
                return;
        }
        if (request_deadline_reached(req, now)) {
                breaker_record(u, req, BREAKER_FAILURE);
                request_timed_out(req, result == CURLE_OPERATION_TIMEDOUT ?
                                  NULL : attempt_error_text(req, result));
                return;
        }

        r = request_rewind(req);
        if (req->state == REQ_CANCELLED)
                return;
        if (r < 0) {
                breaker_record(u, req, BREAKER_FAILURE);
                request_complete(req, upstream_curl_error_to_errno(result, req),
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
                if (!curl_slist_append_checked(&list, i->data))
                        goto oom;
        if (!curl_slist_append_checked(&list, host) ||
            !curl_slist_append_checked(&list, date_line) ||
            !curl_slist_append_checked(&list, auth_line))
                goto oom;
        explicit_bzero_safe(auth_line, strlen(auth_line));
        if (curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, list)) {
                slist_erase_and_free(list);
                return -EINVAL;
        }
        slist_erase_and_free(req->attempt_headers);
        req->attempt_headers = list;
        return 0;
oom:
        explicit_bzero_safe(auth_line, strlen(auth_line));
        slist_erase_and_free(list);
        return -ENOMEM;
}

/* Resets per-attempt state, sets the attempt's timeouts and adds the easy handle. */
static int attempt_start(UpstreamRequest *req) {
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
        response_headers_clear(req);
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
                r = attempt_start(req);
        if (r == -ETIMEDOUT) {
                _cleanup_free_ char *last = TAKE_PTR(req->error_text);

                /* the deadline passed in a backoff after network failures, or (rarely) a
                 * rate-limit wait */
                breaker_record(req->upstream, req,
                               req->status > 0 ? BREAKER_NEUTRAL : BREAKER_FAILURE);
                request_timed_out(req, last);
        } else if (r < 0) {
                breaker_record(req->upstream, req, BREAKER_NEUTRAL);
                request_complete(req, r, "failed to start the transfer");
        }
}

/* Unpauses a transfer paused by a stream callback, then kicks the multi from the loop. */
static void request_unpause(UpstreamRequest *req) {
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
                snprintf(key, sizeof(key), "%s", error_stats_name(req->error));
        else
                snprintf(key, sizeof(key), "%ld", req->status);
        stats_count(u, req->label, key);

        /* Detached from here on: the callback may do anything, upstream_free() included. */
        request_detach(req);
        req->state = REQ_DELIVERING;

        resp = (UpstreamResponse) {
                .error = req->error,
                .error_text = req->error_text ?: "",
                .status = req->status,
                .body = req->resp_body && req->error == 0 ? req->resp_body : "",
                .body_len = req->error == 0 ? req->resp_len : 0,
                .content_type = request_header(req, "Content-Type"),
                .retry_after_ms = req->retry_after_ms,
                .attempts = req->attempts,
                .elapsed_ms = usec_span_ms(req->start_usec, now_usec()),
                .request = req,
        };
        if (cb)
                cb(&resp, userdata);
        request_free(req);
}

/* libevent: the request's own timer (see the state diagram at the top). */
static void on_request_timer(evutil_socket_t fd, short what, void *userdata) {
        UpstreamRequest *req = userdata;

        (void) fd;
        (void) what;

        switch (req->state) {
        case REQ_PENDING:
        case REQ_WAITING:
                request_next_attempt(req);
                break;
        case REQ_ATTEMPT:
                request_unpause(req); /* a resume deferred out of a libcurl callback */
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

/* Builds the header list: the caller's lines, validated, plus our defaults. */
static int request_build_headers(UpstreamRequest *req, const char *const *lines,
                                 bool post_like) {
        bool has_expect = false, has_content_type = false;
        size_t n = 0;

        for (const char *const *l = lines; l && *l; l++, n++) {
                const char *colon = strchr(*l, ':');
                struct curl_slist *t;

                if (n >= UPSTREAM_CALL_HEADERS_MAX || !colon || colon == *l ||
                    strpbrk(*l, "\r\n"))
                        return -EINVAL;
                if (strncasecmp(*l, "Expect:", STRLEN("Expect:")) == 0)
                        has_expect = true;
                if (strncasecmp(*l, "Content-Type:", STRLEN("Content-Type:")) == 0)
                        has_content_type = true;
                /* Signed requests get these from us, computed over what is sent. */
                if (req->sign && (strncasecmp(*l, "Host:", STRLEN("Host:")) == 0 ||
                                  strncasecmp(*l, "x-amz-date:", STRLEN("x-amz-date:")) == 0 ||
                                  strncasecmp(*l, "Authorization:",
                                              STRLEN("Authorization:")) == 0))
                        return -EINVAL;
                if (req->sign && strncasecmp(*l, "x-amz-content-sha256:",
                                             STRLEN("x-amz-content-sha256:")) == 0) {
                        const char *v = *l + STRLEN("x-amz-content-sha256:");

                        v += strspn(v, " \t");
                        free(req->payload_hash);
                        req->payload_hash = strdup(v);
                        if (!req->payload_hash)
                                return -ENOMEM;
                }
                t = curl_slist_append(req->headers, *l);
                if (!t)
                        return -ENOMEM;
                req->headers = t;
        }

        /* No "Expect: 100-continue", for any body size: the Avatar API and the storage
         * endpoint authorize before the body matters, so waiting for 100 (up to a second
         * when a proxy or server does not send one) buys nothing, and it makes "was any of
         * the body sent?" harder to answer for retries. */
        if (req->has_body && !has_expect) {
                struct curl_slist *t = curl_slist_append(req->headers, "Expect:");
                if (!t)
                        return -ENOMEM;
                req->headers = t;
        }
        /* libcurl labels POST bodies as form data unless told otherwise; we do not guess. */
        if (post_like && !has_content_type) {
                struct curl_slist *t = curl_slist_append(req->headers, "Content-Type:");
                if (!t)
                        return -ENOMEM;
                req->headers = t;
        }
        /* S3 wants the payload hash in a header of its own: the body's when we hold it,
         * else (streams, hashed only as they go) UNSIGNED-PAYLOAD. */
        if (req->sign && !req->payload_hash) {
                _cleanup_free_ char *line = NULL;
                char hex[SHA256_HEX_SIZE];

                if (req->body_read)
                        strcpy(hex, SIGV4_UNSIGNED_PAYLOAD);
                else {
                        uint8_t digest[SHA256_DIGEST_SIZE];

                        sha256(req->body ?: "", req->body_len, digest);
                        sha256_hex(digest, hex);
                }
                req->payload_hash = strdup(hex);
                if (!req->payload_hash ||
                    asprintf(&line, "x-amz-content-sha256: %s", hex) < 0 ||
                    !curl_slist_append_checked(&req->headers, line))
                        return -ENOMEM;
        }
        return 0;
}

/* Configures the easy handle; per-attempt timeouts are set by attempt_start(). */
static int request_setup_easy(Upstream *u, UpstreamRequest *req, const UpstreamCall *call) {
        const char *protocols;
        bool post_like = false;
        CURL *e;
        int r;

        e = req->easy = curl_easy_init();
        if (!e)
                return -ENOMEM;

        /* The URL passed the scheme policy: plain http only when it is allowed. */
        protocols = strncasecmp(req->url, "https:", 6) == 0 ? "https" : "http,https";

        switch (req->method) {
        case UPSTREAM_GET:
                break;
        case UPSTREAM_HEAD:
                if (curl_easy_setopt(e, CURLOPT_NOBODY, 1L))
                        return -EINVAL;
                break;
        case UPSTREAM_PUT:
                if (curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) ||
                    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                                     (curl_off_t) (req->body_read ? req->body_size
                                                                  : (int64_t) req->body_len)))
                        return -EINVAL;
                break;
        case UPSTREAM_POST:
        case UPSTREAM_DELETE:
                if (req->method == UPSTREAM_DELETE &&
                    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE"))
                        return -EINVAL;
                if (req->method == UPSTREAM_DELETE && !req->has_body)
                        break;
                post_like = true;
                if (req->body_read) {
                        /* A size of -1 makes libcurl send the body chunked. */
                        if (curl_easy_setopt(e, CURLOPT_POST, 1L) ||
                            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                             (curl_off_t) req->body_size))
                                return -EINVAL;
                } else {
                        /* Our own copy outlives the handle; an empty POST still sends
                         * Content-Length: 0. */
                        if (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                             (curl_off_t) req->body_len) ||
                            curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ?: ""))
                                return -EINVAL;
                }
                break;
        default:
                return -EINVAL;
        }

        if (req->body_read || req->method == UPSTREAM_PUT) {
                if (curl_easy_setopt(e, CURLOPT_READFUNCTION, on_curl_read) ||
                    curl_easy_setopt(e, CURLOPT_READDATA, req) ||
                    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_curl_seek) ||
                    curl_easy_setopt(e, CURLOPT_SEEKDATA, req))
                        return -EINVAL;
        }

        r = request_build_headers(req, call->headers, post_like);
        if (r < 0)
                return r;

        if (curl_easy_setopt(e, CURLOPT_URL, req->url) ||
            curl_easy_setopt(e, CURLOPT_PRIVATE, (void *) req) ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf) ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols) ||
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, protocols) ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) ||
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS) ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, u->opts.verify_ssl ? 1L : 0L) ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, u->opts.verify_ssl ? 2L : 0L) ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, u->opts.user_agent) ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header) ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, req) ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write) ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, req))
                return -EINVAL;

        if (u->opts.ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, u->opts.ca_file))
                return -EINVAL;
        /* The proxy is ours to choose (request_new): an explicit "" keeps libcurl from reading
         * the environment's *_proxy, an empty no_proxy its no_proxy. An https proxy is
         * verified as the server is. */
        if (curl_easy_setopt(e, CURLOPT_PROXY, req->proxy ?: "") ||
            curl_easy_setopt(e, CURLOPT_NOPROXY, ""))
                return -EINVAL;
        if (req->proxy &&
            (curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, u->opts.verify_ssl ? 1L : 0L) ||
             curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, u->opts.verify_ssl ? 2L : 0L) ||
             (u->opts.ca_file && curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, u->opts.ca_file))))
                return -EINVAL;
        /* libcurl silently resends a request once when the kept-alive connection it reused
         * turns out to be closed. For a request that is not safe to repeat (job creation,
         * bulk deletion, a new API key) the server may already have acted on the first copy:
         * such requests always get a connection of their own, so nothing is sent twice. */
        if (!req->idempotent && (req->method == UPSTREAM_POST || req->method == UPSTREAM_PUT) &&
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L))
                return -EINVAL;
        /* Over TLS, wait for a connection being set up rather than open another: ALPN
         * settles HTTP/2 during the handshake and the request then shares it. Never for
         * plain http, where libcurl could only learn the version from the first response
         * and would queue behind a slow one. */
        if (streq(protocols, "https") && curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L))
                return -EINVAL;
        /* With a sink the 2xx body is not ours to cap; error bodies are capped by the write
         * callback either way. A HEAD answer has no body: its Content-Length describes the
         * object and must not trip the cap. */
        if (!req->sink && req->method != UPSTREAM_HEAD &&
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) req->max_body))
                return -EINVAL;
        return 0;
}

/* Takes what signing needs from the call's "aws:amz:<region>:<service>" and from the URL
 * (before url_describe() strips its query): the Host line we will send ourselves, so that the
 * host signed is the host sent, and the path and query as libcurl sends them. */
static int request_sign_setup(UpstreamRequest *req, const char *provider, CURLU *url) {
        _cleanup_(curl_freep) char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
        const char *p = startswith(provider, "aws:amz:"), *colon;
        CURLUcode c;

        colon = p ? strchr(p, ':') : NULL;
        if (!colon || colon == p || isempty(colon + 1) || strchr(colon + 1, ':'))
                return -EINVAL;
        req->sign = true;
        req->sign_region = strndup(p, (size_t) (colon - p));
        req->sign_service = strdup(colon + 1);
        if (!req->sign_region || !req->sign_service)
                return -ENOMEM;

        if (curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(url, CURLUPART_PATH, &path, 0) != CURLUE_OK)
                return -EINVAL;
        /* The port only when the URL names one that is not the scheme's own, as libcurl
         * itself writes Host. */
        c = curl_url_get(url, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT);
        if (c != CURLUE_OK && c != CURLUE_NO_PORT)
                return -EINVAL;
        c = curl_url_get(url, CURLUPART_QUERY, &query, 0);
        if (c != CURLUE_OK && c != CURLUE_NO_QUERY)
                return -EINVAL;
        if (asprintf(&req->sign_host, "%s%s%s", host, port ? ":" : "", port ?: "") < 0) {
                req->sign_host = NULL;
                return -ENOMEM;
        }
        req->sign_path = strdup(path);
        req->sign_query = strdup(query ?: "");
        if (!req->sign_path || !req->sign_query)
                return -ENOMEM;
        return 0;
}

/* Copies the call, whose URL parsed into `url` and passed the scheme policy, into a new
 * request. */
static int request_new(Upstream *u, const UpstreamCall *call, CURLU *url, UpstreamRequest **ret) {
        _cleanup_free_ char *key = NULL;
        UpstreamRequest *req;
        int r;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        req->upstream = u;
        req->state = REQ_PENDING;
        req->method = call->method;
        req->body_read = call->body_read;
        req->body_rewind = call->body_rewind;
        req->body_size = call->body_read ? (call->body_size < 0 ? -1 : call->body_size) : 0;
        req->sink = call->sink;
        req->stream_userdata = call->stream_userdata;
        req->idempotent = call->idempotent;
        req->retry_after_ms = -1;
        req->has_body = call->body || call->body_len > 0 || call->body_read;

        req->start_usec = now_usec();
        req->timeout_ms = call->timeout_ms ?: u->opts.request_timeout_ms;
        req->deadline_usec = add_sat(req->start_usec, ms_to_usec(req->timeout_ms));
        req->max_body = call->max_body_bytes ?: u->opts.max_body_bytes;
        req->max_body = MIN(req->max_body, (uint64_t) SIZE_MAX / 2);
        req->connect_timeout_ms = u->opts.connect_timeout_ms;
        req->max_network_attempts = u->opts.max_network_attempts;
        req->retry_base_ms = u->opts.retry_base_ms;
        req->retry_max_ms = u->opts.retry_max_ms;
        req->max_rate_limit_retries = u->opts.max_rate_limit_retries;
        req->max_retry_after_ms = u->opts.max_retry_after_ms;

        *ret = req; /* freed by the caller on failure, from here on */

        req->timer = evtimer_new(u->base, on_request_timer, req);
        req->url = strdup(call->url);
        if (!req->timer || !req->url)
                return -ENOMEM;
        if (call->aws_sigv4) {
                r = request_sign_setup(req, call->aws_sigv4, url);
                if (r < 0)
                        return r;
        }
        r = url_describe(url, call->method, &req->url_log, call->label ? NULL : &req->label, &key);
        if (r < 0)
                return r;
        if (call->label) {
                req->label = strdup(call->label);
                if (!req->label)
                        return -ENOMEM;
        }
        if (call->body_len > 0 || call->body) {
                req->body = malloc(call->body_len + 1);
                if (!req->body)
                        return -ENOMEM;
                if (call->body_len > 0)
                        memcpy(req->body, call->body, call->body_len);
                req->body[call->body_len] = '\0';
                req->body_len = call->body_len;
        }
        if (call->userpwd) {
                req->userpwd = strdup(call->userpwd);
                if (!req->userpwd)
                        return -ENOMEM;
        }
        {
                const char *proxy;

                r = proxy_pick_url(u->opts.http_proxy, u->opts.https_proxy, u->opts.no_proxy,
                                   call->url, &proxy);
                if (r < 0)
                        return r;
                if (proxy) {
                        req->proxy = strdup(proxy);
                        req->proxy_log = proxy_mask(proxy);
                        if (!req->proxy || !req->proxy_log)
                                return -ENOMEM;
                }
        }

        r = request_setup_easy(u, req, call);
        if (r < 0)
                return r;

        req->breaker = breaker_get(u, key);
        if (req->breaker)
                req->breaker->users++;
        return 0;
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
        u->timer = evtimer_new(base, on_timer, u);
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
                request_destroy(TAILQ_FIRST(&u->requests));
        /* 2. curl_multi_cleanup (may call on_curl_socket), our sockets, the timer's arming */
        upstream_multi_destroy(u);
        /* 3. the timer event; the event base belongs to the caller */
        if (u->timer)
                event_free(u->timer);

        while (!TAILQ_EMPTY(&u->breakers)) {
                Breaker *b = TAILQ_FIRST(&u->breakers);

                TAILQ_REMOVE(&u->breakers, b, link);
                breaker_free(b);
        }
        json_object_put(u->stats_requests);
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

        r = url_parse(call->url, &url);
        if (r < 0)
                return r;
        r = url_policy(url, u->opts.allow_insecure_http);
        if (r < 0)
                return r;

        r = request_new(u, call, url, &req);
        if (r < 0) {
                request_free(req);
                return r;
        }
        req->cb = cb;
        req->userdata = userdata;
        TAILQ_INSERT_TAIL(&u->requests, req, link);
        u->in_flight++;

        r = breaker_admit(u, req, &text);
        if (r < 0) {
                /* Fail fast, but still from a fresh libevent callback. */
                request_complete(req, r, text ?: "circuit open");
        } else if (u->callback_depth > 0) {
                /* libcurl is on the stack (a stream callback started us): add the handle
                 * from the loop. */
                request_arm(req, 0);
        } else {
                r = attempt_start(req);
                if (r < 0) {
                        request_detach(req);
                        request_free(req);
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

        stats_count(u, r->label, "cancelled");
        breaker_record(u, r, BREAKER_NEUTRAL);
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
        request_destroy(r);
}

/* Resumes a transfer paused by a stream callback returning -EAGAIN. */
void upstream_request_resume(UpstreamRequest *r) {
        if (!r || r->state != REQ_ATTEMPT)
                return;
        if (r->upstream->callback_depth > 0) {
                /* From inside a libcurl callback (possibly the very callback that is about
                 * to return the pause): unpause from the loop instead. */
                request_arm(r, 0);
                return;
        }
        request_unpause(r);
}

/* A response header of the last attempt, or NULL. */
const char *upstream_response_header(const UpstreamResponse *resp, const char *name) {
        if (!resp || !resp->request || !name)
                return NULL;
        return request_header(resp->request, name);
}

/* Statistics as JSON. */
json_object *upstream_stats_json(const Upstream *u) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *requests = NULL, *retries, *breakers;
        const Breaker *b;
        uint64_t now = now_usec();

        if (!u)
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;
        if (json_object_deep_copy(u->stats_requests, &requests, NULL) < 0)
                return NULL;
        if (json_object_object_add(o, "requests", requests) < 0) {
                json_object_put(requests);
                return NULL;
        }

        retries = json_object_new_object();
        if (!retries || json_object_object_add(o, "retries", retries) < 0) {
                json_object_put(retries);
                return NULL;
        }
        json_object_object_add(retries, "network",
                               json_object_new_int64((int64_t) u->retries_network));
        json_object_object_add(retries, "rate_limited",
                               json_object_new_int64((int64_t) u->retries_rate_limited));
        json_object_object_add(o, "in_flight", json_object_new_int64(u->in_flight));

        breakers = json_object_new_object();
        if (!breakers || json_object_object_add(o, "breakers", breakers) < 0) {
                json_object_put(breakers);
                return NULL;
        }
        TAILQ_FOREACH(b, &u->breakers, link) {
                json_object *e = json_object_new_object();

                if (!e || json_object_object_add(breakers, b->key, e) < 0) {
                        json_object_put(e);
                        return NULL;
                }
                json_object_object_add(e, "state", json_object_new_string(
                        breaker_state_to_string(breaker_effective_state(u, b, now))));
                json_object_object_add(e, "consecutive_failures",
                                       json_object_new_int64(b->consecutive_failures));
                json_object_object_add(e, "opened", json_object_new_int64(b->opened));
        }
        return TAKE_PTR(o);
}

/* The breaker state of the host of a URL. */
const char *upstream_breaker_state(const Upstream *u, const char *url) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        _cleanup_free_ char *url_log = NULL, *key = NULL;
        const Breaker *b;

        if (!u || url_parse(url, &h) < 0 || url_describe(h, UPSTREAM_GET, &url_log, NULL, &key) < 0)
                return "closed";
        b = breaker_find(u, key);
        if (!b)
                return "closed";
        return breaker_state_to_string(breaker_effective_state(u, b, now_usec()));
}

/* Number of requests started and not yet completed or cancelled. */
unsigned upstream_in_flight(const Upstream *u) {
        return u ? u->in_flight : 0;
}
