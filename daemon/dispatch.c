/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "dispatch.h"
#include "errors.h"
#include "jsonrpc.h"
#include "log.h"
#include "openrpc.h"
#include "protocol.h"
#include "server.h"

typedef struct MethodEntry {
        const char *name;
        const MethodDef *def;
        const OpenRpcMethod *doc;
        Role role;           /* ROLE_NONE for "public" */
        uint64_t count;
} MethodEntry;

struct Dispatch {
        Server *server;
        const OpenRpc *doc;
        MethodEntry *entries;  /* sorted by name */
        size_t n_entries;
        uint64_t unknown_count;
        uint64_t total;
        uint64_t *errors;      /* indexed like rpc_error_table() */
        size_t n_errors;
};

struct Batch {
        Client *client;        /* reference */
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

/* Builds the method table and checks it against the document. */
int dispatch_new(Server *s, const OpenRpc *doc, Dispatch **ret, const char **ret_missing) {
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
                        if (entries[n - 1].role < 0) {
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
        d->server = s;
        d->doc = doc;
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
        MethodEntry key = { .name = name };

        return bsearch(&key, d->entries, d->n_entries, sizeof(MethodEntry), entry_cmp);
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
                (void) client_send_json(b->client, b->replies);
        json_object_put(b->replies);
        client_unref(b->client);
        free(b);
}

/* Frees a call (it is finished and the handler has returned). */
static void call_free(Call *c) {
        json_object_put(c->id);
        json_object_put(c->params);
        free(c->method);
        free(c);
}

/* Delivers a reply — an object, or for a single call possibly its text already serialized —
 * (or nothing for a notification) and retires the call. Takes reply and text. */
static void call_finish(Call *c, json_object *reply, char *text, size_t len) {
        Server *s = c->server;
        Client *client = c->client;

        if (c->finished) {
                log_error("Internal error: call %s finished twice, ignoring.", strna(c->method));
                json_object_put(reply);
                free(text);
                return;
        }
        c->finished = true;

        if (c->has_id && text)
                (void) client_send_text(client, TAKE_PTR(text), len);
        else if (c->has_id && reply) {
                if (c->batch)
                        json_object_array_add(c->batch->replies, TAKE_PTR(reply));
                else
                        (void) client_send_json(client, reply);
        }
        json_object_put(reply);
        free(text);

        TAILQ_REMOVE(&client->calls, c, link);
        assert(s->n_inflight > 0);
        s->n_inflight--;
        if (c->batch) {
                Batch *b = c->batch;

                assert(b->n_pending > 0);
                if (--b->n_pending == 0 && !b->dispatching)
                        batch_finish(b);
        }
        client_call_finished(client, c);
        c->client = NULL;
        client_unref(client);
        if (!c->in_handler)
                call_free(c);
        server_check_drained(s);
}

/* Finishes a call with a result. */
int call_reply(Call *c, json_object *result) {
        json_object *reply = NULL;

        /* the common case goes straight to text, without a reply object */
        if (c->has_id && !c->batch) {
                char *text = NULL;
                size_t len = 0;
                int r = jsonrpc_result_text(c->id, result, &text, &len);

                json_object_put(result);
                if (r < 0) {
                        log_error_errno(r, "Failed to serialize the reply of %s: %m", strna(c->method));
                        return call_reply_error(c, RPC_INTERNAL_ERROR, r == -ENOMEM ? "Out of memory" : NULL, NULL);
                }
                call_finish(c, NULL, text, len);
                return 0;
        }
        if (c->has_id) {
                reply = jsonrpc_result_new(c->id, result);
                if (!reply) {
                        log_oom();
                        return call_reply_error(c, RPC_INTERNAL_ERROR, "Out of memory", NULL);
                }
        } else
                json_object_put(result);
        call_finish(c, reply, NULL, 0);
        return 0;
}

/* Finishes a call with an error. */
int call_reply_error(Call *c, int code, const char *message, json_object *data) {
        json_object *reply = NULL;

        if (c->server->dispatch)
                dispatch_count_error(c->server->dispatch, code);
        if (c->has_id)
                reply = jsonrpc_error_new(c->id, code, message, data);
        else
                json_object_put(data);
        call_finish(c, reply, NULL, 0);
        return 0;
}

/* Finishes a call with an error and a formatted message. */
int call_reply_errorf(Call *c, int code, json_object *data, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        return call_reply_error(c, code, r < 0 ? NULL : m, data);
}

/* Finishes a call with the class of a negative errno. */
int call_reply_errno(Call *c, int r, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        json_object *data = NULL;
        va_list ap;
        int q = -1;

        if (fmt) {
                int saved = errno;

                errno = r < 0 ? -r : r;
                va_start(ap, fmt);
                q = vasprintf(&m, fmt, ap);
                va_end(ap);
                errno = saved;
        }
        data = json_object_new_object();
        if (data) {
                json_object_object_add(data, "errno", json_object_new_string(strerrorname_np(r < 0 ? -r : r) ?: "unknown"));
        }
        return call_reply_error(c, rpc_error_code_from_errno(r), q < 0 ? NULL : m, data);
}

/* Registers or clears the cancel callback. */
void call_on_cancel(Call *c, CallCancelHandler cb, void *userdata) {
        c->cancel_cb = cb;
        c->cancel_userdata = userdata;
}

/* Asks the call to stop. */
bool call_cancel(Call *c) {
        CallCancelHandler cb = c->cancel_cb;

        if (!cb || c->finished)
                return false;
        c->cancel_cb = NULL;
        cb(c, c->cancel_userdata);
        return true;
}

/* Claims a descriptor of the message. */
int call_take_fd(Call *c, unsigned index) {
        int fd;

        if (!c->in_handler || !c->fds || index >= c->n_fds)
                return -EBADF;
        fd = fcntl(c->fds[index], F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? -errno : fd;
}

/* Resolves a {"fd": N} param. */
int call_take_fd_param(Call *c, json_object *param) {
        json_object *v;
        int64_t n;

        if (!json_object_is_type(param, json_type_object) ||
            !json_object_object_get_ex(param, "fd", &v) || !json_object_is_type(v, json_type_int))
                return -EINVAL;
        n = json_object_get_int64(v);
        if (n < 0 || n >= PROTO_FDS_PER_MESSAGE_MAX)
                return -EBADF;
        return call_take_fd(c, (unsigned) n);
}

/* The role of the calling peer. */
Role call_role(const Call *c) {
        const Client *cl = c->client;

        if (!cl)
                return ROLE_NONE;
        return config_role_for(c->server->config, cl->uid, cl->gid, cl->groups, cl->n_groups);
}

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

/* Checks, validates and runs one call. The call is registered with its client already. */
static void dispatch_run(Dispatch *d, Call *c, JsonRpcCall *jc) {
        Server *s = d->server;
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

        if (s->state == SERVER_DRAINING || s->state == SERVER_STOPPED) {
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
                        json_object_object_add(data, "uid", json_object_new_int64(c->client->uid));
                }
                log_ctx(LOG_NOTICE, &c->log, "Denied %s to uid %u: needs the %s role, has %s.",
                        e->name, (unsigned) c->client->uid, role_to_string(e->role),
                        role_to_string(have));
                call_reply_errorf(c, RPC_PERMISSION_DENIED, data,
                                  "%s needs the '%s' role; uid %u has %s", e->name,
                                  role_to_string(e->role), (unsigned) c->client->uid,
                                  have == ROLE_NONE ? "no role" : role_to_string(have));
                return;
        }

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
                        (unsigned) c->client->uid, (int) c->client->pid, c->client->comm);

        /* the caller keeps c->in_handler set, so finishing here never frees the call */
        assert(c->in_handler);
        r = e->def->handler(c, c->params);
        if (r < 0 && !c->finished)
                call_reply_errno(c, r, NULL);
        else if (r < 0)
                log_error_errno(r, "Internal error: %s failed after replying, ignoring: %m", e->name);
}

/* Creates a call for entry `jc` (taking its members) and registers it with the client. */
static Call *call_new(Dispatch *d, Client *client, Batch *b, JsonRpcCall *jc) {
        Call *c = calloc(1, sizeof(Call));

        if (!c)
                return NULL;
        c->server = d->server;
        c->client = client_ref(client);
        c->batch = b;
        c->has_id = jc->has_id;
        c->id = TAKE_PTR(jc->id);
        c->method = TAKE_PTR(jc->method);
        jc->method = c->method; /* borrowed back for dispatch_run */
        c->log = (LogContext){
                .client_pid = client->pid,
                .client_uid = client->uid,
                .client_comm = client->comm,
        };
        TAILQ_INSERT_TAIL(&client->calls, c, link);
        client->n_inflight++;
        d->server->n_inflight++;
        if (b)
                b->n_pending++;
        return c;
}

/* Parses and runs one frame. */
int dispatch_frame(Dispatch *d, Client *client, const char *frame, size_t len, const int *fds,
                   size_t n_fds) {
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
                (void) client_send_json(client, err_reply);
                json_object_put(err_reply);
                return 0;
        }

