/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "errors.h"
#include "jsonrpc.h"
#include "log.h"
#include "openrpc.h"
#include "protocol.h"

typedef struct MethodEntry {
        const char *name;
        const MethodDef *def;
        const OpenRpcMethod *doc;
        Role role;           /* ROLE_NONE for "public" */
        uint64_t count;
} MethodEntry;

struct Dispatch {
        Core *core;
        const OpenRpc *doc;
        dispatch_idle_cb idle;
        void *userdata;
        unsigned n_inflight;   /* calls started and not finished, all peers */
        bool stopping;
        MethodEntry *entries;  /* sorted by name */
        size_t n_entries;
        MethodEntry *last;     /* the method found last: the next call is often the same */
        uint64_t unknown_count;
        uint64_t total;
        uint64_t *errors;      /* indexed like rpc_error_table() */
        size_t n_errors;
};

typedef struct Batch Batch;

/* A call as dispatch keeps it: the Call the handler sees, and where its answer goes. */
struct DispatchCall {
        Call call;             /* first: the Call a handler gets is its DispatchCall */
        Dispatch *dispatch;
        Peer *peer;            /* reference held until the call finished */
        Batch *batch;          /* NULL for a single call */
        bool has_id;
        json_object *id;
        char *method;
        TAILQ_ENTRY(DispatchCall) link;
};

struct Batch {
        Peer *peer;            /* reference */
        json_object *replies;  /* array */
        size_t n_pending;
        bool dispatching;      /* still starting calls: do not send yet */
};

/* Every handler table of the daemon. */
static const MethodDef *const method_tables[] = {
        methods_daemon,
        methods_manager,
        methods_runner,
        methods_runner_tables,
        methods_runner_run,
        methods_runner_wait,
        methods_runner_results,
};

/* Orders entries by name. */
static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const MethodEntry *) a)->name, ((const MethodEntry *) b)->name);
}

/* Maps x-avatard-role to a Role; "public" is ROLE_NONE. */
static Role role_of(const OpenRpcMethod *m) {
        const char *r = openrpc_method_role(m);

        if (streq(r, "public"))
                return ROLE_NONE;
        return role_from_string(r);
}

/* Whether a method flagged METHOD_NO_PARAMS takes none in the document too: validating absent
 * params gives no error and no default (what dispatch_run() then skips). */
static bool no_params_agrees(const OpenRpc *doc, const MethodDef *m, const OpenRpcMethod *dm) {
        _cleanup_(openrpc_error_done) OpenRpcError err = {};
        json_object *p = NULL;
        bool ok;

        if (!(m->flags & METHOD_NO_PARAMS))
                return true;
        ok = openrpc_validate_params(doc, dm, NULL, &p, &err) >= 0 && p && json_object_object_length(p) == 0;
        json_object_put(p);
        return ok;
}

/* Builds the method table and checks it against the document. */
int dispatch_new(Core *core, const OpenRpc *doc, dispatch_idle_cb idle, void *userdata, Dispatch **ret,
                 const char **ret_missing) {
        _cleanup_free_ MethodEntry *entries = NULL;
        size_t n = 0, cap = 0, n_doc, n_errors;
        Dispatch *d;

        for (size_t t = 0; t < ELEMENTSOF(method_tables); t++)
                for (const MethodDef *m = method_tables[t]; m->name; m++)
                        cap++;
        entries = calloc(cap ? cap : 1, sizeof(MethodEntry));
        if (!entries)
                return -ENOMEM;
        for (size_t t = 0; t < ELEMENTSOF(method_tables); t++)
                for (const MethodDef *m = method_tables[t]; m->name; m++) {
                        const OpenRpcMethod *dm = openrpc_method(doc, m->name);

                        if (!dm) {
                                if (ret_missing)
                                        *ret_missing = m->name;
                                return -EINVAL;
                        }
                        entries[n++] = (MethodEntry){
                                .name = m->name,
                                .def = m,
                                .doc = dm,
                                .role = role_of(dm),
                        };
                        if (entries[n - 1].role < 0 || !no_params_agrees(doc, m, dm)) {
                                if (ret_missing)
                                        *ret_missing = m->name;
                                return -EINVAL;
                        }
                }
        qsort(entries, n, sizeof(MethodEntry), entry_cmp);
        for (size_t i = 1; i < n; i++)
                if (streq(entries[i - 1].name, entries[i].name)) {
                        if (ret_missing)
                                *ret_missing = entries[i].name;
                        return -EINVAL;
                }
        n_doc = openrpc_n_methods(doc);
        for (size_t i = 0; i < n_doc; i++) {
                const char *name = openrpc_method_name(openrpc_method_at(doc, i));
                MethodEntry key = { .name = name };

                if (!bsearch(&key, entries, n, sizeof(MethodEntry), entry_cmp)) {
                        if (ret_missing)
                                *ret_missing = name;
                        return -EINVAL;
                }
        }

        d = calloc(1, sizeof(Dispatch));
        if (!d)
                return -ENOMEM;
        (void) rpc_error_table(&n_errors);
        d->errors = calloc(n_errors, sizeof(uint64_t));
        if (!d->errors) {
                free(d);
                return -ENOMEM;
        }
        d->n_errors = n_errors;
        d->core = core;
        d->doc = doc;
        d->idle = idle;
        d->userdata = userdata;
        d->entries = TAKE_PTR(entries);
        d->n_entries = n;
        *ret = d;
        return 0;
}

