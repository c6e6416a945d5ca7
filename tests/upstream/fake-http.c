/* SPDX-License-Identifier: MIT */
/*
 * A scripted evhttp server for the upstream tests. See fake-http.h.
 *
 * Lifetime notes for libevent 2.1's evhttp: while a request waits for our answer evhttp does
 * not read from its connection, so a client that goes away is noticed only when we write.
 * A write error frees the connection together with a request we have already answered, so a
 * request is never touched after its final evhttp_send_reply*(). A chunked reply cut short
 * leaves the request detached (no connection); evhttp_send_reply_end() then frees it.
 * Requests we never answer (FAKE_HANG, FAKE_HOLD never released) are freed by evhttp_free()
 * with their connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "fake-http.h"
#include "macro.h"

/* A step with its strings copied. */
typedef struct Step {
        FakeStep s;
        char *headers[FAKE_HEADERS_MAX];
        char *body;
} Step;

typedef struct Route {
        char *path;
        Step *steps;
        size_t n_steps;
        size_t next;
        TAILQ_ENTRY(Route) link;
} Route;

/* An answer in progress: waiting for its delay or its release, or streaming chunks. */
typedef struct Pending {
        FakeHttp *fake;
        struct evhttp_request *req;
        const Step *step;
        const char *path;       /* the route's */
        struct event *timer;    /* NULL while held (FAKE_HOLD) */
        size_t sent;            /* FAKE_STREAM: body bytes sent */
        bool started;           /* FAKE_STREAM: headers sent */
        TAILQ_ENTRY(Pending) link;
} Pending;

struct FakeHttp {
        struct event_base *base;
        struct evhttp *http;
        unsigned port;
        TAILQ_HEAD(, Route) routes;
        TAILQ_HEAD(, Pending) pending;
        FakeRequest *requests;
        size_t n_requests;
        unsigned *ports;        /* distinct client ports seen */
        size_t n_ports;
};

/* Frees a recorded request's strings. */
static void fake_request_done(FakeRequest *r) {
        free(r->method);
        free(r->uri);
        free(r->path);
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->names[i]);
                free(r->values[i]);
        }
        free(r->names);
        free(r->values);
        free(r->body);
}

/* Frees a pending answer (the evhttp request is not ours to free). */
static void pending_free(Pending *p) {
        TAILQ_REMOVE(&p->fake->pending, p, link);
        if (p->timer)
                event_free(p->timer);
        free(p);
}

/* The name of an evhttp command. */
static const char *command_name(enum evhttp_cmd_type t) {
        switch (t) {
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
        default:
                return "?";
        }
}

/* Records one request. */
static int record(FakeHttp *f, struct evhttp_request *req) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        struct evkeyval *kv;
        FakeRequest *n, *r;
        const char *uri = evhttp_request_get_uri(req);
        size_t i = 0, len;
        char *addr = NULL;
        ev_uint16_t port = 0;
        bool seen = false;

        n = realloc(f->requests, (f->n_requests + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        f->requests = n;
        r = &f->requests[f->n_requests++];
        *r = (FakeRequest) {};

        r->method = strdup(command_name(evhttp_request_get_command(req)));
        r->uri = strdup(uri ?: "");
        r->path = strndup(uri ?: "", strcspn(uri ?: "", "?"));
        TAILQ_FOREACH(kv, h, next)
                r->n_headers++;
        r->names = calloc(r->n_headers + 1, sizeof(char *));
        r->values = calloc(r->n_headers + 1, sizeof(char *));
        if (!r->method || !r->uri || !r->path || !r->names || !r->values)
                return -ENOMEM;
        TAILQ_FOREACH(kv, h, next) {
                r->names[i] = strdup(kv->key);
                r->values[i] = strdup(kv->value);
                i++;
        }
        len = evbuffer_get_length(in);
        r->body = malloc(len + 1);
        if (!r->body)
                return -ENOMEM;
        if (len > 0)
                evbuffer_copyout(in, r->body, len);
        r->body[len] = '\0';
        r->body_len = len;

        if (conn) {
                evhttp_connection_get_peer(conn, &addr, &port);
                r->client_port = port;
        }
        for (size_t k = 0; k < f->n_ports; k++)
                if (f->ports[k] == r->client_port)
                        seen = true;
        if (!seen) {
                unsigned *p = realloc(f->ports, (f->n_ports + 1) * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                f->ports = p;
                f->ports[f->n_ports++] = r->client_port;
        }
        return 0;
}

/* Adds the step's headers to the reply. */
static void add_headers(struct evhttp_request *req, const Step *st) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);

        for (size_t i = 0; i < FAKE_HEADERS_MAX && st->headers[i]; i++) {
                char name[256];
                const char *colon = strchr(st->headers[i], ':'), *v;
                size_t nl;

                if (!colon)
                        continue;
                nl = MIN((size_t) (colon - st->headers[i]), sizeof(name) - 1);
                memcpy(name, st->headers[i], nl);
                name[nl] = '\0';
                for (v = colon + 1; *v == ' '; v++)
                        ;
                evhttp_remove_header(out, name);
                evhttp_add_header(out, name, v);
        }
}

