/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner create, create-from-yaml, list and close (manager.create_runner*,
 * runner.list, runner.close). The other runner commands are in avatarctl-runner-*.c; what
 * they share is described in avatarctl-runner.h.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "jsonrpc.h"

/* Longest resource YAML sent inline (manager.create_runner_from_yaml yaml). */
#define YAML_INLINE_MAX (8u * 1024u * 1024u)

/* ---- the contract's enumerations ---------------------------------------------------- */

static const char *const pia_data_recipients[] = {
        "unknown", "opendata", "contractual_thirdparty", "internal", "outside_eu", "trusted_thirdparty",
};
static const char *const pia_data_types[] = {
        "unknown", "health", "hr", "mobility", "insurance", "finance", "education",
};
static const char *const pia_data_subjects[] = {
        "unknown", "patients", "employees", "clients", "users", "students",
};
static const char *const pia_sensitivity_levels[] = {
        "Very High", "High", "Medium", "Low", "Very Low", "Negligible", "Undefined",
};
static const char *const report_languages[] = { "en", "fr" };

/* ---- printing runners and jobs ------------------------------------------------------- */

/* ctl_print_fn for a RunnerStatus; userdata is the next step to suggest (or NULL), a
 * CtlCommandHint. */
typedef struct Hint {
        const Ctl *ctl;
        const char *text;         /* "Add a table with:" */
        const char *const *words; /* the command after "avatarctl", RUNNER standing for the
                                   * runner's id; NULL-terminated */
} Hint;

/* Prints a hint: its text and the command, with the runner id filled in. */
static void print_hint(const Hint *h, const char *runner_id) {
        size_t i;

        if (!h || !h->text)
                return;
        (void) printf("\n%s\n  ", h->text);
        ctl_print_command_start(stdout, h->ctl);
        for (i = 0; h->words[i]; i++) {
                if (i > 0)
                        (void) putchar(' ');
                if (streq(h->words[i], "RUNNER"))
                        ctl_print_shell_word(stdout, runner_id ?: "?");
                else
                        (void) fputs(h->words[i], stdout);
        }
        (void) putchar('\n');
}

/* Prints a RunnerStatus and the hint in userdata. */
static int print_runner_with_hint(Ctl *ctl, json_object *result, void *userdata) {
        int r;

        (void) ctl;
        r = print_runner_status(result);
        if (r < 0)
                return r;
        print_hint(userdata, ctl_member_string(result, "runner_id"));
        return 0;
}

/* ---- runner create, create-from-yaml, list, close ------------------------------------ */

/* Compares a --pia-sensitivity-level value with a level: case, '-', '_' and ' ' do not
 * matter ("very-high" is "Very High"). */
static bool level_matches(const char *arg, const char *level) {
        for (;; arg++, level++) {
                char a = *arg == '-' || *arg == '_' ? ' ' : (char) tolower((unsigned char) *arg),
                     b = (char) tolower((unsigned char) *level);

                if (a != b)
                        return false;
                if (a == '\0')
                        return true;
        }
}

