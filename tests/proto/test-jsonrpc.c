/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of JSON-RPC 2.0 parsing and reply building (proto/jsonrpc.c): every example of
 * the specification (https://www.jsonrpc.org/specification, section 7), the request object
 * rules, strict JSON, limits and the wire serialization.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "errors.h"
#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"

/* Cleanup helper for json-c references. */
static void jo_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}

/* Cleanup helper for messages. */
static void message_freep(JsonRpcMessage **m) {
        jsonrpc_message_free(*m);
}

#define _cleanup_json_ _cleanup_(jo_putp)
#define _cleanup_message_ _cleanup_(message_freep)

/* Parses n bytes with the protocol's limits. */
static int parse_n(const char *text, size_t n, JsonRpcMessage **m, json_object **reply) {
        return jsonrpc_parse(text, n, PROTO_JSON_DEPTH_MAX, PROTO_BATCH_MAX, m, reply);
}

/* Parses a C string with the protocol's limits. */
static int parse(const char *text, JsonRpcMessage **m, json_object **reply) {
        return parse_n(text, strlen(text), m, reply);
}

/* The wire form of o, without the trailing newline, in a static buffer for comparisons. */
static const char *wire(json_object *o) {
        static char buf[4096];
        _cleanup_free_ char *s = NULL;
        size_t n;

        ck_assert_int_eq(jsonrpc_serialize(o, &s, &n), 0);
        ck_assert_uint_ge(n, 1);
        ck_assert_int_eq(s[n - 1], '\n');
        ck_assert_ptr_eq(memchr(s, '\n', n), s + n - 1);
        ck_assert_uint_eq(strlen(s), n);
        ck_assert_uint_lt(n, sizeof(buf));
        memcpy(buf, s, n - 1);
        buf[n - 1] = '\0';
        return buf;
}

/* Asserts that the text is refused with the given errno and that the reply is exactly
 * `reply` on the wire. */
static void refused(const char *text, size_t n, int r, const char *reply) {
        JsonRpcMessage *m = NULL;
        _cleanup_json_ json_object *e = NULL;

        ck_assert_int_eq(parse_n(text, n, &m, &e), r);
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(wire(e), reply);
}

#define PARSE_ERROR_REPLY \
        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"Parse error\"," \
        "\"data\":{\"name\":\"parse_error\",\"retryable\":false}},\"id\":null}"

/* Asserts a parse error for a C string. */
static void parse_error(const char *text) {
        refused(text, strlen(text), -EBADMSG, PARSE_ERROR_REPLY);
}

/* Asserts a parse error for n bytes. */
static void parse_error_n(const char *text, size_t n) {
        refused(text, n, -EBADMSG, PARSE_ERROR_REPLY);
}

/* Parses a single request that must be valid and returns it. */
static JsonRpcMessage *parse_one(const char *text) {
        JsonRpcMessage *m = NULL;
        json_object *e = NULL;

        ck_assert_int_eq(parse(text, &m, &e), 0);
        ck_assert_ptr_null(e);
        ck_assert_ptr_nonnull(m);
        ck_assert(!m->is_batch);
        ck_assert_uint_eq(m->n_calls, 1);
        return m;
}

/* Asserts that a single request object is an Invalid Request entry with a null id. */
static void invalid_one(const char *text) {
        _cleanup_message_ JsonRpcMessage *m = parse_one(text);

        ck_assert_int_eq(m->calls[0].error, RPC_INVALID_REQUEST);
        ck_assert_ptr_nonnull(m->calls[0].error_detail);
        ck_assert(m->calls[0].has_id);
        ck_assert_ptr_null(m->calls[0].id);
        ck_assert_ptr_null(m->calls[0].method);
        ck_assert_ptr_null(m->calls[0].params);
}

/* ---- the specification's examples ---- */

START_TEST(test_spec_positional) {
        _cleanup_message_ JsonRpcMessage *m =
                parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42, 23], \"id\": 1}");
        JsonRpcCall *c = &m->calls[0];

        ck_assert_int_eq(c->error, 0);
        ck_assert_str_eq(c->method, "subtract");
        ck_assert(c->has_id);
        ck_assert(json_object_is_type(c->id, json_type_int));
        ck_assert_int_eq(json_object_get_int(c->id), 1);
        ck_assert(json_object_is_type(c->params, json_type_array));
        ck_assert_str_eq(json_object_to_json_string_ext(c->params, JSONRPC_WIRE_FLAGS), "[42,23]");
}
END_TEST

START_TEST(test_spec_named) {
        _cleanup_message_ JsonRpcMessage *m =
                parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": "
                          "{\"subtrahend\": 23, \"minuend\": 42}, \"id\": 3}");
        _cleanup_json_ json_object *reply = NULL;
        JsonRpcCall *c = &m->calls[0];

        ck_assert_int_eq(c->error, 0);
        ck_assert(json_object_is_type(c->params, json_type_object));
        reply = jsonrpc_result_new(c->id, json_object_new_int(19));
        ck_assert_str_eq(wire(reply), "{\"jsonrpc\":\"2.0\",\"result\":19,\"id\":3}");
}
END_TEST

