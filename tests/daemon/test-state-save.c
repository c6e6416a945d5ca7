/* SPDX-License-Identifier: MIT */
/*
 * Saved or refused (daemon/state.c, the saving of daemon/runner.c). state_write_json()
 * succeeds only when the file is durably in place: a failed write, fsync of the file or fsync
 * of the directory is an error, and no temporary file is left. A runner whose save failed is
 * unsaved: listed by runners_stats_json(), saved again by the registry's retry timer once the
 * disk takes writes, and a change undone with a snapshot leaves memory as the file has it.
 * Stale temporary files (.NAME.XXXXXX) of the runner and set directories go at start.
 *
 * Failures are injected without privileges: fsync() is wrapped (-Wl,--wrap=fsync) to fail the
 * Nth call from now with a chosen errno, and RLIMIT_FSIZE makes write() fail with EFBIG.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonc-helpers.h"
#include "log.h"
#include "macro.h"
#include "runner.h"
#include "state.h"
#include "test-tmpdir.h"
#include "test-wait.h"

/* ---- fsync() failure injection ---- */

int __real_fsync(int fd);
int __wrap_fsync(int fd);

static volatile unsigned fsync_countdown; /* 0: fsync works; N: the Nth call from now fails */
static volatile bool fsync_fail_always;   /* every call fails (a full disk) */
static volatile int fsync_errno = EIO;
/* a slow disk: while set, each fsync first reads a byte from this pipe (the test writes one to
 * let a write through); what a disk does, not a wait of the test */
static volatile int fsync_gate = -1;

int __wrap_fsync(int fd) {
        char b;

        if (fsync_gate >= 0)
                (void) !read(fsync_gate, &b, 1);
        if (fsync_fail_always || (fsync_countdown > 0 && --fsync_countdown == 0)) {
                errno = fsync_errno;
                return -1;
        }
        return __real_fsync(fd);
}

static void fsync_fail_nth(unsigned n, int error) {
        fsync_countdown = n;
        fsync_fail_always = false;
        fsync_errno = error;
}

static void fsync_heal(void) {
        fsync_countdown = 0;
        fsync_fail_always = false;
}

/* ---- helpers ---- */

/* Reads a whole file (malloc'd), NULL when it does not exist. */
static char *read_text(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        size_t n = 0;
        FILE *f;

        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        if (getdelim(&text, &n, '\0', f) < 0) {
                free(text);
                text = strdup("");
        }
        fclose(f);
        return text;
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

/* How many entries of dir start with a dot (the temporary files). */
static unsigned count_dot_files(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] == '.' && !streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static json_object *doc(const char *value) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "value", json_object_new_string(value));
        return o;
}

/* Writes {"value": "old"} as dir/f.json, checked. */
static void write_old(const char *dir) {
        _cleanup_(json_object_putp) json_object *o = doc("old");

        fsync_heal();
        ck_assert_int_eq(state_write_json(dir, "f.json", o), 0);
}

/* dir/f.json still holds {"value": "old"}. */
static void assert_old(const char *dir) {
        _cleanup_free_ char *t = read_text(dir, "f.json");

        ck_assert_ptr_nonnull(t);
        ck_assert_msg(strstr(t, "\"old\""), "f.json: %s", t);
        ck_assert_uint_eq(count_dot_files(dir), 0);
}

/* ---- state_write_json ---- */

START_TEST(test_write_ok) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *t = NULL, *path = NULL;
        _cleanup_(json_object_putp) json_object *o = doc("new");
        struct stat st;
        bool replaced = false;

        write_old(top);
        ck_assert_int_eq(state_write_json_ext(top, "f.json", o, &replaced), 0);
        ck_assert(replaced);
        t = read_text(top, "f.json");
        ck_assert_ptr_nonnull(strstr(t, "\"new\""));
        ck_assert_uint_eq(count_dot_files(top), 0);
        ck_assert_int_ge(asprintf(&path, "%s/f.json", top), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        test_tmpdir_remove(top);
}
END_TEST

START_TEST(test_write_missing_dir) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *missing = NULL;
        _cleanup_(json_object_putp) json_object *o = doc("new");

        ck_assert_int_ge(asprintf(&missing, "%s/nope", top), 0);
        ck_assert_int_eq(state_write_json(missing, "f.json", o), -ENOENT);
        ck_assert_int_eq(access(missing, F_OK), -1);
        test_tmpdir_remove(top);
}
END_TEST

