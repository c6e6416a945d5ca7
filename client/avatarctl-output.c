/* SPDX-License-Identifier: MIT */
/*
 * avatarctl output helpers: tables, trees, durations, sanitized text.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "avatarctl-output.h"
#include "jsonrpc.h"
#include "macro.h"

/* Widest terminal width taken from $COLUMNS. */
#define OUTPUT_COLUMNS_MAX 10000
/* The mark of a cut cell (one column wide). */
#define ELLIPSIS "\u2026"

/* What output_setup() decided. avatarctl is one thread; file scope is fine. */
static bool color_stdout, color_stderr;
static size_t table_columns;

/* Decides colour and table width. */
void output_setup(bool stdout_tty, bool stderr_tty) {
        const char *term = getenv("TERM"), *cols = getenv("COLUMNS");
        bool allowed = isempty(getenv("NO_COLOR")) && !streq_ptr(term, "dumb");
        struct winsize w = {};
        char *end = NULL;
        long n;

        color_stdout = allowed && stdout_tty;
        color_stderr = allowed && stderr_tty;
        table_columns = 0;
        if (!isempty(cols)) {
                errno = 0;
                n = strtol(cols, &end, 10);
                if (errno == 0 && end && *end == '\0' && n > 0 && n <= OUTPUT_COLUMNS_MAX) {
                        table_columns = (size_t) n;
                        return;
                }
        }
        if (stdout_tty)
                table_columns = ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) >= 0 && w.ws_col > 0 ? w.ws_col : 80;
}

/* The start of a colour on f, or "". */
const char *output_color_on(FILE *f, OutputColor c) {
        static const char *const sgr[_OUTPUT_COLOR_MAX] = {
                [OUTPUT_BOLD] = "\033[1m",
                [OUTPUT_RED] = "\033[31m",
                [OUTPUT_GREEN] = "\033[32m",
                [OUTPUT_YELLOW] = "\033[33m",
        };

        if (c < 0 || c >= _OUTPUT_COLOR_MAX || !((f == stdout && color_stdout) || (f == stderr && color_stderr)))
                return "";
        return sgr[c];
}

/* The end of a colour on f, or "". */
const char *output_color_off(FILE *f) {
        return (f == stdout && color_stdout) || (f == stderr && color_stderr) ? "\033[0m" : "";
}

/* The colour of a state. */
OutputColor output_status_color(const char *status) {
        static const char *const good[] = { "finished", "done", "compatible", "ok", "closed", "running" };
        static const char *const bad[] = { "error", "failed", "parent_error", "lost", "orphaned", "killed",
                                           "incompatible", "open" };
        size_t i;

        for (i = 0; status && i < ELEMENTSOF(bad); i++)
                if (streq(status, bad[i]))
                        return OUTPUT_RED;
        for (i = 0; status && i < ELEMENTSOF(good); i++)
                if (streq(status, good[i]))
                        return i == ELEMENTSOF(good) - 1 ? OUTPUT_YELLOW : OUTPUT_GREEN;
        if (isempty(status) || streq(status, "-"))
                return _OUTPUT_COLOR_INVALID;
        return OUTPUT_YELLOW; /* pending, queued, uploading, ...: under way */
}

/* The width tables fit in. */
size_t output_columns(void) {
        return table_columns;
}

