/* SPDX-License-Identifier: MIT */
/* Proxies for upstream requests: checks, masking, the environment, no_proxy. See proxy.h. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "proxy.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);

/* Frees a string libcurl allocated, for _cleanup_. */
static void curl_freep(char **p) {
        curl_free(*p);
}

static const char *const proxy_schemes[] = { "http", "https", "socks5", "socks5h" };

/* Whether a string is printable ASCII without blanks. */
static bool is_printable_word(const char *s) {
        for (; *s; s++)
                if (*s <= 0x20 || *s > 0x7e)
                        return false;
        return true;
}

/* Checks a proxy URL. */
const char *proxy_check(const char *url) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL,
                                   *fragment = NULL;
        bool known = false;

        if (isempty(url))
                return "must not be empty";
        if (strlen(url) > PROXY_VALUE_MAX)
                return "must be at most 2048 characters";
        if (!is_printable_word(url))
                return "must be printable ASCII without blanks";
        if (!strstr(url, "://"))
                return "must be a URL with a scheme (http://, https://, socks5:// or socks5h://)";
        h = curl_url();
        if (!h)
                return "out of memory";
        if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
                return "is not a URL";
        for (size_t i = 0; i < ELEMENTSOF(proxy_schemes); i++)
                if (strcasecmp(scheme, proxy_schemes[i]) == 0)
                        known = true;
        if (!known)
                return "must use the scheme http, https, socks5 or socks5h";
        if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || isempty(host))
                return "must name a host";
        if (curl_url_get(h, CURLUPART_PATH, &path, 0) == CURLUE_OK && !isempty(path) &&
            !streq(path, "/"))
                return "must not have a path";
        if (curl_url_get(h, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query)
                return "must not have a query";
        if (curl_url_get(h, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK && fragment)
                return "must not have a fragment";
        return NULL;
}

/* Checks a no_proxy list. */
const char *proxy_check_no_proxy(const char *list) {
        if (strlen(list) > PROXY_VALUE_MAX)
                return "must be at most 2048 characters";
        for (const char *p = list; *p; p++)
                if ((*p < 0x20 && *p != '\t') || *p > 0x7e)
                        return "must be printable ASCII";
        return NULL;
}

/* Puts http:// in front of a value without a scheme. */
int proxy_normalize(const char *value, char **ret) {
        char *n;

        if (strstr(value, "://"))
                n = strdup(value);
        else if (asprintf(&n, "http://%s", value) < 0)
                n = NULL;
        if (!n)
                return -ENOMEM;
        *ret = n;
        return 0;
}

/* A copy of a proxy URL with its userinfo masked. */
char *proxy_mask(const char *url) {
        const char *auth, *end, *at = NULL;
        char *m;

        auth = strstr(url, "://");
        auth = auth ? auth + 3 : url;
        end = auth + strcspn(auth, "/?#");
        for (const char *p = auth; p < end; p++)
                if (*p == '@')
                        at = p;
        if (!at)
                return strdup(url);
        if (asprintf(&m, "%.*s***%s", (int) (auth - url), url, at) < 0)
                return NULL;
        return m;
}

/* Whether an address matches addr/bits (bits 0: the whole address), both of `family`. */
static bool cidr_match(int family, const char *host, const char *net, unsigned bits) {
        unsigned char a[16], b[16];
        unsigned len = family == AF_INET ? 4 : 16, bytes, rest;

        if (inet_pton(family, host, a) != 1 || inet_pton(family, net, b) != 1)
                return false;
        if (bits == 0 || bits > len * 8)
                bits = len * 8;
        bytes = bits / 8;
        rest = bits % 8;
        if (memcmp(a, b, bytes) != 0)
                return false;
        if (rest == 0)
                return true;
        return ((a[bytes] ^ b[bytes]) & (unsigned char) (0xff << (8 - rest))) == 0;
}

/* Whether host is listed in no_proxy. */
bool proxy_no_proxy_matches(const char *no_proxy, const char *host) {
        char name[256];
        size_t n;
        int family = 0;
        unsigned char probe[16];

        if (isempty(no_proxy) || isempty(host))
                return false;
        if (streq(no_proxy, "*"))
                return true;

        n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
                host++;
                n -= 2;
        }
        if (n >= sizeof(name))
                return false;
        memcpy(name, host, n);
        name[n] = '\0';
        if (inet_pton(AF_INET, name, probe) == 1)
                family = AF_INET;
        else if (inet_pton(AF_INET6, name, probe) == 1)
                family = AF_INET6;
        else if (n > 0 && name[n - 1] == '.')
                name[--n] = '\0';

        for (const char *p = no_proxy; *p;) {
                const char *tok;
                size_t tl;

                p += strspn(p, ", \t");
                tok = p;
                tl = strcspn(p, ", \t");
                p += tl;
                if (tl == 0)
                        continue;

                if (family != 0) {
                        char net[64];
                        const char *slash;
                        unsigned bits = 0;

                        if (tl >= sizeof(net))
                                continue;
                        memcpy(net, tok, tl);
                        net[tl] = '\0';
                        slash = strchr(net, '/');
                        if (slash) {
                                bits = (unsigned) strtoul(slash + 1, NULL, 10);
                                net[slash - net] = '\0';
                        }
                        if (net[0] == '[' && net[strlen(net) - 1] == ']') {
                                memmove(net, net + 1, strlen(net));
                                net[strlen(net) - 1] = '\0';
                        }
                        if (cidr_match(family, name, net, bits))
                                return true;
                        continue;
                }

                if (tok[0] == '.') {
                        tok++;
                        tl--;
                }
                if (tl > 0 && tok[tl - 1] == '.')
                        tl--;
                if (tl == 0)
                        continue;
                if (tl == n && strncasecmp(tok, name, n) == 0)
                        return true;
                if (tl < n && name[n - tl - 1] == '.' && strncasecmp(tok, name + n - tl, tl) == 0)
                        return true;
        }
        return false;
}