/* Frees the dispatcher. */
Dispatch *dispatch_free(Dispatch *d) {
        if (!d)
                return NULL;
        free(d->entries);
        free(d->errors);
        free(d);
        return NULL;
}

/* Looks a method up. */
static MethodEntry *dispatch_find(Dispatch *d, const char *name) {
        MethodEntry key = { .name = name }, *e;

        if (d->last && streq(d->last->name, name))
                return d->last;
        e = bsearch(&key, d->entries, d->n_entries, sizeof(MethodEntry), entry_cmp);
        if (e)
                d->last = e;
        return e;
}

/* Counts an error reply by class. */
static void dispatch_count_error(Dispatch *d, int code) {
        size_t n;
        const RpcErrorInfo *t = rpc_error_table(&n);

        for (size_t i = 0; i < n && i < d->n_errors; i++)
                if (t[i].code == code) {
                        d->errors[i]++;
                        return;
                }
}

/* Sends a finished batch's replies (if any) and frees it. */
static void batch_finish(Batch *b) {
        if (json_object_array_length(b->replies) > 0)
                (void) b->peer->ops->send_json(b->peer, b->replies);
        json_object_put(b->replies);
        b->peer->ops->unref(b->peer);
        free(b);
}

/* Frees a call (it is finished and the handler has returned). */
static void call_free(DispatchCall *dc) {
        json_object_put(dc->id);
        json_object_put(dc->call.params);
        free(dc->method);
        free(dc);
}

/* Delivers a reply — an object, or for a single call possibly its text already serialized —
 * (or nothing for a notification) and retires the call. Takes reply and text. */
static void call_finish(DispatchCall *dc, json_object *reply, char *text, size_t len) {
        Dispatch *d = dc->dispatch;
        Peer *peer = dc->peer;
        Call *c = &dc->call;

        if (c->finished) {
                log_error("Internal error: call %s finished twice, ignoring.", strna(dc->method));
                json_object_put(reply);
                free(text);
                return;
        }
        c->finished = true;

        if (dc->has_id && text)
                (void) peer->ops->send_text(peer, TAKE_PTR(text), len);
        else if (dc->has_id && reply) {
                if (dc->batch)
                        json_object_array_add(dc->batch->replies, TAKE_PTR(reply));
                else
                        (void) peer->ops->send_json(peer, reply);
        }
        json_object_put(reply);
        free(text);

        TAILQ_REMOVE(&peer->calls, dc, link);
        assert(d->n_inflight > 0);
        d->n_inflight--;
        assert(peer->n_inflight > 0);
        peer->n_inflight--;
        if (dc->batch) {
                Batch *b = dc->batch;

                assert(b->n_pending > 0);
                if (--b->n_pending == 0 && !b->dispatching)
                        batch_finish(b);
        }
        peer->ops->call_finished(peer);
        dc->peer = NULL;
        c->peer = NULL;
        peer->ops->unref(peer);
        if (!c->in_handler)
                call_free(dc);
        if (d->n_inflight == 0 && d->idle)
                d->idle(d->userdata);
}

static void dispatch_call_reply_error(Call *c, int code, const char *message, json_object *data);

