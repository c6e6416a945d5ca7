/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the fast path of the JSON-RPC parser (proto/jsonrpc.c): every text the fast
 * path takes gives the message the full parse gives (the same id, serialized the same, the
 * same method, no params, no error), and every text it cannot take exactly is left to the full
 * parse. Also the raw JSON values the reply writer copies as they are (json_raw_new()).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"

/* Cleanup helper for messages. */
static void message_freep(JsonRpcMessage **m) {
        jsonrpc_message_free(*m);
}

#define _cleanup_message_ _cleanup_(message_freep)

/* The id of a call as wire text ("-" when the call has none). */
static void id_text(const JsonRpcCall *c, char *buf, size_t size) {
        if (!c->has_id)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%s",
                         c->id ? json_object_to_json_string_ext(c->id, JSONRPC_WIRE_FLAGS) : "null");
}

/* Holds the fast path to the full parse for one text the fast path must take. */
static void check_same(const char *text) {
        _cleanup_message_ JsonRpcMessage *fast = NULL, *full = NULL;
        json_object *err = NULL;
        char a[256], b[256];

        ck_assert_msg(jsonrpc_parse_fast(text, strlen(text), &fast) == 1, "fast path refused: %s", text);
        ck_assert_int_eq(jsonrpc_parse_full(text, strlen(text), PROTO_JSON_DEPTH_MAX, PROTO_BATCH_MAX, &full, &err),
                         0);
        ck_assert_ptr_null(err);
        ck_assert(!fast->is_batch && !full->is_batch);
        ck_assert_uint_eq(fast->n_calls, 1);
        ck_assert_uint_eq(full->n_calls, 1);
        ck_assert_int_eq(fast->calls[0].error, 0);
        ck_assert_int_eq(full->calls[0].error, 0);
        ck_assert_str_eq(fast->calls[0].method, full->calls[0].method);
        ck_assert_ptr_null(fast->calls[0].params);
        ck_assert_ptr_null(full->calls[0].params);
        ck_assert_int_eq(fast->calls[0].has_id, full->calls[0].has_id);
        id_text(&fast->calls[0], a, sizeof(a));
        id_text(&full->calls[0], b, sizeof(b));
        ck_assert_msg(streq(a, b), "id %s != %s for %s", a, b, text);
        if (fast->calls[0].id)
                ck_assert_int_eq(json_object_get_type(fast->calls[0].id), json_object_get_type(full->calls[0].id));
}

/* The fast path leaves a text alone. */
static void check_refused(const char *text, size_t n) {
        JsonRpcMessage *m = NULL;

        ck_assert_msg(jsonrpc_parse_fast(text, n, &m) == 0, "fast path took: %.*s", (int) n, text);
        ck_assert_ptr_null(m);
}

START_TEST(test_fast_same_as_full) {
        static const char *const texts[] = {
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"manager.get_health\",\"id\":0}",
                "{\"id\":42,\"method\":\"daemon.status\",\"jsonrpc\":\"2.0\"}",
                " \t{ \"jsonrpc\" : \"2.0\" ,\r\n\"method\" :\"x\", \"id\" : -17 }  \n",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":9223372036854775807}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":-9223372036854775808}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":\"abc-1/2\"}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":\"\"}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":null}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\"}",
                "{\"method\":\"\",\"jsonrpc\":\"2.0\"}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"no such method <>&'\",\"id\":7}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                check_same(texts[i]);
}
END_TEST

START_TEST(test_fast_refuses) {
        static const char *const texts[] = {
                "",
                "   ",
                "[{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1}]",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1,\"params\":{}}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"params\":[],\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1,\"extra\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1,\"id\":2}",
                "{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\"}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\"}",
                "{\"jsonrpc\":\"1.0\",\"method\":\"daemon.ping\",\"id\":1}",
                "{\"jsonrpc\":\"2.00\",\"method\":\"daemon.ping\",\"id\":1}",
                "{\"jsonrpc\":2.0,\"method\":\"daemon.ping\",\"id\":1}",
                "{\"method\":\"daemon.ping\",\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":1,\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon\\u002eping\",\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"i\\u0064\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"d\xc3\xa9mon\",\"id\":1}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":\"\\\"\"}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":01}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":-0}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1.0}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1e3}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":9223372036854775808}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":-9223372036854775809}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":18446744073709551616}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":true}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":nul}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":[1]}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1,}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1} x",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":1}{}",
                "{\"jsonrpc\":\"2.0\" \"method\":\"daemon.ping\"}",
                "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":\"a\tb\"}",
                "{}",
                "{\"jsonrpc\"}",
                "{\"jsonrpc\":",
                "\"jsonrpc\"",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                check_refused(texts[i], strlen(texts[i]));
        /* a NUL inside the method name, and every cut of a valid request */
        {
                static const char t[] = "{\"jsonrpc\":\"2.0\",\"method\":\"a\0b\",\"id\":1}";
                static const char ok[] = "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":123}";

                check_refused(t, sizeof(t) - 1);
                for (size_t n = 0; n < sizeof(ok) - 1; n++)
                        check_refused(ok, n);
        }
}
END_TEST

