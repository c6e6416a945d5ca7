/* SPDX-License-Identifier: MIT */
/*
 * The error classes: one table row per RpcErrorCode, the errno mapping and the error object
 * builder. The names and codes are part of the protocol: a published row never changes.
 */
#include <assert.h>
#include <errno.h>

#include "errors.h"
#include "jsonc-helpers.h"
#include "macro.h"

static const RpcErrorInfo error_table[] = {
        /* JSON-RPC 2.0: the messages are the specification's own. */
        { RPC_PARSE_ERROR,           "parse_error",           "Parse error",                     false },
        { RPC_INVALID_REQUEST,       "invalid_request",       "Invalid Request",                 false },
        { RPC_METHOD_NOT_FOUND,      "method_not_found",      "Method not found",                false },
        { RPC_INVALID_PARAMS,        "invalid_params",        "Invalid params",                  false },
        { RPC_INTERNAL_ERROR,        "internal_error",        "Internal error",                  false },

        /* avatard classes, -32000 upward. */
        { RPC_UPSTREAM_UNREACHABLE,  "upstream_unreachable",  "Upstream unreachable",            true  },
        { RPC_UPSTREAM_HTTP_ERROR,   "upstream_http_error",   "Upstream HTTP error",             false },
        { RPC_CREDENTIAL_REJECTED,   "credential_rejected",   "Credential rejected by upstream", false },
        { RPC_INCOMPATIBLE,          "incompatible",          "Client incompatible with server", false },
        { RPC_PERMISSION_DENIED,     "permission_denied",     "Permission denied",               false },
        { RPC_NOT_FOUND,             "not_found",             "Not found",                       false },
        { RPC_AMBIGUOUS,             "ambiguous",             "Ambiguous",                       false },
        { RPC_RATE_LIMITED,          "rate_limited",          "Rate limited",                    true  },
        { RPC_OVERLOADED,            "overloaded",            "Overloaded",                      true  },
        { RPC_CONFLICT,              "conflict",              "Conflict",                        false },
        { RPC_INVALID_STATE,         "invalid_state",         "Invalid state",                   false },
        { RPC_TIMEOUT,               "timeout",               "Timeout",                         true  },
        { RPC_NOT_AUTHENTICATED,     "not_authenticated",     "Not authenticated",               false },
        { RPC_JOB_FAILED,            "job_failed",            "Job failed",                      false },
        { RPC_STORAGE_ERROR,         "storage_error",         "Storage error",                   false },
        { RPC_IO_ERROR,              "io_error",              "I/O error",                       false },
        { RPC_SHUTTING_DOWN,         "shutting_down",         "Shutting down",                   true  },
        { RPC_UPSTREAM_BAD_RESPONSE, "upstream_bad_response", "Bad response from upstream",      false },
        { RPC_STATE_NOT_SAVED,       "state_not_saved",       "The daemon could not save its state", true },
        { RPC_JOBS_LOST,             "jobs_lost",             "Jobs lost upstream",              false },
};

/* Finds the row of a code, or NULL. */
static const RpcErrorInfo *error_table_find(int code) {
        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (error_table[i].code == code)
                        return &error_table[i];
        return NULL;
}

/* Describes a code; an unknown code reads as an internal error. */
const RpcErrorInfo *rpc_error_info(int code) {
        const RpcErrorInfo *info;

        info = error_table_find(code);
        if (info)
                return info;
        info = error_table_find(RPC_INTERNAL_ERROR);
        assert(info);
        return info;
}

/* Describes a symbolic name, or NULL. */
const RpcErrorInfo *rpc_error_info_by_name(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (streq(error_table[i].name, name))
                        return &error_table[i];
        return NULL;
}

/* The whole table, in declaration order. */
const RpcErrorInfo *rpc_error_table(size_t *ret_n) {
        if (ret_n)
                *ret_n = ELEMENTSOF(error_table);
        return error_table;
}

