/* SPDX-License-Identifier: MIT */
/*
 * avatarctl commands about the daemon itself: status (daemon.status), ping (daemon.ping),
 * reload (daemon.reload), methods (rpc.discover) and call (any method, raw JSON).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "jsonrpc.h"
#include "protocol.h"

/* JSON nesting accepted in params typed by the user (deeper than the daemon accepts is
 * caught by the daemon, with a clearer message). */
#define CTL_PARAMS_DEPTH_MAX 128

/* Largest params text read from stdin: no daemon accepts a longer line. */
#define CTL_PARAMS_MAX PROTO_FRAME_MAX_MAX

/* Prints "Label:" padded to the status column, then the value's text. */
static int print_field(const char *label, json_object *v, output_format_fn format) {
        _cleanup_free_ char *t = NULL;
        int r;

        r = (format ?: output_value_text)(v, &t);
        if (r < 0)
                return r;
        output_padded(stdout, label, 13, OUTPUT_ALIGN_LEFT);
        output_sanitized(stdout, t);
        (void) putchar('\n');
        return 0;
}

/* Prints a {name: count} map under a label, largest counts first, or "none". */
static int print_counts(const char *label, json_object *map) {
        _cleanup_(unref_jsonp) json_object *rows = NULL;
        size_t i, n, width = 0, vwidth = 0;
        int r;

        if (!json_object_is_type(map, json_type_object))
                return print_field(label, map, NULL);
        if (json_object_object_length(map) == 0) {
                output_padded(stdout, label, 13, OUTPUT_ALIGN_LEFT);
                (void) puts("none");
                return 0;
        }

        r = output_map_to_rows(map, "name", "count", &rows);
        if (r < 0)
                return r;
        n = json_object_array_length(rows);
        for (i = 0; i < n; i++) {
                json_object *row = json_object_array_get_idx(rows, i), *k, *v;
                _cleanup_free_ char *t = NULL;

                (void) json_object_object_get_ex(row, "name", &k);
                (void) json_object_object_get_ex(row, "count", &v);
                r = output_value_text(v, &t);
                if (r < 0)
                        return r;
                width = MAX(width, output_width(json_object_get_string(k)));
                vwidth = MAX(vwidth, output_width(t));
        }

        (void) printf("%s\n", label);
        for (i = 0; i < n; i++) {
                json_object *row = json_object_array_get_idx(rows, i), *k, *v;
                _cleanup_free_ char *t = NULL;

                (void) json_object_object_get_ex(row, "name", &k);
                (void) json_object_object_get_ex(row, "count", &v);
                r = output_value_text(v, &t);
                if (r < 0)
                        return r;
                (void) fputs("  ", stdout);
                output_padded(stdout, json_object_get_string(k), width, OUTPUT_ALIGN_LEFT);
                (void) fputs("  ", stdout);
                output_padded(stdout, t, vwidth, OUTPUT_ALIGN_RIGHT);
                (void) putchar('\n');
        }
        return 0;
}

/* Prints an object under a label as an indented tree, or "none" when empty. */
static int print_section(const char *label, json_object *v) {
        if (!json_object_is_type(v, json_type_object))
                return print_field(label, v, NULL);
        if (json_object_object_length(v) == 0) {
                output_padded(stdout, label, 13, OUTPUT_ALIGN_LEFT);
                (void) puts("none");
                return 0;
        }
        (void) printf("%s\n", label);
        return output_tree(stdout, v, 2);
}

/* The daemon.status members printed in a fixed order; the rest follow as a generic tree,
 * so fields added by newer daemons show up without a new avatarctl. */
static const char *const status_known[] = {
        "version", "protocol_version", "pid", "uptime_s",
        "connections", "requests", "errors", "limits",
};

/* The sum of the numbers of a {name: count} map. */
static int64_t sum_counts(json_object *map) {
        int64_t n = 0;

        if (!json_object_is_type(map, json_type_object))
                return 0;
        json_object_object_foreach(map, k, v) {
                (void) k;
                if (json_object_is_type(v, json_type_int))
                        n += json_object_get_int64(v);
        }
        return n;
}

/* Prints "Label:" and the text of a memstream line, when there is text. */
static void print_line(const char *label, const char *text) {
        if (isempty(text))
                return;
        output_padded(stdout, label, 10, OUTPUT_ALIGN_LEFT);
        output_sanitized(stdout, text);
        (void) putchar('\n');
}

