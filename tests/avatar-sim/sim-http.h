/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim HTTP layer: one Req per received request, routing tables, replies (always with a
 * Content-Type), the request log, per-route counters, connection tracking and the
 * application of injected faults. Handlers run synchronously and answer exactly once.
 */
#pragma once

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "sim.h"

typedef void (*RouteFn)(Req *r);

/* Route flags. */
enum {
        ROUTE_AUTH = 1u << 0,     /* needs an authenticated user */
        ROUTE_LEGACY = 1u << 1,   /* legacy login routes: 404 with --legacy-auth no */
};

/* One routing table entry: method, path pattern ("/api/jobs/{name}"), handler, flags. */
typedef struct Route {
        enum evhttp_cmd_type method;
        const char *pattern;
        RouteFn fn;
        unsigned flags;
} Route;

typedef enum BodyFault {
        BODY_FAULT_NONE,
        BODY_FAULT_TRUNCATED, /* JSON cut in half, framing intact */
        BODY_FAULT_INVALID,   /* not JSON at all, JSON Content-Type kept */
        BODY_FAULT_SHORT,     /* Content-Length of the whole body, half sent, then close */
        _BODY_FAULT_MAX,
        _BODY_FAULT_INVALID = -EINVAL,
} BodyFault;

/* What a matching fault asks for instead of the normal answer. */
typedef struct FaultAction {
        int status;            /* 0: none */
        int retry_after_s;     /* for 429: >= 0 when set */
        bool retry_in_header;
        bool retry_in_body;
        bool drop;
        char *response;        /* JSON text to answer with, owned; NULL: default body */
        int echo;              /* an EchoShape (sim-echo.h): the credential sent back */
} FaultAction;

struct Req {
        Sim *sim;
        struct evhttp_request *ev;
        enum evhttp_cmd_type method;
        const char *method_name;
        char *raw_path;   /* as sent, without the query */
        char *raw_query;  /* as sent, NULL when absent */
        char **segs;      /* percent-decoded path segments, empty ones skipped */
        size_t n_segs;
        QueryParam *query; /* decoded, '+' as space */
        size_t n_query;
        char *route;      /* "GET /api/jobs/{name}" */
        RouteFn handler;
        unsigned flags;
        bool control;     /* a /_sim request */

        const char *auth; /* "none", "api-key", "bearer", "sigv4", "invalid", "expired" */
        int auth_error;   /* auth_check() result for API requests */
        User *user;

        bool replied;
        int status;
        BodyFault body_fault;
        FaultAction action;
        unsigned latency_ms;
        unsigned hold_id; /* the hold fault that parks this request; 0: none */
        bool hold_answer; /* the hold parks its answer, once the request took effect */
        struct evbuffer *parked; /* that answer's body while it is held, owned */
        char *fault;      /* description of the applied fault for the log, owned */
        uint64_t t0;
        size_t bytes_in;
        bool wire;        /* a storage request that goes to the wire log */
        char body_sha256[SHA256_HEX_LEN]; /* of the body as received, for the wire log */
        char *body_copy;  /* req_body_str() */
        size_t body_copy_len;
        struct event *timer;
        struct event *watch; /* a held request's client closing its connection */
        struct evhttp_connection *evcon; /* the client's connection */
        Req *delayed_next; /* in sim->delayed or sim->held */
};

/* Starts listening and serving. Returns 0 or -errno. */
int http_start(Sim *sim);
/* Stops serving and frees everything the HTTP layer holds. */
void http_stop(Sim *sim);

/*
 * Lets held requests go on as if they had not been held (an injected latency still applies):
 * those held by the rule fault_id (0: any rule) whose route is route (NULL: any route), in
 * the order they arrived. Returns how many.
 */
size_t http_release(Sim *sim, unsigned fault_id, const char *route);

/*
 * Matches r against a routing table. On a match sets r->route, r->handler and r->flags and
 * returns 0. -ENOENT: no pattern matches the path; -EMLINK: a pattern matches but not the
 * method (r->route is set to that pattern for counting).
 */
int route_match(Req *r, const Route *table, size_t n);
/* Sets r->route to "METHOD text". Returns 0 or -ENOMEM. */
int req_set_route(Req *r, const char *text);

/* The value of a request header, or NULL. Borrowed. */
const char *req_header(Req *r, const char *name);
/* Adds a response header. */
void req_add_header(Req *r, const char *name, const char *value);
/* The decoded value of a query parameter, or NULL. Borrowed. */
const char *req_query(Req *r, const char *name);
/* The request body (may be empty). Borrowed. */
struct evbuffer *req_body(Req *r);
/* The request body as one contiguous NUL-terminated string; NULL on OOM. Borrowed. */
const char *req_body_str(Req *r, size_t *ret_len);
/* True when the request comes from a loopback address. */
bool req_is_loopback(Req *r);

/* Sends the answer. Takes ownership of body (may be NULL). Logs the request. */
void req_reply(Req *r, int status, const char *content_type, struct evbuffer *body);
/* Sends a JSON answer. Takes ownership of obj. */
void req_reply_json(Req *r, int status, json_object *obj);
/* Sends {"message": "..."}. */
void req_reply_message(Req *r, int status, const char *fmt, ...) _printf_(3, 4);
/* Sends {"detail": "..."} (FastAPI's plain detail). */
void req_reply_detail(Req *r, int status, const char *detail);
/* Sends {"detail": {"message": "..."}}. */
void req_reply_detail_message(Req *r, int status, const char *message);
/* Sends a FastAPI 422 with one error: loc [where, field] (field may be NULL). */
void req_reply_422(Req *r, const char *where, const char *field, const char *msg,
                   const char *type);
/* Drops the connection without an answer. */
void req_drop(Req *r);

/*
 * Parses the body as JSON (bounded size and depth). On failure answers 413 or 422 itself and
 * returns a negative errno; on success *ret is owned by the caller.
 */
int req_json_body(Req *r, json_object **ret);

/* Builds the {"METHOD /route": count} map of /_sim/stats. Returns a new object or NULL. */
json_object *http_stats_routes(Sim *sim);
/* Forgets the per-route counters. */
void http_stats_reset(Sim *sim);

/* Reason phrase for a status code. */
const char *http_reason(int status);
