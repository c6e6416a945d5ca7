/* SPDX-License-Identifier: MIT */
/*
 * avatarctl's help: the command list, one command's help, a group's help ("avatarctl runner
 * --help", "avatarctl help runner"), finding the command that argv names, "did you mean"
 * for a mistyped command or option, and what the shell completions ask (the hidden command
 * "__complete").
 */
#include <ctype.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "build-config.h"
#include "jsonrpc.h"
#include "protocol.h"

/* Widest "name usage" column of the command list; longer entries put their summary on the
 * next line. */
#define CTL_USAGE_COLUMN_MAX 30

/* Most words a command line for the completion may have. */
#define COMPLETE_WORDS_MAX 64

/* Prints the exit code list (shared by --help and the man page's wording). */
static void print_exit_codes(FILE *f) {
        (void) fputs("Exit codes:\n"
                     "  0   success\n"
                     "  1   the call failed (an error not listed below)\n"
                     "  2   usage error, or invalid params / unknown method\n"
                     "  3   cannot reach the daemon (no socket, refused, connection lost)\n"
                     "  4   timed out (--timeout, --wait-timeout, or the daemon's timeout class)\n"
                     "  5   permission denied (socket access, or the method's role)\n"
                     "  6   not found (also: an item of a deletion the server did not know)\n"
                     "  7   upstream problem (Avatar server unreachable or erroring, credential\n"
                     "      rejected, incompatible, rate limited, not authenticated, storage; also\n"
                     "      health while the server is unreachable, without --stale-ok)\n"
                     "  8   job failed\n"
                     "  9   conflict, ambiguous or invalid state, or an output file exists\n"
                     "  10  daemon overloaded or shutting down\n", f);
}

/* Writes "name usage" of a command into buf, without the group word when `strip` is set. */
static void format_entry(const CtlCommand *cmd, size_t strip, char *buf, size_t size) {
        (void) snprintf(buf, size, "%s%s%s", cmd->name + strip, cmd->usage ? " " : "", cmd->usage ?: "");
}

/* Prints the entries of the commands for which `pick` holds, aligned, without the first
 * `strip` bytes of their names. */
static void print_entries(FILE *f, bool (*pick)(const CtlCommand *cmd, const void *userdata), const void *userdata,
                          size_t strip) {
        size_t i, width = 0;

        for (i = 0; i < ctl_n_commands; i++) {
                char buf[256];

                if (ctl_commands[i].hidden || !pick(&ctl_commands[i], userdata))
                        continue;
                format_entry(&ctl_commands[i], strip, buf, sizeof(buf));
                if (strlen(buf) <= CTL_USAGE_COLUMN_MAX)
                        width = MAX(width, strlen(buf));
        }
        for (i = 0; i < ctl_n_commands; i++) {
                char buf[256];

                if (ctl_commands[i].hidden || !pick(&ctl_commands[i], userdata))
                        continue;
                format_entry(&ctl_commands[i], strip, buf, sizeof(buf));
                if (strlen(buf) > width)
                        (void) fprintf(f, "  %s\n  %-*s  %s\n", buf, (int) width, "", ctl_commands[i].summary);
                else
                        (void) fprintf(f, "  %-*s  %s\n", (int) width, buf, ctl_commands[i].summary);
        }
}

/* Every command. */
static bool pick_all(const CtlCommand *cmd, const void *userdata) {
        (void) cmd;
        (void) userdata;
        return true;
}

/* The commands of a group: their name starts with the group word and a space. */
static bool pick_group(const CtlCommand *cmd, const void *userdata) {
        const char *group = userdata;
        size_t l = strlen(group);

        return strneq(cmd->name, group, l) && cmd->name[l] == ' ';
}

/* Prints the global usage on f. */
void ctl_print_usage(FILE *f) {
        (void) fputs("Usage: avatarctl [OPTIONS] COMMAND [ARGS]\n"
                     "\n"
                     "Talk to avatard, the Avatar API daemon, over its local socket.\n"
                     "\n"
                     "Commands:\n", f);
        print_entries(f, pick_all, NULL, 0);
        (void) fprintf(f,
                       "\n"
                       "Options:\n"
                       "  --socket PATH          the daemon's socket (default: $%s, else %s)\n"
                       "  --format FORMAT        table (for people, the default), json, yaml or ids\n"
                       "  --json                 the same as --format json\n"
                       "  -q, --quiet            print only ids (--format ids), no progress, no hints\n"
                       "  --timeout SECONDS      give up on a call, or a wait, after this long (default\n"
                       "                         60 for a call; 0: never)\n"
                       "  -h, --help             show this help (avatarctl GROUP --help: a group's)\n"
                       "  --version              show the version\n"
                       "\n"
                       "Output is for people whether or not it goes to a terminal; scripts ask for\n"
                       "--format json (or yaml, or ids). Colour only on a terminal, never with\n"
                       "NO_COLOR set.\n"
                       "\n",
                       AVATAR_CLIENT_SOCKET_ENV, AVATAR_CLIENT_DEFAULT_SOCKET);
        print_exit_codes(f);
}

