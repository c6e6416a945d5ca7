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
#include "avatarctl-secret.h"
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
        OPT_FORMAT,
        OPT_TIMEOUT,
        OPT_VERSION,
        OPT_HELP = 'h',
        OPT_QUIET = 'q',
};

const struct option ctl_global_options[] = {
        { "socket",  required_argument, NULL, OPT_SOCKET },
        { "format",  required_argument, NULL, OPT_FORMAT },
        { "json",    no_argument,       NULL, OPT_JSON },
        { "quiet",   no_argument,       NULL, OPT_QUIET },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help",    no_argument,       NULL, OPT_HELP },
        { "version", no_argument,       NULL, OPT_VERSION },
        {}
};

#define GLOBAL_OPTIONS_N (ELEMENTSOF(ctl_global_options) - 1)

/* The names of --format, in the order of CtlFormat. */
static const char *const format_names[_CTL_FORMAT_MAX] = {
        [CTL_FORMAT_TABLE] = "table",
        [CTL_FORMAT_JSON] = "json",
        [CTL_FORMAT_YAML] = "yaml",
        [CTL_FORMAT_IDS] = "ids",
};

/* Spellings kept for old scripts, not offered by the completion. */
bool ctl_option_is_alias(const char *name) {
        return streq_ptr(name, "timeout-wait");
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
        size_t i;

        switch (opt) {
        case OPT_SOCKET:
                if (isempty(arg))
                        return ctl_fail(CTL_EXIT_USAGE, NULL, "--socket needs a path");
                ctl->socket_path = arg;
                return -1;
        case OPT_JSON:
                ctl->format = CTL_FORMAT_JSON;
                ctl->format_given = true;
                return -1;
        case OPT_FORMAT:
                for (i = 0; i < ELEMENTSOF(format_names); i++)
                        if (streq(arg, format_names[i])) {
                                ctl->format = (CtlFormat) i;
                                ctl->format_given = true;
                                return -1;
                        }
                return ctl_fail(CTL_EXIT_USAGE, NULL, "--format: expected table, json, yaml or ids, got '%s'", arg);
        case OPT_QUIET:
                ctl->quiet = true;
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
                ctl_print_usage(stdout);
                return CTL_EXIT_OK;
        default:
                return -1;
        }
}

/* Reports a getopt failure: an unknown option (with the closest one of cmd, may be NULL),
 * one missing its argument, or one given an argument it does not take. Whatever follows '='
 * is left out of the message: it may be a secret typed in the wrong place ("--password=...")
 * and must not be echoed. */
static int option_error(const CtlCommand *cmd, int c, char **argv) {
        const char *arg = optind > 0 ? argv[optind - 1] : "", *what = cmd ? cmd->name : NULL, *guess;
        size_t l = strcspn(arg, "=");
        _cleanup_free_ char *name = strndup(arg, l);
        char buf[128];

        if (c == ':')
                return ctl_fail(CTL_EXIT_USAGE, what, "option '%.*s' needs an argument (see avatarctl help %s)", (int) l,
                                arg, what ?: "");
        if (optopt > 0 && optopt < 0x100)
                return ctl_fail(CTL_EXIT_USAGE, what, "unknown option '-%c' (see avatarctl %s%s--help)", optopt,
                                what ?: "", what ? " " : "");
        if (optopt > 0 && arg[l] == '=')
                return ctl_fail(CTL_EXIT_USAGE, what, "option '%.*s' takes no argument", (int) l, arg);
        guess = name && startswith(name, "--") ? ctl_suggest_option(cmd, name, buf, sizeof(buf)) : NULL;
        if (guess)
                return ctl_fail(CTL_EXIT_USAGE, what, "unknown option '%.*s'; did you mean '%s'?", (int) l, arg, guess);
        return ctl_fail(CTL_EXIT_USAGE, what, "unknown option '%.*s' (see avatarctl %s%s--help)", (int) l, arg,
                        what ?: "", what ? " " : "");
}

/* set-parameters and update-parameters took the params object as "--json OBJECT" before
 * --json meant the output format everywhere: an argument "--json" followed by an object (or
 * "--json={...}") is rewritten to --params-json, with a note. */
