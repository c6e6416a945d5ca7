/* SPDX-License-Identifier: MIT */
/*
 * avatarctl: the command-line client of avatard.
 *
 *   avatarctl [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]
 *
 * This file holds main(), the command table, argument parsing and the helpers every command
 * shares (connect, call, error reporting, exit codes). Commands live in avatarctl-*.c, one
 * file per method family.
 */
#include <ctype.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "build-config.h"
#include "errors.h"
#include "jsonrpc.h"
#include "protocol.h"

/* Longest --timeout accepted, in seconds (about 24 days; poll() takes an int of ms). */
#define CTL_TIMEOUT_MAX_S 2000000.0
#define CTL_TIMEOUT_DEFAULT_MS (60 * 1000)

enum {
        OPT_SOCKET = 0x100,
        OPT_JSON,
        OPT_TIMEOUT,
        OPT_VERSION,
        OPT_HELP = 'h',
};

static const struct option global_options[] = {
        { "socket",  required_argument, NULL, OPT_SOCKET },
        { "json",    no_argument,       NULL, OPT_JSON },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help",    no_argument,       NULL, OPT_HELP },
        { "version", no_argument,       NULL, OPT_VERSION },
        {}
};

/* Options of "call" (ids handled in avatarctl-daemon.c). */
static const struct option call_options[] = {
        { "file", required_argument, NULL, CTL_OPT_COMMAND_BASE + 'f' },
        { "out",  required_argument, NULL, CTL_OPT_COMMAND_BASE + 'o' },
        {}
};

/* Options of the Manager commands (ids in avatarctl.h, handled in avatarctl-manager.c). */
static const struct option compat_options[] = {
        { "refresh", no_argument, NULL, CTL_OPT_REFRESH },
        {}
};

static const struct option password_options[] = {
        { "password-stdin", no_argument, NULL, CTL_OPT_PASSWORD_STDIN },
        {}
};

static const struct option password_reset_options[] = {
        { "token",          required_argument, NULL, CTL_OPT_TOKEN },
        { "password-stdin", no_argument,       NULL, CTL_OPT_PASSWORD_STDIN },
        {}
};

static const struct option apikey_create_options[] = {
        { "name",  required_argument, NULL, CTL_OPT_NAME },
        { "days",  required_argument, NULL, CTL_OPT_DAYS },
        { "store", no_argument,       NULL, CTL_OPT_STORE },
        {}
};

static const struct option jobs_options[] = {
        { "last",            required_argument, NULL, CTL_OPT_LAST },
        { "kind",            required_argument, NULL, CTL_OPT_KIND },
        { "name",            required_argument, NULL, CTL_OPT_NAME },
        { "set",             required_argument, NULL, CTL_OPT_SET },
        { "limit",           required_argument, NULL, CTL_OPT_LIMIT },
        { "include-deleted", no_argument,       NULL, CTL_OPT_INCLUDE_DELETED },
        {}
};

static const struct option results_options[] = {
        { "last", required_argument, NULL, CTL_OPT_LAST },
        {}
};

static const struct option runs_delete_options[] = {
        { "id", required_argument, NULL, CTL_OPT_ID },
        {}
};

/* Options of the runner commands, avatarize, runs load and watch (ids in avatarctl.h,
 * handled in avatarctl-runner*.c and avatarctl-avatarize.c; set-parameters' own are
 * ctl_parameter_options). */
static const struct option runner_create_options[] = {
        { "seed",                   required_argument, NULL, CTL_OPT_SEED },
        { "max-distribution-plots", required_argument, NULL, CTL_OPT_MAX_DISTRIBUTION_PLOTS },
        { "pia-data-recipient",     required_argument, NULL, CTL_OPT_PIA_DATA_RECIPIENT },
        { "pia-data-type",          required_argument, NULL, CTL_OPT_PIA_DATA_TYPE },
        { "pia-data-subject",       required_argument, NULL, CTL_OPT_PIA_DATA_SUBJECT },
        { "pia-sensitivity-level",  required_argument, NULL, CTL_OPT_PIA_SENSITIVITY_LEVEL },
        { "language",               required_argument, NULL, CTL_OPT_LANGUAGE },
        {}
};

static const struct option runner_list_options[] = {
        { "all", no_argument, NULL, CTL_OPT_ALL },
        {}
};

static const struct option runner_add_table_options[] = {
        { "primary-key",         required_argument, NULL, CTL_OPT_PRIMARY_KEY },
        { "foreign-key",         required_argument, NULL, CTL_OPT_FOREIGN_KEY },
        { "time",                required_argument, NULL, CTL_OPT_TIME },
        { "type",                required_argument, NULL, CTL_OPT_TYPE },
        { "individual-level",    no_argument,       NULL, CTL_OPT_INDIVIDUAL_LEVEL },
        { "no-individual-level", no_argument,       NULL, CTL_OPT_NO_INDIVIDUAL_LEVEL },
        { "avatar-data",         required_argument, NULL, CTL_OPT_AVATAR_DATA },
        { "file-name",           required_argument, NULL, CTL_OPT_FILE_NAME },
        {}
};

static const struct option runner_add_link_options[] = {
        { "method", required_argument, NULL, CTL_OPT_METHOD },
        {}
};

static const struct option runner_advise_options[] = {
        { "table", required_argument, NULL, CTL_OPT_TABLE },
        {}
};

static const struct option runner_run_options[] = {
        { "jobs",            required_argument, NULL, CTL_OPT_JOBS },
        { "ignore-warnings", no_argument,       NULL, CTL_OPT_IGNORE_WARNINGS },
        {}
};

static const struct option runner_status_options[] = {
        { "refresh", no_argument, NULL, CTL_OPT_REFRESH },
        {}
};