START_TEST(test_spec_notifications) {
        _cleanup_message_ JsonRpcMessage *a =
                parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": [1,2,3,4,5]}");
        _cleanup_message_ JsonRpcMessage *b = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"foobar\"}");

        ck_assert_int_eq(a->calls[0].error, 0);
        ck_assert(!a->calls[0].has_id);
        ck_assert_ptr_null(a->calls[0].id);
        ck_assert_str_eq(a->calls[0].method, "update");
        ck_assert_int_eq(b->calls[0].error, 0);
        ck_assert(!b->calls[0].has_id);
        ck_assert_ptr_null(b->calls[0].params);
}
END_TEST

START_TEST(test_spec_method_not_found) {
        /* A valid request: the dispatcher answers -32601, the parser has nothing to say. */
        _cleanup_message_ JsonRpcMessage *m = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}");
        _cleanup_json_ json_object *reply = NULL;

        ck_assert_int_eq(m->calls[0].error, 0);
        reply = jsonrpc_error_new(m->calls[0].id, RPC_METHOD_NOT_FOUND, NULL, NULL);
        ck_assert_str_eq(wire(reply), "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":"
                         "\"Method not found\",\"data\":{\"name\":\"method_not_found\",\"retryable\":false}},"
                         "\"id\":\"1\"}");
}
END_TEST

START_TEST(test_spec_invalid_json) {
        parse_error("{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]");
}
END_TEST

START_TEST(test_spec_invalid_request_object) {
        _cleanup_message_ JsonRpcMessage *m = parse_one("{\"jsonrpc\": \"2.0\", \"method\": 1, \"params\": \"bar\"}");
        _cleanup_json_ json_object *reply = NULL;

        ck_assert_int_eq(m->calls[0].error, RPC_INVALID_REQUEST);
        ck_assert(m->calls[0].has_id);
        ck_assert_ptr_null(m->calls[0].id);
        reply = jsonrpc_error_new(m->calls[0].id, m->calls[0].error, NULL, NULL);
        ck_assert_str_eq(wire(reply), "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":"
                         "\"Invalid Request\",\"data\":{\"name\":\"invalid_request\",\"retryable\":false}},"
                         "\"id\":null}");
}
END_TEST

START_TEST(test_spec_batch_invalid_json) {
        parse_error("[\n"
                    "  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n"
                    "  {\"jsonrpc\": \"2.0\", \"method\"\n"
                    "]");
}
END_TEST

START_TEST(test_spec_empty_array) {
        refused("[]", 2, -EINVAL,
                "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":\"Invalid Request\","
                "\"data\":{\"detail\":\"empty batch\",\"name\":\"invalid_request\",\"retryable\":false}},"
                "\"id\":null}");
        refused(" [ ] ", 5, -EINVAL,
                "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":\"Invalid Request\","
                "\"data\":{\"detail\":\"empty batch\",\"name\":\"invalid_request\",\"retryable\":false}},"
                "\"id\":null}");
}
END_TEST

/* Asserts that every entry of a batch of n is an Invalid Request with id null. */
static void invalid_batch(const char *text, size_t n) {
        _cleanup_message_ JsonRpcMessage *m = NULL;
        json_object *e = NULL;

        ck_assert_int_eq(parse(text, &m, &e), 0);
        ck_assert_ptr_null(e);
        ck_assert(m->is_batch);
        ck_assert_uint_eq(m->n_calls, n);
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(m->calls[i].error, RPC_INVALID_REQUEST);
                ck_assert(m->calls[i].has_id);
                ck_assert_ptr_null(m->calls[i].id);
                ck_assert_ptr_null(m->calls[i].method);
        }
}

START_TEST(test_spec_invalid_batch_not_empty) {
        invalid_batch("[1]", 1);
}
END_TEST

START_TEST(test_spec_invalid_batch) {
        invalid_batch("[1,2,3]", 3);
        invalid_batch("[null, \"x\", [], true]", 4);
}
END_TEST

START_TEST(test_spec_mixed_batch) {
        _cleanup_message_ JsonRpcMessage *m = NULL;
        json_object *e = NULL;

        ck_assert_int_eq(parse("[\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]},\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42,23], \"id\": \"2\"},\n"
                               "  {\"foo\": \"boo\"},\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"foo.get\", \"params\": {\"name\": \"myself\"}, \"id\": \"5\"},\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"get_data\", \"id\": \"9\"}\n"
                               "]", &m, &e), 0);
        ck_assert(m->is_batch);
        ck_assert_uint_eq(m->n_calls, 6);

        ck_assert_int_eq(m->calls[0].error, 0);
        ck_assert_str_eq(m->calls[0].method, "sum");
        ck_assert_str_eq(json_object_get_string(m->calls[0].id), "1");

        ck_assert_int_eq(m->calls[1].error, 0);
        ck_assert(!m->calls[1].has_id);
        ck_assert_str_eq(m->calls[1].method, "notify_hello");

        ck_assert_int_eq(m->calls[2].error, 0);
        ck_assert_str_eq(json_object_get_string(m->calls[2].id), "2");

        ck_assert_int_eq(m->calls[3].error, RPC_INVALID_REQUEST);
        ck_assert(m->calls[3].has_id);
        ck_assert_ptr_null(m->calls[3].id);

        ck_assert_int_eq(m->calls[4].error, 0);
        ck_assert_str_eq(m->calls[4].method, "foo.get");
        ck_assert(json_object_is_type(m->calls[4].params, json_type_object));

        ck_assert_int_eq(m->calls[5].error, 0);
        ck_assert_str_eq(m->calls[5].method, "get_data");
        ck_assert_ptr_null(m->calls[5].params);
        ck_assert_str_eq(json_object_get_string(m->calls[5].id), "9");
}
END_TEST

