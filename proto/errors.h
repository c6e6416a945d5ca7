/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC error codes: the five of the specification and the daemon's own classes in the
 * reserved server range -32000..-32099. Each class has a stable symbolic name (error.data.name)
 * and a retryable flag (error.data.retryable). Internal code works with negative errno values;
 * rpc_error_code_from_errno() is the one place that maps them to classes.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

typedef enum RpcErrorCode {
        /* JSON-RPC 2.0 */
        RPC_PARSE_ERROR = -32700,
        RPC_INVALID_REQUEST = -32600,
        RPC_METHOD_NOT_FOUND = -32601,
        RPC_INVALID_PARAMS = -32602,
        RPC_INTERNAL_ERROR = -32603,

        /* avatard classes: the code never changes once published */
        RPC_UPSTREAM_UNREACHABLE = -32000, /* network error, timeout or open circuit */
        RPC_UPSTREAM_HTTP_ERROR = -32001,  /* upstream answered with an HTTP error status */
        RPC_CREDENTIAL_REJECTED = -32002,  /* upstream refused the key or token (401) */
        RPC_INCOMPATIBLE = -32003,         /* server says this client is incompatible/unknown */
        RPC_PERMISSION_DENIED = -32004,    /* the caller's role does not allow the method */
        RPC_NOT_FOUND = -32005,            /* no such job, run, runner or result */
        RPC_AMBIGUOUS = -32006,            /* several candidates; data.candidates lists them */
        RPC_RATE_LIMITED = -32007,         /* upstream 429 persisted; data.retry_after_ms */
        RPC_OVERLOADED = -32008,           /* a daemon limit was hit; try again later */
        RPC_CONFLICT = -32009,             /* the request contradicts the daemon's state */
        RPC_INVALID_STATE = -32010,        /* the object is not in a state that allows this */
        RPC_TIMEOUT = -32011,              /* a deadline passed before the work completed */
        RPC_NOT_AUTHENTICATED = -32012,    /* the daemon holds no credential */
        RPC_JOB_FAILED = -32013,           /* an upstream job ended in error */
        RPC_STORAGE_ERROR = -32014,        /* the S3 storage endpoint refused or failed */
        RPC_IO_ERROR = -32015,             /* reading or writing a passed descriptor failed */
        RPC_SHUTTING_DOWN = -32016,        /* the daemon is stopping */
        RPC_UPSTREAM_BAD_RESPONSE = -32017,/* upstream answered 2xx with a body we cannot use */
        RPC_STATE_NOT_SAVED = -32018,      /* the daemon could not write its state directory */
        RPC_JOBS_LOST = -32019,            /* jobs awaited are gone upstream (404, set deleted) */
} RpcErrorCode;

typedef struct RpcErrorInfo {
        int code;
        const char *name;    /* stable symbolic name, e.g. "upstream_unreachable" */
        const char *message; /* default human message */
        bool retryable;      /* whether the same call may succeed if simply repeated later */
} RpcErrorInfo;

/* Returns the description of a code, or of RPC_INTERNAL_ERROR for an unknown code. Never NULL. */
const RpcErrorInfo *rpc_error_info(int code);

/* Returns the description for a symbolic name, or NULL. */
const RpcErrorInfo *rpc_error_info_by_name(const char *name);

/* Returns every class in the enum's order (the five JSON-RPC codes, then -32000 downward);
 * *ret_n receives the count. */
const RpcErrorInfo *rpc_error_table(size_t *ret_n);

/* The one mapping from a negative errno to a class:
 *   -EINVAL, -EDOM, -ERANGE            → RPC_INVALID_PARAMS
 *   -ENOENT, -ENXIO, -ESRCH            → RPC_NOT_FOUND
 *   -EACCES, -EPERM                    → RPC_PERMISSION_DENIED
 *   -ENOTUNIQ                          → RPC_AMBIGUOUS
 *   -EEXIST, -EBUSY, -EALREADY         → RPC_CONFLICT
 *   -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -ENETUNREACH, -ENETDOWN, -EHOSTDOWN,
 *   -ECONNABORTED, -EPIPE (upstream)   → RPC_UPSTREAM_UNREACHABLE
 *   -ETIMEDOUT, -ETIME                 → RPC_TIMEOUT
 *   -EPROTO                            → RPC_UPSTREAM_HTTP_ERROR
 *   -EBADMSG                           → RPC_UPSTREAM_BAD_RESPONSE
 *   -EKEYREJECTED, -EKEYEXPIRED        → RPC_CREDENTIAL_REJECTED
 *   -ENOKEY                            → RPC_NOT_AUTHENTICATED
 *   -EPROTONOSUPPORT                   → RPC_INCOMPATIBLE
 *   -EUSERS, -EAGAIN, -ENOBUFS, -EMFILE→ RPC_OVERLOADED
 *   -ESTALE, -ENOTCONN, -EINPROGRESS   → RPC_INVALID_STATE
 *   -ECANCELED, -ESHUTDOWN             → RPC_SHUTTING_DOWN
 *   -EIO, -EBADF, -ENOSPC, -EFBIG      → RPC_IO_ERROR
 *   -EREMOTEIO                         → RPC_STORAGE_ERROR
 *   -ECHILD                            → RPC_JOB_FAILED
 *   -EMSGSIZE                          → RPC_UPSTREAM_BAD_RESPONSE
 * RPC_STATE_NOT_SAVED has no errno of its own: a failed save of the state directory is
 * reported with it explicitly (any errno), so -ENOSPC of a passed descriptor stays io_error.
 *   anything else (incl. -ENOMEM)      → RPC_INTERNAL_ERROR
 * A non-negative value is a caller bug and maps to RPC_INTERNAL_ERROR. */
int rpc_error_code_from_errno(int r);

/* Builds a JSON-RPC error object {"code", "message", "data"}. `message` NULL uses the class's
 * default message. `data` may be NULL or an object (any other value is kept as data.detail);
 * its ownership is taken, also on failure. data gains "name" and "retryable" unless already
 * present. A code outside the table is a caller bug and goes out as RPC_INTERNAL_ERROR, so
 * every code on the wire is a documented class. Returns a new reference, or NULL on OOM. */
json_object *rpc_error_object_new(int code, const char *message, json_object *data);
