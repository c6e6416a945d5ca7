/* SPDX-License-Identifier: MIT */
/*
 * daemon/upstream-url.c: what an error says of a redirect, which the daemon never follows
 * (upstream_redirect_text()): the status and where it pointed, without the Location's
 * credentials, query or fragment, with its unprintable bytes percent-encoded, bounded.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "upstream.h"

/* upstream_redirect_text() into a static buffer. */
static const char *text(long status, const char *location) {
        static char buf[1024];
        char *s = upstream_redirect_text(status, location);

        ck_assert_ptr_nonnull(s);
        ck_assert_uint_lt(strlen(s), sizeof(buf));
        strcpy(buf, s);
        free(s);
        return buf;
}

START_TEST(test_redirect_plain) {
        ck_assert_str_eq(text(302, "https://other.example/api/health"),
                         "redirect not followed (302 to https://other.example/api/health)");
        ck_assert_str_eq(text(301, "http://127.0.0.1:8080/"), "redirect not followed (301 to http://127.0.0.1:8080/)");
        ck_assert_str_eq(text(307, "/login"), "redirect not followed (307 to /login)");
        ck_assert_str_eq(text(308, "next"), "redirect not followed (308 to next)");
        ck_assert_str_eq(text(302, NULL), "redirect not followed (302 without a Location)");
        ck_assert_str_eq(text(302, ""), "redirect not followed (302 without a Location)");
}
END_TEST

/* Credentials, query strings and fragments may hold tokens (the API key among them): none is
 * shown, in absolute, scheme-relative, relative or malformed forms. */
START_TEST(test_redirect_scrubbed) {
        ck_assert_str_eq(text(302, "https://alice:KEY123@evil.example/login?api_key=KEY123#t=KEY123"),
                         "redirect not followed (302 to https://evil.example/login)");
        ck_assert_str_eq(text(302, "//alice:KEY123@evil.example/x?k=KEY123"),
                         "redirect not followed (302 to //evil.example/x)");
        ck_assert_str_eq(text(302, "/login?token=KEY123"), "redirect not followed (302 to /login)");
        ck_assert_str_eq(text(302, "/a#KEY123"), "redirect not followed (302 to /a)");
        /* libcurl refuses a space in a URL: the fallback strips the credentials too */
        ck_assert_str_eq(text(302, "https://alice:KEY123@evil.example/a b?KEY123"),
                         "redirect not followed (302 to https://evil.example/a%20b)");
        ck_assert_str_eq(text(302, "weird://u:KEY123@h/p q"), "redirect not followed (302 to weird://h/p%20q)");
        /* an '@' in a relative path is not a password */
        ck_assert_str_eq(text(302, "/users/a@b"), "redirect not followed (302 to /users/a@b)");
}
END_TEST

/* Control characters and bytes beyond ASCII cannot reach a reply or a log line as they are. */
START_TEST(test_redirect_unprintable) {
        ck_assert_str_eq(text(302, "/a\r\nSet-Cookie: x\x1b[31m\xc3\xa9"),
                         "redirect not followed (302 to /a%0D%0ASet-Cookie:%20x%1B[31m%C3%A9)");
}
END_TEST

/* A long Location is cut, never inside an escape, to at most 256 bytes. */
START_TEST(test_redirect_bounded) {
        char loc[4096] = "/";
        const char *t, *shown;

        memset(loc + 1, 'a', 3000);
        t = text(302, loc);
        shown = t + strlen("redirect not followed (302 to ");
        ck_assert_uint_eq(strlen(shown), UPSTREAM_LOCATION_SHOWN_MAX + 1); /* and ")" */
        ck_assert(endswith(t, "aaa...)"));

        for (size_t cut = 250; cut < 256; cut++) {
                memset(loc, 'a', sizeof(loc));
                loc[0] = '/';
                for (size_t i = cut - 3; i < 300; i++)
                        loc[i] = ' ';
                loc[300] = '\0';
                t = text(302, loc);
                shown = t + strlen("redirect not followed (302 to ");
                ck_assert_uint_le(strlen(shown), UPSTREAM_LOCATION_SHOWN_MAX + 1);
                ck_assert(endswith(t, "...)"));
                /* what precedes the "..." is whole: a complete %20 or a letter */
                ck_assert(endswith(t, "a...)") || endswith(t, "%20...)"));
        }
}
END_TEST

static Suite *redirect_suite(void) {
        Suite *s = suite_create("redirect");
        TCase *tc = tcase_create("text");

        tcase_add_test(tc, test_redirect_plain);
        tcase_add_test(tc, test_redirect_scrubbed);
        tcase_add_test(tc, test_redirect_unprintable);
        tcase_add_test(tc, test_redirect_bounded);
        suite_add_tcase(s, tc);
        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        SRunner *sr = srunner_create(redirect_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