static bool is_group(const char *word);

/* Prints the help of one command on f; a command that is also a group ("jobs") lists the
 * group's commands too. */
void ctl_print_command_help(FILE *f, const CtlCommand *cmd) {
        (void) fprintf(f, "Usage: avatarctl %s%s%s\n\n%s.\n", cmd->name, cmd->usage ? " " : "",
                       cmd->usage ?: "", cmd->summary);
        if (cmd->help)
                (void) fprintf(f, "\nOptions:\n%s", cmd->help);
        if (cmd->details)
                (void) fprintf(f, "\n%s", cmd->details);
        if (is_group(cmd->name)) {
                (void) fprintf(f, "\nThe other %s commands:\n", cmd->name);
                print_entries(f, pick_group, cmd->name, 0);
        }
        (void) fputs("\nThe global options (--socket, --format, --json, -q, --timeout) are accepted after\n"
                     "the command too; see avatarctl --help.\n", f);
}

/* Whether `word` is the first word of a command of several words. */
static bool is_group(const char *word) {
        size_t i;

        for (i = 0; i < ctl_n_commands; i++)
                if (pick_group(&ctl_commands[i], word))
                        return true;
        return false;
}

/* Prints the help of a group ("runner": its commands). Returns false when it is none. */
bool ctl_print_group_help(FILE *f, const char *group) {
        if (!is_group(group))
                return false;
        (void) fputs("Usage: avatarctl ", f);
        output_sanitized(f, group);
        (void) fputs(" COMMAND [ARGS] [OPTIONS]\n\nCommands:\n", f);
        print_entries(f, pick_group, group, strlen(group) + 1);
        (void) fputs("\nSee 'avatarctl help ", f);
        output_sanitized(f, group);
        (void) fputs(" COMMAND' (or 'avatarctl ", f);
        output_sanitized(f, group);
        (void) fputs(" COMMAND --help') for the options of one.\n", f);
        return true;
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

/* Finds the command whose name is the longest match of argv's leading words. */
const CtlCommand *ctl_find_command(int argc, char **argv, int *ret_words) {
        const CtlCommand *best = NULL;
        int best_words = 0;
        size_t i;

        for (i = 0; i < ctl_n_commands; i++) {
                int k = command_matches(&ctl_commands[i], argc, argv);

                if (k > best_words) {
                        best = &ctl_commands[i];
                        best_words = k;
                }
        }
        *ret_words = best_words;
        return best;
}

/* The edit distance of two short strings (insertions, deletions, substitutions and swaps of
 * neighbours); SIZE_MAX for strings over 64 bytes. */
static size_t distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), i, j;
        size_t d[65][65];

        if (la > 64 || lb > 64)
                return SIZE_MAX;
        for (i = 0; i <= la; i++)
                d[i][0] = i;
        for (j = 0; j <= lb; j++)
                d[0][j] = j;
        for (i = 1; i <= la; i++)
                for (j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;

                        d[i][j] = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                d[i][j] = MIN(d[i][j], d[i - 2][j - 2] + 1);
                }
        return d[la][lb];
}

/* Whether `candidate` is close enough to `given` to be suggested: a small edit distance for
 * its length, or `given` is the start of it (three letters at least). */
static bool close_enough(const char *given, const char *candidate) {
        size_t l = strlen(given), max = l <= 3 ? 1 : l <= 6 ? 2 : 3;

        if (l >= 3 && startswith(candidate, given))
                return true;
        return distance(given, candidate) <= max;
}

/* The candidate closest to `given` among the n words (NULL when none is close). Ties go to
 * the first. */
static const char *closest(const char *given, const char *const *words, size_t n) {
        const char *best = NULL;
        size_t best_d = SIZE_MAX, i;

        for (i = 0; i < n; i++) {
                size_t d;

                if (!words[i] || !close_enough(given, words[i]))
                        continue;
                d = startswith(words[i], given) ? 0 : distance(given, words[i]);
                if (d < best_d) {
                        best = words[i];
                        best_d = d;
                }
        }
        return best;
}