/* The one errno → class mapping, as documented in errors.h. */
int rpc_error_code_from_errno(int r) {
        switch (r) {
        case -EINVAL:
        case -EDOM:
        case -ERANGE:
                return RPC_INVALID_PARAMS;
        case -ENOENT:
        case -ENXIO:
        case -ESRCH:
                return RPC_NOT_FOUND;
        case -EACCES:
        case -EPERM:
                return RPC_PERMISSION_DENIED;
        case -ENOTUNIQ:
                return RPC_AMBIGUOUS;
        case -EEXIST:
        case -EBUSY:
        case -EALREADY:
                return RPC_CONFLICT;
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -ENETDOWN:
        case -EHOSTDOWN:
        case -ECONNABORTED:
        case -EPIPE:
                return RPC_UPSTREAM_UNREACHABLE;
        case -ETIMEDOUT:
        case -ETIME:
                return RPC_TIMEOUT;
        case -EPROTO:
                return RPC_UPSTREAM_HTTP_ERROR;
        case -EBADMSG:
        case -EMSGSIZE:
                return RPC_UPSTREAM_BAD_RESPONSE;
        case -EKEYREJECTED:
        case -EKEYEXPIRED:
                return RPC_CREDENTIAL_REJECTED;
        case -ENOKEY:
                return RPC_NOT_AUTHENTICATED;
        case -EPROTONOSUPPORT:
                return RPC_INCOMPATIBLE;
        case -EUSERS:
        case -EAGAIN:
        case -ENOBUFS:
        case -EMFILE:
                return RPC_OVERLOADED;
        case -ESTALE:
        case -ENOTCONN:
        case -EINPROGRESS:
                return RPC_INVALID_STATE;
        case -ECANCELED:
        case -ESHUTDOWN:
                return RPC_SHUTTING_DOWN;
        case -EIO:
        case -EBADF:
        case -ENOSPC:
        case -EFBIG:
                return RPC_IO_ERROR;
        case -EREMOTEIO:
                return RPC_STORAGE_ERROR;
        case -ECHILD:
                return RPC_JOB_FAILED;
        default:
                /* -ENOMEM, anything unexpected, and a non-negative value (a caller bug). */
                return RPC_INTERNAL_ERROR;
        }
}

/* Builds {"code","message","data"} with data's "name" and "retryable" filled in. */
json_object *rpc_error_object_new(int code, const char *message, json_object *data) {
        _cleanup_(json_object_putp) json_object *d = data, *e = NULL;
        json_object *v;
        const RpcErrorInfo *info;

        /* Every code on the wire belongs to a documented class: a code outside the table is a
         * caller bug and goes out as an internal error rather than as an undocumented code. */
        info = rpc_error_info(code);

        if (d && !json_object_is_type(d, json_type_object)) {
                /* Not the documented use; keep the value rather than drop it. */
                json_object *wrap = json_object_new_object();
                if (!wrap)
                        return NULL;
                if (json_object_add_or_put(wrap, "detail", TAKE_PTR(d)) < 0) {
                        json_object_put(wrap);
                        return NULL;
                }
                d = wrap;
        }
        if (!d) {
                d = json_object_new_object();
                if (!d)
                        return NULL;
        }
        if (!json_object_object_get_ex(d, "name", NULL)) {
                v = json_object_new_string(info->name);
                if (!v || json_object_add_or_put(d, "name", v) < 0)
                        return NULL;
        }
        if (!json_object_object_get_ex(d, "retryable", NULL)) {
                v = json_object_new_boolean(info->retryable);
                if (!v || json_object_add_or_put(d, "retryable", v) < 0)
                        return NULL;
        }

        e = json_object_new_object();
        if (!e)
                return NULL;
        v = json_object_new_int(info->code);
        if (!v || json_object_add_or_put(e, "code", v) < 0)
                return NULL;
        v = json_object_new_string(message ?: info->message);
        if (!v || json_object_add_or_put(e, "message", v) < 0)
                return NULL;
        if (json_object_add_or_put(e, "data", TAKE_PTR(d)) < 0)
                return NULL;

        return TAKE_PTR(e);
}
