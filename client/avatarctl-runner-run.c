/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner run, status and wait (runner.run, runner.status, runner.wait), runs load
 * (manager.create_runner_from_id / _from_name) and watch (manager.watch_jobs): the commands
 * that start a run, follow it, or find it again.
 */
#include <limits.h>
#include <time.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "errors.h"
#include "jsonrpc.h"

/* runner.wait's and manager.watch_jobs' deadline when none is given, in seconds (the
 * contract's default). */
#define WAIT_TIMEOUT_DEFAULT_S 3600.0
/* A wait's call gets this much longer than the deadline it passes, for the reply to come. */
#define WAIT_CALL_MARGIN_MS 30000

/* ---- small helpers ------------------------------------------------------------------ */

/* The deadline of a call that waits `seconds` on the daemon's side. */
static int wait_call_timeout(double seconds) {
        double ms = seconds * 1000.0 + WAIT_CALL_MARGIN_MS;

        return ms >= (double) INT_MAX ? -1 : (int) ms;
}

/* ---- printing runners and jobs ------------------------------------------------------- */

/* Reports a failed job (the job_failed error of runner.wait): "job NAME failed (STATUS):
 * EXCEPTION", and how to look at the runner. */
static void report_job_failed(const Ctl *ctl, const AvatarClientError *e, const char *runner_id) {
        const char *job = ctl_member_string(e->data, "job"), *status = ctl_member_string(e->data, "status"),
                   *exception = ctl_member_string(e->data, "exception");

        ctl_before_message();
        (void) fputs("avatarctl: job ", stderr);
        output_sanitized(stderr, job ?: "?");
        (void) fputs(" failed", stderr);
        if (!isempty(status)) {
                (void) fputs(" (", stderr);
                output_sanitized(stderr, status);
                (void) fputc(')', stderr);
        }
        (void) fputs(": ", stderr);
        if (!isempty(exception)) {
                /* An exception is often a Python traceback: keep its lines. */
                const char *p = exception;

                while (*p) {
                        size_t l = strcspn(p, "\n");
                        _cleanup_free_ char *line = strndup(p, l);

                        if (p != exception)
                                (void) fputs("  ", stderr);
                        output_sanitized(stderr, line ?: "");
                        (void) fputc('\n', stderr);
                        p += l;
                        if (*p == '\n')
                                p++;
                }
        } else {
                output_sanitized(stderr, e->message ?: "internal error");
                (void) fputc('\n', stderr);
        }
        if (runner_id) {
                (void) fputs("The runner and its jobs:\n", stderr);
                print_command(stderr, ctl, "runner", "status", runner_id, NULL);
        }
}

/* Whether a failed call is a job's failure (the job_failed class). */
static bool is_job_failed(int r, const AvatarClientError *e) {
        return r == -EREMOTEIO && e->code == RPC_JOB_FAILED;
}

/* ---- runner run, status, wait -------------------------------------------------------- */

/* Prints runner.run for people. */
static int print_run(Ctl *ctl, json_object *result, void *userdata) {
        const char *id = ctl_member_string(result, "runner_id") ?: userdata, *prev = ctl_member_string(result, "previous_set_name");
        int r;

        (void) fputs("Started run ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "set_name") ?: "?");
        (void) fputs(" of runner ", stdout);
        output_sanitized(stdout, id);
        if (prev) {
                (void) fputs("; it replaces run ", stdout);
                output_sanitized(stdout, prev);
        }
        (void) puts(".\n");
        r = print_jobs_table(ctl_member(result, "jobs"));
        if (r < 0)
                return r;
        print_warnings(result);
        (void) puts("\nFollow it with:");
        print_command(stdout, ctl, "runner", "wait", id, NULL);
        return 0;
}

/* "avatarctl runner run RUNNER [--jobs LIST] [--ignore-warnings]": runner.run. */
int ctl_cmd_runner_run(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *jobs = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", run_jobs, ELEMENTSOF(run_jobs), &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        if ((jobs && ctl_add_member(params, "jobs", TAKE_PTR(jobs)) < 0) ||
            (ctl_opt_given(args, CTL_OPT_IGNORE_WARNINGS) &&
             ctl_add_member(params, "ignore_warnings", json_object_new_boolean(true)) < 0))
                return ctl_fail_oom(args->command);
        return call_print_warn(ctl, "runner.run", params, long_call_timeout(ctl), print_run, args->pos[0]);
}

/* Prints a RunnerStatus (ctl_print_fn). */
static int print_status(Ctl *ctl, json_object *result, void *userdata) {
        (void) ctl;
        (void) userdata;
        return print_runner_status(result);
}

