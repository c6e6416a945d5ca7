/* SPDX-License-Identifier: MIT */
/*
 * daemon/runner.c: the write-ahead record of runner.run and the reconcile of a set. The
 * record (run) holds the plan, then the set, then the job being created, and survives a
 * restart: a loaded runner with an unfinished run is interrupted and asks for its set's jobs;
 * a new set keeps the set and jobs of the run before in past_sets; runner_adopt_jobs() takes
 * into the runner the jobs of its set it does not know, one per parameters name, never one of
 * another set, never a second job of a parameters name the runner has.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json-util.h"
#include "jsonc-helpers.h"
#include "log.h"
#include "macro.h"
#include "runner.h"
#include "test-tmpdir.h"

#define SET "11111111-2222-4333-8444-555555555555"
#define OLD_SET "66666666-7777-4888-8999-aaaaaaaaaaaa"
#define OTHER_SET "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff"

/* A fresh state directory (malloc'd path) with a registry on it that follows nothing. */
static char *new_state(Runners **ret) {
        char *top = test_tmpdir_new("runner-run");

        ck_assert_int_eq(runners_new(NULL, top, ret), 0);
        return top;
}

/* A runner without documents. */
static Runner *new_runner(Runners *rs) {
        Runner *r = NULL;

        ck_assert_int_eq(runner_new(rs, 1000, "record", json_object_new_array(), NULL, &r), 0);
        return r;
}

/* A JobResponse of the server. */
static json_object *job(const char *name, const char *set, const char *pname, const char *status) {
        json_object *o = json_object_new_object();

        if (name)
                json_object_object_add(o, "name", json_object_new_string(name));
        if (set)
                json_object_object_add(o, "set_name", json_object_new_string(set));
        if (pname)
                json_object_object_add(o, "parameters_name", json_object_new_string(pname));
        json_object_object_add(o, "status", json_object_new_string(status));
        return o;
}

/* The runner's state in its status. */
static const char *state_of(Runner *r, json_object **keep) {
        *keep = runner_status_json(r, false);
        ck_assert_ptr_nonnull(*keep);
        return json_str(*keep, "state");
}

START_TEST(test_adopt) {
        Runners *rs = NULL;
        _cleanup_free_ char *top = new_state(&rs);
        Runner *r = new_runner(rs);
        _cleanup_(json_object_putp) json_object *mine = json_object_new_array(), *list = json_object_new_array(),
                                                *adopted = json_object_new_array();
        json_object *j = json_object_new_object();
        RunnerJob *rj;

        r->set_name = strdup(SET);
        json_object_object_add(j, "parameters_name", json_object_new_string("standard"));
        json_object_object_add(j, "kind", json_object_new_string("standard"));
        json_object_object_add(j, "name", json_object_new_string("job-a"));
        json_object_object_add(j, "location", json_object_new_string("/jobs/job-a"));
        json_object_array_add(mine, j);
        ck_assert_int_eq(runner_replace_jobs(r, mine), 0);

        json_object_array_add(list, job("job-a", SET, "standard", "pending"));           /* known */
        json_object_array_add(list, job("job-b", SET, "signal_metrics", "queued"));      /* adopted */
        json_object_array_add(list, job("job-c", OTHER_SET, "privacy_metrics", "queued")); /* another set */
        json_object_array_add(list, job("job-d", NULL, "report", "queued"));             /* adopted */
        json_object_array_add(list, job("job-e", SET, "standard", "queued"));            /* a second standard */
        json_object_array_add(list, job("job-f", SET, NULL, "queued"));                  /* no parameters name */
        json_object_array_add(list, job(NULL, SET, "report_pia", "queued"));             /* no name */

        ck_assert_int_eq(runner_adopt_jobs(r, list, adopted), 2);
        ck_assert_uint_eq(json_array_len(adopted), 2);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(adopted, 0)), "signal_metrics");
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(adopted, 1)), "report");
        ck_assert_uint_eq(r->n_jobs, 3);
        ck_assert_str_eq(runner_job(r, "standard")->name, "job-a");
        rj = runner_job(r, "signal_metrics");
        ck_assert_ptr_nonnull(rj);
        ck_assert_str_eq(rj->name, "job-b");
        ck_assert_str_eq(rj->kind, "signal_metrics");
        ck_assert_str_eq(rj->location, "/jobs/job-b");
        ck_assert_str_eq(json_str(rj->job, "status"), "queued");
        ck_assert_str_eq(runner_job(r, "report")->name, "job-d");
        ck_assert_ptr_null(runner_job(r, "privacy_metrics"));
        ck_assert_ptr_null(runner_job(r, "report_pia"));

        /* again: nothing new */
        ck_assert_int_eq(runner_adopt_jobs(r, list, NULL), 0);
        ck_assert_uint_eq(r->n_jobs, 3);
        runners_free(rs);
        test_tmpdir_remove(top);
}
END_TEST