START_TEST(test_spec_all_notifications) {
        _cleanup_message_ JsonRpcMessage *m = NULL;
        json_object *e = NULL;

        ck_assert_int_eq(parse("[\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_sum\", \"params\": [1,2,4]},\n"
                               "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]}\n"
                               "]", &m, &e), 0);
        ck_assert(m->is_batch);
        ck_assert_uint_eq(m->n_calls, 2);
        for (size_t i = 0; i < 2; i++) {
                ck_assert_int_eq(m->calls[i].error, 0);
                ck_assert(!m->calls[i].has_id);
        }
}
END_TEST

/* ---- request object rules ---- */

START_TEST(test_jsonrpc_member) {
        invalid_one("{\"method\": \"a\", \"id\": null}");
        invalid_one("{\"jsonrpc\": \"1.0\", \"method\": \"a\"}");
        invalid_one("{\"jsonrpc\": 2.0, \"method\": \"a\"}");
        invalid_one("{\"jsonrpc\": \"2.0 \", \"method\": \"a\"}");
        invalid_one("{\"jsonrpc\": \"2.00\", \"method\": \"a\"}");
        invalid_one("{\"jsonrpc\": null, \"method\": \"a\"}");
        /* a NUL after "2.0" must not pass a C string comparison */
        invalid_one("{\"jsonrpc\": \"2.0\\u0000\", \"method\": \"a\"}");
}
END_TEST

START_TEST(test_method_member) {
        _cleanup_message_ JsonRpcMessage *rpc = NULL, *nul = NULL, *nul_notif = NULL;

        invalid_one("{\"jsonrpc\": \"2.0\"}");
        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": null}");
        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": [\"a\"]}");
        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": {}}");

        /* rpc.* names are allowed: rpc.discover is ours */
        rpc = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"rpc.discover\", \"id\": 1}");
        ck_assert_int_eq(rpc->calls[0].error, 0);
        ck_assert_str_eq(rpc->calls[0].method, "rpc.discover");

        /* A name with a NUL cannot name any method (its prefix could). */
        nul = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"daemon.status\\u0000x\", \"id\": 4}");
        ck_assert_int_eq(nul->calls[0].error, RPC_METHOD_NOT_FOUND);
        ck_assert_ptr_null(nul->calls[0].method);
        ck_assert(nul->calls[0].has_id);
        ck_assert_int_eq(json_object_get_int(nul->calls[0].id), 4);
        nul_notif = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\\u0000\"}");
        ck_assert_int_eq(nul_notif->calls[0].error, RPC_METHOD_NOT_FOUND);
        ck_assert(!nul_notif->calls[0].has_id);
}
END_TEST

START_TEST(test_params_member) {
        _cleanup_message_ JsonRpcMessage *o = NULL, *a = NULL;

        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"params\": \"bar\"}");
        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"params\": 1}");
        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"params\": true}");
        invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"params\": null}");

        o = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"params\": {}}");
        ck_assert_int_eq(o->calls[0].error, 0);
        ck_assert(json_object_is_type(o->calls[0].params, json_type_object));
        a = parse_one("{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"params\": []}");
        ck_assert_int_eq(a->calls[0].error, 0);
        ck_assert(json_object_is_type(a->calls[0].params, json_type_array));
}
END_TEST