/* Adds the options of runner create to params. Returns CTL_EXIT_OK or the exit code. */
static int create_options(const CtlArgs *args, json_object *params) {
        static const struct {
                int id;
                const char *param, *what;
                const char *const *set;
                size_t n;
        } enums[] = {
                { CTL_OPT_PIA_DATA_RECIPIENT, "pia_data_recipient", "--pia-data-recipient", pia_data_recipients,
                  ELEMENTSOF(pia_data_recipients) },
                { CTL_OPT_PIA_DATA_TYPE, "pia_data_type", "--pia-data-type", pia_data_types,
                  ELEMENTSOF(pia_data_types) },
                { CTL_OPT_PIA_DATA_SUBJECT, "pia_data_subject", "--pia-data-subject", pia_data_subjects,
                  ELEMENTSOF(pia_data_subjects) },
                { CTL_OPT_LANGUAGE, "report_language", "--language", report_languages, ELEMENTSOF(report_languages) },
        };
        const char *seed = ctl_opt(args, CTL_OPT_SEED), *plots = ctl_opt(args, CTL_OPT_MAX_DISTRIBUTION_PLOTS),
                   *level = ctl_opt(args, CTL_OPT_PIA_SENSITIVITY_LEVEL);
        size_t i;
        int code;

        code = ctl_add_int_param(args, params, "--seed", seed, "seed", INT64_MIN, INT64_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        code = ctl_add_int_param(args, params, "--max-distribution-plots", plots, "max_distribution_plots", 0, INT_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        for (i = 0; i < ELEMENTSOF(enums); i++) {
                const char *v = ctl_opt(args, enums[i].id);

                if (!v)
                        continue;
                code = ctl_check_choice(args->command, enums[i].what, v, enums[i].set, enums[i].n);
                if (code != CTL_EXIT_OK)
                        return code;
                if (ctl_add_member(params, enums[i].param, json_object_new_string(v)) < 0)
                        return ctl_fail_oom(args->command);
        }
        if (level) {
                const char *match = NULL;

                for (i = 0; i < ELEMENTSOF(pia_sensitivity_levels) && !match; i++)
                        if (level_matches(level, pia_sensitivity_levels[i]))
                                match = pia_sensitivity_levels[i];
                if (!match)
                        return ctl_check_choice(args->command, "--pia-sensitivity-level", level, pia_sensitivity_levels,
                                            ELEMENTSOF(pia_sensitivity_levels));
                if (ctl_add_member(params, "pia_sensitivity_level", json_object_new_string(match)) < 0)
                        return ctl_fail_oom(args->command);
        }
        return CTL_EXIT_OK;
}

/* The step after creating a runner. */
static const char *const hint_add_table[] = { "runner", "add-table", "RUNNER", "TABLE", "FILE", NULL };

/* "avatarctl runner create NAME [OPTIONS]": manager.create_runner. */
int ctl_cmd_runner_create(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        Hint hint = { ctl, "Add a table with:", hint_add_table };
        int code;

        code = check_name(args->command, "NAME", args->pos[0], SET_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "set_name", json_object_new_string(args->pos[0])) < 0)
                return ctl_fail_oom(args->command);
        code = create_options(args, params);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_call_and_print(ctl, "manager.create_runner", params, print_runner_with_hint, &hint);
}

/* "avatarctl runner create-from-yaml NAME FILE|-": manager.create_runner_from_yaml. A regular
 * file goes as a descriptor; a pipe (or stdin that is not a file) is read and sent inline. */
int ctl_cmd_runner_create_from_yaml(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_close_ int owned = -1;
        _cleanup_free_ char *text = NULL;
        const char *path = args->pos[1];
        Hint hint = { ctl, "Run it with:", (const char *const[]) { "runner", "run", "RUNNER", NULL } };
        struct stat st;
        size_t len = 0;
        int fd, code, r;

        code = check_name(args->command, "NAME", args->pos[0], SET_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (streq(path, "-"))
                fd = STDIN_FILENO;
        else {
                owned = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (owned < 0)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "cannot open %s: %s", path, strerror(errno));
                fd = owned;
        }
        if (fstat(fd, &st) < 0)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "cannot read %s: %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "%s is a directory", path);

        params = json_object_new_object();
        if (!params || ctl_add_member(params, "set_name", json_object_new_string(args->pos[0])) < 0)
                return ctl_fail_oom(args->command);
        if (S_ISREG(st.st_mode)) {
                if (ctl_add_member(params, "fd", json_object_new_object()) < 0 ||
                    ctl_add_member(ctl_member(params, "fd"), "fd", json_object_new_int(0)) < 0)
                        return ctl_fail_oom(args->command);
                code = ctl_call(ctl, "manager.create_runner_from_yaml", params, &fd, 1, &result);
        } else {
                r = ctl_read_fd(fd, YAML_INLINE_MAX, &text, &len);
                if (r == -EFBIG)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "the YAML is longer than %u bytes", YAML_INLINE_MAX);
                if (r < 0)
                        return ctl_fail(CTL_EXIT_FAILED, args->command, "cannot read %s: %s", path, strerror(-r));
                if (ctl_add_member(params, "yaml", json_object_new_string_len(text, (int) len)) < 0)
                        return ctl_fail_oom(args->command);
                code = ctl_call(ctl, "manager.create_runner_from_yaml", params, NULL, 0, &result);
        }
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_print_result(ctl, args->command, result, print_runner_with_hint, &hint);
}

