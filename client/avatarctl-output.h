/* SPDX-License-Identifier: MIT */
/*
 * avatarctl output helpers: aligned tables of JSON rows, "Key: value" trees, durations, and
 * text sanitized for a terminal. Everything the daemon sends is untrusted text: control
 * characters are replaced before they reach the terminal.
 */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

typedef enum OutputAlign {
        OUTPUT_ALIGN_LEFT,
        OUTPUT_ALIGN_RIGHT,
} OutputAlign;

/* Turns a cell's value (borrowed, may be NULL) into malloc'd text. Returns 0 or -ENOMEM. */
typedef int (*output_format_fn)(json_object *v, char **ret);

typedef struct OutputColumn {
        const char *header;       /* printed on the first line */
        const char *key;          /* member of each row object; "a.b" descends; NULL: the row */
        OutputAlign align;
        output_format_fn format;  /* NULL: output_value_text() */
        bool status;              /* a state ("finished", "error"): coloured on a terminal */
} OutputColumn;

/* Colours (SGR) for text on a terminal. */
typedef enum OutputColor {
        OUTPUT_BOLD,
        OUTPUT_RED,
        OUTPUT_GREEN,
        OUTPUT_YELLOW,
        _OUTPUT_COLOR_MAX,
        _OUTPUT_COLOR_INVALID = -EINVAL,
} OutputColor;

/* Decides what the output may use: colour on stdout and on stderr when each is a terminal,
 * NO_COLOR is not set and TERM is not "dumb"; the width of tables: $COLUMNS, else the
 * terminal's width when stdout is one, else no limit. */
void output_setup(bool stdout_tty, bool stderr_tty);

/* The escape sequence that starts colour c on f ("" when f gets no colour), and the one
 * that ends it. */
const char *output_color_on(FILE *f, OutputColor c);
const char *output_color_off(FILE *f);

/* The colour of a state ("finished" green, "error" red, "pending" yellow), or
 * _OUTPUT_COLOR_INVALID for none. */
OutputColor output_status_color(const char *status);

/* The width tables fit in (0: no limit). */
size_t output_columns(void);

/* Prints a JSON value as YAML (block style; strings quoted when YAML would read them as
 * something else). Returns 0 or -ENOMEM. */
int output_yaml(FILE *f, json_object *o);

/* Prints, one per line, the scalars that `path` ("runners.runner_id": members separated by
 * dots; arrays and objects on the way are walked) reaches in o. Returns how many. */
size_t output_ids(FILE *f, json_object *o, const char *path);

/* Writes a time as ISO 8601 in local time: "2026-05-01T11:12:03+02:00" ("Z" for UTC). */
void output_time(time_t t, char *buf, size_t size);

/* Prints `rows` (borrowed array of objects) as a table: a header line, then one line per row,
 * columns separated by two spaces, the last column unpadded; cells cut with "…" so that a
 * line fits output_columns(). Returns 0, -EINVAL when rows is not an array, -ENOMEM. */
int output_table(FILE *f, json_object *rows, const OutputColumn *cols, size_t n_cols);

/* The text of a value for humans: strings as they are, null as "-", booleans as yes/no,
 * numbers as JSON writes them, objects and arrays as compact JSON. Returns 0 or -ENOMEM. */
int output_value_text(json_object *v, char **ret);

/* output_format_fn: a number of seconds as "3d 4h 5m 6s". */
int output_format_duration(json_object *v, char **ret);

/* output_format_fn: an ISO-8601 timestamp ("2026-05-01T09:12:03.12+00:00"; no offset means
 * UTC), or seconds since the epoch, as output_time() writes it; null as "-"; anything else as
 * it is. */
int output_format_time(json_object *v, char **ret);

/* output_format_fn: a job's progress as a percentage ("40%"). The Avatar server reports a
 * fraction from 0 to 1; a value above 1 is taken as a percentage already. null is "-". */
int output_format_progress(json_object *v, char **ret);

/* output_format_fn: like output_value_text(), with an empty string shown as "-". */
int output_format_dash(json_object *v, char **ret);

/* Parses an ISO-8601 timestamp (date, 'T' or ' ', time, optional fraction, optional 'Z' or
 * +hh:mm / +hhmm offset) into seconds since the epoch. Returns 0 or -EINVAL. */
int output_parse_time(const char *s, double *ret);

/* Writes "3d 4h 5m 6s" (largest units first, zero units skipped, "0s" for 0) into buf. */
void output_duration(uint64_t seconds, char *buf, size_t size);

/* Writes s to f with control characters (C0, DEL, and C1 as UTF-8) replaced by '?'. */
void output_sanitized(FILE *f, const char *s);

/* The number of terminal columns s takes, counting code points (no wide characters). */
size_t output_width(const char *s);

/* Writes s padded with spaces to `width` columns (left- or right-aligned); sanitized. */
void output_padded(FILE *f, const char *s, size_t width, OutputAlign align);

/* "max_frame_bytes" → "Max frame bytes" (malloc'd), or NULL on OOM. */
char *output_humanize_key(const char *key);

/* Prints an object as an indented "Key: value" tree; nested objects become sub-trees,
 * arrays of scalars are joined by ", ", other arrays are compact JSON. `indent` is in
 * spaces. Returns 0 or -ENOMEM. */
int output_tree(FILE *f, json_object *o, unsigned indent);

/* Converts a map {name: value} (borrowed) into a new array of {key_name: name,
 * value_name: value} rows, sorted by value descending (numbers) then by name. Returns 0,
 * -EINVAL when map is not an object, -ENOMEM. */
int output_map_to_rows(json_object *map, const char *key_name, const char *value_name,
                       json_object **ret);