/* The step's body into a buffer. */
static void fill_body(struct evbuffer *b, const Step *st, size_t off, size_t max) {
        size_t total = st->s.fill_bytes > 0 ? st->s.fill_bytes : st->s.body_len;
        size_t n = total > off ? MIN(total - off, max) : 0;

        if (st->s.fill_bytes > 0) {
                char block[4096];

                memset(block, 'x', sizeof(block));
                while (n > 0) {
                        size_t k = MIN(n, sizeof(block));
                        evbuffer_add(b, block, k);
                        n -= k;
                }
        } else if (n > 0)
                evbuffer_add(b, st->body + off, n);
}

/* Sends a complete answer. */
static void send_reply(struct evhttp_request *req, const Step *st) {
        struct evbuffer *b = evbuffer_new();

        if (!b) {
                evhttp_send_error(req, 500, NULL);
                return;
        }
        add_headers(req, st);
        fill_body(b, st, 0, SIZE_MAX);
        evhttp_send_reply(req, st->s.status ?: 200, NULL, b);
        evbuffer_free(b);
}

/* libevent: a pending answer's timer: reply, or send the next chunk. */
static void on_pending_timer(evutil_socket_t fd, short what, void *userdata) {
        Pending *p = userdata;
        const Step *st = p->step;
        size_t total = st->s.fill_bytes > 0 ? st->s.fill_bytes : st->s.body_len;
        struct evbuffer *b;
        struct timeval tv;

        (void) fd;
        (void) what;

        if (st->s.action == FAKE_DROP) {
                /* Close without an answer; the connection frees the request with it. The
                 * client is still waiting, so the connection is still there. */
                evhttp_connection_free(evhttp_request_get_connection(p->req));
                pending_free(p);
                return;
        }
        if (st->s.action == FAKE_REPLY) {
                send_reply(p->req, st);
                pending_free(p);
                return;
        }

        if (!p->started) {
                add_headers(p->req, st);
                evhttp_send_reply_start(p->req, st->s.status ?: 200, NULL);
                p->started = true;
        }
        if (p->sent < total) {
                b = evbuffer_new();
                if (b) {
                        size_t chunk = st->s.chunk_size ?: 1024;

                        fill_body(b, st, p->sent, chunk);
                        p->sent += evbuffer_get_length(b);
                        evhttp_send_reply_chunk(p->req, b);
                        evbuffer_free(b);
                }
        }
        if (p->sent >= total) {
                evhttp_send_reply_end(p->req);
                pending_free(p);
                return;
        }
        tv = (struct timeval) { .tv_sec = (time_t) (st->s.chunk_interval_ms / 1000),
                                .tv_usec = (suseconds_t) (st->s.chunk_interval_ms % 1000) * 1000 };
        evtimer_add(p->timer, &tv);
}

/* Finds a route. */
static Route *route_find(const FakeHttp *f, const char *path) {
        Route *r;

        TAILQ_FOREACH(r, &f->routes, link)
                if (streq(r->path, path))
                        return r;
        return NULL;
}

