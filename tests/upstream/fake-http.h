/* SPDX-License-Identifier: MIT */
/*
 * A scripted HTTP/1.1 server for tests, built on libevent's evhttp and listening on
 * 127.0.0.1:<ephemeral> in the caller's event loop.
 *
 * Each path has a script: a list of steps, one consumed per request, the last one repeating.
 * A step answers (status, headers, body, after a delay), streams a chunked body, drops the
 * connection without answering, hangs forever, or holds its answer until the test releases
 * it (fake_http_release()): a server that is slow for exactly as long as a test needs.
 * Every request is recorded (method, URI, headers, body, the client port that identifies its
 * TCP connection). Unscripted paths answer 404 with a JSON body.
 */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct FakeHttp FakeHttp;

typedef enum FakeAction {
        FAKE_REPLY,  /* status, headers and body, after delay_ms */
        FAKE_STREAM, /* chunked body: chunk_size bytes every chunk_interval_ms */
        FAKE_DROP,   /* close the connection without answering */
        FAKE_HANG,   /* never answer */
        FAKE_HOLD,   /* status, headers and body once fake_http_release() is called */
} FakeAction;

#define FAKE_HEADERS_MAX 8

typedef struct FakeStep {
        FakeAction action;
        int status;                             /* 0 = 200 */
        const char *headers[FAKE_HEADERS_MAX];  /* "Name: value", NULL-terminated */
        const char *body;                       /* NULL = empty */
        size_t body_len;                        /* 0 = strlen(body) */
        size_t fill_bytes;                      /* > 0: the body is this many 'x' bytes */
        uint64_t delay_ms;                      /* before the answer (or the first chunk) */
        size_t chunk_size;                      /* FAKE_STREAM; 0 = 1024 */
        uint64_t chunk_interval_ms;             /* FAKE_STREAM */
} FakeStep;

typedef struct FakeRequest {
        char *method;
        char *uri;          /* as sent: path and query */
        char *path;         /* without the query */
        size_t n_headers;
        char **names;
        char **values;
        char *body;         /* NUL-terminated copy */
        size_t body_len;
        unsigned client_port; /* identifies the TCP connection */
} FakeRequest;

/* Starts a server on 127.0.0.1 with an ephemeral port. Returns 0 or -errno. */
int fake_http_new(struct event_base *base, FakeHttp **ret);
/* Stops and frees; requests still waiting for an answer are dropped. NULL-safe. */
FakeHttp *fake_http_free(FakeHttp *f);

/* Lets connections be wrapped, e.g. in TLS (evhttp_set_bevcb()); call before any request.
 * fake_http_url() keeps saying http://, build https:// URLs from fake_http_port(). */
struct bufferevent;
void fake_http_set_bevcb(FakeHttp *f, struct bufferevent *(*cb)(struct event_base *, void *),
                         void *userdata);

unsigned fake_http_port(const FakeHttp *f);
/* "http://127.0.0.1:<port><path>", malloc'd. */
char *fake_http_url(const FakeHttp *f, const char *path);

/* Appends steps to the script of a path. Strings are copied. Returns 0 or -errno. */
int fake_http_script(FakeHttp *f, const char *path, const FakeStep *steps, size_t n);

/* Sends the answers held for a path (FAKE_HOLD steps) to the requests that have arrived so
 * far. Returns how many were released. */
unsigned fake_http_release(FakeHttp *f, const char *path);

/* Recorded requests, all paths, in arrival order. Pointers stay valid until the next request
 * arrives. */
size_t fake_http_n_requests(const FakeHttp *f);
const FakeRequest *fake_http_request(const FakeHttp *f, size_t i);
/* Requests recorded for one path. */
size_t fake_http_count(const FakeHttp *f, const char *path);
/* The last request recorded for a path, or NULL. */
const FakeRequest *fake_http_last(const FakeHttp *f, const char *path);
/* Distinct TCP connections that carried requests. */
unsigned fake_http_n_connections(const FakeHttp *f);

/* A request header (case-insensitive), or NULL. */
const char *fake_request_header(const FakeRequest *r, const char *name);
