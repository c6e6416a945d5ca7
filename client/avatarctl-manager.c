/* SPDX-License-Identifier: MIT */
/*
 * avatarctl commands for the Manager methods (manager.*): the Avatar server's health and
 * compatibility, login and passwords, API keys, jobs, results, runs, deletion.
 *
 * Each command checks its arguments before anything is sent (and before a password is asked
 * for), calls one method, and prints the daemon's result unchanged as JSON in JSON mode; for
 * people it prints tables for lists, "Label: value" lines for one object and a summary for
 * deletions, with "(stale, N s old)" under what the daemon served from its cache while the
 * Avatar server was unreachable. "jobs delete" alone may split a long list of names over
 * several calls (see delete_jobs_chunked()).
 */
#include <inttypes.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-secret.h"
#include "errors.h"
#include "jsonrpc.h"

/* Longest job name the daemon accepts (manager.get_job, manager.delete_jobs). */
#define JOB_NAME_MAX 256
/* Longest API key label (manager.create_api_key). */
#define KEY_NAME_MAX 255
/* Most names one manager.delete_jobs call takes. */
#define DELETE_NAMES_MAX 100000
/* The daemon deletes in batches of this many names (upstream's bulk-delete limit). */
#define DELETE_BATCH 100
/* Most bytes of names sent in one manager.delete_jobs call: well below the daemon's default
 * frame limit (1 MiB), so a long list from stdin is sent in several calls instead of being
 * refused as one oversize line. */
#define DELETE_CALL_BYTES (256u * 1024u)
/* Most --last for jobs, --limit, and --last for results (the methods' maxima). */
#define JOBS_COUNT_MAX 100000
#define RESULTS_COUNT_MAX 100

/* The job kinds of the contract (JobKind). */
static const char *const job_kinds[] = {
        "standard", "privacy_metrics", "signal_metrics", "report", "advice",
};

/* The validities an API key may have, in days. */
static const long long key_days[] = { 30, 60, 120, 365, 3650 };

/* The members every cached read carries; printed as the stale note, not as fields. */
static const char *const freshness_keys[] = { "stale", "age_s" };

/* ---- small helpers ------------------------------------------------------------------ */

/* Overwrites a string member of params in place (a password must not linger in memory). */
static void erase_string_member(json_object *params, const char *key) {
        json_object *v = ctl_member(params, key);

        if (json_object_is_type(v, json_type_string))
                explicit_bzero((char *) json_object_get_string(v), (size_t) json_object_get_string_len(v));
}

/* A shallow copy of an object without the members in `skip`, in *ret. Returns 0 or
 * -ENOMEM. */
static int copy_without(json_object *o, const char *const *skip, size_t n_skip, json_object **ret) {
        json_object *c = json_object_new_object();

        if (!c)
                return -ENOMEM;
        if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, key, v) {
                        if (ctl_in_set(key, skip, n_skip))
                                continue;
                        if (json_object_object_add(c, key, json_object_get(v)) < 0) {
                                json_object_put(v);
                                json_object_put(c);
                                return -ENOMEM;
                        }
                }
        }
        *ret = c;
        return 0;
}

/* Prints "(stale, N s old)" when the result is the daemon's last good answer, served while
 * the Avatar server is unreachable. */
static void print_stale_note(json_object *result) {
        json_object *v = ctl_member(result, "stale");

        if (!json_object_is_type(v, json_type_boolean) || !json_object_get_boolean(v))
                return;
        (void) printf("(stale, %.0f s old)\n", json_object_get_double(ctl_member(result, "age_s")));
}

