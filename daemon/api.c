/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "api.h"
#include "build-config.h"
#include "clock.h"
#include "config.h"
#include "credential.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "scrub.h"

/* Nesting accepted in upstream JSON bodies. */
#define UPSTREAM_JSON_DEPTH 64
/* Longest server message kept (longer ones are cut with an ellipsis). */
#define MESSAGE_MAX 2000
/* Longest version a compatibility answer names that is shown. */
#define COMPAT_VERSION_MAX 64

typedef enum ApiRequestState {
        REQ_NEW,
        REQ_WAIT_COMPAT,
        REQ_WAIT_REFRESH,
        REQ_RUNNING,
        REQ_DONE,
} ApiRequestState;

struct ApiRequest {
        Api *api;
        ApiRequestState state;
        UpstreamMethod method;
        char *path;
        char *body;
        size_t body_len;
        char *content_type;
        unsigned flags;
        char *label;
        uint64_t timeout_ms;
        bool replayed;
        api_done_cb cb;
        api_compat_cb compat_cb;   /* set for api_compat_verify() waiters */
        void *userdata;
        UpstreamRequest *up;
        struct event *defer;       /* for completions decided without an HTTP answer */
        ApiError pending_error;    /* delivered by `defer` */
        TAILQ_ENTRY(ApiRequest) link;
};

TAILQ_HEAD(ApiRequestList, ApiRequest);

struct Api {
        struct event_base *base;
        Upstream *upstream;
        const Config *config;
        Credential *credential;

        CompatStatus compat;
        json_object *compat_answer;
        uint64_t compat_answer_changes; /* bumped whenever compat_answer is replaced */
        char *compat_answer_text;       /* its text as of compat_answer_text_changes */
        size_t compat_answer_text_len;
        uint64_t compat_answer_text_changes;
        bool compat_answer_text_valid;
        uint64_t compat_at_usec;
        UpstreamRequest *compat_req;
        ApiError compat_error;     /* why the last check failed (COMPAT_FAILED) */
        struct ApiRequestList wait_compat;

        UpstreamRequest *refresh_req;
        struct ApiRequestList wait_refresh;
        /* How this server takes a refresh: MID servers POST /refresh, OLD ones GET /refresh
         * (avatar-api.md §2.3). Starts with POST, switches on a 404/405 and keeps what worked. */
        UpstreamMethod refresh_method;
        bool refresh_switched;     /* the refresh in flight already tried the other method */

        uint64_t n_requests, n_compat_waits, n_refreshes, n_compat_checks;
        uint64_t n_secrets_removed; /* answers that echoed a secret of the daemon's */
};

static const char *const compat_table[_COMPAT_STATUS_MAX] = {
        [COMPAT_UNCHECKED] = "unchecked",
        [COMPAT_COMPATIBLE] = "compatible",
        [COMPAT_INCOMPATIBLE] = "incompatible",
        [COMPAT_UNKNOWN] = "unknown",
        [COMPAT_FAILED] = "check_failed",
        [COMPAT_DISABLED] = "disabled",
};

static void request_send(ApiRequest *r);
static void request_fail(ApiRequest *r, const ApiError *e);

/* Returns the name of a compatibility status. */
const char *compat_status_to_string(CompatStatus s) {
        if (s < 0 || s >= _COMPAT_STATUS_MAX)
                return NULL;
        return compat_table[s];
}

/* Releases an error's members. */
void api_error_done(ApiError *e) {
        if (!e)
                return;
        free(e->message);
        free(e->server_message);
        free(e->detail);
        free(e->request);
        json_object_put(e->extra);
        *e = (ApiError){ .retry_after_ms = -1 };
}

/* Duplicates a string that may be NULL; false on OOM. */
static bool dup_opt(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return !s || *ret;
}

/* Deep-copies an error. */
int api_error_copy(const ApiError *e, ApiError *ret) {
        ApiError n = { .code = e->code, .status = e->status, .retry_after_ms = e->retry_after_ms };

        if (!dup_opt(e->message, &n.message) || !dup_opt(e->server_message, &n.server_message) ||
            !dup_opt(e->detail, &n.detail) || !dup_opt(e->request, &n.request)) {
                api_error_done(&n);
                return -ENOMEM;
        }
        if (e->extra && json_object_deep_copy(e->extra, &n.extra, NULL) < 0) {
                api_error_done(&n);
                return -ENOMEM;
        }
        *ret = n;
        return 0;
}

/* Fills an error from scratch. */
void api_error_setf(ApiError *e, int code, const char *fmt, ...) {
        va_list ap;

        api_error_done(e);
        e->code = code;
        va_start(ap, fmt);
        if (vasprintf(&e->message, fmt, ap) < 0)
                e->message = NULL;
        va_end(ap);
}

/* error.data members for an API error. */
json_object *api_error_data(const ApiError *e) {
        json_object *d = json_object_new_object();

        if (!d)
                return NULL;
        if (e->status > 0)
                json_object_object_add(d, "status", json_object_new_int64(e->status));
        if (e->server_message)
                json_object_object_add(d, "message", json_object_new_string(e->server_message));
        if (e->request)
                json_object_object_add(d, "request", json_object_new_string(e->request));
        if (e->detail)
                json_object_object_add(d, "detail", json_object_new_string(e->detail));
        if (e->retry_after_ms >= 0)
                json_object_object_add(d, "retry_after_ms", json_object_new_int64(e->retry_after_ms));
        /* a server error or a request timeout may well pass when repeated */
        if (e->code == RPC_UPSTREAM_HTTP_ERROR && (e->status >= 500 || e->status == 408))
                json_object_object_add(d, "retryable", json_object_new_boolean(true));
        if (e->extra) {
                json_object_object_foreach(e->extra, k, v)
                        json_object_object_add(d, k, json_object_get(v));
        }
        return d;
}

/* Percent-encodes a component. */
char *api_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0), *r;

        if (!e)
                return NULL;
        r = strdup(e);
        curl_free(e);
        return r;
}

/* The upstream path of a job. */
char *api_job_path(const char *name) {
        _cleanup_free_ char *esc = api_escape(name);
        char *path = NULL;

        if (!esc || asprintf(&path, "/jobs/%s", esc) < 0)
                return NULL;
        return path;
}

