/* SPDX-License-Identifier: MIT */
/*
 * avatarctl avatarize: the whole flow in one command (create a runner, add the table, set
 * the parameters, run, wait, download the results), built on the runner commands' helpers
 * (avatarctl-runner.h); and --resume, which goes on with a runner an earlier avatarize left,
 * from whatever step its state says is left.
 *
 * Once the runner exists, whatever stops the flow (a failure, Ctrl-C, the daemon going
 * away) leaves it in the daemon and says so: its id, the command that goes on with it and
 * the one that removes it. With --rm a failed run removes it instead.
 */
#include <inttypes.h>
#include <sys/stat.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "errors.h"
#include "jsonrpc.h"

/* avatarize's wait when --wait-timeout is not given: a day, so that the one command sees a
 * large table through. */
#define AVATARIZE_WAIT_DEFAULT_S 86400.0
/* The k of avatarize when --k is not given (the Python tutorials' value). */
#define AVATARIZE_K_DEFAULT 5

/* ---- the contract's enumerations ---------------------------------------------------- */

/* What avatarize downloads, in this order. */
static const char *const avatarize_results[] = {
        "shuffled", "privacy_metrics", "signal_metrics", "report", "report_pia",
};

/* The usual file name on the server of avatarize_results[i] for a table (new string, NULL
 * on OOM), for the check, before anything is sent, that the output directory does not hold
 * it. */
static char *usual_name(size_t i, const char *table) {
        static const char *const suffixes[] = { ".shuffled-0.csv", ".privacy.json", ".signal.json", NULL,
                                                ".report.pia.docx" };
        char *s;

        if (!suffixes[i])
                return strdup("report.pdf");
        if (asprintf(&s, "%s%s", table, suffixes[i]) < 0)
                return NULL;
        return s;
}

/* ---- small helpers ------------------------------------------------------------------ */

/* A file name without its extension ("iris.csv" -> "iris"; ".profile" stays), in place. */
static void strip_extension(char *name) {
        char *dot = strrchr(name, '.');

        if (dot && dot != name)
                *dot = '\0';
}

/* Replaces the '/' of a name in place, so that it can name a directory entry. */
static void slash_to_underscore(char *s) {
        for (; s && *s; s++)
                if (*s == '/')
                        *s = '_';
}

/* ---- avatarize ---------------------------------------------------------------------- */

typedef struct Avatarize {
        Ctl *ctl;
        const char *command;
        const char *file;         /* FILE as given, or NULL (--resume without it) */
        InputFile in;
        char *name;               /* the runner's display name */
        char *table;
        char *dir;
        long long k;
        bool k_given;
        json_object *jobs_param;  /* --jobs, or NULL for the daemon's default */
        double wait_s;
        const char *resume;       /* --resume RUNNER as given */
        bool no_wait, force, rm, no_check;
        Progress *progress;

        char *runner_id;
        char *set_name;
        json_object *jobs;        /* the jobs as last seen */
        bool waited, done, removed;
        json_object *error;       /* {name, message, ...} of the failure, for the JSON summary */
        Fetch fetch;
} Avatarize;

/* Frees what an Avatarize holds (the files not filled are removed). */
static void avatarize_done(Avatarize *a) {
        a->progress = progress_detach(a->ctl, a->progress);
        fetch_done(&a->fetch);
        input_file_done(&a->in);
        free(a->name);
        free(a->table);
        free(a->dir);
        free(a->runner_id);
        free(a->set_name);
        json_object_put(a->jobs_param);
        json_object_put(a->jobs);
        json_object_put(a->error);
}

/* Whether avatarize downloads `result`: every kind when all jobs run, else those of the
 * jobs given with --jobs. */
static bool avatarize_wants(const Avatarize *a, const char *result) {
        const ResultKind *kind = result_kind_named(result);
        size_t i;

        if (!kind || !ctl_in_set(result, avatarize_results, ELEMENTSOF(avatarize_results)))
                return false;
        if (!a->jobs_param)
                return true;
        for (i = 0; i < json_array_len(a->jobs_param); i++) {
                const char *j = json_object_get_string(json_object_array_get_idx(a->jobs_param, i));

                /* "report" runs report and report_pia */
                if (streq_ptr(j, kind->job) || (streq_ptr(j, "report") && streq(kind->job, "report_pia")))
                        return true;
        }
        return false;
}

