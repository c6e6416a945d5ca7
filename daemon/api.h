/* SPDX-License-Identifier: MIT */
/*
 * The Avatar API client on top of Upstream: URLs from the configuration, the headers every
 * request carries (Authorization, User-Agent, Avatars-Accept-Created), JSON decoding, the
 * compatibility gate, legacy token refresh, and the mapping of upstream failures to the
 * daemon's error classes with the server's message (avatar-api.md §7.5).
 *
 * Glossary:
 *   compatibility gate  while upstream.verify_compatibility is on, a request waits for a
 *                       fresh GET /check_client answer (cached for cache.compatibility_ttl_s)
 *                       and fails with RPC_INCOMPATIBLE when the server said "incompatible"
 *                       or "unknown".
 *   refresh             for a legacy login session: a 401 whose message says the
 *                       credentials expired triggers one POST /refresh (shared by all requests
 *                       that hit it) and the request is replayed once.
 *   scrubbing           every answer (body and Location) is rid of the daemon's secrets
 *                       (scrub.h: the key, tokens, storage secrets, in any form) before
 *                       anything reads it, and every server message goes through
 *                       scrub_clean(); only 2xx answers of API_SECRET_ANSWER requests are
 *                       read as they came.
 *
 * Contract: api_start() either fails (< 0, callback never called) or calls the callback
 * exactly once from a libevent callback, unless api_cancel() was called first.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "upstream.h"

typedef struct Api Api;
typedef struct ApiRequest ApiRequest;
typedef struct Config Config;
typedef struct Credential Credential;

typedef enum CompatStatus {
        COMPAT_UNCHECKED,
        COMPAT_COMPATIBLE,
        COMPAT_INCOMPATIBLE,
        COMPAT_UNKNOWN,      /* the server does not know this client */
        COMPAT_FAILED,       /* the check itself failed (network, bad answer) */
        COMPAT_DISABLED,     /* upstream.verify_compatibility is off */
        _COMPAT_STATUS_MAX,
        _COMPAT_STATUS_INVALID = -EINVAL,
} CompatStatus;

const char *compat_status_to_string(CompatStatus s);

/* A failure, already classified. All strings owned by the error. */
typedef struct ApiError {
        int code;                 /* an RpcErrorCode */
        long status;              /* HTTP status, 0 when there was no HTTP answer */
        char *message;            /* one sentence for error.message */
        char *server_message;     /* the server's message (§7.5), NULL without an answer */
        char *detail;             /* transport detail (curl's text), or NULL */
        char *request;            /* "GET https://host/api/jobs" (no query string) */
        long long retry_after_ms; /* for rate limiting, -1 when unknown */
        json_object *extra;       /* more error.data members (e.g. the compatibility answer), or NULL */
} ApiError;

void api_error_done(ApiError *e);
/* Deep-copies e into *ret. Returns 0 or -ENOMEM. */
int api_error_copy(const ApiError *e, ApiError *ret);
/* Fills e from scratch (code, message printf-style). */
void api_error_setf(ApiError *e, int code, const char *fmt, ...) _printf_(3, 4);
/* error.data for a JSON-RPC error: {status, message (server's), request, detail,
 * retry_after_ms, ...extra}. New reference (name/retryable are added by the error builder). */
json_object *api_error_data(const ApiError *e);

typedef struct ApiResponse {
        long status;
        json_object *json;          /* parsed body for JSON answers (borrowed), else NULL */
        const char *body;           /* raw body (NUL-terminated) */
        size_t body_len;
        const char *content_type;
        const char *location;       /* Location header, or NULL */
} ApiResponse;

/* Completion: exactly one of resp and err is non-NULL. Both are valid during the call only. */
typedef void (*api_done_cb)(const ApiResponse *resp, const ApiError *err, void *userdata);

typedef enum ApiFlags {
        API_NO_AUTH = 1 << 0,     /* send no credential (login, password flows) */
        API_NO_COMPAT = 1 << 1,   /* bypass the compatibility gate */
        API_RAW = 1 << 2,         /* do not parse the body as JSON */
        API_IDEMPOTENT = 1 << 3,  /* may be retried after a network error (GET, HEAD, DELETE
                                   * are always; PUT and POST only with this flag) */
        API_SECRET_ANSWER = 1 << 4, /* a 2xx answer carries secrets the daemon asked for (login
                                     * tokens, storage credentials): it is not scrubbed, and
                                     * the caller passes none of it on */
} ApiFlags;