/* Depth-first search for the first "message" member. */
static json_object *find_message(json_object *o, unsigned depth) {
        json_object *m;

        if (!o || depth > UPSTREAM_JSON_DEPTH)
                return NULL;
        if (json_object_is_type(o, json_type_object)) {
                if (json_object_object_get_ex(o, "message", &m) && m)
                        return m;
                json_object_object_foreach(o, k, v) {
                        (void) k;
                        m = find_message(v, depth + 1);
                        if (m)
                                return m;
                }
        } else if (json_object_is_type(o, json_type_array)) {
                size_t n = json_array_len(o);

                for (size_t i = 0; i < n; i++) {
                        m = find_message(json_object_array_get_idx(o, i), depth + 1);
                        if (m)
                                return m;
                }
        }
        return NULL;
}

/* A JSON value as message text: strings as they are, the rest serialized. */
static char *json_as_text(json_object *o) {
        if (json_object_is_type(o, json_type_string))
                return strdup(json_object_get_string(o));
        return strdup(json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS));
}

/* Makes a server's text (taken) fit for a JSON-RPC reply, a log line and a terminal: the one
 * clean-up of texts from outside, scrub_clean() (no secret of the daemon's, one line of
 * valid UTF-8, at most MESSAGE_MAX bytes). */
static char *sanitize_message(char *m) {
        char *r;

        if (!m)
                return NULL;
        r = scrub_clean(m, strlen(m), MESSAGE_MAX, NULL);
        free(m);
        return r;
}

/* Extracts the server's message (avatar-api.md §7.5). */
char *api_extract_message(const char *body, size_t len, json_object *json) {
        json_object *m, *detail;
        char *r = NULL;

        if (!json) {
                size_t s = 0;

                while (s < len && (body[s] == ' ' || body[s] == '\n' || body[s] == '\r' || body[s] == '\t'))
                        s++;
                while (len > s && (body[len - 1] == ' ' || body[len - 1] == '\n' || body[len - 1] == '\r'))
                        len--;
                if (len <= s)
                        return strdup("(empty body)");
                return scrub_clean(body + s, len - s, MESSAGE_MAX, NULL);
        }

        m = find_message(json, 0);
        if (m)
                return sanitize_message(json_as_text(m));

        if (json_object_is_type(json, json_type_object) && json_object_object_get_ex(json, "detail", &detail)) {
                if (json_object_is_type(detail, json_type_array) && json_array_len(detail) > 0) {
                        json_object *first = json_object_array_get_idx(detail, 0), *msg, *loc;

                        if (json_object_is_type(first, json_type_object) &&
                            json_object_object_get_ex(first, "msg", &msg)) {
                                _cleanup_free_ char *ms = json_as_text(msg);

                                if (json_object_object_get_ex(first, "loc", &loc) &&
                                    json_object_is_type(loc, json_type_array) && json_array_len(loc) > 0) {
                                        _cleanup_free_ char *field =
                                                json_as_text(json_object_array_get_idx(loc, json_array_len(loc) - 1));

                                        if (asprintf(&r, "%s: %s", strna(ms), strna(field)) < 0)
                                                r = NULL;
                                } else if (asprintf(&r, "Bad Request: %s", strna(ms)) < 0)
                                        r = NULL;
                                return sanitize_message(r);
                        }
                }
                if (detail)
                        return sanitize_message(json_as_text(detail));
        }
        if (asprintf(&r, "Internal error: %s", json_object_to_json_string_ext(json, JSONRPC_WIRE_FLAGS)) < 0)
                return NULL;
        return sanitize_message(r);
}

/* "GET https://host/api/jobs" for messages (query strings are left out: they may hold tokens). */
static char *describe_request(const Api *a, UpstreamMethod m, const char *path) {
        _cleanup_free_ char *shown = NULL;
        char *r = NULL;

        /* a path may come from a server's Location: cleaned like any text from outside */
        shown = scrub_clean(path, strcspn(path, "?"), MESSAGE_MAX, NULL);
        if (!shown || asprintf(&r, "%s %s%s", upstream_method_to_string(m), a->config->api_url, shown) < 0)
                return NULL;
        return r;
}

/* text[0..len) without the daemon's secrets: the text itself when it holds none, else a copy
 * left in *copy for the caller to free. A secret found is counted and logged (`what` names
 * the request). NULL on OOM. */
static const char *answer_scrubbed(Api *a, const char *what, const char *text, size_t len, char **copy,
                                   size_t *ret_len) {
        int n;

        *ret_len = len;
        if (!text)
                return "";
        n = scrub_text(text, len, NULL, copy, ret_len);
        if (n < 0)
                return NULL;
        if (n == 0)
                return text;
        a->n_secrets_removed++;
        log_warning("%s: the answer held a secret of the daemon's (%d time%s); it was removed before any use.",
                    strna(what), n, n == 1 ? "" : "s");
        return *copy;
}

/* Classifies a transport failure. */
static void error_from_transport(ApiError *e, const UpstreamResponse *resp, const char *request) {
        api_error_done(e);
        e->request = request ? strdup(request) : NULL;
        e->detail = resp->error_text ? strdup(resp->error_text) : NULL;
        switch (resp->error) {
        case -EMSGSIZE:
                e->code = RPC_UPSTREAM_BAD_RESPONSE;
                if (asprintf(&e->message, "%s: the response is larger than upstream.max_body_bytes", strna(request)) < 0)
                        e->message = NULL;
                return;
        case -ENOMEM:
                e->code = RPC_INTERNAL_ERROR;
                e->message = strdup("Out of memory");
                return;
        case -EHOSTDOWN:
                e->code = RPC_UPSTREAM_UNREACHABLE;
                if (asprintf(&e->message, "%s: the Avatar server is unreachable (circuit open after repeated failures): %s",
                             strna(request), strna(resp->error_text)) < 0)
                        e->message = NULL;
                return;
        case -ETIMEDOUT:
                e->code = RPC_UPSTREAM_UNREACHABLE;
                if (asprintf(&e->message, "%s: no answer from the Avatar server in time (%u attempt%s)",
                             strna(request), resp->attempts, resp->attempts == 1 ? "" : "s") < 0)
                        e->message = NULL;
                return;
        default:
                e->code = RPC_UPSTREAM_UNREACHABLE;
                if (asprintf(&e->message, "%s: cannot reach the Avatar server: %s (%u attempt%s)", strna(request),
                             strna(resp->error_text), resp->attempts, resp->attempts == 1 ? "" : "s") < 0)
                        e->message = NULL;
        }
}

