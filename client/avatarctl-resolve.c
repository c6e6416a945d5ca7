/* SPDX-License-Identifier: MIT */
/*
 * What the user means: runners, runs and jobs named by their full id, a unique prefix of it,
 * or a display name, found among what the daemon lists (runner.list, manager.find_ids_by_name,
 * manager.get_jobs); and the question asked before a destructive command.
 *
 * An ambiguous name lists its candidates once, each as the id to give instead; nothing is
 * done then (exit 9). A name that matches nothing exits 6 with where to look.
 */
#include <ctype.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-secret.h"
#include "jsonc-helpers.h"

/* Most candidates an ambiguous name lists. */
#define CANDIDATES_MAX 20

/* Longest answer read for a confirmation. */
#define ANSWER_MAX 64

/* Whether `id` starts with `prefix`, letters in any case. */
static bool id_has_prefix(const char *id, const char *prefix) {
        for (; *prefix; prefix++, id++)
                if (tolower((unsigned char) *prefix) != tolower((unsigned char) *id))
                        return false;
        return true;
}

/* Appends a candidate (borrowed object) to `list` (an array). Returns 0 or -ENOMEM. */
static int add_candidate(json_object *list, json_object *o) {
        if (json_object_array_add(list, json_object_get(o)) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        return 0;
}

/* Prints the candidates of an ambiguous name: "  ID  TEXT" per line, at most CANDIDATES_MAX. */
static void print_candidates(json_object *list, const char *id_key, const char *(*describe)(json_object *o, char *buf,
                                                                                               size_t size)) {
        size_t i, n = json_object_array_length(list);

        for (i = 0; i < n && i < CANDIDATES_MAX; i++) {
                json_object *o = json_object_array_get_idx(list, i);
                char buf[256] = "";

                (void) fputs("  ", stderr);
                output_sanitized(stderr, ctl_member_string(o, id_key) ?: "?");
                (void) fputs("  ", stderr);
                output_sanitized(stderr, describe(o, buf, sizeof(buf)));
                (void) fputc('\n', stderr);
        }
        if (n > CANDIDATES_MAX)
                (void) fprintf(stderr, "  and %zu more\n", n - CANDIDATES_MAX);
}

/* Reports an ambiguous name and returns CTL_EXIT_CONFLICT. */
static int fail_ambiguous(const char *command, const char *what, const char *arg, json_object *list,
                          const char *id_key, const char *(*describe)(json_object *o, char *buf, size_t size)) {
        (void) ctl_fail(CTL_EXIT_CONFLICT, command, "'%s' names %zu %ss; give the id of one (ambiguous):", arg,
                        json_object_array_length(list), what);
        print_candidates(list, id_key, describe);
        return CTL_EXIT_CONFLICT;
}

/* ---- runners ------------------------------------------------------------------------ */

/* "NAME  STATE  created TIME" for a runner. */
static const char *describe_runner(json_object *o, char *buf, size_t size) {
        char t[64] = "-";
        json_object *c = ctl_member(o, "created_at");

        if (json_object_is_type(c, json_type_int))
                output_time((time_t) json_object_get_int64(c), t, sizeof(t));
        (void) snprintf(buf, size, "%s  %s  created %s", ctl_member_string(o, "display_name") ?: "-",
                        ctl_member_string(o, "state") ?: "-", t);
        return buf;
}

/* Resolves a runner's id, prefix or display name. */
int ctl_resolve_runner(Ctl *ctl, const char *command, const char *arg, char **ret) {
        _cleanup_(unref_jsonp) json_object *result = NULL, *by_name = NULL, *by_prefix = NULL;
        json_object *runners, *pick;
        size_t i;
        int code;

        *ret = NULL;
        if (ctl_is_uuid(arg))
                return CTL_EXIT_OK;
        if (isempty(arg))
                return ctl_fail(CTL_EXIT_USAGE, command, "the runner is empty: give its id, a unique prefix of it, "
                                "or its display name (see avatarctl runner list)");
        code = ctl_call(ctl, "runner.list", NULL, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        runners = ctl_member(result, "runners");
        by_name = json_object_new_array();
        by_prefix = json_object_new_array();
        if (!by_name || !by_prefix)
                return ctl_fail_oom(command);
        for (i = 0; i < json_array_len(runners); i++) {
                json_object *r = json_object_array_get_idx(runners, i);
                const char *id = ctl_member_string(r, "runner_id");

                if (!id)
                        continue;
                if (streq_ptr(ctl_member_string(r, "display_name"), arg) && add_candidate(by_name, r) < 0)
                        return ctl_fail_oom(command);
                if (id_has_prefix(id, arg) && add_candidate(by_prefix, r) < 0)
                        return ctl_fail_oom(command);
        }
        /* A display name wins over a prefix: "iris" is the runner named iris. */
        pick = json_object_array_length(by_name) > 0 ? by_name : by_prefix;
        if (json_object_array_length(pick) == 0) {
                code = ctl_fail(CTL_EXIT_NOT_FOUND, command,
                                "no runner '%s': not the id, an id prefix or the display name of one of your runners",
                                arg);
                ctl_hint(ctl, "see your runners with 'avatarctl runner list'");
                return code;
        }
        if (json_object_array_length(pick) > 1)
                return fail_ambiguous(command, "runner", arg, pick, "runner_id", describe_runner);
        *ret = strdup(ctl_member_string(json_object_array_get_idx(pick, 0), "runner_id"));
        return *ret ? CTL_EXIT_OK : ctl_fail_oom(command);
}

/* ---- runs --------------------------------------------------------------------------- */

/* "newest job TIME, N jobs" for a run of manager.find_ids_by_name. */
static const char *describe_run(json_object *o, char *buf, size_t size) {
        _cleanup_free_ char *t = NULL;
        size_t n = ctl_member_length(o, "jobs");

        if (output_format_time(ctl_member(o, "created_at"), &t) < 0)
                t = NULL;
        (void) snprintf(buf, size, "newest job %s, %zu job%s", t ?: "-", n, n == 1 ? "" : "s");
        return buf;
}

/* "DISPLAY NAME" for a job standing for its run. */
static const char *describe_set(json_object *o, char *buf, size_t size) {
        (void) snprintf(buf, size, "%s", ctl_member_string(o, "display_name") ?: "-");
        return buf;
}

/* Resolves a run's id, prefix or display name. */
int ctl_resolve_set(Ctl *ctl, const char *command, const char *arg, char **ret) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *found = NULL, *jobs = NULL, *sets = NULL;
        json_object *runs, *list;
        size_t i, k;
        int code;

        *ret = NULL;
        if (isempty(arg))
                return ctl_fail(CTL_EXIT_USAGE, command, "the run is empty: give its id, a unique prefix of it, or "
                                "its display name (see avatarctl runs find NAME)");
        if (ctl_is_uuid(arg)) {
                *ret = strdup(arg);
                return *ret ? CTL_EXIT_OK : ctl_fail_oom(command);
        }
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "set_name", json_object_new_string(arg)) < 0)
                return ctl_fail_oom(command);
        code = ctl_call(ctl, "manager.find_ids_by_name", params, NULL, 0, &found);
        if (code != CTL_EXIT_OK)
                return code;
        runs = ctl_member(found, "runs");
        if (json_array_len(runs) > 1)
                return fail_ambiguous(command, "run", arg, runs, "set_name", describe_run);
        if (json_array_len(runs) == 1) {
                *ret = strdup(ctl_member_string(json_object_array_get_idx(runs, 0), "set_name") ?: "");
                return *ret ? CTL_EXIT_OK : ctl_fail_oom(command);
        }

        /* not a display name: a prefix of a run id, among the jobs */
        code = ctl_call(ctl, "manager.get_jobs", NULL, NULL, 0, &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        list = ctl_member(jobs, "jobs");
        sets = json_object_new_array();
        if (!sets)
                return ctl_fail_oom(command);
        for (i = 0; i < json_array_len(list); i++) {
                json_object *j = json_object_array_get_idx(list, i);
                const char *set = ctl_member_string(j, "set_name");
                bool seen = false;

                if (!set || !id_has_prefix(set, arg))
                        continue;
                for (k = 0; k < json_object_array_length(sets) && !seen; k++)
                        seen = streq_ptr(ctl_member_string(json_object_array_get_idx(sets, k), "set_name"), set);
                if (!seen && add_candidate(sets, j) < 0)
                        return ctl_fail_oom(command);
        }
        if (json_object_array_length(sets) == 0) {
                code = ctl_fail(CTL_EXIT_NOT_FOUND, command, "no run '%s': not a run id, a prefix of one or a display name",
                                arg);
                ctl_hint(ctl, "look for it with 'avatarctl runs find NAME' or 'avatarctl jobs'");
                return code;
        }
        if (json_object_array_length(sets) > 1)
                return fail_ambiguous(command, "run", arg, sets, "set_name", describe_set);
        *ret = strdup(ctl_member_string(json_object_array_get_idx(sets, 0), "set_name"));
        return *ret ? CTL_EXIT_OK : ctl_fail_oom(command);
}