/* Prints the short status: one screen, what a person asks first. */
static int print_status_short(json_object *st) {
        json_object *up = ctl_member(st, "upstream"), *cred = ctl_member(up, "credential"),
                    *compat = ctl_member(up, "compatibility"), *v;
        char buf[512], dur[64] = "";
        int64_t requests = json_object_get_int64(ctl_member(st, "requests_total"));

        if (!ctl_member(st, "requests_total"))
                requests = sum_counts(ctl_member(st, "requests"));
        (void) snprintf(buf, sizeof(buf), "%s (protocol %" PRId64 ")", ctl_member_string(st, "version") ?: "?",
                        json_object_get_int64(ctl_member(st, "protocol_version")));
        print_line("Version:", buf);
        v = ctl_member(st, "uptime_s");
        if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))
                output_duration((uint64_t) MAX(json_object_get_double(v), 0.0), dur, sizeof(dur));
        (void) snprintf(buf, sizeof(buf), "pid %" PRId64 "%s%s", json_object_get_int64(ctl_member(st, "pid")),
                        *dur ? ", up " : "", dur);
        print_line("Daemon:", buf);
        if (up) {
                const char *url = ctl_member_string(up, "api_url") ?: ctl_member_string(up, "base_url");
                const char *cs = ctl_member_string(compat, "status"),
                           *breaker = ctl_member_string(up, "breaker") ?: ctl_member_string(up, "state"),
                           *proxy = ctl_member_string(ctl_member(up, "proxy"), "api");

                (void) snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s%s", url ?: "?", proxy ? " through the proxy " : "",
                                proxy ?: "", cs || breaker ? ": " : "", cs ?: "", cs && breaker ? ", " : "",
                                breaker ? "breaker " : "", breaker ?: "");
                print_line("Upstream:", buf);
        }
        if (cred) {
                const char *kind = ctl_member_string(cred, "kind"), *source = ctl_member_string(cred, "source");

                (void) snprintf(buf, sizeof(buf), "%s%s%s", kind ?: "?", source ? ", from " : "", source ?: "");
                print_line("API key:", buf);
        }
        (void) snprintf(buf, sizeof(buf), "%" PRId64 " served, %" PRId64 " failed; %" PRId64 " connection%s open",
                        requests, sum_counts(ctl_member(st, "errors")),
                        json_object_get_int64(ctl_member(ctl_member(st, "connections"), "current")),
                        json_object_get_int64(ctl_member(ctl_member(st, "connections"), "current")) == 1 ? "" : "s");
        print_line("Calls:", buf);
        v = ctl_member(ctl_member(st, "runners"), "runners");
        if (v) {
                json_object *unsaved = ctl_member(ctl_member(st, "runners"), "unsaved");
                size_t n = json_object_is_type(unsaved, json_type_array) ? json_object_array_length(unsaved) : 0;
                const char *err = ctl_member_string(ctl_member(st, "runners"), "last_save_error");

                (void) snprintf(buf, sizeof(buf), "%" PRId64 " held%s", json_object_get_int64(v),
                                n > 0 ? ", NOT SAVED:" : "");
                /* each id on its own: a long list is not cut by the buffer */
                output_padded(stdout, "Runners:", 10, OUTPUT_ALIGN_LEFT);
                output_sanitized(stdout, buf);
                for (size_t i = 0; i < n; i++) {
                        (void) fputs(i > 0 ? ", " : " ", stdout);
                        output_sanitized(stdout, json_object_get_string(json_object_array_get_idx(unsaved, i)) ?: "?");
                }
                if (n > 0) {
                        (void) snprintf(buf, sizeof(buf), " (%zu, %s; the daemon keeps trying to save %s)", n,
                                        err ?: "the state directory failed", n == 1 ? "it" : "them");
                        output_sanitized(stdout, buf);
                }
                (void) putchar('\n');
        }
        (void) puts("\nMore: avatarctl status --verbose");
        return 0;
}