/* Classifies an HTTP error answer; takes server_message, the api_extract_message() of the body. */
static void error_from_status(ApiError *e, const UpstreamResponse *resp, json_object *json,
                              const char *request, char *server_message) {
        json_object *detail;

        api_error_done(e);
        e->status = resp->status;
        e->request = request ? strdup(request) : NULL;
        e->server_message = server_message;
        if (resp->status >= 300 && resp->status < 400) {
                /* redirects are never followed (one could take the key to another host): say
                 * where it pointed, not what its body held */
                _cleanup_free_ char *why = upstream_redirect_text(resp->status,
                                                                  upstream_response_header(resp, "Location"));

                e->code = RPC_UPSTREAM_HTTP_ERROR;
                e->server_message = mfree(e->server_message);
                if (asprintf(&e->message, "%s: %s", strna(request), strna(why)) < 0)
                        e->message = NULL;
                return;
        }
        switch (resp->status) {
        case 401:
                e->code = RPC_CREDENTIAL_REJECTED;
                /* FastAPI's {"detail": "Not authenticated"} */
                if (json_object_is_type(json, json_type_object) && json_object_object_get_ex(json, "detail", &detail) &&
                    json_object_is_type(detail, json_type_string) &&
                    strcasestr(json_object_get_string(detail), "authenticated")) {
                        if (asprintf(&e->message, "You are not authenticated: the Avatar server refused the daemon's credential (%s)",
                                     strna(request)) < 0)
                                e->message = NULL;
                        return;
                }
                break;
        case 404:
                e->code = RPC_NOT_FOUND;
                break;
        case 409:
                e->code = RPC_CONFLICT;
                break;
        case 429:
                e->code = RPC_RATE_LIMITED;
                e->retry_after_ms = resp->retry_after_ms;
                break;
        default:
                e->code = RPC_UPSTREAM_HTTP_ERROR;
        }
        if (asprintf(&e->message, "%s failed with status %ld: %s", strna(request), resp->status,
                     strna(e->server_message)) < 0)
                e->message = NULL;
}

/* Registers the password of a proxy URL (NULL or none: the slot is cleared). */
static void scrub_proxy(ScrubSlot slot, const char *url) {
        CURLU *h = url ? curl_url() : NULL;
        char *pw = NULL;

        if (h && curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_GUESS_SCHEME) == CURLUE_OK)
                (void) curl_url_get(h, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE);
        if (scrub_set(slot, pw) < 0)
                log_oom();
        if (pw) {
                explicit_bzero(pw, strlen(pw));
                curl_free(pw);
        }
        curl_url_cleanup(h);
}

/* Registers the secrets a configuration holds: the passwords of its proxies. */
static void scrub_config(const Config *c) {
        scrub_proxy(SCRUB_PROXY, c->proxy);
        scrub_proxy(SCRUB_ENV_HTTP_PROXY, c->env_http_proxy);
        scrub_proxy(SCRUB_ENV_HTTPS_PROXY, c->env_https_proxy);
}

/* Creates the client. */
int api_new(struct event_base *base, Upstream *upstream, const Config *config, Api **ret) {
        Api *a = calloc(1, sizeof(Api));

        if (!a)
                return -ENOMEM;
        a->base = base;
        a->upstream = upstream;
        a->config = config;
        a->compat = config->verify_compatibility ? COMPAT_UNCHECKED : COMPAT_DISABLED;
        a->compat_error.retry_after_ms = -1;
        TAILQ_INIT(&a->wait_compat);
        TAILQ_INIT(&a->wait_refresh);
        a->refresh_method = UPSTREAM_POST;
        scrub_config(config);
        *ret = a;
        return 0;
}

/* Frees a request. */
static void request_free(ApiRequest *r) {
        if (!r)
                return;
        if (r->defer)
                event_free(r->defer);
        api_error_done(&r->pending_error);
        free(r->path);
        free(r->body);
        free(r->content_type);
        free(r->label);
        free(r);
}

/* Unlinks a request from whatever list or transfer it is in. */
static void request_detach(ApiRequest *r) {
        Api *a = r->api;

        if (r->state == REQ_WAIT_COMPAT)
                TAILQ_REMOVE(&a->wait_compat, r, link);
        else if (r->state == REQ_WAIT_REFRESH)
                TAILQ_REMOVE(&a->wait_refresh, r, link);
        if (r->up) {
                upstream_request_cancel(r->up);
                r->up = NULL;
        }
        if (r->defer)
                event_del(r->defer);
}

/* Frees the client; pending requests are cancelled without callbacks. */
Api *api_free(Api *a) {
        ApiRequest *r;

        if (!a)
                return NULL;
        while ((r = TAILQ_FIRST(&a->wait_compat))) {
                request_detach(r);
                request_free(r);
        }
        while ((r = TAILQ_FIRST(&a->wait_refresh))) {
                request_detach(r);
                request_free(r);
        }
        upstream_request_cancel(a->compat_req);
        upstream_request_cancel(a->refresh_req);
        json_object_put(a->compat_answer);
        free(a->compat_answer_text);
        api_error_done(&a->compat_error);
        credential_free(a->credential);
        free(a);
        /* the secrets went with the client: their copies are erased */
        scrub_reset();
        return NULL;
}

/* Switches to a new configuration. */
void api_set_config(Api *a, const Config *config) {
        bool changed = !streq_ptr(a->config->api_url, config->api_url) ||
                       !streq_ptr(a->config->user_agent, config->user_agent) ||
                       a->config->verify_compatibility != config->verify_compatibility;

        a->config = config;
        scrub_config(config);
        if (changed)
                api_compat_invalidate(a);
}