/* The file's fsync fails (a full disk, as ext4 and XFS report delayed allocation): an error,
 * the old file untouched, no temporary file left. */
START_TEST(test_write_file_fsync_fails) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save");
        _cleanup_(json_object_putp) json_object *o = doc("new");
        bool replaced = true;

        write_old(top);
        fsync_fail_nth(1, ENOSPC);
        ck_assert_int_eq(state_write_json_ext(top, "f.json", o, &replaced), -ENOSPC);
        fsync_heal();
        ck_assert(!replaced);
        assert_old(top);
        test_tmpdir_remove(top);
}
END_TEST

/* The directory's fsync fails after the rename: the write is not durable, so it is an error
 * (it used to be ignored), and the caller learns the file was replaced. */
START_TEST(test_write_dir_fsync_fails) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save");
        _cleanup_(json_object_putp) json_object *o = doc("new");
        bool replaced = false;

        write_old(top);
        fsync_fail_nth(2, EIO);
        ck_assert_int_eq(state_write_json(top, "f.json", o), -EIO);
        fsync_fail_nth(2, EIO);
        ck_assert_int_eq(state_write_json_ext(top, "f.json", o, &replaced), -EIO);
        fsync_heal();
        ck_assert(replaced);
        ck_assert_uint_eq(count_dot_files(top), 0);
        test_tmpdir_remove(top);
}
END_TEST

/* write() itself fails (here EFBIG from RLIMIT_FSIZE): an error, nothing left behind. */
START_TEST(test_write_fails) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *big = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        struct rlimit old, small = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };

        write_old(top);
        big = malloc(64 * 1024);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 64 * 1024 - 1);
        big[64 * 1024 - 1] = '\0';
        o = doc(big);
        ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
        small.rlim_max = old.rlim_max;
        (void) signal(SIGXFSZ, SIG_IGN);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
        ck_assert_int_eq(state_write_json(top, "f.json", o), -EFBIG);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
        assert_old(top);
        test_tmpdir_remove(top);
}
END_TEST

START_TEST(test_retryable) {
        ck_assert(state_error_retryable(-ENOSPC));
        ck_assert(state_error_retryable(-EDQUOT));
        ck_assert(state_error_retryable(-EIO));
        ck_assert(!state_error_retryable(-EROFS));
        ck_assert(!state_error_retryable(-EACCES));
}
END_TEST

/* ---- temporary files at start ---- */

/* A state directory with a runners/ and a sets/ directory, each with stale temporary files
 * and things that only look alike. */
START_TEST(test_temp_files_removed_at_start) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *runners = NULL, *sets = NULL, *d = NULL, *t = NULL;
        Runners *rs = NULL;

        ck_assert_int_ge(asprintf(&runners, "%s/runners", top), 0);
        ck_assert_int_ge(asprintf(&sets, "%s/sets", top), 0);
        ck_assert_int_eq(mkdir(runners, 0700), 0);
        ck_assert_int_eq(mkdir(sets, 0700), 0);
        write_text(runners, ".0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0.json.Ab3XyZ", "{\"torn");
        write_text(runners, ".other.json.q1w2e3", "");
        write_text(runners, ".keep", "not ours");            /* no six-character suffix */
        write_text(runners, ".keep.json.ab-cd!", "not ours");  /* not mkostemp's characters */
        write_text(sets, ".0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f1.json.ZZ9zz9", "{");
        ck_assert_int_ge(asprintf(&d, "%s/.dir.json.AAAAAA", runners), 0);
        ck_assert_int_eq(mkdir(d, 0700), 0);                  /* a directory: not a file of ours */

        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        ck_assert_ptr_null(t = read_text(runners, ".0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0.json.Ab3XyZ"));
        ck_assert_ptr_null(t = read_text(runners, ".other.json.q1w2e3"));
        ck_assert_ptr_null(t = read_text(sets, ".0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f1.json.ZZ9zz9"));
        t = read_text(runners, ".keep");
        ck_assert_ptr_nonnull(t);
        free(t);
        t = read_text(runners, ".keep.json.ab-cd!");
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(access(d, F_OK), 0);
        ck_assert_uint_eq(rs->n, 0);
        runners_free(rs);
        test_tmpdir_remove(top);
}
END_TEST

/* ---- runners ---- */

static Runner *new_runner(Runners *rs) {
        Runner *r = NULL;

        fsync_heal();
        ck_assert_int_eq(runner_new(rs, 1000, "r", json_object_new_array(), NULL, &r), 0);
        return r;
}

