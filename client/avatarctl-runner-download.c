/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner download (runner.download): one result into a file, onto stdout (a pipe
 * gets the bytes as they are) or the terminal; or every result of a runner into a
 * directory. The plan of files that "download every result" and avatarize share is here too
 * (Fetch: which files, under which names, created first so that nothing is downloaded when
 * one of them exists).
 */
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "errors.h"
#include "jsonrpc.h"

/* Mode of the directories avatarctl creates (the umask applies). */
#define OUTPUT_DIR_MODE 0777
/* Most files one plan holds. */
#define FETCH_FILES_MAX 1024

/* ---- small helpers ------------------------------------------------------------------ */

/* dir + "/" + name, new string (NULL on OOM). */
char *path_join(const char *dir, const char *name) {
        char *p;

        if (asprintf(&p, "%s%s%s", dir, endswith(dir, "/") ? "" : "/", name) < 0)
                return NULL;
        return p;
}

/* Creates a directory and its missing parents (mode 0777 less the umask). Returns 0 or a
 * negative errno. */
int make_dirs(const char *path) {
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

/* Whether path names a directory, or ends with '/' (one to be made). */
static bool is_dir_arg(const char *path) {
        struct stat st;

        return endswith(path, "/") || (stat(path, &st) >= 0 && S_ISDIR(st.st_mode));
}

/* ---- plans of files ------------------------------------------------------------------ */

/* Frees a plan (the files it created and did not fill are removed). */
void fetch_done(Fetch *f) {
        for (size_t i = 0; i < f->n_files; i++) {
                FetchFile *x = &f->files[i];

                x->fd = safe_close(x->fd);
                if (x->created && !x->done && x->path)
                        (void) unlink(x->path);
                free(x->table);
                free(x->file_name);
                free(x->path);
        }
        f->files = mfree(f->files);
        f->n_files = 0;
}

/* Adds the files of a listing (runner.list_results) that `want` picks (NULL: every file
 * runner.download can name), in the listing's order. A file name the server gives that is
 * not usable in a directory, or that another file of the plan has, is left out with a
 * warning. Returns CTL_EXIT_OK or the exit code. */
int fetch_plan(Fetch *f, json_object *listing, bool (*want)(const ResultKind *kind, const char *table, void *userdata),
               void *userdata) {
        _cleanup_(unref_jsonp) json_object *rows = NULL;
        size_t i, k;

        if (result_rows(listing, &rows) < 0)
                return ctl_fail_oom(f->command);
        for (i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);
                const char *result = ctl_member_string(row, "result"), *table = ctl_member_string(row, "table"),
                           *fn = ctl_member_string(row, "file_name");
                const ResultKind *kind = result_kind_named(result);
                FetchFile *x, *files;
                bool dup = false;

                if (!kind || !fn || json_object_get_boolean(ctl_member(row, "results_missing")) ||
                    (want && !want(kind, table, userdata)))
                        continue;
                for (k = 0; k < f->n_files && !dup; k++)
                        dup = streq(f->files[k].file_name, fn);
                if (dup || !file_name_is_safe(fn)) {
                        _cleanup_free_ char *w = NULL;

                        if (asprintf(&w, "%s: the server's file name '%s' %s; not downloaded", result, fn,
                                     dup ? "is another result's too" : "is not usable in a directory") >= 0)
                                ctl_warning(w);
                        continue;
                }
                if (f->n_files >= FETCH_FILES_MAX)
                        return ctl_fail(CTL_EXIT_FAILED, f->command, "more than %d result files", FETCH_FILES_MAX);
                files = reallocarray(f->files, f->n_files + 1, sizeof(FetchFile));
                if (!files)
                        return ctl_fail_oom(f->command);
                f->files = files;
                x = &f->files[f->n_files++];
                *x = (FetchFile) { .kind = kind, .fd = -1, .index = json_object_get_int64(ctl_member(row, "index")) };
                x->table = table ? strdup(table) : NULL;
                x->file_name = strdup(fn);
                x->path = x->file_name ? path_join(f->dir, x->file_name) : NULL;
                if ((table && !x->table) || !x->path)
                        return ctl_fail_oom(f->command);
        }
        return CTL_EXIT_OK;
}

/* Creates the directory and every file of the plan first, so that nothing is downloaded
 * when one of them exists (without force); with keep_existing, a file that exists is kept
 * and not downloaded. Then downloads into each, showing progress on p. Returns CTL_EXIT_OK
 * or the exit code (the failure reported); *ret_error (may be NULL) names the kind of a
 * failure for a summary: "file_exists", "io_error", "download_failed". */