/* Replaces the credential. */
void api_set_credential(Api *a, Credential *c) {
        /* the secrets it holds are kept out of every text the daemon passes on (a replaced
         * one too: a former key may still be valid) */
        if (scrub_set(SCRUB_CREDENTIAL, c ? c->secret : NULL) < 0 ||
            scrub_set(SCRUB_REFRESH_TOKEN, c ? c->refresh_token : NULL) < 0)
                log_oom();
        credential_free(a->credential);
        a->credential = c;
}

/* The current credential (borrowed). */
const Credential *api_get_credential(const Api *a) {
        return a->credential;
}

/* Delivers the pending error from a fresh libevent callback. */
static void on_deferred_failure(evutil_socket_t fd, short what, void *userdata) {
        ApiRequest *r = userdata;
        ApiError e = r->pending_error;
        Api *a = r->api;

        (void) fd;
        (void) what;
        r->pending_error = (ApiError){ .retry_after_ms = -1 };
        r->state = REQ_DONE;
        if (r->compat_cb) {
                bool ok = a->compat != COMPAT_FAILED && a->compat != COMPAT_UNCHECKED;

                r->compat_cb(a->compat, ok ? a->compat_answer : NULL, ok ? NULL : &e, r->userdata);
        } else
                r->cb(NULL, &e, r->userdata);
        api_error_done(&e);
        request_free(r);
}

/* Fails a request from the next loop turn (never from inside api_start). */
static void request_fail(ApiRequest *r, const ApiError *e) {
        static const struct timeval zero = { 0, 0 };

        request_detach(r);
        r->state = REQ_DONE;
        api_error_done(&r->pending_error);
        if (api_error_copy(e, &r->pending_error) < 0)
                r->pending_error = (ApiError){ .code = RPC_INTERNAL_ERROR, .retry_after_ms = -1 };
        if (!r->defer)
                r->defer = evtimer_new(r->api->base, on_deferred_failure, r);
        if (!r->defer) {
                /* out of memory: nothing can be delivered; the request is lost with a log line */
                log_oom();
                return;
        }
        evtimer_add(r->defer, &zero);
}

/* Whether the compatibility answer is recent enough to use. */
static bool compat_fresh(const Api *a) {
        return a->compat_at_usec > 0 &&
               now_usec() - a->compat_at_usec < (uint64_t) a->config->compatibility_ttl_s * USEC_PER_SEC;
}

/* The server's message and most recent compatible client of a compatibility answer, NULL when
 * absent. */
static void compat_answer_fields(json_object *answer, const char **ret_message, const char **ret_recent) {
        json_object *msg = NULL, *recent = NULL;

        json_object_object_get_ex(answer, "message", &msg);
        json_object_object_get_ex(answer, "most_recent_compatible_client", &recent);
        *ret_message = msg ? json_object_get_string(msg) : NULL;
        *ret_recent = recent ? json_object_get_string(recent) : NULL;
}

/* A copy of a server's JSON whose every string (keys aside) went through the one clean-up of
 * server texts; NULL on OOM. */
static json_object *json_cleaned(json_object *o, unsigned depth) {
        json_object *c = NULL;

        if (depth > UPSTREAM_JSON_DEPTH)
                return NULL;
        switch (json_object_get_type(o)) {
        case json_type_string: {
                _cleanup_free_ char *t = scrub_clean(json_object_get_string(o), (size_t) json_object_get_string_len(o),
                                                     MESSAGE_MAX, NULL);

                return t ? json_object_new_string(t) : NULL;
        }
        case json_type_object:
                c = json_object_new_object();
                json_object_object_foreach(o, k, v)
                        if (c)
                                json_object_object_add(c, k, v ? json_cleaned(v, depth + 1) : NULL);
                return c;
        case json_type_array:
                c = json_object_new_array();
                for (size_t i = 0; c && i < json_array_len(o); i++)
                        json_object_array_add(c, json_cleaned(json_object_array_get_idx(o, i), depth + 1));
                return c;
        default:
                return json_copy(o);
        }
}

/* The sentence explaining an incompatible or unknown answer. */
char *api_compat_message(const Api *a, CompatStatus st, json_object *answer) {
        _cleanup_free_ char *m = NULL, *rc = NULL;
        const char *msg, *rc_raw;
        char *r = NULL;
        size_t n;

        /* the server's words go through the one clean-up, as every server message does */
        compat_answer_fields(answer, &msg, &rc_raw);
        m = sanitize_message(strdup(msg ?: "no message"));
        rc = rc_raw ? scrub_clean(rc_raw, strlen(rc_raw), COMPAT_VERSION_MAX, NULL) : NULL;
        if (!m || (rc_raw && !rc))
                return NULL;
        /* the sentence adds its own full stop */
        n = strlen(m);
        while (n > 0 && (m[n - 1] == '.' || m[n - 1] == ' '))
                m[--n] = '\0';
        if (asprintf(&r,
                     "The Avatar server says this client is %s. Server message: %s. Client: avatard %s (User-Agent '%s'). "
                     "Most recent compatible client: %s. %s",
                     compat_status_to_string(st), m, AVATARD_VERSION,
                     config_user_agent(a->config), rc ?: "unknown",
                     a->config->verify_compatibility ?
                     "Upgrade avatard, set upstream.user_agent, or turn upstream.verify_compatibility off." :
                     "Upgrade avatard or set upstream.user_agent (upstream.verify_compatibility is off, so other calls still go through).") < 0)
                return NULL;
        return r;
}

/* The error a request gets while the server says incompatible or unknown. */
static void compat_error(const Api *a, ApiError *e) {
        _cleanup_free_ char *rc = NULL;
        const char *msg, *rc_raw;

        api_error_done(e);
        compat_answer_fields(a->compat_answer, &msg, &rc_raw);
        rc = rc_raw ? scrub_clean(rc_raw, strlen(rc_raw), COMPAT_VERSION_MAX, NULL) : NULL;
        e->code = RPC_INCOMPATIBLE;
        e->server_message = sanitize_message(strdup(msg ?: "no message"));
        e->message = api_compat_message(a, a->compat, a->compat_answer);
        e->extra = json_object_new_object();
        if (e->extra) {
                json_object_object_add(e->extra, "compatibility", json_object_new_string(compat_status_to_string(a->compat)));
                json_object_object_add(e->extra, "most_recent_compatible_client",
                                       rc ? json_object_new_string(rc) : NULL);
                json_object_object_add(e->extra, "daemon_version", json_object_new_string(AVATARD_VERSION));
                /* the server answered from this header alone: the operator needs to see it */
                json_object_object_add(e->extra, "user_agent", json_object_new_string(config_user_agent(a->config)));
        }
}