/* Prints daemon.status for humans: short, or everything with --verbose (userdata). */
static int print_status(Ctl *ctl, json_object *st, void *userdata) {
        _cleanup_(unref_jsonp) json_object *rest = NULL;
        json_object *v;
        size_t i;
        int r;

        (void) ctl;
        if (!json_object_is_type(st, json_type_object))
                return output_tree(stdout, st, 0);
        if (!userdata)
                return print_status_short(st);

        if (json_object_object_get_ex(st, "version", &v) && (r = print_field("Version:", v, NULL)) < 0)
                return r;
        if (json_object_object_get_ex(st, "protocol_version", &v) &&
            (r = print_field("Protocol:", v, NULL)) < 0)
                return r;
        if (json_object_object_get_ex(st, "pid", &v) && (r = print_field("PID:", v, NULL)) < 0)
                return r;
        if (json_object_object_get_ex(st, "uptime_s", &v) &&
            (r = print_field("Uptime:", v, output_format_duration)) < 0)
                return r;
        if (json_object_object_get_ex(st, "connections", &v) &&
            (r = print_section("Connections:", v)) < 0)
                return r;
        if (json_object_object_get_ex(st, "requests", &v) && (r = print_counts("Requests:", v)) < 0)
                return r;
        if (json_object_object_get_ex(st, "errors", &v) && (r = print_counts("Errors:", v)) < 0)
                return r;
        if (json_object_object_get_ex(st, "limits", &v) && (r = print_section("Limits:", v)) < 0)
                return r;

        rest = json_object_new_object();
        if (!rest)
                return -ENOMEM;
        json_object_object_foreach(st, key, value) {
                bool known = false;

                for (i = 0; i < ELEMENTSOF(status_known); i++)
                        if (streq(key, status_known[i]))
                                known = true;
                if (known)
                        continue;
                if (json_object_object_add(rest, key, json_object_get(value)) < 0) {
                        json_object_put(value);
                        return -ENOMEM;
                }
        }
        return output_tree(stdout, rest, 0);
}

/* "avatarctl status [--verbose]": daemon.status, as a summary, in full, or as data. */
int ctl_cmd_status(Ctl *ctl, const CtlArgs *args) {
        static bool verbose = true;

        return ctl_call_and_print(ctl, "daemon.status", NULL, print_status,
                                  ctl_opt_given(args, CTL_OPT_VERBOSE) ? &verbose : NULL);
}

/* "avatarctl ping": daemon.ping and the round-trip time of the call (the connection is made
 * first, so that the time is the daemon's answer alone). */
int ctl_cmd_ping(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *result = NULL;
        struct timespec start, end;
        double ms;
        int code;

        (void) args;
        code = ctl_connect(ctl);
        if (code != CTL_EXIT_OK)
                return code;
        (void) clock_gettime(CLOCK_MONOTONIC, &start);
        code = ctl_call(ctl, "daemon.ping", NULL, NULL, 0, &result);
        if (code != CTL_EXIT_OK)
                return code;
        (void) clock_gettime(CLOCK_MONOTONIC, &end);
        ms = (double) (end.tv_sec - start.tv_sec) * 1e3 + (double) (end.tv_nsec - start.tv_nsec) / 1e6;

        if (ctl->json) {
                _cleanup_(unref_jsonp) json_object *o = json_object_new_object();

                if (!o || json_object_object_add(o, "reply", json_object_get(result)) < 0 ||
                    json_object_object_add(o, "time_ms", json_object_new_double(ms)) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "daemon.ping", "out of memory");
                ctl_print_json(ctl, o);
                return CTL_EXIT_OK;
        }
        output_sanitized(stdout, json_object_get_string(result) ?: "null");
        (void) fputs(" from ", stdout);
        output_sanitized(stdout, ctl_socket_path(ctl));
        (void) printf(": time=%.3f ms\n", ms);
        return CTL_EXIT_OK;
}

/* Prints daemon.reload's answer for humans. */
static int print_reload(Ctl *ctl, json_object *result, void *userdata) {
        json_object *v;

        (void) ctl;
        (void) userdata;
        (void) fputs("Configuration reloaded", stdout);
        if (json_object_object_get_ex(result, "config", &v) && json_object_is_type(v, json_type_string)) {
                (void) fputs(" from ", stdout);
                output_sanitized(stdout, json_object_get_string(v));
        }
        (void) fputc('\n', stdout);
        return 0;
}