/* ---- jobs --------------------------------------------------------------------------- */

/* "KIND  STATUS  DISPLAY NAME" for a job. */
static const char *describe_job(json_object *o, char *buf, size_t size) {
        (void) snprintf(buf, size, "%s  %s  %s", ctl_member_string(o, "kind") ?: "-",
                        ctl_member_string(o, "status") ?: "-", ctl_member_string(o, "display_name") ?: "-");
        return buf;
}

/* Resolves a job's name or a unique prefix of it. */
int ctl_resolve_job(Ctl *ctl, const char *command, const char *arg, char **ret) {
        _cleanup_(unref_jsonp) json_object *jobs = NULL, *matches = NULL;
        json_object *list;
        size_t i;
        int code;

        *ret = NULL;
        code = ctl_call(ctl, "manager.get_jobs", NULL, NULL, 0, &jobs);
        if (code != CTL_EXIT_OK)
                return code;
        list = ctl_member(jobs, "jobs");
        matches = json_object_new_array();
        if (!matches)
                return ctl_fail_oom(command);
        for (i = 0; i < json_array_len(list); i++) {
                json_object *j = json_object_array_get_idx(list, i);
                const char *name = ctl_member_string(j, "name");

                if (streq_ptr(name, arg)) {
                        *ret = strdup(name);
                        return *ret ? CTL_EXIT_OK : ctl_fail_oom(command);
                }
                if (name && id_has_prefix(name, arg) && add_candidate(matches, j) < 0)
                        return ctl_fail_oom(command);
        }
        if (json_object_array_length(matches) == 0)
                return CTL_EXIT_NOT_FOUND; /* the caller says why */
        if (json_object_array_length(matches) > 1)
                return fail_ambiguous(command, "job", arg, matches, "name", describe_job);
        *ret = strdup(ctl_member_string(json_object_array_get_idx(matches, 0), "name"));
        return *ret ? CTL_EXIT_OK : ctl_fail_oom(command);
}

