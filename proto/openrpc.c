/* SPDX-License-Identifier: MIT */
/*
 * The OpenRPC document: loading, indexing and params validation.
 *
 * Glossary:
 *   descriptor  an OpenRPC content descriptor: a named value (param or result) with a schema
 *               and a "required" flag.
 *   schema      a JSON Schema (the subset listed in openrpc.h), compiled once at load into a
 *               Schema tree: keyword values are checked, patterns compiled and $refs linked to
 *               the compiled component, so validation never looks anything up by name.
 *   same-instance edge
 *               a keyword that applies another schema to the same value ($ref, allOf, anyOf,
 *               oneOf, not). A cycle of such edges would recurse without consuming the value,
 *               so the loader rejects it; cycles through properties or items are fine (the
 *               value gets smaller at each step) and the validation depth bounds them anyway.
 *
 * Every Schema and descriptor is allocated through the OpenRpc object and freed with it;
 * strings are borrowed from the document, which the OpenRpc object owns.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "openrpc.h"
#include "protocol.h"

/* Nesting accepted in the document text. It is our own file, but schemas nest a few levels
 * per level of the values they describe. */
#define OPENRPC_DOCUMENT_DEPTH_MAX 128

/* Schema recursion while validating one value: each property, item, $ref or combinator step
 * counts one. Values are at most PROTO_JSON_DEPTH_MAX deep, with room for a $ref and a
 * combinator per level. */
#define OPENRPC_VALIDATE_DEPTH_MAX (4 * PROTO_JSON_DEPTH_MAX)

/* Longest $ref chain followed to find a param's default or a schema's types. */
#define OPENRPC_REF_CHAIN_MAX 16

/* Equality checks spent on one uniqueItems check: items are first sorted by hash, so only a
 * crafted set of hash collisions could come near this. */
#define OPENRPC_UNIQUE_COMPARISONS_MAX 100000u

/* Bytes of a caller-supplied name quoted in an error message, and enum values listed. */
#define OPENRPC_MESSAGE_NAME_MAX 64
#define OPENRPC_MESSAGE_ENUM_MAX 10

#define SCHEMA_REF_PREFIX "#/components/schemas/"
#define DESCRIPTOR_REF_PREFIX "#/components/contentDescriptors/"

typedef enum SchemaType {
        SCHEMA_TYPE_STRING  = 1u << 0,
        SCHEMA_TYPE_INTEGER = 1u << 1,
        SCHEMA_TYPE_NUMBER  = 1u << 2,
        SCHEMA_TYPE_BOOLEAN = 1u << 3,
        SCHEMA_TYPE_OBJECT  = 1u << 4,
        SCHEMA_TYPE_ARRAY   = 1u << 5,
        SCHEMA_TYPE_NULL    = 1u << 6,
} SchemaType;

/* In the order messages list them. */
static const struct {
        const char *name;
        unsigned bit;
} schema_types[] = {
        { "string",  SCHEMA_TYPE_STRING  },
        { "integer", SCHEMA_TYPE_INTEGER },
        { "number",  SCHEMA_TYPE_NUMBER  },
        { "boolean", SCHEMA_TYPE_BOOLEAN },
        { "object",  SCHEMA_TYPE_OBJECT  },
        { "array",   SCHEMA_TYPE_ARRAY   },
        { "null",    SCHEMA_TYPE_NULL    },
};

typedef enum AdditionalProperties {
        ADDITIONAL_ANY,
        ADDITIONAL_NONE,
        ADDITIONAL_SCHEMA,
} AdditionalProperties;

typedef enum ParamStructure {
        PARAM_STRUCTURE_EITHER,
        PARAM_STRUCTURE_BY_NAME,
        PARAM_STRUCTURE_BY_POSITION,
} ParamStructure;

typedef struct Schema Schema;

typedef struct SchemaProperty {
        const char *name;
        Schema *schema;
} SchemaProperty;

/* A JSON number as json-c holds it: int64, uint64 (only above INT64_MAX) or double. Numbers
 * are compared exactly across the three kinds, without going through a wider floating type
 * (long double is no wider than double on some platforms, and under valgrind). */
typedef enum NumberKind {
        NUMBER_INT,
        NUMBER_UINT,
        NUMBER_DOUBLE,
} NumberKind;

typedef struct Number {
        NumberKind kind;
        int64_t i;
        uint64_t u;
        double d;
} Number;

/* A numeric bound: its value for comparisons and the document's value for messages. */
typedef struct NumberBound {
        json_object *json; /* NULL when the keyword is absent */
        Number value;
} NumberBound;

typedef struct SizeBound {
        bool set;
        uint64_t value;
} SizeBound;

struct Schema {
        bool never;                /* the boolean schema false */
        const char *ref;           /* $ref text, or NULL */
        Schema *ref_target;        /* the compiled component it names */
        unsigned types;            /* SchemaType bits; 0 accepts any type */
        json_object *enum_values;  /* array, or NULL */
        bool has_const;
        json_object *const_value;
        SchemaProperty *properties;
        size_t n_properties;
        const char **required;
        size_t n_required;
        AdditionalProperties additional;
        Schema *additional_schema;
        Schema *items;
        SizeBound min_items, max_items;
        bool unique_items;
        NumberBound minimum, maximum, exclusive_minimum, exclusive_maximum;
        SizeBound min_length, max_length;
        const char *pattern;
        regex_t regex;             /* compiled when pattern is set */
        bool format_uuid;
        Schema **all_of, **any_of, **one_of;
        size_t n_all_of, n_any_of, n_one_of;
        Schema *not_schema;
        bool has_default;
        json_object *default_value;
        unsigned mark;             /* cycle check: 0 unvisited, 1 on the stack, 2 done */
};

typedef struct Descriptor {
        const char *name;
        bool required;
        Schema *schema;
} Descriptor;

typedef struct NamedSchema {
        const char *name;
        Schema *schema;
} NamedSchema;

typedef struct NamedDescriptor {
        const char *name;
        Descriptor *descriptor;
} NamedDescriptor;

struct OpenRpcMethod {
        const char *name;
        const char *summary;
        const char *role;
        bool accepts_fds;
        ParamStructure structure;
        Descriptor **params; /* borrowed: owned by OpenRpc.descriptors */
        size_t n_params;
        Descriptor *result;
};

struct OpenRpc {
        json_object *doc;
        OpenRpcMethod *methods; /* document order */
        size_t n_methods;
        OpenRpcMethod **by_name; /* sorted by name, for bsearch */

        Schema **schemas; /* every compiled schema, owned */
        size_t n_schemas, allocated_schemas;
        Descriptor **descriptors; /* every descriptor, owned */
        size_t n_descriptors, allocated_descriptors;

        NamedSchema *component_schemas;
        size_t n_component_schemas;
        NamedDescriptor *component_descriptors;
        size_t n_component_descriptors;
};

/* ---- small helpers ---------------------------------------------------------------------- */

/* Cleanup helper for openrpc_free(). */
static void openrpc_freep(OpenRpc **p) {
        openrpc_free(*p);
}

/* Records a static load error and returns -EINVAL. */
static int load_fail(const char **error, const char *message) {
        *error = message;
        return -EINVAL;
}