/* "--timeout" here is the wait's deadline; the global --timeout goes before the command. */
static const struct option runner_wait_options[] = {
        { "jobs",    required_argument, NULL, CTL_OPT_JOBS },
        { "timeout", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
        {}
};

static const struct option runner_download_options[] = {
        { "table",  required_argument, NULL, CTL_OPT_TABLE },
        { "index",  required_argument, NULL, CTL_OPT_INDEX },
        { "output", required_argument, NULL, CTL_OPT_OUTPUT },
        { "force",  no_argument,       NULL, CTL_OPT_FORCE },
        {}
};

static const struct option runner_export_options[] = {
        { "output", required_argument, NULL, CTL_OPT_OUTPUT },
        { "force",  no_argument,       NULL, CTL_OPT_FORCE },
        {}
};

static const struct option runner_delete_options[] = {
        { "jobs", required_argument, NULL, CTL_OPT_JOBS },
        {}
};

static const struct option avatarize_options[] = {
        { "name",         required_argument, NULL, CTL_OPT_NAME },
        { "table",        required_argument, NULL, CTL_OPT_TABLE },
        { "k",            required_argument, NULL, CTL_OPT_K },
        { "jobs",         required_argument, NULL, CTL_OPT_JOBS },
        { "output",       required_argument, NULL, CTL_OPT_OUTPUT_DIR },
        { "force",        no_argument,       NULL, CTL_OPT_FORCE },
        { "no-wait",      no_argument,       NULL, CTL_OPT_NO_WAIT },
        { "timeout-wait", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
        {}
};

static const struct option watch_options[] = {
        { "runner",  required_argument, NULL, CTL_OPT_RUNNER },
        { "jobs",    required_argument, NULL, CTL_OPT_JOBS },
        { "timeout", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
        {}
};

static int cmd_help(Ctl *ctl, const CtlArgs *args);

/* Every command. Add a row (and a handler in the avatarctl-*.c file of its method family) to
 * add a command; multi-word names ("apikey create") group subcommands. The order is the order
 * of avatarctl --help. */
static const CtlCommand commands[] = {
        {
                .name = "status",
                .summary = "Show the daemon's version, uptime, counters and limits",
                .run = ctl_cmd_status,
        },
        {
                .name = "ping",
                .summary = "Check that the daemon answers, and how fast",
                .details = "Calls daemon.ping (which needs no role) and prints the round-trip time of\n"
                           "the call, connection excluded. Exits 0 when the daemon answered.\n",
                .run = ctl_cmd_ping,
        },
        {
                .name = "reload",
                .summary = "Make the daemon re-read its configuration",
                .details = "Calls daemon.reload, as systemctl reload or SIGHUP would. A file with an\n"
                           "error is rejected, naming the key and line, and the current configuration\n"
                           "stays in force (exit 9).\n",
                .run = ctl_cmd_reload,
        },
        {
                .name = "methods",
                .usage = "[NAME]",
                .summary = "List the methods the daemon serves, or describe one",
                .max_pos = 1,
                .run = ctl_cmd_methods,
        },
        {
                .name = "call",
                .usage = "METHOD [PARAMS-JSON|-]",
                .summary = "Call any method with JSON params (- reads them from stdin)",
                .help = "  --file PATH    pass PATH, opened read-only, as the next descriptor\n"
                        "  --out PATH     create PATH and pass it, writable, as the next descriptor\n",
                .details = "Descriptors are numbered from 0 in the order of the options; params\n"
                           "refer to them as {\"fd\": N}. The result is printed as JSON.\n",
                .options = call_options,
                .min_pos = 1,
                .max_pos = 2,
                .run = ctl_cmd_call,
        },
        {
                .name = "health",
                .summary = "Show the Avatar server's health",
                .details = "Calls manager.get_health and prints the server's answer. When the server\n"
                           "is unreachable the daemon serves its last good answer for a while, marked\n"
                           "\"(stale, N s old)\".\n",
                .run = ctl_cmd_health,
        },
        {
                .name = "compat",
                .usage = "[--refresh]",
                .summary = "Check that the Avatar server accepts this daemon as a client",
                .help = "  --refresh      ask the server again instead of using the cached answer\n",
                .details = "Calls manager.verify_compatibility. When the server says this client is\n"
                           "incompatible or unknown, exits 7 (incompatible) with the server's message.\n",
                .options = compat_options,
                .run = ctl_cmd_compat,
        },
        {
                .name = "login",
                .usage = "USERNAME [--password-stdin]",
                .summary = "Log the daemon in with a username and password (deprecated)",
                .help = "  --password-stdin  read the password from the first line of stdin, even\n"
                        "                    when stdin is a terminal\n",
                .details = "The password is read from the terminal without echo, or from the first\n"
                           "line of stdin when stdin is not a terminal; never from the command line.\n"
                           "Calls manager.authenticate; the daemon keeps the session for all its\n"
                           "clients. Its deprecation warning (how to switch to an API key) is printed\n"
                           "on stderr. Refused (exit 9) while the daemon uses an API key.\n"
                           "\n"
                           "Examples:\n"
                           "  avatarctl login alice\n"
                           "  avatarctl login alice --password-stdin < password-file\n",
                .options = password_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_login,
        },
        {
                .name = "password forgot",
                .usage = "EMAIL",
                .summary = "Ask the Avatar server to send a password reset email",
                .details = "Calls manager.forgotten_password. The email carries a token (a UUID) for\n"
                           "avatarctl password reset.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_password_forgot,
        },
        {
                .name = "password reset",
                .usage = "EMAIL --token UUID [--password-stdin]",
                .summary = "Set a new password with the token from the reset email",
                .help = "  --token UUID      the token from the reset email (required)\n"
                        "  --password-stdin  read the new password from the first two lines of\n"
                        "                    stdin, even when stdin is a terminal\n",
                .details = "The new password is asked twice on the terminal without echo (the two\n"
                           "must match), or read from the first two lines of stdin when stdin is not\n"
                           "a terminal; never from the command line. Calls manager.reset_password.\n",
                .options = password_reset_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_password_reset,
        },
        {
                .name = "apikey create",
                .usage = "--name NAME --days DAYS [--store]",
                .summary = "Create an API key (shown once), or make it the daemon's own",
                .help = "  --name NAME    a label for the key, 1 to 255 characters (required)\n"
                        "  --days DAYS    how long the key is valid: 30, 60, 120, 365 or 3650\n"
                        "                 (required)\n"
                        "  --store        make the key the daemon's own credential and switch to\n"
                        "                 it; the key is then never shown\n",
                .details = "Calls manager.create_api_key. Without --store the plaintext key is printed\n"
                           "once: save it at once, nobody can show it again.\n",
                .options = apikey_create_options,
                .run = ctl_cmd_apikey_create,
        },
        {
                .name = "apikey list",
                .summary = "List the API keys of the account",
                .details = "Calls manager.list_api_keys. Keys are never shown, only their ids.\n",
                .run = ctl_cmd_apikey_list,
        },
        {
                .name = "apikey revoke",
                .usage = "ID",
                .summary = "Revoke an API key, by its id (see apikey list)",
                .details = "Calls manager.revoke_api_key.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_apikey_revoke,
        },
        {
                .name = "jobs",
                .usage = "[--last N | FILTERS]",
                .summary = "List jobs, newest first",
                .help = "  --last N             only the N most recent jobs\n"
                        "  --kind KIND          only jobs of this kind (repeatable): standard,\n"
                        "                       privacy_metrics, signal_metrics, report, advice\n"
                        "  --name DISPLAY_NAME  only jobs with this display name\n"
                        "  --set UUID           only the jobs of this run (its set_name)\n"
                        "  --limit N            at most N jobs\n"
                        "  --include-deleted    deleted jobs too\n",
                .details = "With --last, calls manager.get_last_jobs (and takes no other option);\n"
                           "otherwise manager.get_jobs with the filters given. --name and --set\n"
                           "exclude each other.\n",
                .options = jobs_options,
                .run = ctl_cmd_jobs,
        },
        {
                .name = "job",
                .usage = "NAME",
                .summary = "Show one job",
                .details = "Calls manager.get_job. NAME is the job's name (see avatarctl jobs), not\n"
                           "its display name.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_job,
        },
        {
                .name = "jobs delete",
                .usage = "NAME...|-",
                .summary = "Delete jobs by name (- reads the names from stdin)",
                .details = "Calls manager.delete_jobs. With -, names are read from stdin, one per\n"
                           "line. Prints how many jobs were deleted, which failed and why; exits 1\n"
                           "(or the class of the first failed batch) when any failed.\n",
                .min_pos = 1,
                .max_pos = -1,
                .run = ctl_cmd_jobs_delete,
        },
        {
                .name = "results",
                .usage = "[--last N]",
                .summary = "Show the result files of the most recent jobs",
                .help = "  --last N       the results of the N most recent jobs (1 to 100; default 1)\n",
                .details = "Calls manager.get_last_results and prints, per job, the kinds of results\n"
                           "with their number of files.\n",
                .options = results_options,
                .run = ctl_cmd_results,
        },
        {
                .name = "runs find",
                .usage = "NAME",
                .summary = "Find the runs with this display name, newest first",
                .details = "Calls manager.find_ids_by_name. A run is the set of jobs one avatarization\n"
                           "made; its id is their set_name. Advice jobs are left out.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runs_find,
        },
        {
                .name = "runs delete",
                .usage = "NAME | --id UUID",
                .summary = "Delete every job of one run, by display name or by id",
                .help = "  --id UUID      the run's id (its set_name) instead of a display name\n",
                .details = "Calls manager.delete_job (by name) or manager.delete_job_by_id. When\n"
                           "several runs have that name nothing is deleted: the error lists each run\n"
                           "with the command that deletes it (exit 9).\n",
                .options = runs_delete_options,
                .max_pos = 1,
                .run = ctl_cmd_runs_delete,
        },
        {
                .name = "runs load",
                .usage = "NAME|ID",
                .summary = "Load a run into a new runner, by display name or run id",
                .details = "A run id (a UUID) calls manager.create_runner_from_id; anything else is a\n"
                           "display name and calls manager.create_runner_from_name, which loads the most\n"
                           "recent run of that name. Prints the new runner's id and jobs, then the\n"
                           "commands that download its results (or wait for its jobs). The runner's\n"
                           "display name gets a -vN suffix; running it again makes a new run.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runs load 9b1d5c7e-1111-4a4a-8b8b-000000000001\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runs_load,
        },
        {
                .name = "avatarize",
                .usage = "FILE [OPTIONS]",
                .summary = "Avatarize a CSV file in one go: upload, run, wait, download",
                .help = "  --name NAME           the run's display name (default: FILE's name without\n"
                        "                        its extension)\n"
                        "  --table NAME          the table's name (default: the same)\n"
                        "  --k N                 the avatarization's k, 2 to 1000 (default 5)\n"
                        "  --jobs LIST           the jobs to run, comma-separated: standard,\n"
                        "                        signal_metrics, privacy_metrics, report (default all;\n"
                        "                        report also makes report_pia)\n"
                        "  --output DIR          where the results go (default NAME-avatars; created)\n"
                        "  --force               replace files that exist in DIR\n"
                        "  --no-wait             start the run and print the commands that follow it\n"
                        "  --timeout-wait S      stop waiting after S seconds (default 86400)\n",
                .details = "Calls manager.create_runner, runner.add_table (FILE goes as a descriptor,\n"
                           "opened read-only; - is stdin and needs --name), runner.set_parameters (k),\n"
                           "runner.run and runner.wait, then runner.list_results and runner.download\n"
                           "into new files in DIR: the shuffled avatars, the privacy and signal\n"
                           "metrics, the report (pdf) and the PIA report (docx), under the server's\n"
                           "file names. Existing files are not replaced without --force, and nothing\n"
                           "is downloaded then. On a terminal, stderr shows the upload (bytes,\n"
                           "percentage, rate), then a line per job redrawn in place, then each file;\n"
                           "otherwise plain lines. At the end the files written are listed with their\n"
                           "sizes; with JSON output one object tells the runner id, run id, jobs and\n"
                           "files (also after a failure, once the runner exists). A failed job exits\n"
                           "8 with its exception. Ctrl-C while waiting leaves the run going on the\n"
                           "server and prints the commands that reattach to it.\n"
                           "\n"
                           "Examples:\n"
                           "  avatarctl avatarize iris.csv\n"
                           "  avatarctl avatarize patients.csv --k 10 --output results --no-wait\n",
                .options = avatarize_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_avatarize,
        },
        {
                .name = "runner create",
                .usage = "NAME [OPTIONS]",
                .summary = "Create a runner in the daemon",
                .help = "  --seed N                    the random seed\n"
                        "  --max-distribution-plots N  at most N distribution plots in the report\n"
                        "  --pia-data-recipient R      unknown, opendata, contractual_thirdparty,\n"
                        "                              internal, outside_eu, trusted_thirdparty\n"
                        "  --pia-data-type T           unknown, health, hr, mobility, insurance,\n"
                        "                              finance, education\n"
                        "  --pia-data-subject S        unknown, patients, employees, clients, users,\n"
                        "                              students\n"
                        "  --pia-sensitivity-level L   very-high, high, medium, low, very-low,\n"
                        "                              negligible, undefined\n"
                        "  --language en|fr            the language of the reports\n",
                .details = "Calls manager.create_runner. NAME is the display name of the runs (1 to 255\n"
                           "characters). The runner belongs to you and survives daemon restarts; the\n"
                           "commands below take its id.\n",
                .options = runner_create_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_create,
        },
        {
                .name = "runner create-from-yaml",
                .usage = "NAME FILE|-",
                .summary = "Create a runner from Avatar resource YAML",
                .details = "Calls manager.create_runner_from_yaml. A regular FILE goes as a descriptor;\n"
                           "a pipe (or - for stdin) is read and sent inline (at most 8 MiB). The\n"
                           "display name gets a -vN suffix.\n",
                .min_pos = 2,
                .max_pos = 2,
                .run = ctl_cmd_runner_create_from_yaml,
        },
        {
                .name = "runner list",
                .usage = "[--all]",
                .summary = "List your runners (--all: everyone's, for admins)",
                .help = "  --all          every runner of every user (admin role)\n",
                .details = "Calls runner.list.\n",
                .options = runner_list_options,
                .run = ctl_cmd_runner_list,
        },
        {
                .name = "runner add-table",
                .usage = "RUNNER TABLE FILE|- [OPTIONS]",
                .summary = "Upload a table (a file or stdin, by descriptor) into a runner",
                .help = "  --primary-key COLUMN      the table's primary key\n"
                        "  --foreign-key COLUMN      a foreign key (repeatable, or comma-separated)\n"
                        "  --time COLUMN             the time column of a time series\n"
                        "  --type COLUMN=TYPE        a column's type: int, bool, category, float,\n"
                        "                            datetime or datetime_tz (repeatable)\n"
                        "  --individual-level        one row per individual\n"
                        "  --no-individual-level     not one row per individual\n"
                        "  --avatar-data FILE|-      existing avatars of the table\n"
                        "  --file-name NAME          the original file name (default: FILE's; its\n"
                        "                            extension tells the format)\n",
                .details = "Calls runner.add_table with FILE opened read-only and passed as a\n"
                           "descriptor (- passes stdin as it is, a file or a pipe); the daemon streams\n"
                           "it to the server's storage. Progress goes to stderr.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runner add-table RUNNER patients patients.csv --primary-key id\n",
                .options = runner_add_table_options,
                .min_pos = 3,
                .max_pos = 3,
                .run = ctl_cmd_runner_add_table,
        },
        {
                .name = "runner add-link",
                .usage = "RUNNER PARENT.FIELD CHILD.FIELD [--method M]",
                .summary = "Link a parent table's key to a child table's field",
                .help = "  --method M     linear_sum_assignment (default), minimum_distance_assignment,\n"
                        "                 sensitive_original_order_assignment or time_series\n",
                .details = "Calls runner.add_link. TABLE.FIELD is split at its first dot.\n",
                .options = runner_add_link_options,
                .min_pos = 3,
                .max_pos = 3,
                .run = ctl_cmd_runner_add_link,
        },
        {
                .name = "runner set-parameters",
                .usage = "RUNNER TABLE [PARAMETERS]",
                .summary = "Set a table's avatarization and metrics parameters",
                .help = "  --k N                              2 to 1000\n"
                        "  --ncp N                            1 to 10000\n"
                        "  --use-categorical-reduction[=B]    B: true (default) or false\n"
                        "  --column-weights COL=W[,COL=W]     repeatable\n"
                        "  --exclude-variable-names A[,B]     repeatable\n"
                        "  --exclude-variable-method M        row_order, coordinate_similarity\n"
                        "  --exclude-replacement-strategy M   (deprecated name of the above)\n"
                        "  --imputation-method M              knn, mode, median, mean, fast_knn\n"
                        "  --imputation-k N                   1 or more\n"
                        "  --imputation-training-fraction F   above 0, at most 1\n"
                        "  --imputation-return-data-imputed[=B]\n"
                        "  --open-dp-epsilon E                above 0 (excludes --k)\n"
                        "  --fast-dp-epsilon E                above 0 (excludes --k)\n"
                        "  --time-series-nf N                 1 or more\n"
                        "  --time-series-projection-type T    fpca, flatten\n"
                        "  --time-series-nb-points N          1 or more\n"
                        "  --time-series-method M             specified, max, min, mean\n"
                        "  --known-variables A[,B]            repeatable\n"
                        "  --target COLUMN\n"
                        "  --quantile-threshold N             0 or more\n"
                        "  --data-augmentation-strategy S     a number above 0, KEY=W[,KEY=W], or a\n"
                        "                                     name\n"
                        "  --data-augmentation-target-column COLUMN\n"
                        "  --data-augmentation-should-anonymize-original-table[=B]\n"
                        "  --use-excluded-variables-in-metrics[=B]\n"
                        "  --json OBJECT                      the parameters as one JSON object; the\n"
                        "                                     options above override its members\n",
                .details = "Calls runner.set_parameters: the table's previous parameters are replaced.\n"
                           "Each option is one param of the method, in kebab-case. Here --json takes\n"
                           "the params object; for JSON output put the global --json before the\n"
                           "command (or pipe the output). Warnings (k = 2, a deprecated name) go to\n"
                           "stderr.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runner set-parameters RUNNER iris --k 10 --column-weights sepal=2\n",
                .options = ctl_parameter_options,
                .min_pos = 2,
                .max_pos = 2,
                .run = ctl_cmd_runner_set_parameters,
        },
        {
                .name = "runner update-parameters",
                .usage = "RUNNER TABLE [PARAMETERS] [--unset NAME]...",
                .summary = "Change some parameters of a table, keeping the others",
                .help = "  the options of runner set-parameters, and:\n"
                        "  --unset NAME   remove the parameter NAME (e.g. --unset k; repeatable)\n",
                .details = "Calls runner.update_parameters. Fails when the table has no parameters yet.\n",
                .options = ctl_parameter_options,
                .min_pos = 2,
                .max_pos = 2,
                .run = ctl_cmd_runner_update_parameters,
        },
        {
                .name = "runner advise",
                .usage = "RUNNER [--table T]",
                .summary = "Ask the server for parameters and apply them",
                .help = "  --table T      only this table (default: every table)\n",
                .details = "Calls runner.advise_parameters, which runs an advice job on the server and\n"
                           "waits for it, then prints the parameters applied.\n",
                .options = runner_advise_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_advise,
        },
        {
                .name = "runner run",
                .usage = "RUNNER [--jobs LIST] [--ignore-warnings]",
                .summary = "Start a run of the runner's jobs",
                .help = "  --jobs LIST        standard, signal_metrics, privacy_metrics, report,\n"
                        "                     comma-separated (default all; report also makes\n"
                        "                     report_pia)\n"
                        "  --ignore-warnings  do not warn that a new run replaces the previous one\n",
                .details = "Calls runner.run: the runner's resources become a new set on the server and\n"
                           "its jobs are created. Prints the run id and the jobs.\n",
                .options = runner_run_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_run,
        },
        {
                .name = "runner status",
                .usage = "RUNNER [--refresh]",
                .summary = "Show a runner: state, run id, tables, jobs",
                .help = "  --refresh      ask the server for the jobs now\n",
                .details = "Calls runner.get_status.\n",
                .options = runner_status_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_status,
        },
        {
                .name = "runner wait",
                .usage = "RUNNER [--jobs LIST] [--timeout S]",
                .summary = "Wait for a runner's jobs, showing their progress",
                .help = "  --jobs LIST    the jobs to wait for (default all): standard,\n"
                        "                 signal_metrics, privacy_metrics, report, report_pia,\n"
                        "                 advice_parameters\n"
                        "  --timeout S    stop waiting after S seconds (default 3600); the global\n"
                        "                 --timeout goes before the command here\n",
                .details = "Calls runner.wait. On a terminal a line per job is redrawn in place on\n"
                           "stderr. Exits 8 when a job fails (with its exception), 4 when the jobs are\n"
                           "not done in time. Ctrl-C stops waiting; the jobs go on.\n",
                .options = runner_wait_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_wait,
        },
        {
                .name = "runner results",
                .usage = "RUNNER",
                .summary = "List the result files of a runner's finished jobs",
                .details = "Calls runner.list_results and prints, per file, the result name, table and\n"
                           "index that runner download takes.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_results,
        },
        {
                .name = "runner download",
                .usage = "RUNNER RESULT [--table T] [--index N] [-o FILE|-] [--force]",
                .summary = "Download one result into a file, stdout, or the terminal",
                .help = "  --table T          the table, for per-table results\n"
                        "  --index N          which file when there are several (figures)\n"
                        "  -o, --output FILE  create FILE and have the daemon write into it; - is\n"
                        "                     stdout (a file or a pipe) as it is\n"
                        "  --force            replace FILE when it exists\n",
                .details = "Calls runner.download. RESULT is one of shuffled, unshuffled,\n"
                           "original_projections, avatar_projections, projections, figures,\n"
                           "figures_metadata, metadata, run_metadata, privacy_metrics, signal_metrics,\n"
                           "report, report_pia, advice. With -o the file (mode 0644 less the umask)\n"
                           "goes to the daemon as a descriptor and is written byte for byte. Without\n"
                           "-o the result comes inline: text is printed (JSON output: the result\n"
                           "object), binary files (pdf, docx, parquet) and results too large to come\n"
                           "inline are saved under the server's file name.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runner download RUNNER shuffled --table iris -o - | head\n",
                .options = runner_download_options,
                .short_options = "o:",
                .min_pos = 2,
                .max_pos = 2,
                .run = ctl_cmd_runner_download,
        },
        {
                .name = "runner export-yaml",
                .usage = "RUNNER [-o FILE|-] [--force]",
                .summary = "Show a runner's resource YAML, or save it",
                .help = "  -o, --output FILE  write the YAML into FILE (new unless --force); - is\n"
                        "                     stdout\n"
                        "  --force            replace FILE when it exists\n",
                .details = "Calls runner.export_yaml. The YAML can make a runner again with runner\n"
                           "create-from-yaml.\n",
                .options = runner_export_options,
                .short_options = "o:",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_export_yaml,
        },
        {
                .name = "runner delete",
                .usage = "RUNNER [--jobs LIST]",
                .summary = "Delete a runner's jobs on the server",
                .help = "  --jobs LIST    only these jobs: standard, signal_metrics, privacy_metrics,\n"
                        "                 report, report_pia, advice_parameters\n",
                .details = "Calls runner.delete. Prints how many jobs were deleted and failed; exits 1\n"
                           "when any failed. The runner stays (see runner close).\n",
                .options = runner_delete_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_delete,
        },
        {
                .name = "runner close",
                .usage = "RUNNER",
                .summary = "Forget a runner (its jobs on the server stay)",
                .details = "Calls runner.close, and prints the command that loads its run again.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_close,
        },
        {
                .name = "watch",
                .usage = "SET | --runner ID [--jobs NAMES] [--timeout S]",
                .summary = "Follow the jobs of a run as they change",
                .help = "  --runner ID    the jobs of this runner's run instead of a run id\n"
                        "  --jobs NAMES   only these jobs (their names, comma-separated)\n"
                        "  --timeout S    stop after S seconds (default 3600)\n",
                .details = "Calls manager.watch_jobs and prints each jobs.changed notification as it\n"
                           "comes: a line per changed job, or one JSON object per notification with\n"
                           "JSON output, then the jobs at the end. Exits 4 when the jobs are not done\n"
                           "in time, 8 when one of them failed.\n",
                .options = watch_options,
                .max_pos = 1,
                .run = ctl_cmd_watch,
        },
        {
                .name = "help",
                .usage = "[COMMAND]",
                .summary = "Show this help, or the help of one command",
                .max_pos = -1,
                .run = cmd_help,
        },
};

/* Prints the exit code list (shared by --help and the man page's wording). */
static void print_exit_codes(FILE *f) {
        (void) fputs("Exit codes:\n"
                     "  0   success\n"
                     "  1   the call failed (an error not listed below)\n"
                     "  2   usage error, or invalid params / unknown method\n"
                     "  3   cannot reach the daemon (no socket, refused, connection lost)\n"
                     "  4   timed out (--timeout, or the daemon's timeout class)\n"
                     "  5   permission denied (socket access, or the method's role)\n"
                     "  6   not found\n"
                     "  7   upstream problem (Avatar server unreachable or erroring, credential\n"
                     "      rejected, incompatible, rate limited, not authenticated, storage)\n"
                     "  8   job failed\n"
                     "  9   conflict, ambiguous or invalid state, or an output file exists\n"
                     "  10  daemon overloaded or shutting down\n", f);
}

/* Widest "name usage" column of the command list; longer entries put their summary on the
 * next line. */
#define CTL_USAGE_COLUMN_MAX 30

/* Prints the global usage on f. */
static void print_usage(FILE *f) {
        size_t i, width = 0;

        (void) fprintf(f,
                       "Usage: avatarctl [OPTIONS] COMMAND [ARGS]\n"
                       "\n"
                       "Talk to avatard, the Avatar API daemon, over its local socket.\n"
                       "\n"
                       "Commands:\n");
        for (i = 0; i < ELEMENTSOF(commands); i++) {
                size_t w = strlen(commands[i].name) + 1 +
                           (commands[i].usage ? strlen(commands[i].usage) : 0);

                if (w <= CTL_USAGE_COLUMN_MAX)
                        width = MAX(width, w);
        }
        for (i = 0; i < ELEMENTSOF(commands); i++) {
                char buf[256];

                (void) snprintf(buf, sizeof(buf), "%s%s%s", commands[i].name,
                                commands[i].usage ? " " : "", commands[i].usage ?: "");
                if (strlen(buf) > width)
                        (void) fprintf(f, "  %s\n  %-*s  %s\n", buf, (int) width, "",
                                       commands[i].summary);
                else
                        (void) fprintf(f, "  %-*s  %s\n", (int) width, buf, commands[i].summary);
        }
        (void) fprintf(f,
                       "\n"
                       "Options:\n"
                       "  --socket PATH      the daemon's socket (default: $%s, else %s)\n"
                       "  --json             print JSON (the default when stdout is not a terminal)\n"
                       "  --timeout SECONDS  give up on a call after this long (default 60; 0: never)\n"
                       "  -h, --help         show this help\n"
                       "  --version          show the version\n"
                       "\n",
                       AVATAR_CLIENT_SOCKET_ENV, AVATAR_CLIENT_DEFAULT_SOCKET);
        print_exit_codes(f);
}

/* Prints the help of one command on f. */
static void print_command_help(FILE *f, const CtlCommand *cmd) {
        (void) fprintf(f, "Usage: avatarctl %s%s%s\n\n%s.\n", cmd->name, cmd->usage ? " " : "",
                       cmd->usage ?: "", cmd->summary);
        if (cmd->help)
                (void) fprintf(f, "\nOptions:\n%s", cmd->help);
        if (cmd->details)
                (void) fprintf(f, "\n%s", cmd->details);
        (void) fputs("\nThe global options (--socket, --json, --timeout) are accepted after the\n"
                     "command too; see avatarctl --help.\n", f);
}

/* Returns how many leading words of argv spell the command's name, or 0 when they do not. */
static int command_matches(const CtlCommand *cmd, int argc, char **argv) {
        const char *p = cmd->name;
        int k = 0;

        while (*p) {
                size_t l = strcspn(p, " ");

                if (k >= argc || strlen(argv[k]) != l || !strneq(argv[k], p, l))
                        return 0;
                k++;
                p += l;
                p += strspn(p, " ");
        }
        return k;
}

/* Finds the command whose name is the longest match of argv's leading words; NULL when none
 * matches. *ret_words receives the number of words matched. */
static const CtlCommand *find_command(int argc, char **argv, int *ret_words) {
        const CtlCommand *best = NULL;
        int best_words = 0;
        size_t i;

        for (i = 0; i < ELEMENTSOF(commands); i++) {
                int k = command_matches(&commands[i], argc, argv);

                if (k > best_words) {
                        best = &commands[i];
                        best_words = k;
                }
        }
        *ret_words = best_words;
        return best;
}

/* Reports an unknown command; for a group word ("apikey") lists its subcommands. */
static int unknown_command(const char *word) {
        size_t i, l = strlen(word);
        bool group = false;

        for (i = 0; i < ELEMENTSOF(commands); i++)
                if (strneq(commands[i].name, word, l) && commands[i].name[l] == ' ') {
                        if (!group)
                                (void) fprintf(stderr, "avatarctl: '%s' needs a subcommand:", word);
                        (void) fprintf(stderr, " %s", commands[i].name + l + 1);
                        group = true;
                }
        if (group) {
                (void) fputc('\n', stderr);
                return CTL_EXIT_USAGE;
        }
        (void) fputs("avatarctl: unknown command '", stderr);
        output_sanitized(stderr, word);
        (void) fputs("' (see avatarctl --help)\n", stderr);
        return CTL_EXIT_USAGE;
}

/* Parses --timeout SECONDS: a non-negative decimal number; 0 means no timeout (-1 ms). */
static int parse_timeout(const char *s, int *ret_ms) {
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > CTL_TIMEOUT_MAX_S)
                return -EINVAL;
        if (v <= 0.0) /* exactly 0: no timeout */
                *ret_ms = -1;
        else
                *ret_ms = (int) MAX(ceil(v * 1000.0), 1.0);
        return 0;
}

/* Applies a global option. Returns -1 to go on, or an exit code to stop with (after --help,
 * --version or an invalid value). */
static int apply_global_option(Ctl *ctl, int opt, const char *arg) {
        switch (opt) {
        case OPT_SOCKET:
                if (isempty(arg))
                        return ctl_fail(CTL_EXIT_USAGE, NULL, "--socket needs a path");
                ctl->socket_path = arg;
                return -1;
        case OPT_JSON:
                ctl->force_json = true;
                return -1;
        case OPT_TIMEOUT:
                if (parse_timeout(arg, &ctl->timeout_ms) < 0)
                        return ctl_fail(CTL_EXIT_USAGE, NULL,
                                        "invalid --timeout '%s' (seconds, 0 for none)", arg);
                ctl->timeout_given = true;
                return -1;
        case OPT_VERSION:
                (void) printf("avatarctl %s (protocol %d)\n", AVATARD_VERSION, PROTOCOL_VERSION);
                return CTL_EXIT_OK;
        case OPT_HELP:
                print_usage(stdout);
                return CTL_EXIT_OK;
        default:
                return -1;
        }
}

/* Reports a getopt failure: an unknown option, one missing its argument, or one given an
 * argument it does not take. Whatever follows '=' is left out of the message: it may be a
 * secret typed in the wrong place ("--password=...") and must not be echoed. */
static int option_error(int c, char **argv) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        size_t l = strcspn(arg, "=");

        if (c == ':')
                return ctl_fail(CTL_EXIT_USAGE, NULL, "option '%.*s' needs an argument", (int) l, arg);
        if (optopt > 0 && optopt < 0x100)
                return ctl_fail(CTL_EXIT_USAGE, NULL, "unknown option '-%c'", optopt);
        if (optopt > 0 && arg[l] == '=')
                return ctl_fail(CTL_EXIT_USAGE, NULL, "option '%.*s' takes no argument", (int) l, arg);
        return ctl_fail(CTL_EXIT_USAGE, NULL, "unknown option '%.*s'", (int) l, arg);
}

/* Parses a command's arguments (argv[0] is its last word): its options, the global options,
 * and the positional arguments. Returns -1 to go on, or an exit code to stop with. */
static int parse_command_args(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv,
                              CtlArgs *args) {
        struct option opts[CTL_COMMAND_OPTIONS_MAX + ELEMENTSOF(global_options)] = {};
        char optstring[32] = ":h";
        size_t n = 0, i;
        int c, r;

        for (i = 0; cmd->options && cmd->options[i].name; i++) {
                assert(n < CTL_COMMAND_OPTIONS_MAX);
                opts[n++] = cmd->options[i];
        }
        for (i = 0; global_options[i].name; i++)
                opts[n++] = global_options[i];
        if (cmd->short_options) {
                assert(strlen(optstring) + strlen(cmd->short_options) < sizeof(optstring));
                strcat(optstring, cmd->short_options);
        }

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, optstring, opts, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return option_error(c, argv);
                if (c == OPT_HELP) {
                        print_command_help(stdout, cmd);
                        return CTL_EXIT_OK;
                }
                if (c > 0 && c < 0x80 && cmd->short_options && strchr(cmd->short_options, c))
                        c += CTL_OPT_COMMAND_BASE;
                if (c >= CTL_OPT_COMMAND_BASE) {
                        if (args->n_opts >= CTL_OPTS_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, cmd->name, "too many options");
                        args->opts[args->n_opts++] = (CtlOpt) { .id = c, .arg = optarg };
                        continue;
                }
                r = apply_global_option(ctl, c, optarg);
                if (r >= 0)
                        return r;
        }

        args->command = cmd->name;
        args->pos = argv + optind;
        args->n_pos = argc - optind;
        if (args->n_pos < cmd->min_pos || (cmd->max_pos >= 0 && args->n_pos > cmd->max_pos)) {
                (void) fprintf(stderr, "avatarctl: %s: expected arguments: %s\n", cmd->name,
                               cmd->usage ?: "(none)");
                return CTL_EXIT_USAGE;
        }
        return -1;
}

