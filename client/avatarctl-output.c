/* SPDX-License-Identifier: MIT */
/*
 * avatarctl output helpers: tables, trees, durations, sanitized text.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "avatarctl-output.h"
#include "jsonrpc.h"
#include "macro.h"

/* Widest a table column grows before its cells are cut (the last column is never cut). */
#define OUTPUT_COLUMN_WIDTH_MAX 60

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

/* Formats a timestamp as local time. */
int output_format_time(json_object *v, char **ret) {
        char buf[64];
        struct tm tm;
        double secs;
        time_t t;

        if (!json_object_is_type(v, json_type_string) ||
            output_parse_time(json_object_get_string(v), &secs) < 0)
                return output_format_dash(v, ret);
        t = (time_t) floor(secs);
        if (!localtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0)
                return output_format_dash(v, ret);
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

/* Cuts s in place to at most `width` code points, ending it with "..." when cut. */
static void truncate_cell(char *s, size_t width) {
        size_t n = 0;
        char *p;

        if (output_width(s) <= width || width < 4)
                return;
        for (p = s; *p; p++) {
                if ((*p & 0xc0) != 0x80) {
                        if (n == width - 3) {
                                strcpy(p, "...");
                                return;
                        }
                        n++;
                }
        }
}

/* Prints JSON rows as an aligned table. */
int output_table(FILE *f, json_object *rows, const OutputColumn *cols, size_t n_cols) {
        size_t widths[16] = {};
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
                widths[j] = output_width(cols[j].header);

        for (i = 0; i < n_rows; i++) {
                json_object *row = json_object_array_get_idx(rows, i);

                for (j = 0; j < n_cols; j++) {
                        json_object *v = cols[j].key ? lookup_path(row, cols[j].key) : row;
                        char **cell = &cells[i * n_cols + j];

                        r = (cols[j].format ?: output_value_text)(v, cell);
                        if (r < 0)
                                goto out;
                        if (j + 1 < n_cols)
                                truncate_cell(*cell, OUTPUT_COLUMN_WIDTH_MAX);
                        widths[j] = MAX(widths[j], output_width(*cell));
                }
        }

        for (j = 0; j < n_cols; j++) {
                output_padded(f, cols[j].header, j + 1 < n_cols ? widths[j] : 0,
                              j + 1 < n_cols ? cols[j].align : OUTPUT_ALIGN_LEFT);
                (void) fputs(j + 1 < n_cols ? "  " : "\n", f);
        }
        for (i = 0; i < n_rows; i++) {
                size_t end = n_cols;

                /* Empty trailing cells are left out, so no line ends in spaces. */
                while (end > 1 && isempty(cells[i * n_cols + end - 1]))
                        end--;
                for (j = 0; j < end; j++) {
                        bool last = j + 1 == end;

                        output_padded(f, cells[i * n_cols + j],
                                      last && cols[j].align == OUTPUT_ALIGN_LEFT ? 0 : widths[j],
                                      cols[j].align);
                        (void) fputs(last ? "\n" : "  ", f);
                }
        }

out:
        free_strv(cells, n_rows * n_cols);
        return r;
}

/* Turns a snake_case key into a label. */
char *output_humanize_key(const char *key) {
        char *s, *p;

        s = strdup(key);
        if (!s)
                return NULL;
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
