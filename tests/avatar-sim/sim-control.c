/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <strings.h>

#include "sim-auth.h"
#include "sim-control.h"
#include "sim-echo.h"
#include "sim-jobs.h"
#include "sim-results.h"
#include "sim-storage.h"

#define FAULT_MAX_LATENCY_MS 600000
#define TICK_MAX 10000

/* One fault rule of /_sim/fault. */
struct Fault {
        unsigned id;
        char *path;   /* segment prefix of the raw path; NULL: every path */
        char *route;  /* exact route name ("GET /api/jobs/{name}"); NULL: any */
        char *method; /* NULL: any */
        char *query;  /* a "name=value" pair the raw query must hold; NULL: any query */
        long count;   /* matching requests left; -1: always */
        long after;   /* matching requests still let through untouched before it applies */
        uint64_t matched; /* matching requests seen, let through or not */
        unsigned latency_ms;
        int status;
        int retry_after_s; /* -1: none */
        bool retry_in_header;
        bool retry_in_body;
        bool drop;
        bool hold;      /* park matching requests until /_sim/release */
        bool hold_answer; /* park their answers instead, once the requests took effect */
        BodyFault body;
        EchoShape echo; /* the credential sent back (sim-echo.h) */
        char *response; /* JSON text, NULL: default body */
        uint64_t hits;
        unsigned held;  /* requests it holds now; a spent rule stays listed until they go */
        Fault *next;
};

static const char *const body_fault_names[] = {
        [BODY_FAULT_NONE] = "none",
        [BODY_FAULT_TRUNCATED] = "truncated",
        [BODY_FAULT_INVALID] = "invalid",
        [BODY_FAULT_SHORT] = "short",
};

/* Frees a fault. Returns NULL. */
static Fault *fault_free(Fault *f) {
        if (!f)
                return NULL;
        free(f->path);
        free(f->route);
        free(f->method);
        free(f->query);
        free(f->response);
        free(f);
        return NULL;
}

/* Forgets every fault. */
void faults_clear(Sim *sim) {
        while (sim->faults) {
                Fault *f = sim->faults;
                sim->faults = f->next;
                fault_free(f);
        }
        sim->n_faults = 0;
}

/* True when the raw query holds the pair (exactly, between '&'s). */
static bool query_has_pair(const char *query, const char *pair) {
        size_t l = strlen(pair);

        for (const char *p = query; p; p = strchr(p, '&'), p = p ? p + 1 : NULL)
                if (strncmp(p, pair, l) == 0 && (p[l] == '\0' || p[l] == '&'))
                        return true;
        return false;
}

/* True when the fault applies to r. */
static bool fault_matches(const Fault *f, const Req *r) {
        if (f->count == 0)
                return false;
        if (f->method && strcasecmp(f->method, r->method_name) != 0)
                return false;
        if (f->route && !streq_ptr(f->route, r->route))
                return false;
        if (f->path) {
                const char *rest = startswith(r->raw_path, f->path);
                if (!rest || !(rest[0] == '\0' || rest[0] == '/' || endswith(f->path, "/")))
                        return false;
        }
        if (f->query && !(r->raw_query && query_has_pair(r->raw_query, f->query)))
                return false;
        return true;
}

/* True when the fault changes the answer (rather than only delaying or holding it). */
static bool fault_has_action(const Fault *f) {
        return f->status > 0 || f->drop || f->body != BODY_FAULT_NONE || f->echo != ECHO_NONE;
}

/* Removes the fault *p from the list and frees it. */
static void fault_unlink(Sim *sim, Fault **p) {
        Fault *f = *p;

        *p = f->next;
        fault_free(f);
        sim->n_faults--;
}

/* A request held by the rule id is no longer held. */
void fault_hold_end(Sim *sim, unsigned id) {
        for (Fault **p = &sim->faults; *p; p = &(*p)->next) {
                Fault *f = *p;

                if (f->id != id)
                        continue;
                if (f->held > 0)
                        f->held--;
                /* a rule whose count is spent was kept only for what it held */
                if (f->held == 0 && f->count == 0)
                        fault_unlink(sim, p);
                return;
        }
}