/* "avatarctl help [COMMAND...]". */
static int cmd_help(Ctl *ctl, const CtlArgs *args) {
        const CtlCommand *cmd;
        int words;

        (void) ctl;
        if (args->n_pos == 0) {
                print_usage(stdout);
                return CTL_EXIT_OK;
        }
        cmd = find_command(args->n_pos, args->pos, &words);
        if (!cmd || words != args->n_pos)
                return unknown_command(args->pos[0]);
        print_command_help(stdout, cmd);
        return CTL_EXIT_OK;
}

/* Prints one error line and returns the exit code given. */
int ctl_fail(int code, const char *what, const char *format, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        ctl_before_message();
        (void) fputs("avatarctl: ", stderr);
        if (what) {
                output_sanitized(stderr, what);
                (void) fputs(": ", stderr);
        }
        output_sanitized(stderr, buf);
        (void) fputc('\n', stderr);
        return code;
}

/* Reports an allocation failure and returns the exit code for it. */
int ctl_fail_oom(const char *what) {
        return ctl_fail(CTL_EXIT_FAILED, what, "%s", strerror(ENOMEM));
}

/* The message hook (ctl_set_message_hook()). avatarctl is one thread; file scope is fine. */
static void (*message_hook)(void *userdata);
static void *message_hook_userdata;

