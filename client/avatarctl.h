/* SPDX-License-Identifier: MIT */
/*
 * avatarctl: shared declarations for the command table, the commands and their helpers.
 *
 * A command is a row of a static table (name, usage, summary, options, handler). main()
 * parses the global options, picks the row whose words match the command line (so
 * "apikey create" can sit beside "apikey list"), parses that command's options together with
 * the global ones, checks the number of positional arguments and runs the handler.
 *
 * Handlers return an exit code (enum CtlExit), not an errno: the code depends on the class of
 * the daemon's error, which only the place where a call fails knows. The helpers that fail
 * (ctl_connect(), ctl_call(), ctl_fail()) print the one error line themselves and return the
 * code to pass up.
 */
#pragma once

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "avatar-client.h"
#include "macro.h"

/* For _cleanup_(unref_jsonp): drops a json-c reference (NULL-safe). */
static inline void unref_jsonp(json_object **p) {
        json_object_put(*p);
}

/* Adds v (taken, also on failure) as member `key` of object o. A NULL v means an allocation
 * failed, never a JSON null. Returns 0 or -ENOMEM. */
static inline int ctl_add_member(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* A member of an object (borrowed), or NULL when absent, null, or o is not an object. */
static inline json_object *ctl_member(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

/* A string member, or NULL. */
static inline const char *ctl_member_string(json_object *o, const char *key) {
        json_object *v = ctl_member(o, key);

        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The length of an array member; 0 when it is not an array. */
static inline size_t ctl_member_length(json_object *o, const char *key) {
        json_object *v = ctl_member(o, key);

        return json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
}

/* The documented exit codes (avatarctl --help, avatarctl(1)). */
typedef enum CtlExit {
        CTL_EXIT_OK = 0,          /* success */
        CTL_EXIT_FAILED = 1,      /* the call failed (an error not covered below) */
        CTL_EXIT_USAGE = 2,       /* usage error, invalid arguments or params */
        CTL_EXIT_UNREACHABLE = 3, /* cannot reach the daemon (connect failed, connection lost) */
        CTL_EXIT_TIMEOUT = 4,     /* --timeout expired, or the daemon's timeout class */
        CTL_EXIT_PERMISSION = 5,  /* socket permission denied, or class permission_denied */
        CTL_EXIT_NOT_FOUND = 6,   /* not found */
        CTL_EXIT_UPSTREAM = 7,    /* the Avatar server or storage failed or refused */
        CTL_EXIT_JOB_FAILED = 8,  /* an upstream job ended in error */
        CTL_EXIT_CONFLICT = 9,    /* conflict, ambiguous or invalid state */
        CTL_EXIT_OVERLOADED = 10, /* the daemon is overloaded or shutting down */
} CtlExit;

/* Most command options one command line may carry (occurrences: "--type a=int" given forty
 * times counts forty). */
#define CTL_OPTS_MAX 256

/* Most options one command defines (its struct option array, terminator excluded). */
#define CTL_COMMAND_OPTIONS_MAX 64

/* Command-specific option ids start here so they never clash with global ones. */
#define CTL_OPT_COMMAND_BASE 0x1000

/* The ids of the command options of the Manager commands (the options arrays sit beside the
 * command table in avatarctl.c; the handlers in avatarctl-manager.c read them back). */
typedef enum CtlOptId {
        CTL_OPT_REFRESH = CTL_OPT_COMMAND_BASE + 0x100,
        CTL_OPT_PASSWORD_STDIN,
        CTL_OPT_TOKEN,
        CTL_OPT_NAME,
        CTL_OPT_DAYS,
        CTL_OPT_STORE,
        CTL_OPT_LAST,
        CTL_OPT_KIND,
        CTL_OPT_SET,
        CTL_OPT_LIMIT,
        CTL_OPT_INCLUDE_DELETED,
        CTL_OPT_ID,

        /* runner commands, avatarize, runs load, watch (avatarctl-runner*.c,
         * avatarctl-avatarize.c) */
        CTL_OPT_SEED,
        CTL_OPT_MAX_DISTRIBUTION_PLOTS,
        CTL_OPT_PIA_DATA_RECIPIENT,
        CTL_OPT_PIA_DATA_TYPE,
        CTL_OPT_PIA_DATA_SUBJECT,
        CTL_OPT_PIA_SENSITIVITY_LEVEL,
        CTL_OPT_LANGUAGE,
        CTL_OPT_ALL,
        CTL_OPT_PRIMARY_KEY,
        CTL_OPT_FOREIGN_KEY,
        CTL_OPT_TIME,
        CTL_OPT_TYPE,
        CTL_OPT_INDIVIDUAL_LEVEL,
        CTL_OPT_NO_INDIVIDUAL_LEVEL,
        CTL_OPT_AVATAR_DATA,
        CTL_OPT_FILE_NAME,
        CTL_OPT_METHOD,
        CTL_OPT_TABLE,
        CTL_OPT_JOBS,
        CTL_OPT_IGNORE_WARNINGS,
        CTL_OPT_WAIT_TIMEOUT,
        CTL_OPT_INDEX,
        CTL_OPT_FORCE,
        CTL_OPT_K,
        CTL_OPT_NO_WAIT,
        CTL_OPT_RUNNER,
        CTL_OPT_OUTPUT_DIR,
        CTL_OPT_PARAMS_JSON,
        CTL_OPT_UNSET,
        CTL_OPT_STALE_OK,
        CTL_OPT_RESUME,
        CTL_OPT_RM,
        CTL_OPT_NO_CHECK,
        /* -o FILE: the short option 'o' of commands that list "o:" in short_options */
        CTL_OPT_OUTPUT = CTL_OPT_COMMAND_BASE + 'o',
        /* -y, --yes: go on without asking (destructive commands list "y" in short_options) */
        CTL_OPT_YES = CTL_OPT_COMMAND_BASE + 'y',
        /* -v, --verbose (status) */
        CTL_OPT_VERBOSE = CTL_OPT_COMMAND_BASE + 'v',
        /* one id per runner.set_parameters param, CTL_OPT_PARAMETER + its index in the
         * table of avatarctl-runner-params.c */
        CTL_OPT_PARAMETER = CTL_OPT_COMMAND_BASE + 0x200,
} CtlOptId;

/* What the output looks like (--format). */
typedef enum CtlFormat {
        CTL_FORMAT_TABLE,         /* for people: tables, "Label: value" lines, summaries */
        CTL_FORMAT_JSON,          /* the method's result as JSON (pretty on a terminal) */
        CTL_FORMAT_YAML,          /* the same data as YAML */
        CTL_FORMAT_IDS,           /* the ids of what the command lists or made, one a line */
        _CTL_FORMAT_MAX,
        _CTL_FORMAT_INVALID = -EINVAL,
} CtlFormat;

typedef struct Ctl {
        const char *socket_path;  /* --socket; NULL: $AVATARD_SOCKET or the default */
        int timeout_ms;           /* per call; -1: none */
        CtlFormat format;         /* --format, --json, -q */
        bool format_given;
        bool tty;                 /* stdout is a terminal (JSON printed there is indented) */
        bool json;                /* machine output (--format json, yaml or ids): commands
                                   * print their data with ctl_print_json() */
        bool quiet;               /* -q: ids only, no progress, no hints */
        bool stderr_tty;          /* stderr is a terminal: live progress displays */
        bool timeout_given;       /* --timeout was given (long transfers otherwise have none) */
        const char *command;      /* the command's name, as errors show it */
        const char *ids;          /* the command's CtlCommand.ids */
        char *resolved_runner;    /* the full id the RUNNER argument named */
        char *legacy_arg;         /* a rewritten "--json=..." (rewrite_legacy_json()) */
        AvatarClient *client;     /* connected on first use by ctl_connect() */
} Ctl;

/* One command option as it appeared on the command line, in order. */
typedef struct CtlOpt {
        int id;                   /* the struct option's val */
        const char *arg;          /* its argument, borrowed from argv; NULL when none */
} CtlOpt;

/* What a handler gets: positional arguments and command options. */
typedef struct CtlArgs {
        const char *command;      /* the command's name as in the table */
        char **pos;               /* borrowed from argv */
        int n_pos;
        CtlOpt opts[CTL_OPTS_MAX];
        size_t n_opts;
} CtlArgs;

typedef struct CtlCommand {
        const char *name;         /* one or more words: "status", "apikey create" */
        const char *usage;        /* arguments after the name: "[NAME]" */
        const char *summary;      /* one line for the command list */
        const char *help;         /* the options, for "avatarctl help NAME"; or NULL */
        const char *details;      /* what the command does and prints, after the options; or
                                   * NULL */
        const struct option *options; /* command options (val >= CTL_OPT_COMMAND_BASE),
                                       * terminated by a zero entry; or NULL */
        const char *short_options; /* getopt letters ("o:"); letter X is the command option
                                    * with val CTL_OPT_COMMAND_BASE + X; or NULL */
        int min_pos;              /* positional arguments accepted */
        int max_pos;              /* -1: no limit */
        int (*run)(Ctl *ctl, const CtlArgs *args); /* returns a CtlExit */
        const char *calls;        /* the methods it calls, space-separated (errors name the
                                   * command of a method) */
        const char *ids;          /* what --format ids prints: a path of members, "." between
                                   * them, arrays and maps walked ("runners.runner_id") */
        bool runner_arg;          /* the first positional argument is a RUNNER: a full id, a
                                   * unique prefix or a display name, resolved before run() */
        bool legacy_json_params;  /* "--json OBJECT" means --params-json (old spelling) */
        bool hidden;              /* not listed (the completion's __complete) */
} CtlCommand;

/* The command table (avatarctl-commands.c), in the order of avatarctl --help. */
extern const CtlCommand ctl_commands[];
extern const size_t ctl_n_commands;

/* The global options (avatarctl.c). */
extern const struct option ctl_global_options[];

/* Whether an option name is an old spelling kept for scripts (not offered to the user). */
bool ctl_option_is_alias(const char *name);

/* ---- avatarctl-help.c ---- */

/* Prints the global usage: commands, options, exit codes. */
void ctl_print_usage(FILE *f);

/* Prints the help of one command. */
void ctl_print_command_help(FILE *f, const CtlCommand *cmd);

/* Prints the help of a group of commands ("runner"); false when `group` is none. */
bool ctl_print_group_help(FILE *f, const char *group);

/* Finds the command whose name is the longest match of argv's leading words; NULL when none
 * matches. *ret_words receives the number of words matched. */
const CtlCommand *ctl_find_command(int argc, char **argv, int *ret_words);

/* Reports an unknown command (argv: the words from the command on): a group's subcommands,
 * or the closest command. Returns CTL_EXIT_USAGE. */
int ctl_unknown_command(int argc, char **argv);

/* The option of cmd (may be NULL) or a global one closest to `given` ("--jsno"), written
 * with its dashes into buf; NULL when none is close. */
const char *ctl_suggest_option(const CtlCommand *cmd, const char *given, char *buf, size_t size);

/* The command that calls `method` ("runner add-table" for runner.add_table), or NULL. */
const char *ctl_command_of_method(const char *method);

int ctl_cmd_help(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_complete(Ctl *ctl, const CtlArgs *args);

/* ---- avatarctl-resolve.c ---- */

/* Resolves what names a runner: a full id as it is, else a unique id prefix or a display
 * name among the caller's runners (runner.list). Returns CTL_EXIT_OK with a new string in
 * *ret (NULL when `arg` is a full id already), or prints why not (none: exit 6; several:
 * the candidates once, exit 9). */
int ctl_resolve_runner(Ctl *ctl, const char *command, const char *arg, char **ret);

/* Resolves a run (a set of jobs): a full run id, a unique prefix of one, or a display name
 * (manager.find_ids_by_name). Returns CTL_EXIT_OK with a new string in *ret, or prints why
 * not. */
int ctl_resolve_set(Ctl *ctl, const char *command, const char *arg, char **ret);

/* Resolves a job: its full name, or a unique prefix of one (manager.get_jobs). Returns
 * CTL_EXIT_OK with a new string in *ret, CTL_EXIT_NOT_FOUND without a word when no job
 * matches (the caller says why), or prints why not. */
int ctl_resolve_job(Ctl *ctl, const char *command, const char *arg, char **ret);

/* Asks before a destructive operation: `what` says what goes ("Delete 3 jobs"). With --yes
 * (`yes`) it goes on; on a terminal the user answers y or n; with stdin not a terminal it
 * refuses. Returns CTL_EXIT_OK to go on, or prints why not and returns the exit code. */
int ctl_confirm(const Ctl *ctl, const char *command, bool yes, const char *what);

/* Commands: one handler per command, grouped by file (avatarctl-daemon.c, ...). */
int ctl_cmd_status(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_ping(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_reload(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_methods(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_call(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_health(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_compat(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_login(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_password_forgot(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_password_reset(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_apikey_create(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_apikey_list(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_apikey_revoke(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_jobs(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_job(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_results(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runs_find(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runs_delete(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_jobs_delete(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runs_load(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_avatarize(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_watch(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_create(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_create_from_yaml(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_list(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_add_table(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_add_link(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_delete_table(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_delete_link(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_set_parameters(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_update_parameters(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_delete_parameters(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_advise(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_run(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_status(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_wait(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_results(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_download(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_export_yaml(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_delete(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_close(Ctl *ctl, const CtlArgs *args);
int ctl_cmd_runner_rm(Ctl *ctl, const CtlArgs *args);

/* The options of runner set-parameters and update-parameters (avatarctl-runner-params.c): one
 * per runner.set_parameters param, then --params-json and --unset. */
extern const struct option ctl_parameter_options[];

/* Connects unless already connected. Returns CTL_EXIT_OK, or prints why not and returns the
 * exit code. */
int ctl_connect(Ctl *ctl);

/* The socket path avatarctl connects to: --socket, $AVATARD_SOCKET or the default. */
const char *ctl_socket_path(const Ctl *ctl);

/* Calls `method` with `params` (borrowed; NULL = none) and descriptors, honouring
 * --timeout. On success returns CTL_EXIT_OK and a new reference in *ret_result (may be NULL
 * for a JSON null; ret_result may be NULL to discard it). On failure prints
 * "avatarctl: METHOD: MESSAGE (NAME)" and the error's data fields, and returns the exit code
 * for the error. */
int ctl_call(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
             json_object **ret_result);

/* Calls `method` with an explicit deadline (`timeout_ms`; < 0: none) and does not print the
 * call's failure: returns CTL_EXIT_OK and *ret_result as ctl_call() does, or the exit code for
 * the failure with *ret_errno (may be NULL) set to the call's negative errno and, for an error
 * reply (-EREMOTEIO), *ret_error (may be NULL; it must hold AVATAR_CLIENT_ERROR_INIT) filled.
 * Report it with ctl_report_call_error() unless it is handled otherwise. When connecting
 * fails, ctl_connect() has printed why and *ret_errno is 0 (nothing left to report). */
int ctl_call_quiet(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
                   int timeout_ms, json_object **ret_result, AvatarClientError *ret_error,
                   int *ret_errno);

/* Prints a failed call as ctl_call() does: `r` is its negative errno (0: nothing to print),
 * `e` the daemon's error for -EREMOTEIO, `timeout_ms` the deadline the call had. */
void ctl_report_call_error(Ctl *ctl, const char *method, int r, const AvatarClientError *e,
                           int timeout_ms);

/* The same with an explicit deadline (`timeout_ms`; < 0: none; ctl_call() passes --timeout's),
 * and on failure also hands the error over: *ret_error (when not NULL; it must hold
 * AVATAR_CLIENT_ERROR_INIT) is filled for an error reply from the daemon (-EREMOTEIO), and
 * *ret_errno (when not NULL) receives the call's negative errno (0 on success). */
int ctl_call_full(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
                  int timeout_ms, json_object **ret_result, AvatarClientError *ret_error, int *ret_errno);

/* Prints a result for humans; returns 0 or a negative errno (reported by the caller). */
typedef int (*ctl_print_fn)(Ctl *ctl, json_object *result, void *userdata);

/* Prints a result (borrowed) as JSON in JSON mode, else with `human` (NULL: as a "Key: value"
 * tree); when `human` fails, prints "avatarctl: WHAT: cannot print the result: ...". Returns
 * the exit code. */
int ctl_print_result(Ctl *ctl, const char *what, json_object *result, ctl_print_fn human, void *userdata);

/* The common shape of a command: calls `method` with `params` (borrowed; NULL = none), then
 * prints the result as ctl_print_result() does. Returns the exit code. */
int ctl_call_and_print(Ctl *ctl, const char *method, json_object *params, ctl_print_fn human,
                       void *userdata);

/* Prints rows (an array of objects, borrowed): as JSON in JSON mode, else as a table with
 * the given columns (OutputColumn, avatarctl-output.h). Returns the exit code. */
struct OutputColumn;
int ctl_print_rows(Ctl *ctl, const char *what, json_object *rows, const struct OutputColumn *cols,
                   size_t n_cols);

/* Parses a decimal integer argument in [min, max] for option or argument `what`. Returns
 * CTL_EXIT_OK with *ret set, or prints the problem and returns CTL_EXIT_USAGE. */
int ctl_parse_int(const char *what, const char *s, long long min, long long max, long long *ret);

/* Parses the integer option `flag` when given (`value` not NULL), in [min, max], and adds it to
 * params as member `key`. Returns CTL_EXIT_OK, or prints the problem ("FLAG: ..." for a bad
 * value, "COMMAND: ..." when out of memory) and returns the exit code. */
int ctl_add_int_param(const CtlArgs *args, json_object *params, const char *flag, const char *value,
                      const char *key, long long min, long long max);

/* Joins n strings with `sep`, the last two with `last_sep` ("a, b or c"), into a new string
 * ("" for none); NULL on OOM. */
char *ctl_join(const char *const *items, size_t n, const char *sep, const char *last_sep);

/* True when s (may be NULL) is one of the n strings of set. */
bool ctl_in_set(const char *s, const char *const *set, size_t n);

/* Checks that value is one of the n strings of set. Returns CTL_EXIT_OK, or prints
 * "avatarctl: COMMAND: WHAT: expected a, b or c, got 'x'" and returns CTL_EXIT_USAGE. */
int ctl_check_choice(const char *command, const char *what, const char *value, const char *const *set,
                     size_t n);

/* True when s is a UUID in its canonical text form (8-4-4-4-12 hex digits, any case). */
bool ctl_is_uuid(const char *s);

/* The argument of the last occurrence of command option `id`, or NULL when it was not given
 * (or takes no argument: see ctl_opt_given()). */
const char *ctl_opt(const CtlArgs *args, int id);

/* Whether command option `id` was given. */
bool ctl_opt_given(const CtlArgs *args, int id);

/* Reads all of stdin, at most `max` bytes, NUL-terminated. Returns 0, -EFBIG when longer,
 * -ENOMEM, or a read error. */
int ctl_read_stdin(size_t max, char **ret, size_t *ret_len);

/* The same from any descriptor (a pipe, a file), from where it stands to its end. */
int ctl_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* The exit code of a daemon error class given by its stable name ("not_found");
 * CTL_EXIT_FAILED when the name is unknown or NULL. */
int ctl_exit_code_from_name(const char *name);

/* Prints "avatarctl: WHAT: MESSAGE" (printf-style) on stderr and returns `code`. */
int ctl_fail(int code, const char *what, const char *format, ...) _printf_(3, 4);

/* Reports an allocation failure ("avatarctl: WHAT: " and the text of ENOMEM) and returns the
 * exit code for it. */
int ctl_fail_oom(const char *what);

/* The exit code for a failed call: `r` from avatar_client_call() and, for -EREMOTEIO, the
 * daemon's error. Pure. */
int ctl_exit_code(int r, const AvatarClientError *e);

/* Sets a function that runs before avatarctl prints a message on stderr (errors, warnings),
 * e.g. to end a progress line that is being redrawn; NULL removes it. */
void ctl_set_message_hook(void (*hook)(void *userdata), void *userdata);

/* Runs the message hook, if any. Whoever writes to stderr outside ctl_fail() and the error
 * printing of ctl_call() calls this first. */
void ctl_before_message(void);

/* Writes "avatarctl: " (red on a terminal): the start of an error line. */
void ctl_message_start(FILE *f);

/* Prints "hint: TEXT" on stderr (printf-style, sanitized): what to do next. Nothing with -q
 * (ctl may be NULL). */
void ctl_hint(const Ctl *ctl, const char *format, ...) _printf_(2, 3);

/* Prints "avatarctl: warning: TEXT" on stderr (sanitized). */
void ctl_warning(const char *text);

/* Prints a deletion result ({deleted_jobs, failed_jobs, errors?}) as JSON or as a summary
 * and returns the exit code it calls for (0 only when nothing failed). */
int ctl_finish_deletion(Ctl *ctl, const char *what, json_object *result);

/* Writes s for a shell command line: as it is when no shell would interpret any of its
 * characters, else single-quoted. Sanitized. */
void ctl_print_shell_word(FILE *f, const char *s);

/* Writes "avatarctl " and, when --socket was given, "--socket PATH " (shell-quoted): the start
 * of an avatarctl command line for the user to run. */
void ctl_print_command_start(FILE *f, const Ctl *ctl);

/* Prints a JSON value on stdout in the selected form (pretty on a terminal, one compact line
 * otherwise), followed by a newline. */
void ctl_print_json(const Ctl *ctl, json_object *o);