/* ---- confirmation ------------------------------------------------------------------- */

/* Asks before a destructive operation. */
int ctl_confirm(const Ctl *ctl, const char *command, bool yes, const char *what) {
        char answer[ANSWER_MAX + 1];
        size_t n = 0;

        (void) ctl;
        if (yes)
                return CTL_EXIT_OK;
        if (isatty(STDIN_FILENO) <= 0)
                return ctl_fail(CTL_EXIT_USAGE, command,
                                "%s: not without a confirmation, and stdin is not a terminal to ask on: "
                                "add --yes to go on", what);
        ctl_before_message();
        output_sanitized(stderr, what);
        (void) fputs("? [y/N] ", stderr);
        (void) fflush(stderr);
        for (;;) {
                char c;
                ssize_t k = ctl_read_retry(STDIN_FILENO, &c, 1);

                if (k <= 0 || c == '\n')
                        break;
                if (n < ANSWER_MAX)
                        answer[n++] = c;
        }
        answer[n] = '\0';
        if (streq(answer, "y") || streq(answer, "Y") || streq(answer, "yes") || streq(answer, "YES") ||
            streq(answer, "Yes"))
                return CTL_EXIT_OK;
        return ctl_fail(CTL_EXIT_FAILED, command, "nothing was deleted");
}
