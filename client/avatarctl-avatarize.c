/* SPDX-License-Identifier: MIT */
/*
 * avatarctl avatarize: the whole flow in one command (create a runner, add the table, set
 * the parameters, run, wait, download the results, close), built on the runner commands'
 * helpers (avatarctl-runner.h).
 */
#include <inttypes.h>
#include <sys/stat.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "errors.h"
#include "jsonrpc.h"

/* avatarize's wait when --timeout-wait is not given: a day, so that the one command sees a
 * large table through. */
#define AVATARIZE_WAIT_DEFAULT_S 86400.0
/* The k of avatarize when --k is not given (the Python tutorials' value). */
#define AVATARIZE_K_DEFAULT 5
/* Mode of the directories avatarctl creates (the umask applies). */
#define OUTPUT_DIR_MODE 0777
/* Most files one avatarize downloads (a runner's results for one table). */
#define AVATARIZE_FILES_MAX 16

/* ---- the contract's enumerations ---------------------------------------------------- */

/* What avatarize downloads, in this order. */
static const char *const avatarize_results[] = {
        "shuffled", "privacy_metrics", "signal_metrics", "report", "report_pia",
};

/* ---- small helpers ------------------------------------------------------------------ */

/* A file name without its extension ("iris.csv" -> "iris"; ".profile" stays), in place. */
static void strip_extension(char *name) {
        char *dot = strrchr(name, '.');

        if (dot && dot != name)
                *dot = '\0';
}

/* dir + "/" + name, new string (NULL on OOM). */
static char *path_join(const char *dir, const char *name) {
        char *p;

        if (asprintf(&p, "%s%s%s", dir, endswith(dir, "/") ? "" : "/", name) < 0)
                return NULL;
        return p;
}

/* Creates a directory and its missing parents (mode 0777 less the umask). Returns 0 or a
 * negative errno. */