/* CallOps.reply: finishes a call with a result. */
static void dispatch_call_reply(Call *c, json_object *result) {
        DispatchCall *dc = (DispatchCall *) c;
        json_object *reply = NULL;

        /* the common case goes straight to text, without a reply object */
        if (dc->has_id && !dc->batch) {
                char *text = NULL;
                size_t len = 0;
                int r = jsonrpc_result_text(dc->id, result, &text, &len);

                json_object_put(result);
                if (r < 0) {
                        log_error_errno(r, "Failed to serialize the reply of %s: %m", strna(dc->method));
                        dispatch_call_reply_error(c, RPC_INTERNAL_ERROR, r == -ENOMEM ? "Out of memory" : NULL, NULL);
                        return;
                }
                call_finish(dc, NULL, text, len);
                return;
        }
        if (dc->has_id) {
                reply = jsonrpc_result_new(dc->id, result);
                if (!reply) {
                        log_oom();
                        dispatch_call_reply_error(c, RPC_INTERNAL_ERROR, "Out of memory", NULL);
                        return;
                }
        } else
                json_object_put(result);
        call_finish(dc, reply, NULL, 0);
}

/* CallOps.reply_error: finishes a call with an error. */
static void dispatch_call_reply_error(Call *c, int code, const char *message, json_object *data) {
        DispatchCall *dc = (DispatchCall *) c;
        json_object *reply = NULL;

        dispatch_count_error(dc->dispatch, code);
        if (dc->has_id)
                reply = jsonrpc_error_new(dc->id, code, message, data);
        else
                json_object_put(data);
        call_finish(dc, reply, NULL, 0);
}

/* CallOps.notify: a notification to the caller while it is connected. */
static void dispatch_call_notify(Call *c, const char *method, json_object *params) {
        Peer *p = ((DispatchCall *) c)->peer;
        json_object *n;

        if (!p || !p->ops->alive(p)) {
                json_object_put(params);
                return;
        }
        n = jsonrpc_notification_new(method, params);
        if (!n)
                return;
        (void) p->ops->send_json(p, n);
        json_object_put(n);
}

static const CallOps dispatch_call_ops = {
        .reply = dispatch_call_reply,
        .reply_error = dispatch_call_reply_error,
        .notify = dispatch_call_notify,
};

/* Builds the Invalid params error data from a validation error. */
static json_object *invalid_params_data(const OpenRpcError *e) {
        json_object *d = json_object_new_object();

        if (!d)
                return NULL;
        if (e->param)
                json_object_object_add(d, "param", json_object_new_string(e->param));
        if (e->path && e->path[0])
                json_object_object_add(d, "path", json_object_new_string(e->path));
        if (e->message)
                json_object_object_add(d, "detail", json_object_new_string(e->message));
        return d;
}

/* Checks, validates and runs one call. The call is registered with its peer already. */
static void dispatch_run(Dispatch *d, DispatchCall *dc, JsonRpcCall *jc) {
        const PeerCred *peer = &dc->peer->cred;
        Call *c = &dc->call;
        _cleanup_(openrpc_error_done) OpenRpcError verr = {};
        MethodEntry *e;
        Role have;
        int r;

        if (jc->error) {
                json_object *data = json_object_new_object();

                if (data && jc->error_detail)
                        json_object_object_add(data, "detail", json_object_new_string(jc->error_detail));
                call_reply_error(c, jc->error, NULL, data);
                return;
        }
        d->total++;
        e = strlen(jc->method) <= PROTO_METHOD_NAME_MAX ? dispatch_find(d, jc->method) : NULL;
        if (!e) {
                json_object *data = json_object_new_object();

                d->unknown_count++;
                if (data)
                        json_object_object_add(data, "method", json_object_new_string(jc->method));
                call_reply_error(c, RPC_METHOD_NOT_FOUND, "Method not found", data);
                return;
        }
        e->count++;
        c->log.rpc_method = e->name;

        if (d->stopping) {
                call_reply_error(c, RPC_SHUTTING_DOWN, "The daemon is stopping", NULL);
                return;
        }

        have = call_role(c);
        if (e->role > ROLE_NONE && have < e->role) {
                json_object *data = json_object_new_object();

                if (data) {
                        json_object_object_add(data, "required_role",
                                               json_object_new_string(role_to_string(e->role)));
                        json_object_object_add(data, "role", json_object_new_string(role_to_string(have)));
                        json_object_object_add(data, "uid", json_object_new_int64(peer->uid));
                }
                log_ctx(LOG_NOTICE, &c->log, "Denied %s to uid %u: needs the %s role, has %s.",
                        e->name, (unsigned) peer->uid, role_to_string(e->role),
                        role_to_string(have));
                call_reply_errorf(c, RPC_PERMISSION_DENIED, data,
                                  "%s needs the '%s' role; uid %u has %s", e->name,
                                  role_to_string(e->role), (unsigned) peer->uid,
                                  have == ROLE_NONE ? "no role" : role_to_string(have));
                return;
        }

        /* a method without params called without them: nothing to validate (checked against
         * the document at start); its handler gets NULL */
        if (!jc->params && (e->def->flags & METHOD_NO_PARAMS))
                r = 0;
        else
                r = openrpc_validate_params(d->doc, e->doc, jc->params, &c->params, &verr);
        if (r == -EINVAL) {
                call_reply_errorf(c, RPC_INVALID_PARAMS, invalid_params_data(&verr), "Invalid params: %s",
                                  strna(verr.message));
                return;
        }
        if (r < 0) {
                call_reply_error(c, RPC_INTERNAL_ERROR, "Out of memory", NULL);
                return;
        }

        if (e->def->flags & METHOD_MUTATING)
                log_ctx(LOG_INFO, &c->log, "%s called by uid %u pid %d (%s).", e->name,
                        (unsigned) peer->uid, (int) peer->pid, peer->comm);

        /* the caller keeps c->in_handler set, so finishing here never frees the call */
        assert(c->in_handler);
        r = e->def->handler(c, c->params);
        if (r < 0 && !c->finished)
                call_reply_errno(c, r, NULL);
        else if (r < 0)
                log_error_errno(r, "Internal error: %s failed after replying, ignoring: %m", e->name);
}