START_TEST(test_record) {
        Runners *rs = NULL;
        _cleanup_free_ char *top = new_state(&rs);
        _cleanup_free_ char *id = NULL;
        Runner *r = new_runner(rs);
        _cleanup_(json_object_putp) json_object *plan = json_object_new_array(), *more = json_object_new_array(),
                                                *old = json_object_new_array(), *st = NULL, *st2 = NULL,
                                                *st3 = NULL, *st4 = NULL;
        json_object *j = json_object_new_object(), *past;

        id = strdup(r->id);
        /* the jobs of an earlier run in its set */
        r->set_name = strdup(OLD_SET);
        json_object_object_add(j, "parameters_name", json_object_new_string("standard"));
        json_object_object_add(j, "name", json_object_new_string("old-a"));
        json_object_array_add(old, j);
        ck_assert_int_eq(runner_replace_jobs(r, old), 0);

        json_object_array_add(plan, json_object_new_string("standard"));
        json_object_array_add(plan, json_object_new_string("report"));
        json_object_array_add(more, json_object_new_string("standard"));
        json_object_array_add(more, json_object_new_string("signal_metrics"));
        ck_assert_int_eq(runner_run_begin(r, plan), 0);
        ck_assert_str_eq(state_of(r, &st), "interrupted");
        ck_assert_ptr_null(runner_run_set(r));
        /* continued: the plans merge, each name once */
        ck_assert_int_eq(runner_run_begin(r, more), 0);
        ck_assert_uint_eq(json_array_len(runner_run_planned(r)), 3);

        ck_assert_int_eq(runner_run_set_created(r, SET, true), 0);
        ck_assert_str_eq(r->set_name, SET);
        ck_assert_str_eq(r->previous_set_name, OLD_SET);
        ck_assert_str_eq(runner_run_set(r), SET);
        ck_assert_uint_eq(r->n_jobs, 0);
        ck_assert_uint_eq(json_array_len(r->past_sets), 1);
        past = json_object_array_get_idx(r->past_sets, 0);
        ck_assert_str_eq(json_str(past, "set_name"), OLD_SET);
        ck_assert_str_eq(json_str(json_object_array_get_idx(json_object_object_get(past, "jobs"), 0), "name"), "old-a");
        ck_assert_int_eq(runner_run_creating(r, "standard"), 0);
        ck_assert_str_eq(json_str(r->run, "creating"), "standard");

        /* a restart: the record comes back, the runner interrupted and asking for its set */
        runners_free(rs);
        rs = NULL;
        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        r = runner_find(rs, id);
        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(state_of(r, &st2), "interrupted");
        ck_assert(r->reconcile);
        ck_assert_str_eq(runner_run_set(r), SET);
        ck_assert_str_eq(json_str(r->run, "creating"), "standard");
        ck_assert_uint_eq(json_array_len(runner_run_planned(r)), 3);
        ck_assert_str_eq(json_str(json_object_array_get_idx(r->past_sets, 0), "set_name"), OLD_SET);
        ck_assert_ptr_nonnull(json_object_object_get(st2, "run"));
        ck_assert_uint_eq(json_array_len(json_object_object_get(st2, "past_sets")), 1);

        /* the run ends: no record, the runner configuring (no job) and saved so */
        ck_assert_int_eq(runner_run_end(r), 0);
        ck_assert_ptr_null(r->run);
        ck_assert_str_eq(state_of(r, &st3), "configuring");
        runners_free(rs);
        rs = NULL;
        ck_assert_int_eq(runners_new(NULL, top, &rs), 0);
        r = runner_find(rs, id);
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_null(r->run);
        ck_assert(!r->reconcile);
        ck_assert_str_eq(state_of(r, &st4), "configuring");
        runners_free(rs);
        test_tmpdir_remove(top);
}
END_TEST

static Suite *run_record_suite(void) {
        Suite *s = suite_create("runner-run-record");
        TCase *tc = tcase_create("record");

        tcase_add_test(tc, test_adopt);
        tcase_add_test(tc, test_record);
        suite_add_tcase(s, tc);
        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        SRunner *sr = srunner_create(run_record_suite());
        int failed;

        log_open(LOG_TARGET_STDERR);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