/* libevent: every request. */
static void on_request(struct evhttp_request *req, void *userdata) {
        FakeHttp *f = userdata;
        const FakeRequest *rec;
        const Step *st;
        Route *route;
        Pending *p;
        struct timeval tv;

        if (record(f, req) < 0) {
                evhttp_send_error(req, 500, "out of memory");
                return;
        }
        rec = &f->requests[f->n_requests - 1];

        route = route_find(f, rec->path);
        if (!route || route->n_steps == 0) {
                struct evbuffer *b = evbuffer_new();

                evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                                  "application/json");
                if (b)
                        evbuffer_add_printf(b, "{\"message\":\"no route\"}");
                evhttp_send_reply(req, 404, "Not Found", b);
                if (b)
                        evbuffer_free(b);
                return;
        }
        st = &route->steps[MIN(route->next, route->n_steps - 1)];
        route->next++;

        switch (st->s.action) {
        case FAKE_DROP:
                /* Closed from the next loop turn, outside evhttp's read path. */
                break;
        case FAKE_HANG:
                return;
        case FAKE_HOLD:
                /* Kept pending, without a timer, until fake_http_release(). */
                break;
        case FAKE_REPLY:
                if (st->s.delay_ms == 0) {
                        send_reply(req, st);
                        return;
                }
                break;
        case FAKE_STREAM:
        default:
                break;
        }

        p = calloc(1, sizeof(*p));
        if (!p) {
                evhttp_send_error(req, 500, NULL);
                return;
        }
        p->fake = f;
        p->req = req;
        p->step = st;
        p->path = route->path;
        TAILQ_INSERT_TAIL(&f->pending, p, link);
        if (st->s.action == FAKE_HOLD)
                return;
        p->timer = evtimer_new(f->base, on_pending_timer, p);
        if (!p->timer) {
                pending_free(p);
                evhttp_send_error(req, 500, NULL);
                return;
        }
        tv = (struct timeval) { .tv_sec = (time_t) (st->s.delay_ms / 1000),
                                .tv_usec = (suseconds_t) (st->s.delay_ms % 1000) * 1000 };
        evtimer_add(p->timer, &tv);
}

/* Starts a server on 127.0.0.1 with an ephemeral port. */
int fake_http_new(struct event_base *base, FakeHttp **ret) {
        struct evhttp_bound_socket *bound;
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        FakeHttp *f;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->base = base;
        TAILQ_INIT(&f->routes);
        TAILQ_INIT(&f->pending);
        f->http = evhttp_new(base);
        if (!f->http) {
                fake_http_free(f);
                return -ENOMEM;
        }
        evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
        evhttp_set_gencb(f->http, on_request, f);
        bound = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
        if (!bound ||
            getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *) &sa, &sl) < 0) {
                fake_http_free(f);
                return -EADDRNOTAVAIL;
        }
        f->port = ntohs(sa.sin_port);
        *ret = f;
        return 0;
}

/* Stops and frees. */
FakeHttp *fake_http_free(FakeHttp *f) {
        if (!f)
                return NULL;
        while (!TAILQ_EMPTY(&f->pending)) {
                Pending *p = TAILQ_FIRST(&f->pending);

                /* A stream cut short by the client is detached from its connection and
                 * ours to finish (which frees it); all others go with evhttp_free(). */
                if (p->started && !evhttp_request_get_connection(p->req))
                        evhttp_send_reply_end(p->req);
                pending_free(p);
        }
        if (f->http)
                evhttp_free(f->http);
        while (!TAILQ_EMPTY(&f->routes)) {
                Route *r = TAILQ_FIRST(&f->routes);

                TAILQ_REMOVE(&f->routes, r, link);
                for (size_t i = 0; i < r->n_steps; i++) {
                        for (size_t k = 0; k < FAKE_HEADERS_MAX; k++)
                                free(r->steps[i].headers[k]);
                        free(r->steps[i].body);
                }
                free(r->steps);
                free(r->path);
                free(r);
        }
        for (size_t i = 0; i < f->n_requests; i++)
                fake_request_done(&f->requests[i]);
        free(f->requests);
        free(f->ports);
        free(f);
        return NULL;
}

