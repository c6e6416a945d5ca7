/* SPDX-License-Identifier: MIT */
/*
 * avatarctl commands for runners: "runner ..." (one per runner.* method and
 * manager.create_runner*), "avatarize" (the whole flow in one command), "runs load"
 * (manager.create_runner_from_id / _from_name) and "watch" (manager.watch_jobs).
 *
 * Glossary:
 *   runner        an object the daemon holds for its owner (an id, a UUID): tables, links,
 *                 parameters, then the jobs of a run; see avatard's design, section 4.
 *   run, set      the jobs one runner.run created upstream, identified by their set_name.
 *   result        a kind of result file ("shuffled", "report", ...) as runner.download names
 *                 it; runner.list_results lists the files by job and result key, and
 *                 ResultKind (below) maps between the two.
 *   descriptor    tables go to the daemon as open files (SCM_RIGHTS) and results come back
 *                 into files avatarctl creates: the daemon never opens a path for the caller.
 *
 * Arguments are checked before anything is sent. Calls that move data (runner.add_table,
 * runner.download) or wait (runner.wait, runner.advise_parameters, manager.watch_jobs) have no
 * deadline of their own unless --timeout is given: progress notifications show they are alive,
 * and the waits end at the deadline they pass to the daemon.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-progress.h"
#include "errors.h"
#include "jsonrpc.h"

/* Longest display name of a runner (manager.create_runner set_name). */
#define SET_NAME_MAX 255
/* Longest table name (runner.add_table table_name). */
#define TABLE_NAME_MAX 200
/* Longest resource YAML sent inline (manager.create_runner_from_yaml yaml). */
#define YAML_INLINE_MAX (8u * 1024u * 1024u)
/* runner.wait's and manager.watch_jobs' deadline when none is given, in seconds (the
 * contract's default). */
#define WAIT_TIMEOUT_DEFAULT_S 3600.0
/* The longest deadline the daemon accepts, in seconds (a week). */
#define WAIT_TIMEOUT_MAX_S 604800.0
/* avatarize's wait when --timeout-wait is not given: a day, so that the one command sees a
 * large table through. */
#define AVATARIZE_WAIT_DEFAULT_S 86400.0
/* A wait's call gets this much longer than the deadline it passes, for the reply to come. */
#define WAIT_CALL_MARGIN_MS 30000
/* The k of avatarize when --k is not given (the Python tutorials' value). */
#define AVATARIZE_K_DEFAULT 5
/* Mode of the files avatarctl creates (the umask applies). */
#define OUTPUT_FILE_MODE 0644
/* Mode of the directories avatarctl creates (the umask applies). */
#define OUTPUT_DIR_MODE 0777
/* Most files one avatarize downloads (a runner's results for one table). */
#define AVATARIZE_FILES_MAX 16

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
static const char *const column_types[] = { "int", "bool", "category", "float", "datetime", "datetime_tz" };
static const char *const link_methods[] = {
        "linear_sum_assignment", "minimum_distance_assignment", "sensitive_original_order_assignment",
        "time_series",
};
/* The jobs runner.run starts ("report" starts report and report_pia). */
static const char *const run_jobs[] = { "standard", "signal_metrics", "privacy_metrics", "report" };
/* The jobs runner.wait and runner.delete take. */
static const char *const runner_jobs[] = {
        "standard", "signal_metrics", "privacy_metrics", "report", "report_pia", "advice_parameters",
};
static const char *const exclude_methods[] = { "row_order", "coordinate_similarity" };
static const char *const imputation_methods[] = { "knn", "mode", "median", "mean", "fast_knn" };
static const char *const projection_types[] = { "fpca", "flatten" };
static const char *const time_series_methods[] = { "specified", "max", "min", "mean" };

/* A result of runner.download: the job that makes it and its key in the job's results
 * (runner.list_results' "result" of a file). Aliases come after the name they stand for, so
 * that a lookup by job and key finds the canonical name. */
typedef struct ResultKind {
        const char *result;
        const char *job;
        const char *key;
        bool per_table;           /* one file per table: name the table */
} ResultKind;

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

/* What avatarize downloads, in this order. */
static const char *const avatarize_results[] = {
        "shuffled", "privacy_metrics", "signal_metrics", "report", "report_pia",
};

/* ---- small helpers ------------------------------------------------------------------ */

/* Checks a runner id argument. */
static int check_runner_id(const char *command, const char *id) {
        if (ctl_is_uuid(id))
                return CTL_EXIT_OK;
        return ctl_fail(CTL_EXIT_USAGE, command,
                        "expected a runner id (a UUID, see avatarctl runner list), got '%s'", id);
}

/* Checks a name: 1 to max characters. */
static int check_name(const char *command, const char *what, const char *name, size_t max) {
        if (isempty(name) || output_width(name) > max)
                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected 1 to %zu characters", what, max);
        return CTL_EXIT_OK;
}

/* A new params object {"runner_id": id}, in *ret. Returns CTL_EXIT_OK or the exit code. */
static int runner_params(const char *command, const char *id, json_object **ret) {
        json_object *p;
        int code;

        code = check_runner_id(command, id);
        if (code != CTL_EXIT_OK)
                return code;
        p = json_object_new_object();
        if (!p || ctl_add_member(p, "runner_id", json_object_new_string(id)) < 0) {
                json_object_put(p);
                return ctl_fail_oom(command);
        }
        *ret = p;
        return CTL_EXIT_OK;
}

/* Adds the values of a list option ("a,b" or repeated) to array `list`, each checked
 * against `set` (NULL: any non-empty value) and added once. Returns CTL_EXIT_OK or the exit
 * code. */
static int add_list_values(const char *command, const char *what, const char *value, json_object *list,
                           const char *const *set, size_t n_set) {
        _cleanup_free_ char *copy = strdup(value);
        char *p, *item;
        size_t i;
        int code;

        if (!copy)
                return ctl_fail_oom(command);
        for (p = copy; (item = strsep(&p, ","));) {
                bool seen = false;

                if (isempty(item))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: empty item in '%s'", what, value);
                if (set) {
                        code = ctl_check_choice(command, what, item, set, n_set);
                        if (code != CTL_EXIT_OK)
                                return code;
                }
                for (i = 0; i < json_object_array_length(list) && !seen; i++)
                        seen = streq(json_object_get_string(json_object_array_get_idx(list, i)), item);
                if (!seen && json_object_array_add(list, json_object_new_string(item)) < 0)
                        return ctl_fail_oom(command);
        }
        return CTL_EXIT_OK;
}

