/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/scrub.c: every form of a secret a server may echo (raw, escaped per
 * character as JSON and YAML do, percent-encoded, base64 at each offset in both alphabets, and
 * mixes), the registry (slots, former secrets, the ring of recent ones, short secrets), and
 * the one clean-up of texts from outside (one bounded line, no secret, not even in part at
 * the cut).
 */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "scrub.h"

#define KEY "sk-Test/Key+42_abcdef"

/* A base64 encoder written apart from the daemon's (standard or URL-safe alphabet, padding). */
static char *b64(const char *in, size_t n, bool url) {
        const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                              : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = calloc(4 * (n / 3 + 1) + 1, 1), *o = out;
        const unsigned char *p = (const unsigned char *) in;

        ck_assert_ptr_nonnull(out);
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned) p[i] << 16 | (i + 1 < n ? (unsigned) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);

                *o++ = abc[v >> 18 & 63];
                *o++ = abc[v >> 12 & 63];
                *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? abc[v & 63] : '=';
        }
        return out;
}

/* text with the registered secrets replaced (a copy even when nothing was). */
static char *scrubbed(const char *text) {
        char *out = NULL;
        size_t n;
        int r = scrub_text(text, strlen(text), NULL, &out, &n);

        ck_assert_int_ge(r, 0);
        if (r == 0) {
                ck_assert_ptr_null(out);
                out = strdup(text);
        } else
                ck_assert_uint_eq(n, strlen(out));
        return out;
}

/* Checks that `text` loses the key and keeps what surrounds it. */
static void check_gone(const char *text, const char *before, const char *after) {
        _cleanup_free_ char *s = scrubbed(text);
        _cleanup_free_ char *want = NULL;

        ck_assert_msg(scrub_found(text, strlen(text), NULL), "not found in: %s", text);
        ck_assert_int_ge(asprintf(&want, "%s" SCRUB_MARK "%s", before, after), 0);
        ck_assert_str_eq(s, want);
        ck_assert(!scrub_found(s, strlen(s), NULL));
}

static void setup(void) {
        scrub_reset();
        ck_assert_int_eq(scrub_set(SCRUB_CREDENTIAL, KEY), 0);
}

static void teardown(void) {
        scrub_reset();
}

START_TEST(test_raw_and_percent) {
        check_gone("bad key " KEY " here", "bad key ", " here");
        check_gone(KEY, "", "");
        /* every byte percent-encoded, either case of hex, or only some */
        check_gone("?k=%73%6B%2D%54%65%73%74%2F%4B%65%79%2B%34%32%5F%61%62%63%64%65%66&x=1", "?k=", "&x=1");
        check_gone("?k=sk-Test%2fKey%2b42_abcdef", "?k=", "");
        /* nothing else changes */
        _cleanup_free_ char *s = scrubbed("sk-Test/Key+42_abcde (one short) and %41%42");
        ck_assert_str_eq(s, "sk-Test/Key+42_abcde (one short) and %41%42");
}
END_TEST

START_TEST(test_json_escaped) {
        json_object *o = json_object_new_string(KEY);
        const char *js;

        /* json-c's own escaping (\/ for '/') */
        js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        ck_assert_ptr_nonnull(strstr(js, "\\/"));
        ck_assert(scrub_found(js, strlen(js), NULL));
        json_object_put(o);
        /* every character as \u00XX, and a mix of the escapes */
        check_gone("{\"message\":\"\\u0073\\u006b\\u002d\\u0054\\u0065\\u0073\\u0074\\u002F\\u004b\\u0065\\u0079"
                   "\\u002b\\u0034\\u0032\\u005f\\u0061\\u0062\\u0063\\u0064\\u0065\\u0066\"}",
                   "{\"message\":\"", "\"}");
        check_gone("\"sk-T\\u0065st\\/Key%2B42_abc\\x64ef\"", "\"", "\"");
}
END_TEST

START_TEST(test_base64) {
        /* the key at each offset in a longer encoded text, in both alphabets */
        for (unsigned pre = 0; pre < 6; pre++)
                for (unsigned url = 0; url < 2; url++) {
                        _cleanup_free_ char *plain = NULL, *enc = NULL, *s = NULL;

                        ck_assert_int_ge(asprintf(&plain, "%.*sapi-key-v1 " KEY " trailer", (int) pre, "xxxxxx"), 0);
                        enc = b64(plain, strlen(plain), url);
                        ck_assert_msg(scrub_found(enc, strlen(enc), NULL), "prefix %u url %u: %s", pre, url, enc);
                        s = scrubbed(enc);
                        ck_assert_ptr_nonnull(strstr(s, SCRUB_MARK));
                        ck_assert(!scrub_found(s, strlen(s), NULL));
                }
        /* the key alone, padded */
        _cleanup_free_ char *alone = b64(KEY, strlen(KEY), false);
        ck_assert(scrub_found(alone, strlen(alone), NULL));
}
END_TEST

