/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner add-table, add-link, delete-table and delete-link (runner.add_table,
 * runner.add_link, runner.delete_table, runner.delete_link): tables go to the daemon as open
 * descriptors, with a progress display while they upload.
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
        if (S_ISREG(st.st_mode)) {
                in.size = (uint64_t) st.st_size;
                in.regular = true;
        }
        *ret = in;
        return CTL_EXIT_OK;
}

/* Bytes read at a time by the check. */
#define CHECK_CHUNK (64u * 1024u)

/* The state of the CSV check, carried from one chunk to the next. */
typedef struct CsvCheck {
        uint64_t line;            /* the physical line the next byte is on (1-based) */
        uint64_t record_line;     /* where the record being read started */
        uint64_t records;         /* complete records */
        size_t fields;            /* fields of the record being read, so far */
        size_t header_fields;     /* fields of the first record */
        bool in_quotes, after_quote, field_start, record_empty;
        unsigned utf8_left;       /* continuation bytes still expected */
        uint32_t utf8_min;        /* the least code point the sequence may encode */
        uint32_t utf8_cp;
        uint64_t column;          /* of the byte in its line, for messages (1-based) */
} CsvCheck;

/* Ends a record: its number of fields must be the header's. Returns 0 or -EBADMSG with the
 * message in buf. */
static int csv_end_record(CsvCheck *c, char *buf, size_t size) {
        if (c->record_empty) {
                /* a blank line: read as no row, as pandas does */
                c->fields = 0;
                return 0;
        }
        c->fields++;
        if (c->records == 0)
                c->header_fields = c->fields;
        else if (c->fields != c->header_fields) {
                (void) snprintf(buf, size, "line %" PRIu64 ": %zu field%s, but the header (line 1) has %zu",
                                c->record_line, c->fields, c->fields == 1 ? "" : "s", c->header_fields);
                return -EBADMSG;
        }
        c->records++;
        c->fields = 0;
        return 0;
}

/* Feeds one byte to the UTF-8 check. Returns 0 or -EBADMSG. */
static int utf8_feed(CsvCheck *c, unsigned char b) {
        if (c->utf8_left > 0) {
                if ((b & 0xc0) != 0x80)
                        return -EBADMSG;
                c->utf8_cp = (c->utf8_cp << 6) | (b & 0x3f);
                if (--c->utf8_left == 0 &&
                    (c->utf8_cp < c->utf8_min || c->utf8_cp > 0x10ffff || (c->utf8_cp >= 0xd800 && c->utf8_cp <= 0xdfff)))
                        return -EBADMSG;
                return 0;
        }
        if (b < 0x80)
                return 0;
        if ((b & 0xe0) == 0xc0)
                c->utf8_left = 1, c->utf8_min = 0x80, c->utf8_cp = b & 0x1f;
        else if ((b & 0xf0) == 0xe0)
                c->utf8_left = 2, c->utf8_min = 0x800, c->utf8_cp = b & 0x0f;
        else if ((b & 0xf8) == 0xf0)
                c->utf8_left = 3, c->utf8_min = 0x10000, c->utf8_cp = b & 0x07;
        else
                return -EBADMSG;
        return 0;
}

/* Feeds one byte to the CSV check. Returns 0 or -EBADMSG with the message in buf. */
static int csv_feed(CsvCheck *c, unsigned char b, char *buf, size_t size) {
        if (b == '\0') {
                (void) snprintf(buf, size, "line %" PRIu64 ": a NUL byte: this is not a text file", c->line);
                return -EBADMSG;
        }
        if (utf8_feed(c, b) < 0) {
                (void) snprintf(buf, size, "line %" PRIu64 ", column %" PRIu64 ": not UTF-8 (byte 0x%02x); save the "
                                "file as UTF-8", c->line, c->column, b);
                return -EBADMSG;
        }
        c->column++;
        if (c->in_quotes) {
                if (b == '"') {
                        c->in_quotes = false;
                        c->after_quote = true;
                } else if (b == '\n') {
                        c->line++;
                        c->column = 1;
                }
                return 0;
        }
        if (b == '"' && (c->field_start || c->after_quote)) {
                /* an opening quote, or the second of a doubled one */
                c->in_quotes = true;
                c->after_quote = false;
                c->field_start = false;
                c->record_empty = false;
                return 0;
        }
        c->after_quote = false;
        if (b == '\n') {
                int r = csv_end_record(c, buf, size);

                c->line++;
                c->column = 1;
                c->record_line = c->line;
                c->field_start = true;
                c->record_empty = true;
                return r;
        }
        if (b == '\r')
                return 0;
        c->record_empty = false;
        c->field_start = b == ',';
        if (b == ',')
                c->fields++;
        return 0;
}