/* Applies the faults that match r. */
void fault_match(Sim *sim, Req *r) {
        struct evbuffer *desc = evbuffer_new();
        bool acted = false;

        for (Fault **p = &sim->faults; *p;) {
                Fault *f = *p;

                if (!fault_matches(f, r)) {
                        p = &f->next;
                        continue;
                }
                /* request N of a route: the first `after` ones are counted and let through */
                f->matched++;
                if (f->after > 0) {
                        f->after--;
                        p = &f->next;
                        continue;
                }
                /* the first matching hold rule holds the request, later ones pass it by */
                if ((fault_has_action(f) && acted) || (f->hold && r->hold_id > 0)) {
                        p = &f->next;
                        continue;
                }
                r->latency_ms = MIN(r->latency_ms + f->latency_ms, (unsigned) FAULT_MAX_LATENCY_MS);
                if (f->hold) {
                        r->hold_id = f->id;
                        r->hold_answer = f->hold_answer;
                        f->held++;
                }
                if (fault_has_action(f)) {
                        acted = true;
                        r->action.status = f->status;
                        r->action.drop = f->drop;
                        r->action.retry_after_s = f->retry_after_s;
                        r->action.retry_in_header = f->retry_in_header;
                        r->action.retry_in_body = f->retry_in_body;
                        r->action.response = strdup_or_null(f->response);
                        r->action.echo = f->echo;
                        r->body_fault = f->body;
                }
                if (desc) {
                        evbuffer_add_printf(desc, "%s#%u", evbuffer_get_length(desc) ? "," : "",
                                            f->id);
                        if (f->status > 0)
                                evbuffer_add_printf(desc, " status=%d", f->status);
                        if (f->latency_ms > 0)
                                evbuffer_add_printf(desc, " latency=%ums", f->latency_ms);
                        if (f->hold)
                                evbuffer_add_printf(desc, f->hold_answer ? " hold-answer" : " hold");
                        if (f->drop)
                                evbuffer_add_printf(desc, " drop");
                        if (f->body != BODY_FAULT_NONE)
                                evbuffer_add_printf(desc, " body=%s", body_fault_names[f->body]);
                        if (f->echo != ECHO_NONE)
                                evbuffer_add_printf(desc, " echo=%s", echo_shape_to_string(f->echo));
                }
                f->hits++;
                sim->n_faults_applied++;
                if (f->count > 0 && --f->count == 0 && f->held == 0) {
                        fault_unlink(sim, p);
                        continue;
                }
                p = &f->next;
        }
        if (desc && evbuffer_get_length(desc) > 0) {
                free(r->fault);
                r->fault = evbuffer_take_string(desc);
        } else if (desc)
                evbuffer_free(desc);
}

/* The S3 error code for an injected status. */
static const char *s3_code_of(int status) {
        switch (status) {
        case 400:
                return "InvalidRequest";
        case 401:
        case 403:
                return "AccessDenied";
        case 404:
                return "NoSuchKey";
        case 429:
        case 503:
                return "SlowDown";
        case 500:
                return "InternalError";
        default:
                return "ServiceUnavailable";
        }
}

/* Answers r as its injected fault says. */
void fault_reply(Req *r) {
        FaultAction *a = &r->action;
        char buf[32];
        json_object *o;

        if (a->retry_after_s >= 0 && a->retry_in_header) {
                snprintf(buf, sizeof(buf), "%d", a->retry_after_s);
                req_add_header(r, "Retry-After", buf);
        }
        if (echo_shape_is_error((EchoShape) a->echo)) {
                echo_reply_error(r, (EchoShape) a->echo, a->status);
                return;
        }
        if (r->n_segs > 0 && streq(r->segs[0], "storage")) {
                struct evbuffer *b = evbuffer_new();
                if (b)
                        evbuffer_add_printf(b,
                                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
                                            "<Code>%s</Code><Message>avatar-sim injected fault: %d"
                                            "</Message></Error>\n",
                                            s3_code_of(a->status), a->status);
                req_reply(r, a->status, "application/xml", b);
                return;
        }
        if (a->response) {
                struct evbuffer *b = evbuffer_new();
                if (b)
                        evbuffer_add(b, a->response, strlen(a->response));
                req_reply(r, a->status, "application/json", b);
                return;
        }
        if (a->status == 401) {
                req_reply_detail(r, 401, "Not authenticated");
                return;
        }
        if (a->status == 422) {
                req_reply_422(r, "body", NULL, "avatar-sim injected validation error",
                              "value_error");
                return;
        }
        o = json_object_new_object();
        if (o) {
                _cleanup_free_ char *msg = strprintf("avatar-sim injected fault: %d %s", a->status,
                                                     http_reason(a->status));
                json_object_object_add(o, "message", json_object_new_string(msg ? msg : "fault"));
                if (a->retry_after_s >= 0 && a->retry_in_body)
                        json_object_object_add(o, "retry_after",
                                               json_object_new_int(a->retry_after_s));
        }
        req_reply_json(r, a->status, o);
}