/* output_format_fn: seconds as "1h 2m ago". */
static int format_ago(json_object *v, char **ret) {
        char buf[64], *t;
        double d;

        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
                return output_value_text(v, ret);
        d = json_object_get_double(v);
        if (!(d >= 0) || d > 1e15)
                return output_value_text(v, ret);
        output_duration((uint64_t) (d + 0.5), buf, sizeof(buf));
        if (asprintf(&t, "%s ago", buf) < 0)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* One "Label: value" line of a single object. */
typedef struct Field {
        const char *key;
        const char *label;
        output_format_fn format;  /* NULL: output_value_text() */
} Field;

/* Prints the listed fields the object has, in that order, as aligned "Label: value" lines,
 * then its other members (except `skip`) with labels made from their keys, so what a newer
 * daemon adds still shows. Returns 0 or -ENOMEM. */
static int print_fields(json_object *o, const Field *fields, size_t n_fields,
                        const char *const *skip, size_t n_skip) {
        size_t i, width = 0;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return output_tree(stdout, o, 0);

        for (i = 0; i < n_fields; i++)
                if (json_object_object_get_ex(o, fields[i].key, NULL))
                        width = MAX(width, output_width(fields[i].label) + 1);
        json_object_object_foreach(o, k0, v0) {
                bool listed = false;

                (void) v0;
                for (i = 0; i < n_fields && !listed; i++)
                        listed = streq(fields[i].key, k0);
                if (!listed && !ctl_in_set(k0, skip, n_skip))
                        width = MAX(width, output_width(k0) + 1);
        }

        for (i = 0; i < n_fields; i++) {
                _cleanup_free_ char *label = NULL, *text = NULL;
                json_object *v;

                if (!json_object_object_get_ex(o, fields[i].key, &v))
                        continue;
                r = (fields[i].format ?: output_value_text)(v, &text);
                if (r < 0)
                        return r;
                if (asprintf(&label, "%s:", fields[i].label) < 0)
                        return -ENOMEM;
                output_padded(stdout, label, width, OUTPUT_ALIGN_LEFT);
                (void) fputs("  ", stdout);
                output_sanitized(stdout, text);
                (void) putchar('\n');
        }

        json_object_object_foreach(o, key, v) {
                _cleanup_free_ char *label = NULL, *text = NULL, *colon = NULL;
                bool listed = false;

                for (i = 0; i < n_fields && !listed; i++)
                        listed = streq(fields[i].key, key);
                if (listed || ctl_in_set(key, skip, n_skip))
                        continue;
                label = output_humanize_key(key);
                if (!label || asprintf(&colon, "%s:", label) < 0)
                        return -ENOMEM;
                r = output_value_text(v, &text);
                if (r < 0)
                        return r;
                output_padded(stdout, colon, width, OUTPUT_ALIGN_LEFT);
                (void) fputs("  ", stdout);
                output_sanitized(stdout, text);
                (void) putchar('\n');
        }
        return 0;
}

/* Reads a password for command `what`: typed on the terminal after `prompt`, or the next
 * line of stdin. Returns CTL_EXIT_OK with *ret set (release with erase_and_free()), or prints
 * why not and returns the exit code. */
static int read_password(const CtlArgs *args, const char *what, const char *prompt, char **ret) {
        bool from_stdin = ctl_opt_given(args, CTL_OPT_PASSWORD_STDIN);
        char *p = NULL;
        int r;

        r = ctl_read_secret(from_stdin ? NULL : prompt, &p);
        switch (r) {
        case 0:
                break;
        case -ENODATA:
                return ctl_fail(CTL_EXIT_USAGE, what, "no password given (the input ended)");
        case -EFBIG:
                return ctl_fail(CTL_EXIT_USAGE, what, "the password is longer than %u bytes",
                                CTL_SECRET_MAX);
        default:
                return ctl_fail(CTL_EXIT_FAILED, what, "cannot read the password: %s", strerror(-r));
        }
        if (isempty(p)) {
                free(p);
                return ctl_fail(CTL_EXIT_USAGE, what, "the password is empty");
        }
        *ret = p;
        return CTL_EXIT_OK;
}

/* ---- health, compat ----------------------------------------------------------------- */

/* Prints manager.get_health: the server's answer as a tree, and the stale note. */
static int print_health(Ctl *ctl, json_object *result, void *userdata) {
        _cleanup_(unref_jsonp) json_object *rest = NULL;
        int r;

        (void) ctl;
        (void) userdata;
        if (!json_object_is_type(result, json_type_object))
                return output_tree(stdout, result, 0);
        r = copy_without(result, freshness_keys, ELEMENTSOF(freshness_keys), &rest);
        if (r < 0)
                return r;
        if (json_object_object_length(rest) == 0)
                (void) puts("The Avatar server answered, without details.");
        else {
                r = output_tree(stdout, rest, 0);
                if (r < 0)
                        return r;
        }
        print_stale_note(result);
        return 0;
}

/* "avatarctl health [--stale-ok]": manager.get_health, and manager.verify_compatibility
 * (the daemon's cached answer): exits 7 with the reason when the server is unreachable (the
 * answer is the daemon's last good one, stale) unless --stale-ok, or when it says this
 * daemon is an incompatible client. */
int ctl_cmd_health(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *result = NULL, *compat = NULL;
        bool stale;
        int code, r = 0;

        code = ctl_call(ctl, "manager.get_health", NULL, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        stale = json_object_get_boolean(ctl_member(result, "stale"));
        if (!stale)
                (void) ctl_call_quiet(ctl, "manager.verify_compatibility", NULL, NULL, 0, ctl->timeout_ms, &compat, &e,
                                      &r);
        code = ctl_print_result(ctl, "manager.get_health", result, print_health, NULL);
        if (code != CTL_EXIT_OK)
                return code;
        if (stale && !ctl_opt_given(args, CTL_OPT_STALE_OK)) {
                code = ctl_fail(CTL_EXIT_UPSTREAM, args->command,
                                "the Avatar server is unreachable: this is the daemon's last answer, %.0f s old "
                                "(upstream_unreachable)",
                                json_object_get_double(ctl_member(result, "age_s")));
                ctl_hint(ctl, "'avatarctl health --stale-ok' accepts it; 'avatarctl status' shows the server's "
                         "address and state");
                return code;
        }
        if (r == -EREMOTEIO && streq(avatar_client_error_name(&e), "incompatible")) {
                ctl_report_call_error(ctl, "manager.verify_compatibility", r, &e, ctl->timeout_ms);
                return CTL_EXIT_UPSTREAM;
        }
        return CTL_EXIT_OK;
}

/* Prints manager.verify_compatibility. */
static int print_compat(Ctl *ctl, json_object *result, void *userdata) {
        static const Field fields[] = {
                { "status", "Status", NULL },
                { "compatible", "Compatible", NULL },
                { "message", "Server message", output_format_dash },
                { "most_recent_compatible_client", "Latest compatible client", output_format_dash },
                { "daemon_version", "Daemon version", NULL },
                { "user_agent", "User agent", NULL },
                { "verification", "Checks enabled", NULL },
                { "age_s", "Checked", format_ago },
        };

        (void) ctl;
        (void) userdata;
        return print_fields(result, fields, ELEMENTSOF(fields), freshness_keys, 0);
}

/* "avatarctl compat [--refresh]": manager.verify_compatibility. */
int ctl_cmd_compat(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;

        if (ctl_opt_given(args, CTL_OPT_REFRESH)) {
                params = json_object_new_object();
                if (!params || ctl_add_member(params, "refresh", json_object_new_boolean(true)) < 0)
                        return ctl_fail_oom(args->command);
        }
        return ctl_call_and_print(ctl, "manager.verify_compatibility", params, print_compat, NULL);
}

/* ---- login and passwords ------------------------------------------------------------ */

/* "avatarctl login USERNAME [--password-stdin]": manager.authenticate. */
int ctl_cmd_login(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_erase_free_ char *password = NULL;
        const char *username = args->pos[0], *warning, *who;
        int code;

        if (isempty(username))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the username is empty");
        code = read_password(args, args->command, "Password: ", &password);
        if (code != CTL_EXIT_OK)
                return code;

        params = json_object_new_object();
        if (!params || ctl_add_member(params, "username", json_object_new_string(username)) < 0 ||
            ctl_add_member(params, "password", json_object_new_string(password)) < 0) {
                erase_string_member(params, "password");
                return ctl_fail_oom(args->command);
        }
        code = ctl_call(ctl, "manager.authenticate", params, NULL, 0, &result);
        erase_string_member(params, "password");
        if (code != CTL_EXIT_OK)
                return code;

        /* In both output modes: stdout may be a pipe into a script nobody reads. */
        warning = ctl_member_string(result, "warning");
        if (!isempty(warning))
                ctl_warning(warning);
        if (ctl->json) {
                ctl_print_json(ctl, result);
                return CTL_EXIT_OK;
        }
        who = ctl_member_string(result, "username") ?: username;
        (void) fputs("Logged in as ", stdout);
        output_sanitized(stdout, who);
        (void) puts("; the daemon now uses this session for all its clients.");
        return CTL_EXIT_OK;
}

/* Prints manager.forgotten_password. */
static int print_forgot(Ctl *ctl, json_object *result, void *userdata) {
        json_object *sent = ctl_member(result, "sent");

        (void) ctl;
        if (sent && !json_object_get_boolean(sent)) {
                (void) puts("The Avatar server did not send a reset email.");
                return 0;
        }
        (void) fputs("The Avatar server was asked to send a password reset email to ", stdout);
        output_sanitized(stdout, userdata);
        (void) fputs(".\nWith the token it carries, run: avatarctl password reset ", stdout);
        output_sanitized(stdout, userdata);
        (void) puts(" --token TOKEN");
        return 0;
}

/* "avatarctl password forgot EMAIL": manager.forgotten_password. */
int ctl_cmd_password_forgot(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *email = args->pos[0];

        if (isempty(email))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the email address is empty");
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "email", json_object_new_string(email)) < 0)
                return ctl_fail_oom(args->command);
        return ctl_call_and_print(ctl, "manager.forgotten_password", params, print_forgot,
                                  (void *) email);
}