static int rewrite_legacy_json(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        bool noted = false;

        if (!cmd->legacy_json_params)
                return 0;
        for (int i = 1; i < argc; i++) {
                const char *v;

                if (streq(argv[i], "--"))
                        break;
                if (streq(argv[i], "--json") && i + 1 < argc && argv[i + 1][0] == '{')
                        argv[i] = (char *) "--params-json";
                else if ((v = startswith(argv[i], "--json=")) && !ctl->legacy_arg) {
                        if (asprintf(&ctl->legacy_arg, "--params-json=%s", v) < 0) {
                                ctl->legacy_arg = NULL;
                                return -ENOMEM;
                        }
                        argv[i] = ctl->legacy_arg;
                } else
                        continue;
                if (!noted)
                        ctl_warning("--json OBJECT is now --params-json OBJECT; --json alone asks for JSON output");
                noted = true;
        }
        return 0;
}

/* Parses a command's arguments (argv[0] is its last word): its options, the global options,
 * and the positional arguments. Returns -1 to go on, or an exit code to stop with. */
static int parse_command_args(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv,
                              CtlArgs *args) {
        struct option opts[CTL_COMMAND_OPTIONS_MAX + GLOBAL_OPTIONS_N + 1] = {};
        char optstring[32] = ":hq";
        size_t n = 0, i;
        int c, r;

        if (rewrite_legacy_json(ctl, cmd, argc, argv) < 0)
                return ctl_fail_oom(cmd->name);
        for (i = 0; cmd->options && cmd->options[i].name; i++) {
                assert(n < CTL_COMMAND_OPTIONS_MAX);
                opts[n++] = cmd->options[i];
        }
        for (i = 0; ctl_global_options[i].name; i++)
                opts[n++] = ctl_global_options[i];
        if (cmd->short_options) {
                assert(strlen(optstring) + strlen(cmd->short_options) < sizeof(optstring));
                strcat(optstring, cmd->short_options);
        }

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, optstring, opts, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return option_error(cmd, c, argv);
                if (c == OPT_HELP) {
                        ctl_print_command_help(stdout, cmd);
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
                (void) ctl_fail(CTL_EXIT_USAGE, cmd->name, "expected arguments: %s (see avatarctl help %s)",
                                cmd->usage ?: "(none)", cmd->name);
                return CTL_EXIT_USAGE;
        }
        return -1;
}

/* Prints one error line and returns the exit code given. */
int ctl_fail(int code, const char *what, const char *format, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        ctl_before_message();
        ctl_message_start(stderr);
        if (what) {
                output_sanitized(stderr, what);
                (void) fputs(": ", stderr);
        }
        output_sanitized(stderr, buf);
        (void) fputc('\n', stderr);
        return code;
}

/* Writes "avatarctl: ", red on a terminal. */
void ctl_message_start(FILE *f) {
        (void) fprintf(f, "%savatarctl:%s ", output_color_on(f, OUTPUT_RED), output_color_off(f));
}