int fetch_run(Ctl *ctl, Fetch *f, Progress *p, const char **ret_error) {
        size_t i;
        int code, r;

        if (ret_error)
                *ret_error = NULL;
        if (f->n_files == 0)
                return CTL_EXIT_OK;
        r = make_dirs(f->dir);
        if (r < 0) {
                if (ret_error)
                        *ret_error = "io_error";
                return ctl_fail(CTL_EXIT_FAILED, f->command, "cannot create %s: %s", f->dir, strerror(-r));
        }
        for (i = 0; i < f->n_files; i++) {
                FetchFile *x = &f->files[i];

                if (f->keep_existing && !f->force && access(x->path, F_OK) == 0) {
                        x->kept = true;
                        continue;
                }
                x->fd = create_output(x->path, f->force, &x->created);
                if (x->fd < 0) {
                        r = x->fd;
                        x->fd = -1;
                        progress_break(p);
                        if (ret_error)
                                *ret_error = r == -EEXIST ? "file_exists" : "io_error";
                        return fail_output(f->command, x->path, r);
                }
        }
        for (i = 0; i < f->n_files; i++) {
                _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
                FetchFile *x = &f->files[i];

                if (x->kept)
                        continue;
                params = json_object_new_object();
                if (!params || ctl_add_member(params, "runner_id", json_object_new_string(f->runner_id)) < 0 ||
                    ctl_add_member(params, "result", json_object_new_string(x->kind->result)) < 0 ||
                    (x->table && ctl_add_member(params, "table", json_object_new_string(x->table)) < 0) ||
                    (x->index > 0 && ctl_add_member(params, "index", json_object_new_int64(x->index)) < 0))
                        return ctl_fail_oom(f->command);
                code = download_into(ctl, params, x->fd, x->path, p, &result);
                x->fd = safe_close(x->fd);
                if (code != CTL_EXIT_OK) {
                        if (ret_error)
                                *ret_error = "download_failed";
                        return code;
                }
                x->bytes = json_object_get_uint64(ctl_member(result, "bytes"));
                x->done = true;
        }
        return CTL_EXIT_OK;
}

/* Prints the files written (and kept) with their sizes: "Files written:" and a line each;
 * "No files were written." when none. */
void fetch_print(const Fetch *f) {
        size_t i, width = 0, bwidth = 0;

        for (i = 0; i < f->n_files; i++) {
                char b[32];

                if (!f->files[i].done && !f->files[i].kept)
                        continue;
                width = MAX(width, output_width(f->files[i].path));
                bwidth = MAX(bwidth, (size_t) snprintf(b, sizeof(b), "%" PRIu64, f->files[i].bytes));
        }
        if (width == 0) {
                (void) puts("\nNo files were written.");
                return;
        }
        (void) puts("\nFiles written:");
        for (i = 0; i < f->n_files; i++) {
                const FetchFile *x = &f->files[i];
                char b[32], h[32];

                if (!x->done && !x->kept)
                        continue;
                (void) fputs("  ", stdout);
                output_padded(stdout, x->path, x->kept ? 0 : width, OUTPUT_ALIGN_LEFT);
                if (x->kept) {
                        (void) puts("  (there already: kept)");
                        continue;
                }
                (void) snprintf(b, sizeof(b), "%" PRIu64, x->bytes);
                (void) fputs("  ", stdout);
                output_padded(stdout, b, bwidth, OUTPUT_ALIGN_RIGHT);
                (void) fputs(" bytes", stdout);
                if (x->bytes >= 1024) {
                        progress_format_bytes(x->bytes, h, sizeof(h));
                        (void) printf(" (%s)", h);
                }
                (void) putchar('\n');
        }
}

/* The files written, as an array of {result, table, file_name, path, bytes} (kept files
 * with "kept": true and no bytes). NULL on OOM. */
json_object *fetch_json(const Fetch *f) {
        json_object *files = json_object_new_array();

        for (size_t i = 0; files && i < f->n_files; i++) {
                const FetchFile *x = &f->files[i];
                json_object *e;

                if ((!x->done && !x->kept) || !(e = json_object_new_object()))
                        continue;
                (void) ctl_add_member(e, "result", json_object_new_string(x->kind->result));
                (void) json_object_object_add(e, "table", x->table ? json_object_new_string(x->table) : NULL);
                (void) ctl_add_member(e, "file_name", json_object_new_string(x->file_name));
                (void) ctl_add_member(e, "path", json_object_new_string(x->path));
                if (x->kept)
                        (void) ctl_add_member(e, "kept", json_object_new_boolean(true));
                else
                        (void) ctl_add_member(e, "bytes", json_object_new_uint64(x->bytes));
                (void) json_object_array_add(files, e);
        }
        return files;
}