START_TEST(test_non_ascii_and_special) {
        /* a login token with non-ASCII characters: raw, \u of the BMP, a surrogate pair */
        ck_assert_int_eq(scrub_set(SCRUB_REFRESH_TOKEN, "tok-\xc3\xa9t\xc3\xa9-\xf0\x9f\x94\x91-end"), 0);
        check_gone("a tok-\xc3\xa9t\xc3\xa9-\xf0\x9f\x94\x91-end b", "a ", " b");
        check_gone("a tok-\\u00e9t\\u00E9-\\ud83d\\udd11-end b", "a ", " b");
        check_gone("a tok-%C3%A9t%c3%a9-%F0%9F%94%91-end b", "a ", " b");
        /* a secret with '%' and '\': the other reading is tried too */
        ck_assert_int_eq(scrub_set(SCRUB_PROXY, "p%25w\\rd-secret"), 0);
        check_gone("x p%25w\\rd-secret y", "x ", " y");
        check_gone("x p%2525w%5Crd-secret y", "x ", " y");
        check_gone("x p\\u002525w\\\\rd-secret y", "x ", " y");
}
END_TEST

START_TEST(test_registry) {
        char ring[SCRUB_RECENT_MAX + 2][32];

        /* a replaced credential is still looked for; clearing a slot keeps it too */
        ck_assert_int_eq(scrub_set(SCRUB_CREDENTIAL, "second-key-123456"), 0);
        ck_assert(scrub_found("x " KEY, strlen("x " KEY), NULL));
        ck_assert(scrub_found("second-key-123456", 17, NULL));
        ck_assert_int_eq(scrub_set(SCRUB_CREDENTIAL, NULL), 0);
        ck_assert(scrub_found("second-key-123456", 17, NULL));
        /* short secrets are not looked for */
        ck_assert_int_eq(scrub_set(SCRUB_PROXY, "pw"), 0);
        ck_assert(!scrub_found("pw pw", 5, NULL));
        /* the ring keeps the last SCRUB_RECENT_MAX */
        scrub_reset();
        for (unsigned i = 0; i < ELEMENTSOF(ring); i++) {
                snprintf(ring[i], sizeof(ring[i]), "storage-secret-%02u", i);
                ck_assert_int_eq(scrub_remember(ring[i]), 0);
        }
        ck_assert(!scrub_found(ring[0], strlen(ring[0]), NULL));
        ck_assert(!scrub_found(ring[1], strlen(ring[1]), NULL));
        for (unsigned i = 2; i < ELEMENTSOF(ring); i++)
                ck_assert(scrub_found(ring[i], strlen(ring[i]), NULL));
        /* remembering one again does not push another out */
        ck_assert_int_eq(scrub_remember(ring[5]), 0);
        ck_assert(scrub_found(ring[2], strlen(ring[2]), NULL));
        /* an extra secret for one call */
        ck_assert(scrub_found("a one-off-secret b", 18, "one-off-secret"));
        ck_assert(!scrub_found("a one-off-secret b", 18, NULL));
        scrub_reset();
        ck_assert(!scrub_found(ring[9], strlen(ring[9]), NULL));
}
END_TEST

START_TEST(test_clean) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *long_text = NULL;
        size_t n;

        /* one line of valid UTF-8: C0, DEL, C1, U+2028 become spaces, bad bytes '?' */
        a = scrub_clean("a\nb\rc\x1b[31md\x7f" "e\xc2\x9b" "f\xe2\x80\xa8g\xff\xfeh\xc3\xa9", 25, 100, NULL);
        ck_assert_str_eq(a, "a b c [31md e f g??h\xc3\xa9");
        /* the secret in any form, and an extra one */
        b = scrub_clean("key=" KEY " other=one-off-secret", strlen("key=" KEY " other=one-off-secret"), 100,
                        "one-off-secret");
        ck_assert_str_eq(b, "key=*** other=***");
        /* cut between characters, with an ellipsis */
        c = scrub_clean("\xc3\xa9\xc3\xa9\xc3\xa9", 6, 5, NULL);
        ck_assert_str_eq(c, "\xc3\xa9\xc3\xa9…");
        /* a secret across the cut is not shown in part */
        d = scrub_clean("0123456789" KEY "tail", strlen("0123456789" KEY "tail"), 14, NULL);
        ck_assert_str_eq(d, "0123456789***t…");
        /* a long text is read only up to a bound past max, and said to go on */
        n = 200000;
        long_text = malloc(n);
        ck_assert_ptr_nonnull(long_text);
        memset(long_text, 'x', n);
        memcpy(long_text + 10, KEY, strlen(KEY));
        e = scrub_clean(long_text, n, 40, NULL);
        ck_assert(startswith(e, "xxxxxxxxxx***xxx"));
        ck_assert(endswith(e, "…"));
        ck_assert_uint_eq(strlen(e), 40 + strlen("…"));
}
END_TEST

static Suite *scrub_suite(void) {
        Suite *s = suite_create("scrub");
        TCase *tc = tcase_create("forms");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_raw_and_percent);
        tcase_add_test(tc, test_json_escaped);
        tcase_add_test(tc, test_base64);
        tcase_add_test(tc, test_non_ascii_and_special);
        tcase_add_test(tc, test_registry);
        tcase_add_test(tc, test_clean);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(scrub_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
