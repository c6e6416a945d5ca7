/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>

#include "sim-api.h"
#include "sim-control.h"
#include "sim-echo.h"
#include "sim-http.h"
#include "sim-storage.h"

/* Counter of one route name for /_sim/stats. */
struct RouteCount {
        char *route;
        uint64_t count;
        RouteCount *next;
};

/* One live client connection, tracked through the connection's close callback. */
struct Conn {
        Sim *sim;
        struct evhttp_connection *evcon;
        Conn *prev;
        Conn *next;
};

static const struct {
        int status;
        const char *reason;
} reasons[] = {
        { 200, "OK" },
        { 201, "Created" },
        { 202, "Accepted" },
        { 204, "No Content" },
        { 206, "Partial Content" },
        { 301, "Moved Permanently" },
        { 304, "Not Modified" },
        { 307, "Temporary Redirect" },
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 409, "Conflict" },
        { 411, "Length Required" },
        { 412, "Precondition Failed" },
        { 413, "Payload Too Large" },
        { 416, "Range Not Satisfiable" },
        { 422, "Unprocessable Entity" },
        { 429, "Too Many Requests" },
        { 500, "Internal Server Error" },
        { 501, "Not Implemented" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Gateway Timeout" },
        { 507, "Insufficient Storage" },
};

/* Reason phrase for a status code. */
const char *http_reason(int status) {
        for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
                if (reasons[i].status == status)
                        return reasons[i].reason;
        if (status >= 500)
                return "Server Error";
        if (status >= 400)
                return "Client Error";
        return "Status";
}

/* Name of an evhttp method. */
static const char *method_name(enum evhttp_cmd_type m) {
        switch (m) {
        case EVHTTP_REQ_GET:
                return "GET";
        case EVHTTP_REQ_POST:
                return "POST";
        case EVHTTP_REQ_HEAD:
                return "HEAD";
        case EVHTTP_REQ_PUT:
                return "PUT";
        case EVHTTP_REQ_DELETE:
                return "DELETE";
        case EVHTTP_REQ_OPTIONS:
                return "OPTIONS";
        case EVHTTP_REQ_TRACE:
                return "TRACE";
        case EVHTTP_REQ_CONNECT:
                return "CONNECT";
        case EVHTTP_REQ_PATCH:
                return "PATCH";
        }
        return "UNKNOWN";
}

/* Frees a request context (never the evhttp request itself). Returns NULL. */
static Req *req_free(Req *r) {
        if (!r)
                return NULL;
        if (r->timer)
                event_free(r->timer);
        if (r->watch)
                event_free(r->watch);
        free(r->raw_path);
        free(r->raw_query);
        for (size_t i = 0; i < r->n_segs; i++)
                free(r->segs[i]);
        free(r->segs);
        query_free(r->query, r->n_query);
        free(r->route);
        free(r->action.response);
        free(r->fault);
        free(r->body_copy);
        if (r->parked)
                evbuffer_free(r->parked);
        free(r);
        return NULL;
}

/* Splits the raw path into decoded non-empty segments. Returns 0, -EINVAL or -ENOMEM. */
static int req_split_path(Req *r) {
        for (const char *p = r->raw_path; *p;) {
                const char *slash = strchr(p, '/'), *end = slash ? slash : p + strlen(p);
                char **ns;

                if (end > p) {
                        if (r->n_segs >= 64)
                                return -EINVAL;
                        ns = realloc(r->segs, (r->n_segs + 1) * sizeof(char *));
                        if (!ns)
                                return -ENOMEM;
                        r->segs = ns;
                        r->segs[r->n_segs] = url_decode(p, (size_t) (end - p), false);
                        if (!r->segs[r->n_segs])
                                return -EINVAL;
                        r->n_segs++;
                }
                p = slash ? slash + 1 : end;
        }
        return 0;
}

/* Builds the context of a received request. Returns 0 (*ret set) or -errno; a -EINVAL still
 * returns a context good enough to answer 400 with. */
