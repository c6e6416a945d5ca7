/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner results, download, export-yaml and delete (runner.list_results,
 * runner.download, runner.export_yaml, runner.delete): results come back into files
 * avatarctl creates, as descriptors, or inline.
 */
#include <inttypes.h>
#include <limits.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "errors.h"
#include "jsonrpc.h"

/* ---- the contract's enumerations ---------------------------------------------------- */

static const ResultKind result_kinds[] = {
        { "shuffled",             "standard",          "shuffled",             true },
        { "unshuffled",           "standard",          "unshuffled",           true },
        { "original_projections", "standard",          "original_projections", true },
        { "avatar_projections",   "standard",          "avatar_projections",   true },
        { "projections",          "standard",          "avatar_projections",   true },
        { "figures",              "standard",          "figures",              true },
        { "figures_metadata",     "standard",          "figures_metadata",     false },
        { "run_metadata",         "standard",          "run_metadata",         false },
        { "metadata",             "standard",          "run_metadata",         false },
        { "privacy_metrics",      "privacy_metrics",   "privacy_metrics",      true },
        { "signal_metrics",       "signal_metrics",    "signal_metrics",       true },
        { "report",               "report",            "report",               false },
        { "report_pia",           "report_pia",        "report",               true },
        { "advice",               "advice_parameters", "advice",               true },
};

/* ---- small helpers ------------------------------------------------------------------ */

/* Writes all of buf to fd. Returns 0 or a negative errno. */
static int write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Writes len bytes into a new file at path (create_output()), removed again when writing
 * fails. Returns CTL_EXIT_OK, or reports the problem and returns the exit code. */
int write_output(const char *command, const char *path, const void *data, size_t len, bool force) {
        _cleanup_close_ int fd = -1;
        bool created = false;
        int r;

        fd = create_output(path, force, &created);
        if (fd < 0)
                return fail_output(command, path, fd);
        r = write_all(fd, data, len);
        if (close(TAKE_FD(fd)) < 0 && r >= 0)
                r = negative_errno();
        if (r < 0) {
                if (created)
                        (void) unlink(path);
                return ctl_fail(CTL_EXIT_FAILED, command, "cannot write %s: %s", path, strerror(-r));
        }
        return CTL_EXIT_OK;
}

/* Writes text to stdout, with control characters other than newline and tab replaced when
 * stdout is a terminal (the daemon's text is untrusted). */
void print_text(const Ctl *ctl, const char *text, size_t len) {
        size_t i;

        if (!ctl->tty) {
                (void) fwrite(text, 1, len, stdout);
                return;
        }
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char) text[i];

                if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                        c = '?';
                (void) putchar(c);
        }
}

/* ---- runner results, download, export-yaml, delete ------------------------------------ */

/* The result kind of a listed file: its job and key; NULL when runner.download has no name
 * for it (e.g. privacy_metrics_summary). */
static const ResultKind *result_kind_of(const char *job, const char *key) {
        size_t i;

        for (i = 0; job && key && i < ELEMENTSOF(result_kinds); i++)
                if (streq(result_kinds[i].job, job) && streq(result_kinds[i].key, key))
                        return &result_kinds[i];
        return NULL;
}

/* The result kind named `result`, or NULL. */
const ResultKind *result_kind_named(const char *result) {
        size_t i;

        for (i = 0; result && i < ELEMENTSOF(result_kinds); i++)
                if (streq(result_kinds[i].result, result))
                        return &result_kinds[i];
        return NULL;
}

/* The i-th result kind of the contract, or NULL past the last. */
const ResultKind *result_kind_at(size_t i) {
        return i < ELEMENTSOF(result_kinds) ? &result_kinds[i] : NULL;
}

/* Turns runner.list_results into rows, one per file: {job, status, result, table, index,
 * file_name} where result is runner.download's name for it (null when it has none), table
 * is set for per-table results only and index counts the files that the same download call
 * (result and table) chooses from. Jobs without files get one row without a file. Returns 0
 * with a new array in *ret, or -ENOMEM. */