/* Sets or clears the function run before a message goes to stderr. */
void ctl_set_message_hook(void (*hook)(void *userdata), void *userdata) {
        message_hook = hook;
        message_hook_userdata = hook ? userdata : NULL;
}

/* Runs the message hook. */
void ctl_before_message(void) {
        if (message_hook)
                message_hook(message_hook_userdata);
}

/* Prints one warning line on stderr. */
void ctl_warning(const char *text) {
        ctl_before_message();
        (void) fputs("avatarctl: warning: ", stderr);
        output_sanitized(stderr, text);
        (void) fputc('\n', stderr);
}

/* The socket path a connection attempt uses: --socket, $AVATARD_SOCKET or the default. */
const char *ctl_socket_path(const Ctl *ctl) {
        const char *p;

        if (ctl->socket_path)
                return ctl->socket_path;
        p = secure_getenv(AVATAR_CLIENT_SOCKET_ENV);
        return isempty(p) ? AVATAR_CLIENT_DEFAULT_SOCKET : p;
}

/* What to look at when the daemon cannot be reached: under systemd, a service that fails to
 * start leaves clients with a missing socket, a refused or a dropped connection. */
#define CTL_HINT_NOT_RUNNING \
        "avatard is not running or failed to start; see 'systemctl status avatard.socket avatard.service' " \
        "and 'journalctl -u avatard'"

