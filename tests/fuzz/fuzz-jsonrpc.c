/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the dispatch path up to param validation (no handler, no upstream):
 * jsonrpc_parse() with the daemon's limits, then for every call what dispatch_run() does
 * before a handler runs — the method looked up in the real OpenRPC document (compiled in),
 * openrpc_validate_params(), and the reply built and serialized: an error reply for invalid
 * entries, unknown methods and invalid params; for valid params a result reply echoing the
 * validated params (which also goes through openrpc_validate_result(), and must serialize
 * through jsonrpc_result_text() to the same bytes as the reply object). Each reply (or the
 * batch of replies) must serialize to one line that parses back with json_parse_strict() and
 * carries "jsonrpc":"2.0", the call's id and a documented error code.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fuzz-check.h"
#include "jsonrpc.h"
#include "openrpc.h"
#include "protocol.h"

extern const char openrpc_document_text[];
extern const size_t openrpc_document_text_len;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replies are the request's nesting plus a few levels of envelope. */
#define REPLY_DEPTH_MAX (PROTO_JSON_DEPTH_MAX + 8)

static OpenRpc *doc;

/* Loads the OpenRPC document once. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *error = NULL;
        int r;

        (void) argc;
        (void) argv;
        r = openrpc_load(openrpc_document_text, openrpc_document_text_len, &doc, &error);
        if (r < 0) {
                fprintf(stderr, "openrpc_load: %s\n", error ? error : "failed");
                abort();
        }
        return 0;
}

/* Checks one parsed-back reply object against the call it answers (id NULL = null). */
static void check_reply(json_object *reply, json_object *id) {
        json_object *v, *e, *code, *message;

        assert(json_object_is_type(reply, json_type_object));
        assert(json_object_object_get_ex(reply, "jsonrpc", &v));
        assert(json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "2.0") == 0);
        assert(json_object_object_get_ex(reply, "id", &v));
        assert(json_object_equal(v, id));
        if (json_object_object_get_ex(reply, "error", &e)) {
                assert(!json_object_object_get_ex(reply, "result", NULL));
                assert(json_object_is_type(e, json_type_object));
                assert(json_object_object_get_ex(e, "code", &code) && json_object_is_type(code, json_type_int));
                assert(fuzz_code_known(json_object_get_int64(code)));
                assert(json_object_object_get_ex(e, "message", &message) &&
                       json_object_is_type(message, json_type_string));
        } else
                assert(json_object_object_get_ex(reply, "result", NULL));
}

/* Serializes a reply (or a batch array of replies), parses it back and returns the copy. */
static json_object *wire_round_trip(json_object *o) {
        json_object *back = NULL;
        char *text = NULL;
        size_t len = 0;
        int r;

        r = jsonrpc_serialize(o, &text, &len);
        assert(r == 0);
        assert(len > 0 && text[len - 1] == '\n' && text[len] == '\0');
        /* One frame: the only newline (and no carriage return) is the terminator. */
        assert(!memchr(text, '\n', len - 1));
        assert(!memchr(text, '\r', len - 1));
        r = json_parse_strict(text, len - 1, REPLY_DEPTH_MAX, &back);
        assert(r == 0);
        assert(json_object_equal(o, back));
        free(text);
        return back;
}

