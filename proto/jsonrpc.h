/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 parsing and reply building (https://www.jsonrpc.org/specification).
 *
 * json-c ownership rules, used throughout the project:
 *   - json_object_object_add() and json_object_array_add() *steal* the reference passed in;
 *   - json_object_object_get_ex() and json_object_array_get_idx() return *borrowed* pointers;
 *   - json_object_get() takes an extra reference, json_object_put() releases one;
 *   - JSON null is represented by a NULL json_object pointer, so "member present with value
 *     null" and "member absent" are told apart with json_object_object_get_ex()'s return.
 * Every function here documents whether it takes or borrows its json_object arguments.
 *
 * Untrusted text is parsed with a depth limit, strict mode and UTF-8 validation, and trailing
 * bytes after the JSON text are an error. Because json-c's strict mode still takes a few
 * things that are not JSON (NaN, Infinity, "1.", raw control characters in strings, overlong
 * or surrogate UTF-8), the text is first checked token by token against RFC 8259. A member
 * name holding an escaped NUL ("a\u0000b") is refused too: json-c would cut it to "a".
 * An id is echoed byte for byte as it was written: json-c keeps the text of a number with a
 * fraction or an exponent (1.50, 1e3, 1e400), and an integer it cannot hold (below -2^63,
 * above 2^64-1, or -0, which it clamps or turns into 0) gets its text back from the frame,
 * so two different ids never share a reply. Elsewhere (params) such integers stay clamped.
 * Pure code: no I/O, no logging.
 */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jsonc-helpers.h"

/* One entry of a message: a request, a notification, or an entry that cannot be dispatched
 * (error != 0). The rule for replies is uniform: reply when has_id, with error as the code
 * when it is set.
 *   error == RPC_INVALID_REQUEST: not a valid request object. has_id is then always true (the
 *     specification wants a reply even without an id), and id is the entry's id when it had a
 *     valid one, else NULL (null).
 *   error == RPC_METHOD_NOT_FOUND: a valid request whose method name holds a NUL byte, which
 *     no method has and a C string cannot carry; has_id as in the request. */
typedef struct JsonRpcCall {
        bool has_id;          /* false for a notification */
        json_object *id;      /* owned reference; NULL when has_id is false or when id is null */
        char *method;         /* owned; NULL when error != 0 */
        json_object *params;  /* owned reference; NULL when params were absent */
        int error;            /* 0, RPC_INVALID_REQUEST or RPC_METHOD_NOT_FOUND, see above */
        const char *error_detail; /* static text for the error's error.data.detail */
} JsonRpcCall;

typedef struct JsonRpcMessage {
        bool is_batch;        /* the frame was an array */
        size_t n_calls;
        JsonRpcCall *calls;   /* owned array of n_calls entries */
} JsonRpcMessage;

/* Parses one frame. On success returns 0 and a message with at least one call.
 * When the frame cannot become a message, returns a negative errno and sets *ret_error_reply
 * to the complete reply object to send (id null):
 *   -EBADMSG: not valid JSON, not UTF-8, nested deeper than max_depth, or trailing bytes
 *             → Parse error (-32700);
 *   -EINVAL:  not an object or array, or an empty array → Invalid Request (-32600);
 *   -E2BIG:   a batch with more than max_batch entries → Invalid Request (-32600) whose
 *             data.detail names the limit;
 *   -ENOMEM:  no reply (*ret_error_reply is NULL).
 * ret_error_reply may be NULL; otherwise it is always written (NULL on success).
 * An invalid entry inside a batch does not fail the batch: it becomes a call with error set,
 * and its id is kept when the entry had a valid one. A single invalid request object is a
 * message of one call with error set. */
int jsonrpc_parse(const char *text, size_t len, unsigned max_depth, size_t max_batch,
                  JsonRpcMessage **ret, json_object **ret_error_reply);

/* The two halves of jsonrpc_parse(), public for the tests that hold them to each other:
 * jsonrpc_parse_fast() takes the common shape of a request (one object of "jsonrpc", "method"
 * and a plain "id", no params; see jsonrpc.c) without json-c's parser and returns 1 with the
 * message the full parse gives, 0 for any other text (nothing done), or -ENOMEM;
 * jsonrpc_parse_full() is the parse of any text. */
int jsonrpc_parse_fast(const char *text, size_t len, JsonRpcMessage **ret);
int jsonrpc_parse_full(const char *text, size_t len, unsigned max_depth, size_t max_batch,
                       JsonRpcMessage **ret, json_object **ret_error_reply);

/* Frees a message; NULL-safe; returns NULL. */
JsonRpcMessage *jsonrpc_message_free(JsonRpcMessage *m);

/* Moves the contents of calls[i] out to the caller (who then owns id/method/params) and
 * leaves the slot empty so jsonrpc_message_free() skips it. */
void jsonrpc_call_take(JsonRpcMessage *m, size_t i, JsonRpcCall *ret);

/* Releases the members of a call taken with jsonrpc_call_take(); the struct itself is the
 * caller's. */
void jsonrpc_call_done(JsonRpcCall *c);

/* Builds {"jsonrpc":"2.0","result":result,"id":id}. Borrows id (takes its own reference);
 * takes result (NULL means JSON null). Returns NULL on OOM (result is released). */
json_object *jsonrpc_result_new(json_object *id, json_object *result);

/* Builds {"jsonrpc":"2.0","error":error,"id":id}. Borrows id; takes `error` (an object from
 * rpc_error_object_new()). Returns NULL on OOM. */
json_object *jsonrpc_error_reply_new(json_object *id, json_object *error);

/* Shorthand: the error object built from (code, message, data) wrapped in a reply.
 * Borrows id; takes data. */
json_object *jsonrpc_error_new(json_object *id, int code, const char *message, json_object *data);

/* Builds a notification {"jsonrpc":"2.0","method":method,"params":params}. Takes params. */
json_object *jsonrpc_notification_new(const char *method, json_object *params);

/* Builds a request {"jsonrpc":"2.0","method","params","id"}: the client side. Takes params
 * (NULL omits the member); id is a number. */
json_object *jsonrpc_request_new(const char *method, json_object *params, long long id);

/* Serializes compactly for the wire (no slash escaping, no raw newlines) and appends "\n".
 * Returns 0 and a malloc'd string in *ret of *ret_len bytes (terminator included, plus a NUL
 * not counted), -ENOMEM, or -EINVAL when the text would hold a raw "\n" or "\r" (json-c
 * escapes them in strings; only a value with a hand-made serializer could). The text is always
 * valid UTF-8: a byte of a string that is not part of a well-formed sequence (json-c copies
 * strings' bytes as they are) becomes U+FFFD. */
int jsonrpc_serialize(json_object *o, char **ret, size_t *ret_len);

/* Serializes the reply {"jsonrpc":"2.0","result":result,"id":id} for the wire, as
 * jsonrpc_serialize(jsonrpc_result_new(id, result)) would, without building the reply object.
 * Borrows both (NULL is JSON null). Returns 0 with a malloc'd text ending in "\n" (valid
 * UTF-8, as jsonrpc_serialize()'s), -EINVAL, -ENOMEM. */
int jsonrpc_result_text(json_object *id, json_object *result, char **ret, size_t *ret_len);

/* The serializer flags every component uses on the wire. */
#define JSONRPC_WIRE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Parses untrusted JSON text of exactly `len` bytes (no trailing bytes allowed) with the
 * given depth limit, strict mode and UTF-8 validation. Returns 0 and a new reference (may be
 * NULL for the text "null"), -EBADMSG on any syntax error, -ENOMEM. Shared by the daemon
 * (upstream bodies, state files) and the client library. */
int json_parse_strict(const char *text, size_t len, unsigned max_depth, json_object **ret);

/* A value that is serialized as the JSON text given, by json-c (in a batch, a notification)
 * and by jsonrpc_result_text() alike, which copies it without a printbuf: for replies written
 * once and sent many times. The text is copied; it must be one JSON value with nothing around
 * it. A text that cannot go on the wire (frame_check_encodable()) gives NULL, as does a lack
 * of memory; bytes that are not UTF-8 become U+FFFD as in every reply. */
json_object *json_raw_new(const char *text, size_t len);
/* Serializes a value to exactly what json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS)
 * gives, faster (integers and plain strings without printf and printbuf; the reply writer's
 * own serializer). Returns 0 with a NUL-terminated text to free, or -ENOMEM. */
int json_to_wire_text(json_object *o, char **ret, size_t *ret_len);

/* A JSON text written piece by piece (a reply assembled from several modules' blocks, such as
 * daemon.status), byte for byte what json-c would write for the same values with
 * JSONRPC_WIRE_FLAGS. A failed allocation is remembered in `oom` and makes every later call
 * a no-op; the writer frees p. */
typedef struct JsonText JsonText;
struct JsonText {
        char *p;
        size_t n, cap;
        bool oom;
};

/* Makes room for n more bytes; false (and oom set) when memory is short. */
bool json_text_reserve(JsonText *t, size_t n);

/* Appends n bytes as they are. */
static inline void json_text_add(JsonText *t, const char *s, size_t n) {
        if (__builtin_expect(t->cap - t->n < n, 0) && !json_text_reserve(t, n))
                return;
        memcpy(t->p + t->n, s, n);
        t->n += n;
}
/* Appends a NUL-terminated text as it is (a key, punctuation: its length is known when it
 * is a literal). */
#define json_text_add_literal(t, s) json_text_add((t), (s), strlen(s))
/* Appends an integer as json-c writes it. */
void json_text_add_u64(JsonText *t, uint64_t v);
void json_text_add_i64(JsonText *t, int64_t v);
static inline void json_text_add_bool(JsonText *t, bool v) {
        if (v)
                json_text_add(t, "true", 4);
        else
                json_text_add(t, "false", 5);
}
/* Appends a string as json-c writes it (NULL: null). */
void json_text_add_str(JsonText *t, const char *s);
/* Appends a value as json_to_wire_text() writes it (NULL: null). Borrows o. */
void json_text_add_value(JsonText *t, json_object *o);
/* Appends what json_new_rounded(v, decimals) is written as. */
void json_text_add_rounded(JsonText *t, double v, int decimals);

/* A block of a JsonText kept with the values it was written from, to be copied instead of
 * written again while they are the same (values, never time, decide: what is copied is always
 * what would be written). The key is up to JSON_TEXT_MEMO_KEY_MAX numbers.
 *
 *         uint64_t key[] = { a, b };
 *         size_t start;
 *
 *         if (json_text_memo_hit(&m, t, key, ELEMENTSOF(key), &start))
 *                 return;
 *         ... write the block into t ...
 *         json_text_memo_keep(&m, t, start);
 */
#define JSON_TEXT_MEMO_KEY_MAX 40
typedef struct JsonTextMemo {
        uint64_t key[JSON_TEXT_MEMO_KEY_MAX];
        size_t n_key;
        bool valid;         /* text is the block written from key */
        char *text;
        size_t len, cap;
} JsonTextMemo;

/* Appends the kept text and returns true when it was written from this key; else takes the
 * key, sets *ret_start to where the block begins and returns false (a key longer than
 * JSON_TEXT_MEMO_KEY_MAX is never kept). */
bool json_text_memo_hit(JsonTextMemo *m, JsonText *t, const uint64_t *key, size_t n_key, size_t *ret_start);
/* Keeps what t holds from start on as the text of the key json_text_memo_hit() took. */
void json_text_memo_keep(JsonTextMemo *m, const JsonText *t, size_t start);
/* Frees the kept text. */
void json_text_memo_done(JsonTextMemo *m);

/* The text of a raw value (json_raw_new()); false for any other value. */
bool json_raw_get(json_object *o, const char **ret, size_t *ret_len);

/* A JSON number for a measured quantity, printed with `decimals` digits after the point
 * (e.g. seconds to the millisecond) instead of double noise such as 0.0648569999. New
 * reference or NULL on OOM. `decimals` is clamped to 0..9; NaN and infinities (which JSON
 * cannot carry) become 0; magnitudes of 1e15 and more use json-c's default form. */
json_object *json_new_rounded(double v, int decimals);

/* The text json_new_rounded() gives v (for |v| < 1e15, not NaN or infinite): what
 * snprintf("%.*f", decimals, v) writes, byte for byte, most often without printf. Returns its
 * length. */
#define JSON_ROUNDED_TEXT_MAX 64
size_t json_rounded_text(double v, int decimals, char buf[static JSON_ROUNDED_TEXT_MAX]);

/* Length of the well-formed UTF-8 sequence at s with n bytes available (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not
 * one. */
size_t utf8_sequence_len(const unsigned char *s, size_t n);