/* Checks a CSV table before it is uploaded. */
int check_table_file(const char *command, const InputFile *in, const char *file_name) {
        _cleanup_free_ char *chunk = NULL;
        const char *name = file_name ?: in->name;
        CsvCheck c = { .line = 1, .record_line = 1, .field_start = true, .record_empty = true, .column = 1 };
        char msg[256];
        uint64_t off = 0;

        if (!in->regular || !name || strlen(name) < 4 || strcasecmp(name + strlen(name) - 4, ".csv") != 0)
                return CTL_EXIT_OK;
        if (in->size == 0) {
                (void) ctl_fail(CTL_EXIT_USAGE, command, "%s is empty: no header, no rows", in->path);
                ctl_hint(NULL, "--no-check uploads it anyway");
                return CTL_EXIT_USAGE;
        }
        chunk = malloc(CHECK_CHUNK);
        if (!chunk)
                return ctl_fail_oom(command);
        for (;;) {
                ssize_t n = pread(in->fd, chunk, CHECK_CHUNK, (off_t) off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return ctl_fail(CTL_EXIT_USAGE, command, "cannot read %s: %s", in->path, strerror(errno));
                if (n == 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        /* a UTF-8 byte order mark before the header is allowed */
                        if (off == 0 && i < 3 && n >= 3 && memcmp(chunk, "\xef\xbb\xbf", 3) == 0)
                                continue;
                        if (csv_feed(&c, (unsigned char) chunk[i], msg, sizeof(msg)) < 0) {
                                (void) ctl_fail(CTL_EXIT_USAGE, command, "%s: %s", in->path, msg);
                                ctl_hint(NULL, "fix the file, or upload it as it is with --no-check");
                                return CTL_EXIT_USAGE;
                        }
                }
                off += (uint64_t) n;
        }
        if (c.in_quotes || c.utf8_left > 0) {
                (void) ctl_fail(CTL_EXIT_USAGE, command, "%s: line %" PRIu64 ": %s", in->path, c.record_line,
                                c.in_quotes ? "a quoted field that never ends" : "the file ends inside a UTF-8 character");
                ctl_hint(NULL, "fix the file, or upload it as it is with --no-check");
                return CTL_EXIT_USAGE;
        }
        if (csv_end_record(&c, msg, sizeof(msg)) < 0) {
                (void) ctl_fail(CTL_EXIT_USAGE, command, "%s: %s", in->path, msg);
                ctl_hint(NULL, "fix the file, or upload it as it is with --no-check");
                return CTL_EXIT_USAGE;
        }
        if (c.records < 2) {
                (void) ctl_fail(CTL_EXIT_USAGE, command, "%s: %s", in->path,
                                c.records == 0 ? "no header, no rows" : "a header but no rows");
                ctl_hint(NULL, "--no-check uploads it anyway");
                return CTL_EXIT_USAGE;
        }
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
        if (!ctl_opt_given(args, CTL_OPT_NO_CHECK)) {
                code = check_table_file(args->command, &in, file_name);
                if (code != CTL_EXIT_OK)
                        goto out;
        }
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

/* Prints what a deletion removed: "Deleted TEXT." */
static int print_deleted(Ctl *ctl, json_object *result, void *userdata) {
        (void) ctl;
        (void) result;
        (void) fputs("Deleted ", stdout);
        output_sanitized(stdout, userdata);
        (void) puts(".");
        return 0;
}

/* "avatarctl runner delete-table RUNNER TABLE": runner.delete_table (the table's links and
 * parameters go with it). */
int ctl_cmd_runner_delete_table(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        _cleanup_free_ char *text = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = check_name(args->command, "TABLE", args->pos[1], TABLE_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_add_member(params, "table_name", json_object_new_string(args->pos[1])) < 0)
                return ctl_fail_oom(args->command);
        if (asprintf(&text, "table %s with its links and parameters", args->pos[1]) < 0) {
                text = NULL;
                return ctl_fail_oom(args->command);
        }
        return ctl_call_and_print(ctl, "runner.delete_table", params, print_deleted, text);
}

/* "avatarctl runner delete-link RUNNER PARENT CHILD": runner.delete_link. */
int ctl_cmd_runner_delete_link(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        _cleanup_free_ char *text = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        for (int i = 1; i <= 2; i++) {
                code = check_name(args->command, i == 1 ? "PARENT" : "CHILD", args->pos[i], TABLE_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        if (ctl_add_member(params, "parent_table_name", json_object_new_string(args->pos[1])) < 0 ||
            ctl_add_member(params, "child_table_name", json_object_new_string(args->pos[2])) < 0)
                return ctl_fail_oom(args->command);
        if (asprintf(&text, "the link from table %s to table %s", args->pos[1], args->pos[2]) < 0) {
                text = NULL;
                return ctl_fail_oom(args->command);
        }
        return ctl_call_and_print(ctl, "runner.delete_link", params, print_deleted, text);
}