/* Releases the requests waiting for the compatibility answer. */
static void compat_release(Api *a) {
        struct ApiRequestList list = TAILQ_HEAD_INITIALIZER(list);
        ApiRequest *r;
        ApiError e = { .retry_after_ms = -1 };

        TAILQ_CONCAT(&list, &a->wait_compat, link);
        if (a->compat == COMPAT_INCOMPATIBLE || a->compat == COMPAT_UNKNOWN)
                compat_error(a, &e);
        while ((r = TAILQ_FIRST(&list))) {
                TAILQ_REMOVE(&list, r, link);
                r->state = REQ_NEW;
                /* api_compat_verify() waiters always get their answer through request_fail() */
                if (!r->compat_cb && (a->compat == COMPAT_COMPATIBLE || a->compat == COMPAT_DISABLED))
                        request_send(r);
                else
                        request_fail(r, a->compat == COMPAT_FAILED ? &a->compat_error : &e);
        }
        api_error_done(&e);
}

/* Builds the header lines of a request (Authorization included unless told otherwise).
 * The Authorization line is returned separately so it can be erased after use. */
static int build_headers(const Api *a, const ApiRequest *r, const char *lines[6], char **ret_auth) {
        size_t n = 0;

        *ret_auth = NULL;
        if (!(r->flags & API_NO_AUTH) && a->credential && a->credential->kind != CREDENTIAL_NONE) {
                *ret_auth = credential_header(a->credential);
                if (!*ret_auth)
                        return -ENOMEM;
                lines[n++] = *ret_auth;
        }
        lines[n++] = "Avatars-Accept-Created: yes";
        lines[n++] = "Accept: application/json, */*";
        lines[n] = NULL;
        return 0;
}

/* Parses the /check_client answer and releases the waiters. */
static void on_compat_done(const UpstreamResponse *resp, void *userdata) {
        Api *a = userdata;
        _cleanup_free_ char *request = describe_request(a, UPSTREAM_GET, "/check_client"), *copy = NULL;
        json_object *json = NULL, *status = NULL;
        const char *body = NULL;
        size_t len = 0;

        a->compat_req = NULL;
        api_error_done(&a->compat_error);
        if (resp->error >= 0)
                body = answer_scrubbed(a, request, resp->body, resp->body_len, &copy, &len);
        if (resp->error < 0) {
                error_from_transport(&a->compat_error, resp, request);
                a->compat = COMPAT_FAILED;
        } else if (!body) {
                api_error_setf(&a->compat_error, RPC_INTERNAL_ERROR, "Out of memory");
                a->compat = COMPAT_FAILED;
        } else {
                (void) json_parse_strict(body, len, UPSTREAM_JSON_DEPTH, &json);
                if (resp->status < 200 || resp->status >= 300) {
                        error_from_status(&a->compat_error, resp, json, request, api_extract_message(body, len, json));
                        a->compat = COMPAT_FAILED;
                } else if (!json_object_is_type(json, json_type_object) ||
                           !json_object_object_get_ex(json, "status", &status) ||
                           !json_object_is_type(status, json_type_string)) {
                        api_error_setf(&a->compat_error, RPC_UPSTREAM_BAD_RESPONSE,
                                       "%s: the answer is not a compatibility response", strna(request));
                        a->compat = COMPAT_FAILED;
                } else {
                        const char *s = json_object_get_string(status);

                        a->compat = streq(s, "compatible") ? COMPAT_COMPATIBLE :
                                    streq(s, "incompatible") ? COMPAT_INCOMPATIBLE : COMPAT_UNKNOWN;
                        /* kept for daemon.status and manager.verify_compatibility: its words
                         * cleaned up as every server message is */
                        json_object_put(a->compat_answer);
                        a->compat_answer = json_cleaned(json, 0);
                        a->compat_answer_changes++;
                        a->compat_at_usec = now_usec();
                        if (a->compat == COMPAT_COMPATIBLE)
                                log_info("The Avatar server at %s says this client is compatible.", a->config->api_url);
                        else {
                                const char *text = json_object_get_string(json);
                                _cleanup_free_ char *shown = scrub_clean(text, strlen(text), MESSAGE_MAX, NULL);

                                log_warning("The Avatar server at %s says this client is %s: %s", a->config->api_url, s,
                                            strna(shown));
                        }
                }
        }
        if (a->compat == COMPAT_FAILED)
                log_warning("Compatibility check failed: %s", strna(a->compat_error.message));
        json_object_put(json);
        compat_release(a);
}

/* Starts GET /check_client unless one is in flight. */
static void compat_start_check(Api *a) {
        _cleanup_(erase_and_freep) char *auth = NULL;
        _cleanup_free_ char *url = NULL;
        const char *lines[6];
        ApiRequest probe = { .flags = 0 };
        UpstreamCall call;
        int r;

        if (a->compat_req)
                return;
        if (asprintf(&url, "%s/check_client", a->config->api_url) < 0)
                goto oom;
        if (build_headers(a, &probe, lines, &auth) < 0)
                goto oom;
        call = (UpstreamCall){
                .method = UPSTREAM_GET,
                .url = url,
                .headers = lines,
                .idempotent = true,
                .label = "GET /check_client",
        };
        a->n_compat_checks++;
        r = upstream_request_start(a->upstream, &call, on_compat_done, a, &a->compat_req);
        if (r >= 0)
                return;
        api_error_setf(&a->compat_error, RPC_UPSTREAM_UNREACHABLE, "Cannot start the compatibility check: %s",
                       strerror(-r));
        a->compat = COMPAT_FAILED;
        compat_release(a);
        return;
oom:
        api_error_setf(&a->compat_error, RPC_INTERNAL_ERROR, "Out of memory");
        a->compat = COMPAT_FAILED;
        compat_release(a);
}

