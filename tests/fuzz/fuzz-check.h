/* SPDX-License-Identifier: MIT */
/*
 * What the harnesses that read the daemon's replies check of each JSON-RPC object it sends
 * (fuzz-jsonrpc.c, fuzz-dispatch.c, fuzz-client.c).
 */
#pragma once

#include <assert.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "errors.h"

/* Whether an error code is one of the documented classes. */
static inline bool fuzz_code_known(int64_t code) {
        size_t n;
        const RpcErrorInfo *t = rpc_error_table(&n);

        for (size_t i = 0; i < n; i++)
                if (t[i].code == code)
                        return true;
        return false;
}

/* One JSON-RPC object the daemon sent: a notification (a method, no id), or a reply with an
 * id and either a result or an error of a documented class with a message. */
static inline void fuzz_check_message(json_object *m) {
        json_object *v, *e;

        assert(json_object_is_type(m, json_type_object));
        assert(json_object_object_get_ex(m, "jsonrpc", &v) && strcmp(json_object_get_string(v), "2.0") == 0);
        if (json_object_object_get_ex(m, "method", &v)) {
                assert(json_object_is_type(v, json_type_string));
                assert(!json_object_object_get_ex(m, "id", NULL));
                return;
        }
        assert(json_object_object_get_ex(m, "id", NULL));
        if (json_object_object_get_ex(m, "error", &e)) {
                assert(!json_object_object_get_ex(m, "result", NULL));
                assert(json_object_object_get_ex(e, "code", &v) && json_object_is_type(v, json_type_int));
                assert(fuzz_code_known(json_object_get_int64(v)));
                assert(json_object_object_get_ex(e, "message", &v) && json_object_is_type(v, json_type_string));
        } else
                assert(json_object_object_get_ex(m, "result", NULL));
}
