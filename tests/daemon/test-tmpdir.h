/* SPDX-License-Identifier: MIT */
/*
 * Temporary directories for the unit tests of the state directory (test-state-save.c,
 * test-runner-state.c, test-runner-run-record.c): made under TEST_TMP_DIR (the test's build
 * directory, passed by meson) and removed with all they hold.
 */
#pragma once

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline int test_tmpdir_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

/* Removes a directory tree. */
static inline void test_tmpdir_remove(const char *dir) {
        ck_assert_int_eq(nftw(dir, test_tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* A new directory TEST_TMP_DIR/NAME-XXXXXX (malloc'd path). */
static inline char *test_tmpdir_new(const char *name) {
        char *top = NULL;

        ck_assert_int_ge(asprintf(&top, "%s/%s-XXXXXX", TEST_TMP_DIR, name), 0);
        ck_assert_ptr_nonnull(mkdtemp(top));
        return top;
}