/* The runner's file holds text. */
static bool file_has(const Runners *rs, const Runner *r, const char *text) {
        _cleanup_free_ char *name = NULL, *t = NULL;

        ck_assert_int_ge(asprintf(&name, "%s.json", r->id), 0);
        t = read_text(rs->dir, name);
        return t && strstr(t, text);
}

static bool all_saved(void *arg) {
        return ((Runners *) arg)->n_unsaved == 0;
}

static uint64_t errors_before;

static bool retried(void *arg) {
        return ((Runners *) arg)->save_errors > errors_before;
}

/* A failed save leaves the runner unsaved and listed; once the disk takes writes again the
 * retry timer saves it without any call. */
START_TEST(test_runner_saved_again) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save");
        struct event_base *base = event_base_new();
        Runners *rs = NULL;
        Runner *r;
        json_object *st, *unsaved;

        ck_assert_ptr_nonnull(base);
        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        ck_assert_int_eq(runners_set_event_base(rs, base), 0);
        r = new_runner(rs);

        runner_warn(r, "change-one");
        fsync_fail_always = true;
        fsync_errno = ENOSPC;
        ck_assert_int_eq(runner_save(r), -ENOSPC);
        ck_assert(r->unsaved);
        ck_assert_uint_eq(rs->n_unsaved, 1);
        ck_assert(!file_has(rs, r, "change-one"));
        st = runners_stats_json(rs);
        unsaved = json_object_object_get(st, "unsaved");
        ck_assert_uint_eq(json_array_len(unsaved), 1);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(unsaved, 0)), r->id);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(st, "last_save_error")), "ENOSPC");
        json_object_put(st);

        /* still full: the next retry fails, and keeps it unsaved */
        errors_before = rs->save_errors;
        ck_assert(test_wait_until(base, retried, rs, TEST_WAIT_MS));
        ck_assert(r->unsaved);
        ck_assert(!file_has(rs, r, "change-one"));

        /* room again: saved by the timer, no call made */
        fsync_heal();
        ck_assert(test_wait_until(base, all_saved, rs, TEST_WAIT_MS));
        ck_assert(!r->unsaved);
        ck_assert(file_has(rs, r, "change-one"));
        st = runners_stats_json(rs);
        ck_assert_uint_eq(json_array_len(json_object_object_get(st, "unsaved")), 0);
        ck_assert(json_object_object_get(st, "last_save_error") == NULL);
        json_object_put(st);

        runners_free(rs);
        event_base_free(base);
        test_tmpdir_remove(top);
}
END_TEST

/* A successful save of one runner saves the unsaved others at once (no timer: no event base). */
START_TEST(test_runner_saved_with_next_save) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save");
        Runners *rs = NULL;
        Runner *a, *b;

        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        a = new_runner(rs);
        b = new_runner(rs);
        runner_warn(a, "change-a");
        fsync_fail_nth(1, ENOSPC);
        ck_assert_int_lt(runner_save(a), 0);
        ck_assert(a->unsaved);
        ck_assert_uint_eq(runners_save_pending(rs), 0);
        ck_assert(!a->unsaved);
        ck_assert(file_has(rs, a, "change-a"));
        ck_assert(!b->unsaved);
        runners_free(rs);
        test_tmpdir_remove(top);
}
END_TEST

/* A change undone after a failed save: memory as the file has it, the runner not unsaved;
 * but when the failed save had replaced the file (the directory's fsync failed), it stays
 * unsaved so that the file is written again. */
START_TEST(test_runner_snapshot_restore) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *msg = NULL;
        _cleanup_(json_object_putp) json_object *data = NULL;
        Runners *rs = NULL;
        RunnerSnapshot snap;
        Runner *r;

        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        r = new_runner(rs);

        ck_assert_int_eq(runner_snapshot(r, &snap), 0);
        runner_warn(r, "undone");
        fsync_fail_nth(1, ENOSPC);
        ck_assert_int_eq(runner_save(r), -ENOSPC);
        runner_snapshot_restore(r, &snap);
        runner_snapshot_done(&snap);
        ck_assert_uint_eq(json_array_len(r->warnings), 0);
        ck_assert(!r->unsaved);
        ck_assert_uint_eq(rs->n_unsaved, 0);

        ck_assert_int_eq(runner_save_error_json(r, -ENOSPC, false, &msg, &data), 0);
        ck_assert_msg(strstr(msg, rs->dir) && strstr(msg, strerror(ENOSPC)), "message: %s", msg);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(data, "errno")), "ENOSPC");
        ck_assert(json_object_get_boolean(json_object_object_get(data, "retryable")));
        ck_assert_str_eq(json_object_get_string(json_object_object_get(data, "runner_id")), r->id);

        ck_assert_int_eq(runner_snapshot(r, &snap), 0);
        runner_warn(r, "replaced");
        fsync_fail_nth(2, EIO);
        ck_assert_int_eq(runner_save(r), -EIO);
        runner_snapshot_restore(r, &snap);
        runner_snapshot_done(&snap);
        ck_assert_uint_eq(json_array_len(r->warnings), 0);
        ck_assert(r->unsaved);
        fsync_heal();
        ck_assert_uint_eq(runners_save_pending(rs), 0);
        ck_assert(!file_has(rs, r, "replaced"));

        runners_free(rs);
        test_tmpdir_remove(top);
}
END_TEST