static int req_new(Sim *sim, struct evhttp_request *ev, Req **ret) {
        const char *uri = evhttp_request_get_uri(ev), *q;
        Req *r;
        int r1 = 0, r2;

        r = calloc(1, sizeof(Req));
        if (!r)
                return -ENOMEM;
        r->sim = sim;
        r->ev = ev;
        r->evcon = evhttp_request_get_connection(ev);
        r->t0 = mono_usec();
        r->method = evhttp_request_get_command(ev);
        r->method_name = method_name(r->method);
        r->auth = "none";
        r->bytes_in = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
        if (!uri)
                uri = "/";
        /* absolute-form request targets: keep the path */
        if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0) {
                const char *p = strchr(strstr(uri, "//") + 2, '/');
                uri = p ? p : "/";
        }
        q = strchr(uri, '?');
        r->raw_path = strndup(uri, q ? (size_t) (q - uri) : strlen(uri));
        r->raw_query = q ? strdup(q + 1) : NULL;
        if (!r->raw_path || (q && !r->raw_query)) {
                req_free(r);
                return -ENOMEM;
        }
        if (r->raw_path[0] != '/')
                r1 = -EINVAL;
        else
                r1 = req_split_path(r);
        r2 = query_parse(r->raw_query, true, &r->query, &r->n_query);
        if (r1 == -ENOMEM || r2 == -ENOMEM) {
                req_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return r1 < 0 ? r1 : r2;
}

/* Sets r->route to "METHOD text". */
int req_set_route(Req *r, const char *text) {
        char *s = strprintf("%s %s", r->method_name, text);

        if (!s)
                return -ENOMEM;
        free(r->route);
        r->route = s;
        return 0;
}

/* True when the pattern matches the request's segments. */
static bool pattern_matches(Req *r, const char *pattern) {
        size_t i = 0;

        for (const char *p = pattern; *p;) {
                const char *slash, *end;
                size_t l;

                if (*p == '/') {
                        p++;
                        continue;
                }
                slash = strchr(p, '/');
                end = slash ? slash : p + strlen(p);
                l = (size_t) (end - p);
                if (i >= r->n_segs)
                        return false;
                if (!(p[0] == '{' && end[-1] == '}') &&
                    (strlen(r->segs[i]) != l || memcmp(r->segs[i], p, l) != 0))
                        return false;
                i++;
                p = end;
        }
        return i == r->n_segs;
}

/* Matches r against a routing table. */
int route_match(Req *r, const Route *table, size_t n) {
        const Route *path_match = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!pattern_matches(r, table[i].pattern))
                        continue;
                /* HEAD is served by the GET route, without the body (as Starlette does) */
                if (table[i].method == r->method ||
                    (r->method == EVHTTP_REQ_HEAD && table[i].method == EVHTTP_REQ_GET)) {
                        if (req_set_route(r, table[i].pattern) < 0)
                                return -ENOMEM;
                        r->handler = table[i].fn;
                        r->flags = table[i].flags;
                        return 0;
                }
                if (!path_match)
                        path_match = &table[i];
        }
        if (!path_match)
                return -ENOENT;
        if (req_set_route(r, path_match->pattern) < 0)
                return -ENOMEM;
        r->flags = path_match->flags;
        return -EMLINK;
}

/* The value of a request header, or NULL. */
const char *req_header(Req *r, const char *name) {
        return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

/* Adds a response header. */
void req_add_header(Req *r, const char *name, const char *value) {
        (void) evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

/* The decoded value of a query parameter, or NULL. */
const char *req_query(Req *r, const char *name) {
        return query_get(r->query, r->n_query, name);
}

/* The request body. */
struct evbuffer *req_body(Req *r) {
        return evhttp_request_get_input_buffer(r->ev);
}

/* The request body as one NUL-terminated string (a copy kept with the request). */
const char *req_body_str(Req *r, size_t *ret_len) {
        struct evbuffer *b = req_body(r);
        size_t n = evbuffer_get_length(b);

        if (!r->body_copy) {
                r->body_copy = malloc(n + 1);
                if (!r->body_copy)
                        return NULL;
                if (evbuffer_copyout(b, r->body_copy, n) != (ev_ssize_t) n) {
                        r->body_copy = mfree(r->body_copy);
                        return NULL;
                }
                r->body_copy[n] = '\0';
                r->body_copy_len = n;
        }
        if (ret_len)
                *ret_len = r->body_copy_len;
        return r->body_copy;
}

/* True when the request comes from a loopback address. */
bool req_is_loopback(Req *r) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;

        if (!sa)
                return false;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) (const void *) sa;
                return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) (const void *) sa;
                const uint8_t *a = in6->sin6_addr.s6_addr;
                if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
                        return true;
                return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && a[12] == 127;
        }
        return false;
}

