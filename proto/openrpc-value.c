/* SPDX-License-Identifier: MIT */
/*
 * The OpenRPC module's value helpers: the message buffer, exact ordering of JSON numbers
 * across json-c's three kinds, the type of a value as JSON Schema sees it, and JSON Schema's
 * equality with a hash consistent with it (for uniqueItems). See openrpc-internal.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "openrpc-internal.h"

/* In the order messages list them. */
const SchemaTypeName schema_types[SCHEMA_TYPES_N] = {
        { "string",  SCHEMA_TYPE_STRING  },
        { "integer", SCHEMA_TYPE_INTEGER },
        { "number",  SCHEMA_TYPE_NUMBER  },
        { "boolean", SCHEMA_TYPE_BOOLEAN },
        { "object",  SCHEMA_TYPE_OBJECT  },
        { "array",   SCHEMA_TYPE_ARRAY   },
        { "null",    SCHEMA_TYPE_NULL    },
};

/* ---- the message buffer ------------------------------------------------------------------ */

/* Appends n bytes. */
void buf_add(Buf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->len + n + 1);
                char *p;

                a = MAX(a, (size_t) 64);
                p = realloc(b->s, a);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->s = p;
                b->allocated = a;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

/* Appends a C string. */
void buf_puts(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

/* Appends formatted text. */
_printf_(2, 3)
void buf_printf(Buf *b, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        int n;

        if (b->oom)
                return;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        buf_add(b, s, (size_t) n);
        free(s);
}

/* Appends a caller-supplied name, cut on a UTF-8 boundary when it is long. */
void buf_put_name(Buf *b, const char *name) {
        size_t n = strlen(name);

        if (n <= OPENRPC_MESSAGE_NAME_MAX) {
                buf_add(b, name, n);
                return;
        }
        n = OPENRPC_MESSAGE_NAME_MAX;
        while (n > 0 && ((unsigned char) name[n] & 0xc0) == 0x80)
                n--;
        buf_add(b, name, n);
        buf_puts(b, "...");
}

/* Appends a value as compact JSON. */
void buf_put_json(Buf *b, json_object *v) {
        const char *s;
        size_t n;

        s = json_object_to_json_string_length(v, JSONRPC_WIRE_FLAGS, &n);
        if (!s) {
                b->oom = true;
                return;
        }
        buf_add(b, s, n);
}

/* Hands the text over (NULL on allocation failure) and resets the buffer. */
char *buf_steal(Buf *b) {
        char *s;

        if (b->oom || !b->s) {
                s = b->oom ? NULL : strdup("");
                free(b->s);
        } else
                s = b->s;
        *b = (Buf) {};
        return s;
}

/* Releases a buffer. */
void buf_done(Buf *b) {
        free(b->s);
        *b = (Buf) {};
}

/* ---- numbers and JSON values ------------------------------------------------------------ */

/* Whether a double is an integer within int64 range. */
static bool double_is_int64(double d) {
        int64_t i;

        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
                return false;
        i = (int64_t) d;
        return !((double) i < d) && !((double) i > d);
}

/* Whether a json-c value is a number. */
bool json_is_number(json_object *v) {
        return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* Reads a json-c number. */
Number number_of(json_object *v) {
        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);

                /* json-c keeps integers above INT64_MAX as uint64 (get_int64 clamps them). */
                if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX)
                        return (Number) { .kind = NUMBER_UINT, .u = json_object_get_uint64(v) };
                return (Number) { .kind = NUMBER_INT, .i = i };
        }
        return (Number) { .kind = NUMBER_DOUBLE, .d = json_object_get_double(v) };
}

/* Orders a double against an integer (int64 when !is_u, uint64 above INT64_MAX when is_u):
 * -1, 0 or 1. NaN (which no parsed value holds) orders above everything. */
static int compare_double_integer(double d, bool is_u, int64_t i, uint64_t u) {
        double frac;
        int64_t t;
        uint64_t tu;

        if (isnan(d) || d >= 18446744073709551616.0)
                return 1;
        if (d < -9223372036854775808.0)
                return -1;
        if (d >= 9223372036854775808.0) {
                if (!is_u)
                        return 1;
                tu = (uint64_t) d; /* doubles this large are integers */
                return tu < u ? -1 : tu > u;
        }
        if (is_u)
                return -1;
        /* Truncation is exact here, and so is the fraction left over. */
        t = (int64_t) d;
        if (t != i)
                return t < i ? -1 : 1;
        frac = d - (double) t;
        return frac > 0 ? 1 : frac < 0 ? -1 : 0;
}

/* Orders two numbers exactly: -1, 0 or 1. */
static int number_compare(const Number *a, const Number *b) {
        if (a->kind == NUMBER_DOUBLE && b->kind == NUMBER_DOUBLE)
                return a->d < b->d ? -1 : a->d > b->d;
        if (a->kind == NUMBER_DOUBLE)
                return compare_double_integer(a->d, b->kind == NUMBER_UINT, b->i, b->u);
        if (b->kind == NUMBER_DOUBLE)
                return -compare_double_integer(b->d, a->kind == NUMBER_UINT, a->i, a->u);
        if (a->kind != b->kind)
                return a->kind == NUMBER_UINT ? 1 : -1; /* a uint64 here is above every int64 */
        if (a->kind == NUMBER_UINT)
                return a->u < b->u ? -1 : a->u > b->u;
        return a->i < b->i ? -1 : a->i > b->i;
}

/* Orders a json-c number against a bound. */
int number_compare_json(json_object *v, const Number *bound) {
        Number n = number_of(v);

        return number_compare(&n, bound);
}