/* Runs the check now when verification is on and the answer is missing or old. */
void api_compat_check(Api *a) {
        if (!a->config->verify_compatibility)
                return;
        if (a->compat != COMPAT_UNCHECKED && a->compat != COMPAT_FAILED && compat_fresh(a))
                return;
        compat_start_check(a);
}

/* Forgets the cached answer. */
void api_compat_invalidate(Api *a) {
        a->compat_at_usec = 0;
        a->compat = a->config->verify_compatibility ? COMPAT_UNCHECKED : COMPAT_DISABLED;
        json_object_put(a->compat_answer);
        a->compat_answer = NULL;
        a->compat_answer_changes++;
}

/* The compatibility state. */
CompatStatus api_compat_status(const Api *a) {
        return a->compat;
}

/* Whether the gate refuses requests. */
bool api_compat_blocks(const Api *a) {
        return a->config->verify_compatibility && (a->compat == COMPAT_INCOMPATIBLE || a->compat == COMPAT_UNKNOWN);
}

/* The last answer. */
json_object *api_compat_answer(const Api *a) {
        return a->compat_answer;
}

/* Age of the last answer. */
double api_compat_age_s(const Api *a) {
        return api_compat_age_s_at(a, now_usec());
}

double api_compat_age_s_at(const Api *a, uint64_t now) {
        if (a->compat_at_usec == 0)
                return -1;
        return (double) (now - a->compat_at_usec) / 1e6;
}

/* The text of the last answer, kept until the answer is replaced. */
void api_compat_answer_text(const Api *a, JsonText *t) {
        Api *m = (Api *) a; /* the kept text only */

        if (!a->compat_answer_text_valid || a->compat_answer_text_changes != a->compat_answer_changes) {
                JsonText r = {};

                json_text_add_value(&r, a->compat_answer);
                if (r.oom) {
                        free(r.p);
                        t->oom = true;
                        return;
                }
                free(m->compat_answer_text);
                m->compat_answer_text = r.p;
                m->compat_answer_text_len = r.n;
                m->compat_answer_text_changes = a->compat_answer_changes;
                m->compat_answer_text_valid = true;
        }
        json_text_add(t, a->compat_answer_text, a->compat_answer_text_len);
}

/* Starts the shared refresh for an expired login session. */
static void refresh_start(Api *a);

/* Whether a 401 answer says the login session expired (the legacy refresh trigger); m is the server's
 * message. */
static bool is_expired_login(const Api *a, const UpstreamResponse *resp, const char *m) {
        if (resp->status != 401 || !a->credential || a->credential->kind != CREDENTIAL_LOGIN ||
            !a->credential->refresh_token)
                return false;
        return m && strcasestr(m, "credentials expired");
}

/* Completion of one HTTP exchange of a request. */
static void on_upstream_done(const UpstreamResponse *resp, void *userdata) {
        ApiRequest *r = userdata;
        Api *a = r->api;
        _cleanup_free_ char *request = describe_request(a, r->method, r->path), *server_message = NULL,
                            *body_copy = NULL, *location_copy = NULL;
        json_object *json = NULL;
        ApiError e = { .retry_after_ms = -1 };
        const char *ct = resp->content_type, *body = resp->body, *location = NULL;
        size_t body_len = resp->body_len, location_len;
        bool want_json, ok = resp->status >= 200 && resp->status < 300;

        r->up = NULL;
        if (resp->error < 0) {
                error_from_transport(&e, resp, request);
                goto fail;
        }
        location = upstream_response_header(resp, "Location");
        /* nothing a server wrote reaches a caller, a log or a file with a secret in it, but
         * the answers that carry the secrets the daemon asked for */
        if (!(ok && (r->flags & API_SECRET_ANSWER))) {
                body = answer_scrubbed(a, request, resp->body, resp->body_len, &body_copy, &body_len);
                if (location)
                        location = answer_scrubbed(a, request, location, strlen(location), &location_copy,
                                                   &location_len);
                if (!body || (!location && upstream_response_header(resp, "Location"))) {
                        api_error_setf(&e, RPC_INTERNAL_ERROR, "Out of memory");
                        goto fail;
                }
        }
        want_json = !(r->flags & API_RAW) && (!ct || strcasestr(ct, "json"));
        if (body_len > 0 && (want_json || (resp->status >= 400 && ct && strcasestr(ct, "json"))))
                if (json_parse_strict(body, body_len, UPSTREAM_JSON_DEPTH, &json) < 0)
                        json = NULL;

        if (ok) {
                ApiResponse answer = {
                        .status = resp->status,
                        .json = json,
                        .body = body,
                        .body_len = body_len,
                        .content_type = ct,
                        .location = location,
                };

                if (want_json && body_len > 0 && !json && ct && strcasestr(ct, "json")) {
                        api_error_setf(&e, RPC_UPSTREAM_BAD_RESPONSE, "%s: the answer is not valid JSON", strna(request));
                        e.request = TAKE_PTR(request);
                        e.status = resp->status;
                        goto fail;
                }
                r->state = REQ_DONE;
                r->cb(&answer, NULL, r->userdata);
                json_object_put(json);
                request_free(r);
                return;
        }

        server_message = api_extract_message(body, body_len, json);
        if (!r->replayed && is_expired_login(a, resp, server_message)) {
                json_object_put(json);
                r->state = REQ_WAIT_REFRESH;
                TAILQ_INSERT_TAIL(&a->wait_refresh, r, link);
                refresh_start(a);
                return;
        }
        error_from_status(&e, resp, json, request, TAKE_PTR(server_message));
fail:
        json_object_put(json);
        r->state = REQ_DONE;
        r->cb(NULL, &e, r->userdata);
        api_error_done(&e);
        request_free(r);
}

