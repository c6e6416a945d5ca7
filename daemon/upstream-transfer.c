/* SPDX-License-Identifier: MIT */
/*
 * One transfer's libcurl callbacks: the response headers (kept, bounded), the response body
 * (in memory up to the cap, or a 2xx body into the caller's sink), the request body (our copy
 * or the caller's stream) and its rewind; and the header lists libcurl sends. See
 * upstream-internal.h.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "upstream-internal.h"
#include "upstream.h"

/* Response headers kept per attempt, and their total size: enough for any API answer, and a
 * bound on what a misbehaving server can make us store. Extra headers are ignored. */
#define UPSTREAM_HEADERS_MAX 128
#define UPSTREAM_HEADER_BYTES_MAX (64u * 1024u)

/* ---- header lists ---------------------------------------------------------------------- */

/* Appends a copy of line to *l; false on OOM (*l is left as it was). */
bool upstream_slist_append_checked(struct curl_slist **l, const char *line) {
        struct curl_slist *t = curl_slist_append(*l, line);

        if (!t)
                return false;
        *l = t;
        return true;
}

/* Frees a header list whose lines may hold secrets. */
void upstream_slist_erase_and_free(struct curl_slist *l) {
        for (struct curl_slist *i = l; i; i = i->next)
                explicit_bzero_safe(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

/* ---- libcurl callbacks of one request --------------------------------------------------- */

/* Drops the response headers collected so far. */
void upstream_response_headers_clear(UpstreamRequest *req) {
        for (size_t i = 0; i < req->n_resp_headers; i++)
                free(req->resp_headers[i]);
        req->n_resp_headers = 0;
        req->resp_header_bytes = 0;
}

/* libcurl: one response header line. Kept (bounded) for upstream_response_header(). */
size_t upstream_on_curl_header(char *data, size_t size, size_t nitems, void *userdata) {
        UpstreamRequest *req = userdata;
        size_t n = size * nitems, nl, vl;
        const char *colon, *name, *value, *end = data + n;
        char *entry;

        /* A status line starts a new response: interim 1xx answers come first. */
        if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                upstream_response_headers_clear(req);
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
const char *upstream_request_header(const UpstreamRequest *req, const char *name) {
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
size_t upstream_on_curl_write(char *data, size_t size, size_t nmemb, void *userdata) {
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
size_t upstream_on_curl_read(char *buf, size_t size, size_t nitems, void *userdata) {
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
int upstream_on_curl_seek(void *userdata, curl_off_t offset, int origin) {
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

/* ---- public API ------------------------------------------------------------------------- */

/* A response header of the last attempt, or NULL. */
const char *upstream_response_header(const UpstreamResponse *resp, const char *name) {
        if (!resp || !resp->request || !name)
                return NULL;
        return upstream_request_header(resp->request, name);
}
