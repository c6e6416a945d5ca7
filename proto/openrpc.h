/* SPDX-License-Identifier: MIT */
/*
 * The OpenRPC document (avatard.openrpc.json) as the single source of truth for methods:
 * names, params, result schemas, required roles (x-avatard-role). Loaded once, indexed by
 * method name, and used to validate params before any handler runs.
 *
 * Supported JSON Schema keywords (draft 7 subset, all we use): type (string or array of
 * types), enum, const, properties, required, additionalProperties (bool or schema), items,
 * minItems, maxItems, uniqueItems, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * minLength, maxLength (in code points), pattern (POSIX extended regex), format ("uuid"),
 * oneOf, anyOf, allOf, not, $ref ("#/components/schemas/NAME" and
 * "#/components/contentDescriptors/NAME"), default, description, title, examples (ignored).
 * "integer" accepts JSON numbers that are integers; "number" accepts integers and doubles.
 * Pure code: no I/O, no logging.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct OpenRpc OpenRpc;
typedef struct OpenRpcMethod OpenRpcMethod;

/* Parses and indexes the document. Validates its shape (openrpc "1.2.x", info, methods with
 * name/params/result; unique method and param names; every $ref resolvable; every pattern
 * compiles). Returns 0, -EBADMSG for invalid JSON, -EINVAL for an invalid document (a static
 * description is stored in *ret_error when ret_error is not NULL), -ENOMEM. */
int openrpc_load(const char *text, size_t len, OpenRpc **ret, const char **ret_error);

/* Frees; NULL-safe; returns NULL. */
OpenRpc *openrpc_free(OpenRpc *o);

/* The whole document, borrowed (for rpc.discover: take a reference before adding it). */
json_object *openrpc_document(const OpenRpc *o);

/* Looks a method up by name; NULL when unknown. */
const OpenRpcMethod *openrpc_method(const OpenRpc *o, const char *name);

/* Number of methods and the i-th method, in document order. */
size_t openrpc_n_methods(const OpenRpc *o);
const OpenRpcMethod *openrpc_method_at(const OpenRpc *o, size_t i);

/* Accessors; strings are borrowed from the document. */
const char *openrpc_method_name(const OpenRpcMethod *m);
const char *openrpc_method_summary(const OpenRpcMethod *m);
/* The x-avatard-role of the method: "read", "operate", "admin" or "public"; "admin" when
 * absent, so a method nobody classified is never open by accident. */
const char *openrpc_method_role(const OpenRpcMethod *m);
/* Whether x-avatard-fds is true: the method accepts descriptors passed with its message. */
bool openrpc_method_accepts_fds(const OpenRpcMethod *m);

/* Result of a failed validation. `param` is the top-level param name at fault (NULL when the
 * params value itself is wrong, e.g. not an object); `path` a JSON-pointer-like location
 * inside it ("/tables/0/name", "" for the param itself); `message` a sentence such as
 * "missing required param 'count'", "unknown param 'cont'", "expected integer, got string",
 * "must be one of: en, fr", "must be >= 1". All malloc'd. */
typedef struct OpenRpcError {
        char *param;
        char *path;
        char *message;
} OpenRpcError;

/* Releases the members. */
void openrpc_error_done(OpenRpcError *e);

/* Validates `params` (borrowed; NULL = absent) against the method's params.
 * Accepts by-name (object) and, when the method's paramStructure is not "by-name", by-position
 * (array, mapped to the params in document order). Absent params equal {}.
 * Unknown params, missing required params and schema violations fail.
 * On success returns 0 and sets *ret_params to a new reference of a by-name object holding the
 * given params plus the schema "default" of each absent param that has one.
 * On failure returns -EINVAL and fills *ret_error. -ENOMEM on OOM. */
int openrpc_validate_params(const OpenRpc *o, const OpenRpcMethod *m, json_object *params,
                            json_object **ret_params, OpenRpcError *ret_error);

/* Validates an arbitrary value against the method's result schema (used by tests to prove
 * every reply matches the document). Same error reporting; param is NULL. */
int openrpc_validate_result(const OpenRpc *o, const OpenRpcMethod *m, json_object *result,
                            OpenRpcError *ret_error);