/* Connects on first use; maps connect errors to exit codes. */
int ctl_connect(Ctl *ctl) {
        int r;

        if (ctl->client)
                return CTL_EXIT_OK;
        r = avatar_client_connect(ctl->socket_path, &ctl->client);
        if (r >= 0)
                return CTL_EXIT_OK;

        switch (r) {
        case -EACCES:
        case -EPERM:
                return ctl_fail(CTL_EXIT_PERMISSION, NULL,
                                "cannot connect to %s: %s; only root and members of the 'avatar' group may "
                                "use avatard: join it (usermod -aG avatar USER) and log in again",
                                ctl_socket_path(ctl), strerror(-r));
        case -ENAMETOOLONG:
        case -EINVAL:
                return ctl_fail(CTL_EXIT_USAGE, NULL, "invalid socket path %s: %s",
                                ctl_socket_path(ctl), strerror(-r));
        case -ENOENT:
        case -ECONNREFUSED:
        case -ECONNRESET:
                return ctl_fail(CTL_EXIT_UNREACHABLE, NULL, "cannot connect to %s: %s; " CTL_HINT_NOT_RUNNING,
                                ctl_socket_path(ctl), strerror(-r));
        default:
                return ctl_fail(CTL_EXIT_UNREACHABLE, NULL, "cannot connect to %s: %s",
                                ctl_socket_path(ctl), strerror(-r));
        }
}