/* Names of query parameters whose values never reach the log. */
static bool query_name_is_secret(const char *name) {
        static const char *const secret[] = {
                "token", "refresh_token", "access_token", "password", "api_key", "apikey",
                "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
        };
        for (size_t i = 0; i < ELEMENTSOF(secret); i++)
                if (strcasecmp(name, secret[i]) == 0)
                        return true;
        return false;
}

/* Returns the raw query with secret values replaced by REDACTED; NULL on OOM. */
static char *query_redacted(const char *q) {
        struct evbuffer *b;

        if (!q)
                return strdup("");
        b = evbuffer_new();
        if (!b)
                return NULL;
        for (const char *p = q; *p;) {
                const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
                const char *eq = memchr(p, '=', (size_t) (end - p));
                _cleanup_free_ char *name = NULL;

                if (p != q)
                        evbuffer_add(b, "&", 1);
                name = url_decode(p, (size_t) ((eq ? eq : end) - p), true);
                if (eq && name && query_name_is_secret(name))
                        evbuffer_add_printf(b, "%.*s=REDACTED", (int) (eq - p), p);
                else
                        evbuffer_add(b, p, (size_t) (end - p));
                p = amp ? amp + 1 : end;
        }
        return evbuffer_take_string(b);
}

/* Writes o as one line of a JSON-lines log (in one write, so lines never interleave). */
static void write_json_line(int fd, json_object *o, const char *what) {
        _cleanup_free_ char *line = NULL;
        const char *s;
        size_t len;

        s = json_wire(o, &len);
        line = malloc(len + 1);
        if (!line)
                return;
        memcpy(line, s, len);
        line[len] = '\n';
        if (write_all(fd, line, len + 1) < 0)
                sim_log(SIM_LOG_WARNING, "Failed to write the %s: %m, ignoring", what);
}

/* Marks a storage request for the wire log and hashes its body now: the handler may drain
 * the body into a file before the answer. */
static void wire_prepare(Req *r) {
        if (r->sim->wire_fd < 0)
                return;
        r->wire = true;
        evbuffer_sha256_hex(req_body(r), r->body_sha256);
}

/* Appends one JSON line about a storage request to the wire log: the request exactly as
 * evhttp received it (target, every header in order, the body's hash), so that a signature
 * can be recomputed from it by another implementation. */
static void wire_log(Req *r) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
        const char *target = evhttp_request_get_uri(r->ev);
        json_object *headers;
        struct timespec ts;

        if (!r->wire || r->sim->wire_fd < 0)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        o = json_object_new_object();
        headers = json_object_new_array();
        if (!o || !headers) {
                json_object_put(headers);
                return;
        }
        for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
                json_object *pair = json_object_new_array();

                if (!pair)
                        break;
                json_object_array_add(pair, json_object_new_string(h->key));
                json_object_array_add(pair, json_object_new_string(h->value));
                json_object_array_add(headers, pair);
        }
        json_object_object_add(o, "ts", json_object_new_int64((int64_t) ts.tv_sec * 1000 +
                                                              ts.tv_nsec / 1000000));
        json_object_object_add(o, "method", json_object_new_string(r->method_name));
        json_object_object_add(o, "target", json_object_new_string(target ? target : ""));
        json_object_object_add(o, "headers", headers);
        json_object_object_add(o, "body_sha256", json_object_new_string(r->body_sha256));
        json_object_object_add(o, "body_len", json_object_new_int64((int64_t) r->bytes_in));
        json_object_object_add(o, "route", json_string_or_null(r->route));
        json_object_object_add(o, "status", json_object_new_int(r->status));
        write_json_line(r->sim->wire_fd, o, "wire log");
        r->wire = false; /* once */
}