/* Sets the display name, table and directory that are not given yet: from FILE's name (or
 * the runner's display name), "NAME-avatars". Returns CTL_EXIT_OK or the exit code. */
static int avatarize_names(Avatarize *a, const char *display_name, const char *table) {
        _cleanup_free_ char *stem = NULL;

        if (a->file && !streq(a->file, "-")) {
                stem = base_name(a->file);
                if (!stem)
                        return ctl_fail_oom(a->command);
                strip_extension(stem);
                if (isempty(stem))
                        return ctl_fail(CTL_EXIT_USAGE, a->command, "cannot name a table after '%s': give --name",
                                        a->file);
        }
        if (!a->name && !(a->name = strdup(display_name ?: stem ?: "")))
                return ctl_fail_oom(a->command);
        if (!a->table && !(a->table = strdup(table ?: stem ?: a->name)))
                return ctl_fail_oom(a->command);
        if (!a->dir) {
                if (asprintf(&a->dir, "%s-avatars", a->name) < 0) {
                        a->dir = NULL;
                        return ctl_fail_oom(a->command);
                }
                slash_to_underscore(a->dir);
        }
        return CTL_EXIT_OK;
}

/* Parses and checks avatarize's arguments, and opens (and checks) the table. */
static int avatarize_parse(Avatarize *a, const CtlArgs *args) {
        const char *name = ctl_opt(args, CTL_OPT_NAME), *table = ctl_opt(args, CTL_OPT_TABLE),
                   *k = ctl_opt(args, CTL_OPT_K), *dir = ctl_opt(args, CTL_OPT_OUTPUT);
        int code;

        a->file = args->n_pos > 0 ? args->pos[0] : NULL;
        a->resume = ctl_opt(args, CTL_OPT_RESUME);
        a->k = AVATARIZE_K_DEFAULT;
        a->no_wait = ctl_opt_given(args, CTL_OPT_NO_WAIT);
        a->force = ctl_opt_given(args, CTL_OPT_FORCE);
        a->rm = ctl_opt_given(args, CTL_OPT_RM);
        a->no_check = ctl_opt_given(args, CTL_OPT_NO_CHECK);
        if (!a->file && !a->resume)
                return ctl_fail(CTL_EXIT_USAGE, a->command, "give the FILE to avatarize (or --resume RUNNER)");
        if (a->resume && isempty(a->resume))
                return ctl_fail(CTL_EXIT_USAGE, a->command, "--resume: the runner is empty");
        if (a->file && streq(a->file, "-") && !name && !a->resume)
                return ctl_fail(CTL_EXIT_USAGE, a->command, "with the table on stdin (-), give its name with --name");
        if ((name && !(a->name = strdup(name))) || (table && !(a->table = strdup(table))))
                return ctl_fail_oom(a->command);
        if (name) {
                code = check_name(a->command, "--name", a->name, SET_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        if (table) {
                code = check_name(a->command, "--table", a->table, TABLE_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        if (k) {
                code = ctl_parse_int("--k", k, 2, 1000, &a->k);
                if (code != CTL_EXIT_OK)
                        return code;
                a->k_given = true;
        }
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", run_jobs, ELEMENTSOF(run_jobs), &a->jobs_param);
        if (code != CTL_EXIT_OK)
                return code;
        code = parse_wait_timeout(a->ctl, args, AVATARIZE_WAIT_DEFAULT_S, &a->wait_s);
        if (code != CTL_EXIT_OK)
                return code;
        if (dir) {
                if (isempty(dir))
                        return ctl_fail(CTL_EXIT_USAGE, a->command, "--output: the directory name is empty");
                if (streq(dir, "-"))
                        return ctl_fail(CTL_EXIT_USAGE, a->command,
                                        "--output: avatarize writes several files: give a directory");
                a->dir = strdup(dir);
                if (!a->dir)
                        return ctl_fail_oom(a->command);
        }
        if (!a->resume) {
                code = avatarize_names(a, NULL, NULL);
                if (code != CTL_EXIT_OK)
                        return code;
                code = check_name(a->command, "--name", a->name, SET_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
                code = check_name(a->command, "--table", a->table, TABLE_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        if (!a->file)
                return CTL_EXIT_OK;
        code = input_file_open(a->command, a->file, &a->in);
        if (code != CTL_EXIT_OK)
                return code;
        return a->no_check ? CTL_EXIT_OK : check_table_file(a->command, &a->in, NULL);
}

/* Before anything is sent: the output directory must be a directory if it exists, and
 * (without --force) must not hold the files this run will write under their usual names. */
static int avatarize_check_output(Avatarize *a) {
        struct stat st;
        size_t i;

        if (a->no_wait)
                return CTL_EXIT_OK;
        if (stat(a->dir, &st) < 0) {
                if (errno == ENOENT)
                        return CTL_EXIT_OK;
                return ctl_fail(CTL_EXIT_USAGE, a->command, "cannot use %s: %s", a->dir, strerror(errno));
        }
        if (!S_ISDIR(st.st_mode))
                return ctl_fail(CTL_EXIT_USAGE, a->command, "%s exists and is not a directory", a->dir);
        for (i = 0; !a->force && !a->resume && i < ELEMENTSOF(avatarize_results); i++) {
                _cleanup_free_ char *fn = NULL, *path = NULL, *t = strdup(a->table);

                if (!avatarize_wants(a, avatarize_results[i]))
                        continue;
                slash_to_underscore(t);
                if (!t || !(fn = usual_name(i, t)) || !(path = path_join(a->dir, fn)))
                        return ctl_fail_oom(a->command);
                if (access(path, F_OK) == 0)
                        return fail_output(a->command, path, -EEXIST);
        }
        return CTL_EXIT_OK;
}

/* Keeps the error of a failed step for the JSON summary: {name, message} and, for a job,
 * {job, status, exception}. */
static void avatarize_keep_error(Avatarize *a, const char *name, const char *message, const AvatarClientError *e) {
        json_object *o = json_object_new_object();

        if (!o)
                return;
        (void) ctl_add_member(o, "name", json_object_new_string(name ?: (e ? avatar_client_error_name(e) : "failed")));
        (void) ctl_add_member(o, "message", json_object_new_string(message ?: (e && e->message ? e->message : "failed")));
        if (e && e->code == RPC_JOB_FAILED) {
                static const char *const keys[] = { "job", "status", "exception" };

                for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                        if (ctl_member_string(e->data, keys[i]))
                                (void) ctl_add_member(o, keys[i], json_object_new_string(ctl_member_string(e->data, keys[i])));
        }
        json_object_put(a->error);
        a->error = o;
}

/* Calls a method of the flow (whose progress, if any, is on screen), reporting a failure.
 * Returns CTL_EXIT_OK with the result in *ret, or the exit code. */
static int avatarize_call(Avatarize *a, const char *method, json_object *params, json_object **ret) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        int code, r;

        code = ctl_call_full(a->ctl, method, params, NULL, 0, a->ctl->timeout_ms, ret, &e, &r);
        if (code != CTL_EXIT_OK) {
                if (r == -EREMOTEIO)
                        avatarize_keep_error(a, NULL, NULL, &e);
                else if (r != 0)
                        avatarize_keep_error(a, "not_sent", strerror(-r), NULL);
        }
        return code;
}

/* A new params object {"runner_id", "table_name"} (table_name when `with_table`). */
static int avatarize_params(Avatarize *a, bool with_table, json_object **ret) {
        int code = runner_params(a->command, a->runner_id, ret);

        if (code != CTL_EXIT_OK)
                return code;
        if (with_table && ctl_add_member(*ret, "table_name", json_object_new_string(a->table)) < 0)
                return ctl_fail_oom(a->command);
        return CTL_EXIT_OK;
}

/* Writes the command that goes on with the runner, and the one that removes it. */
static void avatarize_keep_commands(const Avatarize *a, FILE *f, bool remove) {
        bool upload = !a->set_name && a->file && !streq(a->file, "-") && !a->waited;

        if (upload)
                print_command(f, a->ctl, "avatarize", "--resume", a->runner_id, a->file, "-o", a->dir, NULL);
        else
                print_command(f, a->ctl, "avatarize", "--resume", a->runner_id, "-o", a->dir, NULL);
        if (remove) {
                (void) fputs("or remove it and its jobs on the server:\n", f);
                print_command(f, a->ctl, "runner", "rm", a->runner_id, NULL);
        }
}

/* Writes what Ctrl-C (or SIGTERM) prints once the runner exists: it is kept; its id, the
 * command that goes on with it, the one that removes it. */
static void write_interrupt(FILE *f, const void *userdata) {
        const Avatarize *a = userdata;

        (void) fprintf(f, "avatarctl: interrupted; %sthe runner %s is kept. Go on with it:\n",
                       a->set_name ? "the run continues on the server and " : "", a->runner_id);
        avatarize_keep_commands(a, f, true);
}

/* Prepares what an interruption prints (write_interrupt()). */
static void avatarize_interrupt_text(const Avatarize *a) {
        interrupt_compose(a->ctl, write_interrupt, a);
}

/* manager.create_runner. */
static int avatarize_create(Avatarize *a) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        int code;

        params = json_object_new_object();
        if (!params || ctl_add_member(params, "set_name", json_object_new_string(a->name)) < 0)
                return ctl_fail_oom(a->command);
        code = avatarize_call(a, "manager.create_runner", params, &result);
        if (code != CTL_EXIT_OK)
                return code;
        if (!ctl_is_uuid(ctl_member_string(result, "runner_id")))
                return ctl_fail(CTL_EXIT_FAILED, "manager.create_runner", "the daemon returned no runner id");
        a->runner_id = strdup(ctl_member_string(result, "runner_id"));
        if (!a->runner_id || progress_set_runner(a->progress, a->runner_id) < 0)
                return ctl_fail_oom(a->command);
        avatarize_interrupt_text(a);
        return CTL_EXIT_OK;
}

/* runner.add_table with FILE. */
static int avatarize_upload(Avatarize *a) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        int code;

        if (!a->file)
                return ctl_fail(CTL_EXIT_USAGE, a->command, "the runner has no table yet: give the FILE to upload "
                                "(avatarctl avatarize --resume %s FILE)", a->runner_id);
        code = avatarize_params(a, true, &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = upload_table(a->ctl, a->command, params, &a->in, NULL, a->in.name, a->progress, &result);
        if (code != CTL_EXIT_OK)
                avatarize_keep_error(a, "upload_failed", "the table could not be added", NULL);
        return code;
}

/* runner.set_parameters (k), unless the table has parameters already: then
 * runner.update_parameters with --k when given. */
static int avatarize_parameters(Avatarize *a, bool check_existing) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *method = "runner.set_parameters";
        int code;

        if (check_existing) {
                _cleanup_(unref_jsonp) json_object *p = NULL, *yaml = NULL;

                code = avatarize_params(a, false, &p);
                if (code == CTL_EXIT_OK)
                        code = avatarize_call(a, "runner.export_yaml", p, &yaml);
                if (code != CTL_EXIT_OK)
                        return code;
                if (strstr(ctl_member_string(yaml, "yaml") ?: "", "kind: AvatarParameters\n")) {
                        if (!a->k_given)
                                return CTL_EXIT_OK;
                        method = "runner.update_parameters";
                }
        }
        code = avatarize_params(a, true, &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_add_member(params, "k", json_object_new_int64(a->k)) < 0)
                return ctl_fail_oom(a->command);
        code = avatarize_call(a, method, params, &result);
        if (code == CTL_EXIT_OK)
                print_warnings(result);
        return code;
}

/* runner.run. */
static int avatarize_run(Avatarize *a, bool again) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        int code;

        code = avatarize_params(a, false, &params);
        if (code != CTL_EXIT_OK)
                return code;
        if ((a->jobs_param && ctl_add_member(params, "jobs", json_object_get(a->jobs_param)) < 0) ||
            (again && ctl_add_member(params, "ignore_warnings", json_object_new_boolean(true)) < 0))
                return ctl_fail_oom(a->command);
        code = avatarize_call(a, "runner.run", params, &result);
        if (code != CTL_EXIT_OK)
                return code;
        if (!again)
                print_warnings(result);
        free(a->set_name);
        a->set_name = ctl_member_string(result, "set_name") ? strdup(ctl_member_string(result, "set_name")) : NULL;
        json_object_put(a->jobs);
        a->jobs = json_object_get(ctl_member(result, "jobs"));
        avatarize_interrupt_text(a);
        return CTL_EXIT_OK;
}

/* Waits for the run. */
static int avatarize_wait(Avatarize *a) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *result = NULL;
        int code;

        code = wait_runner(a->ctl, a->runner_id, a->set_name, NULL, a->wait_s, a->jobs, a->progress, &result, &e);
        a->waited = true;
        if (code != CTL_EXIT_OK) {
                if (e.code != 0)
                        avatarize_keep_error(a, NULL, NULL, &e);
                else
                        avatarize_keep_error(a, "not_sent", "the wait ended without an answer", NULL);
                if (e.code == RPC_JOB_FAILED && a->ctl->json) {
                        /* The summary shows the jobs as they ended, failure included. */
                        _cleanup_(unref_jsonp) json_object *params = NULL, *st = NULL;

                        if (runner_params(a->command, a->runner_id, &params) == CTL_EXIT_OK &&
                            ctl_call_quiet(a->ctl, "runner.get_status", params, NULL, 0, a->ctl->timeout_ms, &st, NULL,
                                           NULL) == CTL_EXIT_OK &&
                            json_object_is_type(ctl_member(st, "jobs"), json_type_array)) {
                                json_object_put(a->jobs);
                                a->jobs = json_object_get(ctl_member(st, "jobs"));
                        }
                }
                return code;
        }
        json_object_put(a->jobs);
        a->jobs = json_object_get(ctl_member(result, "jobs"));
        if (wait_timed_out(result)) {
                ctl_before_message();
                (void) fprintf(stderr, "avatarctl: the jobs are not done after %g s; they continue on the server.\n",
                               a->wait_s);
                avatarize_keep_error(a, "timeout", "the jobs were not done before --wait-timeout", NULL);
                return CTL_EXIT_TIMEOUT;
        }
        a->done = true;
        return CTL_EXIT_OK;
}

/* Picks a result of the plan: one avatarize wants, and its table's for per-table ones. */
static bool avatarize_picks(const ResultKind *kind, const char *table, void *userdata) {
        const char *const *want = userdata;
        Avatarize *a = (Avatarize *) want[1];

        return streq(kind->result, want[0]) && (!kind->per_table || streq_ptr(table, a->table));
}

/* Lists the results (runner.list_results), picks the files in avatarize_results' order,
 * and downloads them. */
static int avatarize_download(Avatarize *a) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *listing = NULL;
        const char *failure = NULL;
        size_t i, before;
        int code;

        a->fetch = (Fetch) { .command = a->command, .runner_id = a->runner_id, .dir = a->dir, .force = a->force,
                             .keep_existing = !!a->resume };
        code = avatarize_params(a, false, &params);
        if (code == CTL_EXIT_OK)
                code = avatarize_call(a, "runner.list_results", params, &listing);
        for (i = 0; code == CTL_EXIT_OK && i < ELEMENTSOF(avatarize_results); i++) {
                const void *want[2] = { avatarize_results[i], a };

                if (!avatarize_wants(a, avatarize_results[i]))
                        continue;
                before = a->fetch.n_files;
                code = fetch_plan(&a->fetch, listing, avatarize_picks, (void *) want);
                if (code == CTL_EXIT_OK && a->fetch.n_files == before) {
                        _cleanup_free_ char *w = NULL;

                        if (asprintf(&w, "the run has no %s result for table %s", avatarize_results[i], a->table) >= 0)
                                ctl_warning(w);
                }
        }
        if (code != CTL_EXIT_OK)
                return code;
        code = fetch_run(a->ctl, &a->fetch, a->progress, &failure);
        if (code != CTL_EXIT_OK)
                avatarize_keep_error(a, failure ?: "download_failed", failure && streq(failure, "file_exists") ?
                                     "a file to write exists" : "a result could not be downloaded", NULL);
        return code;
}

/* --resume: finds the runner and what is left to do. Returns CTL_EXIT_OK with the first
 * step left in *ret_step: 0 upload, 1 parameters, 2 run, 3 run again, 4 wait, 5 download. */
static int avatarize_resume(Avatarize *a, int *ret_step) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *st = NULL;
        _cleanup_free_ char *id = NULL;
        const char *state;
        json_object *tables;
        int code;

        code = ctl_resolve_runner(a->ctl, a->command, a->resume, &id);
        if (code != CTL_EXIT_OK)
                return code;
        a->runner_id = id ? TAKE_PTR(id) : strdup(a->resume);
        if (!a->runner_id || progress_set_runner(a->progress, a->runner_id) < 0)
                return ctl_fail_oom(a->command);
        code = avatarize_params(a, false, &params);
        if (code == CTL_EXIT_OK)
                code = ctl_call(a->ctl, "runner.get_status", params, NULL, 0, &st);
        if (code != CTL_EXIT_OK)
                return code;
        tables = ctl_member(st, "tables");
        code = avatarize_names(a, ctl_member_string(st, "display_name"),
                               json_object_get_string(json_object_array_get_idx(tables, 0)));
        if (code != CTL_EXIT_OK)
                return code;
        a->set_name = ctl_member_string(st, "set_name") ? strdup(ctl_member_string(st, "set_name")) : NULL;
        a->jobs = json_object_get(ctl_member(st, "jobs"));
        state = ctl_member_string(st, "state") ?: "?";
        if (streq(state, "configuring"))
                *ret_step = json_array_len(tables) == 0 ? 0 : 1;
        else if (streq(state, "interrupted"))
                /* runner.run finishes the interrupted run in its set */
                *ret_step = 2;
        else if (streq(state, "failed"))
                *ret_step = 3;
        else if (streq(state, "running"))
                *ret_step = 4;
        else if (streq(state, "finished"))
                *ret_step = 5;
        else
                return ctl_fail(CTL_EXIT_CONFLICT, a->command,
                                "the runner %s is busy (%s); try again once that is over", a->runner_id, state);
        avatarize_interrupt_text(a);
        return CTL_EXIT_OK;
}