/* The exit code of a daemon error class, by its stable name; CTL_EXIT_FAILED when unknown. */
int ctl_exit_code_from_name(const char *name) {
        static const struct {
                const char *name;
                int code;
        } table[] = {
                { "invalid_params",        CTL_EXIT_USAGE },
                { "method_not_found",      CTL_EXIT_USAGE },
                { "invalid_request",       CTL_EXIT_USAGE },
                { "timeout",               CTL_EXIT_TIMEOUT },
                { "permission_denied",     CTL_EXIT_PERMISSION },
                { "not_found",             CTL_EXIT_NOT_FOUND },
                { "upstream_unreachable",  CTL_EXIT_UPSTREAM },
                { "upstream_http_error",   CTL_EXIT_UPSTREAM },
                { "credential_rejected",   CTL_EXIT_UPSTREAM },
                { "incompatible",          CTL_EXIT_UPSTREAM },
                { "rate_limited",          CTL_EXIT_UPSTREAM },
                { "not_authenticated",     CTL_EXIT_UPSTREAM },
                { "upstream_bad_response", CTL_EXIT_UPSTREAM },
                { "storage_error",         CTL_EXIT_UPSTREAM },
                { "job_failed",            CTL_EXIT_JOB_FAILED },
                { "conflict",              CTL_EXIT_CONFLICT },
                { "ambiguous",             CTL_EXIT_CONFLICT },
                { "invalid_state",         CTL_EXIT_CONFLICT },
                { "overloaded",            CTL_EXIT_OVERLOADED },
                { "shutting_down",         CTL_EXIT_OVERLOADED },
        };
        size_t i;

        for (i = 0; name && i < ELEMENTSOF(table); i++)
                if (streq(table[i].name, name))
                        return table[i].code;
        return CTL_EXIT_FAILED;
}

/* Maps a call's failure (errno and error class) to an exit code. */
int ctl_exit_code(int r, const AvatarClientError *e) {
        const RpcErrorInfo *info;

        switch (r) {
        case 0:
                return CTL_EXIT_OK;
        case -EREMOTEIO:
                break;
        case -ETIMEDOUT:
                return CTL_EXIT_TIMEOUT;
        case -ECONNRESET:
        case -ENOTCONN:
        case -EPIPE:
        case -ENOENT:
        case -ECONNREFUSED:
                return CTL_EXIT_UNREACHABLE;
        case -EACCES:
        case -EPERM:
                return CTL_EXIT_PERMISSION;
        case -EINVAL:
        case -E2BIG:
                return CTL_EXIT_USAGE;
        default:
                return CTL_EXIT_FAILED;
        }

        if (!e)
                return CTL_EXIT_FAILED;
        /* The codes are stable once published: a code this avatarctl knows decides through its
         * class's name; the name the daemon sent decides for codes it does not know (a newer
         * daemon). */
        info = rpc_error_info(e->code);
        return ctl_exit_code_from_name(info->code == e->code ? info->name : e->name);
}

/* Writes s for a shell command line: as it is when it holds only characters no shell
 * interprets, else single-quoted (with ' as '\''). Sanitized: control characters become '?'. */
void ctl_print_shell_word(FILE *f, const char *s) {
        _cleanup_free_ char *q = NULL;
        const char *p;
        char *t;

        if (!isempty(s) && s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_.,:/@%+=")] == '\0') {
                output_sanitized(f, s);
                return;
        }
        s = s ?: "";
        q = malloc(strlen(s) * 4 + 3);
        if (!q)
                return;
        t = q;
        *t++ = '\'';
        for (p = s; *p; p++) {
                if (*p == '\'') {
                        memcpy(t, "'\\''", 4);
                        t += 4;
                } else
                        *t++ = *p;
        }
        *t++ = '\'';
        *t = '\0';
        output_sanitized(f, q);
}

