/* SPDX-License-Identifier: MIT */
/*
 * The Avatar resource YAML ⇄ JSON documents (see resource-yaml.h).
 *
 * Parsing runs libyaml's event API and builds the json-c tree as the events arrive, so every
 * limit is enforced before the work it bounds is done: the text size before the parser
 * starts, then the nesting depth, the node count (every scalar, key included, and every
 * collection) and the document count event by event. An empty document (nothing, or a null
 * such as "--- ~") is skipped, though its null still counts as a node. The tree being built
 * hangs off the document root; a small fixed stack of frames holds borrowed pointers to the
 * open collections and the key each mapping is waiting to pair with a value.
 *
 * Scalar resolution (YAML 1.2 core schema):
 *   plain, untagged    null: "", ~, null, Null, NULL     bool: true/True/TRUE, false/...
 *                      int: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+
 *                      float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 *                      .inf, .nan and their spellings: refused (JSON has no such numbers)
 *                      anything else: string
 *   quoted or block    string
 *   "!" (non-specific) string
 *   !!str              string;  !!null, !!bool, !!int, !!float: the value must have that
 *                      type's form (!!float also takes a decimal integer); other tags refused
 * Integers cover [INT64_MIN, UINT64_MAX] (json-c stores the upper half as uint64); a literal
 * beyond that is an error ("integer out of range") rather than a silently rounded double or
 * a string, since either would change what the author wrote. Floats are doubles; "1.0"
 * stays a double and is written back as 1.0.
 *
 * Emitting runs libyaml's emitter event by event: block style, two-space indentation,
 * unlimited width, unicode, the first document implicit and every later one after "---";
 * empty collections are written in flow style ([] and {}), the only form YAML has for them.
 * A string is written plain unless a reader would take it for something else: everything
 * the core schema resolves to null, bool, int or float, and also what YAML 1.1 readers such
 * as PyYAML (on the Python side of the Avatar API) resolve as non-strings (yes/no/on/off/y/n,
 * 1_000, 12:30, 0b101, 2024-01-01, "<<", "=") is quoted. libyaml picks single or double
 * quotes, and quotes on its own what it cannot write plain ("- x", " padded "). Multi-line
 * strings are literal blocks ("|") where libyaml can write them so, else double-quoted;
 * libyaml escapes what it deems unprintable (tabs, control characters, and characters beyond
 * U+FFFF as \U........). Numbers are written so they read back identically: integers in
 * decimal, doubles in the shortest form that round-trips, always with a '.' (1.0, 0.1,
 * 1.0e+16) so they stay floats.
 *
 * parse(emit(x)) equals x for every x emit accepts, because emit refuses (-E2BIG) what parse
 * would refuse (depth, nodes, documents, size); emit(parse(text)) is therefore a fixed point.
 *
 * Numbers are converted under a private "C" LC_NUMERIC (uselocale), whatever the process
 * locale is. Pure code: no I/O, no logging.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "jsonrpc.h"
#include "macro.h"
#include "resource-yaml.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define TAG_STR TAG_PREFIX "str"
#define TAG_NULL TAG_PREFIX "null"
#define TAG_BOOL TAG_PREFIX "bool"
#define TAG_INT TAG_PREFIX "int"
#define TAG_FLOAT TAG_PREFIX "float"
#define TAG_SEQ TAG_PREFIX "seq"
#define TAG_MAP TAG_PREFIX "map"

/* How much of a key or tag an error message quotes. */
#define SHORT_MAX 64
#define SHORT_BUF (SHORT_MAX + 4)
#define TAG_BUF (SHORT_BUF + 2)

/* Room for any double format_double() writes: sign, 17 digits, "0.000" or an exponent. */
#define DOUBLE_BUF 40

/* What a scalar resolves to. */
typedef enum ScalarKind {
        SCALAR_STR,
        SCALAR_NULL,
        SCALAR_BOOL,
        SCALAR_INT,
        SCALAR_FLOAT,
        SCALAR_NONFINITE, /* .inf, .nan: a float JSON cannot carry */
} ScalarKind;

/* An open collection while parsing. */
typedef struct Frame {
        json_object *node; /* borrowed: owned by its parent, or by Parse.doc for the root */
        bool mapping;
        char *key;         /* mappings: the key waiting for its value (owned), else NULL */
} Frame;

/* The state of one resource_yaml_parse() call. */
typedef struct Parse {
        json_object *docs; /* owned: the array of documents read so far */
        json_object *doc;  /* owned: the root of the document being read, or NULL */
        Frame frames[RESOURCE_YAML_MAX_DEPTH];
        unsigned depth;    /* open collections: frames[0..depth) */
        size_t n_nodes;
        char **ret_error;
} Parse;

/* The emitter's output: a growing NUL-terminated buffer, capped at the parse limit. */
typedef struct Output {
        char *data;
        size_t len;
        size_t cap;
        int error; /* -E2BIG or -ENOMEM when the writer refused */
} Output;

