/* SPDX-License-Identifier: MIT */
/*
 * The OpenRPC document: loading, compiling and indexing (the types and the glossary are in
 * openrpc-internal.h; params validation is in openrpc-validate.c).
 */
#include <assert.h>
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "openrpc-internal.h"
#include "openrpc.h"

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
