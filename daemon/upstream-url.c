/* SPDX-License-Identifier: MIT */
/*
 * What the upstream client decides from a URL and a libcurl result alone: method names, the
 * scheme policy, the log form, label and breaker key of a URL, and the one mapping from
 * libcurl's results to negative errnos. See upstream-internal.h.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "upstream-internal.h"
#include "upstream.h"

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
int upstream_url_parse(const char *url, CURLU **ret) {
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
int upstream_url_policy(CURLU *h, bool allow_insecure_http) {
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

        r = upstream_url_parse(url, &h);
        if (r < 0)
                return r;
        return upstream_url_policy(h, allow_insecure_http);
}

/* Derives from a parsed URL (which it strips) the log form of the URL (no credentials, query
 * or fragment), the default statistics label ("METHOD /path"; not when ret_label is NULL) and
 * the breaker key (scheme://host:port). */
int upstream_url_describe(CURLU *h, UpstreamMethod method, char **ret_log, char **ret_label,
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

/* A Location as it may be shown: an absolute URL without credentials, query and fragment;
 * anything libcurl does not parse (a relative or malformed one) up to its query or fragment,
 * and without the "user:password@" of its authority ("scheme://" or "//" at the start).
 * Returns a malloc'd string or NULL. */
static char *location_stripped(const char *location) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        _cleanup_(curl_freep) char *clean = NULL;
        const char *auth = NULL, *sep, *at;
        size_t n = strcspn(location, "?#"), head;
        char *r;

        h = curl_url();
        if (!h)
                return NULL;
        if (curl_url_set(h, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
            curl_url_set(h, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
            curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
            curl_url_set(h, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
            curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
            curl_url_get(h, CURLUPART_URL, &clean, 0) == CURLUE_OK)
                return strdup(clean);

        sep = strstr(location, "//");
        if (sep && (size_t) (sep - location) < n &&
            (sep == location || (sep[-1] == ':' && (size_t) (sep - location) <= strcspn(location, "/"))))
                auth = sep + 2;
        at = auth ? memrchr(auth, '@', MIN(strcspn(auth, "/?#"), n - (size_t) (auth - location))) : NULL;
        if (!at)
                return strndup(location, n);
        /* the part before the credentials, then what follows the '@' */
        head = (size_t) (auth - location);
        r = malloc(n - (size_t) (at + 1 - auth) + 1);
        if (!r)
                return NULL;
        memcpy(r, location, head);
        memcpy(r + head, at + 1, n - (size_t) (at + 1 - location));
        r[n - (size_t) (at + 1 - auth)] = '\0';
        return r;
}

/* The text for an answer in the 3xx range. */
char *upstream_redirect_text(long status, const char *location) {
        _cleanup_free_ char *stripped = NULL, *shown = NULL;
        size_t o = 0;
        char *r = NULL;

        if (isempty(location)) {
                if (asprintf(&r, "redirect not followed (%ld without a Location)", status) < 0)
                        return NULL;
                return r;
        }
        stripped = location_stripped(location);
        if (!stripped)
                return NULL;
        shown = malloc(3 * strlen(stripped) + 4);
        if (!shown)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) stripped; *p; p++) {
                if (*p > 0x20 && *p < 0x7f)
                        shown[o++] = (char) *p;
                else
                        o += (size_t) sprintf(shown + o, "%%%02X", *p);
        }
        if (o > UPSTREAM_LOCATION_SHOWN_MAX) {
                o = UPSTREAM_LOCATION_SHOWN_MAX - 3;
                /* not inside a %XX */
                if (shown[o - 1] == '%')
                        o -= 1;
                else if (shown[o - 2] == '%')
                        o -= 2;
                memcpy(shown + o, "...", 3);
                o += 3;
        }
        shown[o] = '\0';
        if (asprintf(&r, "redirect not followed (%ld to %s)", status, shown) < 0)
                return NULL;
        return r;
}

/* ---- errors ---------------------------------------------------------------------------- */

/* Whether a libcurl result says the connection broke in the middle of the exchange: a reset
 * (-ECONNRESET) and a transient network failure alike. */
static bool curl_error_is_broken_exchange(CURLcode c) {
        switch (c) {
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        default:
                return false;
        }
}

/* Maps a libcurl result to a negative errno: the one place that does. Stream callback errors
 * and our body cap show up as write/read/abort codes, so the request's flags decide those. */
int upstream_curl_error_to_errno(CURLcode c, const UpstreamRequest *req) {
        if (curl_error_is_broken_exchange(c))
                return -ECONNRESET;

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
bool upstream_error_is_network(CURLcode c) {
        if (curl_error_is_broken_exchange(c))
                return true;

        switch (c) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_PROXY:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SSL_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

/* The statistics key of a failed request. */
const char *upstream_error_stats_name(int error) {
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
