/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the HTTP response headers the upstream client keeps and reads
 * (daemon/upstream-transfer.c, daemon/upstream-engine.c, daemon/storage-op.c):
 *   - each line of the head goes through upstream_on_curl_header() as libcurl hands it over
 *     (one line per call, with its CRLF; a status line starts a new response);
 *   - what was kept is compared with a model of the rules: at most UPSTREAM_HEADERS_MAX lines
 *     and UPSTREAM_HEADER_BYTES_MAX bytes, a line without a colon (or starting with one)
 *     skipped, the name and the value trimmed;
 *   - the headers the daemon reads are looked up: Retry-After through parse_retry_after()
 *     (delta-seconds or an HTTP date), ETag through storage_response_etag(), Location and
 *     Content-Length through upstream_response_header();
 *   - the body after the empty line goes through body_retry_after(), the "retry_after" of a
 *     429's JSON body.
 *
 * parse_retry_after() and body_retry_after() are static in upstream-engine.c, which is
 * therefore compiled into this harness (the archive's copy of it is then never linked).
 *
 * Input: the head (lines up to the first empty one), then the body. A line holding a NUL byte
 * is left out: libcurl fails such a transfer before the callback sees it.
 */
#include "../../daemon/upstream-engine.c"

#include "storage-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* upstream-transfer.c's bounds. */
#define HEADERS_MAX 128
#define HEADER_BYTES_MAX (64u * 1024u)

/* The model: the lines kept, as name and value. */
typedef struct ModelHeader {
        char *name;
        char *value;
} ModelHeader;

typedef struct Model {
        ModelHeader h[HEADERS_MAX];
        size_t n;
        size_t bytes;
} Model;

static void model_clear(Model *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->h[i].name);
                free(m->h[i].value);
        }
        m->n = 0;
        m->bytes = 0;
}

static bool blank(char c) {
        return c == ' ' || c == '\t';
}

/* The rules of upstream_on_curl_header(), written plainly. */
static void model_line(Model *m, const char *line, size_t n) {
        const char *colon;
        size_t nl, vs, ve;

        if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
                model_clear(m);
                return;
        }
        if (m->n >= HEADERS_MAX || m->bytes + n > HEADER_BYTES_MAX)
                return;
        colon = memchr(line, ':', n);
        if (!colon || colon == line)
                return;
        nl = (size_t) (colon - line);
        while (nl > 0 && blank(line[nl - 1]))
                nl--;
        vs = (size_t) (colon - line) + 1;
        while (vs < n && blank(line[vs]))
                vs++;
        ve = n;
        while (ve > vs && (blank(line[ve - 1]) || line[ve - 1] == '\r' || line[ve - 1] == '\n'))
                ve--;
        m->h[m->n].name = strndup(line, nl);
        m->h[m->n].value = strndup(line + vs, ve - vs);
        assert(m->h[m->n].name && m->h[m->n].value);
        m->n++;
        m->bytes += n;
}

/* The value the model gives for a name (the first line of that name), or NULL. */
static const char *model_get(const Model *m, const char *name) {
        for (size_t i = 0; i < m->n; i++)
                if (strcasecmp(m->h[i].name, name) == 0)
                        return m->h[i].value;
        return NULL;
}

/* Compares one header as read by the daemon with the model. */
static const char *check_header(const UpstreamResponse *resp, const Model *m, const char *name) {
        const char *v = upstream_response_header(resp, name), *e = model_get(m, name);

        assert(!v == !e);
        if (v) {
                assert(strcmp(v, e) == 0);
                assert(!blank(v[0]));
        }
        return v;
}

/* Retry-After: delta-seconds (all digits) or an HTTP date, in milliseconds; -1 otherwise. */
static void check_retry_after(const char *v) {
        long long ms = parse_retry_after(v);
        bool digits = !isempty(v);

        assert(ms >= -1);
        if (isempty(v)) {
                assert(ms == -1);
                return;
        }
        for (const char *p = v; *p; p++)
                if (*p < '0' || *p > '9')
                        digits = false;
        if (digits && strlen(v) <= 15)
                assert(ms == strtoll(v, NULL, 10) * 1000);
        else if (digits)
                assert(ms == -1 || ms % 1000 == 0 || ms == LLONG_MAX);
}

/* One input: a response head and body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        UpstreamRequest req = {};
        UpstreamResponse resp = { .request = &req, .body = "", .retry_after_ms = -1 };
        static Model m;
        const char *p = (const char *) data, *end = p + size, *body, *v;
        long long ms;

        /* the head: lines up to the first empty one, each with its terminator */
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);
                char *line;
                bool empty = n == 1 || (n == 2 && p[0] == '\r');

                if (empty) {
                        p += n;
                        break;
                }
                /* libcurl fails a transfer whose head holds a NUL byte ("Nul byte in header")
                 * before any callback sees the line */
                if (memchr(p, '\0', n)) {
                        p += n;
                        continue;
                }
                /* libcurl's buffer is its own: an exact-size copy catches reads past it */
                line = malloc(n);
                assert(line);
                memcpy(line, p, n);
                assert(upstream_on_curl_header(line, 1, n, &req) == n);
                model_line(&m, line, n);
                free(line);
                p += n;

                assert(req.n_resp_headers == m.n);
                assert(req.n_resp_headers <= HEADERS_MAX);
                assert(req.resp_header_bytes <= HEADER_BYTES_MAX);
        }
        body = p;

        for (size_t i = 0; i < m.n; i++) {
                const char *name = req.resp_headers[i];

                assert(strcmp(name, m.h[i].name) == 0);
                assert(strcmp(name + strlen(name) + 1, m.h[i].value) == 0);
                (void) check_header(&resp, &m, name);
        }

        v = check_header(&resp, &m, "Retry-After");
        check_retry_after(v);
        v = storage_response_etag(&resp);
        if (v) {
                assert(strlen(v) <= STORAGE_ETAG_MAX);
                for (const char *q = v; *q; q++)
                        assert((unsigned char) *q >= 0x20 && *q != 0x7f);
        }
        (void) check_header(&resp, &m, "ETag");
        (void) check_header(&resp, &m, "Location");
        (void) check_header(&resp, &m, "Content-Length");

        /* the body of a 429, NUL-terminated as response_append() keeps it */
        req.resp_len = (size_t) (end - body);
        req.resp_body = malloc(req.resp_len + 1);
        assert(req.resp_body);
        memcpy(req.resp_body, body, req.resp_len);
        req.resp_body[req.resp_len] = '\0';
        ms = body_retry_after(&req);
        assert(ms == -1 || (ms >= 0 && ms <= (long long) 1e15));

        free(req.resp_body);
        upstream_response_headers_clear(&req);
        free(req.resp_headers);
        model_clear(&m);
        return 0;
}