/* The state of one resource_yaml_emit() call. */
typedef struct Emit {
        yaml_emitter_t emitter;
        Output out;
        size_t n_nodes;
} Emit;

/* A "C" LC_NUMERIC installed for this thread, and what to restore. */
typedef struct CLocale {
        locale_t c;
        locale_t saved;
} CLocale;

/* Installs a "C" numeric locale for the calling thread, so strtod() and printf() use '.'. */
static int c_locale_enter(CLocale *l) {
        l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
        if (!l->c)
                return -ENOMEM;
        l->saved = uselocale(l->c);
        return 0;
}

/* Restores the thread's previous locale (for _cleanup_; a CLocale never entered is zero). */
static void c_locale_leave(CLocale *l) {
        if (!l->c)
                return;
        (void) uselocale(l->saved);
        freelocale(l->c);
        l->c = (locale_t) 0;
}

/* Stores a formatted one-line description in *ret_error (when wanted) and returns r. */
_printf_(3, 4)
static int set_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        char *s;
        int n;

        if (!ret_error)
                return r;

        va_start(ap, format);
        n = vsnprintf(NULL, 0, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;

        s = malloc((size_t) n + 1);
        if (!s)
                return -ENOMEM;
        va_start(ap, format);
        (void) vsnprintf(s, (size_t) n + 1, format, ap);
        va_end(ap);

        free(*ret_error);
        *ret_error = s;
        return r;
}

/* Copies at most SHORT_MAX bytes of s into buf for an error message, whole UTF-8 characters
 * only, control characters and stray bytes as '?', with "..." when cut. Returns buf. */
static const char *shorten(const char *s, size_t n, char buf[static SHORT_BUF]) {
        size_t i = 0, k = 0;

        while (i < n) {
                unsigned char c = (unsigned char) s[i];
                size_t w = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 :
                           c >= 0xf0 && c < 0xf5 ? 4 : 0;

                if (w > n - i)
                        w = 0;
                if (k + MAX(w, (size_t) 1) > SHORT_MAX)
                        break;
                if (w == 0 || c < 0x20 || c == 0x7f) {
                        buf[k++] = '?';
                        i++;
                        continue;
                }
                memcpy(buf + k, s + i, w);
                k += w;
                i += w;
        }
        if (i < n) {
                memcpy(buf + k, "...", 3);
                k += 3;
        }
        buf[k] = '\0';
        return buf;
}

/* A tag as a message shows it: "!!binary" for the standard ones, else as written. */
static const char *shorten_tag(const char *tag, char buf[static TAG_BUF]) {
        const char *suffix = startswith(tag, TAG_PREFIX);

        if (!suffix)
                return shorten(tag, strlen(tag), buf);
        buf[0] = buf[1] = '!';
        (void) shorten(suffix, strlen(suffix), buf + 2);
        return buf;
}

/* Whether s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, surrogates or > U+10FFFF). */
static bool utf8_valid(const char *s, size_t n) {
        for (size_t i = 0, l; i < n; i += l) {
                l = utf8_sequence_len((const unsigned char *) s + i, n - i);
                if (l == 0)
                        return false;
        }
        return true;
}

/* Whether s[0..n) is exactly one of the NULL-terminated words. */
static bool is_word(const char *s, size_t n, const char *const *words) {
        for (; *words; words++)
                if (strlen(*words) == n && memcmp(*words, s, n) == 0)
                        return true;
        return false;
}

static const char *const null_words[] = { "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "true", "True", "TRUE", NULL };
static const char *const false_words[] = { "false", "False", "FALSE", NULL };
static const char *const nonfinite_words[] = {
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
        ".nan", ".NaN", ".NAN", NULL,
};
/* YAML 1.1 booleans and the merge and value keys: plain strings in 1.2, not to PyYAML. */
static const char *const yaml11_words[] = {
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "on", "On", "ON", "off", "Off", "OFF", "<<", "=", NULL,
};

/* Whether c is a digit of the given base (8, 10 or 16). */
static bool is_digit_of(char c, unsigned base) {
        if (c >= '0' && c <= '7')
                return true;
        if (c == '8' || c == '9')
                return base >= 10;
        return base == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

/* Advances *i over digits of base 10 in s[0..n); returns how many. */
static size_t skip_digits(const char *s, size_t n, size_t *i) {
        size_t start = *i;

        while (*i < n && is_digit_of(s[*i], 10))
                (*i)++;
        return *i - start;
}

/* Whether s[0..n) is nonempty and only digits of base. */
static bool all_digits(const char *s, size_t n, unsigned base) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_digit_of(s[i], base))
                        return false;
        return true;
}

/* The core schema's integer forms: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+. */
static bool is_core_int(const char *s, size_t n) {
        if (n > 2 && s[0] == '0' && s[1] == 'o')
                return all_digits(s + 2, n - 2, 8);
        if (n > 2 && s[0] == '0' && s[1] == 'x')
                return all_digits(s + 2, n - 2, 16);
        if (n > 0 && (s[0] == '-' || s[0] == '+'))
                return all_digits(s + 1, n - 1, 10);
        return all_digits(s, n, 10);
}