/* ---- one result ---------------------------------------------------------------------- */

/* Prints "saved RESULT -> PATH (N bytes)" on stdout. */
static void print_saved(const char *result, const char *path, int64_t bytes) {
        (void) fputs("saved ", stdout);
        output_sanitized(stdout, result);
        (void) fputs(" -> ", stdout);
        output_sanitized(stdout, path);
        (void) printf(" (%" PRId64 " bytes)\n", bytes);
}

/* Decodes base64 (RFC 4648, padding optional, no line breaks). Returns 0 with a new buffer
 * in *ret and its length, -EBADMSG on invalid input, -ENOMEM. */
static int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = NULL;
        uint32_t acc = 0;
        size_t n = 0, bits = 0, i;

        out = malloc(len / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        while (len > 0 && s[len - 1] == '=')
                len--;
        for (i = 0; i < len; i++) {
                char c = s[i];
                int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
                        c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;

                if (v < 0)
                        return -EBADMSG;
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (char) ((acc >> bits) & 0xff);
                }
        }
        if (bits >= 6)
                return -EBADMSG; /* a lone character cannot end the text */
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* Finds, in runner.list_results, the file that a download of params' result, table and
 * index would fetch; its file name (new string) in *ret. Returns 0, -ENOENT, -ENOMEM. */
static int listed_file_name(json_object *listing, json_object *params, char **ret) {
        _cleanup_(unref_jsonp) json_object *rows = NULL;
        const ResultKind *kind = result_kind_named(ctl_member_string(params, "result"));
        const char *table = ctl_member_string(params, "table");
        int64_t index = json_object_get_int64(ctl_member(params, "index")), seen = 0;
        size_t i;
        int r;

        r = result_rows(listing, &rows);
        if (r < 0)
                return r;
        for (i = 0; kind && i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);
                const ResultKind *rk = result_kind_named(ctl_member_string(row, "result"));

                if (!rk || !streq(rk->job, kind->job) || !streq(rk->key, kind->key) || !ctl_member_string(row, "file_name"))
                        continue;
                if (table && !streq_ptr(ctl_member_string(row, "table"), table))
                        continue;
                if (seen++ != index)
                        continue;
                *ret = strdup(ctl_member_string(row, "file_name"));
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

/* Saves a download into a new file `path` and reports it: "saved RESULT -> PATH (N bytes)"
 * (JSON mode: the result with "path" instead of "data"). */
static int save_inline(Ctl *ctl, const char *command, json_object *result, const char *path, const char *data,
                       size_t len, bool force) {
        int code;

        code = write_output(command, path, data, len, force);
        if (code != CTL_EXIT_OK)
                return code;
        json_object_object_del(result, "data");
        json_object_object_del(result, "encoding");
        if (ctl_add_member(result, "path", json_object_new_string(path)) < 0)
                return ctl_fail_oom(command);
        if (ctl->json)
                ctl_print_json(ctl, result);
        else
                print_saved(ctl_member_string(result, "result") ?: "?", path, (int64_t) len);
        return CTL_EXIT_OK;
}

/* Downloads one result into a file avatarctl creates at path (removed again on failure),
 * with progress; the result gains "path". Returns CTL_EXIT_OK or the exit code. */
static int download_to_file(Ctl *ctl, const char *command, json_object *params, const char *path, bool force,
                            json_object **ret_result) {
        _cleanup_close_ int fd = -1;
        bool created = false;
        Progress *p = NULL;
        int code;

        fd = create_output(path, force, &created);
        if (fd < 0)
                return fail_output(command, path, fd);
        code = progress_attach(ctl, ctl_member_string(params, "runner_id"), &p);
        if (code == CTL_EXIT_OK)
                code = download_into(ctl, params, fd, path, p, ret_result);
        p = progress_detach(ctl, p);
        fd = safe_close(fd);
        if (code != CTL_EXIT_OK) {
                if (created)
                        (void) unlink(path);
                return code;
        }
        if (ctl_add_member(*ret_result, "path", json_object_new_string(path)) < 0)
                return ctl_fail_oom(command);
        return CTL_EXIT_OK;
}

/* Downloads into a new file named after the server's file (in the current directory),
 * through a descriptor: for a result too large to come inline. */
static int download_to_server_name(Ctl *ctl, const char *command, json_object *params, bool force) {
        _cleanup_(unref_jsonp) json_object *lp = NULL, *listing = NULL, *result = NULL;
        _cleanup_free_ char *name = NULL;
        int code, r;

        code = runner_params(command, ctl_member_string(params, "runner_id"), &lp);
        if (code != CTL_EXIT_OK)
                return code;
        code = ctl_call(ctl, "runner.list_results", lp, NULL, 0, &listing);
        if (code != CTL_EXIT_OK)
                return code;
        r = listed_file_name(listing, params, &name);
        if (r == -ENOMEM)
                return ctl_fail_oom(command);
        if (r < 0 || !file_name_is_safe(name))
                return ctl_fail(CTL_EXIT_NOT_FOUND, command, "no file name for this result; give one with -o FILE");
        code = download_to_file(ctl, command, params, name, force, &result);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl->json)
                ctl_print_json(ctl, result);
        else
                print_saved(ctl_member_string(result, "result") ?: "?", name,
                            json_object_get_int64(ctl_member(result, "bytes")));
        return CTL_EXIT_OK;
}