/* Collects every occurrence of list option `id` into a new array in *ret (NULL when the
 * option was not given). Returns CTL_EXIT_OK or the exit code. */
static int collect_list(const CtlArgs *args, int id, const char *what, const char *const *set, size_t n_set,
                        json_object **ret) {
        _cleanup_(unref_jsonp) json_object *list = NULL;
        size_t i;
        int code;

        *ret = NULL;
        if (!ctl_opt_given(args, id))
                return CTL_EXIT_OK;
        list = json_object_new_array();
        if (!list)
                return ctl_fail_oom(args->command);
        for (i = 0; i < args->n_opts; i++) {
                if (args->opts[i].id != id)
                        continue;
                code = add_list_values(args->command, what, args->opts[i].arg, list, set, n_set);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        *ret = TAKE_PTR(list);
        return CTL_EXIT_OK;
}

/* Parses a number of seconds in (0, max]. */
static int parse_seconds(const char *command, const char *what, const char *s, double max, double *ret) {
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > max)
                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected seconds, more than 0 and at most %.0f, got '%s'",
                                what, max, s);
        *ret = v;
        return CTL_EXIT_OK;
}

/* The deadline of a call that moves data or waits: none, unless --timeout was given. */
static int long_call_timeout(const Ctl *ctl) {
        return ctl->timeout_given ? ctl->timeout_ms : -1;
}

/* The deadline of a call that waits `seconds` on the daemon's side. */
static int wait_call_timeout(double seconds) {
        double ms = seconds * 1000.0 + WAIT_CALL_MARGIN_MS;

        return ms >= (double) INT_MAX ? -1 : (int) ms;
}

/* The last path component of path, without trailing slashes, in a new string ("" for "/"
 * or ""). NULL on OOM. */
static char *base_name(const char *path) {
        size_t l = strlen(path), start;

        while (l > 1 && path[l - 1] == '/')
                l--;
        start = l;
        while (start > 0 && path[start - 1] != '/')
                start--;
        if (l == 1 && path[0] == '/')
                return strdup("");
        return strndup(path + start, l - start);
}

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

/* Whether a file name from the daemon can be used as a name in a directory: not empty, no
 * '/', not "." or "..", no control characters. */
