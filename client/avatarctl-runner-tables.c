/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner add-table and add-link (runner.add_table, runner.add_link): tables go to
 * the daemon as open descriptors, with a progress display while they upload.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"

/* ---- the contract's enumerations ---------------------------------------------------- */

static const char *const column_types[] = { "int", "bool", "category", "float", "datetime", "datetime_tz" };
static const char *const link_methods[] = {
        "linear_sum_assignment", "minimum_distance_assignment", "sensitive_original_order_assignment",
        "time_series",
};

/* ---- runner add-table, add-link ----------------------------------------------------- */

/* The options of add-table that name a column, with their params. */
static int add_table_options(const CtlArgs *args, json_object *params) {
        _cleanup_(unref_jsonp) json_object *foreign = NULL, *types = NULL;
        const char *pk = ctl_opt(args, CTL_OPT_PRIMARY_KEY), *time = ctl_opt(args, CTL_OPT_TIME);
        size_t i;
        int code;

        if (ctl_opt_given(args, CTL_OPT_INDIVIDUAL_LEVEL) && ctl_opt_given(args, CTL_OPT_NO_INDIVIDUAL_LEVEL))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--individual-level and --no-individual-level exclude each other");
        if (pk) {
                if (isempty(pk))
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--primary-key: the column name is empty");
                if (ctl_add_member(params, "primary_key", json_object_new_string(pk)) < 0)
                        return ctl_fail_oom(args->command);
        }
        code = collect_list(args, CTL_OPT_FOREIGN_KEY, "--foreign-key", NULL, 0, &foreign);
        if (code != CTL_EXIT_OK)
                return code;
        if (foreign && ctl_add_member(params, "foreign_keys", TAKE_PTR(foreign)) < 0)
                return ctl_fail_oom(args->command);
        if (time) {
                if (isempty(time))
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--time: the column name is empty");
                if (ctl_add_member(params, "time_series_time", json_object_new_string(time)) < 0)
                        return ctl_fail_oom(args->command);
        }
        for (i = 0; i < args->n_opts; i++) {
                const char *arg = args->opts[i].arg, *eq;
                _cleanup_free_ char *col = NULL;

                if (args->opts[i].id != CTL_OPT_TYPE)
                        continue;
                eq = strrchr(arg, '=');
                if (!eq || eq == arg)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--type: expected COLUMN=TYPE, got '%s'", arg);
                code = ctl_check_choice(args->command, "--type", eq + 1, column_types, ELEMENTSOF(column_types));
                if (code != CTL_EXIT_OK)
                        return code;
                col = strndup(arg, (size_t) (eq - arg));
                if (!col || (!types && !(types = json_object_new_object())) ||
                    ctl_add_member(types, col, json_object_new_string(eq + 1)) < 0)
                        return ctl_fail_oom(args->command);
        }
        if (types && ctl_add_member(params, "types", TAKE_PTR(types)) < 0)
                return ctl_fail_oom(args->command);
        if ((ctl_opt_given(args, CTL_OPT_INDIVIDUAL_LEVEL) || ctl_opt_given(args, CTL_OPT_NO_INDIVIDUAL_LEVEL)) &&
            ctl_add_member(params, "individual_level",
                           json_object_new_boolean(ctl_opt_given(args, CTL_OPT_INDIVIDUAL_LEVEL))) < 0)
                return ctl_fail_oom(args->command);
        return CTL_EXIT_OK;
}

/* Closes and frees an input file. */
void input_file_done(InputFile *in) {
        if (in->owned)
                in->fd = safe_close(in->fd);
        in->name = mfree(in->name);
}

/* Opens a table to upload, read-only. Returns CTL_EXIT_OK or the exit code. */
int input_file_open(const char *command, const char *path, InputFile *ret) {
        InputFile in = { .path = path, .fd = -1 };
        struct stat st;

        if (streq(path, "-")) {
                in.fd = STDIN_FILENO;
                if (fstat(in.fd, &st) < 0)
                        return ctl_fail(CTL_EXIT_USAGE, command, "cannot read stdin: %s", strerror(errno));
        } else {
                in.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (in.fd < 0)
                        return ctl_fail(CTL_EXIT_USAGE, command, "cannot open %s: %s", path, strerror(errno));
                in.owned = true;
                if (fstat(in.fd, &st) < 0) {
                        input_file_done(&in);
                        return ctl_fail(CTL_EXIT_USAGE, command, "cannot read %s: %s", path, strerror(errno));
                }
                in.name = base_name(path);
                if (!in.name) {
                        input_file_done(&in);
                        return ctl_fail_oom(command);
                }
        }
        if (S_ISDIR(st.st_mode)) {
                input_file_done(&in);
                return ctl_fail(CTL_EXIT_USAGE, command, "%s is a directory", path);
        }
        if (S_ISREG(st.st_mode))
                in.size = (uint64_t) st.st_size;
        *ret = in;
        return CTL_EXIT_OK;
}