/* Sends a request upstream now. */
static void request_send(ApiRequest *r) {
        Api *a = r->api;
        _cleanup_(erase_and_freep) char *auth = NULL;
        _cleanup_free_ char *url = NULL, *ctype = NULL;
        const char *lines[7];
        ApiError e = { .retry_after_ms = -1 };
        UpstreamCall call;
        size_t n;
        int q;

        if (!(r->flags & API_NO_AUTH) && (!a->credential || a->credential->kind == CREDENTIAL_NONE)) {
                api_error_setf(&e, RPC_NOT_AUTHENTICATED,
                               "The daemon holds no Avatar credential: give it an API key (systemd credential "
                               "api-key, upstream.api_key_file or AVATAR_API_KEY) or log in with manager.authenticate");
                request_fail(r, &e);
                api_error_done(&e);
                return;
        }
        if (asprintf(&url, "%s%s", a->config->api_url, r->path) < 0 || build_headers(a, r, lines, &auth) < 0) {
                api_error_setf(&e, RPC_INTERNAL_ERROR, "Out of memory");
                request_fail(r, &e);
                api_error_done(&e);
                return;
        }
        for (n = 0; lines[n]; n++)
                ;
        if (r->content_type) {
                if (asprintf(&ctype, "Content-Type: %s", r->content_type) < 0)
                        ctype = NULL;
                if (ctype)
                        lines[n++] = ctype;
                lines[n] = NULL;
        }
        call = (UpstreamCall){
                .method = r->method,
                .url = url,
                .headers = lines,
                .body = r->body,
                .body_len = r->body_len,
                .idempotent = (r->flags & API_IDEMPOTENT) || r->method == UPSTREAM_GET ||
                              r->method == UPSTREAM_HEAD || r->method == UPSTREAM_DELETE,
                .timeout_ms = r->timeout_ms,
                .label = r->label,
        };
        r->state = REQ_RUNNING;
        a->n_requests++;
        q = upstream_request_start(a->upstream, &call, on_upstream_done, r, &r->up);
        if (q < 0) {
                _cleanup_free_ char *shown = scrub_clean(r->path, strcspn(r->path, "?"), MESSAGE_MAX, NULL);

                api_error_setf(&e, q == -EPROTONOSUPPORT ? RPC_UPSTREAM_UNREACHABLE : RPC_INTERNAL_ERROR,
                               "Cannot send %s %s: %s", upstream_method_to_string(r->method), strna(shown),
                               q == -EPROTONOSUPPORT ? "the URL scheme is not allowed" : strerror(-q));
                r->state = REQ_NEW;
                request_fail(r, &e);
                api_error_done(&e);
        }
}

/* The other refresh method. */
static UpstreamMethod refresh_other(UpstreamMethod m) {
        return m == UPSTREAM_POST ? UPSTREAM_GET : UPSTREAM_POST;
}

/* Completion of the refresh: new tokens and replays, or failures. */
static void on_refresh_done(const UpstreamResponse *resp, void *userdata) {
        Api *a = userdata;
        _cleanup_free_ char *request = describe_request(a, a->refresh_method, "/refresh");
        struct ApiRequestList list = TAILQ_HEAD_INITIALIZER(list);
        json_object *json = NULL, *at = NULL, *rt = NULL;
        ApiError e = { .retry_after_ms = -1 };
        Credential *n = NULL;
        ApiRequest *r;

        a->refresh_req = NULL;
        if (resp->error >= 0 && (resp->status == 404 || resp->status == 405) && !a->refresh_switched) {
                /* a server of the other generation: the route is there with the other method */
                log_info("%s answered %ld; trying %s /refresh.", strna(request), resp->status,
                         upstream_method_to_string(refresh_other(a->refresh_method)));
                a->refresh_method = refresh_other(a->refresh_method);
                a->refresh_switched = true;
                refresh_start(a);
                return;
        }
        a->refresh_switched = false;
        if (resp->error < 0)
                error_from_transport(&e, resp, request);
        else if (resp->status < 200 || resp->status >= 300) {
                _cleanup_free_ char *copy = NULL;
                json_object *ej = NULL;
                size_t len;
                const char *body = answer_scrubbed(a, request, resp->body, resp->body_len, &copy, &len);

                if (body) {
                        (void) json_parse_strict(body, len, UPSTREAM_JSON_DEPTH, &ej);
                        error_from_status(&e, resp, ej, request, api_extract_message(body, len, ej));
                        json_object_put(ej);
                } else
                        api_error_setf(&e, RPC_INTERNAL_ERROR, "Out of memory");
        } else {
                /* a 2xx answer carries the new tokens: read as it came, and erased after */
                (void) json_parse_strict(resp->body, resp->body_len, UPSTREAM_JSON_DEPTH, &json);
                if (!json_object_object_get_ex(json, "access_token", &at) ||
                    !json_object_is_type(at, json_type_string) ||
                    credential_new_login(a->credential->username, json_object_get_string(at),
                                         json_object_object_get_ex(json, "refresh_token", &rt) && rt ?
                                         json_object_get_string(rt) : a->credential->refresh_token, &n) < 0)
                        api_error_setf(&e, RPC_UPSTREAM_BAD_RESPONSE, "%s: the answer holds no access token", strna(request));
        }
        if (json) {
                /* the body held tokens: erase its text before freeing */
                explicit_bzero((char *) resp->body, resp->body_len);
                json_object_put(json);
        }
        if (n) {
                log_info("Refreshed the login session of %s.", strna(n->username));
                api_set_credential(a, n);
        } else {
                _cleanup_free_ char *m = e.message;

                e.code = RPC_CREDENTIAL_REJECTED;
                if (asprintf(&e.message, "The login session expired and could not be refreshed: %s", strna(m)) < 0)
                        e.message = NULL;
                log_warning("%s", strna(e.message));
        }
        TAILQ_CONCAT(&list, &a->wait_refresh, link);
        while ((r = TAILQ_FIRST(&list))) {
                TAILQ_REMOVE(&list, r, link);
                r->state = REQ_NEW;
                r->replayed = true;
                if (n)
                        request_send(r);
                else
                        request_fail(r, &e);
        }
        api_error_done(&e);
}