/* "avatarctl runner status RUNNER [--refresh]": runner.get_status. */
int ctl_cmd_runner_status(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_opt_given(args, CTL_OPT_REFRESH) && ctl_add_member(params, "refresh", json_object_new_boolean(true)) < 0)
                return ctl_fail_oom(args->command);
        return ctl_call_and_print(ctl, "runner.get_status", params, print_status, NULL);
}

/* Waits for a runner's jobs (runner.wait) with a progress display: `p` when not NULL (it
 * stays attached), else one of its own. `jobs` (borrowed, may be NULL) names the jobs to
 * wait for; `initial` (borrowed, may be NULL) the jobs to show before the first
 * notification; `set_name` (may be NULL) the run, for the text printed on Ctrl-C. Returns
 * CTL_EXIT_OK with the result in *ret_result (done or at the deadline), or the exit code
 * with the failure reported (a job's failure by report_job_failed(), and its error handed
 * over in *ret_error when not NULL). */
int wait_runner(Ctl *ctl, const char *runner_id, const char *set_name, json_object *jobs, double timeout_s,
                json_object *initial, Progress *p, json_object **ret_result, AvatarClientError *ret_error) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *params = NULL;
        json_object *result = NULL;
        Progress *own = NULL;
        int code, r, deadline = wait_call_timeout(timeout_s);

        code = runner_params("runner.wait", runner_id, &params);
        if (code != CTL_EXIT_OK)
                return code;
        if ((jobs && ctl_add_member(params, "jobs", json_object_get(jobs)) < 0) ||
            ctl_add_member(params, "timeout_s", json_object_new_double(timeout_s)) < 0)
                return ctl_fail_oom("runner.wait");
        if (!p) {
                code = progress_attach(ctl, runner_id, &own);
                if (code != CTL_EXIT_OK)
                        return code;
                p = own;
        }
        progress_jobs(p, initial);
        if (own)
                interrupt_for_run(ctl, runner_id, set_name);
        code = ctl_call_quiet(ctl, "runner.wait", params, NULL, 0, deadline, &result, &e, &r);
        if (own)
                interrupt_clear();
        if (code == CTL_EXIT_OK)
                progress_jobs(p, ctl_member(result, "jobs"));
        progress_break(p);
        own = progress_detach(ctl, own);
        if (code != CTL_EXIT_OK) {
                if (is_job_failed(r, &e))
                        report_job_failed(ctl, &e, runner_id);
                else
                        ctl_report_call_error(ctl, "runner.wait", r, &e, deadline);
                if (ret_error && r == -EREMOTEIO) {
                        *ret_error = e;
                        e = (AvatarClientError) AVATAR_CLIENT_ERROR_INIT;
                }
                return code;
        }
        *ret_result = result;
        return CTL_EXIT_OK;
}

/* Tells that a wait ended at its deadline, and how to wait again. */
void report_wait_timeout(const Ctl *ctl, const char *runner_id, double timeout_s) {
        ctl_before_message();
        (void) fprintf(stderr, "avatarctl: the jobs are not done after %g s; they continue on the server. Wait again with:\n",
                       timeout_s);
        print_command(stderr, ctl, "runner", "wait", runner_id, NULL);
}

/* Whether a wait's result says it ended at the deadline. */
bool wait_timed_out(json_object *result) {
        return json_object_get_boolean(ctl_member(result, "timed_out")) ||
               !json_object_get_boolean(ctl_member(result, "done"));
}

/* "avatarctl runner wait RUNNER [--jobs LIST] [--timeout S]": runner.wait. */
int ctl_cmd_runner_wait(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *jobs = NULL, *result = NULL;
        double timeout_s;
        int code;

        code = check_runner_id(args->command, args->pos[0]);
        if (code != CTL_EXIT_OK)
                return code;
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", runner_jobs, ELEMENTSOF(runner_jobs), &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        code = parse_wait_timeout(ctl, args, WAIT_TIMEOUT_DEFAULT_S, &timeout_s);
        if (code != CTL_EXIT_OK)
                return code;
        code = wait_runner(ctl, args->pos[0], NULL, jobs, timeout_s, NULL, NULL, &result, NULL);
        if (code == CTL_EXIT_UNREACHABLE && !ctl->quiet) {
                ctl_before_message();
                (void) fputs("The jobs go on on the server. Once the daemon is back, wait again with:\n", stderr);
                print_command(stderr, ctl, "runner", "wait", args->pos[0], NULL);
        }
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl->json)
                ctl_print_json(ctl, result);
        else if (print_jobs_table(ctl_member(result, "jobs")) < 0)
                return ctl_fail_oom(args->command);
        if (wait_timed_out(result)) {
                report_wait_timeout(ctl, args->pos[0], timeout_s);
                return CTL_EXIT_TIMEOUT;
        }
        return CTL_EXIT_OK;
}

/* ---- runs load ---------------------------------------------------------------------- */