/* Appends one JSON line about r to the request log (and the wire log). */
static void req_log(Req *r) {
        Sim *sim = r->sim;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *query = NULL;
        const char *ua = req_header(r, "User-Agent");
        struct timespec ts;

        sim_log(SIM_LOG_DEBUG, "%s %s -> %d (%s)", r->method_name, r->raw_path, r->status,
                strna(r->route));
        wire_log(r);
        if (sim->log_fd < 0)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        query = query_redacted(r->raw_query);
        o = json_object_new_object();
        if (!o || !query)
                return;
        json_object_object_add(o, "ts", json_object_new_int64((int64_t) ts.tv_sec * 1000 +
                                                              ts.tv_nsec / 1000000));
        json_object_object_add(o, "method", json_object_new_string(r->method_name));
        json_object_object_add(o, "path", json_object_new_string(r->raw_path));
        json_object_object_add(o, "query", json_object_new_string(query));
        json_object_object_add(o, "route", json_string_or_null(r->route));
        json_object_object_add(o, "status", json_object_new_int(r->status));
        json_object_object_add(o, "user_agent", json_string_or_null(ua));
        json_object_object_add(o, "auth", json_object_new_string(r->auth));
        json_object_object_add(o, "bytes_in",
                               json_object_new_int64((int64_t) r->bytes_in));
        json_object_object_add(o, "duration_ms",
                               json_object_new_int64((int64_t) ((mono_usec() - r->t0) / 1000)));
        if (r->fault)
                json_object_object_add(o, "fault", json_object_new_string(r->fault));
        write_json_line(sim->log_fd, o, "request log");
}

/* Moves the first n bytes of *body into a fresh buffer that replaces it. */
static void body_keep_prefix(struct evbuffer **body, size_t n) {
        struct evbuffer *b = evbuffer_new();

        if (!b)
                return;
        evbuffer_remove_buffer(*body, b, n);
        evbuffer_free(*body);
        *body = b;
}

/* On-complete callback of a "short" answer: the peer gets EOF in the middle of the body. */
static void on_short_complete(struct evhttp_request *ev, void *arg _unused_) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
        struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

        if (fd >= 0)
                (void) shutdown(fd, SHUT_RDWR);
}

/* Applies a body fault to an answer about to be sent. */
static void apply_body_fault(Req *r, struct evbuffer **body) {
        static const char invalid[] = "<html><body><h1>avatar-sim: not JSON</h1></body></html>\n";
        size_t len = evbuffer_get_length(*body);
        char buf[32];

        switch (r->body_fault) {
        case BODY_FAULT_TRUNCATED:
                body_keep_prefix(body, len / 2);
                break;
        case BODY_FAULT_INVALID:
                evbuffer_drain(*body, len);
                evbuffer_add(*body, invalid, STRLEN(invalid));
                break;
        case BODY_FAULT_SHORT:
                snprintf(buf, sizeof(buf), "%zu", len);
                req_add_header(r, "Content-Length", buf);
                body_keep_prefix(body, len / 2);
                evhttp_request_set_on_complete_cb(r->ev, on_short_complete, NULL);
                break;
        default:
                break;
        }
}

/* Sends the answer. Takes ownership of body. */
static void req_hold(Req *r);

void req_reply(Req *r, int status, const char *content_type, struct evbuffer *body) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(r->ev);

        assert(!r->replied);
        if (!body)
                body = evbuffer_new();
        if (!body) {
                req_drop(r);
                return;
        }
        if (!evhttp_find_header(out, "Content-Type"))
                req_add_header(r, "Content-Type", content_type ? content_type : "text/plain");
        if (r->method == EVHTTP_REQ_HEAD || status == 204 || status == 304)
                evbuffer_drain(body, evbuffer_get_length(body));
        else {
                /* a 2xx echo fault changes the answer the handler made */
                if (r->action.echo != ECHO_NONE && !echo_shape_is_error((EchoShape) r->action.echo) &&
                    status >= 200 && status < 300 && content_type && strstr(content_type, "json"))
                        body = echo_body(r, (EchoShape) r->action.echo, body);
                if (r->body_fault != BODY_FAULT_NONE && evbuffer_get_length(body) > 0)
                        apply_body_fault(r, &body);
        }
        r->replied = true;
        r->status = status;
        if (r->hold_answer && r->hold_id > 0) {
                /* the request took effect; its answer waits for /_sim/release */
                r->parked = body;
                req_hold(r);
                return;
        }
        /* before the answer leaves: a client that got it finds its request in the log */
        wire_log(r);
        evhttp_send_reply(r->ev, status, http_reason(status), body);
        evbuffer_free(body);
        req_log(r);
}