/* The words a command name may have at position `pos` (0: first word) after the words
 * `prefix` (pos of them), each once, into `out` (at most `max`). Returns how many. */
static size_t words_at(char **prefix, int pos, const char **out, size_t max) {
        static char buf[COMPLETE_WORDS_MAX][64];
        size_t n = 0, i, k;

        for (i = 0; i < ctl_n_commands && n < max && n < COMPLETE_WORDS_MAX; i++) {
                const char *p = ctl_commands[i].name;
                bool ok = !ctl_commands[i].hidden;
                int w;

                for (w = 0; ok && w < pos; w++) {
                        size_t l = strcspn(p, " ");

                        ok = strlen(prefix[w]) == l && strneq(prefix[w], p, l) && p[l] == ' ';
                        p += l + (p[l] == ' ');
                }
                if (!ok || !*p)
                        continue;
                (void) snprintf(buf[n], sizeof(buf[n]), "%.*s", (int) strcspn(p, " "), p);
                for (k = 0; k < n && !streq(buf[k], buf[n]); k++)
                        ;
                if (k == n)
                        out[n] = buf[n], n++;
        }
        return n;
}

/* Reports an unknown command: for a group word ("apikey") its subcommands; for a typo the
 * closest command. argv holds the words from the command on. */
int ctl_unknown_command(int argc, char **argv) {
        const char *words[COMPLETE_WORDS_MAX], *guess;
        size_t n;

        ctl_before_message();
        if (is_group(argv[0]) && (argc < 2 || argv[1][0] == '-')) {
                (void) fprintf(stderr, "avatarctl: '%s' needs a subcommand:", argv[0]);
                n = words_at(argv, 1, words, ELEMENTSOF(words));
                for (size_t i = 0; i < n; i++)
                        (void) fprintf(stderr, " %s", words[i]);
                (void) fputc('\n', stderr);
                (void) ctl_print_group_help(stderr, argv[0]);
                return CTL_EXIT_USAGE;
        }
        if (is_group(argv[0])) {
                /* "runner statsu": a known group, an unknown subcommand */
                n = words_at(argv, 1, words, ELEMENTSOF(words));
                guess = closest(argv[1], words, n);
                (void) fputs("avatarctl: unknown command '", stderr);
                output_sanitized(stderr, argv[0]);
                (void) fputc(' ', stderr);
                output_sanitized(stderr, argv[1]);
                (void) fputc('\'', stderr);
                if (guess)
                        (void) fprintf(stderr, "; did you mean '%s %s'?", argv[0], guess);
                (void) fputs(" (see avatarctl ", stderr);
                output_sanitized(stderr, argv[0]);
                (void) fputs(" --help)\n", stderr);
                return CTL_EXIT_USAGE;
        }
        n = words_at(argv, 0, words, ELEMENTSOF(words));
        guess = closest(argv[0], words, n);
        (void) fputs("avatarctl: unknown command '", stderr);
        output_sanitized(stderr, argv[0]);
        (void) fputc('\'', stderr);
        if (guess)
                (void) fprintf(stderr, "; did you mean '%s'?", guess);
        (void) fputs(" (see avatarctl --help)\n", stderr);
        return CTL_EXIT_USAGE;
}

/* The option of `cmd` (or a global one) closest to `given` ("--jsno"), with its dashes, in
 * buf; NULL when none is close. */
const char *ctl_suggest_option(const CtlCommand *cmd, const char *given, char *buf, size_t size) {
        const char *names[CTL_COMMAND_OPTIONS_MAX + 16], *best;
        size_t n = 0, i;

        given += strspn(given, "-");
        if (isempty(given))
                return NULL;
        for (i = 0; cmd && cmd->options && cmd->options[i].name && n < CTL_COMMAND_OPTIONS_MAX; i++)
                names[n++] = cmd->options[i].name;
        for (i = 0; ctl_global_options[i].name && n < ELEMENTSOF(names); i++)
                names[n++] = ctl_global_options[i].name;
        best = closest(given, names, n);
        if (!best)
                return NULL;
        (void) snprintf(buf, size, "--%s", best);
        return buf;
}

