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

static int cmd_help(Ctl *ctl, const CtlArgs *args);

/* Every command. Add a row (and a handler in the avatarctl-*.c file of its method family) to
 * add a command; multi-word names ("apikey create") group subcommands. */
static const CtlCommand commands[] = {
        {
                .name = "status",
                .summary = "Show the daemon's version, uptime, counters and limits",
                .run = ctl_cmd_status,
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
                        "  --out PATH     create PATH and pass it, writable, as the next descriptor\n"
                        "Descriptors are numbered from 0 in the order of the options; params\n"
                        "refer to them as {\"fd\": N}.\n",
                .options = call_options,
                .min_pos = 1,
                .max_pos = 2,
                .run = ctl_cmd_call,
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
                     "  9   conflict, ambiguous or invalid state\n"
                     "  10  daemon overloaded or shutting down\n", f);
}

/* Prints the global usage on f. */
static void print_usage(FILE *f) {
        size_t i, width = 0;

        (void) fprintf(f,
                       "Usage: avatarctl [OPTIONS] COMMAND [ARGS]\n"
                       "\n"
                       "Talk to avatard, the Avatar API daemon, over its local socket.\n"
                       "\n"
                       "Commands:\n");
        for (i = 0; i < ELEMENTSOF(commands); i++)
                width = MAX(width, strlen(commands[i].name) + 1 +
                                   (commands[i].usage ? strlen(commands[i].usage) : 0));
        for (i = 0; i < ELEMENTSOF(commands); i++) {
                char buf[128];

                (void) snprintf(buf, sizeof(buf), "%s%s%s", commands[i].name,
                                commands[i].usage ? " " : "", commands[i].usage ?: "");
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

/* Reports a getopt failure: an unknown option, or one missing its argument. */
static int option_error(int c, char **argv) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";

        if (c == ':')
                return ctl_fail(CTL_EXIT_USAGE, NULL, "option '%s' needs an argument", arg);
        if (optopt > 0 && optopt < 0x100)
                return ctl_fail(CTL_EXIT_USAGE, NULL, "unknown option '-%c'", optopt);
        return ctl_fail(CTL_EXIT_USAGE, NULL, "unknown option '%s'", arg);
}

/* Parses a command's arguments (argv[0] is its last word): its options, the global options,
 * and the positional arguments. Returns -1 to go on, or an exit code to stop with. */
static int parse_command_args(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv,
                              CtlArgs *args) {
        struct option opts[CTL_OPTS_MAX + ELEMENTSOF(global_options)] = {};
        size_t n = 0, i;
        int c, r;

        for (i = 0; cmd->options && cmd->options[i].name && n < CTL_OPTS_MAX; i++)
                opts[n++] = cmd->options[i];
        for (i = 0; global_options[i].name; i++)
                opts[n++] = global_options[i];

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return option_error(c, argv);
                if (c == OPT_HELP) {
                        print_command_help(stdout, cmd);
                        return CTL_EXIT_OK;
                }
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

        (void) fputs("avatarctl: ", stderr);
        if (what) {
                output_sanitized(stderr, what);
                (void) fputs(": ", stderr);
        }
        output_sanitized(stderr, buf);
        (void) fputc('\n', stderr);
        return code;
}

/* The socket path a connection attempt used, for messages. */
static const char *socket_path_for_messages(const Ctl *ctl) {
        const char *p;

        if (ctl->socket_path)
                return ctl->socket_path;
        p = secure_getenv(AVATAR_CLIENT_SOCKET_ENV);
        return isempty(p) ? AVATAR_CLIENT_DEFAULT_SOCKET : p;
}

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
                return ctl_fail(CTL_EXIT_PERMISSION, NULL, "cannot connect to %s: %s",
                                socket_path_for_messages(ctl), strerror(-r));
        case -ENAMETOOLONG:
        case -EINVAL:
                return ctl_fail(CTL_EXIT_USAGE, NULL, "invalid socket path %s: %s",
                                socket_path_for_messages(ctl), strerror(-r));
        case -ENOENT:
        case -ECONNREFUSED:
                return ctl_fail(CTL_EXIT_UNREACHABLE, NULL, "cannot connect to %s: %s (is avatard running?)",
                                socket_path_for_messages(ctl), strerror(-r));
        default:
                return ctl_fail(CTL_EXIT_UNREACHABLE, NULL, "cannot connect to %s: %s",
                                socket_path_for_messages(ctl), strerror(-r));
        }
}

/* The exit code of a daemon error class, by its stable name; CTL_EXIT_FAILED when unknown. */
static int exit_code_from_name(const char *name) {
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
        /* The codes are stable once published; the name decides for codes this avatarctl
         * does not know (a newer daemon). */
        switch (e->code) {
        case RPC_INVALID_REQUEST:
        case RPC_METHOD_NOT_FOUND:
        case RPC_INVALID_PARAMS:
                return CTL_EXIT_USAGE;
        case RPC_PARSE_ERROR:
        case RPC_INTERNAL_ERROR:
        case RPC_IO_ERROR:
                return CTL_EXIT_FAILED;
        case RPC_TIMEOUT:
                return CTL_EXIT_TIMEOUT;
        case RPC_PERMISSION_DENIED:
                return CTL_EXIT_PERMISSION;
        case RPC_NOT_FOUND:
                return CTL_EXIT_NOT_FOUND;
        case RPC_UPSTREAM_UNREACHABLE:
        case RPC_UPSTREAM_HTTP_ERROR:
        case RPC_CREDENTIAL_REJECTED:
        case RPC_INCOMPATIBLE:
        case RPC_RATE_LIMITED:
        case RPC_NOT_AUTHENTICATED:
        case RPC_UPSTREAM_BAD_RESPONSE:
        case RPC_STORAGE_ERROR:
                return CTL_EXIT_UPSTREAM;
        case RPC_JOB_FAILED:
                return CTL_EXIT_JOB_FAILED;
        case RPC_AMBIGUOUS:
        case RPC_CONFLICT:
        case RPC_INVALID_STATE:
                return CTL_EXIT_CONFLICT;
        case RPC_OVERLOADED:
        case RPC_SHUTTING_DOWN:
                return CTL_EXIT_OVERLOADED;
        default:
                return exit_code_from_name(e->name);
        }
}

