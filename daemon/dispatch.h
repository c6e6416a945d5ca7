/* SPDX-License-Identifier: MIT */
/*
 * Dispatch: from a parsed JSON-RPC message to method handlers and back to replies.
 *
 * For each call: look the method up (-32601), check the caller's role against the method's
 * x-avatard-role (permission_denied naming the role), validate params against the OpenRPC
 * document (-32602 naming the param), then run the handler. Handlers receive validated,
 * by-name params with defaults filled in.
 *
 * Handler contract: `int handler(Call *c, json_object *params)`. Return 0 when the call was
 * finished (call_reply*) or will be finished later (asynchronously, exactly once); return a
 * negative errno to have dispatch finish it with the error class rpc_error_code_from_errno()
 * gives. A call that registers a cancel callback (call_on_cancel) is told when its client
 * disconnects or the daemon stops; the callback must stop the work and finish the call.
 * Replies to a disconnected client are dropped; notifications (no id) are run but never
 * answered. A batch is answered as one array once all its calls finished.
 *
 * Descriptors: the descriptors that came with a message are available to its calls during
 * the synchronous part of the handler through call_take_fd(), which returns a duplicate the
 * handler owns; all originals are closed right after the message was dispatched.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "log.h"

typedef struct Batch Batch;
typedef struct Call Call;
typedef struct Client Client;
typedef struct Dispatch Dispatch;
typedef struct OpenRpc OpenRpc;
typedef struct Server Server;

typedef int (*MethodHandler)(Call *c, json_object *params);

typedef enum MethodFlags {
        METHOD_MUTATING = 1 << 0, /* logged with the caller's uid, pid and command */
} MethodFlags;

typedef struct MethodDef {
        const char *name;
        MethodHandler handler;
        unsigned flags;
} MethodDef;

/* Method tables, one per methods-*.c file, each terminated by an entry with name NULL. */
extern const MethodDef methods_daemon[];
extern const MethodDef methods_manager[];
extern const MethodDef methods_runner[];
extern const MethodDef methods_runner_results[];
extern const MethodDef methods_runner_run[];
extern const MethodDef methods_runner_tables[];

typedef void (*CallCancelHandler)(Call *c, void *userdata);

struct Call {
        Server *server;
        Client *client;          /* reference held */
        Batch *batch;            /* NULL for a single call */
        bool has_id;
        json_object *id;
        char *method;
        json_object *params;     /* validated by-name params */
        const int *fds;          /* the message's descriptors; valid during the handler only */
        size_t n_fds;
        bool finished;
        bool in_handler;
        CallCancelHandler cancel_cb;
        void *cancel_userdata;
        LogContext log;
        TAILQ_ENTRY(Call) link;
};

/* Builds the method table from the handler tables and checks it against the OpenRPC
 * document: every documented method needs a handler and every handler a document entry.
 * Returns 0, -EINVAL with *ret_missing naming the first mismatch (static or borrowed), -ENOMEM. */
int dispatch_new(Server *s, const OpenRpc *doc, Dispatch **ret, const char **ret_missing);
Dispatch *dispatch_free(Dispatch *d);

/* Parses and runs one frame from client `c` with the descriptors that came with it
 * (borrowed; the caller closes them after this returns). Errors that concern the frame are
 * answered here. Returns 0, or -ENOMEM. */
int dispatch_frame(Dispatch *d, Client *c, const char *frame, size_t len, const int *fds,
                   size_t n_fds);

/* Per-method request counts and per-class error counts as JSON objects (new references). */
json_object *dispatch_requests_json(const Dispatch *d);
json_object *dispatch_errors_json(const Dispatch *d);
uint64_t dispatch_requests_total(const Dispatch *d);

/* Finishes a call with a result (taken; NULL = JSON null). Returns 0. */
int call_reply(Call *c, json_object *result);

/* Finishes a call with an error of class `code` (an RpcErrorCode). `message` NULL uses the
 * class default; data (taken) may be NULL. Returns 0. */
int call_reply_error(Call *c, int code, const char *message, json_object *data);

/* Same with a printf-style message. */
int call_reply_errorf(Call *c, int code, json_object *data, const char *fmt, ...) _printf_(4, 5);

/* Finishes a call with the class of a negative errno and a message (printf-style, NULL for
 * the class default). Returns 0. */
int call_reply_errno(Call *c, int r, const char *fmt, ...) _printf_(3, 4);

/* Registers (or clears, with cb NULL) the cancel callback. */
void call_on_cancel(Call *c, CallCancelHandler cb, void *userdata);

/* Asks the call to stop (client gone or daemon stopping): runs its cancel callback if it has
 * one. Returns true when the call was finished by it. */
bool call_cancel(Call *c);

/* Claims descriptor `index` of the message as a new descriptor owned by the caller
 * (duplicated with O_CLOEXEC). Only during the synchronous part of the handler. Returns the
 * descriptor, -EBADF when the message carried no such descriptor, or -errno. */
int call_take_fd(Call *c, unsigned index);

/* Resolves a {"fd": N} param with call_take_fd(). -EINVAL when `param` is not such an object. */
int call_take_fd_param(Call *c, json_object *param);

/* The role of the calling peer under the current configuration. */
Role call_role(const Call *c);