/* output_format_fn: an array of strings joined by ", ", or "-". */
static int format_list(json_object *v, char **ret) {
        char *t;

        if (!json_object_is_type(v, json_type_array))
                return output_value_text(v, ret);
        if (json_object_array_length(v) == 0) {
                *ret = strdup("-");
                return *ret ? 0 : -ENOMEM;
        }
        t = join_strings(v);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* output_format_fn: a runner's jobs as "done/total". */
static int format_jobs_done(json_object *jobs, char **ret) {
        size_t i, n = json_array_len(jobs), done = 0;

        for (i = 0; i < n; i++)
                if (json_object_get_boolean(ctl_member(json_object_array_get_idx(jobs, i), "done")))
                        done++;
        if (asprintf(ret, "%zu/%zu", done, n) < 0)
                return -ENOMEM;
        return 0;
}

/* Prints runner.list as a table. */
static int print_runner_list(Ctl *ctl, json_object *result, void *userdata) {
        static const OutputColumn cols[] = {
                { .header = "RUNNER", .key = "runner_id" },
                { .header = "NAME", .key = "display_name" },
                { .header = "STATE", .key = "state", .status = true },
                { .header = "RUN ID", .key = "set_name" },
                { .header = "TABLES", .key = "tables", .format = format_list },
                { .header = "JOBS DONE", .key = "jobs", .align = OUTPUT_ALIGN_RIGHT, .format = format_jobs_done },
                { .header = "OWNER", .key = "owner", .align = OUTPUT_ALIGN_RIGHT },
        };
        json_object *runners = ctl_member(result, "runners");

        (void) ctl;
        (void) userdata;
        if (!json_object_is_type(runners, json_type_array))
                return output_tree(stdout, result, 0);
        if (json_object_array_length(runners) == 0) {
                (void) puts("No runners.");
                return 0;
        }
        return output_table(stdout, runners, cols, ELEMENTSOF(cols));
}

/* "avatarctl runner list [--all]": runner.list. */
int ctl_cmd_runner_list(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;

        if (ctl_opt_given(args, CTL_OPT_ALL)) {
                params = json_object_new_object();
                if (!params || ctl_add_member(params, "all", json_object_new_boolean(true)) < 0)
                        return ctl_fail_oom(args->command);
        }
        return ctl_call_and_print(ctl, "runner.list", params, print_runner_list, NULL);
}

/* Prints runner.close. */
static int print_closed(Ctl *ctl, json_object *result, void *userdata) {
        const char *set = ctl_member_string(result, "set_name");

        (void) fputs("Closed runner ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "runner_id") ?: userdata);
        if (!set) {
                (void) puts(".");
                return 0;
        }
        (void) puts("; its jobs stay on the server. To load the run again:");
        print_command(stdout, ctl, "runs", "load", set, NULL);
        return 0;
}

/* "avatarctl runner close RUNNER": runner.close. */
int ctl_cmd_runner_close(Ctl *ctl, const CtlArgs *args) {
        return call_runner_and_print(ctl, args, "runner.close", print_closed);
}

/* Removes a runner: runner.delete (all its jobs on the server), then runner.close. A
 * deletion that leaves jobs behind keeps the runner. Returns CTL_EXIT_OK with the number
 * of jobs deleted in *ret_deleted, or the exit code with why in *ret_reason (a new string;
 * the failure is not printed). */
int runner_remove(Ctl *ctl, const char *id, size_t *ret_deleted, char **ret_reason) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *method = "runner.delete";
        int code, r = 0;

        *ret_reason = NULL;
        *ret_deleted = 0;
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "runner_id", json_object_new_string(id)) < 0)
                return ctl_fail_oom("runner rm");
        code = ctl_call_quiet(ctl, method, params, NULL, 0, long_call_timeout(ctl), &result, &e, &r);
        if (code == CTL_EXIT_OK && ctl_member_length(result, "failed_jobs") > 0) {
                if (asprintf(ret_reason, "%zu of its jobs could not be deleted on the server; the runner is kept",
                             ctl_member_length(result, "failed_jobs")) < 0)
                        *ret_reason = NULL;
                return CTL_EXIT_UPSTREAM;
        }
        if (code == CTL_EXIT_OK) {
                *ret_deleted = ctl_member_length(result, "deleted_jobs");
                method = "runner.close";
                code = ctl_call_quiet(ctl, method, params, NULL, 0, ctl->timeout_ms, NULL, &e, &r);
        }
        if (code == CTL_EXIT_OK)
                return CTL_EXIT_OK;
        if (asprintf(ret_reason, "%s: %s (%s)", ctl_command_of_method(method) ?: method,
                     r == -EREMOTEIO ? e.message ?: "failed" : r != 0 ? strerror(-r) : "cannot reach the daemon",
                     r == -EREMOTEIO ? avatar_client_error_name(&e) : "not_sent") < 0)
                *ret_reason = NULL;
        return code;
}

