/* SPDX-License-Identifier: MIT */
/*
 * daemon.status written as text (JsonText, jsonrpc.h; the *_stats_text() of the modules)
 * against the objects it replaces: the writer's values byte for byte as json-c writes them
 * (integers at their limits, strings to escape, UTF-8 and bytes that are not, doubles,
 * nested values), a kept block (JsonTextMemo) copied only while its key is the same, and the
 * upstream statistics, the runners, the cache, the api and the storage blocks as their
 * objects give them, through changes of every figure their kept texts depend on.
 */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "jsonrpc.h"
#include "macro.h"
#include "runner.h"
#include "storage.h"
#include "test-tmpdir.h"
#include "upstream-internal.h"
#include "upstream.h"

/* json-c's text of o (NULL: null), as a new string. */
static char *json_c_text(json_object *o) {
        return strdup(o ? json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS) : "null");
}

/* t's text as a string, t reset. */
static char *take_text(JsonText *t) {
        char *s;

        ck_assert(!t->oom);
        s = strndup(t->p ?: "", t->n);
        free(t->p);
        *t = (JsonText) {};
        return s;
}

static void check_value(json_object *o) {
        JsonText t = {};
        _cleanup_free_ char *want = json_c_text(o), *got = NULL;

        json_text_add_value(&t, o);
        got = take_text(&t);
        ck_assert_str_eq(got, want);
        json_object_put(o);
}

START_TEST(test_writer_values) {
        static const char *const strings[] = {
                "", "plain", "with \"quotes\" and \\ backslash", "slash / kept", "tab\tnewline\nreturn\r",
                "\x01\x1f control", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad \xff\xfe bytes \xc3",
                "del \x7f", "</script>",
        };
        static const int64_t ints[] = { 0, 1, -1, 9, 10, 99, 100, 12345678901234, INT64_MAX, INT64_MIN, INT64_MIN + 1 };
        static const uint64_t uints[] = { 0, 1, 10, 1000000, UINT64_C(18446744073709551615), (uint64_t) INT64_MAX + 1 };
        static const double doubles[] = { 0, 0.5, -0.25, 1e300, 3.141592653589793, 1.0 / 3, 1e15, -1e-7 };

        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                JsonText t = {};
                json_object *s = json_object_new_string(strings[i]);
                _cleanup_free_ char *want = json_c_text(s), *got = NULL;

                json_text_add_str(&t, strings[i]);
                got = take_text(&t);
                ck_assert_msg(streq(got, want), "%s != %s", got, want);
                check_value(s);
        }
        for (size_t i = 0; i < ELEMENTSOF(ints); i++) {
                JsonText t = {};
                json_object *o = json_object_new_int64(ints[i]);
                _cleanup_free_ char *want = json_c_text(o), *got = NULL;

                json_text_add_i64(&t, ints[i]);
                got = take_text(&t);
                ck_assert_str_eq(got, want);
                check_value(o);
        }
        for (size_t i = 0; i < ELEMENTSOF(uints); i++) {
                JsonText t = {};
                json_object *o = json_object_new_uint64(uints[i]);
                _cleanup_free_ char *want = json_c_text(o), *got = NULL;

                json_text_add_u64(&t, uints[i]);
                got = take_text(&t);
                ck_assert_str_eq(got, want);
                check_value(o);
        }
        for (size_t i = 0; i < ELEMENTSOF(doubles); i++) {
                for (int d = 0; d <= 3; d++) {
                        JsonText t = {};
                        json_object *o = json_new_rounded(doubles[i], d);
                        _cleanup_free_ char *want = json_c_text(o), *got = NULL;

                        json_text_add_rounded(&t, doubles[i], d);
                        got = take_text(&t);
                        ck_assert_msg(streq(got, want), "%.17g %d: %s != %s", doubles[i], d, got, want);
                        json_object_put(o);
                }
                check_value(json_object_new_double(doubles[i]));
        }
        {
                JsonText t = {};
                _cleanup_free_ char *got = NULL;

                json_text_add_str(&t, NULL);
                json_text_add_bool(&t, true);
                json_text_add_bool(&t, false);
                json_text_add_value(&t, NULL);
                got = take_text(&t);
                ck_assert_str_eq(got, "nulltruefalsenull");
        }
        check_value(json_tokener_parse("{\"a\":[1,\"x\",{\"b\\\"\":null}],\"c\":{},\"d\":[],\"e\":-2.5}"));
}
END_TEST