/* The core schema's float form: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 * (which a decimal integer matches too). */
static bool is_core_float(const char *s, size_t n) {
        size_t i = 0;

        if (i < n && (s[i] == '-' || s[i] == '+'))
                i++;
        if (i < n && s[i] == '.') {
                i++;
                if (skip_digits(s, n, &i) == 0)
                        return false;
        } else {
                if (skip_digits(s, n, &i) == 0)
                        return false;
                if (i < n && s[i] == '.') {
                        i++;
                        (void) skip_digits(s, n, &i);
                }
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '-' || s[i] == '+'))
                        i++;
                if (skip_digits(s, n, &i) == 0)
                        return false;
        }
        return i == n;
}

/* How the core schema resolves a plain, untagged scalar. */
static ScalarKind classify_plain(const char *s, size_t n) {
        if (n == 0 || is_word(s, n, null_words))
                return SCALAR_NULL;
        if (is_word(s, n, true_words) || is_word(s, n, false_words))
                return SCALAR_BOOL;
        if (is_core_int(s, n))
                return SCALAR_INT;
        if (is_core_float(s, n))
                return SCALAR_FLOAT;
        if (is_word(s, n, nonfinite_words))
                return SCALAR_NONFINITE;
        return SCALAR_STR;
}

/* Whether a YAML 1.1 reader might take s[0..n) for a number: a loose superset of its int
 * (binary, octal, decimal, hex, sexagesimal, with '_') and float forms. "1.29.0" is not. */
static bool is_yaml11_number(const char *s, size_t n) {
        size_t i = 0, digits = 0, dots = 0;

        if (i < n && (s[i] == '-' || s[i] == '+'))
                i++;
        if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'b' || s[i + 1] == 'x')) {
                for (i += 2; i < n; i++)
                        if (!is_digit_of(s[i], 16) && s[i] != '_')
                                return false;
                return true;
        }
        for (; i < n; i++) {
                if (is_digit_of(s[i], 10))
                        digits++;
                else if (s[i] == '.') {
                        if (++dots > 1)
                                return false;
                } else if ((s[i] == 'e' || s[i] == 'E') && dots == 1) {
                        i++;
                        if (i < n && (s[i] == '-' || s[i] == '+'))
                                i++;
                        return digits > 0 && all_digits(s + i, n - i, 10);
                } else if (s[i] != '_' && s[i] != ':')
                        return false;
        }
        return digits > 0;
}

/* Whether a YAML 1.1 reader might take s[0..n) for a timestamp (it starts "dddd-"). */
static bool is_yaml11_timestamp(const char *s, size_t n) {
        return n >= 5 && all_digits(s, 4, 10) && s[4] == '-';
}

/* Whether a string must be quoted to read back as a string, in YAML 1.2 and in YAML 1.1. */
static bool string_needs_quotes(const char *s, size_t n) {
        return classify_plain(s, n) != SCALAR_STR ||
               is_word(s, n, yaml11_words) ||
               is_yaml11_number(s, n) ||
               is_yaml11_timestamp(s, n);
}

/* Reads an integer in one of the core forms into a new JSON int; -ERANGE beyond
 * [INT64_MIN, UINT64_MAX]. */
static int parse_integer(const char *s, size_t n, json_object **ret) {
        unsigned base = 10;
        bool negative = false;
        uint64_t v = 0;
        json_object *o;

        if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
                base = s[1] == 'o' ? 8 : 16;
                s += 2;
                n -= 2;
        } else if (n > 0 && (s[0] == '-' || s[0] == '+')) {
                negative = s[0] == '-';
                s++;
                n--;
        }

        for (size_t i = 0; i < n; i++) {
                unsigned d = s[i] <= '9' ? (unsigned) (s[i] - '0') :
                             (unsigned) ((s[i] | 0x20) - 'a' + 10);

                if (v > (UINT64_MAX - d) / base)
                        return -ERANGE;
                v = v * base + d;
        }

        if (negative) {
                if (v > (uint64_t) INT64_MAX + 1)
                        return -ERANGE;
                o = json_object_new_int64(v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v);
        } else if (v > (uint64_t) INT64_MAX)
                o = json_object_new_uint64(v);
        else
                o = json_object_new_int64((int64_t) v);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* Reads a float in the core form into a new JSON double; -ERANGE when it overflows (an
 * underflow reads as zero or a subnormal, the nearest double). */