/* The JSON summary: runner, run, jobs, files, the commands that go on, and the error when
 * the flow failed. */
static json_object *avatarize_summary(const Avatarize *a) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        (void) ctl_add_member(o, "runner_id", json_object_new_string(a->runner_id));
        (void) ctl_add_member(o, "display_name", json_object_new_string(a->name ?: ""));
        (void) json_object_object_add(o, "set_name", a->set_name ? json_object_new_string(a->set_name) : NULL);
        (void) ctl_add_member(o, "table", json_object_new_string(a->table ?: ""));
        (void) json_object_object_add(o, "input", a->file ? json_object_new_string(a->file) : NULL);
        (void) ctl_add_member(o, "k", json_object_new_int64(a->k));
        (void) ctl_add_member(o, "waited", json_object_new_boolean(a->waited));
        (void) ctl_add_member(o, "done", json_object_new_boolean(a->done));
        (void) json_object_object_add(o, "jobs", a->jobs ? json_object_get(a->jobs) : json_object_new_array());
        (void) ctl_add_member(o, "output_dir", json_object_new_string(a->dir ?: ""));
        (void) ctl_add_member(o, "files", fetch_json(&a->fetch));
        if (a->removed)
                (void) ctl_add_member(o, "removed", json_object_new_boolean(true));
        else if (!a->done) {
                _cleanup_free_ char *text = NULL;
                json_object *cmds = json_object_new_array();
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                char *line, *p;

                if (f && cmds) {
                        avatarize_keep_commands(a, f, true);
                        if (fclose(f) == 0 && text)
                                for (p = text; (line = strsep(&p, "\n"));)
                                        if (startswith(line, "  "))
                                                (void) json_object_array_add(cmds, json_object_new_string(line + 2));
                        (void) ctl_add_member(o, "commands", cmds);
                } else {
                        if (f)
                                (void) fclose(f);
                        json_object_put(cmds);
                }
        }
        if (a->error)
                (void) ctl_add_member(o, "error", json_object_get(a->error));
        return o;
}

