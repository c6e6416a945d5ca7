/* SPDX-License-Identifier: MIT */
/*
 * Inside avatarctl's runner commands: "runner ..." (one per runner.* method and
 * manager.create_runner*), "avatarize" (the whole flow in one command), "runs load"
 * (manager.create_runner_from_id / _from_name) and "watch" (manager.watch_jobs). One file
 * per family, as tmux has its cmd-*.c:
 *   avatarctl-runner-common.c   what the others share (declared below)
 *   avatarctl-runner.c          runner create, create-from-yaml, list, close
 *   avatarctl-runner-tables.c   runner add-table, add-link
 *   avatarctl-runner-params.c   runner set-parameters, update-parameters, advise
 *   avatarctl-runner-results.c  runner results, export-yaml, delete; a download into a
 *                               descriptor
 *   avatarctl-runner-download.c runner download; the plans of files avatarize shares
 *   avatarctl-runner-run.c      runner run, status, wait; runs load; watch
 *   avatarctl-avatarize.c       avatarize
 * Each uses only those above it in this list.
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
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "avatarctl.h"
#include "avatarctl-progress.h"

/* Longest display name of a runner (manager.create_runner set_name). */
#define SET_NAME_MAX 255
/* Longest table name (runner.add_table table_name). */
#define TABLE_NAME_MAX 200
/* The longest deadline the daemon accepts, in seconds (a week). */
#define WAIT_TIMEOUT_MAX_S 604800.0

/* The jobs runner.run starts ("report" starts report and report_pia). */
static const char *const run_jobs[] = { "standard", "signal_metrics", "privacy_metrics", "report" };

/* The jobs runner.wait and runner.delete take. */
static const char *const runner_jobs[] = {
        "standard", "signal_metrics", "privacy_metrics", "report", "report_pia", "advice_parameters",
};

/* A result of runner.download: the job that makes it and its key in the job's results
 * (runner.list_results' "result" of a file). Aliases come after the name they stand for, so
 * that a lookup by job and key finds the canonical name. */
typedef struct ResultKind {
        const char *result;
        const char *job;
        const char *key;
        bool per_table;           /* one file per table: name the table */
} ResultKind;

/* An input file for runner.add_table: "-" is stdin (passed as it is). */
typedef struct InputFile {
        const char *path;
        int fd;                   /* borrowed for stdin, owned otherwise */
        bool owned;
        uint64_t size;            /* when a regular file, else 0 */
        bool regular;             /* a regular file (it can be read again: pread()) */
        char *name;               /* the basename, NULL for stdin */
} InputFile;

/* ---- avatarctl-runner-common.c -------------------------------------------------------------- */

/* Checks a runner id argument. */
int check_runner_id(const char *command, const char *id);

/* Checks a name: 1 to max characters. */
int check_name(const char *command, const char *what, const char *name, size_t max);

/* A new params object {"runner_id": id}, in *ret. Returns CTL_EXIT_OK or the exit code. */
int runner_params(const char *command, const char *id, json_object **ret);

/* Adds the values of a list option ("a,b" or repeated) to array `list`, each checked
 * against `set` (NULL: any non-empty value) and added once. Returns CTL_EXIT_OK or the exit
 * code. */
int add_list_values(const char *command, const char *what, const char *value, json_object *list,
                    const char *const *set, size_t n_set);

/* Collects every occurrence of list option `id` into a new array in *ret (NULL when the
 * option was not given). Returns CTL_EXIT_OK or the exit code. */
int collect_list(const CtlArgs *args, int id, const char *what, const char *const *set, size_t n_set,
                 json_object **ret);

/* Parses a number of seconds in (0, max]. */
int parse_seconds(const char *command, const char *what, const char *s, double max, double *ret);

/* The deadline of a call that moves data or waits: none, unless --timeout was given. */
int long_call_timeout(const Ctl *ctl);

/* A wait of `seconds`, shortened to the global --timeout when that is given and shorter. */
double capped_wait(const Ctl *ctl, double seconds);

/* The last path component of path, without trailing slashes, in a new string ("" for "/"
 * or ""). NULL on OOM. */
char *base_name(const char *path);

/* Whether a file name from the daemon can be used as a name in a directory: not empty, no
 * '/', not "." or "..", no control characters. */
bool file_name_is_safe(const char *name);

/* Prints the warnings of a result on stderr. */
void print_warnings(json_object *result);

/* Prints "Label:" padded to `width`, then the sanitized text. */
void print_label(const char *label, const char *text, size_t width);

/* Writes a command to run: "  avatarctl [--socket P] WORDS..." (each word quoted as the shell
 * needs), and a newline. The word list ends with NULL. */
void print_command(FILE *f, const Ctl *ctl, const char *first, ...);

/* Creates an output file: O_CREAT|O_EXCL, or with `force` O_TRUNC (an existing file is
 * replaced); mode 0644 less the umask. Returns the descriptor, or a negative errno (-EEXIST
 * for an existing file without force). *ret_created tells whether the file is new (and so
 * to be removed when what goes into it fails). */