/* What dispatch_run() does for one call before a handler; returns the reply or NULL. */
static json_object *answer(const JsonRpcCall *c) {
        OpenRpcError verr = {};
        const OpenRpcMethod *m;
        json_object *params = NULL, *reply, *data;
        char *direct = NULL;
        size_t direct_len = 0;
        int r;

        if (c->error) {
                assert(c->error == RPC_INVALID_REQUEST || c->error == RPC_METHOD_NOT_FOUND);
                assert(!c->method && c->error_detail);
                data = json_object_new_object();
                json_object_object_add(data, "detail", json_object_new_string(c->error_detail));
                return c->has_id ? jsonrpc_error_new(c->id, c->error, NULL, data) : (json_object_put(data), NULL);
        }
        assert(c->method);
        assert(c->has_id || !c->id);

        m = strlen(c->method) <= PROTO_METHOD_NAME_MAX ? openrpc_method(doc, c->method) : NULL;
        if (!m) {
                data = json_object_new_object();
                json_object_object_add(data, "method", json_object_new_string(c->method));
                reply = jsonrpc_error_new(c->id, RPC_METHOD_NOT_FOUND, "Method not found", data);
        } else {
                assert(strcmp(openrpc_method_name(m), c->method) == 0);
                r = openrpc_validate_params(doc, m, c->params, &params, &verr);
                if (r == 0) {
                        /* The validated params are a by-name object; validating them as a
                         * result exercises the result schemas with arbitrary values. */
                        OpenRpcError rerr = {};

                        assert(json_object_is_type(params, json_type_object));
                        r = openrpc_validate_result(doc, m, params, &rerr);
                        assert(r == 0 || r == -EINVAL);
                        assert(r == 0 || rerr.message);
                        openrpc_error_done(&rerr);
                        /* The daemon writes results straight to text: the same bytes as the
                         * reply object would give. */
                        r = jsonrpc_result_text(c->id, params, &direct, &direct_len);
                        assert(r == 0);
                        reply = jsonrpc_result_new(c->id, params);
                } else {
                        char *message = NULL;

                        assert(r == -EINVAL);
                        assert(verr.message && verr.path);
                        data = json_object_new_object();
                        if (verr.param)
                                json_object_object_add(data, "param", json_object_new_string(verr.param));
                        if (verr.path[0])
                                json_object_object_add(data, "path", json_object_new_string(verr.path));
                        json_object_object_add(data, "detail", json_object_new_string(verr.message));
                        assert(asprintf(&message, "Invalid params: %s", verr.message) >= 0);
                        reply = jsonrpc_error_new(c->id, RPC_INVALID_PARAMS, message, data);
                        free(message);
                }
        }
        openrpc_error_done(&verr);
        assert(reply);
        if (direct) {
                char *text = NULL;
                size_t len = 0;

                r = jsonrpc_serialize(reply, &text, &len);
                assert(r == 0);
                assert(len == direct_len && memcmp(text, direct, len) == 0);
                free(text);
                free(direct);
        }
        if (!c->has_id) {
                /* A notification gets no reply, but the reply must still be well formed. */
                json_object_put(wire_round_trip(reply));
                json_object_put(reply);
                return NULL;
        }
        return reply;
}

/* One input: one frame as the daemon would receive it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        JsonRpcMessage *msg = NULL;
        json_object *err_reply = NULL, *replies, *back;
        int r;

        r = jsonrpc_parse((const char *) data, size, PROTO_JSON_DEPTH_MAX, PROTO_BATCH_MAX, &msg,
                          &err_reply);
        if (r < 0) {
                assert(r == -EBADMSG || r == -EINVAL || r == -E2BIG);
                assert(!msg && err_reply);
                back = wire_round_trip(err_reply);
                check_reply(back, NULL);
                json_object_put(back);
                json_object_put(err_reply);
                return 0;
        }
        assert(msg && !err_reply);
        assert(msg->n_calls >= 1 && msg->n_calls <= PROTO_BATCH_MAX);
        assert(msg->is_batch || msg->n_calls == 1);

        replies = json_object_new_array();
        for (size_t i = 0; i < msg->n_calls; i++) {
                json_object *reply = answer(&msg->calls[i]);

                if (!reply)
                        continue;
                back = wire_round_trip(reply);
                check_reply(back, msg->calls[i].id);
                json_object_put(back);
                json_object_array_add(replies, reply);
        }
        /* A batch goes out as one array when any entry has a reply. */
        if (msg->is_batch && json_object_array_length(replies) > 0)
                json_object_put(wire_round_trip(replies));

        json_object_put(replies);
        jsonrpc_message_free(msg);
        return 0;
}