/* Parses a request with the given id text and checks the result reply echoes it. */
static void id_echoed(const char *id_text) {
        _cleanup_free_ char *req = NULL, *want = NULL;
        _cleanup_message_ JsonRpcMessage *m = NULL;
        _cleanup_json_ json_object *reply = NULL;

        ck_assert_int_ge(asprintf(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":%s}", id_text), 0);
        ck_assert_int_ge(asprintf(&want, "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":%s}", id_text), 0);
        m = parse_one(req);
        ck_assert_int_eq(m->calls[0].error, 0);
        ck_assert(m->calls[0].has_id);
        reply = jsonrpc_result_new(m->calls[0].id, json_object_new_boolean(true));
        ck_assert_str_eq(wire(reply), want);
}

START_TEST(test_id_types) {
        id_echoed("\"abc\"");
        id_echoed("\"\"");
        id_echoed("\"a/b\\\"c\"");
        id_echoed("7");
        id_echoed("0");
        id_echoed("-12");
        id_echoed("9007199254740993");
        id_echoed("1.5");
        id_echoed("1.50");
        id_echoed("-0.25");
        id_echoed("1e3");
        id_echoed("2E-2");
        id_echoed("null");
}
END_TEST

/* An id json-c cannot hold (an integer beyond 64 bits, -0) is echoed as written, as are the
 * edges it holds and numbers with a fraction or an exponent. Before, 18446744073709551616 and
 * 99999999999999999999 both came back as 18446744073709551615, -9223372036854775809 as
 * -9223372036854775808, and -0 as 0. */
START_TEST(test_id_exact) {
        static const char *const ids[] = {
                "9223372036854775807",  /* INT64_MAX */
                "9223372036854775808",  /* INT64_MAX + 1 */
                "-9223372036854775808", /* -2^63 */
                "-9223372036854775809", /* -2^63 - 1 */
                "18446744073709551615", /* UINT64_MAX */
                "18446744073709551616", /* UINT64_MAX + 1 */
                "18446744073709551617",
                "99999999999999999999",
                "123456789012345678901234567890123456789012345678901234567890",
                "-123456789012345678901234567890",
                "-0",
                "-0.0",
                "0",
                "1.5",
                "1e3",
                "1E+3",
                "1.0e-3",
                "1e400",
                "-1e400",
                "100000000000000000000.0",
        };

        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                id_echoed(ids[i]);
}
END_TEST

/* The reply to entry i of a batch, on the wire, built as the daemon does for a result (or an
 * error for an invalid entry). */
static const char *batch_reply(JsonRpcMessage *m, size_t i) {
        _cleanup_json_ json_object *reply = NULL;

        ck_assert_uint_lt(i, m->n_calls);
        if (m->calls[i].error)
                reply = jsonrpc_error_new(m->calls[i].id, m->calls[i].error, NULL, NULL);
        else
                reply = jsonrpc_result_new(m->calls[i].id, json_object_new_boolean(true));
        return wire(reply);
}

/* The text comes from the "id" member of the right entry, whatever else looks like one: an
 * escaped member name, duplicates (json-c keeps the last), an "id" in params or in a string,
 * entries that are not objects, an invalid request. */
START_TEST(test_id_exact_where) {
        _cleanup_message_ JsonRpcMessage *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *f = NULL;
        json_object *err = NULL;

        a = parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"\\u0069d\":18446744073709551616}");
        ck_assert_str_eq(batch_reply(a, 0), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":18446744073709551616}");

        b = parse_one("{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\" : 18446744073709551617 }");
        ck_assert_str_eq(batch_reply(b, 0), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":18446744073709551617}");
        c = parse_one("{\"id\":18446744073709551617,\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":\"x\"}");
        ck_assert_str_eq(batch_reply(c, 0), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":\"x\"}");

        d = parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"id\":-99999999999999999999,"
                      "\"x\":[{\"id\":5}]},\"id\":99999999999999999999}");
        ck_assert_str_eq(batch_reply(d, 0), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":99999999999999999999}");

        ck_assert_int_eq(parse("[{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":18446744073709551616},"
                               "5,[\"id\",1],"
                               "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[\"a,{}\\\"id\\\":1\"],"
                               "\"id\":-9223372036854775809},"
                               "{\"jsonrpc\":\"1.0\",\"method\":\"m\",\"id\":18446744073709551618},"
                               "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":7}]", &e, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_uint_eq(e->n_calls, 6);
        ck_assert_str_eq(batch_reply(e, 0), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":18446744073709551616}");
        ck_assert_ptr_null(e->calls[1].id);
        ck_assert_ptr_null(e->calls[2].id);
        ck_assert_str_eq(batch_reply(e, 3), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":-9223372036854775809}");
        ck_assert_int_eq(e->calls[4].error, RPC_INVALID_REQUEST);
        ck_assert_ptr_nonnull(strstr(batch_reply(e, 4), ",\"id\":18446744073709551618}"));
        ck_assert_str_eq(batch_reply(e, 5), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":7}");

        /* a big integer in params only: params keep json-c's value, the id is untouched */
        f = parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[18446744073709551616],\"id\":3}");
        ck_assert_str_eq(batch_reply(f, 0), "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":3}");
        ck_assert_uint_eq(json_object_get_uint64(json_object_array_get_idx(f->calls[0].params, 0)), UINT64_MAX);
}
END_TEST

/* Two requests whose ids json-c would clamp to the same value get different replies, and
 * jsonrpc_result_text() (the daemon's path for results) echoes them too. */
START_TEST(test_id_exact_no_collision) {
        _cleanup_message_ JsonRpcMessage *a = parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":18446744073709551616}");
        _cleanup_message_ JsonRpcMessage *b = parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":18446744073709551617}");
        _cleanup_free_ char *ta = NULL, *tb = NULL;
        size_t na, nb;

        ck_assert_int_eq(jsonrpc_result_text(a->calls[0].id, NULL, &ta, &na), 0);
        ck_assert_int_eq(jsonrpc_result_text(b->calls[0].id, NULL, &tb, &nb), 0);
        ck_assert_str_eq(ta, "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":18446744073709551616}\n");
        ck_assert_str_eq(tb, "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":18446744073709551617}\n");
}
END_TEST

START_TEST(test_id_null_is_request) {
        _cleanup_message_ JsonRpcMessage *m = parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":null}");

        ck_assert_int_eq(m->calls[0].error, 0);
        ck_assert(m->calls[0].has_id);
        ck_assert_ptr_null(m->calls[0].id);
}
END_TEST

START_TEST(test_id_invalid) {
        invalid_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":true}");
        invalid_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":{}}");
        invalid_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":[1]}");
}
END_TEST

START_TEST(test_invalid_keeps_valid_id) {
        _cleanup_message_ JsonRpcMessage *m = parse_one("{\"jsonrpc\":\"2.0\",\"method\":1,\"id\":5}");
        _cleanup_message_ JsonRpcMessage *s = parse_one("{\"id\":\"x\"}");

        ck_assert_int_eq(m->calls[0].error, RPC_INVALID_REQUEST);
        ck_assert_int_eq(json_object_get_int(m->calls[0].id), 5);
        ck_assert_int_eq(s->calls[0].error, RPC_INVALID_REQUEST);
        ck_assert_str_eq(json_object_get_string(s->calls[0].id), "x");
}
END_TEST

