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
 * Schemas may also be the booleans true and false. Schema $refs name components.schemas;
 * params and result $refs name components.contentDescriptors. Other formats than "uuid" are
 * annotations (not checked). Annotation keywords ($comment, deprecated, readOnly, writeOnly,
 * x-...) are accepted; any other keyword is refused at load, so that a typo or an unsupported
 * keyword (multipleOf, patternProperties...) cannot silently skip a check. Patterns are POSIX
 * extended regular expressions, unanchored like JSON Schema's ("\d" is refused: write [0-9]).
 * Pure code: no I/O, no logging.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct OpenRpc OpenRpc;
typedef struct OpenRpcMethod OpenRpcMethod;

/* Parses and indexes the document. Validates its shape (openrpc "1.x", info with title and
 * version, methods with name/params/result; unique method and param names; every $ref
 * resolvable and no $ref/allOf/anyOf/oneOf/not cycle; every keyword supported and well-typed;
 * every pattern compiles; every param default matches its schema; x-avatard-role and
 * x-avatard-fds well-formed). Returns 0, -EBADMSG for invalid JSON, -EINVAL for an invalid
 * document, -ENOMEM; for -EBADMSG and -EINVAL a static description is stored in *ret_error
 * when ret_error is not NULL. */
int openrpc_load(const char *text, size_t len, OpenRpc **ret, const char **ret_error);

/* Frees; NULL-safe; returns NULL. */
OpenRpc *openrpc_free(OpenRpc *o);

/* The whole document, borrowed (for rpc.discover: take a reference before adding it). */
json_object *openrpc_document(const OpenRpc *o);

/* Looks a method up by name (binary search over a sorted index); NULL when unknown. */
const OpenRpcMethod *openrpc_method(const OpenRpc *o, const char *name);

/* Number of methods and the i-th method, in document order. */
size_t openrpc_n_methods(const OpenRpc *o);
const OpenRpcMethod *openrpc_method_at(const OpenRpc *o, size_t i);

/* Accessors; strings are borrowed from the document. The summary is "" when absent. */
const char *openrpc_method_name(const OpenRpcMethod *m);
const char *openrpc_method_summary(const OpenRpcMethod *m);
/* The x-avatard-role of the method: "read", "operate", "admin" or "public"; "admin" when
 * absent, so a method nobody classified is never open by accident. */
const char *openrpc_method_role(const OpenRpcMethod *m);
/* Whether x-avatard-fds is true: the method accepts descriptors passed with its message. */
bool openrpc_method_accepts_fds(const OpenRpcMethod *m);

/* Result of a failed validation. `param` is the top-level param name at fault (NULL when the
 * params value itself is wrong, e.g. too many by position); `path` a JSON-pointer-like
 * location inside it ("/0/name", "" for the param itself; ~ and / in names escaped as ~0 and
 * ~1); `message` a complete sentence for a human at a terminal, naming the param and the
 * problem:
 *   "missing required param 'set_name'"
 *   "unknown param 'cont' (known: count)"
 *   "invalid param 'count': expected integer, got string"
 *   "invalid param 'report_language': must be one of \"en\", \"fr\""
 *   "invalid param 'k': must be >= 1"
 *   "invalid param 'tables' at /0/name: expected string, got integer"
 *   "too many params: 3 given, the method takes at most 2"
 * Names taken from the request are cut to 64 bytes in messages. All malloc'd. */
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
 * Unknown params, missing required params and schema violations fail. The first error is
 * reported, in a fixed order: unknown params, then missing required params, then each param
 * in document order (inside an object value likewise: unknown members, missing members, then
 * each member).
 * On success returns 0 and sets *ret_params (when not NULL) to a new reference of a by-name
 * object holding, in document order, the given params (shared references) plus a deep copy of
 * the schema "default" of each absent param that has one (looked up through a $ref).
 * On failure returns -EINVAL and fills *ret_error (when not NULL). -ENOMEM on OOM. */
int openrpc_validate_params(const OpenRpc *o, const OpenRpcMethod *m, json_object *params,
                            json_object **ret_params, OpenRpcError *ret_error);

/* Whether s[0..n) is a UUID in the canonical 8-4-4-4-12 form, any case: the check of the
 * schemas' "format": "uuid" (runner_id and other ids), and of a runner id read from a state
 * file (runner.c). */
bool string_is_uuid(const char *s, size_t n);

/* Validates an arbitrary value against the method's result schema (used by tests to prove
 * every reply matches the document). Same error reporting; param is NULL. */
int openrpc_validate_result(const OpenRpc *o, const OpenRpcMethod *m, json_object *result,
                            OpenRpcError *ret_error);