static bool file_name_is_safe(const char *name) {
        const unsigned char *p;

        if (isempty(name) || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return false;
        for (p = (const unsigned char *) name; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* Prints the warnings of a result on stderr. */
static void print_warnings(json_object *result) {
        json_object *w = ctl_member(result, "warnings");
        size_t i;

        for (i = 0; i < json_array_len(w); i++) {
                const char *text = json_object_get_string(json_object_array_get_idx(w, i));

                if (!isempty(text))
                        ctl_warning(text);
        }
}

/* Prints "Label:" padded to `width`, then the sanitized text. */
static void print_label(const char *label, const char *text, size_t width) {
        _cleanup_free_ char *l = NULL;

        if (asprintf(&l, "%s:", label) < 0)
                return;
        output_padded(stdout, l, width + 1, OUTPUT_ALIGN_LEFT);
        (void) fputs(" ", stdout);
        output_sanitized(stdout, isempty(text) ? "-" : text);
        (void) putchar('\n');
}

/* Writes a command to run: "  avatarctl [--socket P] WORDS..." (each word quoted as the shell
 * needs), and a newline. The word list ends with NULL. */
static void print_command(FILE *f, const Ctl *ctl, const char *first, ...) {
        const char *w;
        va_list ap;

        (void) fputs("  ", f);
        ctl_print_command_start(f, ctl);
        va_start(ap, first);
        for (w = first; w; w = va_arg(ap, const char *)) {
                if (w != first)
                        (void) fputc(' ', f);
                ctl_print_shell_word(f, w);
        }
        va_end(ap);
        (void) fputc('\n', f);
}

/* Creates an output file: O_CREAT|O_EXCL, or with `force` O_TRUNC (an existing file is
 * replaced); mode 0644 less the umask. Returns the descriptor, or a negative errno (-EEXIST
 * for an existing file without force). *ret_created tells whether the file is new (and so
 * to be removed when what goes into it fails). */
static int create_output(const char *path, bool force, bool *ret_created) {
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, OUTPUT_FILE_MODE);
        if (fd >= 0) {
                *ret_created = true;
                return fd;
        }
        if (errno != EEXIST || !force)
                return negative_errno();
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        *ret_created = false;
        return fd;
}

/* Reports an output file that cannot be created. Returns the exit code: CTL_EXIT_CONFLICT
 * for an existing file (without --force), CTL_EXIT_FAILED otherwise. */
static int fail_output(const char *command, const char *path, int r) {
        if (r == -EEXIST)
                return ctl_fail(CTL_EXIT_CONFLICT, command, "%s exists; not overwritten (use --force to replace it)",
                                path);
        return ctl_fail(CTL_EXIT_FAILED, command, "cannot create %s: %s", path, strerror(-r));
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
static int write_output(const char *command, const char *path, const void *data, size_t len, bool force) {
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

/* Writes text to stdout, with control characters other than newline and tab replaced when
 * stdout is a terminal (the daemon's text is untrusted). */
static void print_text(const Ctl *ctl, const char *text, size_t len) {
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

/* Formats seconds since the epoch as local time ("2026-05-01 11:12:03") into buf. */
static void format_epoch(json_object *v, char *buf, size_t size) {
        struct tm tm;
        time_t t;

        if (!json_object_is_type(v, json_type_int)) {
                (void) snprintf(buf, size, "-");
                return;
        }
        t = (time_t) json_object_get_int64(v);
        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                (void) snprintf(buf, size, "%" PRId64, json_object_get_int64(v));
}

/* ---- interruption ------------------------------------------------------------------- */

/* What SIGINT (Ctrl-C) or SIGTERM prints while a long call is in flight: how to reattach.
 * File scope for the handler, which only write()s it and re-raises the signal (both
 * async-signal-safe); avatarctl is one thread. */
static char interrupt_text[4096];
static volatile sig_atomic_t interrupt_len;

/* Prints the prepared text, then lets the signal take its default effect (SA_RESETHAND
 * already reinstated it; raise() delivers it once the handler returns). */
static void on_interrupt(int sig) {
        if (interrupt_len > 0) {
                ssize_t k = write(STDERR_FILENO, interrupt_text, (size_t) interrupt_len);

                (void) k;
        }
        (void) raise(sig);
}

/* Sets what an interruption prints (the text of a memstream) and installs the handler. The
 * handler is installed even when the signal was ignored, so that a run started in the
 * background can still be told to stop and say how to reattach. */
static void interrupt_set(const Ctl *ctl, const char *text) {
        struct sigaction sa = { .sa_handler = on_interrupt, .sa_flags = SA_RESETHAND };
        size_t n = 0;

        interrupt_len = 0;
        if (ctl->stderr_tty)
                interrupt_text[n++] = '\n'; /* after a line being redrawn, or the ^C echo */
        n += (size_t) snprintf(interrupt_text + n, sizeof(interrupt_text) - n, "%s", text);
        interrupt_len = (sig_atomic_t) MIN(n, sizeof(interrupt_text) - 1);
        (void) sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
}

/* Back to the default dispositions. */
static void interrupt_clear(void) {
        interrupt_len = 0;
        (void) signal(SIGINT, SIG_DFL);
        (void) signal(SIGTERM, SIG_DFL);
}

/* Prepares the text for an interruption while a runner is in use: before its run
 * (`started` false) the runner stays in the daemon; once it runs, the run continues on the
 * server and the text gives the commands that reattach to it (`set_name`, the run's id, may
 * be NULL when unknown). */
static void interrupt_for_run(const Ctl *ctl, const char *runner_id, const char *set_name, bool started) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return;
        if (!started) {
                (void) fputs("avatarctl: interrupted; the runner stays in the daemon. Go on with it, or close it:\n", f);
                print_command(f, ctl, "runner", "status", runner_id, NULL);
                print_command(f, ctl, "runner", "close", runner_id, NULL);
        } else {
                (void) fputs("avatarctl: interrupted; the run continues on the server. Reattach with:\n", f);
                print_command(f, ctl, "runner", "wait", runner_id, NULL);
                if (set_name) {
                        (void) fputs("or, when the daemon no longer holds the runner:\n", f);
                        print_command(f, ctl, "runs", "load", set_name, NULL);
                }
        }
        if (fclose(f) == 0 && text)
                interrupt_set(ctl, text);
}

/* ---- printing runners and jobs ------------------------------------------------------- */

/* The columns of a runner's jobs. */
static const OutputColumn runner_job_columns[] = {
        { .header = "JOB", .key = "parameters_name" },
        { .header = "STATUS", .key = "status", .format = output_format_dash },
        { .header = "PROGRESS", .key = "progress", .align = OUTPUT_ALIGN_RIGHT, .format = output_format_progress },
        { .header = "NAME", .key = "name" },
        { .header = "EXCEPTION", .key = "exception", .format = output_format_dash },
};

/* Prints a jobs array as a table (nothing for an empty one). Returns 0 or -ENOMEM. */
static int print_jobs_table(json_object *jobs) {
        if (json_array_len(jobs) == 0)
                return 0;
        return output_table(stdout, jobs, runner_job_columns, ELEMENTSOF(runner_job_columns));
}

/* Joins the strings of an array with ", " into a new string ("" when empty). */
static char *join_strings(json_object *a) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0, i;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        for (i = 0; i < json_array_len(a); i++)
                (void) fprintf(f, "%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(a, i)) ?: "?");
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(text);
}

/* Prints a RunnerStatus for people: its fields, its jobs as a table, its warnings. Returns
 * 0 or -ENOMEM. */
static int print_runner_status(json_object *st) {
        _cleanup_free_ char *tables = NULL;
        char created[64], updated[64], owner[32] = "-";
        json_object *v;

        if (!json_object_is_type(st, json_type_object))
                return output_tree(stdout, st, 0);
        tables = join_strings(ctl_member(st, "tables"));
        if (!tables)
                return -ENOMEM;
        format_epoch(ctl_member(st, "created_at"), created, sizeof(created));
        format_epoch(ctl_member(st, "updated_at"), updated, sizeof(updated));
        v = ctl_member(st, "owner");
        if (json_object_is_type(v, json_type_int))
                (void) snprintf(owner, sizeof(owner), "uid %" PRId64, json_object_get_int64(v));

        print_label("Runner", ctl_member_string(st, "runner_id"), 12);
        print_label("Name", ctl_member_string(st, "display_name"), 12);
        print_label("State", ctl_member_string(st, "state"), 12);
        print_label("Run id", ctl_member_string(st, "set_name"), 12);
        if (ctl_member_string(st, "previous_set_name"))
                print_label("Previous run", ctl_member_string(st, "previous_set_name"), 12);
        print_label("Tables", tables, 12);
        print_label("Owner", owner, 12);
        if (ctl_member(st, "created_at"))
                print_label("Created", created, 12);
        if (ctl_member(st, "updated_at"))
                print_label("Updated", updated, 12);
        if (ctl_member_string(st, "last_error"))
                print_label("Last error", ctl_member_string(st, "last_error"), 12);
        if (json_array_len(ctl_member(st, "jobs")) > 0) {
                (void) putchar('\n');
                if (print_jobs_table(ctl_member(st, "jobs")) < 0)
                        return -ENOMEM;
        }
        print_warnings(st);
        return 0;
}

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
                { .header = "STATE", .key = "state" },
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

/* The shape of the commands that take a runner id and nothing else: calls `method` with
 * {"runner_id"} and prints its result (JSON, or with `human`). */
static int call_runner_and_print(Ctl *ctl, const CtlArgs *args, const char *method, ctl_print_fn human) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_call_and_print(ctl, method, params, human, args->pos[0]);
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

/* An input file for runner.add_table: "-" is stdin (passed as it is). */
typedef struct InputFile {
        const char *path;
        int fd;                   /* borrowed for stdin, owned otherwise */
        bool owned;
        uint64_t size;            /* when a regular file, else 0 */
        char *name;               /* the basename, NULL for stdin */
} InputFile;

/* Closes and frees an input file. */
static void input_file_done(InputFile *in) {
        if (in->owned)
                in->fd = safe_close(in->fd);
        in->name = mfree(in->name);
}

/* Opens a table to upload, read-only. Returns CTL_EXIT_OK or the exit code. */
static int input_file_open(const char *command, const char *path, InputFile *ret) {
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

/* Sets up a progress display for the calls of one command: the mode for the command's
 * output, the runner whose notifications count, the notification callback. Returns
 * CTL_EXIT_OK (with *ret NULL when nothing is shown) or the exit code. */
static int progress_attach(Ctl *ctl, const char *runner_id, Progress **ret) {
        Progress *p = NULL;
        ProgressMode mode = progress_mode_for(ctl);
        int code;

        *ret = NULL;
        code = ctl_connect(ctl);
        if (code != CTL_EXIT_OK)
                return code;
        if (mode == PROGRESS_OFF)
                return CTL_EXIT_OK;
        if (progress_new(stderr, mode, &p) < 0 || progress_set_runner(p, runner_id) < 0) {
                progress_free(p);
                return ctl_fail_oom("progress");
        }
        avatar_client_set_notification_callback(ctl->client, progress_on_notification, p);
        *ret = p;
        return CTL_EXIT_OK;
}

/* Ends a progress display set up by progress_attach(). Returns NULL. */
static Progress *progress_detach(Ctl *ctl, Progress *p) {
        if (!p)
                return NULL;
        if (ctl->client)
                avatar_client_set_notification_callback(ctl->client, NULL, NULL);
        return progress_free(p);
}

/* Uploads a table: runner.add_table with the descriptors of `in` (and `avatar`, may be
 * NULL), showing progress. `params` holds everything but the descriptors and file names.
 * Returns CTL_EXIT_OK with the result in *ret_result, or the exit code (the failure
 * reported). */
static int upload_table(Ctl *ctl, const char *command, json_object *params, const InputFile *in,
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

/* ---- runner set-parameters, update-parameters, advise --------------------------------- */

/* How a parameter's option value is read. */
typedef enum ParamType {
        PARAM_INT,           /* a decimal integer in [min, max] */
        PARAM_NUMBER,        /* a number in (min, max] or [min, max] */
        PARAM_BOOL,          /* --x (true), --x=true|false|yes|no|1|0 */
        PARAM_STRING,        /* a non-empty string */
        PARAM_ENUM,          /* one of `values` */
        PARAM_LIST,          /* comma-separated strings; repeatable */
        PARAM_WEIGHTS,       /* COL=W[,COL=W...]; repeatable */
        PARAM_AUGMENTATION,  /* a number > 0, KEY=W[,KEY=W...], or a string */
        _PARAM_TYPE_MAX,
        _PARAM_TYPE_INVALID = -EINVAL,
} ParamType;

typedef struct ParamSpec {
        const char *name;            /* the param (snake_case); the option is its kebab-case */
        ParamType type;
        double min, max;             /* PARAM_INT, PARAM_NUMBER */
        bool min_exclusive;          /* PARAM_NUMBER: min itself is refused */
        const char *const *values;   /* PARAM_ENUM */
        size_t n_values;
} ParamSpec;

/* The params of runner.set_parameters, in the contract's order. */
enum {
        P_K,
        P_NCP,
        P_USE_CATEGORICAL_REDUCTION,
        P_COLUMN_WEIGHTS,
        P_EXCLUDE_VARIABLE_NAMES,
        P_EXCLUDE_REPLACEMENT_STRATEGY,
        P_EXCLUDE_VARIABLE_METHOD,
        P_IMPUTATION_METHOD,
        P_IMPUTATION_K,
        P_IMPUTATION_TRAINING_FRACTION,
        P_IMPUTATION_RETURN_DATA_IMPUTED,
        P_OPEN_DP_EPSILON,
        P_FAST_DP_EPSILON,
        P_TIME_SERIES_NF,
        P_TIME_SERIES_PROJECTION_TYPE,
        P_TIME_SERIES_NB_POINTS,
        P_TIME_SERIES_METHOD,
        P_KNOWN_VARIABLES,
        P_TARGET,
        P_QUANTILE_THRESHOLD,
        P_DATA_AUGMENTATION_STRATEGY,
        P_DATA_AUGMENTATION_TARGET_COLUMN,
        P_DATA_AUGMENTATION_SHOULD_ANONYMIZE_ORIGINAL_TABLE,
        P_USE_EXCLUDED_VARIABLES_IN_METRICS,
        _P_MAX,
};

/* A ParamSpec of each kind. */
#define P_PLAIN(n, t) { .name = n, .type = t, .min = 0, .max = 0, .min_exclusive = false, .values = NULL, .n_values = 0 }
#define P_INT(n, lo, hi) { .name = n, .type = PARAM_INT, .min = lo, .max = hi, .min_exclusive = false, .values = NULL, \
                           .n_values = 0 }
#define P_ABOVE(n, lo, hi) { .name = n, .type = PARAM_NUMBER, .min = lo, .max = hi, .min_exclusive = true, \
                             .values = NULL, .n_values = 0 }
#define P_ENUM(n, set) { .name = n, .type = PARAM_ENUM, .min = 0, .max = 0, .min_exclusive = false, .values = set, \
                         .n_values = ELEMENTSOF(set) }

static const ParamSpec param_specs[_P_MAX] = {
        [P_K] = P_INT("k", 2, 1000),
        [P_NCP] = P_INT("ncp", 1, 10000),
        [P_USE_CATEGORICAL_REDUCTION] = P_PLAIN("use_categorical_reduction", PARAM_BOOL),
        [P_COLUMN_WEIGHTS] = P_PLAIN("column_weights", PARAM_WEIGHTS),
        [P_EXCLUDE_VARIABLE_NAMES] = P_PLAIN("exclude_variable_names", PARAM_LIST),
        [P_EXCLUDE_REPLACEMENT_STRATEGY] = P_ENUM("exclude_replacement_strategy", exclude_methods),
        [P_EXCLUDE_VARIABLE_METHOD] = P_ENUM("exclude_variable_method", exclude_methods),
        [P_IMPUTATION_METHOD] = P_ENUM("imputation_method", imputation_methods),
        [P_IMPUTATION_K] = P_INT("imputation_k", 1, INT_MAX),
        [P_IMPUTATION_TRAINING_FRACTION] = P_ABOVE("imputation_training_fraction", 0, 1),
        [P_IMPUTATION_RETURN_DATA_IMPUTED] = P_PLAIN("imputation_return_data_imputed", PARAM_BOOL),
        [P_OPEN_DP_EPSILON] = P_ABOVE("open_dp_epsilon", 0, INFINITY),
        [P_FAST_DP_EPSILON] = P_ABOVE("fast_dp_epsilon", 0, INFINITY),
        [P_TIME_SERIES_NF] = P_INT("time_series_nf", 1, INT_MAX),
        [P_TIME_SERIES_PROJECTION_TYPE] = P_ENUM("time_series_projection_type", projection_types),
        [P_TIME_SERIES_NB_POINTS] = P_INT("time_series_nb_points", 1, INT_MAX),
        [P_TIME_SERIES_METHOD] = P_ENUM("time_series_method", time_series_methods),
        [P_KNOWN_VARIABLES] = P_PLAIN("known_variables", PARAM_LIST),
        [P_TARGET] = P_PLAIN("target", PARAM_STRING),
        [P_QUANTILE_THRESHOLD] = P_INT("quantile_threshold", 0, INT_MAX),
        [P_DATA_AUGMENTATION_STRATEGY] = P_PLAIN("data_augmentation_strategy", PARAM_AUGMENTATION),
        [P_DATA_AUGMENTATION_TARGET_COLUMN] = P_PLAIN("data_augmentation_target_column", PARAM_STRING),
        [P_DATA_AUGMENTATION_SHOULD_ANONYMIZE_ORIGINAL_TABLE] =
                P_PLAIN("data_augmentation_should_anonymize_original_table", PARAM_BOOL),
        [P_USE_EXCLUDED_VARIABLES_IN_METRICS] = P_PLAIN("use_excluded_variables_in_metrics", PARAM_BOOL),
};

#define PARAM_OPTION(id, opt, has_arg) { opt, has_arg, NULL, CTL_OPT_PARAMETER + (id) }

/* The options of set-parameters and update-parameters: the kebab-case of each param. */
const struct option ctl_parameter_options[] = {
        PARAM_OPTION(P_K, "k", required_argument),
        PARAM_OPTION(P_NCP, "ncp", required_argument),
        PARAM_OPTION(P_USE_CATEGORICAL_REDUCTION, "use-categorical-reduction", optional_argument),
        PARAM_OPTION(P_COLUMN_WEIGHTS, "column-weights", required_argument),
        PARAM_OPTION(P_EXCLUDE_VARIABLE_NAMES, "exclude-variable-names", required_argument),
        PARAM_OPTION(P_EXCLUDE_REPLACEMENT_STRATEGY, "exclude-replacement-strategy", required_argument),
        PARAM_OPTION(P_EXCLUDE_VARIABLE_METHOD, "exclude-variable-method", required_argument),
        PARAM_OPTION(P_IMPUTATION_METHOD, "imputation-method", required_argument),
        PARAM_OPTION(P_IMPUTATION_K, "imputation-k", required_argument),
        PARAM_OPTION(P_IMPUTATION_TRAINING_FRACTION, "imputation-training-fraction", required_argument),
        PARAM_OPTION(P_IMPUTATION_RETURN_DATA_IMPUTED, "imputation-return-data-imputed", optional_argument),
        PARAM_OPTION(P_OPEN_DP_EPSILON, "open-dp-epsilon", required_argument),
        PARAM_OPTION(P_FAST_DP_EPSILON, "fast-dp-epsilon", required_argument),
        PARAM_OPTION(P_TIME_SERIES_NF, "time-series-nf", required_argument),
        PARAM_OPTION(P_TIME_SERIES_PROJECTION_TYPE, "time-series-projection-type", required_argument),
        PARAM_OPTION(P_TIME_SERIES_NB_POINTS, "time-series-nb-points", required_argument),
        PARAM_OPTION(P_TIME_SERIES_METHOD, "time-series-method", required_argument),
        PARAM_OPTION(P_KNOWN_VARIABLES, "known-variables", required_argument),
        PARAM_OPTION(P_TARGET, "target", required_argument),
        PARAM_OPTION(P_QUANTILE_THRESHOLD, "quantile-threshold", required_argument),
        PARAM_OPTION(P_DATA_AUGMENTATION_STRATEGY, "data-augmentation-strategy", required_argument),
        PARAM_OPTION(P_DATA_AUGMENTATION_TARGET_COLUMN, "data-augmentation-target-column", required_argument),
        PARAM_OPTION(P_DATA_AUGMENTATION_SHOULD_ANONYMIZE_ORIGINAL_TABLE,
                     "data-augmentation-should-anonymize-original-table", optional_argument),
        PARAM_OPTION(P_USE_EXCLUDED_VARIABLES_IN_METRICS, "use-excluded-variables-in-metrics", optional_argument),
        { "json",  required_argument, NULL, CTL_OPT_PARAMS_JSON },
        { "unset", required_argument, NULL, CTL_OPT_UNSET },
        {}
};

/* "--name" of a param, for messages. */
static void option_name(const ParamSpec *s, char *buf, size_t size) {
        size_t i;

        (void) snprintf(buf, size, "--%s", s->name);
        for (i = 2; buf[i]; i++)
                if (buf[i] == '_')
                        buf[i] = '-';
}

/* The param named `name` (snake_case or kebab-case, with or without "--"), or NULL. */
static const ParamSpec *param_by_name(const char *name) {
        size_t i, k;

        if (startswith(name, "--"))
                name += 2;
        for (i = 0; i < _P_MAX; i++) {
                const char *s = param_specs[i].name;

                for (k = 0; s[k] && (name[k] == s[k] || (name[k] == '-' && s[k] == '_')); k++)
                        ;
                if (s[k] == '\0' && name[k] == '\0')
                        return &param_specs[i];
        }
        return NULL;
}

/* Parses a number (finite). Returns true with *ret set. */
static bool parse_number(const char *s, double *ret) {
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
                return false;
        *ret = v;
        return true;
}

/* Adds "KEY=W[,KEY=W...]" to the object `map`. Returns CTL_EXIT_OK or the exit code. */
static int add_weights(const char *command, const char *what, const char *value, json_object *map) {
        _cleanup_free_ char *copy = strdup(value);
        char *p, *item;

        if (!copy)
                return ctl_fail_oom(command);
        for (p = copy; (item = strsep(&p, ","));) {
                char *eq = strrchr(item, '=');
                double w;

                if (!eq || eq == item || !parse_number(eq + 1, &w))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected COLUMN=NUMBER[,...], got '%s'", what, value);
                *eq = '\0';
                if (ctl_add_member(map, item, json_object_new_double(w)) < 0)
                        return ctl_fail_oom(command);
        }
        return CTL_EXIT_OK;
}

/* Sets a param from its option value, in params (repeated list and map options add to what
 * is there). Returns CTL_EXIT_OK or the exit code. */
static int apply_param(const char *command, const ParamSpec *s, const char *arg, json_object *params) {
        json_object *cur = ctl_member(params, s->name), *v = NULL;
        char what[96];
        double d;
        long long n;
        int code;

        option_name(s, what, sizeof(what));
        switch (s->type) {
        case PARAM_INT:
                code = ctl_parse_int(what, arg, (long long) s->min, (long long) s->max, &n);
                if (code != CTL_EXIT_OK)
                        return code;
                v = json_object_new_int64(n);
                break;
        case PARAM_NUMBER:
                if (!parse_number(arg, &d) || d < s->min || (s->min_exclusive && !(d > s->min)) || d > s->max) {
                        if (isinf(s->max))
                                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected a number %s %g, got '%s'", what,
                                                s->min_exclusive ? "above" : "of at least", s->min, arg);
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected a number %s %g and at most %g, got '%s'",
                                        what, s->min_exclusive ? "above" : "of at least", s->min, s->max, arg);
                }
                v = json_object_new_double(d);
                break;
        case PARAM_BOOL:
                if (!arg || streq(arg, "true") || streq(arg, "yes") || streq(arg, "1"))
                        v = json_object_new_boolean(true);
                else if (streq(arg, "false") || streq(arg, "no") || streq(arg, "0"))
                        v = json_object_new_boolean(false);
                else
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected true or false, got '%s'", what, arg);
                break;
        case PARAM_STRING:
                if (isempty(arg))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: the value is empty", what);
                v = json_object_new_string(arg);
                break;
        case PARAM_ENUM:
                code = ctl_check_choice(command, what, arg, s->values, s->n_values);
                if (code != CTL_EXIT_OK)
                        return code;
                v = json_object_new_string(arg);
                break;
        case PARAM_LIST:
                if (!json_object_is_type(cur, json_type_array)) {
                        v = json_object_new_array();
                        if (!v || ctl_add_member(params, s->name, v) < 0)
                                return ctl_fail_oom(command);
                        cur = v;
                }
                return add_list_values(command, what, arg, cur, NULL, 0);
        case PARAM_WEIGHTS:
                if (!json_object_is_type(cur, json_type_object)) {
                        v = json_object_new_object();
                        if (!v || ctl_add_member(params, s->name, v) < 0)
                                return ctl_fail_oom(command);
                        cur = v;
                }
                return add_weights(command, what, arg, cur);
        case PARAM_AUGMENTATION:
                if (isempty(arg))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: the value is empty", what);
                if (parse_number(arg, &d)) {
                        if (!(d > 0))
                                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected a number above 0, got '%s'", what, arg);
                        v = json_object_new_double(d);
                } else if (strchr(arg, '=')) {
                        v = json_object_new_object();
                        if (!v)
                                return ctl_fail_oom(command);
                        code = add_weights(command, what, arg, v);
                        if (code != CTL_EXIT_OK) {
                                json_object_put(v);
                                return code;
                        }
                } else
                        v = json_object_new_string(arg);
                break;
        default:
                assert(false);
                return CTL_EXIT_FAILED;
        }
        if (ctl_add_member(params, s->name, v) < 0)
                return ctl_fail_oom(command);
        return CTL_EXIT_OK;
}

/* Builds the params of set_parameters (`update` false) or update_parameters: --json first
 * (the whole param object), then each option in command-line order, then --unset. Returns
 * CTL_EXIT_OK with the new params in *ret, or the exit code. */
static int parameters_params(const CtlArgs *args, bool update, json_object **ret) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *json_text = ctl_opt(args, CTL_OPT_PARAMS_JSON);
        size_t i;
        int code, r;

        if (!update && ctl_opt_given(args, CTL_OPT_UNSET))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--unset is for runner update-parameters");
        if (json_text) {
                r = json_parse_strict(json_text, strlen(json_text), 32, &params);
                if (r == -ENOMEM)
                        return ctl_fail_oom(args->command);
                if (r < 0 || !json_object_is_type(params, json_type_object))
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--json: expected a JSON object of parameters");
                json_object_object_del(params, "runner_id");
                json_object_object_del(params, "table_name");
        } else {
                params = json_object_new_object();
                if (!params)
                        return ctl_fail_oom(args->command);
        }
        for (i = 0; i < args->n_opts; i++) {
                int id = args->opts[i].id - CTL_OPT_PARAMETER;

                if (id < 0 || id >= _P_MAX)
                        continue;
                code = apply_param(args->command, &param_specs[id], args->opts[i].arg, params);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        for (i = 0; i < args->n_opts; i++) {
                const ParamSpec *s;

                if (args->opts[i].id != CTL_OPT_UNSET)
                        continue;
                s = param_by_name(args->opts[i].arg);
                if (!s)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--unset: no parameter named '%s'",
                                        args->opts[i].arg);
                if (json_object_object_add(params, s->name, NULL) < 0)
                        return ctl_fail_oom(args->command);
        }
        if (update && json_object_object_length(params) == 0)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "nothing to change: give parameter options or --unset NAME");
        *ret = TAKE_PTR(params);
        return CTL_EXIT_OK;
}