/* Prints manager.reset_password. */
static int print_reset(Ctl *ctl, json_object *result, void *userdata) {
        json_object *reset = ctl_member(result, "reset");

        (void) ctl;
        if (reset && !json_object_get_boolean(reset)) {
                (void) puts("The Avatar server did not reset the password.");
                return 0;
        }
        (void) fputs("The password of ", stdout);
        output_sanitized(stdout, userdata);
        (void) puts(" was reset.");
        return 0;
}

/* "avatarctl password reset EMAIL --token UUID [--password-stdin]": manager.reset_password.
 * The new password is asked twice; the two must match before anything is sent. */
int ctl_cmd_password_reset(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        _cleanup_erase_free_ char *first = NULL, *second = NULL;
        const char *email = args->pos[0], *token = ctl_opt(args, CTL_OPT_TOKEN);
        int code;

        if (isempty(email))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the email address is empty");
        if (!token)
                return ctl_fail(CTL_EXIT_USAGE, args->command,
                                "--token UUID is required (the token from the reset email)");
        if (!ctl_is_uuid(token))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--token: expected a UUID, got '%s'",
                                token);

        code = read_password(args, args->command, "New password: ", &first);
        if (code != CTL_EXIT_OK)
                return code;
        code = read_password(args, args->command, "Repeat the new password: ", &second);
        if (code != CTL_EXIT_OK)
                return code;
        if (!streq(first, second))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the two passwords differ; nothing was sent");

        params = json_object_new_object();
        if (!params || ctl_add_member(params, "email", json_object_new_string(email)) < 0 ||
            ctl_add_member(params, "new_password", json_object_new_string(first)) < 0 ||
            ctl_add_member(params, "new_password_repeated", json_object_new_string(second)) < 0 ||
            ctl_add_member(params, "token", json_object_new_string(token)) < 0) {
                erase_string_member(params, "new_password");
                erase_string_member(params, "new_password_repeated");
                return ctl_fail_oom(args->command);
        }
        code = ctl_call_and_print(ctl, "manager.reset_password", params, print_reset, (void *) email);
        erase_string_member(params, "new_password");
        erase_string_member(params, "new_password_repeated");
        return code;
}

/* ---- API keys ----------------------------------------------------------------------- */

/* Prints manager.create_api_key: the plaintext key once with the note to save it, or that
 * the daemon switched to the stored key. */
static int print_key_created(Ctl *ctl, json_object *result, void *userdata) {
        json_object *key = ctl_member(result, "api_key"), *stored = ctl_member(result, "stored");
        _cleanup_free_ char *expires = NULL;
        const char *plaintext = ctl_member_string(key, "plaintext");
        int r;

        (void) ctl;
        (void) userdata;
        r = output_format_time(ctl_member(key, "expires_at"), &expires);
        if (r < 0)
                return r;

        (void) fputs("Created API key '", stdout);
        output_sanitized(stdout, ctl_member_string(key, "name") ?: "?");
        (void) fputs("' (id ", stdout);
        output_sanitized(stdout, ctl_member_string(key, "id") ?: "?");
        (void) fputs("), valid until ", stdout);
        output_sanitized(stdout, expires);
        (void) puts(".");

        if (json_object_get_boolean(stored)) {
                (void) puts("The daemon switched to it: it is now the daemon's credential, kept in its\n"
                            "state directory (mode 0600), and it is not shown.");
                return 0;
        }
        if (!plaintext) {
                (void) puts("The daemon did not return the key.");
                return 0;
        }
        (void) puts("\nThe key:\n");
        (void) fputs("    ", stdout);
        output_sanitized(stdout, plaintext);
        (void) puts("\n\nSave it now: it is shown only this once and nobody can show it again.");
        return 0;
}

/* "avatarctl apikey create --name NAME --days DAYS [--store]": manager.create_api_key. */
int ctl_cmd_apikey_create(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *name = ctl_opt(args, CTL_OPT_NAME), *days_text = ctl_opt(args, CTL_OPT_DAYS);
        long long days;
        bool valid = false;
        size_t i;
        int code;

        if (!name || !days_text)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--name NAME and --days DAYS are required");
        if (isempty(name) || output_width(name) > KEY_NAME_MAX)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--name: expected 1 to %d characters",
                                KEY_NAME_MAX);
        code = ctl_parse_int("--days", days_text, 1, 100000, &days);
        if (code != CTL_EXIT_OK)
                return code;
        for (i = 0; i < ELEMENTSOF(key_days); i++)
                valid = valid || key_days[i] == days;
        if (!valid)
                return ctl_fail(CTL_EXIT_USAGE, args->command,
                                "--days: expected 30, 60, 120, 365 or 3650, got %lld", days);

        params = json_object_new_object();
        if (!params || ctl_add_member(params, "name", json_object_new_string(name)) < 0 ||
            ctl_add_member(params, "expiration_days", json_object_new_int64(days)) < 0 ||
            (ctl_opt_given(args, CTL_OPT_STORE) &&
             ctl_add_member(params, "store", json_object_new_boolean(true)) < 0))
                return ctl_fail_oom(args->command);
        return ctl_call_and_print(ctl, "manager.create_api_key", params, print_key_created, NULL);
}

/* Prints manager.list_api_keys as a table. */
static int print_key_list(Ctl *ctl, json_object *result, void *userdata) {
        static const OutputColumn cols[] = {
                { .header = "ID", .key = "id" },
                { .header = "NAME", .key = "name" },
                { .header = "CREATED", .key = "created_at", .format = output_format_time },
                { .header = "EXPIRES", .key = "expires_at", .format = output_format_time },
                { .header = "REVOKED", .key = "revoked_at", .format = output_format_time },
                { .header = "LAST USED", .key = "last_used_at", .format = output_format_time },
        };
        json_object *keys = ctl_member(result, "api_keys");

        (void) ctl;
        (void) userdata;
        if (!json_object_is_type(keys, json_type_array))
                return output_tree(stdout, result, 0);
        if (json_object_array_length(keys) == 0) {
                (void) puts("No API keys.");
                return 0;
        }
        return output_table(stdout, keys, cols, ELEMENTSOF(cols));
}