/* Writes "avatarctl [--socket PATH] " for a command to run. */
void ctl_print_command_start(FILE *f, const Ctl *ctl) {
        (void) fputs("avatarctl ", f);
        if (ctl->socket_path) {
                (void) fputs("--socket ", f);
                ctl_print_shell_word(f, ctl->socket_path);
                (void) fputc(' ', f);
        }
}

/* Writes the avatarctl command line that makes `call` ({"method", "params"}, from an error's
 * data), keeping an explicit --socket. The calls the daemon suggests that a command of ours
 * makes are written as that command; any other as "avatarctl call METHOD PARAMS". Returns
 * false when `call` is not of that shape (nothing written). */
static bool print_call_command(FILE *f, const Ctl *ctl, json_object *call) {
        json_object *m = NULL, *params = NULL, *id = NULL;
        const char *method;

        if (!json_object_object_get_ex(call, "method", &m) || !json_object_is_type(m, json_type_string))
                return false;
        method = json_object_get_string(m);
        (void) json_object_object_get_ex(call, "params", &params);

        ctl_print_command_start(f, ctl);
        if (streq(method, "manager.delete_job_by_id") &&
            json_object_object_get_ex(params, "id", &id) && json_object_is_type(id, json_type_string)) {
                (void) fputs("runs delete --id ", f);
                ctl_print_shell_word(f, json_object_get_string(id));
                return true;
        }
        (void) fputs("call ", f);
        ctl_print_shell_word(f, method);
        if (params) {
                (void) fputc(' ', f);
                ctl_print_shell_word(f, json_object_to_json_string_ext(params, JSONRPC_WIRE_FLAGS));
        }
        return true;
}

/* Prints one candidate of an ambiguous error: the command that picks it when the daemon
 * named the call to make (with what tells the candidates apart as a shell comment), else
 * the candidate as compact JSON. */
static void print_candidate(const Ctl *ctl, json_object *cand) {
        json_object *call = NULL, *v;
        _cleanup_free_ char *t = NULL;

        (void) fputs("    ", stderr);
        if (json_object_object_get_ex(cand, "call", &call) && print_call_command(stderr, ctl, call)) {
                bool first = true;

                if (json_object_object_get_ex(cand, "created_at", &v) && v &&
                    output_format_time(v, &t) >= 0) {
                        (void) fputs("   # created ", stderr);
                        output_sanitized(stderr, t);
                        first = false;
                }
                if (json_object_object_get_ex(cand, "jobs", &v) && json_object_is_type(v, json_type_int)) {
                        (void) fprintf(stderr, "%s%" PRId64 " job%s", first ? "   # " : ", ",
                                       json_object_get_int64(v), json_object_get_int64(v) == 1 ? "" : "s");
                }
                (void) fputc('\n', stderr);
                return;
        }
        if (output_value_text(cand, &t) < 0)
                return;
        (void) fputs("- ", stderr);
        output_sanitized(stderr, t);
        (void) fputc('\n', stderr);
}

/* Prints the members of error.data that help the user (all but name and retryable), one
 * per line, indented; arrays one element per line, candidates as the commands to run. */
static void print_error_data(const Ctl *ctl, json_object *data) {
        if (!json_object_is_type(data, json_type_object))
                return;

        json_object_object_foreach(data, key, v) {
                _cleanup_free_ char *t = NULL;

                if (streq(key, "name") || streq(key, "retryable"))
                        continue;
                (void) fputs("  ", stderr);
                output_sanitized(stderr, key);
                (void) fputc(':', stderr);
                if (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) {
                        size_t i, n = json_object_array_length(v);

                        (void) fputc('\n', stderr);
                        for (i = 0; i < n; i++) {
                                json_object *e = json_object_array_get_idx(v, i);
                                _cleanup_free_ char *et = NULL;

                                if (streq(key, "candidates")) {
                                        print_candidate(ctl, e);
                                        continue;
                                }
                                if (output_value_text(e, &et) < 0)
                                        return;
                                (void) fputs("    - ", stderr);
                                output_sanitized(stderr, et);
                                (void) fputc('\n', stderr);
                        }
                        continue;
                }
                if (output_value_text(v, &t) < 0)
                        return;
                (void) fputc(' ', stderr);
                output_sanitized(stderr, t);
                (void) fputc('\n', stderr);
        }
}

/* Prints "avatarctl: METHOD: MESSAGE (NAME)" and the error's data. A message of several lines
 * keeps its first line there (without a trailing colon) and the others follow, indented:
 * none of the daemon's text is left out (for an ambiguous name it holds the exact calls to
 * make; the candidates then add the avatarctl commands). */
static void print_error(const Ctl *ctl, const char *method, const AvatarClientError *e) {
        const char *msg = e->message ?: "", *nl = strchr(msg, '\n');
        size_t first = nl ? (size_t) (nl - msg) : strlen(msg);
        _cleanup_free_ char *line = strndup(msg, first);

        if (line && nl) {
                size_t l = strlen(line);

                while (l > 0 && (line[l - 1] == ':' || line[l - 1] == ' '))
                        line[--l] = '\0';
        }
        ctl_before_message();
        (void) fputs("avatarctl: ", stderr);
        output_sanitized(stderr, method);
        (void) fputs(": ", stderr);
        output_sanitized(stderr, line ?: msg);
        (void) fputs(" (", stderr);
        output_sanitized(stderr, avatar_client_error_name(e));
        (void) fputs(")\n", stderr);

        if (nl) {
                const char *p = nl + 1;

                while (*p) {
                        size_t l = strcspn(p, "\n");
                        _cleanup_free_ char *part = strndup(p, l);

                        if (part && !isempty(part + strspn(part, " "))) {
                                (void) fputs("  ", stderr);
                                output_sanitized(stderr, part + strspn(part, " "));
                                (void) fputc('\n', stderr);
                        }
                        p += l;
                        if (*p == '\n')
                                p++;
                }
        }
        print_error_data(ctl, e->data);
}

/* Calls a method, printing the error and returning its exit code on failure. */
int ctl_call(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
             json_object **ret_result) {
        return ctl_call_full(ctl, method, params, fds, n_fds, ctl->timeout_ms, ret_result, NULL, NULL);
}

/* Calls a method with a deadline; on failure prints the error, hands it over and returns its
 * exit code. */
int ctl_call_full(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
                  int timeout_ms, json_object **ret_result, AvatarClientError *ret_error, int *ret_errno) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        int code, r;

        code = ctl_call_quiet(ctl, method, params, fds, n_fds, timeout_ms, ret_result, &e, &r);
        if (code == CTL_EXIT_OK) {
                if (ret_errno)
                        *ret_errno = 0;
                return code;
        }
        if (ret_errno)
                *ret_errno = r == 0 ? -ENOTCONN : r;
        ctl_report_call_error(ctl, method, r, &e, timeout_ms);
        if (r == -EREMOTEIO && ret_error) {
                *ret_error = e;
                e = (AvatarClientError) AVATAR_CLIENT_ERROR_INIT;
        }
        return code;
}

/* Calls a method with a deadline; hands a failure over without printing it. */
int ctl_call_quiet(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
                   int timeout_ms, json_object **ret_result, AvatarClientError *ret_error,
                   int *ret_errno) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        json_object *result = NULL;
        int r, code;

        if (ret_errno)
                *ret_errno = 0;
        code = ctl_connect(ctl);
        if (code != CTL_EXIT_OK)
                return code;

        r = avatar_client_call(ctl->client, method, params, fds, n_fds, timeout_ms, &result, &e);
        if (r >= 0) {
                if (ret_result)
                        *ret_result = result;
                else
                        json_object_put(result);
                return CTL_EXIT_OK;
        }
        if (ret_errno)
                *ret_errno = r;
        code = ctl_exit_code(r, &e);
        if (r == -EREMOTEIO && ret_error) {
                *ret_error = e;
                e = (AvatarClientError) AVATAR_CLIENT_ERROR_INIT;
        }
        return code;
}

