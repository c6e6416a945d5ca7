/* SPDX-License-Identifier: MIT */
/*
 * Small json-c helpers below every other proto module: reference cleanup, adding a member
 * without leaking it, and lengths that tolerate a value of the wrong type. Header only; the
 * error builder (errors.c) and the JSON-RPC layer (jsonrpc.c) both use them, so they live
 * beneath both. jsonrpc.h includes this header for its users.
 */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stddef.h>

/* Length of an array, 0 for anything else (json_object_array_length() asserts on a non-array,
 * and JSON from peers or upstream may hold null or another type where an array is expected). */
static inline size_t json_array_len(json_object *o) {
        return json_object_is_type(o, json_type_array) ? json_object_array_length(o) : 0;
}

/* Number of members of an object, 0 for anything else. */
static inline int json_object_len(json_object *o) {
        return json_object_is_type(o, json_type_object) ? json_object_object_length(o) : 0;
}

/* Cleanup helper for json-c references, for _cleanup_(json_object_putp). */
static inline void json_object_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}

/* Adds key → val to an object (taking val); releases val and returns -ENOMEM when that
 * fails. */
static inline int json_object_add_or_put(json_object *o, const char *key, json_object *val) {
        if (json_object_object_add(o, key, val) < 0) {
                json_object_put(val);
                return -ENOMEM;
        }
        return 0;
}