/* "avatarctl apikey list": manager.list_api_keys. */
int ctl_cmd_apikey_list(Ctl *ctl, const CtlArgs *args) {
        (void) args;
        return ctl_call_and_print(ctl, "manager.list_api_keys", NULL, print_key_list, NULL);
}

/* Prints manager.revoke_api_key. */
static int print_key_revoked(Ctl *ctl, json_object *result, void *userdata) {
        (void) ctl;
        (void) fputs("Revoked API key ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "api_key_id") ?: userdata);
        (void) puts(".");
        return 0;
}

/* "avatarctl apikey revoke ID": manager.revoke_api_key. */
int ctl_cmd_apikey_revoke(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *id = args->pos[0];

        if (!ctl_is_uuid(id))
                return ctl_fail(CTL_EXIT_USAGE, args->command,
                                "expected an API key id (a UUID, see avatarctl apikey list), got '%s'", id);
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "api_key_id", json_object_new_string(id)) < 0)
                return ctl_fail_oom(args->command);
        return ctl_call_and_print(ctl, "manager.revoke_api_key", params, print_key_revoked, (void *) id);
}

/* ---- jobs --------------------------------------------------------------------------- */

/* The columns of a job list. */
static const OutputColumn job_columns[] = {
        { .header = "NAME", .key = "name" },
        { .header = "KIND", .key = "kind" },
        { .header = "STATUS", .key = "status", .status = true },
        { .header = "PROGRESS", .key = "progress", .align = OUTPUT_ALIGN_RIGHT,
          .format = output_format_progress },
        { .header = "CREATED", .key = "created_at", .format = output_format_time },
        { .header = "DISPLAY NAME", .key = "display_name", .format = output_format_dash },
};

/* Orders jobs newest first, then by name (the same order at every call). */
static int compare_jobs(const void *a, const void *b) {
        json_object *x = *(json_object * const *) a, *y = *(json_object * const *) b;
        double tx = 0, ty = 0;
        bool hx = output_parse_time(ctl_member_string(x, "created_at"), &tx) >= 0,
             hy = output_parse_time(ctl_member_string(y, "created_at"), &ty) >= 0;

        if (hx != hy)
                return hx ? -1 : 1;
        if (hx && tx < ty)
                return 1;
        if (hx && tx > ty)
                return -1;
        return strcmp(ctl_member_string(x, "name") ?: "", ctl_member_string(y, "name") ?: "");
}

/* Replaces *rows (an array of jobs) with a sorted copy. Returns 0 or -ENOMEM. */
static int sort_jobs(json_object **rows) {
        size_t i, n = json_object_array_length(*rows);
        _cleanup_free_ json_object **v = calloc(MAX(n, (size_t) 1), sizeof(json_object *));
        json_object *sorted;

        if (!v)
                return -ENOMEM;
        for (i = 0; i < n; i++)
                v[i] = json_object_array_get_idx(*rows, i);
        qsort(v, n, sizeof(json_object *), compare_jobs);
        sorted = json_object_new_array_ext((int) MIN(n, (size_t) INT32_MAX));
        if (!sorted)
                return -ENOMEM;
        for (i = 0; i < n; i++)
                if (json_object_array_add(sorted, json_object_get(v[i])) < 0) {
                        json_object_put(v[i]);
                        json_object_put(sorted);
                        return -ENOMEM;
                }
        json_object_put(*rows);
        *rows = sorted;
        return 0;
}

/* Prints manager.get_jobs ("jobs": [job]) or manager.get_last_jobs ("jobs": {name: job}) as
 * one table, newest first. */
static int print_jobs(Ctl *ctl, json_object *result, void *userdata) {
        _cleanup_(unref_jsonp) json_object *rows = NULL;
        json_object *jobs = ctl_member(result, "jobs");
        int r;

        (void) ctl;
        (void) userdata;
        if (json_object_is_type(jobs, json_type_array))
                rows = json_object_get(jobs);
        else if (json_object_is_type(jobs, json_type_object)) {
                rows = json_object_new_array();
                if (!rows)
                        return -ENOMEM;
                json_object_object_foreach(jobs, name, job) {
                        (void) name;
                        if (json_object_array_add(rows, json_object_get(job)) < 0) {
                                json_object_put(job);
                                return -ENOMEM;
                        }
                }
        } else
                return output_tree(stdout, result, 0);
        r = sort_jobs(&rows);
        if (r < 0)
                return r;

        if (json_object_array_length(rows) == 0)
                (void) puts("No jobs.");
        else {
                r = output_table(stdout, rows, job_columns, ELEMENTSOF(job_columns));
                if (r < 0)
                        return r;
        }
        print_stale_note(result);
        return 0;
}

/* Adds a --kind value to the array of kinds, once. Returns CTL_EXIT_OK or the exit code. */
static int add_kind(json_object *kinds, const char *kind) {
        size_t i;
        int code;

        code = ctl_check_choice("jobs", "--kind", kind, job_kinds, ELEMENTSOF(job_kinds));
        if (code != CTL_EXIT_OK)
                return code;
        for (i = 0; i < json_object_array_length(kinds); i++)
                if (streq(json_object_get_string(json_object_array_get_idx(kinds, i)), kind))
                        return CTL_EXIT_OK;
        if (json_object_array_add(kinds, json_object_new_string(kind)) < 0)
                return ctl_fail_oom("jobs");
        return CTL_EXIT_OK;
}

/* Builds the params of manager.get_jobs from the filter options, in *ret (NULL when there is
 * no filter). Returns CTL_EXIT_OK or the exit code. */