/* ---- the writer thread ---- */

typedef struct Outcome {
        unsigned calls;
        int error;
} Outcome;

static void on_written(int error, bool replaced, void *userdata) {
        Outcome *o = userdata;

        (void) replaced;
        o->calls++;
        o->error = error;
}

static bool outcome_in(void *arg) {
        return ((Outcome *) arg)->calls > 0;
}

static char *text_of(const char *value) {
        _cleanup_(json_object_putp) json_object *o = doc(value);
        char *t = state_json_text(o);

        ck_assert_ptr_nonnull(t);
        return t;
}

/* Writes from the thread reach the file; callbacks run on the loop; a failed one reports its
 * errno and leaves no temporary file. */
START_TEST(test_writer_writes) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *t = NULL;
        struct event_base *base = event_base_new();
        StateWriter *w = NULL;
        Outcome a = {}, b = {};

        fsync_heal();
        ck_assert_int_eq(state_writer_new(base, &w), 0);
        ck_assert_int_eq(state_writer_submit(w, top, "f.json", text_of("one"), on_written, &a), 0);
        /* never before submit returns, and only from the loop */
        ck_assert_uint_eq(a.calls, 0);
        ck_assert(test_wait_until(base, outcome_in, &a, TEST_WAIT_MS));
        ck_assert_int_eq(a.error, 0);
        t = read_text(top, "f.json");
        ck_assert_ptr_nonnull(strstr(t, "\"one\""));

        fsync_fail_always = true;
        fsync_errno = ENOSPC;
        ck_assert_int_eq(state_writer_submit(w, top, "f.json", text_of("two"), on_written, &b), 0);
        ck_assert(test_wait_until(base, outcome_in, &b, TEST_WAIT_MS));
        fsync_heal();
        ck_assert_int_eq(b.error, -ENOSPC);
        free(t);
        t = read_text(top, "f.json");
        ck_assert_ptr_nonnull(strstr(t, "\"one\""));
        ck_assert_uint_eq(count_dot_files(top), 0);

        /* a write made now comes after the queued ones, and is on disk when it returns */
        ck_assert_int_eq(state_writer_write_now(w, top, "f.json", "{\"value\": \"now\"}\n", NULL), 0);
        free(t);
        t = read_text(top, "f.json");
        ck_assert_ptr_nonnull(strstr(t, "\"now\""));
        state_writer_free(w);
        event_base_free(base);
        test_tmpdir_remove(top);
}
END_TEST

/* While the disk is slow, the writes of one file queued behind the one in progress become a
 * single write of the newest text (every callback hears of it); a forgotten file's queued
 * write is dropped (-ECANCELED) and never reaches the disk. */