/* The JSON body of a control call; an empty body is {}. Answers 422 itself. */
static int control_body(Req *r, json_object **ret) {
        int k;

        if (evbuffer_get_length(req_body(r)) == 0) {
                *ret = json_object_new_object();
                return *ret ? 0 : -ENOMEM;
        }
        k = req_json_body(r, ret);
        if (k < 0)
                return k;
        if (!json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                *ret = NULL;
                req_reply_422(r, "body", NULL, "Input should be an object", "dict_type");
                return -EINVAL;
        }
        return 0;
}

/* Answers 422 for keys of body that are not in allowed (catches typos in tests). */
static int check_keys(Req *r, json_object *body, const char *const *allowed, size_t n) {
        json_object_object_foreach(body, key, val) {
                bool ok = false;
                (void) val;
                for (size_t i = 0; i < n && !ok; i++)
                        ok = streq(key, allowed[i]);
                if (!ok) {
                        req_reply_422(r, "body", key, "Unknown field", "extra_forbidden");
                        return -EINVAL;
                }
        }
        return 0;
}

/* Reads an optional string field; answers 422 when mistyped. */
static int opt_string(Req *r, json_object *body, const char *field, const char **ret) {
        json_object *v = NULL;

        *ret = NULL;
        if (!json_object_object_get_ex(body, field, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_string)) {
                req_reply_422(r, "body", field, "Input should be a valid string", "string_type");
                return -EINVAL;
        }
        *ret = json_object_get_string(v);
        return 0;
}

/* Reads an optional integer field within [lo, hi]; *ret untouched when absent. */
static int opt_int(Req *r, json_object *body, const char *field, int64_t lo, int64_t hi,
                   int64_t *ret, bool *ret_present) {
        json_object *v = NULL;
        int64_t x;

        if (ret_present)
                *ret_present = false;
        if (!json_object_object_get_ex(body, field, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_int)) {
                req_reply_422(r, "body", field, "Input should be a valid integer", "int_type");
                return -EINVAL;
        }
        x = json_object_get_int64(v);
        if (x < lo || x > hi) {
                _cleanup_free_ char *msg = strprintf("Input should be between %lld and %lld",
                                                     (long long) lo, (long long) hi);
                req_reply_422(r, "body", field, msg ? msg : "Out of range", "value_error");
                return -EINVAL;
        }
        *ret = x;
        if (ret_present)
                *ret_present = true;
        return 0;
}

/* Reads an optional boolean field. */
static int opt_bool(Req *r, json_object *body, const char *field, bool *ret) {
        json_object *v = NULL;

        if (!json_object_object_get_ex(body, field, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean)) {
                req_reply_422(r, "body", field, "Input should be a valid boolean", "bool_type");
                return -EINVAL;
        }
        *ret = json_object_get_boolean(v);
        return 0;
}

/* The JSON form of a fault. */
static json_object *fault_to_json(const Fault *f) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(f->id));
        json_object_object_add(o, "path", json_string_or_null(f->path));
        json_object_object_add(o, "route", json_string_or_null(f->route));
        json_object_object_add(o, "method", json_string_or_null(f->method));
        json_object_object_add(o, "query", json_string_or_null(f->query));
        json_object_object_add(o, "count", f->count < 0 ? NULL : json_object_new_int64(f->count));
        json_object_object_add(o, "after", json_object_new_int64(f->after));
        json_object_object_add(o, "matched", json_object_new_int64((int64_t) f->matched));
        json_object_object_add(o, "latency_ms", json_object_new_int64(f->latency_ms));
        json_object_object_add(o, "status", f->status ? json_object_new_int(f->status) : NULL);
        json_object_object_add(o, "retry_after_s",
                               f->retry_after_s >= 0 ? json_object_new_int(f->retry_after_s) : NULL);
        json_object_object_add(o, "drop", json_object_new_boolean(f->drop));
        json_object_object_add(o, "hold", json_object_new_boolean(f->hold));
        json_object_object_add(o, "hold_answer", json_object_new_boolean(f->hold_answer));
        json_object_object_add(o, "held", json_object_new_int64(f->held));
        json_object_object_add(o, "body", json_object_new_string(body_fault_names[f->body]));
        json_object_object_add(o, "echo", json_object_new_string(echo_shape_to_string(f->echo)));
        json_object_object_add(o, "hits", json_object_new_int64((int64_t) f->hits));
        return o;
}