typedef struct ApiCall {
        UpstreamMethod method;
        const char *path;         /* relative to the API root, query included, already encoded */
        json_object *json;        /* JSON body (borrowed), or NULL */
        const char *body;         /* other body (copied), with content_type */
        size_t body_len;
        const char *content_type;
        unsigned flags;           /* ApiFlags */
        const char *label;        /* statistics label, e.g. "GET /jobs/{name}" */
        uint64_t timeout_ms;      /* 0: upstream.timeout_s */
} ApiCall;

/* Creates the client. Borrows base, upstream and config (config may be replaced with
 * api_set_config). Takes no credential yet (api_set_credential). */
int api_new(struct event_base *base, Upstream *upstream, const Config *config, Api **ret);
Api *api_free(Api *a);

/* Switches to a new configuration (after a reload): the compatibility answer is dropped when
 * the API URL or User-Agent changed. */
void api_set_config(Api *a, const Config *config);

/* Replaces the credential (takes ownership; NULL = none). */
void api_set_credential(Api *a, Credential *c);
const Credential *api_get_credential(const Api *a);

/* Starts a request. See the contract at the top. */
int api_start(Api *a, const ApiCall *call, api_done_cb cb, void *userdata, ApiRequest **ret);
void api_cancel(ApiRequest *r);

/* Compatibility: the last answer and its state. */
CompatStatus api_compat_status(const Api *a);
/* Whether the gate currently refuses requests (verification on and the last answer was
 * "incompatible" or "unknown"): cached answers must not be served then either. */
bool api_compat_blocks(const Api *a);
/* The last /check_client answer (borrowed), or NULL. */
json_object *api_compat_answer(const Api *a);
/* Seconds since the last answer, or -1; _at() at the time `now` (now_usec()). */
double api_compat_age_s(const Api *a);
double api_compat_age_s_at(const Api *a, uint64_t now);
/* The last answer's text as the reply writer writes it (null when there is none), kept
 * until the answer is replaced (daemon.status). */
void api_compat_answer_text(const Api *a, JsonText *t);
/* The sentence that explains an incompatible or unknown answer (server message, versions,
 * what to do). Malloc'd, NULL on OOM. */
char *api_compat_message(const Api *a, CompatStatus status, json_object *answer);

/* Forgets the cached answer so the next request checks again (SIGHUP, refresh: true). */
void api_compat_invalidate(Api *a);
/* Runs the check now when needed (start-up). */
void api_compat_check(Api *a);

/* Completion of api_compat_verify(): the state after the check, the server's answer
 * (borrowed, NULL when the check failed) and, when it failed, why. */
typedef void (*api_compat_cb)(CompatStatus status, json_object *answer, const ApiError *err,
                              void *userdata);

/* Asks for the compatibility answer: the cached one when fresh and `refresh` is false, else a
 * new GET /check_client (shared with any check in flight). Works even when verification is
 * off (the answer is then reported but gates nothing). Calls back from a libevent callback;
 * api_cancel(*ret) stops it. */
int api_compat_verify(Api *a, bool refresh, api_compat_cb cb, void *userdata, ApiRequest **ret);

/* Percent-encodes a query or path component (RFC 3986 unreserved kept). Returns malloc'd. */
char *api_escape(const char *s);

/* The upstream path of a job, "/jobs/<name>" with the name escaped, malloc'd; NULL on OOM
 * or a NULL name. Its cache key is "GET " followed by the path, the same for every reader
 * and for the Poller, which stores finished jobs there. */
char *api_job_path(const char *name);

/* Extracts the server's message from an error body (§7.5). Returns malloc'd text. */
char *api_extract_message(const char *body, size_t len, json_object *json);

/* Statistics: {"requests": n, "compat_waits": n, "refreshes": n}. New reference. */
json_object *api_stats_json(const Api *a);
/* api_stats_json()'s text, byte for byte, appended to t (daemon.status); m (may be NULL)
 * keeps it while the figures are the same. */
void api_stats_text(const Api *a, JsonText *t, JsonTextMemo *m);