static int jobs_filter_params(Ctl *ctl, const CtlArgs *args, json_object **ret) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *kinds = NULL;
        _cleanup_free_ char *set_id = NULL;
        const char *name = ctl_opt(args, CTL_OPT_NAME), *set = ctl_opt(args, CTL_OPT_SET),
                   *limit = ctl_opt(args, CTL_OPT_LIMIT);
        size_t i;
        int code;

        params = json_object_new_object();
        kinds = json_object_new_array();
        if (!params || !kinds)
                return ctl_fail_oom(args->command);
        for (i = 0; i < args->n_opts; i++)
                if (args->opts[i].id == CTL_OPT_KIND) {
                        code = add_kind(kinds, args->opts[i].arg);
                        if (code != CTL_EXIT_OK)
                                return code;
                }
        if (name && set)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--name and --set exclude each other");
        if (name && isempty(name))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--name: the display name is empty");

        if (json_object_array_length(kinds) > 0 && ctl_add_member(params, "kind", TAKE_PTR(kinds)) < 0)
                return ctl_fail_oom(args->command);
        if (name && ctl_add_member(params, "display_name", json_object_new_string(name)) < 0)
                return ctl_fail_oom(args->command);
        code = ctl_add_int_param(args, params, "--limit", limit, "limit", 1, JOBS_COUNT_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (ctl_opt_given(args, CTL_OPT_INCLUDE_DELETED) &&
            ctl_add_member(params, "include_deleted", json_object_new_boolean(true)) < 0)
                return ctl_fail_oom(args->command);
        /* last: the run may have to be looked up, once the rest is known to be right */
        if (set) {
                code = ctl_resolve_set(ctl, args->command, set, &set_id);
                if (code != CTL_EXIT_OK)
                        return code;
                if (ctl_add_member(params, "set_name", json_object_new_string(set_id)) < 0)
                        return ctl_fail_oom(args->command);
        }

        *ret = json_object_object_length(params) > 0 ? TAKE_PTR(params) : NULL;
        return CTL_EXIT_OK;
}

/* "avatarctl jobs [--last N | FILTERS]": manager.get_last_jobs or manager.get_jobs. */
int ctl_cmd_jobs(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *last = ctl_opt(args, CTL_OPT_LAST);
        int code;

        if (!last) {
                code = jobs_filter_params(ctl, args, &params);
                if (code != CTL_EXIT_OK)
                        return code;
                return ctl_call_and_print(ctl, "manager.get_jobs", params, print_jobs, NULL);
        }

        if (ctl_opt_given(args, CTL_OPT_KIND) || ctl_opt_given(args, CTL_OPT_NAME) ||
            ctl_opt_given(args, CTL_OPT_SET) || ctl_opt_given(args, CTL_OPT_LIMIT) ||
            ctl_opt_given(args, CTL_OPT_INCLUDE_DELETED))
                return ctl_fail(CTL_EXIT_USAGE, args->command,
                                "--last takes no filter (--kind, --name, --set, --limit, --include-deleted)");
        params = json_object_new_object();
        if (!params)
                return ctl_fail_oom(args->command);
        code = ctl_add_int_param(args, params, "--last", last, "count", 1, JOBS_COUNT_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_call_and_print(ctl, "manager.get_last_jobs", params, print_jobs, NULL);
}

/* Prints manager.get_job. */
static int print_job(Ctl *ctl, json_object *result, void *userdata) {
        static const Field fields[] = {
                { "name", "Name", NULL },
                { "display_name", "Display name", output_format_dash },
                { "set_name", "Run id", NULL },
                { "kind", "Kind", NULL },
                { "parameters_name", "Parameters", NULL },
                { "status", "Status", NULL },
                { "progress", "Progress", output_format_progress },
                { "done", "Done", NULL },
                { "created_at", "Created", output_format_time },
                { "deleted_at", "Deleted", output_format_time },
                { "exception", "Exception", output_format_dash },
        };
        int r;

        (void) ctl;
        (void) userdata;
        r = print_fields(result, fields, ELEMENTSOF(fields), freshness_keys, ELEMENTSOF(freshness_keys));
        if (r < 0)
                return r;
        print_stale_note(result);
        return 0;
}

/* "avatarctl job NAME": manager.get_job. */
int ctl_cmd_job(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_free_ char *full = NULL;
        const char *name = args->pos[0];
        int code, r;

        if (isempty(name) || output_width(name) > JOB_NAME_MAX)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "expected a job name of 1 to %d characters",
                                JOB_NAME_MAX);
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "name", json_object_new_string(name)) < 0)
                return ctl_fail_oom(args->command);
        code = ctl_call_quiet(ctl, "manager.get_job", params, NULL, 0, ctl->timeout_ms, &result, &e, &r);
        if (code == CTL_EXIT_NOT_FOUND && r == -EREMOTEIO) {
                /* not a job's name: a prefix of one? */
                code = ctl_resolve_job(ctl, args->command, name, &full);
                if (code == CTL_EXIT_NOT_FOUND && !full) {
                        ctl_report_call_error(ctl, "manager.get_job", r, &e, ctl->timeout_ms);
                        return code;
                }
                if (code != CTL_EXIT_OK)
                        return code;
                json_object_object_del(params, "name");
                if (ctl_add_member(params, "name", json_object_new_string(full)) < 0)
                        return ctl_fail_oom(args->command);
                return ctl_call_and_print(ctl, "manager.get_job", params, print_job, NULL);
        }
        if (code != CTL_EXIT_OK) {
                ctl_report_call_error(ctl, "manager.get_job", r, &e, ctl->timeout_ms);
                return code;
        }
        return ctl_print_result(ctl, "manager.get_job", result, print_job, NULL);
}

/* ---- results ------------------------------------------------------------------------ */

/* output_format_fn for a row of manager.get_last_results: its result kinds with their
 * number of files ("shuffled 1, figures 3"), or why they are not available. */