/* "avatarctl reload": daemon.reload. */
int ctl_cmd_reload(Ctl *ctl, const CtlArgs *args) {
        (void) args;
        return ctl_call_and_print(ctl, "daemon.reload", NULL, print_reload, NULL);
}

/* Orders method objects by name. */
static int compare_methods(const void *a, const void *b) {
        json_object *x = *(json_object * const *) a, *y = *(json_object * const *) b;

        return strcmp(ctl_member_string(x, "name") ?: "", ctl_member_string(y, "name") ?: "");
}

/* Appends text to a malloc'd string, separated by sep when it is not empty. Returns 0 or
 * -ENOMEM (then *s is unchanged). */
static int strextend(char **s, const char *sep, const char *text) {
        size_t a = *s ? strlen(*s) : 0, b = strlen(sep), c = strlen(text);
        char *n;

        n = realloc(*s, a + (a > 0 ? b : 0) + c + 1);
        if (!n)
                return -ENOMEM;
        if (a > 0)
                memcpy(n + a, sep, b), a += b;
        memcpy(n + a, text, c + 1);
        *s = n;
        return 0;
}

/* A short type description of a JSON schema: "integer", "string|null", "Job[]",
 * "string(uuid)", a $ref's name. Returns 0 or -ENOMEM. */
static int schema_type(json_object *schema, unsigned depth, char **ret) {
        _cleanup_free_ char *t = NULL;
        json_object *v;
        const char *s;
        int r;

        if (depth > 8 || !json_object_is_type(schema, json_type_object))
                goto any;

        s = ctl_member_string(schema, "$ref");
        if (s) {
                const char *slash = strrchr(s, '/');

                t = strdup(slash ? slash + 1 : s);
                goto done;
        }

        if (json_object_object_get_ex(schema, "type", &v)) {
                if (json_object_is_type(v, json_type_array)) {
                        size_t i, n = json_object_array_length(v);

                        for (i = 0; i < n; i++) {
                                r = strextend(&t, "|", json_object_get_string(json_object_array_get_idx(v, i)) ?: "?");
                                if (r < 0)
                                        return r;
                        }
                } else if (streq_ptr(json_object_get_string(v), "array") &&
                           json_object_object_get_ex(schema, "items", &v)) {
                        _cleanup_free_ char *item = NULL;

                        r = schema_type(v, depth + 1, &item);
                        if (r < 0)
                                return r;
                        r = strextend(&t, "", item);
                        if (r < 0)
                                return r;
                        r = strextend(&t, "", "[]");
                        if (r < 0)
                                return r;
                } else
                        t = strdup(json_object_get_string(v) ?: "any");
                if (!t)
                        return -ENOMEM;
                s = ctl_member_string(schema, "format");
                if (s) {
                        r = strextend(&t, "", "(");
                        if (r >= 0)
                                r = strextend(&t, "", s);
                        if (r >= 0)
                                r = strextend(&t, "", ")");
                        if (r < 0)
                                return r;
                }
                goto done;
        }

        if ((json_object_object_get_ex(schema, "oneOf", &v) ||
             json_object_object_get_ex(schema, "anyOf", &v)) &&
            json_object_is_type(v, json_type_array)) {
                size_t i, n = json_object_array_length(v);

                for (i = 0; i < n; i++) {
                        _cleanup_free_ char *alt = NULL;

                        r = schema_type(json_object_array_get_idx(v, i), depth + 1, &alt);
                        if (r < 0)
                                return r;
                        r = strextend(&t, "|", alt);
                        if (r < 0)
                                return r;
                }
                goto done;
        }
        if (json_object_object_get_ex(schema, "enum", NULL))
                t = strdup("enum");
        else if (json_object_object_get_ex(schema, "const", NULL))
                t = strdup("const");

done:
        if (t) {
                *ret = TAKE_PTR(t);
                return 0;
        }
any:
        t = strdup("any");
        if (!t)
                return -ENOMEM;
        *ret = TAKE_PTR(t);
        return 0;
}

