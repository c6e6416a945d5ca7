/* SPDX-License-Identifier: MIT */
/*
 * Call: what a method handler sees of the call it serves. Dispatch (a layer above) makes the
 * Call, checks the caller's role, validates the params against the OpenRPC document, runs
 * the handler, and implements CallOps to deliver what the handler answers: the handler never
 * sees the connection or the dispatcher.
 *
 * Handler contract: `int handler(Call *c, json_object *params)`. Return 0 when the call was
 * finished (call_reply*) or will be finished later (asynchronously, exactly once); return a
 * negative errno to have it finished with the error class rpc_error_code_from_errno() gives.
 * A call that registers a cancel callback (call_on_cancel) is told when its client
 * disconnects or the daemon stops; the callback must stop the work and finish the call.
 * Replies to a disconnected client are dropped; notifications (no id) are run but never
 * answered.
 *
 * Descriptors: the descriptors that came with a message are available to its calls during
 * the synchronous part of the handler through call_take_fd(), which returns a duplicate the
 * handler owns; all originals are closed right after the message was dispatched.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "core.h"
#include "log.h"
#include "macro.h"

typedef struct Call Call;

typedef int (*MethodHandler)(Call *c, json_object *params);

typedef enum MethodFlags {
        METHOD_MUTATING = 1 << 0, /* logged with the caller's uid, pid and command */
        METHOD_LONG_WAIT = 1 << 1, /* waits on upstream events (runner.wait): a stopping daemon
                                    * ends it at once instead of letting it finish */
        METHOD_NO_PARAMS = 1 << 2, /* takes no params: a call without them gets params NULL, no
                                    * validation (dispatch checks the document agrees at start) */
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
extern const MethodDef methods_runner_wait[];
extern const MethodDef methods_runner_tables[];

/* Who called: the peer's credentials, read when it connected. */
typedef struct PeerCred {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        gid_t *groups;
        size_t n_groups;
        char comm[32];
} PeerCred;

typedef void (*CallCancelHandler)(Call *c, void *userdata);

/* How a call's answers leave: implemented by dispatch. Each reply retires the call. */
typedef struct CallOps {
        /* Finishes the call with a result (taken; NULL = JSON null). */
        void (*reply)(Call *c, json_object *result);
        /* Finishes the call with an error of class `code`; message NULL is the class default;
         * data (taken) may be NULL. */
        void (*reply_error)(Call *c, int code, const char *message, json_object *data);
        /* Sends a notification to the caller while it is connected (params taken). */
        void (*notify)(Call *c, const char *method, json_object *params);
} CallOps;

struct Call {
        const CallOps *ops;
        Core *core;
        const PeerCred *peer;    /* the caller; NULL once the call is finished */
        json_object *params;     /* validated by-name params */
        const int *fds;          /* the message's descriptors; valid during the handler only */
        size_t n_fds;
        bool finished;
        bool in_handler;
        CallCancelHandler cancel_cb;
        void *cancel_userdata;
        LogContext log;
};

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

/* Sends a notification {"jsonrpc":"2.0","method":..,"params":..} to the caller if it is still
 * connected; dropped otherwise. Takes params. */
void call_notify(Call *c, const char *method, json_object *params);

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

/* The role of the calling peer under the configuration in force (ROLE_NONE once finished). */
Role call_role(const Call *c);