/* After a failure once the runner exists: removes it (--rm), or says it is kept, with the
 * command that goes on with it and the one that removes it. */
static void avatarize_failed(Avatarize *a) {
        _cleanup_free_ char *reason = NULL;
        size_t deleted = 0;

        progress_break(a->progress);
        ctl_before_message();
        /* --rm is for a run that failed; a run that is done keeps its results */
        if (a->rm && !a->done) {
                if (runner_remove(a->ctl, a->runner_id, &deleted, &reason) == CTL_EXIT_OK) {
                        a->removed = true;
                        (void) fprintf(stderr, "avatarctl: removed the runner %s and %zu job%s on the server (--rm).\n",
                                       a->runner_id, deleted, deleted == 1 ? "" : "s");
                        return;
                }
                (void) fprintf(stderr, "avatarctl: --rm: the runner %s could not be removed: %s\n", a->runner_id,
                               reason ?: "failed");
        }
        (void) fprintf(stderr, "avatarctl: the runner %s ('%s') is kept. Go on with it:\n", a->runner_id, a->name ?: "");
        avatarize_keep_commands(a, stderr, true);
}

/* What avatarize prints for people at the end. */
static void avatarize_print(const Avatarize *a) {
        (void) fputs(a->done ? "Avatarized " : a->waited || !a->resume ? "Started avatarizing " : "Went on with ",
                     stdout);
        if (!a->file)
                (void) fputs("the table ", stdout);
        output_sanitized(stdout, a->file ?: a->table);
        (void) fputs(" as '", stdout);
        output_sanitized(stdout, a->name);
        (void) fputs("'.\n", stdout);
        print_label("Runner", a->runner_id, 7);
        print_label("Run id", a->set_name, 7);
        print_label("Table", a->table, 7);
        if (a->no_wait) {
                (void) fputs("\nThe jobs run on the Avatar server. Wait for them and download the results into ",
                             stdout);
                output_sanitized(stdout, a->dir);
                (void) puts(" with:");
                avatarize_keep_commands(a, stdout, false);
                (void) puts("or step by step:");
                print_command(stdout, a->ctl, "runner", "wait", a->runner_id, NULL);
                print_command(stdout, a->ctl, "runner", "download", a->runner_id, "-o", a->dir, NULL);
                return;
        }
        fetch_print(&a->fetch);
}

