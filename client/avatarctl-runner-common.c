/* SPDX-License-Identifier: MIT */
/*
 * What the runner commands share: argument checks, the params every runner.* call starts
 * from, list options, deadlines, output files, the interruption text that says how to
 * reattach, the progress display, and printing a runner and its jobs. See avatarctl-runner.h.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "jsonrpc.h"

/* Mode of the files avatarctl creates (the umask applies). */
#define OUTPUT_FILE_MODE 0644

/* ---- small helpers ------------------------------------------------------------------ */

/* Checks a runner id argument. */
int check_runner_id(const char *command, const char *id) {
        if (ctl_is_uuid(id))
                return CTL_EXIT_OK;
        return ctl_fail(CTL_EXIT_USAGE, command,
                        "expected a runner id (a UUID, see avatarctl runner list), got '%s'", id);
}

/* Checks a name: 1 to max characters. */
int check_name(const char *command, const char *what, const char *name, size_t max) {
        if (isempty(name) || output_width(name) > max)
                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected 1 to %zu characters", what, max);
        return CTL_EXIT_OK;
}

/* A new params object {"runner_id": id}, in *ret. Returns CTL_EXIT_OK or the exit code. */
int runner_params(const char *command, const char *id, json_object **ret) {
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
int add_list_values(const char *command, const char *what, const char *value, json_object *list,
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
int collect_list(const CtlArgs *args, int id, const char *what, const char *const *set, size_t n_set,
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
int parse_seconds(const char *command, const char *what, const char *s, double max, double *ret) {
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
int long_call_timeout(const Ctl *ctl) {
        return ctl->timeout_given ? ctl->timeout_ms : -1;
}

/* A wait of `seconds`, shortened to the global --timeout when that is given and shorter. */
double capped_wait(const Ctl *ctl, double seconds) {
        if (ctl->timeout_given && ctl->timeout_ms > 0)
                return MIN(seconds, ctl->timeout_ms / 1000.0);
        return seconds;
}

/* The last path component of path, without trailing slashes, in a new string ("" for "/"
 * or ""). NULL on OOM. */
char *base_name(const char *path) {
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

/* Whether a file name from the daemon can be used as a name in a directory: not empty, no
 * '/', not "." or "..", no control characters. */
bool file_name_is_safe(const char *name) {
        const unsigned char *p;

        if (isempty(name) || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return false;
        for (p = (const unsigned char *) name; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* Prints the warnings of a result on stderr. */
void print_warnings(json_object *result) {
        json_object *w = ctl_member(result, "warnings");
        size_t i;

        for (i = 0; i < json_array_len(w); i++) {
                const char *text = json_object_get_string(json_object_array_get_idx(w, i));

                if (!isempty(text))
                        ctl_warning(text);
        }
}

/* Prints "Label:" padded to `width`, then the sanitized text. */
void print_label(const char *label, const char *text, size_t width) {
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
void print_command(FILE *f, const Ctl *ctl, const char *first, ...) {
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
int create_output(const char *path, bool force, bool *ret_created) {
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
int fail_output(const char *command, const char *path, int r) {
        if (r == -EEXIST)
                return ctl_fail(CTL_EXIT_CONFLICT, command, "%s exists; not overwritten (use --force to replace it)",
                                path);
        return ctl_fail(CTL_EXIT_FAILED, command, "cannot create %s: %s", path, strerror(-r));
}

/* Formats seconds since the epoch as output_time() does into buf; "-" when not a number. */
static void format_epoch(json_object *v, char *buf, size_t size) {
        if (!json_object_is_type(v, json_type_int)) {
                (void) snprintf(buf, size, "-");
                return;
        }
        output_time((time_t) json_object_get_int64(v), buf, size);
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
void interrupt_set(const Ctl *ctl, const char *text) {
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
void interrupt_clear(void) {
        interrupt_len = 0;
        (void) signal(SIGINT, SIG_DFL);
        (void) signal(SIGTERM, SIG_DFL);
}

/* Sets what an interruption prints to what `write` writes, with userdata. */
void interrupt_compose(const Ctl *ctl, void (*write)(FILE *f, const void *userdata), const void *userdata) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return;
        write(f, userdata);
        if (fclose(f) == 0 && text)
                interrupt_set(ctl, text);
}

/* What interrupt_for_run() prints about. */
typedef struct RunInterrupt {
        const Ctl *ctl;
        const char *runner_id;
        const char *set_name;
} RunInterrupt;

/* Writes how to reattach to a run that goes on. */
static void write_run_interrupt(FILE *f, const void *userdata) {
        const RunInterrupt *i = userdata;

        (void) fputs("avatarctl: interrupted; the run continues on the server. Reattach with:\n", f);
        print_command(f, i->ctl, "runner", "wait", i->runner_id, NULL);
        if (i->set_name) {
                (void) fputs("or, when the daemon no longer holds the runner:\n", f);
                print_command(f, i->ctl, "runs", "load", i->set_name, NULL);
        }
}

/* Prepares the text for an interruption while a runner runs: the run continues on the
 * server and the text gives the commands that reattach to it (`set_name`, the run's id, may
 * be NULL when unknown). */
void interrupt_for_run(const Ctl *ctl, const char *runner_id, const char *set_name) {
        RunInterrupt i = { .ctl = ctl, .runner_id = runner_id, .set_name = set_name };

        interrupt_compose(ctl, write_run_interrupt, &i);
}

/* Parses --wait-timeout (when given, else `seconds`), shortened to the global --timeout.
 * Returns CTL_EXIT_OK with *ret set, or the exit code. */
int parse_wait_timeout(const Ctl *ctl, const CtlArgs *args, double seconds, double *ret) {
        const char *t = ctl_opt(args, CTL_OPT_WAIT_TIMEOUT);
        int code;

        if (t) {
                code = parse_seconds(args->command, "--wait-timeout", t, WAIT_TIMEOUT_MAX_S, &seconds);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        *ret = capped_wait(ctl, seconds);
        return CTL_EXIT_OK;
}

/* ---- printing runners and jobs ------------------------------------------------------- */

/* The columns of a runner's jobs. */
static const OutputColumn runner_job_columns[] = {
        { .header = "JOB", .key = "parameters_name" },
        { .header = "STATUS", .key = "status", .format = output_format_dash, .status = true },
        { .header = "PROGRESS", .key = "progress", .align = OUTPUT_ALIGN_RIGHT, .format = output_format_progress },
        { .header = "NAME", .key = "name" },
        { .header = "EXCEPTION", .key = "exception", .format = output_format_dash },
};

/* Prints a jobs array as a table (nothing for an empty one). Returns 0 or -ENOMEM. */
int print_jobs_table(json_object *jobs) {
        if (json_array_len(jobs) == 0)
                return 0;
        return output_table(stdout, jobs, runner_job_columns, ELEMENTSOF(runner_job_columns));
}

/* Joins the strings of an array with ", " into a new string ("" when empty). */
char *join_strings(json_object *a) {
        size_t i, n = json_array_len(a);
        _cleanup_free_ const char **v = calloc(MAX(n, (size_t) 1), sizeof(char *));

        if (!v)
                return NULL;
        for (i = 0; i < n; i++)
                v[i] = json_object_get_string(json_object_array_get_idx(a, i)) ?: "?";
        return ctl_join(v, n, ", ", ", ");
}

/* Prints a RunnerStatus for people: its fields, its jobs as a table, its warnings. Returns
 * 0 or -ENOMEM. */
int print_runner_status(json_object *st) {
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

/* ---- calls the commands share -------------------------------------------------------- */

/* The shape of the commands that take a runner id and nothing else: calls `method` with
 * {"runner_id"} and prints its result (JSON, or with `human`). */
int call_runner_and_print(Ctl *ctl, const CtlArgs *args, const char *method, ctl_print_fn human) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_call_and_print(ctl, method, params, human, args->pos[0]);
}

/* Sets up a progress display for the calls of one command: the mode for the command's
 * output, the runner whose notifications count, the notification callback. Returns
 * CTL_EXIT_OK (with *ret NULL when nothing is shown) or the exit code. */
int progress_attach(Ctl *ctl, const char *runner_id, Progress **ret) {
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
Progress *progress_detach(Ctl *ctl, Progress *p) {
        if (!p)
                return NULL;
        if (ctl->client)
                avatar_client_set_notification_callback(ctl->client, NULL, NULL);
        return progress_free(p);
}

/* Calls and prints a method whose result carries warnings: the warnings go to stderr in
 * both output modes (a script does not read them from the JSON). */
int call_print_warn(Ctl *ctl, const char *method, json_object *params, int timeout_ms,
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