/* Prints a failed call: the daemon's error with its data, or what went wrong locally. */
void ctl_report_call_error(Ctl *ctl, const char *method, int r, const AvatarClientError *e,
                           int timeout_ms) {
        switch (r) {
        case 0:
                return;
        case -EREMOTEIO:
                if (e) {
                        print_error(ctl, method, e);
                        return;
                }
                (void) ctl_fail(0, method, "the daemon answered with an error");
                return;
        case -ETIMEDOUT:
                (void) ctl_fail(0, method, "no reply within %g s (timeout)", timeout_ms / 1000.0);
                return;
        case -ECONNRESET:
        case -ENOTCONN:
        case -EPIPE:
                (void) ctl_fail(0, method, "the daemon closed the connection before answering; "
                                CTL_HINT_NOT_RUNNING);
                return;
        case -EMSGSIZE:
                (void) ctl_fail(0, method, "the reply is larger than %u bytes",
                                AVATAR_CLIENT_REPLY_MAX_DEFAULT);
                return;
        case -EBADMSG:
                (void) ctl_fail(0, method, "malformed reply from the daemon");
                return;
        default:
                (void) ctl_fail(0, method, "%s", strerror(-r));
                return;
        }
}

/* Prints JSON, pretty on a terminal, compact otherwise. */
void ctl_print_json(const Ctl *ctl, json_object *o) {
        int flags = ctl->tty ? (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                JSON_C_TO_STRING_NOSLASHESCAPE)
                             : JSONRPC_WIRE_FLAGS;
        const char *s;

        s = json_object_to_json_string_ext(o, flags);
        (void) puts(s ? s : "null");
}

/* Prints a result as JSON or for humans. */
int ctl_print_result(Ctl *ctl, const char *what, json_object *result, ctl_print_fn human, void *userdata) {
        int r;

        if (ctl->json) {
                ctl_print_json(ctl, result);
                return CTL_EXIT_OK;
        }
        r = human ? human(ctl, result, userdata) : output_tree(stdout, result, 0);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, what, "cannot print the result: %s", strerror(-r));
        return CTL_EXIT_OK;
}

/* Calls a method and prints its result as JSON or for humans. */
int ctl_call_and_print(Ctl *ctl, const char *method, json_object *params, ctl_print_fn human,
                       void *userdata) {
        _cleanup_(unref_jsonp) json_object *result = NULL;
        int code;

        code = ctl_call(ctl, method, params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_print_result(ctl, method, result, human, userdata);
}

/* The columns of a table, for print_table(). */
typedef struct TableColumns {
        const OutputColumn *cols;
        size_t n_cols;
} TableColumns;

/* ctl_print_fn: rows as an aligned table with the TableColumns in userdata. */
static int print_table(Ctl *ctl, json_object *rows, void *userdata) {
        const TableColumns *t = userdata;

        (void) ctl;
        return output_table(stdout, rows, t->cols, t->n_cols);
}

/* Prints rows as JSON or as an aligned table. */
int ctl_print_rows(Ctl *ctl, const char *what, json_object *rows, const OutputColumn *cols,
                   size_t n_cols) {
        TableColumns t = { .cols = cols, .n_cols = n_cols };

        return ctl_print_result(ctl, what, rows, print_table, &t);
}

/* Parses a bounded decimal integer from the command line. */
int ctl_parse_int(const char *what, const char *s, long long min, long long max, long long *ret) {
        char *end = NULL;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return ctl_fail(CTL_EXIT_USAGE, what, "expected an integer from %lld to %lld, got '%s'",
                                min, max, s);
        *ret = v;
        return CTL_EXIT_OK;
}

/* Parses an integer option (when given) and adds it to params as `key`. Returns an exit code. */
int ctl_add_int_param(const CtlArgs *args, json_object *params, const char *flag, const char *value,
                      const char *key, long long min, long long max) {
        long long n;
        int code;

        if (!value)
                return CTL_EXIT_OK;
        code = ctl_parse_int(flag, value, min, max, &n);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_add_member(params, key, json_object_new_int64(n)) < 0)
                return ctl_fail_oom(args->command);
        return CTL_EXIT_OK;
}

/* True when s is one of the n strings of set. */
bool ctl_in_set(const char *s, const char *const *set, size_t n) {
        size_t i;

        for (i = 0; s && i < n; i++)
                if (streq(s, set[i]))
                        return true;
        return false;
}

/* Writes "a, b or c" for a usage message into a new string (NULL on OOM). */
static char *join_choices(const char *const *set, size_t n) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0, i;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        for (i = 0; i < n; i++)
                (void) fprintf(f, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", set[i]);
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(text);
}

/* Checks that value is one of set. */
int ctl_check_choice(const char *command, const char *what, const char *value, const char *const *set,
                     size_t n) {
        _cleanup_free_ char *choices = NULL;

        if (ctl_in_set(value, set, n))
                return CTL_EXIT_OK;
        choices = join_choices(set, n);
        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected %s, got '%s'", what, choices ?: "?", value ?: "");
}

/* Checks the canonical UUID form. */
bool ctl_is_uuid(const char *s) {
        size_t i;

        if (!s || strlen(s) != 36)
                return false;
        for (i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char) s[i]))
                        return false;
        }
        return true;
}

/* The argument of the last occurrence of a command option. */
const char *ctl_opt(const CtlArgs *args, int id) {
        size_t i;

        for (i = args->n_opts; i > 0; i--)
                if (args->opts[i - 1].id == id)
                        return args->opts[i - 1].arg;
        return NULL;
}

/* Whether a command option was given. */
bool ctl_opt_given(const CtlArgs *args, int id) {
        size_t i;

        for (i = 0; i < args->n_opts; i++)
                if (args->opts[i].id == id)
                        return true;
        return false;
}

/* Reads all of stdin, up to a limit. */
int ctl_read_stdin(size_t max, char **ret, size_t *ret_len) {
        return ctl_read_fd(STDIN_FILENO, max, ret, ret_len);
}

/* Reads a descriptor to its end, up to a limit. */
int ctl_read_fd(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        for (;;) {
                ssize_t n;

                if (len == alloc) {
                        size_t a = MAX(alloc * 2, (size_t) 4096);
                        char *b;

                        if (alloc >= max + 1)
                                return -EFBIG;
                        a = MIN(a, max + 1);
                        b = realloc(buf, a + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        alloc = a;
                }
                n = read(fd, buf + len, alloc - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        buf = buf ?: strdup("");
        if (!buf)
                return -ENOMEM;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* Parses global options, finds the command, parses its arguments and runs it. */
int main(int argc, char *argv[]) {
        Ctl ctl = { .timeout_ms = CTL_TIMEOUT_DEFAULT_MS };
        CtlArgs args = {};
        const CtlCommand *cmd;
        int c, r, words;

        ctl.tty = isatty(STDOUT_FILENO) > 0;
        ctl.stderr_tty = isatty(STDERR_FILENO) > 0;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", global_options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return option_error(c, argv);
                r = apply_global_option(&ctl, c, optarg);
                if (r >= 0)
                        return r;
        }
        if (optind >= argc) {
                print_usage(stderr);
                return CTL_EXIT_USAGE;
        }

        cmd = find_command(argc - optind, argv + optind, &words);
        if (!cmd)
                return unknown_command(argv[optind]);

        /* The command's arguments, with its last word standing in for argv[0]. */
        r = parse_command_args(&ctl, cmd, argc - optind - words + 1, argv + optind + words - 1,
                               &args);
        if (r >= 0)
                return r;

        ctl.json = ctl.force_json || !ctl.tty;

        r = cmd->run(&ctl, &args);
        ctl.client = avatar_client_free(ctl.client);

        if (fflush(stdout) != 0 || ferror(stdout)) {
                (void) fprintf(stderr, "avatarctl: cannot write the output: %s\n", strerror(errno));
                if (r == CTL_EXIT_OK)
                        r = CTL_EXIT_FAILED;
        }
        return r;
}