int result_rows(json_object *listing, json_object **ret) {
        _cleanup_(unref_jsonp) json_object *rows = json_object_new_array();
        json_object *jobs = ctl_member(listing, "jobs");
        size_t i, k;

        if (!rows)
                return -ENOMEM;
        for (i = 0; i < json_array_len(jobs); i++) {
                json_object *job = json_object_array_get_idx(jobs, i), *files = ctl_member(job, "files");
                const char *pname = ctl_member_string(job, "parameters_name");
                size_t n = json_array_len(files);

                for (k = 0; k < n || k == 0; k++) {
                        json_object *file = n > 0 ? json_object_array_get_idx(files, k) : NULL, *row;
                        const ResultKind *kind = file ? result_kind_of(pname, ctl_member_string(file, "result")) : NULL;
                        const char *table = kind && kind->per_table ? ctl_member_string(file, "table") : NULL;
                        int64_t index = 0;

                        /* The download call picks among the key's files of that table. */
                        for (size_t m = 0; kind && m < k; m++) {
                                json_object *o = json_object_array_get_idx(files, m);

                                if (streq_ptr(ctl_member_string(o, "result"), kind->key) &&
                                    (!table || streq_ptr(ctl_member_string(o, "table"), table)))
                                        index++;
                        }
                        row = json_object_new_object();
                        if (!row || json_object_array_add(rows, row) < 0) {
                                json_object_put(row);
                                return -ENOMEM;
                        }
                        if (ctl_add_member(row, "job", json_object_new_string(pname ?: "?")) < 0 ||
                            ctl_add_member(row, "status", json_object_new_string(ctl_member_string(job, "status") ?: "")) < 0 ||
                            json_object_object_add(row, "result", kind ? json_object_new_string(kind->result) : NULL) < 0 ||
                            json_object_object_add(row, "table", table ? json_object_new_string(table) : NULL) < 0 ||
                            ctl_add_member(row, "index", json_object_new_int64(index)) < 0 ||
                            json_object_object_add(row, "file_name",
                                                   file && ctl_member_string(file, "file_name") ?
                                                   json_object_new_string(ctl_member_string(file, "file_name")) : NULL) < 0)
                                return -ENOMEM;
                        if (json_object_get_boolean(ctl_member(job, "results_missing")) &&
                            ctl_add_member(row, "results_missing", json_object_new_boolean(true)) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(rows);
        return 0;
}

/* Writes the command that downloads one row of result_rows() into `path` (NULL: the row's
 * file name). */
void print_download_command(FILE *f, const Ctl *ctl, const char *runner_id, json_object *row,
                            const char *path) {
        const char *table = ctl_member_string(row, "table");
        int64_t index = json_object_get_int64(ctl_member(row, "index"));

        (void) fputs("  ", f);
        ctl_print_command_start(f, ctl);
        (void) fputs("runner download ", f);
        ctl_print_shell_word(f, runner_id);
        (void) fputc(' ', f);
        ctl_print_shell_word(f, ctl_member_string(row, "result") ?: "?");
        if (table) {
                (void) fputs(" --table ", f);
                ctl_print_shell_word(f, table);
        }
        if (index > 0)
                (void) fprintf(f, " --index %" PRId64, index);
        (void) fputs(" -o ", f);
        ctl_print_shell_word(f, path ?: ctl_member_string(row, "file_name") ?: "FILE");
        (void) fputc('\n', f);
}

/* output_format_fn: a row's file, or why there is none. */
static int format_row_file(json_object *row, char **ret) {
        const char *fn = ctl_member_string(row, "file_name");

        if (json_object_get_boolean(ctl_member(row, "results_missing")))
                *ret = strdup("(cleaned up on the server)");
        else
                *ret = strdup(fn ?: "-");
        return *ret ? 0 : -ENOMEM;
}

/* Prints runner.list_results as a table of files, with the command that downloads one. */
static int print_results(Ctl *ctl, json_object *result, void *userdata) {
        static const OutputColumn cols[] = {
                { .header = "JOB", .key = "job" },
                { .header = "STATUS", .key = "status", .format = output_format_dash, .status = true },
                { .header = "RESULT", .key = "result" },
                { .header = "TABLE", .key = "table" },
                { .header = "INDEX", .key = "index", .align = OUTPUT_ALIGN_RIGHT },
                { .header = "FILE", .key = NULL, .format = format_row_file },
        };
        _cleanup_(unref_jsonp) json_object *rows = NULL;
        const char *id = ctl_member_string(result, "runner_id") ?: userdata;
        int r;

        r = result_rows(result, &rows);
        if (r < 0)
                return r;
        if (json_object_array_length(rows) == 0) {
                (void) puts("No jobs: the runner has not run.");
                return 0;
        }
        r = output_table(stdout, rows, cols, ELEMENTSOF(cols));
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);

                if (!ctl_member_string(row, "result") || !ctl_member_string(row, "file_name"))
                        continue;
                (void) puts("\nDownload one with, for example:");
                print_download_command(stdout, ctl, id, row, NULL);
                break;
        }
        return 0;
}

/* "avatarctl runner results RUNNER": runner.list_results. */
int ctl_cmd_runner_results(Ctl *ctl, const CtlArgs *args) {
        return call_runner_and_print(ctl, args, "runner.list_results", print_results);
}

/* Downloads one result into descriptor fd (runner.download with {"fd": 0}), showing progress
 * as "download RESULT -> SHOWN". Returns CTL_EXIT_OK with the result in *ret_result, or the
 * exit code (the failure reported). */
int download_into(Ctl *ctl, json_object *params, int fd, const char *shown, Progress *p,
                  json_object **ret_result) {
        json_object *result = NULL, *fdref, *b;
        int code;

        fdref = json_object_new_object();
        if (!fdref || ctl_add_member(fdref, "fd", json_object_new_int(0)) < 0 ||
            ctl_add_member(params, "fd", fdref) < 0)
                return ctl_fail_oom("runner.download");
        progress_download_begin(p, ctl_member_string(params, "result"), shown);
        code = ctl_call_full(ctl, "runner.download", params, &fd, 1, long_call_timeout(ctl), &result, NULL, NULL);
        if (code != CTL_EXIT_OK)
                return code;
        b = ctl_member(result, "bytes");
        progress_download_end(p, json_object_is_type(b, json_type_int) ? json_object_get_uint64(b) : 0);
        *ret_result = result;
        return CTL_EXIT_OK;
}

/* The start of the commands that write a result: {"runner_id"} in *ret_params, and -o's
 * argument (checked not empty) in *ret_out, NULL when not given. Returns CTL_EXIT_OK or the
 * exit code. */
int output_params(const CtlArgs *args, json_object **ret_params, const char **ret_out) {
        const char *out = ctl_opt(args, CTL_OPT_OUTPUT);

        if (out && isempty(out))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "-o: the file name is empty");
        *ret_out = out;
        return runner_params(args->command, args->pos[0], ret_params);
}