/* A param's description with its enum values and default appended. Returns 0 or -ENOMEM. */
static int param_description(json_object *param, json_object *schema, char **ret) {
        _cleanup_free_ char *d = NULL;
        const char *s;
        json_object *v;
        int r;

        s = ctl_member_string(param, "description") ?: ctl_member_string(param, "summary") ?:
            ctl_member_string(schema, "description");
        if (s) {
                r = strextend(&d, "", s);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(schema, "enum", &v) && json_object_is_type(v, json_type_array)) {
                _cleanup_free_ char *values = NULL;
                size_t i, n = json_object_array_length(v);

                for (i = 0; i < n; i++) {
                        _cleanup_free_ char *e = NULL;

                        r = output_value_text(json_object_array_get_idx(v, i), &e);
                        if (r < 0)
                                return r;
                        r = strextend(&values, ", ", e);
                        if (r < 0)
                                return r;
                }
                r = strextend(&d, "; ", "one of: ");
                if (r >= 0)
                        r = strextend(&d, "", values ?: "");
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(schema, "default", &v)) {
                _cleanup_free_ char *e = NULL;

                e = strdup(json_object_to_json_string_ext(v, JSONRPC_WIRE_FLAGS) ?: "null");
                if (!e)
                        return -ENOMEM;
                r = strextend(&d, "; ", "default: ");
                if (r >= 0)
                        r = strextend(&d, "", e);
                if (r < 0)
                        return r;
        }
        *ret = d ? TAKE_PTR(d) : strdup("");
        return *ret ? 0 : -ENOMEM;
}

/* Adds a string member to a row ("" for NULL); returns 0 or -ENOMEM. */
static int row_add(json_object *row, const char *key, const char *value) {
        return ctl_add_member(row, key, json_object_new_string(value ?: ""));
}

/* Follows a local "$ref" ("#/components/contentDescriptors/NAME") inside the document;
 * returns o itself when it is not a reference or the reference does not resolve. */
static json_object *resolve_ref(json_object *doc, json_object *o) {
        const char *ref = ctl_member_string(o, "$ref"), *p;
        json_object *cur = doc;
        char part[128];

        if (!ref || !(p = startswith(ref, "#/")))
                return o;
        while (*p) {
                size_t l = strcspn(p, "/");

                if (l >= sizeof(part))
                        return o;
                memcpy(part, p, l);
                part[l] = '\0';
                if (!json_object_object_get_ex(cur, part, &cur))
                        return o;
                p += l;
                if (*p == '/')
                        p++;
        }
        return json_object_is_type(cur, json_type_object) ? cur : o;
}

/* Prints one method of the OpenRPC document for humans. */
static int describe_method(json_object *doc, json_object *m) {
        _cleanup_(unref_jsonp) json_object *rows = NULL;
        static const OutputColumn cols[] = {
                { .header = "PARAM", .key = "name" },
                { .header = "TYPE", .key = "type" },
                { .header = "REQUIRED", .key = "required" },
                { .header = "DESCRIPTION", .key = "description" },
        };
        json_object *params = NULL, *result, *v;
        const char *s;
        size_t i, n;
        int r;

        output_sanitized(stdout, ctl_member_string(m, "name") ?: "?");
        (void) putchar('\n');
        s = ctl_member_string(m, "summary");
        if (s) {
                (void) fputs("  ", stdout);
                output_sanitized(stdout, s);
                (void) putchar('\n');
        }
        s = ctl_member_string(m, "description");
        if (s) {
                (void) fputs("  ", stdout);
                output_sanitized(stdout, s);
                (void) putchar('\n');
        }

        (void) json_object_object_get_ex(m, "params", &params);
        n = json_object_is_type(params, json_type_array) ? json_object_array_length(params) : 0;
        (void) putchar('\n');
        if (n == 0)
                (void) puts("Params: none");
        else {
                rows = json_object_new_array();
                if (!rows)
                        return -ENOMEM;
                for (i = 0; i < n; i++) {
                        _cleanup_free_ char *type = NULL, *desc = NULL;
                        json_object *p = resolve_ref(doc, json_object_array_get_idx(params, i));
                        json_object *schema = NULL;
                        json_object *row;
                        bool required = false;

                        (void) json_object_object_get_ex(p, "schema", &schema);
                        if (json_object_object_get_ex(p, "required", &v))
                                required = json_object_get_boolean(v);
                        r = schema_type(schema, 0, &type);
                        if (r < 0)
                                return r;
                        r = param_description(p, schema, &desc);
                        if (r < 0)
                                return r;

                        row = json_object_new_object();
                        if (!row || json_object_array_add(rows, row) < 0) {
                                json_object_put(row);
                                return -ENOMEM;
                        }
                        if (row_add(row, "name", ctl_member_string(p, "name") ?: "?") < 0 ||
                            row_add(row, "type", type) < 0 ||
                            row_add(row, "required", required ? "yes" : "no") < 0 ||
                            row_add(row, "description", desc) < 0)
                                return -ENOMEM;
                }
                r = output_table(stdout, rows, cols, ELEMENTSOF(cols));
                if (r < 0)
                        return r;
        }

        if (json_object_object_get_ex(m, "result", &result) &&
            json_object_is_type(result, json_type_object)) {
                result = resolve_ref(doc, result);
                _cleanup_free_ char *type = NULL;
                json_object *schema = NULL;

                (void) json_object_object_get_ex(result, "schema", &schema);
                r = schema_type(schema, 0, &type);
                if (r < 0)
                        return r;
                (void) fputs("\nResult: ", stdout);
                output_sanitized(stdout, ctl_member_string(result, "name") ?: "result");
                (void) fputs(" (", stdout);
                output_sanitized(stdout, type);
                (void) fputs(")", stdout);
                s = ctl_member_string(result, "description") ?: ctl_member_string(result, "summary");
                if (s) {
                        (void) fputs(": ", stdout);
                        output_sanitized(stdout, s);
                }
                (void) putchar('\n');
        }

        s = ctl_member_string(m, "x-avatard-role");
        if (s) {
                (void) fputs("Role: ", stdout);
                output_sanitized(stdout, s);
                (void) putchar('\n');
        }
        if (json_object_object_get_ex(m, "x-avatard-fds", &v) && json_object_get_boolean(v))
                (void) puts("Descriptors: accepted ({\"fd\": N} params; see avatarctl call --file)");
        return 0;
}