static int parse_float(const char *s, size_t n, json_object **ret) {
        _cleanup_free_ char *copy = NULL;
        json_object *o;
        char *end;
        double v;

        /* The value is NUL-terminated by libyaml, but copy it so strtod() cannot read past
         * the n bytes that were checked. */
        copy = strndup(s, n);
        if (!copy)
                return -ENOMEM;
        v = strtod(copy, &end);
        if (end != copy + n)
                return -EINVAL;
        if (!isfinite(v))
                return -ERANGE;

        o = json_object_new_double(v);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* Resolves a scalar event to a kind: the tag when there is one, else the core schema for
 * plain scalars and string for quoted and block ones. An unknown tag, or a value without
 * the form its tag asks for, is an error. */
static int resolve_scalar(Parse *p, const yaml_event_t *e, size_t line, ScalarKind *ret) {
        const char *tag = (const char *) e->data.scalar.tag;
        const char *s = (const char *) e->data.scalar.value;
        size_t n = e->data.scalar.length;
        char buf[SHORT_BUF], tbuf[TAG_BUF];
        ScalarKind k;

        if (!tag) {
                *ret = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? classify_plain(s, n) :
                                                                         SCALAR_STR;
                return 0;
        }
        if (streq(tag, "!") || streq(tag, TAG_STR)) {
                *ret = SCALAR_STR;
                return 0;
        }

        k = classify_plain(s, n);
        if (streq(tag, TAG_NULL) && k == SCALAR_NULL)
                *ret = SCALAR_NULL;
        else if (streq(tag, TAG_BOOL) && k == SCALAR_BOOL)
                *ret = SCALAR_BOOL;
        else if (streq(tag, TAG_INT) && k == SCALAR_INT)
                *ret = SCALAR_INT;
        else if (streq(tag, TAG_FLOAT) && is_core_float(s, n))
                *ret = SCALAR_FLOAT;
        else if (streq(tag, TAG_FLOAT) && k == SCALAR_NONFINITE)
                *ret = SCALAR_NONFINITE;
        else if (streq(tag, TAG_NULL) || streq(tag, TAG_BOOL) || streq(tag, TAG_INT) ||
                 streq(tag, TAG_FLOAT))
                return set_error(p->ret_error, -EINVAL, "line %zu: '%s' is not a valid %s", line,
                                 shorten(s, n, buf), shorten_tag(tag, tbuf));
        else
                return set_error(p->ret_error, -EINVAL, "line %zu: unsupported tag '%s'", line,
                                 shorten_tag(tag, tbuf));
        return 0;
}

/* Builds the JSON value of a resolved scalar (NULL for null) into *ret. */
static int scalar_value(Parse *p, const yaml_event_t *e, ScalarKind k, size_t line,
                        json_object **ret) {
        const char *s = (const char *) e->data.scalar.value;
        size_t n = e->data.scalar.length;
        char buf[SHORT_BUF];
        int r;

        switch (k) {
        case SCALAR_NULL:
                *ret = NULL;
                return 0;
        case SCALAR_BOOL:
                *ret = json_object_new_boolean(s[0] == 't' || s[0] == 'T');
                return *ret ? 0 : -ENOMEM;
        case SCALAR_INT:
                r = parse_integer(s, n, ret);
                if (r == -ERANGE)
                        return set_error(p->ret_error, -EINVAL, "line %zu: integer out of range: %s",
                                         line, shorten(s, n, buf));
                return r;
        case SCALAR_FLOAT:
                r = parse_float(s, n, ret);
                if (r == -ERANGE)
                        return set_error(p->ret_error, -EINVAL, "line %zu: float out of range: %s",
                                         line, shorten(s, n, buf));
                if (r == -EINVAL)
                        return set_error(p->ret_error, -EINVAL, "line %zu: invalid float: %s",
                                         line, shorten(s, n, buf));
                return r;
        case SCALAR_NONFINITE:
                return set_error(p->ret_error, -EINVAL,
                                 "line %zu: %s cannot be represented (JSON has no infinity or NaN)",
                                 line, shorten(s, n, buf));
        case SCALAR_STR:
                break;
        }

        *ret = json_object_new_string_len(s, (int) n);
        return *ret ? 0 : -ENOMEM;
}

/* Counts a node against the limit and refuses an anchor on it. */
static int count_node(Parse *p, const yaml_char_t *anchor, size_t line) {
        char buf[SHORT_BUF];

        if (anchor)
                return set_error(p->ret_error, -EINVAL,
                                 "line %zu: anchors and aliases are not supported (&%s)", line,
                                 shorten((const char *) anchor, strlen((const char *) anchor), buf));
        if (++p->n_nodes > RESOURCE_YAML_MAX_NODES)
                return set_error(p->ret_error, -E2BIG, "line %zu: more than %u nodes", line,
                                 (unsigned) RESOURCE_YAML_MAX_NODES);
        return 0;
}

/* Adds a value (taken, may be NULL for null) to the innermost open collection: appended to
 * a sequence, or paired with the key a mapping holds. */
static int add_value(Parse *p, json_object *v) {
        Frame *f = &p->frames[p->depth - 1];

        if (!f->mapping) {
                if (json_object_array_add(f->node, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
                return 0;
        }

        assert(f->key);
        if (json_object_object_add(f->node, f->key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        f->key = mfree(f->key);
        return 0;
}

/* Takes a scalar as the next key of the innermost mapping: it must resolve to a string
 * without NUL, not yet present in that mapping. */
static int take_key(Parse *p, const yaml_event_t *e, ScalarKind k, size_t line) {
        Frame *f = &p->frames[p->depth - 1];
        const char *s = (const char *) e->data.scalar.value;
        size_t n = e->data.scalar.length;
        char buf[SHORT_BUF];

        if (k != SCALAR_STR)
                return set_error(p->ret_error, -EINVAL, "line %zu: key '%s' is not a string", line,
                                 shorten(s, n, buf));
        if (memchr(s, '\0', n))
                return set_error(p->ret_error, -EINVAL, "line %zu: key '%s' holds a NUL character",
                                 line, shorten(s, n, buf));
        if (json_object_object_get_ex(f->node, s, NULL))
                return set_error(p->ret_error, -EINVAL, "line %zu: duplicate key '%s'", line,
                                 shorten(s, n, buf));

        f->key = strndup(s, n);
        return f->key ? 0 : -ENOMEM;
}

/* Handles a scalar event: a key, a value, or a whole (empty or invalid) document. */
static int on_scalar(Parse *p, const yaml_event_t *e, size_t line) {
        json_object *v = NULL;
        ScalarKind k = SCALAR_STR;
        int r;

        r = count_node(p, e->data.scalar.anchor, line);
        if (r < 0)
                return r;
        r = resolve_scalar(p, e, line, &k);
        if (r < 0)
                return r;

        if (p->depth == 0) {
                /* An empty document ("---" with nothing after it) reads as a null scalar. */
                if (k == SCALAR_NULL)
                        return 0;
                return set_error(p->ret_error, -EINVAL,
                                 "line %zu: a resource document must be a mapping", line);
        }

        if (p->frames[p->depth - 1].mapping && !p->frames[p->depth - 1].key)
                return take_key(p, e, k, line);

        r = scalar_value(p, e, k, line, &v);
        if (r < 0)
                return r;
        return add_value(p, v);
}

/* Handles the start of a sequence or mapping: checks the limits, its tag and its place, and
 * opens a frame for it. */
static int on_collection_start(Parse *p, const yaml_event_t *e, size_t line) {
        bool mapping = e->type == YAML_MAPPING_START_EVENT;
        const char *tag = (const char *) (mapping ? e->data.mapping_start.tag :
                                                    e->data.sequence_start.tag);
        char tbuf[TAG_BUF];
        json_object *node;
        int r;

        r = count_node(p, mapping ? e->data.mapping_start.anchor : e->data.sequence_start.anchor,
                       line);
        if (r < 0)
                return r;
        if (tag && !streq(tag, "!") && !streq(tag, mapping ? TAG_MAP : TAG_SEQ))
                return set_error(p->ret_error, -EINVAL, "line %zu: unsupported tag '%s'", line,
                                 shorten_tag(tag, tbuf));

        if (p->depth == 0) {
                if (!mapping)
                        return set_error(p->ret_error, -EINVAL,
                                         "line %zu: a resource document must be a mapping", line);
                if (json_object_array_length(p->docs) >= RESOURCE_YAML_MAX_DOCUMENTS)
                        return set_error(p->ret_error, -E2BIG, "line %zu: more than %u documents",
                                         line, (unsigned) RESOURCE_YAML_MAX_DOCUMENTS);
                assert(!p->doc);
                p->doc = json_object_new_object();
                if (!p->doc)
                        return -ENOMEM;
                p->frames[p->depth++] = (Frame) { .node = p->doc, .mapping = true };
                return 0;
        }

        if (p->frames[p->depth - 1].mapping && !p->frames[p->depth - 1].key)
                return set_error(p->ret_error, -EINVAL,
                                 "line %zu: a key must be a scalar, not a %s", line,
                                 mapping ? "mapping" : "sequence");
        if (p->depth >= RESOURCE_YAML_MAX_DEPTH)
                return set_error(p->ret_error, -E2BIG, "line %zu: nested deeper than %u levels",
                                 line, (unsigned) RESOURCE_YAML_MAX_DEPTH);

        node = mapping ? json_object_new_object() : json_object_new_array();
        if (!node)
                return -ENOMEM;
        r = add_value(p, node); /* the parent owns it now; the frame borrows it */
        if (r < 0)
                return r;
        p->frames[p->depth++] = (Frame) { .node = node, .mapping = mapping };
        return 0;
}

/* Handles the end of a sequence or mapping; the end of a root appends the document. */
static int on_collection_end(Parse *p) {
        assert(p->depth > 0);
        assert(!p->frames[p->depth - 1].key);

        if (--p->depth > 0)
                return 0;
        if (json_object_array_add(p->docs, p->doc) < 0)
                return -ENOMEM;
        p->doc = NULL;
        return 0;
}

/* Feeds one parser event into the tree. */
static int on_event(Parse *p, const yaml_event_t *e) {
        size_t line = e->start_mark.line + 1;
        char buf[SHORT_BUF];

        switch (e->type) {
        case YAML_SCALAR_EVENT:
                return on_scalar(p, e, line);
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                return on_collection_start(p, e, line);
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                return on_collection_end(p);
        case YAML_ALIAS_EVENT:
                return set_error(p->ret_error, -EINVAL,
                                 "line %zu: anchors and aliases are not supported (*%s)", line,
                                 shorten((const char *) e->data.alias.anchor,
                                         strlen((const char *) e->data.alias.anchor), buf));
        default:
                return 0;
        }
}

/* Releases what a Parse still owns (for _cleanup_). */
static void parse_done(Parse *p) {
        for (unsigned i = 0; i < p->depth; i++)
                free(p->frames[i].key);
        json_object_put(p->doc);
        json_object_put(p->docs);
}

/* The 1-based line holding byte `offset` of the text. */
static size_t line_at(const char *text, size_t len, size_t offset) {
        size_t line = 1;

        for (size_t i = 0; i < MIN(offset, len); i++)
                if (text[i] == '\n')
                        line++;
        return line;
}

/* Turns a libyaml parser failure into -ENOMEM or -EINVAL with a description. */
static int parser_error(const yaml_parser_t *parser, const char *text, size_t len,
                        char **ret_error) {
        size_t line;

        if (parser->error == YAML_MEMORY_ERROR)
                return -ENOMEM;

        /* The reader (encoding and character checks) has an offset, the others a mark. */
        if (parser->error == YAML_READER_ERROR)
                line = line_at(text, len, parser->problem_offset);
        else
                line = parser->problem_mark.line + 1;

        if (parser->context)
                return set_error(ret_error, -EINVAL, "line %zu: %s (%s at line %zu)", line,
                                 strna(parser->problem), parser->context,
                                 parser->context_mark.line + 1);
        return set_error(ret_error, -EINVAL, "line %zu: %s", line, strna(parser->problem));
}

/* Parses YAML text into a JSON array of document objects; see resource-yaml.h. */
int resource_yaml_parse(const char *text, size_t len, json_object **ret_docs, char **ret_error) {
        _cleanup_(c_locale_leave) CLocale loc = {};
        _cleanup_(yaml_parser_delete) yaml_parser_t parser = {};
        _cleanup_(parse_done) Parse p = { .ret_error = ret_error };
        bool done = false;
        int r;

        assert_return(text || len == 0, -EINVAL);
        assert_return(ret_docs, -EINVAL);

        if (ret_error)
                *ret_error = NULL;
        if (len > RESOURCE_YAML_MAX_BYTES)
                return set_error(ret_error, -E2BIG, "the text is %zu bytes, more than the %u allowed",
                                 len, (unsigned) RESOURCE_YAML_MAX_BYTES);

        p.docs = json_object_new_array();
        if (!p.docs)
                return -ENOMEM;
        r = c_locale_enter(&loc);
        if (r < 0)
                return r;
        /* yaml_parser_delete() (the cleanup) is safe on a zeroed or half-initialized parser. */
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) (text ?: ""), len);
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

        while (!done) {
                _cleanup_(yaml_event_delete) yaml_event_t event = {};

                if (!yaml_parser_parse(&parser, &event))
                        return parser_error(&parser, text ?: "", len, ret_error);
                done = event.type == YAML_STREAM_END_EVENT;
                r = on_event(&p, &event);
                if (r < 0)
                        return r;
        }

        assert(p.depth == 0 && !p.doc);
        *ret_docs = TAKE_PTR(p.docs);
        return 0;
}

/* Whether two doubles are the same number (no NaN here; -0.0 and 0.0 compare equal). */
static bool same_double(double a, double b) {
        return !(a < b) && !(a > b);
}

/* Writes a finite double as the shortest text that reads back as the same double, in the
 * shape Python's repr() uses: fixed notation for exponents -4..15 (0.0001, 1.5, 1.0), else
 * d.ddde±XX (1.0e+16, 1.5e-07), always with a '.' so YAML reads it as a float. */
static void format_double(double v, char buf[static DOUBLE_BUF]) {
        char tmp[DOUBLE_BUF], digits[20];
        size_t n = 0, k = 0;
        const char *c;
        int exp10;

        /* 17 significant digits always round-trip; usually far fewer do. */
        for (int prec = 0; prec <= 16; prec++) {
                (void) snprintf(tmp, sizeof tmp, "%.*e", prec, v);
                if (same_double(strtod(tmp, NULL), v))
                        break;
        }

        c = tmp;
        if (*c == '-')
                buf[k++] = *c++;
        for (; *c && *c != 'e'; c++)
                if (*c >= '0' && *c <= '9' && n < sizeof digits)
                        digits[n++] = *c;
        exp10 = atoi(*c == 'e' ? c + 1 : "0");
        while (n > 1 && digits[n - 1] == '0')
                n--;

        if (exp10 >= -4 && exp10 < 16) {
                if (exp10 < 0) {
                        buf[k++] = '0';
                        buf[k++] = '.';
                        for (int z = -1; z > exp10; z--)
                                buf[k++] = '0';
                        for (size_t i = 0; i < n; i++)
                                buf[k++] = digits[i];
                } else {
                        for (size_t i = 0; i <= (size_t) exp10; i++)
                                buf[k++] = i < n ? digits[i] : '0';
                        buf[k++] = '.';
                        if (n > (size_t) exp10 + 1)
                                for (size_t i = (size_t) exp10 + 1; i < n; i++)
                                        buf[k++] = digits[i];
                        else
                                buf[k++] = '0';
                }
                buf[k] = '\0';
                return;
        }

        buf[k++] = digits[0];
        buf[k++] = '.';
        if (n > 1)
                for (size_t i = 1; i < n; i++)
                        buf[k++] = digits[i];
        else
                buf[k++] = '0';
        (void) snprintf(buf + k, DOUBLE_BUF - k, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
}

/* libyaml's write handler: appends to the Output, refusing to grow past the parse limit. */
static int output_write(void *userdata, unsigned char *buffer, size_t size) {
        Output *o = userdata;

        if (size > RESOURCE_YAML_MAX_BYTES - o->len) {
                o->error = -E2BIG;
                return 0;
        }
        if (o->len + size + 1 > o->cap) {
                size_t cap = MAX(MAX(o->cap * 2, o->len + size + 1), (size_t) 4096);
                char *d = realloc(o->data, cap);

                if (!d) {
                        o->error = -ENOMEM;
                        return 0;
                }
                o->data = d;
                o->cap = cap;
        }
        memcpy(o->data + o->len, buffer, size);
        o->len += size;
        o->data[o->len] = '\0';
        return 1;
}

/* Passes an event to the emitter (which always takes it) and maps a failure to -errno. */
static int emit_event(Emit *em, yaml_event_t *e) {
        if (yaml_emitter_emit(&em->emitter, e))
                return 0;
        if (em->out.error < 0)
                return em->out.error;
        if (em->emitter.error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        /* The events are well formed and every string valid UTF-8; libyaml disagreed. */
        return -EINVAL;
}

/* Emits a scalar that reads back as a number, a boolean or null: always plain. */
static int emit_plain(Emit *em, const char *s) {
        yaml_event_t e;

        if (!yaml_scalar_event_initialize(&e, NULL, NULL, (const yaml_char_t *) s, (int) strlen(s),
                                          1, 0, YAML_PLAIN_SCALAR_STYLE))
                return -ENOMEM;
        return emit_event(em, &e);
}

/* Emits a string so that it reads back as this same string: plain when that resolves to a
 * string, else quoted; multi-line as a literal block where libyaml can. */
static int emit_string(Emit *em, const char *s, size_t n) {
        yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
        yaml_event_t e;

        if (n > RESOURCE_YAML_MAX_BYTES)
                return -E2BIG;
        if (!utf8_valid(s, n))
                return -EINVAL;

        /* U+2028 and U+2029 are line breaks to YAML 1.1 (libyaml) but ordinary characters to
         * YAML 1.2: left to libyaml they are written raw with indentation after them, which
         * only a 1.1 reader strips again. Double quotes escape them (\L, \P) for every
         * reader. '\n' breaks read best as a literal block; libyaml falls back to double
         * quotes where a block cannot carry the text exactly (trailing spaces, controls). */
        if (memmem(s, n, "\xe2\x80\xa8", 3) || memmem(s, n, "\xe2\x80\xa9", 3))
                style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        else if (memchr(s, '\n', n))
                style = YAML_LITERAL_SCALAR_STYLE;

        /* plain_implicit = 0 makes libyaml quote; quoted_implicit = 1 keeps it from adding a
         * "!" tag to the quoted form. */
        if (!yaml_scalar_event_initialize(&e, NULL, NULL, (const yaml_char_t *) s, (int) n,
                                          !string_needs_quotes(s, n), 1, style))
                return -ENOMEM;
        return emit_event(em, &e);
}

/* Emits a JSON value at the given depth (the document root is depth 1), counting nodes as
 * the parser does so that whatever is emitted parses back within the limits. */
static int emit_value(Emit *em, json_object *v, unsigned depth) {
        char buf[DOUBLE_BUF];
        yaml_event_t e;
        int r;

        if (++em->n_nodes > RESOURCE_YAML_MAX_NODES)
                return -E2BIG;

        switch (json_object_get_type(v)) {
        case json_type_null:
                return emit_plain(em, "null");

        case json_type_boolean:
                return emit_plain(em, json_object_get_boolean(v) ? "true" : "false");

        case json_type_int: {
                int64_t i = json_object_get_int64(v);

                /* json-c keeps values above INT64_MAX as uint64 and clamps get_int64(). */
                if (i == INT64_MAX)
                        (void) snprintf(buf, sizeof buf, "%" PRIu64, json_object_get_uint64(v));
                else
                        (void) snprintf(buf, sizeof buf, "%" PRId64, i);
                return emit_plain(em, buf);
        }

        case json_type_double: {
                double d = json_object_get_double(v);

                if (!isfinite(d))
                        return -EINVAL;
                format_double(d, buf);
                return emit_plain(em, buf);
        }

        case json_type_string:
                return emit_string(em, json_object_get_string(v),
                                   (size_t) json_object_get_string_len(v));

        case json_type_array: {
                size_t n = json_object_array_length(v);

                if (depth > RESOURCE_YAML_MAX_DEPTH)
                        return -E2BIG;
                /* Block style everywhere, except that an empty sequence only exists in flow. */
                if (!yaml_sequence_start_event_initialize(&e, NULL, NULL, 1,
                                                          n == 0 ? YAML_FLOW_SEQUENCE_STYLE :
                                                                   YAML_BLOCK_SEQUENCE_STYLE))
                        return -ENOMEM;
                r = emit_event(em, &e);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++) {
                        r = emit_value(em, json_object_array_get_idx(v, i), depth + 1);
                        if (r < 0)
                                return r;
                }
                if (!yaml_sequence_end_event_initialize(&e))
                        return -ENOMEM;
                return emit_event(em, &e);
        }

        case json_type_object: {
                if (depth > RESOURCE_YAML_MAX_DEPTH)
                        return -E2BIG;
                if (!yaml_mapping_start_event_initialize(&e, NULL, NULL, 1,
                                                         json_object_object_length(v) == 0 ?
                                                         YAML_FLOW_MAPPING_STYLE :
                                                         YAML_BLOCK_MAPPING_STYLE))
                        return -ENOMEM;
                r = emit_event(em, &e);
                if (r < 0)
                        return r;
                json_object_object_foreach(v, key, val) {
                        if (++em->n_nodes > RESOURCE_YAML_MAX_NODES)
                                return -E2BIG;
                        r = emit_string(em, key, strlen(key));
                        if (r < 0)
                                return r;
                        r = emit_value(em, val, depth + 1);
                        if (r < 0)
                                return r;
                }
                if (!yaml_mapping_end_event_initialize(&e))
                        return -ENOMEM;
                return emit_event(em, &e);
        }
        }

        return -EINVAL;
}

/* Releases what an Emit still owns (for _cleanup_; yaml_emitter_delete() is safe on a
 * zeroed emitter). */
static void emit_done(Emit *em) {
        yaml_emitter_delete(&em->emitter);
        free(em->out.data);
}

/* Emits a JSON array of document objects as a YAML stream; see resource-yaml.h. */
int resource_yaml_emit(json_object *docs, char **ret_text, size_t *ret_len) {
        _cleanup_(c_locale_leave) CLocale loc = {};
        _cleanup_(emit_done) Emit em = {};
        yaml_event_t e;
        size_t n;
        int r;

        assert_return(ret_text, -EINVAL);

        if (!json_object_is_type(docs, json_type_array))
                return -EINVAL;
        n = json_object_array_length(docs);
        if (n > RESOURCE_YAML_MAX_DOCUMENTS)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if (!json_object_is_type(json_object_array_get_idx(docs, i), json_type_object))
                        return -EINVAL;

        r = c_locale_enter(&loc);
        if (r < 0)
                return r;
        if (!yaml_emitter_initialize(&em.emitter))
                return -ENOMEM;
        yaml_emitter_set_output(&em.emitter, output_write, &em.out);
        yaml_emitter_set_encoding(&em.emitter, YAML_UTF8_ENCODING);
        yaml_emitter_set_indent(&em.emitter, 2);
        yaml_emitter_set_width(&em.emitter, -1);
        yaml_emitter_set_unicode(&em.emitter, 1);
        yaml_emitter_set_break(&em.emitter, YAML_LN_BREAK);

        if (!yaml_stream_start_event_initialize(&e, YAML_UTF8_ENCODING))
                return -ENOMEM;
        r = emit_event(&em, &e);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                /* libyaml writes "---" before every document but the first, implicit or not. */
                if (!yaml_document_start_event_initialize(&e, NULL, NULL, NULL, i == 0))
                        return -ENOMEM;
                r = emit_event(&em, &e);
                if (r < 0)
                        return r;
                r = emit_value(&em, json_object_array_get_idx(docs, i), 1);
                if (r < 0)
                        return r;
                if (!yaml_document_end_event_initialize(&e, 1))
                        return -ENOMEM;
                r = emit_event(&em, &e);
                if (r < 0)
                        return r;
        }

        if (!yaml_stream_end_event_initialize(&e))
                return -ENOMEM;
        r = emit_event(&em, &e); /* flushes */
        if (r < 0)
                return r;

        if (!em.out.data) {
                em.out.data = strdup("");
                if (!em.out.data)
                        return -ENOMEM;
        }
        if (ret_len)
                *ret_len = em.out.len;
        *ret_text = TAKE_PTR(em.out.data);
        return 0;
}