/* Prints, after a loaded runner, what to do next: the commands that download its results,
 * or the one that waits for its jobs. */
static void print_load_next(Ctl *ctl, json_object *st) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *params = NULL, *listing = NULL, *rows = NULL;
        const char *id = ctl_member_string(st, "runner_id");
        json_object *jobs = ctl_member(st, "jobs");
        bool finished = false, pending = false, any = false;
        size_t i;
        int r;

        if (!id)
                return;
        for (i = 0; i < json_array_len(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);

                if (streq_ptr(ctl_member_string(j, "status"), "finished"))
                        finished = true;
                else if (!json_object_get_boolean(ctl_member(j, "done")))
                        pending = true;
        }
        if (pending) {
                (void) puts("\nWait for its jobs with:");
                print_command(stdout, ctl, "runner", "wait", id, NULL);
        }
        if (!finished)
                return;
        if (runner_params("runs load", id, &params) != CTL_EXIT_OK ||
            ctl_call_quiet(ctl, "runner.list_results", params, NULL, 0, ctl->timeout_ms, &listing, &e, &r) !=
                    CTL_EXIT_OK ||
            result_rows(listing, &rows) < 0) {
                (void) puts("\nSee its results with:");
                print_command(stdout, ctl, "runner", "results", id, NULL);
                return;
        }
        for (i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);

                if (!ctl_member_string(row, "result") || !file_name_is_safe(ctl_member_string(row, "file_name")))
                        continue;
                if (!any)
                        (void) puts("\nDownload its results with:");
                any = true;
                print_download_command(stdout, ctl, id, row, NULL);
        }
        if (!any) {
                (void) puts("\nIts finished jobs have no results to download (the server may have cleaned them up):");
                print_command(stdout, ctl, "runner", "results", id, NULL);
        }
}

/* Prints a loaded runner's status and what to do next with it. */
static int print_loaded(Ctl *ctl, json_object *result, void *userdata) {
        int r;

        (void) userdata;
        r = print_runner_status(result);
        if (r < 0)
                return r;
        print_load_next(ctl, result);
        return 0;
}

/* "avatarctl runs load NAME|ID": a run into a new runner, by its id (a UUID:
 * manager.create_runner_from_id) or by display name (manager.create_runner_from_name, the
 * most recent run of that name). */
int ctl_cmd_runs_load(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_free_ char *full = NULL;
        const char *arg = args->pos[0];
        bool by_id = ctl_is_uuid(arg);
        const char *method = by_id ? "manager.create_runner_from_id" : "manager.create_runner_from_name";
        int code, r;

        if (isempty(arg))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the display name is empty");
        params = json_object_new_object();
        if (!params || ctl_add_member(params, by_id ? "set_name" : "display_name", json_object_new_string(arg)) < 0)
                return ctl_fail_oom(args->command);
        code = ctl_call_quiet(ctl, method, params, NULL, 0, ctl->timeout_ms, &result, &e, &r);
        if (code == CTL_EXIT_NOT_FOUND && !by_id) {
                /* no run of that name: a prefix of a run id? */
                code = ctl_resolve_set(ctl, args->command, arg, &full);
                if (code != CTL_EXIT_OK)
                        return code;
                method = "manager.create_runner_from_id";
                json_object_put(params);
                params = json_object_new_object();
                if (!params || ctl_add_member(params, "set_name", json_object_new_string(full)) < 0)
                        return ctl_fail_oom(args->command);
                code = ctl_call(ctl, method, params, NULL, 0, &result);
                if (code != CTL_EXIT_OK)
                        return code;
        } else if (code != CTL_EXIT_OK) {
                ctl_report_call_error(ctl, method, r, &e, ctl->timeout_ms);
                return code;
        }
        if (ctl->json)
                print_warnings(result);
        return ctl_print_result(ctl, method, result, print_loaded, NULL);
}

/* ---- watch -------------------------------------------------------------------------- */

/* Job statuses that mean the job failed (the daemon's wait stops on them). */
static const char *const failed_statuses[] = { "error", "parent_error", "lost", "orphaned" };

/* What the jobs.changed printer needs. */
typedef struct Watch {
        Ctl *ctl;
        unsigned long notifications;
} Watch;