static int make_dirs(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        struct stat st;
        char *s;

        if (!p)
                return -ENOMEM;
        for (s = p + 1; ; s++) {
                char c = *s;

                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdir(p, OUTPUT_DIR_MODE) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = c;
                if (c == '\0')
                        break;
        }
        if (stat(path, &st) < 0)
                return negative_errno();
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* ---- avatarize ---------------------------------------------------------------------- */

/* One file avatarize downloads. */
typedef struct PlanFile {
        const ResultKind *kind;
        char *table;              /* the table for per-table results, else NULL */
        int64_t index;
        char *file_name;
        char *path;               /* DIR/file_name */
        int fd;
        bool created;             /* made by this avatarize (removed when it is not filled) */
        bool done;
        uint64_t bytes;
} PlanFile;

typedef struct Avatarize {
        Ctl *ctl;
        const char *command;
        InputFile in;
        char *name;               /* the runner's display name */
        char *table;
        char *dir;
        long long k;
        json_object *jobs_param;  /* --jobs, or NULL for the daemon's default */
        double wait_s;
        bool no_wait, force;
        Progress *progress;

        char *runner_id;
        char *set_name;
        json_object *jobs;        /* the jobs as last seen */
        bool waited, done;
        json_object *error;       /* {name, message, ...} of the failure, for the JSON summary */
        PlanFile files[AVATARIZE_FILES_MAX];
        size_t n_files;
} Avatarize;

/* Frees what an Avatarize holds (the files not filled are removed). */
static void avatarize_done(Avatarize *a) {
        size_t i;

        a->progress = progress_detach(a->ctl, a->progress);
        for (i = 0; i < a->n_files; i++) {
                PlanFile *f = &a->files[i];

                f->fd = safe_close(f->fd);
                if (f->created && !f->done && f->path)
                        (void) unlink(f->path);
                free(f->table);
                free(f->file_name);
                free(f->path);
        }
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

/* The name a result gets when the server's is not known yet (the server's usual names,
 * for the commands --no-wait prints and the overwrite check before the run). */
static char *fallback_name(const Avatarize *a, const char *result) {
        const char *ext = a->in.name && endswith(a->in.name, ".parquet") ? ".parquet" : ".csv";
        _cleanup_free_ char *t = strdup(a->table);
        char *s = NULL, *c;
        int r = -1;

        if (!t)
                return NULL;
        for (c = t; *c; c++)
                if (*c == '/')
                        *c = '_';
        if (streq(result, "shuffled"))
                r = asprintf(&s, "%s.shuffled%s", t, ext);
        else if (streq(result, "privacy_metrics"))
                r = asprintf(&s, "%s.privacy.json", t);
        else if (streq(result, "signal_metrics"))
                r = asprintf(&s, "%s.signal.json", t);
        else if (streq(result, "report"))
                r = asprintf(&s, "report.pdf");
        else if (streq(result, "report_pia"))
                r = asprintf(&s, "%s.report.pia.docx", t);
        return r < 0 ? NULL : s;
}

/* Parses and checks avatarize's arguments, and opens the table. */
static int avatarize_parse(Avatarize *a, const CtlArgs *args) {
        const char *name = ctl_opt(args, CTL_OPT_NAME), *table = ctl_opt(args, CTL_OPT_TABLE),
                   *k = ctl_opt(args, CTL_OPT_K), *dir = ctl_opt(args, CTL_OPT_OUTPUT_DIR),
                   *wait = ctl_opt(args, CTL_OPT_WAIT_TIMEOUT), *file = args->pos[0];
        _cleanup_free_ char *stem = NULL;
        int code;

        a->k = AVATARIZE_K_DEFAULT;
        a->wait_s = AVATARIZE_WAIT_DEFAULT_S;
        a->no_wait = ctl_opt_given(args, CTL_OPT_NO_WAIT);
        a->force = ctl_opt_given(args, CTL_OPT_FORCE);
        if (streq(file, "-") && !name)
                return ctl_fail(CTL_EXIT_USAGE, a->command, "with the table on stdin (-), give its name with --name");
        if (!streq(file, "-")) {
                stem = base_name(file);
                if (!stem)
                        return ctl_fail_oom(a->command);
                strip_extension(stem);
                if (isempty(stem))
                        return ctl_fail(CTL_EXIT_USAGE, a->command, "cannot name a table after '%s': give --name", file);
        }
        a->name = strdup(name ?: stem);
        a->table = strdup(table ?: stem ?: name);
        if (!a->name || !a->table)
                return ctl_fail_oom(a->command);
        code = check_name(a->command, "--name", a->name, SET_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        code = check_name(a->command, "--table", a->table, TABLE_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (k) {
                code = ctl_parse_int("--k", k, 2, 1000, &a->k);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", run_jobs, ELEMENTSOF(run_jobs), &a->jobs_param);
        if (code != CTL_EXIT_OK)
                return code;
        if (wait) {
                code = parse_seconds(a->command, "--timeout-wait", wait, WAIT_TIMEOUT_MAX_S, &a->wait_s);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        if (dir) {
                if (isempty(dir))
                        return ctl_fail(CTL_EXIT_USAGE, a->command, "--output: the directory name is empty");
                a->dir = strdup(dir);
        } else {
                char *c;

                if (asprintf(&a->dir, "%s-avatars", a->name) < 0)
                        a->dir = NULL;
                for (c = a->dir; c && *c; c++)
                        if (*c == '/')
                                *c = '_';
        }
        if (!a->dir)
                return ctl_fail_oom(a->command);
        return input_file_open(a->command, file, &a->in);
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
        for (i = 0; !a->force && i < ELEMENTSOF(avatarize_results); i++) {
                _cleanup_free_ char *fn = NULL, *path = NULL;

                if (!avatarize_wants(a, avatarize_results[i]))
                        continue;
                fn = fallback_name(a, avatarize_results[i]);
                path = fn ? path_join(a->dir, fn) : NULL;
                if (!path)
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

/* manager.create_runner, runner.add_table, runner.set_parameters, runner.run. */
static int avatarize_start(Avatarize *a) {
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
        interrupt_for_run(a->ctl, a->runner_id, NULL, false);

        json_object_put(TAKE_PTR(params));
        json_object_put(TAKE_PTR(result));
        code = runner_params(a->command, a->runner_id, &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_add_member(params, "table_name", json_object_new_string(a->table)) < 0)
                return ctl_fail_oom(a->command);
        code = upload_table(a->ctl, a->command, params, &a->in, NULL, a->in.name, a->progress, &result);
        if (code != CTL_EXIT_OK) {
                avatarize_keep_error(a, "upload_failed", "the table could not be added", NULL);
                return code;
        }

        json_object_put(TAKE_PTR(params));
        json_object_put(TAKE_PTR(result));
        code = runner_params(a->command, a->runner_id, &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_add_member(params, "table_name", json_object_new_string(a->table)) < 0 ||
            ctl_add_member(params, "k", json_object_new_int64(a->k)) < 0)
                return ctl_fail_oom(a->command);
        code = avatarize_call(a, "runner.set_parameters", params, &result);
        if (code != CTL_EXIT_OK)
                return code;
        print_warnings(result);

        json_object_put(TAKE_PTR(params));
        json_object_put(TAKE_PTR(result));
        code = runner_params(a->command, a->runner_id, &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (a->jobs_param && ctl_add_member(params, "jobs", json_object_get(a->jobs_param)) < 0)
                return ctl_fail_oom(a->command);
        code = avatarize_call(a, "runner.run", params, &result);
        if (code != CTL_EXIT_OK)
                return code;
        print_warnings(result);
        a->set_name = ctl_member_string(result, "set_name") ? strdup(ctl_member_string(result, "set_name")) : NULL;
        a->jobs = json_object_get(ctl_member(result, "jobs"));
        interrupt_for_run(a->ctl, a->runner_id, a->set_name, true);
        return CTL_EXIT_OK;
}

/* Writes the commands that follow and fetch the run, one per line, indented by two. */
static void avatarize_commands(const Avatarize *a, FILE *f) {
        size_t i;

        print_command(f, a->ctl, "runner", "wait", a->runner_id, NULL);
        (void) fputs("  mkdir -p ", f);
        ctl_print_shell_word(f, a->dir);
        (void) fputc('\n', f);
        for (i = 0; i < ELEMENTSOF(avatarize_results); i++) {
                const ResultKind *kind = result_kind_named(avatarize_results[i]);
                _cleanup_free_ char *fn = NULL, *path = NULL;

                if (!avatarize_wants(a, avatarize_results[i]))
                        continue;
                fn = fallback_name(a, avatarize_results[i]);
                path = fn ? path_join(a->dir, fn) : NULL;
                if (!path)
                        continue;
                if (kind->per_table)
                        print_command(f, a->ctl, "runner", "download", a->runner_id, kind->result, "--table", a->table,
                                      "-o", path, NULL);
                else
                        print_command(f, a->ctl, "runner", "download", a->runner_id, kind->result, "-o", path, NULL);
        }
}

/* The JSON summary: runner, run, jobs, files, and the error when the flow failed. */
static json_object *avatarize_summary(const Avatarize *a) {
        json_object *o = json_object_new_object(), *files = json_object_new_array();
        size_t i;

        if (!o || !files) {
                json_object_put(o);
                json_object_put(files);
                return NULL;
        }
        (void) ctl_add_member(o, "runner_id", json_object_new_string(a->runner_id));
        (void) ctl_add_member(o, "display_name", json_object_new_string(a->name));
        (void) json_object_object_add(o, "set_name", a->set_name ? json_object_new_string(a->set_name) : NULL);
        (void) ctl_add_member(o, "table", json_object_new_string(a->table));
        (void) ctl_add_member(o, "input", json_object_new_string(a->in.path));
        (void) ctl_add_member(o, "k", json_object_new_int64(a->k));
        (void) ctl_add_member(o, "waited", json_object_new_boolean(a->waited));
        (void) ctl_add_member(o, "done", json_object_new_boolean(a->done));
        (void) json_object_object_add(o, "jobs", a->jobs ? json_object_get(a->jobs) : json_object_new_array());
        if (!a->no_wait)
                (void) ctl_add_member(o, "output_dir", json_object_new_string(a->dir));
        for (i = 0; i < a->n_files; i++) {
                const PlanFile *f = &a->files[i];
                json_object *e;

                if (!f->done || !(e = json_object_new_object()))
                        continue;
                (void) ctl_add_member(e, "result", json_object_new_string(f->kind->result));
                (void) json_object_object_add(e, "table", f->table ? json_object_new_string(f->table) : NULL);
                (void) ctl_add_member(e, "file_name", json_object_new_string(f->file_name));
                (void) ctl_add_member(e, "path", json_object_new_string(f->path));
                (void) ctl_add_member(e, "bytes", json_object_new_uint64(f->bytes));
                (void) json_object_array_add(files, e);
        }
        (void) ctl_add_member(o, "files", files);
        if (a->no_wait && a->runner_id) {
                _cleanup_free_ char *text = NULL;
                json_object *cmds = json_object_new_array();
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                char *line, *p;

                if (f && cmds) {
                        avatarize_commands(a, f);
                        if (fclose(f) == 0 && text)
                                for (p = text; (line = strsep(&p, "\n"));)
                                        if (!isempty(line))
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

/* Ends avatarize with `code`: in JSON mode, once a runner exists, the summary is printed
 * whatever happened (a script learns the runner's id even from a failed run). */
static int avatarize_finish(Avatarize *a, int code) {
        _cleanup_(unref_jsonp) json_object *o = NULL;

        interrupt_clear();
        a->progress = progress_detach(a->ctl, a->progress);
        if (!a->ctl->json || !a->runner_id)
                return code;
        o = avatarize_summary(a);
        if (!o)
                return code == CTL_EXIT_OK ? ctl_fail_oom(a->command) : code;
        ctl_print_json(a->ctl, o);
        return code;
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
                if (e.code == RPC_JOB_FAILED && a->set_name) {
                        (void) fputs("Its run:\n", stderr);
                        print_command(stderr, a->ctl, "runs", "load", a->set_name, NULL);
                }
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
                report_wait_timeout(a->ctl, a->runner_id, a->wait_s);
                avatarize_keep_error(a, "timeout", "the jobs were not done before --timeout-wait", NULL);
                return CTL_EXIT_TIMEOUT;
        }
        a->done = true;
        return CTL_EXIT_OK;
}

/* Lists the results (runner.list_results) and picks the files to download. */
static int avatarize_plan(Avatarize *a) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *listing = NULL, *rows = NULL;
        size_t i;
        int code, r;

        code = runner_params(a->command, a->runner_id, &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = avatarize_call(a, "runner.list_results", params, &listing);
        if (code != CTL_EXIT_OK)
                return code;
        r = result_rows(listing, &rows);
        if (r < 0)
                return ctl_fail_oom(a->command);
        /* In avatarize_results' order, whatever the order of the listing. */
        for (i = 0; i < ELEMENTSOF(avatarize_results) * json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i % json_object_array_length(rows));
                const char *result = ctl_member_string(row, "result"), *table = ctl_member_string(row, "table"),
                           *fn = ctl_member_string(row, "file_name");
                const ResultKind *kind = result_kind_named(result);
                PlanFile *f;

                if (!kind || !fn || !avatarize_wants(a, result) ||
                    !streq(result, avatarize_results[i / json_object_array_length(rows)]))
                        continue;
                if (kind->per_table && !streq_ptr(table, a->table))
                        continue;
                if (a->n_files >= AVATARIZE_FILES_MAX)
                        break;
                f = &a->files[a->n_files++];
                *f = (PlanFile) { .kind = kind, .fd = -1, .index = json_object_get_int64(ctl_member(row, "index")) };
                f->table = kind->per_table ? strdup(a->table) : NULL;
                f->file_name = file_name_is_safe(fn) ? strdup(fn) : fallback_name(a, result);
                f->path = f->file_name ? path_join(a->dir, f->file_name) : NULL;
                if ((kind->per_table && !f->table) || !f->path)
                        return ctl_fail_oom(a->command);
        }
        for (i = 0; i < ELEMENTSOF(avatarize_results); i++) {
                bool found = false;

                if (!avatarize_wants(a, avatarize_results[i]))
                        continue;
                for (size_t k = 0; k < a->n_files && !found; k++)
                        found = streq(a->files[k].kind->result, avatarize_results[i]);
                if (!found) {
                        _cleanup_free_ char *w = NULL;

                        if (asprintf(&w, "the run has no %s result for table %s", avatarize_results[i], a->table) >= 0)
                                ctl_warning(w);
                }
        }
        return CTL_EXIT_OK;
}

/* Creates the directory and every file first (so that nothing is downloaded when one of
 * them exists), then downloads into each. */
static int avatarize_download(Avatarize *a) {
        size_t i;
        int code, r;

        if (a->n_files == 0)
                return CTL_EXIT_OK;
        r = make_dirs(a->dir);
        if (r < 0) {
                avatarize_keep_error(a, "io_error", "cannot create the output directory", NULL);
                return ctl_fail(CTL_EXIT_FAILED, a->command, "cannot create %s: %s", a->dir, strerror(-r));
        }
        for (i = 0; i < a->n_files; i++) {
                PlanFile *f = &a->files[i];

                f->fd = create_output(f->path, a->force, &f->created);
                if (f->fd < 0) {
                        r = f->fd;
                        f->fd = -1;
                        progress_break(a->progress);
                        avatarize_keep_error(a, r == -EEXIST ? "file_exists" : "io_error", f->path, NULL);
                        return fail_output(a->command, f->path, r);
                }
        }
        for (i = 0; i < a->n_files; i++) {
                _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
                PlanFile *f = &a->files[i];

                code = runner_params(a->command, a->runner_id, &params);
                if (code != CTL_EXIT_OK)
                        return code;
                if (ctl_add_member(params, "result", json_object_new_string(f->kind->result)) < 0 ||
                    (f->table && ctl_add_member(params, "table", json_object_new_string(f->table)) < 0) ||
                    (f->index > 0 && ctl_add_member(params, "index", json_object_new_int64(f->index)) < 0))
                        return ctl_fail_oom(a->command);
                code = download_into(a->ctl, params, f->fd, f->path, a->progress, &result);
                f->fd = safe_close(f->fd);
                if (code != CTL_EXIT_OK) {
                        avatarize_keep_error(a, "download_failed", f->path, NULL);
                        return code;
                }
                f->bytes = json_object_get_uint64(ctl_member(result, "bytes"));
                f->done = true;
        }
        return CTL_EXIT_OK;
}

/* What avatarize prints for people at the end. */
static void avatarize_print(const Avatarize *a) {
        size_t i, width = 0, bwidth = 0;

        (void) fputs(a->waited ? "Avatarized " : "Started avatarizing ", stdout);
        output_sanitized(stdout, a->in.path);
        (void) fputs(" as '", stdout);
        output_sanitized(stdout, a->name);
        (void) fputs("'.\n", stdout);
        print_label("Runner", a->runner_id, 7);
        print_label("Run id", a->set_name, 7);
        print_label("Table", a->table, 7);
        if (a->no_wait) {
                (void) puts("\nThe jobs run on the Avatar server. Follow them, then fetch the results, with:");
                avatarize_commands(a, stdout);
                (void) puts("When the daemon no longer holds the runner, load the run again first:");
                print_command(stdout, a->ctl, "runs", "load", a->set_name ?: "?", NULL);
                return;
        }
        for (i = 0; i < a->n_files; i++) {
                char b[32];

                if (!a->files[i].done)
                        continue;
                width = MAX(width, output_width(a->files[i].path));
                bwidth = MAX(bwidth, (size_t) snprintf(b, sizeof(b), "%" PRIu64, a->files[i].bytes));
        }
        if (width == 0) {
                (void) puts("\nNo files were written.");
                return;
        }
        (void) puts("\nFiles written:");
        for (i = 0; i < a->n_files; i++) {
                const PlanFile *f = &a->files[i];
                char b[32], h[32];

                if (!f->done)
                        continue;
                (void) fputs("  ", stdout);
                output_padded(stdout, f->path, width, OUTPUT_ALIGN_LEFT);
                (void) snprintf(b, sizeof(b), "%" PRIu64, f->bytes);
                (void) fputs("  ", stdout);
                output_padded(stdout, b, bwidth, OUTPUT_ALIGN_RIGHT);
                (void) fputs(" bytes", stdout);
                if (f->bytes >= 1024) {
                        progress_format_bytes(f->bytes, h, sizeof(h));
                        (void) printf(" (%s)", h);
                }
                (void) putchar('\n');
        }
}

/* "avatarctl avatarize FILE [OPTIONS]": create a runner, upload FILE as its table, set k,
 * run, wait, and download the results into a directory. */
int ctl_cmd_avatarize(Ctl *ctl, const CtlArgs *args) {
        Avatarize a = { .ctl = ctl, .command = args->command, .in = { .fd = -1 } };
        int code;

        code = avatarize_parse(&a, args);
        if (code == CTL_EXIT_OK)
                code = avatarize_check_output(&a);
        if (code == CTL_EXIT_OK)
                code = progress_attach(ctl, NULL, &a.progress);
        if (code != CTL_EXIT_OK)
                goto out;

        code = avatarize_start(&a);
        if (code != CTL_EXIT_OK || a.no_wait)
                goto finish;
        code = avatarize_wait(&a);
        if (code == CTL_EXIT_OK) {
                /* Ctrl-C during the downloads: the results stay on the server. */
                interrupt_for_run(ctl, a.runner_id, a.set_name, true);
                code = avatarize_plan(&a);
        }
        if (code == CTL_EXIT_OK)
                code = avatarize_download(&a);
        if (code != CTL_EXIT_OK) {
                progress_break(a.progress);
                if (!a.done || a.error == NULL || !streq_ptr(ctl_member_string(a.error, "name"), "file_exists"))
                        goto finish;
                /* The run is done but its files were not written: say how to fetch them. */
                ctl_before_message();
                (void) fputs("The results stay on the server; fetch them with:\n", stderr);
                avatarize_commands(&a, stderr);
        }
finish:
        code = avatarize_finish(&a, code);
        if (code == CTL_EXIT_OK && !ctl->json)
                avatarize_print(&a);
out:
        avatarize_done(&a);
        return code;
}