START_TEST(test_extra_members_ignored) {
        _cleanup_message_ JsonRpcMessage *m =
                parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1,\"extra\":[1,2],\"x\":{}}");

        ck_assert_int_eq(m->calls[0].error, 0);
        ck_assert_str_eq(m->calls[0].method, "m");
}
END_TEST

START_TEST(test_top_level_scalars) {
        static const char *const texts[] = { "1", "\"x\"", "null", "true", "false", "-2.5" };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                refused(texts[i], strlen(texts[i]), -EINVAL,
                        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":\"Invalid Request\","
                        "\"data\":{\"detail\":\"a request must be an object or an array\","
                        "\"name\":\"invalid_request\",\"retryable\":false}},\"id\":null}");
}
END_TEST

/* Builds a batch of n notifications. */
static char *batch_new(size_t n) {
        static const char entry[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\"}";
        char *s = malloc(2 + n * (STRLEN(entry) + 1) + 1), *p;

        ck_assert_ptr_nonnull(s);
        p = s;
        *p++ = '[';
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                memcpy(p, entry, STRLEN(entry));
                p += STRLEN(entry);
        }
        *p++ = ']';
        *p = '\0';
        return s;
}

START_TEST(test_batch_limit) {
        _cleanup_free_ char *ok = batch_new(PROTO_BATCH_MAX), *over = batch_new(PROTO_BATCH_MAX + 1);
        _cleanup_message_ JsonRpcMessage *m = NULL;
        JsonRpcMessage *m2 = NULL;
        _cleanup_json_ json_object *e = NULL;
        json_object *err, *data, *v;

        ck_assert_int_eq(parse(ok, &m, NULL), 0);
        ck_assert_uint_eq(m->n_calls, PROTO_BATCH_MAX);

        ck_assert_int_eq(parse(over, &m2, &e), -E2BIG);
        ck_assert_ptr_null(m2);
        ck_assert(json_object_object_get_ex(e, "error", &err));
        ck_assert(json_object_object_get_ex(err, "code", &v));
        ck_assert_int_eq(json_object_get_int(v), RPC_INVALID_REQUEST);
        ck_assert(json_object_object_get_ex(err, "data", &data));
        ck_assert(json_object_object_get_ex(data, "detail", &v));
        ck_assert_str_eq(json_object_get_string(v), "batch of 65 entries exceeds the limit of 64 entries");
        ck_assert(json_object_object_get_ex(data, "limit", &v));
        ck_assert_int_eq(json_object_get_int(v), PROTO_BATCH_MAX);
        ck_assert(json_object_object_get_ex(data, "name", &v));
        ck_assert_str_eq(json_object_get_string(v), "invalid_request");
        ck_assert(json_object_object_get_ex(e, "id", &v));
        ck_assert_ptr_null(v);
}
END_TEST

/* ---- strict JSON ---- */

/* Builds {"jsonrpc":"2.0","method":"m","params":<depth arrays>}. */
static char *nested_new(size_t depth) {
        static const char head[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":";
        char *s = malloc(STRLEN(head) + 2 * depth + 2), *p;

        ck_assert_ptr_nonnull(s);
        p = stpcpy(s, head);
        memset(p, '[', depth);
        memset(p + depth, ']', depth);
        strcpy(p + 2 * depth, "}");
        return s;
}

START_TEST(test_depth_limit) {
        _cleanup_free_ char *ok = nested_new(31), *deep = nested_new(32);
        _cleanup_message_ JsonRpcMessage *m = NULL;
        _cleanup_json_ json_object *o = NULL, *o2 = NULL;
        char arrays[80];

        /* The request object is one level, so 31 arrays inside reach the limit of 32. */
        ck_assert_int_eq(parse(ok, &m, NULL), 0);
        parse_error(deep);

        /* 32 nested arrays parse with a limit of 32, 33 do not. */
        memset(arrays, '[', 32);
        memset(arrays + 32, ']', 32);
        ck_assert_int_eq(json_parse_strict(arrays, 64, 32, &o), 0);
        memset(arrays, '[', 33);
        memset(arrays + 33, ']', 33);
        ck_assert_int_eq(json_parse_strict(arrays, 66, 32, &o2), -EBADMSG);
        parse_error_n(arrays, 66);
}
END_TEST

START_TEST(test_invalid_utf8) {
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\xc3\x28\",\"id\":1}");   /* bad continuation */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xc0\xaf\",\"id\":1}");     /* overlong '/' */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xe0\x80\xaf\",\"id\":1}"); /* overlong */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xed\xa0\x80\",\"id\":1}"); /* surrogate */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xf4\x90\x80\x80\",\"id\":1}"); /* > U+10FFFF */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xe2\x82\",\"id\":1}");     /* truncated */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xff\",\"id\":1}");
        parse_error("\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"method\":\"m\"}");          /* BOM */
}
END_TEST