/* Uploads a table: runner.add_table with the descriptors of `in` (and `avatar`, may be
 * NULL), showing progress. `params` holds everything but the descriptors and file names.
 * Returns CTL_EXIT_OK with the result in *ret_result, or the exit code (the failure
 * reported). */
int upload_table(Ctl *ctl, const char *command, json_object *params, const InputFile *in,
                 const InputFile *avatar, const char *file_name, Progress *p, json_object **ret_result) {
        json_object *result = NULL, *fdref;
        int fds[2] = { in->fd, avatar ? avatar->fd : -1 }, code;

        fdref = json_object_new_object();
        if (!fdref || ctl_add_member(fdref, "fd", json_object_new_int(0)) < 0 ||
            ctl_add_member(params, "data", fdref) < 0)
                return ctl_fail_oom(command);
        if (file_name && ctl_add_member(params, "file_name", json_object_new_string(file_name)) < 0)
                return ctl_fail_oom(command);
        if (avatar) {
                fdref = json_object_new_object();
                if (!fdref || ctl_add_member(fdref, "fd", json_object_new_int(1)) < 0 ||
                    ctl_add_member(params, "avatar_data", fdref) < 0)
                        return ctl_fail_oom(command);
                if (avatar->name && ctl_add_member(params, "avatar_file_name", json_object_new_string(avatar->name)) < 0)
                        return ctl_fail_oom(command);
        }

        progress_upload_begin(p, file_name ?: in->path, in->size);
        code = ctl_call_full(ctl, "runner.add_table", params, fds, avatar ? 2 : 1, long_call_timeout(ctl), &result,
                             NULL, NULL);
        if (code != CTL_EXIT_OK)
                return code;
        {
                /* The last file uploaded: the avatars when there are some. */
                json_object *up = ctl_member(result, "upload"),
                            *b = ctl_member(up, avatar && ctl_member(up, "avatar_bytes") ? "avatar_bytes" : "bytes");

                progress_upload_end(p, json_object_is_type(b, json_type_int) ? json_object_get_uint64(b) : in->size);
        }
        *ret_result = result;
        return CTL_EXIT_OK;
}