/* Sends a JSON answer. Takes ownership of obj. */
void req_reply_json(Req *r, int status, json_object *obj) {
        struct evbuffer *b = evbuffer_new();
        const char *s;
        size_t len;

        if (!b || !obj) {
                if (b)
                        evbuffer_free(b);
                json_object_put(obj);
                req_reply(r, 500, "text/plain", NULL);
                return;
        }
        s = json_wire(obj, &len);
        evbuffer_add(b, s, len);
        json_object_put(obj);
        req_reply(r, status, "application/json", b);
}

/* Sends {"message": "..."}. */
void req_reply_message(Req *r, int status, const char *fmt, ...) {
        json_object *o = json_object_new_object();
        char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (o)
                json_object_object_add(o, "message", json_object_new_string(msg ? msg : "error"));
        free(msg);
        req_reply_json(r, status, o);
}

/* Sends {"detail": "..."}. */
void req_reply_detail(Req *r, int status, const char *detail) {
        json_object *o = json_object_new_object();

        if (o)
                json_object_object_add(o, "detail", json_object_new_string(detail));
        req_reply_json(r, status, o);
}

/* Sends {"detail": {"message": "..."}}. */
void req_reply_detail_message(Req *r, int status, const char *message) {
        json_object *o = json_object_new_object(), *d = json_object_new_object();

        if (o && d) {
                json_object_object_add(d, "message", json_object_new_string(message));
                json_object_object_add(o, "detail", d);
                d = NULL;
        }
        json_object_put(d);
        req_reply_json(r, status, o);
}

/* Sends a FastAPI 422 with one error. */
void req_reply_422(Req *r, const char *where, const char *field, const char *msg,
                   const char *type) {
        json_object *o = json_object_new_object(), *list = json_object_new_array(),
                    *e = json_object_new_object(), *loc = json_object_new_array();

        if (!o || !list || !e || !loc) {
                json_object_put(o);
                json_object_put(list);
                json_object_put(e);
                json_object_put(loc);
                req_reply(r, 500, "text/plain", NULL);
                return;
        }
        json_object_array_add(loc, json_object_new_string(where));
        if (field)
                json_object_array_add(loc, json_object_new_string(field));
        json_object_object_add(e, "type", json_object_new_string(type));
        json_object_object_add(e, "loc", loc);
        json_object_object_add(e, "msg", json_object_new_string(msg));
        json_object_array_add(list, e);
        json_object_object_add(o, "detail", list);
        req_reply_json(r, 422, o);
}

/* Drops the connection without an answer. */
void req_drop(Req *r) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);

        r->replied = true;
        r->status = 0;
        req_log(r);
        /* Safe from the request callback: evhttp does not touch the connection after the
         * callback of an incoming request returns. It frees the request with it. */
        if (evcon)
                evhttp_connection_free(evcon);
        else
                evhttp_request_free(r->ev);
}