/* Prints an object's members as "  name  value" lines, names as they are (they are the
 * params' names, or a table's columns), values as output_value_text() writes them. Returns 0
 * or -ENOMEM. */
static int print_members(json_object *o, unsigned indent) {
        size_t width = 0;

        json_object_object_foreach(o, k0, v0) {
                (void) v0;
                width = MAX(width, output_width(k0));
        }
        json_object_object_foreach(o, key, v) {
                _cleanup_free_ char *text = NULL;
                int r;

                r = output_value_text(v, &text);
                if (r < 0)
                        return r;
                (void) printf("%*s", (int) indent, "");
                output_padded(stdout, key, width, OUTPUT_ALIGN_LEFT);
                (void) fputs("  ", stdout);
                output_sanitized(stdout, text);
                (void) putchar('\n');
        }
        return 0;
}

/* Prints a ParametersResult for people. */
static int print_parameters(Ctl *ctl, json_object *result, void *userdata) {
        json_object *params = ctl_member(result, "parameters");
        int r;

        (void) ctl;
        (void) userdata;
        (void) fputs("Parameters of table ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "table_name") ?: "?");
        if (json_object_len(params) == 0)
                (void) puts(": none");
        else {
                (void) puts(":");
                r = print_members(params, 2);
                if (r < 0)
                        return r;
        }
        print_warnings(result);
        return 0;
}

/* Calls and prints a method whose result carries warnings: the warnings go to stderr in
 * both output modes (a script does not read them from the JSON). */
static int call_print_warn(Ctl *ctl, const char *method, json_object *params, int timeout_ms,
                           ctl_print_fn human, void *userdata) {
        _cleanup_(unref_jsonp) json_object *result = NULL;
        int code;

        code = ctl_call_full(ctl, method, params, NULL, 0, timeout_ms, &result, NULL, NULL);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl->json)
                print_warnings(result);
        return ctl_print_result(ctl, method, result, human, userdata);
}