/* The value of an environment variable (exact name), or NULL. */
static const char *env_get(char *const *envp, const char *name) {
        size_t l = strlen(name);

        for (char *const *e = envp; e && *e; e++)
                if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}

/* The value of the first of names that is set, and its name in *ret_name. */
static const char *env_get_first(char *const *envp, const char *const *names, size_t count,
                                 const char **ret_name) {
        for (size_t i = 0; i < count; i++) {
                const char *v = env_get(envp, names[i]);

                if (v) {
                        if (ret_name)
                                *ret_name = names[i];
                        return v;
                }
        }
        if (ret_name)
                *ret_name = NULL;
        return NULL;
}

/* The environment's proxy for a scheme, as libcurl picks it. */
const char *proxy_from_env(char *const *envp, const char *scheme, const char **ret_name) {
        /* http_proxy has no upper-case form: HTTP_PROXY can be set by a CGI request */
        static const char *const http_names[] = { "http_proxy", "all_proxy", "ALL_PROXY" };
        static const char *const https_names[] = { "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };

        if (strcasecmp(scheme, "https") == 0)
                return env_get_first(envp, https_names, ELEMENTSOF(https_names), ret_name);
        return env_get_first(envp, http_names, ELEMENTSOF(http_names), ret_name);
}

/* The environment's no_proxy. */
const char *proxy_no_proxy_from_env(char *const *envp, const char **ret_name) {
        static const char *const names[] = { "no_proxy", "NO_PROXY" };

        return env_get_first(envp, names, ELEMENTSOF(names), ret_name);
}

/* The proxy a request to scheme://host goes through. */
const char *proxy_pick(const char *http_proxy, const char *https_proxy, const char *no_proxy,
                       const char *scheme, const char *host) {
        const char *p = strcasecmp(scheme, "https") == 0 ? https_proxy : http_proxy;

        if (isempty(p) || proxy_no_proxy_matches(no_proxy, host))
                return NULL;
        return p;
}

/* The same for a URL. */
int proxy_pick_url(const char *http_proxy, const char *https_proxy, const char *no_proxy,
                   const char *url, const char **ret) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL;

        if (isempty(http_proxy) && isempty(https_proxy)) {
                *ret = NULL;
                return 0;
        }
        h = curl_url();
        if (!h)
                return -ENOMEM;
        if (isempty(url) || curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                return -EINVAL;
        *ret = proxy_pick(http_proxy, https_proxy, no_proxy, scheme, host);
        return 0;
}