/* Prints the members of error.data that help the user (all but name and retryable), one
 * per line, indented; arrays of objects (e.g. candidates) one element per line. */
static void print_error_data(json_object *data) {
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
                                _cleanup_free_ char *e = NULL;

                                if (output_value_text(json_object_array_get_idx(v, i), &e) < 0)
                                        return;
                                (void) fputs("    - ", stderr);
                                output_sanitized(stderr, e);
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

/* Calls a method, printing the error and returning its exit code on failure. */
int ctl_call(Ctl *ctl, const char *method, json_object *params, const int *fds, size_t n_fds,
             json_object **ret_result) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        json_object *result = NULL;
        int r, code;

        code = ctl_connect(ctl);
        if (code != CTL_EXIT_OK)
                return code;

        r = avatar_client_call(ctl->client, method, params, fds, n_fds, ctl->timeout_ms,
                               &result, &e);
        if (r >= 0) {
                if (ret_result)
                        *ret_result = result;
                else
                        json_object_put(result);
                return CTL_EXIT_OK;
        }

        code = ctl_exit_code(r, &e);
        switch (r) {
        case -EREMOTEIO:
                (void) fprintf(stderr, "avatarctl: ");
                output_sanitized(stderr, method);
                (void) fputs(": ", stderr);
                output_sanitized(stderr, e.message);
                (void) fputs(" (", stderr);
                output_sanitized(stderr, avatar_client_error_name(&e));
                (void) fputs(")\n", stderr);
                print_error_data(e.data);
                return code;
        case -ETIMEDOUT:
                return ctl_fail(code, method, "no reply within %g s (timeout)",
                                ctl->timeout_ms / 1000.0);
        case -ECONNRESET:
        case -ENOTCONN:
                return ctl_fail(code, method, "the daemon closed the connection");
        case -EMSGSIZE:
                return ctl_fail(code, method, "the reply is larger than %u bytes",
                                AVATAR_CLIENT_REPLY_MAX_DEFAULT);
        case -EBADMSG:
                return ctl_fail(code, method, "malformed reply from the daemon");
        default:
                return ctl_fail(code, method, "%s", strerror(-r));
        }
}

/* Prints JSON, pretty on a terminal, compact otherwise. */
void ctl_print_json(const Ctl *ctl, json_object *o) {
        int flags = ctl->pretty ? (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                   JSON_C_TO_STRING_NOSLASHESCAPE)
                                : JSONRPC_WIRE_FLAGS;
        const char *s;

        s = json_object_to_json_string_ext(o, flags);
        (void) puts(s ? s : "null");
}

/* Calls a method and prints its result as JSON or for humans. */
int ctl_call_and_print(Ctl *ctl, const char *method, json_object *params, ctl_print_fn human,
                       void *userdata) {
        _cleanup_(unref_jsonp) json_object *result = NULL;
        int code, r;

        code = ctl_call(ctl, method, params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl->json) {
                ctl_print_json(ctl, result);
                return CTL_EXIT_OK;
        }
        r = human ? human(ctl, result, userdata) : output_tree(stdout, result, 0);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, method, "cannot print the result: %s", strerror(-r));
        return CTL_EXIT_OK;
}

/* Prints rows as JSON or as an aligned table. */
int ctl_print_rows(Ctl *ctl, const char *what, json_object *rows, const OutputColumn *cols,
                   size_t n_cols) {
        int r;

        if (ctl->json) {
                ctl_print_json(ctl, rows);
                return CTL_EXIT_OK;
        }
        r = output_table(stdout, rows, cols, n_cols);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, what, "cannot print the result: %s", strerror(-r));
        return CTL_EXIT_OK;
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

/* Parses global options, finds the command, parses its arguments and runs it. */
int main(int argc, char *argv[]) {
        Ctl ctl = { .timeout_ms = CTL_TIMEOUT_DEFAULT_MS };
        CtlArgs args = {};
        const CtlCommand *cmd;
        int c, r, words;

        ctl.tty = isatty(STDOUT_FILENO) > 0;

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
        ctl.pretty = ctl.tty;

        r = cmd->run(&ctl, &args);
        ctl.client = avatar_client_free(ctl.client);

        if (fflush(stdout) != 0 || ferror(stdout)) {
                (void) fprintf(stderr, "avatarctl: cannot write the output: %s\n", strerror(errno));
                if (r == CTL_EXIT_OK)
                        r = CTL_EXIT_FAILED;
        }
        return r;
}