START_TEST(test_valid_utf8) {
        _cleanup_message_ JsonRpcMessage *m =
                parse_one("{\"jsonrpc\":\"2.0\",\"method\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\",\"id\":1}");

        ck_assert_str_eq(m->calls[0].method, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
}
END_TEST

START_TEST(test_not_json) {
        /* json-c's strict mode lets these through; JSON does not. */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[NaN]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[Infinity]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[-Infinity]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[1.]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[01]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[+1]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[.5]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[1e]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[-]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[0x10]}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\tb\"}");       /* raw tab in a string */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\x01" "b\"}");  /* raw control char */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\\x\"}");       /* bad escape */
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\\u12\"}");      /* short \u */
        parse_error("{'jsonrpc':'2.0','method':'m'}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\" /* c */}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[TRUE]}");
        /* valid JSON, but json-c would turn the name into "jsonrpc" */
        parse_error("{\"jsonrpc\\u0000x\":\"2.0\",\"method\":\"m\"}");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\\u0000\" : 1}}");
        parse_error("");
        parse_error("   ");
        parse_error("\"unterminated");
}
END_TEST

START_TEST(test_valid_json_edges) {
        _cleanup_message_ JsonRpcMessage *m =
                parse_one(" \t{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":"
                          "[-0, 0.5, 1e5, 1E+5, 2e-3, -1.25E-2, true, false, null, \"\\u00e9\\/\\b\\f\\n\\r\\t\"]} \t\r\n");

        ck_assert_int_eq(m->calls[0].error, 0);
        ck_assert_uint_eq(json_object_array_length(m->calls[0].params), 10);
}
END_TEST

START_TEST(test_trailing_bytes) {
        static const char nul_garbage[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\"}\0garbage";
        static const char nul[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\"}\0";

        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\"} x");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\"}{\"jsonrpc\":\"2.0\",\"method\":\"m\"}");
        parse_error("[1] [2]");
        parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"m\"},");
        parse_error_n(nul_garbage, sizeof(nul_garbage) - 1);
        parse_error_n(nul, sizeof(nul) - 1);
}
END_TEST

START_TEST(test_parse_strict_scalars) {
        _cleanup_json_ json_object *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        json_object *n = (json_object *) 1;

        ck_assert_int_eq(json_parse_strict("123", 3, 8, &a), 0);
        ck_assert_int_eq(json_object_get_int(a), 123);
        ck_assert_int_eq(json_parse_strict("true ", 5, 8, &b), 0);
        ck_assert(json_object_get_boolean(b));
        ck_assert_int_eq(json_parse_strict("\"s\"", 3, 8, &c), 0);
        ck_assert_str_eq(json_object_get_string(c), "s");
        ck_assert_int_eq(json_parse_strict("null", 4, 8, &n), 0);
        ck_assert_ptr_null(n);
        /* exactly len bytes: the rest of the buffer is not looked at */
        ck_assert_int_eq(json_parse_strict("12345", 2, 8, &d), 0);
        ck_assert_int_eq(json_object_get_int(d), 12);
        ck_assert_int_eq(json_parse_strict("nul", 3, 8, &n), -EBADMSG);
        ck_assert_int_eq(json_parse_strict("[1,2", 4, 8, &n), -EBADMSG);
}
END_TEST

/* ---- message ownership ---- */

START_TEST(test_call_take) {
        _cleanup_message_ JsonRpcMessage *m = NULL;
        JsonRpcCall c;

        ck_assert_int_eq(parse("[{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":[1],\"id\":1},"
                               "{\"jsonrpc\":\"2.0\",\"method\":\"b\",\"params\":{\"k\":2},\"id\":\"two\"}]",
                               &m, NULL), 0);
        jsonrpc_call_take(m, 1, &c);
        ck_assert_str_eq(c.method, "b");
        ck_assert_ptr_null(m->calls[1].method);
        ck_assert_ptr_null(m->calls[1].params);
        ck_assert_ptr_null(m->calls[1].id);
        /* the taken call outlives its message */
        m = jsonrpc_message_free(m);
        ck_assert_str_eq(json_object_get_string(c.id), "two");
        ck_assert_str_eq(json_object_to_json_string_ext(c.params, JSONRPC_WIRE_FLAGS), "{\"k\":2}");
        jsonrpc_call_done(&c);
        ck_assert_ptr_null(c.method);
        jsonrpc_call_done(&c); /* idempotent */
        ck_assert_ptr_null(jsonrpc_message_free(NULL));
}
END_TEST

/* ---- building and serializing ---- */

START_TEST(test_serialize) {
        _cleanup_json_ json_object *r = NULL;
        _cleanup_free_ char *s = NULL;
        size_t n;

        r = jsonrpc_result_new(NULL, json_object_new_string("a/b\n\r\t\x01\x1f \"q\" \\ \xe2\x80\xa8 \xc3\xa9"));
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(jsonrpc_serialize(r, &s, &n), 0);
        ck_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"result\":\"a/b\\n\\r\\t\\u0001\\u001f \\\"q\\\" \\\\ "
                         "\xe2\x80\xa8 \xc3\xa9\",\"id\":null}\n");
        ck_assert_uint_eq(n, strlen(s));
        /* one line: no raw newline or CR except the terminator */
        ck_assert_ptr_eq(strchr(s, '\n'), s + n - 1);
        ck_assert_ptr_null(strchr(s, '\r'));
}
END_TEST