/* Builds the sorted [{name, summary}] list of the document's methods. */
static int method_rows(json_object *methods, json_object **ret) {
        _cleanup_free_ json_object **v = NULL;
        json_object *rows;
        size_t i, n = json_object_array_length(methods);

        v = calloc(MAX(n, (size_t) 1), sizeof(json_object *));
        if (!v)
                return -ENOMEM;
        for (i = 0; i < n; i++)
                v[i] = json_object_array_get_idx(methods, i);
        qsort(v, n, sizeof(json_object *), compare_methods);

        rows = json_object_new_array();
        if (!rows)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                json_object *row = json_object_new_object();

                if (!row || json_object_array_add(rows, row) < 0 ||
                    row_add(row, "name", ctl_member_string(v[i], "name") ?: "?") < 0 ||
                    row_add(row, "summary", ctl_member_string(v[i], "summary") ?: "") < 0) {
                        if (!row || json_object_array_length(rows) <= i)
                                json_object_put(row);
                        json_object_put(rows);
                        return -ENOMEM;
                }
        }
        *ret = rows;
        return 0;
}

/* "avatarctl methods [NAME]": rpc.discover, as a list, one method's details, or JSON. */
int ctl_cmd_methods(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *doc = NULL, *rows = NULL;
        static const OutputColumn cols[] = {
                { .header = "METHOD", .key = "name" },
                { .header = "SUMMARY", .key = "summary" },
        };
        json_object *methods = NULL;
        size_t i, n;
        int r;

        r = ctl_call(ctl, "rpc.discover", NULL, NULL, 0, &doc);
        if (r != CTL_EXIT_OK)
                return r;
        if (!json_object_object_get_ex(doc, "methods", &methods) ||
            !json_object_is_type(methods, json_type_array))
                return ctl_fail(CTL_EXIT_FAILED, "rpc.discover", "the reply has no methods list");
        n = json_object_array_length(methods);

        if (args->n_pos == 1) {
                for (i = 0; i < n; i++) {
                        json_object *m = json_object_array_get_idx(methods, i);

                        if (!streq_ptr(ctl_member_string(m, "name"), args->pos[0]))
                                continue;
                        if (ctl->json) {
                                ctl_print_json(ctl, m);
                                return CTL_EXIT_OK;
                        }
                        r = describe_method(doc, m);
                        if (r < 0)
                                return ctl_fail(CTL_EXIT_FAILED, "methods", "%s", strerror(-r));
                        return CTL_EXIT_OK;
                }
                return ctl_fail(CTL_EXIT_NOT_FOUND, "methods", "no method named '%s' (not_found)",
                                args->pos[0]);
        }

        r = method_rows(methods, &rows);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, "methods", "%s", strerror(-r));
        return ctl_print_rows(ctl, "methods", rows, cols, ELEMENTSOF(cols));
}