/* Parses the body as JSON. */
int req_json_body(Req *r, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        struct json_tokener *tok;
        enum json_tokener_error jerr;
        const char *s;
        size_t len, end;
        char pos[32];

        if (evbuffer_get_length(req_body(r)) > SIM_MAX_API_BODY) {
                req_reply_detail(r, 413, "Request body too large");
                return -E2BIG;
        }
        s = req_body_str(r, &len);
        if (!s) {
                req_reply_message(r, 500, "Out of memory");
                return -ENOMEM;
        }
        tok = json_tokener_new_ex(SIM_JSON_DEPTH);
        if (!tok) {
                req_reply_message(r, 500, "Out of memory");
                return -ENOMEM;
        }
        o = json_tokener_parse_ex(tok, s, (int) len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (jerr == json_tokener_continue)
                jerr = json_tokener_error_parse_eof;
        /* Trailing whitespace is fine, anything else after the value is not. */
        while (o && jerr == json_tokener_success && end < len && strchr(" \t\r\n", s[end]))
                end++;
        if (!o || jerr != json_tokener_success || end != len) {
                snprintf(pos, sizeof(pos), "%zu", end);
                req_reply_422(r, "body", pos, "JSON decode error", "json_invalid");
                return -EINVAL;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* Counts one request under its route name. */
static void stats_count(Sim *sim, const char *route) {
        RouteCount *c;

        sim->n_requests++;
        if (!route)
                return;
        for (c = sim->routes; c; c = c->next)
                if (streq(c->route, route)) {
                        c->count++;
                        return;
                }
        if (sim->n_routes >= SIM_MAX_ROUTES) {
                route = "OTHER";
                for (c = sim->routes; c; c = c->next)
                        if (streq(c->route, route)) {
                                c->count++;
                                return;
                        }
        }
        c = calloc(1, sizeof(RouteCount));
        if (!c)
                return;
        c->route = strdup(route);
        if (!c->route) {
                free(c);
                return;
        }
        c->count = 1;
        c->next = sim->routes;
        sim->routes = c;
        sim->n_routes++;
}

/* Builds the {"route": count} map of /_sim/stats. */
json_object *http_stats_routes(Sim *sim) {
        json_object *o = json_object_new_object();

        for (RouteCount *c = sim->routes; o && c; c = c->next)
                json_object_object_add(o, c->route, json_object_new_int64((int64_t) c->count));
        return o;
}

/* Forgets the per-route counters. */
void http_stats_reset(Sim *sim) {
        while (sim->routes) {
                RouteCount *c = sim->routes;
                sim->routes = c->next;
                free(c->route);
                free(c);
        }
        sim->n_routes = 0;
        sim->n_requests = 0;
}

/* The client of a delayed or held request went away before its answer: the request is
 * logged as dropped (status 0) and freed. */
static void req_gone(Req *r) {
        struct evhttp_request *ev = r->ev;

        r->replied = true;
        r->status = 0;
        req_log(r);
        /* A request still on its connection is freed with it; one that evhttp detached from a
         * failed connection is left to us. */
        if (!evhttp_request_get_connection(ev))
                evhttp_request_free(ev);
        req_free(r);
}

/* Frees the delayed and held requests of a connection that is going away, so none is answered
 * on a freed connection or left behind. */
static void waiting_forget_conn(Sim *sim, struct evhttp_connection *evcon) {
        Req **lists[] = { &sim->delayed, &sim->held };

        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                for (Req **p = lists[i]; *p;) {
                        Req *r = *p;

                        if (r->evcon != evcon) {
                                p = &r->delayed_next;
                                continue;
                        }
                        *p = r->delayed_next;
                        if (r->hold_id > 0) {
                                sim->n_held--;
                                fault_hold_end(sim, r->hold_id);
                        }
                        req_gone(r);
                }
}

/* Close callback of a tracked connection. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg) {
        Conn *c = arg;
        Sim *sim = c->sim;

        waiting_forget_conn(sim, evcon);
        if (c->prev)
                c->prev->next = c->next;
        else
                sim->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        sim->n_conns--;
        free(c);
}

/* Tracks the connection of r. Returns 0, or -EMFILE when the connection cap is reached and
 * enforced (control calls are never refused, so tests can always look and steer). */
static int conn_track(Sim *sim, Req *r, bool enforce) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        Conn *c;

        if (!evcon)
                return 0;
        for (c = sim->conns; c; c = c->next)
                if (c->evcon == evcon)
                        return 0;
        if (enforce && sim->n_conns >= sim->cfg.max_connections)
                return -EMFILE;
        c = calloc(1, sizeof(Conn));
        if (!c)
                return -ENOMEM;
        c->sim = sim;
        c->evcon = evcon;
        c->next = sim->conns;
        if (sim->conns)
                sim->conns->prev = c;
        sim->conns = c;
        sim->n_conns++;
        evhttp_connection_set_closecb(evcon, on_conn_close, c);
        return 0;
}

/* Runs a routed request: injected answer, authentication check, then the handler. */
static void req_run(Req *r) {
        FaultAction *a = &r->action;

        if (a->drop) {
                req_drop(r);
                return;
        }
        if (a->status > 0) {
                fault_reply(r);
                return;
        }
        if (!r->handler) {
                req_reply_message(r, 500, "avatar-sim: no handler for %s", strna(r->route));
                return;
        }
        r->handler(r);
        if (!r->replied)
                req_reply_message(r, 500, "avatar-sim: %s did not answer", strna(r->route));
}

/* Removes r from the list of delayed requests. */
static void delayed_unlink(Sim *sim, Req *r) {
        for (Req **p = &sim->delayed; *p; p = &(*p)->delayed_next)
                if (*p == r) {
                        *p = r->delayed_next;
                        return;
                }
}

/* Timer callback: the injected latency of r is over. */
static void on_delay_done(evutil_socket_t fd _unused_, short what _unused_, void *arg) {
        Req *r = arg;

        delayed_unlink(r->sim, r);
        req_run(r);
        if (!r->parked)
                req_free(r);
}

/* Lets a routed request go on: answered after its injected latency, or now. Frees r. */
static void req_proceed(Req *r) {
        Sim *sim = r->sim;

        if (r->latency_ms > 0) {
                struct timeval tv = {
                        .tv_sec = r->latency_ms / 1000,
                        .tv_usec = (r->latency_ms % 1000) * 1000,
                };
                r->timer = evtimer_new(sim->base, on_delay_done, r);
                if (r->timer && evtimer_add(r->timer, &tv) == 0) {
                        r->delayed_next = sim->delayed;
                        sim->delayed = r;
                        return;
                }
        }
        req_run(r);
        /* an answer held after the request took effect is freed once sent */
        if (!r->parked)
                req_free(r);
}

/* Event on a held request's socket: its client closed the connection (or sent more). */
static void on_held_socket(evutil_socket_t fd, short what, void *arg) {
        Req *r = arg;
        ssize_t n;
        char c;

        if (!(what & EV_CLOSED)) {
                n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n > 0) {
                        /* a pipelined request, not the end: evhttp reads it after the answer;
                         * stop watching rather than spin on it */
                        (void) event_del(r->watch);
                        return;
                }
        }
        /* The close callback frees r (waiting_forget_conn), and the request with the
         * connection. */
        evhttp_connection_free(r->evcon);
}

/* Parks r unanswered, without a timer, at the end of the held list: only /_sim/release (or
 * the removal of its rule) lets it go on. While it waits for its answer, evhttp does not read
 * the connection and would not notice its client leave; a watch on the socket does, so the
 * request is freed then. */
static void req_hold(Req *r) {
        Sim *sim = r->sim;
        struct bufferevent *bev = r->evcon ? evhttp_connection_get_bufferevent(r->evcon) : NULL;
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        short what = event_base_get_features(sim->base) & EV_FEATURE_EARLY_CLOSE ? EV_CLOSED
                                                                                 : EV_READ;
        Req **p;

        if (fd >= 0)
                r->watch = event_new(sim->base, fd, what | EV_PERSIST, on_held_socket, r);
        if (!r->watch || event_add(r->watch, NULL) < 0)
                sim_log(SIM_LOG_WARNING, "Cannot watch the connection of a held request, "
                        "a client leaving goes unnoticed");
        for (p = &sim->held; *p; p = &(*p)->delayed_next)
                ;
        r->delayed_next = NULL;
        *p = r;
        sim->n_held++;
}

/* Sends the answer a hold_answer rule parked, then frees r. */
static void req_send_parked(Req *r) {
        struct evbuffer *body = TAKE_PTR(r->parked);

        wire_log(r);
        evhttp_send_reply(r->ev, r->status, http_reason(r->status), body);
        evbuffer_free(body);
        req_log(r);
        req_free(r);
}

/* Lets held requests go on. */
size_t http_release(Sim *sim, unsigned fault_id, const char *route) {
        Req *go = NULL, **tail = &go;
        size_t n = 0;

        /* Off the list first, in order: answering one request must not change the list we
         * walk. */
        for (Req **p = &sim->held; *p;) {
                Req *r = *p;

                if ((fault_id > 0 && r->hold_id != fault_id) ||
                    (route && !streq_ptr(route, r->route))) {
                        p = &r->delayed_next;
                        continue;
                }
                *p = r->delayed_next;
                r->delayed_next = NULL;
                *tail = r;
                tail = &r->delayed_next;
                sim->n_held--;
                n++;
        }
        while (go) {
                Req *r = go;

                go = r->delayed_next;
                r->delayed_next = NULL;
                if (r->watch) {
                        event_free(r->watch);
                        r->watch = NULL;
                }
                fault_hold_end(sim, r->hold_id);
                r->hold_id = 0;
                if (r->parked)
                        req_send_parked(r);
                else
                        req_proceed(r);
        }
        return n;
}

/* Handler used when the request target cannot be parsed. */
static void on_bad_target(Req *r) {
        req_reply_detail(r, 400, "Invalid request target");
}

/* evhttp callback for every request. */
static void on_request(struct evhttp_request *ev, void *userdata) {
        Sim *sim = userdata;
        const char *ua;
        Req *r = NULL;
        int k;

        k = req_new(sim, ev, &r);
        if (k == -ENOMEM) {
                evhttp_send_error(ev, 500, "Out of memory");
                return;
        }
        ua = req_header(r, "User-Agent");
        if (ua) {
                free(sim->last_user_agent);
                sim->last_user_agent = strdup(ua);
        }
        if (k < 0) {
                r->handler = on_bad_target;
                (void) req_set_route(r, "{invalid}");
        } else if (r->n_segs > 0 && streq(r->segs[0], "_sim")) {
                r->control = true;
                control_route(r);
        } else if (r->n_segs > 0 && streq(r->segs[0], "storage")) {
                wire_prepare(r);
                storage_route(r);
        } else
                api_route(r);
        stats_count(sim, r->route);

        if (conn_track(sim, r, !r->control) < 0) {
                req_add_header(r, "Connection", "close");
                req_reply_message(r, 503, "avatar-sim: too many connections");
                req_free(r);
                return;
        }
        if (!r->control && k >= 0)
                fault_match(sim, r);
        /* (a hold of the answer parks the request once its handler has answered) */
        if (r->hold_id > 0 && !r->hold_answer) {
                req_hold(r);
                return;
        }
        req_proceed(r);
}

/* Starts listening and serving. */
int http_start(Sim *sim) {
        struct evhttp_bound_socket *bound;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        const char *host = sim->cfg.listen;
        bool v6;

        sim->http = evhttp_new(sim->base);
        if (!sim->http)
                return -ENOMEM;
        evhttp_set_gencb(sim->http, on_request, sim);
        evhttp_set_max_body_size(sim->http, SIM_MAX_BODY);
        evhttp_set_max_headers_size(sim->http, SIM_MAX_HEADERS);
        evhttp_set_timeout(sim->http, 300);
        evhttp_set_default_content_type(sim->http, "text/plain");
        evhttp_set_allowed_methods(sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
                                                      EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                                      EVHTTP_REQ_DELETE);
        bound = evhttp_bind_socket_with_handle(sim->http, host, (uint16_t) sim->cfg.port);
        if (!bound)
                return errno > 0 ? -errno : -EADDRNOTAVAIL;
        if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *) &ss, &sl) < 0)
                return -errno;
        v6 = ss.ss_family == AF_INET6;
        sim->port = ntohs(v6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                             : ((struct sockaddr_in *) &ss)->sin_port);
        if (sim->cfg.public_url) {
                size_t l = strlen(sim->cfg.public_url);
                while (l > 0 && sim->cfg.public_url[l - 1] == '/')
                        l--;
                sim->public_base = strndup(sim->cfg.public_url, l);
        } else
                sim->public_base = strprintf(v6 ? "http://[%s]:%d" : "http://%s:%d", host,
                                             sim->port);
        return sim->public_base ? 0 : -ENOMEM;
}

/* Stops serving and frees everything the HTTP layer holds. */
void http_stop(Sim *sim) {
        /* Delayed and held requests are never answered: evhttp_free() frees them with their
         * connections, our contexts go first. */
        while (sim->delayed) {
                Req *r = sim->delayed;
                sim->delayed = r->delayed_next;
                req_free(r);
        }
        while (sim->held) {
                Req *r = sim->held;
                sim->held = r->delayed_next;
                req_free(r);
        }
        sim->n_held = 0;
        if (sim->http)
                evhttp_free(sim->http);
        sim->http = NULL;
        /* evhttp_free() ran the close callback of every connection; forget any leftover */
        while (sim->conns) {
                Conn *c = sim->conns;
                sim->conns = c->next;
                free(c);
        }
        sim->n_conns = 0;
        http_stats_reset(sim);
        free(sim->public_base);
        sim->public_base = NULL;
        free(sim->last_user_agent);
        free(sim->last_check_client_user_agent);
}