/* "avatarctl help [COMMAND...]". */
int ctl_cmd_help(Ctl *ctl, const CtlArgs *args) {
        const CtlCommand *cmd;
        int words;

        (void) ctl;
        if (args->n_pos == 0) {
                ctl_print_usage(stdout);
                return CTL_EXIT_OK;
        }
        cmd = ctl_find_command(args->n_pos, args->pos, &words);
        if (cmd && words == args->n_pos) {
                ctl_print_command_help(stdout, cmd);
                return CTL_EXIT_OK;
        }
        if (args->n_pos == 1 && ctl_print_group_help(stdout, args->pos[0]))
                return CTL_EXIT_OK;
        return ctl_unknown_command(args->n_pos, args->pos);
}

/* ---- the completion's questions ----------------------------------------------------- */

/* The global option with that long name, or NULL. */
static const struct option *global_option(const char *name) {
        for (size_t i = 0; ctl_global_options[i].name; i++)
                if (streq(ctl_global_options[i].name, name))
                        return &ctl_global_options[i];
        return NULL;
}

/* The option a word names ("--output", "-o"), of the command or global; NULL when none. */
static const struct option *option_of(const CtlCommand *cmd, const char *word) {
        const char *name = startswith(word, "--");
        size_t i;

        if (!name && word[0] == '-' && word[1] && !word[2]) {
                /* a short option: one of the command's letters, or a global one */
                if (cmd && cmd->short_options && strchr(cmd->short_options, word[1]))
                        for (i = 0; cmd->options && cmd->options[i].name; i++)
                                if (cmd->options[i].val == CTL_OPT_COMMAND_BASE + word[1])
                                        return &cmd->options[i];
                for (i = 0; ctl_global_options[i].name; i++)
                        if (ctl_global_options[i].val == word[1])
                                return &ctl_global_options[i];
                return NULL;
        }
        if (!name || strchr(name, '='))
                return NULL;
        for (i = 0; cmd && cmd->options && cmd->options[i].name; i++)
                if (streq(cmd->options[i].name, name))
                        return &cmd->options[i];
        return global_option(name);
}

/* Prints the daemon's runners for the completion: ids and display names. */
static void complete_runners(Ctl *ctl) {
        _cleanup_(unref_jsonp) json_object *result = NULL;
        json_object *runners;
        size_t i;

        if (ctl_call_quiet(ctl, "runner.list", NULL, NULL, 0, 2000, &result, NULL, NULL) != CTL_EXIT_OK)
                return;
        runners = ctl_member(result, "runners");
        for (i = 0; i < json_array_len(runners); i++) {
                json_object *r = json_object_array_get_idx(runners, i);
                const char *id = ctl_member_string(r, "runner_id"), *name = ctl_member_string(r, "display_name");

                if (id)
                        (void) printf("%s\n", id);
                if (name && !strpbrk(name, " \t\n"))
                        (void) printf("%s\n", name);
        }
}

/* Prints the candidates for an option's argument. */
static void complete_option_argument(Ctl *ctl, const struct option *o) {
        static const char *const formats[] = { "table", "json", "yaml", "ids" };
        const char *name = o->name;
        size_t i;

        if (streq(name, "format"))
                for (i = 0; i < ELEMENTSOF(formats); i++)
                        (void) printf("%s\n", formats[i]);
        else if (streq(name, "runner") || streq(name, "resume"))
                complete_runners(ctl);
        else if (streq(name, "jobs"))
                for (i = 0; i < ELEMENTSOF(runner_jobs); i++)
                        (void) printf("%s\n", runner_jobs[i]);
        else if (streq(name, "socket") || streq(name, "output") || streq(name, "file") || streq(name, "out") ||
                 streq(name, "avatar-data"))
                (void) puts("__files__");
}

/* Prints the candidates for the positional argument `index` of cmd (0: the first), named by
 * its usage ("RUNNER [RESULT] [--table T] ..."; options and their arguments aside). */
static void complete_positional(Ctl *ctl, const CtlCommand *cmd, int index) {
        _cleanup_free_ char *usage = strdup(cmd->usage ?: "");
        char *p = usage, *w = NULL;
        bool skip_next = false;
        int k = 0;

        if (!usage)
                return;
        while ((w = strsep(&p, " "))) {
                bool closed = endswith(w, "]");

                w += strspn(w, "[");
                if (skip_next) {
                        skip_next = false;
                        continue;
                }
                if (isempty(w) || w[0] == '|')
                        continue;
                if (w[0] == '-') {
                        skip_next = !closed; /* "[-o FILE]": FILE is the option's */
                        continue;
                }
                if (k++ == index)
                        break;
        }
        if (!w)
                return;
        if (startswith(w, "RUNNER"))
                complete_runners(ctl);
        else if (startswith(w, "FILE") || startswith(w, "PATH"))
                (void) puts("__files__");
        else if (startswith(w, "RESULT"))
                for (size_t i = 0; result_kind_at(i); i++)
                        (void) printf("%s\n", result_kind_at(i)->result);
}