static int format_result_kinds(json_object *row, char **ret) {
        json_object *error = ctl_member(row, "error"), *results = ctl_member(row, "results");
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        if (error) {
                const char *msg = json_object_is_type(error, json_type_object) ?
                                  ctl_member_string(error, "message") : json_object_get_string(error);
                const char *name = ctl_member_string(error, "name");

                (void) fprintf(f, "not available: %s", msg ?: "unknown error");
                if (name)
                        (void) fprintf(f, " (%s)", name);
        } else if (json_object_is_type(results, json_type_object) &&
                   json_object_object_length(results) > 0) {
                bool first = true;

                json_object_object_foreach(results, kind, files) {
                        size_t n = json_object_is_type(files, json_type_array) ?
                                   json_object_array_length(files) : files ? 1 : 0;

                        (void) fprintf(f, "%s%s %zu", first ? "" : ", ", kind, n);
                        first = false;
                }
        } else
                (void) fputs("none", f);
        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

/* Prints manager.get_last_results as a table. */
static int print_results(Ctl *ctl, json_object *result, void *userdata) {
        static const OutputColumn cols[] = {
                { .header = "JOB", .key = "job" },
                { .header = "KIND", .key = "kind" },
                { .header = "STATUS", .key = "status" },
                { .header = "RESULTS (KIND FILES)", .key = NULL, .format = format_result_kinds },
        };
        json_object *rows = ctl_member(result, "results");
        int r;

        (void) ctl;
        (void) userdata;
        if (!json_object_is_type(rows, json_type_array))
                return output_tree(stdout, result, 0);
        if (json_object_array_length(rows) == 0)
                (void) puts("No jobs.");
        else {
                r = output_table(stdout, rows, cols, ELEMENTSOF(cols));
                if (r < 0)
                        return r;
        }
        print_stale_note(result);
        return 0;
}

/* "avatarctl results [--last N]": manager.get_last_results. */
int ctl_cmd_results(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *last = ctl_opt(args, CTL_OPT_LAST);
        int code;

        if (last) {
                params = json_object_new_object();
                if (!params)
                        return ctl_fail_oom(args->command);
                code = ctl_add_int_param(args, params, "--last", last, "count", 1, RESULTS_COUNT_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        return ctl_call_and_print(ctl, "manager.get_last_results", params, print_results, NULL);
}

/* ---- runs --------------------------------------------------------------------------- */

/* output_format_fn: the number of jobs of a run. */
static int format_count(json_object *jobs, char **ret) {
        char buf[32];

        (void) snprintf(buf, sizeof(buf), "%zu",
                        json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0);
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

/* output_format_fn: the statuses of a run's jobs, most frequent first ("2 finished,
 * 1 pending"). */
static int format_statuses(json_object *jobs, char **ret) {
        _cleanup_(unref_jsonp) json_object *counts = NULL, *rows = NULL;
        _cleanup_free_ char *text = NULL;
        size_t i, n, len = 0;
        FILE *f;
        int r;

        counts = json_object_new_object();
        if (!counts)
                return -ENOMEM;
        n = json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0;
        for (i = 0; i < n; i++) {
                const char *status = ctl_member_string(json_object_array_get_idx(jobs, i), "status");
                json_object *c;

                if (isempty(status))
                        status = "-";
                if (json_object_object_get_ex(counts, status, &c))
                        (void) json_object_int_inc(c, 1);
                else if (ctl_add_member(counts, status, json_object_new_int64(1)) < 0)
                        return -ENOMEM;
        }
        r = output_map_to_rows(counts, "status", "count", &rows);
        if (r < 0)
                return r;

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);

                (void) fprintf(f, "%s%" PRId64 " %s", i > 0 ? ", " : "",
                               json_object_get_int64(ctl_member(row, "count")),
                               ctl_member_string(row, "status") ?: "-");
        }
        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

/* Prints manager.find_ids_by_name as a table of runs. */
static int print_runs(Ctl *ctl, json_object *result, void *userdata) {
        static const OutputColumn cols[] = {
                { .header = "RUN ID", .key = "set_name" },
                { .header = "NEWEST JOB", .key = "created_at", .format = output_format_time },
                { .header = "JOBS", .key = "jobs", .align = OUTPUT_ALIGN_RIGHT, .format = format_count },
                { .header = "STATUSES", .key = "jobs", .format = format_statuses },
        };
        json_object *runs = ctl_member(result, "runs");
        int r;

        (void) ctl;
        if (!json_object_is_type(runs, json_type_array))
                return output_tree(stdout, result, 0);
        if (json_object_array_length(runs) == 0) {
                (void) fputs("No runs named '", stdout);
                output_sanitized(stdout, userdata);
                (void) puts("'.");
        } else {
                r = output_table(stdout, runs, cols, ELEMENTSOF(cols));
                if (r < 0)
                        return r;
        }
        print_stale_note(result);
        return 0;
}

/* "avatarctl runs find NAME": manager.find_ids_by_name. */
int ctl_cmd_runs_find(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *name = args->pos[0];

        if (isempty(name))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the display name is empty");
        params = json_object_new_object();
        if (!params || ctl_add_member(params, "set_name", json_object_new_string(name)) < 0)
                return ctl_fail_oom(args->command);
        return ctl_call_and_print(ctl, "manager.find_ids_by_name", params, print_runs, (void *) name);
}

/* ---- deletion ----------------------------------------------------------------------- */

/* The error of the batch that failed with job `name` as a whole, or NULL. */
static json_object *batch_error_of(json_object *result, const char *name) {
        json_object *errors = ctl_member(result, "errors");

        for (size_t i = 0; i < json_array_len(errors); i++) {
                json_object *e = json_object_array_get_idx(errors, i), *names = ctl_member(e, "job_names");

                for (size_t k = 0; k < json_array_len(names); k++)
                        if (streq_ptr(json_object_get_string(json_object_array_get_idx(names, k)), name))
                                return e;
        }
        return NULL;
}

/* The exit code of a batch error. */
static int batch_exit_code(json_object *e) {
        AvatarClientError err = {
                .code = json_object_get_int(ctl_member(e, "code")),
                .name = (char *) ctl_member_string(e, "name"),
        };
        int code = ctl_exit_code(-EREMOTEIO, &err);

        return code == CTL_EXIT_OK ? CTL_EXIT_FAILED : code;
}

/* The exit code a deletion result calls for: none failed, 0; else the class of the first
 * failure: its batch's error class, or 6 (not found) for a job the server did not delete
 * on its own (the server lists the names it does not know there); a batch error without a
 * failed name counts too. */
static int deletion_exit_code(json_object *result) {
        json_object *failed = ctl_member(result, "failed_jobs"), *errors = ctl_member(result, "errors");

        if (json_array_len(failed) > 0) {
                json_object *e = batch_error_of(result, json_object_get_string(json_object_array_get_idx(failed, 0)));

                return e ? batch_exit_code(e) : CTL_EXIT_NOT_FOUND;
        }
        if (json_array_len(errors) > 0)
                return batch_exit_code(json_object_array_get_idx(errors, 0));
        return CTL_EXIT_OK;
}

/* Prints a Deletion for people: how many were deleted and failed, then each failed job with
 * its reason: the error of its batch, or that the server did not delete it. */
static int print_deletion(Ctl *ctl, json_object *result, void *userdata) {
        size_t i, n_deleted = ctl_member_length(result, "deleted_jobs"),
                  n_failed = ctl_member_length(result, "failed_jobs"), width = 0;
        json_object *failed = ctl_member(result, "failed_jobs");

        (void) ctl;
        (void) userdata;
        if (!json_object_is_type(ctl_member(result, "deleted_jobs"), json_type_array))
                return output_tree(stdout, result, 0);
        if (n_deleted == 0 && n_failed == 0) {
                (void) puts("No jobs to delete.");
                return 0;
        }
        (void) printf("Deleted %zu job%s, failed %zu.\n", n_deleted, n_deleted == 1 ? "" : "s", n_failed);
        if (n_failed == 0)
                return 0;
        for (i = 0; i < n_failed; i++)
                width = MAX(width, output_width(json_object_get_string(json_object_array_get_idx(failed, i))));
        (void) puts("Failed:");
        for (i = 0; i < n_failed; i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(failed, i));
                json_object *e = batch_error_of(result, name), *status = ctl_member(e, "status");

                (void) fputs("  ", stdout);
                output_padded(stdout, name ?: "?", width, OUTPUT_ALIGN_LEFT);
                (void) fputs("  ", stdout);
                if (!e) {
                        (void) puts("the server did not delete it: no such job, or not yours (not_found)");
                        continue;
                }
                output_sanitized(stdout, ctl_member_string(e, "message") ?: "failed");
                (void) fputs(" (", stdout);
                output_sanitized(stdout, ctl_member_string(e, "name") ?: "unknown");
                if (json_object_is_type(status, json_type_int))
                        (void) printf(", HTTP %" PRId64, json_object_get_int64(status));
                (void) puts(")");
        }
        return 0;
}

/* Prints a deletion result (JSON or summary) and returns the exit code it calls for. */
int ctl_finish_deletion(Ctl *ctl, const char *what, json_object *result) {
        int code;

        code = ctl_print_result(ctl, what, result, print_deletion, NULL);
        if (code != CTL_EXIT_OK)
                return code;
        return deletion_exit_code(result);
}

/* "avatarctl runs delete NAME | --id UUID": manager.delete_job or manager.delete_job_by_id. */
int ctl_cmd_runs_delete(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_free_ char *full = NULL, *question = NULL;
        const char *id = ctl_opt(args, CTL_OPT_ID), *name = args->n_pos > 0 ? args->pos[0] : NULL;
        const char *method;
        int code;

        if (!id == !name)
                return ctl_fail(CTL_EXIT_USAGE, args->command,
                                "give either a run's display name or --id RUN");
        if (id && isempty(id))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--id: the run id is empty");
        if (name && isempty(name))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "the display name is empty");
        if (id && !ctl_is_uuid(id)) {
                code = ctl_resolve_set(ctl, args->command, id, &full);
                if (code != CTL_EXIT_OK)
                        return code;
                id = full;
        }
        if (asprintf(&question, "Delete every job of the run %s%s%s", id ? "" : "named '", id ?: name,
                     id ? "" : "'") < 0)
                return ctl_fail_oom(args->command);
        code = ctl_confirm(ctl, args->command, ctl_opt_given(args, CTL_OPT_YES), question);
        if (code != CTL_EXIT_OK)
                return code;

        params = json_object_new_object();
        if (!params || ctl_add_member(params, id ? "id" : "name", json_object_new_string(id ?: name)) < 0)
                return ctl_fail_oom(args->command);
        method = id ? "manager.delete_job_by_id" : "manager.delete_job";
        code = ctl_call(ctl, method, params, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        return ctl_finish_deletion(ctl, method, result);
}

/* Adds the names of one "-" (stdin, one per line, blanks around a name and empty lines
 * ignored) to the array. Returns CTL_EXIT_OK or the exit code. */
static int add_names_from_stdin(const char *what, json_object *names) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *p, *line;
        int r;

        r = ctl_read_stdin((size_t) DELETE_NAMES_MAX * (JOB_NAME_MAX + 2), &text, &len);
        if (r == -EFBIG)
                return ctl_fail(CTL_EXIT_USAGE, what, "too many names on stdin (at most %d)", DELETE_NAMES_MAX);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, what, "cannot read stdin: %s", strerror(-r));
        if (memchr(text, '\0', len))
                return ctl_fail(CTL_EXIT_USAGE, what, "stdin holds a NUL byte; expected one name per line");

        for (p = text; (line = strsep(&p, "\n"));) {
                size_t l;

                line += strspn(line, " \t\r");
                l = strlen(line);
                while (l > 0 && strchr(" \t\r", line[l - 1]))
                        line[--l] = '\0';
                if (l == 0)
                        continue;
                if (json_object_array_add(names, json_object_new_string(line)) < 0)
                        return ctl_fail_oom(what);
        }
        return CTL_EXIT_OK;
}

