/* SPDX-License-Identifier: MIT */
/*
 * avatarctl's command table: every command with its usage, summary, options and help, in the
 * order of avatarctl --help. Add a row (and a handler in the avatarctl-*.c file of its method
 * family) to add a command; multi-word names ("apikey create") group subcommands.
 */
#include "avatarctl.h"

/* Options of status. */
static const struct option status_options[] = {
        { "verbose", no_argument, NULL, CTL_OPT_VERBOSE },
        {}
};

/* Options of health. */
static const struct option health_options[] = {
        { "stale-ok", no_argument, NULL, CTL_OPT_STALE_OK },
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
        { "id",  required_argument, NULL, CTL_OPT_ID },
        { "yes", no_argument,       NULL, CTL_OPT_YES },
        {}
};

static const struct option yes_options[] = {
        { "yes", no_argument, NULL, CTL_OPT_YES },
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
        { "no-check",            no_argument,       NULL, CTL_OPT_NO_CHECK },
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

/* --wait-timeout is the wait's deadline; the global --timeout, when given, caps it. */
static const struct option runner_wait_options[] = {
        { "jobs",         required_argument, NULL, CTL_OPT_JOBS },
        { "wait-timeout", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
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
        { "yes",  no_argument,       NULL, CTL_OPT_YES },
        {}
};

static const struct option avatarize_options[] = {
        { "name",         required_argument, NULL, CTL_OPT_NAME },
        { "table",        required_argument, NULL, CTL_OPT_TABLE },
        { "k",            required_argument, NULL, CTL_OPT_K },
        { "jobs",         required_argument, NULL, CTL_OPT_JOBS },
        { "output",       required_argument, NULL, CTL_OPT_OUTPUT },
        { "force",        no_argument,       NULL, CTL_OPT_FORCE },
        { "no-wait",      no_argument,       NULL, CTL_OPT_NO_WAIT },
        { "wait-timeout", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
        { "resume",       required_argument, NULL, CTL_OPT_RESUME },
        { "rm",           no_argument,       NULL, CTL_OPT_RM },
        { "no-check",     no_argument,       NULL, CTL_OPT_NO_CHECK },
        /* the old spelling of --wait-timeout */
        { "timeout-wait", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
        {}
};

static const struct option watch_options[] = {
        { "runner",       required_argument, NULL, CTL_OPT_RUNNER },
        { "jobs",         required_argument, NULL, CTL_OPT_JOBS },
        { "wait-timeout", required_argument, NULL, CTL_OPT_WAIT_TIMEOUT },
        {}
};

/* Every command. Add a row (and a handler in the avatarctl-*.c file of its method family) to
 * add a command; multi-word names ("apikey create") group subcommands. The order is the order
 * of avatarctl --help. */
const CtlCommand ctl_commands[] = {
        {
                .name = "status",
                .usage = "[--verbose]",
                .summary = "Show the daemon's version, upstream, key, uptime, calls and runners",
                .help = "  -v, --verbose  everything daemon.status reports: connections, limits,\n"
                        "                 requests and errors per kind, cache, storage, ...\n",
                .details = "Calls daemon.status. Without --verbose, one screen: the version, the\n"
                           "Avatar server and its state, where the API key comes from, the uptime, the\n"
                           "calls served and failed, and the runners held (naming those not saved:\n"
                           "a full state directory; the daemon keeps trying to save them).\n",
                .options = status_options,
                .short_options = "v",
                .run = ctl_cmd_status,
                .calls = "daemon.status",
                .ids = "pid",
        },
        {
                .name = "ping",
                .summary = "Check that the daemon answers, and how fast",
                .details = "Calls daemon.ping (which needs no role) and prints the round-trip time of\n"
                           "the call, connection excluded. Exits 0 when the daemon answered.\n",
                .run = ctl_cmd_ping,
                .calls = "daemon.ping",
        },
        {
                .name = "reload",
                .summary = "Make the daemon re-read its configuration",
                .details = "Calls daemon.reload, as systemctl reload or SIGHUP would. A file with an\n"
                           "error is rejected, naming the key and line, and the current configuration\n"
                           "stays in force (exit 9).\n",
                .run = ctl_cmd_reload,
                .calls = "daemon.reload",
        },
        {
                .name = "methods",
                .usage = "[NAME]",
                .summary = "List the methods the daemon serves, or describe one",
                .max_pos = 1,
                .run = ctl_cmd_methods,
                .calls = "rpc.discover",
                .ids = "name",
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
                .usage = "[--stale-ok]",
                .summary = "Show the Avatar server's health; fail when it is unreachable",
                .help = "  --stale-ok     accept the daemon's cached answer while the server is\n"
                        "                 unreachable (exit 0 with the note \"stale\")\n",
                .details = "Calls manager.get_health and manager.verify_compatibility (cached) and\n"
                           "prints the server's answer. Exits 7 with the reason when the server is\n"
                           "unreachable (the daemon then serves its last good answer for a while,\n"
                           "marked stale: accepted only with --stale-ok) or says this daemon is an\n"
                           "incompatible client.\n",
                .options = health_options,
                .calls = "manager.get_health manager.verify_compatibility",
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
                .calls = "manager.verify_compatibility",
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
                .calls = "manager.authenticate",
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
                .calls = "manager.forgotten_password",
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
                .calls = "manager.reset_password",
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
                .calls = "manager.create_api_key",
                .ids = "api_key.id",
        },
        {
                .name = "apikey list",
                .summary = "List the API keys of the account",
                .details = "Calls manager.list_api_keys. Keys are never shown, only their ids.\n",
                .run = ctl_cmd_apikey_list,
                .calls = "manager.list_api_keys",
                .ids = "api_keys.id",
        },
        {
                .name = "apikey revoke",
                .usage = "ID",
                .summary = "Revoke an API key, by its id (see apikey list)",
                .details = "Calls manager.revoke_api_key.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_apikey_revoke,
                .calls = "manager.revoke_api_key",
                .ids = "api_key_id",
        },
        {
                .name = "jobs",
                .usage = "[--last N | FILTERS]",
                .summary = "List jobs, newest first",
                .help = "  --last N             only the N most recent jobs\n"
                        "  --kind KIND          only jobs of this kind (repeatable): standard,\n"
                        "                       privacy_metrics, signal_metrics, report, advice\n"
                        "  --name DISPLAY_NAME  only jobs with this display name\n"
                        "  --set RUN            only the jobs of this run: its id (set_name), a unique\n"
                        "                       prefix of it, or its display name\n"
                        "  --limit N            at most N jobs\n"
                        "  --include-deleted    deleted jobs too\n",
                .details = "With --last, calls manager.get_last_jobs (and takes no other option);\n"
                           "otherwise manager.get_jobs with the filters given. --name and --set\n"
                           "exclude each other.\n",
                .options = jobs_options,
                .run = ctl_cmd_jobs,
                .calls = "manager.get_jobs manager.get_last_jobs",
                .ids = "jobs.name",
        },
        {
                .name = "job",
                .usage = "NAME",
                .summary = "Show one job",
                .details = "Calls manager.get_job. NAME is the job's name (see avatarctl jobs) or a\n"
                           "unique prefix of it, not its display name.\n",
                .calls = "manager.get_job",
                .ids = "name",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_job,
        },
        {
                .name = "jobs delete",
                .usage = "NAME...|- [--yes]",
                .summary = "Delete jobs by name (- reads the names from stdin)",
                .help = "  -y, --yes      delete without asking (needed when stdin is not a terminal\n"
                        "                 and more than one job goes)\n",
                .details = "Calls manager.delete_jobs. With -, names are read from stdin, one per\n"
                           "line. Asks first when more than one job goes. Prints how many jobs were\n"
                           "deleted, and each that failed with its reason; exits with the class of the\n"
                           "first failure (6 for a name the server did not know) when any failed.\n",
                .options = yes_options,
                .short_options = "y",
                .calls = "manager.delete_jobs",
                .ids = "deleted_jobs.name",
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
                .calls = "manager.get_last_results",
                .ids = "results.job",
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
                .calls = "manager.find_ids_by_name",
                .ids = "runs.set_name",
        },
        {
                .name = "runs delete",
                .usage = "NAME | --id RUN [--yes]",
                .summary = "Delete every job of one run, by display name or by id",
                .help = "  --id RUN       the run's id (its set_name), or a unique prefix of it,\n"
                        "                 instead of a display name\n"
                        "  -y, --yes      delete without asking (needed when stdin is not a terminal)\n",
                .details = "Calls manager.delete_job (by name) or manager.delete_job_by_id, after\n"
                           "asking. When several runs have that name nothing is deleted: the error\n"
                           "lists each run with the command that deletes it (exit 9).\n",
                .options = runs_delete_options,
                .short_options = "y",
                .calls = "manager.delete_job manager.delete_job_by_id",
                .ids = "deleted_jobs.name",
                .max_pos = 1,
                .run = ctl_cmd_runs_delete,
        },
        {
                .name = "runs load",
                .usage = "NAME|ID",
                .summary = "Load a run into a new runner, by display name or run id",
                .details = "A run id (a UUID, or a unique prefix of one) calls\n"
                           "manager.create_runner_from_id; anything else is a display name and calls\n"
                           "manager.create_runner_from_name, which loads the most recent run of that\n"
                           "name. Prints the new runner's id and jobs, then the\n"
                           "commands that download its results (or wait for its jobs). The runner's\n"
                           "display name gets a -vN suffix; running it again makes a new run.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runs load 9b1d5c7e-1111-4a4a-8b8b-000000000001\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runs_load,
                .calls = "manager.create_runner_from_id manager.create_runner_from_name",
                .ids = "runner_id",
        },
        {
                .name = "avatarize",
                .usage = "FILE [OPTIONS] | --resume RUNNER [FILE] [OPTIONS]",
                .summary = "Avatarize a CSV file in one go: upload, run, wait, download",
                .help = "  --name NAME           the run's display name (default: FILE's name without\n"
                        "                        its extension)\n"
                        "  --table NAME          the table's name (default: the same)\n"
                        "  --k N                 the avatarization's k, 2 to 1000 (default 5)\n"
                        "  --jobs LIST           the jobs to run, comma-separated: standard,\n"
                        "                        signal_metrics, privacy_metrics, report (default all;\n"
                        "                        report also makes report_pia)\n"
                        "  -o, --output DIR      where the results go (default NAME-avatars; created)\n"
                        "  --force               replace files that exist in DIR\n"
                        "  --no-wait             start the run and print the commands that go on with it\n"
                        "  --wait-timeout S      stop waiting after S seconds (default 86400)\n"
                        "  --resume RUNNER       go on with a runner an earlier avatarize left (by id,\n"
                        "                        unique id prefix or display name): upload, run, wait\n"
                        "                        and download whatever is left; files already in DIR\n"
                        "                        are kept\n"
                        "  --rm                  remove the runner and its jobs when the run fails\n"
                        "  --no-check            upload FILE without checking it first\n",
                .details = "Calls manager.create_runner, runner.add_table (FILE goes as a descriptor,\n"
                           "opened read-only; - is stdin and needs --name), runner.set_parameters (k),\n"
                           "runner.run and runner.wait, then runner.list_results and runner.download\n"
                           "into new files in DIR: the shuffled avatars, the privacy and signal\n"
                           "metrics, the report (pdf) and the PIA report (docx), under the server's\n"
                           "file names. A CSV file is checked first (readable, not empty, the same\n"
                           "number of columns on every line, UTF-8); the first bad line is named.\n"
                           "Existing files are not replaced without --force, and nothing is\n"
                           "downloaded then. On a terminal, stderr shows the upload (bytes,\n"
                           "percentage, rate), then a line per job redrawn in place, then each file;\n"
                           "otherwise a plain line per change. At the end the files written are\n"
                           "listed with their sizes; with JSON output one object tells the runner id,\n"
                           "run id, jobs and files (also after a failure, once the runner exists). A\n"
                           "failed job exits 8 with its exception. Whatever stops it once the runner\n"
                           "exists (a failure, Ctrl-C, the daemon going away), the runner is kept and\n"
                           "its id is printed with the command that goes on with it (--resume) and the\n"
                           "one that removes it (runner rm), unless --rm removed it.\n"
                           "\n"
                           "Examples:\n"
                           "  avatarctl avatarize iris.csv\n"
                           "  avatarctl avatarize patients.csv --k 10 -o results --no-wait\n"
                           "  avatarctl avatarize --resume patients -o results\n",
                .options = avatarize_options,
                .short_options = "o:",
                .max_pos = 1,
                .run = ctl_cmd_avatarize,
                .calls = "manager.create_runner runner.add_table runner.set_parameters runner.update_parameters "
                         "runner.run runner.wait runner.list_results runner.download runner.get_status "
                         "runner.export_yaml runner.delete runner.close",
                .ids = "runner_id",
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
                           "commands below take its id, a unique prefix of it, or its display name.\n"
                           "\n"
                           "Example:\n"
                           "  id=$(avatarctl -q runner create patients)\n",
                .options = runner_create_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_create,
                .calls = "manager.create_runner",
                .ids = "runner_id",
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
                .calls = "manager.create_runner_from_yaml",
                .ids = "runner_id",
        },
        {
                .name = "runner list",
                .usage = "[--all]",
                .summary = "List your runners (--all: everyone's, for admins)",
                .help = "  --all          every runner of every user (admin role)\n",
                .details = "Calls runner.list.\n",
                .options = runner_list_options,
                .run = ctl_cmd_runner_list,
                .calls = "runner.list",
                .ids = "runners.runner_id",
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
                        "                            extension tells the format)\n"
                        "  --no-check                upload FILE without checking it first\n",
                .details = "Calls runner.add_table with FILE opened read-only and passed as a\n"
                           "descriptor (- passes stdin as it is, a file or a pipe); the daemon streams\n"
                           "it to the server's storage. Progress goes to stderr. A CSV file is checked\n"
                           "first: readable, not empty, the same number of columns on every line, UTF-8;\n"
                           "the first bad line is named (--no-check skips it).\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runner add-table RUNNER patients patients.csv --primary-key id\n",
                .options = runner_add_table_options,
                .min_pos = 3,
                .max_pos = 3,
                .run = ctl_cmd_runner_add_table,
                .calls = "runner.add_table",
                .ids = "table_name",
                .runner_arg = true,
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
                .calls = "runner.add_link",
                .runner_arg = true,
        },
        {
                .name = "runner delete-table",
                .usage = "RUNNER TABLE",
                .summary = "Remove a table from a runner, with its links and parameters",
                .details = "Calls runner.delete_table: the table leaves the runner's resources, with\n"
                           "every link that names it and its parameters. Its upload stays in storage.\n",
                .min_pos = 2,
                .max_pos = 2,
                .run = ctl_cmd_runner_delete_table,
                .calls = "runner.delete_table",
                .ids = "runner_id",
                .runner_arg = true,
        },
        {
                .name = "runner delete-link",
                .usage = "RUNNER PARENT CHILD",
                .summary = "Remove the link from a parent table to a child table",
                .details = "Calls runner.delete_link. PARENT and CHILD are table names; both tables\n"
                           "stay.\n",
                .min_pos = 3,
                .max_pos = 3,
                .run = ctl_cmd_runner_delete_link,
                .calls = "runner.delete_link",
                .ids = "runner_id",
                .runner_arg = true,
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
                        "  --params-json OBJECT               the parameters as one JSON object; the\n"
                        "                                     options above override its members\n",
                .details = "Calls runner.set_parameters: the table's previous parameters are replaced.\n"
                           "Each option is one param of the method, in kebab-case. --params-json was\n"
                           "--json OBJECT: that spelling still works, with a note; --json alone asks\n"
                           "for JSON output, as everywhere. Warnings (k = 2, a deprecated name) go to\n"
                           "stderr.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runner set-parameters RUNNER iris --k 10 --column-weights sepal=2\n",
                .options = ctl_parameter_options,
                .min_pos = 2,
                .max_pos = 2,
                .run = ctl_cmd_runner_set_parameters,
                .calls = "runner.set_parameters",
                .ids = "table_name",
                .runner_arg = true,
                .legacy_json_params = true,
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
                .calls = "runner.update_parameters",
                .ids = "table_name",
                .runner_arg = true,
                .legacy_json_params = true,
        },
        {
                .name = "runner delete-parameters",
                .usage = "RUNNER TABLE [NAME...]",
                .summary = "Remove some parameters of a table, or all of them",
                .details = "Calls runner.delete_parameters. Each NAME is a parameter of runner\n"
                           "set-parameters (k, ncp, column-weights...: snake_case or kebab-case); the\n"
                           "others stay. Without NAME every parameter of the table goes. Prints the\n"
                           "parameters left.\n"
                           "\n"
                           "Example:\n"
                           "  avatarctl runner delete-parameters RUNNER iris ncp column-weights\n",
                .min_pos = 2,
                .max_pos = -1,
                .run = ctl_cmd_runner_delete_parameters,
                .calls = "runner.delete_parameters",
                .ids = "table_name",
                .runner_arg = true,
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
                .calls = "runner.advise_parameters",
                .runner_arg = true,
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
                .calls = "runner.run",
                .ids = "set_name",
                .runner_arg = true,
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
                .calls = "runner.get_status",
                .ids = "runner_id",
                .runner_arg = true,
        },
        {
                .name = "runner wait",
                .usage = "RUNNER [--jobs LIST] [--wait-timeout S]",
                .summary = "Wait for a runner's jobs, showing their progress",
                .help = "  --jobs LIST       the jobs to wait for (default all): standard,\n"
                        "                    signal_metrics, privacy_metrics, report, report_pia,\n"
                        "                    advice_parameters\n"
                        "  --wait-timeout S  stop waiting after S seconds (default 3600; the global\n"
                        "                    --timeout, when given, caps it)\n",
                .details = "Calls runner.wait. On a terminal a line per job is redrawn in place on\n"
                           "stderr; otherwise a plain line per change. Exits 8 when a job fails (with\n"
                           "its exception), 4 when the jobs are not done in time. Ctrl-C stops waiting;\n"
                           "the jobs go on.\n",
                .options = runner_wait_options,
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_wait,
                .calls = "runner.wait",
                .ids = "jobs.name",
                .runner_arg = true,
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
                .calls = "runner.list_results",
                .ids = "jobs.files.file_name",
                .runner_arg = true,
        },
        {
                .name = "runner download",
                .usage = "RUNNER [RESULT] [--table T] [--index N] [-o FILE|-|DIR] [--force]",
                .summary = "Download a result into a file, stdout or the terminal; or all into DIR",
                .help = "  --table T               the table, for per-table results\n"
                        "  --index N               which file when there are several (figures)\n"
                        "  -o, --output FILE|-|DIR  create FILE and have the daemon write into it;\n"
                        "                          - is stdout (a file or a pipe) as it is; without\n"
                        "                          RESULT, the directory that gets every result\n"
                        "  --force                 replace files that exist\n",
                .details = "Calls runner.download. RESULT is one of shuffled, unshuffled,\n"
                           "original_projections, avatar_projections, projections, figures,\n"
                           "figures_metadata, metadata, run_metadata, privacy_metrics, signal_metrics,\n"
                           "report, report_pia, advice. With -o the file (mode 0644 less the umask)\n"
                           "goes to the daemon as a descriptor and is written byte for byte. Without\n"
                           "-o, when stdout is not a terminal, the result's bytes go to stdout as they\n"
                           "are (a pipe, a file); on a terminal text is printed and binary files (pdf,\n"
                           "docx, parquet) are saved under the server's file name. With --format json\n"
                           "and no -o, the result object comes inline. Without RESULT, -o DIR gets\n"
                           "every file of runner results under the server's names.\n"
                           "\n"
                           "Examples:\n"
                           "  avatarctl runner download RUNNER shuffled | head -3\n"
                           "  avatarctl runner download RUNNER -o results/\n",
                .options = runner_download_options,
                .short_options = "o:",
                .min_pos = 1,
                .max_pos = 2,
                .run = ctl_cmd_runner_download,
                .calls = "runner.download runner.list_results",
                .ids = "path",
                .runner_arg = true,
        },
        {
                .name = "runner export-yaml",
                .usage = "RUNNER [-o FILE|-] [--force]",
                .summary = "Show a runner's resource YAML, or save it",
                .help = "  -o, --output FILE  write the YAML into FILE (new unless --force); - is\n"
                        "                     stdout\n"
                        "  --force            replace FILE when it exists\n",
                .details = "Calls runner.export_yaml. The YAML can make a runner again with runner\n"
                           "create-from-yaml. Without -o it is printed (with --format json, the\n"
                           "result object).\n",
                .options = runner_export_options,
                .short_options = "o:",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_export_yaml,
                .calls = "runner.export_yaml",
                .runner_arg = true,
        },
        {
                .name = "runner delete",
                .usage = "RUNNER [--jobs LIST] [--yes]",
                .summary = "Delete a runner's jobs on the server",
                .help = "  --jobs LIST    only these jobs: standard, signal_metrics, privacy_metrics,\n"
                        "                 report, report_pia, advice_parameters\n"
                        "  -y, --yes      delete without asking (needed when stdin is not a terminal)\n",
                .details = "Calls runner.delete, after asking. Prints how many jobs were deleted, and\n"
                           "each that failed with its reason; exits with the class of the first\n"
                           "failure when any failed. The runner stays (see runner close, runner rm).\n",
                .options = runner_delete_options,
                .short_options = "y",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_delete,
                .calls = "runner.delete",
                .ids = "deleted_jobs.name",
                .runner_arg = true,
        },
        {
                .name = "runner close",
                .usage = "RUNNER",
                .summary = "Forget a runner (its jobs on the server stay)",
                .details = "Calls runner.close, and prints the command that loads its run again.\n",
                .min_pos = 1,
                .max_pos = 1,
                .run = ctl_cmd_runner_close,
                .calls = "runner.close",
                .ids = "runner_id",
                .runner_arg = true,
        },
        {
                .name = "runner rm",
                .usage = "RUNNER... [--yes]",
                .summary = "Remove runners: delete their jobs on the server, then forget them",
                .help = "  -y, --yes      remove without asking (needed when stdin is not a terminal)\n",
                .details = "Calls runner.delete then runner.close for each RUNNER (a full id, a unique\n"
                           "prefix or a display name), after asking. Prints a line per runner, with\n"
                           "the reason of each that could not be removed; exits with the class of the\n"
                           "first failure.\n",
                .options = yes_options,
                .short_options = "y",
                .min_pos = 1,
                .max_pos = -1,
                .run = ctl_cmd_runner_rm,
                .calls = "runner.delete runner.close",
                .ids = "removed",
        },
        {
                .name = "watch",
                .usage = "RUN | --runner RUNNER [--jobs NAMES] [--wait-timeout S]",
                .summary = "Follow the jobs of a run as they change",
                .help = "  --runner RUNNER   the jobs of this runner's run instead of a run\n"
                        "  --jobs NAMES      only these jobs (their names, comma-separated)\n"
                        "  --wait-timeout S  stop after S seconds (default 3600; the global\n"
                        "                    --timeout, when given, caps it)\n",
                .details = "Calls manager.watch_jobs and prints each jobs.changed notification as it\n"
                           "comes: a line per changed job, or one JSON object per notification with\n"
                           "JSON output, then the jobs at the end. RUN is a run id, a unique prefix of\n"
                           "one or a display name; RUNNER a runner's id, prefix or display name. Exits\n"
                           "4 when the jobs are not done in time, 8 when one of them failed.\n",
                .options = watch_options,
                .max_pos = 1,
                .run = ctl_cmd_watch,
                .calls = "manager.watch_jobs",
                .ids = "jobs.name",
        },
        {
                .name = "help",
                .usage = "[COMMAND | GROUP]",
                .summary = "Show this help, or the help of one command or group",
                .max_pos = -1,
                .run = ctl_cmd_help,
        },
        {
                .name = "__complete",
                .usage = "WORD...",
                .summary = "What may come in place of the last WORD (for the shell completions)",
                .max_pos = -1,
                .run = ctl_cmd_complete,
                .hidden = true,
        },
};

const size_t ctl_n_commands = ELEMENTSOF(ctl_commands);
