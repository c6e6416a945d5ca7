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

/* Longest list of command options one command line may carry. */
#define CTL_OPTS_MAX 32

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
} CtlOptId;

typedef struct Ctl {
        const char *socket_path;  /* --socket; NULL: $AVATARD_SOCKET or the default */
        int timeout_ms;           /* per call; -1: none */
        bool force_json;          /* --json */
        bool tty;                 /* stdout is a terminal */
        bool json;                /* print JSON: --json, or stdout is not a terminal */
        bool pretty;              /* indent JSON: stdout is a terminal */
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
        int min_pos;              /* positional arguments accepted */
        int max_pos;              /* -1: no limit */
        int (*run)(Ctl *ctl, const CtlArgs *args); /* returns a CtlExit */
} CtlCommand;

/* Commands: one handler per command, grouped by file (avatarctl-daemon.c, ...). */
int ctl_cmd_status(Ctl *ctl, const CtlArgs *args);
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

/* Connects unless already connected. Returns CTL_EXIT_OK, or prints why not and returns the
 * exit code. */
int ctl_connect(Ctl *ctl);

/* Calls `method` with `params` (borrowed; NULL = none) and descriptors, honouring
 * --timeout. On success returns CTL_EXIT_OK and a new reference in *ret_result (may be NULL
 * for a JSON null; ret_result may be NULL to discard it). On failure prints
 * "avatarctl: METHOD: MESSAGE (NAME)" and the error's data fields, and returns the exit code
 * for the error. */
int ctl_call(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
             json_object **ret_result);

/* The same, and on failure also hands the error over: *ret_error (when not NULL; it must hold
 * AVATAR_CLIENT_ERROR_INIT) is filled for an error reply from the daemon (-EREMOTEIO), and
 * *ret_errno (when not NULL) receives the call's negative errno (0 on success). */
int ctl_call_full(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
                  json_object **ret_result, AvatarClientError *ret_error, int *ret_errno);

/* Prints a result for humans; returns 0 or a negative errno (reported by the caller). */
typedef int (*ctl_print_fn)(Ctl *ctl, json_object *result, void *userdata);

/* The common shape of a command: calls `method` with `params` (borrowed; NULL = none), then
 * prints the result as JSON in JSON mode, else with `human` (NULL: as a "Key: value" tree).
 * Returns the exit code. */
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

/* The exit code of a daemon error class given by its stable name ("not_found");
 * CTL_EXIT_FAILED when the name is unknown or NULL. */
int ctl_exit_code_from_name(const char *name);

/* Prints "avatarctl: WHAT: MESSAGE" (printf-style) on stderr and returns `code`. */
int ctl_fail(int code, const char *what, const char *format, ...) _printf_(3, 4);

/* The exit code for a failed call: `r` from avatar_client_call() and, for -EREMOTEIO, the
 * daemon's error. Pure; exposed for the tests. */
int ctl_exit_code(int r, const AvatarClientError *e);

/* Prints a JSON value on stdout in the selected form (pretty on a terminal, one compact line
 * otherwise), followed by a newline. */
void ctl_print_json(const Ctl *ctl, json_object *o);