/* Without -o: the result inline; text is printed, binary saved under the server's file
 * name; a result too large to come inline is saved under that name too. */
static int download_inline(Ctl *ctl, const char *command, json_object *params, bool force) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *result = NULL;
        _cleanup_free_ char *bin = NULL;
        const char *encoding, *data, *name;
        size_t len = 0;
        int code, r;

        code = ctl_call_quiet(ctl, "runner.download", params, NULL, 0, long_call_timeout(ctl), &result, &e, &r);
        if (code != CTL_EXIT_OK) {
                /* The daemon returns at most 512 KiB inline. */
                if (r == -EREMOTEIO && e.code == RPC_INVALID_PARAMS && e.message && strstr(e.message, "too large"))
                        return download_to_server_name(ctl, command, params, force);
                ctl_report_call_error(ctl, "runner.download", r, &e, long_call_timeout(ctl));
                return code;
        }
        encoding = ctl_member_string(result, "encoding");
        data = ctl_member_string(result, "data") ?: "";
        name = ctl_member_string(result, "file_name");
        if (!streq_ptr(encoding, "base64")) {
                if (ctl->json)
                        ctl_print_json(ctl, result);
                else
                        print_text(ctl, data, (size_t) json_object_get_string_len(ctl_member(result, "data")));
                return CTL_EXIT_OK;
        }
        r = base64_decode(data, strlen(data), &bin, &len);
        if (r == -ENOMEM)
                return ctl_fail_oom(command);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, command, "the daemon sent invalid base64");
        if (!file_name_is_safe(name))
                return ctl_fail(CTL_EXIT_FAILED, command, "the server's file name is not usable here; give one with -o FILE");
        return save_inline(ctl, command, result, name, bin, len, force);
}


/* "avatarctl runner download RUNNER -o DIR [--force]": every file of runner.list_results
 * into DIR, under the server's names. */
static int download_all(Ctl *ctl, const CtlArgs *args, const char *runner_id, const char *dir, bool force) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *listing = NULL;
        Fetch f = { .command = args->command, .runner_id = runner_id, .dir = dir, .force = force };
        Progress *p = NULL;
        int code;

        code = runner_params(args->command, runner_id, &params);
        if (code == CTL_EXIT_OK)
                code = ctl_call(ctl, "runner.list_results", params, NULL, 0, &listing);
        if (code == CTL_EXIT_OK)
                code = fetch_plan(&f, listing, NULL, NULL);
        if (code == CTL_EXIT_OK && f.n_files == 0) {
                code = ctl_fail(CTL_EXIT_NOT_FOUND, args->command, "the runner has no result files (yet)");
                ctl_hint(ctl, "see its jobs with 'avatarctl runner status %s'", runner_id);
        }
        if (code == CTL_EXIT_OK)
                code = progress_attach(ctl, runner_id, &p);
        if (code == CTL_EXIT_OK)
                code = fetch_run(ctl, &f, p, NULL);
        p = progress_detach(ctl, p);
        if (code == CTL_EXIT_OK) {
                if (ctl->json) {
                        _cleanup_(unref_jsonp) json_object *o = json_object_new_object();

                        if (!o || ctl_add_member(o, "runner_id", json_object_new_string(runner_id)) < 0 ||
                            ctl_add_member(o, "output_dir", json_object_new_string(dir)) < 0 ||
                            ctl_add_member(o, "files", fetch_json(&f)) < 0)
                                code = ctl_fail_oom(args->command);
                        else
                                ctl_print_json(ctl, o);
                } else
                        fetch_print(&f);
        }
        fetch_done(&f);
        return code;
}

