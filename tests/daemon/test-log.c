/* SPDX-License-Identifier: MIT */
/*
 * daemon/log.c: what a peer controls cannot forge a log line. log_escape() on its own (every
 * class of control character, malformed UTF-8, the C1 and bidirectional controls, cutting at
 * the buffer's end), then whole messages and context fields written to stderr: one line per
 * call, whatever the arguments held.
 *
 * Files the tests write go to TEST_TMP_DIR, defined by meson.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

/* log_escape() into a static buffer of `size` bytes. */
static const char *esc_n(const char *s, size_t size) {
        static char buf[4096];

        ck_assert_uint_le(size, sizeof(buf));
        return log_escape(buf, size, s);
}

static const char *esc(const char *s) {
        return esc_n(s, 4096);
}

/* Text without control characters passes as it is, UTF-8 included. */
START_TEST(test_escape_plain) {
        ck_assert_str_eq(esc(""), "");
        ck_assert_str_eq(esc("Created runner 'iris' for uid 1000."), "Created runner 'iris' for uid 1000.");
        ck_assert_str_eq(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x99 \xe6\x97\xa5\xe6\x9c\xac"),
                         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x99 \xe6\x97\xa5\xe6\x9c\xac");
        /* a backslash is not a control character: it stays */
        ck_assert_str_eq(esc("C:\\temp\\n"), "C:\\temp\\n");
}
END_TEST

/* Line breaks, ESC, the other C0 characters and DEL are escaped. */
START_TEST(test_escape_c0) {
        ck_assert_str_eq(esc("a\nb"), "a\\nb");
        ck_assert_str_eq(esc("a\r\nb"), "a\\r\\nb");
        ck_assert_str_eq(esc("a\tb"), "a\\tb");
        ck_assert_str_eq(esc("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        ck_assert_str_eq(esc("\x01\x07\x08\x0b\x0c\x1f\x7f"), "\\x01\\x07\\x08\\x0b\\x0c\\x1f\\x7f");
        ck_assert_str_eq(esc("x\navatard[1]: err: forged"), "x\\navatard[1]: err: forged");
}
END_TEST

/* Bytes that are not well-formed UTF-8 are escaped one by one: stray continuation bytes,
 * overlong forms, surrogates, beyond U+10FFFF, a sequence cut short. */
START_TEST(test_escape_bad_utf8) {
        ck_assert_str_eq(esc("\xff"), "\\xff");
        ck_assert_str_eq(esc("a\x80z"), "a\\x80z");
        ck_assert_str_eq(esc("\xc0\xaf"), "\\xc0\\xaf");
        ck_assert_str_eq(esc("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
        ck_assert_str_eq(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");
        ck_assert_str_eq(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
        ck_assert_str_eq(esc("\xe2\x82"), "\\xe2\\x82");
        ck_assert_str_eq(esc("ok\xe2\x82" "x"), "ok\\xe2\\x82x");
}
END_TEST

/* The C1 controls (U+009B is CSI on some terminals), the line and paragraph separators and
 * the bidirectional overrides and isolates are escaped as code points. */
START_TEST(test_escape_unicode_controls) {
        ck_assert_str_eq(esc("\xc2\x9b" "31m"), "\\u009b31m");
        ck_assert_str_eq(esc("\xc2\x80\xc2\x9f"), "\\u0080\\u009f");
        ck_assert_str_eq(esc("a\xe2\x80\xa8" "b\xe2\x80\xa9"), "a\\u2028b\\u2029");
        ck_assert_str_eq(esc("user\xe2\x80\xae" "txt.exe"), "user\\u202etxt.exe");
        ck_assert_str_eq(esc("\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9"), "\\u202a\\u2066\\u2069");
        /* their neighbours are ordinary characters */
        ck_assert_str_eq(esc("\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5"),
                         "\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5");
}
END_TEST

/* What does not fit is cut at a boundary: never half an escape or half a character. */
START_TEST(test_escape_cut) {
        ck_assert_str_eq(esc_n("abc", 1), "");
        ck_assert_str_eq(esc_n("abc", 3), "ab");
        ck_assert_str_eq(esc_n("a\nb", 3), "a");
        ck_assert_str_eq(esc_n("a\nb", 4), "a\\n");
        ck_assert_str_eq(esc_n("a\x1b", 5), "a");
        ck_assert_str_eq(esc_n("a\x1b", 6), "a\\x1b");
        ck_assert_str_eq(esc_n("a\xe2\x82\xac", 4), "a");
        ck_assert_str_eq(esc_n("a\xe2\x82\xac", 5), "a\xe2\x82\xac");
}
END_TEST

/* Points stderr at a new file and returns the fd of the old stderr. */
static int capture_stderr(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), saved = dup(STDERR_FILENO);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
        return saved;
}

/* Puts stderr back and returns what was written to the file (malloc'd). */
static char *release_stderr(const char *path, int saved) {
        char *text = NULL;
        size_t n = 0;
        FILE *f;

        fflush(stderr);
        ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ne(getdelim(&text, &n, '\0', f), -1);
        fclose(f);
        unlink(path);
        return text;
}

/* Counts the lines of a text that ends in a newline. */
static size_t count_lines(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* A message and a context whose strings came from a peer make exactly one line each, with
 * no ESC, no other control character and nothing that is not UTF-8 in it. */
START_TEST(test_log_lines) {
        const char *path = TEST_TMP_DIR "/test-log-stderr.txt";
        LogContext ctx = {
                .rpc_method = "runner.add_table\nforged",
                .client_pid = 42,
                .client_uid = 1000,
                .client_comm = "evil\n\x1b[2K",
                .runner_id = "r\r1",
                .job_name = "job\x7f\xff",
        };
        _cleanup_free_ char *out = NULL, *big = NULL;
        int saved;

        big = malloc(3000);
        ck_assert_ptr_nonnull(big);
        memset(big, '\n', 2999);
        big[2999] = '\0';

        log_open(LOG_TARGET_STDERR);
        log_set_max_level(LOG_DEBUG);
        saved = capture_stderr(path);
        log_info("Created runner %s '%s' for uid %u.", "abc",
                 "iris'.\navatard[1]: err: Deleted every run of uid 0.\x1b[1A\x1b[2K", 1000u);
        log_ctx(LOG_NOTICE, &ctx, "Denied %s to uid %u.", "m\r\n", 1000u);
        log_warning("%s", big);
        log_error("table '%s'", "\xc2\x9b" "2J\xe2\x80\xae" "gnp.exe");
        out = release_stderr(path, saved);

        ck_assert_uint_eq(count_lines(out), 4);
        for (const unsigned char *p = (const unsigned char *) out; *p; p++)
                ck_assert_msg(*p == '\n' || (*p >= 0x20 && *p != 0x7f), "byte 0x%02x in the log", *p);
        ck_assert_ptr_nonnull(strstr(out, "'iris'.\\navatard[1]: err: Deleted every run of uid 0.\\x1b[1A\\x1b[2K'"));
        ck_assert_ptr_nonnull(strstr(out, "[runner.add_table\\nforged pid=42 uid=1000 comm=evil\\n\\x1b[2K "
                                          "runner=r\\r1 job=job\\x7f\\xff] Denied m\\r\\n to uid 1000."));
        ck_assert_ptr_nonnull(strstr(out, "table '\\u009b2J\\u202egnp.exe'"));
        /* the 2,047 newlines that fit the message buffer, all escaped, on one line */
        ck_assert_ptr_nonnull(strstr(out, "warning: \\n\\n\\n"));
}
END_TEST

static Suite *log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc;

        tc = tcase_create("escape");
        tcase_add_test(tc, test_escape_plain);
        tcase_add_test(tc, test_escape_c0);
        tcase_add_test(tc, test_escape_bad_utf8);
        tcase_add_test(tc, test_escape_unicode_controls);
        tcase_add_test(tc, test_escape_cut);
        suite_add_tcase(s, tc);

        tc = tcase_create("lines");
        tcase_add_test(tc, test_log_lines);
        suite_add_tcase(s, tc);
        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        SRunner *sr = srunner_create(log_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