START_TEST(test_memo) {
        JsonTextMemo m = {};
        JsonText t = {};
        uint64_t k1[] = { 1, 2 }, k2[] = { 1, 3 };
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        size_t start;

        json_text_add_literal(&t, "x");
        ck_assert(!json_text_memo_hit(&m, &t, k1, ELEMENTSOF(k1), &start));
        ck_assert_uint_eq(start, 1);
        json_text_add_literal(&t, "[one]");
        json_text_memo_keep(&m, &t, start);
        /* the same key: the kept text */
        ck_assert(json_text_memo_hit(&m, &t, k1, ELEMENTSOF(k1), &start));
        a = take_text(&t);
        ck_assert_str_eq(a, "x[one][one]");
        /* another key: written again, and that one kept */
        ck_assert(!json_text_memo_hit(&m, &t, k2, ELEMENTSOF(k2), &start));
        json_text_add_literal(&t, "[two]");
        json_text_memo_keep(&m, &t, start);
        ck_assert(json_text_memo_hit(&m, &t, k2, ELEMENTSOF(k2), &start));
        ck_assert(!json_text_memo_hit(&m, &t, k1, ELEMENTSOF(k1), &start));
        /* a miss not followed by keep leaves nothing to copy */
        ck_assert(!json_text_memo_hit(&m, &t, k1, ELEMENTSOF(k1), &start));
        ck_assert(!json_text_memo_hit(&m, &t, k1, 1, &start));
        b = take_text(&t);
        ck_assert_str_eq(b, "[two][two]");
        json_text_memo_done(&m);
        ck_assert(!json_text_memo_hit(&m, &t, k1, 1, &start));
        c = take_text(&t);
        ck_assert_str_eq(c, "");
}
END_TEST

/* A module's block through its text (with a memo, twice: written and kept) against its object. */
#define CHECK_BLOCK(json_expr, text_call)                                                          \
        do {                                                                                       \
                json_object *_o = (json_expr);                                                     \
                _cleanup_free_ char *_want = json_c_text(_o), *_got = NULL;                        \
                JsonText _t = {};                                                                  \
                                                                                                   \
                for (int _k = 0; _k < 2; _k++) {                                                   \
                        JsonText *t = &_t;                                                         \
                                                                                                   \
                        text_call;                                                                 \
                        _got = take_text(&_t);                                                     \
                        ck_assert_msg(streq(_got, _want), "line %d: %s != %s", __LINE__, _got, _want); \
                        _got = mfree(_got);                                                        \
                }                                                                                  \
                json_object_put(_o);                                                               \
        } while (0)

START_TEST(test_upstream_block) {
        struct event_base *base = event_base_new();
        UpstreamOptions opts = { .breaker_cooldown_ms = 1 };
        JsonTextMemo m = {};
        Upstream *u = NULL;
        Breaker *b1, *b2;
        uint64_t now;

        ck_assert_ptr_nonnull(base);
        ck_assert_int_eq(upstream_new(base, &opts, &u), 0);
        now = now_usec();
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        upstream_stats_count(u, "GET /api/health", "200");
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        upstream_stats_count(u, "GET /api/health", "200");
        upstream_stats_count(u, "GET /api/health", "timeout");
        upstream_stats_count(u, "POST \"x\"", "500");
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        u->retries_network++;
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        u->retries_rate_limited += 3;
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        b1 = upstream_breaker_get(u, "http://127.0.0.1:1");
        ck_assert_ptr_nonnull(b1);
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        b2 = upstream_breaker_get(u, "https://h\xc3\xa9st:443");
        ck_assert_ptr_nonnull(b2);
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        b1->consecutive_failures = 2;
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now, &m));
        /* open (until a time not reached yet), then past its cooldown: half open, told by
         * the time alone */
        b2->state = BREAKER_OPEN;
        b2->opened = 1;
        b2->opened_usec = now_usec() + 60 * USEC_PER_SEC;
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now_usec(), &m));
        ck_assert(memmem(m.text, m.len, "\"state\":\"open\"", 14));
        b2->opened_usec = now_usec() - 5000;
        CHECK_BLOCK(upstream_stats_json(u), upstream_stats_text(u, t, now_usec(), &m));
        ck_assert(memmem(m.text, m.len, "\"state\":\"half_open\"", 19));
        /* the breaker's key of a URL, kept, and the state it names */
        ck_assert_str_eq(upstream_breaker_state(u, "http://127.0.0.1:1/api/health"), "closed");
        ck_assert_str_eq(upstream_breaker_state(u, "http://127.0.0.1:1/api/health"), "closed");
        b1->state = BREAKER_OPEN;
        b1->opened_usec = now_usec();
        ck_assert_str_eq(upstream_breaker_state_at(u, "http://127.0.0.1:1/api/health", b1->opened_usec), "open");
        ck_assert_str_eq(upstream_breaker_state_at(u, "http://127.0.0.1:2/", b1->opened_usec), "closed");
        ck_assert_str_eq(upstream_breaker_state_at(u, "http://127.0.0.1:1/x", b1->opened_usec), "open");
        ck_assert_str_eq(upstream_breaker_state_at(u, "not a url", b1->opened_usec), "closed");
        b1->state = BREAKER_CLOSED;
        json_text_memo_done(&m);
        upstream_free(u);
        event_base_free(base);
}
END_TEST