/* Lets connections be wrapped (TLS). */
void fake_http_set_bevcb(FakeHttp *f, struct bufferevent *(*cb)(struct event_base *, void *),
                         void *userdata) {
        evhttp_set_bevcb(f->http, cb, userdata);
}

/* The listening port. */
unsigned fake_http_port(const FakeHttp *f) {
        return f->port;
}

/* A URL on this server. */
char *fake_http_url(const FakeHttp *f, const char *path) {
        char *s;

        if (asprintf(&s, "http://127.0.0.1:%u%s", f->port, path) < 0)
                return NULL;
        return s;
}

/* Appends steps to a path's script. */
int fake_http_script(FakeHttp *f, const char *path, const FakeStep *steps, size_t n) {
        Route *r = route_find(f, path);
        Step *ns;

        if (!r) {
                r = calloc(1, sizeof(*r));
                if (!r)
                        return -ENOMEM;
                r->path = strdup(path);
                if (!r->path) {
                        free(r);
                        return -ENOMEM;
                }
                TAILQ_INSERT_TAIL(&f->routes, r, link);
        }
        ns = realloc(r->steps, (r->n_steps + n) * sizeof(*ns));
        if (!ns)
                return -ENOMEM;
        r->steps = ns;
        for (size_t i = 0; i < n; i++) {
                Step *st = &r->steps[r->n_steps++];

                *st = (Step) { .s = steps[i] };
                for (size_t k = 0; k < FAKE_HEADERS_MAX && steps[i].headers[k]; k++) {
                        st->headers[k] = strdup(steps[i].headers[k]);
                        if (!st->headers[k])
                                return -ENOMEM;
                }
                if (steps[i].body) {
                        size_t l = steps[i].body_len ?: strlen(steps[i].body);

                        st->body = malloc(l + 1);
                        if (!st->body)
                                return -ENOMEM;
                        memcpy(st->body, steps[i].body, l);
                        st->body[l] = '\0';
                        st->s.body_len = l;
                } else
                        st->s.body_len = 0;
                st->s.body = st->body;
                for (size_t k = 0; k < FAKE_HEADERS_MAX; k++)
                        st->s.headers[k] = st->headers[k];
        }
        return 0;
}

/* Answers the held requests of a path. */
unsigned fake_http_release(FakeHttp *f, const char *path) {
        Pending *p, *next;
        unsigned n = 0;

        for (p = TAILQ_FIRST(&f->pending); p; p = next) {
                next = TAILQ_NEXT(p, link);
                if (p->step->s.action != FAKE_HOLD || !streq(p->path, path))
                        continue;
                /* Each held request has a connection of its own: answering one leaves the
                 * others alone. */
                send_reply(p->req, p->step);
                pending_free(p);
                n++;
        }
        return n;
}

/* Number of recorded requests. */
size_t fake_http_n_requests(const FakeHttp *f) {
        return f->n_requests;
}

/* A recorded request. */
const FakeRequest *fake_http_request(const FakeHttp *f, size_t i) {
        return i < f->n_requests ? &f->requests[i] : NULL;
}

/* Requests recorded for a path. */
size_t fake_http_count(const FakeHttp *f, const char *path) {
        size_t n = 0;

        for (size_t i = 0; i < f->n_requests; i++)
                if (streq(f->requests[i].path, path))
                        n++;
        return n;
}

/* The last request recorded for a path. */
const FakeRequest *fake_http_last(const FakeHttp *f, const char *path) {
        for (size_t i = f->n_requests; i > 0; i--)
                if (streq(f->requests[i - 1].path, path))
                        return &f->requests[i - 1];
        return NULL;
}

/* Distinct TCP connections seen. */
unsigned fake_http_n_connections(const FakeHttp *f) {
        return (unsigned) f->n_ports;
}

/* A request header. */
const char *fake_request_header(const FakeRequest *r, const char *name) {
        for (size_t i = 0; i < r->n_headers; i++)
                if (strcasecmp(r->names[i], name) == 0)
                        return r->values[i];
        return NULL;
}