/* jsonrpc_parse() takes both paths: the result is the same message either way. */
START_TEST(test_parse_uses_fast_path) {
        _cleanup_message_ JsonRpcMessage *m = NULL;
        static const char t[] = "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":5}";
        json_object *err = (json_object *) 1;

        ck_assert_int_eq(jsonrpc_parse(t, strlen(t), PROTO_JSON_DEPTH_MAX, PROTO_BATCH_MAX, &m, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_str_eq(m->calls[0].method, "daemon.ping");
        ck_assert_int_eq(json_object_get_int64(m->calls[0].id), 5);
}
END_TEST

/* A raw value is copied into a reply as it is, by jsonrpc_result_text() and by json-c (a
 * batch's array, jsonrpc_serialize()) alike. */
START_TEST(test_raw_value) {
        static const char text[] = "{\"a\":[1,2.50,\"x/y\"],\"b\":null}";
        json_object *raw, *id = json_object_new_int64(3), *reply, *arr;
        char *out = NULL, *ser = NULL;
        size_t n = 0, sn = 0;
        const char *p;
        size_t pn;

        raw = json_raw_new(text, strlen(text));
        ck_assert_ptr_nonnull(raw);
        ck_assert(json_raw_get(raw, &p, &pn));
        ck_assert_uint_eq(pn, strlen(text));
        ck_assert(!json_raw_get(id, &p, &pn));
        ck_assert_int_eq(jsonrpc_result_text(id, raw, &out, &n), 0);
        ck_assert_str_eq(out, "{\"jsonrpc\":\"2.0\",\"result\":{\"a\":[1,2.50,\"x/y\"],\"b\":null},\"id\":3}\n");
        ck_assert_uint_eq(n, strlen(out));

        reply = jsonrpc_result_new(id, json_object_get(raw));
        arr = json_object_new_array();
        json_object_array_add(arr, reply);
        ck_assert_int_eq(jsonrpc_serialize(arr, &ser, &sn), 0);
        ck_assert_str_eq(ser, "[{\"jsonrpc\":\"2.0\",\"result\":{\"a\":[1,2.50,\"x/y\"],\"b\":null},\"id\":3}]\n");
        free(out);
        free(ser);
        json_object_put(arr);
        json_object_put(raw);
        json_object_put(id);
}
END_TEST

/* json_rounded_text() writes what printf's "%.*f" writes, ties and carries included. */
START_TEST(test_rounded_text) {
        static const double fixed[] = { 0, 0.0005, 0.0625, 0.1875, 0.9995, 0.99949999, 1.0005, 2.5, 0.5,
                                        999999.9995, 999999.9999, 1e6, 123456.789, 1e-9, 5e-10, 4.9999e-10,
                                        -0.0004, -1.5, 1e14, 7.0 / 3 };
        unsigned seed = 12345;

        for (int d = 0; d <= 9; d++) {
                for (size_t i = 0; i < ELEMENTSOF(fixed) + 20000; i++) {
                        char a[JSON_ROUNDED_TEXT_MAX], b[JSON_ROUNDED_TEXT_MAX];
                        double v;
                        size_t n;

                        if (i < ELEMENTSOF(fixed))
                                v = fixed[i];
                        else {
                                seed = seed * 1103515245u + 12345u;
                                /* ages in microseconds, as the daemon makes them, and others */
                                v = i % 2 ? (double) (seed % 2000000000u) / 1e6 : (double) seed / 4096.0 / (1 + i % 7);
                        }
                        n = json_rounded_text(v, d, a);
                        snprintf(b, sizeof(b), "%.*f", d, v);
                        ck_assert_msg(streq(a, b), "%.17g, %d decimals: %s != %s", v, d, a, b);
                        ck_assert_uint_eq(n, strlen(b));
                }
        }
}
END_TEST

/* jsonrpc_result_text() prints an integer id itself: the same bytes as json-c's reply
 * object, for every id a request can carry (parsed, so kept as written when json-c rounds). */
START_TEST(test_result_text_ids) {
        static const char *const ids[] = { "0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
                                           "9223372036854775808", "18446744073709551615", "18446744073709551616",
                                           "-9223372036854775809", "-0", "1.5", "\"x\"", "null", "1e2" };

        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                _cleanup_message_ JsonRpcMessage *m = NULL;
                json_object *err = NULL, *reply;
                char text[160], *a = NULL, *b = NULL;
                size_t an, bn;

                snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":%s}", ids[i]);
                ck_assert_int_eq(jsonrpc_parse(text, strlen(text), PROTO_JSON_DEPTH_MAX, PROTO_BATCH_MAX, &m, &err), 0);
                json_object *pong = json_object_new_string("pong");

                ck_assert_int_eq(jsonrpc_result_text(m->calls[0].id, pong, &a, &an), 0);
                json_object_put(pong);
                reply = jsonrpc_result_new(m->calls[0].id, json_object_new_string("pong"));
                ck_assert_int_eq(jsonrpc_serialize(reply, &b, &bn), 0);
                ck_assert_msg(streq(a, b), "id %s: %s != %s", ids[i], a, b);
                ck_assert_uint_eq(an, bn);
                json_object_put(reply);
                free(a);
                free(b);
        }
}
END_TEST