/* Fills the matching part of a fault from a control body. */
static int fault_parse_match(Req *r, json_object *body, Fault *f) {
        const char *path, *route, *method, *query;

        if (opt_string(r, body, "path", &path) < 0 || opt_string(r, body, "route", &route) < 0 ||
            opt_string(r, body, "method", &method) < 0 || opt_string(r, body, "query", &query) < 0)
                return -EINVAL;
        if (query && (!strchr(query, '=') || strchr(query, '&'))) {
                req_reply_422(r, "body", "query", "A query is one name=value pair", "value_error");
                return -EINVAL;
        }
        if (path && path[0] != '/') {
                req_reply_422(r, "body", "path", "A path starts with '/'", "value_error");
                return -EINVAL;
        }
        if (method && strcasecmp(method, "GET") != 0 && strcasecmp(method, "POST") != 0 &&
            strcasecmp(method, "PUT") != 0 && strcasecmp(method, "DELETE") != 0 &&
            strcasecmp(method, "HEAD") != 0) {
                req_reply_422(r, "body", "method", "Expected GET, POST, PUT, DELETE or HEAD",
                              "enum");
                return -EINVAL;
        }
        f->path = strdup_or_null(path);
        f->route = strdup_or_null(route);
        f->method = strdup_or_null(method);
        f->query = strdup_or_null(query);
        if ((path && !f->path) || (route && !f->route) || (method && !f->method) ||
            (query && !f->query))
                return -ENOMEM;
        return 0;
}

/* Fills the effect part of a fault from a control body. */
static int fault_parse_effect(Req *r, json_object *body, Fault *f) {
        const char *body_kind, *retry_in, *echo;
        json_object *resp = NULL;
        int64_t v = 0;
        bool present;

        if (opt_int(r, body, "status", 100, 599, &v, &present) < 0)
                return -EINVAL;
        f->status = present ? (int) v : 0;
        if (opt_int(r, body, "latency_ms", 0, FAULT_MAX_LATENCY_MS, &v, &present) < 0)
                return -EINVAL;
        f->latency_ms = present ? (unsigned) v : 0;
        if (opt_int(r, body, "retry_after_s", 0, 86400, &v, &present) < 0)
                return -EINVAL;
        f->retry_after_s = present ? (int) v : -1;
        if (present && f->status == 0)
                f->status = 429;
        if (opt_string(r, body, "retry_after_in", &retry_in) < 0)
                return -EINVAL;
        f->retry_in_header = !retry_in || streq(retry_in, "header") || streq(retry_in, "both");
        f->retry_in_body = !retry_in || streq(retry_in, "body") || streq(retry_in, "both");
        if (!f->retry_in_header && !f->retry_in_body) {
                req_reply_422(r, "body", "retry_after_in", "Expected header, body or both", "enum");
                return -EINVAL;
        }
        if (opt_bool(r, body, "drop", &f->drop) < 0 || opt_bool(r, body, "hold", &f->hold) < 0 ||
            opt_bool(r, body, "hold_answer", &f->hold_answer) < 0 || opt_string(r, body, "body", &body_kind) < 0)
                return -EINVAL;
        /* holding the answer is a hold too */
        if (f->hold_answer)
                f->hold = true;
        if (body_kind) {
                f->body = _BODY_FAULT_INVALID;
                for (size_t i = 0; i < ELEMENTSOF(body_fault_names); i++)
                        if (streq(body_kind, body_fault_names[i]))
                                f->body = (BodyFault) i;
                if (f->body == _BODY_FAULT_INVALID) {
                        f->body = BODY_FAULT_NONE;
                        req_reply_422(r, "body", "body", "Expected truncated, invalid or short",
                                      "enum");
                        return -EINVAL;
                }
        }
        if (json_object_object_get_ex(body, "response", &resp)) {
                size_t len;
                const char *s = json_wire(resp, &len);
                f->response = strdup(s ? s : "null");
                if (!f->response)
                        return -ENOMEM;
        }
        if (opt_string(r, body, "echo", &echo) < 0)
                return -EINVAL;
        if (echo) {
                f->echo = echo_shape_from_string(echo);
                if (f->echo == _ECHO_SHAPE_INVALID || f->echo == ECHO_NONE) {
                        f->echo = ECHO_NONE;
                        req_reply_422(r, "body", "echo",
                                      "Expected message, escaped, percent, base64, text, ok-raw, ok-escaped, "
                                      "ok-percent or ok-base64", "enum");
                        return -EINVAL;
                }
                if (!echo_shape_is_error(f->echo) && f->status) {
                        req_reply_422(r, "body", "echo", "An ok-* echo changes the normal answer: it takes no status",
                                      "value_error");
                        return -EINVAL;
                }
                if (echo_shape_is_error(f->echo) && !f->status)
                        f->status = 400;
        }
        if (f->drop && (f->status || f->body || f->echo)) {
                req_reply_422(r, "body", "drop", "drop excludes status and body", "value_error");
                return -EINVAL;
        }
        if (f->response && !f->status) {
                req_reply_422(r, "body", "response", "response needs a status", "value_error");
                return -EINVAL;
        }
        if (!f->status && !f->drop && !f->body && !f->latency_ms && !f->hold && !f->echo) {
                req_reply_422(r, "body", NULL,
                              "A fault needs status, retry_after_s, latency_ms, drop, body, echo or hold",
                              "value_error");
                return -EINVAL;
        }
        return 0;
}