/* Bytes a name takes in the params as json-c writes it (quotes, escapes and comma). */
static size_t name_cost(const char *s) {
        size_t n = 3;

        for (; *s; s++)
                n += *s == '"' || *s == '\\' ? 2 : (unsigned char) *s < 0x20 ? 6 : 1;
        return n;
}

/* Appends every element of array `from` to array `to` (taking new references). Returns 0 or
 * -ENOMEM. */
static int append_all(json_object *to, json_object *from) {
        size_t i;

        if (!json_object_is_type(to, json_type_array) || !json_object_is_type(from, json_type_array))
                return 0;
        for (i = 0; i < json_object_array_length(from); i++) {
                json_object *v = json_object_array_get_idx(from, i);

                if (json_object_array_add(to, json_object_get(v)) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        return 0;
}

/* Records, in the merged result, that names [start, n) were not deleted because a call failed:
 * they join failed_jobs, and errors gets an entry like the daemon's for a failed batch (the
 * daemon's error class, or "not_sent" when the call did not get an answer). Returns 0 or
 * -ENOMEM. */
static int record_unsent(json_object *merged, json_object *names, size_t start,
                         const AvatarClientError *e, int call_errno) {
        _cleanup_(unref_jsonp) json_object *entry = NULL, *list = NULL;
        size_t i, n = json_object_array_length(names);

        entry = json_object_new_object();
        list = json_object_new_array();
        if (!entry || !list)
                return -ENOMEM;
        for (i = start; i < n; i++) {
                json_object *v = json_object_array_get_idx(names, i);

                if (json_object_array_add(list, json_object_get(v)) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        if (append_all(ctl_member(merged, "failed_jobs"), list) < 0 ||
            ctl_add_member(entry, "job_names", TAKE_PTR(list)) < 0)
                return -ENOMEM;
        if (call_errno == -EREMOTEIO) {
                if (ctl_add_member(entry, "code", json_object_new_int(e->code)) < 0 ||
                    ctl_add_member(entry, "name", json_object_new_string(avatar_client_error_name(e))) < 0 ||
                    ctl_add_member(entry, "message", json_object_new_string(e->message ?: "failed")) < 0)
                        return -ENOMEM;
        } else if (ctl_add_member(entry, "name", json_object_new_string("not_sent")) < 0 ||
                   ctl_add_member(entry, "message", json_object_new_string(strerror(-call_errno))) < 0)
                return -ENOMEM;
        if (json_object_array_add(ctl_member(merged, "errors"), entry) < 0)
                return -ENOMEM;
        entry = NULL;
        return 0;
}

/* Calls manager.delete_jobs for all names. One call when they fit in DELETE_CALL_BYTES (the
 * daemon's result is then printed as it came); otherwise several calls of whole batches of
 * DELETE_BATCH names (so the daemon's batches upstream are the same as in one call), merged
 * into one result of the same shape. When a later call fails, its names and the rest count as
 * failed with that error, and no more calls are made. Returns the merged result in *ret, or
 * the exit code of a first call that failed (nothing was deleted then). */
static int delete_jobs_chunked(Ctl *ctl, json_object *names, json_object **ret, int *ret_code) {
        json_object *merged = NULL;
        size_t start = 0, n = json_object_array_length(names);

        *ret_code = CTL_EXIT_OK;
        while (start < n) {
                _cleanup_(avatar_client_error_done) AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
                _cleanup_(unref_jsonp) json_object *params = NULL, *chunk = NULL, *result = NULL;
                size_t end = start, bytes = 0, batch_end;
                int code, call_errno;

                /* Whole batches while they fit; always at least one. */
                do {
                        size_t b = 0, i;

                        batch_end = MIN(end + DELETE_BATCH, n);
                        for (i = end; i < batch_end; i++)
                                b += name_cost(json_object_get_string(json_object_array_get_idx(names, i)));
                        if (end > start && bytes + b > DELETE_CALL_BYTES)
                                break;
                        bytes += b;
                        end = batch_end;
                } while (end < n);

                params = json_object_new_object();
                chunk = json_object_new_array_ext((int) (end - start));
                if (!params || !chunk)
                        goto oom;
                for (size_t i = start; i < end; i++) {
                        json_object *v = json_object_array_get_idx(names, i);

                        if (json_object_array_add(chunk, json_object_get(v)) < 0) {
                                json_object_put(v);
                                goto oom;
                        }
                }
                if (ctl_add_member(params, "job_names", TAKE_PTR(chunk)) < 0)
                        goto oom;

                code = ctl_call_full(ctl, "manager.delete_jobs", params, NULL, 0, ctl->timeout_ms, &result, &e,
                                     &call_errno);
                if (code != CTL_EXIT_OK) {
                        if (!merged)
                                return code;
                        if (record_unsent(merged, names, start, &e, call_errno) < 0)
                                goto oom;
                        *ret_code = code;
                        break;
                }
                if (!merged) {
                        if (!json_object_is_type(ctl_member(result, "deleted_jobs"), json_type_array) ||
                            !json_object_is_type(ctl_member(result, "failed_jobs"), json_type_array) ||
                            !json_object_is_type(ctl_member(result, "errors"), json_type_array)) {
                                /* Not a Deletion: nothing to merge into; show it as it is. */
                                *ret = TAKE_PTR(result);
                                return CTL_EXIT_OK;
                        }
                        merged = TAKE_PTR(result);
                } else {
                        json_object *batches = ctl_member(merged, "batches");

                        if (append_all(ctl_member(merged, "deleted_jobs"), ctl_member(result, "deleted_jobs")) < 0 ||
                            append_all(ctl_member(merged, "failed_jobs"), ctl_member(result, "failed_jobs")) < 0 ||
                            append_all(ctl_member(merged, "errors"), ctl_member(result, "errors")) < 0)
                                goto oom;
                        if (json_object_is_type(batches, json_type_int))
                                (void) json_object_int_inc(batches, json_object_get_int64(ctl_member(result, "batches")));
                }
                start = end;
        }
        *ret = merged;
        return CTL_EXIT_OK;

oom:
        json_object_put(merged);
        return ctl_fail_oom("manager.delete_jobs");
}

/* "avatarctl jobs delete NAME...|-": manager.delete_jobs. */
int ctl_cmd_jobs_delete(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *names = NULL, *result = NULL;
        bool stdin_read = false;
        size_t i, n;
        int code, final;

        names = json_object_new_array();
        if (!names)
                return ctl_fail_oom(args->command);
        for (i = 0; i < (size_t) args->n_pos; i++) {
                if (streq(args->pos[i], "-")) {
                        if (stdin_read)
                                return ctl_fail(CTL_EXIT_USAGE, args->command, "- may be given only once");
                        stdin_read = true;
                        code = add_names_from_stdin(args->command, names);
                        if (code != CTL_EXIT_OK)
                                return code;
                } else if (json_object_array_add(names, json_object_new_string(args->pos[i])) < 0)
                        return ctl_fail_oom(args->command);
        }

        n = json_object_array_length(names);
        if (n == 0)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "no job names given");
        if (n > DELETE_NAMES_MAX)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "%zu names; at most %d at once", n,
                                DELETE_NAMES_MAX);
        for (i = 0; i < n; i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(names, i));

                if (isempty(name) || output_width(name) > JOB_NAME_MAX)
                        return ctl_fail(CTL_EXIT_USAGE, args->command,
                                        "expected job names of 1 to %d characters, got '%s'", JOB_NAME_MAX,
                                        name ?: "");
        }
        if (n > 1) {
                _cleanup_free_ char *question = NULL;

                if (asprintf(&question, "Delete %zu jobs (%s, %s%s)", n,
                             json_object_get_string(json_object_array_get_idx(names, 0)),
                             json_object_get_string(json_object_array_get_idx(names, 1)), n > 2 ? ", ..." : "") < 0)
                        return ctl_fail_oom(args->command);
                code = ctl_confirm(ctl, args->command, ctl_opt_given(args, CTL_OPT_YES), question);
                if (code != CTL_EXIT_OK)
                        return code;
        }

        code = delete_jobs_chunked(ctl, names, &result, &final);
        if (code != CTL_EXIT_OK)
                return code;
        code = ctl_finish_deletion(ctl, "manager.delete_jobs", result);
        return final != CTL_EXIT_OK ? final : code;
}