/* The SchemaType bit of a value's own type (integer-valued doubles read as numbers). */
static unsigned value_type(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:
                return SCHEMA_TYPE_NULL;
        case json_type_boolean:
                return SCHEMA_TYPE_BOOLEAN;
        case json_type_int:
                return SCHEMA_TYPE_INTEGER;
        case json_type_double:
                return SCHEMA_TYPE_NUMBER;
        case json_type_string:
                return SCHEMA_TYPE_STRING;
        case json_type_object:
                return SCHEMA_TYPE_OBJECT;
        case json_type_array:
                return SCHEMA_TYPE_ARRAY;
        }
        return 0;
}

/* The name of a value's type for messages. */
const char *value_type_name(json_object *v) {
        unsigned t = value_type(v);

        for (size_t i = 0; i < ELEMENTSOF(schema_types); i++)
                if (schema_types[i].bit == t)
                        return schema_types[i].name;
        return "unknown";
}

/* Whether a value has one of the types in the mask: "integer" takes json-c integers and
 * doubles with no fractional part within int64 range; "number" takes both kinds. */
bool value_has_type(json_object *v, unsigned types) {
        switch (json_object_get_type(v)) {
        case json_type_int:
                return types & (SCHEMA_TYPE_INTEGER | SCHEMA_TYPE_NUMBER);
        case json_type_double:
                if (types & SCHEMA_TYPE_NUMBER)
                        return true;
                return (types & SCHEMA_TYPE_INTEGER) && double_is_int64(json_object_get_double(v));
        default:
                return types & value_type(v);
        }
}

/* JSON equality as JSON Schema defines it: numbers by value (1 equals 1.0), objects by
 * members regardless of order, arrays element by element. */
bool json_equal(json_object *a, json_object *b, unsigned depth) {
        if (depth > OPENRPC_DOCUMENT_DEPTH_MAX)
                return false;
        if (json_is_number(a) && json_is_number(b)) {
                Number x = number_of(a), y = number_of(b);

                return number_compare(&x, &y) == 0;
        }
        if (json_object_get_type(a) != json_object_get_type(b))
                return false;

        switch (json_object_get_type(a)) {
        case json_type_null:
                return true;
        case json_type_boolean:
                return json_object_get_boolean(a) == json_object_get_boolean(b);
        case json_type_string:
                return json_object_get_string_len(a) == json_object_get_string_len(b) &&
                        memcmp(json_object_get_string(a), json_object_get_string(b),
                               (size_t) json_object_get_string_len(a)) == 0;
        case json_type_array: {
                size_t n = json_object_array_length(a);

                if (n != json_object_array_length(b))
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!json_equal(json_object_array_get_idx(a, i),
                                        json_object_array_get_idx(b, i), depth + 1))
                                return false;
                return true;
        }
        case json_type_object: {
                if (json_object_object_length(a) != json_object_object_length(b))
                        return false;
                json_object_object_foreach(a, key, va) {
                        json_object *vb;

                        if (!json_object_object_get_ex(b, key, &vb) ||
                            !json_equal(va, vb, depth + 1))
                                return false;
                }
                return true;
        }
        default:
                return false;
        }
}

/* FNV-1a over bytes, continuing from h. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
        const unsigned char *s = p;

        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

/* Mixes a 64-bit value into h. */
static uint64_t hash_u64(uint64_t h, uint64_t v) {
        return hash_bytes(h, &v, sizeof(v));
}

/* A hash consistent with json_equal(): equal values hash equally. */
uint64_t json_hash(json_object *v, unsigned depth) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        if (depth > OPENRPC_DOCUMENT_DEPTH_MAX)
                return h;
        if (json_is_number(v)) {
                Number x = number_of(v);

                h = hash_u64(h, 'n');
                /* Integers hash by value whichever way json-c stored them. */
                if (x.kind == NUMBER_INT)
                        return hash_u64(h, (uint64_t) x.i);
                if (x.kind == NUMBER_UINT)
                        return hash_u64(h, x.u);
                if (double_is_int64(x.d))
                        return hash_u64(h, (uint64_t) (int64_t) x.d);
                if (x.d >= 9223372036854775808.0 && x.d < 18446744073709551616.0)
                        return hash_u64(h, (uint64_t) x.d);
                return hash_bytes(h, &x.d, sizeof(x.d));
        }

        switch (json_object_get_type(v)) {
        case json_type_null:
                return hash_u64(h, 'z');
        case json_type_boolean:
                return hash_u64(h, json_object_get_boolean(v) ? 't' : 'f');
        case json_type_string:
                h = hash_u64(h, 's');
                return hash_bytes(h, json_object_get_string(v), (size_t) json_object_get_string_len(v));
        case json_type_array: {
                size_t n = json_object_array_length(v);

                h = hash_u64(h, 'a');
                for (size_t i = 0; i < n; i++)
                        h = hash_u64(h, json_hash(json_object_array_get_idx(v, i), depth + 1));
                return h;
        }
        case json_type_object: {
                uint64_t sum = 0;

                /* Member order does not matter: combine the members with a sum. */
                json_object_object_foreach(v, key, val) {
                        uint64_t m = hash_bytes(UINT64_C(0xcbf29ce484222325), key, strlen(key));
                        sum += hash_u64(m, json_hash(val, depth + 1));
                }
                return hash_u64(hash_u64(h, 'o'), sum);
        }
        default:
                return h;
        }
}

/* Number of code points in a UTF-8 string. */
size_t utf8_length(const char *s, size_t n) {
        size_t l = 0;

        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80)
                        l++;
        return l;
}

/* Whether s is a UUID in the canonical 8-4-4-4-12 form, any case. */
bool string_is_uuid(const char *s, size_t n) {
        if (n != 36)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return false;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                             (c >= 'A' && c <= 'F')))
                        return false;
        }
        return true;
}