/* POST /_sim/fault. */
static void on_fault_add(Req *r) {
        static const char *const keys[] = { "path",          "route",          "method", "status",
                                            "count",         "latency_ms",     "retry_after_s",
                                            "retry_after_in", "drop",          "body",   "response",
                                            "hold",          "echo",   "after",  "query",
                                            "hold_answer" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        Fault *f, **p;
        int64_t count = -1, after = 0;
        json_object *o;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0)
                return;
        if (r->sim->n_faults >= SIM_MAX_FAULTS) {
                req_reply_message(r, 507, "Too many faults");
                return;
        }
        f = calloc(1, sizeof(Fault));
        if (!f) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        if (fault_parse_match(r, body, f) < 0 || fault_parse_effect(r, body, f) < 0 ||
            opt_int(r, body, "count", 1, 1000000000, &count, NULL) < 0 ||
            opt_int(r, body, "after", 0, 1000000000, &after, NULL) < 0) {
                if (!r->replied)
                        req_reply_message(r, 500, "Out of memory");
                fault_free(f);
                return;
        }
        f->count = count;
        f->after = after;
        f->id = ++r->sim->next_fault_id;
        for (p = &r->sim->faults; *p; p = &(*p)->next)
                ;
        *p = f;
        r->sim->n_faults++;
        o = fault_to_json(f);
        req_reply_json(r, 201, o);
}

/* GET /_sim/faults. */
static void on_faults_list(Req *r) {
        json_object *a = json_object_new_array();

        for (Fault *f = r->sim->faults; a && f; f = f->next)
                json_object_array_add(a, fault_to_json(f));
        req_reply_json(r, 200, a);
}

/* Answers {"message": ..., "released": n}. */
static void reply_released(Req *r, const char *message, size_t n) {
        json_object *o = json_object_new_object();

        if (o) {
                if (message)
                        json_object_object_add(o, "message", json_object_new_string(message));
                json_object_object_add(o, "released", json_object_new_int64((int64_t) n));
        }
        req_reply_json(r, 200, o);
}

/* DELETE /_sim/faults: the held requests go on first, so none is stranded. */
static void on_faults_clear(Req *r) {
        size_t n = http_release(r->sim, 0, NULL);

        faults_clear(r->sim);
        reply_released(r, "Faults cleared", n);
}

/* The rule with that id, or NULL. */
static Fault *fault_find(Sim *sim, unsigned long id) {
        for (Fault *f = sim->faults; f; f = f->next)
                if (f->id == id)
                        return f;
        return NULL;
}

/* DELETE /_sim/fault/{id}: what the rule holds goes on first. */
static void on_fault_delete(Req *r) {
        unsigned long id = strtoul(r->segs[2], NULL, 10);
        _cleanup_free_ char *msg = NULL;
        size_t n;

        if (id == 0 || id > UINT_MAX || !fault_find(r->sim, id)) {
                req_reply_message(r, 404, "No fault %s", r->segs[2]);
                return;
        }
        /* (a spent rule goes away with its last held request) */
        n = http_release(r->sim, (unsigned) id, NULL);
        for (Fault **p = &r->sim->faults; *p; p = &(*p)->next)
                if ((*p)->id == id) {
                        fault_unlink(r->sim, p);
                        break;
                }
        msg = strprintf("Fault %lu removed", id);
        reply_released(r, msg ? msg : "Fault removed", n);
}