/* A string member of an object, or NULL when absent or not a string. */
static const char *object_get_string(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Whether a json-c string holds no NUL byte, so it can be used as a C string. */
static bool string_is_c_string(json_object *s) {
        return strlen(json_object_get_string(s)) == (size_t) json_object_get_string_len(s);
}

/* A growable string for messages. Allocation failure is sticky and reported at the end. */
typedef struct Buf {
        char *s;
        size_t len, allocated;
        bool oom;
} Buf;

/* Appends n bytes. */
static void buf_add(Buf *b, const char *s, size_t n) {
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
static void buf_puts(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

/* Appends formatted text. */
_printf_(2, 3)
static void buf_printf(Buf *b, const char *fmt, ...) {
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
static void buf_put_name(Buf *b, const char *name) {
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
static void buf_put_json(Buf *b, json_object *v) {
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
static char *buf_steal(Buf *b) {
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
static void buf_done(Buf *b) {
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
static bool json_is_number(json_object *v) {
        return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* Reads a json-c number. */
static Number number_of(json_object *v) {
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
static int number_compare_json(json_object *v, const Number *bound) {
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
static const char *value_type_name(json_object *v) {
        unsigned t = value_type(v);

        for (size_t i = 0; i < ELEMENTSOF(schema_types); i++)
                if (schema_types[i].bit == t)
                        return schema_types[i].name;
        return "unknown";
}

/* Whether a value has one of the types in the mask: "integer" takes json-c integers and
 * doubles with no fractional part within int64 range; "number" takes both kinds. */
static bool value_has_type(json_object *v, unsigned types) {
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
static bool json_equal(json_object *a, json_object *b, unsigned depth) {
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
static uint64_t json_hash(json_object *v, unsigned depth) {
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
static size_t utf8_length(const char *s, size_t n) {
        size_t l = 0;

        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80)
                        l++;
        return l;
}

/* Whether s is a UUID in the canonical 8-4-4-4-12 form, any case. */
static bool string_is_uuid(const char *s, size_t n) {
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

/* ---- compiling schemas ------------------------------------------------------------------ */

/* Allocates a schema owned by o. */
static int schema_new(OpenRpc *o, Schema **ret) {
        Schema *s;

        if (o->n_schemas == o->allocated_schemas) {
                size_t a = MAX(o->allocated_schemas * 2, (size_t) 64);
                Schema **p = realloc(o->schemas, a * sizeof(Schema *));

                if (!p)
                        return -ENOMEM;
                o->schemas = p;
                o->allocated_schemas = a;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        o->schemas[o->n_schemas++] = s;
        *ret = s;
        return 0;
}

/* Frees one schema's own allocations (children are freed through o->schemas). */
static void schema_free(Schema *s) {
        if (!s)
                return;
        if (s->pattern)
                regfree(&s->regex);
        free(s->properties);
        free(s->required);
        free(s->all_of);
        free(s->any_of);
        free(s->one_of);
        free(s);
}

/* Reads a non-negative integer keyword. */
static int keyword_size(json_object *v, SizeBound *ret, const char **error, const char *message) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                return load_fail(error, message);
        i = json_object_get_int64(v);
        if (i < 0)
                return load_fail(error, message);
        *ret = (SizeBound) { .set = true, .value = (uint64_t) i };
        return 0;
}

/* Reads a numeric keyword. */
static int keyword_number(json_object *v, NumberBound *ret, const char **error, const char *message) {
        if (!json_is_number(v))
                return load_fail(error, message);
        *ret = (NumberBound) { .json = v, .value = number_of(v) };
        return 0;
}

/* Reads "type": a type name or a non-empty array of distinct type names. */
static int keyword_type(json_object *v, unsigned *ret, const char **error) {
        static const char *const message =
                "schema keyword \"type\" must name string, integer, number, boolean, object, "
                "array or null, or be a non-empty array of distinct such names";
        unsigned types = 0;
        size_t n;

        if (json_object_is_type(v, json_type_string))
                n = 1;
        else if (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0)
                n = json_object_array_length(v);
        else
                return load_fail(error, message);

        for (size_t i = 0; i < n; i++) {
                json_object *t = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
                unsigned bit = 0;

                if (!json_object_is_type(t, json_type_string))
                        return load_fail(error, message);
                for (size_t j = 0; j < ELEMENTSOF(schema_types); j++)
                        if (streq(json_object_get_string(t), schema_types[j].name))
                                bit = schema_types[j].bit;
                if (bit == 0 || (types & bit))
                        return load_fail(error, message);
                types |= bit;
        }
        *ret = types;
        return 0;
}

/* Checks that a pattern is written for POSIX: \d and \D look like ECMA-262 but POSIX reads
 * them as plain letters, which would silently accept the wrong strings. */
static bool pattern_is_posix(const char *p) {
        for (; *p; p++) {
                if (*p != '\\')
                        continue;
                p++;
                if (*p == 'd' || *p == 'D')
                        return false;
                if (!*p)
                        break;
        }
        return true;
}

static int schema_compile(OpenRpc *o, json_object *j, Schema **ret, const char **error);

/* Compiles a non-empty array of schemas (allOf, anyOf, oneOf). */
static int schema_compile_list(OpenRpc *o, json_object *v, Schema ***ret, size_t *ret_n,
                               const char **error, const char *message) {
        Schema **list;
        size_t n;
        int r;

        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
                return load_fail(error, message);
        n = json_object_array_length(v);
        list = calloc(n, sizeof(Schema *));
        if (!list)
                return -ENOMEM;
        *ret = list; /* owned by the schema from now on, so it is freed on failure too */
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                r = schema_compile(o, json_object_array_get_idx(v, i), &list[i], error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Compiles "properties". */
static int schema_compile_properties(OpenRpc *o, Schema *s, json_object *v, const char **error) {
        size_t i = 0;
        int r;

        if (!json_object_is_type(v, json_type_object))
                return load_fail(error, "schema keyword \"properties\" must be an object");
        s->properties = calloc(MAX((size_t) json_object_object_length(v), (size_t) 1),
                               sizeof(SchemaProperty));
        if (!s->properties)
                return -ENOMEM;
        json_object_object_foreach(v, key, val) {
                s->properties[i].name = key;
                s->n_properties = ++i;
                r = schema_compile(o, val, &s->properties[i - 1].schema, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Compiles "required" (the schema keyword: names of object members). */
static int schema_compile_required(Schema *s, json_object *v, const char **error) {
        static const char *const message = "schema keyword \"required\" must be an array of distinct strings";
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return load_fail(error, message);
        n = json_object_array_length(v);
        s->required = calloc(MAX(n, (size_t) 1), sizeof(char *));
        if (!s->required)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);

                if (!json_object_is_type(e, json_type_string) || !string_is_c_string(e))
                        return load_fail(error, message);
                for (size_t k = 0; k < i; k++)
                        if (streq(s->required[k], json_object_get_string(e)))
                                return load_fail(error, message);
                s->required[i] = json_object_get_string(e);
                s->n_required = i + 1;
        }
        return 0;
}

/* Keywords that carry no validation and are accepted as annotations. */
static bool keyword_is_annotation(const char *key) {
        static const char *const annotations[] = {
                "title", "description", "examples", "$comment", "deprecated", "readOnly",
                "writeOnly", "$schema", "$id", "contentMediaType", "contentEncoding",
        };

        if (startswith(key, "x-"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(annotations); i++)
                if (streq(key, annotations[i]))
                        return true;
        return false;
}

/* Compiles one keyword of a schema object. */
static int schema_compile_keyword(OpenRpc *o, Schema *s, const char *key, json_object *v,
                                  const char **error) {
        const char *p;
        int r;

        if (streq(key, "$ref")) {
                if (!json_object_is_type(v, json_type_string) || !string_is_c_string(v))
                        return load_fail(error, "schema keyword \"$ref\" must be a string");
                s->ref = json_object_get_string(v);
                p = startswith(s->ref, SCHEMA_REF_PREFIX);
                if (!p || isempty(p) || strpbrk(p, "/~"))
                        return load_fail(error, "unresolvable $ref: a schema may only refer to "
                                         "\"" SCHEMA_REF_PREFIX "NAME\"");
                return 0;
        }
        if (streq(key, "type"))
                return keyword_type(v, &s->types, error);
        if (streq(key, "enum")) {
                if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
                        return load_fail(error, "schema keyword \"enum\" must be a non-empty array");
                s->enum_values = v;
                return 0;
        }
        if (streq(key, "const")) {
                s->has_const = true;
                s->const_value = v;
                return 0;
        }
        if (streq(key, "default")) {
                s->has_default = true;
                s->default_value = v;
                return 0;
        }
        if (streq(key, "properties"))
                return schema_compile_properties(o, s, v, error);
        if (streq(key, "required"))
                return schema_compile_required(s, v, error);
        if (streq(key, "additionalProperties")) {
                if (json_object_is_type(v, json_type_boolean)) {
                        s->additional = json_object_get_boolean(v) ? ADDITIONAL_ANY : ADDITIONAL_NONE;
                        return 0;
                }
                s->additional = ADDITIONAL_SCHEMA;
                return schema_compile(o, v, &s->additional_schema, error);
        }
        if (streq(key, "items")) {
                if (json_object_is_type(v, json_type_array))
                        return load_fail(error, "schema keyword \"items\" must be one schema "
                                         "(the tuple form is not supported)");
                return schema_compile(o, v, &s->items, error);
        }
        if (streq(key, "minItems"))
                return keyword_size(v, &s->min_items, error,
                                    "schema keyword \"minItems\" must be a non-negative integer");
        if (streq(key, "maxItems"))
                return keyword_size(v, &s->max_items, error,
                                    "schema keyword \"maxItems\" must be a non-negative integer");
        if (streq(key, "uniqueItems")) {
                if (!json_object_is_type(v, json_type_boolean))
                        return load_fail(error, "schema keyword \"uniqueItems\" must be a boolean");
                s->unique_items = json_object_get_boolean(v);
                return 0;
        }
        if (streq(key, "minimum"))
                return keyword_number(v, &s->minimum, error,
                                      "schema keyword \"minimum\" must be a number");
        if (streq(key, "maximum"))
                return keyword_number(v, &s->maximum, error,
                                      "schema keyword \"maximum\" must be a number");
        if (streq(key, "exclusiveMinimum"))
                return keyword_number(v, &s->exclusive_minimum, error,
                                      "schema keyword \"exclusiveMinimum\" must be a number");
        if (streq(key, "exclusiveMaximum"))
                return keyword_number(v, &s->exclusive_maximum, error,
                                      "schema keyword \"exclusiveMaximum\" must be a number");
        if (streq(key, "minLength"))
                return keyword_size(v, &s->min_length, error,
                                    "schema keyword \"minLength\" must be a non-negative integer");
        if (streq(key, "maxLength"))
                return keyword_size(v, &s->max_length, error,
                                    "schema keyword \"maxLength\" must be a non-negative integer");
        if (streq(key, "pattern")) {
                if (!json_object_is_type(v, json_type_string) || !string_is_c_string(v))
                        return load_fail(error, "schema keyword \"pattern\" must be a string");
                if (!pattern_is_posix(json_object_get_string(v)))
                        return load_fail(error, "a pattern uses \\d or \\D, which POSIX regular "
                                         "expressions do not have; write [0-9]");
                r = regcomp(&s->regex, json_object_get_string(v), REG_EXTENDED | REG_NOSUB);
                if (r == REG_ESPACE)
                        return -ENOMEM;
                if (r != 0)
                        return load_fail(error, "a pattern is not a valid POSIX extended "
                                         "regular expression");
                s->pattern = json_object_get_string(v);
                return 0;
        }
        if (streq(key, "format")) {
                if (!json_object_is_type(v, json_type_string))
                        return load_fail(error, "schema keyword \"format\" must be a string");
                /* Other formats are annotations, as JSON Schema has it. */
                s->format_uuid = streq(json_object_get_string(v), "uuid");
                return 0;
        }
        if (streq(key, "allOf"))
                return schema_compile_list(o, v, &s->all_of, &s->n_all_of, error,
                                           "schema keyword \"allOf\" must be a non-empty array");
        if (streq(key, "anyOf"))
                return schema_compile_list(o, v, &s->any_of, &s->n_any_of, error,
                                           "schema keyword \"anyOf\" must be a non-empty array");
        if (streq(key, "oneOf"))
                return schema_compile_list(o, v, &s->one_of, &s->n_one_of, error,
                                           "schema keyword \"oneOf\" must be a non-empty array");
        if (streq(key, "not"))
                return schema_compile(o, v, &s->not_schema, error);
        if (keyword_is_annotation(key))
                return 0;

        /* A keyword we do not implement (multipleOf, patternProperties, if/then/else...) or a
         * typo: ignoring it would silently skip a check the document asks for. */
        return load_fail(error, "a schema uses a keyword outside the supported subset "
                         "(see openrpc.h; annotations may use an \"x-\" prefix)");
}

/* Compiles a schema (an object, or the boolean schemas true and false). */
static int schema_compile(OpenRpc *o, json_object *j, Schema **ret, const char **error) {
        Schema *s;
        int r;

        if (!json_object_is_type(j, json_type_object) && !json_object_is_type(j, json_type_boolean))
                return load_fail(error, "a schema must be an object or a boolean");

        r = schema_new(o, &s);
        if (r < 0)
                return r;
        *ret = s;

        if (json_object_is_type(j, json_type_boolean)) {
                s->never = !json_object_get_boolean(j);
                return 0;
        }

        json_object_object_foreach(j, key, v) {
                r = schema_compile_keyword(o, s, key, v, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Finds a component schema by name. */
static Schema *component_schema(const OpenRpc *o, const char *name) {
        for (size_t i = 0; i < o->n_component_schemas; i++)
                if (streq(o->component_schemas[i].name, name))
                        return o->component_schemas[i].schema;
        return NULL;
}

/* Finds a component content descriptor by name. */
static Descriptor *component_descriptor(const OpenRpc *o, const char *name) {
        for (size_t i = 0; i < o->n_component_descriptors; i++)
                if (streq(o->component_descriptors[i].name, name))
                        return o->component_descriptors[i].descriptor;
        return NULL;
}

/* Follows the same-instance edges of s depth first; a schema met again while still on the
 * stack closes a cycle. */
static int schema_check_cycles(Schema *s, const char **error) {
        int r;

        if (!s || s->mark == 2)
                return 0;
        if (s->mark == 1)
                return load_fail(error, "a schema refers to itself without an intervening "
                                 "property or item ($ref/allOf/anyOf/oneOf/not cycle)");
        s->mark = 1;
        r = schema_check_cycles(s->ref_target, error);
        for (size_t i = 0; r >= 0 && i < s->n_all_of; i++)
                r = schema_check_cycles(s->all_of[i], error);
        for (size_t i = 0; r >= 0 && i < s->n_any_of; i++)
                r = schema_check_cycles(s->any_of[i], error);
        for (size_t i = 0; r >= 0 && i < s->n_one_of; i++)
                r = schema_check_cycles(s->one_of[i], error);
        if (r >= 0)
                r = schema_check_cycles(s->not_schema, error);
        if (r < 0)
                return r;
        s->mark = 2;
        return 0;
}

/* Links every $ref to its component and rejects same-instance cycles. */
static int schemas_resolve(OpenRpc *o, const char **error) {
        int r;

        for (size_t i = 0; i < o->n_schemas; i++) {
                Schema *s = o->schemas[i];

                if (!s->ref)
                        continue;
                s->ref_target = component_schema(o, s->ref + STRLEN(SCHEMA_REF_PREFIX));
                if (!s->ref_target)
                        return load_fail(error, "unresolvable $ref: no such entry in "
                                         "components.schemas");
        }
        for (size_t i = 0; i < o->n_schemas; i++) {
                r = schema_check_cycles(o->schemas[i], error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- compiling descriptors and methods --------------------------------------------------- */

/* Allocates a descriptor owned by o. */
static int descriptor_new(OpenRpc *o, Descriptor **ret) {
        Descriptor *d;

        if (o->n_descriptors == o->allocated_descriptors) {
                size_t a = MAX(o->allocated_descriptors * 2, (size_t) 32);
                Descriptor **p = realloc(o->descriptors, a * sizeof(Descriptor *));

                if (!p)
                        return -ENOMEM;
                o->descriptors = p;
                o->allocated_descriptors = a;
        }
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        o->descriptors[o->n_descriptors++] = d;
        *ret = d;
        return 0;
}

/* Compiles an inline content descriptor {"name", "schema", "required"?}. */
static int descriptor_compile(OpenRpc *o, json_object *j, Descriptor **ret, const char **error) {
        json_object *v;
        Descriptor *d;
        int r;

        if (!json_object_is_type(j, json_type_object))
                return load_fail(error, "a content descriptor must be an object");
        if (!json_object_object_get_ex(j, "name", &v) || !json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) == 0 || !string_is_c_string(v))
                return load_fail(error, "a content descriptor needs a non-empty \"name\"");

        r = descriptor_new(o, &d);
        if (r < 0)
                return r;
        d->name = json_object_get_string(v);

        if (json_object_object_get_ex(j, "required", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return load_fail(error, "a content descriptor's \"required\" must be a boolean");
                d->required = json_object_get_boolean(v);
        }

        if (!json_object_object_get_ex(j, "schema", &v))
                return load_fail(error, "a content descriptor needs a \"schema\"");
        r = schema_compile(o, v, &d->schema, error);
        if (r < 0)
                return r;

        *ret = d;
        return 0;
}

/* Returns the descriptor of a params entry or result: inline, or a $ref to a component. */
static int descriptor_get(OpenRpc *o, json_object *j, Descriptor **ret, const char **error) {
        json_object *v;
        const char *name;

        if (json_object_is_type(j, json_type_object) && json_object_object_get_ex(j, "$ref", &v)) {
                if (!json_object_is_type(v, json_type_string) || !string_is_c_string(v))
                        return load_fail(error, "a content descriptor's \"$ref\" must be a string");
                name = startswith(json_object_get_string(v), DESCRIPTOR_REF_PREFIX);
                if (!name)
                        return load_fail(error, "unresolvable $ref: a content descriptor may only "
                                         "refer to \"" DESCRIPTOR_REF_PREFIX "NAME\"");
                *ret = component_descriptor(o, name);
                if (!*ret)
                        return load_fail(error, "unresolvable $ref: no such entry in "
                                         "components.contentDescriptors");
                return 0;
        }
        return descriptor_compile(o, j, ret, error);
}

/* Loads components.schemas and components.contentDescriptors. */
static int components_load(OpenRpc *o, const char **error) {
        json_object *components, *v;
        size_t i;
        int r;

        if (!json_object_object_get_ex(o->doc, "components", &components))
                return 0;
        if (!json_object_is_type(components, json_type_object))
                return load_fail(error, "\"components\" must be an object");

        if (json_object_object_get_ex(components, "schemas", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return load_fail(error, "\"components.schemas\" must be an object");
                o->component_schemas = calloc(MAX((size_t) json_object_object_length(v), (size_t) 1),
                                              sizeof(NamedSchema));
                if (!o->component_schemas)
                        return -ENOMEM;
                i = 0;
                json_object_object_foreach(v, key, val) {
                        o->component_schemas[i].name = key;
                        o->n_component_schemas = ++i;
                        r = schema_compile(o, val, &o->component_schemas[i - 1].schema, error);
                        if (r < 0)
                                return r;
                }
        }

        if (json_object_object_get_ex(components, "contentDescriptors", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return load_fail(error, "\"components.contentDescriptors\" must be an object");
                o->component_descriptors = calloc(MAX((size_t) json_object_object_length(v), (size_t) 1),
                                                  sizeof(NamedDescriptor));
                if (!o->component_descriptors)
                        return -ENOMEM;
                i = 0;
                json_object_object_foreach(v, dkey, dval) {
                        o->component_descriptors[i].name = dkey;
                        o->n_component_descriptors = ++i;
                        r = descriptor_compile(o, dval, &o->component_descriptors[i - 1].descriptor, error);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Loads one method object. */
static int method_load(OpenRpc *o, json_object *j, OpenRpcMethod *m, const char **error) {
        static const char *const roles[] = { "read", "operate", "admin", "public" };
        json_object *v, *params;
        const char *s;
        size_t n;
        int r;

        if (!json_object_is_type(j, json_type_object))
                return load_fail(error, "a method must be an object");

        if (!json_object_object_get_ex(j, "name", &v) || !json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) == 0 || !string_is_c_string(v) ||
            (size_t) json_object_get_string_len(v) > PROTO_METHOD_NAME_MAX)
                return load_fail(error, "a method needs a \"name\" of 1 to PROTO_METHOD_NAME_MAX bytes");
        m->name = json_object_get_string(v);
        m->summary = object_get_string(j, "summary") ?: "";
        m->role = "admin";

        if (json_object_object_get_ex(j, "paramStructure", &v)) {
                s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (streq(s, "by-name"))
                        m->structure = PARAM_STRUCTURE_BY_NAME;
                else if (streq(s, "by-position"))
                        m->structure = PARAM_STRUCTURE_BY_POSITION;
                else if (streq(s, "either"))
                        m->structure = PARAM_STRUCTURE_EITHER;
                else
                        return load_fail(error, "\"paramStructure\" must be \"by-name\", "
                                         "\"by-position\" or \"either\"");
        }

        if (json_object_object_get_ex(j, "x-avatard-role", &v)) {
                m->role = NULL;
                if (json_object_is_type(v, json_type_string))
                        for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                                if (streq(json_object_get_string(v), roles[i]))
                                        m->role = roles[i];
                if (!m->role)
                        return load_fail(error, "\"x-avatard-role\" must be \"read\", \"operate\", "
                                         "\"admin\" or \"public\"");
        }

        if (json_object_object_get_ex(j, "x-avatard-fds", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return load_fail(error, "\"x-avatard-fds\" must be a boolean");
                m->accepts_fds = json_object_get_boolean(v);
        }

        if (!json_object_object_get_ex(j, "params", &params) ||
            !json_object_is_type(params, json_type_array))
                return load_fail(error, "a method needs a \"params\" array");
        n = json_object_array_length(params);
        m->params = calloc(MAX(n, (size_t) 1), sizeof(Descriptor *));
        if (!m->params)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = descriptor_get(o, json_object_array_get_idx(params, i), &m->params[i], error);
                if (r < 0)
                        return r;
                m->n_params = i + 1;
                for (size_t k = 0; k < i; k++)
                        if (streq(m->params[k]->name, m->params[i]->name))
                                return load_fail(error, "duplicate param name in a method");
        }

        if (!json_object_object_get_ex(j, "result", &v))
                return load_fail(error, "a method needs a \"result\"");
        return descriptor_get(o, v, &m->result, error);
}

/* Orders methods by name. */
static int method_compare(const void *a, const void *b) {
        const OpenRpcMethod *const *x = a, *const *y = b;

        return strcmp((*x)->name, (*y)->name);
}

/* The default of a descriptor's schema, following a $ref chain; false when none. */
static bool descriptor_default(const Descriptor *d, json_object **ret) {
        const Schema *s = d->schema;

        for (unsigned i = 0; s && i < OPENRPC_REF_CHAIN_MAX; i++, s = s->ref_target)
                if (s->has_default) {
                        *ret = s->default_value;
                        return true;
                }
        return false;
}

typedef struct Validator Validator;
static int validator_run(Validator *v, const Schema *s, json_object *value);
static Validator *validator_new(bool quiet);
static Validator *validator_free(Validator *v);

/* Checks every param default against its own schema. */
static int defaults_check(OpenRpc *o, const char **error) {
        Validator *v;
        int r = 0;

        v = validator_new(true);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < o->n_methods; i++)
                for (size_t k = 0; r >= 0 && k < o->methods[i].n_params; k++) {
                        const Descriptor *d = o->methods[i].params[k];
                        json_object *def;

                        if (!descriptor_default(d, &def))
                                continue;
                        r = validator_run(v, d->schema, def);
                        if (r == -EINVAL)
                                r = load_fail(error, "a param's default does not match its schema");
                }
        validator_free(v);
        return r;
}

/* Checks and indexes the whole document. */
static int document_load(OpenRpc *o, const char **error) {
        json_object *v, *methods;
        const char *s;
        size_t n;
        int r;

        if (!json_object_is_type(o->doc, json_type_object))
                return load_fail(error, "the document is not a JSON object");

        s = object_get_string(o->doc, "openrpc");
        if (!s || !startswith(s, "1."))
                return load_fail(error, "missing \"openrpc\" or not a 1.x version");

        if (!json_object_object_get_ex(o->doc, "info", &v) || !json_object_is_type(v, json_type_object) ||
            !object_get_string(v, "title") || !object_get_string(v, "version"))
                return load_fail(error, "\"info\" must be an object with \"title\" and \"version\" strings");

        r = components_load(o, error);
        if (r < 0)
                return r;

        if (!json_object_object_get_ex(o->doc, "methods", &methods) ||
            !json_object_is_type(methods, json_type_array))
                return load_fail(error, "missing \"methods\" array");
        n = json_object_array_length(methods);
        o->methods = calloc(MAX(n, (size_t) 1), sizeof(OpenRpcMethod));
        o->by_name = calloc(MAX(n, (size_t) 1), sizeof(OpenRpcMethod *));
        if (!o->methods || !o->by_name)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                o->n_methods = i + 1;
                r = method_load(o, json_object_array_get_idx(methods, i), &o->methods[i], error);
                if (r < 0)
                        return r;
                o->by_name[i] = &o->methods[i];
        }

        r = schemas_resolve(o, error);
        if (r < 0)
                return r;

        qsort(o->by_name, n, sizeof(OpenRpcMethod *), method_compare);
        for (size_t i = 1; i < n; i++)
                if (streq(o->by_name[i - 1]->name, o->by_name[i]->name))
                        return load_fail(error, "duplicate method name");

        return defaults_check(o, error);
}

/* Parses and indexes a document, see openrpc.h. */
int openrpc_load(const char *text, size_t len, OpenRpc **ret, const char **ret_error) {
        _cleanup_(openrpc_freep) OpenRpc *o = NULL;
        const char *error = NULL;
        int r;

        assert_return(text || len == 0, -EINVAL);
        assert_return(ret, -EINVAL);

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;

        r = json_parse_strict(text, len, OPENRPC_DOCUMENT_DEPTH_MAX, &o->doc);
        if (r == -EBADMSG)
                error = "the document is not valid JSON";
        else if (r >= 0)
                r = document_load(o, &error);
        if (r < 0) {
                if (ret_error && error)
                        *ret_error = error;
                return r;
        }

        *ret = TAKE_PTR(o);
        return 0;
}

/* Frees the index, every compiled schema and the document. */
OpenRpc *openrpc_free(OpenRpc *o) {
        if (!o)
                return NULL;
        for (size_t i = 0; i < o->n_schemas; i++)
                schema_free(o->schemas[i]);
        free(o->schemas);
        for (size_t i = 0; i < o->n_descriptors; i++)
                free(o->descriptors[i]);
        free(o->descriptors);
        for (size_t i = 0; i < o->n_methods; i++)
                free(o->methods[i].params);
        free(o->methods);
        free(o->by_name);
        free(o->component_schemas);
        free(o->component_descriptors);
        json_object_put(o->doc);
        free(o);
        return NULL;
}

/* The whole document, borrowed. */
json_object *openrpc_document(const OpenRpc *o) {
        assert_return(o, NULL);
        return o->doc;
}

/* Compares a name with a method, for bsearch. */
static int method_name_compare(const void *key, const void *elem) {
        const OpenRpcMethod *const *m = elem;

        return strcmp(key, (*m)->name);
}

/* Looks a method up by name with a binary search. */
const OpenRpcMethod *openrpc_method(const OpenRpc *o, const char *name) {
        OpenRpcMethod **m;

        if (!o || !name || o->n_methods == 0)
                return NULL;
        m = bsearch(name, o->by_name, o->n_methods, sizeof(OpenRpcMethod *), method_name_compare);
        return m ? *m : NULL;
}

/* Number of methods. */
size_t openrpc_n_methods(const OpenRpc *o) {
        return o ? o->n_methods : 0;
}

/* The i-th method in document order, or NULL past the end. */
const OpenRpcMethod *openrpc_method_at(const OpenRpc *o, size_t i) {
        if (!o || i >= o->n_methods)
                return NULL;
        return &o->methods[i];
}

/* The method's name. */
const char *openrpc_method_name(const OpenRpcMethod *m) {
        assert_return(m, NULL);
        return m->name;
}

/* The method's summary, "" when it has none. */
const char *openrpc_method_summary(const OpenRpcMethod *m) {
        assert_return(m, NULL);
        return m->summary;
}

/* The method's role, "admin" when unclassified. */
const char *openrpc_method_role(const OpenRpcMethod *m) {
        assert_return(m, "admin");
        return m->role;
}

/* Whether the method takes descriptors. */
bool openrpc_method_accepts_fds(const OpenRpcMethod *m) {
        return m && m->accepts_fds;
}

/* ---- validation --------------------------------------------------------------------------- */

/* One step of the location inside the value being validated. */
typedef struct PathSegment {
        const char *key; /* member name, or NULL for an array index */
        size_t index;
} PathSegment;

struct Validator {
        bool quiet;      /* only the verdict is wanted: no message is built */
        unsigned depth;
        size_t n_path;
        PathSegment path[OPENRPC_VALIDATE_DEPTH_MAX + 1];
        char *message;   /* on failure, when not quiet */
        char *where;     /* the path of the failure, "" for the value itself */
};

/* Allocates a validator (the path stack makes it too large for the stack of a callback). */
static Validator *validator_new(bool quiet) {
        Validator *v;

        v = calloc(1, sizeof(*v));
        if (!v)
                return NULL;
        v->quiet = quiet;
        return v;
}

/* Frees a validator and any message it holds. */
static Validator *validator_free(Validator *v) {
        if (!v)
                return NULL;
        free(v->message);
        free(v->where);
        free(v);
        return NULL;
}

/* Cleanup helper for validator_free(). */
static void validator_freep(Validator **v) {
        validator_free(*v);
}

/* Appends the current path, JSON-pointer style (~ and / escaped), to b. */
static void buf_put_path(Buf *b, const Validator *v) {
        for (size_t i = 0; i < v->n_path; i++) {
                const PathSegment *seg = &v->path[i];
                Buf key = {};

                if (!seg->key) {
                        buf_printf(b, "/%zu", seg->index);
                        continue;
                }
                buf_put_name(&key, seg->key);
                buf_puts(b, "/");
                if (key.oom) {
                        b->oom = true;
                        continue;
                }
                for (size_t k = 0; k < key.len; k++) {
                        if (key.s[k] == '~')
                                buf_puts(b, "~0");
                        else if (key.s[k] == '/')
                                buf_puts(b, "~1");
                        else
                                buf_add(b, key.s + k, 1);
                }
                buf_done(&key);
        }
}

/* Records a failure at the current path; returns -EINVAL, or -ENOMEM when the message cannot
 * be built. Takes the message buffer. */
static int validator_fail_buf(Validator *v, Buf *msg) {
        Buf where = {};

        if (v->quiet) {
                buf_done(msg);
                return -EINVAL;
        }
        buf_put_path(&where, v);
        free(v->message);
        free(v->where);
        v->message = buf_steal(msg);
        v->where = buf_steal(&where);
        if (!v->message || !v->where)
                return -ENOMEM;
        return -EINVAL;
}

/* Records a failure with a formatted message. */
_printf_(2, 3)
static int validator_fail(Validator *v, const char *fmt, ...) {
        Buf msg = {};
        char *s = NULL;
        va_list ap;
        int n;

        if (v->quiet)
                return -EINVAL;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        buf_add(&msg, s, (size_t) n);
        free(s);
        return validator_fail_buf(v, &msg);
}

/* Appends "a, b or c" for the types in a mask. */
static void buf_put_types(Buf *b, unsigned types) {
        size_t n = 0, total = 0;

        for (size_t i = 0; i < ELEMENTSOF(schema_types); i++)
                if (types & schema_types[i].bit)
                        total++;
        for (size_t i = 0; i < ELEMENTSOF(schema_types); i++) {
                if (!(types & schema_types[i].bit))
                        continue;
                if (n > 0)
                        buf_puts(b, n + 1 == total ? " or " : ", ");
                buf_puts(b, schema_types[i].name);
                n++;
        }
}

/* Fails with "expected <types>, got <type>". */
static int validator_fail_type(Validator *v, unsigned types, json_object *value) {
        Buf msg = {};

        if (v->quiet)
                return -EINVAL;
        buf_puts(&msg, "expected ");
        buf_put_types(&msg, types);
        buf_printf(&msg, ", got %s", value_type_name(value));
        return validator_fail_buf(v, &msg);
}

/* The types a schema accepts, looking through a bare $ref; 0 when unconstrained. */
static unsigned schema_effective_types(const Schema *s) {
        for (unsigned i = 0; s && i < OPENRPC_REF_CHAIN_MAX; i++, s = s->ref_target)
                if (s->types != 0)
                        return s->types;
        return 0;
}

static int validate(Validator *v, const Schema *s, json_object *value);

/* Validates value one level deeper, at path segment (key or index). */
static int validate_child(Validator *v, const Schema *s, json_object *value, const char *key, size_t index) {
        int r;

        if (v->n_path >= ELEMENTSOF(v->path))
                return validator_fail(v, "nested too deeply to validate");
        v->path[v->n_path++] = (PathSegment) { .key = key, .index = index };
        r = validate(v, s, value);
        v->n_path--;
        return r;
}

/* Runs s quietly and reports whether value matches (1), does not (0), or -ENOMEM. */
static int validate_quietly(Validator *v, const Schema *s, json_object *value) {
        bool quiet = v->quiet;
        int r;

        v->quiet = true;
        r = validate(v, s, value);
        v->quiet = quiet;
        if (r == -ENOMEM)
                return r;
        return r >= 0;
}

/* anyOf (exactly_one false) and oneOf (exactly_one true). */
static int validate_alternatives(Validator *v, Schema *const *alts, size_t n, json_object *value,
                                 bool exactly_one) {
        size_t matched = 0, candidates = 0, candidate = 0;
        unsigned types = 0;
        bool all_typed = true;
        Buf msg = {};
        int r;

        for (size_t i = 0; i < n; i++) {
                r = validate_quietly(v, alts[i], value);
                if (r < 0)
                        return r;
                if (r > 0) {
                        matched++;
                        if (!exactly_one || matched > 1)
                                break;
                }
        }
        if (matched == 1 || (matched > 1 && !exactly_one))
                return 0;
        if (matched > 1)
                return validator_fail(v, "matches more than one of the alternatives it must "
                                      "match exactly one of");
        if (v->quiet)
                return -EINVAL;

        /* Nothing matched. When exactly one alternative has the value's type, that is the one
         * the caller meant: its own error is the useful one. */
        for (size_t i = 0; i < n; i++) {
                unsigned t = schema_effective_types(alts[i]);

                if (t == 0) {
                        all_typed = false;
                        candidates++;
                        candidate = i;
                        continue;
                }
                types |= t;
                if (value_has_type(value, t)) {
                        candidates++;
                        candidate = i;
                }
        }
        if (candidates == 1)
                return validate(v, alts[candidate], value);
        if (candidates == 0 && all_typed)
                return validator_fail_type(v, types, value);
        buf_puts(&msg, "does not match any of the allowed alternatives");
        return validator_fail_buf(v, &msg);
}

/* Checks the string keywords. */
static int validate_string(Validator *v, const Schema *s, json_object *value) {
        const char *str = json_object_get_string(value);
        size_t n = (size_t) json_object_get_string_len(value);

        if (s->min_length.set || s->max_length.set) {
                size_t l = utf8_length(str, n);

                if (s->min_length.set && l < s->min_length.value)
                        return validator_fail(v, "must be at least %" PRIu64 " character%s long",
                                              s->min_length.value, s->min_length.value == 1 ? "" : "s");
                if (s->max_length.set && l > s->max_length.value)
                        return validator_fail(v, "must be at most %" PRIu64 " character%s long",
                                              s->max_length.value, s->max_length.value == 1 ? "" : "s");
        }
        /* regexec() stops at a NUL byte: a string holding one never matches, or
         * "ok\u0000<anything>" would pass as "ok". */
        if (s->pattern && (memchr(str, '\0', n) || regexec(&s->regex, str, 0, NULL, 0) != 0))
                return validator_fail(v, "must match the pattern '%s'", s->pattern);
        if (s->format_uuid && !string_is_uuid(str, n))
                return validator_fail(v, "must be a UUID (8-4-4-4-12 hexadecimal digits)");
        return 0;
}

/* Fails with "must be <op> <bound>". */
static int validator_fail_bound(Validator *v, const char *op, json_object *bound) {
        Buf msg = {};

        if (v->quiet)
                return -EINVAL;
        buf_printf(&msg, "must be %s ", op);
        buf_put_json(&msg, bound);
        return validator_fail_buf(v, &msg);
}

/* Checks the numeric keywords. */
static int validate_number(Validator *v, const Schema *s, json_object *value) {
        if (s->minimum.json && number_compare_json(value, &s->minimum.value) < 0)
                return validator_fail_bound(v, ">=", s->minimum.json);
        if (s->exclusive_minimum.json && number_compare_json(value, &s->exclusive_minimum.value) <= 0)
                return validator_fail_bound(v, ">", s->exclusive_minimum.json);
        if (s->maximum.json && number_compare_json(value, &s->maximum.value) > 0)
                return validator_fail_bound(v, "<=", s->maximum.json);
        if (s->exclusive_maximum.json && number_compare_json(value, &s->exclusive_maximum.value) >= 0)
                return validator_fail_bound(v, "<", s->exclusive_maximum.json);
        return 0;
}

typedef struct HashedItem {
        uint64_t hash;
        size_t index;
} HashedItem;

/* Orders items by hash, then by position. */
static int hashed_item_compare(const void *a, const void *b) {
        const HashedItem *x = a, *y = b;

        if (x->hash != y->hash)
                return x->hash < y->hash ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* uniqueItems without comparing every pair: sort by hash and compare within equal hashes.
 * Reports the duplicate whose second position is first in the array. */
static int validate_unique(Validator *v, json_object *value) {
        _cleanup_free_ HashedItem *items = NULL;
        size_t n = json_object_array_length(value), dup_i = 0, dup_j = SIZE_MAX;
        unsigned comparisons = 0;

        if (n < 2)
                return 0;
        items = calloc(n, sizeof(HashedItem));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                items[i] = (HashedItem) {
                        .hash = json_hash(json_object_array_get_idx(value, i), 0),
                        .index = i,
                };
        qsort(items, n, sizeof(HashedItem), hashed_item_compare);

        for (size_t a = 0; a < n; a++)
                for (size_t b = a + 1; b < n && items[b].hash == items[a].hash; b++) {
                        if (++comparisons > OPENRPC_UNIQUE_COMPARISONS_MAX)
                                return validator_fail(v, "has too many similar items to check "
                                                      "that they are unique");
                        if (items[b].index < dup_j &&
                            json_equal(json_object_array_get_idx(value, items[a].index),
                                       json_object_array_get_idx(value, items[b].index), 0)) {
                                /* Within a run indexes ascend, so items[a] is the first copy. */
                                dup_i = items[a].index;
                                dup_j = items[b].index;
                        }
                }
        if (dup_j != SIZE_MAX)
                return validator_fail(v, "must not contain duplicates (items %zu and %zu are equal)",
                                      dup_i, dup_j);
        return 0;
}

/* Checks the array keywords. */
static int validate_array(Validator *v, const Schema *s, json_object *value) {
        size_t n = json_object_array_length(value);
        int r;

        if (s->min_items.set && n < s->min_items.value)
                return validator_fail(v, "must have at least %" PRIu64 " item%s",
                                      s->min_items.value, s->min_items.value == 1 ? "" : "s");
        if (s->max_items.set && n > s->max_items.value)
                return validator_fail(v, "must have at most %" PRIu64 " item%s",
                                      s->max_items.value, s->max_items.value == 1 ? "" : "s");
        if (s->unique_items) {
                r = validate_unique(v, value);
                if (r < 0)
                        return r;
        }
        if (s->items)
                for (size_t i = 0; i < n; i++) {
                        r = validate_child(v, s->items, json_object_array_get_idx(value, i), NULL, i);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* The property of a schema with this name, or NULL. */
static const SchemaProperty *schema_property(const Schema *s, const char *name) {
        for (size_t i = 0; i < s->n_properties; i++)
                if (streq(s->properties[i].name, name))
                        return &s->properties[i];
        return NULL;
}

/* Checks the object keywords, in the same order as params: unknown members, missing
 * members, then each member. */
static int validate_object(Validator *v, const Schema *s, json_object *value) {
        int r;

        if (s->additional == ADDITIONAL_NONE) {
                json_object_object_foreach(value, key, val) {
                        Buf msg = {};

                        (void) val;
                        if (schema_property(s, key))
                                continue;
                        if (v->quiet)
                                return -EINVAL;
                        buf_puts(&msg, "unknown member '");
                        buf_put_name(&msg, key);
                        buf_puts(&msg, "'");
                        if (s->n_properties == 0)
                                buf_puts(&msg, " (no members are allowed)");
                        else {
                                buf_puts(&msg, " (known: ");
                                for (size_t i = 0; i < s->n_properties; i++)
                                        buf_printf(&msg, "%s%s", i > 0 ? ", " : "", s->properties[i].name);
                                buf_puts(&msg, ")");
                        }
                        return validator_fail_buf(v, &msg);
                }
        }

        for (size_t i = 0; i < s->n_required; i++)
                if (!json_object_object_get_ex(value, s->required[i], NULL))
                        return validator_fail(v, "missing required member '%s'", s->required[i]);

        for (size_t i = 0; i < s->n_properties; i++) {
                json_object *member;

                if (!json_object_object_get_ex(value, s->properties[i].name, &member))
                        continue;
                r = validate_child(v, s->properties[i].schema, member, s->properties[i].name, 0);
                if (r < 0)
                        return r;
        }

        if (s->additional == ADDITIONAL_SCHEMA) {
                json_object_object_foreach(value, key, val) {
                        if (schema_property(s, key))
                                continue;
                        r = validate_child(v, s->additional_schema, val, key, 0);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Fails with "must be one of <values>". */
static int validator_fail_enum(Validator *v, json_object *values) {
        size_t n = json_object_array_length(values);
        Buf msg = {};

        if (v->quiet)
                return -EINVAL;
        buf_puts(&msg, "must be one of ");
        for (size_t i = 0; i < n && i < OPENRPC_MESSAGE_ENUM_MAX; i++) {
                if (i > 0)
                        buf_puts(&msg, ", ");
                buf_put_json(&msg, json_object_array_get_idx(values, i));
        }
        if (n > OPENRPC_MESSAGE_ENUM_MAX)
                buf_puts(&msg, ", ...");
        return validator_fail_buf(v, &msg);
}

/* Validates a value against a schema: $ref, then type, const and enum, then the keywords of
 * the value's type, then the combinators. Returns 0, -EINVAL (message recorded unless quiet),
 * or -ENOMEM. */
static int validate(Validator *v, const Schema *s, json_object *value) {
        int r;

        if (v->depth >= OPENRPC_VALIDATE_DEPTH_MAX)
                return validator_fail(v, "nested too deeply to validate");
        v->depth++;

        if (s->never) {
                r = validator_fail(v, "is not allowed");
                goto out;
        }

        if (s->ref_target) {
                r = validate(v, s->ref_target, value);
                if (r < 0)
                        goto out;
        }

        if (s->types != 0 && !value_has_type(value, s->types)) {
                r = validator_fail_type(v, s->types, value);
                goto out;
        }

        if (s->has_const && !json_equal(value, s->const_value, 0)) {
                Buf msg = {};

                if (v->quiet) {
                        r = -EINVAL;
                        goto out;
                }
                buf_puts(&msg, "must be ");
                buf_put_json(&msg, s->const_value);
                r = validator_fail_buf(v, &msg);
                goto out;
        }

        if (s->enum_values) {
                size_t n = json_object_array_length(s->enum_values);
                bool found = false;

                for (size_t i = 0; i < n && !found; i++)
                        found = json_equal(value, json_object_array_get_idx(s->enum_values, i), 0);
                if (!found) {
                        r = validator_fail_enum(v, s->enum_values);
                        goto out;
                }
        }

        switch (json_object_get_type(value)) {
        case json_type_string:
                r = validate_string(v, s, value);
                break;
        case json_type_int:
        case json_type_double:
                r = validate_number(v, s, value);
                break;
        case json_type_array:
                r = validate_array(v, s, value);
                break;
        case json_type_object:
                r = validate_object(v, s, value);
                break;
        default:
                r = 0;
                break;
        }
        if (r < 0)
                goto out;

        for (size_t i = 0; i < s->n_all_of; i++) {
                r = validate(v, s->all_of[i], value);
                if (r < 0)
                        goto out;
        }
        if (s->n_any_of > 0) {
                r = validate_alternatives(v, s->any_of, s->n_any_of, value, false);
                if (r < 0)
                        goto out;
        }
        if (s->n_one_of > 0) {
                r = validate_alternatives(v, s->one_of, s->n_one_of, value, true);
                if (r < 0)
                        goto out;
        }
        if (s->not_schema) {
                r = validate_quietly(v, s->not_schema, value);
                if (r < 0)
                        goto out;
                if (r > 0) {
                        r = validator_fail(v, "is not allowed (it matches the schema under \"not\")");
                        goto out;
                }
        }
        r = 0;
out:
        v->depth--;
        return r;
}

/* Runs a validation from the top of a value. */
static int validator_run(Validator *v, const Schema *s, json_object *value) {
        v->depth = 0;
        v->n_path = 0;
        return validate(v, s, value);
}

/* Releases the members of a validation error. */
void openrpc_error_done(OpenRpcError *e) {
        if (!e)
                return;
        free(e->param);
        free(e->path);
        free(e->message);
        *e = (OpenRpcError) {};
}

/* Fills *ret from a finished message; param may be NULL. Returns -EINVAL, or -ENOMEM. */
static int error_set(OpenRpcError *ret, const char *param, const char *path, Buf *msg) {
        OpenRpcError e = {};

        e.message = buf_steal(msg);
        e.path = strdup(path ?: "");
        if (param)
                e.param = strdup(param);
        if (!e.message || !e.path || (param && !e.param)) {
                openrpc_error_done(&e);
                return -ENOMEM;
        }
        if (ret)
                *ret = e;
        else
                openrpc_error_done(&e);
        return -EINVAL;
}

/* Builds the error of a param whose value failed its schema. */
static int error_from_validator(OpenRpcError *ret, const char *param, const Validator *v) {
        Buf msg = {};

        if (param) {
                buf_puts(&msg, "invalid param '");
                buf_put_name(&msg, param);
                buf_puts(&msg, "'");
        } else
                buf_puts(&msg, "invalid result");
        if (!isempty(v->where))
                buf_printf(&msg, " at %s", v->where);
        buf_printf(&msg, ": %s", v->message ?: "is invalid");
        return error_set(ret, param, v->where, &msg);
}

/* The descriptor of a param by name, or NULL. */
static const Descriptor *method_param(const OpenRpcMethod *m, const char *name) {
        for (size_t i = 0; i < m->n_params; i++)
                if (streq(m->params[i]->name, name))
                        return m->params[i];
        return NULL;
}

/* Turns by-position params into a by-name object (new reference in *ret). */
static int params_from_array(const OpenRpcMethod *m, json_object *params, json_object **ret,
                             OpenRpcError *ret_error) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        size_t n = json_object_array_length(params);
        Buf msg = {};

        if (m->structure == PARAM_STRUCTURE_BY_NAME) {
                buf_puts(&msg, "params must be given by name (an object), not by position");
                return error_set(ret_error, NULL, NULL, &msg);
        }
        if (n > m->n_params) {
                buf_printf(&msg, "too many params: %zu given, the method takes %s%zu", n,
                           m->n_params > 0 ? "at most " : "", m->n_params);
                return error_set(ret_error, NULL, NULL, &msg);
        }

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(params, i);

                if (json_object_object_add(o, m->params[i]->name, json_object_get(e)) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* Validates params, see openrpc.h. */
int openrpc_validate_params(const OpenRpc *o, const OpenRpcMethod *m, json_object *params,
                            json_object **ret_params, OpenRpcError *ret_error) {
        _cleanup_(json_object_putp) json_object *given = NULL, *out = NULL;
        _cleanup_(validator_freep) Validator *v = NULL;
        Buf msg = {};
        int r;

        assert_return(o, -EINVAL);
        assert_return(m, -EINVAL);

        if (!params) {
                /* absent params: only required ones can be wrong, and defaults are filled in */
                for (size_t i = 0; i < m->n_params; i++)
                        if (m->params[i]->required) {
                                buf_printf(&msg, "missing required param '%s'", m->params[i]->name);
                                return error_set(ret_error, m->params[i]->name, NULL, &msg);
                        }
                goto result;
        } else if (json_object_is_type(params, json_type_object))
                given = json_object_get(params);
        else if (json_object_is_type(params, json_type_array)) {
                r = params_from_array(m, params, &given, ret_error);
                if (r < 0)
                        return r;
        } else {
                buf_puts(&msg, "params must be an object or an array");
                return error_set(ret_error, NULL, NULL, &msg);
        }
        if (!given)
                return -ENOMEM;

        /* 1. unknown params */
        json_object_object_foreach(given, key, val) {
                (void) val;
                if (method_param(m, key))
                        continue;
                buf_puts(&msg, "unknown param '");
                buf_put_name(&msg, key);
                buf_puts(&msg, "'");
                if (m->n_params == 0)
                        buf_puts(&msg, " (the method takes no params)");
                else {
                        buf_puts(&msg, " (known: ");
                        for (size_t i = 0; i < m->n_params; i++)
                                buf_printf(&msg, "%s%s", i > 0 ? ", " : "", m->params[i]->name);
                        buf_puts(&msg, ")");
                }
                return error_set(ret_error, key, NULL, &msg);
        }

        /* 2. missing required params */
        for (size_t i = 0; i < m->n_params; i++)
                if (m->params[i]->required && !json_object_object_get_ex(given, m->params[i]->name, NULL)) {
                        buf_printf(&msg, "missing required param '%s'", m->params[i]->name);
                        return error_set(ret_error, m->params[i]->name, NULL, &msg);
                }

        /* 3. each param in document order (nothing to check, and no validator to set up, for
         * a call without params: the common case on the hot path) */
        if (json_object_object_length(given) > 0) {
                v = validator_new(false);
                if (!v)
                        return -ENOMEM;
        }
        for (size_t i = 0; v && i < m->n_params; i++) {
                json_object *value;

                if (!json_object_object_get_ex(given, m->params[i]->name, &value))
                        continue;
                r = validator_run(v, m->params[i]->schema, value);
                if (r == -EINVAL)
                        return error_from_validator(ret_error, m->params[i]->name, v);
                if (r < 0)
                        return r;
        }

result:
        if (!ret_params)
                return 0;

        /* The result: given params and defaults, in document order. */
        out = json_object_new_object();
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_params; i++) {
                json_object *value = NULL, *def;

                if (json_object_object_get_ex(given, m->params[i]->name, &value))
                        value = json_object_get(value);
                else if (descriptor_default(m->params[i], &def)) {
                        value = NULL;
                        /* A copy: the handler may change its params, never the document. */
                        if (def && json_object_deep_copy(def, &value, NULL) < 0)
                                return -ENOMEM;
                } else
                        continue;
                if (json_object_object_add(out, m->params[i]->name, value) < 0) {
                        json_object_put(value);
                        return -ENOMEM;
                }
        }

        *ret_params = TAKE_PTR(out);
        return 0;
}

/* Validates a result value, see openrpc.h. */
int openrpc_validate_result(const OpenRpc *o, const OpenRpcMethod *m, json_object *result,
                            OpenRpcError *ret_error) {
        _cleanup_(validator_freep) Validator *v = NULL;
        int r;

        assert_return(o, -EINVAL);
        assert_return(m, -EINVAL);

        v = validator_new(false);
        if (!v)
                return -ENOMEM;
        r = validator_run(v, m->result->schema, result);
        if (r == -EINVAL)
                return error_from_validator(ret_error, NULL, v);
        return r;
}