int create_output(const char *path, bool force, bool *ret_created);

/* Reports an output file that cannot be created. Returns the exit code: CTL_EXIT_CONFLICT
 * for an existing file (without --force), CTL_EXIT_FAILED otherwise. */
int fail_output(const char *command, const char *path, int r);

/* Sets what an interruption prints (the text of a memstream) and installs the handler. The
 * handler is installed even when the signal was ignored, so that a run started in the
 * background can still be told to stop and say how to reattach. */
void interrupt_set(const Ctl *ctl, const char *text);

/* Back to the default dispositions. */
void interrupt_clear(void);

/* Sets what an interruption prints to what `write` writes, with userdata. */
void interrupt_compose(const Ctl *ctl, void (*write)(FILE *f, const void *userdata), const void *userdata);

/* Prepares the text for an interruption while a runner runs: the run continues on the
 * server and the text gives the commands that reattach to it (`set_name`, the run's id, may
 * be NULL when unknown). */
void interrupt_for_run(const Ctl *ctl, const char *runner_id, const char *set_name);

/* Parses --wait-timeout (when given, else `seconds`), shortened to the global --timeout.
 * Returns CTL_EXIT_OK with *ret set, or the exit code. */
int parse_wait_timeout(const Ctl *ctl, const CtlArgs *args, double seconds, double *ret);

/* Prints a jobs array as a table (nothing for an empty one). Returns 0 or -ENOMEM. */
int print_jobs_table(json_object *jobs);

/* Joins the strings of an array with ", " into a new string ("" when empty). */
char *join_strings(json_object *a);

/* Prints a RunnerStatus for people: its fields, its jobs as a table, its warnings. Returns
 * 0 or -ENOMEM. */
int print_runner_status(json_object *st);

/* The shape of the commands that take a runner id and nothing else: calls `method` with
 * {"runner_id"} and prints its result (JSON, or with `human`). */
int call_runner_and_print(Ctl *ctl, const CtlArgs *args, const char *method, ctl_print_fn human);

/* Sets up a progress display for the calls of one command: the mode for the command's
 * output, the runner whose notifications count, the notification callback. Returns
 * CTL_EXIT_OK (with *ret NULL when nothing is shown) or the exit code. */
int progress_attach(Ctl *ctl, const char *runner_id, Progress **ret);

/* Ends a progress display set up by progress_attach(). Returns NULL. */
Progress *progress_detach(Ctl *ctl, Progress *p);

/* Calls and prints a method whose result carries warnings: the warnings go to stderr in
 * both output modes (a script does not read them from the JSON). */
int call_print_warn(Ctl *ctl, const char *method, json_object *params, int timeout_ms,
                    ctl_print_fn human, void *userdata);

/* ---- avatarctl-runner.c --------------------------------------------------------------------- */

/* Removes a runner: runner.delete (all its jobs on the server), then runner.close. A
 * deletion that leaves jobs behind keeps the runner. Returns CTL_EXIT_OK with the number
 * of jobs deleted in *ret_deleted, or the exit code with why in *ret_reason (a new string;
 * the failure is not printed). */
int runner_remove(Ctl *ctl, const char *id, size_t *ret_deleted, char **ret_reason);

/* ---- avatarctl-runner-tables.c -------------------------------------------------------------- */

/* Closes and frees an input file. */
void input_file_done(InputFile *in);

/* Opens a table to upload, read-only. Returns CTL_EXIT_OK or the exit code. */
int input_file_open(const char *command, const char *path, InputFile *ret);

/* Checks a CSV table before it is uploaded (a regular file whose name, `in`'s or
 * `file_name` when not NULL, ends in .csv; anything else passes): readable, not empty, rows
 * after the header, the same number of fields on every line (quotes as RFC 4180 has them),
 * UTF-8, no NUL byte. Reads with pread(), so the descriptor's offset is left alone. Returns
 * CTL_EXIT_OK, or prints the first problem with its line and returns CTL_EXIT_USAGE. */
int check_table_file(const char *command, const InputFile *in, const char *file_name);

/* Uploads a table: runner.add_table with the descriptors of `in` (and `avatar`, may be
 * NULL), showing progress. `params` holds everything but the descriptors and file names.
 * Returns CTL_EXIT_OK with the result in *ret_result, or the exit code (the failure
 * reported). */
int upload_table(Ctl *ctl, const char *command, json_object *params, const InputFile *in,
                 const InputFile *avatar, const char *file_name, Progress *p, json_object **ret_result);

/* ---- avatarctl-runner-results.c ------------------------------------------------------------- */

/* The result kind named `result`, or NULL. */
const ResultKind *result_kind_named(const char *result);

/* The i-th result kind of the contract, or NULL past the last. */
const ResultKind *result_kind_at(size_t i);