/* Prints "hint: TEXT" on stderr (sanitized), unless -q. */
void ctl_hint(const Ctl *ctl, const char *format, ...) {
        char buf[1024];
        va_list ap;

        if (ctl && ctl->quiet)
                return;
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        ctl_before_message();
        (void) fprintf(stderr, "%shint:%s ", output_color_on(stderr, OUTPUT_YELLOW), output_color_off(stderr));
        output_sanitized(stderr, buf);
        (void) fputc('\n', stderr);
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
        (void) fprintf(stderr, "avatarctl: %swarning:%s ", output_color_on(stderr, OUTPUT_YELLOW),
                       output_color_off(stderr));
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
                                "use avatard: join it with 'sudo usermod -aG avatar $USER' and log in again",
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
                { "jobs_lost",             CTL_EXIT_JOB_FAILED },
                { "conflict",              CTL_EXIT_CONFLICT },
                { "ambiguous",             CTL_EXIT_CONFLICT },
                { "invalid_state",         CTL_EXIT_CONFLICT },
                { "overloaded",            CTL_EXIT_OVERLOADED },
                { "shutting_down",         CTL_EXIT_OVERLOADED },
                { "state_not_saved",       CTL_EXIT_OVERLOADED },
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

/* Writes into buf what an error names: the command the user typed ("runner add-table"), the
 * step of it that failed when that is another command's method ("avatarize: runner
 * add-table"), or the method itself (for "call", and methods no command makes). */
static const char *error_what(const Ctl *ctl, const char *method, char *buf, size_t size) {
        const char *cmd = ctl_command_of_method(method);

        if (!ctl->command || streq(ctl->command, "call") || !cmd)
                (void) snprintf(buf, size, "%s%s%s", ctl->command && !streq(ctl->command, "call") ? ctl->command : "",
                                ctl->command && !streq(ctl->command, "call") ? ": " : "", method);
        else if (streq(cmd, ctl->command))
                (void) snprintf(buf, size, "%s", cmd);
        else
                (void) snprintf(buf, size, "%s: %s", ctl->command, cmd);
        return buf;
}

/* Writes a message of the daemon with the methods it names written as the commands that
 * call them ("add it with runner.add_table first" -> "... with 'avatarctl runner add-table'
 * first"). Sanitized. */
static void print_translated(FILE *f, const char *msg) {
        const char *p = msg;

        while (*p) {
                size_t l = strspn(p, "abcdefghijklmnopqrstuvwxyz_."), wl = l;
                _cleanup_free_ char *word = NULL;
                const char *cmd = NULL;

                if (l == 0 || (p > msg && isalnum((unsigned char) p[-1]))) {
                        char c[2] = { *p, '\0' };

                        output_sanitized(f, c);
                        p++;
                        continue;
                }
                while (wl > 0 && p[wl - 1] == '.') /* a sentence may end right after it */
                        wl--;
                word = strndup(p, wl);
                if (word && strchr(word, '.'))
                        cmd = ctl_command_of_method(word);
                if (cmd) {
                        (void) fputs("'avatarctl ", f);
                        output_sanitized(f, cmd);
                        (void) fputc('\'', f);
                        p += wl;
                        continue;
                }
                (void) fwrite(p, 1, l, f); /* letters, '_' and '.' only */
                p += l;
        }
}

/* Prints what to do next about an error of the daemon, by its class. */
static void print_error_hint(const Ctl *ctl, const char *method, const AvatarClientError *e) {
        const char *name = avatar_client_error_name(e), *role = ctl_member_string(e->data, "required_role");

        if (streq(name, "permission_denied"))
                ctl_hint(ctl, "%s%s%smembers of the 'avatar' group may read and operate: join it with "
                         "'sudo usermod -aG avatar $USER' and log in again; admin calls are for root",
                         role ? "this needs the " : "", role ?: "", role ? " role; " : "");
        else if (streq(name, "not_found") && startswith(method, "runner."))
                ctl_hint(ctl, "see your runners with 'avatarctl runner list'");
        else if (streq(name, "not_found") && (streq(method, "manager.get_job") || streq(method, "manager.delete_jobs")))
                ctl_hint(ctl, "see the jobs with 'avatarctl jobs'");
        else if (streq(name, "not_found") && startswith(method, "manager."))
                ctl_hint(ctl, "look for the run with 'avatarctl runs find NAME' or 'avatarctl jobs'");
        else if (streq(name, "upstream_unreachable") || streq(name, "upstream_http_error") ||
                 streq(name, "upstream_bad_response") || streq(name, "storage_error"))
                ctl_hint(ctl, "check the Avatar server with 'avatarctl health'; the daemon's log has the "
                         "details ('journalctl -u avatard')");
        else if (streq(name, "credential_rejected") || streq(name, "not_authenticated"))
                ctl_hint(ctl, "give the daemon a valid API key: write it into /etc/avatard/api-key (mode 0600) "
                         "and run 'avatarctl reload'");
        else if (streq(name, "incompatible"))
                ctl_hint(ctl, "'avatarctl compat --refresh' asks the server again; it names the version it accepts");
        else if (streq(name, "shutting_down") && ctl_member_string(e->data, "reattach"))
                ctl_hint(ctl, "the jobs go on upstream: once the daemon is back, attach again with '%s'",
                         ctl_member_string(e->data, "reattach"));
        else if (streq(name, "rate_limited") || streq(name, "overloaded") || streq(name, "shutting_down"))
                ctl_hint(ctl, "try again in a moment");
        else if (streq(name, "state_not_saved"))
                ctl_hint(ctl, "the daemon's state directory is full or failing ('avatarctl status' lists the unsaved "
                         "runners); free space there and try again");
        else if (streq(name, "jobs_lost")) {
                const char *rid = ctl_member_string(e->data, "runner_id") ?: "ID";

                ctl_hint(ctl, "the Avatar server no longer knows these jobs (restarted, or the run was deleted); "
                         "'avatarctl runner status %s' shows them as lost and 'avatarctl runner run %s' runs "
                         "them again", rid, rid);
        } else if (streq(name, "timeout"))
                ctl_hint(ctl, "give it more time with --timeout SECONDS (0: no limit)");
        else if ((streq(name, "invalid_params") || streq(name, "method_not_found")) && ctl->command &&
                 !streq(ctl->command, "call"))
                ctl_hint(ctl, "see 'avatarctl help %s'", ctl->command);
}

/* Prints "avatarctl: COMMAND: MESSAGE (NAME)", the error's data and a hint. A message of
 * several lines keeps its first line there (without a trailing colon) and the others
 * follow, indented, unless the data lists the candidates (then they are said once, as the
 * commands that pick each). Methods the message names are written as commands. */
static void print_error(const Ctl *ctl, const char *method, const AvatarClientError *e) {
        const char *msg = e->message ?: "", *nl = strchr(msg, '\n');
        size_t first = nl ? (size_t) (nl - msg) : strlen(msg);
        _cleanup_free_ char *line = strndup(msg, first);
        char what[256];

        if (line && nl) {
                size_t l = strlen(line);

                while (l > 0 && (line[l - 1] == ':' || line[l - 1] == ' '))
                        line[--l] = '\0';
        }
        ctl_before_message();
        ctl_message_start(stderr);
        output_sanitized(stderr, error_what(ctl, method, what, sizeof(what)));
        (void) fputs(": ", stderr);
        print_translated(stderr, line ?: msg);
        (void) fputs(" (", stderr);
        output_sanitized(stderr, avatar_client_error_name(e));
        (void) fputs(")\n", stderr);

        if (nl && ctl_member_length(e->data, "candidates") == 0) {
                const char *p = nl + 1;

                while (*p) {
                        size_t l = strcspn(p, "\n");
                        _cleanup_free_ char *part = strndup(p, l);

                        if (part && !isempty(part + strspn(part, " "))) {
                                (void) fputs("  ", stderr);
                                print_translated(stderr, part + strspn(part, " "));
                                (void) fputc('\n', stderr);
                        }
                        p += l;
                        if (*p == '\n')
                                p++;
                }
        }
        print_error_data(ctl, e->data);
        print_error_hint(ctl, method, e);
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
        char buf[256];
        const char *what = error_what(ctl, method, buf, sizeof(buf));

        switch (r) {
        case 0:
                return;
        case -EREMOTEIO:
                if (e) {
                        print_error(ctl, method, e);
                        return;
                }
                (void) ctl_fail(0, what, "the daemon answered with an error");
                return;
        case -ETIMEDOUT:
                (void) ctl_fail(0, what, "no reply within %g s (timeout)", timeout_ms / 1000.0);
                ctl_hint(ctl, "give it more time with --timeout SECONDS (0: no limit)");
                return;
        case -ECONNRESET:
        case -ENOTCONN:
        case -EPIPE:
                (void) ctl_fail(0, what, "the daemon closed the connection before answering; "
                                CTL_HINT_NOT_RUNNING);
                return;
        case -EMSGSIZE:
                (void) ctl_fail(0, what, "the reply is larger than %u bytes",
                                AVATAR_CLIENT_REPLY_MAX_DEFAULT);
                return;
        case -EBADMSG:
                (void) ctl_fail(0, what, "malformed reply from the daemon");
                return;
        default:
                (void) ctl_fail(0, what, "%s", strerror(-r));
                return;
        }
}

/* Prints data in the selected machine format: JSON (pretty on a terminal, compact
 * otherwise), YAML, or the ids the command names (CtlCommand.ids). */
void ctl_print_json(const Ctl *ctl, json_object *o) {
        int flags = ctl->tty ? (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                JSON_C_TO_STRING_NOSLASHESCAPE)
                             : JSONRPC_WIRE_FLAGS;
        const char *s;

        switch (ctl->format) {
        case CTL_FORMAT_YAML:
                (void) output_yaml(stdout, o);
                return;
        case CTL_FORMAT_IDS:
                (void) output_ids(stdout, o, ctl->ids ?: "id");
                return;
        default:
                s = json_object_to_json_string_ext(o, flags);
                (void) puts(s ? s : "null");
                return;
        }
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

/* Joins n strings with `sep`, the last two with `last_sep`, into a new string ("" for none;
 * NULL on OOM). */
char *ctl_join(const char *const *items, size_t n, const char *sep, const char *last_sep) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0, i;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        for (i = 0; i < n; i++)
                (void) fprintf(f, "%s%s", i == 0 ? "" : i + 1 == n ? last_sep : sep, items[i]);
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(text) ?: strdup("");
}

/* Checks that value is one of set. */
int ctl_check_choice(const char *command, const char *what, const char *value, const char *const *set,
                     size_t n) {
        _cleanup_free_ char *choices = NULL;

        if (ctl_in_set(value, set, n))
                return CTL_EXIT_OK;
        choices = ctl_join(set, n, ", ", " or ");
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
                n = ctl_read_retry(fd, buf + len, alloc - len);
                if (n < 0)
                        return (int) n;
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
        while ((c = getopt_long(argc, argv, "+:hq", ctl_global_options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return option_error(NULL, c, argv);
                r = apply_global_option(&ctl, c, optarg);
                if (r >= 0)
                        return r;
        }
        if (optind >= argc) {
                ctl_print_usage(stderr);
                return CTL_EXIT_USAGE;
        }

        cmd = ctl_find_command(argc - optind, argv + optind, &words);
        if (!cmd) {
                /* "avatarctl runner --help": the group's commands */
                if (optind + 1 < argc && (streq(argv[optind + 1], "--help") || streq(argv[optind + 1], "-h")) &&
                    ctl_print_group_help(stdout, argv[optind]))
                        return CTL_EXIT_OK;
                return ctl_unknown_command(argc - optind, argv + optind);
        }

        /* The command's arguments, with its last word standing in for argv[0]. */
        r = parse_command_args(&ctl, cmd, argc - optind - words + 1, argv + optind + words - 1,
                               &args);
        if (r < 0) {
                if (ctl.quiet && !ctl.format_given)
                        ctl.format = CTL_FORMAT_IDS;
                ctl.json = ctl.format != CTL_FORMAT_TABLE;
                ctl.command = cmd->name;
                ctl.ids = cmd->ids;
                output_setup(ctl.tty, ctl.stderr_tty);
                r = cmd->runner_arg && args.n_pos > 0 ?
                    ctl_resolve_runner(&ctl, cmd->name, args.pos[0], &ctl.resolved_runner) : CTL_EXIT_OK;
                if (r == CTL_EXIT_OK) {
                        if (ctl.resolved_runner)
                                args.pos[0] = ctl.resolved_runner;
                        r = cmd->run(&ctl, &args);
                }
                ctl.client = avatar_client_free(ctl.client);
        }
        free(ctl.legacy_arg);
        free(ctl.resolved_runner);

        if (fflush(stdout) != 0 || ferror(stdout)) {
                (void) fprintf(stderr, "avatarctl: cannot write the output: %s\n", strerror(errno));
                if (r == CTL_EXIT_OK)
                        r = CTL_EXIT_FAILED;
        }
        return r;
}
