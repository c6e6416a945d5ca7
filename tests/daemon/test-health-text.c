/* SPDX-License-Identifier: MIT */
/*
 * manager.get_health's result written from text once per answer (methods-manager.c) against
 * the object it replaces: the same bytes for every kind of answer the server may send (objects
 * with numbers kept as written, escapes, UTF-8 and bytes that are not, empty, nested; answers
 * that are not objects; answers with members of the names the daemon adds), every age and both
 * freshness states, in a single reply and in a batch.
 */
#include <check.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "manager.h"
#include "protocol.h"

/* The reply text of a result for id 7 (single reply path), or in a batch of one. */
static char *reply_text(json_object *result, bool batch) {
        json_object *id = json_object_new_int64(7);
        char *t = NULL;
        size_t n = 0;

        if (!batch)
                ck_assert_int_eq(jsonrpc_result_text(id, result, &t, &n), 0);
        else {
                json_object *arr = json_object_new_array();

                json_object_array_add(arr, jsonrpc_result_new(id, result));
                ck_assert_int_eq(jsonrpc_serialize(arr, &t, &n), 0);
                json_object_put(arr);
                result = NULL;
        }
        json_object_put(result);
        json_object_put(id);
        ck_assert_uint_eq(n, strlen(t));
        return t;
}

/* Holds the text to the object for one answer. */
static void check_answer(const char *answer_text, double age_s, bool stale, bool expect_raw) {
        json_object *answer = NULL;
        const char *p;
        size_t n;

        ck_assert_int_eq(json_parse_strict(answer_text, strlen(answer_text), PROTO_JSON_DEPTH_MAX, &answer), 0);
        for (int batch = 0; batch <= 1; batch++) {
                json_object *fast = health_result(answer, age_s, stale), *slow = health_result_object(answer, age_s, stale);
                char *a, *b;

                ck_assert_ptr_nonnull(fast);
                ck_assert_ptr_nonnull(slow);
                ck_assert_int_eq(json_raw_get(fast, &p, &n), expect_raw);
                a = reply_text(fast, batch);
                b = reply_text(slow, batch);
                ck_assert_msg(streq(a, b), "answer %s age %.9f: %s != %s", answer_text, age_s, a, b);
                free(a);
                free(b);
        }
        json_object_put(answer);
}

START_TEST(test_health_text_same_bytes) {
        static const struct {
                const char *answer;
                bool raw;
        } answers[] = {
                { "{\"message\":\"ok\"}", true },
                { "{}", true },
                { "{\"status\":\"healthy\",\"version\":\"1.2.3\",\"uptime\":1.50,\"load\":1e3,\"n\":-0.0,\"big\":18446744073709551615}", true },
                { "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"t\":true,\"f\":false}", true },
                { "{\"url\":\"https://x/y\",\"esc\":\"\\\"\\\\\\n\\t\\u0001\\u00e9\\ud83d\\ude00\",\"utf8\":\"d\xc3\xa9j\xc3\xa0\"}", true },
                { "{\"message\":\"ok\",\"stale\":true}", false },
                { "{\"age_s\":1,\"message\":\"ok\"}", false },
                { "\"ok\"", true },
                { "[1,2,3]", true },
                { "42", true },
                { "null", true },
        };
        static const double ages[] = { 0, 0.0004, 0.0005, 0.0625, 0.1875, 1.9995, 4.999999, 299.5, 3600.0001, 86400 * 30.0 };

        for (size_t i = 0; i < ELEMENTSOF(answers); i++)
                for (size_t j = 0; j < ELEMENTSOF(ages); j++)
                        for (int stale = 0; stale <= 1; stale++)
                                check_answer(answers[i].answer, ages[j], stale, answers[i].raw);
}
END_TEST

/* The text follows the answer: a new answer (another object) gives its own text. */
START_TEST(test_health_text_follows_answer) {
        json_object *a = json_object_new_object(), *b = json_object_new_object(), *r;
        const char *p;
        size_t n;

        json_object_object_add(a, "message", json_object_new_string("one"));
        json_object_object_add(b, "message", json_object_new_string("two"));
        for (int k = 0; k < 3; k++) {
                r = health_result(k % 2 ? b : a, 1.25, false);
                ck_assert(json_raw_get(r, &p, &n));
                ck_assert_str_eq(p, k % 2 ? "{\"message\":\"two\",\"stale\":false,\"age_s\":1.250}" :
                                            "{\"message\":\"one\",\"stale\":false,\"age_s\":1.250}");
                json_object_put(r);
        }
        json_object_put(a);
        json_object_put(b);
}
END_TEST

static Suite *health_text_suite(void) {
        Suite *s = suite_create("health-text");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_health_text_same_bytes);
        tcase_add_test(tc, test_health_text_follows_answer);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(health_text_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