/* A random value for the serializer test. */
static json_object *random_value(unsigned *seed, int depth) {
        static const char *const strings[] = { "", "plain", "a/b", "quote\"d", "back\\slash", "tab\tnl\n",
                                               "\x01\x1f\x7f", "d\xc3\xa9j\xc3\xa0", "\xff\xfe bad", "\xf0\x9f\x98\x80" };
        static const char *const keys[] = { "a", "key_1", "with space", "q\"k", "s/k", "\xc3\xa9", "nl\n", "" };
        unsigned k;

        *seed = *seed * 1103515245u + 12345u;
        k = (*seed >> 16) % (depth > 3 ? 7 : 9);
        switch (k) {
        case 0:
                return NULL;
        case 1:
                return json_object_new_boolean(*seed & 1);
        case 2: {
                static const int64_t ints[] = { 0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007, -99 };

                return json_object_new_int64(ints[(*seed >> 8) % ELEMENTSOF(ints)]);
        }
        case 3:
                return (*seed >> 8) % 2 ? json_object_new_uint64(UINT64_MAX - (*seed >> 20)) :
                                          json_object_new_uint64((*seed >> 12) % 1000);
        case 4: {
                static const double ds[] = { 0.0, 1.5, -2.25, 1e300, 3.141592653589793, 0.1, -0.0 };

                return (*seed >> 8) % 2 ? json_object_new_double(ds[(*seed >> 9) % ELEMENTSOF(ds)]) :
                                          json_new_rounded((double) (*seed % 100000) / 1000.0, 3);
        }
        case 5:
        case 6:
                return json_object_new_string(strings[(*seed >> 8) % ELEMENTSOF(strings)]);
        case 7: {
                json_object *a = json_object_new_array();
                unsigned n = (*seed >> 10) % 5;

                for (unsigned i = 0; i < n; i++)
                        json_object_array_add(a, random_value(seed, depth + 1));
                return a;
        }
        default: {
                json_object *o = json_object_new_object();
                unsigned n = (*seed >> 10) % 6;

                for (unsigned i = 0; i < n; i++)
                        json_object_object_add(o, keys[(*seed >> (i + 3)) % ELEMENTSOF(keys)],
                                               random_value(seed, depth + 1));
                return o;
        }
        }
}

/* json_to_wire_text() (and so every result reply) writes what json-c writes. */
START_TEST(test_wire_text_same_as_json_c) {
        static const char *const parsed[] = {
                "{\"a\":1.50,\"b\":1e3,\"c\":-0.0,\"d\":18446744073709551615,\"e\":-9223372036854775808}",
                "[1,2,[3,[4,{\"x\":null}]],\"\\u00e9\\n\\/\"]",
                "{\"\\u00e9k\\n\":1}", "{}", "[]", "\"s\"", "12", "null", "true",
        };
        unsigned seed = 7;

        for (size_t i = 0; i < ELEMENTSOF(parsed) + 3000; i++) {
                json_object *o = NULL;
                const char *want;
                char *got = NULL;
                size_t n = 0;

                if (i < ELEMENTSOF(parsed))
                        ck_assert_int_eq(json_parse_strict(parsed[i], strlen(parsed[i]), 64, &o), 0);
                else
                        o = random_value(&seed, 0);
                want = o ? json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS) : "null";
                ck_assert_int_eq(json_to_wire_text(o, &got, &n), 0);
                ck_assert_msg(streq(got, want), "%s != %s", got, want);
                ck_assert_uint_eq(n, strlen(want));
                free(got);
                json_object_put(o);
        }
}
END_TEST

static Suite *jsonrpc_fast_suite(void) {
        Suite *s = suite_create("jsonrpc-fast");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_fast_same_as_full);
        tcase_add_test(tc, test_fast_refuses);
        tcase_add_test(tc, test_parse_uses_fast_path);
        tcase_add_test(tc, test_raw_value);
        tcase_add_test(tc, test_rounded_text);
        tcase_add_test(tc, test_result_text_ids);
        tcase_add_test(tc, test_wire_text_same_as_json_c);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(jsonrpc_fast_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
