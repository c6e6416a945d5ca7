/* SPDX-License-Identifier: MIT */
/*
 * Proxies for upstream requests. The daemon decides itself which request goes through which
 * proxy and tells libcurl exactly (CURLOPT_PROXY, an empty CURLOPT_NOPROXY), so libcurl never
 * reads the environment on its own: the decision made here is the one daemon.status reports
 * and the one connection errors name.
 *
 * The environment is read as libcurl reads it: http_proxy (lower case only) for http URLs,
 * https_proxy then HTTPS_PROXY for https URLs, else all_proxy then ALL_PROXY; no_proxy then
 * NO_PROXY. A variable that is set but empty means "direct". A value without a scheme is
 * http://. The no_proxy syntax is libcurl's: "*" alone for every host, else a list separated by
 * commas or blanks of host names (each matches itself and its subdomains; a leading dot is
 * ignored) and IPv4/IPv6 addresses with an optional /bits.
 *
 * Proxy URLs may carry "user:password@": they are only ever shown through proxy_mask().
 * Pure functions: no logging, no state.
 */
#pragma once

#include <stdbool.h>

/* Longest proxy URL or no_proxy list accepted. */
#define PROXY_VALUE_MAX 2048u

/* Checks a proxy URL: scheme http, https, socks5 or socks5h, a host, an optional port and
 * "user:password@", nothing after the authority but "/". Returns NULL when good, else what is
 * wrong (static text). */
const char *proxy_check(const char *url);

/* Checks a no_proxy list (printable ASCII, bounded). NULL when good, else static text. */
const char *proxy_check_no_proxy(const char *list);

/* Puts "http://" in front of a value without a scheme, as libcurl does for the environment's
 * values. Returns 0 with a malloc'd *ret, or -ENOMEM. */
int proxy_normalize(const char *value, char **ret);

/* A malloc'd copy of a proxy URL with its "user:password@" (if any) replaced by "***@", or
 * NULL on OOM. */
char *proxy_mask(const char *url);

/* Whether host (as in a URL: IPv6 with or without brackets, trailing dot allowed) is listed in
 * a no_proxy value. NULL or "" lists nothing. */
bool proxy_no_proxy_matches(const char *no_proxy, const char *host);

/* The environment's proxy for URLs of `scheme` ("http" or "https"), as libcurl picks it: the
 * value (pointing into envp; "" means direct) or NULL when no variable is set, and the name of
 * the variable in *ret_name (static text) when ret_name is not NULL. */
const char *proxy_from_env(char *const *envp, const char *scheme, const char **ret_name);

/* The environment's no_proxy or NO_PROXY (pointing into envp), or NULL. */
const char *proxy_no_proxy_from_env(char *const *envp, const char **ret_name);

/* The proxy a request to scheme://host goes through, or NULL when it goes direct: the proxy
 * for its scheme when that is set and not empty, unless no_proxy lists the host. */
const char *proxy_pick(const char *http_proxy, const char *https_proxy, const char *no_proxy,
                       const char *scheme, const char *host);

/* The same for a URL. Returns 0 with *ret (NULL: direct), or -EINVAL for a bad URL. */
int proxy_pick_url(const char *http_proxy, const char *https_proxy, const char *no_proxy,
                   const char *url, const char **ret);