START_TEST(test_serialize_keys_and_null) {
        _cleanup_json_ json_object *r = NULL, *n = NULL;
        json_object *o = json_object_new_object();

        json_object_object_add(o, "line\nkey", json_object_new_int(1));
        r = jsonrpc_result_new(NULL, o);
        ck_assert_str_eq(wire(r), "{\"jsonrpc\":\"2.0\",\"result\":{\"line\\nkey\":1},\"id\":null}");
        n = jsonrpc_result_new(NULL, NULL);
        ck_assert_str_eq(wire(n), "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":null}");
}
END_TEST

START_TEST(test_builders) {
        _cleanup_json_ json_object *req = NULL, *req2 = NULL, *notif = NULL, *notif2 = NULL,
                *err = NULL, *err2 = NULL, *id = json_object_new_string("x");
        json_object *params = json_object_new_object(), *data = json_object_new_object();

        json_object_object_add(params, "count", json_object_new_int(3));
        req = jsonrpc_request_new("manager.get_last_jobs", params, 42);
        ck_assert_str_eq(wire(req), "{\"jsonrpc\":\"2.0\",\"method\":\"manager.get_last_jobs\","
                         "\"params\":{\"count\":3},\"id\":42}");
        req2 = jsonrpc_request_new("daemon.status", NULL, -1);
        ck_assert_str_eq(wire(req2), "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\",\"id\":-1}");

        notif = jsonrpc_notification_new("job.progress", json_object_new_array());
        ck_assert_str_eq(wire(notif), "{\"jsonrpc\":\"2.0\",\"method\":\"job.progress\",\"params\":[]}");
        notif2 = jsonrpc_notification_new("ping", NULL);
        ck_assert_str_eq(wire(notif2), "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}");

        json_object_object_add(data, "status", json_object_new_int(503));
        err = jsonrpc_error_new(id, RPC_UPSTREAM_HTTP_ERROR, "Upstream answered 503", data);
        ck_assert_str_eq(wire(err), "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32001,\"message\":"
                         "\"Upstream answered 503\",\"data\":{\"status\":503,\"name\":\"upstream_http_error\","
                         "\"retryable\":false}},\"id\":\"x\"}");
        /* the id is borrowed: still ours */
        ck_assert_str_eq(json_object_get_string(id), "x");

        err2 = jsonrpc_error_reply_new(id, rpc_error_object_new(RPC_OVERLOADED, NULL, NULL));
        ck_assert_str_eq(wire(err2), "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32008,\"message\":"
                         "\"Overloaded\",\"data\":{\"name\":\"overloaded\",\"retryable\":true}},\"id\":\"x\"}");
}
END_TEST

START_TEST(test_round_trip) {
        _cleanup_json_ json_object *req = NULL;
        _cleanup_message_ JsonRpcMessage *m = NULL;
        _cleanup_free_ char *s = NULL;
        size_t n;

        req = jsonrpc_request_new("a/b", json_object_new_string("x\ny"), 7);
        ck_assert_int_eq(jsonrpc_serialize(req, &s, &n), 0);
        /* the frame without its terminator parses back */
        ck_assert_int_eq(parse_n(s, n - 1, &m, NULL), 0);
        ck_assert_int_eq(m->calls[0].error, RPC_INVALID_REQUEST); /* params is a string */
        m = jsonrpc_message_free(m);
        ck_assert_int_eq(parse_n(s, n, &m, NULL), 0);              /* trailing \n is whitespace */
}
END_TEST

START_TEST(test_rounded) {
        static const struct {
                double v;
                int decimals;
                const char *text;
        } cases[] = {
                { 0.0648569999, 3, "0.065" },
                { 12.5, 0, "12" },
                { 1.0 / 3.0, 20, "0.333333333" },
                { -2.0, 2, "-2.00" },
                { 7.25, -1, "7" },
                { NAN, 3, "0.000" },
                { INFINITY, 1, "0.0" },
                { 1e300, 3, "1.0000000000000001e+300" }, /* json-c prints 17 digits */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *o = json_new_rounded(cases[i].v, cases[i].decimals);
                _cleanup_json_ json_object *back = NULL;
                const char *s;

                ck_assert_ptr_nonnull(o);
                s = json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS);
                ck_assert_str_eq(s, cases[i].text);
                /* always valid JSON */
                ck_assert_int_eq(json_parse_strict(s, strlen(s), 4, &back), 0);
        }
}
END_TEST

/* The jsonrpc suite. */
/* The text shortcut for result replies equals serializing the reply object. */
START_TEST(test_result_text) {
        static const char *const ids[] = { "1", "\"abc\"", "null", "1.5", "-7", "12345678901" };
        static const char *const results[] = { "null", "\"pong\"", "{\"a\":[1,2,{\"b\":\"x/y\"}]}", "[]", "\"line\\nbreak\"", "19", "true" };

        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                for (size_t j = 0; j < sizeof(results) / sizeof(results[0]); j++) {
                        json_object *id = NULL, *res = NULL, *reply;
                        char *a = NULL, *b = NULL;
                        size_t la = 0, lb = 0;

                        ck_assert_int_eq(json_parse_strict(ids[i], strlen(ids[i]), 8, &id), 0);
                        ck_assert_int_eq(json_parse_strict(results[j], strlen(results[j]), 8, &res), 0);
                        ck_assert_int_eq(jsonrpc_result_text(id, res, &a, &la), 0);
                        reply = jsonrpc_result_new(id, json_object_get(res));
                        ck_assert_ptr_nonnull(reply);
                        ck_assert_int_eq(jsonrpc_serialize(reply, &b, &lb), 0);
                        ck_assert_str_eq(a, b);
                        ck_assert_uint_eq(la, lb);
                        ck_assert_uint_eq(la, strlen(a));
                        ck_assert(a[la - 1] == '\n');
                        ck_assert_ptr_null(memchr(a, '\n', la - 1));
                        free(a);
                        free(b);
                        json_object_put(reply);
                        json_object_put(id);
                        json_object_put(res);
                }
}
END_TEST

