/* SPDX-License-Identifier: MIT */
/*
 * daemon/runner.c: the runner files of the state directory as runners_new() loads them. The id
 * of a runner names the file runner_save() writes, so a file whose id is not a UUID (a "../"
 * path of a UUID's length, or any other text) is refused: the runner is not loaded, the file
 * is kept aside untouched and named in the log and in the damaged list, and nothing is ever
 * written outside the state directory; a valid runner beside it loads.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonc-helpers.h"
#include "log.h"
#include "macro.h"
#include "runner.h"
#include "test-tmpdir.h"

#define GOOD_ID "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

/* The runner file of id, as runner_save() writes it (no set, no job). */
static char *runner_file_text(const char *id, const char *display_name) {
        char *s = NULL;

        ck_assert_int_ge(asprintf(&s,
                                  "{\"version\":1,\"id\":\"%s\",\"owner\":1000,\"display_name\":\"%s\","
                                  "\"set_name\":null,\"previous_set_name\":null,\"docs\":[],\"options\":{},"
                                  "\"tables\":{},\"warnings\":[],\"jobs\":[],\"created_at\":1764000000,"
                                  "\"updated_at\":1764000000}\n",
                                  id, display_name),
                         0);
        return s;
}

static void write_text(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* Reads a whole file (malloc'd), NULL when it does not exist. */
static char *read_text(const char *path) {
        char *text = NULL;
        size_t n = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return NULL;
        if (getdelim(&text, &n, '\0', f) < 0) {
                free(text);
                text = strdup("");
        }
        fclose(f);
        return text;
}


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
        char *text;

        fflush(stderr);
        ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);
        text = read_text(path);
        ck_assert_ptr_nonnull(text);
        unlink(path);
        return text;
}

/* One planted file whose id is not a UUID: refused and kept, the good runner loaded, and no
 * save of what was loaded writes outside_name.json beside the state directory (when not
 * NULL). */
static void check_refused(const char *bad_id, const char *outside_name) {
        _cleanup_free_ char *top = test_tmpdir_new("runner-state"), *state = NULL, *runners = NULL,
                            *good = NULL, *bad = NULL, *log_path = NULL, *log = NULL, *outside = NULL,
                            *kept_path = NULL, *kept = NULL, *expect_log = NULL;
        const char *bad_name = "44444444-4444-4444-8444-444444444444.json";
        Runners *rs = NULL;
        Runner *r;
        int saved;

        ck_assert_int_ge(asprintf(&state, "%s/state", top), 0);
        ck_assert_int_ge(asprintf(&runners, "%s/runners", state), 0);
        ck_assert_int_eq(mkdir(state, 0700), 0);
        ck_assert_int_eq(mkdir(runners, 0700), 0);
        good = runner_file_text(GOOD_ID, "good");
        bad = runner_file_text(bad_id, "tampered");
        write_text(runners, GOOD_ID ".json", good);
        write_text(runners, bad_name, bad);

        ck_assert_int_ge(asprintf(&log_path, "%s/log", top), 0);
        saved = capture_stderr(log_path);
        ck_assert_int_eq(runners_new(NULL, state, &rs), 0);
        log = release_stderr(log_path, saved);

        /* the good runner loads; the tampered one does not */
        ck_assert_ptr_nonnull(runner_find(rs, GOOD_ID));
        ck_assert_ptr_null(runner_find(rs, bad_id));
        ck_assert_int_eq(runners_count_owned(rs, 1000), 1);
        /* a clear log line names the file */
        ck_assert_int_ge(asprintf(&expect_log, "Runner file '%s' holds an id that is not a UUID; refused.", bad_name), 0);
        ck_assert_msg(strstr(log, expect_log), "log: %s", log);
        /* the file is kept aside, as it was, and listed as damaged */
        ck_assert_uint_eq(json_array_len(rs->damaged), 1);
        ck_assert(startswith(json_object_get_string(json_object_array_get_idx(rs->damaged, 0)), bad_name));
        ck_assert_int_ge(asprintf(&kept_path, "%s/%s", runners,
                                  json_object_get_string(json_object_array_get_idx(rs->damaged, 0))),
                         0);
        kept = read_text(kept_path);
        ck_assert_ptr_nonnull(kept);
        ck_assert_str_eq(kept, bad);

        /* saving every runner loaded writes nothing outside the state directory */
        TAILQ_FOREACH(r, &rs->list, link)
                ck_assert_int_eq(runner_save(r), 0);
        if (outside_name) {
                ck_assert_int_ge(asprintf(&outside, "%s/%s.json", top, outside_name), 0);
                ck_assert_msg(access(outside, F_OK) < 0, "%s was written", outside);
        }
        runners_free(rs);
        test_tmpdir_remove(top);
}

/* "../../" and a name, 36 characters long: saved, it would land beside the state directory. */
START_TEST(test_runner_state_traversal) {
        char id[RUNNER_ID_LEN + 1] = "../../escaped-";

        memset(id + strlen(id), 'x', RUNNER_ID_LEN - strlen(id));
        id[RUNNER_ID_LEN] = '\0';
        ck_assert_uint_eq(strlen(id), RUNNER_ID_LEN);
        check_refused(id, id + strlen("../../"));
}
END_TEST

/* Other ids of the right length that are not UUIDs. */
START_TEST(test_runner_state_not_uuid) {
        check_refused("0123456789abcdef0123456789abcdef0123", NULL);
        check_refused("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1g0", NULL);
        check_refused("0f1e2d3c-4b5a-4968-8776/a5b4c3d2e1f0", NULL);
}
END_TEST

static Suite *runner_state_suite(void) {
        Suite *s = suite_create("runner-state");
        TCase *tc = tcase_create("load");

        tcase_add_test(tc, test_runner_state_traversal);
        tcase_add_test(tc, test_runner_state_not_uuid);
        suite_add_tcase(s, tc);
        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        SRunner *sr = srunner_create(runner_state_suite());
        int failed;

        log_open(LOG_TARGET_STDERR);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
