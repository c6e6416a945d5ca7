/* SPDX-License-Identifier: MIT */
/*
 * Inside the OpenRPC module: the compiled document's types and the helpers its three parts
 * share. openrpc.c loads, compiles and indexes the document; openrpc-value.c holds the message
 * buffer and the JSON value helpers (exact number order, JSON Schema equality and hashing);
 * openrpc-validate.c validates params and results. Not part of proto's interface: only these
 * three files include it.
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
#pragma once

#include <json-c/json.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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


/* The type names, in the order messages list them. */
typedef struct SchemaTypeName {
        const char *name;
        unsigned bit;
} SchemaTypeName;

#define SCHEMA_TYPES_N 7
extern const SchemaTypeName schema_types[SCHEMA_TYPES_N];

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

/* A growable string for messages. Allocation failure is sticky and reported at the end. */
typedef struct Buf {
        char *s;
        size_t len, allocated;
        bool oom;
} Buf;

/* ---- openrpc-value.c: the message buffer ------------------------------------------------- */

/* Appends n bytes; a C string; formatted text. */
void buf_add(Buf *b, const char *s, size_t n);
void buf_puts(Buf *b, const char *s);
_printf_(2, 3) void buf_printf(Buf *b, const char *fmt, ...);
/* Appends a caller-supplied name, cut on a UTF-8 boundary when it is long. */
void buf_put_name(Buf *b, const char *name);
/* Appends a value as compact JSON. */
void buf_put_json(Buf *b, json_object *v);
/* Hands the text over (NULL on allocation failure) and resets the buffer. */
char *buf_steal(Buf *b);
/* Releases a buffer. */
void buf_done(Buf *b);

/* ---- openrpc-value.c: numbers and JSON values -------------------------------------------- */

/* Whether a json-c value is a number; reads one. */
bool json_is_number(json_object *v);
Number number_of(json_object *v);
/* Orders a json-c number against a bound exactly: -1, 0 or 1. */
int number_compare_json(json_object *v, const Number *bound);
/* The name of a value's type for messages. */
const char *value_type_name(json_object *v);
/* Whether a value has one of the types in the mask ("integer" takes integer-valued doubles). */
bool value_has_type(json_object *v, unsigned types);
/* JSON equality as JSON Schema defines it, and a hash consistent with it. */
bool json_equal(json_object *a, json_object *b, unsigned depth);
uint64_t json_hash(json_object *v, unsigned depth);
/* Number of code points in a UTF-8 string. */
size_t utf8_length(const char *s, size_t n);
/* string_is_uuid() is in openrpc.h: the daemon checks ids with it too. */

/* ---- openrpc-validate.c ------------------------------------------------------------------- */

/* The default of a descriptor's schema, following a $ref chain; false when none. */
bool descriptor_default(const Descriptor *d, json_object **ret);

/* Checks values against compiled schemas. A quiet validator only gives the verdict (no
 * message is built). validator_run() returns 0, -EINVAL when the value does not match, or
 * -ENOMEM. */
typedef struct Validator Validator;
Validator *validator_new(bool quiet);
Validator *validator_free(Validator *v);
int validator_run(Validator *v, const Schema *s, json_object *value);