/* "avatarctl __complete -- WORD...": the words that may come in place of the last WORD (the
 * one being typed, maybe empty), one per line; "__files__" asks the shell for file names.
 * Hidden: for the bash and zsh completions (client/completion); "--" keeps the words from
 * being read as avatarctl's own options. */
int ctl_cmd_complete(Ctl *ctl, const CtlArgs *args) {
        char *words[COMPLETE_WORDS_MAX];
        const CtlCommand *cmd = NULL;
        const struct option *o;
        const char *cur = args->n_pos > 0 ? args->pos[args->n_pos - 1] : "";
        const char *prev = args->n_pos > 1 ? args->pos[args->n_pos - 2] : NULL;
        int n_words = 0, matched = 0, i;
        bool after_dashes = false;

        /* The words before the current one: options (with their arguments) aside. */
        for (i = 0; i + 1 < args->n_pos && n_words < COMPLETE_WORDS_MAX; i++) {
                const char *w = args->pos[i];

                if (!after_dashes && w[0] == '-' && w[1]) {
                        if (streq(w, "--")) {
                                after_dashes = true;
                                continue;
                        }
                        o = option_of(cmd, w);
                        if (o && o->has_arg == required_argument && i + 2 < args->n_pos)
                                i++;
                        continue;
                }
                words[n_words++] = args->pos[i];
                if (!cmd || matched == 0) {
                        int k;
                        const CtlCommand *c = ctl_find_command(n_words, words, &k);

                        if (c && k == n_words) {
                                cmd = c;
                                matched = k;
                        }
                }
        }
        if (cmd) {
                /* a longer command may still match the words ("jobs" then "jobs delete") */
                int k;
                const CtlCommand *c = ctl_find_command(n_words, words, &k);

                if (c && k > matched) {
                        cmd = c;
                        matched = k;
                }
        }

        if (prev && prev[0] == '-' && (o = option_of(cmd, prev)) && o->has_arg == required_argument) {
                complete_option_argument(ctl, o);
                return CTL_EXIT_OK;
        }
        if (cur[0] == '-') {
                for (size_t j = 0; cmd && cmd->options && cmd->options[j].name; j++)
                        if (!ctl_option_is_alias(cmd->options[j].name))
                                (void) printf("--%s\n", cmd->options[j].name);
                for (size_t j = 0; ctl_global_options[j].name; j++)
                        (void) printf("--%s\n", ctl_global_options[j].name);
                return CTL_EXIT_OK;
        }
        if (cmd && streq(cmd->name, "help")) {
                const char *next[COMPLETE_WORDS_MAX];
                size_t n = words_at(words + matched, n_words - matched, next, ELEMENTSOF(next));

                for (size_t j = 0; j < n; j++)
                        (void) printf("%s\n", next[j]);
                return CTL_EXIT_OK;
        }
        if (!cmd || matched == n_words) {
                /* the next word of a command name */
                const char *next[COMPLETE_WORDS_MAX];
                size_t n = words_at(words, n_words, next, ELEMENTSOF(next));

                for (size_t j = 0; j < n; j++)
                        (void) printf("%s\n", next[j]);
        }
        if (cmd)
                complete_positional(ctl, cmd, n_words - matched);
        return CTL_EXIT_OK;
}

/* Whether the space-separated list names `method`; with `first`, as its first word. */
static bool calls_method(const char *calls, const char *method, bool first) {
        size_t l = strlen(method);
        const char *p = calls;

        while (p && *p) {
                if (strneq(p, method, l) && (p[l] == ' ' || p[l] == '\0'))
                        return true;
                if (first)
                        return false;
                p = strchr(p, ' ');
                if (p)
                        p++;
        }
        return false;
}

/* The command that calls `method`: the one that calls it first of all, else the first that
 * calls it at all. */
const char *ctl_command_of_method(const char *method) {
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; method && i < ctl_n_commands; i++)
                        if (ctl_commands[i].calls && calls_method(ctl_commands[i].calls, method, pass == 0))
                                return ctl_commands[i].name;
        return NULL;
}