/* Creates a call for entry `jc` (taking its members) and registers it with the peer. */
static DispatchCall *call_new(Dispatch *d, Peer *peer, Batch *b, JsonRpcCall *jc) {
        DispatchCall *dc = calloc(1, sizeof(DispatchCall));

        if (!dc)
                return NULL;
        dc->call.ops = &dispatch_call_ops;
        dc->call.core = d->core;
        dc->call.peer = &peer->cred;
        dc->dispatch = d;
        dc->peer = peer;
        peer->ops->ref(peer);
        dc->batch = b;
        dc->has_id = jc->has_id;
        dc->id = TAKE_PTR(jc->id);
        dc->method = TAKE_PTR(jc->method);
        jc->method = dc->method; /* borrowed back for dispatch_run */
        dc->call.log = (LogContext){
                .client_pid = peer->cred.pid,
                .client_uid = peer->cred.uid,
                .client_comm = peer->cred.comm,
        };
        TAILQ_INSERT_TAIL(&peer->calls, dc, link);
        peer->n_inflight++;
        d->n_inflight++;
        if (b)
                b->n_pending++;
        return dc;
}

/* Parses and runs one frame. */
int dispatch_frame(Dispatch *d, Peer *peer, const char *frame, size_t len, const int *fds, size_t n_fds) {
        JsonRpcMessage *m = NULL;
        json_object *err_reply = NULL;
        Batch *b = NULL;
        int r;

        r = jsonrpc_parse(frame, len, PROTO_JSON_DEPTH_MAX, PROTO_BATCH_MAX, &m, &err_reply);
        if (r < 0) {
                if (!err_reply)
                        return r == -ENOMEM ? -ENOMEM : 0;
                d->total++;
                dispatch_count_error(d, r == -EBADMSG ? RPC_PARSE_ERROR : RPC_INVALID_REQUEST);
                (void) peer->ops->send_json(peer, err_reply);
                json_object_put(err_reply);
                return 0;
        }

        if (m->is_batch) {
                b = calloc(1, sizeof(Batch));
                if (!b) {
                        jsonrpc_message_free(m);
                        return -ENOMEM;
                }
                peer->ops->ref(peer);
                b->peer = peer;
                b->replies = json_object_new_array();
                b->dispatching = true;
                if (!b->replies) {
                        peer->ops->unref(peer);
                        free(b);
                        jsonrpc_message_free(m);
                        return -ENOMEM;
                }
        }

        peer->ops->ref(peer);
        for (size_t i = 0; i < m->n_calls; i++) {
                JsonRpcCall jc;
                DispatchCall *dc;
                Call *c;

                jsonrpc_call_take(m, i, &jc);
                dc = call_new(d, peer, b, &jc);
                if (!dc) {
                        jsonrpc_call_done(&jc);
                        r = -ENOMEM;
                        break;
                }
                c = &dc->call;
                c->fds = fds;
                c->n_fds = n_fds;
                /* the call owns method now; jc.method is a borrowed alias */
                c->in_handler = true;
                dispatch_run(d, dc, &jc);
                jc.method = NULL;
                jsonrpc_call_done(&jc);
                c->fds = NULL;
                c->n_fds = 0;
                c->in_handler = false;
                if (c->finished)
                        call_free(dc);
                r = 0;
        }
        if (b) {
                b->dispatching = false;
                if (b->n_pending == 0)
                        batch_finish(b);
        }
        peer->ops->unref(peer);
        jsonrpc_message_free(m);
        return r < 0 ? r : 0;
}