/* Prints one changed job for people: "HH:MM:SS  standard  pending  40%  NAME". */
static void watch_print_job(json_object *job) {
        _cleanup_free_ char *pct = NULL;
        const char *exception = ctl_member_string(job, "exception");
        char stamp[64] = "";

        output_time(time(NULL), stamp, sizeof(stamp));
        if (output_format_progress(ctl_member(job, "progress"), &pct) < 0)
                return;
        (void) printf("%s  ", stamp);
        output_padded(stdout, ctl_member_string(job, "parameters_name") ?: ctl_member_string(job, "kind") ?: "?", 16,
                      OUTPUT_ALIGN_LEFT);
        (void) fputc(' ', stdout);
        output_padded(stdout, isempty(ctl_member_string(job, "status")) ? "-" : ctl_member_string(job, "status"), 9,
                      OUTPUT_ALIGN_LEFT);
        (void) fputc(' ', stdout);
        output_padded(stdout, pct, 4, OUTPUT_ALIGN_RIGHT);
        (void) fputs("  ", stdout);
        output_sanitized(stdout, ctl_member_string(job, "name") ?: "-");
        if (!isempty(exception)) {
                (void) fputs("  ", stdout);
                output_sanitized(stdout, exception);
        }
        (void) putchar('\n');
}

/* avatar_client_notification_cb: prints jobs.changed notifications as they come (one
 * compact JSON line each in JSON mode). */
static void on_jobs_changed(const char *method, json_object *params, void *userdata) {
        Watch *w = userdata;
        json_object *jobs = ctl_member(params, "jobs");
        size_t i;

        if (!streq_ptr(method, "jobs.changed"))
                return;
        w->notifications++;
        if (w->ctl->json) {
                const char *s = json_object_to_json_string_ext(params, JSONRPC_WIRE_FLAGS);

                (void) puts(s ?: "null");
        } else
                for (i = 0; i < json_array_len(jobs); i++)
                        watch_print_job(json_object_array_get_idx(jobs, i));
        (void) fflush(stdout);
}

/* Whether any job of the array failed. */
static bool any_job_failed(json_object *jobs) {
        size_t i;

        for (i = 0; i < json_array_len(jobs); i++)
                if (ctl_in_set(ctl_member_string(json_object_array_get_idx(jobs, i), "status"), failed_statuses,
                           ELEMENTSOF(failed_statuses)))
                        return true;
        return false;
}

/* "avatarctl watch SET | --runner ID [--jobs NAMES] [--timeout S]": manager.watch_jobs. */
int ctl_cmd_watch(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *jobs = NULL, *result = NULL;
        const char *set = args->n_pos > 0 ? args->pos[0] : NULL, *runner = ctl_opt(args, CTL_OPT_RUNNER);
        double timeout_s;
        _cleanup_free_ char *full = NULL;
        Watch w = { .ctl = ctl };
        int code, deadline;

        if (!set == !runner)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "give either a run (RUN) or --runner RUNNER");
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", NULL, 0, &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        code = parse_wait_timeout(ctl, args, WAIT_TIMEOUT_DEFAULT_S, &timeout_s);
        if (code != CTL_EXIT_OK)
                return code;
        if (timeout_s < 0.1)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--wait-timeout: at least 0.1 s");
        code = set ? ctl_resolve_set(ctl, args->command, set, &full) :
                     ctl_resolve_runner(ctl, args->command, runner, &full);
        if (code != CTL_EXIT_OK)
                return code;
        if (full) {
                if (set)
                        set = full;
                else
                        runner = full;
        }
        params = json_object_new_object();
        if (!params || ctl_add_member(params, set ? "set_name" : "runner_id", json_object_new_string(set ?: runner)) < 0 ||
            (jobs && ctl_add_member(params, "jobs", TAKE_PTR(jobs)) < 0) ||
            ctl_add_member(params, "timeout_s", json_object_new_double(timeout_s)) < 0)
                return ctl_fail_oom(args->command);

        code = ctl_connect(ctl);
        if (code != CTL_EXIT_OK)
                return code;
        avatar_client_set_notification_callback(ctl->client, on_jobs_changed, &w);
        interrupt_set(ctl, "avatarctl: stopped watching; the jobs continue on the server.\n");
        deadline = wait_call_timeout(timeout_s);
        code = ctl_call_full(ctl, "manager.watch_jobs", params, NULL, 0, deadline, &result, NULL, NULL);
        interrupt_clear();
        avatar_client_set_notification_callback(ctl->client, NULL, NULL);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl->json)
                ctl_print_json(ctl, result);
        else if (json_array_len(ctl_member(result, "jobs")) > 0) {
                (void) puts(json_object_get_boolean(ctl_member(result, "done")) ? "\nAll jobs are done:" : "\nThe jobs now:");
                if (print_jobs_table(ctl_member(result, "jobs")) < 0)
                        return ctl_fail_oom(args->command);
        } else
                (void) puts("No jobs to watch.");
        if (!json_object_get_boolean(ctl_member(result, "done"))) {
                ctl_before_message();
                (void) fprintf(stderr, "avatarctl: the jobs are not done after %g s; they continue on the server.\n",
                               timeout_s);
                return CTL_EXIT_TIMEOUT;
        }
        return any_job_failed(ctl_member(result, "jobs")) ? CTL_EXIT_JOB_FAILED : CTL_EXIT_OK;
}