START_TEST(test_state_blocks) {
        struct event_base *base = event_base_new();
        _cleanup_free_ char *top = test_tmpdir_new("status-text"), *state = NULL, *runners = NULL, *bad = NULL;
        UpstreamOptions uo = {};
        StorageOptions so = { .endpoint_url = "http://127.0.0.1:1/storage", .multipart_threshold = 8 << 20,
                              .part_size = 5 << 20 };
        JsonTextMemo m = {};
        Upstream *u = NULL;
        Storage *st = NULL;
        Runners *rs = NULL;
        Config *config = NULL;
        Api *api = NULL;
        Cache *cache = NULL;
        FILE *f;

        ck_assert_ptr_nonnull(base);
        ck_assert_int_ge(asprintf(&state, "%s/state", top), 0);
        ck_assert_int_ge(asprintf(&runners, "%s/runners", state), 0);
        ck_assert_int_eq(mkdir(state, 0700), 0);
        ck_assert_int_eq(mkdir(runners, 0700), 0);
        /* a damaged runner file: listed in damaged_files */
        ck_assert_int_ge(asprintf(&bad, "%s/44444444-4444-4444-8444-444444444444.json", runners), 0);
        f = fopen(bad, "w");
        ck_assert_ptr_nonnull(f);
        fputs("{not json", f);
        fclose(f);

        ck_assert_int_eq(runners_new(NULL, state, &rs), 0);
        CHECK_BLOCK(runners_stats_json(rs), runners_stats_text(rs, t, &m));
        rs->saves += 7;
        CHECK_BLOCK(runners_stats_json(rs), runners_stats_text(rs, t, &m));
        rs->save_errors++;
        rs->last_save_error = -ENOSPC;
        CHECK_BLOCK(runners_stats_json(rs), runners_stats_text(rs, t, &m));
        json_object_array_add(rs->damaged, json_object_new_string("x\"y.json"));
        CHECK_BLOCK(runners_stats_json(rs), runners_stats_text(rs, t, &m));
        CHECK_BLOCK(runners_stats_json(rs), runners_stats_text(rs, t, NULL));
        json_text_memo_done(&m);

        ck_assert_int_eq(upstream_new(base, &uo, &u), 0);
        ck_assert_int_eq(storage_new(base, u, &so, &st), 0);
        CHECK_BLOCK(storage_stats_json(st), storage_stats_text(st, t, &m));
        CHECK_BLOCK(storage_stats_json(NULL), storage_stats_text(NULL, t, &m));
        json_text_memo_done(&m);

        ck_assert_int_eq(config_new(&config), 0);
        ck_assert_int_eq(api_new(base, u, config, &api), 0);
        CHECK_BLOCK(api_stats_json(api), api_stats_text(api, t, &m));
        json_text_memo_done(&m);
        CHECK_BLOCK(json_object_get(api_compat_answer(api)), api_compat_answer_text(api, t));
        ck_assert_int_eq(cache_new(api, &cache), 0);
        CHECK_BLOCK(cache_stats_json(cache), cache_stats_text(cache, t, &m));
        json_text_memo_done(&m);

        cache_free(cache);
        api_free(api);
        config_free(config);
        storage_free(st);
        upstream_free(u);
        runners_free(rs);
        event_base_free(base);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("status-text");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_writer_values);
        tcase_add_test(tc, test_memo);
        tcase_add_test(tc, test_upstream_block);
        tcase_add_test(tc, test_state_blocks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