/* Initializes the dispatch part of a peer. */
void peer_init(Peer *p, const PeerOps *ops) {
        p->ops = ops;
        TAILQ_INIT(&p->calls);
        p->n_inflight = 0;
}

/* Refuses new calls from now on. */
void dispatch_stop(Dispatch *d) {
        d->stopping = true;
        d->core->stopping = true;
}

/* Asks every call of the peer, or its long waits only, to stop. */
static void peer_cancel(Peer *p, bool waits_only) {
        DispatchCall *dc, *next;

        p->ops->ref(p);
        for (dc = TAILQ_FIRST(&p->calls); dc; dc = next) {
                const MethodEntry *e = waits_only && dc->method ? dispatch_find(dc->dispatch, dc->method) : NULL;

                next = TAILQ_NEXT(dc, link);
                if (!waits_only || (e && (e->def->flags & METHOD_LONG_WAIT)))
                        (void) call_cancel(&dc->call);
        }
        p->ops->unref(p);
}

/* Asks every call of the peer to stop. */
void dispatch_cancel_peer(Peer *p) {
        peer_cancel(p, false);
}

/* Asks the long waits of the peer to stop. */
void dispatch_cancel_peer_waits(Peer *p) {
        peer_cancel(p, true);
}

/* Calls in flight. */
unsigned dispatch_inflight(const Dispatch *d) {
        return d->n_inflight;
}

/* Per-method request counts. */
json_object *dispatch_requests_json(const Dispatch *d) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        for (size_t i = 0; i < d->n_entries; i++)
                if (d->entries[i].count > 0)
                        json_object_object_add(o, d->entries[i].name,
                                               json_object_new_uint64(d->entries[i].count));
        if (d->unknown_count > 0)
                json_object_object_add(o, "(unknown)", json_object_new_uint64(d->unknown_count));
        return o;
}

/* Per-class error counts. */
json_object *dispatch_errors_json(const Dispatch *d) {
        json_object *o = json_object_new_object();
        size_t n;
        const RpcErrorInfo *t = rpc_error_table(&n);

        if (!o)
                return NULL;
        for (size_t i = 0; i < n && i < d->n_errors; i++)
                if (d->errors[i] > 0)
                        json_object_object_add(o, t[i].name, json_object_new_uint64(d->errors[i]));
        return o;
}

/* dispatch_requests_json()'s and dispatch_errors_json()'s texts (daemon.status). */
void dispatch_requests_text(const Dispatch *d, JsonText *t) {
        bool first = true;

        json_text_add_literal(t, "{");
        for (size_t i = 0; i < d->n_entries; i++)
                if (d->entries[i].count > 0) {
                        json_text_add_literal(t, first ? "" : ",");
                        first = false;
                        json_text_add_str(t, d->entries[i].name);
                        json_text_add_literal(t, ":");
                        json_text_add_u64(t, d->entries[i].count);
                }
        if (d->unknown_count > 0) {
                json_text_add_literal(t, first ? "\"(unknown)\":" : ",\"(unknown)\":");
                json_text_add_u64(t, d->unknown_count);
        }
        json_text_add_literal(t, "}");
}

void dispatch_errors_text(const Dispatch *d, JsonText *t, JsonTextMemo *m) {
        size_t n, start;
        const RpcErrorInfo *e = rpc_error_table(&n);
        bool first = true;

        if (m && json_text_memo_hit(m, t, d->errors, MIN(n, d->n_errors), &start))
                return;
        json_text_add_literal(t, "{");
        for (size_t i = 0; i < n && i < d->n_errors; i++)
                if (d->errors[i] > 0) {
                        json_text_add_literal(t, first ? "" : ",");
                        first = false;
                        json_text_add_str(t, e[i].name);
                        json_text_add_literal(t, ":");
                        json_text_add_u64(t, d->errors[i]);
                }
        json_text_add_literal(t, "}");
        if (m)
                json_text_memo_keep(m, t, start);
}

/* Requests received (valid or not). */
uint64_t dispatch_requests_total(const Dispatch *d) {
        return d->total;
}