/* "avatarctl runner export-yaml RUNNER [-o FILE|-] [--force]": runner.export_yaml. Without
 * -o the YAML is printed on a terminal and the result is printed as JSON otherwise; -o FILE
 * writes the YAML into a new file, -o - onto stdout as it is. */
int ctl_cmd_runner_export_yaml(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *out, *yaml;
        size_t len;
        int code;

        code = output_params(args, &params, &out);
        if (code != CTL_EXIT_OK)
                return code;
        code = ctl_call(ctl, "runner.export_yaml", params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        yaml = ctl_member_string(result, "yaml") ?: "";
        len = (size_t) json_object_get_string_len(ctl_member(result, "yaml"));
        if (!out) {
                if (ctl->json)
                        ctl_print_json(ctl, result);
                else
                        print_text(ctl, yaml, len);
                return CTL_EXIT_OK;
        }
        if (streq(out, "-")) {
                (void) fwrite(yaml, 1, len, stdout);
                return CTL_EXIT_OK;
        }
        code = write_output(args->command, out, yaml, len, ctl_opt_given(args, CTL_OPT_FORCE));
        if (code != CTL_EXIT_OK)
                return code;
        json_object_object_del(result, "yaml");
        if (ctl_add_member(result, "path", json_object_new_string(out)) < 0 ||
            ctl_add_member(result, "bytes", json_object_new_int64((int64_t) len)) < 0)
                return ctl_fail_oom(args->command);
        if (ctl->json)
                ctl_print_json(ctl, result);
        else {
                (void) printf("Wrote %zu bytes of YAML to ", len);
                output_sanitized(stdout, out);
                (void) puts(".");
        }
        return CTL_EXIT_OK;
}

/* "avatarctl runner delete RUNNER [--jobs LIST]": runner.delete. */
int ctl_cmd_runner_delete(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *jobs = NULL, *result = NULL;
        _cleanup_free_ char *question = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", runner_jobs, ELEMENTSOF(runner_jobs), &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        if (jobs && ctl_add_member(params, "jobs", TAKE_PTR(jobs)) < 0)
                return ctl_fail_oom(args->command);
        if (asprintf(&question, "Delete %s jobs of the runner %s on the server",
                     ctl_opt_given(args, CTL_OPT_JOBS) ? "these" : "all the", args->pos[0]) < 0)
                return ctl_fail_oom(args->command);
        code = ctl_confirm(ctl, args->command, ctl_opt_given(args, CTL_OPT_YES), question);
        if (code != CTL_EXIT_OK)
                return code;
        code = ctl_call(ctl, "runner.delete", params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_finish_deletion(ctl, "runner.delete", result);
}