/* Starts the shared refresh, with the method that worked last (POST at first). */
static void refresh_start(Api *a) {
        _cleanup_free_ char *url = NULL, *tok = NULL;
        static const char *const lines[] = { "Avatars-Accept-Created: yes", NULL };
        UpstreamCall call;
        int r;

        if (a->refresh_req)
                return;
        if (!a->refresh_switched)
                a->n_refreshes++;
        tok = api_escape(a->credential->refresh_token);
        if (!tok || asprintf(&url, "%s/refresh?token=%s", a->config->api_url, tok) < 0) {
                UpstreamResponse fake = { .error = -ENOMEM, .error_text = "out of memory" };
                on_refresh_done(&fake, a);
                return;
        }
        call = (UpstreamCall){
                .method = a->refresh_method,
                .url = url,
                .headers = lines,
                /* a refresh token is single-use on some servers: never resent blindly */
                .idempotent = false,
                .label = a->refresh_method == UPSTREAM_GET ? "GET /refresh" : "POST /refresh",
        };
        r = upstream_request_start(a->upstream, &call, on_refresh_done, a, &a->refresh_req);
        explicit_bzero(url, strlen(url));
        explicit_bzero(tok, strlen(tok));
        if (r < 0) {
                UpstreamResponse fake = { .error = r, .error_text = "cannot start the refresh" };
                on_refresh_done(&fake, a);
        }
}

/* Starts a request. */
int api_start(Api *a, const ApiCall *call, api_done_cb cb, void *userdata, ApiRequest **ret) {
        ApiRequest *r;
        ApiError e = { .retry_after_ms = -1 };

        assert_return(a && call && call->path && cb, -EINVAL);
        r = calloc(1, sizeof(ApiRequest));
        if (!r)
                return -ENOMEM;
        r->api = a;
        r->method = call->method;
        r->flags = call->flags;
        r->timeout_ms = call->timeout_ms;
        r->cb = cb;
        r->userdata = userdata;
        r->pending_error.retry_after_ms = -1;
        r->path = strdup(call->path);
        r->label = call->label ? strdup(call->label) : NULL;
        if (call->json) {
                r->body = strdup(json_object_to_json_string_ext(call->json, JSONRPC_WIRE_FLAGS));
                r->body_len = r->body ? strlen(r->body) : 0;
                r->content_type = strdup("application/json");
        } else if (call->body) {
                r->body = malloc(call->body_len + 1);
                if (r->body) {
                        memcpy(r->body, call->body, call->body_len);
                        r->body[call->body_len] = '\0';
                }
                r->body_len = call->body_len;
                r->content_type = call->content_type ? strdup(call->content_type) : NULL;
        }
        if (!r->path || (call->label && !r->label) || ((call->json || call->body) && !r->body)) {
                request_free(r);
                return -ENOMEM;
        }
        if (ret)
                *ret = r;

        if ((r->flags & API_NO_COMPAT) || !a->config->verify_compatibility) {
                request_send(r);
                return 0;
        }
        if (compat_fresh(a) && a->compat == COMPAT_COMPATIBLE) {
                request_send(r);
                return 0;
        }
        if (compat_fresh(a) && (a->compat == COMPAT_INCOMPATIBLE || a->compat == COMPAT_UNKNOWN)) {
                compat_error(a, &e);
                request_fail(r, &e);
                api_error_done(&e);
                return 0;
        }
        r->state = REQ_WAIT_COMPAT;
        TAILQ_INSERT_TAIL(&a->wait_compat, r, link);
        a->n_compat_waits++;
        compat_start_check(a);
        return 0;
}

/* Asks for the compatibility answer. */
int api_compat_verify(Api *a, bool refresh, api_compat_cb cb, void *userdata, ApiRequest **ret) {
        ApiRequest *r;
        ApiError none = { .code = RPC_INTERNAL_ERROR, .retry_after_ms = -1 };

        assert_return(a && cb, -EINVAL);
        r = calloc(1, sizeof(ApiRequest));
        if (!r)
                return -ENOMEM;
        r->api = a;
        r->compat_cb = cb;
        r->userdata = userdata;
        r->pending_error.retry_after_ms = -1;
        if (ret)
                *ret = r;
        if (!refresh && compat_fresh(a) && a->compat != COMPAT_FAILED && a->compat_answer) {
                /* the cached answer, delivered from the loop like any other */
                request_fail(r, &none);
                return 0;
        }
        r->state = REQ_WAIT_COMPAT;
        TAILQ_INSERT_TAIL(&a->wait_compat, r, link);
        compat_start_check(a);
        return 0;
}

/* Cancels a request; its callback is not called. */
void api_cancel(ApiRequest *r) {
        if (!r || r->state == REQ_DONE) {
                /* a failure already scheduled is still pending on its timer: drop it */
                if (r && r->defer && event_pending(r->defer, EV_TIMEOUT, NULL)) {
                        event_del(r->defer);
                        request_free(r);
                }
                return;
        }
        request_detach(r);
        request_free(r);
}

/* Statistics. */
json_object *api_stats_json(const Api *a) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "requests", json_object_new_uint64(a->n_requests));
        json_object_object_add(o, "compatibility_checks", json_object_new_uint64(a->n_compat_checks));
        json_object_object_add(o, "compatibility_waits", json_object_new_uint64(a->n_compat_waits));
        json_object_object_add(o, "token_refreshes", json_object_new_uint64(a->n_refreshes));
        json_object_object_add(o, "secrets_removed", json_object_new_uint64(a->n_secrets_removed));
        return o;
}

void api_stats_text(const Api *a, JsonText *t, JsonTextMemo *m) {
        uint64_t key[] = { a->n_requests, a->n_compat_checks, a->n_compat_waits, a->n_refreshes, a->n_secrets_removed };
        size_t start;

        if (m && json_text_memo_hit(m, t, key, ELEMENTSOF(key), &start))
                return;
        json_text_add_literal(t, "{\"requests\":");
        json_text_add_u64(t, a->n_requests);
        json_text_add_literal(t, ",\"compatibility_checks\":");
        json_text_add_u64(t, a->n_compat_checks);
        json_text_add_literal(t, ",\"compatibility_waits\":");
        json_text_add_u64(t, a->n_compat_waits);
        json_text_add_literal(t, ",\"token_refreshes\":");
        json_text_add_u64(t, a->n_refreshes);
        json_text_add_literal(t, ",\"secrets_removed\":");
        json_text_add_u64(t, a->n_secrets_removed);
        json_text_add_literal(t, "}");
        if (m)
                json_text_memo_keep(m, t, start);
}