/* set-parameters and update-parameters. */
static int set_or_update(Ctl *ctl, const CtlArgs *args, bool update) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *p = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &p);
        if (code != CTL_EXIT_OK)
                return code;
        code = check_name(args->command, "TABLE", args->pos[1], TABLE_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        code = parameters_params(args, update, &params);
        if (code != CTL_EXIT_OK)
                return code;
        /* runner_id and table_name first, as a reader of the request expects. */
        if (ctl_add_member(p, "table_name", json_object_new_string(args->pos[1])) < 0)
                return ctl_fail_oom(args->command);
        json_object_object_foreach(params, key, v)
                if (json_object_object_add(p, key, json_object_get(v)) < 0)
                        return ctl_fail_oom(args->command);
        return call_print_warn(ctl, update ? "runner.update_parameters" : "runner.set_parameters", p, ctl->timeout_ms,
                               print_parameters, NULL);
}

/* "avatarctl runner set-parameters RUNNER TABLE [PARAMETERS]": runner.set_parameters. */
int ctl_cmd_runner_set_parameters(Ctl *ctl, const CtlArgs *args) {
        return set_or_update(ctl, args, false);
}

/* "avatarctl runner update-parameters RUNNER TABLE [PARAMETERS] [--unset NAME]...":
 * runner.update_parameters. */