/* "avatarctl runner rm RUNNER... [--yes]": runner.delete and runner.close for each. */
int ctl_cmd_runner_rm(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *out = NULL, *removed = NULL, *failed = NULL;
        _cleanup_free_ char *question = NULL;
        char *ids[64] = {};
        size_t n = (size_t) args->n_pos, i;
        int code = CTL_EXIT_OK, first = CTL_EXIT_OK;

        if (n > ELEMENTSOF(ids))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "at most %zu runners at once", ELEMENTSOF(ids));
        for (i = 0; i < n && code == CTL_EXIT_OK; i++) {
                code = ctl_resolve_runner(ctl, args->command, args->pos[i], &ids[i]);
                if (code == CTL_EXIT_OK && !ids[i] && !(ids[i] = strdup(args->pos[i])))
                        code = ctl_fail_oom(args->command);
        }
        if (code == CTL_EXIT_OK && asprintf(&question, "Remove %zu runner%s (%s%s) and delete %s jobs on the server", n,
                                            n == 1 ? "" : "s", ids[0], n > 1 ? ", ..." : "",
                                            n == 1 ? "its" : "their") < 0) {
                question = NULL;
                code = ctl_fail_oom(args->command);
        }
        if (code == CTL_EXIT_OK)
                code = ctl_confirm(ctl, args->command, ctl_opt_given(args, CTL_OPT_YES), question);
        out = json_object_new_object();
        removed = json_object_new_array();
        failed = json_object_new_array();
        if (code == CTL_EXIT_OK && (!out || !removed || !failed))
                code = ctl_fail_oom(args->command);
        for (i = 0; i < n && code == CTL_EXIT_OK; i++) {
                _cleanup_free_ char *reason = NULL;
                size_t deleted = 0;
                int c = runner_remove(ctl, ids[i], &deleted, &reason);

                if (c == CTL_EXIT_OK) {
                        (void) json_object_array_add(removed, json_object_new_string(ids[i]));
                        if (!ctl->json) {
                                (void) fputs("Removed runner ", stdout);
                                output_sanitized(stdout, ids[i]);
                                (void) printf(" (%zu job%s deleted on the server).\n", deleted, deleted == 1 ? "" : "s");
                        }
                        continue;
                }
                if (first == CTL_EXIT_OK)
                        first = c;
                {
                        json_object *f = json_object_new_object();

                        if (f) {
                                (void) ctl_add_member(f, "runner_id", json_object_new_string(ids[i]));
                                (void) ctl_add_member(f, "reason", json_object_new_string(reason ?: "failed"));
                                (void) json_object_array_add(failed, f);
                        }
                }
                (void) ctl_fail(c, args->command, "%s: %s", ids[i], reason ?: "failed");
        }
        if (code == CTL_EXIT_OK && ctl->json) {
                (void) ctl_add_member(out, "removed", TAKE_PTR(removed));
                (void) ctl_add_member(out, "failed", TAKE_PTR(failed));
                ctl_print_json(ctl, out);
        }
        for (i = 0; i < n; i++)
                free(ids[i]);
        return code != CTL_EXIT_OK ? code : first;
}