        if (m->is_batch) {
                b = calloc(1, sizeof(Batch));
                if (!b) {
                        jsonrpc_message_free(m);
                        return -ENOMEM;
                }
                b->client = client_ref(client);
                b->replies = json_object_new_array();
                b->dispatching = true;
                if (!b->replies) {
                        client_unref(b->client);
                        free(b);
                        jsonrpc_message_free(m);
                        return -ENOMEM;
                }
        }

        client_ref(client);
        for (size_t i = 0; i < m->n_calls; i++) {
                JsonRpcCall jc;
                Call *c;

                jsonrpc_call_take(m, i, &jc);
                c = call_new(d, client, b, &jc);
                if (!c) {
                        jsonrpc_call_done(&jc);
                        r = -ENOMEM;
                        break;
                }
                c->fds = fds;
                c->n_fds = n_fds;
                /* the call owns method now; jc.method is a borrowed alias */
                c->in_handler = true;
                dispatch_run(d, c, &jc);
                jc.method = NULL;
                jsonrpc_call_done(&jc);
                c->fds = NULL;
                c->n_fds = 0;
                c->in_handler = false;
                if (c->finished)
                        call_free(c);
                r = 0;
        }
        if (b) {
                b->dispatching = false;
                if (b->n_pending == 0)
                        batch_finish(b);
        }
        client_unref(client);
        jsonrpc_message_free(m);
        return r < 0 ? r : 0;
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

/* Requests received (valid or not). */
uint64_t dispatch_requests_total(const Dispatch *d) {
        return d->total;
}