int ctl_cmd_runner_update_parameters(Ctl *ctl, const CtlArgs *args) {
        return set_or_update(ctl, args, true);
}

/* Prints runner.advise_parameters for people. */
static int print_advice(Ctl *ctl, json_object *result, void *userdata) {
        json_object *params = ctl_member(result, "parameters");
        int r;

        (void) ctl;
        (void) userdata;
        (void) fputs("Applied the server's advice to runner ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "runner_id") ?: "?");
        (void) puts(":");
        if (!json_object_is_type(params, json_type_object))
                r = output_tree(stdout, result, 2);
        else {
                /* {table: {param: value}} */
                r = 0;
                json_object_object_foreach(params, table, tp) {
                        (void) fputs("  ", stdout);
                        output_sanitized(stdout, table);
                        (void) puts(":");
                        r = json_object_is_type(tp, json_type_object) ? print_members(tp, 4) : output_tree(stdout, tp, 4);
                        if (r < 0)
                                break;
                }
        }
        if (r < 0)
                return r;
        print_warnings(result);
        return 0;
}

/* "avatarctl runner advise RUNNER [--table T]": runner.advise_parameters (it runs an advice
 * job upstream and waits for it). */
int ctl_cmd_runner_advise(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *table = ctl_opt(args, CTL_OPT_TABLE);
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (table) {
                code = check_name(args->command, "--table", table, TABLE_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
                if (ctl_add_member(params, "table_name", json_object_new_string(table)) < 0)
                        return ctl_fail_oom(args->command);
        }
        return call_print_warn(ctl, "runner.advise_parameters", params, long_call_timeout(ctl), print_advice, NULL);
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
static int wait_runner(Ctl *ctl, const char *runner_id, const char *set_name, json_object *jobs, double timeout_s,
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
        interrupt_for_run(ctl, runner_id, set_name, true);
        code = ctl_call_quiet(ctl, "runner.wait", params, NULL, 0, deadline, &result, &e, &r);
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
static void report_wait_timeout(const Ctl *ctl, const char *runner_id, double timeout_s) {
        ctl_before_message();
        (void) fprintf(stderr, "avatarctl: the jobs are not done after %g s; they continue on the server. Wait again with:\n",
                       timeout_s);
        print_command(stderr, ctl, "runner", "wait", runner_id, NULL);
}

/* Whether a wait's result says it ended at the deadline. */
static bool wait_timed_out(json_object *result) {
        return json_object_get_boolean(ctl_member(result, "timed_out")) ||
               !json_object_get_boolean(ctl_member(result, "done"));
}

/* "avatarctl runner wait RUNNER [--jobs LIST] [--timeout S]": runner.wait. */
int ctl_cmd_runner_wait(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *jobs = NULL, *result = NULL;
        const char *t = ctl_opt(args, CTL_OPT_WAIT_TIMEOUT);
        double timeout_s = WAIT_TIMEOUT_DEFAULT_S;
        int code;

        code = check_runner_id(args->command, args->pos[0]);
        if (code != CTL_EXIT_OK)
                return code;
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", runner_jobs, ELEMENTSOF(runner_jobs), &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        if (t) {
                code = parse_seconds(args->command, "--timeout", t, WAIT_TIMEOUT_MAX_S, &timeout_s);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        code = wait_runner(ctl, args->pos[0], NULL, jobs, timeout_s, NULL, NULL, &result, NULL);
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
static const ResultKind *result_kind_named(const char *result) {
        size_t i;

        for (i = 0; result && i < ELEMENTSOF(result_kinds); i++)
                if (streq(result_kinds[i].result, result))
                        return &result_kinds[i];
        return NULL;
}

/* Turns runner.list_results into rows, one per file: {job, status, result, table, index,
 * file_name} where result is runner.download's name for it (null when it has none), table
 * is set for per-table results only and index counts the files that the same download call
 * (result and table) chooses from. Jobs without files get one row without a file. Returns 0
 * with a new array in *ret, or -ENOMEM. */
static int result_rows(json_object *listing, json_object **ret) {
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
static void print_download_command(FILE *f, const Ctl *ctl, const char *runner_id, json_object *row,
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
                { .header = "STATUS", .key = "status", .format = output_format_dash },
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
static int download_into(Ctl *ctl, json_object *params, int fd, const char *shown, Progress *p,
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

/* "avatarctl runner download RUNNER RESULT [--table T] [--index N] [-o FILE|-] [--force]":
 * runner.download into a file avatarctl creates, into stdout (-o -: descriptor 1 as it is,
 * a file or a pipe), or inline. */
int ctl_cmd_runner_download(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *result_name = args->pos[1], *table = ctl_opt(args, CTL_OPT_TABLE),
                   *index = ctl_opt(args, CTL_OPT_INDEX), *out = ctl_opt(args, CTL_OPT_OUTPUT);
        bool force = ctl_opt_given(args, CTL_OPT_FORCE);
        size_t i;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (!result_kind_named(result_name)) {
                const char *names[ELEMENTSOF(result_kinds)];

                for (i = 0; i < ELEMENTSOF(result_kinds); i++)
                        names[i] = result_kinds[i].result;
                return ctl_check_choice(args->command, "RESULT", result_name, names, ELEMENTSOF(names));
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
        if (out && isempty(out))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "-o: the file name is empty");
        if (!out)
                return download_inline(ctl, args->command, params, force);

        if (streq(out, "-")) {
                /* The reports are pdf and docx: bytes a terminal would take as commands. */
                if (ctl->tty && (streq(result_name, "report") || streq(result_name, "report_pia")))
                        return ctl_fail(CTL_EXIT_USAGE, args->command,
                                        "the %s is a binary file: redirect stdout, or use -o FILE", result_name);
                /* stdout as it is (a file, a pipe): nothing else goes there, and no progress
                 * either (the bytes are the output). */
                (void) fflush(stdout);
                return download_into(ctl, params, STDOUT_FILENO, "stdout", NULL, &result);
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

/* "avatarctl runner export-yaml RUNNER [-o FILE|-] [--force]": runner.export_yaml. Without
 * -o the YAML is printed on a terminal and the result is printed as JSON otherwise; -o FILE
 * writes the YAML into a new file, -o - onto stdout as it is. */
int ctl_cmd_runner_export_yaml(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *out = ctl_opt(args, CTL_OPT_OUTPUT), *yaml;
        size_t len;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (out && isempty(out))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "-o: the file name is empty");
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
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", runner_jobs, ELEMENTSOF(runner_jobs), &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        if (jobs && ctl_add_member(params, "jobs", TAKE_PTR(jobs)) < 0)
                return ctl_fail_oom(args->command);
        code = ctl_call(ctl, "runner.delete", params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_finish_deletion(ctl, "runner.delete", result);
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
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *arg = args->pos[0];
        bool by_id = ctl_is_uuid(arg);
        const char *method = by_id ? "manager.create_runner_from_id" : "manager.create_runner_from_name";
        int code;

        if (isempty(arg))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the display name is empty");
        params = json_object_new_object();
        if (!params || ctl_add_member(params, by_id ? "set_name" : "display_name", json_object_new_string(arg)) < 0)
                return ctl_fail_oom(args->command);
        code = ctl_call(ctl, method, params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
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
        char stamp[16] = "";
        struct tm tm;
        time_t now = time(NULL);

        if (localtime_r(&now, &tm))
                (void) strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
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
        const char *set = args->n_pos > 0 ? args->pos[0] : NULL, *runner = ctl_opt(args, CTL_OPT_RUNNER),
                   *t = ctl_opt(args, CTL_OPT_WAIT_TIMEOUT);
        double timeout_s = WAIT_TIMEOUT_DEFAULT_S;
        Watch w = { .ctl = ctl };
        int code, deadline;

        if (!set == !runner)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "give either a run id (SET) or --runner ID");
        if (set && !ctl_is_uuid(set))
                return ctl_fail(CTL_EXIT_USAGE, args->command,
                                "expected a run id (a UUID, see avatarctl runs find NAME), got '%s'", set);
        if (runner) {
                code = check_runner_id(args->command, runner);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        code = collect_list(args, CTL_OPT_JOBS, "--jobs", NULL, 0, &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        if (t) {
                code = parse_seconds(args->command, "--timeout", t, WAIT_TIMEOUT_MAX_S, &timeout_s);
                if (code != CTL_EXIT_OK)
                        return code;
                if (timeout_s < 0.1)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--timeout: at least 0.1 s");
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