/* "avatarctl avatarize FILE [OPTIONS]" and "avatarctl avatarize --resume RUNNER [FILE]
 * [OPTIONS]". */
int ctl_cmd_avatarize(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *summary = NULL;
        Avatarize a = { .ctl = ctl, .command = args->command, .in = { .fd = -1 } };
        int code, step = 0;

        code = avatarize_parse(&a, args);
        if (code == CTL_EXIT_OK && !a.resume)
                code = avatarize_check_output(&a);
        if (code == CTL_EXIT_OK)
                code = progress_attach(ctl, NULL, &a.progress);
        if (code == CTL_EXIT_OK)
                code = a.resume ? avatarize_resume(&a, &step) : avatarize_create(&a);
        if (code != CTL_EXIT_OK)
                goto out;

        if (step <= 0)
                code = avatarize_upload(&a);
        if (code == CTL_EXIT_OK && step <= 1)
                code = avatarize_parameters(&a, a.resume);
        if (code == CTL_EXIT_OK && step <= 3) {
                if (step == 3 && a.k_given)
                        code = avatarize_parameters(&a, true);
                if (code == CTL_EXIT_OK)
                        code = avatarize_run(&a, step == 3);
        }
        if (code == CTL_EXIT_OK && !a.no_wait) {
                if (step <= 4)
                        code = avatarize_wait(&a);
                else
                        a.done = a.waited = true;
                if (code == CTL_EXIT_OK)
                        code = avatarize_download(&a);
        }
        if (code != CTL_EXIT_OK)
                avatarize_failed(&a);

        interrupt_clear();
        a.progress = progress_detach(ctl, a.progress);
        if (ctl->json) {
                summary = avatarize_summary(&a);
                if (!summary)
                        code = code == CTL_EXIT_OK ? ctl_fail_oom(a.command) : code;
                else
                        ctl_print_json(ctl, summary);
        } else if (code == CTL_EXIT_OK)
                avatarize_print(&a);
out:
        interrupt_clear();
        avatarize_done(&a);
        return code;
}