/* POST /_sim/release {id, route}: the held requests of rule id and/or of that route (all
 * without either) go on as if they had not been held. */
static void on_release(Req *r) {
        static const char *const keys[] = { "id", "route" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *route;
        int64_t id = 0;
        bool present;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_int(r, body, "id", 1, UINT_MAX, &id, &present) < 0 ||
            opt_string(r, body, "route", &route) < 0)
                return;
        /* a rule that holds requests is kept until they go: an unknown id holds nothing */
        if (present && !fault_find(r->sim, (unsigned long) id)) {
                req_reply_message(r, 404, "No fault %lld", (long long) id);
                return;
        }
        reply_released(r, NULL, http_release(r->sim, (unsigned) id, route));
}

/* Finds a job of any user by name. */
static Job *job_find_any(Sim *sim, const char *name) {
        for (size_t i = 0; i < sim->n_jobs; i++)
                if (streq(sim->jobs[i]->name, name))
                        return sim->jobs[i];
        return NULL;
}

/* POST /_sim/job-failure {parameters_name | job, status, exception, count}. */
static void on_job_failure(Req *r) {
        static const char *const keys[] = { "parameters_name", "job", "status", "exception",
                                            "count" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *params, *job, *status, *exception;
        int64_t count = 1;
        JobStatus s;
        int k;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_string(r, body, "parameters_name", &params) < 0 ||
            opt_string(r, body, "job", &job) < 0 || opt_string(r, body, "status", &status) < 0 ||
            opt_string(r, body, "exception", &exception) < 0 ||
            opt_int(r, body, "count", 1, 1000000, &count, NULL) < 0)
                return;
        if (!params == !job) {
                req_reply_422(r, "body", "parameters_name", "Give parameters_name or job",
                              "value_error");
                return;
        }
        s = status ? job_status_from_string(status) : JOB_ERROR;
        if (s != JOB_ERROR && s != JOB_LOST && s != JOB_ORPHANED) {
                req_reply_422(r, "body", "status", "Expected error, lost or orphaned", "enum");
                return;
        }
        exception = exception ? exception : "avatar-sim injected failure";
        if (job) {
                Job *j = job_find_any(r->sim, job);
                if (!j) {
                        req_reply_message(r, 404, "Job %s not found", job);
                        return;
                }
                k = job_plan_failure(j, s, exception);
                if (k == -EBUSY) {
                        req_reply_message(r, 409, "Job %s has already ended", job);
                        return;
                }
        } else
                k = job_failure_add(r->sim, params, s, exception, (unsigned) count);
        if (k < 0) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        req_reply_message(r, 200, "Failure planned");
}

/* Replaces the compatibility answer. */
static int compat_set(Compat *c, const char *status, const char *message, const char *recent) {
        char *s = strdup(status), *m = strdup(message), *rc = strdup_or_null(recent);

        if (!s || !m || (recent && !rc)) {
                free(s);
                free(m);
                free(rc);
                return -ENOMEM;
        }
        free(c->status);
        free(c->message);
        free(c->recent);
        c->status = s;
        c->message = m;
        c->recent = rc;
        return 0;
}

/* The default message of a compatibility status. */
static const char *compat_default_message(const char *status) {
        if (streq(status, "incompatible"))
                return "Client is not compatible with the server. Please upgrade.";
        if (streq(status, "unknown"))
                return "Client version is unknown to the server";
        return "Client is up to date";
}

/* Sets the compatibility answer from the command line. Returns 0 or -errno. */
int compat_reset(Sim *sim) {
        const char *status = sim->cfg.compat_status ? sim->cfg.compat_status : "compatible";

        return compat_set(&sim->compat, status,
                          sim->cfg.compat_message ? sim->cfg.compat_message
                                                  : compat_default_message(status),
                          sim->cfg.compat_recent);
}