START_TEST(test_writer_coalesces_and_forgets) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *t = NULL;
        struct event_base *base = event_base_new();
        StateWriter *w = NULL;
        Outcome busy = {}, o1 = {}, o2 = {}, o3 = {}, gone = {};
        json_object *st;
        int gate[2];

        fsync_heal();
        ck_assert_int_eq(pipe2(gate, O_CLOEXEC), 0);
        ck_assert_int_eq(state_writer_new(base, &w), 0);
        fsync_gate = gate[0];
        /* the thread takes this one and waits in its fsync */
        ck_assert_int_eq(state_writer_submit(w, top, "busy.json", text_of("busy"), on_written, &busy), 0);
        ck_assert_int_eq(state_writer_submit(w, top, "f.json", text_of("v1"), on_written, &o1), 0);
        ck_assert_int_eq(state_writer_submit(w, top, "f.json", text_of("v2"), on_written, &o2), 0);
        ck_assert_int_eq(state_writer_submit(w, top, "f.json", text_of("v3"), on_written, &o3), 0);
        ck_assert_int_eq(state_writer_submit(w, top, "gone.json", text_of("gone"), on_written, &gone), 0);
        state_writer_forget(w, top, "gone.json");
        ck_assert(test_wait_until(base, outcome_in, &gone, TEST_WAIT_MS));
        ck_assert_int_eq(gone.error, -ECANCELED);

        /* the disk goes on: two fsyncs per write (busy.json, then f.json once) */
        fsync_gate = -1;
        ck_assert_int_eq(write(gate[1], "xx", 2), 2);
        ck_assert(test_wait_until(base, outcome_in, &o3, TEST_WAIT_MS));
        ck_assert_uint_eq(busy.calls, 1);
        ck_assert_uint_eq(o1.calls, 1);
        ck_assert_uint_eq(o2.calls, 1);
        ck_assert_int_eq(o1.error, 0);
        ck_assert_int_eq(o3.error, 0);
        t = read_text(top, "f.json");
        ck_assert_ptr_nonnull(strstr(t, "\"v3\""));
        ck_assert_ptr_null(read_text(top, "gone.json"));
        st = state_writer_stats_json(w);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(st, "written")), 2);
        json_object_put(st);
        state_writer_free(w);
        event_base_free(base);
        close(gate[0]);
        close(gate[1]);
        test_tmpdir_remove(top);
}
END_TEST

static void on_runner_saved(Runner *r, int error, void *userdata) {
        Outcome *o = userdata;

        (void) r;
        o->calls++;
        o->error = error;
}

/* A runner closed while its save waits in the queue: the save is dropped, and its file does not
 * come back. */
START_TEST(test_runner_closed_while_queued) {
        _cleanup_free_ char *top = test_tmpdir_new("state-save"), *name = NULL, *path = NULL;
        struct event_base *base = event_base_new();
        Runners *rs = NULL;
        Runner *x, *y;
        Outcome ox = {}, oy = {};
        int gate[2];

        ck_assert_int_eq(pipe2(gate, O_CLOEXEC), 0);
        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        ck_assert_int_eq(runners_set_event_base(rs, base), 0);
        x = new_runner(rs);
        y = new_runner(rs);
        ck_assert_int_ge(asprintf(&name, "%s.json", y->id), 0);
        ck_assert_int_ge(asprintf(&path, "%s/%s", rs->dir, name), 0);

        fsync_gate = gate[0];
        ck_assert_int_eq(runner_save_async(x, on_runner_saved, &ox), 0);
        ck_assert_int_eq(runner_save_async(y, on_runner_saved, &oy), 0);
        runner_close(y);
        ck_assert_int_eq(access(path, F_OK), -1);
        fsync_gate = -1;
        ck_assert_int_eq(write(gate[1], "xx", 2), 2);
        ck_assert(test_wait_until(base, outcome_in, &ox, TEST_WAIT_MS));
        ck_assert(test_wait_until(base, outcome_in, &oy, TEST_WAIT_MS));
        ck_assert_int_eq(ox.error, 0);
        ck_assert_int_eq(oy.error, -ECANCELED);
        ck_assert_int_eq(access(path, F_OK), -1);
        runners_free(rs);
        event_base_free(base);
        close(gate[0]);
        close(gate[1]);
        test_tmpdir_remove(top);
}
END_TEST

static Suite *state_save_suite(void) {
        Suite *s = suite_create("state-save");
        TCase *tc = tcase_create("write");

        tcase_add_test(tc, test_write_ok);
        tcase_add_test(tc, test_write_missing_dir);
        tcase_add_test(tc, test_write_file_fsync_fails);
        tcase_add_test(tc, test_write_dir_fsync_fails);
        tcase_add_test(tc, test_write_fails);
        tcase_add_test(tc, test_retryable);
        suite_add_tcase(s, tc);
        tc = tcase_create("start");
        tcase_add_test(tc, test_temp_files_removed_at_start);
        suite_add_tcase(s, tc);
        tc = tcase_create("runners");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_runner_saved_again);
        tcase_add_test(tc, test_runner_saved_with_next_save);
        tcase_add_test(tc, test_runner_snapshot_restore);
        tcase_add_test(tc, test_runner_closed_while_queued);
        suite_add_tcase(s, tc);
        tc = tcase_create("writer");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_writer_writes);
        tcase_add_test(tc, test_writer_coalesces_and_forgets);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(state_save_suite());
        int failed;

        log_open(LOG_TARGET_STDERR);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