/* Frees an array of n strings and the array. */
static void free_strv(char **v, size_t n) {
        size_t i;

        if (!v)
                return;
        for (i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Looks up "a.b.c" in an object; returns a borrowed value or NULL. */
static json_object *lookup_path(json_object *o, const char *path) {
        char part[128];

        while (path && *path) {
                const char *dot = strchr(path, '.');
                size_t l = dot ? (size_t) (dot - path) : strlen(path);

                if (l >= sizeof(part) || !json_object_is_type(o, json_type_object))
                        return NULL;
                memcpy(part, path, l);
                part[l] = '\0';
                if (!json_object_object_get_ex(o, part, &o))
                        return NULL;
                path = dot ? dot + 1 : NULL;
        }
        return o;
}

/* The text of a JSON value for humans. */
int output_value_text(json_object *v, char **ret) {
        const char *s;
        char *t;

        switch (json_object_get_type(v)) {
        case json_type_null:
                s = "-";
                break;
        case json_type_boolean:
                s = json_object_get_boolean(v) ? "yes" : "no";
                break;
        case json_type_string:
                s = json_object_get_string(v);
                break;
        default:
                s = json_object_to_json_string_ext(v, JSONRPC_WIRE_FLAGS);
                break;
        }
        t = strdup(s ? s : "");
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* Formats seconds as "1d 2h 3m 4s". */
void output_duration(uint64_t seconds, char *buf, size_t size) {
        static const struct {
                const char *suffix;
                uint64_t seconds;
        } units[] = {
                { "d", 86400 },
                { "h", 3600 },
                { "m", 60 },
                { "s", 1 },
        };
        size_t i, off = 0;

        if (size == 0)
                return;
        buf[0] = '\0';
        if (seconds == 0) {
                (void) snprintf(buf, size, "0s");
                return;
        }
        for (i = 0; i < ELEMENTSOF(units); i++) {
                uint64_t n = seconds / units[i].seconds;
                int k;

                if (n == 0)
                        continue;
                seconds %= units[i].seconds;
                k = snprintf(buf + off, size - off, "%s%" PRIu64 "%s", off > 0 ? " " : "", n,
                             units[i].suffix);
                if (k < 0 || (size_t) k >= size - off)
                        return;
                off += (size_t) k;
        }
}

/* Formats a JSON number of seconds as a duration. */
int output_format_duration(json_object *v, char **ret) {
        char buf[64];
        int64_t s;
        char *t;

        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return output_value_text(v, ret);
        s = json_object_get_int64(v);
        if (s < 0)
                return output_value_text(v, ret);
        output_duration((uint64_t) s, buf, sizeof(buf));
        t = strdup(buf);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* Returns a malloc'd copy of s in *ret; 0 or -ENOMEM. */
static int text_dup(const char *s, char **ret) {
        char *t = strdup(s);

        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* Parses an ISO-8601 timestamp into seconds since the epoch. */
int output_parse_time(const char *s, double *ret) {
        struct tm tm = {};
        const char *p;
        double frac = 0;
        long off = 0;
        time_t t;

        if (!s)
                return -EINVAL;
        p = strptime(s, "%Y-%m-%d", &tm);
        if (!p || (*p != 'T' && *p != 't' && *p != ' '))
                return -EINVAL;
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') {
                double scale = 0.1;

                for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                        frac += (*p - '0') * scale;
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1, hh, mm, n = 0;

                if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) == 2 && n == 5)
                        p += 6;
                else if (sscanf(p + 1, "%2d%2d%n", &hh, &mm, &n) == 2 && n == 4)
                        p += 5;
                else
                        return -EINVAL;
                off = sign * (hh * 3600L + mm * 60L);
        }
        if (*p != '\0')
                return -EINVAL;
        t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (double) t - (double) off + frac;
        return 0;
}

/* Writes a time as ISO 8601 in local time. */
void output_time(time_t t, char *buf, size_t size) {
        struct tm tm;
        size_t n;
        long off;

        if (!localtime_r(&t, &tm) || (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
                (void) snprintf(buf, size, "%lld", (long long) t);
                return;
        }
        off = tm.tm_gmtoff;
        if (off == 0)
                (void) snprintf(buf + n, size - n, "Z");
        else
                (void) snprintf(buf + n, size - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                                labs(off) % 3600 / 60);
}

/* Formats a timestamp (text, or seconds since the epoch) as local time. */
int output_format_time(json_object *v, char **ret) {
        char buf[64];
        double secs;

        if (json_object_is_type(v, json_type_int))
                secs = (double) json_object_get_int64(v);
        else if (!json_object_is_type(v, json_type_string) ||
                 output_parse_time(json_object_get_string(v), &secs) < 0)
                return output_format_dash(v, ret);
        output_time((time_t) floor(secs), buf, sizeof(buf));
        return text_dup(buf, ret);
}

/* Formats a progress fraction as a percentage. */
int output_format_progress(json_object *v, char **ret) {
        char buf[32];
        double d;

        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
                return output_value_text(v, ret);
        d = json_object_get_double(v);
        if (!isfinite(d) || d < 0)
                return output_value_text(v, ret);
        if (d <= 1.0)
                d *= 100.0;
        (void) snprintf(buf, sizeof(buf), "%.0f%%", MIN(d, 100.0));
        return text_dup(buf, ret);
}

/* The text of a value, "-" for an empty string. */
int output_format_dash(json_object *v, char **ret) {
        if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0)
                return text_dup("-", ret);
        return output_value_text(v, ret);
}

/* Writes text with control characters replaced. */
void output_sanitized(FILE *f, const char *s) {
        const unsigned char *p;

        for (p = (const unsigned char *) s; p && *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        (void) fputc('?', f);
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        (void) fputc('?', f); /* a C1 control character */
                        p++;
                } else
                        (void) fputc(*p, f);
        }
}

/* Counts the code points of a UTF-8 string. */
size_t output_width(const char *s) {
        const unsigned char *p;
        size_t n = 0;

        for (p = (const unsigned char *) s; p && *p; p++)
                if ((*p & 0xc0) != 0x80)
                        n++;
        return n;
}

/* Writes sanitized text padded to a width. */
void output_padded(FILE *f, const char *s, size_t width, OutputAlign align) {
        size_t w = output_width(s), i;

        if (align == OUTPUT_ALIGN_RIGHT)
                for (i = w; i < width; i++)
                        (void) fputc(' ', f);
        output_sanitized(f, s);
        if (align == OUTPUT_ALIGN_LEFT)
                for (i = w; i < width; i++)
                        (void) fputc(' ', f);
}

/* Cuts *s to at most `width` code points, ending it with "…" when cut. Returns 0 or
 * -ENOMEM. */
static int truncate_cell(char **s, size_t width) {
        size_t n = 0;
        char *p, *t;

        if (output_width(*s) <= width || width < 1)
                return 0;
        for (p = *s; *p; p++) {
                if ((*p & 0xc0) == 0x80)
                        continue;
                if (n++ < width - 1)
                        continue;
                t = malloc((size_t) (p - *s) + STRLEN(ELLIPSIS) + 1);
                if (!t)
                        return -ENOMEM;
                memcpy(t, *s, (size_t) (p - *s));
                memcpy(t + (p - *s), ELLIPSIS, STRLEN(ELLIPSIS) + 1);
                free(*s);
                *s = t;
                return 0;
        }
        return 0;
}

/* Narrows the columns (widths[], n) until a line fits `limit` (two spaces between columns),
 * widest first, none below min[] (its header's width). */
static void fit_columns(size_t *widths, const size_t *min, size_t n, size_t limit) {
        size_t total = 2 * (n - 1), j;

        for (j = 0; j < n; j++)
                total += widths[j];
        while (total > limit) {
                size_t widest = SIZE_MAX;

                for (j = 0; j < n; j++)
                        if (widths[j] > min[j] && (widest == SIZE_MAX || widths[j] > widths[widest]))
                                widest = j;
                if (widest == SIZE_MAX)
                        return;
                widths[widest]--;
                total--;
        }
}

/* Prints one cell padded to `width`; coloured by its state for a status column. */
static void print_cell(FILE *f, const OutputColumn *col, const char *text, size_t width, OutputAlign align) {
        OutputColor c = col->status ? output_status_color(text) : _OUTPUT_COLOR_INVALID;

        if (c >= 0)
                (void) fputs(output_color_on(f, c), f);
        output_padded(f, text, c >= 0 && align == OUTPUT_ALIGN_LEFT ? 0 : width, align);
        if (c >= 0) {
                (void) fputs(output_color_off(f), f);
                if (align == OUTPUT_ALIGN_LEFT)
                        for (size_t i = output_width(text); i < width; i++)
                                (void) fputc(' ', f);
        }
}

/* Prints JSON rows as an aligned table. */
int output_table(FILE *f, json_object *rows, const OutputColumn *cols, size_t n_cols) {
        size_t widths[16] = {}, min[16] = {};
        size_t n_rows, i, j;
        char **cells = NULL;
        int r = 0;

        if (!json_object_is_type(rows, json_type_array) || n_cols == 0 ||
            n_cols > ELEMENTSOF(widths))
                return -EINVAL;
        n_rows = json_object_array_length(rows);
        if (n_rows > SIZE_MAX / n_cols / sizeof(char *))
                return -ENOMEM;

        cells = calloc(MAX(n_rows * n_cols, (size_t) 1), sizeof(char *));
        if (!cells)
                return -ENOMEM;

        for (j = 0; j < n_cols; j++)
                widths[j] = min[j] = output_width(cols[j].header);

        for (i = 0; i < n_rows; i++) {
                json_object *row = json_object_array_get_idx(rows, i);

                for (j = 0; j < n_cols; j++) {
                        json_object *v = cols[j].key ? lookup_path(row, cols[j].key) : row;
                        char **cell = &cells[i * n_cols + j];

                        r = (cols[j].format ?: output_value_text)(v, cell);
                        if (r < 0)
                                goto out;
                        widths[j] = MAX(widths[j], output_width(*cell));
                }
        }
        for (j = 0; j < n_cols; j++)
                min[j] = MIN(min[j], widths[j]);
        if (output_columns() > 0 && f == stdout) {
                fit_columns(widths, min, n_cols, output_columns());
                for (i = 0; i < n_rows * n_cols; i++) {
                        r = truncate_cell(&cells[i], widths[i % n_cols]);
                        if (r < 0)
                                goto out;
                }
        }

        (void) fputs(output_color_on(f, OUTPUT_BOLD), f);
        for (j = 0; j < n_cols; j++) {
                output_padded(f, cols[j].header, j + 1 < n_cols ? widths[j] : 0,
                              j + 1 < n_cols ? cols[j].align : OUTPUT_ALIGN_LEFT);
                (void) fputs(j + 1 < n_cols ? "  " : "", f);
        }
        (void) fputs(output_color_off(f), f);
        (void) fputc('\n', f);
        for (i = 0; i < n_rows; i++) {
                size_t end = n_cols;

                /* Empty trailing cells are left out, so no line ends in spaces. */
                while (end > 1 && isempty(cells[i * n_cols + end - 1]))
                        end--;
                for (j = 0; j < end; j++) {
                        bool last = j + 1 == end;

                        print_cell(f, &cols[j], cells[i * n_cols + j],
                                   last && cols[j].align == OUTPUT_ALIGN_LEFT ? 0 : widths[j], cols[j].align);
                        (void) fputs(last ? "\n" : "  ", f);
                }
        }

out:
        free_strv(cells, n_rows * n_cols);
        return r;
}

/* Turns a snake_case key into a label; any other key (a route, a URL, a number) stays as it
 * is. */
char *output_humanize_key(const char *key) {
        char *s, *p;

        s = strdup(key);
        if (!s)
                return NULL;
        if (key[strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_")] != '\0' || !strpbrk(key, "abcdefghijklmnopqrstuvwxyz"))
                return s;
        for (p = s; *p; p++)
                if (*p == '_')
                        *p = ' ';
        if (s[0] >= 'a' && s[0] <= 'z')
                s[0] = (char) toupper((unsigned char) s[0]);
        return s;
}

/* True for an array whose members are all scalars (printed joined on one line). */
static bool is_scalar_array(json_object *v) {
        size_t i, n;

        if (!json_object_is_type(v, json_type_array))
                return false;
        n = json_object_array_length(v);
        for (i = 0; i < n; i++) {
                json_type t = json_object_get_type(json_object_array_get_idx(v, i));

                if (t == json_type_object || t == json_type_array)
                        return false;
        }
        return true;
}

/* Prints the scalars of an array joined by ", ". */
static int print_joined(FILE *f, json_object *v) {
        size_t i, n = json_object_array_length(v);

        if (n == 0)
                (void) fputs("-", f);
        for (i = 0; i < n; i++) {
                _cleanup_free_ char *t = NULL;
                int r;

                r = output_value_text(json_object_array_get_idx(v, i), &t);
                if (r < 0)
                        return r;
                if (i > 0)
                        (void) fputs(", ", f);
                output_sanitized(f, t);
        }
        return 0;
}

/* Prints an object as an indented "Key: value" tree. */
int output_tree(FILE *f, json_object *o, unsigned indent) {
        size_t width = 0;
        int r;

        if (!json_object_is_type(o, json_type_object)) {
                _cleanup_free_ char *t = NULL;

                r = output_value_text(o, &t);
                if (r < 0)
                        return r;
                (void) fprintf(f, "%*s", (int) indent, "");
                output_sanitized(f, t);
                (void) fputc('\n', f);
                return 0;
        }

        json_object_object_foreach(o, k0, v0) {
                (void) v0;
                width = MAX(width, output_width(k0) + 1);
        }

        json_object_object_foreach(o, key, v) {
                _cleanup_free_ char *label = NULL;

                label = output_humanize_key(key);
                if (!label)
                        return -ENOMEM;
                if (!endswith(label, ":") && strlen(label) < SIZE_MAX - 2) {
                        char *l2 = malloc(strlen(label) + 2);

                        if (!l2)
                                return -ENOMEM;
                        strcpy(l2, label);
                        strcat(l2, ":");
                        free(label);
                        label = l2;
                }

                (void) fprintf(f, "%*s", (int) indent, "");
                if (json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0) {
                        output_sanitized(f, label);
                        (void) fputc('\n', f);
                        r = output_tree(f, v, indent + 2);
                        if (r < 0)
                                return r;
                        continue;
                }

                output_padded(f, label, width, OUTPUT_ALIGN_LEFT);
                (void) fputc(' ', f);
                if (json_object_is_type(v, json_type_object))
                        (void) fputs("-", f);
                else if (is_scalar_array(v)) {
                        r = print_joined(f, v);
                        if (r < 0)
                                return r;
                } else {
                        _cleanup_free_ char *t = NULL;

                        r = output_value_text(v, &t);
                        if (r < 0)
                                return r;
                        output_sanitized(f, t);
                }
                (void) fputc('\n', f);
        }
        return 0;
}

/* Orders rows by "value" descending when both are numbers, then by "key". */
static int compare_rows(const void *a, const void *b, void *userdata) {
        json_object *ra = *(json_object * const *) a, *rb = *(json_object * const *) b;
        const char *const *names = userdata;
        json_object *ka = NULL, *kb = NULL, *va = NULL, *vb = NULL;

        (void) json_object_object_get_ex(ra, names[0], &ka);
        (void) json_object_object_get_ex(rb, names[0], &kb);
        (void) json_object_object_get_ex(ra, names[1], &va);
        (void) json_object_object_get_ex(rb, names[1], &vb);

        if (json_object_is_type(va, json_type_int) && json_object_is_type(vb, json_type_int)) {
                int64_t x = json_object_get_int64(va), y = json_object_get_int64(vb);

                if (x != y)
                        return x > y ? -1 : 1;
        }
        return strcmp(json_object_get_string(ka) ?: "", json_object_get_string(kb) ?: "");
}

/* Turns a {name: value} map into sorted rows. */
int output_map_to_rows(json_object *map, const char *key_name, const char *value_name,
                       json_object **ret) {
        const char *names[2] = { key_name, value_name };
        json_object *rows, **v;
        size_t i, n;

        if (!json_object_is_type(map, json_type_object))
                return -EINVAL;

        n = (size_t) json_object_object_length(map);
        v = calloc(MAX(n, (size_t) 1), sizeof(json_object *));
        if (!v)
                return -ENOMEM;

        i = 0;
        json_object_object_foreach(map, key, value) {
                json_object *row = json_object_new_object(), *k = json_object_new_string(key);

                if (!row || !k || json_object_object_add(row, key_name, k) < 0) {
                        json_object_put(k);
                        json_object_put(row);
                        goto oom;
                }
                if (json_object_object_add(row, value_name, json_object_get(value)) < 0) {
                        json_object_put(value);
                        json_object_put(row);
                        goto oom;
                }
                v[i++] = row;
        }

        qsort_r(v, i, sizeof(json_object *), compare_rows, names);

        rows = json_object_new_array_ext((int) MIN(i, (size_t) INT32_MAX));
        if (!rows)
                goto oom;
        for (n = 0; n < i; n++) {
                if (json_object_array_add(rows, v[n]) < 0) {
                        json_object_put(rows);
                        goto oom;
                }
                v[n] = NULL;
        }
        free(v);
        *ret = rows;
        return 0;

oom:
        for (n = 0; n < i; n++)
                json_object_put(v[n]);
        free(v);
        return -ENOMEM;
}

/* ---- YAML and ids ------------------------------------------------------------------- */

/* Whether a string can be written as a plain YAML scalar and read back as the same string:
 * not empty, no leading or trailing space, no character with a meaning in YAML, and not a
 * word YAML reads as a number, a boolean or null. */
static bool yaml_plain(const char *s) {
        static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "null", "~",
                                             "True", "False", "Yes", "No", "On", "Off", "Null", "NULL",
                                             "TRUE", "FALSE", "YES", "NO", "ON", "OFF", "y", "n", "Y", "N" };
        const unsigned char *p;
        char *end = NULL;

        if (isempty(s) || s[0] == ' ' || endswith(s, " ") || strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
                return false;
        if (strstr(s, ": ") || strstr(s, " #") || endswith(s, ":"))
                return false;
        for (p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (streq(s, words[i]))
                        return false;
        (void) strtod(s, &end);
        return !(end && *end == '\0') && !startswith(s, ".inf") && !startswith(s, ".nan");
}

/* Writes a scalar: plain when it can be, else as a JSON string (which YAML reads). */
static void yaml_scalar(FILE *f, json_object *v) {
        const char *s;

        if (json_object_is_type(v, json_type_string)) {
                s = json_object_get_string(v);
                if (yaml_plain(s))
                        (void) fputs(s, f);
                else
                        (void) fputs(json_object_to_json_string_ext(v, JSONRPC_WIRE_FLAGS), f);
                return;
        }
        s = v ? json_object_to_json_string_ext(v, JSONRPC_WIRE_FLAGS) : "null";
        (void) fputs(s ?: "null", f);
}

/* Whether a value is written on its key's line ("k: v", "k: []", "k: {}"). */
static bool yaml_inline(json_object *v) {
        return !(json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0) &&
               !(json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0);
}

/* Writes a key. */
static void yaml_key(FILE *f, const char *key) {
        json_object *k = json_object_new_string(key);

        yaml_scalar(f, k);
        json_object_put(k);
        (void) fputc(':', f);
}

/* Writes v at `indent`; `first_done` when the first line's indentation is already written
 * (after "- "). */
static void yaml_value(FILE *f, json_object *v, unsigned indent, bool first_done, unsigned depth) {
        bool first = true;

        if (depth > 64 || yaml_inline(v)) {
                if (json_object_is_type(v, json_type_object))
                        (void) fputs("{}", f);
                else if (json_object_is_type(v, json_type_array))
                        (void) fputs("[]", f);
                else
                        yaml_scalar(f, v);
                (void) fputc('\n', f);
                return;
        }
        if (json_object_is_type(v, json_type_object)) {
                json_object_object_foreach(v, key, m) {
                        if (!(first && first_done))
                                (void) fprintf(f, "%*s", (int) indent, "");
                        first = false;
                        yaml_key(f, key);
                        if (yaml_inline(m)) {
                                (void) fputc(' ', f);
                                yaml_value(f, m, indent + 2, false, depth + 1);
                        } else {
                                (void) fputc('\n', f);
                                yaml_value(f, m, json_object_is_type(m, json_type_array) ? indent : indent + 2, false,
                                           depth + 1);
                        }
                }
                return;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                if (!(first && first_done))
                        (void) fprintf(f, "%*s", (int) indent, "");
                first = false;
                (void) fputs("- ", f);
                yaml_value(f, json_object_array_get_idx(v, i), indent + 2, true, depth + 1);
        }
}

/* Prints a JSON value as YAML. */
int output_yaml(FILE *f, json_object *o) {
        yaml_value(f, o, 0, false, 0);
        return 0;
}

/* Prints the scalars `path` reaches. */
size_t output_ids(FILE *f, json_object *o, const char *path) {
        size_t n = 0;

        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        n += output_ids(f, json_object_array_get_idx(o, i), path);
                return n;
        }
        if (isempty(path)) {
                _cleanup_free_ char *t = NULL;

                if (!o || json_object_is_type(o, json_type_object) || output_value_text(o, &t) < 0)
                        return 0;
                output_sanitized(f, t);
                (void) fputc('\n', f);
                return 1;
        }
        if (!json_object_is_type(o, json_type_object))
                return 0;
        {
                const char *dot = strchr(path, '.');
                size_t l = dot ? (size_t) (dot - path) : strlen(path);
                _cleanup_free_ char *key = strndup(path, l);
                json_object *m = NULL;

                if (!key)
                        return 0;
                if (json_object_object_get_ex(o, key, &m))
                        return output_ids(f, m, dot ? dot + 1 : "");
                /* a map of objects on the way ("jobs" of get_last_jobs: {name: job}) */
                json_object_object_foreach(o, k, v) {
                        (void) k;
                        if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, key, NULL))
                                n += output_ids(f, v, path);
                }
                return n;
        }
}