/* POST /_sim/compat {status, message, most_recent_compatible_client}. */
static void on_compat(Req *r) {
        static const char *const keys[] = { "status", "message", "most_recent_compatible_client" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *status, *message, *recent;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_string(r, body, "status", &status) < 0 ||
            opt_string(r, body, "message", &message) < 0 ||
            opt_string(r, body, "most_recent_compatible_client", &recent) < 0)
                return;
        if (!status || (!streq(status, "compatible") && !streq(status, "incompatible") &&
                        !streq(status, "unknown"))) {
                req_reply_422(r, "body", "status", "Expected compatible, incompatible or unknown",
                              "enum");
                return;
        }
        if (compat_set(&r->sim->compat, status, message ? message : compat_default_message(status),
                       recent) < 0) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        req_reply_message(r, 200, "Compatibility answer set");
}

/* POST /_sim/reset {stats}. */
static void on_reset(Req *r) {
        static const char *const keys[] = { "stats" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        bool stats = false;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_bool(r, body, "stats", &stats) < 0)
                return;
        (void) http_release(r->sim, 0, NULL);
        faults_clear(r->sim);
        job_failures_clear(r->sim);
        r->sim->token_ttl_usec = 0;
        (void) compat_reset(r->sim);
        if (stats)
                http_stats_reset(r->sim);
        req_reply_message(r, 200, "Reset");
}

/* POST /_sim/cleanup-results {job}. */
static void on_cleanup_results(Req *r) {
        static const char *const keys[] = { "job" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *name;
        Job *j;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_string(r, body, "job", &name) < 0)
                return;
        if (!name) {
                req_reply_422(r, "body", "job", "Field required", "missing");
                return;
        }
        j = job_find_any(r->sim, name);
        if (!j) {
                req_reply_message(r, 404, "Job %s not found", name);
                return;
        }
        if (results_cleanup(r->sim, j) < 0) {
                req_reply_message(r, 500, "Cannot remove the results of %s", name);
                return;
        }
        req_reply_message(r, 200, "Results of %s cleaned up", name);
}

/* POST /_sim/expire-tokens {refresh}. */
static void on_expire_tokens(Req *r) {
        static const char *const keys[] = { "refresh" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *o;
        bool refresh = false;
        size_t n;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_bool(r, body, "refresh", &refresh) < 0)
                return;
        n = tokens_expire(r->sim, refresh);
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "expired", json_object_new_int64((int64_t) n));
        req_reply_json(r, 200, o);
}

/* POST /_sim/tokens {access_ttl_ms}: the lifetime of access tokens issued from now on. */
static void on_tokens(Req *r) {
        static const char *const keys[] = { "access_ttl_ms" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        int64_t ttl = 0;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_int(r, body, "access_ttl_ms", 0, INT64_C(86400000) * 365, &ttl, NULL) < 0)
                return;
        r->sim->token_ttl_usec = ttl * 1000;
        req_reply_message(r, 200, "Access token lifetime set");
}

/* POST /_sim/tick {count}: advances every job count steps now. */
static void on_tick(Req *r) {
        static const char *const keys[] = { "count" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        int64_t count = 1;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_int(r, body, "count", 1, TICK_MAX, &count, NULL) < 0)
                return;
        for (int64_t i = 0; i < count; i++)
                jobs_tick(r->sim);
        req_reply_message(r, 200, "Advanced %lld steps", (long long) count);
}

/* POST /_sim/clock {job_step_ms}. */
static void on_clock(Req *r) {
        static const char *const keys[] = { "job_step_ms" };
        _cleanup_(json_object_putp) json_object *body = NULL;
        int64_t ms = 0;
        bool present;

        if (control_body(r, &body) < 0 || check_keys(r, body, keys, ELEMENTSOF(keys)) < 0 ||
            opt_int(r, body, "job_step_ms", 0, 3600000, &ms, &present) < 0)
                return;
        if (!present) {
                req_reply_422(r, "body", "job_step_ms", "Field required", "missing");
                return;
        }
        if (jobs_clock_set(r->sim, (unsigned) ms) < 0) {
                req_reply_message(r, 500, "Cannot set the job clock");
                return;
        }
        req_reply_message(r, 200, "Job clock set");
}

/* The {"route": n} map of the requests held now. */
static json_object *held_routes(Sim *sim) {
        json_object *o = json_object_new_object();

        for (Req *h = sim->held; o && h; h = h->delayed_next) {
                const char *route = h->route ? h->route : "{unknown}";
                json_object *n = json_object_object_get(o, route);

                json_object_object_add(o, route, json_object_new_int64(n ? json_object_get_int64(n) + 1 : 1));
        }
        return o;
}

