/* SPDX-License-Identifier: MIT */
/*
 * A new upstream request: the call copied, its header list (the caller's lines validated,
 * our defaults, the payload hash of a signed request), what SigV4 signing needs from the URL,
 * the proxy it goes through, and the libcurl easy handle configured once for all its
 * attempts. See upstream-internal.h.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "macro.h"
#include "sha256.h"
#include "sigv4.h"
#include "proxy.h"
#include "upstream-internal.h"
#include "upstream.h"

/* ---- building a request ---------------------------------------------------------------- */

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
                    !upstream_slist_append_checked(&req->headers, line))
                        return -ENOMEM;
        }
        return 0;
}

/* Configures the easy handle; per-attempt timeouts are set by upstream_attempt_start(). */
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
                if (curl_easy_setopt(e, CURLOPT_READFUNCTION, upstream_on_curl_read) ||
                    curl_easy_setopt(e, CURLOPT_READDATA, req) ||
                    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, upstream_on_curl_seek) ||
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
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                             req->own_connection ? (long) CURL_HTTP_VERSION_1_1
                                                 : (long) CURL_HTTP_VERSION_2TLS) ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, u->opts.verify_ssl ? 1L : 0L) ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, u->opts.verify_ssl ? 2L : 0L) ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, u->opts.user_agent) ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream_on_curl_header) ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, req) ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream_on_curl_write) ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, req))
                return -EINVAL;

        if (u->opts.ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, u->opts.ca_file))
                return -EINVAL;
        /* The proxy is ours to choose (upstream_request_new): an explicit "" keeps libcurl
         * from reading the environment's *_proxy, an empty no_proxy its no_proxy. An https
         * proxy is verified as the server is. */
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
         * and would queue behind a slow one, nor for a request that wants a connection of
         * its own (HTTP/1.1: libcurl neither multiplexes it nor puts it on a connection in
         * use, HTTP/2 ones included). */
        if (streq(protocols, "https") && !req->own_connection &&
            curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L))
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
 * (before upstream_url_describe() strips its query): the Host line we will send ourselves, so
 * that the host signed is the host sent, and the path and query as libcurl sends them. */
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
int upstream_request_new(Upstream *u, const UpstreamCall *call, CURLU *url, UpstreamRequest **ret) {
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
        req->own_connection = call->own_connection;
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

        req->timer = evtimer_new(u->base, upstream_on_request_timer, req);
        req->url = strdup(call->url);
        if (!req->timer || !req->url)
                return -ENOMEM;
        if (call->aws_sigv4) {
                r = request_sign_setup(req, call->aws_sigv4, url);
                if (r < 0)
                        return r;
        }
        r = upstream_url_describe(url, call->method, &req->url_log,
                                  call->label ? NULL : &req->label, &key);
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

        req->breaker = upstream_breaker_get(u, key);
        if (req->breaker)
                req->breaker->users++;
        return 0;
}