/* "avatarctl runner download RUNNER [RESULT] [--table T] [--index N] [-o FILE|-|DIR]
 * [--force]": runner.download into a file avatarctl creates, into stdout (-o -, or no -o
 * when stdout is not a terminal: descriptor 1 as it is, a file or a pipe), or inline (a
 * terminal, or --format json); without RESULT, every result into a directory. */
int ctl_cmd_runner_download(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_free_ char *name = NULL, *into = NULL;
        const char *result_name = args->n_pos > 1 ? args->pos[1] : NULL, *table = ctl_opt(args, CTL_OPT_TABLE),
                   *index = ctl_opt(args, CTL_OPT_INDEX), *out;
        bool force = ctl_opt_given(args, CTL_OPT_FORCE);
        size_t i;
        int code;

        code = output_params(args, &params, &out);
        if (code != CTL_EXIT_OK)
                return code;
        if (!result_name) {
                if (!out || streq(out, "-"))
                        return ctl_fail(CTL_EXIT_USAGE, args->command,
                                        "give the RESULT to download, or -o DIR for every result (see avatarctl "
                                        "runner results %s)", args->pos[0]);
                if (table || index)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--table and --index pick one RESULT's file");
                return download_all(ctl, args, args->pos[0], out, force);
        }
        if (!result_kind_named(result_name)) {
                const char *names[64];

                for (i = 0; result_kind_at(i) && i < ELEMENTSOF(names); i++)
                        names[i] = result_kind_at(i)->result;
                return ctl_check_choice(args->command, "RESULT", result_name, names, i);
        }
        if (ctl_add_member(params, "result", json_object_new_string(result_name)) < 0)
                return ctl_fail_oom(args->command);
        if (table) {
                code = check_name(args->command, "--table", table, TABLE_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
                if (ctl_add_member(params, "table", json_object_new_string(table)) < 0)
                        return ctl_fail_oom(args->command);
        }
        code = ctl_add_int_param(args, params, "--index", index, "index", 0, INT_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (!out && ctl->format == CTL_FORMAT_JSON)
                return download_inline(ctl, args->command, params, force);
        if (!out && ctl->tty)
                return download_inline(ctl, args->command, params, force);

        if (!out || streq(out, "-")) {
                /* The reports are pdf and docx: bytes a terminal would take as commands. */
                if (ctl->tty && (streq(result_name, "report") || streq(result_name, "report_pia")))
                        return ctl_fail(CTL_EXIT_USAGE, args->command,
                                        "the %s is a binary file: redirect stdout, or use -o FILE", result_name);
                /* stdout as it is (a file, a pipe): nothing else goes there, and no progress
                 * either (the bytes are the output). */
                (void) fflush(stdout);
                return download_into(ctl, params, STDOUT_FILENO, "stdout", NULL, &result);
        }

        if (is_dir_arg(out)) {
                /* -o DIR: the result under the server's name, in DIR */
                _cleanup_(unref_jsonp) json_object *lp = NULL, *listing = NULL;
                int r;

                code = runner_params(args->command, args->pos[0], &lp);
                if (code == CTL_EXIT_OK)
                        code = ctl_call(ctl, "runner.list_results", lp, NULL, 0, &listing);
                if (code != CTL_EXIT_OK)
                        return code;
                r = listed_file_name(listing, params, &name);
                if (r == -ENOMEM)
                        return ctl_fail_oom(args->command);
                if (r < 0 || !file_name_is_safe(name))
                        return ctl_fail(CTL_EXIT_NOT_FOUND, args->command,
                                        "no file name for this result; give one with -o FILE");
                r = make_dirs(out);
                if (r < 0)
                        return ctl_fail(CTL_EXIT_FAILED, args->command, "cannot create %s: %s", out, strerror(-r));
                into = path_join(out, name);
                if (!into)
                        return ctl_fail_oom(args->command);
                out = into;
        }
        code = download_to_file(ctl, args->command, params, out, force, &result);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl->json)
                ctl_print_json(ctl, result);
        else if (!ctl->stderr_tty) {
                /* On a terminal the progress line said it already. */
                print_saved(result_name, out, json_object_get_int64(ctl_member(result, "bytes")));
        }
        return CTL_EXIT_OK;
}
