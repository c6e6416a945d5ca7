/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers of the daemon, beneath every module that reads upstream answers, state files
 * or call params: typed member access that tolerates a missing or mistyped member, array
 * membership, deep copies. proto's jsonc-helpers.h (through jsonrpc.h) has the ones the wire
 * code needs too.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

/* A string member of an object, or NULL (absent, not a string, or o not an object). */
const char *json_str(json_object *o, const char *key);

/* Whether an array holds the string s (false for anything but an array). */
bool json_array_has_str(json_object *a, const char *s);

/* Deep copy, NULL on OOM. */
json_object *json_copy(json_object *o);