/* Bytes that are not UTF-8 in a string (json-c copies a string's bytes as they are) never
 * reach the wire: each becomes U+FFFD, in a serialized message and in a result's text alike,
 * and the line parses as strict JSON; valid UTF-8 goes out byte for byte. */
START_TEST(test_serialize_not_utf8) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "caf\xe9", "caf\xef\xbf\xbd" },
                { "/api/resources/\xe3\x14\xff", "/api/resources/\xef\xbf\xbd\\u0014\xef\xbf\xbd" },
                { "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac" },
                { "cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd" },
                { "surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
                { "overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd" },
                { "\xf4\x90\x80\x80!", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *expect_error = NULL, *expect_result = NULL, *text = NULL, *key = NULL;
                json_object *id = json_object_new_int(7), *reply, *res, *parsed = NULL;
                size_t n = 0;

                ck_assert_int_ge(asprintf(&expect_error, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"%s\",",
                                          cases[i].out),
                                 0);
                reply = jsonrpc_error_new(id, -32000, cases[i].in, NULL);
                ck_assert_ptr_nonnull(reply);
                ck_assert_msg(startswith(wire(reply), expect_error), "%s", wire(reply));
                ck_assert_int_eq(json_parse_strict(wire(reply), strlen(wire(reply)), 8, &parsed), 0);
                json_object_put(parsed);
                json_object_put(reply);

                /* in a key as in a value, through the result shortcut */
                ck_assert_int_ge(asprintf(&key, "k%s", cases[i].in), 0);
                res = json_object_new_object();
                json_object_object_add(res, key, json_object_new_string(cases[i].in));
                ck_assert_int_ge(asprintf(&expect_result, "{\"jsonrpc\":\"2.0\",\"result\":{\"k%s\":\"%s\"},\"id\":7}\n",
                                          cases[i].out, cases[i].out),
                                 0);
                ck_assert_int_eq(jsonrpc_result_text(id, res, &text, &n), 0);
                ck_assert_str_eq(text, expect_result);
                ck_assert_uint_eq(n, strlen(expect_result));
                ck_assert_int_eq(json_parse_strict(text, n - 1, 8, &parsed), 0);
                json_object_put(parsed);
                json_object_put(res);
                json_object_put(id);
        }
}
END_TEST

static Suite *jsonrpc_suite(void) {
        Suite *s = suite_create("jsonrpc");
        TCase *tc;

        tc = tcase_create("spec-examples");
        tcase_add_test(tc, test_spec_positional);
        tcase_add_test(tc, test_spec_named);
        tcase_add_test(tc, test_spec_notifications);
        tcase_add_test(tc, test_spec_method_not_found);
        tcase_add_test(tc, test_spec_invalid_json);
        tcase_add_test(tc, test_spec_invalid_request_object);
        tcase_add_test(tc, test_spec_batch_invalid_json);
        tcase_add_test(tc, test_spec_empty_array);
        tcase_add_test(tc, test_spec_invalid_batch_not_empty);
        tcase_add_test(tc, test_spec_invalid_batch);
        tcase_add_test(tc, test_spec_mixed_batch);
        tcase_add_test(tc, test_spec_all_notifications);
        suite_add_tcase(s, tc);

        tc = tcase_create("request-rules");
        tcase_add_test(tc, test_jsonrpc_member);
        tcase_add_test(tc, test_method_member);
        tcase_add_test(tc, test_params_member);
        tcase_add_test(tc, test_id_types);
        tcase_add_test(tc, test_id_exact);
        tcase_add_test(tc, test_id_exact_where);
        tcase_add_test(tc, test_id_exact_no_collision);
        tcase_add_test(tc, test_id_null_is_request);
        tcase_add_test(tc, test_id_invalid);
        tcase_add_test(tc, test_invalid_keeps_valid_id);
        tcase_add_test(tc, test_extra_members_ignored);
        tcase_add_test(tc, test_top_level_scalars);
        tcase_add_test(tc, test_batch_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("strict-json");
        tcase_add_test(tc, test_depth_limit);
        tcase_add_test(tc, test_invalid_utf8);
        tcase_add_test(tc, test_valid_utf8);
        tcase_add_test(tc, test_not_json);
        tcase_add_test(tc, test_valid_json_edges);
        tcase_add_test(tc, test_trailing_bytes);
        tcase_add_test(tc, test_parse_strict_scalars);
        suite_add_tcase(s, tc);

        tc = tcase_create("replies");
        tcase_add_test(tc, test_call_take);
        tcase_add_test(tc, test_serialize);
        tcase_add_test(tc, test_serialize_keys_and_null);
        tcase_add_test(tc, test_builders);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_rounded);
        tcase_add_test(tc, test_result_text);
        tcase_add_test(tc, test_serialize_not_utf8);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status tells meson whether every check passed. */
int main(void) {
        SRunner *sr = srunner_create(jsonrpc_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