/* GET /_sim/stats. */
static void on_stats(Req *r) {
        Sim *sim = r->sim;
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "requests", json_object_new_int64((int64_t) sim->n_requests));
                json_object_object_add(o, "routes", http_stats_routes(sim));
                json_object_object_add(o, "connections", json_object_new_int64((int64_t) sim->n_conns));
                json_object_object_add(o, "faults", json_object_new_int64((int64_t) sim->n_faults));
                json_object_object_add(o, "faults_applied",
                                       json_object_new_int64((int64_t) sim->n_faults_applied));
                json_object_object_add(o, "held", json_object_new_int64((int64_t) sim->n_held));
                json_object_object_add(o, "held_routes", held_routes(sim));
                json_object_object_add(o, "jobs", json_object_new_int64((int64_t) sim->n_jobs));
                json_object_object_add(o, "sets", json_object_new_int64((int64_t) sim->n_sets));
                json_object_object_add(o, "uploads", json_object_new_int64((int64_t) sim->n_uploads));
                json_object_object_add(o, "job_step_ms", json_object_new_int64(sim->cfg.job_step_ms));
                json_object_object_add(o, "last_user_agent", json_string_or_null(sim->last_user_agent));
                json_object_object_add(o, "last_check_client_user_agent",
                                       json_string_or_null(sim->last_check_client_user_agent));
        }
        req_reply_json(r, 200, o);
}

/* GET /_sim/jobs: every job of every user, with its owner. */
static void on_all_jobs(Req *r) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; a && i < r->sim->n_jobs; i++) {
                json_object *j = job_to_json(r->sim->jobs[i]);
                if (j)
                        json_object_object_add(j, "owner", json_object_new_string(r->sim->jobs[i]->owner->id));
                json_object_array_add(a, j);
        }
        if (o && a) {
                json_object_object_add(o, "jobs", a);
                a = NULL;
        }
        json_object_put(a);
        req_reply_json(r, 200, o);
}

/* GET /_sim/uploads: the multipart uploads in progress, of every user. */
static void on_uploads(Req *r) {
        json_object *o = json_object_new_object(), *a = storage_uploads_json(r->sim);

        if (o && a) {
                json_object_object_add(o, "uploads", a);
                a = NULL;
        }
        json_object_put(a);
        req_reply_json(r, 200, o);
}

/* Control calls from anything but loopback. */
static void on_forbidden(Req *r) {
        req_reply_message(r, 403, "The control API answers loopback clients only");
}

/* Unknown control paths. */
static void on_control_not_found(Req *r) {
        req_reply_detail(r, 404, "Not Found");
}

static const Route control_routes[] = {
        { EVHTTP_REQ_POST, "/_sim/fault", on_fault_add, 0 },
        { EVHTTP_REQ_GET, "/_sim/faults", on_faults_list, 0 },
        { EVHTTP_REQ_DELETE, "/_sim/faults", on_faults_clear, 0 },
        { EVHTTP_REQ_DELETE, "/_sim/fault/{id}", on_fault_delete, 0 },
        { EVHTTP_REQ_POST, "/_sim/release", on_release, 0 },
        { EVHTTP_REQ_POST, "/_sim/job-failure", on_job_failure, 0 },
        { EVHTTP_REQ_POST, "/_sim/compat", on_compat, 0 },
        { EVHTTP_REQ_POST, "/_sim/reset", on_reset, 0 },
        { EVHTTP_REQ_POST, "/_sim/cleanup-results", on_cleanup_results, 0 },
        { EVHTTP_REQ_POST, "/_sim/expire-tokens", on_expire_tokens, 0 },
        { EVHTTP_REQ_POST, "/_sim/tokens", on_tokens, 0 },
        { EVHTTP_REQ_POST, "/_sim/tick", on_tick, 0 },
        { EVHTTP_REQ_POST, "/_sim/clock", on_clock, 0 },
        { EVHTTP_REQ_GET, "/_sim/stats", on_stats, 0 },
        { EVHTTP_REQ_GET, "/_sim/jobs", on_all_jobs, 0 },
        { EVHTTP_REQ_GET, "/_sim/uploads", on_uploads, 0 },
};

/* Routes a /_sim request. */
void control_route(Req *r) {
        int k = route_match(r, control_routes, ELEMENTSOF(control_routes));

        if (k < 0) {
                if (k != -EMLINK)
                        (void) req_set_route(r, "/_sim/{unknown}");
                r->handler = on_control_not_found;
        }
        if (!req_is_loopback(r))
                r->handler = on_forbidden;
}