/* Turns runner.list_results into rows, one per file: {job, status, result, table, index,
 * file_name} where result is runner.download's name for it (null when it has none), table
 * is set for per-table results only and index counts the files that the same download call
 * (result and table) chooses from. Jobs without files get one row without a file. Returns 0
 * with a new array in *ret, or -ENOMEM. */
int result_rows(json_object *listing, json_object **ret);

/* Writes the command that downloads one row of result_rows() into `path` (NULL: the row's
 * file name). */
void print_download_command(FILE *f, const Ctl *ctl, const char *runner_id, json_object *row,
                            const char *path);

/* Downloads one result into descriptor fd (runner.download with {"fd": 0}), showing progress
 * as "download RESULT -> SHOWN". Returns CTL_EXIT_OK with the result in *ret_result, or the
 * exit code (the failure reported). */
int download_into(Ctl *ctl, json_object *params, int fd, const char *shown, Progress *p,
                  json_object **ret_result);

/* The start of the commands that write a result: {"runner_id"} in *ret_params, and -o's
 * argument (checked not empty) in *ret_out, NULL when not given. Returns CTL_EXIT_OK or the
 * exit code. */
int output_params(const CtlArgs *args, json_object **ret_params, const char **ret_out);

/* Writes len bytes into a new file at path (create_output()), removed again when writing
 * fails. Returns CTL_EXIT_OK, or reports the problem and returns the exit code. */
int write_output(const char *command, const char *path, const void *data, size_t len, bool force);

/* Writes text to stdout, with control characters other than newline and tab replaced when
 * stdout is a terminal (the daemon's text is untrusted). */
void print_text(const Ctl *ctl, const char *text, size_t len);

/* ---- avatarctl-runner-download.c ------------------------------------------------------------ */

/* One file of a plan. */
typedef struct FetchFile {
        const ResultKind *kind;
        char *table;              /* the table for per-table results, else NULL */
        int64_t index;
        char *file_name;          /* the server's name */
        char *path;               /* DIR/file_name */
        int fd;
        bool created;             /* made by this plan (removed when it is not filled) */
        bool done;
        bool kept;                /* there already, and kept (keep_existing) */
        uint64_t bytes;
} FetchFile;

/* Which result files go where. */
typedef struct Fetch {
        const char *command;
        const char *runner_id;
        const char *dir;
        bool force;               /* replace files that exist */
        bool keep_existing;       /* keep files that exist (avatarize --resume) */
        FetchFile *files;
        size_t n_files;
} Fetch;

/* dir + "/" + name, new string (NULL on OOM). */
char *path_join(const char *dir, const char *name);

/* Creates a directory and its missing parents (mode 0777 less the umask). Returns 0 or a
 * negative errno. */
int make_dirs(const char *path);

/* Adds the files of a listing (runner.list_results) that `want` picks (NULL: every file
 * runner.download can name), in the listing's order. Returns CTL_EXIT_OK or the exit code. */
int fetch_plan(Fetch *f, json_object *listing, bool (*want)(const ResultKind *kind, const char *table, void *userdata),
               void *userdata);

/* Creates the directory and every file first (nothing is downloaded when one exists,
 * without force; with keep_existing a file there is kept), then downloads into each with
 * progress on p. Returns CTL_EXIT_OK or the exit code (reported); *ret_error (may be NULL)
 * names a failure's kind: "file_exists", "io_error", "download_failed". */
int fetch_run(Ctl *ctl, Fetch *f, Progress *p, const char **ret_error);

/* Prints "Files written:" and a line per file with its size. */
void fetch_print(const Fetch *f);

/* The files written as [{result, table, file_name, path, bytes}]; NULL on OOM. */
json_object *fetch_json(const Fetch *f);

/* Frees a plan; the files it created and did not fill are removed. */
void fetch_done(Fetch *f);

/* ---- avatarctl-runner-run.c ----------------------------------------------------------------- */

/* Waits for a runner's jobs (runner.wait) with a progress display: `p` when not NULL (it
 * stays attached, and the caller sets what an interruption prints), else one of its own
 * (and Ctrl-C prints how to wait again). `jobs` (borrowed, may be NULL) names the jobs to
 * wait for; `initial` (borrowed, may be NULL) the jobs to show before the first
 * notification; `set_name` (may be NULL) the run, for the text printed on Ctrl-C. Returns
 * CTL_EXIT_OK with the result in *ret_result (done or at the deadline), or the exit code
 * with the failure reported (a job's failure by report_job_failed(), and its error handed
 * over in *ret_error when not NULL). */
int wait_runner(Ctl *ctl, const char *runner_id, const char *set_name, json_object *jobs, double timeout_s,
                json_object *initial, Progress *p, json_object **ret_result, AvatarClientError *ret_error);

/* Tells that a wait ended at its deadline, and how to wait again. */
void report_wait_timeout(const Ctl *ctl, const char *runner_id, double timeout_s);

/* Whether a wait's result says it ended at the deadline. */
bool wait_timed_out(json_object *result);