/* Descriptors opened for --file/--out, and the paths --out created (removed on failure). */
typedef struct CallFds {
        int fds[AVATAR_CLIENT_FDS_MAX];
        size_t n;
        const char *created[AVATAR_CLIENT_FDS_MAX];
        size_t n_created;
} CallFds;

/* Closes the descriptors; with `failed`, removes the files --out created. */
static void call_fds_done(CallFds *f, bool failed) {
        size_t i;

        for (i = 0; i < f->n; i++)
                f->fds[i] = safe_close(f->fds[i]);
        for (i = 0; failed && i < f->n_created; i++)
                (void) unlink(f->created[i]);
        f->n = f->n_created = 0;
}

/* Opens the files named by --file (read-only) and --out (created, or truncated), in order.
 * Returns CTL_EXIT_OK or prints the problem and returns CTL_EXIT_USAGE. */
static int call_open_fds(const CtlArgs *args, CallFds *f) {
        size_t i;

        for (i = 0; i < args->n_opts; i++) {
                const char *path = args->opts[i].arg;
                bool out = args->opts[i].id == CTL_OPT_COMMAND_BASE + 'o';
                int fd;

                if (f->n >= AVATAR_CLIENT_FDS_MAX)
                        return ctl_fail(CTL_EXIT_USAGE, "call", "at most %u descriptors per call",
                                        AVATAR_CLIENT_FDS_MAX);
                if (!out) {
                        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        if (fd < 0)
                                return ctl_fail(CTL_EXIT_USAGE, "call", "cannot open %s: %s", path,
                                                strerror(errno));
                        f->fds[f->n++] = fd;
                        continue;
                }

                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
                if (fd >= 0)
                        f->created[f->n_created++] = path;
                else if (errno == EEXIST)
                        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return ctl_fail(CTL_EXIT_USAGE, "call", "cannot create %s: %s", path,
                                        strerror(errno));
                f->fds[f->n++] = fd;
        }
        return CTL_EXIT_OK;
}

/* "avatarctl call METHOD [PARAMS|-]": any method with raw JSON params and descriptors. */
int ctl_cmd_call(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        _cleanup_free_ char *stdin_text = NULL;
        const char *method = args->pos[0], *text = NULL;
        CallFds f = {};
        size_t len = 0;
        int r;

        if (args->n_pos > 1) {
                text = args->pos[1];
                len = strlen(text);
                if (streq(text, "-")) {
                        r = ctl_read_stdin(CTL_PARAMS_MAX, &stdin_text, &len);
                        if (r == -EFBIG)
                                return ctl_fail(CTL_EXIT_USAGE, "call", "params on stdin exceed %u bytes",
                                                CTL_PARAMS_MAX);
                        if (r < 0)
                                return ctl_fail(CTL_EXIT_FAILED, "call", "cannot read stdin: %s",
                                                strerror(-r));
                        text = stdin_text;
                }
                r = json_parse_strict(text, len, CTL_PARAMS_DEPTH_MAX, &params);
                if (r == -ENOMEM)
                        return ctl_fail(CTL_EXIT_FAILED, "call", "%s", strerror(-r));
                if (r < 0)
                        return ctl_fail(CTL_EXIT_USAGE, "call", "params are not valid JSON");
                if (params && !json_object_is_type(params, json_type_object) &&
                    !json_object_is_type(params, json_type_array))
                        return ctl_fail(CTL_EXIT_USAGE, "call", "params must be a JSON object or array");
        }

        r = call_open_fds(args, &f);
        if (r != CTL_EXIT_OK) {
                call_fds_done(&f, true);
                return r;
        }

        r = ctl_call(ctl, method, params, f.fds, f.n, &result);
        call_fds_done(&f, r != CTL_EXIT_OK);
        if (r != CTL_EXIT_OK)
                return r;

        ctl_print_json(ctl, result);
        return CTL_EXIT_OK;
}