/* Prints runner.add_table for people. */
static void print_table_added(const Ctl *ctl, json_object *result) {
        json_object *up = ctl_member(result, "upload"), *b = ctl_member(up, "bytes"), *ab = ctl_member(up, "avatar_bytes");
        _cleanup_free_ char *tables = join_strings(ctl_member(result, "tables"));
        char size[32] = "";

        (void) fputs("Added table ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "table_name") ?: "?");
        (void) fputs(" to runner ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "runner_id") ?: "?");
        if (json_object_is_type(b, json_type_int)) {
                (void) printf(": %" PRIu64 " bytes", json_object_get_uint64(b));
                if (json_object_get_uint64(b) >= 1024) {
                        progress_format_bytes(json_object_get_uint64(b), size, sizeof(size));
                        (void) printf(" (%s)", size);
                }
                (void) fputs(" uploaded", stdout);
                if (json_object_is_type(ab, json_type_int))
                        (void) printf(", and %" PRIu64 " bytes of avatars", json_object_get_uint64(ab));
        }
        (void) puts(".");
        if (tables && *tables) {
                (void) fputs("Tables: ", stdout);
                output_sanitized(stdout, tables);
                (void) putchar('\n');
        }
        (void) puts("\nSet its parameters with:");
        (void) fputs("  ", stdout);
        ctl_print_command_start(stdout, ctl);
        (void) fputs("runner set-parameters ", stdout);
        ctl_print_shell_word(stdout, ctl_member_string(result, "runner_id") ?: "?");
        (void) fputc(' ', stdout);
        ctl_print_shell_word(stdout, ctl_member_string(result, "table_name") ?: "?");
        (void) puts(" --k 5");
}

/* "avatarctl runner add-table RUNNER TABLE FILE|- [OPTIONS]": runner.add_table. */
int ctl_cmd_runner_add_table(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *avatar_path = ctl_opt(args, CTL_OPT_AVATAR_DATA), *file_name = ctl_opt(args, CTL_OPT_FILE_NAME);
        InputFile in = { .fd = -1 }, avatar = { .fd = -1 };
        Progress *p = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = check_name(args->command, "TABLE", args->pos[1], TABLE_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (file_name && (isempty(file_name) || strlen(file_name) > 4096))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--file-name: expected 1 to 4096 bytes");
        if (avatar_path && streq(avatar_path, "-") && streq(args->pos[2], "-"))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "stdin can hold the table or the avatars, not both");
        if (ctl_add_member(params, "table_name", json_object_new_string(args->pos[1])) < 0)
                return ctl_fail_oom(args->command);
        code = add_table_options(args, params);
        if (code != CTL_EXIT_OK)
                return code;

        code = input_file_open(args->command, args->pos[2], &in);
        if (code != CTL_EXIT_OK)
                return code;
        if (avatar_path) {
                code = input_file_open(args->command, avatar_path, &avatar);
                if (code != CTL_EXIT_OK)
                        goto out;
        }
        code = progress_attach(ctl, args->pos[0], &p);
        if (code != CTL_EXIT_OK)
                goto out;
        code = upload_table(ctl, args->command, params, &in, avatar_path ? &avatar : NULL, file_name ?: in.name, p,
                            &result);
        p = progress_detach(ctl, p);
        if (code != CTL_EXIT_OK)
                goto out;
        if (ctl->json)
                ctl_print_json(ctl, result);
        else
                print_table_added(ctl, result);
out:
        p = progress_detach(ctl, p);
        input_file_done(&in);
        input_file_done(&avatar);
        return code;
}

/* Splits "TABLE.FIELD" at its first dot into two new strings. Returns CTL_EXIT_OK or the
 * exit code. */
static int split_table_field(const char *command, const char *arg, char **ret_table, char **ret_field) {
        const char *dot = strchr(arg, '.');
        char *t, *f;

        if (!dot || dot == arg || dot[1] == '\0')
                return ctl_fail(CTL_EXIT_USAGE, command, "expected TABLE.FIELD, got '%s'", arg);
        t = strndup(arg, (size_t) (dot - arg));
        f = strdup(dot + 1);
        if (!t || !f) {
                free(t);
                free(f);
                return ctl_fail_oom(command);
        }
        *ret_table = t;
        *ret_field = f;
        return CTL_EXIT_OK;
}

/* Prints runner.add_link for people. */
static int print_linked(Ctl *ctl, json_object *result, void *userdata) {
        (void) ctl;
        (void) result;
        (void) fputs("Linked ", stdout);
        output_sanitized(stdout, userdata);
        (void) puts(".");
        return 0;
}

/* "avatarctl runner add-link RUNNER PARENT.FIELD CHILD.FIELD [--method M]": runner.add_link. */
int ctl_cmd_runner_add_link(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        _cleanup_free_ char *pt = NULL, *pf = NULL, *ct = NULL, *cf = NULL, *text = NULL;
        const char *method = ctl_opt(args, CTL_OPT_METHOD);
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = split_table_field(args->command, args->pos[1], &pt, &pf);
        if (code != CTL_EXIT_OK)
                return code;
        code = split_table_field(args->command, args->pos[2], &ct, &cf);
        if (code != CTL_EXIT_OK)
                return code;
        if (method) {
                code = ctl_check_choice(args->command, "--method", method, link_methods, ELEMENTSOF(link_methods));
                if (code != CTL_EXIT_OK)
                        return code;
        }
        if (ctl_add_member(params, "parent_table_name", json_object_new_string(pt)) < 0 ||
            ctl_add_member(params, "parent_field", json_object_new_string(pf)) < 0 ||
            ctl_add_member(params, "child_table_name", json_object_new_string(ct)) < 0 ||
            ctl_add_member(params, "child_field", json_object_new_string(cf)) < 0 ||
            (method && ctl_add_member(params, "method", json_object_new_string(method)) < 0))
                return ctl_fail_oom(args->command);
        if (asprintf(&text, "%s.%s to %s.%s (%s)", pt, pf, ct, cf, method ?: "linear_sum_assignment") < 0) {
                text = NULL;
                return ctl_fail_oom(args->command);
        }
        return ctl_call_and_print(ctl, "runner.add_link", params, print_linked, text);
}
